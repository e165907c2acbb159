"""The append-only, hash-chained audit log, and the checks that prove it intact.

Each event is stored twice: as columns (for queries) and as one canonical text
(sorted-key compact JSON with a format version). The chain hashes the stored
text, never values re-read through a driver:
``hash = SHA-256(prev_hash ‖ text)``, with 64 zeros before the first event.
Appenders lock the single ``chain_head`` row, so ``seq`` is gapless and is the
order. Database triggers refuse UPDATE and DELETE on ``events``.

Events that change an artifact row carry the row's state after the change:
``status`` as a column, and the changed fields in ``details`` (a ``write`` or
``adopt`` carries the whole row). Replaying an artifact's events therefore
rebuilds its row, which is how :func:`verify` (with :mod:`catalog.core.replay`)
catches a row edited behind the log's back.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from . import fs, tree
from .errors import ValidationError
from .prepared import Prepared
from .schema import CHAIN_HEAD, EVENTS

if TYPE_CHECKING:  # tlog (and its signatures: cryptography) loads only where checkpoints are read
    from . import tlog

FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64
CHECKPOINT_FORMAT = "catalog-checkpoint/1"

#: Artifact columns an event may set, with how they appear in ``details``.
ROW_FIELDS = ("path", "original_path", "type", "prefix", "ext", "created_at", "recorded_at", "size", "sha256",
              "status", "retain_until", "pair_id")  # fmt: skip
_TIME_FIELDS = ("created_at", "recorded_at", "retain_until")
_CLAIM = re.compile(r"[\w .@:+-]{1,64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._$-]")


def iso_utc(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds and ``Z``: the one text form of a time in the log."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_claim(claim: str | None) -> str | None:
    """Check a claimed actor name: 1-64 letters, digits, spaces or ``. @ : + - _`` (None passes).

    Returns it unchanged; raises ValidationError otherwise.
    """
    if claim is None:
        return None
    if not _CLAIM.fullmatch(claim):
        raise ValidationError(
            f"actor name {claim[:40]!r} must be 1-64 letters, digits, spaces or . @ : + - _ (no control characters)"
        )
    return claim


def _bounded(text: str, limit: int = 64) -> str:
    """``text`` with anything but ``A-Za-z0-9 . _ - $`` as ``?``, cut to ``limit`` characters with ``...`` at the end."""
    safe = _UNSAFE.sub("?", text) or "?"
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def current_actor(claim: str | None = None, identity: str | None = None) -> str:
    """``user@host:pid`` of this process (``identity`` if given: :func:`process_identity`'s, kept), with a claimed
    name beside it, never instead."""
    actor = identity or process_identity()
    return f"{actor} (claims {claim})" if claim else actor


def process_identity() -> str:
    """``user@host:pid`` of this process, looked up now.

    The user is the effective uid's passwd entry (``uid<n>`` without one),
    never the environment (LOGNAME, USER, LNAME, USERNAME: anyone can set
    them); user and host are each bounded to 64 characters of ``A-Za-z0-9 .
    _ - $`` (anything else shows as ``?``), so the actor always fits the
    ``events.actor`` column (256) and never breaks a line.
    """
    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:  # no passwd entry (containers)
        user = f"uid{uid}"
    return f"{_bounded(user)}@{_bounded(socket.gethostname())}:{os.getpid()}"


def canonical_json(data: Any) -> str:
    """Compact, sorted-key, ASCII JSON: the same text on every backend."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def event_text(
    seq: int, at: datetime, action: str, artifact_id: int | None, path: str | None, status: str | None,
    actor: str, details: Mapping[str, Any],
) -> str:  # fmt: skip
    """The canonical text of one event: everything but its hash."""
    return canonical_json(
        {
            "v": FORMAT_VERSION, "seq": seq, "at": iso_utc(at), "action": action, "artifact_id": artifact_id,
            "path": path, "status": status, "actor": actor, "details": dict(details),
        }  # fmt: skip
    )


def chain_hash(prev_hash: str, text: str) -> str:
    """An event's chain hash: SHA-256 of ``prev_hash ‖ text`` (UTF-8), as 64 hex digits."""
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


