"""What protects an artifact: legal holds, per-type retention floors, and ``retain_until`` extensions.

Each change is an audited event made through the unit of work. A hold covers
one artifact (by path), a prefix (glob) or a type, optionally only artifacts
created in a time window; what it covers is never deleted or archived. A floor
is the minimum retention of a type, kept in the catalog so that no writer's
settings can go below it (SEC 17a-4(f) and MiFID II Art. 16(7) both require a
minimum keeping period whatever the writer was told). ``retain_until`` is only
ever extended.
"""

from __future__ import annotations

import fnmatch
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, or_, select

from ..core import replay
from ..core.errors import IntegrityError, Param, ValidationError
from ..core.formats import format_time
from ..core.names import store_path_problem
from ..core.records import ArtifactRecord
from ..core.schema import ARTIFACTS, EVENTS, FLOORS, HOLDS
from ..core.settings import FOREVER
from ..core.store import Catalog
from ..core.unit_of_work import UnitOfWork
from ..core.vocabulary import ON_DISK, READABLE, TYPES
from .query import ArtifactQuery, iter_artifacts

MAX_FLOOR_DAYS = 36_600


def plain_text(text: str) -> bool:
    """No control, format (bidi overrides, zero-width) or line/paragraph separator characters."""
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def check_reason(reason: str) -> str:
    """A reason recorded in the log: 1-1000 characters on one line, stripped. Raises ValidationError."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000 or not plain_text(reason):
        raise ValidationError(Param("reason"), " must be 1-1000 characters of text on one line, without control "
                              "characters", value=reason)  # fmt: skip
    return reason.strip()


def _check_type(artifact_type: str) -> str:
    if artifact_type not in TYPES:
        raise ValidationError(f"unknown artifact type {artifact_type!r}; choose one of: {', '.join(TYPES)}")
    return artifact_type


# -- selectors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """What a hold or an extension is about: exactly one of a path, a prefix (glob) or a type."""

    kind: str  # path | prefix | type
    value: str


def selector(path: str | None, prefix: str | None, artifact_type: str | None, *, lead: str = "give") -> Selector:
    """The one selector among ``path``, ``prefix`` and ``artifact_type``; ValidationError unless exactly one.

    ``lead`` starts the error message (``a hold covers exactly one of: …``).
    """
    chosen = [(k, v) for k, v in (("path", path), ("prefix", prefix), ("type", artifact_type)) if v is not None]
    if len(chosen) != 1:
        raise ValidationError(f"{lead} exactly one of: ", Param("path"), ", ", Param("prefix"), ", ",
                              Param("artifact_type"))  # fmt: skip
    kind, value = chosen[0]
    if kind == "type":
        _check_type(value)
    return Selector(kind, value)


def select_artifacts(catalog: Catalog, chosen: Selector) -> list[ArtifactRecord]:
    """The artifacts a selector covers now: the one at a path (NotFoundError if none), or every match."""
    if chosen.kind == "path":
        return [catalog.require_path(chosen.value)]
    query = ArtifactQuery(types=(chosen.value,) if chosen.kind == "type" else (),
                          prefix=chosen.value if chosen.kind == "prefix" else None)  # fmt: skip
    return list(iter_artifacts(catalog, query))


# -- floors -------------------------------------------------------------------------------


def floors(catalog: Catalog) -> dict[str, int]:
    """The floor in days of each type that has one: the table's, never below what the ``policy_floor`` events say."""
    with catalog.read() as conn:
        kept = {row.type: row.days for row in conn.execute(select(FLOORS.c.type, FLOORS.c.days))}
        logged = replay.guards(conn.execute).floors
    return {t: max(kept.get(t, 0), logged.get(t, 0)) for t in sorted(set(kept) | set(logged))}


def set_floor(catalog: Catalog, artifact_type: str, days: int, reason: str) -> int | None:
    """Set a type's minimum retention (an audited ``policy_floor`` event); returns the floor before, or None.

    Lowering it is refused (ValidationError) while rows written under it are still protected by it.
    """
    _check_type(artifact_type)
    if not 0 <= days <= MAX_FLOOR_DAYS:
        raise ValidationError(f"a floor is a whole number of days from 0 to {MAX_FLOOR_DAYS}, not {days}", value=days)
    reason = check_reason(reason)
    now = datetime.now(timezone.utc)
    with catalog.change() as tx:
        before = tx.floors.get(artifact_type)
        if before is not None and days < before:
            c = ARTIFACTS.c
            depending = tx.read(
                select(c.id).where(c.type == artifact_type, c.status.in_(READABLE), c.retain_until > now).limit(1)
            ).first()
            if depending is not None:
                raise ValidationError(
                    f"the {artifact_type} floor is {before} days and artifacts written under it are still protected; "
                    "it cannot be lowered while rows depend on it"
                )
        tx.floors.set(artifact_type, days, reason)
    return before


