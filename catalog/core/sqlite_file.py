"""The embedded SQLite catalog's file, and what its place on disk must give it.

SQLite's WAL needs one host's file locks and shared memory, so the catalog must
sit on a local file system (:func:`require_local_filesystem`). Reads work for a
user who may only read the catalog, and on read-only media (:func:`reader_uri`).
The files beside the catalog (the database itself, its lock files; SQLite gives
its -wal and -shm the database's mode) are created with the umask, so a store
shared by a group stays writable by the group (:func:`create_database_file`). A
writer checks that it can commit before it publishes a file
(:func:`check_writable`), so no file lands without its row; a full disk is said
in words (:func:`no_space`).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path

from .errors import CatalogDatabaseError, Param, StoreError

#: File systems local to one host, where SQLite gets the file locks and shared memory its WAL needs (Linux
#: mountinfo type names). Any other type is refused unless ``sqlite.allow_filesystems`` names it: network file
#: systems and the shared folders of VMs and containers (vboxsf, drvfs, fuse.vmhgfs-fuse, virtiofs, 9p…) do not
#: give SQLite those (https://www.sqlite.org/wal.html: "WAL does not work over a network filesystem").
LOCAL_FILESYSTEMS = frozenset(
    {
        "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "bcachefs", "f2fs", "jfs", "reiserfs", "nilfs2",
        "tmpfs", "ramfs", "overlay", "ecryptfs", "apfs", "hfsplus",
        "vfat", "msdos", "exfat", "ntfs3",  # local, but without hard links: init says so
        "squashfs", "erofs", "iso9660", "udf",  # read-only media: the read-only verbs work there
    }
)  # fmt: skip
#: Free bytes (beyond the artifact itself) a write wants on the catalog's file system before it publishes a
#: file: room for SQLite's -wal frames and a new 32 KiB block of its -shm.
HEADROOM = 1024 * 1024
#: Mode of the files made beside the catalog: the umask decides (0664 under umask 002, 0644 under 022).
SHARED_MODE = 0o666
#: SQLite's primary result codes SQLITE_IOERR (10: "disk I/O error", e.g. its -shm cannot grow) and SQLITE_FULL (13).
DISK_ERRORS = (10, 13)


def _unescape_mount(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def filesystem_type(path: Path, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The type of the file system holding ``path`` (``ext4``, ``nfs4``…, from Linux's mountinfo), else None."""
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:
        return None
    target = os.path.realpath(path)
    best, best_type = "", None
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or not right.split():
            continue
        mount_point = _unescape_mount(fields[4])
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, right.split()[0]
    return best_type


def require_local_filesystem(
    path: Path, allowed: frozenset[str] = frozenset(), mountinfo: str = "/proc/self/mountinfo"
) -> None:
    """Raise StoreError unless ``path`` is on a local file system (:data:`LOCAL_FILESYSTEMS`, or one in ``allowed``).

    A type that cannot be found out (no Linux mountinfo) is accepted.
    """
    fstype = filesystem_type(path, mountinfo)
    if fstype is None or fstype in LOCAL_FILESYSTEMS or fstype in allowed:
        return
    raise StoreError(
        f"the SQLite catalog {path} would be on a {fstype} file system, not one known to be local to this host: "
        "SQLite's WAL needs one host's file locks and shared memory, which network file systems and the shared "
        "folders of VMs and containers do not give. Use PostgreSQL for a shared store: ", Param("catalog_url"),
        f" postgresql+psycopg://…; or, if {fstype} is local to this host, allow it with the setting "
        "sqlite.allow_filesystems (env CRYPTORUN_SQLITE_ALLOW_FILESYSTEMS)", value=fstype,
    )  # fmt: skip


def reader_uri(path: Path) -> str:
    """The SQLite URI a read-only scope opens the catalog ``path`` with (it never creates the file).

    ``mode=rw`` when this user may write the database and its folder (``PRAGMA
    query_only`` keeps the scope read-only, and as the last connection it may
    checkpoint and remove the -wal and -shm). Otherwise ``mode=ro``: SQLite
    reads a WAL database it may not write if its -wal and -shm files exist and
    are readable, or if it may create them in the folder
    (https://www.sqlite.org/wal.html, "Read-Only Databases"). When neither
    holds (a folder this user may not write, read-only media) and no -wal
    holds frames, the database file alone holds every commit: it is opened
    ``immutable=1`` (no locks, no -shm). Such a reader assumes no writer is
    active; :class:`catalog.core.db.Database` replaces its connection once a -wal appears.
    """
    uri = Path(os.path.abspath(path)).as_uri()  # percent-encoded: a ? or # in a folder name stays a name
    if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        return f"{uri}?mode=rw"
    wal, shm = _beside(path, "wal"), _beside(path, "shm")
    if os.access(path.parent, os.W_OK) or (wal.exists() and shm.exists()) or _size(wal):
        return f"{uri}?mode=ro"  # a -wal with frames but no -shm: SQLite refuses, and why_not_open says why
    return f"{uri}?mode=ro&immutable=1"