def row_details(values: Mapping[str, Any]) -> dict[str, Any]:
    """Artifact values as an event's details carry them: only :data:`ROW_FIELDS`, times as UTC ISO-8601 text."""
    return {k: iso_utc(v) if k in _TIME_FIELDS and v is not None else v for k, v in values.items() if k in ROW_FIELDS}


# Built once: every write runs these.
_HEAD_AT = select(EVENTS.c.at).where(EVENTS.c.seq == CHAIN_HEAD.c.seq).scalar_subquery()
_LOCK_HEAD = (
    select(CHAIN_HEAD.c.seq, CHAIN_HEAD.c.hash, _HEAD_AT.label("at"))
    .where(CHAIN_HEAD.c.id == 1)
    .with_for_update(of=CHAIN_HEAD)
)


_LOCK_HEAD_PREPARED = Prepared(_LOCK_HEAD)


def lock_head(conn: Connection) -> tuple[int, str, datetime | None]:
    """Lock the chain head row for this transaction (PostgreSQL: FOR UPDATE) and return its (seq, hash, at).

    ``at`` is the last event's time (aware UTC; None before the first event).
    Only the unit of work calls this, first thing in every write transaction.
    """
    ((seq, digest, at),) = _LOCK_HEAD_PREPARED.run(conn)
    return seq, digest, Prepared.column(conn, EVENTS.c.at.type)(at)


