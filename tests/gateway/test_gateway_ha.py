"""High availability: of two gateways one is active; when it crashes the standby takes over
after the lease expires, restores every registration and gap-fills the fills made while no
gateway was active, exactly once, with no new token; a gateway whose lease was taken cannot
publish; and ``kis-async gateway`` processes do the same across ``kill -9``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from kis_async import ExecutionKind, KISBroker, Mode, OrderRequest, OrderType, Side
from kis_async.gateway import server
from kis_async.gateway.keys import GatewayKeys, decode_execution
from kis_async.sim import KISSimulator
from kis_async.validation import normalize_order_id

LEASE_TTL = 1.5
QUOTES = "H0STCNT0"


async def fills_by_order(redis: Any, keys: Any) -> tuple[Counter[str], list[tuple[str, int, int]]]:
    """Filled quantity per order in ``{ns}:x`` and the ``(oid, qty, cum)`` entries."""
    total: Counter[str] = Counter()
    entries = []
    for _, fields in await redis.xrange(keys.executions):
        event, cum = decode_execution(fields)
        if event.kind is ExecutionKind.FILLED:
            oid = normalize_order_id(event.broker_order_id)
            total[oid] += event.qty
            entries.append((oid, event.qty, cum or 0))
    return total, entries


def booked(sim: Any) -> Counter[str]:
    return Counter(
        {normalize_order_id(o.order_id): o.filled_qty for o in sim.exchange.orders if o.filled_qty}
    )


def assert_exactly_once(entries: list[tuple[str, int, int]], exchange: Counter[str]) -> None:
    running: dict[str, int] = defaultdict(int)
    for oid, qty, cum in entries:
        running[oid] += qty
        assert cum == running[oid], (oid, qty, cum)
    assert Counter(running) == exchange


async def buy(trader: KISBroker, qty: int, symbol: str = "005930") -> str:
    return await trader.place_order(
        OrderRequest(symbol, Side.BUY, qty, order_type=OrderType.MARKET)
    )


def market_subscriptions(sim: Any) -> set[tuple[str, str]]:
    return {e for s in sim.hub.sessions for e in s.subscriptions if e[0] == QUOTES}


async def keep_registered(worker: Any, fields: list[tuple[str, str]]) -> None:
    """A live worker: REGISTER again (renewing its lease) every half second."""
    while True:
        assert (await worker.register(*fields))[0] == 1
        await asyncio.sleep(0.5)


async def test_standby_takes_over_a_crashed_gateway_restores_and_gap_fills_exactly_once(
    gw: Any,
) -> None:
    """Cancel the active gateway's task (no graceful release): the standby becomes active
    within the lease ttl and a few seconds, re-subscribes the worker's keys, publishes the
    fills made while nobody was active once each, and no token is issued for it."""
    a, a_task = gw.start("gw-a")
    b, b_task = gw.start("gw-b")
    await gw.wait(lambda: a.status()["ready"] or b.status()["ready"])
    await asyncio.sleep(LEASE_TTL / 2)  # the other has tried (and failed) to take the lease
    assert a.active != b.active
    active, standby, active_task = (a, b, a_task) if a.active else (b, a, b_task)
    assert standby.status()["state"] == "standby"
    assert (await gw.redis.get(gw.keys.lease)).decode() == active.gateway_id

    fields = [(QUOTES, "005930"), (QUOTES, "000660")]
    renewing = asyncio.get_running_loop().create_task(keep_registered(gw.worker("w"), fields))
    try:
        await gw.wait(lambda: market_subscriptions(gw.sim) == set(fields))

        async def caught_up() -> bool:
            total, _ = await fills_by_order(gw.redis, gw.keys)
            return total == booked(gw.sim) and bool(total)

        async with gw.trader() as trader:
            await buy(trader, 5)
            await gw.wait(caught_up)
            tokens = gw.sim.stats.tokens_issued
            assert tokens >= 1  # issued once, then shared through Redis

            active_task.cancel()  # a crash: the lease is left to expire
            with contextlib.suppress(asyncio.CancelledError):
                await active_task
            assert (await gw.redis.get(gw.keys.lease)).decode() == active.gateway_id
            crashed_at = time.monotonic()
            gap = [await buy(trader, qty, "000660") for qty in (2, 9)]
            assert not standby.active

            await standby.wait_active(LEASE_TTL + 15)
            took = time.monotonic() - crashed_at
            assert took < LEASE_TTL + 5, took
            await gw.wait(lambda: market_subscriptions(gw.sim) == set(fields))
            await gw.wait(caught_up)
            await buy(trader, 1)
            await gw.wait(caught_up)
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing

    total, entries = await fills_by_order(gw.redis, gw.keys)
    assert_exactly_once(entries, booked(gw.sim))
    assert {normalize_order_id(o) for o in gap} <= set(total)
    gap_sources = {
        decode_execution(f)[0].source
        for _, f in await gw.redis.xrange(gw.keys.executions)
        if normalize_order_id(decode_execution(f)[0].broker_order_id)
        in {normalize_order_id(o) for o in gap}
    }
    assert gap_sources == {"reconcile"}  # found over REST by the new active gateway
    assert gw.sim.stats.tokens_issued - tokens <= 1
    assert len([s for s in gw.sim.hub.sessions if s.subscriptions]) == 1
    events = [
        (f[b"event"].decode(), f[b"id"].decode()) for _, f in await gw.redis.xrange(gw.keys.events)
    ]
    assert ("active", active.gateway_id) in events
    assert ("active", standby.gateway_id) in events
    assert ("restored", standby.gateway_id) in events
    assert standby.status()["activations"] == 1


async def test_a_gateway_whose_lease_was_taken_cannot_publish_and_steps_down(
    gw: Any, monkeypatch: Any
) -> None:
    """The lease is taken from under an active gateway (as after a long pause): its next
    execution publish is refused by the fenced script, it steps down at once (long before
    its next renewal), the fill is not written by it, and the rightful active gateway
    publishes it exactly once later."""
    monkeypatch.setattr(server, "HEARTBEAT_INTERVAL", 60.0)  # only the publish may notice
    zombie, _ = gw.start("gw-zombie", lease_ttl=60.0)  # renewed every 12 s
    await zombie.wait_active(20)
    async with gw.trader() as trader:
        await buy(trader, 3)

        async def published(n: int) -> bool:
            return await gw.redis.xlen(gw.keys.executions) >= n

        await gw.wait(lambda: published(1))
        length = await gw.redis.xlen(gw.keys.executions)
        cursor = await gw.redis.get(gw.keys.cursor)
        await gw.redis.set(gw.keys.lease, "usurper", px=2500)
        taken_at = time.monotonic()
        late = await buy(trader, 4)
        await gw.wait(lambda: not zombie.active, limit=5)
        assert time.monotonic() - taken_at < 10  # before its first renewal could notice
        # Fenced either by the publish script or by a heartbeat the session's change
        # triggered first (both check the lease in Redis); either way it wrote nothing.
        reason = zombie.status()["last_step_down"] or ""
        assert "execution publish was refused" in reason or "held by another gateway" in reason, (
            reason
        )
        assert await gw.redis.xlen(gw.keys.executions) == length
        assert await gw.redis.get(gw.keys.cursor) == cursor
        assert not [s for s in gw.sim.hub.sessions if s.subscriptions]  # session closed

        # When the usurper's lease lapses, the zombie (now a standby) takes over again and
        # gap-fills the fill it could not publish: once.
        await zombie.wait_active(20)

        async def caught_up() -> bool:
            total, _ = await fills_by_order(gw.redis, gw.keys)
            return total == booked(gw.sim)

        await gw.wait(caught_up)
    total, entries = await fills_by_order(gw.redis, gw.keys)
    assert_exactly_once(entries, booked(gw.sim))
    assert total[normalize_order_id(late)] == 4


# -- processes ---------------------------------------------------------------------------------


class GatewayProcess:
    """``kis-async gateway --json`` as an OS process; reads its state lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def until(self, state: str, *, ready: bool = False, limit: float = 30.0) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(limit):
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, f"gateway exited with {await self.proc.wait()}"
                line = json.loads(raw)
                if line["state"] == state and (line["ready"] or not ready):
                    return


