"""Retention as SQL: what expires, what is protected and why, and a crash-safe apply.

An artifact expires at ``max(created_at, recorded_at) + days``, where days is
its type's policy (config, env) but never below the type's floor (kept in the
catalog, changed only by the audited :func:`~catalog.ops.policy.set_floor`:
the minimum keeping period of SEC 17a-4(f) and MiFID II Art. 16(7)), and never
before the row's own ``retain_until`` (set at write time, extendable, never
shortened). A legal hold protects whatever it covers, whatever its age.

``apply`` works by intents, so a run killed at any point and run again
finishes the job without doing anything twice:

    delete:  intent event -> unlink -> fsync folder -> ``delete`` event (status deleted)
    archive: intent event -> link into <type>/archived/YYYY-MM/ (layout day:
             YYYY-MM/DD/) -> fsync both folders -> unlink the old name ->
             ``archive`` event (new path)

Under the ``month`` and ``day`` layouts, a partition folder (year, month, day)
that a delete or archive leaves empty is removed (rmdir, its parent fsynced);
a folder holding anything at all is never removed, nor a type or archive folder.

An archive never destroys bytes it has not secured: the old name goes only
once the archive name holds the recorded bytes; an archive name already taken
(by other bytes or another row) is left alone for ``…/YYYY-MM/<n>/<name>``.
A file that cannot be removed or linked is reported as failed and retried by
the next run; it stops nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import and_, exists, select

from ..core import fs
from ..core.errors import CatalogError, IntegrityError, NotFoundError, Param, StoreError, ValidationError, translate
from ..core.formats import format_time
from ..core.names import is_partition
from ..core.records import ArtifactRecord
from ..core.replay import LogGuards
from ..core.schema import ARTIFACTS, EVENTS, keyset_after
from ..core.settings import FOREVER
from ..core.store import Catalog
from ..core.vocabulary import READABLE, TYPES
from .checkpoints import auto_checkpoint
from .policy import HoldSet, active_holds, floors, logged_record, protection_in

# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    """One artifact the rules reach: what happens to it (delete, archive, hold, keep), and why.

    ``age_days`` counts days since max(created_at, recorded_at); ``expires_at`` is UTC.
    """

    record: ArtifactRecord
    action: str  # delete | archive | hold | keep
    reason: str
    age_days: float
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """Plain data: path, type, action, reason, age in days (2 decimals), expiry (ISO-8601 UTC), size, status."""
        return {"path": self.record.path, "type": self.record.type, "action": self.action, "reason": self.reason,
                "age_days": round(self.age_days, 2), "expires_at": format_time(self.expires_at),
                "size": self.record.size, "status": self.record.status}  # fmt: skip


def _policy(catalog: Catalog, artifact_type: str, floor: int | None) -> tuple[int | None, str, str]:
    policy = catalog.settings.retention[artifact_type]
    source = catalog.settings.sources.get(f"retention.{artifact_type}.days", "default")
    if policy.days is None:
        return None, policy.action, "kept forever"
    if floor is not None and floor > policy.days:
        return floor, policy.action, f"floor {floor} days (policy {policy.days} days from {source})"
    return policy.days, policy.action, f"{policy.action} after {policy.days} days ({source})"


def promise(retain_until: datetime) -> str:
    """How a retention promise reads in a plan: ``retain_until <time>``, or kept forever."""
    if retain_until == FOREVER:
        return "kept forever (its type was kept forever when it was written)"
    return f"retain_until {format_time(retain_until)}"


def cutoff_for(now: datetime, days: int) -> datetime:
    """``now`` minus ``days`` days; ValidationError if that is before the calendar's start."""
    try:
        return now - timedelta(days=days)
    except OverflowError:
        raise ValidationError(Param("now"), f" {now.date().isoformat()} is too early to plan {days}-day retention",
                              value=now) from None  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One type's retention at a moment: its days (floor applied), its action, how the plan words it, the cutoff."""

    type: str
    days: int
    action: str
    reason: str
    cutoff: datetime

    def expired(self) -> Any:
        """The SQL condition for this type's rows past the cutoff in a status the action applies to."""
        c = ARTIFACTS.c
        statuses = ("active",) if self.action == "archive" else ("active", "archived")
        return and_(c.type == self.type, c.created_at <= self.cutoff, c.recorded_at <= self.cutoff,
                    c.status.in_(statuses))  # fmt: skip

    def decide(self, record: ArtifactRecord, protection: HoldSet, now: datetime) -> PlanRow:
        """What the plan does with one expired ``record``: hold, keep (a retain_until promise), or the action."""
        base = max(record.created_at, record.recorded_at)
        expires = base + timedelta(days=self.days)
        age = (now - base).total_seconds() / 86400
        held = protection.hold_for(record)
        if held is not None:
            return PlanRow(record, "hold", f"legal hold {held.id}: {held.reason}", age, expires)
        if record.retain_until is not None and record.retain_until > now:
            return PlanRow(record, "keep", promise(record.retain_until), age, max(expires, record.retain_until))
        return PlanRow(record, self.action, self.reason, age, expires)


