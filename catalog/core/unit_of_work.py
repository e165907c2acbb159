"""The unit of work: the one owner of every change to the catalog.

Every state change of the store happens inside ``with catalog.change() as tx:``, and this module is the only one
that issues INSERT or UPDATE against the catalog. A unit of work

1. takes the chain lock first (SQLite: the writers' queue and ``BEGIN IMMEDIATE``, taken by
   :meth:`catalog.core.db.Database.write`; PostgreSQL: ``SELECT … FOR UPDATE`` on the ``chain_head`` row),
   before any statement;
2. offers each table through a small repository whose every method writes the row change *and* its audit
   event together — a row change without its event cannot be expressed: ``tx.artifacts`` (record,
   set_status), ``tx.holds`` (place, release), ``tx.floors`` (set), ``tx.verify_runs`` (start, add_results,
   finish), ``tx.users`` (add, set_role, remove) and ``tx.events`` (append, for events that change no row);
3. keeps ``folder_usage`` in step with every artifact change (a folder holds at most 2^63 - 1 bytes), and the
   log's Merkle tree (``merkle_nodes``, :mod:`catalog.core.tree`) with every event;
4. dates every event and ``recorded_at`` by the log's clock (:meth:`UnitOfWork.clock`): this host's time, never
   earlier than the last event's, so seq order is time order and a writer whose clock is behind cannot
   backdate what decides retention; such a writer's own clock is kept in each event's details
   (``writer_clock``) and its transaction records a ``clock_behind`` event;
5. moves the chain head and commits on exit (or rolls everything back if the block raises); limits crossed
   by the change are logged after the commit.

Reads inside the transaction go through :meth:`UnitOfWork.read`, which refuses anything but a SELECT.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Executable, Result, bindparam, func, select
from sqlalchemy.exc import DataError

from . import chain, names, tree
from .crossings import Crossings
from .errors import NotFoundError, ValidationError
from .prepared import Prepared, PreparedInsert
from .records import ArtifactRecord, Outcome, PublishedFile
from .remembered import Remembered
from .schema import (
    ARTIFACTS,
    CHAIN_HEAD,
    EVENTS,
    FLOORS,
    FOLDER_USAGE,
    HOLDS,
    MERKLE_NODES,
    USERS,
    VERIFY_RESULTS,
    VERIFY_RUNS,  # fmt: skip
)
from .settings import Settings
from .totals import join_bytes, split_bytes
from .vocabulary import ACTIONS, ON_DISK, STATUSES

# Statements of the write path, compiled once per dialect and run on the driver's cursor (:mod:`.prepared`):
# building them per write cost more than the commit, running them through SQLAlchemy about 0.1 ms each.
_ROW_KEYS = ("path", "original_path", "folder", "type", "prefix", "ext", "created_at", "recorded_at", "size", "sha256",
             "status", "retain_until", "pair_id")  # fmt: skip
_ADD_USAGE = Prepared(
    FOLDER_USAGE.update()
    .where(FOLDER_USAGE.c.folder == bindparam("b_folder"))
    .values(files=FOLDER_USAGE.c.files + bindparam("b_files"), bytes=FOLDER_USAGE.c.bytes + bindparam("b_bytes"))
    .returning(FOLDER_USAGE.c.files, FOLDER_USAGE.c.bytes)
)
_NEW_USAGE = Prepared(FOLDER_USAGE.insert(), ("folder", "files", "bytes"))
_INSERT_ARTIFACTS = PreparedInsert(ARTIFACTS.insert().returning(ARTIFACTS.c.path, ARTIFACTS.c.id), _ROW_KEYS)
_INSERT_EVENT = Prepared(EVENTS.insert(), ("seq", "at", "action", "artifact_id", "path", "status", "actor", "details",
                                           "text", "hash"))  # fmt: skip
_INSERT_NODES = Prepared(MERKLE_NODES.insert(), ("level", "idx", "hash"))
_MOVE_HEAD = Prepared(CHAIN_HEAD.update().where(CHAIN_HEAD.c.id == 1).values(seq=bindparam("b_seq"), hash=bindparam("b_hash")))
_FLOORS = Prepared(select(FLOORS.c.type, FLOORS.c.days))
_STORE_BYTES = Prepared(select(*(func.coalesce(func.sum(part), 0) for part in split_bytes(FOLDER_USAGE.c.bytes))))
_ROW = select(ARTIFACTS).where(ARTIFACTS.c.id == bindparam("b_id"))


class UnitOfWork:
    """One write transaction holding the chain lock. Made by :meth:`catalog.core.store.Catalog.change`."""

    def __init__(self, conn: Connection, actor: str, settings: Settings, remembered: Remembered | None = None) -> None:
        """``remembered``: what the writer kept from its last commit (used only if the head is still its head)."""
        self._conn = conn
        self.actor = actor
        self.settings = settings
        self._seq, self._hash, self._last_at = chain.lock_head(conn)  # the lock first, before any other statement
        self._first_seq = self._seq
        if remembered is not None and remembered.head != (self._seq, self._hash):
            remembered = None  # the log moved since: someone else changed the catalog
        # type -> floor days, read at most once (and again after a floor changes in this unit of work)
        self._floors = None if remembered is None or remembered.floors is None else dict(remembered.floors)
        self._store_before = None if remembered is None else remembered.store_bytes  # bytes on disk before, if known
        self._store_after: int | None = None
        self._tree = tree.Growth(conn, None if remembered is None else remembered.border)  # new nodes, with the events
        self._behind: tuple[datetime, datetime] | None = None  # (this host's clock, the log's) when behind by > skew
        self._delta: dict[str, tuple[int, int]] = {}  # folder -> net files, bytes this change added (may be < 0)
        self._usage: dict[str, tuple[int, int]] = {}  # folder -> its files, bytes after this change's last count
        self.events = Events(self)
        self.artifacts = Artifacts(self)
        self.holds = Holds(self)
        self.floors = Floors(self)
        self.verify_runs = VerifyRuns(self)
        self.users = Users(self)

    def read(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Result[Any]:
        """Run a SELECT inside this transaction; anything else raises TypeError (rows change through repositories)."""
        if not getattr(statement, "is_select", False):
            raise TypeError("UnitOfWork.read runs SELECT statements only; change rows through tx.artifacts and friends")
        return self._conn.execute(statement, params)

    def clock(self) -> datetime:
        """The log's clock (aware UTC): this host's time, or the last event's time if that is later.

        When this host is behind the log by more than ``audit.max_clock_skew_seconds``,
        the events of this change carry ``writer_clock`` and the change records a
        ``clock_behind`` event on commit.
        """
        host, last = datetime.now(timezone.utc), self._last_at
        if last is None or host >= last:
            return host
        if last - host > self.settings.max_clock_skew and self._behind is None:
            self._behind = (host, last)
        return last

    @property
    def head(self) -> tuple[int, str]:
        """The chain head after this change's events so far: (seq, 64-hex hash)."""
        return self._seq, self._hash

    def root(self) -> bytes:
        """The RFC 9162 root (32 raw bytes) of the log as this change leaves it so far: the events up to :attr:`head`."""
        return self._tree.root(self._seq)

    def _write(self, statement: Executable, params: Any = None) -> CursorResult[Any]:
        return cast("CursorResult[Any]", self._conn.execute(statement, params))

    def _count(self, folder: str, files: int, size: int) -> None:
        """Keep ``folder_usage`` in step (the chain lock is held: no race); ValidationError past 2^63 - 1 bytes a folder."""
        try:
            done = _ADD_USAGE.run(self._conn, {"b_folder": folder, "b_files": files, "b_bytes": size})
        except DataError:  # PostgreSQL: bigint out of range
            done = [(files, None)]
        if done and type(done[0][1]) is not int:  # SQLite makes an overflowing sum a float
            raise ValidationError(f"folder {folder}/ would hold more than 2^63 - 1 bytes, more than the catalog counts")
        if done:
            self._usage[folder] = (done[0][0], done[0][1])
        else:
            _NEW_USAGE.run(self._conn, {"folder": folder, "files": files, "bytes": size})
            self._usage[folder] = (files, size)
        before = self._delta.get(folder, (0, 0))
        self._delta[folder] = (before[0] + files, before[1] + size)

    def _append(self, action: str, *, artifact_id: int | None, path: str | None, status: str | None,
                details: Mapping[str, Any] | None, at: datetime | None) -> int:  # fmt: skip
        link = self._link(action, artifact_id=artifact_id, path=path, status=status, details=details, at=at)
        _INSERT_EVENT.run(self._conn, link)
        return int(link["seq"])

    def _link(self, action: str, *, artifact_id: int | None, path: str | None, status: str | None,
              details: Mapping[str, Any] | None, at: datetime | None, actor: str | None = None) -> dict[str, Any]:  # fmt: skip
        """The next event's columns (by ``actor``, else :attr:`actor`), head and tree moved past it (caller inserts it)."""
        if action not in ACTIONS:
            raise ValidationError(f"unknown action {action!r}; choose one of: {', '.join(ACTIONS)}", value=action)
        seq = self._seq + 1
        moment = self.clock() if at is None else max(at, self._last_at or at)  # never before its predecessor
        details = dict(details or {})
        if self._behind is not None:
            details["writer_clock"] = chain.iso_utc(self._behind[0])
        link = chain.next_link(self._hash, seq, moment, action, artifact_id, path, status, actor or self.actor, details)
        self._tree.add(seq, link["text"])
        self._seq, self._hash, self._last_at = seq, link["hash"], moment
        return link

    def _note_clock_behind(self) -> None:
        """Record one ``clock_behind`` event, unless this host already has an unresolved one (one finding per host)."""
        assert self._behind is not None
        host_clock, log_clock = self._behind
        host = socket.gethostname()
        e = EVENTS.c
        resolved = {json.loads(r.details)["finding"] for r in self.read(select(e.details).where(e.action == "finding_resolve"))}
        for row in self.read(select(e.seq, e.details).where(e.action == "clock_behind")):
            if row.seq not in resolved and json.loads(row.details).get("host") == host:
                return
        self._append("clock_behind", artifact_id=None, path=None, status=None, at=None, details={
            "host": host, "log_clock": chain.iso_utc(log_clock),
            "behind_seconds": int((log_clock - host_clock).total_seconds())})  # fmt: skip

    def _close(self) -> Crossings:
        """Move the chain head to the last event; read back the usage of the folders this change grew."""
        if self._behind is not None and self._seq != self._first_seq:
            self._note_clock_behind()
        if self._seq != self._first_seq:
            _INSERT_NODES.run(self._conn, self._tree.rows())
            _MOVE_HEAD.run(self._conn, {"b_seq": self._seq, "b_hash": self._hash})
        grown = sum(size for _, size in self._delta.values())
        if self._store_before is not None:
            self._store_after = self._store_before + grown
        if not any(files > 0 or size > 0 for files, size in self._delta.values()):
            return Crossings(self.settings.limits, {}, {}, 0)  # nothing grew: no limit can have been crossed
        if self._store_after is None:  # exact past 2^63 - 1, where SQLite's sum() overflows
            self._store_after = join_bytes(*_STORE_BYTES.run(self._conn)[0])
        return Crossings(self.settings.limits, dict(self._delta), dict(self._usage), self._store_after)

    def _remember(self) -> Remembered:
        """What the next unit of work of this writer may reuse, once this one has committed."""
        return Remembered((self._seq, self._hash), self._floors, self._tree.border(self._seq), self._store_after)


