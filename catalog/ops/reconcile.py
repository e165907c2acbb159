"""Reconcile: find every disagreement between the store's folders and the catalog, and repair the catalog.

One walk, folder by folder: each folder's entries are merged with the
catalog rows of that folder (read with the next folders' rows, up to
:data:`AHEAD_ROWS` rows in all), so memory stays bounded by the largest
folder, not the store. Each finding has a real path, a class and a reason:

    orphan      a complete file with an artifact name (or a legacy name) and no row
    missing     a row whose file is gone
    moved       a missing row and an orphan with the same SHA-256: one finding
    modified    size differs (quick) or SHA-256 differs (``deep``)
    half_pair   one file of a linked explain pair without its twin
    stale_temp  a writer's leftover temp file: its writer gone (this host), or another host's older than the grace period
    restored    a row marked missing whose file is back, unchanged
    linked_folder  a folder of the store that is a symlink: never read or written through; left for a person
    foreign     not an artifact: listed, never touched, not drift; so is an artifact name in a
                folder no layout puts it in (a partition that is not its name's date, a
                depth that is neither month's nor day's): never adopted, never moved
    in_flight   a live writer's, not drift: an orphan or another host's temp younger than the grace period,
                or a temp whose writer runs on this host (its PID alive), whatever its age and the grace

A catalogued path that holds a symlink, a FIFO, a folder or any other
non-regular file is ``modified`` ("not a regular file (symlink)"), as verify
calls it ``failed`` and ``get`` refuses it: no verb follows a symlink below
the store's base folder (see :func:`catalog.core.fs.open_artifact`).

``fix`` repairs the catalog without destroying evidence (see
:mod:`catalog.ops.repair`); modified files move to ``quarantine/``, never deleted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from operator import countOf
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, literal_column, select

from ..core import fs
from ..core.errors import IntegrityError, Param, ValidationError
from ..core.names import (
    FUTURE_SLACK,
    ArtifactName,
    host_name,
    layout_of,
    legacy_name,
    parse_name,
    parse_temp_name,
    partition,
    store_path_problem,
    writer_gone,
)
from ..core.prepared import Prepared
from ..core.schema import ARTIFACTS
from ..core.store import Catalog
from ..core.totals import total_rows
from ..core.vocabulary import ON_DISK, QUARANTINE, READABLE, TYPES
from .drift import CATALOG_FILES, CLASSES, DEFAULT_GRACE, Entry, Orphan, ReconcileReport
from .policy import logged_record
from .repair import Repairer
from .retention import lifecycle_change

__all__ = ["CLASSES", "ReconcileReport", "Reconciler", "expected_work", "reconcile"]

_C = ARTIFACTS.c
#: The walk reads the rows of up to AHEAD_FOLDERS folders in one transaction, until AHEAD_ROWS rows.
AHEAD_FOLDERS, AHEAD_ROWS = 64, 5000
#: In :data:`_LIGHT_ROWS`, the size of a quarantined row (on disk, never quick-checked) and of a row with no file
#: on disk (deleted, missing): no file's size.
_KEPT, _NOT_ON_DISK = -1, -2
#: (name, size) of one folder's rows from the covering index (folder, path, size, status): the database cuts
#: "folder/" off the path (``b_cut``: its length + 1) and gives a healthy (active, archived) row's size, else
#: :data:`_KEPT` or :data:`_NOT_ON_DISK`: two objects a row, no string work per row here. Run on the driver's cursor.
_LIGHT_ROWS = Prepared(select(func.substr(_C.path, bindparam("b_cut")), case(
    *((_C.status == status, _C.size) for status in READABLE),
    *((_C.status == status, literal_column(str(_KEPT))) for status in ON_DISK if status not in READABLE),
    else_=literal_column(str(_NOT_ON_DISK)),
)).where(_C.folder == bindparam("b_folder")))


def _loose_index_scan() -> Any:
    """Every folder the catalog names, in order: the next one found by one seek of ix_artifacts_folder_path each."""
    found = select(func.min(_C.folder).label("folder")).cte("folders", recursive=True)
    following = select(func.min(_C.folder)).where(_C.folder > found.c.folder).scalar_subquery()
    found = found.union_all(select(following).where(found.c.folder.is_not(None)))
    return select(found.c.folder).where(found.c.folder.is_not(None))


#: Every distinct folder of the artifacts table (a loose index scan: a seek a folder, not a step a row).
_FOLDERS = _loose_index_scan()


class Reconciler(Repairer):
    """One reconcile run over a catalog: the walk here, matching and fixing in :class:`Repairer`."""

    def __init__(
        self, catalog: Catalog, *, deep: bool = False, fix: bool = False, grace: float = DEFAULT_GRACE,
        types: tuple[str, ...] = (), progress: Callable[[int, int], None] | None = None, now: float | None = None,
    ) -> None:  # fmt: skip
        self.catalog, self.base = catalog, catalog.base_dir
        self.deep, self.fix, self.grace, self.types = deep, fix, grace, types
        self.progress = progress or (lambda files, size: None)
        self.now = time.time() if now is None else now
        self.report = ReconcileReport()
        self.orphans: list[Orphan] = []
        self.missing: list[Any] = []  # rows
        self.loose: list[tuple[Entry, str]] = []  # not artifacts where they are: foreign, unless a missing row's file
        self.linked: set[str] = set()  # linked_folder findings made
        self._conn: Connection  # the walk's read connection (:meth:`walk`)
        self._next: list[str] = []  # the folders the walk reads next, the next one last
        self._ahead: dict[str, dict[str, int]] = {}  # their rows, read ahead (:meth:`_light_rows`)

    # -- the walk -------------------------------------------------------------

    def _unwalked_folders(self, walked: set[str]) -> list[str]:
        """Folders the catalog expects files in (rows on disk, of the run's types) that the walk did not read, sorted.

        The catalog's folders come from a loose index scan (one index seek a
        folder, not one step a row: :data:`_FOLDERS`); each one not walked is
        then asked whether it holds a row on disk.
        """
        conn = self._conn
        with conn.begin():
            others = [folder for (folder,) in conn.execute(_FOLDERS) if folder not in walked]
            holds = select(_C.id).where(_C.folder == bindparam("b_folder"), _C.status.in_(ON_DISK)).limit(1)
            if self.types:
                holds = holds.where(_C.type.in_(self.types))
            return [folder for folder in others if conn.execute(holds, {"b_folder": folder}).first() is not None]

    def _light_rows(self, folder: str) -> dict[str, int]:
        """name -> size (or :data:`_KEPT`, :data:`_NOT_ON_DISK`) of one folder's rows: all a quick check needs.

        Read in one short transaction on the walk's own connection (:meth:`walk`)
        with the rows of the folders the walk reads next, until :data:`AHEAD_ROWS`
        rows (a day layout's sibling partitions: one transaction for many small
        folders, memory bounded all the same). A row read ahead is a few folders
        older than its listing: the race of a row read just before its listing,
        which the classification already allows for (a young rowless file is in
        flight; a row without its file is re-read before it is called missing).
        """
        found = self._ahead.pop(folder, None)
        if found is not None:
            return found
        conn, rows = self._conn, 0
        with conn.begin():
            for name in (folder, *reversed(self._next[-AHEAD_FOLDERS:])):
                if rows >= AHEAD_ROWS:
                    break
                self._ahead[name] = light = dict(_LIGHT_ROWS.run(conn, {"b_folder": name, "b_cut": len(name) + 2}))
                rows += len(light)
        return self._ahead.pop(folder)

    def _full_rows(self, folder: str) -> dict[str, Any]:
        """path -> row with what classification and repair need (fetched only when a folder needs them)."""
        c = ARTIFACTS.c
        with self.catalog.read() as conn:
            found = conn.execute(select(c.id, c.path, c.type, c.size, c.sha256, c.status, c.pair_id, c.ext).where(c.folder == folder))
            return {row.path: row for row in found}

    def _root_files(self) -> None:
        if not self.types:
            with os.scandir(self.base) as it:
                for entry in it:
                    if entry.name in (*TYPES, QUARANTINE) and entry.is_symlink():
                        self._linked_folder(entry.name)
                    elif not entry.is_dir(follow_symlinks=False) and entry.name not in CATALOG_FILES:
                        self._add("foreign", entry.name, "not an artifact: a file at the top of the store")

    def _linked_folder(self, folder: str) -> None:
        """Report the first folder of ``folder``'s path that is a symlink (once): the store does not look through it."""
        parts = folder.split("/")
        linked = next((p for p in ("/".join(parts[:n]) for n in range(1, len(parts) + 1))
                       if os.path.islink(self.base / p)), folder)  # fmt: skip
        if linked in self.linked:
            return
        self.linked.add(linked)
        try:
            target = os.readlink(self.base / linked)
        except OSError:
            target = "?"
        self._add("linked_folder", linked, f"a symlink to {target}, not a folder: nothing is read or written through "
                  "it (its catalogued files go unchecked); left for a person")  # fmt: skip

    def walk(self) -> None:
        """Every folder under the type folders (each read once), then those only the catalog names."""
        with self.catalog.db.reader() as self._conn:
            self._walk()

    def _walk(self) -> None:
        self._root_files()
        walked = set()
        if self.types:
            pending = [root for root in self.types if (self.base / root).is_dir()]
        else:
            with os.scandir(self.base) as it:
                pending = [e.name for e in it if e.is_dir(follow_symlinks=False)]
        pending.sort(reverse=True)
        self._next = pending
        while pending:
            folder = pending.pop()
            pending.extend(sorted(self._folder(folder), reverse=True))
            walked.add(folder)
        for folder in self._unwalked_folders(walked):  # gone from disk, or outside the folders walked (quarantine/ with --type)
            self._folder(folder)

    def _folder(self, folder: str) -> list[str]:
        """Read one folder once, merging its files with its rows; returns its subfolders (store paths).

        A healthy file in a quick run costs a stat and a dict lookup: no record is
        made of it. Everything else is classified after the folder is read.
        """
        light = self._light_rows(folder)
        self.report.rows += len(light) - countOf(light.values(), _NOT_ON_DISK)
        pop, quick = light.pop, not self.deep
        odd: list[tuple[str, int, float, bool]] = []  # (name, size, mtime, has a row)
        subfolders, files = [], 0
        others: list[tuple[str, str, bool]] = []  # not regular files: (name, what it is, a symlink to a folder)
        complete = True  # nothing is concluded missing from a listing that broke off
        try:
            fd: int | None = fs.open_folder(self.base, folder)  # through no symlink below the base folder
        except fs.UnsafePath:
            self._linked_folder(folder)
            return []  # its rows are neither missing nor checked: the store does not look through a link
        except (FileNotFoundError, NotADirectoryError):
            fd = None  # the folder is gone: its rows' files are gone with it
        listing = os.scandir(fd) if fd is not None else None
        if listing is not None:
            with listing:
                try:
                    for entry in listing:
                        try:
                            if entry.is_file(follow_symlinks=False):
                                info = entry.stat(follow_symlinks=False)
                                files += 1
                                row = pop(entry.name, None)
                                if quick and (row == info.st_size or row == _KEPT):
                                    continue  # the quick check holds: same size, on disk as recorded (or quarantined)
                                odd.append((entry.name, info.st_size, info.st_mtime, row is not None))
                            elif entry.is_dir(follow_symlinks=False):
                                subfolders.append(f"{folder}/{entry.name}")
                                if entry.name in light:
                                    others.append((entry.name, "folder", False))
                            else:
                                kind = fs.file_kind(entry.stat(follow_symlinks=False).st_mode)
                                others.append((entry.name, kind, entry.is_symlink() and entry.is_dir()))
                        except FileNotFoundError:
                            continue  # gone between the listing and its stat (a writer's temp file): it skips itself only
                except OSError:
                    complete = False
        if fd is not None:
            os.close(fd)
        self.report.files += files
        if quick:
            self.progress(files, 0)
        full = self._full_rows(folder) if light or any(has_row for *_, has_row in odd) or others else {}
        for name, kind, to_folder in sorted(others):
            self._not_regular(f"{folder}/{name}", kind, to_folder, full.get(f"{folder}/{name}"))
            pop(name, None)
        for name, size, mtime, has_row in sorted(odd):
            path = f"{folder}/{name}"
            if not quick:
                self.progress(1, size)
            row = full.get(path) if has_row else None
            if has_row and row is None:
                continue  # its row moved on between the two reads (retention, a repair at work): the next run judges it
            self._classify_file(folder, Entry(path, size, mtime), row)
        for name in sorted(light) if complete else ():  # rows whose file was not in the listing
            row = full.get(f"{folder}/{name}")
            if row is None or store_path_problem(row.path) is not None or os.path.lexists(fs.row_file(self.base, row.path)):
                continue  # the row moved on, or the file appeared after the listing: a writer at work, not a loss
                # (a row whose path is no store path is never acted on: `audit verify` reports it)
            if row.status in READABLE and lifecycle_change(self.catalog, row.id, row.path) is None:
                self.missing.append(row)
            elif row.status == "quarantined":
                self._add("missing", row.path, "a quarantined file is gone from quarantine")
        return subfolders

    def _classify_file(self, folder: str, entry: Entry, row: Any) -> None:
        if row is not None:
            self._check_row_file(entry, row)
            return
        name = entry.name
        young = self.now - entry.mtime < self.grace
        temp = parse_temp_name(name)
        if temp is not None:  # a live writer's on this host whatever its age; another host's waits for the grace
            who, gone = f"{temp.host}:{temp.pid}", writer_gone(temp, entry.mtime)
            if temp.host == host_name() and not gone:
                self._add("in_flight", entry.path, f"temp file of a live writer ({who}, running on this host)")
            elif gone:
                self._add("stale_temp", entry.path, f"left by {who}, which is gone")
            elif young:
                self._add("in_flight", entry.path, f"temp file of {who}, a writer on another host, younger than the grace period")
            else:
                self._add("stale_temp", entry.path, f"left by {who}, a writer on another host, older than the grace period")
            return
        top = folder.split("/", 1)[0]
        if top == QUARANTINE:
            self.loose.append((entry, "a file in quarantine without a quarantined row"))
            return
        parsed = parse_name(name)
        if parsed is not None and (layout_of(folder, name) is not None or folder.startswith(f"{parsed.type}/archived/")):
            orphan = Orphan(entry, parsed.type, parsed.prefix, parsed.ext, parsed.created_at, False)
        else:
            legacy = legacy_name(name) if folder in TYPES else None
            if legacy is None or parsed is not None:
                reason = "not an artifact name" if parsed is None else _misplaced(folder, parsed)
                self.loose.append((entry, reason if top in TYPES else f"{reason}, outside the type folders"))
                return
            created, prefix, ext, _ = legacy
            orphan = Orphan(entry, folder, prefix, ext, created, True)
        if orphan.created_at.timestamp() > self.now + FUTURE_SLACK.total_seconds():  # no writer makes one
            self.loose.append((entry, f"an artifact name dated {orphan.created_at:%Y-%m-%d}, in the future: not adopted"))
            return
        if young:
            self._add("in_flight", entry.path, "a complete file younger than the grace period: its writer may be committing")
            return
        self.orphans.append(orphan)

    def _not_regular(self, path: str, kind: str, to_folder: bool, row: Any) -> None:
        """A symlink, FIFO, socket, device (or a folder at a catalogued path) found by the walk."""
        reason = f"not a regular file ({kind})"
        if row is None or row.status == "deleted":
            if to_folder:
                self._linked_folder(path)
            else:
                self._add("foreign", path, reason)
        elif row.status != "quarantined":  # not its bytes; (what was quarantined is kept as evidence, whatever it is)
            self._modified(Entry(path, 0, 0.0), row, reason, movable=kind != "folder")

    def _check_row_file(self, entry: Entry, row: Any) -> None:
        if row.status == "deleted":
            self._add("foreign", entry.path, "a file at the path of a deleted artifact (restored by hand?)")
            return
        if row.status == "quarantined":
            return  # its bytes are known to differ; it is kept as evidence
        if entry.size != row.size:
            self._modified(entry, row, f"size {entry.size} bytes, the catalog recorded {row.size}")
            return
        if self.deep or row.status == "missing":
            try:
                digest, size = fs.sha256_file(self.base, entry.path, row.size)
            except fs.UnsafePath as exc:  # replaced since the listing
                self._modified(entry, row, exc.reason)
                return
            if digest is None:
                self._modified(entry, row, f"size {size} bytes, the catalog recorded {row.size}")
                return
            if digest != row.sha256:
                self._modified(entry, row, f"SHA-256 {digest[:12]}…, the catalog recorded {row.sha256[:12]}…")
                return
        if row.status == "missing":
            finding = self._add("restored", entry.path, "marked missing, but the file is back with its recorded bytes")
            if self.fix:
                self.catalog.change_status(row.id, action="restore", status="active", details={"by": "reconcile"})
                finding.fixed = "row active again"

    def _disagrees(self, artifact_id: int) -> str | None:
        """Why a row must not be acted on (it is not what its events say), or None."""
        try:
            with self.catalog.read() as conn:
                logged_record(conn.execute, artifact_id)
        except IntegrityError as exc:
            return str(exc)
        return None

    def _modified(self, entry: Entry, row: Any, reason: str, movable: bool = True) -> None:
        finding = self._add("modified", entry.path, reason)
        if self.fix and not movable:
            finding.fixed = "not fixed: a folder cannot be moved to quarantine (left for a person)"
        elif self.fix and (refused := self._disagrees(row.id)) is not None:
            finding.fixed = f"not fixed: {refused} (left for a person)"
        elif self.fix:
            target = self._quarantine(entry.path)
            self.catalog.change_status(row.id, action="quarantine", status="quarantined", path=target,
                                       details={"reason": reason, "by": "reconcile"})  # fmt: skip
            finding.fixed = f"moved to {target}"


