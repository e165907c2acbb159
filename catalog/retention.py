"""Retention as SQL: what expires, what is protected and why, and a crash-safe apply.

An artifact expires at ``max(created_at, recorded_at) + days``, where days is
its type's policy (config, env) but never below the type's floor (kept in the
catalog, changed only by an audited command), and never before the row's own
``retain_until`` (set at write time, extendable, never shortened). A legal
hold protects whatever it covers, whatever its age.

``apply`` works by intents, so a run killed at any point and run again
finishes the job without doing anything twice:

    delete:  intent event -> unlink -> fsync folder -> ``delete`` event (status deleted)
    archive: intent event -> link into <type>/archived/YYYY-MM/ -> fsync both
             folders -> unlink the old name -> ``archive`` event (new path)
"""

from __future__ import annotations

import fnmatch
import os
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import and_, exists, select, tuple_
from sqlalchemy.orm import aliased

from . import audit
from .errors import NotFoundError, ValidationError
from .formats import format_time
from .models import Hold
from .naming import TYPES
from .store import ARTIFACTS, FLOORS, ArtifactRecord, Catalog
from .writer import ensure_folder, fsync_dir

HOLDS = Hold.__table__
EVENTS = audit.EVENTS
MAX_FLOOR_DAYS = 36_600

#: Test hook for crash injection, like ``catalog.writer.FAULT_HOOK``.
FAULT_HOOK: Callable[[str], None] | None = None


def _fault(point: str) -> None:
    if FAULT_HOOK is not None:
        FAULT_HOOK(point)


# -- floors -------------------------------------------------------------------------------


def floors(catalog: Catalog) -> dict[str, int]:
    with catalog.db.read() as conn:
        return dict(conn.execute(select(FLOORS.c.type, FLOORS.c.days)).all())


def set_floor(catalog: Catalog, artifact_type: str, days: int, reason: str) -> int | None:
    """Set a type's minimum retention (an audited event). Lowering it is refused while rows depend on it."""
    if artifact_type not in TYPES:
        raise ValidationError(f"unknown artifact type {artifact_type!r}; choose one of: {', '.join(TYPES)}")
    if not 0 <= days <= MAX_FLOOR_DAYS:
        raise ValidationError(f"a floor is a whole number of days from 0 to {MAX_FLOOR_DAYS}, not {days}")
    reason = _reason(reason)
    now = datetime.now(timezone.utc)
    with catalog.db.write() as conn:
        chain = audit.ChainAppender(conn)
        before = conn.execute(select(FLOORS.c.days).where(FLOORS.c.type == artifact_type)).scalar()
        if before is not None and days < before:
            c = ARTIFACTS.c
            depending = conn.execute(
                select(c.id).where(c.type == artifact_type, c.status.in_(("active", "archived")), c.retain_until > now)
                .limit(1)
            ).first()  # fmt: skip
            if depending is not None:
                raise ValidationError(
                    f"the {artifact_type} floor is {before} days and artifacts written under it are still protected; "
                    "it cannot be lowered while rows depend on it"
                )
        if before is None:
            conn.execute(FLOORS.insert().values(type=artifact_type, days=days))
        else:
            conn.execute(FLOORS.update().where(FLOORS.c.type == artifact_type).values(days=days))
        chain.append("policy_floor", actor=catalog.actor,
                     details={"type": artifact_type, "from": before, "to": days, "reason": reason})  # fmt: skip
        chain.close()
    return before


def _plain_text(text: str) -> bool:
    """No control, format (bidi overrides, zero-width) or line/paragraph separator characters."""
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000 or not _plain_text(reason):
        raise ValidationError("--reason must be 1-1000 characters of text on one line, without control characters")
    return reason.strip()


