"""The root command group, its global options, and the error boundary.

Every command parses its options, makes one API call and renders the result.
Errors become one ``Error:`` line here, once: an API error is shown with this
command line's own flag names in place of the API's parameter names, and with
the command that helps (its :class:`~catalog.core.errors.Remedy`) appended.
Exit codes: 0 ok, 1 findings, 2 every error. Click's standalone handling
(Ctrl-C, a closed pipe) is kept. Heavy modules (SQLAlchemy, alembic) are
imported inside the commands that need them, so ``catalog --help`` starts fast.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import click

from .. import __version__
from ..core.errors import CatalogError, Remedy, translate
from ..core.vocabulary import ENVIRONMENTS, FORMATS, HEAD_REVISION
from .render import human_size

if TYPE_CHECKING:
    from ..core.settings import Settings
    from ..core.store import Catalog

#: How the command line words each next step an API error or finding names (appended to the message).
REMEDIES: dict[Remedy, str] = {
    Remedy.INIT: ": run `catalog init` first",
    Remedy.UPGRADE: ": run `catalog db upgrade`",
    Remedy.RECONCILE: ": run `catalog reconcile`",
    Remedy.RECONCILE_DEEP: ": run `catalog reconcile --deep`",
    Remedy.ADOPT: ": run `catalog reconcile --fix` to adopt it",
    Remedy.PG_DUMP: "; for PostgreSQL use `pg_dump --format=custom --file=catalog.dump DBNAME`, then "
    "`catalog audit checkpoint -o FILE` and keep both",
    Remedy.VERIFY: ": run `catalog verify`",
    Remedy.FINDINGS: ": see `catalog findings ls`; once a person has looked, `catalog findings resolve ID --reason …`",
    Remedy.APPLY_RETENTION: ": run `catalog retention apply`",
    Remedy.FINISH_RETENTION: ": run `catalog retention apply --yes`",
    Remedy.LIMITS: ": see `catalog limits`",
}

#: The global flags that override settings, and how ``config show`` labels their values.
FLAG_SOURCES = {"environment": "flag:--env", "base_dir": "flag:--base-dir", "catalog_url": "flag:--catalog-url"}
_LEAF = "catalog.leaf"  # key in ctx.meta: the context of the command being run


class CLIError(click.ClickException):
    """An error shown as one ``Error:`` line, exit code 2."""

    exit_code = 2


class CLIFinding(CLIError):
    """A finding shown as one ``Error:`` line, exit code 1 (e.g. bytes that no longer match)."""

    exit_code = 1


def cli_error(message: str, exit_code: int = 2) -> CLIError:
    """The click exception that shows ``message`` and exits with ``exit_code`` (1 or 2)."""
    return CLIFinding(message) if exit_code == 1 else CLIError(message)


def _shown(param: click.Parameter) -> str:
    """How a parameter is written on this command line: its long flag, or an argument's metavar."""
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return param.human_readable_name


def flag_names(ctx: click.Context | None) -> dict[str, str]:
    """API parameter name -> flag, for the command being run and every group above it."""
    names: dict[str, str] = {}
    while ctx is not None:
        for param in ctx.command.params:
            if param.name is not None:
                names.setdefault(param.name, _shown(param))
        ctx = ctx.parent
    return names


def describe(error: CatalogError, ctx: click.Context | None = None) -> str:
    """An API error as this command line says it: its flags for parameters, and the command that helps."""
    names = flag_names(ctx)
    text = error.render(lambda name: names.get(name, name))
    return text + (REMEDIES[error.remedy] if error.remedy is not None else "")


def remedy_text(message: str, remedy: Remedy | None) -> str:
    """A finding's message with the command that helps appended."""
    return message + (REMEDIES[remedy] if remedy is not None else "")


class CatalogCommand(click.Command):
    """A command that remembers itself as the one being run (the error boundary names its flags)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Mark this context as the command being run, then run it."""
        ctx.meta[_LEAF] = ctx
        return super().invoke(ctx)


