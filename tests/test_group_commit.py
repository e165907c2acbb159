"""Group commit (#17): writers that wait for the audit chain are recorded together by whoever leads next.

The leader lock is held by the test to line writers up; then one of them
records them all in one unit of work, each with its own actor. A leader or a
requester that died at any step leaves nothing lost and nothing twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.core import group_commit
from catalog.core.errors import CommitError
from catalog.core.group_commit import CommitQueue, Request
from catalog.core.records import PublishedFile
from catalog.core.settings import Settings
from catalog.core.store import Catalog
from catalog.ops.reconcile import reconcile
from catalog.ops.write import Writer

from helpers import all_records


@pytest.fixture
def queue(catalog: Catalog) -> Iterator[CommitQueue]:
    found = CommitQueue.open(catalog)
    assert found is not None
    yield found
    if found.folder.is_dir():  # the queue lives in the temp folder, not in tmp_path (and a test may remove it)
        for entry in found.folder.iterdir():
            entry.unlink()
        found.folder.rmdir()


def _held(queue: CommitQueue) -> int:
    fd = queue.open_lock()
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _wait_for(predicate, what: str, seconds: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _queued(queue: CommitQueue) -> list[str]:
    return sorted(p.name for p in queue.folder.iterdir() if p.name.endswith(".req"))


def _publish(base: Path, name: str, data: bytes) -> PublishedFile:
    """A file complete under its final name, as step 3 of the write protocol leaves it, and its row-to-be."""
    from catalog.core.names import parse_name

    parsed = parse_name(name)
    assert parsed is not None
    (base / parsed.type / name).write_bytes(data)
    return PublishedFile(path=f"{parsed.type}/{name}", type=parsed.type, prefix=parsed.prefix, ext=parsed.ext,
                         created_at=parsed.created_at, size=len(data), sha256=hashlib.sha256(data).hexdigest())  # fmt: skip


def test_waiting_writers_are_recorded_in_one_commit_each_with_its_actor(
    catalog: Catalog, settings: Settings, queue: CommitQueue, caplog: pytest.LogCaptureFixture
) -> None:  # fmt: skip
    held = _held(queue)
    results: dict[int, object] = {}
    writers = [Writer(catalog=Catalog(settings), actor=f"cron-{n}") for n in range(4)]

    def write(n: int) -> None:
        try:
            results[n] = writers[n].write_json("ledger", f"w{n}", {"n": n})
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[n] = exc

    caplog.set_level(logging.DEBUG, logger="catalog.core.group_commit")
    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        _wait_for(lambda: len(_queued(queue)) == 4, "four queued requests")
        assert all_records(catalog) == []  # queued, not yet recorded
    finally:
        os.close(held)
        for thread in threads:
            thread.join(60)
        for w in writers:
            w.catalog.close()
    assert "group commit: 4 requests, 4 files" in caplog.text  # one leader recorded all four
    records = {r.path: r for r in all_records(catalog)}
    for n in range(4):
        got = results[n]
        assert getattr(got, "path", None) is not None, got
        assert records[got.path] == got  # type: ignore[attr-defined]  # the requester's record is the row
    actors = {e.path: e.actor for e in catalog.events() if e.action == "write"}
    for n in range(4):  # each row's event by its own writer, though one leader recorded them all in one statement
        assert actors[results[n].path].endswith(f"(claims cron-{n})"), actors  # type: ignore[attr-defined]
    assert catalog.audit_verify().ok
    assert sorted(p.name for p in queue.folder.iterdir()) == ["leader"]  # every request answered and collected


def test_a_group_of_requests_of_several_files_each_gets_its_own_records(catalog: Catalog) -> None:
    """One leader records requests of 2, 1 and 3 files in one statement per table: each request gets its files' rows,
    in its order, each event by its own writer."""
    names = iter(range(6))
    requests = [Request(f"t{n}", [_publish(catalog.base_dir, f"20260101-00000{next(names)}-r{n}-ledger.json", b"{}")
                                  for _ in range(count)], f"w{n}@host:{n}") for n, count in enumerate((2, 1, 3))]  # fmt: skip
    outcomes = group_commit.commit(catalog, requests)
    events = {e.path: e for e in catalog.events() if e.action == "write"}
    for request in requests:
        got = outcomes[request.token]
        assert [r.path for r in got] == [f.path for f in request.files]  # type: ignore[union-attr]
        assert all(events[r.path].actor == request.actor and events[r.path].artifact_id == r.id for r in got)  # type: ignore[union-attr]
    assert [e.path for e in events.values()] == [f.path for r in requests for f in r.files]  # seq order: request order
    assert catalog.audit_verify().ok


def test_a_request_whose_writer_died_is_recorded_by_the_next_leader(
    catalog: Catalog, writer, queue: CommitQueue  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    orphan = _publish(catalog.base_dir, "20260101-000000-orphan-ledger.json", b'{"a": 1}')
    queue.put(Request(None, [orphan], "gone@host:1"))
    record = writer.write_json("ledger", "next", {"b": 2})
    rows = {r.path: r for r in all_records(catalog)}
    assert set(rows) == {orphan.path, record.path}
    assert rows[orphan.path].sha256 == orphan.sha256
    assert any(e.actor == "gone@host:1" and e.path == orphan.path for e in catalog.events())
    assert reconcile(catalog, deep=True, grace=0).drift == []
    assert catalog.audit_verify().ok
    done = [p for p in queue.folder.iterdir() if p.name.endswith(".done")]
    assert len(done) == 1 and json.loads(done[0].read_text())["records"][0]["path"] == orphan.path


def test_a_group_of_only_requests_already_recorded_answers_them_and_records_nothing(catalog: Catalog, writer) -> None:  # type: ignore[no-untyped-def]
    """A leader that finds every claimed request already recorded (its predecessor died after committing) answers each
    with its rows and appends no event."""
    record = writer.write_json("ledger", "done", {"a": 1})
    item = PublishedFile(path=record.path, type="ledger", prefix=record.prefix, ext="json",
                         created_at=record.created_at, size=record.size, sha256=record.sha256)  # fmt: skip
    head = max(e.seq for e in catalog.events())
    outcomes = group_commit.commit(catalog, [Request("t1", [item], "gone@host:1", recovered=True)])
    assert outcomes == {"t1": [record]}
    assert max(e.seq for e in catalog.events()) == head and catalog.audit_verify().ok


def test_a_leader_that_died_after_committing_is_not_recorded_twice(
    catalog: Catalog, writer, queue: CommitQueue  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    item = _publish(catalog.base_dir, "20260101-000000-early-ledger.json", b'{"a": 1}')
    token = queue.put(Request(None, [item], "w@host:2"))
    claimed = queue.claim()  # the leader took it ...
    group_commit.commit(catalog, claimed)  # ... committed it, and died before answering
    assert len(all_records(catalog)) == 1
    writer.write_json("ledger", "later", {"b": 2})  # the next leader finds the row and answers with it
    assert len(all_records(catalog)) == 2
    answer = queue.answer_for(token)
    assert answer is not None and [r["path"] for r in answer["records"]] == [item.path], answer
    assert not list(queue.folder.glob("*.claimed"))
    assert catalog.audit_verify().ok


def test_a_leader_that_died_before_committing_leaves_its_claims_to_the_next(
    catalog: Catalog, writer, queue: CommitQueue  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    item = _publish(catalog.base_dir, "20260101-000000-claimed-ledger.json", b'{"a": 1}')
    token = queue.put(Request(None, [item], "w@host:3"))
    queue.claim()  # claimed, then the leader died: no row
    writer.write_json("ledger", "later", {"b": 2})
    assert {r.path for r in all_records(catalog)} >= {item.path}
    assert queue.answer_for(token) is not None
    assert catalog.audit_verify().ok


def test_a_bad_request_does_not_stop_the_group(catalog: Catalog, writer, queue: CommitQueue) -> None:  # type: ignore[no-untyped-def]
    """A request for a path another row holds fails alone; the writers grouped with it are recorded."""
    first = writer.write_json("ledger", "taken", {"a": 1})
    clash = PublishedFile(path=first.path, type="ledger", prefix="taken", ext="json", created_at=first.created_at,
                          size=1, sha256="0" * 64)  # fmt: skip
    bad = queue.put(Request(None, [clash], "w@host:4"))
    good = writer.write_json("ledger", "good", {"b": 2})
    assert {r.path for r in all_records(catalog)} == {first.path, good.path}
    answer = queue.answer_for(bad)
    assert answer is not None and answer["taken"] is True and "already has this path" in answer["error"]
    assert catalog.audit_verify().ok


@pytest.mark.parametrize("planted", ["garbage", "symlink", "other settings"])
def test_what_a_writer_did_not_queue_is_never_recorded(catalog: Catalog, writer, queue: CommitQueue, tmp_path: Path,
                                                        planted: str) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    item = _publish(catalog.base_dir, "20260101-000000-planted-ledger.json", b'{"a": 1}')
    body = json.dumps({"actor": "forged", "files": [group_commit._file_data(item)]})
    if planted == "garbage":
        (queue.folder / f"{queue.settings_key}.1-1-aa.req").write_text("{not json")
    elif planted == "symlink":
        (tmp_path / "elsewhere.json").write_text(body)
        (queue.folder / f"{queue.settings_key}.1-1-aa.req").symlink_to(tmp_path / "elsewhere.json")
    else:  # a request of a process with other settings waits for its own writer
        (queue.folder / f"{'f' * 16}.1-1-aa.req").write_text(body)
    record = writer.write_json("ledger", "honest", {"b": 2})
    assert [r.path for r in all_records(catalog)] == [record.path]
    assert not any(e.actor == "forged" for e in catalog.events())


@pytest.mark.parametrize("folder_state", ["open to others", "a symlink", "a file"])
def test_a_queue_folder_that_is_not_private_turns_grouping_off(catalog: Catalog, tmp_path: Path,
                                                              folder_state: str) -> None:  # fmt: skip
    found = CommitQueue.open(catalog)
    assert found is not None
    folder = found.folder
    os.rmdir(folder)
    try:
        if folder_state == "open to others":
            os.mkdir(folder)
            os.chmod(folder, 0o777)
        elif folder_state == "a symlink":
            (tmp_path / "there").mkdir(mode=0o700)
            folder.symlink_to(tmp_path / "there")
        else:
            folder.write_text("")
        assert CommitQueue.open(catalog) is None
        with Writer(catalog=Catalog(catalog.settings)) as w:  # a fresh handle: grouping off, records alone
            record = w.write_json("ledger", "alone", {"a": 1})
            w.catalog.close()
        assert [r.path for r in all_records(catalog)] == [record.path]
    finally:
        if folder.is_dir() and not folder.is_symlink():
            os.rmdir(folder)
        else:
            folder.unlink()


def test_no_grouping_when_writers_may_not_wait(settings: Settings, catalog: Catalog) -> None:
    from dataclasses import replace

    with Catalog(replace(settings, sqlite_busy_timeout_ms=0), check=False) as never_waits:
        assert CommitQueue.open(never_waits) is None


def test_a_writer_that_waits_too_long_withdraws_and_says_so(catalog: Catalog, settings: Settings,
                                                            queue: CommitQueue) -> None:  # fmt: skip
    from dataclasses import replace

    held = _held(queue)
    impatient = Catalog(replace(settings, sqlite_busy_timeout_ms=300))
    try:
        with Writer(catalog=impatient) as w, pytest.raises(CommitError) as caught:
            w.write_json("ledger", "late", {"a": 1})
    finally:
        os.close(held)
        impatient.close()
    assert "stayed locked by other writers" in str(caught.value)
    assert _queued(queue) == []  # withdrawn: no leader will record it behind the error's back
    assert all_records(catalog) == []
    reconcile(catalog, fix=True, grace=0)  # the published file is adopted, as after any failed commit
    assert [r.path for r in all_records(catalog)] == list(caught.value.paths)


@pytest.fixture
def shared_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /dev/shm (mode 1777, as on Linux), with TMPDIR unset: where the queue goes by default."""
    folder = tmp_path / "shm"
    folder.mkdir()
    folder.chmod(0o1777)
    monkeypatch.setattr(group_commit, "SHARED_MEMORY", str(folder))
    monkeypatch.delenv("TMPDIR")
    return folder


