"""Helpers shared by the test modules (fixtures live in conftest.py).

Import them as ``from helpers import …``: pytest puts this folder on the path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import event

from catalog.core.records import ArtifactRecord
from catalog.core.settings import ENV_VARS
from catalog.ops.query import iter_artifacts

BACKEND = os.environ.get("CATALOG_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("CATALOG_TEST_PG_URL", "")
REQUIRE_BACKEND = os.environ.get("CATALOG_TEST_REQUIRE_BACKEND") == "1"
SLOW = os.environ.get("CATALOG_SLOW_TESTS") == "1"
#: The system's temp folder, which every user may enter (each test's own TMPDIR lies in pytest's private folder).
SYSTEM_TMP = tempfile.gettempdir()


def _unavailable(reason: str) -> None:
    if REQUIRE_BACKEND:
        pytest.fail(f"backend required but unavailable: {reason}")
    pytest.skip(reason)


class Cli:
    """Runs the CLI in-process against this test's store."""

    def __init__(self, base_dir: Path, catalog_url: str | None) -> None:
        self.base_args = ["--base-dir", str(base_dir)] + (["--catalog-url", catalog_url] if catalog_url else [])
        self.runner = CliRunner()

    def __call__(self, *args: str, input: bytes | str | None = None, global_args: list[str] | None = None):  # type: ignore[no-untyped-def]
        from catalog.cli import cli

        argv = (self.base_args if global_args is None else global_args) + list(args)
        return self.runner.invoke(cli, argv, input=input, catch_exceptions=False)


#: What may stand at a catalogued path instead of its file, and the one verdict every verb gives it (issue 14).
NOT_REGULAR = {
    "symlink-to-identical-copy": "not a regular file (symlink)",
    "symlink-to-dev-zero": "not a regular file (symlink)",
    "fifo": "not a regular file (FIFO)",
    "folder": "not a regular file (folder)",
    "socket": "not a regular file (socket)",
    "linked-type-folder": "explain/ is a symlink, not a folder",
}


def plant(path: Path, what: str, outside: Path) -> None:
    """Put ``what`` (a key of NOT_REGULAR) where the store file ``path`` was.

    ``outside`` (a folder beyond the store) first gets an identical copy of the
    file; for ``linked-type-folder`` it gets the whole folder, which becomes a
    symlink to it.
    """
    copy = outside / path.name
    copy.write_bytes(path.read_bytes())
    path.chmod(0o644)
    if what == "linked-type-folder":
        for name in os.listdir(path.parent):
            os.replace(path.parent / name, outside / name)
        path.parent.rmdir()
        path.parent.symlink_to(outside)
        return
    path.unlink()
    if what == "symlink-to-identical-copy":
        path.symlink_to(copy)
    elif what == "symlink-to-dev-zero":
        path.symlink_to("/dev/zero")
    elif what == "fifo":
        os.mkfifo(path)
    elif what == "folder":
        path.mkdir()
    elif what == "socket":
        here = os.getcwd()
        os.chdir(path.parent)  # a socket's path is limited to 108 bytes: bind the bare name
        try:
            with socket.socket(socket.AF_UNIX) as server:
                server.bind(path.name)
        finally:
            os.chdir(here)
    else:
        raise ValueError(what)


def subcommands(group: click.Group) -> dict[str, click.Command]:
    """A group's commands by name, each looked up as click does (the root imports a command's module then)."""
    ctx = click.Context(group)
    return {name: command for name in group.list_commands(ctx) if (command := group.get_command(ctx, name))}


def catalog_env(base_dir: Path, catalog_url: str | None) -> dict[str, str]:
    """Environment for a subprocess that should use this test's store."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["CRYPTORUN_ARTIFACTS_DIR"] = str(base_dir)
    if catalog_url:
        env["CRYPTORUN_CATALOG_URL"] = catalog_url
    return env


def run_python(code: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (for concurrency and crash tests)."""
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)


def store_files(base_dir: Path) -> list[str]:
    """Every file in the store except the SQLite catalog itself, relative."""
    return sorted(
        p.relative_to(base_dir).as_posix()
        for p in base_dir.rglob("*")
        if p.is_file() and not p.name.startswith("catalog.sqlite")
    )


def write_events(catalog) -> list:  # type: ignore[no-untyped-def]
    """The catalog's ``write`` events (init adds a ``schema_upgrade`` one before them)."""
    return [event for event in catalog.events() if event.action == "write"]


