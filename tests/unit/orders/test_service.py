"""OrderService and TrackedOrder against a counting fake BrokerPort."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from kis_async.errors import InvalidOrderError
from kis_async.models import ExecutionKind, OrderStatus, OrderType, Position, Side
from kis_async.orders.service import OrderService, PreTradeLimits, TrackedOrder

F, A, M, C, R = (
    ExecutionKind.FILLED,
    ExecutionKind.ACCEPTED,
    ExecutionKind.MODIFIED,
    ExecutionKind.CANCELLED,
    ExecutionKind.REJECTED,
)


async def drain() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_submit_generates_key_and_subscribes_before_sending(port: Any) -> None:
    """submit(): stream subscribed first, then one place_order with a generated key."""
    async with OrderService(port) as service:
        tracked = await service.submit("005930", Side.BUY, 10, price=70_000)
    assert port.calls[:2] == ["executions", "place_order"]
    assert port.stream.entered
    assert tracked.idempotency_key
    assert tracked.idempotency_key.startswith("kis-async-")
    assert (tracked.symbol, tracked.side, tracked.qty, tracked.price) == (
        "005930",
        Side.BUY,
        10,
        Decimal(70_000),
    )
    assert tracked.status is OrderStatus.OPEN
    assert port.stream.closed


async def test_explicit_key_is_passed_through(port: Any) -> None:
    """A caller's key reaches the broker unchanged."""
    seen: list[Any] = []
    original = port.place_order

    async def spy(request: Any) -> str:
        seen.append(request)
        return await original(request)

    port.place_order = spy
    async with OrderService(port) as service:
        await service.submit("005930", "buy", 1, price=70_000, idempotency_key="mine")
    assert seen[0].idempotency_key == "mine"


async def test_partial_fills_then_filled(port: Any, helpers: Any) -> None:
    """Fills update filled/remaining/average; the last one completes wait_filled."""
    async with OrderService(port) as service:
        tracked = await service.submit("005930", Side.BUY, 10, price=70_000)
        oid = tracked.order_id
        waiter = asyncio.create_task(tracked.wait_filled(timeout=5))
        port.stream.queue.put_nowait(helpers.notice(A, oid, qty=10, price=70_000))
        port.stream.queue.put_nowait(helpers.notice(F, oid, qty=4, price=70_000))
        await drain()
        assert (tracked.status, tracked.filled_qty, tracked.remaining_qty) == (
            OrderStatus.PARTIALLY_FILLED,
            4,
            6,
        )
        port.stream.queue.put_nowait(helpers.notice(F, oid, qty=6, price=69_900))
        assert await waiter is True
    assert tracked.status is OrderStatus.FILLED
    assert tracked.remaining_qty == 0
    assert tracked.avg_fill_price == (Decimal(70_000) * 4 + Decimal(69_900) * 6) / 10


async def test_events_iterate_history_then_end_when_done(port: Any, helpers: Any) -> None:
    """events() yields every change from the start and ends after the final one."""
    async with OrderService(port) as service:
        tracked = await service.submit("005930", Side.BUY, 5, price=70_000)
        oid = tracked.order_id
        port.stream.queue.put_nowait(helpers.notice(A, oid, qty=5, price=70_000))
        port.stream.queue.put_nowait(helpers.notice(F, oid, qty=2, price=70_000))
        await drain()
        collected: list[Any] = []

        async def consume() -> None:
            async with tracked.events() as events:
                async for event in events:
                    collected.append(event)

        consumer = asyncio.create_task(consume())
        await drain()
        port.stream.queue.put_nowait(helpers.notice(F, oid, qty=3, price=70_000))
        await asyncio.wait_for(consumer, 5)
    assert [e.status for e in collected] == [
        OrderStatus.OPEN,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ]
    assert [e.filled_qty for e in collected] == [0, 2, 5]
    assert collected[-1].execution is not None


async def test_notice_before_place_returns_is_applied(port: Any, helpers: Any) -> None:
    """A fill notice that overtakes the POST answer is kept and applied once tracked."""
    async with OrderService(port) as service:
        await service.start()
        port.stream.queue.put_nowait(helpers.notice(F, "0000005001", qty=10, price=70_000))
        await drain()
        tracked = await service.submit("005930", Side.BUY, 10, price=70_000)
        assert tracked.order_id == "0000005001"
        assert tracked.status is OrderStatus.FILLED