def next_link(prev_hash: str, seq: int, at: datetime, action: str, artifact_id: int | None, path: str | None,
              status: str | None, actor: str, details: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The stored columns of the event after ``prev_hash``: its canonical text and ``hash = SHA-256(prev ‖ text)``."""
    text = event_text(seq, at, action, artifact_id, path, status, actor, details)
    return dict(seq=seq, at=at, action=action, artifact_id=artifact_id, path=path, status=status, actor=actor,
                details=canonical_json(details), text=text, hash=chain_hash(prev_hash, text))  # fmt: skip


# -- reading --------------------------------------------------------------------------


def iter_events(read: Any, where: list[Any] | None = None, batch: int = 1000) -> Iterator[Any]:
    """Stored events (rows of ``events``) in seq order, streamed in keyset batches of ``batch``.

    Each batch is read in its own short transaction (``read`` is
    ``Database.read``); ``where`` adds conditions on the ``events`` columns.
    """
    for rows in event_batches(read, where, batch):
        yield from rows


def event_batches(
    read: Any, where: list[Any] | None = None, batch: int = 1000, columns: Sequence[Any] | None = None
) -> Iterator[list[Any]]:
    """:func:`iter_events` a batch (a list of up to ``batch`` rows) at a time; ``columns`` picks what a row
    holds (default: every column; a ``seq`` column is needed)."""
    last = 0
    chosen = select(*columns) if columns else select(EVENTS)
    while True:
        query = chosen.where(EVENTS.c.seq > last, *(where or [])).order_by(EVENTS.c.seq).limit(batch)
        with read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        yield rows
        last = rows[-1].seq


# -- checkpoints ----------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The chain head at one moment, kept outside the store."""

    seq: int
    hash: str
    at: datetime
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint file's content: format, seq, 64-hex hash and ``at`` as UTC ISO-8601 (not ``source``)."""
        return {"format": CHECKPOINT_FORMAT, "seq": self.seq, "hash": self.hash, "at": iso_utc(self.at)}


def read_checkpoint(path: Path) -> Checkpoint | tlog.TreeCheckpoint:
    """Load a checkpoint file: a C2SP tlog-checkpoint (:func:`catalog.core.tlog.parse_checkpoint`), or the JSON
    of :meth:`Checkpoint.to_dict` that earlier versions wrote. ValidationError if it is missing or not one."""
    from . import tlog

    raw, _ = fs.read_small(path, "checkpoint file", tlog.MAX_BYTES)
    try:
        if raw.lstrip()[:1] not in (b"{", b"["):  # JSON: a checkpoint of an earlier version
            return tlog.parse_checkpoint(raw, str(path))
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a catalog checkpoint")
        seq, digest = data["seq"], data["hash"]
        if type(seq) is not int or seq < 0 or not re.fullmatch(r"[0-9a-f]{64}", str(digest)):
            raise ValueError("seq or hash malformed")
        at = datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00"))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, ValidationError) as exc:
        raise ValidationError(f"checkpoint file {path} is not a catalog checkpoint ({exc})") from None
    return Checkpoint(seq, digest, at, str(path))


# -- verification ---------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One break found by :func:`verify`: where (seq, if any), what kind, and the story."""

    seq: int | None
    kind: str  # edited | missing | reordered | row/event mismatch | rewritten | tree | checkpoint | key | clock
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data: seq, kind and message."""
        return {"seq": self.seq, "kind": self.kind, "message": self.message}


@dataclass
class AuditReport:
    """What walking the log found: ``problems`` break it, ``clock`` findings are times a clock got wrong.

    ``intact`` if nothing breaks the chain or the rows; ``ok`` only if, besides,
    no event is dated in the future or before its predecessor beyond the skew.
    """

    count: int = 0
    artifacts: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)
    clock: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """True if the chain, the rows and the checkpoints agree (times aside)."""
        return not self.problems

    @property
    def ok(self) -> bool:
        """True if the walk found no problem and no clock finding."""
        return not self.problems and not self.clock

    @property
    def first_bad_seq(self) -> int | None:
        """The lowest seq at which a problem was found, or None (problems without a seq do not count)."""
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    @property
    def first(self) -> Problem | None:
        """The problem at the first broken seq (or the first problem without a seq)."""
        if not self.problems:
            return None
        return min(self.problems, key=lambda p: (p.seq is None, p.seq or 0))

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ok, intact, event and artifact counts, head seq and hash, checkpoints, first bad seq, problems
        and clock findings."""
        return {
            "ok": self.ok, "intact": self.intact, "events": self.count, "artifacts": self.artifacts, "head_seq": self.head_seq,
            "head_hash": self.head_hash, "checkpoints": self.checkpoints, "first_bad_seq": self.first_bad_seq,
            "problems": [p.to_dict() for p in self.problems], "clock": [p.to_dict() for p in self.clock],
        }  # fmt: skip


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    return f"{seconds // 3600} hours" if seconds >= 7200 else f"{seconds // 60} minutes"


class _ClockCheck:
    """Times in the log: none before its predecessor, none in the future, each beyond ``skew``."""

    def __init__(self, report: AuditReport, now: datetime, skew: timedelta) -> None:
        self.report, self.now, self.skew = report, now, skew
        self.prev: Any = None
        self.future: list[Any] = []

    def see(self, event: Any) -> None:
        prev = self.prev
        if prev is not None and prev.at - event.at > self.skew:
            message = (f"dated {iso_utc(event.at)}, {_span(prev.at - event.at)} before event {prev.seq} "
                       f"({iso_utc(prev.at)}): the clock of its writer ({event.actor}) was behind, or that of "
                       f"event {prev.seq}'s was ahead")  # fmt: skip
            self.report.clock.append(Problem(event.seq, "clock", message))
        if event.at - self.now > self.skew:
            self.future.append((event.seq, event.at))
        self.prev = event

    def done(self) -> None:
        if self.future:
            (seq, at), latest = self.future[0], max(at for _, at in self.future)
            message = (f"{len(self.future)} events are dated in the future (from {iso_utc(at)}, up to "
                       f"{iso_utc(latest)}; now is {iso_utc(self.now)}): a writer's clock was ahead")  # fmt: skip
            self.report.clock.append(Problem(seq, "clock", message))


def _check_chain(read: Any, report: AuditReport, keep: set[int], clock: _ClockCheck) -> dict[int, str]:
    """Walk every event: gapless, hashes chain, columns agree with the text, times in order.

    Returns the hashes of the events whose seq is in ``keep`` (the checkpoints').
    """
    prev, expected, hashes = GENESIS_HASH, 1, {}
    merkle_tree = tree.TreeCheck(read, lambda seq, message: report.problems.append(Problem(seq, "tree", message)))
    for event in iter_events(read):
        report.count += 1
        clock.see(event)
        merkle_tree.see(event.seq, event.text)
        if event.seq != expected:
            report.problems.append(Problem(expected, "missing", f"events {expected}..{event.seq - 1} are missing"))
            expected = event.seq
        try:
            body = json.loads(event.text)
            text_seq = body.get("seq")
        except (ValueError, AttributeError):
            body, text_seq = None, None
        if chain_hash(prev, event.text) != event.hash:
            if isinstance(text_seq, int) and text_seq != event.seq:
                message = f"holds the text of event {text_seq}: events were reordered"
                report.problems.append(Problem(event.seq, "reordered", message))
            else:
                message = "its hash does not match its stored text and the previous hash: the event was edited"
                report.problems.append(Problem(event.seq, "edited", message))
        elif body is None or not _columns_agree(event, body):
            report.problems.append(Problem(event.seq, "edited", "its columns disagree with its stored text"))
        if event.seq in keep:
            hashes[event.seq] = event.hash
        prev = event.hash
        expected += 1
    clock.done()
    merkle_tree.done()
    with read() as conn:
        head = conn.execute(select(CHAIN_HEAD.c.seq, CHAIN_HEAD.c.hash).where(CHAIN_HEAD.c.id == 1)).one()
    report.head_seq, report.head_hash = head.seq, head.hash
    if head.seq > expected - 1:
        report.problems.append(Problem(expected, "missing", f"events {expected}..{head.seq} are missing at the end"))
    elif (head.seq, head.hash) != (expected - 1, prev):
        report.problems.append(Problem(head.seq or 1, "edited", "the chain head does not match the last event"))
    return hashes


def _columns_agree(event: Any, body: Mapping[str, Any]) -> bool:
    try:
        columns = {
            "v": FORMAT_VERSION, "seq": event.seq, "at": iso_utc(event.at), "action": event.action,
            "artifact_id": event.artifact_id, "path": event.path, "status": event.status, "actor": event.actor,
            "details": json.loads(event.details),
        }  # fmt: skip
    except ValueError:
        return False
    return dict(body) == columns


def replay(events: Iterable[tuple[str | None, str | None, Mapping[str, Any]]]) -> dict[str, Any] | None:
    """The row an artifact's state events rebuild (``(path, status, details)`` in seq order, as :func:`row_details`
    writes it), or None if the first does not record the whole row (``write``, ``import``, ``adopt``)."""
    state: dict[str, Any] | None = None
    for path, status, details in events:
        if state is None and "original_path" not in details:
            return None
        state = {**(state or {}), **{k: v for k, v in details.items() if k in ROW_FIELDS}, "path": path, "status": status}
    return state


def _check_checkpoint(checkpoint: Checkpoint, hashes: Mapping[int, str], report: AuditReport) -> None:
    report.checkpoints += 1
    if checkpoint.seq == 0:
        return
    actual = hashes.get(checkpoint.seq)
    if actual is None:
        message = f"checkpoint {checkpoint.source} names event {checkpoint.seq}, which the log no longer has"
        report.problems.append(Problem(checkpoint.seq, "rewritten", message))
    elif actual != checkpoint.hash:
        message = (
            f"event {checkpoint.seq} hashes to {actual[:12]}…, but checkpoint {checkpoint.source} (taken "
            f"{iso_utc(checkpoint.at)}) recorded {checkpoint.hash[:12]}…: the log was rewritten at or before it"
        )
        report.problems.append(Problem(checkpoint.seq, "rewritten", message))


def verify(read: Any, checkpoints: list[Checkpoint] = (), *, now: datetime | None = None,  # type: ignore[assignment]
           skew: timedelta = timedelta(minutes=5), checks: Sequence[Callable[[Any, AuditReport], None]] = ()) -> AuditReport:  # fmt: skip
    """Recompute the chain, run ``checks`` (the rows against their events: :data:`catalog.core.replay.CHECKS`),
    check each checkpoint against the chain, and the times.

    ``read`` is ``Database.read``: every batch runs in its own short transaction.
    An event dated more than ``skew`` before its predecessor, or after ``now``
    (default: the real clock, UTC), is a clock finding. Returns an
    :class:`AuditReport` with the problems in seq order; a broken log is
    reported, never raised.
    """
    report = AuditReport()
    clock = _ClockCheck(report, now or datetime.now(timezone.utc), skew)
    hashes = _check_chain(read, report, {c.seq for c in checkpoints}, clock)
    for check in checks:
        check(read, report)
    for checkpoint in checkpoints:
        _check_checkpoint(checkpoint, hashes, report)
    report.problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return report
