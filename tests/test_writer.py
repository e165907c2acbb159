from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import warnings
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from freezegun import freeze_time

import catalog.core.fs as writer_module
from catalog.core.errors import CollisionError, CommitError, Remedy, StoreError, ValidationError
from catalog.core.names import parse_name
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter

from helpers import all_records, store_files, write_events

FROZEN = "2024-02-29 23:59:58.750"


def event_count(catalog: Catalog) -> int:
    return len(write_events(catalog))


@freeze_time(FROZEN)
def test_write_json_names_the_file_by_frozen_utc_time(writer: AtomicWriter, base_dir: Path) -> None:
    record = writer.write_json("explain", "momentum_scan", {"b": 1, "a": [1.5, None, True]})
    assert record.path == "explain/20240229-235958-momentum_scan-explain.json"
    assert record.created_at == datetime(2024, 2, 29, 23, 59, 58, tzinfo=timezone.utc)
    assert record.original_path == record.path and record.status == "active"
    data = (base_dir / record.path).read_bytes()
    assert data == b'{\n  "b": 1,\n  "a": [\n    1.5,\n    null,\n    true\n  ]\n}\n'
    assert record.size == len(data) and record.sha256 == hashlib.sha256(data).hexdigest()
    parsed = parse_name(Path(record.path).name)
    assert (parsed.type, parsed.prefix, parsed.created_at) == ("explain", "momentum_scan", record.created_at)
    assert record.retain_until == record.recorded_at + timedelta(days=30)


def test_published_files_are_read_only(writer: AtomicWriter, base_dir: Path) -> None:
    record = writer.write_json("ledger", "p", {"x": 1})
    assert stat.S_IMODE(os.stat(base_dir / record.path).st_mode) == 0o444


def test_json_formats(writer: AtomicWriter, base_dir: Path) -> None:
    when = datetime(2024, 1, 15, 5, 30, tzinfo=timezone(timedelta(hours=-5)))
    record = writer.write_json("health", "h", {"at": when, "n": Decimal("1.25"), "day": when.date(), "t": "é"})
    assert json.loads((base_dir / record.path).read_text("utf-8")) == {
        "at": "2024-01-15T10:30:00Z", "n": 1.25, "day": "2024-01-15", "t": "é",
    }  # fmt: skip


def test_csv_precision_booleans_and_quoting(writer: AtomicWriter, base_dir: Path) -> None:
    rows = [["symbol", "score", "ok", "note", "n"], ["BTC-USD", 85.45, True, 'says "hi", twice', 3], ["X", 1, False, None, -2]]
    record = writer.write_csv("ledger", "results", rows)
    assert (base_dir / record.path).read_text() == (
        'symbol,score,ok,note,n\nBTC-USD,85.450000,true,"says ""hi"", twice",3\nX,1,false,,-2\n'
    )


def test_csv_precision_comes_from_settings(catalog: Catalog, base_dir: Path) -> None:
    from dataclasses import replace

    catalog.settings = replace(catalog.settings, csv_precision=2)
    record = AtomicWriter(catalog=catalog).write_csv("ledger", "p2", [["v"], [0.5], [1 / 3], [2]])
    # at least 2 decimals, and every digit a float needs to read back the same (never rounded to 0.33)
    assert (base_dir / record.path).read_text() == "v\n0.50\n0.3333333333333333\n2\n"


BAD_DATA = {
    "nan": ({"price": float("nan")}, "non-finite number (nan) at $.price"),
    "inf": ({"p": [1, float("inf")]}, "non-finite number (inf) at $.p[1]"),
    "decimal-nan": ({"p": Decimal("NaN")}, "non-finite"),
    "object": ({"p": object()}, "type object at $.p"),
    "bytes": ({"p": b"x"}, "type bytes at $.p"),
    "naive-time": ({"at": datetime(2024, 1, 1)}, "no time zone"),
    "tuple-key": ({(1, 2): 1}, "key of type tuple"),
    "deep": (None, "nested deeper than 200"),
}


@pytest.mark.parametrize("data,message", list(BAD_DATA.values()), ids=list(BAD_DATA))
def test_bad_json_data_writes_nothing(writer: AtomicWriter, catalog: Catalog, base_dir: Path, data, message) -> None:
    if data is None:
        data = current = {}
        for _ in range(300):
            current["x"] = current = {}
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$").replace("[", r"\[").replace("]", r"\]")):
        writer.write_json("ledger", "bad", data)
    assert store_files(base_dir) == [] and all_records(catalog) == [] and event_count(catalog) == 0


