"""Quotations: inquire-price and inquire-asking-price-exp-ccn (protocol doc §4.9, §4.10)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from kis_async.config import KISConfig
from kis_async.models import Market, OrderBook, PriceLevel, PriceSnapshot
from kis_async.models.common import kis_datetime, parse_decimal, parse_int
from kis_async.models.market import check_market as checked_market
from kis_async.rest.http import first_object, get_ci, rows

__all__ = [
    "check_market",
    "holiday_params",
    "parse_holidays",
    "parse_orderbook",
    "parse_price",
    "quote_params",
]

_LEVELS = 10


def check_market(config: KISConfig, market: Market | str) -> Market:
    """``market`` parsed; NX/UN refused in paper mode before any request
    (:func:`kis_async.models.market.check_market`).

    Raises:
        InvalidOrderError: an unknown market.
        PaperModeError: NXT or UNIFIED in paper mode.
    """
    return checked_market(market, paper=config.is_paper)


def quote_params(symbol: str, market: Market = Market.KRX) -> dict[str, str]:
    """Query parameters of both quotation APIs (``J`` KRX, ``NX`` NXT, ``UN`` 통합)."""
    return {"FID_COND_MRKT_DIV_CODE": market.value, "FID_INPUT_ISCD": symbol}


def holiday_params(base: date, *, fk: str = "", nk: str = "") -> dict[str, str]:
    """chk-holiday query parameters (``CTX_AREA_FK``/``NK`` without the 100 suffix, §11.1)."""
    return {"BASS_DT": base.strftime("%Y%m%d"), "CTX_AREA_NK": nk, "CTX_AREA_FK": fk}


def parse_holidays(bodies: Iterable[Mapping[str, Any]]) -> dict[date, bool]:
    """``{day: opnd_yn == "Y"}`` from chk-holiday pages (protocol doc §11.1).

    ``opnd_yn`` (개장일) is the flag OTA says to use for "can orders be placed"; duplicate
    dates (OTA issue #37) keep the first row.
    """
    days: dict[date, bool] = {}
    for body in bodies:
        for row in rows(get_ci(body, "output")):
            text = str(get_ci(row, "bass_dt") or "").strip()
            if len(text) != 8 or not text.isdigit():
                continue
            day = date(int(text[:4]), int(text[4:6]), int(text[6:]))
            flag = str(get_ci(row, "opnd_yn") or "").strip().upper()
            days.setdefault(day, flag == "Y")
    return days


def parse_price(body: Mapping[str, Any], symbol: str) -> PriceSnapshot:
    """Build a :class:`PriceSnapshot` from an inquire-price answer."""
    output = first_object(get_ci(body, "output"))
    if not str(output.get("stck_shrn_iscd") or "").strip():
        output = {**output, "stck_shrn_iscd": symbol}
    snapshot = PriceSnapshot.model_validate(output)
    if snapshot.price <= 0:
        # KIS answers an unknown code with rt_cd 0 and a zero price (python-kis reads
        # ``stck_prpr`` "0" as "symbol not found"); a price is never zero otherwise.
        raise ValueError("inquire-price answered without a positive current price")
    return snapshot


def _levels(output: Mapping[str, Any], price_key: str, qty_key: str) -> tuple[PriceLevel, ...]:
    levels: list[PriceLevel] = []
    for i in range(1, _LEVELS + 1):
        price = parse_decimal(get_ci(output, f"{price_key}{i}"))
        if price is None or price <= 0:
            continue
        levels.append(PriceLevel(price, parse_int(get_ci(output, f"{qty_key}{i}")) or 0))
    return tuple(levels)


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None


def parse_orderbook(body: Mapping[str, Any], symbol: str) -> OrderBook:
    """Build an :class:`OrderBook` from an inquire-asking-price-exp-ccn answer.

    Levels quoted at price 0 (no quote) are left out; asks come lowest first and bids
    highest first, as KIS numbers them.
    """
    book = first_object(get_ci(body, "output1"))
    expected = first_object(get_ci(body, "output2"))
    hour = get_ci(book, "aspr_acpt_hour")
    return OrderBook(
        symbol=str(get_ci(expected, "stck_shrn_iscd") or "").strip() or symbol,
        time=kis_datetime(None, str(hour)) if hour else None,
        asks=_levels(book, "askp", "askp_rsqn"),
        bids=_levels(book, "bidp", "bidp_rsqn"),
        total_ask_qty=parse_int(get_ci(book, "total_askp_rsqn")),
        total_bid_qty=parse_int(get_ci(book, "total_bidp_rsqn")),
        expected_price=_positive(parse_decimal(get_ci(expected, "antc_cnpr"))),
        expected_qty=parse_int(get_ci(expected, "antc_vol")),
    )
