"""ExecutionFeed: exactly-once fills for every execution consumer (no sockets here).

Fills reach this module two ways: decoded execution notices (handed in by the manager, which
owns the socket) and today's orders over REST (``fetch_orders``, the gap-fill). Two layers of
accounting keep every filled quantity of every order exactly once:

* **The feed's ledger** (:class:`~kis_async.stream.ledger.FillLedger`) merges notices and REST
  snapshots into one sequence of fill events, each with the order's cumulative quantity after
  it. The verification window, the ordered backlog and the re-check that close the
  "notice in flight while the snapshot was applied" race live here too (see the ledger's
  docstring for the reasoning).
* **Each consumer** (one per ``executions()`` stream or ``subscribe_executions`` callback) has
  its own cursor: per order, the cumulative filled quantity *queued to that consumer*. An
  event with cumulative ``C`` for an order reaches a consumer as ``C - cursor`` shares when
  positive, and not at all otherwise. So a consumer never receives a quantity twice, and
  whatever it has not received yet (because it started later, or its predecessor crashed
  with notices still queued) is caught up by the next event or replay of that order.

A consumer starts in one of three ways:

* ``replay=True`` (the default): at start it is given every fill event of today the feed has
  seen, then a REST gap-fill runs; events it already has are skipped by its cursor;
* ``replay=False``: its cursor starts at what the feed has delivered so far, raised to the
  fills the first REST snapshot after it joined reports, so it sees only what comes after it
  opened;
* ``since=cursor`` (an :class:`~kis_async.models.ExecutionCursor` persisted by an earlier
  consumer, possibly in another process): its cursor starts there, the feed's history and a
  REST gap-fill bring it up to date, so it receives exactly the fills after that point.

A consumer that is closed takes its queue with it; nothing it had queued counts for anyone
else. The feed is given ``fetch_orders`` and a task spawner and knows nothing of sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date, datetime
from typing import Any

from kis_async.models import KST, Exchange, Execution, ExecutionCursor, ExecutionKind, Order
from kis_async.stream.ledger import FillLedger
from kis_async.stream.options import StreamOptions
from kis_async.stream.streams import Buffer
from kis_async.validation import normalize_order_id

__all__ = ["ExecutionConsumer", "ExecutionFeed", "ExecutionTap", "reconcile_event"]

logger = logging.getLogger("kis_async.stream")

Spawner = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


def reconcile_event(order: Order, qty: int) -> Execution:
    """The replayed FILLED event of ``qty`` shares a REST row reports beyond the notices."""
    return Execution(
        kind=ExecutionKind.FILLED,
        broker_order_id=order.broker_order_id,
        original_order_id=order.original_order_id,
        branch_no=order.branch_no,
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        qty=qty,
        price=order.avg_fill_price,
        order_qty=order.qty,
        # The REST row's own time (KIS's daily inquiry gives the order time, not a per-fill
        # time), never the moment of the replay.
        time=order.ordered_at,
        source="reconcile",
        name=order.name,
        replayed=True,
        exchange=order.exchange,
        # The row says where the order was placed; an SOR order's venue is not in it.
        venue=order.exchange if order.exchange is not Exchange.SOR else None,
    )


def _today() -> date:
    return datetime.now(KST).date()


class ExecutionConsumer:
    """One execution consumer: its queue and its exactly-once cursor.

    It is also the manager's sink for the notice registration (so failures and closes reach
    the queue); notices themselves reach it only through the feed.
    """

    __slots__ = ("_buffer", "_cursor", "_filled", "baseline_pending", "replay", "since")

    def __init__(
        self, buffer: Buffer[Execution], *, replay: bool, since: ExecutionCursor | None
    ) -> None:
        self._buffer = buffer
        self.replay = replay
        self.since = since
        self._filled: dict[str, int] = {}
        self._cursor = ExecutionCursor._trusted(_today(), self._filled)
        self.baseline_pending = False

    @property
    def wants_history(self) -> bool:
        """True when it starts from earlier fills (replay or a cursor)."""
        return self.replay or self.since is not None

    @property
    def cursor(self) -> ExecutionCursor:
        """The position after the last event queued to this consumer."""
        return self._cursor

    def start(self, day: date, delivered: dict[str, int]) -> None:
        """Set the starting cursor (called by the feed when the consumer joins)."""
        since = self.since
        if since is not None and since.day == day:
            start = dict(since.filled)
        elif self.replay or since is not None:
            start = {}  # replay, or a cursor of an earlier day: all of today is after it
        else:
            start = dict(delivered)
        self._filled = start
        self._cursor = ExecutionCursor._trusted(day, start)
        # replay=False: fills that happened before it opened but that the feed has not seen
        # (no notice registration then) are learnt from the next REST snapshot, not delivered.
        self.baseline_pending = not self.wants_history

    def set_baseline(self, orders: list[Order]) -> None:
        """Count every fill a REST snapshot reports as already received (replay=False)."""
        filled = dict(self._filled)
        for order in orders:
            oid = normalize_order_id(order.broker_order_id)
            if order.filled_qty > filled.get(oid, 0):
                filled[oid] = order.filled_qty
        self._filled = filled
        self._cursor = ExecutionCursor._trusted(self._cursor.day, filled)
        self.baseline_pending = False

    def offer_fill(self, event: Execution, oid: str, cumulative: int, replayed: bool) -> None:
        """Queue what ``event`` (the order's cumulative fill after it) adds for this consumer."""
        have = self._filled.get(oid, 0)
        qty = cumulative - have
        if qty <= 0:
            return
        filled = dict(self._filled)  # copy on write: cursors already handed out stay valid
        filled[oid] = cumulative
        self._filled = filled
        cursor = ExecutionCursor._trusted(self._cursor.day, filled)
        self._cursor = cursor
        self._buffer.put(event._stamped(qty, cursor, replayed))

    def offer(self, event: Execution) -> None:
        """Queue a non-fill event (acceptance, modification, cancellation, rejection)."""
        self._buffer.put(event._stamped(event.qty, self._cursor, False))

    # -- Sink (the manager's side) ----------------------------------------------------------

    def put(self, item: Any) -> None:
        """Not used for notices (they come through the feed); forwards to the queue."""
        self._buffer.put(item)

    def fail(self, exc: BaseException) -> None:
        """End the queue with ``exc`` (the session was given up, or KIS refused)."""
        self._buffer.fail(exc)

    def close(self, *, drain: bool = True) -> None:
        """End the queue (after what is queued when ``drain``)."""
        self._buffer.close(drain=drain)


class ExecutionTap:
    """The recently delivered execution events (bounded) and the synchronous listeners that
    see each one: shared by :class:`ExecutionFeed` and the gateway's execution source.

    Args:
        size: how many recent events are kept.
        log: where a raising listener is logged (the listener is kept).
    """

    def __init__(self, size: int, log: logging.Logger) -> None:
        self._recent: deque[Execution] = deque(maxlen=size)
        self._listeners: list[Callable[[Execution], None]] = []
        self._log = log

    @property
    def has_listeners(self) -> bool:
        """True while some listener is added."""
        return bool(self._listeners)

    def add_listener(self, fn: Callable[[Execution], None]) -> Callable[[], None]:
        """Call ``fn`` for every event published; returns a remover (idempotent)."""
        self._listeners.append(fn)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(fn)

        return remove

    def publish(self, event: Execution) -> None:
        """Keep ``event`` among the recent ones and call every listener with it."""
        self._recent.append(event)
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                self._log.exception("an execution listener raised")

    def recent(self) -> list[Execution]:
        """The recent events, oldest first."""
        return list(self._recent)


class _PendingNotice:
    """A notice waiting in the backlog (verification pending ahead of it)."""

    __slots__ = ("event", "filled_now", "unverified")

    def __init__(self, event: Execution) -> None:
        self.event = event
        self.filled_now: int | None = None  # the order's REST cumulative fill, once fetched
        self.unverified = False  # verification failed: account it as a plain notice


class _Snapshot:
    """A gap-fill REST answer waiting in the backlog behind earlier notices."""

    __slots__ = ("orders", "reason")

    def __init__(self, orders: list[Order], reason: str) -> None:
        self.orders = orders
        self.reason = reason


class ExecutionFeed:
    """Fill ledger, per-consumer cursors, backlog and REST verification (module docstring).

    Args:
        fetch_orders: coroutine function returning today's orders.
        spawn: starts an owned background task (``spawn(coro, name)``).
        options: the stream tuning (verification window and timeouts, recent buffer size).
        today: the current trading day (KST by default; MockBroker passes its clock's).
    """

    def __init__(
        self,
        *,
        fetch_orders: Callable[[], Awaitable[list[Order]]],
        spawn: Spawner,
        options: StreamOptions,
        today: Callable[[], date] = _today,
    ) -> None:
        self.fetch_orders = fetch_orders
        self._spawn = spawn
        self.options = options
        self._today = today
        self._ledger = FillLedger()
        self._day = today()
        # Every fill event of the day in delivery order, with the order's cumulative fill
        # after it: what replaying consumers are given.
        self._history: list[tuple[Execution, str, int]] = []
        self._consumers: list[ExecutionConsumer] = []
        self._tap = ExecutionTap(options.recent_executions, logger)
        # Notices and gap-fill snapshots wait here, in arrival order, while a notice ahead of
        # them is being verified; empty (and bypassed) otherwise.
        self._backlog: deque[_PendingNotice | _Snapshot] = deque()
        self._drain_task: asyncio.Task[None] | None = None
        self._gap_lock = asyncio.Lock()
        self._recheck_pending = False
        self.reconciled = 0
        self.suppressed = 0
        self.verifications = 0

    # -- consumers and listeners ------------------------------------------------------------

    @property
    def consumers(self) -> int:
        """How many consumers are attached."""
        return len(self._consumers)

    def join(self, consumer: ExecutionConsumer) -> None:
        """Attach ``consumer``: set its cursor and queue its replay (synchronously)."""
        self._roll_day()
        consumer.start(self._day, self._ledger.delivered_map())
        if consumer.wants_history:
            for event, oid, cumulative in self._history:
                consumer.offer_fill(event, oid, cumulative, True)
        self._consumers.append(consumer)

    def leave(self, consumer: ExecutionConsumer) -> None:
        """Detach ``consumer`` (what it had queued goes with it)."""
        with contextlib.suppress(ValueError):
            self._consumers.remove(consumer)

    def add_listener(self, fn: Callable[[Execution], None]) -> Callable[[], None]:
        """Call ``fn`` synchronously for every event the feed delivers; returns a remover."""
        return self._tap.add_listener(fn)

    def recent(self) -> list[Execution]:
        """Events delivered recently (bounded), oldest first."""
        return self._tap.recent()

    def _roll_day(self) -> None:
        """At the first event of a new KST day, forget yesterday's fills (REST forgets too)."""
        today = self._today()
        if today != self._day:
            self._day = today
            self._ledger = FillLedger()
            self._history.clear()
            for consumer in self._consumers:
                consumer.start(today, {})

    # -- notices ------------------------------------------------------------------------------

    def on_notice(self, event: Execution) -> None:
        """Account and deliver a decoded notice, or queue it behind a pending verification.

        Called from the socket reader: never waits.
        """
        if self._backlog or self._must_verify(event):
            self._enqueue(_PendingNotice(event))
        else:
            self._account_notice(event, None)

    def _must_verify(self, event: Execution) -> bool:
        """A fill notice of an order inside a post-snapshot verification window."""
        return (
            event.kind is ExecutionKind.FILLED
            and event.qty > 0
            and self.options.gap_fill_verify_window > 0
            and self._ledger.needs_verification(
                event.broker_order_id, asyncio.get_running_loop().time()
            )
        )

    def _account_notice(self, event: Execution, filled_now: int | None) -> None:
        """Run a notice through the ledger (verified when ``filled_now`` is known) and deliver."""
        self._roll_day()
        if event.kind is ExecutionKind.FILLED:
            oid = event.broker_order_id
            if filled_now is None:
                qty = self._ledger.notice(oid, event.qty, event.order_qty)
            else:
                qty = self._ledger.verified_notice(oid, event.qty, filled_now, event.order_qty)
                if qty < event.qty:
                    self._schedule_recheck()
                if qty > 0 and self._ledger.delivered(oid) < filled_now:
                    # REST knows fills whose notices are still on the way: verify those too.
                    self._ledger.watch(
                        oid,
                        asyncio.get_running_loop().time() + self.options.gap_fill_verify_window,
                    )
            if qty <= 0:
                if filled_now is None:
                    logger.debug("fill notice already delivered by gap-fill; skipped")
                else:
                    self.suppressed += 1
                    logger.debug(
                        "fill notice of %d share(s) already covered by the gap-fill snapshot "
                        "(verified over REST); suppressed",
                        event.qty,
                    )
                return
            if qty != event.qty:
                event = event.replace(qty=qty)
        self._deliver(event)

    def _deliver(self, event: Execution) -> None:
        self._tap.publish(event)
        if event.kind is ExecutionKind.FILLED:
            oid = normalize_order_id(event.broker_order_id)
            cumulative = self._ledger.delivered(oid)
            self._history.append((event, oid, cumulative))
            replayed = event.source == "reconcile"
            for consumer in self._consumers:
                consumer.offer_fill(event, oid, cumulative, replayed)
        else:
            for consumer in self._consumers:
                consumer.offer(event)

    # -- the ordered backlog: verification without reordering -------------------------------

    def _enqueue(self, item: _PendingNotice | _Snapshot) -> None:
        self._backlog.append(item)
        task = self._drain_task
        if task is None or task.done():
            self._drain_task = self._spawn(self._drain_backlog(), "kis_async-notice-verify")

    @property
    def idle(self) -> bool:
        """True when no notice waits for verification."""
        task = self._drain_task
        return not self._backlog and (task is None or task.done())

    async def _drain_backlog(self) -> None:
        """Deliver the backlog in order, fetching once per batch of notices to verify."""
        while True:
            self._deliver_ready()
            if not self._backlog:
                return
            await self._verify_pending()

    def _deliver_ready(self) -> None:
        """Deliver from the head of the backlog until a notice still needs verification."""
        backlog = self._backlog
        while backlog:
            item = backlog[0]
            if isinstance(item, _Snapshot):
                backlog.popleft()
                self.apply_snapshot(item.orders, item.reason)
                continue
            if item.filled_now is None and not item.unverified and self._must_verify(item.event):
                return
            backlog.popleft()
            self._account_notice(item.event, item.filled_now)

    async def _verify_pending(self) -> None:
        """One bounded REST fetch for every queued notice that needs verification now.

        Every notice in the batch arrived before the fetch started, so each row already
        includes that notice's fill. Notices arriving during the fetch wait for the next one.
        """
        batch = [
            item
            for item in self._backlog
            if isinstance(item, _PendingNotice)
            and item.filled_now is None
            and not item.unverified
            and self._must_verify(item.event)
        ]
        if not batch:
            return  # the window closed meanwhile: the head is delivered unverified
        self.verifications += 1
        try:
            async with asyncio.timeout(self.options.gap_fill_verify_timeout):
                orders = await self.fetch_orders()
        except Exception as exc:
            logger.warning(
                "could not verify %d fill notice(s) after gap-fill (%s); delivering them "
                "unverified",
                len(batch),
                type(exc).__name__,
            )
            for item in batch:
                item.unverified = True
            return
        filled: dict[str, int] = {}
        for order in orders:
            oid = normalize_order_id(order.broker_order_id)
            filled[oid] = max(filled.get(oid, 0), order.filled_qty)
        missing = 0
        for item in batch:
            now = filled.get(normalize_order_id(item.event.broker_order_id))
            if now is None:
                missing += 1
                item.unverified = True
            else:
                item.filled_now = now
        if missing:
            logger.warning(
                "%d fill notice(s) name an order missing from today's orders; delivered unverified",
                missing,
            )

    def flush(self) -> None:
        """Deliver everything queued now (unverified where no answer came yet): on close."""
        backlog = self._backlog
        while backlog:
            item = backlog.popleft()
            if isinstance(item, _Snapshot):
                self.apply_snapshot(item.orders, item.reason)
            else:
                self._account_notice(item.event, item.filled_now)

    # -- gap-fill ---------------------------------------------------------------------------

    async def gap_fill(self, reason: str) -> None:
        """Fetch today's orders and deliver fills no notice reported (one at a time).

        A failed fetch is retried (after 0.5, 1 and 2 s): a replaying consumer depends on it.
        """
        async with self._gap_lock:
            for attempt, delay in enumerate((0.5, 1.0, 2.0, None), start=1):
                try:
                    orders = await self.fetch_orders()
                except Exception as exc:
                    if delay is None:
                        logger.warning(
                            "gap-fill after %s failed %d times (%s); the next one covers it",
                            reason,
                            attempt,
                            type(exc).__name__,
                        )
                        return
                    logger.warning(
                        "gap-fill after %s failed (%s); retrying in %.1f s",
                        reason,
                        type(exc).__name__,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                self.submit_snapshot(orders, reason)
                return

    def submit_snapshot(self, orders: list[Order], reason: str) -> None:
        """Apply a REST answer now, or behind the notices that arrived before it."""
        if self._backlog:
            self._enqueue(_Snapshot(orders, reason))
        else:
            self.apply_snapshot(orders, reason)

    def _schedule_recheck(self) -> None:
        """Re-read today's orders once, shortly after a verification withheld quantity.

        A withheld notice is normally a duplicate. But if KIS's order inquiry lagged behind
        the notice, it was a real fill: this re-check delivers any such quantity as a
        ``reconcile`` event (its own snapshot re-opens the windows, so notices in flight
        meanwhile are verified as after any gap-fill). Several suppressions share one re-check.
        """
        if self._recheck_pending:
            return
        self._recheck_pending = True
        self._spawn(self._recheck(), "kis_async-fill-recheck")

    async def _recheck(self) -> None:
        try:
            await asyncio.sleep(self.options.gap_fill_verify_window / 2)
        finally:
            self._recheck_pending = False
        self.verifications += 1
        try:
            async with asyncio.timeout(self.options.gap_fill_verify_timeout):
                orders = await self.fetch_orders()
        except Exception as exc:
            logger.warning(
                "fill verification re-check failed (%s); the next gap-fill covers it",
                type(exc).__name__,
            )
            return
        self.submit_snapshot(orders, "fill verification re-check")

    def apply_snapshot(self, orders: list[Order], reason: str) -> None:
        """Emit what the snapshot reports beyond the delivered fills; open verify windows."""
        if not self._consumers and not self._tap.has_listeners:
            return
        self._roll_day()
        for consumer in self._consumers:
            if consumer.baseline_pending:
                consumer.set_baseline(orders)
        window = self.options.gap_fill_verify_window
        until = 0.0
        if window > 0:
            now = asyncio.get_running_loop().time()
            self._ledger.watching(now)  # forget expired windows
            until = now + window
        emitted = 0
        for order in orders:
            if order.filled_qty <= 0:
                continue
            if window > 0 and order.filled_qty < order.qty:
                # Partly filled: a notice still in flight cannot be told from a new fill.
                self._ledger.watch(order.broker_order_id, until)
            qty = self._ledger.reconcile(order.broker_order_id, order.filled_qty, order.qty)
            if qty <= 0:
                continue
            emitted += 1
            self.reconciled += 1
            self._deliver(reconcile_event(order, qty))
        logger.info("gap-fill after %s: %d fill event(s) emitted", reason, emitted)