# -- holds ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldRecord:
    """One legal hold. ``since``/``until`` bound the creation time of what it covers (UTC; until exclusive)."""

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
    #: How many artifacts still on disk (active or archived) it covers now; None when not counted.
    covers_now: int | None = None

    @classmethod
    def from_row(cls, r: Any) -> HoldRecord:
        """Build from a row of the ``holds`` table."""
        return cls(r.id, r.selector_kind, r.selector, r.since, r.until, r.reason, r.placed_at, r.placed_by,
                   r.released_at, r.released_by, r.release_reason)  # fmt: skip

    def covers(self, record: ArtifactRecord) -> bool:
        """Whether this hold's selector and window protect the artifact itself (pairs: see :class:`HoldSet`)."""
        if self.kind == "path":
            hit = self.selector in (record.path, record.original_path)
        elif self.kind == "prefix":
            hit = fnmatch.fnmatchcase(record.prefix, self.selector)
        else:
            hit = record.type == self.selector
        return hit and self.in_window(record)

    def in_window(self, record: ArtifactRecord) -> bool:
        """Whether the artifact was created inside this hold's time window (no window: always)."""
        if self.since is not None and record.created_at < self.since:
            return False
        return self.until is None or record.created_at < self.until

    def to_dict(self) -> dict[str, Any]:
        """Plain data with times as ISO-8601 UTC text."""
        return {"id": self.id, "kind": self.kind, "selector": self.selector,
                "since": format_time(self.since) if self.since else None,
                "until": format_time(self.until) if self.until else None, "reason": self.reason,
                "placed_at": format_time(self.placed_at), "placed_by": self.placed_by,
                "released_at": format_time(self.released_at) if self.released_at else None,
                "released_by": self.released_by, "release_reason": self.release_reason,
                "covers_now": self.covers_now}  # fmt: skip


def holds(catalog: Catalog, include_released: bool = False, *, count: bool = False) -> list[HoldRecord]:
    """Legal holds in the order placed (active ones unless ``include_released``).

    ``count``: each active hold with ``covers_now``, how many artifacts on disk it covers now.
    """
    query = select(HOLDS).order_by(HOLDS.c.id)
    if not include_released:
        query = query.where(HOLDS.c.released_at.is_(None))
    with catalog.read() as conn:
        found = [HoldRecord.from_row(r) for r in conn.execute(query)]
    if not count:
        return found
    return [replace(h, covers_now=coverage(catalog, h)) if h.released_at is None else h for h in found]


def _pair_ids(read: Callable[[Any], Any], path: str) -> set[str]:
    """The pair ids of the artifact whose current or original path is ``path`` (``read`` runs a SELECT)."""
    c = ARTIFACTS.c
    rows = read(select(c.pair_id).where(or_(c.original_path == path, c.path == path), c.pair_id.is_not(None)))
    return {row.pair_id for row in rows}


def _hold_set(read: Callable[[Any], Any], found: list[HoldRecord]) -> HoldSet:
    pairs: dict[str, list[HoldRecord]] = {}
    for hold in found:
        if hold.kind == "path":
            for pair_id in _pair_ids(read, hold.selector):
                pairs.setdefault(pair_id, []).append(hold)
    return HoldSet(found, pairs)


@dataclass(frozen=True)
class HoldSet:
    """The active holds at one moment, and the linked pairs their path holds reach (a pair is held whole)."""

    holds: list[HoldRecord]
    pairs: dict[str, list[HoldRecord]]  # pair id -> the path holds on either file of the pair, in the order placed

    def covering(self, record: ArtifactRecord) -> list[HoldRecord]:
        """Every hold that protects ``record``, directly or through its pair, in the order placed."""
        paired = self.pairs.get(record.pair_id, []) if record.pair_id is not None else []
        return [h for h in self.holds if h.covers(record) or (h in paired and h.in_window(record))]

    def hold_for(self, record: ArtifactRecord) -> HoldRecord | None:
        """The first hold that protects ``record`` directly, else the first through its pair, or None."""
        direct = next((h for h in self.holds if h.covers(record)), None)
        if direct is not None or record.pair_id is None:
            return direct
        return next((h for h in self.pairs.get(record.pair_id, []) if h.in_window(record)), None)


