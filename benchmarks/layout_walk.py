"""Quick reconcile against a bare single-pass walk, for the flat and the day layout (issue 17, item 6).

Registered in run.py as the ``layout`` section; on its own:

    python benchmarks/layout_walk.py [--quick] [--profile flat|day]

Each store is made by bulk insert: files of 64 bytes, their rows inserted in
batches. Flat: 10 folders (``ledger/archived/2024-NN``, as run.py's
``integrity`` section); day: ``ledger/YYYY/MM/DD/`` partitions at 288 files a
day (a report every five minutes), so 100,000 files are 348 folders. Seven
interleaved rounds, medians; the baseline is an ``os.scandir`` + ``stat`` walk
of the same tree, every folder read once.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

PER_DAY = 288


def _store(root: Path, files: int, layout: str) -> object:
    from run import _bulk_store  # run.py's bulk builder, with this section's folders and times

    start = datetime(2024, 1, 1, tzinfo=timezone.utc)

    def place(n: int) -> tuple[str, datetime]:
        when = start + timedelta(seconds=n * 86400 // PER_DAY)
        return (f"ledger/archived/2024-{n % 10 + 1:02d}" if layout == "flat" else f"ledger/{when:%Y/%m/%d}"), when

    return _bulk_store(root, files, 64, 10, place)


def layout(quick: bool) -> list[dict[str, object]]:
    """Quick reconcile / bare walk at 100,000 files (10,000 with ``quick``), flat and day."""
    from run import _scan_walk  # the bare walk run.py's integrity section measures against

    from catalog.ops.reconcile import reconcile

    out: list[dict[str, object]] = []
    files = 10_000 if quick else 100_000
    for kind in ("flat", "day"):
        work = Path(tempfile.mkdtemp(prefix="catalog-bench-layout-"))
        try:
            catalog = _store(work, files, kind)
            walks, runs = [], []
            for _ in range(3 if quick else 7):  # interleaved: both see the same cache and the same neighbours
                start = time.perf_counter()
                seen = _scan_walk(work)
                walks.append(time.perf_counter() - start)
                start = time.perf_counter()
                report = reconcile(catalog, grace=0)  # type: ignore[arg-type]
                runs.append(time.perf_counter() - start)
                assert not report.drift and report.files == files <= seen, report.counts()
            took, base = statistics.median(runs), statistics.median(walks)
            folders = len({p.parent for p in work.rglob("*.json")})
            out.append({"name": f"quick reconcile, {files} files in {folders} folders ({kind}) / scandir + stat walk",
                        "seconds": took, "baseline": base, "ratio": took / base, "target": 1.5,
                        "met": took / base <= 1.5, "throughput": f"{files / took:.0f} files/s"})  # fmt: skip
            catalog.close()  # type: ignore[attr-defined]
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out


def print_rows(rows: list[dict[str, object]]) -> None:
    print(f"{'layout':<80}{'seconds':>9}{'baseline':>9}{'ratio':>8}{'target':>8}")
    for row in rows:
        print(f"{row['name']:<80}{row['seconds']:>9.3f}{row['baseline']:>9.3f}{row['ratio']:>7.2f}x"  # type: ignore[str-format]
              f"{row['target']:>7.1f}x {'met' if row['met'] else 'NOT MET'}  {row['throughput']}")  # fmt: skip


def _profile(kind: str, files: int) -> None:
    import cProfile
    import pstats

    from catalog.ops.reconcile import reconcile

    work = Path(tempfile.mkdtemp(prefix="catalog-bench-layout-"))
    try:
        catalog = _store(work, files, kind)
        reconcile(catalog, grace=0)  # type: ignore[arg-type]  # warm the cache
        profiler = cProfile.Profile()
        profiler.runcall(reconcile, catalog, grace=0)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
        catalog.close()  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if "--profile" in sys.argv:
        _profile(sys.argv[sys.argv.index("--profile") + 1], 10_000 if "--quick" in sys.argv else 100_000)
    else:
        print_rows(layout("--quick" in sys.argv))
