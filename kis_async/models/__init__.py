"""Public models. REST models are frozen pydantic v2 models with KIS field names as aliases;
the high-rate streaming models are slotted frozen dataclasses."""

from kis_async.models.bars import Bar, Interval, Trade
from kis_async.models.common import KST, is_on_tick, is_valid_symbol, tick_size
from kis_async.models.market import Market, OrderBook, PriceLevel, PriceSnapshot, Session
from kis_async.models.orders import (
    AuthenticationToken,
    BuyingPower,
    Exchange,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from kis_async.models.stream import Execution, ExecutionCursor, ExecutionKind, Quote

__all__ = [
    "KST",
    "AuthenticationToken",
    "Bar",
    "BuyingPower",
    "Exchange",
    "Execution",
    "ExecutionCursor",
    "ExecutionKind",
    "Interval",
    "Market",
    "Order",
    "OrderBook",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Position",
    "PriceLevel",
    "PriceSnapshot",
    "Quote",
    "Session",
    "Side",
    "Trade",
    "is_on_tick",
    "is_valid_symbol",
    "tick_size",
]
