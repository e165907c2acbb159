"""What reconcile with ``fix`` does after the walk: match moved files, then repair the catalog, destroying no evidence.

Orphans are adopted (hashed; row and ``adopt`` event; one its writer recorded
since the walk is dropped from the report: no drift), missing rows marked
``missing``, moved rows follow their file, a lone primary of a linked pair
(see :mod:`catalog.ops.families`) gets its derived half regenerated, a lone
derived half is quarantined, and stale temps whose writer is gone are removed
(the only files reconcile deletes). Every row change goes through the unit of
work.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, select

from ..core import fs
from ..core.errors import CatalogError
from ..core.names import legacy_name, store_path_problem
from ..core.records import PublishedFile
from ..core.schema import ARTIFACTS
from ..core.store import Catalog
from ..core.vocabulary import QUARANTINE, READABLE
from .drift import Entry, Finding, Orphan, ReconcileReport
from .families import PairRule, pair_rule
from .write import record, record_unless_recorded


class Repairer:
    """The matching and fixing half of a reconcile run (the walk fills ``orphans``, ``missing`` and ``loose``)."""

    catalog: Catalog
    base: Path
    fix: bool
    now: float
    report: ReconcileReport
    orphans: list[Orphan]
    missing: list[Any]
    loose: list[tuple[Entry, str]]

    def _add(self, cls: str, path: str, reason: str, other: str | None = None) -> Finding:
        finding = Finding(cls, path, reason, other_path=other)
        self.report.findings.append(finding)
        return finding

    def _quarantine(self, rel: str) -> str:
        """Move a file into quarantine/ (never delete it); returns its new store path."""
        target = f"{QUARANTINE}/{rel}"
        if os.path.lexists(self.base / target):
            target = f"{QUARANTINE}/{rel}.{secrets.token_hex(4)}"
        fs.move_durably(self.base / rel, self.base / target, self.base)
        return target

    def _sha256(self, entry: Entry) -> str:
        """The SHA-256 of a file the walk found (a regular file then; read as every artifact is read)."""
        return fs.sha256_file(self.base, entry.path)[0] or ""

    def _change(self, row: Any, **change: Any) -> bool:
        """``change`` (as :meth:`Catalog.change_status`) to the walk's ``row`` if the catalog still has it at the
        status and path the walk read, checked in the change's own unit of work (its writers wait on the chain's
        lock): a row that retention, a writer or another repair moved on since is left to the next run. True if changed."""
        with self.catalog.change() as tx:
            now = tx.read(select(ARTIFACTS.c.status, ARTIFACTS.c.path).where(ARTIFACTS.c.id == row.id)).one()
            if (now.status, now.path) != (row.status, row.path):
                return False
            tx.artifacts.set_status(row.id, **change)
        return True

    # -- after the walk: matching and fixing ------------------------------------------

    def settle(self) -> None:
        """Pair missing rows with orphans (moved), recognise half pairs, then fix."""
        self.orphans.sort(key=lambda o: o.entry.path)  # the walk's order is the file system's
        self.loose.sort(key=lambda pair: pair[0].path)
        hashed = {id(o): self._sha256(o.entry) for o in self.orphans}
        by_sha: dict[str, list[Orphan]] = {}
        for orphan in self.orphans:
            by_sha.setdefault(hashed[id(orphan)], []).append(orphan)
        sizes = {row.size for row in self.missing}
        for entry, _ in self.loose:  # a missing row's file may have been moved (or renamed) anywhere
            if entry.size in sizes:
                loose = Orphan(entry, "", "", "", datetime.now(timezone.utc), True)
                by_sha.setdefault(self._sha256(entry), []).append(loose)
        moved: set[str] = set()
        still_missing = []
        for row in self.missing:
            candidates = by_sha.get(row.sha256, [])
            match = next((o for o in candidates if PurePosixPath(o.entry.path).name == PurePosixPath(row.path).name), None)
            match = match or (candidates[0] if candidates else None)
            if match is None:
                still_missing.append(row)
                continue
            candidates.remove(match)
            moved.add(match.entry.path)
            follows = self.fix and store_path_problem(match.entry.path) is None
            if follows and not self._change(row, action="move", status=row.status, path=match.entry.path,
                                            details={"by": "reconcile"}):  # fmt: skip
                continue  # the row moved on since the walk: the next run judges what is left
            finding = self._add("moved", match.entry.path, f"the file of {row.path} is now here (same SHA-256)", row.path)
            if follows:
                finding.fixed = "row follows the file"
            elif self.fix:  # a row only ever holds a store path: the file goes back where its row says it is
                fs.move_durably(self.base / match.entry.path, fs.row_file(self.base, row.path), self.base)
                finding.fixed = f"moved back to {row.path} (its row's path; {match.entry.path} is no artifact's path)"
        orphans = [o for o in self.orphans if o.entry.path not in moved]
        for entry, reason in self.loose:
            if entry.path not in moved:
                self._add("foreign", entry.path, reason)
        self._missing_rows(still_missing)
        self._orphans(orphans, hashed)

    def _missing_rows(self, rows: list[Any]) -> None:
        for row in rows:
            rule = pair_rule(row.type) if row.pair_id else None
            twin = rule.twin(row.path) if rule is not None else None
            twin_present = twin is not None and fs.row_file(self.base, twin).is_file()
            if rule is not None and twin is not None and twin_present and row.ext == rule.derived_ext:
                finding = self._add("half_pair", row.path, f"the {row.ext.upper()} of a linked pair is gone; its "
                                    f"{rule.primary_ext.upper()} is here", twin)  # fmt: skip
                if self.fix:
                    finding.fixed = self._regenerate(rule, row, twin)
            elif twin is not None and twin_present:
                finding = self._add("half_pair", twin, f"the {row.ext.upper()} of a linked pair is gone; this "
                                    f"{PurePosixPath(twin).suffix[1:].upper()} is all that is left", row.path)  # fmt: skip
                if self.fix:
                    self.catalog.change_status(row.id, action="missing", status="missing", details={"by": "reconcile"})
                    twin_row = self.catalog.find_path(twin)
                    target = self._quarantine(twin)
                    if twin_row is not None:
                        self.catalog.change_status(twin_row.id, action="quarantine", status="quarantined", path=target,
                                                   details={"reason": "lone half of a pair", "by": "reconcile"})  # fmt: skip
                    finding.fixed = f"{row.ext.upper()} row marked missing; the rest moved to {target}"
            else:
                if self.fix and not self._change(row, action="missing", status="missing", details={"by": "reconcile"}):
                    continue  # retention (or a repair) moved the row on since the walk: no loss
                finding = self._add("missing", row.path, "the catalog has an active row; the file is gone")
                if self.fix:
                    finding.fixed = "row marked missing"

    def _regenerate(self, rule: PairRule, row: Any, primary_path: str) -> str:
        """Rebuild a lost derived file from its primary, if that gives the recorded bytes."""
        data = rule.derive(fs.read_artifact(self.base, primary_path), self.catalog.settings.csv_precision)
        if hashlib.sha256(data).hexdigest() == row.sha256:
            path = fs.row_file(self.base, row.path)
            fs.publish(path.parent, path.name, data, base=self.base)
            self.catalog.change_status(row.id, action="regenerate", status=row.status,
                                       details={"from": primary_path, "by": "reconcile"})  # fmt: skip
            return f"{rule.derived_ext.upper()} regenerated from its {rule.primary_ext.upper()} (same bytes as recorded)"
        self.catalog.change_status(row.id, action="missing", status="missing", details={
            "by": "reconcile", "note": f"a regenerated {rule.derived_ext.upper()} would differ from the recorded one"})  # fmt: skip
        return f"row marked missing (a regenerated {rule.derived_ext.upper()} would not match the recorded bytes)"

    def _orphans(self, orphans: list[Orphan], hashed: dict[int, str]) -> None:
        paths = {o.entry.path for o in orphans}
        done: set[str] = set()
        for orphan in orphans:
            path = orphan.entry.path
            if path in done:
                continue
            rule = pair_rule(orphan.type) if not orphan.legacy else None
            twin = rule.twin(path) if rule is not None else None
            if twin is not None and twin in paths:  # a pair whose commit never happened
                pair = sorted([orphan, next(o for o in orphans if o.entry.path == twin)], key=lambda o: o.ext != rule.primary_ext)  # type: ignore[union-attr]
                found = [self._add("orphan", member.entry.path, "a complete pair without rows (its writer died before "
                                   "committing)") for member in pair]  # fmt: skip
                done.update(member.entry.path for member in pair)
                if self.fix:
                    self._adopted(found, "adopted", self._adopt(pair, hashed, pair_id=secrets.token_hex(16)))
                continue
            if rule is not None and twin is not None and not (self.base / twin).exists() and orphan.ext in (rule.primary_ext, rule.derived_ext):
                kind = orphan.ext.upper()
                if orphan.ext == rule.primary_ext:
                    finding = self._add("half_pair", path, f"a {rule.type} {kind} without rows and without its "
                                        f"{rule.derived_ext.upper()} twin", twin)  # fmt: skip
                    if self.fix:
                        fixed = self._adopt_half_pair(rule, orphan, hashed, twin)
                        self._adopted([finding], fixed or "", fixed is not None)
                else:
                    finding = self._add("half_pair", path, f"a {rule.type} {kind} without its "
                                        f"{rule.primary_ext.upper()}: it cannot be trusted alone", twin)  # fmt: skip
                    if self.fix:
                        finding.fixed = f"moved to {self._quarantine(path)}"
                done.add(path)
                continue
            partner = self.catalog.find_path(twin) if twin is not None and (self.base / twin).exists() else None
            if partner is not None and partner.pair_id is not None and self._lone(partner.pair_id):
                finding = self._add("half_pair", path, "the unrecorded other half of a linked pair", twin)
                if self.fix:
                    self._adopted([finding], "adopted and linked to its pair",
                                  self._adopt([orphan], hashed, pair_id=partner.pair_id))  # fmt: skip
                done.add(path)
                continue
            reason = "a legacy-named file without a row" if orphan.legacy else "a complete file without a row"
            finding = self._add("orphan", path, reason)
            if self.fix:
                self._adopted([finding], "adopted", self._adopt([orphan], hashed))

    def _adopted(self, findings: list[Finding], fixed: str, adopted: bool) -> None:
        """Say what the fix did; or, when its writer recorded the file between the walk and the fix (no adoption
        happened), drop the findings: not drift, as a row that moves between the walk's two reads."""
        for finding in findings:
            if adopted:
                finding.fixed = fixed
            else:
                self.report.findings.remove(finding)

    def _adopt_half_pair(self, rule: PairRule, orphan: Orphan, hashed: dict[int, str], twin: str) -> str | None:
        """Adopt a primary without its derived twin, regenerating the twin; None if its writer recorded it meanwhile."""
        try:
            data = rule.derive(fs.read_artifact(self.base, orphan.entry.path), self.catalog.settings.csv_precision)
        except CatalogError:
            if not self._adopt([orphan], hashed):
                return None
            return f"adopted alone (not a readable {rule.type} report, so no {rule.derived_ext.upper()})"
        target = self.base / twin
        fs.publish(target.parent, target.name, data, base=self.base)
        derived = Orphan(Entry(twin, len(data), self.now), rule.type, orphan.prefix, rule.derived_ext,
                          orphan.created_at, False)  # fmt: skip
        hashed[id(derived)] = hashlib.sha256(data).hexdigest()
        self._adopt([orphan, derived], hashed, pair_id=secrets.token_hex(16), regenerated=twin)
        return f"adopted; its {rule.derived_ext.upper()} regenerated and linked"

    def _adopt(self, orphans: list[Orphan], hashed: dict[int, str], pair_id: str | None = None,
               regenerated: str | None = None) -> bool:  # fmt: skip
        """Record ``orphans`` (rows and ``adopt`` events): True; False when nothing was recorded because their rows
        exist already, with the same SHA-256 (their writer recorded them since the walk). CommitError otherwise."""
        files = []
        for o in orphans:
            details: dict[str, Any] = {"by": "reconcile", "mtime": datetime.fromtimestamp(o.entry.mtime, timezone.utc).isoformat()}
            if o.legacy:
                details["legacy_name"] = True
                details["precision"] = "day" if legacy_name(PurePosixPath(o.entry.path).name)[3] else "second"  # type: ignore[index]
            if regenerated == o.entry.path:
                details["regenerated_from"] = orphans[0].entry.path
            files.append(PublishedFile(
                path=o.entry.path, type=o.type, prefix=o.prefix, ext=o.ext, created_at=o.created_at,
                size=o.entry.size, sha256=hashed[id(o)], pair_id=pair_id, action="adopt", details=details,
            ))  # fmt: skip
        return record_unless_recorded(self.catalog, files) is not None

    def _lone(self, pair_id: str) -> bool:
        with self.catalog.read() as conn:
            return conn.execute(select(func.count()).where(ARTIFACTS.c.pair_id == pair_id)).scalar_one() == 1

    def lone_pairs(self, types: tuple[str, ...] = ()) -> None:
        """Rows of a linked pair whose other half was never recorded (say the disk filled between the two files).

        A lone primary gets its derived half regenerated (``fix``) and recorded
        with the same pair id; a lone derived half without its primary cannot be
        trusted alone and is reported for a person.
        """
        c = ARTIFACTS.c
        lone = select(c.pair_id).where(c.pair_id.is_not(None)).group_by(c.pair_id).having(func.count() == 1)
        query = select(c.id, c.path, c.type, c.ext, c.pair_id, c.prefix, c.created_at).where(
            c.pair_id.in_(lone), c.status.in_(READABLE))
        if types:
            query = query.where(c.type.in_(types))
        with self.catalog.read() as conn:
            rows = conn.execute(query.order_by(c.path)).all()
        seen = {f.path for f in self.report.findings} | {f.other_path for f in self.report.findings}
        for row in rows:
            rule = pair_rule(row.type)
            if rule is None or row.path in seen or store_path_problem(row.path) is not None:
                continue  # (a row whose path is no store path is never acted on: `audit verify` reports it)
            twin = rule.twin(row.path)
            if row.ext != rule.primary_ext:
                self._add("half_pair", row.path, f"a linked {row.ext.upper()} whose {rule.primary_ext.upper()} was "
                          "never recorded: it cannot be trusted alone", twin)  # fmt: skip
                continue
            finding = self._add("half_pair", row.path, f"a linked {row.ext.upper()} whose {rule.derived_ext.upper()} "
                                "was never recorded", twin)  # fmt: skip
            if self.fix:
                finding.fixed = self._complete_pair(rule, row, twin)

    def _complete_pair(self, rule: PairRule, row: Any, twin: str) -> str:
        target = fs.row_file(self.base, twin)  # made from the row's path, which lone_pairs checked
        data = rule.derive(fs.read_artifact(self.base, row.path), self.catalog.settings.csv_precision)
        if os.path.lexists(target):
            try:
                same = fs.sha256_file(self.base, twin, len(data))[0] == hashlib.sha256(data).hexdigest()
            except fs.UnsafePath:
                same = False
            if not same:
                return f"not fixed: {twin} holds other bytes (left for a person)"
        else:
            fs.publish(target.parent, target.name, data, base=self.base)
        record(self.catalog, [PublishedFile(
            path=twin, type=row.type, prefix=row.prefix, ext=rule.derived_ext, created_at=row.created_at,
            size=len(data), sha256=hashlib.sha256(data).hexdigest(), pair_id=row.pair_id, action="adopt",
            details={"by": "reconcile", "regenerated_from": row.path},
        )])  # fmt: skip
        return f"its {rule.derived_ext.upper()} regenerated and linked"

    def stale_temps(self) -> None:
        """With ``fix``: remove the temp files whose writer is gone (the only files reconcile deletes)."""
        if not self.fix:
            return
        for finding in self.report.findings:
            if finding.cls == "stale_temp":
                finding.fixed = "removed" if fs.unlink_durably(self.base / finding.path) else "already gone"
