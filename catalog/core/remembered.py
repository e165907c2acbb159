"""What a writer keeps from one commit for the next, and when it may trust it (issue 17: nothing read twice)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Remembered:
    """What a unit of work read or computed, kept by its :class:`~catalog.core.store.Catalog` after the commit.

    Valid only while the log's head is still ``head`` (seq, chain hash): every
    change of the catalog appends an event, which moves the head, so a head
    found where this writer left it means nothing changed since: not the
    retention floors (``floors``, type -> days; None: not read), not the
    Merkle tree's right border (``border``, (level, idx) -> hash: the stored
    nodes the next append reads), not the bytes on disk (``store_bytes``;
    None: not known). A head anywhere else (another writer, another process:
    a floor raised elsewhere included) and the next unit of work reads them again
    (:class:`catalog.core.unit_of_work.UnitOfWork`).
    """

    head: tuple[int, str]
    floors: Mapping[str, int] | None
    border: Mapping[tuple[int, int], bytes]
    store_bytes: int | None
