"""The unit of work (catalog.core.unit_of_work): every change with its event, the lock first, usage in step."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy.exc as sa_exc
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy import event as sa_event

from catalog.core import chain
from catalog.core.crossings import WARN_AT, Crossings
from catalog.core.errors import CatalogDatabaseError, NotFoundError, ValidationError
from catalog.core.names import parse_name
from catalog.core.records import ArtifactRecord, Outcome, PublishedFile
from catalog.core.schema import ARTIFACTS, CHAIN_HEAD, EVENTS, FLOORS, FOLDER_USAGE, HOLDS, VERIFY_RESULTS, VERIFY_RUNS
from catalog.core.settings import Limits, load_settings
from catalog.core.store import Catalog
from catalog.core.unit_of_work import UnitOfWork
from catalog.core.vocabulary import ON_DISK
from catalog.cryptorun.demo import make_report
from catalog.cryptorun.writer import AtomicWriter

from helpers import representative_workload
from helpers import transactions as _transactions

UTC = timezone.utc
LATER = datetime(2099, 1, 1, tzinfo=UTC)


# -- helpers -------------------------------------------------------------------------------------


def _head(catalog: Catalog) -> tuple[int, str]:
    with catalog.read() as conn:
        row = conn.execute(select(CHAIN_HEAD.c.seq, CHAIN_HEAD.c.hash).where(CHAIN_HEAD.c.id == 1)).one()
    return row.seq, row.hash


def _events_after(catalog: Catalog, seq: int) -> list[tuple[Any, ...]]:
    return [(e.action, e.artifact_id, e.path, e.status, dict(e.details)) for e in catalog.events() if e.seq > seq]


def _usage(catalog: Catalog) -> dict[str, tuple[int, int]]:
    """folder_usage, without the folders that are empty now."""
    with catalog.read() as conn:
        rows = conn.execute(select(FOLDER_USAGE.c.folder, FOLDER_USAGE.c.files, FOLDER_USAGE.c.bytes)).all()
    return {r.folder: (r.files, r.bytes) for r in rows if (r.files, r.bytes) != (0, 0)}


def _usage_from_rows(catalog: Catalog) -> dict[str, tuple[int, int]]:
    """What folder_usage must say: the artifacts on disk, counted per folder."""
    c = ARTIFACTS.c
    with catalog.read() as conn:
        rows = conn.execute(
            select(c.folder, func.count(), func.sum(c.size)).where(c.status.in_(ON_DISK)).group_by(c.folder)
        ).all()
    return {folder: (int(files), int(size)) for folder, files, size in rows}


def _state(catalog: Catalog) -> tuple[Any, ...]:
    """Everything a change could touch: rows, events, usage, holds, floors, runs, the head."""
    with catalog.read() as conn:
        tables = tuple(
            conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            for table in (ARTIFACTS, EVENTS, FOLDER_USAGE, HOLDS, FLOORS, VERIFY_RUNS, VERIFY_RESULTS, CHAIN_HEAD)
        )
    return tables


@pytest.fixture
def record(writer: AtomicWriter) -> ArtifactRecord:
    return writer.write_json("ledger", "p", {"cash": 1})


# -- every change writes its event -------------------------------------------------------------------


def test_set_status_writes_its_event(catalog: Catalog, record: ArtifactRecord) -> None:
    seq, _ = _head(catalog)
    target = "ledger/archived/2024-01/" + record.path.split("/")[-1]
    with catalog.change() as tx:
        changed = tx.artifacts.set_status(record.id, action="archive", status="archived", path=target,
                                          retain_until=LATER, details={"reason": "policy"})  # fmt: skip
    assert changed == replace(record, path=target, status="archived", retain_until=LATER)
    assert catalog.find_id(record.id) == changed
    assert _events_after(catalog, seq) == [
        ("archive", record.id, target, "archived",
         {"from_status": "active", "status": "archived", "path": target, "retain_until": "2099-01-01T00:00:00.000000Z",
          "from_path": record.path, "reason": "policy"}),
    ]  # fmt: skip
    assert catalog.audit_verify().ok


def test_set_status_in_place_records_only_what_changed(catalog: Catalog, record: ArtifactRecord) -> None:
    seq, _ = _head(catalog)
    with catalog.change() as tx:
        tx.artifacts.set_status(record.id, action="missing", status="missing", path=record.path)
    assert _events_after(catalog, seq) == [
        ("missing", record.id, record.path, "missing", {"from_status": "active", "status": "missing"})
    ]
    assert catalog.audit_verify().ok


@pytest.mark.parametrize(
    "artifact_id, status, error, message",
    [(999, "deleted", NotFoundError, "no artifact with id 999"),
     (None, "gone", ValidationError,
      "unknown status 'gone'; choose one of: active, archived, deleted, missing, quarantined")],
    ids=["unknown-id", "unknown-status"],
)  # fmt: skip
def test_set_status_refuses(catalog: Catalog, record: ArtifactRecord, artifact_id: int | None, status: str,
                            error: type[Exception], message: str) -> None:  # fmt: skip
    before = _state(catalog)
    with pytest.raises(error) as caught:
        with catalog.change() as tx:
            tx.artifacts.set_status(artifact_id or record.id, action="x", status=status)
    assert str(caught.value) == message
    assert _state(catalog) == before


def test_holds_place_and_release_write_their_events(catalog: Catalog) -> None:
    seq, _ = _head(catalog)
    since = datetime(2024, 1, 1, tzinfo=UTC)
    with catalog.change() as tx:
        row = tx.holds.place("prefix", "mom*", since=since, until=None, reason="SEC inquiry")
    assert (row.selector_kind, row.selector, row.since, row.until, row.reason, row.released_at) == (
        "prefix", "mom*", since, None, "SEC inquiry", None)  # fmt: skip
    assert row.placed_by == catalog.actor
    with catalog.change() as tx:
        tx.holds.release(row.id, "closed")
    assert _events_after(catalog, seq) == [
        ("hold_place", None, None, None, {"hold": row.id, "kind": "prefix", "selector": "mom*", "reason": "SEC inquiry",
                                          "since": "2024-01-01T00:00:00.000000Z", "until": None}),
        ("hold_release", None, None, None, {"hold": row.id, "reason": "closed"}),
    ]  # fmt: skip
    with catalog.read() as conn:
        released = conn.execute(select(HOLDS).where(HOLDS.c.id == row.id)).one()
    assert (released.released_by, released.release_reason) == (catalog.actor, "closed")
    assert released.released_at is not None
    assert catalog.audit_verify().ok


def test_holds_release_refuses_unknown_and_released(catalog: Catalog) -> None:
    with catalog.change() as tx:
        hold_id = tx.holds.place("type", "ledger", since=None, until=None, reason="r").id
        tx.holds.release(hold_id, "done")
    before = _state(catalog)
    with pytest.raises(ValidationError, match=rf"^hold {hold_id} was already released \(\d{{4}}-"):
        with catalog.change() as tx:
            tx.holds.release(hold_id, "again")
    with pytest.raises(NotFoundError, match="^no hold with id 999$"):
        with catalog.change() as tx:
            tx.holds.release(999, "nope")
    assert _state(catalog) == before


def test_floors_set_writes_its_event(catalog: Catalog) -> None:
    seq, _ = _head(catalog)
    with catalog.change() as tx:
        assert tx.floors.set("ledger", 365, "books") is None
        assert tx.floors.get("ledger") == 365
        assert tx.floors.set("ledger", 400, "stricter") == 365
    assert _events_after(catalog, seq) == [
        ("policy_floor", None, None, None, {"type": "ledger", "from": None, "to": 365, "reason": "books"}),
        ("policy_floor", None, None, None, {"type": "ledger", "from": 365, "to": 400, "reason": "stricter"}),
    ]
    with catalog.read() as conn:
        assert conn.execute(select(FLOORS.c.type, FLOORS.c.days)).all() == [("ledger", 400)]
    assert catalog.audit_verify().ok


def test_verify_runs_write_their_events(catalog: Catalog, writer: AtomicWriter) -> None:
    good = writer.write_json("ledger", "good", {})
    bad = writer.write_json("ledger", "bad", {})
    seq, _ = _head(catalog)
    started = datetime(2024, 1, 1, tzinfo=UTC)
    with catalog.change() as tx:
        run_id = tx.verify_runs.start(started_at=started, scope='{"types": []}', sample=None, subset=None)
    assert _events_after(catalog, seq) == []  # a run's event comes when it finishes
    with catalog.change() as tx:
        tx.verify_runs.add_results(run_id, [Outcome(good.id, good.path, "ok", None),
                                            Outcome(bad.id, bad.path, "failed", "size 3 (recorded 2)")])  # fmt: skip
        tx.verify_runs.add_results(run_id, [])
        tx.verify_runs.finish(run_id, checked=2, ok=1, failed=1, missing=0, duration_s=0.5, scope={"types": []})
    assert _events_after(catalog, seq) == [
        ("verify_failure", bad.id, bad.path, None, {"run_id": run_id, "outcome": "failed",
                                                     "detail": "size 3 (recorded 2)"}),
        ("verify_run", None, None, None, {"run_id": run_id, "scope": {"types": []}, "checked": 2, "ok": 1,
                                          "failed": 1, "missing": 0}),
    ]  # fmt: skip
    with catalog.read() as conn:
        run = conn.execute(select(VERIFY_RUNS)).one()
        results = conn.execute(select(VERIFY_RESULTS.c.artifact_id, VERIFY_RESULTS.c.outcome)
                               .order_by(VERIFY_RESULTS.c.id)).all()  # fmt: skip
    assert (run.started_at, run.checked, run.ok, run.failed, run.missing, run.duration_s) == (started, 2, 1, 1, 0, 0.5)
    assert run.finished_at is not None
    assert results == [(good.id, "ok"), (bad.id, "failed")]
    assert catalog.audit_verify().ok


def _file(path: str, size: int) -> PublishedFile:
    folder, _, name = path.rpartition("/")
    parsed = parse_name(name)
    assert parsed is not None
    return PublishedFile(path=path, type=parsed.type, prefix=parsed.prefix, ext=parsed.ext, created_at=parsed.created_at,
                         size=size, sha256=f"{size:064x}")  # fmt: skip


def test_record_many_is_one_insert_per_table_in_order(catalog: Catalog) -> None:
    """A batch's rows: one INSERT for the rows, one for the events, one usage statement per folder; ids, events
    and the chain in the order given, exactly as one record() each would leave them."""
    items = [_file("ledger/20240101-000003-b-ledger.json", 30), _file("explain/20240101-000001-z-explain.json", 10),
             _file("ledger/20240101-000002-a-ledger.json", 20)]  # fmt: skip
    statements: list[str] = []
    head = _head(catalog)
    with catalog.change() as tx:
        sa_event.listen(tx._conn, "before_cursor_execute", lambda *a: statements.append(a[2].split("(")[0].strip()))
        records = tx.artifacts.record_many(items)
    assert [r.path for r in records] == [i.path for i in items] and [r.id for r in records] == sorted(r.id for r in records)
    assert [catalog.find_id(r.id).path for r in records] == [i.path for i in items]
    assert [(a, i, p) for a, i, p, *_ in _events_after(catalog, head[0])] == [("write", r.id, r.path) for r in records]
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert inserts == ["INSERT INTO folder_usage", "INSERT INTO folder_usage", "INSERT INTO artifacts",
                       "INSERT INTO events", "INSERT INTO merkle_nodes"]  # fmt: skip
    assert _usage(catalog) == {"ledger": (2, 50), "explain": (1, 10)} == _usage_from_rows(catalog)
    assert catalog.audit_verify().ok


@pytest.mark.parametrize("count", [16, 17, 40])
def test_record_many_past_one_statement_keeps_every_row_whole_and_in_order(catalog: Catalog, count: int) -> None:
    """Rows go in statements of at most 16: each row reads back exactly as returned (times, sizes, hashes), with its
    event, ids and events in the order given, usage summed over every statement."""
    items = [_file(f"{'ledger' if n % 3 else 'health'}/20240101-0000{n:02d}-r{n}-{'ledger' if n % 3 else 'health'}.json",
                   n + 1) for n in range(count)]  # fmt: skip
    head = _head(catalog)
    with catalog.change() as tx:
        records = tx.artifacts.record_many(items)
    assert [r.path for r in records] == [i.path for i in items] and [r.id for r in records] == sorted(r.id for r in records)
    assert [catalog.find_id(r.id) for r in records] == records
    assert [(a, i, p) for a, i, p, *_ in _events_after(catalog, head[0])] == [("write", r.id, r.path) for r in records]
    assert _usage(catalog) == _usage_from_rows(catalog)
    assert catalog.audit_verify().ok


def test_record_many_with_an_actor_short_writes_nothing(catalog: Catalog) -> None:
    items = [_file("ledger/20240101-000001-a-ledger.json", 1), _file("ledger/20240101-000002-b-ledger.json", 2)]
    head = _head(catalog)
    with pytest.raises(ValueError), catalog.change() as tx:
        tx.artifacts.record_many(items, ["only@one:1"])
    assert _head(catalog) == head and _usage(catalog) == _usage_from_rows(catalog) and catalog.find_path(items[0].path) is None


def test_events_append_writes_one_event(catalog: Catalog, record: ArtifactRecord) -> None:
    seq, _ = _head(catalog)
    at = record.recorded_at + timedelta(minutes=1, microseconds=123)  # after its predecessor: kept as given
    with catalog.change(actor="someone@else:1") as tx:
        assert tx.events.append("retention_intent", artifact_id=record.id, path=record.path,
                                details={"op": "delete"}, at=at) == seq + 1  # fmt: skip
    assert _events_after(catalog, seq) == [("retention_intent", record.id, record.path, None, {"op": "delete"})]
    (stored,) = [e for e in catalog.events() if e.seq == seq + 1]
    assert (stored.at, stored.actor) == (at, "someone@else:1")
    assert catalog.audit_verify().ok


# -- a change without its event cannot be committed ---------------------------------------------------


def test_if_the_event_fails_the_row_change_is_rolled_back(
    catalog: Catalog, record: ArtifactRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _state(catalog)

    def refuse(self: UnitOfWork, *args: Any, **kwargs: Any) -> int:
        raise RuntimeError("the event could not be written")

    monkeypatch.setattr(UnitOfWork, "_append", refuse)
    with pytest.raises(RuntimeError, match="^the event could not be written$"):
        with catalog.change() as tx:
            tx.artifacts.set_status(record.id, action="delete", status="deleted")
    assert _state(catalog) == before
    assert catalog.find_id(record.id) == record
    monkeypatch.undo()
    assert catalog.audit_verify().ok


@pytest.mark.parametrize(
    "statement",
    [update(ARTIFACTS).values(status="deleted"), ARTIFACTS.update().values(status="deleted"),
     insert(FLOORS).values(type="ledger", days=1), delete(ARTIFACTS), EVENTS.delete(),
     text("UPDATE artifacts SET status = 'deleted'"), text("SELECT 1")],
    ids=["update", "table-update", "insert", "delete", "delete-events", "text-update", "text-even-a-select"],
)  # fmt: skip
def test_tx_read_runs_selects_only(catalog: Catalog, record: ArtifactRecord, statement: Any) -> None:
    before = _state(catalog)
    with pytest.raises(TypeError) as caught:
        with catalog.change() as tx:
            tx.read(statement)
    assert str(caught.value) == (
        "UnitOfWork.read runs SELECT statements only; change rows through tx.artifacts and friends"
    )
    assert _state(catalog) == before


def test_tx_read_runs_a_select(catalog: Catalog, record: ArtifactRecord) -> None:
    with catalog.change() as tx:
        assert tx.read(select(ARTIFACTS.c.path).where(ARTIFACTS.c.id == record.id)).scalar_one() == record.path


@pytest.mark.parametrize(
    "statement, verb",
    [(ARTIFACTS.update().values(status="deleted"), "UPDATE"), (FLOORS.insert().values(type="ledger", days=1), "INSERT"),
     (FLOORS.delete(), "DELETE"), (text("UPDATE artifacts SET status = 'deleted'"), "UPDATE")],
    ids=["update", "insert", "delete", "text-update"],
)  # fmt: skip
def test_the_database_refuses_a_write_through_a_read_scope(
    catalog: Catalog, record: ArtifactRecord, statement: Any, verb: str
) -> None:
    before = _state(catalog)
    with pytest.raises(CatalogDatabaseError) as caught:
        with catalog.read() as conn:
            conn.execute(statement)
    cause = caught.value.__cause__
    if catalog.db.is_sqlite:
        assert isinstance(cause, sa_exc.OperationalError)
        assert str(caught.value) == f"catalog {catalog.db.location}: attempt to write a readonly database"
    else:
        assert isinstance(cause, sa_exc.InternalError)
        assert str(caught.value) == f"catalog {catalog.db.location}: cannot execute {verb} in a read-only transaction"
    assert _state(catalog) == before
    assert catalog.find_id(record.id).status == "active"


def test_if_the_block_raises_nothing_is_written(catalog: Catalog, record: ArtifactRecord) -> None:
    before = _state(catalog)
    with pytest.raises(KeyError):
        with catalog.change() as tx:
            tx.artifacts.set_status(record.id, action="delete", status="deleted")
            tx.events.append("checkpoint")
            tx.holds.place("type", "ledger", since=None, until=None, reason="r")
            tx.floors.set("ledger", 30, "r")
            assert tx.head[0] == before[-1][0].seq + 4  # the changes were made, inside
            raise KeyError("late failure")
    assert _state(catalog) == before
    assert catalog.audit_verify().ok


# -- the lock comes first -------------------------------------------------------------------------


def _lock_statement(catalog: Catalog) -> str:
    if catalog.db.is_sqlite:
        return ("SELECT chain_head.seq, chain_head.hash, (SELECT events.at FROM events WHERE events.seq = "
                "chain_head.seq) AS at FROM chain_head WHERE chain_head.id = ?")  # fmt: skip
    return ("SELECT chain_head.seq, chain_head.hash, (SELECT events.at FROM events WHERE events.seq = chain_head.seq) "
            "AS at FROM chain_head WHERE chain_head.id = %(id_1)s::INTEGER FOR UPDATE OF chain_head")  # fmt: skip


def _check_lock_first(catalog: Catalog, transactions: list[dict[str, Any]]) -> int:
    writes = [t["sql"] for t in transactions if t["write"]]
    for statements in writes:
        if catalog.db.is_sqlite:
            assert statements[0] == "BEGIN IMMEDIATE"
            statements = statements[1:]
        assert statements[0] == _lock_statement(catalog), statements[:3]
    return len(writes)


@pytest.mark.parametrize("action", ["events", "set_status", "holds", "floors"])
def test_the_chain_lock_is_the_first_statement(catalog: Catalog, record: ArtifactRecord, action: str) -> None:
    with _transactions(catalog) as seen:
        with catalog.change() as tx:
            if action == "events":
                tx.events.append("checkpoint")
            elif action == "set_status":
                tx.artifacts.set_status(record.id, action="missing", status="missing")
            elif action == "holds":
                tx.holds.place("type", "ledger", since=None, until=None, reason="r")
            else:
                tx.floors.set("ledger", 30, "r")
    assert _check_lock_first(catalog, seen) == 1
    assert [t["write"] for t in seen] == [True]


def test_every_write_transaction_of_the_api_takes_the_lock_first(
    catalog: Catalog, writer: AtomicWriter, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with _transactions(catalog) as seen:
        representative_workload(catalog, writer, out)
    assert _check_lock_first(catalog, seen) >= 20
    assert any(not t["write"] for t in seen)  # reads were seen too, and none of them was held to the lock


def test_the_head_is_moved_once_at_the_end_and_only_if_events_were_appended(catalog: Catalog) -> None:
    start = _head(catalog)
    with _transactions(catalog) as seen:
        with catalog.change() as tx:
            tx.verify_runs.start(started_at=datetime(2024, 1, 1, tzinfo=UTC), scope="{}", sample=None, subset=None)
        with catalog.change() as tx:
            tx.events.append("checkpoint")
            tx.events.append("backup")
    quiet, busy = [t["sql"] for t in seen if t["write"]]
    assert [s for s in quiet if s.startswith("UPDATE chain_head")] == []
    moves = [n for n, s in enumerate(busy) if s.startswith("UPDATE chain_head")]
    assert moves == [len(busy) - 1]  # once, last
    assert _head(catalog)[0] == start[0] + 2


def test_a_late_lock_is_noticed(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: a unit of work that reads before it locks is caught."""
    original = chain.lock_head

    def late(conn: Any) -> tuple[int, str]:
        conn.execute(select(ARTIFACTS.c.id).limit(1))
        return original(conn)

    monkeypatch.setattr(chain, "lock_head", late)
    with _transactions(catalog) as seen:
        with catalog.change() as tx:
            tx.events.append("checkpoint")
    with pytest.raises(AssertionError):
        _check_lock_first(catalog, seen)


