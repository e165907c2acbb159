"""Statements of the write path, compiled once per dialect and run on the driver's own cursor.

A SQLAlchemy ``Connection.execute`` of a cached Core statement still costs
about 0.1 ms of Python per statement (execution context, parameter
processing, result metadata); a single small write runs eight of them, which
was most of what separated it from the physical floor (issue 17). A
:class:`Prepared` statement is compiled by SQLAlchemy once per dialect (the
same SQL text, the same type processing: :class:`~catalog.core.schema.UTCDateTime`
and the driver's date format) and then runs on the DBAPI cursor of the
connection's transaction, with SQLAlchemy's own bind processors applied to
its parameters. Driver errors are wrapped as SQLAlchemy wraps them
(:class:`sqlalchemy.exc.IntegrityError` for a violated constraint, and so
on), so callers see no difference.

While anything listens to ``before_cursor_execute`` on the connection (tests
that watch every statement), the statement goes through
``Connection.exec_driver_sql`` instead: same text, same parameters, and the
listeners see it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Insert, bindparam
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

#: Each parameter in the statement's order: its name, its bind processor (or None), the value the statement fixes
#: itself (or :data:`_GIVEN`: the caller gives it).
_Plan = tuple[tuple[str, Callable[[Any], Any] | None, Any], ...]
# (SQL text, the parameters' plan, positional?)
_Compiled = tuple[str, _Plan, bool]
_GIVEN = object()


class Prepared:
    """A Core statement compiled once per dialect and driver (``keys``: the columns an INSERT or UPDATE sets).

    :meth:`run` executes it inside the connection's transaction and returns
    its rows as the driver returns them (tuples; none for a statement without
    RETURNING). Results that need type processing (times) are the caller's
    (:meth:`column`).
    """

    def __init__(self, statement: ClauseElement, keys: Sequence[str] | None = None) -> None:
        self._statement = statement
        self._keys = list(keys) if keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, conn: Connection) -> _Compiled:
        dialect = conn.dialect
        key = f"{dialect.name}+{dialect.driver}"  # the driver decides the parameter style and the casts
        found = self._compiled.get(key)
        if found is None:
            compiled = cast(SQLCompiler, self._statement.compile(dialect=dialect, column_keys=self._keys))
            names = tuple(compiled.positiontup or compiled.bind_names.values())
            fixed = {name: bind.effective_value for bind, name in compiled.bind_names.items() if not bind.required}
            processors = cast(dict[str, Callable[[Any], Any]], compiled._bind_processors)
            plan = tuple((name, processors.get(name), fixed.get(name, _GIVEN)) for name in names)
            found = (compiled.string, plan, bool(compiled.positional))
            self._compiled[key] = found
        return found

    def run(self, conn: Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] = {}) -> list[Any]:  # noqa: B006
        """Execute with ``params`` (a sequence of them: executemany); returns the rows it returns.

        Raises what SQLAlchemy's execute raises for a driver error (its
        :class:`~sqlalchemy.exc.DBAPIError` subclasses).
        """
        sql, plan, positional = self._for(conn)
        many = not isinstance(params, Mapping)
        if isinstance(params, Mapping):
            rows: Any = self._bind(params, plan, positional)
        else:
            rows = [self._bind(p, plan, positional) for p in params]
        if conn.dispatch.before_cursor_execute:  # someone watches every statement: let SQLAlchemy run it
            result = conn.exec_driver_sql(sql, rows)
            return list(result.all()) if result.returns_rows else []
        dbapi = conn.dialect.loaded_dbapi
        try:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            if many:
                cursor.executemany(sql, rows)
            else:
                cursor.execute(sql, rows)
        except dbapi.Error as exc:
            raise DBAPIError.instance(sql, rows, exc, dbapi.Error, dialect=conn.dialect) from exc
        return list(cursor.fetchall()) if cursor.description is not None else []

    @staticmethod
    def _bind(params: Mapping[str, Any], plan: _Plan, positional: bool) -> Any:
        """The driver's parameters: a tuple in the statement's order, or a dict by name (KeyError for one not given)."""
        values = []
        for name, process, fixed in plan:
            value = params[name] if fixed is _GIVEN or name in params else fixed
            values.append(value if process is None else process(value))
        return tuple(values) if positional else dict(zip((name for name, _, _ in plan), values))

    @staticmethod
    def column(conn: Connection, type_: Any) -> Callable[[Any], Any]:
        """The function turning a raw value of a column of ``type_`` into what SQLAlchemy would return."""
        process = type_._cached_result_processor(conn.dialect, None)
        return process if process is not None else (lambda value: value)


class PreparedInsert:
    """A multi-row ``insert`` (an ``INSERT … RETURNING`` of a table, its ``keys`` columns set per row), compiled once
    per row count as ``VALUES (…), (…) …`` and run as :class:`Prepared` (SQLAlchemy's own "insertmanyvalues" costs
    about 0.1 ms of Python a row).

    :meth:`run` sends at most :attr:`CHUNK` rows a statement, so at most that
    many statements are ever compiled, each well under SQLite's 999 parameters.
    """

    CHUNK = 16

    def __init__(self, insert: Insert, keys: Sequence[str]) -> None:
        self._insert, self._keys = insert, tuple(keys)
        self._by_count: dict[int, tuple[Prepared, list[list[tuple[str, str]]]]] = {}  # with each row's (bind, key)s

    def run(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Insert ``rows`` (each a mapping with every key); returns the rows RETURNING gives, in no particular order."""
        out: list[Any] = []
        for start in range(0, len(rows), self.CHUNK):
            chunk = rows[start:start + self.CHUNK]
            found = self._by_count.get(len(chunk))
            if found is None:
                columns = self._insert.table.c
                binds = [[(f"{k}_{n}" if n else k, k) for k in self._keys] for n in range(len(chunk))]  # row 0: the keys
                values = [{k: bindparam(bind, type_=columns[k].type) for bind, k in row} for row in binds]
                found = self._by_count[len(chunk)] = (Prepared(self._insert.values(values)), binds)
            statement, binds = found
            params = chunk[0] if len(chunk) == 1 else {bind: row[k] for row, names in zip(chunk, binds) for bind, k in names}
            out += statement.run(conn, params)
        return out
