"""Exports stream rows straight from the database (issue 17 item 4), and say exactly what the record path said.

`ls` and `audit log` in ndjson, csv and json read batches of plain rows (times
formatted by the database, no record per row): their bytes are compared with
the record path's rows written by the writer as it was before batching
(:func:`reference_listing`, kept here verbatim), for a store of awkward values
(unicode, quotes, commas, line breaks, formula starts, NULLs, big sizes,
microseconds, every status, moves), on both backends.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import IO, Any

import pytest
from freezegun import freeze_time

from catalog.core.formats import CsvWriter, cell_text, write_batches, write_listing
from catalog.core.records import PublishedFile
from catalog.core.store import Catalog
from catalog.core.vocabulary import STATUSES
from catalog.ops.query import ArtifactQuery, EventQuery, Listing, iter_event_log

UTC = timezone.utc
T0 = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)

#: Text a CSV or JSON writer must take care with; each lands in a path, a prefix, a pair id, an actor and a reason.
AWKWARD = ("plain", 'ünï "quoted", comma', "line\nbreak\r\nand cr", "=1+1", "-X", "'quoted", "@SUM(A1)", "\t tab",
           "＝full width", "emoji 🚀 \u2028 sep", "back\\slash", "-0.5")  # fmt: skip

RECORD_COLUMNS = ("id", "path", "original_path", "type", "prefix", "ext", "created_at", "recorded_at", "size",
                  "sha256", "status", "retain_until", "pair_id")  # fmt: skip
EVENT_COLUMNS = ("seq", "at", "action", "artifact_id", "path", "status", "actor", "details", "hash")


def reference_listing(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], fmt: str, out: IO[str], *, key: str = "rows",
    trailer: Callable[[], Mapping[str, Any]] | None = None,
) -> int:  # fmt: skip
    """The listing writer as it was before exports were batched (catalog.core.formats.write_listing), row by row."""
    count = 0
    if fmt == "json":
        out.write('{"' + key + '": [')
        for row in rows:
            out.write(("," if count else "") + "\n  " + json.dumps({c: row.get(c) for c in columns}))
            count += 1
        extra = "".join(f", {json.dumps(k)}: {json.dumps(v)}" for k, v in (trailer() if trailer else {}).items())
        out.write(("\n" if count else "") + f'], "count": {count}{extra}}}\n')
    elif fmt == "ndjson":
        for row in rows:
            out.write(json.dumps({c: row.get(c) for c in columns}) + "\n")
            count += 1
    elif fmt == "csv":
        writer = CsvWriter(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell_text(row.get(c)) for c in columns])
            count += 1
    return count


def _when(n: int) -> datetime:
    """Minutes apart; every other one with microseconds."""
    return T0 + timedelta(minutes=n, microseconds=(n * 37_111) % 1_000_000 if n % 2 else 0)


def awkward_store(catalog: Catalog) -> list[datetime]:
    """Rows and events of :data:`AWKWARD` text, every status, moves and restores; returns moments between changes."""
    moments = []
    ids = []
    for n, text in enumerate(AWKWARD):
        with freeze_time(_when(n)), catalog.change(actor=f"bot {text}") as tx:
            kind = ("explain", "ledger", "health")[n % 3]
            item = PublishedFile(path=f"{kind}/2024{n:04d}-{text}-{kind}.json", type=kind, prefix=text, ext="json",
                                 created_at=_when(n) - timedelta(days=n), size=2**53 + 1 if n == 1 else n * 1000,
                                 sha256=f"{n:064x}", pair_id=text[:32] if n % 2 else None)  # fmt: skip
            ids.append(tx.artifacts.record(item).id)
            tx.events.append("checkpoint", details={"note": text, "nested": {"b": [1, None, 2.5, True], "a": text}})
    moments.append(_when(len(AWKWARD)) + timedelta(seconds=30))
    changes = [
        (0, "archive", "archived", "archive/moved-0.json"), (1, "delete", "deleted", None), (2, "missing", "missing", None),
        (3, "quarantine", "quarantined", None), (4, "archive", "archived", "archive/ünï, \"moved\"\n.json"),
        (1, "restore", "active", None), (5, "delete", "deleted", None), (0, "restore", "active", "explain/back-0.json"),
    ]  # fmt: skip
    for step, (index, action, status, path) in enumerate(changes):
        at = _when(len(AWKWARD) + 1 + step)
        with freeze_time(at), catalog.change(actor=f"op {AWKWARD[step % len(AWKWARD)]}") as tx:
            tx.artifacts.set_status(ids[index], action=action, status=status, path=path,
                                    details={"reason": AWKWARD[-1 - step]})  # fmt: skip
        moments.append(at + timedelta(seconds=30))
    assert {status for _, _, status, _ in changes} | {"active"} == set(STATUSES)
    return moments


def _ls_cases(moments: list[datetime]) -> list[tuple[list[str], dict[str, Any]]]:
    """(ls arguments, the same query as ArtifactQuery fields)."""
    cases: list[tuple[list[str], dict[str, Any]]] = [
        ([], {}),
        (["--sort", "oldest"], {"sort": "oldest"}),
        (["--sort", "path", "--limit", "5"], {"sort": "path", "limit": 5}),
        (["--sort", "largest", "--limit", "3"], {"sort": "largest", "limit": 3}),
        (["--status", "archived", "--status", "deleted"], {"statuses": ("archived", "deleted")}),
        (["--prefix", "*quoted*"], {"prefix": "*quoted*"}),
        (["--prefix", "*e*", "--limit", "2"], {"prefix": "*e*", "limit": 2}),
        (["--type", "ledger", "--since", "2024-01-05"], {"types": ("ledger",), "since": datetime(2024, 1, 5, tzinfo=UTC)}),
        (["--limit", "3", "--after", "ledger/20240001-ünï \"quoted\", comma-ledger.json"],
         {"limit": 3, "after": "ledger/20240001-ünï \"quoted\", comma-ledger.json"}),
    ]  # fmt: skip
    for moment in moments[::3]:
        cases.append((["--as-of", moment.isoformat()], {"as_of": moment}))
        cases.append((["--as-of", moment.isoformat(), "--sort", "path", "--limit", "4"],
                      {"as_of": moment, "sort": "path", "limit": 4}))  # fmt: skip
    return cases


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "json"])
def test_ls_export_is_the_record_path_byte_for_byte(catalog: Catalog, run_cli, fmt: str) -> None:
    moments = awkward_store(catalog)
    for args, fields in _ls_cases(moments):
        listing = Listing(catalog, ArtifactQuery(**fields))
        expected = io.StringIO()
        listed = reference_listing((r.to_dict() for r in listing), RECORD_COLUMNS, fmt, expected, key="artifacts",
                                   trailer=lambda listing=listing: {"next_after": listing.next_after})  # fmt: skip
        assert listed >= 2, args  # the case lists rows
        result = run_cli("ls", *args, "--format", fmt)
        assert result.exit_code == 0, result.output
        assert result.stdout_bytes.decode() == expected.getvalue(), args  # (.output turns \r\n into \n)


def _event_cases(moments: list[datetime]) -> list[tuple[list[str], dict[str, Any]]]:
    return [
        ([], {}),
        (["--action", "archive", "--action", "write", "--action", "restore"], {"actions": ("archive", "write", "restore")}),
        (["--path", "archive/*"], {"path": "archive/*"}),
        (["--path", "ledger/20240001-ünï \"quoted\", comma-ledger.json"],
         {"path": "ledger/20240001-ünï \"quoted\", comma-ledger.json"}),
        (["--actor", "quoted"], {"actor": "quoted"}),
        (["--limit", "7"], {"limit": 7}),
        (["--since", moments[0].isoformat(), "--limit", "4"], {"since": moments[0], "limit": 4}),
        (["--until", moments[0].isoformat(), "--action", "checkpoint"], {"until": moments[0], "actions": ("checkpoint",)}),
    ]  # fmt: skip


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "json"])
def test_audit_log_export_is_the_record_path_byte_for_byte(catalog: Catalog, run_cli, fmt: str) -> None:
    moments = awkward_store(catalog)
    for args, fields in _event_cases(moments):
        rows = (event.to_dict() for event in iter_event_log(catalog, EventQuery(**fields)))
        if fmt == "csv":
            rows = ({**row, "details": json.dumps(row["details"], sort_keys=True)} for row in rows)
        expected = io.StringIO()
        assert reference_listing(rows, EVENT_COLUMNS, fmt, expected, key="events") >= 2, args  # the case lists events
        result = run_cli("audit", "log", *args, "--format", fmt)
        assert result.exit_code == 0, result.output
        assert result.stdout_bytes.decode() == expected.getvalue(), args  # (.output turns \r\n into \n)


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "json"])
def test_write_listing_writes_what_it_wrote_row_by_row(fmt: str) -> None:
    """The batched writer behind every listing (web exports, retention plan…) keeps the row-by-row bytes."""
    rows = [{"a": text, "n": n, "big": 2**64 + n, "f": n / 3, "none": None, "flag": bool(n % 2), "d": {"k": text}}
            for n, text in enumerate(AWKWARD * 200)]  # fmt: skip
    columns = ("a", "n", "big", "f", "none", "flag", "d")
    for subset in (rows, rows[:1], []):
        expected, actual = io.StringIO(), io.StringIO()
        reference_listing(subset, columns, fmt, expected, key="things", trailer=lambda: {"next": "x\ny"})
        assert write_listing(subset, columns, fmt, actual, key="things", trailer=lambda: {"next": "x\ny"}) == len(subset)
        assert actual.getvalue() == expected.getvalue()


@pytest.mark.parametrize("fmt", ["ndjson", "json"])
def test_column_by_column_json_keeps_the_row_by_row_bytes_for_odd_shapes(fmt: str) -> None:
    """Values that are (or hold) the encoder's own separator mark, mixed kinds in one column, a repeated column
    name and a row shorter than the others all come out as json.dumps of each row's dict would write them."""
    mark = "\x00"
    rows = [[mark, {"k": mark}, n, n % 2 == 0, [n, mark, n], None if n % 3 else "x", n / 7, 2**70, mark if n % 2 else n / 3]
            for n in range(50)]  # fmt: skip
    rows[7][2] = "text among numbers"
    columns = ("m", "d", "n", "b", "l", "maybe", "f", "big", "mm")
    shapes = {"as is": (rows, columns), "a repeated name": (rows, ("m", "d", "m", "b", "l", "maybe", "f", "big", "mm")),
              "a short row": ([*rows[:3], rows[3][:4], *rows[4:]], columns), "one row": (rows[:1], columns),
              "more values than names": (rows, columns[:5])}  # fmt: skip
    for name, (subset, names) in shapes.items():
        lines = [json.dumps(dict(zip(names, row))) for row in subset]  # what write_batches wrote row by row
        expected = "".join(line + "\n" for line in lines) if fmt == "ndjson" else \
            '{"things": [' + ",".join("\n  " + line for line in lines) + f'\n], "count": {len(lines)}}}\n'
        actual = io.StringIO()
        assert write_batches([subset[:20], subset[20:]], names, fmt, actual, key="things") == len(subset)
        assert actual.getvalue() == expected, name


