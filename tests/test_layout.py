"""Partitioned folders (issue 17, item 6): the ``layout`` setting (flat, month, day) and every verb over it."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time

from catalog.core.errors import CollisionError, ConfigError, StoreError
from catalog.core.names import build_name, layout_of, parse_name, placements, store_path, store_path_problem
from catalog.core.records import PublishedFile
from catalog.core.settings import load_settings
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.limits import layout_advice, limits
from catalog.ops.operations import status
from catalog.ops.query import ArtifactQuery, iter_artifacts
from catalog.ops.reconcile import reconcile
from catalog.ops.retention import apply

from helpers import all_records, store_files, transactions

MOMENT = datetime(2025, 11, 29, 12, 0, 0, tzinfo=timezone.utc)
NAME = "20251129-120000-btc-explain.json"


def switch(catalog: Catalog, layout: str) -> AtomicWriter:
    """The store's layout changed (as a new config would): a writer that writes with it."""
    catalog.settings = replace(catalog.settings, layout=layout)
    return AtomicWriter(catalog=catalog)


def assert_sound(catalog: Catalog) -> None:
    """Reconcile (quick and deep) finds no drift, the audit log verifies."""
    for deep in (False, True):
        report = reconcile(catalog, deep=deep, grace=0)
        assert not report.drift and not report.findings, [f.to_dict() for f in report.findings]
    assert catalog.audit_verify().ok


# -- names ---------------------------------------------------------------------------------------------------


def test_a_name_is_placed_by_its_own_date_and_read_back_from_every_layout() -> None:
    name = build_name(MOMENT, "btc", "explain", "json")
    expected = {"flat": f"explain/{NAME}", "month": f"explain/2025/11/{NAME}", "day": f"explain/2025/11/29/{NAME}"}
    for layout, path in expected.items():
        assert store_path(name, layout) == path
        folder, _, filename = path.rpartition("/")
        assert parse_name(filename) == name and layout_of(folder, filename) == layout
        assert store_path_problem(path) is None and store_path_problem(f"quarantine/{path}.0123abcd") is None
    assert placements(NAME) == placements(f"explain/{NAME}") == list(expected.values())
    assert placements(f"ledger/{NAME}") == placements("explain/x.json") == []
    # not where any layout puts it: another date, a month 13, a year folder only, another type's folder
    for wrong in ("explain/2025/12/29", "explain/2025/11/28", "explain/2025/13", "explain/2025", "explain/2025/11/29/x",
                  "ledger/2025/11/29", "explain/2025/11/29/../29"):  # fmt: skip
        assert layout_of(wrong, NAME) is None
        assert store_path_problem(f"{wrong}/{NAME}") is not None, wrong


def test_the_partition_is_the_names_date_not_the_clock(catalog: Catalog) -> None:
    writer = switch(catalog, "day")
    with freeze_time("2025-12-01T00:00:05Z"):  # written days later, dated by the report's own time
        record = writer.write_json("explain", "btc", {"v": 1}, created_at=MOMENT)
    assert record.path == f"explain/2025/11/29/{NAME}"


@pytest.mark.parametrize("value", ["weekly", "Day", "", 3, None, ["day"]])
def test_a_bad_layout_is_one_clear_error(tmp_path: Path, value: object) -> None:
    config = tmp_path / "artifacts.yaml"
    config.write_text(json.dumps({"layout": value}))
    with pytest.raises(ConfigError, match=r"key 'layout' must be one of flat, month, day") as caught:
        load_settings(config, env={}, cwd=tmp_path)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"env:CRYPTORUN_LAYOUT: key 'layout' must be one of flat, month, day"):
        load_settings(env={"CRYPTORUN_LAYOUT": "hourly"}, cwd=tmp_path)
    assert load_settings(env={"CRYPTORUN_LAYOUT": "day"}, cwd=tmp_path).layout == "day"


