"""Bars over REST: request checks, anchor paging, seam de-duplication and N-minute bars.

KIS's chart APIs return at most 100 (period), 30 (today's minutes) or 120 (a past day's
minutes) rows per call, newest first, and page by moving a date or time anchor back (protocol
doc §10). :class:`HistoryFetcher` walks those pages inside the client's rate limiter and
hands out bars oldest first:

* period bars (``1d``/``1w``/``1M``/``1y``): pages back from ``end`` until a page reaches
  ``start`` or comes back short, then yields the lot oldest first;
* minute bars: day by day from ``start`` (weekends skipped), each day paged back from its
  end, today through the today TR and past days through the past-day TR, so memory holds one
  day of rows. N-minute bars are cut from the 1-minute rows (:meth:`Interval.bucket`).

A page that repeats rows of the page before (the anchor row comes back on some servers) is
de-duplicated on the row's date or minute. A page that does not move back past its anchor,
or a failed request, raises: a missing page is an error, never a silent gap.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Final

from kis_async.errors import BrokerAPIError, HistoryRequestError
from kis_async.models import KST, Bar, Interval, Market
from kis_async.rest import chart
from kis_async.rest.chart import ChartSnapshot, MinuteRow
from kis_async.rest.client import RestClient
from kis_async.rest.http import KISResponse, decode_output
from kis_async.rest.trids import Api
from kis_async.validation import check_symbol

__all__ = [
    "MINUTE_HISTORY_DAYS",
    "BarRequest",
    "DayMinutes",
    "HistoryFetcher",
    "aggregate",
    "check_request",
    "minute_bars",
]

logger = logging.getLogger("kis_async.history")

#: How far back KIS keeps minute bars: "최대 1년 분봉 보관" (protocol doc §10.3).
MINUTE_HISTORY_DAYS: Final = 365
#: Rows per call the protocol doc gives (§10): a page shorter than this ends the history. A
#: past day's minutes are 120 per call in the official samples and 30 in KT's docstring
#: ([CONFLICT]): the smaller figure is the floor and a larger cap is learned from full pages.
ROW_CAPS: Final = {Api.PERIOD_CHART: 100, Api.MINUTE_CHART_TODAY: 30, Api.MINUTE_CHART_DAY: 30}
#: Pages followed at most for one day or one period request (a runaway-server guard).
MAX_PAGES: Final = 400
_DAY_END: Final = time(23, 59, 59)


@dataclass(frozen=True, slots=True)
class BarRequest:
    """A checked history request (every field normalised; see :meth:`HistoryFetcher.plan`)."""

    symbol: str
    interval: Interval
    start: datetime | None
    end: datetime
    adjusted: bool
    market: Market


@dataclass(frozen=True, slots=True)
class DayMinutes:
    """One day's 1-minute rows between two instants, oldest first.

    Attributes:
        rows: the rows inside the window.
        prev_cum_turnover: the day's cumulative turnover just before the first row (0 when
            the first row is the day's first trade).
        snapshot: today's ``output1`` totals of the newest page (today only).
    """

    rows: list[MinuteRow]
    prev_cum_turnover: Decimal
    snapshot: ChartSnapshot | None


def _as_kst(value: date | datetime | str, *, end: bool) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip()) if "T" in value or ":" in value else (
                date.fromisoformat(value.strip())
            )  # fmt: skip
        except ValueError:
            raise HistoryRequestError(
                f"{value!r} is not an ISO date (2026-01-02) or datetime (2026-01-02T09:30)"
            ) from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=KST) if value.tzinfo is None else value.astimezone(KST)
    return datetime.combine(value, _DAY_END if end else time(), KST)


def minute_bars(symbol: str, rows: Iterable[MinuteRow], prev_cum_turnover: Decimal) -> list[Bar]:
    """1-minute bars from one day's rows (oldest first); turnover from the cumulative column."""
    bars: list[Bar] = []
    prev = prev_cum_turnover
    for row in rows:
        turnover = row.cum_turnover - prev if row.cum_turnover >= prev else Decimal(0)
        prev = max(prev, row.cum_turnover)
        bars.append(
            Bar(
                symbol=symbol,
                start=row.start,
                interval=Interval.MINUTE_1,
                open=row.open,
                high=row.high,
                low=row.low,
                close=row.close,
                volume=row.volume,
                turnover=turnover,
            )
        )
    return bars


