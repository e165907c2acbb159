from __future__ import annotations

import csv
import hashlib
import io
import json
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import click
import pytest
from freezegun import freeze_time

from catalog.cli import cli
from catalog.core.names import parse_name
from catalog.core.store import Catalog
from catalog.core.vocabulary import HEAD_REVISION

from helpers import all_records, catalog_env, store_files, subcommands, write_events

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.json"
    path.write_bytes(b'{"meta": {"version": "v3.2.1"}, "universe": []}')
    return path


def test_put_then_ls_json_shows_the_row(run_cli, catalog: Catalog, report: Path, base_dir: Path) -> None:
    with freeze_time("2025-12-31 23:59:59"):
        put = run_cli("put", str(report), "--type", "explain", "--prefix", "momentum_scan", "--format", "json")
    assert put.exit_code == 0, put.stderr
    listed = run_cli("ls", "--format", "json")
    assert listed.exit_code == 0
    payload = json.loads(listed.stdout)
    assert payload["count"] == 1 and json.loads(put.stdout)["artifacts"] == payload["artifacts"]
    (row,) = payload["artifacts"]
    data = report.read_bytes()
    assert row["path"] == "explain/20251231-235959-momentum_scan-explain.json"
    assert row["sha256"] == hashlib.sha256(data).hexdigest() and row["size"] == len(data)
    assert (base_dir / row["path"]).read_bytes() == data  # stored unchanged
    name = parse_name(Path(row["path"]).name)
    assert (name.type, name.prefix) == ("explain", "momentum_scan")
    assert row["created_at"] == "2025-12-31T23:59:59Z" == name.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_put_from_stdin_needs_ext(run_cli, catalog: Catalog) -> None:
    ok = run_cli("put", "-", "--type", "health", "--prefix", "traces", "--ext", "jsonl", input='{"span": 1}\n{"span": 2}\n')
    assert ok.exit_code == 0, ok.stderr
    assert "-traces-health.jsonl" in ok.stdout
    missing = run_cli("put", "-", "--type", "health", "--prefix", "traces", input="{}")
    assert missing.exit_code == 2 and "needs --ext" in missing.stderr


def test_ls_filters_and_limits(run_cli, catalog: Catalog, writer) -> None:
    with freeze_time("2024-01-01 00:00:00"):
        writer.write_json("ledger", "old", {})
    with freeze_time("2024-01-02 00:00:00"):
        writer.write_json("health", "new", {})
        writer.write_json("ledger", "newer", {})
    rows = json.loads(run_cli("ls", "--format", "json").stdout)["artifacts"]
    assert [r["prefix"] for r in rows] == ["newer", "new", "old"]  # newest first
    page = json.loads(run_cli("ls", "--type", "ledger", "--limit", "1", "--format", "json").stdout)
    assert [r["prefix"] for r in page["artifacts"]] == ["newer"] and page["next_after"] == page["artifacts"][0]["path"]
    table = run_cli("ls").stdout
    assert table.splitlines()[0].split() == ["path", "type", "prefix", "created_at", "size", "sha256", "status"]
    assert table.splitlines()[1].split()[3:5] == ["2024-01-02", "00:00:00Z"]


def test_ls_empty_is_an_empty_list(run_cli, catalog: Catalog) -> None:
    assert json.loads(run_cli("ls", "--format", "json").stdout) == {"artifacts": [], "count": 0, "next_after": None}


def test_get_returns_the_bytes(run_cli, catalog: Catalog, writer, tmp_path: Path) -> None:
    record = writer.write_csv("ledger", "trades", [["a", "b"], [1, 2.5]])
    out = run_cli("get", record.path)
    assert out.exit_code == 0 and out.stdout_bytes == b"a,b\n1,2.500000\n"
    target = tmp_path / "copy.csv"
    assert run_cli("get", record.path, "-o", str(target)).exit_code == 0
    assert target.read_bytes() == b"a,b\n1,2.500000\n"
    absolute = run_cli("get", str(catalog.base_dir / record.path))
    assert absolute.stdout_bytes == b"a,b\n1,2.500000\n"


def test_get_to_dash_prints_the_bytes_as_without_o_and_makes_no_file(run_cli, catalog: Catalog, writer) -> None:
    record = writer.write_csv("ledger", "trades", [["a", "b"], [1, 2.5]])
    result = run_cli("get", record.path, "-o", "-")
    assert (result.exit_code, result.stdout_bytes, result.stderr) == (0, b"a,b\n1,2.500000\n", "")
    assert not Path("-").exists()


