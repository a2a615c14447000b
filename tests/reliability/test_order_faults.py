"""Orders under REST faults: a booked order whose response is lost exists exactly once, and
an EGW00201 storm neither surfaces to reads nor books an order twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from kis_async import (
    BrokerTimeoutError,
    KISBroker,
    OrderRequest,
    OrderType,
    PriceSnapshot,
    ServerError,
)
from kis_async.sim import KISSimulator

from .conftest import served

pytestmark = pytest.mark.reliability

ORDER_PATHS = ("/order-cash", "/order-rvsecncl")


@asynccontextmanager
async def counting_broker(sim: KISSimulator) -> AsyncIterator[tuple[KISBroker, list[str]]]:
    """A broker whose HTTP client records the path of every order POST it sends."""
    sent: list[str] = []

    async def hook(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith(ORDER_PATHS):
            sent.append(request.url.path)

    async with (
        httpx.AsyncClient(timeout=5.0, event_hooks={"request": [hook]}) as http,
        KISBroker(sim.config(), http_client=http) as broker,
    ):
        yield broker, sent


def _limit_buy(sim: KISSimulator, key: str | None = None) -> OrderRequest:
    price = sim.exchange.price("005930")
    return OrderRequest("005930", "buy", 3, price=price - 1_000, idempotency_key=key)


async def test_dropped_response_with_key_binds_the_one_booked_order() -> None:
    """The order is booked, the response is lost: the keyed call returns that order's id."""
    async with (
        served(rate_limit=False, quote_interval=None) as sim,
        counting_broker(sim) as (broker, sent),
    ):
        await broker.authenticate()
        sim.faults.drop_next_order_response()
        order_id = await broker.place_order(_limit_buy(sim, key="reliability-drop-1"))
        again = await broker.place_order(_limit_buy(sim, key="reliability-drop-1"))
        booked = [o.order_id for o in sim.exchange.orders]
    print(
        f"\ndropped order response (idempotency key): order POSTs sent {len(sent)}, orders at "
        f"the exchange {len(booked)}, returned id matches: {booked == [order_id]}, "
        f"repeat call returned the same id: {again == order_id}"
    )
    assert len(sent) == 1
    assert booked == [order_id]
    assert again == order_id


async def test_dropped_response_without_key_is_not_resent() -> None:
    """Without a key the caller gets BrokerTimeoutError(request_sent=True); nothing is re-sent."""
    async with (
        served(rate_limit=False, quote_interval=None) as sim,
        counting_broker(sim) as (broker, sent),
    ):
        await broker.authenticate()
        sim.faults.drop_next_order_response()
        with pytest.raises(BrokerTimeoutError) as info:
            await broker.place_order(_limit_buy(sim))
        await asyncio.sleep(0.2)  # a stray retry would land within this window
        booked = len(sim.exchange.orders)
    print(
        f"\ndropped order response (no key): {type(info.value).__name__} "
        f"request_sent={info.value.request_sent}, order POSTs sent {len(sent)}, "
        f"orders at the exchange {booked}"
    )
    assert info.value.request_sent is True
    assert len(sent) == 1
    assert booked == 1


async def test_egw00201_storm_is_absorbed_by_reads_and_books_orders_once() -> None:
    """A storm of EGW00201: 20 concurrent reads all succeed; an order is booked exactly once;
    a bare 500 on an order is surfaced as ServerError and not re-sent."""
    async with (
        served(rate_limit=False, quote_interval=None) as sim,
        counting_broker(sim) as (broker, sent),
    ):
        await broker.authenticate()
        sim.faults.fail_next(40, kind="rate_limit")
        reads = await asyncio.gather(
            *(broker.get_price(("005930", "000660")[i % 2]) for i in range(20)),
            return_exceptions=True,
        )
        read_failures = [r for r in reads if not isinstance(r, PriceSnapshot)]
        injected_reads = sim.stats.faults_injected

        sim.faults.fail_next(2, kind="rate_limit")
        order_id = await broker.place_order(_limit_buy(sim))
        posts_rate_limited = len(sent)
        booked_after_storm = [o.order_id for o in sim.exchange.orders]

        sim.faults.fail_next(1, kind="server_error")
        with pytest.raises(ServerError):
            await broker.place_order(OrderRequest("005930", "buy", 1, order_type=OrderType.MARKET))
        posts_total = len(sent)
        booked_total = len(sim.exchange.orders)
    print(
        f"\nEGW00201 storm: {injected_reads} rejections injected under 20 concurrent reads -> "
        f"{len(read_failures)} errors surfaced; order under 2 rejections: {posts_rate_limited} "
        f"POSTs, {len(booked_after_storm)} booked; bare 500 on an order: ServerError, "
        f"{posts_total - posts_rate_limited} POST, {booked_total - 1} booked"
    )
    assert read_failures == []
    assert injected_reads == 40
    assert posts_rate_limited == 3
    assert booked_after_storm == [order_id]
    assert posts_total - posts_rate_limited == 1
    assert booked_total == 1
