"""Integrity: ``reconcile`` (disk against catalog) and ``verify`` (bytes against recorded SHA-256)."""

from __future__ import annotations

import json
from typing import Any

import click

from ..core.vocabulary import TYPES
from .progress import progress
from .render import echo, show_dicts, show_rows
from .root import State, UTCTime, Whole, cli, exit_after, format_option, pass_state


@cli.command()
@click.option("--type", "types", multiple=True, type=click.Choice(TYPES), help="Only this type's folders (repeatable).")
@click.option("--deep", is_flag=True, help="Compare SHA-256 of every file, not just sizes.")
@click.option("--fix", is_flag=True, help="Repair the catalog (adopt, mark missing, follow moves, quarantine).")
@click.option("--grace", type=click.FloatRange(min=0), default=300, show_default=True, metavar="SECONDS",
              help="Leave files younger than this to their writers (0: no writer runs).")  # fmt: skip
@format_option()
@pass_state
def reconcile(state: State, types: tuple[str, ...], deep: bool, fix: bool, grace: float, fmt: str) -> None:
    """Find every disagreement between the store's files and the catalog; --fix repairs the catalog.

    Classes: orphan, missing, moved, modified, half_pair, stale_temp, restored,
    linked_folder (drift: exit 1, also after fixing, so schedulers notice),
    foreign and in_flight (listed, never touched, not drift). Nothing is ever
    deleted except stale temp files whose writer is gone; modified files move
    to quarantine/. A catalogued path holding a symlink, FIFO or other
    non-regular file is modified; a folder of the store that is a symlink is
    a linked_folder: nothing is read or written through it, and no fix
    touches it (a person puts the real folder back).

    \b
    Example:
      catalog reconcile --deep
      catalog reconcile --deep --fix --grace 0 --format json
    """
    from ..ops.reconcile import expected_work
    from ..ops.reconcile import reconcile as run_reconcile

    with state.catalog() as catalog:
        files, size = expected_work(catalog, types)
        with progress("reconcile", files, size if deep else 0, fmt == "table") as step:
            report = run_reconcile(catalog, deep=deep, fix=fix, grace=grace, types=types, progress=step)
    exit_after(1 if report.drift else 0)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif fmt == "table" and not report.findings:
        echo(f"Clean: {report.files} files and {report.rows} catalogued artifacts agree"
             + (" (sizes and SHA-256)." if deep else " (sizes; --deep also compares SHA-256)."))  # fmt: skip
    else:
        rows = ({"class": f.cls, "path": f.path, "reason": f.reason, "fixed": f.fixed or ""} for f in report.findings)
        show_rows(rows, ("class", "path", "reason", "fixed"), fmt, "findings")
        if fmt == "table" and report.drift:
            counts = ", ".join(f"{n} {c}" for c, n in report.counts().items() if n and c not in ("foreign", "in_flight"))
            hint = "" if fix else " Run `catalog reconcile --deep --fix` to repair the catalog."
            if report.counts()["linked_folder"]:
                hint += " A linked_folder needs a person: put the real folder back in place of the symlink."
            echo(f"Drift: {counts}." + hint)


@cli.group(invoke_without_command=True)
@click.option("--type", "types", multiple=True, type=click.Choice(TYPES), help="Only this type (repeatable).")
@click.option("--since", type=UTCTime(), help="Only artifacts created at or after TIME.")
@click.option("--sample", type=click.FloatRange(min=0, max=1, min_open=True), metavar="FRACTION",
              help="Check a random FRACTION (e.g. 0.1), reproducible with --seed.")  # fmt: skip
