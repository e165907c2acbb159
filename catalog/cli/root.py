"""The root command group, its global options, and the error boundary.

Every command parses its options, makes one API call and renders the result.
Errors become one ``Error:`` line here, once: an API error is shown with this
command line's own flag names in place of the API's parameter names, and with
the command that helps (its :class:`~catalog.core.errors.Remedy`) appended.
Exit codes: 0 ok, 1 findings, 2 every error; ``catalog`` (or a group) without
a command shows its help, exit 0. Messages are shown with control characters
escaped (:func:`catalog.core.text.printable`). A reader that closes the pipe
early (``catalog ls | head -1``) is not an error: the output stops, nothing is
said, and the exit code is the command's own (0, or 1 when it had already found
a problem: see :func:`exit_after`), so ``set -o pipefail`` scripts go on.
Standard tools die of SIGPIPE instead (status 141), which such scripts count
as a failure. Heavy modules (SQLAlchemy, alembic) are imported inside the
commands that need them, and each command's module only when it is run
(:mod:`.commands`), so ``catalog --help`` starts fast.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import BashComplete, CompletionItem, add_completion_class

from .. import __version__
from ..core.errors import CatalogError, Remedy, translate
from ..core.text import printable
from ..core.vocabulary import ENVIRONMENTS, FORMATS, HEAD_REVISION
from .commands import COMMANDS, LazyGroup, start_up, started
from .render import WIDE

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
    Remedy.AUDIT: ": run `catalog audit verify` to see what else disagrees",
}

#: The global flags that override settings, and how ``config show`` labels their values.
FLAG_SOURCES = {"environment": "flag:--env", "base_dir": "flag:--base-dir", "catalog_url": "flag:--catalog-url"}
_LEAF = "catalog.leaf"  # key in ctx.meta: the context of the command being run
_EXIT = "catalog.exit"  # key in ctx.meta: the exit code the command ends with (see exit_after)


class CLIError(click.ClickException):
    """An error shown as one ``Error:`` line (control characters escaped), exit code 2."""

    exit_code = 2

    def format_message(self) -> str:
        """The message as one line of text a terminal shows but does not act on."""
        return printable(self.message)


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


class CatalogGroup(LazyGroup):
    """Turns every error into one ``Error:`` line and exit code 2 (1 for findings); commands load when looked up."""

    command_class = CatalogCommand
    group_class = type  # subgroups are CatalogGroups too

    def invoke(self, ctx: click.Context) -> Any:
        """Run the group and its command; any error becomes one ``Error:`` line (re-raised with ``--debug``).

        The root group also ends the run: standard output flushed, then the
        exit code the command set with :func:`exit_after`; a closed pipe ends
        it quietly with that code.
        """
        ctx.meta[_LEAF] = ctx
        if ctx.parent is not None:
            return self._invoke(ctx)
        try:
            try:
                result = self._invoke(ctx)
            finally:
                sys.stdout.flush()  # here, where a closed pipe is still caught
        except BrokenPipeError:
            _discard_output()
            raise click.exceptions.Exit(ctx.meta.get(_EXIT, 0)) from None
        if ctx.meta.get(_EXIT):
            raise click.exceptions.Exit(ctx.meta[_EXIT])
        return result

    def _invoke(self, ctx: click.Context) -> Any:
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
        """Parse the arguments into a context; a usage error becomes one line pointing at ``--help``.

        No command at all is a request for help: it is shown on standard output, exit 0.
        """
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help())
            raise click.exceptions.Exit(0) from None
        except click.UsageError as exc:
            raise _usage(exc) from None


def exit_after(code: int) -> None:
    """End the running command with exit ``code`` (1: it found a problem) once its output is written.

    Set before the output, so that a reader closing the pipe early (``catalog
    verify | head -1``) still gets the command's answer as its exit code.
    """
    click.get_current_context().meta[_EXIT] = code


def _discard_output() -> None:
    """Point standard output at /dev/null: the reader has gone, and what is still buffered goes nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # not a real file (an in-process test runner): nothing is buffered there
        pass


