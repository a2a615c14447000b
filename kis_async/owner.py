"""The event loop a broker belongs to: bound when it opens, checked on every call.

Everything a broker holds (the HTTP connection pool, locks, queues, the WebSocket session)
is tied to the loop it first ran on. A call from another loop or thread would touch that
state from the wrong place and fail late and obscurely (a lock "bound to a different event
loop", a stream that never yields, a broker that cannot be closed any more), so the check
refuses it first, before any state is touched.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["OwnerLoop"]


class OwnerLoop:
    """Binds an object to the first event loop that uses it and refuses every other caller.

    Args:
        owner: the class name shown in the error (``"KISBroker"``).
    """

    __slots__ = ("_lock", "_loop", "_owner")

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The owning loop, or None before the first call."""
        return self._loop

    def check(self) -> None:
        """Bind to the running loop on first use; afterwards refuse any other caller.

        Raises:
            RuntimeError: called from another event loop or thread, or with no loop running.
        """
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop
        if loop is running and loop is not None:
            return
        if running is not None and loop is None:
            # Two threads may race to be first; exactly one of them wins.
            with self._lock:
                if self._loop is None:
                    self._loop = running
                    return
                loop = self._loop
            if loop is running:
                return
        raise RuntimeError(self._message(loop, running))

    def _message(
        self,
        loop: asyncio.AbstractEventLoop | None,
        running: asyncio.AbstractEventLoop | None,
    ) -> str:
        name = self._owner
        if running is None:
            where = "with no event loop running in this thread"
        else:
            where = "from another event loop or thread"
        closed = " (that loop is closed now)" if loop is not None and loop.is_closed() else ""
        return (
            f"this {name} belongs to the event loop that opened it{closed} and was called "
            f"{where}. From another thread, either run the call on its loop with "
            f"asyncio.run_coroutine_threadsafe(broker.method(...), broker.loop), or use the "
            f"thread-safe synchronous client kis_async.SyncKISBroker"
        )
