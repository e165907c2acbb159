"""The pages: each a view over the Python API (never SQL of its own), served as HTML and as JSON under ``/api``.

The JSON of each page is what the matching CLI command prints with
``--format json``: ``/api/artifacts`` as ``ls`` (``artifacts``, ``count``,
``next_after``), ``/api/artifacts/PATH`` as ``show`` (plus ``pair``, ``holds``
and ``verifications``), ``/api/audit`` as ``audit log`` (plus ``next_after``),
``/api/holds`` as ``hold ls``, ``/api/`` as ``status``, ``/api/retention`` as
``retention plan`` (one keyset page, plus ``--summary``'s totals, ``now`` and
``next_after``), ``/api/verify`` as ``verify history`` and ``findings ls``.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import PurePosixPath
from typing import IO, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..core.errors import ValidationError
from ..core.formats import format_time, write_batches
from ..core.fs import CHUNK
from ..core.vocabulary import ACTIONS, EXTS, SORTS, STATUSES, TYPES
from ..ops.exports import EVENT_FIELDS, PLAN_FIELDS, event_log_batches, plan_batches
from ..ops.findings import open_findings
from ..ops.operations import status
from ..ops.policy import active_holds, add_hold, holds, release_hold
from ..ops.query import ArtifactQuery, EventQuery, Listing, iter_event_log, pair_partner, show
from ..ops.read import copy_verified
from ..ops.retention import plan
from ..ops.retention_summary import plan_summary
from ..ops.users import list_users
from ..ops.verify import artifact_results, history
from .evidence import proof_summary
from .params import Params, read_params
from .views import Context, Page, Spec, error_message, file_chunks, redirect, store_path, with_query

#: Rows per page unless asked otherwise, and the most one page may hold.
PAGE_ROWS, MAX_ROWS = 50, 1000
SPOOL = 8 * 2**20  # bytes of a download or export kept in memory before it spills to a temporary file


def healthz(request: Request) -> Response:
    """For load balancers: 200 ``{"status": "ok"}``; needs no account and tells nothing about the store."""
    return JSONResponse({"status": "ok"})


async def login(web: Any, request: Request) -> Response:
    """GET: the login form (with a pre-session CSRF token). POST: check name and secret, start a session.

    GET takes ``next``; POST ``name``, ``secret``, ``next`` and ``csrf``. Answers: the form (200); after a
    login, 303 to ``next`` (``/`` unless it is a same-site path: :func:`_safe_next`); 401 the form again for a
    wrong name or secret; 403 for a missing or wrong CSRF token; 400 the form with one message for a parameter
    :class:`Params` refuses (unknown, given twice, too long, control characters), checked before the
    credentials, so nothing is started.
    """
    from starlette.concurrency import run_in_threadpool

    from .auth import csrf_ok

    try:
        if request.method == "GET":
            params = Params(request.query_params.multi_items(), ("next",))
            return _login_form(web, request, None, _safe_next(params.text("next")))
        params = await read_params(request, ("name", "secret", "next", "csrf"))
        if not csrf_ok(request.session, params.text("csrf", 128)):
            return web.error(request, False, 403, "the login form has expired: reload the page and log in again")
        target = _safe_next(params.text("next"))
        name, secret = params.text("name", 64) or "", params.text("secret", 256) or ""
        user = await run_in_threadpool(web.gate.login, request.session, name, secret)
    except ValidationError as exc:
        return _login_form(web, request, error_message(exc), "/", 400)
    except Exception as exc:
        return web.failure(request, False, exc)
    if user is None:
        return _login_form(web, request, "wrong name or secret", target, 401)
    return redirect(target)


def _login_form(web: Any, request: Request, error: str | None, target: str, status: int = 200) -> Response:
    """The login page (``error`` shown above the form), posted with the session's pre-session CSRF token."""
    request.session.setdefault("csrf", secrets.token_urlsafe(32))
    return web.page(request, "login.html", {"error": error, "next": target}, status)


async def logout(web: Any, request: Request) -> Response:
    """End the session in this browser (the form carries its CSRF token), back to the login page.

    The cookie is cleared; the server keeps no list of sessions, so a copy of the cookie taken before stays valid
    until it expires, its account is removed, or the web key changes (README, "The evidence room")."""
    from .auth import csrf_ok

    try:
        params = await read_params(request, ("csrf",))
    except Exception as exc:
        return web.failure(request, False, exc)
    if not csrf_ok(request.session, params.text("csrf", 128)):
        return web.error(request, False, 403, "the form's CSRF token is missing or wrong: reload the page")
    request.session.clear()
    return redirect("/login")


