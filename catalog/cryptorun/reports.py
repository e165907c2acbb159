"""Reading an explain report to look at: from a file outside the store, or from the catalog (verified)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError, NotFoundError, ValidationError
from ..core.fs import is_inside, read_file
from ..core.settings import Settings
from ..core.store import Catalog
from ..ops.query import pair_partner
from ..ops.read import copy_verified
from .explain import ExplainReport
from .explain_rules import Violation, check_report


def read_report(settings: Settings, source: str, *, actor: str | None = None) -> tuple[bytes, str]:
    """A report's bytes and where they came from: a file outside the store, or a catalogued artifact.

    The CSV half of a catalogued pair stands for its report: the JSON it was
    derived from is read. A catalogued artifact's bytes are verified against
    its SHA-256 first (:class:`~catalog.core.errors.IntegrityError` if they no
    longer match; NotFoundError if they are not served, e.g. deleted). Raises
    :class:`InputError` if ``source`` is neither, or a CSV without its JSON.
    """
    path = Path(source)
    if path.is_file() and not is_inside(path, settings.base_dir):
        data = read_file(source, "input file", InputError)
        if not data:
            raise InputError(f"input file {source} is empty")
        return data, source
    with Catalog(settings, actor=actor) as catalog:
        try:
            catalog.require_path(source)
        except NotFoundError:
            if path.exists() and not path.is_file():
                raise InputError(f"{source} is a folder, not a report") from None
            raise InputError(f"{source} is neither a report file nor an artifact in the catalog") from None
        return read_catalogued(catalog, source)


def read_catalogued(catalog: Catalog, path: str) -> tuple[bytes, str]:
    """A catalogued report's bytes, verified against its SHA-256 first, and the path they were read from.

    The CSV half of a pair stands for its report: the JSON it was derived
    from is read. Raises NotFoundError for an unknown path or bytes that are
    not served (e.g. deleted), ValidationError for an artifact that is not of
    type ``explain``, InputError for a CSV without its JSON, and
    :class:`~catalog.core.errors.IntegrityError` if the bytes no longer match.
    """
    record = catalog.require_path(path)
    if record.type != "explain":
        raise ValidationError(f"{record.path} is a {record.type} artifact, not an explain report")
    if record.ext == "csv":
        report = pair_partner(catalog, record)
        if report is None:
            raise InputError(f"{record.path} is a CSV without the JSON report it was derived from; "
                             "explain show reads the report")  # fmt: skip
        record = report
    buffer = io.BytesIO()
    copy_verified(catalog, record.path, buffer)
    return buffer.getvalue(), record.path


@dataclass(frozen=True)
class LoadedReport:
    """A report as loaded (leniently, as the Go scanner wrote them) with the rules it breaks."""

    report: ExplainReport
    violations: list[Violation]

    @property
    def broken_rules(self) -> list[str]:
        """Every problem as text: what lenient loading noted, then each broken rule."""
        return list(self.report.load_notes) + [str(v) for v in self.violations]


def load_report(settings: Settings, source: str, *, actor: str | None = None) -> LoadedReport:
    """Read (see :func:`read_report`) and load a report leniently, and check its rules.

    Raises what :func:`read_report` raises, and ValidationError for bytes that are not a report.
    """
    data, _ = read_report(settings, source, actor=actor)
    return parse_report(data)


def parse_report(data: bytes) -> LoadedReport:
    """A report's bytes loaded leniently, with the rules it breaks; ValidationError for bytes that are not a report."""
    report = ExplainReport.from_json(data, lenient=True)
    return LoadedReport(report, check_report(report))
