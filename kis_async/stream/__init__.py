"""Real-time streaming over one self-healing KIS WebSocket session.

Layers: :mod:`~kis_async.stream.protocol` (sans-I/O wire format),
:mod:`~kis_async.stream.session` (one socket, PINGPONG, liveness, reconnect),
:mod:`~kis_async.stream.manager` (registrations, session ownership, routing),
:mod:`~kis_async.stream.executions` (fills: ledger, per-consumer cursors, gap-fill),
:mod:`~kis_async.stream.streams` (handles, queues, backpressure),
:mod:`~kis_async.stream.options` (tuning and status).
"""

from kis_async.stream.executions import ExecutionFeed
from kis_async.stream.manager import StreamManager
from kis_async.stream.options import StreamOptions, StreamStatus
from kis_async.stream.streams import (
    CallbackSubscription,
    ExecutionStream,
    OrderBookStream,
    QuoteStream,
)

__all__ = [
    "CallbackSubscription",
    "ExecutionFeed",
    "ExecutionStream",
    "OrderBookStream",
    "QuoteStream",
    "StreamManager",
    "StreamOptions",
    "StreamStatus",
]
