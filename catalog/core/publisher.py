"""Publishing files into folders, step by step: staged (temp file written, fsynced), linked, each folder fsynced once.

The mechanics of :func:`catalog.core.fs.publish`, for one file or many; use them through
:class:`catalog.core.fs.Publisher`, which adds the crash-test hook at each step.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self

from .errors import CollisionError
from .names import temp_name
from .safe_open import _store_rel, open_folder

#: From this size (bytes) on, the SHA-256 is computed on a helper thread while the bytes go to disk
#: (hashlib and os.write both release the GIL): at 10 MiB that hides the hash behind the fsync.
HASH_BESIDE = 256 * 1024
#: At most this many fsyncs in flight at once for one process (:class:`Publisher` with ``overlap``).
SYNCS_IN_FLIGHT = 8
_pools: dict[str, tuple[int, ThreadPoolExecutor]] = {}
#: What link(2) fails with where the file system has no hard links (vfat, exFAT, some FUSE mounts), or the
#: kernel refuses one (``fs.protected_hardlinks``: a file another user owns).
NO_LINK_ERRNOS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})
NO_LINKS = "the file system does not support hard links (vfat, exFAT and some FUSE mounts have none)"


def _pool(kind: str) -> ThreadPoolExecutor:
    """Long-lived helper threads of this process (a forked child makes its own): one for hashing, some for fsyncs."""
    pid, pool = _pools.get(kind, (None, None))
    if pool is None or pid != os.getpid():
        pool = ThreadPoolExecutor(max_workers=SYNCS_IN_FLIGHT if kind == "fsync" else 1, thread_name_prefix=f"catalog-{kind}")
        _pools[kind] = (os.getpid(), pool)
    return pool


@dataclass(frozen=True)
class Staged:
    """A file written in full under its temp name beside ``folder/filename``, fsynced, read-only, not yet linked."""

    folder: Path
    filename: str
    temp: str
    sha256: str
    size: int


class Publisher:
    """Publishes files into folders: each written and fsynced under a temp name, then linked; each folder fsynced once.

    The protocol of :func:`catalog.core.fs.publish` in steps, so that files can share their
    folders' fsyncs (a scanner cycle: :meth:`catalog.ops.write.Writer.batch`):
    :meth:`stage` writes a file to a temp file beside its final name (the name
    carries host and pid), read-only, fsynced; :meth:`link` gives it its final
    name (never clobbering: :class:`CollisionError`); :meth:`sync` fsyncs each
    folder that got a name since the last sync, once: only then are the names
    durable; :meth:`close` removes the temp files never linked.

    With ``overlap``, staged files' fsyncs run on helper threads while the
    caller goes on, and folders' fsyncs side by side: fsyncs in flight together
    can share one journal commit (ext4's jbd2, xfs's log). Every file is still
    fsynced before any is linked (:meth:`settle`). With ``base`` (the store),
    folders are reached from it without following a symlink (:class:`UnsafePath`),
    and with ``create`` made if missing, durably. Raises OSError on I/O failure.
    """

    def __init__(self, base: Path | None = None, *, create: bool = False, overlap: bool = False) -> None:
        self._base = base
        self._create = create and base is not None
        self._overlap = overlap
        self._fds: dict[Path, int] = {}  # folder -> an open descriptor, one per folder
        self._unsynced: dict[Path, None] = {}  # folders with a new name since the last sync, in order
        self._temps: dict[Staged, None] = {}  # staged and not linked: removed by close()
        self._syncing: list[Future[None]] = []  # with overlap: the fsyncs of staged files still in flight

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _step(self, point: str) -> None:
        """Called at each step ("temp_written", "published"): :class:`catalog.core.fs.Publisher` calls its fault hook."""

    def _folder(self, folder: Path) -> int:
        fd = self._fds.get(folder)
        if fd is None:
            if self._base is not None:
                fd = open_folder(self._base, _store_rel(folder, self._base), create=self._create)
            else:
                fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self._fds[folder] = fd
        return fd

    def stage(self, folder: Path, filename: str, data: bytes) -> Staged:
        """Write ``data`` to a temp file for ``folder/filename``; returns it :class:`Staged` with its SHA-256 and size."""
        digest = hashlib.sha256()
        hashing = _pool("sha256").submit(digest.update, data) if len(data) >= HASH_BESIDE else None  # GIL released
        try:
            temp = self._stage(folder, filename, lambda handle: handle.write(data))
        finally:
            if hashing is not None:
                hashing.result()
        if hashing is None:
            digest.update(data)  # with overlap, while the file's fsync runs
        return self._keep(Staged(folder, filename, temp, digest.hexdigest(), len(data)))

    def stage_stream(
        self, folder: Path, filename: str, chunks: Iterable[bytes], check: Callable[[Iterator[bytes]], None] | None = None
    ) -> Staged:
        """:meth:`stage` for the bytes ``chunks`` yield, hashed and written as they come (see :func:`publish_stream`)."""
        digest, size = hashlib.sha256(), 0

        def copy(handle: BinaryIO) -> None:
            def pieces() -> Iterator[bytes]:
                nonlocal size
                for chunk in chunks:
                    digest.update(chunk)
                    handle.write(chunk)
                    size += len(chunk)
                    yield chunk

            stream = pieces()
            if check is not None:
                check(stream)
            for _ in stream:  # what the check did not read
                pass

        temp = self._stage(folder, filename, copy)
        return self._keep(Staged(folder, filename, temp, digest.hexdigest(), size))

    def _keep(self, staged: Staged) -> Staged:
        self._temps[staged] = None
        return staged

    def _stage(self, folder: Path, filename: str, fill: Callable[[BinaryIO], object]) -> str:
        """``fill`` writes the temp file, which is made read-only and fsynced; any failure removes it."""
        dir_fd = self._folder(folder)
        tmp = temp_name(filename, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
                handle.flush()
                os.fchmod(handle.fileno(), 0o444)
                if self._overlap:  # its own descriptor: this one closes with the handle
                    self._syncing.append(_pool("fsync").submit(_fsync_close, os.dup(handle.fileno())))
                    return tmp
                os.fsync(handle.fileno())
            self._step("temp_written")
        except BaseException:
            _remove(tmp, dir_fd)
            raise
        return tmp

    def settle(self) -> None:
        """Wait for the fsyncs of staged files still in flight (with ``overlap``); raises the first one's OSError."""
        syncing, self._syncing = self._syncing, []
        failure: BaseException | None = None
        for future in syncing:
            error = future.exception()
            if error is None:
                self._step("temp_written")
            elif failure is None:
                failure = error
        if failure is not None:
            raise failure

    def link(self, staged: Staged) -> None:
        """Give a staged file its final name (POSIX link(2): never clobbering) and remove its temp name.

        Raises :class:`CollisionError` if the name exists (nothing is
        overwritten) and OSError (the temp file is removed either way). The
        name is durable after :meth:`sync`.
        """
        if self._syncing:
            self.settle()
        dir_fd = self._folder(staged.folder)
        self._temps.pop(staged, None)
        try:
            os.link(staged.temp, staged.filename, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        except FileExistsError:
            raise CollisionError(f"{staged.folder.name}/{staged.filename} already exists; nothing was overwritten") from None
        except OSError as exc:
            if exc.errno in NO_LINK_ERRNOS:
                raise OSError(exc.errno, NO_LINKS, f"{staged.folder.name}/{staged.filename}") from None
            raise
        finally:
            _remove(staged.temp, dir_fd)
        self._unsynced[staged.folder] = None
        self._step("published")

    def discard(self, staged: Staged) -> None:
        """Remove a staged file's temp file now (never its final name); nothing if it was linked or removed."""
        if staged in self._temps:
            del self._temps[staged]
            _remove(staged.temp, self._fds[staged.folder])

    def sync(self) -> None:
        """fsync each folder a name was linked into since the last sync, once (POSIX fsync(2) on the folder)."""
        folders, self._unsynced = [self._fds[folder] for folder in self._unsynced], {}
        if self._overlap and len(folders) > 1:
            for future in [_pool("fsync").submit(os.fsync, fd) for fd in folders]:
                future.result()
        else:
            for fd in folders:
                os.fsync(fd)

    def close(self) -> None:
        """Remove the temp files staged and never linked; close the folders. Safe to call twice."""
        try:
            for future in self._syncing:  # each closes its file
                future.exception()
            self._syncing.clear()
            for staged in list(self._temps):
                _remove(staged.temp, self._fds[staged.folder])
        finally:
            self._temps.clear()
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
