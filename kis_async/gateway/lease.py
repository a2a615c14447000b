"""The gateway lease: which of several gateway processes is the active one.

A plain Redis lease: ``SET {ns}:lease <id> NX PX <ttl>`` takes it, a compare-and-pexpire
script renews it, a compare-and-delete script releases it. Only the holder may renew or
release, so a gateway that lost the lease (paused, partitioned) cannot extend or delete its
successor's. Writes that must not come from a former holder (execution entries) check the
lease inside their own script (:data:`~kis_async.gateway.keys.EXECUTION_PUBLISH`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Final, TypeVar

__all__ = ["Lease", "StepDown", "checked", "raise_if_cancelled"]

T = TypeVar("T")

# KEYS: lease. ARGV: holder id, ttl ms. 1 when renewed, 0 when the lease is not ours.
_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: holder id. 1 when released, 0 when it was not ours.
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class StepDown(Exception):  # noqa: N818 - a signal between the active gateway's tasks
    """The active gateway must stop serving: the lease is lost (or a stop was asked)."""


def raise_if_cancelled() -> None:
    """Re-raise a cancellation a client library turned into another error.

    redis-py may end a command interrupted by ``Task.cancel()`` with a connection error; a
    handler that logs Redis errors and goes on would then keep a cancelled task running (and
    its task group waiting forever). Every such handler in the gateway calls this first.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def checked(call: Awaitable[T]) -> T:
    """Await a Redis call, then raise a cancellation it absorbed.

    A ``Task.cancel()`` that lands while redis-py is inside a command can end with the
    command returning normally (the library finishes its own bookkeeping under the
    cancellation). The gateway's tasks await every Redis call through this, so a cancelled
    task always stops at its next Redis call.
    """
    try:
        return await call
    finally:
        raise_if_cancelled()


class Lease:
    """The lease key of one gateway namespace, held under ``holder``.

    Args:
        redis: a ``redis.asyncio.Redis`` client.
        key: the lease key (``GatewayKeys.lease``).
        holder: this gateway's id (the value stored while it holds the lease).
        ttl: seconds the lease lives without renewal.
    """

    def __init__(self, redis: Any, key: str, holder: str, ttl: float) -> None:
        if not ttl > 0:
            raise ValueError("the lease ttl must be positive")
        self._redis = redis
        self.key = key
        self.holder = holder
        self.ttl_ms = max(1, round(ttl * 1000))
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; True when taken."""
        return bool(await checked(self._redis.set(self.key, self.holder, nx=True, px=self.ttl_ms)))

    async def renew(self) -> bool:
        """Extend the lease by the ttl; False when it is not ours (any more)."""
        return bool(await checked(self._renew(keys=[self.key], args=[self.holder, self.ttl_ms])))

    async def release(self) -> bool:
        """Give the lease up (only if ours), so a standby takes over at once."""
        return bool(await self._release(keys=[self.key], args=[self.holder]))

    async def holder_now(self) -> str | None:
        """Who holds the lease now (None: nobody)."""
        raw = await checked(self._redis.get(self.key))
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)
