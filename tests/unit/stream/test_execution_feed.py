"""ExecutionFeed and ExecutionCursor without sockets: per-consumer cursors, replay, resume in
a fresh feed (a new process), the replay=False baseline, and the cursor's text form."""

from __future__ import annotations

import asyncio
import pickle
from collections import Counter
from collections.abc import Coroutine
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from kis_async import Execution, ExecutionCursor, ExecutionKind, Order, Side
from kis_async.models import KST
from kis_async.stream.executions import ExecutionConsumer, ExecutionFeed
from kis_async.stream.options import StreamOptions
from kis_async.stream.streams import LosslessBuffer

TODAY = date(2026, 12, 1)


class Rest:
    """Today's orders as REST reports them: order id -> (filled, order qty)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, int]] = {}

    def fill(self, order_id: str, qty: int, total: int = 100) -> None:
        filled, total = self.rows.get(order_id, (0, total))
        self.rows[order_id] = (filled + qty, total)

    def orders(self) -> list[Order]:
        return [
            Order(
                broker_order_id=oid.zfill(10),
                symbol="005930",
                side=Side.BUY,
                qty=total,
                filled_qty=filled,
                avg_fill_price=Decimal(70000),
                remaining_qty=total - filled,
                ordered_at=datetime(2026, 12, 1, 9, 0, int(oid) % 60, tzinfo=KST),
            )
            for oid, (filled, total) in self.rows.items()
        ]

    async def __call__(self) -> list[Order]:
        return self.orders()


def feed_for(rest: Rest) -> ExecutionFeed:
    def spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(coro, name=name)

    options = StreamOptions(gap_fill_verify_window=0)
    return ExecutionFeed(fetch_orders=rest, spawn=spawn, options=options, today=lambda: TODAY)


def notice(order_id: str, qty: int, kind: ExecutionKind = ExecutionKind.FILLED) -> Execution:
    return Execution(
        kind=kind,
        broker_order_id=order_id.zfill(10),
        original_order_id=None,
        branch_no="06010",
        symbol="005930",
        side=Side.BUY,
        order_type=None,
        qty=qty,
        price=Decimal(70000),
        order_qty=100,
        time=datetime(2026, 12, 1, 9, 30, tzinfo=KST),
    )


def consumer(*, replay: bool = True, since: ExecutionCursor | None = None) -> ExecutionConsumer:
    return ExecutionConsumer(LosslessBuffer(1000), replay=replay, since=since)


def queued(c: ExecutionConsumer) -> list[Execution]:
    buffer = c._buffer
    items = list(buffer._items)
    buffer._items.clear()
    return items


def filled(events: list[Execution]) -> Counter[str]:
    out: Counter[str] = Counter()
    for e in events:
        if e.kind is ExecutionKind.FILLED:
            out[e.broker_order_id.lstrip("0")] += e.qty
    return out


async def test_a_closed_consumers_queue_is_not_delivered_for_anyone_else() -> None:
    """A consumer leaves with fills queued; a replaying newcomer gets them, once each."""
    rest = Rest()
    feed = feed_for(rest)
    first, second = consumer(), consumer()
    feed.join(first)
    feed.join(second)
    for qty in (3, 4):
        rest.fill("7", qty)
        feed.on_notice(notice("7", qty))
    feed.leave(first)  # crashed with both fills queued
    assert filled(queued(second)) == Counter({"7": 7})
    restarted = consumer()
    feed.join(restarted)
    feed.apply_snapshot(rest.orders(), "execution stream start")
    got = queued(restarted)
    assert filled(got) == Counter({"7": 7})
    assert all(e.replayed for e in got)
    rest.fill("7", 2)
    feed.on_notice(notice("7", 2))
    [live] = queued(restarted)
    assert (live.qty, live.replayed) == (2, False)
    assert live.cursor is not None
    assert live.cursor.delivered("0000000007") == 9


async def test_resume_in_a_fresh_feed_gets_exactly_the_rest() -> None:
    """A new process (fresh feed) started with a cursor gets the fills after it, from REST
    and notices, none twice: a notice arriving before the snapshot is caught up, not doubled."""
    rest = Rest()
    old = feed_for(rest)
    worker = consumer()
    old.join(worker)
    rest.fill("1", 5)
    old.on_notice(notice("1", 5))
    rest.fill("2", 2)
    old.on_notice(notice("2", 2))
    events = queued(worker)
    saved = str(events[0].cursor)  # handled order 1 only, then crashed
    rest.fill("2", 3)  # while down
    rest.fill("3", 4)
    new = feed_for(rest)
    resumed = consumer(since=ExecutionCursor.parse(saved))
    new.join(resumed)
    rest.fill("2", 1)
    new.on_notice(notice("2", 1))  # live before the REST snapshot was applied
    new.apply_snapshot(rest.orders(), "execution stream start")
    got = queued(resumed)
    assert filled(got) == Counter({"2": 6, "3": 4})
    assert Counter({"1": 5}) + filled(got) == Counter({oid: f for oid, (f, _) in rest.rows.items()})
    reconciled = [e for e in got if e.source == "reconcile"]
    assert reconciled
    assert all(e.replayed for e in reconciled)
    assert reconciled[0].time == datetime(2026, 12, 1, 9, 0, 2, tzinfo=KST)  # the row's time


async def test_replay_false_starts_after_the_baseline_snapshot() -> None:
    """replay=False: fills from before it opened (even unseen ones) are not delivered."""
    rest = Rest()
    rest.fill("4", 10)  # before anything ran
    feed = feed_for(rest)
    fresh = consumer(replay=False)
    feed.join(fresh)
    feed.apply_snapshot(rest.orders(), "execution stream start")
    assert queued(fresh) == []
    rest.fill("4", 1)
    feed.on_notice(notice("4", 1))
    accepted = notice("5", 3, ExecutionKind.ACCEPTED)
    feed.on_notice(accepted)
    got = queued(fresh)
    assert [(e.kind, e.qty) for e in got] == [
        (ExecutionKind.FILLED, 1),
        (ExecutionKind.ACCEPTED, 3),
    ]
    assert got[1].cursor == got[0].cursor  # a non-fill event does not move the cursor


def test_cursor_text_round_trip_and_bad_input() -> None:
    """str() and parse() round-trip; whitespace and a trailing newline are fine; anything
    else is a ValueError naming the problem."""
    cursor = ExecutionCursor(TODAY, {"0000000042": 5, "43": 10, "44": 0})
    text = str(cursor)
    assert text == "v1:20261201:42=5,43=10"
    assert ExecutionCursor.parse(text + "\n") == cursor
    assert ExecutionCursor.parse("v1:20261201:") == ExecutionCursor(TODAY)
    assert pickle.loads(pickle.dumps(cursor)) == cursor
    assert cursor.delivered("042") == 5
    for bad in ("", "v2:20261201:", "v1:2026121:", "v1:20261301:", "v1:20261201:42=x"):
        with pytest.raises(ValueError, match="cursor"):
            ExecutionCursor.parse(bad)
    with pytest.raises(ValueError, match="cursor"):
        ExecutionCursor.parse("v1:20261201:42=\u0665")  # Arabic-Indic five: not ASCII
    with pytest.raises(ValueError, match="order ids"):
        ExecutionCursor(TODAY, {"abc": 1})
    with pytest.raises(ValueError, match="quantities"):
        ExecutionCursor(TODAY, {"42": -1})


async def test_an_execution_pickles_with_its_cursor_and_flag() -> None:
    """A delivered event pickles to an equal event that keeps cursor and replayed."""
    rest = Rest()
    feed = feed_for(rest)
    c = consumer()
    feed.join(c)
    rest.fill("9", 2)
    feed.apply_snapshot(rest.orders(), "reconnect")
    [event] = queued(c)
    copy = pickle.loads(pickle.dumps(event))
    assert copy == event
    assert copy.cursor == event.cursor
    assert copy.replayed is True
