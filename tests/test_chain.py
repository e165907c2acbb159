"""The hash chain's pieces (catalog.core.chain): canonical text, links, times, claims and checkpoint files."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from catalog.core import chain
from catalog.core.errors import ValidationError
from catalog.core.schema import EVENTS
from catalog.core.store import Catalog
from catalog.cryptorun.demo import make_report
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.policy import add_hold, set_floor

UTC = timezone.utc
AT = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


# -- canonical JSON --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, text",
    [
        ({"b": 1, "a": 2}, '{"a":2,"b":1}'),
        ({"z": {"y": [1, {"d": None, "c": True}]}, "a": 1.5}, '{"a":1.5,"z":{"y":[1,{"c":true,"d":null}]}}'),
        ({"é": "ü€"}, '{"\\u00e9":"\\u00fc\\u20ac"}'),
        ({"s": "a\nb\"c"}, '{"s":"a\\nb\\"c"}'),
        ([], "[]"),
    ],
    ids=["sorted", "nested-compact", "ascii-only", "escapes", "empty-list"],
)
def test_canonical_json_is_sorted_compact_ascii(data: object, text: str) -> None:
    assert chain.canonical_json(data) == text
    assert chain.canonical_json(data).isascii()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "minus-inf"])
def test_canonical_json_refuses_values_json_cannot_hold(value: float) -> None:
    with pytest.raises(ValueError, match="^Out of range float values are not JSON compliant"):
        chain.canonical_json({"x": value})


# -- times -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment, text",
    [
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05.000000Z"),
        (datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "2024-01-02T03:04:05.000006Z"),
        (datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))), "2023-12-31T23:00:00.000000Z"),
        (datetime(2024, 2, 29, 20, 30, tzinfo=timezone(timedelta(hours=-5))), "2024-03-01T01:30:00.000000Z"),
    ],
    ids=["utc", "microseconds", "east-of-utc-crosses-the-year", "west-of-utc-crosses-leap-day"],
)
def test_iso_utc(moment: datetime, text: str) -> None:
    assert chain.iso_utc(moment) == text


# -- links -----------------------------------------------------------------------------------


def test_event_text_is_the_canonical_text_of_every_field() -> None:
    text = chain.event_text(1, AT, "write", 7, "ledger/x.json", "active", "me@host:1", {"k": 1})
    assert text == (
        '{"action":"write","actor":"me@host:1","artifact_id":7,"at":"2024-01-02T03:04:05.000006Z",'
        '"details":{"k":1},"path":"ledger/x.json","seq":1,"status":"active","v":1}'
    )


def test_next_link_chains_from_genesis() -> None:
    first = chain.next_link(chain.GENESIS_HASH, 1, AT, "write", 7, "ledger/x.json", "active", "me", {"b": 2, "a": 1})
    text = chain.event_text(1, AT, "write", 7, "ledger/x.json", "active", "me", {"a": 1, "b": 2})
    assert first == {
        "seq": 1, "at": AT, "action": "write", "artifact_id": 7, "path": "ledger/x.json", "status": "active",
        "actor": "me", "details": '{"a":1,"b":2}', "text": text,
        "hash": hashlib.sha256(("0" * 64 + text).encode()).hexdigest(),
    }  # fmt: skip
    second = chain.next_link(first["hash"], 2, AT, "checkpoint", None, None, None, "me", {})
    assert second["hash"] == hashlib.sha256((first["hash"] + second["text"]).encode()).hexdigest()
    assert second["hash"] == chain.chain_hash(first["hash"], second["text"])
    assert json.loads(second["text"])["seq"] == 2 and second["details"] == "{}"


def test_a_link_depends_on_everything_before_it() -> None:
    args = (1, AT, "write", 7, "ledger/x.json", "active", "me", {"k": 1})
    base = chain.next_link(chain.GENESIS_HASH, *args)["hash"]
    assert chain.next_link("f" * 64, *args)["hash"] != base  # another history
    assert chain.next_link(chain.GENESIS_HASH, 1, AT + timedelta(microseconds=1), *args[2:])["hash"] != base
    assert chain.next_link(chain.GENESIS_HASH, *args[:-1], {"k": 2})["hash"] != base


def _stored_events(catalog: Catalog) -> list:  # type: ignore[type-arg]
    with catalog.read() as conn:
        return conn.execute(select(EVENTS).order_by(EVENTS.c.seq)).all()


def test_event_text_and_chain_hash_reproduce_the_stored_events(writer: AtomicWriter, catalog: Catalog) -> None:
    writer.write_json("ledger", "p", {"cash": 1.5, "name": "é"})
    writer.write_explain_report(make_report(3, seed=1), "pair")
    add_hold(catalog, prefix="p*", since=AT, reason="inquiry")
    set_floor(catalog, "ledger", 365, "books")
    events = _stored_events(catalog)
    assert [e.action for e in events] == ["schema_upgrade", "write", "write", "write", "hold_place", "policy_floor"]
    prev = chain.GENESIS_HASH
    for event in events:
        details = json.loads(event.details)
        text = chain.event_text(event.seq, event.at, event.action, event.artifact_id, event.path, event.status,
                                event.actor, details)  # fmt: skip
        assert text == event.text
        assert chain.canonical_json(details) == event.details
        assert chain.chain_hash(prev, event.text) == event.hash
        prev = event.hash
    assert catalog.audit_verify().head_hash == prev


# -- claimed actor names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "claim",
    [None, "a", "alice", "a" * 64, "ci bot@build-7:42+retry_x.y", "Zoë"],
    ids=["none", "one-char", "word", "64-chars", "every-punctuation-allowed", "unicode-letter"],
)
def test_validate_claim_accepts(claim: str | None) -> None:
    assert chain.validate_claim(claim) == claim


HOSTILE = {
    "empty": "",
    "newline": "alice\nbob",
    "trailing-newline": "alice\n",
    "carriage-return": "alice\rroot",
    "tab": "alice\tbob",
    "65-chars": "a" * 65,
    "nul": "alice\x00",
    "bidi-override": "alice\u202egnp.exe",
    "zero-width-space": "ali\u200bce",
    "escape": "\x1b[31mred",
    "slash": "alice/../root",
    "parenthesis": "x (claims root)",
}


@pytest.mark.parametrize("claim", list(HOSTILE.values()), ids=list(HOSTILE))
def test_validate_claim_refuses(claim: str) -> None:
    with pytest.raises(ValidationError) as caught:
        chain.validate_claim(claim)
    assert str(caught.value) == (
        f"actor name {claim[:40]!r} must be 1-64 letters, digits, spaces or . @ : + - _ (no control characters)"
    )
    assert "\n" not in str(caught.value) and "\u202e" not in str(caught.value)


def test_a_claim_goes_beside_the_os_identity() -> None:
    plain = chain.current_actor()
    assert chain.current_actor("alice") == f"{plain} (claims alice)"
    assert chain.current_actor(None) == plain and chain.current_actor("") == plain


# -- checkpoint files --------------------------------------------------------------------------


def _write(path: Path, data: object) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_a_checkpoint_file_round_trips(tmp_path: Path) -> None:
    original = chain.Checkpoint(12, "ab" * 32, AT)
    path = _write(tmp_path / "c.json", original.to_dict())
    assert original.to_dict() == {"format": "catalog-checkpoint/1", "seq": 12, "hash": "ab" * 32,
                                  "at": "2024-01-02T03:04:05.000006Z"}  # fmt: skip
    assert chain.read_checkpoint(path) == chain.Checkpoint(12, "ab" * 32, AT, str(path))


GOOD = {"format": "catalog-checkpoint/1", "seq": 3, "hash": "0" * 64, "at": "2024-01-02T03:04:05.000006Z"}
NOT_A_CHECKPOINT = {
    "not-json": ("{oops", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    "empty-file": ("", "malformed checkpoint: the file is empty"),
    "a-list": ("[1, 2]", "not a catalog checkpoint"),
    "no-format": ({k: v for k, v in GOOD.items() if k != "format"}, "not a catalog checkpoint"),
    "wrong-format": (dict(GOOD, format="catalog-checkpoint/2"), "not a catalog checkpoint"),
    "hash-too-short": (dict(GOOD, hash="0" * 63), "seq or hash malformed"),
    "hash-upper-case": (dict(GOOD, hash="A" * 64), "seq or hash malformed"),
    "hash-not-hex": (dict(GOOD, hash="g" * 64), "seq or hash malformed"),
    "seq-negative": (dict(GOOD, seq=-1), "seq or hash malformed"),
    "seq-text": (dict(GOOD, seq="3"), "seq or hash malformed"),
    "seq-bool": (dict(GOOD, seq=True), "seq or hash malformed"),
    "seq-float": (dict(GOOD, seq=3.0), "seq or hash malformed"),
    "no-hash": ({k: v for k, v in GOOD.items() if k != "hash"}, "'hash'"),
    "no-at": ({k: v for k, v in GOOD.items() if k != "at"}, "'at'"),
    "at-not-a-time": (dict(GOOD, at="yesterday"), "Invalid isoformat string: 'yesterday'"),
}


@pytest.mark.parametrize("content, reason", list(NOT_A_CHECKPOINT.values()), ids=list(NOT_A_CHECKPOINT))
def test_read_checkpoint_refuses_what_is_not_a_checkpoint(tmp_path: Path, content: object, reason: str) -> None:
    path = _write(tmp_path / "c.json", content)
    with pytest.raises(ValidationError) as caught:
        chain.read_checkpoint(path)
    assert str(caught.value) == f"checkpoint file {path} is not a catalog checkpoint ({reason})"


def test_read_checkpoint_missing(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        chain.read_checkpoint(tmp_path / "gone.json")
    assert str(caught.value) == f"checkpoint file {tmp_path / 'gone.json'} does not exist"


def test_read_checkpoint_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        chain.read_checkpoint(tmp_path)
    assert str(caught.value) == f"checkpoint file {tmp_path} is a folder, not a file"


def test_read_checkpoint_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b'{"format": "\xff"}')
    with pytest.raises(ValidationError) as caught:
        chain.read_checkpoint(path)
    assert str(caught.value) == (
        f"checkpoint file {path} is not a catalog checkpoint "
        "('utf-8' codec can't decode byte 0xff in position 12: invalid start byte)"
    )
