"""What the active gateway tells the workers about itself: the heartbeat and session events.

* ``{ns}:heartbeat``: JSON ``{id, connected, registrations, reconnects, active_since, time}``,
  written every second with a 3 s expiry, only while the writer holds the lease (a fenced
  script): a worker seeing it knows a live gateway serves, and whether its session is up.
* ``{ns}:events``: a stream (trimmed to about 1000) of ``{event, id, time}``: ``standby``,
  ``active``, ``connected``, ``restored``, ``gave_up``. The session's counters, not sampled
  states, drive ``connected``/``restored``, so a drop and reconnect between two looks still
  gives both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Final

from redis.exceptions import RedisError

from kis_async.gateway.keys import GatewayKeys
from kis_async.gateway.lease import checked, raise_if_cancelled
from kis_async.stream.options import StreamStatus

__all__ = ["GatewayEvents"]

logger = logging.getLogger("kis_async.gateway")

#: Length the events stream is trimmed to (approximately), and the heartbeat's lifetime.
EVENTS_MAXLEN: Final = 1000
HEARTBEAT_TTL_MS: Final = 3000

# KEYS: lease, heartbeat. ARGV: gateway id, heartbeat JSON, ttl ms. 0 when not the holder.
_HEARTBEAT: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""


class GatewayEvents:
    """Writes one gateway's heartbeat and events (see the module docstring).

    Args:
        redis: a ``redis.asyncio.Redis`` client.
        keys: the namespace's key names.
        gateway_id: the writer's id.
    """

    def __init__(self, redis: Any, keys: GatewayKeys, gateway_id: str) -> None:
        self._redis = redis
        self._keys = keys
        self._id = gateway_id
        self._beat = redis.register_script(_HEARTBEAT)
        self._lock = asyncio.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget the session counters (a new activation has a new session)."""
        self._opened = False  # the current session has connected
        self._failed = False  # ... has given up
        self._reconnects = 0  # connections after each session's first one

    async def emit(self, event: str, **extra: str) -> None:
        """Append an event (best effort: a Redis failure is logged)."""
        fields = {"event": event, "id": self._id, "time": f"{time.time():.6f}", **extra}
        try:
            stream = self._keys.events
            await checked(self._redis.xadd(stream, fields, maxlen=EVENTS_MAXLEN, approximate=True))
        except (OSError, RedisError) as exc:
            raise_if_cancelled()
            logger.debug("gateway: event %s not written (%s)", event, type(exc).__name__)

    async def follow(self, status: StreamStatus, *, ready: bool) -> None:
        """Emit the events the session's counters moved by since the last call (``restored``
        after a reconnect only once ``ready``)."""
        async with self._lock:
            if status.failed and not self._failed:
                await self.emit("gave_up")
                self._opened = False  # the next session's first connection is a new one
            self._failed = status.failed
            if not self._opened and (status.connected or status.reconnects > self._reconnects):
                self._opened = True
                await self.emit("connected")
            while self._reconnects < status.reconnects:
                self._reconnects += 1
                await self.emit("connected")
                if ready:
                    await self.emit("restored")

    async def heartbeat(self, status: StreamStatus, active_since: float | None) -> bool:
        """Write the heartbeat; False when the lease is another's (True if Redis failed:
        the lease renewal decides about that)."""
        beat = {
            "id": self._id,
            "connected": status.connected,
            "registrations": status.registrations,
            "reconnects": status.reconnects,
            "active_since": active_since,
            "time": time.time(),
        }
        args = [self._id, json.dumps(beat), HEARTBEAT_TTL_MS]
        try:
            held = await checked(
                self._beat(keys=[self._keys.lease, self._keys.heartbeat], args=args)
            )
        except (OSError, RedisError) as exc:
            raise_if_cancelled()
            logger.debug("gateway: heartbeat not written (%s)", type(exc).__name__)
            return True
        return bool(held)
