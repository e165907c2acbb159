"""Operations: a health summary for schedulers (``status``) and online backups (``backup``)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ..core import fs
from ..core.errors import Remedy, StoreError, ValidationError
from ..core.formats import format_time
from ..core.schema import ARTIFACTS, CHAIN_HEAD, EVENTS
from ..core.store import Catalog
from .checkpoints import folder_problems
from .findings import open_findings
from .keys import configured_signer
from .limits import limits
from .retention import open_intents, plan

#: A verify run older than this needs a person.
VERIFY_STALE = timedelta(days=7)
#: Artifacts more than this past their expiry need a person (retention is not running).
EXPIRY_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class Attention:
    """One thing that needs a person: what, and the next step (:class:`Remedy`)."""

    message: str
    remedy: Remedy | None = None


@dataclass
class Status:
    """What a dashboard shows (``facts``), and what needs a person (``attention``)."""

    facts: dict[str, Any] = field(default_factory=dict)
    attention: list[Attention] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the facts, ``needs_attention`` and the attention messages."""
        return {**self.facts, "needs_attention": bool(self.attention), "attention": [a.message for a in self.attention]}


def _last(catalog: Catalog, action: str) -> Any:
    e = EVENTS.c
    with catalog.read() as conn:
        return conn.execute(select(e.at, e.details).where(e.action == action).order_by(e.seq.desc()).limit(1)).first()


def status(catalog: Catalog, now: datetime | None = None) -> Status:
    """Ages of the last verify run and checkpoint, whether checkpoints are signed, outstanding findings, open
    intents, expiry, limits.

    Returns a :class:`Status`; ages are in hours, ``now`` defaults to the real clock (UTC).
    """
    now = now or datetime.now(timezone.utc)
    skew = catalog.settings.max_clock_skew  # how far ahead of this host's clock a time may be before it is "future"
    result = Status()
    need = result.attention.append
    verify_run = _last(catalog, "verify_run")
    if verify_run is None:
        result.facts["last_verify"] = None
        need(Attention("no verify run recorded", Remedy.VERIFY))
    else:
        details = json.loads(verify_run.details)
        age = now - verify_run.at
        result.facts["last_verify"] = {"at": format_time(verify_run.at), "age_hours": round(age.total_seconds() / 3600, 1),
                                       "failed": details["failed"], "missing": details["missing"]}  # fmt: skip
        if age < -skew:  # a verify dated in the future is no evidence of a recent check
            need(Attention(f"the last verify run is dated {format_time(verify_run.at)}, in the future: a clock was "
                           "wrong, so it does not count as recent", Remedy.VERIFY))  # fmt: skip
        elif age > VERIFY_STALE:
            need(Attention(f"the last verify run is {age.days} days old", Remedy.VERIFY))
    with catalog.read() as conn:
        latest = conn.execute(select(func.max(EVENTS.c.at))).scalar()
    if latest is not None and latest - now > skew:
        need(Attention(f"the audit log has events dated up to {format_time(latest)}, in the future: a writer's "
                       "clock was wrong; a person should look"))  # fmt: skip
    checkpoint = _last(catalog, "checkpoint")
    result.facts["last_checkpoint"] = None if checkpoint is None else {
        "at": format_time(checkpoint.at), "age_hours": round((now - checkpoint.at).total_seconds() / 3600, 1),
        "signed_by": json.loads(checkpoint.details).get("key")}  # fmt: skip
    try:
        signer = configured_signer(catalog.settings)
        result.facts["evidence"] = "unsigned: no signing key (audit.signing_key)" if signer is None else \
            f"signed by {signer.verifier.label}"  # fmt: skip
    except ValidationError as exc:
        result.facts["evidence"] = "unsigned: the signing key is refused"
        need(Attention(f"checkpoints cannot be signed: {exc}"))
    for problem in folder_problems(catalog):  # a configured folder that is missing, empty or has lost a checkpoint
        need(Attention(problem.message))
    c = ARTIFACTS.c
    with catalog.read() as conn:
        counts = {row.status: row.n for row in conn.execute(select(c.status, func.count().label("n")).group_by(c.status))}
        head = conn.execute(select(CHAIN_HEAD.c.seq, CHAIN_HEAD.c.hash)).one()
    result.facts["artifacts"] = counts
    result.facts["chain_head"] = {"seq": head.seq, "hash": head.hash}
    findings = open_findings(catalog)  # open until re-checked and passed, or resolved with a reason
    result.facts["findings_outstanding"] = len(findings)
    result.facts["findings"] = dict(sorted(Counter(f.kind for f in findings).items()))
    if findings:
        kinds = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in result.facts["findings"].items())
        need(Attention(f"{len(findings)} findings are open ({kinds})", Remedy.FINDINGS))
    intents = open_intents(catalog)
    result.facts["pending_retention_intents"] = len(intents)
    if intents:
        need(Attention(f"{len(intents)} retention intents are unfinished", Remedy.FINISH_RETENTION))
    overdue = sum(1 for row in plan(catalog, now=now - EXPIRY_SLACK) if row.action in ("delete", "archive"))
    result.facts["past_expiry"] = overdue
    if overdue:
        need(Attention(f"{overdue} artifacts are more than a day past expiry", Remedy.APPLY_RETENTION))
    near = [row for row in limits(catalog) if row.level != "ok"]
    result.facts["limits"] = [{"name": r.name, "level": r.level, "layout_advice": None if r.advice is None else r.advice.text}
                              for r in near]  # fmt: skip
    over = [r for r in near if r.level == "over"]
    if over:
        advice = "; ".join(r.advice.text for r in over if r.advice is not None)
        need(Attention("a folder or the store is over its limit" + (f" ({advice})" if advice else ""), Remedy.LIMITS))
    return result


