"""Gap-fill verification: a fill notice still in flight when the REST snapshot was applied is
not delivered twice; new fills, ordering and REST failures are handled without loss."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from kis_async import Execution, ExecutionKind, Order, Side
from kis_async.models import KST
from kis_async.stream.executions import ExecutionFeed, _Snapshot
from kis_async.stream.ledger import FillLedger
from kis_async.stream.options import StreamOptions

# -- the ledger alone ------------------------------------------------------------------------


def test_verified_notice_suppresses_a_duplicate_and_rebases_the_offset() -> None:
    """A late notice already counted by the snapshot delivers 0; later notices stay exact."""
    ledger = FillLedger()
    assert ledger.notice("1", 2, 10) == 2
    # 3 shares filled during the outage, then 1 just before the snapshot (notice in flight).
    assert ledger.reconcile("1", 6, 10) == 4
    # Without verification the late notice would be delivered again:
    plain = FillLedger()
    plain.notice("1", 2, 10)
    plain.reconcile("1", 6, 10)
    assert plain.notice("1", 1, 10) == 1  # the hole this module closes
    # Verified: REST still says 6, which is what was delivered.
    assert ledger.verified_notice("0000000001", 1, 6, 10) == 0
    assert ledger.delivered("1") == 6
    # A genuinely new fill afterwards, accounted without verification, is delivered once.
    assert ledger.notice("1", 1, 10) == 1
    assert ledger.delivered("1") == 7


def test_verified_notice_delivers_a_new_fill_and_splits_a_race_exactly() -> None:
    """New fills are delivered; two notices racing one fetch sum to the REST total."""
    ledger = FillLedger()
    assert ledger.reconcile("5", 4, 20) == 4
    assert ledger.verified_notice("5", 3, 7, 20) == 3  # new fill after the snapshot
    assert ledger.delivered("5") == 7
    # A (duplicate of 1) and B (new, 2) both answered by one fetch showing 9: the per-order
    # total ends at 9 whichever event carries which share.
    ledger.reconcile("5", 8, 20)  # A's fill was counted by a second snapshot
    got = [ledger.verified_notice("5", 1, 10, 20), ledger.verified_notice("5", 2, 10, 20)]
    assert sum(got) == 2
    assert ledger.delivered("5") == 10
    assert ledger.verified_notice("5", 0, 10, 20) == 0


def test_watch_windows_expire_and_the_later_deadline_wins() -> None:
    """needs_verification is true only inside the window; watch never shortens it."""
    ledger = FillLedger()
    assert not ledger.needs_verification("1", 0.0)
    ledger.watch("0001", 10.0)
    ledger.watch("1", 5.0)  # an earlier deadline does not shorten the window
    assert ledger.needs_verification("1", 9.9)
    assert ledger.watching(9.9) == 1
    assert not ledger.needs_verification("1", 10.0)
    assert ledger.watching(10.0) == 0
    ledger.watch("2", 3.0)
    assert ledger.watching(3.5) == 0


def test_verification_options_are_validated() -> None:
    """A negative window or a non-positive fetch timeout is refused."""
    with pytest.raises(ValueError, match="gap_fill_verify_window"):
        StreamOptions(gap_fill_verify_window=-1.0)
    with pytest.raises(ValueError, match="gap_fill_verify_timeout"):
        StreamOptions(gap_fill_verify_timeout=0)
    assert StreamOptions(gap_fill_verify_window=0).gap_fill_verify_window == 0


# -- the feed with a fake REST ------------------------------------------------------------


class FakeOrders:
    """Today's orders as REST would report them; fetches can be held, failed and counted."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, int]] = {}  # order id -> (filled, order qty)
        self.calls = 0
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    def fill(self, order_id: str, qty: int) -> None:
        filled, total = self.rows[order_id]
        self.rows[order_id] = (filled + qty, total)

    async def __call__(self) -> list[Order]:
        self.calls += 1
        self.started.set()
        snapshot = [_order(oid, filled, total) for oid, (filled, total) in self.rows.items()]
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return snapshot


def _order(order_id: str, filled: int, qty: int) -> Order:
    return Order(
        broker_order_id=order_id,
        symbol="005930",
        side=Side.BUY,
        qty=qty,
        filled_qty=filled,
        avg_fill_price=Decimal(70000),
        remaining_qty=qty - filled,
    )


