"""Self-healing against the simulator's faults: drops, mute sockets, gap-fill."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from kis_async import Execution, ExecutionKind, KISBroker
from kis_async.sim import KISSimulator
from kis_async.stream.options import StreamOptions

Waiter = Callable[..., Awaitable[None]]


async def test_repeated_drops_restore_all_40_registrations(
    fast_sim: KISSimulator,
    fast_broker: KISBroker,
    wait: Waiter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Dropping the socket repeatedly with 40 registrations restores all 40 every time."""
    caplog.set_level(logging.INFO, logger="kis_async.stream")
    symbols = fast_sim.exchange.symbols
    extra = [f"9{i:05d}" for i in range(40 - 2 * len(symbols))]
    quotes = fast_broker.quotes(symbols[:1] + extra + symbols[1:])
    books = fast_broker.orderbooks(symbols)
    await quotes.__aenter__()
    await books.__aenter__()
    assert fast_broker.stream_status.registrations == 40
    for round_no in range(1, 4):
        opened = fast_sim.stats.ws_sessions_opened
        assert fast_sim.faults.drop_sessions() == 1
        await wait(lambda n=opened: fast_sim.stats.ws_sessions_opened == n + 1)
        await wait(lambda: fast_sim.stats.active_subscriptions == 40)
        assert fast_broker.stream_status.reconnects == round_no
        # Quotes and books resume after each restore.
        for stream in (quotes, books):
            seen: set[str] = set()
            while len(seen) < 3:
                item = await asyncio.wait_for(anext(stream), 3)  # type: ignore[arg-type]
                seen.add(item.symbol)
    assert fast_broker.stream_status.registrations == 40
    assert fast_sim.stats.ws_sessions_active == 1
    assert "reconnect attempt 1 in" in caplog.text
    await quotes.aclose()
    await books.aclose()


async def test_mute_socket_is_detected_and_replaced(
    fast_sim: KISSimulator, fast_broker: KISBroker, wait: Waiter
) -> None:
    """A connected but mute socket is closed after the liveness window and replaced."""
    async with fast_broker.quotes(["005930"]) as quotes:
        await anext(quotes)
        fast_sim.faults.mute()
        await wait(lambda: fast_broker.stream_status.liveness_timeouts >= 1, limit=5)
        fast_sim.faults.mute(False)
        await wait(lambda: fast_broker.stream_status.reconnects >= 1, limit=5)
        # Drain what was queued before the mute, then fresh quotes flow again.
        opened = fast_sim.stats.ws_sessions_opened
        assert opened >= 2
        async with asyncio.timeout(5):
            async for quote in quotes:
                if fast_broker.stream_status.connected and quote.symbol == "005930":
                    break
        await wait(lambda: fast_sim.stats.active_subscriptions == 1)


def _filled(events: list[Execution], order_id: str) -> int:
    return sum(
        e.qty for e in events if e.kind is ExecutionKind.FILLED and e.broker_order_id == order_id
    )


async def _collect_until(
    stream: object, events: list[Execution], done: Callable[[], bool], limit: float = 5.0
) -> None:
    async with asyncio.timeout(limit):
        while not done():
            events.append(await anext(stream))  # type: ignore[call-overload]


async def test_outage_fills_delivered_exactly_once_by_gap_fill(
    fast_sim: KISSimulator, fast_broker: KISBroker, wait: Waiter
) -> None:
    """Fills during an outage arrive once via gap-fill; notices are never repeated by it."""
    exchange = fast_sim.exchange
    events: list[Execution] = []
    async with fast_broker.executions() as stream:
        await wait(lambda: fast_broker._streams.executions_active)
        before = exchange.place_order(symbol="005930", side="02", qty=3, order_type="01", price=0)
        await _collect_until(stream, events, lambda: _filled(events, before.order_id) == 3)
        # Outage: the socket drops and reconnects are refused for a while.
        fast_sim.faults.refuse_connections(0.4)
        fast_sim.faults.drop_sessions()
        await wait(lambda: not fast_broker.stream_status.connected)
        during = [
            exchange.place_order(symbol="000660", side="02", qty=4, order_type="01", price=0),
            exchange.place_order(symbol="005930", side="02", qty=2, order_type="01", price=0),
        ]
        assert all(o.filled_qty == o.qty for o in during)
        await _collect_until(
            stream, events, lambda: all(_filled(events, o.order_id) == o.qty for o in during)
        )
        # After the reconnect, notices flow again and nothing is delivered twice.
        after = exchange.place_order(symbol="005930", side="02", qty=1, order_type="01", price=0)
        await _collect_until(stream, events, lambda: _filled(events, after.order_id) == 1)
        await asyncio.sleep(0.3)
        while True:
            try:
                events.append(await asyncio.wait_for(anext(stream), 0.05))
            except TimeoutError:
                break
    assert _filled(events, before.order_id) == 3
    assert _filled(events, after.order_id) == 1
    for order in during:
        assert _filled(events, order.order_id) == order.qty
        sources = {e.source for e in events if e.broker_order_id == order.order_id}
        assert sources == {"reconcile"}
    assert {e.source for e in events if e.broker_order_id == before.order_id} == {"websocket"}
    assert fast_broker.stream_status.executions_reconciled == 2
    assert fast_broker.stream_status.reconnects >= 1


