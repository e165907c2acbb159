"""Lifecycle work racing with itself, with holds and with verify (issue 13, cases 1–3), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

import catalog.core.fs as fs
from catalog.core.errors import CatalogDatabaseError
from catalog.core.settings import RetentionPolicy, Settings
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.policy import add_hold, extend, set_floor
from catalog.ops.retention import apply
from catalog.ops.verify import verify

from helpers import catalog_env

OLD = datetime(2024, 3, 1, tzinfo=timezone.utc)


def expired_health(writer: AtomicWriter, count: int, prefix: str = "p") -> list[Any]:
    with freeze_time(OLD):
        return [writer.write_json("health", f"{prefix}{n}", {"n": n}) for n in range(count)]


def zero_days(catalog: Catalog) -> None:
    retention = dict(catalog.settings.retention, health=RetentionPolicy(0, "delete"))
    catalog.settings = replace(catalog.settings, retention=retention)


def outcomes(catalog: Catalog) -> Counter[tuple[int | None, str]]:
    return Counter((e.artifact_id, e.action) for e in catalog.events() if e.action in ("delete", "missing", "archive"))


def test_two_applies_at_once_process_every_artifact_exactly_once(
    catalog: Catalog, writer: AtomicWriter, base_dir: Path, catalog_url: str | None
) -> None:  # fmt: skip
    """Case 1: two cron jobs at once gave 4,416 delete events for 3,000 artifacts and 401 rows wrongly missing."""
    records = expired_health(writer, 150)
    env = {**catalog_env(base_dir, catalog_url), "CRYPTORUN_HEALTH_RETENTION_DAYS": "0"}
    argv = [sys.executable, "-c", "from catalog.cli import main; main()", "retention", "apply", "--yes", "--format", "json"]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append((proc.returncode, out, err))
    assert [code for code, _, _ in results] == [0, 0], results
    deleted = [path for _, out, _ in results for path in json.loads(out)["deleted"]]
    assert sorted(deleted) == sorted(r.path for r in records)  # each once, between the two runs
    assert set(outcomes(catalog).values()) == {1} and len(outcomes(catalog)) == 150
    assert all(action == "delete" for _, action in outcomes(catalog))  # nothing a run deleted is called missing
    assert catalog.audit_verify().ok


def test_a_second_apply_that_cannot_wait_says_so_and_does_nothing(
    catalog: Catalog, writer: AtomicWriter, base_dir: Path, tmp_path: Path, catalog_url: str | None
) -> None:  # fmt: skip
    expired_health(writer, 3)
    config = tmp_path / "short.yaml"
    config.write_text("sqlite:\n  busy_timeout_ms: 200\n", encoding="utf-8")
    env = {**catalog_env(base_dir, catalog_url), "CRYPTORUN_HEALTH_RETENTION_DAYS": "0"}
    argv = [sys.executable, "-c", "from catalog.cli import main; main()", "--config", str(config), "retention",
            "apply", "--yes"]  # fmt: skip
    before = [e.seq for e in catalog.events()]
    with catalog.db.exclusive("lifecycle", "a test"):  # another apply is running
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: retention apply is already running on catalog ") and "this one did nothing" in line
    assert [e.seq for e in catalog.events()] == before


def test_the_lifecycle_lock_is_released_by_a_run_that_fails(catalog: Catalog, writer: AtomicWriter, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    zero_days(catalog)
    expired_health(writer, 2)

    def boom(point: str) -> None:
        if point == "intent":
            raise RuntimeError("crash")

    monkeypatch.setattr(fs, "FAULT_HOOK", boom)
    with pytest.raises(RuntimeError):
        apply(catalog)
    monkeypatch.setattr(fs, "FAULT_HOOK", None)
    report = apply(catalog)  # not "already running": the failed run let go
    assert len(report.deleted) == 2 and catalog.audit_verify().ok


def during_apply(monkeypatch: pytest.MonkeyPatch, point: str, action: Any) -> None:
    """Run ``action`` once, the first time apply reaches ``point`` (between its transactions)."""
    done: list[bool] = []

    def hook(reached: str) -> None:
        if reached == point and not done:
            done.append(True)
            action()

    monkeypatch.setattr(fs, "FAULT_HOOK", hook)


@pytest.mark.parametrize("protect", ["hold-prefix", "hold-path", "retain-extend", "floor"])
def test_protection_placed_while_apply_runs_is_honoured(
    catalog: Catalog, writer: AtomicWriter, settings: Settings, monkeypatch: pytest.MonkeyPatch, protect: str
) -> None:  # fmt: skip
    """Case 2: a hold placed while apply was deleting was ignored for 1,000 artifacts."""
    zero_days(catalog)
    first = expired_health(writer, 1, "a")[0]
    rest = expired_health(writer, 4, "p2")

    def protect_the_rest() -> None:
        with Catalog(settings) as other:  # another person, another connection
            if protect == "hold-prefix":
                add_hold(other, prefix="p2*", reason="SEC inquiry")
            elif protect == "hold-path":
                for record in rest:
                    add_hold(other, path=record.path, reason="SEC inquiry")
            elif protect == "retain-extend":
                extend(other, rest, datetime.now(timezone.utc) + timedelta(days=30), "litigation")
            else:
                set_floor(other, "health", 3650, "record-keeping rule")

    during_apply(monkeypatch, "intent", protect_the_rest)
    report = apply(catalog)
    assert report.deleted == [first.path] and report.protected == 4
    assert all((catalog.base_dir / r.path).exists() for r in rest)
    assert [e.artifact_id for e in catalog.events() if e.action == "delete"] == [first.id]
    assert catalog.audit_verify().ok


def test_verify_during_apply_records_no_false_loss(
    catalog: Catalog, writer: AtomicWriter, settings: Settings, monkeypatch: pytest.MonkeyPatch, run_cli
) -> None:  # fmt: skip
    """Case 3: verify 0.3 s into apply reported files "gone" and appended verify_failure after their deletes."""
    zero_days(catalog)
    records = expired_health(writer, 3)
    seen: list[Any] = []

    def verify_now() -> None:  # the first file is unlinked; its delete event is not committed yet
        with Catalog(settings) as other:
            seen.append(verify(other))

    during_apply(monkeypatch, "unlinked", verify_now)
    apply(catalog)
    (report,) = seen
    assert report.clean and report.missing == [] and report.checked == 3
    assert [s["path"] for s in report.skipped] == [records[0].path]
    assert "retention is deleting or archiving it" in report.skipped[0]["reason"]
    assert not [e for e in catalog.events() if e.action == "verify_failure"]
    status = json.loads(run_cli("status", "--format", "json").stdout)
    assert status["last_verify"]["missing"] == 0 and "found failures" not in " ".join(status["attention"])


def test_verify_after_a_deletion_it_read_before_skips_it(
    catalog: Catalog, writer: AtomicWriter, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    """The other order: verify read the rows, then retention deleted one and committed, then verify hashed it."""
    zero_days(catalog)
    records = expired_health(writer, 2)
    import catalog.ops.verify as verify_module

    real_hash = verify_module._hash

    def hash_after_apply(*args: Any) -> Any:
        if not getattr(hash_after_apply, "done", False):
            hash_after_apply.done = True  # type: ignore[attr-defined]
            with Catalog(settings) as other:
                zero_days(other)
                apply(other)
        return real_hash(*args)

    monkeypatch.setattr(verify_module, "_hash", hash_after_apply)
    report = verify(catalog)
    assert report.clean and {s["path"] for s in report.skipped} == {r.path for r in records}
    assert all("deleted at" in s["reason"] for s in report.skipped)


def test_an_exclusive_lock_is_refused_while_held(catalog: Catalog, settings: Settings) -> None:
    quick = replace(settings, sqlite_busy_timeout_ms=100)
    with catalog.db.exclusive("lifecycle", "retention apply"), Catalog(quick) as other:
        with pytest.raises(CatalogDatabaseError, match="retention apply is already running on catalog"):
            with other.db.exclusive("lifecycle", "retention apply"):
                pass
    with Catalog(quick) as other, other.db.exclusive("lifecycle", "retention apply"):
        pass  # free again once released
