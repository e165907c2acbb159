"""The audit log's Merkle tree as stored: the hash of every perfect subtree, kept beside the events.

Leaf ``i`` of the tree is event ``seq = i + 1``; its data is the event's
stored canonical text (UTF-8), so the leaf hash is ``SHA-256(0x00 ‖ text)``
(RFC 9162 §2.1.1). Appending a leaf completes a few perfect subtrees
(:func:`catalog.core.merkle.new_nodes`, about two per event); the unit of work
stores them in ``merkle_nodes`` in the same transaction as the event. Any
root, inclusion proof or consistency proof is then a handful of those
subtrees: one query of O(log n) rows, never a pass over the log.

This module only reads; the unit of work is the one writer
(:class:`Growth` tells it what to insert). :class:`TreeCheck` recomputes the
tree from the events for ``audit verify``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, func, or_, select

from . import merkle
from .errors import Remedy, StoreError, ValidationError
from .schema import CHAIN_HEAD, MERKLE_NODES

Pair = tuple[int, int]  # (level, idx)
_N = MERKLE_NODES.c


def leaf(text: str) -> bytes:
    """The leaf hash of an event from its stored canonical text: SHA-256(0x00 ‖ UTF-8 text)."""
    return merkle.leaf_hash(text.encode("utf-8"))


def node_count(size: int) -> int:
    """How many perfect subtrees a tree of ``size`` leaves keeps: the sum of ``size >> level``."""
    total = 0
    while size:
        total, size = total + size, size >> 1
    return total


class Frontier:
    """The right border of a tree grown leaf by leaf in memory: the last complete node of each level.

    That is all :func:`~catalog.core.merkle.new_nodes` reads (the left sibling
    of each node an append completes), so a pass over the whole log holds
    O(log n) hashes. Used to recompute the tree (verify) and to build it for a
    log that has none yet (migration 0007).
    """

    def __init__(self, size: int = 0, border: Iterable[bytes] = ()) -> None:
        """An empty tree, or one of ``size`` leaves resumed from its ``border``: the hashes of the perfect
        subtrees :func:`~catalog.core.merkle.range_nodes` ``(0, size)`` names, left to right (ValidationError if
        there are not as many)."""
        nodes = merkle.range_nodes(0, size)
        hashes = list(border)
        if len(hashes) != len(nodes):
            raise ValidationError(f"a tree of {size} leaves has a border of {len(nodes)} hashes, not {len(hashes)}")
        self.size = size
        self._border: dict[int, bytes] = {level: digest for (level, _idx), digest in zip(nodes, hashes)}

    def root(self) -> bytes:
        """The RFC 9162 root of the leaves so far (``merkle.EMPTY_ROOT`` for none)."""
        return merkle.range_hash(0, self.size, lambda level, _idx: self._border[level])

    def add(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf; returns the nodes ``(level, idx, hash)`` it completes, the leaf first."""
        nodes = merkle.new_nodes(self.size, leaf_hash, lambda level, _idx: self._border[level])
        for level, _idx, digest in nodes:
            self._border[level] = digest
        self.size += 1
        return nodes


