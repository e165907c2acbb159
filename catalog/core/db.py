"""The catalog database: engines, connection settings, schema check, migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout, durable
commits (``synchronous=FULL`` unless ``sqlite.synchronous: normal`` trades that
for speed) and ``BEGIN IMMEDIATE`` for every write transaction, so writers queue
for the lock up front instead of failing on upgrade. PostgreSQL runs the same
code; writers serialise on the ``chain_head`` row (``SELECT … FOR UPDATE``).
Read scopes are read-only in the database itself (SQLite ``PRAGMA query_only``,
PostgreSQL ``BEGIN READ ONLY``): the unit of work is the only way to write. A
user who may only read a SQLite catalog, or a catalog on read-only media, can
still run every verb that only reads (:func:`catalog.core.sqlite_file.reader_uri`).

Checking the schema reads ``alembic_version`` with plain SQL: only the verbs that
migrate import alembic.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    SQLAlchemyError,
)

from . import sqlite_engine, sqlite_file
from .errors import CatalogDatabaseError, Remedy, SchemaError
from .kept import Kept
from .prepared import Prepared
from .settings import Settings, redact_url
from .vocabulary import HEAD_REVISION, KNOWN_REVISIONS

_PG_MIGRATION_LOCK = 7_305_215_001  # advisory lock id held while migrating
#: Named locks held across transactions (:meth:`Database.exclusive`), with their PostgreSQL advisory lock ids.
EXCLUSIVE_LOCKS: dict[str, int] = {"lifecycle": 7_305_215_002}


def migrations_dir() -> str:
    """Where the alembic scripts are: inside the installed package."""
    return str(resources.files("catalog.migrations"))


class Database:
    """Engines for one catalog URL, with the settings every connection needs.

    Raises CatalogDatabaseError for a URL that is malformed or names a driver
    that is not installed. ``busy_timeout_ms`` (milliseconds) bounds how long
    a writer waits for the lock; ``allow_filesystems`` are file system types
    accepted for SQLite beside :data:`~catalog.core.sqlite_file.LOCAL_FILESYSTEMS`.

    SQLite reads go through connections opened as :func:`~catalog.core.sqlite_file.reader_uri` says;
    one opened immutable is replaced when a -wal appears (a writer started).
    """

    def __init__(
        self, url: str, *, synchronous: str = "full", busy_timeout_ms: int = 30_000,
        allow_filesystems: frozenset[str] = frozenset(),
    ) -> None:  # fmt: skip
        try:
            self.url = make_url(url)
            self.url.port  # noqa: B018 - parses the port now, not at the first connection
        except (ArgumentError, ValueError):
            shown = redact_url(url)
            raise CatalogDatabaseError(f"catalog URL {shown!r} is not a valid database URL") from None
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.busy_timeout_ms = busy_timeout_ms
        self.allow_filesystems = allow_filesystems
        self._turn = threading.Lock()
        self._lock_fd: tuple[int, int] | None = None  # (pid, fd) of the writers' lock file
        self.sqlite_path = Path(self.url.database) if self.is_sqlite and self.url.database else None
        try:
            if self.is_sqlite:
                # Two pools: connections for reads are read-only from the moment they open (toggling
                # query_only per transaction would expire every prepared statement: SQLite re-prepares).
                self.engine = create_engine(self.url, connect_args={"timeout": busy_timeout_ms / 1000})
                sqlite_engine.configure(self.engine, synchronous, busy_timeout_ms, read_only=False)
                self.read_engine = create_engine(self.url, connect_args={"timeout": busy_timeout_ms / 1000})
                sqlite_engine.configure(self.read_engine, synchronous, busy_timeout_ms, read_only=True)
                assert self.sqlite_path is not None, "an in-memory catalog cannot be shared by processes"
                sqlite_engine.open_read_only(self.read_engine, self.sqlite_path)
            else:
                # A writer waits for the chain head lock as long as a SQLite writer would for its lock, then
                # fails clearly; an unreachable server fails within seconds (the URL may set its own).
                # (0 would mean "wait forever" to PostgreSQL; to SQLite it means "do not wait": keep SQLite's sense)
                options = {"options": f"-c lock_timeout={max(1, int(busy_timeout_ms))}"}
                if "connect_timeout" not in self.url.query:
                    options["connect_timeout"] = 10  # type: ignore[assignment]
                self.engine = create_engine(self.url, pool_pre_ping=True, connect_args=options)
        except (NoSuchModuleError, ImportError) as exc:
            hint = " (install the postgres extra: pip install 'cryptorun-catalog[postgres]')"
            raise CatalogDatabaseError(f"cannot use catalog URL {self.shown_url}: {exc}{hint}") from None
        except (ArgumentError, ValueError, TypeError) as exc:
            raise CatalogDatabaseError(f"catalog URL {self.shown_url} is not usable: {exc}") from None
        self.write_engine = self.engine.execution_options(catalog_write=True)
        # Kept per process, no pool round each time: the connection for SQLite's write transactions (PostgreSQL's
        # writes keep the pool and its pre-ping: this one is never opened there), and for lone reads on both
        self._writing = Kept(self.write_engine)
        self._reading = Kept(self.read_engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        if not self.is_sqlite:  # psycopg opens read scopes with BEGIN READ ONLY
            self.read_engine = self.engine.execution_options(postgresql_readonly=True)

    @property
    def shown_url(self) -> str:
        """The URL without its password, for messages (:func:`~catalog.core.settings.redact_url`)."""
        return redact_url(self.url.render_as_string(hide_password=False))

    @property
    def location(self) -> str:
        """The SQLite file, or the server URL without its password: where the catalog is, for messages."""
        return str(self.sqlite_path) if self.sqlite_path else self.shown_url

    def dispose(self) -> None:
        """Close every pooled connection and this process's lock file descriptor.

        The readers close first: the last connection to close checkpoints the
        WAL and removes the -wal and -shm files, which only a writable one may do.
        """
        self._reading.drop()
        self._writing.drop()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
        self.engine.dispose()
        if self._lock_fd is not None and self._lock_fd[0] == os.getpid():
            os.close(self._lock_fd[1])
        self._lock_fd = None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A short read-only transaction; driver errors become CatalogDatabaseError (SchemaError: not a database)."""
        with self._errors(), self.read_engine.connect() as conn, conn.begin():
            yield conn

    def read_statement(self, statement: Prepared, params: Mapping[str, Any]) -> list[Any]:
        """The rows of one prepared SELECT run on its own on a read connection, as the driver returns them.

        It runs on the connection this process keeps for such reads (unless
        another thread is using it), with no transaction round of its own
        (SQLite runs a lone statement in an implicit one; PostgreSQL's
        connection is in autocommit): the check a writer makes before it
        publishes a file costs one statement, one round trip. A connection the
        server dropped meanwhile (a restart) is replaced and the statement run
        once more. Errors as in :meth:`read`.
        """
        if not self._reading.lock.acquire(blocking=False):  # another thread is using it: a pooled one
            with self._errors(), self.read_engine.connect() as conn:
                return statement.run(conn, params)
        try:
            with self._errors():
                return self._reading.run(statement, params)
        finally:
            self._reading.lock.release()

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """One read-only connection kept for many short transactions, each ``with conn.begin():`` (a walk that reads
        a folder's rows at a time: no pool checkout per folder). Driver errors become CatalogDatabaseError."""
        with self._errors(), self.read_engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (SQLite: the writers' queue, then BEGIN IMMEDIATE), committed on success.

        Only :meth:`catalog.core.store.Catalog.change` (the unit of work) and migrations use it.
        SQLite runs it on the connection this process keeps for its writes
        (:class:`~catalog.core.kept.Kept`). Driver errors become CatalogDatabaseError (a lock still held after
        the busy timeout included); a violated constraint stays SQLAlchemy's IntegrityError.
        """
        if self.sqlite_path is None:
            with self._errors(), self.write_engine.begin() as conn:
                yield conn
            return
        with self._errors(), self._write_turn(), self._writing.use() as conn, conn.begin():  # the turn guards it
            yield conn

    @contextmanager
    def _write_turn(self) -> Iterator[None]:
        """SQLite: writers queue on a lock file beside the catalog, held until after the commit.

        SQLite's own busy handler sleeps up to 100 ms between tries, so with many
        writers the lock sits free while they all sleep; a kernel file lock wakes
        the next writer the moment it is released. Only an optimisation: SQLite's
        locking still decides, so a process that ignores this file (or a lock file
        that cannot be made) is merely slower. Waiting is bounded by the busy timeout.
        """
        if self.sqlite_path is None:
            yield
            return
        timeout = self.busy_timeout_ms / 1000
        deadline = time.monotonic() + timeout
        if not self._turn.acquire(timeout=timeout):  # threads of this process queue here first
            raise self._locked()
        try:
            fd = self._lock_file()
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fd = self._wait_for_lock(deadline)
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    if fd != self._lock_fd[1]:  # type: ignore[index]
                        os.close(fd)
        finally:
            self._turn.release()

    def _lock_file(self) -> int | None:
        """This process's descriptor of the writers' lock file (None if it cannot be made)."""
        if self._lock_fd is None or self._lock_fd[0] != os.getpid():
            fd = self._open_lock_file()
            if fd is None:
                return None
            self._lock_fd = (os.getpid(), fd)
        return self._lock_fd[1]

    def _open_lock_file(self) -> int | None:
        try:
            return sqlite_file.open_lock_file(Path(f"{self.sqlite_path}-lock"))
        except OSError:
            return None

    def _wait_for_lock(self, deadline: float) -> int | None:
        """Block in the kernel for the lock (:func:`~catalog.core.sqlite_file.wait_flock`) up to the deadline; returns
        the fd holding it, None if the lock file cannot be opened (SQLite's own locking decides then)."""
        try:
            fd = sqlite_file.wait_flock(lambda: sqlite_file.open_lock_file(Path(f"{self.sqlite_path}-lock")),
                                        max(0.0, deadline - time.monotonic()))  # fmt: skip
        except OSError:
            return None
        if fd is None:
            raise self._locked()
        return fd

    @contextmanager
    def exclusive(self, name: str, what: str) -> Iterator[None]:
        """Hold a named lock of this catalog across many transactions: one holder at a time, on any host.

        For lifecycle work that must not run twice at once (``name`` is one of
        :data:`EXCLUSIVE_LOCKS`). SQLite: an exclusive ``flock`` on
        ``<catalog>-<name>`` beside the database; PostgreSQL: a session advisory
        lock on a connection kept for the duration. A holder that dies releases
        it (the kernel closes its file; the server ends its session). Waits up
        to the busy timeout, then raises :class:`CatalogDatabaseError` saying
        ``what`` is already running. Released on exit.
        """
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        busy = CatalogDatabaseError(f"{what} is already running on catalog {self.location}; this one did nothing")
        if self.sqlite_path is not None:
            fd = self._open_named_lock(Path(f"{self.sqlite_path}-{name}"))
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise busy from None
                        time.sleep(0.05)
                yield
            finally:
                os.close(fd)  # closing releases the lock
            return
        key = EXCLUSIVE_LOCKS[name]
        with self._errors(), self.engine.connect() as conn:
            while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                conn.rollback()
                if time.monotonic() >= deadline:
                    raise busy
                time.sleep(0.05)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    def _open_named_lock(self, path: Path) -> int:
        """A descriptor of the lock file ``path`` (:func:`~catalog.core.sqlite_file.open_lock_file`); if it cannot be
        opened (not there, and this user may not create it), the reason this user cannot record changes."""
        try:
            return sqlite_file.open_lock_file(path)
        except OSError as exc:
            self.check_writable()  # a user who may only read, read-only media: the message every writer gives
            raise CatalogDatabaseError(f"catalog {self.location} cannot record changes: cannot open its lock file "
                                       f"{path}: {exc.strerror or exc}; nothing was written") from None

    def check_writable(self, incoming: int | None = None, store: Path | None = None) -> None:
        """SQLite: raise CatalogDatabaseError now if this process could not commit (see
        :func:`catalog.core.sqlite_file.check_writable`). PostgreSQL: nothing to check here."""
        if self.sqlite_path is not None:
            sqlite_file.check_writable(self.sqlite_path, incoming, store)

    def _locked(self) -> CatalogDatabaseError:
        return CatalogDatabaseError(f"catalog {self.location} stayed locked by another process past the busy timeout")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except IntegrityError:
            raise  # a constraint said no: the caller knows what that means
        except DBAPIError as exc:
            raise self._explain(exc) from exc

    def _explain(self, exc: DBAPIError) -> CatalogDatabaseError:
        lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
        message = lines[0] if lines else type(exc.orig or exc).__name__
        if self.sqlite_path is not None and getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF in sqlite_file.DISK_ERRORS:
            full = sqlite_file.no_space(self.sqlite_path)
            if full is not None:
                return full
        if self.sqlite_path is not None and "readonly database" in message:
            # a read-only user or medium: say so, not "attempt to write a readonly database" (asked only
            # now, when SQLite refused: a writer asked before publishing, :meth:`check_writable`)
            try:
                sqlite_file.check_writable(self.sqlite_path)
            except CatalogDatabaseError as refused:
                return refused
        if self.sqlite_path is not None and "unable to open database file" in message:
            why = sqlite_file.why_not_open(self.sqlite_path)
            return CatalogDatabaseError(f"catalog {self.location} cannot be opened: {why}")
        if self.is_sqlite and "file is not a database" in message:
            return SchemaError(f"catalog {self.location} is not a SQLite database")
        if (self.is_sqlite and "database is locked" in message) or "lock timeout" in message:
            return self._locked()
        if exc.connection_invalidated or "connection" in message.lower():
            return CatalogDatabaseError(f"cannot reach catalog {self.location}: {message}")
        return CatalogDatabaseError(f"catalog {self.location}: {message}")

    # -- schema ---------------------------------------------------------------

    def exists(self) -> bool:
        """False only for a SQLite catalog whose file is not there yet."""
        return self.sqlite_path is None or self.sqlite_path.exists()

    def revision(self) -> str | None:
        """The alembic revision stamped in the catalog (``0006``…), or None if it has none."""
        if not self.exists():
            return None
        with self.read() as conn:
            has_table = conn.dialect.has_table(conn, "alembic_version")
            if not has_table:
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def check_schema(self) -> None:
        """Raise SchemaError for a catalog that is missing, behind or ahead of this code (remedy: init or upgrade)."""
        if not self.exists():
            raise SchemaError(f"no catalog at {self.location}", remedy=Remedy.INIT)
        current = self.revision()
        if current == HEAD_REVISION:
            return
        if current is None:
            raise SchemaError(f"catalog {self.location} has no schema", remedy=Remedy.INIT)
        if current in KNOWN_REVISIONS:
            raise SchemaError(
                f"catalog {self.location} is at schema {current}, this version needs {HEAD_REVISION}",
                remedy=Remedy.UPGRADE,
            )
        raise SchemaError(
            f"catalog {self.location} has schema {current}, newer than this version of catalog knows "
            f"(up to {HEAD_REVISION}): upgrade the catalog package"
        )

    def upgrade(self, target: str = "head") -> tuple[str | None, str]:
        """Migrate to ``target`` (default: head; idempotent); returns the revisions (before, after), before None if new.

        Raises StoreError for SQLite on a file system not known to be local, SchemaError for
        a catalog newer than this code, CatalogDatabaseError if migrating fails.
        """
        from alembic import command
        from alembic.config import Config

        if self.sqlite_path is not None:
            sqlite_file.require_local_filesystem(self.sqlite_path.parent, self.allow_filesystems)
        before = self.revision()
        if before is not None and before not in KNOWN_REVISIONS:
            self.check_schema()  # raises: newer than this code
        if self.sqlite_path is not None:
            sqlite_file.create_database_file(self.sqlite_path)  # its mode follows the umask (SQLite would make 0644)
        config = Config()
        config.set_main_option("script_location", migrations_dir())
        try:
            with self.write() as conn:
                if not self.is_sqlite:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                config.attributes["connection"] = conn
                command.upgrade(config, target)
        except SQLAlchemyError as exc:
            raise CatalogDatabaseError(f"migrating catalog {self.location} failed: {exc}") from exc
        return before, self.revision() or HEAD_REVISION


def schema_revision(settings: Settings) -> str | None:
    """The schema revision stamped in the configured catalog (None if it has none).

    Raises :class:`SchemaError` if there is no catalog at all. Opens no store
    and checks nothing else, so it works on a catalog of any revision.
    """
    database = Database(settings.catalog_url)
    try:
        if not database.exists():
            raise SchemaError(f"no catalog at {database.location}", remedy=Remedy.INIT)
        return database.revision()
    finally:
        database.dispose()
