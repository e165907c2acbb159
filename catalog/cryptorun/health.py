"""The health family: hourly provider metrics (JSON) and request traces (JSONL), typed and validated.

As in :mod:`catalog.cryptorun.ledger`, a model checks itself when it is constructed and
``from_dict`` names the place of the first problem, e.g. ``health provider
kraken: latency_p50_ms 40.0 is above latency_p90_ms 30.0`` or ``line 3, trace
t1 span s2: parent s9 is not a span of this trace``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from ..core.errors import ValidationError
from ..core.formats import format_time
from .ledger import _number, _settle, _show, _text, _time, _time_text, _values, _whole

LATENCY_FIELDS = ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms")
PROVIDER_FIELDS = (*LATENCY_FIELDS, "error_rate", "requests")
HEALTH_FIELDS = ("timestamp", "window_seconds", "providers", "cache_hit_rate", "circuit_breakers")
SPAN_FIELDS = ("trace_id", "span_id", "parent", "name", "start", "duration_ms", "status")
BREAKER_STATES = ("closed", "open", "half_open")
SPAN_STATUSES = ("ok", "error")
HOURLY_WINDOW_SECONDS = 3600


def _rate(value: Any, where: str, name: str) -> float:
    """A finite number in [0, 1]."""
    rate = _number(value, where, name)
    if not 0 <= rate <= 1:
        raise ValidationError(f"{where}: {name} {rate!r} is not between 0 and 1")
    return rate


# -- hourly metrics (JSON) ----------------------------------------------------


def _provider(
    p50: Any, p90: Any, p99: Any, error_rate: Any, requests: Any, *, where: str
) -> tuple[float, float, float, float, int]:
    latencies = []
    for name, value in zip(LATENCY_FIELDS, (p50, p90, p99)):
        latency = _number(value, where, name)
        if latency < 0:
            raise ValidationError(f"{where}: {name} {latency!r} is negative")
        latencies.append(latency)
    for (low_name, low), (high_name, high) in pairwise(zip(LATENCY_FIELDS, latencies)):
        if low > high:
            raise ValidationError(f"{where}: {low_name} {low!r} is above {high_name} {high!r}")
    error_rate = _rate(error_rate, where, "error_rate")
    requests = _whole(requests, where, "requests")
    if requests < 0:
        raise ValidationError(f"{where}: requests {requests!r} is negative")
    return latencies[0], latencies[1], latencies[2], error_rate, requests


@dataclass(frozen=True)
class ProviderMetrics:
    """One data provider over the window: latency percentiles in ms (p50 <= p90 <= p99), error rate 0-1, requests."""

    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    error_rate: float
    requests: int

    def __post_init__(self) -> None:
        _settle(self, _provider(*(getattr(self, name) for name in PROVIDER_FIELDS), where="provider"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "provider") -> ProviderMetrics:
        """Metrics from plain data; ValidationError messages start with ``where``."""
        return cls(*_provider(*_values(data, PROVIDER_FIELDS, where), where=where))

    def to_dict(self) -> dict[str, Any]:
        """Plain data, keys in field order."""
        return asdict(self)


@dataclass(frozen=True)
class HealthMetrics:
    """A health snapshot: UTC time, window in seconds, per-provider metrics, cache hit rate (0-1), breaker states."""

    timestamp: datetime
    window_seconds: int
    providers: dict[str, ProviderMetrics]
    cache_hit_rate: float
    circuit_breakers: dict[str, str]

    def __post_init__(self) -> None:
        timestamp = _time(self.timestamp, "health", "timestamp")
        window = _whole(self.window_seconds, "health", "window_seconds")
        if window <= 0:
            raise ValidationError(f"health: window_seconds {window!r} is not positive")
        if not isinstance(self.providers, Mapping):
            raise ValidationError(f"health: providers must be an object, not {type(self.providers).__name__}")
        for name, metrics in self.providers.items():
            _text(name, "health", "provider name")
            if not isinstance(metrics, ProviderMetrics):
                raise ValidationError(f"health provider {name}: a {type(metrics).__name__}, not ProviderMetrics")
        cache_hit_rate = _rate(self.cache_hit_rate, "health", "cache_hit_rate")
        if not isinstance(self.circuit_breakers, Mapping):
            raise ValidationError(
                f"health: circuit_breakers must be an object, not {type(self.circuit_breakers).__name__}"
            )
        for name, state in self.circuit_breakers.items():
            _text(name, "health", "circuit breaker name")
            if state not in BREAKER_STATES:
                raise ValidationError(
                    f"health circuit breaker {name}: unknown state {_show(state)}; use closed, open or half_open"
                )
        providers = dict(sorted(self.providers.items()))
        breakers = dict(sorted(self.circuit_breakers.items()))
        _settle(self, (timestamp, window, providers, cache_hit_rate, breakers))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthMetrics:
        """A snapshot from plain JSON data (timestamp as ISO-8601 text with Z or an offset); ValidationError if bad."""
        timestamp, window, providers, cache_hit_rate, breakers = _values(data, HEALTH_FIELDS, "health")
        timestamp = _time_text(timestamp, "health", "timestamp")
        if not isinstance(providers, Mapping):
            raise ValidationError(f"health: providers must be an object, not {type(providers).__name__}")
        metrics = {}
        for name, item in providers.items():
            _text(name, "health", "provider name")
            metrics[name] = ProviderMetrics.from_dict(item, f"health provider {name}")
        return cls(timestamp, window, metrics, cache_hit_rate, breakers)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: timestamp as UTC ISO-8601 with Z, mappings with sorted keys."""
        return {
            "timestamp": format_time(self.timestamp),
            "window_seconds": self.window_seconds,
            "providers": {name: self.providers[name].to_dict() for name in sorted(self.providers)},
            "cache_hit_rate": self.cache_hit_rate,
            "circuit_breakers": {name: self.circuit_breakers[name] for name in sorted(self.circuit_breakers)},
        }


