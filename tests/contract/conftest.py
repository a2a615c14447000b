"""The contract suite runs every test against MockBroker and against KISBroker on the
in-process simulator: anything a strategy test can observe must agree.

A test asks the ``backend`` fixture for a broker (with the stream options it needs) and
drives the market through it: ``prints`` makes trades on a symbol, ``fail_streams`` ends the
streams the way each broker's streams end when the connection is given up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from kis_async import BrokerPort, KISBroker, MockBroker, Mode
from kis_async.sim import KISSimulator
from kis_async.stream.options import StreamOptions

SYMBOL = "005930"
BASE = 70_000  # on the 100-won tick grid, inside the daily band

QUICK = StreamOptions(
    ack_timeout=3.0,
    reconnect_base_delay=0.02,
    reconnect_max_delay=0.1,
    max_reconnect_attempts=50,
)


@dataclass
class Backend:
    """One broker under contract plus the levers a test pulls on its market."""

    name: str
    broker: BrokerPort
    prints: Callable[[list[int]], Awaitable[None]]
    fail_streams: Callable[[], Awaitable[None]]
    sim: KISSimulator | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    async def settle(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait (event loop turns, then short sleeps) until ``predicate`` holds."""
        async with asyncio.timeout(within):
            while not predicate():
                await asyncio.sleep(0.005)


Factory = Callable[..., AbstractAsyncContextManager[Backend]]


@asynccontextmanager
async def _mock(options: StreamOptions) -> AsyncIterator[Backend]:
    broker = MockBroker(cash=100_000_000, prices={SYMBOL: BASE}, stream_options=options)

    async def prints(prices: list[int]) -> None:
        for price in prices:
            broker.push_quote(SYMBOL, price, volume=1)

    async def fail() -> None:
        broker.fail_streams()

    async with broker:
        yield Backend("mock", broker, prints, fail)


@asynccontextmanager
async def _sim(options: StreamOptions) -> AsyncIterator[Backend]:
    sim = KISSimulator(
        seed=99,
        mode=Mode.PAPER,
        quote_interval=None,
        pingpong_interval=0.5,
        rate_limit=False,
        starting_holdings={SYMBOL: 1_000},
    )
    async with sim.serve(port=0) as running:
        running.exchange.set_price(SYMBOL, BASE)
        broker = KISBroker(running.config(requests_per_second=None), stream_options=options)

        async def prints(prices: list[int]) -> None:
            for price in prices:
                running.exchange.set_price(SYMBOL, price)

        async def fail() -> None:
            # The session gives up: the server drops it and refuses every reconnect.
            running.faults.refuse_connections(60.0)
            running.faults.drop_sessions()

        async with broker:
            yield Backend("sim", broker, prints, fail, sim=running)


@pytest.fixture(params=["mock", "sim"])
def backend(request: pytest.FixtureRequest) -> Factory:
    """``async with backend(**stream_options) as b:`` a broker of each kind in turn."""

    def make(**overrides: Any) -> AbstractAsyncContextManager[Backend]:
        values = {**QUICK.__dict__, **overrides}
        options = StreamOptions(**values)
        return _mock(options) if request.param == "mock" else _sim(options)

    return make
