"""``catalog demo``: one synthetic scanner cycle written through the real API.

The synthetic scorer lives here, apart from the product code: deterministic
for a seed, it scores a universe of made-up assets with the regime-weighted
factor model of EXPLAIN_SCHEMA.md, so both included and excluded assets
appear. Every run puts a fresh run id into its prefixes, so two demos started
in the same second neither fail nor overwrite each other.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..core.chain import AuditReport
from ..core.records import ArtifactRecord
from ..core.settings import Settings
from ..core.store import Catalog
from ..ops.query import iter_artifacts
from . import explain as ex
from .explain_rules import input_hash
from .health import HealthMetrics, ProviderMetrics, Span
from .ledger import Portfolio, Position, Trade
from .writer import AtomicWriter

MAJORS = ("BTC", "ETH", "SOL", "ADA", "DOGE", "XRP", "AVAX", "LINK", "DOT", "MATIC", "ATOM", "NEAR", "LTC", "UNI")
EXCHANGES = ("kraken", "coinbase", "binance", "okx")
REGIME_WEIGHTS = {"momentum": 0.4, "technical": 0.35, "volume": 0.15, "quality": 0.1}
THRESHOLDS = {"entry_score": 75.0, "vadr": 1.8, "spread_bps": 50.0, "depth_usd": 100_000.0}
SOCIAL_CAP = 10.0
PROVIDERS = ("kraken", "coinbase", "coingecko")


def symbols(count: int) -> list[str]:
    """``count`` distinct made-up symbols: the majors first, then numbered ones."""
    names = [f"{m}-USD" for m in MAJORS] + [f"ALT{n:04d}-USD" for n in range(max(0, count - len(MAJORS)))]
    return names[:count]


def _gate(passed: bool, value: float, threshold: float, reason: str) -> ex.GateResult:
    return ex.GateResult(passed, round(value, 6), threshold, reason)


def make_report(assets: int = 100, seed: int | None = None, now: datetime | None = None) -> ex.ExplainReport:
    """A consistent synthetic explain report for ``assets`` assets, the same for the same ``seed`` and ``now``.

    ``now`` (aware UTC) defaults to the current second.
    """
    rng = random.Random(seed)
    now = now or datetime.now(timezone.utc).replace(microsecond=0)
    inputs = {"regime": "trending", "scan_type": "momentum", "timestamp": now, "symbols": symbols(assets), "seed": seed}
    scored = []
    for symbol in symbols(assets):
        momentum, technical = rng.uniform(40, 100), rng.uniform(40, 100)
        volume, quality, social = rng.uniform(30, 100), rng.uniform(30, 100), rng.uniform(0, 20)
        capped = min(social, SOCIAL_CAP)
        score = round(sum(w * v for w, v in zip(REGIME_WEIGHTS.values(), (momentum, technical, volume, quality))) + capped, 6)
        vadr, spread, depth = round(rng.uniform(1.0, 3.5), 3), round(rng.uniform(1, 60), 3), round(rng.uniform(5e4, 2e6), 2)
        gates = ex.GateResults(
            entry_gate=_gate(score >= THRESHOLDS["entry_score"], score, THRESHOLDS["entry_score"], "composite_score_threshold"),
            freshness_gate=_gate((age := rng.uniform(0.2, 1.5)) <= 1.2, age, 1.2, "within_atr_bounds"),
            fatigue_gate=_gate((rsi := rng.uniform(40, 80)) <= 70, rsi, 70, "rsi_not_overbought"),
            late_fill_gate=_gate((late := rng.uniform(0, 40)) <= 30, late, 30, "signal_timing_acceptable"),
            micro_gate=_gate(vadr >= THRESHOLDS["vadr"] and spread <= THRESHOLDS["spread_bps"], vadr, THRESHOLDS["vadr"],
                             "vadr_liquidity_requirement"),
            overall_result=False,
        )  # fmt: skip
        passed = all(getattr(gates, name).passed for name in ex.GATES)
        gates = replace(gates, overall_result=passed)
        failed = [name.removesuffix("_gate") + "_failed" for name, _ in gates.failed()]
        parts = ex.FactorParts(*(round(v, 6) for v in (momentum, technical, volume, quality, social, capped)))
        hits = {source: rng.random() < 0.8 for source in ("price_data", "volume_data", "social_data", "micro_data")}
        scored.append((score, symbol, ex.AssetExplain(
            symbol=symbol, decision="included" if passed else "excluded", score=score, rank=0, factor_parts=parts,
            gate_results=gates,
            microstructure=ex.Microstructure(spread, depth, vadr, rng.choice(EXCHANGES), rng.random() < 0.7),
            catalyst_profile=ex.CatalystProfile(round(rng.uniform(0, 100), 2), round(rng.uniform(0, 1), 3),
                                                tuple(rng.sample(["earnings", "token_unlock", "listing", "upgrade"], 2)),
                                                now + timedelta(days=rng.randint(1, 14))),
            attribution=ex.Attribution(
                ("strong_momentum", "healthy_liquidity") if passed else (),
                () if passed else tuple(failed[:3]),
                "trending",
                {k: "high_contribution" if v > 70 else "medium_contribution" if v > 40 else "low_contribution"
                 for k, v in zip(ex.FACTORS, (momentum, technical, volume, quality, social * 5, capped * 5))},
            ),
            data_quality=ex.DataQuality(
                ttls={source: now + timedelta(minutes=rng.choice((2, 5, 10, 60))) for source in hits},
                cache_hits=hits, freshness_age={source: f"{rng.randint(5, 90)}s" for source in hits},
                missing_fields=(),
            ),
        )))  # fmt: skip
    scored.sort(key=lambda item: (-item[0], item[1]))
    universe = tuple(replace(asset, rank=rank) for rank, (_, _, asset) in enumerate(scored, 1))
    included = sum(a.decision == "included" for a in universe)
    return ex.ExplainReport(
        meta=ex.Meta(now, input_hash(inputs), "v3.3.0-demo", ex.REPORT_TYPE, len(universe), included,
                     len(universe) - included),
        universe=universe,
        config=ex.ScoringConfig(REGIME_WEIGHTS, "trending", THRESHOLDS, SOCIAL_CAP,
                                {"1h": 0.2, "4h": 0.35, "12h": 0.3, "24h": 0.15}, "v3.3.0-demo"),
        health=ex.SystemHealth(
            provider_status={p: ex.ProviderStatus("healthy", now - timedelta(minutes=2), 0.01, "120ms") for p in PROVIDERS},
            circuit_breakers={f"{p}_api": False for p in PROVIDERS},
            rate_limits={"kraken": ex.RateLimit(85, now + timedelta(minutes=5), 100)},
            cache_stats=ex.CacheStats(0.87, 1250, 185, 0.02),
        ),
    )  # fmt: skip


def make_portfolio(report: ex.ExplainReport, rng: random.Random) -> Portfolio:
    """Positions in up to ten of the report's included assets (its top five if none is included)."""
    picks = [a for a in report.universe if a.decision == "included"][:10] or list(report.universe[:5])
    positions = []
    for asset in picks:
        quantity, price = round(rng.uniform(0.1, 50), 4), round(rng.uniform(0.05, 60_000), 2)
        positions.append(Position(asset.symbol, quantity, price, quantity * price))
    return Portfolio(report.meta.timestamp, tuple(positions), round(rng.uniform(1e4, 1e5), 2), round(rng.uniform(-5e3, 5e3), 2))


