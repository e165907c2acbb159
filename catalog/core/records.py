"""The frozen records the API hands out: rows never leave the package as ORM objects or driver rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from .formats import format_time


def _times(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        if data.get(key) is not None:
            data[key] = format_time(data[key])
    return data


@dataclass(frozen=True)
class ArtifactRecord:
    """One catalogued artifact. Times are aware UTC; ``size`` in bytes; ``sha256`` 64 hex digits."""

    id: int
    path: str
    original_path: str
    type: str
    prefix: str
    ext: str
    created_at: datetime
    recorded_at: datetime
    size: int
    sha256: str
    status: str
    retain_until: datetime | None
    pair_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data with times as ISO-8601 UTC text (``…Z``)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return _times(data, "created_at", "recorded_at", "retain_until")

    @classmethod
    def from_row(cls, row: Any) -> ArtifactRecord:
        """Build from a row of the ``artifacts`` table (any object with its column names as attributes)."""
        return cls(
            id=row.id, path=row.path, original_path=row.original_path, type=row.type, prefix=row.prefix,
            ext=row.ext, created_at=row.created_at, recorded_at=row.recorded_at, size=row.size,
            sha256=row.sha256, status=row.status, retain_until=row.retain_until, pair_id=row.pair_id,
        )  # fmt: skip


@dataclass(frozen=True)
class EventRecord:
    """One audit event: ``seq`` is its place in the chain, ``at`` the writer's UTC clock, ``hash`` 64 hex digits."""

    seq: int
    at: datetime
    action: str
    artifact_id: int | None
    path: str | None
    status: str | None
    actor: str
    details: Mapping[str, Any]
    hash: str

    @classmethod
    def from_row(cls, row: Any) -> EventRecord:
        """Build from a row of the ``events`` table."""
        return cls(row.seq, row.at, row.action, row.artifact_id, row.path, row.status, row.actor,
                   json.loads(row.details), row.hash)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Plain data with the time as ISO-8601 UTC text."""
        return {"seq": self.seq, "at": format_time(self.at), "action": self.action, "artifact_id": self.artifact_id,
                "path": self.path, "status": self.status, "actor": self.actor, "details": dict(self.details),
                "hash": self.hash}  # fmt: skip


@dataclass(frozen=True)
class PublishedFile:
    """A file already complete under its final name, waiting for its catalog row.

    ``path`` is relative to the base folder (POSIX); ``size`` in bytes. ``action``
    is the event that records it (``write``, ``import``, ``adopt``…) and
    ``details`` what that event says besides the row.
    """

    path: str
    type: str
    prefix: str
    ext: str
    created_at: datetime
    size: int
    sha256: str
    pair_id: str | None = None
    action: str = "write"
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """One artifact's result in a verify run: ``outcome`` is ok, failed, missing or skipped."""

    artifact_id: int
    path: str
    outcome: str
    detail: str | None
