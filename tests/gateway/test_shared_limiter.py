"""RedisRateLimiter on a real Redis: several OS processes share one budget; orders first."""

from __future__ import annotations

import asyncio
import bisect
import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from kis_async import KISBroker, KISConfig, Mode
from kis_async.gateway import RedisRateLimiter
from kis_async.rest.ratelimit import Limiter, RateLimiter, window_for
from kis_async.sim import KISSimulator

WORKER = Path(__file__).with_name("_shared_worker.py")


def max_in_window(times: list[float], width: float) -> int:
    """The most grants in any half-open interval [t, t + width)."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + width) - i for i, t in enumerate(ordered)), default=0
    )


def test_the_shared_limiter_has_the_in_process_window() -> None:
    """Same capacity and window as RateLimiter for live, paper and sub-1 rps; both are
    Limiters; bad arguments raise before any Redis call."""
    for rps in (20, 2, 0.5):
        shared = RedisRateLimiter("redis://127.0.0.1:1/0", rps=rps, name="x")
        local = RateLimiter(rps)
        assert (shared.capacity, shared.window) == (local.capacity, local.window)
        assert isinstance(shared, Limiter)
        assert isinstance(local, Limiter)
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="rps"):
            RedisRateLimiter("redis://127.0.0.1:1/0", rps=bad, name="x")
    with pytest.raises(ValueError, match="name"):
        RedisRateLimiter("redis://127.0.0.1:1/0", rps=2, name="two words")
    config = KISConfig(
        app_key="A" * 36, app_secret="S" * 180, account_id="5012345601", requests_per_second=None
    )
    with pytest.raises(ValueError, match="disables"):
        RedisRateLimiter.for_config("redis://127.0.0.1:1/0", config)


async def test_in_process_tasks_stay_in_the_window(redis_server: Any) -> None:
    """40 tasks of one process on a 5/s limiter: no 1-s window of Redis time holds more
    than 5 grants, and the budget is used (not starved either)."""
    limiter = RedisRateLimiter(redis_server.url, rps=5, name=f"t:{uuid.uuid4().hex}")
    grants: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        assert limiter.last_grant_time is not None
        grants.append(limiter.last_grant_time)

    try:
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(40))), 60)
    finally:
        await limiter.aclose()
    assert len(grants) == 40
    assert max_in_window(grants, 1.0) <= 5
    assert max_in_window(grants, limiter.window) <= 5
    # 40 grants at 5 per 1.05 s need at least 7 windows, and should not need many more.
    assert 7 * 1.05 - 0.1 <= max(grants) - min(grants) <= 40


async def test_cancelled_order_stops_holding_reads_back(redis_server: Any) -> None:
    """An order waiting on a full window that is cancelled withdraws itself: reads are
    granted as soon as the window has room again."""
    name = f"t:{uuid.uuid4().hex}"
    limiter = RedisRateLimiter(redis_server.url, rps=1, name=name, margin=0.0)
    try:
        await limiter.acquire()
        order = asyncio.ensure_future(limiter.acquire(priority=True))
        client = aioredis.from_url(redis_server.url)
        try:
            for _ in range(500):
                if await client.zcard(f"{name}:orders-waiting") == 1:
                    break
                await asyncio.sleep(0.01)
            assert await client.zcard(f"{name}:orders-waiting") == 1
            order.cancel()
            with pytest.raises(asyncio.CancelledError):
                await order
            assert await client.zcard(f"{name}:orders-waiting") == 0
        finally:
            await client.aclose()
        await asyncio.wait_for(limiter.acquire(), 10)
    finally:
        await limiter.aclose()


@pytest.mark.parametrize("shape", [(20, 12, 6, 0.3), (2, 3, 3, 1.5)], ids=["live", "paper"])
async def test_processes_share_one_budget_and_orders_go_first(
    redis_server: Any, children: Any, shape: tuple[int, int, int, float]
) -> None:
    """4 reader processes (``tasks`` tasks each, asking for 4 s) saturate the budget of
    ``rps`` while a fifth process sends ``count`` orders ``gap`` seconds apart: no 1-s window
    of Redis time holds more than ``rps`` grants, the budget is used, and each order waits at
    most about one window (no read goes ahead of a waiting order)."""
    rps, tasks, count, gap = shape
    name = f"t:{uuid.uuid4().hex}"
    base = {"url": redis_server.url, "rps": rps, "name": name}
    readers = [
        await children(WORKER, "reads", json.dumps({**base, "tasks": tasks, "duration": 4.0}))
        for _ in range(4)
    ]
    orders = await children(
        WORKER, "orders", json.dumps({**base, "count": count, "gap": gap, "delay": 1.0})
    )
    for child in [*readers, orders]:
        child.go()
    read_grants = [t for r in readers for t in (await r.result())["grants"]]
    ordered = await orders.result()
    grants = read_grants + ordered["grants"]
    _, window = window_for(rps)

    assert max_in_window(grants, 1.0) <= rps
    assert max_in_window(grants, window) <= rps
    assert len(ordered["grants"]) == count
    # Orders are not starved: at most one window (+ scheduling slack on a loaded machine).
    assert max(ordered["waits"]) <= window + 1.0, ordered["waits"]
    # No read was granted while an order waited (its wait, less one round trip's slack).
    for granted_at, waited in zip(ordered["grants"], ordered["waits"], strict=True):
        ahead = [t for t in read_grants if granted_at - waited + 0.05 < t < granted_at]
        assert ahead == [], (granted_at, waited, ahead)
    # The shared budget is used, not wasted: about rps per window over the whole run.
    span = max(grants) - min(grants)
    assert len(grants) >= 0.8 * rps * span / window
    assert len(read_grants) > 0


async def test_brokers_in_four_processes_never_hit_the_kis_limit(
    redis_server: Any, children: Any
) -> None:
    """4 KISBroker processes on one app key against a live-mode simulator enforcing 20/s:
    with the shared limiter (15/s), 60 get_price calls draw no EGW00201 and the token is issued
    once for all; with a limiter per process (the control), the same load draws EGW00201."""
    async with KISSimulator(
        seed=3, mode=Mode.LIVE, rate_limit=True, quote_interval=None, token_issue_interval=0.0
    ).serve(port=0) as sim:
        cfg = sim.config()
        config = {
            "app_key": cfg.app_key,
            "app_secret": cfg.app_secret.get_secret_value(),
            "account_id": sim.account_id,
            "mode": cfg.mode.value,
            "rest_url": cfg.rest_url,
            "ws_url": cfg.ws_url,
            # A budget of 15/s against the simulator's 20/s: the simulator shares the test
            # runner's (loaded, coverage-traced) event loop and stamps requests when it gets
            # to them, so arrivals can bunch; the headroom absorbs that scheduling jitter. The
            # control still sends 4 x 15/s and must be refused.
            "requests_per_second": 15,
        }

        async def run(own_limiter: bool) -> list[Any]:
            args = {
                "url": redis_server.url,
                "config": config,
                "own_limiter": own_limiter,
                "calls": 15,
                # The simulator stamps requests when its (shared, loaded) event loop gets to
                # them, not when they leave the worker: a wider margin absorbs that jitter.
                "margin": 0.5,
            }
            workers = [await children(WORKER, "broker", json.dumps(args)) for _ in range(4)]
            for worker in workers:
                worker.go()
            return [await w.result() for w in workers]

        shared = await run(own_limiter=False)
        assert [r["prices"] for r in shared] == [15] * 4
        assert sim.stats.rate_limit_rejections == 0
        # The four processes asked for the token at the same instant: one issuance.
        assert sim.stats.token_requests == 1
        assert len({r["token_sha"] for r in shared}) == 1
        control = await run(own_limiter=True)
        assert [r["prices"] for r in control] == [15] * 4
        assert sim.stats.rate_limit_rejections > 0


async def test_broker_takes_the_shared_pieces_and_refuses_others(redis_server: Any) -> None:
    """KISBroker passes a RedisRateLimiter and a RedisTokenStore to its REST client, and
    refuses objects that are neither a Limiter nor a TokenStore before any request."""
    from kis_async.gateway import RedisTokenStore

    config = KISConfig(app_key="A" * 36, app_secret="S" * 180, account_id="5012345601")
    limiter = RedisRateLimiter.for_config(redis_server.url, config)
    store = RedisTokenStore(redis_server.url, config)
    try:
        broker = KISBroker(config, rate_limiter=limiter, token_store=store)
        assert broker._rest.limiter is limiter
        assert broker._rest.auth.cache is store
        await broker.aclose()
    finally:
        await limiter.aclose()
        await store.aclose()
    with pytest.raises(TypeError, match="rate_limiter"):
        KISBroker(config, rate_limiter=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token_store"):
        KISBroker(config, token_store="redis://127.0.0.1:6379/0")  # type: ignore[arg-type]


async def test_unreachable_redis_means_not_sent(redis_server: Any) -> None:
    """With the limiter's Redis down, a keyed order raises BrokerTimeoutError(request_sent=
    False) without reaching KIS and its key stays free; once Redis is back it is sent once."""
    from kis_async import BrokerTimeoutError, OrderRequest, Side
    from kis_async.orders.journal import EntryState

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    async with KISSimulator(
        seed=5, mode=Mode.PAPER, rate_limit=False, quote_interval=None, token_issue_interval=0.0
    ).serve(port=0) as sim:
        config = sim.config()
        down = RedisRateLimiter(f"redis://127.0.0.1:{dead_port}/0", rps=20, name="down")
        order = OrderRequest("005930", Side.BUY, 1, price=70_000, idempotency_key="k-down")
        async with KISBroker(config, rate_limiter=down) as broker:
            with pytest.raises(BrokerTimeoutError) as caught:
                await broker.place_order(order)
            assert caught.value.request_sent is False
            assert "not sent" in str(caught.value)
            entry = await broker.journal.get("k-down")
            assert entry is not None
            assert entry.state is EntryState.NOT_BOOKED
            journal = broker.journal
        await down.aclose()
        assert sim.stats.orders_received == 0
        up = RedisRateLimiter(redis_server.url, rps=20, name=f"t:{uuid.uuid4().hex}")
        try:
            async with KISBroker(config, rate_limiter=up, journal=journal) as broker:
                order_id = await broker.place_order(order)
                assert await broker.place_order(order) == order_id
        finally:
            await up.aclose()
        assert sim.stats.orders_received == 1