def rules(catalog: Catalog, now: datetime, types: tuple[str, ...] = ()) -> Iterator[Rule]:
    """The retention rule of each type in ``types`` (default: every type) that expires anything, at ``now``."""
    type_floors = floors(catalog)
    for artifact_type in types or TYPES:
        days, action, reason = _policy(catalog, artifact_type, type_floors.get(artifact_type))
        if days is not None:
            yield Rule(artifact_type, days, action, reason, cutoff_for(now, days))


def expired_pages(catalog: Catalog, where: Any, batch: int, columns: list[Any] | None = None,
                  start: tuple[datetime, int] | None = None) -> Iterator[list[Any]]:  # fmt: skip
    """The rows matching ``where``, oldest first (created_at, id), a keyset page of ``batch`` at a time, from just
    past ``start`` (a (created_at, id); default the first); ``columns`` picks what a row holds (default every
    column; an ``id`` column is needed)."""
    c = ARTIFACTS.c
    chosen = select(*columns) if columns is not None else select(ARTIFACTS)
    last: tuple[datetime, int] = start or (datetime(1, 1, 2, tzinfo=timezone.utc), 0)
    while True:
        with catalog.read() as conn:
            rows = list(conn.execute(chosen.where(where, keyset_after((c.created_at, c.id), last))
                                     .order_by(c.created_at, c.id).limit(batch)).all())  # fmt: skip
            if rows:
                last = (conn.execute(select(c.created_at).where(c.id == rows[-1].id)).scalar_one(), rows[-1].id)
        if not rows:
            return
        yield rows


def expired_records(catalog: Catalog, where: Any, batch: int = 1000,
                    start: tuple[datetime, int] | None = None) -> Iterator[ArtifactRecord]:  # fmt: skip
    """:func:`expired_pages`' rows (from just past ``start``) as records, oldest first (created_at, id)."""
    for rows in expired_pages(catalog, where, batch, start=start):
        yield from map(ArtifactRecord.from_row, rows)


def _place(catalog: Catalog, artifact_id: int, order: tuple[str, ...]) -> tuple[str, datetime, int]:
    """Where artifact ``artifact_id`` sorts in a plan of ``order``'s types: (type, created_at, id), all never changed."""
    with catalog.read() as conn:
        found = conn.execute(select(ARTIFACTS.c.type, ARTIFACTS.c.created_at).where(ARTIFACTS.c.id == artifact_id)).first()
    if found is None:
        raise NotFoundError(Param("after"), f" {artifact_id}: no artifact has that id", value=artifact_id)
    if found.type not in order:
        raise ValidationError(Param("after"), f" {artifact_id} is of type {found.type}, not one of the types planned "
                              f"({', '.join(order)})", value=artifact_id)  # fmt: skip
    return found.type, found.created_at, artifact_id


