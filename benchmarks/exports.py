"""Exports at the speed of the database (issue 17 item 4), registered in run.py as the ``exports`` section.

One store per backend of N artifacts and their write events (run.py's
``_web_items`` through ``_bulk_chain``; N = 1,000,000, 100,000 with --quick).
Each figure is a whole process with standard output to /dev/null, and its
peak memory (VmHWM):

- ``ls --format ndjson`` and ``audit log --format ndjson`` against the raw
  driver (sqlite3 / psycopg) running the same SELECT of the same columns in
  the same order and writing ``json.dumps`` of each row (target ≤ 2×);
- ``ls --as-of`` after the last event (the same rows) against ``ls`` (≤ 3×);
- ``ls`` as csv and json, ``retention plan --format ndjson`` (for the record);
- ``retention plan --summary`` timed in-process like the lifecycle section (< 0.5 s).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from run import PEAK_PROBE as CATALOG_MAIN  # run.py's: the CLI, reporting its peak memory at exit
from run import PEAK_REPORT as PROBE

#: The baseline: the raw driver, the same SELECT, json.dumps per row (times as the driver gives them; PostgreSQL's
#: datetimes through str(), which makes json.dumps build an encoder per row there).
RAW = PROBE + """
import json, os
query, url = sys.argv[1], os.environ.get("RAW_PG")
columns = [c.strip() for c in query.split(" FROM ")[0].removeprefix("SELECT ").split(",")]
if url:
    import psycopg
    conn = psycopg.connect(url)
    cursor = conn.cursor(name="export")
    cursor.itersize = 5000
else:
    import sqlite3
    conn = sqlite3.connect(os.environ["RAW_SQLITE"])
    cursor = conn.cursor()
cursor.execute(query)
write = sys.stdout.write
if url:  # psycopg gives times as datetimes, which json.dumps needs told to write as text
    for row in cursor:
        write(json.dumps(dict(zip(columns, row)), default=str) + "\\n")
else:  # sqlite3 gives text, numbers and None
    for row in cursor:
        write(json.dumps(dict(zip(columns, row))) + "\\n")
"""

LS_SELECT = ("SELECT id, path, original_path, type, prefix, ext, created_at, recorded_at, size, sha256, status, "
             "retain_until, pair_id FROM artifacts ORDER BY created_at DESC, id DESC")  # fmt: skip
LOG_SELECT = "SELECT seq, at, action, artifact_id, path, status, actor, details, hash FROM events ORDER BY seq"
NOW = "2023-01-01"


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak resident MB) of one process, its output to /dev/null."""
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - start
    peak = [line for line in result.stderr.splitlines() if line.startswith("PEAK_KB ")]
    if result.returncode != 0 or not peak:
        raise SystemExit(f"benchmark command failed: {' '.join(argv[3:])}\n{result.stderr}")
    return took, int(peak[-1].split()[1]) / 1024


def exports(quick: bool, pg_url: str | None, keep: str | None = None) -> list[dict[str, object]]:
    """The figures above on SQLite and (given ``pg_url``) PostgreSQL; ``keep``: the SQLite store is built
    under that folder once and reused by later runs (1M rows take minutes to build)."""
    from run import _drop_pg_database, _fresh_pg_database  # run.py is the script

    rows = 100_000 if quick else 1_000_000
    rounds = 3 if quick else 1  # 1M rows: each run takes tens of seconds; the cases still interleave
    out: list[dict[str, object]] = []
    for backend, url in [("SQLite", None), ("PostgreSQL", pg_url)]:
        if backend == "PostgreSQL" and not url:
            out.append({"backend": backend, "skipped": "no --pg-url"})
            continue
        kept = Path(keep) / f"exports-{rows}" if keep and not url else None
        work = kept or Path(tempfile.mkdtemp(prefix="catalog-bench-"))
        database = _fresh_pg_database(url) if url else None
        try:
            out += _measure(backend, rows, rounds, work, database)
        except (Exception, SystemExit) as exc:  # one backend failing keeps the other's figures
            out.append({"backend": backend, "skipped": f"failed: {str(exc)[:300]}"})
        finally:
            if database:
                _drop_pg_database(url, database)  # type: ignore[arg-type]
            if kept is None:
                shutil.rmtree(work, ignore_errors=True)
    return out


