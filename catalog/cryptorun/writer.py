"""The scanner's typed writers: explain pairs, ledger snapshots, health metrics and traces, config snapshots.

Each validates its model, serialises it, and hands the bytes to the generic
write protocol (:class:`catalog.ops.write.Writer`), one commit per call, or
to a batch of it (:meth:`AtomicWriter.batch`: a scanner cycle as one commit).
The seed's legacy calls :func:`write_json` and :func:`write_csv` are here too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from ..core.formats import csv_bytes, json_bytes
from ..core.names import store_path
from ..core.records import ArtifactRecord
from ..ops.write import Batch, Queued, Writer
from ..ops.write_methods import Pending, WriteMethods
from . import explain_rules
from .explain import ExplainReport
from .health import HealthMetrics, Span, spans_jsonl
from .ledger import Portfolio, Trade, executions_rows

R = TypeVar("R")


class ScannerFamilies(WriteMethods[R]):
    """The scanner's typed artifacts, over :class:`catalog.ops.write_methods.WriteMethods`.

    On an :class:`AtomicWriter` each call is one commit and returns records;
    on an :class:`AtomicBatch` each returns :class:`~catalog.ops.write.Queued`
    handles, recorded together when the batch ends.
    """

    def write_explain_report(self, report: ExplainReport, prefix: str) -> tuple[R, R]:
        """Validate ``report`` and write it as one pair: ``explain/<ts>-<prefix>-explain.json`` and ``.csv``.

        One instant, truncated to the second, names both files and becomes the
        report's ``meta.timestamp``. The JSON is published first; both rows
        and their events are committed together, linked by a ``pair_id``.
        Returns the JSON's and the CSV's records (in a batch, their handles). Raises
        :class:`~catalog.core.errors.ValidationError` naming the first rule
        broken, and otherwise what :meth:`catalog.ops.write.Writer.write` raises.
        """
        now = datetime.now(timezone.utc).replace(microsecond=0)
        report = report.with_timestamp(now)
        explain_rules.require_consistent(report)
        json_data = json_bytes(report.to_dict(), self.settings.json_indent)
        csv_data = csv_bytes(explain_rules.csv_rows(report), self.settings.csv_precision)
        names = [self.name("explain", prefix, ext, now) for ext in ("json", "csv")]
        json_record, csv_record = self.write([Pending(names[0], json_data), Pending(names[1], csv_data)], pair=True)
        return json_record, csv_record

    def import_explain(self, data: bytes, prefix: str, source: str = "") -> tuple[list[R], list[str]]:
        """Bring in a report written elsewhere (e.g. by the Go scanner) as a catalogued pair.

        The JSON is stored byte for byte (its SHA-256 is the chain of custody),
        dated by its own ``meta.timestamp``; the CSV is derived from it, with
        its data rows. Rules the report breaks are recorded in the import
        events and returned (as text) beside the two records; a report that
        cannot be read at all is refused (:class:`~catalog.core.errors.ValidationError`).
        """
        report = ExplainReport.from_json(data, lenient=True)
        broken = list(report.load_notes) + [f"{v} [rule: {v.rule}]" for v in explain_rules.check_report(report)]
        csv_data = csv_bytes(explain_rules.csv_rows(report), self.settings.csv_precision)
        moment = report.meta.timestamp
        names = [self.name("explain", prefix, ext, moment) for ext in ("json", "csv")]
        source_details = {"source": source, "source_sha256": hashlib.sha256(data).hexdigest(), "broken_rules": broken}
        items = [
            Pending(names[0], data, "import", source_details),
            Pending(names[1], csv_data, "import", {"derived_from": store_path(names[0], self.settings.layout)}),
        ]
        return self.write(items, pair=True), broken

    def write_portfolio(
        self, prefix: str, portfolio: Portfolio | Mapping[str, Any], *, created_at: datetime | None = None
    ) -> R:
        """A validated portfolio snapshot as ``ledger/<ts>-<prefix>-ledger.json``; ValidationError if invalid."""
        model = portfolio if isinstance(portfolio, Portfolio) else Portfolio.from_dict(portfolio)
        return self.write_json("ledger", prefix, model.to_dict(), created_at=created_at)

    def write_executions(
        self, prefix: str, trades: Iterable[Trade | Mapping[str, Any]], *, created_at: datetime | None = None
    ) -> R:
        """A validated execution log (one row per trade) as ``ledger/<ts>-<prefix>-ledger.csv``.

        Raises ValidationError for a bad trade or a repeated order id.
        """
        return self.write_csv("ledger", prefix, executions_rows(trades), created_at=created_at)

    def write_health_metrics(
        self, prefix: str, metrics: HealthMetrics | Mapping[str, Any], *, created_at: datetime | None = None
    ) -> R:
        """Validated hourly health metrics as ``health/<ts>-<prefix>-health.json``; ValidationError if invalid."""
        model = metrics if isinstance(metrics, HealthMetrics) else HealthMetrics.from_dict(metrics)
        return self.write_json("health", prefix, model.to_dict(), created_at=created_at)

    def write_traces(
        self, prefix: str, spans: Iterable[Span | Mapping[str, Any]], *, created_at: datetime | None = None
    ) -> R:
        """Validated request traces, one span per line, as ``health/<ts>-<prefix>-health.jsonl``.

        A trace file is complete or absent: it is published in one piece like
        every artifact. Raises ValidationError for a bad span or none at all.
        """
        data = spans_jsonl(spans)
        return self.write([Pending(self.name("health", prefix, "jsonl", created_at), data)])[0]

    def snapshot_config(self, prefix: str = "active", *, created_at: datetime | None = None) -> R:
        """The effective configuration, with where each value came from, as ``config/<ts>-<prefix>-config.json``.

        The catalog URL's password is hidden (:meth:`catalog.core.settings.Settings.values`).
        """
        settings = self.settings
        snapshot = {"settings": settings.values(), "sources": dict(sorted(settings.sources.items()))}
        return self.write_json("config", prefix, snapshot, created_at=created_at)


class AtomicWriter(ScannerFamilies[ArtifactRecord], Writer):
    """Writes the scanner's artifacts into a store and records each one in its catalog.

        >>> with AtomicWriter("./artifacts") as writer:
        ...     record = writer.write_json("ledger", "portfolio", {"cash": 100.0})
        ...     with writer.batch() as cycle:  # several artifacts, one commit
        ...         pair = cycle.write_explain_report(report, "scan")
        ...         cycle.write_portfolio("portfolio", portfolio)
        ...     records = cycle.records
    """

    def batch(self) -> AtomicBatch:
        """An :class:`AtomicBatch` (use it in a ``with`` block): every typed write through it is one commit.

        See :class:`catalog.ops.write.Batch` for what it promises and refuses.
        """
        return AtomicBatch(self)


class AtomicBatch(ScannerFamilies[Queued], Batch):
    """A batch (:class:`catalog.ops.write.Batch`) with the scanner's typed families; made by :meth:`AtomicWriter.batch`."""


def _legacy_write(write: Callable[[AtomicWriter], ArtifactRecord]) -> ArtifactRecord:
    with AtomicWriter() as writer:
        return write(writer)


def write_json(prefix: str, data: Any) -> ArtifactRecord:
    """The seed's legacy call: any JSON-able ``data`` as a ledger artifact under the configured base folder."""
    return _legacy_write(lambda writer: writer.write_json("ledger", prefix, data))


def write_csv(prefix: str, rows: Iterable[Sequence[Any]]) -> ArtifactRecord:
    """The seed's legacy call: ``rows`` (a list of lists, the first the header) as a ledger CSV artifact."""
    return _legacy_write(lambda writer: writer.write_csv("ledger", prefix, rows))