async def test_cancel_then_cancel_notice(port: Any, helpers: Any) -> None:
    """cancel() asks the broker; the cancel notice (naming the original) ends the order."""
    async with OrderService(port) as service:
        tracked = await service.submit("005930", Side.BUY, 10, price=70_000)
        oid = tracked.order_id
        port.stream.queue.put_nowait(helpers.notice(F, oid, qty=3, price=70_000))
        assert await service.cancel(tracked) is True
        port.stream.queue.put_nowait(helpers.notice(C, "0000009999", qty=7, original=oid))
        assert await tracked.wait_done(timeout=5) is OrderStatus.CANCELLED
    assert (tracked.filled_qty, tracked.cancelled_qty, tracked.remaining_qty) == (3, 7, 0)
    assert await tracked.wait_filled(timeout=1) is False


async def test_modify_follows_new_order_number(port: Any, helpers: Any) -> None:
    """modify(): the tracked order takes the new number; fills on it count."""
    async with OrderService(port) as service:
        tracked = await service.submit("005930", Side.BUY, 10, price=70_000)
        first = tracked.order_id
        port.stream.queue.put_nowait(helpers.notice(F, first, qty=2, price=70_000))
        await drain()
        same = await service.modify(tracked, price=70_100)
        assert same is tracked
        assert tracked.order_ids[0] == first
        assert tracked.order_id != first
        assert tracked.price == Decimal(70_100)
        port.stream.queue.put_nowait(helpers.notice(F, tracked.order_id, qty=8, price=70_100))
        assert await tracked.wait_filled(timeout=5)
    assert tracked.filled_qty == 10


async def test_modified_notice_registers_new_number(port: Any, helpers: Any) -> None:
    """A modification made elsewhere (notice naming the original) is followed too."""
    async with OrderService(port) as service:
        tracked = await service.submit("005930", Side.BUY, 4, price=70_000)
        first = tracked.order_id
        port.stream.queue.put_nowait(
            helpers.notice(M, "0000007777", qty=4, price=69_900, original=first)
        )
        port.stream.queue.put_nowait(helpers.notice(F, "0000007777", qty=4, price=69_900))
        assert await tracked.wait_filled(timeout=5)
    assert tracked.order_ids == (first, "0000007777")


async def test_rejected_notice(port: Any, helpers: Any) -> None:
    """A rejection of the order itself ends it REJECTED with nothing remaining."""
    async with OrderService(port) as service:
        tracked = await service.submit("005930", Side.BUY, 4, price=70_000)
        port.stream.queue.put_nowait(helpers.notice(R, tracked.order_id, qty=4, price=70_000))
        assert await tracked.wait_done(timeout=5) is OrderStatus.REJECTED
    assert tracked.remaining_qty == 0


async def test_wait_times_out(port: Any) -> None:
    """wait_filled raises TimeoutError when nothing happens in time."""
    async with OrderService(port) as service:
        tracked = await service.submit("005930", Side.BUY, 4, price=70_000)
        with pytest.raises(TimeoutError):
            await tracked.wait_filled(timeout=0.05)


async def test_track_rebuilds_from_order_rows(port: Any, helpers: Any) -> None:
    """track(order_id) after a restart: state from today's orders, then live notices."""
    from kis_async.models import OrderRequest

    request = OrderRequest("005930", Side.SELL, 10, price=70_000)
    port.rows.append(
        helpers.make_order("0000000321", request, filled_qty=6, status=OrderStatus.PARTIALLY_FILLED)
    )
    async with OrderService(port) as service:
        tracked = await service.track("0000000321")
        assert (tracked.side, tracked.filled_qty, tracked.remaining_qty, tracked.status) == (
            Side.SELL,
            6,
            4,
            OrderStatus.PARTIALLY_FILLED,
        )
        assert await service.track("0000000321") is tracked
        port.stream.queue.put_nowait(
            helpers.notice(F, "0000000321", qty=4, price=70_000, side=Side.SELL)
        )
        assert await tracked.wait_filled(timeout=5)
        with pytest.raises(InvalidOrderError):
            await service.track("0000000999")


async def test_open_orders_returns_tracked_orders(port: Any, helpers: Any) -> None:
    """open_orders(): known orders are the same objects; unknown ones become tracked."""
    from kis_async.models import OrderRequest

    port.rows.append(
        helpers.make_order("0000000111", OrderRequest("000660", "buy", 3, price=100_000))
    )
    async with OrderService(port) as service:
        mine = await service.submit("005930", Side.BUY, 1, price=70_000)
        found = await service.open_orders()
    assert mine in found
    assert {t.order_id for t in found} == {"0000000111", mine.order_id}


