"""Effective settings: defaults < YAML file < environment < arguments (the CLI's flags).

Every value remembers where it came from (``default``, ``file:<path>``,
``env:<VAR>``, or ``argument:<name>`` for a value a caller passed directly —
the command line labels its own with the flag it came from), so ``catalog config
show`` can say. A
value derived from another (the base folder from the environment, the SQLite
URL from the base folder) names that one's source, with how it was derived.
"""

from __future__ import annotations

import os
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .errors import ConfigError, ValidationError
from .vocabulary import ENVIRONMENTS, LAYOUTS, RETENTION_ACTIONS, TYPES
from .yaml_file import read_yaml

DEFAULT_CONFIG_FILE = Path("config") / "artifacts.yaml"
#: The retain_until of an artifact written while its type was kept forever: a promise no later policy undoes.
FOREVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
SYNCHRONOUS = ("full", "normal")
GIB = 1024**3
MAX_RETENTION_DAYS = 36_600  # a century: expiry dates stay far inside what every backend stores
MAX_CLOCK_SKEW_SECONDS = 86_400

DEFAULTS: dict[str, Any] = {
    "environment": "development",
    "base_dir": None,
    "catalog_url": None,
    "layout": "flat",
    "retention": {
        "explain": {"days": 30, "action": "delete"},
        "ledger": {"days": 90, "action": "archive"},
        "health": {"days": 14, "action": "delete"},
        "config": {"days": None, "action": "delete"},
    },
    "formats": {"json_indent": 2, "csv_precision": 6},
    "limits": {"max_files_per_dir": 10_000, "max_dir_bytes": 10 * GIB, "max_store_bytes": 10 * GIB},
    "sqlite": {"synchronous": "full", "busy_timeout_ms": 30_000, "allow_filesystems": []},
    "audit": {"checkpoint_dir": None, "max_clock_skew_seconds": 300, "signing_key": None},
}

ENV_VARS: dict[str, str] = {
    "CRYPTORUN_CHECKPOINT_DIR": "audit.checkpoint_dir",
    "CRYPTORUN_MAX_CLOCK_SKEW_SECONDS": "audit.max_clock_skew_seconds",
    "CRYPTORUN_SIGNING_KEY": "audit.signing_key",
    "CRYPTORUN_ENV": "environment",
    "CRYPTORUN_ARTIFACTS_DIR": "base_dir",
    "CRYPTORUN_CATALOG_URL": "catalog_url",
    "CRYPTORUN_LAYOUT": "layout",
    "CRYPTORUN_EXPLAIN_RETENTION_DAYS": "retention.explain.days",
    "CRYPTORUN_LEDGER_RETENTION_DAYS": "retention.ledger.days",
    "CRYPTORUN_HEALTH_RETENTION_DAYS": "retention.health.days",
    "CRYPTORUN_SQLITE_ALLOW_FILESYSTEMS": "sqlite.allow_filesystems",
}

#: Keys a caller may override directly (the CLI's global flags, a Python caller's arguments).
OVERRIDABLE: tuple[str, ...] = ("environment", "base_dir", "catalog_url")


@dataclass(frozen=True)
class RetentionPolicy:
    """How long one artifact type is kept, and what happens after."""

    days: int | None  # None: kept forever
    action: str  # delete | archive


@dataclass(frozen=True)
class Limits:
    """Folder and store limits (what ``catalog limits`` checks): files per folder, bytes per folder and per store."""

    max_files_per_dir: int
    max_dir_bytes: int
    max_store_bytes: int


