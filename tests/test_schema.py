from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from catalog.core import vocabulary as migrations
from catalog.core.db import Database, migrations_dir
from catalog.core.errors import Remedy, SchemaError, StoreError
from catalog.core.schema import METADATA
from catalog.core.settings import Settings, load_settings
from catalog.core.sqlite_file import filesystem_type, require_local_filesystem
from catalog.core.store import Catalog

from helpers import BACKEND, all_records

sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite-specific behaviour")


def test_head_constant_matches_alembic() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", migrations_dir())
    script = ScriptDirectory.from_config(config)
    assert script.get_current_head() == migrations.HEAD_REVISION
    ordered = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert tuple(ordered) == migrations.KNOWN_REVISIONS


def test_autogenerate_finds_no_difference(catalog: Catalog) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with catalog.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, METADATA) == []


def test_init_is_idempotent(settings: Settings) -> None:
    first, before, after = Catalog.init(settings)
    first.close()
    assert (before, after) == (None, migrations.HEAD_REVISION)
    second, before, after = Catalog.init(settings)
    assert (before, after) == (migrations.HEAD_REVISION, migrations.HEAD_REVISION)
    with second.db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM chain_head")).scalar() == 1
    second.close()
    for name in ("explain", "ledger", "health", "config"):
        assert (settings.base_dir / name).is_dir()


def _stamp(catalog: Catalog, revision: str) -> None:
    with catalog.db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})


