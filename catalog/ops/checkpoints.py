"""Checkpoints of the audit chain, kept outside the store.

A **checkpoint** is the chain head (seq, hash, time) written to a file that
lives outside the store; verifying the log against it proves the current log
still extends it, so even a consistent rewrite of the whole chain is caught.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from ..core import fs
from ..core.chain import AuditReport, Checkpoint, Problem, read_checkpoint
from ..core.errors import CatalogError, ValidationError, translate
from ..core.schema import EVENTS
from ..core.store import Catalog

log = logging.getLogger("catalog")


def checkpoint_dir(catalog: Catalog) -> Path | None:
    """The configured checkpoint folder (``audit.checkpoint_dir``) or None; ValidationError if inside the store."""
    folder = catalog.settings.checkpoint_dir
    return None if folder is None else fs.outside_store(catalog.base_dir, folder, "checkpoint folder")


def take_checkpoint(catalog: Catalog, output: Path | None = None) -> tuple[Checkpoint, bytes, Path | None]:
    """Write the chain head (including this checkpoint's own ``checkpoint`` event) and record the event.

    Written to ``output``, else into the configured checkpoint folder, else
    only returned (the caller prints it). The file is durable before the event
    that names it commits: the event is appended, the file published (fsync,
    never clobbering), then the unit of work commits; if the file cannot be
    written nothing is recorded, and if the commit fails the file is removed.
    Returns the checkpoint, its bytes (JSON) and where they were written.
    Raises :class:`ValidationError` for an output inside the store, in a
    missing folder, or already there, and StoreError (via OSError) when the
    folder cannot be written.
    """
    target = fs.outside_store(catalog.base_dir, output, "checkpoint file") if output is not None else None
    folder = checkpoint_dir(catalog) if target is None else None
    if target is not None and not target.parent.is_dir():
        raise ValidationError(f"folder {target.parent} for the checkpoint does not exist")
    if target is not None and os.path.lexists(target):
        raise ValidationError(f"{target} already exists; a checkpoint never overwrites one")
    data = b""
    try:
        with catalog.change() as tx:
            at = tx.clock()  # the log's time: the checkpoint's event is dated the same
            tx.events.append("checkpoint", at=at, details={"file": str(target or folder or "(printed)")})
            checkpoint = Checkpoint(*tx.head, at)
            data = (json.dumps(checkpoint.to_dict(), indent=2) + "\n").encode()
            if target is None and folder is not None:
                target = folder / _file_name(checkpoint.seq, at)
            if target is not None:
                fs.ensure_folder(target.parent)
                fs.create_exclusive(target.parent, target.name, data)  # durable before the event naming it commits
    except BaseException:
        # The event was not committed: a file of ours claiming that head must not stay (never someone else's).
        if target is not None and data and not target.is_symlink() and target.is_file() and target.read_bytes() == data:
            fs.unlink_durably(target)
        raise
    return checkpoint, data, target


def auto_checkpoint(catalog: Catalog) -> Checkpoint | None:
    """After a retention or verify run: a checkpoint into the configured folder, if there is one; returns it or None.

    A folder that cannot be written records nothing and is logged as a warning
    (the run it follows is recorded and reported all the same).
    """
    if catalog.settings.checkpoint_dir is None:
        return None
    try:
        return take_checkpoint(catalog)[0]
    except (OSError, CatalogError) as exc:
        known = translate(exc)
        log.warning("the automatic checkpoint into %s was not written: %s", catalog.settings.checkpoint_dir, known)
        return None


def configured_checkpoints(catalog: Catalog) -> list[Checkpoint]:
    """Every ``checkpoint-*.json`` of the configured folder, by name (none if no folder); ValidationError if bad."""
    folder = checkpoint_dir(catalog)
    if folder is None or not folder.is_dir():
        return []
    return [read_checkpoint(p) for p in sorted(folder.glob("checkpoint-*.json"))]


def _file_name(seq: int, at: datetime) -> str:
    """The name of the checkpoint at ``seq`` taken ``at`` (UTC) in the configured folder."""
    return f"checkpoint-{seq:012d}-{at:%Y%m%dT%H%M%SZ}.json"


def folder_problems(catalog: Catalog) -> list[Problem]:
    """What is wrong with the configured checkpoint folder (kind ``checkpoint``); none without one.

    A folder that is missing, or holds no checkpoint, leaves nothing to check
    the log against; a checkpoint the log says was written into it (its
    ``checkpoint`` event) and that is gone is lost evidence. Raises
    ValidationError for a folder inside the store.
    """
    folder = checkpoint_dir(catalog)
    if folder is None:
        return []
    if not folder.is_dir():
        return [Problem(None, "checkpoint", f"the configured checkpoint folder {folder} (audit.checkpoint_dir) "
                        "does not exist: there is nothing to check the log against")]  # fmt: skip
    present = {p.name for p in folder.glob("checkpoint-*.json")}
    e = EVENTS.c
    with catalog.read() as conn:
        written = conn.execute(select(e.seq, e.at, e.details).where(e.action == "checkpoint").order_by(e.seq)).all()
    found = [Problem(row.seq, "checkpoint", f"checkpoint {_file_name(row.seq, row.at)}, written into {folder} at "
                     f"seq {row.seq}, is gone from it: restore it from a copy (the log may have been rewritten)")
             for row in written
             if json.loads(row.details).get("file") == str(folder) and _file_name(row.seq, row.at) not in present]  # fmt: skip
    if not present:
        found.append(Problem(None, "checkpoint", f"the configured checkpoint folder {folder} (audit.checkpoint_dir) "
                             "holds no checkpoint: there is nothing to check the log against"))  # fmt: skip
    return found


def verify_log(catalog: Catalog, files: list[Path]) -> AuditReport:
    """``audit verify``: the log against itself, its rows, the checkpoints in ``files`` and in the configured folder,
    and that folder itself (:func:`folder_problems`). Raises ValidationError for a checkpoint file that is bad."""
    report = catalog.audit_verify(load_checkpoints(catalog, files))
    report.problems.extend(folder_problems(catalog))
    return report


def load_checkpoints(catalog: Catalog, files: list[Path]) -> list[Checkpoint]:
    """The checkpoints in ``files`` followed by those of the configured folder: what a log must still extend.

    Raises ValidationError for a file that is missing or not a checkpoint.
    """
    return [read_checkpoint(Path(p)) for p in files] + configured_checkpoints(catalog)
