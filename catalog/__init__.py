"""catalog: audit-ready artifact storage for the CryptoRun scanner.

Every artifact is written atomically and durably under a fixed name and
recorded as a row in a SQL catalog, with a hash-chained audit event.

    >>> from catalog import AtomicWriter
    >>> with AtomicWriter("./artifacts") as writer:
    ...     record = writer.write_json("ledger", "portfolio", {"cash": 100.0})

Heavy modules (SQLAlchemy) load on first use of a name below, so importing the
package (and starting the CLI) stays fast. ``catalog.merkle`` (check the
catalog's Merkle proofs yourself, RFC 9162) and ``catalog.errors`` load
nothing heavy either.

The package is laid out in layers, each depending only on those below it
(checked by import-linter): ``catalog.cli`` (the command line) →
``catalog.cryptorun`` (the scanner's families) → ``catalog.ops`` (generic
services) → ``catalog.core`` (vocabulary, settings, schema, database, files,
the audit chain and the unit of work).
"""

from __future__ import annotations

import os as _os
import signal as _signal
import sys as _sys

if _os.path.basename((getattr(_sys, "argv", None) or [""])[0]) == "catalog":
    # Started as the `catalog` command. Until its entry point hands Ctrl-C to click (which says "Aborted!"),
    # Ctrl-C ends the process as it does before Python has started: by the signal, quietly, instead of with
    # a traceback of half-done imports. A program that imports catalog keeps its own handler.
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AtomicWriter": "catalog.cryptorun.writer",
    "write_json": "catalog.cryptorun.writer",
    "write_csv": "catalog.cryptorun.writer",
    "ExplainReport": "catalog.cryptorun.explain",
    "input_hash": "catalog.cryptorun.explain_rules",
    "Portfolio": "catalog.cryptorun.ledger",
    "Trade": "catalog.cryptorun.ledger",
    "HealthMetrics": "catalog.cryptorun.health",
    "Span": "catalog.cryptorun.health",
    "Catalog": "catalog.core.store",
    "ArtifactRecord": "catalog.core.records",
    "EventRecord": "catalog.core.records",
    "Settings": "catalog.core.settings",
    "load_settings": "catalog.core.settings",
    "CatalogError": "catalog.core.errors",
    "ConfigError": "catalog.core.errors",
    "ValidationError": "catalog.core.errors",
    "CollisionError": "catalog.core.errors",
    "CommitError": "catalog.core.errors",
    "IntegrityError": "catalog.core.errors",
    "ProofError": "catalog.core.errors",
    "NotFoundError": "catalog.core.errors",
    "SchemaError": "catalog.core.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from .core.errors import (
        CatalogError,
        CollisionError,
        CommitError,
        ConfigError,
        IntegrityError,
        NotFoundError,
        ProofError,
        SchemaError,
        ValidationError,
    )
    from .core.records import ArtifactRecord, EventRecord
    from .core.settings import Settings, load_settings
    from .core.store import Catalog
    from .cryptorun.explain import ExplainReport
    from .cryptorun.explain_rules import input_hash
    from .cryptorun.health import HealthMetrics, Span
    from .cryptorun.ledger import Portfolio, Trade
    from .cryptorun.writer import AtomicWriter, write_csv, write_json

# The scanner's families plug into the generic services (reconcile's explain pairs) on import.
from . import cryptorun as _cryptorun  # noqa: E402,F401


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'catalog' has no attribute {name!r}")
