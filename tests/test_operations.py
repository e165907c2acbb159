"""Operations and faults: status, backup and restore, a full disk, a failing file, a locked catalog."""

from __future__ import annotations

import json
import os
import shutil
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time

from catalog.core.errors import StoreError
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.reconcile import reconcile

from helpers import BACKEND, all_records, catalog_env, run_python, store_files, write_events


def test_status_says_what_needs_a_person(writer: AtomicWriter, catalog: Catalog, base_dir: Path, run_cli) -> None:
    fresh = run_cli("status", "--format", "json")
    assert fresh.exit_code == 1 and "no verify run recorded" in json.loads(fresh.stdout)["attention"][0]
    writer.write_json("ledger", "p", {})
    assert run_cli("verify").exit_code == 0
    ok = run_cli("status")
    assert ok.exit_code == 0 and "Nothing needs a person." in ok.stdout
    assert max(map(len, ok.stdout.splitlines())) < 80, ok.stdout  # the chain head's hash once made a 113-column line
    head = json.loads(run_cli("status", "--format", "json").stdout)["chain_head"]["hash"]
    assert f"  hash:       {head}" in ok.stdout.splitlines() and "last_checkpoint:           none" in ok.stdout
    old = writer.write_json("health", "old", {})  # 14 days: past expiry 40 days on
    gone = writer.write_json("explain", "gone", {})
    (base_dir / gone.path).unlink()
    with freeze_time(datetime.now(timezone.utc) + timedelta(days=40)):
        reconcile(catalog, fix=True, grace=0)
        result = json.loads(run_cli("status", "--format", "json").stdout)
    assert result["needs_attention"] and result["past_expiry"] == 1 and result["findings_outstanding"] == 1
    assert any("past expiry" in a for a in result["attention"]) and any("missing" in a for a in result["attention"])
    assert old.path  # the old artifact is what is past expiry


@pytest.mark.skipif(BACKEND != "sqlite", reason="backup copies the embedded SQLite catalog")
def test_backup_and_the_restore_runbook(writer: AtomicWriter, catalog: Catalog, base_dir: Path, tmp_path: Path, run_cli, settings) -> None:  # type: ignore[no-untyped-def]
    writer.write_json("ledger", "before", {})
    checkpoint = tmp_path / "cp.json"
    assert run_cli("audit", "checkpoint", "-o", str(checkpoint)).exit_code == 0
    backup = tmp_path / "catalog-backup.sqlite"
    result = run_cli("backup", str(backup))
    assert result.exit_code == 0 and "chain head seq" in result.stdout
    after = writer.write_json("ledger", "after", {"written": "after the backup"})
    catalog.close()
    # disaster: the catalog is lost; restore the backup
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (base_dir / name).unlink(missing_ok=True)
    shutil.copy(backup, base_dir / "catalog.sqlite")
    fixed = run_cli("reconcile", "--deep", "--fix", "--grace", "0", "--format", "json")
    assert [(f["class"], f["path"]) for f in json.loads(fixed.stdout)["findings"]] == [("orphan", after.path)]
    assert run_cli("reconcile", "--deep").exit_code == 0
    verified = run_cli("audit", "verify", "--checkpoint", str(checkpoint))
    assert verified.exit_code == 0, verified.stdout
    assert sorted(r.path for r in all_records(Catalog(settings))) == store_files(base_dir)


def test_backup_refuses_bad_targets(catalog: Catalog, base_dir: Path, tmp_path: Path, run_cli) -> None:
    if BACKEND != "sqlite":
        result = run_cli("backup", str(tmp_path / "x"))
        assert result.exit_code == 2 and "pg_dump" in result.stderr
        return
    for target, message in ((base_dir / "b.sqlite", "inside the store"), (tmp_path / "no" / "b", "does not exist")):
        result = run_cli("backup", str(target))
        assert result.exit_code == 2 and message in result.stderr
    (tmp_path / "taken").write_text("x")
    assert "never overwrites" in run_cli("backup", str(tmp_path / "taken")).stderr


SQLITE_ONLY = pytest.mark.skipif(BACKEND != "sqlite", reason="backup copies the embedded SQLite catalog")


@SQLITE_ONLY
def test_backup_never_writes_through_a_link_planted_at_its_temp_name(writer: AtomicWriter, catalog: Catalog,
                                                                      tmp_path: Path, run_cli) -> None:  # fmt: skip
    """Issue 14, case 17: a link at `.OUT.tmp` to another store's catalog.sqlite: backup exited 0 and overwrote it."""
    import sqlite3

    writer.write_json("ledger", "p", {})
    other = tmp_path / "other-store" / "catalog.sqlite"
    other.parent.mkdir()
    victim = sqlite3.connect(other)
    victim.execute("CREATE TABLE precious (x)")
    victim.commit()
    victim.close()
    precious = other.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    for planted in (".catalog.sqlite.tmp", ".catalog.sqlite.tmp-journal"):
        (out / planted).symlink_to(other)
    result = run_cli("backup", str(out / "catalog.sqlite"))
    assert result.exit_code == 0, result.stderr
    assert other.read_bytes() == precious
    assert sorted(os.listdir(out)) == [".catalog.sqlite.tmp", ".catalog.sqlite.tmp-journal", "catalog.sqlite"]
    assert (out / "catalog.sqlite").read_bytes().startswith(b"SQLite format 3")


