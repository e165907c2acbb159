"""Proof files for people: an artifact's events in a signed checkpoint, or one checkpoint extending another.

Pure (this package, ``cryptography`` and the standard library): an auditor
checks a proof file with the public key(s) alone, no catalog. Two kinds, both
UTF-8 JSON objects; every hash is **standard base64** (RFC 4648 §4, canonical,
32 bytes decoded), as the checkpoint writes its root hash::

    {"format": "catalog-inclusion-proof/v1",
     "checkpoint": "<the signed checkpoint note, as its file holds it>",
     "artifact_id": 12, "path": "ledger/20240101-000000-p-ledger.json",
     "events": [{"seq": 3, "leaf_index": 2, "text": "<the event's canonical text>",
                 "proof": ["<base64 hash>", ...]}, ...]}

    {"format": "catalog-consistency-proof/v1",
     "from": "<the older signed checkpoint>", "to": "<the newer one>",
     "size1": 1000, "size2": 2000, "proof": ["<base64 hash>", ...]}

Inclusion: leaf ``leaf_index`` (= ``seq - 1``) of the checkpoint's tree is
SHA-256(0x00 ‖ UTF-8 ``text``) (RFC 9162 §2.1.1), so the verifier hashes the
event's text itself; ``proof`` is its audit path (RFC 9162 §2.1.3). The text
is the event's canonical JSON: its ``seq`` and ``artifact_id`` must be the
proof's. Consistency: ``proof`` is PROOF(size1, D[size2]) (RFC 9162 §2.1.4);
``size1`` and ``size2`` repeat the checkpoints' sizes (so the file also serves
``catalog audit cosign --proof``).

:func:`parse_proof` refuses a malformed file (ValidationError, exit 2);
:func:`check` proves one (returns what was proven) or raises
:class:`~catalog.core.errors.SignatureError` / :class:`~catalog.core.errors.ProofError`
(exit 1) naming what failed.

What an inclusion proof does not prove: that the artifact has no other events
(a proof names the events it carries; completeness needs the whole log, e.g. a
bundle).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import merkle, note, tlog
from .errors import ProofError, SignatureError, ValidationError

INCLUSION = "catalog-inclusion-proof/v1"
CONSISTENCY = "catalog-consistency-proof/v1"

MAX_BYTES = 16 * 1024 * 1024
"""The largest proof file read (an artifact's events: a few KiB each)."""

MAX_EVENTS = 100_000
"""The most events one inclusion proof may carry."""

_MAX_SEQ = 2**63 - 1  # a tree size or seq fits a signed 64-bit integer (as a checkpoint's size does)


# -- building -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventProof:
    """One event's inclusion: its seq, its leaf index (``seq - 1``), its canonical text, its audit path (raw hashes)."""

    seq: int
    index: int
    text: str
    proof: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        """The event's entry in an inclusion proof file."""
        return {"seq": self.seq, "leaf_index": self.index, "text": self.text,
                "proof": [note.b64encode(h) for h in self.proof]}  # fmt: skip


@dataclass(frozen=True)
class InclusionProof:
    """An artifact's events (``events``, by seq) in the tree of ``checkpoint``."""

    checkpoint: tlog.TreeCheckpoint
    artifact_id: int
    path: str
    events: tuple[EventProof, ...]

    def to_dict(self) -> dict[str, Any]:
        """The proof file's JSON object (see the module's docstring)."""
        return {"format": INCLUSION, "checkpoint": self.checkpoint.encode().decode(), "artifact_id": self.artifact_id,
                "path": self.path, "events": [e.to_dict() for e in self.events]}  # fmt: skip


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of ``new`` extends the tree of ``old``: ``proof`` (raw hashes), RFC 9162 §2.1.4."""

    old: tlog.TreeCheckpoint
    new: tlog.TreeCheckpoint
    proof: tuple[bytes, ...]
    sizes: tuple[int, int] | None = None  # as the file states them (size1, size2); None: the checkpoints' sizes

    def to_dict(self) -> dict[str, Any]:
        """The proof file's JSON object (see the module's docstring)."""
        size1, size2 = self.sizes or (self.old.size, self.new.size)
        return {"format": CONSISTENCY, "from": self.old.encode().decode(), "to": self.new.encode().decode(),
                "size1": size1, "size2": size2, "proof": [note.b64encode(h) for h in self.proof]}  # fmt: skip


Proof = InclusionProof | ConsistencyProof


def encode(proof: Proof) -> bytes:
    """The proof file's bytes: indented JSON, ending in a newline."""
    return (json.dumps(proof.to_dict(), indent=2, ensure_ascii=False) + "\n").encode()


