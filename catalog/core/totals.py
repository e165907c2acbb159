"""Exact byte totals in SQL, on both backends, however large.

A size is a BIGINT (at most 2^63 − 1 bytes), and a total of sizes can pass
that: two sparse files of 2^62 bytes adopted by ``reconcile`` already do.
PostgreSQL's ``sum(bigint)`` is ``numeric`` (exact); SQLite's ``sum()`` of
integers fails with "integer overflow" past 2^63 − 1 (and its ``total()`` is a
float, so inexact past 2^53). :func:`total_rows` runs the plain ``SUM`` and
only on that overflow sums each size's high and low 32 bits apart (each
partial sum far inside BIGINT for fewer than 2^31 rows) and adds them in
Python: the total is an exact ``int`` either way, and the common case costs
nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Select, func
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement

_SPLIT = 2**32


def total_rows(
    conn: Connection, size: ColumnElement[Any], query_of: Callable[[Sequence[ColumnElement[Any]]], Select[Any]],
) -> list[tuple[Any, ...]]:  # fmt: skip
    """The rows of ``query_of(sums)``, whose select ends with ``*sums`` (the SQL for the total of ``size``, a column
    of non-negative byte counts), each row with its last value the exact total as an ``int`` (0 for no rows)."""
    try:
        return [(*row[:-1], int(row[-1])) for row in conn.execute(query_of([func.coalesce(func.sum(size), 0)]))]
    except OperationalError as exc:
        if "integer overflow" not in str(exc.orig):  # SQLite's sum() past 2^63 - 1; anything else is not ours
            raise
    high, low = (func.coalesce(func.sum(part), 0) for part in split_bytes(size))
    return [(*row[:-2], join_bytes(*row[-2:])) for row in conn.execute(query_of([high, low]))]


def split_bytes(size: ColumnElement[Any]) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """A non-negative BIGINT column's high and low 32 bits (sum each, then :func:`join_bytes` the sums)."""
    return size // _SPLIT, size % _SPLIT


def join_bytes(high: Any, low: Any) -> int:
    """The exact total whose high and low 32-bit parts summed to ``high`` and ``low``."""
    return int(high) * _SPLIT + int(low)
