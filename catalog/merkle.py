"""Merkle trees and their proofs (RFC 9162 §2.1, the hashing of RFC 6962): check the catalog's evidence yourself.

Pure Python: importing this module loads neither SQLAlchemy nor the store, so
an auditor can check a proof with this package alone.

    >>> from catalog import merkle
    >>> leaves = [merkle.leaf_hash(data) for data in (b"a", b"b", b"c")]
    >>> root = merkle.root_hash(leaves)
    >>> proof = merkle.inclusion_proof(2, 3, lambda start, end: merkle.root_hash(leaves[start:end]))
    >>> merkle.verify_inclusion(leaves[2], 2, 3, proof, root)  # None, or raises catalog.errors.ProofError

The implementation lives in :mod:`catalog.core.merkle`.
"""

from __future__ import annotations

from .core.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Node,
    Subtree,
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    new_nodes,
    node_hash,
    range_hash,
    range_nodes,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Node",
    "Subtree",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "new_nodes",
    "node_hash",
    "range_hash",
    "range_nodes",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]
