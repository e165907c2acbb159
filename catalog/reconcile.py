"""Reconcile: find every disagreement between the store's folders and the catalog, and repair the catalog.

One walk, folder by folder: each folder's entries (sorted) are merged with the
catalog rows of that folder (sorted by path), so memory stays bounded by the
largest folder, not the store. Each finding has a real path, a class and a
reason:

    orphan      a complete file with an artifact name (or a legacy name) and no row
    missing     a row whose file is gone
    moved       a missing row and an orphan with the same SHA-256: one finding
    modified    size differs (quick) or SHA-256 differs (--deep)
    half_pair   one file of a linked explain pair without its twin
    stale_temp  a writer's leftover temp file
    restored    a row marked missing whose file is back, unchanged
    foreign     not an artifact: listed, never touched, not drift
    in_flight   an orphan or temp younger than the grace period: a live writer's; not drift

``--fix`` repairs the catalog without destroying evidence: orphans are adopted
(hashed; row and ``adopt`` event), missing rows marked ``missing``, moved rows
follow their file, modified files move to ``quarantine/`` (never deleted), a
lone explain JSON gets its CSV regenerated, a lone CSV is quarantined, and stale
temps whose writer is gone are removed (the only files reconcile deletes).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import func, select

from . import explain
from .errors import CatalogError, ValidationError
from .formats import csv_bytes
from .models import ON_DISK
from .naming import TYPES, host_name, parse_name, parse_temp_name, validate_prefix
from .store import ARTIFACTS, Catalog, PublishedFile, sha256_file
from .writer import ensure_folder, fsync_dir, publish

CLASSES = ("orphan", "missing", "moved", "modified", "half_pair", "stale_temp", "restored", "foreign", "in_flight")
NOT_DRIFT = ("foreign", "in_flight")

QUARANTINE = "quarantine"
CATALOG_FILES = ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "catalog.sqlite-journal", "catalog.sqlite-lock")
DEFAULT_GRACE = 300.0  # seconds

_LEGACY = re.compile(r"(?P<date>\d{8})(?:-(?P<time>\d{6}))?-(?P<prefix>[^/]+?)\.(?P<ext>json|jsonl|csv)")


@dataclass
class Finding:
    """One disagreement, with what ``--fix`` did about it."""

    cls: str
    path: str
    reason: str
    fixed: str | None = None  # what the fix did, if anything
    other_path: str | None = None  # moved: the row's old path; half_pair: the twin

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.cls, "path": self.path, "reason": self.reason, "fixed": self.fixed,
                "other_path": self.other_path}  # fmt: skip


@dataclass
class ReconcileReport:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    rows: int = 0

    @property
    def drift(self) -> list[Finding]:
        return [f for f in self.findings if f.cls not in NOT_DRIFT]

    def counts(self) -> dict[str, int]:
        return {cls: sum(f.cls == cls for f in self.findings) for cls in CLASSES}

    def to_dict(self) -> dict[str, Any]:
        return {"clean": not self.drift, "files": self.files, "rows": self.rows, "counts": self.counts(),
                "findings": [f.to_dict() for f in self.findings]}  # fmt: skip


@dataclass(frozen=True)
class _Entry:
    path: str
    size: int
    mtime: float

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class _Orphan:
    entry: _Entry
    type: str
    prefix: str
    ext: str
    created_at: datetime
    legacy: bool


def legacy_name(folder: str, filename: str) -> tuple[datetime, str, str, bool] | None:
    """A name written by the seed's older tools: (time, prefix, ext, day_precision), or None."""
    match = _LEGACY.fullmatch(filename)
    if not match:
        return None
    try:
        stamp = match["date"] + (match["time"] or "000000")
        created = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
        validate_prefix(match["prefix"])
    except (ValueError, ValidationError):
        return None
    return created, match["prefix"], match["ext"], match["time"] is None


