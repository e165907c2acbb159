"""Serialising artifact data to bytes (reading back and checking what arrives from outside: :mod:`.content`).

JSON: UTF-8, the configured indent, NaN/Infinity refused, aware datetimes as
ISO-8601 with ``Z`` (naive ones refused: every time is UTC, said explicitly).

CSV (every CSV the product generates: written artifacts, derived explain CSVs,
``--format csv`` listings) follows two rules, each with one home here:

- **Numbers are exact.** A cell read back gives the number that was written:
  whole numbers as all their digits, floats and Decimals in positional notation
  with at least ``csv_precision`` decimals and as many more as reading back the
  same value needs (:func:`csv_number`): ``85.450000``, ``0.00000001``,
  ``0.30000000000000004``, ``18446744073709551615``. Nothing is rounded away.
- **Text never runs in a spreadsheet** (OWASP, "CSV Injection"): a text cell
  that a spreadsheet would read as a formula gets a leading ``'``
  (:func:`csv_text`); :func:`csv_records` takes it off again, so the product
  reads back exactly the text it wrote. Numbers the product formats itself are
  not text and are never changed, so ``-0.5`` stays a number.

Then standard quoting (RFC 4180: a cell with a comma, quote or line break is
quoted), booleans ``true``/``false``, ``\\n`` line ends, UTF-8.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from itertools import islice
from typing import IO, Any

from .errors import ValidationError
from .json_rows import json_objects

MAX_DEPTH = 200
#: Most digits a written number may have (Python's own default limit for printing a whole number).
MAX_DIGITS = 4300
#: The largest CSV field read or checked (characters; Python's csv module refuses more than 128 KiB by default).
MAX_CSV_FIELD = 16 * 2**20
#: A decimal number as text, as a spreadsheet and the product's CSV readers accept it: ``-0.5``, ``+3``, ``1e-8``.
NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: What a spreadsheet takes as the start of a formula (OWASP, "CSV Injection"); a cell's first
#: character is compared after NFKC, so the full-width (＝＋－＠) and small (﹦﹢﹣﹫) forms count too.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: First characters after which :func:`csv_text` has nothing to check: printable ASCII, neither space nor ``'``
#: nor a formula start (NFKC leaves ASCII as it is).
_PLAIN_STARTS = frozenset(map(chr, range(0x21, 0x7F))) - {"'", *FORMULA_STARTS}


def format_time(moment: datetime, where: str = "$") -> str:
    """An aware time as UTC ISO-8601 with ``Z`` (microseconds only if present); a naive one raises ValidationError."""
    if moment.tzinfo is None:
        raise ValidationError(f"time at {where} has no time zone; give it one (UTC)")
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S" + (".%f" if utc.microsecond else "") + "Z")


def parse_time(text: str) -> datetime:
    """ISO-8601 date or time to aware UTC. A time without a zone is taken as UTC.

    Raises ValidationError for text that is not ISO-8601 or is out of range once in UTC.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"{text[:60]!r} is not a time; use ISO-8601 such as 2024-01-15 or 2024-01-15T10:30:00Z (UTC)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValidationError(f"{text[:60]!r} is out of range once converted to UTC") from None


def jsonable(data: Any) -> Any:
    """A copy of ``data`` ready for json.dumps: times as UTC ISO-8601 text, Decimals as floats, tuples as lists.

    Raises ValidationError naming the first bad place (``$.a[0]``): a
    non-finite number, a naive time, a key that is not text, a value JSON
    cannot hold, or nesting deeper than :data:`MAX_DEPTH`.
    """
    try:
        return _plain(data, 0)
    except _Unusual:
        return _careful(data)


class _Unusual(Exception):
    """Raised by :func:`_plain` for anything but the plainest data: :func:`_careful` then converts it, or names what is wrong."""


#: Whole numbers of fewer digits than this never need the digit check (:data:`MAX_DIGITS`).
_SHORT_INT = 10**18


