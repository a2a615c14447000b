"""kis_async: an asyncio-native SDK for the Korea Investment & Securities (KIS) Open API.

    async with KISBroker(KISConfig.from_env()) as broker:
        async for quote in broker.quotes(["005930"]):
            ...

From threads and synchronous code, ``SyncKISBroker`` has the same methods, blocking.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kis_async.broker import KISBroker, KISBrokerAdapter
    from kis_async.config import KISConfig, Mode
    from kis_async.errors import (
        AuthenticationError,
        BrokerAPIError,
        BrokerClosedError,
        BrokerConnectionError,
        BrokerError,
        BrokerTimeoutError,
        HistoryRequestError,
        InvalidOrderError,
        OrderRejectedError,
        OrderStateUnknownError,
        PaperModeError,
        RateLimitError,
        ResponseTooLargeError,
        ServerError,
        StreamOverflowError,
        SubscriptionError,
    )
    from kis_async.history import BarStream, LiveBars
    from kis_async.mock import MockBroker
    from kis_async.models import (
        AuthenticationToken,
        Bar,
        BuyingPower,
        Exchange,
        Execution,
        ExecutionCursor,
        ExecutionKind,
        Interval,
        Market,
        Order,
        OrderBook,
        OrderRequest,
        OrderStatus,
        OrderType,
        Position,
        PriceLevel,
        PriceSnapshot,
        Quote,
        Session,
        Side,
        Trade,
    )
    from kis_async.orders.journal import (
        MemoryJournal,
        OrderJournal,
        SQLiteJournal,
    )
    from kis_async.orders.placement import PlacementOptions, ReconcileReport
    from kis_async.orders.service import (
        OrderService,
        PreTradeLimits,
        TrackedOrder,
    )
    from kis_async.port import BrokerPort
    from kis_async.stream.options import StreamOptions, StreamStatus
    from kis_async.sync import KISBroker as SyncKISBroker

#: Where each public name lives, as "module" or "module:attribute". Imported on first access
#: (PEP 562), so ``import kis_async`` costs next to nothing and a program pays only for what it
#: uses (the order journal's SQLite, the mock broker, the stream and REST stacks);
#: ``from kis_async import X`` works as before.
_LAZY: dict[str, str] = {
    "AuthenticationError": "kis_async.errors",
    "AuthenticationToken": "kis_async.models",
    "Bar": "kis_async.models",
    "BarStream": "kis_async.history",
    "BrokerAPIError": "kis_async.errors",
    "BrokerClosedError": "kis_async.errors",
    "BrokerConnectionError": "kis_async.errors",
    "BrokerError": "kis_async.errors",
    "BrokerPort": "kis_async.port",
    "BrokerTimeoutError": "kis_async.errors",
    "BuyingPower": "kis_async.models",
    "Exchange": "kis_async.models",
    "Execution": "kis_async.models",
    "ExecutionCursor": "kis_async.models",
    "ExecutionKind": "kis_async.models",
    "HistoryRequestError": "kis_async.errors",
    "Interval": "kis_async.models",
    "InvalidOrderError": "kis_async.errors",
    "KISBroker": "kis_async.broker",
    "KISBrokerAdapter": "kis_async.broker",
    "KISConfig": "kis_async.config",
    "LiveBars": "kis_async.history",
    "Market": "kis_async.models",
    "MemoryJournal": "kis_async.orders.journal",
    "MockBroker": "kis_async.mock",
    "Mode": "kis_async.config",
    "Order": "kis_async.models",
    "OrderBook": "kis_async.models",
    "OrderJournal": "kis_async.orders.journal",
    "OrderRejectedError": "kis_async.errors",
    "OrderRequest": "kis_async.models",
    "OrderService": "kis_async.orders.service",
    "OrderStateUnknownError": "kis_async.errors",
    "OrderStatus": "kis_async.models",
    "OrderType": "kis_async.models",
    "PaperModeError": "kis_async.errors",
    "PlacementOptions": "kis_async.orders.placement",
    "Position": "kis_async.models",
    "PreTradeLimits": "kis_async.orders.service",
    "PriceLevel": "kis_async.models",
    "PriceSnapshot": "kis_async.models",
    "Quote": "kis_async.models",
    "RateLimitError": "kis_async.errors",
    "ReconcileReport": "kis_async.orders.placement",
    "ResponseTooLargeError": "kis_async.errors",
    "SQLiteJournal": "kis_async.orders.journal",
    "ServerError": "kis_async.errors",
    "Session": "kis_async.models",
    "Side": "kis_async.models",
    "StreamOptions": "kis_async.stream.options",
    "StreamOverflowError": "kis_async.errors",
    "StreamStatus": "kis_async.stream.options",
    "SubscriptionError": "kis_async.errors",
    "SyncKISBroker": "kis_async.sync:KISBroker",
    "TrackedOrder": "kis_async.orders.service",
    "Trade": "kis_async.models",
}

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "AuthenticationToken",
    "Bar",
    "BarStream",
    "BrokerAPIError",
    "BrokerClosedError",
    "BrokerConnectionError",
    "BrokerError",
    "BrokerPort",
    "BrokerTimeoutError",
    "BuyingPower",
    "Exchange",
    "Execution",
    "ExecutionCursor",
    "ExecutionKind",
    "HistoryRequestError",
    "Interval",
    "InvalidOrderError",
    "KISBroker",
    "KISBrokerAdapter",
    "KISConfig",
    "LiveBars",
    "Market",
    "MemoryJournal",
    "MockBroker",
    "Mode",
    "Order",
    "OrderBook",
    "OrderJournal",
    "OrderRejectedError",
    "OrderRequest",
    "OrderService",
    "OrderStateUnknownError",
    "OrderStatus",
    "OrderType",
    "PaperModeError",
    "PlacementOptions",
    "Position",
    "PreTradeLimits",
    "PriceLevel",
    "PriceSnapshot",
    "Quote",
    "RateLimitError",
    "ReconcileReport",
    "ResponseTooLargeError",
    "SQLiteJournal",
    "ServerError",
    "Session",
    "Side",
    "StreamOptions",
    "StreamOverflowError",
    "StreamStatus",
    "SubscriptionError",
    "SyncKISBroker",
    "TrackedOrder",
    "Trade",
    "__version__",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'kis_async' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
