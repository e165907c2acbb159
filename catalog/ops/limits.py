"""Directory limits, as SQL over the catalog: no folder is ever listed to answer them.

Per real folder (archive folders included): the files the catalog says are on
disk there (active, archived, quarantined) and their bytes, against
``limits.max_files_per_dir`` and ``limits.max_dir_bytes``; the whole store
against ``limits.max_store_bytes``. At 80 % a limit is ``warn``, above 100 %
``over``. (Writers keep ``folder_usage`` in step inside the unit of work and
log a warning when a write crosses 80 %.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from ..core.crossings import WARN_AT
from ..core.schema import ARTIFACTS
from ..core.store import Catalog
from ..core.vocabulary import ON_DISK

LEVELS = ("ok", "warn", "over")


def _level(used: int, limit: int) -> str:
    return "over" if used > limit else "warn" if used >= WARN_AT * limit else "ok"


@dataclass(frozen=True)
class LimitRow:
    """One folder's (or the store's) usage against its limits: files and bytes; ``level`` ok, warn or over."""

    scope: str  # folder | store
    name: str
    files: int
    max_files: int | None
    bytes: int
    max_bytes: int
    level: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"scope": self.scope, "name": self.name, "files": self.files, "max_files": self.max_files,
                "bytes": self.bytes, "max_bytes": self.max_bytes, "level": self.level}  # fmt: skip


def limits(catalog: Catalog) -> list[LimitRow]:
    """One row per folder (sorted) and a last one for the store: files and bytes against the configured limits."""
    settings = catalog.settings.limits
    c = ARTIFACTS.c
    with catalog.read() as conn:
        rows = conn.execute(
            select(c.folder, func.count(), func.coalesce(func.sum(c.size), 0))
            .where(c.status.in_(ON_DISK)).group_by(c.folder).order_by(c.folder)
        ).all()  # fmt: skip
    out, total_files, total_bytes = [], 0, 0
    for folder, files, size in rows:
        size = int(size)
        total_files += files
        total_bytes += size
        level = max(_level(files, settings.max_files_per_dir), _level(size, settings.max_dir_bytes), key=LEVELS.index)
        out.append(LimitRow("folder", folder, files, settings.max_files_per_dir, size, settings.max_dir_bytes, level))
    out.append(LimitRow("store", str(catalog.base_dir), total_files, None, total_bytes, settings.max_store_bytes,
                        _level(total_bytes, settings.max_store_bytes)))  # fmt: skip
    return out
