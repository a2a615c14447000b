"""TrackedOrder state from order rows (polling, track after restart) and over MockBroker."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kis_async import MockBroker
from kis_async.models import ExecutionKind, OrderRequest, OrderStatus, Side
from kis_async.orders.service import OrderService, TrackedOrder

REQ = OrderRequest("005930", Side.BUY, 10, price=70_000)


def tracked() -> TrackedOrder:
    return TrackedOrder(
        order_id="0000000001", symbol="005930", side=Side.BUY, qty=10, price=Decimal(70_000)
    )


def test_sync_follows_modification_rows_and_sums_fills(helpers: Any) -> None:
    """The original (3 filled, 7 moved) plus its revision (7 open, 2 filled) add up."""
    original = helpers.make_order("0000000001", REQ, filled_qty=3).model_copy(
        update={
            "remaining_qty": 0,
            "cancelled_qty": 7,
            "avg_fill_price": Decimal(70_000),
            "status": OrderStatus.CANCELLED,
        }
    )
    revision = helpers.make_order(
        "0000000002",
        OrderRequest("005930", Side.BUY, 7, price=70_100),
        original_order_id="0000000001",
        filled_qty=2,
    ).model_copy(update={"avg_fill_price": Decimal(70_100)})
    order = tracked()
    assert order._sync([original, revision]) == 5
    assert order.order_ids == ("0000000001", "0000000002")
    assert order.price == Decimal(70_100)
    assert (order.filled_qty, order.remaining_qty, order.status) == (
        5,
        5,
        OrderStatus.PARTIALLY_FILLED,
    )
    assert order.avg_fill_price == (Decimal(70_000) * 3 + Decimal(70_100) * 2) / 5


def test_sync_cancel_row_ends_the_order(helpers: Any) -> None:
    """A cancellation row is not a revision; the original with nothing open is CANCELLED."""
    original = helpers.make_order("0000000001", REQ, filled_qty=4).model_copy(
        update={"remaining_qty": 0, "cancelled_qty": 6, "status": OrderStatus.CANCELLED}
    )
    cancel = helpers.make_order(
        "0000000009",
        OrderRequest("005930", Side.BUY, 6, price=70_000),
        original_order_id="0000000001",
    ).model_copy(update={"remaining_qty": 0, "cancelled_qty": 6, "status": OrderStatus.CANCELLED})
    order = tracked()
    order._sync([original, cancel])
    assert order.order_ids == ("0000000001",)
    assert (order.status, order.filled_qty, order.cancelled_qty) == (OrderStatus.CANCELLED, 4, 6)


def test_sync_rejected_row(helpers: Any) -> None:
    """A row rejected in full makes the order REJECTED."""
    row = helpers.make_order("0000000001", REQ).model_copy(
        update={"remaining_qty": 0, "rejected_qty": 10, "status": OrderStatus.REJECTED}
    )
    order = tracked()
    order._sync([row])
    assert order.status is OrderStatus.REJECTED
    assert order.remaining_qty == 0


def test_sync_never_goes_backwards(helpers: Any) -> None:
    """Rows older than the notices already applied do not undo fills."""
    order = tracked()
    order._apply(helpers.notice(ExecutionKind.FILLED, "0000000001", qty=5, price=70_000))
    order._sync([helpers.make_order("0000000001", REQ, filled_qty=2)])
    assert (order.filled_qty, order.remaining_qty) == (5, 5)


async def test_service_over_mock_broker() -> None:
    """OrderService works over MockBroker: partial fill, fill, cancel and modify."""
    async with (
        MockBroker(cash=10_000_000, prices={"005930": 70_000}) as broker,
        OrderService(broker) as service,
    ):
        assert service.following == "stream"
        first = await service.submit("005930", Side.BUY, 10, price=69_900)
        broker.push_quote("005930", 69_900, volume=4)
        await broker.settle()
        assert (first.status, first.filled_qty) == (OrderStatus.PARTIALLY_FILLED, 4)
        broker.push_quote("005930", 69_800)
        assert await first.wait_filled(timeout=5)

        second = await service.submit("005930", Side.BUY, 5, price=60_000)
        assert await service.cancel(second)
        assert await second.wait_done(timeout=5) is OrderStatus.CANCELLED

        third = await service.submit("005930", Side.BUY, 5, price=60_000)
        await service.modify(third, price=61_000)
        broker.push_quote("005930", 60_900)
        assert await third.wait_filled(timeout=5)
        assert third.avg_fill_price == 61_000
        assert len(third.order_ids) == 2
