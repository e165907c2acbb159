"""Connections a process keeps for many short transactions or lone statements (:class:`catalog.core.db.Database`)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .prepared import Prepared


class Kept:
    """One connection of ``engine`` that this process keeps for many short transactions or lone statements.

    A transaction or statement on it skips the pool's checkout and return
    (about 0.07 ms of Python each on SQLite, and on PostgreSQL the pre-ping's
    and the reset's round trips: a small write is a few milliseconds). Used by
    one thread at a time (the caller's :attr:`lock` or the writers' turn).
    After any error in :meth:`use` it is closed, and the next use opens a new
    one; a forked child opens its own.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self._conn: tuple[int, Connection] | None = None  # (pid, connection)

    @contextmanager
    def use(self) -> Iterator[Connection]:
        """The kept connection, opened if need be; closed for good if the block raises."""
        if self._conn is None or self._conn[0] != os.getpid() or self._conn[1].invalidated:
            self._conn = (os.getpid(), self.engine.connect())
        try:
            yield self._conn[1]
        except BaseException:
            self.drop(failed=True)
            raise

    def drop(self, *, failed: bool = False) -> None:
        """Close the kept connection (``failed``: discard it, not back to the pool; a forked child's is only forgotten)."""
        kept, self._conn = self._conn, None
        if kept is not None and kept[0] == os.getpid():
            with suppress(SQLAlchemyError):
                if failed:
                    kept[1].invalidate()
                kept[1].close()

    def run(self, statement: Prepared, params: Mapping[str, Any]) -> list[Any]:
        """``statement.run`` on the kept connection; once more on a new one if the server dropped the old one.

        A SQLite connection opened "immutable" (read-only media) is not kept: the
        next read opens as the pool would, so a writer's commits are seen once one starts.
        """
        try:
            return self._run(statement, params, retry=True)
        except _Lost:
            return self._run(statement, params, retry=False)

    def _run(self, statement: Prepared, params: Mapping[str, Any], *, retry: bool) -> list[Any]:
        """One try; with ``retry``, :class:`_Lost` if the dialect says the driver's error was a disconnect."""
        with self.use() as conn:
            dbapi = conn.connection.dbapi_connection
            try:
                rows = statement.run(conn, params)
            except DBAPIError as exc:
                if retry and self.engine.dialect.is_disconnect(exc.orig, dbapi, None):  # type: ignore[arg-type]
                    raise _Lost from exc
                raise
            if conn.info.get("immutable"):
                self.drop()
            return rows


class _Lost(Exception):
    """The kept connection was gone (a server restart, a closed handle); it has been dropped."""
