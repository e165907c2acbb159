"""Directory limits, as SQL over the catalog: no folder is ever listed to answer them.

Per real folder (archive folders included): the files the catalog says are on
disk there (active, archived, quarantined) and their bytes, against
``limits.max_files_per_dir`` and ``limits.max_dir_bytes``; the whole store
against ``limits.max_store_bytes``. At 80 % a limit is ``warn``, above 100 %
``over``.

Writers keep ``folder_usage`` in step in the same transaction as each change,
and read it back there, so the warning a write logs when it crosses 80 % costs
one read of that small table inside the transaction it already holds, not an aggregate over
the catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from .models import ON_DISK, Artifact, FolderUsage

if TYPE_CHECKING:
    from .store import Catalog

ARTIFACTS = Artifact.__table__
USAGE = FolderUsage.__table__

WARN_AT = 0.8
log = logging.getLogger("catalog")


def _level(used: int, limit: int) -> str:
    return "over" if used > limit else "warn" if used >= WARN_AT * limit else "ok"


def limits(catalog: Catalog) -> list[dict[str, Any]]:
    """One row per folder and one for the store: usage against the configured limits."""
    settings = catalog.settings.limits
    c = ARTIFACTS.c
    with catalog.db.read() as conn:
        rows = conn.execute(
            select(c.folder, func.count(), func.coalesce(func.sum(c.size), 0))
            .where(c.status.in_(ON_DISK)).group_by(c.folder).order_by(c.folder)
        ).all()  # fmt: skip
    out, total_files, total_bytes = [], 0, 0
    for folder, files, size in rows:
        size = int(size)
        total_files += files
        total_bytes += size
        out.append({
            "scope": "folder", "name": folder, "files": files, "max_files": settings.max_files_per_dir,
            "bytes": size, "max_bytes": settings.max_dir_bytes,
            "level": max(_level(files, settings.max_files_per_dir), _level(size, settings.max_dir_bytes), key=_rank),
        })  # fmt: skip
    out.append({"scope": "store", "name": str(catalog.base_dir), "files": total_files, "max_files": None,
                "bytes": total_bytes, "max_bytes": settings.max_store_bytes,
                "level": _level(total_bytes, settings.max_store_bytes)})  # fmt: skip
    return out


def _rank(level: str) -> int:
    return ("ok", "warn", "over").index(level)


_USAGE_ROWS = select(USAGE.c.folder, USAGE.c.files, USAGE.c.bytes)


def usage_after(conn: Any, folders: Iterable[str]) -> tuple[dict[str, tuple[int, int]], int]:
    """Inside the writer's transaction: the touched folders' (files, bytes) and the store's bytes."""
    rows = conn.execute(_USAGE_ROWS).all()  # one row per folder: small
    wanted = set(folders)
    return {r.folder: (r.files, r.bytes) for r in rows if r.folder in wanted}, sum(r.bytes for r in rows)


def warn_crossings(
    settings: Any, added: dict[str, tuple[int, int]], usage: dict[str, tuple[int, int]], store_bytes: int
) -> None:
    """Log a warning for each limit the writes just took past 80 %."""
    checks = []
    for folder, (files, size) in added.items():
        now_files, now_bytes = usage.get(folder, (files, size))
        checks.append((f"folder {folder}", "files", now_files - files, now_files, settings.max_files_per_dir))
        checks.append((f"folder {folder}", "bytes", now_bytes - size, now_bytes, settings.max_dir_bytes))
    grown = sum(size for _, size in added.values())
    checks.append(("the store", "bytes", store_bytes - grown, store_bytes, settings.max_store_bytes))
    for where, what, before, after, limit in checks:
        if before < WARN_AT * limit <= after:
            log.warning("%s holds %s %s, %d%% of its limit of %s (catalog limits)", where, after, what,
                        100 * after // limit, limit)  # fmt: skip
