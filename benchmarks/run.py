"""Reproducible speed figures for catalog, each a ratio against a baseline measured in the same run.

    python benchmarks/run.py            # full run
    python benchmarks/run.py --quick    # fewer repetitions (well under a minute)

Prints a table and writes benchmarks/results/latest.json. These machines are
shared and noisy: only ratios within one run mean anything, and no test ever
asserts a time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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
        from catalog.writer import AtomicWriter

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


def _bulk_store(root: Path, files: int, size: int, folders: int) -> "object":
    """A store of ``files`` files of ``size`` bytes over ``folders`` ledger folders, catalogued by bulk insert."""
    from datetime import datetime, timezone

    from catalog.config import load_settings
    from catalog.store import ARTIFACTS, Catalog

    settings = load_settings(flags={"base_dir": str(root)}, env={})
    catalog, _, _ = Catalog.init(settings)
    when = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows, payload = [], os.urandom(size)
    for n in range(files):
        folder = "ledger" if folders == 1 else f"ledger/archived/2024-{n % folders + 1:02d}"
        (root / folder).mkdir(parents=True, exist_ok=True)
        data = payload[:-8] + n.to_bytes(8, "big")
        path = f"{folder}/20240101-000000-b{n}-ledger.json"
        (root / path).write_bytes(data)
        rows.append({"path": path, "original_path": path, "folder": folder, "type": "ledger", "prefix": f"b{n}",
                     "ext": "json", "created_at": when, "recorded_at": when, "size": len(data),
                     "sha256": hashlib.sha256(data).hexdigest(), "status": "active", "retain_until": None})  # fmt: skip
        if len(rows) == 5000 or n == files - 1:
            with catalog.db.write() as conn:
                conn.execute(ARTIFACTS.insert(), rows)
            rows = []
    return catalog


def integrity(quick: bool) -> list[dict[str, object]]:
    """verify against hashlib over the same files; quick reconcile against a bare scandir + stat walk."""
    from catalog.reconcile import reconcile
    from catalog.verify import Scope, verify

    out = []
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    try:
        count, size = (40, 1024**2) if quick else (200, 1024**2)
        catalog = _bulk_store(work / "verify", count, size, 1)
        paths = sorted((work / "verify" / "ledger").iterdir())
        start = time.perf_counter()
        for path in paths:
            hashlib.sha256(path.read_bytes()).hexdigest()
        base = time.perf_counter() - start
        for workers in (1, 2):
            start = time.perf_counter()
            report = verify(catalog, Scope(), workers=workers)
            took = time.perf_counter() - start
            assert report.clean and report.checked == count
            out.append({"name": f"verify {count} x 1 MiB, {workers} worker(s) / hashlib sha256 of the same files",
                        "seconds": took, "baseline": base, "ratio": took / base,
                        "throughput": f"{count * size / took / 1024**2:.0f} MiB/s vs {count * size / base / 1024**2:.0f} MiB/s"})  # fmt: skip
        catalog.close()

        files = 10_000 if quick else 100_000
        catalog = _bulk_store(work / "walk", files, 64, 10)
        start = time.perf_counter()
        seen = 0
        for dirpath, _, names in os.walk(work / "walk"):
            with os.scandir(dirpath) as it:
                for entry in it:
                    if entry.is_file(follow_symlinks=False):
                        entry.stat(follow_symlinks=False)
                        seen += 1
        base = time.perf_counter() - start
        start = time.perf_counter()
        report = reconcile(catalog, grace=0)
        took = time.perf_counter() - start
        assert not report.drift and report.files == files, report.counts()
        out.append({"name": f"quick reconcile of {files} files / os.scandir + stat walk", "seconds": took,
                    "baseline": base, "ratio": took / base, "throughput": f"{files / took:.0f} files/s"})  # fmt: skip
        catalog.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _bulk_rows(root: Path, rows: int) -> "object":
    """A catalog of ``rows`` ledger/explain rows spread over 2020-2024 and 20 folders (no files)."""
    from datetime import datetime, timedelta, timezone

    from catalog.config import load_settings
    from catalog.store import ARTIFACTS, Catalog

    catalog, _, _ = Catalog.init(load_settings(flags={"base_dir": str(root)}, env={}))
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

    from catalog.limits import limits
    from catalog.retention import plan

    out = []
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    now = datetime(2023, 1, 1, tzinfo=timezone.utc)
    try:
        for rows in (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000):
            catalog = _bulk_rows(work / f"rows{rows}", rows)
            start = time.perf_counter()
            planned = sum(1 for _ in plan(catalog, now=now))
            plan_s = time.perf_counter() - start
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
            out.append({"rows": rows, "plan_s": plan_s, "planned": planned, "limits_s": limits_s, "scan_s": scan_s})
            catalog.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeat = 3 if args.quick else 15
    results = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "repeat": repeat,
        "startup": startup(repeat),
        "integrity": integrity(args.quick),
        "lifecycle": lifecycle(args.quick),
    }
    print(f"{'startup (median wall time)':<44}{'seconds':>9}{'ratio':>8}")
    for row in results["startup"]:
        print(f"{row['name']:<44}{row['seconds']:>9.3f}{row['ratio']:>7.2f}x")
    print()
    print(f"{'integrity':<72}{'seconds':>9}{'baseline':>9}{'ratio':>8}")
    for row in results["integrity"]:
        print(f"{row['name']:<72}{row['seconds']:>9.3f}{row['baseline']:>9.3f}{row['ratio']:>7.2f}x  {row['throughput']}")
    print()
    print(f"{'lifecycle (rows)':<18}{'plan s':>9}{'planned':>10}{'limits s':>10}{'dir scan s':>12}")
    for row in results["lifecycle"]:
        scan = f"{row['scan_s']:>12.3f}" if row["scan_s"] is not None else f"{'(too big)':>12}"
        print(f"{row['rows']:<18}{row['plan_s']:>9.3f}{row['planned']:>10}{row['limits_s']:>10.3f}{scan}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out / 'latest.json'}")


if __name__ == "__main__":
    main()
