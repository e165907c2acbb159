"""Directory limits, as SQL over the catalog: no folder is ever listed to answer them.

Per real folder (archive folders included): the files the catalog says are on
disk there (active, archived, quarantined) and their bytes, against
``limits.max_files_per_dir`` and ``limits.max_dir_bytes``; the whole store
against ``limits.max_store_bytes``. At 80 % a limit is ``warn``, above 100 %
``over``.

Writers keep ``folder_usage`` in step in the same transaction as each change,
so the warning a write logs when it crosses 80 % costs two primary-key reads,
not an aggregate over the catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from .models import ON_DISK
from .store import ARTIFACTS, USAGE, Catalog

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


def warn_if_crossed(catalog: Catalog, writes: Iterable[tuple[str, int]]) -> None:
    """Log a warning when the writes just made pushed a folder or the store past 80 % of a limit."""
    settings = catalog.settings.limits
    added: dict[str, tuple[int, int]] = {}
    for folder, size in writes:
        files, size_sum = added.get(folder, (0, 0))
        added[folder] = (files + 1, size_sum + size)
    with catalog.db.read() as conn:
        usage = {r.folder: (r.files, r.bytes) for r in conn.execute(select(USAGE).where(USAGE.c.folder.in_(added)))}
        store_bytes = int(conn.execute(select(func.coalesce(func.sum(USAGE.c.bytes), 0))).scalar_one())
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
