"""Limits a committed change took past :data:`WARN_AT`: logged as warnings after the commit (the unit of work's)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from .settings import Limits

#: Share of a limit at which a folder or the store is reported as ``warn``.
WARN_AT = 0.8
log = logging.getLogger("catalog")


@dataclass(frozen=True)
class Crossings:
    """Usage after a committed change, to warn about limits it took past :data:`WARN_AT`."""

    limits: Limits
    added: Mapping[str, tuple[int, int]]  # folder -> net (files, bytes) this change added; a move is -1 here, +1 there
    usage: Mapping[str, tuple[int, int]]  # folder -> (files, bytes) after it
    store_bytes: int

    def warn(self) -> None:
        """Log a warning for each limit the change just took past 80 %."""
        if not self.added:
            return
        limits, checks = self.limits, []
        for folder, (files, size) in self.added.items():
            now_files, now_bytes = self.usage.get(folder, (files, size))
            if files > 0:
                checks.append((f"folder {folder}", "files", now_files - files, now_files, limits.max_files_per_dir))
            if size > 0:
                checks.append((f"folder {folder}", "bytes", now_bytes - size, now_bytes, limits.max_dir_bytes))
        grown = sum(size for _, size in self.added.values())  # a move between folders nets to zero
        checks.append(("the store", "bytes", self.store_bytes - grown, self.store_bytes, limits.max_store_bytes))
        for where, what, before, after, limit in checks:
            if before < WARN_AT * limit <= after:
                log.warning("%s holds %s %s, %d%% of its limit of %s (catalog limits)", where, after, what,
                            100 * after // limit, limit)  # fmt: skip