@SQLITE_ONLY
def test_backup_follows_the_umask_and_is_durable_before_its_event(catalog: Catalog, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Issue 14, case 10: the file was fsynced but not its folder before the event naming it committed."""
    from catalog.core import fs
    from catalog.ops.operations import backup

    steps: list[str] = []
    real_fsync_dir, real_change = fs.fsync_dir, catalog.change
    monkeypatch.setattr(fs, "fsync_dir", lambda folder: (steps.append(f"fsync {folder.name}"), real_fsync_dir(folder)))
    monkeypatch.setattr(catalog, "change", lambda *a, **k: (steps.append("commit"), real_change(*a, **k))[1])
    (tmp_path / "out").mkdir()
    old = os.umask(0o027)
    try:
        done = backup(catalog, tmp_path / "out" / "b.sqlite")
    finally:
        os.umask(old)
    assert steps == ["fsync out", "commit"]
    assert stat.S_IMODE(done.file.stat().st_mode) == 0o640


@SQLITE_ONLY
def test_the_loser_of_two_backups_to_one_file_is_told_so(writer: AtomicWriter, catalog: Catalog, tmp_path: Path,
                                                         run_cli, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Issue 14, case 10: the second backup replaced the first, or failed with an error blaming the live catalog."""
    import sqlite3

    writer.write_json("ledger", "p", {})
    out = tmp_path / "b.sqlite"
    real_connect = sqlite3.connect

    def connect(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(str(path)).name == out.name and Path(str(path)) != out and not out.exists():
            out.write_bytes(b"the other backup, finished first")
        return real_connect(path, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    events = len(list(catalog.events()))
    result = run_cli("backup", str(out))
    monkeypatch.undo()
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {out} already exists; nothing was overwritten"
    assert out.read_bytes() == b"the other backup, finished first"
    assert sorted(os.listdir(tmp_path)) == ["b.sqlite", "cwd", "store"]  # no temp left
    assert len(list(catalog.events())) == events  # no backup event for a file it did not write


def test_get_to_a_file_follows_the_umask_and_leaves_no_temp(writer: AtomicWriter, catalog: Catalog, tmp_path: Path,
                                                            run_cli) -> None:  # fmt: skip
    """The neighbour of issue 14, case 10: `get -o` wrote 0600 whatever the umask (a temp file renamed into place)."""
    record = writer.write_json("ledger", "p", {"qty": 1})
    out = tmp_path / "out"
    out.mkdir()
    old = os.umask(0o027)
    try:
        assert run_cli("get", record.path, "-o", str(out / "copy.json")).exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((out / "copy.json").stat().st_mode) == 0o640
    assert os.listdir(out) == ["copy.json"]


DISK_FULL = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # so a write past the limit fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
from catalog.core.errors import CatalogError
from catalog.cryptorun.writer import AtomicWriter
with AtomicWriter() as writer:
    try:
        writer.write_bytes("ledger", "huge", b'"' + b"x" * 3_000_000 + b'"', "json")
    except CatalogError as exc:
        print("ERROR", exc)
"""


def test_a_full_disk_is_a_clear_error_with_nothing_left_behind(catalog: Catalog, base_dir: Path, catalog_url) -> None:
    result = run_python(DISK_FULL, catalog_env(base_dir, catalog_url))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ERROR cannot write ledger/") and "File too large" in result.stdout
    assert store_files(base_dir) == [] and all_records(catalog) == [] and write_events(catalog) == []


def test_a_failing_file_object_leaves_no_partial_file(writer: AtomicWriter, catalog: Catalog, base_dir: Path, monkeypatch) -> None:
    import os

    real_fdopen = os.fdopen

    class Failing:
        def __init__(self, handle):  # type: ignore[no-untyped-def]
            self.handle = handle

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc):  # type: ignore[no-untyped-def]
            self.handle.close()

        def write(self, data: bytes) -> int:
            self.handle.write(data[: len(data) // 2])  # half the bytes reach the disk, then the device fails
            raise OSError(28, "No space left on device")

        def fileno(self) -> int:
            return self.handle.fileno()

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Failing(real_fdopen(fd, mode)))
    with pytest.raises(StoreError, match="No space left on device"):
        writer.write_json("ledger", "p", {"data": "y" * 10_000})
    monkeypatch.undo()
    assert store_files(base_dir) == [] and all_records(catalog) == [] and write_events(catalog) == []


@pytest.mark.parametrize("ahead, flagged", [(timedelta(days=365), True), (timedelta(minutes=2), False)],
                         ids=["a-year-ahead", "within-the-skew"])
def test_a_verify_dated_in_the_future_is_not_fresh(writer: AtomicWriter, catalog: Catalog, run_cli, ahead: timedelta,
                                                   flagged: bool) -> None:  # fmt: skip
    """Issue 13, case 10: `faketime '+365 days' catalog verify` made status say "Nothing needs a person"."""
    from catalog.ops.verify import verify

    writer.write_json("ledger", "p", {})
    with freeze_time(datetime.now(timezone.utc) + ahead):
        assert verify(catalog).clean
    result = run_cli("status", "--format", "json")
    attention = " ".join(json.loads(result.stdout)["attention"])
    assert (result.exit_code == 1) is flagged, attention
    assert ("in the future: a clock was wrong, so it does not count as recent" in attention) is flagged
    assert ("the audit log has events dated up to" in attention) is flagged
