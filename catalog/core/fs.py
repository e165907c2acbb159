"""The file half of every change: publish without clobbering, durable links, moves and unlinks, hashing.

Every file operation of the store goes through here, so each one is durable the
same way (the file fsynced, then its folder) and a crash test can stop any of
them at a named point through one hook (:data:`FAULT_HOOK`).

Published files are read-only (0444). A name is never overwritten: publishing
hard-links a fully written temp file to its final name, which fails if the name
exists (POSIX ``link(2)``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, BinaryIO

from .errors import CatalogError, CollisionError, ValidationError
from .names import temp_name

#: Test hook for crash and fault injection: called with the name of each step
#: ("temp_written", "published", "committed", "intent", "linked", "unlinked").
#: None in production.
FAULT_HOOK: Callable[[str], None] | None = None

#: Read size when hashing or copying a file (bytes).
CHUNK = 1024 * 1024

#: From this size (bytes) on, the SHA-256 is computed on a helper thread while the bytes go to disk
#: (hashlib and os.write both release the GIL): at 10 MiB that hides the hash behind the fsync.
HASH_BESIDE = 256 * 1024
_hasher: tuple[int, ThreadPoolExecutor] | None = None


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


def ensure_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) if needed, durably. Raises OSError."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    fsync_dir(folder.parent)


def _hash_pool() -> ThreadPoolExecutor:
    """One long-lived hashing thread per process (a forked child makes its own)."""
    global _hasher
    if _hasher is None or _hasher[0] != os.getpid():
        _hasher = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-sha256"))
    return _hasher[1]


def publish(folder: Path, filename: str, data: bytes) -> str:
    """Write ``data`` as ``folder/filename`` atomically, durably, read-only (0444), never clobbering.

    The bytes go to a temp file beside it, which is fsynced, then hard-linked
    to the final name (POSIX link(2) never replaces an existing name); then
    the folder is fsynced. Returns the SHA-256 (64 hex digits) of ``data``. Raises
    :class:`CollisionError` if the name exists (nothing is overwritten) and
    OSError on I/O failure (no partial file is left under the final name).
    """
    if len(data) < HASH_BESIDE:
        _publish(folder, filename, lambda handle: handle.write(data))
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    hashing = _hash_pool().submit(digest.update, data)
    try:
        _publish(folder, filename, lambda handle: handle.write(data))
    finally:
        hashing.result()
    return digest.hexdigest()


def publish_stream(
    folder: Path, filename: str, chunks: Iterable[bytes], check: Callable[[Iterator[bytes]], None] | None = None
) -> tuple[str, int]:
    """Publish the bytes ``chunks`` yield, in order, as :func:`publish` does; see :func:`read_chunks` for a file.

    Each piece is hashed and written to the temp file as it comes, so memory
    does not grow with the size. ``check``, if given, is handed the same pieces
    as they are copied (it should read them all) and raises to refuse them: then
    the temp file is removed and nothing is published. Returns the SHA-256 (64 hex
    digits) and the size in bytes. Raises what ``check`` raises, CollisionError and OSError.
    """
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

    _publish(folder, filename, copy)
    return digest.hexdigest(), size


def read_chunks(source: IO[bytes]) -> Iterator[bytes]:
    """The bytes of a binary file or stream, read to its end in pieces of at most :data:`CHUNK` bytes."""
    return iter(partial(source.read, CHUNK), b"")


def _publish(folder: Path, filename: str, fill: Callable[[BinaryIO], object]) -> None:
    """The protocol: ``fill`` writes the temp file, which is fsynced, made read-only, linked, removed; folder fsynced."""
    final = folder / filename
    tmp = folder / temp_name(filename, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), 0o444)
        fault("temp_written")
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
    fault("published")


def link_durably(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` and fsync the target's folder (made if needed). Raises OSError.

    POSIX link(2) never replaces a name: an existing ``target`` raises FileExistsError.
    """
    ensure_folder(target.parent)
    os.link(source, target)
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


def move_durably(source: Path, target: Path) -> None:
    """Move a file by link then unlink, each durable: a crash leaves it under one name or both, never none."""
    link_durably(source, target)
    unlink_durably(source)


def sha256_file(path: Path) -> tuple[str, int]:
    """SHA-256 (64 hex digits) and size in bytes of a file, read into one reused buffer. Raises OSError."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return digest.hexdigest(), handle.tell()


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
