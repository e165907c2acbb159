"""Reproducible speed figures for catalog, each a ratio against a baseline measured in the same run.

    python benchmarks/run.py                        # full run (about 15 minutes: it builds a store of 1M files)
    python benchmarks/run.py --quick                # fewer repetitions, small catalogs (under a minute)
    python benchmarks/run.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
                                                    # adds PostgreSQL to the write, cycle, writers, proofs, exports figures
    python benchmarks/run.py --only durability      # one section (repeatable)
    python benchmarks/run.py --only web --keep /tmp/webbench   # the web pages at 1M rows; the stores built once

Prints a table and writes benchmarks/results/latest.json. These machines are
shared and noisy: only ratios within one run mean anything, and no test ever
asserts a time.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the catalog command of the interpreter running this script
CATALOG = [shutil.which("catalog", path=str(Path(sys.executable).parent)) or "catalog"]


def wall(argv: list[str], repeat: int, env: dict[str, str], input_for: callable = None) -> float:  # type: ignore[valid-type]
    """Median wall time of running ``argv`` ``repeat`` times (seconds)."""
    times = []
    for n in range(repeat):
        args = input_for(n) if input_for else argv
        start = time.perf_counter()
        result = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"benchmark command failed: {' '.join(args)}\n{result.stderr.decode()}")
    return statistics.median(times)


def startup(repeat: int) -> list[dict[str, object]]:
    """`catalog --help`, `ls` and `put` against `python -c 'import sqlalchemy'`."""
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    env = dict(os.environ, CRYPTORUN_ARTIFACTS_DIR=str(work / "store"))
    env.pop("CRYPTORUN_CATALOG_URL", None)
    try:
        subprocess.run([*CATALOG, "init"], env=env, check=True, capture_output=True, cwd=work)
        sample = work / "sample.json"
        sample.write_text(json.dumps({"positions": [{"symbol": "BTC-USD", "quantity": 1.5}] * 20}))
        from catalog.cryptorun.writer import AtomicWriter

        with AtomicWriter(work / "store") as writer:  # a store with some rows, so ls has work to do
            for n in range(200):
                writer.write_bytes("ledger", f"seed{n}", sample.read_bytes(), "json")
        baseline = wall([sys.executable, "-c", "import sqlalchemy"], repeat, env)
        rows = [{"name": "python -c 'import sqlalchemy' (baseline)", "seconds": baseline, "ratio": 1.0}]
        cases = {
            "catalog --help": lambda n: [*CATALOG, "--help"],
            "catalog ls --limit 50": lambda n: [*CATALOG, "ls", "--limit", "50"],
            "catalog put (4 KiB JSON)": lambda n: [*CATALOG, "put", str(sample), "--type", "ledger", "--prefix", f"b{n}"],
        }
        for name, make in cases.items():
            seconds = wall([], repeat, env, make)
            rows.append({"name": name, "seconds": seconds, "ratio": seconds / baseline})
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bulk_store(root: Path, files: int, size: int, folders: int,
                place: Callable[[int], tuple[str, datetime]] | None = None) -> object:  # fmt: skip
    """A store of ``files`` files of ``size`` bytes over ``folders`` ledger folders, catalogued by bulk insert.

    ``place(n)``: the folder and time of file ``n`` (default: 2024-01-01, the ``folders`` folders in turn).
    """
    from catalog.core.schema import ARTIFACTS
    from catalog.core.settings import load_settings
    from catalog.core.store import Catalog

    def spread(n: int) -> tuple[str, datetime]:
        folder = "ledger" if folders == 1 else f"ledger/archived/2024-{n % folders + 1:02d}"
        return folder, datetime(2024, 1, 1, tzinfo=timezone.utc)

    settings = load_settings(overrides={"base_dir": str(root)}, env={})
    catalog, _, _ = Catalog.init(settings)
    rows, payload, made = [], os.urandom(size), set()
    for n in range(files):
        folder, when = (place or spread)(n)
        if folder not in made:
            (root / folder).mkdir(parents=True, exist_ok=True)
            made.add(folder)
        data = payload[:-8] + n.to_bytes(8, "big")
        path = f"{folder}/{when:%Y%m%d-%H%M%S}-b{n}-ledger.json"
        (root / path).write_bytes(data)
        rows.append({"path": path, "original_path": path, "folder": folder, "type": "ledger", "prefix": f"b{n}",
                     "ext": "json", "created_at": when, "recorded_at": when, "size": len(data),
                     "sha256": hashlib.sha256(data).hexdigest(), "status": "active", "retain_until": None})  # fmt: skip
        if len(rows) == 5000 or n == files - 1:
            with catalog.db.write() as conn:
                conn.execute(ARTIFACTS.insert(), rows)
            rows = []
    return catalog


def _scan_walk(root: Path) -> int:
    """The bare walk: every folder read once with os.scandir, every regular file stat-ed."""
    seen, pending = 0, [str(root)]
    while pending:
        with os.scandir(pending.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    entry.stat(follow_symlinks=False)
                    seen += 1
    return seen


def integrity(quick: bool) -> list[dict[str, object]]:
    """verify against hashlib over the same files; quick reconcile against a bare scandir + stat walk."""
    from catalog.ops.reconcile import reconcile
    from catalog.ops.verify import Scope, verify

    out = []
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    try:
        count, size = (40, 1024**2) if quick else (200, 1024**2)
        catalog = _bulk_store(work / "verify", count, size, 1)
        paths = sorted((work / "verify" / "ledger").iterdir())

        def hash_all() -> None:
            for path in paths:
                hashlib.sha256(path.read_bytes()).hexdigest()

        times: dict[object, list[float]] = {"base": [], 1: [], 2: []}
        for _ in range(3 if quick else 5):  # interleaved: each sees the same page cache and neighbours
            for key in times:
                start = time.perf_counter()
                if key == "base":
                    hash_all()
                else:
                    report = verify(catalog, Scope(), workers=key)  # type: ignore[arg-type]
                    assert report.clean and report.checked == count
                times[key].append(time.perf_counter() - start)
        base = statistics.median(times["base"])
        for workers in (1, 2):
            took = statistics.median(times[workers])
            out.append({"name": f"verify {count} x 1 MiB, {workers} worker(s) / hashlib sha256 of the same files",
                        "seconds": took, "baseline": base, "ratio": took / base,
                        "throughput": f"{count * size / took / 1024**2:.0f} MiB/s vs {count * size / base / 1024**2:.0f} MiB/s"})  # fmt: skip
        catalog.close()

        files = 10_000 if quick else 100_000
        catalog = _bulk_store(work / "walk", files, 64, 10)
        walks, runs = [], []
        for _ in range(3 if quick else 7):  # interleaved, so both see the same cache and the same neighbours
            start = time.perf_counter()
            seen = _scan_walk(work / "walk")
            walks.append(time.perf_counter() - start)
            start = time.perf_counter()
            report = reconcile(catalog, grace=0)
            runs.append(time.perf_counter() - start)
            assert not report.drift and report.files == files <= seen, report.counts()  # seen: + the catalog files
        took, base = statistics.median(runs), statistics.median(walks)
        out.append({"name": f"quick reconcile of {files} files / os.scandir + stat walk", "seconds": took,
                    "baseline": base, "ratio": took / base, "throughput": f"{files / took:.0f} files/s"})  # fmt: skip
        catalog.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _bulk_rows(root: Path, rows: int) -> object:
    """A catalog of ``rows`` ledger/explain rows spread over 2020-2024 and 20 folders (no files)."""
    from datetime import datetime, timedelta, timezone

    from catalog.core.schema import ARTIFACTS
    from catalog.core.settings import load_settings
    from catalog.core.store import Catalog

    catalog, _, _ = Catalog.init(load_settings(overrides={"base_dir": str(root)}, env={}))
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    batch = []
    for n in range(rows):
        kind = "ledger" if n % 2 else "explain"
        when = start + timedelta(minutes=n * (5 * 365 * 24 * 60 // rows))
        folder = f"{kind}/archived/{n % 10:02d}" if kind == "ledger" else kind
        path = f"{folder}/{when:%Y%m%d-%H%M%S}-r{n}-{kind}.json"
        batch.append({"path": path, "original_path": path, "folder": folder, "type": kind, "prefix": f"r{n}",
                      "ext": "json", "created_at": when, "recorded_at": when, "size": 1000 + n % 5000,
                      "sha256": f"{n:064x}", "status": "active", "retain_until": None})  # fmt: skip
        if len(batch) == 20_000 or n == rows - 1:
            with catalog.db.write() as conn:
                conn.execute(ARTIFACTS.insert(), batch)
            batch = []
    return catalog


def lifecycle(quick: bool) -> list[dict[str, object]]:
    """retention plan and limits over catalogs of growing size, and a directory scan answering the same."""
    from datetime import datetime, timezone

    from catalog.ops.limits import limits
    from catalog.ops.retention import plan
    from catalog.ops.retention_summary import plan_summary

    out = []
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    now = datetime(2023, 1, 1, tzinfo=timezone.utc)
    try:
        for rows in (10_000, 30_000) if quick else (10_000, 100_000, 1_000_000):
            catalog = _bulk_rows(work / f"rows{rows}", rows)
            start = time.perf_counter()
            planned = sum(1 for _ in plan(catalog, now=now))
            plan_s = time.perf_counter() - start
            start = time.perf_counter()
            summarised = sum(row.count for row in plan_summary(catalog, now=now))
            summary_s = time.perf_counter() - start
            assert summarised == planned, (summarised, planned)
            start = time.perf_counter()
            limits(catalog)
            limits_s = time.perf_counter() - start
            scan_s = None
            if rows <= 100_000:  # the same questions answered by listing real files
                tree = _bulk_store(work / f"files{rows}", rows, 16, 20).base_dir
                start = time.perf_counter()
                per_folder: dict[str, list[int]] = {}
                expired = 0
                for dirpath, _, names in os.walk(tree):
                    for name in names:
                        info = os.stat(os.path.join(dirpath, name))
                        entry = per_folder.setdefault(dirpath, [0, 0])
                        entry[0] += 1
                        entry[1] += info.st_size
                        expired += name[:8] < "20221003"
                scan_s = time.perf_counter() - start
            out.append({"rows": rows, "plan_s": plan_s, "planned": planned, "summary_s": summary_s, "limits_s": limits_s, "scan_s": scan_s})
            catalog.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


# -- durability: one write against the physical floor ----------------------------------

SIZES = {"4 KiB": 4 * 1024, "1 MiB": 1024**2, "10 MiB": 10 * 1024**2}


def _floor_db(path: Path) -> object:
    """A bare sqlite3 database at the catalog's default durability (WAL, synchronous=FULL)."""
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, sha256 TEXT)")
    return db