def test_column_by_column_csv_keeps_the_row_by_row_bytes() -> None:
    """Negative and huge whole numbers, booleans (not numbers here), formulas among numbers, ragged rows."""
    rows = [[-n, 2**70 + n, n % 2 == 0, "=1+1" if n % 3 else n, None, AWKWARD[n % len(AWKWARD)]] for n in range(60)]
    columns = ("neg", "big", "flag", "mixed", "none", "text")
    for subset in (rows, [*rows[:5], [*rows[5], "extra"], *rows[6:]], [rows[0][:2], *rows[1:]]):
        expected, actual = io.StringIO(), io.StringIO()
        writer = CsvWriter(expected)
        writer.writerow(columns)
        for row in subset:  # what write_batches wrote row by row
            writer.writerow([cell_text(value) for value in row])
        assert write_batches([subset[:25], subset[25:]], columns, "csv", actual) == len(subset)
        assert actual.getvalue() == expected.getvalue()


PLAN_COLUMNS = ("path", "type", "action", "reason", "age_days", "expires_at", "size", "status")


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "json"])
def test_retention_plan_export_is_the_record_path_byte_for_byte(catalog: Catalog, run_cli, fmt: str) -> None:
    """Without holds the export reads plain rows; with one, each row is decided against it; both as the plan says."""
    from catalog.ops.policy import add_hold, set_floor
    from catalog.ops.retention import plan

    awkward_store(catalog)
    with freeze_time(_when(60)):
        set_floor(catalog, "health", 20, "keep health a little longer")
        for artifact_id, until in ((7, datetime(2025, 3, 1, 8, 0, 0, 250_000, tzinfo=UTC)), (9, datetime(2026, 1, 1, tzinfo=UTC))):
            record = catalog.find_id(artifact_id)
            catalog.change_status(artifact_id, action="retain_extend", status=record.status, retain_until=until,
                                  details={"reason": "audit, \"2025\""})  # fmt: skip

    def compare() -> None:
        for now, types in (("2024-06-01T00:00:00.5Z", ()), ("2025-01-01", ()), ("2025-06-01", ("ledger", "health")),
                           ("2025-03-01T08:00:00.25Z", ()), ("2099-01-01", ()), ("2024-01-01", ())):  # fmt: skip
            moment = datetime.fromisoformat(now.replace("Z", "+00:00")).replace(tzinfo=UTC)
            expected = io.StringIO()
            listed = reference_listing((r.to_dict() for r in plan(catalog, now=moment, types=types)), PLAN_COLUMNS, fmt,
                                       expected, key="plan")  # fmt: skip
            assert listed >= 2 or now == "2024-01-01", now
            result = run_cli("retention", "plan", "--now", now, *(a for t in types for a in ("--type", t)), "--format", fmt)
            assert result.exit_code == 0, result.output
            assert result.stdout_bytes.decode() == expected.getvalue(), now

    compare()
    assert any(r.action == "keep" for r in plan(catalog, now=datetime(2025, 1, 1, tzinfo=UTC)))
    with freeze_time(_when(61)):
        add_hold(catalog, prefix="*quoted*", reason="litigation, \"A\"")
    assert any(r.action == "hold" for r in plan(catalog, now=datetime(2099, 1, 1, tzinfo=UTC)))
    compare()


