"""The ``catalog`` command line: a thin layer over the Python API.

:mod:`.root` holds the root group, its global options, the error boundary and
shell completion; each command group has a module of its own, imported when
one of its commands is run (:mod:`.commands`); :mod:`.render`
is the one renderer every listing goes through; :mod:`.progress` the progress
bar of long work.
"""

from .root import cli, main

__all__ = ["cli", "main"]
