"""The retention plan in totals: how many artifacts, and how many bytes, each type loses or keeps, and why.

``retention plan --summary`` answers by type, action and reason without
reading every expired row into Python: one ``GROUP BY`` per type over its
expired rows by their retain_until promise (from one covering index), and
the exact per-row decision of :func:`catalog.ops.retention.plan` only for the
rows an active hold's selector might cover, moved from their promise group
to the group the plan puts them in. The totals are, by construction, those
of the full plan with every ``keep`` row's promise grouped as "kept forever"
or "retain_until later than now".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, case, false, func, or_, select

from ..core.records import ArtifactRecord
from ..core.schema import ARTIFACTS
from ..core.settings import FOREVER
from ..core.store import Catalog
from ..core.totals import total_rows
from .policy import HoldRecord, HoldSet, active_holds
from .retention import PlanRow, Rule, expired_records, promise, rules

KEPT_LATER = "retain_until later than now"
_DUE, _LATER, _FOREVER = 0, 1, 2


@dataclass(frozen=True)
class SummaryRow:
    """One line of the summary: ``count`` artifacts of ``type`` totalling ``size`` bytes get ``action`` for ``reason``."""

    type: str
    action: str  # delete | archive | hold | keep
    reason: str
    count: int
    size: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data: type, action, reason, count, size (bytes)."""
        return {"type": self.type, "action": self.action, "reason": self.reason, "count": self.count,
                "size": self.size}  # fmt: skip


def summary_key(row: PlanRow) -> tuple[str, str, str]:
    """The (type, action, reason) a plan row is counted under: promises in the future are one group."""
    reason = row.reason
    if row.action == "keep" and row.record.retain_until != FOREVER:
        reason = KEPT_LATER
    return row.record.type, row.action, reason


def _literal_start(pattern: str) -> str:
    """The part of an fnmatch pattern before its first wildcard, with LIKE's own wildcards escaped."""
    cut = min((i for i, ch in enumerate(pattern) if ch in "*?["), default=len(pattern))
    return pattern[:cut].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _reach(hold: HoldRecord) -> Any:
    """A SQL condition true for every artifact ``hold`` covers directly (and possibly a few more)."""
    c = ARTIFACTS.c
    if hold.kind == "path":
        hit = or_(c.path == hold.selector, c.original_path == hold.selector)
    elif hold.kind == "prefix":
        hit = c.prefix.like(_literal_start(hold.selector) + "%", escape="\\")
    else:
        hit = c.type == hold.selector
    window = [c.created_at >= hold.since] if hold.since is not None else []
    window += [c.created_at < hold.until] if hold.until is not None else []
    return and_(hit, *window)


def _held(protection: HoldSet) -> Any:
    """A SQL condition true for every artifact some active hold may protect (never NULL)."""
    c = ARTIFACTS.c
    reach = [_reach(hold) for hold in protection.holds]
    if protection.pairs:
        reach.append(and_(c.pair_id.is_not(None), c.pair_id.in_(sorted(protection.pairs))))
    return or_(false(), *reach)


def _totals(catalog: Catalog, rule: Rule, now: datetime) -> dict[int, list[int]]:
    """[count, bytes] of the rule's expired rows by promise: due, promised later, kept forever.

    Reads only columns of ``ix_artifacts_retention_totals`` (type, created_at,
    recorded_at, status, retain_until, size): the index range alone answers it.
    """
    c = ARTIFACTS.c
    group = case((c.retain_until == FOREVER, _FOREVER), (c.retain_until > now, _LATER), else_=_DUE)
    with catalog.read() as conn:
        rows = total_rows(conn, c.size, lambda sums: select(group.label("grp"), func.count(), *sums)
                          .where(rule.expired()).group_by(group))  # fmt: skip
    return {int(g): [int(n), size] for g, n, size in rows}


def _promise_group(record: ArtifactRecord, now: datetime) -> int:
    """The group :func:`_totals` counts ``record`` in."""
    if record.retain_until == FOREVER:
        return _FOREVER
    return _LATER if record.retain_until is not None and record.retain_until > now else _DUE


def plan_summary(catalog: Catalog, *, now: datetime | None = None, types: tuple[str, ...] = ()) -> Sequence[SummaryRow]:
    """The retention plan at ``now`` (default: the real clock, UTC) as totals by type, action and reason.

    Rows come type by type (in ``types``' order, default every type), then by
    action and reason. Equal to grouping :func:`catalog.ops.retention.plan`'s
    rows by :func:`summary_key`. Raises ValidationError as ``plan`` does.
    """
    now = now or datetime.now(timezone.utc)
    protection = active_holds(catalog)
    held = _held(protection)
    out: list[SummaryRow] = []
    for rule in rules(catalog, now, types):
        totals = _totals(catalog, rule, now)
        groups: dict[tuple[str, str, str], list[int]] = {}
        for record in expired_records(catalog, and_(rule.expired(), held)) if protection.holds else ():
            # a row a hold may reach: decided one by one, as the plan does, and taken out of its promise group
            taken = totals.setdefault(_promise_group(record, now), [0, 0])  # (a row written meanwhile)
            taken[0] -= 1
            taken[1] -= record.size
            total = groups.setdefault(summary_key(rule.decide(record, protection, now)), [0, 0])
            total[0] += 1
            total[1] += record.size
        for group, (count, size) in totals.items():
            if count > 0:
                key = {_DUE: (rule.type, rule.action, rule.reason), _LATER: (rule.type, "keep", KEPT_LATER),
                       _FOREVER: (rule.type, "keep", promise(FOREVER))}[group]  # fmt: skip
                total = groups.setdefault(key, [0, 0])
                total[0] += count
                total[1] += size
        out += [SummaryRow(*key, *total) for key, total in sorted(groups.items())]
    return out
