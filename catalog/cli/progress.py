"""The progress bar of long work (verify, reconcile): on a terminal's stderr, fitted to its width."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from ..core.text import human_size

#: Cells of a progress line besides its label, bar and counts: "  [" "]  " "100%" "  " "00:00:00" "  ".
_BAR_CLUTTER = 3 + 3 + 4 + 2 + 8 + 2
_BYTES_CELLS = len(", 1023.9 MiB, 1023.9 MiB/s")


def _columns(stream: Any) -> int:
    """The width of the terminal ``stream`` writes to (COLUMNS wins, as for shutil); 80 if unknown."""
    try:
        return int(os.environ.get("COLUMNS", "")) or 80
    except ValueError:
        pass
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError):
        return 80


@contextmanager
def progress(label: str, files: int, size: int, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar (files and bytes, rate, ETA) on a terminal's stderr; nothing in pipes.

    ``files`` and ``size`` are what is expected (the catalog's rows); a walk
    that finds more (files not in the catalog) raises the shown total to what
    it has counted. The whole line fits the terminal's width, one cell spare (on a narrow one
    the byte counts go first, then the file count, then the bar shortens), so
    it redraws one line in place.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    seen = {"files": 0, "bytes": 0}
    start = time.monotonic()
    room = _columns(sys.stderr) - 1 - len(label) - _BAR_CLUTTER  # for the bar and the counts
    count_cells = len(f"{files}/{files} files")
    shown = next((n for n in (count_cells + _BYTES_CELLS, count_cells) if room - n >= 10), 0)  # a bar of 10 or more
    bar_width = max(5, min(30, room - shown))

    def describe_step(_: Any) -> str:
        rate = seen["bytes"] / max(time.monotonic() - start, 1e-6)
        count = f"{seen['files']}/{max(files, seen['files'])} files"  # files not in the catalog count too
        if len(count) > count_cells:  # the total grew a digit: the count alone, within the line's width
            count = f"{seen['files']} files"
        if shown > count_cells:
            return f"{count}, {human_size(seen['bytes'])}, {human_size(int(rate))}/s"
        return count if shown else ""

    with click.progressbar(length=max(size, 1) if size else max(files, 1), label=label, file=sys.stderr,
                           show_eta=True, item_show_func=describe_step, width=bar_width) as bar:  # fmt: skip

        def step(n_files: int, n_bytes: int) -> None:
            seen["files"] += n_files
            seen["bytes"] += n_bytes
            bar.update(n_bytes if size else n_files)

        yield step
