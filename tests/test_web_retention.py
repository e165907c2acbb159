"""The web's retention page at any size: the plan's totals and ONE keyset page of rows (never the whole plan),
pages that neither skip nor repeat a row across types, the whole plan as a download byte for byte the CLI's, and
hostile parameters each one clear error."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e '.[web]')")

from freezegun import freeze_time  # noqa: E402
from starlette.exceptions import StarletteDeprecationWarning  # noqa: E402

with warnings.catch_warnings():  # Starlette 1.x asks for httpx2 in its test client; httpx (the test extra) still works
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from catalog.core.formats import format_time  # noqa: E402
from catalog.core.settings import Settings  # noqa: E402
from catalog.core.store import Catalog  # noqa: E402
from catalog.cryptorun.demo import make_report  # noqa: E402
from catalog.cryptorun.writer import AtomicWriter  # noqa: E402
from catalog.ops import retention as retention_module  # noqa: E402
from catalog.ops.policy import add_hold, release_hold  # noqa: E402
from catalog.ops.retention import plan  # noqa: E402
from catalog.ops.users import add_user  # noqa: E402
from catalog.web import create_app  # noqa: E402

from helpers import Cli  # noqa: E402

UTC = timezone.utc
START = datetime(2020, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)  # the web's clock while it answers (whole seconds: --now reads it back)
HOURS = 11  # each hour: two explain rows (a report pair), a ledger, and health a and b at the same second


@pytest.fixture
def api(catalog: Catalog, settings: Settings, writer: AtomicWriter, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A viewer's client over a store of 55 expired rows of three types (ties in created_at), health b held."""
    monkeypatch.delenv("CRYPTORUN_WEB_SECRET", raising=False)
    for hour in range(HOURS):
        when = START + timedelta(hours=hour)
        with freeze_time(when):
            writer.write_explain_report(make_report(2, seed=hour, now=when), "scan")
            writer.write_json("ledger", "book", {"hour": hour})
            writer.write_json("health", "a", {"hour": hour})
            writer.write_json("health", "b", {"hour": hour})
    add_hold(catalog, prefix="b", reason="inquiry 7")
    secret = add_user(catalog, "viewer-1", "viewer")[1]
    with TestClient(create_app(settings, catalog=catalog), headers={"Authorization": f"Bearer viewer-1:{secret}"}) as client:
        yield client


