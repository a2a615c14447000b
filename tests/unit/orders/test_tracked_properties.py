"""Property: whatever notices arrive, a tracked order's quantities stay consistent."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from kis_async.models import Execution, ExecutionKind, OrderStatus, OrderType, Side
from kis_async.orders.service import TrackedOrder

OWN = "0000000001"

event = st.tuples(
    st.sampled_from(
        [
            ExecutionKind.FILLED,
            ExecutionKind.FILLED,
            ExecutionKind.CANCELLED,
            ExecutionKind.ACCEPTED,
        ]
    ),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=1_000, max_value=1_010),
)


def make(kind: ExecutionKind, qty: int, price: int) -> Execution:
    cancel = kind is ExecutionKind.CANCELLED
    return Execution(
        kind=kind,
        broker_order_id="0000000002" if cancel else OWN,
        original_order_id=OWN if cancel else None,
        branch_no="00950",
        symbol="001440",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        qty=qty,
        price=Decimal(price),
        order_qty=qty,
        time=None,
    )


@settings(max_examples=200, deadline=None)
@given(qty=st.integers(min_value=1, max_value=100), events=st.lists(event, max_size=30))
def test_quantities_always_add_up(qty: int, events: list[tuple[ExecutionKind, int, int]]) -> None:
    """filled + cancelled + remaining == qty, the average stays within the fill prices, and a
    done order never changes again."""
    order = TrackedOrder(order_id=OWN, symbol="001440", side=Side.BUY, qty=qty)
    done_state: tuple[OrderStatus, int, int] | None = None
    for kind, n, price in events:
        order._apply(make(kind, n, price))
        assert order.filled_qty + order.cancelled_qty + order.remaining_qty == qty
        assert 0 <= order.filled_qty <= qty
        if order.filled_qty:
            assert order.avg_fill_price is not None
            assert 1_000 <= order.avg_fill_price <= 1_010
        if order.status is OrderStatus.FILLED:
            assert order.filled_qty == qty
        if done_state is not None:
            assert (order.status, order.filled_qty, order.cancelled_qty) == done_state
        if order.is_done:
            done_state = (order.status, order.filled_qty, order.cancelled_qty)
