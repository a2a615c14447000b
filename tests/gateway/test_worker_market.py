"""Gateway workers' quotes and order books on a real Redis: registration, delivery from the
moment of registering, timeouts around ``anext``, conflation, callbacks, unregistering, the
cap shared by every worker, and a worker process killed without closing.

The gateway side is played by a small publisher that writes entries exactly as the gateway
does (``keys.encode_market`` of records decoded from simulator frames)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from kis_async import KISBroker, KISConfig, Mode, OrderBook, Quote
from kis_async.errors import SubscriptionError
from kis_async.gateway import GatewayBroker, GatewayStreams
from kis_async.gateway.keys import GatewayKeys, encode_market, field_of, reg_field
from kis_async.sim import KISSimulator
from kis_async.sim.frames import book_record, trade_record
from kis_async.stream.options import StreamOptions
from kis_async.stream.protocol import DECODERS, DataFrame, record_text

WORKER = Path(__file__).with_name("_gw_worker.py")
STEP = 10.0


def make_config(**overrides: Any) -> KISConfig:
    values: dict[str, Any] = {
        "app_key": "PS" + uuid.uuid4().hex + "abcd",
        "app_secret": "s" * 180,
        "account_id": "5012345601",
        "hts_id": "tester01",
        "mode": Mode.PAPER,
        "token_cache_dir": None,
    }
    values.update(overrides)
    return KISConfig(**values)


class Records:
    """Trade and book records of a simulator exchange, decoded as from a socket."""

    def __init__(self) -> None:
        self._exchange = KISSimulator(seed=7).exchange

    def quotes(self, symbol: str, n: int) -> list[Quote]:
        out = []
        for tick in self._exchange.step(n, symbols=[symbol]):
            text = "^".join(trade_record(tick, business_date="20261201"))
            out.append(DECODERS["H0STCNT0"].decode(DataFrame(False, "H0STCNT0", 1, text), None)[0])
        return out

    def books(self, symbol: str, n: int) -> list[OrderBook]:
        out = []
        for tick in self._exchange.step(n, symbols=[symbol]):
            text = "^".join(book_record(tick))
            out.append(DECODERS["H0STASP0"].decode(DataFrame(False, "H0STASP0", 1, text), None)[0])
        return out


async def publish(client: Any, keys: GatewayKeys, tr_id: str, values: Iterable[Any]) -> None:
    pipe = client.pipeline(transaction=False)
    for value in values:
        entry = encode_market(tr_id, value)
        assert entry is not None
        pipe.xadd(keys.market(tr_id, value.symbol), entry, maxlen=1000, approximate=True)
    await pipe.execute()


class FakeGateway:
    """Publishes ``burst`` quotes of every key the moment it sees it registered (on the
    ``changed`` hint), as the gateway starts publishing a new key's records at once."""

    def __init__(self, client: Any, keys: GatewayKeys, burst: int) -> None:
        self.client = client
        self.keys = keys
        self.burst = burst
        self.records = Records()
        self.published: dict[str, list[Quote]] = {}
        self.seen: set[str] = set()
        self.hints = 0
        self.stopping = False

    async def union(self) -> set[str]:
        fields: set[str] = set()
        for worker in await self.client.zrange(self.keys.workers, 0, -1):
            for field in await self.client.hkeys(self.keys.worker(worker.decode())):
                fields.add(field.decode())
        return fields

    async def run(self, ready: asyncio.Event) -> None:
        pubsub = self.client.pubsub()
        await pubsub.subscribe(self.keys.changed)
        ready.set()
        try:
            # Stopped by a flag: redis-py's get_message(timeout=...) may swallow a cancel.
            while not self.stopping:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
                if message is None:
                    continue
                self.hints += 1
                for field in await self.union() - self.seen:
                    self.seen.add(field)
                    tr_id, symbol = field_of(field)
                    values = self.records.quotes(symbol, self.burst)
                    self.published.setdefault(symbol, []).extend(values)
                    await publish(self.client, self.keys, tr_id, values)
        finally:
            await pubsub.aclose()


@pytest.fixture
async def client(redis_server: Any) -> AsyncIterator[Any]:
    redis = aioredis.from_url(redis_server.url)
    yield redis
    await redis.aclose()


@contextlib.asynccontextmanager
async def fake_gateway(client: Any, keys: GatewayKeys, burst: int) -> AsyncIterator[FakeGateway]:
    gateway = FakeGateway(client, keys, burst)
    ready = asyncio.Event()
    task = asyncio.create_task(gateway.run(ready))
    await asyncio.wait_for(ready.wait(), STEP)
    try:
        yield gateway
    finally:
        gateway.stopping = True
        await asyncio.wait_for(task, STEP)


