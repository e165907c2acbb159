"""The file half of every change: publish without clobbering, durable links, moves and unlinks, hashing.

Every file operation of the store goes through here, so each one is durable the
same way (the file fsynced, then its folder) and a crash test can stop any of
them at a named point through one hook (:data:`FAULT_HOOK`).

Published files are read-only (0444). A name is never overwritten: publishing
hard-links a fully written temp file to its final name, which fails if the name
exists (POSIX ``link(2)``). The store needs hard links (:func:`check_hard_links`);
files written outside it (checkpoints, bundles, backups) may land on a USB stick
formatted vfat or exFAT, which has none: :func:`place_exclusive` works there too.

Nothing below the store's base folder is reached through a symbolic link: a
store path is opened one component at a time from the base folder with
``O_NOFOLLOW`` (``openat(2)``), so a type folder replaced by a link is refused
(:class:`UnsafePath`) by readers and writers alike. An artifact is read only
if it is a regular file (``fstat(2)`` after the open, which ``O_NONBLOCK``
keeps from hanging on a FIFO), and never further than its recorded size + 1.
Files written outside the store (backups, bundles, checkpoints) get a fresh
name of their own and reach their final name without clobbering, durably.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, BinaryIO

from .errors import CatalogError, CollisionError, StoreError, ValidationError
from .names import temp_name
from .publisher import HASH_BESIDE, NO_LINK_ERRNOS, NO_LINKS, Staged  # noqa: F401 - callers use fs.*
from .publisher import Publisher as _Publisher
from .safe_open import (  # noqa: F401 - the store's safe opening lives there; callers use it as fs.*
    CHUNK,
    HeldFolders,
    UnsafePath,
    _store_rel,
    file_kind,
    open_artifact,
    open_folder,
    read_artifact,
    read_limited,
    row_file,
    sha256_file,
)

#: Test hook for crash and fault injection: called with the name of each step
#: ("temp_written", "published", "committed", "intent", "linked", "unlinked").
#: None in production.
FAULT_HOOK: Callable[[str], None] | None = None



def fault(point: str) -> None:
    """Call the fault hook (tests only) at a named step."""
    if FAULT_HOOK is not None:
        FAULT_HOOK(point)


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a new or removed name) durable: POSIX fsync(2) on the folder itself. Raises OSError."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_folder(folder: Path, base: Path | None = None) -> None:
    """Create ``folder`` (and its parents) if needed, durably. Raises OSError.

    With ``base`` (the store), ``folder`` lies inside it and no folder from
    ``base`` down may be a symlink (:class:`UnsafePath`).
    """
    if base is not None:
        os.close(open_folder(base, _store_rel(folder, base), create=True))
        return
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    fsync_dir(folder.parent)


def publish(folder: Path, filename: str, data: bytes, *, base: Path | None = None) -> str:
    """Write ``data`` as ``folder/filename`` atomically, durably, read-only (0444), never clobbering.

    The bytes go to a temp file beside it, which is fsynced, then hard-linked
    to the final name (POSIX link(2) never replaces an existing name); then
    the folder is fsynced (:class:`Publisher`, one file). With ``base`` (the
    store), ``folder`` is reached from it without following a symlink
    (:class:`UnsafePath`). Returns the SHA-256 (64 hex digits) of ``data``.
    Raises :class:`CollisionError` if the name exists (nothing is overwritten)
    and OSError on I/O failure (no partial file is left under the final name).
    """
    return _publish_one(base, lambda publisher: publisher.stage(folder, filename, data)).sha256


def publish_stream(
    folder: Path, filename: str, chunks: Iterable[bytes], check: Callable[[Iterator[bytes]], None] | None = None,
    *, base: Path | None = None,
) -> tuple[str, int]:  # fmt: skip
    """Publish the bytes ``chunks`` yield, in order, as :func:`publish` does; see :func:`read_chunks` for a file.

    Each piece is hashed and written to the temp file as it comes, so memory
    does not grow with the size. ``check``, if given, is handed the same pieces
    as they are copied (it should read them all) and raises to refuse them: then
    the temp file is removed and nothing is published. Returns the SHA-256 (64 hex
    digits) and the size in bytes. Raises what ``check`` raises, CollisionError and OSError.
    """
    staged = _publish_one(base, lambda publisher: publisher.stage_stream(folder, filename, chunks, check))
    return staged.sha256, staged.size


def _publish_one(base: Path | None, stage: Callable[[Publisher], Staged]) -> Staged:
    with Publisher(base) as publisher:
        staged = stage(publisher)
        publisher.link(staged)
        publisher.sync()
    return staged


def read_chunks(source: IO[bytes]) -> Iterator[bytes]:
    """The bytes of a binary file or stream, read to its end in pieces of at most :data:`CHUNK` bytes."""
    return iter(partial(source.read, CHUNK), b"")


class Publisher(_Publisher):
    """:class:`catalog.core.publisher.Publisher` with the crash-test hook (:func:`fault`) at each of its steps."""

    def _step(self, point: str) -> None:
        fault(point)


def create_exclusive(folder: Path, filename: str, data: bytes, mode: int = 0o444) -> str:
    """:func:`publish` for a file outside the store: also where the file system has no hard links (vfat, exFAT).

    Complete or absent under its final name, of ``mode`` (default read-only, 0444), durable, never
    clobbering (see :func:`place_exclusive`). Returns the SHA-256 (64 hex digits)
    of ``data``. Raises :class:`CollisionError` if the name exists, OSError on I/O failure.
    """
    tmp = folder / temp_name(filename, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
        fault("temp_written")
        try:
            place_exclusive(tmp, folder / filename)
        except FileExistsError:
            raise CollisionError(f"{folder / filename} already exists; nothing was overwritten") from None
        fault("published")
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return hashlib.sha256(data).hexdigest()




def hard_link(source: Path, target: Path) -> None:
    """POSIX link(2): ``target`` becomes a second name of ``source``; an existing ``target`` raises FileExistsError.

    Where the link is refused (EPERM…), a fresh file in the target's folder is
    linked to learn why, and the OSError (errno kept) says it in words when it
    can: the file system has no hard links (vfat, exFAT, some FUSE mounts), or
    the kernel does not let this user link a file another user owns (Linux
    ``fs.protected_hardlinks``). Otherwise (an immutable file…) it is link(2)'s own.
    """
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in NO_LINK_ERRNOS:
            raise
        try:
            check_hard_links(target.parent)
        except OSError as probe:
            if probe.strerror == NO_LINKS:
                raise OSError(exc.errno, NO_LINKS, str(target)) from None
            raise exc from None
        try:  # root is exempt from protected_hardlinks
            foreign = os.geteuid() != 0 and os.lstat(source).st_uid != os.geteuid()
        except OSError:
            foreign = False
        if foreign and exc.errno == errno.EPERM:
            reason = "the kernel does not let this user hard-link a file another user owns (fs.protected_hardlinks)"
            raise OSError(exc.errno, reason, str(source)) from None
        raise


def check_hard_links(folder: Path) -> None:
    """Raise OSError (its message says why) unless a new file in ``folder`` can be hard-linked.

    The store publishes and moves files by hard-linking them, so a store folder
    must allow it. The probe files are named like temp files (reconcile knows them) and removed.
    """
    probe, second = (folder / temp_name(f"hard-link-probe{n}", os.getpid()) for n in (1, 2))
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    try:
        try:
            os.link(probe, second)
        except OSError as exc:
            if exc.errno in NO_LINK_ERRNOS:
                raise OSError(exc.errno, NO_LINKS, str(folder)) from None
            raise
        os.unlink(second)
    finally:
        os.unlink(probe)


def place_exclusive(source: Path, target: Path) -> None:
    """Move the complete, fsynced file ``source`` to the new name ``target``, never clobbering; fsync the folder.

    For files written outside the store (checkpoints, bundles, backups), which
    may go to a vfat or exFAT stick: a hard link where the file system has them
    (``target`` appears complete or not at all), else an exclusive create that
    reserves the name (``O_CREAT | O_EXCL | O_NOFOLLOW``) and a rename over it,
    so a crash leaves at worst an empty file under ``target``, never a partial one.
    Both in the same folder. Raises FileExistsError if ``target`` exists (nothing
    replaced) and OSError on I/O failure.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in NO_LINK_ERRNOS:
            raise
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        os.replace(source, target)
    else:
        os.unlink(source)
    fsync_dir(target.parent)


