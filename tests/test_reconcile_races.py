"""Reconcile while others work never calls a healthy file missing (issue 13, case 15)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from catalog.core.names import host_name, temp_name
from catalog.core.records import PublishedFile
from catalog.core.settings import RetentionPolicy
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops import reconcile as reconcile_module
from catalog.ops import repair as repair_module
from catalog.ops.reconcile import reconcile
from catalog.ops.retention import apply, lifecycle_change
from catalog.ops.write import record

from helpers import all_records, catalog_env


class VanishingStat:
    """A directory entry whose file is gone by the time it is stat'ed (a writer's temp file, renamed away)."""

    def __init__(self, entry: Any) -> None:
        self._entry = entry
        self.name = entry.name

    def is_file(self, follow_symlinks: bool = True) -> bool:
        return True

    def is_dir(self, follow_symlinks: bool = True) -> bool:
        return False

    def is_symlink(self) -> bool:
        return False

    def stat(self, follow_symlinks: bool = True) -> os.stat_result:
        raise FileNotFoundError(2, "No such file or directory", self.name)


def test_an_entry_that_vanishes_between_listing_and_stat_skips_itself_only(
    catalog: Catalog, writer: AtomicWriter, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    """It used to abandon the rest of its folder: every healthy file after it was called missing."""
    records = [writer.write_json("ledger", f"p{n}", {"n": n}) for n in range(6)]
    real_scandir = os.scandir

    class Listing:
        def __init__(self, path: Any) -> None:
            self._it = real_scandir(path)

        def __enter__(self) -> Listing:
            return self

        def __exit__(self, *exc: object) -> None:
            self._it.close()

        def __iter__(self) -> Any:
            entries = sorted(self._it, key=lambda e: e.name)
            if entries:
                yield VanishingStat(entries[0])  # first, a temp file that is renamed away
            yield from entries

    monkeypatch.setattr(reconcile_module.os, "scandir", Listing)
    report = reconcile(catalog, grace=0)
    monkeypatch.undo()
    assert not report.drift, [(f.cls, f.path) for f in report.drift]
    assert report.files == len(records)


def test_retention_between_the_rows_and_the_listing_is_no_loss(
    catalog: Catalog, writer: AtomicWriter, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    with freeze_time(datetime(2024, 3, 1, tzinfo=timezone.utc)):
        doomed = [writer.write_json("health", f"h{n}", {"n": n}) for n in range(3)]
    keep = writer.write_json("health", "fresh", {"n": 9})
    real_rows = reconcile_module.Reconciler._light_rows

    def rows_then_retention(self: Any, folder: str) -> Any:
        rows = real_rows(self, folder)
        if folder == "health":
            with Catalog(settings) as other:
                other.settings = replace(other.settings, retention=dict(other.settings.retention,
                                                                        health=RetentionPolicy(0, "delete")))
                apply(other)  # deletes the old files after reconcile read their rows
        return rows

    monkeypatch.setattr(reconcile_module.Reconciler, "_light_rows", rows_then_retention)
    report = reconcile(catalog, grace=0, fix=True)
    monkeypatch.undo()
    assert not report.drift, [(f.cls, f.path) for f in report.drift]
    assert not [e for e in catalog.events() if e.action == "missing"]
    assert {r.path for r in doomed} and (catalog.base_dir / keep.path).exists() and catalog.audit_verify().ok


def test_a_row_that_moves_between_the_folder_s_two_reads_is_left_to_the_next_run(
    catalog: Catalog, writer: AtomicWriter, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    """The folder's light rows say the file has a row; by the time its full rows are read, the row has moved
    (retention archived it, a repair moved it): no traceback, and the file is neither adopted nor judged."""
    moved = writer.write_json("health", "moved", {"n": 1})
    with open(catalog.base_dir / moved.path, "ab") as handle:  # odd in a quick run: its size differs from the row's
        os.chmod(handle.fileno(), 0o644)
        handle.write(b" ")
    real_full = reconcile_module.Reconciler._full_rows
    monkeypatch.setattr(reconcile_module.Reconciler, "_full_rows",
                        lambda self, folder: {p: r for p, r in real_full(self, folder).items() if p != moved.path})
    report = reconcile(catalog, grace=0, fix=True)
    monkeypatch.undo()
    assert [(f.cls, f.path) for f in report.drift if f.path == moved.path] == []
    assert [r.path for r in all_records(catalog)] == [moved.path]  # nothing adopted beside it
    assert reconcile(catalog, grace=0).drift[0].cls == "modified"  # the next run judges it as it is



def test_retention_between_the_walk_and_the_fix_leaves_its_change_alone(
    catalog: Catalog, writer: AtomicWriter, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    """The walk found an active row without its file; retention changed the row before the fix came to it. The
    fix marked it missing over retention's change (a second 'missing', or 'missing' over 'deleted')."""
    with freeze_time(datetime(2024, 3, 1, tzinfo=timezone.utc)):
        gone = writer.write_json("health", "gone", {"n": 1})
    (catalog.base_dir / gone.path).unlink()
    real_settle = repair_module.Repairer.settle

    def retention_then_settle(self: Any) -> None:
        with Catalog(settings) as other:
            other.settings = replace(other.settings, retention=dict(other.settings.retention,
                                                                    health=RetentionPolicy(0, "delete")))
            apply(other)  # finds the file gone: marks the row missing itself
        real_settle(self)

    monkeypatch.setattr(repair_module.Repairer, "settle", retention_then_settle)
    report = reconcile(catalog, grace=0, fix=True)
    monkeypatch.undo()
    assert not report.drift, [(f.cls, f.path) for f in report.drift]
    assert [(e.action, e.details.get("by")) for e in catalog.events() if e.artifact_id == gone.id][1:] == [("missing", None)]
    assert catalog.audit_verify().ok


