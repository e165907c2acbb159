"""The migrations under the ecosystem's own checks: pytest-alembic's built-in tests (one head,
base-to-head upgrade, models equal to the migrated DDL, every step down and up again), on the
backend under test, plus what they cannot see: the append-only triggers survive every step.

pytest-alembic's automatic collection is off (tests/conftest.py blocks it: under pytest 9 it
fails to build its collector); its tests are imported here, as its documentation shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from catalog.core.db import Database, migrations_dir
from catalog.core.vocabulary import KNOWN_REVISIONS

from helpers import REQUIRE_BACKEND

try:
    from pytest_alembic.tests import (  # noqa: F401  (collected as tests of this module)
        test_model_definitions_match_ddl,
        test_single_head_revision,
        test_up_down_consistency,
        test_upgrade,
    )
except ImportError:  # pragma: no cover - the test extra installs it
    if REQUIRE_BACKEND:
        raise
    pytest.skip("pytest-alembic is not installed (pip install -e '.[test]')", allow_module_level=True)


@pytest.fixture
def alembic_config() -> dict[str, Any]:
    return {"script_location": migrations_dir()}


@pytest.fixture
def database(tmp_path: Path, catalog_url: str | None) -> Iterator[Database]:
    """The catalog database under test, empty: SQLite in tmp_path, or a fresh PostgreSQL database."""
    database = Database(catalog_url or f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    yield database
    database.dispose()


@pytest.fixture
def alembic_engine(database: Database) -> Engine:
    """The engine pytest-alembic migrates through: the catalog's own (SQLite: WAL, foreign keys, BEGIN IMMEDIATE)."""
    return database.write_engine


def _refuses(database: Database, statement: str) -> bool:
    """Whether the database refuses ``statement`` (an append-only trigger fired); nothing is kept either way."""
    with database.engine.connect() as conn:
        transaction = conn.begin()
        try:
            conn.execute(text(statement))
        except DBAPIError:
            return True
        finally:
            transaction.rollback()
    return False


def test_the_append_only_triggers_survive_every_step_down_and_up(alembic_runner, database: Database) -> None:  # type: ignore[no-untyped-def]
    """SQLite's batch mode copies a table to alter it, which drops its triggers: each step must put them back."""
    protected = ("DELETE FROM artifacts", "UPDATE events SET action = 'x'", "DELETE FROM events")
    with_triggers = KNOWN_REVISIONS[KNOWN_REVISIONS.index("0003") :]
    alembic_runner.migrate_up_to("heads")
    _write_a_row(database)
    tree = ("UPDATE merkle_nodes SET idx = 5", "DELETE FROM merkle_nodes")  # from 0007 on

    def guarded(revision: str) -> tuple[str, ...]:
        return protected + (tree if revision >= "0007" else ())

    for revision in reversed(with_triggers):
        alembic_runner.migrate_down_to(revision)
        assert all(_refuses(database, s) for s in guarded(revision)), f"triggers lost at {revision}"
    for revision in with_triggers[1:]:
        alembic_runner.migrate_up_to(revision)
        assert all(_refuses(database, s) for s in guarded(revision)), f"triggers lost at {revision}"


def _write_a_row(database: Database) -> None:
    """One artifact and its event, so a step that copies a table has rows (and references) to carry."""
    with database.write() as conn:
        conn.execute(text(
            "INSERT INTO artifacts (id, path, original_path, folder, type, prefix, ext, created_at, recorded_at, size, "
            "sha256, status) VALUES (1, 'ledger/a', 'ledger/a', 'ledger', 'ledger', 'a', 'json', '2024-01-01 00:00:00', "
            "'2024-01-01 00:00:00', 1, :h, 'active')"
        ), {"h": "0" * 64})  # fmt: skip
        conn.execute(text(
            "INSERT INTO events (seq, at, action, artifact_id, path, actor, details, text, hash) "
            "VALUES (1, '2024-01-01 00:00:00', 'write', 1, 'ledger/a', 'me', '{}', '{}', :h)"
        ), {"h": "0" * 64})  # fmt: skip
        conn.execute(text("INSERT INTO merkle_nodes (level, idx, hash) VALUES (0, 0, :b)"), {"b": bytes(32)})