def _measure(backend: str, rows: int, rounds: int, work: Path, database: str | None) -> list[dict[str, object]]:
    """The figures of one backend's store (built here, in ``work``; ``database``: PostgreSQL's URL, or None)."""
    from run import _bulk_chain, _web_items  # run.py is the script

    from catalog.core.settings import load_settings
    from catalog.core.store import Catalog
    from catalog.ops.retention_summary import plan_summary

    out: list[dict[str, object]] = []
    started = time.perf_counter()
    settings = load_settings(overrides={"base_dir": str(work / "store"), "catalog_url": database}, env={})
    if (work / "built").exists():  # kept from an earlier run
        catalog = Catalog.open(settings=settings)
    else:
        catalog, _, _ = Catalog.init(settings)
        _bulk_chain(catalog, _web_items(rows, {}))
        if database:  # as after any bulk load (PostgreSQL's manual, "Populating a Database": run ANALYZE afterwards);
            with catalog.db.engine.connect() as conn:  # else the plans depend on whether autovacuum came first
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        (work / "built").touch()
    built = time.perf_counter() - started
    summary_s = []
    for _ in range(5):
        start = time.perf_counter()
        plan_summary(catalog, now=datetime(2023, 1, 1, tzinfo=timezone.utc))
        summary_s.append(time.perf_counter() - start)
    catalog.close()
    env = dict(os.environ, CRYPTORUN_ARTIFACTS_DIR=str(work / "store"))
    env.pop("CRYPTORUN_CATALOG_URL", None)
    if database:
        env["CRYPTORUN_CATALOG_URL"] = database
        env["RAW_PG"] = database.replace("postgresql+psycopg://", "postgresql://")
    else:
        env["RAW_SQLITE"] = str(catalog.db.sqlite_path)
    cli = [sys.executable, "-c", CATALOG_MAIN]
    cases = {
        "raw ls (baseline)": [sys.executable, "-c", RAW, LS_SELECT],
        "ls ndjson": [*cli, "ls", "--format", "ndjson"],
        "ls csv": [*cli, "ls", "--format", "csv"],
        "ls json": [*cli, "ls", "--format", "json"],
        "ls --as-of ndjson": [*cli, "ls", "--as-of", "2099-01-01", "--format", "ndjson"],
        "raw audit log (baseline)": [sys.executable, "-c", RAW, LOG_SELECT],
        "audit log ndjson": [*cli, "audit", "log", "--format", "ndjson"],
        "retention plan ndjson": [*cli, "retention", "plan", "--now", NOW, "--format", "ndjson"],
        "retention plan --summary": [*cli, "retention", "plan", "--summary", "--now", NOW, "--format", "ndjson"],
    }
    if not database:  # one sequential read first: no case pays for bringing the catalog in from disk (1M: 2.3 GB)
        with open(catalog.db.sqlite_path, "rb") as handle:  # type: ignore[arg-type]
            while handle.read(1 << 24):
                pass
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(rounds):  # interleaved: each sees the same cache and the same neighbours
        for name, argv in cases.items():
            measured[name].append(_run(argv, env))
    seconds = {name: statistics.median(t for t, _ in runs) for name, runs in measured.items()}
    peaks = {name: max(p for _, p in runs) for name, runs in measured.items()}
    against = {"ls ndjson": ("raw ls (baseline)", 2.0), "audit log ndjson": ("raw audit log (baseline)", 2.0),
               "ls --as-of ndjson": ("ls ndjson", 3.0)}  # fmt: skip
    for name in cases:
        row: dict[str, object] = {"backend": backend, "rows": rows, "what": name, "seconds": seconds[name],
                                  "us_per_row": seconds[name] / rows * 1e6, "peak_mb": peaks[name],
                                  "build_s": built}  # fmt: skip
        if name in against:
            base, target = against[name]
            row.update(baseline=base, ratio=seconds[name] / seconds[base], target=target,
                       met=seconds[name] / seconds[base] <= target)  # fmt: skip
        out.append(row)
    p50 = statistics.median(summary_s)
    out.append({"backend": backend, "rows": rows, "what": "plan_summary() in-process", "seconds": p50,
                "us_per_row": p50 / rows * 1e6, "peak_mb": None, "build_s": built, "target": 0.5,
                "met": p50 < 0.5})  # fmt: skip
    return out


def print_rows(rows: list[dict[str, object]]) -> None:
    """The section's table."""
    print(f"{'exports (whole process, median)':<44}{'rows':>10}{'seconds':>9}{'us/row':>8}{'peak MB':>9}{'ratio':>8}  target")
    for row in rows:
        if "skipped" in row:
            print(f"{row['backend']:<44} skipped: {row['skipped']}")
            continue
        ratio = f"{row['ratio']:>7.2f}x" if "ratio" in row else f"{'':>8}"
        target = ""
        if "target" in row:
            bound = f"≤ {row['target']}x" if "ratio" in row else f"< {row['target']} s"
            target = f"  {bound} {'met' if row['met'] else 'NOT MET'}"
        peak = f"{row['peak_mb']:>9.1f}" if row["peak_mb"] is not None else f"{'':>9}"
        print(f"{str(row['backend'])[:2] + ' ' + str(row['what']):<44}{row['rows']:>10,}{row['seconds']:>9.3f}"
              f"{row['us_per_row']:>8.2f}{peak}{ratio}{target}")  # fmt: skip
