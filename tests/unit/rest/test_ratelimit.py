"""The sliding-window rate limiter, on a fake clock."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import random
from typing import Any

import httpx
import pytest
import respx

from kis_async.models import OrderRequest, Side
from kis_async.rest.ratelimit import RateLimiter


class FakeClock:
    """A clock that moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


class ManualClock:
    """A clock that moves only when the test advances it; sleepers wake when due."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._changed = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        due = self.now + max(seconds, 0.0)
        while self.now < due:
            self._changed.clear()
            await self._changed.wait()

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        self._changed.set()
        for _ in range(20):
            await asyncio.sleep(0)


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(20):
        await asyncio.sleep(0)


def max_in_window(stamps: list[float], window: float) -> int:
    """The largest number of stamps in any half-open window [t, t + window)."""
    ordered = sorted(stamps)
    best = 0
    for i, start in enumerate(ordered):
        j = bisect.bisect_left(ordered, start + window)
        best = max(best, j - i)
    return best


@pytest.mark.parametrize("rps", [1.0, 2.0, 2.5, 18.0, 20.0])
async def test_never_exceeds_rate_in_any_one_second_window(rps: float) -> None:
    """No 1-s window (indeed no 1 s + margin window) holds more than floor(rps) grants."""
    clock = FakeClock()
    limiter = RateLimiter(rps, clock=clock, sleep=clock.sleep)
    granted: list[float] = []
    rng = random.Random(7)

    async def caller(delay: float, priority: bool) -> None:
        await clock.sleep(delay)
        await limiter.acquire(priority=priority)
        granted.append(clock())

    await asyncio.gather(
        *(caller(rng.choice([0.0, 0.0, 0.01]), rng.random() < 0.3) for _ in range(120))
    )
    assert len(granted) == 120
    cap = math.floor(rps)
    assert max_in_window(granted, 1.0) <= cap
    assert max_in_window(granted, limiter.window) <= cap
    # and it is not needlessly slow: 120 grants take about 120 / cap windows
    span = max(granted) - min(granted)
    assert span <= (120 / cap) * limiter.window + limiter.window


async def test_bursty_arrivals_over_time() -> None:
    """Bursts separated by idle gaps still never exceed the rate in any window."""
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    granted: list[float] = []

    async def caller() -> None:
        await limiter.acquire()
        granted.append(clock())

    for burst in range(6):
        await asyncio.gather(*(caller() for _ in range(7 + burst)))
        await clock.sleep(0.3 * burst)
    assert len(granted) == sum(7 + b for b in range(6))
    assert max_in_window(granted, 1.0) <= 5


async def test_rate_below_one_per_second() -> None:
    """rps 0.5 grants one request per 2 s (+ margin)."""
    clock = FakeClock()
    limiter = RateLimiter(0.5, clock=clock, sleep=clock.sleep)
    granted: list[float] = []

    async def caller() -> None:
        await limiter.acquire()
        granted.append(clock())

    await asyncio.gather(*(caller() for _ in range(5)))
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    assert all(gap >= 2.0 for gap in gaps)
    assert limiter.capacity == 1


async def test_orders_go_before_queued_reads() -> None:
    """A priority (order) caller arriving behind queued reads is granted before them."""
    clock = ManualClock()
    limiter = RateLimiter(1, clock=clock, sleep=clock.sleep)
    order: list[str] = []

    async def caller(name: str, priority: bool) -> None:
        await limiter.acquire(priority=priority)
        order.append(name)

    await limiter.acquire()  # use up the window
    reads = [asyncio.create_task(caller(f"read{i}", False)) for i in range(4)]
    await settle()
    orders = [asyncio.create_task(caller(f"order{i}", True)) for i in range(2)]
    await settle()
    assert order == []
    tasks = [*reads, *orders]
    for _ in range(20):
        if all(t.done() for t in tasks):
            break
        await clock.advance(1.1)
    assert order == ["order0", "order1", "read0", "read1", "read2", "read3"]


async def test_disabled_limiter_never_waits() -> None:
    """rps None grants at once, without sleeping."""
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    await asyncio.gather(*(limiter.acquire() for _ in range(1000)))
    assert clock.sleeps == 0
    assert not limiter.enabled


async def test_cancelled_waiter_leaves_the_queue() -> None:
    """A cancelled waiter does not take a slot and the others still get served."""
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock, sleep=clock.sleep)
    await limiter.acquire()
    gate = asyncio.Event()

    async def blocking_sleep(seconds: float) -> None:
        await gate.wait()
        clock.now += seconds

    limiter._sleep = blocking_sleep
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert limiter.queued == 2
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    gate.set()
    await asyncio.wait_for(second, 5)
    assert limiter.queued == 0


def test_invalid_rate() -> None:
    """A non-positive rate is refused."""
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


async def test_client_orders_take_precedence(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """Through RestClient, an order queued behind reads reaches the server first."""
    router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["tr_id"])
        if request.url.path.endswith("order-cash"):
            return httpx.Response(
                200,
                json=kis.envelope("40600000", output={"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": "1"}),
            )
        return httpx.Response(
            200, json=kis.envelope(output={"stck_shrn_iscd": "005930", "stck_prpr": "1"})
        )

    router.route().mock(side_effect=record)
    clock = ManualClock()
    limiter = RateLimiter(1, clock=clock, sleep=clock.sleep)
    client = make_client(limiter=limiter)
    await client.token()  # tokenP took the only slot of this window: everything below queues
    reads = [asyncio.create_task(client.get_price("005930")) for _ in range(3)]
    await settle()
    order = asyncio.create_task(client.place_order(OrderRequest("005930", Side.BUY, 1, price=1)))
    await settle()
    assert seen == []
    tasks = [*reads, order]
    for _ in range(20):
        if all(t.done() for t in tasks):
            break
        await clock.advance(1.1)
    await asyncio.gather(*tasks)
    assert seen[0] == "VTTC0012U"
    assert seen[1:] == ["FHKST01010100"] * 3