class Events:
    """``tx.events``: events that change no row (runs, intents, checkpoints, backups, upgrades)."""

    def __init__(self, tx: UnitOfWork) -> None:
        self._tx = tx

    def append(self, action: str, *, artifact_id: int | None = None, path: str | None = None,
               details: Mapping[str, Any] | None = None, at: datetime | None = None) -> int:  # fmt: skip
        """Append one event (``at`` defaults to now, UTC); returns its seq."""
        return self._tx._append(action, artifact_id=artifact_id, path=path, status=None, details=details, at=at)


class Artifacts:
    """``tx.artifacts``: artifact rows, each change with its event and its folder's usage."""

    def __init__(self, tx: UnitOfWork) -> None:
        self._tx = tx

    def floor(self, artifact_type: str) -> int | None:
        """The type's retention floor in days, or None: read once per unit of work, and not even that while
        nothing changed the catalog since this writer's last commit (:class:`Remembered`)."""
        tx = self._tx
        if tx._floors is None:
            tx._floors = dict(_FLOORS.run(tx._conn))
        return tx._floors.get(artifact_type)

    def record(self, item: PublishedFile) -> ArtifactRecord:
        """Insert the row of a published file and its event (``item.action``); returns the new record.

        ``retain_until`` is the type's policy from now, never below the type's
        floor. Raises SQLAlchemy's IntegrityError if the path already has a row,
        and ValidationError if ``retain_until`` would pass year 9999.
        """
        return self.record_many([item])[0]

    def record_many(self, items: Sequence[PublishedFile], actors: Sequence[str | None] | None = None) -> list[ArtifactRecord]:
        """:meth:`record` each of ``items`` (rows and events in their order; errors as there), one statement per
        table for them all: rows (16 a statement, ids matched by path), events, each folder's usage. ``actors``: each
        event's actor (a group commit's writers; one per item, else ValueError), by default the unit of work's."""
        tx = self._tx
        if not items:
            return []
        rows: list[dict[str, Any]] = []
        for item in items:
            recorded_at = tx.clock()
            rows.append(dict(
                path=item.path, original_path=item.path, folder=names.folder_of(item.path), type=item.type,
                prefix=item.prefix, ext=item.ext, created_at=item.created_at, recorded_at=recorded_at,
                size=item.size, sha256=item.sha256, status="active", pair_id=item.pair_id,
                retain_until=tx.settings.retain_until(item.type, item.created_at, recorded_at, self.floor(item.type)),
            ))  # fmt: skip
        for folder in dict.fromkeys(row["folder"] for row in rows):
            mine = [row["size"] for row in rows if row["folder"] == folder]
            tx._count(folder, len(mine), sum(mine))
        new_ids: dict[str, int] = dict(_INSERT_ARTIFACTS.run(tx._conn, rows))  # INSERT … RETURNING path, id
        ids = [new_ids[row["path"]] for row in rows]  # paths are unique
        links = [tx._link(item.action, artifact_id=new_id, path=item.path, status="active", at=row["recorded_at"],
                          details={**item.details, **chain.row_details(row)}, actor=actor)
                 for item, row, new_id, actor in zip(items, rows, ids, actors or [None] * len(items), strict=True)]  # fmt: skip
        _INSERT_EVENT.run(tx._conn, links if len(links) > 1 else links[0])
        return [ArtifactRecord(id=new_id, **{k: v for k, v in row.items() if k != "folder"}) for row, new_id in zip(rows, ids)]

    def set_status(self, artifact_id: int, *, action: str, status: str, path: str | None = None,
                   retain_until: datetime | None = None, details: Mapping[str, Any] | None = None,
                   at: datetime | None = None) -> ArtifactRecord:  # fmt: skip
        """Change a row (status; ``path`` moves it; ``retain_until`` extends it) and append its event ``action``.

        The event carries the row's new state, so replaying events rebuilds the
        row. Raises :class:`ValidationError` for an unknown status and
        :class:`NotFoundError` for an unknown id.
        """
        if status not in STATUSES:
            raise ValidationError(f"unknown status {status!r}; choose one of: {', '.join(STATUSES)}")
        tx = self._tx
        row = tx.read(_ROW, {"b_id": artifact_id}).one_or_none()
        if row is None:
            raise NotFoundError(f"no artifact with id {artifact_id}")
        changes: dict[str, Any] = {"status": status}
        if path is not None and path != row.path:
            changes.update(path=path, folder=names.folder_of(path))
        if retain_until is not None:
            changes["retain_until"] = retain_until
        event_details = {"from_status": row.status, **chain.row_details(changes), **dict(details or {})}
        if "path" in changes:
            event_details["from_path"] = row.path
        # the event first: the row's trigger (migration 0008) lets only a change the newest event names through
        tx._append(action, artifact_id=artifact_id, path=changes.get("path", row.path), status=status,
                   details=event_details, at=at)  # fmt: skip
        tx._write(ARTIFACTS.update().where(ARTIFACTS.c.id == artifact_id).values(**changes))
        if row.status in ON_DISK:
            tx._count(row.folder, -1, -row.size)
        if status in ON_DISK:
            tx._count(changes.get("folder", row.folder), 1, row.size)
        return ArtifactRecord.from_row(tx.read(_ROW, {"b_id": artifact_id}).one())


