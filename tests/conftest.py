"""Shared fixtures. The backend comes from the environment:

- ``CATALOG_TEST_BACKEND=sqlite`` (default): SQLite in each test's store folder.
- ``CATALOG_TEST_BACKEND=postgresql`` with ``CATALOG_TEST_PG_URL`` (a URL of a
  server where the user may create databases): each test gets a fresh
  database. Without a reachable server these tests skip with one reason line,
  unless ``CATALOG_TEST_REQUIRE_BACKEND=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.core.settings import ENV_VARS, Settings, load_settings

from helpers import BACKEND, PG_ADMIN_URL, SLOW, SYSTEM_TMP, Cli, _unavailable


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SLOW:
        return
    skip = pytest.mark.skip(reason="slow harness: set CATALOG_SLOW_TESTS=1 (.ci/run does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    return f"catalog backend: {BACKEND}" + (f" ({PG_ADMIN_URL})" if BACKEND == "postgresql" else "")

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
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's CRYPTORUN_* variables or ./config/artifacts.yaml; temp files (the commit
    queues of group commit among them) go to a folder of the test's own, its subprocesses' too."""
    for var in (*ENV_VARS, "CATALOG_DEBUG", "CRYPTORUN_ACTOR"):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    temp = tempfile.mkdtemp(prefix="cat-t-", dir=SYSTEM_TMP)  # short: Chromium's sockets live there (108 bytes a path)
    monkeypatch.setenv("TMPDIR", temp)
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    yield
    monkeypatch.undo()  # the test's patches of os (a refused scandir…) end before the folder is removed
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def settings(base_dir: Path, catalog_url: str | None) -> Settings:
    return load_settings(overrides={"base_dir": str(base_dir), "catalog_url": catalog_url}, env={})


#: When the fixture stores are created: before any time a test freezes, so a test may date writes in the past
#: (the log's clock never runs backwards: an event is never dated before the one it follows).
STORE_BORN = "2000-01-01T00:00:00Z"


@pytest.fixture
def catalog(settings: Settings):  # type: ignore[no-untyped-def]
    from freezegun import freeze_time

    from catalog.core.store import Catalog

    with freeze_time(STORE_BORN):
        opened, _, _ = Catalog.init(settings)
    yield opened
    opened.close()


@pytest.fixture
def writer(catalog):  # type: ignore[no-untyped-def]
    from catalog.cryptorun.writer import AtomicWriter

    return AtomicWriter(catalog=catalog)

@pytest.fixture
def run_cli(base_dir: Path, catalog_url: str | None) -> Cli:
    return Cli(base_dir, catalog_url)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-alembic (the test extra) binds its built-in tests to this file through a collector that
    # pytest 9 cannot build (AttributeError: '_nodeid'); tests/test_migrations.py imports them instead.
    config.pluginmanager.set_blocked("pytest-alembic")
