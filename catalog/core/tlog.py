"""Checkpoints of the audit log's Merkle tree in the C2SP ``tlog-checkpoint`` format, signed as C2SP notes.

A checkpoint's text is three lines and optional extension lines
(C2SP tlog-checkpoint)::

    catalog/1f0e6c2b9a8d7e6f        origin: the log this is a checkpoint of
    1234                            tree size: events covered, decimal, no leading zero
    3q2+7w...=                      root hash: base64 of the RFC 9162 root of those events

then, when signed, a blank line and signature lines (:mod:`catalog.core.note`):
the store's key, and any witnesses' cosignatures. A checkpoint written
without a key is the text alone (no signatures): it proves the log extends
it, not who wrote it.

The **origin** of a store is ``catalog/`` and the first 16 hex digits of the
chain hash of its first event (:func:`store_origin`): fixed once the log has
begun, different for every store, and a valid note name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from . import merkle, note
from .errors import ProofError, SignatureError, ValidationError

MAX_BYTES = 64 * 1024
"""The largest checkpoint file read (a checkpoint with 100 signatures is a few KiB)."""

_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


def store_origin(first_event_hash: str) -> str:
    """The origin line of a store whose first event has the chain hash ``first_event_hash`` (64 hex digits)."""
    return f"catalog/{first_event_hash[:16]}"


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The note text of a checkpoint: origin, tree size, base64 root hash, each ending in a newline."""
    if not note.valid_name(origin) or len(root) != 32 or size < 0:
        raise ValidationError(f"no checkpoint of origin {origin[:60]!r}, size {size} and a {len(root)}-byte root")
    return f"{origin}\n{size}\n{note.b64encode(root)}\n"


@dataclass(frozen=True)
class TreeCheckpoint:
    """A checkpoint of the log's Merkle tree: origin, size (events covered), 32-byte root, its note, and any
    extension lines after the root (opaque to C2SP; this store writes none)."""

    origin: str
    size: int
    root: bytes
    note: note.Note
    source: str = ""
    extensions: tuple[str, ...] = ()

    @property
    def root_b64(self) -> str:
        """The root hash as the checkpoint writes it (base64)."""
        return note.b64encode(self.root)

    def encode(self) -> bytes:
        """The checkpoint file's bytes: its text, and its signatures if any."""
        return self.note.encode()


def parse_checkpoint(data: bytes, source: str = "") -> TreeCheckpoint:
    """Parse a checkpoint (signed or not); nothing is verified. ValidationError naming what is malformed."""
    if len(data) > MAX_BYTES:
        raise ValidationError(f"a checkpoint is at most {MAX_BYTES} bytes; this one has {len(data)}")
    if not data.strip():
        raise ValidationError("malformed checkpoint: the file is empty")
    parsed = note.parse_note(data, signed=False)
    lines = parsed.text.split("\n")[:-1]
    if len(lines) < 3 or not all(lines):
        raise ValidationError("malformed checkpoint: expected origin, tree size and root hash lines, none empty")
    origin, size, root = lines[:3]
    if not _SIZE.fullmatch(size) or int(size) >= 2**63:
        raise ValidationError(f"malformed checkpoint: tree size {size[:30]!r} is not a decimal number")
    raw = note.b64decode(root, "the checkpoint's root hash")
    if len(raw) != 32:
        raise ValidationError(f"malformed checkpoint: the root hash has {len(raw)} bytes, not 32")
    return TreeCheckpoint(origin, int(size), raw, parsed, source, tuple(lines[3:]))


def check(checkpoint: TreeCheckpoint, origin: str, head: int, root_at: Callable[[int], bytes]) -> str | None:
    """Why ``checkpoint`` is not a checkpoint of this log, or None if it is: its origin is ``origin``, it has no
    extension line (this store writes none), its size is at most ``head`` (the log's events), and its root is
    ``root_at(size)``, the log's root at that size (a mismatch: the log was rewritten). Signatures aside."""
    where = f"checkpoint {checkpoint.source}"
    if checkpoint.origin != origin:
        return f"{where} is of the log {checkpoint.origin!r}, not of this one ({origin})"
    if checkpoint.extensions:
        return f"{where} has lines after its root hash ({checkpoint.extensions[0][:40]!r}); this store writes none"
    if checkpoint.size > head:
        return f"{where} covers {checkpoint.size} events; the log has {head}"
    root = root_at(checkpoint.size)
    if root != checkpoint.root:
        return (f"the log's first {checkpoint.size} events hash to {note.b64encode(root)[:12]}…, but {where} "
                f"recorded {checkpoint.root_b64[:12]}…: the log was rewritten at or before event {checkpoint.size}")
    return None


def cosign(checkpoint: TreeCheckpoint, witness: note.Signer, timestamp: int, *, log_keys: Sequence[note.Verifier],
           previous: TreeCheckpoint | None, proof: Sequence[bytes]) -> TreeCheckpoint:  # fmt: skip
    """A witness's ``cosignature/v1`` added to ``checkpoint``, only if it extends what the witness signed before.

    The witness checks, in this order: the log's signature by one of
    ``log_keys``; that ``previous`` (None: the witness's first checkpoint of
    this log) carries the witness's own cosignature, is of the same origin and
    no larger; and that ``proof`` proves ``checkpoint`` consistent with it
    (RFC 9162 §2.1.4.2, :func:`catalog.core.merkle.verify_consistency`). So a
    witness never signs a rewritten history (C2SP tlog-cosignature).
    ``timestamp``: the cosignature's time (POSIX seconds). Raises
    SignatureError or ProofError (findings) naming what failed.
    """
    if not note.verified_by(checkpoint.note, log_keys):
        labels = ", ".join(k.label for k in log_keys) or "none given"
        raise SignatureError(f"checkpoint {checkpoint.source} is not signed by the log's key ({labels}): not cosigned")
    if previous is not None:
        if not note.verified_by(previous.note, [witness.verifier.as_cosigner()]):
            raise SignatureError(f"the previous checkpoint {previous.source} carries no cosignature of this witness "
                                 f"({witness.verifier.as_cosigner().label}): give the last one it signed")  # fmt: skip
        if previous.origin != checkpoint.origin:
            raise ProofError(f"checkpoint {checkpoint.source} is of the log {checkpoint.origin!r}, the previous one "
                             f"of {previous.origin!r}: not cosigned")  # fmt: skip
        if checkpoint.size < previous.size:
            raise ProofError(f"checkpoint {checkpoint.source} has {checkpoint.size} events, fewer than the "
                             f"{previous.size} this witness already signed: the log shrank; not cosigned")  # fmt: skip
        try:
            merkle.verify_consistency(previous.size, checkpoint.size, proof, previous.root, checkpoint.root)
        except ProofError as exc:
            raise ProofError(f"checkpoint {checkpoint.source} is not consistent with the previous one "
                             f"{previous.source} ({exc}): the log was rewritten; not cosigned") from None  # fmt: skip
    line = witness.cosignature_line(checkpoint.note.text.encode(), timestamp)
    return replace(checkpoint, note=checkpoint.note.with_line(line))