def _plain(value: Any, depth: int) -> Any:
    """:func:`jsonable` for the common case (exact str, int, float, bool, None, dict with text keys, list, tuple,
    aware datetime), building no place names (``$.a[0]``) while nothing is wrong; :class:`_Unusual` otherwise."""
    kind = type(value)
    if depth > MAX_DEPTH:
        raise _Unusual
    if kind is str:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _Unusual from None
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual
            out[_plain(key, depth)] = _plain(item, depth + 1)
        return out
    if kind is list or kind is tuple:
        return [_plain(item, depth + 1) for item in value]
    if kind is float:
        if not math.isfinite(value):
            raise _Unusual
        return value
    if kind is int:
        if not -_SHORT_INT < value < _SHORT_INT:
            raise _Unusual
        return value
    if value is None or kind is bool:
        return value
    if kind is datetime and value.tzinfo is not None:
        return format_time(value)
    raise _Unusual


def _careful(data: Any) -> Any:
    """:func:`jsonable`, naming the place of the first value it refuses."""

    def convert(value: Any, where: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ValidationError(f"data is nested deeper than {MAX_DEPTH} levels at {where}")
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            _whole_text(value, f"data has a whole number of more than {MAX_DIGITS} digits at {where}")
            return value
        if isinstance(value, str):
            return check_unicode(value, f"data has text at {where}")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValidationError(f"data has a non-finite number ({value}) at {where}")
            return value
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValidationError(f"data has a non-finite number ({value}) at {where}")
            return float(value)
        if isinstance(value, datetime):
            return format_time(value, where)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise ValidationError(f"data has a key of type {type(key).__name__} at {where}; keys must be text")
                text = _whole_text(key, f"data has a key of more than {MAX_DIGITS} digits at {where}") if isinstance(key, int) else key
                out[check_unicode(text, f"data has a key at {where}")] = convert(item, f"{where}.{key}", depth + 1)
            return out
        if isinstance(value, (list, tuple)):
            return [convert(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
        raise ValidationError(f"data has a value of type {type(value).__name__} at {where}, which JSON cannot hold")

    return convert(data, "$", 0)


def json_bytes(data: Any, indent: int = 2) -> bytes:
    """Serialise ``data`` as the store writes JSON: UTF-8, ``indent`` spaces (0: one line), trailing newline.

    Raises ValidationError as :func:`jsonable` does.
    """
    clean = jsonable(data)
    return (json.dumps(clean, indent=indent or None, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def _whole_text(value: int, problem: str) -> str:
    """A whole number's digits; ValidationError(``problem``) beyond :data:`MAX_DIGITS` digits."""
    try:
        text = str(value)
    except ValueError:  # Python itself refuses to print it (sys.get_int_max_str_digits)
        raise ValidationError(problem) from None
    if len(text) - (value < 0) > MAX_DIGITS:
        raise ValidationError(problem)
    return text


def check_unicode(text: str, problem: str) -> str:
    """``text`` unchanged if it can be written as UTF-8; a lone surrogate raises ValidationError(``problem`` with where)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{problem} with a lone surrogate at character {exc.start + 1} (not valid Unicode)") from None
    return text


def keep_exact(value: float) -> float:
    """A number for a float field, never rounded: a whole number a float holds exactly becomes that float;
    a larger one (beyond 2**53, such as 18446744073709551615) stays the int it is. Floats are returned unchanged.

    Raises OverflowError for an int beyond the float range (about 1.8e308).
    """
    if type(value) is not int:
        return value
    as_float = float(value)
    return as_float if as_float == value else value


def csv_number(value: float | Decimal, precision: int) -> str:
    """A finite float or Decimal as an exact CSV cell: positional notation, at least ``precision`` decimals,
    more if the value needs them (a float: the shortest digits that read back as the same float).

    ``0.00000001`` -> ``0.00000001``; ``85.45`` -> ``85.450000``; ``0.1 + 0.2`` ->
    ``0.30000000000000004``; ``-0.0`` -> ``-0.000000``. No exponent, which every
    spreadsheet and :func:`float` read as the same number. The caller checks finiteness.
    """
    if isinstance(value, float):
        shortest = float.__repr__(value)  # the fewest digits that read back as this float
        exact = Decimal(shortest.removesuffix(".0"))  # 2.0 -> 2, so precision 0 writes "2"
    else:
        exact = value
    text = format(exact, "f")
    return text if len(text.partition(".")[2]) >= precision else format(exact, f".{precision}f")


def csv_text(text: str) -> str:
    """``text`` as a CSV cell that a spreadsheet shows and never runs (OWASP, "CSV Injection").

    A cell whose first character, or first after leading white space, is one of
    :data:`FORMULA_STARTS` (= + - @ tab CR, compared after NFKC so full-width and
    small forms count) gets a leading ``'``: ``=1+1`` -> ``'=1+1``, ``-X`` -> ``'-X``.
    So does a cell that already starts with ``'``, so :func:`csv_records` can take
    exactly one off. Text that is just a decimal number (``-0.5``, ``+3``) is left
    alone: a spreadsheet reads it as that number and nothing runs; so the numbers
    the product formats itself (:func:`csv_cell`) pass unchanged.
    """
    first = text[:1]
    if first in _PLAIN_STARTS:  # most cells: nothing a spreadsheet runs starts so
        return text
    if first == "'":
        return "'" + text
    starts = {unicodedata.normalize("NFKC", char)[:1] for char in (first, text.lstrip()[:1])}
    if starts.intersection(FORMULA_STARTS) and not NUMBER.fullmatch(text.strip()):
        return "'" + text
    return text


def csv_cell(value: Any, precision: int, where: str) -> str:
    """One CSV cell as text (before :func:`csv_text`, which :class:`CsvWriter` applies): numbers exact
    (:func:`csv_number`), booleans ``true``/``false``, times UTC ISO-8601, text as it is; None is an empty cell.

    Raises ValidationError (at ``where``) for a non-finite number, a number of more than
    :data:`MAX_DIGITS` digits, text that is not valid Unicode, or a value of another type.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _whole_text(value, f"rows have a whole number of more than {MAX_DIGITS} digits at {where}")
    if isinstance(value, (float, Decimal)):
        if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)):
            raise ValidationError(f"rows have a non-finite number ({value}) at {where}")
        if isinstance(value, Decimal):
            digits, exponent = len(value.as_tuple().digits), int(value.as_tuple().exponent)
            width = digits + exponent if exponent >= 0 else max(digits, -exponent)
            if width > MAX_DIGITS:
                raise ValidationError(f"rows have a number of more than {MAX_DIGITS} digits at {where}")
        return csv_number(value, precision)
    if isinstance(value, datetime):
        return format_time(value, where)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return check_unicode(value, f"rows have text at {where}")
    raise ValidationError(f"rows have a value of type {type(value).__name__} at {where}; use text or numbers")


class CsvWriter:
    """Writes rows of text cells to ``out`` as every CSV the product generates: each cell through
    :func:`csv_text`, RFC 4180 quoting, ``\\n`` line ends.

    A cell holding a comma, a quote, a line feed *or a carriage return* is quoted
    (Python's writer, left to itself with ``\\n`` line ends, would leave a bare CR
    unquoted, and every reader, a spreadsheet's too, starts a new row there).
    """

    class _LineEnds:
        def __init__(self, out: IO[str]) -> None:
            self.out = out

        def write(self, line: str) -> int:  # one call per row, ending in the "\r\n" set below
            return self.out.write(line[:-2] + "\n")

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(self._LineEnds(out), lineterminator="\r\n")

    def writerow(self, cells: Iterable[str]) -> None:
        """Write one row."""
        self._writer.writerow([csv_text(cell) for cell in cells])

    def writerows(self, rows: Iterable[Iterable[str]], *, checked: bool = False) -> None:
        """Write many rows (one call into the csv module); ``checked``: each cell went through :func:`csv_text`."""
        self._writer.writerows(rows if checked else ([csv_text(cell) for cell in cells] for cells in rows))


def cell_text(value: Any) -> str:
    """A listing's value as one cell of text: None empty, booleans ``true``/``false``, the rest ``str``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_listing(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], fmt: str, out: IO[str], *, key: str = "rows",
    trailer: Callable[[], Mapping[str, Any]] | None = None,
) -> int:  # fmt: skip
    """Write a listing's ``rows`` (only ``columns``) for programs; returns the count.

    ``json``: one object, the rows under ``key`` plus ``count`` and the
    ``trailer``'s fields (an empty listing is ``[]``); ``ndjson``: one object a
    line; ``csv``: a header, then one line a row (:class:`CsvWriter`). The
    command line's ``--format`` and the web's exports both write through here
    (by :func:`write_batches`, in batches of :data:`LISTING_BATCH` rows).
    Raises ValueError for another format.
    """
    values = (tuple(row.get(c) for c in columns) for row in rows)
    batches = iter(lambda: list(islice(values, LISTING_BATCH)), [])
    return write_batches(batches, columns, fmt, out, key=key, trailer=trailer)


LISTING_BATCH = 1000  # rows serialised (and written) at a time


def _csv_column(column: Sequence[Any]) -> list[str]:
    """One column's CSV cells, as :class:`CsvWriter` would write them: whole numbers as they are (never a formula)."""
    kinds = set(map(type, column))
    if kinds == {int}:
        return list(map(str, column))
    return list(map(csv_text, column if kinds == {str} else map(cell_text, column)))


def write_batches(
    batches: Iterable[Sequence[Sequence[Any]]], columns: Sequence[str], fmt: str, out: IO[str], *,
    key: str = "rows", trailer: Callable[[], Mapping[str, Any]] | None = None,
) -> int:  # fmt: skip
    """Write a listing given as batches of rows, each row its values in ``columns`` order; returns the count.

    The formats are :func:`write_listing`'s, byte for byte: values go out as
    they are (text, numbers, None, and for JSON nested dicts and lists; CSV
    cells through :func:`cell_text`). Each batch is serialised column by
    column (:func:`catalog.core.json_rows.json_objects`) or with one
    ``csv.writer.writerows``, and written in one ``out.write``, so an export
    of a million rows pays little Python per row.
    Raises ValueError for another format.
    """
    count = 0
    if fmt == "json":
        out.write('{"' + key + '": [')
        for rows in batches:
            if rows:
                out.write(("," if count else "") + "\n  " + json_objects(rows, columns, ",\n  ")[:-4])
                count += len(rows)
        extra = "".join(f", {json.dumps(k)}: {json.dumps(v)}" for k, v in (trailer() if trailer else {}).items())
        out.write(("\n" if count else "") + f'], "count": {count}{extra}}}\n')
    elif fmt == "ndjson":
        for rows in batches:
            if rows:
                out.write(json_objects(rows, columns, "\n"))
                count += len(rows)
    elif fmt == "csv":
        CsvWriter(out).writerow(columns)
        for rows in batches:
            chunk = io.StringIO()
            if len(set(map(len, rows))) == 1:  # column by column
                CsvWriter(chunk).writerows(zip(*map(_csv_column, zip(*rows))), checked=True)
            else:
                CsvWriter(chunk).writerows([[cell_text(value) for value in row] for row in rows])
            out.write(chunk.getvalue())
            count += len(rows)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return count


def csv_bytes(rows: Iterable[Sequence[Any]], precision: int = 6) -> bytes:
    """Serialise rows (the first one the header) as CSV: UTF-8 bytes, see :func:`csv_cell` and :class:`CsvWriter`.

    Raises ValidationError for no rows at all, a row that is not a list of cells, or a bad cell.
    """
    buffer = io.StringIO()
    writer = CsvWriter(buffer)
    count = 0
    for number, row in enumerate(rows, start=1):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            raise ValidationError(f"row {number} is a {type(row).__name__}, not a list of cells")
        writer.writerow([csv_cell(cell, precision, f"row {number}, column {col}") for col, cell in enumerate(row, 1)])
        count += 1
    if count == 0:
        raise ValidationError("rows are empty: a CSV needs at least its header row")
    return buffer.getvalue().encode("utf-8")