async def start_gateway(sim: Any, redis_url: str, name: str, cwd: Path) -> GatewayProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    env.update(line.split("=", 1) for line in sim.env_lines())
    env.update(
        KIS_REQUESTS_PER_SECOND="none",
        KIS_TOKEN_CACHE_DIR="none",
        PYTHONPATH=os.pathsep.join(sys.path),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kis_async.cli",
        "gateway",
        "--redis",
        redis_url,
        "--id",
        name,
        "--lease-ttl",
        str(LEASE_TTL),
        "--json",
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    return GatewayProcess(proc)


async def test_gateway_processes_survive_kill_9_of_the_active_one(
    redis_server: Any, tmp_path: Path
) -> None:
    """Two ``kis-async gateway`` processes: the first is active and serves a worker's
    registration; SIGKILL it; the second takes over, restores the registration on a new
    session, and on SIGTERM exits 0 releasing the lease."""
    seed = int.from_bytes(os.urandom(3), "big")  # an app key (namespace) of this test's own
    sim = KISSimulator(seed=seed, mode=Mode.PAPER, quote_interval=0.05, rate_limit=False)
    redis = aioredis.from_url(redis_server.url)
    procs: list[GatewayProcess] = []
    try:
        async with sim.serve(port=0) as running:
            keys = GatewayKeys.for_config(running.config())
            first = await start_gateway(running, redis_server.url, "p1", tmp_path)
            procs.append(first)
            await first.until("active", ready=True)
            second = await start_gateway(running, redis_server.url, "p2", tmp_path)
            procs.append(second)
            await second.until("standby")

            from kis_async.gateway.keys import MARKET_REGISTRATION_CAP, REGISTER, reg_field

            register = redis.register_script(REGISTER)
            ok, _ = await register(
                keys=[keys.workers, keys.worker("pw")],
                args=[keys.worker_prefix, "pw", 60_000, MARKET_REGISTRATION_CAP, keys.changed,
                      reg_field(QUOTES, "005930")],
            )  # fmt: skip
            assert ok == 1
            async with asyncio.timeout(20):
                while market_subscriptions(running) != {(QUOTES, "005930")}:
                    await asyncio.sleep(0.05)

            first.proc.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(first.proc.wait(), 20) == -signal.SIGKILL
            await second.until("active", ready=True, limit=LEASE_TTL + 20)
            assert (await redis.get(keys.lease)) == b"p2"
            async with asyncio.timeout(20):
                while market_subscriptions(running) != {(QUOTES, "005930")}:
                    await asyncio.sleep(0.05)

            second.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.proc.wait(), 20) == 0
            assert await redis.get(keys.lease) is None
    finally:
        for gateway in procs:
            if gateway.proc.returncode is None:
                gateway.proc.kill()
                await gateway.proc.wait()
        await redis.aclose()
