"""Live bars of a market are built from that market's trade feed."""

from __future__ import annotations

import asyncio
from datetime import datetime

from kis_async import KISBroker, Market, Mode
from kis_async.models import KST
from kis_async.sim import KISSimulator

SYMBOL = "005930"
START = datetime(2026, 12, 1, 10, 0, 0, tzinfo=KST)


async def test_nxt_live_bars_subscribe_the_nxt_trades() -> None:
    """live_bars(market=NXT) registers H0NXCNT0 (not the KRX feed) for its trades."""
    sim = KISSimulator(seed=3, mode=Mode.LIVE, rate_limit=False, start_time=START)
    async with sim.serve(port=0) as running:
        config = running.config(requests_per_second=None)
        async with KISBroker(config, clock=running.clock.now) as broker:
            bars = broker.live_bars([SYMBOL], "60m", market=Market.NXT)
            await bars.start()
            try:
                async with asyncio.timeout(10):
                    while not any(s.subscriptions for s in running.hub.sessions):
                        await asyncio.sleep(0.02)
                held = {key for s in running.hub.sessions for key in s.subscriptions}
                assert held == {("H0NXCNT0", SYMBOL)}
            finally:
                await bars.aclose()
