"""Administration: ``init``, ``db``, ``config show``, ``status`` and ``backup``."""

from __future__ import annotations

import json
from typing import Any

import click

from ..core.vocabulary import HEAD_REVISION
from .render import echo, show_rows
from .root import State, cli, complete_files, exit_after, format_option, pass_state, remedy_text


@cli.command()
@pass_state
def init(state: State) -> None:
    """Create the store's folders and the catalog schema (safe to run again).

    \b
    Example:
      catalog --base-dir /data/cryptorun/artifacts init
    """
    from ..core.store import Catalog

    catalog, before, after = Catalog.init(state.settings, actor=state.actor)
    catalog.close()
    verb = "already at" if before == after else "created at" if before is None else f"upgraded from {before} to"
    echo(f"Store {state.settings.base_dir} ready; catalog {catalog.db.location} {verb} schema {after}.")


@cli.group()
def db() -> None:
    """Catalog schema migrations.

    \b
    Example:
      catalog db current
      catalog db upgrade
    """


@db.command("upgrade")
@pass_state
def db_upgrade(state: State) -> None:
    """Migrate an existing catalog to this version's schema.

    \b
    Example:
      catalog --catalog-url postgresql+psycopg://catalog@db/catalog db upgrade
    """
    with state.catalog(check=False) as catalog:
        before, after = catalog.upgrade(existing=True)
    echo(f"Catalog {catalog.db.location}: " + (f"already at {after}." if before == after else f"{before} -> {after}."))


@db.command("current")
@pass_state
def db_current(state: State) -> None:
    """Show the catalog's schema revision and the one this version needs.

    \b
    Example:
      catalog db current
    """
    from ..core.db import schema_revision

    current = schema_revision(state.settings)
    status = "(head)" if current == HEAD_REVISION else f"(this version needs {HEAD_REVISION})"
    echo(f"{current or 'none'} {status}")


@cli.group("config")
def config_group() -> None:
    """The effective configuration.

    \b
    Example:
      catalog config show
    """


@config_group.command("show")
@format_option()
@pass_state
def config_show(state: State, fmt: str) -> None:
    """Every effective setting and where it came from: default, file, env or flag.

    \b
    Example:
      catalog config show
      CRYPTORUN_LEDGER_RETENTION_DAYS=120 catalog config show --format json
    """
    settings = state.settings
    values = settings.values()
    rows = [{"key": key, "value": value, "source": settings.sources.get(key, "default")} for key, value in values.items()]
    show_rows(rows, ("key", "value", "source"), fmt, "settings")


def _fact_lines(key: str, value: Any) -> list[str]:
    """A status fact as lines for people: a mapping or a list one entry a line, indented under its key (a SHA-256
    beside a padded key would pass 80 columns); nothing in it shown as 'none'."""
    def shown(item: Any) -> str:
        if isinstance(item, dict):
            return ", ".join(f"{k}: {shown(v)}" for k, v in item.items())
        return "none" if item is None or item == [] else str(item)

    if isinstance(value, dict) and value:
        return [f"{key}:"] + [f"  {sub + ':':<12}{shown(item)}" for sub, item in value.items()]
    if isinstance(value, list) and value:
        return [f"{key}:"] + [f"  - {shown(item)}" for item in value]
    return [f"{key + ':':<27}{'none' if value in (None, {}, []) else value}"]


@cli.command("status")
@format_option(("table", "json"), "table for people, json for dashboards.", tables=False)
@pass_state
def status_cmd(state: State, fmt: str) -> None:
    """For schedulers and dashboards: is anything waiting for a person? Exit 1 if so.

    Shows the age of the last verify run and checkpoint, missing or
    quarantined artifacts, unfinished retention intents, artifacts past
    expiry, and folders near their limits.

    \b
    Example:
      catalog status
      catalog status --format json | jq .attention
    """
    from ..ops.operations import status

    with state.catalog() as catalog:
        result = status(catalog)
    attention = [remedy_text(a.message, a.remedy) for a in result.attention]
    exit_after(1 if result.attention else 0)
    if fmt == "json":
        click.echo(json.dumps({**result.to_dict(), "attention": attention}, indent=2))
    else:
        for key, value in result.facts.items():
            for line in _fact_lines(key, value):
                echo(line)
        echo("")
        echo("Needs a person:" if attention else "Nothing needs a person.")
        for line in attention:
            echo(f"  - {line}")


@cli.command("backup")
@click.argument("output", metavar="OUT", shell_complete=complete_files)
@pass_state
def backup_cmd(state: State, output: str) -> None:
    """Copy the SQLite catalog online (writers may go on) and record the chain head it captured.

    Restore: stop the writers; put the copy back as <base_dir>/catalog.sqlite
    (remove any -wal/-shm beside it); run `catalog reconcile --deep --fix
    --grace 0` (it adopts the files written since the backup: --fix repairs,
    --grace 0 takes in the newest files too, as no writer runs); then `catalog
    audit verify --checkpoint FILE` with a checkpoint taken at or before the
    backup.
    PostgreSQL: use pg_dump (the error says how).
    OUT must not exist: a backup never overwrites, and of two backups racing
    for one OUT the second is refused. OUT gets the mode the umask gives.
    OUT is a file: - (standard output) is refused.

    \b
    Example:
      catalog backup /backups/catalog-$(date -u +%Y%m%d).sqlite
    """
    from ..ops.operations import backup
    from .outputs import output_file

    target = output_file(output, "OUT")
    with state.catalog() as catalog:
        done = backup(catalog, target)
    echo(f"Backup written to {done.file} (chain head seq {done.head_seq}).")
