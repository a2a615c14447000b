"""MockBroker's per-market feeds: a print or book pushed on one market reaches only the
streams of that market."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

from kis_async import Market, MockBroker

SYMBOL = "005930"


async def _rest(stream: Any, period: float = 0.2) -> list[Any]:
    out: list[Any] = []
    with contextlib.suppress(TimeoutError):
        while True:
            out.append(await asyncio.wait_for(anext(stream), period))
    return out


async def test_prints_go_to_their_market_only() -> None:
    """push_quote(market=NXT) reaches NXT quote streams (labelled NXT), not KRX ones; books
    likewise; wait_subscribed waits per market."""
    broker = MockBroker(prices={SYMBOL: 70_000})
    async with (
        broker,
        broker.quotes([SYMBOL]) as krx,
        broker.quotes([SYMBOL], market="nxt") as nxt,
        broker.orderbooks([SYMBOL], market=Market.UNIFIED) as unified,
    ):
        await broker.wait_subscribed([SYMBOL], market=Market.NXT, max_wait=2)
        broker.push_quote(SYMBOL, 70_100, volume=1, market=Market.NXT)
        broker.push_quote(SYMBOL, 70_200, volume=1)
        broker.push_orderbook(SYMBOL, asks=[(70_300, 5)], bids=[(70_200, 7)], market="UN")
        broker.push_orderbook(SYMBOL, asks=[(70_400, 5)], bids=[(70_300, 7)])
        got_nxt = await _rest(nxt)
        got_krx = await _rest(krx)
        got_books = await _rest(unified)
    assert [(q.price, q.market) for q in got_nxt] == [(Decimal(70_100), Market.NXT)]
    assert [(q.price, q.market) for q in got_krx] == [(Decimal(70_200), Market.KRX)]
    assert [(b.best_ask, b.market) for b in got_books] == [((Decimal(70_300), 5), Market.UNIFIED)]