def plan(catalog: Catalog, *, now: datetime | None = None, types: tuple[str, ...] = (), batch: int = 1000,
         after: int | None = None) -> Iterator[PlanRow]:  # fmt: skip
    """Every artifact past its type's retention at ``now``: to delete, to archive, or protected (hold, retain_until).

    Streamed type by type (``types``' order, default every type), each oldest first by (created_at, id), read
    in keyset batches of ``batch``; ``now`` defaults to the real clock (UTC). ``after`` (an artifact id: a
    page's last row) starts just past that artifact's place, (type, created_at, id): keyset pages that neither
    skip nor repeat a row. Raises ValidationError if ``now`` is too early for a type's number of days or
    ``after`` is of a type not planned; NotFoundError if no artifact has the id ``after``.
    """
    now = now or datetime.now(timezone.utc)
    order, start = types or TYPES, None
    if after is not None:
        start = _place(catalog, after, order)
        order = order[order.index(start[0]):]
    protection = active_holds(catalog)
    for rule in rules(catalog, now, order):
        first = start[1:] if start is not None and rule.type == start[0] else None
        for record in expired_records(catalog, rule.expired(), batch, first):
            yield rule.decide(record, protection, now)


# -- apply --------------------------------------------------------------------------------------


@dataclass
class ApplyReport:
    """What :func:`apply` did, by store path: deleted, archived (from, to), resumed, missing, failed (path, why);
    and how many expired artifacts it protected.

    A failed artifact keeps its open intent: the next run retries it first, and it blocks nothing else.
    """

    deleted: list[str] = field(default_factory=list)
    archived: list[tuple[str, str]] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    protected: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data, each archived pair as ``{"from": …, "to": …}``, each failure as ``{"path": …, "reason": …}``."""
        return {"deleted": self.deleted, "archived": [{"from": a, "to": b} for a, b in self.archived],
                "resumed": self.resumed, "missing": self.missing,
                "failed": [{"path": p, "reason": r} for p, r in self.failed], "protected": self.protected}  # fmt: skip


def archive_path(record: ArtifactRecord, layout: str = "flat") -> str:
    """``<type>/archived/YYYY-MM/<name>`` (layouts flat and month) or ``<type>/archived/YYYY-MM/DD/<name>``
    (layout day): the month (and day) of the artifact's own timestamp, its original file name."""
    name = PurePosixPath(record.original_path).name
    day = f"/{record.created_at:%d}" if layout == "day" else ""
    return f"{record.type}/archived/{record.created_at:%Y-%m}{day}/{name}"


def _prune(catalog: Catalog, path: str) -> None:
    """Remove the partition folders (``explain/2026/11/29``, then ``explain/2026/11``…) that ``path``'s removal left
    empty: a day layout would otherwise leave a folder a day behind forever. Type folders, archive folders
    and anything not made by a layout stay; a folder that holds anything is never removed. A writer that
    opened such a folder a moment before gets an error (never a lost file) and may simply try again."""
    folder = path.rpartition("/")[0]
    if is_partition(folder):
        fs.prune_folders(catalog.base_dir, folder, keep=lambda rel: not is_partition(rel))


def open_intents(catalog: Catalog) -> Sequence[Any]:
    """Intent events not yet followed by their artifact's delete, archive or missing event.

    Rows of (seq, artifact_id, details as JSON text), in seq order.
    """
    later = EVENTS.alias("later")
    with catalog.read() as conn:
        return conn.execute(
            select(EVENTS.c.seq, EVENTS.c.artifact_id, EVENTS.c.details)
            .where(EVENTS.c.action == "retention_intent",
                   ~exists().where(and_(later.c.artifact_id == EVENTS.c.artifact_id, later.c.seq > EVENTS.c.seq,
                                        later.c.action.in_(("delete", "archive", "missing")))))
            .order_by(EVENTS.c.seq)
        ).all()  # fmt: skip


def lifecycle_change(catalog: Catalog, artifact_id: int, path: str) -> str | None:
    """Why an artifact's file at ``path`` may rightly be gone: retention moved or removed it, or is doing so now.

    None if the row still says the file is there and no retention intent is
    open for it. (An intent commits before its file is touched, so a file seen
    gone after that is always explained.)
    """
    e, later, a = EVENTS.c, EVENTS.alias("later"), ARTIFACTS.c
    open_intent = exists().where(e.artifact_id == artifact_id, e.action == "retention_intent",
                                 ~exists().where(and_(later.c.artifact_id == artifact_id, later.c.seq > e.seq,
                                                      later.c.action.in_(("delete", "archive", "missing")))))  # fmt: skip
    with catalog.read() as conn:  # one statement, one moment: a delete committed between two reads hid both
        row = conn.execute(select(a.status, a.path, open_intent.label("open")).where(a.id == artifact_id)).one()
    if row.status not in READABLE or row.path != path:
        return f"{row.status} at {row.path} since it was read"
    return "retention is deleting or archiving it" if row.open else None


