"""The audit log's Merkle tree as the catalog keeps it (issue 15, part 1): maintained with every
event in the same transaction, on SQLite and PostgreSQL; roots and proofs from O(log n) stored
nodes agree with the pure RFC 9162 module; `audit verify` recomputes the tree and names what an
edit behind the log's back changed; migration 0007 builds the tree of a log that had none.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from catalog.core import chain, merkle, tree
from catalog.core.db import Database
from catalog.core.errors import StoreError, ValidationError
from catalog.core.schema import EVENTS, MERKLE_NODES
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter

from helpers import tamper


def _leaves(catalog: Catalog) -> list[bytes]:
    with catalog.read() as conn:
        return [tree.leaf(t) for t in conn.execute(select(EVENTS.c.text).order_by(EVENTS.c.seq)).scalars()]


def _events(catalog: Catalog, count: int) -> None:
    with catalog.change() as tx:
        for i in range(count):
            tx.events.append("checkpoint", details={"file": f"n{i}"})


def test_every_root_and_proof_from_the_stored_nodes_matches_the_rfc_module(catalog: Catalog, writer: AtomicWriter) -> None:
    for i in range(6):  # events from many units of work, some with several events each
        writer.write_json("ledger", f"p{i}", {"i": i})
        _events(catalog, i % 3)
    leaves = _leaves(catalog)
    n = len(leaves)
    assert n >= 12
    with catalog.read() as conn:
        assert tree.tree_size(conn) == n
        assert conn.execute(select(func.count()).select_from(MERKLE_NODES)).scalar_one() == tree.node_count(n)
        roots = [tree.root_at(conn, size) for size in range(n + 1)]
        assert roots == [merkle.root_hash(leaves[:size]) for size in range(n + 1)]
        for size in range(1, n + 1):
            for index in range(size):
                proof = tree.inclusion(conn, index, size)
                merkle.verify_inclusion(leaves[index], index, size, proof, roots[size])
                assert len(proof) * 32 <= 32 * max(1, (size - 1).bit_length())
            for size1 in range(1, size + 1):
                merkle.verify_consistency(size1, size, tree.consistency(conn, size1, size), roots[size1], roots[size])


def test_a_unit_of_work_that_fails_leaves_no_node(catalog: Catalog, writer: AtomicWriter) -> None:
    writer.write_json("ledger", "p", {})
    with pytest.raises(RuntimeError), catalog.change() as tx:
        tx.events.append("checkpoint", details={"file": "x"})
        raise RuntimeError("boom")
    _events(catalog, 2)  # the next append reuses the seq and the tree grows from where it was
    with catalog.read() as conn:
        assert tree.root_at(conn, tree.tree_size(conn)) == merkle.root_hash(_leaves(catalog))
    assert catalog.audit_verify().ok


@pytest.mark.parametrize("size", [-1, 10**6, "3", True])
def test_a_proof_beyond_the_log_or_of_a_bad_size_is_refused(catalog: Catalog, writer: AtomicWriter, size) -> None:  # type: ignore[no-untyped-def]
    writer.write_json("ledger", "p", {})
    with catalog.read() as conn, pytest.raises(ValidationError):
        tree.root_at(conn, size)
    with catalog.read() as conn, pytest.raises(ValidationError):
        tree.consistency(conn, 0, size)


def test_an_index_beyond_the_tree_is_refused(catalog: Catalog, writer: AtomicWriter) -> None:
    writer.write_json("ledger", "p", {})
    with catalog.read() as conn, pytest.raises(ValidationError):
        tree.inclusion(conn, 5, tree.tree_size(conn))
    with catalog.read() as conn, pytest.raises(ValidationError):
        tree.consistency(conn, 2, 1)


# -- edits behind the log's back ----------------------------------------------------------------------------


def _five(catalog: Catalog, writer: AtomicWriter) -> None:
    for i in range(5):
        writer.write_json("ledger", f"p{i}", {"i": i})
    assert catalog.audit_verify().ok


@pytest.mark.parametrize(
    "edit, expected",
    [
        ("UPDATE merkle_nodes SET hash = {zero} WHERE level = 0 AND idx = 2", "level 0, index 2 (event 3) does not match"),
        ("UPDATE merkle_nodes SET hash = {zero} WHERE level = 2 AND idx = 0", "level 2, index 0 (events 1..4) does not match"),
        ("DELETE FROM merkle_nodes WHERE level = 1 AND idx = 1", "level 1, index 1 (events 3..4) is missing"),
        ("INSERT INTO merkle_nodes (level, idx, hash) VALUES (0, 99, {zero})", "1 node(s) beyond the log's 6 events"),
    ],
    ids=["a-leaf", "an-inner-node", "a-deleted-node", "an-extra-node"],
)
def test_an_edited_tree_is_named_by_audit_verify(catalog: Catalog, writer: AtomicWriter, run_cli, edit: str,  # type: ignore[no-untyped-def]
                                                 expected: str) -> None:  # fmt: skip
    _five(catalog, writer)
    zero = "X'" + "00" * 32 + "'" if catalog.db.is_sqlite else "'\\x" + "00" * 32 + "'::bytea"
    tamper(catalog, edit.format(zero=zero))
    report = catalog.audit_verify()
    assert not report.intact
    assert [p.kind for p in report.problems] == ["tree"] and expected in report.problems[0].message
    result = run_cli("audit", "verify")
    assert result.exit_code == 1 and "tree" in result.stdout


def test_an_event_edited_without_rebuilding_the_tree_is_named_twice(catalog: Catalog, writer: AtomicWriter) -> None:
    """The chain re-hashed after an edit (as an insider would) still leaves the tree: that is a tree problem."""
    _five(catalog, writer)
    with catalog.read() as conn:
        rows = conn.execute(select(EVENTS.c.seq, EVENTS.c.text).order_by(EVENTS.c.seq)).all()
    prev, statements = chain.GENESIS_HASH, []
    for row in rows:
        body = row.text.replace('"actor":"', '"actor":"x') if row.seq == 2 else row.text
        digest = chain.chain_hash(prev, body)
        actor = "actor = 'x' || actor, " if row.seq == 2 else ""
        statements.append(f"UPDATE events SET {actor}text = '{body}', hash = '{digest}' WHERE seq = {row.seq}")
        prev = digest
    tamper(catalog, *statements, f"UPDATE chain_head SET hash = '{prev}'")
    report = catalog.audit_verify()
    assert [(p.seq, p.kind) for p in report.problems] == [(2, "tree")]
    tamper(catalog, tree=True)  # the careful insider rebuilds the tree too: only a checkpoint can tell now
    assert catalog.audit_verify().intact


def test_the_tree_refuses_update_and_delete(catalog: Catalog, writer: AtomicWriter) -> None:
    from sqlalchemy.exc import DBAPIError

    writer.write_json("ledger", "p", {})
    for statement in ("UPDATE merkle_nodes SET idx = 7", "DELETE FROM merkle_nodes"):
        with pytest.raises(DBAPIError), catalog.db.engine.begin() as conn:
            conn.execute(text(statement))


def test_a_missing_node_is_a_store_error_when_proving(catalog: Catalog, writer: AtomicWriter) -> None:
    _five(catalog, writer)
    tamper(catalog, "DELETE FROM merkle_nodes WHERE level = 2")
    with catalog.read() as conn, pytest.raises(StoreError, match="no node at level 2, index 0"):
        tree.root_at(conn, 5)


# -- migration 0007 builds the tree of a log that had none ----------------------------------------------------


def test_migration_0007_builds_the_tree_of_the_events_already_logged(tmp_path: Path, catalog_url: str | None) -> None:
    from datetime import datetime, timezone

    database = Database(catalog_url or f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    try:
        database.upgrade("0006")
        prev, texts = chain.GENESIS_HASH, []
        with database.write() as conn:
            for seq in range(1, 12):
                link = chain.next_link(prev, seq, datetime(2024, 1, 1, tzinfo=timezone.utc), "checkpoint", None, None,
                                       None, "old@host:1", {"file": str(seq)})  # fmt: skip
                conn.execute(EVENTS.insert(), link)
                prev = link["hash"]
                texts.append(link["text"])
            conn.execute(text("UPDATE chain_head SET seq = 11, hash = :h"), {"h": prev})
        database.upgrade()
        with database.read() as conn:
            assert tree.root_at(conn, 11) == merkle.root_hash([tree.leaf(t) for t in texts])
            assert conn.execute(select(func.count()).select_from(MERKLE_NODES)).scalar_one() == tree.node_count(11)
        assert chain.verify(database.read).intact
    finally:
        database.dispose()
