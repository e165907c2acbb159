"""The kill harness: real work in a subprocess, SIGKILLed at random moments, many times over.

After every kill: no partial file under a final name, every active row matches
its file, and ``reconcile --fix`` + ``audit verify`` leave a clean store in which
nothing fully written was lost. Many writers at once (group commit) run as
rounds of four processes killed one by one (a third of CATALOG_KILLS rounds,
four kills each), in the flat and the day layout. The quick suite skips it; ``.ci/run`` runs a
modest count (CATALOG_SLOW_TESTS=1: 30 per operation, plus 10 rounds of the many writers per layout);
thousands (CATALOG_KILLS per writer operation, half that for reconcile and
verify, a fifth for schema upgrades: 650 gives 2,730 kills, plus 216 rounds of many writers):

    CATALOG_SLOW_TESTS=1 CATALOG_KILLS=650 pytest -q tests/test_kill_harness.py
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog.core.fs import sha256_file
from catalog.core.names import parse_name
from catalog.core.store import Catalog
from catalog.cryptorun.explain import ExplainReport
from catalog.ops.reconcile import reconcile

from helpers import all_records, catalog_env, store_files

KILLS = int(os.environ.get("CATALOG_KILLS", "30"))  # per operation; six operations per backend

#: Run before the work: the imports every work needs, then a line that says start-up is over.
READY = """
import catalog.cryptorun.demo, catalog.cryptorun.writer, catalog.ops.reconcile, catalog.ops.retention, catalog.ops.verify
print("ready", flush=True)
"""

WORK = {
    "writes": """
import hashlib, itertools, os
from catalog.cryptorun.writer import AtomicWriter
with AtomicWriter() as w:
    for n in itertools.count():
        pad = os.urandom(2000 + n % 5000).hex()
        w.write_json("ledger", f"k{os.getpid()}-{n}", {"pad": pad, "check": hashlib.sha256(pad.encode()).hexdigest()})
""",
    "pairs": """
import itertools, os
from catalog.cryptorun.demo import make_report
from catalog.cryptorun.writer import AtomicWriter
with AtomicWriter() as w:
    for n in itertools.count():
        w.write_explain_report(make_report(1 + n % 20, seed=n), f"k{os.getpid()}-{n}")
""",
    "batches": """
import hashlib, itertools, os
from catalog.cryptorun.demo import make_report
from catalog.cryptorun.writer import AtomicWriter
with AtomicWriter() as w:
    for n in itertools.count():
        with w.batch() as b:  # a cycle: an explain pair and five more artifacts over three folders, one commit
            b.write_explain_report(make_report(1 + n % 20, seed=n), f"k{os.getpid()}-{n}.scan")
            for k in range(5):
                pad = os.urandom(500 + (n * k) % 4000).hex()
                b.write_json(("ledger", "health", "config")[k % 3], f"k{os.getpid()}-{n}.{k}",
                             {"pad": pad, "check": hashlib.sha256(pad.encode()).hexdigest()})
""",
    "day_writes": """
import hashlib, itertools, os, random
from datetime import datetime, timedelta, timezone
from catalog.cryptorun.writer import AtomicWriter
start = datetime(1972, 1, 1, tzinfo=timezone.utc) + timedelta(days=random.randrange(15000), seconds=os.getpid() % 86400)
with AtomicWriter() as w:  # layout day (CRYPTORUN_LAYOUT): each write dated a day later, so its folder is new
    for n in itertools.count():
        pad = os.urandom(500 + n % 3000).hex()
        data = {"pad": pad, "check": hashlib.sha256(pad.encode()).hexdigest()}
        if n % 3:
            w.write_json(("ledger", "health")[n % 2], f"k{os.getpid()}-{n}", data, created_at=start + timedelta(days=n))
        else:
            with w.batch() as b:  # two new day folders in one commit
                for k in range(2):
                    b.write_json("ledger", f"k{os.getpid()}-{n}.{k}", data, created_at=start + timedelta(days=n + 40 * k))
""",
    "reconcile": """
from catalog.ops.reconcile import reconcile
from catalog.core.store import Catalog
with Catalog.open() as c:
    while True:
        reconcile(c, deep=True, fix=True, grace=0)
""",
    "verify": """
from catalog.core.store import Catalog
from catalog.ops.verify import Scope, verify
with Catalog.open() as c:
    while True:
        verify(c, Scope(), workers=2)
