"""Real-time streaming over one self-healing KIS WebSocket session.

Layers: :mod:`~kis_async.stream.protocol` (sans-I/O wire format),
:mod:`~kis_async.stream.session` (one socket, PINGPONG, liveness, reconnect),
:mod:`~kis_async.stream.manager` (registrations, routing, gap-fill),
:mod:`~kis_async.stream.streams` (handles, queues, backpressure).
"""

from kis_async.stream.manager import StreamManager, StreamOptions, StreamStatus
from kis_async.stream.streams import (
    CallbackSubscription,
    ExecutionStream,
    OrderBookStream,
    QuoteStream,
)

__all__ = [
    "CallbackSubscription",
    "ExecutionStream",
    "OrderBookStream",
    "QuoteStream",
    "StreamManager",
    "StreamOptions",
    "StreamStatus",
]
