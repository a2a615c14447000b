"""The gateway: one KIS WebSocket session for many worker processes, served through Redis.

KIS allows one WebSocket session per app key (41 registrations). :class:`Gateway` holds it
and publishes what it receives to Redis streams; workers (``KISBroker(config,
gateway=...)``) register what they want in Redis and read the streams.

Several gateways may run on one namespace: a Redis lease (:mod:`~kis_async.gateway.lease`)
picks the active one; the others stand by and take over within about ``lease_ttl`` seconds
when it dies (``kill -9`` included). While active, a gateway:

* runs a :class:`~kis_async.KISBroker` whose REST budget and token are the workers' own
  (:class:`~kis_async.gateway.RedisRateLimiter`, :class:`~kis_async.gateway.RedisTokenStore`),
  so a takeover issues no new token when the shared one is valid;
* serves the union of the live workers' market registrations (re-read on the ``changed``
  hint and every second), publishing each record to ``{ns}:md:{TR}:{SYMBOL}`` (trimmed);
* follows the account's executions (when ``config.hts_id`` is set) from the cursor its
  predecessor left in ``{ns}:x:cursor``, so fills made while no gateway was active are
  gap-filled over REST, and publishes each event with its cursor in one lease-fenced script:
  an entry is never written twice nor by a gateway that lost the lease;
* keeps a heartbeat key and a stream of session events (see :class:`Gateway`).

It steps down (closing its KIS session) the moment it cannot renew the lease, finds another
holder, or a fenced write is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final
from uuid import uuid4

from redis.exceptions import RedisError

from kis_async.broker import KISBroker
from kis_async.config import KISConfig
from kis_async.errors import BrokerError
from kis_async.gateway.events import GatewayEvents
from kis_async.gateway.keys import GatewayKeys, reg_field
from kis_async.gateway.lease import Lease, StepDown, checked, raise_if_cancelled
from kis_async.gateway.publisher import MarketPublisher, MarketSink
from kis_async.gateway.ratelimit import RedisRateLimiter
from kis_async.gateway.registrations import Registrations
from kis_async.gateway.relay import ExecutionRelay
from kis_async.gateway.token_store import RedisTokenStore
from kis_async.stream.manager import StreamManager
from kis_async.stream.options import StreamOptions
from kis_async.stream.streams import RegKey

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["Gateway"]

logger = logging.getLogger("kis_async.gateway")

#: Seconds between re-reads of the registrations when no ``changed`` hint comes.
SYNC_INTERVAL: Final = 1.0
#: Seconds between heartbeats.
HEARTBEAT_INTERVAL: Final = 1.0
#: Seconds between checks of the session's state (events are emitted on changes).
WATCH_INTERVAL: Final = 0.1
#: The longest wait before a registration KIS refused is asked for again.
REFUSED_RETRY: Final = 30.0


def _default_id() -> str:
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid4().hex[:6]}"


class Gateway:
    """The KIS gateway process (see the module docstring).

    Example::

        gateway = Gateway(KISConfig.from_env(), "redis://127.0.0.1:6379/0")
        task = asyncio.create_task(gateway.run())
        await gateway.wait_active(30)
        ...
        gateway.stop()
        await task

    Args:
        config: the account (its ``hts_id`` turns on execution notices).
        redis: a ``redis.asyncio.Redis`` client, or a URL (a client made from a URL is closed
            when :meth:`run` returns).
        gateway_id: this gateway's name in the lease, heartbeat and events (default: host,
            pid and a random suffix).
        lease_ttl: seconds the lease lives without renewal: the longest a standby waits after
            the active gateway died. Renewed every fifth of it.
        market_maxlen: approximate length each market stream is trimmed to.
        execution_retention: seconds of execution entries kept (trimmed by age only).
        stream_options: the KIS session's tuning (reconnects, timeouts, queue sizes).
        namespace_prefix: the prefix of the gateway's keys and of the shared token's (workers
            must use the same one); the shared rate window keeps the name
            :meth:`RedisRateLimiter.for_config` gives it.

    Events (stream ``{ns}:events``, fields ``event``, ``id``, ``time``): ``standby`` (waiting
    for the lease, or stepped down), ``active`` (lease taken), ``connected`` (the KIS session
    opened, or reopened), ``restored`` (every registration and the execution cursor restored:
    after a takeover and after each reconnect), ``gave_up`` (the session gave up; it is
    opened again).
    """

    _events: GatewayEvents  # made by run(), with its Redis client

    def __init__(
        self,
        config: KISConfig,
        redis: Redis | str,
        *,
        gateway_id: str | None = None,
        lease_ttl: float = 5.0,
        market_maxlen: int = 1000,
        execution_retention: float = 7 * 86400,
        stream_options: StreamOptions | None = None,
        namespace_prefix: str = "kis_async",
    ) -> None:
        if not isinstance(config, KISConfig):
            raise TypeError("Gateway needs a KISConfig")
        if gateway_id is None:
            gateway_id = _default_id()
        if (
            not isinstance(gateway_id, str)
            or not gateway_id
            or len(gateway_id) > 128
            or any(c.isspace() for c in gateway_id)
        ):
            raise ValueError("gateway_id must be a non-empty word of at most 128 characters")
        if isinstance(lease_ttl, bool) or not 0.1 <= lease_ttl <= 3600:
            raise ValueError("lease_ttl must be between 0.1 and 3600 seconds")
        if isinstance(market_maxlen, bool) or not isinstance(market_maxlen, int):
            raise TypeError("market_maxlen must be an int")
        if market_maxlen < 1:
            raise ValueError("market_maxlen must be at least 1")
        if isinstance(execution_retention, bool) or not execution_retention > 0:
            raise ValueError("execution_retention must be a positive number of seconds")
        if not isinstance(redis, str) and not callable(getattr(redis, "register_script", None)):
            raise TypeError("Gateway redis must be a URL or a redis.asyncio.Redis client")
        self._config = config
        self._redis_arg = redis
        self.gateway_id = gateway_id
        self._ttl = float(lease_ttl)
        self._maxlen = market_maxlen
        self._retention = float(execution_retention)
        self._options = stream_options
        self._prefix = namespace_prefix
        self.keys = GatewayKeys.for_config(config, prefix=namespace_prefix)
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._running = False
        self._active = False
        self._active_since: float | None = None
        self._state = "starting"  # until run() takes its first step
        self._manager: StreamManager | None = None
        self._market: dict[RegKey, MarketSink] = {}
        self._publisher: MarketPublisher | None = None
        self._relay: ExecutionRelay | None = None
        self._synced = False
        self._counts = dict.fromkeys(
            ("activations", "step_downs", "executions_published", "market_published"), 0
        )
        self._last_step_down: str | None = None

    # -- public API ------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """True while this gateway holds the lease and serves."""
        return self._active

    async def wait_active(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - the API
        """Wait until this gateway is active and has restored everything (its session, the
        workers' registrations and the execution stream).

        Raises:
            TimeoutError: not within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            await self._ready.wait()

    def stop(self) -> None:
        """Ask :meth:`run` to end gracefully: the lease is released, so a standby takes over
        at once. Safe to call from a signal handler on the gateway's loop."""
        self._stop.set()

    def status(self) -> dict[str, Any]:
        """This gateway's state (``starting``, ``standby``, ``active``, ``stopped``) and counters
        (no secrets)."""
        manager = self._manager
        stream = manager.status if manager is not None else None
        publisher = self._publisher
        return {
            "id": self.gateway_id,
            "namespace": self.keys.ns,
            "state": self._state,
            "active": self._active,
            "ready": self._ready.is_set(),
            "active_since": self._active_since,
            "connected": bool(stream and stream.connected),
            "registrations": stream.registrations if stream else 0,
            "market_registrations": len(self._market),
            "reconnects": stream.reconnects if stream else 0,
            "executions": bool(self._config.hts_id),
            "executions_published": self._counts["executions_published"]
            + (self._relay.published if self._relay else 0),
            "market_published": self._counts["market_published"]
            + (publisher.published if publisher else 0),
            "market_dropped": publisher.dropped if publisher else 0,
            "activations": self._counts["activations"],
            "step_downs": self._counts["step_downs"],
            "last_step_down": self._last_step_down,
            "lease_ttl": self._ttl,
        }

    def __repr__(self) -> str:
        return f"Gateway(id={self.gateway_id!r}, state={self._state!r}, ns={self.keys.ns!r})"

    async def run(self) -> None:
        """Stand by, serve while holding the lease, stand by again; until :meth:`stop` (the
        lease is then released) or cancellation (the lease is left to expire, as after a
        crash).

        Raises:
            RuntimeError: already running.
        """
        if self._running:
            raise RuntimeError("this Gateway is already running")
        self._running = True
        redis: Any
        owns = isinstance(self._redis_arg, str)
        if isinstance(self._redis_arg, str):
            import redis.asyncio as aioredis  # noqa: PLC0415 - optional dependency

            redis = aioredis.from_url(self._redis_arg)
        else:
            redis = self._redis_arg
        lease = Lease(redis, self.keys.lease, self.gateway_id, self._ttl)
        self._events = GatewayEvents(redis, self.keys, self.gateway_id)
        try:
            while not self._stop.is_set():
                if not await self._standby(redis, lease):
                    break
                await self._serve(redis, lease)
            await self._release(redis, lease)
        finally:
            self._state = "stopped"
            self._running = False
            self._stop.clear()  # a stop() before run() counts; after it, run() may start again
            if owns:
                await redis.aclose()

    # -- standby ----------------------------------------------------------------------------

    async def _standby(self, redis: Any, lease: Lease) -> bool:
        """Wait for the lease; False when stopped first."""
        self._state = "standby"
        await self._events.emit("standby")
        interval = min(self._ttl / 5, 1.0)
        failing = False
        while not self._stop.is_set():
            try:
                if await asyncio.wait_for(lease.acquire(), max(interval, 1.0)):
                    return True
                failing = False
            except (OSError, TimeoutError, RedisError) as exc:
                raise_if_cancelled()
                if not failing:
                    logger.warning("gateway: Redis unavailable in standby (%s)", type(exc).__name__)
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)
        return False

    async def _release(self, redis: Any, lease: Lease) -> None:
        """Graceful end: give the lease up and say so."""
        try:
            if await lease.release():
                await redis.delete(self.keys.heartbeat)
            await self._events.emit("standby", reason="stopped")
        except (OSError, RedisError) as exc:
            raise_if_cancelled()
            logger.warning("gateway: could not release the lease (%s)", type(exc).__name__)

    # -- active -----------------------------------------------------------------------------

    async def _serve(self, redis: Any, lease: Lease) -> None:
        """Serve while the lease is ours; close the KIS session on the way out."""
        broker = self._broker(redis)
        manager = broker._streams  # the session this process holds for every worker
        if not isinstance(manager, StreamManager):
            raise TypeError("the gateway needs a KISBroker with a direct KIS session")
        self._active = True
        self._active_since = time.time()
        self._state = "active"
        self._counts["activations"] += 1
        logger.info("gateway %s is active on %s", self.gateway_id, self.keys.ns)
        self._manager = manager
        publisher = self._publisher = MarketPublisher(redis, maxlen=self._maxlen)
        self._market = {}
        relay = self._relay = (
            ExecutionRelay(
                redis, self.keys, self.gateway_id, retention=self._retention, patience=self._ttl
            )
            if self._config.hts_id
            else None
        )
        self._synced = False
        self._events.reset()
        reason = "stopped"
        try:
            await self._events.emit("active")
            # What a predecessor held at KIS is not held by this session (yet).
            await checked(redis.delete(self.keys.served))
            await broker.open()
            jobs = {
                "kis-gw-lease": self._renew(lease),
                "kis-gw-publish": publisher.run(),
                "kis-gw-sync": self._sync(redis, manager, publisher),
                "kis-gw-watch": self._watch(manager),
                "kis-gw-stop": self._until_stopped(),
            }
            if relay is not None:
                jobs["kis-gw-x"] = relay.run(broker, lambda: self._maybe_ready(redis))
            reason = await self._supervise(jobs)
        finally:
            self._active = False
            self._ready.clear()
            self._manager = None
            self._market = {}
            if relay is not None:
                self._counts["executions_published"] += relay.published
                self._relay = None
            try:
                await broker.aclose()  # first: the KIS session is free for the next gateway
            finally:
                self._publisher = None
                with contextlib.suppress(Exception):
                    await publisher.flush()  # what was received before the close
                self._counts["market_published"] += publisher.published
        if reason != "stopped":
            self._counts["step_downs"] += 1
            self._last_step_down = reason
            logger.warning("gateway %s stepped down: %s", self.gateway_id, reason)

    async def _supervise(self, jobs: dict[str, Coroutine[Any, Any, None]]) -> str:
        """Run the active gateway's tasks until the first one ends; end the others; return
        why. (Not a TaskGroup: on Python 3.11 a failing child leaves the parent task marked
        cancelling, which would make every later Redis call look cancelled.)"""
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(coro, name=name) for name, coro in jobs.items()]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            _, stuck = await asyncio.wait(tasks, timeout=10)
            for task in stuck:
                logger.error("gateway task %s did not end when cancelled", task.get_name())
        first = next(iter(done))
        error = None if first.cancelled() else first.exception()
        if isinstance(error, StepDown):
            return str(error)
        if error is None:
            return f"internal error ({first.get_name()} ended)"
        logger.error("gateway %s failed while active", self.gateway_id, exc_info=error)
        await self._pause(1.0)
        return f"internal error ({type(error).__name__})"

    def _broker(self, redis: Any) -> KISBroker:
        config = self._config
        limiter = (
            RedisRateLimiter.for_config(redis, config)
            if config.requests_per_second is not None
            else None
        )
        return KISBroker(
            config,
            stream_options=self._options,
            rate_limiter=limiter,
            token_store=RedisTokenStore(redis, config, prefix=self._prefix),
        )

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _until_stopped(self) -> None:
        await self._stop.wait()
        raise StepDown("stopped")

    async def _renew(self, lease: Lease) -> None:
        """Renew every fifth of the ttl; step down when the lease is another's, or when it
        may have expired because Redis did not answer."""
        loop = asyncio.get_running_loop()
        interval = self._ttl / 5
        confirmed = loop.time()
        while True:
            await asyncio.sleep(interval)
            sent = loop.time()
            try:
                renewed = await asyncio.wait_for(lease.renew(), interval)
            except (OSError, TimeoutError, RedisError) as exc:
                raise_if_cancelled()
                if loop.time() + interval >= confirmed + self._ttl:
                    raise StepDown(
                        f"lease renewal failed ({type(exc).__name__}); it may have expired"
                    ) from None
                continue
            if not renewed:
                raise StepDown("the lease is held by another gateway")
            confirmed = sent

    async def _sync(self, redis: Any, manager: StreamManager, publisher: MarketPublisher) -> None:
        """Serve the workers' registrations: on every ``changed`` hint and every second."""
        registrations = Registrations(redis, self.keys)
        refused: dict[RegKey, tuple[float, float]] = {}  # key -> (retry at, last delay)
        pubsub = redis.pubsub()
        try:
            await checked(pubsub.subscribe(self.keys.changed))
            try:
                await manager.connect()  # hold the session even before anyone registers
            except BrokerError as exc:
                logger.warning("gateway: KIS session not opened yet (%s)", type(exc).__name__)
            while True:
                try:
                    wanted = await registrations.wanted()
                except (OSError, RedisError) as exc:
                    raise_if_cancelled()
                    logger.warning("gateway: cannot read registrations (%s)", type(exc).__name__)
                else:
                    await self._apply(redis, manager, publisher, wanted, refused)
                    if not self._synced:
                        self._synced = True
                        await self._maybe_ready(redis)
                await self._next_hint(pubsub)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _next_hint(self, pubsub: Any) -> None:
        """Wait for a ``changed`` message (at most :data:`SYNC_INTERVAL`); take every queued
        one, so a burst of registrations costs one re-read."""
        try:
            message = await checked(pubsub.get_message(True, timeout=SYNC_INTERVAL))
            while message is not None:
                message = await checked(pubsub.get_message(True, timeout=0))
        except (OSError, RedisError):
            raise_if_cancelled()
            await asyncio.sleep(SYNC_INTERVAL)

    async def _apply(
        self,
        redis: Any,
        manager: StreamManager,
        publisher: MarketPublisher,
        wanted: set[RegKey],
        refused: dict[RegKey, tuple[float, float]],
    ) -> None:
        """Subscribe what is wanted and not held; unsubscribe what nobody wants any more."""
        market = self._market
        for key in [k for k in market if k not in wanted]:
            sink = market.pop(key)
            sink.ended = True
            await manager.detach(sink, (key,))
            await checked(redis.srem(self.keys.served, reg_field(*key)))
        now = time.monotonic()
        new = [k for k in sorted(wanted) if k not in market and refused.get(k, (0.0,))[0] <= now]
        if not new:
            return

        def ended(sink: MarketSink, error: BaseException | None) -> None:
            if market.get(sink.key) is sink:
                del market[sink.key]

        sinks = [MarketSink(k, self.keys.market(*k), publisher, ended) for k in new]
        for sink in sinks:
            market[sink.key] = sink
        results = await asyncio.gather(
            *(manager.attach(sink, (sink.key,)) for sink in sinks), return_exceptions=True
        )
        for sink, result in zip(sinks, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                sink.ended = True
                if market.get(sink.key) is sink:
                    del market[sink.key]
                # KIS refused it (or the session is down): ask again later, backing off from
                # 1 s (OPSP8996 while a dead predecessor's session lingers) to REFUSED_RETRY.
                delay = min(refused.get(sink.key, (0.0, 0.5))[1] * 2, REFUSED_RETRY)
                refused[sink.key] = (now + delay, delay)
                logger.warning(
                    "gateway: registration %s %s failed (%s: %s); retrying in %.0f s",
                    sink.key[0],
                    sink.key[1],
                    type(result).__name__,
                    result,
                    delay,
                )
            else:
                refused.pop(sink.key, None)
        served = [reg_field(*s.key) for s, r in zip(sinks, results, strict=True) if r is None]
        if served:
            # Acknowledged at KIS: a worker opening a stream of these keys may return now.
            await checked(redis.sadd(self.keys.served, *served))

    async def _maybe_ready(self, redis: Any) -> None:
        relay = self._relay
        if self._synced and (relay is None or relay.ready) and not self._ready.is_set():
            manager = self._manager
            if manager is not None:
                await self._events.follow(manager.status, ready=False)  # "connected" first
                # A fresh heartbeat before "ready": a worker that starts following now sees
                # the session connected instead of the last beat's state (up to a second old).
                await self._events.heartbeat(manager.status, self._active_since)
            self._ready.set()
            await self._events.emit("restored")
            logger.info(
                "gateway %s restored %d market registration(s)", self.gateway_id, len(self._market)
            )

    async def _watch(self, manager: StreamManager) -> None:
        """Emit session events as the session moves; write the heartbeat every second, and at
        once when the session connects, drops or changes its registrations."""
        events = self._events
        next_beat = 0.0
        beaten: tuple[bool, int] | None = None  # what the last heartbeat said
        loop = asyncio.get_running_loop()
        while True:
            status = manager.status
            await events.follow(status, ready=self._ready.is_set())
            now = (status.connected, status.registrations)
            if loop.time() >= next_beat or now != beaten:
                beaten = now
                next_beat = loop.time() + HEARTBEAT_INTERVAL
                if not await events.heartbeat(status, self._active_since):
                    raise StepDown("the lease is held by another gateway")
            await asyncio.sleep(WATCH_INTERVAL)