async def test_gap_fill_when_execution_stream_starts(
    fast_sim: KISSimulator, fast_broker: KISBroker
) -> None:
    """Fills from before the stream opened are emitted once as reconcile events."""
    order = fast_sim.exchange.place_order(
        symbol="005930", side="02", qty=5, order_type="01", price=0
    )
    events: list[Execution] = []
    async with fast_broker.executions() as stream:
        await _collect_until(stream, events, lambda: _filled(events, order.order_id) == 5)
    assert [e.source for e in events] == ["reconcile"]
    assert events[0].symbol == "005930"
    assert events[0].order_qty == 5
    assert events[0].price is not None


async def test_restore_uses_the_new_sessions_key(
    fast_sim: KISSimulator, wait: Waiter, fast_options: StreamOptions
) -> None:
    """After a reconnect, notices encrypted with the new session's key still decrypt."""
    async with KISBroker(fast_sim.config(), stream_options=fast_options) as broker:
        events: list[Execution] = []
        async with broker.executions() as stream:
            await wait(lambda: broker._streams.executions_active)
            key_before = dict(broker._streams._crypto)
            fast_sim.faults.drop_sessions()
            await wait(lambda: broker.stream_status.reconnects == 1)
            await wait(lambda: broker._streams.executions_active)
            assert broker._streams._crypto != key_before
            order = fast_sim.exchange.place_order(
                symbol="000660", side="02", qty=1, order_type="01", price=0
            )
            await _collect_until(stream, events, lambda: _filled(events, order.order_id) == 1)
        assert broker.stream_status.malformed_frames == 0
        assert {e.source for e in events} == {"websocket"}


@pytest.mark.parametrize(("healthy_after", "attempts"), [(0.2, [1, 1]), (30.0, [1, 2])])
async def test_backoff_resets_after_a_healthy_period(
    fast_sim: KISSimulator,
    wait: Waiter,
    caplog: pytest.LogCaptureFixture,
    healthy_after: float,
    attempts: list[int],
) -> None:
    """The reconnect attempt number (and so the delay) resets once a connection was healthy."""
    caplog.set_level(logging.WARNING, logger="kis_async.stream")
    options = StreamOptions(
        ack_timeout=3.0,
        reconnect_base_delay=0.02,
        reconnect_max_delay=0.2,
        healthy_after=healthy_after,
    )
    broker = KISBroker(fast_sim.config(), stream_options=options)
    async with broker, broker.quotes(["005930"]):
        for n in (1, 2):
            await asyncio.sleep(0.3)
            fast_sim.faults.drop_sessions()
            await wait(lambda n=n: broker.stream_status.reconnects == n)
    logged = [
        int(r.getMessage().split("attempt ")[1].split()[0])
        for r in caplog.records
        if "reconnect attempt" in r.getMessage()
    ]
    assert logged == attempts


async def test_aclose_during_backoff_is_prompt(fast_sim: KISSimulator, wait: Waiter) -> None:
    """Closing while the session waits out a long backoff delay does not wait for it."""
    options = StreamOptions(ack_timeout=3.0, reconnect_base_delay=20.0, reconnect_max_delay=20.0)
    broker = KISBroker(fast_sim.config(), stream_options=options)
    quotes = broker.quotes(["005930"])
    await anext(quotes)
    fast_sim.faults.drop_sessions()
    await wait(lambda: not broker.stream_status.connected)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await broker.aclose()
    assert loop.time() - started < 2.0
    with pytest.raises(StopAsyncIteration):
        await anext(quotes)
