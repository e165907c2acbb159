from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from catalog.core.content import check_content
from catalog.core.errors import ValidationError
from catalog.core.formats import format_time, json_bytes
from catalog.cryptorun.health import HealthMetrics, ProviderMetrics, Span, spans_jsonl, validate_spans

T = datetime(2024, 1, 15, 10, 0, 0, tzinfo=timezone.utc)
NAN = float("nan")
INF = float("inf")
Change = Callable[[dict[str, Any]], Any]


def refused(fragment: str) -> Any:
    return pytest.raises(ValidationError, match=re.escape(fragment))


def provider_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "latency_p50_ms": 42.0, "latency_p90_ms": 120.5, "latency_p99_ms": 480.0, "error_rate": 0.002,
        "requests": 3600,
    }  # fmt: skip
    data.update(changes)
    return data


def metrics_data() -> dict[str, Any]:
    return {
        "timestamp": "2024-01-15T10:00:00Z",
        "window_seconds": 3600,
        "providers": {"kraken": provider_data(), "coingecko": provider_data(error_rate=0.0, requests=0)},
        "cache_hit_rate": 0.85,
        "circuit_breakers": {"kraken": "closed", "coingecko": "half_open", "binance": "open"},
    }


# -- hourly metrics: round trips --------------------------------------------


METRICS_ROUND_TRIPS: dict[str, Change] = {
    "two-providers": lambda data: None,
    "no-providers-or-breakers": lambda data: data.update(providers={}, circuit_breakers={}),
    "offset-time": lambda data: data.update(timestamp="2024-01-15T11:00:00+01:00"),
    "equal-percentiles": lambda data: data["providers"].update(binance=provider_data(
        latency_p50_ms=10.0, latency_p90_ms=10.0, latency_p99_ms=10.0)),
    "ints-for-floats": lambda data: data.update(cache_hit_rate=1, providers={"kraken": provider_data(
        latency_p50_ms=0, latency_p90_ms=5, latency_p99_ms=7, error_rate=0)}),
    "bounds": lambda data: data.update(cache_hit_rate=0.0, providers={"kraken": provider_data(error_rate=1.0)}),
    "unicode-names": lambda data: data.update(providers={"cöingecko v2": provider_data()}),
}  # fmt: skip


@pytest.mark.parametrize("change", list(METRICS_ROUND_TRIPS.values()), ids=list(METRICS_ROUND_TRIPS))
def test_metrics_round_trip(change: Change) -> None:
    data = metrics_data()
    change(data)
    metrics = HealthMetrics.from_dict(data)
    assert HealthMetrics.from_dict(metrics.to_dict()) == metrics
    assert HealthMetrics.from_dict(json.loads(json_bytes(metrics.to_dict()))) == metrics


def test_metrics_to_dict_is_sorted_plain_data() -> None:
    data = HealthMetrics.from_dict({**metrics_data(), "timestamp": "2024-01-15T11:00:00+01:00"}).to_dict()
    assert list(data) == ["timestamp", "window_seconds", "providers", "cache_hit_rate", "circuit_breakers"]
    assert data["timestamp"] == "2024-01-15T10:00:00Z"
    assert list(data["providers"]) == ["coingecko", "kraken"]
    assert list(data["circuit_breakers"]) == ["binance", "coingecko", "kraken"]
    assert list(data["providers"]["kraken"]) == [
        "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "error_rate", "requests"
    ]  # fmt: skip
    assert data["providers"]["kraken"] == provider_data()


def test_metrics_output_does_not_depend_on_insertion_order() -> None:
    data = metrics_data()
    reordered = {
        **data,
        "providers": dict(reversed(data["providers"].items())),
        "circuit_breakers": dict(reversed(data["circuit_breakers"].items())),
    }
    first, second = HealthMetrics.from_dict(data), HealthMetrics.from_dict(reordered)
    assert first == second
    assert json_bytes(first.to_dict()) == json_bytes(second.to_dict())


