"""The web application: routes, the error boundary, sessions and security headers.

:func:`create_app` builds a Starlette application over one open
:class:`~catalog.core.store.Catalog`. Each page (:mod:`catalog.web.pages`) is
served twice: as HTML under its path and as JSON under ``/api`` + its path,
the JSON in the shape of the CLI's ``--format json``. Every route but
``/login``, ``/healthz`` and the stylesheet under ``/static`` needs an
account: without one a browser gets 401 with the login form, a program 401
with ``WWW-Authenticate: Bearer``; the wrong role gets 403. Errors go through
the CLI's translation (:func:`catalog.core.errors.translate`) and come back
as one message: a page, or ``{"error": …}`` (400 bad input, 404 not found,
409 bytes that no longer match, 503 the catalog or store unusable; anything
else is a 500 that says "internal error" and shows no traceback).
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import (
    CatalogDatabaseError,
    CatalogError,
    IntegrityError,
    NotFoundError,
    ProofError,
    StoreError,
    translate,
)
from ..core.settings import Settings
from ..core.store import Catalog
from ..core.vocabulary import ROLES
from . import evidence, pages, views
from .auth import Caller, Gate, csrf_ok, csrf_token, web_key
from .params import read_params
from .views import Context, error_message

HERE = Path(__file__).resolve().parent
log = logging.getLogger("catalog.web")

#: HTTP status of each kind of API error (the first match wins); any other CatalogError is bad input (400).
STATUS: tuple[tuple[type[CatalogError], int], ...] = (
    (NotFoundError, 404), (IntegrityError, 409), (ProofError, 409), (CatalogDatabaseError, 503), (StoreError, 503),
)  # fmt: skip
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                 b"frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]  # fmt: skip


@dataclass(frozen=True)
class WebSettings:
    """How the view is served: ``secure_cookies`` behind TLS; sessions last ``session_hours``."""

    secure_cookies: bool = False
    session_hours: int = 8


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response (no framing, no sniffing, nothing from elsewhere)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response's start."""
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Web:
    """The application's parts: the catalog, the gate, the templates."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.gate = Gate(catalog)
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                 undefined=jinja2.StrictUndefined)  # fmt: skip
        env.filters.update(views.FILTERS)
        self.templates = Jinja2Templates(env=env)

    def page(self, request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
        """A rendered page; the context gets the caller, the CSRF token and the roles."""
        caller = request.scope.get("catalog.caller")
        base = {"caller": caller, "csrf": csrf_token(request.session), "roles": ROLES, "path": request.url.path}
        return self.templates.TemplateResponse(request, template, {**base, **context}, status_code=status)

    def error(self, request: Request, api: bool, status: int, message: str) -> Response:
        """An error as a page or as ``{"error": message}``."""
        if api:
            headers = {"WWW-Authenticate": 'Bearer realm="catalog"'} if status == 401 else None
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        if status == 401:  # the login form, with the pre-session CSRF token it is posted with
            request.session.setdefault("csrf", secrets.token_urlsafe(32))
            return self.page(request, "login.html", {"error": message, "next": _next_of(request)}, status)
        return self.page(request, "error.html", {"status": status, "message": message}, status)

    def failure(self, request: Request, api: bool, exc: BaseException) -> Response:
        """An exception as an answer: a CatalogError (after translation) with its status, anything else a bare 500."""
        known = translate(exc)
        if known is None:
            log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
            return self.error(request, api, 500, f"internal error ({type(exc).__name__}); the server log has the details")
        status = next((code for kind, code in STATUS if isinstance(known, kind)), 400)
        return self.error(request, api, status, error_message(known))

    def caller(self, request: Request) -> Caller | None:
        """Who sent the request: bearer credentials if any are sent (and then only they), else the session."""
        header = request.headers.get("authorization")
        if header is not None:
            return self.gate.from_bearer(header)
        return self.gate.from_session(request.session)

    def endpoint(self, view: Callable[[Context], Any], *, as_json: bool, roles: tuple[str, ...],
                 allowed: tuple[str, ...], change: bool) -> Callable[[Request], Any]:  # fmt: skip
        """The ASGI endpoint of one view: authenticate, authorise, read parameters, check CSRF, run, answer."""

        async def handle(request: Request) -> Response:
            api = as_json or "authorization" in request.headers  # a program's call to a file route errs in JSON
            try:
                caller = await run_in_threadpool(self.caller, request)
                if caller is None:
                    return self.error(request, api, 401, "log in first: this page needs an account")
                request.scope["catalog.caller"] = caller
                if caller.user.role not in roles:
                    return self.error(request, api, 403, f"your role ({caller.user.role}) may not do this; it needs: "
                                      f"{' or '.join(roles)}")  # fmt: skip
                params = await read_params(request, allowed + (("csrf",) if change else ()))
                if change and caller.by_session and not csrf_ok(request.session, params.text("csrf", 128)):
                    return self.error(request, api, 403, "the form's CSRF token is missing or wrong: reload the page "
                                      "and submit it again")  # fmt: skip
                context = Context(request, caller, params, self.catalog.acting_as(caller.actor), api,
                                  dict(request.path_params))  # fmt: skip
                result = await run_in_threadpool(view, context)
            except Exception as exc:  # the web's error boundary: nothing reaches the browser raw
                return self.failure(request, api, exc)
            if isinstance(result, Response):
                return result
            template, data, extra = result
            if api:
                return JSONResponse(data, status_code=201 if change else 200)
            return self.page(request, template, {"data": data, **extra})

        return handle


def _next_of(request: Request) -> str:
    """Where to go after logging in: this request's path and query (same site only)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return quote(request.url.path + query, safe="/?=&%:._-~")


