"""What the pages share: the request context a view gets, the page table's entries, and the template filters."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse

from ..core.errors import CatalogError, NotFoundError, ValidationError
from ..core.fs import CHUNK
from ..core.store import Catalog
from ..core.text import human_size
from ..core.vocabulary import ROLES
from .auth import Caller
from .params import Params


@dataclass
class Context:
    """One authenticated request, handed to a view: its caller, parameters and the catalog acting as the caller."""

    request: Request
    caller: Caller
    params: Params
    catalog: Catalog
    api: bool
    path: dict[str, str] = field(default_factory=dict)


#: API parameter names as the web's forms and query strings call them.
FIELD_NAMES = {"artifact_type": "type", "as_of": "as_of"}

#: What a view returns when it does not answer itself: (template, JSON data, extra template context).
Page = tuple[str, Mapping[str, Any], Mapping[str, Any]]


@dataclass(frozen=True)
class Spec:
    """One page: its path (the API's is ``/api`` + path), view, method, roles allowed and parameters taken."""

    path: str
    view: Callable[[Context], Any]
    method: str = "GET"
    roles: tuple[str, ...] = ROLES
    params: tuple[str, ...] = ()
    html_only: bool = False


def error_message(error: CatalogError) -> str:
    """An API error as the web words it: form field names for parameters, and the next step if there is one."""
    text = error.render(lambda name: FIELD_NAMES.get(name, name))
    return text + (f" (next step: {error.remedy.value})" if error.remedy is not None else "")


def redirect(url: str) -> RedirectResponse:
    """303 See Other to ``url`` (after a form's POST)."""
    return RedirectResponse(url, status_code=303)


def store_path(text: str) -> str:
    """A catalog path from a URL: at most 512 characters, no NUL or control character, relative."""
    if len(text) > 512 or not text.isprintable():
        raise ValidationError("an artifact path is at most 512 printable characters", value=text[:80])
    if text.startswith("/") or ".." in PurePosixPath(text).parts:
        raise NotFoundError(f"no artifact at {text[:200]} in the catalog")
    return text


def file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    """A binary file's bytes in chunks for a streamed answer; the file is closed after the last (or on abandon)."""
    try:
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()


def size(value: int | None) -> str:
    """A size in bytes for people (empty for none)."""
    return "" if value is None else human_size(value)


def readable(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An event's details as (label, text) pairs for people: nested values as compact JSON, null as a dash."""
    pairs = []
    for key, value in details.items():
        if value is None:
            text = "—"
        elif isinstance(value, str):
            text = value
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, int | float):
            text = str(value)
        else:
            text = json.dumps(value, sort_keys=True, separators=(", ", ": "))
        pairs.append((key.replace("_", " "), text))
    return pairs


def when(text: str | None) -> str:
    """An ISO-8601 UTC time as people read it: ``2024-01-15 10:30:00 UTC`` (microseconds dropped)."""
    if not text:
        return ""
    return text.replace("T", " ").split(".")[0].rstrip("Z") + " UTC"


def with_query(params: Mapping[str, Any], **changes: Any) -> str:
    """A query string of ``params`` with ``changes`` (None drops a key; a tuple repeats it)."""
    merged = {**params, **changes}
    pairs = [(k, v) for k, vs in merged.items() if vs is not None
             for v in (vs if isinstance(vs, tuple | list) else (vs,)) if v is not None and v != ""]  # fmt: skip
    return urlencode(pairs)


FILTERS: dict[str, Callable[..., Any]] = {"size": size, "readable": readable, "when": when}
