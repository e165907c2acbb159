"""Explainability reports: the typed model of ``EXPLAIN_SCHEMA.md`` and its strict and Go-lenient loading.

Its rules, CSV rows and console view are in :mod:`catalog.cryptorun.explain_rules`.

A report is written as a pair: ``explain/<ts>-<prefix>-explain.json`` (full
fidelity) and ``.csv`` (18 columns, one row per asset), with one timestamp.

**What a crash leaves, and what reconcile does with it.** The writer publishes
the JSON first, then the CSV, then records both rows (linked by one
``pair_id``) and their events in one transaction. So:

- killed after the JSON only: a rowless JSON whose CSV twin (same name, ``.csv``)
  does not exist. It is a half pair: reconcile adopts the JSON and regenerates
  the CSV from it, linking the two.
- killed after both files: two rowless files with the same stem; reconcile
  adopts them as one pair.
- a CSV whose JSON is gone, or a linked row whose twin's file vanished, is
  damage, not a crash: the lone CSV is quarantined (it can be derived again),
  a lone JSON gets its CSV regenerated.

A JSON imported with ``put`` (no ``pair_id``) was never meant to have a twin and
is left alone.

Reports written by the original Go scanner load leniently (``null`` where a
list belongs, nanosecond times, Go's float style); the rules they break, such
as alphabetical ranks, are reported, not hidden.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import datetime
from typing import Any

from ..core.errors import ValidationError
from ..core.formats import format_time, keep_exact
from .json_reader import Reader, texts

GATES = ("entry_gate", "freshness_gate", "fatigue_gate", "late_fill_gate", "micro_gate")
FACTORS = ("momentum", "technical", "volume", "quality", "social", "social_capped")
DECISIONS = ("included", "excluded")
CONTRIBUTIONS = ("high_contribution", "medium_contribution", "low_contribution")
REPORT_TYPE = "full_explainability"
MAX_REASONS = 3
CSV_COLUMNS = (
    "symbol", "decision", "score", "rank", "momentum", "technical", "volume", "quality", "social",
    "entry_gate", "spread_bps", "depth_usd", "vadr", "heat_score", "regime", "exchange",
    "top_reason", "cache_hit_rate",
)  # fmt: skip


def _sorted(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {key: mapping[key] for key in sorted(mapping)}


# -- the model --------------------------------------------------------------------------


def _exact(value: Any) -> Any:
    try:
        return keep_exact(value)
    except OverflowError:  # beyond any float: the finite-numbers rule reports it
        return math.inf


class _Floats:
    """Stores whole numbers given for ``float`` fields as floats, so JSON always writes ``70.0``.

    A whole number a float would round (beyond 2**53) stays the exact int (:func:`catalog.core.formats.keep_exact`).
    """

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.type == "float" and type(value) is int:
                object.__setattr__(self, f.name, _exact(value))
            elif f.type == "Mapping[str, float]" and any(type(v) is int for v in value.values()):
                object.__setattr__(self, f.name, {k: _exact(v) if type(v) is int else v for k, v in value.items()})


@dataclass(frozen=True)
class GateResult(_Floats):
    """One gate's verdict: whether it passed, the measured ``value`` against its ``threshold``, and why."""

    passed: bool
    value: float
    threshold: float
    reason: str


@dataclass(frozen=True)
class GateResults:
    """An asset's five gates and ``overall_result``, which the rules want true exactly when all five passed."""

    entry_gate: GateResult
    freshness_gate: GateResult
    fatigue_gate: GateResult
    late_fill_gate: GateResult
    micro_gate: GateResult
    overall_result: bool

    def failed(self) -> list[tuple[str, GateResult]]:
        """The gates that did not pass, in schema order."""
        return [(name, getattr(self, name)) for name in GATES if not getattr(self, name).passed]


@dataclass(frozen=True)
class FactorParts(_Floats):
    """An asset's factor scores; ``social_capped`` is ``social`` capped at ``config.social_cap``."""

    momentum: float
    technical: float
    volume: float
    quality: float
    social: float
    social_capped: float


@dataclass(frozen=True)
class Microstructure(_Floats):
    """Market microstructure: spread in basis points, order-book depth in USD, VADR, and the exchange."""

    spread_bps: float
    depth_usd: float
    vadr: float
    exchange: str
    is_exchange_native: bool


@dataclass(frozen=True)
class CatalystProfile(_Floats):
    """Catalyst heat and time decay, the event types, and the next event's time (aware UTC, optional)."""

    heat_score: float
    time_decay: float
    event_types: tuple[str, ...] = ()
    next_event: datetime | None = None