def active_holds(catalog: Catalog) -> HoldSet:
    """The active holds, with the pairs their path holds cover: what retention checks an artifact against.

    A hold the table shows released (or not at all) that the log says is in
    force counts too: a table edited behind the log's back never frees an artifact.
    """
    found = holds(catalog)
    with catalog.read() as conn:
        logged = [HoldRecord.from_row(h) for h in replay.guards(conn.execute).active()]
        # each hold once, unless the table's row says otherwise than the log: then both (the more protective wins)
        return _hold_set(conn.execute, found + [h for h in logged if h not in found])


def logged_record(execute: Callable[[Any], Any], artifact_id: int) -> ArtifactRecord:
    """The artifact's record, once its row is proven to be what its events say and its path a store path.

    ``execute`` runs a SELECT (``conn.execute``, ``tx.read``). Raises
    :class:`IntegrityError` ("refused, not acted on: …") otherwise: a row
    edited behind the log's back is never acted on.
    """
    row = execute(select(ARTIFACTS).where(ARTIFACTS.c.id == artifact_id)).one()
    e = EVENTS.c
    events = execute(select(*replay.EVENT_COLUMNS).where(e.artifact_id == artifact_id, e.status.is_not(None))
                     .order_by(e.seq)).all()  # fmt: skip
    wrong = replay.disagreement(row, events)
    bad_path = store_path_problem(row.path)
    if wrong is not None or bad_path is not None:
        why = wrong.message if wrong is not None else f"its path {row.path!r} is {bad_path}"
        raise IntegrityError(f"refused, not acted on: {why}")
    return ArtifactRecord.from_row(row)


def protection_in(tx: UnitOfWork, artifact_id: int, now: datetime,
                  log: replay.LogGuards | None = None) -> tuple[ArtifactRecord, str | None]:  # fmt: skip
    """Inside a unit of work: the artifact as it is now, and what protects it now (a reason), or None.

    Checked at the moment of acting, in the transaction that records the act,
    so a hold, an extension or a floor committed before it always counts.
    An artifact that is no longer active or archived is "protected" too: there
    is nothing left to act on. What protects it is what the tables say and
    what the log says (``log``, brought up to date here; :mod:`catalog.core.replay`),
    whichever protects more. Raises :class:`IntegrityError` when its row
    disagrees with its events or its path is no store path: it is not acted on.
    """
    record = logged_record(tx.read, artifact_id)
    if record.status not in READABLE:
        return record, f"it is {record.status} now"
    log = (log or replay.LogGuards()).update(tx.read)
    found = [HoldRecord.from_row(r) for r in tx.read(select(HOLDS).where(HOLDS.c.released_at.is_(None)))]
    hold = _hold_set(tx.read, found + [HoldRecord.from_row(h) for h in log.active()]).hold_for(record)
    if hold is not None:
        return record, f"legal hold {hold.id}: {hold.reason}"
    if record.retain_until is not None and record.retain_until > now:
        return record, ("kept forever" if record.retain_until == FOREVER else
                        f"retain_until {format_time(record.retain_until)}")  # fmt: skip
    floor = max(tx.floors.get(record.type) or 0, log.floors.get(record.type, 0)) or None
    if floor is not None and max(record.created_at, record.recorded_at) + timedelta(days=floor) > now:
        return record, f"floor {floor} days"
    return record, None


