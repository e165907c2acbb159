"""Insider edits that used to go unnoticed (issue 15): each is refused by a trigger, and — the triggers dropped, as
the owner of a PostgreSQL database or anyone holding the SQLite file can — reported by `audit verify` and harmless
when retention acts. Runs on SQLite and PostgreSQL (CATALOG_TEST_BACKEND)."""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy.exc import DBAPIError

from catalog.core.errors import IntegrityError
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.checkpoints import take_checkpoint
from catalog.ops.policy import add_hold, extend, protection_in, release_hold, set_floor
from catalog.ops.read import copy_verified
from catalog.ops.retention import apply, plan

from helpers import BACKEND, tamper

OLD = datetime(2020, 5, 1, tzinfo=timezone.utc)  # explain keeps 30 days: long expired
NOW = datetime.now(timezone.utc)


def insider(catalog: Catalog, statement: str) -> str | None:
    """Run one statement as an insider would, triggers in place; the database's refusal, or None if it took it."""
    try:
        if catalog.db.is_sqlite:
            conn = sqlite3.connect(catalog.db.sqlite_path, isolation_level=None)
            try:
                conn.execute(statement)
            finally:
                conn.close()
        else:
            with catalog.db.engine.begin() as pg:
                pg.exec_driver_sql(statement)
    except (sqlite3.DatabaseError, DBAPIError) as exc:
        return str(exc)
    return None


def old_explain(writer: AtomicWriter, prefix: str, when: datetime = OLD):  # type: ignore[no-untyped-def]
    with freeze_time(when):
        return writer.write_json("explain", prefix, {"p": prefix})


def problems(catalog: Catalog) -> list[str]:
    return [p.message for p in catalog.audit_verify().problems]


def sql_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


# -- 1. a hold released in the table ----------------------------------------------------------------


@pytest.mark.parametrize("edit, refused", [
    ("UPDATE holds SET released_at = '{now}', released_by = 'mallory', release_reason = 'gone'", "released once"),
    ("UPDATE holds SET selector = 'explain/nothing-here.json'", "never change"),
    ("UPDATE holds SET until = '2000-01-02 00:00:00.000000'", "never change"),
    ("DELETE FROM holds", "never deleted"),
])  # fmt: skip
def test_a_hold_edited_in_its_table_is_refused_reported_and_harmless(catalog: Catalog, writer: AtomicWriter, edit: str,
                                                                     refused: str) -> None:  # fmt: skip
    held = old_explain(writer, "held")
    add_hold(catalog, path=held.path, reason="SEC inquiry")
    statement = edit.format(now=sql_time(NOW))
    assert refused in (insider(catalog, statement) or "accepted")
    assert catalog.audit_verify().ok

    tamper(catalog, statement)  # the owner drops the triggers first
    found = problems(catalog)
    assert len(found) == 1 and found[0].startswith("hold 1"), found
    assert [row.action for row in plan(catalog)] == ["hold"]  # the plan counts the log's hold
    with catalog.change() as tx:  # and so does the check at the moment of acting
        assert protection_in(tx, held.id, NOW)[1] == "legal hold 1: SEC inquiry"
    report = apply(catalog)
    assert report.deleted == [] and report.protected == 1
    assert (catalog.base_dir / held.path).exists()


def test_a_released_hold_is_not_put_back_nor_released_twice_behind_the_log(catalog: Catalog, writer: AtomicWriter) -> None:
    held = old_explain(writer, "held")
    hold = add_hold(catalog, path=held.path, reason="SEC inquiry")
    release_hold(catalog, hold.id, "closed")  # the unit of work's own release goes through the trigger
    assert "released once" in (insider(catalog, "UPDATE holds SET released_at = NULL") or "accepted")
    assert "released once" in (insider(catalog, f"UPDATE holds SET released_at = '{sql_time(NOW)}'") or "accepted")
    assert catalog.audit_verify().ok and apply(catalog).deleted == [held.path]


# -- 2. a floor lowered in its table ------------------------------------------------------------------


@pytest.mark.parametrize("edit", ["UPDATE policy_floors SET days = 0", "DELETE FROM policy_floors"])
def test_a_floor_lowered_in_its_table_is_refused_reported_and_harmless(catalog: Catalog, writer: AtomicWriter,
                                                                       edit: str) -> None:  # fmt: skip
    written = NOW - timedelta(days=60)  # past explain's 30 days, well inside a 365-day floor
    with freeze_time(written):
        set_floor(catalog, "explain", 365, "MiFID II record keeping")
    assert insider(catalog, edit) is not None
    assert insider(catalog, "INSERT INTO policy_floors (type, days) VALUES ('health', 1)") is not None
    tamper(catalog, edit)
    with freeze_time(written):  # a writer now takes the floor from the edited table: 0 days, or none
        record = writer.write_json("explain", "floored", {"p": 1})
    assert record.retain_until is not None and record.retain_until < NOW  # the row itself no longer protects it
    found = problems(catalog)
    assert any("the explain floor: its row says" in p and "events say 365" in p for p in found), found
    assert list(plan(catalog)) == []  # the plan counts the log's floor: not due for another 305 days
    with catalog.change() as tx:  # and so does the check at the moment of acting
        assert protection_in(tx, record.id, NOW)[1] == "floor 365 days"
    report = apply(catalog)
    assert report.deleted == [] and (catalog.base_dir / record.path).exists()


