"""Proofs for people, built from the store: an artifact's events in a checkpoint, or a checkpoint extending another.

The file formats and their verification are :mod:`catalog.core.proofs` (pure:
an auditor needs only the package and the public key). Here the proofs are
read from the log's Merkle tree (:mod:`catalog.core.tree`: O(log n) stored
subtrees per proof).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select

from ..core import fs, note, proofs, tlog, tree
from ..core.errors import ProofError, Remedy, ValidationError
from ..core.schema import EVENTS
from ..core.store import Catalog
from . import checkpoints, keys
from .checkpoints import take_checkpoint


def tree_checkpoint(path: Path) -> tlog.TreeCheckpoint:
    """The tree checkpoint in the file ``path``; ValidationError if it is missing, malformed or of the older JSON kind."""
    return checkpoints.tree_checkpoint(path, "a proof needs a checkpoint of the log's Merkle tree; take a new one")


def _extended(conn: Connection, checkpoint: tlog.TreeCheckpoint) -> None:
    """ValidationError unless ``checkpoint`` is of this store; ProofError unless the log extends it (:func:`tlog.check`)."""
    origin = keys.log_origin(conn.execute)
    if checkpoint.origin != origin:
        raise ValidationError(f"checkpoint {checkpoint.source} is of the log {checkpoint.origin!r}, not of this one "
                              f"({origin})")  # fmt: skip
    problem = tlog.check(checkpoint, origin, tree.tree_size(conn), lambda size: tree.root_at(conn, size))
    if problem is not None:
        raise ProofError(f"{problem}; no proof can be made from it", remedy=Remedy.AUDIT)


def prove_artifact(catalog: Catalog, path: str, checkpoint: tlog.TreeCheckpoint | None = None) -> proofs.InclusionProof:
    """The inclusion proofs of every event about the artifact at ``path`` (current or original) in a checkpoint.

    ``checkpoint``: the tree to prove them in; None takes a new one first
    (:func:`catalog.ops.checkpoints.take_checkpoint`: an event, signed with
    the store's key when one is configured, written to the configured
    checkpoint folder if any), so every event of the artifact is covered.
    Events after a given checkpoint are left out (a newer checkpoint covers
    them). Raises NotFoundError for an unknown path, ValidationError for a
    checkpoint of another store or one that predates every event of the
    artifact, and ProofError when the log no longer extends the checkpoint.
    """
    record = catalog.require_path(path)
    if checkpoint is None:
        checkpoint = take_checkpoint(catalog)[0]
    e = EVENTS.c
    with catalog.read() as conn:
        _extended(conn, checkpoint)
        rows = conn.execute(select(e.seq, e.text).where(e.artifact_id == record.id, e.seq <= checkpoint.size)
                            .order_by(e.seq)).all()  # fmt: skip
        if not rows:
            raise ValidationError(f"{record.path} was recorded after checkpoint {checkpoint.source} (of "
                                  f"{checkpoint.size} events): give a newer checkpoint")  # fmt: skip
        events = tuple(proofs.EventProof(row.seq, row.seq - 1, row.text,
                                         tuple(tree.inclusion(conn, row.seq - 1, checkpoint.size))) for row in rows)  # fmt: skip
    return proofs.InclusionProof(checkpoint, record.id, record.path, events)


def later_events(catalog: Catalog, proof: proofs.InclusionProof) -> int:
    """How many events about the proof's artifact the log holds beyond the proof's checkpoint."""
    e = EVENTS.c
    with catalog.read() as conn:
        rows = conn.execute(select(e.seq).where(e.artifact_id == proof.artifact_id, e.seq > proof.checkpoint.size))
        return len(rows.all())


@dataclass(frozen=True)
class StandingProof:
    """An artifact's inclusion proof against a checkpoint that already exists, made without writing anything.

    ``recorded``: the checkpoint is a file of the configured checkpoint folder;
    False: it is the log's head as read now (unsigned, written nowhere, in no
    event: it shows the events are in the log, it proves nothing to an
    auditor). ``later``: events of the artifact after the checkpoint.
    ``why``: why the folder's newest checkpoint was not used (None if it was,
    or the folder has none).
    """

    proof: proofs.InclusionProof
    recorded: bool
    later: int
    why: str | None = None


def head_checkpoint(catalog: Catalog) -> tlog.TreeCheckpoint:
    """The log's tree at its head as read now: an unsigned checkpoint, written nowhere, recorded in no event."""
    with catalog.read() as conn:
        size, origin = tree.tree_size(conn), keys.log_origin(conn.execute)
        root = tree.root_at(conn, size)
    text = tlog.checkpoint_text(origin, size, root)
    return tlog.TreeCheckpoint(origin, size, root, note.Note(text), "the log's head now (unsigned, not recorded)")


