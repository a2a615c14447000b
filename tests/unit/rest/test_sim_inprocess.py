"""RestClient against the simulator's ASGI app in process (no sockets): the wire shapes agree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from kis_async.config import Mode
from kis_async.models import OrderRequest, OrderStatus, Side
from kis_async.rest.client import RestClient
from kis_async.sim import KISSimulator


@pytest.fixture(params=[Mode.PAPER, Mode.LIVE])
async def sim_client(request: pytest.FixtureRequest) -> AsyncIterator[RestClient]:
    """A RestClient wired to an in-process simulator (rate limit off on both sides)."""
    sim = KISSimulator(seed=99, mode=request.param, rate_limit=False, quote_interval=None)
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport) as http:
        client = RestClient(sim.config(requests_per_second=None), http_client=http)
        try:
            yield client
        finally:
            await client.aclose()


async def test_quotes_and_account(sim_client: RestClient) -> None:
    """Price, order book, cash, buying power and balance decode from the simulator."""
    price = await sim_client.get_price("005930")
    assert price.symbol == "005930"
    assert price.price > 0
    book = await sim_client.get_orderbook("005930")
    assert book.asks
    assert book.bids
    assert book.asks[0].price > book.bids[0].price
    cash = await sim_client.get_cash()
    assert cash > 0
    power = await sim_client.get_buying_power("005930")
    assert power.orderable_cash is not None
    assert power.orderable_cash > 0
    assert isinstance(await sim_client.get_stock_balance(), list)


async def test_order_lifecycle_and_paging(sim_client: RestClient) -> None:
    """Resting orders page through get_orders, show as open, cancel once (True then False)."""
    price = (await sim_client.get_price("005930")).price
    tick = Decimal(100)
    resting = (price * Decimal("0.8") // tick) * tick
    placed = [
        await sim_client.place_order(OrderRequest("005930", Side.BUY, 1, price=resting))
        for _ in range(18)
    ]
    assert len({p.order_id for p in placed}) == 18
    orders = await sim_client.get_orders()
    ids = {o.broker_order_id.lstrip("0") for o in orders}
    assert {p.order_id.lstrip("0") for p in placed} <= ids
    open_orders = await sim_client.get_open_orders()
    assert {p.order_id.lstrip("0") for p in placed} <= {
        o.broker_order_id.lstrip("0") for o in open_orders
    }
    assert all(o.status is OrderStatus.OPEN for o in open_orders)
    target = placed[0].order_id
    new_id = await sim_client.modify_order(target, qty=None, price=resting - tick, order_type=None)
    assert new_id != target
    assert await sim_client.cancel_order(new_id) is True
    assert await sim_client.cancel_order(new_id) is False