def test_a_catalog_behind_is_refused_until_db_upgrade(settings: Settings, run_cli) -> None:
    old = Database(settings.catalog_url)
    settings.base_dir.mkdir()
    assert old.upgrade(migrations.KNOWN_REVISIONS[0]) == (None, migrations.KNOWN_REVISIONS[0])
    old.dispose()
    with pytest.raises(SchemaError, match="this version needs") as refused:
        Catalog(settings)
    assert refused.value.remedy is Remedy.UPGRADE and "catalog db upgrade" not in str(refused.value)
    result = run_cli("ls")
    assert result.exit_code == 2
    assert (
        f"is at schema {migrations.KNOWN_REVISIONS[0]}, this version needs {migrations.HEAD_REVISION}: "
        "run `catalog db upgrade`" in result.stderr
    )
    upgraded = run_cli("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.stderr
    assert f"{migrations.KNOWN_REVISIONS[0]} -> {migrations.HEAD_REVISION}" in upgraded.stdout
    assert run_cli("ls").exit_code == 0


def test_a_catalog_from_a_newer_version_is_refused(catalog: Catalog, settings: Settings, run_cli) -> None:
    _stamp(catalog, "9999")
    with pytest.raises(SchemaError, match="newer than this version"):
        Catalog(settings)
    for args in (("ls",), ("put", "-", "--type", "ledger", "--prefix", "p", "--ext", "json"), ("db", "upgrade")):
        result = run_cli(*args, input="{}")
        assert result.exit_code == 2, args
        assert result.stderr.count("Error:") == 1 and "newer than this version" in result.stderr


def test_verbs_refuse_a_store_that_was_never_initialised(base_dir: Path, run_cli, catalog_url) -> None:
    for args in (("ls",), ("get", "explain/x.json"), ("db", "upgrade")):
        result = run_cli(*args)
        assert result.exit_code == 2, args
        assert "catalog init" in result.stderr
    if BACKEND == "sqlite":
        assert not base_dir.exists()  # nothing was created by a refused command


def test_db_current(run_cli, catalog: Catalog) -> None:
    result = run_cli("db", "current")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"{migrations.HEAD_REVISION} (head)"


def test_db_upgrade_on_a_current_catalog_is_a_no_op(run_cli, catalog: Catalog) -> None:
    result = run_cli("db", "upgrade")
    assert result.exit_code == 0 and f"already at {migrations.HEAD_REVISION}" in result.stdout


@sqlite_only
def test_sqlite_runs_in_wal_with_durable_commits(catalog: Catalog, tmp_path: Path) -> None:
    with catalog.db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    fast = Database(catalog.settings.catalog_url, synchronous="normal")
    with fast.read() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    fast.dispose()


@sqlite_only
@pytest.mark.parametrize("args", [["ls"], ["status"], ["audit", "log"], ["db", "current"]], ids=" ".join)
def test_a_read_verb_writes_nothing_into_an_empty_catalog_file(run_cli, base_dir: Path, args: list[str]) -> None:
    base_dir.mkdir()
    (base_dir / "catalog.sqlite").touch()
    result = run_cli(*args)
    if args == ["db", "current"]:
        assert (result.exit_code, result.stdout) == (0, f"none (this version needs {migrations.HEAD_REVISION})\n")
    else:
        assert (result.exit_code, result.stderr) == (2, f"Error: catalog {base_dir / 'catalog.sqlite'} has no schema: "
                                                         "run `catalog init` first\n")  # fmt: skip
    assert sorted(p.name for p in base_dir.iterdir()) == ["catalog.sqlite"]  # no -wal, no -shm
    assert (base_dir / "catalog.sqlite").stat().st_size == 0  # a reader setting journal_mode wrote a header


@sqlite_only
def test_a_backup_is_in_wal_mode_like_its_catalog(catalog: Catalog, run_cli, tmp_path: Path) -> None:
    """Readers never set WAL mode (it would write): init's catalog and a restored backup must be WAL already."""
    assert run_cli("backup", str(tmp_path / "copy.sqlite")).exit_code == 0
    for path in (catalog.db.sqlite_path, tmp_path / "copy.sqlite"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",), path


@sqlite_only
def test_a_locked_catalog_fails_clearly_after_the_busy_timeout(catalog: Catalog, settings: Settings, writer) -> None:
    from dataclasses import replace

    blocker = sqlite3.connect(settings.base_dir / "catalog.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        impatient = Catalog(replace(settings, sqlite_busy_timeout_ms=200))
        from catalog.core.errors import CommitError
        from catalog.cryptorun.writer import AtomicWriter

        with pytest.raises(CommitError, match="stayed locked by another process"):
            AtomicWriter(catalog=impatient).write_json("ledger", "locked", {"a": 1})
        impatient.close()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # the file stayed (complete) for reconcile; nothing was lost
    assert len(list((settings.base_dir / "ledger").glob("*-locked-ledger.json"))) == 1


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL's lock_timeout")
def test_a_postgresql_writer_behind_a_stuck_transaction_fails_clearly(settings: Settings, catalog: Catalog) -> None:
    """Another session holds the chain head lock and never commits: the writer gives up after the busy timeout."""
    import threading
    import time
    from dataclasses import replace

    from sqlalchemy import create_engine

    from catalog.core.errors import CommitError
    from catalog.cryptorun.writer import AtomicWriter
    from catalog.ops.reconcile import reconcile

    stuck = create_engine(settings.catalog_url)
    conn = stuck.connect()
    conn.execute(text("SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE"))  # a transaction left open
    backend = conn.execute(text("SELECT pg_backend_pid()")).scalar()

    def end_it() -> None:  # should the writer wait forever, end the stuck session so the test fails instead of hanging
        with stuck.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})

    guard = threading.Timer(25, end_it)
    guard.start()
    try:
        impatient = Catalog(replace(settings, sqlite_busy_timeout_ms=300))
        started = time.monotonic()
        with pytest.raises(CommitError, match="stayed locked by another process") as caught:
            AtomicWriter(catalog=impatient).write_json("ledger", "stuck", {"a": 1})
        never_wait = Catalog(replace(settings, sqlite_busy_timeout_ms=0))  # 0: do not wait (not PostgreSQL's "forever")
        with pytest.raises(CommitError, match="stayed locked by another process"):
            AtomicWriter(catalog=never_wait).write_json("ledger", "impatient", {"a": 1})
        never_wait.close()
        assert time.monotonic() - started < 20 and "\n" not in str(caught.value)
        assert caught.value.paths[0] in str(caught.value)
        impatient.close()
    finally:
        guard.cancel()
        conn.rollback()
        conn.close()
        stuck.dispose()
    assert (settings.base_dir / caught.value.paths[0]).is_file()  # complete, kept
    reconcile(catalog, fix=True, grace=0)
    assert catalog.find_path(caught.value.paths[0]) is not None and catalog.audit_verify().ok
    assert {r.prefix for r in all_records(catalog)} == {"stuck", "impatient"}  # both adopted


@sqlite_only
def test_a_writer_queued_behind_the_lock_file_fails_clearly_after_the_busy_timeout(settings: Settings, catalog: Catalog) -> None:
    """Writers queue on catalog.sqlite-lock; one held forever by another process is an error, never a hang."""
    import subprocess
    import sys
    import time
    from dataclasses import replace

    from catalog.core.errors import CommitError
    from catalog.cryptorun.writer import AtomicWriter

    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"
    ), f"{settings.base_dir / 'catalog.sqlite'}-lock"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"  # type: ignore[union-attr]
        impatient = Catalog(replace(settings, sqlite_busy_timeout_ms=300))
        started = time.monotonic()
        with pytest.raises(CommitError, match=f"catalog {settings.base_dir / 'catalog.sqlite'} stayed locked"):
            AtomicWriter(catalog=impatient).write_json("ledger", "queued", {"a": 1})
        assert time.monotonic() - started < 20  # bounded by the busy timeout, not by the holder
        impatient.close()
    finally:
        holder.kill()
        holder.communicate()
    # the holder died: the kernel dropped its lock, and the next writer goes straight through
    record = AtomicWriter(catalog=catalog).write_json("ledger", "after", {"a": 2})
    assert record.status == "active"
    assert len(list((settings.base_dir / "ledger").glob("*-queued-ledger.json"))) == 1  # kept for reconcile