def _notice(order_id: str, qty: int, order_qty: int = 10, *, n: int = 0) -> Execution:
    return Execution(
        kind=ExecutionKind.FILLED,
        broker_order_id=order_id.zfill(10),
        original_order_id=None,
        branch_no="06010",
        symbol="005930",
        side=Side.BUY,
        order_type=None,
        qty=qty,
        price=Decimal(70000 + n),
        order_qty=order_qty,
        time=datetime.now(KST),
    )


def _accepted(order_id: str, qty: int = 10) -> Execution:
    return Execution(
        kind=ExecutionKind.ACCEPTED,
        broker_order_id=order_id.zfill(10),
        original_order_id=None,
        branch_no="06010",
        symbol="005930",
        side=Side.BUY,
        order_type=None,
        qty=qty,
        price=Decimal(70000),
        order_qty=qty,
        time=datetime.now(KST),
    )


def _feed(fake: FakeOrders, **options: float) -> tuple[ExecutionFeed, list[Execution]]:
    tasks: set[asyncio.Task[None]] = set()

    def spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        tasks.add(task)
        return task

    feed = ExecutionFeed(
        fetch_orders=fake,
        spawn=spawn,
        options=StreamOptions(gap_fill_verify_timeout=1.0, **options),  # type: ignore[arg-type]
    )
    _TASKS[id(feed)] = tasks
    events: list[Execution] = []
    feed.add_listener(events.append)
    return feed, events


_TASKS: dict[int, set[asyncio.Task[None]]] = {}


async def _close(feed: ExecutionFeed) -> None:
    """What the feed does on close: deliver what waits, end the feed's tasks."""
    feed.flush()
    tasks = _TASKS.pop(id(feed), set())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _settle(feed: ExecutionFeed) -> None:
    async with asyncio.timeout(5):
        while not feed.idle:
            await asyncio.sleep(0)


def _filled(events: list[Execution], order_id: str) -> int:
    return sum(
        e.qty
        for e in events
        if e.kind is ExecutionKind.FILLED and e.broker_order_id.lstrip("0") == order_id
    )


async def _after_outage(fake: FakeOrders) -> tuple[ExecutionFeed, list[Execution]]:
    """Order 1 (10 shares): 2 by notice, 3 during an outage, 1 just before the snapshot."""
    feed, events = _feed(fake)
    fake.rows["1"] = (0, 10)
    feed.on_notice(_notice("1", 2))
    fake.fill("1", 2)
    fake.fill("1", 3)
    fake.fill("1", 1)  # its notice is still in flight when the snapshot is applied
    feed.apply_snapshot(await fake(), "reconnect")
    fake.calls = 0
    fake.started.clear()  # tests wait on it for a verification fetch, not this snapshot's
    assert [(e.source, e.qty) for e in events] == [("websocket", 2), ("reconcile", 4)]
    return feed, events


async def test_in_flight_duplicate_is_suppressed() -> None:
    """The late notice of a fill the snapshot counted is verified and not delivered again."""
    fake = FakeOrders()
    feed, events = await _after_outage(fake)
    feed.on_notice(_notice("1", 1))
    await _settle(feed)
    assert fake.calls == 1
    assert _filled(events, "1") == 6 == fake.rows["1"][0]
    assert feed.suppressed == 1
    assert feed.verifications == 1
    await _close(feed)


async def test_new_fill_after_the_snapshot_is_delivered() -> None:
    """A genuinely new fill inside the window is delivered with its full quantity."""
    fake = FakeOrders()
    feed, events = await _after_outage(fake)
    fake.fill("1", 3)
    feed.on_notice(_notice("1", 3))
    await _settle(feed)
    assert events[-1].qty == 3
    assert events[-1].source == "websocket"
    assert _filled(events, "1") == 9 == fake.rows["1"][0]
    assert feed.suppressed == 0
    await _close(feed)


