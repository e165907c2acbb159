"""The ledger family: portfolio snapshots (JSON) and execution logs (CSV), typed and validated.

A model checks itself when it is constructed, so one that exists is valid.
``from_dict`` builds one from plain data (JSON values, or CSV text for trades)
and names the place of the first problem, e.g. ``portfolio position 2
(ETH-USD): price -3.0 is negative`` or ``execution row 7 (order ord-00007):
unknown side 'hold'; use buy or sell``. Times must be aware and are kept in
UTC; ints are accepted where floats go and stored as float, except a whole
number a float would round (beyond 2**53), which stays exact
(:func:`catalog.core.formats.keep_exact`); bools, NaN and infinities are refused.

An execution log written by :func:`executions_rows` reads back with
:func:`read_executions` as the same trades: numbers exactly, and text that
the CSV writer neutralised for spreadsheets (a symbol ``=1+1``) as it was.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any

from ..core.content import csv_records
from ..core.errors import ValidationError
from ..core.formats import NUMBER, format_time, keep_exact, parse_time

POSITION_FIELDS = ("symbol", "quantity", "price", "market_value")
PORTFOLIO_FIELDS = ("timestamp", "positions", "cash", "pnl")
EXECUTION_COLUMNS = ("time", "symbol", "side", "quantity", "price", "fee", "order_id")
SIDES = ("buy", "sell")


# -- checks shared by the typed families (catalog.cryptorun.health imports them) ------


def _show(value: Any) -> str:
    """A value for an error message, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any, where: str, name: str) -> str:
    """Non-empty text without control characters or lone surrogates."""
    if not isinstance(value, str):
        raise ValidationError(f"{where}: {name} must be text, not {type(value).__name__}")
    if not value.strip():
        raise ValidationError(f"{where}: {name} is empty")
    for char in value:
        if unicodedata.category(char) == "Cc":
            raise ValidationError(f"{where}: {name} {_show(value)} contains a control character")
        if "\ud800" <= char <= "\udfff":
            raise ValidationError(f"{where}: {name} {_show(value)} contains a lone surrogate (not valid Unicode)")
    return value


def _number(value: Any, where: str, name: str) -> float:
    """A finite int or float, as float (an int a float would round stays exact: keep_exact); bools are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{where}: {name} must be a number, not {type(value).__name__}")
    try:
        number = keep_exact(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise ValidationError(f"{where}: {name} is not a finite number ({_show(value)})")
    return number


def _whole(value: Any, where: str, name: str) -> int:
    """An int; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{where}: {name} must be a whole number, not {type(value).__name__}")
    return value


def _time(value: Any, where: str, name: str) -> datetime:
    """An aware datetime, converted to UTC; naive ones are refused."""
    if not isinstance(value, datetime):
        raise ValidationError(f"{where}: {name} must be a datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValidationError(f"{where}: {name} has no time zone; give it one (UTC)")
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValidationError(f"{where}: {name} is out of range once converted to UTC") from None


def _time_text(value: Any, where: str, name: str) -> Any:
    """ISO-8601 text with ``Z`` or an offset to an aware UTC datetime; other values unchanged."""
    if not isinstance(value, str):
        return value
    try:
        moment = parse_time(value)
    except ValidationError as exc:
        raise ValidationError(f"{where}: {name} {exc}") from None
    text = value.strip()
    if not text.endswith(("Z", "z")) and datetime.fromisoformat(text).tzinfo is None:
        raise ValidationError(f"{where}: {name} {_show(value)} has no time zone; end it with Z or an offset (+02:00)")
    return moment


def _number_text(value: Any, where: str, name: str) -> Any:
    """A decimal number written as text (as read from CSV) to a number, exactly: whole numbers as int; other values unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not NUMBER.fullmatch(text):
        raise ValidationError(f"{where}: {name} {_show(value)} is not a number")
    try:
        return int(text)
    except ValueError:  # a fraction or exponent (or digits beyond Python's limit: a float, then out of range)
        return float(text)


def _values(data: Any, names: Sequence[str], where: str) -> list[Any]:
    """The values of ``names`` from a mapping that has exactly those keys."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where} must be an object with {', '.join(names)}, not {type(data).__name__}")
    missing = [name for name in names if name not in data]
    if missing:
        raise ValidationError(f"{where}: missing {', '.join(missing)}")
    unknown = [key for key in data if key not in names]
    if unknown:
        raise ValidationError(f"{where}: unknown field {_show(unknown[0])}")
    return [data[name] for name in names]


