"""StreamManager: registrations, session ownership and frame routing over one session.

* Lazy: nothing connects until the first subscription; then one approval key and one
  :class:`~kis_async.stream.session.Session`, shared by concurrent first subscriptions.
* Registrations (:mod:`~kis_async.stream.registry`): reference counted, capped before
  anything is sent, joined by a subscriber *before* its subscribe message goes out; an
  unsolicited refusal of an established one is answered by one re-send.
* Frames (:mod:`~kis_async.stream.router`): decoded through the ``tr_id`` table, routed to
  their sinks; notices go to the :class:`~kis_async.stream.executions.ExecutionFeed`.
* Every reconnect re-sends all registrations with the new key/iv; then the feed reconciles
  today's orders over REST. When the session gives up, every stream raises
  :class:`~kis_async.errors.BrokerConnectionError` after what it had queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from kis_async.config import KISConfig
from kis_async.errors import BrokerConnectionError, SubscriptionError
from kis_async.models import Execution, Order
from kis_async.stream.counters import StreamCounters
from kis_async.stream.executions import ExecutionConsumer, ExecutionFeed
from kis_async.stream.facade import DropCounter, StreamFacade
from kis_async.stream.options import StreamOptions, StreamStatus
from kis_async.stream.protocol import (
    Ack,
    AckStatus,
    subscribe_message,
    unsubscribe_message,
)
from kis_async.stream.registry import Registration, Registry, safe_key
from kis_async.stream.router import FrameRouter
from kis_async.stream.session import Session
from kis_async.stream.streams import (
    Buffer,
    RegKey,
    Sink,
)

__all__ = ["StreamManager", "StreamOptions", "StreamStatus"]

logger = logging.getLogger("kis_async.stream")


class StreamManager(StreamFacade):
    """Owns the WebSocket session and every stream over it (see the module docstring).

    Args:
        config: the configuration (``ws_url``, ``hts_id``, ``mode``, ``customer_type``).
        approval_key: coroutine function returning the WebSocket approval key.
        fetch_orders: coroutine function returning today's orders (for gap-fill).
        options: tuning; defaults suit KIS.
        lag: given the frame-to-consumer lag (seconds) of sampled records of every stream.
    """

    _closed_message = "the stream manager is closed"
    _task_logger = logger
    _task_kind = "stream task"

    def __init__(
        self,
        config: KISConfig,
        *,
        approval_key: Callable[[], Awaitable[str]],
        fetch_orders: Callable[[], Awaitable[list[Order]]],
        options: StreamOptions | None = None,
        lag: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(config, options=options, lag=lag)
        self._approval_fn = approval_key
        self._approval_key: str | None = None
        self._session: Session | None = None
        self._lock = asyncio.Lock()
        self._registry = Registry(self._options.max_registrations)
        self._regs = self._registry.regs  # the same dict (read by tests and __repr__)
        self.feed = ExecutionFeed(
            fetch_orders=fetch_orders, spawn=self.spawn, options=self._options
        )
        self._router = FrameRouter(
            self._registry,
            on_ack=self._on_ack,
            on_notice=self.feed.on_notice,
            log_interval=self._options.malformed_log_interval,
        )
        self._crypto = self._router.crypto
        # An attribute, not a method: the session reads frames straight into the router.
        self._on_text = self._router.on_text
        self._epoch = -1
        self._counters = StreamCounters()

    # -- public API (the rest in StreamFacade) ----------------------------------------------

    async def connect(self) -> None:
        """Open the session now (normally it opens on the first subscription)."""
        self._check_open()
        await self._ensure_session()

    async def disconnect(self) -> None:
        """Close the session; open streams end (after what they already queued)."""
        async with self._lock:
            session = self._session
            self._session = None
            self.feed.flush()
            self._end_all(None)
        if session is not None:
            self._counters.absorb(session)
            await session.aclose()

    def frames_by_tr(self) -> dict[str, int]:
        """Data frames received so far, by TR id."""
        return dict(self._router.frames_by_tr)

    def queue_depth(self) -> int:
        """Quotes and order books received but not yet taken by their consumers."""
        return self._registry.queue_depth()

    @property
    def status(self) -> StreamStatus:
        """A snapshot of the session's state and counters."""
        return self._counters.status(
            session=self._session,
            registrations=len(self._registry),
            router=self._router,
            feed=self.feed,
        )

    @property
    def executions_active(self) -> bool:
        """True when an execution-notice registration is acknowledged on an open socket."""
        session = self._session
        if session is None or not session.connected:
            return False
        return any(reg.established and reg.notices for reg in self._regs.values())

    def recent_executions(self) -> list[Execution]:
        """Execution events delivered recently (a bounded buffer), oldest first."""
        return self.feed.recent()

    def add_execution_listener(self, fn: Callable[[Execution], None]) -> Callable[[], None]:
        """Call ``fn`` synchronously for every execution event delivered; returns a remover.

        Listeners see events only while an execution registration exists.
        """
        return self.feed.add_listener(fn)

    def __repr__(self) -> str:
        return (
            f"StreamManager(registrations={len(self._regs)}, "
            f"session={self._session!r}, closed={self._closed})"
        )

    # -- the handles' side (package-internal) -----------------------------------------------

    async def attach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Route ``keys`` to ``sink`` at once, subscribe what is new, wait for the acks."""
        self._check_open()
        keys = tuple(dict.fromkeys(keys))
        if self._lag is not None and isinstance(sink, Buffer):
            sink.measure_lag(self._lag)
        regs = self._registry.join(sink, keys)
        consumer = sink if isinstance(sink, ExecutionConsumer) else None
        if consumer is not None:
            self.feed.join(consumer)
        try:
            session = await self._ensure_session()
            results = await asyncio.gather(
                *(self._activate(session, reg) for reg in regs), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        except BaseException:
            for reg in regs:
                reg.holders -= 1
            await self.detach(sink, keys)
            raise
        for reg in regs:
            reg.holders -= 1
        if consumer is not None and self._options.gap_fill:
            # Replay for a replaying consumer, the baseline for a replay=False one.
            self.spawn(self._gap_fill("execution stream start"), "kis_async-gap-fill")

    async def detach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Stop routing ``keys`` to ``sink``; unsubscribe the keys nobody holds any more."""
        if isinstance(sink, ExecutionConsumer):
            self.feed.leave(sink)
        removed = self._registry.prune(self._registry.leave(sink, keys))
        session = self._session
        try:
            for reg in removed if session is not None else ():
                await session.send(self._message(reg.key, subscribe=False))  # type: ignore[union-attr]
        except BrokerConnectionError:
            pass  # the next connection will not re-send them: they are gone from the registry

    # -- registrations ----------------------------------------------------------------------

    def _drops(self, name: DropCounter) -> Callable[[int], None]:
        return self._counters.adder(name)

    async def _activate(self, session: Session, reg: Registration) -> None:
        if not reg.ready.done() and reg.epoch != self._epoch and self._epoch >= 0:
            reg.epoch = self._epoch
            with contextlib.suppress(BrokerConnectionError):
                # If the socket just dropped, the next connection re-sends every registration.
                await session.send(self._message(reg.key, subscribe=True))
        try:
            async with asyncio.timeout(self._options.ack_timeout):
                await asyncio.shield(reg.ready)
        except TimeoutError:
            raise SubscriptionError(
                f"no ack for {reg.key[0]} within {self._options.ack_timeout} s",
                tr_id=reg.key[0],
                tr_key=safe_key(reg.key),
            ) from None

    def _message(self, key: RegKey, *, subscribe: bool) -> str:
        build = subscribe_message if subscribe else unsubscribe_message
        return build(
            self._approval_key or "", key[0], key[1], customer_type=self._config.customer_type
        )

    # -- session ----------------------------------------------------------------------------

    async def _ensure_session(self) -> Session:
        async with self._lock:
            self._check_open()
            if self._approval_key is None:
                key = await self._approval_fn()
                self._approval_key = key
                logger.debug("WebSocket approval key %s", key[:8] + "...")
            session = self._session
            if session is None or session.failed:
                if session is not None:
                    self._counters.absorb(session)
                session = Session(
                    self._config.ws_url,
                    self._options,
                    on_open=self._on_open,
                    on_text=self._on_text,
                    on_down=self._on_down,
                    on_give_up=self._on_give_up,
                    traffic_source=self._config,
                )
                self._session = session
                self._epoch = -1
        await session.start()
        return session

    async def _on_open(self, number: int) -> None:
        session = self._session
        if session is None:
            return
        loop = asyncio.get_running_loop()
        self._epoch = number
        self._crypto.clear()
        if number:
            self._counters.counts["reconnects"] += 1
            await self._refresh_approval_key()
        regs = list(self._regs.values())
        for reg in regs:
            if reg.ready.done():
                reg.ready = loop.create_future()
            reg.established = False
            reg.epoch = number
            await session.send(self._message(reg.key, subscribe=True))
        if number:
            logger.info("KIS WebSocket reconnected; %d registrations re-sent", len(regs))
            if self._options.gap_fill and any(reg.notices for reg in regs):
                self.spawn(self._gap_fill("reconnect"), "kis_async-gap-fill")

    async def _refresh_approval_key(self) -> None:
        """Ask the REST layer again before re-registering.

        It caches the key for its 24-hour lifetime, so this costs nothing until the key
        expires; KIS checks the key only when registering, so a long-lived session would
        otherwise restore with a stale key. A failure keeps the current key.
        """
        try:
            async with asyncio.timeout(self._options.connect_timeout):
                key = await self._approval_fn()
        except Exception as exc:
            logger.warning(
                "approval key refresh failed (%s); keeping the current key", type(exc).__name__
            )
            return
        if key != self._approval_key:
            logger.info("WebSocket approval key renewed: %s", key[:8] + "...")
            self._approval_key = key

    def _on_down(self) -> None:
        self._crypto.clear()
        for reg in self._regs.values():
            reg.established = False

    def _on_give_up(self, error: BrokerConnectionError) -> None:
        self.feed.flush()
        self._end_all(error)

    def _end_all(self, error: BrokerConnectionError | None) -> None:
        """Fail (or, with None, cleanly end) every stream and pending subscriber."""
        waiting = error or BrokerConnectionError("the WebSocket was disconnected")
        self._fail_sinks(self._registry.clear(waiting), error)

    def _fail_sinks(self, sinks: list[Sink], error: BaseException | None) -> None:
        for sink in sinks:
            if isinstance(sink, ExecutionConsumer):
                self.feed.leave(sink)
            if error is None:
                sink.close(drain=True)
            else:
                sink.fail(error)

    async def _gap_fill(self, reason: str) -> None:
        """Let the feed reconcile over REST once notices flow again (so later fills have
        notices)."""
        regs = [reg for reg in self._regs.values() if reg.notices]
        if not regs:
            return
        try:
            async with asyncio.timeout(self._options.ack_timeout):
                await asyncio.shield(regs[0].ready)
        except Exception:
            logger.warning("gap-fill after %s skipped: execution registration not ready", reason)
            return
        await self.feed.gap_fill(reason)

    # -- acks -------------------------------------------------------------------------------

    def _on_ack(self, ack: Ack) -> None:
        if ack.status is AckStatus.UNSUBSCRIBED or ack.status is AckStatus.NOT_SUBSCRIBED:
            logger.debug("unsubscribe ack %s for %s", ack.msg_cd, ack.tr_id)
            return
        outcome = self._registry.on_ack(ack)
        for error, sinks in outcome.failed:
            self._fail_sinks(sinks, error)
        session = self._session
        reg = outcome.resend
        if reg is not None:
            self._counters.counts["refusals"] += 1
            if session is not None:
                reg.epoch = self._epoch
                message = self._message(reg.key, subscribe=True)
                self.spawn(self._send_quietly(session, message), "kis_async-ws-resend")
            if reg.notices and self._options.gap_fill:
                # Notices may have been missed while the registration was refused.
                self.spawn(self._gap_fill("registration re-sent"), "kis_async-gap-fill")
        if outcome.reconnect and session is not None and not session.failed:
            # After our own reconnect, OPSP8996 is usually the server not having noticed the
            # old socket close yet: restore on a fresh connection instead of failing.
            logger.warning("OPSP8996 (app key in use) while restoring; reconnecting")
            self.spawn(session.reconnect(), "kis_async-ws-reconnect")

    async def _send_quietly(self, session: Session, text: str) -> None:
        with contextlib.suppress(BrokerConnectionError):
            await session.send(text)  # if the socket just dropped, the reconnect re-sends
