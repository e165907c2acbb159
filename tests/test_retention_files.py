"""Retention never destroys bytes it has not secured (issue 13, case 14), and one file it cannot remove does not
stall the rest (case 9)."""

from __future__ import annotations

import errno
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time

import catalog.core.fs as fs
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.reconcile import reconcile
from catalog.ops.retention import apply, archive_path

from helpers import all_records

OLD = datetime(2024, 1, 15, 8, 0, tzinfo=timezone.utc)  # ledger: 90 days, then archive


def ledger(writer: AtomicWriter, data: dict, prefix: str = "portfolio"):  # type: ignore[no-untyped-def,type-arg]
    with freeze_time(OLD):  # written (and recorded) long ago: past its 90 days
        return writer.write_json("ledger", prefix, data)


def assert_store_is_sound(catalog: Catalog) -> None:
    assert catalog.audit_verify().ok
    done = [(e.artifact_id, e.action) for e in catalog.events() if e.action in ("delete", "archive")]
    assert len(done) == len(set(done)), done  # every artifact processed once
    assert not reconcile(catalog, deep=True, grace=0).drift
    for record in all_records(catalog):
        if record.status in ("active", "archived"):
            data = (catalog.base_dir / record.path).read_bytes()
            assert len(data) == record.size, record.path


def test_the_same_name_archived_twice_keeps_both(catalog: Catalog, writer: AtomicWriter) -> None:
    """Case 14 (a): the second file used to be unlinked before anything was linked, its row left active."""
    first = ledger(writer, {"v": 1})
    assert apply(catalog).archived == [(first.path, archive_path(first))]
    now = datetime.now(timezone.utc)
    # The same name again (explicit created_at), recorded now: it expires 90 days after the log recorded it.
    second = writer.write_json("ledger", "portfolio", {"v": 2, "more": "bytes"}, created_at=OLD)
    second_home = f"ledger/archived/2024-01/2/{Path(first.path).name}"
    with freeze_time(now + timedelta(days=91)):
        report = apply(catalog)
        assert report.archived == [(second.path, second_home)] and report.failed == [] and report.missing == []
        assert json.loads((catalog.base_dir / archive_path(first)).read_text()) == {"v": 1}
        assert json.loads((catalog.base_dir / second_home).read_text()) == {"v": 2, "more": "bytes"}
        assert {r.path for r in all_records(catalog)} == {archive_path(first), second_home}
        assert_store_is_sound(catalog)
    with freeze_time(now + timedelta(days=92)):
        third = writer.write_json("ledger", "portfolio", {"v": 3}, created_at=OLD)
    with freeze_time(now + timedelta(days=183)):
        assert apply(catalog).archived == [(third.path, f"ledger/archived/2024-01/3/{Path(first.path).name}")]


def test_a_foreign_file_at_the_archive_name_is_left_alone(catalog: Catalog, writer: AtomicWriter) -> None:
    """Case 14 (b): apply said "1 archived", unlinked the original, and the row pointed at other bytes."""
    record = ledger(writer, {"v": 1})
    squatter = catalog.base_dir / archive_path(record)
    squatter.parent.mkdir(parents=True)
    squatter.write_bytes(b'{"not": "the artifact"}\n')
    report = apply(catalog)
    moved = f"ledger/archived/2024-01/2/{Path(record.path).name}"
    assert report.archived == [(record.path, moved)]
    assert squatter.read_bytes() == b'{"not": "the artifact"}\n'  # untouched
    assert json.loads((catalog.base_dir / moved).read_text()) == {"v": 1}
    assert catalog.find_path(moved).status == "archived"  # type: ignore[union-attr]
    assert catalog.audit_verify().ok


def test_a_resumed_archive_whose_copy_holds_the_bytes_finishes(catalog: Catalog, writer: AtomicWriter) -> None:
    """A run killed after linking and after unlinking the old name: the archive copy is proven by its SHA-256."""
    record = ledger(writer, {"v": 1})
    target = catalog.base_dir / archive_path(record)
    target.parent.mkdir(parents=True)
    os.link(catalog.base_dir / record.path, target)
    os.unlink(catalog.base_dir / record.path)  # as a kill between the two steps leaves it, minus the intent
    with catalog.change() as tx:
        tx.events.append("retention_intent", artifact_id=record.id, path=record.path,
                         details={"op": "archive", "target": archive_path(record), "reason": "test"})  # fmt: skip
    report = apply(catalog)
    assert report.resumed == [record.path] and report.archived == [(record.path, archive_path(record))]
    assert_store_is_sound(catalog)


