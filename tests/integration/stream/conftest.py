"""Fixtures for the streaming tests: a fast simulator and a broker with short timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kis_async import KISBroker, Mode
from kis_async.sim import KISSimulator
from kis_async.stream.options import StreamOptions

#: Short timeouts so faults are detected and healed in well under a second.
FAST = StreamOptions(
    ack_timeout=3.0,
    liveness_timeout=1.0,
    connect_timeout=2.0,
    close_timeout=0.5,
    reconnect_base_delay=0.02,
    reconnect_max_delay=0.2,
    reconnect_jitter=0.5,
    healthy_after=0.5,
    max_reconnect_attempts=50,
)


async def wait_for(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Poll ``predicate`` until true (fails the test after ``limit`` seconds)."""
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.01)


Waiter = Callable[..., Awaitable[None]]


@pytest.fixture
def fast_options() -> StreamOptions:
    """The :data:`FAST` stream options."""
    return FAST


@pytest.fixture
def wait() -> Waiter:
    """The :func:`wait_for` helper (test modules cannot import conftest in importlib mode)."""
    return wait_for


@pytest.fixture
async def fast_sim() -> AsyncIterator[KISSimulator]:
    """A paper simulator ticking every 20 ms, PINGPONG every 0.2 s, no REST rate limit."""
    sim = KISSimulator(
        seed=4242,
        mode=Mode.PAPER,
        quote_interval=0.02,
        pingpong_interval=0.2,
        pingpong_timeout=1.0,
        rate_limit=False,
    )
    async with sim.serve(port=0) as running:
        yield running


@pytest.fixture
async def fast_broker(fast_sim: KISSimulator) -> AsyncIterator[KISBroker]:
    """A broker on ``fast_sim`` with :data:`FAST` stream options."""
    config = fast_sim.config(requests_per_second=None)
    async with KISBroker(config, stream_options=FAST) as broker:
        yield broker
