from __future__ import annotations

import io
import json

import pytest

from catalog.cli.render import human_size, render

from helpers import runnable_cells

ROWS = [{"path": "explain/" + "x" * 80 + ".json", "size": 1536, "note": None, "ok": True}]


def test_table_fits_the_terminal_and_is_plain_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    out = io.StringIO()
    render(ROWS, ("path", "size", "note", "ok"), "table", out, is_terminal=True, table_cells={"size": human_size})
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 60 for line in lines) and "…" in lines[1] and "1.5 KiB" in lines[1]
    piped = io.StringIO()
    render(ROWS, ("path", "size"), "table", piped, is_terminal=False)
    assert ROWS[0]["path"] in piped.getvalue()


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