def _writer_gone(host: str, pid: int) -> bool:
    """True when the temp file's writer is known dead (this host, no such process)."""
    if host != host_name():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Reconciler:
    """One reconcile run over a catalog."""

    def __init__(
        self, catalog: Catalog, *, deep: bool = False, fix: bool = False, grace: float = DEFAULT_GRACE,
        types: tuple[str, ...] = (), progress: Callable[[int, int], None] | None = None, now: float | None = None,
    ) -> None:  # fmt: skip
        self.catalog, self.base = catalog, catalog.base_dir
        self.deep, self.fix, self.grace, self.types = deep, fix, grace, types
        self.progress = progress or (lambda files, size: None)
        self.now = time.time() if now is None else now
        self.report = ReconcileReport()
        self.orphans: list[_Orphan] = []
        self.missing: list[Any] = []  # rows
        self.loose: list[tuple[_Entry, str]] = []  # not artifacts where they are: foreign, unless a missing row's file

    # -- the walk -------------------------------------------------------------

    def _catalog_folders(self) -> set[str]:
        """Folders the catalog expects files in (an index-only scan)."""
        with self.catalog.db.read() as conn:
            query = select(ARTIFACTS.c.folder).distinct().where(ARTIFACTS.c.status.in_(ON_DISK))
            if self.types:
                query = query.where(ARTIFACTS.c.type.in_(self.types))
            return {row.folder for row in conn.execute(query)}

    def _light_rows(self, folder: str) -> dict[str, tuple[int, str]]:
        """name -> (size, status) of one folder's rows: all a quick check of a healthy file needs."""
        c = ARTIFACTS.c
        name = func.substr(c.path, len(folder) + 2)  # the database cuts "folder/" off: no string work per row here
        with self.catalog.db.read() as conn:
            result = conn.execute(select(name, c.size, c.status).where(c.folder == folder))
            # plain columns with no result processing: read the DBAPI cursor directly (twice as fast)
            found = result.cursor.fetchall()
            result.close()
        return {name: (size, status) for name, size, status in found}

    def _full_rows(self, folder: str) -> dict[str, Any]:
        """path -> row with what classification and repair need (fetched only when a folder needs them)."""
        c = ARTIFACTS.c
        with self.catalog.db.read() as conn:
            found = conn.execute(select(c.id, c.path, c.size, c.sha256, c.status, c.pair_id, c.ext).where(c.folder == folder))
            return {row.path: row for row in found}

    def _root_files(self) -> None:
        if not self.types:
            with os.scandir(self.base) as it:
                for entry in it:
                    if not entry.is_dir(follow_symlinks=False) and entry.name not in CATALOG_FILES:
                        self._add("foreign", entry.name, "not an artifact: a file at the top of the store")

    def _add(self, cls: str, path: str, reason: str, other: str | None = None) -> Finding:
        finding = Finding(cls, path, reason, other_path=other)
        self.report.findings.append(finding)
        return finding

    def walk(self) -> None:
        """Every folder under the type folders (each read once), then those only the catalog names."""
        self._root_files()
        expected = self._catalog_folders()
        if self.types:
            pending = [root for root in self.types if (self.base / root).is_dir()]
        else:
            with os.scandir(self.base) as it:
                pending = [e.name for e in it if e.is_dir(follow_symlinks=False)]
        pending.sort(reverse=True)
        while pending:
            folder = pending.pop()
            pending.extend(sorted(self._folder(folder), reverse=True))
            expected.discard(folder)
        for folder in sorted(expected):  # gone from disk, or outside the folders walked (quarantine/ with --type)
            self._folder(folder)

    def _folder(self, folder: str) -> list[str]:
        """Read one folder once, merging its files with its rows; returns its subfolders (store paths).

        A healthy file in a quick run costs a stat and a dict lookup: no record is
        made of it. Everything else is classified after the folder is read.
        """
        light = self._light_rows(folder)
        self.report.rows += sum(status in ON_DISK for _, status in light.values())
        pop, healthy, quick = light.pop, ("active", "archived"), not self.deep
        odd: list[tuple[str, int, float, bool]] = []  # (name, size, mtime, has a row)
        subfolders, others, files = [], [], 0
        try:
            with os.scandir(self.base / folder) as it:
                for entry in it:
                    if entry.is_file(follow_symlinks=False):
                        files += 1
                        info = entry.stat(follow_symlinks=False)
                        row = pop(entry.name, None)
                        if quick and row is not None and (
                            (row[0] == info.st_size and row[1] in healthy) or row[1] == "quarantined"
                        ):
                            continue  # the quick check holds: same size, on disk as recorded
                        odd.append((entry.name, info.st_size, info.st_mtime, row is not None))
                    elif entry.is_dir(follow_symlinks=False):
                        subfolders.append(f"{folder}/{entry.name}")
                    else:
                        others.append(f"{folder}/{entry.name}")
        except (FileNotFoundError, NotADirectoryError):
            pass
        self.report.files += files
        if quick:
            self.progress(files, 0)
        for path in sorted(others):
            self._add("foreign", path, "not a regular file")
        full = self._full_rows(folder) if light or any(has_row for *_, has_row in odd) else {}
        for name, size, mtime, has_row in sorted(odd):
            path = f"{folder}/{name}"
            if not quick:
                self.progress(1, size)
            self._classify_file(folder, _Entry(path, size, mtime), full[path] if has_row else None)
        for name in sorted(light):  # rows whose file was not there
            row = full[f"{folder}/{name}"]
            if row.status in ("active", "archived"):
                self.missing.append(row)
            elif row.status == "quarantined":
                self._add("missing", row.path, "a quarantined file is gone from quarantine")
        return subfolders

    def _classify_file(self, folder: str, entry: _Entry, row: Any) -> None:
        if row is not None:
            self._check_row_file(entry, row)
            return
        name = entry.name
        young = self.now - entry.mtime < self.grace
        temp = parse_temp_name(name)
        if temp is not None:
            if young and not _writer_gone(temp.host, temp.pid):
                self._add("in_flight", entry.path, f"temp file of a live writer ({temp.host}:{temp.pid})")
            else:
                self._add("stale_temp", entry.path, f"left by {temp.host}:{temp.pid}, which is gone or long done")
            return
        top = folder.split("/", 1)[0]
        if top == QUARANTINE:
            self.loose.append((entry, "a file in quarantine without a quarantined row"))
            return
        parsed = parse_name(name)
        in_place = parsed is not None and (folder == parsed.type or folder.startswith(f"{parsed.type}/archived/"))
        if in_place:
            orphan = _Orphan(entry, parsed.type, parsed.prefix, parsed.ext, parsed.created_at, False)
        else:
            legacy = legacy_name(folder, name) if folder in TYPES else None
            if legacy is None or parsed is not None:
                reason = "not an artifact name" if parsed is None else "an artifact name, in the wrong folder"
                self.loose.append((entry, reason if top in TYPES else f"{reason}, outside the type folders"))
                return
            created, prefix, ext, _ = legacy
            orphan = _Orphan(entry, folder, prefix, ext, created, True)
        if young:
            self._add("in_flight", entry.path, "a complete file younger than the grace period: its writer may be committing")
            return
        self.orphans.append(orphan)

    def _check_row_file(self, entry: _Entry, row: Any) -> None:
        if row.status == "deleted":
            self._add("foreign", entry.path, "a file at the path of a deleted artifact (restored by hand?)")
            return
        if row.status == "quarantined":
            return  # its bytes are known to differ; it is kept as evidence
        if entry.size != row.size:
            self._modified(entry, row, f"size {entry.size} bytes, the catalog recorded {row.size}")
            return
        if self.deep or row.status == "missing":
            digest, _ = sha256_file(self.base / entry.path)
            if digest != row.sha256:
                self._modified(entry, row, f"SHA-256 {digest[:12]}…, the catalog recorded {row.sha256[:12]}…")
                return
        if row.status == "missing":
            finding = self._add("restored", entry.path, "marked missing, but the file is back with its recorded bytes")
            if self.fix:
                self.catalog.change_status(row.id, action="restore", status="active", details={"by": "reconcile"})
                finding.fixed = "row active again"

    def _modified(self, entry: _Entry, row: Any, reason: str) -> None:
        finding = self._add("modified", entry.path, reason)
        if self.fix:
            target = self._quarantine(entry.path)
            self.catalog.change_status(row.id, action="quarantine", status="quarantined", path=target,
                                       details={"reason": reason, "by": "reconcile"})  # fmt: skip
            finding.fixed = f"moved to {target}"

    def _quarantine(self, rel: str) -> str:
        """Move a file into quarantine/ (never delete it); returns its new store path."""
        target = f"{QUARANTINE}/{rel}"
        destination = self.base / target
        if destination.exists():
            target = f"{QUARANTINE}/{rel}.{secrets.token_hex(4)}"
            destination = self.base / target
        ensure_folder(self.base, destination.parent)
        os.link(self.base / rel, destination)
        fsync_dir(destination.parent)
        os.unlink(self.base / rel)
        fsync_dir((self.base / rel).parent)
        return target

    # -- after the walk: matching and fixing ------------------------------------------

    def settle(self) -> None:
        """Pair missing rows with orphans (moved), recognise half pairs, then fix."""
        self.orphans.sort(key=lambda o: o.entry.path)  # the walk's order is the file system's
        self.loose.sort(key=lambda pair: pair[0].path)
        hashed = {id(o): sha256_file(self.base / o.entry.path)[0] for o in self.orphans}
        by_sha: dict[str, list[_Orphan]] = {}
        for orphan in self.orphans:
            by_sha.setdefault(hashed[id(orphan)], []).append(orphan)
        sizes = {row.size for row in self.missing}
        for entry, _ in self.loose:  # a missing row's file may have been moved (or renamed) anywhere
            if entry.size in sizes:
                loose = _Orphan(entry, "", "", "", datetime.now(timezone.utc), True)
                by_sha.setdefault(sha256_file(self.base / entry.path)[0], []).append(loose)
        moved: set[str] = set()
        still_missing = []
        for row in self.missing:
            candidates = by_sha.get(row.sha256, [])
            match = next((o for o in candidates if PurePosixPath(o.entry.path).name == PurePosixPath(row.path).name), None)
            match = match or (candidates[0] if candidates else None)
            if match is None:
                still_missing.append(row)
                continue
            candidates.remove(match)
            moved.add(match.entry.path)
            finding = self._add("moved", match.entry.path, f"the file of {row.path} is now here (same SHA-256)", row.path)
            if self.fix:
                self.catalog.change_status(row.id, action="move", status=row.status, path=match.entry.path,
                                           details={"by": "reconcile"})  # fmt: skip
                finding.fixed = "row follows the file"
        orphans = [o for o in self.orphans if o.entry.path not in moved]
        for entry, reason in self.loose:
            if entry.path not in moved:
                self._add("foreign", entry.path, reason)
        self._missing_rows(still_missing)
        self._orphans(orphans, hashed)

    def _twin(self, path: str) -> str:
        return path[: -len(".json")] + ".csv" if path.endswith(".json") else path[: -len(".csv")] + ".json"

    def _missing_rows(self, rows: list[Any]) -> None:
        for row in rows:
            twin = self._twin(row.path) if row.pair_id else None
            twin_present = twin is not None and (self.base / twin).is_file()
            if twin_present and row.ext == "csv":
                finding = self._add("half_pair", row.path, "the CSV of a linked pair is gone; its JSON is here", twin)
                if self.fix:
                    finding.fixed = self._regenerate_csv(row, twin)
            elif twin_present and row.ext == "json":
                finding = self._add("half_pair", twin, "the JSON of a linked pair is gone; this CSV is all that is left", row.path)
                if self.fix:
                    self.catalog.change_status(row.id, action="missing", status="missing", details={"by": "reconcile"})
                    twin_row = self.catalog.find_path(twin)
                    target = self._quarantine(twin)
                    if twin_row is not None:
                        self.catalog.change_status(twin_row.id, action="quarantine", status="quarantined", path=target,
                                                   details={"reason": "lone CSV of a pair", "by": "reconcile"})  # fmt: skip
                    finding.fixed = f"JSON row marked missing; CSV moved to {target}"
            else:
                finding = self._add("missing", row.path, "the catalog has an active row; the file is gone")
                if self.fix:
                    self.catalog.change_status(row.id, action="missing", status="missing", details={"by": "reconcile"})
                    finding.fixed = "row marked missing"

    def _regenerate_csv(self, row: Any, json_path: str) -> str:
        report = explain.ExplainReport.from_json((self.base / json_path).read_bytes(), lenient=True)
        data = csv_bytes(explain.csv_rows(report), self.catalog.settings.csv_precision)
        if hashlib.sha256(data).hexdigest() == row.sha256:
            path = self.base / row.path
            publish(path.parent, path.name, data)
            self.catalog.change_status(row.id, action="regenerate", status=row.status,
                                       details={"from": json_path, "by": "reconcile"})  # fmt: skip
            return "CSV regenerated from its JSON (same bytes as recorded)"
        self.catalog.change_status(row.id, action="missing", status="missing",
                                   details={"by": "reconcile", "note": "regenerated CSV would differ from the recorded one"})  # fmt: skip
        return "row marked missing (a regenerated CSV would not match the recorded bytes)"

    def _orphans(self, orphans: list[_Orphan], hashed: dict[int, str]) -> None:
        paths = {o.entry.path for o in orphans}
        done: set[str] = set()
        for orphan in orphans:
            path = orphan.entry.path
            if path in done:
                continue
            twin = self._twin(path) if orphan.type == "explain" and not orphan.legacy else None
            if twin is not None and twin in paths:  # a pair whose commit never happened
                pair = sorted([orphan, next(o for o in orphans if o.entry.path == twin)], key=lambda o: o.ext != "json")
                for member in pair:
                    finding = self._add("orphan", member.entry.path, "a complete pair without rows (its writer died before committing)")
                    done.add(member.entry.path)
                    if self.fix:
                        finding.fixed = "adopted"
                if self.fix:
                    self._adopt(pair, hashed, pair_id=secrets.token_hex(16))
                continue
            if twin is not None and not (self.base / twin).exists() and orphan.ext in ("json", "csv"):
                if orphan.ext == "json":
                    finding = self._add("half_pair", path, "an explain JSON without rows and without its CSV twin", twin)
                    if self.fix:
                        finding.fixed = self._adopt_half_pair(orphan, hashed, twin)
                else:
                    finding = self._add("half_pair", path, "an explain CSV without its JSON: it cannot be trusted alone", twin)
                    if self.fix:
                        finding.fixed = f"moved to {self._quarantine(path)}"
                done.add(path)
                continue
            reason = "a legacy-named file without a row" if orphan.legacy else "a complete file without a row"
            finding = self._add("orphan", path, reason)
            if self.fix:
                self._adopt([orphan], hashed)
                finding.fixed = "adopted"

    def _adopt_half_pair(self, orphan: _Orphan, hashed: dict[int, str], twin: str) -> str:
        try:
            report = explain.ExplainReport.from_json((self.base / orphan.entry.path).read_bytes(), lenient=True)
        except CatalogError:
            self._adopt([orphan], hashed)
            return "adopted alone (not a readable explain report, so no CSV)"
        data = csv_bytes(explain.csv_rows(report), self.catalog.settings.csv_precision)
        target = self.base / twin
        publish(target.parent, target.name, data)
        csv_orphan = _Orphan(_Entry(twin, len(data), self.now), "explain", orphan.prefix, "csv", orphan.created_at, False)
        hashed[id(csv_orphan)] = hashlib.sha256(data).hexdigest()
        self._adopt([orphan, csv_orphan], hashed, pair_id=secrets.token_hex(16), regenerated=twin)
        return "adopted; its CSV regenerated and linked"

    def _adopt(self, orphans: list[_Orphan], hashed: dict[int, str], pair_id: str | None = None,
               regenerated: str | None = None) -> None:  # fmt: skip
        files = []
        for o in orphans:
            details: dict[str, Any] = {"by": "reconcile", "mtime": datetime.fromtimestamp(o.entry.mtime, timezone.utc).isoformat()}
            if o.legacy:
                details["legacy_name"] = True
                details["precision"] = "day" if legacy_name(o.type, PurePosixPath(o.entry.path).name)[3] else "second"  # type: ignore[index]
            if regenerated == o.entry.path:
                details["regenerated_from"] = orphans[0].entry.path
            files.append(PublishedFile(
                path=o.entry.path, type=o.type, prefix=o.prefix, ext=o.ext, created_at=o.created_at,
                size=o.entry.size, sha256=hashed[id(o)], pair_id=pair_id, action="adopt", details=details,
            ))  # fmt: skip
        self.catalog.record(files)

    def stale_temps(self) -> None:
        if not self.fix:
            return
        for finding in self.report.findings:
            if finding.cls == "stale_temp":
                try:
                    os.unlink(self.base / finding.path)
                    fsync_dir((self.base / finding.path).parent)
                    finding.fixed = "removed"
                except FileNotFoundError:
                    finding.fixed = "already gone"


