"""kis_async.validation: the one checker per concept accepts what KIS accepts and nothing else."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import pytest

from kis_async.errors import InvalidOrderError
from kis_async.validation import (
    MAX_ORDER_PRICE,
    MAX_ORDER_QTY,
    check_account_id,
    check_date_range,
    check_hts_id,
    check_limit_price,
    check_number,
    check_order_id,
    check_qty,
    check_symbol,
    check_symbols,
    check_url,
    check_whole_price,
    coerce_price,
    is_valid_symbol,
    normalize_order_id,
)


@pytest.mark.parametrize("symbol", ["005930", "0000J0", "Q500001", "35320K"])
def test_symbols_accepted(symbol: str) -> None:
    """KRX short codes (digits, or a letter after the first digit) and Q ETN codes pass."""
    assert is_valid_symbol(symbol)
    assert check_symbol(symbol) == symbol


@pytest.mark.parametrize(
    "symbol",
    ["005930\n", "005930\r\n", "\n005930", "００５９３０", "٠٠٥٩٣٠", "0059 0", "Q50000", "q500001"],
)
def test_symbols_refused(symbol: str) -> None:
    """Trailing newlines, look-alike digits and near misses are refused."""
    assert not is_valid_symbol(symbol)
    with pytest.raises(InvalidOrderError, match="symbol"):
        check_symbol(symbol)


def test_check_symbols_dedupes_in_order_and_takes_one_string() -> None:
    """A subscription's symbols keep their order without duplicates; a str is one symbol."""
    assert check_symbols(["000660", "005930", "000660"]) == ("000660", "005930")
    assert check_symbols("005930") == ("005930",)
    with pytest.raises(InvalidOrderError, match="at least one"):
        check_symbols([])


@pytest.mark.parametrize("order_id", ["1", "0000012345", "9999999999"])
def test_order_ids_accepted(order_id: str) -> None:
    """1 to 10 ASCII digits, zero padding allowed."""
    assert check_order_id(order_id) == order_id


@pytest.mark.parametrize(
    "order_id", ["", "12345678901", "١٢٣", "０１２３", "123\n", " 123", "12&3", "1=2", "-1"]
)
def test_order_ids_refused(order_id: str) -> None:
    """Anything but 1 to 10 ASCII digits is refused."""
    with pytest.raises(InvalidOrderError, match="ODNO"):
        check_order_id(order_id)


def test_normalize_order_id() -> None:
    """Padding is ignored when comparing KIS's order numbers."""
    assert normalize_order_id("0000002891") == normalize_order_id("2891") == "2891"
    assert normalize_order_id("0000") == "0"
    assert normalize_order_id("") == ""


def test_account_ids() -> None:
    """Both account forms give 10 digits; anything else names the field, not the digits."""
    assert check_account_id("12345678-01") == check_account_id("1234567801") == "1234567801"
    for bad in ("1234567801\n", "12345678-01 ", "１２３４５６７８０１", "12345678--01"):
        with pytest.raises(ValueError, match=r"KISConfig\.account_id") as info:
            check_account_id(bad)
        assert "12345678" not in str(info.value)


def test_hts_ids() -> None:
    """HTS login ids are ASCII letters and digits (plus _ . -), matched whole."""
    assert check_hts_id("kissim01") == "kissim01"
    for bad in ("", "my id", "id\n", "id&x", "아이디", "x" * 33):
        with pytest.raises(ValueError, match="hts_id"):
            check_hts_id(bad)


def test_price_range_boundaries() -> None:
    """The largest price on the KRX grid is accepted; one tick above the maximum is not."""
    top = (MAX_ORDER_PRICE // 1_000) * 1_000
    assert check_limit_price(top, symbol="005930") == Decimal(top)
    assert check_limit_price("70000", symbol="005930") == Decimal(70_000)
    assert check_limit_price(70_000.0, symbol="005930") == Decimal(70_000)
    for bad in (top + 1_000, 10**30, 0, -1, "0", Decimal("-5")):
        with pytest.raises(InvalidOrderError):
            check_limit_price(bad, symbol="005930")
    assert check_whole_price(MAX_ORDER_PRICE) == Decimal(MAX_ORDER_PRICE)
    with pytest.raises(InvalidOrderError, match="at most"):
        check_whole_price(MAX_ORDER_PRICE + 1)


@pytest.mark.parametrize(
    "value",
    [True, math.nan, math.inf, 1.5, "abc", "1e5", " 70000", "70000\n", "７００００", None, [1]],
)
def test_coerce_price_refuses(value: object) -> None:
    """Bools, non-finite and fractional floats, and non-ASCII or padded text are refused."""
    with pytest.raises(InvalidOrderError, match="price"):
        coerce_price(value)


def test_quantities() -> None:
    """Quantities are ints from 1 to MAX_ORDER_QTY."""
    assert check_qty(1) == 1
    assert check_qty(MAX_ORDER_QTY) == MAX_ORDER_QTY
    for bad in (0, -1, MAX_ORDER_QTY + 1, 10**30, 1.0, "1", True):
        with pytest.raises(InvalidOrderError, match="qty"):
            check_qty(bad)


def test_date_range() -> None:
    """Missing ends default to today; non-dates and reversed ranges are refused."""
    today = date(2026, 1, 5)
    assert check_date_range(None, None, today=today) == (today, today)
    with pytest.raises(ValueError, match="date"):
        check_date_range("2026-01-01", None, today=today)
    with pytest.raises(ValueError, match="after"):
        check_date_range(today, date(2026, 1, 1), today=today)


def test_check_number() -> None:
    """Finite, typed and in range; the message names the field only."""
    assert check_number("X.t", 1.5) == 1.5
    assert check_number("X.m", 0, allow_minimum=True) == 0
    for bad in (math.nan, math.inf, -math.inf, 0, -1, True, "5", None):
        with pytest.raises(ValueError, match=r"^X\.t"):
            check_number("X.t", bad)
    with pytest.raises(ValueError, match="at most"):
        check_number("X.t", 11, maximum=10)
    with pytest.raises(ValueError, match="integer"):
        check_number("X.n", 1.0, integer=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:99999",
        "http://127.0.0.1:0",
        "http://127.0.0.1:9\r\nX: y",
        "http://127.0.0.1:9/a b",
        "http://",
        "ftp://127.0.0.1",
        "127.0.0.1:9",
        "http://127.0.0.1:abc",
        "http://bücher.example",
    ],
)
def test_urls_refused(url: str) -> None:
    """Bad ports, whitespace, control characters, other schemes, no host: named, not echoed."""
    with pytest.raises(ValueError, match=r"^KISConfig\.rest_url") as info:
        check_url("KISConfig.rest_url", url, schemes=("http", "https"))
    assert url not in str(info.value)


def test_urls_accepted() -> None:
    """KIS's own URLs and a local simulator's pass unchanged."""
    for url in ("https://openapi.koreainvestment.com:9443", "http://127.0.0.1:8080/x"):
        assert check_url("f", url, schemes=("http", "https")) == url
    assert check_url("f", "wss://h:65535/p", schemes=("ws", "wss")) == "wss://h:65535/p"
