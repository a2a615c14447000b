"""OrderService and TrackedOrder run on MockBroker exactly as on KISBroker."""

from __future__ import annotations

from decimal import Decimal

from kis_async import MockBroker, OrderService, OrderStatus, Side

SAMSUNG = "005930"


async def test_tracked_order_follows_mock_fills() -> None:
    """A resting order tracked by OrderService turns FILLED when a pushed quote crosses it."""
    broker = MockBroker(cash=5_000_000, prices={SAMSUNG: 70_000})
    async with broker, OrderService(broker) as orders:
        assert orders.following == "stream"
        tracked = await orders.submit(SAMSUNG, Side.BUY, 10, price=69_500)
        assert tracked.status is OrderStatus.OPEN
        broker.push_quote(SAMSUNG, 69_500, volume=4)
        await broker.settle()
        assert tracked.status is OrderStatus.PARTIALLY_FILLED
        assert tracked.filled_qty == 4
        broker.push_quote(SAMSUNG, 69_400)
        assert await tracked.wait_filled(timeout=2)
        assert tracked.avg_fill_price == Decimal(69_500)


async def test_tracked_order_modify_and_cancel_on_mock() -> None:
    """modify moves the tracked order to the new order number; cancel completes it."""
    broker = MockBroker(cash=5_000_000, prices={SAMSUNG: 70_000})
    async with broker, OrderService(broker) as orders:
        tracked = await orders.submit(SAMSUNG, "buy", 3, price=68_000)
        first_id = tracked.order_id
        await orders.modify(tracked, price=68_500)
        assert tracked.order_id != first_id
        assert tracked.order_ids == (first_id, tracked.order_id)
        assert await orders.cancel(tracked) is True
        assert await tracked.wait_done(timeout=2) is OrderStatus.CANCELLED
        assert await broker.get_open_orders() == []
