"""The simulator's records: listed symbols, book levels, instruments, ticks, orders, fills,
holdings and notices, and the errors the exchange raises.

Plain data with the small price helpers the matching code shares; :mod:`kis_async.sim.exchange`
owns the behaviour and re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from kis_async.models.common import tick_size
from kis_async.sim.venues import (
    KRX,
    NXT,
)

__all__ = [
    "BOOK_DEPTH",
    "DEFAULT_SYMBOLS",
    "NXT_THINNING",
    "NXT_TRADE_CHANCE",
    "PRICE_BAND",
    "BookLevel",
    "Fill",
    "Holding",
    "Instrument",
    "NoticeEvent",
    "NoticeKind",
    "SimInvariantError",
    "SimOrder",
    "SimRejectionError",
    "Tick",
]

#: (code, name, reference price in won). Prices are rough late-2026 levels; they only need to be
#: plausible and spread across several tick bands.
DEFAULT_SYMBOLS: Final[tuple[tuple[str, str, int], ...]] = (
    ("005930", "삼성전자", 71_900),
    ("000660", "SK하이닉스", 182_300),
    ("035420", "NAVER", 214_500),
    ("005380", "현대차", 246_000),
    ("035720", "카카오", 41_250),
    ("051910", "LG화학", 318_500),
    ("006400", "삼성SDI", 389_000),
    ("068270", "셀트리온", 178_600),
    ("105560", "KB금융", 82_400),
    ("055550", "신한지주", 51_700),
    ("000270", "기아", 98_700),
    ("003490", "대한항공", 22_150),
    ("034220", "LG디스플레이", 10_980),
    ("010140", "삼성중공업", 13_570),
    ("001440", "대한전선", 1_587),
)

BOOK_DEPTH: Final = 10
#: KRX daily price band: ±30% of the previous close.
PRICE_BAND: Final = 0.30
#: NXT books are thinner than KRX's: their level sizes are KRX-like sizes divided by this.
NXT_THINNING: Final = 5
#: How often NXT prints a trade in a market step (its own random stream).
NXT_TRADE_CHANCE: Final = 0.4


class SimInvariantError(AssertionError):
    """The simulated account or market broke one of its own invariants (a simulator bug)."""


@dataclass(frozen=True, slots=True)
class BookLevel:
    """One price level of the order book."""

    price: int
    qty: int


@dataclass
class Instrument:
    """A listed stock and its running session statistics."""

    symbol: str
    name: str
    prev_close: int
    price: int
    open: int
    high: int
    low: int
    volume: int = 0
    turnover: int = 0
    sell_count: int = 0
    buy_count: int = 0
    sell_volume: int = 0
    buy_volume: int = 0
    open_time: str = "090000"
    high_time: str = "090000"
    low_time: str = "090000"
    asks: list[BookLevel] = field(default_factory=list)
    bids: list[BookLevel] = field(default_factory=list)
    nxt_price: int = 0
    nxt_volume: int = 0
    nxt_turnover: int = 0
    nxt_asks: list[BookLevel] = field(default_factory=list)
    nxt_bids: list[BookLevel] = field(default_factory=list)
    last_venue: str = KRX

    def venue_book(self, venue: str) -> tuple[list[BookLevel], list[BookLevel]]:
        """(asks, bids) of ``venue`` (KRX or NXT)."""
        if venue == NXT:
            return self.nxt_asks, self.nxt_bids
        return self.asks, self.bids

    @property
    def unified_price(self) -> int:
        """통합 last price: the price of the venue that printed last."""
        return self.nxt_price if self.last_venue == NXT and self.nxt_price else self.price

    @property
    def upper_limit(self) -> int:
        """상한가: the previous close + 30%, rounded down to the tick grid."""
        raw = int(self.prev_close * (1 + PRICE_BAND))
        return raw - raw % tick_size(raw)

    @property
    def lower_limit(self) -> int:
        """하한가: the previous close - 30%, rounded up to the tick grid."""
        raw = int(self.prev_close * (1 - PRICE_BAND)) + 1
        tick = tick_size(raw)
        return raw + (-raw) % tick

    @property
    def change(self) -> int:
        """Change against the previous close."""
        return self.price - self.prev_close

    @property
    def sign(self) -> str:
        """KIS ``prdy_vrss_sign``: 1 상한, 2 상승, 3 보합, 4 하한, 5 하락."""
        if self.price >= self.upper_limit:
            return "1"
        if self.price <= self.lower_limit:
            return "4"
        if self.price > self.prev_close:
            return "2"
        if self.price < self.prev_close:
            return "5"
        return "3"

    @property
    def change_rate(self) -> float:
        """Change against the previous close in percent."""
        return self.change / self.prev_close * 100

    @property
    def vwap(self) -> float:
        """Volume-weighted average price today (the last price before any volume)."""
        return self.turnover / self.volume if self.volume else float(self.price)


@dataclass(frozen=True, slots=True)
class Tick:
    """One market step of one symbol: the trade print and the book after it."""

    symbol: str
    time: datetime
    price: int
    qty: int
    buyer_initiated: bool
    instrument: Instrument
    asks: tuple[BookLevel, ...]
    bids: tuple[BookLevel, ...]
    # Running statistics captured at the time of the trade (the Instrument keeps moving).
    volume: int
    turnover: int
    open: int
    high: int
    low: int
    sell_count: int
    buy_count: int
    sell_volume: int
    buy_volume: int
    nxt_price: int = 0
    nxt_qty: int = 0
    nxt_volume: int = 0
    nxt_turnover: int = 0
    nxt_asks: tuple[BookLevel, ...] = ()
    nxt_bids: tuple[BookLevel, ...] = ()
    market_time: datetime | None = None

    @property
    def unified_price(self) -> int:
        """The 통합 last price after this step (NXT's when NXT printed last in it)."""
        return self.nxt_price if self.nxt_qty else self.price


@dataclass
class SimOrder:
    """One entry of today's order ledger (an order, or a modify/cancel order acting on one)."""

    order_id: str
    branch_no: str
    symbol: str
    side: str  # "01" sell, "02" buy (SLL_BUY_DVSN_CD)
    order_type: str  # ORD_DVSN
    qty: int
    price: int  # 0 for market-type orders
    created_at: datetime
    original_order_id: str = ""
    kind: str = "new"  # "new", "modify" or "cancel"
    filled_qty: int = 0
    filled_amount: int = 0
    remaining_qty: int = 0
    cancelled_qty: int = 0
    rejected_qty: int = 0
    reserve_price: int = 0  # price cash is reserved at for an open buy
    limit: int | None = None  # the effective matching limit; None = market
    placed_on: str = KRX  # EXCG_ID_DVSN_CD it was placed with: KRX, NXT or SOR
    venue: str = KRX  # where it trades: KRX or NXT (an SOR order's routed venue)
    stop_price: int = 0  # CNDT_PRIC of a stop-limit (22) order
    armed: bool = True  # False while a stop-limit waits for its trigger

    @property
    def is_open(self) -> bool:
        """True while part of the order can still fill."""
        return self.remaining_qty > 0

    @property
    def avg_price(self) -> float:
        """Average fill price (0 when nothing filled)."""
        return self.filled_amount / self.filled_qty if self.filled_qty else 0.0

    @property
    def is_buy(self) -> bool:
        """True for a buy."""
        return self.side == "02"


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of a user order."""

    order_id: str
    symbol: str
    side: str
    qty: int
    price: int
    time: datetime


@dataclass
class Holding:
    """A position: quantity and purchase cost (average price = cost / qty)."""

    symbol: str
    qty: int = 0
    cost: int = 0
    bought_today: int = 0
    sold_today: int = 0

    @property
    def avg_price(self) -> float:
        """Average purchase price."""
        return self.cost / self.qty if self.qty else 0.0


class NoticeKind(StrEnum):
    """What an execution notice reports."""

    ACCEPTED = "accepted"
    FILLED = "filled"
    MODIFIED = "modified"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class NoticeEvent:
    """An order event that becomes an execution notice (H0STCNI0 / H0STCNI9).

    ``qty``/``price`` are the fill for FILLED, the cancelled quantity for CANCELLED and the
    order quantity/price otherwise.
    """

    kind: NoticeKind
    order: SimOrder
    qty: int
    price: int
    time: datetime
    auto_cancel: bool = False


class SimRejectionError(Exception):
    """A business rejection of an order, modify or cancel (mapped to msg_cd by the REST layer).

    Attributes:
        reason: a key of the REST layer's rejection table (``"unknown_symbol"``...).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
