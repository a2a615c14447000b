"""Input checks shared by every entry point: one checker per concept, raised before any I/O.

Identifiers (symbols, account numbers, HTS ids, order numbers) are matched as whole strings
of ASCII characters: ``re.fullmatch`` (never ``$``, which matches before a trailing newline)
on ``str.isascii()`` text (``str.isdigit()`` and ``\\d`` accept Arabic-Indic and full-width
digits). Order-related problems raise :class:`~kis_async.errors.InvalidOrderError`, the rest
a plain ``ValueError``; both are ``ValueError``. Messages name the argument and the rule,
never the value when the value may be a credential or an account number.

This module is a leaf: it imports nothing from kis_async but :mod:`kis_async.errors`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Final
from urllib.parse import urlsplit

from kis_async.errors import InvalidOrderError

__all__ = [
    "MAX_ORDER_PRICE",
    "MAX_ORDER_QTY",
    "check_account_id",
    "check_date_range",
    "check_hts_id",
    "check_limit_price",
    "check_number",
    "check_order_id",
    "check_qty",
    "check_symbol",
    "check_symbols",
    "check_url",
    "check_whole_price",
    "coerce_price",
    "is_on_tick",
    "is_valid_symbol",
    "normalize_order_id",
    "positive_price",
    "tick_size",
]

#: Largest quantity accepted in one order. KIS sends ``ORD_QTY`` as a string of digits; a
#: number past eight digits is certainly a bug in the caller, not an order.
MAX_ORDER_QTY: Final = 99_999_999

#: Largest price accepted, in won. KRX's stock master and quote feeds carry every price
#: (기준가, 상한가, 최고호가가격) in a 9-digit numeric field of the KRX market-data layout, so
#: nothing above 999,999,999 won can be quoted; on the 1,000-won tick of that range the highest
#: price on the grid is 999,999,000. Anything larger is refused here rather than by the server.
MAX_ORDER_PRICE: Final = 999_999_999

# Protocol doc §1/§4: a 6-character KRX short code (digits, or an uppercase letter from the
# 2nd character for newer listings) or a 7-character ETN code starting with Q.
_SYMBOL: Final = re.compile(r"[0-9][0-9A-Z]{5}|Q[0-9]{6}")
# Protocol doc §8: ODNO is a 10-digit zero-padded number (seen unpadded on paper).
_ORDER_ID: Final = re.compile(r"[0-9]{1,10}")
# Protocol doc §8: 8-digit CANO and 2-digit product code, with or without a dash.
_ACCOUNT: Final = re.compile(r"([0-9]{8})-?([0-9]{2})")
# HTS login ids are letters and digits (unlike the other identifiers, not digits only); the
# few punctuation marks allowed here never need escaping in a JSON body or a header.
_HTS_ID: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")
# A plain decimal number as text: optional sign, ASCII digits, optional fraction.
_NUMBER: Final = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")

# Protocol doc §8: the unified KOSPI/KOSDAQ tick table since 2023-01-25, as (upper bound, tick).
_STOCK_TICKS: Final[tuple[tuple[int, int], ...]] = (
    (2_000, 1),
    (5_000, 5),
    (20_000, 10),
    (50_000, 50),
    (200_000, 100),
    (500_000, 500),
)

_SYMBOL_RULE: Final = (
    "must be a 6-character KRX code such as '005930' (ETN: 7 characters starting with 'Q')"
)


def _ascii_fullmatch(pattern: re.Pattern[str], value: object) -> re.Match[str] | None:
    if not isinstance(value, str) or not value.isascii():
        return None
    return pattern.fullmatch(value)


# -- identifiers ------------------------------------------------------------------------------


def is_valid_symbol(symbol: object) -> bool:
    """True for a 6-character KRX short code or a 7-character ETN code starting with ``Q``."""
    return _ascii_fullmatch(_SYMBOL, symbol) is not None


def check_symbol(symbol: object, *, what: str = "symbol") -> str:
    """Return ``symbol`` when it is a KRX code.

    Raises:
        InvalidOrderError: anything else (a trailing newline, full-width digits, ...).
    """
    if not is_valid_symbol(symbol):
        raise InvalidOrderError(f"{what} {_SYMBOL_RULE}")
    assert isinstance(symbol, str)
    return symbol


def check_symbols(symbols: object) -> tuple[str, ...]:
    """Deduplicated symbols of a subscription, in order; one ``str`` counts as one symbol.

    Raises:
        InvalidOrderError: no symbols, or a malformed one.
    """
    if isinstance(symbols, str):
        symbols = (symbols,)
    elif not isinstance(symbols, Iterable) or isinstance(symbols, bytes | bytearray):
        raise InvalidOrderError("symbols must be an iterable of KRX codes")
    out = tuple(dict.fromkeys(check_symbol(s, what="every symbol") for s in symbols))
    if not out:
        raise InvalidOrderError("at least one symbol is needed")
    return out


def check_order_id(order_id: object) -> str:
    """Return ``order_id`` when it is KIS's order number (ODNO): 1 to 10 ASCII digits.

    Raises:
        InvalidOrderError: anything else (spaces and newlines included).
    """
    if _ascii_fullmatch(_ORDER_ID, order_id) is None:
        raise InvalidOrderError(
            "broker_order_id must be KIS's order number (ODNO): 1 to 10 ASCII digits"
        )
    assert isinstance(order_id, str)
    return order_id


def normalize_order_id(order_id: str) -> str:
    """The comparison key of an order number KIS sent: zero padding removed.

    KIS pads ODNO with zeros in some places and not in others (protocol doc §4.1).
    """
    text = order_id.strip()
    stripped = text.lstrip("0")
    return stripped or ("0" if text else "")


def check_account_id(account_id: object, *, field: str = "KISConfig.account_id") -> str:
    """Return the 10-digit account number (CANO + product code) of ``account_id``.

    Raises:
        ValueError: not 8 digits, an optional dash and 2 digits. The message names ``field``
            and never the value.
    """
    match = _ascii_fullmatch(_ACCOUNT, account_id)
    if match is None:
        raise ValueError(
            f"{field} is malformed: expected 10 ASCII digits, written as 8 digits, a dash and "
            "2 digits, or as 10 digits"
        )
    return match.group(1) + match.group(2)


def check_hts_id(hts_id: object, *, field: str = "KISConfig.hts_id") -> str:
    """Return ``hts_id`` when it is an HTS login id: 1 to 32 ASCII letters, digits, ``_.-``.

    Raises:
        ValueError: anything else; the message names ``field`` only.
    """
    if _ascii_fullmatch(_HTS_ID, hts_id) is None:
        raise ValueError(
            f"{field} is malformed: expected 1 to 32 ASCII letters, digits, '_', '.' or '-'"
        )
    assert isinstance(hts_id, str)
    return hts_id


# -- prices and quantities --------------------------------------------------------------------


def tick_size(price: Decimal | int, *, symbol: str | None = None) -> int:
    """The KRX tick size (호가단위) in won for ``price``.

    Stocks follow the 2023 unified table. ETNs (``Q`` codes) use 5 won, or 1 won below
    2,000 won; the ETF/ETN rule is not confirmed by KIS, see protocol doc §8.
    """
    value = int(price)
    if symbol is not None and symbol.startswith("Q"):
        return 1 if value < 2_000 else 5
    for bound, tick in _STOCK_TICKS:
        if value < bound:
            return tick
    return 1_000


def is_on_tick(price: Decimal, *, symbol: str | None = None) -> bool:
    """True when ``price`` is a positive whole number of won on the tick grid."""
    if price <= 0 or price != price.to_integral_value():
        return False
    return int(price) % tick_size(price, symbol=symbol) == 0


def coerce_price(value: object, *, what: str = "price") -> Decimal:
    """A price as a finite Decimal: ``Decimal``, ``int``, ASCII numeric ``str`` or a whole
    ``float``.

    Raises:
        InvalidOrderError: a bool, another type, non-numeric text, NaN or infinity, or a float
            with a fraction (its binary value is not the decimal the caller wrote).
    """
    if isinstance(value, bool):
        raise InvalidOrderError(f"{what} must be a number, not a bool")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise InvalidOrderError(
                f"{what} must be a finite whole number of won (floats with a fraction are refused)"
            )
        return Decimal(int(value))
    if isinstance(value, str):
        if _ascii_fullmatch(_NUMBER, value) is None:
            raise InvalidOrderError(f"{what} must be a plain ASCII number such as '70000'")
        return Decimal(value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidOrderError(f"{what} must be finite")
        return value
    raise InvalidOrderError(
        f"{what} must be a Decimal, int or numeric string, not {type(value).__name__}"
    )


def positive_price(value: object, *, what: str = "price") -> Decimal:
    """A price above 0 and at most :data:`MAX_ORDER_PRICE` (fractions allowed).

    Raises:
        InvalidOrderError: see :func:`coerce_price`, or out of range.
    """
    price = coerce_price(value, what=what)
    if price <= 0:
        raise InvalidOrderError(f"{what} must be greater than 0")
    if price > MAX_ORDER_PRICE:
        raise InvalidOrderError(
            f"{what} must be at most {MAX_ORDER_PRICE:,} won (the largest KRX price)"
        )
    return price


def check_whole_price(value: object, *, what: str = "price") -> Decimal:
    """A positive whole number of won within KRX's range.

    Raises:
        InvalidOrderError: anything else.
    """
    price = positive_price(value, what=what)
    try:
        whole = price == price.to_integral_value()
    except InvalidOperation:
        whole = False
    if not whole:
        raise InvalidOrderError(f"{what} must be a whole number of won")
    return Decimal(int(price))


def check_limit_price(value: object, *, symbol: str | None) -> Decimal:
    """A limit price: a whole number of won within KRX's range and on the tick grid of
    ``symbol`` (the stock grid when None).

    Raises:
        InvalidOrderError: anything else.
    """
    price = check_whole_price(value)
    if not is_on_tick(price, symbol=symbol):
        tick = tick_size(price, symbol=symbol)
        raise InvalidOrderError(
            f"price {price} is not on the KRX tick grid (tick {tick} won at this price)"
        )
    return price


def check_qty(qty: object, *, what: str = "qty") -> int:
    """An order quantity: an ``int`` from 1 to :data:`MAX_ORDER_QTY`.

    Raises:
        InvalidOrderError: anything else (a bool, a float, a string, out of range).
    """
    if isinstance(qty, bool) or not isinstance(qty, int):
        raise InvalidOrderError(f"{what} must be an int, not {type(qty).__name__}")
    if qty <= 0:
        raise InvalidOrderError(f"{what} must be greater than 0")
    if qty > MAX_ORDER_QTY:
        raise InvalidOrderError(f"{what} must be at most {MAX_ORDER_QTY:,}")
    return qty


def check_date_range(start: object, end: object, *, today: date) -> tuple[date, date]:
    """``(start, end)`` of an order query, each defaulting to ``today``.

    Raises:
        ValueError: not dates, or ``start`` after ``end``.
    """
    first = today if start is None else start
    last = today if end is None else end
    if not isinstance(first, date) or not isinstance(last, date):
        raise ValueError("get_orders: start and end must be datetime.date values or None")
    if first > last:
        raise ValueError("get_orders: start is after end")
    return first, last


# -- configuration values -----------------------------------------------------------------------


def check_number(
    field: str,
    value: object,
    *,
    minimum: float = 0.0,
    allow_minimum: bool = False,
    maximum: float | None = None,
    integer: bool = False,
) -> float:
    """A finite number above ``minimum`` (or equal, with ``allow_minimum``) and at most
    ``maximum``; with ``integer``, an ``int``.

    Raises:
        ValueError: naming ``field`` only (NaN, infinity, a bool or a string included).
    """
    kind = "an integer" if integer else "a finite number"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        raise ValueError(f"{field} must be {kind}")
    assert isinstance(value, int | float)
    if not math.isfinite(value):
        raise ValueError(f"{field} must be {kind} (NaN and infinity are refused)")
    low = value >= minimum if allow_minimum else value > minimum
    if not low:
        raise ValueError(f"{field} must be {'>=' if allow_minimum else '>'} {minimum:g}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{field} must be at most {maximum:g}")
    return value


def check_url(field: str, url: object, *, schemes: tuple[str, ...]) -> str:
    """Return ``url`` when it is an absolute URL of one of ``schemes`` with a host, a port
    (if any) from 1 to 65535, and no whitespace or control characters.

    Raises:
        ValueError: naming ``field`` only (URLs may carry credentials).
    """
    allowed = " or ".join(f"{s}://" for s in schemes)
    if not isinstance(url, str) or not url.isascii() or not url.isprintable():
        raise ValueError(f"{field} must be printable ASCII text starting with {allowed}")
    if any(c.isspace() for c in url):
        raise ValueError(f"{field} must not contain whitespace")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(f"{field} has a malformed host or a port outside 1-65535") from None
    if parts.scheme.lower() not in schemes or not url.lower().startswith(f"{parts.scheme}://"):
        raise ValueError(f"{field} must start with {allowed}")
    if not parts.hostname:
        raise ValueError(f"{field} has no host")
    if port is not None and not 1 <= port <= 65_535:
        raise ValueError(f"{field} has a port outside 1-65535")
    return url
