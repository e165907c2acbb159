"""Times out of range (issue 14, case 3): a name always parses back; an artifact's time is not before 1970
(Go's zero time means "never set") nor more than a day after the writer's clock; reconcile adopts no name
from the future."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from catalog.core.errors import ValidationError
from catalog.core.names import EARLIEST, build_name, parse_name
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.reconcile import reconcile

from helpers import all_records, store_files

UTC = timezone.utc
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("moment", [EARLIEST, datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
                                    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)], ids=["1970", "1999", "9999"])
def test_every_name_parses_back(moment: datetime) -> None:
    name = build_name(moment, "p", "ledger", "json")
    assert len(name.filename.split("-", 1)[0]) == 8
    assert parse_name(name.filename) == name


@pytest.mark.parametrize("moment", [datetime(1, 1, 1, tzinfo=UTC), datetime(999, 1, 1, tzinfo=UTC),
                                    datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)], ids=["go-zero", "999", "1969"])
def test_times_before_1970_are_refused(moment: datetime) -> None:
    with pytest.raises(ValidationError, match="before 1970-01-01"):
        build_name(moment, "p", "ledger", "json")


@pytest.mark.parametrize("name", ["10101-000000-zero-explain.json", "19691231-235959-p-ledger.json",
                                  "00010101-000000-zero-explain.json"])
def test_names_before_1970_are_no_artifact_names(name: str) -> None:
    assert parse_name(name) is None


@pytest.mark.parametrize("ahead, refused", [(timedelta(hours=1), False), (timedelta(days=2), True),
                                            (timedelta(days=365 * 73), True)], ids=["an-hour", "two-days", "2099"])
def test_a_writer_refuses_a_time_from_the_future(writer: AtomicWriter, catalog: Catalog, ahead: timedelta,
                                                 refused: bool) -> None:  # fmt: skip
    moment = datetime.now(UTC) + ahead
    if refused:
        with pytest.raises(ValidationError, match="more than a day after this host's clock"):
            writer.write_json("ledger", "p", {}, created_at=moment)
        assert all_records(catalog) == []
    else:
        assert writer.write_json("ledger", "p", {}, created_at=moment).created_at == moment.replace(microsecond=0)


@pytest.mark.parametrize("stamp, message", [("0001-01-01T00:00:00Z", "before 1970-01-01"),
                                            ("2099-01-01T00:00:00Z", "more than a day after")],
                         ids=["go-zero-time", "2099"])  # fmt: skip
def test_explain_import_refuses_a_report_time_out_of_range(catalog: Catalog, run_cli, base_dir: Path,
                                                           tmp_path: Path, stamp: str, message: str) -> None:  # fmt: skip
    data = json.loads((GOLDEN / "go-explain-1-asset.json").read_text())
    data["meta"]["timestamp"] = stamp
    source = tmp_path / "zero.json"
    source.write_text(json.dumps(data))
    result = run_cli("explain", "import", str(source), "--prefix", "zero")
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1
    assert store_files(base_dir) == [] and all_records(catalog) == []


def test_reconcile_adopts_no_name_from_the_future(catalog: Catalog, writer: AtomicWriter, base_dir: Path) -> None:
    kept = writer.write_json("ledger", "p", {"cash": 1})
    planted = base_dir / "ledger" / "20990101-000000-planted-ledger.json"
    planted.write_text('{"cash": 2}')
    report = reconcile(catalog, fix=True, grace=0)
    (finding,) = report.findings
    assert (finding.cls, finding.path) == ("foreign", "ledger/20990101-000000-planted-ledger.json")
    assert "in the future: not adopted" in finding.reason
    assert [r.path for r in all_records(catalog)] == [kept.path] and planted.exists()