def _finish_delete(catalog: Catalog, record: ArtifactRecord, seq: int, reason: str) -> None:
    fs.unlink_durably(fs.row_file(catalog.base_dir, record.path))
    catalog.change_status(record.id, action="delete", status="deleted", details={"reason": reason, "intent": seq})
    _prune(catalog, record.path)


def _holds_bytes(catalog: Catalog, path: str, record: ArtifactRecord) -> bool:
    """Whether the store file at ``path`` is the artifact's recorded bytes (size and SHA-256; a symlink never is)."""
    try:
        return fs.sha256_file(catalog.base_dir, path, record.size) == (record.sha256, record.size)
    except (FileNotFoundError, fs.UnsafePath):
        return False


def _free_archive_path(catalog: Catalog, record: ArtifactRecord, preferred: str) -> str:
    """``preferred`` if neither a file nor another row has it, else ``<folder>/<n>/<name>`` for the first free n ≥ 2.

    The numbered sub-folder keeps the artifact's own name, so reconcile still reads it as an archived artifact.
    """
    folder, name = preferred.rsplit("/", 1)
    candidate, n = preferred, 1
    while True:
        owner = catalog.find_path(candidate)
        if not fs.row_file(catalog.base_dir, candidate).exists() and (owner is None or owner.id == record.id):
            return candidate
        n += 1
        candidate = f"{folder}/{n}/{name}"


def _finish_archive(catalog: Catalog, record: ArtifactRecord, target: str, seq: int, reason: str) -> str | None:
    """Link, fsync, unlink, record; returns the archive path used, or None when both names are gone.

    Bytes are never destroyed before they are secured: the old name is removed
    only once the archive name is proven to hold the recorded bytes (the same
    inode, or the same SHA-256 after a crash between the two steps). An archive
    name taken by other bytes, or by another row, is left alone and the next
    free name is used instead. Raises StoreError when the copy does not hold
    the recorded bytes (the original stays; the next run retries).
    """
    base = catalog.base_dir
    src, dst = fs.row_file(base, record.path), fs.row_file(base, target)
    owner = catalog.find_path(target)
    same = src.exists() and dst.exists() and os.path.samefile(src, dst)
    if (owner is not None and owner.id != record.id) or (dst.exists() and not same and not _holds_bytes(catalog, target, record)):
        target = _free_archive_path(catalog, record, target)
        dst = fs.row_file(base, target)
    if src.exists() and not dst.exists():
        fs.link_durably(src, dst, base)
    if not dst.exists():
        return None
    if src.exists() and not os.path.samefile(src, dst) and not _holds_bytes(catalog, target, record):
        raise StoreError(f"the archive copy {target} does not hold the recorded bytes")  # never unlink the original
    fs.unlink_durably(src)
    catalog.change_status(record.id, action="archive", status="archived", path=target,
                          details={"reason": reason, "intent": seq})  # fmt: skip
    _prune(catalog, record.path)
    return target


def _finish(catalog: Catalog, report: ApplyReport, record: ArtifactRecord, op: str, target: str | None, seq: int,
            reason: str) -> None:  # fmt: skip
    """Carry out one intent (``op`` delete or archive to ``target``) and report what became of the artifact."""
    if op == "delete":
        _finish_delete(catalog, record, seq, reason)
        report.deleted.append(record.path)
        return
    assert target is not None
    used = _finish_archive(catalog, record, target, seq, reason)
    if used is not None:
        report.archived.append((record.path, used))
        return
    why = "neither the file nor its archive copy exists"
    catalog.change_status(record.id, action="missing", status="missing", details={"reason": why, "intent": seq})
    report.missing.append(record.path)


def _attempt(catalog: Catalog, report: ApplyReport, record: ArtifactRecord, op: str, target: str | None, seq: int,
             reason: str) -> None:  # fmt: skip
    """:func:`_finish` one intent; a file the system will not let go of is reported (its intent stays open to retry),
    and the rest go on."""
    try:
        _finish(catalog, report, record, op, target, seq, reason)
    except (OSError, StoreError) as exc:
        _failed(report, record.path, exc)


