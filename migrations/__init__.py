"""Alembic migrations, shipped inside the package as ``catalog.migrations``.

The head revision lives here as a constant so that checking a catalog's schema
never has to import alembic (tests keep it equal to alembic's head).
"""

#: The alembic revision this code needs.
HEAD_REVISION = "0006"
#: Every revision this code knows, oldest first.
KNOWN_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005", "0006")
