"""One symbol's market in :class:`~kis_async.mock.MockBroker`: prices, statistics, book.

A :class:`SymbolMarket` is the state :class:`~kis_async.mock_ledger.MockLedger` keeps per
symbol: the base (previous close) price, the last trade and the day's open/high/low/volume,
the ask/bid of the last quote and the last pushed book. It turns a pushed print into the
:class:`~kis_async.models.Quote` the streams deliver, answers ``get_price`` and
``get_orderbook``, and gives the reference prices marketable orders fill at.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from kis_async.models import Market, OrderBook, PriceLevel, PriceSnapshot, Quote, Side, tick_size
from kis_async.validation import positive_price

__all__ = ["Levels", "SymbolMarket", "market_price", "pushed_book"]

_PRICE_LIMIT_RATE: Final = Decimal("0.30")

#: ``(price, qty)`` levels of a pushed book.
Levels = Sequence[tuple[Decimal | int | str, int]]


def market_price(value: Decimal | int | str, what: str) -> Decimal:
    """A price pushed by a test: any positive price within KRX's range, fractions allowed."""
    return positive_price(value, what=what)


def pushed_book(
    symbol: str,
    *,
    asks: Levels,
    bids: Levels,
    time: datetime | None,
    clock: Callable[[], datetime],
    market: Market,
) -> OrderBook:
    """The book a test pushed, levels checked (``time`` defaults to ``clock()``)."""
    ask_levels = tuple(PriceLevel(market_price(p, "ask price"), int(q)) for p, q in asks)
    bid_levels = tuple(PriceLevel(market_price(p, "bid price"), int(q)) for p, q in bids)
    return OrderBook(
        symbol=symbol,
        time=time or clock(),
        asks=ask_levels,
        bids=bid_levels,
        total_ask_qty=sum(level.qty for level in ask_levels),
        total_bid_qty=sum(level.qty for level in bid_levels),
        market=market,
    )


@dataclass
class SymbolMarket:
    """The market state of one symbol (see the module docstring)."""

    base: Decimal
    price: Decimal
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    cum_volume: int = 0
    cum_turnover: Decimal = Decimal(0)
    ask: Decimal | None = None
    bid: Decimal | None = None
    book: OrderBook | None = None

    def trade(
        self,
        symbol: str,
        px: Decimal,
        *,
        volume: int | None,
        ask: Decimal | int | str | None,
        bid: Decimal | int | str | None,
        time: datetime | None,
        clock: Callable[[], datetime],
        market: Market,
    ) -> Quote:
        """Record a print at ``px`` and return its quote (``time`` defaults to ``clock()``)."""
        self.price = px
        self.open = self.open if self.open is not None else px
        self.high = px if self.high is None else max(self.high, px)
        self.low = px if self.low is None else min(self.low, px)
        self.ask = market_price(ask, "ask") if ask is not None else None
        self.bid = market_price(bid, "bid") if bid is not None else None
        traded = volume or 0
        self.cum_volume += traded
        self.cum_turnover += px * traded
        change = px - self.base
        rate = (change / self.base * 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
        vwap = (
            (self.cum_turnover / self.cum_volume).quantize(Decimal("0.01"), ROUND_HALF_UP)
            if self.cum_volume
            else None
        )
        when = time or clock()
        raw = {
            "MKSC_SHRN_ISCD": symbol,
            "STCK_CNTG_HOUR": when.strftime("%H%M%S"),
            "STCK_PRPR": str(px),
            "PRDY_VRSS": str(change),
            "PRDY_CTRT": str(rate),
            "CNTG_VOL": str(traded),
            "ACML_VOL": str(self.cum_volume),
        }
        return Quote(
            symbol=symbol,
            time=when,
            price=px,
            change=change,
            change_rate=rate,
            volume=volume,
            cum_volume=self.cum_volume,
            cum_turnover=self.cum_turnover,
            open=self.open,
            high=self.high,
            low=self.low,
            ask=self.ask,
            bid=self.bid,
            vwap=vwap,
            side=None,
            raw=raw,
            market=market,
        )

    def reference(self, side: Side) -> Decimal:
        """The price a marketable order of ``side`` fills at: the best opposite level of the
        book, else the quote's ask/bid, else the last trade."""
        book = self.book
        if side is Side.BUY:
            if book is not None and book.asks:
                return book.asks[0].price
            return self.ask or self.price
        if book is not None and book.bids:
            return book.bids[0].price
        return self.bid or self.price

    def snapshot(self, symbol: str) -> PriceSnapshot:
        """The last price with today's statistics and the daily price limits."""
        change = self.price - self.base
        tick = tick_size(self.base, symbol=symbol)
        upper = self.base * (1 + _PRICE_LIMIT_RATE)
        lower = self.base * (1 - _PRICE_LIMIT_RATE)
        sign = "2" if change > 0 else "5" if change < 0 else "3"
        return PriceSnapshot.model_validate(
            {
                "symbol": symbol,
                "price": self.price,
                "change": change,
                "change_sign": sign,
                "change_rate": (change / self.base * 100).quantize(Decimal("0.01"), ROUND_HALF_UP),
                "open": self.open,
                "high": self.high,
                "low": self.low,
                "upper_limit": Decimal(int(upper) // tick * tick),
                "lower_limit": Decimal(-(-int(lower) // tick) * tick),
                "base_price": self.base,
                "volume": self.cum_volume,
                "turnover": self.cum_turnover,
                "tick_size": tick_size(self.price, symbol=symbol),
            }
        )

    def orderbook(self, symbol: str, clock: Callable[[], datetime]) -> OrderBook:
        """The last pushed book, or ten levels one tick apart around the last price."""
        if self.book is not None:
            return self.book
        ask = self.ask or self.price + tick_size(self.price, symbol=symbol)
        bid = self.bid or self.price
        asks: list[PriceLevel] = []
        bids: list[PriceLevel] = []
        for _ in range(10):
            asks.append(PriceLevel(ask, 100))
            ask += tick_size(ask, symbol=symbol)
            bids.append(PriceLevel(bid, 100))
            bid -= tick_size(bid - 1, symbol=symbol)
            if bid <= 0:
                break
        return OrderBook(
            symbol=symbol,
            time=clock(),
            asks=tuple(asks),
            bids=tuple(bids),
            total_ask_qty=100 * len(asks),
            total_bid_qty=100 * len(bids),
        )
