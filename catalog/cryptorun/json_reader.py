"""Typed, located access to parsed JSON: each error says where in the document it is (``universe[3].score``).

Used by the scanner's report loaders; lenient mode accepts Go's ``null`` for
an empty list or object and notes it once per kind of quirk.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal, overload

from ..core.errors import ValidationError
from ..core.formats import check_unicode, keep_exact, parse_time


class Reader:
    """Typed access to one JSON object, with errors that say where."""

    def __init__(self, data: Any, where: str, lenient: bool, notes: list[str]) -> None:
        if not isinstance(data, dict):
            raise ValidationError(f"{where} must be an object, not {type(data).__name__}")
        self.data, self.where, self.lenient, self.notes = data, where, lenient, notes

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise ValidationError(f"{self.where}.{key} is missing")
        return self.data[key]

    def sub(self, key: str) -> Reader:
        """The object under ``key``, as a reader; ValidationError if missing or not an object."""
        return Reader(self._get(key), f"{self.where}.{key}", self.lenient, self.notes)

    def text(self, key: str) -> str:
        """The text under ``key`` (valid Unicode: no lone surrogate); ValidationError naming the place otherwise."""
        value = self._get(key)
        if not isinstance(value, str):
            raise ValidationError(f"{self.where}.{key} must be text, not {kind(value)}")
        return check_unicode(value, f"{self.where}.{key} is text")

    def number(self, key: str) -> float:
        """The finite number under ``key`` as a float (exact: see :func:`finite`); ValidationError otherwise."""
        return finite(self._get(key), f"{self.where}.{key}")

    def integer(self, key: str) -> int:
        """The whole number under ``key``; ValidationError otherwise (a float or boolean is refused)."""
        value = self._get(key)
        if type(value) is not int:
            raise ValidationError(f"{self.where}.{key} must be a whole number, not {kind(value)}")
        return value

    def boolean(self, key: str) -> bool:
        """The true/false under ``key``; ValidationError otherwise."""
        value = self._get(key)
        if not isinstance(value, bool):
            raise ValidationError(f"{self.where}.{key} must be true or false, not {kind(value)}")
        return value

    @overload
    def time(self, key: str, optional: Literal[False] = False) -> datetime: ...

    @overload
    def time(self, key: str, optional: bool) -> datetime | None: ...

    def time(self, key: str, optional: bool = False) -> datetime | None:
        """The ISO-8601 time under ``key`` as aware UTC (None if ``optional`` and absent); ValidationError otherwise."""
        value = self.data.get(key) if optional else self._get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise ValidationError(f"{self.where}.{key} must be an ISO-8601 time, not {kind(value)}")
        try:
            return parse_time(value)
        except ValidationError:
            raise ValidationError(f"{self.where}.{key}: {value[:40]!r} is not an ISO-8601 time") from None

    def items(self, key: str, optional: bool = False) -> list[Any]:
        """A list; Go's ``null`` for an empty list is accepted leniently (and noted)."""
        value = self.data.get(key) if optional else self._get(key)
        if value is None and (optional or self.lenient):
            if not optional:
                self.notes.append(f"null where a list belongs ({generic_where(self.where)}.{key})")
            return []
        if not isinstance(value, list):
            raise ValidationError(f"{self.where}.{key} must be a list, not {kind(value)}")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        """The object under ``key`` as a dict (Go's ``null`` as ``{}`` when lenient, noted); ValidationError otherwise."""
        value = self._get(key)
        if value is None and self.lenient:
            self.notes.append(f"null where an object belongs ({generic_where(self.where)}.{key})")
            return {}
        if not isinstance(value, dict):
            raise ValidationError(f"{self.where}.{key} must be an object, not {kind(value)}")
        return value


def kind(value: Any) -> str:
    """How a JSON value is named in an error: ``null`` or its Python type."""
    return "null" if value is None else type(value).__name__


def generic_where(where: str) -> str:
    """``universe[3].attribution`` -> ``universe[].attribution`` (one note per kind of quirk)."""
    return re.sub(r"\[\d+\]", "[]", where)


def finite(value: Any, where: str) -> float:
    """``value`` as a float, never rounded (a whole number beyond 2**53 stays that int: keep_exact).

    Raises ValidationError naming ``where`` unless it is a finite number (not a
    boolean) within the float range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{where} must be a number, not {kind(value)}")
    try:
        number = keep_exact(value)
    except OverflowError:
        raise ValidationError(f"{where} is out of range: a whole number of {len(str(abs(value)))} digits") from None
    if not math.isfinite(number):
        raise ValidationError(f"{where} is not a finite number ({value})")
    return number


def texts(values: list[Any], where: str) -> tuple[str, ...]:
    """``values`` as a tuple of text; ValidationError naming the first element that is not."""
    for n, value in enumerate(values):
        if not isinstance(value, str):
            raise ValidationError(f"{where}[{n}] must be text, not {kind(value)}")
        check_unicode(value, f"{where}[{n}] is text")
    return tuple(values)
