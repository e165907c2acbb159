"""Web accounts: a name, a role (:data:`catalog.core.vocabulary.ROLES`) and a one-time secret.

The secret is 32 random bytes from :func:`secrets.token_urlsafe` (256 bits, 43
characters), shown once when the account is added and never stored: the
catalog keeps only ``scrypt$N$r$p$SALT$HASH``, scrypt (RFC 7914) of the secret
with a per-account 16-byte salt, N = 2^14, r = 8, p = 1, 32 bytes out (the
interactive-login parameters of Percival's scrypt paper, also RFC 7914 §2's
example; a 256-bit random secret cannot be guessed whatever the cost, so the
slow hash guards against nothing but a stolen catalog read offline, which it
makes useless). The parameters are kept with each hash, so they can be raised
for new accounts without breaking old ones. Every change is an audited event
(``user_add``, ``user_role``, ``user_remove``) whose details never hold the
secret or its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..core.errors import Param, ValidationError
from ..core.formats import format_time
from ..core.schema import USERS
from ..core.store import Catalog
from ..core.vocabulary import ROLES
from .policy import check_reason

#: scrypt's cost (N), block size (r) and parallelism (p) for new hashes; 16 MiB of memory per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, HASH_BYTES, SECRET_BYTES = 16, 32, 32
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HASH = re.compile(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([0-9a-f]{32})\$([0-9a-f]{64})")
_MAXMEM = 2**27  # 128 MiB: room for N up to 2^16 at r = 8


def check_name(name: str) -> str:
    """An account name: 1-64 ASCII letters, digits, ``. _ -``, starting with a letter or digit. ValidationError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(Param("name"), f" {str(name)[:40]!r} must be 1-64 ASCII letters, digits, '.', '_' or "
                              "'-', starting with a letter or digit", value=name)  # fmt: skip
    return name


def check_role(role: str) -> str:
    """One of :data:`ROLES`; ValidationError naming them otherwise."""
    if role not in ROLES:
        raise ValidationError(f"unknown role {str(role)[:40]!r}; choose one of: {', '.join(ROLES)}", value=role)
    return role


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$SALT$HASH`` of ``secret`` with a new random salt (or ``salt``)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=HASH_BYTES,
                            maxmem=_MAXMEM)  # fmt: skip
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def secret_matches(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored`` (compared in constant time); False for a malformed ``stored``."""
    match = _HASH.fullmatch(stored)
    if match is None:
        return False
    n, r, p = (int(g) for g in match.groups()[:3])
    try:
        digest = hashlib.scrypt(secret.encode("utf-8"), salt=bytes.fromhex(match[4]), n=n, r=r, p=p, dklen=HASH_BYTES,
                                maxmem=_MAXMEM)  # fmt: skip
    except (ValueError, MemoryError):  # parameters beyond what this host allows
        return False
    return hmac.compare_digest(digest.hex(), match[5])


@dataclass(frozen=True)
class UserRecord:
    """One account as the API hands it out: never its secret or hash. Times aware UTC."""

    name: str
    role: str
    created_at: datetime
    created_by: str

    @classmethod
    def from_row(cls, row: Any) -> UserRecord:
        """Build from a row of the ``users`` table."""
        return cls(row.name, row.role, row.created_at, row.created_by)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, the time as ISO-8601 UTC text."""
        return {"name": self.name, "role": self.role, "created_at": format_time(self.created_at),
                "created_by": self.created_by}  # fmt: skip


def add_user(catalog: Catalog, name: str, role: str) -> tuple[UserRecord, str]:
    """Add an account; returns it and its one-time secret (shown once, stored only as a hash).

    Raises ValidationError for a bad name or role, or a name already taken.
    """
    check_name(name)
    check_role(role)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    stored = hash_secret(secret)
    with catalog.change() as tx:
        tx.users.add(name, role, stored)
        row = tx.users.get(name)
    return UserRecord.from_row(row), secret


def list_users(catalog: Catalog) -> list[UserRecord]:
    """Every account, by name."""
    with catalog.read() as conn:
        return [UserRecord.from_row(r) for r in conn.execute(select(USERS).order_by(USERS.c.name))]


def set_role(catalog: Catalog, name: str, role: str, reason: str) -> str:
    """Change an account's role (a ``user_role`` event); returns the role before. ValidationError, NotFoundError."""
    check_name(name)
    check_role(role)
    reason = check_reason(reason)
    with catalog.change() as tx:
        return tx.users.set_role(name, role, reason)


def remove_user(catalog: Catalog, name: str, reason: str) -> None:
    """Remove an account (a ``user_remove`` event): its sessions and tokens stop working at once.

    Raises ValidationError and NotFoundError.
    """
    check_name(name)
    reason = check_reason(reason)
    with catalog.change() as tx:
        tx.users.remove(name, reason)


def stored_hash(catalog: Catalog, name: str) -> tuple[UserRecord, str] | None:
    """The account named ``name`` and its stored hash, or None (a malformed name is simply no account)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return None
    with catalog.read() as conn:
        row = conn.execute(select(USERS).where(USERS.c.name == name)).one_or_none()
    return None if row is None else (UserRecord.from_row(row), row.secret_hash)


def authenticate(catalog: Catalog, name: str, secret: str) -> UserRecord | None:
    """The account if ``secret`` is its secret, else None; an unknown name costs the same scrypt as a known one."""
    found = stored_hash(catalog, name)
    if found is None:
        hash_secret(secret)  # the same work as for a known name: the time taken tells no name apart
        return None
    return found[0] if secret_matches(secret, found[1]) else None
