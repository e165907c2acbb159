"""One renderer for every listing: ``table``, ``json``, ``csv`` or ``ndjson``.

- ``json``: one object, the rows under a named key plus ``count`` and any
  trailing fields the listing adds (an empty listing is ``[]``, never null);
  written row by row.
- ``ndjson``: one JSON object per line, streamed.
- ``csv``: a header, then one line per row; text a spreadsheet would run as a
  formula (``=1+1``, ``@SUM(..)``, ``-X``) gets a leading ``'``, numbers stay
  numbers (:class:`catalog.core.formats.CsvWriter`, the writer of every CSV
  the product generates).
- ``table``: aligned columns for people; sizes human-readable; control
  characters in any cell shown escaped (:func:`catalog.core.text.printable`);
  widths in terminal cells (CJK and emoji take two). On a terminal it fits
  the width: each listing's identity columns (the path above all) are never
  cut or dropped, the other columns drop from the least important (see
  :data:`LAYOUTS`), and free text is cut with ``…`` to fill what is left;
  ``--wide`` (and any pipe) shows every column whole.
Machine formats carry exact values (bytes, full hashes, ISO-8601 UTC times).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import IO, TYPE_CHECKING, Any

import click

from ..core.formats import cell_text, write_batches, write_listing
from ..core.text import fit, human_size, pad, printable, width

if TYPE_CHECKING:
    from ..core.records import ArtifactRecord

TABLE_SAMPLE = 1000  # rows read before column widths are fixed
WIDE = "catalog.wide"  # key in ctx.meta: --wide was given (every table column, uncut)
MIN_CUT = 12  # a free-text column is cut no narrower than this (cells, with the "…")


@dataclass(frozen=True)
class Layout:
    """How a listing's table gives way on a narrow terminal.

    ``keep``: the identity columns, never cut or dropped; ``order``: the other
    columns from most to least important (the last ones drop first; columns
    not named come after them, in display order).
    """

    keep: tuple[str, ...]
    order: tuple[str, ...] = ()


#: Each listing's layout, by the key its rows go under in JSON (see :func:`show_rows`).
LAYOUTS: dict[str, Layout] = {
    "artifacts": Layout(("path",), ("status", "size", "sha256", "created_at", "type", "prefix")),
    "events": Layout(("seq", "path"), ("action", "at", "status", "actor", "details")),
    "holds": Layout(("id", "selector"), ("kind", "reason", "covers_now", "since", "until", "placed_at")),
    "plan": Layout(("path",), ("action", "reason", "expires_at", "age_days", "size", "status", "type")),
    "summary": Layout(("type", "action"), ("count", "reason", "size")),
    "findings": Layout(("id", "path"), ("class", "kind", "reason", "detail", "fixed", "at")),
    "failures": Layout(("path",), ("outcome", "reason")),
    "limits": Layout(("name",), ("level", "files", "max_files", "bytes", "max_bytes", "scope")),
    "stats": Layout(("name",), ("count", "bytes", "group")),
    "settings": Layout(("key", "value"), ("source",)),
    "runs": Layout(("run_id",), ("started_at", "checked", "ok", "failed", "missing", "duration_s", "scope")),
    "floors": Layout(("type",)),
    "users": Layout(("name",), ("role", "created_at", "created_by")),
}

#: Free-text columns: on a terminal these may be cut (with "…") rather than dropped.
CUTTABLE = frozenset({"reason", "details", "detail", "actor", "placed_by", "scope", "source", "fixed"})


def echo(message: str = "", err: bool = False) -> None:
    """One line of text for people (standard output, or standard error with ``err``), control characters escaped.

    A path or a reason can carry an escape sequence or a newline (a forged
    line); shown through :func:`catalog.core.text.printable`, it stays text.
    """
    click.echo(printable(message), err=err)


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
    wide: bool = False,
) -> int:
    """Write ``rows`` (only ``columns``) to ``out`` in ``fmt``; returns the count.

    A table on a terminal (``is_terminal``, unless ``wide``) fits its width by
    the listing's :data:`LAYOUTS` entry (by ``key``).
    """
    if fmt != "table":
        return write_listing(rows, columns, fmt, out, key=key, trailer=trailer)
    cells = table_cells or {}
    lines = ([printable(cells.get(c, cell_text)(row.get(c))) for c in columns] for row in rows)
    budget = shutil.get_terminal_size().columns if is_terminal and not wide else None
    return _write_table(columns, lines, out, budget, LAYOUTS.get(key))


def _fit_columns(columns: Sequence[str], widths: list[int], budget: int, layout: Layout | None) -> dict[int, int]:
    """Which columns a ``budget``-cell line shows, and how wide: {column index: cells}.

    The identity columns always, whole; then the others by importance while
    they fit; a free-text one that does not fit whole is cut to fill the rest.
    """
    keep = [c for c in (layout.keep if layout else ()) if c in columns] or [columns[0]]
    named = [c for c in (layout.order if layout else ()) if c in columns and c not in keep]
    ranked = named + [c for c in columns if c not in keep and c not in named]
    shown = {columns.index(c): widths[columns.index(c)] for c in keep}
    used = sum(shown.values()) + 2 * (len(shown) - 1)
    for name in ranked:
        i = columns.index(name)
        if used + 2 + widths[i] <= budget:
            shown[i] = widths[i]
        elif name in CUTTABLE and budget - used - 2 >= min(MIN_CUT, widths[i]):
            shown[i] = budget - used - 2
        else:
            continue
        used += 2 + shown[i]
    return shown


def _write_table(
    columns: Sequence[str], lines: Iterator[list[str]], out: IO[str], budget: int | None, layout: Layout | None
) -> int:
    """Column widths come from the first rows; the rest streams in those widths.

    With a ``budget`` (a terminal's width) the columns are chosen and cut by
    :func:`_fit_columns`; without one every column is shown whole.
    """
    head = list(islice(lines, TABLE_SAMPLE))
    if not head:
        out.write("(no rows)\n")
        return 0
    widths = [max(width(col), *(width(line[i]) for line in head)) for i, col in enumerate(columns)]
    shown = dict(enumerate(widths)) if budget is None else _fit_columns(columns, widths, budget, layout)
    order = sorted(shown)
    count = 0
    for line in chain([list(columns)], head, lines):
        cells = (line[i] if budget is None or columns[i] not in CUTTABLE else fit(line[i], shown[i]) for i in order)
        out.write("  ".join(pad(text, shown[i]) for text, i in zip(cells, order)).rstrip() + "\n")
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
    context = click.get_current_context(silent=True)
    wide = bool(context is not None and context.meta.get(WIDE))
    return render(rows, columns, fmt, out, key=key, table_cells=TABLE_CELLS, is_terminal=out.isatty(), trailer=trailer,
                  wide=wide)  # fmt: skip


def show_records(
    records: Iterable[ArtifactRecord], fmt: str, out: IO[str] | None = None,
    trailer: Callable[[], Mapping[str, Any]] | None = None,
) -> int:  # fmt: skip
    """Render artifact records (streamed): a short table for people, every field for programs."""
    columns = RECORD_COLUMNS if fmt == "table" else ALL_RECORD_COLUMNS
    return show_rows((r.to_dict() for r in records), columns, fmt, "artifacts", trailer, out)


def show_batches(
    batches: Iterable[Sequence[Sequence[Any]]], columns: Sequence[str], fmt: str, key: str,
    trailer: Callable[[], Mapping[str, Any]] | None = None, out: IO[str] | None = None,
) -> int:  # fmt: skip
    """Render an export given as batches of rows (each row its values in ``columns`` order) in a machine format
    (json, ndjson, csv: the same bytes as :func:`show_rows` writes for the same rows); returns the row count."""
    return write_batches(batches, columns, fmt, out or sys.stdout, key=key, trailer=trailer)


def show_dicts(items: Iterable[Any], columns: Sequence[str], fmt: str, key: str) -> int:
    """Render frozen records (anything with ``to_dict()``) as a listing."""
    return show_rows((item.to_dict() for item in items), columns, fmt, key)
