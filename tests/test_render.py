from __future__ import annotations

import csv
import io
import json

import pytest

from catalog.cli.render import human_size, render
from catalog.core.text import fit, printable, width

from helpers import runnable_cells

ROWS = [{"path": "explain/" + "x" * 80 + ".json", "size": 1536, "note": None, "ok": True}]


def _table(rows, columns, key="rows", *, terminal=True, wide=False) -> list[str]:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    render(rows, columns, "table", out, key=key, is_terminal=terminal, wide=wide, table_cells={"size": human_size})
    return out.getvalue().splitlines()


def test_table_fits_the_terminal_and_is_plain_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    rows = [{"path": "explain/x.json", "size": 1536, "note": None, "ok": True}]
    lines = _table(rows, ("path", "size", "note", "ok"))
    assert all(len(line) <= 60 for line in lines) and "1.5 KiB" in lines[1]
    assert ROWS[0]["path"] in "\n".join(_table(ROWS, ("path", "size"), terminal=False))


ARTIFACT_COLUMNS = ("path", "type", "prefix", "created_at", "size", "sha256", "status")
ARTIFACT = {"path": "explain/20261129-170310-momentum_scan-explain.json", "type": "explain",
            "prefix": "momentum_scan", "created_at": "2026-11-29 17:03:10Z", "size": 1536,
            "sha256": "3f9a2c71b0de", "status": "archived"}  # fmt: skip


