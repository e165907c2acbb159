"""Reconcile and verify: drift between disk and catalog is found, classified, repaired; runs are recorded."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from freezegun import freeze_time

from catalog.core import tlog
from catalog.core.store import Catalog
from catalog.cryptorun.demo import make_report
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.query import ArtifactQuery
from catalog.ops.reconcile import CLASSES, reconcile
from catalog.ops.verify import Scope, history, verify

from helpers import all_records, catalog_env, run_python, store_files

OLD = time.time() - 3600


def age(path: Path) -> None:
    os.utime(path, (OLD, OLD), follow_symlinks=False)


def writable(path: Path) -> Path:
    path.chmod(0o644)
    return path


@pytest.fixture
def store(writer: AtomicWriter, catalog: Catalog) -> dict[str, str]:
    """A store with one artifact of each kind the damage needs."""
    with freeze_time("2024-03-01 12:00:00"):
        pair_json, pair_csv = writer.write_explain_report(make_report(4, seed=1), "scan")
    paths = {"pair_json": pair_json.path, "pair_csv": pair_csv.path}
    for name in ("gone", "flipped", "truncated", "moved", "intact"):
        paths[name] = writer.write_json("ledger", name, {"name": name, "values": list(range(50))}).path
    paths["health"] = writer.write_json("health", "metrics", {"ok": True}).path
    return paths


def classes(report) -> Counter:  # type: ignore[no-untyped-def]
    return Counter(f.cls for f in report.findings)


def test_every_kind_of_damage_is_found_once_and_fixed(store: dict[str, str], catalog: Catalog, base_dir: Path, run_cli) -> None:
    b = base_dir
    (b / store["gone"]).unlink()
    flipped = writable(b / store["flipped"])
    data = bytearray(flipped.read_bytes())
    data[5] ^= 0x20
    flipped.write_bytes(bytes(data))
    truncated = writable(b / store["truncated"])
    truncated.write_bytes(truncated.read_bytes()[:-10])
    (b / "health" / "elsewhere").mkdir()
    moved_to = b / "health" / "elsewhere" / "by-hand.json"
    os.rename(b / store["moved"], moved_to)
    (b / "ledger" / "20240101-000000-dropped-ledger.json").write_text('{"dropped": true}\n')
    legacy = ["ledger/20240115-080000-portfolio.json", "health/20240115-hourly-metrics.json",
              "health/20240115-traces.jsonl", "config/20240115-active-config.json"]  # fmt: skip
    for name in legacy:
        (b / name).write_text('{"legacy": "' + name + '"}\n')
    temp = b / "ledger" / ".~20240101-000000-x-ledger.json~otherhost~4242~0123abcd.tmp"
    temp.write_text('{"partial')
    (b / "ledger" / "README.txt").write_text("not an artifact\n")
    (b / store["pair_csv"]).unlink()
    for path in b.rglob("*"):
        if path.is_file() and not path.name.startswith("catalog.sqlite"):
            age(path)
    before = set(store_files(b))

    report = reconcile(catalog, deep=True, grace=300)
    found = {(f.cls, f.path) for f in report.findings}
    expected = {
        ("missing", store["gone"]), ("modified", store["flipped"]), ("modified", store["truncated"]),
        ("moved", "health/elsewhere/by-hand.json"), ("orphan", "ledger/20240101-000000-dropped-ledger.json"),
        *(("orphan", name) for name in legacy), ("stale_temp", temp.relative_to(b).as_posix()),
        ("foreign", "ledger/README.txt"), ("half_pair", store["pair_csv"]),
    }  # fmt: skip
    assert found == expected
    assert len(report.findings) == len(expected)  # each exactly once
    quick = reconcile(catalog, deep=False, grace=300)
    assert ("modified", store["flipped"]) not in {(f.cls, f.path) for f in quick.findings}  # same size: --deep only
    assert ("modified", store["truncated"]) in {(f.cls, f.path) for f in quick.findings}

    result = run_cli("reconcile", "--deep", "--fix", "--format", "json")
    assert result.exit_code == 1  # drift was found (and fixed): schedulers notice
    fixed = json.loads(result.stdout)
    assert all(f["fixed"] for f in fixed["findings"] if f["class"] != "foreign")
    again = run_cli("reconcile", "--deep", "--format", "json")
    assert again.exit_code == 0, again.stdout
    after = json.loads(again.stdout)
    assert after["clean"] and [f["class"] for f in after["findings"]] == ["foreign"]
    assert run_cli("audit", "verify").exit_code == 0

    now = set(store_files(b))
    quarantined = {f"quarantine/{store['flipped']}", f"quarantine/{store['truncated']}"}
    # a row only ever holds an artifact's path: the file moved by hand to another name goes back (issue 15)
    assert before - now == {temp.relative_to(b).as_posix(), store["flipped"], store["truncated"],
                            "health/elsewhere/by-hand.json"}  # fmt: skip
    assert now - before == quarantined | {store["pair_csv"], store["moved"]}  # the CSV was regenerated from its JSON
    rows = {r.path: r for r in all_records(catalog, ArtifactQuery(sort="path"))}
    assert rows[store["gone"]].status == "missing"
    assert rows[store["moved"]].status == "active" and "health/elsewhere/by-hand.json" not in rows
    assert {rows[p].status for p in quarantined} == {"quarantined"}
    assert rows[store["pair_csv"]].status == "active"
    assert rows["health/20240115-hourly-metrics.json"].type == "health"
    assert rows["health/20240115-hourly-metrics.json"].created_at.isoformat() == "2024-01-15T00:00:00+00:00"
    assert rows["ledger/20240115-080000-portfolio.json"].prefix == "portfolio"
    adopt = [e for e in catalog.events() if e.action == "adopt" and e.path == "config/20240115-active-config.json"]
    assert adopt and adopt[0].details["precision"] == "day" and adopt[0].details["legacy_name"] is True


def test_a_clean_store_says_so(store, run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("reconcile", "--deep")
    assert result.exit_code == 0 and result.stdout.startswith("Clean: 8 files and 8 catalogued artifacts agree")
    assert result.stderr == ""  # no progress bar in a pipe
    as_json = json.loads(run_cli("reconcile", "--format", "json").stdout)
    assert as_json["clean"] and as_json["findings"] == [] and set(as_json["counts"]) == set(CLASSES)


def test_young_files_are_left_to_their_writers(store, catalog: Catalog, base_dir: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    (base_dir / "ledger" / "20240101-000000-fresh-ledger.json").write_text("{}\n")
    own_temp = base_dir / "ledger" / f".~20240101-000000-y-ledger.json~{__import__('catalog.core.names').core.names.host_name()}~{os.getpid()}~ab12.tmp"
    own_temp.write_text("{")
    result = run_cli("reconcile", "--fix", "--format", "json")
    assert result.exit_code == 0  # in flight is not drift
    assert Counter(f["class"] for f in json.loads(result.stdout)["findings"]) == {"in_flight": 2}
    assert own_temp.exists() and len(all_records(catalog)) == 8
    scripted = run_cli("reconcile", "--fix", "--grace", "0", "--format", "json")
    assert scripted.exit_code == 1
    # --grace 0: the orphan is adopted, but the temp of a writer alive on this host is never removed
    assert Counter(f["class"] for f in json.loads(scripted.stdout)["findings"]) == {"orphan": 1, "in_flight": 1}
    assert len(all_records(catalog)) == 9 and own_temp.exists()


def test_a_missing_file_that_comes_back_is_restored(store, catalog: Catalog, base_dir: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    path = base_dir / store["intact"]
    saved = path.read_bytes()
    path.unlink()
    assert run_cli("reconcile", "--fix").exit_code == 1
    assert catalog.find_path(store["intact"]).status == "missing"
    path.write_bytes(saved)
    result = run_cli("reconcile", "--fix", "--format", "json")
    assert [f["class"] for f in json.loads(result.stdout)["findings"]] == ["restored"]
    assert catalog.find_path(store["intact"]).status == "active"
    assert run_cli("reconcile", "--deep").exit_code == 0 and catalog.audit_verify().ok


def test_a_lone_json_of_a_pair_loses_its_csv_to_quarantine(store, catalog: Catalog, base_dir: Path) -> None:  # type: ignore[no-untyped-def]
    (base_dir / store["pair_json"]).unlink()
    report = reconcile(catalog, fix=True)
    assert [(f.cls, f.path) for f in report.findings] == [("half_pair", store["pair_csv"])]
    assert catalog.find_path(store["pair_json"]).status == "missing"
    assert catalog.find_path(f"quarantine/{store['pair_csv']}").status == "quarantined"
    assert reconcile(catalog, deep=True).drift == [] and catalog.audit_verify().ok


def test_an_orphan_csv_without_its_json_is_quarantined(catalog: Catalog, base_dir: Path) -> None:
    lone = base_dir / "explain" / "20240101-000000-lone-explain.csv"
    lone.write_text("symbol\n")
    age(lone)
    report = reconcile(catalog, fix=True)
    assert [(f.cls, f.path) for f in report.findings] == [("half_pair", "explain/20240101-000000-lone-explain.csv")]
    assert not lone.exists() and (base_dir / "quarantine" / "explain" / lone.name).exists()


KILL = """
import os, signal
import catalog.core.fs as w
from catalog.cryptorun.demo import make_report
calls = []
def hook(point):
    calls.append(point)
    if point == {point!r} and calls.count(point) == {nth}:
        os.kill(os.getpid(), signal.SIGKILL)