def tamper(catalog, *statements: str, tree: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Run SQL behind the catalog's back: append-only triggers and foreign keys off, then on again.

    This is what an attacker with direct database access can do; the audit log
    must still notice. ``tree``: then rebuild the log's Merkle tree from the
    edited events, as a careful insider would (or as a transaction that never
    committed would have left it).
    """
    import sqlite3

    from sqlalchemy import text

    if catalog.db.is_sqlite:
        conn = sqlite3.connect(catalog.db.sqlite_path, isolation_level=None)
        try:
            triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("BEGIN IMMEDIATE")
            for name, _ in triggers:
                conn.execute(f"DROP TRIGGER {name}")
            for statement in statements:
                conn.execute(statement)
            if tree:
                conn.execute("DELETE FROM merkle_nodes")
                texts = [row[0] for row in conn.execute("SELECT text FROM events ORDER BY seq")]
                conn.executemany("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)", _tree_rows(texts))
            for _, sql in triggers:
                conn.execute(sql)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    tables = ("events", "artifacts", "merkle_nodes", "holds", "policy_floors")
    with catalog.db.engine.begin() as conn:
        for table in tables:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER ALL"))
        for statement in statements:
            conn.exec_driver_sql(statement)
        if tree:
            conn.exec_driver_sql("DELETE FROM merkle_nodes")
            texts = [row[0] for row in conn.exec_driver_sql("SELECT text FROM events ORDER BY seq")]
            rows = [dict(level=level, idx=idx, hash=digest) for level, idx, digest in _tree_rows(texts)]
            if rows:
                conn.execute(text("INSERT INTO merkle_nodes (level, idx, hash) VALUES (:level, :idx, :hash)"), rows)
        for table in tables:
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER ALL"))


def _tree_rows(texts: list[str]) -> list[tuple[int, int, bytes]]:
    """Every node of the Merkle tree over events with these texts, in seq order."""
    from catalog.core.tree import Frontier, leaf

    frontier = Frontier()
    return [node for event_text in texts for node in frontier.add(leaf(event_text))]


def all_records(catalog: Any, query: Any = None) -> list[ArtifactRecord]:
    """The artifacts matching ``query`` (an ArtifactQuery; default: all, newest first)."""
    return list(iter_artifacts(catalog) if query is None else iter_artifacts(catalog, query))


def representative_workload(catalog: Any, writer: Any, out_dir: Path) -> None:
    """Every kind of change the API makes, once: writes (single and a pair), holds, floors, extensions,
    a verify run, reconcile fixing a deleted file, retention deleting expired rows, a web account added, changed and
    removed, a checkpoint and (SQLite) a backup.

    ``out_dir`` is an existing folder outside the store for the checkpoint and backup files.
    """
    from dataclasses import replace
    from datetime import datetime, timedelta, timezone

    from freezegun import freeze_time

    from catalog.core.settings import RetentionPolicy
    from catalog.cryptorun.demo import make_report
    from catalog.ops import checkpoints, operations, policy, reconcile, retention, users, verify

    utc = timezone.utc
    with freeze_time(datetime(2020, 5, 1, tzinfo=utc)):  # long expired (first: the log's clock never runs back)
        writer.write_json("health", "old", {"n": 1})
        writer.write_json("health", "older", {"n": 2})
    kept = writer.write_json("ledger", "kept", {"cash": 1})
    writer.write_explain_report(make_report(3, seed=1), "pair")
    hold = policy.add_hold(catalog, prefix="older", reason="inquiry")
    policy.release_hold(catalog, hold.id, "closed")
    policy.add_hold(catalog, prefix="kept", reason="still open")
    policy.set_floor(catalog, "ledger", 365, "books")
    policy.set_floor(catalog, "ledger", 400, "stricter")
    policy.extend(catalog, [kept], datetime.now(utc) + timedelta(days=4000), "litigation")
    verify.verify(catalog)
    gone = writer.write_json("ledger", "gone", {"cash": 2})
    (catalog.base_dir / gone.path).unlink()
    reconcile.reconcile(catalog, fix=True)
    catalog.settings = replace(
        catalog.settings, retention=dict(catalog.settings.retention, health=RetentionPolicy(0, "delete"))
    )
    retention.apply(catalog)
    users.add_user(catalog, "alice", "viewer")
    users.set_role(catalog, "alice", "compliance", "joined compliance")
    users.remove_user(catalog, "alice", "left")
    checkpoints.take_checkpoint(catalog, out_dir / "checkpoint.json")
    if catalog.db.is_sqlite:
        operations.backup(catalog, out_dir / "backup.sqlite")


def runnable_cells(data: bytes | str) -> list[str]:
    """The cells of a CSV that a spreadsheet would run as a formula (OWASP, "CSV Injection"), as it parses them.

    A cell runs when its first character, or first after white space, is = + - @ tab or CR (NFKC:
    full-width and small forms too), unless it starts with ``'`` or is a plain number. A bare
    (unquoted) CR ends a row here as it does in a spreadsheet.
    """
    import csv
    import io
    import unicodedata

    text = data.decode("utf-8") if isinstance(data, bytes) else data

    def runs(cell: str) -> bool:
        if cell.startswith("'"):
            return False
        try:
            float(cell)
            return False
        except ValueError:
            pass
        return any(unicodedata.normalize("NFKC", c)[:1] in ("=", "+", "-", "@", "\t", "\r") for c in (cell[:1], cell.lstrip()[:1]))

    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row if runs(cell)]


NOBODY = 65534


def as_nobody(work: Callable[[], str], groups: tuple[int, ...] = ()) -> str:
    """The text ``work()`` returns in a forked child that dropped root for nobody (and ``groups``).

    The interpreter lives where nobody may not read: ``work`` must import nothing new.
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.setgroups(list(groups))
            os.setgid(groups[0] if groups else NOBODY)
            os.setuid(NOBODY)
            os.environ["TMPDIR"] = tempfile.tempdir = SYSTEM_TMP  # the test's own temp folder is root's
            os.write(writer, work().encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        shown = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, shown
    return shown


@contextmanager
def transactions(catalog: Any) -> Iterator[list[dict[str, Any]]]:
    """Every transaction on the catalog's engine: whether it writes, and its statements (whitespace folded)."""
    seen: list[dict[str, Any]] = []
    state = {"open": False}

    def on_sql(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":  # a lone statement, its own transaction (no commit event)
            seen.append({"write": False, "sql": [" ".join(statement.split())]})
            return
        if not state["open"]:
            seen.append({"write": bool(options.get("catalog_write")), "sql": []})
            state["open"] = True
        seen[-1]["sql"].append(" ".join(statement.split()))

    def on_end(conn: Any) -> None:
        state["open"] = False

    engines = {id(e): e for e in (catalog.db.engine, catalog.db.read_engine.engine)}.values()  # (SQLite: 2 pools)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", on_sql)
        event.listen(engine, "commit", on_end)
        event.listen(engine, "rollback", on_end)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", on_sql)
            event.remove(engine, "commit", on_end)
            event.remove(engine, "rollback", on_end)
