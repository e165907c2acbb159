"""The evidence room (issue 16): every route for anonymous, viewer, compliance and admin callers; CSRF; a hold
placed on the web protects in the next retention plan and names its web user; the JSON is the CLI's; hostile input
is a 4xx with a clear message and writes nothing."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e '.[web]')")

import warnings  # noqa: E402

from freezegun import freeze_time  # noqa: E402
from starlette.exceptions import StarletteDeprecationWarning  # noqa: E402

with warnings.catch_warnings():  # Starlette 1.x asks for httpx2 in its test client; httpx (the test extra) still works
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from test_exports import _event_cases, awkward_store  # noqa: E402

from catalog.core.errors import ConfigError  # noqa: E402
from catalog.core.records import EventRecord  # noqa: E402
from catalog.core.settings import Settings  # noqa: E402
from catalog.core.store import Catalog  # noqa: E402
from catalog.cryptorun.demo import make_report  # noqa: E402
from catalog.cryptorun.writer import AtomicWriter  # noqa: E402
from catalog.ops.policy import holds  # noqa: E402
from catalog.ops.retention import plan  # noqa: E402
from catalog.ops.users import add_user, remove_user, set_role  # noqa: E402
from catalog.web import create_app  # noqa: E402
from catalog.web.auth import web_key  # noqa: E402

from helpers import Cli  # noqa: E402

OLD = datetime(2020, 5, 1, tzinfo=timezone.utc)
ROLES = ("viewer", "compliance", "admin")


class Site:
    """The app over the test's store, its three accounts, and the records written for the pages."""

    def __init__(self, catalog: Catalog, settings: Settings, writer: AtomicWriter) -> None:
        self.catalog = catalog
        self.app = create_app(settings, catalog=catalog)
        with freeze_time(OLD):  # first: the log's clock never runs back, so this one is recorded in 2020
            self.old = writer.write_json("health", "old", {"n": 1})
        self.secrets = {role: add_user(catalog, f"{role}-1", role)[1] for role in ROLES}
        self.pair = writer.write_explain_report(make_report(3, seed=1), "scan")
        self.ledger = writer.write_json("ledger", "book", {"cash": 1})

    def client(self, role: str | None = None) -> TestClient:
        """A client logged in with ``role``'s account (a session cookie), or anonymous."""
        client = TestClient(self.app, follow_redirects=False)
        if role is not None:
            answer = client.post("/login", data={"name": f"{role}-1", "secret": self.secrets[role],
                                                 "csrf": csrf_of(client.get("/login").text), "next": "/"})  # fmt: skip
            assert answer.status_code == 303, answer.text
        return client

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {role}-1:{self.secrets[role]}"}

    def events(self) -> int:
        return sum(1 for _ in self.catalog.events())


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found[1]


