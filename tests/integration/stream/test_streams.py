"""Streaming against the simulator over real sockets: lifecycle, sharing, cap, backpressure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal

import pytest

from kis_async import (
    BrokerConnectionError,
    Execution,
    KISBroker,
    Mode,
    OrderBook,
    Quote,
    SubscriptionError,
)
from kis_async.sim import KISSimulator
from kis_async.stream.options import StreamOptions

FAST = StreamOptions(
    ack_timeout=3.0,
    liveness_timeout=1.0,
    connect_timeout=2.0,
    close_timeout=0.5,
    reconnect_base_delay=0.02,
    reconnect_max_delay=0.2,
    healthy_after=0.5,
    max_reconnect_attempts=50,
)


async def drain(stream: object) -> None:
    """Iterate ``stream`` until it ends (2 s per item at most)."""
    while True:
        await asyncio.wait_for(anext(stream), 2)  # type: ignore[call-overload]


def _ours(task: asyncio.Task[object]) -> bool:
    """A task of the stream layer or of the websockets client (not the simulator's)."""
    code = getattr(task.get_coro(), "cr_code", None)
    where = code.co_filename if code is not None else ""
    return (
        task.get_name().startswith("kis_async-")
        or "/kis_async/stream/" in where
        or "/websockets/asyncio/client" in where
    )


async def wait_for(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Poll ``predicate`` until true (fails the test after ``limit`` seconds)."""
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_lazy_single_approval_key_and_socket(fast_sim: KISSimulator) -> None:
    """Nothing connects before the first subscription; concurrent first ones share one key."""
    async with KISBroker(fast_sim.config(), stream_options=FAST) as broker:
        streams = [broker.quotes([s]) for s in fast_sim.exchange.symbols[:5]]
        await asyncio.sleep(0.05)
        assert fast_sim.stats.approval_keys_issued == 0
        assert fast_sim.stats.ws_sessions_opened == 0
        assert not broker.stream_status.connected
        await asyncio.gather(*(s.__aenter__() for s in streams))
        assert fast_sim.stats.approval_keys_issued == 1
        assert fast_sim.stats.ws_sessions_opened == 1
        assert broker.stream_status.registrations == 5
        quotes = [await anext(s) for s in streams]
        assert [q.symbol for q in quotes] == fast_sim.exchange.symbols[:5]
        for s in streams:
            await s.aclose()
        async with broker.orderbooks(["005930"]) as books:
            book = await anext(books)
            assert isinstance(book, OrderBook)
            assert book.best_ask is not None
        assert fast_sim.stats.approval_keys_issued == 1
        assert fast_sim.stats.ws_sessions_opened == 1


async def test_quote_fields_from_the_wire(fast_broker: KISBroker) -> None:
    """A streamed quote has typed fields and its raw KIS fields."""
    async with fast_broker.quotes(["005930"]) as quotes:
        quote = await anext(quotes)
    assert isinstance(quote, Quote)
    assert quote.symbol == "005930"
    assert quote.price > 0
    assert quote.time is not None
    assert quote.time.utcoffset() is not None
    assert quote.cum_volume is not None
    assert quote.raw["STCK_PRPR"] == str(quote.price)
    assert len(quote.raw) == 47


async def test_reference_counted_registrations(
    fast_sim: KISSimulator, fast_broker: KISBroker
) -> None:
    """Two consumers of a symbol share one registration, removed when the last one leaves."""
    first = fast_broker.quotes(["005930"])
    second = fast_broker.quotes(["005930", "000660"])
    await first.__aenter__()
    await second.__aenter__()
    await wait_for(lambda: fast_sim.stats.active_subscriptions == 2)
    assert fast_broker.stream_status.registrations == 2
    await first.aclose()
    assert fast_broker.stream_status.registrations == 2
    # The remaining consumer still gets 005930.
    async with asyncio.timeout(5):
        async for quote in second:
            if quote.symbol == "005930":
                break
    assert fast_sim.stats.active_subscriptions == 2
    await second.aclose()
    assert fast_broker.stream_status.registrations == 0
    await wait_for(lambda: fast_sim.stats.active_subscriptions == 0)


async def test_registration_cap_refused_before_sending(
    fast_sim: KISSimulator, fast_broker: KISBroker
) -> None:
    """41 registrations fit; the 42nd raises SubscriptionError and nothing is sent."""
    symbols = fast_sim.exchange.symbols
    extra = [f"9{i:05d}" for i in range(41 - 2 * len(symbols))]
    quotes = fast_broker.quotes([*symbols, *extra])
    books = fast_broker.orderbooks(symbols)
    await quotes.__aenter__()
    await books.__aenter__()
    assert fast_broker.stream_status.registrations == 41
    await wait_for(lambda: fast_sim.stats.active_subscriptions == 41)
    sent = fast_sim.stats.subscribe_requests
    with pytest.raises(SubscriptionError, match="cap of 41"):
        async with fast_broker.quotes(["123456"]):
            pass
    # A symbol already registered is shared, so it still fits.
    async with fast_broker.quotes([symbols[0]]) as shared:
        assert (await anext(shared)).symbol == symbols[0]
    assert fast_sim.stats.subscribe_requests == sent
    await quotes.aclose()
    await books.aclose()


async def test_server_refusal_goes_to_that_subscriber(fast_sim: KISSimulator) -> None:
    """With a higher client cap, the server's OPSP0008 reaches that subscriber only."""
    options = StreamOptions(ack_timeout=3.0, max_registrations=45)
    async with KISBroker(fast_sim.config(), stream_options=options) as broker:
        held = broker.quotes([f"8{i:05d}" for i in range(41)])
        await held.__aenter__()
        with pytest.raises(SubscriptionError) as info:
            async with broker.quotes(["123456"]):
                pass
        assert info.value.msg_cd == "OPSP0008"
        assert broker.stream_status.registrations == 41
        await held.aclose()


async def test_custom_cap(fast_sim: KISSimulator) -> None:
    """The cap is configurable."""
    options = StreamOptions(ack_timeout=3.0, max_registrations=2)
    async with KISBroker(fast_sim.config(), stream_options=options) as broker:
        with pytest.raises(SubscriptionError):
            async with broker.quotes(["005930", "000660", "035420"]):
                pass
        assert fast_sim.stats.ws_sessions_opened == 0
        async with broker.quotes(["005930", "000660"]) as ok:
            assert (await anext(ok)).symbol in ("005930", "000660")


async def test_pingpong_keeps_session_alive_past_timeout() -> None:
    """PINGPONG is echoed, so the simulator's PINGPONG timeout never closes the session."""
    sim = KISSimulator(seed=1, quote_interval=0.05, pingpong_interval=0.05, pingpong_timeout=0.2)
    async with (
        sim.serve(port=0) as running,
        KISBroker(running.config(), stream_options=FAST) as broker,
    ):
        async with broker.quotes(["005930"]) as quotes:
            loop = asyncio.get_running_loop()
            end = loop.time() + 1.0  # five times the simulator's PINGPONG timeout
            async for _ in quotes:
                if loop.time() >= end:
                    break
            status = broker.stream_status
        assert status.pings_answered >= 5
        assert status.reconnects == 0
        assert running.stats.ws_sessions_closed_pingpong == 0
        assert running.stats.ws_sessions_opened == 1


async def test_slow_consumer_conflates_quotes(fast_sim: KISSimulator) -> None:
    """A lagging quote consumer sees the newest quote per symbol; drops are counted."""
    options = StreamOptions(ack_timeout=3.0, quote_queue_size=4)
    async with KISBroker(fast_sim.config(), stream_options=options) as broker:
        symbols = fast_sim.exchange.symbols[:3]
        async with broker.quotes(symbols) as quotes:
            await anext(quotes)
            await asyncio.sleep(0.5)  # ~25 frames per symbol arrive meanwhile
            assert quotes.dropped > 0
            latest = {s: fast_sim.exchange.price(s) for s in symbols}
            backlog = [await anext(quotes) for _ in range(len(symbols))]
        assert len({q.symbol for q in backlog}) == len(symbols)
        assert broker.stream_status.quotes_dropped == quotes.dropped
        # What waited was (close to) the newest print, not a stale one from 0.5 s ago.
        stale = sum(1 for q in backlog if abs(q.price - latest[q.symbol]) > Decimal(2000))
        assert stale == 0


async def test_lossless_executions_for_a_slow_consumer(
    fast_sim: KISSimulator, fast_broker: KISBroker
) -> None:
    """Execution notices queue without loss while the consumer does not read."""
    async with fast_broker.executions() as events:
        await wait_for(lambda: fast_broker._streams.executions_active)
        orders = [
            fast_sim.exchange.place_order(
                symbol="000660", side="02", qty=2, order_type="01", price=0
            )
            for _ in range(30)
        ]
        await wait_for(lambda: fast_sim.stats.notices_sent >= 60)
        await asyncio.sleep(0.3)
        got: list[Execution] = []
        while len(got) < fast_sim.stats.notices_sent:
            got.append(await asyncio.wait_for(anext(events), 2))
    filled = {o.order_id: 0 for o in orders}
    for event in got:
        if event.kind == "filled":
            filled[event.broker_order_id] += event.qty
    assert filled == {o.order_id: 2 for o in orders}
    assert all(e.source == "websocket" for e in got)


async def test_callbacks_sync_async_raising_and_slow(fast_broker: KISBroker) -> None:
    """Sync and async callbacks both run; a raising one is logged; a slow one stalls nothing."""
    sync_seen: list[Quote] = []
    async_seen: list[Quote] = []
    calls = {"boom": 0}

    def boom(quote: Quote) -> None:
        calls["boom"] += 1
        raise RuntimeError("strategy bug")

    async def slow(quote: Quote) -> None:
        async_seen.append(quote)
        await asyncio.sleep(10)

    subs = [
        await fast_broker.subscribe_quotes(["005930"], sync_seen.append),
        await fast_broker.subscribe_quotes(["005930"], slow),
        await fast_broker.subscribe_quotes(["005930"], boom),
    ]
    async with fast_broker.quotes(["005930"]) as quotes:
        for _ in range(10):
            await asyncio.wait_for(anext(quotes), 2)
    await wait_for(lambda: len(sync_seen) >= 10 and calls["boom"] >= 5)
    assert len(async_seen) == 1  # still inside its first call; nothing else waited for it
    for sub in subs:
        await sub.aclose()
    assert fast_broker.stream_status.registrations == 0


async def test_execution_callback(fast_sim: KISSimulator, fast_broker: KISBroker) -> None:
    """subscribe_executions delivers acceptance and fill notices to the callback."""
    seen: list[Execution] = []
    sub = await fast_broker.subscribe_executions(seen.append)
    order = fast_sim.exchange.place_order(
        symbol="005930", side="02", qty=1, order_type="01", price=0
    )
    await wait_for(lambda: any(e.kind == "filled" for e in seen))
    assert {e.broker_order_id for e in seen} == {order.order_id}
    await sub.aclose()


async def test_executions_need_hts_id(fast_sim: KISSimulator) -> None:
    """Without an HTS id, executions() is a ValueError."""
    async with KISBroker(fast_sim.config(hts_id=None)) as broker:
        with pytest.raises(ValueError, match="hts_id"):
            broker.executions()


async def test_disconnect_ends_streams_cleanly(fast_broker: KISBroker) -> None:
    """disconnect_websocket ends open streams with StopAsyncIteration; later ones reconnect."""
    quotes = fast_broker.quotes(["005930"])
    await anext(quotes)
    await fast_broker.disconnect_websocket()
    with pytest.raises(StopAsyncIteration):
        await drain(quotes)
    assert not fast_broker.stream_status.connected
    async with fast_broker.quotes(["000660"]) as again:
        assert (await anext(again)).symbol == "000660"


async def test_aclose_ends_streams_and_leaves_no_task(fast_sim: KISSimulator) -> None:
    """After broker.aclose() every open stream ends cleanly and no stream task is left."""
    broker = KISBroker(fast_sim.config(), stream_options=FAST)
    quotes = broker.quotes(["005930"])
    events = broker.executions()
    await anext(quotes)
    await events.__aenter__()
    seen: list[Quote] = []
    await broker.subscribe_quotes(["000660"], seen.append)
    await wait_for(lambda: len(seen) > 0)
    await broker.aclose()
    with pytest.raises(StopAsyncIteration):
        await drain(quotes)
    with pytest.raises(StopAsyncIteration):
        await anext(events)
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if _ours(t)] == []
    with pytest.raises(RuntimeError):
        broker.quotes(["005930"])


async def test_approval_key_logged_masked(
    fast_sim: KISSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The approval key appears in logs only as its first 8 characters and '...'."""
    caplog.set_level(logging.DEBUG)
    async with KISBroker(fast_sim.config(), stream_options=FAST) as broker:
        async with broker.quotes(["005930"]) as quotes:
            await anext(quotes)
        key = broker._streams._approval_key
    assert key is not None
    text = caplog.text
    assert key not in text
    assert key[:8] + "..." in text


async def test_session_given_up_fails_every_stream(fast_sim: KISSimulator) -> None:
    """After max failed reconnects every stream raises ConnectionError; callbacks are told."""
    options = StreamOptions(
        ack_timeout=3.0,
        reconnect_base_delay=0.01,
        reconnect_max_delay=0.05,
        max_reconnect_attempts=3,
    )
    errors: list[BaseException] = []
    async with KISBroker(fast_sim.config(), stream_options=options) as broker:
        quotes = broker.quotes(["005930"])
        books = broker.orderbooks(["005930"])
        events = broker.executions()
        for stream in (quotes, books, events):
            await stream.__aenter__()
        sub = await broker.subscribe_quotes(["000660"], lambda q: None, on_error=errors.append)
        fast_sim.faults.refuse_connections(30)
        fast_sim.faults.drop_sessions()
        await wait_for(lambda: broker.stream_status.failed)
        for stream in (quotes, books, events):
            with pytest.raises(ConnectionError):
                await drain(stream)
        await wait_for(lambda: len(errors) == 1)
        assert isinstance(errors[0], BrokerConnectionError)
        assert sub.closed
        fast_sim.faults.clear()
        # A new subscription starts a new session.
        async with broker.quotes(["005930"]) as again:
            assert (await anext(again)).symbol == "005930"


async def test_live_mode_uses_h0stcni0(sim_live: KISSimulator) -> None:
    """Live mode registers H0STCNI0 for notices (paper H0STCNI9)."""
    async with KISBroker(sim_live.config(), stream_options=FAST) as broker, broker.executions():
        assert list(broker._streams._regs) == [("H0STCNI0", sim_live.hts_id)]
        assert sim_live.mode is Mode.LIVE