@pytest.mark.parametrize(
    "rows,message",
    [([], "at least its header"), ([["a"], [float("nan")]], "non-finite"), (["abc"], "not a list of cells"),
     ([["a"], [{"x": 1}]], "type dict at row 2, column 1")],
    ids=["empty", "nan", "string-row", "dict-cell"],
)  # fmt: skip
def test_bad_csv_rows_write_nothing(writer: AtomicWriter, catalog: Catalog, base_dir: Path, rows, message) -> None:
    with pytest.raises(ValidationError, match=message):
        writer.write_csv("ledger", "bad", rows)
    assert store_files(base_dir) == [] and all_records(catalog) == []


@pytest.mark.parametrize(
    "ext,data,message",
    [("json", b"\xff\xfe", "not valid UTF-8"), ("json", b"{\"a\": NaN}", "NaN is not allowed"),
     ("json", b"[" * 100_000, "nested too deeply|not valid JSON"), ("jsonl", b'{"a":1}\nnope\n', "line 2"),
     ("csv", b'a,"b\n', "not valid CSV"), ("json", b"", "input is empty"), ("json", b"\x00\x01garbage", "not valid JSON")],
    ids=["utf8", "nan", "deep", "jsonl-line", "csv-quote", "empty", "binary"],
)  # fmt: skip
def test_write_bytes_checks_parseable_formats(writer: AtomicWriter, catalog: Catalog, base_dir: Path, ext, data, message) -> None:
    with pytest.raises(ValidationError, match=message):
        writer.write_bytes("health" if ext == "jsonl" else "ledger", "bad", data, ext)
    assert store_files(base_dir) == [] and all_records(catalog) == []


def test_opaque_extensions_are_stored_unchecked(writer: AtomicWriter, base_dir: Path) -> None:
    record = writer.write_bytes("config", "notes", b"\x00\xffanything", "txt")
    assert (base_dir / record.path).read_bytes() == b"\x00\xffanything"


@freeze_time(FROZEN)
def test_a_collision_changes_nothing(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    first = writer.write_json("ledger", "p", {"v": 1})
    before = (base_dir / first.path).read_bytes()
    with pytest.raises(CollisionError, match="already exists"):
        writer.write_json("ledger", "p", {"v": 2})
    assert (base_dir / first.path).read_bytes() == before
    assert store_files(base_dir) == [first.path]
    assert [r.path for r in all_records(catalog)] == [first.path] and event_count(catalog) == 1


@freeze_time(FROZEN)
def test_a_collision_on_disk_alone_is_refused_before_publishing(writer: AtomicWriter, catalog: Catalog, base_dir: Path, monkeypatch) -> None:
    """Even when the pre-check misses (a racing writer), the hard link never clobbers."""
    monkeypatch.setattr(Catalog, "paths_taken", lambda self, rels: set())
    (base_dir / "ledger" / "20240229-235958-p-ledger.json").write_text("someone else's")
    monkeypatch.setattr(Path, "exists", lambda self: False)
    with pytest.raises(CollisionError):
        writer.write_json("ledger", "p", {"v": 2})
    monkeypatch.undo()
    assert (base_dir / "ledger" / "20240229-235958-p-ledger.json").read_text() == "someone else's"
    assert store_files(base_dir) == ["ledger/20240229-235958-p-ledger.json"] and all_records(catalog) == []


@pytest.mark.parametrize("size", [writer_module.HASH_BESIDE - 1, writer_module.HASH_BESIDE, 3 * 1024**2 + 7])
def test_the_recorded_sha256_is_that_of_the_bytes_on_disk(writer: AtomicWriter, base_dir: Path, size: int) -> None:
    """Large payloads are hashed on a helper thread while they are written: the digest must still be theirs."""
    data = os.urandom(size)
    record = writer.write_bytes("ledger", f"s{size}", data, "parquet")
    on_disk = (base_dir / record.path).read_bytes()
    assert on_disk == data and record.sha256 == hashlib.sha256(on_disk).hexdigest() and record.size == size


def test_a_forked_child_writes_large_payloads_too(writer: AtomicWriter, catalog: Catalog) -> None:
    """The hashing thread does not survive fork(): the child must start its own, not wait forever."""
    writer.write_bytes("ledger", "parent", os.urandom(writer_module.HASH_BESIDE), "parquet")  # the parent's pool exists
    catalog.db.dispose()  # no pooled connection crosses the fork
    with warnings.catch_warnings():  # Python 3.12+ warns about fork() with a thread alive: that is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            signal.alarm(20)  # a hang becomes SIGALRM, not a stuck test run
            writer.write_bytes("ledger", "child", os.urandom(writer_module.HASH_BESIDE + 1), "parquet")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert {r.prefix for r in all_records(catalog)} == {"parent", "child"}


def test_a_failure_before_publishing_leaves_no_temp_and_no_row(writer: AtomicWriter, catalog: Catalog, base_dir: Path, monkeypatch) -> None:
    def fail(point: str) -> None:
        if point == "temp_written":
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer_module, "FAULT_HOOK", fail)
    with pytest.raises(StoreError, match="No space left on device"):
        writer.write_json("ledger", "p", {"v": 1})
    assert store_files(base_dir) == [] and all_records(catalog) == [] and event_count(catalog) == 0


