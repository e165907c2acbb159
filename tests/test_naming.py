from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from catalog.core.errors import ValidationError
from catalog.core.names import (
    build_name,
    parse_name,
    parse_temp_name,
    temp_name,
    validate_ext,
    validate_prefix,
)

T = datetime(2024, 1, 15, 10, 30, 5, 987654, tzinfo=timezone.utc)


@pytest.mark.parametrize("prefix", ["momentum_scan", "a", "A.b-c_9", "x" * 64, "run-7.r2", "explain", "a-ledger"])
def test_name_round_trips(prefix: str) -> None:
    name = build_name(T, prefix, "explain", "json")
    assert name.filename == f"20240115-103005-{prefix}-explain.json"
    parsed = parse_name(name.filename)
    assert parsed == name
    assert parsed.created_at == datetime(2024, 1, 15, 10, 30, 5, tzinfo=timezone.utc)


def test_time_is_converted_to_utc_and_truncated() -> None:
    eastern = timezone(timedelta(hours=-5))
    name = build_name(datetime(2024, 1, 15, 5, 30, 5, 999999, tzinfo=eastern), "p", "ledger", "csv")
    assert name.filename == "20240115-103005-p-ledger.csv"


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValidationError, match="no time zone"):
        build_name(datetime(2024, 1, 15), "p", "ledger", "csv")


HOSTILE = {
    "empty": "",
    "slash": "a/b",
    "backslash": "a\\b",
    "traversal": "../etc",
    "dotdot-inner": "a..b",
    "leading-dot": ".hidden",
    "absolute": "/etc/passwd",
    "too-long": "x" * 65,
    "10kB": "y" * 10_000,
    "nul": "a\x00b",
    "newline": "a\nb",
    "tab": "a\tb",
    "space": "a b",
    "semicolon": "a;rm -rf",
    "dollar": "$(reboot)",
    "backtick": "`id`",
    "star": "a*",
    "pipe": "a|b",
    "quote": "a'b",
    "cyrillic-a": "\u0430bc",
    "fullwidth-slash": "a\uff0fb",
    "leading-dash": "-rf",
    "trailing-dash": "scan-",
    "trailing-dot": "scan.",
    "tilde": "a~b",
}


@pytest.mark.parametrize("prefix", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValidationError, match="prefix"):
        validate_prefix(prefix)


def test_prefix_must_be_text() -> None:
    with pytest.raises(ValidationError, match="must be text"):
        validate_prefix(None)


@pytest.mark.parametrize(
    "artifact_type,ext,extra,ok",
    [
        ("explain", "json", False, True),
        ("explain", "csv", False, True),
        ("explain", "jsonl", False, False),
        ("health", "jsonl", False, True),
        ("config", "csv", False, False),
        ("config", "txt", False, False),
        ("config", "txt", True, True),
        ("ledger", "exe", True, False),
        ("ledger", ".JSON", False, True),
    ],
)
def test_extensions_follow_the_allow_list(artifact_type: str, ext: str, extra: bool, ok: bool) -> None:
    if ok:
        assert validate_ext(artifact_type, ext, allow_extra=extra) == ext.lower().lstrip(".")
    else:
        with pytest.raises(ValidationError, match="not allowed"):
            validate_ext(artifact_type, ext, allow_extra=extra)


@pytest.mark.parametrize(
    "filename",
    [
        "20240115-080000-portfolio.json",  # legacy, no type: reconcile's business
        "20241315-080000-p-ledger.json",  # month 13
        "20240115-080000-p-trades.json",  # unknown type
        "20240115-080000-.x-ledger.json",
        "notes.txt",
        "20240115-080000-p-ledger.exe",
    ],
)
def test_parse_name_rejects_what_build_name_cannot_make(filename: str) -> None:
    assert parse_name(filename) is None


def test_temp_names_carry_host_and_pid_and_are_unique() -> None:
    a, b = temp_name("20240115-080000-p-ledger.json", 4242), temp_name("20240115-080000-p-ledger.json", 4242)
    assert a != b
    parsed = parse_temp_name(a)
    assert parsed is not None and parsed.pid == 4242 and parsed.final_name == "20240115-080000-p-ledger.json"
    assert parse_name(a) is None  # a temp file is never mistaken for an artifact
    assert parse_temp_name("20240115-080000-p-ledger.json") is None


@pytest.mark.parametrize("stamp", ["20240115103000", "20240229235959", "20230229000000", "20241332000000", "20240230000000",
                                   "00000101000000", "99991231235959", "20240101240000", "20240101006000",
                                   "20240101000060", "20240101000061", "19700101000000", "٢٠٢٤0115103000"])  # fmt: skip
def test_a_name_time_reads_as_strptime_reads_it(stamp: str) -> None:
    """Names are checked on every path read from a row (verify, get, retention): their time is read without
    strptime, with the same answer (and the same refusals: no 13th month, no leap second)."""
    from catalog.core.names import _stamp_time

    try:
        expected: object = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        expected = ValueError
    try:
        found: object = _stamp_time(stamp)
    except ValueError:
        found = ValueError
    assert found == expected
