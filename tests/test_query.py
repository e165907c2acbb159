"""Lookups and listings: ls filters, pagination, show, find, stats, config show, formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time

from catalog.cli import render as cli_module
from catalog.core import vocabulary as models
from catalog.core.errors import ValidationError
from catalog.core.store import Catalog
from catalog.ops import query
from catalog.ops.query import ArtifactQuery, iter_artifacts

from helpers import all_records, subcommands, tamper

T0 = datetime(2024, 1, 15, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def populated(writer, catalog: Catalog) -> Catalog:
    """Six artifacts over three days, of several types and prefixes."""
    plan = [
        (0, "explain", "momentum_scan", {"a": 1}),
        (1, "explain", "Momentum_scan", {"a": 22}),
        (2, "ledger", "portfolio", {"a": 333}),
        (24, "health", "metrics", {"a": 4444}),
        (25, "ledger", "momentum_x", {"a": 55555}),
        (48, "config", "active", {"a": 666666}),
    ]
    for hours, artifact_type, prefix, data in plan:
        writer.write_json(artifact_type, prefix, data, created_at=T0 + timedelta(hours=hours))
    return catalog


def prefixes(run_cli, *args: str) -> list[str]:
    result = run_cli("ls", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return [row["prefix"] for row in json.loads(result.stdout)["artifacts"]]


def test_ls_filters(run_cli, populated: Catalog) -> None:
    assert prefixes(run_cli) == ["active", "momentum_x", "metrics", "portfolio", "Momentum_scan", "momentum_scan"]
    assert prefixes(run_cli, "--type", "explain") == ["Momentum_scan", "momentum_scan"]
    assert prefixes(run_cli, "--type", "explain", "--type", "config") == ["active", "Momentum_scan", "momentum_scan"]
    assert prefixes(run_cli, "--prefix", "momentum_scan") == ["momentum_scan"]  # exact, case-sensitive
    assert prefixes(run_cli, "--prefix", "momentum*") == ["momentum_x", "momentum_scan"]  # glob, case-sensitive
    assert prefixes(run_cli, "--prefix", "?omentum_scan") == ["Momentum_scan", "momentum_scan"]
    assert prefixes(run_cli, "--prefix", "momentum%") == []  # SQL wildcards are literal
    assert prefixes(run_cli, "--prefix", "momentum_") == []
    assert prefixes(run_cli, "--status", "active", "--type", "config") == ["active"]
    assert prefixes(run_cli, "--status", "deleted") == []


def test_ls_time_window_is_utc_since_inclusive_until_exclusive(run_cli, populated: Catalog) -> None:
    assert prefixes(run_cli, "--since", "2024-01-16") == ["active", "momentum_x", "metrics"]
    assert prefixes(run_cli, "--since", "2024-01-15T11:00:00Z", "--until", "2024-01-16T10:00:00Z") == [
        "portfolio", "Momentum_scan",
    ]  # fmt: skip
    # a zone is honoured: 12:00+02:00 is 10:00Z
    assert prefixes(run_cli, "--until", "2024-01-15T12:00:00+02:00") == []
    assert prefixes(run_cli, "--until", "2024-01-15T12:00:01+02:00") == ["momentum_scan"]
    # no zone means UTC
    assert prefixes(run_cli, "--until", "2024-01-15 10:00:01") == ["momentum_scan"]


@pytest.mark.parametrize(
    "sort,expected",
    [
        ("newest", ["active", "momentum_x", "metrics", "portfolio", "Momentum_scan", "momentum_scan"]),
        ("oldest", ["momentum_scan", "Momentum_scan", "portfolio", "metrics", "momentum_x", "active"]),
        ("largest", ["active", "momentum_x", "metrics", "portfolio", "Momentum_scan", "momentum_scan"]),
        ("smallest", ["momentum_scan", "Momentum_scan", "portfolio", "metrics", "momentum_x", "active"]),
        ("path", ["active", "momentum_scan", "Momentum_scan", "metrics", "portfolio", "momentum_x"]),
    ],
)
def test_ls_sort(run_cli, populated: Catalog, sort: str, expected: list[str]) -> None:
    assert prefixes(run_cli, "--sort", sort) == expected


@pytest.mark.parametrize("sort", list(query.SORTS))
def test_keyset_pagination_visits_every_row_once(populated: Catalog, writer, sort: str) -> None:
    with freeze_time(T0):  # ties on created_at and size, broken by id
        for n in range(7):
            writer.write_json("health", f"tie{n}", {"n": n})
    everything = [r.path for r in iter_artifacts(populated, ArtifactQuery(sort=sort))]
    pages, after = [], None
    while True:
        page = [r.path for r in iter_artifacts(populated, ArtifactQuery(sort=sort, limit=3, after=after), batch=2)]
        if not page:
            break
        pages += page
        after = page[-1]
    assert pages == everything and len(set(pages)) == 13


@pytest.mark.parametrize("sort", ["oldest", "newest"])
def test_keyset_pages_compare_times_as_the_column_stores_them(
    populated: Catalog, sort: str, request: pytest.FixtureRequest
) -> None:
    """Whole-second times (no microseconds), compared under a frozen clock, and on PostgreSQL in a session whose
    time zone is not UTC: each page continues exactly after the last row (once bound untyped, a time compared as
    text of another form, and a page repeated forever)."""
    if not populated.db.is_sqlite:
        admin, name = request.getfixturevalue("pg_admin"), populated.db.engine.url.database
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET timezone TO \'America/New_York\'')
        populated.db.dispose()  # every connection opens anew, in the database's new time zone (kept ones too)
    everything = [r.path for r in iter_artifacts(populated, ArtifactQuery(sort=sort))]
    with freeze_time("2031-01-01"):
        paged = [r.path for r in iter_artifacts(populated, ArtifactQuery(sort=sort, limit=20), batch=1)]
    assert paged == everything and len(set(paged)) == 6


def test_ls_after_through_the_cli(run_cli, populated: Catalog) -> None:
    first = json.loads(run_cli("ls", "--limit", "4", "--format", "json").stdout)
    assert first["count"] == 4 and first["next_after"] == first["artifacts"][-1]["path"]
    second = json.loads(run_cli("ls", "--limit", "4", "--after", first["next_after"], "--format", "json").stdout)
    assert second["count"] == 2 and second["next_after"] is None
    assert [r["prefix"] for r in first["artifacts"] + second["artifacts"]] == prefixes(run_cli)


def test_json_and_csv_describe_the_same_rows(run_cli, populated: Catalog) -> None:
    as_json = json.loads(run_cli("ls", "--format", "json").stdout)["artifacts"]
    as_csv = list(csv.DictReader(io.StringIO(run_cli("ls", "--format", "csv").stdout)))
    as_ndjson = [json.loads(line) for line in run_cli("ls", "--format", "ndjson").stdout.splitlines()]
    assert as_ndjson == as_json
    assert len(as_csv) == len(as_json) == 6
    for j, c in zip(as_json, as_csv):
        assert list(c) == list(j)
        assert {k: "" if v is None else str(v) for k, v in j.items()} == c


def test_table_is_plain_when_piped_and_sizes_are_human(run_cli, populated: Catalog) -> None:
    table = run_cli("ls", "--type", "config").stdout.splitlines()
    assert len(table) == 2 and "…" not in table[1]
    assert table[1].split()[5:7] == ["16", "B"] or "B" in table[1]


def test_show_tells_the_whole_story(run_cli, populated: Catalog) -> None:
    (record,) = all_records(populated, ArtifactQuery(prefix="portfolio"))
    result = run_cli("show", record.path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    story = json.loads(result.stdout)
    assert story["artifact"]["sha256"] == record.sha256
    assert story["file"] == {"present": True, "size": record.size, "sha256": record.sha256, "mode": "-r--r--r--",
                             "matches": True, "problem": None}  # fmt: skip
    assert [(e["action"], e["status"]) for e in story["events"]] == [("write", "active")]
    table = run_cli("show", str(populated.base_dir / record.path)).stdout
    assert "matches the catalog" in table and "write" in table


def test_show_reports_a_changed_or_missing_file(run_cli, populated: Catalog) -> None:
    (record,) = all_records(populated, ArtifactQuery(prefix="metrics"))
    path = populated.base_dir / record.path
    path.chmod(0o644)
    path.write_text('{"a": 4445}\n')
    story = json.loads(run_cli("show", record.path, "--format", "json").stdout)
    assert story["file"]["present"] and not story["file"]["matches"]
    assert "DIFFERS from the catalog" in run_cli("show", record.path).stdout
    path.unlink()
    assert json.loads(run_cli("show", record.path, "--format", "json").stdout)["file"]["present"] is False


def test_find_by_full_hash_and_unique_prefix(run_cli, populated: Catalog, writer) -> None:
    (record,) = all_records(populated, ArtifactQuery(prefix="portfolio"))
    full = json.loads(run_cli("find", "--sha256", record.sha256, "--format", "json").stdout)
    assert full["artifact"]["path"] == record.path
    short = json.loads(run_cli("find", "--sha256", record.sha256[:8].upper(), "--format", "json").stdout)
    assert short["artifact"]["path"] == record.path
    twin = writer.write_json("ledger", "copy", {"a": 333}, created_at=T0 + timedelta(hours=2))
    both = json.loads(run_cli("find", "--sha256", record.sha256, "--format", "json").stdout)
    assert both["count"] == 2 and {m["artifact"]["path"] for m in both["matches"]} == {record.path, twin.path}


def test_find_without_a_match_is_an_empty_answer_in_every_format(run_cli, populated: Catalog) -> None:
    """Issue 14, case 14: no match exited 2 and printed nothing in JSON."""
    missing = "0" * 64
    result = run_cli("find", "--sha256", missing, "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"matches": [], "count": 0}, result.output
    table = run_cli("find", "--sha256", missing[:8])
    assert table.exit_code == 0 and table.stdout == "No artifact has a SHA-256 starting with 00000000.\n"
    assert query.find_sha256(populated, missing) == []


def test_ls_by_extension(run_cli, populated: Catalog, writer) -> None:
    """Issue 14, case 14: `ls` had no --ext."""
    writer.write_csv("ledger", "trades", [["a"], [1]], created_at=T0 + timedelta(hours=3))
    assert prefixes(run_cli, "--ext", "csv") == ["trades"]
    assert prefixes(run_cli, "--ext", "csv", "--ext", "json", "--type", "ledger") == ["momentum_x", "trades", "portfolio"]
    assert prefixes(run_cli, "--ext", "jsonl") == []
    assert [r.prefix for r in iter_artifacts(populated, ArtifactQuery(exts=("csv",)))] == ["trades"]
    with pytest.raises(ValidationError, match="unknown extension 'exe'"):
        ArtifactQuery(exts=("exe",))


def test_find_refuses_an_ambiguous_prefix(run_cli, populated: Catalog, monkeypatch) -> None:
    hashes = sorted(r.sha256 for r in all_records(populated))
    # the shortest prefix shared by two different hashes, if 4 digits are not already unique
    tamper(populated, *(f"UPDATE artifacts SET sha256 = 'abcd{h[4:]}' WHERE sha256 = '{h}'" for h in hashes[:2]))
    result = run_cli("find", "--sha256", "abcd")
    assert result.exit_code == 2 and "ambiguous" in result.stderr


def test_stats(run_cli, populated: Catalog) -> None:
    rows = json.loads(run_cli("stats", "--format", "json").stdout)["stats"]
    by = {(r["group"], r["name"]): (r["count"], r["bytes"]) for r in rows}
    sizes = {r.path: r.size for r in all_records(populated)}
    explain = sum(size for path, size in sizes.items() if path.startswith("explain/"))
    assert by[("type", "explain")] == (2, explain) and by[("folder", "explain")] == (2, explain)
    assert by[("type", "ledger")][0] == 2 and by[("type", "config")][0] == 1
    assert by[("status", "active")] == (6, sum(sizes.values()))
    assert by[("store", "on disk")] == (6, sum(sizes.values()))


def test_stats_of_an_empty_store(run_cli, catalog: Catalog) -> None:
    rows = json.loads(run_cli("stats", "--format", "json").stdout)
    assert rows == {"stats": [{"group": "store", "name": "on disk", "count": 0, "bytes": 0}], "count": 1}


def test_config_show_names_the_source_of_each_layer(run_cli, tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("formats:\n  json_indent: 4\n")
    monkeypatch.setenv("CRYPTORUN_LEDGER_RETENTION_DAYS", "120")
    result = run_cli("--config", str(config), "--base-dir", str(tmp_path / "flagged"), "config", "show",
                     "--format", "json", global_args=[])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = {r["key"]: r for r in json.loads(result.stdout)["settings"]}
    assert rows["formats.json_indent"] == {"key": "formats.json_indent", "value": 4, "source": f"file:{config}"}
    assert rows["retention.ledger.days"]["value"] == 120
    assert rows["retention.ledger.days"]["source"] == "env:CRYPTORUN_LEDGER_RETENTION_DAYS"
    assert rows["base_dir"]["value"] == str(tmp_path / "flagged") and rows["base_dir"]["source"] == "flag:--base-dir"
    assert rows["formats.csv_precision"]["source"] == "default"
    assert rows["retention.explain.days"] == {"key": "retention.explain.days", "value": 30, "source": "default"}


def test_cli_choices_come_from_the_vocabulary() -> None:
    from catalog.cli import cli

    ls = {p.name: p for p in subcommands(cli)["ls"].params}
    assert tuple(ls["statuses"].type.choices) == models.STATUSES
    assert tuple(ls["sort"].type.choices) == tuple(query.SORTS)
    assert tuple(ls["types"].type.choices) == models.TYPES
    assert tuple(ls["fmt"].type.choices) == models.FORMATS
    assert tuple(ls["exts"].type.choices) == models.EXTS


class CountingSink(io.TextIOBase):
    """Counts what is written and keeps none of it."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)

    def isatty(self) -> bool:
        return False


