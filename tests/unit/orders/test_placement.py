"""OrderPlacer: at most one POST per key, conflicts, and reconciliation of uncertain outcomes."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kis_async.errors import (
    BrokerTimeoutError,
    InvalidOrderError,
    OrderRejectedError,
    OrderStateUnknownError,
    RateLimitError,
)
from kis_async.models import KST, ExecutionKind, OrderRequest, OrderType, Side
from kis_async.orders.journal import EntryState, JournalEntry, SQLiteJournal
from kis_async.orders.placement import OrderPlacer, PlacementOptions, ReconcileReport


def req(key: str | None = "k1", qty: int = 10, price: int | None = 70_000) -> OrderRequest:
    if price is None:
        return OrderRequest(
            "005930", Side.BUY, qty, order_type=OrderType.MARKET, idempotency_key=key
        )
    return OrderRequest("005930", Side.BUY, qty, price=price, idempotency_key=key)


async def test_without_key_sends_once_and_remembers_branch(placer: OrderPlacer, rest: Any) -> None:
    """No key: exactly one POST, the branch is remembered, nothing is journaled."""
    order_id = await placer.place(req(key=None))
    assert len(rest.posts) == 1
    assert rest.remembered == {order_id: "00950"}


async def test_without_key_timeout_propagates_unchanged(placer: OrderPlacer, rest: Any) -> None:
    """No key: an uncertain timeout is raised as is, never re-sent, no reconciliation."""
    rest.script = ["timeout_booked"]
    with pytest.raises(BrokerTimeoutError):
        await placer.place(req(key=None))
    assert len(rest.posts) == 1
    assert rest.polls == 0


async def test_fifty_concurrent_calls_one_post(placer: OrderPlacer, rest: Any) -> None:
    """50 concurrent place() with one key: one POST, one order number for all."""
    rest.post_delay = 0.02
    results = await asyncio.gather(*(placer.place(req()) for _ in range(50)))
    assert len(rest.posts) == 1
    assert len(set(results)) == 1


async def test_repeat_returns_known_order_without_sending(
    placer: OrderPlacer, rest: Any, journal: Any
) -> None:
    """Same key and order again: the known ODNO, no second POST."""
    first = await placer.place(req())
    second = await placer.place(req())
    assert first == second
    assert len(rest.posts) == 1
    stored = await journal.get("k1")
    assert (stored.state, stored.order_id, stored.branch_no) == (
        EntryState.PLACED,
        first,
        "00950",
    )


async def test_same_key_different_order_conflicts(placer: OrderPlacer, rest: Any) -> None:
    """Same key with another order raises InvalidOrderError and sends nothing."""
    await placer.place(req())
    with pytest.raises(InvalidOrderError, match="different order"):
        await placer.place(req(qty=11))
    assert len(rest.posts) == 1


async def test_conflict_while_first_is_in_flight(placer: OrderPlacer, rest: Any) -> None:
    """A different order on a key whose POST is still running conflicts at once."""
    rest.post_delay = 0.05
    first = asyncio.create_task(placer.place(req()))
    await asyncio.sleep(0.01)
    with pytest.raises(InvalidOrderError):
        await placer.place(req(price=70_100))
    await first
    assert len(rest.posts) == 1


async def test_rejection_is_shared_and_replayed(
    placer: OrderPlacer, rest: Any, journal: Any
) -> None:
    """A rejection reaches every concurrent caller and is replayed later without a POST."""
    rest.script = ["reject"]
    rest.post_delay = 0.02
    results = await asyncio.gather(*(placer.place(req()) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, OrderRejectedError) for r in results)
    with pytest.raises(OrderRejectedError) as info:
        await placer.place(req())
    assert info.value.msg_cd == "APBK0919"
    assert len(rest.posts) == 1
    assert (await journal.get("k1")).state is EntryState.REJECTED


@pytest.mark.parametrize(
    ("outcome", "error"),
    [("ratelimit", RateLimitError), ("connect", BrokerTimeoutError)],
)
async def test_certainly_unsent_failure_frees_the_key(
    placer: OrderPlacer, rest: Any, journal: Any, outcome: str, error: type[Exception]
) -> None:
    """Failures that never reached KIS raise, mark not_booked, and the key may send again."""
    rest.script = [outcome]
    with pytest.raises(error):
        await placer.place(req())
    assert (await journal.get("k1")).state is EntryState.NOT_BOOKED
    order_id = await placer.place(req())
    assert len(rest.posts) == 2
    assert (await journal.get("k1")).order_id == order_id


@pytest.mark.parametrize("outcome", ["timeout_booked", "server_booked", "drop_booked"])
async def test_uncertain_outcome_is_reconciled_not_resent(
    placer: OrderPlacer, rest: Any, journal: Any, outcome: str
) -> None:
    """Booked but unanswered (timeout, 5xx, dropped): the order is found and bound, one POST."""
    rest.script = [outcome]
    order_id = await placer.place(req())
    assert len(rest.posts) == 1
    assert [o.broker_order_id for o in rest.orders] == [order_id]
    assert rest.remembered[order_id] == "00950"
    stored = await journal.get("k1")
    assert (stored.state, stored.order_id) == (EntryState.PLACED, order_id)
    assert await placer.place(req()) == order_id
    assert len(rest.posts) == 1


async def test_lost_order_raises_unknown_then_reconcile_frees_key(
    placer: OrderPlacer, rest: Any, journal: Any
) -> None:
    """Zero matches: OrderStateUnknownError with the key, bounded polls; reconcile() proves
    'not booked' and the next place() sends it."""
    rest.script = ["timeout_lost"]
    with pytest.raises(OrderStateUnknownError) as info:
        await placer.place(req())
    assert info.value.idempotency_key == "k1"
    assert isinstance(info.value.__cause__, BrokerTimeoutError)
    assert rest.polls == placer.options.reconcile_attempts
    assert (await journal.get("k1")).state is EntryState.UNKNOWN

    report = await placer.reconcile()
    assert report == ReconcileReport(not_booked=("k1",))
    assert (await journal.get("k1")).state is EntryState.NOT_BOOKED
    order_id = await placer.place(req())
    assert len(rest.posts) == 2
    assert [o.broker_order_id for o in rest.orders] == [order_id]


async def test_unknown_stays_unknown_before_not_booked_after(
    rest: Any, journal: Any, streams: Any
) -> None:
    """reconcile() does not declare 'not booked' until not_booked_after has passed."""
    options = PlacementOptions(reconcile_attempts=1, reconcile_interval=0, not_booked_after=3600)
    placer = OrderPlacer(rest=rest, journal=journal, streams=streams, options=options)
    rest.script = ["timeout_lost"]
    with pytest.raises(OrderStateUnknownError):
        await placer.place(req())
    report = await placer.reconcile()
    assert report.unknown == ("k1",)
    with pytest.raises(OrderStateUnknownError):
        await placer.place(req())
    assert len(rest.posts) == 1


async def test_order_appearing_late_is_bound_by_reconcile(
    placer: OrderPlacer, rest: Any, journal: Any, helpers: Any
) -> None:
    """Zero matches at first; when the order shows up later, reconcile() binds it."""
    rest.script = ["timeout_lost"]
    with pytest.raises(OrderStateUnknownError):
        await placer.place(req())
    rest.orders.append(helpers.make_order("0000077777", req()))
    report = await placer.reconcile()
    assert report.bound == (("k1", "0000077777"),)
    assert rest.remembered["0000077777"] == "00950"
    assert await placer.place(req()) == "0000077777"
    assert len(rest.posts) == 1


async def test_repeat_place_on_unknown_key_reconciles_first(
    placer: OrderPlacer, rest: Any, helpers: Any
) -> None:
    """place() with an unknown key looks for the order before anything else; no re-send."""
    rest.script = ["timeout_lost"]
    with pytest.raises(OrderStateUnknownError):
        await placer.place(req())
    rest.orders.append(helpers.make_order("0000088888", req()))
    assert await placer.place(req()) == "0000088888"
    assert len(rest.posts) == 1


async def test_several_matches_stay_unknown_until_one_is_explained(
    placer: OrderPlacer, rest: Any, journal: Any, helpers: Any
) -> None:
    """Two identical candidates: unknown; once the journal binds one elsewhere, reconcile
    binds ours to the other."""
    rest.orders.append(helpers.make_order("0000055555", req()))
    rest.script = ["timeout_booked"]
    with pytest.raises(OrderStateUnknownError, match="2 matching"):
        await placer.place(req())
    assert (await journal.get("k1")).state is EntryState.UNKNOWN
    assert (await placer.reconcile()).unknown == ("k1",)
    # the other order belonged to another key (e.g. another process's journal entry)
    other = JournalEntry.for_request("k-other", req("k-other"), owner="x")
    await journal.claim(other)
    await journal.update("k-other", state=EntryState.PLACED, order_id="0000055555")
    report = await placer.reconcile()
    ((key, order_id),) = report.bound
    assert key == "k1"
    assert order_id != "0000055555"
    assert len(rest.posts) == 1


async def test_orders_placed_before_the_claim_are_not_candidates(
    placer: OrderPlacer, rest: Any, helpers: Any
) -> None:
    """An identical order placed well before the attempt is not taken for ours."""
    old = datetime.now(KST) - timedelta(minutes=10)
    rest.orders.append(helpers.make_order("0000011111", req(), ordered_at=old))
    rest.script = ["timeout_booked"]
    order_id = await placer.place(req())
    assert order_id != "0000011111"


async def test_orders_of_other_keys_are_not_candidates(placer: OrderPlacer, rest: Any) -> None:
    """An identical order already bound to another key is excluded from matching."""
    first = await placer.place(req("a"))
    rest.script = ["timeout_booked"]
    second = await placer.place(req("b"))
    assert first != second
    assert len(rest.posts) == 2


async def test_unkeyed_orders_of_this_process_are_not_candidates(
    placer: OrderPlacer, rest: Any
) -> None:
    """An identical order this placer sent without a key is not taken for a keyed one."""
    unkeyed = await placer.place(req(key=None))
    rest.script = ["timeout_booked"]
    keyed = await placer.place(req("b"))
    assert unkeyed != keyed


async def test_market_order_is_matched_with_zero_price(placer: OrderPlacer, rest: Any) -> None:
    """Market orders (ORD_UNPR 0) reconcile too."""
    rest.script = ["timeout_booked"]
    order_id = await placer.place(req(price=None))
    assert order_id == rest.orders[0].broker_order_id


async def test_acceptance_notice_binds_when_orders_lag(
    placer: OrderPlacer, rest: Any, streams: Any, helpers: Any
) -> None:
    """With the execution stream live, an acceptance notice is a candidate too."""
    rest.script = ["timeout_lost"]  # the REST inquiry does not show it (yet)
    streams.executions_active = True
    streams.notices = [helpers.notice(ExecutionKind.ACCEPTED, "0000099999", qty=10, price=70_000)]
    assert await placer.place(req()) == "0000099999"
    assert rest.remembered["0000099999"] == "00950"


async def test_notices_ignored_when_stream_inactive(
    placer: OrderPlacer, rest: Any, streams: Any, helpers: Any
) -> None:
    """recent_executions() is only consulted while an execution registration is live."""
    rest.script = ["timeout_lost"]
    streams.notices = [helpers.notice(ExecutionKind.ACCEPTED, "0000099999", qty=10, price=70_000)]
    with pytest.raises(OrderStateUnknownError):
        await placer.place(req())


async def test_cancelled_caller_does_not_interrupt_the_post(
    placer: OrderPlacer, rest: Any, journal: Any
) -> None:
    """Cancelling the caller leaves the POST and its bookkeeping running to the end."""
    rest.post_delay = 0.05
    task = asyncio.create_task(placer.place(req()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(1000):
        stored = await journal.get("k1")
        if stored is not None and stored.state is EntryState.PLACED:
            break
        await asyncio.sleep(0.01)
    assert stored is not None
    assert stored.state is EntryState.PLACED
    assert await placer.place(req()) == stored.order_id
    assert len(rest.posts) == 1


async def test_placement_task_cancelled_before_it_ran_releases_the_caller(
    placer: OrderPlacer, rest: Any, journal: Any
) -> None:
    """If the placement task is cancelled before its first step (a loop shutting down), the
    caller gets CancelledError instead of waiting forever, nothing was sent, and the key is
    free for the next call."""
    caller = asyncio.create_task(placer.place(req()))
    await asyncio.sleep(0)  # the caller has started the placement task, which has not run
    _, placement = placer._tasks["k1"]
    placement.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(caller, 5)
    assert rest.posts == []
    assert "k1" not in placer._tasks
    assert await journal.get("k1") is None
    order_id = await placer.place(req())
    assert len(rest.posts) == 1
    assert (await journal.get("k1")).order_id == order_id


async def test_reconcile_with_nothing_pending_makes_no_request(
    placer: OrderPlacer, rest: Any
) -> None:
    """reconcile() without unknown entries does not poll."""
    await placer.place(req())
    assert await placer.reconcile() == ReconcileReport()
    assert rest.polls == 0


async def test_restart_settles_a_crash_mid_post(tmp_path: Any, rest: Any, streams: Any) -> None:
    """A process died after claiming and sending: on open, the new placer binds the order
    and the same key then returns it without a second POST."""
    path = tmp_path / "crash.db"
    dead = SQLiteJournal(path)
    await dead.open()
    await dead.claim(JournalEntry.for_request("k1", req(), owner="dead-process"))
    await dead.aclose()
    rest._book(req())  # the POST reached KIS before the crash

    journal = SQLiteJournal(path)
    await journal.open()
    try:
        placer = OrderPlacer(
            rest=rest,
            journal=journal,
            streams=streams,
            options=PlacementOptions(
                reconcile_attempts=1, reconcile_interval=0, not_booked_after=3600
            ),
        )
        await placer.reconcile_on_open()
        stored = await journal.get("k1")
        assert stored.state is EntryState.PLACED
        assert await placer.place(req()) == stored.order_id
        assert rest.posts == []
    finally:
        await journal.aclose()


async def test_restart_after_crash_before_post_sends_once(
    tmp_path: Any, rest: Any, streams: Any
) -> None:
    """Died after the claim but before KIS booked anything: proven not booked, sent once."""
    path = tmp_path / "crash2.db"
    dead = SQLiteJournal(path)
    await dead.open()
    stale = JournalEntry.for_request("k1", req(), owner="dead-process")
    await dead.claim(dataclasses.replace(stale, claimed_at=datetime.now(UTC) - timedelta(hours=1)))
    await dead.aclose()

    journal = SQLiteJournal(path)
    await journal.open()
    try:
        placer = OrderPlacer(rest=rest, journal=journal, streams=streams)
        await placer.reconcile_on_open()
        assert (await journal.get("k1")).state is EntryState.NOT_BOOKED
        await placer.place(req())
        await placer.place(req())
        assert len(rest.posts) == 1
    finally:
        await journal.aclose()


async def test_reconcile_on_open_swallows_broker_errors(
    placer: OrderPlacer, rest: Any, journal: Any, caplog: Any
) -> None:
    """A failed poll on open is logged; the entry stays unknown."""
    rest.script = ["timeout_lost"]
    with pytest.raises(OrderStateUnknownError):
        await placer.place(req())

    async def broken(**_: Any) -> Any:
        raise BrokerTimeoutError("down", request_sent=False)

    rest.get_orders = broken
    await placer.reconcile_on_open()
    assert (await journal.get("k1")).state is EntryState.UNKNOWN
    assert "reconcile on open failed" in caplog.text


def test_options_are_validated() -> None:
    """Nonsensical reconciliation options are refused."""
    with pytest.raises(ValueError, match="reconcile_attempts"):
        PlacementOptions(reconcile_attempts=0)
    with pytest.raises(ValueError, match="clock_tolerance"):
        PlacementOptions(clock_tolerance=-1)


async def test_identical_orders_of_several_keys_are_paired_by_reconcile(
    placer: OrderPlacer, rest: Any, journal: Any
) -> None:
    """Two keys send the same order and both lose the answer: each sees two candidates
    (unknown); reconcile() pairs them one to one, oldest claim to oldest order."""
    rest.script = ["timeout_booked", "timeout_booked"]
    rest.post_delay = 0.01
    # Both orders are booked before either caller looks (a slow journal must not let the
    # first caller find only its own order).
    rest.booked_barrier = asyncio.Barrier(2)
    results = await asyncio.gather(
        placer.place(req("k1")), placer.place(req("k2")), return_exceptions=True
    )
    assert all(isinstance(r, OrderStateUnknownError) for r in results)
    report = await placer.reconcile()
    assert report.unknown == ()
    assert sorted(report.bound) == [
        ("k1", rest.orders[0].broker_order_id),
        ("k2", rest.orders[1].broker_order_id),
    ]
    assert len(rest.posts) == 2


async def test_pairing_needs_as_many_orders_as_keys(
    placer: OrderPlacer, rest: Any, helpers: Any
) -> None:
    """Three identical candidates for two unknown keys: nothing is guessed."""
    rest.orders.append(helpers.make_order("0000055555", req()))
    rest.script = ["timeout_booked", "timeout_booked"]
    rest.post_delay = 0.01
    await asyncio.gather(placer.place(req("k1")), placer.place(req("k2")), return_exceptions=True)
    report = await placer.reconcile()
    assert sorted(report.unknown) == ["k1", "k2"]
    assert report.bound == ()