class Holds:
    """``tx.holds``: legal holds, placed and released with their events."""

    def __init__(self, tx: UnitOfWork) -> None:
        self._tx = tx

    def place(self, kind: str, selector: str, *, since: datetime | None, until: datetime | None, reason: str) -> Any:
        """Insert a hold and its ``hold_place`` event; returns the new row."""
        tx = self._tx
        now = tx.clock()
        hold_id = tx._write(
            HOLDS.insert().values(selector_kind=kind, selector=selector, since=since, until=until, reason=reason,
                                  placed_at=now, placed_by=tx.actor).returning(HOLDS.c.id)
        ).scalar_one()  # fmt: skip
        tx._append("hold_place", artifact_id=None, path=None, status=None, at=now, details={
            "hold": hold_id, "kind": kind, "selector": selector, "reason": reason,
            "since": chain.iso_utc(since) if since else None, "until": chain.iso_utc(until) if until else None})  # fmt: skip
        return tx.read(select(HOLDS).where(HOLDS.c.id == hold_id)).one()

    def release(self, hold_id: int, reason: str) -> None:
        """Release an active hold with its ``hold_release`` event.

        Raises :class:`NotFoundError` for an unknown id and :class:`ValidationError` if already released.
        """
        tx = self._tx
        row = tx.read(select(HOLDS).where(HOLDS.c.id == hold_id)).one_or_none()
        if row is None:
            raise NotFoundError(f"no hold with id {hold_id}")
        if row.released_at is not None:
            raise ValidationError(f"hold {hold_id} was already released ({chain.iso_utc(row.released_at)})")
        now = tx.clock()
        tx._append("hold_release", artifact_id=None, path=None, status=None, at=now,
                   details={"hold": hold_id, "reason": reason})  # fmt: skip
        tx._write(HOLDS.update().where(HOLDS.c.id == hold_id).values(
            released_at=now, released_by=tx.actor, release_reason=reason))  # the trigger wants its event first