def floor_write(folder: Path, name: str, data: bytes, db: object) -> None:
    """The physical floor: temp file, write, fsync, rename, fsync the folder; then one bare sqlite3 commit."""
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, folder / name)
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    db.execute("BEGIN")  # type: ignore[attr-defined]
    db.execute("INSERT INTO files VALUES (?, ?, ?)", (name, len(data), ""))  # type: ignore[attr-defined]
    db.execute("COMMIT")  # type: ignore[attr-defined]


SYSCALL_PROBE = """
import os, sys, time
from pathlib import Path
from sqlalchemy import event
sys.path.insert(0, {here!r})
import run
from catalog.core.settings import load_settings
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
work = Path({work!r})
catalog = Catalog(load_settings(overrides={{"base_dir": str(work / "store")}}, env={{}}))
writer = AtomicWriter(catalog=catalog)
commits = []
event.listen(catalog.db.engine, "commit", lambda conn: commits.append(conn.get_execution_options().get("catalog_write", False)))
db = run._floor_db(work / "floor.sqlite")
data = os.urandom(4096)
writer.write_bytes("ledger", "warm", data, "parquet", check=False)  # steady state: folder made, connection open
run.floor_write(work / "floor", "warm.bin", data, db)
commits.clear()
print("MARK ours", flush=True)
for n in range({n}):
    writer.write_bytes("ledger", f"s{{n}}", data, "parquet", check=False)
print("MARK floor", flush=True)
for n in range({n}):
    run.floor_write(work / "floor", f"s{{n}}.bin", data, db)
print("MARK end", sum(commits), len(commits) - sum(commits), flush=True)
"""


def syscalls(quick: bool) -> dict[str, object]:
    """fsyncs of files and folders per write, and commits, counted by strace (Linux; skipped without it)."""
    import re

    strace = shutil.which("strace")
    if strace is None:
        return {"skipped": "strace is not installed"}
    from catalog.core.settings import load_settings
    from catalog.core.store import Catalog

    n = 10 if quick else 50
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    try:
        Catalog.init(load_settings(overrides={"base_dir": str(work / "store")}, env={}))[0].close()
        (work / "floor").mkdir()
        script = SYSCALL_PROBE.format(here=str(HERE), work=str(work), n=n)
        result = subprocess.run([strace, "-f", "-y", "-e", "trace=fsync,fdatasync,write", "-o", str(work / "trace"),
                                 sys.executable, "-c", script], capture_output=True, text=True)  # fmt: skip
        if result.returncode != 0:
            return {"skipped": f"strace failed: {result.stderr.strip().splitlines()[-1:]}"}
        write_commits, read_commits = map(int, result.stdout.split("MARK end")[1].split()[:2])
        phase, counts = None, {"ours": {}, "floor": {}}
        for line in (work / "trace").read_text().splitlines():
            mark = re.search(r"write\(1<[^>]*>, \"MARK (\w+)", line) or re.search(r"write\(1, \"MARK (\w+)", line)
            if mark:
                phase = mark[1]
                continue
            found = re.search(r"\b(fsync|fdatasync)\(\d+<([^>]*)>", line)
            if found is None or phase not in counts:
                continue
            target = found[2]
            kind = ("folder" if os.path.isdir(target) else
                    "catalog" if re.search(r"\.sqlite(-wal|-journal)?$", target) else "file")  # fmt: skip
            counts[phase][kind] = counts[phase].get(kind, 0) + 1
        per = lambda d: {k: d.get(k, 0) / n for k in ("file", "folder", "catalog")}  # noqa: E731
        return {"writes": n, "ours": {**per(counts["ours"]), "commits": write_commits / n, "read_commits": read_commits / n},
                "floor": {**per(counts["floor"]), "commits": 1.0, "read_commits": 0.0}}  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- a scanner cycle as one commit (issue 17) ----------------------------------------------