def _safe_next(target: str | None) -> str:
    """A same-site path to go to after logging in: anything else (another host, a scheme) becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# -- the dashboard --------------------------------------------------------------------------------


def dashboard(ctx: Context) -> Page:
    """What needs a person (the findings of ``status``), the last verify and checkpoint, limits, pending intents."""
    result = status(ctx.catalog)
    attention = [a.message + (f" (next step: {a.remedy.value})" if a.remedy else "") for a in result.attention]
    return "dashboard.html", {**result.to_dict(), "attention": attention}, {}


# -- artifacts ------------------------------------------------------------------------------------

ARTIFACT_PARAMS = ("type", "prefix", "status", "ext", "since", "until", "as_of", "sort", "after", "limit")


def _artifact_query(p: Params) -> ArtifactQuery:
    return ArtifactQuery(types=p.many("type", TYPES), prefix=p.text("prefix", 256), statuses=p.many("status", STATUSES),
                         since=p.time("since"), until=p.time("until"), sort=p.choice("sort", SORTS, "newest") or "newest",
                         after=p.text("after"), limit=p.whole("limit", 1, MAX_ROWS, PAGE_ROWS), as_of=p.time("as_of"),
                         exts=p.many("ext", EXTS))  # fmt: skip


def artifacts(ctx: Context) -> Page:
    """Artifacts by type, prefix, status, extension, creation window and as of a moment; keyset pages."""
    query = _artifact_query(ctx.params)
    listing = Listing(ctx.catalog, query)
    rows = [record.to_dict() for record in listing]
    data = {"artifacts": rows, "count": len(rows), "next_after": listing.next_after}
    shown = {name: getattr(query, attr) for name, attr in (
        ("type", "types"), ("prefix", "prefix"), ("status", "statuses"), ("ext", "exts"), ("sort", "sort"),
        ("limit", "limit"))}  # fmt: skip
    shown.update({name: ctx.params.text(name, 64) for name in ("since", "until", "as_of")})
    next_page = with_query(shown, after=listing.next_after) if listing.next_after else None
    return "artifacts.html", data, {"query": shown, "next_page": next_page, "types": TYPES, "statuses": STATUSES,
                                    "exts": EXTS, "sorts": tuple(SORTS)}  # fmt: skip


def artifact(ctx: Context) -> Page:
    """One artifact: its row, its file now, its events, its pair, the holds covering it, its verifications."""
    found = show(ctx.catalog, store_path(ctx.path["path"]))
    record = found.record
    partner = pair_partner(ctx.catalog, record)
    held = active_holds(ctx.catalog).covering(record)
    data = {**found.to_dict(), "pair": partner.to_dict() if partner else None, "holds": [h.to_dict() for h in held],
            "verifications": artifact_results(ctx.catalog, record.id), "proof": proof_summary(ctx.catalog, record.path)}  # fmt: skip
    return "artifact.html", data, {}


def download(ctx: Context) -> Response:
    """The artifact's bytes, sent only after their SHA-256 matched the catalog (409 and nothing sent otherwise)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)
    try:
        record = copy_verified(ctx.catalog, store_path(ctx.path["path"]), spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    name = PurePosixPath(record.path).name
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-Content-SHA256": record.sha256,
               "Content-Length": str(record.size)}  # fmt: skip
    return StreamingResponse(file_chunks(spool), media_type="application/octet-stream", headers=headers)


# -- the audit log --------------------------------------------------------------------------------

#: The audit log's filters; the page adds its keyset paging (``after``, ``limit``), an export (whole) its ``format``.
AUDIT_FILTERS = ("action", "actor", "path", "since", "until")
AUDIT_PARAMS = AUDIT_FILTERS + ("after", "limit")
AUDIT_EXPORT_PARAMS = AUDIT_FILTERS + ("format",)


