"""Errors speak the API's language; the command line renders them with its own flags and next steps."""

from __future__ import annotations

import errno
import shlex
from datetime import datetime, timezone
from pathlib import Path

import click
import pytest
import sqlalchemy.exc as sa_exc

from catalog.cli import cli
from catalog.cli.root import REMEDIES, describe, remedy_text
from catalog.core.errors import (
    CatalogDatabaseError,
    CatalogError,
    CollisionError,
    CommitError,
    ConfigError,
    InputError,
    IntegrityError,
    NotFoundError,
    Param,
    Remedy,
    SchemaError,
    StoreError,
    ValidationError,
    translate,
)
from catalog.core.settings import Settings, load_settings
from catalog.core.store import Catalog
from catalog.ops.query import ArtifactQuery

from helpers import subcommands

UTC = timezone.utc
SINCE_UNTIL = ("since", " must be earlier than ", "until")


def _since_until() -> ValidationError:
    return ValidationError(Param("since"), " must be earlier than ", Param("until"))


# -- parts and parameters ----------------------------------------------------------------------


def test_an_error_names_parameters_as_python_does() -> None:
    error = _since_until()
    assert str(error) == "since must be earlier than until"
    assert error.param == "since"
    assert error.parts == (Param("since"), " must be earlier than ", Param("until"))
    assert error.render(lambda name: f"<{name}>") == "<since> must be earlier than <until>"
    assert error.value is None and error.remedy is None


def test_an_error_without_parameters() -> None:
    error = NotFoundError("no artifact with id 7", value=7, remedy=Remedy.RECONCILE)
    assert str(error) == "no artifact with id 7"  # the API never appends a command
    assert error.param is None and error.value == 7 and error.remedy is Remedy.RECONCILE


def test_the_api_raises_the_since_until_error() -> None:
    with pytest.raises(ValidationError) as caught:
        ArtifactQuery(since=datetime(2024, 2, 1, tzinfo=UTC), until=datetime(2024, 1, 1, tzinfo=UTC))
    assert str(caught.value) == "since must be earlier than until" and caught.value.param == "since"


@pytest.mark.parametrize(
    "cls, code",
    [(CatalogError, 2), (ConfigError, 2), (ValidationError, 2), (CollisionError, 2), (InputError, 2),
     (NotFoundError, 2), (StoreError, 2), (CatalogDatabaseError, 2), (SchemaError, 2), (CommitError, 2),
     (IntegrityError, 1)],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)  # fmt: skip
def test_exit_codes(cls: type[CatalogError], code: int) -> None:
    assert cls.exit_code == code


def test_a_commit_error_names_its_files_and_points_at_adopting_them() -> None:
    error = CommitError("published ledger/a.json but could not record it", paths=("ledger/a.json",))
    assert error.paths == ("ledger/a.json",) and error.value == ("ledger/a.json",)
    assert error.remedy is Remedy.ADOPT
    assert str(error) == "published ledger/a.json but could not record it"


# -- the command line's rendering --------------------------------------------------------------


def _context(*names: str) -> click.Context:
    """A real click context for ``catalog <names…>``, each level the parent of the next."""
    ctx = click.Context(cli, info_name="catalog")
    command: click.Command = cli
    for name in names:
        assert isinstance(command, click.Group)
        command = subcommands(command)[name]
        ctx = click.Context(command, info_name=name, parent=ctx)
    return ctx


def test_describe_uses_the_commands_flags() -> None:
    root = click.Context(cli, info_name="catalog")
    ls_ctx = subcommands(cli)["ls"].make_context("ls", [], parent=root)
    assert describe(_since_until(), ls_ctx) == "--since must be earlier than --until"


@pytest.mark.parametrize(
    "command, error, shown",
    [
        (("hold", "add"), ValidationError("a hold covers exactly one of: ", Param("path"), ", ", Param("prefix"), ", ",
                                          Param("artifact_type")), "a hold covers exactly one of: PATH, --prefix, --type"),
        (("ls",), ValidationError(Param("base_dir"), " is wrong"), "--base-dir is wrong"),
        (("ls",), ValidationError(Param("workers"), " must be from 1 to 64"), "workers must be from 1 to 64"),
        (("verify",), ValidationError(Param("workers"), " must be from 1 to 64"), "--workers must be from 1 to 64"),
        (("ls",), SchemaError("no catalog at x", remedy=Remedy.INIT), "no catalog at x: run `catalog init` first"),
        (("audit", "checkpoint"), ValidationError(Param("output"), " is inside the store"), "--output is inside the store"),
    ],
    ids=["argument-metavar-and-renamed-option", "global-flag-of-the-root", "unknown-to-this-command-stays-python",
         "known-to-this-command", "remedy-appended",
         "the-long-form-of-a-short-option"],
)  # fmt: skip
def test_describe_in_real_contexts(command: tuple[str, ...], error: CatalogError, shown: str) -> None:
    assert describe(error, _context(*command)) == shown


def test_describe_without_a_context_keeps_the_python_names() -> None:
    assert describe(_since_until()) == "since must be earlier than until"


