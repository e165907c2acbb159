"""Alembic migrations, shipped inside the package as ``catalog.migrations``.

The head revision this code needs is :data:`catalog.core.vocabulary.HEAD_REVISION`
(a test keeps it equal to alembic's head), so checking a catalog's schema never
imports alembic.
"""
