"""FrameRouter: text frames in, values out to their subscribers; nothing dropped uncounted.

The session hands every text frame (PINGPONG aside) to :meth:`FrameRouter.on_text`. Data
frames are decoded through :data:`~kis_async.stream.protocol.DECODERS` (notices with the
key/iv of their TR's latest ack) and routed by the registry's table: market values to the
sinks of their symbol, execution notices to the feed. Acks go back to the manager.

A frame that does not parse, and a decoded record nobody holds (just after an unsubscribe,
say), is counted and logged at most once per ``log_interval`` seconds per kind. The frame
itself is never logged: notices carry account numbers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kis_async.models import Execution
from kis_async.stream.protocol import DECODERS, Ack, DataFrame, FrameError, parse_frame
from kis_async.stream.registry import Registry

__all__ = ["FrameRouter"]

logger = logging.getLogger("kis_async.stream")


class FrameRouter:
    """Decodes and routes frames (see the module docstring).

    Args:
        registry: the routes.
        on_ack: called with every subscribe/unsubscribe ack.
        on_notice: called with every decoded execution notice.
        log_interval: at most one log line per kind (malformed, unrouted) per this many
            seconds.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        on_ack: Callable[[Ack], None],
        on_notice: Callable[[Execution], None],
        log_interval: float,
    ) -> None:
        self._registry = registry
        self._on_ack = on_ack
        self._on_notice = on_notice
        self._log_interval = log_interval
        #: tr_id -> (key, iv) of its latest ack (cleared by the manager on reconnect).
        self.crypto: dict[str, tuple[str, str]] = {}
        self.frames = 0
        #: Data frames by TR id (``broker.metrics()``, ``kis.stream.frames``).
        self.frames_by_tr: dict[str, int] = {}
        self.malformed = 0
        self.unrouted = 0
        self._logged_at: dict[str, float] = {}

    def on_text(self, text: str) -> None:
        """Handle one text frame (never raises)."""
        self.frames += 1
        try:
            frame = parse_frame(text)
            if type(frame) is DataFrame:
                self._on_data(frame)
            elif type(frame) is Ack:
                if frame.key and frame.iv:
                    self.crypto[frame.tr_id] = (frame.key, frame.iv)
                self._on_ack(frame)
        except FrameError as exc:
            self._dropped("malformed", 1, "skipped a malformed WebSocket frame", str(exc))
        except Exception as exc:
            reason = f"{type(exc).__name__} while handling a frame"
            self._dropped("malformed", 1, "skipped a malformed WebSocket frame", reason)

    def _on_data(self, frame: DataFrame) -> None:
        tr_id = frame.tr_id
        self.frames_by_tr[tr_id] = self.frames_by_tr.get(tr_id, 0) + 1
        decoder = DECODERS.get(tr_id)
        if decoder is None:
            self._unrouted(max(1, frame.record_count), f"{tr_id} has no decoder")
            return
        if not decoder.keyed:
            on_notice = self._on_notice
            for event in decoder.decode(frame, self.crypto.get(tr_id)):
                on_notice(event)
            return
        routes = self._registry.routes.get(tr_id)
        if not routes:
            self._unrouted(max(1, frame.record_count), f"{tr_id} has no subscriber")
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
            self._unrouted(unrouted, f"{tr_id} record for a symbol with no subscriber")

    def _unrouted(self, n: int, reason: str) -> None:
        self._dropped("unrouted", n, "dropped record(s) nobody holds", reason)

    def _dropped(self, what: str, n: int, message: str, reason: str) -> None:
        total = getattr(self, what) + n
        setattr(self, what, total)
        now = asyncio.get_running_loop().time()
        if now - self._logged_at.get(what, -1e18) >= self._log_interval:
            self._logged_at[what] = now
            logger.warning("%s (%s); %d so far", message, reason, total)
