"""Reproducible speed figures for catalog, each a ratio against a baseline measured in the same run.

    python benchmarks/run.py            # full run
    python benchmarks/run.py --quick    # fewer repetitions (well under a minute)

Prints a table and writes benchmarks/results/latest.json. These machines are
shared and noisy: only ratios within one run mean anything, and no test ever
asserts a time.
"""

from __future__ import annotations

import argparse
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
    }
    print(f"{'startup (median wall time)':<44}{'seconds':>9}{'ratio':>8}")
    for row in results["startup"]:
        print(f"{row['name']:<44}{row['seconds']:>9.3f}{row['ratio']:>7.2f}x")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out / 'latest.json'}")


if __name__ == "__main__":
    main()