# -- parsing --------------------------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key {key[:40]!r} appears twice")
        found[key] = value
    return found


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _field(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise ValidationError(f"malformed proof: {where} has no {key!r}")
    value = data[key]
    if kind is int and (type(value) is not int or not 0 <= value <= _MAX_SEQ):
        raise ValidationError(f"malformed proof: {where}'s {key!r} must be a whole number from 0 to 2**63 - 1, "
                              f"not {str(value)[:40]!r}")  # fmt: skip
    if not isinstance(value, kind):
        raise ValidationError(f"malformed proof: {where}'s {key!r} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _hashes(data: dict[str, Any], where: str) -> tuple[bytes, ...]:
    values = _field(data, "proof", list, where)
    if len(values) > 64:  # a tree of fewer than 2**63 leaves has at most 63 (inclusion) or 64 (consistency)
        raise ValidationError(f"malformed proof: {where}'s proof has {len(values)} hashes; no proof has more than 64")
    hashes = []
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise ValidationError(f"malformed proof: {where}'s proof[{i}] must be a base64 string")
        raw = note.b64decode(value, f"malformed proof: {where}'s proof[{i}]")
        if len(raw) != merkle.HASH_SIZE:
            raise ValidationError(f"malformed proof: {where}'s proof[{i}] has {len(raw)} bytes, not {merkle.HASH_SIZE}")
        hashes.append(raw)
    return tuple(hashes)


def _checkpoint(data: dict[str, Any], key: str) -> tlog.TreeCheckpoint:
    text = _field(data, key, str, "the file")
    try:
        return tlog.parse_checkpoint(text.encode("utf-8"), f"'{key}'")
    except (ValidationError, UnicodeEncodeError) as exc:
        raise ValidationError(f"malformed proof: its {key!r} checkpoint: {exc}") from None


def parse_proof(data: bytes) -> Proof:
    """The proof in ``data`` (a proof file's bytes), either kind; nothing is verified yet.

    Raises ValidationError (``malformed proof: …``) for anything but a proof
    file as the module's docstring describes: not UTF-8 JSON, an unknown
    format, a missing key, a wrong type (a bool is not a number), a number out
    of range, a hash that is not canonical base64 of 32 bytes, a checkpoint
    that does not parse, more than :data:`MAX_BYTES` bytes.
    """
    if len(data) > MAX_BYTES:
        raise ValidationError(f"malformed proof: a proof file is at most {MAX_BYTES} bytes; this one has {len(data)}")
    try:
        loaded = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"malformed proof: not a JSON proof file ({str(exc)[:80]})") from None
    if not isinstance(loaded, dict):
        raise ValidationError(f"malformed proof: expected a JSON object, not {type(loaded).__name__}")
    kind = loaded.get("format")
    if kind == INCLUSION:
        return _parse_inclusion(loaded)
    if kind == CONSISTENCY:
        old, new = _checkpoint(loaded, "from"), _checkpoint(loaded, "to")
        size1, size2 = _field(loaded, "size1", int, "the file"), _field(loaded, "size2", int, "the file")
        return ConsistencyProof(old, new, _hashes(loaded, "the file"), (size1, size2))
    raise ValidationError(f"malformed proof: format {str(kind)[:60]!r} is neither {INCLUSION} nor {CONSISTENCY}")


def _parse_inclusion(loaded: dict[str, Any]) -> InclusionProof:
    checkpoint = _checkpoint(loaded, "checkpoint")
    artifact_id, path = _field(loaded, "artifact_id", int, "the file"), _field(loaded, "path", str, "the file")
    entries = _field(loaded, "events", list, "the file")
    if not entries or len(entries) > MAX_EVENTS:
        raise ValidationError(f"malformed proof: 'events' must hold 1 to {MAX_EVENTS} events, not {len(entries)}")
    events = []
    for i, entry in enumerate(entries):
        where = f"events[{i}]"
        if not isinstance(entry, dict):
            raise ValidationError(f"malformed proof: {where} must be an object")
        seq, index = _field(entry, "seq", int, where), _field(entry, "leaf_index", int, where)
        if seq < 1:
            raise ValidationError(f"malformed proof: {where}'s seq must be 1 or more")
        events.append(EventProof(seq, index, _field(entry, "text", str, where), _hashes(entry, where)))
    return InclusionProof(checkpoint, artifact_id, path, tuple(events))


# -- checking -------------------------------------------------------------------------------------------------


def _signed(checkpoint: tlog.TreeCheckpoint, keys: Sequence[note.Verifier], witnesses: Sequence[note.Verifier],
            what: str) -> list[note.Verifier]:  # fmt: skip
    """The keys that signed ``checkpoint``; SignatureError unless one of ``keys`` did and every witness cosigned."""
    try:
        signers = note.verified_by(checkpoint.note, keys)
    except SignatureError as exc:
        raise SignatureError(f"{what}: {exc}") from None
    if not signers:
        found = ", ".join(s.label for s in checkpoint.note.signatures) or "no signature at all"
        raise SignatureError(f"{what} is not signed by any key given ({', '.join(k.label for k in keys)}); "
                             f"it carries {found}")  # fmt: skip
    for witness in witnesses:
        cosigner = witness if witness.alg == note.ALG_COSIGNATURE_V1 else witness.as_cosigner()
        try:
            cosigned = note.verified_by(checkpoint.note, [cosigner])
        except SignatureError as exc:
            raise SignatureError(f"{what}: the witness {witness.name}'s cosignature does not verify ({exc})") from None
        if not cosigned:
            raise SignatureError(f"{what} carries no cosignature of the witness {cosigner.label}")
    return signers


def _event_fields(event: EventProof) -> dict[str, Any]:
    try:
        fields = json.loads(event.text)
    except (ValueError, RecursionError):
        fields = None
    if not isinstance(fields, dict):
        raise ProofError(f"event seq {event.seq}: its text is in the log, but is not an event's JSON")
    return fields


@dataclass(frozen=True)
class Proven:
    """What a proof file proved, as one or two plain lines (:attr:`lines`)."""

    lines: tuple[str, ...]


def check(proof: Proof, keys: Sequence[note.Verifier], witnesses: Sequence[note.Verifier] = ()) -> Proven:
    """Prove ``proof`` with the public ``keys`` (any one signing each checkpoint suffices) and ``witnesses``.

    Every checkpoint in the file must be signed by one of ``keys`` (C2SP
    signed-note) and cosigned by every witness (C2SP tlog-cosignature; a
    witness key given in either form). Inclusion: each event's text hashes
    (RFC 9162 §2.1.1) to a leaf its proof leads from to the checkpoint's root
    (§2.1.3.2), and the text is that seq's event about that artifact.
    Consistency: both checkpoints are of one log and the newer one's tree
    extends the older one's (§2.1.4.2). Returns what was proven; raises
    SignatureError or ProofError (findings, exit 1) naming the first thing
    that fails, ValidationError if no key is given.
    """
    if not keys:
        raise ValidationError("no public key given: a proof is checked against the store's key")
    if isinstance(proof, ConsistencyProof):
        return _check_consistency(proof, keys, witnesses)
    cp = proof.checkpoint
    signers = _signed(cp, keys, witnesses, "the checkpoint")
    for event in proof.events:
        if event.index != event.seq - 1:
            raise ProofError(f"event seq {event.seq} is leaf {event.seq - 1} of the tree, not leaf {event.index}")
        try:
            merkle.verify_inclusion(merkle.leaf_hash(event.text.encode("utf-8")), event.index, cp.size,
                                    list(event.proof), cp.root)  # fmt: skip
        except ProofError as exc:
            raise ProofError(f"event seq {event.seq} is not proven in the checkpoint's tree: {exc}") from None
        fields = _event_fields(event)
        if fields.get("seq") != event.seq or type(fields.get("seq")) is not int:
            raise ProofError(f"event seq {event.seq}: its text is event {str(fields.get('seq'))[:20]}'s")
        if fields.get("artifact_id") != proof.artifact_id or type(fields.get("artifact_id")) is not int:
            raise ProofError(f"event seq {event.seq} is about artifact {str(fields.get('artifact_id'))[:20]}, not "
                             f"{proof.artifact_id}")  # fmt: skip
    seqs = ", ".join(str(e.seq) for e in proof.events)
    lines = [f"Proven: {len(proof.events)} event(s) of artifact {proof.artifact_id} ({proof.path}), seq {seqs}, are "
             f"in the log {cp.origin} of {cp.size} events, checkpoint signed by {_labels(signers)}."]  # fmt: skip
    return Proven((*lines, *_witnessed(witnesses)))


def _check_consistency(proof: ConsistencyProof, keys: Sequence[note.Verifier],
                       witnesses: Sequence[note.Verifier]) -> Proven:  # fmt: skip
    old, new = proof.old, proof.new
    old_signers = _signed(old, keys, witnesses, "the older checkpoint ('from')")
    new_signers = _signed(new, keys, witnesses, "the newer checkpoint ('to')")
    if proof.sizes is not None and proof.sizes != (old.size, new.size):
        size1, size2 = proof.sizes
        raise ProofError(f"the proof says it is from size {size1} to {size2}, but its checkpoints are of {old.size} "
                         f"and {new.size} events")  # fmt: skip
    if old.origin != new.origin:
        raise ProofError(f"the checkpoints are of two logs: {old.origin!r} and {new.origin!r}")
    try:
        merkle.verify_consistency(old.size, new.size, list(proof.proof), old.root, new.root)
    except ProofError as exc:
        raise ProofError(f"the log at {new.size} events is not proven to extend it at {old.size}: {exc}") from None
    lines = [f"Proven: the log {new.origin} at {new.size} events (signed by {_labels(new_signers)}) extends it at "
             f"{old.size} events (signed by {_labels(old_signers)}): nothing before was changed or removed."]  # fmt: skip
    return Proven((*lines, *_witnessed(witnesses)))


def _labels(keys: Sequence[note.Verifier]) -> str:
    return ", ".join(k.label for k in keys)


def _witnessed(witnesses: Sequence[note.Verifier]) -> list[str]:
    return [f"Cosigned by the witness(es) {', '.join(w.name for w in witnesses)}."] if witnesses else []
