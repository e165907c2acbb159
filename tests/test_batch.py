"""A scanner cycle as one commit (issue 17): ``with writer.batch() as b:``.

Every file of a batch is published durably, each folder is fsynced once, and
all rows and events are committed in one unit of work: a reader sees all of a
batch or none of it; after a failure or a crash, what was published is adopted
by reconcile like any single write's file.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import event, func, select
from test_audit import walk_chain_by_hand

import catalog.core.unit_of_work as uow
from catalog.core import safe_open
from catalog.core.errors import CollisionError, CommitError, Remedy, StoreError, ValidationError
from catalog.core.names import parse_name, parse_temp_name
from catalog.core.schema import ARTIFACTS
from catalog.core.store import Catalog
from catalog.cryptorun.demo import make_health, make_portfolio, make_report, make_trades, run_demo
from catalog.cryptorun.writer import AtomicBatch, AtomicWriter
from catalog.ops.reconcile import reconcile
from catalog.ops.write import Queued, Writer

from helpers import all_records, catalog_env, store_files, write_events

FROZEN = "2024-02-29 12:00:00"
CYCLE_FOLDERS = {"explain": 2, "ledger": 2, "health": 2, "config": 1}


def cycle(b: AtomicBatch, prefix: str = "c") -> list[Queued]:
    """The seven artifacts of a scanner cycle, through a batch: the handles in the order written."""
    import random

    rng = random.Random(1)
    report = make_report(5, seed=1)
    pair = b.write_explain_report(report, f"{prefix}.scan")
    report = report.with_timestamp(pair[0].name.created_at)
    metrics, spans = make_health(report, rng)
    return [
        *pair,
        b.write_portfolio(f"{prefix}.portfolio", make_portfolio(report, rng)),
        b.write_executions(f"{prefix}.executions", make_trades(report, rng, 20)),
        b.write_health_metrics(f"{prefix}.metrics", metrics),
        b.write_traces(f"{prefix}.traces", spans),
        b.snapshot_config(f"{prefix}.active"),
    ]


def write_commits(catalog: Catalog) -> list[int]:
    """A list that counts the catalog's write transactions committed from now on (one 1 each)."""
    commits: list[int] = []
    event.listen(catalog.db.engine, "commit",
                 lambda conn: commits.append(1) if conn.get_execution_options().get("catalog_write") else None)  # fmt: skip
    return commits


def nothing_left(catalog: Catalog, base_dir: Path, events_before: int) -> None:
    """No file (not even a temp), no row, no new event."""
    assert store_files(base_dir) == [] and all_records(catalog) == []
    assert sum(1 for _ in catalog.events()) == events_before


# -- one commit ------------------------------------------------------------------------------------


@freeze_time(FROZEN)
def test_a_cycle_is_one_commit_with_every_row_and_event(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    commits = write_commits(catalog)
    with writer.batch() as b:
        queued = cycle(b)
        staged = store_files(base_dir)
        assert len(staged) == 7 and all(parse_temp_name(Path(p).name) for p in staged)  # nothing under a final name yet
        assert all_records(catalog) == [] and write_events(catalog) == []
        with pytest.raises(StoreError, match="has no record: its batch has not committed"):
            _ = queued[0].record
    assert commits == [1]  # the whole cycle in one unit of work
    assert [q.record for q in queued] == b.records and len(b.records) == 7
    assert [r.path for r in b.records] == [q.path for q in queued]
    assert store_files(base_dir) == sorted(r.path for r in b.records)  # no temp left
    assert Counter(r.type for r in b.records) == CYCLE_FOLDERS
    explain_json, explain_csv = b.records[:2]
    assert explain_json.pair_id == explain_csv.pair_id is not None and b.records[2].pair_id is None
    events = write_events(catalog)
    assert [e.path for e in events] == [r.path for r in b.records]
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + 7))  # together in the chain
    for record in b.records:
        assert stat.S_IMODE(os.stat(base_dir / record.path).st_mode) == 0o444
    assert catalog.audit_verify().ok and not reconcile(catalog, deep=True, grace=0).drift


def test_demo_writes_its_cycle_as_one_commit(catalog: Catalog) -> None:
    commits = write_commits(catalog)
    records = run_demo(catalog, assets=5, seed=3)
    assert commits == [1] and len(records) == 7
    assert [e.path for e in write_events(catalog)] == [r.path for r in records]