def _bulk_insert(catalog: Catalog, count: int, tag: str) -> None:
    from catalog.core.schema import ARTIFACTS

    rows, batch = [], 5000
    for n in range(count):
        when = T0 + timedelta(seconds=n)
        path = f"ledger/{when:%Y%m%d-%H%M%S}-bulk{tag}{n}-ledger.json"
        rows.append({"path": path, "original_path": path, "folder": "ledger", "type": "ledger", "prefix": f"bulk{n}",
                     "ext": "json", "created_at": when, "recorded_at": when, "size": n, "sha256": f"{tag}{n:063x}",
                     "status": "active", "retain_until": None})  # fmt: skip
        if len(rows) == batch:
            with catalog.db.write() as conn:
                conn.execute(ARTIFACTS.insert(), rows)
            rows = []
    if rows:
        with catalog.db.write() as conn:
            conn.execute(ARTIFACTS.insert(), rows)


def _peak_while_streaming(catalog: Catalog, fmt: str) -> tuple[int, int]:
    import tracemalloc

    sink = CountingSink()
    tracemalloc.start()
    try:
        cli_module.show_records(iter_artifacts(catalog), fmt, out=sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, sink.lines


@pytest.mark.parametrize("fmt,rows", [("ndjson", 100_000), ("json", 30_000)])
def test_listings_stream_with_flat_memory(catalog: Catalog, fmt: str, rows: int) -> None:
    """Peak memory while rendering many rows is no larger than for 10,000 (measured, not timed)."""
    _bulk_insert(catalog, 10_000, "a")
    small_peak, lines = _peak_while_streaming(catalog, fmt)
    assert lines >= 10_000
    _bulk_insert(catalog, rows - 10_000, "b")
    big_peak, lines = _peak_while_streaming(catalog, fmt)
    assert lines >= rows
    assert big_peak < small_peak * 1.25 + 500_000, (small_peak, big_peak)
