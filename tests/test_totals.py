"""Byte totals past 2^63 - 1 (the largest BIGINT, 8 EiB): exact on both backends, never a float nor an overflow error.

Sparse files make such sizes real (tmpfs and xfs take a file of 2^62 bytes); a store's total passes 2^63 - 1 with
no folder holding that much, and a total over its history (``stats`` by status counts deleted files too) with no
more than one such file on disk at a time.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from catalog.core.errors import ValidationError
from catalog.core.names import build_name, store_path
from catalog.core.records import PublishedFile
from catalog.core.store import Catalog
from catalog.ops.limits import limits
from catalog.ops.operations import status
from catalog.ops.query import stats
from catalog.ops.reconcile import expected_work
from catalog.ops.retention_summary import plan_summary

from helpers import Cli, all_records

OLD = datetime(2020, 1, 1, tzinfo=timezone.utc)  # past every type's retention period
KINDS = ("explain", "ledger", "health")
BIG = {kind: 2**62 + n for n, kind in enumerate(KINDS, 1)}  # any two total more than 2^63 - 1
GONE = {kind: 2**62 + 10 * n for n, kind in enumerate(KINDS, 1)}  # the sizes of deleted files


@pytest.fixture
def huge(catalog: Catalog) -> Catalog:
    """Per type: a file deleted, then one on disk, of the sizes above (no folder ever holds 2^63 bytes)."""
    for n, kind in enumerate(KINDS):
        for size, second in ((GONE[kind], 10 + n), (BIG[kind], n)):
            with catalog.change() as tx:
                item = PublishedFile(f"{kind}/20200101-0000{second:02d}-big-{kind}.json", kind, "big", "json",
                                     OLD + timedelta(seconds=second), size, f"{second:064x}")  # fmt: skip
                record = tx.artifacts.record(item)
                if size == GONE[kind]:
                    tx.artifacts.set_status(record.id, action="delete", status="deleted", details={})
    return catalog


def test_stats_limits_and_status_total_exactly(huge: Catalog) -> None:
    on_disk, deleted = sum(BIG.values()), sum(GONE.values())
    assert on_disk > 2**63 and deleted > 2**63
    totals = {(row.group, row.name): (row.count, row.bytes) for row in stats(huge)}
    assert totals == {**{("type", k): (1, BIG[k]) for k in KINDS}, **{("folder", k): (1, BIG[k]) for k in KINDS},
                      ("status", "active"): (3, on_disk), ("status", "deleted"): (3, deleted),
                      ("store", "on disk"): (3, on_disk)}  # fmt: skip
    assert all(type(row.bytes) is int for row in stats(huge))
    rows = limits(huge)
    assert [(r.name, r.bytes, r.level) for r in rows[:-1]] == [(k, BIG[k], "over") for k in sorted(KINDS)]
    assert (rows[-1].scope, rows[-1].bytes, rows[-1].level) == ("store", on_disk, "over")
    assert "a folder or the store is over its limit" in " ".join(a.message for a in status(huge).attention)
    assert expected_work(huge) == (3, on_disk) and expected_work(huge, ("ledger",)) == (1, BIG["ledger"])


def test_the_retention_summary_totals_exactly(huge: Catalog) -> None:
    """A second explain file on disk, in a day partition (a folder of its own): explain's expired total passes 2^63."""
    moment = OLD + timedelta(days=1)
    with huge.change() as tx:
        path = store_path(build_name(moment, "big", "explain", "json"), "day")
        tx.artifacts.record(PublishedFile(path, "explain", "big", "json", moment, 2**62, "f" * 64))
    summary = plan_summary(huge, now=datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert {row.type: row.size for row in summary} == {**BIG, "explain": BIG["explain"] + 2**62}
    assert {row.type: row.count for row in summary} == {"explain": 2, "ledger": 1, "health": 1}


def test_the_command_line_prints_the_exact_totals(huge: Catalog, run_cli: Cli) -> None:
    on_disk = sum(BIG.values())
    listed = json.loads(run_cli("stats", "--format", "json").stdout)["stats"]
    assert {(r["group"], r["name"]): r["bytes"] for r in listed}[("store", "on disk")] == on_disk
    result = run_cli("limits", "--format", "csv")
    assert result.exit_code == 1  # over: a finding, not an error
    assert list(csv.DictReader(io.StringIO(result.stdout)))[-1]["bytes"] == str(on_disk)
    summary = json.loads(run_cli("retention", "plan", "--summary", "--now", "2030-01-01", "--format", "json").stdout)
    assert sum(row["size"] for row in summary["summary"]) == on_disk
    table = run_cli("stats")
    assert table.exit_code == 0 and "Error" not in table.output


def test_a_writer_that_starts_on_a_store_past_2_63_bytes_counts_it_exactly(huge: Catalog) -> None:
    """A new writer process sums the store's folders once: SQLite's sum() would overflow there."""
    from catalog.cryptorun.writer import AtomicWriter

    with Catalog(huge.settings) as fresh, AtomicWriter(catalog=fresh) as writer:
        record = writer.write_json("health", "small", {"n": 1})
    assert record.size > 0 and huge.audit_verify().ok
    assert stats(huge)[-1].bytes == sum(BIG.values()) + record.size


def test_a_change_that_would_take_one_folder_past_2_63_bytes_is_refused(catalog: Catalog) -> None:
    def item(second: int, size: int) -> PublishedFile:
        return PublishedFile(f"ledger/20200101-0000{second:02d}-big-ledger.json", "ledger", "big", "json",
                             OLD + timedelta(seconds=second), size, f"{second:064x}")  # fmt: skip

    with catalog.change() as tx:
        tx.artifacts.record(item(1, 2**62))
    events = len(list(catalog.events()))
    with pytest.raises(ValidationError, match=r"folder ledger/ would hold more than 2\^63 - 1 bytes"):
        with catalog.change() as tx:
            tx.artifacts.record(item(2, 2**62))
    assert len(list(catalog.events())) == events and [r.size for r in all_records(catalog)] == [2**62]
    assert [(r.name, r.bytes) for r in limits(catalog)[:-1]] == [("ledger", 2**62)] and catalog.audit_verify().ok
    with catalog.change() as tx:  # the folder still takes what fits
        tx.artifacts.record(item(3, 2**62 - 1))
    assert limits(catalog)[0].bytes == 2**63 - 1
