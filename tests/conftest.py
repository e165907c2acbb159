"""Shared fixtures. The backend comes from the environment:

- ``CATALOG_TEST_BACKEND=sqlite`` (default): SQLite in each test's store folder.
- ``CATALOG_TEST_BACKEND=postgresql`` with ``CATALOG_TEST_PG_URL`` (a URL of a
  server where the user may create databases): each test gets a fresh
  database. Without a reachable server these tests skip with one reason line,
  unless ``CATALOG_TEST_REQUIRE_BACKEND=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog.config import ENV_VARS, Settings, load_settings

BACKEND = os.environ.get("CATALOG_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("CATALOG_TEST_PG_URL", "")
REQUIRE_BACKEND = os.environ.get("CATALOG_TEST_REQUIRE_BACKEND") == "1"
SLOW = os.environ.get("CATALOG_SLOW_TESTS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SLOW:
        return
    skip = pytest.mark.skip(reason="slow harness: set CATALOG_SLOW_TESTS=1 (.ci/run does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    return f"catalog backend: {BACKEND}" + (f" ({PG_ADMIN_URL})" if BACKEND == "postgresql" else "")


def _unavailable(reason: str) -> None:
    if REQUIRE_BACKEND:
        pytest.fail(f"backend required but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_admin():  # type: ignore[no-untyped-def]
    """An AUTOCOMMIT engine on the PostgreSQL test server."""
    if not PG_ADMIN_URL:
        _unavailable("PostgreSQL tests need CATALOG_TEST_PG_URL (see .ci/run)")
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the server means: no backend here
        _unavailable(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {type(exc).__name__}")
    yield engine
    engine.dispose()


@pytest.fixture
def catalog_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The catalog URL for this test: None (SQLite default) or a fresh PostgreSQL database."""
    if BACKEND == "sqlite":
        yield None
        return
    if BACKEND != "postgresql":
        pytest.fail(f"unknown CATALOG_TEST_BACKEND {BACKEND!r}")
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    admin = request.getfixturevalue("pg_admin")
    name = f"catalog_test_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's CRYPTORUN_* variables or ./config/artifacts.yaml."""
    for var in (*ENV_VARS, "CATALOG_DEBUG", "CRYPTORUN_ACTOR"):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def settings(base_dir: Path, catalog_url: str | None) -> Settings:
    return load_settings(flags={"base_dir": str(base_dir), "catalog_url": catalog_url}, env={})


@pytest.fixture
def catalog(settings: Settings):  # type: ignore[no-untyped-def]
    from catalog.store import Catalog

    opened, _, _ = Catalog.init(settings)
    yield opened
    opened.close()


@pytest.fixture
def writer(catalog):  # type: ignore[no-untyped-def]
    from catalog.writer import AtomicWriter

    return AtomicWriter(catalog=catalog)


class Cli:
    """Runs the CLI in-process against this test's store."""

    def __init__(self, base_dir: Path, catalog_url: str | None) -> None:
        self.base_args = ["--base-dir", str(base_dir)] + (["--catalog-url", catalog_url] if catalog_url else [])
        self.runner = CliRunner()

    def __call__(self, *args: str, input: bytes | str | None = None, global_args: list[str] | None = None):  # type: ignore[no-untyped-def]
        from catalog.cli import cli

        argv = (self.base_args if global_args is None else global_args) + list(args)
        return self.runner.invoke(cli, argv, input=input, catch_exceptions=False)


@pytest.fixture
def run_cli(base_dir: Path, catalog_url: str | None) -> Cli:
    return Cli(base_dir, catalog_url)


def catalog_env(base_dir: Path, catalog_url: str | None) -> dict[str, str]:
    """Environment for a subprocess that should use this test's store."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["CRYPTORUN_ARTIFACTS_DIR"] = str(base_dir)
    if catalog_url:
        env["CRYPTORUN_CATALOG_URL"] = catalog_url
    return env


def run_python(code: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (for concurrency and crash tests)."""
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)


def store_files(base_dir: Path) -> list[str]:
    """Every file in the store except the SQLite catalog itself, relative."""
    return sorted(
        p.relative_to(base_dir).as_posix()
        for p in base_dir.rglob("*")
        if p.is_file() and not p.name.startswith("catalog.sqlite")
    )


def write_events(catalog) -> list:  # type: ignore[no-untyped-def]
    """The catalog's ``write`` events (init adds a ``schema_upgrade`` one before them)."""
    return [event for event in catalog.events() if event.action == "write"]


def tamper(catalog, *statements: str) -> None:  # type: ignore[no-untyped-def]
    """Run SQL behind the catalog's back: append-only triggers and foreign keys off, then on again.

    This is what an attacker with direct database access can do; the audit log
    must still notice.
    """
    import sqlite3

    from sqlalchemy import text

    if catalog.db.is_sqlite:
        conn = sqlite3.connect(catalog.db.sqlite_path, isolation_level=None)
        try:
            triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("BEGIN IMMEDIATE")
            for name, _ in triggers:
                conn.execute(f"DROP TRIGGER {name}")
            for statement in statements:
                conn.execute(statement)
            for _, sql in triggers:
                conn.execute(sql)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    with catalog.db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE events DISABLE TRIGGER ALL"))
        conn.execute(text("ALTER TABLE artifacts DISABLE TRIGGER ALL"))
        for statement in statements:
            conn.exec_driver_sql(statement)
        conn.execute(text("ALTER TABLE events ENABLE TRIGGER ALL"))
        conn.execute(text("ALTER TABLE artifacts ENABLE TRIGGER ALL"))
