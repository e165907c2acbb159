"""Answers from the catalog: listings, one artifact's story, lookups by hash, totals.

Listings stream: rows come in keyset-paged batches, each in its own short read
transaction, so a million-row listing starts at once, holds no list in memory
and never pins one long read transaction (which would starve SQLite's
checkpoints).
"""

from __future__ import annotations

import fnmatch
import heapq
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from typing import Any

from sqlalchemy import and_, func, select

from ..core.chain import event_batches
from ..core.errors import NotFoundError, Param, ValidationError
from ..core.fs import UnsafePath, row_file, sha256_file
from ..core.records import ArtifactRecord, EventRecord
from ..core.schema import ARTIFACTS, EVENTS, keyset_after
from ..core.store import Catalog
from ..core.totals import total_rows
from ..core.vocabulary import ACTIONS, EXTS, ON_DISK, SORTS, STATUSES, TYPES

_GLOB_CHARS = re.compile(r"[*?]")


@dataclass(frozen=True)
class ArtifactQuery:
    """Which artifacts a listing wants. Times are aware UTC; ``since`` inclusive, ``until`` exclusive.

    ``after`` continues a listing after that path (keyset pagination); ``as_of``
    answers from the events: what existed then, where, with what status;
    ``exts``: only files with these extensions (``json``, no dot).
    Raises ValidationError for an unknown type, status, extension or sort, a bad limit or window.
    """

    types: tuple[str, ...] = ()
    prefix: str | None = None  # exact, or a glob with * and ?
    statuses: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    sort: str = "newest"
    after: str | None = None  # path of the last row already seen
    limit: int | None = None
    as_of: datetime | None = None  # answer from the events: what existed then, where
    exts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for t in self.types:
            if t not in TYPES:
                raise ValidationError(f"unknown artifact type {t!r}; choose one of: {', '.join(TYPES)}")
        for e in self.exts:
            if e not in EXTS:
                raise ValidationError(f"unknown extension {e[:40]!r}; choose one of: {', '.join(EXTS)}", value=e)
        for s in self.statuses:
            if s not in STATUSES:
                raise ValidationError(f"unknown status {s!r}; choose one of: {', '.join(STATUSES)}")
        if self.sort not in SORTS:
            raise ValidationError(f"unknown sort {self.sort!r}; choose one of: {', '.join(SORTS)}")
        if self.limit is not None and self.limit < 1:
            raise ValidationError(Param("limit"), f" must be 1 or more, not {self.limit}", value=self.limit)
        if self.since and self.until and self.since >= self.until:
            raise ValidationError(Param("since"), " must be earlier than ", Param("until"))
        if self.prefix is not None and (not self.prefix or "\x00" in self.prefix or len(self.prefix) > 256):
            raise ValidationError(Param("prefix"), " pattern must be 1-256 characters without NUL", value=self.prefix)


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_pattern(glob: str) -> str:
    return _like_literal(glob).replace("*", "%").replace("?", "_")


def _as_of_view(as_of: datetime) -> Any:
    """Artifacts as they stood at ``as_of``, from the events recorded by then.

    Each artifact's last row-changing event at or before that time gives its
    status and path then; the recorded facts (type, size, hash…) never change.
    Artifacts not yet written, or already deleted, are left out.

    That event is found once per artifact (its seq, on the ``artifact_id``
    index) and joined for path and status, so a page walks the artifacts in
    its order and stops when full; it still pays for the artifacts it passes
    that did not exist yet (newest first, as of long ago).
    """
    e = EVENTS.c
    last = (select(e.seq).where(e.artifact_id == ARTIFACTS.c.id, e.at <= as_of, e.status.is_not(None))
            .order_by(e.seq.desc()).limit(1).correlate(ARTIFACTS).scalar_subquery())  # fmt: skip
    then = EVENTS.alias("then_event")
    changed = {"path": then.c.path.label("path"), "status": then.c.status.label("status")}
    view = select(*(changed.get(c.name, c) for c in ARTIFACTS.c)).join_from(ARTIFACTS, then, then.c.seq == last)
    then_view = view.subquery("then")
    return select(then_view).where(then_view.c.status != "deleted").subquery("as_of")  # none yet: no join, left out


def _filters(query: ArtifactQuery, source: Any) -> list[Any]:
    c = source.c
    where: list[Any] = []
    if query.types:
        where.append(c.type.in_(query.types))
    if query.statuses:
        where.append(c.status.in_(query.statuses))
    if query.exts:
        where.append(c.ext.in_(query.exts))
    if query.since is not None:
        where.append(c.created_at >= query.since)
    if query.until is not None:
        where.append(c.created_at < query.until)
    if query.prefix is not None:
        if _GLOB_CHARS.search(query.prefix):
            # LIKE narrows the rows (case rules differ by backend); fnmatchcase decides.
            where.append(c.prefix.like(_like_pattern(query.prefix), escape="\\"))
        else:
            where.append(c.prefix == query.prefix)
    return where


