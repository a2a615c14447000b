"""At-most-once order placement against the simulator's faults (real sockets, 127.0.0.1)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kis_async import (
    InvalidOrderError,
    KISBroker,
    OrderRequest,
    OrderStateUnknownError,
    Side,
    SQLiteJournal,
)
from kis_async.orders.journal import EntryState, JournalEntry
from kis_async.sim import KISSimulator


def buy(key: str | None = "key-1", qty: int = 3, price: int = 70_000) -> OrderRequest:
    return OrderRequest("005930", Side.BUY, qty, price=price, idempotency_key=key)


def booked(sim: KISSimulator) -> list[Any]:
    """New orders (not modify/cancel orders) in the simulated ledger."""
    return [o for o in sim.exchange.orders if o.kind == "new"]


async def test_dropped_response_returns_the_booked_order(
    fast_sim: KISSimulator, quick_broker: KISBroker
) -> None:
    """Accept the order, drop the response: one order at the exchange, its ODNO returned."""
    await quick_broker.authenticate()
    fast_sim.faults.drop_next_order_response()
    order_id = await quick_broker.place_order(buy())
    assert [o.order_id for o in booked(fast_sim)] == [order_id]
    assert fast_sim.stats.orders_received == 1
    entry = await quick_broker.journal.get("key-1")
    assert entry is not None
    assert (entry.state, entry.order_id) == (EntryState.PLACED, order_id)
    assert await quick_broker.place_order(buy()) == order_id
    assert fast_sim.stats.orders_received == 1


async def test_delayed_response_past_timeout_returns_the_booked_order(
    fast_sim: KISSimulator, quick_broker: KISBroker
) -> None:
    """A response slower than the client timeout: not re-sent, reconciled to the one order."""
    await quick_broker.authenticate()
    fast_sim.faults.delay_responses(2.5, count=1)
    order_id = await quick_broker.place_order(buy())
    assert [o.order_id for o in booked(fast_sim)] == [order_id]
    assert fast_sim.stats.orders_received == 1


async def test_dropped_response_without_key_is_not_resent(
    fast_sim: KISSimulator, quick_broker: KISBroker
) -> None:
    """Without a key, a dropped response raises (request_sent) and nothing is re-sent."""
    from kis_async import BrokerConnectionError

    await quick_broker.authenticate()
    fast_sim.faults.drop_next_order_response()
    with pytest.raises(BrokerConnectionError):
        await quick_broker.place_order(buy(key=None))
    assert len(booked(fast_sim)) == 1


async def test_unknown_outcome_then_reconcile_settles_to_the_order(
    fast_sim: KISSimulator, make_broker: Callable[..., KISBroker]
) -> None:
    """When the order cannot be seen at first, OrderStateUnknownError; reconcile() later
    binds the one order and place_order with the key returns it."""
    async with make_broker(timeout=1.0) as broker:
        await broker.authenticate()
        fast_sim.faults.drop_next_order_response()
        # every reconciliation poll fails (bare 5xx), so the outcome stays unknown
        placer_polls = broker._placer.options.reconcile_attempts
        real_get_orders = broker._rest.get_orders

        async def failing(**_: Any) -> Any:
            fast_sim.faults.fail_next(50, kind="server_error")
            return await real_get_orders()

        broker._rest.get_orders = failing  # type: ignore[method-assign]
        with pytest.raises(OrderStateUnknownError) as info:
            await broker.place_order(buy())
        assert info.value.idempotency_key == "key-1"
        assert placer_polls >= 1
        broker._rest.get_orders = real_get_orders  # type: ignore[method-assign]
        fast_sim.faults.clear()
        report = await broker.reconcile()
        (only,) = booked(fast_sim)
        assert report.bound == (("key-1", only.order_id),)
        assert await broker.place_order(buy()) == only.order_id
        assert fast_sim.stats.orders_received == 1


async def test_fifty_concurrent_calls_one_order(
    fast_sim: KISSimulator, quick_broker: KISBroker
) -> None:
    """50 concurrent place_order calls with one key: one order at the exchange."""
    results = await asyncio.gather(*(quick_broker.place_order(buy()) for _ in range(50)))
    assert len(set(results)) == 1
    assert [o.order_id for o in booked(fast_sim)] == [results[0]]


async def test_same_key_different_order_conflicts(
    fast_sim: KISSimulator, quick_broker: KISBroker
) -> None:
    """The same key with another order raises InvalidOrderError; nothing more is sent."""
    await quick_broker.place_order(buy())
    with pytest.raises(InvalidOrderError, match="different order"):
        await quick_broker.place_order(buy(qty=4))
    assert len(booked(fast_sim)) == 1


async def test_crash_after_post_new_broker_binds_without_duplicate(
    fast_sim: KISSimulator, make_broker: Callable[..., KISBroker], tmp_path: Path
) -> None:
    """A process claimed the key and its POST reached KIS, then died: the next broker on the
    same journal file settles the entry on open and never sends the order again."""
    path = tmp_path / "orders.db"
    dead = SQLiteJournal(path)
    await dead.open()
    await dead.claim(JournalEntry.for_request("key-1", buy(), owner="dead-process"))
    await dead.aclose()
    reached = fast_sim.exchange.place_order(
        symbol="005930", side="02", qty=3, order_type="00", price=70_000
    )

    async with make_broker(journal=SQLiteJournal(path)) as broker:
        entry = await broker.journal.get("key-1")
        assert entry is not None
        assert (entry.state, entry.order_id) == (EntryState.PLACED, reached.order_id)
        assert await broker.place_order(buy()) == reached.order_id
    assert len(booked(fast_sim)) == 1
    assert fast_sim.stats.orders_received == 0  # nothing came in over REST


async def test_crash_mid_post_with_dropped_response_then_restart(
    fast_sim: KISSimulator, make_broker: Callable[..., KISBroker], tmp_path: Path
) -> None:
    """First broker: response dropped and every poll fails, entry left unknown on disk.
    Second broker on the same file: settled on open, no duplicate order."""
    path = tmp_path / "orders.db"
    first = make_broker(journal=SQLiteJournal(path), timeout=1.0)
    async with first:
        await first.authenticate()
        real_get_orders = first._rest.get_orders

        async def failing(**_: Any) -> Any:
            fast_sim.faults.fail_next(50, kind="server_error")  # this poll fails
            return await real_get_orders()

        first._rest.get_orders = failing  # type: ignore[method-assign]
        fast_sim.faults.drop_next_order_response()
        with pytest.raises(OrderStateUnknownError):
            await first.place_order(buy())
        fast_sim.faults.clear()
        entry = await first.journal.get("key-1")
        assert entry is not None
        assert entry.state is EntryState.UNKNOWN
    async with make_broker(journal=SQLiteJournal(path)) as second:
        (only,) = booked(fast_sim)
        entry = await second.journal.get("key-1")
        assert entry is not None
        assert (entry.state, entry.order_id) == (EntryState.PLACED, only.order_id)
        assert await second.place_order(buy()) == only.order_id
    assert fast_sim.stats.orders_received == 1


async def test_crash_before_post_is_sent_once_after_restart(
    fast_sim: KISSimulator, make_broker: Callable[..., KISBroker], tmp_path: Path
) -> None:
    """Claimed, then died before the POST left: proven not booked on open, sent exactly once."""
    path = tmp_path / "orders.db"
    dead = SQLiteJournal(path)
    await dead.open()
    await dead.claim(JournalEntry.for_request("key-1", buy(), owner="dead-process"))
    await dead.aclose()
    async with make_broker(journal=SQLiteJournal(path)) as broker:
        entry = await broker.journal.get("key-1")
        assert entry is not None
        assert entry.state is EntryState.NOT_BOOKED
        first = await broker.place_order(buy())
        assert await broker.place_order(buy()) == first
    assert [o.order_id for o in booked(fast_sim)] == [first]


async def test_shared_broker_fixture_default_options(sim: KISSimulator, broker: KISBroker) -> None:
    """With the shared fixtures and default placement options: a dropped response and 20
    concurrent repeats still give one order, found on the first poll."""
    await broker.authenticate()
    sim.faults.drop_next_order_response()
    request = OrderRequest("005930", Side.BUY, 1, price=60_000, idempotency_key="shared")
    results = await asyncio.gather(*(broker.place_order(request) for _ in range(20)))
    assert len(set(results)) == 1
    assert [o.order_id for o in booked(sim)] == [results[0]]