def test_as_of_is_the_log_replayed(catalog: Catalog) -> None:
    """``ls --as-of`` at every moment around every change (moves, archives, deletes, restores, an intent that
    changes no row) is what replaying the log says: each artifact at its last row-changing event by then."""
    from dataclasses import replace

    from catalog.ops.query import iter_artifacts

    awkward_store(catalog)
    with freeze_time(_when(40)), catalog.change() as tx:  # an event about an artifact that sets no status
        tx.events.append("retention_intent", artifact_id=8, path="elsewhere/x.json", details={"op": "delete"})
    now = {r.id: r for r in iter_artifacts(catalog, ArtifactQuery(sort="oldest"))}
    events = list(catalog.events())
    moments = sorted({e.at + timedelta(microseconds=d) for e in events for d in (-1, 0, 1)})
    for moment in moments:
        last: dict[int, Any] = {}
        for event in events:
            if event.artifact_id is not None and event.status is not None and event.at <= moment:
                last[event.artifact_id] = event
        expected = [replace(now[i], path=e.path, status=e.status) for i, e in last.items() if e.status != "deleted"]
        for sort, key in (("oldest", lambda r: (r.created_at, r.id)), ("path", lambda r: (r.path, r.id))):
            listed = list(iter_artifacts(catalog, ArtifactQuery(as_of=moment, sort=sort)))
            assert listed == sorted(expected, key=key), (moment, sort)
        pages, after = [], None  # and page by page, as ls --limit --after walks it
        while True:
            page = list(Listing(catalog, ArtifactQuery(as_of=moment, limit=3, after=after)))
            pages += page
            if len(page) < 3:
                break
            after = page[-1].path
        assert pages == sorted(expected, key=lambda r: (r.created_at, r.id), reverse=True), moment