def link_durably(source: Path, target: Path, base: Path | None = None) -> None:
    """Hard-link ``source`` to ``target`` and fsync the target's folder (made if needed). Raises OSError.

    POSIX link(2) never replaces a name: an existing ``target`` raises
    FileExistsError. A ``source`` that is a symlink is linked as the link
    itself, never its target. With ``base`` (the store), the target's folder
    is made and reached without following a symlink (:class:`UnsafePath`).
    """
    ensure_folder(target.parent, base)
    hard_link(source, target)
    fault("linked")
    fsync_dir(target.parent)


def unlink_durably(path: Path) -> bool:
    """Remove ``path`` and fsync its folder; returns True, or False if it was already gone. Raises OSError."""
    try:
        os.unlink(path)
        fsync_dir(path.parent)
        gone = True
    except FileNotFoundError:
        gone = False
    fault("unlinked")
    return gone


def prune_folders(base: Path, rel: str, keep: Callable[[str], bool]) -> list[str]:
    """Remove the store folder ``base/rel`` if it is empty, then its parents while they are empty, durably (each
    parent fsynced), stopping at the first folder ``keep`` (given its store path) says to keep. Returns the store
    paths removed. rmdir(2) never removes a folder that holds anything (a file, a temp file, a folder), so
    nothing but empty folders ever goes; a folder reached through a symlink is never removed. Raises OSError
    on I/O failure other than "not empty" or "gone".
    """
    removed: list[str] = []
    while rel and not keep(rel):
        parent, _, name = rel.rpartition("/")
        try:
            fd = open_folder(base, parent)
        except (FileNotFoundError, NotADirectoryError):
            break
        try:
            os.rmdir(name, dir_fd=fd)
            os.fsync(fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT, errno.ENOTDIR):
                break
            raise
        finally:
            os.close(fd)
        removed.append(rel)
        rel = parent
    return removed


