"""Evidence bundles: the audit trail of a time window, exported and checked without the catalog.

An **evidence bundle** is a zip that another machine can check without the
catalog: the events of a time window (a contiguous run of the chain, with the
hash that precedes it), the artifact rows they touch, a manifest of the files
with their checksums, the checkpoints, optionally the files themselves, and
``bundle.json`` listing the SHA-256 of every member. The zip's comment holds
the SHA-256 of every byte before it, so changing any byte of the bundle is
detected.
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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..core import chain, fs
from ..core.errors import CatalogError, IntegrityError, Param, ValidationError
from ..core.records import ArtifactRecord
from ..core.schema import ARTIFACTS, CHAIN_HEAD, EVENTS
from ..core.store import Catalog
from ..core.vocabulary import READABLE
from .checkpoints import configured_checkpoints
from .read import copy_verified

BUNDLE_FORMAT = "catalog-bundle/1"
_SEAL_PREFIX = b"catalog-bundle sha256:"
_SEAL_LENGTH = len(_SEAL_PREFIX) + 64


# -- bundles: export ------------------------------------------------------------------


def _seal(path: Path) -> None:
    """Replace the placeholder zip comment with the SHA-256 of every byte before it."""
    with open(path, "r+b") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(0)
        digest, remaining = hashlib.sha256(), size - _SEAL_LENGTH
        while remaining > 0:
            chunk = handle.read(min(remaining, 1024 * 1024))
            digest.update(chunk)
            remaining -= len(chunk)
        handle.write(_SEAL_PREFIX + digest.hexdigest().encode())


#: The range of times a ZIP member header can hold (MS-DOS date and time: 1980-2107, even seconds).
_ZIP_EARLIEST = datetime(1980, 1, 1, tzinfo=timezone.utc)
_ZIP_LATEST = datetime(2107, 12, 31, 23, 59, 58, tzinfo=timezone.utc)


def _member(name: str, when: datetime) -> zipfile.ZipInfo:
    """A compressed, read-only member dated ``when`` (UTC), clamped into the range ZIP can record."""
    info = zipfile.ZipInfo(name, min(max(when, _ZIP_EARLIEST), _ZIP_LATEST).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o444 << 16
    return info


def _file_note(catalog: Catalog, record: ArtifactRecord) -> str | None:
    """Why an artifact's file cannot go into a bundle, or None if it holds the recorded bytes."""
    try:
        found = fs.sha256_file(catalog.base_dir, record.path, record.size)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except fs.UnsafePath as exc:
        return f"{exc.reason}: not included"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc}): not included"
    return None if found == (record.sha256, record.size) else "bytes no longer match the catalog: not included"


