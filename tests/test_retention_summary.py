"""`retention plan --summary`: totals by type, action and reason, computed in the database, equal to the plan's."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from freezegun import freeze_time

from catalog.core.settings import RetentionPolicy
from catalog.core.store import Catalog
from catalog.cryptorun.demo import make_report
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.policy import add_hold, extend, holds, release_hold, set_floor
from catalog.ops.retention import plan
from catalog.ops.retention_summary import KEPT_LATER, plan_summary, summary_key

from helpers import all_records

UTC = timezone.utc
START = datetime(2024, 1, 1, tzinfo=UTC)
PREFIXES = ["btc_1", "btcX1", "BTC_2", "eth-1", "eth-2", "sol.a", "b.c", "x_1"]


def grouped(catalog: Catalog, now: datetime, types: tuple[str, ...] = ()) -> dict[tuple[str, str, str], tuple[int, int]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    sizes: Counter[tuple[str, str, str]] = Counter()
    for row in plan(catalog, now=now, types=types):
        counts[summary_key(row)] += 1
        sizes[summary_key(row)] += row.record.size
    return {key: (counts[key], sizes[key]) for key in counts}


def summarised(catalog: Catalog, now: datetime, types: tuple[str, ...] = ()) -> dict[tuple[str, str, str], tuple[int, int]]:
    rows = plan_summary(catalog, now=now, types=types)
    assert len({(r.type, r.action, r.reason) for r in rows}) == len(rows), "one line per type, action and reason"
    return {(r.type, r.action, r.reason): (r.count, r.size) for r in rows}


@pytest.fixture
def store(writer: AtomicWriter, catalog: Catalog) -> Catalog:
    """Forty days of writes, every type and prefix, with holds of every kind, promises and a floor."""
    forever = dict(catalog.settings.retention, health=RetentionPolicy(None, "delete"))
    with Catalog(replace(catalog.settings, retention=forever)) as forever_catalog:  # health written as kept forever
        kept = AtomicWriter(catalog=forever_catalog)
        for day in range(0, 40, 3):
            for n, prefix in enumerate(PREFIXES):
                when = START + timedelta(days=day, hours=n)
                with freeze_time(when):
                    if n % 3 == 0:
                        writer.write_explain_report(make_report(2, seed=day, now=when), prefix)
                    writer.write_json("ledger", prefix, {"day": day, "pad": "x" * n})
                    (kept if day % 2 == 0 else writer).write_json("health", prefix, {"day": day})
                    writer.write_json("config", prefix, {"day": day})
    records = all_records(catalog)
    explain_json = next(r for r in records if r.type == "explain" and r.path.endswith(".json"))
    add_hold(catalog, path=explain_json.path, reason="the pair of one report")
    add_hold(catalog, prefix="btc_*", reason="literal underscore")
    add_hold(catalog, prefix="*-1", since=START + timedelta(days=3), until=START + timedelta(days=9), reason="window")
    add_hold(catalog, prefix="x[_]1", reason="a bracket")
    add_hold(catalog, prefix="?o?.*", reason="single characters")
    add_hold(catalog, artifact_type="config", until=START + timedelta(days=2, hours=3), reason="type, until a moment")
    released = add_hold(catalog, artifact_type="ledger", reason="released later")
    release_hold(catalog, released.id, "closed")
    with freeze_time(START + timedelta(days=41)):
        extend(catalog, [r for r in records if r.type == "ledger" and r.prefix == "eth-2"],
               START + timedelta(days=400), "kept for an inquiry")  # fmt: skip
    set_floor(catalog, "explain", 35, "books")
    return catalog


def test_the_summary_is_the_plan_grouped(store: Catalog) -> None:
    for days in (0, 20, 45, 60, 140, 500):
        now = START + timedelta(days=days)
        expected = grouped(store, now)
        assert summarised(store, now) == expected, days
    for days in (140, 500):
        expected = grouped(store, START + timedelta(days=days))
        actions = {key[1] for key in expected}
        assert {"delete", "archive", "hold", "keep"} <= actions, expected
        assert any(key[2] == KEPT_LATER for key in expected) == (days < 400), expected
        assert any("kept forever" in key[2] for key in expected), expected
        assert len([key for key in expected if key[1] == "hold"]) >= 4, "several holds each get their own line"


def test_a_shorter_policy_turns_promises_into_keep_lines(store: Catalog) -> None:
    shorter = dict(store.settings.retention, ledger=RetentionPolicy(1, "archive"), health=RetentionPolicy(0, "delete"))
    short = Catalog(replace(store.settings, retention=shorter))
    try:
        for days in (5, 45, 200):
            now = START + timedelta(days=days)
            assert summarised(short, now) == grouped(short, now)
            assert summarised(short, now, ("health",)) == grouped(short, now, ("health",))
    finally:
        short.close()


def test_holds_released_and_placed_change_the_summary_like_the_plan(store: Catalog) -> None:
    now = START + timedelta(days=500)
    for hold in holds(store):
        release_hold(store, hold.id, "all closed")
    after = summarised(store, now)
    assert after == grouped(store, now)
    assert not [key for key in after if key[1] == "hold"]


def test_the_cli_prints_the_summary(store: Catalog, run_cli) -> None:  # type: ignore[no-untyped-def]
    now = START + timedelta(days=140)
    result = run_cli("retention", "plan", "--summary", "--now", "2024-05-20T00:00:00Z", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["summary"]
    assert {(r["type"], r["action"], r["reason"]): (r["count"], r["size"]) for r in rows} == grouped(store, now)
    table = run_cli("retention", "plan", "--summary", "--now", "2024-05-20T00:00:00Z")
    assert table.exit_code == 0 and table.stdout.splitlines()[0].split()[:5] == ["type", "action", "reason", "count", "size"]
    assert run_cli("retention", "plan", "--summary", "--type", "nope").exit_code == 2
    early = run_cli("retention", "plan", "--summary", "--now", "0001-01-02T00:00:00Z")
    assert early.exit_code == 2 and early.stdout == "" and "too early" in early.stderr