def test_metrics_keep_their_own_copy_of_the_mappings() -> None:
    providers = {"kraken": ProviderMetrics(1.0, 2.0, 3.0, 0.0, 10)}
    breakers = {"kraken": "closed"}
    metrics = HealthMetrics(T, 3600, providers, 0.5, breakers)
    providers["binance"] = ProviderMetrics(1.0, 2.0, 3.0, 0.0, 10)
    breakers["kraken"] = "broken"
    assert list(metrics.providers) == ["kraken"] and metrics.circuit_breakers == {"kraken": "closed"}


def test_provider_metrics_store_floats_and_an_int() -> None:
    metrics = ProviderMetrics(1, 2, 3, 0, 10)
    assert [type(value) for value in metrics.to_dict().values()] == [float, float, float, float, int]
    assert metrics == ProviderMetrics(1.0, 2.0, 3.0, 0.0, 10)
    health = HealthMetrics(T, 3600, {}, 1, {})
    assert type(health.cache_hit_rate) is float and health.cache_hit_rate == 1.0


# -- hourly metrics: rules --------------------------------------------------


def _provider(**changes: Any) -> Change:
    return lambda data: data["providers"]["kraken"].update(changes)


def _top(**changes: Any) -> Change:
    return lambda data: data.update(changes)


METRICS_RULES: dict[str, tuple[Change, str]] = {
    "naive-timestamp": (_top(timestamp="2024-01-15T10:00:00"), "health: timestamp '2024-01-15T10:00:00' has no time"),
    "not-a-time": (_top(timestamp="now"), "health: timestamp 'now' is not a time"),
    "window-zero": (_top(window_seconds=0), "health: window_seconds 0 is not positive"),
    "window-negative": (_top(window_seconds=-3600), "health: window_seconds -3600 is not positive"),
    "window-float": (_top(window_seconds=3600.0), "health: window_seconds must be a whole number, not float"),
    "window-bool": (_top(window_seconds=True), "health: window_seconds must be a whole number, not bool"),
    "window-text": (_top(window_seconds="3600"), "health: window_seconds must be a whole number, not str"),
    "negative-latency": (_provider(latency_p50_ms=-1.0), "health provider kraken: latency_p50_ms -1.0 is negative"),
    "nan-latency": (_provider(latency_p90_ms=NAN), "health provider kraken: latency_p90_ms is not a finite number"),
    "inf-latency": (_provider(latency_p99_ms=INF), "provider kraken: latency_p99_ms is not a finite number (inf)"),
    "p50-above-p90": (
        _provider(latency_p50_ms=200.0), "health provider kraken: latency_p50_ms 200.0 is above latency_p90_ms 120.5"
    ),
    "p90-above-p99": (
        _provider(latency_p90_ms=500.0), "health provider kraken: latency_p90_ms 500.0 is above latency_p99_ms 480.0"
    ),
    "error-rate-above-1": (_provider(error_rate=1.5), "health provider kraken: error_rate 1.5 is not between 0 and 1"),
    "error-rate-negative": (_provider(error_rate=-0.1), "error_rate -0.1 is not between 0 and 1"),
    "error-rate-nan": (_provider(error_rate=NAN), "health provider kraken: error_rate is not a finite number (nan)"),
    "error-rate-percent-text": (_provider(error_rate="2%"), "error_rate must be a number, not str"),
    "requests-negative": (_provider(requests=-1), "health provider kraken: requests -1 is negative"),
    "requests-float": (_provider(requests=3600.0), "provider kraken: requests must be a whole number, not float"),
    "requests-bool": (_provider(requests=True), "requests must be a whole number, not bool"),
    "cache-hit-rate-above-1": (_top(cache_hit_rate=1.01), "health: cache_hit_rate 1.01 is not between 0 and 1"),
    "cache-hit-rate-negative": (_top(cache_hit_rate=-0.5), "health: cache_hit_rate -0.5 is not between 0 and 1"),
    "cache-hit-rate-inf": (_top(cache_hit_rate=INF), "health: cache_hit_rate is not a finite number (inf)"),
    "cache-hit-rate-bool": (_top(cache_hit_rate=True), "health: cache_hit_rate must be a number, not bool"),
    "unknown-breaker-state": (
        _top(circuit_breakers={"kraken": "broken"}),
        "health circuit breaker kraken: unknown state 'broken'; use closed, open or half_open",
    ),
    "breaker-state-spelling": (_top(circuit_breakers={"kraken": "half-open"}), "unknown state 'half-open'"),
    "breaker-state-not-text": (_top(circuit_breakers={"kraken": None}), "unknown state None"),
    "empty-breaker-name": (_top(circuit_breakers={"": "open"}), "health: circuit breaker name is empty"),
    "control-breaker-name": (_top(circuit_breakers={"a\nb": "open"}), "breaker name 'a\\nb' contains a control"),
    "empty-provider-name": (_top(providers={" ": provider_data()}), "health: provider name is empty"),
    "control-provider-name": (_top(providers={"k\x1b": provider_data()}), "health: provider name 'k\\x1b' contains a"),
    "provider-missing-field": (
        lambda data: data["providers"]["kraken"].pop("requests"), "health provider kraken: missing requests"
    ),
    "provider-unknown-field": (_provider(latency_p95_ms=1.0), "health provider kraken: unknown field 'latency_p95_ms'"),
    "provider-not-object": (_top(providers={"kraken": 42}), "health provider kraken must be an object"),
    "providers-not-object": (_top(providers=[]), "health: providers must be an object, not list"),
    "breakers-not-object": (_top(circuit_breakers=["open"]), "health: circuit_breakers must be an object, not list"),
    "missing-field": (lambda data: data.pop("cache_hit_rate"), "health: missing cache_hit_rate"),
    "unknown-field": (_top(window="hourly"), "health: unknown field 'window'"),
}  # fmt: skip


