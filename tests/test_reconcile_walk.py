"""Quick reconcile's walk (issue 17): sibling partitions' rows read in one transaction, the catalog's folders found
without reading every row, and the same findings as before for every kind of row a folder holds."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import event

from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops import reconcile as reconcile_module
from catalog.ops.reconcile import reconcile

START = datetime(2025, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def days(catalog: Catalog) -> list:  # type: ignore[type-arg]
    """40 ledger files in 40 day partitions (2025/03/01 to 2025/04/09), two explain files in one."""
    catalog.settings = replace(catalog.settings, layout="day")
    writer = AtomicWriter(catalog=catalog)
    written = []
    for n in range(40):
        with freeze_time(START + timedelta(days=n)):
            written.append(writer.write_json("ledger", f"d{n}", {"n": n}))
    with freeze_time(START):
        written += [writer.write_json("explain", f"e{n}", {"n": n}) for n in range(2)]
    return written


def _transactions(catalog: Catalog, run: object) -> int:
    """How many read transactions ``run()`` opens."""
    count = 0

    def begun(_conn: object) -> None:
        nonlocal count
        count += 1

    engine = catalog.db.read_engine
    event.listen(engine, "begin", begun)
    try:
        run()  # type: ignore[operator]
    finally:
        event.remove(engine, "begin", begun)
    return count


def test_sibling_partitions_are_read_in_one_transaction(days, catalog: Catalog) -> None:  # type: ignore[no-untyped-def]
    """40 day folders (and their month, year and type folders): a handful of read transactions, not one a folder."""
    reports = []
    count = _transactions(catalog, lambda: reports.append(reconcile(catalog, grace=0)))
    (report,) = reports
    assert not report.findings and report.files == report.rows == 42
    assert count <= 12, count  # the walk: one per batch of siblings; the catalog's folders: one


def test_read_ahead_stops_at_its_row_limit(days, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """With room for one row ahead, every folder with rows is read in a transaction of its own, and nothing changes."""
    monkeypatch.setattr(reconcile_module, "AHEAD_ROWS", 1)
    reports = []
    count = _transactions(catalog, lambda: reports.append(reconcile(catalog, grace=0)))
    assert not reports[0].findings and reports[0].rows == 42
    assert count >= 41, count


def test_every_kind_of_row_keeps_its_finding(days, catalog: Catalog, base_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """Quarantined (skipped by a quick check), deleted (a file at its path is foreign), missing (restored when back),
    a file of another size (modified), a folder gone with its rows (missing): each as before."""
    quarantined, deleted, restored, resized, gone = days[1], days[2], days[3], days[4], days[5]
    catalog.change_status(quarantined.id, action="quarantine", status="quarantined", path=f"quarantine/{quarantined.path}",
                          details={"reason": "test"})  # fmt: skip
    (base_dir / "quarantine" / Path(quarantined.path).parent).mkdir(parents=True)
    shutil.copy(base_dir / quarantined.path, base_dir / "quarantine" / quarantined.path)
    (base_dir / quarantined.path).unlink()
    catalog.change_status(deleted.id, action="delete", status="deleted", details={"by": "test"})
    catalog.change_status(restored.id, action="missing", status="missing", details={"by": "test"})
    (base_dir / resized.path).chmod(0o644)
    (base_dir / resized.path).write_text("{}")
    shutil.rmtree(base_dir / Path(gone.path).parent)
    with freeze_time(START + timedelta(days=60)):
        report = reconcile(catalog, grace=0)
    found = {(f.cls, f.path) for f in report.findings}
    assert found == {("foreign", deleted.path), ("restored", restored.path), ("modified", resized.path),
                     ("missing", gone.path)}, found  # fmt: skip
    assert report.rows == 40  # on disk: 39 active (one of them gone) and 1 quarantined; not the deleted, nor the missing


def test_with_types_a_folder_gone_is_checked_only_if_it_is_of_those_types(days, catalog: Catalog,
                                                                          base_dir: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """A folder the walk does not read (gone from disk) is checked when it holds rows on disk of the run's types."""
    explain_folder = Path(days[-1].path).parent
    ledger_folder = Path(days[0].path).parent
    shutil.rmtree(base_dir / explain_folder)
    shutil.rmtree(base_dir / ledger_folder)
    assert {f.path for f in reconcile(catalog, grace=0, types=("ledger",)).findings} == {days[0].path}
    assert {f.path for f in reconcile(catalog, grace=0, types=("explain",)).findings} == {d.path for d in days[-2:]}
    assert {f.path for f in reconcile(catalog, grace=0).findings} == {days[0].path, *(d.path for d in days[-2:])}
