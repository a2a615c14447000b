"""Gateway workers: stream_status from the gateway's heartbeat and events, typed errors for
bad input before any network call, and no secret in reprs, logs or Redis key names."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from kis_async import KISBroker, KISConfig, Mode
from kis_async.errors import BrokerConnectionError, InvalidOrderError
from kis_async.gateway import Gateway, GatewayBroker
from kis_async.gateway.keys import GatewayKeys
from kis_async.sim import KISSimulator

STEP = 10.0


def make_config() -> KISConfig:
    return KISConfig(
        app_key="PS" + uuid.uuid4().hex + "abcd",
        app_secret="s" * 180,
        account_id="5012345601",
        hts_id="tester01",
        mode=Mode.PAPER,
        token_cache_dir=None,
    )


@pytest.fixture
async def client(redis_server: Any) -> AsyncIterator[Any]:
    redis = aioredis.from_url(redis_server.url)
    yield redis
    await redis.aclose()


async def until(predicate: Any, limit: float = STEP) -> None:
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.02)


class GatewayStatus:
    """Writes the heartbeat and the events as the active gateway does."""

    def __init__(self, client: Any, keys: GatewayKeys) -> None:
        self.client = client
        self.keys = keys

    async def beat(self, gateway_id: str, *, connected: bool) -> None:
        body = {
            "id": gateway_id,
            "connected": connected,
            "registrations": 1,
            "reconnects": 0,
            "active_since": time.time(),
            "time": time.time(),
        }
        await self.client.set(self.keys.heartbeat, json.dumps(body), px=3000)

    async def event(self, name: str, gateway_id: str) -> None:
        fields = {"event": name, "id": gateway_id, "time": str(time.time())}
        await self.client.xadd(self.keys.events, fields, maxlen=1000, approximate=True)


async def test_stream_status_follows_the_gateway(client: Any) -> None:
    """connected follows a fresh heartbeat; the gateway's first connection after the worker
    started is not a reconnect, a later one and a standby's takeover are; a gateway that
    gave up reports failed until a gateway connects again."""
    config = make_config()
    gateway = GatewayStatus(client, GatewayKeys.for_config(config))
    await gateway.event("gave_up", "old")  # history from before this worker: ignored
    async with KISBroker(config, gateway=client) as broker:
        await broker.connect_websocket()
        assert not broker.stream_status.connected
        assert not broker.stream_status.failed
        await gateway.event("active", "gw-a")
        await gateway.event("connected", "gw-a")
        await gateway.beat("gw-a", connected=True)
        await until(lambda: broker.stream_status.connected)
        assert broker.stream_status.reconnects == 0
        async with broker.executions() as _events:
            await until(lambda: broker._streams.executions_active)
            await gateway.event("connected", "gw-a")
            await gateway.event("restored", "gw-a")
            await until(lambda: broker.stream_status.reconnects == 1)
            await gateway.event("gave_up", "gw-a")
            await gateway.beat("gw-a", connected=False)
            await until(lambda: broker.stream_status.failed)
            assert not broker.stream_status.connected
            assert not broker._streams.executions_active
            await client.delete(gateway.keys.heartbeat)  # gw-a is gone
            await gateway.event("active", "gw-b")
            await gateway.event("connected", "gw-b")
            await gateway.beat("gw-b", connected=True)
            await until(lambda: broker.stream_status.connected)
        status = broker.stream_status
        assert status.reconnects == 2
        assert not status.failed
        assert broker.metrics()["stream"]["connected"]


def test_bad_gateway_arguments_fail_at_construction() -> None:
    """Not a Redis URL: ValueError (without repeating the URL, which may hold a password);
    a wrong type: TypeError; both before anything connects."""
    config = make_config()
    for url in ("not a url", "http://127.0.0.1:6379/0", "redis://", "redis://:pw@host:notaport"):
        with pytest.raises(ValueError, match="Redis URL") as caught:
            KISBroker(config, gateway=url)
        assert "pw@" not in str(caught.value)
    for wrong in (42, b"redis://127.0.0.1:6379/0", object(), 1.5):
        with pytest.raises(TypeError, match="gateway"):
            KISBroker(config, gateway=wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gateway"):
        GatewayBroker(config, object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        GatewayBroker(config, "redis://127.0.0.1:1/0", gateway="redis://127.0.0.1:1/0")
    # A valid URL of a server that is not there: constructing does not connect.
    broker = KISBroker(config, gateway="redis://:hunter2-pass@127.0.0.1:1/0")
    assert "hunter2" not in repr(broker)
    assert "hunter2" not in repr(broker._streams)


async def test_bad_symbols_fail_before_redis_and_an_unreachable_redis_is_typed() -> None:
    """A bad symbol is refused before any Redis call; a stream on an unreachable Redis raises
    BrokerConnectionError (no redis-py exception escapes, no password in the message)."""
    config = make_config()
    async with KISBroker(config, gateway="redis://:hunter2-pass@127.0.0.1:1/0") as broker:
        with pytest.raises(InvalidOrderError):
            broker.quotes(["12345"])
        with pytest.raises(ValueError, match="market"):
            broker.orderbooks(["005930"], market="NOWHERE")
        with pytest.raises(BrokerConnectionError) as caught:
            async with broker.quotes(["005930"]):
                pass
        assert "hunter2" not in str(caught.value)
        with pytest.raises(BrokerConnectionError):
            await broker.connect_websocket()


async def test_no_secret_in_logs_reprs_or_redis_keys(
    client: Any, redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker with a password-protected Redis user that fetches a token, streams quotes and
    executions and reports its status logs and shows no app secret, token, account number or
    Redis password; no Redis key name carries the app key or the account."""
    password = "hunter2-" + uuid.uuid4().hex
    acl = ("ACL", "SETUSER", "worker", "on", f">{password}", "~*", "&*", "+@all")
    await client.execute_command(*acl)
    url = f"redis://worker:{password}@127.0.0.1:{redis_server.port}/0"
    caplog.set_level(logging.DEBUG)
    simulator = KISSimulator(seed=5, mode=Mode.PAPER, app_key="PS" + uuid.uuid4().hex + "qrst")
    async with simulator.serve(port=0) as sim:
        config = sim.config(requests_per_second=None)
        keys = GatewayKeys.for_config(config)
        async with GatewayBroker(config, url) as broker:
            token = (await broker.authenticate()).value.get_secret_value()
            await broker.get_price("005930")
            async with broker.quotes(["005930"]), broker.executions():
                await broker.connect_websocket()
                shown = [
                    repr(broker),
                    repr(broker._streams),
                    str(broker.stream_status),
                    json.dumps(broker.metrics(), default=str),
                ]
                redis_keys = [k.decode() for k in await client.keys("*")]
    assert shown[0].startswith("GatewayBroker(mode='paper', account='******")
    secrets = [
        config.app_secret.get_secret_value(),
        token,
        password,
        config.account_id,
        config.account_id[:8],
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets:
        for place in [*shown, logged]:
            assert secret not in place
    for name in redis_keys:
        assert config.app_key not in name
        assert config.account_id not in name
        assert config.account_id[:8] not in name
    assert any(name.startswith(keys.ns) for name in redis_keys)


async def test_a_worker_following_a_ready_gateway_sees_it_connected_at_once(
    redis_server: Any,
) -> None:
    """When wait_active() returns, the heartbeat already says connected: a worker that starts
    following then reports connected on its first look, not a second later (the beat before
    the session opened is not what it reads)."""
    simulator = KISSimulator(
        seed=7, mode=Mode.PAPER, app_key="PS" + uuid.uuid4().hex + "beat", rate_limit=False
    )
    async with simulator.serve(port=0) as sim:
        config = sim.config(requests_per_second=None)
        gateway = Gateway(config, redis_server.url, gateway_id="gw-beat", lease_ttl=1.5)
        task = asyncio.create_task(gateway.run())
        try:
            await gateway.wait_active(STEP)
            async with KISBroker(config, gateway=redis_server.url) as worker:
                await worker.connect_websocket()  # one look at the heartbeat
                assert worker.stream_status.connected
        finally:
            gateway.stop()
            await asyncio.wait_for(task, STEP)