async def test_records_published_right_after_registering_are_all_delivered(client: Any) -> None:
    """The publisher writes 20 quotes per symbol the instant it sees the registration (before
    the worker's first XREAD); every one arrives, in order, equal to what was published, and
    nothing published before the registration does."""
    config = make_config()
    keys = GatewayKeys.for_config(config)
    records = Records()
    await publish(client, keys, "H0STCNT0", records.quotes("005930", 3))  # stale: not wanted
    async with (
        fake_gateway(client, keys, burst=20) as gateway,
        KISBroker(config, gateway=client) as broker,
    ):
        got: list[Quote] = []
        stream = broker.quotes(["005930", "000660"])
        async with asyncio.timeout(STEP):
            async for quote in stream:
                got.append(quote)
                if len(got) == 40:
                    break
        assert broker.stream_status.registrations == 2
        await stream.aclose()
        assert broker.stream_status.registrations == 0  # left: unregistered
    for symbol in ("005930", "000660"):
        mine = [record_text(q) for q in got if q.symbol == symbol]
        assert mine == [record_text(q) for q in gateway.published[symbol]]
    assert broker.metrics()["stream"]["frames_by_tr"] == {"H0STCNT0": 40}


async def test_wait_for_anext_in_a_loop_loses_nothing(client: Any) -> None:
    """``asyncio.wait_for(anext(stream), t)`` timing out again and again while records trickle
    in: every record is delivered once, in order."""
    config = make_config()
    keys = GatewayKeys.for_config(config)
    records = Records()
    sent = records.quotes("005930", 30)
    got: list[Quote] = []
    timeouts = 0
    async with GatewayBroker(config, client) as broker, broker.quotes(["005930"]) as stream:

        async def trickle() -> None:
            for i in range(0, len(sent), 3):
                await publish(client, keys, "H0STCNT0", sent[i : i + 3])
                await asyncio.sleep(0.03)

        feeder = asyncio.create_task(trickle())
        async with asyncio.timeout(STEP):
            while len(got) < len(sent):
                try:
                    got.append(await asyncio.wait_for(anext(stream), 0.01))
                except TimeoutError:
                    timeouts += 1
        await feeder
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(stream), 0.2)
    assert [record_text(q) for q in got] == [record_text(q) for q in sent]
    assert timeouts > 0


async def test_a_slow_reader_gets_the_newest_per_symbol(client: Any) -> None:
    """A consumer that does not read while 300 records per symbol arrive finds at most its
    queue size waiting, the newest record of each symbol last; the drops are counted."""
    config = make_config()
    keys = GatewayKeys.for_config(config)
    records = Records()
    options = StreamOptions(quote_queue_size=8)
    broker = KISBroker(config, gateway=client, stream_options=options)
    async with broker, broker.orderbooks(["005930", "000660"]) as stream:
        books = {s: records.books(s, 300) for s in ("005930", "000660")}
        for values in books.values():
            await publish(client, keys, "H0STASP0", values)

        def all_read() -> bool:
            return broker.stream_status.frames_received >= 600

        async with asyncio.timeout(STEP):
            while not all_read():
                await asyncio.sleep(0.01)
        depth = broker.metrics()["stream"]["queue_depth"]
        waiting = [await anext(stream) for _ in range(depth)]
        assert len(waiting) <= 8
        newest = {b.symbol: record_text(b) for b in waiting}
        assert newest == {s: record_text(v[-1]) for s, v in books.items()}
        assert stream.dropped == 600 - len(waiting)
        assert broker.stream_status.orderbooks_dropped == stream.dropped


async def test_callbacks_and_unregistering(client: Any) -> None:
    """subscribe_quotes calls back for every record; a key held by a stream and a callback
    stays registered until both leave; the last one out deletes the hash field and
    announces it on the ``changed`` channel."""
    config = make_config()
    keys = GatewayKeys.for_config(config)
    records = Records()
    pubsub = client.pubsub()
    await pubsub.subscribe(keys.changed)
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    seen: list[Quote] = []
    done = asyncio.Event()

    async def on_quote(quote: Quote) -> None:
        seen.append(quote)
        if len(seen) == 10:
            done.set()

    try:
        async with KISBroker(config, gateway=client) as broker:
            streams = broker._streams
            assert isinstance(streams, GatewayStreams)
            worker_hash = keys.worker(streams.worker_id)
            sub = await broker.subscribe_quotes(["005930"], on_quote)
            stream = broker.quotes(["005930", "000660"])
            await stream.__aenter__()
            assert set(await client.hkeys(worker_hash)) == {b"H0STCNT0|005930", b"H0STCNT0|000660"}
            sent = records.quotes("005930", 10)
            await publish(client, keys, "H0STCNT0", sent)
            await asyncio.wait_for(done.wait(), STEP)
            assert [record_text(q) for q in seen] == [record_text(q) for q in sent]
            await drain(pubsub)
            await stream.aclose()
            assert await client.hkeys(worker_hash) == [b"H0STCNT0|005930"]
            assert await next_hint(pubsub) == streams.worker_id
            await sub.aclose()
            assert not await client.exists(worker_hash)
            assert await next_hint(pubsub) == streams.worker_id
            assert broker.stream_status.registrations == 0
        assert await client.zscore(keys.workers, streams.worker_id) is None
    finally:
        await pubsub.aclose()


