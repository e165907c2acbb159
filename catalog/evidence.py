"""Evidence kept outside the store: checkpoints of the audit chain, and export bundles.

A **checkpoint** is the chain head (seq, hash, time) written to a file that
lives outside the store; ``audit verify --checkpoint`` proves the current log
still extends it, so even a consistent rewrite of the whole chain is caught.

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
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from . import audit
from .errors import ValidationError, read_file
from .store import ARTIFACTS, ArtifactRecord, Catalog
from .writer import publish

BUNDLE_FORMAT = "catalog-bundle/1"
_SEAL_PREFIX = b"catalog-bundle sha256:"
_SEAL_LENGTH = len(_SEAL_PREFIX) + 64


def _outside_store(catalog: Catalog, path: Path, what: str) -> Path:
    path = Path(os.path.abspath(path))
    if Path(os.path.realpath(path)).is_relative_to(os.path.realpath(catalog.base_dir)):
        raise ValidationError(f"{what} {path} is inside the store; keep it outside, where the store cannot touch it")
    return path


# -- checkpoints ----------------------------------------------------------------------


def checkpoint_dir(catalog: Catalog) -> Path | None:
    """The configured checkpoint folder (``audit.checkpoint_dir``), checked to be outside the store."""
    folder = catalog.settings.checkpoint_dir
    return None if folder is None else _outside_store(catalog, folder, "checkpoint folder")


def take_checkpoint(catalog: Catalog, output: Path | None = None) -> tuple[audit.Checkpoint, bytes, Path | None]:
    """Record a ``checkpoint`` event, then write the head (which includes it).

    Written to ``output``, else into the configured checkpoint folder, else
    only returned (the CLI prints it). Returns the checkpoint, its bytes and
    where they were written.
    """
    target = _outside_store(catalog, output, "checkpoint file") if output is not None else None
    folder = checkpoint_dir(catalog) if target is None else None
    if target is not None and not target.parent.is_dir():
        raise ValidationError(f"folder {target.parent} for the checkpoint does not exist")
    if target is not None and target.exists():
        raise ValidationError(f"{target} already exists; a checkpoint never overwrites one")
    with catalog.db.write() as conn:
        chain = audit.ChainAppender(conn)
        at = datetime.now(timezone.utc)
        chain.append("checkpoint", actor=catalog.actor, at=at,
                     details={"file": str(target or folder or "(printed)")})  # fmt: skip
        chain.close()
        checkpoint = audit.Checkpoint(chain.seq, chain.hash, at)
    data = (json.dumps(checkpoint.to_dict(), indent=2) + "\n").encode()
    if target is None and folder is not None:
        target = folder / f"checkpoint-{checkpoint.seq:012d}-{at:%Y%m%dT%H%M%SZ}.json"
    if target is not None:
        folder_of = target.parent
        folder_of.mkdir(parents=True, exist_ok=True)
        publish(folder_of, target.name, data)
    return checkpoint, data, target


def auto_checkpoint(catalog: Catalog) -> audit.Checkpoint | None:
    """After a retention or verify run: a checkpoint into the configured folder, if there is one."""
    if catalog.settings.checkpoint_dir is None:
        return None
    return take_checkpoint(catalog)[0]


def configured_checkpoints(catalog: Catalog) -> list[audit.Checkpoint]:
    """Every checkpoint file in the configured folder (none if no folder is configured)."""
    folder = checkpoint_dir(catalog)
    if folder is None or not folder.is_dir():
        return []
    return [audit.read_checkpoint(p) for p in sorted(folder.glob("checkpoint-*.json"))]


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
        handle.flush()
        os.fsync(handle.fileno())


def _ndjson(rows: list[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode()


@dataclass
class ExportSummary:
    """What an export wrote."""

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
    """Write the evidence bundle of the events recorded in [since, until)."""
    output = _outside_store(catalog, output, "bundle")
    if output.exists():
        raise ValidationError(f"{output} already exists; choose a new name")
    if not output.parent.is_dir():
        raise ValidationError(f"folder {output.parent} for the bundle does not exist")
    if since and until and since >= until:
        raise ValidationError("--since must be earlier than --until")
    events_t = audit.EVENTS
    where = []
    if since is not None:
        where.append(events_t.c.at >= since)
    if until is not None:
        where.append(events_t.c.at < until)
    with catalog.db.read() as conn:
        bounds = conn.execute(select(events_t.c.seq).where(*where).order_by(events_t.c.seq).limit(1)).first()
        last = conn.execute(select(events_t.c.seq).where(*where).order_by(events_t.c.seq.desc()).limit(1)).first()
        head = conn.execute(select(audit.ChainHead.seq, audit.ChainHead.hash)).one()
    first_seq, last_seq = (bounds[0], last[0]) if bounds else (None, None)

    # The window's events as one contiguous run of the chain (clocks of several
    # writers may interleave), and the hash that precedes it.
    events: list[dict[str, Any]] = []
    prev_hash = audit.GENESIS_HASH
    if first_seq is not None:
        with catalog.db.read() as conn:
            if first_seq > 1:
                prev_hash = conn.execute(select(events_t.c.hash).where(events_t.c.seq == first_seq - 1)).scalar_one()
        in_range = [events_t.c.seq >= first_seq, events_t.c.seq <= last_seq]
        events = [{"seq": e.seq, "text": e.text, "hash": e.hash} for e in audit.iter_events(catalog.db.read, in_range)]
    artifact_ids = sorted({json.loads(e["text"])["artifact_id"] for e in events} - {None})
    rows: list[ArtifactRecord] = []
    with catalog.db.read() as conn:
        for start in range(0, len(artifact_ids), 500):
            chunk = artifact_ids[start : start + 500]
            rows += [ArtifactRecord.from_row(r) for r in conn.execute(select(ARTIFACTS).where(ARTIFACTS.c.id.in_(chunk)))]

    members: dict[str, bytes | Path] = {
        "events.ndjson": _ndjson(events),
        "artifacts.ndjson": _ndjson([r.to_dict() for r in rows]),
    }
    manifest, skipped = [], []
    for record in rows:
        entry = {"path": record.path, "size": record.size, "sha256": record.sha256, "status": record.status,
                 "included": False}  # fmt: skip
        file_path = catalog.base_dir / record.path
        if include_files and record.status in ("active", "archived"):
            from .store import sha256_file

            try:
                actual, size = sha256_file(file_path)
            except OSError:
                actual, size = None, None
            if (actual, size) == (record.sha256, record.size):
                members[f"files/{record.path}"] = file_path
                entry["included"] = True
            else:
                skipped.append(record.path)
                entry["note"] = "missing" if actual is None else "bytes no longer match the catalog: not included"
        manifest.append(entry)
    members["manifest.json"] = json.dumps(manifest, indent=2).encode()
    checkpoints = [c.to_dict() for c in configured_checkpoints(catalog)]
    checkpoints.append({**audit.Checkpoint(head.seq, head.hash, datetime.now(timezone.utc)).to_dict(),
                        "note": "chain head at export"})  # fmt: skip
    members["checkpoints.json"] = json.dumps(checkpoints, indent=2).encode()

    digests = {}
    for name, content in members.items():
        if isinstance(content, Path):
            digests[name] = hashlib.sha256(content.read_bytes()).hexdigest()
        else:
            digests[name] = hashlib.sha256(content).hexdigest()
    bundle = {
        "format": BUNDLE_FORMAT, "exported_at": audit.iso_utc(datetime.now(timezone.utc)),
        "exported_by": catalog.actor, "catalog": catalog.db.location,
        "since": audit.iso_utc(since) if since else None, "until": audit.iso_utc(until) if until else None,
        "first_seq": first_seq, "last_seq": last_seq, "prev_hash": prev_hash, "members": digests,
    }  # fmt: skip

    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("bundle.json", json.dumps(bundle, indent=2))
            for name, content in members.items():
                if isinstance(content, Path):
                    archive.write(content, name)
                else:
                    archive.writestr(name, content)
            archive.comment = b"\0" * _SEAL_LENGTH
        _seal(tmp)
        try:
            os.link(tmp, output)
        except FileExistsError:
            raise ValidationError(f"{output} already exists; choose a new name") from None
    finally:
        tmp.unlink(missing_ok=True)
    return ExportSummary(output, first_seq, last_seq, len(events), len(rows),
                         sum(1 for n in members if n.startswith("files/")), skipped)  # fmt: skip


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
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "events": self.events, "artifacts": self.artifacts, "files": self.files,
                "first_seq": self.first_seq, "last_seq": self.last_seq, "problems": list(self.problems)}  # fmt: skip


def _lines(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def verify_bundle(path: Path) -> BundleReport:
    """Check a bundle with nothing but its own bytes (no catalog needed)."""
    report = BundleReport()
    raw = read_file(path, "bundle", ValidationError)
    seal = raw[-_SEAL_LENGTH:]
    if not seal.startswith(_SEAL_PREFIX) or not re.fullmatch(rb"[0-9a-f]{64}", seal[len(_SEAL_PREFIX) :]):
        raise ValidationError(f"{path} is not a catalog evidence bundle (no seal)")
    if hashlib.sha256(raw[:-_SEAL_LENGTH]).hexdigest().encode() != seal[len(_SEAL_PREFIX) :]:
        report.problems.append("the bundle's bytes do not match its seal: it was altered after export")
        return report
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        bundle = json.loads(archive.read("bundle.json"))
        if bundle.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"unknown format {bundle.get('format')!r}")
        contents = {name: archive.read(name) for name in archive.namelist() if name != "bundle.json"}
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise ValidationError(f"{path} is not a readable catalog evidence bundle ({exc})") from None

    listed = bundle.get("members", {})
    for name in sorted(set(listed) | set(contents)):
        if name not in contents:
            report.problems.append(f"member {name} is listed but missing")
        elif name not in listed:
            report.problems.append(f"member {name} is present but not listed")
        elif hashlib.sha256(contents[name]).hexdigest() != listed[name]:
            report.problems.append(f"member {name} does not match its listed SHA-256")
    if report.problems:
        return report

    try:
        _check_bundle_chain(bundle, contents, report)
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(f"bundle content is malformed: {exc}")
    return report


def _check_bundle_chain(bundle: Mapping[str, Any], contents: Mapping[str, bytes], report: BundleReport) -> None:
    prev = bundle["prev_hash"]
    expected = bundle["first_seq"]
    report.first_seq, report.last_seq = bundle["first_seq"], bundle["last_seq"]
    hashes: dict[int, str] = {}
    written: dict[int, dict[str, Any]] = {}
    for event in _lines(contents["events.ndjson"]):
        report.events += 1
        body = json.loads(event["text"])
        if event["seq"] != expected or body.get("seq") != expected:
            report.problems.append(f"event {expected} is missing or out of order")
            expected = event["seq"]
        if audit.chain_hash(prev, event["text"]) != event["hash"]:
            report.problems.append(f"event {event['seq']}: hash does not follow from its text and the previous hash")
        hashes[event["seq"]] = event["hash"]
        if body.get("action") in ("write", "adopt") and body.get("artifact_id") is not None:
            written[body["artifact_id"]] = body.get("details", {})
        prev = event["hash"]
        expected += 1
    if report.events and expected - 1 != bundle["last_seq"]:
        report.problems.append(f"events end at {expected - 1}, the bundle says {bundle['last_seq']}")

    rows = {row["id"]: row for row in _lines(contents["artifacts.ndjson"])}
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
    for entry in json.loads(contents["manifest.json"]):
        row = by_path.get(entry["path"])
        if row is None or (row["sha256"], row["size"]) != (entry["sha256"], entry["size"]):
            report.problems.append(f"manifest entry {entry['path']} disagrees with its artifact row")
        if entry.get("included"):
            data = contents.get(f"files/{entry['path']}")
            if data is None or hashlib.sha256(data).hexdigest() != entry["sha256"] or len(data) != entry["size"]:
                report.problems.append(f"file {entry['path']} does not match its manifest entry")
            else:
                report.files += 1

    for checkpoint in json.loads(contents["checkpoints.json"]):
        seq = checkpoint["seq"]
        if seq in hashes and hashes[seq] != checkpoint["hash"]:
            report.problems.append(f"event {seq} disagrees with a checkpoint taken {checkpoint['at']}")
    if not isinstance(prev, str):
        raise ValueError("prev_hash is not text")