def test_a_failed_commit_keeps_the_published_file(writer: AtomicWriter, catalog: Catalog, base_dir: Path, monkeypatch) -> None:
    def broken_write():  # type: ignore[no-untyped-def]
        raise RuntimeError("connection lost")

    monkeypatch.setattr(catalog.db, "write", broken_write)
    with pytest.raises(CommitError, match="the file is complete and kept") as caught:
        writer.write_json("ledger", "p", {"v": 1})
    monkeypatch.undo()
    assert caught.value.remedy is Remedy.ADOPT and "catalog reconcile" not in str(caught.value)  # the API names no command
    (path,) = caught.value.paths
    assert store_files(base_dir) == [path]
    assert json.loads((base_dir / path).read_text()) == {"v": 1}
    assert all_records(catalog) == []


def test_a_writer_whose_file_was_adopted_meanwhile_succeeds(writer: AtomicWriter, catalog: Catalog, monkeypatch) -> None:
    """Commit fails on the unique path because reconcile adopted the same bytes: success."""
    import catalog.ops.write as write_module

    real_record = write_module.record
    adopted = {}

    def record_twice(store, files, *, actor=None):  # type: ignore[no-untyped-def]
        if not adopted:
            adopted["rows"] = real_record(store, files, actor="reconcile")  # the adopter wins the race
        return real_record(store, files, actor=actor)

    monkeypatch.setattr(write_module, "record", record_twice)
    record = writer.write_json("ledger", "p", {"v": 1})
    assert record == adopted["rows"][0]
    assert len(all_records(catalog)) == 1


def test_write_bytes_refuses_text(writer: AtomicWriter) -> None:
    with pytest.raises(StoreError, match="takes bytes"):
        writer.write_bytes("ledger", "p", "text", "json")  # type: ignore[arg-type]


def test_wrong_extension_for_a_typed_writer(writer: AtomicWriter, base_dir: Path) -> None:
    with pytest.raises(ValidationError, match="not allowed for type 'health'"):
        writer.write_csv("health", "p", [["a"]])
    assert store_files(base_dir) == []


def test_legacy_module_functions_write_catalogued_ledger_artifacts(catalog: Catalog, base_dir: Path, monkeypatch) -> None:
    from catalog import write_csv, write_json

    monkeypatch.setenv("CRYPTORUN_ARTIFACTS_DIR", str(base_dir))
    if catalog.settings.catalog_url != f"sqlite:///{base_dir / 'catalog.sqlite'}":
        monkeypatch.setenv("CRYPTORUN_CATALOG_URL", catalog.settings.catalog_url)
    with freeze_time("2024-01-15 08:00:00"):
        j = write_json("portfolio", {"positions": [], "cash": 1.0})
        c = write_csv("results", [["symbol", "pnl"], ["BTC-USD", 1.5]])
    assert j.path == "ledger/20240115-080000-portfolio-ledger.json" and j.type == "ledger"
    assert c.path == "ledger/20240115-080000-results-ledger.csv"
    assert (base_dir / c.path).read_text() == "symbol,pnl\nBTC-USD,1.500000\n"
    assert {r.path for r in all_records(catalog)} == {j.path, c.path}


