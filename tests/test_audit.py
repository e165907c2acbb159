"""The tamper-evident audit trail: chain, triggers, verification, checkpoints, as-of, log, bundles."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy.exc
from freezegun import freeze_time
from sqlalchemy import text

from catalog.core import chain as audit
from catalog.core import tlog
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.query import ArtifactQuery, EventQuery, iter_artifacts, iter_event_log

from helpers import store_files, tamper, write_events


def walk_chain_by_hand(catalog: Catalog) -> tuple[int, str]:
    """Recompute the chain from the stored rows with nothing but hashlib."""
    with catalog.db.read() as conn:
        rows = conn.execute(text("SELECT seq, text, hash FROM events ORDER BY seq")).all()
        head = conn.execute(text("SELECT seq, hash FROM chain_head")).one()
    prev = audit.GENESIS_HASH
    for expected_seq, (seq, body, digest) in enumerate(rows, start=1):
        assert seq == expected_seq, "gap in seq"
        assert hashlib.sha256((prev + body).encode()).hexdigest() == digest
        assert json.loads(body)["seq"] == seq
        prev = digest
    assert (head.seq, head.hash) == (len(rows), prev)
    return len(rows), prev


@pytest.fixture
def five(writer: AtomicWriter, catalog: Catalog) -> list:  # type: ignore[type-arg]
    """Five written artifacts: events 1 (schema_upgrade) and 2..6 (writes)."""
    return [writer.write_json("ledger", f"p{n}", {"n": n}) for n in range(5)]


def seq_of_write(catalog: Catalog, artifact_id: int) -> int:
    return next(e.seq for e in catalog.events() if e.action == "write" and e.artifact_id == artifact_id)


# -- the chain ---------------------------------------------------------------------------


def test_the_chain_recomputes_from_the_stored_rows(five, catalog: Catalog) -> None:
    count, head = walk_chain_by_hand(catalog)
    assert count == 6 and [e.action for e in catalog.events()] == ["schema_upgrade"] + ["write"] * 5
    report = catalog.audit_verify()
    assert report.ok and report.count == 6 and report.artifacts == 5 and report.head_hash == head


def test_the_event_text_is_canonical_and_versioned(five, catalog: Catalog) -> None:
    with catalog.db.read() as conn:
        body = conn.execute(text("SELECT text FROM events WHERE seq = 2")).scalar()
    parsed = json.loads(body)
    assert body == json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert parsed["v"] == 1 and parsed["action"] == "write" and parsed["status"] == "active"
    assert parsed["path"] == five[0].path and parsed["details"]["sha256"] == five[0].sha256
    assert parsed["at"].endswith("Z") and "@" in parsed["actor"] and ":" in parsed["actor"]


# -- the database refuses -----------------------------------------------------------------


@pytest.mark.parametrize(
    "statement,message",
    [
        ("UPDATE events SET action = 'wrote' WHERE seq = 2", "append-only"),
        ("DELETE FROM events WHERE seq = 2", "append-only"),
        ("DELETE FROM artifacts", "never deleted"),
        ("UPDATE artifacts SET sha256 = 'x'", "never change"),
        ("UPDATE artifacts SET size = size + 1", "never change"),
        ("UPDATE artifacts SET original_path = 'elsewhere'", "never change"),
    ],
    ids=["update-event", "delete-event", "delete-artifact", "edit-checksum", "edit-size", "edit-original-path"],
)
def test_triggers_refuse_rewriting_history(five, catalog: Catalog, statement: str, message: str) -> None:
    with pytest.raises(sqlalchemy.exc.IntegrityError, match=message):
        with catalog.db.write() as conn:
            conn.execute(text(statement))
    assert catalog.audit_verify().ok


# -- tampering behind the triggers is detected --------------------------------------------


def _rewrite_consistently(catalog: Catalog, seq: int) -> None:
    """Edit one event and recompute every hash after it, as a careful attacker would."""
    with catalog.db.read() as conn:
        rows = conn.execute(text("SELECT seq, text, details FROM events ORDER BY seq")).all()
    prev, statements = audit.GENESIS_HASH, []
    for row in rows:
        body = json.loads(row.text)
        if row.seq == seq:
            body["details"]["size"] += 1
            statements.append(f"UPDATE artifacts SET size = size + 1 WHERE id = {body['artifact_id']}")
        new_text = audit.canonical_json(body)
        digest = audit.chain_hash(prev, new_text)
        details = audit.canonical_json(body["details"])
        statements.append(f"UPDATE events SET text = '{new_text}', details = '{details}', hash = '{digest}' WHERE seq = {row.seq}")
        prev = digest
    statements.append(f"UPDATE chain_head SET hash = '{prev}'")
    tamper(catalog, *statements, tree=True)


TAMPERING = {
    "edit-a-detail": ("edited", lambda c, five: (tamper(c, "UPDATE events SET text = replace(text, '\"size\":', '\"size\":9'), "
                      "details = replace(details, '\"size\":', '\"size\":9') WHERE seq = 3"), 3)[1]),
    "change-a-checksum": ("row/event mismatch", lambda c, five: (tamper(c, f"UPDATE artifacts SET sha256 = '{'0' * 64}' "
                          f"WHERE id = {five[2].id}"), seq_of_write(c, five[2].id))[1]),
    "delete-an-event": ("missing", lambda c, five: (tamper(c, "DELETE FROM events WHERE seq = 4"), 4)[1]),
    "delete-the-last-event": ("missing", lambda c, five: (tamper(c, "DELETE FROM events WHERE seq = 6"), 6)[1]),
    "swap-two-events": ("reordered", lambda c, five: (tamper(c, "UPDATE events SET seq = 1000 WHERE seq = 3",
                        "UPDATE events SET seq = 3 WHERE seq = 4", "UPDATE events SET seq = 4 WHERE seq = 1000"), 3)[1]),
    "delete-an-artifact-row": ("row/event mismatch", lambda c, five: (tamper(c, f"DELETE FROM artifacts WHERE id = {five[1].id}"),
                               seq_of_write(c, five[1].id))[1]),
    "move-a-row-silently": ("row/event mismatch", lambda c, five: (tamper(c, f"UPDATE artifacts SET path = 'ledger/x.json', "
                            f"status = 'archived' WHERE id = {five[4].id}"), seq_of_write(c, five[4].id))[1]),
}  # fmt: skip


@pytest.mark.parametrize("kind,attack", list(TAMPERING.values()), ids=list(TAMPERING))
def test_tampering_is_detected_at_the_right_seq(five, catalog: Catalog, run_cli, kind: str, attack) -> None:  # type: ignore[no-untyped-def]
    seq = attack(catalog, five)
    report = catalog.audit_verify()
    assert not report.ok
    assert report.first_bad_seq == seq and report.first.kind == kind, report.problems
    result = run_cli("audit", "verify")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"BROKEN at seq {seq}: {kind}:")


def test_a_row_added_behind_the_logs_back_is_detected(five, catalog: Catalog) -> None:
    tamper(catalog, "INSERT INTO artifacts (path, original_path, folder, type, prefix, ext, created_at, recorded_at, "
                    "size, sha256, status) VALUES ('ledger/forged.json', 'ledger/forged.json', 'ledger', 'ledger', 'f', "
                    f"'json', '2024-01-01 00:00:00', '2024-01-01 00:00:00', 1, '{'1' * 64}', 'active')")  # fmt: skip
    report = catalog.audit_verify()
    assert not report.ok and report.first.kind == "row/event mismatch" and "no write event" in report.first.message


def test_a_consistent_rewrite_is_caught_only_by_a_checkpoint(five, catalog: Catalog, run_cli, tmp_path: Path) -> None:
    cp = tmp_path / "outside" / "cp.txt"
    cp.parent.mkdir()
    taken = run_cli("audit", "checkpoint", "-o", str(cp))
    assert taken.exit_code == 0, taken.stderr
    assert tlog.parse_checkpoint(cp.read_bytes()).size == 7  # the checkpoint event itself is seq 7
    _rewrite_consistently(catalog, 3)
    assert catalog.audit_verify().ok  # a careful rewrite passes the chain check alone
    report = catalog.audit_verify([audit.read_checkpoint(cp)])
    assert not report.ok and report.first_bad_seq == 7 and report.first.kind == "rewritten"
    result = run_cli("audit", "verify", "--checkpoint", str(cp))
    assert result.exit_code == 1 and result.stdout.startswith("BROKEN at seq 7: rewritten:")


def test_an_edited_file_is_not_called_well_by_the_log_check(five, catalog, run_cli) -> None:  # type: ignore[no-untyped-def]
    """Issue 13, case 12: a compliance officer ran `audit verify` over an edited file and read "All is well"."""
    edited = catalog.base_dir / five[0].path
    edited.chmod(0o644)
    data = bytearray(edited.read_bytes())
    data[-3] ^= 1  # one bit, same size
    edited.write_bytes(bytes(data))
    log_check = run_cli("audit", "verify")
    assert log_check.exit_code == 0 and "All is well" not in log_check.stdout
    assert "not the files' bytes: `catalog verify` re-reads the files" in log_check.stdout
    files = run_cli("verify")
    assert files.exit_code == 1 and "1 failed" in files.stdout


def test_verify_says_so_when_all_is_well(five, run_cli) -> None:
    result = run_cli("audit", "verify")
    assert result.exit_code == 0
    assert result.stdout.startswith("The log is intact: 6 events chain")
    # Issue 13, case 12: "All is well" over an edited file misled; it says what it checked and what did not.
    assert "not the files' bytes: `catalog verify` re-reads the files" in result.stdout
    report = json.loads(run_cli("audit", "verify", "--format", "json").stdout)
    assert report["ok"] is True and report["problems"] == [] and report["first_bad_seq"] is None


# -- checkpoints ------------------------------------------------------------------------


def test_checkpoint_is_an_event_and_never_overwrites(five, catalog: Catalog, run_cli, tmp_path: Path) -> None:
    target = tmp_path / "cp.txt"
    assert run_cli("audit", "checkpoint", "-o", str(target)).exit_code == 0
    last = list(catalog.events())[-1]
    assert last.action == "checkpoint" and last.details["file"] == str(target)
    before = target.read_bytes()
    again = run_cli("audit", "checkpoint", "-o", str(target))
    assert again.exit_code == 2 and "already exists" in again.stderr and target.read_bytes() == before
    printed = run_cli("audit", "checkpoint")
    assert tlog.parse_checkpoint(printed.stdout.encode()).size == list(catalog.events())[-1].seq


def test_a_configured_checkpoint_folder_is_used_and_checked(five, catalog: Catalog, run_cli, tmp_path: Path, monkeypatch) -> None:
    from catalog.ops.checkpoints import auto_checkpoint

    folder = tmp_path / "worm"
    monkeypatch.setenv("CRYPTORUN_CHECKPOINT_DIR", str(folder))
    result = run_cli("audit", "checkpoint")
    assert result.exit_code == 0 and "written to" in result.stdout
    (first,) = folder.glob("checkpoint-*.txt")
    printed = run_cli("audit", "checkpoint", "-o", "-")  # standard output, even with a folder configured
    assert printed.exit_code == 0 and tlog.parse_checkpoint(printed.stdout.encode()).size == list(catalog.events())[-1].seq
    assert list(catalog.events())[-1].details["file"] == "(printed)"
    assert not Path("-").exists() and len(list(folder.glob("checkpoint-*.txt"))) == 1
    from dataclasses import replace

    catalog.settings = replace(catalog.settings, checkpoint_dir=folder)
    assert auto_checkpoint(catalog) is not None and len(list(folder.glob("checkpoint-*.txt"))) == 2
    verified = run_cli("audit", "verify")
    assert verified.exit_code == 0 and "extends 2 checkpoint(s)" in verified.stdout
    _rewrite_consistently(catalog, 3)
    assert run_cli("audit", "verify").exit_code == 1


# -- actors ---------------------------------------------------------------------------


def test_the_actor_is_the_os_identity_plus_any_claim(catalog: Catalog, run_cli, tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "d.json"
    data.write_text("{}")
    assert run_cli("--actor", "alice", "put", str(data), "--type", "ledger", "--prefix", "a",
                   global_args=run_cli.base_args).exit_code == 0  # fmt: skip
    monkeypatch.setenv("CRYPTORUN_ACTOR", "bob the auditor")
    assert run_cli("put", str(data), "--type", "ledger", "--prefix", "b").exit_code == 0
    monkeypatch.delenv("CRYPTORUN_ACTOR")
    assert run_cli("put", str(data), "--type", "ledger", "--prefix", "c").exit_code == 0
    actors = [e.actor for e in write_events(catalog)]
    identity = audit.current_actor().rsplit(":", 1)[0]  # user@host (the pid differs)
    assert all(a.startswith(identity + ":") for a in actors)
    assert actors[0].endswith("(claims alice)") and actors[1].endswith("(claims bob the auditor)")
    assert "claims" not in actors[2]


# -- the status-change function and point-in-time answers ------------------------------


def test_as_of_answers_from_the_events(writer: AtomicWriter, catalog: Catalog, run_cli) -> None:
    t = [datetime(2024, 2, 28, 23, 0, tzinfo=timezone.utc) + timedelta(days=n) for n in range(6)]
    with freeze_time(t[0]):
        a = writer.write_json("ledger", "portfolio", {"cash": 1})
    with freeze_time(t[1]):
        b = writer.write_json("explain", "scan", {"n": 1})
    archived = "ledger/archived/2024-02/" + Path(a.path).name
    with freeze_time(t[2]):
        moved = catalog.change_status(a.id, action="archive", status="archived", path=archived)
    with freeze_time(t[3]):
        catalog.change_status(b.id, action="delete", status="deleted", details={"reason": "retention"})
    with freeze_time(t[4]):
        c = writer.write_json("health", "metrics", {"ok": True})

    def at(moment: datetime) -> list[tuple[str, str]]:
        result = run_cli("ls", "--as-of", moment.isoformat(), "--sort", "oldest", "--format", "json")
        assert result.exit_code == 0, result.stderr
        return [(r["path"], r["status"]) for r in json.loads(result.stdout)["artifacts"]]

    half = timedelta(hours=12)
    assert at(t[0] - half) == []
    assert at(t[0]) == [(a.path, "active")]  # at the very instant it was recorded
    assert at(t[0] + half) == [(a.path, "active")]
    assert at(t[1] + half) == [(a.path, "active"), (b.path, "active")]
    assert at(t[2] + half) == [(archived, "archived"), (b.path, "active")]
    assert at(t[3] + half) == [(archived, "archived")]
    assert at(t[4] + half) == [(archived, "archived"), (c.path, "active")]
    assert moved.path == archived and moved.original_path == a.path and moved.status == "archived"
    assert [r.path for r in iter_artifacts(catalog, ArtifactQuery(as_of=t[2] + half, types=("ledger",)))] == [archived]
    story = json.loads(run_cli("show", a.path, "--format", "json").stdout)  # by its original path
    assert [(e["action"], e["status"], e["path"]) for e in story["events"]] == [
        ("write", "active", a.path), ("archive", "archived", archived),
    ]  # fmt: skip
    assert story["events"][1]["details"]["from_path"] == a.path
    assert catalog.audit_verify().ok


def test_change_status_refuses_an_unknown_status(five, catalog: Catalog) -> None:
    from catalog.core.errors import NotFoundError, ValidationError

    with pytest.raises(ValidationError, match="unknown status"):
        catalog.change_status(five[0].id, action="x", status="shredded")
    with pytest.raises(NotFoundError):
        catalog.change_status(10**9, action="x", status="missing")
    assert catalog.audit_verify().ok


# -- the log ---------------------------------------------------------------------------


def test_audit_log_filters(writer: AtomicWriter, catalog: Catalog, run_cli, monkeypatch) -> None:
    with freeze_time("2024-01-01"):
        a = writer.write_json("ledger", "a", {})
    monkeypatch.setenv("CRYPTORUN_ACTOR", "carol")
    with freeze_time("2024-01-02"):
        b = Catalog(catalog.settings)
        AtomicWriter(catalog=b).write_json("explain", "b", {})
        b.change_status(a.id, action="missing", status="missing")
        b.close()

    def seqs(*args: str) -> list[tuple[int, str]]:
        result = run_cli("audit", "log", *args, "--format", "json")
        assert result.exit_code == 0, result.stderr
        return [(e["seq"], e["action"]) for e in json.loads(result.stdout)["events"]]

    assert seqs() == [(1, "schema_upgrade"), (2, "write"), (3, "write"), (4, "missing")]
    assert seqs("--action", "write") == [(2, "write"), (3, "write")]
    assert seqs("--path", a.path) == [(2, "write"), (4, "missing")]
    assert seqs("--path", "explain/*") == [(3, "write")]
    assert seqs("--actor", "claims carol") == [(3, "write"), (4, "missing")]
    assert seqs("--since", "2024-01-02", "--until", "2024-01-03") == [(3, "write"), (4, "missing")]
    assert seqs("--limit", "1", "--action", "missing") == [(4, "missing")]
    as_csv = run_cli("audit", "log", "--format", "csv").stdout.splitlines()
    assert as_csv[0] == "seq,at,action,artifact_id,path,status,actor,details,hash" and len(as_csv) == 5
    assert [e.seq for e in iter_event_log(catalog, EventQuery(actions=("missing",)))] == [4]


@pytest.mark.parametrize("given", ["deleted", "Delete", "DELETE", "delete ", "writes", ""],
                         ids=["past-tense", "capitalised", "upper-case", "trailing-space", "plural", "empty"])
def test_audit_log_refuses_an_unknown_action_with_the_list(run_cli, catalog, given: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 13, case 8: a misspelt action used to print "(no rows)" and exit 0."""
    result = run_cli("audit", "log", "--action", given)
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: Invalid value for '--action'") and "'delete', 'retain_extend'" in line


