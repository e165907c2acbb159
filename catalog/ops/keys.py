"""Key files: make an Ed25519 key pair, load the store's signing key safely, rotate it through the log.

A private key file holds one line ``PRIVATE+KEY+<name>+<key id>+<key>`` (Go's
note format, :mod:`catalog.core.note`), is created exclusively (never over
another file) with mode 0600, and is refused when group or others may read it,
when it is a symbolic link, or when it is not a regular file, as ssh refuses
an unprotected private key. Its public half, the verifier key, is written
beside it as ``<file>.pub`` and may be shared freely.

A **rotation** is a ``key_rotate`` event whose details carry the new verifier
key and the announcement the old key signed (:func:`catalog.core.note.rotation_text`);
:func:`catalog.core.note.accepted_keys` follows them from a trusted key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..core import fs, note, tlog
from ..core.errors import Remedy, ValidationError
from ..core.schema import EVENTS
from ..core.settings import Settings
from ..core.store import Catalog

#: The most bytes read from a key file (a key line is about 100).
MAX_KEY_BYTES = 4096


def public_path(private: Path) -> Path:
    """Where the verifier key of the private key file ``private`` is written: ``<private>.pub``."""
    return private.with_name(private.name + ".pub")


def generate_key(name: str, output: Path, base_dir: Path) -> note.Signer:
    """Make an Ed25519 key pair named ``name``: the private key to ``output`` (0600), its verifier to ``output.pub``.

    Both files are new (never overwriting), complete or absent, and durable.
    Raises ValidationError for a bad name, an output inside the store
    ``base_dir``, in a missing folder, or where either file already exists.
    """
    output = fs.outside_store(base_dir, output, "key file")
    signer = note.generate(name)
    if not output.parent.is_dir():
        raise ValidationError(f"folder {output.parent} for the key does not exist")
    for path in (output, public_path(output)):
        if os.path.lexists(path):
            raise ValidationError(f"{path} already exists; a key file is never overwritten")
    fs.create_exclusive(output.parent, output.name, (signer.skey + "\n").encode(), mode=0o600)
    try:
        fs.create_exclusive(output.parent, public_path(output).name, (signer.verifier.vkey + "\n").encode())
    except BaseException:
        fs.unlink_durably(output)  # ours, made a moment ago: no half pair stays
        raise
    return signer


def _key_text(path: Path, what: str, private: bool) -> str:
    data, info = fs.read_small(path, what, MAX_KEY_BYTES, links=False)
    if private and info.st_mode & 0o077:
        raise ValidationError(f"{what} {path} may be read by group or others (mode {info.st_mode & 0o777:04o}); "
                              f"a private key must be yours alone: chmod 600 {path}")  # fmt: skip
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValidationError(f"{what} {path} is not a key (not ASCII text)") from None


def load_signer(path: Path, what: str = "private key") -> note.Signer:
    """The private key in the file ``path``; ValidationError naming the file and why it is refused.

    Refused: missing, a symbolic link, not a regular file, readable by group
    or others, larger than :data:`MAX_KEY_BYTES`, or not a private key.
    """
    text = _key_text(path, what, private=True)
    try:
        return note.parse_signer(text)
    except ValidationError as exc:
        raise ValidationError(f"{what} {path}: {exc}") from None


def load_verifier(path: Path, what: str = "public key") -> note.Verifier:
    """The verifier key in the file ``path`` (``<name>+<key id>+<key>``, as ``keys generate`` writes ``.pub``).

    A private key file is accepted too (its public half is used), under the
    private key's checks. Raises ValidationError naming the file and why.
    """
    text = _key_text(path, what, private=False)
    if text.startswith("PRIVATE+"):
        return load_signer(path, what).verifier
    try:
        return note.parse_verifier(text)
    except ValidationError as exc:
        raise ValidationError(f"{what} {path}: {exc}") from None


def configured_signer(settings: Settings) -> note.Signer | None:
    """The store's signing key (``audit.signing_key``), or None if none is configured; ValidationError if refused."""
    return None if settings.signing_key is None else load_signer(settings.signing_key, "signing key")


def log_origin(execute: Callable[[Any], Any]) -> str:
    """This store's checkpoint origin (:func:`catalog.core.tlog.store_origin`), from its first event.

    ``execute`` runs a SELECT: a connection's ``execute`` or a unit of work's
    ``read``. Raises ValidationError while the log is empty.
    """
    first = execute(select(EVENTS.c.hash).where(EVENTS.c.seq == 1)).scalar()
    if first is None:
        raise ValidationError("the audit log is empty: the store was never initialised", remedy=Remedy.INIT)
    return tlog.store_origin(first)


def rotations(catalog: Catalog) -> list[note.Rotation]:
    """The ``key_rotate`` events of the log, in order, as :class:`catalog.core.note.Rotation` (malformed ones too)."""
    e = EVENTS.c
    with catalog.read() as conn:
        rows = conn.execute(select(e.seq, e.details).where(e.action == "key_rotate").order_by(e.seq)).all()
    found = []
    for row in rows:
        details = json.loads(row.details)
        found.append(note.Rotation(row.seq, str(details.get("new_key", "")), str(details.get("announcement", ""))))
    return found


def trusted_keys(catalog: Catalog, given: Iterable[Path] = ()) -> tuple[list[note.Verifier], list[str]]:
    """The keys a checkpoint of this store may be signed by, and the rotations refused (as messages).

    Trusted: the verifier keys in the files ``given``, else the public half of
    the configured signing key (none: an empty list); then every key the log
    announced from those (:func:`catalog.core.note.accepted_keys`).
    """
    anchors = [load_verifier(Path(p)) for p in given]
    if not anchors:
        signer = configured_signer(catalog.settings)
        anchors = [] if signer is None else [signer.verifier]
    if not anchors:
        return [], []
    with catalog.read() as conn:
        origin = log_origin(conn.execute)
    accepted, refused = note.accepted_keys(anchors, origin, rotations(catalog))
    return accepted, [f"the key rotation at seq {r.seq} is not accepted: {why}" for r, why in refused]


def rotate_key(catalog: Catalog, new_key: Path) -> tuple[note.Verifier, note.Verifier, int]:
    """Announce ``new_key`` (a private key file or a ``.pub``) in the log, signed by the configured signing key.

    Appends a ``key_rotate`` event whose details hold the new verifier key and
    the announcement note the old key signed. Returns (old verifier, new
    verifier, the event's seq). Point ``audit.signing_key`` at the new key
    afterwards. Raises ValidationError when no key is configured (a lost key
    has its own procedure), when the new key is the current one, or a key file is refused.
    """
    old = configured_signer(catalog.settings)
    if old is None:
        raise ValidationError("no signing key is configured (audit.signing_key): only the current key can announce "
                              "its successor; if it is lost, follow the lost-key procedure")  # fmt: skip
    new = load_verifier(new_key, "new key")
    if new.public == old.verifier.public:
        raise ValidationError(f"{new_key} is the current signing key {old.verifier.label}; rotate to another key")
    with catalog.change() as tx:
        text = note.rotation_text(log_origin(tx.read), new)
        announcement = note.sign(text, old).encode().decode()
        seq = tx.events.append("key_rotate", details={"new_key": new.vkey, "old_key": old.verifier.label,
                                                      "announcement": announcement})  # fmt: skip
    return old.verifier, new, seq
