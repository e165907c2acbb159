"""The evidence room in a real browser (issue 16): Debian's chromium under Selenium, at 1280 and at 390 px wide.

A compliance officer logs in through the form, filters the artifacts, opens
one, places a legal hold on it, downloads an evidence bundle and the bundle
verifies with the store's public key. The app is the real one
(:func:`catalog.web.create_app` under uvicorn, on a free loopback port) over a
store of demo data, on the backend the fixtures pick. Every page visited is
checked for a horizontal page scroll (tables scroll inside their own box) and
saved as a screenshot under ``<CATALOG_SCREENSHOTS or the test's tmp_path>/test_browser/<width>/``.

Nothing is downloaded: Selenium gets the paths of ``chromium`` and
``chromedriver`` (so Selenium Manager never runs). Without them, or without
selenium or the web extra, the test skips naming what is missing, unless
``CATALOG_TEST_REQUIRE_BROWSER=1`` (CI) turns that into a failure.
Headless Chrome will not make a window narrower than 500 px, so the 390 px
viewport is a phone's: Chrome's mobile emulation at 390 x 844.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import socket
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from catalog.core import note
from catalog.core.bundle_format import EVENTS, verify_bundle
from catalog.core.settings import Settings, load_settings
from catalog.core.store import Catalog
from catalog.cryptorun.demo import run_demo
from catalog.ops.keys import generate_key, public_path
from catalog.ops.policy import active_holds, holds
from catalog.ops.query import ArtifactQuery, Listing, show
from catalog.ops.users import add_user

from helpers import Cli

REQUIRE_BROWSER = os.environ.get("CATALOG_TEST_REQUIRE_BROWSER") == "1"
WIDTHS = {1280: 900, 390: 844}  # width: height (px) of the viewports: a laptop's and a phone's
DEADLINE = 60  # seconds any one wait may take before the test fails (a wait ends as soon as its condition holds)
USER = "carol"


def missing_tools() -> list[str]:
    """What the browser test needs and this machine lacks."""
    needs = {"chromium": shutil.which("chromium"), "chromedriver": shutil.which("chromedriver"),
             "selenium (pip install selenium)": importlib.util.find_spec("selenium"),
             "the web extra (pip install -e '.[web]')": importlib.util.find_spec("uvicorn")}  # fmt: skip
    return [name for name, found in needs.items() if not found]


@pytest.fixture
def browser_tools() -> None:
    missing = missing_tools()
    if missing:
        reason = "the browser test needs " + ", ".join(missing)
        if REQUIRE_BROWSER:
            pytest.fail(f"{reason} (CATALOG_TEST_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(reason)


# -- the server ------------------------------------------------------------------------------------------


@dataclass
class Room:
    """The running evidence room: its URL, the store behind it, the web user's secret and the store's public key."""

    url: str
    catalog: Catalog
    secret: str
    public_key: Path  # the store's verifier key (keys/store.key.pub), what an auditor is given
    runs: list[str]  # the demo runs' prefixes, oldest first


def wait_for(condition: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Poll ``condition`` until it returns something true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return result


@pytest.fixture
def room(browser_tools: None, catalog: Catalog, base_dir: Path, catalog_url: str | None, tmp_path: Path) -> Iterator[Room]:
    """Demo data, a signing key and a compliance account in the test's store, served by uvicorn in a thread."""
    import uvicorn

    from catalog.web import create_app

    keys = tmp_path / "keys"
    keys.mkdir()
    generate_key("example.com/store", keys / "store.key", base_dir)
    runs = [run_demo(catalog, assets=12, seed=seed)[0].prefix.removesuffix(".scan") for seed in (1, 2)]
    _, secret = add_user(catalog, USER, "compliance")
    settings: Settings = load_settings(overrides={"base_dir": str(base_dir), "catalog_url": catalog_url},
                                       env={"CRYPTORUN_SIGNING_KEY": str(keys / "store.key")})  # fmt: skip
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", access_log=False, ws="none",
                                           server_header=False))  # fmt: skip
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), "the server to start")
        assert server.started, "the server stopped while starting (its log is above)"
        yield Room(f"http://127.0.0.1:{listener.getsockname()[1]}", catalog, secret, public_path(keys / "store.key"), runs)
    finally:
        server.should_exit = True
        thread.join(DEADLINE)
        listener.close()
    assert not thread.is_alive(), "the server did not stop"


