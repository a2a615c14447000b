"""The gap-fill race, made deterministic against the simulator.

A fill happens after the reconnect's gap-fill asked for today's orders (so the REST snapshot
counts it) while its notice is held back on the client until the snapshot has been applied:
exactly the notice that used to be delivered twice on a partly open order. The hold is a
test hook in front of the manager's frame handler (standing in for network latency); the
simulator itself is used through its public exchange and fault APIs only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from kis_async import Execution, ExecutionKind, KISBroker, Mode, Order
from kis_async.models.common import tick_size
from kis_async.sim import KISSimulator
from kis_async.stream.manager import StreamManager
from kis_async.stream.options import StreamOptions

Waiter = Callable[..., Awaitable[None]]


class NoticeGate:
    """Holds execution-notice frames on their way into the manager while closed."""

    def __init__(self, manager: StreamManager) -> None:
        self._handler = manager._on_text
        self._held: list[str] = []
        self.closed = False
        # Installed before the session exists, so the session reads through the gate.
        manager._on_text = self.on_text  # type: ignore[method-assign]

    def on_text(self, text: str) -> None:
        if self.closed and text[:2] in ("0|", "1|") and "|H0STCNI" in text[:12]:
            self._held.append(text)
        else:
            self._handler(text)

    @property
    def held(self) -> int:
        return len(self._held)

    def open(self) -> None:
        self.closed = False
        held, self._held = self._held, []
        for text in held:
            self._handler(text)


@pytest.fixture
async def quiet_sim() -> AsyncIterator[KISSimulator]:
    """A paper simulator whose market moves only when the test says so."""
    sim = KISSimulator(
        seed=777,
        mode=Mode.PAPER,
        quote_interval=None,
        pingpong_interval=0.2,
        pingpong_timeout=1.0,
        rate_limit=False,
        starting_holdings={"005930": 10_000},
    )
    async with sim.serve(port=0) as running:
        yield running


def _filled(events: list[Execution], order_id: str) -> int:
    return sum(
        e.qty for e in events if e.kind is ExecutionKind.FILLED and e.broker_order_id == order_id
    )


async def _read(stream: object, events: list[Execution]) -> None:
    async for event in stream:  # type: ignore[attr-defined]
        events.append(event)


def _idle(manager: StreamManager) -> bool:
    return manager.feed.idle


@pytest.mark.parametrize("window", [5.0, 0.0])
async def test_in_flight_notice_of_a_snapshot_counted_fill_is_not_delivered_twice(
    quiet_sim: KISSimulator, fast_options: StreamOptions, wait: Waiter, window: float
) -> None:
    """With verification the partly open order's total is exact; with it off (window 0) the
    same race still delivers the held-back fill twice, which shows the race is reproduced."""
    exchange = quiet_sim.exchange
    options = replace(fast_options, gap_fill_verify_window=window)
    broker = KISBroker(quiet_sim.config(requests_per_second=None), stream_options=options)
    manager = broker._streams
    gate = NoticeGate(manager)
    real_fetch = manager.feed.fetch_orders
    race: dict[str, str] = {}

    async def fetch_orders() -> list[Order]:
        if race.get("armed") == "yes" and manager.status.reconnects >= 1:
            race["armed"] = "done"
            # Between the gap-fill's request and its answer: a partial fill whose notice is
            # held back until the snapshot has been applied.
            gate.closed = True
            price = exchange.price("005930")
            order = exchange.place_order(
                symbol="005930", side="01", qty=9_000, order_type="00", price=price
            )
            assert 0 < order.filled_qty < order.qty
            race["order_id"] = order.order_id
        return await real_fetch()

    manager.feed.fetch_orders = fetch_orders
    events: list[Execution] = []
    async with broker, broker.executions() as stream:
        reader = asyncio.create_task(_read(stream, events))
        await wait(lambda: manager.executions_active)
        race["armed"] = "yes"
        quiet_sim.faults.drop_sessions()
        await wait(lambda: "order_id" in race)
        order_id = race["order_id"]
        order = exchange.order(order_id)
        snapshot_fill = order.filled_qty
        # The snapshot's reconcile event is delivered while the notices are still held.
        await wait(lambda: _filled(events, order_id) >= snapshot_fill)
        await wait(lambda: gate.held >= 2)  # the acceptance and the fill notice
        assert [e.source for e in events if e.broker_order_id == order_id] == ["reconcile"]
        gate.open()
        await wait(lambda: _idle(manager))
        # A genuinely new fill inside the window: the market moves through the sell limit.
        before_second = order.filled_qty
        seen_before_second = len(events)
        exchange.set_price("005930", _tick_above(order.price))
        assert order.filled_qty > before_second
        assert order.filled_qty < order.qty  # still partly open
        expected = order.filled_qty + (0 if window else snapshot_fill)
        await wait(lambda: _filled(events, order_id) >= expected)
        await wait(lambda: _idle(manager))
        await asyncio.sleep(0.2)  # nothing more arrives
        status = broker.stream_status
        reader.cancel()
    kinds = [e.kind for e in events if e.broker_order_id == order_id]
    assert kinds[0] is ExecutionKind.FILLED  # the reconcile event
    assert ExecutionKind.ACCEPTED in kinds
    assert _filled(events, order_id) == expected
    if window:
        assert expected == order.filled_qty
        assert status.duplicate_fills_suppressed == 1
        assert status.fill_verifications >= 2
        # The new fills (one per book level crossed) were delivered by notice in full.
        new = [e for e in events[seen_before_second:] if e.broker_order_id == order_id]
        assert {e.source for e in new} == {"websocket"}
        assert sum(e.qty for e in new) == order.filled_qty - before_second
    else:
        assert status.duplicate_fills_suppressed == 0
        assert status.fill_verifications == 0


def _tick_above(price: int) -> int:
    return price + tick_size(price)
