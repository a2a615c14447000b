"""Gateway workers' execution events on a real Redis.

Cursor consumers (replay, replay=False, since=) get what a direct broker's consumers get
from the same events; consumer groups hand each event to one consumer once, and after a
crash (a task cancelled mid-handling, a process killed) deliver again only the event that
was being handled. The gateway's side is played by a relay that publishes what a direct
broker on the simulator receives, as the gateway does (``encode_execution`` with the
order's cumulative fill, through the lease-fenced ``EXECUTION_PUBLISH`` script)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from kis_async import Execution, ExecutionKind, KISBroker, KISConfig, Mode
from kis_async.gateway import GatewayStreams, RedisTokenStore
from kis_async.gateway.keys import EXECUTION_PUBLISH, GatewayKeys, encode_execution
from kis_async.models import KST, OrderType, Side
from kis_async.sim import KISSimulator
from kis_async.stream.options import StreamOptions
from kis_async.validation import normalize_order_id

WORKER = Path(__file__).with_name("_gw_worker.py")
STEP = 10.0
FAST = StreamOptions(
    ack_timeout=3.0,
    liveness_timeout=1.0,
    connect_timeout=2.0,
    close_timeout=0.5,
    reconnect_base_delay=0.02,
    reconnect_max_delay=0.2,
    max_reconnect_attempts=50,
)


def per_order(events: Iterable[Execution]) -> Counter[str]:
    out: Counter[str] = Counter()
    for event in events:
        if event.kind is ExecutionKind.FILLED:
            out[normalize_order_id(event.broker_order_id)] += event.qty
    return out


def filled(events: Iterable[Execution]) -> int:
    return sum(per_order(events).values())


def shape(events: Iterable[Execution]) -> Counter[tuple[str, str, int]]:
    return Counter((e.kind.value, normalize_order_id(e.broker_order_id), e.qty) for e in events)


def booked(sim: KISSimulator) -> Counter[str]:
    return Counter(
        {normalize_order_id(o.order_id): o.filled_qty for o in sim.exchange.orders if o.filled_qty}
    )


def buy(sim: KISSimulator, qty: int, symbol: str = "005930") -> str:
    """A market buy straight at the exchange (fills at once)."""
    return sim.exchange.place_order(
        symbol=symbol, side="02", qty=qty, order_type="01", price=0
    ).order_id


async def until(predicate: Any, limit: float = STEP) -> None:
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.01)


async def take(stream: Any, into: list[Execution], done: Any) -> None:
    async with asyncio.timeout(STEP):
        while not done():
            into.append(await anext(stream))


async def quiet(stream: Any, into: list[Execution], period: float = 0.3) -> None:
    """Whatever else arrives within ``period`` (nothing, when exactly once holds)."""
    with contextlib.suppress(TimeoutError):
        while True:
            into.append(await asyncio.wait_for(anext(stream), period))


class Publisher:
    """Publishes execution events as the active gateway does."""

    def __init__(self, client: Any, keys: GatewayKeys) -> None:
        self.client = client
        self.keys = keys
        self.script = client.register_script(EXECUTION_PUBLISH)
        self.events: list[Execution] = []

    async def publish(self, event: Execution, cum: int | None) -> None:
        entry = encode_execution(event, cum)
        fields = [item for pair in entry.items() for item in pair]
        cursor = str(event.cursor) if event.cursor is not None else ""
        eid = await self.script(
            keys=[self.keys.lease, self.keys.executions, self.keys.cursor],
            args=["fake-gateway", cursor, "0", *fields],
        )
        assert eid, "the fake gateway holds the lease"
        self.events.append(event)

    async def relay(self, direct: KISBroker) -> None:
        """Publish every event a replaying consumer of ``direct`` receives."""
        await self.client.set(self.keys.lease, "fake-gateway")
        async with direct.executions() as events:
            async for event in events:
                cum = None
                if event.kind is ExecutionKind.FILLED:
                    assert event.cursor is not None
                    cum = event.cursor.filled[normalize_order_id(event.broker_order_id)]
                await self.publish(event, cum)

    @property
    def filled(self) -> int:
        return sum(per_order(self.events).values())


@pytest.fixture
async def client(redis_server: Any) -> AsyncIterator[Any]:
    redis = aioredis.from_url(redis_server.url)
    yield redis
    await redis.aclose()


@pytest.fixture
async def sim() -> AsyncIterator[KISSimulator]:
    simulator = KISSimulator(
        seed=4242,
        mode=Mode.PAPER,
        app_key="PS" + uuid.uuid4().hex + "wxyz",
        quote_interval=0.05,
        pingpong_interval=0.2,
        pingpong_timeout=1.0,
        rate_limit=False,
    )
    async with simulator.serve(port=0) as running:
        yield running


async def test_cursor_consumers_match_a_direct_broker_on_the_same_events(
    sim: KISSimulator, client: Any
) -> None:
    """After fills A, a replaying, a replay=False and (later, in a new broker) a since=cursor
    consumer of a worker receive exactly what the same consumers of a direct broker receive
    from the same events: A+B, only B, and exactly the fills after the cursor."""
    config = sim.config(requests_per_second=None)
    keys = GatewayKeys.for_config(config)
    publisher = Publisher(client, keys)
    async with KISBroker(config, stream_options=FAST) as direct:
        relay = asyncio.create_task(publisher.relay(direct))
        worker = KISBroker(config, gateway=client, stream_options=FAST)
        try:
            await until(lambda: direct._streams.executions_active)
            first = [buy(sim, 5), buy(sim, 5), buy(sim, 3, "000660")]
            await until(lambda: publisher.filled == 13)
            d_replay = await direct.executions().__aenter__()
            d_live = await direct.executions(replay=False).__aenter__()
            w_replay = await worker.executions().__aenter__()
            w_live = await worker.executions(replay=False).__aenter__()
            second = [buy(sim, 4), buy(sim, 2, "000660")]
            await until(lambda: publisher.filled == 19)
            got: dict[str, list[Execution]] = {}
            for name, stream, total in (
                ("d_replay", d_replay, 19),
                ("d_live", d_live, 6),
                ("w_replay", w_replay, 19),
                ("w_live", w_live, 6),
            ):
                events = got[name] = []
                await take(stream, events, lambda e=events, n=total: filled(e) >= n)
                await quiet(stream, events)
            assert per_order(got["w_replay"]) == per_order(got["d_replay"]) == booked(sim)
            assert set(per_order(got["w_live"])) == {normalize_order_id(o) for o in second}
            assert shape(got["w_live"]) == shape(got["d_live"])
            assert shape(got["w_replay"]) == shape(got["d_replay"])
            fills = [e for e in got["w_replay"] if e.kind is ExecutionKind.FILLED]
            early = {normalize_order_id(o) for o in first}
            assert all(e.replayed for e in fills if e.broker_order_id.lstrip("0") in early)
            assert not any(e.replayed for e in fills if e.broker_order_id.lstrip("0") not in early)

            # A "new process" resumes from the cursor saved after the second fill it handled.
            saved = fills[1].cursor
            assert saved is not None
            async with KISBroker(config, gateway=client) as restarted:
                rest: list[Execution] = []
                async with restarted.executions(since=str(saved)) as resumed:
                    handled = per_order(fills[:2])
                    await take(
                        resumed, rest, lambda: sum((handled + per_order(rest)).values()) >= 19
                    )
                    await quiet(resumed, rest)
            assert handled + per_order(rest) == booked(sim)
        finally:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            await worker.aclose()


async def test_streams_opened_before_the_gateway_published_earlier_fills_start_at_rest(
    sim: KISSimulator, client: Any
) -> None:
    """A worker's new execution streams start where a direct broker's do, at a REST
    snapshot: with a fill booked before they opened whose notice the gateway publishes only
    afterwards, a replay=False stream skips it and a replaying one gets it once, replayed
    (from REST); both get the fill after them live; the late notice adds nothing."""
    config = sim.config(requests_per_second=None)
    publisher = Publisher(client, GatewayKeys.for_config(config))
    await client.set(publisher.keys.lease, "fake-gateway")
    shared = RedisTokenStore(client, config)  # as the gateway's own broker and its workers
    got: dict[str, list[Execution]] = {"live": [], "replay": []}

    async def publish(events: list[Execution]) -> None:
        """Publish what the gateway's session received, as the gateway does."""
        for event in events:
            cum = None
            if event.kind is ExecutionKind.FILLED:
                assert event.cursor is not None
                cum = event.cursor.filled[normalize_order_id(event.broker_order_id)]
            await publisher.publish(event, cum)

    async with (
        KISBroker(config, stream_options=FAST, token_store=shared) as direct,
        KISBroker(config, gateway=client, stream_options=FAST) as worker,
        direct.executions(replay=False) as session,
    ):
        await until(lambda: direct._streams.executions_active)
        early = normalize_order_id(buy(sim, 5))
        held: list[Execution] = []
        await take(session, held, lambda: filled(held) == 5)
        # The notice is at the gateway's session, not yet in its stream, as the streams open.
        async with worker.executions(replay=False) as live, worker.executions() as replay:
            await publish(held)
            late = normalize_order_id(buy(sim, 2))
            after: list[Execution] = []
            await take(session, after, lambda: filled(after) == 2)
            await publish(after)
            for name, stream, total in (("live", live, 2), ("replay", replay, 7)):
                events = got[name]
                await take(stream, events, lambda e=events, n=total: filled(e) >= n)
                await quiet(stream, events)
    assert per_order(got["live"]) == Counter({late: 2})
    assert per_order(got["replay"]) == Counter({early: 5, late: 2})
    fills = {
        normalize_order_id(e.broker_order_id): e
        for e in got["replay"]
        if e.kind is ExecutionKind.FILLED
    }
    assert fills[early].replayed
    assert fills[early].source == "reconcile"
    assert not fills[late].replayed


