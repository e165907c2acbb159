"""The explain report's rules, its input hash, its 18-column CSV rows and its console view."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from ..core.errors import ValidationError
from ..core.formats import format_time, jsonable
from ..core.text import pad, printable, width
from .explain import CONTRIBUTIONS, CSV_COLUMNS, GATES, MAX_REASONS, REPORT_TYPE, ExplainReport

# -- the rules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One broken rule: which asset (if any), which rule, and how."""

    symbol: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.symbol}: {self.message}" if self.symbol else self.message


def _non_finite(value: Any, where: str) -> list[str]:
    if isinstance(value, float):
        return [] if math.isfinite(value) else [where]
    if is_dataclass(value):
        return [p for f in fields(value) for p in _non_finite(getattr(value, f.name), f"{where}.{f.name}")]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _non_finite(v, f"{where}.{k}")]
    if isinstance(value, (tuple, list)):
        return [p for n, v in enumerate(value) for p in _non_finite(v, f"{where}[{n}]")]
    return []


def check_report(report: ExplainReport) -> list[Violation]:
    """Every rule of EXPLAIN_SCHEMA.md that ``report`` breaks (empty: consistent)."""
    found: list[Violation] = []
    for where in _non_finite(report, "$"):
        found.append(Violation(None, "finite numbers", f"{where} is not a finite number"))
    meta, universe = report.meta, report.universe
    if not (len(meta.input_hash) == 64 and all(c in "0123456789abcdef" for c in meta.input_hash)):
        found.append(Violation(None, "input hash", f"meta.input_hash {meta.input_hash[:70]!r} is not a SHA-256 of the "
                               "canonical inputs (see input_hash())"))  # fmt: skip
    if meta.report_type != REPORT_TYPE:
        found.append(Violation(None, "report type", f"meta.report_type is {meta.report_type!r}, not {REPORT_TYPE!r}"))
    counts = Counter(asset.symbol for asset in universe)
    for symbol, n in counts.items():
        if n > 1:
            found.append(Violation(symbol, "unique symbols", f"appears {n} times in the universe"))

    expected = {asset.symbol: rank for rank, asset in enumerate(sorted(universe, key=lambda a: (-a.score, a.symbol)), 1)}
    for position, asset in enumerate(universe, 1):
        gates = asset.gate_results
        all_passed = all(getattr(gates, name).passed for name in GATES)
        if gates.overall_result != all_passed:
            found.append(Violation(asset.symbol, "overall gate", f"overall_result is {gates.overall_result} but "
                                   f"{'all' if all_passed else 'not all'} five gates passed"))  # fmt: skip
        if (asset.decision == "included") != gates.overall_result:
            found.append(Violation(asset.symbol, "decision", f"decision is {asset.decision} but overall_result is "
                                   f"{gates.overall_result}"))  # fmt: skip
        if asset.rank != position:
            found.append(Violation(asset.symbol, "universe order", f"rank {asset.rank} at position {position}: "
                                   "the universe must be ordered by rank"))  # fmt: skip
        if counts[asset.symbol] == 1 and asset.rank != expected[asset.symbol]:
            found.append(Violation(asset.symbol, "rank follows score", f"rank {asset.rank} disagrees with its score "
                                   f"{asset.score:g}: expected {expected[asset.symbol]} (1 = highest, ties by symbol)"))  # fmt: skip
        parts = asset.factor_parts
        capped = min(parts.social, report.config.social_cap)
        if math.isfinite(capped) and not math.isclose(parts.social_capped, capped, rel_tol=1e-9, abs_tol=1e-9):
            found.append(Violation(asset.symbol, "social cap", f"social_capped is {parts.social_capped:g}, expected "
                                   f"min(social {parts.social:g}, social_cap {report.config.social_cap:g})"))  # fmt: skip
        attribution = asset.attribution
        for name in ("top_inclusion_reasons", "top_exclusion_reasons"):
            if len(getattr(attribution, name)) > MAX_REASONS:
                found.append(Violation(asset.symbol, "reasons", f"{name} has more than {MAX_REASONS} entries"))
        for factor, weight in attribution.weight_breakdown.items():
            if weight not in CONTRIBUTIONS:
                found.append(Violation(asset.symbol, "weight breakdown", f"weight_breakdown.{factor} is {weight!r}"))
    included = sum(asset.decision == "included" for asset in universe)
    for name, stated, actual in (
        ("assets_count", meta.assets_count, len(universe)),
        ("included_count", meta.included_count, included),
        ("excluded_count", meta.excluded_count, len(universe) - included),
    ):
        if stated != actual:
            found.append(Violation(None, "counts", f"meta.{name} is {stated}, the universe has {actual}"))
    return found


