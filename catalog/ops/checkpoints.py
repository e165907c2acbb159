"""Checkpoints of the audit log, kept outside the store; witnesses' cosignatures.

A **checkpoint** is the log's Merkle tree at one moment (its size and root
hash) in the C2SP tlog-checkpoint format (:mod:`catalog.core.tlog`), signed
with the store's key when ``audit.signing_key`` is set, written to a file that
lives outside the store. Verifying the log against it proves the current log
still extends it, so even a consistent rewrite of the whole chain is caught;
its signature proves who wrote it. Checkpoints in the JSON of earlier versions
(the chain head: seq, hash, time) are still read and checked.

A **witness** (a second key, held by someone else) cosigns a checkpoint only
after checking it extends the last one it cosigned (:func:`cosign`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, select

from ..core import fs, note, tlog, tree
from ..core.chain import AuditReport, Checkpoint, Problem, read_checkpoint
from ..core.errors import CatalogError, ProofError, SignatureError, ValidationError, translate
from ..core.schema import EVENTS
from ..core.store import Catalog
from . import keys

log = logging.getLogger("catalog")

AnyCheckpoint = Checkpoint | tlog.TreeCheckpoint
#: The names of checkpoint files in the configured folder: this version's, and the JSON of earlier ones.
PATTERNS = ("checkpoint-*.txt", "checkpoint-*.json")
_COSIGNED = "only tree checkpoints are cosigned"


def checkpoint_dir(catalog: Catalog) -> Path | None:
    """The configured checkpoint folder (``audit.checkpoint_dir``) or None; ValidationError if inside the store."""
    folder = catalog.settings.checkpoint_dir
    return None if folder is None else fs.outside_store(catalog.base_dir, folder, "checkpoint folder")


def take_checkpoint(catalog: Catalog, output: Path | None = None, *,
                    folder: bool = True) -> tuple[tlog.TreeCheckpoint, bytes, Path | None]:  # fmt: skip
    """Write a checkpoint of the log (including this checkpoint's own ``checkpoint`` event) and record the event.

    The checkpoint's tree size is the seq of its own event, its root the RFC
    9162 root of the events up to it; it is signed with the store's key when
    one is configured (the event names the key: ``details.key``). Written to
    ``output``, else into the configured checkpoint folder (unless ``folder``
    is False), else only returned (the caller prints it). The file is durable
    before the event that names it commits: the event is appended, the file
    published (fsync, never clobbering), then the unit of work commits; if
    the file cannot be written nothing is recorded, and if the commit fails
    the file is removed.
    Returns the checkpoint, its bytes and where they were written. Raises
    :class:`ValidationError` for an output inside the store, in a missing
    folder, or already there, or a signing key that is refused, and
    StoreError (via OSError) when the folder cannot be written.
    """
    target = None if output is None else new_file(catalog.base_dir, output, "checkpoint")
    into = checkpoint_dir(catalog) if target is None and folder else None
    signer = keys.configured_signer(catalog.settings)  # a refused key refuses the checkpoint: never unsigned instead
    data = b""
    try:
        with catalog.change() as tx:
            at = tx.clock()  # the log's time: the checkpoint's event is dated the same
            details = {"file": str(target or into or "(printed)")}
            if signer is not None:
                details["key"] = signer.verifier.label
            tx.events.append("checkpoint", at=at, details=details)
            size, origin, root = tx.head[0], keys.log_origin(tx.read), tx.root()
            text = tlog.checkpoint_text(origin, size, root)
            signed = note.sign(text, signer) if signer is not None else note.Note(text)
            data = signed.encode()
            if target is None and into is not None:
                target = into / _file_name(size, at)
            if target is not None:
                fs.ensure_folder(target.parent)
                fs.create_exclusive(target.parent, target.name, data)  # durable before the event naming it commits
    except BaseException:
        # The event was not committed: a file of ours claiming that head must not stay (never someone else's).
        if target is not None and data and not target.is_symlink() and target.is_file() and target.read_bytes() == data:
            fs.unlink_durably(target)
        raise
    return tlog.TreeCheckpoint(origin, size, root, signed, str(target or "")), data, target


def auto_checkpoint(catalog: Catalog) -> tlog.TreeCheckpoint | None:
    """After a retention or verify run: a checkpoint into the configured folder, if there is one; returns it or None.

    A folder that cannot be written, or a signing key that is refused,
    records nothing and is logged as a warning (the run it follows is
    recorded and reported all the same).
    """
    if catalog.settings.checkpoint_dir is None:
        return None
    try:
        return take_checkpoint(catalog)[0]
    except (OSError, CatalogError) as exc:
        known = translate(exc)
        log.warning("the automatic checkpoint into %s was not written: %s", catalog.settings.checkpoint_dir, known)
        return None


def configured_checkpoints(catalog: Catalog) -> list[AnyCheckpoint]:
    """Every checkpoint file of the configured folder (:data:`PATTERNS`), by name; none if no folder.

    ValidationError if one is not a checkpoint.
    """
    folder = checkpoint_dir(catalog)
    if folder is None or not folder.is_dir():
        return []
    return [read_checkpoint(p) for p in sorted(p for pattern in PATTERNS for p in folder.glob(pattern))]


def newest_tree_checkpoint(catalog: Catalog) -> tlog.TreeCheckpoint | None:
    """The tree checkpoint of the configured folder with the most events; None if it holds none (or no folder).

    Files are read largest size first, as their names give it
    (``checkpoint-<size>-<time>``), until one is a tree checkpoint: a page
    showing a proof reads one file, not the whole folder. ValidationError if
    a file read is not a checkpoint.
    """
    folder = checkpoint_dir(catalog)
    if folder is None or not folder.is_dir():
        return None

    def named_size(path: Path) -> int:
        digits = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
        return int(digits) if digits.isdigit() else -1

    files = sorted((p for pattern in PATTERNS for p in folder.glob(pattern)), key=lambda p: (named_size(p), p.name))
    best: tlog.TreeCheckpoint | None = None
    for path in reversed(files):
        if best is not None and named_size(path) < best.size:
            break
        found = read_checkpoint(path)
        if isinstance(found, tlog.TreeCheckpoint) and (best is None or found.size > best.size):
            best = found
    return best


def _file_name(size: int, at: datetime, ext: str = "txt") -> str:
    """The name of the checkpoint of ``size`` events taken ``at`` (UTC) in the configured folder (``json``: before
    signed checkpoints)."""
    return f"checkpoint-{size:012d}-{at:%Y%m%dT%H%M%SZ}.{ext}"


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
    present = {p.name for pattern in PATTERNS for p in folder.glob(pattern)}
    e = EVENTS.c
    with catalog.read() as conn:
        written = conn.execute(select(e.seq, e.at, e.details).where(e.action == "checkpoint").order_by(e.seq)).all()
    found = [Problem(row.seq, "checkpoint", f"checkpoint {_file_name(row.seq, row.at)}, written into {folder} at "
                     f"seq {row.seq}, is gone from it: restore it from a copy (the log may have been rewritten)")
             for row in written
             if json.loads(row.details).get("file") == str(folder)
             and not {_file_name(row.seq, row.at), _file_name(row.seq, row.at, "json")} & present]  # fmt: skip
    if not present:
        found.append(Problem(None, "checkpoint", f"the configured checkpoint folder {folder} (audit.checkpoint_dir) "
                             "holds no checkpoint: there is nothing to check the log against"))  # fmt: skip
    return found


def load_checkpoints(catalog: Catalog, files: list[Path]) -> list[AnyCheckpoint]:
    """The checkpoints in ``files`` followed by those of the configured folder: what a log must still extend.

    Raises ValidationError for a file that is missing or not a checkpoint.
    """
    return [read_checkpoint(Path(p)) for p in files] + configured_checkpoints(catalog)


# -- verifying ----------------------------------------------------------------------------------------------


@dataclass
class LogCheck:
    """``audit verify`` with checkpoints: the walk's report, and how the tree checkpoints were signed.

    ``signed``: checkpoints a trusted key signed; ``unsigned``: written
    without a key (and recorded so); ``unchecked``: signed, but no key was
    known to check them. ``keys``: the trusted keys (given or configured, and
    those the log announced from them).
    """

    report: AuditReport
    signed: int = 0
    unsigned: int = 0
    unchecked: int = 0
    keys: tuple[note.Verifier, ...] = ()


def verify_log(catalog: Catalog, files: list[Path] = (), key_files: list[Path] = ()) -> LogCheck:  # type: ignore[assignment]
    """Verify the log (:meth:`Catalog.audit_verify`) against every checkpoint given and configured, and their signatures.

    Each tree checkpoint is checked against the log (origin, size, root:
    :func:`catalog.core.tlog.check`) and, when a key is known (``key_files``:
    verifier keys; else the configured signing key, with the keys they
    announced in ``key_rotate`` events), must be signed by one of them: a
    signature that does not verify, a checkpoint signed only by unknown keys,
    or one that carries no signature though its event says it was signed (this
    last whether a key is known or not), is a problem. Raises ValidationError
    for a checkpoint or key file that cannot be read.
    """
    found = load_checkpoints(catalog, list(files))
    trusted, refused = keys.trusted_keys(catalog, key_files)
    check = LogCheck(catalog.audit_verify(found), keys=tuple(trusted))
    report = check.report
    report.problems.extend(Problem(None, "key", message) for message in refused)
    report.problems.extend(folder_problems(catalog))  # a configured folder that is missing, empty or lost one
    with catalog.read() as conn:
        for checkpoint in (c for c in found if isinstance(c, tlog.TreeCheckpoint)):
            problem = _signature_problem(conn, checkpoint, check)
            if problem is not None:
                report.problems.append(problem)
    report.problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return check


def _signature_problem(conn: Connection, checkpoint: tlog.TreeCheckpoint, check: LogCheck) -> Problem | None:
    where = f"checkpoint {checkpoint.source}"
    if not checkpoint.note.signatures:  # whether a key is known or not: the log says if it was signed
        event = conn.execute(select(EVENTS.c.action, EVENTS.c.details).where(EVENTS.c.seq == checkpoint.size)).first()
        claimed = json.loads(event.details).get("key") if event is not None and event.action == "checkpoint" else None
        if claimed:
            return Problem(checkpoint.size, "signature", f"{where} carries no signature, but its event (seq "
                                                         f"{checkpoint.size}) says {claimed} signed it: it was removed")  # fmt: skip
        check.unsigned += 1
        return None
    if not check.keys:
        check.unchecked += 1
        return None
    try:
        signed = note.verified_by(checkpoint.note, check.keys)
    except (SignatureError, ValidationError) as exc:
        return Problem(checkpoint.size, "signature", f"{where}: {exc}")
    if not signed:
        labels = ", ".join(s.label for s in checkpoint.note.signatures)
        trusted = ", ".join(k.label for k in check.keys)
        return Problem(checkpoint.size, "signature", f"{where} is signed only by keys not trusted ({labels}); "
                                                     f"trusted: {trusted}")  # fmt: skip
    check.signed += 1
    return None


# -- witnesses ------------------------------------------------------------------------------------------------


def read_proof(path: Path, size1: int, size2: int) -> list[bytes]:
    """The consistency proof in the JSON file ``path``: ``{"size1": N, "size2": M, "proof": [base64 hash, …]}``.

    Its sizes must be ``size1`` and ``size2`` (the checkpoints'). Raises
    ValidationError if the file cannot be read or is not such a proof.
    """
    data, _ = fs.read_small(path, "proof file", 1024 * 1024)
    try:
        loaded = json.loads(data)
        sizes, hashes = (loaded["size1"], loaded["size2"]), loaded["proof"]
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            raise ValueError("proof is not a list of base64 hashes")
        proof = [base64.b64decode(h, validate=True) for h in hashes]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ValidationError(f"proof file {path} is not a consistency proof ({exc})") from None
    if sizes != (size1, size2):
        raise ValidationError(f"proof file {path} is a proof from {sizes[0]} to {sizes[1]} events, not from "
                              f"{size1} to {size2}")  # fmt: skip
    return proof


def cosign(checkpoint_file: Path, witness: note.Signer, *, log_keys: list[note.Verifier], previous: Path | None,
           proof: Path | None, catalog: Catalog | None = None, output: Path | None = None) -> tlog.TreeCheckpoint:  # fmt: skip
    """The checkpoint in ``checkpoint_file`` cosigned by ``witness`` (see :func:`catalog.core.tlog.cosign`).

    ``previous``: the last checkpoint the witness cosigned (None: its first).
    The consistency proof from it is read from ``proof`` (:func:`read_proof`)
    or, if None, computed from ``catalog``'s tree; the log's keys are
    ``log_keys`` or, if empty, ``catalog``'s trusted keys
    (:func:`catalog.ops.keys.trusted_keys`). Written to ``output`` (new,
    durable, never clobbering: see :func:`new_file`) if given. Raises
    ValidationError for files that are not tree checkpoints, a missing key
    or proof; SignatureError or ProofError when the witness refuses.
    """
    checkpoint = tree_checkpoint(checkpoint_file, _COSIGNED)
    old = None if previous is None else tree_checkpoint(previous, _COSIGNED)
    if not log_keys and catalog is not None:
        log_keys = keys.trusted_keys(catalog)[0]
    if not log_keys:
        raise ValidationError("no key to check the store's signature with: give the store's public key")
    hashes: list[bytes] = []
    if old is not None and old.size <= checkpoint.size:
        if proof is not None:
            hashes = read_proof(proof, old.size, checkpoint.size)
        elif catalog is None:
            raise ValidationError("no consistency proof: give one, or run against the store")
        else:
            with catalog.read() as conn:
                if checkpoint.origin != keys.log_origin(conn.execute):
                    raise ProofError(f"checkpoint {checkpoint.source} is not of this store's log: not cosigned")
                hashes = tree.consistency(conn, old.size, checkpoint.size)
    done = tlog.cosign(checkpoint, witness, int(time.time()), log_keys=log_keys, previous=old, proof=hashes)
    if output is not None:
        fs.create_exclusive(output.parent, output.name, done.encode())
    return done


def new_file(base_dir: Path, output: Path, what: str) -> Path:
    """``output`` made absolute, if a new file may be written there; ValidationError naming ``what`` otherwise.

    Refused: inside the store ``base_dir``, in a missing folder, or existing.
    """
    target = fs.outside_store(base_dir, output, what)
    if not target.parent.is_dir():
        raise ValidationError(f"folder {target.parent} for the {what} does not exist")
    if os.path.lexists(target):
        raise ValidationError(f"{target} already exists; a {what} never overwrites one")
    return target


def tree_checkpoint(path: Path, why: str) -> tlog.TreeCheckpoint:
    """The tree checkpoint in the file ``path``; ValidationError if it is missing, malformed or of the older JSON
    kind (the message ends with ``why`` a tree checkpoint is needed)."""
    found = read_checkpoint(path)
    if not isinstance(found, tlog.TreeCheckpoint):
        raise ValidationError(f"{path} is a checkpoint of an earlier version (JSON): {why}")
    return found
