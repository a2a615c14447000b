"""Live bars from the trade stream, and the seam from REST history into them.

What "the same bar" means
-------------------------
A 1-minute bar starting at minute M covers every trade whose KIS trade time (H0STCNT0
``STCK_CNTG_HOUR``, whole seconds) lies in [M, M + 1 min). Built from ticks: open and close
are the first and last trade prices in arrival order, high/low their extremes, volume the sum
of ``CNTG_VOL``, turnover the rise of ``ACML_TR_PBMN`` over the bar. KIS's REST minute row
labelled M (``stck_cntg_hour`` = HHMM00, read as the minute's start) carries the same five
numbers (``stck_oprc``, ``stck_hgpr``, ``stck_lwpr``, ``stck_prpr``, ``cntg_vol``, the rise
of ``acml_tr_pbmn``). An N-minute bar is the 1-minute bars of its bucket
(:meth:`Interval.bucket`) folded together, from either source.

Ticks are proven complete with the cumulative volume every trade carries: a tick continues
the bar when ``ACML_VOL - CNTG_VOL`` equals the previous tick's ``ACML_VOL``. A bar with a
hole (ticks conflated away, a reconnect that lost prints, or a stream joined mid-bar), or a
bar during which the WebSocket reconnected, is fetched again over REST before it is emitted;
a bar that saw every tick is emitted as built.

The seam: the trade stream is subscribed first and drained into a buffer by its own task;
then today's minute rows are fetched, and their first page's ``output1.acml_vol`` (the day's
volume when KIS answered) says exactly which buffered ticks REST already counted (``ACML_VOL``
at or below it) and which come after. Bars before the current bucket come from REST; the
current bucket starts from its REST rows and continues with the later ticks. Nothing is
counted twice and nothing is skipped; a tick that does not continue that volume marks the
bucket for a REST re-fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, Self

from kis_async.history.fetch import HistoryFetcher, aggregate, minute_bars
from kis_async.models import Bar, Interval, Market, Quote
from kis_async.port import AsyncClosing, Stream
from kis_async.rest.chart import ChartSnapshot

__all__ = ["DEFAULT_GRACE", "LiveBars"]

logger = logging.getLogger("kis_async.history")

#: Seconds after a bar's end before a timer closes it when no later trade arrived.
DEFAULT_GRACE: Final = 2.0
#: Ticks buffered between the stream and the bar builder; beyond it ticks are dropped and the
#: affected bar is re-fetched over REST.
BUFFER_LIMIT: Final = 100_000
#: Longest real-time wait between looks at the (possibly simulated) clock.
_POLL: Final = 0.25


class _End:
    """Queued by the pump when the quote stream ended."""


@dataclass(slots=True)
class _Forming:
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    turnover: Decimal
    tainted: bool
    reconnects: int


@dataclass(slots=True)
class _SymbolState:
    bar: _Forming | None = None
    last_cum_volume: int | None = None
    last_cum_turnover: Decimal | None = None


class LiveBars(AsyncClosing):
    """Completed bars of some symbols, built from the H0STCNT0 trade stream.

    An async iterator, an async context manager and ``aclose()``-able, like the stream
    handles. A bar closes on the first trade of a later bucket, or ``grace`` seconds after its
    end by ``clock`` when no trade comes. With ``partial=True`` the forming bar is also yielded
    after every trade, with ``partial=True`` set on it.

    Args:
        quotes: opens the trade stream (``broker.quotes``).
        fetcher: the REST pager used to re-fetch bars that span a reconnect or a hole.
        symbols: KRX codes.
        interval: an intraday interval.
        partial: also yield the forming bar on each trade.
        market: the market REST re-fetches ask about.
        reconnects: the session's reconnect counter (``broker.stream_status.reconnects``).
        grace: seconds after a bar's end before the timer closes it.
    """

    def __init__(
        self,
        *,
        quotes: Callable[[list[str]], Stream[Quote]],
        fetcher: HistoryFetcher,
        symbols: Iterable[str],
        interval: Interval,
        partial: bool,
        market: Market,
        reconnects: Callable[[], int],
        grace: float = DEFAULT_GRACE,
    ) -> None:
        self._quotes = quotes
        self._fetcher = fetcher
        self._symbols = list(dict.fromkeys(symbols))
        self._interval = interval
        self._partial = partial
        self._market = market
        self._reconnects = reconnects
        self._grace = grace
        self._states: dict[str, _SymbolState] = {s: _SymbolState() for s in self._symbols}
        self._queue: asyncio.Queue[Quote | BaseException | _End] = asyncio.Queue()
        self._out: deque[Bar] = deque()
        self._stream: Stream[Quote] | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._closed = False
        self._dropped = 0
        self._refetched = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe (waiting for KIS's ack) and start buffering ticks. Idempotent."""
        if self._closed:
            raise RuntimeError("these live bars are closed")
        if self._stream is not None:
            return
        stream = self._quotes(self._symbols)
        self._stream = stream
        await stream.__aenter__()
        self._pump_task = asyncio.create_task(self._pump(stream), name="kis-live-bars")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def aclose(self) -> None:
        """Stop the pump and unsubscribe. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(_End())  # wakes a reader waiting for the next tick
        task, self._pump_task = self._pump_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._stream is not None:
            await self._stream.aclose()

    @property
    def dropped(self) -> int:
        """Ticks dropped because the buffer was full (their bars were re-fetched)."""
        return self._dropped

    @property
    def refetched(self) -> int:
        """Bars fetched again over REST (holes, reconnects, a stream joined mid-bar)."""
        return self._refetched

    async def _pump(self, stream: Stream[Quote]) -> None:
        try:
            async for quote in stream:
                if self._queue.qsize() >= BUFFER_LIMIT:
                    self._dropped += 1
                    continue
                self._queue.put_nowait(quote)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the stream failed: hand the error to the reader
            self._queue.put_nowait(exc)
            return
        self._queue.put_nowait(_End())

    # -- seam --------------------------------------------------------------------------------

    def seed(self, symbol: str, bar: Bar | None, snapshot: ChartSnapshot | None) -> None:
        """Start ``symbol``'s current bucket from REST: ``bar`` is the bucket as KIS had it
        (None when no trade yet) and ``snapshot`` the day's totals of the same answer."""
        state = self._states[symbol]
        if snapshot is None or snapshot.volume is None:
            # Without the day's volume the next tick cannot be placed: fetch the bucket again.
            state.bar = _from_bar(bar, self._reconnects(), tainted=True) if bar else None
            return
        state.last_cum_volume = snapshot.volume
        state.last_cum_turnover = snapshot.turnover
        state.bar = _from_bar(bar, self._reconnects(), tainted=False) if bar else None

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Bar]:
        return self

    async def __anext__(self) -> Bar:
        if self._closed and not self._out:
            raise StopAsyncIteration
        await self.start()
        while not self._out:
            wait = self._next_deadline()
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout=wait)
            except TimeoutError:
                await self._close_due()
                continue
            if isinstance(item, _End):
                if self._closed:
                    raise StopAsyncIteration
                await self._close_all()
                if not self._out:
                    raise StopAsyncIteration
                break
            if isinstance(item, BaseException):
                raise item
            await self._on_quote(item)
        return self._out.popleft()

    def _next_deadline(self) -> float | None:
        ends = [
            self._interval.end_of(s.bar.start) for s in self._states.values() if s.bar is not None
        ]
        if not ends:
            return None
        left = (min(ends) - self._fetcher.now()).total_seconds() + self._grace
        return min(max(left, 0.0), _POLL)

    async def _close_due(self) -> None:
        now = self._fetcher.now()
        for symbol, state in self._states.items():
            bar = state.bar
            if (
                bar is not None
                and self._interval.end_of(bar.start) + timedelta(seconds=self._grace) <= now
            ):
                state.bar = None
                await self._finish(symbol, bar)

    async def _close_all(self) -> None:
        for symbol, state in self._states.items():
            if state.bar is not None:
                bar, state.bar = state.bar, None
                await self._finish(symbol, bar)

    async def _on_quote(self, quote: Quote) -> None:
        state = self._states.get(quote.symbol)
        if state is None:
            return
        when = quote.time or self._fetcher.now()
        qty = quote.volume or 0
        cum = quote.cum_volume
        if cum is not None and state.last_cum_volume is not None and cum <= state.last_cum_volume:
            return  # already counted (by REST at the seam, or a repeated print)
        # The tick continues the previous one when the day's volume before it is exactly
        # what we had counted (the day's first trade continues zero).
        continuous = cum is not None and cum - qty == (state.last_cum_volume or 0)
        if quote.cum_turnover is not None and state.last_cum_turnover is not None and continuous:
            turnover = quote.cum_turnover - state.last_cum_turnover
        else:
            turnover = quote.price * qty
        start = self._interval.bucket(when)
        bar = state.bar
        if bar is not None and start > bar.start:
            if not continuous:
                bar.tainted = True  # the missing prints may belong to this bar
            state.bar = None
            await self._finish(quote.symbol, bar)
            bar = None
        if bar is None:
            state.bar = _Forming(
                start=start, open=quote.price, high=quote.price, low=quote.price,
                close=quote.price, volume=qty, turnover=turnover, tainted=not continuous,
                reconnects=self._reconnects(),
            )  # fmt: skip
        elif start < bar.start:
            bar.tainted = True  # a late print of an emitted bar: the current one is suspect
        else:
            bar.high = max(bar.high, quote.price)
            bar.low = min(bar.low, quote.price)
            bar.close = quote.price
            bar.volume += qty
            bar.turnover += turnover
            bar.tainted = bar.tainted or not continuous
        if cum is not None:
            state.last_cum_volume = cum
        if quote.cum_turnover is not None:
            state.last_cum_turnover = quote.cum_turnover
        if self._partial and state.bar is not None:
            self._out.append(_to_bar(quote.symbol, self._interval, state.bar, partial=True))

    async def _finish(self, symbol: str, bar: _Forming) -> None:
        if bar.tainted or bar.reconnects != self._reconnects():
            refetched = await self._refetch(symbol, bar.start)
            self._refetched += 1
            if refetched is not None:
                self._out.append(refetched)
                return
            logger.warning("%s %s: no REST row for a bar built from ticks", symbol, bar.start)
        self._out.append(_to_bar(symbol, self._interval, bar, partial=False))

    async def _refetch(self, symbol: str, start: datetime) -> Bar | None:
        end = self._interval.end_of(start)
        got = await self._fetcher.day_minutes(
            symbol, self._market, start.date(), since=start,
            until=end - timedelta(seconds=1), include_forming=True,
        )  # fmt: skip
        ones = minute_bars(symbol, got.rows, got.prev_cum_turnover)
        for candidate in aggregate(ones, self._interval):
            if candidate.start == start:
                return candidate
        return None


def _from_bar(bar: Bar, reconnects: int, *, tainted: bool) -> _Forming:
    return _Forming(
        start=bar.start, open=bar.open, high=bar.high, low=bar.low, close=bar.close,
        volume=bar.volume, turnover=bar.turnover, tainted=tainted, reconnects=reconnects,
    )  # fmt: skip


def _to_bar(symbol: str, interval: Interval, bar: _Forming, *, partial: bool) -> Bar:
    return Bar(
        symbol=symbol, start=bar.start, interval=interval, open=bar.open, high=bar.high,
        low=bar.low, close=bar.close, volume=bar.volume, turnover=bar.turnover,
        partial=partial,
    )  # fmt: skip