@sqlite_only
def test_writes_go_on_when_the_lock_file_cannot_be_made(settings: Settings, catalog: Catalog) -> None:
    """The lock file only speeds up queueing: without it, SQLite's own locking still serialises writers."""
    from catalog.cryptorun.writer import AtomicWriter

    catalog.close()
    lock = settings.base_dir / "catalog.sqlite-lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()  # cannot be opened as a file
    reopened = Catalog(settings)
    record = AtomicWriter(catalog=reopened).write_json("ledger", "nolock", {"a": 1})
    assert reopened.find_path(record.path) is not None
    reopened.close()


@sqlite_only
def test_a_file_that_is_not_a_database_is_refused(base_dir: Path, run_cli) -> None:
    base_dir.mkdir()
    (base_dir / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    result = run_cli("ls")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: catalog {base_dir / 'catalog.sqlite'} is not a SQLite database"


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /mnt/share rw,relatime - nfs4 server:/export rw,vers=4.2
41 40 0:51 / /mnt/share/local\\040disk rw,relatime - ext4 /dev/vdb rw
"""


def test_filesystem_type_picks_the_deepest_mount(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert filesystem_type(Path("/mnt/share/store"), str(info)) == "nfs4"
    assert filesystem_type(Path("/mnt/share/local disk/store"), str(info)) == "ext4"
    assert filesystem_type(Path("/mnt/shared"), str(info)) == "ext4"  # a prefix of the name is not a mount
    with pytest.raises(StoreError, match="on a nfs4 file system, not one known to be local.*PostgreSQL"):
        require_local_filesystem(Path("/mnt/share/store"), mountinfo=str(info))
    require_local_filesystem(Path("/srv/store"), mountinfo=str(info))


@sqlite_only
def test_init_refuses_sqlite_on_a_network_filesystem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli) -> None:
    monkeypatch.setattr("catalog.core.sqlite_file.filesystem_type", lambda path, mountinfo=None: "nfs")
    result = run_cli("init")
    assert result.exit_code == 2
    assert "on a nfs file system, not one known to be local" in result.stderr and "postgresql" in result.stderr.lower()


def test_postgresql_url_without_driver_is_normalised(tmp_path: Path) -> None:
    s = load_settings(env={"CRYPTORUN_CATALOG_URL": "postgresql://u@h/db"}, cwd=tmp_path)
    assert s.catalog_url == "postgresql+psycopg://u@h/db"