def fill(n: int, qty: int) -> Execution:
    return Execution(
        kind=ExecutionKind.FILLED,
        broker_order_id=f"{n:010d}",
        original_order_id=None,
        branch_no="01790",
        symbol="005930",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        qty=qty,
        price=Decimal("71000"),
        order_qty=qty,
        time=datetime.now(KST).replace(microsecond=0),
    )


async def publish_fills(client: Any, keys: GatewayKeys, orders: Iterable[int]) -> list[str]:
    publisher = Publisher(client, keys)
    await client.set(keys.lease, "fake-gateway")
    oids = []
    for n in orders:
        await publisher.publish(fill(n, n), n)
        oids.append(f"{n:010d}")
    return oids


def make_config() -> KISConfig:
    return KISConfig(
        app_key="PS" + uuid.uuid4().hex + "abcd",
        app_secret="s" * 180,
        account_id="5012345601",
        hts_id="tester01",
        mode=Mode.PAPER,
        token_cache_dir=None,
    )


async def test_a_supervisor_restarting_a_cancelled_group_consumer_loses_nothing(
    client: Any,
) -> None:
    """The consumer task is cancelled while handling the third event; the restarted consumer
    gets that event again (replayed) and then the rest: each handled once, none lost."""
    config = make_config()
    keys = GatewayKeys.for_config(config)
    oids = await publish_fills(client, keys, range(1, 7))
    handled: list[Execution] = []
    stuck = asyncio.Event()

    async def consumer(run: int) -> None:
        async with broker.executions(group="recorder") as events:
            async for event in events:
                if run == 0 and len(handled) == 2:
                    stuck.set()
                    await asyncio.Event().wait()  # hangs mid-handling until cancelled
                handled.append(event)
                if len(handled) == len(oids):
                    return

    async with KISBroker(config, gateway=client) as broker:
        task = asyncio.create_task(consumer(0))
        await asyncio.wait_for(stuck.wait(), STEP)
        task.cancel()  # the supervisor gives up on the stuck handler...
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.wait_for(consumer(1), STEP)  # ...and restarts it
    assert [e.broker_order_id for e in handled] == oids
    assert [e.replayed for e in handled] == [False, False, True, False, False, False]
    assert [e.qty for e in handled] == [1, 2, 3, 4, 5, 6]