@dataclass(frozen=True)
class Attribution:
    """Why: inclusion and exclusion reasons (at most three each, by the rules), the regime, each factor's share."""

    top_inclusion_reasons: tuple[str, ...]
    top_exclusion_reasons: tuple[str, ...]
    regime_influence: str
    weight_breakdown: Mapping[str, str]


@dataclass(frozen=True)
class DataQuality:
    """Per data source: cache expiry times (UTC), cache hits, freshness age as text (``45s``), missing fields."""

    ttls: Mapping[str, datetime]
    cache_hits: Mapping[str, bool]
    freshness_age: Mapping[str, str]
    missing_fields: tuple[str, ...] = ()

    @property
    def cache_hit_rate(self) -> float:
        """Share of true values in ``cache_hits`` (0 when empty)."""
        return sum(self.cache_hits.values()) / len(self.cache_hits) if self.cache_hits else 0.0


@dataclass(frozen=True)
class AssetExplain(_Floats):
    """One asset's explanation: decision, score and rank (1 = highest score), and the details behind them."""

    symbol: str
    decision: str
    score: float
    rank: int
    factor_parts: FactorParts
    gate_results: GateResults
    microstructure: Microstructure
    catalyst_profile: CatalystProfile
    attribution: Attribution
    data_quality: DataQuality

    @property
    def top_reason(self) -> str:
        """First inclusion reason, else first exclusion reason, else ``no_reason``."""
        reasons = self.attribution.top_inclusion_reasons or self.attribution.top_exclusion_reasons
        return reasons[0] if reasons else "no_reason"


@dataclass(frozen=True)
class SkippedAsset:
    """An asset that could not be explained: listed, never dropped silently."""

    symbol: str
    reason: str


@dataclass(frozen=True)
class Meta:
    """Report metadata: UTC timestamp, 64-hex input hash, scanner version, report type, counts, skipped assets."""

    timestamp: datetime
    input_hash: str
    version: str
    report_type: str
    assets_count: int
    included_count: int
    excluded_count: int
    skipped: tuple[SkippedAsset, ...] = ()


@dataclass(frozen=True)
class ScoringConfig(_Floats):
    """The scoring configuration in force: regime and momentum weights, gate thresholds, social cap, version."""

    regime_weights: Mapping[str, float]
    current_regime: str
    gate_thresholds: Mapping[str, float]
    social_cap: float
    momentum_weights: Mapping[str, float]
    config_version: str


@dataclass(frozen=True)
class ProviderStatus(_Floats):
    """One data provider's status, last success (aware UTC), error rate, and latency as text (``120ms``)."""

    status: str
    last_success: datetime
    error_rate: float
    latency: str


@dataclass(frozen=True)
class RateLimit:
    """One provider's rate limit: requests ``remaining`` of ``limit``, and when it resets (aware UTC)."""

    remaining: int
    reset: datetime
    limit: int


@dataclass(frozen=True)
class CacheStats(_Floats):
    """Cache statistics: hit rate, total hits and misses, eviction rate."""

    hit_rate: float
    total_hits: int
    total_misses: int
    eviction_rate: float


@dataclass(frozen=True)
class SystemHealth:
    """The scanner's health at report time: providers, circuit breakers (name -> bool), rate limits, cache."""

    provider_status: Mapping[str, ProviderStatus]
    circuit_breakers: Mapping[str, bool]
    rate_limits: Mapping[str, RateLimit]
    cache_stats: CacheStats


