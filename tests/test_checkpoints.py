"""A checkpoint event is committed only after its file is durable (issue 13, case 11), and an automatic
checkpoint that cannot be written never costs the run it follows its result."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

import catalog.core.fs as fs
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter


def fail_at(point: str):  # type: ignore[no-untyped-def]
    def hook(reached: str) -> None:
        if reached == point:
            raise OSError(errno.EROFS, "Read-only file system")

    return hook


def checkpoint_events(catalog: Catalog) -> list:  # type: ignore[type-arg]
    return [e for e in catalog.events() if e.action == "checkpoint"]


@pytest.mark.parametrize("point", ["temp_written", "published"], ids=["before-the-file", "after-the-file"])
def test_a_checkpoint_that_cannot_be_written_records_nothing(
    catalog: Catalog, run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:  # fmt: skip
    out = tmp_path / "worm"
    out.mkdir()
    before = [e.seq for e in catalog.events()]
    monkeypatch.setattr(fs, "FAULT_HOOK", fail_at(point))
    result = run_cli("audit", "checkpoint", "-o", str(out / "cp.txt"))
    monkeypatch.setattr(fs, "FAULT_HOOK", None)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == ["Error: Read-only file system"]
    assert [e.seq for e in catalog.events()] == before  # no event claims a file that is not there
    assert list(out.iterdir()) == []  # and no file claims an event that is not in the log
    assert catalog.audit_verify().ok


def test_a_written_checkpoint_covers_its_own_event(catalog: Catalog, run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from catalog.core import tlog, tree

    target = tmp_path / "cp.txt"
    assert run_cli("audit", "checkpoint", "-o", str(target)).exit_code == 0
    written = tlog.parse_checkpoint(target.read_bytes())
    (event,) = checkpoint_events(catalog)
    assert written.size == event.seq and event.details["file"] == str(target)
    with catalog.read() as conn:
        assert written.root == tree.root_at(conn, event.seq)
    assert oct(target.stat().st_mode & 0o777) == "0o444"
    assert run_cli("audit", "verify", "--checkpoint", str(target)).exit_code == 0


@pytest.mark.parametrize("verb", ["verify", "retention"])
def test_an_automatic_checkpoint_that_fails_keeps_the_runs_result(
    catalog: Catalog, writer: AtomicWriter, run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verb: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    writer.write_json("ledger", "p", {"n": 1})
    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("CRYPTORUN_CHECKPOINT_DIR", str(folder))
    monkeypatch.setattr(fs, "FAULT_HOOK", fail_at("temp_written"))
    args = ["verify"] if verb == "verify" else ["retention", "apply", "--yes"]
    result = run_cli(*args)
    monkeypatch.setattr(fs, "FAULT_HOOK", None)
    assert result.exit_code == 0, result.stderr
    said = "Verified: all 1 files checked match" if verb == "verify" else "Retention applied: 0 deleted"
    assert said in result.stdout  # the run's own result line is there
    assert "the automatic checkpoint into" in caplog.text and "Read-only file system" in caplog.text
    actions = [e.action for e in catalog.events()]
    assert actions[-1] == ("verify_run" if verb == "verify" else "retention_run") and "checkpoint" not in actions
    assert not folder.exists() or list(folder.iterdir()) == []


def test_the_newest_checkpoint_of_the_folder_is_found_reading_one_file(catalog: Catalog, writer: AtomicWriter,
                                                                       tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    import dataclasses

    from catalog.ops import checkpoints

    folder = tmp_path / "checkpoints"
    catalog.settings = dataclasses.replace(catalog.settings, checkpoint_dir=folder)
    assert checkpoints.newest_tree_checkpoint(catalog) is None
    taken = []
    for n in range(12):  # sizes 2..: past 10 events, name order and digit order still agree (zero-padded)
        writer.write_json("config", f"c{n}", {"n": n})
        taken.append(checkpoints.take_checkpoint(catalog)[0])
    read: list[Path] = []
    real = checkpoints.read_checkpoint
    monkeypatch.setattr(checkpoints, "read_checkpoint", lambda path: read.append(path) or real(path))
    newest = checkpoints.newest_tree_checkpoint(catalog)
    assert newest is not None and newest.size == max(t.size for t in taken) and newest.root == taken[-1].root
    assert len(read) == 1, read
    # a file whose name claims more events than it holds is read, and the true newest still wins
    (folder / "checkpoint-999999999999-20991231T000000Z.txt").write_bytes(read[0].read_bytes())
    again = checkpoints.newest_tree_checkpoint(catalog)
    assert again is not None and again.size == newest.size