def test_get_refuses_tampered_bytes_and_writes_nothing(run_cli, catalog: Catalog, writer, tmp_path: Path) -> None:
    record = writer.write_csv("ledger", "trades", [["a"], [1]])
    victim = catalog.base_dir / record.path
    victim.chmod(0o644)
    victim.write_bytes(b"a\n2\n")  # same size, other bytes
    target = tmp_path / "copy.csv"
    result = run_cli("get", record.path, "-o", str(target))
    assert result.exit_code == 1
    assert result.stderr.count("Error:") == 1 and "no longer matches the catalog" in result.stderr
    assert not target.exists() and list(tmp_path.glob(".catalog-get-*")) == []
    piped = run_cli("get", record.path)
    assert piped.exit_code == 1 and piped.stdout_bytes == b""


def one_error(result, fragment: str, code: int = 2) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


def nothing_written(catalog: Catalog, base_dir: Path, before: list[str] | None = None) -> None:
    assert store_files(base_dir) == (before or [])
    assert all_records(catalog) == [] if not before else len(all_records(catalog)) == len(before)
    assert len(write_events(catalog)) == len(before or [])


HOSTILE_PREFIXES = {
    "traversal": "../../etc/passwd",
    "absolute": "/tmp/x",
    "nul": "a\x00b",
    "newline": "a\nb",
    "lookalike": "scan\u2010x",
    "10kB": "p" * 10_000,
    "shell": "$(rm -rf ~)",
    "dotfile": ".bashrc",
    "empty": "",
}


@pytest.mark.parametrize("prefix", list(HOSTILE_PREFIXES.values()), ids=list(HOSTILE_PREFIXES))
def test_put_refuses_hostile_prefixes(run_cli, catalog: Catalog, report: Path, base_dir: Path, prefix: str) -> None:
    result = run_cli("put", str(report), "--type", "explain", "--prefix", prefix)
    one_error(result, "prefix")
    nothing_written(catalog, base_dir)


def test_put_collision(run_cli, catalog: Catalog, report: Path, base_dir: Path) -> None:
    with freeze_time("2024-01-01 00:00:00"):
        assert run_cli("put", str(report), "--type", "explain", "--prefix", "p").exit_code == 0
        before = store_files(base_dir)
        result = run_cli("put", str(report), "--type", "explain", "--prefix", "p")
    one_error(result, "already exists")
    nothing_written(catalog, base_dir, before)


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["put", "{missing}", "--type", "ledger", "--prefix", "p"], "does not exist"),
        (["put", "{folder}", "--type", "ledger", "--prefix", "p", "--ext", "json"], "is a folder"),
        (["put", "{empty}", "--type", "ledger", "--prefix", "p"], "is empty"),
        (["put", "{garbage}", "--type", "ledger", "--prefix", "p"], "not valid"),
        (["put", "{nan}", "--type", "ledger", "--prefix", "p"], "NaN is not allowed"),
        (["put", "{report}", "--type", "trades", "--prefix", "p"], "'trades' is not one of"),
        (["put", "{report}", "--type", "ledger", "--prefix", "p", "--ext", "exe"], "'exe' is not allowed"),
        (["put", "{noext}", "--type", "ledger", "--prefix", "p"], "has no extension"),
        (["ls", "--limit", "-1"], "-1 is not in the range"),
        (["ls", "--format", "xml"], "'xml' is not one of"),
        (["get", "explain/nothing-here.json"], "no artifact at explain/nothing-here.json"),
        (["get", "/etc/passwd"], "outside the store"),
        (["get", "{stored}", "-o", "{store_file}"], "inside the store"),
        (["get", "{stored}", "-o", "{no_dir}/x"], "does not exist"),
    ],
    ids=["missing", "folder", "empty", "garbage", "nan", "bad-type", "bad-ext", "no-ext", "limit", "format",
         "get-missing", "get-outside", "get-into-store", "get-no-folder"],
)  # fmt: skip
def test_bad_input_gets_one_error_line_and_writes_nothing(run_cli, catalog: Catalog, writer, tmp_path: Path, base_dir: Path, args, fragment) -> None:
    stored = writer.write_json("ledger", "existing", {"a": 1})
    before = store_files(base_dir)
    paths = {
        "missing": tmp_path / "nope.json", "folder": tmp_path, "empty": tmp_path / "empty.json",
        "garbage": tmp_path / "garbage.json", "nan": tmp_path / "nan.json", "report": tmp_path / "r.json",
        "noext": tmp_path / "README", "stored": stored.path, "store_file": base_dir / "ledger" / "x.json",
        "no_dir": tmp_path / "no" / "dir",
    }  # fmt: skip
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "garbage.json").write_bytes(bytes(range(256)))
    (tmp_path / "nan.json").write_text('{"x": NaN}')
    (tmp_path / "r.json").write_text("{}")
    (tmp_path / "README").write_text("{}")
    result = run_cli(*[a.format(**paths) for a in args])
    one_error(result, fragment)
    nothing_written(catalog, base_dir, before)


