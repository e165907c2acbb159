"""catalog: audit-ready artifact storage for the CryptoRun scanner.

Every artifact is written atomically and durably under a fixed name and
recorded as a row in a SQL catalog, with a hash-chained audit event.

    >>> from catalog import AtomicWriter
    >>> with AtomicWriter("./artifacts") as writer:
    ...     record = writer.write_json("ledger", "portfolio", {"cash": 100.0})

Heavy modules (SQLAlchemy) load on first use of a name below, so importing the
package (and starting the CLI) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AtomicWriter": "catalog.writer",
    "write_json": "catalog.writer",
    "write_csv": "catalog.writer",
    "ExplainReport": "catalog.explain",
    "input_hash": "catalog.explain",
    "Portfolio": "catalog.ledger",
    "Trade": "catalog.ledger",
    "HealthMetrics": "catalog.health",
    "Span": "catalog.health",
    "Catalog": "catalog.store",
    "ArtifactRecord": "catalog.store",
    "Settings": "catalog.config",
    "load_settings": "catalog.config",
    "CatalogError": "catalog.errors",
    "ConfigError": "catalog.errors",
    "ValidationError": "catalog.errors",
    "CollisionError": "catalog.errors",
    "CommitError": "catalog.errors",
    "IntegrityError": "catalog.errors",
    "NotFoundError": "catalog.errors",
    "SchemaError": "catalog.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from .config import Settings, load_settings
    from .explain import ExplainReport, input_hash
    from .health import HealthMetrics, Span
    from .ledger import Portfolio, Trade
    from .errors import (
        CatalogError,
        CollisionError,
        CommitError,
        ConfigError,
        IntegrityError,
        NotFoundError,
        SchemaError,
        ValidationError,
    )
    from .store import ArtifactRecord, Catalog
    from .writer import AtomicWriter, write_csv, write_json


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'catalog' has no attribute {name!r}")