# -- folder usage stays in step ------------------------------------------------------------------------


def _archived(record: ArtifactRecord) -> str:
    return "ledger/archived/2024-01/" + record.path.split("/")[-1]


MOVES: dict[str, list[tuple[str, str, Any]]] = {
    "archive": [("archive", "archived", _archived)],
    "archive-then-delete": [("archive", "archived", _archived), ("delete", "deleted", None)],
    "delete": [("delete", "deleted", None)],
    "missing-then-back": [("missing", "missing", None), ("adopt", "active", None)],
    "quarantine-then-delete": [("quarantine", "quarantined", lambda r: "quarantine/" + r.path),
                               ("delete", "deleted", None)],
    "extend-in-place": [("retain_extend", "active", None)],
    "archive-then-move-again": [("archive", "archived", _archived),
                                ("archive", "archived", lambda r: "ledger/archived/2024-02/" + r.path.split("/")[-1])],
}  # fmt: skip


@pytest.mark.parametrize("moves", list(MOVES.values()), ids=list(MOVES))
def test_folder_usage_follows_every_move(catalog: Catalog, writer: AtomicWriter, moves: list[Any]) -> None:
    moved = writer.write_json("ledger", "moved", {"cash": 1})
    writer.write_json("ledger", "stays", {"cash": 22})
    writer.write_explain_report(make_report(3, seed=1), "p")
    assert _usage(catalog) == _usage_from_rows(catalog)
    for action, status, path in moves:
        with catalog.change() as tx:
            tx.artifacts.set_status(moved.id, action=action, status=status, path=path(moved) if path else None,
                                    retain_until=LATER if action == "retain_extend" else None)  # fmt: skip
        assert _usage(catalog) == _usage_from_rows(catalog), action
    assert catalog.audit_verify().ok