def move_durably(source: Path, target: Path, base: Path | None = None) -> None:
    """Move a file by link then unlink, each durable: a crash leaves it under one name or both, never none.

    ``base`` as for :func:`link_durably`.
    """
    link_durably(source, target, base)
    unlink_durably(source)


@contextmanager
def new_file_beside(target: Path, *, replace: bool = False) -> Iterator[Path]:
    """A fresh empty file to fill, that becomes ``target`` (outside the store) when the block ends without error.

    The file lies in a private folder made beside ``target`` (mode 0700, an
    unpredictable name: ``mkdtemp``), so nothing planted beside the target,
    such as a symlink at a guessable temp name, is ever written through. Its
    mode is 0666 less the umask, as for any new file. On success it is
    fsynced, hard-linked to ``target`` (never clobbering; with ``replace``,
    renamed over it), and ``target``'s folder is fsynced, so ``target`` is
    durable before the caller records an event naming it. The private folder
    is always removed. Raises :class:`CollisionError` if ``target`` appeared
    meanwhile (nothing is overwritten), :class:`StoreError` naming ``target``
    if its folder cannot be written, and OSError on other I/O failure.
    """
    try:
        private = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:  # say what the user named, not the private folder
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from None
    path = private / target.name
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666))
        yield path
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(path, target)
            fsync_dir(target.parent)
        else:
            try:
                place_exclusive(path, target)  # fsyncs the folder; also on a stick without hard links
            except FileExistsError:
                raise CollisionError(f"{target} already exists; nothing was overwritten") from None
    finally:
        for leftover in os.listdir(private):
            os.unlink(private / leftover)
        os.rmdir(private)


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (symlinks resolved) is ``folder`` or lies under it."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def outside_store(base_dir: Path, path: Path, what: str) -> Path:
    """``path`` made absolute; :class:`ValidationError` if it lies inside the store ``base_dir``."""
    path = Path(os.path.abspath(path))
    if is_inside(path, base_dir):
        raise ValidationError(f"{what} {path} is inside the store; keep it outside, where the store cannot touch it")
    return path


def read_file(path: object, what: str, error: type[CatalogError]) -> bytes:
    """A file's bytes, or ``error`` with one line saying why not (``what`` names the file's role)."""
    with _reading(path, what, error):
        return Path(path).read_bytes()  # type: ignore[arg-type]


def read_small(path: Path, what: str, limit: int, *, links: bool = True) -> tuple[bytes, os.stat_result]:
    """A small regular file outside the store (a key, a checkpoint): its bytes and its ``fstat``.

    Opened without blocking (a FIFO cannot hang the reader) and, with
    ``links=False``, without following a symbolic link; at most ``limit``
    bytes are read. Raises :class:`ValidationError` naming ``what`` and why:
    missing, a symbolic link, not a regular file, larger than ``limit``, unreadable.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if links else os.O_NOFOLLOW)
    with _reading(path, what, ValidationError):
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
                raise ValidationError(f"{what} {path} is a symbolic link; give the file itself") from None
            raise
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
            if not stat.S_ISREG(info.st_mode):
                raise ValidationError(f"{what} {path} is not a regular file")
            data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValidationError(f"{what} {path} is larger than {limit} bytes: not a {what}")
    return data, info


def open_file(path: object, what: str, error: type[CatalogError]) -> BinaryIO:
    """A file opened for reading its bytes as a stream, or ``error`` as :func:`read_file` says it."""
    with _reading(path, what, error):
        return open(path, "rb")  # type: ignore[call-overload]


@contextmanager
def _reading(path: object, what: str, error: type[CatalogError]) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a folder, not a file") from None
    except PermissionError:
        raise error(f"{what} {path} cannot be read: permission denied") from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