@pytest.mark.parametrize(("change", "fragment"), list(METRICS_RULES.values()), ids=list(METRICS_RULES))
def test_metrics_rules_are_enforced(change: Change, fragment: str) -> None:
    data = metrics_data()
    change(data)
    with refused(fragment):
        HealthMetrics.from_dict(data)


def test_constructing_bad_metrics_raises() -> None:
    with refused("provider: latency_p50_ms 30.0 is above latency_p90_ms 20.0"):
        ProviderMetrics(30, 20, 40, 0.0, 1)
    with refused("health: timestamp has no time zone"):
        HealthMetrics(datetime(2024, 1, 15, 10), 3600, {}, 0.5, {})
    with refused("health provider kraken: a dict, not ProviderMetrics"):
        HealthMetrics(T, 3600, {"kraken": provider_data()}, 0.5, {})  # type: ignore[dict-item]
    with refused("health: provider name must be text, not int"):
        HealthMetrics(T, 3600, {1: ProviderMetrics(1, 2, 3, 0, 1)}, 0.5, {})  # type: ignore[dict-item]


PROVIDER_NUMBERS: dict[str, Callable[[Any], object]] = {
    "latency_p50_ms": lambda v: ProviderMetrics(v, 500.0, 500.0, 0.0, 1),
    "latency_p90_ms": lambda v: ProviderMetrics(0.0, v, 500.0, 0.0, 1),
    "latency_p99_ms": lambda v: ProviderMetrics(0.0, 0.0, v, 0.0, 1),
    "error_rate": lambda v: ProviderMetrics(0.0, 0.0, 0.0, v, 1),
    "cache_hit_rate": lambda v: HealthMetrics(T, 3600, {}, v, {}),
}


@pytest.mark.parametrize("build", list(PROVIDER_NUMBERS.values()), ids=list(PROVIDER_NUMBERS))
@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
def test_bools_are_not_numbers(build: Callable[[Any], object], value: bool) -> None:
    with refused("must be a number, not bool"):
        build(value)


@pytest.mark.parametrize("build", list(PROVIDER_NUMBERS.values()), ids=list(PROVIDER_NUMBERS))
@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(build: Callable[[Any], object], value: float) -> None:
    with refused(f"is not a finite number ({value})"):
        build(value)


# -- spans ------------------------------------------------------------------


def span_data(span_id: str = "s1", parent: str | None = None, trace_id: str = "t1", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "trace_id": trace_id, "span_id": span_id, "parent": parent, "name": "fetch_ohlcv",
        "start": "2024-01-15T10:00:00.250Z", "duration_ms": 12.5, "status": "ok",
    }  # fmt: skip
    data.update(changes)
    return data


