"""The layers hold: only the unit of work writes to the catalog, imports follow the layers, modules stay small,
and API errors speak the API's language (no CLI flags, no commands)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

import catalog as catalog_package
from catalog.core import schema
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter

from helpers import representative_workload

PACKAGE = Path(catalog_package.__file__).resolve().parent
REPO = PACKAGE.parent
UNIT_OF_WORK = "core/unit_of_work.py"
MAX_LINES = 450


def _modules(*layers: str) -> list[Path]:
    roots = [PACKAGE / layer for layer in layers] if layers else [PACKAGE]
    return sorted(p for root in roots for p in root.rglob("*.py") if "migrations" not in p.relative_to(PACKAGE).parts)


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


# -- static: nothing but the unit of work builds a write ------------------------------------------------

TABLES = frozenset(
    name for name in ("ARTIFACTS", "EVENTS", "CHAIN_HEAD", "MERKLE_NODES", "HOLDS", "FLOORS", "FOLDER_USAGE", "VERIFY_RUNS",
                      "VERIFY_RESULTS", "USERS") if hasattr(schema, name)
)  # fmt: skip
WRITE_VERBS = ("insert", "update", "delete")
TABLE_METHODS = (*WRITE_VERBS, "values")
SQL_WRITE = re.compile(r"(?i)^\s*(insert\s+into|update\s+\w+\s+set|delete\s+from)")


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_table(node: ast.expr, tables: set[str]) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name in tables or name.endswith("__table__")


def _texts(node: ast.AST) -> Iterator[tuple[int, str]]:
    """String constants, and each f-string as a whole, rendered with ``x`` for its fields."""
    parts: set[int] = set()
    for child in ast.walk(node):  # breadth first: an f-string is met before its parts
        if isinstance(child, ast.JoinedStr):
            parts.update(id(v) for v in child.values)
            yield child.lineno, "".join(v.value if isinstance(v, ast.Constant) else "x" for v in child.values)
        elif isinstance(child, ast.Constant) and isinstance(child.value, str) and id(child) not in parts:
            yield child.lineno, child.value


def forbidden_writes(source: str) -> list[str]:
    """Every place in ``source`` that builds an INSERT, UPDATE or DELETE, as ``line: what``."""
    tree = ast.parse(source)
    verbs: set[str] = set()  # local names of sqlalchemy's insert/update/delete
    modules: set[str] = set()  # local names of sqlalchemy modules
    tables = set(TABLES)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if node.module.split(".")[0] == "sqlalchemy" and alias.name in WRITE_VERBS:
                    verbs.add(alias.asname or alias.name)
                if node.module.split(".")[-1] == "schema" and alias.name in TABLES:
                    tables.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    modules.add(alias.asname or alias.name.split(".")[0])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in verbs:
                found.append(f"{node.lineno}: {func.id}() from sqlalchemy")
            elif isinstance(func, ast.Attribute):
                if func.attr in WRITE_VERBS and _root_name(func.value) in modules:
                    found.append(f"{node.lineno}: {ast.unparse(func)}()")
                elif func.attr in TABLE_METHODS and _is_table(func.value, tables):
                    found.append(f"{node.lineno}: {ast.unparse(func)}()")
    for line, value in _texts(tree):
        if SQL_WRITE.match(value):
            found.append(f"{line}: SQL text {value[:40]!r}")
    return sorted(set(found), key=lambda f: (int(f.split(":")[0]), f))


def test_no_module_but_the_unit_of_work_builds_a_write() -> None:
    offenders = {
        _rel(path): forbidden_writes(path.read_text(encoding="utf-8"))
        for path in _modules()
        if _rel(path) != UNIT_OF_WORK
    }
    assert len(offenders) > 40  # every module was read
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_checker_finds_the_writes_of_the_unit_of_work() -> None:
    found = forbidden_writes((PACKAGE / UNIT_OF_WORK).read_text(encoding="utf-8"))
    described = {f.split(": ", 1)[1] for f in found}
    assert {"FOLDER_USAGE.update()", "FOLDER_USAGE.insert()", "ARTIFACTS.insert()", "EVENTS.insert()",
            "CHAIN_HEAD.update()", "ARTIFACTS.update()", "HOLDS.insert()", "HOLDS.update()", "FLOORS.insert()",
            "FLOORS.update()", "VERIFY_RUNS.insert()", "VERIFY_RUNS.update()", "VERIFY_RESULTS.insert()",
            "USERS.insert()", "USERS.update()", "USERS.delete()"} <= described  # fmt: skip


FORBIDDEN = {
    "sqlalchemy-insert": "from sqlalchemy import insert\ninsert(t)",
    "sqlalchemy-update-renamed": "from sqlalchemy import update as change\nchange(t)",
    "sqlalchemy-delete": "from sqlalchemy import delete\ndelete(t)",
    "sqlalchemy-module": "import sqlalchemy as sa\nsa.insert(t)",
    "sqlalchemy-submodule": "import sqlalchemy.sql\nsqlalchemy.sql.expression.update(t)",
    "dialect-insert": "from sqlalchemy.dialects.postgresql import insert\ninsert(t).on_conflict_do_nothing()",
    "table-insert": "ARTIFACTS.insert()",
    "table-update-by-module": "schema.EVENTS.update()",
    "table-delete": "CHAIN_HEAD.delete().where(x)",
    "table-values": "HOLDS.values(x=1)",
    "model-table": "Artifact.__table__.insert()",
    "dunder-table-name": "__table__.delete()",
    "renamed-table": "from ..core.schema import FLOORS as F\nF.update()",
    "sql-insert": 'conn.exec_driver_sql("INSERT INTO artifacts VALUES (1)")',
    "sql-update": 'text("  update artifacts set status = 1")',
    "sql-delete": 'text("DELETE FROM events")',
    "sql-update-fstring": 'text(f"UPDATE {table} SET x = 1")',
    "sql-delete-fstring": 'text(f"delete from {table}")',
}


@pytest.mark.parametrize("snippet", list(FORBIDDEN.values()), ids=list(FORBIDDEN))
def test_the_checker_finds_each_forbidden_form(snippet: str) -> None:
    assert len(forbidden_writes(snippet)) == 1


ALLOWED = {
    "hash-update": "digest.update(chunk)",
    "dict-values": "settings.values()",
    "select": "select(ARTIFACTS).where(ARTIFACTS.c.path == p)",
    "column": "ARTIFACTS.c.status.in_(x)",
    "prose": '"Update the catalog, then set it"',
    "docstring-word": '"""Only the unit of work issues INSERT or UPDATE against the catalog."""',
    "own-insert": "def insert(x): ...\ninsert(1)",
}


@pytest.mark.parametrize("snippet", list(ALLOWED.values()), ids=list(ALLOWED))
def test_the_checker_leaves_other_code_alone(snippet: str) -> None:
    assert forbidden_writes(snippet) == []


# -- runtime: every write statement comes from the unit of work ------------------------------------------

WRITE_SQL = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+\"?(\w+)", re.IGNORECASE)


def _innermost_catalog_frame(frame: FrameType | None) -> str | None:
    """The catalog module (relative path) of the innermost frame inside the package, migrations excluded."""
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.is_absolute() and path.is_relative_to(PACKAGE):
            rel = path.relative_to(PACKAGE)
            if rel.parts[0] != "migrations" and rel.as_posix() != "core/prepared.py":  # it runs what it is given
                return rel.as_posix()
        frame = frame.f_back
    return None


@contextmanager
def _writes_recorded() -> Iterator[list[tuple[str, str, str | None]]]:
    """(verb, table, module) for every INSERT/UPDATE/DELETE any engine runs meanwhile."""
    seen: list[tuple[str, str, str | None]] = []

    def on_sql(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        match = WRITE_SQL.match(statement)
        if match:
            verb = match[1].split()[0].upper()
            seen.append((verb, match[2].lower(), _innermost_catalog_frame(sys._getframe(1))))

    event.listen(Engine, "before_cursor_execute", on_sql)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", on_sql)


def test_every_write_of_the_api_comes_from_the_unit_of_work(
    catalog: Catalog, writer: AtomicWriter, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with _writes_recorded() as writes:
        representative_workload(catalog, writer, out)
    assert sorted({module for _, _, module in writes}, key=str) == [UNIT_OF_WORK]
    assert {(verb, table) for verb, table, _ in writes} == {
        ("INSERT", "artifacts"), ("UPDATE", "artifacts"), ("INSERT", "events"), ("INSERT", "merkle_nodes"), ("UPDATE", "chain_head"),
        ("INSERT", "folder_usage"), ("UPDATE", "folder_usage"), ("INSERT", "holds"), ("UPDATE", "holds"),
        ("INSERT", "policy_floors"), ("UPDATE", "policy_floors"), ("INSERT", "verify_runs"),
        ("UPDATE", "verify_runs"), ("INSERT", "verify_results"), ("INSERT", "users"), ("UPDATE", "users"),
        ("DELETE", "users"),
    }  # fmt: skip
    actions = {e.action for e in catalog.events()}
    expected = {"write", "hold_place", "hold_release", "policy_floor", "retain_extend", "verify_run", "missing",
                "reconcile_run", "retention_intent", "delete", "retention_run", "checkpoint", "user_add", "user_role",
                "user_remove"}  # fmt: skip
    assert expected | ({"backup"} if catalog.db.is_sqlite else set()) <= actions
    assert (out / "checkpoint.json").is_file() and (out / "backup.sqlite").is_file() is catalog.db.is_sqlite
    assert catalog.audit_verify().ok


SNEAKY_WRITE = """
from catalog.core.schema import FOLDER_USAGE