# -- 3. a path edited in its row ----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["../victim.txt", "explain/../../victim.txt", "/{outside}/victim.txt", "{other}"])
def test_a_path_edited_in_its_row_is_refused_reported_and_never_acted_on(catalog: Catalog, writer: AtomicWriter, run_cli,
                                                                         tmp_path: Path, target: str) -> None:  # fmt: skip
    victim = tmp_path / "victim.txt"
    victim.write_text("not the store's\n")
    expired = old_explain(writer, "expired")
    other = old_explain(writer, "other", NOW - timedelta(days=1))  # another artifact, not expired
    path = target.format(outside=str(tmp_path).strip("/"), other=other.path)
    statement = f"UPDATE artifacts SET path = '{path}' WHERE id = {expired.id}"
    assert "only with its event" in (insider(catalog, statement) or "accepted")

    if path == other.path:  # paths are unique: the other row moves aside first, as an insider would
        tamper(catalog, f"UPDATE artifacts SET path = 'explain/x' WHERE id = {other.id}")
    tamper(catalog, statement)
    assert any(f"its row says path={path!r}" in p for p in problems(catalog))
    report = apply(catalog)
    assert report.deleted == [] and len(report.failed) == 1 and "refused" in report.failed[0][1], report
    checked = run_cli("verify", "--format", "json")  # the files' check refuses the row's path too
    assert checked.exit_code == 1 and "refused" in checked.stdout
    assert run_cli("reconcile", "--fix").exit_code in (0, 1)
    assert victim.read_text() == "not the store's\n" and (catalog.base_dir / other.path).exists()
    assert (catalog.base_dir / expired.path).exists()
    if path == "../victim.txt":  # (the others are no path `get` finds in the store)
        with pytest.raises(IntegrityError, match="refused: the catalog's path '../victim.txt' is not a relative path"):
            copy_verified(catalog, path, io.BytesIO())


def test_a_path_that_changed_without_a_move_stays_visible_in_the_history(catalog: Catalog, writer: AtomicWriter) -> None:
    """What the old code let happen (path edited, apply deleted outside the store, path put back): the log shows it."""
    record = old_explain(writer, "gone")
    tamper(catalog, f"UPDATE artifacts SET path = '../victim.txt' WHERE id = {record.id}")
    catalog.change_status(record.id, action="delete", status="deleted", details={"reason": "expired"})
    tamper(catalog, f"UPDATE artifacts SET path = '{record.path}' WHERE id = {record.id}")
    found = problems(catalog)
    assert any("names it at '../victim.txt', but its events put it at" in p and "none moved it" in p for p in found)
    assert any("names the path '../victim.txt', which is not a relative path inside the store" in p for p in found)


# -- 4. retain_until lowered for one apply -------------------------------------------------------------


def test_retain_until_lowered_is_refused_reported_and_harmless(catalog: Catalog, writer: AtomicWriter) -> None:
    record = old_explain(writer, "extended")
    (extended,) = extend(catalog, [record], NOW + timedelta(days=400), "litigation")
    lowered = f"UPDATE artifacts SET retain_until = '2001-01-01 00:00:00.000000' WHERE id = {record.id}"
    assert "never goes down" in (insider(catalog, lowered) or "accepted")
    assert "never goes down" in (insider(catalog, f"UPDATE artifacts SET retain_until = NULL WHERE id = {record.id}")
                                 or "accepted")  # fmt: skip

    tamper(catalog, lowered)
    assert any("its row says retain_until='2001-01-01" in p for p in problems(catalog))
    report = apply(catalog)
    assert report.deleted == [] and "refused" in report.failed[0][1] and (catalog.base_dir / record.path).exists()
    assert extended.retain_until is not None
    tamper(catalog, f"UPDATE artifacts SET retain_until = '{sql_time(extended.retain_until)}' WHERE id = {record.id}")
    assert catalog.audit_verify().ok and apply(catalog).deleted == []


def test_a_delete_made_under_a_lowered_retain_until_stays_visible(catalog: Catalog, writer: AtomicWriter) -> None:
    """What the old code let happen (lowered, deleted, put back): the delete's intent came while the log kept it."""
    record = old_explain(writer, "extended")
    (extended,) = extend(catalog, [record], NOW + timedelta(days=400), "litigation")
    tamper(catalog, f"UPDATE artifacts SET retain_until = '2001-01-01 00:00:00.000000' WHERE id = {record.id}")
    with catalog.change() as tx:
        seq = tx.events.append("retention_intent", artifact_id=record.id, path=record.path,
                               details={"op": "delete", "target": None, "reason": "expired"})  # fmt: skip
    catalog.change_status(record.id, action="delete", status="deleted", details={"reason": "expired", "intent": seq})
    assert extended.retain_until is not None
    tamper(catalog, f"UPDATE artifacts SET retain_until = '{sql_time(extended.retain_until)}' WHERE id = {record.id}")
    found = problems(catalog)
    assert len(found) == 1 and "retention deleted it" in found[0] and "lowered behind the log's back" in found[0]


