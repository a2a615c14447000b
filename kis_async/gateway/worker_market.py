"""A gateway worker's market-data registrations and the one loop that reads them.

See :mod:`kis_async.gateway.worker` for the picture. Registering notes the newest entry id of
each new key's stream *before* the REGISTER script runs, so every record the gateway
publishes once it sees the registration is read; the script refuses the whole request when
the union of every live worker's keys would pass the cap, before anything is added. The
reader is one XREAD BLOCK over every key plus a private wake-up stream, written when keys
are added so a blocked read picks them up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Final
from uuid import uuid4

from redis.exceptions import RedisError

from kis_async.errors import BrokerConnectionError, SubscriptionError
from kis_async.gateway.keys import (
    MARKET_REGISTRATION_CAP,
    REGISTER,
    GatewayKeys,
    decode_market,
    reg_field,
)
from kis_async.gateway.worker_executions import ReadRetries, text
from kis_async.stream.options import StreamOptions
from kis_async.stream.streams import Buffer, RegKey, Sink

__all__ = ["MarketFeed"]

logger = logging.getLogger("kis_async.gateway")

Spawner = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]

#: Renew the worker lease if it is still ours, on the Redis clock. KEYS: workers zset, this
#: worker's hash. ARGV: worker id, lease ms, changed channel. Returns 1, or 0 when the lease
#: was dropped (the worker must register again).
_RENEW: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * 2)
if tonumber(score) < now then redis.call('PUBLISH', ARGV[3], ARGV[1]) end
return 1
"""

#: Milliseconds one market XREAD blocks (the wake-up stream cuts it short on changes).
_BLOCK_MS: Final = 1000
#: Entries per key per market XREAD.
_COUNT: Final = 1000