def _settle(model: Any, values: Iterable[Any]) -> None:
    """Store checked values on a frozen dataclass, in field order."""
    for field, value in zip(fields(model), values, strict=True):
        object.__setattr__(model, field.name, value)


# -- portfolio snapshots (JSON) ---------------------------------------------


def _position(symbol: Any, quantity: Any, price: Any, market_value: Any, *, where: str) -> tuple[str, float, float, float]:
    symbol = _text(symbol, where, "symbol")
    here = f"{where} ({symbol})"
    quantity = _number(quantity, here, "quantity")
    price = _number(price, here, "price")
    if price < 0:
        raise ValidationError(f"{here}: price {price!r} is negative")
    market_value = _number(market_value, here, "market_value")
    expected = quantity * price
    if not math.isclose(market_value, expected, rel_tol=1e-9, abs_tol=1e-9):
        raise ValidationError(f"{here}: market_value {market_value!r} is not quantity * price ({expected!r})")
    return symbol, quantity, price, market_value


@dataclass(frozen=True)
class Position:
    """One holding in a portfolio snapshot; market_value equals quantity * price."""

    symbol: str
    quantity: float
    price: float
    market_value: float

    def __post_init__(self) -> None:
        _settle(self, _position(self.symbol, self.quantity, self.price, self.market_value, where="position"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "position") -> Position:
        """A position from plain data; ValidationError messages start with ``where``."""
        return cls(*_position(*_values(data, POSITION_FIELDS, where), where=where))

    def to_dict(self) -> dict[str, Any]:
        """Plain data, keys in field order."""
        return asdict(self)


@dataclass(frozen=True)
class Portfolio:
    """A portfolio snapshot: aware time, positions with unique symbols, cash and PnL."""

    timestamp: datetime
    positions: tuple[Position, ...]
    cash: float
    pnl: float

    def __post_init__(self) -> None:
        timestamp = _time(self.timestamp, "portfolio", "timestamp")
        if not isinstance(self.positions, (list, tuple)):
            raise ValidationError(f"portfolio: positions must be a list, not {type(self.positions).__name__}")
        numbers: dict[str, int] = {}
        for number, position in enumerate(self.positions, start=1):
            if not isinstance(position, Position):
                raise ValidationError(f"portfolio position {number} is a {type(position).__name__}, not a Position")
            if position.symbol in numbers:
                raise ValidationError(
                    f"portfolio position {number} ({position.symbol}): duplicate symbol; "
                    f"also position {numbers[position.symbol]}"
                )
            numbers[position.symbol] = number
        cash = _number(self.cash, "portfolio", "cash")
        pnl = _number(self.pnl, "portfolio", "pnl")
        _settle(self, (timestamp, tuple(self.positions), cash, pnl))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Portfolio:
        """A snapshot from plain JSON data (timestamp as ISO-8601 text with Z or an offset); ValidationError if bad."""
        timestamp, positions, cash, pnl = _values(data, PORTFOLIO_FIELDS, "portfolio")
        timestamp = _time_text(timestamp, "portfolio", "timestamp")
        if not isinstance(positions, (list, tuple)):
            raise ValidationError(f"portfolio: positions must be a list, not {type(positions).__name__}")
        return cls(
            timestamp,
            tuple(Position.from_dict(item, f"portfolio position {n}") for n, item in enumerate(positions, start=1)),
            cash,
            pnl,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: timestamp as UTC ISO-8601 with Z, positions as a list of dicts."""
        return {
            "timestamp": format_time(self.timestamp),
            "positions": [position.to_dict() for position in self.positions],
            "cash": self.cash,
            "pnl": self.pnl,
        }


# -- execution logs (CSV) ---------------------------------------------------


def _trade(
    time: Any, symbol: Any, side: Any, quantity: Any, price: Any, fee: Any, order_id: Any, *, where: str
) -> tuple[datetime, str, str, float, float, float, str]:
    order_id = _text(order_id, where, "order_id")
    here = f"{where} (order {order_id})"
    time = _time(time, here, "time")
    symbol = _text(symbol, here, "symbol")
    if side not in SIDES:
        raise ValidationError(f"{here}: unknown side {_show(side)}; use buy or sell")
    quantity = _number(quantity, here, "quantity")
    if quantity <= 0:
        raise ValidationError(f"{here}: quantity {quantity!r} is not positive")
    price = _number(price, here, "price")
    if price < 0:
        raise ValidationError(f"{here}: price {price!r} is negative")
    fee = _number(fee, here, "fee")
    if fee < 0:
        raise ValidationError(f"{here}: fee {fee!r} is negative")
    return time, symbol, side, quantity, price, fee, order_id


@dataclass(frozen=True)
class Trade:
    """One execution: a buy or sell of a positive quantity, with its fee and order id."""

    time: datetime
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    order_id: str

    def __post_init__(self) -> None:
        _settle(self, _trade(*(getattr(self, name) for name in EXECUTION_COLUMNS), where="execution"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "execution") -> Trade:
        """A trade from a mapping of the columns: native values, or text as read from CSV; ValidationError if bad."""
        time, symbol, side, quantity, price, fee, order_id = _values(data, EXECUTION_COLUMNS, where)
        time = _time_text(time, where, "time")
        quantity = _number_text(quantity, where, "quantity")
        price = _number_text(price, where, "price")
        fee = _number_text(fee, where, "fee")
        return cls(*_trade(time, symbol, side, quantity, price, fee, order_id, where=where))

    def to_row(self) -> list[Any]:
        """The cell values in EXECUTION_COLUMNS order (time an aware datetime, numbers floats)."""
        return [getattr(self, name) for name in EXECUTION_COLUMNS]


def validate_trades(trades: Iterable[Trade | Mapping[str, Any]]) -> list[Trade]:
    """Check every trade (mappings via Trade.from_dict) and that order ids are unique; returns the trades.

    Raises ValidationError naming the row (1-based) of the first problem.
    """
    valid: list[Trade] = []
    rows: dict[str, int] = {}
    for number, item in enumerate(trades, start=1):
        where = f"execution row {number}"
        if isinstance(item, Trade):
            trade = item
        elif isinstance(item, Mapping):
            trade = Trade.from_dict(item, where)
        else:
            raise ValidationError(f"{where} is a {type(item).__name__}, not a trade")
        if trade.order_id in rows:
            raise ValidationError(
                f"{where} (order {trade.order_id}): duplicate order_id; also row {rows[trade.order_id]}"
            )
        rows[trade.order_id] = number
        valid.append(trade)
    return valid


def executions_rows(trades: Iterable[Trade | Mapping[str, Any]]) -> list[list[Any]]:
    """The header and a row per checked trade (:func:`validate_trades`), for :func:`catalog.core.formats.csv_bytes`."""
    return [list(EXECUTION_COLUMNS), *(trade.to_row() for trade in validate_trades(trades))]


def read_executions(data: bytes) -> list[Trade]:
    """An execution log's CSV bytes (as :func:`executions_rows` and ``csv_bytes`` wrote them) as checked trades.

    Raises ValidationError for bytes that are not strict CSV, a header that is not
    EXECUTION_COLUMNS, or a bad trade (naming its row, as :func:`validate_trades` does).
    """
    return validate_trades(csv_records(data, "execution log"))