def _ndjson(rows: Sequence[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode()


@dataclass
class ExportSummary:
    """What an export wrote: the bundle, its seq range (None: no events), and how many events, rows and files."""

    path: Path
    first_seq: int | None
    last_seq: int | None
    events: int
    artifacts: int
    files: int
    skipped_files: list[str] = field(default_factory=list)


def export_bundle(
    catalog: Catalog, output: Path, since: datetime | None, until: datetime | None, include_files: bool = False
) -> ExportSummary:
    """Write the evidence bundle of the events recorded in [since, until) (aware times; None: open-ended).

    ``include_files`` adds each active or archived artifact's bytes if they
    still match the catalog (others are listed in ``skipped_files``).
    Returns an :class:`ExportSummary`. Files are read as
    :func:`catalog.ops.read.copy_verified` reads them (no symlink followed,
    regular files only); members are dated by the export (files by their
    ``created_at``), never by file times. The bundle is written beside
    ``output`` with the mode the umask gives and linked to it durably
    (:func:`catalog.core.fs.new_file_beside`). Raises ValidationError for an
    output inside the store, already there (CollisionError if it appears
    meanwhile) or in a missing folder, or ``since`` not before ``until``;
    IntegrityError if an included file changed while it was copied (no
    bundle is written).
    """
    output = fs.outside_store(catalog.base_dir, output, "bundle")
    if os.path.lexists(output):
        raise ValidationError(f"{output} already exists; choose a new name")
    if not output.parent.is_dir():
        raise ValidationError(f"folder {output.parent} for the bundle does not exist")
    if since and until and since >= until:
        raise ValidationError(Param("since"), " must be earlier than ", Param("until"))
    events_t = EVENTS
    where = []
    if since is not None:
        where.append(events_t.c.at >= since)
    if until is not None:
        where.append(events_t.c.at < until)
    with catalog.read() as conn:
        bounds = conn.execute(select(events_t.c.seq).where(*where).order_by(events_t.c.seq).limit(1)).first()
        last = conn.execute(select(events_t.c.seq).where(*where).order_by(events_t.c.seq.desc()).limit(1)).first()
        head = conn.execute(select(CHAIN_HEAD.c.seq, CHAIN_HEAD.c.hash)).one()
    first_seq, last_seq = (bounds[0], last[0]) if bounds is not None and last is not None else (None, None)

    # The window's events as one contiguous run of the chain (clocks of several
    # writers may interleave), and the hash that precedes it.
    events: list[dict[str, Any]] = []
    prev_hash = chain.GENESIS_HASH
    if first_seq is not None:
        with catalog.read() as conn:
            if first_seq > 1:
                prev_hash = conn.execute(select(events_t.c.hash).where(events_t.c.seq == first_seq - 1)).scalar_one()
        in_range = [events_t.c.seq >= first_seq, events_t.c.seq <= last_seq]
        events = [{"seq": e.seq, "text": e.text, "hash": e.hash} for e in chain.iter_events(catalog.read, in_range)]
    artifact_ids = sorted({json.loads(e["text"])["artifact_id"] for e in events} - {None})
    rows: list[ArtifactRecord] = []
    with catalog.read() as conn:
        for start in range(0, len(artifact_ids), 500):
            chunk = artifact_ids[start : start + 500]
            rows += [ArtifactRecord.from_row(r) for r in conn.execute(select(ARTIFACTS).where(ARTIFACTS.c.id.in_(chunk)))]

    members: dict[str, bytes] = {
        "events.ndjson": _ndjson(events),
        "artifacts.ndjson": _ndjson([r.to_dict() for r in rows]),
    }
    manifest, skipped, included = [], [], []
    for record in rows:
        entry = {"path": record.path, "size": record.size, "sha256": record.sha256, "status": record.status,
                 "included": False}  # fmt: skip
        if include_files and record.status in READABLE:
            note = _file_note(catalog, record)
            if note is None:
                included.append(record)
                entry["included"] = True
            else:
                skipped.append(record.path)
                entry["note"] = note
        manifest.append(entry)
    members["manifest.json"] = json.dumps(manifest, indent=2).encode()
    checkpoints = [c.to_dict() for c in configured_checkpoints(catalog) if isinstance(c, chain.Checkpoint)]
    exported_at = datetime.now(timezone.utc)
    checkpoints.append({**chain.Checkpoint(head.seq, head.hash, exported_at).to_dict(),
                        "note": "chain head at export"})  # fmt: skip
    members["checkpoints.json"] = json.dumps(checkpoints, indent=2).encode()

    digests = {name: hashlib.sha256(content).hexdigest() for name, content in members.items()}
    digests.update({f"files/{record.path}": record.sha256 for record in included})  # checked again as they are copied
    bundle = {
        "format": BUNDLE_FORMAT, "exported_at": chain.iso_utc(exported_at),
        "exported_by": catalog.actor, "catalog": catalog.db.location,
        "since": chain.iso_utc(since) if since else None, "until": chain.iso_utc(until) if until else None,
        "first_seq": first_seq, "last_seq": last_seq, "prev_hash": prev_hash, "members": digests,
    }  # fmt: skip

    # A bundle never depends on file times: every member is dated by the export (files by their created_at),
    # clamped into what ZIP can record. The file is written beside the output and linked to it, never clobbering.
    with fs.new_file_beside(output) as tmp:
        with zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr(_member("bundle.json", exported_at), json.dumps(bundle, indent=2))
            for name, content in members.items():
                archive.writestr(_member(name, exported_at), content)
            for record in included:
                info = _member(f"files/{record.path}", record.created_at)
                info.file_size = record.size  # so a large file gets ZIP64 sizes
                with archive.open(info, "w") as out:
                    try:
                        copy_verified(catalog, record.path, out)
                    except CatalogError as exc:
                        raise IntegrityError(f"no bundle was written: {exc}", remedy=exc.remedy) from None
            archive.comment = b"\0" * _SEAL_LENGTH
        _seal(tmp)
    return ExportSummary(output, first_seq, last_seq, len(events), len(rows), len(included), skipped)


# -- bundles: verify ------------------------------------------------------------------


@dataclass
class BundleReport:
    """What checking a bundle found."""

    events: int = 0
    artifacts: int = 0
    files: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if the check found no problem."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ok, the counts checked, the seq range and the problems."""
        return {"ok": self.ok, "events": self.events, "artifacts": self.artifacts, "files": self.files,
                "first_seq": self.first_seq, "last_seq": self.last_seq, "problems": list(self.problems)}  # fmt: skip


#: The most bytes of a bundle read whole at once (``bundle.json``, ``manifest.json``, ``checkpoints.json``, one
#: line of ``events.ndjson`` or ``artifacts.ndjson``): verifying holds no more than this in memory at a time,
#: whatever the bundle holds. Every member is hashed as it streams, never read whole.
MAX_BUNDLE_DOCUMENT = 64 * 2**20
#: What a damaged or crafted zip raises as its members are read.
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError)


def _document(archive: zipfile.ZipFile, name: str) -> Any:
    """A JSON member, parsed; ValueError if it is larger than :data:`MAX_BUNDLE_DOCUMENT` (KeyError: missing)."""
    info = archive.getinfo(name)
    if info.file_size > MAX_BUNDLE_DOCUMENT:  # zipfile never returns more than the size a member declares
        raise ValueError(f"member {name} is larger than {MAX_BUNDLE_DOCUMENT // 2**20} MiB, the most that is read")
    return json.loads(archive.read(info))


def _lines(archive: zipfile.ZipFile, name: str) -> Iterator[dict[str, Any]]:
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


def _sealed_digest(path: Path) -> tuple[str, bytes]:
    """The SHA-256 (hex) of every byte of the file before its seal, and the seal (the last bytes); read in chunks."""
    with fs.open_file(path, "bundle", ValidationError) as handle:
        try:
            remaining = handle.seek(0, os.SEEK_END) - _SEAL_LENGTH
            if remaining < 0:
                raise ValidationError(f"{path} is not a catalog evidence bundle (no seal)")
            handle.seek(remaining)
            seal = handle.read()
            handle.seek(0)
            digest = hashlib.sha256()
            while remaining > 0 and (chunk := handle.read(min(remaining, fs.CHUNK))):
                digest.update(chunk)
                remaining -= len(chunk)
        except OSError as exc:
            raise ValidationError(f"bundle {path} cannot be read: {exc.strerror or exc}") from None
        return digest.hexdigest(), seal


def verify_bundle(path: Path) -> BundleReport:
    """Check a bundle with nothing but its own bytes (no catalog needed); returns a :class:`BundleReport`.

    What is wrong inside a bundle is reported; ValidationError is raised only
    for a file that cannot be read, carries no seal or is not a bundle at all.
    Memory stays bounded whatever the bundle holds: members are hashed as they
    stream, and no more than :data:`MAX_BUNDLE_DOCUMENT` bytes are parsed at once.
    """
    report = BundleReport()
    digest, seal = _sealed_digest(path)
    if not seal.startswith(_SEAL_PREFIX) or not re.fullmatch(rb"[0-9a-f]{64}", seal[len(_SEAL_PREFIX) :]):
        raise ValidationError(f"{path} is not a catalog evidence bundle (no seal)")
    if digest.encode() != seal[len(_SEAL_PREFIX) :]:
        report.problems.append("the bundle's bytes do not match its seal: it was altered after export")
        return report
    try:
        with zipfile.ZipFile(path) as archive:
            bundle = _document(archive, "bundle.json")
            if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
                raise ValueError(f"unknown format {bundle.get('format') if isinstance(bundle, dict) else bundle!r}")
            counts = Counter(info.filename for info in archive.infolist())
            report.problems += [f"member {name} appears twice" for name, count in sorted(counts.items()) if count > 1]
            present = {info.filename: info for info in archive.infolist() if info.filename != "bundle.json"}
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
                _check_bundle_chain(bundle, archive, members, report)
            except (ValueError, KeyError, TypeError) as exc:
                report.problems.append(f"bundle content is malformed: {exc}")
    except (*_UNREADABLE, KeyError, ValueError, TypeError) as exc:
        raise ValidationError(f"{path} is not a readable catalog evidence bundle ({exc})") from None
    return report


def _check_bundle_chain(
    bundle: Mapping[str, Any], archive: zipfile.ZipFile, members: Mapping[str, tuple[str, int]], report: BundleReport
) -> None:
    prev = bundle["prev_hash"]
    expected = bundle["first_seq"]
    report.first_seq, report.last_seq = bundle["first_seq"], bundle["last_seq"]
    hashes: dict[int, str] = {}
    written: dict[int, dict[str, Any]] = {}
    for event in _lines(archive, "events.ndjson"):
        report.events += 1
        body = json.loads(event["text"])
        if event["seq"] != expected or body.get("seq") != expected:
            report.problems.append(f"event {expected} is missing or out of order")
            expected = event["seq"]
        if chain.chain_hash(prev, event["text"]) != event["hash"]:
            report.problems.append(f"event {event['seq']}: hash does not follow from its text and the previous hash")
        hashes[event["seq"]] = event["hash"]
        if body.get("action") in ("write", "adopt") and body.get("artifact_id") is not None:
            written[body["artifact_id"]] = body.get("details", {})
        prev = event["hash"]
        expected += 1
    if report.events and expected - 1 != bundle["last_seq"]:
        report.problems.append(f"events end at {expected - 1}, the bundle says {bundle['last_seq']}")

    rows = {row["id"]: row for row in _lines(archive, "artifacts.ndjson")}
    report.artifacts = len(rows)
    for artifact_id, details in written.items():
        row = rows.get(artifact_id)
        if row is None:
            report.problems.append(f"artifact {artifact_id} was written in this window but its row is not in the bundle")
        elif (row["sha256"], row["size"], row["original_path"]) != (
            details.get("sha256"), details.get("size"), details.get("original_path"),
        ):  # fmt: skip
            report.problems.append(f"artifact {artifact_id}: its row disagrees with its write event")

    by_path = {row["path"]: row for row in rows.values()}
    manifest = _document(archive, "manifest.json")
    for entry in manifest:
        row = by_path.get(entry["path"])
        if row is None or (row["sha256"], row["size"]) != (entry["sha256"], entry["size"]):
            report.problems.append(f"manifest entry {entry['path']} disagrees with its artifact row")
        if entry.get("included"):
            if members.get(f"files/{entry['path']}") != (entry["sha256"], entry["size"]):
                report.problems.append(f"file {entry['path']} does not match its manifest entry")
            else:
                report.files += 1

    included = {f"files/{entry['path']}" for entry in manifest if entry.get("included")}
    expected_members = {"events.ndjson", "artifacts.ndjson", "manifest.json", "checkpoints.json", *included}
    report.problems += [f"member {name} is not part of the bundle (no manifest entry includes it)"
                        for name in sorted(set(members) - expected_members)]  # fmt: skip

    for checkpoint in _document(archive, "checkpoints.json"):
        seq = checkpoint["seq"]
        if seq in hashes and hashes[seq] != checkpoint["hash"]:
            report.problems.append(f"event {seq} disagrees with a checkpoint taken {checkpoint['at']}")
    if not isinstance(prev, str):
        raise ValueError("prev_hash is not text")
