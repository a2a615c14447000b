"""KISBroker's REST methods end to end against the simulator over real sockets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from kis_async import (
    InvalidOrderError,
    KISBroker,
    OrderRejectedError,
    OrderRequest,
    OrderStatus,
    OrderType,
)
from kis_async.models import KST, is_on_tick, tick_size
from kis_async.sim import KISSimulator

SYMBOL = "005930"


async def test_token_is_issued_once_and_reused(sim: KISSimulator, broker: KISBroker) -> None:
    """Two authenticate() calls give the same unexpired token from one issuance."""
    first = await broker.authenticate()
    second = await broker.authenticate()
    assert first.value.get_secret_value() == second.value.get_secret_value()
    assert first.expires_at > datetime.now(KST)
    assert sim.stats.tokens_issued == 1


async def test_price_and_orderbook(broker: KISBroker) -> None:
    """Price snapshot and 10-level book are typed, on the tick grid and ordered best first."""
    snap = await broker.get_price(SYMBOL)
    assert snap.symbol == SYMBOL
    assert is_on_tick(snap.price)
    assert snap.upper_limit is not None
    assert snap.lower_limit is not None
    assert snap.lower_limit < snap.price < snap.upper_limit
    book = await broker.get_orderbook(SYMBOL)
    assert book.symbol == SYMBOL
    assert len(book.asks) == 10
    assert len(book.bids) == 10
    assert [lvl.price for lvl in book.asks] == sorted(lvl.price for lvl in book.asks)
    assert [lvl.price for lvl in book.bids] == sorted(
        (lvl.price for lvl in book.bids), reverse=True
    )
    assert book.spread is not None
    assert book.spread > 0


async def test_market_buy_fills_and_shows_in_account(sim: KISSimulator, broker: KISBroker) -> None:
    """A market buy fills; the order, the holding and the lower deposit are all visible."""
    cash_before = await broker.get_cash()
    order_id = await broker.place_order(OrderRequest(SYMBOL, "buy", 3, order_type=OrderType.MARKET))
    assert order_id.isdigit()
    orders = {o.broker_order_id: o for o in await broker.get_orders()}
    order = orders[order_id]
    assert order.symbol == SYMBOL
    assert order.filled_qty == 3
    assert order.status is OrderStatus.FILLED
    assert order.avg_fill_price is not None
    assert order.avg_fill_price > 0
    positions = {p.symbol: p for p in await broker.get_stock_balance()}
    assert positions[SYMBOL].qty >= 3
    # The deposit (dnca_tot_amt) settles D+2, as on KIS: a same-day buy leaves it alone.
    assert await broker.get_cash() == cash_before
    sim.exchange.check_invariants()


async def test_resting_order_modify_then_cancel(sim: KISSimulator, broker: KISBroker) -> None:
    """A far-off limit rests; modify returns a new number; cancel is True once, then False."""
    snap = await broker.get_price(SYMBOL)
    assert snap.lower_limit is not None
    low = snap.lower_limit
    order_id = await broker.place_order(OrderRequest(SYMBOL, "buy", 2, price=low))
    assert order_id in {o.broker_order_id for o in await broker.get_open_orders()}
    new_id = await broker.modify_order(order_id, price=low + tick_size(low))
    assert new_id != order_id
    assert await broker.cancel_order(new_id) is True
    assert await broker.cancel_order(new_id) is False
    still_open = {o.broker_order_id for o in await broker.get_open_orders()}
    assert order_id not in still_open
    assert new_id not in still_open
    sim.exchange.check_invariants()


async def test_orders_are_read_across_pages(sim: KISSimulator, broker: KISBroker) -> None:
    """More orders than one paper page (15 rows) come back complete."""
    snap = await broker.get_price(SYMBOL)
    assert snap.lower_limit is not None
    placed = {
        await broker.place_order(OrderRequest(SYMBOL, "buy", 1, price=snap.lower_limit))
        for _ in range(17)
    }
    seen = {o.broker_order_id for o in await broker.get_orders()}
    assert placed <= seen
    assert len(seen) >= 17


async def test_buying_power(broker: KISBroker) -> None:
    """Buying power reports orderable cash and a positive max quantity."""
    snap = await broker.get_price(SYMBOL)
    power = await broker.get_buying_power(SYMBOL, snap.price)
    assert power.orderable_cash is not None
    assert power.orderable_cash > 0
    assert power.max_buy_qty is not None
    assert power.max_buy_qty > 0


async def test_business_rejections_are_typed(broker: KISBroker) -> None:
    """Selling shares we do not hold and buying beyond cash raise OrderRejectedError."""
    with pytest.raises(OrderRejectedError) as sell:
        await broker.place_order(OrderRequest("000660", "sell", 10, order_type=OrderType.MARKET))
    assert sell.value.msg_cd
    with pytest.raises(OrderRejectedError):
        await broker.place_order(
            OrderRequest(SYMBOL, "buy", 9_000_000, order_type=OrderType.MARKET)
        )


async def test_cancel_unknown_order_is_invalid(broker: KISBroker) -> None:
    """Cancelling an order id that is not among today's orders raises InvalidOrderError."""
    with pytest.raises(InvalidOrderError):
        await broker.cancel_order("9999999999")
    with pytest.raises(InvalidOrderError):
        await broker.cancel_order("not-a-number")


async def test_live_mode_open_orders(sim_live: KISSimulator) -> None:
    """In live mode open orders come from inquire-psbl-rvsecncl."""
    async with KISBroker(sim_live.config(requests_per_second=None)) as live:
        snap = await live.get_price(SYMBOL)
        assert snap.lower_limit is not None
        order_id = await live.place_order(OrderRequest(SYMBOL, "buy", 1, price=snap.lower_limit))
        open_orders = await live.get_open_orders()
        assert order_id in {o.broker_order_id for o in open_orders}
        assert await live.cancel_order(order_id) is True


async def test_lifecycle(sim: KISSimulator) -> None:
    """aclose() is idempotent and any call after it raises RuntimeError."""
    broker = KISBroker(sim.config(requests_per_second=None))
    async with broker:
        assert (await broker.get_price(SYMBOL)).price > Decimal(0)
    await broker.aclose()
    with pytest.raises(RuntimeError):
        await broker.get_price(SYMBOL)
    with pytest.raises(RuntimeError):
        await broker.open()
    assert "12345678" not in repr(broker)
