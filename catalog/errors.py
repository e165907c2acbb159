"""The errors the catalog raises on purpose, each a :class:`CatalogError` (see :mod:`catalog.core.errors`).

Importing this module loads nothing heavy. Each error carries the exit code
the command line uses: 1 for a finding (:class:`IntegrityError`,
:class:`ProofError`, :class:`SignatureError`), 2 for everything else.
"""

from __future__ import annotations

from .core.errors import (
    CatalogDatabaseError,
    CatalogError,
    CollisionError,
    CommitError,
    ConfigError,
    InputError,
    IntegrityError,
    NotFoundError,
    ProofError,
    SchemaError,
    SignatureError,
    StoreError,
    ValidationError,
)

__all__ = [
    "CatalogDatabaseError",
    "CatalogError",
    "CollisionError",
    "CommitError",
    "ConfigError",
    "InputError",
    "IntegrityError",
    "NotFoundError",
    "ProofError",
    "SchemaError",
    "SignatureError",
    "StoreError",
    "ValidationError",
]