@pytest.fixture
def site(catalog: Catalog, settings: Settings, writer: AtomicWriter, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.delenv("CRYPTORUN_WEB_SECRET", raising=False)
    yield Site(catalog, settings, writer)


@pytest.fixture
def clients(site: Site) -> dict[str | None, TestClient]:
    return {role: site.client(role) for role in (None, *ROLES)}


# -- every route, every caller ----------------------------------------------------------------------

READS = ["/", "/artifacts", "/artifacts/{ledger}", "/audit", "/holds", "/retention", "/verify"]
EVERYONE = {None: 401, "viewer": 200, "compliance": 200, "admin": 200}


def _routes(site: Site) -> list[tuple[str, str, dict[str | None, int]]]:
    paths = {"ledger": site.ledger.path}
    routes = [("GET", p.format(**paths), EVERYONE) for p in READS]
    routes += [("GET", "/api" + p.format(**paths), EVERYONE) for p in READS]
    routes += [("GET", f"/download/{site.ledger.path}", EVERYONE), ("GET", "/audit/export?format=csv", EVERYONE),
               ("GET", "/audit/export?format=json", EVERYONE)]  # fmt: skip
    admin_only = {None: 401, "viewer": 403, "compliance": 403, "admin": 200}
    routes += [("GET", "/users", admin_only), ("GET", "/api/users", admin_only)]
    return routes


def test_every_read_route_answers_each_caller_with_its_status(site: Site, clients: dict[str | None, TestClient]) -> None:
    for method, path, expected in _routes(site):
        for role, status in expected.items():
            answer = clients[role].request(method, path)
            assert answer.status_code == status, (method, path, role, answer.text[:300])
            if role is None:  # anonymous: a browser gets the login form, a program a bearer challenge
                if path.startswith("/api/"):
                    assert answer.json() == {"error": "log in first: this page needs an account"}
                    assert answer.headers["www-authenticate"] == 'Bearer realm="catalog"'
                else:
                    assert 'action="/login"' in answer.text
            if role is not None and path.startswith("/api/"):  # the same with bearer credentials, no cookie
                bare = TestClient(site.app).request(method, path, headers=site.bearer(role))
                assert bare.status_code == status, (method, path, role, "bearer")


def test_what_needs_no_account(site: Site) -> None:
    anonymous = TestClient(site.app)
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    assert anonymous.get("/login").status_code == 200
    assert anonymous.get("/static/style.css").status_code == 200
    assert anonymous.get("/no/such/page").status_code == 404


def test_changes_need_the_compliance_role(site: Site, clients: dict[str | None, TestClient]) -> None:
    for role, status in {None: 401, "viewer": 403, "admin": 403, "compliance": 303}.items():
        client = clients[role]
        token = csrf_of(client.get("/holds").text) if role else "x"
        answer = client.post("/holds", data={"prefix": f"p-{role}", "reason": "inquiry", "csrf": token})
        assert answer.status_code == status, (role, answer.text[:300])
    placed = list(holds(site.catalog))
    assert [h.selector for h in placed] == ["p-compliance"]
    for role, status in {"viewer": 403, "admin": 403, "compliance": 201}.items():
        answer = TestClient(site.app).post(f"/api/holds/{placed[0].id}/release", json={"reason": "closed"},
                                           headers=site.bearer(role))  # fmt: skip
        assert answer.status_code == status, (role, answer.text)
    assert holds(site.catalog) == []


def test_the_login_form_a_page_answers_with_logs_in_and_goes_back_there(site: Site) -> None:
    client = TestClient(site.app, follow_redirects=False)
    form = client.get("/audit?action=write")
    assert form.status_code == 401 and 'name="next" value="/audit?action=write"' in form.text
    answer = client.post("/login", data={"name": "viewer-1", "secret": site.secrets["viewer"], "csrf": csrf_of(form.text),
                                         "next": "/audit?action=write"})  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/audit?action=write"
    assert client.get("/audit?action=write").status_code == 200


def test_wrong_credentials_get_401(site: Site) -> None:
    client = TestClient(site.app)
    answer = client.post("/login", data={"name": "viewer-1", "secret": "guess", "csrf": csrf_of(client.get("/login").text)})
    assert answer.status_code == 401 and "wrong name or secret" in answer.text
    for header in ("Bearer viewer-1:guess", "Bearer nobody:x", "Basic dmlld2VyLTE6eA==", "Bearer", "Bearer :"):
        answer = client.get("/api/holds", headers={"Authorization": header})
        assert answer.status_code == 401 and answer.json()["error"]


def test_a_removed_account_loses_its_session_and_a_new_role_counts_at_once(site: Site) -> None:
    viewer, compliance = site.client("viewer"), site.client("compliance")
    set_role(site.catalog, "compliance-1", "viewer", "moved")
    assert compliance.post("/holds", data={"prefix": "x", "reason": "r", "csrf": csrf_of(compliance.get("/holds").text)}).status_code == 403
    remove_user(site.catalog, "viewer-1", "left")
    assert viewer.get("/holds").status_code == 401
    assert TestClient(site.app).get("/api/holds", headers=site.bearer("viewer")).status_code == 401


def test_logout_ends_the_session(site: Site) -> None:
    client = site.client("viewer")
    token = csrf_of(client.get("/").text)
    assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    assert client.get("/").status_code == 401


def test_the_login_goes_back_to_a_same_site_page_only(site: Site) -> None:
    for target, lands in (("/holds?all=1", "/holds?all=1"), ("//evil.example/x", "/"), ("https://evil.example", "/")):
        client = TestClient(site.app, follow_redirects=False)
        answer = client.post("/login", data={"name": "viewer-1", "secret": site.secrets["viewer"], "next": target,
                                             "csrf": csrf_of(client.get("/login").text)})  # fmt: skip
        assert answer.headers["location"] == lands


LOGIN_REFUSED = {
    "unknown": ("?foo=1", "unknown parameter &#39;foo&#39;; this page takes: next"),
    "control": ("?next=%01", "next contains control characters"),
    "twice": ("?next=a&next=b", "next is given more than once"),
}


@pytest.mark.parametrize("case", list(LOGIN_REFUSED), ids=list(LOGIN_REFUSED))
def test_bad_login_parameters_are_the_form_again_with_a_400(site: Site, case: str) -> None:
    query, message = LOGIN_REFUSED[case]
    client = TestClient(site.app, follow_redirects=False)
    answer = client.get("/login" + query)
    assert answer.status_code == 400 and message in answer.text and "internal error" not in answer.text
    assert answer.text.count('role="alert"') == 1 and 'name="next" value="/"' in answer.text
    assert client.post("/login", data={"name": "viewer-1", "secret": site.secrets["viewer"],
                                       "csrf": csrf_of(answer.text), "next": "/"}).status_code == 303  # the form logs in


def test_a_login_with_control_characters_in_next_is_refused_before_the_session_starts(site: Site) -> None:
    client = TestClient(site.app, follow_redirects=False)
    answer = client.post("/login", data={"name": "viewer-1", "secret": site.secrets["viewer"], "next": "/\t/evil.com",
                                         "csrf": csrf_of(client.get("/login").text)})  # fmt: skip
    assert answer.status_code == 400 and "next contains control characters" in answer.text, answer.text[:300]
    assert "location" not in answer.headers and 'name="next" value="/"' in answer.text
    assert client.get("/").status_code == 401


def test_cookies_and_headers(site: Site) -> None:
    client = TestClient(site.app, follow_redirects=False)
    answer = client.post("/login", data={"name": "viewer-1", "secret": site.secrets["viewer"],
                                         "csrf": csrf_of(client.get("/login").text)})  # fmt: skip
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and site.secrets["viewer"].lower() not in cookie
    page = client.get("/")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"


# -- CSRF -------------------------------------------------------------------------------------------


def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(site: Site) -> None:
    client = site.client("compliance")
    before = site.events()
    for token in (None, "", "forged", csrf_of(site.client("compliance").get("/holds").text)):  # another session's
        data = {"prefix": "scan", "reason": "inquiry"} | ({"csrf": token} if token is not None else {})
        answer = client.post("/holds", data=data)
        assert answer.status_code == 403 and "CSRF token is missing or wrong" in answer.text
    assert site.events() == before and holds(site.catalog) == []
    assert client.post("/holds", data={"prefix": "scan", "reason": "inquiry", "csrf": csrf_of(client.get("/holds").text)}).status_code == 303
    assert [h.selector for h in holds(site.catalog)] == ["scan"]


def test_a_login_form_from_elsewhere_is_refused(site: Site) -> None:
    answer = TestClient(site.app).post("/login", data={"name": "viewer-1", "secret": site.secrets["viewer"]})
    assert answer.status_code == 403



def test_an_unknown_name_costs_the_same_scrypt_as_a_known_one(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The login form and bearer credentials answered an unknown name at once (about 2 ms against scrypt's 40-60):
    the time told which names have accounts. Counted, not timed: each refusal runs one scrypt."""
    from catalog.ops import users

    runs: list[str] = []
    real_scrypt = users.hashlib.scrypt
    monkeypatch.setattr(users.hashlib, "scrypt", lambda *a, **k: runs.append("scrypt") or real_scrypt(*a, **k))
    client = TestClient(site.app, follow_redirects=False)
    for name in ("viewer-1", "no-such-user"):
        runs.clear()
        form = client.post("/login", data={"name": name, "secret": "wrong", "csrf": csrf_of(client.get("/login").text)})
        assert form.status_code == 401 and runs == ["scrypt"], (name, form.status_code, runs)
        runs.clear()
        api = TestClient(site.app).get("/api/", headers={"Authorization": f"Bearer {name}:wrong"})
        assert api.status_code == 401 and runs == ["scrypt"], (name, api.status_code, runs)

# -- what the web changes is the store's -----------------------------------------------------------


def test_a_hold_placed_on_the_web_protects_in_the_next_retention_plan(site: Site, run_cli: Cli) -> None:
    assert {r.record.path: r.action for r in plan(site.catalog)}[site.old.path] == "delete"
    client = site.client("compliance")
    page = client.get(f"/artifacts/{site.old.path}")
    answer = client.post("/holds", data={"path": site.old.path, "reason": "SEC inquiry 2024-17", "csrf": csrf_of(page.text)})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/holds?placed=")
    assert "placed." in client.get(answer.headers["location"]).text
    planned = json.loads(run_cli("retention", "plan", "--format", "json").stdout)["plan"]
    assert {r["path"]: (r["action"], r["reason"]) for r in planned}[site.old.path] == ("hold", "legal hold 1: SEC inquiry 2024-17")
    event = [e for e in site.catalog.events() if e.action == "hold_place"][-1]
    assert re.fullmatch(r"web:compliance-1@[^:]+:\d+", event.actor) and holds(site.catalog)[0].placed_by == event.actor
    story = client.get(f"/api/artifacts/{site.old.path}").json()
    assert [h["reason"] for h in story["holds"]] == ["SEC inquiry 2024-17"]
    released = client.post("/holds/1/release", data={"reason": "closed", "csrf": csrf_of(page.text)})
    assert released.status_code == 303
    assert [e.actor for e in site.catalog.events() if e.action == "hold_release"] == [event.actor]


# -- the JSON is the CLI's --------------------------------------------------------------------------


def test_the_json_has_the_shapes_of_the_cli(site: Site, run_cli: Cli) -> None:
    api = TestClient(site.app, headers=site.bearer("viewer"))
    assert api.get("/api/artifacts?limit=2").json() == json.loads(run_cli("ls", "--limit", "2", "--format", "json").stdout)
    cli_log = json.loads(run_cli("audit", "log", "--format", "json").stdout)
    assert api.get("/audit/export?format=json").json() == cli_log
    page = api.get("/api/audit?limit=3").json()
    assert page["events"] == cli_log["events"][:3] and page["next_after"] == 3
    assert api.get("/api/audit?limit=3&after=3").json()["events"] == cli_log["events"][3:6]
    csv_lines = api.get("/audit/export?format=csv&action=user_add").text.splitlines()
    assert csv_lines == run_cli("audit", "log", "--format", "csv", "--action", "user_add").stdout.splitlines()
    shown = api.get(f"/api/artifacts/{site.pair[0].path}").json()
    cli_show = json.loads(run_cli("show", site.pair[0].path, "--format", "json").stdout)
    assert {k: shown[k] for k in cli_show} == cli_show and shown["pair"]["path"] == site.pair[1].path
    status = api.get("/api/").json()
    assert status.keys() == json.loads(run_cli("status", "--format", "json").stdout).keys()
    assert api.get("/api/holds").json() == {"holds": [], "count": 0}
    assert [r["path"] for r in api.get("/api/retention?days=0").json()["plan"]] == [site.old.path]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_audit_export_is_the_clis_bytes_for_the_same_filters(site: Site, run_cli: Cli, fmt: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """CSV-hostile text (formulas, line breaks, non-ASCII) in paths, actors and details, and integers past 2^64:
    the web's download is byte for byte what ``audit log --format`` prints, filter by filter, from the same
    streaming code (no event record built per row)."""
    awkward_store(site.catalog)
    with site.catalog.change(actor="=HYPERLINK(\"x\")") as tx:
        tx.events.append("checkpoint", details={"big": 2**64 + 1, "small": -(2**63) - 1, "text": "@SUM(A1)\r\n"})
    events = list(site.catalog.events())
    api = TestClient(site.app, headers=site.bearer("viewer"))
    monkeypatch.setattr(EventRecord, "to_dict", lambda self: pytest.fail("an export built a record's dict"))
    for args, _ in _event_cases([events[len(events) // 2].at]):  # a moment the log holds (its clock never runs back)
        if "--limit" in args:  # the web's export is the whole filtered view, never a page
            continue
        params = [(flag.removeprefix("--"), value) for flag, value in zip(args[::2], args[1::2])] + [("format", fmt)]
        answer = api.get("/audit/export", params=params)
        assert answer.status_code == 200, answer.text
        cli = run_cli("audit", "log", *args, "--format", fmt)
        assert cli.exit_code == 0 and answer.content == cli.stdout_bytes, args
        if "--since" not in args and "--until" not in args:  # (the log's clock held the awkward events' times back)
            assert answer.content.count(b"\n") > 2, args  # the case lists events


def test_the_audit_export_is_whole_and_refuses_the_pages_paging(site: Site) -> None:
    client = site.client("viewer")
    page = client.get("/audit?action=user_add&limit=1&after=1").text
    links = re.findall(r'href="(/audit/export\?[^"]*)"', page)
    assert links == ["/audit/export?action=user_add&amp;format=csv", "/audit/export?action=user_add&amp;format=json"]
    whole = client.get("/audit/export?action=user_add&format=json")
    assert whole.status_code == 200 and len(whole.json()["events"]) == len(ROLES)
    refused = client.get("/audit/export?action=user_add&format=json&limit=1")
    assert refused.status_code == 400 and "<h1>400</h1>" in refused.text
    assert "unknown parameter &#39;limit&#39;; this page takes: action, actor, format, path, since, until" in refused.text


def test_the_artifact_list_filters_and_pages(site: Site) -> None:
    api = TestClient(site.app, headers=site.bearer("viewer"))
    first = api.get("/api/artifacts?limit=2&sort=path").json()
    rest = api.get(f"/api/artifacts?limit=2&sort=path&after={first['next_after']}").json()
    every = sorted(r.path for r in (site.old, *site.pair, site.ledger))
    assert [a["path"] for a in first["artifacts"] + rest["artifacts"]] == every
    assert api.get(f"/api/artifacts?limit=2&sort=path&after={rest['next_after']}").json() == {
        "artifacts": [], "count": 0, "next_after": None}
    assert [a["path"] for a in api.get("/api/artifacts?type=ledger").json()["artifacts"]] == [site.ledger.path]
    assert api.get("/api/artifacts?as_of=2019-01-01").json()["count"] == 0
    assert api.get("/api/artifacts?until=2021-01-01&prefix=ol*").json()["count"] == 1
    html = site.client("viewer").get("/artifacts?limit=1&type=explain&type=ledger")
    assert "rel=\"next\"" in html.text and "type=explain&amp;type=ledger" in html.text


def test_a_download_checks_the_hash_first(site: Site) -> None:
    api = TestClient(site.app, headers=site.bearer("viewer"))
    answer = api.get(f"/download/{site.ledger.path}")
    assert answer.status_code == 200 and answer.content == (site.catalog.base_dir / site.ledger.path).read_bytes()
    assert answer.headers["x-content-sha256"] == site.ledger.sha256
    target = site.catalog.base_dir / site.ledger.path
    target.chmod(0o644)
    target.write_bytes(target.read_bytes().replace(b"1", b"2"))
    refused = api.get(f"/download/{site.ledger.path}")
    assert refused.status_code == 409 and "no longer matches the catalog" in refused.json()["error"]
    assert "next step: reconcile, comparing SHA-256" in refused.json()["error"]


def test_the_pages_render_details_for_people(site: Site) -> None:
    client = site.client("admin")
    log = client.get("/audit?action=user_add").text
    assert "<dt>role</dt><dd>viewer</dd>" in log and "{&#34;" not in log
    page = client.get(f"/artifacts/{site.pair[0].path}").text
    assert site.pair[1].path in page and "Not verified yet." in page and "Place a hold" not in page
    assert "compliance-1" in client.get("/users").text


# -- hostile input ----------------------------------------------------------------------------------

HOSTILE = {
    "traversal": ("GET", "/api/artifacts/%2e%2e/%2e%2e/etc/passwd", 404, "no artifact at ../../etc/passwd"),
    "absolute": ("GET", "/api/artifacts//etc/passwd", 404, "no artifact at /etc/passwd"),
    "download-traversal": ("GET", "/download/%2e%2e/catalog.sqlite", 404, "no artifact"),
    "nul-in-path": ("GET", "/api/artifacts/ledger/a%00b", 400, "printable"),
    "nul-in-prefix": ("GET", "/api/artifacts?prefix=a%00b", 400, "prefix contains control characters"),
    "escape-in-actor": ("GET", "/api/audit?actor=%1b%5b31m", 400, "actor contains control characters"),
    "newline-in-path-filter": ("GET", "/api/audit?path=a%0ab", 400, "path contains control characters"),
    "huge-prefix": ("GET", "/api/artifacts?prefix=" + "x" * 5000, 400, "prefix is longer than 256 characters"),
    "huge-limit": ("GET", "/api/artifacts?limit=99999999999999999999999", 400, "limit must be a whole number from 1 to 1000"),
    "zero-limit": ("GET", "/api/audit?limit=0", 400, "limit must be a whole number"),
    "negative-after": ("GET", "/api/audit?after=-1", 400, "after must be a whole number"),
    "bad-date": ("GET", "/api/artifacts?since=2024-13-45", 400, "since: '2024-13-45' is not a time"),
    "bad-as-of": ("GET", "/api/artifacts?as_of=yesterday", 400, "as_of: 'yesterday' is not a time"),
    "huge-year": ("GET", "/api/audit?until=99999-01-01", 400, "until: '99999-01-01' is not a time"),
    "window-backwards": ("GET", "/api/audit?since=2024-02-01&until=2024-01-01", 400, "since must be earlier than until"),
    "unknown-action": ("GET", "/api/audit?action=drop_table", 400, "unknown action 'drop_table'; choose one of: write"),
    "unknown-type": ("GET", "/api/artifacts?type=secrets", 400, "unknown type 'secrets'; choose one of: explain"),
    "unknown-sort": ("GET", "/api/artifacts?sort=random", 400, "unknown sort 'random'"),
    "unknown-param": ("GET", "/api/artifacts?debug=1", 400, "unknown parameter 'debug'; this page takes:"),
    "twice": ("GET", "/api/artifacts?prefix=a&prefix=b", 400, "prefix is given more than once"),
    "after-unknown": ("GET", "/api/artifacts?after=ledger/nope.json", 404, "after ledger/nope.json: no artifact"),
    "negative-days": ("GET", "/api/retention?days=-1", 400, "days must be a whole number from 0 to 3660"),
    "bad-format": ("GET", "/audit/export?format=xml", 400, "unknown format 'xml'"),
    "export-limit": ("GET", "/audit/export?format=json&limit=5", 400, "unknown parameter 'limit'; this page takes: action"),
    "export-bad-limits": ("GET", "/audit/export?limit=abc&limit=-7", 400, "unknown parameter 'limit'"),
    "export-after": ("GET", "/audit/export?format=csv&after=3", 400, "unknown parameter 'after'"),
    "hold-id-text": ("POST", "/api/holds/abc/release", 400, "hold must be a whole number"),
    "hold-id-unknown": ("POST", "/api/holds/999/release", 404, "no hold with id 999"),
    "hold-two-selectors": ("POST", "/api/holds", 400, "a hold covers exactly one of: path, prefix, type"),
    "hold-reason-newline": ("POST", "/api/holds", 400, "reason contains control characters"),
    "hold-path-unknown": ("POST", "/api/holds", 404, "no artifact at ledger/none.json"),
}
BODIES: dict[str, Any] = {
    "hold-id-text": {"reason": "r"}, "hold-id-unknown": {"reason": "r"},
    "hold-two-selectors": {"prefix": "a", "type": "ledger", "reason": "r"},
    "hold-reason-newline": {"prefix": "a", "reason": "one\nforged line"},
    "hold-path-unknown": {"path": "ledger/none.json", "reason": "r"},
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_input_is_a_clear_4xx_and_writes_nothing(site: Site, case: str) -> None:
    method, path, status, message = HOSTILE[case]
    before = site.events()
    answer = TestClient(site.app, headers=site.bearer("compliance")).request(method, path, json=BODIES.get(case))
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"], answer.text
    assert "Traceback" not in answer.text and site.events() == before


def test_hostile_input_on_a_page_is_a_page(site: Site) -> None:
    answer = site.client("viewer").get("/audit?since=not-a-date")
    assert answer.status_code == 400 and "since: &#39;not-a-date&#39; is not a time" in answer.text
    assert "<h1>400</h1>" in answer.text


def test_a_huge_body_is_refused_before_it_is_read(site: Site) -> None:
    client = site.client("compliance")
    answer = client.post("/holds", data={"reason": "x" * 70_000, "csrf": csrf_of(client.get("/holds").text)})
    assert answer.status_code == 400 and "at most 65536 bytes" in answer.text


def test_markup_in_data_is_shown_as_text(site: Site) -> None:
    client = site.client("compliance")
    client.post("/holds", data={"prefix": "x", "reason": "<script>alert(1)</script>", "csrf": csrf_of(client.get("/holds").text)})
    page = client.get("/holds").text
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# -- the web key ------------------------------------------------------------------------------------


def test_the_web_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    key = web_key(tmp_path, {})
    path = tmp_path / "catalog.web-key"
    assert len(key) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600 and web_key(tmp_path, {}) == key
    assert web_key(tmp_path, {"CRYPTORUN_WEB_SECRET": "k" * 40}) == "k" * 40
    with pytest.raises(ConfigError, match="at least 32 characters"):
        web_key(tmp_path, {"CRYPTORUN_WEB_SECRET": "short"})
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="may be read by others"):
        web_key(tmp_path, {})
    path.unlink()
    os.symlink("/etc/hostname", path)
    with pytest.raises(ConfigError, match="not a link"):
        web_key(tmp_path, {})


def test_serve_without_the_web_extra_says_so_in_one_line(run_cli: Cli, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = run_cli("serve")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("Error: catalog serve needs the web extra (uvicorn is not installed): "
                                     "pip install 'cryptorun-catalog[web]'")  # fmt: skip


def test_serve_on_an_address_in_use_says_so_in_one_line_before_anything_starts(run_cli: Cli, catalog: Catalog,
                                                                                base_dir: Path) -> None:  # fmt: skip
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--host", "127.0.0.1", "--port", str(port))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"Error: cannot listen on 127.0.0.1:{port}: address already in use"]
    assert not (base_dir / "catalog.web-key").exists()  # nothing made: the app never started


def test_serve_on_a_host_that_does_not_resolve_says_so_in_one_line(run_cli: Cli, catalog: Catalog,
                                                                    base_dir: Path) -> None:  # fmt: skip
    result = run_cli("serve", "--host", "not a host", "--port", "8089")
    assert (result.exit_code, result.stdout) == (2, "")
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: cannot listen on not a host:8089: "), line
    assert not (base_dir / "catalog.web-key").exists()
