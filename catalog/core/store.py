"""The store: a base folder of artifact files and the catalog database that records them.

:class:`Catalog` is the handle every service takes: it opens (or initialises)
a store, says who is acting (:attr:`Catalog.actor`), and offers the two scopes
through which everything reaches the database: :meth:`Catalog.read` for
queries and :meth:`Catalog.change` — the unit of work — for every change.
"""

from __future__ import annotations

import copy
import errno
import os
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, or_, select

from . import chain, fs, tree
from .db import Database
from .errors import NotFoundError, Param, Remedy, SchemaError, StoreError, ValidationError
from .names import placements
from .prepared import Prepared
from .records import ArtifactRecord, EventRecord
from .remembered import Remembered
from .schema import ARTIFACTS, EVENTS
from .settings import Settings, load_settings
from .sqlite_file import require_local_filesystem
from .unit_of_work import UnitOfWork
from .vocabulary import TYPES

if TYPE_CHECKING:
    from . import tlog

#: Paths asked about per statement: a write's three placements (flat, month, day), a scanner cycle's 7 × 3.
_TAKEN_CHUNK = 24
_PATHS_TAKEN = Prepared(select(ARTIFACTS.c.path).where(
    ARTIFACTS.c.path.in_([bindparam(f"b_p{i}") for i in range(_TAKEN_CHUNK)])))  # fmt: skip


def _is_store(folder: Path) -> bool:
    return (folder / "catalog.sqlite").is_file() or all((folder / name).is_dir() for name in TYPES)


def enclosing_store(base: Path) -> Path | None:
    """The store folder ``base`` lies inside, or None: the nearest ancestor holding a SQLite catalog or every
    type's folder. A store never holds another (its reconcile would see the inner store as foreign files)."""
    return next((parent for parent in base.parents if _is_store(parent)), None)


def _refuse_dangling_link(base: Path) -> None:
    """StoreError if ``base``, or the nearest of its parents not there, is a symlink that leads to nothing (its target
    missing, or links that loop): no folder can be made through it, and "does not exist" would not say why."""
    for folder in (base, *base.parents):
        if folder.exists():
            return
        if folder.is_symlink():
            where = "" if folder == base else f": {folder}"
            raise StoreError(f"base folder {base}{where} is a symlink to {os.readlink(folder)}, which leads nowhere "
                             "(its target is missing, or the links loop)")  # fmt: skip


def _inside_store(base: Path, store: Path) -> StoreError:
    return StoreError(f"base folder {base} lies inside the store {store} (a store never holds another): to use "
                      "that store, give ", Param("base_dir"), f" {store}, or run from outside it")  # fmt: skip


