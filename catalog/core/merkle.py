"""Merkle trees, inclusion and consistency proofs as defined by RFC 9162 §2.1 (the hashing of RFC 6962 §2.1).

Pure Python (``hashlib`` only), so anyone can check a proof with this module
alone; it is public as :mod:`catalog.merkle`. Every hash is a raw 32-byte
SHA-256 digest (``bytes``, not hex).

    leaf hash   SHA-256(0x00 || data)                     RFC 9162 §2.1.1
    node hash   SHA-256(0x01 || left || right)             RFC 9162 §2.1.1
    empty tree  SHA-256()                                  RFC 9162 §2.1.1

``D[start:end]`` is the run of leaves from ``start`` (included) to ``end``
(excluded), numbered from 0, and ``MTH(D[start:end])`` its Merkle Tree Hash.

Verifying (:func:`verify_inclusion`, :func:`verify_consistency`) returns None
or raises :class:`~catalog.core.errors.ProofError` whose one-line message
names what does not match: a malformed input (a hash that is not 32 bytes, an
index beyond the tree, a proof of the wrong length) fails the same way as a
proof that leads to another root.

Proofs are built (:func:`inclusion_proof`, :func:`consistency_proof`) from a
``subtree(start, end) -> MTH(D[start:end])`` callback, so a store that keeps
the hashes of its perfect subtrees (:func:`new_nodes`) answers with O(log n)
reads (:func:`range_hash`). Asking for a proof that cannot exist (an index
beyond the tree, sizes out of order) raises
:class:`~catalog.core.errors.ValidationError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from .errors import Param, ProofError, ValidationError

HASH_SIZE = 32
"""Bytes in every hash: SHA-256."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1)."""

Subtree = Callable[[int, int], bytes]
"""``subtree(start, end)`` returns MTH(D[start:end]) as 32 raw bytes."""

Node = Callable[[int, int], bytes]
"""``node(level, index)`` returns the hash of the perfect subtree D[index * 2**level:(index + 1) * 2**level]."""

Range = tuple[int, int]


