"""Helpers of the reliability suite: simulators with test-friendly options, quick stream tuning,
and polling with a deadline (never an open-ended wait)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from kis_async import KISBroker
from kis_async.sim import KISSimulator
from kis_async.sim.exchange import DEFAULT_SYMBOLS
from kis_async.stream.options import StreamOptions

#: Set KIS_RELIABILITY_LONG=1 to run the long forms (e.g. drops every 2 s for 30 s).
LONG = os.environ.get("KIS_RELIABILITY_LONG", "") not in ("", "0")

#: 20 symbols: 20 trade + 19 order-book registrations + the notices = 40 registrations.
SYMBOLS_20: tuple[tuple[str, str, int], ...] = (
    *DEFAULT_SYMBOLS,
    ("900010", "신뢰성1", 12_000),
    ("900020", "신뢰성2", 33_000),
    ("900030", "신뢰성3", 7_500),
    ("900040", "신뢰성4", 150_000),
    ("900050", "신뢰성5", 2_500),
)[:20]

FAST_STREAMS = StreamOptions(
    ack_timeout=5.0,
    reconnect_base_delay=0.02,
    reconnect_max_delay=0.2,
    reconnect_jitter=0.5,
    healthy_after=0.3,
    max_reconnect_attempts=50,
)


@asynccontextmanager
async def served(**options: Any) -> AsyncIterator[KISSimulator]:
    """A live-mode simulator on 127.0.0.1 port 0 with ``options`` applied."""
    options.setdefault("seed", 4321)
    options.setdefault("mode", "live")
    async with KISSimulator(**options).serve(port=0) as sim:
        yield sim


@asynccontextmanager
async def broker_for(sim: KISSimulator, **kwargs: Any) -> AsyncIterator[KISBroker]:
    """A KISBroker on ``sim``; keyword ``config`` overrides go to ``sim.config``."""
    config_overrides = kwargs.pop("config", {})
    async with KISBroker(sim.config(**config_overrides), **kwargs) as broker:
        yield broker


async def wait_until(
    predicate: Callable[[], bool], *, within: float, interval: float = 0.02
) -> bool:
    """Poll ``predicate`` until true or ``within`` seconds pass; returns the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()
