"""Evidence bundles: the audit trail of a time window, exported signed, for an auditor to check without the catalog.

The format, and its verification with the package alone, are
:mod:`catalog.core.bundle_format`; the README and HTML report inside are
:mod:`catalog.ops.bundle_report`. Exporting writes nothing to the store and
records no event: it reads one consistent snapshot of the log (the tree at
its head, size N) and signs what it read with the store's key.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, and_, or_, select

from ..core import bundle_format as fmt
from ..core import chain, fs, merkle, note, tlog, tree
from ..core.errors import CatalogError, IntegrityError, Param, ProofError, Remedy, ValidationError
from ..core.records import ArtifactRecord
from ..core.schema import ARTIFACTS, EVENTS, HOLDS
from ..core.store import Catalog
from ..core.vocabulary import READABLE
from . import bundle_report, keys
from .checkpoints import AnyCheckpoint, configured_checkpoints
from .read import copy_verified

#: The range of times a ZIP member header can hold (MS-DOS date and time: 1980-2107, even seconds).
_ZIP_EARLIEST = datetime(1980, 1, 1, tzinfo=timezone.utc)
_ZIP_LATEST = datetime(2107, 12, 31, 23, 59, 58, tzinfo=timezone.utc)
_CHUNK = 500  # ids per IN (...) query


def _member(name: str, when: datetime) -> zipfile.ZipInfo:
    """A compressed, read-only member dated ``when`` (UTC), clamped into the range ZIP can record."""
    info = zipfile.ZipInfo(name, min(max(when, _ZIP_EARLIEST), _ZIP_LATEST).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o444 << 16
    return info


def _file_note(catalog: Catalog, record: ArtifactRecord) -> str | None:
    """Why an artifact's file cannot go into a bundle, or None if it holds the recorded bytes."""
    try:
        fs.row_file(catalog.base_dir, record.path)  # a path read from the database: checked before the file is opened
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


def _signed(text: str, signer: note.Signer | None) -> bytes:
    """The note ``text`` signed by ``signer``, or unsigned (the text alone) if there is no key."""
    return (note.sign(text, signer) if signer is not None else note.Note(text)).encode()


def _b64(hashes: Sequence[bytes]) -> list[str]:
    return [note.b64encode(h) for h in hashes]


@dataclass
class ExportSummary:
    """What an export wrote: the bundle, its window (None: no events), counts, the tree size and the signing key."""

    path: Path
    first_seq: int | None
    last_seq: int | None
    events: int
    artifacts: int
    files: int
    tree_size: int = 0
    signed_by: str | None = None
    skipped_files: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    """What one export read, in one transaction: the tree at the head (``size``), the window and what it needs."""

    size: int
    origin: str
    root: bytes
    base: int
    border: list[bytes]
    end_proof: list[bytes]
    prev_hash: str
    events: list[dict[str, Any]]
    rows: list[ArtifactRecord]
    defining: list[dict[str, Any]]
    holds: list[dict[str, Any]]
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def window(self) -> tuple[int | None, int | None]:
        """The first and last seq of the window, or (None, None) if it holds no event."""
        return (self.events[0]["seq"], self.events[-1]["seq"]) if self.events else (None, None)


@contextmanager
def _snapshot(catalog: Catalog) -> Iterator[Connection]:
    """One read transaction that sees one state of the catalog throughout (PostgreSQL: REPEATABLE READ)."""
    with catalog.read() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield conn


def read_snapshot(conn: Connection, since: datetime | None, until: datetime | None) -> Snapshot:
    """The tree at the log's head, the events recorded in [since, until), the rows they name and their events."""
    size = tree.tree_size(conn)
    origin = keys.log_origin(conn.execute)
    e = EVENTS.c
    where = [e.seq <= size, *([e.at >= since] if since else []), *([e.at < until] if until else [])]
    first = conn.execute(select(e.seq).where(*where).order_by(e.seq).limit(1)).scalar()
    last = conn.execute(select(e.seq).where(*where).order_by(e.seq.desc()).limit(1)).scalar()
    events: list[dict[str, Any]] = []
    if first is None or last is None:
        base = end = size  # no window: the whole tree is the border
    else:
        rows = conn.execute(select(e.seq, e.text, e.hash).where(e.seq >= first, e.seq <= last).order_by(e.seq))
        events = [{"seq": r.seq, "text": r.text, "hash": r.hash} for r in rows]
        base, end = first - 1, last
    prev_hash = conn.execute(select(e.hash).where(e.seq == base)).scalar() or chain.GENESIS_HASH
    nodes = merkle.range_nodes(0, base)
    stored = tree.fetch(conn, nodes)
    end_proof = tree.consistency(conn, end, size) if 0 < end < size else []
    ids = sorted({json.loads(ev["text"])["artifact_id"] for ev in events} - {None})
    records: list[ArtifactRecord] = []
    outside = [e.seq <= size, or_(e.seq <= base, e.seq > end)]
    needed = [and_(e.action == "key_rotate", *outside)]  # the key rotations, wherever they are
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        records += [ArtifactRecord.from_row(r) for r in conn.execute(select(ARTIFACTS).where(ARTIFACTS.c.id.in_(chunk)))]
        needed.append(and_(e.artifact_id.in_(chunk), e.status.is_not(None), *outside))
    defining = [{"seq": r.seq, "text": r.text, "proof": _b64(tree.inclusion(conn, r.seq - 1, size))}
                for r in conn.execute(select(e.seq, e.text).where(or_(*needed)).order_by(e.seq))]  # fmt: skip
    holds = [dict(r._mapping) for r in conn.execute(select(HOLDS).order_by(HOLDS.c.id))]
    return Snapshot(size, origin, tree.root_at(conn, size), base, [stored[n] for n in nodes], end_proof, prev_hash,
                    events, sorted(records, key=lambda r: r.id), defining, holds)  # fmt: skip