async def test_polling_without_stream(helpers: Any) -> None:
    """No execution stream (no hts_id): the service polls today's orders instead."""
    from kis_async.models import OrderRequest

    port = helpers.FakePort(with_stream=False)
    async with OrderService(port, poll_interval=0.01) as service:
        assert service.following == "polling"
        tracked = await service.submit("005930", Side.BUY, 10, price=70_000)
        row = port.rows[0]
        port.rows[0] = row.model_copy(
            update={
                "filled_qty": 10,
                "remaining_qty": 0,
                "avg_fill_price": Decimal(70_000),
                "status": OrderStatus.FILLED,
            }
        )
        assert await tracked.wait_filled(timeout=5)
    assert tracked.avg_fill_price == Decimal(70_000)
    _ = OrderRequest


# -- pre-trade limits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "kwargs"),
    [
        (PreTradeLimits(max_notional_per_order=1_000_000), {"qty": 15, "price": 70_000}),
        (PreTradeLimits(max_position_per_symbol=10), {"qty": 11, "price": 70_000}),
    ],
)
async def test_limits_reject_with_zero_network_calls(
    port: Any, limits: PreTradeLimits, kwargs: dict[str, Any]
) -> None:
    """A breached limit raises InvalidOrderError and the broker sees no call at all."""
    service = OrderService(port, limits=limits)
    with pytest.raises(InvalidOrderError, match="pre-trade limit"):
        await service.submit("005930", Side.BUY, **kwargs)
    assert port.calls == []
    await service.aclose()


async def test_orders_per_minute_limit(port: Any) -> None:
    """The (n+1)th order within a minute is refused before sending."""
    async with OrderService(port, limits=PreTradeLimits(max_orders_per_minute=2)) as service:
        await service.submit("005930", Side.BUY, 1, price=70_000)
        await service.submit("005930", Side.BUY, 1, price=70_000)
        before = list(port.calls)
        with pytest.raises(InvalidOrderError, match="per minute"):
            await service.submit("005930", Side.BUY, 1, price=70_000)
        assert port.calls == before


async def test_position_limit_counts_holdings_and_open_buys(port: Any) -> None:
    """Held shares + open buys + the new order must stay within the cap; sells pass."""
    port.holdings = [Position(symbol="005930", qty=5)]
    async with OrderService(port, limits=PreTradeLimits(max_position_per_symbol=10)) as service:
        await service.submit("005930", Side.BUY, 3, price=70_000)
        with pytest.raises(InvalidOrderError, match="would reach 11"):
            await service.submit("005930", Side.BUY, 3, price=70_000)
        await service.submit("005930", Side.BUY, 2, price=70_000)
        await service.submit("005930", Side.SELL, 5, price=70_000)
    assert port.calls.count("get_stock_balance") == 1
    assert port.calls.count("place_order") == 3


async def test_market_order_notional_uses_upper_limit(port: Any) -> None:
    """For market orders the notional check prices at the day's upper limit."""
    limits = PreTradeLimits(max_notional_per_order=1_000_000)
    async with OrderService(port, limits=limits) as service:
        with pytest.raises(InvalidOrderError, match="notional 1092000"):
            await service.submit("005930", Side.BUY, 12, order_type=OrderType.MARKET)
        assert "place_order" not in port.calls
        await service.submit("005930", Side.BUY, 10, order_type=OrderType.MARKET)


async def test_invalid_order_rejected_before_any_call(port: Any) -> None:
    """OrderRequest validation errors surface before any broker call."""
    service = OrderService(port)
    with pytest.raises(InvalidOrderError):
        await service.submit("005930", Side.BUY, 10, price=70_001)
    assert port.calls == []


def test_limits_are_validated() -> None:
    """Non-positive limits are refused."""
    with pytest.raises(ValueError, match="max_orders_per_minute"):
        PreTradeLimits(max_orders_per_minute=0)


async def test_closed_service_refuses_work(port: Any) -> None:
    """After aclose, submit raises RuntimeError; no task is left running."""
    service = OrderService(port)
    await service.start()
    await service.aclose()
    with pytest.raises(RuntimeError):
        await service.submit("005930", Side.BUY, 1, price=70_000)
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert not any(n.startswith("kis-async-order-service") for n in names)


def test_tracked_order_repr_has_state() -> None:
    """The repr shows the order number and status."""
    tracked = TrackedOrder(order_id="0000000001", symbol="005930", side=Side.BUY, qty=1)
    assert "0000000001" in repr(tracked)
    assert "open" in repr(tracked)
