"""Clocks that lie (issue 13, cases 10 and 18): the log keeps its own time, never earlier than its last event;
a writer whose clock is behind cannot backdate what decides retention, and is a finding; events dated in the
future, or before their predecessors, are clock findings in `audit verify` and `status`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from catalog.core import chain, tree
from catalog.core.schema import CHAIN_HEAD, EVENTS, MERKLE_NODES
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops import policy, retention
from catalog.ops.findings import open_findings, resolve

UTC = timezone.utc
BEHIND = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)  # case 18's faketime '2024-06-01'


def events_of(catalog: Catalog, action: str) -> list:  # type: ignore[type-arg]
    return [e for e in catalog.events() if e.action == action]


def assert_times_never_run_back(catalog: Catalog) -> None:
    times = [e.at for e in catalog.events()]
    assert times == sorted(times)


def test_a_writer_whose_clock_is_behind_cannot_undercut_the_floor(
    catalog: Catalog, writer: AtomicWriter, run_cli, tmp_path: Path
) -> None:  # fmt: skip
    """Case 18: `faketime '2024-06-01' catalog put …` with a 365-day floor recorded retain_until 2025-06-01, and
    the next real-clock apply deleted it seconds after the write."""
    policy.set_floor(catalog, "ledger", 365, "books are kept a year")
    real = events_of(catalog, "policy_floor")[-1].at  # the log's last time, by the real clock
    source = tmp_path / "book.json"
    source.write_text('{"cash": "12.5"}')
    with freeze_time(BEHIND):
        put = run_cli("put", str(source), "--type", "ledger", "--prefix", "book", "--format", "json")
    assert put.exit_code == 0, put.stderr
    record = catalog.find_path(json.loads(put.stdout)["artifacts"][0]["path"])
    assert record is not None
    assert record.created_at == BEHIND  # the writer's claim: its name and created_at
    assert record.recorded_at >= real and record.retain_until >= real + timedelta(days=365)  # the log's time
    (write,) = [e for e in catalog.events() if e.artifact_id == record.id]
    assert write.at == record.recorded_at and write.details["writer_clock"] == chain.iso_utc(BEHIND)
    assert_times_never_run_back(catalog)
    assert [row.record.id for row in retention.plan(catalog)] == []
    applied = run_cli("retention", "apply", "--yes")
    assert applied.exit_code == 0 and catalog.find_id(record.id).status == "active"


def test_a_writer_behind_is_a_clock_finding_once_per_host_until_resolved(
    catalog: Catalog, writer: AtomicWriter, run_cli
) -> None:  # fmt: skip
    writer.write_json("ledger", "now", {})
    with freeze_time(BEHIND):
        writer.write_json("health", "late1", {})
        policy.add_hold(catalog, prefix="late*", reason="placed by a host whose clock is behind")
        writer.write_json("health", "late2", {})
    assert len(events_of(catalog, "clock_behind")) == 1  # one finding per host, not one per write
    (finding,) = open_findings(catalog)
    assert finding.kind == "clock" and finding.artifact_id is None and "behind the log" in finding.detail
    hold = events_of(catalog, "hold_place")[-1]
    assert "writer_clock" in hold.details and hold.at >= events_of(catalog, "write")[0].at
    status = run_cli("status", "--format", "json")
    assert status.exit_code == 1 and json.loads(status.stdout)["findings"] == {"clock": 1}
    listed = run_cli("findings", "ls", "--format", "json")
    assert [(f["id"], f["kind"], f["path"]) for f in json.loads(listed.stdout)["findings"]] == [
        (finding.id, "clock", None)
    ]
    done = run_cli("findings", "resolve", str(finding.id), "--reason", "NTP fixed on the scanner host")
    assert done.exit_code == 0 and done.stdout == f"Finding {finding.id} (clock) resolved.\n"
    assert open_findings(catalog) == []
    with freeze_time(BEHIND):  # the clock is wrong again: a new finding
        writer.write_json("health", "late3", {})
    assert [f.kind for f in open_findings(catalog)] == ["clock"]
    assert_times_never_run_back(catalog)
    assert catalog.audit_verify().ok  # the log itself is sound: its times run forward


@pytest.mark.parametrize("skew, finding", [(None, False), ("0", True)], ids=["within-default-skew", "skew-0"])
def test_a_clock_a_little_behind_is_within_the_skew(
    catalog: Catalog, writer: AtomicWriter, monkeypatch: pytest.MonkeyPatch, skew: str | None, finding: bool
) -> None:  # fmt: skip
    if skew is not None:
        monkeypatch.setenv("CRYPTORUN_MAX_CLOCK_SKEW_SECONDS", skew)
        from catalog.core.settings import load_settings

        catalog.settings = load_settings(overrides={"base_dir": str(catalog.base_dir),
                                                    "catalog_url": catalog.settings.catalog_url})  # fmt: skip
    first = writer.write_json("ledger", "first", {})
    with freeze_time(first.recorded_at - timedelta(minutes=2)):
        second = writer.write_json("ledger", "second", {})
    assert second.recorded_at == first.recorded_at  # never before its predecessor
    assert ("writer_clock" in events_of(catalog, "write")[-1].details) is finding
    assert bool(open_findings(catalog)) is finding


def test_events_dated_in_the_future_are_clock_findings_in_audit_verify(
    catalog: Catalog, writer: AtomicWriter, run_cli
) -> None:  # fmt: skip
    """Case 10: `faketime '+365 days' catalog verify`; neither `audit verify` nor `status` said anything."""
    writer.write_json("ledger", "p", {})
    assert run_cli("audit", "verify").exit_code == 0
    ahead = datetime.now(UTC) + timedelta(days=365)
    with freeze_time(ahead):
        assert run_cli("verify").exit_code == 0
    later = writer.write_json("ledger", "q", {})  # the real clock again: the log's time does not run back
    assert later.recorded_at >= ahead
    result = run_cli("audit", "verify")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("The log is intact:") and "BROKEN" not in result.stdout
    assert lines[1].startswith("CLOCK at seq ") and "events are dated in the future" in lines[1]
    assert "a writer's clock was ahead" in lines[1] and "check the writers' clocks" in result.stdout
    shown = json.loads(run_cli("audit", "verify", "--format", "json").stdout)
    assert (shown["ok"], shown["intact"], [p["kind"] for p in shown["clock"]]) == (False, True, ["clock"])
    status = json.loads(run_cli("status", "--format", "json").stdout)
    assert any("in the future" in a for a in status["attention"])


def test_the_skew_is_configurable_for_audit_verify(catalog: Catalog, writer: AtomicWriter, run_cli,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    writer.write_json("ledger", "p", {})
    with freeze_time(datetime.now(UTC) + timedelta(hours=2)):
        writer.write_json("ledger", "q", {})
    assert run_cli("audit", "verify").exit_code == 1
    monkeypatch.setenv("CRYPTORUN_MAX_CLOCK_SKEW_SECONDS", "86400")
    assert run_cli("audit", "verify").exit_code == 0
    monkeypatch.setenv("CRYPTORUN_MAX_CLOCK_SKEW_SECONDS", "a day")
    bad = run_cli("audit", "verify")
    assert bad.exit_code == 2 and "CRYPTORUN_MAX_CLOCK_SKEW_SECONDS" in bad.stderr


def _append_as_old_code(catalog: Catalog, at: datetime) -> int:
    """An event appended the way code before the log's own clock did: dated by the writer's clock, hashed right."""
    with catalog.db.write() as conn:
        seq, prev_hash, _ = chain.lock_head(conn)
        link = chain.next_link(prev_hash, seq + 1, at, "checkpoint", None, None, None, "old@host:1", {"file": "x"})
        conn.execute(EVENTS.insert(), link)
        growth = tree.Growth(conn)  # the tree as migration 0007 builds it for such a log
        growth.add(seq + 1, link["text"])
        conn.execute(MERKLE_NODES.insert(), growth.rows())
        conn.execute(CHAIN_HEAD.update().where(CHAIN_HEAD.c.id == 1).values(seq=seq + 1, hash=link["hash"]))
    return seq + 1


def test_an_event_dated_before_its_predecessor_is_a_clock_finding(catalog: Catalog, writer: AtomicWriter,
                                                                  run_cli) -> None:  # fmt: skip
    """Case 18's other half: the event was "dated before its predecessor and nothing flags it"."""
    writer.write_json("ledger", "p", {})
    seq = _append_as_old_code(catalog, BEHIND)
    report = catalog.audit_verify()
    assert report.intact and not report.ok
    (problem,) = report.clock
    assert problem.seq == seq and "before event" in problem.message and "old@host:1" in problem.message
    result = run_cli("audit", "verify")
    assert result.exit_code == 1 and f"CLOCK at seq {seq}:" in result.stdout
    with catalog.read() as conn:
        assert conn.execute(select(EVENTS.c.at).where(EVENTS.c.seq == seq)).scalar() == BEHIND  # kept as written


