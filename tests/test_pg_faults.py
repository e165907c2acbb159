"""PostgreSQL faults: the server goes away mid-commit or before a write.

These tests stop a server, so they never touch the suite's shared one: a
module fixture runs a throw-away cluster from the same OS binaries as .ci/run,
which a test may stop (``-m immediate``: a crash, not a goodbye) and start
again on the same data folder and port. They run on the PostgreSQL pass only.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

import catalog.core.fs as writer_module
from catalog.core.errors import CatalogDatabaseError, CommitError, Remedy
from catalog.core.settings import Settings
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.reconcile import reconcile

from helpers import BACKEND, Cli, _unavailable, all_records, catalog_env, store_files, write_events

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql", reason="stops its own PostgreSQL server: runs with CATALOG_TEST_BACKEND=postgresql"
)

PAYLOAD = b'{"scan": "momentum", "v": 1}\n'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _version(bindir: str) -> tuple[int, ...]:
    """``/usr/lib/postgresql/15/bin`` -> (15,), for picking the newest."""
    return tuple(int(part) for part in Path(bindir).parent.name.split(".") if part.isdigit())


class Server:
    """A throw-away PostgreSQL cluster that tests may stop and start again (same data folder, same port)."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root, self.data, self.log = bindir, root, root / "data", root / "server.log"
        self.port = _free_port()
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # it refuses to run as root
        self.running = False

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        done = subprocess.run(
            [*self.as_pg, str(self.bindir / tool), *args], check=False, capture_output=True, text=True, timeout=60
        )
        if check and done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            pytest.fail(f"{tool} {' '.join(args)} failed: {(done.stderr or done.stdout).strip()}\n{log}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")
        self.running = True

    def stop(self, *, check: bool = True) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=check)
        self.running = False

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"catalog_fault_{secrets.token_hex(6)}"
        admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)