def aggregate(bars: Iterable[Bar], interval: Interval) -> list[Bar]:
    """N-minute bars from 1-minute bars (oldest first), cut on :meth:`Interval.bucket`."""
    out: list[Bar] = []
    for bar in bars:
        start = interval.bucket(bar.start)
        last = out[-1] if out else None
        if last is not None and last.start == start:
            out[-1] = Bar(
                symbol=last.symbol,
                start=start,
                interval=interval,
                open=last.open,
                high=max(last.high, bar.high),
                low=min(last.low, bar.low),
                close=bar.close,
                volume=last.volume + bar.volume,
                turnover=last.turnover + bar.turnover,
                adjusted=last.adjusted,
            )
        else:
            out.append(
                Bar(
                    symbol=bar.symbol,
                    start=start,
                    interval=interval,
                    open=bar.open,
                    high=bar.high,
                    low=bar.low,
                    close=bar.close,
                    volume=bar.volume,
                    turnover=bar.turnover,
                    adjusted=bar.adjusted,
                )
            )
    return out


def _check_page(
    *,
    page_keys: list[datetime],
    new_keys: list[datetime],
    ceiling: datetime,
    what: str,
    tr_id: str | None,
) -> None:
    """Refuse a page that cannot be placed after the pages before it.

    Rows repeated from the previous page (a server that includes the anchor row) are fine and
    dropped by the caller. A new row after the anchor means the server ignored the anchor, and
    a non-empty page of nothing new means it repeated a page: either way a page is missing.
    """
    if any(key > ceiling for key in new_keys):
        raise BrokerAPIError(
            f"{what} answered new rows after its anchor; a page would be missing", tr_id=tr_id
        )
    if page_keys and not new_keys:
        raise BrokerAPIError(
            f"{what} repeated rows already received; a page would be missing", tr_id=tr_id
        )


def check_request(
    symbol: str,
    interval: Interval | str,
    *,
    start: date | datetime | str | None,
    end: date | datetime | str | None,
    adjusted: bool,
    market: Market | str,
    now: datetime,
) -> BarRequest:
    """Normalise a bar request (shared by the KIS pager and MockBroker).

    ``end`` defaults to (and is capped at) ``now``; a minute request without ``start``
    starts at today's midnight.

    Raises:
        InvalidOrderError: ``symbol`` is not a KRX code.
        HistoryRequestError: unknown interval or market, a malformed date, ``start`` after
            ``end``.
    """
    check_symbol(symbol)
    iv = Interval.parse(interval)
    try:
        mkt = Market.parse(market)
    except ValueError:
        known = ", ".join(f"{m.name} ({m.value})" for m in Market)
        raise HistoryRequestError(f"unknown market {market!r}; known: {known}") from None
    now = now.astimezone(KST)
    first = _as_kst(start, end=False) if start is not None else None
    last = min(_as_kst(end, end=True), now) if end is not None else now
    if first is not None and first > last:
        raise HistoryRequestError(f"start {first.isoformat()} is after end {last.isoformat()}")
    if iv.is_intraday and first is None:
        first = datetime.combine(now.date(), time(), KST)
    return BarRequest(symbol, iv, first, last, bool(adjusted), mkt)


