"""The single small write (issue 17): what a writer remembers between writes, and when it must not trust it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from catalog.core.errors import CatalogDatabaseError, CollisionError, CommitError
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops import policy

from helpers import BACKEND, all_records, catalog_env, store_files, transactions


@contextmanager
def _statements(catalog: Catalog) -> Iterator[list[str]]:
    """Every statement run on the catalog's engines meanwhile (whitespace folded)."""
    seen: list[str] = []
    with transactions(catalog) as found:
        yield seen
    seen.extend(statement for transaction in found for statement in transaction["sql"])


def _reads(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if s.startswith("SELECT") and f"FROM {table}" in s]


def test_a_writer_does_not_read_again_what_nothing_changed(catalog: Catalog, writer: AtomicWriter) -> None:
    """Floors, the tree's border and the store's bytes are read once; the writer's next writes reuse them."""
    writer.write_json("health", "first", {"n": 0})  # reads what it needs once
    with _statements(catalog) as seen:
        for n in range(1, 5):  # odd and even leaves: an odd one needs its left sibling, which the writer made
            writer.write_json("health", f"next{n}", {"n": n})
    assert _reads(seen, "policy_floors") == [] and _reads(seen, "merkle_nodes") == []
    assert [s for s in seen if "sum(folder_usage.bytes)" in s] == []
    assert [s for s in seen if s.startswith("INSERT INTO artifacts")] != []  # the listener saw the writes


def test_a_writer_reads_again_after_another_changed_the_catalog(catalog: Catalog, writer: AtomicWriter) -> None:
    writer.write_json("health", "first", {"n": 0})
    with Catalog(catalog.settings) as other, AtomicWriter(catalog=other) as someone_else:
        someone_else.write_json("health", "theirs", {"n": 1})
    with _statements(catalog) as seen:
        writer.write_json("health", "second", {"n": 2})
    assert len(_reads(seen, "policy_floors")) == 1