def test_the_audit_log_help_lists_every_action(run_cli) -> None:  # type: ignore[no-untyped-def]
    from catalog.core.vocabulary import ACTIONS

    shown = run_cli("audit", "log", "--help").stdout
    assert all(f"  {action} " in shown for action in ACTIONS), shown


def test_an_event_query_refuses_an_unknown_action() -> None:
    from catalog.core.errors import ValidationError

    with pytest.raises(ValidationError, match="^unknown action 'deleted'; choose one of: write, "):
        EventQuery(actions=("delete", "deleted"))


def test_every_action_the_code_records_is_in_the_vocabulary(catalog, writer, base_dir) -> None:  # type: ignore[no-untyped-def]
    """The closed set is complete: a workload that records every kind of event records only listed actions."""
    from catalog.core.vocabulary import ACTIONS

    from helpers import representative_workload

    (base_dir.parent / "out").mkdir()
    representative_workload(catalog, writer, base_dir.parent / "out")
    recorded = {event.action for event in catalog.events()}
    assert recorded <= set(ACTIONS) and len(recorded) >= 13, sorted(recorded)  # (the unit of work refuses others)


@pytest.mark.parametrize("limit", [0, -1], ids=["zero", "negative"])
def test_an_event_query_refuses_a_limit_below_one(limit: int) -> None:
    from catalog.core.errors import ValidationError

    with pytest.raises(ValidationError, match=f"limit must be 1 or more, not {limit}"):
        EventQuery(limit=limit)  # limit=0 used to list every event