@pytest.mark.parametrize("op", ["delete", "archive"])
def test_a_file_that_cannot_be_removed_does_not_stall_retention(
    catalog: Catalog, writer: AtomicWriter, run_cli, monkeypatch: pytest.MonkeyPatch, op: str
) -> None:  # fmt: skip
    """Case 9: one immutable file (chattr +i) made every apply abort with exit 2, and nothing after it expired."""
    artifact_type = "health" if op == "delete" else "ledger"
    with freeze_time(OLD):
        records = [writer.write_json(artifact_type, f"p{n}", {"n": n}) for n in range(3)]
    stuck = catalog.base_dir / records[0].path
    real_unlink, real_link = os.unlink, os.link

    def unlink(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(path) == stuck:
            raise PermissionError(errno.EPERM, "Operation not permitted", str(path))
        return real_unlink(path, *args, **kwargs)

    def link(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(src) == stuck:
            raise PermissionError(errno.EPERM, "Operation not permitted", str(src))
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    monkeypatch.setattr(os, "link", link)
    result = run_cli("retention", "apply", "--yes", "--format", "json")
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == [{"path": records[0].path, "reason": f"Operation not permitted: {stuck}"}]
    done = report["deleted"] if op == "delete" else [a["from"] for a in report["archived"]]
    assert done == [r.path for r in records[1:]]  # the others went on
    assert catalog.find_path(records[0].path).status == "active"  # type: ignore[union-attr]
    table = run_cli("retention", "apply", "--yes")
    assert table.exit_code == 1 and f"failed (retried by the next run): {records[0].path}" in table.stdout
    monkeypatch.undo()  # the file can be removed again
    retried = json.loads(run_cli("retention", "apply", "--yes", "--format", "json").stdout)
    assert retried["resumed"] == [records[0].path] and retried["failed"] == []
    assert_store_is_sound(catalog)
    runs = [e.details for e in catalog.events() if e.action == "retention_run"]
    assert [r["failed"] for r in runs] == [1, 1, 0]


def test_kept_forever_is_a_promise_a_later_policy_keeps(catalog: Catalog, writer: AtomicWriter, run_cli) -> None:  # type: ignore[no-untyped-def]
    """Case 16: a config snapshot written while config was "kept forever" was deleted by a later 0-day policy."""
    from dataclasses import replace

    from catalog.core.settings import FOREVER, RetentionPolicy
    from catalog.ops.retention import plan

    with freeze_time(OLD):
        snapshot = writer.write_json("config", "active", {"retention": "forever"})
    assert snapshot.retain_until == FOREVER
    retention = dict(catalog.settings.retention, config=RetentionPolicy(0, "delete"))
    catalog.settings = replace(catalog.settings, retention=retention)
    (row,) = list(plan(catalog))
    assert row.action == "keep" and row.reason == "kept forever (its type was kept forever when it was written)"
    assert apply(catalog).deleted == [] and (catalog.base_dir / snapshot.path).exists()
    later = writer.write_json("config", "later", {"retention": 0})  # written under the new policy: no promise of forever
    assert later.retain_until is not None and later.retain_until < FOREVER


def _fill_the_disk_on_the_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills as the pair's CSV gets its name (link(2) may need a new folder block), its JSON already published."""
    real_link = fs.Publisher.link

    def link(self: fs.Publisher, staged: fs.Staged) -> None:
        if staged.filename.endswith("-explain.csv"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_link(self, staged)

    monkeypatch.setattr(fs.Publisher, "link", link)


def test_a_pair_whose_csv_was_never_written_is_noticed_and_completed(
    catalog: Catalog, writer: AtomicWriter, monkeypatch: pytest.MonkeyPatch, run_cli
) -> None:  # fmt: skip
    """Case 17: disk full between an explain pair's JSON and CSV; reconcile, verify and audit verify were clean."""
    from catalog.core.errors import StoreError
    from catalog.cryptorun.demo import make_report

    _fill_the_disk_on_the_csv(monkeypatch)
    with pytest.raises(StoreError, match="No space left on device"):
        writer.write_explain_report(make_report(3, seed=2), "scan")
    monkeypatch.undo()
    (json_row,) = all_records(catalog)
    assert json_row.pair_id is not None and json_row.ext == "json"
    found = reconcile(catalog, grace=0)
    assert [(f.cls, f.path) for f in found.drift] == [("half_pair", json_row.path)]
    assert "whose CSV was never recorded" in found.drift[0].reason
    assert run_cli("reconcile", "--grace", "0").exit_code == 1
    fixed = reconcile(catalog, fix=True, grace=0)
    assert fixed.drift[0].fixed == "its CSV regenerated and linked"
    rows = sorted(all_records(catalog), key=lambda r: r.ext)
    assert [r.ext for r in rows] == ["csv", "json"] and rows[0].pair_id == rows[1].pair_id == json_row.pair_id
    assert not reconcile(catalog, deep=True, grace=0).drift and catalog.audit_verify().ok


def test_a_published_but_unrecorded_csv_is_linked_to_its_pair(catalog: Catalog, writer: AtomicWriter) -> None:
    """The neighbour: the CSV file is there (published, then the commit failed) while the JSON row stands alone."""
    from catalog.cryptorun.demo import make_report

    json_rec, csv_rec = writer.write_explain_report(make_report(3, seed=3), "scan")
    csv_bytes = (catalog.base_dir / csv_rec.path).read_bytes()
    # Rebuild the state a failed CSV commit leaves: a JSON row with its pair id, the CSV file without a row.
    from helpers import tamper

    tamper(catalog, f"DELETE FROM events WHERE artifact_id = {csv_rec.id}", f"DELETE FROM artifacts WHERE id = {csv_rec.id}",
           "UPDATE chain_head SET seq = (SELECT max(seq) FROM events), hash = (SELECT hash FROM events "
           "WHERE seq = (SELECT max(seq) FROM events))", tree=True)  # fmt: skip
    fixed = reconcile(catalog, fix=True, grace=0)
    assert [(f.cls, f.path, f.fixed) for f in fixed.drift] == [
        ("half_pair", csv_rec.path, "adopted and linked to its pair")]
    linked = catalog.find_path(csv_rec.path)
    assert linked is not None and linked.pair_id == json_rec.pair_id
    assert (catalog.base_dir / csv_rec.path).read_bytes() == csv_bytes
    assert not reconcile(catalog, deep=True, grace=0).drift
