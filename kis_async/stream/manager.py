"""StreamManager: registrations, routing, gap-fill and lifecycle over one session.

* Lazy: nothing connects until the first subscription; then the approval key is fetched once
  (through the injected coroutine) and one :class:`~kis_async.stream.session.Session` opens.
  Concurrent first subscriptions share that key and that socket.
* Registrations are reference counted by ``(tr_id, tr_key)``: two consumers of a symbol share
  one KIS registration, which is removed when the last one leaves. The cap (41 by default)
  is checked before anything is sent. Each subscriber waits for its ack; OPSP0002 (already
  subscribed) counts as success, every other failure raises
  :class:`~kis_async.errors.SubscriptionError` in that subscriber.
* On every reconnect all registrations are re-sent and the new key/iv is used; then (and
  when an execution stream starts) today's orders are fetched and fills that no notice
  reported are emitted as ``Execution(source="reconcile")``, exactly once per filled
  quantity (:mod:`kis_async.stream.ledger`). For ``gap_fill_verify_window`` seconds after
  each snapshot, a fill notice of a partly filled order the snapshot reported is checked
  against a fresh REST fetch before it is delivered, so a notice that was still in flight
  when the snapshot was applied is not delivered twice. Notices wait in arrival order
  behind the one being checked; the socket reader never waits.
* When the session gives up, every open stream raises
  :class:`~kis_async.errors.BrokerConnectionError` on its next iteration and every callback
  subscription gets the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from kis_async.config import KISConfig
from kis_async.errors import BrokerConnectionError, SubscriptionError
from kis_async.models import KST, Execution, ExecutionKind, Order, OrderBook, Quote
from kis_async.port import Callback
from kis_async.stream.ledger import FillLedger
from kis_async.stream.protocol import (
    NOTICE_TR_IDS,
    TR_NOTICE_LIVE,
    TR_NOTICE_PAPER,
    TR_ORDERBOOK,
    TR_QUOTE,
    Ack,
    AckStatus,
    DataFrame,
    FrameError,
    decode_executions,
    decode_orderbooks,
    decode_quotes,
    parse_frame,
    subscribe_message,
    unsubscribe_message,
)
from kis_async.stream.session import Session
from kis_async.stream.streams import (
    CallbackSubscription,
    ConflatingBuffer,
    ExecutionStream,
    LosslessBuffer,
    OrderBookStream,
    QuoteStream,
    RegKey,
    Sink,
)
from kis_async.validation import check_number, check_symbols, normalize_order_id

__all__ = ["StreamManager", "StreamOptions", "StreamStatus"]

logger = logging.getLogger("kis_async.stream")

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class StreamOptions:
    """WebSocket session tuning. Durations are float seconds.

    Attributes:
        max_registrations: KIS allows 41 registrations per session (protocol doc §6.7).
        ack_timeout: how long a subscriber waits for its ack.
        liveness_timeout: reconnect when no frame at all (data, ack or PINGPONG) arrived
            for this long; KIS's PINGPONG interval is reported between ~10 s and ~110 s.
        connect_timeout: WebSocket opening handshake timeout.
        close_timeout: WebSocket closing handshake timeout.
        reconnect_base_delay: first backoff delay; doubles per consecutive reconnect.
        reconnect_max_delay: backoff ceiling.
        reconnect_jitter: fraction of the delay randomly taken off (0 = no jitter).
        healthy_after: a connection that stayed up this long resets the backoff.
        max_reconnect_attempts: consecutive failed connection attempts before giving up.
        quote_queue_size: per-stream queue length before quotes/books conflate.
        execution_high_water: per-stream backlog of notices that raises StreamOverflowError.
        callback_queue_size: per-callback queue length before quotes conflate.
        gap_fill: reconcile fills over REST after a reconnect and when executions start.
        gap_fill_verify_window: for this many seconds after a gap-fill snapshot, fill notices
            of partly filled orders it reported are verified over REST before delivery
            (0 disables verification).
        gap_fill_verify_timeout: time limit of one verification fetch; on timeout or any
            other failure the waiting notices are delivered unverified.
        recent_executions: how many delivered executions :meth:`recent_executions` keeps.
        malformed_log_interval: at most one malformed-frame log line per this many seconds.
    """

    max_registrations: int = 41
    ack_timeout: float = 10.0
    liveness_timeout: float = 150.0
    connect_timeout: float = 10.0
    close_timeout: float = 2.0
    reconnect_base_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    reconnect_jitter: float = 0.5
    healthy_after: float = 30.0
    max_reconnect_attempts: int = 10
    quote_queue_size: int = 1024
    execution_high_water: int = 10_000
    callback_queue_size: int = 1024
    gap_fill: bool = True
    gap_fill_verify_window: float = 5.0
    gap_fill_verify_timeout: float = 5.0
    recent_executions: int = 1000
    malformed_log_interval: float = 10.0

    def __post_init__(self) -> None:
        for name in (
            "ack_timeout",
            "liveness_timeout",
            "connect_timeout",
            "close_timeout",
            "reconnect_max_delay",
            "malformed_log_interval",
            "gap_fill_verify_timeout",
        ):
            check_number(f"StreamOptions.{name}", getattr(self, name))
        for name in ("reconnect_base_delay", "healthy_after", "gap_fill_verify_window"):
            check_number(f"StreamOptions.{name}", getattr(self, name), allow_minimum=True)
        if not 0.0 <= self.reconnect_jitter <= 1.0:
            raise ValueError("StreamOptions.reconnect_jitter must be between 0 and 1")
        for name in (
            "max_registrations",
            "max_reconnect_attempts",
            "quote_queue_size",
            "execution_high_water",
            "callback_queue_size",
            "recent_executions",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"StreamOptions.{name} must be an int >= 1")


@dataclass(frozen=True)
class StreamStatus:
    """A read-only snapshot of the WebSocket session.

    Attributes:
        connected: a connection is open.
        reconnects: reconnections since the manager was created.
        registrations: KIS registrations in use (of the cap).
        quotes_dropped: quotes dropped by conflation in lagging consumers.
        malformed_frames: frames that did not parse (counted, logged, skipped).
        orderbooks_dropped: order books dropped by conflation.
        frames_received: text frames received, PINGPONG excluded.
        pings_answered: PINGPONG frames echoed.
        liveness_timeouts: connections closed because nothing arrived in the window.
        executions_reconciled: execution events emitted by gap-fill.
        duplicate_fills_suppressed: fill notices withheld because verification showed the
            gap-fill snapshot had already delivered their quantity.
        fill_verifications: REST fetches made to verify fill notices after a gap-fill.
        failed: the session gave up after too many failed reconnect attempts.
    """

    connected: bool
    reconnects: int
    registrations: int
    quotes_dropped: int
    malformed_frames: int
    orderbooks_dropped: int = 0
    frames_received: int = 0
    pings_answered: int = 0
    liveness_timeouts: int = 0
    executions_reconciled: int = 0
    duplicate_fills_suppressed: int = 0
    fill_verifications: int = 0
    failed: bool = False


class _Registration:
    __slots__ = ("epoch", "established", "gap_filled", "holders", "key", "ready", "sinks")

    def __init__(self, key: RegKey, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.sinks: list[Sink] = []
        self.holders = 0  # subscribers still waiting for the ack
        self.ready: asyncio.Future[None] = loop.create_future()
        self.established = False
        self.epoch = -1  # the connection number the subscribe was last sent on
        self.gap_filled = False


class _PendingNotice:
    """A notice waiting in the manager's backlog (verification pending ahead of it)."""

    __slots__ = ("event", "filled_now", "unverified")

    def __init__(self, event: Execution) -> None:
        self.event = event
        self.filled_now: int | None = None  # the order's REST cumulative fill, once fetched
        self.unverified = False  # verification failed: account it as a plain notice


