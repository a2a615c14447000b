"""TR ids of the domestic-stock REST endpoints (protocol doc §4.0), live and paper.

KIS renamed most account TR ids in 2024-2025 and says the old ids "may be blocked without
notice", so only the new ids are sent. For the record (and for the simulator, which accepts
both), the old ids were: sell ``TTTC0801U``/``VTTC0801U``, buy ``TTTC0802U``/``VTTC0802U``,
revise/cancel ``TTTC0803U``/``VTTC0803U``, cancelable orders ``TTTC8036R``, daily orders
``TTTC8001R``/``VTTC8001R`` and, older than three months, ``CTSC9115R``/``VTSC9115R``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from kis_async.config import Mode

__all__ = ["PATHS", "Api", "UnsupportedInPaperError", "tr_id"]


class Api(StrEnum):
    """The REST APIs this client calls."""

    ORDER_SELL = "order_sell"
    ORDER_BUY = "order_buy"
    REVISE_CANCEL = "revise_cancel"
    CANCELABLE_ORDERS = "cancelable_orders"
    DAILY_ORDERS = "daily_orders"
    DAILY_ORDERS_OLD = "daily_orders_old"
    BALANCE = "balance"
    BUYING_POWER = "buying_power"
    PRICE = "price"
    ORDERBOOK = "orderbook"
    PERIOD_CHART = "period_chart"
    MINUTE_CHART_TODAY = "minute_chart_today"
    MINUTE_CHART_DAY = "minute_chart_day"
    RECENT_TRADES = "recent_trades"
    HOLIDAYS = "holidays"


class UnsupportedInPaperError(LookupError):
    """The API does not exist on the paper (모의투자) servers."""


_PREFIX: Final = "/uapi/domestic-stock/v1"

#: URL path of each API.
PATHS: Final[Mapping[Api, str]] = {
    Api.ORDER_SELL: f"{_PREFIX}/trading/order-cash",
    Api.ORDER_BUY: f"{_PREFIX}/trading/order-cash",
    Api.REVISE_CANCEL: f"{_PREFIX}/trading/order-rvsecncl",
    Api.CANCELABLE_ORDERS: f"{_PREFIX}/trading/inquire-psbl-rvsecncl",
    Api.DAILY_ORDERS: f"{_PREFIX}/trading/inquire-daily-ccld",
    Api.DAILY_ORDERS_OLD: f"{_PREFIX}/trading/inquire-daily-ccld",
    Api.BALANCE: f"{_PREFIX}/trading/inquire-balance",
    Api.BUYING_POWER: f"{_PREFIX}/trading/inquire-psbl-order",
    Api.PRICE: f"{_PREFIX}/quotations/inquire-price",
    Api.ORDERBOOK: f"{_PREFIX}/quotations/inquire-asking-price-exp-ccn",
    Api.PERIOD_CHART: f"{_PREFIX}/quotations/inquire-daily-itemchartprice",
    Api.MINUTE_CHART_TODAY: f"{_PREFIX}/quotations/inquire-time-itemchartprice",
    Api.MINUTE_CHART_DAY: f"{_PREFIX}/quotations/inquire-time-dailychartprice",
    Api.RECENT_TRADES: f"{_PREFIX}/quotations/inquire-ccnl",
    Api.HOLIDAYS: f"{_PREFIX}/quotations/chk-holiday",
}

# (live, paper); paper None = the API does not exist on the paper servers.
_TABLE: Final[Mapping[Api, tuple[str, str | None]]] = {
    Api.ORDER_SELL: ("TTTC0011U", "VTTC0011U"),
    Api.ORDER_BUY: ("TTTC0012U", "VTTC0012U"),
    Api.REVISE_CANCEL: ("TTTC0013U", "VTTC0013U"),
    Api.CANCELABLE_ORDERS: ("TTTC0084R", None),
    Api.DAILY_ORDERS: ("TTTC0081R", "VTTC0081R"),
    Api.DAILY_ORDERS_OLD: ("CTSC9215R", "VTSC9215R"),
    Api.BALANCE: ("TTTC8434R", "VTTC8434R"),
    Api.BUYING_POWER: ("TTTC8908R", "VTTC8908R"),
    Api.PRICE: ("FHKST01010100", "FHKST01010100"),
    Api.ORDERBOOK: ("FHKST01010200", "FHKST01010200"),
    # Charts (protocol doc §10): one TR id for live and paper. Past-day minute bars have no
    # paper switch in the official samples and the text says "실전계좌의 경우" ([UNCERTAIN]):
    # we treat them as live-only.
    Api.PERIOD_CHART: ("FHKST03010100", "FHKST03010100"),
    Api.MINUTE_CHART_TODAY: ("FHKST03010200", "FHKST03010200"),
    Api.MINUTE_CHART_DAY: ("FHKST03010230", None),
    Api.RECENT_TRADES: ("FHKST01010300", "FHKST01010300"),
    Api.HOLIDAYS: ("CTCA0903R", None),
}

#: TR ids whose calls are orders (priority in the limiter, order retry policy, rejections).
ORDER_APIS: Final = frozenset({Api.ORDER_SELL, Api.ORDER_BUY, Api.REVISE_CANCEL})


def tr_id(api: Api, mode: Mode) -> str:
    """The TR id of ``api`` in ``mode``.

    Raises:
        UnsupportedInPaperError: the API has no paper TR id.
    """
    live, paper = _TABLE[api]
    if mode is Mode.LIVE:
        return live
    if paper is None:
        raise UnsupportedInPaperError(f"{api.value} is not available in paper mode")
    return paper