def test_a_bad_layout_on_the_command_line_writes_nothing(run_cli, base_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "bad.yaml"
    config.write_text("layout: hourly\n")
    result = run_cli("--config", str(config), "init")
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "key 'layout' must be one of" in result.output
    assert not base_dir.exists()


# -- every verb under month and day --------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["month", "day"])
def test_every_verb_works_in_partitions(catalog: Catalog, run_cli, tmp_path: Path, layout: str) -> None:  # type: ignore[no-untyped-def]
    writer = switch(catalog, layout)
    folder = {"month": "2025/11", "day": "2025/11/29"}[layout]
    with freeze_time(MOMENT):
        report = writer.write_json("explain", "btc", {"v": 1})
        with writer.batch() as batch:
            batch.write_json("health", "cycle", {"ok": True})
            batch.write_json("ledger", "portfolio", {"cash": 1})
    assert report.path == f"explain/{folder}/{NAME}"
    assert {r.path for r in all_records(catalog)} == {
        f"explain/{folder}/{NAME}", f"health/{folder}/20251129-120000-cycle-health.json",
        f"ledger/{folder}/20251129-120000-portfolio-ledger.json"}  # fmt: skip
    with freeze_time(MOMENT + timedelta(hours=1)):
        pair = writer.write_explain_report(_report(), "eth")
    assert all(r.path.startswith(f"explain/{folder}/") for r in pair)
    # find / show / get by path, by TYPE/NAME and by the bare name
    for given in (report.path, f"explain/{NAME}", NAME):
        shown = run_cli("show", given, "--format", "json")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)["artifact"]["path"] == report.path
        got = run_cli("get", given)
        assert got.exit_code == 0 and json.loads(got.output) == {"v": 1}
    assert run_cli("find", "--sha256", report.sha256).exit_code == 0
    # a name is taken in every layout's place
    with freeze_time(MOMENT), pytest.raises(Exception, match="already exists"):
        switch(catalog, "flat").write_json("explain", "btc", {"v": 2})
    writer = switch(catalog, layout)
    # ls by type and prefix, now and as of a time
    listed = json.loads(run_cli("ls", "--type", "explain", "--prefix", "btc", "--format", "json").output)
    assert [row["path"] for row in listed["artifacts"]] == [report.path]
    before_pair = (MOMENT + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    then = json.loads(run_cli("ls", "--as-of", before_pair, "--format", "json").output)
    assert len(then["artifacts"]) == 3
    # reconcile, verify, audit verify, limits per partition folder, status
    assert_sound(catalog)
    assert run_cli("verify").exit_code == 0
    assert run_cli("audit", "verify").exit_code == 0
    rows = {row.name: row.files for row in limits(catalog) if row.scope == "folder"}
    assert rows == {f"explain/{folder}": 3, f"health/{folder}": 1, f"ledger/{folder}": 1}
    assert "over" not in json.dumps(status(catalog).to_dict()["limits"])
    # retention: the explain files expire after 30 days, their emptied partition goes, the others stay
    with freeze_time(MOMENT + timedelta(days=31)):
        done = apply(catalog)
    health = f"health/{folder}/20251129-120000-cycle-health.json"
    assert sorted(done.deleted) == sorted([report.path, health, *(r.path for r in pair)])
    for gone in ("explain", "health"):  # the partitions emptied, up to the year folder; the type folder stays
        assert not (catalog.base_dir / gone / "2025").exists() and (catalog.base_dir / gone).is_dir()
    assert (catalog.base_dir / "ledger" / folder).is_dir()  # still holds its ledger
    # a ledger archives to archived/YYYY-MM/ (day: YYYY-MM/DD/)
    with freeze_time(MOMENT + timedelta(days=91)):
        done = apply(catalog)
    archived = f"ledger/archived/2025-11{'/29' if layout == 'day' else ''}/20251129-120000-portfolio-ledger.json"
    assert done.archived == [(f"ledger/{folder}/20251129-120000-portfolio-ledger.json", archived)]
    assert not (catalog.base_dir / "ledger" / "2025").exists()
    assert run_cli("get", "20251129-120000-portfolio-ledger.json").exit_code == 0  # found by its name after archiving
    assert_sound(catalog)


def _report():  # type: ignore[no-untyped-def]
    from catalog.cryptorun.demo import make_report

    return make_report(3, seed=1, now=MOMENT + timedelta(hours=1))


# -- a store that changed layout part-way ---------------------------------------------------------------------


def test_a_store_switched_from_flat_to_day_part_way_passes_every_check(catalog: Catalog, run_cli) -> None:  # type: ignore[no-untyped-def]
    """Done when: reconcile, retention, limits, as-of and audit verify over old flat files and new day partitions."""
    writer = AtomicWriter(catalog=catalog)  # flat, as every store so far
    start = datetime(2025, 11, 1, tzinfo=timezone.utc)
    flat, day = [], []
    for n in range(4):  # four days of flat writes
        with freeze_time(start + timedelta(days=n)):
            flat.append(writer.write_json("explain", f"old{n}", {"n": n}))
    writer = switch(catalog, "day")
    for n in range(4, 8):  # then four days in day partitions
        with freeze_time(start + timedelta(days=n)):
            day.append(writer.write_json("explain", f"new{n}", {"n": n}))
    assert all(r.path.count("/") == 1 for r in flat) and all(r.path.count("/") == 4 for r in day)
    with freeze_time(start + timedelta(days=8)):
        assert_sound(catalog)
        assert run_cli("reconcile").exit_code == 0
        # limits: the flat folder and each day partition are folders of their own
        folders = {row.name: row.files for row in limits(catalog) if row.scope == "folder"}
        assert folders == {"explain": 4, **{f"explain/2025/11/0{n + 1}": 1 for n in range(4, 8)}}
        # as of the switch: only the flat files; now: all of them, each where it is
        at_switch = ArtifactQuery(as_of=start + timedelta(days=3, hours=1))
        assert sorted(r.path for r in iter_artifacts(catalog, at_switch)) == sorted(r.path for r in flat)
        assert sorted(r.path for r in iter_artifacts(catalog)) == sorted(r.path for r in flat + day)
    # retention takes the old flat files and the first partitions; the type folder stays
    with freeze_time(start + timedelta(days=35, hours=12)):
        done = apply(catalog)
        assert sorted(done.deleted) == sorted(r.path for r in flat + day[:2])
        assert store_files(catalog.base_dir) == sorted(r.path for r in day[2:])
        assert sorted(os.listdir(catalog.base_dir / "explain" / "2025" / "11")) == ["07", "08"]
        assert_sound(catalog)
        assert run_cli("audit", "verify").exit_code == 0


# -- limits recommend a layout ---------------------------------------------------------------------------------


def _cadence(catalog: Catalog, days: int, every: timedelta, layout: str = "flat", kind: str = "explain",
             start: datetime = datetime(2025, 10, 1, tzinfo=timezone.utc)) -> None:  # fmt: skip
    """Rows of a report (``kind``) every ``every`` for ``days`` days from ``start``, recorded as written (limits read rows only)."""
    moment = start
    while moment < start + timedelta(days=days):
        with catalog.change() as tx:
            day_end = moment + timedelta(days=1)
            while moment < day_end:
                name = build_name(moment, "btc", kind, "json")
                tx.artifacts.record(PublishedFile(store_path(name, layout), kind, "btc", "json", moment, 10, "0" * 64))
                moment += every


def test_limits_recommend_day_for_a_report_every_five_minutes(catalog: Catalog, run_cli) -> None:  # type: ignore[no-untyped-def]
    """The issue's case: a report every 5 minutes kept 30 days is 8,640 files; with max_files_per_dir 8,000 flat is over."""
    catalog.settings = replace(catalog.settings, limits=replace(catalog.settings.limits, max_files_per_dir=8_000))
    with freeze_time("2025-10-31T00:00:00Z"):
        _cadence(catalog, 30, timedelta(minutes=5))
    (row,) = [r for r in limits(catalog) if r.scope == "folder"]
    assert row.files == 8_640 and row.level == "over" and row.advice is not None
    advice = row.advice
    assert advice.per_day == 288.0 and advice.retention_days == 30 and advice.recommended == "day"
    assert advice.per_folder == {"flat": 8_640, "month": 8_640, "day": 288}
    assert advice.text == ("explain/: 288 files/day, 8,640 over 30 days; layout: day keeps each folder under 8,000 "
                           "(288 per folder); month would hold 8,640 per folder (over the limit)")  # fmt: skip


def test_limits_say_whether_month_fits(catalog: Catalog, run_cli) -> None:  # type: ignore[no-untyped-def]
    """At the default 10,000: 8,640 per flat folder is a warning; month (8,640, retention caps it at 30 days) is near the limit too, so day."""
    with freeze_time("2025-10-31T00:00:00Z"):
        _cadence(catalog, 30, timedelta(minutes=5))
    (row,) = [r for r in limits(catalog) if r.scope == "folder"]
    assert row.level == "warn" and row.advice is not None and row.advice.recommended == "day"
    assert "month would hold 8,640 per folder (near the limit)" in row.advice.text
    table = run_cli("limits")
    assert table.exit_code == 0 and "remedy: explain/: 288 files/day, 8,640 over 30 days; layout: day" in table.output
    data = json.loads(run_cli("limits", "--format", "json").output)
    assert data["limits"][0]["layout_advice"]["recommended"] == "day"
    assert data["limits"][-1]["layout_advice"] is None  # the store row
    facts = status(catalog).to_dict()["limits"]
    assert facts == [{"name": "explain", "level": "warn", "layout_advice": row.advice.text}]
    catalog.settings = replace(catalog.settings, limits=replace(catalog.settings.limits, max_files_per_dir=300))
    assert layout_advice(catalog, "explain").recommended is None  # 288 a day is near even a day folder's 300
    assert "no layout fits: even day holds 288 per folder" in layout_advice(catalog, "explain").text


def test_limits_csv_carries_the_layout_advice_json_gives(catalog: Catalog, run_cli) -> None:  # type: ignore[no-untyped-def]
    """CSV: JSON's layout_advice object as layout_advice.* columns (per_folder one a layout), empty where JSON has null."""
    with freeze_time("2025-10-31T00:00:00Z"):
        _cadence(catalog, 30, timedelta(minutes=5))
    data = json.loads(run_cli("limits", "--format", "json").output)["limits"]
    result = run_cli("limits", "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [row["name"] for row in rows] == [row["name"] for row in data] and len(rows) == 2
    advice = data[0]["layout_advice"]
    flat = {f"layout_advice.{key}": value for key, value in advice.items() if key != "per_folder"}
    flat |= {f"layout_advice.per_folder.{layout}": n for layout, n in advice["per_folder"].items()}
    assert sorted(list(rows[0])[7:]) == sorted(flat)  # every field, no more
    assert {key: rows[0][key] for key in flat} == {key: "" if v is None else str(v) for key, v in flat.items()}
    assert rows[0]["layout_advice.recommended"] == "day" and rows[0]["layout_advice.text"].startswith("explain/: 288 files/day, 8,640")
    assert all(rows[1][key] == "" for key in flat)  # the store row: no advice
    status_json = json.loads(run_cli("status", "--format", "json").output)
    assert status_json["limits"] == [{"name": "explain", "level": "warn", "layout_advice": advice["text"]}]


def test_month_is_recommended_where_it_fits(catalog: Catalog) -> None:
    """A ledger an hour kept 90 days: 2,160 in one folder, 744 a month, 24 a day; at 1,000 month is the coarsest fit."""
    with freeze_time("2025-10-31T00:00:00Z"):
        _cadence(catalog, 30, timedelta(hours=1), kind="ledger")
    catalog.settings = replace(catalog.settings, limits=replace(catalog.settings.limits, max_files_per_dir=1_000))
    advice = layout_advice(catalog, "ledger")
    assert advice.per_folder == {"flat": 2_160, "month": 744, "day": 24} and advice.recommended == "month"
    assert advice.text == "ledger/: 24 files/day, 2,160 over 90 days; layout: month keeps each folder under 1,000 (744 per folder)"


def test_status_names_the_remedy_when_a_folder_is_over(catalog: Catalog) -> None:
    catalog.settings = replace(catalog.settings, limits=replace(catalog.settings.limits, max_files_per_dir=1_000))
    with freeze_time("2025-10-11T00:00:00Z"):
        _cadence(catalog, 10, timedelta(hours=1))  # 240 files, 24 a day
    catalog.settings = replace(catalog.settings, limits=replace(catalog.settings.limits, max_files_per_dir=200))
    found = status(catalog)
    message = next(a.message for a in found.attention if "over its limit" in a.message)
    assert "layout: month keeps each folder under 200" not in message  # 24 a day over 30 days is 720 a month
    assert "explain/: 24 files/day, 720 over 30 days; layout: day keeps each folder under 200 (24 per folder)" in message


@pytest.mark.parametrize("kinds", [("explain",), ("explain", "ledger")])
def test_limits_measure_each_types_write_rate_once_however_many_partitions_need_advice(
        catalog: Catalog, kinds: tuple[str, ...]) -> None:  # fmt: skip
    """Day partitions of a type all at warn: limits' statements do not grow with the number of partitions (only with
    types), and each partition's advice is what layout_advice alone gives."""
    catalog.settings = replace(catalog.settings, limits=replace(catalog.settings.limits, max_files_per_dir=4))
    counts = []
    for days, start in ((2, datetime(2025, 10, 1, tzinfo=timezone.utc)), (6, datetime(2025, 10, 3, tzinfo=timezone.utc))):
        with freeze_time("2025-10-31T00:00:00Z"):  # 2, then 4 more day folders of each type, 4 files each: at warn
            for kind in kinds:
                _cadence(catalog, 2 if days == 2 else 4, timedelta(hours=6), layout="day", kind=kind, start=start)
        with transactions(catalog) as seen:
            rows = limits(catalog)
        folders = [row for row in rows if row.scope == "folder"]
        assert len(folders) == days * len(kinds) and all(row.level == "warn" for row in folders)
        counts.append(sum(len(t["sql"]) for t in seen))
    assert counts[0] == counts[1]
    for row in folders:
        assert row.advice == layout_advice(catalog, row.name)


# -- hostile input ---------------------------------------------------------------------------------------------


def test_a_file_in_a_wrong_or_hand_made_partition_is_a_finding_never_adopted(catalog: Catalog) -> None:
    writer = switch(catalog, "day")
    with freeze_time(MOMENT):
        record = writer.write_json("explain", "btc", {"v": 1})
    base = catalog.base_dir
    planted = {
        "explain/2025/12/01/20251129-130000-eve-explain.json": "2025-11-29 in explain/2025/12/01/",
        "explain/2025/13/20251129-130000-eve-explain.json": "in explain/2025/13/",
        "explain/2025/20251129-130000-eve-explain.json": "in explain/2025/",
        "explain/2025/11/29/extra/20251129-130000-eve-explain.json": "in explain/2025/11/29/extra/",
    }
    for path in planted:
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_text('{"planted": true}')
    with freeze_time(MOMENT + timedelta(hours=2)):
        report = reconcile(catalog, grace=0, fix=True)
    found = {f.path: f for f in report.findings}
    assert set(found) == set(planted)
    for path, where in planted.items():
        assert found[path].cls == "foreign" and where in found[path].reason and "not adopted" in found[path].reason
        assert (base / path).exists()  # never touched
    assert [r.path for r in all_records(catalog)] == [record.path]


def test_a_name_on_disk_in_another_layouts_place_is_a_collision(catalog: Catalog) -> None:
    """A rowless file (reconcile has not adopted it yet) at the flat place of a name: the day writer refuses it."""
    flat = catalog.base_dir / "explain" / NAME
    flat.write_text('{"v": 0}')
    with freeze_time(MOMENT), pytest.raises(CollisionError, match=f"explain/{NAME} already exists"):
        switch(catalog, "day").write_json("explain", "btc", {"v": 1})
    assert not (catalog.base_dir / "explain" / "2025").exists() and all_records(catalog) == []
    flat.unlink()  # adopted and then gone: its row keeps the name (a deleted artifact's too)
    with catalog.change() as tx:
        tx.artifacts.record(PublishedFile(f"explain/{NAME}", "explain", "btc", "json", MOMENT, 8, "0" * 64))
    for layout in ("day", "month"):
        with freeze_time(MOMENT), pytest.raises(CollisionError, match=f"explain/{NAME} already exists"):
            switch(catalog, layout).write_json("explain", "btc", {"v": 1})
        with freeze_time(MOMENT), pytest.raises(CollisionError, match=f"explain/{NAME} already exists"), \
                switch(catalog, layout).batch() as batch:
            batch.write_json("explain", "btc", {"v": 1})


def test_a_catalogued_file_moved_to_a_wrong_partition_is_moved_back(catalog: Catalog) -> None:
    writer = switch(catalog, "day")
    with freeze_time(MOMENT):
        record = writer.write_json("explain", "btc", {"v": 1})
    base = catalog.base_dir
    wrong = base / "explain/2025/11/30" / NAME
    wrong.parent.mkdir()
    os.rename(base / record.path, wrong)
    report = reconcile(catalog, grace=0, fix=True)
    (moved,) = report.findings
    assert moved.cls == "moved" and moved.fixed is not None and moved.fixed.startswith(f"moved back to {record.path}")
    assert (base / record.path).exists() and not wrong.exists()
    assert_sound(catalog)


def test_a_symlinked_partition_folder_is_never_written_through(catalog: Catalog, tmp_path: Path) -> None:
    writer = switch(catalog, "day")
    with freeze_time(MOMENT - timedelta(days=1)):
        writer.write_json("explain", "btc", {"v": 0})  # explain/2025/11/28 and its parents exist
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (catalog.base_dir / "explain/2025/11/29").symlink_to(outside)
    with freeze_time(MOMENT), pytest.raises(StoreError, match=r"explain/2025/11/29/ is a symlink, not a folder"):
        writer.write_json("explain", "btc", {"v": 1})
    assert list(outside.iterdir()) == []
    (finding,) = reconcile(catalog, grace=0).findings
    assert finding.cls == "linked_folder" and finding.path == "explain/2025/11/29"


@pytest.mark.parametrize("path", [
    f"explain/2025/11/29/../../../../{NAME}", f"explain/2025/11/29/../29/{NAME}", f"/explain/2025/11/29/{NAME}",
    f"explain/2025/11/29//{NAME}", f"explain/2025/11/./29/{NAME}", f"quarantine/../explain/2025/11/29/{NAME}",
])  # fmt: skip
def test_no_partition_path_leaves_the_store(path: str) -> None:
    assert store_path_problem(path) is not None
    assert placements(path) == []


def test_the_web_view_shows_and_serves_artifacts_of_both_layouts(catalog: Catalog, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A store switched from flat to day: every artifact is listed, shown (with its inclusion proof and explain
    view) and downloaded by its store path, whichever folder holds it."""
    pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e '.[web]')")
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    from catalog.cryptorun.demo import make_report
    from catalog.ops.users import add_user
    from catalog.web import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from starlette.testclient import TestClient
    monkeypatch.delenv("CRYPTORUN_WEB_SECRET", raising=False)
    flat = AtomicWriter(catalog=catalog).write_json("ledger", "flat", {"cash": 1})
    report_json, _ = switch(catalog, "day").write_explain_report(make_report(3, seed=1), "scan")
    daily = AtomicWriter(catalog=catalog).write_json("ledger", "daily", {"cash": 2})
    assert daily.path.count("/") == 4 and flat.path.count("/") == 1
    api = TestClient(create_app(settings, catalog=catalog),
                     headers={"Authorization": f"Bearer viewer-1:{add_user(catalog, 'viewer-1', 'viewer')[1]}"})
    listed = {a["path"] for a in api.get("/api/artifacts?limit=100").json()["artifacts"]}
    assert {flat.path, report_json.path, daily.path} <= listed
    for record in (flat, daily, report_json):
        shown = api.get(f"/api/artifacts/{record.path}")
        assert shown.status_code == 200 and shown.json()["artifact"]["path"] == record.path, shown.text
        download = api.get(f"/download/{record.path}")
        assert download.status_code == 200 and download.content == (catalog.base_dir / record.path).read_bytes()
    assert api.get(f"/api/explain?path={report_json.path}").status_code == 200
    proof = api.get(f"/artifact/proof?path={daily.path}")
    assert proof.status_code == 200 and json.loads(proof.content)["path"] == daily.path
