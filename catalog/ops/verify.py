"""Verify: re-read artifact files and check size and SHA-256 against the catalog, as a recorded run.

Scope: active and archived artifacts, optionally of some types or created
since a time. ``sample`` checks a reproducible random fraction (an artifact is
in the sample when SHA-256(seed:id) falls below the fraction, so the same seed
picks the same artifacts whatever the order); ``subset=(k, T)`` checks the
artifacts whose id is k-1 modulo T, so T runs cover every artifact exactly once.

Each run is a ``verify_runs`` row (scope, sample, counts, duration) with one
``verify_results`` row per artifact checked, one ``verify_run`` event, and one
``verify_failure`` event per failed or missing file. Rows are read in keyset
batches, each in its own short transaction: an hours-long verify never holds
one read transaction (which would starve SQLite's checkpoints). A batch's
folders are opened once and held while its files are read
(:class:`catalog.core.fs.HeldFolders`): no symlink is followed, as ever.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from ..core.chain import iso_utc
from ..core.errors import Param, ValidationError
from ..core.formats import format_time
from ..core.fs import HeldFolders, UnsafePath
from ..core.records import Outcome
from ..core.schema import ARTIFACTS, VERIFY_RESULTS, VERIFY_RUNS
from ..core.store import Catalog
from ..core.vocabulary import READABLE
from .checkpoints import auto_checkpoint
from .retention import lifecycle_change

BATCH = 500


@dataclass(frozen=True)
class Scope:
    """Which artifacts a run checks: of ``types``, created ``since``, and a ``sample`` fraction or a ``subset`` (k, T).

    Raises ValidationError for a sample outside (0, 1], a subset without
    1 <= k <= T, or both together.
    """

    types: tuple[str, ...] = ()
    since: datetime | None = None
    sample: float | None = None
    seed: int | None = None
    subset: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.sample is not None and not 0 < self.sample <= 1:
            raise ValidationError(Param("sample"), f" must be a fraction above 0 and at most 1, not {self.sample}",
                                  value=self.sample)  # fmt: skip
        if self.sample is not None and self.subset is not None:
            raise ValidationError(Param("sample"), " and ", Param("subset"), " cannot be combined")
        if self.subset is not None:
            k, total = self.subset
            if not (total >= 1 and 1 <= k <= total):
                raise ValidationError(Param("subset"), f" must be N/T with 1 <= N <= T, not {k}/{total}",
                                      value=self.subset)  # fmt: skip

    def picks(self, artifact_id: int, seed: int) -> bool:
        """Whether the run checks this artifact: id modulo T is k-1, or SHA-256(seed:id) is below the fraction."""
        if self.subset is not None:
            k, total = self.subset
            return artifact_id % total == k - 1
        if self.sample is not None:
            digest = hashlib.sha256(f"{seed}:{artifact_id}".encode()).digest()
            return int.from_bytes(digest[:8], "big") < self.sample * 2**64
        return True

    def to_dict(self, seed: int | None) -> dict[str, Any]:
        """Plain data as recorded with the run: types, since (UTC ISO-8601), sample, ``seed``, subset as ``"k/T"``."""
        return {"types": list(self.types), "since": iso_utc(self.since) if self.since else None,
                "sample": self.sample, "seed": seed, "subset": f"{self.subset[0]}/{self.subset[1]}" if self.subset else None}  # fmt: skip


def parse_subset(text: str) -> tuple[int, int]:
    """``"3/7"`` -> (3, 7); ValidationError unless it is k/T with 1 <= k <= T."""
    try:
        k, total = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValidationError(Param("subset"), " must look like 3/7 (this run's part / number of parts), not "
                              f"{text[:20]!r}", value=text) from None  # fmt: skip
    Scope(subset=(k, total))  # validates
    return k, total


@dataclass
class VerifyReport:
    """What a verify run found: counts, each failed or missing file (path, reason), the duration in seconds."""

    run_id: int
    scope: dict[str, Any]
    checked: int = 0
    ok: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    #: Files gone because retention deleted or archived them while the run went on: not a loss.
    skipped: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def clean(self) -> bool:
        """True if no file failed and none was missing."""
        return not self.failed and not self.missing

    def to_dict(self) -> dict[str, Any]:
        """Plain data with ``clean``; ``duration_s`` rounded to milliseconds."""
        return {"run_id": self.run_id, "scope": self.scope, "checked": self.checked, "ok": self.ok,
                "failed": self.failed, "missing": self.missing, "skipped": self.skipped,
                "duration_s": round(self.duration_s, 3),
                "clean": self.clean}  # fmt: skip


def _hash(folders: HeldFolders, row: Any) -> tuple[str | None, int] | str | None:
    """(SHA-256, size) of an artifact's file; None if it is gone; why it is refused (:class:`UnsafePath`), in words."""
    try:
        return folders.sha256_row(row.path, row.size)  # a path read from the database: checked before the file is opened
    except (FileNotFoundError, NotADirectoryError):
        return None
    except UnsafePath as exc:
        return exc.reason