# -- the browser -----------------------------------------------------------------------------------------


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
def browser(browser_tools: None, width: int, downloads: Path) -> Iterator[Any]:
    """Headless chromium ``width`` px wide (the test's parameter), downloading into ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    height = WIDTHS[width]
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for argument in ("--headless=new", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update"):  # fmt: skip
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chrome's sandbox refuses to run as root
    if width < 500:  # headless windows are at least 500 px wide: emulate the phone's viewport instead
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": width, "height": height,
                                                                              "pixelRatio": 1}})  # fmt: skip
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})  # fmt: skip
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    try:
        driver.set_page_load_timeout(DEADLINE)
        yield driver
    finally:
        driver.quit()


class Visit:
    """The browser's walk through the room: each page checked for layout and saved as a numbered screenshot."""

    def __init__(self, driver: Any, room: Room, width: int, shots: Path) -> None:
        self.driver, self.room, self.width, self.shots = driver, room, width, shots
        self.pages = 0

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def texts(self, css: str) -> list[str]:
        from selenium.webdriver.common.by import By

        return [element.text for element in self.driver.find_elements(By.CSS_SELECTOR, css)]

    def reach(self, css: str) -> Any:
        """The element ``css`` selects, scrolled into view: shown and inside the viewport's width (else the test fails)."""
        element = self.find(css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})", element)
        box = self.driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                         "return [r.left, r.right, r.width, window.innerWidth]", element)  # fmt: skip
        assert element.is_displayed() and box[2] > 0, f"{css} is not shown at {self.width} px"
        assert box[0] >= -1 and box[1] <= box[3] + 1, f"{css} lies outside the {self.width} px viewport: {box}"
        return element

    def type_into(self, css: str, text: str) -> None:
        field = self.reach(css)
        field.clear()
        field.send_keys(text)

    def choose(self, css: str, option: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.reach(css)).select_by_visible_text(option)

    def follow(self, css: str, name: str) -> None:
        """Click the link or button ``css`` selects and wait for the page it leads to (then :meth:`page`)."""
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        old = self.find("html")
        self.reach(css).click()
        WebDriverWait(self.driver, DEADLINE).until(ec.staleness_of(old))
        self.page(name)

    def download(self, css: str, folder: Path, suffix: str) -> Path:
        """Click ``css`` and wait for Chrome to finish saving a file named ``*suffix`` into ``folder``."""
        before = set(folder.iterdir())
        self.reach(css).click()
        return wait_for(lambda: next((p for p in set(folder.iterdir()) - before if p.name.endswith(suffix)), None),
                        f"a download *{suffix} in {folder}")  # fmt: skip

    def open(self, path: str, name: str) -> None:
        self.driver.get(self.room.url + path)
        self.page(name)

    def page(self, name: str) -> None:
        """The page now shown: loaded, as wide as asked, no horizontal page scroll; saved as ``NN-name.png``."""
        wait_for(lambda: self.driver.execute_script("return document.readyState") == "complete", f"{name} to load")
        inner, shown, content = self.driver.execute_script(
            "const d = document.documentElement; return [window.innerWidth, d.clientWidth, d.scrollWidth]")
        # a page wider than a phone's screen makes mobile Chrome zoom out: the viewport grows to fit it
        assert inner == self.width, f"{name}: the viewport is {inner} px wide, not {self.width}"
        assert content <= shown + 1, f"{name} scrolls sideways at {self.width} px: {content} px of content in {shown}"
        self.pages += 1
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        (self.shots / f"{self.pages:02d}-{name}.png").write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture
def shots(width: int, tmp_path: Path) -> Path:
    """Where this width's screenshots go: ``<CATALOG_SCREENSHOTS or tmp_path>/test_browser/<width>``."""
    root = Path(os.environ["CATALOG_SCREENSHOTS"]) if os.environ.get("CATALOG_SCREENSHOTS") else tmp_path
    folder = root / "test_browser" / str(width)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    print(f"screenshots: {folder}")
    return folder