class Growth:
    """The nodes one unit of work adds, for the events it appends (the unit of work inserts them)."""

    def __init__(self, conn: Connection, known: Mapping[Pair, bytes] | None = None) -> None:
        """``known``: stored nodes already known (the right border a writer kept from its last commit, valid
        while the log's head is where it left it), so they need not be read again."""
        self._conn = conn
        self._new: dict[Pair, bytes] = {}
        self._known: dict[Pair, bytes] = dict(known or {})  # stored nodes known without reading them

    def add(self, seq: int, text: str) -> None:
        """Grow the tree by event ``seq``'s leaf (events come in seq order, the head locked).

        The left siblings it needs that this unit of work did not make, and did
        not know, are read in one query (none for an even leaf index, at most one for an odd).
        """
        index, level, siblings = seq - 1, 0, []
        while (index >> level) & 1:
            siblings.append((level, (index >> level) - 1))
            level += 1
        missing = [pair for pair in siblings if pair not in self._new and pair not in self._known]
        if missing:
            self._known.update(fetch(self._conn, missing))
        for level, idx, digest in merkle.new_nodes(
            index, leaf(text), lambda lv, ix: self._new.get((lv, ix)) or self._known[lv, ix]
        ):
            self._new[level, idx] = digest

    def border(self, size: int) -> dict[Pair, bytes]:
        """The right border of the tree of ``size`` leaves (the perfect subtrees the next append may need:
        :func:`~catalog.core.merkle.range_nodes` ``(0, size)``), as far as this unit of work knows them."""
        found = {}
        for pair in merkle.range_nodes(0, size):
            digest = self._new.get(pair) or self._known.get(pair)
            if digest is not None:
                found[pair] = digest
        return found

    def root(self, size: int) -> bytes:
        """The root (32 raw bytes) of the first ``size`` leaves, those this unit of work added (not stored yet) too."""
        if not size:
            return merkle.EMPTY_ROOT
        stored = fetch(self._conn, [pair for pair in merkle.range_nodes(0, size) if pair not in self._new])
        return merkle.range_hash(0, size, lambda lv, ix: self._new.get((lv, ix)) or stored[lv, ix])

    def rows(self) -> list[dict[str, Any]]:
        """The rows to insert into ``merkle_nodes``: level, idx and hash of each new node."""
        return [{"level": level, "idx": idx, "hash": digest} for (level, idx), digest in self._new.items()]


# -- reading ------------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _fetch_statement(count: int) -> Select[Any]:
    """SELECT the nodes ``(:l0, :i0) … (:l{count-1}, :i{count-1})`` by primary key: built once per count, so the
    write path and every proof reuse SQLAlchemy's compiled statement (4-6x cheaper than building it each time)."""
    return select(_N.level, _N.idx, _N.hash).where(
        or_(*(and_(_N.level == bindparam(f"l{i}"), _N.idx == bindparam(f"i{i}")) for i in range(count)))
    )


def fetch(conn: Connection, pairs: Iterable[Pair]) -> dict[Pair, bytes]:
    """The stored hashes of the nodes ``(level, idx)`` in one query.

    Raises StoreError if one is missing: the tree lost a node (an edit behind
    the log's back; ``catalog audit verify`` says where).
    """
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    params = {f"{kind}{i}": value for i, pair in enumerate(wanted) for kind, value in zip("li", pair, strict=True)}
    rows = conn.execute(_fetch_statement(len(wanted)), params).all()
    found = {(row.level, row.idx): bytes(row.hash) for row in rows}
    missing = [pair for pair in wanted if pair not in found]
    if missing:
        level, idx = missing[0]
        raise StoreError(
            f"the audit log's Merkle tree has no node at level {level}, index {idx}: it was damaged behind the log's back",
            remedy=Remedy.AUDIT,
        )
    return found


def tree_size(conn: Connection) -> int:
    """The number of leaves: the events in the log (the chain head's seq)."""
    return int(conn.execute(select(CHAIN_HEAD.c.seq).where(CHAIN_HEAD.c.id == 1)).scalar_one())


def _check_size(conn: Connection, size: int, what: str = "tree size") -> None:
    if type(size) is not int or size < 0:
        raise ValidationError(f"{what} must be a whole number 0 or more, not {size!r}", value=size)
    have = tree_size(conn)
    if size > have:
        raise ValidationError(f"{what} {size} is beyond the log, which has {have} events", value=size)


def _hashes(conn: Connection, ranges: list[tuple[int, int]]) -> list[bytes]:
    """MTH(D[start:end]) of each range, from one query for all their perfect subtrees."""
    pairs = [pair for start, end in ranges for pair in merkle.range_nodes(start, end)]
    stored = fetch(conn, pairs)
    return [merkle.range_hash(start, end, lambda level, idx: stored[level, idx]) for start, end in ranges]


def root_at(conn: Connection, size: int) -> bytes:
    """The RFC 9162 root (32 raw bytes) of the first ``size`` events; ``merkle.EMPTY_ROOT`` for 0.

    ValidationError if ``size`` is negative or beyond the log.
    """
    _check_size(conn, size)
    return _hashes(conn, [(0, size)])[0] if size else merkle.EMPTY_ROOT


