"""Closing the broker with orders in flight (real sockets, 127.0.0.1): keyed callers get
OrderStateUnknownError, unkeyed ones BrokerClosedError with ``request_sent`` right, nobody a
bare RuntimeError; the next open on the same journal settles every key without re-sending."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kis_async import (
    BrokerClosedError,
    BrokerConnectionError,
    KISBroker,
    OrderRequest,
    OrderStateUnknownError,
    PlacementOptions,
    Side,
    SQLiteJournal,
)
from kis_async.orders.journal import EntryState
from kis_async.sim import KISSimulator

SETTLE = PlacementOptions(
    reconcile_attempts=3, reconcile_interval=0.1, clock_tolerance=30.0, not_booked_after=600.0
)


def order(key: str | None, qty: int) -> OrderRequest:
    return OrderRequest("005930", Side.BUY, qty, price=70_000, idempotency_key=key)


def booked(sim: KISSimulator) -> list[Any]:
    return [o for o in sim.exchange.orders if o.kind == "new"]


async def _until(predicate: Callable[[], bool], limit: float = 20.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_close_with_orders_in_flight_then_reconcile(
    fast_sim: KISSimulator, make_broker: Callable[..., KISBroker], tmp_path: Path
) -> None:
    """Two keyed orders, one unkeyed order and a read in flight (the orders booked by KIS, the
    answers pending) when the broker closes: typed errors for all four; a new broker on the
    journal binds both keys without re-sending."""
    path = tmp_path / "orders.db"
    first = make_broker(journal=SQLiteJournal(path), options=SETTLE, timeout=30.0)
    await first.open()
    await first.authenticate()
    fast_sim.faults.delay_responses(3.0)
    calls = [
        asyncio.create_task(first.place_order(order("key-a", 1))),
        asyncio.create_task(first.place_order(order("key-b", 2))),
        asyncio.create_task(first.place_order(order(None, 3))),
        asyncio.create_task(first.get_price("005930")),
    ]
    await _until(lambda: fast_sim.stats.orders_received == 3 and fast_sim.stats.rest_requests >= 5)

    await asyncio.wait_for(first.aclose(), 20.0)
    results = await asyncio.gather(*calls, return_exceptions=True)

    keyed_a, keyed_b, unkeyed, read = results
    for result, key in ((keyed_a, "key-a"), (keyed_b, "key-b")):
        assert isinstance(result, OrderStateUnknownError), repr(result)
        assert result.idempotency_key == key
    assert isinstance(unkeyed, BrokerClosedError), repr(unkeyed)
    assert isinstance(unkeyed, BrokerConnectionError)
    assert unkeyed.request_sent is True
    assert isinstance(read, BrokerClosedError), repr(read)
    assert read.request_sent is True
    assert not any(type(r) is RuntimeError for r in results)

    fast_sim.faults.clear()
    journal = SQLiteJournal(path)
    async with make_broker(journal=journal, options=SETTLE) as second:
        by_qty = {o.qty: o.order_id for o in booked(fast_sim)}
        for key, qty in (("key-a", 1), ("key-b", 2)):
            entry = await journal.get(key)
            assert entry is not None
            assert (entry.state, entry.order_id) == (EntryState.PLACED, by_qty[qty])
            assert await second.place_order(order(key, qty)) == by_qty[qty]
    assert fast_sim.stats.orders_received == 3


async def test_order_queued_behind_the_rate_limit_is_not_sent(
    fast_sim: KISSimulator, make_broker: Callable[..., KISBroker], tmp_path: Path
) -> None:
    """An unkeyed order still waiting for its rate-limit slot when the broker closes gets
    BrokerClosedError(request_sent=False) and never reaches KIS; the keyed one queued with
    it gets OrderStateUnknownError and is proven not booked by reconcile() later."""
    path = tmp_path / "orders.db"
    first = KISBroker(
        fast_sim.config(requests_per_second=1.0),
        journal=SQLiteJournal(path),
        placement_options=SETTLE,
    )
    await first.open()
    await first.authenticate()
    fast_sim.faults.delay_responses(3.0)
    sent = asyncio.create_task(first.place_order(order(None, 1)))
    await _until(lambda: fast_sim.stats.orders_received == 1)
    queued = asyncio.create_task(first.place_order(order(None, 2)))
    queued_keyed = asyncio.create_task(first.place_order(order("key-q", 4)))
    await asyncio.sleep(0)

    await asyncio.wait_for(first.aclose(), 20.0)
    first_result, queued_result, keyed_result = await asyncio.gather(
        sent, queued, queued_keyed, return_exceptions=True
    )

    assert isinstance(first_result, BrokerClosedError), repr(first_result)
    assert first_result.request_sent is True
    assert isinstance(queued_result, BrokerClosedError), repr(queued_result)
    assert queued_result.request_sent is False
    assert isinstance(keyed_result, OrderStateUnknownError), repr(keyed_result)
    assert fast_sim.stats.orders_received == 1

    fast_sim.faults.clear()
    journal = SQLiteJournal(path)
    options = PlacementOptions(reconcile_attempts=1, reconcile_interval=0.0, not_booked_after=0.0)
    async with make_broker(journal=journal, options=options) as second:
        entry = await journal.get("key-q")
        assert entry is not None
        assert entry.state is EntryState.NOT_BOOKED
        # proven never booked: placing it again with its key sends it now
        await second.place_order(order("key-q", 4))
    assert fast_sim.stats.orders_received == 2


@pytest.mark.parametrize("keyed", [True, False])
async def test_call_after_close_is_lifecycle_misuse(
    make_broker: Callable[..., KISBroker], *, keyed: bool
) -> None:
    """A call made after aclose() (not in flight) is RuntimeError, as before."""
    broker = make_broker()
    await broker.open()
    await broker.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await broker.place_order(order("k" if keyed else None, 1))
