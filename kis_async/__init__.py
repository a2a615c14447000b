"""kis_async: an asyncio-native SDK for the Korea Investment & Securities (KIS) Open API.

async with KISBroker(KISConfig.from_env()) as broker:
    async for quote in broker.quotes(["005930"]):
        ...

From threads and synchronous code, ``SyncKISBroker`` has the same methods, blocking.
"""

from kis_async.broker import KISBroker, KISBrokerAdapter
from kis_async.config import KISConfig, Mode
from kis_async.errors import (
    AuthenticationError,
    BrokerAPIError,
    BrokerConnectionError,
    BrokerError,
    BrokerTimeoutError,
    InvalidOrderError,
    OrderRejectedError,
    OrderStateUnknownError,
    RateLimitError,
    ServerError,
    StreamOverflowError,
    SubscriptionError,
)
from kis_async.mock import MockBroker
from kis_async.models import (
    AuthenticationToken,
    BuyingPower,
    Execution,
    ExecutionCursor,
    ExecutionKind,
    Order,
    OrderBook,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PriceLevel,
    PriceSnapshot,
    Quote,
    Side,
)
from kis_async.orders.journal import MemoryJournal, OrderJournal, SQLiteJournal
from kis_async.orders.placement import PlacementOptions, ReconcileReport
from kis_async.orders.service import OrderService, PreTradeLimits, TrackedOrder
from kis_async.port import BrokerPort
from kis_async.stream.options import StreamOptions, StreamStatus
from kis_async.sync import KISBroker as SyncKISBroker

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "AuthenticationToken",
    "BrokerAPIError",
    "BrokerConnectionError",
    "BrokerError",
    "BrokerPort",
    "BrokerTimeoutError",
    "BuyingPower",
    "Execution",
    "ExecutionCursor",
    "ExecutionKind",
    "InvalidOrderError",
    "KISBroker",
    "KISBrokerAdapter",
    "KISConfig",
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
    "PlacementOptions",
    "Position",
    "PreTradeLimits",
    "PriceLevel",
    "PriceSnapshot",
    "Quote",
    "RateLimitError",
    "ReconcileReport",
    "SQLiteJournal",
    "ServerError",
    "Side",
    "StreamOptions",
    "StreamOverflowError",
    "StreamStatus",
    "SubscriptionError",
    "SyncKISBroker",
    "TrackedOrder",
    "__version__",
]
