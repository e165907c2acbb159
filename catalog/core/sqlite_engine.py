"""How the catalog's SQLite engines open and begin their connections (:class:`catalog.core.db.Database` makes them).

Every connection has a busy timeout and the configured ``synchronous``
level. Writing connections set WAL mode; it is persistent in the file (init's
first commit makes a catalog WAL for good; a backup keeps it), so read
connections never set it: that writes the file's header, and a read verb
writes nothing, not even into an empty file where the catalog should be.
Transaction control is taken over from the ``sqlite3`` module (SQLAlchemy's
documented recipe for pysqlite), so a write transaction begins with ``BEGIN
IMMEDIATE`` and queues for the lock up front. Read connections are read-only
from the moment they open (``PRAGMA query_only``), and open as
:func:`catalog.core.sqlite_file.reader_uri` says: one opened immutable
(read-only media) is replaced when a -wal appears (a writer started).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError

from . import sqlite_file


def configure(engine: Engine, synchronous: str, busy_timeout_ms: int, *, read_only: bool) -> None:
    """Set each new connection of ``engine`` up (pragmas above) and begin its transactions ourselves:
    ``BEGIN IMMEDIATE`` on an engine with the ``catalog_write`` execution option, ``BEGIN`` otherwise."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN / BEGIN IMMEDIATE ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if not read_only:  # setting it writes the file's header; a catalog's header says WAL from its first commit on
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if read_only:
            cursor.execute("PRAGMA query_only = ON")  # the database refuses any write on this connection
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("catalog_write", False)
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        if conn.dispatch.before_cursor_execute:  # someone watches every statement
            conn.exec_driver_sql(begin)
        else:  # on the driver: 0.05 ms less per transaction (errors come back wrapped as SQLAlchemy's)
            try:
                conn.connection.dbapi_connection.execute(begin)  # type: ignore[union-attr]
            except sqlite3.Error as exc:
                raise DBAPIError.instance(begin, (), exc, sqlite3.Error, dialect=conn.dialect) from exc


def open_read_only(engine: Engine, path: Path) -> None:
    """Open ``engine``'s connections to the catalog ``path`` as :func:`~catalog.core.sqlite_file.reader_uri` says;
    a connection opened immutable is marked so (``info["immutable"]``) and reopened once a writer started."""

    def immutable() -> bool:
        return sqlite_file.reader_uri(path).endswith("immutable=1")

    @event.listens_for(engine, "do_connect")
    def read_only(_dialect: Any, record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        cargs[0], cparams["uri"] = sqlite_file.reader_uri(path), True
        record.info["immutable"] = cargs[0].endswith("immutable=1")

    @event.listens_for(engine, "checkout")
    def not_stale(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get("immutable") and not immutable():
            raise DisconnectionError("a writer started: reopen without immutable")  # the pool reconnects
