"""The write protocol: every artifact is written atomically, durably, and catalogued.

1. Validate everything (type, prefix, extension, data); nothing touched yet.
2. Serialise to bytes and hash them; write a temp file in the target folder
   (its name carries host and pid), flush, fsync, make it read-only. A stream
   (``put FILE``) is hashed, checked and copied piece by piece instead.
3. Publish without clobbering: hard-link the temp file to the final name (an
   existing name is a :class:`~catalog.core.errors.CollisionError`), unlink the
   temp file; then fsync each folder that got a new name, once
   (:class:`catalog.core.fs.Publisher`).
4. Only then one short unit of work: the rows and their ``write`` events.
5. If that commit fails, the published files stay (they are complete) and a
   :class:`~catalog.core.errors.CommitError` says so; reconcile adopts them.

A crash before step 3 leaves at most recognisably named temp files; a crash
between 3 and 4 leaves complete files without rows; never a partial file
under a final name, never an overwritten one.

One call of :meth:`Writer.write` is one such round (an explain report's pair
of files, say); :meth:`Writer.batch` makes one round of everything written
inside a ``with`` block (a scanner cycle): every file staged as it is written,
all published when the block ends, each folder fsynced once, all rows and
events committed together.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Self

from ..core import chain, fs, group_commit
from ..core.errors import CatalogError, CollisionError, CommitError, Param, Remedy, StoreError, ValidationError
from ..core.names import ArtifactName, placements_of, validate_ext
from ..core.records import ArtifactRecord, PublishedFile
from ..core.store import Catalog
from .write_methods import Pending, WriteMethods

if TYPE_CHECKING:
    pass


def record(catalog: Catalog, files: Sequence[PublishedFile], *, actor: str | None = None) -> list[ArtifactRecord]:
    """Record published files in one unit of work: a row and an event (``item.action``) each.

    The files are already complete under their final names. Writers on this
    host that record at the same moment share one commit
    (:mod:`catalog.core.group_commit`). If the commit fails the files stay, and
    :class:`CommitError` names them (reconcile adopts them). A file whose row
    already exists with the same SHA-256 (adopted meanwhile) counts as
    recorded. Returns the records in the order given.
    """
    return _record(catalog, files, actor)[0]


def record_unless_recorded(catalog: Catalog, files: Sequence[PublishedFile]) -> list[ArtifactRecord] | None:
    """:func:`record` for reconcile's adoptions: None when nothing was recorded because every file's row already
    existed with the same SHA-256 (its writer recorded it since reconcile found it rowless): no adoption happened.

    Else the new records, in the order given. Raises :class:`CommitError` as :func:`record` does.
    """
    found, made = _record(catalog, files, None)
    return found if made else None


def _record(catalog: Catalog, files: Sequence[PublishedFile], actor: str | None) -> tuple[list[ArtifactRecord], bool]:
    """(records, recorded now): False when each file's row existed already with the same SHA-256."""
    try:
        return group_commit.record(catalog, files, actor or catalog.actor), True
    except group_commit.Unrecorded as exc:
        if exc.taken:
            adopted = _already_recorded(catalog, files)
            if adopted is not None:
                return adopted, False
            raise _commit_error(files, "another row already has this path") from None
        raise _commit_error(files, exc.reason) from None
    except CatalogError as exc:
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
    kept = "the file is complete and kept" if len(paths) == 1 else f"all {len(paths)} files are complete and kept"
    return CommitError(
        f"published {', '.join(paths)} but could not record {'it' if len(paths) == 1 else 'them'} in the catalog "
        f"({reason}); {kept}",
        paths=paths,
    )


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


#: A staged file and the row that will record it.
_Entry = tuple[fs.Staged, PublishedFile]


