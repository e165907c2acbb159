"""Where a verb writes: one rule for every output path a command line gives (``get -o``, ``audit export OUT.zip``, …)."""

from __future__ import annotations

from pathlib import Path

from .root import cli_error


def output_file(value: str, name: str) -> Path:
    """The file a verb writes for ``value`` (its ``name`` on the command line). CLIError (exit 2) for ``-``
    (standard output: this verb cannot print) and for an empty path (``Path('')`` would be the working folder)."""
    if value == "-":
        raise cli_error(f"{name} '-' (standard output) is not supported here; give a file path")
    if not value:
        raise cli_error("the output path is empty")
    return Path(value)


def output_or_stdout(value: str, name: str) -> Path | None:
    """:func:`output_file` for a verb that can print: None for ``-`` (standard output). Never a file named ``-``."""
    return None if value == "-" else output_file(value, name)
