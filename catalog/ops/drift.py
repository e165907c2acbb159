"""The vocabulary of drift between a store's folders and its catalog: finding classes and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core.vocabulary import WEB_KEY_FILE

#: Finding classes, in report order (see :mod:`catalog.ops.reconcile` for what each means). ``linked_folder``:
#: a folder of the store that is a symlink; nothing is read or written through it, so it is drift a person settles.
CLASSES = ("orphan", "missing", "moved", "modified", "half_pair", "stale_temp", "restored", "linked_folder", "foreign",
           "in_flight")
NOT_DRIFT = ("foreign", "in_flight")

#: Files of the catalog itself at the top of the store (the SQLite database and its companions, the web key).
CATALOG_FILES = ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "catalog.sqlite-journal", "catalog.sqlite-lock",
                 "catalog.sqlite-lifecycle", WEB_KEY_FILE)
DEFAULT_GRACE = 300.0  # seconds



@dataclass
class Finding:
    """One disagreement: class, store path, reason, and what a run with ``fix`` did about it."""

    cls: str
    path: str
    reason: str
    fixed: str | None = None  # what the fix did, if anything
    other_path: str | None = None  # moved: the row's old path; half_pair: the twin

    def to_dict(self) -> dict[str, Any]:
        """Plain data, the class under the key ``class``."""
        return {"class": self.cls, "path": self.path, "reason": self.reason, "fixed": self.fixed,
                "other_path": self.other_path}  # fmt: skip


@dataclass
class ReconcileReport:
    """Every finding of one run, with how many files were read and how many rows expected them."""

    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    rows: int = 0

    @property
    def drift(self) -> list[Finding]:
        """The findings that are drift: all but ``foreign`` and ``in_flight``."""
        return [f for f in self.findings if f.cls not in NOT_DRIFT]

    def counts(self) -> dict[str, int]:
        """How many findings of each class, every class of :data:`CLASSES` listed (0 included)."""
        return {cls: sum(f.cls == cls for f in self.findings) for cls in CLASSES}

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``clean`` (no drift), files read, rows expected, counts by class, the findings."""
        return {"clean": not self.drift, "files": self.files, "rows": self.rows, "counts": self.counts(),
                "findings": [f.to_dict() for f in self.findings]}  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """A file seen by the walk: store path, size in bytes, mtime in seconds since the epoch."""

    path: str
    size: int
    mtime: float

    @property
    def name(self) -> str:
        """The file name: the last part of the store path."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Orphan:
    """A complete file without a row, with what its name says (``legacy``: a seed-era name)."""

    entry: Entry
    type: str
    prefix: str
    ext: str
    created_at: datetime
    legacy: bool