def _checkpoint_entry(conn: Connection, snap: Snapshot, checkpoint: AnyCheckpoint, given: bool) -> dict[str, Any]:
    """A checkpoint as the bundle carries it, with its consistency proof to the bundle's tree.

    One the exporter gives (``given``) must be a tree checkpoint of this log
    that the log still extends: else ValidationError, or ProofError if the
    log was rewritten. The configured folder's are carried as they are (the
    verifier reports those that do not hold).
    """
    where = f"checkpoint {checkpoint.source}"
    if isinstance(checkpoint, chain.Checkpoint):
        if given:
            raise ValidationError(f"{where} is of an earlier version (JSON): give a tree checkpoint")
        return {**checkpoint.to_dict(), "source": Path(checkpoint.source).name}
    entry: dict[str, Any] = {"source": Path(checkpoint.source).name, "checkpoint": checkpoint.encode().decode(),
                             "proof": None}  # fmt: skip
    if checkpoint.origin != snap.origin or not 0 < checkpoint.size <= snap.size:
        if given:
            raise ValidationError(f"{where} is not of this log ({checkpoint.origin} at size {checkpoint.size}; this "
                                  f"log is {snap.origin} with {snap.size} events)")  # fmt: skip
        return entry
    if given and tree.root_at(conn, checkpoint.size) != checkpoint.root:
        raise ProofError(f"the log does not extend {where}: it was rewritten at or before event {checkpoint.size}",
                         remedy=Remedy.AUDIT)  # fmt: skip
    entry["proof"] = _b64(tree.consistency(conn, checkpoint.size, snap.size))
    return entry


