"""What the gateway and its workers share in Redis: key names, entries and scripts.

One module so both sides agree by construction. Everything lives under one namespace per
(mode, app key, account), derived by hashing (no key name carries a secret or the account)::

    {ns}:lease              the active gateway's id (SET NX PX, renewed; fencing for writes)
    {ns}:heartbeat          JSON status of the active gateway (PX: absent when it is gone)
    {ns}:events             stream of session events (connected, restored, gave_up, ...)
    {ns}:workers            zset worker id -> lease expiry (Redis server time, ms)
    {ns}:worker:{id}        hash "TR|SYMBOL" -> "1": that worker's market registrations
    {ns}:changed            pub/sub channel: registrations changed (a hint; the gateway
                            also re-reads on a timer)
    {ns}:served             set "TR|SYMBOL": market keys the active gateway holds at KIS
                            (acknowledged); a worker opening a stream waits for its keys here
    {ns}:md:{TR}:{SYMBOL}   stream of market records (trimmed MAXLEN ~)
    {ns}:x                  stream of the account's execution events (trimmed by age only)
    {ns}:x:cursor           the gateway's execution cursor after the newest entry of {ns}:x

Market entries carry the KIS record itself (``tr``, ``rec``) and the gateway's publish time
(``ts``, ns since the epoch); a worker decodes them with the same decoders as a direct
socket, so a value is the same object either way. Execution entries carry the event as JSON
plus ``cum``, the order's cumulative filled quantity after it (fills only), which lets every
worker consumer apply its own exactly-once cursor.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from kis_async.config import KISConfig
from kis_async.models import (
    Exchange,
    Execution,
    ExecutionKind,
    OrderBook,
    OrderType,
    Quote,
    Side,
)
from kis_async.stream.protocol import DECODERS, DataFrame, record_text

__all__ = [
    "EXECUTION_PUBLISH",
    "MARKET_REGISTRATION_CAP",
    "REGISTER",
    "GatewayKeys",
    "decode_execution",
    "decode_market",
    "encode_execution",
    "encode_market",
    "field_of",
    "published_ns",
    "reg_field",
]

#: Market-data registrations a worker may hold across all workers: KIS's 41 per session,
#: less the one the gateway always keeps for the account's execution notices.
MARKET_REGISTRATION_CAP: Final = 40


class GatewayKeys:
    """The Redis key names of one gateway namespace.

    Args:
        namespace: the prefix of every key; :meth:`for_config` derives the usual one.
    """

    __slots__ = ("ns",)

    def __init__(self, namespace: str) -> None:
        if not namespace or any(c.isspace() for c in namespace):
            raise ValueError("a gateway namespace is a non-empty string without spaces")
        self.ns = namespace

    @classmethod
    def for_config(cls, config: KISConfig, *, prefix: str = "kis_async") -> GatewayKeys:
        """The namespace of ``config``'s mode, app key and account (hashed)."""
        digest = hashlib.sha256(f"{config.app_key}\x00{config.account_id}".encode()).hexdigest()[
            :24
        ]
        return cls(f"{prefix}:gw:{config.mode.value}:{digest}")

    @property
    def lease(self) -> str:
        """The active gateway id (the lease)."""
        return f"{self.ns}:lease"

    @property
    def heartbeat(self) -> str:
        """The active gateway's status (JSON, expiring)."""
        return f"{self.ns}:heartbeat"

    @property
    def events(self) -> str:
        """The stream of session events."""
        return f"{self.ns}:events"

    @property
    def workers(self) -> str:
        """The zset of live workers (score: lease expiry, ms)."""
        return f"{self.ns}:workers"

    @property
    def worker_prefix(self) -> str:
        """The prefix of every worker's registration hash."""
        return f"{self.ns}:worker:"

    def worker(self, worker_id: str) -> str:
        """The registration hash of one worker."""
        return f"{self.ns}:worker:{worker_id}"

    @property
    def changed(self) -> str:
        """The pub/sub channel announcing registration changes."""
        return f"{self.ns}:changed"

    @property
    def served(self) -> str:
        """The set of market keys the active gateway holds at KIS."""
        return f"{self.ns}:served"

    def market(self, tr_id: str, symbol: str) -> str:
        """The market-data stream of one (TR, symbol)."""
        return f"{self.ns}:md:{tr_id}:{symbol}"

    @property
    def executions(self) -> str:
        """The account's execution stream."""
        return f"{self.ns}:x"

    @property
    def cursor(self) -> str:
        """The gateway's execution cursor."""
        return f"{self.ns}:x:cursor"

    def __repr__(self) -> str:
        return f"GatewayKeys({self.ns!r})"


def reg_field(tr_id: str, symbol: str) -> str:
    """The hash field of one market registration in a worker's hash."""
    return f"{tr_id}|{symbol}"


def field_of(text: str | bytes) -> tuple[str, str]:
    """``(tr_id, symbol)`` from a registration field."""
    if isinstance(text, bytes):
        text = text.decode()
    tr_id, _, symbol = text.partition("|")
    return tr_id, symbol


# -- scripts ----------------------------------------------------------------------------------

