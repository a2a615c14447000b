"""Real-time models: trades (Quote) and execution notices (Execution).

These are built at tens of thousands per second, so they are slotted frozen dataclasses, not
pydantic models; the decoders in :mod:`kis_async.stream.protocol` create them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from kis_async.models.orders import OrderType, Side

__all__ = ["Execution", "ExecutionKind", "Quote"]


@dataclass(frozen=True, slots=True)
class Quote:
    """A real-time trade print (H0STCNT0).

    Attributes:
        symbol: the KRX code.
        time: trade time, aware Asia/Seoul.
        price: trade price.
        change: change against the previous close.
        change_rate: change in percent.
        volume: this trade's volume.
        cum_volume: cumulative volume today.
        cum_turnover: cumulative turnover today (won).
        open, high, low: today's open, high and low.
        ask, bid: best ask and bid at the trade.
        vwap: volume-weighted average price.
        side: the side that initiated the trade (BUY/SELL), None in auctions.
        raw: every field by its KIS name (``raw["CTTR"]``), including fields we do not type.
    """

    symbol: str
    time: datetime | None
    price: Decimal
    change: Decimal | None
    change_rate: Decimal | None
    volume: int | None
    cum_volume: int | None
    cum_turnover: Decimal | None
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    ask: Decimal | None
    bid: Decimal | None
    vwap: Decimal | None
    side: Side | None
    raw: Mapping[str, str] = field(repr=False, compare=False)

    def __getitem__(self, kis_name: str) -> str:
        """The raw string of a field by its KIS name."""
        return self.raw[kis_name]


class ExecutionKind(StrEnum):
    """What an execution notice reports."""

    ACCEPTED = "accepted"
    FILLED = "filled"
    MODIFIED = "modified"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Execution:
    """An execution notice (H0STCNI0 live / H0STCNI9 paper), or a fill found by reconciliation.

    Attributes:
        kind: acceptance, fill, modification, cancellation or rejection.
        broker_order_id: KIS order number (ODNO) this event is about.
        original_order_id: for modifications and cancellations, the order they act on.
        branch_no: KRX forwarding order org number (KRX_FWDG_ORD_ORGNO).
        symbol: the KRX code.
        side: BUY or SELL.
        order_type: the order division, when known.
        qty: for FILLED, the quantity of this fill; otherwise the order quantity.
        price: for FILLED, the fill price; otherwise the order price.
        order_qty: the order's total quantity.
        time: event time, aware Asia/Seoul.
        source: ``"websocket"`` for notices, ``"reconcile"`` for fills found by gap-fill.
        name: the stock name, when KIS sent it.
        raw: every field by its KIS name (empty for reconcile events).
    """

    kind: ExecutionKind
    broker_order_id: str
    original_order_id: str | None
    branch_no: str | None
    symbol: str
    side: Side | None
    order_type: OrderType | None
    qty: int
    price: Decimal | None
    order_qty: int | None
    time: datetime | None
    source: Literal["websocket", "reconcile"] = "websocket"
    name: str | None = None
    raw: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