async def test_group_consumers_killed_mid_handling_resume_with_only_that_event(
    client: Any, redis_server: Any, children: Any
) -> None:
    """Two worker processes are killed with SIGKILL while handling their third event: the
    same consumer restarted in a new broker, and another consumer of the other group (which
    claims entries left idle), each get that event again (replayed), then the rest once."""
    config = make_config()
    keys = GatewayKeys.for_config(config)
    oids = await publish_fills(client, keys, range(1, 7))
    same = await children(WORKER, "group", redis_server.url, config.app_key, "ga", "ga", "3")
    other = await children(WORKER, "group", redis_server.url, config.app_key, "gb", "c1", "3")
    for child in (same, other):
        assert [(await child.line())["oid"] for _ in range(2)] == oids[:2]
        assert await child.line() == {"handling": oids[2]}
        child.proc.kill()
        await child.proc.wait()

    got: dict[str, list[Execution]] = {"ga": [], "gb": []}
    async with KISBroker(config, gateway=client) as broker, broker.executions(group="ga") as events:
        await take(events, got["ga"], lambda: len(got["ga"]) == 4)
        await quiet(events, got["ga"])
    streams = GatewayStreams(config, client, claim_idle=0.3)
    try:
        async with streams.executions(group="gb", consumer="c2") as events:
            await take(events, got["gb"], lambda: len(got["gb"]) == 4)
            await quiet(events, got["gb"])
    finally:
        await streams.aclose()
    for events in got.values():
        assert [e.broker_order_id for e in events] == oids[2:]
        assert [e.replayed for e in events] == [True, False, False, False]
    assert await client.xpending(keys.executions, "gb") == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_each_group_gets_everything_once_and_consumers_share_a_group(
    client: Any,
) -> None:
    """Groups "audit" (one consumer, a callback) and "fills" (two consumers) each receive all
    ten events once: the two consumers of "fills" split them with no overlap. A new group
    with replay=False starts after the events already there."""
    config = make_config()
    keys = GatewayKeys.for_config(config)
    oids = await publish_fills(client, keys, range(1, 11))
    audit: list[Execution] = []
    async with KISBroker(config, gateway=client) as one, KISBroker(config, gateway=client) as two:
        sub = await one.subscribe_executions(audit.append, group="audit")
        late = await one.executions(group="late", replay=False).__aenter__()
        b1 = await one.executions(group="fills", consumer="b1").__aenter__()
        b2 = await two.executions(group="fills", consumer="b2").__aenter__()
        split: dict[str, list[Execution]] = {"b1": [], "b2": []}

        async def drain(name: str, stream: Any) -> None:
            with contextlib.suppress(TimeoutError):
                while True:
                    split[name].append(await asyncio.wait_for(anext(stream), 0.5))
                    await asyncio.sleep(0.01)  # handling takes a while: the other one gets some

        await asyncio.gather(drain("b1", b1), drain("b2", b2))
        await until(lambda: len(audit) == 10)
        more = await publish_fills(client, keys, [11])
        late_events: list[Execution] = []
        await take(late, late_events, lambda: len(late_events) == 1)
        await quiet(late, late_events)
        await until(lambda: len(audit) == 11)
        await sub.aclose()
        await late.aclose()
    assert [e.broker_order_id for e in audit] == oids + more
    together = [e.broker_order_id for e in split["b1"] + split["b2"]]
    assert sorted(together) == oids
    assert split["b1"]
    assert split["b2"]
    assert [e.broker_order_id for e in late_events] == more