def test_the_queue_lives_in_shared_memory_unless_tmpdir_is_set(catalog: Catalog, settings: Settings,
                                                               shared_memory: Path) -> None:  # fmt: skip
    folder = group_commit.queue_folder(catalog.base_dir)
    assert folder.parent == shared_memory  # no inode on disk made and freed per queued request
    with Catalog(settings) as fresh, Writer(catalog=fresh) as w:
        queue = CommitQueue.open(fresh)
        assert queue is not None and queue.folder == folder
        held = _held(queue)
        done: list[object] = []
        thread = threading.Thread(target=lambda: done.append(w.write_json("ledger", "grouped", {"a": 1})))
        thread.start()
        try:
            _wait_for(lambda: len(_queued(queue)) == 1, "a request queued in shared memory")
        finally:
            os.close(held)
            thread.join(60)
    assert [getattr(r, "path", r) for r in done] == [r.path for r in all_records(catalog)]
    assert sorted(p.name for p in folder.iterdir()) == ["leader"]


@pytest.mark.parametrize("state", ["missing", "not sticky", "a file", "read-only"])
def test_without_usable_shared_memory_the_queue_lives_in_the_temp_folder(catalog: Catalog, shared_memory: Path,
                                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                         state: str) -> None:  # fmt: skip
    if state == "missing":
        shared_memory.rmdir()
    elif state == "not sticky":  # others could rename the queue away: not a place for it
        shared_memory.chmod(0o777)
    elif state == "a file":
        shared_memory.rmdir()
        shared_memory.write_text("")
    else:
        shared_memory.chmod(0o1555)
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False)  # root may write anywhere: pretend
    monkeypatch.setattr(group_commit.tempfile, "tempdir", str(tmp_path))
    assert group_commit.queue_folder(catalog.base_dir).parent == tmp_path


