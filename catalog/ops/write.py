"""The write protocol: every artifact is written atomically, durably, and catalogued.

1. Validate everything (type, prefix, extension, data); nothing touched yet.
2. Serialise to bytes and hash them; write a temp file in the target folder
   (its name carries host and pid), flush, fsync, make it read-only. A stream
   (``put FILE``) is hashed, checked and copied piece by piece instead.
3. Publish without clobbering: hard-link the temp file to the final name (an
   existing name is a :class:`~catalog.core.errors.CollisionError`), unlink the
   temp file, fsync the folder (:func:`catalog.core.fs.publish`).
4. Only then one short unit of work: the row and its ``write`` event.
5. If that commit fails, the published file stays (it is complete) and a
   :class:`~catalog.core.errors.CommitError` says so; reconcile adopts it.

A crash before step 3 leaves at most a recognisably named temp file; a crash
between 3 and 4 leaves a complete file without a row; never a partial file
under a final name, never an overwritten one.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path, PurePath
from typing import Any, BinaryIO, Self, cast

from sqlalchemy.exc import IntegrityError as SAIntegrityError

from ..core import chain, fs
from ..core.content import check_content, check_stream
from ..core.errors import CatalogError, CollisionError, CommitError, Param, StoreError, ValidationError
from ..core.formats import csv_bytes, json_bytes
from ..core.names import ArtifactName, build_name, check_time, validate_ext
from ..core.records import ArtifactRecord, PublishedFile
from ..core.store import Catalog


def record(catalog: Catalog, files: Sequence[PublishedFile], *, actor: str | None = None) -> list[ArtifactRecord]:
    """Record published files in one unit of work: a row and an event (``item.action``) each.

    The files are already complete under their final names. If the commit
    fails they stay, and :class:`CommitError` names them (reconcile adopts
    them). A file whose row already exists with the same SHA-256 (adopted
    meanwhile) counts as recorded. Returns the records in the order given.
    """
    try:
        with catalog.change(actor) as tx:
            return [tx.artifacts.record(item) for item in files]
    except SAIntegrityError:
        adopted = _already_recorded(catalog, files)
        if adopted is not None:
            return adopted
        raise _commit_error(files, "another row already has this path") from None
    except Exception as exc:
        raise _commit_error(files, str(exc)) from exc


def _already_recorded(catalog: Catalog, files: Sequence[PublishedFile]) -> list[ArtifactRecord] | None:
    found = []
    for item in files:
        existing = catalog.find_path(item.path)
        if existing is None or existing.sha256 != item.sha256:
            return None
        found.append(existing)
    return found


def _commit_error(files: Sequence[PublishedFile], reason: str) -> CommitError:
    paths = tuple(item.path for item in files)
    # One line: driver errors (psycopg's among them) carry hints on further lines.
    reason = next((line.strip() for line in reason.splitlines() if line.strip()), "no reason given")
    return CommitError(
        f"published {', '.join(paths)} but could not record it in the catalog ({reason}); the file is complete and kept",
        paths=paths,
    )


@dataclass(frozen=True)
class Pending:
    """An artifact ready to publish: its name, its bytes, and the event that will record it.

    ``data`` is the bytes, or an iterable of byte chunks read while it is
    published (then ``check``, if given, sees the chunks as they are copied and
    raises to refuse them: :func:`catalog.core.fs.publish_stream`).
    """

    name: ArtifactName
    data: bytes | Iterable[bytes]
    action: str = "write"
    details: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[[Iterator[bytes]], None] | None = None

    @property
    def rel_path(self) -> str:
        """Its store path, ``{type}/{filename}``."""
        return f"{self.name.type}/{self.name.filename}"


def choose_ext(artifact_type: str, source: str | None, ext: str | None) -> str:
    """The extension to store an imported file with: ``ext``, else the ``source`` file's own (None: a stream).

    Validated for the type (lower case, no dot); ValidationError otherwise.
    """
    if ext is None:
        if source is None:
            raise ValidationError("reading standard input needs ", Param("ext"), " (for example ", Param("ext"), " json)")
        ext = PurePath(source).suffix.removeprefix(".")
        if not ext:
            raise ValidationError(f"input file {source} has no extension: give one with ", Param("ext"))
    return validate_ext(artifact_type, ext, allow_extra=True)


class Writer:
    """Writes artifacts of any type into a store and records each one in its catalog.

    The scanner's typed families (:class:`catalog.cryptorun.writer.AtomicWriter`)
    build on this. ``actor`` is a claimed name recorded beside the OS identity
    (default: the catalog's own claim).
    """

    def __init__(
        self, base_dir: str | Path | None = None, *, catalog: Catalog | None = None, actor: str | None = None
    ) -> None:
        self.catalog = catalog if catalog is not None else Catalog.open(base_dir)
        self._owns_catalog = catalog is None
        self._claim = chain.validate_claim(actor)
        self.settings = self.catalog.settings

    def close(self) -> None:
        """Close the catalog if this writer opened it."""
        if self._owns_catalog:
            self.catalog.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_bytes(
        self, artifact_type: str, prefix: str, data: bytes, ext: str, *, created_at: datetime | None = None,
        check: bool = True,
    ) -> ArtifactRecord:  # fmt: skip
        """Store ``data`` as ``{type}/{time}-{prefix}-{type}.{ext}``; JSON, JSONL and CSV must parse first.

        Raises :class:`ValidationError` (name, extension, content),
        :class:`CollisionError`, :class:`StoreError` and :class:`CommitError`.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StoreError(f"write_bytes takes bytes, not {type(data).__name__}")
        data = bytes(data)
        name = self.name(artifact_type, prefix, ext, created_at, allow_extra=True)
        if check:
            check_content(name.ext, data)
        return self.write([Pending(name, data)])[0]

    def write_stream(
        self, artifact_type: str, prefix: str, source: BinaryIO | Iterable[bytes], ext: str, *,
        created_at: datetime | None = None, check: bool = True,
    ) -> ArtifactRecord:  # fmt: skip
        """Store what ``source`` holds as :meth:`write_bytes` stores bytes: a binary file or stream (read to
        its end), or an iterable of byte chunks (a generator of downloaded pieces, say).

        Memory does not grow with the size: the bytes are hashed and written to
        the temp file as they are read, and JSON, JSONL and CSV are checked as
        they pass (:func:`catalog.core.content.check_stream`: its bounds). Content
        that is refused leaves nothing behind. Raises what :meth:`write_bytes` raises.
        """
        if isinstance(source, (str, bytes, bytearray, memoryview, io.TextIOBase)):
            raise StoreError(f"write_stream takes a binary file or an iterable of byte chunks, not {type(source).__name__}")
        name = self.name(artifact_type, prefix, ext, created_at, allow_extra=True)
        content_check = partial(check_stream, name.ext) if check else None
        chunks = fs.read_chunks(cast(BinaryIO, source)) if hasattr(source, "read") else source
        return self.write([Pending(name, chunks, check=content_check)])[0]

    def write_json(
        self, artifact_type: str, prefix: str, data: Any, *, created_at: datetime | None = None
    ) -> ArtifactRecord:
        """Serialise ``data`` as JSON (``formats.json_indent``) and store it; returns its record.

        NaN, infinities and naive times raise ValidationError; otherwise errors
        are those of :meth:`write`.
        """
        name = self.name(artifact_type, prefix, "json", created_at)
        return self.write([Pending(name, json_bytes(data, self.settings.json_indent))])[0]

    def write_csv(
        self, artifact_type: str, prefix: str, rows: Iterable[Sequence[Any]], *, created_at: datetime | None = None
    ) -> ArtifactRecord:
        """Serialise ``rows`` as CSV (the first the header; floats with ``formats.csv_precision`` decimals) and store it.

        Returns the record. Bad cells raise ValidationError; otherwise errors are those of :meth:`write`.
        """
        name = self.name(artifact_type, prefix, "csv", created_at)
        return self.write([Pending(name, csv_bytes(rows, self.settings.csv_precision))])[0]

    @staticmethod
    def name(
        artifact_type: str, prefix: str, ext: str, created_at: datetime | None, *, allow_extra: bool = False
    ) -> ArtifactName:
        """The artifact's name at ``created_at`` (default: now), truncated to the second; raises ValidationError."""
        now = datetime.now(timezone.utc).replace(microsecond=0)
        moment = now if created_at is None else check_time(created_at, now)
        name = build_name(moment, prefix, artifact_type, ext)
        validate_ext(name.type, name.ext, allow_extra=allow_extra)
        return name

    def write(self, items: Sequence[Pending], *, pair: bool = False) -> list[ArtifactRecord]:
        """Publish every item in order, then record them all in one unit of work.

        ``pair``: the items are one linked pair (e.g. an explain report's JSON
        and CSV), given a fresh ``pair_id``. Returns the records in order.
        Raises :class:`CollisionError` for a name already on disk or in the
        catalog (before any byte is written), :class:`ValidationError` for a
        retention date past year 9999, :class:`StoreError` for I/O (and for a
        store without hard links, or a folder of the store that is a symlink:
        nothing is written through one), :class:`CatalogDatabaseError` for a
        catalog this process cannot write or a full disk (before any byte is
        written), and :class:`CommitError` for files published but not recorded.
        """
        pair_id = secrets.token_hex(16) if pair else None
        actor = None if self._claim is None else chain.current_actor(self._claim)
        base = self.catalog.base_dir
        now = datetime.now(timezone.utc)
        for item in items:
            self.settings.retain_until(item.name.type, item.name.created_at, now)  # fails now, not after publishing
            if os.path.lexists(base / item.rel_path) or self.catalog.path_taken(item.rel_path):
                raise CollisionError(f"{item.rel_path} already exists; nothing was overwritten")
        self.catalog.require_writable(sum(len(item.data) for item in items if isinstance(item.data, bytes)))  # a file never lands without its row
        published: list[PublishedFile] = []
        try:
            for item in items:
                folder = base / item.name.type
                try:
                    fs.ensure_folder(folder, base)  # a type folder that is a symlink is refused (UnsafePath)
                    if isinstance(item.data, bytes):
                        digest = fs.publish(folder, item.name.filename, item.data, base=base)
                        size = len(item.data)
                    else:
                        digest, size = fs.publish_stream(folder, item.name.filename, item.data, item.check, base=base)
                except OSError as exc:
                    raise StoreError(f"cannot write {item.rel_path}: {exc.strerror or exc}") from None
                published.append(
                    PublishedFile(
                        path=item.rel_path, type=item.name.type, prefix=item.name.prefix, ext=item.name.ext,
                        created_at=item.name.created_at, size=size, sha256=digest, pair_id=pair_id,
                        action=item.action, details=item.details,
                    )  # fmt: skip
                )
        except CatalogError:
            if published:  # never leave a published file unrecorded on purpose
                record(self.catalog, published, actor=actor)
            raise
        records = record(self.catalog, published, actor=actor)
        fs.fault("committed")
        return records

