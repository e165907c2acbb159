"""Every error the catalog raises on purpose.

    CatalogError                 base; exit code 2 at the CLI
    ├── ConfigError              settings file, environment or argument is wrong
    ├── ValidationError          bad input: name, prefix, type, data, time
    │   └── CollisionError       the artifact name is already taken
    ├── InputError               an input file or stream cannot be read
    ├── NotFoundError            no artifact at that path / with that hash
    ├── StoreError               base folder or disk problem (I/O)
    ├── CatalogDatabaseError     the catalog database cannot be used
    │   ├── SchemaError          catalog missing, behind or ahead of this code
    │   └── CommitError          published a file but could not record it
    ├── IntegrityError           bytes on disk no longer match the catalog
    │                            (a finding: exit code 1)
    ├── ProofError               a Merkle proof does not check out
    │                            (a finding: exit code 1)
    └── SignatureError           a signature by a known key does not verify,
                                 or none that should be there is (exit code 1)

An error speaks the API's language. Its message is built from text and
:class:`Param` markers (the API parameter it is about), and it may carry a
:class:`Remedy` (the next step a person can take) and the offending ``value``.
``str(error)`` names parameters as Python does (``since must be earlier than
until``) and offers no command; the command line renders the same error with
each parameter shown as its own flag, and adds the command that helps.

Third-party exceptions (SQLAlchemy, OSError, UnicodeError) are turned into
these by :func:`translate`, in one place, so the CLI only ever shows one
``Error:`` line.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """An API parameter named inside an error message (the CLI shows its flag instead)."""

    name: str


class Remedy(enum.Enum):
    """A next step a person can take about an error or a finding; each interface words it its own way."""

    INIT = "create the store and its catalog"
    UPGRADE = "migrate the catalog's schema"
    RECONCILE = "reconcile the store with its catalog"
    RECONCILE_DEEP = "reconcile, comparing SHA-256"
    ADOPT = "reconcile with fix, which adopts the published file"
    PG_DUMP = "back PostgreSQL up with its own tools and keep a checkpoint beside the dump"
    VERIFY = "verify the files"
    FINDINGS = "look at the open findings, then resolve each with a reason"
    APPLY_RETENTION = "apply retention"
    FINISH_RETENTION = "apply retention to finish the open intents"
    LIMITS = "look at the limits"
    AUDIT = "verify the audit log, which names every part that disagrees"


Part = str | Param


class CatalogError(Exception):
    """Base class: a problem the user can act on, shown as one line.

    ``parts`` are text and :class:`Param` markers; ``value`` is the offending
    value, if any; ``remedy`` the next step. ``param`` is the first parameter
    the message names (None if it names none).
    """

    exit_code = 2

    def __init__(self, *parts: Part, value: object = None, remedy: Remedy | None = None) -> None:
        self.parts: tuple[Part, ...] = parts
        self.value = value
        self.remedy = remedy
        super().__init__(self.render())

    @property
    def param(self) -> str | None:
        """The first API parameter the message is about, or None."""
        return next((p.name for p in self.parts if isinstance(p, Param)), None)

    def render(self, name: Callable[[str], str] = str) -> str:
        """The message, with each parameter shown as ``name(parameter)`` (default: its Python name)."""
        return "".join(name(p.name) if isinstance(p, Param) else p for p in self.parts)


class ConfigError(CatalogError):
    """The effective configuration is invalid (file, key or variable named)."""


class ValidationError(CatalogError):
    """Input was refused before anything was written."""


class CollisionError(ValidationError):
    """An artifact with this name already exists; nothing was overwritten."""


class InputError(CatalogError):
    """An input file or stream is missing, unreadable or empty."""


class NotFoundError(CatalogError):
    """No artifact matches the request."""


class StoreError(CatalogError):
    """The store's folders cannot be used (missing, not a folder, I/O)."""


class CatalogDatabaseError(CatalogError):
    """The catalog database failed or cannot be reached."""


class SchemaError(CatalogDatabaseError):
    """The catalog is missing, or its schema is not the one this code needs."""


class CommitError(CatalogDatabaseError):
    """A file was published but its row could not be committed.

    The file stays where it is (it is complete); reconcile adopts it
    (remedy :attr:`Remedy.ADOPT`). ``paths`` are the published store paths.
    """

    def __init__(self, *parts: Part, paths: tuple[str, ...] = (), remedy: Remedy | None = Remedy.ADOPT) -> None:
        self.paths = paths
        super().__init__(*parts, value=paths, remedy=remedy)


class IntegrityError(CatalogError):
    """An artifact's bytes no longer match its recorded size or SHA-256."""

    exit_code = 1


class ProofError(CatalogError):
    """A Merkle inclusion or consistency proof does not check out (RFC 9162 §2.1).

    Raised by :mod:`catalog.merkle`'s verifiers for a proof that leads to
    another root and for malformed evidence alike (a hash that is not 32
    bytes, an index beyond the tree, a proof of the wrong length).
    """

    exit_code = 1


class SignatureError(CatalogError):
    """A signed note (a checkpoint, a key rotation) is not signed as it must be (C2SP signed-note).

    Raised for a signature by a known key that does not verify (the note was
    altered or forged) and for a note that no trusted key signed.
    """

    exit_code = 1


def translate(exc: BaseException) -> CatalogError | None:
    """Map an exception to the CatalogError that reports it, or None if it is a bug.

    A CatalogError is returned as is; SQLAlchemy errors become
    CatalogDatabaseError, UnicodeError InputError, OSError StoreError and
    RecursionError ValidationError.
    """
    if isinstance(exc, CatalogError):
        return exc
    try:
        import sqlalchemy.exc as sa_exc
    except ImportError:  # pragma: no cover - sqlalchemy is a hard dependency
        sa_exc = None  # type: ignore[assignment]
    if sa_exc is not None and isinstance(exc, sa_exc.SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        detail = str(orig if orig is not None else exc).strip().splitlines()
        return CatalogDatabaseError(f"catalog database error: {detail[0] if detail else type(exc).__name__}")
    if isinstance(exc, UnicodeError):
        return InputError(f"text is not valid UTF-8: {exc}")
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return StoreError(f"{exc.strerror or exc}{where}")
    if isinstance(exc, RecursionError):
        return ValidationError("input is nested too deeply")
    return None