def test_a_floor_raised_by_another_process_binds_a_writer_that_wrote_before(catalog: Catalog,
                                                                            writer: AtomicWriter) -> None:  # fmt: skip
    before = writer.write_json("health", "before", {"n": 0})  # the writer has read the floors: none
    assert before.retain_until == before.recorded_at + timedelta(days=14)
    raised = subprocess.run(
        [sys.executable, "-m", "catalog", "policy", "floor", "set", "health", "400", "--reason", "audit rule"],
        env=catalog_env(catalog.base_dir, None if catalog.db.is_sqlite else catalog.settings.catalog_url),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert raised.returncode == 0, raised.stderr
    after = writer.write_json("health", "after", {"n": 1})
    assert after.retain_until == after.recorded_at + timedelta(days=400)


def test_a_floor_raised_through_the_writers_own_catalog_binds_its_next_write(catalog: Catalog,
                                                                            writer: AtomicWriter) -> None:  # fmt: skip
    writer.write_json("health", "before", {"n": 0})
    policy.set_floor(catalog, "health", 400, "audit rule")  # the writer's own handle commits it: it remembers that
    after = writer.write_json("health", "after", {"n": 1})
    assert after.retain_until == after.recorded_at + timedelta(days=400)


def test_a_name_only_the_catalog_holds_is_refused_before_a_byte_is_published(catalog: Catalog, writer: AtomicWriter,
                                                                             base_dir: Path) -> None:  # fmt: skip
    """A deleted artifact keeps its row: its name is taken though no file has it, and nothing lands."""
    first = writer.write_bytes("health", "gone", b"x", "txt", created_at=_moment())
    catalog.change_status(first.id, action="delete", status="deleted")
    (base_dir / first.path).chmod(0o644)
    (base_dir / first.path).unlink()
    with pytest.raises(CollisionError, match="already exists"):
        writer.write_bytes("health", "gone", b"y", "txt", created_at=_moment())
    assert store_files(base_dir) == [] and [r.status for r in all_records(catalog)] == ["deleted"]


@pytest.mark.parametrize("count", [1, 23, 24, 25, 60])
def test_paths_taken_answers_for_any_count(catalog: Catalog, writer: AtomicWriter, count: int) -> None:
    """The collision check asks 24 paths per statement: a taken path is found wherever it falls, repeats and
    padding never invent one."""
    taken = [writer.write_bytes("health", f"t{n}", b"x", "txt").path for n in range(3)]
    asked = [f"health/20240101-0000{n % 60:02d}-free{n}-health.txt" for n in range(count)]
    for spot, path in zip((0, count // 2, count - 1), taken):
        asked[spot] = path
    asked += asked[:2]  # a path asked twice
    assert catalog.paths_taken(asked) == set(taken) & set(asked) != set()
    assert catalog.paths_taken([]) == set()


def _moment() -> Any:
    from datetime import datetime, timezone

    return datetime(2024, 2, 29, 23, 59, 58, tzinfo=timezone.utc)


def test_a_row_taken_between_check_and_commit_is_the_constraint_s_refusal(catalog: Catalog, writer: AtomicWriter,
                                                                          base_dir: Path, monkeypatch) -> None:  # fmt: skip
    """Statements run on the driver's cursor still raise SQLAlchemy's IntegrityError, which the writer names."""
    first = writer.write_bytes("health", "race", b"x", "txt", created_at=_moment())
    catalog.change_status(first.id, action="delete", status="deleted")
    (base_dir / first.path).chmod(0o644)
    (base_dir / first.path).unlink()
    monkeypatch.setattr(Catalog, "paths_taken", lambda self, paths: set())  # the check ran before the row existed
    with pytest.raises(CommitError, match=r"\(another row already has this path\); the file is complete and kept"):
        writer.write_bytes("health", "race", b"y", "txt", created_at=_moment())


# -- the connections a SQLite writer keeps (catalog.core.db._Kept) ---------------------------------------------

sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite keeps a connection per process; PostgreSQL pools")


@contextmanager
def _checkouts(catalog: Catalog) -> Iterator[list[str]]:
    """Each pool checkout on the catalog's engines meanwhile ("write" or "read")."""
    seen: list[str] = []
    listeners = [(catalog.db.engine, lambda *_: seen.append("write")), (catalog.db.read_engine, lambda *_: seen.append("read"))]
    for engine, listener in listeners:
        event.listen(engine, "checkout", listener)
    try:
        yield seen
    finally:
        for engine, listener in listeners:
            event.remove(engine, "checkout", listener)


@sqlite_only
def test_a_writer_s_check_and_commit_take_no_connection_from_the_pool(catalog: Catalog, writer: AtomicWriter) -> None:
    """Each write's collision check and commit run on the connections the process keeps: no pool round per write."""
    writer.write_json("health", "first", {"n": 0})
    with _checkouts(catalog) as seen:
        for n in range(1, 4):
            writer.write_json("health", f"next{n}", {"n": n})
    assert seen == []
    assert len(all_records(catalog)) == 4


@sqlite_only
def test_a_failed_transaction_leaves_the_next_one_a_working_connection(catalog: Catalog, writer: AtomicWriter) -> None:
    """A block that raises rolls back; a connection the driver broke is dropped: the next write opens a new one."""
    writer.write_json("health", "first", {"n": 0})
    with pytest.raises(RuntimeError), catalog.change() as tx:
        tx.events.append("backup", details={"to": "nowhere"})
        raise RuntimeError("the caller's own failure")
    writer.write_json("health", "between", {"n": 1})
    broken = catalog.db._writing._conn[1]  # type: ignore[index]
    broken.connection.dbapi_connection.close()  # type: ignore[union-attr]  # the driver's connection dies under it
    with pytest.raises(CatalogDatabaseError):
        with catalog.change() as tx:
            tx.events.append("backup", details={"to": "nowhere"})
    second = writer.write_json("health", "second", {"n": 2})
    assert second.path in {r.path for r in all_records(catalog)}
    assert [e.action for e in catalog.events()].count("backup") == 0 and catalog.audit_verify().ok


@sqlite_only
def test_a_forked_child_writes_on_a_connection_of_its_own(catalog: Catalog, writer: AtomicWriter) -> None:
    writer.write_json("health", "parent", {"n": 0})
    parent = catalog.db._writing._conn[1]  # type: ignore[index]
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports by its exit status
        code = 1
        try:
            writer.write_json("health", "child", {"n": 1})
            code = 0 if catalog.db._writing._conn[1] is not parent else 3  # type: ignore[index]
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    writer.write_json("health", "parent-again", {"n": 2})
    assert catalog.db._writing._conn[1] is parent  # type: ignore[index]
    assert len(all_records(catalog)) == 3 and catalog.audit_verify().ok


@sqlite_only
def test_a_check_while_another_thread_uses_the_kept_reader_takes_a_pooled_one(catalog: Catalog,
                                                                              writer: AtomicWriter) -> None:  # fmt: skip
    taken = writer.write_json("health", "taken", {"n": 0}).path
    answers: list[set[str]] = []
    with catalog.db._reading.lock:  # another thread is reading on it: never wait for it
        worker = threading.Thread(target=lambda: answers.append(catalog.paths_taken([taken, "health/free.json"])))
        worker.start()
        worker.join(timeout=30)
    assert not worker.is_alive() and answers == [{taken}]


def test_the_actor_s_passwd_entry_is_looked_up_once_per_process(catalog: Catalog, monkeypatch) -> None:
    from catalog.core import chain

    looked: list[int] = []
    real = chain.pwd.getpwuid
    monkeypatch.setattr(chain.pwd, "getpwuid", lambda uid: looked.append(uid) or real(uid))
    with Catalog(catalog.settings) as fresh, AtomicWriter(catalog=fresh, actor="cron") as writer:
        records = [writer.write_json("health", f"n{n}", {"n": n}) for n in range(3)]
    assert looked == [os.geteuid()]
    actors = {e.actor for e in catalog.events() if e.path in {r.path for r in records}}
    assert actors == {f"{chain.process_identity()} (claims cron)"}


def test_threads_sharing_one_writer_take_turns_on_its_kept_connections(catalog: Catalog, writer: AtomicWriter) -> None:
    """A web server's threads write through one catalog: each write has the connections to itself in turn."""
    failures: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for k in range(5):
                writer.write_json("health", f"t{n}-{k}", {"n": n, "k": k})
                catalog.paths_taken([f"health/20240101-000000-t{n}-health.json"])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and len(all_records(catalog)) == 30 and catalog.audit_verify().ok


def test_a_kept_reader_the_server_dropped_is_replaced_and_the_check_answers(catalog: Catalog, writer: AtomicWriter) -> None:
    """A restart (PostgreSQL) or a closed handle (SQLite) between two writes: the check runs once more, on a new
    connection, and answers; the write after it goes through."""
    taken = writer.write_json("health", "before", {"n": 0}).path
    kept = catalog.db._reading._conn[1]  # type: ignore[union-attr, index]
    if BACKEND == "postgresql":
        pid = kept.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        with catalog.db.engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
            admin.commit()
    else:
        kept.connection.dbapi_connection.close()  # type: ignore[union-attr]
    assert catalog.paths_taken([taken, "health/free.json"]) == {taken}
    assert catalog.db._reading._conn[1] is not kept  # type: ignore[index]
    after = writer.write_json("health", "after", {"n": 1})
    assert {r.path for r in all_records(catalog)} == {taken, after.path} and catalog.audit_verify().ok
