"""The ``catalog`` command line: a thin layer over the Python API.

:mod:`.root` holds the root group, its global options, the error boundary and
shell completion; each command group has a module of its own; :mod:`.render`
is the one renderer every listing goes through; :mod:`.progress` the progress
bar of long work.
"""

from . import admin, artifacts, audit, explain, integrity, keys, lifecycle, proofs, serve, users  # noqa: F401  (they register their commands)
from .root import cli, main

__all__ = ["cli", "main"]