@dataclass(frozen=True)
class ExplainReport:
    """One explainability report: meta, universe (by rank), config, health."""

    meta: Meta
    universe: tuple[AssetExplain, ...]
    config: ScoringConfig
    health: SystemHealth
    #: Quirks tolerated while loading leniently (Go's nulls); empty for a strict load.
    load_notes: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: Any, *, lenient: bool = False) -> ExplainReport:
        """Build from plain JSON data. ``lenient`` accepts the Go scanner's quirks (noted in ``load_notes``).

        Raises ValidationError naming the first bad place (``$.universe[3].score``).
        """
        notes: list[str] = []
        root = Reader(data, "$", lenient, notes)
        report = cls(
            meta=_meta(root.sub("meta")),
            universe=tuple(_asset(Reader(a, f"$.universe[{n}]", lenient, notes)) for n, a in enumerate(root.items("universe"))),
            config=_config(root.sub("config")),
            health=_health(root.sub("health")),
        )  # fmt: skip
        return replace(report, load_notes=tuple(dict.fromkeys(notes)))

    @classmethod
    def from_json(cls, data: bytes | str, *, lenient: bool = False) -> ExplainReport:
        """Parse JSON text (NaN and Infinity refused) into a report; ValidationError as :meth:`from_dict`."""
        from ..core.content import load_json

        return cls.from_dict(load_json(data, "report"), lenient=lenient)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in schema order; map keys sorted; times as ISO-8601 UTC."""
        return _plain(self)

    def with_timestamp(self, moment: datetime) -> ExplainReport:
        """A copy with ``meta.timestamp`` set to ``moment``."""
        return replace(self, meta=replace(self.meta, timestamp=moment))


def _meta(r: Reader) -> Meta:
    skipped = [Reader(s, f"{r.where}.skipped[{n}]", r.lenient, r.notes) for n, s in enumerate(r.items("skipped", True))]
    return Meta(
        timestamp=r.time("timestamp"), input_hash=r.text("input_hash"), version=r.text("version"),
        report_type=r.text("report_type"), assets_count=r.integer("assets_count"),
        included_count=r.integer("included_count"), excluded_count=r.integer("excluded_count"),
        skipped=tuple(SkippedAsset(s.text("symbol"), s.text("reason")) for s in skipped),
    )  # fmt: skip


def _gate(r: Reader) -> GateResult:
    return GateResult(r.boolean("passed"), r.number("value"), r.number("threshold"), r.text("reason"))


def _asset(r: Reader) -> AssetExplain:
    gates, parts, micro = r.sub("gate_results"), r.sub("factor_parts"), r.sub("microstructure")
    catalyst, attribution, quality = r.sub("catalyst_profile"), r.sub("attribution"), r.sub("data_quality")
    decision = r.text("decision")
    if decision not in DECISIONS:
        raise ValidationError(f"{r.where}.decision must be included or excluded, not {decision[:40]!r}")
    breakdown = attribution.mapping("weight_breakdown")
    return AssetExplain(
        symbol=r.text("symbol"), decision=decision, score=r.number("score"), rank=r.integer("rank"),
        factor_parts=FactorParts(*(parts.number(name) for name in FACTORS)),
        gate_results=GateResults(**{name: _gate(gates.sub(name)) for name in GATES},
                                 overall_result=gates.boolean("overall_result")),
        microstructure=Microstructure(micro.number("spread_bps"), micro.number("depth_usd"), micro.number("vadr"),
                                      micro.text("exchange"), micro.boolean("is_exchange_native")),
        catalyst_profile=CatalystProfile(
            catalyst.number("heat_score"), catalyst.number("time_decay"),
            texts(catalyst.items("event_types"), f"{catalyst.where}.event_types"), catalyst.time("next_event", True),
        ),
        attribution=Attribution(
            texts(attribution.items("top_inclusion_reasons"), f"{attribution.where}.top_inclusion_reasons"),
            texts(attribution.items("top_exclusion_reasons"), f"{attribution.where}.top_exclusion_reasons"),
            attribution.text("regime_influence"),
            {k: texts([v], f"{attribution.where}.weight_breakdown.{k}")[0] for k, v in breakdown.items()},
        ),
        data_quality=DataQuality(
            ttls={k: quality.sub("ttls").time(k) for k in quality.mapping("ttls")},
            cache_hits={k: quality.sub("cache_hits").boolean(k) for k in quality.mapping("cache_hits")},
            freshness_age={k: quality.sub("freshness_age").text(k) for k in quality.mapping("freshness_age")},
            missing_fields=texts(quality.items("missing_fields"), f"{quality.where}.missing_fields"),
        ),
    )  # fmt: skip


def _numbers(r: Reader, key: str) -> dict[str, float]:
    sub = r.sub(key)
    return {k: sub.number(k) for k in sub.data}


def _config(r: Reader) -> ScoringConfig:
    return ScoringConfig(
        regime_weights=_numbers(r, "regime_weights"), current_regime=r.text("current_regime"),
        gate_thresholds=_numbers(r, "gate_thresholds"), social_cap=r.number("social_cap"),
        momentum_weights=_numbers(r, "momentum_weights"), config_version=r.text("config_version"),
    )  # fmt: skip


def _health(r: Reader) -> SystemHealth:
    providers, limits, breakers, cache = r.sub("provider_status"), r.sub("rate_limits"), r.sub("circuit_breakers"), r.sub("cache_stats")
    return SystemHealth(
        provider_status={
            name: ProviderStatus(p.text("status"), p.time("last_success"), p.number("error_rate"), p.text("latency"))
            for name in providers.data for p in [providers.sub(name)]
        },
        circuit_breakers={name: breakers.boolean(name) for name in breakers.data},
        rate_limits={
            name: RateLimit(q.integer("remaining"), q.time("reset"), q.integer("limit"))
            for name in limits.data for q in [limits.sub(name)]
        },
        cache_stats=CacheStats(cache.number("hit_rate"), cache.integer("total_hits"), cache.integer("total_misses"),
                               cache.number("eviction_rate")),
    )  # fmt: skip


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.compare}
    if isinstance(value, Mapping):
        return {key: _plain(value[key]) for key in sorted(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return format_time(value)
    return value
