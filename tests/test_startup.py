"""Start-up is part of the interface: heavy modules load only when a verb needs them."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import click

from catalog.cli import cli
from catalog.cli.commands import COMMANDS
from catalog.core.store import Catalog

from helpers import subcommands

PROBE = """
import json, sys
from catalog.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="catalog")
except SystemExit as exit:
    code = exit.code
commands = sorted(name for name in sys.modules if name.removeprefix("catalog.cli.") in COMMAND_MODULES)
print(json.dumps({"code": code, "commands": commands, "sqlalchemy": "sqlalchemy" in sys.modules, "alembic": "alembic" in sys.modules,
                  "yaml": "yaml" in sys.modules, "heavy": [name for name in HEAVY if name in sys.modules]}),
      file=sys.stderr)
"""
#: The modules of catalog.cli that define commands (the others: the root, its table of commands, rendering).
COMMAND_MODULES = {module for modules, _ in COMMANDS.values() for module in modules.split()}
#: What the everyday verbs (``put``, ``ls``) never need: the ORM (Core tables are enough), migrations, the web
#: pages' templates and server, and the signatures of checkpoints (issue 17).
HEAVY = ("sqlalchemy.orm", "alembic", "jinja2", "starlette", "cryptography")
PROBE = PROBE.replace("import json, sys", f"import json, sys\nHEAVY = {HEAVY!r}\nCOMMAND_MODULES = {COMMAND_MODULES!r}")


def modules_loaded(*args: str, cwd: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd,
                            env={**os.environ, "COLUMNS": "80"})  # fmt: skip
    return {**json.loads(result.stderr.strip().splitlines()[-1]), "stdout": result.stdout}


def test_help_and_version_import_no_database_code(tmp_path: Path) -> None:
    for args in (["--help"], ["--version"], ["ls", "--help"], ["put", "--help"]):
        loaded = modules_loaded(*args, cwd=tmp_path)
        assert loaded["code"] == 0 and not loaded["sqlalchemy"] and not loaded["alembic"], args


def test_root_help_lists_every_command_without_importing_one(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    loaded = modules_loaded("--help", cwd=tmp_path)
    assert loaded["code"] == 0 and loaded["commands"] == []
    subcommands(cli)  # every command module imported here: the list as the commands themselves give it
    monkeypatch.setenv("COLUMNS", "80")  # the width the probe had
    ctx = click.Context(cli, info_name="catalog", max_content_width=100)
    assert loaded["stdout"].split("Commands:")[1] == cli.get_help(ctx).split("Commands:")[1] + "\n"


def test_verbs_that_do_not_migrate_never_import_alembic(catalog: Catalog, tmp_path: Path) -> None:
    base = ["--base-dir", str(catalog.base_dir)]
    if not catalog.settings.catalog_url.startswith("sqlite"):
        base += ["--catalog-url", catalog.settings.catalog_url]
    for args in (["ls"], ["stats"], ["config", "show"], ["db", "current"]):
        loaded = modules_loaded(*base, *args, cwd=tmp_path)
        assert loaded["code"] == 0 and not loaded["alembic"], args
    assert modules_loaded(*base, "db", "upgrade", cwd=tmp_path)["alembic"]  # the probe can see alembic


def test_put_and_ls_import_only_what_they_use(catalog: Catalog, tmp_path: Path) -> None:
    base = ["--base-dir", str(catalog.base_dir)]
    if not catalog.settings.catalog_url.startswith("sqlite"):
        base += ["--catalog-url", catalog.settings.catalog_url]
    source = tmp_path / "report.json"
    source.write_text('{"cash": 1}')
    for args in (["put", str(source), "--type", "ledger", "--prefix", "startup"], ["ls"], ["ls", "--format", "ndjson"]):
        loaded = modules_loaded(*base, *args, cwd=tmp_path)
        assert loaded["code"] == 0 and loaded["heavy"] == [], args
        assert loaded["commands"] == ["catalog.cli.artifacts"], args  # only the module of the command run
    assert modules_loaded(*base, "status", cwd=tmp_path)["heavy"] == ["cryptography"]  # the probe can see them


#: The `catalog` console script, reporting at exit whether start-up was frozen and the collector's thresholds restored.
COLLECTOR_PROBE = """
import atexit, gc, sys
usual = gc.get_threshold()
atexit.register(lambda: print(gc.get_freeze_count() > 0, gc.get_threshold() == usual, file=sys.stderr))
sys.argv = ["catalog", *sys.argv[1:]]
from catalog.cli import main
main()
"""


def test_the_command_line_collects_garbage_as_usual_once_started(catalog: Catalog, tmp_path: Path, run_cli) -> None:
    base = ["--base-dir", str(catalog.base_dir)]
    if not catalog.settings.catalog_url.startswith("sqlite"):
        base += ["--catalog-url", catalog.settings.catalog_url]
    source = tmp_path / "report.json"
    source.write_text('{"cash": 1}')
    argv = [sys.executable, "-c", COLLECTOR_PROBE, *base, "put", str(source), "--type", "ledger", "--prefix", "gc"]
    child = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path)
    assert child.returncode == 0 and child.stderr.split()[-2:] == ["True", "True"], child.stderr
    frozen = gc.get_freeze_count()
    run_cli("ls")  # in a program's own process: its collector is left as it is
    assert gc.get_freeze_count() == frozen
