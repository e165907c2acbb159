"""Findings: what a check found wrong, open until the same artifact is checked again and passes, or a person
resolves it with a reason.

Findings are read from the log and the rows, so nothing can hold one open or
close it behind the log's back:

- ``verify_failure``: a verify run found a file failed or missing. It closes
  when a later run checks that artifact and it matches, or when the artifact
  is no longer on disk as recorded (missing, quarantined or deleted: those
  have findings or outcomes of their own).
- ``missing`` / ``quarantined``: the artifact's row has that status (reconcile
  or retention set it). It closes when the row changes again (restored,
  adopted back) — or is resolved.
- ``clock``: a writer's clock was behind the log's by more than
  ``audit.max_clock_skew_seconds`` (a ``clock_behind`` event: the log dated its
  events by its own clock, and kept the writer's). Only a person closes it,
  once the host's clock is fixed; until then that host raises no new one.

A finding's id is the seq of the event that raised it. Resolving one appends a
``finding_resolve`` event that names it, with the person's reason: the record
of who accepted what, and why (SEC 17a-4(f)(3)(v)-style audit trail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select

from ..core.errors import NotFoundError, ValidationError
from ..core.formats import format_time
from ..core.schema import ARTIFACTS, EVENTS, VERIFY_RESULTS
from ..core.store import Catalog
from ..core.vocabulary import READABLE
from .policy import check_reason


@dataclass(frozen=True)
class Finding:
    """One open finding: ``id`` is the seq of the event that raised it; ``at`` its UTC time."""

    id: int
    kind: str  # verify_failure | missing | quarantined | clock
    artifact_id: int | None  # None for a clock finding
    path: str | None
    at: datetime
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data with the time as ISO-8601 UTC text."""
        return {"id": self.id, "kind": self.kind, "artifact_id": self.artifact_id, "path": self.path,
                "at": format_time(self.at), "detail": self.detail}  # fmt: skip


def open_findings(catalog: Catalog) -> list[Finding]:
    """Every open finding, oldest first."""
    e, a, r = EVENTS.c, ARTIFACTS.c, VERIFY_RESULTS.c
    with catalog.read() as conn:
        resolved = {json.loads(row.details)["finding"]
                    for row in conn.execute(select(e.details).where(e.action == "finding_resolve"))}  # fmt: skip
        failures = conn.execute(
            select(e.seq, e.at, e.artifact_id, e.path, e.details, a.status, a.path.label("now_path"))
            .join(ARTIFACTS, a.id == e.artifact_id)
            .where(e.action == "verify_failure", a.status.in_(READABLE))
            .order_by(e.seq)
        ).all()  # fmt: skip
        found: list[Finding] = []
        for row in failures:
            details = json.loads(row.details)
            passed_since = conn.execute(
                select(exists().where(and_(r.artifact_id == row.artifact_id, r.outcome == "ok",
                                           r.run_id > details["run_id"])))
            ).scalar()  # fmt: skip
            if not passed_since and row.seq not in resolved:
                found.append(Finding(row.seq, "verify_failure", row.artifact_id, row.now_path, row.at,
                                     f"verify run {details['run_id']}: {details['outcome']}: {details['detail']}"))
        flagged = select(a.id).where(a.status.in_(("missing", "quarantined")))  # few: the events index does the rest
        last = (
            select(e.artifact_id, func.max(e.seq).label("seq"))
            .where(e.status.is_not(None), e.artifact_id.in_(flagged)).group_by(e.artifact_id).subquery()
        )  # fmt: skip
        statuses = conn.execute(
            select(e.seq, e.at, e.artifact_id, e.details, a.status, a.path)
            .join(last, last.c.seq == e.seq)
            .join(ARTIFACTS, a.id == e.artifact_id)
            .where(a.status.in_(("missing", "quarantined")))
            .order_by(e.seq)
        ).all()  # fmt: skip
        clocks = conn.execute(select(e.seq, e.at, e.actor, e.details).where(e.action == "clock_behind")).all()
    for st in statuses:
        if st.seq in resolved:
            continue
        details = json.loads(st.details)
        why = details.get("reason") or details.get("note") or f"by {details.get('by', 'retention')}"
        found.append(Finding(st.seq, st.status, st.artifact_id, st.path, st.at, str(why)))
    for clock in clocks:
        if clock.seq not in resolved:
            details = json.loads(clock.details)
            found.append(Finding(clock.seq, "clock", None, None, clock.at,
                                 f"{clock.actor}: clock {details['behind_seconds']} s behind the log (it said "
                                 f"{details.get('writer_clock')}, the log {details['log_clock']})"))  # fmt: skip
    return sorted(found, key=lambda f: f.id)


def resolve(catalog: Catalog, finding_id: int, reason: str) -> Finding:
    """Close an open finding with a person's reason: a ``finding_resolve`` event naming it. Returns the finding.

    Raises NotFoundError if no open finding has that id, ValidationError for a bad reason.
    """
    reason = check_reason(reason)
    if not 1 <= finding_id <= 2**62:
        raise ValidationError(f"finding id {finding_id} is out of range", value=finding_id)
    match = next((f for f in open_findings(catalog) if f.id == finding_id), None)
    if match is None:
        raise NotFoundError(f"no open finding {finding_id} (see the open ones with their ids)", value=finding_id)
    e = EVENTS.c
    with catalog.change() as tx:  # under the chain lock: two people resolving the same finding record it once
        for row in tx.read(select(e.details).where(e.action == "finding_resolve")):
            if json.loads(row.details)["finding"] == match.id:
                raise ValidationError(f"finding {match.id} was resolved meanwhile", value=finding_id)
        tx.events.append("finding_resolve", artifact_id=match.artifact_id, path=match.path,
                         details={"finding": match.id, "kind": match.kind, "reason": reason})  # fmt: skip
    return match