def planned(catalog: Catalog, days: int = 30, types: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [(row.record.path, row.action) for row in plan(catalog, now=NOW + timedelta(days=days), types=types)]


def walk(api: TestClient, query: str) -> list[dict[str, Any]]:
    """Every page of ``/api/retention?query``, following ``next_after`` to the end."""
    pages, after = [], None
    while True:
        with freeze_time(NOW):
            answer = api.get(f"/api/retention?{query}" + (f"&after={after}" if after else ""))
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        after = pages[-1]["next_after"]
        if after is None:
            return pages
        assert len(pages) < 100, "the pages never end"


@pytest.mark.parametrize("limit", [1, 3, 7, 14, 22, 54, 55, 1000])
def test_pages_cover_the_plan_once_with_boundaries_inside_and_between_types(api: TestClient, catalog: Catalog,
                                                                             limit: int) -> None:  # fmt: skip
    """22 explain, 11 ledger, 22 health rows (plan order): limit 7 and 22 end pages exactly at a type's last row,
    3 ends pages inside types and between ties of created_at; 54 and 55 are one short of and exactly the plan."""
    expected = planned(catalog)
    assert [a for _, a in expected].count("hold") == HOURS and len(expected) == 5 * HOURS
    pages = walk(api, f"limit={limit}")
    assert [(r["path"], r["action"]) for p in pages for r in p["plan"]] == expected
    assert [p["count"] for p in pages] == [len(p["plan"]) for p in pages]
    assert all(p["count"] == limit for p in pages[:-1]) and 0 < pages[-1]["count"] <= limit
    assert len(pages) == -(-len(expected) // limit)  # no empty last page: "next" only when a row follows


@pytest.mark.parametrize("types", [("health",), ("health", "explain"), ("ledger", "health", "explain")])
def test_pages_follow_the_order_of_the_types_asked(api: TestClient, catalog: Catalog, types: tuple[str, ...]) -> None:
    pages = walk(api, "days=0&limit=4&" + "&".join(f"type={t}" for t in types))
    assert [(r["path"], r["action"]) for p in pages for r in p["plan"]] == planned(catalog, 0, types)


def test_a_page_decides_no_more_rows_than_it_shows(api: TestClient, catalog: Catalog,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A store with a million expired rows must not become a page of a million: the plan is read as far as one
    row past the page (to know whether a next page exists), never further."""
    release_hold(catalog, 1, "closed")  # (the totals decide each row a hold may reach, as `--summary` does)
    decided = []
    real = retention_module.Rule.decide
    monkeypatch.setattr(retention_module.Rule, "decide", lambda self, *a: decided.append(1) or real(self, *a))
    with freeze_time(NOW):
        page = api.get("/api/retention").json()
    assert page["count"] == 50 and len(page["plan"]) == 50 and page["next_after"] is not None
    assert len(decided) == 51
    decided.clear()
    with freeze_time(NOW):
        assert api.get("/api/retention?limit=2&type=health").json()["count"] == 2
    assert len(decided) == 3


@pytest.mark.parametrize("days", [0, 30, 400])
def test_the_totals_are_retention_plan_summary(api: TestClient, run_cli: Cli, days: int) -> None:
    moment = format_time(NOW + timedelta(days=days))
    for types in ((), ("health", "explain")):
        with freeze_time(NOW):
            page = api.get("/api/retention", params=[("days", days), ("limit", 1)] + [("type", t) for t in types]).json()
        args = [arg for t in types for arg in ("--type", t)]
        cli = json.loads(run_cli("retention", "plan", "--summary", "--now", moment, "--format", "json", *args).stdout)
        assert page["summary"] == cli["summary"] and page["now"] == moment
        assert sum(s["count"] for s in page["summary"]) == (4 if types else 5) * HOURS  # every row, not a page's
        assert {s["action"] for s in page["summary"]} >= {"delete", "hold"}


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_download_is_the_whole_plan_byte_for_byte_the_clis(api: TestClient, catalog: Catalog, run_cli: Cli,
                                                               fmt: str) -> None:  # fmt: skip
    """With a hold (each row decided against it) and without one (the plan's fast path): the CLI's bytes."""
    for held in (True, False):
        if not held:
            release_hold(catalog, 1, "closed")
        for days, types in ((30, ()), (0, ("health",)), (400, ("health", "explain")), (0, ("config",))):
            params = [("days", days), ("format", fmt)] + [("type", t) for t in types]
            with freeze_time(NOW):
                answer = api.get("/retention/export", params=params)
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-disposition"].startswith('attachment; filename="retention-')
            args = [arg for t in types for arg in ("--type", t)]
            cli = run_cli("retention", "plan", "--now", format_time(NOW + timedelta(days=days)), "--format", fmt, *args)
            assert cli.exit_code == 0 and answer.content == cli.stdout_bytes, (held, days, types)
            assert (b"legal hold 1: inquiry 7" in answer.content) == (held and "health" in (types or ("health",)))
            assert answer.content.count(b"\n") > (2 * HOURS if "config" not in types else 0)  # the case lists rows


def browser(api: TestClient) -> TestClient:
    """A client logged in by the login form (a session, as a browser), as the same viewer as ``api``."""
    name, secret = api.headers["authorization"].removeprefix("Bearer ").split(":")
    client = TestClient(api.app, follow_redirects=False)
    with freeze_time(NOW):  # the session starts on the clock the pages are asked on
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert csrf is not None
        answer = client.post("/login", data={"name": name, "secret": secret, "csrf": csrf[1], "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


def test_the_page_explains_itself_and_links_the_next_page_and_the_downloads(api: TestClient) -> None:
    page = browser(api)
    with freeze_time(NOW):
        html = page.get("/retention?days=0&type=health&limit=5").text
    assert "rel=\"next\"" in html and "/retention?days=0&amp;type=health&amp;limit=5&amp;after=" in html
    assert "/retention/export?days=0&amp;type=health&amp;format=csv" in html
    assert "One page of at most 5 artifacts" in html and "Next page" in html
    assert "legal hold 1: inquiry 7" in html and "<td class=\"num\">11</td>" in html  # the totals: 11 held, 11 due
    with freeze_time(NOW):
        last = page.get("/retention?days=0&type=config").text
    assert "rel=\"next\"" not in last and "Nothing is past its retention by then." in last


HOSTILE = {
    "negative-days": ("/api/retention?days=-1", 400, "days must be a whole number from 0 to 3660"),
    "huge-days": ("/api/retention?days=99999999999999999999999", 400, "days must be a whole number from 0 to 3660"),
    "text-days": ("/api/retention?days=ten", 400, "days must be a whole number from 0 to 3660"),
    "zero-limit": ("/api/retention?limit=0", 400, "limit must be a whole number from 1 to 1000"),
    "huge-limit": ("/api/retention?limit=1001", 400, "limit must be a whole number from 1 to 1000"),
    "text-after": ("/api/retention?after=ledger%2F2020.json", 400, "after must be a whole number from 1 to"),
    "negative-after": ("/api/retention?after=-3", 400, "after must be a whole number from 1 to"),
    "zero-after": ("/api/retention?after=0", 400, "after must be a whole number from 1 to"),
    "huge-after": ("/api/retention?after=" + "9" * 40, 400, "after must be a whole number from 1 to"),
    "after-twice": ("/api/retention?after=1&after=2", 400, "after is given more than once"),
    "unknown-after": ("/api/retention?after=999999", 404, "after 999999: no artifact has that id"),
    "after-of-another-type": ("/api/retention?type=health&after=1", 400,
                              "after 1 is of type explain, not one of the types planned (health)"),
    "unknown-type": ("/api/retention?type=secrets", 400, "unknown type 'secrets'; choose one of: explain"),
    "unknown-param": ("/api/retention?page=2", 400, "unknown parameter 'page'; this page takes: after, days, limit, type"),
    "export-format": ("/retention/export?format=xml", 400, "unknown format 'xml'"),
    "export-days": ("/retention/export?days=-1&format=csv", 400, "days must be a whole number from 0 to 3660"),
    "export-after": ("/retention/export?after=3", 400, "unknown parameter 'after'"),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_parameters_are_one_clear_error(api: TestClient, catalog: Catalog, case: str) -> None:
    path, status, message = HOSTILE[case]
    before = sum(1 for _ in catalog.events())
    answer = api.get(path)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"], answer.text
    assert "Traceback" not in answer.text and sum(1 for _ in catalog.events()) == before


def test_a_cursor_past_the_plans_end_or_from_outside_it_is_a_place_not_a_wrong_page(
    api: TestClient, catalog: Catalog, writer: AtomicWriter
) -> None:
    """An id is a place in the plan's order (type, created_at, id) whether or not its row is in the plan: the page
    after it is exactly the plan's rows after that place."""
    expected = planned(catalog)
    last = list(plan(catalog, now=NOW + timedelta(days=30)))[-1].record.id
    with freeze_time(NOW):
        assert api.get(f"/api/retention?after={last}").json()["plan"] == []
    config = writer.write_json("config", "c", {})  # kept forever: never in the plan
    with freeze_time(NOW):
        assert api.get(f"/api/retention?after={config.id}").json()["count"] == 0  # config comes last
        ledger = api.get("/api/retention?type=ledger&limit=1").json()["next_after"]
        rest = api.get(f"/api/retention?after={ledger}&limit=1000").json()["plan"]
    assert [(r["path"], r["action"]) for r in rest] == expected[2 * HOURS + 1:]