@dataclass(frozen=True)
class Settings:
    """The effective configuration, with the source of every value."""

    environment: str
    base_dir: Path
    catalog_url: str
    retention: Mapping[str, RetentionPolicy]
    json_indent: int
    csv_precision: int
    limits: Limits
    sqlite_synchronous: str
    sqlite_busy_timeout_ms: int
    #: File system types (as Linux's mountinfo names them) accepted for the SQLite catalog beside the local ones.
    sqlite_allow_filesystems: frozenset[str] = frozenset()
    checkpoint_dir: Path | None = None
    max_clock_skew: timedelta = timedelta(minutes=5)
    #: The store's private signing key (``catalog keys generate``), outside the store; None: checkpoints are unsigned.
    signing_key: Path | None = None
    #: Where new files go in their type folder: flat, month or day (:func:`catalog.core.names.store_path`).
    layout: str = "flat"
    config_file: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        """Every effective value by dotted key (``limits.max_dir_bytes``…), sorted, as plain data; sizes in bytes.

        These are the values shown (``config show``) and snapshotted: the catalog
        URL comes with its password hidden (:func:`redact_url`).
        """
        flat = {
            "environment": self.environment,
            "base_dir": str(self.base_dir),
            "catalog_url": redact_url(self.catalog_url),
            "layout": self.layout,
            "formats.json_indent": self.json_indent,
            "formats.csv_precision": self.csv_precision,
            "limits.max_files_per_dir": self.limits.max_files_per_dir,
            "limits.max_dir_bytes": self.limits.max_dir_bytes,
            "limits.max_store_bytes": self.limits.max_store_bytes,
            "sqlite.synchronous": self.sqlite_synchronous,
            "sqlite.busy_timeout_ms": self.sqlite_busy_timeout_ms,
            "sqlite.allow_filesystems": sorted(self.sqlite_allow_filesystems),
            "audit.checkpoint_dir": None if self.checkpoint_dir is None else str(self.checkpoint_dir),
            "audit.max_clock_skew_seconds": int(self.max_clock_skew.total_seconds()),
            "audit.signing_key": None if self.signing_key is None else str(self.signing_key),
        }
        for name, policy in self.retention.items():
            flat[f"retention.{name}.days"] = policy.days
            flat[f"retention.{name}.action"] = policy.action
        return dict(sorted(flat.items()))

    def retain_until(
        self, artifact_type: str, created_at: datetime, recorded_at: datetime, floor_days: int | None = None
    ) -> datetime:
        """The retention promise an artifact is written with: max(created, recorded) + its type's days, never
        below ``floor_days``; :data:`FOREVER` when the type is kept forever, so a later, shorter policy cannot
        undo the promise. Raises :class:`ValidationError` if the date would pass year 9999.
        """
        days = self.retention[artifact_type].days
        if days is not None and floor_days is not None:
            days = max(days, floor_days)
        try:
            return FOREVER if days is None else max(created_at, recorded_at) + timedelta(days=days)
        except OverflowError:
            raise ValidationError(
                f"{artifact_type} artifacts dated {created_at:%Y-%m-%d} kept {days} days would expire after year 9999"
            ) from None


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