# -- hashing (RFC 9162 §2.1.1) ------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 || data) (RFC 9162 §2.1.1). ValidationError unless ``data`` is bytes."""
    return hashlib.sha256(b"\x00" + _raw(Param("data"), data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node: SHA-256(0x01 || left || right) (RFC 9162 §2.1.1). ValidationError unless bytes."""
    return hashlib.sha256(b"\x01" + _raw(Param("left"), left) + _raw(Param("right"), right)).digest()


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the leaves whose hashes are given in order; :data:`EMPTY_ROOT` for none (RFC 9162 §2.1.1).

    Each leaf hash is 32 raw bytes (as :func:`leaf_hash` returns), else
    ValidationError. Built bottom-up: pairing neighbours level by level and
    carrying an odd last node up unchanged gives the same tree as the RFC's
    split at the largest power of two below n.
    """
    level = _hash_list(Param("leaf_hashes"), leaf_hashes, ValidationError)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = paired + level[len(paired) * 2 :]
    return level[0]


# -- proofs: which subtrees, in which order ----------------------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): where RFC 9162 §2.1.1 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, tree_size: int) -> list[Range]:
    """The ``(start, end)`` of each hash in the inclusion proof of leaf ``index``, in proof order.

    PATH(m, D[n]) of RFC 9162 §2.1.3.1: the proof's i-th hash is
    MTH(D[start:end]) of the i-th range, from the leaf's sibling up to the
    root's child. ValidationError unless 0 <= index < tree_size.
    """
    _check_size(Param("tree_size"), tree_size, ValidationError)
    if _whole(index) < 0 or index >= tree_size:
        raise ValidationError(Param("index"), f" must be from 0 to the tree size less one ({tree_size - 1}), not {index}",
                              value=index)  # fmt: skip
    ranges: list[Range] = []
    start, end = 0, tree_size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((start, mid))
            start = mid
    return ranges[::-1]


def consistency_ranges(size1: int, size2: int) -> list[Range]:
    """The ``(start, end)`` of each hash in the consistency proof from ``size1`` leaves to ``size2``, in proof order.

    PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1; empty
    when the sizes are equal. ValidationError unless 0 < size1 <= size2:
    every tree extends the empty one, so there is no proof from size 0.
    """
    _check_sizes(size1, size2, ValidationError)
    ranges: list[Range] = []
    start, end, known = 0, size2, True  # known: MTH(D[0:size1]) is the verifier's own root1
    while size1 != end:
        mid = start + _split(end - start)
        if size1 <= mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((start, mid))
            start, known = mid, False
    if not known:
        ranges.append((start, end))
    return ranges[::-1]


def inclusion_proof(index: int, tree_size: int, subtree: Subtree) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of ``tree_size`` leaves (RFC 9162 §2.1.3.1).

    ``subtree(start, end)`` returns MTH(D[start:end]); it is called once per
    hash, at most ceil(log2(tree_size)) times. ValidationError unless
    0 <= index < tree_size.
    """
    return [subtree(start, end) for start, end in inclusion_ranges(index, tree_size)]


def consistency_proof(size1: int, size2: int, subtree: Subtree) -> list[bytes]:
    """The consistency proof from the tree of ``size1`` leaves to the tree of ``size2`` (RFC 9162 §2.1.4.1).

    ``subtree(start, end)`` returns MTH(D[start:end]) of the larger tree; it
    is called once per hash, at most ceil(log2(size2)) + 1 times.
    ValidationError unless 0 < size1 <= size2.
    """
    return [subtree(start, end) for start, end in consistency_ranges(size1, size2)]


# -- subtrees from perfect subtrees: what a store keeps ------------------------------------------------------


def range_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)``, left to right, that make up D[start:end].

    One per set bit of ``end - start``, largest first: the RFC's split at the
    largest power of two, repeated on the right part. Every range a proof
    asks for starts at a multiple of its largest part, so each part is a node
    of the whole tree; ValidationError for a range that does not.
    """
    size = _whole(end) - _whole(start)
    if start < 0 or size < 0 or (size and start % (1 << (size.bit_length() - 1))):
        raise ValidationError(f"[{start}, {end}) is not a range of whole subtrees", value=(start, end))
    nodes = []
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def range_hash(start: int, end: int, node: Node) -> bytes:
    """MTH(D[start:end]) from the hashes of its perfect subtrees (:func:`range_nodes`); :data:`EMPTY_ROOT` if empty.

    ``node(level, index)`` returns the hash of the perfect subtree
    D[index * 2**level:(index + 1) * 2**level] (level 0: a leaf hash); it is
    called once per set bit of ``end - start``. The root of a tree of n
    leaves is ``range_hash(0, n, node)``, and ``lambda s, e: range_hash(s, e,
    node)`` is a ``subtree`` callback for the proof builders.
    """
    hashes = [node(level, index) for level, index in range_nodes(start, end)]
    if not hashes:
        return EMPTY_ROOT
    result = hashes.pop()
    while hashes:
        result = node_hash(hashes.pop(), result)
    return result


def new_nodes(index: int, leaf: bytes, node: Node) -> list[tuple[int, int, bytes]]:
    """The perfect subtrees ``(level, index, hash)`` that appending leaf ``index`` completes, the leaf first.

    Appending leaves 0, 1, 2, ... in order and keeping every node returned
    keeps each perfect subtree once (about 2 per leaf), which is all
    :func:`range_hash` needs. ``node`` reads a node kept before (the left
    siblings, one per trailing 1 bit of ``index``).
    """
    if _whole(index) < 0:
        raise ValidationError(Param("index"), f" must be 0 or more, not {index}", value=index)
    nodes = [(0, index, _hash(Param("leaf"), leaf, ValidationError))]
    level, at, current = 0, index, nodes[0][2]
    while at & 1:
        current = node_hash(node(level, at - 1), current)
        level, at = level + 1, at >> 1
        nodes.append((level, at, current))
    return nodes


# -- verification (RFC 9162 §2.1.3.2, §2.1.4.2) -------------------------------------------------------------


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``proof`` shows the leaf with hash ``leaf_hash`` at ``index`` in the tree with ``root``.

    RFC 9162 §2.1.3.2. All hashes are 32 raw bytes; the proof has exactly as
    many as PATH(index, D[tree_size]) (:func:`inclusion_ranges`). Returns None;
    raises ProofError naming what does not match. ``tree_size`` itself is
    bound by the signed checkpoint that carries ``root``, not by this proof.
    """
    hashes = _hash_list(Param("proof"), proof, ProofError)
    seed = _hash(Param("leaf_hash"), leaf_hash)
    expected = _hash(Param("root"), root)
    _check_size(Param("tree_size"), tree_size)
    if _whole(index, ProofError) < 0 or index >= tree_size:
        raise ProofError(Param("index"), f" {index} is not a leaf of a tree of {tree_size}", value=index)
    _check_length(hashes, len(inclusion_ranges(index, tree_size)), f"leaf {index} of a tree of {tree_size}")
    # RFC 9162 §2.1.3.2 steps 2-5. The length is checked above, exactly; that is all the RFC's shifts along
    # the right border and its "sn is 0" checks police: once fn equals sn it stays so, and every later hash
    # joins from the left.
    fn, sn, r = index, tree_size - 1, seed
    for p in hashes:
        r = node_hash(p, r) if fn & 1 or fn == sn else node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    _check_root(Param("root"), r, expected, f"leaf {index} of a tree of {tree_size}")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size2`` leaves with ``root2`` extends the tree of ``size1`` leaves with ``root1``.

    RFC 9162 §2.1.4.2, for 0 < size1 <= size2 (equal sizes: an empty proof
    and equal roots). All hashes are 32 raw bytes; the proof has exactly as
    many as PROOF(size1, D[size2]) (:func:`consistency_ranges`). Returns
    None; raises ProofError naming what does not match.
    """
    hashes = _hash_list(Param("proof"), proof, ProofError)
    first, second = _hash(Param("root1"), root1), _hash(Param("root2"), root2)
    _check_sizes(size1, size2, ProofError)
    what = f"tree {size1} to tree {size2}"
    _check_length(hashes, len(consistency_ranges(size1, size2)), what)
    if size1 == size2:
        if first != second:
            raise ProofError(Param("root1"), " and ", Param("root2"), f" differ, but both are of a tree of {size1}")
        return
    if size1 & (size1 - 1) == 0:  # size1 is a power of 2: its root is a node of the larger tree
        hashes = [first, *hashes]
    # RFC 9162 §2.1.4.2 steps 3-7 (on the right border as in verify_inclusion: the length is checked above).
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = hashes[0]
    for c in hashes[1:]:
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    _check_root(Param("root1"), fr, first, what)
    _check_root(Param("root2"), sr, second, what)


# -- input checks --------------------------------------------------------------------------------------------


def _whole(number: object, error: type[ProofError | ValidationError] = ValidationError) -> int:
    """``number`` if it is an int (not a bool), else ``error``."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise error(f"tree sizes and leaf indexes are whole numbers, not {number!r}", value=number)
    return number


def _check_size(name: Param, size: int, error: type[ProofError | ValidationError] = ProofError) -> None:
    if _whole(size, error) < 1:
        raise error(name, f" must be 1 or more, not {size}", value=size)


def _check_sizes(size1: int, size2: int, error: type[ProofError | ValidationError]) -> None:
    _check_size(Param("size1"), size1, error)  # RFC 9162 §2.1.4: 0 < m; a proof from the empty tree proves nothing
    _check_size(Param("size2"), size2, error)
    if size1 > size2:
        raise error(Param("size1"), f" ({size1}) must not exceed ", Param("size2"), f" ({size2})", value=size1)


def _hash_list(name: Param, values: Sequence[bytes], error: type[ProofError | ValidationError]) -> list[bytes]:
    if isinstance(values, bytes | bytearray | str) or not isinstance(values, Sequence):
        raise error(name, f" must be a list of {HASH_SIZE}-byte hashes, not {type(values).__name__}", value=values)
    return [_hash(name, h, error, at=i) for i, h in enumerate(values)]


def _raw(name: Param, value: bytes, error: type[ProofError | ValidationError] = ValidationError, where: str = "",
         size: str = "") -> bytes:  # fmt: skip
    """``value`` as bytes if it is bytes or a bytearray (``bytes(5)`` would be five zero bytes), else ``error``."""
    if not isinstance(value, bytes | bytearray):
        raise error(name, f"{where} must be {size}raw bytes, not {type(value).__name__}", value=value)
    return bytes(value)


def _hash(name: Param, value: bytes, error: type[ProofError | ValidationError] = ProofError,
          at: int | None = None) -> bytes:  # fmt: skip
    where = "" if at is None else f"[{at}]"
    raw = _raw(name, value, error, where, f"{HASH_SIZE} ")
    if len(raw) != HASH_SIZE:
        raise error(name, f"{where} must be {HASH_SIZE} bytes (a raw SHA-256), not {len(raw)}", value=value)
    return raw


def _check_length(proof: list[bytes], expected: int, what: str) -> None:
    if len(proof) != expected:
        raise ProofError(Param("proof"), f" has {len(proof)} hashes, but the proof for {what} has {expected}",
                         value=len(proof))  # fmt: skip


def _check_root(name: Param, computed: bytes, expected: bytes, what: str) -> None:
    if computed != expected:
        raise ProofError(f"the proof for {what} leads to {computed.hex()}, not ", name, f" {expected.hex()}",
                         value=expected)  # fmt: skip