def sneak(catalog):  # (a floor would be refused by its trigger since issue 15: a table without one)
    with catalog.db.write() as conn:
        conn.execute(FOLDER_USAGE.insert().values(folder="ledger/x", files=0, bytes=0))
"""


def test_a_write_from_elsewhere_is_caught(catalog: Catalog) -> None:
    """The guard above can fail: a write made from another catalog module is named."""
    namespace: dict[str, Any] = {}
    exec(compile(SNEAKY_WRITE, str(PACKAGE / "ops" / "policy.py"), "exec"), namespace)
    with _writes_recorded() as writes:
        namespace["sneak"](catalog)
    assert writes == [("INSERT", "folder_usage", "ops/policy.py")]


# -- import layers and module size ------------------------------------------------------------------------


def test_lint_imports_keeps_every_contract() -> None:
    script = Path(sys.executable).with_name("lint-imports")
    if not script.exists():
        pytest.skip(f"import-linter is not installed ({script} is missing)")
    done = subprocess.run([str(script), "--no-cache", "--no-logo"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_no_module_is_longer_than_450_lines() -> None:
    lengths = {_rel(path): len(path.read_text(encoding="utf-8").splitlines()) for path in _modules()}
    assert len(lengths) > 40
    assert {path: n for path, n in lengths.items() if n > MAX_LINES} == {}


# -- API errors name no CLI flag and no command ---------------------------------------------------------

CLI_WORDING = re.compile(r"--[a-z]|run `catalog|`catalog ")


def _call_name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def cli_wording_in_errors(source: str) -> list[str]:
    """Every text given to an ``…Error(…)`` call that names a flag or a command, as ``line: text``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _call_name(node.func).endswith("Error"):
            for argument in [*node.args, *(k.value for k in node.keywords)]:
                found += [f"{line}: {text}" for line, text in _texts(argument) if CLI_WORDING.search(text)]
    return found


