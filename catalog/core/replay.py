"""The log replayed: what the events say an artifact row, the legal holds and the floors are.

The tables ``artifacts``, ``holds`` and ``policy_floors`` are what the catalog
reads quickly; the hash-chained log is what counts. Database triggers refuse
changes to them that no audited event made (migration 0008), but the owner of
a PostgreSQL database, or anyone with the SQLite file, can drop a trigger. So
what protects an artifact is re-derived from the log where it matters:

- ``audit verify`` replays every artifact's events, every ``hold_place`` /
  ``hold_release`` and every ``policy_floor`` event against the tables and
  reports each disagreement (kind ``row/event mismatch``), and flags a log
  whose history itself is suspect: an artifact deleted or archived while its
  events said it was kept (``retain_until``), an artifact that changed path
  without a move, a path that is no store path;
- retention decides "held?", "floor?" and "retain_until?" from what the table
  says AND what the log says (the more protective wins) and refuses an
  artifact whose row disagrees with its events (:func:`disagreement`).
"""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select

from .chain import ROW_FIELDS, AuditReport, Problem, iso_utc, replay, row_details
from .names import store_path_problem
from .schema import ARTIFACTS, EVENTS, FLOORS, HOLDS

#: The events that place or release a hold, or set a floor.
GUARD_ACTIONS = ("hold_place", "hold_release", "policy_floor")
#: The events of retention that end an artifact's life on disk where it was.
_ENDS = ("delete", "archive")
#: What replaying an artifact's events reads of each (status events only).
EVENT_COLUMNS = (EVENTS.c.seq, EVENTS.c.at, EVENTS.c.artifact_id, EVENTS.c.action, EVENTS.c.path, EVENTS.c.status,
                 EVENTS.c.details)  # fmt: skip


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


#: A legal hold as its ``hold_place`` and ``hold_release`` events tell it: a tuple with the ``holds`` columns.
_tuple_type: Any = namedtuple  # built from the table's columns, so the two never drift apart
LoggedHold: Any = _tuple_type("LoggedHold", HOLDS.c.keys(), defaults=(None, None, None))


@dataclass
class LogGuards:
    """Holds and floors as the log says them, read incrementally: :meth:`update` reads only newer events."""

    holds: dict[int, Any] = field(default_factory=dict)  # id -> LoggedHold
    floors: dict[str, int] = field(default_factory=dict)
    seq: int = 0  # the last event read
    last: dict[str, int] = field(default_factory=dict)  # "hold <id>" or "floor <type>" -> seq of its last event

    def update(self, execute: Callable[[Any], Any]) -> LogGuards:
        """Read the guard events after the last one read (``execute`` runs a SELECT: ``conn.execute``, ``tx.read``)."""
        e = EVENTS.c
        rows = execute(select(e.seq, e.at, e.action, e.actor, e.details)
                       .where(e.seq > self.seq, e.action.in_(GUARD_ACTIONS)).order_by(e.seq))  # fmt: skip
        for row in rows:
            self._see(row)
        return self

    def _see(self, event: Any) -> None:
        details = json.loads(event.details)
        self.seq = event.seq
        if event.action == "policy_floor":
            self.floors[details["type"]] = int(details["to"])
            self.last[f"floor {details['type']}"] = event.seq
            return
        hold_id = int(details["hold"])
        self.last[f"hold {hold_id}"] = event.seq
        if event.action == "hold_place":
            self.holds[hold_id] = LoggedHold(hold_id, details["kind"], details["selector"], _time(details.get("since")),
                                             _time(details.get("until")), details["reason"], event.at, event.actor)  # fmt: skip
        elif hold_id in self.holds:
            self.holds[hold_id] = self.holds[hold_id]._replace(released_at=event.at, released_by=event.actor,
                                                               release_reason=details["reason"])  # fmt: skip

    def active(self) -> list[Any]:
        """The holds the log says are in force, in the order placed."""
        return [h for _, h in sorted(self.holds.items()) if h.released_at is None]


def guards(execute: Callable[[Any], Any]) -> LogGuards:
    """Holds and floors as the whole log says them (``execute`` runs a SELECT)."""
    return LogGuards().update(execute)


# -- artifact rows --------------------------------------------------------------------------


def replay_row(events: Sequence[Any]) -> dict[str, Any] | None:
    """An artifact's row as its status events (seq order) rebuild it, in :func:`catalog.core.chain.row_details`
    form; None when the first is no ``write``/``adopt`` event (which carries the whole row)."""
    return replay((event.path, event.status, json.loads(event.details)) for event in events)


def disagreement(row: Any, events: Sequence[Any]) -> Problem | None:
    """How an artifact's row differs from what its status events (seq order) say (a ``row/event mismatch``
    at its last event), or None if they agree."""
    state = replay_row(events)
    if state is None:
        return Problem(None, "row/event mismatch", f"artifact {row.id} ({row.path}) has no write event: the row was "
                       "added behind the log's back")  # fmt: skip
    actual = row_details({k: getattr(row, k) for k in ROW_FIELDS})
    wrong = next((k for k in ROW_FIELDS if actual.get(k) != state.get(k)), None)
    if wrong is None:
        return None
    return Problem(events[-1].seq, "row/event mismatch", f"artifact {row.id} ({row.path}): its row says "
                   f"{wrong}={actual.get(wrong)!r}, its events say {state.get(wrong)!r} (last event {events[-1].seq})")