class Floors:
    """``tx.floors``: per-type retention floors, each change with its ``policy_floor`` event."""

    def __init__(self, tx: UnitOfWork) -> None:
        self._tx = tx

    def get(self, artifact_type: str) -> int | None:
        """The type's floor in days, or None."""
        return self._tx.read(select(FLOORS.c.days).where(FLOORS.c.type == artifact_type)).scalar()

    def set(self, artifact_type: str, days: int, reason: str) -> int | None:
        """Set the floor and append its event; returns the floor before (None if there was none)."""
        tx = self._tx
        before = self.get(artifact_type)
        tx._append("policy_floor", artifact_id=None, path=None, status=None, at=None,
                   details={"type": artifact_type, "from": before, "to": days, "reason": reason})  # fmt: skip
        if before is None:  # after its event: the trigger lets only the change the newest event names through
            tx._write(FLOORS.insert().values(type=artifact_type, days=days))
        else:
            tx._write(FLOORS.update().where(FLOORS.c.type == artifact_type).values(days=days))
        tx._floors = None  # what this unit of work read before is stale now
        return before


class Users:
    """``tx.users``: web accounts, each change with its event (which never carries the secret or its hash)."""

    def __init__(self, tx: UnitOfWork) -> None:
        self._tx = tx

    def get(self, name: str) -> Any:
        """The account's row, or None."""
        return self._tx.read(select(USERS).where(USERS.c.name == name)).one_or_none()

    def _require(self, name: str) -> Any:
        row = self.get(name)
        if row is None:
            raise NotFoundError(f"no account named {name!r}", value=name)
        return row

    def add(self, name: str, role: str, secret_hash: str) -> None:
        """Insert an account and its ``user_add`` event; ValidationError if the name is taken."""
        tx = self._tx
        if self.get(name) is not None:
            raise ValidationError(f"an account named {name!r} already exists", value=name)
        now = tx.clock()
        tx._write(USERS.insert().values(name=name, role=role, secret_hash=secret_hash, created_at=now, created_by=tx.actor))
        tx._append("user_add", artifact_id=None, path=None, status=None, at=now, details={"name": name, "role": role})

    def set_role(self, name: str, role: str, reason: str) -> str:
        """Change an account's role with its ``user_role`` event; returns the role before. NotFoundError."""
        tx = self._tx
        before = self._require(name).role
        tx._write(USERS.update().where(USERS.c.name == name).values(role=role))
        tx._append("user_role", artifact_id=None, path=None, status=None, at=None,
                   details={"name": name, "from": before, "to": role, "reason": reason})  # fmt: skip
        return str(before)

    def remove(self, name: str, reason: str) -> None:
        """Delete an account with its ``user_remove`` event (its sessions and tokens stop working). NotFoundError."""
        tx = self._tx
        role = self._require(name).role
        tx._write(USERS.delete().where(USERS.c.name == name))
        tx._append("user_remove", artifact_id=None, path=None, status=None, at=None,
                   details={"name": name, "role": role, "reason": reason})  # fmt: skip


