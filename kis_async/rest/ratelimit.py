"""An async sliding-window rate limiter with priority for order calls.

At most ``floor(rps)`` requests are granted in any window of ``1 s + margin`` (for ``rps < 1``:
one request per ``1/rps + margin`` seconds). The log of grant times is exact, so no window of
that length ever holds more grants than the capacity, whatever the arrival pattern.

Waiters are served in two FIFO queues: priority (order / modify / cancel) first, then reads.
Only one waiter at a time sleeps on the timer (until the oldest grant leaves the window); the
others wait on an event, so an injected fake clock whose ``sleep`` advances time stays exact.

:class:`Limiter` is what the REST client needs of a limiter; :class:`RateLimiter` is the one
for a single process, :class:`kis_async.gateway.RedisRateLimiter` (extra ``gateway``) shares
one budget between processes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, runtime_checkable

__all__ = ["DEFAULT_MARGIN", "Limiter", "RateLimiter", "window_for"]

#: Extra length of the window, in seconds, to absorb clock and network jitter.
DEFAULT_MARGIN: Final = 0.05


def window_for(rps: float | None, margin: float = DEFAULT_MARGIN) -> tuple[int | None, float]:
    """``(capacity, window)`` for ``rps``: ``floor(rps)`` grants per ``1 s + margin``, or one
    grant per ``1/rps + margin`` below 1/s; ``(None, 0.0)`` when ``rps`` is None (no limit).

    Raises:
        ValueError: ``rps`` is not positive.
    """
    if rps is None:
        return None, 0.0
    if not rps > 0 or math.isinf(rps):
        raise ValueError("rps must be positive and finite, or None")
    if rps >= 1:
        return math.floor(rps), 1.0 + margin
    return 1, 1.0 / rps + margin


@runtime_checkable
class Limiter(Protocol):
    """What the REST client needs of a rate limiter."""

    @property
    def enabled(self) -> bool:
        """False when limiting is disabled."""

    @property
    def capacity(self) -> int | None:
        """Grants allowed per window (None when disabled)."""

    @property
    def window(self) -> float:
        """Window length in seconds."""

    @property
    def queued(self) -> int:
        """Callers of this process waiting now."""

    async def acquire(self, *, priority: bool = False) -> None:
        """Wait for a slot; ``priority=True`` (orders) goes ahead of every waiting read."""


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
        self._capacity, self._window = window_for(rps, margin)
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
