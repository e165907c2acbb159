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
    """What is in the temp folder but the writers' commit queue (:mod:`catalog.core.group_commit`)."""
    return sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*")
                  if not p.relative_to(scratch).parts[0].startswith("catalog-queue-"))  # fmt: skip


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
    "boolean-time": ({"since": True}, 400, "since must be text"),
    "flag-number": ({"include_files": 3}, 400, "include_files must be true or false"),
    "flag-fraction": ({"include_files": 1.0}, 400, "include_files must be true or false"),
    "flag-empty-list": ({"include_files": []}, 400, "include_files must be true or false"),
    "flag-object": ({"include_files": {}}, 400, "include_files must be true or false"),
    "flag-twice": ({"include_files": [True, False]}, 400, "include_files is given more than once"),
}  # fmt: skip


def test_a_json_export_takes_booleans_for_its_flag(site: Site, scratch: Path) -> None:
    api = TestClient(site.app, headers=site.bearer("compliance"))
    for given, files in ((True, 4), (False, 0), ("1", 4), ("yes", 4), ("0", 0), (1, 4), (0, 0), (None, 0), ([True], 4)):
        answer = api.post("/api/export", json={"include_files": given})
        assert answer.status_code == 200, (given, answer.text)
        copied = [name for name in members(answer.content) if name not in fmt.MEMBERS]
        assert len(copied) == files, (given, copied)
    assert leftovers(scratch) == []


@pytest.mark.parametrize("case", list(EXPORT_HOSTILE), ids=list(EXPORT_HOSTILE))
def test_a_bad_export_window_is_a_clear_4xx_and_leaves_nothing(site: Site, scratch: Path, case: str) -> None:
    body, status, message = EXPORT_HOSTILE[case]
    before = site.events()
    answer = TestClient(site.app, headers=site.bearer("compliance")).post("/api/export", json=body)
    assert answer.status_code == status and message in answer.json()["error"], answer.text
    assert leftovers(scratch) == [] and site.events() == before
    if all(isinstance(value, str) for value in body.values()):  # the form says the same
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


# -- an artifact's inclusion proof ----------------------------------------------------------------------


@pytest.fixture
def folder(site: Site, tmp_path: Path) -> Path:
    """The store's checkpoint folder (audit.checkpoint_dir) holding one signed checkpoint, taken after the writes."""
    from catalog.ops.checkpoints import take_checkpoint

    path = tmp_path / "checkpoints"
    site.catalog.settings = dataclasses.replace(site.catalog.settings, checkpoint_dir=path)
    take_checkpoint(site.catalog)
    return path


def test_the_artifact_page_shows_its_proof_against_the_signed_checkpoint(site: Site, folder: Path, run_cli: Cli,
                                                                         keyring: Path, tmp_path: Path) -> None:  # fmt: skip
    (checkpoint,) = folder.iterdir()
    before = site.events()
    client = site.client("viewer")
    page = client.get(f"/artifacts/{site.ledger.path}").text
    assert f"checkpoint <code>{checkpoint.name}</code>" in page and "signed by <code>example.com/store+" in page
    assert "<details><summary>" in page and "No signed checkpoint" not in page
    shown = client.get(f"/api/artifacts/{site.ledger.path}").json()["proof"]
    tree = tlog_of(checkpoint)
    assert shown["checkpoint"] == {"origin": tree.origin, "size": tree.size, "root": tree.root_b64, "recorded": True,
                                   "signed_by": [s.label for s in tree.note.signatures], "source": checkpoint.name}  # fmt: skip
    seqs = [e.seq for e in site.catalog.events() if e.artifact_id == site.ledger.id]
    assert [(e["seq"], e["leaf_index"], e["action"]) for e in shown["events"]] == [(seqs[0], seqs[0] - 1, "write")]
    assert shown["later_events"] == 0 and shown["note"] is None
    # the download is what `catalog audit prove PATH --checkpoint FILE` prints, and the auditor's check accepts it
    answer = client.get(shown["download"])
    assert answer.status_code == 200 and answer.headers["x-proof-checkpoint"] == "recorded"
    assert answer.headers["content-disposition"] == f'attachment; filename="proof-{Path(site.ledger.path).stem}.json"'
    printed = run_cli("audit", "prove", site.ledger.path, "--checkpoint", str(checkpoint))
    assert printed.exit_code == 0 and answer.content == printed.stdout_bytes
    proof = tmp_path / "proof.json"
    proof.write_bytes(answer.content)
    verified = run_cli("audit", "verify-proof", str(proof), "--key", str(keyring / "store.key.pub"), global_args=[])
    assert verified.exit_code == 0 and verified.stdout.startswith("Proven: "), verified.output
    assert site.events() == before  # a read: no checkpoint taken, nothing recorded
    assert list(folder.iterdir()) == [checkpoint]


