"""Stream handles and their queues: backpressure and overflow policy.

Every stream (and every callback subscription) has its own buffer, so one slow consumer never
stalls the socket or another consumer:

* quotes and order books conflate: when a buffer reaches its size, it keeps only the newest
  value per symbol (drops are counted);
* execution notices are never dropped: past the high-water mark the stream raises
  :class:`~kis_async.errors.StreamOverflowError` once (the events stay queued and the
  stream goes on delivering them once the consumer catches up);
* a terminal error (the session given up) is raised after what is already queued.

KISBroker and MockBroker use these same classes (only the owner that feeds them differs).

A handle is an async iterator, an async context manager and has ``aclose()``. It subscribes
on ``async with`` or on the first iteration, and leaving it unsubscribes at once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Protocol, Self, TypeVar

from kis_async.errors import StreamOverflowError
from kis_async.models import Execution, OrderBook, Quote
from kis_async.port import AsyncClosing

if TYPE_CHECKING:
    from kis_async.port import Callback

__all__ = [
    "Buffer",
    "CallbackSubscription",
    "ConflatingBuffer",
    "ExecutionStream",
    "LosslessBuffer",
    "OrderBookStream",
    "QuoteStream",
    "StreamHandle",
]

logger = logging.getLogger("kis_async.stream")

T = TypeVar("T")
RegKey = tuple[str, str]


class Sink(Protocol):
    """What the manager pushes into: a stream's or a callback's buffer."""

    def put(self, item: Any) -> None: ...

    def fail(self, exc: BaseException) -> None: ...

    def close(self, *, drain: bool = True) -> None: ...


class Attacher(Protocol):
    """The owner side of a handle: :class:`~kis_async.stream.manager.StreamManager`, or
    MockBroker's in-memory hub. Package-internal."""

    async def attach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Route ``keys`` to ``sink`` and wait until they are subscribed."""

    async def detach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Stop routing ``keys`` to ``sink``; unsubscribe keys nobody holds any more."""

    def spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        """Start a background task the owner tracks and ends on close."""


#: One item in this many puts is timed for the frame-to-consumer lag (when measured).
LAG_SAMPLE_EVERY: Final = 16


class Buffer(Generic[T]):
    """A single-consumer queue with close and fail; ``put`` never blocks."""

    __slots__ = ("_closed", "_error", "_items", "_lag", "_probe", "_probe_at", "_skip", "_waiter")

    #: True when :meth:`_check` never raises, so a queued item can be taken without it
    #: (the consumers' fast path, see :meth:`take`).
    _unchecked: ClassVar[bool] = True

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None
        # Frame-to-consumer lag: one queued item at a time is timed from put to get.
        self._lag: Callable[[float], None] | None = None
        self._probe: T | None = None
        self._probe_at = 0.0
        self._skip = 0

    def measure_lag(self, record: Callable[[float], None]) -> None:
        """Time one queued item at a time from :meth:`put` to :meth:`get`; ``record`` gets
        the seconds. After each sample the next :data:`LAG_SAMPLE_EVERY` - 1 puts are skipped
        (a consumer that never catches up still yields samples)."""
        self._lag = record

    def _sample(self, item: T) -> None:
        if self._skip:
            self._skip -= 1
        else:
            self._probe, self._probe_at = item, time.perf_counter()
            self._skip = LAG_SAMPLE_EVERY - 1

    def __len__(self) -> int:
        return len(self._items)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def put(self, item: T) -> None:
        """Queue ``item`` (never blocks; ignored once ended)."""
        if self._closed:
            return
        if self._lag is not None and self._probe is None:
            self._sample(item)
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, exc: BaseException) -> None:
        """End with ``exc``: ``get`` returns what is already queued, then raises it once.

        Nothing queued is thrown away (an execution queued before the session was given up
        is still delivered); then the stream ends.
        """
        if self._closed:
            return
        self._error = exc
        self._closed = True
        self._wake()

    @property
    def idle(self) -> bool:
        """True when ended, or empty with its consumer waiting in :meth:`get`."""
        return (self._closed and not self._items and self._error is None) or (
            not self._items and self._waiter is not None
        )

    def close(self, *, drain: bool = True) -> None:
        """End the buffer: ``get`` returns what is queued (if ``drain``), then stops."""
        self._closed = True
        if not drain:
            self._items.clear()
        self._wake()

    def _check(self) -> None:
        """Hook for subclasses: raise before the next item."""

    def take(self) -> T | None:
        """The next queued item without waiting, or None when :meth:`get` must be awaited.

        The consumers' fast path: a read burst queues several items with one wake-up, and
        the consumer then takes them without a coroutine per item. Items are never None.
        """
        items = self._items
        if items and self._unchecked:
            item = items.popleft()
            if item is self._probe:
                self._lag_sampled()
            return item
        return None

    def _lag_sampled(self) -> None:
        """The timed record reached its consumer: report its lag, time the next one."""
        self._probe = None
        if self._lag is not None:
            self._lag(time.perf_counter() - self._probe_at)

    async def get(self) -> T:
        """The next item; ``StopAsyncIteration`` when closed and empty."""
        while True:
            self._check()
            if self._items:
                item = self._items.popleft()
                if item is self._probe:
                    self._lag_sampled()
                return item
            error = self._error
            if error is not None:
                self._error = None
                raise error
            if self._closed:
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None