async def drain(pubsub: Any) -> None:
    while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05) is not None:
        pass


async def next_hint(pubsub: Any) -> str:
    async with asyncio.timeout(STEP):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                data: bytes = message["data"]
                return data.decode()


def symbols(start: int, n: int) -> list[str]:
    return [f"{i:06d}" for i in range(start, start + n)]


async def test_the_cap_is_shared_by_every_worker(client: Any) -> None:
    """Two workers hold 40 keys between them; a 41st (even alongside keys already held) is
    refused with SubscriptionError before anything is registered; a key another worker
    already holds costs nothing; once a worker leaves, the key fits."""
    config = make_config()
    keys = GatewayKeys.for_config(config)
    async with KISBroker(config, gateway=client) as one, KISBroker(config, gateway=client) as two:
        a = one.quotes(symbols(100, 30))
        await a.__aenter__()
        b = two.orderbooks(symbols(200, 10))
        await b.__aenter__()
        shared = two.quotes(symbols(100, 5))  # held by worker one already: no new key
        await shared.__aenter__()
        streams = two._streams
        assert isinstance(streams, GatewayStreams)
        before = set(await client.hkeys(keys.worker(streams.worker_id)))
        assert len(before) == 15
        with pytest.raises(SubscriptionError, match="40") as caught:
            async with two.quotes([*symbols(100, 2), "999999"]):
                pass
        assert caught.value.tr_id == "H0STCNT0"
        assert set(await client.hkeys(keys.worker(streams.worker_id))) == before
        assert reg_field("H0STCNT0", "999999").encode() not in before
        await a.aclose()
        async with two.quotes(["999999"]):
            assert reg_field("H0STCNT0", "999999").encode() in set(
                await client.hkeys(keys.worker(streams.worker_id))
            )


async def test_a_worker_killed_without_closing_frees_its_keys_after_its_lease(
    client: Any, redis_server: Any, children: Any
) -> None:
    """A worker process holding all 40 keys is killed with SIGKILL: at once a new key is
    refused; after the dead worker's lease (1 s) it fits, and the dead worker's hash and lease
    entry are gone."""
    config = make_config()
    keys = GatewayKeys.for_config(config)
    child = await children(WORKER, "hold", redis_server.url, config.app_key, "40", "1.0")
    dead = await child.line()
    assert await client.hlen(keys.worker(dead)) == 40
    child.proc.kill()
    await child.proc.wait()
    streams = GatewayStreams(config, client)
    try:
        with pytest.raises(SubscriptionError):
            async with streams.quotes(["999999"]):
                pass
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(STEP):
            while True:
                try:
                    async with streams.quotes(["999999"]):
                        break
                except SubscriptionError:
                    await asyncio.sleep(0.1)
        assert not await client.exists(keys.worker(dead))
        assert await client.zscore(keys.workers, dead) is None
        assert loop.time() - started < 5.0
    finally:
        await streams.aclose()


async def test_a_worker_whose_lease_lapsed_registers_again(client: Any) -> None:
    """A worker paused past its lease is dropped by the next registration of another worker
    (its hash deleted); its renewal notices, registers its keys again and announces it, and
    records published afterwards still reach its stream."""
    config = make_config()
    keys = GatewayKeys.for_config(config)
    records = Records()
    streams = GatewayStreams(config, client, lease_ttl=0.9)
    other = GatewayStreams(config, client)
    try:
        async with streams.quotes(["005930", "000660"]) as stream:
            mine = keys.worker(streams.worker_id)
            # What the REGISTER script does to a worker whose lease ran out:
            await client.zrem(keys.workers, streams.worker_id)
            await client.delete(mine)
            async with asyncio.timeout(STEP):
                while await client.hlen(mine) != 2:
                    await asyncio.sleep(0.05)
            assert await client.zscore(keys.workers, streams.worker_id) is not None
            async with other.quotes(["035420"]):
                assert await client.hlen(mine) == 2  # alive again: not dropped
            sent = records.quotes("000660", 3)
            await publish(client, keys, "H0STCNT0", sent)
            got = [await asyncio.wait_for(anext(stream), STEP) for _ in sent]
            assert [record_text(q) for q in got] == [record_text(q) for q in sent]
    finally:
        await streams.aclose()
        await other.aclose()
