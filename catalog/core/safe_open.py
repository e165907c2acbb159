"""Opening what lies below the store's base folder without following a symbolic link.

A store path is opened one component at a time from the base folder with
``O_NOFOLLOW`` (``openat(2)``), so a folder replaced by a link is refused
(:class:`UnsafePath`). An artifact is read only if it is a regular file
(``fstat(2)`` after the open, which ``O_NONBLOCK`` keeps from hanging on a
FIFO), and never further than its recorded size + 1.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .names import store_path_problem

#: Bytes read at a time when hashing or copying a file.
CHUNK = 1024 * 1024


class UnsafePath(OSError):
    """A store path the store will not read or write: not a regular file, or reached through a symlink.

    ``reason`` (also ``strerror``) says which, in words such as
    ``not a regular file (symlink)`` or ``explain/ is a symlink, not a folder``;
    ``filename`` is the path.
    """

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(errno.ELOOP, reason, str(path))

    @property
    def reason(self) -> str:
        """Why the path is refused, in words."""
        return str(self.strerror)


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words (from ``st_mode``)."""
    kinds = ((stat.S_ISLNK, "symlink"), (stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "unknown kind")


def _parts(rel: str | PurePosixPath) -> tuple[str, ...]:
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(p in (".", "..") for p in parts):
        raise UnsafePath(rel, "not a path inside the store")
    return parts


def _refuse_link(base: Path, parts: Sequence[str], exc: OSError, dir_fd: int) -> None:
    """Raise :class:`UnsafePath` if the last of ``parts`` (seen from ``dir_fd``) is a symlink or not a regular file."""
    try:
        info = os.lstat(parts[-1], dir_fd=dir_fd)
    except OSError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(base / Path(*parts), f"{'/'.join(parts)}/ is a symlink, not a folder") from exc


_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


#: Folders (st_dev, st_ino) this process has made durable in their parents: each fsyncs its parent once per process.
_DURABLE: set[tuple[int, int]] = set()


def _make_durable(parent: int, child: int) -> None:
    """fsync ``parent`` unless this process already did for the folder ``child`` (both descriptors, open)."""
    info = os.fstat(child)
    if (info.st_dev, info.st_ino) not in _DURABLE:
        os.fsync(parent)
        _DURABLE.add((info.st_dev, info.st_ino))


def open_folder(base: Path, rel: str | PurePosixPath, *, create: bool = False) -> int:
    """A file descriptor of the store folder ``base/rel``, reached without following any symlink below ``base``.

    ``rel`` is a relative POSIX path ("" or "." for ``base`` itself). With
    ``create``, missing folders are made (mode 0777 less the umask) and each
    folder on the way is made durable in its parent (fsync(2) of the parent)
    the first time this process opens it, whoever made it: a folder another
    writer has just made is durable only once its parent is fsynced, which that
    writer may not have reached yet (a crash then would lose it and the files
    written into it). The caller closes the descriptor. Raises
    :class:`UnsafePath` if a component is a symlink (or ``rel`` leaves the
    store), FileNotFoundError / NotADirectoryError if it is missing or a file.
    """
    parts = () if str(rel) in ("", ".") else _parts(rel)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for depth, part in enumerate(parts, 1):
            try:
                try:
                    child = os.open(part, _FOLDER_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:  # made only when missing: a write into an existing folder makes no mkdir call
                        os.mkdir(part, dir_fd=fd)
                    except FileExistsError:
                        pass  # another writer made it just now and may not have made it durable yet: so do we
                    child = os.open(part, _FOLDER_FLAGS, dir_fd=fd)
                if create:
                    _make_durable(fd, child)
            except OSError as exc:
                _refuse_link(base, parts[:depth], exc, fd)
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def row_file(base: Path, rel: str) -> Path:
    """``base/rel`` for the path ``rel`` read from an artifact row: the ONE door from a row to a file operation.

    ``rel`` comes from the database, which an insider may edit, so it is
    checked first (:func:`catalog.core.names.store_path_problem`: relative, no
    ``..``, under a type folder or quarantine/, an artifact name): every
    unlink, link, move, read or archive of a catalogued file starts here.
    Raises :class:`UnsafePath` (``reason`` says why) for any other path;
    nothing is touched then.
    """
    _refuse_row_path(base, rel)
    return base / rel


def _refuse_row_path(base: Path, rel: str) -> None:
    """Raise :class:`UnsafePath` unless ``rel`` is a path an artifact row may hold (:func:`row_file`'s check)."""
    problem = store_path_problem(rel)
    if problem is not None:
        raise UnsafePath(base / str(rel)[:200], f"refused: the catalog's path {str(rel)[:80]!r} is {problem}")


def _store_rel(folder: Path, base: Path) -> str:
    return os.path.relpath(os.path.abspath(folder), os.path.abspath(base))



_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _open_in(dir_fd: int, name: str, base: Path, rel: str | PurePosixPath) -> tuple[int, int]:
    """(descriptor, size in bytes) of the regular file ``name`` in the held folder ``dir_fd`` (``base/rel``, for errors).

    Opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked by one ``fstat``, as
    :func:`open_artifact` says; the caller closes the descriptor.
    """
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        try:
            info = os.lstat(name, dir_fd=dir_fd)
        except OSError:
            raise exc from None
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(base / rel, f"not a regular file ({file_kind(info.st_mode)})") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnsafePath(base / rel, f"not a regular file ({file_kind(info.st_mode)})")
    return fd, info.st_size


def _open_fd(base: Path, rel: str | PurePosixPath) -> tuple[int, int]:
    """(descriptor, size in bytes) of the store file ``base/rel``, opened as :func:`open_artifact` says."""
    *folders, name = _parts(rel)
    dir_fd = open_folder(base, "/".join(folders))
    try:
        return _open_in(dir_fd, name, base, rel)
    finally:
        os.close(dir_fd)


def open_artifact(base: Path, rel: str | PurePosixPath) -> BinaryIO:
    """Open the store file ``base/rel`` for reading: the ONE way an artifact's bytes are read.

    No symlink below ``base`` is followed (each folder and the file itself are
    opened with ``O_NOFOLLOW``), the open cannot hang on a FIFO
    (``O_NONBLOCK``), and what was opened must be a regular file (``fstat``).
    Returns a binary file the caller closes. Raises :class:`UnsafePath`
    (``not a regular file (symlink)``, ``(FIFO)``, ``(folder)``… or a
    symlinked folder), FileNotFoundError / NotADirectoryError if it is gone,
    and OSError on I/O failure.
    """
    return os.fdopen(_open_fd(base, rel)[0], "rb")


def read_limited(handle: BinaryIO, size: int | None) -> Iterator[bytes]:
    """The chunks of ``handle`` (at most :data:`CHUNK` bytes each), no more than ``size`` + 1 bytes in all (None: all).

    One byte past the expected size is enough to prove a file longer than
    recorded, so a file that grows without end (or a huge one) is never read whole.
    """
    left = None if size is None else size + 1
    while left is None or left > 0:
        chunk = handle.read(CHUNK if left is None else min(CHUNK, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


def sha256_file(base: Path, rel: str | PurePosixPath, size: int | None = None) -> tuple[str | None, int]:
    """SHA-256 (64 hex digits) and size in bytes of the store file ``base/rel``, opened as :func:`open_artifact` says.

    With ``size`` (the recorded size), a file of another size is not hashed:
    the SHA-256 is None and the size is the one on disk (or, for a file
    still growing, the bytes read: at most ``size`` + 1). Raises what
    :func:`open_artifact` raises.
    """
    return _digest(*_open_fd(base, rel), size)


def _digest(fd: int, on_disk: int, size: int | None) -> tuple[str | None, int]:
    """:func:`sha256_file` of the open descriptor ``fd`` (``on_disk``: its size by ``fstat``), which it closes."""
    try:
        if size is not None and on_disk != size:
            return None, on_disk
        digest, read = hashlib.sha256(), 0
        limit = None if size is None else size + 1  # one byte past the recorded size proves a longer file
        view = _buffer()  # read straight from the descriptor into one reused buffer
        while limit is None or read < limit:
            got = os.readv(fd, [view if limit is None or limit - read >= CHUNK else view[: limit - read]])
            if not got:
                break
            digest.update(view[:got])
            read += got
        if size is not None and read != size:
            return None, read
        return digest.hexdigest(), read
    finally:
        os.close(fd)


class HeldFolders:
    """Store folders held open for a batch of row reads: each folder is opened once, each file relative to it.

    A folder is reached as :func:`open_folder` reaches it (``O_NOFOLLOW`` from
    the base folder down) the first time a row needs it, and its descriptor is
    kept until :meth:`close` (or the end of the ``with`` block), so each file
    costs one ``openat(2)`` and one ``fstat(2)``; no symlink is followed
    anywhere on the path. At most :attr:`LIMIT` folders are held (past that a
    folder is opened and closed per file, as before). Safe to share between
    threads; close it only when no thread reads through it.
    """

    #: Most folders held at once: a batch never needs more descriptors than this.
    LIMIT = 64

    def __init__(self, base: Path) -> None:
        self.base = base
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> HeldFolders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every held folder (the next read opens its folder afresh)."""
        with self._lock:
            held, self._held = self._held, {}
        for fd in held.values():
            os.close(fd)

    def sha256_row(self, rel: str, size: int | None) -> tuple[str | None, int]:
        """:func:`sha256_file` of the path ``rel`` read from an artifact row, checked first as :func:`row_file` checks it.

        Raises what :func:`row_file` and :func:`open_artifact` raise.
        """
        _refuse_row_path(self.base, rel)
        folder, _, name = rel.rpartition("/")  # checked: relative, no empty, "." or ".." part, in a folder
        with self._lock:
            dir_fd = self._held.get(folder)
        held = dir_fd is not None
        if dir_fd is None:
            dir_fd = open_folder(self.base, folder)
            with self._lock:
                if folder not in self._held and len(self._held) < self.LIMIT:
                    self._held[folder] = dir_fd
                    held = True
        try:
            found = _open_in(dir_fd, name, self.base, rel)
        finally:
            if not held:
                os.close(dir_fd)
        return _digest(*found, size)


_BUFFERS = threading.local()


def _buffer() -> memoryview:
    """This thread's :data:`CHUNK`-byte read buffer: a file is hashed without a new MiB (and its page faults) per read."""
    view = getattr(_BUFFERS, "view", None)
    if view is None:
        view = _BUFFERS.view = memoryview(bytearray(CHUNK))
    return view


def read_artifact(base: Path, rel: str | PurePosixPath, size: int | None = None) -> bytes:
    """The bytes of the store file ``base/rel`` (at most ``size`` + 1 of them), opened by :func:`open_artifact`."""
    with open_artifact(base, rel) as handle:
        return b"".join(read_limited(handle, size))
