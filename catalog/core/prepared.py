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

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

# (SQL text, parameter names in order, positional?, bind processors, values the statement fixes itself)
_Compiled = tuple[str, tuple[str, ...], bool, tuple[tuple[str, Callable[[Any], Any]], ...], dict[str, Any]]


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
            found = (compiled.string, names, bool(compiled.positional),
                     tuple(cast(dict[str, Callable[[Any], Any]], compiled._bind_processors).items()), fixed)  # fmt: skip
            self._compiled[key] = found
        return found

    def run(self, conn: Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] = {}) -> list[Any]:  # noqa: B006
        """Execute with ``params`` (a sequence of them: executemany); returns the rows it returns.

        Raises what SQLAlchemy's execute raises for a driver error (its
        :class:`~sqlalchemy.exc.DBAPIError` subclasses).
        """
        sql, names, positional, processors, fixed = self._for(conn)
        many = not isinstance(params, Mapping)
        if isinstance(params, Mapping):
            rows: Any = self._bind(params, names, positional, processors, fixed)
        else:
            rows = [self._bind(p, names, positional, processors, fixed) for p in params]
        if conn.dispatch.before_cursor_execute:  # someone watches every statement: let SQLAlchemy run it
            result = conn.exec_driver_sql(sql, rows)
            return list(result.all()) if result.returns_rows else []
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        dbapi = conn.dialect.loaded_dbapi
        try:
            if many:
                cursor.executemany(sql, rows)
            else:
                cursor.execute(sql, rows)
        except dbapi.Error as exc:
            raise DBAPIError.instance(sql, rows, exc, dbapi.Error, dialect=conn.dialect) from exc
        return list(cursor.fetchall()) if cursor.description is not None else []

    @staticmethod
    def _bind(params: Mapping[str, Any], names: tuple[str, ...], positional: bool,
              processors: tuple[tuple[str, Callable[[Any], Any]], ...], fixed: dict[str, Any]) -> Any:  # fmt: skip
        if fixed:
            params = {**fixed, **params}
        if processors:
            params = dict(params)
            for name, process in processors:
                if name in params:
                    params[name] = process(params[name])
        return tuple(params[name] for name in names) if positional else params

    @staticmethod
    def column(conn: Connection, type_: Any) -> Callable[[Any], Any]:
        """The function turning a raw value of a column of ``type_`` into what SQLAlchemy would return."""
        process = type_._cached_result_processor(conn.dialect, None)
        return process if process is not None else (lambda value: value)
