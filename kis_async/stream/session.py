"""One KIS WebSocket session: connect, PINGPONG, liveness, reconnect.

The session owns one ``websockets`` connection at a time and one background task that
(re)connects it. It knows nothing about registrations or frame contents beyond PINGPONG: on
every (re)connection it awaits ``on_open(n)`` (the manager re-sends every registration there)
and hands every other text frame to ``on_text``.

* The library's own keepalive is off (``ping_interval=None``): KIS's heartbeat is the
  application-level PINGPONG frame, which we echo back as the same text frame.
* Liveness: when nothing at all (data, ack or PINGPONG) arrives for ``liveness_timeout``
  seconds, the connection is closed and re-opened (the connected-but-mute case).
* Reconnect: exponential backoff with jitter; the backoff resets once a connection has stayed
  up for ``healthy_after`` seconds. After ``max_reconnect_attempts`` consecutive failed
  connection attempts the session gives up and calls ``on_give_up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from kis_async.errors import BrokerConnectionError
from kis_async.stream.protocol import PINGPONG, is_pingpong
from kis_async.stream.traffic import log_frame
from kis_async.traffic import on as traffic_on

if TYPE_CHECKING:
    from kis_async.stream.options import StreamOptions

__all__ = ["Session"]

logger = logging.getLogger("kis_async.stream")

#: Bounds of the number of frames handled in one run of a read burst before a pause that lets
#: consumer tasks run (see :func:`burst_limit` and ``_serve``).
_BURST_MIN = 1
_BURST_MAX = 32


def burst_limit(options: StreamOptions) -> int:
    """Frames handled back to back before the reader pauses for the consumers.

    A quarter of the smallest conflating queue (clamped to 1..32): a consumer that keeps up
    never sees a queue fill within one burst, and with the default queues (1,024) a burst
    of up to 32 frames goes out in one hand-off with one wake-up per consumer.
    """
    smallest = min(options.quote_queue_size, options.callback_queue_size)
    return max(_BURST_MIN, min(_BURST_MAX, smallest // 4))


# websockets logs every frame at DEBUG, and subscribe frames carry the approval key and the
# HTS id: its connection logger is pinned at INFO so that DEBUG logging never shows them.
_wire_logger = logging.getLogger("kis_async.stream.wire")
_wire_logger.setLevel(logging.INFO)


def _as_text(message: str | bytes) -> str:
    if isinstance(message, str):
        return message
    return message.decode("utf-8", "replace")


class Session:
    """A self-healing WebSocket session (see the module docstring).

    Args:
        url: the ``ws://`` URL.
        options: timeouts and the reconnect policy.
        on_open: awaited after each successful connect with the connection number (0 first).
        on_text: called for each text frame except PINGPONG (from the reader task).
        on_down: called when a connection ends (before any reconnect).
        on_give_up: called once when the session gives up.
    """

    def __init__(
        self,
        url: str,
        options: StreamOptions,
        *,
        on_open: Callable[[int], Awaitable[None]],
        on_text: Callable[[str], None],
        on_down: Callable[[], None],
        on_give_up: Callable[[BrokerConnectionError], None],
        traffic_source: object = None,
    ) -> None:
        self._url = url
        # Tags this session's traffic records for sinks that listen to one broker.
        self._traffic_source = traffic_source
        self._options = options
        self._on_open = on_open
        self._on_text = on_text
        self._on_down = on_down
        self._on_give_up = on_give_up
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self._closing = False
        self._ready = False
        self.error: BrokerConnectionError | None = None
        self.connections = 0
        self.reconnects = 0
        self.pings = 0
        self.mute_detections = 0
        self._rx = 0
        self._burst_limit = burst_limit(options)
        #: Set by a callback the reader schedules once per burst: True once the event loop
        #: has run it, i.e. the reader was suspended (and consumers ran) since then.
        self._turned = True

    # -- state ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a connection is open and its registrations have been re-sent."""
        return self._ws is not None and self._ready

    @property
    def failed(self) -> bool:
        """True once the session has given up (or was closed)."""
        return self.error is not None or self._closing

    def _notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def start(self) -> None:
        """Start the connection task once, then wait until connected.

        Raises:
            BrokerConnectionError: the session gave up or was closed.
        """
        if self._task is None and not self.failed:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="kis_async-ws-session"
            )
        await self.wait_connected()

    async def wait_connected(self) -> None:
        """Wait until a connection is open (or raise when the session gave up)."""
        while True:
            if self.error is not None:
                raise self.error
            if self._closing:
                raise BrokerConnectionError("the WebSocket session is closed")
            if self._ws is not None:
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.add(waiter)
            try:
                await waiter
            finally:
                self._waiters.discard(waiter)

    async def send(self, text: str) -> None:
        """Send one text frame.

        Raises:
            BrokerConnectionError: no open connection (the next connection re-sends every
                registration, so callers that register need not retry).
        """
        ws = self._ws
        if ws is None:
            raise BrokerConnectionError("the KIS WebSocket is not connected")
        if traffic_on():
            log_frame("send", text, source=self._traffic_source)
        try:
            await ws.send(text)
        except ConnectionClosed as exc:
            raise BrokerConnectionError("the KIS WebSocket closed while sending") from exc

    async def reconnect(self) -> None:
        """Close the current connection; the session reconnects (with backoff) and restores."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close(code=1000, reason="reconnect")

    async def aclose(self) -> None:
        """Close the connection and end the task. Idempotent."""
        self._closing = True
        self._notify()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        task = self._task
        if task is None or task.done():
            return
        if ws is not None:
            # The closed connection ends the loop; give it the closing handshake's time.
            await asyncio.wait({task}, timeout=self._options.close_timeout + 1.0)
        if not task.done():
            # Connecting or waiting out a backoff delay: nothing to close gracefully.
            task.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
        if results and isinstance(results[0], Exception):
            logger.debug("WebSocket session task ended with an error", exc_info=results[0])

    # -- the connection loop --------------------------------------------------------------------

    def _is_closing(self) -> bool:
        # A method, not the attribute: mypy would narrow the loop's condition and think
        # the re-check after an await is unreachable.
        return self._closing

    def _delay(self, level: int) -> float:
        opts = self._options
        base = min(opts.reconnect_max_delay, opts.reconnect_base_delay * 2.0 ** max(0, level - 1))
        jitter = opts.reconnect_jitter
        return max(0.0, base * (1.0 - jitter * random.random()))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        opts = self._options
        failures = 0  # consecutive failed connection attempts
        level = 0  # backoff exponent; reset after a healthy connection
        try:
            while not self._closing:
                try:
                    ws = await connect(
                        self._url,
                        ping_interval=None,  # KIS's heartbeat is PINGPONG, see module doc
                        ping_timeout=None,
                        open_timeout=opts.connect_timeout,
                        close_timeout=opts.close_timeout,
                        compression=None,
                        max_queue=256,
                        logger=_wire_logger,
                    )
                except asyncio.CancelledError:
                    raise
                except (OSError, TimeoutError, WebSocketException) as exc:
                    failures += 1
                    reason = f"connect failed: {type(exc).__name__}"
                    if failures >= opts.max_reconnect_attempts:
                        self._give_up(failures, exc)
                        return
                else:
                    started = loop.time()
                    reason, opened = await self._serve(ws)
                    if opened:
                        failures = 0
                    else:
                        failures += 1
                    if loop.time() - started >= opts.healthy_after:
                        level = 0
                    if self._is_closing():
                        return
                    if not opened and failures >= opts.max_reconnect_attempts:
                        self._give_up(failures, None)
                        return
                level += 1
                delay = self._delay(level)
                logger.warning(
                    "KIS WebSocket reconnect attempt %d in %.2f s (%s)", level, delay, reason
                )
                await asyncio.sleep(delay)
        finally:
            self._ws = None
            self._ready = False
            self._notify()

    def _give_up(self, failures: int, exc: BaseException | None) -> None:
        error = BrokerConnectionError(
            f"KIS WebSocket: gave up after {failures} consecutive failed connection attempts"
        )
        if exc is not None:
            error.__cause__ = exc
        self.error = error
        logger.error("%s", error)
        self._notify()
        try:
            self._on_give_up(error)
        except Exception:
            logger.exception("error while failing the streams")

    async def _serve(self, ws: ClientConnection) -> tuple[str, bool]:
        """Run one connection; return (why it ended, whether registrations were restored)."""
        number = self.connections
        self.connections += 1
        if number:
            self.reconnects += 1
        self._ws = ws
        self._ready = False
        self._notify()
        self._rx = 0
        muted = asyncio.Event()
        watchdog = asyncio.get_running_loop().create_task(
            self._watchdog(ws, muted), name="kis_async-ws-liveness"
        )
        opened = False
        try:
            try:
                await self._on_open(number)
            except (ConnectionClosed, BrokerConnectionError):
                return "closed while restoring registrations", False
            except Exception:
                logger.exception("error while restoring registrations")
                return "error while restoring registrations", False
            opened = True
            self._ready = True
            on_text = self._on_text
            limit = self._burst_limit
            call_soon = asyncio.get_running_loop().call_soon
            turned = self._mark_turn
            run = 0  # frames handled since the reader last let the event loop run
            async for message in ws:
                self._rx += 1
                text = message if type(message) is str else _as_text(message)
                if traffic_on():
                    log_frame("recv", text, source=self._traffic_source)
                if text[:1] == "{" and PINGPONG in text and is_pingpong(text):
                    await ws.send(text)
                    self.pings += 1
                    continue
                # websockets hands over buffered messages without yielding to the event loop,
                # so a read burst is handled back to back and each consumer is woken once for
                # it. A burst ends when ``recv`` suspends; the callback scheduled on the
                # burst's first frame tells us so. A burst longer than ``limit`` frames
                # pauses every ``limit`` frames, so consumers drain their queues before the
                # conflating ones fill.
                if self._turned:
                    self._turned = False
                    run = 0
                    call_soon(turned)
                on_text(text)
                run += 1
                if run >= limit:
                    await asyncio.sleep(0)
            if muted.is_set():
                return "no frame within the liveness window", opened
            return f"closed by the server (code {ws.close_code})", opened
        except ConnectionClosed as exc:
            if muted.is_set():
                return "no frame within the liveness window", opened
            return f"connection lost (code {exc.rcvd.code if exc.rcvd else 'none'})", opened
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
            self._ws = None
            self._ready = False
            with contextlib.suppress(Exception):
                await ws.close()
            try:
                self._on_down()
            except Exception:
                logger.exception("error in the session-down handler")

    def _mark_turn(self) -> None:
        self._turned = True

    async def _watchdog(self, ws: ClientConnection, muted: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        window = self._options.liveness_timeout
        step = max(0.01, window / 4)
        seen = self._rx
        last = loop.time()
        while True:
            await asyncio.sleep(step)
            if self._rx != seen:
                seen = self._rx
                last = loop.time()
                continue
            if loop.time() - last >= window:
                self.mute_detections += 1
                muted.set()
                logger.warning(
                    "KIS WebSocket: no frame (data or PINGPONG) for %.1f s; reconnecting", window
                )
                await ws.close(code=1000, reason="liveness timeout")
                return

    def __repr__(self) -> str:
        state: Any = "connected" if self.connected else "failed" if self.failed else "idle"
        return f"Session(state={state!r}, reconnects={self.reconnects})"