def _event_query(p: Params, paged: bool) -> EventQuery:
    return EventQuery(since=p.time("since"), until=p.time("until"), actions=p.many("action", ACTIONS),
                      path=p.text("path"), actor=p.text("actor"), after=p.whole("after", 0, 2**62) if paged else None,
                      limit=p.whole("limit", 1, MAX_ROWS, PAGE_ROWS) if paged else None)  # fmt: skip


def audit(ctx: Context) -> Page:
    """Events by action, actor, path and time window, oldest first, in keyset pages (``after`` a seq)."""
    query = _event_query(ctx.params, paged=True)
    rows = [event.to_dict() for event in iter_event_log(ctx.catalog, query)]
    next_after = rows[-1]["seq"] if query.limit is not None and len(rows) == query.limit else None
    data = {"events": rows, "count": len(rows), "next_after": next_after}
    shown: dict[str, Any] = {name: ctx.params.text(name) for name in ("actor", "path", "since", "until")}
    shown.update(action=query.actions, limit=query.limit)
    return "audit.html", data, {"actions": ACTIONS, "query": shown, "filters": with_query(shown, limit=None),
                                "next_page": with_query(shown, after=next_after) if next_after else None}  # fmt: skip


def audit_export(ctx: Context) -> Response:
    """The whole filtered view (no page limit) as a CSV or JSON file: the bytes ``audit log --format`` writes for the
    same filters (the one export code: :func:`catalog.ops.exports.event_log_batches`, no record built per row).

    Takes :data:`AUDIT_EXPORT_PARAMS`: the page's paging (``after``, ``limit``) is refused (400), never ignored.
    """
    fmt = ctx.params.choice("format", ("csv", "json"), "json") or "json"
    batches = event_log_batches(ctx.catalog, _event_query(ctx.params, paged=False), details_text=fmt == "csv")
    return _export(batches, EVENT_FIELDS, fmt, "events", "audit")


