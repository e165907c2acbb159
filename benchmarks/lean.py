"""Issue 17 item 2: a single small write against the physical floor, on SQLite and PostgreSQL, with CPU per write.

``python benchmarks/run.py --only durability [--quick] [--pg-url URL]``. The floor is
:func:`run.floor_write` (temp file, write, fsync, rename, fsync the folder,
then one bare commit of one row): a bare ``sqlite3`` commit for SQLite, a bare
``psycopg`` commit on the same server for PostgreSQL. Ours is
``AtomicWriter.write_bytes`` with the parse check off (storage, not
validation). The two alternate write by write after two untimed rounds; p50
of each, and the CPU time of each (``time.process_time``: every thread of
the process) per write, which is what the ratio is made of on a disk whose
fsync is cheap.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import run


def _pg_floor(url: str) -> tuple[Callable[[str, int], None], Callable[[], None]]:
    """A bare psycopg connection on the catalog's server: one INSERT and COMMIT per write (and its closer)."""
    import psycopg
    from sqlalchemy.engine import make_url

    parts = make_url(url)
    conn = psycopg.connect(host=parts.host, port=parts.port, user=parts.username, password=parts.password,
                           dbname=parts.database)  # fmt: skip
    conn.execute("CREATE TABLE IF NOT EXISTS floor_files (path TEXT PRIMARY KEY, size BIGINT, sha256 TEXT)")
    conn.commit()

    def commit(name: str, size: int) -> None:
        conn.execute("INSERT INTO floor_files VALUES (%s, %s, %s)", (name, size, ""))
        conn.commit()

    return commit, conn.close


def _one_backend(backend: str, quick: bool, pg_url: str | None) -> list[dict[str, object]]:
    from catalog.core.settings import load_settings
    from catalog.core.store import Catalog
    from catalog.cryptorun.writer import AtomicWriter

    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    url = run._fresh_pg_database(pg_url) if backend == "postgresql" and pg_url else None
    out = []
    try:
        overrides = {"base_dir": str(work / "store")} | ({"catalog_url": url} if url else {})
        catalog, _, _ = Catalog.init(load_settings(overrides=overrides, env={}))
        writer = AtomicWriter(catalog=catalog)
        (work / "floor").mkdir()
        if url:
            commit_row, close_floor = _pg_floor(url)
        else:
            db = run._floor_db(work / "floor.sqlite")

            def commit_row(name: str, size: int) -> None:
                db.execute("BEGIN")  # type: ignore[attr-defined]
                db.execute("INSERT INTO files VALUES (?, ?, ?)", (name, size, ""))  # type: ignore[attr-defined]
                db.execute("COMMIT")  # type: ignore[attr-defined]

            close_floor = db.close  # type: ignore[attr-defined]

        def floor(name: str, data: bytes) -> None:
            run.floor_write(work / "floor", name, data, _NoRow())  # the file part, then the backend's own commit
            commit_row(name, len(data))

        counts = {"4 KiB": 15, "1 MiB": 8, "10 MiB": 4} if quick else {"4 KiB": 300, "1 MiB": 60, "10 MiB": 20}
        for label, size in run.SIZES.items():
            ours, base, ours_cpu, base_cpu = [], [], [], []
            for n in range(-2, counts[label]):  # two untimed rounds first: caches, the hashing thread
                data = os.urandom(size)
                cpu, start = time.process_time(), time.perf_counter()
                floor(f"{size}-{n + 2}.bin", data)
                base.append(time.perf_counter() - start)
                base_cpu.append(time.process_time() - cpu)
                cpu, start = time.process_time(), time.perf_counter()
                writer.write_bytes("ledger", f"d{size}-{n + 2}", data, "parquet", check=False)
                ours.append(time.perf_counter() - start)
                ours_cpu.append(time.process_time() - cpu)
            p50, floor_p50 = statistics.median(ours[2:]), statistics.median(base[2:])
            target = 1.3 if size < 1024**2 else 1.1
            out.append({"backend": backend, "size": label, "writes": counts[label], "p50_s": p50,
                        "floor_p50_s": floor_p50, "ratio": p50 / floor_p50, "target": target,
                        "met": p50 / floor_p50 <= target, "cpu_s": statistics.median(ours_cpu[2:]),
                        "floor_cpu_s": statistics.median(base_cpu[2:])})  # fmt: skip
        close_floor()
        catalog.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if url and pg_url:
            run._drop_pg_database(pg_url, url)
    return out


class _NoRow:
    """Stands for :func:`run.floor_write`'s database: the floor's commit is made by the backend's own function."""

    def execute(self, *_: object) -> None:
        return None


def durability(quick: bool, pg_url: str | None) -> list[dict[str, object]]:
    """Durable write + row against the floor on SQLite and (given a server) PostgreSQL."""
    rows = _one_backend("sqlite", quick, None)
    if pg_url:
        rows += _one_backend("postgresql", quick, pg_url)
    else:
        rows.append({"backend": "postgresql", "skipped": "no --pg-url"})
    return rows


def show(rows: list[dict[str, object]]) -> None:
    """Print the section's table."""
    print(f"{'write + row vs floor (p50)':<28}{'writes':>7}{'ours ms':>9}{'floor ms':>9}{'ratio':>8}{'target':>8}"
          f"{'':<9}{'CPU ours ms':>12}{'CPU floor ms':>13}")  # fmt: skip
    for row in rows:
        if "skipped" in row:
            print(f"{row['backend']:<28} skipped: {row['skipped']}")
            continue
        print(f"{str(row['backend'])[:10] + ' ' + str(row['size']):<28}{row['writes']:>7}"
              f"{float(row['p50_s']) * 1000:>9.2f}{float(row['floor_p50_s']) * 1000:>9.2f}{float(row['ratio']):>7.2f}x"
              f"{float(row['target']):>7.1f}x {'met' if row['met'] else 'NOT MET':<8}"
              f"{float(row['cpu_s']) * 1000:>12.2f}{float(row['floor_cpu_s']) * 1000:>13.2f}")  # fmt: skip
