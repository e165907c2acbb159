"""Hooks through which artifact families plug into the generic services.

A family whose artifacts come in linked pairs (the scanner's explain report:
a JSON and the CSV derived from it) registers a :class:`PairRule`; reconcile
then recognises half pairs of that type and regenerates the derived half
from the primary one. The generic services never import a family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PairRule:
    """How the two files of one linked pair relate.

    ``derive(primary_bytes, csv_precision)`` rebuilds the derived file's bytes
    from the primary's; it raises :class:`~catalog.core.errors.CatalogError`
    when the primary cannot be read as this family's artifact.
    """

    type: str
    primary_ext: str
    derived_ext: str
    derive: Callable[[bytes, int], bytes]

    def twin(self, path: str) -> str:
        """The store path of the other half of ``path``'s pair (same stem, the other extension)."""
        stem, _, ext = path.rpartition(".")
        return f"{stem}.{self.derived_ext if ext == self.primary_ext else self.primary_ext}"


_PAIRS: dict[str, PairRule] = {}


def register_pair(rule: PairRule) -> None:
    """Register (or replace) the pair rule of ``rule.type``."""
    _PAIRS[rule.type] = rule


def pair_rule(artifact_type: str) -> PairRule | None:
    """The pair rule registered for a type, or None if its artifacts are single files."""
    return _PAIRS.get(artifact_type)