def trace() -> list[dict[str, Any]]:
    """Two traces; a child listed before its parent; span ids repeated across traces."""
    return [
        span_data("s1"),
        span_data("s3", parent="s2", status="error"),
        span_data("s2", parent="s1", duration_ms=0),
        span_data("s1", trace_id="t2"),
        span_data("s2", parent="s1", trace_id="t2", name="score ✓"),
    ]


SPAN_ROUND_TRIPS = {
    "root": span_data(),
    "child": span_data("s2", parent="s1"),
    "error-status": span_data(status="error"),
    "zero-duration": span_data(duration_ms=0),
    "int-duration": span_data(duration_ms=7),
    "offset-start": span_data(start="2024-01-15T11:00:00+01:00"),
    "whole-second-start": span_data(start="2024-01-15T10:00:00Z"),
    "unicode-name": span_data(name="scan · momentum ✓"),
}


@pytest.mark.parametrize("data", list(SPAN_ROUND_TRIPS.values()), ids=list(SPAN_ROUND_TRIPS))
def test_span_round_trips(data: dict[str, Any]) -> None:
    span = Span.from_dict(data)
    assert Span.from_dict(span.to_dict()) == span
    assert span.start.tzinfo == timezone.utc and type(span.duration_ms) is float


def test_span_to_dict_is_plain_data_in_field_order() -> None:
    span = Span.from_dict(span_data("s2", parent="s1", start="2024-01-15T11:00:00.25+01:00"))
    assert span.to_dict() == {
        "trace_id": "t1", "span_id": "s2", "parent": "s1", "name": "fetch_ohlcv",
        "start": "2024-01-15T10:00:00.250000Z", "duration_ms": 12.5, "status": "ok",
    }  # fmt: skip
    assert list(span.to_dict()) == ["trace_id", "span_id", "parent", "name", "start", "duration_ms", "status"]


def test_spans_jsonl_is_one_compact_object_per_line() -> None:
    data = spans_jsonl([span_data(), span_data("s2", parent="s1", name="score ✓")])
    assert data == (
        b'{"trace_id":"t1","span_id":"s1","parent":null,"name":"fetch_ohlcv",'
        b'"start":"2024-01-15T10:00:00.250000Z","duration_ms":12.5,"status":"ok"}\n'
        b'{"trace_id":"t1","span_id":"s2","parent":"s1","name":"score \xe2\x9c\x93",'
        b'"start":"2024-01-15T10:00:00.250000Z","duration_ms":12.5,"status":"ok"}\n'
    )
    check_content("jsonl", data)


def test_spans_jsonl_reads_back_as_the_same_spans() -> None:
    spans = validate_spans(trace())
    data = spans_jsonl(spans)
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == len(spans) + 1
    assert validate_spans(json.loads(line) for line in lines[:-1]) == spans


def test_a_trace_file_needs_a_span() -> None:
    with refused("a trace file needs at least one span"):
        spans_jsonl([])
    with refused("a trace file needs at least one span"):
        spans_jsonl(iter(()))


def test_validate_spans_accepts_objects_and_mappings() -> None:
    spans = validate_spans([Span.from_dict(span_data()), span_data("s2", parent="s1")])
    assert [span.span_id for span in spans] == ["s1", "s2"]
    assert all(isinstance(span, Span) for span in spans)


def _line(index: int, **changes: Any) -> Callable[[list[dict[str, Any]]], None]:
    return lambda spans: spans[index].update(changes)