# -- holds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldRecord:
    id: int
    kind: str  # path | prefix | type
    selector: str
    since: datetime | None
    until: datetime | None
    reason: str
    placed_at: datetime
    placed_by: str
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None

    def covers(self, record: ArtifactRecord) -> bool:
        if self.kind == "path":
            hit = self.selector in (record.path, record.original_path)
        elif self.kind == "prefix":
            hit = fnmatch.fnmatchcase(record.prefix, self.selector)
        else:
            hit = record.type == self.selector
        if self.since is not None and record.created_at < self.since:
            return False
        if self.until is not None and record.created_at >= self.until:
            return False
        return hit

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "selector": self.selector,
                "since": format_time(self.since) if self.since else None,
                "until": format_time(self.until) if self.until else None, "reason": self.reason,
                "placed_at": format_time(self.placed_at), "placed_by": self.placed_by,
                "released_at": format_time(self.released_at) if self.released_at else None,
                "released_by": self.released_by, "release_reason": self.release_reason}  # fmt: skip


def holds(catalog: Catalog, include_released: bool = False) -> list[HoldRecord]:
    query = select(HOLDS).order_by(HOLDS.c.id)
    if not include_released:
        query = query.where(HOLDS.c.released_at.is_(None))
    with catalog.db.read() as conn:
        return [HoldRecord(r.id, r.selector_kind, r.selector, r.since, r.until, r.reason, r.placed_at, r.placed_by,
                           r.released_at, r.released_by, r.release_reason) for r in conn.execute(query)]  # fmt: skip


def add_hold(
    catalog: Catalog, *, path: str | None = None, prefix: str | None = None, artifact_type: str | None = None,
    since: datetime | None = None, until: datetime | None = None, reason: str,
) -> HoldRecord:  # fmt: skip
    """Place a legal hold on one artifact, a prefix (glob allowed) or a type, optionally for a time window."""
    chosen = [(k, v) for k, v in (("path", path), ("prefix", prefix), ("type", artifact_type)) if v is not None]
    if len(chosen) != 1:
        raise ValidationError("a hold covers exactly one of: PATH, --prefix, --type")
    kind, selector = chosen[0]
    reason = _reason(reason)
    if since and until and since >= until:
        raise ValidationError("--since must be earlier than --until")
    if kind == "path":
        record = catalog.find_path(selector)
        if record is None:
            raise NotFoundError(f"no artifact at {catalog.relative(selector)} in the catalog")
        selector = record.original_path
    elif kind == "type" and selector not in TYPES:
        raise ValidationError(f"unknown artifact type {selector!r}; choose one of: {', '.join(TYPES)}")
    elif kind == "prefix" and (not selector or len(selector) > 64 or not _plain_text(selector)):
        raise ValidationError("--prefix must be 1-64 characters (* and ? allowed)")
    now = datetime.now(timezone.utc)
    actor = catalog.actor
    with catalog.db.write() as conn:
        chain = audit.ChainAppender(conn)
        hold_id = conn.execute(
            HOLDS.insert().values(selector_kind=kind, selector=selector, since=since, until=until, reason=reason,
                                  placed_at=now, placed_by=actor).returning(HOLDS.c.id)
        ).scalar_one()  # fmt: skip
        chain.append("hold_place", actor=actor, details={
            "hold": hold_id, "kind": kind, "selector": selector, "reason": reason,
            "since": audit.iso_utc(since) if since else None, "until": audit.iso_utc(until) if until else None})  # fmt: skip
        chain.close()
    return HoldRecord(hold_id, kind, selector, since, until, reason, now, actor)


def release_hold(catalog: Catalog, hold_id: int, reason: str) -> None:
    reason = _reason(reason)
    now = datetime.now(timezone.utc)
    with catalog.db.write() as conn:
        chain = audit.ChainAppender(conn)
        row = conn.execute(select(HOLDS).where(HOLDS.c.id == hold_id)).one_or_none()
        if row is None:
            raise NotFoundError(f"no hold with id {hold_id}")
        if row.released_at is not None:
            raise ValidationError(f"hold {hold_id} was already released ({audit.iso_utc(row.released_at)})")
        conn.execute(HOLDS.update().where(HOLDS.c.id == hold_id).values(
            released_at=now, released_by=catalog.actor, release_reason=reason))  # fmt: skip
        chain.append("hold_release", actor=catalog.actor, details={"hold": hold_id, "reason": reason})
        chain.close()


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    """One artifact the rules reach: what happens to it, and why."""

    record: ArtifactRecord
    action: str  # delete | archive | hold | keep
    reason: str
    age_days: float
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
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


