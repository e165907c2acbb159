"""A writer killed mid-write leaves nothing partial under a final name."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.core.names import parse_name, parse_temp_name
from catalog.core.store import Catalog

from helpers import all_records, catalog_env, run_python, store_files, write_events

KILLED_WRITER = """
import os, signal
import catalog.core.fs as w

def hook(point):
    if point == {point!r}:
        os.kill(os.getpid(), signal.SIGKILL)

w.FAULT_HOOK = hook
print(os.getpid(), flush=True)
from catalog.cryptorun.writer import AtomicWriter
with AtomicWriter() as writer:
    writer.write_json("ledger", "doomed", {{"payload": "x" * 100000}})
"""


def _kill_at(point: str, base_dir: Path, catalog_url: str | None) -> int:
    result = run_python(KILLED_WRITER.format(point=point), catalog_env(base_dir, catalog_url))
    assert result.returncode == -9, result.stderr
    return int(result.stdout.split()[0])


def test_killed_after_publishing_leaves_a_complete_file_without_a_row(catalog: Catalog, base_dir: Path, catalog_url) -> None:
    _kill_at("published", base_dir, catalog_url)
    (path,) = store_files(base_dir)
    assert parse_name(Path(path).name).prefix == "doomed"
    import json

    assert json.loads((base_dir / path).read_text()) == {"payload": "x" * 100000}  # complete
    assert all_records(catalog) == [] and write_events(catalog) == []
    assert catalog.audit_verify().ok


def test_killed_before_publishing_leaves_only_a_recognisable_temp_file(catalog: Catalog, base_dir: Path, catalog_url) -> None:
    pid = _kill_at("temp_written", base_dir, catalog_url)
    (path,) = store_files(base_dir)
    temp = parse_temp_name(Path(path).name)
    assert temp is not None and temp.pid == pid
    assert parse_name(temp.final_name).prefix == "doomed"
    assert parse_name(Path(path).name) is None  # never mistaken for an artifact
    assert all_records(catalog) == []


@pytest.mark.parametrize("point", ["temp_written", "published"])
def test_a_store_survives_a_kill_and_keeps_working(catalog: Catalog, base_dir: Path, catalog_url, point: str) -> None:
    _kill_at(point, base_dir, catalog_url)
    from catalog.cryptorun.writer import AtomicWriter

    record = AtomicWriter(catalog=catalog).write_json("ledger", "after", {"ok": True})
    assert [r.path for r in all_records(catalog)] == [record.path]
    assert catalog.audit_verify().ok