#: Register market keys for one worker, enforcing the cap over the union of all live workers.
#: KEYS: workers zset, this worker's hash. ARGV: worker hash prefix, worker id, lease ms, cap,
#: changed channel, then the fields to add. Returns {1 ok | 0 over cap, registrations after}.
#: Workers whose lease expired are dropped first (their hashes deleted).
REGISTER: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix, wid = ARGV[1], ARGV[2]
local lease, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, d in ipairs(dead) do
  redis.call('DEL', prefix .. d)
  redis.call('ZREM', KEYS[1], d)
end
local union, count = {}, 0
for _, w in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  for _, f in ipairs(redis.call('HKEYS', prefix .. w)) do
    if not union[f] then union[f] = true; count = count + 1 end
  end
end
local add = {}
for i = 6, #ARGV do
  local f = ARGV[i]
  if not union[f] then union[f] = true; count = count + 1 end
  add[#add + 1] = f
  add[#add + 1] = '1'
end
if count > cap then return {0, count} end
redis.call('ZADD', KEYS[1], now + lease, wid)
if #add > 0 then redis.call('HSET', KEYS[2], unpack(add)) end
redis.call('PEXPIRE', KEYS[2], lease * 2)
redis.call('PUBLISH', ARGV[5], wid)
return {1, count}
"""

#: Publish one execution event only while this gateway holds the lease, and move the cursor
#: with it (atomically: the stream and the cursor never disagree, and a gateway that lost
#: its lease cannot write). KEYS: lease, executions stream, cursor. ARGV: gateway id, cursor
#: text, min id for trimming ("0" for none), then field/value pairs. Returns the entry id or
#: false when the lease is not ours.
EXECUTION_PUBLISH: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
local id
if ARGV[3] ~= '0' then
  id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[3], '*', unpack(fields))
else
  id = redis.call('XADD', KEYS[2], '*', unpack(fields))
end
redis.call('SET', KEYS[3], ARGV[2])
return id
"""


# -- entries ----------------------------------------------------------------------------------


def encode_market(tr_id: str, value: Quote | OrderBook) -> dict[str, str] | None:
    """The stream entry of a decoded market record, or None for a value without a record."""
    text = record_text(value)
    if text is None:
        return None
    return {"tr": tr_id, "rec": text, "ts": str(time.time_ns())}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_market(fields: Mapping[Any, Any]) -> Quote | OrderBook:
    """The value of a market entry (decoded exactly as from the socket).

    Raises:
        KeyError: not a market entry; FrameError: the record does not decode.
    """
    tr_id = _text(fields.get(b"tr", fields.get("tr")))
    text = _text(fields.get(b"rec", fields.get("rec")))
    values = DECODERS[tr_id].decode(DataFrame(False, tr_id, 1, text), None)
    value: Quote | OrderBook = values[0]
    return value


def published_ns(fields: Mapping[Any, Any]) -> int | None:
    """The gateway's publish time of a market entry (ns since the epoch), if present."""
    raw = fields.get(b"ts", fields.get("ts"))
    return int(_text(raw)) if raw is not None else None


def encode_execution(event: Execution, cumulative: int | None) -> dict[str, str]:
    """The stream entry of an execution event; ``cumulative``: the order's filled quantity
    after it (fills), else None."""
    body = {
        "kind": event.kind.value,
        "oid": event.broker_order_id,
        "orig": event.original_order_id,
        "branch": event.branch_no,
        "symbol": event.symbol,
        "side": event.side.value if event.side is not None else None,
        "type": event.order_type.value if event.order_type is not None else None,
        "qty": event.qty,
        "price": str(event.price) if event.price is not None else None,
        "order_qty": event.order_qty,
        "time": event.time.isoformat() if event.time is not None else None,
        "source": event.source,
        "name": event.name,
        "raw": dict(event.raw),
        "exchange": event.exchange.value if event.exchange is not None else None,
        "venue": event.venue.value if event.venue is not None else None,
    }
    entry = {"e": json.dumps(body, ensure_ascii=False, separators=(",", ":"))}
    if cumulative is not None:
        entry["cum"] = str(cumulative)
    return entry


def decode_execution(fields: Mapping[Any, Any]) -> tuple[Execution, int | None]:
    """``(event, cumulative)`` of an execution entry (see :func:`encode_execution`).

    Raises:
        KeyError, ValueError: not an execution entry.
    """
    body = json.loads(_text(fields.get(b"e", fields.get("e"))))
    cum_raw = fields.get(b"cum", fields.get("cum"))
    event = Execution(
        kind=ExecutionKind(body["kind"]),
        broker_order_id=body["oid"],
        original_order_id=body["orig"],
        branch_no=body["branch"],
        symbol=body["symbol"],
        side=Side(body["side"]) if body["side"] is not None else None,
        order_type=OrderType(body["type"]) if body["type"] is not None else None,
        qty=int(body["qty"]),
        price=Decimal(body["price"]) if body["price"] is not None else None,
        order_qty=body["order_qty"],
        time=datetime.fromisoformat(body["time"]) if body["time"] is not None else None,
        source=body["source"],
        name=body["name"],
        raw=body["raw"],
        exchange=Exchange(body["exchange"]) if body["exchange"] is not None else None,
        venue=Exchange(body["venue"]) if body["venue"] is not None else None,
    )
    return event, (int(_text(cum_raw)) if cum_raw is not None else None)
