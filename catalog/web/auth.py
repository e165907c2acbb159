"""Who is asking: sessions for browsers, bearer credentials for programs, roles, and CSRF tokens.

- A browser logs in with an account's name and secret (:mod:`catalog.ops.users`)
  and gets a session: a cookie signed with the web key (Starlette's
  SessionMiddleware, itsdangerous), HttpOnly, SameSite=Strict, Secure when the
  view runs behind TLS. The session holds the account's name, a fingerprint of
  its stored hash and a CSRF token; every request looks the account up again,
  so a removed account, or one added again with a new secret, loses its
  sessions at once, and a role change takes effect on the next request.
- A program sends ``Authorization: Bearer NAME:SECRET`` on each call. A
  credential once checked against its stored hash is remembered (in memory,
  by a digest of name, secret and stored hash) so later calls skip scrypt.
- Every state-changing form carries the session's CSRF token, compared in
  constant time; bearer calls need none (no cookie is involved).
- The web key signs the cookies: the environment variable
  ``CRYPTORUN_WEB_SECRET`` (at least 32 characters), else the file
  ``catalog.web-key`` in the store's base folder, made once with 32 random
  bytes and mode 0600, and refused if others may read it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.store import Catalog
from ..core.vocabulary import WEB_KEY_FILE
from ..ops import users
from ..ops.users import UserRecord, secret_matches, stored_hash

#: The environment variable that gives the web key directly (for several servers behind one balancer).
KEY_ENV = "CRYPTORUN_WEB_SECRET"
MIN_KEY = 32
_REMEMBERED = 4096  # checked bearer credentials kept in memory


def web_key(base_dir: Path, environ: dict[str, str] | None = None) -> str:
    """The key that signs session cookies: ``CRYPTORUN_WEB_SECRET``, else the key file (made if missing).

    Raises ConfigError for a key shorter than 32 characters or a key file that
    others may read or that is not a regular file.
    """
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV):
        if len(env[KEY_ENV]) < MIN_KEY:
            raise ConfigError(f"{KEY_ENV} must be at least {MIN_KEY} characters")
        return env[KEY_ENV]
    path = base_dir / WEB_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(32))
            handle.flush()
            os.fsync(handle.fileno())
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"web key {path} cannot be read: {exc.strerror} (it must be a regular file, not a link)") from None
    with os.fdopen(fd, encoding="ascii") as handle:
        info = os.fstat(handle.fileno())
        if info.st_mode & 0o077 or not os.path.isfile(path):
            raise ConfigError(f"web key {path} may be read by others (mode {info.st_mode & 0o777:o}); make it 0600")
        key = handle.read().strip()
    if len(key) < MIN_KEY:
        raise ConfigError(f"web key {path} holds fewer than {MIN_KEY} characters")
    return key


def fingerprint(stored: str) -> str:
    """A short digest of an account's stored hash: sessions made before the account changed stop matching."""
    return hashlib.sha256(stored.encode("ascii")).hexdigest()[:32]


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the account, and whether it came with a session (cookies: CSRF applies)."""

    user: UserRecord
    by_session: bool

    @property
    def actor(self) -> str:
        """The audit log's actor for this caller's changes: ``web:NAME@host:pid``."""
        return f"web:{self.user.name}@{os.uname().nodename}:{os.getpid()}"


class Gate:
    """Checks the credentials of requests against the catalog's accounts."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._checked: set[str] = set()

    def login(self, session: dict[str, Any], name: str, secret: str) -> UserRecord | None:
        """Check a name and secret; on success start a fresh session for the account and return it."""
        found = stored_hash(self.catalog, name)
        if found is None:
            users.hash_secret(secret)  # as much work as a known name's check: the time taken tells no name apart
            return None
        if not secret_matches(secret, found[1]):
            return None
        session.clear()
        session.update(user=found[0].name, fp=fingerprint(found[1]), csrf=secrets.token_urlsafe(32))
        return found[0]

    def from_session(self, session: dict[str, Any]) -> Caller | None:
        """The caller of a session, or None (and the session cleared) if its account is gone or changed."""
        name = session.get("user")
        if not isinstance(name, str):
            return None
        found = stored_hash(self.catalog, name)
        if found is None or not hmac.compare_digest(str(session.get("fp", "")), fingerprint(found[1])):
            session.clear()
            return None
        return Caller(found[0], by_session=True)

    def from_bearer(self, header: str) -> Caller | None:
        """The caller of ``Authorization: Bearer NAME:SECRET``, or None."""
        scheme, _, credential = header.partition(" ")
        name, colon, secret = credential.strip().partition(":")
        if scheme.lower() != "bearer" or not colon or len(secret) > 256:
            return None
        found = stored_hash(self.catalog, name)
        if found is None:
            users.hash_secret(secret)  # as in login: an unknown name takes a known one's time
            return None
        key = hashlib.sha256("\0".join((name, secret, found[1])).encode("utf-8", "replace")).hexdigest()
        if key not in self._checked:
            if not secret_matches(secret, found[1]):
                return None
            if len(self._checked) >= _REMEMBERED:
                self._checked.clear()
            self._checked.add(key)
        return Caller(found[0], by_session=False)


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token (empty for no session)."""
    return str(session.get("csrf", ""))


def csrf_ok(session: dict[str, Any], given: str | None) -> bool:
    """Whether ``given`` is the session's CSRF token (constant-time comparison)."""
    expected = csrf_token(session)
    return bool(expected) and given is not None and hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
