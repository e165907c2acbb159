"""The write protocol: every artifact is written atomically, durably, and catalogued.

1. Validate everything (type, prefix, extension, data); nothing touched yet.
2. Serialise to bytes and hash them; write a temp file in the target folder
   (its name carries host and pid), flush, fsync, make it read-only.
3. Publish without clobbering: hard-link the temp file to the final name (an
   existing name is a :class:`~catalog.errors.CollisionError`), unlink the
   temp file, fsync the folder.
4. Only then one short transaction: the row and its ``write`` event.
5. If that commit fails, the published file stays (it is complete) and a
   :class:`~catalog.errors.CommitError` says so; ``reconcile`` adopts it.

A crash before step 3 leaves at most a recognisably named temp file; a crash
between 3 and 4 leaves a complete file without a row; never a partial file
under a final name, never an overwritten one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import CatalogError, CollisionError, StoreError
from .formats import check_content, csv_bytes, json_bytes
from .naming import ArtifactName, build_name, temp_name, utc_second, validate_ext
from .store import ArtifactRecord, Catalog, PublishedFile

#: Test hook for crash and fault injection: called with the name of each step
#: ("temp_written", "published", "committed"). None in production.
FAULT_HOOK: Callable[[str], None] | None = None


def _fault(point: str) -> None:
    if FAULT_HOOK is not None:
        FAULT_HOOK(point)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a new or removed name) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_folder(base_dir: Path, folder: Path) -> None:
    """Create ``folder`` under ``base_dir`` if needed, durably."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    fsync_dir(folder.parent)


def publish(folder: Path, filename: str, data: bytes) -> None:
    """Write ``data`` under ``folder/filename`` atomically, durably, read-only, never clobbering."""
    final = folder / filename
    tmp = folder / temp_name(filename, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), 0o444)
        _fault("temp_written")
        try:
            os.link(tmp, final)
        except FileExistsError:
            raise CollisionError(f"{final.parent.name}/{filename} already exists; nothing was overwritten") from None
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    fsync_dir(folder)
    _fault("published")


@dataclass(frozen=True)
class _Pending:
    name: ArtifactName
    data: bytes

    @property
    def rel_path(self) -> str:
        return f"{self.name.type}/{self.name.filename}"


class AtomicWriter:
    """Writes artifacts into a store and records each one in its catalog."""

    def __init__(
        self, base_dir: str | Path | None = None, *, catalog: Catalog | None = None, actor: str | None = None
    ) -> None:
        self.catalog = catalog if catalog is not None else Catalog.open(base_dir)
        self._owns_catalog = catalog is None
        self.actor = actor
        self.settings = self.catalog.settings

    def close(self) -> None:
        if self._owns_catalog:
            self.catalog.close()

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public writers -----------------------------------------------------

    def write_bytes(
        self,
        artifact_type: str,
        prefix: str,
        data: bytes,
        ext: str,
        *,
        created_at: datetime | None = None,
        check: bool = True,
    ) -> ArtifactRecord:
        """Store ``data`` as ``{type}/{time}-{prefix}-{type}.{ext}``; JSON/JSONL/CSV are parse-checked."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StoreError(f"write_bytes takes bytes, not {type(data).__name__}")
        data = bytes(data)
        name = self._name(artifact_type, prefix, ext, created_at, allow_extra=True)
        if check:
            check_content(name.ext, data)
        return self._write([_Pending(name, data)])[0]

    def write_json(
        self, artifact_type: str, prefix: str, data: Any, *, created_at: datetime | None = None
    ) -> ArtifactRecord:
        """Serialise ``data`` as JSON (``formats.json_indent``) and store it."""
        name = self._name(artifact_type, prefix, "json", created_at)
        return self._write([_Pending(name, json_bytes(data, self.settings.json_indent))])[0]

    def write_csv(
        self, artifact_type: str, prefix: str, rows: Iterable[Sequence[Any]], *, created_at: datetime | None = None
    ) -> ArtifactRecord:
        """Serialise ``rows`` (the first one the header) as CSV and store it."""
        name = self._name(artifact_type, prefix, "csv", created_at)
        return self._write([_Pending(name, csv_bytes(rows, self.settings.csv_precision))])[0]

    # -- the protocol -------------------------------------------------------

    @staticmethod
    def _name(
        artifact_type: str, prefix: str, ext: str, created_at: datetime | None, *, allow_extra: bool = False
    ) -> ArtifactName:
        moment = utc_second(created_at) if created_at is not None else datetime.now(timezone.utc).replace(microsecond=0)
        name = build_name(moment, prefix, artifact_type, ext)
        validate_ext(name.type, name.ext, allow_extra=allow_extra)
        return name

    def _write(self, items: Sequence[_Pending]) -> list[ArtifactRecord]:
        """Publish every item, then record them all in one transaction."""
        base = self.catalog.base_dir
        now = datetime.now(timezone.utc)
        for item in items:
            self.catalog.retain_until(item.name.type, item.name.created_at, now)  # fails now, not after publishing
            if (base / item.rel_path).exists() or self.catalog.path_taken(item.rel_path):
                raise CollisionError(f"{item.rel_path} already exists; nothing was overwritten")
        published: list[PublishedFile] = []
        try:
            for item in items:
                folder = base / item.name.type
                try:
                    ensure_folder(base, folder)
                    publish(folder, item.name.filename, item.data)
                except OSError as exc:
                    raise StoreError(f"cannot write {item.rel_path}: {exc.strerror or exc}") from None
                published.append(
                    PublishedFile(
                        path=item.rel_path, type=item.name.type, prefix=item.name.prefix, ext=item.name.ext,
                        created_at=item.name.created_at, size=len(item.data),
                        sha256=hashlib.sha256(item.data).hexdigest(),
                    )  # fmt: skip
                )
        except CatalogError:
            if published:  # never leave a published file unrecorded on purpose
                self.catalog.record(published, actor=self.actor)
            raise
        records = self.catalog.record(published, actor=self.actor)
        _fault("committed")
        return records


def _legacy_write(write: Callable[[AtomicWriter], ArtifactRecord]) -> ArtifactRecord:
    with AtomicWriter() as writer:
        return write(writer)


def write_json(prefix: str, data: Any) -> ArtifactRecord:
    """The seed's legacy call: any JSON-able ``data`` as a ledger artifact under the configured base folder."""
    return _legacy_write(lambda writer: writer.write_json("ledger", prefix, data))


def write_csv(prefix: str, rows: Iterable[Sequence[Any]]) -> ArtifactRecord:
    """The seed's legacy call: ``rows`` (a list of lists, the first the header) as a ledger CSV artifact."""
    return _legacy_write(lambda writer: writer.write_csv("ledger", prefix, rows))
