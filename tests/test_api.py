"""The public surface: every name in ``catalog.__all__`` resolves, lazily."""

from __future__ import annotations

import subprocess
import sys

import catalog


def test_every_exported_name_resolves() -> None:
    for name in catalog.__all__:
        assert getattr(catalog, name) is not None, name


def test_importing_the_package_stays_light() -> None:
    code = "import sys, catalog; print('sqlalchemy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