def test_api_errors_name_no_flag_and_no_command() -> None:
    found = {}
    for path in _modules("core", "ops", "cryptorun"):
        hits = cli_wording_in_errors(path.read_text(encoding="utf-8"))
        if hits:
            found[_rel(path)] = hits
    assert found == {}


BAD_ERRORS = {
    "flag": 'raise ValidationError("give --since before --until")',
    "flag-in-fstring": 'raise ConfigError(f"{key} is wrong; pass --base-dir")',
    "flag-split-by-a-field": 'raise ConfigError(f"pass --{name} instead")',
    "command": 'raise SchemaError("no catalog: run `catalog init` first")',
    "command-in-backticks": 'raise NotFoundError("see `catalog ls --status missing`")',
    "keyword-argument": 'raise CommitError("x", reason="use --fix")',
    "attribute-call": 'raise errors.StoreError("try --catalog-url")',
    "nested-in-join": 'raise ValidationError(", ".join(["--a"]))',
}


@pytest.mark.parametrize("snippet", list(BAD_ERRORS.values()), ids=list(BAD_ERRORS))
def test_the_error_checker_finds_cli_wording(snippet: str) -> None:
    assert len(cli_wording_in_errors(snippet)) == 1


GOOD_ERRORS = {
    "param": 'raise ValidationError(Param("since"), " must be earlier than ", Param("until"))',
    "remedy": 'raise SchemaError("no catalog", remedy=Remedy.INIT)',
    "not-an-error": 'click.echo("run `catalog init` first, or pass --base-dir")',
    "a-dash-in-prose": 'raise ValidationError("a prefix must not start with \'-\' or end with \'-\'")',
}


@pytest.mark.parametrize("snippet", list(GOOD_ERRORS.values()), ids=list(GOOD_ERRORS))
def test_the_error_checker_leaves_api_wording_alone(snippet: str) -> None:
    assert cli_wording_in_errors(snippet) == []
