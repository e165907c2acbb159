"""Holds act on what a person means (issue 13, cases 6 and 7): a pair is held whole, a hold says what it covers,
the same hold is not placed twice, and ``hold ls`` counts."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone

import pytest
from freezegun import freeze_time

from catalog.core.errors import ValidationError
from catalog.core.store import Catalog
from catalog.cryptorun.demo import make_report
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.policy import add_hold, coverage, holds, release_hold
from catalog.ops.retention import apply, plan

OLD = datetime(2020, 5, 1, tzinfo=timezone.utc)


def old_pair(writer: AtomicWriter, prefix: str):  # type: ignore[no-untyped-def]
    with freeze_time(OLD):
        return writer.write_explain_report(make_report(3, seed=1), prefix)


def old_json(writer: AtomicWriter, artifact_type: str, prefix: str):  # type: ignore[no-untyped-def]
    with freeze_time(OLD):
        return writer.write_json(artifact_type, prefix, {"p": prefix})


def actions(catalog: Catalog) -> dict[str, str]:
    return {row.record.path: row.action for row in plan(catalog)}


@pytest.mark.parametrize("half", ["json", "csv"])
def test_a_hold_on_one_file_of_a_pair_protects_both(catalog: Catalog, writer: AtomicWriter, half: str) -> None:
    json_rec, csv_rec = old_pair(writer, "scan")
    other_json, other_csv = old_pair(writer, "other")
    held = add_hold(catalog, path=json_rec.path if half == "json" else csv_rec.path, reason="SEC inquiry")
    assert held.covers_now == 2
    assert actions(catalog) == {json_rec.path: "hold", csv_rec.path: "hold", other_json.path: "delete",
                                other_csv.path: "delete"}  # fmt: skip
    report = apply(catalog)
    assert sorted(report.deleted) == sorted([other_json.path, other_csv.path]) and report.protected == 2
    assert (catalog.base_dir / json_rec.path).exists() and (catalog.base_dir / csv_rec.path).exists()
    release_hold(catalog, held.id, "closed")
    assert sorted(apply(catalog).deleted) == sorted([json_rec.path, csv_rec.path])


def test_a_pair_hold_respects_its_window(catalog: Catalog, writer: AtomicWriter) -> None:
    json_rec, csv_rec = old_pair(writer, "scan")
    add_hold(catalog, path=json_rec.path, until=datetime(2019, 1, 1, tzinfo=timezone.utc), reason="only older ones")
    assert actions(catalog) == {json_rec.path: "delete", csv_rec.path: "delete"}


def test_a_hold_says_how_many_it_covers_now(catalog: Catalog, writer: AtomicWriter, run_cli) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        old_json(writer, "ledger", f"p2-{n}")
    old_json(writer, "health", "p2-x")
    result = run_cli("hold", "add", "--prefix", "nomatch_zzz", "--reason", "x")
    assert result.exit_code == 0
    assert "Hold 1 covers 0 artifact(s) on disk now, and any prefix match written later." in result.stdout
    placed = json.loads(run_cli("hold", "add", "--prefix", "p2*", "--reason", "SEC inquiry", "--format", "json").stdout)
    assert placed["holds"][0]["covers_now"] == 4
    by_type = add_hold(catalog, artifact_type="ledger", reason="Q review")
    window = add_hold(catalog, artifact_type="health", since=datetime(2021, 1, 1, tzinfo=timezone.utc), reason="new")
    assert (by_type.covers_now, window.covers_now) == (3, 0)
    listed = {h["selector"]: h["covers_now"] for h in json.loads(run_cli("hold", "ls", "--format", "json").stdout)["holds"]}
    assert listed == {"nomatch_zzz": 0, "p2*": 4, "ledger": 3, "health": 0}
    assert "covers_now" in run_cli("hold", "ls").stdout.splitlines()[0]


def test_coverage_counts_files_on_disk_only(catalog: Catalog, writer: AtomicWriter) -> None:
    a = old_json(writer, "ledger", "keep-a")
    b = old_json(writer, "ledger", "keep-b")
    hold = add_hold(catalog, prefix="keep-*", reason="r")
    catalog.change_status(b.id, action="delete", status="deleted")
    catalog.change_status(a.id, action="archive", status="archived", path="ledger/archived/2020-05/x-ledger.json")
    assert coverage(catalog, hold) == 1  # the archived one is still on disk; the deleted one is not


@pytest.mark.parametrize(
    "first, second",
    [({"prefix": "p2*"}, {"prefix": "p2*"}),
     ({"artifact_type": "ledger", "since": OLD}, {"artifact_type": "ledger", "since": OLD})],
    ids=["prefix", "type-with-window"],
)  # fmt: skip
def test_the_same_active_hold_is_refused(catalog: Catalog, first: dict, second: dict) -> None:  # type: ignore[type-arg]
    placed = add_hold(catalog, reason="first", **first)
    before = [e.seq for e in catalog.events()]
    with pytest.raises(ValidationError, match=f"^hold {placed.id} already covers .*nothing was placed"):
        add_hold(catalog, reason="second", **second)
    assert [e.seq for e in catalog.events()] == before and len(holds(catalog)) == 1
    release_hold(catalog, placed.id, "done")
    assert add_hold(catalog, reason="again", **second).id != placed.id  # once released, it may be placed again


def test_a_different_window_is_a_different_hold(catalog: Catalog) -> None:
    add_hold(catalog, prefix="p2*", reason="all")
    add_hold(catalog, prefix="p2*", since=OLD, reason="from May 2020")
    assert len(holds(catalog)) == 2


def test_a_duplicate_hold_on_the_command_line(run_cli, catalog: Catalog, writer: AtomicWriter) -> None:  # type: ignore[no-untyped-def]
    record = old_json(writer, "ledger", "one")
    assert run_cli("hold", "add", record.path, "--reason", "a").exit_code == 0
    again = run_cli("hold", "add", record.path, "--reason", "b")
    assert again.exit_code == 2 and again.stderr.startswith("Error: hold 1 already covers path")
    assert len(again.stderr.strip().splitlines()) == 1 and len(holds(catalog)) == 1


def test_two_placers_at_once_place_one_hold(catalog: Catalog, settings) -> None:  # type: ignore[no-untyped-def]
    """The duplicate check runs under the chain lock: two identical holds placed together give one."""
    start, outcomes = threading.Barrier(2), []

    def place() -> None:
        with Catalog(settings) as own:
            start.wait()
            try:
                outcomes.append(add_hold(own, prefix="race*", reason="r").id)
            except ValidationError as exc:
                outcomes.append(str(exc))

    threads = [threading.Thread(target=place) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(o, int) for o in outcomes) == 1, outcomes
    assert len(holds(catalog)) == 1 and catalog.audit_verify().ok


def test_a_second_hold_on_a_pair_counts_when_the_first_one_is_out_of_its_window(catalog: Catalog, writer: AtomicWriter) -> None:
    json_rec, csv_rec = old_pair(writer, "scan")
    add_hold(catalog, path=json_rec.path, until=datetime(2019, 1, 1, tzinfo=timezone.utc), reason="only older ones")
    add_hold(catalog, path=csv_rec.path, reason="the whole report")
    assert actions(catalog) == {json_rec.path: "hold", csv_rec.path: "hold"}
