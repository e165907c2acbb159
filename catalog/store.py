"""The store: a base folder of artifact files and the catalog that records them.

:class:`Catalog` is the Python API the CLI calls: open or initialise a store,
record published files (row + audit event in one short transaction), look
artifacts up and read their bytes back verified.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from . import audit
from .config import Settings, load_settings
from .db import Database, refuse_network_filesystem
from .formats import format_time
from .limits import usage_after, warn_crossings
from .errors import CommitError, IntegrityError, NotFoundError, StoreError, ValidationError
from .models import ON_DISK, STATUSES, Artifact, FolderUsage, PolicyFloor
from .naming import TYPES

CHUNK = 1024 * 1024
ARTIFACTS = Artifact.__table__
USAGE = FolderUsage.__table__
FLOORS = PolicyFloor.__table__


# Statements of the write path, built once: building them per write cost more than the commit.
_ADD_USAGE = (
    update(USAGE)
    .where(USAGE.c.folder == bindparam("b_folder"))
    .values(files=USAGE.c.files + bindparam("b_files"), bytes=USAGE.c.bytes + bindparam("b_bytes"))
)
_NEW_USAGE = USAGE.insert()
_INSERT_ARTIFACT = ARTIFACTS.insert().returning(ARTIFACTS.c.id)
_FLOORS = select(FLOORS.c.type, FLOORS.c.days)
_PATH_TAKEN = select(ARTIFACTS.c.id).where(ARTIFACTS.c.path == bindparam("b_path")).limit(1)


def _count(conn: Any, folder: str, files: int, size: int) -> None:
    """Keep ``folder_usage`` in step (the caller holds the chain lock, so no two writers race here)."""
    done = conn.execute(_ADD_USAGE, {"b_folder": folder, "b_files": files, "b_bytes": size})
    if done.rowcount == 0:
        conn.execute(_NEW_USAGE, {"folder": folder, "files": files, "bytes": size})


@dataclass(frozen=True)
class ArtifactRecord:
    """One catalogued artifact, as the API hands it out."""

    id: int
    path: str
    original_path: str
    type: str
    prefix: str
    ext: str
    created_at: datetime
    recorded_at: datetime
    size: int
    sha256: str
    status: str
    retain_until: datetime | None
    pair_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data with times as ISO-8601 UTC text."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for key in ("created_at", "recorded_at", "retain_until"):
            if data[key] is not None:
                data[key] = format_time(data[key])
        return data

    @classmethod
    def from_row(cls, row: Any) -> ArtifactRecord:
        return cls(
            id=row.id, path=row.path, original_path=row.original_path, type=row.type, prefix=row.prefix,
            ext=row.ext, created_at=row.created_at, recorded_at=row.recorded_at, size=row.size,
            sha256=row.sha256, status=row.status, retain_until=row.retain_until, pair_id=row.pair_id,
        )  # fmt: skip


@dataclass(frozen=True)
class PublishedFile:
    """A file already under its final name, waiting for its catalog row."""

    path: str  # relative to base_dir, POSIX
    type: str
    prefix: str
    ext: str
    created_at: datetime
    size: int
    sha256: str
    pair_id: str | None = None
    #: The event's action (write, import, adopt…) and anything it should say besides the row.
    action: str = "write"
    details: Mapping[str, Any] = field(default_factory=dict)


def sha256_file(path: Path) -> tuple[str, int]:
    """SHA-256 and size of the bytes of a file (read into one reused buffer: as fast as hashing it whole)."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return digest.hexdigest(), handle.tell()