class Catalog:
    """A store (base folder) and its catalog database.

    Raises :class:`StoreError` when the base folder is unusable and
    :class:`~catalog.core.errors.SchemaError` when the catalog is missing or at
    another schema (``check=False`` skips both, for ``init``).
    """

    def __init__(self, settings: Settings, *, check: bool = True, actor: str | None = None) -> None:
        self.settings = settings
        #: A claimed name recorded beside the OS identity in every event (``actor``, else CRYPTORUN_ACTOR).
        self.actor_claim = chain.validate_claim(actor if actor is not None else os.environ.get("CRYPTORUN_ACTOR"))
        self._acting_as: str | None = None
        self._identity: tuple[tuple[int, int], str] | None = None  # ((pid, euid), user@host:pid), looked up once
        self._remembered: Remembered | None = None  # from this handle's last commit (see UnitOfWork)
        self.base_dir = settings.base_dir
        self.db = Database(
            settings.catalog_url,
            synchronous=settings.sqlite_synchronous,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            allow_filesystems=settings.sqlite_allow_filesystems,
        )
        if check:
            try:
                self._check_base_dir()
                if self.db.sqlite_path is not None:
                    require_local_filesystem(self.db.sqlite_path.parent, settings.sqlite_allow_filesystems)
                self.db.check_schema()
            except BaseException:
                self.db.dispose()
                raise

    @classmethod
    def open(
        cls, base_dir: str | Path | None = None, *, settings: Settings | None = None, actor: str | None = None,
        **overrides: Any,
    ) -> Catalog:  # fmt: skip
        """Open an initialised store; ``base_dir`` and ``overrides`` (environment, catalog_url) override the config.

        Given ``settings`` are used as they are (``base_dir`` and ``overrides``
        are then ignored). Raises ConfigError, ValidationError (a bad ``actor``),
        StoreError, SchemaError and CatalogDatabaseError (an unusable URL).
        """
        if settings is None:
            settings = load_settings(overrides=dict(overrides, base_dir=str(base_dir) if base_dir else None))
        return cls(settings, actor=actor)

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A short read-only transaction (the database refuses any write through it)."""
        with self.db.read() as conn:
            yield conn

    @contextmanager
    def change(self, actor: str | None = None) -> Iterator[UnitOfWork]:
        """The unit of work: the chain lock first, then rows and their events together, committed on exit.

        ``actor`` defaults to :attr:`actor`. If the block raises, nothing is
        written. Limits the change took past 80 % are logged after the commit.
        Raises CatalogDatabaseError if the lock is still held elsewhere after the busy timeout.
        """
        with self.db.write() as conn:
            tx = UnitOfWork(conn, actor or self.actor, self.settings, self._remembered)
            yield tx
            crossings = tx._close()
        self._remembered = tx._remember()  # committed: the next unit of work may reuse what this one read
        crossings.warn()

    def require_writable(self, incoming: int = 0) -> None:
        """Raise CatalogDatabaseError now if a write by this process could publish a file it then cannot record.

        Checked by a writer before it publishes ``incoming`` bytes: the catalog
        must take a commit and have room for it (:meth:`catalog.core.db.Database.check_writable`).
        """
        self.db.check_writable(incoming, self.base_dir)

    @staticmethod
    def _require_hard_links(folder: Path) -> None:
        try:
            fs.check_hard_links(folder)
        except OSError as exc:
            hint = "" if exc.errno in (errno.EACCES, errno.EROFS) else (
                ". The store publishes and moves files by hard-linking them: keep it on a file system such as "
                "ext4, xfs or btrfs"
            )  # fmt: skip
            raise StoreError(f"cannot write to the store {folder}: {exc.strerror or exc}{hint}") from None

    def _check_base_dir(self) -> None:
        if self.base_dir.exists() and not self.base_dir.is_dir():
            raise StoreError(f"base folder {self.base_dir} is a file, not a folder")
        _refuse_dangling_link(self.base_dir)
        if not self.base_dir.is_dir():
            store = enclosing_store(self.base_dir)
            if store is not None:  # run from inside a store: `catalog init` would make a second one in it
                raise _inside_store(self.base_dir, store)
            raise StoreError(f"base folder {self.base_dir} does not exist", remedy=Remedy.INIT)

    @property
    def actor(self) -> str:
        """Who is acting, for the audit log: ``user@host:pid`` plus any claim (or the actor of :meth:`acting_as`)."""
        return self._acting_as or self.actor_for(self.actor_claim)

    def actor_for(self, claim: str | None) -> str:
        """This process's ``user@host:pid`` with ``claim`` beside it (:func:`catalog.core.chain.current_actor`).

        The passwd entry and host name are looked up once per process and
        effective uid (a write would otherwise read the passwd file twice).
        """
        key = (os.getpid(), os.geteuid())
        if self._identity is None or self._identity[0] != key:
            self._identity = (key, chain.process_identity())
        return chain.current_actor(claim, self._identity[1])

    def acting_as(self, actor: str) -> Catalog:
        """This store, its changes recorded as made by ``actor`` (an authenticated web user: ``web:NAME@host:pid``).

        Shares this handle's database connections: close only the original.
        """
        view = copy.copy(self)
        view._acting_as = actor
        return view

    @classmethod
    def init(cls, settings: Settings, *, actor: str | None = None) -> tuple[Catalog, str | None, str]:
        """Create the folders and migrate the schema to head (idempotent).

        Returns the open catalog and the schema revision before (None: new)
        and after. A migration is recorded as a ``schema_upgrade`` event,
        appended after it. Raises StoreError (base folder a file or inside
        another store, folders that cannot be made, a file system without hard
        links, SQLite on a file system not known to be local) and
        CatalogDatabaseError.
        """
        base = settings.base_dir
        if base.exists() and not base.is_dir():
            raise StoreError(f"base folder {base} is a file, not a folder")
        _refuse_dangling_link(base)
        store = None if _is_store(base) else enclosing_store(base)
        if store is not None:
            raise _inside_store(base, store)
        catalog = cls(settings, check=False, actor=actor)
        try:
            if catalog.db.sqlite_path is not None:
                parent = catalog.db.sqlite_path.parent
                if parent != base and not parent.is_dir():
                    raise StoreError(f"folder {parent} for the SQLite catalog does not exist")
                require_local_filesystem(parent if parent.exists() else base.parent, settings.sqlite_allow_filesystems)
            else:
                catalog.db.revision()  # reach the server before creating any folder
        except BaseException:
            catalog.close()
            raise
        try:
            for name in TYPES:
                (base / name).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            catalog.close()
            raise StoreError(f"cannot create the store folders in {base}: {exc.strerror}") from None
        try:
            cls._require_hard_links(base)
            before, after = catalog.upgrade()
        except BaseException:
            catalog.close()
            raise
        return catalog, before, after

    def upgrade(self, *, existing: bool = False) -> tuple[str | None, str]:
        """Migrate the schema to head; record a ``schema_upgrade`` event if it moved. Returns (before, after).

        ``existing``: refuse (:class:`SchemaError`) a catalog that was never initialised.
        """
        if existing and (not self.db.exists() or self.db.revision() is None):
            raise SchemaError(f"no catalog at {self.db.location}", remedy=Remedy.INIT)
        before, after = self.db.upgrade()
        if before != after:
            with self.change() as tx:
                tx.events.append("schema_upgrade", details={"from": before, "to": after})
        return before, after

    def change_status(self, artifact_id: int, **change: Any) -> ArtifactRecord:
        """One artifact change in a unit of work of its own; returns the changed record.

        See :meth:`catalog.core.unit_of_work.Artifacts.set_status` for ``change``
        and its errors (ValidationError, NotFoundError).
        """
        with self.change() as tx:
            return tx.artifacts.set_status(artifact_id, **change)

    # -- lookups ------------------------------------------------------------

    def relative(self, path: str | Path) -> str:
        """The store-relative POSIX path for ``path`` (given so already, or absolute inside ``base_dir``), normalised.

        Raises :class:`ValidationError` for a NUL and :class:`NotFoundError` for an absolute path outside the store.
        """
        text = str(path)
        if "\x00" in text:
            raise ValidationError("path contains a NUL character")
        candidate = Path(text)
        if candidate.is_absolute():
            try:
                text = Path(os.path.normpath(candidate)).relative_to(self.base_dir).as_posix()
            except ValueError:
                raise NotFoundError(f"{path} is outside the store {self.base_dir}") from None
        return PurePosixPath(os.path.normpath(text)).as_posix()

    def find_path(self, path: str | Path) -> ArtifactRecord | None:
        """The artifact whose current path is ``path``, or None."""
        rel = self.relative(path)
        with self.db.read() as conn:
            row = conn.execute(select(ARTIFACTS).where(ARTIFACTS.c.path == rel)).one_or_none()
            return ArtifactRecord.from_row(row) if row is not None else None

    def paths_taken(self, rel_paths: Collection[str]) -> set[str]:
        """Those of ``rel_paths`` that are some row's current path (whatever its status): one statement per 24 of them."""
        paths = list(dict.fromkeys(rel_paths))
        taken: set[str] = set()
        for start in range(0, len(paths), _TAKEN_CHUNK):  # one prepared statement on the driver per 24 paths
            chunk = paths[start:start + _TAKEN_CHUNK]
            chunk += chunk[-1:] * (_TAKEN_CHUNK - len(chunk))  # the same statement for any count: pad with a repeat
            params = {f"b_p{i}": path for i, path in enumerate(chunk)}
            taken.update(path for (path,) in self.db.read_statement(_PATHS_TAKEN, params))
        return taken

    def find_id(self, artifact_id: int) -> ArtifactRecord:
        """The artifact with this id; :class:`NotFoundError` if there is none."""
        with self.db.read() as conn:
            row = conn.execute(select(ARTIFACTS).where(ARTIFACTS.c.id == artifact_id)).one_or_none()
        if row is None:
            raise NotFoundError(f"no artifact with id {artifact_id}")
        return ArtifactRecord.from_row(row)

    def require_path(self, path: str | Path) -> ArtifactRecord:
        """The artifact whose current path is ``path``, else the one first written there (its original path,
        such as an archived ledger's); :class:`NotFoundError` naming it if there is none."""
        record = self.find_path(path)
        if record is not None:
            return record
        rel = self.relative(path)
        with self.db.read() as conn:
            row = conn.execute(select(ARTIFACTS).where(ARTIFACTS.c.original_path == rel).order_by(ARTIFACTS.c.id)).first()
            places = placements(rel)  # a name, or TYPE/NAME: found in whichever layout's folder it was written
            if row is None and places:
                row = conn.execute(select(ARTIFACTS).where(or_(ARTIFACTS.c.path.in_(places), ARTIFACTS.c.original_path.in_(places)))
                                   .order_by(ARTIFACTS.c.id)).first()  # fmt: skip
        if row is None:
            raise NotFoundError(f"no artifact at {rel} in the catalog")
        return ArtifactRecord.from_row(row)

    def events(self) -> Iterator[EventRecord]:
        """Every audit event, in chain order (streamed in keyset batches)."""
        return (EventRecord.from_row(row) for row in chain.iter_events(self.db.read))

    def audit_verify(self, checkpoints: Sequence[chain.Checkpoint | tlog.TreeCheckpoint] = ()) -> chain.AuditReport:
        """Recompute the chain, check every row, hold and floor against its events (:mod:`catalog.core.replay`) and
        the times against the real clock, with
        ``audit.max_clock_skew_seconds`` (see :func:`catalog.core.chain.verify`), and each checkpoint against
        the log: a tree checkpoint's root against the log's tree (:func:`catalog.core.tlog.check`; signatures
        are :mod:`catalog.ops.checkpoints`' to check)."""
        from . import replay, tlog  # only verify needs them (tlog loads cryptography)

        legacy = [c for c in checkpoints if isinstance(c, chain.Checkpoint)]
        report = chain.verify(self.db.read, legacy, skew=self.settings.max_clock_skew, checks=replay.CHECKS)
        trees = [c for c in checkpoints if isinstance(c, tlog.TreeCheckpoint)]
        with self.db.read() as conn:
            first = conn.execute(select(EVENTS.c.hash).where(EVENTS.c.seq == 1)).scalar()
            for checkpoint in trees:
                report.checkpoints += 1
                try:
                    why = tlog.check(checkpoint, tlog.store_origin(first or ""), report.head_seq,
                                     lambda size: tree.root_at(conn, size))  # fmt: skip
                except StoreError as exc:  # the stored tree lost a node: the tree check names it too
                    why = f"checkpoint {checkpoint.source}: the log's tree cannot be read at its size ({exc})"
                if why is not None:
                    report.problems.append(chain.Problem(checkpoint.size, "rewritten", why))
        report.problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
        return report

