"""The scanner's families: ``explain show`` / ``explain import``, ``snapshot-config`` and ``demo``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .render import echo, show_records, show_rows
from .root import State, cli, complete_files, complete_paths, format_option, pass_state, read_input


@cli.group("explain")
def explain_group() -> None:
    """Explainability reports: render one, or import one written elsewhere.

    \b
    Example:
      catalog explain show explain/20240115-103000-momentum_scan-explain.json
      catalog explain import ./scan.json --prefix momentum_scan
    """


@explain_group.command("show")
@click.argument("source", metavar="PATH|FILE", shell_complete=complete_paths(files=True))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table: the console view; json: the report as loaded, with the rules it breaks.")  # fmt: skip
@pass_state
def explain_show(state: State, source: str, fmt: str) -> None:
    """Render an explain report: the ranked table, the gates that failed and why, the top reasons.

    SOURCE is a catalogued artifact (its bytes are verified first; the CSV
    of a pair shows the report it was derived from) or any report file, such
    as one written by the original Go scanner.

    \b
    Example:
      catalog explain show explain/20240115-103000-momentum_scan-explain.json
      catalog explain show ~/old-scans/20240115-103000-momentum_scan-explain.json
    """
    from ..cryptorun.explain_rules import render
    from ..cryptorun.reports import load_report

    loaded = load_report(state.settings, source, actor=state.actor)
    if fmt == "json":
        click.echo(json.dumps({"report": loaded.report.to_dict(), "broken_rules": loaded.broken_rules}, indent=2))
    else:
        click.echo(render(loaded.report, loaded.violations), nl=False)


@explain_group.command("import")
@click.argument("source", metavar="FILE", shell_complete=complete_files)
@click.option("--prefix", required=True, help="Name part: 1-64 of A-Z a-z 0-9 _ . and inner -.")
@format_option()
@pass_state
def explain_import(state: State, source: str, prefix: str, fmt: str) -> None:
    """Import a report written elsewhere as a catalogued pair, dated by its meta.timestamp.

    The JSON is stored byte for byte (its SHA-256 is the chain of custody);
    the CSV is derived from it with one row per asset. Rules the report
    breaks (for instance the Go scanner's alphabetical ranks) are recorded in
    the import events and listed here.

    \b
    Example:
      catalog explain import ./20261127-171254-momentum_scan-explain.json --prefix momentum_scan
    """
    from ..core.names import validate_prefix
    from ..cryptorun.writer import AtomicWriter

    validate_prefix(prefix)
    data = read_input(source)
    with state.catalog() as catalog:
        records, broken = AtomicWriter(catalog=catalog).import_explain(data, prefix, source=Path(source).name)
    show_records(records, fmt)
    if fmt == "table":
        for rule in broken:
            echo(f"  breaks: {rule}")


@cli.command("snapshot-config")
@click.option("--prefix", default="active", show_default=True, help="Name part of the snapshot.")
@format_option()
@pass_state
def snapshot_config(state: State, prefix: str, fmt: str) -> None:
    """Record the effective configuration (and where each value came from) as a config artifact.

    Auditors see from these snapshots which retention and limits were in force when.

    \b
    Example:
      catalog snapshot-config
      CRYPTORUN_LEDGER_RETENTION_DAYS=120 catalog snapshot-config --prefix after-change
    """
    from ..core.names import validate_prefix
    from ..cryptorun.writer import AtomicWriter

    validate_prefix(prefix)
    with state.catalog() as catalog:
        record = AtomicWriter(catalog=catalog).snapshot_config(prefix)
    show_records([record], fmt)


@cli.command()
@click.option("--assets", type=click.IntRange(0, 100_000), default=100, show_default=True,
              help="Assets in the scanned universe.")  # fmt: skip
@click.option("--seed", type=int, default=None, help="Seed for the synthetic data (default: random).")
@pass_state
def demo(state: State, assets: int, seed: int | None) -> None:
    """Run one synthetic scanner cycle end to end and show what it stored.

    Initialises the store if needed (default ./artifacts), then writes, through
    the real write protocol: an explain pair (JSON + 18-column CSV) for the
    scanned universe, a portfolio snapshot and an execution log of about 1,000
    trades, hourly health metrics and a trace file, and a config snapshot.
    Prints paths, sizes and checksums, then a catalog summary.

    \b
    Example:
      catalog demo
      catalog --base-dir /tmp/demo-store demo --assets 500 --seed 7
    """
    from ..cryptorun.demo import demo as run

    done = run(state.settings, assets=assets, seed=seed, actor=state.actor)
    echo(f"Wrote {len(done.records)} artifacts into {done.base_dir}:")
    show_rows(
        ({"path": r.path, "type": r.type, "size": r.size, "sha256": r.sha256} for r in done.records),
        ("path", "type", "size", "sha256"), "table", "artifacts",
    )  # fmt: skip
    report = done.audit
    echo(f"Catalog: {done.artifacts} artifacts; audit log of {report.count} events "
         + ("verifies." if report.ok else "is BROKEN: " + "; ".join(p.message for p in report.problems[:3])))  # fmt: skip