_DEFAULT_FLAT = _flatten(DEFAULTS)
_SECTIONS = {key.rsplit(".", n)[0] for key in _DEFAULT_FLAT for n in range(1, key.count(".") + 1)}
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxlist, _SHORT_REPR.maxdict, _SHORT_REPR.maxstring, _SHORT_REPR.maxother = 2, 3, 3, 60, 60
_FSTYPE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_SIZE_RE = re.compile(r"\s*(\d+)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}  # fmt: skip


def _flatten_file(data: Mapping[Any, Any], path: Path) -> dict[str, Any]:
    """Flatten the YAML tree, refusing unknown keys and sections that are not mappings."""
    flat: dict[str, Any] = {}

    def walk(tree: Mapping[Any, Any], prefix: str) -> None:
        for key, value in tree.items():
            dotted = f"{prefix}{key}"
            if not isinstance(key, str):
                raise ConfigError(f"config file {path}: key {dotted!r} is not text")
            if dotted in _SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(f"config file {path}: key '{dotted}' must be a mapping, not {_kind(value)}")
                walk(value, dotted + ".")
            elif dotted in _DEFAULT_FLAT:
                flat[dotted] = value
            else:
                raise ConfigError(f"config file {path}: unknown key '{dotted}'")

    walk(data, "")
    return flat


def redact_url(url: str) -> str:
    """A database URL as it may be shown: rendered by SQLAlchemy with the password hidden (``***``).

    A ``password=`` query argument (libpq reads one) is hidden too. Text that does
    not parse as a URL, or whose host would still hold an ``@`` (a password with
    an unescaped ``@``), has everything from ``://`` to its last ``@`` hidden.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
        shown = None if "@" in (parsed.host or "") else parsed.render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        shown = None
    if shown is None:
        return re.sub(r"://.*@", "://***@", url, flags=re.DOTALL)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", shown)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check(key: str, value: Any, where: str) -> Any:
    """Return ``value`` converted for ``key``, or raise naming ``where`` and key."""

    def fail(expected: str) -> ConfigError:
        shown = _SHORT_REPR.repr(value)  # bounded: never expands a YAML alias bomb
        if key == "catalog_url":  # the password goes before the text is shortened; anything else is not shown
            shown = _SHORT_REPR.repr(redact_url(value)) if isinstance(value, str) else f"a {_kind(value)}"
        return ConfigError(f"{where}: key '{key}' must be {expected}, got {shown}")

    if key == "environment":
        if not isinstance(value, str) or value not in ENVIRONMENTS:
            raise fail("one of " + ", ".join(ENVIRONMENTS))
        return value
    if key in ("base_dir", "catalog_url", "audit.checkpoint_dir", "audit.signing_key"):
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise fail("a database URL" if key == "catalog_url" else "a non-empty path")
        if key == "catalog_url":
            _check_url(value, fail)
        return value
    if key == "layout":
        if not isinstance(value, str) or value not in LAYOUTS:
            raise fail("one of " + ", ".join(LAYOUTS))
        return value
    if key.startswith("retention.") and key.endswith(".days"):
        if value is None and not where.startswith("env:"):
            return None  # kept forever
        if isinstance(value, str) and where.startswith("env:") and re.fullmatch(r"[0-9]{1,9}", value.strip()):
            value = int(value.strip())
        if type(value) is not int or not 0 <= value <= MAX_RETENTION_DAYS:
            raise fail(f"a whole number of days from 0 to {MAX_RETENTION_DAYS}" + ("" if where.startswith("env:") else " (or null: kept forever)"))
        return value
    if key.endswith(".action"):
        if not isinstance(value, str) or value not in RETENTION_ACTIONS:
            raise fail("one of " + ", ".join(RETENTION_ACTIONS))
        return value
    if key == "formats.json_indent":
        if type(value) is not int or not 0 <= value <= 16:
            raise fail("a whole number from 0 to 16")
        return value
    if key == "formats.csv_precision":
        if type(value) is not int or not 0 <= value <= 17:
            raise fail("a whole number from 0 to 17")
        return value
    if key == "limits.max_files_per_dir":
        if type(value) is not int or value <= 0:
            raise fail("a whole number above 0")
        return value
    if key.startswith("limits."):
        if type(value) is int and value > 0:
            return value
        match = _SIZE_RE.fullmatch(value) if isinstance(value, str) else None
        if match and int(match[1]) > 0:
            return int(match[1]) * _SIZE_UNITS[match[2]]
        raise fail("a size above 0 in bytes, or with a unit such as '10 GiB'")
    if key == "sqlite.synchronous":
        if not isinstance(value, str) or value.lower() not in SYNCHRONOUS:
            raise fail("one of " + ", ".join(SYNCHRONOUS))
        return value.lower()
    if key == "audit.max_clock_skew_seconds":
        if isinstance(value, str) and where.startswith("env:") and re.fullmatch(r"[0-9]{1,6}", value.strip()):
            value = int(value.strip())
        if type(value) is not int or not 0 <= value <= MAX_CLOCK_SKEW_SECONDS:
            raise fail(f"a whole number of seconds from 0 to {MAX_CLOCK_SKEW_SECONDS}")
        return value
    if key == "sqlite.allow_filesystems":
        if isinstance(value, str) and where.startswith("env:"):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) and _FSTYPE_RE.fullmatch(v) for v in value):
            raise fail("a list of file system types such as [vboxsf]" + (", comma-separated" if where.startswith("env:") else ""))
        return frozenset(value)
    if key == "sqlite.busy_timeout_ms":
        if type(value) is not int or not 0 <= value <= 3_600_000:
            raise fail("a whole number of milliseconds from 0 to 3600000")
        return value
    raise AssertionError(f"no check for {key}")  # pragma: no cover - every default key has one


def _check_url(url: str, fail: Any) -> None:
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise fail("a database URL such as sqlite:////path/catalog.sqlite or postgresql+psycopg://user@host/db")
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise fail("a SQLite URL with a file path, such as sqlite:////abs/path/catalog.sqlite")
        if "?" in rest:
            raise fail("a SQLite URL without query arguments (SQLite settings go in the sqlite: section)")
    elif scheme not in ("postgresql", "postgresql+psycopg"):
        raise fail("a sqlite:/// or postgresql+psycopg:// URL")
    elif "@" in _url_host(url):
        raise fail("a URL whose user and password write '@' as %40 (the host would be read as the text after it)")


def _url_host(url: str) -> str:
    """The host SQLAlchemy reads in ``url`` ('' if none, or if the URL does not parse: the driver says why)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).host or ""
    except (ArgumentError, ValueError):
        return ""


def default_catalog_url(base_dir: Path) -> str:
    """The embedded default: SQLite in the store's base folder (``sqlite:///<base_dir>/catalog.sqlite``).

    The path is percent-encoded as RFC 3986 wants a URL's path (SQLAlchemy
    decodes it again), so a folder named ``a?b`` or ``100%41`` is the folder
    itself: unencoded, ``?`` would start the URL's query and ``%41`` would be read as ``A``.
    """
    from sqlalchemy.engine import URL

    return URL.create("sqlite", database=str(base_dir / "catalog.sqlite")).render_as_string(hide_password=False)


