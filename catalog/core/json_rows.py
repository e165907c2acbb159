"""A batch of listing rows as JSON objects, column by column: the bytes ``json.dumps`` writes row by row, faster.

``json.dumps(dict(zip(columns, row)))`` per row builds a dict and sets up an
encoder for every row. :func:`json_objects` instead encodes each *column* of
the batch at once, with the very functions the standard encoder itself calls
for a value (``encode_basestring_ascii`` for text, ``int.__repr__`` for whole
numbers, ``null`` for None; any other value, such as a nested dict, by one
encoder call for the whole column), and interleaves the keys in C. The output
is byte for byte what the per-row path writes (``tests/test_exports.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import chain, repeat
from json.encoder import encode_basestring_ascii as _text
from typing import Any

_encode = json.JSONEncoder().encode  # json.dumps with its defaults
_ENCODERS = {False: _encode, True: json.JSONEncoder(sort_keys=True).encode}
_MARK = "\x00"  # separates a column's values in one encoder call; the encoder writes it only as "\u0000"
_SPLIT = ", " + _encode(_MARK) + ", "
_NONE = type(None)


def json_texts(column: Sequence[Any], sort_keys: bool = False) -> Sequence[str]:
    """Each value of ``column`` as ``json.dumps(value, sort_keys=sort_keys)`` writes it."""
    encode = _ENCODERS[sort_keys]
    kinds = set(map(type, column))
    if kinds == {str}:
        return list(map(_text, column))
    if kinds == {int}:
        return list(map(int.__repr__, column))
    if kinds <= {str, _NONE} or kinds <= {int, _NONE}:
        simple = _text if str in kinds else int.__repr__
        return ["null" if value is None else simple(value) for value in column]
    flat = [_MARK] * (2 * len(column) - 1)
    flat[0::2] = column
    pieces = encode(flat)[1:-1].split(_SPLIT)
    # the marker text is a whole JSON string only where a value *is* the marker: then the count tells, and each goes alone
    return pieces if len(pieces) == len(column) else list(map(encode, column))


def json_objects(rows: Sequence[Sequence[Any]], columns: Sequence[str], end: str) -> str:
    """``rows`` (each its values in ``columns`` order) as ``json.dumps(dict(zip(columns, row))) + end`` each, joined.

    Values are what ``json.dumps`` takes (text, numbers, None, nested dicts and
    lists); raises TypeError for others, as it does.
    """
    values = list(zip(*rows))
    if len(values) < len(columns) or len(set(columns)) < len(columns):  # (no rows, a short row, a repeated name)
        return "".join([_encode(dict(zip(columns, row))) + end for row in rows])  # the per-row path, for odd shapes
    parts: list[Any] = []
    for i, (name, column) in enumerate(zip(columns, values)):
        parts += [repeat(("{" if i == 0 else ", ") + _text(name) + ": "), json_texts(column)]
    parts.append(repeat("}" + end))
    return "".join(chain.from_iterable(zip(*parts)))