def _usage(exc: click.UsageError) -> CLIError:
    """A usage error on one line, pointing at the help of the command it concerns."""
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    # click (8.2+) lays a missing choice out as "Choose from:\n\ta,\n\tb": on one line, "Choose from: a, b"
    message = exc.format_message().replace(":\n\t", ": ").replace(",\n\t", ", ")
    return CLIError(f"{message}{hint}")


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
        """The effective settings (defaults < file < environment < flags); the command has started once asked."""
        if self._settings is None:
            from ..core.settings import load_settings

            started()  # a command asks for them once its modules are loaded
            self._settings = load_settings(self.config_file, overrides=self.flags, override_sources=FLAG_SOURCES)
        return self._settings

    def catalog(self, check: bool = True) -> Catalog:
        """Open the store (``check``: refuse one that is missing or at another schema)."""
        from ..core.store import Catalog

        return Catalog(self.settings, check=check, actor=self.actor)


pass_state = click.make_pass_decorator(State)


def format_option(
    choices: tuple[str, ...] = FORMATS, help: str | None = None, tables: bool = True
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--format`` option: every listing's four formats, or ``choices`` (default table) with ``help``.

    With ``tables`` (the command shows a table) also ``--wide``.
    """
    if help is None:
        help = ("Output format: table for people; json, csv, ndjson for programs." if choices == FORMATS
                else "table for people, json for programs.")  # fmt: skip
    fmt = click.option("--format", "fmt", type=click.Choice(choices), default="table", show_default=True, help=help)

    def remember(ctx: click.Context, _: click.Parameter, value: bool) -> None:
        if value:
            ctx.meta[WIDE] = True

    wide = click.option("--wide", is_flag=True, expose_value=False, callback=remember,
                        help="Tables: every column, uncut (on a terminal, columns drop to fit its width).")  # fmt: skip
    return (lambda command: fmt(wide(command))) if tables else fmt


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


# -- shell completion ------------------------------------------------------------------


class _Bash(BashComplete):
    """Bash completion that falls back to the shell's own file names where the CLI offers nothing.

    Registered as "bash": `eval "$(_CATALOG_COMPLETE=bash_source catalog)"`
    installs it (click's own registers without ``-o default``, so a file name
    would not complete anywhere).
    """

    source_template = BashComplete.source_template.replace("complete -o nosort -F", "complete -o nosort -o default -F")


add_completion_class(_Bash)


def complete_files(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Shell completion of a file name (the shell's own)."""
    return [CompletionItem(incomplete, type="file")]


def complete_paths(statuses: tuple[str, ...] = (), files: bool = False) -> Callable[..., list[CompletionItem]]:
    """Shell completion of catalogued paths (with one of ``statuses`` if given; and file names with ``files``).

    The store is the one the command line names (global options, environment,
    config); if it cannot be opened, nothing is offered and nothing is said.
    """

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        from ..ops.query import paths_starting

        root = ctx.find_root().params
        flags = {name: root.get(name) for name in FLAG_SOURCES}
        try:
            with State(flags, root.get("config_file"), False, None).catalog() as catalog:
                paths = paths_starting(catalog, incomplete, statuses)
        except Exception:  # completing must never print an error into the user's command line
            paths = []
        return [CompletionItem(incomplete, type="file")] * files + [CompletionItem(path) for path in paths]

    return complete


@click.group(cls=CatalogGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})  # fmt: skip
@click.option("--base-dir", metavar="DIR", help="Store folder (overrides CRYPTORUN_ARTIFACTS_DIR and the config).",
              shell_complete=lambda ctx, param, incomplete: [CompletionItem(incomplete, type="dir")])  # fmt: skip
@click.option("--catalog-url", metavar="URL", help="Catalog database URL (default: SQLite in the base folder).")
@click.option("--config", "config_file", metavar="FILE", shell_complete=complete_files,
              help="Settings file (default: ./config/artifacts.yaml if present).")  # fmt: skip
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
    ends the process by the signal, quietly (see :mod:`catalog`). Garbage is
    collected rarely until the command asks for its settings (:func:`.commands.start_up`).
    """
    import logging
    import signal

    class Plain(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return printable(super().format(record))

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Plain("Warning: %(message)s"))
    logger = logging.getLogger("catalog")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        start_up()
        cli.main(prog_name="catalog")
    except KeyboardInterrupt:  # in the instant before or after click's own handling
        click.echo("Aborted!", err=True)
        sys.exit(1)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
