"""GatewayStreams: a worker's streams, fed from the gateway's Redis instead of a socket.

The same surface as :class:`~kis_async.stream.manager.StreamManager` (both are a
:class:`~kis_async.stream.facade.StreamFacade`; ``KISBroker`` picks this one when given
``gateway=``) and the same owner interface (attach, detach, spawn) for
the real stream handles, buffers and execution consumers, so a value, a conflation, a
cursor or a close behaves as with a direct socket; only the source differs, as for
MockBroker's :class:`~kis_async.stream.hub.MemoryHub`.

* **Registrations and market data** (:mod:`kis_async.gateway.worker_market`): a worker
  (id: uuid4 hex) adds ``TR|SYMBOL`` fields to its hash with the REGISTER script, which
  enforces KIS's cap over the union of every live worker's registrations *before* anything
  is added (:class:`~kis_async.errors.SubscriptionError` otherwise) and announces the change.
  The worker's lease (``{ns}:workers``) is renewed every third of ``lease_ttl``; a worker
  that dies without closing loses its registrations when the lease runs out; the last stream
  of a key leaves with HDEL and a PUBLISH. Before registering a key the worker notes the id
  of its stream's newest entry and reads from there, so whatever the gateway publishes after
  the registration is delivered. One XREAD BLOCK loop reads every key (a private wake-up
  stream interrupts it when keys are added) and routes the decoded records to their
  buffers, which conflate for a slow reader as with a socket.
* **Executions**: :mod:`kis_async.gateway.worker_executions`.
* **Status**: the gateway's heartbeat key and events stream, polled once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from kis_async.config import KISConfig
from kis_async.errors import BrokerConnectionError
from kis_async.gateway.keys import GatewayKeys
from kis_async.gateway.worker_executions import (
    ExecutionSource,
    GroupBuffer,
    GroupConsumer,
    GroupExecutionStream,
    check_group_name,
    entry_id,
    text,
)
from kis_async.gateway.worker_market import MarketFeed
from kis_async.models import Execution, ExecutionCursor, Order
from kis_async.port import Callback
from kis_async.stream.executions import ExecutionConsumer
from kis_async.stream.facade import DropCounter, StreamFacade
from kis_async.stream.options import StreamOptions, StreamStatus
from kis_async.stream.streams import (
    CallbackSubscription,
    ExecutionStream,
    RegKey,
    Sink,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["GatewayStreams", "gateway_client"]

logger = logging.getLogger("kis_async.gateway")

#: Seconds between polls of the gateway's heartbeat and events.
_STATUS_EVERY: Final = 1.0

_SCHEMES: Final = ("redis", "rediss", "unix")


def gateway_client(gateway: object) -> tuple[Any, bool]:
    """``(client, owned)`` for a ``gateway=`` argument: a URL (a client is made, not yet
    connected, and owned by the caller) or a ``redis.asyncio.Redis`` client.

    Raises:
        ValueError: a str that is not a ``redis://``, ``rediss://`` or ``unix://`` URL (the
            URL is not repeated: it may hold a password).
        TypeError: neither a str nor a ``redis.asyncio.Redis``.
        ImportError: the ``gateway`` extra (redis-py) is not installed.
    """
    if isinstance(gateway, str):
        try:
            parts = urlsplit(gateway.strip())
            host_ok = parts.scheme == "unix" or bool(parts.hostname)
            _ = parts.port  # raises ValueError on a bad port
        except ValueError:
            host_ok = False
            parts = urlsplit("")
        if parts.scheme not in _SCHEMES or not host_ok:
            raise ValueError(
                "gateway must be a Redis URL (redis://host:port/db, rediss://... or "
                "unix://path) or a redis.asyncio.Redis client"
            )
        aioredis = _redis_module()
        return aioredis.from_url(gateway.strip()), True
    if gateway is None or isinstance(gateway, (bytes, int, float)):
        raise TypeError("gateway must be a Redis URL or a redis.asyncio.Redis client")
    aioredis = _redis_module()
    if not isinstance(gateway, aioredis.Redis):
        raise TypeError("gateway must be a Redis URL or a redis.asyncio.Redis client")
    return gateway, False


def _redis_module() -> Any:
    try:
        import redis.asyncio as aioredis  # noqa: PLC0415 - optional dependency
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "a gateway needs the redis package: pip install 'kis-async[gateway]'"
        ) from exc
    return aioredis


class GatewayStreams(StreamFacade):
    """A worker's streams over the gateway's Redis (see the module docstring).

    Args:
        config: the configuration (``mode``, ``app_key`` and account name the namespace;
            ``hts_id`` is needed for executions, as with a direct socket).
        redis: a ``redis.asyncio.Redis`` client (not closed here).
        options: queue sizes and the reconnect backoff for Redis reads.
        lag: given the put-to-consumer lag (seconds) of sampled records.
        prefix: the namespace prefix (the gateway's ``namespace_prefix``).
        lease_ttl: seconds a worker's registrations outlive its last renewal.
        claim_idle: seconds after which a consumer group claims an entry another consumer
            of the group left unacknowledged.
        fetch_orders: today's orders over REST (``KISBroker`` passes its own); the starting
            point of a ``replay=False`` execution stream, as with a direct socket.
    """

    _closed_message = "the gateway streams are closed"
    _task_logger = logger
    _task_kind = "gateway worker task"

    def __init__(
        self,
        config: KISConfig,
        redis: Redis | Any,
        *,
        options: StreamOptions | None = None,
        lag: Callable[[float], None] | None = None,
        prefix: str = "kis_async",
        lease_ttl: float = 10.0,
        claim_idle: float = 30.0,
        fetch_orders: Callable[[], Awaitable[list[Order]]] | None = None,
    ) -> None:
        if not lease_ttl > 0 or not claim_idle > 0:
            raise ValueError("GatewayStreams lease_ttl and claim_idle must be positive")
        super().__init__(config, options=options, lag=lag)
        self._redis = redis
        self._keys = GatewayKeys.for_config(config, prefix=prefix)
        self._poller: asyncio.Task[None] | None = None
        self.market = MarketFeed(
            redis, self._keys, options=self._options, spawn=self.spawn, lease_ttl=lease_ttl, lag=lag
        )
        self.worker_id = self.market.worker_id
        self.executions_source = ExecutionSource(
            redis,
            self._keys,
            self._options,
            self.spawn,
            claim_idle=claim_idle,
            fetch_orders=fetch_orders,
        )
        self._counts = dict.fromkeys(("quotes", "books"), 0)
        self._heartbeat: dict[str, Any] | None = None
        self._events_id: str | None = None
        self._reconnects = 0
        self._gave_up = False
        self._seen_connected = False

    # -- public API (the rest in StreamFacade) ----------------------------------------------

    @property
    def keys(self) -> GatewayKeys:
        """The gateway's Redis key names."""
        return self._keys

    def executions(
        self,
        *,
        replay: bool = True,
        since: ExecutionCursor | str | None = None,
        group: str | None = None,
        consumer: str | None = None,
    ) -> ExecutionStream:
        """This account's execution events: a cursor consumer (``replay``/``since`` as with a
        direct socket) or, with ``group``, a consumer of that consumer group.

        Raises:
            ValueError: no ``hts_id``; a bad ``since``, group or consumer name; ``since``
                with a group, or a consumer without a group.
        """
        if group is None and consumer is None:
            return super().executions(replay=replay, since=since)
        self._check_open()
        keys = self._execution_keys()
        sink = self._group_consumer(group, consumer, replay=replay, since=since)
        return GroupExecutionStream(self, keys, sink.buffer, sink=sink, group_buffer=sink.buffer)

    async def subscribe_executions(
        self,
        callback: Callback[Execution],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
        replay: bool = True,
        since: ExecutionCursor | str | None = None,
        group: str | None = None,
        consumer: str | None = None,
    ) -> CallbackSubscription[Execution]:
        """Call ``callback`` for each execution event from its own task; a cursor consumer
        or a group consumer as in :meth:`executions`."""
        if group is None and consumer is None:
            return await super().subscribe_executions(
                callback, on_error=on_error, replay=replay, since=since
            )
        self._check_open()
        keys = self._execution_keys()
        sink = self._group_consumer(group, consumer, replay=replay, since=since)
        sub = CallbackSubscription(self, keys, sink.buffer, callback, on_error, sink=sink)
        return await self._started(sub)

    async def connect(self) -> None:
        """Check the gateway's Redis answers and start following the gateway's status.

        Raises:
            BrokerConnectionError: Redis did not answer.
        """
        self._check_open()
        try:
            await self._redis.ping()
            await self._poll_status()
        except Exception as exc:
            raise BrokerConnectionError(
                f"the gateway's Redis did not answer ({type(exc).__name__})"
            ) from exc
        self._start_poller()

    async def disconnect(self) -> None:
        """End every stream (after what it queued) and take back this worker's registrations."""
        self.executions_source.stop()
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        await self.market.stop()

    def frames_by_tr(self) -> dict[str, int]:
        """Market entries read so far, by TR id."""
        return dict(self.market.frames_by_tr)

    def queue_depth(self) -> int:
        """Quotes and order books read but not yet taken by their consumers."""
        return self.market.queue_depth()

    @property
    def status(self) -> StreamStatus:
        """The gateway's session as this worker sees it, with this worker's counters.

        ``connected``: the gateway's heartbeat is fresh and says connected; ``reconnects``:
        (re)connections the gateway announced since this worker started following it (a
        takeover by the standby counts); ``failed``: the active gateway gave up its session
        (and says it is not connected); ``registrations``: this worker's market keys.
        """
        beat = self._heartbeat
        market = self.market.counts
        return StreamStatus(
            connected=bool(beat and beat.get("connected")),
            reconnects=self._reconnects,
            registrations=self.market.registrations,
            quotes_dropped=self._counts["quotes"],
            malformed_frames=market["malformed"],
            orderbooks_dropped=self._counts["books"],
            frames_received=market["frames"] + self.executions_source.entries,
            executions_reconciled=self.executions_source.reconciled,
            failed=self._gave_up and beat is not None and not beat.get("connected"),
            records_unrouted=market["unrouted"],
        )

    @property
    def executions_active(self) -> bool:
        """True while execution events are being read and the gateway is connected."""
        beat = self._heartbeat
        return self.executions_source.active and bool(beat and beat.get("connected"))

    def recent_executions(self) -> list[Execution]:
        """Execution events read recently (bounded), oldest first."""
        return self.executions_source.recent()

    def add_execution_listener(self, fn: Callable[[Execution], None]) -> Callable[[], None]:
        """Call ``fn`` for every execution event read (while an execution stream is open);
        returns a remover."""
        return self.executions_source.add_listener(fn)

    def __repr__(self) -> str:
        return (
            f"GatewayStreams(worker={self.worker_id[:8]}, "
            f"registrations={self.market.registrations}, "
            f"closed={self._closed})"
        )

    # -- the handles' side (package-internal) -----------------------------------------------

    async def attach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Route ``keys`` to ``sink``: register new market keys (capped across every worker,
        before anything is added), or start an execution consumer on the gateway's stream."""
        self._check_open()
        self._start_poller()
        if isinstance(sink, ExecutionConsumer):
            await self.executions_source.join(sink)
            return
        if isinstance(sink, GroupConsumer):
            await self.executions_source.join_group(sink)
            return
        await self.market.attach(sink, keys)

    async def detach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Stop routing ``keys`` to ``sink``; unregister the keys nobody here holds any more."""
        if isinstance(sink, ExecutionConsumer):
            self.executions_source.leave(sink)
            return
        if isinstance(sink, GroupConsumer):
            self.executions_source.leave_group(sink)
            return
        await self.market.detach(sink, keys)

    # -- registrations ----------------------------------------------------------------------

    def _group_consumer(
        self,
        group: str | None,
        consumer: str | None,
        *,
        replay: bool,
        since: ExecutionCursor | str | None,
    ) -> GroupConsumer:
        if group is None:
            raise ValueError("an execution consumer name needs a group")
        if since is not None:
            raise ValueError("a consumer group keeps its own position; since= is not for groups")
        name = check_group_name("consumer", consumer if consumer is not None else group)
        group = check_group_name("group", group)
        source = self.executions_source

        async def ack(eid: str) -> None:
            await source.ack(group, eid)

        buffer = GroupBuffer(self._options.execution_high_water, ack)
        return GroupConsumer(buffer, group=group, name=name, replay=replay)

    # -- the gateway's status ----------------------------------------------------------------

    def _start_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = self.spawn(self._poll_loop(), "kis_async-gateway-status")

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self._poll_status()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._heartbeat = None
                logger.debug("gateway status poll failed (%s)", type(exc).__name__)
            await asyncio.sleep(_STATUS_EVERY)

    async def _poll_status(self) -> None:
        """Read the heartbeat and the session events announced since the last poll."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(self._keys.heartbeat)
        if self._events_id is None:
            pipe.xrevrange(self._keys.events, count=1)
        else:
            pipe.xrange(self._keys.events, min="(" + self._events_id, max="+", count=1000)
        raw, events = await pipe.execute()
        beat = _heartbeat(raw)
        first = self._events_id is None
        if events:
            newest = max(events, key=lambda e: entry_id(e[0]))
            self._events_id = text(newest[0])
        elif first:
            self._events_id = "0-0"
        if first:
            # Only what the gateway announces from now on counts; the first connection a
            # worker sees (it started before the gateway connected) is not a reconnection.
            self._seen_connected = bool(beat and beat.get("connected"))
            if events:
                self._gave_up = _event_name(events[0][1]) == "gave_up"
        else:
            for _eid, fields in events:
                name = _event_name(fields)
                if name in ("connected", "restored"):
                    if name == "connected":
                        if self._seen_connected:
                            self._reconnects += 1
                        self._seen_connected = True
                    self._gave_up = False
                elif name == "gave_up":
                    self._gave_up = True
        self._heartbeat = beat

    # -- helpers --------------------------------------------------------------------------

    def _drops(self, name: DropCounter) -> Callable[[int], None]:
        counts = self._counts

        def add(n: int) -> None:
            counts[name] += n

        return add


def _heartbeat(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _event_name(fields: Mapping[Any, Any]) -> str | None:
    raw = fields.get(b"event", fields.get("event"))
    if raw is None:
        # Also accept the whole event as one JSON field.
        for value in fields.values():
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                doc = json.loads(value)
                if isinstance(doc, dict) and "event" in doc:
                    return str(doc["event"])
        return None
    return text(raw)
