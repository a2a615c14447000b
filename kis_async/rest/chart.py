"""Chart quotations: period bars, minute bars and recent trades (protocol doc §10).

Wire format only: query parameters and row parsing. Paging, de-duplication and aggregation
live in :mod:`kis_async.history`.

None of these APIs pages with ``tr_cont``; a caller pages by moving the date or time anchor
back past the oldest row it got. Rows come newest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from kis_async.models import KST, Bar, Interval, Market, Trade
from kis_async.models.common import parse_decimal, parse_int
from kis_async.rest.http import first_object, get_ci, rows

__all__ = [
    "MINUTE_LABEL_IS_START",
    "NO_START_DATE",
    "ChartSnapshot",
    "MinuteRow",
    "day_minute_params",
    "parse_minute_rows",
    "parse_period_bars",
    "parse_snapshot",
    "parse_trades",
    "period_params",
    "recent_trades_params",
    "today_minute_params",
]

#: Whether a minute row's ``stck_cntg_hour`` names the minute's start (``100500`` = trades
#: from 10:05:00 to 10:05:59). The protocol doc leaves start vs end [UNCERTAIN]; the day's
#: rows run from ``090000`` to ``153000`` and the 09:00 opening-auction print sits in the
#: ``090000`` row, which only the start reading puts inside the session, so we read it so.
MINUTE_LABEL_IS_START: Final = True

#: FID_INPUT_DATE_1 when the caller gives no start (what python-kis sends, protocol doc §10.1).
NO_START_DATE: Final = "00000101"


def _market(market: Market) -> str:
    return Market(market).value


def period_params(
    symbol: str, market: Market, *, start: str, end: date, period: str, adjusted: bool
) -> dict[str, str]:
    """inquire-daily-itemchartprice parameters: the newest 100 rows of ``start``..``end``."""
    return {
        "FID_COND_MRKT_DIV_CODE": _market(market),
        "FID_INPUT_ISCD": symbol,
        "FID_INPUT_DATE_1": start,
        "FID_INPUT_DATE_2": end.strftime("%Y%m%d"),
        "FID_PERIOD_DIV_CODE": period,
        # 0 = 수정주가 (adjusted), 1 = 원주가: the official samples, postman and every
        # community client agree on this polarity for this API (not for inquire-daily-price).
        "FID_ORG_ADJ_PRC": "0" if adjusted else "1",
    }


def today_minute_params(symbol: str, market: Market, *, hour: str) -> dict[str, str]:
    """inquire-time-itemchartprice parameters: today's minute rows at or before ``hour``."""
    return {
        "FID_ETC_CLS_CODE": "",
        "FID_COND_MRKT_DIV_CODE": _market(market),
        "FID_INPUT_ISCD": symbol,
        "FID_INPUT_HOUR_1": hour,
        # Postman says the flag matters only for sector (U) charts; KT and python-kis send N,
        # the official example Y. We send N.
        "FID_PW_DATA_INCU_YN": "N",
    }


def day_minute_params(symbol: str, market: Market, *, day: date, hour: str) -> dict[str, str]:
    """inquire-time-dailychartprice parameters: ``day``'s minute rows at or before ``hour``."""
    return {
        "FID_COND_MRKT_DIV_CODE": _market(market),
        "FID_INPUT_ISCD": symbol,
        "FID_INPUT_HOUR_1": hour,
        "FID_INPUT_DATE_1": day.strftime("%Y%m%d"),
        # Official default N (its backtester Y, KT N): we send N.
        "FID_PW_DATA_INCU_YN": "N",
        # 허봉 포함 (synthetic rows for minutes without trades): the official sample sends "",
        # KT "N"; we send N so every row is a minute with trades.
        "FID_FAKE_TICK_INCU_YN": "N",
    }


def recent_trades_params(symbol: str, market: Market) -> dict[str, str]:
    """inquire-ccnl parameters."""
    return {"FID_COND_MRKT_DIV_CODE": _market(market), "FID_INPUT_ISCD": symbol}


def _day(text: Any) -> date | None:
    value = str(text or "").strip()
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _clock(text: Any) -> time | None:
    value = str(text or "").strip()
    if len(value) < 6 or not value[:6].isdigit():
        return None
    try:
        return time(int(value[:2]), int(value[2:4]), int(value[4:6]))
    except ValueError:
        return None


def _price(row: Mapping[str, Any], key: str) -> Decimal:
    value = parse_decimal(get_ci(row, key))
    if value is None:
        raise ValueError(f"chart row without {key}")
    return abs(value)