w.FAULT_HOOK = hook
from catalog.cryptorun.writer import AtomicWriter
with AtomicWriter() as writer:
    writer.write_explain_report(make_report(3, seed=2), "crashed")
"""


@pytest.mark.parametrize(
    "point,nth,expected",
    # both files are staged (temp written) before either is linked: between the links the CSV's temp is left too
    [("temp_written", 1, {"stale_temp"}), ("published", 1, {"half_pair", "stale_temp"}), ("published", 2, {"orphan"})],
    ids=["before-publishing", "between-the-pair", "before-the-commit"],
)
def test_reconcile_repairs_what_a_killed_writer_left(catalog: Catalog, base_dir: Path, catalog_url, point, nth, expected) -> None:  # type: ignore[no-untyped-def]
    result = run_python(KILL.format(point=point, nth=nth), catalog_env(base_dir, catalog_url))
    assert result.returncode == -9, result.stderr
    report = reconcile(catalog, deep=True, fix=True, grace=0)
    assert {f.cls for f in report.findings} == expected
    assert reconcile(catalog, deep=True, grace=0).findings == [] and catalog.audit_verify().ok
    rows = all_records(catalog)
    if point == "published":  # nothing fully written is lost: the report is in the catalog as a linked pair
        assert len(rows) == 2 and rows[0].pair_id == rows[1].pair_id is not None
        assert {r.ext for r in rows} == {"json", "csv"}
    else:
        assert rows == [] and store_files(base_dir) == []


# -- verify ------------------------------------------------------------------------------


@pytest.fixture
def many(writer: AtomicWriter, catalog: Catalog) -> list:  # type: ignore[type-arg]
    return [writer.write_json("health", f"h{n}", {"n": n}) for n in range(23)]


def test_subsets_cover_every_artifact_exactly_once(many, catalog: Catalog) -> None:  # type: ignore[no-untyped-def]
    seen: Counter = Counter()
    for k in range(1, 8):
        run = verify(catalog, Scope(subset=(k, 7)))
        assert run.clean
        with catalog.db.read() as conn:
            from sqlalchemy import select

            from catalog.core.schema import VERIFY_RESULTS as RESULTS

            seen.update(r.artifact_id for r in conn.execute(select(RESULTS.c.artifact_id).where(RESULTS.c.run_id == run.run_id)))
    assert seen == Counter({r.id: 1 for r in many})


@pytest.mark.parametrize("batch", [1, 4, 23, 500])
def test_every_batch_of_results_is_recorded(many, catalog: Catalog, monkeypatch: pytest.MonkeyPatch,
                                            batch: int) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """Each batch's results are written in a unit of work of their own, the last one with the run's end."""
    from sqlalchemy import select

    from catalog.core.schema import VERIFY_RESULTS as RESULTS
    from catalog.ops import verify as verify_module

    monkeypatch.setattr(verify_module, "BATCH", batch)
    run = verify(catalog, Scope(subset=(1, 2)))
    with catalog.db.read() as conn:
        recorded = [r.artifact_id for r in conn.execute(select(RESULTS.c.artifact_id).where(RESULTS.c.run_id == run.run_id))]
    assert sorted(recorded) == [r.id for r in many if r.id % 2 == 0] and run.checked == len(recorded) > 0
    assert [(r.checked, r.ok) for r in history(catalog, 1)] == [(run.checked, run.checked)]


def test_samples_are_reproducible_with_a_seed(many, catalog: Catalog) -> None:  # type: ignore[no-untyped-def]
    def picked(seed: int) -> set[int]:
        run = verify(catalog, Scope(sample=0.3, seed=seed))
        with catalog.db.read() as conn:
            from sqlalchemy import select

            from catalog.core.schema import VERIFY_RESULTS as RESULTS

            return {r.artifact_id for r in conn.execute(select(RESULTS.c.artifact_id).where(RESULTS.c.run_id == run.run_id))}

    assert picked(7) == picked(7)
    assert picked(7) != picked(8)
    assert 0 < len(picked(7)) < len(many)


def test_failures_are_recorded_and_exit_1(many, catalog: Catalog, base_dir: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    bad = writable(base_dir / many[3].path)
    bad.write_text('{"n": 99}')
    (base_dir / many[4].path).unlink()
    result = run_cli("verify", "--workers", "4")
    assert result.exit_code == 1
    assert "1 failed, 1 missing of 23 checked" in result.stdout and "catalog reconcile --deep" in result.stdout
    failures = [e for e in catalog.events() if e.action == "verify_failure"]
    assert {(e.path, e.details["outcome"]) for e in failures} == {(many[3].path, "failed"), (many[4].path, "missing")}
    (run,) = history(catalog)
    assert (run.checked, run.ok, run.failed, run.missing) == (23, 21, 1, 1)
    listed = json.loads(run_cli("verify", "history", "--format", "json").stdout)["runs"]
    assert listed[0]["run_id"] == run.run_id
    assert [e.action for e in catalog.events()][-1] == "verify_run"
    assert catalog.audit_verify().ok


def test_verify_scope_by_type_and_time(many, writer: AtomicWriter, catalog: Catalog, run_cli) -> None:  # type: ignore[no-untyped-def]
    with freeze_time("2020-01-01"):
        writer.write_json("ledger", "old", {})
    assert json.loads(run_cli("verify", "--type", "ledger", "--format", "json").stdout)["checked"] == 1
    assert json.loads(run_cli("verify", "--since", "2021-01-01", "--format", "json").stdout)["checked"] == 23
    ok = run_cli("verify")
    assert ok.exit_code == 0 and ok.stdout.startswith("Verified: all 24 files checked match") and ok.stderr == ""


def test_verify_leaves_a_checkpoint_when_a_folder_is_configured(many, catalog: Catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    catalog.settings = replace(catalog.settings, checkpoint_dir=tmp_path / "checkpoints")
    verify(catalog, Scope(subset=(1, 5)))
    (checkpoint,) = (tmp_path / "checkpoints").glob("checkpoint-*.txt")
    assert tlog.parse_checkpoint(checkpoint.read_bytes()).size == list(catalog.events())[-1].seq


def test_a_progress_bar_on_a_terminal_and_none_in_a_pipe(many, catalog: Catalog, base_dir: Path, catalog_url) -> None:  # type: ignore[no-untyped-def]
    import pty
    import select
    import subprocess
    import sys

    master, slave = pty.openpty()
    argv = [sys.executable, "-c", "from catalog.cli import main; main()", "verify"]
    proc = subprocess.Popen(argv, env=catalog_env(base_dir, catalog_url), stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    assert b"verify" in seen and b"23/23 files" in seen  # the bar, on the terminal
    assert out.decode().startswith("Verified: all 23 files")  # stdout stays plain