def plan(catalog: Catalog, *, now: datetime | None = None, types: tuple[str, ...] = (), batch: int = 1000) -> Iterator[PlanRow]:
    """Every artifact past its type's retention at ``now``: to delete, to archive, or protected (hold, retain_until)."""
    now = now or datetime.now(timezone.utc)
    active_holds = holds(catalog)
    type_floors = floors(catalog)
    c = ARTIFACTS.c
    for artifact_type in types or TYPES:
        days, action, rule = _policy(catalog, artifact_type, type_floors.get(artifact_type))
        if days is None:
            continue
        try:
            cutoff = now - timedelta(days=days)
        except OverflowError:
            raise ValidationError(f"--now {now.date().isoformat()} is too early to plan {days}-day retention") from None
        statuses = ("active",) if action == "archive" else ("active", "archived")
        last: tuple[datetime, int] = (datetime(1, 1, 2, tzinfo=timezone.utc), 0)
        while True:
            with catalog.db.read() as conn:
                rows = conn.execute(
                    select(ARTIFACTS)
                    .where(c.type == artifact_type, c.created_at <= cutoff, c.recorded_at <= cutoff,
                           c.status.in_(statuses), tuple_(c.created_at, c.id) > tuple_(*last))
                    .order_by(c.created_at, c.id).limit(batch)
                ).all()  # fmt: skip
            if not rows:
                break
            for row in rows:
                record = ArtifactRecord.from_row(row)
                base = max(record.created_at, record.recorded_at)
                expires = base + timedelta(days=days)
                age = (now - base).total_seconds() / 86400
                held = next((h for h in active_holds if h.covers(record)), None)
                if held is not None:
                    yield PlanRow(record, "hold", f"legal hold {held.id}: {held.reason}", age, expires)
                elif record.retain_until is not None and record.retain_until > now:
                    yield PlanRow(record, "keep", f"retain_until {format_time(record.retain_until)}", age,
                                  max(expires, record.retain_until))  # fmt: skip
                else:
                    yield PlanRow(record, action, rule, age, expires)
            last = (rows[-1].created_at, rows[-1].id)


# -- apply --------------------------------------------------------------------------------------


@dataclass
class ApplyReport:
    deleted: list[str] = field(default_factory=list)
    archived: list[tuple[str, str]] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    protected: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "archived": [{"from": a, "to": b} for a, b in self.archived],
                "resumed": self.resumed, "missing": self.missing, "protected": self.protected}  # fmt: skip


def archive_path(record: ArtifactRecord) -> str:
    """``ledger/archived/YYYY-MM/<name>``: the month of the artifact's own timestamp."""
    name = PurePosixPath(record.original_path).name
    return f"{record.type}/archived/{record.created_at:%Y-%m}/{name}"


def _open_intents(catalog: Catalog) -> list[Any]:
    """Intent events not yet followed by their artifact's delete, archive or missing event."""
    later = aliased(EVENTS)
    with catalog.db.read() as conn:
        return conn.execute(
            select(EVENTS.c.seq, EVENTS.c.artifact_id, EVENTS.c.details)
            .where(EVENTS.c.action == "retention_intent",
                   ~exists().where(and_(later.c.artifact_id == EVENTS.c.artifact_id, later.c.seq > EVENTS.c.seq,
                                        later.c.action.in_(("delete", "archive", "missing")))))
            .order_by(EVENTS.c.seq)
        ).all()  # fmt: skip


def _intent(catalog: Catalog, record: ArtifactRecord, op: str, target: str | None, reason: str) -> int:
    with catalog.db.write() as conn:
        return audit.append_event(conn, "retention_intent", actor=catalog.actor, artifact_id=record.id, path=record.path,
                                  details={"op": op, "target": target, "reason": reason})  # fmt: skip


def _unlink(path: Any) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


def _finish_delete(catalog: Catalog, record: ArtifactRecord, seq: int, reason: str) -> None:
    _unlink(catalog.base_dir / record.path)
    _fault("unlinked")
    catalog.change_status(record.id, action="delete", status="deleted", details={"reason": reason, "intent": seq})