def test_a_broken_log_is_still_reported_as_broken_before_its_clocks(catalog: Catalog, writer: AtomicWriter,
                                                                     run_cli) -> None:  # fmt: skip
    from helpers import tamper

    writer.write_json("ledger", "p", {})
    _append_as_old_code(catalog, BEHIND)
    tamper(catalog, "UPDATE events SET actor = 'mallory' WHERE seq = 2")
    result = run_cli("audit", "verify")
    assert result.exit_code == 1 and result.stdout.startswith("BROKEN at seq 2: edited")
    assert "also: seq 3: clock:" in result.stdout


def test_a_checkpoint_is_dated_by_the_log(catalog: Catalog, writer: AtomicWriter, tmp_path: Path) -> None:
    from catalog.ops.checkpoints import take_checkpoint

    writer.write_json("ledger", "p", {})
    with freeze_time(BEHIND):
        checkpoint, _, _ = take_checkpoint(catalog, tmp_path / "cp.txt")
    taken = events_of(catalog, "checkpoint")[-1]  # the checkpoint's time is its event's (the file holds none)
    assert checkpoint.size == taken.seq and taken.at >= events_of(catalog, "write")[-1].at


def test_resolving_a_clock_finding_twice_is_refused(catalog: Catalog, writer: AtomicWriter) -> None:
    writer.write_json("ledger", "p", {})
    with freeze_time(BEHIND):
        writer.write_json("ledger", "q", {})
    (finding,) = open_findings(catalog)
    resolve(catalog, finding.id, "fixed")
    from catalog.core.errors import NotFoundError

    with pytest.raises(NotFoundError):
        resolve(catalog, finding.id, "fixed again")