def require_consistent(report: ExplainReport) -> None:
    """Raise ValidationError naming the first broken rule (and how many more) if ``report`` is not consistent."""
    found = check_report(report)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ValidationError(f"explain report refused: {found[0]} [rule: {found[0].rule}]{more}")


# -- input hash, CSV ----------------------------------------------------------------------


def input_hash(inputs: Mapping[str, Any]) -> str:
    """SHA-256 (64 hex digits) of the canonical JSON of the scoring inputs (sorted keys, no whitespace).

    The same inputs give the same hash in any key order; any change of a value
    (type included: 1 is not 1.0) changes it. NaN and naive times raise ValidationError.
    """
    canonical = json.dumps(jsonable(inputs), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def csv_rows(report: ExplainReport) -> list[list[Any]]:
    """The 18-column CSV: the header, then one row per asset in universe order."""
    rows: list[list[Any]] = [list(CSV_COLUMNS)]
    for a in report.universe:
        p, m = a.factor_parts, a.microstructure
        rows.append([
            a.symbol, a.decision, a.score, a.rank, p.momentum, p.technical, p.volume, p.quality, p.social,
            a.gate_results.entry_gate.passed, m.spread_bps, m.depth_usd, m.vadr, a.catalyst_profile.heat_score,
            a.attribution.regime_influence, m.exchange, a.top_reason, a.data_quality.cache_hit_rate,
        ])  # fmt: skip
    return rows


# -- the console view -----------------------------------------------------------------------


def render(report: ExplainReport, violations: Sequence[Violation] = ()) -> str:
    """The report for a terminal: ranked table, failed gates and why, top reasons.

    Every text from the report is shown with control characters escaped
    (:func:`~catalog.core.text.printable`): a report cannot move the cursor
    or forge a line. Columns align in terminal cells (CJK and emoji are two).
    """
    p, meta, lines = printable, report.meta, []
    lines.append(f"Explain report {format_time(meta.timestamp)}  version {p(str(meta.version))}  "
                 f"regime {p(str(report.config.current_regime))}")  # fmt: skip
    lines.append(f"{meta.assets_count} assets: {meta.included_count} included, {meta.excluded_count} excluded"
                 + (f", {len(meta.skipped)} skipped" if meta.skipped else "") + f"   input_hash {p(str(meta.input_hash))}")
    if not report.universe:
        lines.append("")
        lines.append("(the universe is empty)")
    else:
        header = ("rank", "symbol", "decision", "score", "failed gates", "top reason")
        table = [header] + [
            tuple(map(p, (str(a.rank), a.symbol, a.decision, f"{a.score:.2f}",
                          ",".join(n.removesuffix("_gate") for n, _ in a.gate_results.failed()) or "-", a.top_reason)))
            for a in report.universe
        ]  # fmt: skip
        widths = [max(width(row[i]) for row in table) for i in range(len(header))]
        lines.append("")
        for row in table:
            lines.append("  ".join(pad(c, w, right=i in (0, 3)) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        failures = [(a, name, gate) for a in report.universe for name, gate in a.gate_results.failed()]
        if failures:
            lines.append("")
            lines.append("Failed gates:")
            for a, name, gate in failures:
                lines.append(f"  {pad(p(a.symbol), 12)} {p(name):<15} {gate.value:g} vs threshold {gate.threshold:g} "
                             f"({p(gate.reason)})")  # fmt: skip
        reasons = Counter(r for a in report.universe for r in a.attribution.top_inclusion_reasons + a.attribution.top_exclusion_reasons)
        if reasons:
            lines.append("")
            lines.append("Top reasons: " + ", ".join(f"{p(reason)} ×{n}" for reason, n in reasons.most_common(6)))
    for skipped in meta.skipped:
        lines.append(f"Skipped {p(skipped.symbol)}: {p(skipped.reason)}")
    if report.load_notes or violations:
        lines.append("")
        lines.append("Rules this report breaks (as written):")
        lines += [f"  - {p(note)}" for note in report.load_notes]
        lines += [f"  - {p(str(v))} [rule: {v.rule}]" for v in violations]
    return "\n".join(lines) + "\n"
