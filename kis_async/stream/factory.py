"""How each kind of stream is built: its queue (kind and size) and its sink.

:class:`~kis_async.stream.manager.StreamManager` and MockBroker's
:class:`~kis_async.stream.hub.MemoryHub` both build their handles here, so the two brokers'
streams are the same objects with the same policies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kis_async.models import Execution, ExecutionCursor, OrderBook, Quote
from kis_async.port import Callback
from kis_async.stream.executions import ExecutionConsumer
from kis_async.stream.options import StreamOptions
from kis_async.stream.streams import (
    Attacher,
    CallbackSubscription,
    ConflatingBuffer,
    ExecutionStream,
    LosslessBuffer,
    OrderBookStream,
    QuoteStream,
    RegKey,
)
from kis_async.validation import check_symbols

__all__ = [
    "cursor_arg",
    "execution_stream",
    "execution_subscription",
    "orderbook_stream",
    "quote_stream",
    "quote_subscription",
    "symbol_keys",
]

OnError = Callable[[BaseException], Any] | None


def _symbol_of(value: Quote | OrderBook) -> str:
    return value.symbol


def symbol_keys(tr_id: str, symbols: Iterable[str] | str) -> tuple[RegKey, ...]:
    """``(tr_id, symbol)`` registration keys, duplicates removed, order kept.

    Raises:
        InvalidOrderError: no symbols, or one that is not a KRX code (a ValueError).
    """
    return tuple((tr_id, symbol) for symbol in check_symbols(symbols))


def cursor_arg(since: ExecutionCursor | str | None) -> ExecutionCursor | None:
    """``since`` as a cursor (its ``str`` form is parsed).

    Raises:
        ValueError: the text is not a cursor.
        TypeError: neither a cursor, a str nor None.
    """
    if since is None or isinstance(since, ExecutionCursor):
        return since
    if isinstance(since, str):
        return ExecutionCursor.parse(since)
    raise TypeError("since must be an ExecutionCursor, its str() form, or None")


def quote_stream(
    owner: Attacher,
    keys: tuple[RegKey, ...],
    options: StreamOptions,
    on_drop: Callable[[int], None],
) -> QuoteStream:
    """Trades; conflates per symbol past ``quote_queue_size``."""
    buffer: ConflatingBuffer[Quote] = ConflatingBuffer(
        options.quote_queue_size, _symbol_of, on_drop
    )
    return QuoteStream(owner, keys, buffer)


def orderbook_stream(
    owner: Attacher,
    keys: tuple[RegKey, ...],
    options: StreamOptions,
    on_drop: Callable[[int], None],
) -> OrderBookStream:
    """Order books; conflates per symbol past ``quote_queue_size``."""
    buffer: ConflatingBuffer[OrderBook] = ConflatingBuffer(
        options.quote_queue_size, _symbol_of, on_drop
    )
    return OrderBookStream(owner, keys, buffer)


def execution_stream(
    owner: Attacher,
    keys: tuple[RegKey, ...],
    options: StreamOptions,
    *,
    replay: bool,
    since: ExecutionCursor | str | None,
) -> ExecutionStream:
    """Execution events: its own consumer, lossless up to ``execution_high_water``."""
    buffer: LosslessBuffer[Execution] = LosslessBuffer(options.execution_high_water)
    consumer = ExecutionConsumer(buffer, replay=replay, since=cursor_arg(since))
    return ExecutionStream(owner, keys, buffer, sink=consumer)


def quote_subscription(
    owner: Attacher,
    keys: tuple[RegKey, ...],
    options: StreamOptions,
    on_drop: Callable[[int], None],
    *,
    callback: Callback[Quote],
    on_error: OnError,
) -> CallbackSubscription[Quote]:
    """A quote callback with its own queue (conflating past ``callback_queue_size``)."""
    buffer: ConflatingBuffer[Quote] = ConflatingBuffer(
        options.callback_queue_size, _symbol_of, on_drop
    )
    return CallbackSubscription(owner, keys, buffer, callback, on_error)


def execution_subscription(
    owner: Attacher,
    keys: tuple[RegKey, ...],
    options: StreamOptions,
    callback: Callback[Execution],
    on_error: OnError,
    *,
    replay: bool,
    since: ExecutionCursor | str | None,
) -> CallbackSubscription[Execution]:
    """An execution callback: its own consumer; a large backlog is logged, never raised."""
    buffer: LosslessBuffer[Execution] = LosslessBuffer(
        options.execution_high_water, raise_on_overflow=False
    )
    consumer = ExecutionConsumer(buffer, replay=replay, since=cursor_arg(since))
    return CallbackSubscription(owner, keys, buffer, callback, on_error, sink=consumer)