# -- the walk --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", list(WIDTHS), ids=[f"{w}px" for w in WIDTHS])
def test_a_compliance_officer_holds_an_artifact_and_takes_away_a_verified_bundle(
        width: int, room: Room, browser: Any, downloads: Path, shots: Path, run_cli: Cli) -> None:  # fmt: skip
    visit = Visit(browser, room, width, shots)

    # log in: the dashboard asks for an account first, then is where the login leads
    visit.open("/", "login")
    assert visit.find("h1").text == "Log in"
    visit.type_into("input[name=name]", USER)
    visit.type_into("input[name=secret]", room.secret)
    visit.follow("form[action='/login'] button[type=submit]", "dashboard")
    assert f"{USER} (compliance)" in visit.find(".who").text

    # the artifacts, filtered by type and by prefix: exactly the rows the API lists for the same filter
    visit.follow("nav a[href='/artifacts']", "artifacts")
    assert len(visit.texts("tbody tr td:first-child a:first-child")) == 14
    run = room.runs[0]
    visit.choose("select[name=type]", "explain")
    visit.type_into("input[name=prefix]", f"{run}*")
    visit.follow("form.filters button[type=submit]", "artifacts-filtered")
    expected = [r.path for r in Listing(room.catalog, ArtifactQuery(types=("explain",), prefix=f"{run}*"))]
    shown = visit.texts("tbody tr td:first-child a:first-child")
    assert shown == expected and len(shown) == 2 and all(p.startswith("explain/") and run in p for p in shown)

    # one artifact: its path, its hash, its story
    target = next(p for p in shown if p.endswith(".json"))
    visit.follow(f"tbody a[href='/artifacts/{target}']", "artifact")
    record = show(room.catalog, target).record
    assert visit.find("h1.path").text == target and visit.find("code.hash").text == record.sha256
    story = [(e.action, e.actor) for e in room.catalog.events() if e.artifact_id == record.id]
    shown_story = list(zip(visit.texts("table.story tbody td:nth-child(3)"), visit.texts("table.story tbody td:nth-child(4)")))
    assert shown_story == story and story[0][0] == "write"
    saved = visit.download("a.button[href^='/download/']", downloads, Path(target).name)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == record.sha256

    # a legal hold on it, placed from its page with a reason
    reason = f"SEC inquiry 2024-17 ({width} px)"
    visit.type_into("form[action='/holds'] input[name=reason]", reason)
    visit.follow("form[action='/holds'] button[type=submit]", "holds")
    placed = holds(room.catalog)
    assert len(placed) == 1 and visit.find("[role=status]").text == f"Hold {placed[0].id} placed."
    row = visit.texts("tbody tr")[0]
    assert target in row and reason in row
    assert active_holds(room.catalog).covering(record) == placed and placed[0].reason == reason
    event = [e for e in room.catalog.events() if e.action == "hold_place"][-1]
    assert re.fullmatch(rf"web:{USER}@[^:]+:{os.getpid()}", event.actor) and placed[0].placed_by == event.actor

    # the hold shows on the artifact's page too
    visit.open(f"/artifacts/{target}", "artifact-held")
    assert reason in visit.find("main").text

    # the evidence bundle of the events since 2020 (the store was made in 2000), with the files; checked as an
    # auditor checks it, with nothing but the bundle and the store's public key
    visit.follow("nav a[href='/export']", "export")
    visit.type_into("form[action='/export'] input[name=since]", "2020-01-01")
    visit.reach("form[action='/export'] input[name=include_files]").click()
    bundle = visit.download("form[action='/export'] button[type=submit]", downloads, ".zip")
    report = verify_bundle(bundle, keys=[note.parse_verifier(room.public_key.read_text().strip())])
    assert report.ok and report.authenticated, report.problems
    assert report.files == 14 and report.first_seq is not None and report.first_seq > 1  # the 2000 events left out
    with zipfile.ZipFile(bundle) as archive:
        texts = [json.loads(json.loads(line)["text"]) for line in archive.read(EVENTS).splitlines()]
    assert {"action": "hold_place", "actor": event.actor}.items() <= texts[-1].items()
    checked = run_cli("audit", "verify-bundle", str(bundle), "--key", str(room.public_key))
    assert checked.exit_code == 0, checked.stdout + checked.stderr
