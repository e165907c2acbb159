"""Directory limits, as SQL over the catalog: no folder is ever listed to answer them.

Per real folder (archive folders included): the files the catalog says are on
disk there (active, archived, quarantined) and their bytes, against
``limits.max_files_per_dir`` and ``limits.max_dir_bytes``; the whole store
against ``limits.max_store_bytes``. At 80 % a limit is ``warn``, above 100 %
``over``. (Writers keep ``folder_usage`` in step inside the unit of work and
log a warning when a write crosses 80 %.) Each partition folder of the
``month`` and ``day`` layouts is a folder of its own here.

A folder at ``warn`` or ``over`` comes with :class:`LayoutAdvice`: the write
rate of its type observed in the catalog, how many files each folder would hold
under each layout over the type's retention period at that rate, and the
coarsest layout that keeps every folder below the warning level.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from ..core.crossings import WARN_AT
from ..core.schema import ARTIFACTS
from ..core.store import Catalog
from ..core.totals import total_rows
from ..core.vocabulary import LAYOUTS, ON_DISK

LEVELS = ("ok", "warn", "over")
#: The recent history a type's write rate is measured over (up to its newest artifact).
RATE_WINDOW = timedelta(days=7)
#: Days one folder gathers files for, per layout (None: every day of the retention period); a month at its longest.
_FOLDER_DAYS: dict[str, int | None] = {"flat": None, "month": 31, "day": 1}


@dataclass(frozen=True)
class LayoutAdvice:
    """Which layout keeps a type's folders under ``limits.max_files_per_dir``, from its observed write rate.

    ``per_day``: files of the type written per day over its recent history
    (:data:`RATE_WINDOW` up to its newest artifact, every status counted: a
    deleted file was written too); ``retention_days`` its period (None: kept
    forever); ``per_folder``: files one folder holds at that rate under each
    layout (None: without end); ``recommended``: the coarsest layout whose
    folders stay below the warning level (80 %), None if even ``day`` does not;
    ``current``: the store's layout; ``text``: all that in one line.
    """

    type: str
    per_day: float
    retention_days: int | None
    per_folder: dict[str, int | None]
    recommended: str | None
    current: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"type": self.type, "per_day": self.per_day, "retention_days": self.retention_days,
                "per_folder": self.per_folder, "recommended": self.recommended, "current": self.current,
                "text": self.text}  # fmt: skip


def write_rate(catalog: Catalog, artifact_type: str) -> float:
    """Files of ``artifact_type`` written per day over its recent history (see :class:`LayoutAdvice`); 0.0 for none."""
    c = ARTIFACTS.c
    with catalog.read() as conn:
        newest = conn.execute(select(func.max(c.created_at)).where(c.type == artifact_type)).scalar()
        if newest is None:
            return 0.0
        count, oldest = conn.execute(
            select(func.count(), func.min(c.created_at)).where(c.type == artifact_type, c.created_at > newest - RATE_WINDOW)
        ).one()  # fmt: skip
    span = (newest - oldest).total_seconds() / 86400
    # n evenly spaced files span n - 1 intervals; a history shorter than a day counts as one day
    return round((count - 1) / span if span >= 1 else float(count), 1)


def _type_of(folder: str) -> str:
    return folder.split("/", 1)[0]


def layout_advice(catalog: Catalog, folder: str, *, per_day: float | None = None) -> LayoutAdvice:
    """:class:`LayoutAdvice` for the folder ``folder`` (a type folder, a partition or an archive folder) of the store.

    ``per_day``: the type's :func:`write_rate`, if the caller has it already (else it is measured here).
    """
    settings = catalog.settings
    artifact_type = _type_of(folder)
    if per_day is None:
        per_day = write_rate(catalog, artifact_type)
    days = settings.retention[artifact_type].days if artifact_type in settings.retention else None
    archive = folder.startswith(f"{artifact_type}/archived")  # kept for good, a month (day layout: a day) a folder
    per_folder: dict[str, int | None] = {}
    for layout in LAYOUTS:
        span = _FOLDER_DAYS["month" if archive and layout == "flat" else layout]
        gathered = [d for d in (span, None if archive else days) if d is not None]
        per_folder[layout] = round(per_day * min(gathered)) if gathered else None
    limit = settings.limits.max_files_per_dir
    fits = [layout for layout in LAYOUTS if (n := per_folder[layout]) is not None and n < WARN_AT * limit]
    recommended = fits[0] if fits else None
    period = "kept forever" if days is None or archive else f"{days} days"
    held = per_folder["flat"]
    text = f"{folder}/: {per_day:,.0f} files/day" + (f", {held:,} over {period}" if held is not None and not archive else f", {period}")
    if recommended is None:
        text += f"; no layout fits: even day holds {per_folder['day']:,} per folder (raise limits.max_files_per_dir)"
    else:
        text += f"; layout: {recommended} keeps each folder under {limit:,} ({per_folder[recommended]:,} per folder)"
        month = per_folder["month"]
        if recommended == "day" and month is not None:  # say why not month
            text += f"; month would hold {month:,} per folder ({'over' if month > limit else 'near'} the limit)"
    if settings.layout == recommended and not archive:
        text += f" (layout is {recommended} already: new files go to partitions; this folder shrinks as retention removes its files)"
    return LayoutAdvice(artifact_type, per_day, days, per_folder, recommended, settings.layout, text)


#: :class:`LayoutAdvice` as flat columns (CSV): the JSON's ``layout_advice`` fields, ``per_folder`` one column a layout.
ADVICE_COLUMNS = ("layout_advice.type", "layout_advice.per_day", "layout_advice.retention_days",
                  *(f"layout_advice.per_folder.{layout}" for layout in LAYOUTS),
                  "layout_advice.recommended", "layout_advice.current", "layout_advice.text")  # fmt: skip


def _level(used: int, limit: int) -> str:
    return "over" if used > limit else "warn" if used >= WARN_AT * limit else "ok"


@dataclass(frozen=True)
class LimitRow:
    """One folder's (or the store's) usage against its limits: files and bytes; ``level`` ok, warn or over."""

    scope: str  # folder | store
    name: str
    files: int
    max_files: int | None
    bytes: int
    max_bytes: int
    level: str
    #: For a folder at warn or over: the layout that fits its type's write rate (None otherwise).
    advice: LayoutAdvice | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data; ``layout_advice`` is :meth:`LayoutAdvice.to_dict` or None."""
        return {"scope": self.scope, "name": self.name, "files": self.files, "max_files": self.max_files,
                "bytes": self.bytes, "max_bytes": self.max_bytes, "level": self.level,
                "layout_advice": None if self.advice is None else self.advice.to_dict()}  # fmt: skip

    def to_flat_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` with ``layout_advice`` as the flat :data:`ADVICE_COLUMNS` (all None without advice): for CSV."""
        data = self.to_dict()
        advice = data.pop("layout_advice") or {}
        flat = {f"layout_advice.{key}": value for key, value in advice.items() if key != "per_folder"}
        flat.update({f"layout_advice.per_folder.{layout}": n for layout, n in advice.get("per_folder", {}).items()})
        return {**data, **{column: flat.get(column) for column in ADVICE_COLUMNS}}


def limits(catalog: Catalog) -> list[LimitRow]:
    """One row per folder (sorted) and a last one for the store: files and bytes against the configured limits;
    a folder at warn or over comes with :class:`LayoutAdvice` (its type's write rate measured once, however many
    of the type's partitions need advice)."""
    settings = catalog.settings.limits
    c = ARTIFACTS.c
    with catalog.read() as conn:
        rows = total_rows(conn, c.size, lambda sums: select(c.folder, func.count(), *sums)
                          .where(c.status.in_(ON_DISK)).group_by(c.folder).order_by(c.folder))  # fmt: skip
    out, total_files, total_bytes = [], 0, 0
    rates: dict[str, float] = {}  # write_rate per type
    for folder, files, size in rows:
        total_files += files
        total_bytes += size
        level = max(_level(files, settings.max_files_per_dir), _level(size, settings.max_dir_bytes), key=LEVELS.index)
        advice = None
        if level != "ok" and not folder.startswith("quarantine"):
            kind = _type_of(folder)
            if kind not in rates:
                rates[kind] = write_rate(catalog, kind)
            advice = layout_advice(catalog, folder, per_day=rates[kind])
        out.append(LimitRow("folder", folder, files, settings.max_files_per_dir, size, settings.max_dir_bytes, level, advice))
    out.append(LimitRow("store", str(catalog.base_dir), total_files, None, total_bytes, settings.max_store_bytes,
                        _level(total_bytes, settings.max_store_bytes)))  # fmt: skip
    return out