def test_the_command_line_shows_its_flags(catalog: Catalog, run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("ls", "--since", "2024-02-01", "--until", "2024-01-01")
    assert result.exit_code == 2
    assert result.stderr == "Error: --since must be earlier than --until\n"
    assert result.stdout == ""


def test_the_command_line_adds_the_next_step(settings: Settings, base_dir: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StoreError) as caught:
        Catalog(settings)
    assert str(caught.value) == f"base folder {base_dir} does not exist" and caught.value.remedy is Remedy.INIT
    result = run_cli("ls")
    assert result.exit_code == 2
    assert result.stderr == f"Error: base folder {base_dir} does not exist: run `catalog init` first\n"


def test_every_remedy_has_a_command_line_wording() -> None:
    assert set(REMEDIES) == set(Remedy)
    assert list(REMEDIES) == list(Remedy)  # in the enum's order, so none is overlooked


COMMANDS = {
    Remedy.INIT: ["catalog init"],
    Remedy.UPGRADE: ["catalog db upgrade"],
    Remedy.RECONCILE: ["catalog reconcile"],
    Remedy.RECONCILE_DEEP: ["catalog reconcile --deep"],
    Remedy.ADOPT: ["catalog reconcile --fix"],
    Remedy.PG_DUMP: ["catalog audit checkpoint -o FILE"],
    Remedy.VERIFY: ["catalog verify"],
    Remedy.FINDINGS: ["catalog findings ls", "catalog findings resolve ID --reason …"],
    Remedy.APPLY_RETENTION: ["catalog retention apply"],
    Remedy.FINISH_RETENTION: ["catalog retention apply --yes"],
    Remedy.LIMITS: ["catalog limits"],
    Remedy.AUDIT: ["catalog audit verify"],
}


def _backticked(text: str) -> list[str]:
    return [part for n, part in enumerate(text.split("`")) if n % 2 == 1 and part.startswith("catalog ")]


def _check_command_exists(line: str) -> None:
    """Every word of a ``catalog …`` line names a real subcommand, and every flag a real option of it."""
    words = shlex.split(line)[1:]
    command: click.Command = cli
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        assert words[0] in subcommands(command), f"{line}: no command {words[0]!r}"
        command = subcommands(command)[words.pop(0)]
    runnable = not isinstance(command, click.Group) or command.invoke_without_command
    assert runnable, f"{line}: names a group that does nothing by itself"
    flags = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for word in words:
        if word.startswith("-"):
            assert word in flags, f"{line}: {command.name} has no option {word}"


@pytest.mark.parametrize("remedy", list(Remedy), ids=[r.name for r in Remedy])
def test_each_remedy_names_a_real_command(remedy: Remedy) -> None:
    wording = REMEDIES[remedy]
    assert _backticked(wording) == COMMANDS[remedy]
    for line in _backticked(wording):
        _check_command_exists(line)
    assert describe(CatalogError("x", remedy=remedy)) == "x" + wording
    assert remedy_text("x", remedy) == "x" + wording and remedy_text("x", None) == "x"
    assert str(CatalogError("x", remedy=remedy)) == "x"


def test_the_command_checker_notices_a_wrong_command() -> None:
    with pytest.raises(AssertionError, match="has no option --fixx"):
        _check_command_exists("catalog reconcile --fixx")
    with pytest.raises(AssertionError, match="no command 'reconciel'"):
        _check_command_exists("catalog reconciel")
    with pytest.raises(AssertionError, match="names a group that does nothing by itself"):
        _check_command_exists("catalog retention")


# -- a Python caller's errors name arguments, not flags -------------------------------------------


def test_a_python_callers_bad_base_dir_names_the_argument() -> None:
    from catalog.cryptorun.writer import AtomicWriter

    with pytest.raises(ConfigError) as caught:
        AtomicWriter("x\0")
    assert str(caught.value) == "argument:base_dir: key 'base_dir' must be a non-empty path, got 'x\\x00'"
    assert "flag:" not in str(caught.value) and "--" not in str(caught.value)


def test_only_some_settings_can_be_overridden() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides={"nonsense": 1}, env={})
    assert str(caught.value) == "'nonsense' cannot be overridden; choose one of: environment, base_dir, catalog_url"


# -- third-party exceptions become catalog errors in one place -------------------------------------


@pytest.mark.parametrize(
    "raised, cls, message",
    [
        (OSError(errno.ENOSPC, "No space left on device", "/data/x"), StoreError, "No space left on device: /data/x"),
        (OSError(errno.EIO, "Input/output error"), StoreError, "Input/output error"),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), InputError,
         "text is not valid UTF-8: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
        (RecursionError("deep"), ValidationError, "input is nested too deeply"),
        (sa_exc.OperationalError("SELECT 1", {}, Exception("disk I/O error\nDETAIL: more")), CatalogDatabaseError,
         "catalog database error: disk I/O error"),
        (sa_exc.ArgumentError("bad\nargument"), CatalogDatabaseError, "catalog database error: bad"),
    ],
    ids=["oserror-with-file", "oserror", "unicode", "recursion", "driver-error-first-line", "sqlalchemy-error"],
)  # fmt: skip
def test_translate(raised: BaseException, cls: type[CatalogError], message: str) -> None:
    known = translate(raised)
    assert type(known) is cls and str(known) == message


def test_translate_passes_catalog_errors_through_and_leaves_bugs_alone() -> None:
    error = _since_until()
    assert translate(error) is error
    assert translate(KeyError("x")) is None and translate(ValueError("x")) is None