def _export(batches: Iterable[Sequence[Sequence[Any]]], fields: Sequence[str], fmt: str, key: str, name: str) -> Response:
    """A listing's batches written as ``fmt`` (csv or json) by :func:`write_batches` and sent as ``name-<time>.fmt``."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL, mode="w+", encoding="utf-8", newline="")
    try:
        write_batches(batches, fields, fmt, spool, key=key)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    headers = {"Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt}"'}
    return StreamingResponse(_text_chunks(spool), media_type=media, headers=headers)


def _text_chunks(handle: IO[str]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK):
            yield chunk.encode("utf-8")
    finally:
        handle.close()


# -- holds ----------------------------------------------------------------------------------------


def holds_page(ctx: Context) -> Page:
    """Legal holds (active ones, or every one with ``all``) and how many artifacts on disk each covers now."""
    found = holds(ctx.catalog, ctx.params.flag("all"), count=True)
    rows = [h.to_dict() for h in found]
    placed = ctx.params.whole("placed", 1, 2**62)
    released = ctx.params.whole("released", 1, 2**62)
    return "holds.html", {"holds": rows, "count": len(rows)}, {"types": TYPES, "placed": placed, "released": released,
                                                               "all": ctx.params.flag("all")}  # fmt: skip


def hold_place(ctx: Context) -> Page | Response:
    """Place a hold on one artifact (path), a prefix or a type, optionally for a creation window, with a reason."""
    p = ctx.params
    placed = add_hold(ctx.catalog, path=p.text("path"), prefix=p.text("prefix", 256), artifact_type=p.choice("type", TYPES),
                      since=p.time("since"), until=p.time("until"), reason=p.text("reason", 1000) or "")  # fmt: skip
    if not ctx.api:
        return redirect(f"/holds?placed={placed.id}")
    return "", {"holds": [placed.to_dict()], "count": 1}, {}


def hold_release(ctx: Context) -> Page | Response:
    """Release a hold, with a reason."""
    hold_id = Params([("hold", ctx.path["hold_id"])], ("hold",)).whole("hold", 1, 2**62)
    assert hold_id is not None
    release_hold(ctx.catalog, hold_id, ctx.params.text("reason", 1000) or "")
    if not ctx.api:
        return redirect(f"/holds?released={hold_id}")
    return "", {"released": hold_id}, {}


# -- retention, verification, accounts -------------------------------------------------------------


RETENTION_PARAMS = ("days", "type", "after", "limit")


def _plan_filters(p: Params) -> tuple[int, datetime, tuple[str, ...]]:
    """(days, the moment planned for: now + days, types) of a retention request."""
    days = p.whole("days", 0, 3660, 30) or 0
    return days, datetime.now(timezone.utc) + timedelta(days=days), p.many("type", TYPES)


def retention(ctx: Context) -> Page:
    """What is past its retention ``days`` from now (default 30): its totals, and one keyset page of the plan.

    JSON: ``{"now": moment planned for (ISO-8601 UTC), "summary": [{type, action, reason, count, size}] (as
    ``retention plan --summary``: every row of the plan, counted in the database), "plan": [rows as
    ``retention plan --format json``, at most ``limit`` (1 to 1000, default 50)], "count": rows in this page,
    "next_after": an artifact id to pass as ``after`` for the next page, or null on the last}``. The plan runs
    type by type, then oldest first (created_at, id); ``after`` continues just past that artifact's place, so
    pages neither skip nor repeat a row. The whole plan: ``/retention/export``.
    """
    p = ctx.params
    days, moment, types = _plan_filters(p)
    limit, after = p.whole("limit", 1, MAX_ROWS, PAGE_ROWS) or PAGE_ROWS, p.whole("after", 1, 2**62)
    found = list(islice(plan(ctx.catalog, now=moment, types=types, after=after, batch=limit + 1), limit + 1))
    next_after = found[limit - 1].record.id if len(found) > limit else None  # one row more: there is a next page
    rows = [row.to_dict() for row in found[:limit]]
    summary = [row.to_dict() for row in plan_summary(ctx.catalog, now=moment, types=types)]
    data = {"now": format_time(moment), "summary": summary, "plan": rows, "count": len(rows), "next_after": next_after}
    shown: dict[str, Any] = {"days": days, "type": types, "limit": limit}
    return "retention.html", data, {"query": shown, "types": TYPES, "filters": with_query(shown, limit=None),
                                    "next_page": with_query(shown, after=next_after) if next_after else None,
                                    "total": sum(row["count"] for row in summary), "first": after is None}  # fmt: skip


def retention_export(ctx: Context) -> Response:
    """The whole plan for ``days`` and ``type`` (no page limit) as a CSV or JSON file: the bytes ``retention plan
    --now <now + days> --format`` writes (the one export code: :func:`catalog.ops.exports.plan_batches`)."""
    _, moment, types = _plan_filters(ctx.params)
    fmt = ctx.params.choice("format", ("csv", "json"), "json") or "json"
    return _export(plan_batches(ctx.catalog, now=moment, types=types), PLAN_FIELDS, fmt, "plan", "retention")


def verify_page(ctx: Context) -> Page:
    """The recorded verify runs (newest first) and the open findings, with links to their artifacts."""
    runs = [run.to_dict() for run in history(ctx.catalog, ctx.params.whole("limit", 1, MAX_ROWS, PAGE_ROWS))]
    findings = [f.to_dict() for f in open_findings(ctx.catalog)]
    return "verify.html", {"runs": runs, "findings": findings, "count": len(runs)}, {}


def users_page(ctx: Context) -> Page:
    """The accounts and their roles (admin only; never a secret)."""
    rows = [u.to_dict() for u in list_users(ctx.catalog)]
    return "users.html", {"users": rows, "count": len(rows)}, {}


PAGES: tuple[Spec, ...] = (
    Spec("/", dashboard),
    Spec("/artifacts", artifacts, params=ARTIFACT_PARAMS),
    Spec("/artifacts/{path:path}", artifact),
    Spec("/download/{path:path}", download, html_only=True),
    Spec("/audit", audit, params=AUDIT_PARAMS),
    Spec("/audit/export", audit_export, params=AUDIT_EXPORT_PARAMS, html_only=True),
    Spec("/holds", holds_page, params=("all", "placed", "released")),
    Spec("/holds", hold_place, "POST", ("compliance",), ("path", "prefix", "type", "since", "until", "reason")),
    Spec("/holds/{hold_id}/release", hold_release, "POST", ("compliance",), ("reason",)),
    Spec("/retention", retention, params=RETENTION_PARAMS),
    Spec("/retention/export", retention_export, params=("days", "type", "format"), html_only=True),
    Spec("/verify", verify_page, params=("limit",)),
    Spec("/users", users_page, roles=("admin",)),
)