def test_the_catalogs_own_changes_pass_the_triggers(catalog: Catalog, writer: AtomicWriter) -> None:
    """Archive (a new path), extend, quarantine, floors up and down, holds placed and released: all still work."""
    with freeze_time(OLD):
        ledger = writer.write_json("ledger", "book", {"cash": 1})
    set_floor(catalog, "health", 10, "r")
    set_floor(catalog, "health", 5, "r")
    hold = add_hold(catalog, artifact_type="health", reason="r")
    release_hold(catalog, hold.id, "r")
    report = apply(catalog)
    assert report.archived and report.failed == []
    extend(catalog, [catalog.find_id(ledger.id)], NOW + timedelta(days=5), "r")
    assert catalog.audit_verify().ok


# -- 6. a configured checkpoint folder ------------------------------------------------------------------


def test_a_configured_checkpoint_folder_that_is_missing_or_empty_is_a_problem(catalog: Catalog, run_cli, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    folder = tmp_path / "worm"
    monkeypatch.setenv("CRYPTORUN_CHECKPOINT_DIR", str(folder))
    missing = run_cli("audit", "verify")
    assert missing.exit_code == 1 and f"checkpoint folder {folder} (audit.checkpoint_dir) does not exist" in missing.stdout
    status = json.loads(run_cli("status", "--format", "json").stdout)
    assert any("does not exist" in a for a in status["attention"])
    folder.mkdir()
    empty = run_cli("audit", "verify")
    assert empty.exit_code == 1 and "holds no checkpoint: there is nothing to check the log against" in empty.stdout
    assert run_cli("audit", "checkpoint").exit_code == 0
    assert run_cli("audit", "verify").exit_code == 0
    (written,) = folder.glob("checkpoint-*.txt")
    (folder / "checkpoint-000000000001-x.txt").write_text(written.read_text())  # the folder is not empty...
    written.unlink()  # ...but the checkpoint the log says it wrote is gone
    lost = run_cli("audit", "verify", "--format", "json")
    assert lost.exit_code == 1
    (problem,) = [p for p in json.loads(lost.stdout)["problems"] if p["kind"] == "checkpoint"]
    assert f"checkpoint {written.name}, written into {folder}" in problem["message"] and "is gone" in problem["message"]


def test_a_checkpoint_folder_that_is_not_configured_asks_for_nothing(catalog: Catalog, tmp_path: Path) -> None:
    take_checkpoint(catalog, tmp_path / "one.json")
    assert catalog.audit_verify().ok


# -- PostgreSQL: a runtime role that is not the owner ---------------------------------------------------


@pytest.mark.skipif(BACKEND != "postgresql", reason="roles are PostgreSQL's")
def test_a_runtime_role_cannot_disable_the_triggers(catalog: Catalog, writer: AtomicWriter, pg_admin) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine, text

    from catalog.core.settings import load_settings

    held = old_explain(writer, "held")
    add_hold(catalog, path=held.path, reason="SEC inquiry")
    role = f"catalog_runtime_{catalog.db.url.database[-12:]}"
    with catalog.db.engine.begin() as conn:  # the owner, as README says
        for statement in RUNTIME_ROLE_SQL:
            conn.execute(text(statement.format(role=role, database=catalog.db.url.database)))
    url = catalog.db.url.set(username=role)
    try:
        runtime = create_engine(url)
        for statement in ("ALTER TABLE holds DISABLE TRIGGER ALL", "DROP TRIGGER holds_release_logged ON holds",
                          f"UPDATE holds SET released_at = '{sql_time(NOW)}'", "DELETE FROM holds",
                          "TRUNCATE holds"):  # fmt: skip
            with pytest.raises(DBAPIError, match="must be owner|never|released once|permission denied"):
                with runtime.begin() as conn:
                    conn.exec_driver_sql(statement)
        runtime.dispose()
        as_runtime = Catalog(load_settings(overrides={"base_dir": str(catalog.base_dir),
                                                      "catalog_url": url.render_as_string(hide_password=False)}, env={}))  # fmt: skip
        try:
            AtomicWriter(catalog=as_runtime).write_json("ledger", "runtime", {"ok": True})  # the app works as it
            assert apply(as_runtime).deleted == [] and as_runtime.audit_verify().ok
        finally:
            as_runtime.close()
    finally:
        with catalog.db.engine.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
        with pg_admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


#: What README tells the owner to run (``{role}``, ``{database}``): the runtime role of the catalog.
RUNTIME_ROLE_SQL = (
    'CREATE ROLE "{role}" LOGIN',
    'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
    'GRANT USAGE ON SCHEMA public TO "{role}"',
    'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO "{role}"',
    'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
    'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE ON TABLES TO "{role}"',  # later migrations
    'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO "{role}"',
)
