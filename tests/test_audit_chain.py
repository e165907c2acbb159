"""The hash chain that every write extends (the audit-trail issue builds on it)."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import text

from catalog.audit import GENESIS_HASH
from catalog.store import Catalog
from catalog.writer import AtomicWriter


def walk_chain_by_hand(catalog: Catalog) -> tuple[int, str]:
    """Recompute the chain from the stored rows with nothing but hashlib."""
    with catalog.db.read() as conn:
        rows = conn.execute(text("SELECT seq, text, hash FROM events ORDER BY seq")).all()
        head = conn.execute(text("SELECT seq, hash FROM chain_head")).one()
    prev = GENESIS_HASH
    for expected_seq, (seq, body, digest) in enumerate(rows, start=1):
        assert seq == expected_seq, "gap in seq"
        assert hashlib.sha256((prev + body).encode()).hexdigest() == digest
        assert json.loads(body)["seq"] == seq
        prev = digest
    assert (head.seq, head.hash) == (len(rows), prev)
    return len(rows), prev


def test_the_chain_recomputes_from_the_stored_rows(writer: AtomicWriter, catalog: Catalog) -> None:
    for n in range(12):
        writer.write_json("health", f"h{n}", {"n": n, "text": "ünïcode"})
    count, head = walk_chain_by_hand(catalog)
    assert count == 12
    report = catalog.verify_chain()
    assert report.ok and report.count == 12 and report.head_hash == head


def test_the_event_text_is_canonical_and_versioned(writer: AtomicWriter, catalog: Catalog) -> None:
    record = writer.write_json("ledger", "p", {"x": 1})
    with catalog.db.read() as conn:
        body = conn.execute(text("SELECT text FROM events WHERE seq = 1")).scalar()
    parsed = json.loads(body)
    assert body == json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert parsed["v"] == 1 and parsed["action"] == "write" and parsed["path"] == record.path
    assert parsed["at"].endswith("Z") and "@" in parsed["actor"] and ":" in parsed["actor"]


def test_an_edited_event_is_detected(writer: AtomicWriter, catalog: Catalog) -> None:
    for n in range(3):
        writer.write_json("ledger", f"p{n}", {"n": n})
    with catalog.db.write() as conn:
        conn.execute(text("UPDATE events SET text = replace(text, '\"write\"', '\"wrote\"') WHERE seq = 2"))
    report = catalog.verify_chain()
    assert not report.ok and report.first_bad_seq == 2


def test_a_deleted_event_is_detected(writer: AtomicWriter, catalog: Catalog) -> None:
    for n in range(3):
        writer.write_json("ledger", f"p{n}", {"n": n})
    with catalog.db.write() as conn:
        conn.execute(text("DELETE FROM events WHERE seq = 2"))
    report = catalog.verify_chain()
    assert not report.ok and report.first_bad_seq == 2 and "missing" in report.problems[0]