def test_a_delete_committed_while_reconcile_asks_about_it_is_still_seen(
    catalog: Catalog, writer: AtomicWriter, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    """lifecycle_change read the row, then the open intents: a delete committed between the two reads hid both
    (the row still active, the intent closed), and reconcile called retention's work a loss."""
    with freeze_time(datetime(2024, 3, 1, tzinfo=timezone.utc)):
        record = writer.write_json("health", "doomed", {"n": 1})  # long expired
    with catalog.change() as tx:
        seq = tx.events.append("retention_intent", artifact_id=record.id, path=record.path,
                               details={"op": "delete", "target": None, "reason": "expired"})  # fmt: skip
    (catalog.base_dir / record.path).unlink()
    real_read, reads = catalog.db.read, []

    @contextmanager
    def read_then_delete() -> Iterator[Any]:
        with real_read() as conn:
            yield conn
        reads.append(1)
        if len(reads) == 1:  # retention commits its delete right after reconcile's first read
            catalog.change_status(record.id, action="delete", status="deleted", details={"reason": "expired", "intent": seq})

    monkeypatch.setattr(catalog.db, "read", read_then_delete)
    assert lifecycle_change(catalog, record.id, record.path) is not None
    monkeypatch.undo()
    assert catalog.find_id(record.id).status == "deleted" and catalog.audit_verify().ok

WRITER = """
import sys
from catalog.cryptorun.writer import AtomicWriter
with AtomicWriter() as writer:
    for n in range(int(sys.argv[1])):
        writer.write_json("ledger", f"w{n}", {"n": n})
"""


def test_reconcile_beside_a_live_writer_finds_nothing_missing(
    catalog: Catalog, writer: AtomicWriter, base_dir: Path, catalog_url: str | None
) -> None:  # fmt: skip
    """3,000 healthy files and one writer: plain reconcile said "missing: 2,752"."""
    for n in range(200):
        writer.write_json("ledger", f"old{n}", {"n": n})
    proc = subprocess.Popen([sys.executable, "-c", WRITER, "300"], env=catalog_env(base_dir, catalog_url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    runs = 0
    while proc.poll() is None or runs == 0:
        report = reconcile(catalog)  # the default grace: a live writer's newest files are in flight
        assert not [f for f in report.findings if f.cls in ("missing", "moved", "modified")], report.findings
        runs += 1
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert not reconcile(catalog, deep=True, grace=0).drift and runs >= 1


def test_a_live_writer_s_temp_file_is_never_removed_whatever_its_age_and_the_grace(catalog: Catalog, base_dir: Path) -> None:
    """``--fix --grace 0`` removed a live writer's temp file ("which is gone"): its put then failed."""
    (base_dir / "ledger").mkdir(exist_ok=True)
    done = subprocess.Popen([sys.executable, "-c", ""])
    done.wait()  # a writer of this host that is gone
    temps = {
        "live": base_dir / "ledger" / temp_name("20240101-000000-live-ledger.parquet", os.getpid()),
        "dead": base_dir / "ledger" / temp_name("20240101-000000-dead-ledger.parquet", done.pid),
        "reused": base_dir / "ledger" / temp_name("20240101-000000-reused-ledger.parquet", os.getpid()),
        "elsewhere": base_dir / "ledger" / f".~20240101-000000-far-ledger.parquet~elsewhere.invalid~{os.getpid()}~ab12.tmp",
    }
    for name, path in temps.items():
        path.write_bytes(b"partial")
        if name != "live":  # the live one was just written; the others years before any grace, and before this
            os.utime(path, (1_600_000_000, 1_600_000_000))  # process started: "reused" is a dead writer's reused PID
    time.sleep(0.01)  # every file older than a grace of 0
    for grace in (300, 0):
        report = reconcile(catalog, fix=True, grace=grace)
        found = {f.path: f for f in report.findings}
        live = found[temps["live"].relative_to(base_dir).as_posix()]
        assert (live.cls, live.fixed) == ("in_flight", None) and "gone" not in live.reason, live
        assert f"{host_name()}:{os.getpid()}" in live.reason and temps["live"].exists()
        if grace == 300:  # a dead writer's temp (its PID gone, or taken by a process started after the file was
            # written), and another host's older than the grace, are removed as before
            assert [(found[p.relative_to(base_dir).as_posix()].cls, found[p.relative_to(base_dir).as_posix()].fixed)
                    for p in (temps["dead"], temps["reused"], temps["elsewhere"])] == [("stale_temp", "removed")] * 3
    assert not temps["dead"].exists() and not temps["reused"].exists() and not temps["elsewhere"].exists()
    assert reconcile(catalog, grace=0).drift == []  # a live writer's temp is not drift


@pytest.mark.parametrize("artifact_type,exts", [("ledger", ("json",)), ("explain", ("json", "csv"))], ids=["file", "pair"])
def test_a_file_its_writer_records_between_the_walk_and_the_fix_is_no_adoption(
    catalog: Catalog, base_dir: Path, monkeypatch: pytest.MonkeyPatch, artifact_type: str, exts: tuple[str, ...]
) -> None:  # fmt: skip
    """``--fix --grace 0`` said "orphan … adopted" (exit 1, counts {"orphan": 1}) of a file whose writer's own
    ``write`` event recorded it after the walk: no ``adopt`` event was made, so nothing drifted."""
    (base_dir / artifact_type).mkdir(exist_ok=True)
    late = []
    for ext in exts:
        path, data = f"{artifact_type}/20240101-000000-late-{artifact_type}.{ext}", f"late {ext}\n".encode()
        (base_dir / path).write_bytes(data)
        os.utime(base_dir / path, (1_600_000_000, 1_600_000_000))  # older than any grace: a rowless complete file
        late.append(PublishedFile(path=path, type=artifact_type, prefix="late", ext=ext, size=len(data),
                                  created_at=datetime(2024, 1, 1, tzinfo=timezone.utc),
                                  sha256=hashlib.sha256(data).hexdigest(), pair_id="ab" * 16 if len(exts) > 1 else None))
    real_settle = reconcile_module.Reconciler.settle

    def its_writer_commits_first(self: Any) -> None:
        assert sorted(o.entry.path for o in self.orphans) == sorted(f.path for f in late)  # the walk found them rowless
        record(catalog, late)  # the writer's own commit, after the listing, before the fix
        real_settle(self)

    monkeypatch.setattr(reconcile_module.Reconciler, "settle", its_writer_commits_first)
    report = reconcile(catalog, fix=True, grace=0)
    monkeypatch.undo()
    assert report.findings == [] and not report.drift  # exit 0
    events = list(catalog.events())
    assert sorted((e.action, e.path) for e in events if e.path) == sorted(("write", f.path) for f in late)
    assert [e.details["counts"] for e in events if e.action == "reconcile_run"] == [{}]
    assert catalog.audit_verify().ok and reconcile(catalog, deep=True, grace=0).findings == []