SPAN_RULES: dict[str, tuple[Callable[[list[dict[str, Any]]], None], str]] = {
    "unknown-status": (_line(1, status="warn"), "line 2, trace t1 span s3: unknown status 'warn'; use ok or error"),
    "uppercase-status": (_line(1, status="OK"), "line 2, trace t1 span s3: unknown status 'OK'"),
    "negative-duration": (_line(2, duration_ms=-1), "line 3, trace t1 span s2: duration_ms -1.0 is negative"),
    "nan-duration": (_line(2, duration_ms=NAN), "line 3, trace t1 span s2: duration_ms is not a finite number (nan)"),
    "inf-duration": (_line(2, duration_ms=INF), "duration_ms is not a finite number (inf)"),
    "bool-duration": (_line(2, duration_ms=True), "line 3, trace t1 span s2: duration_ms must be a number, not bool"),
    "text-duration": (_line(2, duration_ms="12.5"), "duration_ms must be a number, not str"),
    "empty-trace-id": (_line(0, trace_id=""), "line 1: trace_id is empty"),
    "control-trace-id": (_line(0, trace_id="t\x001"), "line 1: trace_id 't\\x001' contains a control character"),
    "empty-span-id": (_line(3, span_id=" "), "line 4: span_id is empty"),
    "span-id-not-text": (_line(3, span_id=1), "line 4: span_id must be text, not int"),
    "control-span-id": (_line(3, span_id="s\n1"), "line 4: span_id 's\\n1' contains a control character"),
    "empty-parent": (_line(2, parent=""), "line 3, trace t1 span s2: parent is empty"),
    "control-parent": (_line(2, parent="s1\r"), "line 3, trace t1 span s2: parent 's1\\r' contains a control"),
    "empty-name": (_line(4, name=""), "line 5, trace t2 span s2: name is empty"),
    "control-name": (_line(4, name="a\tb"), "line 5, trace t2 span s2: name 'a\\tb' contains a control character"),
    "naive-start": (_line(0, start="2024-01-15T10:00:00"), "line 1: start '2024-01-15T10:00:00' has no time zone"),
    "not-a-time": (_line(0, start="later"), "line 1: start 'later' is not a time"),
    "start-not-text": (_line(0, start=1705312800), "line 1, trace t1 span s1: start must be a datetime, not int"),
    "missing-field": (lambda spans: spans[0].pop("parent"), "line 1: missing parent"),
    "unknown-field": (_line(0, attributes={}), "line 1: unknown field 'attributes'"),
    "not-an-object": (lambda spans: spans.insert(1, "{}"), "line 2 is a str, not a span"),
    "duplicate-span": (_line(2, span_id="s1", parent=None), "line 3, trace t1 span s1: duplicate span_id; also line 1"),
    "missing-parent": (_line(2, parent="s9"), "line 3, trace t1 span s2: parent s9 is not a span of this trace"),
    "parent-in-other-trace": (
        _line(4, parent="s3"), "line 5, trace t2 span s2: parent s3 is not a span of this trace"
    ),
    "parent-is-itself": (_line(0, parent="s1"), "line 1, trace t1 span s1: parent is the span itself"),
    "parent-cycle": (_line(0, parent="s3"), "line 1, trace t1 span s1: its parents form a cycle"),
}  # fmt: skip


@pytest.mark.parametrize(("change", "fragment"), list(SPAN_RULES.values()), ids=list(SPAN_RULES))
def test_span_rules_are_enforced_with_the_line_number(
    change: Callable[[list[dict[str, Any]]], None], fragment: str
) -> None:
    spans = trace()
    change(spans)
    with refused(fragment):
        validate_spans(spans)
    with refused(fragment):
        spans_jsonl(spans)


def test_constructing_a_bad_span_raises() -> None:
    with refused("trace t1 span s2: duration_ms -1.0 is negative"):
        Span("t1", "s2", "s1", "fetch", T, -1.0, "ok")
    with refused("trace t1 span s2: start has no time zone"):
        Span("t1", "s2", "s1", "fetch", datetime(2024, 1, 15), 1.0, "ok")
    with refused("span: trace_id is empty"):
        Span("", "s2", None, "fetch", T, 1.0, "ok")


def test_duplicate_span_objects_are_refused() -> None:
    root = Span.from_dict(span_data())
    with refused("line 2, trace t1 span s1: duplicate span_id; also line 1"):
        validate_spans([root, root])


# -- property-style: generated span sets validate, round-trip, and every kind of mutation is refused


