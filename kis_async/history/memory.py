"""In-memory bars for :class:`~kis_async.MockBroker` (``set_bars`` / ``bars`` / ``get_bars``).

The same request checks and N-minute folding as the KIS pager (:mod:`kis_async.history.fetch`),
with the data source swapped for bars a test puts in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from datetime import date, datetime

from kis_async.errors import HistoryRequestError
from kis_async.history.fetch import BarRequest, aggregate, check_request
from kis_async.history.service import BarStream
from kis_async.models import Bar, Interval, Market

__all__ = ["MemoryBars"]


class MemoryBars:
    """Bars per symbol and interval, served oldest first.

    Args:
        clock: the current time (aware); ``end`` defaults to it.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._bars: dict[tuple[str, Interval], dict[datetime, Bar]] = {}

    def set_bars(self, symbol: str, bars: Iterable[Bar]) -> None:
        """Add (or replace, by start) bars of ``symbol``; each keeps its own interval.

        Raises:
            HistoryRequestError: a bar of another symbol.
        """
        for bar in bars:
            if bar.symbol != symbol:
                raise HistoryRequestError(f"bar of {bar.symbol} given for {symbol}")
            self._bars.setdefault((symbol, bar.interval), {})[bar.start] = bar

    def bars(
        self,
        symbol: str,
        interval: Interval | str,
        *,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        adjusted: bool = True,
        market: Market | str = Market.KRX,
    ) -> BarStream:
        """Stored bars of the request (N-minute ones folded from stored 1-minute bars when
        none of that interval were set)."""
        request = check_request(
            symbol, interval, start=start, end=end, adjusted=adjusted, market=market,
            now=self._clock(),
        )  # fmt: skip
        return BarStream(self._iterate(request))

    async def _iterate(self, request: BarRequest) -> AsyncIterator[Bar]:
        iv = request.interval
        stored = self._bars.get((request.symbol, iv))
        if stored is None and iv.is_intraday:
            ones = self._bars.get((request.symbol, Interval.MINUTE_1), {})
            found = aggregate([ones[k] for k in sorted(ones)], iv)
        else:
            found = [stored[k] for k in sorted(stored)] if stored else []
        lo = iv.bucket(request.start) if request.start is not None else None
        for bar in found:
            if (lo is None or bar.start >= lo) and bar.start <= request.end:
                yield bar