def _finish_archive(catalog: Catalog, record: ArtifactRecord, target: str, seq: int, reason: str) -> str | None:
    """Link, fsync, unlink, record. Returns None, or why it could not (both names gone)."""
    src, dst = catalog.base_dir / record.path, catalog.base_dir / target
    ensure_folder(catalog.base_dir, dst.parent)
    if src.exists() and not dst.exists():
        os.link(src, dst)
        _fault("linked")
        fsync_dir(dst.parent)
        fsync_dir(src.parent)
    if not dst.exists():
        return "neither the file nor its archive copy exists"
    _unlink(src)
    _fault("unlinked")
    catalog.change_status(record.id, action="archive", status="archived", path=target,
                          details={"reason": reason, "intent": seq})  # fmt: skip
    return None


def _by_id(catalog: Catalog, artifact_id: int) -> ArtifactRecord:
    with catalog.db.read() as conn:
        return ArtifactRecord.from_row(conn.execute(select(ARTIFACTS).where(ARTIFACTS.c.id == artifact_id)).one())


def apply(catalog: Catalog, rows: list[PlanRow] | None = None) -> ApplyReport:
    """Finish any open intents, then delete or archive what the plan says for the real current time."""
    import json

    report = ApplyReport()
    for seq, artifact_id, details in _open_intents(catalog):  # a previous run was interrupted here
        intent = json.loads(details)
        record = _by_id(catalog, artifact_id)
        report.resumed.append(record.path)
        if intent["op"] == "delete":
            _finish_delete(catalog, record, seq, intent["reason"])
            report.deleted.append(record.path)
        elif (why := _finish_archive(catalog, record, intent["target"], seq, intent["reason"])) is None:
            report.archived.append((record.path, intent["target"]))
        else:
            catalog.change_status(record.id, action="missing", status="missing", details={"reason": why, "intent": seq})
            report.missing.append(record.path)
    now = datetime.now(timezone.utc)
    current = {row.record.id: row for row in plan(catalog, now=now)}
    chosen = current.values() if rows is None else [current[r.record.id] for r in rows if r.record.id in current]
    for row in chosen:
        if row.action not in ("delete", "archive"):
            report.protected += 1
            continue
        record = row.record
        if not (catalog.base_dir / record.path).exists():  # reported, never silently skipped
            catalog.change_status(record.id, action="missing", status="missing",
                                  details={"reason": f"file missing when retention came to {row.action} it"})  # fmt: skip
            report.missing.append(record.path)
            continue
        target = archive_path(record) if row.action == "archive" else None
        seq = _intent(catalog, record, row.action, target, row.reason)
        _fault("intent")
        if row.action == "delete":
            _finish_delete(catalog, record, seq, row.reason)
            report.deleted.append(record.path)
        elif _finish_archive(catalog, record, target, seq, row.reason) is None:  # type: ignore[arg-type]
            report.archived.append((record.path, target))  # type: ignore[arg-type]
    with catalog.db.write() as conn:
        audit.append_event(conn, "retention_run", actor=catalog.actor, details={
            "deleted": len(report.deleted), "archived": len(report.archived), "resumed": len(report.resumed),
            "missing": len(report.missing), "protected": report.protected})  # fmt: skip
    from .evidence import auto_checkpoint

    auto_checkpoint(catalog)
    return report


def extend(catalog: Catalog, records: list[ArtifactRecord], until: datetime, reason: str) -> list[ArtifactRecord]:
    """Extend ``retain_until`` (never shorten it): one ``retain_extend`` event per artifact changed."""
    reason = _reason(reason)
    if until <= datetime.now(timezone.utc):
        raise ValidationError("--until must be in the future")
    changed = []
    for record in records:
        if record.status in ("deleted", "missing"):
            continue
        if record.retain_until is not None and record.retain_until >= until:
            continue
        changed.append(catalog.change_status(record.id, action="retain_extend", status=record.status,
                                             retain_until=until, details={"reason": reason}))  # fmt: skip
    return changed