def random_spans(rng: random.Random) -> list[dict[str, Any]]:
    spans = []
    base = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rng.randint(0, 10**8))
    for number in range(rng.randint(1, 4)):
        trace_id = f"{rng.getrandbits(64):016x}" if rng.random() < 0.5 else f"t{number}"
        ids: list[str] = []
        for index in range(rng.randint(1, 8)):
            span_id = f"s{index}"
            start = base + timedelta(microseconds=rng.randint(0, 10**9))
            spans.append({
                "trace_id": trace_id, "span_id": span_id, "parent": rng.choice(ids) if ids else None,
                "name": rng.choice(["scan", "fetch_ohlcv", "score", "cache.get", "wal ✓"]),
                "start": rng.choice([format_time(start), start.astimezone(timezone(timedelta(hours=-5))).isoformat()]),
                "duration_ms": rng.choice([rng.uniform(0, 5000), rng.randint(0, 100), 0.0]),
                "status": rng.choice(["ok", "ok", "error"]),
            })  # fmt: skip
            ids.append(span_id)
    rng.shuffle(spans)  # children may come before their parents
    return spans


def _reparent_to_descendant(rng: random.Random, spans: list[dict[str, Any]]) -> int:
    """Make a root's parent one of its children (a cycle); return its index, or -1 if no root has a child."""
    for index, span in enumerate(spans):
        children = [s["span_id"] for s in spans if s["trace_id"] == span["trace_id"] and s["parent"] == span["span_id"]]
        if span["parent"] is None and children:
            span["parent"] = rng.choice(children)
            return index
    return -1


def _set(field: str, values: list[Any]) -> Callable[[random.Random, list[dict[str, Any]]], int]:
    def mutate(rng: random.Random, spans: list[dict[str, Any]]) -> int:
        index = rng.randrange(len(spans))
        spans[index][field] = rng.choice(values)
        return index

    return mutate


def _missing_parent(rng: random.Random, spans: list[dict[str, Any]]) -> int:
    index = rng.randrange(len(spans))
    spans[index]["parent"] = "nowhere"
    return index


def _duplicate(rng: random.Random, spans: list[dict[str, Any]]) -> int:
    spans.append(dict(rng.choice(spans)))
    return len(spans) - 1


def _naive_start(rng: random.Random, spans: list[dict[str, Any]]) -> int:
    index = rng.randrange(len(spans))
    spans[index]["start"] = spans[index]["start"][:19]
    return index


SPAN_MUTATIONS: dict[str, tuple[Callable[[random.Random, list[dict[str, Any]]], int], str]] = {
    "unknown-status": (_set("status", ["warn", "OK", "", None]), "unknown status"),
    "negative-duration": (_set("duration_ms", [-1, -0.001, -1e6]), "is negative"),
    "non-finite-duration": (_set("duration_ms", [NAN, INF, -INF]), "is not a finite number"),
    "bool-duration": (_set("duration_ms", [True, False]), "must be a number, not bool"),
    "empty-id": (_set("span_id", ["", "  "]), "span_id is empty"),
    "control-name": (_set("name", ["a\nb", "\x00", "tab\there"]), "contains a control character"),
    "naive-start": (_naive_start, "has no time zone"),
    "missing-parent": (_missing_parent, "parent nowhere is not a span of this trace"),
    "duplicate-span": (_duplicate, "duplicate span_id"),
    "cycle": (_reparent_to_descendant, "its parents form a cycle"),
}


def test_generated_span_sets_validate_round_trip_and_refuse_every_mutation() -> None:
    rng = random.Random(3600)
    cycles = 0
    for _ in range(200):
        data = random_spans(rng)
        spans = validate_spans(data)
        assert [Span.from_dict(span.to_dict()) for span in spans] == spans
        lines = spans_jsonl(spans).decode("utf-8").splitlines()
        assert validate_spans(json.loads(line) for line in lines) == spans
        for name, (mutate, fragment) in SPAN_MUTATIONS.items():
            bad = [dict(span) for span in data]
            index = mutate(rng, bad)
            if index < 0:  # no root with a child to turn into a cycle
                continue
            cycles += name == "cycle"
            with pytest.raises(ValidationError) as caught:
                validate_spans(bad)
            message = str(caught.value)
            assert fragment in message, (name, message)
            if name != "cycle":  # a cycle is reported at the first span that walks into it
                assert re.match(rf"line {index + 1}\b", message), (name, message)
    assert cycles > 50
