"""Every error the catalog raises on purpose.

    CatalogError                 base; exit code 2 at the CLI
    ├── ConfigError              settings file, environment or flag is wrong
    ├── ValidationError          bad input: name, prefix, type, data, time
    │   └── CollisionError       the artifact name is already taken
    ├── InputError               an input file or stream cannot be read
    ├── NotFoundError            no artifact at that path / with that hash
    ├── StoreError               base folder or disk problem (I/O)
    ├── CatalogDatabaseError     the catalog database cannot be used
    │   ├── SchemaError          catalog missing, behind or ahead of this code
    │   └── CommitError          published a file but could not record it
    └── IntegrityError           bytes on disk no longer match the catalog
                                 (a finding: exit code 1)

Third-party exceptions (SQLAlchemy, OSError, UnicodeError, YAML) are turned
into these by :func:`translate`, in one place, so the CLI only ever shows one
``Error:`` line.
"""

from __future__ import annotations


class CatalogError(Exception):
    """Base class: a problem the user can act on, shown as one line."""

    exit_code = 2


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

    The file stays where it is (it is complete); ``catalog reconcile`` adopts it.
    """

    def __init__(self, message: str, paths: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.paths = paths


class IntegrityError(CatalogError):
    """An artifact's bytes no longer match its recorded size or SHA-256."""

    exit_code = 1


def translate(exc: BaseException) -> CatalogError | None:
    """Map a third-party exception to a CatalogError, or None if it is a bug."""
    if isinstance(exc, CatalogError):
        return exc
    try:
        import sqlalchemy.exc as sa_exc
    except ImportError:  # pragma: no cover - sqlalchemy is a hard dependency
        sa_exc = None
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


def read_file(path: object, what: str, error: type[CatalogError]) -> bytes:
    """A file's bytes, or ``error`` with one line saying why not (``what`` names the file's role)."""
    from pathlib import Path

    try:
        return Path(path).read_bytes()  # type: ignore[arg-type]
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder, not a file") from None
    except PermissionError:
        raise error(f"{what} {path} cannot be read: permission denied") from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