def make_trades(report: ex.ExplainReport, rng: random.Random, count: int = 1000) -> list[Trade]:
    """``count`` executions, one every 3.6 seconds from an hour before the report's timestamp."""
    symbols_ = [a.symbol for a in report.universe] or ["BTC-USD"]
    start = report.meta.timestamp - timedelta(hours=1)
    return [
        Trade(start + timedelta(seconds=3.6 * n), rng.choice(symbols_), rng.choice(("buy", "sell")),
              round(rng.uniform(0.001, 10), 6), round(rng.uniform(0.05, 60_000), 2), round(rng.uniform(0, 5), 4),
              f"ord-{n:06d}")  # fmt: skip
        for n in range(count)
    ]


def make_health(report: ex.ExplainReport, rng: random.Random) -> tuple[HealthMetrics, list[Span]]:
    """The hour's provider metrics and one trace per provider fetch."""
    providers = {}
    for name in PROVIDERS:
        p50 = rng.uniform(20, 200)
        p90 = p50 * rng.uniform(1.2, 2)
        providers[name] = ProviderMetrics(round(p50, 2), round(p90, 2), round(p90 * rng.uniform(1.1, 2), 2),
                                          round(rng.uniform(0, 0.05), 4), rng.randint(500, 5000))  # fmt: skip
    metrics = HealthMetrics(report.meta.timestamp, 3600, providers, round(rng.uniform(0.7, 0.95), 4),
                            {f"{p}_api": "closed" for p in PROVIDERS})  # fmt: skip
    spans, start = [], report.meta.timestamp - timedelta(minutes=1)
    for n, name in enumerate(PROVIDERS):
        trace = f"trace-{n:04d}"
        spans.append(Span(trace, f"{trace}-root", None, f"scan.{name}", start, round(rng.uniform(50, 900), 2), "ok"))
        for child in ("fetch", "parse", "score"):
            spans.append(Span(trace, f"{trace}-{child}", f"{trace}-root", f"{name}.{child}", start,
                              round(rng.uniform(1, 300), 2), "ok" if rng.random() < 0.95 else "error"))  # fmt: skip
    return metrics, spans


