"""How to test a strategy: fast and deterministic with MockBroker, end to end with the simulator.

    python -m pytest examples/test_my_strategy.py

The strategy is written against :class:`kis_async.BrokerPort`, so the same code runs on
``MockBroker`` (you push the quotes), on ``KISBroker`` pointed at the simulator (real sockets,
the real wire protocol), and on ``KISBroker`` with your account.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from kis_async import (
    BrokerPort,
    KISBroker,
    MockBroker,
    Mode,
    OrderRejectedError,
    OrderRequest,
    OrderType,
)
from kis_async.models import tick_size
from kis_async.sim import KISSimulator

pytestmark = pytest.mark.asyncio

SYMBOL = "005930"


class DipBuyer:
    """The strategy under test: buy ``qty`` shares at market once the price has fallen on
    ``falls`` consecutive trades; at most one order per symbol per session (the idempotency
    key makes that true even if ``place_order`` is retried)."""

    def __init__(self, broker: BrokerPort, symbol: str, *, qty: int = 1, falls: int = 2) -> None:
        self.broker = broker
        self.symbol = symbol
        self.qty = qty
        self.falls = falls
        self.order_id: str | None = None

    async def run(self) -> None:
        previous: Decimal | None = None
        falls = 0
        async with self.broker.quotes([self.symbol]) as quotes:
            async for quote in quotes:
                falls = falls + 1 if previous is not None and quote.price < previous else 0
                previous = quote.price
                if falls >= self.falls:
                    request = OrderRequest(
                        self.symbol,
                        "buy",
                        self.qty,
                        order_type=OrderType.MARKET,
                        idempotency_key=f"dip-{self.symbol}",
                    )
                    self.order_id = await self.broker.place_order(request)
                    return


async def test_buys_after_two_falls_with_mock_broker() -> None:
    """With MockBroker: push quotes one by one, let the strategy react, check the account."""
    broker = MockBroker(cash=1_000_000, prices={SYMBOL: 70_000})
    async with broker:
        strategy = DipBuyer(broker, SYMBOL)
        task = asyncio.create_task(strategy.run())
        await broker.wait_subscribed([SYMBOL])  # quotes pushed before this would be missed
        for price in (70_000, 69_900, 70_000, 69_900):
            broker.push_quote(SYMBOL, price)
            await broker.settle()  # the strategy has seen the quote and acted on it
        assert strategy.order_id is None  # only one fall in a row so far
        broker.push_quote(SYMBOL, 69_800)
        await broker.settle()
        await asyncio.wait_for(task, 1)

        assert strategy.order_id is not None
        [order] = await broker.get_orders()
        assert (order.broker_order_id, order.filled_qty) == (strategy.order_id, 1)
        [position] = await broker.get_stock_balance()
        assert position.qty == 1
        assert await broker.get_cash() == Decimal(1_000_000 - 69_800)


async def test_same_key_never_buys_twice_with_mock_broker() -> None:
    """Running the strategy twice (a restart, say) sends one order: same idempotency key."""
    broker = MockBroker(cash=1_000_000, prices={SYMBOL: 70_000})
    async with broker:
        for _ in range(2):
            strategy = DipBuyer(broker, SYMBOL, falls=1)
            task = asyncio.create_task(strategy.run())
            await broker.wait_subscribed([SYMBOL])
            for price in (70_000, 69_900):
                broker.push_quote(SYMBOL, price)
                await broker.settle()
            await asyncio.wait_for(task, 1)
        assert len(broker.requests) == 1
        assert len(await broker.get_orders()) == 1


async def test_rejection_surfaces_with_mock_broker() -> None:
    """Business rules are enforced: without cash, the order is rejected like KIS would."""
    broker = MockBroker(cash=10_000, prices={SYMBOL: 70_000})
    async with broker:
        strategy = DipBuyer(broker, SYMBOL, falls=1)
        task = asyncio.create_task(strategy.run())
        await broker.wait_subscribed([SYMBOL])
        broker.push_quote(SYMBOL, 70_000)
        broker.push_quote(SYMBOL, 69_900)
        with pytest.raises(OrderRejectedError, match="insufficient buying power"):
            await asyncio.wait_for(task, 1)


async def test_buys_on_the_simulator() -> None:
    """End to end: the simulator speaks the KIS protocol over real sockets on 127.0.0.1; we
    push its price down until the strategy buys, then read the order back over REST.

    ``quote_interval=None`` stops the simulator's own random market: prices move only when
    the test calls ``sim.exchange.set_price``, so the run is deterministic."""
    async with (
        KISSimulator(seed=42, mode=Mode.PAPER, quote_interval=None).serve(port=0) as sim,
        KISBroker(sim.config()) as broker,
    ):
        strategy = DipBuyer(broker, SYMBOL)
        task = asyncio.create_task(strategy.run())
        price = sim.exchange.price(SYMBOL)
        async with asyncio.timeout(20):
            while not task.done():
                price -= tick_size(price - 1)
                sim.exchange.set_price(SYMBOL, price)
                await asyncio.sleep(0.2)
        await task
        assert strategy.order_id is not None
        orders = {o.broker_order_id: o for o in await broker.get_orders()}
        assert orders[strategy.order_id].qty == 1
        assert any(p.symbol == SYMBOL for p in await broker.get_stock_balance())