def _artifact_pages(
    catalog: Catalog, query: ArtifactQuery, batch: int, columns: Callable[[Any], list[Any]] | None = None
) -> Iterator[list[Any]]:
    """The rows matching ``query`` in its order, a keyset page at a time (each in its own short read); ``columns``
    picks what a row holds from the source (default: every column). NotFoundError if ``query.after`` names none."""
    source = ARTIFACTS if query.as_of is None else _as_of_view(query.as_of)
    column_name, descending = SORTS[query.sort]
    key, ident = source.c[column_name], source.c.id
    order = (key.desc(), ident.desc()) if descending else (key.asc(), ident.asc())
    base = _filters(query, source)
    glob = query.prefix if query.prefix is not None and _GLOB_CHARS.search(query.prefix) else None
    chosen = select(*columns(source)) if columns is not None else select(source)

    def cursor_at(where: Any) -> tuple[Any, int] | None:  # the sort key of one row: the next page starts after it
        with catalog.read() as conn:
            return conn.execute(select(key, ident).where(where)).first()

    cursor: tuple[Any, int] | None = None
    if query.after is not None:
        cursor = cursor_at(source.c.path == catalog.relative(query.after))
        if cursor is None:
            raise NotFoundError(Param("after"), f" {query.after}: no artifact at that path", value=query.after)

    remaining = query.limit
    while remaining is None or remaining > 0:
        where = list(base)
        if cursor is not None:
            # a row-value comparison: both backends walk the (key, id) index from here
            where.append(keyset_after((key, ident), cursor, descending=descending))
        size = batch if remaining is None else min(batch, remaining)
        with catalog.read() as conn:
            rows: list[Any] = list(conn.execute(chosen.where(*where).order_by(*order).limit(size)).all())
        if not rows:
            return
        fetched, last = len(rows), rows[-1]
        if glob is not None:
            rows = [row for row in rows if fnmatch.fnmatchcase(row.prefix, glob)]
        if remaining is not None:
            rows = rows[:remaining]
            remaining -= len(rows)
        yield rows
        if fetched < size or remaining == 0:
            return
        cursor = cursor_at(ident == last.id) if columns is not None else (getattr(last, column_name), last.id)


def iter_artifacts(catalog: Catalog, query: ArtifactQuery = ArtifactQuery(), batch: int = 1000) -> Iterator[ArtifactRecord]:
    """Artifacts matching ``query`` in its order, in keyset batches of ``batch``; NotFoundError if ``after`` names none."""
    for rows in _artifact_pages(catalog, query, batch):
        yield from map(ArtifactRecord.from_row, rows)


class Listing:
    """A streamed listing that remembers where it stopped, for keyset pagination.

    Iterate it once (or read it by :func:`catalog.ops.exports.listing_batches`); then :attr:`next_after` is the path
    to pass as ``ArtifactQuery.after`` for the next page (None without a limit or after a short page).
    """

    def __init__(self, catalog: Catalog, query: ArtifactQuery) -> None:
        self.catalog, self.query = catalog, query
        self._count = 0
        self._last: str | None = None

    def __iter__(self) -> Iterator[ArtifactRecord]:
        for record in iter_artifacts(self.catalog, self.query):
            self.seen(1, record.path)
            yield record

    def seen(self, count: int, last_path: str) -> None:
        """Note ``count`` more rows listed, the last at ``last_path`` (an export reading rows itself calls this)."""
        self._count += count
        self._last = last_path

    @property
    def next_after(self) -> str | None:
        """The last path of a full page (the cursor for the next one), else None."""
        return self._last if self.query.limit is not None and self._count == self.query.limit else None


# -- one artifact ---------------------------------------------------------------


@dataclass(frozen=True)
class FileState:
    """What is on disk at an artifact's current path right now.

    ``size`` in bytes, ``sha256`` 64 hex digits (regular files of the
    recorded size only), ``mode`` as :func:`stat.filemode` gives it
    (``-r--r--r--``), ``matches`` if size and hash are the recorded ones,
    ``problem`` why the path is not read at all (``not a regular file
    (symlink)``, a symlinked folder…; see :class:`catalog.core.fs.UnsafePath`).
    """

    present: bool
    size: int | None = None
    sha256: str | None = None
    mode: str | None = None
    matches: bool = False
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"present": self.present, "size": self.size, "sha256": self.sha256, "mode": self.mode,
                "matches": self.matches, "problem": self.problem}  # fmt: skip