def test_folder_usage_counts_files_and_bytes(catalog: Catalog, writer: AtomicWriter) -> None:
    a = writer.write_json("ledger", "a", {"cash": 1})
    b = writer.write_json("ledger", "b", {"cash": 22})
    e = writer.write_json("explain", "e", {"x": []})
    assert _usage(catalog) == {"ledger": (2, a.size + b.size), "explain": (1, e.size)}
    with catalog.change() as tx:
        tx.artifacts.set_status(a.id, action="archive", status="archived", path=_archived(a))
        tx.artifacts.set_status(e.id, action="delete", status="deleted")
    assert _usage(catalog) == {"ledger": (1, b.size), "ledger/archived/2024-01": (1, a.size)}
    assert _usage(catalog) == _usage_from_rows(catalog)


# -- the head and gapless seqs ------------------------------------------------------------------------


def test_the_head_moves_with_each_event_and_is_stored_on_commit(catalog: Catalog, record: ArtifactRecord) -> None:
    start = _head(catalog)
    with catalog.change() as tx:
        assert tx.head == start
        seqs = [tx.events.append("checkpoint", details={"n": n}) for n in range(3)]
        after_notes = tx.head
        tx.artifacts.set_status(record.id, action="missing", status="missing")
        tx.floors.set("ledger", 30, "r")
        inside = tx.head
    assert seqs == [start[0] + 1, start[0] + 2, start[0] + 3]
    assert after_notes[0] == start[0] + 3 and inside[0] == start[0] + 5
    assert _head(catalog) == inside
    last = list(catalog.events())[-1]
    assert (last.seq, last.hash) == inside
    assert [e.seq for e in catalog.events()] == list(range(1, inside[0] + 1))
    report = catalog.audit_verify()
    assert report.ok and (report.head_seq, report.head_hash) == inside