def _misplaced(folder: str, parsed: ArtifactName) -> str:
    """Why an artifact name found in ``folder`` is not adopted: no layout puts it there (``foreign``, left alone)."""
    if not folder.startswith(f"{parsed.type}/") and folder != parsed.type:
        return "an artifact name, in the wrong folder"
    places = [f"{parsed.type}/{partition(parsed.created_at, layout)}/" for layout in ("day", "month")]
    return (f"an artifact name dated {parsed.created_at:%Y-%m-%d} in {folder}/, which no layout puts it in "
            f"(flat: {parsed.type}/, month: {places[1]}, day: {places[0]}): not adopted")


def reconcile(
    catalog: Catalog, *, deep: bool = False, fix: bool = False, grace: float = DEFAULT_GRACE,
    types: tuple[str, ...] = (), progress: Callable[[int, int], None] | None = None,
) -> ReconcileReport:  # fmt: skip
    """Walk the store once, classify every file and row, and (``fix``) repair the catalog; returns the report.

    ``deep`` compares SHA-256, not only sizes; a rowless file younger than
    ``grace`` seconds (a temp file: unless its writer is known dead) is a
    live writer's (``in_flight``), not drift, and so is a temp file whose
    writer runs on this host, whatever its age (never removed); ``types`` limits the walk to
    those type folders; ``progress(files, bytes)`` is called as files are
    read. Findings are sorted by class, then path. A run with ``fix`` is
    recorded as a ``reconcile_run`` event. Raises ValidationError for a
    negative ``grace``.
    """
    if grace < 0:
        raise ValidationError(Param("grace"), " must be 0 or more", value=grace)
    run = Reconciler(catalog, deep=deep, fix=fix, grace=grace, types=types, progress=progress)
    run.walk()
    run.settle()
    run.lone_pairs(types)
    run.stale_temps()
    run.report.findings.sort(key=lambda f: (CLASSES.index(f.cls), f.path))
    if fix:
        counts = {k: v for k, v in run.report.counts().items() if v}
        with catalog.change() as tx:
            tx.events.append("reconcile_run", details={"deep": deep, "types": list(types), "counts": counts})
    return run.report


def expected_work(catalog: Catalog, types: tuple[str, ...] = ()) -> tuple[int, int]:
    """(rows, bytes) the catalog expects on disk, of ``types`` (default all): the length of a progress bar."""
    c = ARTIFACTS.c
    where = [c.status.in_(ON_DISK), *((c.type.in_(types),) if types else ())]
    with catalog.read() as conn:
        ((count, size),) = total_rows(conn, c.size, lambda sums: select(func.count(), *sums).where(*where))
    return int(count), size
