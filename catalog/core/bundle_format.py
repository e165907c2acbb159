"""Evidence bundles: their format, their seal, their signature, and checking one with nothing but this package.

An **evidence bundle** (``catalog-bundle/2``) is a zip that an auditor checks
without the catalog. Its members:

    bundle.json              the facts (window, origin, tree) and the SHA-256 of every member below
    signature.txt            a signed note (C2SP signed-note) over :func:`signature_text`: the SHA-256 of
                             bundle.json and the checkpoint; not listed in bundle.json (it signs it)
    checkpoint.txt           the store-signed C2SP tlog-checkpoint of the log at the bundle's end (size N)
    events.ndjson            the window: events first_seq..last_seq, a contiguous run of the chain
    defining-events.ndjson   events outside the window that the bundle needs, each with its inclusion
                             proof in the tree of size N: every event that set a carried row's state, and
                             every key rotation
    artifacts.ndjson         the rows of the artifacts the window's events name (as events carry them)
    manifest.json            one entry per row: path, size, SHA-256, status, whether its file is included
    checkpoints.json         the store's checkpoints (its folder, ``--since-checkpoint``), each with its
                             consistency proof to size N
    README.txt, report.html  what the bundle holds and how to verify it, for people
    files/<path>             the artifacts' bytes (``--include-files``)

The window's events are leaves ``base..end-1`` of the log's Merkle tree (RFC
9162). ``bundle.json`` carries the perfect subtrees left of the window
(:func:`catalog.core.merkle.range_nodes` ``(0, base)``), from which and the
window's leaves the root at every size ``base..end`` is recomputed, and the
consistency proof from ``end`` to N. The zip's comment holds the SHA-256 of
every byte before it (the seal): any change to the file is caught, even where
zip readers ignore it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from . import chain, fs, merkle, note, tlog, tree
from .errors import CatalogError, ValidationError

BUNDLE_FORMAT = "catalog-bundle/2"
SIGNATURE_HEADER = "catalog-bundle/v1"
MANIFEST, SIGNATURE, CHECKPOINT = "bundle.json", "signature.txt", "checkpoint.txt"
EVENTS, DEFINING, ARTIFACTS = "events.ndjson", "defining-events.ndjson", "artifacts.ndjson"
FILES, CHECKPOINTS, README, REPORT = "manifest.json", "checkpoints.json", "README.txt", "report.html"
#: Every member but the files, in the order a bundle holds them.
MEMBERS = (MANIFEST, SIGNATURE, CHECKPOINT, EVENTS, DEFINING, ARTIFACTS, FILES, CHECKPOINTS, README, REPORT)
SEAL_PREFIX = b"catalog-bundle sha256:"
SEAL_LENGTH = len(SEAL_PREFIX) + 64
#: The most bytes of a bundle read whole at once (a JSON member, one NDJSON line, the signature): verifying
#: holds no more than this in memory at a time, whatever the bundle holds. Other members are hashed as they stream.
MAX_BUNDLE_DOCUMENT = 64 * 2**20
#: What a damaged or crafted zip raises as its members are read.
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError)


def signature_text(origin: str, size: int, root: bytes, manifest_sha256: str) -> str:
    """The note text the store's key signs for a bundle: what it is, the checkpoint, and the SHA-256 of bundle.json.

    Its first line (never an origin) and second (never a decimal size) keep it
    from ever reading as a checkpoint or a key rotation.
    """
    return f"{SIGNATURE_HEADER}\n{origin}\n{size}\n{note.b64encode(root)}\n{MANIFEST} sha256 {manifest_sha256}\n"


def seal(path: Path) -> None:
    """Replace the placeholder zip comment (:data:`SEAL_LENGTH` bytes) with the SHA-256 of every byte before it."""
    with open(path, "r+b") as handle:
        remaining = handle.seek(0, os.SEEK_END) - SEAL_LENGTH
        handle.seek(0)
        digest = hashlib.sha256()
        while remaining > 0:
            chunk = handle.read(min(remaining, fs.CHUNK))
            digest.update(chunk)
            remaining -= len(chunk)
        handle.write(SEAL_PREFIX + digest.hexdigest().encode())


def _sealed_digest(path: Path) -> tuple[str, bytes]:
    """The SHA-256 (hex) of every byte of the file before its seal, and the seal (the last bytes); read in chunks."""
    with fs.open_file(path, "bundle", ValidationError) as handle:
        try:
            remaining = handle.seek(0, os.SEEK_END) - SEAL_LENGTH
            if remaining < 0:
                raise ValidationError(f"{path} is not a catalog evidence bundle (no seal)")
            handle.seek(remaining)
            found = handle.read()
            handle.seek(0)
            digest = hashlib.sha256()
            while remaining > 0 and (chunk := handle.read(min(remaining, fs.CHUNK))):
                digest.update(chunk)
                remaining -= len(chunk)
        except OSError as exc:
            raise ValidationError(f"bundle {path} cannot be read: {exc.strerror or exc}") from None
        return digest.hexdigest(), found


@dataclass
class BundleReport:
    """What checking a bundle found; ``authenticated`` only if a trusted key's signature verified."""

    events: int = 0
    artifacts: int = 0
    files: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    tree_size: int = 0
    origin: str = ""
    signed_by: list[str] = field(default_factory=list)
    witnessed_by: list[str] = field(default_factory=list)
    checkpoints: int = 0
    authenticated: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if the check found no problem (authenticated or not)."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ok, authenticated, the counts checked, the seq range, the tree, the keys and the problems."""
        return {"ok": self.ok, **asdict(self)}


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes; ValueError if it declares more than :data:`MAX_BUNDLE_DOCUMENT` (KeyError: missing)."""
    info = archive.getinfo(name)
    if info.file_size > MAX_BUNDLE_DOCUMENT:  # zipfile never returns more than the size a member declares
        raise ValueError(f"member {name} is larger than {MAX_BUNDLE_DOCUMENT // 2**20} MiB, the most that is read")
    return archive.read(info)


def _lines(archive: zipfile.ZipFile, name: str) -> Iterator[Any]:
    """The JSON values of an NDJSON member, one line at a time (each up to :data:`MAX_BUNDLE_DOCUMENT` bytes)."""
    with archive.open(name) as member:
        while line := member.readline(MAX_BUNDLE_DOCUMENT + 1):
            if len(line) > MAX_BUNDLE_DOCUMENT:
                raise ValueError(f"member {name} has a line longer than {MAX_BUNDLE_DOCUMENT // 2**20} MiB")
            if line.strip():
                yield json.loads(line)


def _member_digest(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    """SHA-256 (hex) and size of a member, hashed as it streams."""
    digest, size = hashlib.sha256(), 0
    with archive.open(info) as member:
        for chunk in fs.read_chunks(member):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def verify_bundle(path: Path, keys: Sequence[note.Verifier] = (), checkpoints: Sequence[Any] = (),
                  witnesses: Sequence[note.Verifier] = ()) -> BundleReport:  # fmt: skip
    """Check a bundle with nothing but its own bytes and what the auditor holds (no catalog); a :class:`BundleReport`.

    ``keys``: the store's public keys the auditor trusts (keys the log
    announced from them count too, :func:`catalog.core.note.accepted_keys`);
    without any, only self-consistency is proven (``authenticated`` False).
    ``checkpoints``: the auditor's (:class:`catalog.core.tlog.TreeCheckpoint`,
    or :class:`catalog.core.chain.Checkpoint` of earlier versions): the
    bundle's log must extend each. ``witnesses``: keys whose cosignature must
    be on a checkpoint covering every event the bundle carries. What is wrong
    is reported; ValidationError is raised only for a file that cannot be
    read, carries no seal or is not a bundle. Memory stays bounded: members
    are hashed as they stream, and no more than :data:`MAX_BUNDLE_DOCUMENT`
    bytes are parsed at once.
    """
    report = BundleReport()
    digest, found = _sealed_digest(path)
    if not found.startswith(SEAL_PREFIX) or not re.fullmatch(rb"[0-9a-f]{64}", found[len(SEAL_PREFIX) :]):
        raise ValidationError(f"{path} is not a catalog evidence bundle (no seal)")
    if digest.encode() != found[len(SEAL_PREFIX) :]:
        report.problems.append("the bundle's bytes do not match its seal: it was altered after export")
        return report
    try:
        with zipfile.ZipFile(path) as archive:
            raw = _read(archive, MANIFEST)
            bundle = json.loads(raw)
            if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
                shown = bundle.get("format") if isinstance(bundle, dict) else bundle
                raise ValueError(f"unknown format {shown!r}; this version reads {BUNDLE_FORMAT}")
            counts = Counter(info.filename for info in archive.infolist())
            report.problems += [f"member {name} appears twice" for name, count in sorted(counts.items()) if count > 1]
            present = {info.filename: info for info in archive.infolist() if info.filename not in (MANIFEST, SIGNATURE)}
            listed = bundle.get("members", {})
            members: dict[str, tuple[str, int]] = {}  # name: (sha256, size)
            for name in sorted(set(listed) | set(present)):
                if name not in present:
                    report.problems.append(f"member {name} is listed but missing")
                elif name not in listed:
                    report.problems.append(f"member {name} is present but not listed")
                else:
                    members[name] = _member_digest(archive, present[name])
                    if members[name][0] != listed[name]:
                        report.problems.append(f"member {name} does not match its listed SHA-256")
            if report.problems:
                return report
            try:
                _Check(bundle, hashlib.sha256(raw).hexdigest(), archive, members, report).run(keys, checkpoints,
                                                                                            witnesses)  # fmt: skip
            except (ValueError, KeyError, TypeError, AttributeError, CatalogError) as exc:
                report.problems.append(f"bundle content is malformed: {exc}")
    except (*_UNREADABLE, KeyError, ValueError, TypeError) as exc:
        raise ValidationError(f"{path} is not a readable catalog evidence bundle ({exc})") from None
    return report


def _int(value: Any, what: str, low: int = 0) -> int:
    if type(value) is not int or value < low:
        raise ValueError(f"{what} is not a whole number {low} or more")
    return value


def _hashes(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise ValueError(f"{what} is not a list of base64 hashes")
    return [note.b64decode(v if isinstance(v, str) else "?", what) for v in values]


class _Check:
    """One bundle's content, checked member by member once the members match bundle.json."""

    def __init__(self, bundle: Mapping[str, Any], manifest_sha256: str, archive: zipfile.ZipFile,
                 members: Mapping[str, tuple[str, int]], report: BundleReport) -> None:  # fmt: skip
        self.bundle, self.manifest_sha256, self.archive, self.members = bundle, manifest_sha256, archive, members
        self.report, self.problem = report, report.problems.append
        self.roots: dict[int, bytes] = {}  # tree size: root, for the sizes the window's leaves give
        self.texts: dict[int, dict[str, Any]] = {}  # seq: parsed text of every event carried
        self.window_hashes: dict[int, str] = {}

    def run(self, keys: Sequence[note.Verifier], held: Sequence[Any], witnesses: Sequence[note.Verifier]) -> None:
        bundle, report = self.bundle, self.report
        facts = bundle["tree"]
        report.origin, report.tree_size = str(bundle["origin"]), _int(facts["size"], "the tree size", 1)
        self.checkpoint = tlog.parse_checkpoint(_read(self.archive, CHECKPOINT), "the bundle's checkpoint")
        if (self.checkpoint.origin, self.checkpoint.size) != (report.origin, report.tree_size):
            self.problem(f"the bundle's checkpoint is of log {self.checkpoint.origin} at size {self.checkpoint.size}, "
                         f"bundle.json says {report.origin} at {report.tree_size}")  # fmt: skip
        signature = note.parse_note(_read(self.archive, SIGNATURE), signed=False)
        if signature.text != signature_text(report.origin, report.tree_size, self.checkpoint.root, self.manifest_sha256):
            self.problem("signature.txt does not name this bundle's manifest and checkpoint: it belongs to another bundle")
        stored = [self._parse_stored(entry) for entry in json.loads(_read(self.archive, CHECKPOINTS))]
        wanted = {c.size for c in [*held, *(s for s, _ in stored)] if isinstance(c, tlog.TreeCheckpoint)}
        end = self._window(_int(facts["base"], "the tree base"), _hashes(facts["border"], "the border"), wanted)
        self._extends(end, self.roots[end], _hashes(facts["end_proof"], "the window's proof"), "the window's events")
        self._defining()
        self._rows()
        self._files()
        proven = [c for c, proof in stored if self._holds(c, proof, "the store's checkpoint")]
        proofs = {c.size: p for c, p in stored if isinstance(c, tlog.TreeCheckpoint) and p is not None}
        for entry in held:
            if self._holds(entry, proofs.get(getattr(entry, "size", -1)), "checkpoint"):
                proven.append(entry)
                report.checkpoints += 1
        if keys:
            self._signatures(keys)
        self._witnesses(witnesses, [self.checkpoint, *proven])
        report.authenticated = bool(report.signed_by) and report.ok

    # -- the tree ---------------------------------------------------------------------------------------------

    def _window(self, base: int, border: list[bytes], wanted: set[int]) -> int:
        """Walk the window's events: contiguous, chained, each a leaf; returns the tree size at its end."""
        bundle, report = self.bundle, self.report
        frontier = tree.Frontier(base, border)
        self.roots[base] = frontier.root()
        prev, expected = bundle["prev_hash"], base + 1
        for event in _lines(self.archive, EVENTS):
            report.events += 1
            seq, text = event["seq"], event["text"]
            self._text(seq, text)
            if seq != expected:
                raise ValueError(f"event {expected} is missing or out of order")
            if chain.chain_hash(prev, text) != event["hash"]:
                self.problem(f"event {seq}: hash does not follow from its text and the previous hash")
            frontier.add(tree.leaf(text))
            if frontier.size in wanted:
                self.roots[frontier.size] = frontier.root()
            self.window_hashes[seq], prev, expected = event["hash"], event["hash"], expected + 1
        self.roots[frontier.size] = frontier.root()
        report.first_seq, report.last_seq = bundle["first_seq"], bundle["last_seq"]
        if (report.first_seq, report.last_seq) != ((base + 1, frontier.size) if report.events else (None, None)):
            self.problem(f"the window holds events {base + 1}..{frontier.size}, bundle.json says "
                         f"{report.first_seq}..{report.last_seq}")  # fmt: skip
        return frontier.size

    def _text(self, seq: Any, text: Any) -> dict[str, Any]:
        body = json.loads(text) if isinstance(text, str) else None
        if not isinstance(body, dict) or type(seq) is not int or body.get("seq") != seq:
            raise ValueError(f"event {seq!r} does not carry its own seq")
        if seq in self.texts:
            raise ValueError(f"event {seq} appears twice")
        self.texts[seq] = body
        return body

    def _extends(self, size: int, root: bytes, proof: list[bytes], what: str) -> bool:
        """Check that the bundle's tree (its checkpoint) extends the tree of ``size`` leaves with ``root``."""
        end = self.checkpoint
        try:
            if size > end.size:
                raise CatalogError(f"it covers {size} events, the bundle's log only {end.size}")
            if size:
                merkle.verify_consistency(size, end.size, proof, root, end.root)
            elif proof:
                raise CatalogError("a proof from the empty tree proves nothing")
        except CatalogError as exc:
            self.problem(f"the bundle's checkpoint does not extend {what}: {exc}")
            return False
        return True

    def _defining(self) -> None:
        size, root = self.checkpoint.size, self.checkpoint.root
        for event in _lines(self.archive, DEFINING):
            seq, text = event["seq"], event["text"]
            self._text(seq, text)
            try:
                merkle.verify_inclusion(tree.leaf(text), seq - 1, size, _hashes(event["proof"], "a proof"), root)
            except CatalogError as exc:
                self.problem(f"event {seq} is not in the bundle's log: {exc}")

    # -- rows, manifest, files ------------------------------------------------------------------------------

    def _rows(self) -> None:
        by_artifact: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        for seq, body in sorted(self.texts.items()):
            if body.get("artifact_id") is not None and body.get("status") is not None:
                by_artifact.setdefault(body["artifact_id"], []).append((seq, body))
        self.rows = {}
        for row in _lines(self.archive, ARTIFACTS):
            self.rows[row["id"]] = row
            events = by_artifact.get(row["id"], [])
            state = chain.replay((b["path"], b["status"], b["details"]) for _, b in events)
            name = f"artifact {row['id']} ({row.get('path')})"
            if state is None:
                self.problem(f"{name}: the bundle carries no event that recorded it")
                continue
            wrong = next((k for k in chain.ROW_FIELDS if row.get(k) != state.get(k)), None)
            if wrong is not None:
                self.problem(f"{name}: its row says {wrong}={row.get(wrong)!r}, its events say {state.get(wrong)!r} "
                             f"(last event {events[-1][0]})")  # fmt: skip
        self.report.artifacts = len(self.rows)
        named = {b["artifact_id"] for seq, b in self.texts.items() if seq in self.window_hashes} - {None}
        for artifact_id in sorted(named - set(self.rows)):
            self.problem(f"artifact {artifact_id} is named by the window's events but its row is not in the bundle")

    def _files(self) -> None:
        by_path = {row["path"]: row for row in self.rows.values()}
        entries = json.loads(_read(self.archive, FILES))
        seen: Counter[str] = Counter(entry["path"] for entry in entries)
        for path in sorted(set(by_path) - set(seen)):
            self.problem(f"artifact {path} has no manifest entry")
        included = set()
        for entry in entries:
            row = by_path.get(entry["path"])
            if seen[entry["path"]] > 1 or row is None or (row["sha256"], row["size"]) != (entry["sha256"], entry["size"]):
                self.problem(f"manifest entry {entry['path']} disagrees with its artifact row")
            if entry.get("included"):
                included.add(f"files/{entry['path']}")
                if self.members.get(f"files/{entry['path']}") != (entry["sha256"], entry["size"]):
                    self.problem(f"file {entry['path']} does not match its manifest entry")
                else:
                    self.report.files += 1
        expected = {*MEMBERS[2:], *included}  # bundle.json and signature.txt are not listed
        self.report.problems += [f"member {name} is not part of the bundle (no manifest entry includes it)"
                                 for name in sorted(set(self.members) - expected)]  # fmt: skip

    # -- checkpoints, signatures, witnesses -------------------------------------------------------------------

    def _parse_stored(self, entry: Mapping[str, Any]) -> tuple[Any, list[bytes] | None]:
        if entry.get("format") == chain.CHECKPOINT_FORMAT:  # an earlier version's: the chain head at a seq
            found = chain.Checkpoint(entry["seq"], entry["hash"], datetime.fromisoformat(
                str(entry["at"]).replace("Z", "+00:00")), str(entry.get("source", "")))  # fmt: skip
            return found, None
        text = entry["checkpoint"]
        parsed = tlog.parse_checkpoint(text.encode() if isinstance(text, str) else b"", str(entry.get("source", "")))
        proof = entry.get("proof")
        return parsed, None if proof is None else _hashes(proof, "a checkpoint's proof")

    def _holds(self, checkpoint: Any, proof: list[bytes] | None, whose: str) -> bool:
        """Check that the bundle's log extends ``checkpoint`` (from the bundle or the auditor); True if proven."""
        where = f"{whose} {checkpoint.source}".rstrip()
        if isinstance(checkpoint, chain.Checkpoint):
            found = self.window_hashes.get(checkpoint.seq)
            if found is None:
                if whose != "the store's checkpoint":
                    self.problem(f"{where} (an earlier version's, of event {checkpoint.seq}) cannot be checked: only "
                                 "one of an event in the window can; use a tree checkpoint")  # fmt: skip
                return False
            if found != checkpoint.hash:
                self.problem(f"event {checkpoint.seq} disagrees with {where}: the log was rewritten")
            return False
        if checkpoint.origin != self.report.origin:
            self.problem(f"{where} is of the log {checkpoint.origin}, the bundle of {self.report.origin}")
            return False
        size = checkpoint.size
        if size in self.roots:
            if self.roots[size] != checkpoint.root:
                self.problem(f"the bundle's first {size} events hash to another root than {where}: the log was "
                             f"rewritten at or before event {size}")  # fmt: skip
                return False
            return True
        if proof is None and size <= self.checkpoint.size:
            self.problem(f"the bundle holds no consistency proof from {where} (size {size}): give that "
                         "checkpoint to the export, which then carries one")  # fmt: skip
            return False
        return self._extends(size, checkpoint.root, proof or [], where)

    def _signatures(self, keys: Sequence[note.Verifier]) -> None:
        rotations = [note.Rotation(seq, str(b["details"].get("new_key", "")), str(b["details"].get("announcement", "")))
                     for seq, b in sorted(self.texts.items()) if b.get("action") == "key_rotate"]  # fmt: skip
        accepted, refused = note.accepted_keys(keys, self.report.origin, rotations)
        self.report.problems += [f"the key rotation at seq {r.seq} is not accepted: {why}" for r, why in refused]
        trusted = ", ".join(k.label for k in accepted)
        for what, signed in (("the bundle", note.parse_note(_read(self.archive, SIGNATURE), signed=False)),
                             ("the bundle's checkpoint", self.checkpoint.note)):  # fmt: skip
            try:
                found = note.verified_by(signed, accepted)
            except CatalogError as exc:
                self.problem(f"{what}: {exc}")
                continue
            if not found:
                by = ", ".join(s.label for s in signed.signatures) or "nobody: it was exported without a signing key"
                self.problem(f"{what} is not signed by a trusted key (signed by {by}; trusted: {trusted})")
            elif what == "the bundle":
                self.report.signed_by = [k.label for k in found]

    def _witnesses(self, witnesses: Sequence[note.Verifier], proven: list[tlog.TreeCheckpoint]) -> None:
        cover = max(self.texts, default=0)
        for witness in witnesses:
            cosigner = witness.as_cosigner()
            try:
                if any(c.size >= cover and note.verified_by(c.note, [cosigner]) for c in proven):
                    self.report.witnessed_by.append(cosigner.label)
                    continue
            except CatalogError as exc:
                self.problem(f"witness {cosigner.label}: {exc}")
                continue
            self.problem(f"witness {cosigner.label} cosigned no checkpoint that covers the bundle's events (up to "
                         f"event {cover}) and that its log extends")  # fmt: skip
