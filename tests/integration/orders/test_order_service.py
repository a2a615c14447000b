"""OrderService and TrackedOrder against the simulator: fills, cancels, limits, restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from kis_async import (
    InvalidOrderError,
    KISBroker,
    OrderService,
    OrderStatus,
    Side,
)
from kis_async.orders.service import PreTradeLimits
from kis_async.sim import KISSimulator

CHEAP = "001440"  # ~1,587 won, tick 1: book levels are smaller than big orders


async def test_tracked_order_follows_partial_fills_to_filled(
    fast_sim: KISSimulator, quick_broker: KISBroker
) -> None:
    """A resting buy fills in several parts; the tracked order follows to FILLED."""
    async with OrderService(quick_broker) as service:
        assert service.following == "stream"
        tracked = await service.submit(CHEAP, Side.BUY, 20_000, price=1_500)
        assert tracked.status is OrderStatus.OPEN
        for _ in range(40):  # each forced trade fills at most one book level (< 20,000)
            fast_sim.exchange.set_price(CHEAP, 1_499)
            try:
                await tracked.wait_done(timeout=0.3)
            except TimeoutError:
                continue
            break
        assert await tracked.wait_filled(timeout=5)
        statuses = [event.status async for event in tracked.events()]
    exchange_order = fast_sim.exchange.order(tracked.order_id)
    assert exchange_order.filled_qty == tracked.filled_qty == 20_000
    assert tracked.remaining_qty == 0
    assert tracked.avg_fill_price == 1_500
    assert statuses[-1] is OrderStatus.FILLED
    assert OrderStatus.PARTIALLY_FILLED in statuses


async def test_tracked_order_cancel_to_cancelled(
    fast_sim: KISSimulator, quick_broker: KISBroker
) -> None:
    """cancel() on a resting order: the notice turns the tracked order CANCELLED."""
    async with OrderService(quick_broker) as service:
        tracked = await service.submit(CHEAP, Side.BUY, 100, price=1_200)
        assert await service.cancel(tracked) is True
        assert await tracked.wait_done(timeout=5) is OrderStatus.CANCELLED
    assert tracked.cancelled_qty == 100
    assert fast_sim.exchange.order(tracked.order_id).remaining_qty == 0


async def test_track_rebuilds_after_restart(
    fast_sim: KISSimulator, make_broker: Callable[..., KISBroker]
) -> None:
    """A new service (new broker) rebuilds a tracked order from its number and can cancel it."""
    async with make_broker() as first, OrderService(first) as service:
        original = await service.submit(CHEAP, Side.BUY, 50, price=1_200)
    async with make_broker() as second, OrderService(second) as service:
        rebuilt = await service.track(original.order_id)
        assert (rebuilt.symbol, rebuilt.qty, rebuilt.status) == (CHEAP, 50, OrderStatus.OPEN)
        assert await service.cancel(rebuilt)
        assert await rebuilt.wait_done(timeout=5) is OrderStatus.CANCELLED


async def test_modify_then_fill_follows_new_order_number(
    fast_sim: KISSimulator, quick_broker: KISBroker
) -> None:
    """modify() moves the order to a new number; fills on it complete the tracked order."""
    async with OrderService(quick_broker) as service:
        tracked = await service.submit(CHEAP, Side.BUY, 10, price=1_200)
        first = tracked.order_id
        await service.modify(tracked, price=1_300)
        assert tracked.order_id != first
        fast_sim.exchange.set_price(CHEAP, 1_299)
        assert await tracked.wait_filled(timeout=5)
    assert tracked.filled_qty == 10


@pytest.mark.parametrize(
    "limits",
    [
        PreTradeLimits(max_notional_per_order=100_000),
        PreTradeLimits(max_position_per_symbol=5),
    ],
)
async def test_pre_trade_limits_reject_without_network(
    fast_sim: KISSimulator, quick_broker: KISBroker, limits: PreTradeLimits
) -> None:
    """A breached limit raises InvalidOrderError and the simulator sees no request at all."""
    before = fast_sim.stats.rest_requests
    sessions = fast_sim.stats.ws_sessions_opened
    service = OrderService(quick_broker, limits=limits)
    with pytest.raises(InvalidOrderError, match="pre-trade limit"):
        await service.submit("005930", Side.BUY, 10, price=70_000)
    await service.aclose()
    assert fast_sim.stats.rest_requests == before
    assert fast_sim.stats.ws_sessions_opened == sessions
    assert fast_sim.exchange.orders == []


async def test_dropped_response_with_live_execution_stream(
    fast_sim: KISSimulator, quick_broker: KISBroker
) -> None:
    """With notices flowing, a dropped order response still yields the one booked order and
    the tracked order follows it."""
    async with OrderService(quick_broker) as service:
        await quick_broker.authenticate()
        fast_sim.faults.drop_next_order_response()
        tracked = await service.submit(CHEAP, Side.BUY, 10, price=1_200, idempotency_key="k")
        (only,) = [o for o in fast_sim.exchange.orders if o.kind == "new"]
        assert tracked.order_id == only.order_id
        assert await service.cancel(tracked)
        assert await tracked.wait_done(timeout=5) is OrderStatus.CANCELLED


async def test_no_service_task_survives_close(
    fast_sim: KISSimulator, make_broker: Callable[..., KISBroker]
) -> None:
    """Closing the broker first ends the listener without starting a poller; aclose cleans up."""
    broker = make_broker()
    await broker.open()
    service = OrderService(broker)
    await service.submit(CHEAP, Side.BUY, 1, price=1_200)
    await broker.aclose()
    for _ in range(50):
        if service.following is None:
            break
        await asyncio.sleep(0.02)
    assert service.following is None
    await service.aclose()
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert not any(n.startswith("kis-async-order") for n in names)
