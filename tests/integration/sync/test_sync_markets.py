"""The synchronous client forwards ``market=`` to the async streams (from a worker thread, as
a real sync program uses it)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from kis_async import Market, Mode, OrderBook, PaperModeError, Quote, SyncKISBroker
from kis_async.models import KST
from kis_async.sim import KISSimulator

DAY = datetime(2026, 12, 1, 10, 0, tzinfo=KST)


async def test_sync_streams_per_market() -> None:
    """Blocking NXT quotes and integrated books carry their market; paper mode refuses NXT
    before subscribing."""
    sim = KISSimulator(seed=5, mode=Mode.LIVE, rate_limit=False, quote_interval=0.02, clock=DAY)
    async with sim.serve(port=0) as running:
        broker = await asyncio.to_thread(SyncKISBroker, running.config(requests_per_second=None))
        try:

            def read() -> tuple[Quote, OrderBook]:
                with broker.quotes(["005930"], market="nxt") as quotes:
                    quote = next(iter(quotes))
                with broker.orderbooks(["005930"], market=Market.UNIFIED) as books:
                    book = next(iter(books))
                return quote, book

            quote, book = await asyncio.to_thread(read)
            assert quote.market is Market.NXT
            assert book.market is Market.UNIFIED
        finally:
            await asyncio.to_thread(broker.close)
    paper = KISSimulator(seed=6, mode=Mode.PAPER, rate_limit=False, quote_interval=None)
    async with paper.serve(port=0) as running:
        broker = await asyncio.to_thread(SyncKISBroker, running.config(requests_per_second=None))
        try:
            with pytest.raises(PaperModeError):
                await asyncio.to_thread(broker.quotes, ["005930"], market="unified")
            assert running.stats.subscribe_requests == 0
        finally:
            await asyncio.to_thread(broker.close)
