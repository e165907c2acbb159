"""One renderer for every listing: ``table``, ``json``, ``csv`` or ``ndjson``.

- ``json``: one object, the rows under a named key plus ``count`` (an empty
  listing is ``[]``, never null); written row by row.
- ``ndjson``: one JSON object per line, streamed.
- ``csv``: a header, then one line per row.
- ``table``: aligned columns for people; sizes human-readable; cut to the
  terminal's width on a terminal, plain when piped.
Machine formats carry exact values (bytes, full hashes, ISO-8601 UTC times).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

FORMATS = ("table", "json", "csv", "ndjson")


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
) -> int:
    """Write ``rows`` (only ``columns``) to ``out`` in ``fmt``; returns the count."""
    count = 0
    if fmt == "json":
        out.write('{"' + key + '": [')
        for row in rows:
            out.write(("," if count else "") + "\n  " + json.dumps({c: row.get(c) for c in columns}))
            count += 1
        out.write(("\n" if count else "") + f'], "count": {count}}}\n')
    elif fmt == "ndjson":
        for row in rows:
            out.write(json.dumps({c: row.get(c) for c in columns}) + "\n")
            count += 1
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
            count += 1
    elif fmt == "table":
        cells = table_cells or {}
        lines = [[cells.get(c, _cell)(row.get(c)) for c in columns] for row in rows]
        count = len(lines)
        _write_table(columns, lines, out, is_terminal)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return count


def _write_table(columns: Sequence[str], lines: list[list[str]], out: IO[str], is_terminal: bool) -> None:
    if not lines:
        out.write("(no rows)\n")
        return
    widths = [max(len(col), *(len(line[i]) for line in lines)) for i, col in enumerate(columns)]
    if is_terminal:
        budget = shutil.get_terminal_size().columns
        while sum(widths) + 2 * (len(widths) - 1) > budget and max(widths) > 8:
            widest = widths.index(max(widths))
            widths[widest] -= 1

    def fit(text: str, width: int) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    for line in [list(columns), *lines]:
        out.write("  ".join(fit(text, w).ljust(w) for text, w in zip(line, widths)).rstrip() + "\n")
