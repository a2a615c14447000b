"""An async sliding-window rate limiter with priority for order calls.

At most ``floor(rps)`` requests are granted in any window of ``1 s + margin`` (for ``rps < 1``:
one request per ``1/rps + margin`` seconds). The log of grant times is exact, so no window of
that length ever holds more grants than the capacity, whatever the arrival pattern.

Waiters are served in two FIFO queues: priority (order / modify / cancel) first, then reads.
Only one waiter at a time sleeps on the timer (until the oldest grant leaves the window); the
others wait on an event, so an injected fake clock whose ``sleep`` advances time stays exact.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

__all__ = ["DEFAULT_MARGIN", "RateLimiter"]

#: Extra length of the window, in seconds, to absorb clock and network jitter.
DEFAULT_MARGIN: Final = 0.05


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.granted = False


class RateLimiter:
    """Limit calls to ``rps`` per second over a sliding window.

    Args:
        rps: requests per second; ``None`` disables limiting.
        margin: seconds added to the window.
        clock: a monotonic clock in seconds (injectable for tests).
        sleep: the coroutine used to wait (injectable for tests).
    """

    def __init__(
        self,
        rps: float | None,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rps is not None and rps <= 0:
            raise ValueError("rps must be positive or None")
        self._clock = clock
        self._sleep = sleep
        self._capacity: int | None
        if rps is None:
            self._capacity = None
            self._window = 0.0
        elif rps >= 1:
            self._capacity = math.floor(rps)
            self._window = 1.0 + margin
        else:
            self._capacity = 1
            self._window = 1.0 / rps + margin
        self._stamps: deque[float] = deque()
        self._high: deque[_Waiter] = deque()
        self._low: deque[_Waiter] = deque()
        self._timer_owner: _Waiter | None = None

    @property
    def enabled(self) -> bool:
        """False when limiting is disabled (``rps=None``)."""
        return self._capacity is not None

    @property
    def capacity(self) -> int | None:
        """Grants allowed per window (None when disabled)."""
        return self._capacity

    @property
    def window(self) -> float:
        """Window length in seconds (including the margin)."""
        return self._window

    @property
    def queued(self) -> int:
        """Callers waiting now."""
        return len(self._high) + len(self._low)

    async def acquire(self, *, priority: bool = False) -> None:
        """Wait for a slot. ``priority=True`` goes ahead of every queued normal caller."""
        if self._capacity is None:
            return
        waiter = _Waiter()
        (self._high if priority else self._low).append(waiter)
        try:
            while True:
                self._pump()
                if waiter.granted:
                    return
                if self._timer_owner is None:
                    self._timer_owner = waiter
                    try:
                        await self._sleep(self._next_free_in())
                    finally:
                        self._timer_owner = None
                    continue
                waiter.event.clear()
                await waiter.event.wait()
        finally:
            if not waiter.granted:
                self._discard(waiter)
            # Whoever leaves may have been the timer owner: let the next head take over.
            self._poke_head()

    def _prune(self, now: float) -> None:
        while self._stamps and self._stamps[0] + self._window <= now:
            self._stamps.popleft()

    def _pump(self) -> None:
        assert self._capacity is not None
        now = self._clock()
        self._prune(now)
        while len(self._stamps) < self._capacity:
            queue = self._high if self._high else self._low
            if not queue:
                return
            waiter = queue.popleft()
            waiter.granted = True
            self._stamps.append(now)
            waiter.event.set()

    def _next_free_in(self) -> float:
        if not self._stamps:
            return 0.0
        return max(0.0, self._stamps[0] + self._window - self._clock())

    def _discard(self, waiter: _Waiter) -> None:
        for queue in (self._high, self._low):
            try:
                queue.remove(waiter)
            except ValueError:
                continue
            return

    def _poke_head(self) -> None:
        if self._timer_owner is not None:
            return
        queue = self._high if self._high else self._low
        if queue:
            queue[0].event.set()