def coverage(catalog: Catalog, hold: HoldRecord) -> int:
    """How many artifacts still on disk (active or archived) ``hold`` covers now, a linked pair counted whole."""
    c = ARTIFACTS.c
    window: list[Any] = [c.status.in_(READABLE)]
    if hold.since is not None:
        window.append(c.created_at >= hold.since)
    if hold.until is not None:
        window.append(c.created_at < hold.until)
    if hold.kind == "prefix":
        return sum(1 for r in iter_artifacts(catalog, ArtifactQuery(prefix=hold.selector, statuses=READABLE,
                                                                    since=hold.since, until=hold.until)))  # fmt: skip
    with catalog.read() as conn:
        if hold.kind == "type":
            return int(conn.execute(select(func.count()).where(c.type == hold.selector, *window)).scalar_one())
        match = or_(c.original_path == hold.selector, c.path == hold.selector)
        pairs = _pair_ids(conn.execute, hold.selector)
        if pairs:
            match = or_(match, c.pair_id.in_(pairs))
        return int(conn.execute(select(func.count()).where(match, *window)).scalar_one())


def add_hold(
    catalog: Catalog, *, path: str | None = None, prefix: str | None = None, artifact_type: str | None = None,
    since: datetime | None = None, until: datetime | None = None, reason: str,
) -> HoldRecord:  # fmt: skip
    """Place a legal hold on one artifact, a prefix (glob allowed) or a type, optionally for a time window.

    A path hold names the artifact's original path, so it follows the artifact
    when it is archived. Raises ValidationError and NotFoundError.
    """
    chosen = selector(path, prefix, artifact_type, lead="a hold covers")
    if chosen.kind == "prefix" and (not chosen.value or len(chosen.value) > 64 or not plain_text(chosen.value)):
        raise ValidationError(Param("prefix"), " must be 1-64 characters (* and ? allowed)", value=chosen.value)
    reason = check_reason(reason)
    if since and until and since >= until:
        raise ValidationError(Param("since"), " must be earlier than ", Param("until"))
    value = select_artifacts(catalog, chosen)[0].original_path if chosen.kind == "path" else chosen.value
    with catalog.change() as tx:  # the duplicate check and the insert under one chain lock: two placers cannot race
        h = HOLDS.c
        same = tx.read(
            select(h.id).where(h.released_at.is_(None), h.selector_kind == chosen.kind, h.selector == value,
                               h.since.is_(None) if since is None else h.since == since,
                               h.until.is_(None) if until is None else h.until == until).limit(1)
        ).first()  # fmt: skip
        if same is not None:
            raise ValidationError(f"hold {same.id} already covers {chosen.kind} {value!r} for this window; "
                                  "nothing was placed (release it first to change its reason)", value=same.id)  # fmt: skip
        row = tx.holds.place(chosen.kind, value, since=since, until=until, reason=reason)
    placed = HoldRecord.from_row(row)
    return replace(placed, covers_now=coverage(catalog, placed))


def release_hold(catalog: Catalog, hold_id: int, reason: str) -> None:
    """Release an active hold (an audited ``hold_release`` event). Raises NotFoundError and ValidationError."""
    reason = check_reason(reason)
    with catalog.change() as tx:
        tx.holds.release(hold_id, reason)


# -- retain_until ------------------------------------------------------------------------------


def extend(catalog: Catalog, records: list[ArtifactRecord], until: datetime, reason: str) -> list[ArtifactRecord]:
    """Extend ``retain_until`` to ``until`` (never shorten it): one ``retain_extend`` event per artifact changed.

    Deleted and missing artifacts and those already kept longer are left as
    they are. Returns the changed records. Raises ValidationError if ``until``
    is not in the future.
    """
    reason = check_reason(reason)
    if until <= datetime.now(timezone.utc):
        raise ValidationError(Param("until"), " must be in the future", value=until)
    changed = []
    for record in records:
        if record.status not in ON_DISK:  # deleted or missing: nothing left to keep
            continue
        if record.retain_until is not None and record.retain_until >= until:
            continue
        changed.append(catalog.change_status(record.id, action="retain_extend", status=record.status,
                                             retain_until=until, details={"reason": reason}))  # fmt: skip
    return changed


def extend_selected(
    catalog: Catalog, *, path: str | None = None, prefix: str | None = None, artifact_type: str | None = None,
    until: datetime, reason: str,
) -> tuple[list[ArtifactRecord], int, int]:  # fmt: skip
    """Extend what one selector covers (see :func:`extend`). Returns the changed records, how many it covered, and
    how many of those were deleted or missing (nothing left to keep; the rest unchanged were kept longer already)."""
    records = select_artifacts(catalog, selector(path, prefix, artifact_type))
    gone = sum(record.status not in ON_DISK for record in records)
    return extend(catalog, records, until, reason), len(records), gone
