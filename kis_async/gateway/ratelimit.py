"""One REST rate budget for every process on an app key: a sliding window in Redis.

KIS counts requests per app key, not per process. :class:`RedisRateLimiter` keeps the grant
log of the window in a Redis sorted set and decides every grant in one Lua script, on the
Redis server's clock, so N processes together get at most ``floor(rps)`` grants in any
``1 s + margin`` (the same window as :class:`~kis_async.rest.ratelimit.RateLimiter`).

Orders go ahead of reads: an order that finds the window full registers itself as waiting
(with an expiry, so a dead process does not block anyone for long), and no read is granted
while any order waits. The script answers how long until the oldest grant leaves the window;
the caller sleeps that long (plus jitter) and asks again.

When Redis cannot be reached, :meth:`RedisRateLimiter.acquire` raises
:class:`~kis_async.errors.BrokerTimeoutError` with ``request_sent=False``: the request was not
sent, so reads retry as after a connect failure and a keyed order stays free to send again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final
from uuid import uuid4

from kis_async.config import KISConfig
from kis_async.errors import BrokerTimeoutError
from kis_async.rest.ratelimit import DEFAULT_MARGIN, window_for

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisRateLimiter"]

logger = logging.getLogger("kis_async.gateway")

# KEYS: grants (zset: member -> grant time, µs), waiting orders (zset: member -> expiry, µs)
# ARGV: capacity, window µs, priority 0/1, member, waiter ttl µs
# Returns {granted 0/1, wait µs, server time µs}.
_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cap = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local priority = ARGV[3] == '1'
local ttl = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local used = redis.call('ZCARD', KEYS[1])
local orders_waiting = redis.call('ZCARD', KEYS[2])
if used < cap and (priority or orders_waiting == 0) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  if priority then redis.call('ZREM', KEYS[2], ARGV[4]) end
  return {1, 0, now}
end
if priority then
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[4])
  redis.call('PEXPIRE', KEYS[2], math.ceil(ttl / 1000) + 1000)
end
local wait = 0
if used >= cap then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  wait = tonumber(oldest[2]) + window - now
end
return {0, wait, now}
"""

#: Seconds between asks while reads are held back behind waiting orders (and the jitter).
_POLL: Final = 0.01


class RedisRateLimiter:
    """A sliding-window limiter shared through Redis; a drop-in for the in-process one.

    Args:
        redis: a ``redis.asyncio.Redis`` client, or a URL (``redis://host:6379/0``); a client
            made from a URL is closed by :meth:`aclose`.
        rps: requests per second allowed to all processes together (KIS: 20 live, 2 paper).
        name: the Redis key prefix; processes sharing an app key must use the same one
            (:meth:`for_config` derives it from the mode and a hash of the app key).
        margin: seconds added to the window, as in the in-process limiter.
        sleep: the coroutine used to wait between asks (injectable for tests).
    """

    def __init__(
        self,
        redis: Redis | str,
        *,
        rps: float,
        name: str,
        margin: float = DEFAULT_MARGIN,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        capacity, window = window_for(rps, margin)
        if capacity is None:
            raise ValueError("RedisRateLimiter needs an rps")
        if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
            raise ValueError("RedisRateLimiter name must be a non-empty word")
        self._capacity: int = capacity
        self._window = window
        self._keys = [f"{name}:grants", f"{name}:orders-waiting"]
        self._sleep = sleep
        self._owns = isinstance(redis, str)
        self._redis: Any = _client(redis)
        from redis.exceptions import RedisError  # noqa: PLC0415 - optional dependency

        self._failures: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._script = self._redis.register_script(_SCRIPT)
        self._queued = 0
        self.last_grant_time: float | None = None
        """Redis server time (seconds since the epoch) of this limiter's latest grant."""

    @classmethod
    def for_config(
        cls, redis: Redis | str, config: KISConfig, *, margin: float = DEFAULT_MARGIN
    ) -> RedisRateLimiter:
        """The shared limiter of ``config``'s app key and mode at
        ``config.requests_per_second``.

        Raises:
            ValueError: the configuration disables rate limiting.
        """
        if config.requests_per_second is None:
            raise ValueError("the configuration disables rate limiting (requests_per_second)")
        digest = hashlib.sha256(config.app_key.encode()).hexdigest()[:32]
        return cls(
            redis,
            rps=config.requests_per_second,
            name=f"kis_async:ratelimit:{config.mode.value}:{digest}",
            margin=margin,
        )

    @property
    def enabled(self) -> bool:
        """Always True: a shared limiter always limits."""
        return True

    @property
    def capacity(self) -> int:
        """Grants allowed per window, for all processes together."""
        return self._capacity

    @property
    def window(self) -> float:
        """Window length in seconds (including the margin)."""
        return self._window

    @property
    def queued(self) -> int:
        """Callers of this process waiting now."""
        return self._queued

    async def acquire(self, *, priority: bool = False) -> None:
        """Wait for a slot of the shared window. ``priority=True`` (orders) holds back every
        read of every process until it is granted."""
        member = uuid4().hex
        window_us = round(self._window * 1_000_000)
        args = [self._capacity, window_us, 1 if priority else 0, member, 2 * window_us + 1_000_000]
        self._queued += 1
        try:
            while True:
                try:
                    granted, wait_us, now_us = await self._script(keys=self._keys, args=args)
                except self._failures as exc:
                    raise BrokerTimeoutError(
                        f"the shared rate limiter's Redis did not answer ({type(exc).__name__}); "
                        "the request was not sent",
                        request_sent=False,
                    ) from exc
                if int(granted):
                    self.last_grant_time = int(now_us) / 1_000_000
                    return
                delay = max(int(wait_us) / 1_000_000, 0.0) + random.uniform(0.0, _POLL)
                await self._sleep(min(delay, self._window))
        except BaseException:
            if priority:
                # Stop holding reads back for an order that no longer waits.
                try:
                    await asyncio.shield(self._redis.zrem(self._keys[1], member))
                except Exception as exc:
                    logger.debug("could not withdraw a waiting order (%s)", type(exc).__name__)
            raise
        finally:
            self._queued -= 1

    async def aclose(self) -> None:
        """Close the Redis client if this limiter created it from a URL."""
        if self._owns:
            await self._redis.aclose()

    def __repr__(self) -> str:
        return f"RedisRateLimiter(capacity={self._capacity}, window={self._window:.3f}s)"


def _client(redis: Redis | str) -> Any:
    if isinstance(redis, str):
        import redis.asyncio as aioredis  # noqa: PLC0415 - optional dependency

        return aioredis.from_url(redis)
    return redis