@dataclass(frozen=True)
class ArtifactStory:
    """An artifact's row, its file as it is now, and every event about it."""

    record: ArtifactRecord
    file: FileState
    events: list[EventRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``artifact``, ``file`` and ``events``, times as ISO-8601 UTC text."""
        return {
            "artifact": self.record.to_dict(),
            "file": self.file.to_dict(),
            "events": [e.to_dict() for e in self.events],
        }  # fmt: skip


def file_state(catalog: Catalog, record: ArtifactRecord) -> FileState:
    """Stat and hash the file at the artifact's current path, read as verify and get read it.

    The file is opened by :func:`catalog.core.fs.open_artifact`: a symlink
    (there or in a folder on the way) or anything but a regular file is
    reported in ``problem``, never followed or read; a file of another size
    than recorded is not hashed.
    """
    try:
        path = row_file(catalog.base_dir, record.path)  # a path read from the database: checked before any stat
    except UnsafePath as exc:
        return FileState(present=False, problem=exc.reason)
    try:
        mode = stat.filemode(os.lstat(path).st_mode)
        sha, size = sha256_file(catalog.base_dir, record.path, record.size)
    except (FileNotFoundError, NotADirectoryError):
        return FileState(present=False)
    except UnsafePath as exc:
        return FileState(present=True, mode=mode, problem=exc.reason)
    return FileState(present=True, size=size, sha256=sha, mode=mode,
                     matches=size == record.size and sha == record.sha256)  # fmt: skip


def artifact_events(catalog: Catalog, artifact_id: int) -> list[EventRecord]:
    """Every event about one artifact, in chain order."""
    with catalog.read() as conn:
        rows = conn.execute(select(EVENTS).where(EVENTS.c.artifact_id == artifact_id).order_by(EVENTS.c.seq)).all()
    return [EventRecord.from_row(r) for r in rows]


def story(catalog: Catalog, record: ArtifactRecord) -> ArtifactStory:
    """An artifact's story: its record, its file as it is now (:func:`file_state`) and its events."""
    return ArtifactStory(record, file_state(catalog, record), artifact_events(catalog, record.id))


def show(catalog: Catalog, path: str) -> ArtifactStory:
    """One artifact's story, by its current or original path; NotFoundError if no artifact has that path."""
    return story(catalog, catalog.require_path(path))


def pair_partner(catalog: Catalog, record: ArtifactRecord) -> ArtifactRecord | None:
    """The other half of ``record``'s linked pair (same ``pair_id``), or None if it is not in a pair."""
    if record.pair_id is None:
        return None
    c = ARTIFACTS.c
    with catalog.read() as conn:
        row = conn.execute(select(ARTIFACTS).where(c.pair_id == record.pair_id, c.id != record.id).order_by(c.id)).first()
    return ArtifactRecord.from_row(row) if row is not None else None


def paths_starting(catalog: Catalog, start: str, statuses: tuple[str, ...] = (), limit: int = 200) -> list[str]:
    """Current paths that start with ``start`` (exactly: case and every character count), in path order, at
    most ``limit``; only those with one of ``statuses`` if given. For shell completion."""
    c = ARTIFACTS.c
    query = select(c.path).where(c.path.like(_like_literal(start) + "%", escape="\\")).order_by(c.path).limit(limit)
    if statuses:
        query = query.where(c.status.in_(statuses))
    with catalog.read() as conn:
        return [path for path in conn.execute(query).scalars() if path.startswith(start)]


_HEX = re.compile(r"[0-9a-f]{4,64}")


def find_sha256(catalog: Catalog, digest: str) -> list[ArtifactStory]:
    """The stories of the artifacts whose SHA-256 is ``digest`` or starts with it (at most 1001, by id).

    None matching is an empty list. Raises ValidationError unless ``digest``
    is 4-64 hex digits that start at most one SHA-256 in the catalog.
    """
    wanted = digest.strip().lower()
    if not _HEX.fullmatch(wanted):
        raise ValidationError(f"{digest[:80]!r} is not a SHA-256 or a prefix of one (4 to 64 hex digits)")
    c = ARTIFACTS.c
    match = c.sha256 == wanted if len(wanted) == 64 else and_(c.sha256 >= wanted, c.sha256 < wanted + "g")
    with catalog.read() as conn:
        rows = conn.execute(select(ARTIFACTS).where(match).order_by(c.id).limit(1001)).all()
    hashes = {row.sha256 for row in rows}
    if len(hashes) > 1:
        raise ValidationError(f"{wanted} is ambiguous: it starts {len(hashes)} different SHA-256 values; give more digits")
    return [story(catalog, ArtifactRecord.from_row(row)) for row in rows]


# -- totals ----------------------------------------------------------------------


@dataclass(frozen=True)
class StatRow:
    """One total: ``group`` is type, folder, status or store; ``count`` artifacts; ``bytes`` their size."""

    group: str
    name: str
    count: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"group": self.group, "name": self.name, "count": self.count, "bytes": self.bytes}


