"""The README's promises: its two commands, and CI running the same test command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import BACKEND

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text.split("---")[0])


def test_readme_opens_with_the_two_commands() -> None:
    demo, tests = readme_commands()
    assert demo.endswith("catalog demo") and "pip install ." in demo
    assert tests.endswith("pytest") and "[test" in tests


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = readme_commands()
    assert f'TEST_COMMAND="{tests}"' in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "sqlite", reason="install check runs once, with the SQLite backend")
def test_non_editable_install_works_from_another_folder(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store = tmp_path / "X"
    exe = str(venv / "bin" / "catalog")

    def run(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([exe, "--base-dir", str(store), *args], cwd=elsewhere, input=input, capture_output=True)

    assert run("init").returncode == 0
    put = run("put", "-", "--type", "ledger", "--prefix", "p", "--ext", "json", input=b'{"a": 1}')
    assert put.returncode == 0, put.stderr
    listed = run("ls", "--format", "csv")
    assert listed.returncode == 0 and b"-p-ledger.json" in listed.stdout
    demo = run("demo")
    assert demo.returncode == 0, demo.stderr
    assert b"verifies" in demo.stdout


@pytest.mark.skipif(BACKEND != "sqlite", reason="the README's examples use the embedded default")
def test_the_readme_python_examples_run_as_written(tmp_path: Path) -> None:
    """Issue 14, case 14: the README's example raised CollisionError as written."""
    blocks = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 3
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTORUN_")}
    init = subprocess.run([sys.executable, "-m", "catalog", "init"], cwd=tmp_path, env=env, capture_output=True,
                          text=True)  # fmt: skip
    assert init.returncode == 0, init.stderr
    ran = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=tmp_path, env=env, capture_output=True,
                         text=True)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    verified = subprocess.run([sys.executable, "-m", "catalog", "audit", "verify"], cwd=tmp_path, env=env,
                              capture_output=True, text=True)  # fmt: skip
    assert verified.returncode == 0, verified.stdout