def test_tmpdir_chooses_the_queue_folder(catalog: Catalog, shared_memory: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    monkeypatch.setenv("TMPDIR", str(chosen))
    monkeypatch.setattr(group_commit.tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    assert group_commit.queue_folder(catalog.base_dir).parent == chosen


@pytest.mark.parametrize("when", ["between writes", "while a writer waits", "after its leader recorded it, unanswered"])
def test_a_queue_folder_removed_under_the_writers_leaves_nothing_unrecorded(catalog: Catalog, settings: Settings,
                                                                           queue: CommitQueue, when: str) -> None:  # fmt: skip
    """As a temp cleaner, an admin's ``rm -r`` or systemd-logind's RemoveIPC (a logged-out user's files in /dev/shm)."""
    import shutil

    done: list[object] = []
    with Writer(catalog=Catalog(settings)) as w:

        def write(name: str) -> None:
            try:
                done.append(w.write_json("ledger", name, {"n": name}))
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                done.append(exc)

        write("first")  # the writer's process knows its queue now
        if when == "between writes":
            shutil.rmtree(queue.folder)
            write("second")
        else:
            held = _held(queue)
            thread = threading.Thread(target=write, args=("second",))
            thread.start()
            try:
                _wait_for(lambda: len(_queued(queue)) == 1, "the request queued")
                if when != "while a writer waits":  # this test leads: records the request, then the folder goes
                    assert len(group_commit.commit(catalog, queue.claim())) == 1
                    assert len(all_records(catalog)) == 2
                shutil.rmtree(queue.folder)
            finally:
                os.close(held)
                thread.join(60)
        w.catalog.close()
    assert all(getattr(r, "path", None) for r in done), done
    assert sorted(r.path for r in all_records(catalog)) == sorted(r.path for r in done)  # type: ignore[attr-defined]
    assert reconcile(catalog, grace=0).drift == []