class VerifyRuns:
    """``tx.verify_runs``: recorded verification runs and their per-artifact results."""

    def __init__(self, tx: UnitOfWork) -> None:
        self._tx = tx

    def start(self, *, started_at: datetime, scope: str, sample: float | None, subset: str | None) -> int:
        """Insert a run (its ``verify_run`` event comes with :meth:`finish`); returns its id."""
        return self._tx._write(
            VERIFY_RUNS.insert().values(started_at=started_at, scope=scope, sample=sample, subset=subset, checked=0,
                                        ok=0, failed=0, missing=0).returning(VERIFY_RUNS.c.id)
        ).scalar_one()  # fmt: skip

    def add_results(self, run_id: int, outcomes: list[Outcome]) -> None:
        """Insert one result per artifact and a ``verify_failure`` event per failed or missing file.

        (``skipped``: a file retention deleted or archived during the run, no failure.)
        """
        tx = self._tx
        if not outcomes:
            return
        tx._write(VERIFY_RESULTS.insert(), [{"run_id": run_id, "artifact_id": o.artifact_id, "outcome": o.outcome,
                                             "detail": o.detail} for o in outcomes])  # fmt: skip
        for o in outcomes:
            if o.outcome in ("failed", "missing"):
                tx._append("verify_failure", artifact_id=o.artifact_id, path=o.path, status=None, at=None,
                           details={"run_id": run_id, "outcome": o.outcome, "detail": o.detail})  # fmt: skip

    def finish(self, run_id: int, *, checked: int, ok: int, failed: int, missing: int, duration_s: float,
               scope: Mapping[str, Any]) -> None:  # fmt: skip
        """Close the run with its counts and append its ``verify_run`` event."""
        tx = self._tx
        finished_at = tx.clock()
        tx._write(VERIFY_RUNS.update().where(VERIFY_RUNS.c.id == run_id).values(
            finished_at=finished_at, checked=checked, ok=ok, failed=failed, missing=missing,
            duration_s=duration_s))  # fmt: skip
        tx._append("verify_run", artifact_id=None, path=None, status=None, at=finished_at, details={
            "run_id": run_id, "scope": dict(scope), "checked": checked, "ok": ok, "failed": failed,
            "missing": missing})  # fmt: skip
