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

from catalog.core.names import build_name, store_path
from catalog.core.records import PublishedFile
from catalog.core.store import Catalog
from catalog.ops.limits import limits
from catalog.ops.operations import status
from catalog.ops.query import stats
from catalog.ops.reconcile import expected_work
from catalog.ops.retention_summary import plan_summary

from helpers import Cli

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
