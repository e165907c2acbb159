"""The ``catalog`` command line: a thin layer over the Python API.

Each command parses its options, makes one API call and renders the result.
Errors are turned into one ``Error:`` line in one place
(:meth:`CatalogGroup.invoke`); exit codes: 0 ok, 1 findings, 2 every error.
Heavy modules (SQLAlchemy, alembic) are imported inside the commands that need
them, so ``catalog --help`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from . import __version__
from .config import ENVIRONMENTS, Settings, load_settings
from .errors import InputError, read_file, translate
from .migrations import HEAD_REVISION
from .naming import EXTRA_EXTS, TYPES
from .render import FORMATS, human_size, render

STATUSES = ("active", "archived", "deleted", "missing", "quarantined")  # = catalog.models.STATUSES (tested)
SORTS = ("newest", "oldest", "path", "largest", "smallest")  # = catalog.query.SORTS (tested)

if TYPE_CHECKING:
    from .store import ArtifactRecord, Catalog

RECORD_COLUMNS = ("path", "type", "prefix", "created_at", "size", "sha256", "status")
ALL_RECORD_COLUMNS = (
    "id", "path", "original_path", "type", "prefix", "ext", "created_at", "recorded_at", "size", "sha256",
    "status", "retain_until", "pair_id",
)  # fmt: skip


class CLIError(click.ClickException):
    """A ClickException with the exit code of the error it reports."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class CatalogGroup(click.Group):
    """Translates every error into one ``Error:`` line and exit code 2 (1 for findings)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except Exception as exc:  # the CLI boundary: nothing reaches the user raw
            if _debug(ctx):
                raise
            known = translate(exc)
            if known is not None:
                raise CLIError(str(known), known.exit_code) from None
            raise CLIError(
                f"internal error ({type(exc).__name__}: {exc}); rerun with --debug for the traceback and report it"
            ) from None

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        try:
            rv = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code if isinstance(exc, CLIError) else 2)
        except click.Abort:
            click.echo("Error: aborted", err=True)
            sys.exit(2)
        sys.exit(rv if isinstance(rv, int) else 0)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.obj and root.obj.debug) or os.environ.get("CATALOG_DEBUG", "") not in ("", "0")


class State:
    """What the global options chose; settings load on first use."""

    def __init__(self, flags: dict[str, Any], config_file: str | None, debug: bool, actor: str | None = None) -> None:
        self.flags = flags
        self.config_file = config_file
        self.debug = debug
        self.actor = actor
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file, flags=self.flags)
        return self._settings

    def catalog(self, check: bool = True) -> Catalog:
        from .store import Catalog

        return Catalog(self.settings, check=check, actor=self.actor)


pass_state = click.make_pass_decorator(State)


def format_option(default: str = "table") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default=default, show_default=True,
        help="Output format: table for people; json, csv, ndjson for programs.",
    )  # fmt: skip


TABLE_CELLS: dict[str, Callable[[Any], str]] = {
    "size": lambda n: "" if n is None else human_size(n),
    "bytes": human_size,
    "max_bytes": lambda n: "" if n is None else human_size(n),
    "sha256": lambda h: (h or "")[:12],
    "created_at": lambda t: (t or "").replace("T", " "),
}


def show_rows(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str, key: str,
    trailer: Callable[[], dict[str, Any]] | None = None, out: IO[str] | None = None,
) -> int:  # fmt: skip
    """Render any listing through the one renderer; returns the row count."""
    out = out or sys.stdout
    return render(rows, columns, fmt, out, key=key, table_cells=TABLE_CELLS, is_terminal=out.isatty(), trailer=trailer)


def show_records(
    records: Iterable[ArtifactRecord], fmt: str, out: IO[str] | None = None,
    trailer: Callable[[], dict[str, Any]] | None = None,
) -> int:  # fmt: skip
    """Render artifact records (streamed): a short table for people, every field for programs."""
    columns = RECORD_COLUMNS if fmt == "table" else ALL_RECORD_COLUMNS
    return show_rows((r.to_dict() for r in records), columns, fmt, "artifacts", trailer, out)


class Whole(click.ParamType):
    """A whole number written with ASCII digits, within bounds."""

    name = "INTEGER"

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if not (text.isascii() and text.lstrip("-").isdigit()) or not self.low <= int(text) <= self.high:
            self.fail(f"{value!r} is not a whole number from {self.low} to {self.high}", param, ctx)
        return int(text)


class UTCTime(click.ParamType):
    """An ISO-8601 date or time; without a zone it is UTC."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from .errors import ValidationError
        from .formats import parse_time

        if not isinstance(value, str):
            return value
        try:
            return parse_time(value)
        except ValidationError as exc:
            self.fail(str(exc), param, ctx)