class Catalog:
    """A store (base folder) and its catalog database."""

    def __init__(self, settings: Settings, *, check: bool = True, actor: str | None = None) -> None:
        self.settings = settings
        #: A claimed name recorded beside the OS identity in every event (--actor, CRYPTORUN_ACTOR).
        self.actor_claim = audit.validate_claim(actor if actor is not None else os.environ.get("CRYPTORUN_ACTOR"))
        self.base_dir = settings.base_dir
        self.db = Database(
            settings.catalog_url,
            synchronous=settings.sqlite_synchronous,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        )
        if check:
            try:
                self._check_base_dir()
                if self.db.sqlite_path is not None:
                    refuse_network_filesystem(self.db.sqlite_path.parent)
                self.db.check_schema()
            except BaseException:
                self.db.dispose()
                raise

    @classmethod
    def open(cls, base_dir: str | Path | None = None, *, settings: Settings | None = None, **flags: Any) -> Catalog:
        """Open an initialised store; ``base_dir`` overrides the configured one."""
        if settings is None:
            settings = load_settings(flags=dict(flags, base_dir=str(base_dir) if base_dir else None))
        return cls(settings)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_base_dir(self) -> None:
        if self.base_dir.exists() and not self.base_dir.is_dir():
            raise StoreError(f"base folder {self.base_dir} is a file, not a folder")
        if not self.base_dir.is_dir():
            raise StoreError(f"base folder {self.base_dir} does not exist: run `catalog init` first")

    @property
    def actor(self) -> str:
        """Who this process is, for the audit log: ``user@host:pid`` plus any claim."""
        return audit.current_actor(self.actor_claim)

    @classmethod
    def init(cls, settings: Settings, *, actor: str | None = None) -> tuple[Catalog, str | None, str]:
        """Create the folders and migrate the schema to head (idempotent).

        Returns the open catalog and the schema revision before and after. A
        migration is recorded as a ``schema_upgrade`` event, appended after it.
        """
        base = settings.base_dir
        if base.exists() and not base.is_dir():
            raise StoreError(f"base folder {base} is a file, not a folder")
        catalog = cls(settings, check=False, actor=actor)
        try:
            if catalog.db.sqlite_path is not None:
                parent = catalog.db.sqlite_path.parent
                if parent != base and not parent.is_dir():
                    raise StoreError(f"folder {parent} for the SQLite catalog does not exist")
                refuse_network_filesystem(parent if parent.exists() else base.parent)
            else:
                catalog.db.revision()  # reach the server before creating any folder
        except BaseException:
            catalog.close()
            raise
        try:
            for name in TYPES:
                (base / name).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store folders in {base}: {exc.strerror}") from None
        try:
            before, after = catalog.upgrade()
        except BaseException:
            catalog.close()
            raise
        return catalog, before, after

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate the schema to head; record a ``schema_upgrade`` event if it moved."""
        before, after = self.db.upgrade()
        if before != after:
            with self.db.write() as conn:
                audit.append_event(conn, "schema_upgrade", actor=self.actor, details={"from": before, "to": after})
        return before, after

    # -- recording ----------------------------------------------------------

    def retain_until(
        self, artifact_type: str, created_at: datetime, recorded_at: datetime, floor_days: int | None = None
    ) -> datetime | None:
        """When the artifact may expire: max(created, recorded) + the type's days, never below its floor."""
        days = self.settings.retention[artifact_type].days
        if days is not None and floor_days is not None:
            days = max(days, floor_days)
        try:
            return None if days is None else max(created_at, recorded_at) + timedelta(days=days)
        except OverflowError:
            raise ValidationError(
                f"{artifact_type} artifacts dated {created_at:%Y-%m-%d} kept {days} days would expire after year 9999"
            ) from None

    def record(self, files: Sequence[PublishedFile], *, actor: str | None = None) -> list[ArtifactRecord]:
        """Insert one row and one event (``write`` unless the file says otherwise) per file, in one transaction.

        The files are already complete under their final names. If the commit
        fails they stay (CommitError): ``reconcile`` adopts them. A file whose
        row already exists with the same SHA-256 (adopted meanwhile) counts as
        recorded.
        """
        actor = actor or self.actor
        try:
            with self.db.write() as conn:
                chain = audit.ChainAppender(conn)
                floors = dict(conn.execute(_FLOORS).all())
                records = []
                for item in files:
                    recorded_at = datetime.now(timezone.utc)
                    values = dict(
                        path=item.path, original_path=item.path, folder=str(PurePosixPath(item.path).parent),
                        type=item.type, prefix=item.prefix, ext=item.ext, created_at=item.created_at,
                        recorded_at=recorded_at, size=item.size, sha256=item.sha256, status="active",
                        retain_until=self.retain_until(item.type, item.created_at, recorded_at, floors.get(item.type)),
                        pair_id=item.pair_id,
                    )  # fmt: skip
                    _count(conn, values["folder"], 1, item.size)
                    new_id = conn.execute(_INSERT_ARTIFACT, values).scalar_one()
                    chain.append(item.action, actor=actor, artifact_id=new_id, path=item.path, status="active",
                                 details={**item.details, **audit.row_details(values)})  # fmt: skip
                    records.append(ArtifactRecord(id=new_id, status="active", **{k: values[k] for k in (
                        "path", "original_path", "type", "prefix", "ext", "created_at", "recorded_at", "size",
                        "sha256", "retain_until", "pair_id")}))  # fmt: skip
                chain.close()
                added: dict[str, tuple[int, int]] = {}
                for record in records:
                    folder = str(PurePosixPath(record.path).parent)
                    files_so_far, bytes_so_far = added.get(folder, (0, 0))
                    added[folder] = (files_so_far + 1, bytes_so_far + record.size)
                usage, store_bytes = usage_after(conn, added)
        except SAIntegrityError:
            adopted = self._already_recorded(files)
            if adopted is not None:
                return adopted
            raise self._commit_error(files, "another row already has this path") from None
        except Exception as exc:
            raise self._commit_error(files, str(exc)) from exc
        warn_crossings(self.settings.limits, added, usage, store_bytes)
        return records

    def _already_recorded(self, files: Sequence[PublishedFile]) -> list[ArtifactRecord] | None:
        found = []
        for item in files:
            record = self.find_path(item.path)
            if record is None or record.sha256 != item.sha256:
                return None
            found.append(record)
        return found

    @staticmethod
    def _commit_error(files: Sequence[PublishedFile], reason: str) -> CommitError:
        paths = tuple(item.path for item in files)
        # One line: driver errors (psycopg's among them) carry hints on further lines.
        reason = next((line.strip() for line in reason.splitlines() if line.strip()), "no reason given")
        return CommitError(
            f"published {', '.join(paths)} but could not record it in the catalog ({reason}); "
            "the file is complete and kept: run `catalog reconcile --fix` to adopt it",
            paths,
        )

    # -- lookups ------------------------------------------------------------

    def relative(self, path: str | Path) -> str:
        """The catalog path for ``path``: as stored, or absolute inside base_dir."""
        text = str(path)
        if "\x00" in text:
            raise ValidationError("path contains a NUL character")
        candidate = Path(text)
        if candidate.is_absolute():
            try:
                text = Path(os.path.normpath(candidate)).relative_to(self.base_dir).as_posix()
            except ValueError:
                raise NotFoundError(f"{path} is outside the store {self.base_dir}") from None
        return PurePosixPath(os.path.normpath(text)).as_posix()

    def find_path(self, path: str | Path) -> ArtifactRecord | None:
        """The artifact whose current path is ``path``, or None."""
        rel = self.relative(path)
        with self.db.read() as conn:
            row = conn.execute(select(ARTIFACTS).where(ARTIFACTS.c.path == rel)).one_or_none()
            return ArtifactRecord.from_row(row) if row is not None else None

    def path_taken(self, rel_path: str) -> bool:
        """Whether any row (whatever its status) has ever had this current path."""
        with self.db.read() as conn:
            return conn.execute(_PATH_TAKEN, {"b_path": rel_path}).first() is not None

    def list(self, query: Any = None) -> list[ArtifactRecord]:
        """Artifacts matching a :class:`catalog.query.ArtifactQuery` (default: all, newest first)."""
        from .query import ArtifactQuery, iter_artifacts

        return list(iter_artifacts(self, query or ArtifactQuery()))

    def events(self) -> Iterator[audit.EventRecord]:
        """Every audit event, in chain order (streamed)."""
        return (audit.EventRecord.from_row(row) for row in audit.iter_events(self.db.read))

    def audit_verify(self, checkpoints: Sequence[audit.Checkpoint] = ()) -> audit.AuditReport:
        """Recompute the chain and check every row against its events (see :func:`catalog.audit.verify`)."""
        return audit.verify(self.db.read, list(checkpoints))

    def change_status(
        self,
        artifact_id: int,
        *,
        action: str,
        status: str,
        path: str | None = None,
        retain_until: datetime | None = None,
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> ArtifactRecord:
        """The one way an artifact row changes: update it and append its event, in one transaction.

        ``path`` moves the row to a new current path (archive, move);
        ``retain_until`` extends its retention. The event carries the row's new
        state, so replaying events rebuilds the row.
        """
        if status not in STATUSES:
            raise ValidationError(f"unknown status {status!r}; choose one of: {', '.join(STATUSES)}")
        with self.db.write() as conn:
            chain = audit.ChainAppender(conn)  # the lock first: usage counts change under it too
            row = conn.execute(select(ARTIFACTS).where(ARTIFACTS.c.id == artifact_id)).one_or_none()
            if row is None:
                raise NotFoundError(f"no artifact with id {artifact_id}")
            changes: dict[str, Any] = {"status": status}
            if path is not None and path != row.path:
                changes.update(path=path, folder=str(PurePosixPath(path).parent))
            if retain_until is not None:
                changes["retain_until"] = retain_until
            conn.execute(update(ARTIFACTS).where(ARTIFACTS.c.id == artifact_id).values(**changes))
            if row.status in ON_DISK:
                _count(conn, row.folder, -1, -row.size)
            if status in ON_DISK:
                _count(conn, changes.get("folder", row.folder), 1, row.size)
            event_details = {"from_status": row.status, **audit.row_details(changes), **dict(details or {})}
            if "path" in changes:
                event_details["from_path"] = row.path
            chain.append(action, actor=self.actor, artifact_id=artifact_id, path=changes.get("path", row.path),
                         status=status, details=event_details, at=at)  # fmt: skip
            chain.close()
            return ArtifactRecord.from_row(conn.execute(select(ARTIFACTS).where(ARTIFACTS.c.id == artifact_id)).one())

    # -- reading bytes back -------------------------------------------------

    def _readable(self, path: str | Path) -> tuple[ArtifactRecord, Path]:
        record = self.find_path(path)
        if record is None:
            raise NotFoundError(f"no artifact at {self.relative(path)} in the catalog")
        if record.status not in ("active", "archived"):
            raise NotFoundError(f"artifact {record.path} is {record.status}; its bytes are not served")
        return record, self.base_dir / record.path

    def copy_verified(self, path: str | Path, out: IO[bytes]) -> ArtifactRecord:
        """Copy an artifact's bytes to ``out``, hashing them; raise if they no longer match.

        The caller discards ``out`` when this raises: nothing unverified is kept.
        """
        record, file_path = self._readable(path)
        digest, size = hashlib.sha256(), 0
        try:
            with open(file_path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except FileNotFoundError:
            raise IntegrityError(
                f"artifact {record.path} is in the catalog but its file is gone: run `catalog reconcile`"
            ) from None
        if size != record.size or digest.hexdigest() != record.sha256:
            raise IntegrityError(
                f"refused: {record.path} no longer matches the catalog (size {size} vs {record.size}, "
                f"SHA-256 {digest.hexdigest()[:12]}… vs {record.sha256[:12]}…): run `catalog reconcile --deep`"
            )
        return record

    def export(self, path: str | Path, destination: Path | None, stdout: IO[bytes] | None = None) -> ArtifactRecord:
        """Write an artifact's verified bytes to ``destination`` (or ``stdout``).

        Bytes go to a temp file first and reach the destination only once their
        hash matched, so a tampered artifact leaves nothing behind.
        """
        if destination is not None:
            destination = Path(os.path.abspath(destination))
            if destination.is_dir():
                raise ValidationError(f"output {destination} is a folder")
            if Path(os.path.realpath(destination)).is_relative_to(os.path.realpath(self.base_dir)):
                raise ValidationError(f"output {destination} is inside the store; choose a path outside it")
            try:
                handle = tempfile.NamedTemporaryFile(dir=destination.parent, prefix=".catalog-get-", delete=False)
            except FileNotFoundError:
                raise ValidationError(f"output folder {destination.parent} does not exist") from None
            try:
                with handle:
                    record = self.copy_verified(path, handle)
                os.replace(handle.name, destination)
            finally:
                if os.path.exists(handle.name):
                    os.unlink(handle.name)
            return record
        assert stdout is not None
        with tempfile.TemporaryFile() as spool:
            record = self.copy_verified(path, spool)
            spool.seek(0)
            shutil.copyfileobj(spool, stdout, CHUNK)
            stdout.flush()
        return record