def test_a_reader_never_sees_part_of_a_batch(writer: AtomicWriter, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """By construction: once the batch's rows are inserted, another connection still sees none of them."""
    seen: list[int] = []
    real_record_many = uow.Artifacts.record_many

    def record_and_look(self: uow.Artifacts, items, actors=None):  # type: ignore[no-untyped-def]
        done = real_record_many(self, items, actors)
        with catalog.db.read() as conn:  # another connection: only committed rows
            seen.append(conn.execute(select(func.count()).select_from(ARTIFACTS)).scalar_one())
        return done

    monkeypatch.setattr(uow.Artifacts, "record_many", record_and_look)
    with writer.batch() as b:
        cycle(b)
    assert seen == [0] and len(all_records(catalog)) == 7


def test_a_polling_reader_sees_whole_batches_only(writer: AtomicWriter, catalog: Catalog, settings) -> None:  # type: ignore[no-untyped-def]
    """And in motion: a reader with its own catalog polls the row count while batch after batch commits."""
    counts: set[int] = set()
    done = threading.Event()

    def poll() -> None:
        with Catalog(settings) as reader:
            while not done.is_set():
                with reader.db.read() as conn:
                    counts.add(conn.execute(select(func.count()).select_from(ARTIFACTS)).scalar_one())

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        for n in range(12):
            with writer.batch() as b:
                for k in range(5):
                    b.write_json(("ledger", "health", "config")[k % 3], f"poll{n}-{k}", {"n": n, "k": k})
    finally:
        done.set()
        thread.join()
    assert counts <= {5 * n for n in range(13)}, sorted(counts)
    assert len(all_records(catalog)) == 60


# -- each folder fsynced once ----------------------------------------------------------------------


@pytest.fixture
def folder_fsyncs(base_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """fsync(2) calls on folders, by folder relative to the store (SQLite's own fsyncs are C calls: not seen)."""
    seen: Counter[str] = Counter()
    real = os.fsync

    def spy(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            seen[os.path.relpath(os.readlink(f"/proc/self/fd/{fd}"), base_dir)] += 1
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return seen


def test_each_folder_is_fsynced_once_per_batch(writer: AtomicWriter, base_dir: Path, folder_fsyncs: Counter[str]) -> None:
    for folder in CYCLE_FOLDERS:  # made already, and durable in the base as this process knows
        os.close(safe_open.open_folder(base_dir, folder, create=True))
    folder_fsyncs.clear()  # only the new names need their folder fsynced
    with writer.batch() as b:
        cycle(b)
    assert folder_fsyncs == dict.fromkeys(CYCLE_FOLDERS, 1)


def test_a_pair_fsyncs_its_folder_once(writer: AtomicWriter, base_dir: Path, folder_fsyncs: Counter[str]) -> None:
    os.close(safe_open.open_folder(base_dir, "explain", create=True))  # made, and durable in the base
    folder_fsyncs.clear()
    writer.write_explain_report(make_report(3, seed=1), "pair")
    assert folder_fsyncs == {"explain": 1}


def test_every_file_is_fsynced_before_any_is_linked(writer: AtomicWriter, base_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files' fsyncs run side by side on helper threads; each still lands before the links begin."""
    steps: list[tuple[str, str]] = []
    real_fsync, real_link = os.fsync, os.link

    def fsync(fd: int) -> None:
        real_fsync(fd)
        if stat.S_ISREG(os.fstat(fd).st_mode):
            steps.append(("fsync", parse_temp_name(os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))).final_name))  # type: ignore[union-attr]

    def link(src: str, dst: str, **kw: object) -> None:
        steps.append(("link", dst))
        real_link(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    with writer.batch() as b:
        queued = cycle(b)
    names = sorted(Path(q.path).name for q in queued)
    first_link = next(n for n, (what, _) in enumerate(steps) if what == "link")
    assert sorted(name for what, name in steps[:first_link] if what == "fsync") == names
    assert sorted(name for what, name in steps[first_link:]) == names and {w for w, _ in steps[first_link:]} == {"link"}


# -- what a batch returns, and what it refuses ----------------------------------------------------


def test_an_empty_batch_commits_nothing(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    events_before = sum(1 for _ in catalog.events())
    commits = write_commits(catalog)
    with writer.batch() as b:
        pass
    assert b.records == [] and commits == []
    nothing_left(catalog, base_dir, events_before)


def test_an_error_inside_the_block_publishes_and_records_nothing(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    events_before = sum(1 for _ in catalog.events())
    with pytest.raises(RuntimeError, match="the scanner failed"):
        with writer.batch() as b:
            queued = cycle(b)
            raise RuntimeError("the scanner failed")
    nothing_left(catalog, base_dir, events_before)  # the temp files are gone too
    assert b.records == []
    with pytest.raises(StoreError, match="has no record"):
        _ = queued[0].record
    writer.write_json("ledger", "after", {"ok": True})  # the writer works on


def test_a_refused_write_inside_the_block_ends_the_batch_with_nothing_written(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    events_before = sum(1 for _ in catalog.events())
    with pytest.raises(ValidationError, match="non-finite"):
        with writer.batch() as b:
            b.write_json("ledger", "fine", {"v": 1})
            b.write_json("ledger", "bad", {"v": float("nan")})
    nothing_left(catalog, base_dir, events_before)


@freeze_time(FROZEN)
def test_the_same_name_twice_in_a_batch_is_refused_before_it_is_written(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    events_before = sum(1 for _ in catalog.events())
    with pytest.raises(CollisionError, match="ledger/20240229-120000-p-ledger.json is already written in this batch"):
        with writer.batch() as b:
            b.write_json("ledger", "p", {"v": 1})
            b.write_json("ledger", "p", {"v": 2})
    nothing_left(catalog, base_dir, events_before)
    with writer.batch() as b:  # caught inside the block, the refusal costs only the refused write
        first = b.write_json("ledger", "p", {"v": 1})
        with pytest.raises(CollisionError):
            b.write_bytes("ledger", "p", b'{"v": 2}', "json")
        b.write_json("ledger", "q", {"v": 3})
    assert [r.path for r in b.records] == [first.path, "ledger/20240229-120000-q-ledger.json"]
    assert (base_dir / first.path).read_bytes() == b'{\n  "v": 1\n}\n'
    assert len(store_files(base_dir)) == 2


@freeze_time(FROZEN)
def test_a_name_already_taken_is_refused_at_the_call(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    taken = writer.write_json("health", "h", {"v": 0})
    with pytest.raises(CollisionError, match="already exists; nothing was overwritten"):
        with writer.batch() as b:
            b.write_json("ledger", "l", {"v": 1})
            b.write_json("health", "h", {"v": 2})
    assert store_files(base_dir) == [taken.path] and [r.path for r in all_records(catalog)] == [taken.path]


@freeze_time(FROZEN)
def test_a_name_only_the_catalog_holds_is_refused_when_the_block_ends(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    """A row keeps its path after its file is gone (deleted by retention, say): asked once for the batch, before any link."""
    gone = writer.write_json("health", "h", {"v": 0})
    (base_dir / gone.path).unlink()
    events_before = sum(1 for _ in catalog.events())
    with pytest.raises(CollisionError, match="health/20240229-120000-h-health.json already exists; nothing was overwritten"):
        with writer.batch() as b:
            b.write_json("ledger", "l", {"v": 1})
            b.write_json("health", "h", {"v": 2})  # not on disk: the call takes it
    assert store_files(base_dir) == [] and [r.path for r in all_records(catalog)] == [gone.path]
    assert sum(1 for _ in catalog.events()) == events_before


@freeze_time(FROZEN)
def test_a_name_taken_by_another_writer_before_the_link(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    """The race the hard link catches: the files linked before it are recorded, the rest never published."""
    with pytest.raises(CollisionError, match="already exists; nothing was overwritten; written and recorded before it: "
                                             "ledger/20240229-120000-a-ledger.json"):  # fmt: skip
        with writer.batch() as b:
            b.write_json("ledger", "a", {"v": 1})
            b.write_json("ledger", "b", {"v": 2})
            b.write_json("ledger", "c", {"v": 3})
            (base_dir / "ledger" / "20240229-120000-b-ledger.json").write_text("someone else's")
    assert (base_dir / "ledger" / "20240229-120000-b-ledger.json").read_text() == "someone else's"
    assert [r.path for r in all_records(catalog)] == ["ledger/20240229-120000-a-ledger.json"] == [r.path for r in b.records]
    assert store_files(base_dir) == ["ledger/20240229-120000-a-ledger.json", "ledger/20240229-120000-b-ledger.json"]


def test_batches_do_not_nest_and_the_writer_waits_for_its_batch(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    events_before = sum(1 for _ in catalog.events())
    with pytest.raises(StoreError, match="batches do not nest"):
        with writer.batch() as b:
            b.write_json("ledger", "outer", {"v": 1})
            with writer.batch():
                pass
    nothing_left(catalog, base_dir, events_before)
    with pytest.raises(StoreError, match="a batch is open on this writer: write through it"):
        with writer.batch() as b:
            writer.write_json("ledger", "beside", {"v": 1})
    nothing_left(catalog, base_dir, events_before)
    with pytest.raises(StoreError, match="used once"):
        with b:
            pass
    with pytest.raises(StoreError, match="inside its with block"):
        b.write_json("ledger", "late", {"v": 1})
    with pytest.raises(StoreError, match="inside its with block"):
        writer.batch().write_json("ledger", "unopened", {"v": 1})
    assert writer.write_json("ledger", "after", {"v": 2}).path.startswith("ledger/")


def test_a_stream_joins_a_batch_read_at_the_call(catalog: Catalog, base_dir: Path) -> None:
    """The generic writer batches too; a stream is copied to its temp file before the call returns."""
    with Writer(catalog=catalog).batch() as b:
        source = io.BytesIO(b'{"streamed": true}')
        streamed = b.write_stream("ledger", "s", source, "json")
        source.close()
        b.write_bytes("config", "c", b"opaque", "txt")
    assert (base_dir / streamed.record.path).read_bytes() == b'{"streamed": true}' and len(b.records) == 2


def test_a_failed_commit_names_every_published_file_and_reconcile_adopts_them(
    writer: AtomicWriter, catalog: Catalog, base_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    def broken_write():  # type: ignore[no-untyped-def]
        raise RuntimeError("connection lost")

    monkeypatch.setattr(catalog.db, "write", broken_write)
    with pytest.raises(CommitError, match="could not record them in the catalog \\(connection lost\\); "
                                          "all 7 files are complete and kept") as caught:  # fmt: skip
        with writer.batch() as b:
            queued = cycle(b)
    monkeypatch.undo()
    paths = [q.path for q in queued]
    assert list(caught.value.paths) == paths and caught.value.remedy is Remedy.ADOPT
    assert store_files(base_dir) == sorted(paths) and all_records(catalog) == []
    fixed = reconcile(catalog, deep=True, fix=True, grace=0)
    assert {f.path for f in fixed.findings} == set(paths)
    assert sorted(r.path for r in all_records(catalog)) == sorted(paths)
    assert not reconcile(catalog, deep=True, grace=0).drift and catalog.audit_verify().ok


# -- many processes writing batches at once ---------------------------------------------------------

BATCHER = """
import sys
from catalog.cryptorun.writer import AtomicWriter
worker = int(sys.argv[1])
with AtomicWriter() as writer:
    for n in range(8):
        with writer.batch() as b:
            for k in range(6):
                b.write_json(("ledger", "health", "config")[k % 3], f"w{worker}-n{n}-k{k}", {"worker": worker, "n": n})
"""


def test_four_processes_write_batches_at_once(catalog: Catalog, base_dir: Path, catalog_url) -> None:  # type: ignore[no-untyped-def]
    env = catalog_env(base_dir, catalog_url)
    procs = [subprocess.Popen([sys.executable, "-c", BATCHER, str(w)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for w in range(4)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    records = all_records(catalog)
    assert len(records) == 4 * 8 * 6 and sorted(r.path for r in records) == store_files(base_dir)  # nothing lost
    count, _ = walk_chain_by_hand(catalog)
    assert count == 1 + 4 * 8 * 6 and catalog.audit_verify().ok
    batches: dict[str, list[int]] = {}
    for e in write_events(catalog):
        batches.setdefault(parse_name(Path(e.path).name).prefix.rsplit("-k", 1)[0], []).append(e.seq)  # type: ignore[arg-type, union-attr]
    assert len(batches) == 32
    for seqs in batches.values():  # each batch's events are consecutive: one unit of work, never interleaved
        assert seqs == list(range(seqs[0], seqs[0] + 6)), seqs
