"""Operations: a health summary for schedulers (``status``) and online backups (``backup``)."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from . import audit
from .errors import StoreError, ValidationError
from .models import ChainHead
from .store import ARTIFACTS, Catalog

VERIFY_STALE = timedelta(days=7)
EXPIRY_SLACK = timedelta(days=1)


@dataclass
class Status:
    """What a dashboard shows, and what needs a person."""

    facts: dict[str, Any] = field(default_factory=dict)
    attention: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.facts, "needs_attention": bool(self.attention), "attention": list(self.attention)}


def _last(catalog: Catalog, action: str) -> Any:
    e = audit.EVENTS.c
    with catalog.db.read() as conn:
        return conn.execute(select(e.at, e.details).where(e.action == action).order_by(e.seq.desc()).limit(1)).first()


def status(catalog: Catalog, now: datetime | None = None) -> Status:
    """Ages of the last verify run and checkpoint, outstanding findings, open intents, expiry, limits."""
    from .limits import limits
    from .retention import _open_intents, plan

    now = now or datetime.now(timezone.utc)
    result = Status()
    verify_run = _last(catalog, "verify_run")
    if verify_run is None:
        result.facts["last_verify"] = None
        result.attention.append("no verify run recorded: run `catalog verify`")
    else:
        details = json.loads(verify_run.details)
        age = now - verify_run.at
        result.facts["last_verify"] = {"at": audit.iso_utc(verify_run.at), "age_hours": round(age.total_seconds() / 3600, 1),
                                       "failed": details["failed"], "missing": details["missing"]}  # fmt: skip
        if age > VERIFY_STALE:
            result.attention.append(f"the last verify run is {age.days} days old: run `catalog verify`")
        if details["failed"] or details["missing"]:
            result.attention.append("the last verify run found failures: run `catalog reconcile --deep`")
    checkpoint = _last(catalog, "checkpoint")
    result.facts["last_checkpoint"] = None if checkpoint is None else {
        "at": audit.iso_utc(checkpoint.at), "age_hours": round((now - checkpoint.at).total_seconds() / 3600, 1)}  # fmt: skip
    c = ARTIFACTS.c
    with catalog.db.read() as conn:
        counts = dict(conn.execute(select(c.status, func.count()).group_by(c.status)).all())
        head = conn.execute(select(ChainHead.seq, ChainHead.hash)).one()
    result.facts["artifacts"] = counts
    result.facts["chain_head"] = {"seq": head.seq, "hash": head.hash}
    outstanding = counts.get("missing", 0) + counts.get("quarantined", 0)
    result.facts["findings_outstanding"] = outstanding
    if outstanding:
        result.attention.append(f"{outstanding} artifacts are missing or quarantined: a person should look (`catalog ls --status missing`)")
    intents = _open_intents(catalog)
    result.facts["pending_retention_intents"] = len(intents)
    if intents:
        result.attention.append(f"{len(intents)} retention intents are unfinished: run `catalog retention apply --yes`")
    overdue = sum(1 for row in plan(catalog, now=now - EXPIRY_SLACK) if row.action in ("delete", "archive"))
    result.facts["past_expiry"] = overdue
    if overdue:
        result.attention.append(f"{overdue} artifacts are more than a day past expiry: run `catalog retention apply`")
    near = [row for row in limits(catalog) if row["level"] != "ok"]
    result.facts["limits"] = [{"name": r["name"], "level": r["level"]} for r in near]
    if any(r["level"] == "over" for r in near):
        result.attention.append("a folder or the store is over its limit: see `catalog limits`")
    return result


def backup(catalog: Catalog, output: Path) -> dict[str, Any]:
    """An online, consistent copy of the SQLite catalog, and the chain head it captured."""
    if not catalog.db.is_sqlite:
        raise ValidationError(
            "backup copies the embedded SQLite catalog; for PostgreSQL use `pg_dump --format=custom "
            "--file=catalog.dump DBNAME`, then `catalog audit checkpoint -o FILE` and keep both"
        )
    output = Path(os.path.abspath(output))
    if Path(os.path.realpath(output)).is_relative_to(os.path.realpath(catalog.base_dir)):
        raise ValidationError(f"backup {output} is inside the store; write it elsewhere")
    if output.exists():
        raise ValidationError(f"{output} already exists; a backup never overwrites")
    if not output.parent.is_dir():
        raise ValidationError(f"folder {output.parent} for the backup does not exist")
    tmp = output.with_name(f".{output.name}.tmp")
    source = sqlite3.connect(catalog.db.sqlite_path)
    try:
        target = sqlite3.connect(tmp)
        try:
            source.backup(target)  # SQLite's online backup: a consistent snapshot while writers go on
            head = target.execute("SELECT seq, hash FROM chain_head").fetchone()
        finally:
            target.close()
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"backup of {catalog.db.location} failed: {exc}") from None
    finally:
        source.close()
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, output)
    with catalog.db.write() as conn:
        audit.append_event(conn, "backup", actor=catalog.actor,
                           details={"file": str(output), "head_seq": head[0], "head_hash": head[1]})  # fmt: skip
    return {"file": str(output), "head_seq": head[0], "head_hash": head[1]}