class MarketFeed:
    """This worker's market registrations, lease and reader (see the module docstring).

    Args:
        redis: the gateway's Redis client.
        keys: the gateway's key names.
        options: the reconnect backoff and attempts for Redis reads.
        spawn: starts an owned background task.
        lease_ttl: seconds the registrations outlive the worker's last renewal.
        lag: given the put-to-consumer lag (seconds) of sampled records.
    """

    def __init__(
        self,
        redis: Any,
        keys: GatewayKeys,
        *,
        options: StreamOptions,
        spawn: Spawner,
        lease_ttl: float,
        lag: Callable[[float], None] | None = None,
    ) -> None:
        self._redis = redis
        self.keys = keys
        self._options = options
        self._spawn = spawn
        self._lag = lag
        self.worker_id = uuid4().hex
        self._lease_ms = int(lease_ttl * 1000)
        self._register = redis.register_script(REGISTER)
        self._renew = redis.register_script(_RENEW)
        self._wake_key = f"{keys.ns}:wake:{self.worker_id}"
        self._wake_id = "0-0"
        # key -> sinks; stream name -> last entry id read; stream name -> key.
        self._routes: dict[RegKey, list[Sink]] = {}
        self._positions: dict[str, str] = {}
        self._stream_regs: dict[str, RegKey] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self.counts = dict.fromkeys(("frames", "malformed", "unrouted"), 0)
        self.frames_by_tr: dict[str, int] = {}

    @property
    def registrations(self) -> int:
        """This worker's market keys."""
        routes: dict[RegKey, list[Sink]] = self._routes
        return len(routes)

    def queue_depth(self) -> int:
        """Records read but not yet taken by their consumers."""
        seen: dict[int, Sink] = {id(s): s for sinks in self._routes.values() for s in sinks}
        return sum(len(s) for s in seen.values() if isinstance(s, Buffer))

    async def attach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Route ``keys`` to ``sink``, registering the keys this worker does not hold yet.

        Raises:
            SubscriptionError: the new keys would pass the cap shared by every worker.
            BrokerConnectionError: Redis did not answer.
        """
        keys = tuple(dict.fromkeys(keys))
        if self._lag is not None and isinstance(sink, Buffer):
            sink.measure_lag(self._lag)
        async with self._lock:
            new = [key for key in keys if key not in self._routes]
            if new:
                await self._register_keys(new)
            for key in keys:
                self._routes.setdefault(key, []).append(sink)
        if new:
            self._start_tasks()
            await self._wake()
            await self._await_served(new)

    async def _await_served(self, new: list[RegKey]) -> None:
        """Return once the active gateway holds ``new`` at KIS (as a direct socket returns
        after the acks), so trades right after ``async with quotes(...)`` are delivered.

        Without an active gateway (no heartbeat) there is nothing to wait for: the keys are
        served when one takes over. A gateway that does not confirm within ``ack_timeout``
        (KIS refused, it is retrying) is logged, and the stream stays open and registered.
        """
        fields = [reg_field(*key) for key in new]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.ack_timeout
        delay = 0.005
        try:
            if not await self._redis.exists(self.keys.heartbeat):
                return
            while True:
                flags = await self._redis.smismember(self.keys.served, fields)
                if all(int(flag) for flag in flags):
                    return
                if loop.time() >= deadline:
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
        except (OSError, RedisError) as exc:
            logger.warning("gateway worker: could not check served keys (%s)", type(exc).__name__)
            return
        logger.warning(
            "gateway worker: the gateway has not confirmed %d registration(s) at KIS within "
            "%.1f s; the stream stays open and receives data once it does",
            len(fields),
            self._options.ack_timeout,
        )

    async def detach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Stop routing ``keys`` to ``sink``; unregister the keys nobody here holds any more."""
        gone: list[RegKey] = []
        async with self._lock:
            for key in keys:
                sinks = self._routes.get(key)
                if sinks is None:
                    continue
                with contextlib.suppress(ValueError):
                    sinks.remove(sink)
                if not sinks:
                    del self._routes[key]
                    stream = self.keys.market(*key)
                    self._positions.pop(stream, None)
                    self._stream_regs.pop(stream, None)
                    gone.append(key)
        if gone:
            try:
                pipe = self._redis.pipeline(transaction=False)
                pipe.hdel(self.keys.worker(self.worker_id), *(reg_field(*k) for k in gone))
                pipe.publish(self.keys.changed, self.worker_id)
                await pipe.execute()
            except Exception as exc:
                logger.warning(
                    "could not unregister %d key(s) at the gateway (%s); they expire with this "
                    "worker's lease",
                    len(gone),
                    type(exc).__name__,
                )

    async def stop(self) -> None:
        """End every market stream (after what it queued), stop reading, unregister all."""
        async with self._lock:
            sinks = self._take_sinks()
        for task in (self._reader, self._renewer):
            if task is not None:
                task.cancel()
        self._reader = self._renewer = None
        for sink in sinks:
            sink.close(drain=True)
        await self.unregister_all()

    def _take_sinks(self) -> list[Sink]:
        sinks = {id(s): s for sinks in self._routes.values() for s in sinks}
        self._routes.clear()
        self._positions.clear()
        self._stream_regs.clear()
        return list(sinks.values())

    async def _register_keys(self, new: list[RegKey]) -> None:
        """Note where each new key's stream ends, then register (all-or-nothing)."""
        streams = [self.keys.market(*key) for key in new]
        pipe = self._redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xrevrange(stream, count=1)
        try:
            lasts = await pipe.execute()
            ok, count = await self._register_fields([*self._routes, *new])
        except Exception as exc:
            raise BrokerConnectionError(
                f"the gateway's Redis did not answer ({type(exc).__name__})"
            ) from exc
        if not int(ok):
            raise SubscriptionError(
                f"{int(count)} market registrations would be in use across all workers of "
                f"this gateway; KIS allows {MARKET_REGISTRATION_CAP} (41 per session, one kept "
                "for the account's execution notices), shared by every worker",
                tr_id=new[0][0],
                tr_key=new[0][1],
                msg_cd=None,
            )
        for key, stream, last in zip(new, streams, lasts, strict=True):
            self._positions[stream] = text(last[0][0]) if last else "0-0"
            self._stream_regs[stream] = key

    async def _register_fields(self, keys: list[RegKey]) -> tuple[Any, Any]:
        ok, count = await self._register(
            keys=[self.keys.workers, self.keys.worker(self.worker_id)],
            args=[
                self.keys.worker_prefix,
                self.worker_id,
                self._lease_ms,
                MARKET_REGISTRATION_CAP,
                self.keys.changed,
                *(reg_field(*key) for key in keys),
            ],
        )
        return ok, count

    async def unregister_all(self) -> None:
        """Remove this worker (its lease and hash) and announce it; failures are logged."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.zrem(self.keys.workers, self.worker_id)
            pipe.delete(self.keys.worker(self.worker_id), self._wake_key)
            pipe.publish(self.keys.changed, self.worker_id)
            await pipe.execute()
        except Exception as exc:
            logger.warning(
                "could not remove this worker at the gateway (%s); its registrations expire "
                "with its lease",
                type(exc).__name__,
            )

    async def _renew_loop(self) -> None:
        every = self._lease_ms / 3000
        while True:
            await asyncio.sleep(every)
            try:
                ours = await self._renew(
                    keys=[self.keys.workers, self.keys.worker(self.worker_id)],
                    args=[self.worker_id, self._lease_ms, self.keys.changed],
                )
                if not int(ours):
                    await self._register_again()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("gateway worker lease renewal failed (%s)", type(exc).__name__)

    async def _register_again(self) -> None:
        """The lease lapsed (a long pause): register every key again, or fail their streams."""
        async with self._lock:
            if not self._routes:
                return
            logger.warning("gateway worker lease had lapsed; registering again")
            ok, count = await self._register_fields(list(self._routes))
            if int(ok):
                return
            error = SubscriptionError(
                f"this worker's registrations lapsed and {int(count)} would now pass the cap of "
                f"{MARKET_REGISTRATION_CAP} shared by every worker"
            )
            sinks = self._take_sinks()
        for sink in sinks:
            sink.fail(error)

    # -- market data ------------------------------------------------------------------------

    def _start_tasks(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = self._spawn(self._read(), "kis_async-gateway-market")
        if self._renewer is None or self._renewer.done():
            self._renewer = self._spawn(self._renew_loop(), "kis_async-gateway-lease")

    async def _wake(self) -> None:
        """Cut the reader's blocking XREAD short so it reads the new keys at once."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1, approximate=False)
            pipe.pexpire(self._wake_key, self._lease_ms * 2)
            await pipe.execute()
        except Exception as exc:
            logger.debug("wake-up of the market reader failed (%s)", type(exc).__name__)

    async def _read(self) -> None:
        retries = ReadRetries(self._options, "market data", self._fail)
        redis = self._redis
        while self._positions:
            streams: dict[Any, Any] = dict(self._positions)
            streams[self._wake_key] = self._wake_id
            try:
                reply = await redis.xread(streams, count=_COUNT, block=_BLOCK_MS)
            except Exception as exc:
                if await retries.failed(exc):
                    continue
                return
            retries.succeeded()
            if reply:
                self._route(reply.items() if isinstance(reply, dict) else reply)

    def _route(self, reply: Iterable[Any]) -> None:
        counts = self.counts
        by_tr = self.frames_by_tr
        for raw_key, value in reply:
            entries = value[0] if value and isinstance(value[0], list) else value
            stream = text(raw_key)
            if stream == self._wake_key:
                self._wake_id = text(entries[-1][0])
                continue
            key = self._stream_regs.get(stream)
            if key is None or stream not in self._positions:
                counts["unrouted"] += len(entries)
                continue  # unregistered while the read was in flight
            self._positions[stream] = text(entries[-1][0])
            sinks = self._routes.get(key, ())
            for _eid, fields in entries:
                counts["frames"] += 1
                by_tr[key[0]] = by_tr.get(key[0], 0) + 1
                try:
                    decoded = decode_market(fields)
                except Exception as exc:
                    counts["malformed"] += 1
                    logger.warning("skipped a market entry that does not decode (%s)", exc)
                    continue
                for sink in sinks:
                    sink.put(decoded)

    def _fail(self, error: BrokerConnectionError) -> None:
        for sink in self._take_sinks():
            sink.fail(error)