def _beside(path: Path, end: str) -> Path:
    return path.with_name(f"{path.name}-{end}")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def create_database_file(path: Path) -> None:
    """Create the empty catalog file (a valid empty SQLite database) with :data:`SHARED_MODE`, if it is not there.

    Made here rather than by SQLite (0644 whatever the umask): its mode and
    group then follow the umask and the folder like the store's folders do.
    Raises OSError.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, SHARED_MODE))
    except FileExistsError:
        pass


def open_lock_file(path: Path) -> int:
    """A descriptor to ``flock`` the lock file ``path`` with, creating it (:data:`SHARED_MODE`) if it is missing.

    Read-only if this user may not write it: flock(2) needs no write access,
    so every user of a shared store queues on the same lock. Raises OSError.
    """
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, SHARED_MODE)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def wait_flock(opener: Callable[[], int], seconds: float, mode: int = fcntl.LOCK_EX) -> int | None:
    """A new descriptor from ``opener`` holding a ``flock`` (``mode``) within ``seconds``; None if time ran out.

    A blocking flock(2) cannot time out, so it runs on a helper thread with its
    own descriptor; if the time passes first, that thread releases the lock
    whenever it gets it and closes the descriptor.
    """
    fd = opener()
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        pass
    got, guard, state = threading.Event(), threading.Lock(), {"abandoned": False}

    def wait() -> None:
        fcntl.flock(fd, mode)
        with guard:
            if not state["abandoned"]:
                got.set()
                return
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    threading.Thread(target=wait, name="catalog-lock-wait", daemon=True).start()
    if got.wait(seconds):
        return fd
    with guard:
        if got.is_set():
            return fd
        state["abandoned"] = True
    return None


def _statvfs(folder: Path) -> os.statvfs_result | None:
    try:
        return os.statvfs(folder)
    except OSError:
        return None


def free_bytes(folder: Path) -> int | None:
    """Bytes this process may still write on the file system of ``folder`` (root may use the reserve), else None."""
    stats = _statvfs(folder)
    return None if stats is None else _free(stats)


def _free(stats: os.statvfs_result) -> int:
    return (stats.f_bfree if os.geteuid() == 0 else stats.f_bavail) * stats.f_frsize


def no_space(path: Path, incoming: int = 0, stats: os.statvfs_result | None = None) -> CatalogDatabaseError | None:
    """The error for a catalog ``path`` whose file system has less than :data:`HEADROOM` + ``incoming`` bytes free
    (``stats``: its folder's ``os.statvfs``, if the caller has it already)."""
    free = free_bytes(path.parent) if stats is None else _free(stats)
    if free is None or free >= HEADROOM + incoming:
        return None
    return CatalogDatabaseError(
        f"catalog {path}: no space left on the device ({free} bytes free in {path.parent}); free some space and try again"
    )


def why_not_open(path: Path) -> str:
    """Why SQLite said "unable to open database file" for the catalog ``path``, in words."""
    wal, shm = _beside(path, "wal"), _beside(path, "shm")
    if not path.parent.is_dir():
        return f"folder {path.parent} does not exist"
    if not os.access(path, os.R_OK):
        return "this user may not read it"
    if _size(wal) and not shm.exists() and not os.access(path.parent, os.W_OK):
        return (
            f"it has a write-ahead log ({wal.name}) but no {shm.name}, and this user may not create one in "
            f"{path.parent}; run any catalog verb there once as a user who may write that folder"
        )
    return _not_writable(path) or "unable to open database file"


def _not_writable(path: Path, stats: os.statvfs_result | None = None) -> str | None:
    """Why this user cannot commit to the catalog ``path`` (None: it can, as far as permissions go).

    ``stats``: its folder's ``os.statvfs``, if the caller has it already."""
    stats = stats or _statvfs(path.parent)
    if stats is not None and stats.f_flag & os.ST_RDONLY:
        return "it is on a read-only file system (only the commands that just read work there)"
    for candidate in (path, _beside(path, "wal"), _beside(path, "shm")):
        if os.access(candidate, os.W_OK):  # the usual case: one call each
            continue
        target = candidate if candidate == path or candidate.exists() else path.parent
        if not os.access(target, os.W_OK):
            shared = os.stat(path.parent).st_mode & 0o020 and target != path.parent
            hint = "; a store shared by a group needs its catalog files group-writable" if shared else ""
            return f"this user may not write {target} (only the commands that just read work){hint}"
    return None


def check_writable(path: Path, incoming: int | None = None, store: Path | None = None) -> None:
    """Raise CatalogDatabaseError now if this process could not commit to the catalog ``path``; else do nothing.

    The database and its -wal and -shm files (or, for those not there yet,
    their folder) must be writable by this user, on a file system mounted
    read-write. A writer about to publish ``incoming`` bytes checks it before
    it publishes, so that no file lands without its row, and also that the file
    system has :data:`HEADROOM` bytes free, plus ``incoming`` when the
    ``store`` folder shares it.
    """
    stats = _statvfs(path.parent)  # one call for both questions: read-only? room left?
    why = _not_writable(path, stats)
    if why is not None:
        raise CatalogDatabaseError(f"catalog {path} cannot record changes: {why}; nothing was written")
    if incoming is None:
        return
    try:
        same_disk = store is not None and os.stat(store).st_dev == os.stat(path.parent).st_dev
    except OSError:
        same_disk = False
    full = no_space(path, incoming if same_disk else 0, stats)
    if full is not None:
        raise full