def os_path(path: Path) -> Path:
    """The absolute ``path`` without '.' and '..', leading where the OS would (POSIX.1-2017, 4.13 "Pathname
    Resolution"): a '..' after a symlink is the parent of the link's target, not the folder holding the link (as a
    purely textual normalisation would have it). Symlinks after the last '..' are kept as named."""
    parts = path.parts
    if ".." not in parts:
        return Path(os.path.normpath(path))
    last = len(parts) - 1 - parts[::-1].index("..")
    return Path(os.path.normpath(Path(os.path.realpath(Path(*parts[: last + 1]))).joinpath(*parts[last + 1 :])))


def _outside(values: Mapping[str, Any], sources: Mapping[str, str], key: str, cwd: Path, base_dir: Path) -> Path | None:
    """The path setting ``key`` made absolute (None if unset); ConfigError if it lies inside the store."""
    if values[key] is None:
        return None
    path = os_path(cwd / Path(values[key]).expanduser())
    if path.is_relative_to(base_dir):
        raise ConfigError(f"{sources[key]}: key '{key}' must be outside the store {base_dir}")
    return path


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
    *,
    override_sources: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective settings from every layer, validating each value.

    Layers, lowest first: defaults, the YAML file (``config_file``, else
    ``./config/artifacts.yaml`` if present), ``env`` (default: the process
    environment), ``overrides`` (keys of :data:`OVERRIDABLE`; None values are
    ignored). Each override is labelled ``argument:<key>`` in the sources
    unless ``override_sources`` gives it another label (the command line names its flag).
    Raises :class:`ConfigError` naming the file, variable or argument and the key.
    """
    env = os.environ if env is None else env
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    labels = dict(override_sources or {})
    cwd = Path.cwd() if cwd is None else cwd

    values: dict[str, Any] = dict(_DEFAULT_FLAT)
    sources = dict.fromkeys(values, "default")

    path: Path | None
    if config_file is not None:
        path = Path(config_file)
    else:
        candidate = cwd / DEFAULT_CONFIG_FILE
        path = candidate if candidate.is_file() else None
    if path is not None:
        for key, value in _flatten_file(read_yaml(path), path).items():
            values[key] = _check(key, value, f"config file {path}")
            sources[key] = f"file:{path}"

    for var, key in ENV_VARS.items():
        if var in env:
            values[key] = _check(key, env[var], f"env:{var}")
            sources[key] = f"env:{var}"

    for key, value in flags.items():
        if key not in OVERRIDABLE:
            raise ConfigError(f"{key!r} cannot be overridden; choose one of: {', '.join(OVERRIDABLE)}")
        label = labels.get(key, f"argument:{key}")
        values[key] = _check(key, value, label)
        sources[key] = label

    if values["base_dir"] is None:
        values["base_dir"] = ENVIRONMENTS[values["environment"]]
        sources["base_dir"] = f"{sources['environment']} (environment {values['environment']})"
    base_dir = os_path(cwd / Path(values["base_dir"]).expanduser())  # cwd / an absolute path is that path

    url = values["catalog_url"]
    if url is None:
        url = default_catalog_url(base_dir)
        sources["catalog_url"] = f"{sources['base_dir']} (SQLite in base_dir)"
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")

    checkpoints, signing_key = (_outside(values, sources, key, cwd, base_dir) for key in ("audit.checkpoint_dir", "audit.signing_key"))

    return Settings(
        environment=values["environment"],
        base_dir=base_dir,
        catalog_url=url,
        retention={t: RetentionPolicy(values[f"retention.{t}.days"], values[f"retention.{t}.action"]) for t in TYPES},
        json_indent=values["formats.json_indent"],
        csv_precision=values["formats.csv_precision"],
        limits=Limits(
            values["limits.max_files_per_dir"], values["limits.max_dir_bytes"], values["limits.max_store_bytes"]
        ),
        sqlite_synchronous=values["sqlite.synchronous"],
        sqlite_busy_timeout_ms=values["sqlite.busy_timeout_ms"],
        sqlite_allow_filesystems=frozenset(values["sqlite.allow_filesystems"]),
        checkpoint_dir=checkpoints,
        max_clock_skew=timedelta(seconds=values["audit.max_clock_skew_seconds"]),
        signing_key=signing_key,
        layout=values["layout"],
        config_file=path,
        sources=sources,
    )
