"""Alembic environment: runs on a connection the catalog passes in, or on the URL
of CRYPTORUN_CATALOG_URL when a developer runs ``alembic`` by hand."""

from __future__ import annotations

import os

from alembic import context

from catalog.core.schema import Base

target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copy-and-move
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from catalog.core.db import Database

    url = os.environ.get("CRYPTORUN_CATALOG_URL", "sqlite:///artifacts/catalog.sqlite")
    database = Database(url)
    with database.write_engine.begin() as conn:
        _run(conn)
    database.dispose()
