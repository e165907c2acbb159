from __future__ import annotations

import io
import json

import pytest

from catalog.cli.render import human_size, render

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


def test_an_empty_listing() -> None:
    for fmt, expected in (("json", '{"rows": [], "count": 0}\n'), ("csv", "a\n"), ("ndjson", ""), ("table", "(no rows)\n")):
        out = io.StringIO()
        assert render([], ("a",), fmt, out) == 0
        assert out.getvalue() == expected


@pytest.mark.parametrize("size,text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (10 * 1024**3, "10.0 GiB")])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text