def tlog_of(path: Path) -> Any:
    from catalog.core import tlog

    return tlog.parse_checkpoint(path.read_bytes(), str(path))


def test_without_a_checkpoint_the_page_says_what_the_proof_is_against(site: Site, run_cli: Cli, keyring: Path,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    before = site.events()
    client = site.client("viewer")
    page = client.get(f"/artifacts/{site.ledger.path}")
    assert page.status_code == 200
    assert "No signed checkpoint covers this artifact" in page.text and "recorded nowhere" in page.text
    assert "<code>catalog audit checkpoint</code>" in page.text and "public key" in page.text
    shown = client.get(f"/api/artifacts/{site.ledger.path}").json()["proof"]
    assert shown["checkpoint"]["recorded"] is False and shown["checkpoint"]["signed_by"] == []
    assert shown["checkpoint"]["size"] == before
    answer = client.get(shown["download"])
    assert answer.status_code == 200 and answer.headers["x-proof-checkpoint"] == "head"
    proof = tmp_path / "proof.json"
    proof.write_bytes(answer.content)
    refused = run_cli("audit", "verify-proof", str(proof), "--key", str(keyring / "store.key.pub"), global_args=[])
    assert refused.exit_code == 1 and "NOT proven" in refused.stdout
    assert site.events() == before


def test_an_artifact_newer_than_the_checkpoint_is_proven_against_the_head_and_says_why(site: Site, folder: Path,
                                                                                     writer: AtomicWriter) -> None:  # fmt: skip
    newer = writer.write_json("ledger", "after", {"cash": 2})
    client = site.client("compliance")
    shown = client.get(f"/api/artifacts/{newer.path}").json()["proof"]
    assert shown["checkpoint"]["recorded"] is False and "recorded after checkpoint" in shown["note"]
    assert "The newest checkpoint was not used: " in client.get(f"/artifacts/{newer.path}").text
    site.catalog.change_status(site.ledger.id, action="archive", status="archived", details={"reason": "old"})
    later = client.get(f"/api/artifacts/{site.ledger.path}").json()["proof"]
    assert later["checkpoint"]["recorded"] is True and later["later_events"] == 1
    assert "1 later event(s) of this artifact" in client.get(f"/artifacts/{site.ledger.path}").text


def test_a_checkpoint_the_log_no_longer_extends_is_named_on_the_page_never_a_500(site: Site, folder: Path) -> None:
    from catalog.core import tlog

    (real,) = folder.iterdir()
    tree = tlog_of(real)
    forged = tlog.checkpoint_text(tree.origin, tree.size + 1, b"\x07" * 32)  # newer, and not this log's tree
    (folder / f"checkpoint-{tree.size + 1:012d}-20990101T000000Z.txt").write_text(forged)
    site.catalog.change_status(site.ledger.id, action="archive", status="archived", details={"reason": "old"})
    client = site.client("viewer")
    page = client.get(f"/artifacts/{site.ledger.path}")
    assert page.status_code == 200 and "No proof could be made: " in page.text and "the log was rewritten" in page.text
    assert "the log was rewritten" in client.get(f"/api/artifacts/{site.ledger.path}").json()["proof"]["error"]
    refused = TestClient(site.app, headers=site.bearer("viewer")).get(f"/artifact/proof?path={site.ledger.path}")
    assert refused.status_code == 409 and "the log was rewritten" in refused.json()["error"]
    (folder / "checkpoint-zzz.txt").write_text("not a checkpoint\n")  # never the newest: not read by a page
    assert "the log was rewritten" in client.get(f"/artifacts/{site.ledger.path}").text
    (folder / "checkpoint-999999999999-20991231T000000Z.txt").write_text("not a checkpoint\n")
    page = client.get(f"/artifacts/{site.ledger.path}")
    assert page.status_code == 200 and "20991231T000000Z.txt is not a catalog checkpoint" in page.text


def test_the_proof_download_for_each_caller(site: Site) -> None:
    for role, status in {None: 401, "viewer": 200, "compliance": 200, "admin": 200}.items():
        answer = site.client(role).get(f"/artifact/proof?path={site.ledger.path}")
        assert answer.status_code == status, (role, answer.text[:200])
        if role is not None:
            bare = TestClient(site.app).get(f"/artifact/proof?path={site.ledger.path}", headers=site.bearer(role))
            assert bare.status_code == status and bare.json()["format"] == "catalog-inclusion-proof/v1"


# -- an explain report ----------------------------------------------------------------------------------

GO_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "samples" / "cryptorun-go" / "explain-8-assets.json"


def test_the_explain_page_for_each_caller_and_its_json_is_explain_show(site: Site, run_cli: Cli) -> None:
    report, table = site.pair
    for role, status in {None: 401, "viewer": 200, "compliance": 200, "admin": 200}.items():
        client = site.client(role)
        assert client.get(f"/explain?path={report.path}").status_code == status, role
        assert client.get(f"/api/explain?path={report.path}").status_code == status, role
    api = TestClient(site.app, headers=site.bearer("viewer"))
    shown = api.get(f"/api/explain?path={report.path}").json()
    cli = json.loads(run_cli("explain", "show", report.path, "--format", "json").stdout)
    assert shown == {"path": report.path, **cli}
    assert api.get(f"/api/explain?path={table.path}").json() == shown  # the CSV half stands for its report
    page = site.client("viewer").get(f"/explain?path={report.path}").text
    for asset in cli["report"]["universe"]:
        assert f"<td>{asset['symbol']}</td>" in page
    assert "<h2>Ranked assets</h2>" in page and "<h2>Failed gates</h2>" in page
    artifact = site.client("viewer").get(f"/artifacts/{report.path}").text
    assert f'href="/explain?path={report.path}"' in artifact
    listing = site.client("viewer").get("/artifacts?type=explain").text
    assert listing.count('">report</a>') == 2 and site.ledger.path not in listing


def test_a_report_of_the_go_scanner_shows_its_failed_gates_and_broken_rules(site: Site, run_cli: Cli) -> None:
    if not GO_SAMPLE.is_file():
        pytest.skip(f"the Go samples live beside the checkout ({GO_SAMPLE.parent})")
    imported = run_cli("explain", "import", str(GO_SAMPLE), "--prefix", "momentum_scan", "--format", "json")
    assert imported.exit_code == 0, imported.output
    path = json.loads(imported.stdout)["artifacts"][0]["path"]
    page = site.client("viewer").get(f"/explain?path={path}").text
    assert "<td>ADA-USD</td><td>entry_gate</td><td class=\"num\">2.74529</td><td class=\"num\">75</td><td>composite_score_threshold</td>" in page
    assert "8: 0 included, 8 excluded" in page and "Rules this report breaks (as written)" in page
    assert "<li>ADA-USD: rank 1 disagrees with its score 2.74529: expected 6 (1 = highest, ties by symbol)</li>" in page
    assert page.index("<td>ADA-USD</td>") < page.index("<td>AVAX-USD</td>")  # as written: the Go scanner's order


def test_a_report_whose_bytes_changed_is_an_error_page_never_rendered(site: Site) -> None:
    report = site.pair[0]
    target = site.catalog.base_dir / report.path
    target.chmod(0o644)
    target.write_bytes(target.read_bytes().replace(b'"rank": 1', b'"rank": 9', 1))
    page = site.client("viewer").get(f"/explain?path={report.path}")
    assert page.status_code == 409 and "no longer matches the catalog" in page.text
    assert "Ranked assets" not in page.text and "<h1>409</h1>" in page.text
    api = TestClient(site.app, headers=site.bearer("viewer")).get(f"/api/explain?path={report.path}")
    assert api.status_code == 409 and "no longer matches the catalog" in api.json()["error"]


def test_a_catalogued_explain_artifact_that_is_not_a_report_is_a_clear_400(site: Site, run_cli: Cli,
                                                                           tmp_path: Path) -> None:  # fmt: skip
    report = json.loads((site.catalog.base_dir / site.pair[0].path).read_text())
    report["universe"][0]["score"] = 10**400  # JSON, but beyond any float: no report holds it
    source = tmp_path / "huge.json"
    source.write_text(json.dumps(report))
    put = run_cli("put", str(source), "--type", "explain", "--prefix", "huge", "--format", "json")
    assert put.exit_code == 0, put.output
    path = json.loads(put.stdout)["artifacts"][0]["path"]
    answer = TestClient(site.app, headers=site.bearer("viewer")).get(f"/api/explain?path={path}")
    assert answer.status_code == 400 and "$.universe[0].score is out of range" in answer.json()["error"]
    assert site.client("viewer").get(f"/explain?path={path}").status_code == 400


def test_explain_show_names_an_artifact_of_another_type_as_the_page_does(site: Site, run_cli: Cli) -> None:
    result = run_cli("explain", "show", site.ledger.path)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {site.ledger.path} is a ledger artifact, not an explain report"


# -- hostile parameters ---------------------------------------------------------------------------------

#: Each against both routes that take an artifact's path: the proof download and the explain report.
PATH_CASES = {
    "no-path": ("", 400, "give the"),
    "empty-path": ("?path=", 400, "give the"),
    "traversal": ("?path=../../etc/passwd", 404, "no artifact at ../../etc/passwd"),
    "inner-traversal": ("?path=explain/../../catalog.sqlite", 404, "no artifact at explain/../../catalog.sqlite"),
    "absolute": ("?path=/etc/passwd", 404, "no artifact at /etc/passwd"),
    "nul": ("?path=explain/a%00b", 400, "path contains control characters"),
    "escape": ("?path=%1b%5b31m", 400, "path contains control characters"),
    "huge": ("?path=" + "x" * 5000, 400, "path is longer than 512 characters"),
    "unknown": ("?path=explain/none.json", 404, "no artifact at explain/none.json"),
    "twice": ("?path=a&path=b", 400, "path is given more than once"),
    "unknown-param": ("?path=a&checkpoint=/etc/passwd", 400, "unknown parameter 'checkpoint'"),
}
HOSTILE = {f"{route}-{kind}": (path + query, status, message)
           for route, path in (("proof", "/artifact/proof"), ("explain", "/api/explain"))
           for kind, (query, status, message) in PATH_CASES.items()}
HOSTILE |= {
    "explain-wrong-type": ("/api/explain?path={ledger}", 400, "is a ledger artifact, not an explain report"),
    "export-get-params": ("/api/export?since=2024-01-01", 400, "unknown parameter 'since'"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_parameters_are_a_clear_4xx_and_write_nothing(site: Site, scratch: Path, case: str) -> None:
    path, status, message = HOSTILE[case]
    before = site.events()
    answer = TestClient(site.app, headers=site.bearer("admin")).get(path.format(ledger=site.ledger.path))
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"], answer.text
    assert "Traceback" not in answer.text and site.events() == before and leftovers(scratch) == []


def test_hostile_parameters_on_a_page_are_a_page(site: Site) -> None:
    answer = site.client("viewer").get(f"/explain?path={site.ledger.path}")
    assert answer.status_code == 400 and "<h1>400</h1>" in answer.text and "not an explain report" in answer.text
    missing = site.client("viewer").get("/artifact/proof?path=ledger/none.json")
    assert missing.status_code == 404 and "<h1>404</h1>" in missing.text