def _rows(catalog: Catalog, scope: Scope) -> Iterator[Sequence[Any]]:
    c = ARTIFACTS.c
    where: list[Any] = [c.status.in_(READABLE)]
    if scope.types:
        where.append(c.type.in_(scope.types))
    if scope.since is not None:
        where.append(c.created_at >= scope.since)
    last = 0
    while True:
        with catalog.read() as conn:
            rows = conn.execute(
                select(c.id, c.path, c.size, c.sha256).where(c.id > last, *where).order_by(c.id).limit(BATCH)
            ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def verify(
    catalog: Catalog, scope: Scope = Scope(), *, workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:  # fmt: skip
    """Check the artifacts in ``scope``; record the run, its results and its events. Returns a :class:`VerifyReport`.

    ``workers`` threads (1-64, else ValidationError) hash files in parallel;
    ``progress(files, bytes)`` is called after each file. A sample without a
    seed gets a random one, recorded with the run. Ends with a checkpoint if
    one is configured.
    """
    if not 1 <= workers <= 64:
        raise ValidationError(Param("workers"), f" must be from 1 to 64, not {workers}", value=workers)
    seed = scope.seed if scope.seed is not None else (secrets.randbits(31) if scope.sample is not None else None)
    scope_data = scope.to_dict(seed)
    started = datetime.now(timezone.utc)
    clock = time.monotonic()
    with catalog.change() as tx:
        run_id = tx.verify_runs.start(started_at=started, scope=json.dumps(scope_data, sort_keys=True),
                                      sample=scope.sample, subset=scope_data["subset"])  # fmt: skip
    report = VerifyReport(run_id, scope_data)
    pending: list[Outcome] = []  # results not yet recorded
    # one worker hashes here, in this thread: no pool, no hand-over to a thread (and back) per file
    threads = ThreadPoolExecutor(max_workers=workers) if workers > 1 else nullcontext(None)
    with HeldFolders(catalog.base_dir) as folders, threads as pool:  # threads end first
        for rows in _rows(catalog, scope):
            chosen = [row for row in rows if scope.picks(row.id, seed or 0)]
            results = (map if pool is None else pool.map)(lambda row: _hash(folders, row), chosen)
            outcomes = []
            for row, found in zip(chosen, results):
                report.checked += 1
                if progress:
                    progress(1, row.size)
                why = lifecycle_change(catalog, row.id, row.path) if found is None else None
                if why is not None:  # a lifecycle change, not a loss
                    outcome, detail = "skipped", why
                    report.skipped.append({"path": row.path, "reason": detail})
                elif found is None:
                    outcome, detail = "missing", "the file is gone"
                    report.missing.append({"path": row.path, "reason": detail})
                elif isinstance(found, str):  # a symlink, a FIFO…: never read, so never matching
                    outcome, detail = "failed", found
                    report.failed.append({"path": row.path, "reason": detail})
                elif found != (row.sha256, row.size):
                    outcome = "failed"
                    detail = (f"size {found[1]} (recorded {row.size})" if found[0] is None else
                              f"SHA-256 {found[0][:12]}… (recorded {row.sha256[:12]}…)")  # fmt: skip
                    report.failed.append({"path": row.path, "reason": detail})
                else:
                    outcome, detail = "ok", None
                    report.ok += 1
                outcomes.append(Outcome(row.id, row.path, outcome, detail))
            folders.close()  # each batch's folders are opened afresh: none is held for a whole run
            if pending:  # the batch before: one short unit of work per batch
                with catalog.change() as tx:
                    tx.verify_runs.add_results(run_id, pending)
            pending = outcomes
    report.duration_s = time.monotonic() - clock
    with catalog.change() as tx:  # the last batch's results and the run's end: one commit
        if pending:
            tx.verify_runs.add_results(run_id, pending)
        tx.verify_runs.finish(run_id, checked=report.checked, ok=report.ok, failed=len(report.failed),
                              missing=len(report.missing), duration_s=report.duration_s, scope=scope_data)  # fmt: skip
    auto_checkpoint(catalog)
    return report


@dataclass(frozen=True)
class VerifyRunRecord:
    """One recorded verify run. Times are aware UTC; ``duration_s`` in seconds (None while unfinished)."""

    run_id: int
    started_at: datetime
    finished_at: datetime | None
    scope: dict[str, Any]
    checked: int
    ok: int
    failed: int
    missing: int
    duration_s: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain data with times as ISO-8601 UTC text and the duration rounded to milliseconds."""
        return {"run_id": self.run_id, "started_at": format_time(self.started_at),
                "finished_at": format_time(self.finished_at) if self.finished_at else None, "scope": self.scope,
                "checked": self.checked, "ok": self.ok, "failed": self.failed, "missing": self.missing,
                "duration_s": None if self.duration_s is None else round(self.duration_s, 3)}  # fmt: skip


def history(catalog: Catalog, limit: int | None = None) -> list[VerifyRunRecord]:
    """Recorded runs, newest first (at most ``limit``)."""
    query = select(VERIFY_RUNS).order_by(VERIFY_RUNS.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with catalog.read() as conn:
        rows = conn.execute(query).all()
    return [VerifyRunRecord(r.id, r.started_at, r.finished_at, json.loads(r.scope), r.checked, r.ok, r.failed,
                            r.missing, r.duration_s) for r in rows]  # fmt: skip


def artifact_results(catalog: Catalog, artifact_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """One artifact's outcomes in the recorded verify runs, newest run first (at most ``limit``).

    Each: ``run_id``, ``started_at`` (ISO-8601 UTC), ``outcome`` (ok, failed, missing, skipped) and ``detail``.
    """
    r, v = VERIFY_RESULTS.c, VERIFY_RUNS.c
    query = (select(r.run_id, v.started_at, r.outcome, r.detail).join_from(VERIFY_RESULTS, VERIFY_RUNS, r.run_id == v.id)
             .where(r.artifact_id == artifact_id).order_by(r.run_id.desc()).limit(limit))  # fmt: skip
    with catalog.read() as conn:
        rows = conn.execute(query).all()
    return [{"run_id": row.run_id, "started_at": format_time(row.started_at), "outcome": row.outcome,
             "detail": row.detail} for row in rows]  # fmt: skip
