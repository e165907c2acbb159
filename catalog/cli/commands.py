"""Start-up of the command line: only the module of the command run is imported, and garbage is collected rarely.

``catalog put`` imports :mod:`.artifacts` and none of the other command
modules; ``catalog --help`` imports none of them and lists every command with
the short help written here (``tests/test_cli.py`` checks this table against
the commands themselves). This is click's lazy loading of subcommands
("Advanced Groups: Lazily Loading Subcommands" in click's documentation).

While the ``catalog`` command starts (:func:`start_up` to :func:`started`),
the cyclic garbage collector runs rarely: the objects imports make (modules,
classes, functions) live as long as the process, and each collection would
walk them all. Once the command's modules are loaded they are frozen
(:func:`gc.freeze`), so the collections the command goes on to make, at the
usual thresholds, no longer walk them (tens of milliseconds of each
``catalog put``, issue 17).
"""

from __future__ import annotations

import gc
from importlib import import_module
from typing import Any

import click

#: Root command -> (the modules of this package that define it and its subcommands, its short help).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("admin", "Create the store's folders and the catalog schema (safe to run again)."),
    "db": ("admin", "Catalog schema migrations."),
    "config": ("admin", "The effective configuration."),
    "status": ("admin", "For schedulers and dashboards: is anything waiting for a person? Exit 1 if so."),
    "backup": ("admin", "Copy the SQLite catalog online (writers may go on) and record the chain head it captured."),
    "put": ("artifacts", "Import FILE (or - for standard input) into the store and catalog it."),
    "get": ("artifacts", "Print an artifact's bytes, refused if they no longer match the catalog."),
    "ls": ("artifacts", "List catalogued artifacts (newest first by default)."),
    "show": ("artifacts", "One artifact: its row, its file as it is now, and its whole history."),
    "find": ("artifacts", "Find artifacts by content: the rows whose SHA-256 is HASH."),
    "stats": ("artifacts", "Counts and bytes by type, by folder and by status, and for the whole store."),
    "audit": ("audit proofs", "The hash-chained audit log: read it, prove it intact, export evidence."),
    "explain": ("explain", "Explainability reports: render one, or import one written elsewhere."),
    "snapshot-config": ("explain", "Record the effective configuration (and where each value came from) as a config "
                        "artifact."),  # fmt: skip
    "demo": ("explain", "Run one synthetic scanner cycle end to end and show what it stored."),
    "reconcile": ("integrity", "Find every disagreement between the store's files and the catalog; --fix repairs the "
                  "catalog."),  # fmt: skip
    "verify": ("integrity", "Re-read files and check size and SHA-256 against the catalog, as a recorded run."),
    "findings": ("integrity", "What checks found wrong, open until re-checked and passed, or resolved by a person "
                 "with a reason."),  # fmt: skip
    "keys": ("keys", "Ed25519 keys that sign the store's checkpoints, and witnesses' keys that cosign them."),
    "retention": ("lifecycle", "What expires by type, and applying it (delete or archive), as SQL over the catalog."),
    "hold": ("lifecycle", "Legal holds: what they cover is never deleted or archived, whatever its age."),
    "policy": ("lifecycle", "Retention floors kept in the catalog itself, so no writer's settings can go below them."),
    "retain": ("lifecycle", "Extend how long artifacts are kept (never shortened)."),
    "limits": ("lifecycle", "Files and bytes per folder and for the store against the limits; warn at 80 %, exit 1 "
               "when over."),  # fmt: skip
    "serve": ("serve", "Serve the evidence room: a web view and JSON API of this store, for accounts made with "
              "`catalog users add`."),  # fmt: skip
    "users": ("users", "Accounts of the web view (`catalog serve`): each a name, a role and a secret."),
}


class LazyGroup(click.Group):
    """A group whose commands (``lazy``: name -> (modules, short help)) are imported when first looked up."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, sorted, without importing any."""
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name`` (its modules imported first, which registers it), or None."""
        if cmd_name not in self.commands and cmd_name in self.lazy:
            for module in self.lazy[cmd_name][0].split():
                import_module(f"{__package__}.{module}")
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their short help, as click lists them, from the table for those not imported."""
        stand_ins = {name: click.Command(name, help=text) for name, (_, text) in self.lazy.items()}
        click.Group(commands={**stand_ins, **self.commands}).format_commands(ctx, formatter)


#: The collector's own thresholds while the command line starts (None: not started by :func:`start_up`, or started).
_THRESHOLDS: tuple[int, int, int] | None = None
_STARTING_THRESHOLD = 100_000  # objects between young collections while starting (the default is 700)


def start_up() -> None:
    """The ``catalog`` command is starting: collect garbage rarely until :func:`started`."""
    global _THRESHOLDS
    _THRESHOLDS = gc.get_threshold()
    gc.set_threshold(_STARTING_THRESHOLD, *_THRESHOLDS[1:])


def started() -> None:
    """The command's modules are loaded: freeze what start-up made, and collect at the usual thresholds again.

    Does nothing unless :func:`start_up` ran (a program or a test that runs
    the commands in its own process keeps its collector as it is), and only once.
    """
    global _THRESHOLDS
    if _THRESHOLDS is not None:
        gc.freeze()
        gc.set_threshold(*_THRESHOLDS)
        _THRESHOLDS = None
