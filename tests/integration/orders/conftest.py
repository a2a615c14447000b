"""Fixtures for the order-layer integration tests: a simulator without its rate limiter (the
client's limiter is off too, so reconciliation polls are quick) and a broker factory whose
placer reconciles with short, bounded polls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kis_async import KISBroker, Mode
from kis_async.orders.journal import OrderJournal
from kis_async.orders.placement import PlacementOptions
from kis_async.sim import KISSimulator

QUICK = PlacementOptions(
    reconcile_attempts=4, reconcile_interval=0.1, clock_tolerance=30.0, not_booked_after=0.0
)


@pytest.fixture
async def fast_sim() -> AsyncIterator[KISSimulator]:
    """A paper simulator on 127.0.0.1: no rate limiting, no background price moves, and
    no one-token-per-minute rule (tests open several brokers in a row)."""
    async with KISSimulator(
        seed=1234, mode=Mode.PAPER, rate_limit=False, quote_interval=None, token_issue_interval=0.0
    ).serve(port=0) as running:
        yield running


@pytest.fixture
def make_broker(fast_sim: KISSimulator) -> Callable[..., KISBroker]:
    """Build (unopened) brokers against ``fast_sim`` with quick reconciliation."""

    def build(
        *,
        journal: OrderJournal | None = None,
        options: PlacementOptions = QUICK,
        **config: Any,
    ) -> KISBroker:
        cfg = fast_sim.config(requests_per_second=None, **config)
        return KISBroker(cfg, journal=journal, placement_options=options)

    return build


@pytest.fixture
async def quick_broker(make_broker: Callable[..., KISBroker]) -> AsyncIterator[KISBroker]:
    """An opened broker with quick reconciliation and a 1-s request timeout."""
    async with make_broker(timeout=1.0) as broker:
        yield broker
