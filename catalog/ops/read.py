"""Reading artifact bytes back: always verified against the catalog before anything is kept."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO

from ..core import fs
from ..core.errors import IntegrityError, NotFoundError, Remedy, ValidationError
from ..core.records import ArtifactRecord
from ..core.store import Catalog
from ..core.vocabulary import READABLE


def _readable(catalog: Catalog, path: str | Path) -> ArtifactRecord:
    record = catalog.require_path(path)
    if record.status not in READABLE:
        raise NotFoundError(f"artifact {record.path} is {record.status}; its bytes are not served")
    return record


def copy_verified(catalog: Catalog, path: str | Path, out: IO[bytes]) -> ArtifactRecord:
    """Copy an artifact's bytes to ``out``, hashing them; :class:`IntegrityError` if they no longer match.

    Returns the artifact's record. Raises :class:`NotFoundError` for no
    artifact at ``path`` or one whose bytes are not served (deleted, missing,
    quarantined). The file is opened by :func:`catalog.core.fs.open_artifact`
    (no symlink followed, a regular file only: anything else is an
    IntegrityError) and read no further than its recorded size + 1. The
    caller discards ``out`` when this raises: nothing unverified is kept.
    """
    record = _readable(catalog, path)
    digest, size = hashlib.sha256(), 0
    try:
        fs.row_file(catalog.base_dir, record.path)  # a path read from the database: checked before the file is opened
        with fs.open_artifact(catalog.base_dir, record.path) as handle:
            on_disk = os.fstat(handle.fileno()).st_size
            if on_disk != record.size:
                raise IntegrityError(f"refused: {record.path} no longer matches the catalog (size {on_disk} bytes, "
                                     f"recorded {record.size})", remedy=Remedy.RECONCILE)  # fmt: skip
            for chunk in fs.read_limited(handle, record.size):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except (FileNotFoundError, NotADirectoryError):
        raise IntegrityError(
            f"artifact {record.path} is in the catalog but its file is gone", remedy=Remedy.RECONCILE
        ) from None
    except fs.UnsafePath as exc:
        raise IntegrityError(f"refused: {record.path}: {exc.reason}", remedy=Remedy.RECONCILE) from None
    if size != record.size or digest.hexdigest() != record.sha256:
        raise IntegrityError(
            f"refused: {record.path} no longer matches the catalog (size {size} vs {record.size}, "
            f"SHA-256 {digest.hexdigest()[:12]}… vs {record.sha256[:12]}…)", remedy=Remedy.RECONCILE_DEEP,
        )
    return record


def export(catalog: Catalog, path: str | Path, destination: Path | None, stdout: IO[bytes] | None = None) -> ArtifactRecord:
    """Write an artifact's verified bytes to ``destination`` (or ``stdout``); returns its record.

    Bytes go to a temp file first and reach the destination only once their
    hash matched, so a tampered artifact leaves nothing behind; the copy
    replaces an existing ``destination``, durably, with the mode the umask
    gives (:func:`catalog.core.fs.new_file_beside`). Raises
    :class:`ValidationError` for a destination that is a folder, inside the
    store or in a missing folder, and NotFoundError and IntegrityError as
    :func:`copy_verified` does.
    """
    if destination is not None:
        destination = Path(os.path.abspath(destination))
        if destination.is_dir():
            raise ValidationError(f"output {destination} is a folder")
        if fs.is_inside(destination, catalog.base_dir):
            raise ValidationError(f"output {destination} is inside the store; choose a path outside it")
        if not destination.parent.is_dir():
            raise ValidationError(f"output folder {destination.parent} does not exist")
        with fs.new_file_beside(destination, replace=True) as tmp, open(tmp, "wb") as handle:
            record = copy_verified(catalog, path, handle)
        return record
    assert stdout is not None
    with tempfile.TemporaryFile() as spool:
        record = copy_verified(catalog, path, spool)
        spool.seek(0)
        shutil.copyfileobj(spool, stdout, fs.CHUNK)
        stdout.flush()
    return record