def _grouped(column: Any, *where: Any) -> Callable[[Sequence[Any]], Any]:
    """For :func:`total_rows`: each ``column`` value (of the rows ``where`` allows), its count and the totals."""
    return lambda sums: select(column, func.count(), *sums).where(*where).group_by(column).order_by(column)


def stats(catalog: Catalog) -> list[StatRow]:
    """Counts and bytes by type and by folder (files on disk), by status (every row), and a last row for the store."""
    c = ARTIFACTS.c
    on_disk = c.status.in_(ON_DISK)
    out: list[StatRow] = []
    with catalog.read() as conn:
        for group, column, where in (("type", c.type, (on_disk,)), ("folder", c.folder, (on_disk,)), ("status", c.status, ())):
            out += [StatRow(group, name, n, b) for name, n, b in total_rows(conn, c.size, _grouped(column, *where))]
        ((n, b),) = total_rows(conn, c.size, lambda sums: select(func.count(), *sums).where(on_disk))
    out.append(StatRow("store", "on disk", n, b))
    return out


# -- the audit log ---------------------------------------------------------------------


@dataclass(frozen=True)
class EventQuery:
    """Which events a log listing wants. Times are aware UTC; ``since`` inclusive, ``until`` exclusive.

    ``path`` is exact or a glob (* and ?); ``actor`` a substring; ``after`` continues after that seq (keyset pages).
    """

    since: datetime | None = None
    until: datetime | None = None
    actions: tuple[str, ...] = ()
    path: str | None = None  # exact, or a glob with * and ?
    actor: str | None = None  # substring
    limit: int | None = None
    after: int | None = None  # seq of the last event already seen

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValidationError(Param("limit"), f" must be 1 or more, not {self.limit}", value=self.limit)
        if self.since and self.until and self.since >= self.until:
            raise ValidationError(Param("since"), " must be earlier than ", Param("until"))
        for action in self.actions:
            if action not in ACTIONS:
                raise ValidationError(f"unknown action {action[:40]!r}; choose one of: {', '.join(ACTIONS)}",
                                      value=action)  # fmt: skip
        for text, what in ((self.path, "path pattern"), (self.actor, "actor text")):
            if text is not None and (not text or "\x00" in text or len(text) > 512):
                raise ValidationError(f"{what} must be 1-512 characters without NUL", value=text)


def _event_pages(catalog: Catalog, query: EventQuery, columns: Sequence[Any] | None = None) -> Iterator[list[Any]]:
    """The events matching ``query`` in seq order, a batch at a time (``columns`` as in :func:`event_batches`, with
    ``path`` and ``actor``); each action is its own seq-ordered stream (the ``(action, seq)`` index), merged."""
    c = EVENTS.c
    where: list[Any] = []
    if query.since is not None:
        where.append(c.at >= query.since)
    if query.until is not None:
        where.append(c.at < query.until)
    if query.after is not None:
        where.append(c.seq > query.after)
    glob = query.path if query.path is not None and _GLOB_CHARS.search(query.path) else None
    if query.path is not None:
        where.append(c.path.like(_like_pattern(glob), escape="\\") if glob else c.path == query.path)
    if query.actor is not None:
        where.append(c.actor.like("%" + _like_pattern(query.actor) + "%", escape="\\"))
    # a page's worth per query, unless rows may still be dropped here (a glob, an actor's case)
    exact = glob is None and query.actor is None
    batch = min(query.limit, 1000) if query.limit is not None and exact else 1000
    pages: Iterator[list[Any]]
    if query.actions:
        streams = [chain.from_iterable(event_batches(catalog.read, [*where, c.action == action], batch, columns))
                   for action in query.actions]  # fmt: skip
        merged = heapq.merge(*streams, key=lambda row: row.seq)
        pages = iter(lambda: list(islice(merged, batch)), [])
    else:
        pages = event_batches(catalog.read, where, batch, columns)
    remaining = query.limit
    for rows in pages:
        if glob is not None:
            rows = [row for row in rows if fnmatch.fnmatchcase(row.path or "", glob)]
        if query.actor is not None:
            rows = [row for row in rows if query.actor in row.actor]
        if remaining is not None:
            rows = rows[:remaining]
            remaining -= len(rows)
        if rows:
            yield rows
        if remaining == 0:
            return


def iter_event_log(catalog: Catalog, query: EventQuery = EventQuery()) -> Iterator[EventRecord]:
    """Events matching ``query``, oldest first, streamed in keyset batches."""
    for rows in _event_pages(catalog, query):
        yield from map(EventRecord.from_row, rows)