class Writer(WriteMethods[ArtifactRecord]):
    """Writes artifacts of any type into a store and records each one in its catalog.

    The scanner's typed families (:class:`catalog.cryptorun.writer.AtomicWriter`)
    build on this. ``actor`` is a claimed name recorded beside the OS identity
    (default: the catalog's own claim). :meth:`batch` writes many artifacts
    as one commit.
    """

    def __init__(
        self, base_dir: str | Path | None = None, *, catalog: Catalog | None = None, actor: str | None = None
    ) -> None:
        self.catalog = catalog if catalog is not None else Catalog.open(base_dir)
        self._owns_catalog = catalog is None
        self._claim = chain.validate_claim(actor)
        self.settings = self.catalog.settings
        self._batch: Batch | None = None  # the batch open on this writer, if any

    def close(self) -> None:
        """Close the catalog if this writer opened it."""
        if self._owns_catalog:
            self.catalog.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batch(self) -> Batch:
        """A :class:`Batch` (use it in a ``with`` block): everything written through it is one commit."""
        return Batch(self)

    def write(self, items: Sequence[Pending], *, pair: bool = False) -> list[ArtifactRecord]:
        """Stage every item in order, then publish them all and record them in one unit of work.

        ``pair``: the items are one linked pair (e.g. an explain report's JSON
        and CSV), given a fresh ``pair_id``. Returns the records in order.
        Raises :class:`CollisionError` for a name already on disk or in the
        catalog, or given twice (before any byte is written), :class:`ValidationError` for a
        retention date past year 9999, :class:`StoreError` for I/O (and for a
        store without hard links, or a folder of the store that is a symlink:
        nothing is written through one; and while a :meth:`batch` is open on
        this writer: write through the batch), :class:`CatalogDatabaseError`
        for a catalog this process cannot write or a full disk (before any byte
        is written), and :class:`CommitError` for files published but not
        recorded. Items are published only once all are staged, so a failure
        while staging publishes none of them; if publishing one fails (another
        writer took its name meanwhile, an I/O error), the ones published before
        it are recorded and the error says so.
        """
        if self._batch is not None:
            raise StoreError("a batch is open on this writer: write through it, or end it first")
        self._check(items)
        with fs.Publisher(self.catalog.base_dir, create=True, overlap=len(items) > 1) as publisher:
            records, failure = self._land(publisher, self._stage(publisher, items, pair))
        if failure is not None:
            raise failure
        fs.fault("committed")
        return records

    def _check(self, items: Sequence[Pending], staged: Collection[str] = (), *, catalog: bool = True) -> list[str]:
        """Refuse, before any byte is written, what cannot be written: a name taken or given twice, a bad date.

        ``staged``: the paths a batch holds already; ``catalog``: also ask the
        catalog whether a path is taken and whether it can take a commit (a
        batch asks once, for all its files, at its end: :meth:`_check_catalog`). Returns each item's store path
        under every layout, in order (what the catalog is asked about).
        """
        base, now = str(self.catalog.base_dir), datetime.now(timezone.utc)
        seen = set(staged)
        layout = self.settings.layout
        places: list[str] = []
        for item in items:
            path = item.rel_path(layout)
            if path in seen:
                raise CollisionError(f"{path} is already written in this batch; nothing was written")
            seen.add(path)
            self.settings.retain_until(item.name.type, item.name.created_at, now)  # fails now, not after publishing
            mine = placements_of(item.name)  # a name is taken whichever layout's folder holds it
            for place in mine:
                if os.path.lexists(os.path.join(base, place)):
                    raise CollisionError(f"{place} already exists; nothing was overwritten")
            places += mine
        if catalog:
            self._check_catalog(places, sum(len(item.data) for item in items if isinstance(item.data, bytes)))
        return places

    def _check_catalog(self, places: Sequence[str], incoming: int = 0) -> None:
        """CollisionError if the catalog holds one of ``places`` (each name's store path under every layout: a row of
        any status; deleted artifacts keep theirs);
        CatalogDatabaseError if it could not record them, or ``incoming`` more bytes would fill its disk."""
        taken = self.catalog.paths_taken(places)
        if taken:
            raise CollisionError(f"{next(p for p in places if p in taken)} already exists; nothing was overwritten")
        self.catalog.require_writable(incoming)  # a file never lands without its row

    def _stage(self, publisher: fs.Publisher, items: Sequence[Pending], pair: bool) -> list[_Entry]:
        """Write each item to its temp file (fsynced); a failure removes those of this call and raises StoreError."""
        pair_id = secrets.token_hex(16) if pair else None
        base, layout = self.catalog.base_dir, self.settings.layout
        entries: list[_Entry] = []
        try:
            for item in items:
                path = item.rel_path(layout)
                folder = (base / path).parent  # a partition folder is made on demand, durably (fsync of its parent)
                try:  # a type or partition folder that is a symlink is refused (UnsafePath)
                    if isinstance(item.data, bytes):
                        staged = publisher.stage(folder, item.name.filename, item.data)
                    else:
                        staged = publisher.stage_stream(folder, item.name.filename, item.data, item.check)
                except OSError as exc:
                    raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None
                entries.append((staged, PublishedFile(
                    path=path, type=item.name.type, prefix=item.name.prefix, ext=item.name.ext,
                    created_at=item.name.created_at, size=staged.size, sha256=staged.sha256, pair_id=pair_id,
                    action=item.action, details=item.details,
                )))  # fmt: skip
        except BaseException:
            for staged, _ in entries:
                publisher.discard(staged)
            raise
        return entries

    def _land(
        self, publisher: fs.Publisher, entries: Sequence[_Entry]
    ) -> tuple[list[ArtifactRecord], CatalogError | None]:
        """Link every staged file, fsync each folder once, record them all in one unit of work.

        Returns the records, and the error that stopped publishing part-way (the
        files published before it are recorded), or None. Raises StoreError if a
        folder cannot be fsynced (the files stay, unrecorded: reconcile adopts
        them) and :class:`CommitError` naming every published file.
        """
        published: list[PublishedFile] = []
        failure: CatalogError | None = None
        try:
            publisher.settle()  # every file fsynced before any is linked
        except OSError as exc:
            return [], StoreError(f"cannot write {', '.join(item.path for _, item in entries)}: {exc.strerror or exc}")
        for staged, item in entries:
            try:
                publisher.link(staged)
            except CatalogError as exc:  # CollisionError: another writer took the name since the check
                failure = exc
                break
            except OSError as exc:
                failure = StoreError(f"cannot write {item.path}: {exc.strerror or exc}")
                break
            published.append(item)
        if not published:
            return [], failure
        try:
            publisher.sync()
        except OSError as exc:
            paths = ", ".join(item.path for item in published)
            raise StoreError(f"published {paths} but cannot make the folder durable ({exc.strerror or exc}); "
                             "not recorded, the files are kept", remedy=Remedy.ADOPT) from None  # fmt: skip
        actor = None if self._claim is None else self.catalog.actor_for(self._claim)
        records = record(self.catalog, published, actor=actor)
        if failure is not None:
            failure = type(failure)(f"{failure}; written and recorded before it: {', '.join(r.path for r in records)}")
        return records, failure