class CatalogGroup(click.Group):
    """Turns every error into one ``Error:`` line and exit code 2 (1 for findings)."""

    command_class = CatalogCommand
    group_class = type  # subgroups are CatalogGroups too

    def invoke(self, ctx: click.Context) -> Any:
        """Run the group and its command; any error becomes one ``Error:`` line (re-raised with ``--debug``)."""
        ctx.meta[_LEAF] = ctx
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _usage(exc) from None
        except (click.exceptions.Exit, click.Abort, click.ClickException, BrokenPipeError):
            raise  # click's own standalone handling
        except Exception as exc:  # the CLI boundary: nothing reaches the user raw
            if _debug(ctx):
                raise
            known = translate(exc)
            leaf = ctx.meta.get(_LEAF, ctx)
            if known is not None:
                raise cli_error(describe(known, leaf), known.exit_code) from None
            raise CLIError(
                f"internal error ({type(exc).__name__}: {exc}); rerun with --debug for the traceback and report it"
            ) from None

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:  # fmt: skip
        """Parse the arguments into a context; a usage error becomes one line pointing at ``--help``."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _usage(exc) from None


def _usage(exc: click.UsageError) -> CLIError:
    """A usage error on one line, pointing at the help of the command it concerns."""
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return CLIError(f"{exc.format_message()}{hint}")


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
        """The effective settings (defaults < file < environment < flags)."""
        if self._settings is None:
            from ..core.settings import load_settings

            self._settings = load_settings(self.config_file, overrides=self.flags, override_sources=FLAG_SOURCES)
        return self._settings

    def catalog(self, check: bool = True) -> Catalog:
        """Open the store (``check``: refuse one that is missing or at another schema)."""
        from ..core.store import Catalog

        return Catalog(self.settings, check=check, actor=self.actor)


pass_state = click.make_pass_decorator(State)


def format_option(choices: tuple[str, ...] = FORMATS, help: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--format`` option: every listing's four formats, or ``choices`` (default table) with ``help``."""
    if help is None:
        help = ("Output format: table for people; json, csv, ndjson for programs." if choices == FORMATS
                else "table for people, json for programs.")  # fmt: skip
    return click.option("--format", "fmt", type=click.Choice(choices), default="table", show_default=True, help=help)


class Whole(click.ParamType):
    """A whole number written with ASCII digits, within bounds."""

    name = "INTEGER"

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The value as an int; a usage error unless it is ASCII digits within bounds."""
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
        """The value as an aware UTC datetime; a usage error if it is not a time."""
        from ..core.errors import ValidationError
        from ..core.formats import parse_time

        if not isinstance(value, str):
            return value
        try:
            return parse_time(value)
        except ValidationError as exc:
            self.fail(str(exc), param, ctx)


def read_input(source: str) -> bytes:
    """The bytes of an input file, or of standard input for ``-``; InputError if unreadable or empty."""
    from ..core.errors import InputError
    from ..core.fs import read_file

    if source == "-":
        data = sys.stdin.buffer.read()
        if not data:
            raise InputError("standard input is empty")
        return data
    data = read_file(source, "input file", InputError)
    if not data:
        raise InputError(f"input file {source} is empty")
    return data


@contextmanager
def open_input(source: str) -> Iterator[Iterator[bytes]]:
    """The bytes of an input file, or of standard input for ``-``, as they are read (in chunks).

    InputError if the file cannot be opened, or the input is empty.
    """
    from ..core.errors import InputError
    from ..core.fs import open_file, read_chunks

    with nullcontext(sys.stdin.buffer) if source == "-" else open_file(source, "input file", InputError) as stream:
        chunks = read_chunks(stream)
        first = next(chunks, b"")
        if not first:
            raise InputError("standard input is empty" if source == "-" else f"input file {source} is empty")
        yield itertools.chain([first], chunks)


@contextmanager
def progress(label: str, files: int, size: int, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar (files and bytes, rate, ETA) on a terminal's stderr; nothing in pipes."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    seen = {"files": 0, "bytes": 0}
    start = time.monotonic()

    def describe_step(_: Any) -> str:
        rate = seen["bytes"] / max(time.monotonic() - start, 1e-6)
        return f"{seen['files']}/{files} files, {human_size(seen['bytes'])}, {human_size(int(rate))}/s"

    with click.progressbar(length=max(size, 1) if size else max(files, 1), label=label, file=sys.stderr,
                           show_eta=True, item_show_func=describe_step) as bar:  # fmt: skip

        def step(n_files: int, n_bytes: int) -> None:
            seen["files"] += n_files
            seen["bytes"] += n_bytes
            bar.update(n_bytes if size else n_files)

        yield step


@click.group(cls=CatalogGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--base-dir", metavar="DIR", help="Store folder (overrides CRYPTORUN_ARTIFACTS_DIR and the config).")
@click.option("--catalog-url", metavar="URL", help="Catalog database URL (default: SQLite in the base folder).")
@click.option("--config", "config_file", metavar="FILE", help="Settings file (default: ./config/artifacts.yaml if present).")
@click.option("--env", "environment", type=click.Choice(list(ENVIRONMENTS)), help="Environment (picks the base folder).")
@click.option("--actor", metavar="NAME", envvar="CRYPTORUN_ACTOR",
              help="A name to record beside your OS user in audit events (also CRYPTORUN_ACTOR).")  # fmt: skip
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


def main() -> None:
    """Console-script entry point: warnings to stderr as ``Warning: …``, then click's standalone main.

    Ctrl-C is click's to handle ("Aborted!", exit 1) only while the command runs:
    before (while Python imports the package) and after (while it shuts down) it
    ends the process by the signal, quietly (see :mod:`catalog`).
    """
    import logging
    import signal

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("Warning: %(message)s"))
    logger = logging.getLogger("catalog")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        cli.main(prog_name="catalog")
    except KeyboardInterrupt:  # in the instant before or after click's own handling
        click.echo("Aborted!", err=True)
        sys.exit(1)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