async def test_mixed_duplicates_and_new_fills_total_exactly() -> None:
    """Duplicate and new notices across orders, one fetch in flight: totals match REST."""
    fake = FakeOrders()
    feed, events = await _after_outage(fake)
    fake.rows["2"] = (0, 8)
    fake.fill("2", 5)  # 5 shares filled before a second snapshot; 2 of them still in flight
    feed.on_notice(_notice("2", 3, 8))
    feed.apply_snapshot(await fake(), "reconnect")
    fake.calls = 0
    fake.started.clear()
    fake.gate = asyncio.Event()
    feed.on_notice(_notice("1", 1))  # duplicate of order 1
    await asyncio.wait_for(fake.started.wait(), 5)
    # While the first verification is in flight: a new fill of order 1, the duplicate of
    # order 2, a new fill of order 2, and an acceptance of another order.
    fake.fill("1", 2)
    feed.on_notice(_notice("1", 2, n=1))
    feed.on_notice(_notice("2", 2, 8))
    fake.fill("2", 1)
    feed.on_notice(_notice("2", 1, 8, n=1))
    feed.on_notice(_accepted("3"))
    assert len(feed._backlog) == 5
    fake.gate.set()
    await _settle(feed)
    assert _filled(events, "1") == 8 == fake.rows["1"][0]
    assert _filled(events, "2") == 6 == fake.rows["2"][0]
    assert fake.calls == 2  # one fetch for the first notice, one for the three behind it
    assert feed.suppressed == 2
    assert events[-1].kind is ExecutionKind.ACCEPTED
    await _close(feed)