def create_app(settings: Settings, web: WebSettings = WebSettings(), *, catalog: Catalog | None = None) -> Starlette:
    """The web view of the store ``settings`` name (or of ``catalog``, already open: kept open, not closed).

    Opens the catalog (ConfigError, StoreError, SchemaError as :class:`Catalog`
    raises them) and reads or makes the web key (:func:`catalog.web.auth.web_key`).
    """
    owned = catalog is None
    store = Catalog(settings) if catalog is None else catalog
    try:
        key = web_key(store.base_dir)
    except BaseException:
        if owned:
            store.close()
        raise
    app_state = Web(store)
    routes: list[BaseRoute] = [
        Route("/healthz", pages.healthz, methods=["GET"]),
        Route("/login", functools.partial(pages.login, app_state), methods=["GET", "POST"]),
        Route("/logout", functools.partial(pages.logout, app_state), methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    for spec in pages.PAGES + evidence.PAGES:
        for api in (False, True):
            if spec.html_only and api:
                continue
            handler = app_state.endpoint(spec.view, as_json=api, roles=spec.roles, allowed=spec.params,
                                         change=spec.method == "POST")  # fmt: skip
            routes.append(Route(("/api" if api else "") + spec.path, handler, methods=[spec.method]))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if owned:
            store.close()

    middleware = [
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=key, session_cookie="catalog_session", max_age=web.session_hours * 3600,
                   same_site="strict", https_only=web.secure_cookies),  # fmt: skip
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={404: _not_found(app_state), 405: _not_allowed(app_state)})  # fmt: skip
    app.state.web = app_state
    return app


def _not_found(app_state: Web) -> Callable[[Request, Exception], Any]:
    def handler(request: Request, exc: Exception) -> Response:
        return app_state.error(request, request.url.path.startswith("/api/"), 404, "no such page")

    return handler


def _not_allowed(app_state: Web) -> Callable[[Request, Exception], Any]:
    def handler(request: Request, exc: Exception) -> Response:
        return app_state.error(request, request.url.path.startswith("/api/"), 405, f"{request.method} is not allowed here")

    return handler
