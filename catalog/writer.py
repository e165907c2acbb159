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
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import CatalogError, CollisionError, StoreError
from . import explain
from .config import redact_url
from .explain import ExplainReport
from .formats import check_content, csv_bytes, json_bytes
from .health import HealthMetrics, Span, spans_jsonl
from .ledger import Portfolio, Trade, executions_rows
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


#: From this size on, the SHA-256 is computed on a helper thread while the bytes go to disk
#: (hashlib and os.write both release the GIL): at 10 MiB that hides the hash behind the fsync.
HASH_BESIDE = 256 * 1024
_hasher: tuple[int, ThreadPoolExecutor] | None = None


def _hash_pool() -> ThreadPoolExecutor:
    """One long-lived hashing thread per process (a forked child makes its own)."""
    global _hasher
    if _hasher is None or _hasher[0] != os.getpid():
        _hasher = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-sha256"))
    return _hasher[1]


def publish(folder: Path, filename: str, data: bytes) -> str:
    """Write ``data`` under ``folder/filename`` atomically, durably, read-only, never clobbering.

    Returns the SHA-256 (hex) of ``data``.
    """
    if len(data) < HASH_BESIDE:
        _publish(folder, filename, data)
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    hashing = _hash_pool().submit(digest.update, data)
    try:
        _publish(folder, filename, data)
    finally:
        hashing.result()
    return digest.hexdigest()


def _publish(folder: Path, filename: str, data: bytes) -> None:
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
    action: str = "write"
    details: Mapping[str, Any] = field(default_factory=dict)

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

    # -- the typed families -------------------------------------------------

    def write_explain_report(self, report: ExplainReport, prefix: str) -> tuple[ArtifactRecord, ArtifactRecord]:
        """Validate ``report`` and write it as one pair: ``explain/<ts>-<prefix>-explain.json`` and ``.csv``.

        One instant, truncated to the second, names both files and becomes the
        report's ``meta.timestamp``. The JSON is published first; both rows
        and their events are committed together, linked by a ``pair_id``.
        """
        now = datetime.now(timezone.utc).replace(microsecond=0)
        report = report.with_timestamp(now)
        explain.require_consistent(report)
        json_data = json_bytes(report.to_dict(), self.settings.json_indent)
        csv_data = csv_bytes(explain.csv_rows(report), self.settings.csv_precision)
        names = [self._name("explain", prefix, ext, now) for ext in ("json", "csv")]
        json_record, csv_record = self._write([_Pending(names[0], json_data), _Pending(names[1], csv_data)], pair=True)
        return json_record, csv_record

    def import_explain(self, data: bytes, prefix: str, source: str = "") -> tuple[list[ArtifactRecord], list[str]]:
        """Bring in a report written elsewhere (e.g. by the Go scanner) as a catalogued pair.

        The JSON is stored byte for byte (its SHA-256 is the chain of custody),
        dated by its own ``meta.timestamp``; the CSV is derived from it, with
        its data rows. Rules the report breaks are recorded in the import
        events and returned; a report that cannot be read at all is refused.
        """
        report = explain.ExplainReport.from_json(data, lenient=True)
        broken = list(report.load_notes) + [f"{v} [rule: {v.rule}]" for v in explain.check_report(report)]
        csv_data = csv_bytes(explain.csv_rows(report), self.settings.csv_precision)
        moment = report.meta.timestamp
        names = [self._name("explain", prefix, ext, moment) for ext in ("json", "csv")]
        source_details = {"source": source, "source_sha256": hashlib.sha256(data).hexdigest(), "broken_rules": broken}
        items = [
            _Pending(names[0], data, "import", source_details),
            _Pending(names[1], csv_data, "import", {"derived_from": f"explain/{names[0].filename}"}),
        ]
        return self._write(items, pair=True), broken

    def write_portfolio(
        self, prefix: str, portfolio: Portfolio | Mapping[str, Any], *, created_at: datetime | None = None
    ) -> ArtifactRecord:
        """A validated portfolio snapshot as ``ledger/<ts>-<prefix>-ledger.json``."""
        model = portfolio if isinstance(portfolio, Portfolio) else Portfolio.from_dict(portfolio)
        return self.write_json("ledger", prefix, model.to_dict(), created_at=created_at)

    def write_executions(
        self, prefix: str, trades: Iterable[Trade | Mapping[str, Any]], *, created_at: datetime | None = None
    ) -> ArtifactRecord:
        """A validated execution log (one row per trade) as ``ledger/<ts>-<prefix>-ledger.csv``."""
        return self.write_csv("ledger", prefix, executions_rows(trades), created_at=created_at)

    def write_health_metrics(
        self, prefix: str, metrics: HealthMetrics | Mapping[str, Any], *, created_at: datetime | None = None
    ) -> ArtifactRecord:
        """Validated hourly health metrics as ``health/<ts>-<prefix>-health.json``."""
        model = metrics if isinstance(metrics, HealthMetrics) else HealthMetrics.from_dict(metrics)
        return self.write_json("health", prefix, model.to_dict(), created_at=created_at)

    def write_traces(
        self, prefix: str, spans: Iterable[Span | Mapping[str, Any]], *, created_at: datetime | None = None
    ) -> ArtifactRecord:
        """Validated request traces, one span per line, as ``health/<ts>-<prefix>-health.jsonl``.

        A trace file is complete or absent: it is published in one piece like every artifact.
        """
        data = spans_jsonl(spans)
        return self._write([_Pending(self._name("health", prefix, "jsonl", created_at), data)])[0]

    def snapshot_config(self, prefix: str = "active", *, created_at: datetime | None = None) -> ArtifactRecord:
        """The effective configuration, with where each value came from, as ``config/<ts>-<prefix>-config.json``."""
        settings = self.settings
        values = settings.values()
        values["catalog_url"] = redact_url(values["catalog_url"])
        snapshot = {"settings": values, "sources": dict(sorted(settings.sources.items()))}
        return self.write_json("config", prefix, snapshot, created_at=created_at)

    # -- the protocol -------------------------------------------------------

    @staticmethod
    def _name(
        artifact_type: str, prefix: str, ext: str, created_at: datetime | None, *, allow_extra: bool = False
    ) -> ArtifactName:
        moment = utc_second(created_at) if created_at is not None else datetime.now(timezone.utc).replace(microsecond=0)
        name = build_name(moment, prefix, artifact_type, ext)
        validate_ext(name.type, name.ext, allow_extra=allow_extra)
        return name

    def _write(self, items: Sequence[_Pending], *, pair: bool = False) -> list[ArtifactRecord]:
        """Publish every item in order, then record them all in one transaction.

        ``pair``: the items are one explain pair, linked by a fresh ``pair_id``.
        """
        pair_id = secrets.token_hex(16) if pair else None
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
                    digest = publish(folder, item.name.filename, item.data)
                except OSError as exc:
                    raise StoreError(f"cannot write {item.rel_path}: {exc.strerror or exc}") from None
                published.append(
                    PublishedFile(
                        path=item.rel_path, type=item.name.type, prefix=item.name.prefix, ext=item.name.ext,
                        created_at=item.name.created_at, size=len(item.data),
                        sha256=digest, pair_id=pair_id, action=item.action,
                        details=item.details,
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
