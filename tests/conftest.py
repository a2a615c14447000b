"""Shared fixtures: zero retry waits, a simulator on 127.0.0.1, and a broker pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from kis_async import KISBroker, Mode
from kis_async.rest.retry import set_wait_scale
from kis_async.sim import KISSimulator


@pytest.fixture(autouse=True)
def no_retry_waits() -> Iterator[None]:
    """Backoff waits are zero in tests; the retry predicates and bounds still apply."""
    previous = set_wait_scale(0.0)
    try:
        yield
    finally:
        set_wait_scale(previous)


@pytest.fixture
async def sim() -> AsyncIterator[KISSimulator]:
    """A paper-mode simulator served on 127.0.0.1, port 0.

    Its REST rate limit is off so integration tests run fast; the rate-limit tests build their
    own simulator with ``rate_limit=True``.
    """
    async with KISSimulator(seed=1234, mode=Mode.PAPER, rate_limit=False).serve(port=0) as running:
        yield running


@pytest.fixture
async def sim_live() -> AsyncIterator[KISSimulator]:
    """A live-mode simulator served on 127.0.0.1, port 0 (REST rate limit off)."""
    async with KISSimulator(seed=1234, mode=Mode.LIVE, rate_limit=False).serve(port=0) as running:
        yield running


@pytest.fixture
async def broker(sim: KISSimulator) -> AsyncIterator[KISBroker]:
    """A KISBroker opened against the paper simulator, client-side rate limiting off."""
    async with KISBroker(sim.config(requests_per_second=None)) as opened:
        yield opened