def standing_proof(catalog: Catalog, path: str) -> StandingProof:
    """The inclusion proof of the artifact at ``path`` against what exists, writing nothing (a read for viewers).

    Proven against the newest tree checkpoint of the configured folder
    (``audit.checkpoint_dir``: the file an auditor gets with the proof) when
    it covers an event of the artifact, else against :func:`head_checkpoint`.
    ``catalog audit prove PATH --checkpoint FILE`` writes the same proof.
    Raises NotFoundError for an unknown path, ValidationError for a folder
    checkpoint that cannot be read, ProofError when the log no longer extends
    the newest one.
    """
    record = catalog.require_path(path)
    newest = checkpoints.newest_tree_checkpoint(catalog)
    why = None
    if newest is not None:
        try:
            proof = prove_artifact(catalog, record.path, newest)
        except ValidationError as exc:  # recorded after it, or of another store
            why = str(exc)
        else:
            return StandingProof(proof, True, later_events(catalog, proof))
    proof = prove_artifact(catalog, record.path, head_checkpoint(catalog))
    return StandingProof(proof, False, later_events(catalog, proof), why)


def prove_consistency(catalog: Catalog, old: tlog.TreeCheckpoint,
                      new: tlog.TreeCheckpoint | None = None) -> proofs.ConsistencyProof:  # fmt: skip
    """The consistency proof from checkpoint ``old`` to ``new`` (None: a new checkpoint, as :func:`prove_artifact`).

    Both must be of this store and extended by its log. Raises
    ValidationError for a checkpoint of another store or ``old`` newer than
    ``new``, ProofError when the log no longer extends one of them.
    """
    if new is None:
        new = take_checkpoint(catalog)[0]
    if old.size > new.size:
        raise ValidationError(f"checkpoint {old.source} ({old.size} events) is newer than {new.source} "
                              f"({new.size}): the older one comes first")  # fmt: skip
    if old.size == 0:
        raise ValidationError(f"checkpoint {old.source} is of the empty log: every log extends it, there is no proof")
    with catalog.read() as conn:
        _extended(conn, old)
        _extended(conn, new)
        hashes = tree.consistency(conn, old.size, new.size)
    return proofs.ConsistencyProof(old, new, tuple(hashes))


def read_proof(path: Path) -> proofs.Proof:
    """The proof file at ``path`` (:func:`catalog.core.proofs.parse_proof`); ValidationError if unreadable or malformed."""
    data, _ = fs.read_small(path, "proof file", proofs.MAX_BYTES)
    return proofs.parse_proof(data)


def verify_proof(path: Path, key_files: Sequence[Path], witness_files: Sequence[Path] = ()) -> proofs.Proven:
    """Check the proof file ``path`` with the public keys in ``key_files`` and witnesses in ``witness_files``.

    No catalog is opened. Raises ValidationError for an unreadable or
    malformed file or key; SignatureError or ProofError naming what failed.
    """
    loaded = [keys.load_verifier(p) for p in key_files]
    witnesses = [keys.load_verifier(p, "witness key") for p in witness_files]
    return proofs.check(read_proof(path), loaded, witnesses)