def parse_period_bars(
    body: Mapping[str, Any], symbol: str, interval: Interval, *, adjusted: bool
) -> list[Bar]:
    """The ``output2`` bars of inquire-daily-itemchartprice, newest first as KIS sends them.

    Blank padding rows (no date or no close) are skipped. ``start`` is the first day of the
    row's period (the row's date for ``1d``), whichever date inside the period KIS labels
    the row with.
    """
    bars: list[Bar] = []
    for row in rows(get_ci(body, "output2")):
        day = _day(get_ci(row, "stck_bsop_date"))
        if day is None or parse_decimal(get_ci(row, "stck_clpr")) is None:
            continue
        start = datetime.combine(interval.period_start(day), time(), KST)
        bars.append(
            Bar(
                symbol=symbol,
                start=start,
                interval=interval,
                open=_price(row, "stck_oprc"),
                high=_price(row, "stck_hgpr"),
                low=_price(row, "stck_lwpr"),
                close=_price(row, "stck_clpr"),
                volume=parse_int(get_ci(row, "acml_vol")) or 0,
                turnover=parse_decimal(get_ci(row, "acml_tr_pbmn")) or Decimal(0),
                adjusted=adjusted,
            )
        )
    return bars


@dataclass(frozen=True, slots=True)
class MinuteRow:
    """One 1-minute row (``output2`` of both minute charts).

    Attributes:
        start: the minute's start, aware KST (see :data:`MINUTE_LABEL_IS_START`).
        open, high, low, close: prices of the minute.
        volume: shares traded in the minute (``cntg_vol``).
        cum_turnover: the day's value traded up to the end of the minute (``acml_tr_pbmn``).
    """

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    cum_turnover: Decimal


def parse_minute_rows(body: Mapping[str, Any]) -> list[MinuteRow]:
    """The ``output2`` rows of a minute chart, newest first; blank padding rows skipped."""
    found: list[MinuteRow] = []
    for row in rows(get_ci(body, "output2")):
        day = _day(get_ci(row, "stck_bsop_date"))
        clock = _clock(get_ci(row, "stck_cntg_hour"))
        if day is None or clock is None or parse_decimal(get_ci(row, "stck_prpr")) is None:
            continue
        start = datetime.combine(day, clock.replace(second=0), KST)
        if not MINUTE_LABEL_IS_START:
            start -= timedelta(minutes=1)
        found.append(
            MinuteRow(
                start=start,
                open=_price(row, "stck_oprc"),
                high=_price(row, "stck_hgpr"),
                low=_price(row, "stck_lwpr"),
                close=_price(row, "stck_prpr"),
                volume=parse_int(get_ci(row, "cntg_vol")) or 0,
                cum_turnover=parse_decimal(get_ci(row, "acml_tr_pbmn")) or Decimal(0),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class ChartSnapshot:
    """``output1`` of today's minute chart: the day's totals when KIS answered."""

    price: Decimal | None
    volume: int | None
    turnover: Decimal | None


def parse_snapshot(body: Mapping[str, Any]) -> ChartSnapshot:
    """The day's running totals from a minute chart's ``output1`` (object or one-row list)."""
    head = first_object(get_ci(body, "output1"))
    return ChartSnapshot(
        price=parse_decimal(get_ci(head, "stck_prpr")),
        volume=parse_int(get_ci(head, "acml_vol")),
        turnover=parse_decimal(get_ci(head, "acml_tr_pbmn")),
    )


def parse_trades(body: Mapping[str, Any], symbol: str, today: date) -> list[Trade]:
    """inquire-ccnl ``output`` rows (the latest 30 trades), oldest first."""
    trades: list[Trade] = []
    for row in rows(get_ci(body, "output")):
        clock = _clock(get_ci(row, "stck_cntg_hour"))
        price = parse_decimal(get_ci(row, "stck_prpr"))
        if clock is None or price is None:
            continue
        trades.append(
            Trade(
                symbol=symbol,
                time=datetime.combine(today, clock, KST),
                price=abs(price),
                qty=parse_int(get_ci(row, "cntg_vol")) or 0,
                change=parse_decimal(get_ci(row, "prdy_vrss")),
                strength=parse_decimal(get_ci(row, "tday_rltv")),
            )
        )
    trades.reverse()  # KIS sends newest first
    trades.sort(key=lambda trade: trade.time)
    return trades
