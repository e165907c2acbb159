"""Query and form parameters of the web view, checked before any API call.

Every page names the parameters it takes; anything else, a parameter given
twice where one is meant, text with control characters, text longer than its
limit, a time that is not ISO-8601, a choice outside its closed set or a JSON
value of the wrong kind (a flag takes true or false, the rest text) is a
:class:`~catalog.core.errors.ValidationError` naming the parameter (a 400
answer), and nothing is read or written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from ..core.errors import Param, ValidationError
from ..core.formats import parse_time
from ..ops.policy import plain_text

#: Most values a repeatable parameter may carry.
MAX_VALUES = 32
#: Largest request body the web view reads (a form or a JSON document), bytes.
MAX_BODY = 64 * 1024
#: What an empty JSON list stands for among a field's values (a tuple: JSON never gives one).
EMPTY_LIST: tuple[()] = ()


class Params:
    """The parameters of one request: ``name -> [values]`` (query string, form or JSON body).

    A value is text (query string, form), or a JSON value as :func:`_json_pairs` gives it. Only the names in
    ``allowed`` are taken (ValidationError naming the first other one); each accessor then checks the values of
    its name: :meth:`flag` takes text or a JSON boolean, every other accessor text (a JSON whole number as its
    digits), and refuses any other JSON value with "NAME must be text".
    """

    def __init__(self, pairs: Iterable[tuple[str, Any]], allowed: Iterable[str]) -> None:
        self._values: dict[str, list[Any]] = {}
        known = set(allowed)
        for name, value in pairs:
            if name not in known:
                shown = name[:40].encode("unicode_escape").decode("ascii")
                raise ValidationError(f"unknown parameter {shown!r}; this page takes: {', '.join(sorted(known)) or 'none'}")
            self._values.setdefault(name, []).append(value)

    def _texts(self, name: str) -> list[str]:
        """The values of ``name`` as text (an empty JSON list gives none); ValidationError for another JSON value."""
        texts = []
        for value in self._values.get(name, []):
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if value == EMPTY_LIST:
                continue
            if not isinstance(value, str):
                raise ValidationError(Param(name), " must be text", value=value)
            texts.append(value)
        return texts

    def text(self, name: str, limit: int = 512) -> str | None:
        """One value, stripped; None if absent or empty. Refused: given twice, too long, control characters."""
        values = self._texts(name)
        if len(values) > 1:
            raise ValidationError(Param(name), " is given more than once", value=values)
        if not values or not values[0].strip():
            return None
        value = values[0].strip()
        if len(value) > limit:
            raise ValidationError(Param(name), f" is longer than {limit} characters", value=value[:80])
        if not plain_text(value):
            raise ValidationError(Param(name), " contains control characters", value=value[:80])
        return value

    def many(self, name: str, choices: Iterable[str]) -> tuple[str, ...]:
        """Every value given (empty ones dropped), each one of ``choices``; ValidationError naming them."""
        allowed = tuple(choices)
        values = [v.strip() for v in self._texts(name) if v.strip()]
        if len(values) > MAX_VALUES:
            raise ValidationError(Param(name), f" is given more than {MAX_VALUES} times")
        for value in values:
            if value not in allowed:
                shown = value[:40].encode("unicode_escape").decode("ascii")
                raise ValidationError(f"unknown {name} {shown!r}; choose one of: {', '.join(allowed)}", value=value)
        return tuple(dict.fromkeys(values))

    def choice(self, name: str, choices: Iterable[str], default: str | None = None) -> str | None:
        """One value among ``choices`` (``default`` if absent)."""
        found = self.many(name, choices)
        if len(found) > 1:
            raise ValidationError(Param(name), " is given more than once")
        return found[0] if found else default

    def time(self, name: str) -> datetime | None:
        """An ISO-8601 date or time (no zone: UTC), or None."""
        value = self.text(name, 64)
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValidationError as exc:
            raise ValidationError(Param(name), f": {exc}", value=value) from None

    def whole(self, name: str, low: int, high: int, default: int | None = None) -> int | None:
        """A whole number of ASCII digits from ``low`` to ``high`` (``default`` if absent)."""
        value = self.text(name, 64)
        if value is None:
            return default
        if not (value.isascii() and value.isdigit()) or len(value) > 20 or not low <= int(value) <= high:
            raise ValidationError(Param(name), f" must be a whole number from {low} to {high}", value=value)
        return int(value)

    def flag(self, name: str) -> bool:
        """A check box: true for ``1``, ``on``, ``true`` or ``yes``; false for ``0``, ``off``, ``false``, ``no``,
        empty or absent. A JSON body may also give ``true`` or ``false`` (or the numbers 1 and 0).

        Refused (ValidationError): given twice; other text ("NAME must be 1 or 0"); any other JSON value (another
        number, a list, an object: "NAME must be true or false").
        """
        values = self._values.get(name, [])
        if len(values) > 1:
            raise ValidationError(Param(name), " is given more than once", value=values)
        value = values[0] if values else None
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return value == 1
        if value is not None and not isinstance(value, str):
            raise ValidationError(Param(name), " must be true or false", value=value)
        text = self.text(name, 8)
        if text is None or text.lower() in ("0", "off", "false", "no"):
            return False
        if text.lower() in ("1", "on", "true", "yes"):
            return True
        raise ValidationError(Param(name), " must be 1 or 0", value=text)


async def read_params(request: Request, allowed: tuple[str, ...]) -> Params:
    """The request's parameters: the query string, plus on POST a form (``application/x-www-form-urlencoded``,
    what browsers send) or a JSON object (programs).

    Raises ValidationError for a body over :data:`MAX_BODY` bytes, another kind of body, or any parameter
    :class:`Params` refuses; InputError (through UnicodeError) for a body that is not UTF-8.
    """
    pairs: list[tuple[str, Any]] = list(request.query_params.multi_items())
    if request.method == "POST":
        body = await _body(request)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            pairs += _json_pairs(body)
        elif kind in ("application/x-www-form-urlencoded", ""):
            try:
                pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
            except ValueError as exc:  # more fields than that
                raise ValidationError(f"the form is malformed: {exc}") from None
        else:
            raise ValidationError(f"send a form (application/x-www-form-urlencoded) or JSON, not {kind[:60]!r}")
    return Params(pairs, allowed)


def _json_pairs(body: bytes) -> list[tuple[str, Any]]:
    """The fields of a JSON object body as ``(name, JSON value)``: a list value repeats its field (an empty list is
    one :data:`EMPTY_LIST`: no value for text, refused for a flag); null is absent. ValidationError for a body
    that is not a JSON object."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        raise ValidationError("the request body is not JSON") from None
    if not isinstance(data, Mapping):
        raise ValidationError("the request body must be a JSON object")
    return [(k, v) for k, values in data.items()
            for v in ((values or [EMPTY_LIST]) if isinstance(values, list) else [values]) if v is not None]  # fmt: skip


async def _body(request: Request) -> bytes:
    """The body, read no further than :data:`MAX_BODY` bytes (a larger declared length is refused unread)."""
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_BODY:
        raise ValidationError(f"the request body must be at most {MAX_BODY} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ValidationError(f"the request body must be at most {MAX_BODY} bytes")
    return body