class _Snapshot:
    """A gap-fill REST answer waiting in the backlog behind earlier notices."""

    __slots__ = ("orders", "reason")

    def __init__(self, orders: list[Order], reason: str) -> None:
        self.orders = orders
        self.reason = reason


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()  # marked retrieved: waiters, if any, still get it


class StreamManager:
    """Owns the WebSocket session and every stream over it (see the module docstring).

    Args:
        config: the configuration (``ws_url``, ``hts_id``, ``mode``, ``customer_type``).
        approval_key: coroutine function returning the WebSocket approval key.
        fetch_orders: coroutine function returning today's orders (for gap-fill).
        options: tuning; defaults suit KIS.
    """

    def __init__(
        self,
        config: KISConfig,
        *,
        approval_key: Callable[[], Awaitable[str]],
        fetch_orders: Callable[[], Awaitable[list[Order]]],
        options: StreamOptions | None = None,
    ) -> None:
        self._config = config
        self._approval_fn = approval_key
        self._fetch_orders = fetch_orders
        self._options = options if options is not None else StreamOptions()
        self._approval_key: str | None = None
        self._session: Session | None = None
        self._lock = asyncio.Lock()
        self._gap_lock = asyncio.Lock()
        self._regs: dict[RegKey, _Registration] = {}
        self._routes: dict[str, dict[str, tuple[Sink, ...]]] = {}
        self._exec_sinks: tuple[Sink, ...] = ()
        self._crypto: dict[str, tuple[str, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Weak: a closed subscription the user dropped is forgotten; a running one is kept
        # alive by its own task.
        self._callbacks: weakref.WeakSet[CallbackSubscription[Any]] = weakref.WeakSet()
        self._listeners: list[Callable[[Execution], None]] = []
        self._recent: deque[Execution] = deque(maxlen=self._options.recent_executions)
        self._ledger = FillLedger()
        # Execution notices and gap-fill snapshots wait here, in arrival order, while a
        # notice ahead of them is being verified; empty (and bypassed) otherwise.
        self._backlog: deque[_PendingNotice | _Snapshot] = deque()
        self._drain_task: asyncio.Task[None] | None = None
        self._suppressed = 0
        self._verifications = 0
        self._recheck_pending = False
        self._closed = False
        self._epoch = -1
        self._reconnects = 0
        self._frames = 0
        self._malformed = 0
        self._malformed_logged_at = -1e18
        self._quotes_dropped = 0
        self._books_dropped = 0
        self._reconciled = 0
        self._pings_before = 0
        self._mutes_before = 0

    # -- public API ------------------------------------------------------------------------

    @property
    def options(self) -> StreamOptions:
        """The tuning in effect."""
        return self._options

    @property
    def notice_tr_id(self) -> str:
        """H0STCNI9 in paper mode, H0STCNI0 live."""
        return TR_NOTICE_PAPER if self._config.is_paper else TR_NOTICE_LIVE

    def quotes(self, symbols: Iterable[str]) -> QuoteStream:
        """A stream of real-time trades (H0STCNT0) of ``symbols``.

        Raises:
            ValueError: no symbols, or a malformed one.
            RuntimeError: the manager is closed.
        """
        self._check_open()
        keys = tuple((TR_QUOTE, s) for s in check_symbols(symbols))
        buffer: ConflatingBuffer[Quote] = ConflatingBuffer(
            self._options.quote_queue_size, _quote_symbol, self._count_quote_drops
        )
        return QuoteStream(self, keys, buffer)

    def orderbooks(self, symbols: Iterable[str]) -> OrderBookStream:
        """A stream of real-time order books (H0STASP0) of ``symbols``."""
        self._check_open()
        keys = tuple((TR_ORDERBOOK, s) for s in check_symbols(symbols))
        buffer: ConflatingBuffer[OrderBook] = ConflatingBuffer(
            self._options.quote_queue_size, _book_symbol, self._count_book_drops
        )
        return OrderBookStream(self, keys, buffer)

    def executions(self) -> ExecutionStream:
        """A lossless stream of this account's execution notices.

        Raises:
            ValueError: the configuration has no ``hts_id``.
        """
        self._check_open()
        buffer: LosslessBuffer[Execution] = LosslessBuffer(self._options.execution_high_water)
        return ExecutionStream(self, self._execution_keys(), buffer)

    async def subscribe_quotes(
        self,
        symbols: Iterable[str],
        callback: Callback[Quote],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> CallbackSubscription[Quote]:
        """Call ``callback`` (sync or async) for each quote of ``symbols``, from its own task.

        Args:
            symbols: KRX codes.
            callback: called with each :class:`Quote`; a raising callback is logged.
            on_error: called with the error if the session is given up.
        """
        self._check_open()
        keys = tuple((TR_QUOTE, s) for s in check_symbols(symbols))
        buffer: ConflatingBuffer[Quote] = ConflatingBuffer(
            self._options.callback_queue_size, _quote_symbol, self._count_quote_drops
        )
        sub = CallbackSubscription(self, keys, buffer, callback, on_error)
        return await self._start_callback(sub)

    async def subscribe_executions(
        self,
        callback: Callback[Execution],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> CallbackSubscription[Execution]:
        """Call ``callback`` (sync or async) for each execution event, from its own task."""
        self._check_open()
        buffer: LosslessBuffer[Execution] = LosslessBuffer(
            self._options.execution_high_water, raise_on_overflow=False
        )
        sub = CallbackSubscription(self, self._execution_keys(), buffer, callback, on_error)
        return await self._start_callback(sub)

    async def connect(self) -> None:
        """Open the session now (normally it opens on the first subscription)."""
        self._check_open()
        await self._ensure_session()

    async def disconnect(self) -> None:
        """Close the session; open streams end (after what they already queued)."""
        async with self._lock:
            session = self._session
            self._session = None
            self._flush_backlog()
            self._end_all(None)
        if session is not None:
            self._absorb_counters(session)
            await session.aclose()

    async def aclose(self) -> None:
        """Close every stream, subscription, task and the session. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for sub in list(self._callbacks):
            await sub.aclose()
        await self.disconnect()
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def status(self) -> StreamStatus:
        """A snapshot of the session's state and counters."""
        session = self._session
        pings = self._pings_before + (session.pings if session else 0)
        mutes = self._mutes_before + (session.mute_detections if session else 0)
        return StreamStatus(
            connected=session is not None and session.connected,
            reconnects=self._reconnects,
            registrations=len(self._regs),
            quotes_dropped=self._quotes_dropped,
            malformed_frames=self._malformed,
            orderbooks_dropped=self._books_dropped,
            frames_received=self._frames,
            pings_answered=pings,
            liveness_timeouts=mutes,
            executions_reconciled=self._reconciled,
            duplicate_fills_suppressed=self._suppressed,
            fill_verifications=self._verifications,
            failed=session is not None and session.error is not None,
        )

    @property
    def executions_active(self) -> bool:
        """True when an execution-notice registration is acknowledged on an open socket."""
        session = self._session
        if session is None or not session.connected:
            return False
        return any(reg.established for key, reg in self._regs.items() if key[0] in NOTICE_TR_IDS)

    def recent_executions(self) -> list[Execution]:
        """Execution events delivered recently (a bounded buffer), oldest first."""
        return list(self._recent)

    def add_execution_listener(self, fn: Callable[[Execution], None]) -> Callable[[], None]:
        """Call ``fn`` synchronously for every execution event delivered; returns a remover.

        Listeners see events only while an execution registration exists.
        """
        self._listeners.append(fn)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(fn)

        return remove

    def __repr__(self) -> str:
        return (
            f"StreamManager(registrations={len(self._regs)}, "
            f"session={self._session!r}, closed={self._closed})"
        )

    # -- internals used by the handles ------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the stream manager is closed")

    def _execution_keys(self) -> tuple[RegKey, ...]:
        hts_id = self._config.hts_id
        if not hts_id:
            raise ValueError("execution notices need KISConfig.hts_id (the HTS login id)")
        return ((self.notice_tr_id, hts_id),)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("stream task %s failed", task.get_name(), exc_info=task.exception())

    async def _start_callback(self, sub: CallbackSubscription[T]) -> CallbackSubscription[T]:
        await sub._start()
        self._callbacks.add(sub)
        return sub

    def _safe_key(self, key: RegKey) -> str:
        return "<hts id>" if key[0] in NOTICE_TR_IDS else key[1]

    async def _attach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        self._check_open()
        keys = tuple(dict.fromkeys(keys))
        new = sum(1 for key in keys if key not in self._regs)
        cap = self._options.max_registrations
        if new and len(self._regs) + new > cap:
            raise SubscriptionError(
                f"{len(self._regs)} registrations in use; {new} more would pass the cap of "
                f"{cap} per session",
                tr_id=keys[0][0],
                tr_key=self._safe_key(keys[0]),
                msg_cd=None,
            )
        loop = asyncio.get_running_loop()
        regs: list[_Registration] = []
        for key in keys:
            reg = self._regs.get(key)
            if reg is None:
                reg = _Registration(key, loop)
                self._regs[key] = reg
            reg.holders += 1
            regs.append(reg)
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
            await self._prune(regs)
            raise
        for reg in regs:
            reg.holders -= 1
            if reg.key in self._regs:
                reg.sinks.append(sink)
        self._rebuild_routes()
        for reg in regs:
            if reg.key[0] in NOTICE_TR_IDS and not reg.gap_filled:
                reg.gap_filled = True
                if self._options.gap_fill:
                    self._spawn(self._gap_fill("execution stream start"), "kis_async-gap-fill")

    async def _activate(self, session: Session, reg: _Registration) -> None:
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
                tr_key=self._safe_key(reg.key),
            ) from None

    async def _detach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        for key in keys:
            reg = self._regs.get(key)
            if reg is not None:
                with contextlib.suppress(ValueError):
                    reg.sinks.remove(sink)
        await self._prune([reg for key in keys if (reg := self._regs.get(key)) is not None])

    async def _prune(self, regs: list[_Registration]) -> None:
        removed = []
        for reg in regs:
            if reg.sinks or reg.holders > 0 or self._regs.get(reg.key) is not reg:
                continue
            del self._regs[reg.key]
            # Sent and not refused: KIS holds it, so take it back.
            if reg.established or (reg.epoch >= 0 and not reg.ready.done()):
                removed.append(reg)
        self._rebuild_routes()
        session = self._session
        if session is None or not removed:
            return
        for reg in removed:
            try:
                await session.send(self._message(reg.key, subscribe=False))
            except BrokerConnectionError:
                return  # the next connection will not re-send it: it is gone from _regs

    def _rebuild_routes(self) -> None:
        routes: dict[str, dict[str, tuple[Sink, ...]]] = {}
        for (tr_id, tr_key), reg in self._regs.items():
            if reg.sinks:
                routes.setdefault(tr_id, {})[tr_key] = tuple(reg.sinks)
        self._routes = routes
        self._exec_sinks = tuple(
            sink for tr in NOTICE_TR_IDS for sinks in routes.get(tr, {}).values() for sink in sinks
        )

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
                    self._absorb_counters(session)
                session = Session(
                    self._config.ws_url,
                    self._options,
                    on_open=self._on_open,
                    on_text=self._on_text,
                    on_down=self._on_down,
                    on_give_up=self._on_give_up,
                )
                self._session = session
                self._epoch = -1
        await session.start()
        return session

    def _absorb_counters(self, session: Session) -> None:
        self._pings_before += session.pings
        self._mutes_before += session.mute_detections
        session.pings = 0
        session.mute_detections = 0

    async def _on_open(self, number: int) -> None:
        session = self._session
        if session is None:
            return
        loop = asyncio.get_running_loop()
        self._epoch = number
        self._crypto.clear()
        if number:
            self._reconnects += 1
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
            if self._options.gap_fill and any(reg.key[0] in NOTICE_TR_IDS for reg in regs):
                self._spawn(self._gap_fill("reconnect"), "kis_async-gap-fill")

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
        self._flush_backlog()
        self._end_all(error)

    def _end_all(self, error: BrokerConnectionError | None) -> None:
        """Fail (or, with None, cleanly end) every stream and pending subscriber."""
        sinks: dict[int, Sink] = {}
        for reg in self._regs.values():
            _fail(reg.ready, error or BrokerConnectionError("the WebSocket was disconnected"))
            for sink in reg.sinks:
                sinks[id(sink)] = sink
        self._regs.clear()
        self._rebuild_routes()
        for sink in sinks.values():
            if error is None:
                sink.close(drain=True)
            else:
                sink.fail(error)

    # -- frames -------------------------------------------------------------------------------

    def _on_text(self, text: str) -> None:
        self._frames += 1
        try:
            frame = parse_frame(text)
            if type(frame) is DataFrame:
                self._on_data(frame)
            elif type(frame) is Ack:
                self._on_ack(frame)
        except FrameError as exc:
            self._count_malformed(str(exc))
        except Exception as exc:
            self._count_malformed(f"{type(exc).__name__} while handling a frame")

    def _on_data(self, frame: DataFrame) -> None:
        tr_id = frame.tr_id
        routes = self._routes.get(tr_id)
        if tr_id == TR_QUOTE:
            if routes:
                for quote in decode_quotes(frame):
                    sinks = routes.get(quote.symbol)
                    if sinks:
                        for sink in sinks:
                            sink.put(quote)
        elif tr_id == TR_ORDERBOOK:
            if routes:
                for book in decode_orderbooks(frame):
                    sinks = routes.get(book.symbol)
                    if sinks:
                        for sink in sinks:
                            sink.put(book)
        elif tr_id in NOTICE_TR_IDS:
            key, iv = self._crypto.get(tr_id, (None, None))
            for event in decode_executions(frame, key, iv):
                self._on_notice(event)

    def _on_ack(self, ack: Ack) -> None:
        if ack.key and ack.iv:
            self._crypto[ack.tr_id] = (ack.key, ack.iv)
        status = ack.status
        if status is AckStatus.UNSUBSCRIBED or status is AckStatus.NOT_SUBSCRIBED:
            logger.debug("unsubscribe ack %s for %s", ack.msg_cd, ack.tr_id)
            return
        reg = self._regs.get((ack.tr_id, ack.tr_key or ""))
        if reg is None:
            waiting = [
                r for r in self._regs.values() if r.key[0] == ack.tr_id and not r.ready.done()
            ]
            reg = waiting[0] if waiting else None
        if status is AckStatus.FAILED:
            if ack.msg_cd == "OPSP8996":
                self._app_key_in_use(ack)
                return
            if reg is not None:
                targets = [reg]
            elif not any(key[0] == ack.tr_id for key in self._regs):
                # An ack we cannot match to a registration concerns every pending one.
                targets = [r for r in self._regs.values() if not r.ready.done()]
            else:
                targets = []
            self._refuse(targets, ack)
            return
        if reg is not None:
            reg.established = True
            if not reg.ready.done():
                reg.ready.set_result(None)

    def _app_key_in_use(self, ack: Ack) -> None:
        """OPSP8996 (tr_id "(null)"): another session holds the app key.

        After our own reconnect this is usually the server not having noticed the old socket
        close yet, so registrations that already have consumers are restored on a fresh
        connection instead of failing; new subscribers get the error.
        """
        fresh = [r for r in self._regs.values() if not r.sinks and not r.ready.done()]
        self._refuse(fresh, ack)
        if any(reg.sinks for reg in self._regs.values()):
            session = self._session
            if session is not None and not session.failed:
                logger.warning("OPSP8996 (app key in use) while restoring; reconnecting")
                self._spawn(session.reconnect(), "kis_async-ws-reconnect")

    def _refuse(self, regs: list[_Registration], ack: Ack) -> None:
        for reg in regs:
            error = SubscriptionError(
                f"KIS refused the {reg.key[0]} registration: [{ack.msg_cd}] {ack.description}",
                tr_id=reg.key[0],
                tr_key=self._safe_key(reg.key),
                msg_cd=ack.msg_cd,
            )
            logger.warning("%s", error)
            _fail(reg.ready, error)
            if reg.sinks:
                # A restore refused: its consumers get the error; the registration is gone.
                for sink in reg.sinks:
                    sink.fail(error)
                reg.sinks.clear()
                if reg.holders == 0 and self._regs.get(reg.key) is reg:
                    del self._regs[reg.key]
        self._rebuild_routes()

    def _count_malformed(self, reason: str) -> None:
        self._malformed += 1
        now = asyncio.get_running_loop().time()
        if now - self._malformed_logged_at >= self._options.malformed_log_interval:
            self._malformed_logged_at = now
            # The frame itself is not logged: notices carry account numbers.
            logger.warning(
                "skipped a malformed WebSocket frame (%s); %d so far", reason, self._malformed
            )

    def _count_quote_drops(self, n: int) -> None:
        self._quotes_dropped += n

    def _count_book_drops(self, n: int) -> None:
        self._books_dropped += n

    # -- executions ---------------------------------------------------------------------------

    def _on_notice(self, event: Execution) -> None:
        """Account and deliver a decoded notice, or queue it behind a pending verification.

        Called from the socket reader: never waits.
        """
        if self._backlog or self._must_verify(event):
            self._enqueue(_PendingNotice(event))
        else:
            self._account_notice(event, None)

    def _must_verify(self, event: Execution) -> bool:
        """A fill notice of an order inside a post-snapshot verification window."""
        return (
            event.kind is ExecutionKind.FILLED
            and event.qty > 0
            and self._options.gap_fill_verify_window > 0
            and self._ledger.needs_verification(
                event.broker_order_id, asyncio.get_running_loop().time()
            )
        )

    def _account_notice(self, event: Execution, filled_now: int | None) -> None:
        """Run a notice through the ledger (verified when ``filled_now`` is known) and deliver."""
        if event.kind is ExecutionKind.FILLED:
            oid = event.broker_order_id
            if filled_now is None:
                qty = self._ledger.notice(oid, event.qty, event.order_qty)
            else:
                qty = self._ledger.verified_notice(oid, event.qty, filled_now, event.order_qty)
                if qty < event.qty:
                    self._schedule_recheck()
                if qty > 0 and self._ledger.delivered(oid) < filled_now:
                    # REST knows fills whose notices are still on the way: verify those too.
                    self._ledger.watch(
                        oid,
                        asyncio.get_running_loop().time() + self._options.gap_fill_verify_window,
                    )
            if qty <= 0:
                if filled_now is None:
                    logger.debug("fill notice already delivered by gap-fill; skipped")
                else:
                    self._suppressed += 1
                    logger.debug(
                        "fill notice of %d share(s) already covered by the gap-fill snapshot "
                        "(verified over REST); suppressed",
                        event.qty,
                    )
                return
            if qty != event.qty:
                event = event.replace(qty=qty)
        self._deliver_execution(event)

    def _deliver_execution(self, event: Execution) -> None:
        self._recent.append(event)
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("an execution listener raised")
        for sink in self._exec_sinks:
            sink.put(event)

    # -- the ordered backlog: verification without reordering -------------------------------

    def _enqueue(self, item: _PendingNotice | _Snapshot) -> None:
        self._backlog.append(item)
        task = self._drain_task
        if task is None or task.done():
            self._drain_task = self._spawn(self._drain_backlog(), "kis_async-notice-verify")

    async def _drain_backlog(self) -> None:
        """Deliver the backlog in order, fetching once per batch of notices to verify."""
        while True:
            self._deliver_ready()
            if not self._backlog:
                return
            await self._verify_pending()

    def _deliver_ready(self) -> None:
        """Deliver from the head of the backlog until a notice still needs verification."""
        backlog = self._backlog
        while backlog:
            item = backlog[0]
            if isinstance(item, _Snapshot):
                backlog.popleft()
                self._apply_snapshot(item.orders, item.reason)
                continue
            if item.filled_now is None and not item.unverified and self._must_verify(item.event):
                return
            backlog.popleft()
            self._account_notice(item.event, item.filled_now)

    async def _verify_pending(self) -> None:
        """One bounded REST fetch for every queued notice that needs verification now.

        Every notice in the batch arrived before the fetch started, so each row already
        includes that notice's fill. Notices arriving during the fetch wait for the next one.
        """
        batch = [
            item
            for item in self._backlog
            if isinstance(item, _PendingNotice)
            and item.filled_now is None
            and not item.unverified
            and self._must_verify(item.event)
        ]
        if not batch:
            return  # the window closed meanwhile: the head is delivered unverified
        self._verifications += 1
        try:
            async with asyncio.timeout(self._options.gap_fill_verify_timeout):
                orders = await self._fetch_orders()
        except Exception as exc:
            logger.warning(
                "could not verify %d fill notice(s) after gap-fill (%s); delivering them "
                "unverified",
                len(batch),
                type(exc).__name__,
            )
            for item in batch:
                item.unverified = True
            return
        filled: dict[str, int] = {}
        for order in orders:
            oid = normalize_order_id(order.broker_order_id)
            filled[oid] = max(filled.get(oid, 0), order.filled_qty)
        missing = 0
        for item in batch:
            now = filled.get(normalize_order_id(item.event.broker_order_id))
            if now is None:
                missing += 1
                item.unverified = True
            else:
                item.filled_now = now
        if missing:
            logger.warning(
                "%d fill notice(s) name an order missing from today's orders; delivered unverified",
                missing,
            )

    def _flush_backlog(self) -> None:
        """Deliver everything queued now (unverified where no answer came yet): on close."""
        backlog = self._backlog
        while backlog:
            item = backlog.popleft()
            if isinstance(item, _Snapshot):
                self._apply_snapshot(item.orders, item.reason)
            else:
                self._account_notice(item.event, item.filled_now)

    # -- gap-fill ---------------------------------------------------------------------------

    async def _gap_fill(self, reason: str) -> None:
        async with self._gap_lock:
            regs = [reg for key, reg in self._regs.items() if key[0] in NOTICE_TR_IDS]
            if not regs:
                return
            try:
                # Fetch only once notices flow again, so every later fill has a notice.
                async with asyncio.timeout(self._options.ack_timeout):
                    await asyncio.shield(regs[0].ready)
            except Exception:
                logger.warning(
                    "gap-fill after %s skipped: execution registration not ready", reason
                )
                return
            try:
                orders = await self._fetch_orders()
            except Exception as exc:
                logger.warning("gap-fill after %s failed: %s", reason, type(exc).__name__)
                return
            self._submit_snapshot(orders, reason)

    def _submit_snapshot(self, orders: list[Order], reason: str) -> None:
        if self._backlog:
            # Notices that arrived before this answer are accounted before it.
            self._enqueue(_Snapshot(orders, reason))
        else:
            self._apply_snapshot(orders, reason)

    def _schedule_recheck(self) -> None:
        """Re-read today's orders once, shortly after a verification withheld quantity.

        A withheld notice is normally a duplicate. But if KIS's order inquiry lagged behind
        the notice, it was a real fill: this re-check delivers any such quantity as a
        ``reconcile`` event (its own snapshot re-opens the windows, so notices in flight
        meanwhile are verified as after any gap-fill). Several suppressions share one re-check.
        """
        if self._recheck_pending:
            return
        self._recheck_pending = True
        self._spawn(self._recheck(), "kis_async-fill-recheck")

    async def _recheck(self) -> None:
        try:
            await asyncio.sleep(self._options.gap_fill_verify_window / 2)
        finally:
            self._recheck_pending = False
        self._verifications += 1
        try:
            async with asyncio.timeout(self._options.gap_fill_verify_timeout):
                orders = await self._fetch_orders()
        except Exception as exc:
            logger.warning(
                "fill verification re-check failed (%s); the next gap-fill covers it",
                type(exc).__name__,
            )
            return
        self._submit_snapshot(orders, "fill verification re-check")

    def _apply_snapshot(self, orders: list[Order], reason: str) -> None:
        """Emit what the snapshot reports beyond the delivered fills; open verify windows."""
        if not self._exec_sinks and not self._listeners:
            return
        window = self._options.gap_fill_verify_window
        now = asyncio.get_running_loop().time()
        self._ledger.watching(now)  # forget expired windows
        until = now + window
        emitted = 0
        for order in orders:
            if order.filled_qty <= 0:
                continue
            if window > 0 and order.filled_qty < order.qty:
                # Partly filled: a notice still in flight cannot be told from a new fill.
                self._ledger.watch(order.broker_order_id, until)
            qty = self._ledger.reconcile(order.broker_order_id, order.filled_qty, order.qty)
            if qty <= 0:
                continue
            emitted += 1
            self._reconciled += 1
            self._deliver_execution(
                Execution(
                    kind=ExecutionKind.FILLED,
                    broker_order_id=order.broker_order_id,
                    original_order_id=order.original_order_id,
                    branch_no=order.branch_no,
                    symbol=order.symbol,
                    side=order.side,
                    order_type=order.order_type,
                    qty=qty,
                    price=order.avg_fill_price,
                    order_qty=order.qty,
                    time=datetime.now(KST),
                    source="reconcile",
                    name=order.name,
                )
            )
        logger.info("gap-fill after %s: %d fill event(s) emitted", reason, emitted)


def _quote_symbol(quote: Quote) -> str:
    return quote.symbol


def _book_symbol(book: OrderBook) -> str:
    return book.symbol
