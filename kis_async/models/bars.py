"""Price-history models: :class:`Interval`, :class:`Bar` and :class:`Trade`.

Bars can come by the thousand (a year of minutes is ~95,000), so they are slotted frozen
dataclasses like the streaming models, not pydantic models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from kis_async.errors import HistoryRequestError
from kis_async.models.common import KST

__all__ = ["Bar", "Interval", "Trade"]


class Interval(StrEnum):
    """A bar length. Minute intervals are built from KIS's 1-minute rows; ``1d``..``1y`` are
    KIS's own period chart (D/W/M/Y)."""

    MINUTE_1 = "1m"
    MINUTE_3 = "3m"
    MINUTE_5 = "5m"
    MINUTE_10 = "10m"
    MINUTE_15 = "15m"
    MINUTE_30 = "30m"
    MINUTE_60 = "60m"
    DAY = "1d"
    WEEK = "1w"
    MONTH = "1M"
    YEAR = "1y"

    @classmethod
    def parse(cls, value: Interval | str) -> Interval:
        """``value`` as an :class:`Interval` (``"1m"``, ``"5m"``, ``"1d"``, ``"1M"``...).

        Raises:
            InvalidOrderError: not one of the intervals above (case matters: ``1m`` is a
                minute, ``1M`` a month).
        """
        if isinstance(value, Interval):
            return value
        text = str(value).strip() if isinstance(value, str) else None
        try:
            return cls(text)
        except ValueError:
            known = ", ".join(i.value for i in cls)
            raise HistoryRequestError(f"unknown interval {value!r}; known: {known}") from None

    @property
    def minutes(self) -> int | None:
        """Length in minutes for intraday intervals; None for ``1d`` and longer."""
        if self.value.endswith("m"):
            return int(self.value[:-1])
        return None

    @property
    def is_intraday(self) -> bool:
        """True for the minute intervals."""
        return self.minutes is not None

    @property
    def period_code(self) -> str | None:
        """KIS ``FID_PERIOD_DIV_CODE`` (D/W/M/Y) for the period chart; None for minutes."""
        return {"1d": "D", "1w": "W", "1M": "M", "1y": "Y"}.get(self.value)

    def bucket(self, when: datetime) -> datetime:
        """The start of the bar of this interval that contains ``when`` (KST).

        Minute bars start on multiples of N minutes counted from midnight KST; since every
        KRX/NXT session opens on the hour (09:00, 08:00, 10:00 on exam days) and N divides 60,
        that is the same as counting from the session open, which is how KIS's N-minute
        charts cut. Days start at midnight, weeks on Monday, months on the 1st, years on
        January 1st.
        """
        local = when.astimezone(KST)
        n = self.minutes
        if n is not None:
            total = local.hour * 60 + local.minute
            start = total - total % n
            return local.replace(hour=start // 60, minute=start % 60, second=0, microsecond=0)
        return datetime.combine(self.period_start(local.date()), datetime.min.time(), KST)

    def period_start(self, day: date) -> date:
        """The first calendar day of the ``1d``/``1w``/``1M``/``1y`` period holding ``day``."""
        if self is Interval.WEEK:
            return day - timedelta(days=day.weekday())
        if self is Interval.MONTH:
            return day.replace(day=1)
        if self is Interval.YEAR:
            return day.replace(month=1, day=1)
        return day

    def end_of(self, start: datetime) -> datetime:
        """The instant the bar starting at ``start`` ends (exclusive)."""
        n = self.minutes
        if n is not None:
            return start + timedelta(minutes=n)
        day = start.date()
        if self is Interval.DAY:
            nxt = day + timedelta(days=1)
        elif self is Interval.WEEK:
            nxt = day + timedelta(days=7)
        elif self is Interval.MONTH:
            nxt = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            nxt = day.replace(year=day.year + 1, month=1, day=1)
        return datetime.combine(nxt, datetime.min.time(), KST)


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar.

    Attributes:
        symbol: the KRX code.
        start: when the bar begins, aware Asia/Seoul (minute bars: the minute; ``1d``: the
            trading day at 00:00; ``1w``: that week's Monday; ``1M``: the 1st; ``1y``: Jan 1).
        interval: the bar length.
        open, high, low, close: prices in won.
        volume: shares traded in the bar.
        turnover: value traded in the bar, in won (거래대금).
        adjusted: True when prices are adjusted for splits and rights (수정주가). KIS serves
            minute bars unadjusted, so minute bars are always ``adjusted=False``.
        partial: True only for a forming bar yielded by ``live_bars(..., partial=True)``.
    """

    symbol: str
    start: datetime
    interval: Interval
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    turnover: Decimal
    adjusted: bool = False
    partial: bool = False

    @property
    def end(self) -> datetime:
        """When the bar ends (exclusive)."""
        return self.interval.end_of(self.start)


@dataclass(frozen=True, slots=True)
class Trade:
    """One print of the recent-executions list (inquire-ccnl, the latest 30 trades).

    Attributes:
        symbol: the KRX code.
        time: the trade time, aware Asia/Seoul (today).
        price: the trade price.
        qty: shares traded (``cntg_vol``).
        change: change against the previous close.
        strength: 체결강도 (buy volume / sell volume x 100), when given.
    """

    symbol: str
    time: datetime
    price: Decimal
    qty: int
    change: Decimal | None = None
    strength: Decimal | None = None
