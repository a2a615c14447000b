"""Fixtures for the multi-process tests: worker scripts run as OS processes that print
``"ready"``, wait for ``go`` on stdin (so several start at the same instant), then print one
JSON result line. Any child still running at the end of a test is killed and reaped.

The gateway server's tests get a simulator, a test-own key prefix, a ``gateways`` factory
(stopped afterwards) and fake workers that speak only the Redis key protocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

#: Generous bound for each wait on a child process (the machine may be loaded).
STEP = 90.0


class Child:
    """One worker OS process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self) -> Any:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), STEP)
        assert raw, f"worker exited early with {await self.proc.wait()}"
        return json.loads(raw)

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")

    async def result(self) -> Any:
        value = await self.line()
        assert await asyncio.wait_for(self.proc.wait(), STEP) == 0
        return value

    async def killed(self) -> None:
        """Wait for the worker to die by SIGKILL (its own, mid-order)."""
        assert await asyncio.wait_for(self.proc.wait(), STEP) == -signal.SIGKILL


@pytest.fixture
async def children() -> AsyncIterator[Any]:
    """``await children(script, *args)`` starts a worker and waits for its ``ready``."""
    started: list[Child] = []

    async def start(script: Path, *args: str) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        child = Child(proc)
        started.append(child)
        assert await child.line() == "ready"
        return child

    yield start
    for child in started:
        if child.proc.returncode is None:
            child.proc.kill()
        await child.proc.wait()


# -- the gateway server's tests (test_gateway_*.py) -------------------------------------------

#: A short lease so takeovers are quick; every wait on the gateway is bounded by WAIT.
GW_LEASE_TTL = 1.5
GW_WAIT = 20.0


class FakeWorker:
    """A worker written with nothing but the key names, REGISTER and plain Redis calls."""

    def __init__(self, redis: Any, keys: Any, worker_id: str, lease_ms: int = 10_000) -> None:
        from kis_async.gateway.keys import REGISTER

        self.redis = redis
        self.keys = keys
        self.id = worker_id
        self.lease_ms = lease_ms
        self._script = redis.register_script(REGISTER)

    async def register(self, *fields: tuple[str, str]) -> tuple[int, int]:
        from kis_async.gateway.keys import MARKET_REGISTRATION_CAP, reg_field

        ok, count = await self._script(
            keys=[self.keys.workers, self.keys.worker(self.id)],
            args=[
                self.keys.worker_prefix,
                self.id,
                self.lease_ms,
                MARKET_REGISTRATION_CAP,
                self.keys.changed,
                *(reg_field(tr, symbol) for tr, symbol in fields),
            ],
        )
        return int(ok), int(count)

    async def unregister(self, *fields: tuple[str, str]) -> None:
        from kis_async.gateway.keys import reg_field

        await self.redis.hdel(self.keys.worker(self.id), *(reg_field(*f) for f in fields))
        await self.redis.publish(self.keys.changed, self.id)


@pytest.fixture
async def gw_redis(redis_server: Any) -> AsyncIterator[Any]:
    """A client of the session's Redis."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def gw_prefix() -> str:
    """A key prefix of this test's own (the session's Redis is shared)."""
    import uuid

    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def gw_sim() -> AsyncIterator[Any]:
    """A paper simulator ticking every 50 ms, no REST rate limit."""
    from kis_async import Mode
    from kis_async.sim import KISSimulator

    sim = KISSimulator(seed=77, mode=Mode.PAPER, quote_interval=0.05, rate_limit=False)
    async with sim.serve(port=0) as running:
        yield running


@pytest.fixture
async def gateways(gw_sim: Any, redis_server: Any, gw_prefix: str) -> AsyncIterator[Any]:
    """``gateways(name, **kw)`` starts a Gateway on the simulator (its task runs until the
    test ends); returns ``(gateway, task)``. Every one still running is stopped afterwards,
    and must end by that graceful stop."""
    from kis_async.gateway import Gateway
    from kis_async.stream.options import StreamOptions

    started: list[tuple[Any, asyncio.Task[None]]] = []
    options = StreamOptions(
        ack_timeout=3.0, connect_timeout=2.0, reconnect_base_delay=0.02, reconnect_max_delay=0.2
    )

    def start(name: str, **kw: Any) -> tuple[Any, asyncio.Task[None]]:
        config = kw.pop("config", None) or gw_sim.config(requests_per_second=None)
        kw.setdefault("lease_ttl", GW_LEASE_TTL)
        kw.setdefault("stream_options", options)
        gateway = Gateway(
            config, redis_server.url, gateway_id=name, namespace_prefix=gw_prefix, **kw
        )
        task = asyncio.get_running_loop().create_task(gateway.run(), name=f"test-gw-{name}")
        started.append((gateway, task))
        return gateway, task

    yield start
    for gateway, _ in started:
        gateway.stop()
    stuck = []
    for gateway, task in started:
        if not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), 15)
            except TimeoutError:
                stuck.append(gateway.gateway_id)
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert not stuck, f"stop() did not end these gateways: {stuck}"


@pytest.fixture
def gw_wait() -> Any:
    """``await gw_wait(predicate, limit=GW_WAIT)``: poll a (possibly async) predicate."""

    async def wait(predicate: Any, limit: float = GW_WAIT) -> None:
        async with asyncio.timeout(limit):
            while True:
                value = predicate()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return
                await asyncio.sleep(0.05)

    return wait


@pytest.fixture
def gw(gateways: Any, gw_sim: Any, gw_redis: Any, gw_prefix: str, gw_wait: Any) -> Any:
    """Everything a gateway test uses: ``gw.start(name, **kw)``, ``gw.sim``, ``gw.redis``,
    ``gw.keys`` (this test's namespace), ``gw.worker(id, lease_ms=...)`` (a
    :class:`FakeWorker`), ``gw.trader()`` (a REST-only broker sharing the token),
    ``await gw.wait(predicate, limit)``."""
    from types import SimpleNamespace

    from kis_async.gateway.keys import GatewayKeys

    keys = GatewayKeys.for_config(gw_sim.config(), prefix=gw_prefix)

    def worker(worker_id: str, lease_ms: int = 10_000, *, config: Any = None) -> FakeWorker:
        """A fake worker of this namespace (or of ``config``'s, with this test's prefix)."""
        space = keys if config is None else GatewayKeys.for_config(config, prefix=gw_prefix)
        return FakeWorker(gw_redis, space, worker_id, lease_ms)

    def trader() -> Any:
        """A plain KISBroker (REST only) sharing the gateway's token through Redis."""
        from kis_async import KISBroker
        from kis_async.gateway import RedisTokenStore

        config = gw_sim.config(requests_per_second=None)
        return KISBroker(config, token_store=RedisTokenStore(gw_redis, config, prefix=gw_prefix))

    return SimpleNamespace(
        start=gateways,
        sim=gw_sim,
        redis=gw_redis,
        keys=keys,
        prefix=gw_prefix,
        worker=worker,
        trader=trader,
        wait=gw_wait,
    )
