"""Checking bytes that arrive from outside (``put``, imports) before they are stored: they must parse as
their extension says, read as they stream, with bounds so memory does not grow with the input. And reading
back, strictly, the JSON and CSV the product wrote (:func:`load_json`, :func:`csv_records`)."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import math
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import ValidationError
from .formats import MAX_CSV_FIELD

#: The largest JSON document checked (bytes): a ``.json`` input, or one line of a ``.jsonl``. JSON is parsed
#: whole (the standard library has no incremental parser), so checking one takes memory of a few times this
#: (text, plus a pointer per array element); larger data belongs in JSONL or CSV, which are checked line by line.
MAX_JSON_BYTES = 64 * 2**20
#: The longest CSV line checked (bytes): what checking a CSV holds in memory at once.
MAX_CSV_LINE = 64 * 2**20


def check_content(ext: str, data: bytes) -> None:
    """Raise ValidationError if ``data`` is empty or does not parse as ``ext`` (json, jsonl, csv); others pass."""
    check_stream(ext, [data])


def check_stream(ext: str, chunks: Iterable[bytes]) -> None:
    """Read ``chunks`` (the input's bytes, in order) to their end; ValidationError if they are empty or do not
    parse as ``ext`` (json, jsonl, csv; other extensions pass).

    Memory does not grow with the input: JSONL and CSV are checked line by line
    (a line up to :data:`MAX_JSON_BYTES`, resp. :data:`MAX_CSV_LINE`, a CSV field up
    to :data:`MAX_CSV_FIELD`); a JSON document is checked whole, up to :data:`MAX_JSON_BYTES`.
    """
    pieces = _nonempty(chunks)
    if ext == "json":
        document = _read_bounded(pieces, MAX_JSON_BYTES, "input")
        _load_json(_decode(document, "input"), "input", keep=False)
    elif ext == "jsonl":
        for number, (offset, line) in enumerate(_byte_lines(pieces, MAX_JSON_BYTES), start=1):
            _load_json(_decode(line, "input", offset), f"input line {number}", keep=False)
    elif ext == "csv":
        csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD))  # only ever raised: the limit is global
        try:
            for _ in csv.reader(_text_lines(pieces), strict=True):
                pass
        except csv.Error as exc:
            raise ValidationError(f"input is not valid CSV: {exc}") from None
    else:
        for _ in pieces:
            pass


def _nonempty(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks, but ValidationError ("input is empty") if they hold no byte at all."""
    empty = True
    for chunk in chunks:
        if chunk:
            empty = False
            yield chunk
    if empty:
        raise ValidationError("input is empty")


def _read_bounded(chunks: Iterable[bytes], limit: int, what: str) -> bytearray:
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise ValidationError(
                f"{what} is a JSON document larger than {limit // 2**20} MiB, the most that is checked (it is parsed "
                "whole); store large data as JSONL or CSV, which are checked line by line"
            )
    return data


def _byte_lines(chunks: Iterable[bytes], limit: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line) for every ``\\n``-ended line and a last unended one; ValidationError for a line over ``limit`` bytes."""
    pending, offset = bytearray(), 0
    for chunk in chunks:
        pending += chunk
        start = 0
        while True:
            end = pending.find(b"\n", start)
            if (len(pending) if end < 0 else end) - start > limit:
                raise ValidationError(f"input has a line longer than {limit // 2**20} MiB (from byte {offset + start}), "
                                      "the most that is checked")  # fmt: skip
            if end < 0:
                break
            yield offset + start, bytes(pending[start:end])
            start = end + 1
        del pending[:start]
        offset += start
    if pending:
        yield offset, bytes(pending)


def _text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 text lines with their ends (``\\r\\n``, ``\\r`` or ``\\n``, as ``newline=""`` reads them) for csv.

    ValidationError naming the first byte that is not UTF-8, a NUL, or a line longer than :data:`MAX_CSV_LINE`.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending, offset = "", 0
    for chunk in itertools.chain(chunks, [None]):
        final = chunk is None
        data = b"" if chunk is None else chunk
        held = len(decoder.getstate()[0])  # bytes of a character begun in the last chunk
        try:
            text = decoder.decode(data, final=final)
        except UnicodeDecodeError as exc:
            raise ValidationError(f"input is not valid UTF-8 (byte {offset - held + exc.start})") from None
        offset += len(data)
        if "\x00" in text:
            raise ValidationError("input is not valid CSV: it contains a NUL byte")
        buffer = pending + text
        lines, pending = io.StringIO(buffer, newline=""), ""
        for line in lines:
            if not final and line[-1] != "\n" and lines.tell() == len(buffer):  # unended, or a \r\n split in two
                pending = line
                break
            yield line
        if len(pending) > MAX_CSV_LINE:
            raise ValidationError(f"input has a line longer than {MAX_CSV_LINE // 2**20} MiB, the most that is checked")


def _csv_lines(data: bytes, what: str) -> Iterator[list[str]]:
    """The rows of CSV bytes, parsed strictly (UTF-8, no NUL, well-formed quoting); ValidationError otherwise."""
    text = _decode(data, what)
    if "\x00" in text:
        raise ValidationError(f"{what} is not valid CSV: it contains a NUL byte")
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD))  # only ever raised: the limit is global
    try:
        yield from csv.reader(io.StringIO(text, newline=""), strict=True)
    except csv.Error as exc:
        raise ValidationError(f"{what} is not valid CSV: {exc}") from None


def csv_records(data: bytes, what: str = "input") -> list[dict[str, str]]:
    """A CSV the product wrote, read back: one dict per data row, keyed by the header, each cell's text
    exactly as it was given (the ``'`` that :func:`csv_text` added is taken off; numbers stay text).

    Raises ValidationError for bytes that are not strict CSV, an empty file, or a row
    whose cell count differs from the header's.
    """
    lines = _csv_lines(data, what)
    header = next(lines, None)
    if header is None:
        raise ValidationError(f"{what} is empty: a CSV needs at least its header row")
    names = [_from_csv_text(name) for name in header]
    records = []
    for number, line in enumerate(lines, start=1):
        if len(line) != len(names):
            raise ValidationError(f"{what} row {number} has {len(line)} cells; the header has {len(names)}")
        records.append(dict(zip(names, map(_from_csv_text, line))))
    return records


def _from_csv_text(cell: str) -> str:
    """The text :func:`csv_text` was given for ``cell``."""
    return cell[1:] if cell[:1] == "'" else cell


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range (it would be read as {value})")
    return value


def _load_json(text: str, what: str, *, keep: bool = True) -> Any:
    """Parse strictly; ``keep=False`` only checks (objects and numbers are dropped as they are read, to save memory)."""
    hooks: dict[str, Any] = {"parse_float": _finite_float} if keep else {
        "object_pairs_hook": _drop, "parse_int": lambda t: _drop(int(t)), "parse_float": lambda t: _drop(_finite_float(t))
    }  # fmt: skip
    try:
        return json.loads(text, parse_constant=_reject_constant, **hooks)
    except RecursionError:
        raise ValidationError(f"{what} is nested too deeply") from None
    except json.JSONDecodeError as exc:
        if exc.pos == 0 and text.startswith("\ufeff"):
            raise ValidationError(f"{what} starts with a byte order mark (U+FEFF), which JSON text must not "
                                  "(RFC 8259, section 8.1): save it as UTF-8 without one") from None  # fmt: skip
        raise ValidationError(f"{what} is not valid JSON: {exc}") from None
    except ValueError as exc:  # ours (NaN, a float out of range) or Python's limit on a whole number's digits
        if "integer string conversion" in str(exc):
            raise ValidationError(f"{what} has a whole number of more than {sys.get_int_max_str_digits()} digits, "
                                  "more than the store reads back as a number") from None  # fmt: skip
        raise ValidationError(f"{what} is not valid JSON: {exc}") from None


def _drop(_: Any) -> None:
    return None


def _decode(data: bytes | bytearray, what: str, offset: int = 0) -> str:
    """UTF-8 text of ``data``; ValidationError naming the bad byte (counted from ``offset``, where ``data`` starts)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{what} is not valid UTF-8 (byte {offset + exc.start})") from None


def load_json(data: bytes | str, what: str = "input") -> Any:
    """Parse JSON bytes or text strictly: UTF-8, no NaN/Infinity, no overflowing numbers; ValidationError otherwise."""
    return _load_json(_decode(data, what) if isinstance(data, bytes) else data, what)
