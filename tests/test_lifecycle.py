"""Lifecycle as SQL: retention plans across calendars, apply by intents (even when killed), holds, floors, limits."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from catalog.core import tlog
from catalog.core.schema import ARTIFACTS
from catalog.core.schema import FOLDER_USAGE as USAGE
from catalog.core.settings import RetentionPolicy
from catalog.core.store import Catalog
from catalog.core.vocabulary import ON_DISK
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.limits import limits
from catalog.ops.policy import add_hold, extend, holds, release_hold, set_floor
from catalog.ops.reconcile import reconcile
from catalog.ops.retention import apply, archive_path, plan

from helpers import all_records, catalog_env, store_files

UTC = timezone.utc
DAYS = {"explain": 30, "ledger": 90, "health": 14}
WHEN = [
    datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC),
    datetime(2024, 2, 28, 12, tzinfo=UTC), datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
    datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC),
]  # fmt: skip


def backdated(writer: AtomicWriter, when: datetime, artifact_type: str, prefix: str):  # type: ignore[no-untyped-def]
    with freeze_time(when):
        return writer.write_json(artifact_type, prefix, {"at": when.isoformat()})


@pytest.fixture
def calendar(writer: AtomicWriter) -> list:  # type: ignore[type-arg]
    return [backdated(writer, when, t, f"{t}{n}") for n, when in enumerate(WHEN) for t in ("explain", "ledger", "health", "config")]


@pytest.mark.parametrize(
    "now",
    ["2024-01-13T23:59:59Z", "2024-01-14T23:59:59Z", "2024-01-15T00:00:00Z", "2024-01-30T23:59:59Z",
     "2024-01-31T00:00:00Z", "2024-03-14T00:00:00Z", "2024-03-15T00:00:00Z", "2024-03-30T23:59:59Z",
     "2024-03-31T00:00:00Z", "2024-05-28T12:00:00Z", "2024-05-29T23:59:59Z", "2025-01-14T23:59:59Z",
     "2025-01-30T00:00:00Z", "2025-03-31T23:59:59Z", "2025-04-01T00:00:00Z"],
)  # fmt: skip
def test_the_plan_is_exactly_what_has_expired(calendar, catalog: Catalog, run_cli, now: str) -> None:  # type: ignore[no-untyped-def]
    moment = datetime.fromisoformat(now.replace("Z", "+00:00"))
    expected = {
        (r.path, "archive" if r.type == "ledger" else "delete")
        for r in calendar
        if r.type in DAYS and max(r.created_at, r.recorded_at) + timedelta(days=DAYS[r.type]) <= moment
    }
    got = {(row.record.path, row.action) for row in plan(catalog, now=moment)}
    assert got == expected
    rows = json.loads(run_cli("retention", "plan", "--now", now, "--format", "json").stdout)["plan"]
    assert {(r["path"], r["action"]) for r in rows} == expected
    assert all({"path", "type", "action", "reason"} <= set(r) for r in rows)


def test_apply_deletes_and_archives_by_the_real_clock(calendar, catalog: Catalog, base_dir: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("retention", "apply", "--yes", "--format", "json")
    assert result.exit_code == 0, result.stderr
    done = json.loads(result.stdout)
    expected_delete = {r.path for r in calendar if r.type in ("explain", "health")}
    assert set(done["deleted"]) == expected_delete
    assert {a["from"] for a in done["archived"]} == {r.path for r in calendar if r.type == "ledger"}
    rows = {r.id: r for r in all_records(catalog)}
    for record in calendar:
        row = rows[record.id]
        assert row.original_path == record.path and row.sha256 == record.sha256 and row.size == record.size
        if record.type == "ledger":
            assert row.status == "archived" and row.path == f"ledger/archived/{record.created_at:%Y-%m}/{Path(record.path).name}"
            assert (base_dir / row.path).read_bytes() and not (base_dir / record.path).exists()
        elif record.type == "config":
            assert row.status == "active"  # kept forever
        else:
            assert row.status == "deleted" and not (base_dir / record.path).exists()
    assert reconcile(catalog, deep=True, grace=0).findings == []
    assert catalog.audit_verify().ok
    runs = [e for e in catalog.events() if e.action == "retention_run"]
    assert len(runs) == 1 and runs[0].details["deleted"] == len(expected_delete)
    again = json.loads(run_cli("retention", "apply", "--yes", "--format", "json").stdout)
    assert again["deleted"] == [] and again["archived"] == []  # nothing twice


@pytest.mark.parametrize("how", ["cli", "api-all", "api-chosen"])
def test_apply_counts_what_it_protected(writer: AtomicWriter, catalog: Catalog, run_cli, how: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 13, case 13: apply reported "protected": 0 (JSON and retention_run event) beside hold and keep rows."""
    old = datetime(2020, 5, 1, tzinfo=UTC)
    held = backdated(writer, old, "health", "held")
    kept = backdated(writer, old, "explain", "kept")
    backdated(writer, old, "explain", "doomed")
    add_hold(catalog, path=held.path, reason="legal")
    extend(catalog, [kept], datetime(2099, 1, 1, tzinfo=UTC), "litigation")
    if how == "cli":
        result = run_cli("retention", "apply", "--yes", "--format", "json")
        assert result.exit_code == 0 and json.loads(result.stdout)["protected"] == 2
        assert "2 protected" in run_cli("retention", "apply", "--yes").stdout  # the table form says it too
    else:
        rows = None if how == "api-all" else [r for r in plan(catalog) if r.action in ("delete", "archive")]
        assert apply(catalog, rows).protected == 2
    (run, *_) = [e for e in reversed(list(catalog.events())) if e.action == "retention_run"]
    assert run.details["protected"] == 2


