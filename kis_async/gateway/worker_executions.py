"""A worker's execution events, read from the gateway's stream ``{ns}:x``.

Two ways to consume it, both feeding the real stream handles and buffers:

* **Cursor consumers** (``executions(replay=..., since=...)``): each is an
  :class:`~kis_async.stream.executions.ExecutionConsumer` with its own exactly-once cursor,
  exactly as with a direct socket. Every entry carries the order's cumulative fill after it
  (``cum``), so ``offer_fill`` applies the same accounting. At start a consumer gets today's
  entries (XRANGE from KST midnight): replayed when it replays or resumes from a cursor, or
  counted into its starting cursor with ``replay=False``. Then one tail reader per worker
  (XREAD BLOCK) hands every new entry to every consumer. A consumer joins the tail with no
  await between reading its history and joining, so no entry is lost or doubled at the seam.
* **Consumer groups** (``executions(group=..., consumer=...)``): Redis keeps the position.
  Each entry goes to one consumer of the group; it is acknowledged (XACK) when the consumer
  asks for the next one, or closes the stream normally after taking it. So after a crash
  only the entry that was being handled is delivered again (``replayed=True``): on start a
  consumer re-reads its own pending entries, then claims (XAUTOCLAIM) entries other
  consumers of the group left idle, then reads new ones. It reads one entry only when its
  consumer waits for one, so nothing sits unacknowledged in a queue of a live process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date, datetime, time
from types import TracebackType
from typing import Any, Final

from kis_async.errors import BrokerConnectionError
from kis_async.gateway.keys import GatewayKeys, decode_execution
from kis_async.models import KST, Execution, ExecutionCursor, ExecutionKind, Order
from kis_async.stream.executions import ExecutionConsumer, ExecutionTap, reconcile_event
from kis_async.stream.options import StreamOptions
from kis_async.stream.streams import ExecutionStream, LosslessBuffer
from kis_async.validation import normalize_order_id

__all__ = [
    "ExecutionSource",
    "GroupBuffer",
    "GroupConsumer",
    "GroupExecutionStream",
    "ReadRetries",
    "check_group_name",
    "entry_id",
    "text",
]

logger = logging.getLogger("kis_async.gateway")

Spawner = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]

#: Entries per XRANGE page, and per XREAD of the tail.
_PAGE: Final = 500
#: Milliseconds one blocking read waits before looking at its state again.
_BLOCK_MS: Final = 1000


def text(value: bytes | str) -> str:
    """A Redis reply item as text (clients may or may not decode responses)."""
    return value.decode() if isinstance(value, bytes) else value


class ReadRetries:
    """The consecutive failed Redis reads of one reader loop: the backoff between them and
    when to give up (after ``options.max_reconnect_attempts`` in a row).

    Args:
        options: the reconnect backoff and the attempt limit.
        what: what the loop reads, for the log (``"market data"``).
        give_up: given the error to end the loop's streams with, after the last attempt.
    """

    def __init__(
        self,
        options: StreamOptions,
        what: str,
        give_up: Callable[[BrokerConnectionError], None],
    ) -> None:
        self._options = options
        self._what = what
        self._give_up = give_up
        self.failures = 0

    def succeeded(self) -> None:
        """A read answered: the next failure is the first again."""
        self.failures = 0

    async def failed(self, exc: BaseException) -> bool:
        """Count a failed read: log, wait the backoff and return True (read again); after the
        last attempt, hand the error to ``give_up`` and return False (stop reading)."""
        self.failures += 1
        options = self._options
        if self.failures >= options.max_reconnect_attempts:
            self._give_up(
                BrokerConnectionError(
                    f"the gateway's Redis did not answer after {options.max_reconnect_attempts} "
                    f"attempts ({type(exc).__name__})"
                )
            )
            return False
        delay = min(
            options.reconnect_base_delay * 2 ** (self.failures - 1),
            options.reconnect_max_delay,
        )
        logger.warning(
            "gateway Redis read of %s failed (%s); retrying in %.2f s",
            self._what,
            type(exc).__name__,
            delay,
        )
        await asyncio.sleep(delay)
        return True


def entry_id(value: bytes | str) -> tuple[int, int]:
    """A stream entry id as a comparable ``(ms, seq)``."""
    ms, _, seq = text(value).partition("-")
    return int(ms), int(seq or 0)


def check_group_name(what: str, value: object) -> str:
    """A consumer group or consumer name: a non-empty str without spaces or control chars.

    Raises:
        ValueError: anything else (TypeError for a non-str).
    """
    if not isinstance(value, str):
        raise TypeError(f"the execution {what} name must be a str")
    if not value or not value.isprintable() or any(c.isspace() for c in value):
        raise ValueError(f"the execution {what} name must be a non-empty word")
    return value


def _today() -> date:
    return datetime.now(KST).date()


def _day_start_id(day: date) -> str:
    """The first possible entry id of ``day`` (KST midnight, ms)."""
    midnight = datetime.combine(day, time(), tzinfo=KST)
    return f"{int(midnight.timestamp() * 1000)}-0"


def _entry_day(eid: tuple[int, int]) -> date:
    return datetime.fromtimestamp(eid[0] / 1000, KST).date()


def _stream_entries(reply: Any) -> list[tuple[Any, Any]]:
    """The entries of an XREAD/XREADGROUP reply on one stream (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        out: list[tuple[Any, Any]] = []
        for value in reply.values():
            entries = value[0] if value and isinstance(value[0], list) else value
            out.extend(entries)
        return out
    return [entry for _key, entries in reply for entry in entries]


# -- cursor consumers ---------------------------------------------------------------------


class ExecutionSource:
    """Reads the account's execution stream for one worker (see the module docstring).

    Args:
        redis: the Redis client.
        keys: the gateway's key names.
        options: stream tuning (``recent_executions``, reconnect backoff and attempts).
        spawn: starts an owned background task.
        claim_idle: seconds after which a group entry another consumer left unacknowledged
            is claimed.
        today: the current KST trading day.
        fetch_orders: today's orders over REST, read when a cursor consumer joins (as a
            direct socket's gap-fill): a ``replay=False`` consumer counts the fills it reports
            as received, a replaying (or ``since=``) consumer gets the fills it reports beyond
            the gateway's entries as ``replayed`` reconcile events. So a fill booked before the
            stream opened whose notice the gateway had not published yet is handled as with a
            direct socket; its notice, when it comes, adds nothing (cumulative quantities).
    """

    def __init__(
        self,
        redis: Any,
        keys: GatewayKeys,
        options: StreamOptions,
        spawn: Spawner,
        *,
        claim_idle: float = 30.0,
        today: Callable[[], date] = _today,
        fetch_orders: Callable[[], Awaitable[list[Order]]] | None = None,
    ) -> None:
        self._redis = redis
        self._fetch_orders = fetch_orders
        self._stream = keys.executions
        self._options = options
        self._spawn = spawn
        self._claim_idle = claim_idle
        self._today = today
        self._consumers: list[ExecutionConsumer] = []
        self._groups: list[GroupConsumer] = []
        self._tap = ExecutionTap(options.recent_executions, logger)
        self._tail: asyncio.Task[None] | None = None
        self._position: tuple[int, int] | None = None  # the tail's last dispatched entry
        self._day = today()
        self.entries = 0
        self.reconciled = 0

    @property
    def active(self) -> bool:
        """True while the tail reader runs (some cursor consumer is attached)."""
        return self._tail is not None and not self._tail.done()

    @property
    def consumers(self) -> int:
        """Cursor consumers and group consumers attached."""
        return len(self._consumers) + len(self._groups)

    def recent(self) -> list[Execution]:
        """Events the tail read recently (bounded), oldest first."""
        return self._tap.recent()

    def add_listener(self, fn: Callable[[Execution], None]) -> Callable[[], None]:
        """Call ``fn`` for every event the tail reads; returns a remover."""
        return self._tap.add_listener(fn)

    async def _range(self, start: str) -> list[tuple[tuple[int, int], Any]]:
        """Every entry from ``start`` (inclusive, or exclusive with a ``(`` prefix) on."""
        out: list[tuple[tuple[int, int], Any]] = []
        while True:
            page = await self._redis.xrange(self._stream, min=start, max="+", count=_PAGE)
            for eid, fields in page:
                out.append((entry_id(eid), fields))
            if len(page) < _PAGE:
                return out
            start = "(" + text(page[-1][0])

    async def join(self, consumer: ExecutionConsumer) -> None:
        """Start ``consumer`` on today's entries, then on the tail (exactly once)."""
        day = self._today()
        snapshot = await self._snapshot()
        history = await self._range(_day_start_id(day))
        # The tail may have dispatched entries our XRANGE did not see yet: read up to it.
        while self._position is not None and (not history or history[-1][0] < self._position):
            last = history[-1][0] if history else None
            start = f"({last[0]}-{last[1]}" if last else _day_start_id(day)
            more = await self._range(start)
            if not more:
                break
            history.extend(more)
        # From here to the join, no await: the tail cannot move in between.
        if self._position is not None:
            history = [item for item in history if item[0] <= self._position]
        decoded: list[tuple[Execution, str, int]] = []
        delivered: dict[str, int] = {}
        for _eid, fields in history:
            event, cum = self._decode(fields)
            if event is None or event.kind is not ExecutionKind.FILLED or cum is None:
                continue
            oid = normalize_order_id(event.broker_order_id)
            decoded.append((event, oid, cum))
            delivered[oid] = max(delivered.get(oid, 0), cum)
        consumer.start(day, delivered)
        if snapshot is not None and not consumer.wants_history:
            consumer.set_baseline(snapshot)  # and the fills REST knew of before it opened
        consumer.baseline_pending = False  # the gateway's entries are the baseline
        if consumer.wants_history:
            for event, oid, cum in decoded:
                consumer.offer_fill(event, oid, cum, True)
            for order in snapshot or ():
                # What REST reports beyond the gateway's entries: notices still on their way.
                have = consumer.cursor.delivered(order.broker_order_id)
                if order.filled_qty > have:
                    self.reconciled += 1
                    consumer.offer_fill(
                        reconcile_event(order, order.filled_qty - have),
                        normalize_order_id(order.broker_order_id),
                        order.filled_qty,
                        True,
                    )
        self._consumers.append(consumer)
        if not self.active:
            self._position = history[-1][0] if history else entry_id(_day_start_id(day))
            self._day = day
            self._tail = self._spawn(self._run_tail(), "kis_async-gateway-executions")

    async def _snapshot(self) -> list[Order] | None:
        """Today's orders over REST, or None (no REST here, or it failed: logged)."""
        if self._fetch_orders is None:
            return None
        try:
            return await self._fetch_orders()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning(
                "REST snapshot for a new execution stream failed (%s); it starts from the "
                "gateway's entries alone",
                type(exc).__name__,
            )
            return None

    def leave(self, consumer: ExecutionConsumer) -> None:
        """Detach ``consumer``; the tail stops with the last one."""
        with contextlib.suppress(ValueError):
            self._consumers.remove(consumer)
        if not self._consumers and self._tail is not None:
            self._tail.cancel()
            self._tail = None
            self._position = None

    def _decode(self, fields: Any) -> tuple[Execution | None, int | None]:
        try:
            return decode_execution(fields)
        except Exception as exc:
            logger.warning("skipped an execution entry that does not decode (%s)", exc)
            return None, None

    async def _run_tail(self) -> None:
        retries = ReadRetries(self._options, "the execution stream", self._fail)
        while self._consumers:
            position = self._position
            if position is None:
                return
            try:
                reply = await self._redis.xread(
                    {self._stream: f"{position[0]}-{position[1]}"}, count=_PAGE, block=_BLOCK_MS
                )
            except Exception as exc:
                if await retries.failed(exc):
                    continue
                return
            retries.succeeded()
            for eid, fields in _stream_entries(reply):
                self._position = entry_id(eid)
                event, cum = self._decode(fields)
                if event is not None:
                    self._dispatch(self._position, event, cum)

    def _fail(self, error: BrokerConnectionError) -> None:
        for consumer in list(self._consumers):
            consumer.fail(error)
        self._consumers.clear()
        self._tail = None
        self._position = None

    def _dispatch(self, eid: tuple[int, int], event: Execution, cum: int | None) -> None:
        day = _entry_day(eid)
        if day != self._day:
            # A new KST day: yesterday's fills are forgotten (REST forgets them too).
            self._day = day
            for consumer in self._consumers:
                consumer.start(day, {})
                consumer.baseline_pending = False
        self.entries += 1
        self._tap.publish(event)
        if event.kind is ExecutionKind.FILLED and cum is not None:
            if event.source == "reconcile":
                self.reconciled += 1
            oid = normalize_order_id(event.broker_order_id)
            replayed = event.source == "reconcile"
            for consumer in self._consumers:
                consumer.offer_fill(event, oid, cum, replayed)
        else:
            for consumer in self._consumers:
                consumer.offer(event)

    # -- consumer groups ------------------------------------------------------------------

    async def join_group(self, consumer: GroupConsumer) -> None:
        """Create the group if needed, take back pending and idle entries, start reading."""
        redis = self._redis
        try:
            await redis.xgroup_create(
                self._stream, consumer.group, id="0" if consumer.replay else "$", mkstream=True
            )
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        # Our own pending entries first (a previous run of this consumer died holding them).
        start = "0"
        while True:
            reply = await redis.xreadgroup(
                consumer.group, consumer.name, {self._stream: start}, count=_PAGE
            )
            entries = _stream_entries(reply)
            if not entries:
                break
            for eid, fields in entries:
                await self._group_put(consumer, eid, fields, replayed=True)
            start = text(entries[-1][0])
        await self._claim(consumer)
        self._groups.append(consumer)
        consumer.task = self._spawn(self._run_group(consumer), "kis_async-gateway-group")

    def leave_group(self, consumer: GroupConsumer) -> None:
        """Stop reading for ``consumer`` (its unacknowledged entries stay pending)."""
        with contextlib.suppress(ValueError):
            self._groups.remove(consumer)
        task = consumer.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _claim(self, consumer: GroupConsumer) -> None:
        """Claim entries other consumers of the group left idle past ``claim_idle``."""
        start = "0-0"
        idle_ms = int(self._claim_idle * 1000)
        while True:
            reply = await self._redis.xautoclaim(
                self._stream, consumer.group, consumer.name, idle_ms, start_id=start, count=_PAGE
            )
            start = text(reply[0])
            for eid, fields in reply[1]:
                await self._group_put(consumer, eid, fields, replayed=True)
            if start == "0-0":
                return

    async def _group_put(
        self, consumer: GroupConsumer, eid: Any, fields: Any, *, replayed: bool
    ) -> None:
        event, cum = self._decode(fields) if fields else (None, None)
        if event is None:
            # Trimmed away, or not an execution entry: nothing to deliver, never again.
            await self._redis.xack(self._stream, consumer.group, eid)
            return
        self.entries += 1
        consumer.deliver(text(eid), event, cum, replayed or event.source == "reconcile")

    async def _run_group(self, consumer: GroupConsumer) -> None:
        loop = asyncio.get_running_loop()
        next_claim = loop.time() + self._claim_idle
        retries = ReadRetries(self._options, "the execution group", consumer.fail)
        buffer = consumer.buffer
        while True:
            await buffer.demand.wait()
            if buffer.ended:
                return
            try:
                if loop.time() >= next_claim:
                    next_claim = loop.time() + self._claim_idle
                    await self._claim(consumer)
                if len(buffer):
                    buffer.demand.clear()
                    continue
                reply = await self._redis.xreadgroup(
                    consumer.group, consumer.name, {self._stream: ">"}, count=1, block=_BLOCK_MS
                )
                for eid, fields in _stream_entries(reply):
                    await self._group_put(consumer, eid, fields, replayed=False)
            except Exception as exc:
                if await retries.failed(exc):
                    continue
                return
            retries.succeeded()
            if len(buffer):
                buffer.demand.clear()

    async def ack(self, group: str, eid: str) -> None:
        """Acknowledge one group entry (a failure is logged: it stays pending)."""
        try:
            await self._redis.xack(self._stream, group, eid)
        except Exception as exc:
            logger.warning(
                "could not acknowledge an execution entry (%s); it stays pending and is "
                "delivered again when this consumer restarts",
                type(exc).__name__,
            )

    def stop(self) -> None:
        """Stop every reader; every stream ends after what it already queued."""
        consumers, self._consumers = self._consumers, []
        if self._tail is not None:
            self._tail.cancel()
            self._tail = None
        self._position = None
        groups, self._groups = self._groups, []
        for group in groups:
            if group.task is not None:
                group.task.cancel()
        for consumer in consumers:
            consumer.close(drain=True)
        for group in groups:
            group.close(drain=True)


# -- consumer groups: the buffer, the sink and the handle ---------------------------------


class GroupBuffer(LosslessBuffer[Execution]):
    """A lossless queue that remembers which stream entry the consumer holds.

    :meth:`get` acknowledges the entry handed out before (the consumer asks for the next
    one: it has handled it) and raises :attr:`demand` when it has nothing queued, which is
    what makes the reader fetch one more entry.
    """

    __slots__ = ("_ack", "_ids", "demand", "in_hand")

    def __init__(
        self, high_water: int, ack: Callable[[str], Coroutine[Any, Any, None]], **kw: Any
    ) -> None:
        super().__init__(high_water, **kw)
        self._ids: deque[str] = deque()
        self._ack = ack
        self.demand = asyncio.Event()
        self.in_hand: str | None = None

    @property
    def ended(self) -> bool:
        """True once closed or failed."""
        return self._closed

    def put_entry(self, eid: str, item: Execution) -> None:
        """Queue ``item``, the event of stream entry ``eid``."""
        if self._closed:
            return
        self._ids.append(eid)
        self.put(item)

    async def release(self) -> None:
        """Acknowledge the entry in hand (handled), if any."""
        eid, self.in_hand = self.in_hand, None
        if eid is not None:
            await asyncio.shield(self._ack(eid))

    def forget(self) -> None:
        """Leave the entry in hand unacknowledged (its handling failed): redelivered."""
        self.in_hand = None

    async def get(self) -> Execution:
        """Acknowledge the previous entry, then the next event (see the class docstring)."""
        await self.release()
        if not self._items:
            self.demand.set()
        item = await super().get()
        self.in_hand = self._ids.popleft()
        return item

    def fail(self, exc: BaseException) -> None:
        """End with ``exc`` after what is queued."""
        super().fail(exc)
        self.demand.set()  # wake the reader so it ends

    def close(self, *, drain: bool = True) -> None:
        """End the queue (entries not taken stay pending in the group)."""
        if not drain:
            self._ids.clear()
            self.in_hand = None  # not acknowledged: delivered again on restart
        super().close(drain=drain)
        self.demand.set()


class GroupConsumer:
    """One consumer of a consumer group: the sink the owner attaches (module docstring)."""

    __slots__ = ("_filled", "buffer", "day", "group", "name", "replay", "task")

    def __init__(self, buffer: GroupBuffer, *, group: str, name: str, replay: bool) -> None:
        self.buffer = buffer
        self.group = group
        self.name = name
        self.replay = replay
        self.day = _today()
        self._filled: dict[str, int] = {}
        self.task: asyncio.Task[None] | None = None

    def deliver(self, eid: str, event: Execution, cum: int | None, replayed: bool) -> None:
        """Queue the event of entry ``eid`` with this consumer's running cursor."""
        if event.kind is ExecutionKind.FILLED and cum is not None:
            oid = normalize_order_id(event.broker_order_id)
            if cum > self._filled.get(oid, 0):
                self._filled = {**self._filled, oid: cum}
        cursor = ExecutionCursor._trusted(self.day, self._filled)
        self.buffer.put_entry(eid, event._stamped(event.qty, cursor, replayed))

    # -- Sink --------------------------------------------------------------------------------

    def put(self, item: Any) -> None:
        """Not used: entries come through :meth:`deliver`."""

    def fail(self, exc: BaseException) -> None:
        """End the queue with ``exc``."""
        self.buffer.fail(exc)

    def close(self, *, drain: bool = True) -> None:
        """End the queue."""
        self.buffer.close(drain=drain)


class GroupExecutionStream(ExecutionStream):
    """An execution stream of a consumer group.

    Leaving ``async with`` normally (or :meth:`aclose`) acknowledges the entry taken last;
    leaving it with an exception (the handler raised, the task was cancelled) does not, so
    that entry is delivered again, with ``replayed=True``, when the consumer restarts.
    """

    def __init__(self, *args: Any, group_buffer: GroupBuffer, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._group_buffer = group_buffer

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._group_buffer.forget()
        await self.aclose()

    async def aclose(self) -> None:
        """Acknowledge the entry taken last, then unsubscribe. Idempotent."""
        if not self.closed:
            await self._group_buffer.release()
        await super().aclose()

    def __repr__(self) -> str:
        return f"GroupExecutionStream(state={self._state!r})"
