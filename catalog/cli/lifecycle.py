"""The lifecycle: ``retention``, legal ``hold``s, ``policy floor``s, ``retain extend`` and ``limits``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..core.vocabulary import TYPES
from .render import echo, show_batches, show_dicts, show_rows
from .root import State, UTCTime, Whole, cli, exit_after, format_option, pass_state

PLAN_COLUMNS = ("path", "type", "action", "reason", "age_days", "expires_at", "size", "status")
SUMMARY_COLUMNS = ("type", "action", "reason", "count", "size")


@cli.group()
def retention() -> None:
    """What expires by type, and applying it (delete or archive), as SQL over the catalog.

    \b
    Example:
      catalog retention plan --now 2025-01-01
      catalog retention apply --yes
    """


@retention.command("plan")
@click.option("--type", "types", multiple=True, type=click.Choice(TYPES), help="Only this type (repeatable).")
@click.option("--now", type=UTCTime(), help="What-if: plan as if it were TIME (planning only; apply uses the real time).")
@click.option("--summary", is_flag=True,
              help="Totals (count, bytes) by type, action and reason instead of one line per artifact.")
@format_option()
@pass_state
def retention_plan(state: State, types: tuple[str, ...], now: Any, summary: bool, fmt: str) -> None:
    """List every artifact past its retention: delete, archive, or protected (hold, retain_until) and why.

    Expiry is max(created_at, recorded_at) + the type's days (never below the
    type's floor, never before the row's retain_until). Reads no folder.
    With --summary, one line per type, action and reason (future
    retain_until promises counted together), computed in the database.

    \b
    Example:
      catalog retention plan
      catalog retention plan --summary
      catalog retention plan --type ledger --now 2025-06-30 --format json
    """
    with state.catalog() as catalog:
        if summary:
            from ..ops.retention_summary import plan_summary

            rows = plan_summary(catalog, now=now, types=types)
            show_rows((row.to_dict() for row in rows), SUMMARY_COLUMNS, fmt, "summary")
            return
        if fmt == "table":
            from ..ops.retention import plan

            show_rows((row.to_dict() for row in plan(catalog, now=now, types=types)), PLAN_COLUMNS, fmt, "plan")
            return
        from ..ops.exports import PLAN_FIELDS, plan_batches

        show_batches(plan_batches(catalog, now=now, types=types), PLAN_FIELDS, fmt, "plan")  # an export


@retention.command("apply")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@format_option()
@pass_state
def retention_apply(state: State, yes: bool, fmt: str) -> None:
    """Delete and archive exactly what the plan says for the real current time.

    Crash-safe by intents: a run killed at any point and run again finishes
    the job, with nothing done twice. Asks for confirmation on a terminal
    (not when nothing is due; answering no changes nothing, exit 0); scripts
    pass --yes. One summary event per run. Exit 1 when a file was missing or
    could not be removed (each is listed; the next run retries a failed one
    first, and it holds up nothing else).

    \b
    Example:
      catalog retention apply
      catalog retention apply --yes --format json
    """
    from ..core.errors import ValidationError
    from ..ops.retention import apply, plan

    if not yes and not sys.stdin.isatty():  # even with nothing due today: a script must not work only today
        raise ValidationError("retention apply needs --yes when not run from a terminal")
    with state.catalog() as catalog:
        rows = [row for row in plan(catalog) if row.action in ("delete", "archive")]
        if not yes and rows:
            show_rows((row.to_dict() for row in rows), PLAN_COLUMNS, "table", "plan")
            if not click.confirm(f"Delete or archive these {len(rows)} artifacts?", err=True):
                echo("Nothing deleted or archived.")
                return
        report = apply(catalog, rows)
    exit_after(1 if report.missing or report.failed else 0)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        echo(f"Retention applied: {len(report.deleted)} deleted, {len(report.archived)} archived"
             + (f", {len(report.resumed)} finished from an interrupted run" if report.resumed else "")
             + (f", {report.protected} protected" if report.protected else "") + ".")  # fmt: skip
        for path in report.missing:
            echo(f"  missing (reported, not deleted by retention): {path}")
        for path, why in report.failed:
            echo(f"  failed (retried by the next run): {path}: {why}")


@cli.group()
def hold() -> None:
    """Legal holds: what they cover is never deleted or archived, whatever its age.

    \b
    Example:
      catalog hold add --prefix 'momentum*' --reason "SEC inquiry 2024-17"
      catalog hold ls
    """


@hold.command("add")
@click.argument("path", required=False)
@click.option("--prefix", help="Every artifact with this prefix (* and ? allowed).")
@click.option("--type", "artifact_type", type=click.Choice(TYPES), help="Every artifact of this type.")
@click.option("--since", type=UTCTime(), help="Only artifacts created at or after TIME.")
@click.option("--until", type=UTCTime(), help="Only artifacts created before TIME.")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@format_option()
@pass_state
def hold_add(state: State, path: str | None, prefix: str | None, artifact_type: str | None, since: Any, until: Any,
             reason: str, fmt: str) -> None:  # fmt: skip
    """Place a legal hold on one artifact (PATH), a prefix or a type, and say how many artifacts it covers now.

    A hold on one file of an explain report covers its twin too. A prefix or
    type hold also covers whatever is written later with that prefix or type
    (inside its --since/--until window). The same active hold twice is refused.

    \b
    Example:
      catalog hold add ledger/20240115-080000-portfolio-ledger.json --reason "audit 2024"
      catalog hold add --type ledger --since 2024-01-01 --until 2024-04-01 --reason "Q1 review"
    """
    from ..ops.policy import add_hold

    with state.catalog() as catalog:
        placed = add_hold(catalog, path=path, prefix=prefix, artifact_type=artifact_type, since=since, until=until,
                          reason=reason)  # fmt: skip
    show_rows([placed.to_dict()], HOLD_COLUMNS, fmt, "holds")
    if fmt == "table":
        later = "" if placed.kind == "path" else f", and any {placed.kind} match written later"
        echo(f"Hold {placed.id} covers {placed.covers_now} artifact(s) on disk now{later}.")


HOLD_COLUMNS = ("id", "kind", "selector", "since", "until", "reason", "covers_now", "placed_at", "placed_by",
                "released_at")  # fmt: skip


@hold.command("release")
@click.argument("hold_id", metavar="ID", type=Whole(1, 2**62))
@click.option("--reason", required=True, help="Why the hold ends (recorded in the audit log).")
@pass_state
def hold_release(state: State, hold_id: int, reason: str) -> None:
    """Release a legal hold.

    \b
    Example:
      catalog hold release 3 --reason "inquiry closed"
    """
    from ..ops.policy import release_hold

    with state.catalog() as catalog:
        release_hold(catalog, hold_id, reason)
    echo(f"Hold {hold_id} released.")


@hold.command("ls")
@click.option("--all", "include_released", is_flag=True, help="Include released holds.")
@format_option()
@pass_state
def hold_ls(state: State, include_released: bool, fmt: str) -> None:
    """List legal holds (active ones unless --all) with how many artifacts on disk each covers now.

    \b
    Example:
      catalog hold ls --all --format json
    """
    from ..ops.policy import holds

    with state.catalog() as catalog:
        rows = [h.to_dict() for h in holds(catalog, include_released, count=True)]
    show_rows(rows, HOLD_COLUMNS, fmt, "holds")


@cli.group()
def policy() -> None:
    """Retention floors kept in the catalog itself, so no writer's settings can go below them.

    \b
    Example:
      catalog policy floor set ledger 365 --reason "record-keeping rule"
    """


@policy.group("floor")
def policy_floor() -> None:
    """Per-type minimum retention.

    \b
    Example:
      catalog policy floor show
    """


@policy_floor.command("set")
@click.argument("artifact_type", metavar="TYPE", type=click.Choice(TYPES))
@click.argument("days", type=Whole(0, 36_600))
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@pass_state
def policy_floor_set(state: State, artifact_type: str, days: int, reason: str) -> None:
    """Set TYPE's minimum retention to DAYS (lowering is refused while rows depend on the floor).

    \b
    Example:
      catalog policy floor set explain 60 --reason "model risk review"
    """
    from ..ops.policy import set_floor

    with state.catalog() as catalog:
        before = set_floor(catalog, artifact_type, days, reason)
    echo(f"{artifact_type} floor: {before if before is not None else 'none'} -> {days} days.")


@policy_floor.command("show")
@format_option()
@pass_state
def policy_floor_show(state: State, fmt: str) -> None:
    """The floors in force, beside each type's configured policy.

    \b
    Example:
      catalog policy floor show --format json
    """
    from ..ops.policy import floors

    with state.catalog() as catalog:
        found = floors(catalog)
        policies = catalog.settings.retention
    rows = [{"type": t, "floor_days": found.get(t), "policy_days": policies[t].days, "action": policies[t].action}
            for t in TYPES]  # fmt: skip
    show_rows(rows, ("type", "floor_days", "policy_days", "action"), fmt, "floors")


@cli.group()
def retain() -> None:
    """Extend how long artifacts are kept (never shortened).

    \b
    Example:
      catalog retain extend --prefix momentum_scan --until 2030-01-01 --reason "litigation"
    """


@retain.command("extend")
@click.argument("path", required=False)
@click.option("--prefix", help="Every artifact with this prefix (* and ? allowed).")
@click.option("--type", "artifact_type", type=click.Choice(TYPES), help="Every artifact of this type.")
@click.option("--until", type=UTCTime(), required=True, help="Keep until at least TIME.")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@pass_state
def retain_extend(state: State, path: str | None, prefix: str | None, artifact_type: str | None, until: Any,
                  reason: str) -> None:  # fmt: skip
    """Set retain_until to TIME where it is earlier (one audited event per artifact).

    \b
    Example:
      catalog retain extend ledger/20240115-080000-portfolio-ledger.json --until 2031-01-01 --reason "audit hold"
    """
    from ..ops.policy import extend_selected

    with state.catalog() as catalog:
        changed, covered, gone = extend_selected(catalog, path=path, prefix=prefix, artifact_type=artifact_type,
                                                 until=until, reason=reason)  # fmt: skip
    longer = covered - len(changed) - gone
    why = [f"{gone} deleted or missing"] * bool(gone) + [f"{longer} kept longer already"] * bool(longer)
    echo(f"Extended {len(changed)} of {covered} artifacts to {until:%Y-%m-%dT%H:%M:%SZ}"
         + (f" (unchanged: {', '.join(why)})." if why else "."))  # fmt: skip


@cli.command("limits")
@format_option()
@pass_state
def limits_cmd(state: State, fmt: str) -> None:
    """Files and bytes per folder and for the store against the limits; warn at 80 %, exit 1 when over.

    Answered from the catalog alone: no folder is read. Each partition folder
    (layout month or day) is a folder of its own. A folder at warn or over
    gets a remedy: its type's observed write rate and the layout (setting
    `layout`) that keeps each folder under the limit for the retention period
    (a line under the table; `layout_advice` in JSON; `layout_advice.*`
    columns in CSV, `per_folder` one column a layout).

    \b
    Example:
      catalog limits
      catalog limits --format json | jq '.limits[] | select(.level != "ok")'
    """
    from ..ops.limits import ADVICE_COLUMNS, limits

    with state.catalog() as catalog:
        rows = limits(catalog)
    exit_after(1 if any(row.level == "over" for row in rows) else 0)
    columns = ("scope", "name", "files", "max_files", "bytes", "max_bytes", "level")
    if fmt == "csv":
        show_rows((row.to_flat_dict() for row in rows), (*columns, *ADVICE_COLUMNS), fmt, "limits")
    else:
        show_dicts(rows, (*columns, *(("layout_advice",) if fmt in ("json", "ndjson") else ())), fmt, "limits")
    if fmt == "table":
        for row in rows:
            if row.advice is not None:
                echo(f"remedy: {row.advice.text}")