@pytest.mark.parametrize(
    "config_text,fragment",
    [
        ("retention: [unclosed\n", "malformed YAML"),
        ("colour: blue\n", "unknown key 'colour'"),
        ("retention:\n  explain:\n    days: -5\n", "key 'retention.explain.days'"),
        ("environment: [development]\n", "key 'environment' must be one of"),
        ("retention:\n  explain:\n    days: 3\n    days: 5\n", "key 'days' at line 4, column 5 is given twice"),
    ],
    ids=["malformed", "unknown-key", "negative-retention", "list-environment", "duplicate-key"],
)
def test_bad_config_files_are_one_error_line(run_cli, catalog: Catalog, report: Path, tmp_path: Path, base_dir: Path, config_text, fragment) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(config_text)
    result = run_cli("--config", str(config), "put", str(report), "--type", "explain", "--prefix", "p",
                     global_args=run_cli.base_args)  # fmt: skip
    one_error(result, fragment)
    assert str(config) in result.stderr
    nothing_written(catalog, base_dir)


def test_a_negative_retention_from_the_environment(run_cli, catalog: Catalog, report: Path, base_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("CRYPTORUN_EXPLAIN_RETENTION_DAYS", "-3")
    result = run_cli("put", str(report), "--type", "explain", "--prefix", "p")
    one_error(result, "env:CRYPTORUN_EXPLAIN_RETENTION_DAYS")
    nothing_written(catalog, base_dir)


def test_a_base_dir_that_is_a_file(run_cli, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for args in (["init"], ["ls"]):
        one_error(run_cli(*args, global_args=["--base-dir", str(tmp_path / "file")]), "is a file, not a folder")


def test_an_unexpected_bug_is_one_line_unless_debugging(run_cli, catalog: Catalog, monkeypatch) -> None:
    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyError("surprise")

    monkeypatch.setattr("catalog.ops.query.iter_artifacts", boom)
    one_error(run_cli("ls"), "internal error (KeyError")
    with pytest.raises(KeyError):
        run_cli("--debug", "ls", global_args=run_cli.base_args)


def test_version_shows_the_schema_revision(run_cli) -> None:
    result = run_cli("--version", global_args=[])
    assert result.exit_code == 0 and f"(schema {HEAD_REVISION})" in result.stdout


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    for name, command in subcommands(group).items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [p for p, _ in _commands(cli)], ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example(run_cli, path) -> None:
    result = run_cli(*path, "--help", global_args=[])
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "catalog " in result.stdout.split("Example:")[1]


def test_the_root_lists_each_command_with_its_own_short_help() -> None:
    import importlib
    import pkgutil

    import catalog.cli
    from catalog.cli.commands import COMMANDS

    for module in pkgutil.iter_modules(catalog.cli.__path__):  # a command in a module the table misses shows here
        importlib.import_module(f"catalog.cli.{module.name}")
    assert sorted(COMMANDS) == sorted(cli.commands) == sorted(subcommands(cli))
    for name, (modules, text) in COMMANDS.items():
        command = cli.commands[name]
        assert command.callback.__module__.removeprefix("catalog.cli.") in modules.split(), name
        for limit in (20, 45, 70, 10**6):  # as `catalog --help` shortens it at any width
            assert click.Command(name, help=text).get_short_help_str(limit) == command.get_short_help_str(limit), name


def test_init_twice(run_cli, base_dir: Path) -> None:
    first = run_cli("init")
    assert first.exit_code == 0 and f"created at schema {HEAD_REVISION}" in first.stdout
    second = run_cli("init")
    assert second.exit_code == 0 and f"already at schema {HEAD_REVISION}" in second.stdout


def test_demo_writes_every_family_into_the_catalog(run_cli, base_dir: Path) -> None:
    result = run_cli("demo", "--seed", "1")
    assert result.exit_code == 0, result.stderr
    assert "audit log of 8 events verifies" in result.stdout  # schema_upgrade + 7 writes
    with Catalog.open(base_dir) if run_cli.base_args[2:] == [] else _open(run_cli) as catalog:
        records = all_records(catalog)
        by_name = {r.path.rsplit("-", 1)[0].split(".")[-1] + "." + r.ext: r for r in records}
        assert {name: r.type for name, r in by_name.items()} == {
            "scan.json": "explain", "scan.csv": "explain", "portfolio.json": "ledger", "executions.csv": "ledger",
            "metrics.json": "health", "traces.jsonl": "health", "active.json": "config",
        }  # fmt: skip
        assert sorted(r.path for r in records) == store_files(base_dir)
        for record in records:
            assert record.path in result.stdout and record.sha256[:12] in result.stdout
        from catalog.cryptorun.explain import ExplainReport

        report = ExplainReport.from_json((base_dir / by_name["scan.json"].path).read_bytes())
        assert report.meta.assets_count == 100 and 0 < report.meta.included_count < 100
        trades = (base_dir / by_name["executions.csv"].path).read_text().splitlines()
        assert len(trades) == 1001
    again = run_cli("demo", "--seed", "1", "--assets", "3")  # a second run in the same second never collides
    assert again.exit_code == 0, again.stderr


def _open(run_cli):  # type: ignore[no-untyped-def]
    return Catalog.open(run_cli.base_args[1], catalog_url=run_cli.base_args[3])


@pytest.mark.parametrize(
    "url,fragment",
    [
        ("nonsense", "flag:--catalog-url: key 'catalog_url' must be a database URL"),
        ("mysql://u@h/db", "must be a sqlite:/// or postgresql+psycopg:// URL"),
        ("sqlite://", "must be a database URL"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot reach catalog"),
    ],
    ids=["no-scheme", "mysql", "sqlite-no-path", "unreachable"],
)
def test_bad_catalog_urls(run_cli, base_dir: Path, url: str, fragment: str) -> None:
    global_args = ["--base-dir", str(base_dir), "--catalog-url", url]
    one_error(run_cli("init", global_args=global_args), fragment)
    assert not base_dir.exists()  # init reached nothing, so it created nothing
    base_dir.mkdir()
    one_error(run_cli("ls", global_args=global_args), fragment)


# -- issue 14: a hostile world (pipes, terminals, traps) -----------------------------------

ROOT = Path(__file__).resolve().parents[1]
SAME = "5" * 64  # the SHA-256 every bulk row claims


def _rows_without_files(catalog: Catalog, count: int) -> None:
    """``count`` ledger rows (no files, no events) with long paths and one shared SHA-256: output by the 100 KiB."""
    from datetime import timedelta, timezone

    from catalog.core.schema import ARTIFACTS

    t0 = datetime(2024, 1, 15, tzinfo=timezone.utc)
    rows = []
    for n in range(count):
        when = t0 + timedelta(seconds=n)
        path = f"ledger/{when:%Y%m%d-%H%M%S}-{'p' * 58}{n:04d}-ledger.json"
        rows.append({"path": path, "original_path": path, "folder": "ledger", "type": "ledger", "prefix": path[23:85],
                     "ext": "json", "created_at": when, "recorded_at": when, "size": n, "sha256": SAME,
                     "status": "active", "retain_until": None})  # fmt: skip
    with catalog.db.write() as conn:
        conn.execute(ARTIFACTS.insert(), rows)


def _piped(base_dir: Path, catalog_url: str | None, args: str, reader: str) -> subprocess.CompletedProcess[str]:
    env = {**catalog_env(base_dir, catalog_url), "PYTHONPATH": str(ROOT)}
    command = f"{shlex.quote(sys.executable)} -c 'from catalog.cli import main; main()' {args}"
    return subprocess.run(["bash", "-c", f"set -o pipefail; {command} | {reader} > /dev/null"], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


PIPELINES = [
    ("ls --format ndjson", "head -1"),
    ("ls", "head -2"),
    ("ls --format csv", "head -1"),
    ("find --sha256 " + SAME, "head -3"),
    ("get {big}", "head -c 10"),
]


def test_a_reader_that_closes_the_pipe_early_is_not_an_error(catalog: Catalog, writer, base_dir: Path, catalog_url) -> None:  # type: ignore[no-untyped-def]
    """Issue 14, case 5: `catalog ls --format ndjson | head -1` said "Error: Broken pipe" (or exited 1): pipefail broke.

    Each output is far larger than a pipe holds, so the reader is gone while
    the command still writes. The answer is the command's own: 0, or 1 when
    it found a problem before the reader left (verify, with every file missing).
    """
    big = writer.write_bytes("health", "big", b"x" * 2_000_000, "txt")
    _rows_without_files(catalog, 600)
    for args, reader in PIPELINES:
        result = _piped(base_dir, catalog_url, args.format(big=big.path), reader)
        assert (result.returncode, result.stderr) == (0, ""), (args, result.returncode, result.stderr)
    found = _piped(base_dir, catalog_url, "verify --format ndjson", "head -1")
    assert (found.returncode, found.stderr) == (1, ""), found.stderr  # the missing files, not a quiet 0


def test_no_command_shows_the_help(run_cli) -> None:
    """Issue 14, case 14: `catalog` alone exited 2 with "Error: Usage: …"."""
    for args in ([], ["hold"], ["policy", "floor"]):
        result = run_cli(*args, global_args=[])
        assert result.exit_code == 0 and result.stderr == "", result.output
        assert result.stdout.startswith("Usage: ") and "Commands:" in result.stdout


def _complete(run_cli, words: str):  # type: ignore[no-untyped-def]
    env = {"_CATALOG_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
    result = run_cli.runner.invoke(cli, [], env=env, prog_name="catalog", catch_exceptions=False)
    return [tuple(line.split(",", 1)) for line in result.stdout.splitlines() if line]


def test_shell_completion_keeps_file_names_and_completes_catalog_paths(run_cli, catalog: Catalog, writer) -> None:
    """Issue 14, case 14: bash completion replaced bash's own file names (and knew no catalog path)."""
    source = run_cli.runner.invoke(cli, [], env={"_CATALOG_COMPLETE": "bash_source"}, prog_name="catalog").stdout
    assert "complete -o nosort -o default -F _catalog_completion catalog" in source  # nothing offered: file names
    ledger = writer.write_json("ledger", "portfolio", {"cash": 1})
    writer.write_json("health", "metrics", {"n": 1})
    where = " ".join(run_cli.base_args)
    assert _complete(run_cli, f"catalog {where} get led") == [("plain", ledger.path)]
    assert _complete(run_cli, f"catalog {where} show ledger/") == [("plain", ledger.path)]
    assert _complete(run_cli, f"catalog {where} put rep") == [("file", "rep")]
    assert _complete(run_cli, f"catalog {where} explain show led") == [("file", "led"), ("plain", ledger.path)]
    assert _complete(run_cli, f"catalog {where} get -o ou") == [("file", "ou")]
    assert _complete(run_cli, "catalog --base-dir /nonexistent/store get led") == []  # quietly nothing


def test_inside_a_store_the_error_says_so_instead_of_suggesting_a_second_store(run_cli, catalog: Catalog, base_dir: Path, monkeypatch, catalog_url) -> None:  # type: ignore[no-untyped-def]
    """Issue 14, case 14: `cd` into a store, `catalog ls`: "run `catalog init`", which made an empty store inside."""
    monkeypatch.chdir(base_dir / "explain")
    url = ["--catalog-url", catalog_url] if catalog_url else []
    for verb in (["ls"], ["init"]):
        one_error(run_cli(*verb, global_args=url), f"lies inside the store {base_dir} (a store never holds another): "
                  f"to use that store, give --base-dir {base_dir}, or run from outside it")  # fmt: skip
    assert not (base_dir / "explain" / "artifacts").exists()
    one_error(run_cli("init", global_args=["--base-dir", str(base_dir / "ledger" / "new"), *url]), "lies inside the store")
    assert run_cli("init").exit_code == 0  # the store itself: still fine


def test_get_accepts_an_archived_artifacts_original_path_as_show_does(run_cli, catalog: Catalog, writer, base_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 14, case 14: `get` of an archived artifact by its original path failed while `show` accepted it."""
    from dataclasses import replace

    from catalog.core.settings import RetentionPolicy
    from catalog.ops.retention import apply

    with freeze_time("2020-01-01"):
        record = writer.write_json("ledger", "portfolio", {"cash": 1})
    catalog.settings = replace(catalog.settings, retention=dict(catalog.settings.retention, ledger=RetentionPolicy(1, "archive")))
    assert apply(catalog).archived
    (archived,) = all_records(catalog)
    assert archived.status == "archived" and archived.path != record.path
    for path in (record.path, archived.path):
        got = run_cli("get", path)
        assert got.exit_code == 0 and got.stdout_bytes == (base_dir / archived.path).read_bytes(), got.stderr
        shown = json.loads(run_cli("show", path, "--format", "json").stdout)
        assert shown["artifact"]["path"] == archived.path
    assert run_cli("hold", "add", record.path, "--reason", "audit").exit_code == 0  # every PATH lookup agrees


def test_explain_show_of_the_csv_half_shows_its_report(run_cli, catalog: Catalog, writer, tmp_path: Path) -> None:
    """Issue 14, case 14: `explain show` of a pair's CSV failed ("not valid JSON") instead of following the pair."""
    from catalog.cryptorun.demo import make_report

    json_record, csv_record = writer.write_explain_report(make_report(3, seed=1), "pair")
    expected = run_cli("explain", "show", json_record.path)
    assert expected.exit_code == 0 and "Explain report" in expected.stdout
    assert run_cli("explain", "show", csv_record.path).stdout == expected.stdout
    lone = tmp_path / "lone.csv"
    lone.write_bytes((catalog.base_dir / csv_record.path).read_bytes())
    alone = run_cli("put", str(lone), "--type", "explain", "--prefix", "lone", "--format", "json")
    one_error(run_cli("explain", "show", json.loads(alone.stdout)["artifacts"][0]["path"]),
              "is a CSV without the JSON report it was derived from")  # fmt: skip


def test_retention_apply_asks_only_when_something_is_due_and_no_is_not_an_error(run_cli, catalog: Catalog, writer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 14, case 14: nothing due still asked "Delete or archive these 0 artifacts?"; `n` was "Error: aborted", exit 2."""
    from types import SimpleNamespace

    from catalog.cli import lifecycle
    from catalog.ops.policy import add_hold, release_hold

    monkeypatch.setattr(lifecycle, "sys", SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True)))  # a terminal
    with freeze_time("2020-01-01"):
        old = writer.write_json("health", "old", {"n": 1})
    placed = add_hold(catalog, path=old.path, reason="inquiry")
    nothing = run_cli("retention", "apply")  # expired, but held: nothing is due
    assert nothing.exit_code == 0 and "Delete or archive" not in nothing.output, nothing.output
    assert nothing.stdout.startswith("Retention applied: 0 deleted, 0 archived, 1 protected")
    release_hold(catalog, placed.id, "closed")
    declined = run_cli("retention", "apply", input="n\n")
    assert declined.exit_code == 0 and "Delete or archive these 1 artifacts?" in declined.stderr, declined.output
    assert declined.stdout.splitlines()[-1] == "Nothing deleted or archived." and "Error" not in declined.output
    assert [r.status for r in all_records(catalog)] == ["active"] and (catalog.base_dir / old.path).exists()


def test_backup_help_gives_the_whole_restore_procedure(run_cli) -> None:
    """Issue 14, case 14: the restore steps said `reconcile --deep`, which repairs nothing and skips the newest files."""
    text = " ".join(run_cli("backup", "--help", global_args=[]).stdout.split())
    assert "catalog reconcile --deep --fix --grace 0" in text and "remove any -wal/-shm" in text


def test_human_output_shows_control_characters_escaped(run_cli, catalog: Catalog, base_dir: Path, tmp_path: Path) -> None:
    """Issue 14, case 19: an OSC title change and a newline in a file name were printed raw (a forged line)."""
    hostile = "evil\x1b]0;pwned\x07\nmissing: all"
    (base_dir / "explain" / f"{hostile}.json").write_bytes(b"{}")
    result = run_cli("reconcile")
    assert result.exit_code == 0 and "\x1b" not in result.stdout, result.stdout  # a foreign file is not drift
    table = result.stdout.splitlines()
    assert len(table) == 2 and table[1].split()[:2] == ["foreign", "explain/evil\\x1b]0;pwned\\x07\\nmissing:"]
    rows = list(csv.reader(io.StringIO(run_cli("reconcile", "--format", "csv").stdout)))
    assert rows[1][1] == f"explain/{hostile}.json"  # CSV stays data: the newline quoted, not escaped
    one_error(run_cli("show", f"explain/{hostile}.json"), "no artifact at explain/evil\\x1b]0;pwned\\x07\\nmissing: all")
    report = json.loads((GOLDEN / "go-explain-1-asset.json").read_text())
    report["universe"][0]["symbol"] = "BTC\x1b[2J-USD"
    report["universe"][0]["gate_results"]["entry_gate"]["reason"] = "low\nSkipped ETH-USD: forged"
    source = tmp_path / "hostile-report.json"
    source.write_text(json.dumps(report))
    shown = run_cli("explain", "show", str(source), global_args=[])
    assert shown.exit_code == 0 and "\x1b" not in shown.stdout, shown.output
    assert "BTC\\x1b[2J-USD" in shown.stdout and "low\\nSkipped ETH-USD: forged" in shown.stdout
    assert not any(line.startswith("Skipped ETH-USD") for line in shown.stdout.splitlines())


def _progress_on_a_terminal(monkeypatch, columns: int, files: int, size: int,  # type: ignore[no-untyped-def]
                            steps: list[tuple[int, int]]) -> tuple[str, list[str]]:
    """What the progress bar draws on a terminal of ``columns`` for ``steps``: the whole text and each redrawn line."""
    import re

    from catalog.cli.progress import progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.setenv("COLUMNS", str(columns))
    with progress("reconcile", files, size, True) as step:
        assert step is not None
        for n_files, n_bytes in steps:
            step(n_files, n_bytes)
    text = screen.getvalue()
    return text, re.sub(r"\x1b\[\?25[lh]", "", text).replace("\n", "\r").split("\r")


@pytest.mark.parametrize("columns", [120, 80, 60, 40])
def test_the_progress_bar_fits_the_terminal(monkeypatch, columns: int) -> None:  # type: ignore[no-untyped-def]
    """Issue 14, case 13: the verify/reconcile bar was wider than an 80-column screen, so each redraw wrapped."""
    text, drawn = _progress_on_a_terminal(monkeypatch, columns, 12_000, 30 * 1024**3, [(40, 100 * 1024**2)] * 300)
    assert max(map(len, drawn)) < columns, max(drawn, key=len)
    assert columns < 60 or "12000/12000 files" in text  # on a narrow one the counts go first


@pytest.mark.parametrize("columns", [80, 60])
def test_the_progress_count_never_passes_its_total(monkeypatch, columns: int) -> None:  # type: ignore[no-untyped-def]
    """reconcile expects the catalog's rows but counts every file it walks: 3 foreign files showed '4/1 files'."""
    import re

    text, drawn = _progress_on_a_terminal(monkeypatch, columns, 9, 0, [(1, 0)] * 12)
    counts = [tuple(map(int, m)) for m in re.findall(r"(\d+)/(\d+) files", text)]
    assert counts and all(done <= total for done, total in counts) and counts[-1] == (9, 9), counts
    assert " 12 files" in text  # the total grew a digit: the count alone
    assert max(map(len, drawn)) < columns, max(drawn, key=len)


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "ndjson"])
def test_config_show_hides_the_catalog_password(run_cli, base_dir: Path, fmt: str) -> None:
    url = "postgresql+psycopg://catalog:se/cret@127.0.0.1:1/catalog"
    result = run_cli("config", "show", "--format", fmt, global_args=["--base-dir", str(base_dir), "--catalog-url", url])
    assert result.exit_code == 0, result.stderr
    assert "cret" not in result.stdout and "catalog:***@127.0.0.1:1/catalog" in result.stdout


@pytest.mark.parametrize("url", ["postgresql+psycopg://catalog:se/cret@127.0.0.1:1/catalog",
                                 "postgresql+psycopg://catalog:se@cret@127.0.0.1:1/catalog",
                                 "postgresql+psycopg://catalog:se/cret@127.0.0.1:notaport/catalog"],
                         ids=["unreachable", "unescaped-at", "bad-port"])  # fmt: skip
def test_catalog_errors_hide_the_password(run_cli, base_dir: Path, url: str) -> None:
    base_dir.mkdir()
    result = run_cli("ls", global_args=["--base-dir", str(base_dir), "--catalog-url", url])
    one_error(result, "catalog")
    assert "cret" not in result.stderr and "***@" in result.stderr


#: The address space a `put` below may take, and the size of what it imports: more than that.
PUT_LIMIT, PUT_SIZE = 128 * 2**20, 144 * 2**20
BLOCKS = {
    "csv": b"x,y,z\n" + b"1.5,abc,2024-01-01T00:00:00Z\n" * 36_000,
    "jsonl": b'{"symbol": "BTC", "note": "' + b"n" * 4000 + b'"}\n',
}


@pytest.mark.parametrize("kind", ["file-parquet", "stdin-csv", pytest.param("stdin-jsonl", marks=pytest.mark.slow)])
def test_put_streams_in_memory_that_does_not_grow_with_the_input(catalog: Catalog, base_dir: Path, tmp_path: Path, kind: str) -> None:
    import resource
    import subprocess
    import sys

    from helpers import catalog_env

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (PUT_LIMIT, PUT_LIMIT))

    source, ext = kind.split("-")
    digest, size = hashlib.sha256(), 0
    argv = [sys.executable, "-c", "from catalog.cli import main; main()", "put"]
    if source == "file":  # a sparse file: zeros, as many as the limit and more
        big = tmp_path / "big.parquet"
        with open(big, "wb") as handle:
            handle.truncate(PUT_SIZE)
        zeros = bytes(2**20)
        for _ in range(PUT_SIZE // len(zeros)):
            digest.update(zeros)
        size = PUT_SIZE
        argv += [str(big)]
    else:
        argv += ["-", "--ext", ext]
    argv += ["--type", "health" if ext == "jsonl" else "ledger", "--prefix", "big", "--format", "json"]
    env = catalog_env(base_dir, None if catalog.db.is_sqlite else catalog.settings.catalog_url)
    with subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          preexec_fn=limited) as child:  # fmt: skip
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        if source == "stdin":
            block = BLOCKS[ext]
            while size < PUT_SIZE:
                child.stdin.write(block)
                digest.update(block)
                size += len(block)
        child.stdin.close()
        out, err = child.stdout.read(), child.stderr.read()
    assert child.returncode == 0, err.decode()
    row = json.loads(out)["artifacts"][0]
    assert (row["size"], row["sha256"]) == (size, digest.hexdigest())
    stored = base_dir / row["path"]
    assert stored.stat().st_size == size
    stored.unlink()  # a quarter of a GiB each: not kept in tmp


def test_put_help_states_the_bound_of_a_json_document(run_cli) -> None:
    from catalog.core.content import MAX_JSON_BYTES

    help_text = " ".join(run_cli("put", "--help", global_args=[]).stdout.split())
    assert f"checked whole: at most {MAX_JSON_BYTES // 2**20} MiB" in help_text


#: The `catalog` console script, with Ctrl-C pressed (SIGINT to itself) the moment a given module starts to load.
INTERRUPTED_SCRIPT = """
import os, signal, sys
from importlib.abc import MetaPathFinder

class PressCtrlC(MetaPathFinder):
    module = sys.argv[1]

    def find_spec(self, name, path, target=None):
        if name == self.module:
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, PressCtrlC())
sys.argv = [os.path.join(os.path.dirname(sys.executable), "catalog"), *sys.argv[2:]]  # as the console script sets it
from catalog.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize(
    "module,while_",
    [("catalog.ops.families", "importing the package"), ("click", "importing the command line"),
     ("catalog.cli.artifacts", "importing the command run"), ("sqlalchemy", "running the command")],
)  # fmt: skip
def test_ctrl_c_at_any_moment_never_shows_a_traceback(base_dir: Path, module: str, while_: str) -> None:
    import signal
    import subprocess
    import sys

    base_dir.mkdir()
    argv = [sys.executable, "-c", INTERRUPTED_SCRIPT, module, "--base-dir", str(base_dir), "ls"]
    child = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in child.stderr, child.stderr
    if while_ in ("importing the command run", "running the command"):  # click's own handling
        assert (child.returncode, child.stderr.split()) == (1, ["Aborted!"]), child.stderr
    else:  # ended by the signal, as before Python starts
        assert (child.returncode, child.stderr) == (-signal.SIGINT, ""), child.stderr