async def test_group_arguments_are_checked_before_anything_is_read(client: Any) -> None:
    """A group without a gateway, a consumer without a group, since= with a group and bad
    names are ValueErrors at the call."""
    config = make_config()
    direct = KISBroker(config)
    with pytest.raises(ValueError, match="gateway"):
        direct.executions(group="recorder")
    with pytest.raises(ValueError, match="gateway"):
        await direct.subscribe_executions(print, group="recorder")
    await direct.aclose()
    async with KISBroker(config, gateway=client) as broker:
        with pytest.raises(ValueError, match="group"):
            broker.executions(consumer="c1")
        with pytest.raises(ValueError, match="since"):
            broker.executions(group="g", since="v1:20261201:")
        for bad in ("", "two words", "tab\there", "new\n"):
            with pytest.raises(ValueError, match="name"):
                broker.executions(group=bad)
        with pytest.raises(TypeError):
            broker.executions(group=42)  # type: ignore[arg-type]
    assert not await client.exists(keys_of(config).executions)


def keys_of(config: KISConfig) -> GatewayKeys:
    return GatewayKeys.for_config(config)


async def test_closing_the_broker_ends_every_stream_and_task(client: Any) -> None:
    """Consumers blocked in ``anext`` of a quote stream, a cursor consumer and a group
    consumer all end when the broker closes; no worker task is left running and the worker
    is gone from Redis."""
    config = make_config()
    keys = GatewayKeys.for_config(config)
    await publish_fills(client, keys, [1])
    broker = KISBroker(config, gateway=client)
    quotes = await broker.quotes(["005930"]).__aenter__()
    cursor = await broker.executions().__aenter__()
    group = await broker.executions(group="g").__aenter__()
    for stream in (cursor, group):
        assert (await asyncio.wait_for(anext(stream), STEP)).broker_order_id == "0000000001"
    waiting = [asyncio.create_task(anext(s)) for s in (quotes, cursor, group)]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in waiting)
    streams = broker._streams
    assert isinstance(streams, GatewayStreams)
    await broker.aclose()
    for task in waiting:
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(task, STEP)
    left = [t for t in asyncio.all_tasks() if t.get_name().startswith("kis_async")]
    assert left == []
    assert await client.zscore(keys.workers, streams.worker_id) is None
    assert not await client.exists(keys.worker(streams.worker_id))