@pytest.fixture(scope="module")
def pg_server() -> Iterator[Server]:
    """This module's own PostgreSQL server, removed at the end."""
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version)
    if not bindirs or not os.access(Path(bindirs[-1]) / "pg_ctl", os.X_OK):
        _unavailable("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root needs a 'postgres' user to run the server as (.ci/run creates it)")
    # Not pytest's tmp_path: its parents are private to us, and the socket path must stay short.
    root = Path(tempfile.mkdtemp(prefix="catalog-pg-faults-", dir="/tmp"))
    server = Server(Path(bindirs[-1]), root)
    try:
        os.chmod(root, 0o755)
        if server.as_pg:
            shutil.chown(root, "postgres")
        server.init()
        server.start()
        yield server
    finally:
        server.stop(check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def server(pg_server: Server) -> Iterator[Server]:
    """The module's server, running when a test starts and again after it."""
    if not pg_server.running:
        pg_server.start()
    yield pg_server
    if not pg_server.running:
        pg_server.start()


@pytest.fixture
def catalog_url(server: Server) -> str:
    """Overrides conftest's: a fresh database on this module's server, never the shared one."""
    return server.create_database()


@contextmanager
def stop_mid_commit(server: Server, target: Engine | type[Engine]) -> Iterator[list[str]]:
    """Stop the server while the writer commits: its file is published, its COMMIT not yet sent.

    ``target``: the catalog's engine, or the Engine class for engines made later
    (the CLI's). Yields a list that holds "stopped" once the server was stopped.
    """
    stopped: list[str] = []
    published: list[str] = []

    def hook(point: str) -> None:
        if point == "published":
            published.append(point)

    def on_commit(conn: Any) -> None:
        if published and not stopped and conn.get_execution_options().get("catalog_write"):
            server.stop()
            stopped.append("stopped")

    previous = writer_module.FAULT_HOOK
    writer_module.FAULT_HOOK = hook
    event.listen(target, "commit", on_commit)
    try:
        yield stopped
    finally:
        event.remove(target, "commit", on_commit)
        writer_module.FAULT_HOOK = previous


def test_server_stopped_mid_commit_keeps_the_file_and_reconcile_adopts_it(
    server: Server, catalog: Catalog, settings: Settings, base_dir: Path
) -> None:
    with stop_mid_commit(server, catalog.db.engine) as stopped, pytest.raises(CommitError) as caught:
        AtomicWriter(catalog=catalog).write_bytes("ledger", "midcommit", PAYLOAD, "json")
    catalog.close()
    assert stopped == ["stopped"]
    message = str(caught.value)
    (path,) = caught.value.paths
    assert "\n" not in message, message
    assert f"published {path} " in message and caught.value.remedy is Remedy.ADOPT  # the CLI adds its command
    assert "cannot reach catalog" in message  # the cause, in one line
    assert store_files(base_dir) == [path]  # under its final name, no temp beside it
    assert (base_dir / path).read_bytes() == PAYLOAD

    server.start()
    with Catalog(settings) as fresh:
        assert all_records(fresh) == [] and write_events(fresh) == []  # the COMMIT never reached the server
        found = reconcile(fresh, grace=0)
        assert [(f.cls, f.path, f.fixed) for f in found.findings] == [("orphan", path, None)]
        fixed = reconcile(fresh, fix=True, grace=0)
        assert [(f.cls, f.path, f.fixed) for f in fixed.findings] == [("orphan", path, "adopted")]
        assert reconcile(fresh, deep=True).drift == []
        assert fresh.audit_verify().ok
        record = fresh.find_path(path)
        assert record is not None and record.status == "active"
        assert (record.size, record.sha256) == (len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest())
        assert [e.action for e in fresh.events() if e.path == path] == ["adopt"]


def test_cli_put_mid_commit_is_one_error_line_and_reconcile_fix_adopts(
    server: Server, catalog_url: str, base_dir: Path, tmp_path: Path
) -> None:
    cli = Cli(base_dir, catalog_url)
    assert cli("init").exit_code == 0
    source = tmp_path / "scan.json"
    source.write_bytes(PAYLOAD)
    with stop_mid_commit(server, Engine) as stopped:
        result = cli("put", str(source), "--type", "ledger", "--prefix", "cli_midcommit")
    assert stopped == ["stopped"]
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "Traceback" not in result.output
    (path,) = store_files(base_dir)
    assert line.startswith(f"Error: published {path} ") and "catalog reconcile --fix" in line
    assert (base_dir / path).read_bytes() == PAYLOAD

    server.start()
    fixed = cli("reconcile", "--fix", "--grace", "0", "--format", "json")
    assert fixed.exit_code == 1  # drift found (and fixed): schedulers notice
    assert [(f["class"], f["path"], f["fixed"]) for f in json.loads(fixed.stdout)["findings"]] == [
        ("orphan", path, "adopted")
    ]
    assert cli("reconcile", "--deep").exit_code == 0
    assert cli("audit", "verify").exit_code == 0
    shown = json.loads(cli("show", path, "--format", "json").stdout)
    assert shown["artifact"]["sha256"] == hashlib.sha256(PAYLOAD).hexdigest() and shown["file"]["matches"]


def test_server_down_before_a_write_writes_nothing(
    server: Server, catalog: Catalog, settings: Settings, base_dir: Path, tmp_path: Path
) -> None:
    writer = AtomicWriter(catalog=catalog)  # opened while the server was up: its pool holds a connection
    server.stop()
    with pytest.raises(CatalogDatabaseError) as caught:
        writer.write_bytes("ledger", "down", PAYLOAD, "json")
    catalog.close()
    assert not isinstance(caught.value, CommitError)  # nothing was published, so nothing to adopt
    message = str(caught.value)
    assert "\n" not in message and message.startswith("cannot reach catalog") and f":{server.port}/" in message
    assert store_files(base_dir) == []

    source = tmp_path / "scan.json"
    source.write_bytes(PAYLOAD)
    cli = subprocess.run(
        [sys.executable, "-c", "from catalog.cli import main; main()",
         "put", str(source), "--type", "ledger", "--prefix", "down"],
        env=catalog_env(base_dir, settings.catalog_url), check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 2 and cli.stdout == "", cli.stderr
    (line,) = cli.stderr.splitlines()
    assert line.startswith("Error: cannot reach catalog") and "Traceback" not in cli.stderr
    assert store_files(base_dir) == []

    server.start()
    with Catalog(settings) as fresh:
        assert all_records(fresh) == [] and write_events(fresh) == []
        assert reconcile(fresh, grace=0).findings == []  # no orphan, no temp: nothing happened


def test_a_multi_line_driver_error_still_makes_a_one_line_commit_error(catalog: Catalog, base_dir: Path) -> None:
    """A driver error that reaches the catalog unwrapped keeps only its first line (psycopg adds hints below)."""
    import psycopg

    def on_commit(conn: Any) -> None:
        if conn.get_execution_options().get("catalog_write"):
            raise psycopg.OperationalError(
                "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n"
                "\tbefore or while processing the request."
            )

    event.listen(catalog.db.engine, "commit", on_commit)
    try:
        with pytest.raises(CommitError) as caught:
            AtomicWriter(catalog=catalog).write_bytes("ledger", "multiline", PAYLOAD, "json")
    finally:
        event.remove(catalog.db.engine, "commit", on_commit)
    message = str(caught.value)
    assert "\n" not in message and "(server closed the connection unexpectedly)" in message
    assert store_files(base_dir) == list(caught.value.paths)