def _history(row: Any, events: Sequence[Any]) -> list[Problem]:
    """What in an artifact's own events no honest writer records: a path that is no store path, a path change
    without a move, a retention delete or archive whose intent came while ``retain_until`` still kept it."""
    found: list[Problem] = []
    path: str | None = None
    kept: list[tuple[int, str | None]] = [(0, None)]  # (seq, retain_until from then on), in seq order
    for event in events:
        details = json.loads(event.details)
        if path is not None and event.path != path and "path" not in details:
            found.append(Problem(event.seq, "row/event mismatch", f"artifact {row.id}: event {event.seq} ({event.action}) "
                                 f"names it at {event.path!r}, but its events put it at {path!r} and none moved it"))  # fmt: skip
        problem = store_path_problem(event.path)
        if problem is not None and event.path != path:
            found.append(Problem(event.seq, "row/event mismatch", f"artifact {row.id}: event {event.seq} "
                                 f"({event.action}) names the path {event.path!r}, which is {problem}"))  # fmt: skip
        if "retain_until" in details:
            kept.append((event.seq, details["retain_until"]))
        intent = details.get("intent")
        if event.action in _ENDS and isinstance(intent, int):
            until = next(value for seq, value in reversed(kept) if seq < intent)  # what its events said at the intent
            if until is not None and until > iso_utc(event.at):
                found.append(Problem(event.seq, "row/event mismatch", f"artifact {row.id} ({event.path}): retention "
                                     f"{event.action}d it at {iso_utc(event.at)} (intent {intent}), while its events "
                                     f"kept it until {until}: its retain_until was lowered behind the log's back"))  # fmt: skip
        path = event.path
    return found


def check_rows(read: Any, report: AuditReport, batch: int = 1000) -> None:
    """Replay each artifact's events; the result must equal its row, and its history must be one the catalog writes."""
    last_id = 0
    while True:
        with read() as conn:
            rows = conn.execute(
                select(ARTIFACTS).where(ARTIFACTS.c.id > last_id).order_by(ARTIFACTS.c.id).limit(batch)
            ).all()
            if not rows:
                break
            lo, hi = rows[0].id, rows[-1].id
            events = conn.execute(
                select(*EVENT_COLUMNS)
                .where(EVENTS.c.artifact_id >= lo, EVENTS.c.artifact_id <= hi, EVENTS.c.status.is_not(None))
                .order_by(EVENTS.c.artifact_id, EVENTS.c.seq)
            ).all()  # fmt: skip
        by_artifact: dict[int, list[Any]] = {}
        for event in events:
            by_artifact.setdefault(event.artifact_id, []).append(event)
        for row in rows:
            report.artifacts += 1
            mine = by_artifact.get(row.id, [])
            wrong = disagreement(row, mine)
            if wrong is not None:
                report.problems.append(wrong)
            report.problems.extend(_history(row, mine))
        last_id = hi
    with read() as conn:
        orphans = conn.execute(
            select(EVENTS.c.seq, EVENTS.c.artifact_id)
            .select_from(EVENTS.outerjoin(ARTIFACTS, ARTIFACTS.c.id == EVENTS.c.artifact_id))
            .where(and_(EVENTS.c.artifact_id.is_not(None), ARTIFACTS.c.id.is_(None)))
            .order_by(EVENTS.c.seq)
        ).all()  # fmt: skip
    reported: set[int] = set()
    for seq, artifact_id in orphans:
        if artifact_id not in reported:
            reported.add(artifact_id)
            message = f"event {seq} is about artifact {artifact_id}, whose row is gone: an artifact row was deleted"
            report.problems.append(Problem(seq, "row/event mismatch", message))


# -- holds and floors -------------------------------------------------------------------------

_HOLD_FIELDS: tuple[str, ...] = LoggedHold._fields


def _shown(value: Any) -> Any:
    return iso_utc(value) if isinstance(value, datetime) else value


def check_guards(read: Any, report: AuditReport) -> None:
    """Replay the hold and floor events; each ``holds`` and ``policy_floors`` row must be what they say."""
    with read() as conn:
        logged = guards(conn.execute)
        table_holds = {row.id: row for row in conn.execute(select(HOLDS))}
        table_floors: Mapping[str, int] = {row.type: row.days for row in conn.execute(select(FLOORS))}
    for hold_id in sorted(set(logged.holds) | set(table_holds)):
        row, hold = table_holds.get(hold_id), logged.holds.get(hold_id)
        seq = logged.last.get(f"hold {hold_id}")
        if row is None or hold is None:
            known: Any = row if hold is None else hold
            why = "has no hold_place event: added behind the log's back" if hold is None else "has no row: deleted"
            report.problems.append(Problem(seq, "row/event mismatch",
                                           f"hold {hold_id} ({known.selector_kind} {known.selector!r}) {why}"))
            continue
        wrong = next((k for k in _HOLD_FIELDS if _shown(getattr(row, k)) != _shown(getattr(hold, k))), None)
        if wrong is not None:
            report.problems.append(Problem(seq, "row/event mismatch", f"hold {hold_id}: its row says {wrong}="
                                           f"{_shown(getattr(row, wrong))!r}, its events say "
                                           f"{_shown(getattr(hold, wrong))!r}"))  # fmt: skip
    for artifact_type in sorted(set(logged.floors) | set(table_floors)):
        said, kept = logged.floors.get(artifact_type), table_floors.get(artifact_type)
        if said != kept:
            report.problems.append(Problem(logged.last.get(f"floor {artifact_type}"), "row/event mismatch",
                                           f"the {artifact_type} floor: its row says {kept} days, its policy_floor "
                                           f"events say {said}"))  # fmt: skip


#: What ``audit verify`` checks beyond the chain (see :func:`catalog.core.chain.verify`).
CHECKS: tuple[Callable[[Any, AuditReport], None], ...] = (check_rows, check_guards)
