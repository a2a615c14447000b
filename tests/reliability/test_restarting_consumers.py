"""Restarting consumers under drops: four execution consumers restart at random while the
simulator drops every session every 0.5 s; per consumer, no fill is lost or duplicated.

Two consumers resume from the cursor they saved after each handled event
(``executions(since=...)``); two simply open a fresh replaying stream (``executions()``).
CI runs 15 s; KIS_RELIABILITY_LONG=1 runs the issue's 60 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter

import pytest

from kis_async import Execution, ExecutionKind, KISBroker, OrderRequest, OrderType
from kis_async.validation import normalize_order_id

from .conftest import FAST_STREAMS, LONG, broker_for, served, wait_until

pytestmark = pytest.mark.reliability

DROP_EVERY = 0.5
RUN_FOR = 60.0 if LONG else 15.0


def _fills(events: list[Execution]) -> Counter[str]:
    out: Counter[str] = Counter()
    for event in events:
        if event.kind is ExecutionKind.FILLED:
            out[normalize_order_id(event.broker_order_id)] += event.qty
    return out


class Consumer:
    """A worker that crashes at random and is restarted by its supervisor."""

    def __init__(self, broker: KISBroker, number: int, *, resume: bool) -> None:
        self.broker = broker
        self.number = number
        self.resume = resume
        self.rng = random.Random(1000 + number)
        self.handled: list[Execution] = []  # cursor consumers: across restarts
        self.current: list[Execution] = []  # replaying consumers: the latest stream
        self.saved: str | None = None
        self.restarts = 0
        self.stopping = False

    async def run(self) -> None:
        while True:
            self.current = []
            life = asyncio.get_running_loop().time() + self.rng.uniform(0.1, 1.5)
            stream = (
                self.broker.executions(since=self.saved)
                if self.resume
                else (self.broker.executions())
            )
            async with stream:
                while self.stopping or asyncio.get_running_loop().time() < life:
                    try:
                        event = await asyncio.wait_for(anext(stream), 0.2)
                    except TimeoutError:
                        continue
                    if self.resume:
                        self.handled.append(event)
                        assert event.cursor is not None
                        self.saved = str(event.cursor)
                    else:
                        self.current.append(event)
            self.restarts += 1  # crashed: whatever the stream still queued is abandoned

    def delivered(self) -> Counter[str]:
        return _fills(self.handled if self.resume else self.current)


@pytest.mark.timeout(180 if LONG else 90)
async def test_restarting_consumers_under_drops_lose_and_duplicate_no_fill() -> None:
    """4 consumers restarting at random, sessions dropped every 0.5 s: each consumer's
    delivered quantity per order equals the exchange's filled quantity."""
    async with (
        served(
            quote_interval=None,
            pingpong_interval=60.0,
            rate_limit=False,
            starting_holdings={"005930": 500},
        ) as sim,
        broker_for(
            sim, stream_options=FAST_STREAMS, config={"requests_per_second": None}
        ) as broker,
    ):
        consumers = [Consumer(broker, n, resume=n < 2) for n in range(4)]
        tasks = [asyncio.create_task(c.run()) for c in consumers]
        try:
            assert await wait_until(lambda: broker.stream_status.connected, within=10)
            loop = asyncio.get_running_loop()
            end = loop.time() + RUN_FOR
            next_drop = loop.time() + DROP_EVERY
            placed = drops = 0
            side = "buy"
            while loop.time() < end:
                await broker.place_order(
                    OrderRequest("005930", side, 1 + placed % 3, order_type=OrderType.MARKET)
                )
                placed += 1
                side = "sell" if side == "buy" else "buy"
                if loop.time() >= next_drop:
                    drops += sim.faults.drop_sessions()
                    next_drop += DROP_EVERY
                await asyncio.sleep(0.05)
            for consumer in consumers:
                consumer.stopping = True  # no more restarts: let each catch up
            booked = Counter(
                {
                    normalize_order_id(o.order_id): o.filled_qty
                    for o in sim.exchange.orders
                    if o.filled_qty
                }
            )
            caught_up = await wait_until(
                lambda: all(c.delivered() == booked for c in consumers), within=30
            )
            await asyncio.sleep(0.5)  # anything late would be a duplicate
            results = [c.delivered() for c in consumers]
            status = broker.stream_status
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    lost = [sum((booked - r).values()) for r in results]
    duplicated = [sum((r - booked).values()) for r in results]
    print(
        f"\nrestarting consumers under drops every {DROP_EVERY:g} s for {RUN_FOR:g} s: "
        f"{drops} drops, {status.reconnects} reconnects, {placed} orders, "
        f"{sum(booked.values())} shares filled; restarts per consumer "
        f"{[c.restarts for c in consumers]}; lost {lost}, duplicated {duplicated}; "
        f"reconciled {status.executions_reconciled}, suppressed "
        f"{status.duplicate_fills_suppressed}"
    )
    assert len(booked) == placed
    assert all(c.restarts >= 3 for c in consumers)
    assert lost == [0, 0, 0, 0]
    assert duplicated == [0, 0, 0, 0]
    assert caught_up
