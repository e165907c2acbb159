"""The CryptoRun scanner's own artifact families: explain reports, ledger, health, config snapshots.

Typed models with validation, their writers (:class:`catalog.cryptorun.writer.AtomicWriter`)
and the demo. Importing this package registers the explain pair with the
generic services (reconcile regenerates a lone report's CSV through it) and
loads nothing heavy.
"""

from __future__ import annotations

from ..ops.families import PairRule, register_pair


def _derive_explain_csv(json_data: bytes, csv_precision: int) -> bytes:
    """The 18-column CSV of an explain report's JSON bytes (lenient, as the Go scanner wrote them)."""
    from ..core.formats import csv_bytes
    from .explain import ExplainReport
    from .explain_rules import csv_rows

    return csv_bytes(csv_rows(ExplainReport.from_json(json_data, lenient=True)), csv_precision)


register_pair(PairRule("explain", "json", "csv", _derive_explain_csv))