@click.option("--seed", type=int, help="Seed for --sample (default: random, recorded with the run).")
@click.option("--subset", metavar="N/T", help="Check part N of T: T runs cover every artifact exactly once.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Files hashed in parallel.")
@format_option()
@click.pass_context
def verify(
    ctx: click.Context, types: tuple[str, ...], since: Any, sample: float | None, seed: int | None,
    subset: str | None, workers: int, fmt: str,
) -> None:  # fmt: skip
    """Re-read files and check size and SHA-256 against the catalog, as a recorded run.

    Exit 0 when every checked file matches, 1 on any failure or missing file.

    \b
    Example:
      catalog verify --sample 0.1 --seed 42
      catalog verify --subset 3/7 --workers 4
      catalog verify history
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..ops.reconcile import expected_work
    from ..ops.verify import Scope, parse_subset
    from ..ops.verify import verify as run_verify

    state = ctx.find_object(State)
    assert state is not None
    scope = Scope(types, since, sample, seed, parse_subset(subset) if subset else None)
    with state.catalog() as catalog:
        files, size = expected_work(catalog, types)
        with progress("verify", files, size, fmt == "table") as step:
            report = run_verify(catalog, scope, workers=workers, progress=step)
    exit_after(0 if report.clean else 1)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        bad = [{"outcome": "failed", **f} for f in report.failed] + [{"outcome": "missing", **m} for m in report.missing]
        if bad or fmt != "table":
            show_rows(bad, ("outcome", "path", "reason"), fmt, "failures")
        if fmt == "table":
            if report.clean:
                matched = report.checked - len(report.skipped)
                echo(f"Verified: all {matched} files checked match the catalog (run {report.run_id}).")
            else:
                echo(f"Verify run {report.run_id}: {len(report.failed)} failed, {len(report.missing)} missing of "
                     f"{report.checked} checked. Next: `catalog reconcile --deep` to classify them, then "
                     "`--fix` to quarantine and record.")  # fmt: skip
            if report.skipped:
                echo(f"  {len(report.skipped)} skipped: deleted or archived by retention while verify ran.")


@verify.command("history")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many runs.")
@format_option()
@pass_state
def verify_history(state: State, limit: int | None, fmt: str) -> None:
    """Recorded verify runs, newest first.

    \b
    Example:
      catalog verify history --limit 10
    """
    from ..ops.verify import history

    with state.catalog() as catalog:
        runs = [run.to_dict() for run in history(catalog, limit)]
    if fmt in ("table", "csv"):
        runs = [{**r, "scope": json.dumps(r["scope"], sort_keys=True)} for r in runs]
    show_rows(runs, ("run_id", "started_at", "checked", "ok", "failed", "missing", "duration_s", "scope"), fmt, "runs")


@cli.group()
def findings() -> None:
    """What checks found wrong, open until re-checked and passed, or resolved by a person with a reason.

    A verify failure closes when a later verify of the same artifact passes; a
    missing or quarantined artifact when its row changes back; a clock finding
    (a writer whose clock was behind the log's) only when a person resolves it,
    after fixing that host's clock. `status` exits 1 while any is open.

    \b
    Example:
      catalog findings ls
      catalog findings resolve 42 --reason "restored from backup, verified by hand"
    """


FINDING_COLUMNS = ("id", "kind", "path", "at", "detail")


@findings.command("ls")
@format_option()
@pass_state
def findings_ls(state: State, fmt: str) -> None:
    """The open findings, oldest first; ID is the seq of the event that raised each.

    \b
    Example:
      catalog findings ls --format json | jq '.findings[] | select(.kind == "quarantined")'
    """
    from ..ops.findings import open_findings

    with state.catalog() as catalog:
        show_dicts(open_findings(catalog), FINDING_COLUMNS, fmt, "findings")


@findings.command("resolve")
@click.argument("finding_id", metavar="ID", type=Whole(1, 2**62))
@click.option("--reason", required=True, help="What a person found and did (recorded in the audit log).")
@pass_state
def findings_resolve(state: State, finding_id: int, reason: str) -> None:
    """Close an open finding with a reason: an audited finding_resolve event that names it.

    \b
    Example:
      catalog findings resolve 42 --reason "quarantined copy compared with the backup: the backup is authentic"
    """
    from ..ops.findings import resolve

    with state.catalog() as catalog:
        done = resolve(catalog, finding_id, reason)
    echo(f"Finding {done.id} ({done.kind}{'' if done.path is None else ', ' + done.path}) resolved.")