def export_bundle(catalog: Catalog, output: Path, since: datetime | None, until: datetime | None,
                  include_files: bool = False, since_checkpoints: Sequence[Path] = ()) -> ExportSummary:  # fmt: skip
    """Write the evidence bundle of the events recorded in [since, until) (aware times; None: open-ended).

    The bundle (:mod:`catalog.core.bundle_format`) ends at the log's head
    when the export reads it; it is signed with the store's key
    (``audit.signing_key``) when one is configured, else unsigned
    (``signed_by`` None). ``since_checkpoints``: checkpoint files the bundle
    must prove its log extends (each with a consistency proof; those of the
    configured folder are added). ``include_files`` adds each active or
    archived artifact's bytes if they still match the catalog (others are
    listed in ``skipped_files``). Files are read as
    :func:`catalog.ops.read.copy_verified` reads them; members are dated by
    the export (files by their ``created_at``), never by file times. The
    bundle is written beside ``output`` with the mode the umask gives and
    linked to it durably (:func:`catalog.core.fs.new_file_beside`). Raises
    ValidationError for an output inside the store, already there
    (CollisionError if it appears meanwhile) or in a missing folder,
    ``since`` not before ``until``, an empty log, a refused signing key or a
    given checkpoint not of this log; ProofError if the log no longer extends
    a given checkpoint; IntegrityError if an included file changed while it
    was copied (no bundle is written).
    """
    output = fs.outside_store(catalog.base_dir, output, "bundle")
    if os.path.lexists(output):
        raise ValidationError(f"{output} already exists; choose a new name")
    if not output.parent.is_dir():
        raise ValidationError(f"folder {output.parent} for the bundle does not exist")
    if since and until and since >= until:
        raise ValidationError(Param("since"), " must be earlier than ", Param("until"))
    signer = keys.configured_signer(catalog.settings)  # a refused key refuses the export: never unsigned instead
    given = [chain.read_checkpoint(Path(p)) for p in since_checkpoints]
    stored = configured_checkpoints(catalog)
    with _snapshot(catalog) as conn:
        snap = read_snapshot(conn, since, until)
        snap.checkpoints = [_checkpoint_entry(conn, snap, c, False) for c in stored]
        snap.checkpoints += [_checkpoint_entry(conn, snap, c, True) for c in given]

    exported_at = datetime.now(timezone.utc)
    first_seq, last_seq = snap.window
    members: dict[str, bytes] = {
        fmt.CHECKPOINT: _signed(tlog.checkpoint_text(snap.origin, snap.size, snap.root), signer),
        fmt.EVENTS: _ndjson(snap.events),
        fmt.DEFINING: _ndjson(snap.defining),
        fmt.ARTIFACTS: _ndjson([{"id": r.id, **chain.row_details({k: getattr(r, k) for k in chain.ROW_FIELDS})} for r in snap.rows]),
    }  # fmt: skip
    manifest, skipped, included = [], [], []
    for record in snap.rows:
        entry = {"path": record.path, "size": record.size, "sha256": record.sha256, "status": record.status,
                 "included": False}  # fmt: skip
        if include_files and record.status in READABLE:
            reason = _file_note(catalog, record)
            if reason is None:
                included.append(record)
                entry["included"] = True
            else:
                skipped.append(record.path)
                entry["note"] = reason
        manifest.append(entry)
    members[fmt.FILES] = json.dumps(manifest, indent=2).encode()
    members[fmt.CHECKPOINTS] = json.dumps(snap.checkpoints, indent=2).encode()
    facts = {
        "format": fmt.BUNDLE_FORMAT, "exported_at": chain.iso_utc(exported_at), "exported_by": catalog.actor,
        "catalog": catalog.db.location, "since": chain.iso_utc(since) if since else None,
        "until": chain.iso_utc(until) if until else None, "origin": snap.origin, "first_seq": first_seq,
        "last_seq": last_seq, "prev_hash": snap.prev_hash, "signed_by": signer.verifier.label if signer else None,
        "tree": {"size": snap.size, "root": note.b64encode(snap.root), "base": snap.base, "border": _b64(snap.border),
                 "end_proof": _b64(snap.end_proof)},
    }  # fmt: skip
    members[fmt.README] = bundle_report.readme(facts, output.name, len(snap.rows), len(included)).encode()
    members[fmt.REPORT] = bundle_report.report_html(facts, snap.events, snap.rows, snap.holds)
    digests = {name: hashlib.sha256(content).hexdigest() for name, content in members.items()}
    digests.update({f"files/{record.path}": record.sha256 for record in included})  # checked again as they are copied
    manifest_bytes = json.dumps({**facts, "members": digests}, indent=2).encode()
    text = fmt.signature_text(snap.origin, snap.size, snap.root, hashlib.sha256(manifest_bytes).hexdigest())
    signature = _signed(text, signer)

    # A bundle never depends on file times: every member is dated by the export (files by their created_at),
    # clamped into what ZIP can record. The file is written beside the output and linked to it, never clobbering.
    with fs.new_file_beside(output) as tmp:
        with zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr(_member(fmt.MANIFEST, exported_at), manifest_bytes)
            archive.writestr(_member(fmt.SIGNATURE, exported_at), signature)
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
            archive.comment = b"\0" * fmt.SEAL_LENGTH
        fmt.seal(tmp)
    return ExportSummary(output, first_seq, last_seq, len(snap.events), len(snap.rows), len(included), snap.size,
                         signer.verifier.label if signer else None, skipped)  # fmt: skip


def export_bundle_to(stream: IO[bytes], catalog: Catalog, since: datetime | None, until: datetime | None,
                     include_files: bool = False, since_checkpoints: Sequence[Path] = ()) -> ExportSummary:  # fmt: skip
    """Write the evidence bundle to ``stream`` (standard output): as :func:`export_bundle`, then copied whole.

    The bundle is made in a private temporary folder (it is sealed in place:
    a pipe cannot take it as it is written) and removed afterwards; nothing
    reaches ``stream`` unless the whole bundle was made. Its ``path`` is that
    of the removed temporary file. Raises as :func:`export_bundle`, and
    OSError when ``stream`` cannot be written.
    """
    with tempfile.TemporaryDirectory(prefix="catalog-bundle-") as folder:
        summary = export_bundle(catalog, Path(folder) / "bundle.zip", since, until, include_files, since_checkpoints)
        with open(summary.path, "rb") as made:
            shutil.copyfileobj(made, stream, fs.CHUNK)
        stream.flush()
    return summary