@dataclass(eq=False)
class Queued:
    """An artifact written in an open :class:`Batch`: its store ``path`` and ``name`` now, its record once the batch commits."""

    path: str
    name: ArtifactName
    _record: ArtifactRecord | None = field(default=None, init=False, repr=False)

    @property
    def record(self) -> ArtifactRecord:
        """Its catalog record; :class:`StoreError` before its batch has committed (and for good if it did not)."""
        if self._record is None:
            raise StoreError(f"{self.path} has no record: its batch has not committed (records exist once the block ends)")
        return self._record


class Batch(WriteMethods[Queued]):
    """Many artifacts written as one commit: ``with writer.batch() as b:``, then every write method through ``b``.

    Each write call validates and checks its items at once (a name already on
    disk, or already written in this batch, is a :class:`CollisionError`
    then) and writes each file to its temp file, whose fsync runs on a helper
    thread meanwhile; it returns a :class:`Queued` per artifact (an explain
    report: a pair of them). When the block ends without an error, the
    catalog is asked once whether it holds any of the names (a deleted
    artifact keeps its row: :class:`CollisionError`, nothing published),
    every file's fsync is awaited, every file is linked to its final name in
    the order written, each folder is fsynced once, and all rows and events
    are committed in one unit of work: a reader sees all of the batch or none
    of it. :attr:`records` (and each ``Queued.record``) then holds the
    records, in order. A batch with nothing written commits nothing.

    - An error inside the block (raised by a write, or by the caller's own code)
      ends the batch: its temp files are removed, nothing is published or
      recorded, and the error goes on.
    - A commit that fails leaves every file published and complete; the
      :class:`CommitError` names them all, and reconcile adopts them (as after
      a single write whose commit failed). A crash after publishing leaves the
      same: complete files without rows, which reconcile adopts.
    - If another writer takes one of the names between the check and the link,
      the files linked before it are recorded (never leaving a published file
      unrecorded on purpose) and the :class:`CollisionError` names them; the
      rest are not published.
    - Batches do not nest, and while one is open its writer refuses writes of
      its own (:class:`StoreError`): write through the batch. A batch is used once.
    """

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.settings = writer.settings
        self.records: list[ArtifactRecord] = []
        self._state = "new"  # new, open, ended
        self._publisher: fs.Publisher | None = None
        self._entries: list[tuple[fs.Staged, PublishedFile, Queued]] = []
        self._places: list[str] = []  # every staged name's store path under each layout, for the catalog's check

    def __enter__(self) -> Self:
        if self._state != "new":
            raise StoreError("a batch is used once: start another with writer.batch()")
        if self.writer._batch is not None:
            raise StoreError("a batch is already open on this writer: batches do not nest; write through the open one")
        self.writer._batch = self
        self._publisher = fs.Publisher(self.writer.catalog.base_dir, create=True, overlap=True)
        self._state = "open"
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        publisher, self._publisher = self._publisher, None
        self._state = "ended"
        self.writer._batch = None
        assert publisher is not None
        with publisher:  # removes the temp files of a batch that did not end well
            if exc_type is not None or not self._entries:
                return
            self.writer._check_catalog(self._places)  # one query, before any link
            records, failure = self.writer._land(publisher, [(staged, item) for staged, item, _ in self._entries])
        for (_, _, queued), done in zip(self._entries, records):
            queued._record = done
        self.records = records
        if failure is not None:
            raise failure
        fs.fault("committed")

    def write(self, items: Sequence[Pending], *, pair: bool = False) -> list[Queued]:
        """Check and stage ``items`` (``pair``: one linked pair) for this batch; returns a :class:`Queued` each, in order.

        Raises what :meth:`Writer.write` raises before publishing, and
        :class:`StoreError` outside the ``with`` block. Nothing is published
        before the block ends.
        """
        if self._publisher is None:
            raise StoreError("write through a batch inside its with block: with writer.batch() as b: b.write_json(...)")
        self._places += self.writer._check(items, {item.path for _, item, _ in self._entries}, catalog=False)
        entries = self.writer._stage(self._publisher, items, pair)
        queued = [Queued(item.path, pending.name) for (_, item), pending in zip(entries, items)]
        self._entries.extend((staged, item, handle) for (staged, item), handle in zip(entries, queued))
        return queued
