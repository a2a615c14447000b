"""End to end: the simulator, a real Gateway holding the one KIS session, and a worker
(``KISBroker(config, gateway=url)``) that streams quotes and receives the executions of the
orders it places, with the gateway's token and without a WebSocket of its own."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from typing import Any

from kis_async import ExecutionKind, KISBroker, Mode, OrderRequest, OrderType
from kis_async.gateway import Gateway
from kis_async.sim import KISSimulator
from kis_async.stream.options import StreamOptions
from kis_async.validation import normalize_order_id

WAIT = 20.0


async def test_a_gateway_fed_worker_streams_quotes_and_its_own_executions(
    redis_server: Any,
) -> None:
    """The worker's quotes come through the gateway; it places two market orders over REST
    (with the token the gateway issued) and its cursor stream and its consumer group each
    receive every filled share once; the simulator saw one WebSocket session and one token."""
    simulator = KISSimulator(
        seed=99,
        mode=Mode.PAPER,
        app_key="PS" + uuid.uuid4().hex + "e2e0",
        quote_interval=0.05,
        rate_limit=False,
    )
    options = StreamOptions(ack_timeout=3.0, connect_timeout=2.0, reconnect_base_delay=0.02)
    async with simulator.serve(port=0) as sim:
        config = sim.config(requests_per_second=None)
        gateway = Gateway(
            config, redis_server.url, gateway_id="gw-e2e", lease_ttl=1.5, stream_options=options
        )
        task = asyncio.create_task(gateway.run())
        try:
            await gateway.wait_active(WAIT)
            async with KISBroker(config, gateway=redis_server.url) as worker:
                async with worker.quotes(["005930", "000660"]) as quotes:
                    seen: set[str] = set()
                    async with asyncio.timeout(WAIT):
                        while seen != {"005930", "000660"}:
                            seen.add((await anext(quotes)).symbol)
                events = await worker.executions(replay=False).__aenter__()
                group = await worker.executions(group="e2e-recorder").__aenter__()
                wanted: Counter[str] = Counter()
                for qty in (3, 4):
                    request = OrderRequest("005930", "buy", qty, order_type=OrderType.MARKET)
                    wanted[normalize_order_id(await worker.place_order(request))] = qty
                got: dict[str, Counter[str]] = {"cursor": Counter(), "group": Counter()}
                for name, stream in (("cursor", events), ("group", group)):
                    async with asyncio.timeout(WAIT):
                        while got[name] != wanted:
                            event = await anext(stream)
                            if event.kind is ExecutionKind.FILLED:
                                got[name][normalize_order_id(event.broker_order_id)] += event.qty
                    with contextlib.suppress(TimeoutError):
                        extra = await asyncio.wait_for(anext(stream), 0.3)
                        assert extra.kind is not ExecutionKind.FILLED
                await events.aclose()
                await group.aclose()
                async with asyncio.timeout(WAIT):  # the heartbeat is written every second
                    while not worker.stream_status.connected:
                        await asyncio.sleep(0.05)
                assert worker.metrics()["tokens_issued"] == 0
        finally:
            gateway.stop()
            await asyncio.wait_for(task, WAIT)
        assert sim.stats.ws_sessions_opened == 1
        assert sim.stats.tokens_issued == 1
