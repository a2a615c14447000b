"""MemoryHub: the real stream handles, buffers and execution feed, fed from memory.

:class:`~kis_async.MockBroker` has no socket: its test pushes quotes, books and order events.
The hub is the owner its handles attach to, in place of
:class:`~kis_async.stream.manager.StreamManager`. Everything a consumer can observe (queues,
conflation, overflow, close, error propagation, replay and cursors of executions) is the same
code as in :class:`~kis_async.KISBroker`; only the data source differs, as httpx's
``MockTransport`` runs the real client.

One difference is inherent: there is no network, so a handle is subscribed the moment it is
created (values pushed after ``broker.quotes(...)`` returns reach it, whether or not it is
being iterated yet).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any

from kis_async.models import Execution, Order
from kis_async.stream.executions import ExecutionConsumer, ExecutionFeed
from kis_async.stream.options import StreamOptions
from kis_async.stream.streams import CallbackSubscription, RegKey, Sink, StreamHandle

__all__ = ["MemoryHub"]

#: The key of the account's execution events in the hub's routing table.
EXECUTIONS_KEY: RegKey = ("executions", "")


class MemoryHub:
    """Routes values pushed in memory to stream handles (see the module docstring).

    Args:
        options: queue sizes; gap-fill verification is off (in memory, a notice and the
            order rows change together, so no notice can be in flight).
        orders: today's orders, synchronously (the replay source of executions).
        today: the current trading day.
    """

    def __init__(
        self,
        options: StreamOptions,
        *,
        orders: Callable[[], list[Order]],
        today: Callable[[], date],
    ) -> None:
        self.options = options
        self._orders = orders
        self._routes: dict[RegKey, list[Sink]] = {}
        self._handles: list[StreamHandle[Any]] = []
        self._subscriptions: list[CallbackSubscription[Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.changed = asyncio.Event()

        async def fetch_orders() -> list[Order]:
            return orders()

        self.feed = ExecutionFeed(
            fetch_orders=fetch_orders, spawn=self.spawn, options=options, today=today
        )

    # -- the owner side of the handles ------------------------------------------------------

    def open_handle(self, handle: StreamHandle[Any], sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Subscribe ``handle`` now (no network to wait for)."""
        self._join(sink, keys)
        self._handles.append(handle)
        handle.mark_open()

    def _join(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        for key in keys:
            self._routes.setdefault(key, []).append(sink)
        if isinstance(sink, ExecutionConsumer):
            self.feed.join(sink)
            # Replay for a replaying consumer, the baseline for a replay=False one.
            self.feed.submit_snapshot(self._orders(), "execution stream start")
        self.changed.set()

    async def attach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Route ``keys`` to ``sink`` (callback subscriptions and handles alike)."""
        self._join(sink, keys)

    async def detach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Stop routing ``keys`` to ``sink``."""
        self._leave(sink, keys)

    def _leave(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        if isinstance(sink, ExecutionConsumer):
            self.feed.leave(sink)
        for key in keys:
            sinks = self._routes.get(key)
            if sinks is not None:
                with contextlib.suppress(ValueError):
                    sinks.remove(sink)
                if not sinks:
                    del self._routes[key]
        self._handles = [h for h in self._handles if not h.closed]
        self.changed.set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Start a tracked task (callback deliveries); cancelled on :meth:`aclose`."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start_subscription(self, sub: CallbackSubscription[Any]) -> None:
        """Start a callback subscription and keep it for :meth:`settle`."""
        await sub.start()
        self._subscriptions.append(sub)

    # -- the data source --------------------------------------------------------------------

    def publish(self, key: RegKey, value: Any) -> None:
        """Deliver a market value to the sinks of ``key``."""
        for sink in tuple(self._routes.get(key, ())):
            sink.put(value)

    def notice(self, event: Execution) -> None:
        """An order event of the account (the feed accounts fills exactly once per consumer)."""
        self.feed.on_notice(event)

    def subscribed(self, key: RegKey) -> bool:
        """True while some stream or callback holds ``key``."""
        return bool(self._routes.get(key))

    def fail_all(self, error: BaseException) -> None:
        """End every stream and subscription with ``error`` (after what they queued)."""
        sinks = {id(s): s for sinks in self._routes.values() for s in sinks}
        self._routes.clear()
        for sink in sinks.values():
            if isinstance(sink, ExecutionConsumer):
                self.feed.leave(sink)
            sink.fail(error)
        self.changed.set()

    def busy(self) -> list[str]:
        """Descriptions of consumers that have not taken everything they were sent."""
        out = [
            f"{_describe(h)} with {len(h.buffer)} unread"
            for h in self._handles
            if h.iterated and not h.closed and not h.buffer.idle
        ]
        out += [
            f"callback subscription with {len(s.buffer)} unread"
            for s in self._subscriptions
            if not s.closed and not s.buffer.idle
        ]
        if not self.feed.idle:
            out.append("execution feed")
        return out

    async def aclose(self) -> None:
        """End every subscription, stream and task."""
        for sub in list(self._subscriptions):
            await sub.aclose()
        self._subscriptions.clear()
        sinks = {id(s): s for sinks in self._routes.values() for s in sinks}
        self._routes.clear()
        for sink in sinks.values():
            if isinstance(sink, ExecutionConsumer):
                self.feed.leave(sink)
            sink.close(drain=True)
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.changed.set()


_KINDS = {"QuoteStream": "quotes", "OrderBookStream": "orderbooks"}


def _describe(handle: StreamHandle[Any]) -> str:
    symbols = getattr(handle, "symbols", None)
    kind = _KINDS.get(type(handle).__name__, "executions")
    target = ",".join(symbols) if symbols else "account"
    return f"MockStream({kind}, {target})"