def test_at_80_columns_the_path_is_whole_and_the_least_important_columns_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14, case 13: `ls` showed `explain/20…`; every column was cut until the path was unreadable."""
    monkeypatch.setenv("COLUMNS", "80")
    header, row = _table([ARTIFACT], ARTIFACT_COLUMNS, "artifacts")
    assert len(row) <= 80 and "…" not in row
    # by importance: status, size, sha256 (no room), created_at (no room), type, prefix (no room)
    assert header.split() == ["path", "type", "size", "status"]
    assert row.split() == [ARTIFACT["path"], "explain", "1.5", "KiB", "archived"]
    wide = _table([ARTIFACT], ARTIFACT_COLUMNS, "artifacts", wide=True)
    assert wide[0].split() == list(ARTIFACT_COLUMNS) and len(wide[1]) > 80
    monkeypatch.setenv("COLUMNS", "40")  # narrower than the path itself: the path still shows whole
    assert _table([ARTIFACT], ARTIFACT_COLUMNS, "artifacts")[1] == ARTIFACT["path"]


def test_free_text_is_cut_to_fill_the_line_the_identity_never(monkeypatch: pytest.MonkeyPatch) -> None:
    """`hold ls` showed `SEC inq…` beside columns that mattered less; `audit log` cut `schema_upgr…`."""
    monkeypatch.setenv("COLUMNS", "80")
    hold = {"id": 1, "kind": "prefix", "selector": "momentum*", "since": None, "until": None,
            "reason": "SEC inquiry 2024-17 into the momentum scanner's rankings and its data vendors' feeds",
            "covers_now": 12, "placed_at": "2026-11-29T17:03:10Z", "placed_by": "alice@host:4242",
            "released_at": None}  # fmt: skip
    lines = _table([hold], tuple(hold), "holds")
    assert lines[0].split() == ["id", "kind", "selector", "reason"] and all(len(line) <= 80 for line in lines)
    assert "SEC inquiry 2024-17 into the momentum" in lines[1] and lines[1].endswith("…")  # cut to fill the line
    event = {"seq": 1, "at": "2026-11-29T17:03:10.123456Z", "action": "schema_upgrade", "path": "",
             "status": None, "actor": "alice@host:4242", "details": json.dumps({"from": None, "to": "0009"})}
    lines = _table([event], tuple(event), "events")
    assert lines[1].split()[:3] == ["1", "2026-11-29T17:03:10.123456Z", "schema_upgrade"]
    assert all(len(line) <= 80 for line in lines)


def test_wide_characters_align_by_display_width(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"path": p, "status": "active"} for p in ("ledger/a.json", "explain/日本語のレポート.json", "health/😀😀.json",
                                                      "explain/e\u0301te\u0301.json")]  # fmt: skip
    for terminal in (True, False):
        lines = _table(rows, ("path", "status"), "artifacts", terminal=terminal)
        assert len({width(line.rsplit(" ", 1)[0] + " ") for line in lines}) == 1, lines  # "status" starts at one column


def test_control_characters_are_shown_escaped_in_tables_and_kept_in_csv() -> None:
    """Issue 14, case 19: an OSC title change and a forged line in a file name were printed raw."""
    name = "explain/evil\x1b]0;pwned\x07\nmissing: explain/all.json"
    for terminal in (True, False):
        lines = _table([{"path": name, "status": "foreign"}], ("path", "status"), "findings", terminal=terminal)
        assert len(lines) == 2 and "\x1b" not in lines[1] and "\n" not in lines[1]
        assert lines[1].startswith("explain/evil\\x1b]0;pwned\\x07\\nmissing: explain/all.json")
    out = io.StringIO()
    render([{"path": name}], ("path",), "csv", out)
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["path"], [name]]  # data, quoted, not escaped


@pytest.mark.parametrize("text,shown", [
    ("plain text", "plain text"),
    ("a\x1b[2Jb", "a\\x1b[2Jb"),
    ("one\ntwo\rthree\tfour", "one\\ntwo\\rthree\\tfour"),
    ("\x9b31m", "\\x9b31m"),  # C1 CSI
    ("\u202eevil", "\\u202eevil"),  # bidi override
    ("a\u2028b", "a\\u2028b"),  # line separator
    ("bad\udcffname", "bad\\udcffname"),  # an undecodable byte in a file name
    ("日本語 😀 👨\u200d👩\u200d👧 e\u0301", "日本語 😀 👨\u200d👩\u200d👧 e\u0301"),
])  # fmt: skip
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


@pytest.mark.parametrize("text,cells", [("abc", 3), ("日本", 4), ("😀", 2), ("e\u0301", 1), ("ｆｕｌｌ", 8), ("", 0)])
def test_width_counts_terminal_cells(text: str, cells: int) -> None:
    assert width(text) == cells
    assert width(fit(text * 3, 5)) <= 5


def test_machine_formats_keep_exact_values() -> None:
    out = io.StringIO()
    render(ROWS, ("path", "size", "note", "ok"), "json", out, key="things")
    assert json.loads(out.getvalue()) == {"things": [{"path": ROWS[0]["path"], "size": 1536, "note": None, "ok": True}], "count": 1}
    out = io.StringIO()
    render(ROWS, ("size", "note", "ok"), "csv", out)
    assert out.getvalue() == "size,note,ok\n1536,,true\n"


def test_csv_listings_never_hand_a_spreadsheet_a_formula() -> None:
    """Issue 14, case 2: ``hold ls --format csv`` printed a reason ``=1+1`` as it was."""
    rows = [
        {"reason": "=1+1", "actor": "@SUM(1+1)*cmd|' /C calc'!A0", "n": -3, "x": -0.5, "t": "-0.25"},
        {"reason": "-X", "actor": "a\r=1+1", "n": 0, "x": 1e-08, "t": "＝1"},
    ]
    out = io.StringIO()
    render(rows, ("reason", "actor", "n", "x", "t"), "csv", out)
    assert out.getvalue() == (
        "reason,actor,n,x,t\n"
        "'=1+1,'@SUM(1+1)*cmd|' /C calc'!A0,-3,-0.5,-0.25\n"
        "'-X,\"a\r=1+1\",0,1e-08,'＝1\n"
    )  # numbers stay numbers; the bare CR is quoted, so it cannot start a row
    assert runnable_cells(out.getvalue()) == []
    json_out = io.StringIO()
    render(rows, ("reason",), "json", json_out)
    assert json.loads(json_out.getvalue())["rows"][0]["reason"] == "=1+1"  # machine formats carry the exact text


def test_an_empty_listing() -> None:
    for fmt, expected in (("json", '{"rows": [], "count": 0}\n'), ("csv", "a\n"), ("ndjson", ""), ("table", "(no rows)\n")):
        out = io.StringIO()
        assert render([], ("a",), fmt, out) == 0
        assert out.getvalue() == expected


@pytest.mark.parametrize("size,text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (10 * 1024**3, "10.0 GiB")])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text
