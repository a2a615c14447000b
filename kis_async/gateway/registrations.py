"""What the workers want: the union of the live workers' market registrations.

Each worker keeps its ``TR|SYMBOL`` fields in its own hash and its lease expiry in the
workers zset (written by :data:`~kis_async.gateway.keys.REGISTER`). The gateway reads the
union of the live workers' hashes in one script, on Redis's clock, dropping workers whose
lease expired (as REGISTER does): a dead worker's registrations are released by time, and
the last worker out unsubscribes by removing its fields.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from kis_async.gateway.keys import MARKET_REGISTRATION_CAP, GatewayKeys, field_of
from kis_async.gateway.lease import checked
from kis_async.stream.protocol import ORDERBOOK_TR_IDS, QUOTE_TR_IDS
from kis_async.stream.streams import RegKey
from kis_async.validation import is_valid_symbol

__all__ = ["MARKET_TR_IDS", "Registrations"]

logger = logging.getLogger("kis_async.gateway")

#: The TR ids a worker may register through the gateway (trades and books of every market).
MARKET_TR_IDS: Final = frozenset({*QUOTE_TR_IDS.values(), *ORDERBOOK_TR_IDS.values()})

# KEYS: workers zset. ARGV: worker hash prefix. Returns the fields of every live worker.
_UNION: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix = ARGV[1]
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, d in ipairs(dead) do
  redis.call('DEL', prefix .. d)
  redis.call('ZREM', KEYS[1], d)
end
local union, out = {}, {}
for _, w in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  for _, f in ipairs(redis.call('HKEYS', prefix .. w)) do
    if not union[f] then union[f] = true; out[#out + 1] = f end
  end
end
return out
"""


class Registrations:
    """Reads the wanted market registrations of one namespace.

    Args:
        redis: a ``redis.asyncio.Redis`` client.
        keys: the namespace's key names.
        cap: market registrations served at most (KIS's 41 less the notice registration).
    """

    def __init__(
        self, redis: Any, keys: GatewayKeys, *, cap: int = MARKET_REGISTRATION_CAP
    ) -> None:
        self._keys = keys
        self._cap = cap
        self._union = redis.register_script(_UNION)
        self._warned: set[str] = set()

    async def wanted(self) -> set[RegKey]:
        """The ``(tr_id, symbol)`` keys live workers hold (well-formed ones, within the cap)."""
        raw = await checked(self._union(keys=[self._keys.workers], args=[self._keys.worker_prefix]))
        wanted: list[RegKey] = []
        for item in raw:
            tr_id, symbol = field_of(item)
            if tr_id in MARKET_TR_IDS and is_valid_symbol(symbol):
                wanted.append((tr_id, symbol))
            else:
                self._warn(f"{tr_id}|{symbol}", "is not a market registration; ignored")
        if len(wanted) > self._cap:
            # REGISTER enforces the cap; a field written around it is not served.
            wanted.sort()
            self._warn("cap", f"{len(wanted)} registrations wanted; serving the first {self._cap}")
            del wanted[self._cap :]
        return set(wanted)

    def _warn(self, what: str, text: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            logger.warning("gateway: worker registration %s %s", what[:40], text)