def test_a_rolled_back_change_leaves_no_gap(catalog: Catalog) -> None:
    start = _head(catalog)
    with pytest.raises(KeyError):
        with catalog.change() as tx:
            tx.events.append("checkpoint")
            raise KeyError("x")
    with catalog.change() as tx:
        assert tx.events.append("backup") == start[0] + 1
    assert [e.seq for e in catalog.events()] == list(range(1, start[0] + 2))
    assert catalog.audit_verify().ok


# -- limits crossed are logged once ------------------------------------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "catalog" and r.levelno == logging.WARNING]


def test_crossing_80_percent_of_a_folders_files_is_logged_once(
    catalog: Catalog, settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "artifacts.yaml"
    config.write_text("limits:\n  max_files_per_dir: 5\n", encoding="utf-8")
    small = load_settings(config, overrides={"base_dir": str(settings.base_dir), "catalog_url": settings.catalog_url},
                          env={})  # fmt: skip
    assert small.limits == Limits(5, 10 * 1024**3, 10 * 1024**3)
    caplog.set_level(logging.WARNING, logger="catalog")
    with Catalog(small) as limited:
        writer = AtomicWriter(catalog=limited)
        said = []
        for n in range(6):
            writer.write_json("ledger", f"p{n}", {"n": n})
            said.append(_warnings(caplog))
            caplog.clear()
    assert said == [[], [], [], ["folder ledger holds 4 files, 80% of its limit of 5 (catalog limits)"], [], []]


def test_crossing_80_percent_of_the_store_is_logged_once(
    catalog: Catalog, writer: AtomicWriter, caplog: pytest.LogCaptureFixture
) -> None:
    first = writer.write_json("health", "p0", {"n": 0})
    catalog.settings = replace(catalog.settings, limits=Limits(10_000, 10**12, 5 * first.size))
    caplog.set_level(logging.WARNING, logger="catalog")
    said = []
    for n in range(1, 5):
        writer.write_json("health", f"p{n}", {"n": n})
        said.append(_warnings(caplog))
        caplog.clear()
    four, five = 4 * first.size, 5 * first.size
    assert said == [[], [], [f"the store holds {four} bytes, 80% of its limit of {five} (catalog limits)"], []]


def test_a_change_that_adds_nothing_logs_nothing(catalog: Catalog, writer: AtomicWriter,
                                                 caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    for n in range(4):
        writer.write_json("ledger", f"p{n}", {"n": n})
    catalog.settings = replace(catalog.settings, limits=Limits(5, 10**12, 10**12))
    caplog.set_level(logging.WARNING, logger="catalog")
    with catalog.change() as tx:
        tx.events.append("checkpoint")
        tx.floors.set("ledger", 30, "r")
    assert _warnings(caplog) == []


def test_an_unknown_action_is_refused_and_writes_nothing(catalog: Catalog, record: ArtifactRecord) -> None:
    before = _state(catalog)
    with pytest.raises(ValidationError, match="^unknown action 'note'; choose one of: write, import, adopt"):
        with catalog.change() as tx:
            tx.events.append("note")
    with pytest.raises(ValidationError, match="^unknown action 'deleted'"):
        catalog.change_status(record.id, action="deleted", status="deleted")
    assert _state(catalog) == before


def test_a_change_in_place_does_not_warn_again(catalog: Catalog, writer: AtomicWriter,
                                               caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """Extending retain_until keeps a file where it is: the folder did not grow, so no second warning."""
    records = [writer.write_json("ledger", f"p{n}", {"n": n}) for n in range(4)]
    catalog.settings = replace(catalog.settings, limits=Limits(5, 10**12, 10**12))
    caplog.set_level(logging.WARNING, logger="catalog")
    for record in records:
        catalog.change_status(record.id, action="retain_extend", status="active",
                              retain_until=record.created_at + timedelta(days=9000))  # fmt: skip
    assert _warnings(caplog) == []


def test_a_move_does_not_count_as_store_growth(catalog: Catalog, writer: AtomicWriter,
                                               caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """An archive moves bytes between folders: the store did not grow; only the archive folder did."""
    records = [writer.write_json("ledger", f"p{n}", {"n": n}) for n in range(4)]
    store_limit = 5 * records[0].size
    catalog.settings = replace(catalog.settings, limits=Limits(10_000, 10**12, store_limit))
    caplog.set_level(logging.WARNING, logger="catalog")
    catalog.change_status(records[0].id, action="archive", status="archived", path=_archived(records[0]))
    assert _warnings(caplog) == []


LIMITS = Limits(max_files_per_dir=10, max_dir_bytes=1000, max_store_bytes=10_000)
CROSSINGS = {
    "every-limit-exactly-reached": (
        {"ledger": (1, 100)}, {"ledger": (8, 800)}, 8000,
        ["folder ledger holds 8 files, 80% of its limit of 10 (catalog limits)",
         "folder ledger holds 800 bytes, 80% of its limit of 1000 (catalog limits)",
         "the store holds 8000 bytes, 80% of its limit of 10000 (catalog limits)"]),
    "already-past-before": ({"ledger": (1, 10)}, {"ledger": (9, 900)}, 9000, []),
    "still-below-after": ({"ledger": (1, 10)}, {"ledger": (7, 799)}, 7999, []),
    "jumping-past-the-limit": ({"explain": (5, 5000)}, {"explain": (12, 5000)}, 5000,
                               ["folder explain holds 12 files, 120% of its limit of 10 (catalog limits)",
                                "folder explain holds 5000 bytes, 500% of its limit of 1000 (catalog limits)"]),
    "nothing-added": ({}, {"ledger": (8, 800)}, 8000, []),
    "a-move-in-only-counts-the-new-folder": ({"ledger": (-1, -100), "ledger/archived/2024-01": (1, 100)},
                                             {"ledger/archived/2024-01": (8, 800)}, 8000,
                                             ["folder ledger/archived/2024-01 holds 8 files, 80% of its limit of 10 "
                                              "(catalog limits)", "folder ledger/archived/2024-01 holds 800 bytes, 80% "
                                              "of its limit of 1000 (catalog limits)"]),
}  # fmt: skip


@pytest.mark.parametrize("added, usage, store, expected", list(CROSSINGS.values()), ids=list(CROSSINGS))
def test_crossings_warn(caplog: pytest.LogCaptureFixture, added: Any, usage: Any, store: int,
                        expected: list[str]) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING, logger="catalog")
    Crossings(LIMITS, added, usage, store).warn()
    assert _warnings(caplog) == expected
    assert WARN_AT == 0.8