def reconcile(
    catalog: Catalog, *, deep: bool = False, fix: bool = False, grace: float = DEFAULT_GRACE,
    types: tuple[str, ...] = (), progress: Callable[[int, int], None] | None = None,
) -> ReconcileReport:  # fmt: skip
    """Walk the store once, classify every file and row, and (``fix``) repair the catalog."""
    if grace < 0:
        raise ValidationError("--grace must be 0 or more")
    run = Reconciler(catalog, deep=deep, fix=fix, grace=grace, types=types, progress=progress)
    run.walk()
    run.settle()
    run.stale_temps()
    run.report.findings.sort(key=lambda f: (CLASSES.index(f.cls), f.path))
    if fix:
        counts = {k: v for k, v in run.report.counts().items() if v}
        from . import audit

        with catalog.db.write() as conn:
            audit.append_event(conn, "reconcile_run", actor=catalog.actor,
                               details={"deep": deep, "types": list(types), "counts": counts})  # fmt: skip
    return run.report


def expected_work(catalog: Catalog, types: tuple[str, ...] = ()) -> tuple[int, int]:
    """Rows and bytes the catalog expects on disk: the length of a progress bar."""
    with catalog.db.read() as conn:
        query = select(func.count(), func.coalesce(func.sum(ARTIFACTS.c.size), 0)).where(ARTIFACTS.c.status.in_(ON_DISK))
        if types:
            query = query.where(ARTIFACTS.c.type.in_(types))
        count, size = conn.execute(query).one()
    return int(count), int(size)
