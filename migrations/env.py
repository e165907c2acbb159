"""Alembic environment: runs on the connection (or engine) a caller passes in, or on the URL
of CRYPTORUN_CATALOG_URL when a developer runs ``alembic`` by hand.

A caller shares its database through ``config.attributes["connection"]`` (the
alembic cookbook's "Sharing a Connection across one or more programmatic
migration commands"): a Connection is used as it is, inside the caller's
transaction (``catalog init`` / ``db upgrade`` pass one); an Engine (what
pytest-alembic passes) gets a connection and a transaction of its own.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, Engine

from catalog.core.schema import METADATA

target_metadata = METADATA


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copy-and-move
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connectable = context.config.attributes.get("connection")
if isinstance(connectable, Connection):
    _run(connectable)
elif isinstance(connectable, Engine):
    with connectable.begin() as conn:
        _run(conn)
elif connectable is not None:
    raise TypeError(f"config.attributes['connection'] must be a SQLAlchemy Connection or Engine, not {type(connectable).__name__}")
else:
    from catalog.core.db import Database

    url = os.environ.get("CRYPTORUN_CATALOG_URL", "sqlite:///artifacts/catalog.sqlite")
    database = Database(url)
    with database.write_engine.begin() as conn:
        _run(conn)
    database.dispose()
