"""Bad orders never reach the wire: InvalidOrderError with zero requests made."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import respx

from kis_async.errors import InvalidOrderError
from kis_async.models import OrderRequest, OrderType, Side

BAD_ORDERS: list[dict[str, Any]] = [
    {"symbol": "5930", "side": Side.BUY, "qty": 1, "price": 70000},
    {"symbol": "0059300", "side": Side.BUY, "qty": 1, "price": 70000},
    {"symbol": "", "side": Side.BUY, "qty": 1, "price": 70000},
    {"symbol": 5930, "side": Side.BUY, "qty": 1, "price": 70000},
    {"symbol": "Q12345", "side": Side.BUY, "qty": 1, "price": 70000},
    {"symbol": "005930", "side": "hold", "qty": 1, "price": 70000},
    {"symbol": "005930", "side": Side.BUY, "qty": 0, "price": 70000},
    {"symbol": "005930", "side": Side.BUY, "qty": -5, "price": 70000},
    {"symbol": "005930", "side": Side.BUY, "qty": 1.0, "price": 70000},
    {"symbol": "005930", "side": Side.BUY, "qty": "1", "price": 70000},
    {"symbol": "005930", "side": Side.BUY, "qty": True, "price": 70000},
    {"symbol": "005930", "side": Side.BUY, "qty": 10**12, "price": 70000},
    {"symbol": "005930", "side": Side.BUY, "qty": 1},
    {"symbol": "005930", "side": Side.BUY, "qty": 1, "price": 0},
    {"symbol": "005930", "side": Side.BUY, "qty": 1, "price": -70000},
    {"symbol": "005930", "side": Side.BUY, "qty": 1, "price": 70050},
    {"symbol": "005930", "side": Side.BUY, "qty": 1, "price": Decimal("70000.5")},
    {"symbol": "005930", "side": Side.BUY, "qty": 1, "price": 70000.5},
    {"symbol": "005930", "side": Side.BUY, "qty": 1, "price": "abc"},
    {"symbol": "005930", "side": Side.BUY, "qty": 1, "price": float("nan")},
    {"symbol": "005930", "side": Side.BUY, "qty": 1, "price": 1999.5},
    {"symbol": "005930", "side": Side.BUY, "qty": 1, "price": 4999},
    {
        "symbol": "005930",
        "side": Side.SELL,
        "qty": 1,
        "price": 70000,
        "order_type": OrderType.MARKET,
    },
    {"symbol": "005930", "side": Side.SELL, "qty": 1, "order_type": "99"},
    {"symbol": "005930", "side": Side.SELL, "qty": 1, "price": 70000, "idempotency_key": ""},
    {"symbol": "005930", "side": Side.SELL, "qty": 1, "price": 70000, "idempotency_key": "x" * 500},
]


@pytest.mark.parametrize("fields", BAD_ORDERS)
async def test_bad_order_makes_no_request(
    client: Any, router: respx.MockRouter, fields: dict[str, Any]
) -> None:
    """Each bad order raises InvalidOrderError (a ValueError) and nothing is sent."""

    async def build_and_place() -> None:
        await client.place_order(OrderRequest(**fields))

    with pytest.raises(InvalidOrderError) as info:
        await build_and_place()
    assert isinstance(info.value, ValueError)
    assert router.calls.call_count == 0


async def test_place_order_needs_an_order_request(client: Any, router: respx.MockRouter) -> None:
    """A non-OrderRequest is refused before any request."""
    with pytest.raises(InvalidOrderError):
        await client.place_order({"symbol": "005930"})
    assert router.calls.call_count == 0