""",
}


def complete(path: Path) -> bool:
    """Whether a file under a final name holds everything its writer meant to write."""
    data = path.read_bytes()
    if path.suffix == ".csv":
        twin = path.with_suffix(".json")
        if not twin.exists():
            return data.startswith(b"symbol,decision")
        report = ExplainReport.from_json(twin.read_bytes())
        return data.count(b"\n") == 1 + len(report.universe)
    body = json.loads(data)
    if "check" in body:
        return hashlib.sha256(body["pad"].encode()).hexdigest() == body["check"]
    return "meta" in body or "settings" in body


class Invariants:
    """The checks made after every kill, incremental so that thousands of kills stay linear.

    Published files are read-only and never change, so a file found complete (or
    a row found matching its file) stays so: each is read once, when new. Every
    ``FULL_EVERY`` kills and at the end, everything is checked again from scratch
    and reconcile runs ``--deep`` (hashing every file); in between it runs quick,
    which finds what a kill can leave (temps, rowless files, rows without files).
    """

    FULL_EVERY = 50

    def __init__(self, catalog: Catalog, base: Path, damaged: frozenset[str]) -> None:
        self.catalog, self.base, self.damaged = catalog, base, damaged
        self.complete: set[str] = set()  # files under final names found complete
        self.matched: set[tuple[int, str]] = set()  # (row id, path) of active rows found matching their file
        self.kills = 0

    def after_kill(self) -> None:
        self.kills += 1
        self.check(full=self.kills % self.FULL_EVERY == 0)

    def check(self, *, full: bool) -> None:
        if full:
            self.complete.clear()
            self.matched.clear()
        present = set(store_files(self.base))
        self.complete &= present
        for rel in present - self.complete:
            if parse_name(Path(rel).name) is None or "/quarantine/" in f"/{rel}":
                continue
            assert complete(self.base / rel), f"partial file under a final name: {rel}"
            if rel not in self.damaged:
                self.complete.add(rel)
        before_fix = set(self.complete)
        for record in all_records(self.catalog):
            key = (record.id, record.path)
            if record.status == "active" and record.path not in self.damaged and key not in self.matched:
                assert sha256_file(self.base, record.path) == (record.sha256, record.size), record.path
                self.matched.add(key)
        reconcile(self.catalog, deep=full, fix=True, grace=0)
        report = reconcile(self.catalog, deep=full, grace=0)
        assert report.drift == [], report.to_dict()
        catalogued = {r.path for r in all_records(self.catalog) if r.status in ("active", "archived", "quarantined")}
        assert before_fix <= catalogued, before_fix - catalogued  # nothing fully written is lost

    def finish(self) -> None:
        self.check(full=True)  # everything again, from scratch, with a deep reconcile
        assert self.catalog.audit_verify().ok


BATCH = 7  # artifacts per batch of the "batches" work


def whole_batches_only(catalog: Catalog) -> None:
    """Before reconcile: every batch is recorded by its writer whole or not at all (what reconcile adopts is apart)."""
    written: dict[str, int] = {}
    for event in catalog.events():
        if event.action == "write":
            prefix = parse_name(Path(event.path).name).prefix  # type: ignore[arg-type, union-attr]
            if "." not in prefix:  # a single write beside the batches (the many-writers harness)
                continue
            batch = prefix.rsplit(".", 1)[0]
            written[batch] = written.get(batch, 0) + 1
    assert all(count == BATCH for count in written.values()), {b: c for b, c in written.items() if c != BATCH}


def kill_loop(
    operation: str, catalog: Catalog, base: Path, url: str | None, kills: int, seed: int,
    damaged: frozenset[str] = frozenset(),
) -> int:  # fmt: skip
    rng = random.Random(seed)
    env = catalog_env(base, url)
    if operation.startswith("day_"):
        env["CRYPTORUN_LAYOUT"] = "day"
    invariants = Invariants(catalog, base, damaged)
    done = 0
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", READY + WORK[operation]], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n", proc.stderr
        time.sleep(rng.uniform(0.05, 0.6))  # past start-up however loaded the machine is, somewhere in the work
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -9, err.decode()[-2000:]
        done += 1
        if operation == "batches":
            whole_batches_only(catalog)
        invariants.after_kill()
    invariants.finish()
    return done


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["flat", "day"])
def test_many_writers_killed_one_by_one(catalog: Catalog, base_dir: Path, catalog_url, layout: str) -> None:  # type: ignore[no-untyped-def]
    """Group commit under kills: four writers at once (two single, two batching) share commits; each is killed at its
    own random moment (a leader mid-commit, a writer waiting in the queue), so survivors take the queue over."""
    rng = random.Random(1717)
    env = catalog_env(base_dir, catalog_url)
    env["CRYPTORUN_LAYOUT"] = layout
    invariants = Invariants(catalog, base_dir, frozenset())
    for _ in range(max(3, KILLS // 3)):
        procs = [subprocess.Popen([sys.executable, "-c", READY + WORK[work]], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for work in ("writes", "writes", "batches", "batches")]  # fmt: skip
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n", proc.stderr
        for proc in rng.sample(procs, len(procs)):
            time.sleep(rng.uniform(0.02, 0.4))
            proc.send_signal(signal.SIGKILL)
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == -9, err.decode()[-2000:]
        whole_batches_only(catalog)
        invariants.after_kill()
    invariants.finish()
    assert all_records(catalog)  # work got done between the kills


@pytest.mark.slow
@pytest.mark.parametrize("operation", ["writes", "pairs", "batches", "day_writes"])
def test_writers_killed_at_random_moments(operation: str, catalog: Catalog, base_dir: Path, catalog_url) -> None:  # type: ignore[no-untyped-def]
    assert kill_loop(operation, catalog, base_dir, catalog_url, KILLS, seed=hash(operation) % 1000) == KILLS
    assert all_records(catalog)  # work got done between the kills
    if operation == "day_writes":  # every file in the partition of its name's date, each folder new when written
        paths = [r.path for r in all_records(catalog) if r.status == "active"]
        assert paths and all(r.count("/") == 4 for r in paths), paths[:5]
        assert len({p.rsplit("/", 1)[0] for p in paths}) > len(paths) // 2  # nearly every write made its folder


@pytest.mark.slow
@pytest.mark.parametrize("operation", ["reconcile", "verify"])
def test_repairs_and_verification_killed_at_random_moments(operation: str, writer, catalog: Catalog, base_dir: Path, catalog_url) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    for n in range(60):
        pad = "x" * rng.randint(10, 50_000)
        writer.write_json("ledger", f"seed{n}", {"pad": pad, "check": hashlib.sha256(pad.encode()).hexdigest()})
    # damage for reconcile to repair while it is being killed: orphans, a missing file, a modified one
    for n in range(20):
        (base_dir / "ledger" / f"20240101-0000{n:02d}-orphan{n}-ledger.json").write_text(json.dumps({"settings": n}))
    records = all_records(catalog)
    (base_dir / records[0].path).unlink()
    victim = base_dir / records[1].path
    victim.chmod(0o644)
    victim.write_text('{"settings": "changed"}')
    damaged = frozenset({records[0].path, records[1].path})  # broken on purpose, before any kill
    assert kill_loop(operation, catalog, base_dir, catalog_url, max(5, KILLS // 2), seed=7, damaged=damaged) >= 5


UPGRADE = """
from catalog.core.store import Catalog
from catalog.core.settings import load_settings
catalog = Catalog(load_settings(), check=False)
catalog.upgrade()
"""


@pytest.mark.slow
def test_schema_upgrade_killed_at_random_moments(settings, catalog_url, run_cli) -> None:  # type: ignore[no-untyped-def]
    from catalog.core import vocabulary as migrations
    from catalog.core.db import Database

    rng = random.Random(11)
    env = catalog_env(settings.base_dir, catalog_url)
    for _ in range(max(3, KILLS // 5)):
        settings.base_dir.mkdir(exist_ok=True)
        old = Database(settings.catalog_url)
        if old.revision() is None:
            old.upgrade("0001")
        old.dispose()
        proc = subprocess.Popen([sys.executable, "-c", UPGRADE], env=env, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.2, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        result = run_cli("db", "upgrade")  # whatever the kill left, upgrading again works
        assert result.exit_code == 0, result.stderr
        catalog = Catalog(settings)
        assert catalog.db.revision() == migrations.HEAD_REVISION and catalog.audit_verify().ok
        catalog.close()
        if catalog_url is None:
            for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
                (settings.base_dir / name).unlink(missing_ok=True)
        else:
            break  # one database per test on PostgreSQL: one upgrade from scratch is what it can show
