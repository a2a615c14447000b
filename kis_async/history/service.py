"""History: the broker-facing price-history API (bars, live bars, the seam, recent trades)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import date, datetime, time, timedelta
from typing import Protocol, Self

from kis_async.errors import HistoryRequestError
from kis_async.history.fetch import BarRequest, HistoryFetcher, aggregate, minute_bars
from kis_async.history.live import DEFAULT_GRACE, LiveBars
from kis_async.models import KST, Bar, Interval, Market, Quote, Trade, is_valid_symbol
from kis_async.port import AsyncClosing, Stream
from kis_async.rest import chart
from kis_async.rest.client import RestClient
from kis_async.rest.http import decode_output
from kis_async.rest.trids import Api

__all__ = ["BarStream", "History"]


class BarStream(AsyncClosing):
    """The iterator :meth:`History.bars` returns: bars oldest first; ``aclose()`` (or leaving
    ``async with``) stops paging and, for ``live=True``, unsubscribes at once."""

    def __init__(self, source: AsyncIterator[Bar]) -> None:
        self._source = source
        self._closed = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Bar:
        if self._closed:
            raise StopAsyncIteration
        return await anext(self._source)

    async def aclose(self) -> None:
        """Stop now. Idempotent."""
        if self._closed:
            return
        self._closed = True
        closer = getattr(self._source, "aclose", None)
        if closer is not None:
            await closer()


class QuoteSource(Protocol):
    """The broker's public ``quotes``: a trade stream of ``symbols`` on ``market``."""

    def __call__(self, symbols: Iterable[str], *, market: Market | str = ...) -> Stream[Quote]:
        """Open the stream."""
        ...


class History:
    """Price history for one broker: REST bars, live bars and the seam between them.

    Args:
        rest: the REST client (its rate limiter paces every page).
        clock: the current time, aware; decides "today" and which bars are complete.
        quotes: opens a trade stream (the broker's public ``quotes``, with ``market=``).
        reconnects: the WebSocket reconnect counter (``stream_status.reconnects``).
    """

    def __init__(
        self,
        rest: RestClient,
        *,
        clock: Callable[[], datetime],
        quotes: QuoteSource,
        reconnects: Callable[[], int],
    ) -> None:
        self._rest = rest
        self.fetcher = HistoryFetcher(rest, clock=clock)
        self._quotes = quotes
        self._reconnects = reconnects

    def bars(
        self,
        symbol: str,
        interval: Interval | str,
        *,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        adjusted: bool = True,
        market: Market | str = Market.KRX,
        live: bool = False,
    ) -> BarStream:
        """See :meth:`kis_async.KISBroker.bars`. Checks run here, before any request."""
        request = self.fetcher.plan(
            symbol, interval, start=start, end=end, adjusted=adjusted, market=market
        )
        if not live:
            return BarStream(self.fetcher.bars(request))
        if not request.interval.is_intraday:
            raise HistoryRequestError("live=True needs a minute interval (1m ... 60m)")
        if end is not None:
            raise HistoryRequestError("live=True runs until closed: leave end unset")
        return BarStream(self._history_then_live(request))

    def live_bars(
        self,
        symbols: Iterable[str],
        interval: Interval | str = Interval.MINUTE_1,
        *,
        partial: bool = False,
        market: Market | str = Market.KRX,
        grace: float = DEFAULT_GRACE,
    ) -> LiveBars:
        """See :meth:`kis_async.KISBroker.live_bars`."""
        iv = Interval.parse(interval)
        if not iv.is_intraday:
            raise HistoryRequestError("live bars are minute bars (1m ... 60m)")
        codes = [symbols] if isinstance(symbols, str) else list(symbols)
        if not codes or not all(is_valid_symbol(s) for s in codes):
            raise HistoryRequestError("live_bars needs one or more 6-character KRX codes")
        mkt = self.fetcher.plan(codes[0], iv, start=None, end=None, adjusted=False, market=market)
        source = self._quotes

        def quotes(codes: list[str]) -> Stream[Quote]:
            # The trades of the market the bars are for (NXT bars from H0NXCNT0).
            return source(codes, market=mkt.market)

        return LiveBars(
            quotes=quotes, fetcher=self.fetcher, symbols=codes, interval=iv,
            partial=partial, market=mkt.market, reconnects=self._reconnects, grace=grace,
        )  # fmt: skip

    async def recent_trades(self, symbol: str, *, market: Market | str = Market.KRX) -> list[Trade]:
        """See :meth:`kis_async.KISBroker.recent_trades`."""
        request = self.fetcher.plan(
            symbol, Interval.DAY, start=None, end=None, adjusted=False, market=market
        )
        response = await self._rest.get_quotation(
            Api.RECENT_TRADES, chart.recent_trades_params(symbol, request.market)
        )
        today = self.fetcher.now().date()
        return decode_output(
            lambda: chart.parse_trades(response.body, symbol, today),
            tr_id=response.tr_id,
            what="inquire-ccnl output",
        )

    async def _history_then_live(self, request: BarRequest) -> AsyncIterator[Bar]:
        live = self.live_bars([request.symbol], request.interval, market=request.market)
        try:
            # Subscribe first: from here every tick is buffered while history is fetched.
            await live.start()
            assert request.start is not None
            now = self.fetcher.now()
            midnight = datetime.combine(now.date(), time(), KST)
            if request.start < midnight:
                past = dataclasses.replace(request, end=midnight - timedelta(microseconds=1))
                async for bar in self.fetcher.bars(past):
                    yield bar
            now = self.fetcher.now()
            since = max(request.interval.bucket(request.start), midnight)
            got = await self.fetcher.day_minutes(
                request.symbol, request.market, now.date(), since=since, until=now,
                include_forming=True,
            )  # fmt: skip
            ones = minute_bars(request.symbol, got.rows, got.prev_cum_turnover)
            bars = ones if request.interval is Interval.MINUTE_1 else aggregate(
                ones, request.interval
            )  # fmt: skip
            current = request.interval.bucket(now)
            if bars and bars[-1].start > current:
                current = bars[-1].start  # KIS's clock is ahead of ours
            for bar in bars:
                if bar.start < current:
                    yield bar
            overlap = next((bar for bar in bars if bar.start == current), None)
            live.seed(request.symbol, overlap, got.snapshot)
            async for bar in live:
                yield bar
        finally:
            await live.aclose()
