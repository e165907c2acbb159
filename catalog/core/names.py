"""Artifact names: ``YYYYMMDD-HHMMSS-{prefix}-{type}.{ext}``, built and parsed.

The time in a name is UTC to the second and equals the row's ``created_at``;
it lies between :data:`EARLIEST` (so the date always has eight digits and the
name parses back) and year 9999, and a writer refuses one more than
:data:`FUTURE_SLACK` after its own clock.
Temp files live beside their final name as
``.~{final name}~{host}~{pid}~{random}.tmp`` so that reconcile can tell which
host and process wrote them (``~`` never occurs in a prefix or a host name).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath

from .errors import ValidationError
from .vocabulary import EXTRA_EXTS, LAYOUTS, QUARANTINE, STANDARD_EXTS, TYPES

MAX_PREFIX = 64
#: The earliest time an artifact may carry: the Unix epoch. Earlier times are no report's (Go's zero time,
#: 0001-01-01T00:00:00Z, means "never set"), and would not fit a name's eight-digit date.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: How far after the writer's clock an artifact's time may be: an artifact records what already happened.
FUTURE_SLACK = timedelta(days=1)
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NAME_RE = re.compile(
    r"(?P<date>\d{8})-(?P<time>\d{6})-(?P<prefix>.+)-(?P<type>" + "|".join(TYPES) + r")\.(?P<ext>[a-z0-9]+)"
)
_TEMP_RE = re.compile(r"\.~(?P<name>[^~/]+)~(?P<host>[^~/]+)~(?P<pid>\d+)~(?P<token>[0-9a-f]+)\.tmp")
_FOLDER_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
_QUARANTINE_SUFFIX = re.compile(r"\.[0-9a-f]{8}$")


@dataclass(frozen=True)
class ArtifactName:
    """The parts of an artifact file name."""

    created_at: datetime
    prefix: str
    type: str
    ext: str

    @property
    def filename(self) -> str:
        """``YYYYMMDD-HHMMSS-{prefix}-{type}.{ext}`` at ``created_at`` (UTC when made by :func:`build_name`)."""
        t = self.created_at
        return f"{t.year:04d}{t.month:02d}{t.day:02d}-{t.hour:02d}{t.minute:02d}{t.second:02d}-{self.prefix}-{self.type}.{self.ext}"


def _show(value: str, limit: int = 40) -> str:
    """A value as it may appear in a one-line error message."""
    shown = repr(value[:limit])
    return shown + ("…" if len(value) > limit else "")


def validate_prefix(prefix: object) -> str:
    """Return ``prefix`` if it is a safe, unambiguous name part; else raise ValidationError.

    Safe: 1-64 ASCII letters, digits, ``_``, ``.`` and inner ``-``, not
    starting with ``.``, without ``..``, not ending with ``.``.
    """
    if not isinstance(prefix, str):
        raise ValidationError(f"prefix must be text, not {type(prefix).__name__}")
    if prefix == "":
        raise ValidationError("prefix is empty")
    if len(prefix) > MAX_PREFIX:
        raise ValidationError(f"prefix {_show(prefix)} is {len(prefix)} characters long; the limit is {MAX_PREFIX}")
    if not _PREFIX_RE.fullmatch(prefix):
        bad = next(c for c in prefix if not re.fullmatch(r"[A-Za-z0-9_.-]", c))
        raise ValidationError(
            f"prefix {_show(prefix)} contains {bad!r}; use only ASCII letters, digits, '_', '.' and inner '-'"
        )
    if prefix.startswith("."):
        raise ValidationError(f"prefix {_show(prefix)} starts with '.'")
    if ".." in prefix:
        raise ValidationError(f"prefix {_show(prefix)} contains '..'")
    if prefix.startswith("-") or prefix.endswith("-") or prefix.endswith("."):
        raise ValidationError(f"prefix {_show(prefix)} must not start with '-' or end with '-' or '.'")
    return prefix


def validate_type(artifact_type: object) -> str:
    """Return the artifact type if it is one of :data:`TYPES`; else raise ValidationError."""
    if artifact_type not in TYPES:
        raise ValidationError(f"unknown artifact type {artifact_type!r}; choose one of: {', '.join(TYPES)}")
    return str(artifact_type)


def validate_ext(artifact_type: str, ext: object, *, allow_extra: bool = False) -> str:
    """Return ``ext`` lower-cased, without a leading dot, if ``artifact_type`` may be stored with it.

    ``allow_extra`` also allows :data:`EXTRA_EXTS`. Raises ValidationError otherwise.
    """
    if not isinstance(ext, str) or not ext:
        raise ValidationError("extension is empty")
    given, ext = ext, ext.lower().removeprefix(".")
    allowed = STANDARD_EXTS[artifact_type] + (EXTRA_EXTS if allow_extra else ())
    if ext not in allowed:
        raise ValidationError(
            f"extension {_show(given)} is not allowed for type {artifact_type!r}; allowed: {', '.join(allowed)}"
        )
    return ext


def utc_second(moment: datetime) -> datetime:
    """``moment`` in UTC, truncated to the second; a naive time raises ValidationError."""
    if moment.tzinfo is None:
        raise ValidationError(f"time {moment.isoformat()} has no time zone; give it one (UTC)")
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def check_time(moment: datetime, now: datetime | None = None) -> datetime:
    """``moment`` in UTC to the second, if it may date an artifact: not before :data:`EARLIEST` and, given the
    writer's clock ``now``, at most :data:`FUTURE_SLACK` after it. Raises ValidationError otherwise."""
    moment = utc_second(moment)
    if moment < EARLIEST:
        raise ValidationError(f"time {moment:%Y-%m-%dT%H:%M:%SZ} is before 1970-01-01, so it is no report's time (Go's zero time "
                              "0001-01-01T00:00:00Z means it was never set)")  # fmt: skip
    if now is not None and moment > now + FUTURE_SLACK:
        raise ValidationError(f"time {moment:%Y-%m-%dT%H:%M:%SZ} is more than a day after this host's clock "
                              f"({now:%Y-%m-%dT%H:%M:%SZ}): an artifact records what already happened")  # fmt: skip
    return moment