def _cycle_files(work: Path) -> list[tuple[str, str, bytes]]:
    """The seven files of one demo cycle (type, ext, bytes), written once in a scratch store and read back."""
    from catalog.core.settings import load_settings
    from catalog.core.store import Catalog
    from catalog.cryptorun.demo import run_demo

    catalog, _, _ = Catalog.init(load_settings(overrides={"base_dir": str(work / "scratch")}, env={}))
    files = [(r.type, r.ext, (work / "scratch" / r.path).read_bytes()) for r in run_demo(catalog, assets=100, seed=1)]
    catalog.close()
    return files


def _cycle_models(n: int) -> tuple[object, ...]:
    """The demo cycle's models for round ``n`` (made before the clock starts): report, metrics, spans, portfolio, trades."""
    import random

    from catalog.cryptorun import demo

    rng = random.Random(n)
    report = demo.make_report(100, seed=n)
    metrics, spans = demo.make_health(report, rng)
    return report, metrics, spans, demo.make_portfolio(report, rng), demo.make_trades(report, rng)


def _typed_cycle(writer: object, models: tuple[object, ...], n: int, batched: bool) -> None:
    """The demo's cycle through the typed families (models validated and serialised): in a batch, or call by call."""
    report, metrics, spans, portfolio, trades = models

    def write(w: object) -> None:
        w.write_explain_report(report, f"t{n}.scan")  # type: ignore[attr-defined]
        w.write_portfolio(f"t{n}.portfolio", portfolio)  # type: ignore[attr-defined]
        w.write_executions(f"t{n}.executions", trades)  # type: ignore[attr-defined]
        w.write_health_metrics(f"t{n}.metrics", metrics)  # type: ignore[attr-defined]
        w.write_traces(f"t{n}.traces", spans)  # type: ignore[attr-defined]
        w.snapshot_config(f"t{n}.active")  # type: ignore[attr-defined]

    if batched:
        with writer.batch() as b:  # type: ignore[attr-defined]
            write(b)
    else:
        write(writer)


def cycle(quick: bool, pg_url: str | None) -> list[dict[str, object]]:
    """A 7-artifact scanner cycle with ``batch()`` against the same 7 files written one by one, interleaved rounds.

    The files are the demo cycle's bytes (explain JSON and CSV, portfolio, 1,000 executions, health metrics,
    traces, a config snapshot: about 170 KB), written with ``write_bytes`` (no parse check: storage only).
    Then the whole typed cycle (models validated and serialised) with and without a batch.
    """
    from catalog.core.settings import load_settings
    from catalog.core.store import Catalog
    from catalog.cryptorun.writer import AtomicWriter

    rounds = 6 if quick else 40
    out = []
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    try:
        files = _cycle_files(work)
        for backend, url in [("SQLite", None), ("PostgreSQL", pg_url)]:
            if backend == "PostgreSQL" and not url:
                out.append({"backend": backend, "skipped": "no --pg-url"})
                continue
            database = _fresh_pg_database(url) if url else None
            try:
                settings = load_settings(overrides={"base_dir": str(work / backend), "catalog_url": database}, env={})
                catalog, _, _ = Catalog.init(settings)
                writer = AtomicWriter(catalog=catalog)

                def singles(n: int, models: object, writer: AtomicWriter = writer) -> None:
                    for k, (kind, ext, data) in enumerate(files):
                        writer.write_bytes(kind, f"s{n}.{k}", data, ext, check=False)

                def batched(n: int, models: object, writer: AtomicWriter = writer) -> None:
                    with writer.batch() as b:
                        for k, (kind, ext, data) in enumerate(files):
                            b.write_bytes(kind, f"b{n}.{k}", data, ext, check=False)

                def typed(n: int, models: object, writer: AtomicWriter = writer) -> None:
                    _typed_cycle(writer, models, n, False)

                def typed_batch(n: int, models: object, writer: AtomicWriter = writer) -> None:
                    _typed_cycle(writer, models, 10**6 + n, True)

                cases = {"7 single writes": singles, "batch()": batched, "typed cycle, call by call": typed,
                         "typed cycle, batch()": typed_batch}  # fmt: skip
                times: dict[str, list[float]] = {name: [] for name in cases}
                for n in range(-2, rounds):  # two untimed rounds first; the order alternates round by round
                    models = _cycle_models(n)
                    order = list(cases) if n % 2 == 0 else list(reversed(cases))
                    for name in order:
                        start = time.perf_counter()
                        cases[name](n + 2, models)
                        if n >= 0:
                            times[name].append(time.perf_counter() - start)
                catalog.close()
                p50 = {name: statistics.median(t) for name, t in times.items()}
                ratio = p50["batch()"] / p50["7 single writes"]
                out.append({"backend": backend, "rounds": rounds, "files": len(files),
                            "bytes": sum(len(d) for _, _, d in files), "singles_ms": p50["7 single writes"] * 1000,
                            "batch_ms": p50["batch()"] * 1000, "ratio": ratio, "target": 0.5, "met": ratio <= 0.5,
                            "typed_singles_ms": p50["typed cycle, call by call"] * 1000,
                            "typed_batch_ms": p50["typed cycle, batch()"] * 1000,
                            "typed_ratio": p50["typed cycle, batch()"] / p50["typed cycle, call by call"]})  # fmt: skip
            finally:
                if database:
                    _drop_pg_database(url, database)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


# -- many writers -----------------------------------------------------------------------

WRITER = """
import json, os, sys, time
from catalog.cryptorun.writer import AtomicWriter
count = int(sys.argv[1])
ok, errors = 0, []
with AtomicWriter() as writer:
    body = {"positions": [{"symbol": "BTC-USD", "quantity": 1.5, "pad": "x" * 40}] * 40}
    print("ready", flush=True)
    sys.stdin.readline()  # the gun: every writer is past start-up
    for n in range(count):
        try:
            writer.write_json("ledger", f"w{os.getpid()}-{n}", body)
            ok += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({"ok": ok, "errors": errors, "end": time.time()}))
"""