def run_demo(catalog: Catalog, assets: int = 100, seed: int | None = None) -> list[ArtifactRecord]:
    """Write one cycle's artifacts of every family as one commit (:meth:`AtomicWriter.batch`); returns their records."""
    rng = random.Random(seed)
    run = f"demo-{secrets.token_hex(3)}"
    report = make_report(assets, seed)
    with AtomicWriter(catalog=catalog).batch() as cycle:
        explain_json, _ = cycle.write_explain_report(report, f"{run}.scan")
        moment = explain_json.name.created_at
        report = report.with_timestamp(moment)
        metrics, spans = make_health(report, rng)
        cycle.write_portfolio(f"{run}.portfolio", make_portfolio(report, rng), created_at=moment)
        cycle.write_executions(f"{run}.executions", make_trades(report, rng), created_at=moment)
        cycle.write_health_metrics(f"{run}.metrics", metrics, created_at=moment)
        cycle.write_traces(f"{run}.traces", spans, created_at=moment)
        cycle.snapshot_config(f"{run}.active", created_at=moment)
    return cycle.records


def summary(records: list[ArtifactRecord]) -> dict[str, Any]:
    """Files and bytes by type for what a demo wrote: ``{type: {"files": n, "bytes": size}}``."""
    by_type: dict[str, dict[str, int]] = {}
    for record in records:
        entry = by_type.setdefault(record.type, {"files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += record.size
    return by_type


@dataclass(frozen=True)
class DemoResult:
    """What ``catalog demo`` did: the artifacts it wrote, how many the catalog now holds, and the audit check."""

    base_dir: Path
    records: list[ArtifactRecord]
    artifacts: int
    audit: AuditReport


def demo(settings: Settings, *, assets: int = 100, seed: int | None = None, actor: str | None = None) -> DemoResult:
    """Initialise the store if needed, write one scanner cycle (:func:`run_demo`), then verify the audit log.

    Returns a :class:`DemoResult`; raises what :meth:`catalog.core.store.Catalog.init` and the writers raise.
    """
    catalog, _, _ = Catalog.init(settings, actor=actor)
    with catalog:
        records = run_demo(catalog, assets=assets, seed=seed)
        return DemoResult(catalog.base_dir, records, sum(1 for _ in iter_artifacts(catalog)), catalog.audit_verify())