def test_every_write_appends_exactly_one_event(writer: AtomicWriter, catalog: Catalog) -> None:
    start = len(list(catalog.events()))
    for n in range(5):
        record = writer.write_json("ledger", f"p{n}", {"n": n})
        events = list(catalog.events())
        assert len(events) == start + n + 1
        last = events[-1]
        assert (last.action, last.artifact_id, last.path, last.status) == ("write", record.id, record.path, "active")
        assert last.details["sha256"] == record.sha256 and last.details["size"] == record.size


@pytest.mark.parametrize("password", ["se/cret", "se@cret", "s%2Fcret"])
def test_a_config_snapshot_never_holds_the_catalog_password(writer: AtomicWriter, base_dir: Path, password: str) -> None:
    from dataclasses import replace

    writer.settings = replace(writer.settings, catalog_url=f"postgresql+psycopg://catalog:{password}@db/catalog")
    record = writer.snapshot_config()
    stored = (base_dir / record.path).read_text()
    assert "cret" not in stored and "***@db/catalog" in stored


def test_write_stream_stores_a_file_or_chunks_as_write_bytes_would(writer: AtomicWriter, base_dir: Path, tmp_path: Path) -> None:
    data = b"a,b\n" + b"1,2\n" * 300_000
    source = tmp_path / "rows.csv"
    source.write_bytes(data)
    with open(source, "rb") as handle:
        from_file = writer.write_stream("ledger", "file", handle, "csv")
    from_chunks = writer.write_stream("ledger", "chunks", (data[i : i + 999] for i in range(0, len(data), 999)), "csv")
    for record in (from_file, from_chunks):
        assert (record.size, record.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert (base_dir / record.path).read_bytes() == data


@pytest.mark.parametrize(
    "ext,pieces,message",
    [("csv", [b"a,b\n", b'1,"2\n'], "not valid CSV"), ("jsonl", [b'{"a": 1}\n{"a"', b": NaN}\n"], "line 2"),
     ("json", [b'{"a": ', b"[1, }"], "not valid JSON"), ("csv", [b"a\n", b"\xc3"], "not valid UTF-8 \\(byte 2\\)"),
     ("parquet", [], "input is empty")],
    ids=["csv", "jsonl", "json", "utf8", "empty"],
)  # fmt: skip
def test_write_stream_refused_as_it_streams_leaves_nothing(writer: AtomicWriter, catalog: Catalog, base_dir: Path, ext, pieces, message) -> None:
    with pytest.raises(ValidationError, match=message):
        writer.write_stream("health" if ext == "jsonl" else "ledger", "bad", iter(pieces), ext)
    assert store_files(base_dir) == [] and all_records(catalog) == []


def test_write_stream_refuses_text(writer: AtomicWriter, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("a\n")
    with open(tmp_path / "a.csv") as text_file:
        for source in (b"a\n", "a\n", text_file):
            with pytest.raises(StoreError, match="takes a binary file or an iterable of byte chunks"):
                writer.write_stream("ledger", "p", source, "csv")  # type: ignore[arg-type]


def test_a_csv_field_larger_than_pythons_default_limit_is_accepted(writer: AtomicWriter) -> None:
    field = "x" * 200_000  # Python's csv module refuses more than 128 KiB by default
    data = f'id,notes\n1,"{field}"\n'.encode()
    assert writer.write_bytes("ledger", "wide", data, "csv").size == len(data)
    assert writer.write_stream("ledger", "wide2", [data], "csv").size == len(data)


def test_what_is_checked_whole_is_bounded(writer: AtomicWriter, catalog: Catalog, base_dir: Path, monkeypatch) -> None:
    from catalog.core import content

    monkeypatch.setattr(content, "MAX_JSON_BYTES", 1024)
    monkeypatch.setattr(content, "MAX_CSV_LINE", 1024)
    with pytest.raises(ValidationError, match="larger than .* the most that is checked"):
        writer.write_stream("ledger", "big", [b"[" + b"1," * 600 + b"1]"], "json")
    with pytest.raises(ValidationError, match="line longer than .*from byte 3"):
        writer.write_stream("health", "big", [b"{}\n", b'"' + b"x" * 1100 + b'"\n'], "jsonl")
    with pytest.raises(ValidationError, match="line longer than"):
        writer.write_stream("ledger", "big", [b"a\n", b"x," * 600], "csv")
    with pytest.raises(ValidationError, match="field larger than field limit"):
        writer.write_bytes("ledger", "big", b'a\n"' + b"x" * (content.MAX_CSV_FIELD + 1) + b'"\n', "csv")
    assert store_files(base_dir) == [] and all_records(catalog) == []