class ConflatingBuffer(Buffer[T]):
    """Keeps the newest value per key once ``maxsize`` values are waiting."""

    __slots__ = ("_key", "_maxsize", "_on_drop", "dropped")

    def __init__(
        self, maxsize: int, key: Callable[[T], Hashable], on_drop: Callable[[int], None]
    ) -> None:
        super().__init__()
        self._maxsize = max(1, maxsize)
        self._key = key
        self._on_drop = on_drop
        self.dropped = 0

    def put(self, item: T) -> None:
        """Queue ``item`` (never blocks; ignored once ended)."""
        if self._closed:
            return
        items = self._items
        if len(items) >= self._maxsize:
            self._conflate(item)
        else:
            items.append(item)
        if self._lag is not None and self._probe is None:
            self._sample(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _conflate(self, item: T) -> None:
        # Once per overflow, not per item: afterwards at most one value per symbol waits, so
        # with a few dozen symbols and a large maxsize this is amortised O(1).
        key = self._key
        newest: dict[Hashable, T] = {}
        for queued in self._items:
            newest.pop(key(queued), None)
            newest[key(queued)] = queued
        newest.pop(key(item), None)
        newest[key(item)] = item
        dropped = len(self._items) + 1 - len(newest)
        self._items = deque(newest.values())
        probe = self._probe
        if probe is not None and newest.get(key(probe)) is not probe:
            self._probe = None  # dropped: a later put is timed instead
        if dropped:
            self.dropped += dropped
            self._on_drop(dropped)


class LosslessBuffer(Buffer[T]):
    """Never drops; signals once when the backlog passes ``high_water``."""

    __slots__ = ("_armed", "_high_water", "_overflow", "_raise")

    _unchecked: ClassVar[bool] = False  # the overflow signal and its re-arming run per item

    def __init__(self, high_water: int, *, raise_on_overflow: bool = True) -> None:
        super().__init__()
        self._high_water = max(1, high_water)
        self._armed = True
        self._overflow = False
        self._raise = raise_on_overflow

    def put(self, item: T) -> None:
        """Queue ``item`` (never blocks; ignored once ended)."""
        if self._closed:
            return
        if self._lag is not None and self._probe is None:
            self._sample(item)
        items = self._items
        items.append(item)
        if len(items) > self._high_water and self._armed:
            self._armed = False
            if self._raise:
                self._overflow = True
            else:
                logger.warning(
                    "execution callback backlog passed %d events; nothing is dropped",
                    self._high_water,
                )
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check(self) -> None:
        if self._overflow:
            self._overflow = False
            raise StreamOverflowError(
                f"execution stream backlog passed {self._high_water} events; nothing was "
                "dropped, the events are still queued"
            )
        if not self._armed and len(self._items) <= self._high_water // 2:
            self._armed = True


class StreamHandle(AsyncClosing, Generic[T]):
    """Shared lifecycle of the stream handles.

    The subscription runs in a task of the owner, so cancelling the first ``__anext__``
    (``asyncio.wait_for(anext(stream), t)``) does not cancel it half way; cancelling any
    ``__anext__`` leaves the stream open with its queue intact. A stream ends only on
    :meth:`aclose` (leaving ``async with``, or ``break`` out of ``async for`` followed by
    ``aclose``), when its owner closes, or on a terminal error.
    """

    def __init__(
        self,
        owner: Attacher,
        keys: tuple[RegKey, ...],
        buffer: Buffer[T],
        *,
        sink: Sink | None = None,
    ) -> None:
        self._owner = owner
        self._keys = keys
        self._buffer = buffer
        self._sink: Sink = buffer if sink is None else sink
        self._state = "new"  # new -> opening -> open -> closed
        self._opening: asyncio.Task[None] | None = None
        self._iterated = False

    def mark_open(self) -> None:
        """The owner subscribed this handle already (MockBroker: nothing to wait for)."""
        if self._state == "new":
            self._state = "open"

    @property
    def buffer(self) -> Buffer[T]:
        """The handle's queue (package-internal: MockBroker's ``settle`` inspects it)."""
        return self._buffer

    @property
    def iterated(self) -> bool:
        """True once ``__anext__`` has been called."""
        return self._iterated

    @property
    def closed(self) -> bool:
        """True once the handle has ended or been closed."""
        return self._state == "closed"

    async def _open(self) -> None:
        if self._state == "open":
            return
        if self._state == "closed":
            raise RuntimeError("this stream is closed")
        task = self._opening
        if task is None:
            self._state = "opening"
            task = self._owner.spawn(self._subscribe(), "kis_async-stream-open")
            # The outcome is read below (or by the next caller); never "never retrieved".
            task.add_done_callback(_retrieve)
            self._opening = task
        await asyncio.shield(task)

    async def _subscribe(self) -> None:
        try:
            await self._owner.attach(self._sink, self._keys)
        except BaseException:
            self._state = "closed"
            self._buffer.close(drain=False)
            raise
        if self._state == "closed":  # closed while opening
            await self._owner.detach(self._sink, self._keys)
            return
        self._state = "open"

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        self._iterated = True
        if self._state == "open":
            item = self._buffer.take()
            if item is not None:
                return item
        else:
            if self._state == "closed":
                raise StopAsyncIteration
            await self._open()
        try:
            return await self._buffer.get()
        except (StreamOverflowError, asyncio.CancelledError):
            # Overflow: the events are still queued. Cancellation (a timeout around anext):
            # the caller gave up waiting; the stream and its queue stay as they are.
            raise
        except BaseException:
            await self.aclose()
            raise

    async def __aenter__(self) -> Self:
        try:
            await self._open()
        except asyncio.CancelledError:
            await self.aclose()  # nobody will leave this block: unsubscribe once open
            raise
        return self

    async def aclose(self) -> None:
        """Unsubscribe now (shared registrations stay for their other consumers). Idempotent."""
        if self._state == "closed":
            return
        was_open = self._state == "open"
        self._state = "closed"
        self._buffer.close(drain=False)
        if was_open:
            await self._owner.detach(self._sink, self._keys)


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


class _ConflatingHandle(StreamHandle[T]):
    """A market-data stream: per-symbol conflation when the consumer lags."""

    def __init__(
        self, owner: Attacher, keys: tuple[RegKey, ...], buffer: ConflatingBuffer[T]
    ) -> None:
        super().__init__(owner, keys, buffer)
        self._conflating = buffer

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols of this stream."""
        return tuple(key for _, key in self._keys)

    @property
    def dropped(self) -> int:
        """Values this stream dropped by conflation (older values of a symbol)."""
        return self._conflating.dropped


class QuoteStream(_ConflatingHandle[Quote]):
    """Real-time trades (H0STCNT0) of some symbols; conflates per symbol when lagging."""


class OrderBookStream(_ConflatingHandle[OrderBook]):
    """Real-time order books (H0STASP0) of some symbols; conflates per symbol when lagging."""


class ExecutionStream(StreamHandle[Execution]):
    """This account's execution notices; lossless (see :class:`StreamOverflowError`).

    Each stream is its own consumer with its own exactly-once cursor (see
    :mod:`kis_async.stream.executions`); every event it yields carries that cursor.
    """

    def __repr__(self) -> str:
        return f"ExecutionStream(state={self._state!r})"


class CallbackSubscription(Generic[T]):
    """A callback subscription: its own buffer and task, so a slow callback stalls nothing.

    A callback that raises is logged and the subscription goes on. When the session is given
    up, ``on_error`` (if given) is called with the :class:`BrokerConnectionError`, otherwise
    it is logged; :attr:`error` keeps it.
    """

    def __init__(
        self,
        owner: Attacher,
        keys: tuple[RegKey, ...],
        buffer: Buffer[T],
        callback: Callback[T],
        on_error: Callable[[BaseException], Any] | None,
        *,
        sink: Sink | None = None,
    ) -> None:
        self._owner = owner
        self._keys = keys
        self._buffer = buffer
        self._sink: Sink = buffer if sink is None else sink
        self._callback = callback
        self._on_error = on_error
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.error: BaseException | None = None
        self.calls = 0
        self.failures = 0

    async def start(self) -> None:
        """Subscribe and start the callback task (the owner calls it once)."""
        await self._owner.attach(self._sink, self._keys)
        self._task = self._owner.spawn(self._run(), "kis_async-callback")

    @property
    def closed(self) -> bool:
        """True once closed or ended by an error."""
        return self._closed or (self._task is not None and self._task.done())

    @property
    def buffer(self) -> Buffer[T]:
        """The subscription's queue (package-internal: MockBroker's ``settle`` inspects it)."""
        return self._buffer

    async def _run(self) -> None:
        callback = self._callback
        buffer = self._buffer
        while True:
            try:
                taken = buffer.take()
                item = await buffer.get() if taken is None else taken
            except StopAsyncIteration:
                return
            except Exception as exc:
                self.error = exc
                await self._notify(exc)
                if not isinstance(exc, StreamOverflowError):
                    return
                continue
            self.calls += 1
            try:
                result = callback(item)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                logger.exception("a stream callback raised; the subscription goes on")

    async def _notify(self, exc: BaseException) -> None:
        handler = self._on_error
        if handler is None:
            logger.error("callback subscription ended: %s", exc)
            return
        try:
            result = handler(exc)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("an on_error handler raised")

    async def aclose(self) -> None:
        """Unsubscribe now and stop the callback task. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._buffer.close(drain=False)
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._owner.detach(self._sink, self._keys)
