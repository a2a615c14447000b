"""The contract suite runs every test against MockBroker, against KISBroker on the
in-process simulator, and against a KISBroker fed by a real Gateway (on the same simulator,
over a throwaway Redis of its own): anything a strategy test can observe must agree.

A test asks the ``backend`` fixture for a broker (with the stream options it needs) and
drives the market through it: ``prints`` makes trades on a symbol, ``fail_streams`` ends the
streams the way each broker's streams end when the connection is given up, ``served`` returns
once the market streams just opened are served at the source.

Where the gateway-fed worker differs, and why that is right:

* **Its connection is Redis.** Its streams end with ``BrokerConnectionError`` (after what was
  queued) when Redis does not answer ``max_reconnect_attempts`` reads in a row, so
  ``fail_streams`` shuts the Redis server down. A KIS session that gives up does *not* end a
  worker's streams: the gateway announces ``gave_up`` (``stream_status.failed``) and opens
  the session again, and the streams carry on once it is back.

``served`` checks, without waiting, that the source holds the streams just opened: a direct
socket returns from ``async with quotes(...)`` after KIS's acks, and a worker after the active
gateway has confirmed the keys at KIS (``{ns}:served``), so trades right after it are delivered
on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kis_async import BrokerPort, KISBroker, MockBroker, Mode
from kis_async.gateway import Gateway
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
    until_served: Callable[[], Awaitable[None]] | None = None

    async def served(self) -> None:
        """Return once the market streams just opened are served at the source: at once for
        MockBroker and a direct KISBroker (``async with`` returned after the subscription was
        acknowledged, which this checks), after the gateway's KIS session subscribed the
        worker's registrations for a gateway-fed worker."""
        if self.until_served is not None:
            await self.until_served()

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


def _simulator() -> KISSimulator:
    return KISSimulator(
        seed=99,
        mode=Mode.PAPER,
        quote_interval=None,
        pingpong_interval=0.5,
        rate_limit=False,
        starting_holdings={SYMBOL: 1_000},
    )


@asynccontextmanager
async def _sim(options: StreamOptions) -> AsyncIterator[Backend]:
    async with _simulator().serve(port=0) as running:
        running.exchange.set_price(SYMBOL, BASE)
        broker = KISBroker(running.config(requests_per_second=None), stream_options=options)

        async def prints(prices: list[int]) -> None:
            for price in prices:
                running.exchange.set_price(SYMBOL, price)

        async def fail() -> None:
            # The session gives up: the server drops it and refuses every reconnect.
            running.faults.refuse_connections(60.0)
            running.faults.drop_sessions()

        async def served() -> None:
            # No waiting: the server holds every registration when ``async with`` returns.
            wanted = broker.stream_status.registrations
            assert wanted >= 1
            assert running.stats.active_subscriptions == wanted

        async with broker:
            yield Backend("sim", broker, prints, fail, sim=running, until_served=served)


def _servers() -> Any:
    """tests/_servers.py, loaded by path under the name tests/conftest.py gives it."""
    name = "kis_async_test_servers"
    module = sys.modules.get(name)
    if module is None:
        path = Path(__file__).parent.parent / "_servers.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


#: The gateway's own session: quick reconnects, never given up within a test.
GATEWAY_SESSION = StreamOptions(ack_timeout=3.0, connect_timeout=2.0, reconnect_base_delay=0.02)
GATEWAY_LEASE_TTL = 1.5
READY = 20.0


@asynccontextmanager
async def _gateway(options: StreamOptions) -> AsyncIterator[Backend]:
    # A Redis of its own per test: a fresh namespace (nothing replayed from another test) and
    # a server this test may stop.
    servers = _servers()
    try:
        redis_cm = servers.redis_server()
        redis = await asyncio.to_thread(redis_cm.__enter__)
    except servers.ServerUnavailable as exc:
        pytest.fail(f"Redis is needed for the gateway backend: {exc}", pytrace=False)
    try:
        async with _simulator().serve(port=0) as running:
            running.exchange.set_price(SYMBOL, BASE)
            config = running.config(requests_per_second=None)
            gateway = Gateway(
                config,
                redis.url,
                gateway_id="gw-contract-" + uuid.uuid4().hex[:8],
                lease_ttl=GATEWAY_LEASE_TTL,
                stream_options=GATEWAY_SESSION,
            )
            task = asyncio.create_task(gateway.run(), name="contract-gateway")
            try:
                await gateway.wait_active(READY)
                broker = KISBroker(config, gateway=redis.url, stream_options=options)

                async def prints(prices: list[int]) -> None:
                    for price in prices:
                        running.exchange.set_price(SYMBOL, price)

                async def fail() -> None:
                    # A worker's connection is its Redis: when Redis is gone for
                    # max_reconnect_attempts reads, the worker's streams end. (A KIS session
                    # that gives up does not end them: the gateway opens it again.)
                    client = aioredis.from_url(redis.url)
                    with contextlib.suppress(RedisError):
                        await client.execute_command("SHUTDOWN", "NOSAVE")
                    with contextlib.suppress(RedisError):
                        await client.aclose()

                async def served() -> None:
                    # No waiting, as with a direct socket: ``async with`` returns once the
                    # gateway holds the worker's keys at KIS (plus its own notice key).
                    wanted = broker.stream_status.registrations
                    assert wanted >= 1
                    assert running.stats.active_subscriptions == 1 + wanted

                async with broker:
                    await broker.connect_websocket()  # follow the gateway's status now
                    async with asyncio.timeout(READY):  # its heartbeat says connected
                        while not broker.stream_status.connected:
                            await asyncio.sleep(0.02)
                    yield Backend(
                        "gateway",
                        broker,
                        prints,
                        fail,
                        sim=running,
                        extra={"gateway": gateway},
                        until_served=served,
                    )
            finally:
                gateway.stop()
                await asyncio.wait_for(task, READY)
    finally:
        await asyncio.to_thread(redis_cm.__exit__, None, None, None)


_BACKENDS = {"mock": _mock, "sim": _sim, "gateway": _gateway}


@pytest.fixture(params=list(_BACKENDS))
def backend(request: pytest.FixtureRequest) -> Factory:
    """``async with backend(**stream_options) as b:`` a broker of each kind in turn."""

    def make(**overrides: Any) -> AbstractAsyncContextManager[Backend]:
        values = {**QUICK.__dict__, **overrides}
        options = StreamOptions(**values)
        return _BACKENDS[request.param](options)

    return make