def _failed(report: ApplyReport, path: str, exc: Exception) -> None:
    known = translate(exc)
    report.failed.append((path, str(known) if known is not None else str(exc)))


def apply(catalog: Catalog, rows: list[PlanRow] | None = None) -> ApplyReport:
    """Finish any open intents, then delete or archive what the plan says for the real current time.

    One apply at a time per catalog, on any host: a second one waits up to the
    busy timeout for the first, then raises
    :class:`~catalog.core.errors.CatalogDatabaseError` ("already running").
    Each artifact's protection (holds, its pair's hold, retain_until, the
    floor, its status) is checked again in the transaction that records its
    intent, so whatever committed before that counts. ``rows``: only these
    rows of the plan (those still due now); default all. Missing files are
    reported (status ``missing``), never silently skipped. Ends with a
    ``retention_run`` event and, if configured, a checkpoint. Returns an
    :class:`ApplyReport`.
    """
    with catalog.db.exclusive("lifecycle", "retention apply"):
        report = _apply(catalog, rows)
    auto_checkpoint(catalog)
    return report


def _act(catalog: Catalog, report: ApplyReport, row: PlanRow, now: datetime, log: LogGuards) -> None:
    """Delete or archive one planned artifact, unless something protects it at the moment of acting."""
    with catalog.read() as conn:
        record = logged_record(conn.execute, row.record.id)  # its row as its events say it, its path a store path
    if not fs.row_file(catalog.base_dir, record.path).exists():  # reported, never silently skipped
        catalog.change_status(record.id, action="missing", status="missing",
                              details={"reason": f"file missing when retention came to {row.action} it"})  # fmt: skip
        report.missing.append(record.path)
        return
    target = _free_archive_path(catalog, record, archive_path(record, catalog.settings.layout)) if row.action == "archive" else None
    with catalog.change() as tx:
        record, protected = protection_in(tx, record.id, now, log)  # at the moment of acting, in the intent's transaction
        if protected is None:
            seq = tx.events.append("retention_intent", artifact_id=record.id, path=record.path,
                                   details={"op": row.action, "target": target, "reason": row.reason})  # fmt: skip
    if protected is not None:
        report.protected += record.status in READABLE  # a hold, an extension or a floor that came meanwhile
        return
    fs.fault("intent")
    _attempt(catalog, report, record, row.action, target, seq, row.reason)


def _apply(catalog: Catalog, rows: list[PlanRow] | None) -> ApplyReport:
    report = ApplyReport()
    resumed: set[int] = set()
    for seq, artifact_id, details in open_intents(catalog):  # a previous run was interrupted (or failed) here
        if artifact_id in resumed:
            continue  # one intent per artifact is enough: its outcome closes every earlier one
        resumed.add(artifact_id)
        intent = json.loads(details)
        record = catalog.find_id(artifact_id)
        report.resumed.append(record.path)
        try:
            with catalog.read() as conn:
                record = logged_record(conn.execute, artifact_id)  # what the log says, or not at all
        except IntegrityError as exc:
            _failed(report, record.path, exc)
            continue
        _attempt(catalog, report, record, intent["op"], intent["target"], seq, intent["reason"])
    now = datetime.now(timezone.utc)
    current = {row.record.id: row for row in plan(catalog, now=now)}
    chosen = current.values() if rows is None else [current[r.record.id] for r in rows if r.record.id in current]
    # Protected: every expired artifact a hold or retain_until keeps now, whichever rows the caller chose.
    report.protected = sum(row.action not in ("delete", "archive") for row in current.values())
    log = LogGuards()  # holds and floors as the log says them, read on as the run goes
    for row in chosen:
        if row.action not in ("delete", "archive") or row.record.id in resumed:
            continue  # protected when planned; or its open intent was just tried (one intent per artifact)
        try:
            _act(catalog, report, row, now, log)
        except (OSError, CatalogError) as exc:  # a row edited behind the log's back, a path that is no store path
            _failed(report, row.record.path, exc)
    with catalog.change() as tx:
        tx.events.append("retention_run", details={
            "deleted": len(report.deleted), "archived": len(report.archived), "resumed": len(report.resumed),
            "missing": len(report.missing), "failed": len(report.failed), "protected": report.protected})  # fmt: skip
    return report