@dataclass(frozen=True)
class BackupRecord:
    """A finished backup: the file written and the chain head (seq, hash) it captured."""

    file: Path
    head_seq: int
    head_hash: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"file": str(self.file), "head_seq": self.head_seq, "head_hash": self.head_hash}


def backup(catalog: Catalog, output: Path) -> BackupRecord:
    """An online, consistent copy of the SQLite catalog (writers may go on), and the chain head (seq, hash) it holds.

    The copy is written in a private folder beside ``output`` and linked to
    it without clobbering (:func:`catalog.core.fs.new_file_beside`: mode 0666
    less the umask, the file and its folder fsynced), then recorded as a
    ``backup`` event. Raises ValidationError for PostgreSQL (remedy: its own
    tools), an output inside the store, existing, or in a missing folder;
    CollisionError (a ValidationError) if another backup took ``output``
    meanwhile; CatalogDatabaseError, before anything is written, if this
    user may not record the event; StoreError if ``output``'s folder cannot
    be written or SQLite's backup fails.
    """
    if not catalog.db.is_sqlite or catalog.db.sqlite_path is None:
        raise ValidationError("backup copies the embedded SQLite catalog", remedy=Remedy.PG_DUMP)
    catalog.db.check_writable()  # it records a backup event: a user who may only read is told so before any copy
    output = fs.outside_store(catalog.base_dir, output, "backup")
    if os.path.lexists(output):
        raise ValidationError(f"{output} already exists; a backup never overwrites")
    if not output.parent.is_dir():
        raise ValidationError(f"folder {output.parent} for the backup does not exist")
    with fs.new_file_beside(output) as tmp:  # durable under its final name before the event that names it
        source = sqlite3.connect(catalog.db.sqlite_path)
        try:
            target = sqlite3.connect(tmp)
            try:
                source.backup(target)  # SQLite's online backup: a consistent snapshot while writers go on
                head = target.execute("SELECT seq, hash FROM chain_head").fetchone()
            finally:
                target.close()
        except sqlite3.Error as exc:
            raise StoreError(f"backup of {catalog.db.location} to {output} failed: {exc}") from None
        finally:
            source.close()
    with catalog.change() as tx:
        tx.events.append("backup", details={"file": str(output), "head_seq": head[0], "head_hash": head[1]})
    return BackupRecord(output, head[0], head[1])