# -- request traces (JSONL) ---------------------------------------------------


def _span(
    trace_id: Any, span_id: Any, parent: Any, name: Any, start: Any, duration_ms: Any, status: Any, *, where: str
) -> tuple[str, str, str | None, str, datetime, float, str]:
    trace_id = _text(trace_id, where or "span", "trace_id")
    span_id = _text(span_id, where or "span", "span_id")
    here = f"{where}, trace {trace_id} span {span_id}" if where else f"trace {trace_id} span {span_id}"
    if parent is not None:
        parent = _text(parent, here, "parent")
        if parent == span_id:
            raise ValidationError(f"{here}: parent is the span itself")
    name = _text(name, here, "name")
    start = _time(start, here, "start")
    duration_ms = _number(duration_ms, here, "duration_ms")
    if duration_ms < 0:
        raise ValidationError(f"{here}: duration_ms {duration_ms!r} is negative")
    if status not in SPAN_STATUSES:
        raise ValidationError(f"{here}: unknown status {_show(status)}; use ok or error")
    return trace_id, span_id, parent, name, start, duration_ms, status


@dataclass(frozen=True)
class Span:
    """One timed operation of a request trace: aware UTC start, duration in ms; ``parent`` is None for a root span."""

    trace_id: str
    span_id: str
    parent: str | None
    name: str
    start: datetime
    duration_ms: float
    status: str

    def __post_init__(self) -> None:
        _settle(self, _span(*(getattr(self, name) for name in SPAN_FIELDS), where=""))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> Span:
        """A span from plain JSON data; ValidationError messages start with ``where`` (e.g. ``line 3``) if given."""
        trace_id, span_id, parent, name, start, duration_ms, status = _values(data, SPAN_FIELDS, where or "span")
        start = _time_text(start, where or "span", "start")
        return cls(*_span(trace_id, span_id, parent, name, start, duration_ms, status, where=where))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, keys in field order, start as UTC ISO-8601 with Z."""
        return {**asdict(self), "start": format_time(self.start)}


def validate_spans(spans: Iterable[Span | Mapping[str, Any]]) -> list[Span]:
    """Check every span, that (trace_id, span_id) is unique and parents exist without cycles; returns the spans.

    Raises ValidationError naming the line (1-based) of the first problem.
    """
    valid: list[Span] = []
    lines: dict[tuple[str, str], int] = {}
    for number, item in enumerate(spans, start=1):
        where = f"line {number}"
        if isinstance(item, Span):
            span = item
        elif isinstance(item, Mapping):
            span = Span.from_dict(item, where)
        else:
            raise ValidationError(f"{where} is a {type(item).__name__}, not a span")
        key = (span.trace_id, span.span_id)
        if key in lines:
            raise ValidationError(
                f"{where}, trace {span.trace_id} span {span.span_id}: duplicate span_id; also line {lines[key]}"
            )
        lines[key] = number
        valid.append(span)
    parents = {(span.trace_id, span.span_id): span.parent for span in valid}
    for number, span in enumerate(valid, start=1):
        if span.parent is not None and (span.trace_id, span.parent) not in parents:
            raise ValidationError(
                f"line {number}, trace {span.trace_id} span {span.span_id}: "
                f"parent {span.parent} is not a span of this trace"
            )
    rooted: set[tuple[str, str]] = set()  # spans whose chain of parents is known to end at a root
    for number, span in enumerate(valid, start=1):
        chain: set[tuple[str, str]] = set()
        step: tuple[str, str] | None = (span.trace_id, span.span_id)
        while step is not None and step not in rooted:
            if step in chain:
                raise ValidationError(
                    f"line {number}, trace {span.trace_id} span {span.span_id}: its parents form a cycle"
                    f" through span {step[1]}"
                )
            chain.add(step)
            parent = parents[step]
            step = None if parent is None else (span.trace_id, parent)
        rooted |= chain
    return valid


def spans_jsonl(spans: Iterable[Span | Mapping[str, Any]]) -> bytes:
    """Checked spans as JSONL: one compact object per line, keys in field order, UTF-8.

    Raises ValidationError as :func:`validate_spans` does, or for no span at all.
    """
    valid = validate_spans(spans)
    if not valid:
        raise ValidationError("a trace file needs at least one span")
    lines = (json.dumps(span.to_dict(), ensure_ascii=False, allow_nan=False, separators=(",", ":")) for span in valid)
    return "".join(line + "\n" for line in lines).encode("utf-8")
