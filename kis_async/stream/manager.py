"""StreamManager: registrations, session ownership and frame routing over one session.

* Lazy: nothing connects until the first subscription; then the approval key is fetched once
  (through the injected coroutine) and one :class:`~kis_async.stream.session.Session` opens.
  Concurrent first subscriptions share that key and that socket.
* Registrations are reference counted by ``(tr_id, tr_key)``: two consumers of a symbol share
  one KIS registration, which is removed when the last one leaves. The cap (41 by default)
  is checked before anything is sent. OPSP0002 (already subscribed) counts as success, every
  other refusal raises :class:`~kis_async.errors.SubscriptionError` in that subscriber.
* A subscriber joins the routing table *before* its subscribe message is sent, so data
  frames that arrive with the ack, or even before it, are delivered to it. A decoded record
  no subscriber holds is counted (``StreamStatus.records_unrouted``) and logged at a
  limited rate; nothing is dropped silently.
* A refusal for a registration that is already established (unsolicited) is logged, counted
  and answered by re-sending the registration once; its subscribers get the error only if
  KIS refuses again.
* Data frames are decoded through :data:`~kis_async.stream.protocol.DECODERS`; execution
  notices go to the :class:`~kis_async.stream.executions.ExecutionFeed`, which owns fills,
  per-consumer cursors and gap-fill. On every reconnect all registrations are re-sent with
  the new key/iv, then the feed reconciles today's orders over REST.
* When the session gives up, every open stream raises
  :class:`~kis_async.errors.BrokerConnectionError` on its next iteration and every callback
  subscription gets the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from kis_async.config import KISConfig
from kis_async.errors import BrokerConnectionError, SubscriptionError
from kis_async.models import Execution, ExecutionCursor, Order, OrderBook, Quote
from kis_async.models.common import is_valid_symbol
from kis_async.port import Callback
from kis_async.stream.executions import ExecutionConsumer, ExecutionFeed
from kis_async.stream.options import StreamOptions, StreamStatus
from kis_async.stream.protocol import (
    DECODERS,
    NOTICE_TR_IDS,
    TR_NOTICE_LIVE,
    TR_NOTICE_PAPER,
    TR_ORDERBOOK,
    TR_QUOTE,
    Ack,
    AckStatus,
    DataFrame,
    FrameError,
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

__all__ = ["StreamManager", "StreamOptions", "StreamStatus"]

logger = logging.getLogger("kis_async.stream")

T = TypeVar("T")


class _Registration:
    __slots__ = ("acked", "epoch", "established", "holders", "key", "ready", "resent", "sinks")

    def __init__(self, key: RegKey, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.sinks: list[Sink] = []  # joined before the subscribe is sent (see module doc)
        self.holders = 0  # subscribers still waiting for the ack
        self.ready: asyncio.Future[None] = loop.create_future()
        self.established = False  # acknowledged on the current connection
        self.acked = False  # acknowledged at least once: it has running consumers
        self.resent = False  # re-sent after an unsolicited refusal, not acknowledged since
        self.epoch = -1  # the connection number the subscribe was last sent on


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()  # marked retrieved: waiters, if any, still get it


def _symbols(symbols: Iterable[str] | str) -> tuple[str, ...]:
    items = (symbols,) if isinstance(symbols, str) else tuple(symbols)
    out = tuple(dict.fromkeys(items))
    if not out:
        raise ValueError("at least one symbol is needed")
    for symbol in out:
        if not is_valid_symbol(symbol):
            raise ValueError(
                "symbols must be 6-character KRX codes such as '005930' "
                "(ETN: 7 characters starting with 'Q')"
            )
    return out


def _cursor_arg(since: ExecutionCursor | str | None) -> ExecutionCursor | None:
    if since is None or isinstance(since, ExecutionCursor):
        return since
    if isinstance(since, str):
        return ExecutionCursor.parse(since)
    raise TypeError("since must be an ExecutionCursor, its str() form, or None")


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
        self._options = options if options is not None else StreamOptions()
        self._approval_key: str | None = None
        self._session: Session | None = None
        self._lock = asyncio.Lock()
        self._regs: dict[RegKey, _Registration] = {}
        self._routes: dict[str, dict[str, tuple[Sink, ...]]] = {}
        self._crypto: dict[str, tuple[str, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Weak: a closed subscription the user dropped is forgotten; a running one is kept
        # alive by its own task.
        self._callbacks: weakref.WeakSet[CallbackSubscription[Any]] = weakref.WeakSet()
        self.feed = ExecutionFeed(
            fetch_orders=fetch_orders, spawn=self.spawn, options=self._options
        )
        self._closed = False
        self._epoch = -1
        self._reconnects = 0
        self._frames = 0
        self._malformed = 0
        self._unrouted = 0
        self._refusals = 0
        self._logged_at: dict[str, float] = {}
        self._quotes_dropped = 0
        self._books_dropped = 0
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
        keys = tuple((TR_QUOTE, s) for s in _symbols(symbols))
        buffer: ConflatingBuffer[Quote] = ConflatingBuffer(
            self._options.quote_queue_size, _symbol_of, self._count_quote_drops
        )
        return QuoteStream(self, keys, buffer)

    def orderbooks(self, symbols: Iterable[str]) -> OrderBookStream:
        """A stream of real-time order books (H0STASP0) of ``symbols``."""
        self._check_open()
        keys = tuple((TR_ORDERBOOK, s) for s in _symbols(symbols))
        buffer: ConflatingBuffer[OrderBook] = ConflatingBuffer(
            self._options.quote_queue_size, _symbol_of, self._count_book_drops
        )
        return OrderBookStream(self, keys, buffer)

    def executions(
        self, *, replay: bool = True, since: ExecutionCursor | str | None = None
    ) -> ExecutionStream:
        """A lossless stream of this account's execution events, exactly once per fill.

        Args:
            replay: start with today's fills so far (True) or only what comes after the
                stream opened (False).
            since: start after this cursor (an :class:`ExecutionCursor` or its ``str``).

        Raises:
            ValueError: the configuration has no ``hts_id``, or ``since`` does not parse.
        """
        self._check_open()
        keys = self._execution_keys()
        buffer: LosslessBuffer[Execution] = LosslessBuffer(self._options.execution_high_water)
        consumer = ExecutionConsumer(buffer, replay=replay, since=_cursor_arg(since))
        return ExecutionStream(self, keys, buffer, sink=consumer)

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
        keys = tuple((TR_QUOTE, s) for s in _symbols(symbols))
        buffer: ConflatingBuffer[Quote] = ConflatingBuffer(
            self._options.callback_queue_size, _symbol_of, self._count_quote_drops
        )
        return await self._start_callback(
            CallbackSubscription(self, keys, buffer, callback, on_error)
        )

    async def subscribe_executions(
        self,
        callback: Callback[Execution],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
        replay: bool = True,
        since: ExecutionCursor | str | None = None,
    ) -> CallbackSubscription[Execution]:
        """Call ``callback`` (sync or async) for each execution event, from its own task.

        ``replay`` and ``since`` as in :meth:`executions`: the subscription is its own
        consumer with its own exactly-once cursor.
        """
        self._check_open()
        keys = self._execution_keys()
        buffer: LosslessBuffer[Execution] = LosslessBuffer(
            self._options.execution_high_water, raise_on_overflow=False
        )
        consumer = ExecutionConsumer(buffer, replay=replay, since=_cursor_arg(since))
        sub = CallbackSubscription(self, keys, buffer, callback, on_error, sink=consumer)
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
            self.feed.flush()
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
        feed = self.feed
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
            executions_reconciled=feed.reconciled,
            duplicate_fills_suppressed=feed.suppressed,
            fill_verifications=feed.verifications,
            failed=session is not None and session.error is not None,
            records_unrouted=self._unrouted,
            refusals_unsolicited=self._refusals,
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

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Start a tracked background task; it is cancelled on :meth:`aclose`."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    async def attach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Route ``keys`` to ``sink`` at once, subscribe what is new, wait for the acks."""
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
            reg.sinks.append(sink)
            regs.append(reg)
        consumer = sink if isinstance(sink, ExecutionConsumer) else None
        if consumer is not None:
            self.feed.join(consumer)
        self._rebuild_routes()
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
        for key in keys:
            reg = self._regs.get(key)
            if reg is not None:
                with contextlib.suppress(ValueError):
                    reg.sinks.remove(sink)
        await self._prune([reg for key in keys if (reg := self._regs.get(key)) is not None])

    # -- registrations ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the stream manager is closed")

    def _execution_keys(self) -> tuple[RegKey, ...]:
        hts_id = self._config.hts_id
        if not hts_id:
            raise ValueError("execution notices need KISConfig.hts_id (the HTS login id)")
        return ((self.notice_tr_id, hts_id),)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("stream task %s failed", task.get_name(), exc_info=task.exception())

    async def _start_callback(self, sub: CallbackSubscription[T]) -> CallbackSubscription[T]:
        await sub.start()
        self._callbacks.add(sub)
        return sub

    def _safe_key(self, key: RegKey) -> str:
        return "<hts id>" if key[0] in NOTICE_TR_IDS else key[1]

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
            if reg.sinks and tr_id not in NOTICE_TR_IDS:  # notices go through the feed
                routes.setdefault(tr_id, {})[tr_key] = tuple(reg.sinks)
        self._routes = routes

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
        sinks: dict[int, Sink] = {}
        for reg in self._regs.values():
            _fail(reg.ready, error or BrokerConnectionError("the WebSocket was disconnected"))
            for sink in reg.sinks:
                sinks[id(sink)] = sink
        self._regs.clear()
        self._rebuild_routes()
        for sink in sinks.values():
            if isinstance(sink, ExecutionConsumer):
                self.feed.leave(sink)
            if error is None:
                sink.close(drain=True)
            else:
                sink.fail(error)

    async def _gap_fill(self, reason: str) -> None:
        """Let the feed reconcile over REST once notices flow again (so later fills have
        notices)."""
        regs = [reg for key, reg in self._regs.items() if key[0] in NOTICE_TR_IDS]
        if not regs:
            return
        try:
            async with asyncio.timeout(self._options.ack_timeout):
                await asyncio.shield(regs[0].ready)
        except Exception:
            logger.warning("gap-fill after %s skipped: execution registration not ready", reason)
            return
        await self.feed.gap_fill(reason)

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
        decoder = DECODERS.get(tr_id)
        if decoder is None:
            self._count_unrouted(max(1, frame.record_count), f"{tr_id} has no decoder")
            return
        if not decoder.keyed:
            on_notice = self.feed.on_notice
            for event in decoder.decode(frame, self._crypto.get(tr_id)):
                on_notice(event)
            return
        routes = self._routes.get(tr_id)
        if not routes:
            self._count_unrouted(max(1, frame.record_count), f"{tr_id} has no subscriber")
            return
        unrouted = 0
        for value in decoder.decode(frame, None):
            sinks = routes.get(value.symbol)
            if sinks:
                for sink in sinks:
                    sink.put(value)
            else:
                unrouted += 1
        if unrouted:
            self._count_unrouted(unrouted, f"{tr_id} record for a symbol with no subscriber")

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
            elif reg is not None and reg.established:
                self._unsolicited_refusal(reg, ack)
            elif reg is not None:
                self._refuse([reg], ack)
            elif not any(key[0] == ack.tr_id for key in self._regs):
                # An ack we cannot match to a registration concerns every pending one.
                self._refuse([r for r in self._regs.values() if not r.ready.done()], ack)
            return
        if reg is not None:
            reg.established = True
            reg.acked = True
            reg.resent = False
            if not reg.ready.done():
                reg.ready.set_result(None)

    def _unsolicited_refusal(self, reg: _Registration, ack: Ack) -> None:
        """A refusal for an established registration: re-send once before failing anyone.

        The answer to the re-send is an ordinary ack: a success restores the registration,
        a refusal fails its consumers (:meth:`_refuse`).
        """
        self._refusals += 1
        logger.warning(
            "KIS refused the established %s registration ([%s] %s); re-sending it once",
            reg.key[0],
            ack.msg_cd,
            ack.description,
        )
        reg.resent = True
        reg.established = False
        reg.ready = asyncio.get_running_loop().create_future()
        session = self._session
        if session is not None:
            reg.epoch = self._epoch
            self.spawn(
                self._send_quietly(session, self._message(reg.key, subscribe=True)),
                "kis_async-ws-resend",
            )
        if reg.key[0] in NOTICE_TR_IDS and self._options.gap_fill:
            # Notices may have been missed while the registration was refused.
            self.spawn(self._gap_fill("registration re-sent"), "kis_async-gap-fill")

    async def _send_quietly(self, session: Session, text: str) -> None:
        with contextlib.suppress(BrokerConnectionError):
            await session.send(text)  # if the socket just dropped, the reconnect re-sends

    def _app_key_in_use(self, ack: Ack) -> None:
        """OPSP8996 (tr_id "(null)"): another session holds the app key.

        After our own reconnect this is usually the server not having noticed the old socket
        close yet, so registrations that already have consumers are restored on a fresh
        connection instead of failing; new subscribers get the error.
        """
        fresh = [r for r in self._regs.values() if not r.acked and not r.ready.done()]
        self._refuse(fresh, ack)
        if any(reg.acked for reg in self._regs.values()):
            session = self._session
            if session is not None and not session.failed:
                logger.warning("OPSP8996 (app key in use) while restoring; reconnecting")
                self.spawn(session.reconnect(), "kis_async-ws-reconnect")

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
            if reg.acked:
                # Running consumers get the error and the registration is gone; subscribers
                # still waiting get it from ``ready`` and leave on their own.
                for sink in reg.sinks:
                    if isinstance(sink, ExecutionConsumer):
                        self.feed.leave(sink)
                    sink.fail(error)
                reg.sinks.clear()
                if reg.holders == 0 and self._regs.get(reg.key) is reg:
                    del self._regs[reg.key]
        self._rebuild_routes()

    # -- counters -----------------------------------------------------------------------------

    def _log_limited(self, what: str, message: str, *args: object) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._logged_at.get(what, -1e18) >= self._options.malformed_log_interval:
            self._logged_at[what] = now
            logger.warning(message, *args)

    def _count_malformed(self, reason: str) -> None:
        self._malformed += 1
        # The frame itself is not logged: notices carry account numbers.
        self._log_limited(
            "malformed",
            "skipped a malformed WebSocket frame (%s); %d so far",
            reason,
            self._malformed,
        )

    def _count_unrouted(self, n: int, reason: str) -> None:
        self._unrouted += n
        self._log_limited(
            "unrouted", "dropped %d record(s): %s; %d so far", n, reason, self._unrouted
        )

    def _count_quote_drops(self, n: int) -> None:
        self._quotes_dropped += n

    def _count_book_drops(self, n: int) -> None:
        self._books_dropped += n


def _symbol_of(value: Quote | OrderBook) -> str:
    return value.symbol
