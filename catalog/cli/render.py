"""One renderer for every listing: ``table``, ``json``, ``csv`` or ``ndjson``.

- ``json``: one object, the rows under a named key plus ``count`` and any
  trailing fields the listing adds (an empty listing is ``[]``, never null);
  written row by row.
- ``ndjson``: one JSON object per line, streamed.
- ``csv``: a header, then one line per row; text a spreadsheet would run as a
  formula (``=1+1``, ``@SUM(..)``, ``-X``) gets a leading ``'``, numbers stay
  numbers (:class:`catalog.core.formats.CsvWriter`, the writer of every CSV
  the product generates).
- ``table``: aligned columns for people; sizes human-readable; cut to the
  terminal's width on a terminal, plain when piped.
Machine formats carry exact values (bytes, full hashes, ISO-8601 UTC times).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from typing import IO, TYPE_CHECKING, Any

from ..core.formats import CsvWriter

if TYPE_CHECKING:
    from ..core.records import ArtifactRecord

TABLE_SAMPLE = 1000  # rows read before column widths are fixed


def human_size(size: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: str,
    out: IO[str],
    *,
    key: str = "rows",
    table_cells: Mapping[str, Callable[[Any], str]] | None = None,
    is_terminal: bool = False,
    trailer: Callable[[], Mapping[str, Any]] | None = None,
) -> int:
    """Write ``rows`` (only ``columns``) to ``out`` in ``fmt``; returns the count."""
    count = 0
    if fmt == "json":
        out.write('{"' + key + '": [')
        for row in rows:
            out.write(("," if count else "") + "\n  " + json.dumps({c: row.get(c) for c in columns}))
            count += 1
        extra = "".join(f", {json.dumps(k)}: {json.dumps(v)}" for k, v in (trailer() if trailer else {}).items())
        out.write(("\n" if count else "") + f'], "count": {count}{extra}}}\n')
    elif fmt == "ndjson":
        for row in rows:
            out.write(json.dumps({c: row.get(c) for c in columns}) + "\n")
            count += 1
    elif fmt == "csv":
        writer = CsvWriter(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
            count += 1
    elif fmt == "table":
        cells = table_cells or {}
        count = _write_table(columns, ([cells.get(c, _cell)(row.get(c)) for c in columns] for row in rows), out, is_terminal)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return count


def _write_table(columns: Sequence[str], lines: Iterator[list[str]], out: IO[str], is_terminal: bool) -> int:
    """Column widths come from the first rows; the rest streams in those widths."""
    head = list(islice(lines, TABLE_SAMPLE))
    if not head:
        out.write("(no rows)\n")
        return 0
    widths = [max(len(col), *(len(line[i]) for line in head)) for i, col in enumerate(columns)]
    if is_terminal:
        budget = shutil.get_terminal_size().columns
        while sum(widths) + 2 * (len(widths) - 1) > budget and max(widths) > 8:
            widths[widths.index(max(widths))] -= 1

    def fit(text: str, width: int) -> str:
        return text if len(text) <= width or not is_terminal else text[: width - 1] + "…"

    count = 0
    for line in chain([list(columns)], head, lines):
        out.write("  ".join(fit(text, w).ljust(w) for text, w in zip(line, widths)).rstrip() + "\n")
        count += 1
    return count - 1


RECORD_COLUMNS = ("path", "type", "prefix", "created_at", "size", "sha256", "status")
ALL_RECORD_COLUMNS = (
    "id", "path", "original_path", "type", "prefix", "ext", "created_at", "recorded_at", "size", "sha256",
    "status", "retain_until", "pair_id",
)  # fmt: skip

#: How a table shows some columns to people (machine formats keep exact values).
TABLE_CELLS: dict[str, Callable[[Any], str]] = {
    "size": lambda n: "" if n is None else human_size(n),
    "bytes": human_size,
    "max_bytes": lambda n: "" if n is None else human_size(n),
    "sha256": lambda h: (h or "")[:12],
    "created_at": lambda t: (t or "").replace("T", " "),
}


def show_rows(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], fmt: str, key: str,
    trailer: Callable[[], Mapping[str, Any]] | None = None, out: IO[str] | None = None,
) -> int:  # fmt: skip
    """Render any listing to standard output (or ``out``) through the one renderer; returns the row count."""
    out = out or sys.stdout
    return render(rows, columns, fmt, out, key=key, table_cells=TABLE_CELLS, is_terminal=out.isatty(), trailer=trailer)


def show_records(
    records: Iterable[ArtifactRecord], fmt: str, out: IO[str] | None = None,
    trailer: Callable[[], Mapping[str, Any]] | None = None,
) -> int:  # fmt: skip
    """Render artifact records (streamed): a short table for people, every field for programs."""
    columns = RECORD_COLUMNS if fmt == "table" else ALL_RECORD_COLUMNS
    return show_rows((r.to_dict() for r in records), columns, fmt, "artifacts", trailer, out)


def show_dicts(items: Iterable[Any], columns: Sequence[str], fmt: str, key: str) -> int:
    """Render frozen records (anything with ``to_dict()``) as a listing."""
    return show_rows((item.to_dict() for item in items), columns, fmt, key)