def test_apply_without_yes_off_a_terminal_is_refused(calendar, run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("retention", "apply")
    assert result.exit_code == 2 and "needs --yes" in result.stderr


def test_holds_and_retain_until_survive_apply(writer: AtomicWriter, catalog: Catalog, base_dir: Path, run_cli) -> None:
    old = datetime(2020, 5, 1, tzinfo=UTC)
    held = backdated(writer, old, "health", "held")
    by_prefix = backdated(writer, old, "health", "inquiry-7")
    extended = backdated(writer, old, "explain", "kept")
    doomed = backdated(writer, old, "explain", "doomed")
    add_hold(catalog, path=held.path, reason="legal")
    add_hold(catalog, prefix="inquiry-*", reason="SEC inquiry")
    extend(catalog, [extended], datetime(2099, 1, 1, tzinfo=UTC), "litigation")
    rows = {row.record.path: row for row in plan(catalog)}
    assert rows[held.path].action == "hold" and "legal" in rows[held.path].reason
    assert rows[by_prefix.path].action == "hold"
    assert rows[extended.path].action == "keep" and "retain_until 2099-01-01" in rows[extended.path].reason
    assert rows[doomed.path].action == "delete"
    report = apply(catalog)
    assert report.deleted == [doomed.path] and report.protected == 3
    assert all((base_dir / r.path).exists() for r in (held, by_prefix, extended))
    (hold_id,) = [h.id for h in holds(catalog) if h.kind == "path"]
    release_hold(catalog, hold_id, "case closed")
    assert apply(catalog).deleted == [held.path]
    actions = [e.action for e in catalog.events()]
    assert actions.count("hold_place") == 2 and actions.count("hold_release") == 1 and "retain_extend" in actions


def test_a_shorter_policy_or_zero_days_never_deletes_what_was_promised(writer: AtomicWriter, catalog: Catalog, monkeypatch) -> None:
    promised = backdated(writer, datetime.now(UTC) - timedelta(days=10), "explain", "promised")
    assert promised.retain_until == promised.recorded_at + timedelta(days=30)
    shorter = dict(catalog.settings.retention, explain=RetentionPolicy(0, "delete"))
    catalog.settings = replace(catalog.settings, retention=shorter)  # as CRYPTORUN_EXPLAIN_RETENTION_DAYS=0 would
    (row,) = list(plan(catalog))
    assert row.action == "keep" and row.record.path == promised.path
    assert apply(catalog).deleted == []


def test_a_floor_protects_against_a_zero_day_writer_and_cannot_be_lowered(catalog: Catalog, run_cli, monkeypatch) -> None:
    assert run_cli("policy", "floor", "set", "ledger", "365", "--reason", "books").exit_code == 0
    monkeypatch.setenv("CRYPTORUN_LEDGER_RETENTION_DAYS", "0")
    zero = Catalog(replace(catalog.settings, retention=dict(catalog.settings.retention, ledger=RetentionPolicy(0, "archive"))))
    record = AtomicWriter(catalog=zero).write_json("ledger", "p", {"cash": 1})
    zero.close()
    assert record.retain_until == record.recorded_at + timedelta(days=365)
    lowered = run_cli("policy", "floor", "set", "ledger", "30", "--reason", "oops")
    assert lowered.exit_code == 2 and "cannot be lowered while rows depend on it" in lowered.stderr
    assert run_cli("policy", "floor", "set", "ledger", "400", "--reason", "stricter").exit_code == 0
    floors_shown = json.loads(run_cli("policy", "floor", "show", "--format", "json").stdout)["floors"]
    assert {f["type"]: f["floor_days"] for f in floors_shown}["ledger"] == 400
    events = [e for e in catalog.events() if e.action == "policy_floor"]
    assert [(e.details["from"], e.details["to"]) for e in events] == [(None, 365), (365, 400)]
    # with nothing depending on it, a floor can come down again
    set_floor(catalog, "explain", 60, "trial")
    assert set_floor(catalog, "explain", 10, "trial over") == 60


def test_retain_extend_never_shortens(writer: AtomicWriter, catalog: Catalog, run_cli) -> None:
    record = writer.write_json("ledger", "p", {})
    later = (record.retain_until + timedelta(days=100)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = run_cli("retain", "extend", record.path, "--until", later, "--reason", "audit")
    assert result.exit_code == 0 and "Extended 1 of 1" in result.stdout
    sooner = (record.retain_until + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    shorter = run_cli("retain", "extend", record.path, "--until", sooner, "--reason", "x").stdout
    assert "Extended 0 of 1 artifacts to " in shorter and "(unchanged: 1 kept longer already)." in shorter
    assert catalog.find_path(record.path).retain_until.strftime("%Y-%m-%dT%H:%M:%SZ") == later
    assert catalog.audit_verify().ok


def test_retain_extend_says_why_a_deleted_or_missing_artifact_is_unchanged(writer: AtomicWriter, catalog: Catalog,
                                                                            base_dir: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    """It said '(those already kept longer are unchanged)' of an artifact whose file is gone."""
    kept, gone = writer.write_json("ledger", "q.kept", {}), writer.write_json("ledger", "q.gone", {})
    (base_dir / gone.path).unlink()
    assert run_cli("reconcile", "--fix", "--grace", "0").exit_code == 1  # marks it missing
    later = (kept.retain_until + timedelta(days=100)).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = run_cli("retain", "extend", "--type", "ledger", "--until", later, "--reason", "audit").stdout
    assert "Extended 1 of 2 artifacts to " in out and "(unchanged: 1 deleted or missing)." in out, out


def test_files_missing_at_apply_time_are_reported(writer: AtomicWriter, catalog: Catalog, base_dir: Path, run_cli) -> None:
    gone = backdated(writer, datetime(2020, 1, 1, tzinfo=UTC), "health", "gone")
    (base_dir / gone.path).unlink()
    result = run_cli("retention", "apply", "--yes")
    assert result.exit_code == 1 and f"missing (reported, not deleted by retention): {gone.path}" in result.stdout
    assert catalog.find_path(gone.path).status == "missing"


KILLER = """
import os, random, signal, sys
import catalog.core.fs as w
from catalog.ops.retention import apply
rng = random.Random(int(sys.argv[1]))
budget = rng.randint(1, 6)
def hook(point):
    global budget
    budget -= 1
    if budget == 0:
        os.kill(os.getpid(), signal.SIGKILL)
w.FAULT_HOOK = hook
from catalog.core.store import Catalog
catalog = Catalog.open()
apply(catalog)
print("done")
"""


def _kill_until_done(catalog: Catalog, base_dir: Path, catalog_url, seed: int, limit: int = 200) -> int:  # type: ignore[no-untyped-def]
    env = catalog_env(base_dir, catalog_url)
    for attempt in range(limit):
        result = subprocess.run([sys.executable, "-c", KILLER, str(seed * 1000 + attempt)], env=env,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        if result.returncode == 0:
            return attempt
        assert result.returncode == -9, result.stderr
    raise AssertionError("apply never finished")


def _check_after_kills(catalog: Catalog, base_dir: Path, originals: list) -> None:  # type: ignore[type-arg]
    rows = {r.id: r for r in all_records(catalog)}
    for record in originals:
        row = rows[record.id]
        if record.type == "ledger":
            assert row.status == "archived" and row.path == archive_path(record)
            assert (base_dir / row.path).exists() and not (base_dir / record.path).exists()
        else:
            assert row.status == "deleted" and not (base_dir / record.path).exists()
    finals = [e for e in catalog.events() if e.action in ("delete", "archive")]
    assert sorted(e.artifact_id for e in finals) == sorted(r.id for r in originals)  # each exactly once
    assert not [e for e in catalog.events() if e.action == "missing"]  # nothing missing because of a crash
    assert reconcile(catalog, deep=True, grace=0).findings == []
    assert catalog.audit_verify().ok
    assert sorted(store_files(base_dir)) == sorted(r.path for r in all_records(catalog) if r.status in ON_DISK)


def test_apply_killed_at_random_points_finishes_on_rerun(writer: AtomicWriter, catalog: Catalog, base_dir: Path, catalog_url) -> None:
    old = datetime(2021, 6, 15, tzinfo=UTC)
    originals = [backdated(writer, old + timedelta(hours=n), t, f"{t}{n}") for n in range(4) for t in ("explain", "ledger")]
    attempts = _kill_until_done(catalog, base_dir, catalog_url, seed=1)
    assert attempts >= 1  # it was killed at least once
    _check_after_kills(catalog, base_dir, originals)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 12))
def test_apply_survives_many_kills(writer: AtomicWriter, catalog: Catalog, base_dir: Path, catalog_url, seed: int) -> None:
    rng = random.Random(seed)
    old = datetime(2021, 1, 1, tzinfo=UTC)
    originals = [backdated(writer, old + timedelta(days=rng.randint(0, 300), hours=n), t, f"{t}{n}")
                 for n in range(6) for t in ("explain", "ledger", "health")]  # fmt: skip
    _kill_until_done(catalog, base_dir, catalog_url, seed=seed)
    _check_after_kills(catalog, base_dir, originals)


def _kill_pairs_until_done(catalog: Catalog, base_dir: Path, catalog_url, seed: int, limit: int = 200) -> int:  # type: ignore[no-untyped-def]
    """Two applies at once, each killed at a random point, round after round, until a round sees one finish."""
    env = catalog_env(base_dir, catalog_url)
    for attempt in range(limit):
        procs = [subprocess.Popen([sys.executable, "-c", KILLER, str(seed * 1000 + 2 * attempt + n)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(2)]  # fmt: skip
        codes = []
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode in (0, -9) or "already running" in err, err  # serialised: one waits for the other
            codes.append(proc.returncode)
        if 0 in codes:
            return attempt
    raise AssertionError("apply never finished")


@pytest.mark.parametrize("seed", [1] + (list(range(2, 8)) if os.environ.get("CATALOG_SLOW_TESTS") == "1" else []))
def test_two_applies_at_once_killed_at_random_points(writer: AtomicWriter, catalog: Catalog, base_dir: Path,
                                                     catalog_url, seed: int) -> None:  # fmt: skip
    """Issue 13's kill scenario: concurrent applies, each killed at random; every artifact still processed once."""
    rng = random.Random(seed)
    old = datetime(2021, 1, 1, tzinfo=UTC)
    originals = [backdated(writer, old + timedelta(days=rng.randint(0, 300), hours=n), t, f"{t}{n}")
                 for n in range(5) for t in ("explain", "ledger", "health")]  # fmt: skip
    _kill_pairs_until_done(catalog, base_dir, catalog_url, seed=seed)
    _check_after_kills(catalog, base_dir, originals)


# -- limits ------------------------------------------------------------------------------


def test_limits_warn_at_80_percent_and_fail_over(writer: AtomicWriter, catalog: Catalog, run_cli, caplog) -> None:
    catalog.settings = replace(catalog.settings, limits=replace(catalog.settings.limits, max_files_per_dir=5))
    with caplog.at_level("WARNING", logger="catalog"):
        for n in range(3):
            writer.write_json("ledger", f"p{n}", {})
        assert not caplog.records
        writer.write_json("ledger", "p3", {})  # 4 of 5: 80 %
        assert len(caplog.records) == 1 and "folder ledger holds 4 files, 80% of its limit of 5" in caplog.text
        writer.write_json("ledger", "p4", {})  # already past 80 %: no second warning
        assert len(caplog.records) == 1
    rows = {r.name: r for r in limits(catalog)}
    assert rows["ledger"].files == 5 and rows["ledger"].level == "warn"
    writer.write_json("ledger", "p5", {})
    over = {r.name: r for r in limits(catalog)}
    assert over["ledger"].level == "over"


def test_limits_cli_exit_codes(writer: AtomicWriter, catalog: Catalog, tmp_path: Path, run_cli) -> None:
    writer.write_json("health", "a", {"x": "y" * 2000})
    ok = run_cli("limits", "--format", "json")
    assert ok.exit_code == 0
    store = [r for r in json.loads(ok.stdout)["limits"] if r["scope"] == "store"][0]
    assert store["files"] == 1 and store["bytes"] > 2000
    config = tmp_path / "tight.yaml"
    config.write_text("limits:\n  max_dir_bytes: 1 KiB\n")
    over = run_cli("--config", str(config), "limits", global_args=run_cli.base_args)
    assert over.exit_code == 1 and "over" in over.stdout


def test_plan_limits_and_stats_read_no_directory(calendar, catalog: Catalog, run_cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a directory was listed")

    for name in ("scandir", "listdir", "walk"):
        monkeypatch.setattr(os, name, refuse)
    monkeypatch.setattr(Path, "iterdir", refuse)
    monkeypatch.setattr(Path, "glob", refuse)
    assert list(plan(catalog, now=datetime(2026, 1, 1, tzinfo=UTC)))
    assert limits(catalog)
    for args in (("retention", "plan"), ("limits",), ("stats",)):
        result = run_cli(*args)
        assert result.exit_code == 0, (args, result.stderr)


def test_folder_usage_stays_equal_to_the_catalog(calendar, catalog: Catalog, base_dir: Path) -> None:  # type: ignore[no-untyped-def]
    apply(catalog)  # deletes and archives
    victim = next(r for r in all_records(catalog) if r.status == "active")
    path = base_dir / victim.path
    path.chmod(0o644)
    path.write_text("tampered")
    reconcile(catalog, deep=True, fix=True, grace=0)  # quarantines it
    c = ARTIFACTS.c
    with catalog.db.read() as conn:
        truth = {f: (n, int(b)) for f, n, b in conn.execute(
            select(c.folder, func.count(), func.sum(c.size)).where(c.status.in_(ON_DISK)).group_by(c.folder))}  # fmt: skip
        kept = {r.folder: (r.files, r.bytes) for r in conn.execute(select(USAGE)) if r.files}
    assert kept == truth
    assert any(f.startswith("quarantine/") for f in kept) and any("/archived/" in f for f in kept)


def test_retention_apply_leaves_a_checkpoint_when_a_folder_is_configured(calendar, catalog: Catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    catalog.settings = replace(catalog.settings, checkpoint_dir=tmp_path / "worm")
    apply(catalog)
    (checkpoint,) = (tmp_path / "worm").glob("checkpoint-*.txt")
    last = list(catalog.events())[-1]
    assert last.action == "checkpoint" and tlog.parse_checkpoint(checkpoint.read_bytes()).size == last.seq