@click.group(cls=CatalogGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--base-dir", metavar="DIR", help="Store folder (overrides CRYPTORUN_ARTIFACTS_DIR and the config).")
@click.option("--catalog-url", metavar="URL", help="Catalog database URL (default: SQLite in the base folder).")
@click.option("--config", "config_file", metavar="FILE", help="Settings file (default: ./config/artifacts.yaml if present).")
@click.option("--env", "environment", type=click.Choice(list(ENVIRONMENTS)), help="Environment (picks the base folder).")
@click.option("--actor", metavar="NAME", envvar="CRYPTORUN_ACTOR",
              help="A name to record beside your OS user in audit events (also CRYPTORUN_ACTOR).")
@click.option("--debug", is_flag=True, help="Show tracebacks (for bug reports); also CATALOG_DEBUG=1.")
@click.version_option(__version__, "--version", message=f"catalog %(version)s (schema {HEAD_REVISION})")
@click.pass_context
def cli(
    ctx: click.Context, base_dir: str | None, catalog_url: str | None, config_file: str | None,
    environment: str | None, actor: str | None, debug: bool,
) -> None:  # fmt: skip
    """Audit-ready artifact storage for the CryptoRun scanner.

    Every artifact is written atomically under a fixed name and recorded in a
    SQL catalog with its size, SHA-256 and a hash-chained audit event.

    \b
    Example:
      catalog --base-dir ./artifacts init
      catalog --base-dir ./artifacts put report.json --type explain --prefix momentum_scan
      catalog --base-dir ./artifacts ls --limit 10
    """
    flags = {"base_dir": base_dir, "catalog_url": catalog_url, "environment": environment}
    ctx.obj = State(flags, config_file, debug, actor)


@cli.command()
@pass_state
def init(state: State) -> None:
    """Create the store's folders and the catalog schema (safe to run again).

    \b
    Example:
      catalog --base-dir /data/cryptorun/artifacts init
    """
    from .store import Catalog

    catalog, before, after = Catalog.init(state.settings, actor=state.actor)
    catalog.close()
    verb = "already at" if before == after else "created at" if before is None else f"upgraded from {before} to"
    click.echo(f"Store {state.settings.base_dir} ready; catalog {catalog.db.location} {verb} schema {after}.")


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
    from .errors import SchemaError

    with state.catalog(check=False) as catalog:
        database = catalog.db
        if not database.exists() or database.revision() is None:
            raise SchemaError(f"no catalog at {database.location}: run `catalog init` to create one")
        before, after = catalog.upgrade()
    click.echo(f"Catalog {database.location}: " + (f"already at {after}." if before == after else f"{before} -> {after}."))


@db.command("current")
@pass_state
def db_current(state: State) -> None:
    """Show the catalog's schema revision and the one this version needs.

    \b
    Example:
      catalog db current
    """
    from .db import Database
    from .errors import SchemaError

    database = Database(state.settings.catalog_url)
    try:
        if not database.exists():
            raise SchemaError(f"no catalog at {database.location}: run `catalog init` to create one")
        current = database.revision()
    finally:
        database.dispose()
    status = "(head)" if current == HEAD_REVISION else f"(this version needs {HEAD_REVISION})"
    click.echo(f"{current or 'none'} {status}")


def _read_input(source: str) -> bytes:
    if source == "-":
        data = sys.stdin.buffer.read()
        if not data:
            raise InputError("standard input is empty")
        return data
    data = read_file(source, "input file", InputError)
    if not data:
        raise InputError(f"input file {source} is empty")
    return data


@cli.command()
@click.argument("source", metavar="FILE|-")
@click.option("--type", "artifact_type", required=True, type=click.Choice(TYPES), help="Artifact type.")
@click.option("--prefix", required=True, help="Name part: 1-64 of A-Z a-z 0-9 _ . and inner -.")
@click.option("--ext", help=f"Extension (default: the file's). Standard: json, csv, jsonl; also {', '.join(EXTRA_EXTS)}.")
@format_option()
@pass_state
def put(state: State, source: str, artifact_type: str, prefix: str, ext: str | None, fmt: str) -> None:
    """Import FILE (or - for standard input) into the store and catalog it.

    The bytes are stored unchanged under TYPE/YYYYMMDD-HHMMSS-PREFIX-TYPE.EXT
    (UTC now). JSON, JSONL and CSV must parse first (JSON without NaN).

    \b
    Example:
      catalog put scan.json --type explain --prefix momentum_scan
      producer | catalog put - --type health --prefix traces --ext jsonl
    """
    from .naming import validate_ext, validate_prefix
    from .writer import AtomicWriter

    validate_prefix(prefix)
    if ext is None:
        if source == "-":
            raise CLIError("reading standard input needs --ext (for example --ext json)")
        ext = Path(source).suffix.removeprefix(".")
        if not ext:
            raise CLIError(f"input file {source} has no extension: give one with --ext")
    validate_ext(artifact_type, ext, allow_extra=True)
    data = _read_input(source)
    with state.catalog() as catalog:
        record = AtomicWriter(catalog=catalog).write_bytes(artifact_type, prefix, data, ext)
    show_records([record], fmt)


@cli.command()
@click.argument("path")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of standard output.")
@pass_state
def get(state: State, path: str, output: str | None) -> None:
    """Print an artifact's bytes, refused if they no longer match the catalog.

    PATH is the catalog path (as `catalog ls` shows it) or a path inside the
    store. Nothing is written unless the SHA-256 matched.

    \b
    Example:
      catalog get explain/20240115-103000-momentum_scan-explain.json -o report.json
    """
    with state.catalog() as catalog:
        stdout = None if output else sys.stdout.buffer
        catalog.export(path, Path(output) if output else None, stdout)


@cli.command("ls")
@click.option("--type", "types", multiple=True, type=click.Choice(TYPES), help="Only this type (repeatable).")
@click.option("--prefix", help="Only this prefix; * and ? match any characters / one character.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only this status (repeatable).")
@click.option("--since", type=UTCTime(), help="Created at or after TIME (ISO-8601; no zone means UTC).")
@click.option("--until", type=UTCTime(), help="Created before TIME (ISO-8601; no zone means UTC).")
@click.option("--sort", type=click.Choice(list(SORTS)), default="newest", show_default=True, help="Order of the rows.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option("--after", metavar="PATH", help="Continue after this artifact (keyset pagination; see next_after).")
@click.option("--as-of", "as_of", type=UTCTime(), help="What existed at TIME, where, with what status (from the audit log).")
@format_option()
@pass_state
def ls(
    state: State, types: tuple[str, ...], prefix: str | None, statuses: tuple[str, ...], since: Any, until: Any,
    sort: str, limit: int | None, after: str | None, as_of: Any, fmt: str,
) -> None:  # fmt: skip
    """List catalogued artifacts (newest first by default).

    Rows stream as they are read, so even a huge listing starts at once.
    With --limit, JSON output ends with "next_after": the PATH to pass to
    --after for the next page. --as-of answers from the audit log: the
    artifacts that existed at that moment (by recorded time), at the path
    and with the status they had then; deleted ones are gone, archived ones
    are listed at their archive path.

    \b
    Example:
      catalog ls --type explain --since 2024-01-01 --limit 20
      catalog ls --as-of 2024-03-31T23:59:59Z --type ledger
      catalog ls --prefix 'momentum*' --status active --format json | jq '.artifacts[].path'
      catalog ls --limit 100 --after explain/20240115-103000-momentum_scan-explain.json
    """
    from .query import ArtifactQuery, iter_artifacts

    query = ArtifactQuery(types, prefix, statuses, since, until, sort, after, limit, as_of)
    seen: dict[str, Any] = {"count": 0, "last": None}

    def tracked(records: Iterable[ArtifactRecord]) -> Iterator[ArtifactRecord]:
        for record in records:
            seen["count"] += 1
            seen["last"] = record.path
            yield record

    def trailer() -> dict[str, Any]:
        return {"next_after": seen["last"] if limit is not None and seen["count"] == limit else None}

    with state.catalog() as catalog:
        show_records(tracked(iter_artifacts(catalog, query)), fmt, trailer=trailer)


def _show_stories(stories: list[Any], fmt: str) -> None:
    if fmt == "json":
        data = stories[0].to_dict() if len(stories) == 1 else {"matches": [s.to_dict() for s in stories], "count": len(stories)}
        click.echo(json.dumps(data, indent=2))
        return
    for number, story in enumerate(stories):
        if number:
            click.echo()
        data = story.to_dict()
        for key, value in data["artifact"].items():
            click.echo(f"{key + ':':<15}{'' if value is None else value}")
        file = data["file"]
        state = ("missing" if not file["present"] else "matches the catalog" if file["matches"]
                 else f"DIFFERS from the catalog (size {file['size']}, SHA-256 {file['sha256']})")  # fmt: skip
        click.echo(f"{'file:':<15}{state}")
        click.echo("events:")
        show_rows(
            ({"seq": e["seq"], "at": e["at"], "action": e["action"], "actor": e["actor"],
              "details": json.dumps(e["details"], sort_keys=True)} for e in data["events"]),
            ("seq", "at", "action", "actor", "details"), "table", "events",
        )  # fmt: skip


@cli.command()
@click.argument("path")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json for programs.")  # fmt: skip
@pass_state
def show(state: State, path: str, fmt: str) -> None:
    """One artifact: its row, its file as it is now, and its whole history.

    PATH is the current path, the original path, or a path inside the store.

    \b
    Example:
      catalog show explain/20240115-103000-momentum_scan-explain.json
      catalog show ledger/20240115-080000-portfolio-ledger.json --format json
    """
    from .query import show as show_story

    with state.catalog() as catalog:
        _show_stories([show_story(catalog, path)], fmt)


@cli.command()
@click.option("--sha256", "digest", required=True, metavar="HASH", help="A full SHA-256, or a unique prefix (4+ hex digits).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json for programs.")  # fmt: skip
@pass_state
def find(state: State, digest: str, fmt: str) -> None:
    """Find artifacts by content: the rows whose SHA-256 is HASH.

    Identical bytes written under several names are all shown.

    \b
    Example:
      catalog find --sha256 3f9a2c71
      sha256sum report.json | cut -c1-64 | xargs catalog find --format json --sha256
    """
    from .query import find_sha256

    with state.catalog() as catalog:
        _show_stories(find_sha256(catalog, digest), fmt)


@cli.command()
@format_option()
@pass_state
def stats(state: State, fmt: str) -> None:
    """Counts and bytes by type, by folder and by status, and for the whole store.

    Answered from the catalog alone: no folder is read. Type, folder and
    store totals count files on disk (active, archived, quarantined); the
    status rows count every row.

    \b
    Example:
      catalog stats
      catalog stats --format json | jq '.stats[] | select(.group == "folder")'
    """
    from .query import stats as catalog_stats

    with state.catalog() as catalog:
        rows = catalog_stats(catalog)
    show_rows(rows, ("group", "name", "count", "bytes"), fmt, "stats")


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


@cli.group()
def audit() -> None:
    """The hash-chained audit log: read it, prove it intact, export evidence.

    \b
    Example:
      catalog audit verify --checkpoint /secure/checkpoint.json
      catalog audit log --since 2024-01-01 --action write
    """


EVENT_COLUMNS = ("seq", "at", "action", "artifact_id", "path", "status", "actor", "details", "hash")


@audit.command("log")
@click.option("--since", type=UTCTime(), help="Recorded at or after TIME.")
@click.option("--until", type=UTCTime(), help="Recorded before TIME.")
@click.option("--action", "actions", multiple=True, metavar="ACTION", help="Only this action (repeatable), e.g. write.")
@click.option("--path", help="Only events about this path; * and ? match any characters / one character.")
@click.option("--actor", "actor_text", metavar="TEXT", help="Only events whose actor contains TEXT.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@format_option()
@pass_state
def audit_log(
    state: State, since: Any, until: Any, actions: tuple[str, ...], path: str | None, actor_text: str | None,
    limit: int | None, fmt: str,
) -> None:  # fmt: skip
    """The audit events, oldest first: who did what to which artifact, when.

    \b
    Example:
      catalog audit log --path 'ledger/*' --since 2024-01-01T00:00:00Z
      catalog audit log --actor alice --format ndjson > alice.ndjson
    """
    from .query import EventQuery, iter_event_log

    query = EventQuery(since, until, actions, path, actor_text, limit)
    with state.catalog() as catalog:
        rows = (event.to_dict() for event in iter_event_log(catalog, query))
        if fmt in ("table", "csv"):
            rows = ({**row, "details": json.dumps(row["details"], sort_keys=True)} for row in rows)
        columns = EVENT_COLUMNS if fmt != "table" else ("seq", "at", "action", "path", "status", "actor", "details")
        show_rows(rows, columns, fmt, "events")


@audit.command("verify")
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="FILE",
              help="A checkpoint the log must still extend (repeatable); those in audit.checkpoint_dir are added.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json for programs.")  # fmt: skip
@pass_state
def audit_verify(state: State, checkpoints: tuple[str, ...], fmt: str) -> None:
    """Prove the log intact: recompute the chain, replay every artifact row, check checkpoints.

    Exit 0 when all is well, 1 when anything is broken (the first broken
    sequence number is named), 2 on error.

    \b
    Example:
      catalog audit verify
      catalog audit verify --checkpoint /mnt/worm/checkpoint-000000001234-20240131T000000Z.json
    """
    from .audit import read_checkpoint
    from .evidence import configured_checkpoints

    with state.catalog() as catalog:
        loaded = [read_checkpoint(Path(p)) for p in checkpoints] + configured_checkpoints(catalog)
        report = catalog.audit_verify(loaded)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif report.ok:
        extra = f" and extends {report.checkpoints} checkpoint(s)" if report.checkpoints else ""
        click.echo(f"All is well: {report.count} events chain from the first to the head (seq {report.head_seq}), "
                   f"all {report.artifacts} artifact rows agree with their events{extra}.")  # fmt: skip
    else:
        first = report.first
        where = f"at seq {first.seq}" if first.seq is not None else "in the artifact rows"
        click.echo(f"BROKEN {where}: {first.kind}: {first.message}")
        for problem in report.problems[1:20]:
            click.echo(f"  also: seq {problem.seq}: {problem.kind}: {problem.message}")
        if len(report.problems) > 20:
            click.echo(f"  … and {len(report.problems) - 20} more (see --format json)")
        click.echo("Keep this catalog as it is (it is evidence) and compare it with your backups and checkpoints.")
    if not report.ok:
        sys.exit(1)


@audit.command("checkpoint")
@click.option("-o", "--output", metavar="FILE", help="Write the checkpoint to FILE (outside the store).")
@pass_state
def audit_checkpoint(state: State, output: str | None) -> None:
    """Record the chain head (seq, hash, time) to keep outside the store.

    Written to FILE, else into audit.checkpoint_dir, else printed. The
    checkpoint is itself an event of the log. Later, `audit verify
    --checkpoint FILE` proves the log still extends it, which catches even a
    consistent rewrite of the whole chain.

    \b
    Example:
      catalog audit checkpoint -o /mnt/worm/checkpoint-$(date -u +%Y%m%d).json
    """
    from .evidence import take_checkpoint

    with state.catalog() as catalog:
        checkpoint, data, written = take_checkpoint(catalog, Path(output) if output else None)
    if written is None:
        sys.stdout.write(data.decode())
    else:
        click.echo(f"Checkpoint at seq {checkpoint.seq} written to {written}.")


@audit.command("export")
@click.argument("output", metavar="OUT.zip")
@click.option("--since", type=UTCTime(), help="Events recorded at or after TIME.")
@click.option("--until", type=UTCTime(), help="Events recorded before TIME.")
@click.option("--include-files", is_flag=True, help="Put the artifact files themselves in the bundle too.")
@pass_state
def audit_export(state: State, output: str, since: Any, until: Any, include_files: bool) -> None:
    """Write a self-contained evidence bundle that `audit verify-bundle` checks anywhere.

    The bundle holds the events of the window (a contiguous run of the
    chain), the artifact rows they touch, a manifest of the files with their
    checksums, the checkpoints, and with --include-files the files. It is
    sealed: changing any byte of it is detected.

    \b
    Example:
      catalog audit export --since 2024-01-01 --until 2024-04-01 q1-evidence.zip --include-files
    """
    from .evidence import export_bundle

    with state.catalog() as catalog:
        summary = export_bundle(catalog, Path(output), since, until, include_files)
    span = f"events {summary.first_seq}..{summary.last_seq}" if summary.events else "no events"
    click.echo(f"Wrote {summary.path}: {span} ({summary.events}), {summary.artifacts} artifact rows, "
               f"{summary.files} files.")  # fmt: skip
    for path in summary.skipped_files:
        click.echo(f"  not included (missing or no longer matching the catalog): {path}")


@audit.command("verify-bundle")
@click.argument("bundle", metavar="BUNDLE.zip")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json for programs.")  # fmt: skip
def audit_verify_bundle(bundle: str, fmt: str) -> None:
    """Check an evidence bundle on any machine, without the catalog.

    Exit 0 when it verifies, 1 when anything in it was altered, 2 on error.

    \b
    Example:
      catalog audit verify-bundle q1-evidence.zip
    """
    from .evidence import verify_bundle

    report = verify_bundle(Path(bundle))
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif report.ok:
        span = f"events {report.first_seq}..{report.last_seq}" if report.events else "no events"
        click.echo(f"Bundle verifies: {span} chain intact, {report.artifacts} artifact rows and {report.files} "
                   "files match their records.")  # fmt: skip
    else:
        click.echo(f"Bundle does NOT verify: {report.problems[0]}")
        for problem in report.problems[1:20]:
            click.echo(f"  also: {problem}")
    if not report.ok:
        sys.exit(1)


@cli.group("explain")
def explain_group() -> None:
    """Explainability reports: render one, or import one written elsewhere.

    \b
    Example:
      catalog explain show explain/20240115-103000-momentum_scan-explain.json
      catalog explain import ./scan.json --prefix momentum_scan
    """


def _read_report(state: State, source: str) -> tuple[bytes, str]:
    """A report's bytes: a file outside the store, or a catalogued artifact (verified first)."""
    import io

    from .errors import InputError, NotFoundError

    path = Path(source)
    base = state.settings.base_dir
    if path.is_file() and not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(base)):
        return _read_input(source), source
    try:
        with state.catalog() as catalog:
            buffer = io.BytesIO()
            record = catalog.copy_verified(source, buffer)
            return buffer.getvalue(), record.path
    except NotFoundError:
        if path.exists() and not path.is_file():
            raise InputError(f"{source} is a folder, not a report") from None
        raise InputError(f"{source} is neither a report file nor an artifact in the catalog") from None


@explain_group.command("show")
@click.argument("source", metavar="PATH|FILE")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table: the console view; json: the report as loaded, with the rules it breaks.")  # fmt: skip
@pass_state
def explain_show(state: State, source: str, fmt: str) -> None:
    """Render an explain report: the ranked table, the gates that failed and why, the top reasons.

    SOURCE is a catalogued artifact (its bytes are verified first) or any
    report file, such as one written by the original Go scanner.

    \b
    Example:
      catalog explain show explain/20240115-103000-momentum_scan-explain.json
      catalog explain show ~/old-scans/20240115-103000-momentum_scan-explain.json
    """
    from .explain import ExplainReport, check_report, render

    data, _ = _read_report(state, source)
    report = ExplainReport.from_json(data, lenient=True)
    violations = check_report(report)
    if fmt == "json":
        out = {"report": report.to_dict(), "broken_rules": list(report.load_notes) + [str(v) for v in violations]}
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(render(report, violations), nl=False)


@explain_group.command("import")
@click.argument("source", metavar="FILE")
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
    from .naming import validate_prefix
    from .writer import AtomicWriter

    validate_prefix(prefix)
    data = _read_input(source)
    with state.catalog() as catalog:
        records, broken = AtomicWriter(catalog=catalog).import_explain(data, prefix, source=Path(source).name)
    show_records(records, fmt)
    if fmt == "table":
        for rule in broken:
            click.echo(f"  breaks: {rule}")


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
    from .naming import validate_prefix
    from .writer import AtomicWriter

    validate_prefix(prefix)
    with state.catalog() as catalog:
        record = AtomicWriter(catalog=catalog).snapshot_config(prefix)
    show_records([record], fmt)


@contextmanager
def _progress(label: str, files: int, size: int, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar (files and bytes, rate, ETA) on a terminal's stderr; nothing in pipes."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    seen = {"files": 0, "bytes": 0}
    start = time.monotonic()

    def describe(_: Any) -> str:
        rate = seen["bytes"] / max(time.monotonic() - start, 1e-6)
        return f"{seen['files']}/{files} files, {human_size(seen['bytes'])}, {human_size(int(rate))}/s"

    with click.progressbar(length=max(size, 1) if size else max(files, 1), label=label, file=sys.stderr,
                           show_eta=True, item_show_func=describe) as bar:  # fmt: skip

        def step(n_files: int, n_bytes: int) -> None:
            seen["files"] += n_files
            seen["bytes"] += n_bytes
            bar.update(n_bytes if size else n_files)

        yield step


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

    Classes: orphan, missing, moved, modified, half_pair, stale_temp, restored
    (drift: exit 1, also after fixing, so schedulers notice), foreign and
    in_flight (listed, never touched, not drift). Nothing is ever deleted
    except stale temp files whose writer is gone; modified files move to
    quarantine/.

    \b
    Example:
      catalog reconcile --deep
      catalog reconcile --deep --fix --grace 0 --format json
    """
    from .reconcile import expected_work, reconcile as run_reconcile

    with state.catalog() as catalog:
        files, size = expected_work(catalog, types)
        with _progress("reconcile", files, size if deep else 0, fmt == "table") as step:
            report = run_reconcile(catalog, deep=deep, fix=fix, grace=grace, types=types, progress=step)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif fmt == "table" and not report.findings:
        click.echo(f"Clean: {report.files} files and {report.rows} catalogued artifacts agree"
                   + (" (sizes and SHA-256)." if deep else " (sizes; --deep also compares SHA-256)."))  # fmt: skip
    else:
        rows = ({"class": f.cls, "path": f.path, "reason": f.reason, "fixed": f.fixed or ""} for f in report.findings)
        show_rows(rows, ("class", "path", "reason", "fixed"), fmt, "findings")
        if fmt == "table" and report.drift:
            counts = ", ".join(f"{n} {c}" for c, n in report.counts().items() if n and c not in ("foreign", "in_flight"))
            click.echo(f"Drift: {counts}." + ("" if fix else " Run `catalog reconcile --deep --fix` to repair the catalog."))
    if report.drift:
        sys.exit(1)


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
    from .verify import Scope, parse_subset, verify as run_verify

    state = ctx.find_object(State)
    scope = Scope(types, since, sample, seed, parse_subset(subset) if subset else None)
    with state.catalog() as catalog:
        from .reconcile import expected_work

        files, size = expected_work(catalog, types)
        with _progress("verify", files, size, fmt == "table") as step:
            report = run_verify(catalog, scope, workers=workers, progress=step)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        bad = [{"outcome": "failed", **f} for f in report.failed] + [{"outcome": "missing", **m} for m in report.missing]
        if bad or fmt != "table":
            show_rows(bad, ("outcome", "path", "reason"), fmt, "failures")
        if fmt == "table":
            if report.clean:
                click.echo(f"Verified: all {report.checked} files checked match the catalog (run {report.run_id}).")
            else:
                click.echo(f"Verify run {report.run_id}: {len(report.failed)} failed, {len(report.missing)} missing of "
                           f"{report.checked} checked. Next: `catalog reconcile --deep` to classify them, then "
                           "`--fix` to quarantine and record.")  # fmt: skip
    if not report.clean:
        sys.exit(1)


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
    from .verify import history

    with state.catalog() as catalog:
        runs = history(catalog, limit)
    if fmt in ("table", "csv"):
        runs = [{**r, "scope": json.dumps(r["scope"], sort_keys=True)} for r in runs]
    show_rows(runs, ("run_id", "started_at", "checked", "ok", "failed", "missing", "duration_s", "scope"), fmt, "runs")


PLAN_COLUMNS = ("path", "type", "action", "reason", "age_days", "expires_at", "size", "status")


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
@format_option()
@pass_state
def retention_plan(state: State, types: tuple[str, ...], now: Any, fmt: str) -> None:
    """List every artifact past its retention: delete, archive, or protected (hold, retain_until) and why.

    Expiry is max(created_at, recorded_at) + the type's days (never below the
    type's floor, never before the row's retain_until). Reads no folder.

    \b
    Example:
      catalog retention plan
      catalog retention plan --type ledger --now 2025-06-30 --format json
    """
    from .retention import plan

    with state.catalog() as catalog:
        show_rows((row.to_dict() for row in plan(catalog, now=now, types=types)), PLAN_COLUMNS, fmt, "plan")


@retention.command("apply")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@format_option()
@pass_state
def retention_apply(state: State, yes: bool, fmt: str) -> None:
    """Delete and archive exactly what the plan says for the real current time.

    Crash-safe by intents: a run killed at any point and run again finishes
    the job, with nothing done twice. Asks for confirmation on a terminal;
    scripts pass --yes. One summary event per run.

    \b
    Example:
      catalog retention apply
      catalog retention apply --yes --format json
    """
    from .errors import ValidationError
    from .retention import apply, plan

    with state.catalog() as catalog:
        rows = [row for row in plan(catalog) if row.action in ("delete", "archive")]
        if not yes:
            if not sys.stdin.isatty():
                raise ValidationError("retention apply needs --yes when not run from a terminal")
            show_rows((row.to_dict() for row in rows), PLAN_COLUMNS, "table", "plan")
            click.confirm(f"Delete or archive these {len(rows)} artifacts?", abort=True, err=True)
        report = apply(catalog, rows)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"Retention applied: {len(report.deleted)} deleted, {len(report.archived)} archived"
                   + (f", {len(report.resumed)} finished from an interrupted run" if report.resumed else "")
                   + (f", {report.protected} protected" if report.protected else "") + ".")  # fmt: skip
        for path in report.missing:
            click.echo(f"  missing (reported, not deleted by retention): {path}")
    if report.missing:
        sys.exit(1)


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
    """Place a legal hold on one artifact (PATH), a prefix or a type.

    \b
    Example:
      catalog hold add ledger/20240115-080000-portfolio-ledger.json --reason "audit 2024"
      catalog hold add --type ledger --since 2024-01-01 --until 2024-04-01 --reason "Q1 review"
    """
    from .retention import add_hold

    with state.catalog() as catalog:
        placed = add_hold(catalog, path=path, prefix=prefix, artifact_type=artifact_type, since=since, until=until,
                          reason=reason)  # fmt: skip
    show_rows([placed.to_dict()], HOLD_COLUMNS, fmt, "holds")


HOLD_COLUMNS = ("id", "kind", "selector", "since", "until", "reason", "placed_at", "placed_by", "released_at")


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
    from .retention import release_hold

    with state.catalog() as catalog:
        release_hold(catalog, hold_id, reason)
    click.echo(f"Hold {hold_id} released.")


@hold.command("ls")
@click.option("--all", "include_released", is_flag=True, help="Include released holds.")
@format_option()
@pass_state
def hold_ls(state: State, include_released: bool, fmt: str) -> None:
    """List legal holds (active ones unless --all).

    \b
    Example:
      catalog hold ls --all --format json
    """
    from .retention import holds

    with state.catalog() as catalog:
        rows = [h.to_dict() for h in holds(catalog, include_released)]
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
    from .retention import set_floor

    with state.catalog() as catalog:
        before = set_floor(catalog, artifact_type, days, reason)
    click.echo(f"{artifact_type} floor: {before if before is not None else 'none'} -> {days} days.")


@policy_floor.command("show")
@format_option()
@pass_state
def policy_floor_show(state: State, fmt: str) -> None:
    """The floors in force, beside each type's configured policy.

    \b
    Example:
      catalog policy floor show --format json
    """
    from .retention import floors

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
    from .errors import NotFoundError, ValidationError
    from .query import ArtifactQuery, iter_artifacts
    from .retention import extend

    if sum(x is not None for x in (path, prefix, artifact_type)) != 1:
        raise ValidationError("give exactly one of: PATH, --prefix, --type")
    with state.catalog() as catalog:
        if path is not None:
            record = catalog.find_path(path)
            if record is None:
                raise NotFoundError(f"no artifact at {catalog.relative(path)} in the catalog")
            records = [record]
        else:
            query = ArtifactQuery(types=(artifact_type,) if artifact_type else (), prefix=prefix)
            records = list(iter_artifacts(catalog, query))
        changed = extend(catalog, records, until, reason)
    click.echo(f"Extended {len(changed)} of {len(records)} artifacts to {until:%Y-%m-%dT%H:%M:%SZ} "
               "(those already kept longer are unchanged).")  # fmt: skip


@cli.command("limits")
@format_option()
@pass_state
def limits_cmd(state: State, fmt: str) -> None:
    """Files and bytes per folder and for the store against the limits; warn at 80 %, exit 1 when over.

    Answered from the catalog alone: no folder is read.

    \b
    Example:
      catalog limits
      catalog limits --format json | jq '.limits[] | select(.level != "ok")'
    """
    from .limits import limits

    with state.catalog() as catalog:
        rows = limits(catalog)
    show_rows(rows, ("scope", "name", "files", "max_files", "bytes", "max_bytes", "level"), fmt, "limits")
    if any(row["level"] == "over" for row in rows):
        sys.exit(1)


@cli.command("status")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json for dashboards.")  # fmt: skip
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
    from .operations import status

    with state.catalog() as catalog:
        result = status(catalog)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for key, value in result.facts.items():
            click.echo(f"{key + ':':<27}{json.dumps(value) if isinstance(value, (dict, list)) else value}")
        click.echo("")
        click.echo("Needs a person:" if result.attention else "Nothing needs a person.")
        for line in result.attention:
            click.echo(f"  - {line}")
    if result.attention:
        sys.exit(1)


@cli.command("backup")
@click.argument("output", metavar="OUT")
@pass_state
def backup_cmd(state: State, output: str) -> None:
    """Copy the SQLite catalog online (writers may go on) and record the chain head it captured.

    Restore: put the copy back as <base_dir>/catalog.sqlite, run `catalog
    reconcile --deep` (files written since the backup are adopted), then
    `catalog audit verify --checkpoint` with a checkpoint taken before.
    PostgreSQL: use pg_dump (the error says how).

    \b
    Example:
      catalog backup /backups/catalog-$(date -u +%Y%m%d).sqlite
    """
    from .operations import backup

    with state.catalog() as catalog:
        done = backup(catalog, Path(output))
    click.echo(f"Backup written to {done['file']} (chain head seq {done['head_seq']}).")


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
    from .demo import run_demo
    from .query import iter_artifacts
    from .store import Catalog

    catalog, _, _ = Catalog.init(state.settings, actor=state.actor)
    with catalog:
        records = run_demo(catalog, assets=assets, seed=seed)
        click.echo(f"Wrote {len(records)} artifacts into {catalog.base_dir}:")
        show_rows(
            ({"path": r.path, "type": r.type, "size": r.size, "sha256": r.sha256} for r in records),
            ("path", "type", "size", "sha256"), "table", "artifacts",
        )  # fmt: skip
        report = catalog.audit_verify()
        click.echo(f"Catalog: {sum(1 for _ in iter_artifacts(catalog))} artifacts; audit log of {report.count} events "
                   + ("verifies." if report.ok else "is BROKEN: " + "; ".join(p.message for p in report.problems[:3])))  # fmt: skip


def main() -> None:
    """Console-script entry point."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("Warning: %(message)s"))
    logger = logging.getLogger("catalog")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    cli.main(prog_name="catalog")