def inclusion(conn: Connection, index: int, size: int) -> list[bytes]:
    """The inclusion proof (RFC 9162 §2.1.3.1) of leaf ``index`` (event ``index + 1``) in the tree of ``size``.

    ValidationError if ``size`` is beyond the log or ``index`` not below it.
    """
    _check_size(conn, size)
    return _hashes(conn, merkle.inclusion_ranges(index, size))


def consistency(conn: Connection, size1: int, size2: int) -> list[bytes]:
    """The consistency proof (RFC 9162 §2.1.4.1) from the tree of ``size1`` events to that of ``size2``.

    ValidationError if a size is beyond the log or ``size1 > size2``.
    """
    _check_size(conn, size2)
    return _hashes(conn, merkle.consistency_ranges(size1, size2))


# -- verification -------------------------------------------------------------------------------------------


class TreeCheck:
    """Recompute the tree from the events, in seq order, and compare it with the stored nodes in batches.

    ``problem(seq, message)`` is called for what disagrees: the first stored
    node that differs from (or is missing beside) the recomputed one, with how
    many do, and stored nodes beyond the log. Stops at a gap in the events
    (the chain check reports the gap).
    """

    def __init__(self, read: Any, problem: Callable[[int | None, str], None], batch: int = 1000) -> None:
        self._read, self._problem, self._batch = read, problem, batch
        self._frontier = Frontier()
        self._expected: dict[Pair, bytes] = {}
        self._first: tuple[int, Pair, str] | None = None
        self._wrong = 0
        self._stopped = False

    def see(self, seq: int, text: str) -> None:
        """The next event of the walk."""
        if self._stopped or seq != self._frontier.size + 1:
            self._stopped = True
            return
        for level, idx, digest in self._frontier.add(leaf(text)):
            self._expected[level, idx] = digest
        if len(self._expected) >= 2 * self._batch:
            self._compare()

    def _compare(self) -> None:
        spans: dict[int, tuple[int, int]] = {}
        for level, idx in self._expected:
            lo, hi = spans.get(level, (idx, idx))
            spans[level] = (min(lo, idx), max(hi, idx))
        with self._read() as conn:
            rows = conn.execute(
                select(_N.level, _N.idx, _N.hash).where(
                    or_(*(and_(_N.level == lv, _N.idx.between(lo, hi)) for lv, (lo, hi) in spans.items()))
                )
            ).all()
        stored = {(row.level, row.idx): bytes(row.hash) for row in rows}
        for pair, digest in sorted(
            self._expected.items(), key=lambda item: ((item[0][1] + 1) << item[0][0], item[0][0])
        ):
            found = stored.get(pair)
            if found != digest:
                self._wrong += 1
                if self._first is None:
                    level, idx = pair
                    seq = (idx + 1) << level  # the event whose append completed this node
                    what = "is missing" if found is None else "does not match the events"
                    self._first = (seq, pair, what)
        self._expected.clear()

    def done(self) -> None:
        """Compare what is left and count the stored nodes (none may lie beyond the log)."""
        if self._expected:
            self._compare()
        if self._first is not None:
            seq, (level, idx), what = self._first
            first, last = idx * (1 << level) + 1, (idx + 1) * (1 << level)
            span = f"event {first}" if first == last else f"events {first}..{last}"
            self._problem(seq, f"the Merkle tree's node at level {level}, index {idx} ({span}) {what}; "
                               f"{self._wrong} stored hash(es) of the tree disagree with the events")  # fmt: skip
        if self._stopped:
            return
        with self._read() as conn:
            stored = conn.execute(select(func.count()).select_from(MERKLE_NODES)).scalar_one()
        expected = node_count(self._frontier.size)
        if stored > expected:
            self._problem(None, f"the Merkle tree keeps {stored - expected} node(s) beyond the log's "
                                f"{self._frontier.size} events: they were added behind the log's back")  # fmt: skip