# -- evidence bundles -------------------------------------------------------------------


def test_a_bundle_verifies_elsewhere_without_the_catalog(five, catalog: Catalog, run_cli, tmp_path: Path, base_dir: Path, monkeypatch) -> None:
    bundle = tmp_path / "evidence.zip"
    result = run_cli("audit", "export", str(bundle), "--include-files")
    assert result.exit_code == 0, result.stderr
    assert "events 1..6 (6), 5 artifact rows, 5 files" in result.stdout
    moved = tmp_path / "elsewhere" / "copy.zip"
    moved.parent.mkdir()
    shutil.copy(bundle, moved)
    catalog.close()
    shutil.rmtree(base_dir)  # the catalog is gone (SQLite); on PostgreSQL the command never connects anyway
    monkeypatch.chdir(moved.parent)
    ok = run_cli("audit", "verify-bundle", str(moved), global_args=[])
    assert ok.exit_code == 0, ok.stderr + ok.stdout
    first, second = ok.stdout.splitlines()
    assert first.startswith("NOT authenticated: no --key was given")  # signed bundles: tests/test_bundles.py
    assert second.startswith("Bundle verifies: events 1..6 chain intact, 5 artifact rows and 5 files")

    data = moved.read_bytes()
    positions = sorted({0, 1, len(data) // 2, len(data) - 1, len(data) - 30, *range(3, len(data), max(1, len(data) // 40))})
    for position in positions:
        altered = bytearray(data)
        altered[position] ^= 0x01
        moved.write_bytes(bytes(altered))
        result = run_cli("audit", "verify-bundle", str(moved), global_args=[])
        assert result.exit_code in (1, 2) and "verifies:" not in result.stdout, position
        assert "Traceback" not in result.output
    moved.write_bytes(data)
    assert run_cli("audit", "verify-bundle", str(moved), global_args=[]).exit_code == 0


def test_a_window_export_is_a_contiguous_run_of_the_chain(writer: AtomicWriter, catalog: Catalog, run_cli, tmp_path: Path) -> None:
    for day in range(1, 5):
        with freeze_time(f"2024-03-0{day}"):
            writer.write_json("ledger", f"d{day}", {"day": day})
    bundle = tmp_path / "march.zip"
    result = run_cli("audit", "export", str(bundle), "--since", "2024-03-02", "--until", "2024-03-04")
    assert result.exit_code == 0 and "events 3..4 (2), 2 artifact rows, 0 files" in result.stdout
    check = json.loads(run_cli("audit", "verify-bundle", str(bundle), "--format", "json", global_args=[]).stdout)
    assert check["ok"] and (check["first_seq"], check["last_seq"]) == (3, 4)


def test_a_tampered_file_is_left_out_of_the_bundle(five, catalog: Catalog, run_cli, tmp_path: Path, base_dir: Path) -> None:
    victim = base_dir / five[0].path
    victim.chmod(0o644)
    victim.write_text('{"n": 99}\n')
    result = run_cli("audit", "export", str(tmp_path / "b.zip"), "--include-files")
    assert result.exit_code == 0 and "4 files" in result.stdout and five[0].path in result.stdout
    assert run_cli("audit", "verify-bundle", str(tmp_path / "b.zip"), global_args=[]).exit_code == 0
    assert store_files(base_dir) == sorted(r.path for r in five)  # export wrote nothing into the store


YEAR_2200 = datetime(2200, 1, 1, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("mtime", [0, YEAR_2200, 315532800 - 1], ids=["epoch", "year-2200", "a-second-before-1980"])
def test_a_bundle_never_depends_on_file_times(five, catalog: Catalog, run_cli, tmp_path: Path, base_dir: Path,
                                              mtime: float) -> None:  # fmt: skip
    """Issue 14, case 4: `touch -d @0` on a catalogued file: internal error (ZIP does not support timestamps before 1980)."""
    import zipfile

    for record in five:
        os.utime(base_dir / record.path, (mtime, mtime))
    bundle = tmp_path / "b.zip"
    result = run_cli("audit", "export", str(bundle), "--include-files")
    assert result.exit_code == 0, result.output
    assert "5 files" in result.stdout
    check = run_cli("audit", "verify-bundle", str(bundle), global_args=[])
    assert check.exit_code == 0, check.stdout
    with zipfile.ZipFile(bundle) as archive:
        dates = {info.filename: info.date_time for info in archive.infolist()}
    for record in five:  # each file is dated by its catalogued created_at (ZIP keeps even seconds), whatever its mtime
        created = record.created_at.replace(second=record.created_at.second // 2 * 2)
        assert dates[f"files/{record.path}"] == created.timetuple()[:6]


def test_a_bundle_member_dated_outside_zip_range_is_clamped(writer: AtomicWriter, catalog: Catalog, run_cli,
                                                            tmp_path: Path) -> None:  # fmt: skip
    import zipfile

    with freeze_time("2150-06-01"):
        late = writer.write_json("ledger", "late", {})
    bundle = tmp_path / "b.zip"
    with freeze_time("2150-06-02"):  # the log's clock never runs backwards
        result = run_cli("audit", "export", str(bundle), "--include-files")
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(bundle) as archive:
        assert archive.getinfo(f"files/{late.path}").date_time == (2107, 12, 31, 23, 59, 58)
        assert archive.getinfo("bundle.json").date_time == (2107, 12, 31, 23, 59, 58)
    assert run_cli("audit", "verify-bundle", str(bundle), global_args=[]).exit_code == 0


def test_a_bundle_follows_the_umask(five, catalog: Catalog, run_cli, tmp_path: Path) -> None:
    """Issue 14, case 10: the bundle was always 0600, so a compliance group could not read it."""
    old = os.umask(0o027)
    try:
        assert run_cli("audit", "export", str(tmp_path / "b.zip")).exit_code == 0
    finally:
        os.umask(old)
    assert (tmp_path / "b.zip").stat().st_mode & 0o777 == 0o640
    assert sorted(os.listdir(tmp_path)) == ["b.zip", "cwd", "store"]  # no temp file left beside it


def test_a_bundle_output_that_appears_meanwhile_is_not_overwritten(five, catalog: Catalog, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from catalog.core import bundle_format
    from catalog.core.errors import CollisionError
    from catalog.ops import bundles

    out = tmp_path / "b.zip"
    real_seal = bundle_format.seal

    def seal_then_lose_the_race(path: Path) -> None:
        real_seal(path)
        out.write_bytes(b"another export, finished first")

    monkeypatch.setattr(bundle_format, "seal", seal_then_lose_the_race)
    with pytest.raises(CollisionError, match=f"^{out} already exists; nothing was overwritten$"):
        bundles.export_bundle(catalog, out, None, None, include_files=True)
    assert out.read_bytes() == b"another export, finished first"
    assert sorted(os.listdir(tmp_path)) == ["b.zip", "cwd", "store"]


def test_schema_upgrade_is_recorded_after_the_migration(settings, run_cli) -> None:  # type: ignore[no-untyped-def]
    from catalog.core import vocabulary as migrations
    from catalog.core.db import Database

    settings.base_dir.mkdir()
    old = Database(settings.catalog_url)
    old.upgrade("0002")
    old.dispose()
    assert run_cli("db", "upgrade").exit_code == 0
    catalog = Catalog(settings)
    (event,) = list(catalog.events())
    assert event.action == "schema_upgrade" and dict(event.details) == {"from": "0002", "to": migrations.HEAD_REVISION}
    assert catalog.audit_verify().ok
    catalog.close()
    os.environ.pop("CRYPTORUN_ACTOR", None)
