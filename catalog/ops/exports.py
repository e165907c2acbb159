"""Exports: listings read as batches of plain rows for ``--format ndjson|csv|json``, at the speed of the database.

No record is built per row: the database formats the times
(:class:`catalog.core.schema.iso_text`), each batch is one short read
transaction of only the columns shown, and the rows are what the records'
``to_dict()`` gives, value for value (:func:`catalog.core.formats.write_batches`
writes them as :func:`catalog.core.formats.write_listing` writes the dicts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import case, type_coerce

from ..core.formats import format_time
from ..core.json_rows import json_texts
from ..core.records import ArtifactRecord
from ..core.schema import ARTIFACTS, EVENTS, UTCDateTime, iso_text
from ..core.store import Catalog
from .query import ArtifactQuery, EventQuery, Listing, _artifact_pages, _event_pages

#: The columns of :func:`artifact_batches`' rows: :class:`ArtifactRecord`'s fields, in order.
RECORD_FIELDS = tuple(f.name for f in fields(ArtifactRecord))


def artifact_batches(catalog: Catalog, query: ArtifactQuery = ArtifactQuery(), batch: int = 5000) -> Iterator[list[Any]]:
    """The rows of :func:`iter_artifacts` for an export: lists of up to ``batch`` rows, each a tuple of
    :data:`RECORD_FIELDS` values as :meth:`ArtifactRecord.to_dict` gives them (times as ISO-8601 UTC text).

    No record is built per row: the database formats the times (:class:`catalog.core.schema.iso_text`).
    Raises NotFoundError if ``query.after`` names no artifact.
    """
    times = {"created_at", "recorded_at", "retain_until"}

    def columns(source: Any) -> list[Any]:
        return [iso_text(source.c[name]).label(name) if name in times else source.c[name] for name in RECORD_FIELDS]

    for rows in _artifact_pages(catalog, query, batch, columns):
        if rows:
            yield rows


#: The columns of :func:`event_log_batches`' rows: :meth:`EventRecord.to_dict`'s keys, in order.
EVENT_FIELDS = ("seq", "at", "action", "artifact_id", "path", "status", "actor", "details", "hash")


def event_log_batches(catalog: Catalog, query: EventQuery = EventQuery(), *,
                      details_text: bool = False) -> Iterator[list[tuple[Any, ...]]]:  # fmt: skip
    """The events of :func:`iter_event_log` for an export: lists of rows, each a tuple of
    :data:`EVENT_FIELDS` values as :meth:`EventRecord.to_dict` gives them (``at`` as ISO-8601 UTC text,
    ``details`` a dict, or with ``details_text`` its ``json.dumps(details, sort_keys=True)``: one CSV cell).
    No record is built per row; each batch's details are parsed in one ``json.loads``.
    """
    e = EVENTS.c
    columns = [iso_text(e.at).label("at") if name == "at" else e[name] for name in EVENT_FIELDS]
    for rows in _event_pages(catalog, query, columns):
        values: list[Any] = list(zip(*rows))  # column by column: no Python per row
        values[7] = json.loads("[" + ",".join(values[7]) + "]")
        if details_text:
            values[7] = json_texts(values[7], sort_keys=True)
        yield list(zip(*values))


def listing_batches(listing: Listing) -> Iterator[list[Any]]:
    """``listing`` read as :func:`artifact_batches` rows; its ``next_after`` counts them as iterating it would."""
    for rows in artifact_batches(listing.catalog, listing.query):
        listing.seen(len(rows), rows[-1][1])  # the path
        yield rows


#: The columns of :func:`plan_batches`' rows: :meth:`PlanRow.to_dict`'s keys, in order.
PLAN_FIELDS = ("path", "type", "action", "reason", "age_days", "expires_at", "size", "status")


def plan_batches(catalog: Catalog, *, now: datetime | None = None, types: tuple[str, ...] = (),
                 batch: int = 5000) -> Iterator[list[tuple[Any, ...]]]:  # fmt: skip
    """:func:`plan` for an export: lists of rows, each a tuple of :data:`PLAN_FIELDS` values as
    :meth:`PlanRow.to_dict` gives them, in the plan's order.

    With no hold in force no record is built per row: each row is read as
    the few columns the plan shows and its later time (one time per row,
    parsed once). With holds, each row is decided by :meth:`Rule.decide`
    against them, as :func:`plan` does. Raises ValidationError as ``plan`` does.
    """
    from .retention import active_holds, expired_pages, promise, rules  # the plan's own (and its imports) only here

    now = now or datetime.now(timezone.utc)
    protection = active_holds(catalog)
    if protection.holds:
        for rule in rules(catalog, now, types):
            for rows in expired_pages(catalog, rule.expired(), batch):
                decided = (rule.decide(ArtifactRecord.from_row(row), protection, now).to_dict() for row in rows)
                yield [tuple(row[name] for name in PLAN_FIELDS) for row in decided]
        return
    c = ARTIFACTS.c
    later = type_coerce(case((c.created_at >= c.recorded_at, c.created_at), else_=c.recorded_at), UTCDateTime())
    columns = [c.path, c.type, c.size, c.status, c.retain_until, later.label("base"), c.id]
    for rule in rules(catalog, now, types):
        days = timedelta(days=rule.days)
        for rows in expired_pages(catalog, rule.expired(), batch, columns):
            out = []
            for path, artifact_type, size, status, retain_until, base, _ in rows:
                age, expires = round((now - base).total_seconds() / 86400, 2), base + days
                if retain_until is not None and retain_until > now:
                    out.append((path, artifact_type, "keep", promise(retain_until), age,
                                format_time(max(expires, retain_until)), size, status))  # fmt: skip
                else:
                    out.append((path, artifact_type, rule.action, rule.reason, age, format_time(expires), size, status))
            yield out