def _writers_run(env: dict[str, str], processes: int, count: int) -> dict[str, object]:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(count)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(processes)]  # fmt: skip
    for proc in procs:  # interpreter start-up (seconds on a loaded machine) is not part of the figure
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n", proc.stderr.read()  # type: ignore[union-attr]
    start_at = time.time()
    for proc in procs:
        proc.stdin.write("go\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
    reports, failures = [], []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            failures.append(err.strip().splitlines()[-1:] or [f"exit {proc.returncode}"])
            continue
        reports.append(json.loads(out))
    ok = sum(r["ok"] for r in reports)
    errors = sum(len(r["errors"]) for r in reports) + len(failures)
    seconds = max(r["end"] for r in reports) - start_at if reports else float("nan")
    return {"processes": processes, "writes": ok, "errors": errors, "seconds": seconds, "per_second": ok / seconds,
            "first_error": next((r["errors"][0] for r in reports if r["errors"]), failures[0] if failures else None)}  # fmt: skip


def writers(quick: bool, pg_url: str | None) -> list[dict[str, object]]:
    """16 writer processes against one, on SQLite and (given a server) PostgreSQL; then count what landed.

    Rounds interleave (one writer, 16 grouped, 16 alone; again): this machine's
    speed drifts by 2× within minutes, so each round's 16 are compared with
    that round's one, and the figure is the median of the rounds' ratios
    (``ratios`` lists them all). Counts of writes, errors and lost are summed.
    """
    out = []
    count, rounds = (25, 1) if quick else (100, 3)
    backends = [("sqlite", None)] + ([("postgresql", pg_url)] if pg_url else [])
    cleanups: list[Callable[[], None]] = []  # each round's store and database, removed once all rounds have run
    try:
        for backend, url in backends:
            runs: dict[tuple[int, bool], list[dict[str, object]]] = {}
            for _ in range(rounds):
                for processes, grouped in ((1, True), (16, True), (16, False)):
                    done = _writers_round(url, processes, grouped, count, cleanups)
                    runs.setdefault((processes, grouped), []).append(done)
            for (processes, grouped), all_done in runs.items():
                ratios = [r["per_second"] / one["per_second"] for r, one in zip(all_done, runs[(1, True)])]  # type: ignore[operator]
                out.append({
                    "backend": backend, "processes": processes, "grouped": grouped, "rounds": rounds,
                    "per_second": statistics.median(r["per_second"] for r in all_done),  # type: ignore[misc]
                    "ratio": statistics.median(ratios), "ratios": [round(x, 2) for x in ratios],
                    **{k: sum(r[k] for r in all_done) for k in ("writes", "errors", "expected", "rows", "files", "lost", "drift")},  # type: ignore[misc]
                    "chain_ok": all(r["chain_ok"] for r in all_done),
                    "first_error": next((r["first_error"] for r in all_done if r["first_error"]), None),
                })  # fmt: skip
    finally:
        for cleanup in cleanups:
            cleanup()
    if not pg_url:
        out.append({"backend": "postgresql", "skipped": "no server: pass --pg-url (a URL where databases may be created)"})
    return out


def _writers_round(url: str | None, processes: int, grouped: bool, count: int,
                   cleanups: list[Callable[[], None]]) -> dict[str, object]:  # fmt: skip
    """One run of ``processes`` writers of ``count`` writes each, in a fresh store (and PostgreSQL database).

    The store (and database) is removed by ``cleanups``, after every round: on ext4 without a journal (this
    machine's disk) every file made within a minute or so of many being removed pays a scan past the freed inodes
    (the kernel's ``recently_deleted``), so removing a round's 1,600 files at once slowed whichever round came next.
    """
    from catalog.core.group_commit import queue_folder
    from catalog.core.settings import load_settings
    from catalog.core.store import Catalog
    from catalog.ops.query import iter_artifacts
    from catalog.ops.reconcile import reconcile

    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    db_url = _fresh_pg_database(url) if url else None
    try:
        settings = load_settings(overrides={"base_dir": str(work / "store"), "catalog_url": db_url}, env={})
        Catalog.init(settings)[0].close()
        env = dict(os.environ, CRYPTORUN_ARTIFACTS_DIR=str(work / "store"))
        env.pop("CRYPTORUN_CATALOG_URL", None)
        if db_url:
            env["CRYPTORUN_CATALOG_URL"] = db_url
        if not grouped:  # a queue folder others may write in turns grouping off: each write commits alone
            folder = queue_folder(work / "store")
            folder.mkdir(mode=0o700)
            folder.chmod(0o777)
        run = _writers_run(env, processes, count)
        with Catalog(settings) as catalog:
            rows = sum(1 for _ in iter_artifacts(catalog))
            report = reconcile(catalog, deep=True, grace=0)
            run.update(expected=processes * count, rows=rows, files=report.files, drift=len(report.drift),
                       lost=processes * count - min(rows, report.files), chain_ok=catalog.audit_verify().ok)  # fmt: skip
        return run
    finally:
        shutil.rmtree(queue_folder(work / "store"), ignore_errors=True)
        cleanups.append(lambda: shutil.rmtree(work, ignore_errors=True))
        if db_url:
            cleanups.append(lambda: _drop_pg_database(url, db_url))  # type: ignore[arg-type]


def _fresh_pg_database(admin_url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"catalog_bench_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(admin_url: str, url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


# -- memory -----------------------------------------------------------------------------

#: Prepended to a script: at exit it writes its peak resident memory (``PEAK_KB n``) to standard error.
PEAK_REPORT = """
import atexit, sys
def report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write(f"PEAK_KB {peak}\\n")
atexit.register(report)
"""
PEAK_PROBE = PEAK_REPORT + """sys.argv = ["catalog", *sys.argv[1:]]
from catalog.cli import main
main()
"""


def _peak_rss(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak resident MB, seconds) of one catalog command: the kernel's high-water mark of its own memory."""
    start = time.perf_counter()
    argv = [sys.executable, "-c", PEAK_PROBE, *args]
    result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - start
    peak = [line for line in result.stderr.splitlines() if line.startswith("PEAK_KB ")]
    if result.returncode not in (0, 1) or not peak:  # 1: findings, still a full run
        raise SystemExit(f"benchmark command failed: catalog {' '.join(args)}\n{result.stderr}")
    return int(peak[-1].split()[1]) / 1024, took


def memory(quick: bool) -> list[dict[str, object]]:
    """Peak RSS of reconcile, verify, retention plan and ls --format ndjson as the catalog grows."""
    out = []
    sizes = (2_000, 20_000) if quick else (10_000, 100_000, 1_000_000)
    for rows in sizes:
        work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
        try:
            _bulk_store(work / "store", rows, 64, max(1, rows // 10_000)).close()
            env = dict(os.environ, CRYPTORUN_ARTIFACTS_DIR=str(work / "store"))
            env.pop("CRYPTORUN_CATALOG_URL", None)
            row: dict[str, object] = {"rows": rows}
            row["catalog db current (baseline)"] = _peak_rss(["db", "current"], env)
            cases = {
                "reconcile": ["reconcile", "--grace", "0"],
                "verify": ["verify"],
                "retention plan": ["retention", "plan", "--now", "2099-01-01", "--format", "ndjson"],
                "ls --format ndjson": ["ls", "--format", "ndjson"],
            }
            for name, args in cases.items():
                row[name] = _peak_rss(args, env)
            out.append(row)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return out


def _bulk_chain(catalog: object, items: Iterator[tuple[dict[str, object] | None, tuple[object, ...]]],
                batch: int = 20_000) -> int:
    """Append events (chained, each with its Merkle nodes) and their artifact rows to ``catalog`` by bulk insert.

    Benchmark-only: ``items`` gives ``(artifact row or None, (at, action,
    artifact_id, path, status, actor, details))`` in log order; the rows and
    events are inserted directly and :class:`catalog.core.tree.Frontier`
    computes the nodes as the unit of work would, in batches, then the chain
    head is moved to the last event. Returns the last seq.
    """
    from sqlalchemy import select

    from catalog.core import chain, tree
    from catalog.core.schema import ARTIFACTS, CHAIN_HEAD, EVENTS, MERKLE_NODES

    frontier = tree.Frontier()
    with catalog.read() as conn:  # type: ignore[attr-defined]  # the events already recorded: the tree grows from them
        first = conn.execute(select(EVENTS.c.seq, EVENTS.c.text, EVENTS.c.hash).order_by(EVENTS.c.seq)).all()
    for row in first:
        frontier.add(tree.leaf(row.text))
    seq, last = first[-1].seq, first[-1].hash
    rows: list[dict[str, object]] = []
    links: list[dict[str, object]] = []
    nodes: list[dict[str, object]] = []

    def flush() -> None:
        with catalog.db.write() as conn:  # type: ignore[attr-defined]
            if rows:
                conn.execute(ARTIFACTS.insert(), rows)
            conn.execute(EVENTS.insert(), links)
            conn.execute(MERKLE_NODES.insert(), nodes)
            conn.execute(CHAIN_HEAD.update().where(CHAIN_HEAD.c.id == 1).values(seq=seq, hash=last))
        for done in (rows, links, nodes):
            done.clear()

    for artifact, event in items:
        seq += 1
        link = chain.next_link(last, seq, *event)  # type: ignore[arg-type]
        last = link["hash"]
        links.append(link)
        if artifact is not None:
            rows.append(artifact)
        nodes.extend({"level": lv, "idx": ix, "hash": h} for lv, ix, h in frontier.add(tree.leaf(link["text"])))
        if len(links) == batch:
            flush()
    if links:
        flush()
    return seq


def _bulk_log(root: Path, events: int, pg_url: str | None = None) -> object:
    """A store whose audit log has ``events`` events (chained, each with its Merkle nodes), by bulk insert."""
    from datetime import datetime, timezone

    from sqlalchemy import func, select

    from catalog.core.schema import EVENTS
    from catalog.core.settings import load_settings
    from catalog.core.store import Catalog

    settings = load_settings(overrides={"base_dir": str(root), "catalog_url": pg_url}, env={})
    catalog, _, _ = Catalog.init(settings)
    with catalog.read() as conn:  # the events init recorded
        recorded = conn.execute(select(func.max(EVENTS.c.seq))).scalar_one()
    when = datetime.now(timezone.utc)  # after init's events: the log's clock never runs backwards
    items = ((None, (when, "checkpoint", None, None, None, "bench", {"file": f"n{seq}"}))
             for seq in range(recorded + 1, events + 1))  # fmt: skip
    _bulk_chain(catalog, items)
    return catalog


def proofs(quick: bool, pg_url: str | None) -> list[dict[str, object]]:
    """Inclusion and consistency proofs (and a root) at 1M events, against one SELECT of an event by its seq."""
    import random

    from sqlalchemy import select

    from catalog.core import merkle, tree
    from catalog.core.schema import EVENTS

    events = 100_000 if quick else 1_000_000
    samples = 50 if quick else 300
    out = []
    for backend, url in [("SQLite", None), ("PostgreSQL", pg_url)]:
        if backend == "PostgreSQL" and not url:
            out.append({"backend": backend, "skipped": "no --pg-url"})
            continue
        work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
        database = _fresh_pg_database(url) if url else None
        try:
            started = time.perf_counter()
            catalog = _bulk_log(work / "store", events, database)
            built = time.perf_counter() - started
            rng = random.Random(15)
            picks = [(rng.randrange(events), rng.randrange(1, events)) for _ in range(samples)]
            times: dict[str, list[float]] = {"select": [], "inclusion": [], "consistency": [], "root": [],
                                             "verify": []}  # fmt: skip
            sizes = []
            with catalog.read() as conn:  # type: ignore[attr-defined]
                root = tree.root_at(conn, events)
                for index, size1 in picks:  # interleaved, each against the same open connection
                    start = time.perf_counter()
                    text = conn.execute(select(EVENTS.c.text).where(EVENTS.c.seq == index + 1)).scalar_one()
                    times["select"].append(time.perf_counter() - start)
                    start = time.perf_counter()
                    proof = tree.inclusion(conn, index, events)
                    times["inclusion"].append(time.perf_counter() - start)
                    start = time.perf_counter()
                    tree.consistency(conn, size1, events)
                    times["consistency"].append(time.perf_counter() - start)
                    start = time.perf_counter()
                    tree.root_at(conn, size1)
                    times["root"].append(time.perf_counter() - start)
                    start = time.perf_counter()
                    merkle.verify_inclusion(tree.leaf(text), index, events, proof, root)
                    times["verify"].append(time.perf_counter() - start)
                    sizes.append(len(proof) * 32)
            catalog.close()  # type: ignore[attr-defined]
            base = statistics.median(times["select"])
            bound = 32 * (events - 1).bit_length()
            for name in ("select", "inclusion", "consistency", "root", "verify"):
                p50 = statistics.median(times[name])
                out.append({"backend": backend, "events": events, "what": name, "samples": samples, "p50_ms": p50 * 1000,
                            "ratio": p50 / base, "build_s": built, "proof_bytes_max": max(sizes),
                            "bound_bytes": bound})  # fmt: skip
        finally:
            if database:
                _drop_pg_database(url, database)  # type: ignore[arg-type]
            shutil.rmtree(work, ignore_errors=True)
    return out


# -- the web pages at 1,000,000 rows -----------------------------------------------------

WEB_ACTOR, WEB_RARE_ACTOR = "cryptorun@scan01:4242", "alice@desk:77"


def _web_items(rows: int, files: dict[int, bytes]) -> Iterator[tuple[dict[str, object] | None, tuple[object, ...]]]:
    """``rows`` artifacts created 2020-2024 and their write events, for :func:`_bulk_chain`.

    Explain and ledger rows; 1,000 prefixes (``s000``-``s999``, each on one row
    in 1,000); 2 % archived (in ``TYPE/archived/YYYY-MM``); rows 0 and 1 of each
    hundred an explain JSON and CSV pair; every 10,000th write by
    :data:`WEB_RARE_ACTOR`, the others by :data:`WEB_ACTOR`; a checkpoint event
    after every 10,000th write. ``files``: the bytes of the rows that get a real file.
    """
    from datetime import datetime, timedelta, timezone

    from catalog.core.chain import row_details

    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    step = timedelta(seconds=5 * 365 * 24 * 3600 / rows)
    for n in range(rows):
        when = start + step * n
        paired = n % 100 < 2
        kind = "explain" if paired or n % 2 == 0 else "ledger"
        ext = "csv" if n % 100 == 1 else "json"
        stamp = (when - step * (n % 100 == 1)).strftime("%Y%m%d-%H%M%S")  # a pair shares its name's stem
        prefix = f"s{n % 1000:03d}"
        original = f"{kind}/{stamp}-{prefix}-{kind}.{ext}"
        status = "archived" if n % 50 == 7 else "active"
        path = f"{kind}/archived/{when:%Y-%m}/{original.split('/')[1]}" if status == "archived" else original
        data = files.get(n)
        row = {"id": n + 1, "path": path, "original_path": original, "folder": path.rsplit("/", 1)[0], "type": kind,
               "prefix": prefix, "ext": ext, "created_at": when, "recorded_at": when,
               "size": len(data) if data else 1000 + n % 5000,
               "sha256": hashlib.sha256(data).hexdigest() if data else f"{n:064x}", "status": status,
               "retain_until": None, "pair_id": f"{n // 100:032x}" if paired else None}  # fmt: skip
        actor = WEB_RARE_ACTOR if n % 10_000 == 3 else WEB_ACTOR
        yield row, (when, "write", n + 1, path, status, actor, row_details(row))
        if n % 10_000 == 9_999:
            yield None, (when, "checkpoint", None, None, None, "cron@ops:1", {"size": n + 1})


def _web_store(root: Path, rows: int, pg_url: str | None) -> dict[str, object]:
    """A store of ``rows`` artifacts (:func:`_web_items`), a viewer account, three holds, five verify runs.

    Reused when ``root`` holds one already built (``web.json``, with the
    viewer's secret and the artifact the artifact page opens): 1M rows take a
    quarter of an hour to build per backend.
    """
    from datetime import datetime, timedelta, timezone

    from freezegun import freeze_time

    from catalog.core.schema import VERIFY_RESULTS, VERIFY_RUNS
    from catalog.core.settings import load_settings
    from catalog.core.store import Catalog
    from catalog.ops.policy import add_hold
    from catalog.ops.users import add_user

    marker = root / "web.json"
    if marker.exists():
        built = json.loads(marker.read_text())
        if built["rows"] == rows:
            return built  # type: ignore[no-any-return]
        raise SystemExit(f"{root} holds a web store of {built['rows']} rows, not {rows}: remove it or pass another --keep")
    started = time.perf_counter()
    target = rows // 200 * 100  # an explain JSON in the middle, the first of a pair
    files = {n: json.dumps({"report": n, "rows": list(range(200))}).encode() for n in (target, target + 1)}
    settings = load_settings(overrides={"base_dir": str(root / "store"), "catalog_url": pg_url}, env={})
    with freeze_time("2019-12-31T00:00:00Z"):  # init's events first: the log's clock never runs backwards
        catalog, _, _ = Catalog.init(settings)
    rows_by_n: dict[int, dict[str, object]] = {}

    def keeping(items: Iterator[tuple[dict[str, object] | None, tuple[object, ...]]]) -> Iterator[tuple[dict[str, object] | None, tuple[object, ...]]]:  # fmt: skip
        for artifact, event in items:
            if artifact is not None and artifact["id"] in (target + 1, target + 2):
                rows_by_n[artifact["id"] - 1] = artifact  # type: ignore[operator]
            yield artifact, event

    _bulk_chain(catalog, keeping(_web_items(rows, files)))
    for n, data in files.items():
        path = root / "store" / str(rows_by_n[n]["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    when = datetime(2025, 1, 1, tzinfo=timezone.utc)
    with catalog.db.write() as conn:  # five verify runs of one row in ten each: the artifact page's history
        for run in range(1, 6):
            began = when + timedelta(days=run)
            conn.execute(VERIFY_RUNS.insert(), [{"id": run, "started_at": began, "finished_at": began, "scope": "{}",
                                                 "checked": rows // 10, "ok": rows // 10, "failed": 0, "missing": 0}])  # fmt: skip
            batch = [{"run_id": run, "artifact_id": ident, "outcome": "ok", "detail": None}
                     for ident in range(1, rows + 1) if ident % 10 == (target + 1) % 10]  # fmt: skip
            for at in range(0, len(batch), 20_000):
                conn.execute(VERIFY_RESULTS.insert(), batch[at:at + 20_000])
    _, secret = add_user(catalog, "bench-viewer", "viewer")
    add_hold(catalog, path=str(rows_by_n[target]["path"]), reason="bench: one artifact")
    add_hold(catalog, prefix=f"s{target % 1000:03d}", reason="bench: its prefix")
    add_hold(catalog, artifact_type="health", reason="bench: another type")
    catalog.close()
    built = {"rows": rows, "url": pg_url, "base_dir": str(root / "store"), "secret": secret,
             "target": rows_by_n[target]["path"], "prefix": f"s{(target + 500) % 1000:03d}",
             "build_s": time.perf_counter() - started}  # fmt: skip
    marker.write_text(json.dumps(built, indent=2))
    return built


def _web_cases(built: dict[str, object], deep: str) -> dict[str, str]:
    """What is timed: the name of each request and its path (the API's is ``/api`` + path)."""
    from urllib.parse import quote

    target = quote(str(built["target"]))
    return {
        "artifacts: first page": "/artifacts",
        "artifacts: page 5,001 (its `after` cursor)": f"/artifacts?after={quote(deep)}",
        "artifacts: type=ledger": "/artifacts?type=ledger",
        "artifacts: prefix (1 row in 1,000)": f"/artifacts?prefix={built['prefix']}",
        "artifacts: prefix glob s50* (1 in 100)": "/artifacts?prefix=s50*",
        "artifacts: status=archived (1 in 50)": "/artifacts?status=archived",
        "artifacts: status=quarantined (no row)": "/artifacts?status=quarantined",
        "artifacts: one month (since, until)": "/artifacts?since=2022-06-01&until=2022-07-01",
        "artifacts: as of 2022-06-01": "/artifacts?as_of=2022-06-01",
        "artifact page (story, verify history, holds, pair)": f"/artifacts/{target}",
        "audit log: first page": "/audit",
        "audit log: action=checkpoint (1 in 10,000)": "/audit?action=checkpoint",
        "audit log: action=write or checkpoint": "/audit?action=write&action=checkpoint",
        "audit log: actor=alice (1 in 10,000)": "/audit?actor=alice",
        "audit log: path (one artifact's events)": f"/audit?path={target}",
        "audit log: one day (since, until)": "/audit?since=2022-06-01&until=2022-06-02",
        "audit log: one year (since, until)": "/audit?since=2022-01-01&until=2023-01-01",
    }


def _raw_select(built: dict[str, object]) -> tuple[Callable[[int], object], Callable[[], None]]:
    """The baseline: one SELECT of an artifact by its primary key, on the raw driver (sqlite3, psycopg)."""
    if built["url"] is None:
        import sqlite3

        db = sqlite3.connect(f"file:{built['base_dir']}/catalog.sqlite?mode=ro", uri=True)
        return (lambda ident: db.execute("SELECT * FROM artifacts WHERE id = ?", (ident,)).fetchall()), db.close
    import psycopg
    from sqlalchemy.engine import make_url

    pg = psycopg.connect(make_url(str(built["url"])).set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True)  # fmt: skip
    return (lambda ident: pg.execute("SELECT * FROM artifacts WHERE id = %s", (ident,)).fetchall()), pg.close


def _capture(into: list[tuple[str, object]], conn: object, cursor: object, statement: str, parameters: object,
             context: object, executemany: bool) -> None:  # fmt: skip
    """A ``before_cursor_execute`` hook: keep each statement and its parameters."""
    into.append((statement, parameters))


def _explain(catalog: object, statement: str, parameters: object) -> list[str]:
    """The plan of one statement as the database would run it now (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN)."""
    with catalog.db.engine.connect() as conn:  # type: ignore[attr-defined]
        cursor = conn.connection.cursor()
        if catalog.db.is_sqlite:  # type: ignore[attr-defined]
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return [row[-1] for row in cursor.fetchall()]
        cursor.execute("EXPLAIN " + statement, parameters)
        return [row[0] for row in cursor.fetchall()]


#: What a plan must not show on a page at 1M rows: a table read whole, or every matching row sorted.
PLAN_WARNINGS = ("SCAN artifacts", "SCAN events", "SCAN verify_results", "TEMP B-TREE FOR ORDER BY",
                 "Seq Scan on artifacts", "Seq Scan on events", "Seq Scan on verify_results", "Sort  ")  # fmt: skip


def _plan_problems(plan: list[str]) -> list[str]:
    """The lines of ``plan`` that read a big table whole or sort (PostgreSQL: a sort estimated over 1,000 rows)."""
    found = []
    for line in plan:
        if not any(w in line for w in PLAN_WARNINGS) or re.search(r"USING (COVERING |INTEGER PRIMARY KEY|INDEX)", line):
            continue
        estimate = re.search(r"rows=(\d+)", line)
        if "Sort  " in line and estimate and int(estimate[1]) <= 1000:
            continue
        found.append(re.sub(r"\(cost=[^)]*\)", "", line).strip(" ->"))
    return found


def web(quick: bool, pg_url: str | None, keep: str | None, backends: list[str] | None = None) -> list[dict[str, object]]:
    """The artifacts list, an artifact page and the audit log through the real ASGI app at 1M rows.

    Each request is timed through Starlette's test client, as HTML with a
    session (logged in as a viewer by the login form) and as JSON with bearer
    credentials, in interleaved rounds with the baseline (one primary-key
    SELECT on the raw driver); medians. Then every statement each page ran is
    captured and EXPLAINed, and plans that read a table whole or sort every
    matching row are reported.
    """
    import warnings

    from sqlalchemy import event

    from catalog.core.settings import load_settings
    from catalog.core.store import Catalog

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from catalog.web import create_app

    rows, rounds = (20_000, 3) if quick else (1_000_000, 9)
    out: list[dict[str, object]] = []
    for backend, url in [("SQLite", None), ("PostgreSQL", pg_url)]:
        if backend == "PostgreSQL" and not url:
            out.append({"backend": backend, "skipped": "no --pg-url"})
            continue
        if backends and backend.lower() not in backends:
            continue
        root = Path(keep) / backend.lower() if keep else Path(tempfile.mkdtemp(prefix="catalog-bench-"))
        root.mkdir(parents=True, exist_ok=True)
        database = None
        if url:
            saved = root / "database-url"
            if saved.exists():
                database = saved.read_text().strip()
            else:
                database = _fresh_pg_database(url)
                saved.write_text(database)
        try:
            built = _web_store(root, rows, database)
            settings = load_settings(overrides={"base_dir": str(built["base_dir"]), "catalog_url": database}, env={})
            catalog = Catalog(settings)
            app = create_app(settings, catalog=catalog)
            bearer = {"Authorization": f"Bearer bench-viewer:{built['secret']}"}
            api = TestClient(app, headers=bearer).__enter__()  # entered: one event loop for every request
            html = TestClient(app, follow_redirects=False).__enter__()
            token = re.search(r'name="csrf" value="([^"]+)"', html.get("/login").text)[1]  # type: ignore[index]
            answer = html.post("/login", data={"name": "bench-viewer", "secret": built["secret"], "csrf": token, "next": "/"})
            assert answer.status_code == 303, answer.text

            cursor, walked = None, 0  # page 5,001 of 50 rows: the cursor after row 250,000 (quick: row 5,000)
            while walked < rows // 4:
                page = api.get("/api/artifacts", params={"limit": 1000, **({"after": cursor} if cursor else {})}).json()
                cursor, walked = page["next_after"], walked + page["count"]
            cases = _web_cases(built, cursor)  # type: ignore[arg-type]
            select_one, close_raw = _raw_select(built)
            times: dict[str, list[float]] = {"baseline": [], "healthz": []}
            for _ in range(rounds + 1):  # the first round untimed: caches, compiled statements
                start = time.perf_counter()
                select_one(rows // 3)
                times["baseline"].append(time.perf_counter() - start)
                start = time.perf_counter()
                api.get("/healthz")
                times["healthz"].append(time.perf_counter() - start)
                for name, path in cases.items():
                    for kind, client, url_path in (("html", html, path), ("api", api, "/api" + path)):
                        start = time.perf_counter()
                        answer = client.get(url_path)
                        times.setdefault(f"{kind} {name}", []).append(time.perf_counter() - start)
                        if answer.status_code != 200:
                            raise SystemExit(f"{url_path}: {answer.status_code} {answer.text[:300]}")
            close_raw()
            base = statistics.median(times["baseline"][1:])

            statements: list[tuple[str, object]] = []
            capture = functools.partial(_capture, statements)
            engines = [catalog.db.engine]  # and SQLite's own engine for reads (PostgreSQL's shares the pool)
            engines += [catalog.db.read_engine] if catalog.db.read_engine.pool is not catalog.db.engine.pool else []
            for engine in engines:
                event.listen(engine, "before_cursor_execute", capture)
            plans: dict[str, list[dict[str, object]]] = {}
            for name, path in cases.items():
                statements.clear()
                api.get("/api" + path)
                plans[name] = [{"sql": " ".join(sql.split()), "plan": _explain(catalog, sql, params)}
                               for sql, params in statements if sql.lstrip().upper().startswith("SELECT")]  # fmt: skip
            for engine in engines:
                event.remove(engine, "before_cursor_execute", capture)
            api.__exit__(None, None, None)
            html.__exit__(None, None, None)
            catalog.close()

            out.append({"backend": backend, "rows": rows, "what": "one SELECT by primary key, raw driver (baseline)",
                        "ms": base * 1000, "ratio": 1.0, "build_s": built["build_s"]})  # fmt: skip
            for name in ["healthz", *(f"{kind} {case}" for case in cases for kind in ("html", "api"))]:
                p50 = statistics.median(times[name][1:])
                case = name.split(" ", 1)[1] if name != "healthz" else None
                found = plans.get(case, []) if case else []  # type: ignore[arg-type]
                out.append({"backend": backend, "rows": rows, "what": name, "ms": p50 * 1000, "ratio": p50 / base,
                            "statements": len(found), "counts": sum("count(" in s["sql"].lower() for s in found),
                            "plan_problems": sorted({p for s in found for p in _plan_problems(s["plan"])}),
                            "plans": found if name.startswith("api ") else []})  # fmt: skip
        finally:
            if database and not keep:
                _drop_pg_database(url, database)  # type: ignore[arg-type]
            if not keep:
                shutil.rmtree(root, ignore_errors=True)
    return out


SECTIONS = ("startup", "durability", "syscalls", "cycle", "writers", "integrity", "layout", "lifecycle", "memory", "proofs",
            "web", "exports")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller catalogs (under a minute)")
    parser.add_argument("--pg-url", default=os.environ.get("CATALOG_BENCH_PG_URL"),
                        help="PostgreSQL server where databases may be created, for the many-writers figures")  # fmt: skip
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    parser.add_argument("--keep", metavar="DIR", help="web: build its stores (and PostgreSQL database) under DIR once "
                        "and reuse them in later runs; they are left in place")  # fmt: skip
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgresql"),
                        help="web: only this backend (repeatable)")  # fmt: skip
    args = parser.parse_args()
    repeat = 3 if args.quick else 15
    wanted = args.only or SECTIONS
    results: dict[str, object] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "sqlite": __import__("sqlite3").sqlite_version},  # fmt: skip
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
    }
    runs = {
        "startup": lambda: startup(repeat),
        "durability": lambda: __import__("lean").durability(args.quick, args.pg_url),  # benchmarks/lean.py
        "syscalls": lambda: syscalls(args.quick),
        "cycle": lambda: cycle(args.quick, args.pg_url),
        "writers": lambda: writers(args.quick, args.pg_url),
        "integrity": lambda: integrity(args.quick),
        "layout": lambda: __import__("layout_walk").layout(args.quick),
        "lifecycle": lambda: lifecycle(args.quick),
        "memory": lambda: memory(args.quick),
        "proofs": lambda: proofs(args.quick, args.pg_url),
        "web": lambda: web(args.quick, args.pg_url, args.keep, args.backend),
        "exports": lambda: __import__("exports").exports(args.quick, args.pg_url, args.keep),
    }
    for name in SECTIONS:
        if name in wanted:
            started = time.perf_counter()
            results[name] = runs[name]()
            print_section(name, results[name])
            print(f"  ({time.perf_counter() - started:.1f} s)\n", flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out / 'latest.json'}")


def print_section(name: str, rows: object) -> None:
    if name == "durability":
        __import__("lean").show(rows)
    elif name == "exports":
        __import__("exports").print_rows(rows)
    elif name == "startup":
        print(f"{'startup (median wall time)':<44}{'seconds':>9}{'ratio':>8}")
        for row in rows:  # type: ignore[attr-defined]
            print(f"{row['name']:<44}{row['seconds']:>9.3f}{row['ratio']:>7.2f}x")
    elif name == "syscalls":
        if "skipped" in rows:  # type: ignore[operator]
            print(f"syscalls per write: skipped ({rows['skipped']})")  # type: ignore[index]
            return
        print(f"{'syscalls per 4 KiB write (strace)':<36}{'file fsync':>11}{'dir fsync':>10}{'db fsync':>9}"
              f"{'write commits':>14}{'read-only':>10}")  # fmt: skip
        for who in ("ours", "floor"):
            row = rows[who]  # type: ignore[index]
            print(f"{who:<36}{row['file']:>11.2f}{row['folder']:>10.2f}{row['catalog']:>9.2f}{row['commits']:>14.2f}"
                  f"{row['read_commits']:>10.2f}")  # fmt: skip
    elif name == "cycle":
        print(f"{'7-artifact cycle (p50)':<16}{'rounds':>7}{'7 singles ms':>13}{'batch ms':>10}{'ratio':>8}{'target':>8}"
              f"   typed cycle: {'calls ms':>9}{'batch ms':>10}{'ratio':>8}")  # fmt: skip
        for row in rows:  # type: ignore[attr-defined]
            if "skipped" in row:
                print(f"{row['backend']:<16} skipped: {row['skipped']}")
                continue
            print(f"{row['backend']:<16}{row['rounds']:>7}{row['singles_ms']:>13.2f}{row['batch_ms']:>10.2f}"
                  f"{row['ratio']:>7.2f}x{row['target']:>7.1f}x {'met' if row['met'] else 'NOT MET':<8}"
                  f"{row['typed_singles_ms']:>19.2f}{row['typed_batch_ms']:>10.2f}{row['typed_ratio']:>7.2f}x")  # fmt: skip
    elif name == "writers":
        print(f"{'writer processes':<24}{'writes':>7}{'errors':>7}{'lost':>6}{'writes/s':>10}{'vs 1':>7}  chain  rounds")
        for row in rows:  # type: ignore[attr-defined]
            if "skipped" in row:
                print(f"{row['backend']:<24} skipped: {row['skipped']}")
                continue
            label = f"{row['backend']} x{row['processes']}" + ("" if row.get("grouped", True) else ", alone")
            print(f"{label:<24}{row['writes']:>7}{row['errors']:>7}{row['lost']:>6}"
                  f"{row['per_second']:>10.1f}{row['ratio']:>6.2f}x  {'ok' if row['chain_ok'] else 'BROKEN':<7}"
                  f"{' '.join(f'{x:.2f}' for x in row['ratios'])}")  # fmt: skip
    elif name == "layout":
        __import__("layout_walk").print_rows(rows)
    elif name == "integrity":
        print(f"{'integrity':<72}{'seconds':>9}{'baseline':>9}{'ratio':>8}")
        for row in rows:  # type: ignore[attr-defined]
            print(f"{row['name']:<72}{row['seconds']:>9.3f}{row['baseline']:>9.3f}{row['ratio']:>7.2f}x  {row['throughput']}")
    elif name == "lifecycle":
        print(f"{'lifecycle (rows)':<18}{'plan s':>9}{'planned':>10}{'summary s':>11}{'limits s':>10}{'dir scan s':>12}")
        for row in rows:  # type: ignore[attr-defined]
            scan = f"{row['scan_s']:>12.3f}" if row["scan_s"] is not None else f"{'(too big)':>12}"
            print(f"{row['rows']:<18}{row['plan_s']:>9.3f}{row['planned']:>10}{row['summary_s']:>11.3f}"
                  f"{row['limits_s']:>10.3f}{scan}")
    elif name == "proofs":
        print(f"{'Merkle proofs (p50)':<40}{'events':>10}{'ms':>9}{'vs SELECT':>11}{'bytes':>7}{'bound':>7}")
        for row in rows:  # type: ignore[attr-defined]
            if "skipped" in row:
                print(f"{row['backend']:<40} skipped: {row['skipped']}")
                continue
            print(f"{row['backend'] + ' ' + row['what']:<40}{row['events']:>10,}{row['p50_ms']:>9.3f}{row['ratio']:>10.2f}x"
                  f"{row['proof_bytes_max']:>7}{row['bound_bytes']:>7}")  # fmt: skip
    elif name == "web":
        print(f"{'web pages (median)':<64}{'ms':>9}{'ratio':>9}{'stmts':>6}  plan problems")
        for row in rows:  # type: ignore[attr-defined]
            if "skipped" in row:
                print(f"{row['backend']:<64} skipped: {row['skipped']}")
                continue
            problems = "; ".join(row.get("plan_problems", [])) + (f" COUNT x{row['counts']}" if row.get("counts") else "")
            print(f"{row['backend'][:2] + ' ' + row['what']:<64}{row['ms']:>9.2f}{row['ratio']:>8.1f}x"
                  f"{row.get('statements', ''):>6}  {problems}")  # fmt: skip
    elif name == "memory":
        names = [k for k in rows[0] if k != "rows"]  # type: ignore[index]
        print("peak RSS MB (seconds)   " + "".join(f"{n[:22]:>24}" for n in names))
        for row in rows:  # type: ignore[attr-defined]
            print(f"{row['rows']:<24}" + "".join(f"{row[n][0]:>15.1f} ({row[n][1]:>5.1f}s)" for n in names))


if __name__ == "__main__":
    main()
