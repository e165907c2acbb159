"""The ``catalog`` command line: a thin layer over the Python API.

:mod:`.root` holds the root group, its global options and the error boundary;
each command group has a module of its own; :mod:`.render` is the one
renderer every listing goes through.
"""

from . import admin, artifacts, audit, explain, integrity, lifecycle  # noqa: F401  (they register their commands)
from .root import cli, main

__all__ = ["cli", "main"]