async def test_rest_failure_delivers_the_notice_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed verification fetch falls back to plain accounting: nothing is lost."""
    caplog.set_level(logging.WARNING, logger="kis_async.stream")
    fake = FakeOrders()
    feed, events = await _after_outage(fake)
    fake.fail = ConnectionError("REST down")
    fake.fill("1", 2)
    feed.on_notice(_notice("1", 2))
    await _settle(feed)
    assert _filled(events, "1") == 8 == fake.rows["1"][0]
    assert feed.verifications == 1
    assert "delivering them unverified" in caplog.text
    assert "12345678" not in caplog.text
    assert "myhtsid" not in caplog.text
    await _close(feed)


async def test_verification_timeout_falls_back() -> None:
    """A verification fetch that hangs is bounded by gap_fill_verify_timeout."""
    fake = FakeOrders()
    feed, events = await _after_outage(fake)
    fake.gate = asyncio.Event()  # never set
    feed.options = StreamOptions(gap_fill_verify_timeout=0.05)
    fake.fill("1", 1)
    feed.on_notice(_notice("1", 1))
    await _settle(feed)
    assert _filled(events, "1") == 7
    await _close(feed)


async def test_order_is_preserved_behind_a_pending_verification() -> None:
    """Notices behind the one being verified wait; none overtakes it; acceptances too."""
    fake = FakeOrders()
    feed, events = await _after_outage(fake)
    fake.rows["4"] = (0, 5)
    fake.gate = asyncio.Event()
    fake.fill("1", 1)
    feed.on_notice(_notice("1", 1, n=1))
    sent = [_accepted("4", 5), _notice("4", 2, 5, n=2), _notice("9", 1, 1, n=3)]
    fake.fill("4", 2)
    for event in sent:
        feed.on_notice(event)
    await asyncio.sleep(0)
    assert len(events) == 2  # nothing overtook the notice being verified
    fake.gate.set()
    await _settle(feed)
    prices = [Decimal(p) for p in (70001, 70000, 70002, 70003)]
    assert [e.price for e in events[2:]] == prices
    assert [e.kind for e in events[2:]] == [
        ExecutionKind.FILLED,
        ExecutionKind.ACCEPTED,
        ExecutionKind.FILLED,
        ExecutionKind.FILLED,
    ]
    assert fake.calls == 1  # orders 4 and 9 were never in a snapshot: not verified
    await _close(feed)


async def test_no_verification_after_the_window_or_when_disabled() -> None:
    """Past the window (or with the window at 0) notices are accounted without a fetch."""
    fake = FakeOrders()
    feed, events = _feed(fake, gap_fill_verify_window=0.05)
    fake.rows["1"] = (4, 10)
    feed.apply_snapshot(await fake(), "reconnect")
    fake.calls = 0
    await asyncio.sleep(0.1)
    fake.fill("1", 2)
    feed.on_notice(_notice("1", 2))
    assert not feed._backlog
    assert fake.calls == 0
    assert _filled(events, "1") == 6
    await _close(feed)

    fake = FakeOrders()
    feed, events = _feed(fake, gap_fill_verify_window=0)
    fake.rows["1"] = (4, 10)
    feed.apply_snapshot(await fake(), "reconnect")
    fake.calls = 0
    feed.on_notice(_notice("1", 2))
    assert fake.calls == 0
    assert not feed._backlog
    assert _filled(events, "1") == 6
    await _close(feed)


async def test_completed_orders_and_non_fill_notices_are_not_verified() -> None:
    """A complete order (the cap decides) and acceptances never trigger a fetch."""
    fake = FakeOrders()
    feed, events = _feed(fake)
    fake.rows["1"] = (10, 10)
    fake.rows["2"] = (3, 10)
    feed.apply_snapshot(await fake(), "reconnect")
    fake.calls = 0
    feed.on_notice(_notice("1", 4))  # late notice of a completed order: the cap
    feed.on_notice(_accepted("2"))
    assert fake.calls == 0
    assert not feed._backlog
    assert _filled(events, "1") == 10
    assert events[-1].kind is ExecutionKind.ACCEPTED
    await _close(feed)


async def test_snapshot_queued_behind_pending_notices_keeps_accounting_order() -> None:
    """A gap-fill answer that lands while notices wait is applied after them."""
    fake = FakeOrders()
    feed, events = await _after_outage(fake)
    fake.gate = asyncio.Event()
    fake.fill("1", 1)
    feed.on_notice(_notice("1", 1))  # new fill: waits for verification
    await asyncio.wait_for(fake.started.wait(), 5)
    snapshot = [_order("1", 7, 10)]
    assert feed._backlog  # what _gap_fill does when notices are waiting
    feed._enqueue(_Snapshot(snapshot, "reconnect"))
    fake.gate.set()
    await _settle(feed)
    # The notice is accounted first (delivers 1), so the snapshot adds nothing.
    assert [(e.source, e.qty) for e in events[2:]] == [("websocket", 1)]
    assert _filled(events, "1") == 7
    await _close(feed)


async def test_disconnect_flushes_waiting_notices() -> None:
    """Closing while a verification is pending delivers the waiting notices unverified."""
    fake = FakeOrders()
    feed, events = await _after_outage(fake)
    fake.gate = asyncio.Event()
    fake.fill("1", 1)
    feed.on_notice(_notice("1", 1))
    feed.on_notice(_accepted("5"))
    await asyncio.wait_for(fake.started.wait(), 5)
    feed.flush()
    assert not feed._backlog
    assert _filled(events, "1") == 7
    assert events[-1].kind is ExecutionKind.ACCEPTED
    fake.gate.set()
    await _close(feed)


async def test_rest_lag_is_recovered_by_the_recheck() -> None:
    """A genuine fill REST does not show yet is withheld, then delivered by the re-check."""
    fake = FakeOrders()
    feed, events = _feed(fake, gap_fill_verify_window=0.2)
    fake.rows["1"] = (4, 10)
    feed.apply_snapshot(await fake(), "reconnect")
    fake.calls = 0
    feed.on_notice(_notice("1", 2))  # REST lags: still 4 when verification reads it
    await _settle(feed)
    assert _filled(events, "1") == 4
    assert feed.suppressed == 1
    fake.fill("1", 2)  # the inquiry catches up
    async with asyncio.timeout(5):
        while _filled(events, "1") < 6:
            await asyncio.sleep(0.01)
    assert fake.calls == 2  # the verification and one re-check
    assert [(e.source, e.qty) for e in events[1:]] == [("reconcile", 2)]
    await asyncio.sleep(0.15)
    assert _filled(events, "1") == 6
    await _close(feed)


async def test_recheck_after_a_true_duplicate_delivers_nothing() -> None:
    """The re-check after a real duplicate finds nothing new; several share one re-check."""
    fake = FakeOrders()
    feed, events = _feed(fake, gap_fill_verify_window=0.1)
    fake.rows["1"] = (6, 10)
    fake.rows["2"] = (3, 9)
    feed.apply_snapshot(await fake(), "reconnect")
    fake.calls = 0
    feed.on_notice(_notice("1", 1))
    feed.on_notice(_notice("2", 3, 9))
    await _settle(feed)
    assert feed.suppressed == 2
    async with asyncio.timeout(5):
        while fake.calls < 2:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert fake.calls == 2  # one verification fetch, one shared re-check
    assert _filled(events, "1") == 6
    assert _filled(events, "2") == 3
    await _close(feed)