class HistoryFetcher:
    """Pages KIS's chart APIs for one :class:`RestClient`.

    Args:
        rest: the client (its rate limiter and retry policy apply to every page).
        clock: the current time, aware (decides "today" and which minutes are complete).
    """

    def __init__(self, rest: RestClient, *, clock: Callable[[], datetime]) -> None:
        self._rest = rest
        self._clock = clock

    def now(self) -> datetime:
        """The current time in KST."""
        return self._clock().astimezone(KST)

    # -- checks ------------------------------------------------------------------------------

    def plan(
        self,
        symbol: str,
        interval: Interval | str,
        *,
        start: date | datetime | str | None,
        end: date | datetime | str | None,
        adjusted: bool,
        market: Market | str,
    ) -> BarRequest:
        """Check a request before anything is sent.

        Raises:
            InvalidOrderError: ``symbol`` is not a KRX code.
            HistoryRequestError: unknown interval or market; ``start`` after ``end``; minute
                bars older than :data:`MINUTE_HISTORY_DAYS`; past-day minute bars in paper
                mode (KIS documents that TR for live accounts only).
        """
        request = check_request(
            symbol, interval, start=start, end=end, adjusted=adjusted, market=market,
            now=self.now(),
        )  # fmt: skip
        if request.interval.is_intraday:
            assert request.start is not None
            today = self.now().date()
            oldest = today - timedelta(days=MINUTE_HISTORY_DAYS)
            if request.start.date() < oldest:
                raise HistoryRequestError(
                    f"KIS keeps minute bars for one year: start must be on or after {oldest}"
                )
            if self._rest.config.is_paper and request.start.date() < today:
                raise HistoryRequestError(
                    "minute bars of past days (inquire-time-dailychartprice) are not served "
                    "to paper accounts; paper mode has today's minutes only"
                )
        return request

    # -- bars --------------------------------------------------------------------------------

    async def bars(self, request: BarRequest) -> AsyncIterator[Bar]:
        """The bars of ``request``, oldest first."""
        if request.interval.is_intraday:
            async for bar in self._intraday(request):
                yield bar
            return
        for bar in await self._period(request):
            yield bar

    async def _page(self, api: Api, params: dict[str, str]) -> KISResponse:
        return await self._rest.get_quotation(api, params)

    async def _period(self, request: BarRequest) -> list[Bar]:
        interval = request.interval
        period = interval.period_code
        assert period is not None
        first_day = interval.period_start(request.start.date()) if request.start else None
        start_text = first_day.strftime("%Y%m%d") if first_day else chart.NO_START_DATE
        anchor = request.end.date()
        found: dict[datetime, Bar] = {}
        cap = ROW_CAPS[Api.PERIOD_CHART]
        for _ in range(MAX_PAGES):
            params = chart.period_params(
                request.symbol, request.market, start=start_text, end=anchor, period=period,
                adjusted=request.adjusted,
            )  # fmt: skip
            response = await self._page(Api.PERIOD_CHART, params)
            page = decode_output(
                functools.partial(
                    chart.parse_period_bars,
                    response.body,
                    request.symbol,
                    interval,
                    adjusted=request.adjusted,
                ),
                tr_id=response.tr_id,
                what="inquire-daily-itemchartprice output2",
            )
            cap = max(cap, len(page))
            ceiling = interval.bucket(datetime.combine(anchor, time(), KST))
            new = [bar for bar in page if bar.start not in found]
            _check_page(
                page_keys=[bar.start for bar in page],
                new_keys=[bar.start for bar in new],
                ceiling=ceiling,
                what=f"period chart (anchor {anchor})",
                tr_id=response.tr_id,
            )
            for bar in new:
                found[bar.start] = bar
            if not page or len(page) < cap:
                break
            oldest = min(bar.start for bar in page)
            if first_day is not None and oldest.date() <= first_day:
                break
            # Protocol doc §10.1: re-call with FID_INPUT_DATE_2 = the oldest date - 1 day.
            # A W/M/Y row's label is moved to its period start; stepping back from there
            # lands in the previous period either way.
            anchor = oldest.date() - timedelta(days=1)
        else:
            raise BrokerAPIError(f"period chart still had pages after {MAX_PAGES}")
        lo = interval.bucket(request.start) if request.start else None
        hi = request.end
        return [found[key] for key in sorted(found) if (lo is None or key >= lo) and key <= hi]

    async def _intraday(self, request: BarRequest) -> AsyncIterator[Bar]:
        interval = request.interval
        assert request.start is not None
        lo = interval.bucket(request.start)
        now = self.now()
        # Only complete bars: the forming minute's row is still changing (protocol doc §10.2).
        hi = min(interval.end_of(interval.bucket(request.end)), now)
        day = lo.date()
        while day <= hi.date():
            window_lo = max(lo, datetime.combine(day, time(), KST))
            window_hi = min(hi, datetime.combine(day, _DAY_END, KST))
            # KRX and NXT never trade on weekends: no request for them.
            if day.weekday() < 5 and window_lo < window_hi:
                got = await self.day_minutes(
                    request.symbol, request.market, day, since=window_lo, until=window_hi
                )
                ones = minute_bars(request.symbol, got.rows, got.prev_cum_turnover)
                complete = [b for b in ones if b.end <= hi]
                bars = complete if interval is Interval.MINUTE_1 else aggregate(complete, interval)
                for bar in bars:
                    if bar.end <= hi:
                        yield bar
            day += timedelta(days=1)

    async def day_minutes(
        self,
        symbol: str,
        market: Market,
        day: date,
        *,
        since: datetime,
        until: datetime,
        include_forming: bool = False,
    ) -> DayMinutes:
        """``day``'s 1-minute rows from ``since`` to ``until``, paging back from ``until``.

        Today goes through inquire-time-itemchartprice (30 rows a call), a past day through
        inquire-time-dailychartprice (120 rows a call; one source says 30, so the row cap is
        learned from the answers instead of assumed). Paging stops when a page reaches a row
        older than ``since`` (whose cumulative turnover gives the first bar's turnover), comes
        back shorter than the largest page seen (the day's first trade reached) or adds no new
        row. The forming minute is dropped unless ``include_forming``.

        Raises:
            BrokerAPIError: a page answered rows after its anchor (a page would be missing).
        """
        now = self.now()
        today = day == now.date()
        api = Api.MINUTE_CHART_TODAY if today else Api.MINUTE_CHART_DAY
        anchor = min(until, now) if today else until
        found: dict[datetime, MinuteRow] = {}
        snapshot: ChartSnapshot | None = None
        cap = ROW_CAPS[api]
        for _ in range(MAX_PAGES):
            hour = anchor.strftime("%H%M%S")
            if today:
                params = chart.today_minute_params(symbol, market, hour=hour)
            else:
                params = chart.day_minute_params(symbol, market, day=day, hour=hour)
            response = await self._page(api, params)
            page = decode_output(
                functools.partial(chart.parse_minute_rows, response.body),
                tr_id=response.tr_id,
                what="minute chart output2",
            )
            if today and snapshot is None:
                snapshot = chart.parse_snapshot(response.body)
            # A row of another day means the server answered for the nearest trading day
            # (a holiday was asked); it belongs to that day's own request.
            page = [row for row in page if row.start.date() == day]
            cap = max(cap, len(page))
            new = [row for row in page if row.start not in found]
            _check_page(
                page_keys=[row.start for row in page],
                new_keys=[row.start for row in new],
                ceiling=anchor.replace(second=0, microsecond=0),
                what=f"minute chart (anchor {day} {hour})",
                tr_id=response.tr_id,
            )
            for row in new:
                found[row.start] = row
            if not page or len(page) < cap:
                break
            oldest = min(row.start for row in page)
            if oldest < since:
                break
            # Next anchor: the oldest minute - 1 minute (KT); a server that re-sends the
            # anchor row instead (the official backtester's reading) is de-duplicated above.
            anchor = oldest - timedelta(minutes=1)
            if anchor.date() != day:
                break
        else:
            raise BrokerAPIError(f"minute chart still had pages after {MAX_PAGES}")
        ordered = [found[key] for key in sorted(found)]
        before = [row for row in ordered if row.start < since]
        # No older row means the day's first trade was reached: the day started at zero.
        prev = before[-1].cum_turnover if before else Decimal(0)
        kept = [row for row in ordered if since <= row.start <= until]
        if not include_forming:
            kept = [row for row in kept if row.start + timedelta(minutes=1) <= now]
        return DayMinutes(kept, prev, snapshot)
