"""The evidence pages of the web view (issue 16, step 2): the bundle export, an artifact's inclusion proof, an
explain report; each route for anonymous, viewer, compliance and admin callers, CSRF, hostile input (a 4xx with a
clear message, nothing written, no temporary file left behind)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e '.[web]')")

from test_web import ROLES, Site, TestClient, csrf_of  # noqa: E402

from catalog.core import bundle_format as fmt  # noqa: E402
from catalog.core.settings import Settings  # noqa: E402
from catalog.core.store import Catalog  # noqa: E402
from catalog.cryptorun.writer import AtomicWriter  # noqa: E402
from catalog.ops import keys as store_keys  # noqa: E402

from helpers import Cli  # noqa: E402


@pytest.fixture
def keyring(tmp_path: Path, base_dir: Path) -> Path:
    """The store's key (with its .pub), outside the store."""
    folder = tmp_path / "keyring"
    folder.mkdir()
    store_keys.generate_key("example.com/store", folder / "store.key", base_dir)
    return folder


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder every temporary file of the test goes to (so what is left behind can be seen)."""
    import tempfile

    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def site(catalog: Catalog, settings: Settings, writer: AtomicWriter, keyring: Path, scratch: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:  # fmt: skip
    """The web view of a store that signs with ``keyring/store.key``."""
    monkeypatch.delenv("CRYPTORUN_WEB_SECRET", raising=False)
    catalog.settings = dataclasses.replace(catalog.settings, signing_key=keyring / "store.key")
    yield Site(catalog, settings, writer)


def leftovers(scratch: Path) -> list[str]:
    return sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))


def members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


# -- the export ---------------------------------------------------------------------------------------


def test_the_export_is_for_compliance_and_admin(site: Site, scratch: Path) -> None:
    for role, status in {None: 401, "viewer": 403, "compliance": 200, "admin": 200}.items():
        client = site.client(role)
        assert client.get("/export").status_code == status, role
        token = csrf_of(client.get("/").text) if role else "x"
        answer = client.post("/export", data={"csrf": token})
        assert answer.status_code == status, (role, answer.text[:300])
        if role is not None:
            api = TestClient(site.app, headers=site.bearer(role))
            assert api.get("/api/export").status_code == status
            assert api.post("/api/export", json={}).status_code == status
        if status == 200:
            assert answer.headers["content-type"] == "application/zip"
    assert leftovers(scratch) == []
    nav = {role: 'href="/export"' in site.client(role).get("/").text for role in ROLES}
    assert nav == {"viewer": False, "compliance": True, "admin": True}
    assert site.client("viewer").post("/export", data={"csrf": "x"}).text.count("may not do this") == 1


def test_the_bundle_is_the_cli_export_and_verifies_with_the_public_key(site: Site, run_cli: Cli, keyring: Path,
                                                                      tmp_path: Path, scratch: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    client = site.client("compliance")
    before = site.events()
    form = client.get("/export")
    assert "signed with the store's key" in form.text
    answer = client.post("/export", data={"since": "2020-01-01", "until": "2100-01-01", "include_files": "1",
                                          "csrf": csrf_of(form.text)})  # fmt: skip
    assert answer.status_code == 200, answer.text[:300]
    disposition = answer.headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="catalog-bundle-\d{8}T\d{6}Z\.zip"', disposition), disposition
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert answer.headers["x-bundle-signed-by"].startswith("example.com/store+")
    bundle = tmp_path / "web.zip"
    bundle.write_bytes(answer.content)
    report = fmt.verify_bundle(bundle, [store_keys.load_verifier(keyring / "store.key.pub")])
    assert report.ok and report.authenticated, report.problems
    assert report.files == 4 and int(answer.headers["x-bundle-events"]) == report.events
    verified = run_cli("audit", "verify-bundle", str(bundle), "--key", str(keyring / "store.key.pub"), global_args=[])
    assert verified.exit_code == 0, verified.output
    # the same bundle as `catalog audit export` of that window: the same events, rows, files and tree
    monkeypatch.setenv("CRYPTORUN_SIGNING_KEY", str(keyring / "store.key"))
    exported = tmp_path / "cli.zip"
    cli = run_cli("audit", "export", str(exported), "--since", "2020-01-01", "--until", "2100-01-01", "--include-files")
    assert cli.exit_code == 0, cli.output
    web, ours = members(answer.content), members(exported.read_bytes())
    assert web.keys() == ours.keys()
    for name in (fmt.EVENTS, fmt.DEFINING, fmt.ARTIFACTS, fmt.FILES, fmt.CHECKPOINT):
        assert web[name] == ours[name], name
    manifest = json.loads(web[fmt.MANIFEST])
    assert manifest["exported_by"].startswith("web:compliance-1@")
    assert site.events() == before  # a read: no event, as the CLI's export
    assert leftovers(scratch) == []


def test_an_export_without_its_csrf_token_is_refused(site: Site, scratch: Path) -> None:
    client = site.client("admin")
    for token in (None, "", "forged", csrf_of(site.client("admin").get("/export").text)):  # another session's
        answer = client.post("/export", data={"csrf": token} if token is not None else {})
        assert answer.status_code == 403 and "CSRF token is missing or wrong" in answer.text
        assert answer.headers["content-type"].startswith("text/html")
    assert leftovers(scratch) == []


EXPORT_HOSTILE = {
    "backwards": ({"since": "2024-02-01", "until": "2024-01-01"}, 400, "since must be earlier than until"),
    "same-moment": ({"since": "2024-02-01", "until": "2024-02-01T00:00:00Z"}, 400, "since must be earlier than until"),
    "bad-date": ({"since": "2024-13-45"}, 400, "since: '2024-13-45' is not a time"),
    "words": ({"until": "next tuesday"}, 400, "until: 'next tuesday' is not a time"),
    "huge-year": ({"until": "99999-01-01"}, 400, "until: '99999-01-01' is not a time"),
    "huge-text": ({"since": "2024-01-01" + "0" * 5000}, 400, "since is longer than 64 characters"),
    "nul": ({"since": "2024-01-01\x00"}, 400, "since contains control characters"),
    "newline": ({"until": "2024-01-01\n2025"}, 400, "until contains control characters"),
    "twice": ({"since": ["2024-01-01", "2024-02-01"]}, 400, "since is given more than once"),
    "flag": ({"include_files": "maybe"}, 400, "include_files must be 1 or 0"),
    "unknown": ({"output": "/etc/passwd"}, 400, "unknown parameter 'output'"),
    "traversal": ({"output": "../../x.zip"}, 400, "unknown parameter 'output'"),
    "list": ({"since": {"a": 1}}, 400, "since must be text"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(EXPORT_HOSTILE), ids=list(EXPORT_HOSTILE))
def test_a_bad_export_window_is_a_clear_4xx_and_leaves_nothing(site: Site, scratch: Path, case: str) -> None:
    body, status, message = EXPORT_HOSTILE[case]
    before = site.events()
    answer = TestClient(site.app, headers=site.bearer("compliance")).post("/api/export", json=body)
    assert answer.status_code == status and message in answer.json()["error"], answer.text
    assert leftovers(scratch) == [] and site.events() == before
    if isinstance(body.get("since", ""), str) and isinstance(body.get("until", ""), str):  # the form says the same
        client = site.client("compliance")
        page = client.post("/export", data={**body, "csrf": csrf_of(client.get("/export").text)})
        assert page.status_code == status and "<h1>400</h1>" in page.text and "Traceback" not in page.text
        assert leftovers(scratch) == []


def test_a_refused_signing_key_refuses_the_export_and_leaves_nothing(site: Site, scratch: Path, tmp_path: Path) -> None:
    site.catalog.settings = dataclasses.replace(site.catalog.settings, signing_key=tmp_path / "gone.key")
    answer = TestClient(site.app, headers=site.bearer("admin")).post("/api/export", json={})
    assert answer.status_code == 400 and "signing key" in answer.json()["error"], answer.text
    assert leftovers(scratch) == []


def test_an_unsigned_store_says_so_before_the_download(site: Site, scratch: Path) -> None:
    site.catalog.settings = dataclasses.replace(site.catalog.settings, signing_key=None)
    client = site.client("compliance")
    form = client.get("/export")
    assert "bundles are\nUNSIGNED" in form.text
    assert TestClient(site.app, headers=site.bearer("compliance")).get("/api/export").json() == {"signed": False}
    answer = client.post("/export", data={"csrf": csrf_of(form.text)})
    assert answer.status_code == 200 and answer.headers["x-bundle-signed-by"] == "unsigned"


def test_the_bundle_is_gone_from_disk_before_the_first_byte_is_sent(site: Site, scratch: Path) -> None:
    """A client that goes away at once (the send fails) leaves no file behind: the bundle was unlinked before."""
    seen: list[list[str]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        seen.append(leftovers(scratch))
        if message["type"] == "http.response.body":
            raise OSError("the client went away")

    auth = site.bearer("admin")["Authorization"].encode()
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/export", "raw_path": b"/api/export", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"authorization", auth), (b"content-type", b"application/json"),
                         (b"content-length", b"2")],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80), "state": {}}  # fmt: skip

    async def run() -> None:
        try:
            await site.app(scope, receive, send)
        except Exception:  # the disconnect, as the server sees it
            pass

    asyncio.run(run())
    assert seen and all(found == [] for found in seen) and leftovers(scratch) == []
