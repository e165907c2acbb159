"""The append-only, hash-chained audit log.

Each event is stored twice: as columns (for queries) and as one canonical text
(sorted-key compact JSON with a format version). The chain hashes the stored
text, never values re-read through a driver:
``hash = SHA-256(prev_hash ‖ text)``, with 64 zeros before the first event.
Appenders lock the single ``chain_head`` row, so ``seq`` is gapless and is the
order.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, select, update

from .models import ChainHead, Event

EVENTS = Event.__table__
FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64


def iso_utc(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds and ``Z``: the one text form of a time."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def current_actor(claim: str | None = None) -> str:
    """``user@host:pid`` of this process, plus a claimed name beside it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = f"uid{os.getuid()}"
    actor = f"{user}@{socket.gethostname()}:{os.getpid()}"
    return f"{actor} (claims {claim})" if claim else actor


def canonical_json(data: Any) -> str:
    """Compact, sorted-key, ASCII JSON: the same text on every backend."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def event_text(
    seq: int, at: datetime, action: str, artifact_id: int | None, path: str | None, actor: str, details: Mapping
) -> str:
    """The canonical text of one event: everything but its hash."""
    return canonical_json(
        {
            "v": FORMAT_VERSION,
            "seq": seq,
            "at": iso_utc(at),
            "action": action,
            "artifact_id": artifact_id,
            "path": path,
            "actor": actor,
            "details": dict(details),
        }
    )


def chain_hash(prev_hash: str, text: str) -> str:
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EventRecord:
    """One audit event as the API hands it out."""

    seq: int
    at: datetime
    action: str
    artifact_id: int | None
    path: str | None
    actor: str
    details: Mapping[str, Any]
    hash: str


class ChainAppender:
    """Appends events inside one write transaction, holding the chain head lock."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        head = conn.execute(select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1).with_for_update()).one()
        self.seq, self.hash = head.seq, head.hash

    def append(
        self,
        action: str,
        *,
        actor: str,
        artifact_id: int | None = None,
        path: str | None = None,
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> int:
        at = at or datetime.now(timezone.utc)
        details = dict(details or {})
        seq = self.seq + 1
        text = event_text(seq, at, action, artifact_id, path, actor, details)
        digest = chain_hash(self.hash, text)
        self.conn.execute(
            EVENTS.insert().values(
                seq=seq, at=at, action=action, artifact_id=artifact_id, path=path, actor=actor,
                details=canonical_json(details), text=text, hash=digest,
            )  # fmt: skip
        )
        self.seq, self.hash = seq, digest
        return seq

    def close(self) -> None:
        """Move the chain head to the last appended event (same transaction)."""
        self.conn.execute(update(ChainHead).where(ChainHead.id == 1).values(seq=self.seq, hash=self.hash))


@dataclass
class ChainReport:
    """What walking the chain found. ``ok`` only if nothing is wrong."""

    count: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    first_bad_seq: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def iter_events(conn: Connection, batch: int = 1000) -> Iterator[Any]:
    """Every stored event in seq order, fetched in keyset batches."""
    last = 0
    while True:
        rows = conn.execute(select(EVENTS).where(EVENTS.c.seq > last).order_by(EVENTS.c.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify_chain(conn: Connection) -> ChainReport:
    """Recompute the chain from the stored text; check columns agree with it."""
    report = ChainReport()
    prev = GENESIS_HASH
    expected_seq = 1

    def problem(seq: int, what: str) -> None:
        if report.first_bad_seq is None:
            report.first_bad_seq = seq
        report.problems.append(f"seq {seq}: {what}")

    for event in iter_events(conn):
        report.count += 1
        if event.seq != expected_seq:
            problem(expected_seq, f"missing (next stored event is {event.seq})")
            expected_seq = event.seq
        if chain_hash(prev, event.text) != event.hash:
            problem(event.seq, "hash does not match the stored text and the previous hash (edited or reordered)")
        try:
            body = json.loads(event.text)
            columns = {
                "seq": event.seq, "at": iso_utc(event.at), "action": event.action, "artifact_id": event.artifact_id,
                "path": event.path, "actor": event.actor, "details": json.loads(event.details),
            }  # fmt: skip
            if body.get("v") != FORMAT_VERSION or any(body.get(k) != v for k, v in columns.items()):
                problem(event.seq, "columns disagree with the stored text")
        except (ValueError, TypeError):
            problem(event.seq, "stored text is not valid JSON")
        prev = event.hash
        expected_seq += 1
    head = conn.execute(select(ChainHead.seq, ChainHead.hash).where(ChainHead.id == 1)).one()
    report.head_seq, report.head_hash = head.seq, head.hash
    if (head.seq, head.hash) != (expected_seq - 1, prev):
        problem(min(head.seq, expected_seq - 1) + 1, "chain head does not match the last event (events removed?)")
    return report