def build_name(created_at: datetime, prefix: str, artifact_type: str, ext: str) -> ArtifactName:
    """Validate the parts and return the artifact's name (time in UTC, to the second); raises ValidationError
    (see :func:`check_time` for the times a name may carry)."""
    return ArtifactName(
        created_at=check_time(created_at),
        prefix=validate_prefix(prefix),
        type=validate_type(artifact_type),
        ext=validate_ext(artifact_type, ext, allow_extra=True),
    )


def parse_name(filename: str) -> ArtifactName | None:
    """Parse a file name written by :func:`build_name`; None if it is not one."""
    match = _NAME_RE.fullmatch(filename)
    if not match:
        return None
    try:
        created = _stamp_time(match["date"] + match["time"])
        check_time(created)
        validate_prefix(match["prefix"])
        validate_ext(match["type"], match["ext"], allow_extra=True)
    except (ValueError, ValidationError):
        return None
    return ArtifactName(created, match["prefix"], match["type"], match["ext"])


def partition(created_at: datetime, layout: str) -> str:
    """The partition folders (below the type folder) of an artifact dated ``created_at`` (UTC) under ``layout``:
    ``""`` (flat), ``YYYY/MM`` (month) or ``YYYY/MM/DD`` (day). Raises ValidationError for another layout."""
    if layout not in LAYOUTS:
        raise ValidationError(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    t = created_at
    return "" if layout == "flat" else f"{t.year:04d}/{t.month:02d}" + ("" if layout == "month" else f"/{t.day:02d}")


def store_path(name: ArtifactName, layout: str) -> str:
    """The store path of a new artifact: ``TYPE/NAME`` (flat), ``TYPE/YYYY/MM/NAME`` (month) or
    ``TYPE/YYYY/MM/DD/NAME`` (day), the partition from the UTC date in the name itself (never the clock)."""
    part = partition(name.created_at, layout)
    return f"{name.type}/{part}/{name.filename}" if part else f"{name.type}/{name.filename}"


_PARTITION_RE = re.compile(r"(?P<type>[a-z]+)/\d{4}(/(0[1-9]|1[0-2])(/(0[1-9]|[12]\d|3[01]))?)?")


def is_partition(folder: str) -> bool:
    """Whether the store folder ``folder`` is a folder the ``month`` and ``day`` layouts make: a year, month or day
    of a type (``explain/2026``, ``explain/2026/11``, ``explain/2026/11/29``), never a type folder itself."""
    match = _PARTITION_RE.fullmatch(folder)
    return match is not None and match["type"] in TYPES


def folder_of(path: str) -> str:
    """The folder part of a store path (``ledger/archived/2024-01`` for a file in it; ``.`` for a bare name)."""
    return str(PurePosixPath(path).parent)


def placements(path: str) -> list[str]:
    """Where the layouts put the artifact that ``path`` names: given ``NAME`` or ``TYPE/NAME`` (an artifact name of
    that type), its store path under flat, month and day, in that order; [] for anything else. Lets a name be
    looked up whichever layout wrote it."""
    folder, _, filename = path.rpartition("/")
    parsed = parse_name(filename)
    if parsed is None or folder not in ("", parsed.type):
        return []
    return placements_of(parsed)


def placements_of(name: ArtifactName) -> list[str]:
    """:func:`store_path` of ``name`` under flat, month and day, in that order."""
    return [store_path(name, layout) for layout in LAYOUTS]


def layout_of(folder: str, filename: str) -> str | None:
    """The layout under which an artifact named ``filename`` lies in the store folder ``folder``: ``flat`` (the
    type folder itself), ``month`` or ``day`` (the partition its name's date gives), else None (a wrong
    partition, a depth that is neither layout, or a name of another type: not where any layout puts it).
    Legacy names (:func:`legacy_name`) belong in the type folder only."""
    parsed = parse_name(filename)
    artifact_type, _, rest = folder.partition("/")
    if parsed is None:
        return "flat" if artifact_type in TYPES and not rest and legacy_name(filename) is not None else None
    if artifact_type != parsed.type:
        return None
    if not rest:
        return "flat"
    return next((layout for layout in ("month", "day") if rest == partition(parsed.created_at, layout)), None)


def host_name() -> str:
    """This host's name as temp file names carry it: at most 64 of ``A-Za-z0-9.-``, anything else as ``_``."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname() or "unknown-host")[:64]


def temp_name(final_name: str, pid: int) -> str:
    """A unique temp file name next to ``final_name`` carrying host and pid."""
    return f".~{final_name}~{host_name()}~{pid}~{secrets.token_hex(6)}.tmp"


@dataclass(frozen=True)
class TempName:
    """The parts of a temp file name: what it was to become, and who wrote it."""

    final_name: str
    host: str
    pid: int


def parse_temp_name(filename: str) -> TempName | None:
    """Parse a name made by :func:`temp_name`; None if it is not one."""
    match = _TEMP_RE.fullmatch(filename)
    if not match:
        return None
    return TempName(match["name"], match["host"], int(match["pid"]))


_LEGACY = re.compile(r"(?P<date>\d{8})(?:-(?P<time>\d{6}))?-(?P<prefix>[^/]+?)\.(?P<ext>json|jsonl|csv)")


def _stamp_time(stamp: str) -> datetime:
    """``YYYYMMDDHHMMSS`` (14 digits) as aware UTC, as ``strptime(stamp, "%Y%m%d%H%M%S")`` reads it, without its
    cost (every path read from a row is checked by name); ValueError for a date or time that does not exist."""
    return datetime(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]), int(stamp[8:10]), int(stamp[10:12]),
                    int(stamp[12:14]), tzinfo=timezone.utc)  # fmt: skip


def legacy_name(filename: str) -> tuple[datetime, str, str, bool] | None:
    """A name written by the seed's older tools: (UTC time, prefix, ext, day_precision), or None.

    ``20240115-080000-portfolio.json`` has second precision; ``20240115-traces.jsonl``
    only a day (00:00:00Z is taken).
    """
    match = _LEGACY.fullmatch(filename)
    if not match:
        return None
    try:
        stamp = match["date"] + (match["time"] or "000000")
        created = _stamp_time(stamp)
        check_time(created)
        validate_prefix(match["prefix"])
    except (ValueError, ValidationError):
        return None
    return created, match["prefix"], match["ext"], match["time"] is None


def writer_gone(temp: TempName, modified: float | None = None) -> bool:
    """True when a temp file's writer is known dead: on this host, no process has its PID; or, given the file's
    last ``modified`` time (seconds since the epoch), the process that has the PID now started after it, so the
    PID was reused (Linux's ``/proc``; elsewhere a live PID counts as the writer). False for another host's
    writer (it cannot be asked) and for a live one on this host."""
    if temp.host != host_name():
        return False
    try:
        os.kill(temp.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: alive, but maybe not the writer
        pass
    started = _started(temp.pid)
    return modified is not None and started is not None and started > modified + _START_SLACK


#: Seconds a process's start may seem to follow its own file's last change (/proc/stat's boot time is whole seconds).
_START_SLACK = 2.0


def _started(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch (``/proc/PID/stat``'s start time after boot, and
    ``/proc/stat``'s boot time: proc(5)); None where they cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            ticks = int(handle.read().rsplit(b")", 1)[1].split()[19])  # field 22; the name before ")" may hold spaces
        with open("/proc/stat", "rb") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith(b"btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def store_path_problem(path: object) -> str | None:
    """Why ``path`` is not a path an artifact row may hold (words that follow "it is"); None if it is one.

    A row's path is relative POSIX, without ``.``, ``..`` or empty parts, and
    is ``TYPE/NAME``, ``TYPE/YYYY/MM/NAME`` or ``TYPE/YYYY/MM/DD/NAME`` (a
    partition folder that matches the date in NAME: :func:`layout_of`), or
    ``TYPE/archived/…/NAME`` (NAME an artifact name of that type per
    :func:`parse_name`, or a legacy name per :func:`legacy_name`), or
    such a path under ``quarantine/`` (where reconcile may add ``.<8 hex>``).
    The one rule behind :func:`catalog.core.fs.row_file`: a path read from the
    database is checked by it before any file operation.
    """
    if not isinstance(path, str) or not path or len(path) > 512:
        return "not a store path (empty, too long or not text)"
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return "not a relative path inside the store (absolute, or with an empty, '.' or '..' part)"
    quarantined = parts[0] == QUARANTINE
    if quarantined:
        parts = parts[1:]
    if len(parts) < 2 or parts[0] not in TYPES:
        return f"not under a type folder ({', '.join(TYPES)}) or {QUARANTINE}/"
    *folders, name = parts
    names = [name, _QUARANTINE_SUFFIX.sub("", name)] if quarantined else [name]
    archived = len(folders) > 1 and folders[1] == "archived" and all(_FOLDER_RE.fullmatch(f) for f in folders[2:])
    if len(folders) > 1 and not archived and not any(layout_of("/".join(folders), n) for n in names):
        return (f"not directly in {folders[0]}/, nor in the partition folder its name's date gives, nor in "
                f"{folders[0]}/archived/")
    if not any(getattr(parse_name(n), "type", None) == folders[0] or legacy_name(n) is not None for n in names):
        return f"not named as an artifact of type {folders[0]} ({_show(name)})"
    return None
