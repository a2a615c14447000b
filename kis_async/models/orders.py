"""Order, account and authentication models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from pydantic import Field, SecretStr

from kis_async.errors import InvalidOrderError
from kis_async.models.common import KST, KISModel
from kis_async.validation import (
    check_limit_price,
    check_qty,
    check_symbol,
    coerce_price,
)

__all__ = [
    "AuthenticationToken",
    "BuyingPower",
    "Order",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Position",
    "Side",
]

MAX_IDEMPOTENCY_KEY_LENGTH: Final = 128


class Side(StrEnum):
    """Buy or sell. Values are KIS's ``SLL_BUY_DVSN_CD`` codes."""

    SELL = "01"
    BUY = "02"

    @classmethod
    def parse(cls, value: Any) -> Side:
        """Accept a ``Side``, ``"buy"``/``"sell"`` (any case) or a KIS code (``01``/``02``)."""
        if isinstance(value, Side):
            return value
        text = str(value).strip().lower()
        mapping = {"buy": cls.BUY, "sell": cls.SELL, "02": cls.BUY, "01": cls.SELL}
        mapping |= {"2": cls.BUY, "1": cls.SELL}
        if text not in mapping:
            raise ValueError(f"unknown side {value!r}: expected 'buy' or 'sell'")
        return mapping[text]


class OrderType(StrEnum):
    """KIS ``ORD_DVSN`` order divisions (protocol doc §4.1)."""

    LIMIT = "00"
    """지정가."""
    MARKET = "01"
    """시장가."""
    CONDITIONAL_LIMIT = "02"
    """조건부지정가: limit during the session, market at the close."""
    BEST_LIMIT = "03"
    """최유리지정가: priced at the best opposite quote on arrival; no price."""
    PRIORITY_LIMIT = "04"
    """최우선지정가: priced at the best same-side quote on arrival; no price."""
    PRE_MARKET_CLOSE = "05"
    """장전 시간외: pre-market at the previous close; no price."""
    AFTER_MARKET_CLOSE = "06"
    """장후 시간외: post-market at the close; no price."""
    AFTER_HOURS_SINGLE = "07"
    """시간외 단일가: after-hours single-price auction; price required."""
    IOC_LIMIT = "11"
    """IOC 지정가."""
    FOK_LIMIT = "12"
    """FOK 지정가."""
    IOC_MARKET = "13"
    """IOC 시장가."""
    FOK_MARKET = "14"
    """FOK 시장가."""
    IOC_BEST = "15"
    """IOC 최유리."""
    FOK_BEST = "16"
    """FOK 최유리."""

    @classmethod
    def parse(cls, value: Any) -> OrderType:
        """Accept an ``OrderType`` or its exact ``ORD_DVSN`` code (``"00"``, ``"01"``, ...).

        Raises:
            InvalidOrderError: anything else.
        """
        if isinstance(value, OrderType):
            return value
        try:
            return cls(value) if isinstance(value, str) else cls(str(value))
        except ValueError:
            raise InvalidOrderError(f"unknown order_type {value!r}") from None

    @property
    def requires_price(self) -> bool:
        """True when the order carries its own limit price."""
        return self in _PRICED

    @property
    def is_ioc(self) -> bool:
        """True for immediate-or-cancel types."""
        return self in (OrderType.IOC_LIMIT, OrderType.IOC_MARKET, OrderType.IOC_BEST)

    @property
    def is_fok(self) -> bool:
        """True for fill-or-kill types."""
        return self in (OrderType.FOK_LIMIT, OrderType.FOK_MARKET, OrderType.FOK_BEST)


_PRICED: Final = frozenset(
    {
        OrderType.LIMIT,
        OrderType.CONDITIONAL_LIMIT,
        OrderType.AFTER_HOURS_SINGLE,
        OrderType.IOC_LIMIT,
        OrderType.FOK_LIMIT,
    }
)


class OrderStatus(StrEnum):
    """Where an order stands."""

    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_done(self) -> bool:
        """True when nothing more can happen to the order."""
        return self in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


class OrderRequest:
    """A validated order, ready to send.

    Validation happens here, before any network call; every problem raises
    :class:`~kis_async.errors.InvalidOrderError` (also a ``ValueError``).

    Args:
        symbol: 6-character KRX code (``"005930"``) or 7-character ETN code (``"Q500001"``),
            matched as a whole ASCII string (no surrounding whitespace or newline).
        side: :class:`Side` or ``"buy"``/``"sell"``.
        qty: number of shares, an ``int`` from 1 to 99,999,999.
        order_type: :class:`OrderType` (or its code); default :attr:`OrderType.LIMIT`.
        price: required for priced types (limit, conditional, IOC/FOK limit, after-hours single),
            on the KRX tick grid and at most 999,999,999 won (the largest KRX price); refused
            for market-type orders. ``Decimal``, ``int``, ASCII numeric ``str``, or a ``float``
            without a fraction.
        idempotency_key: makes the order at-most-once across retries and restarts (see README).
    """

    __slots__ = ("idempotency_key", "order_type", "price", "qty", "side", "symbol")

    symbol: str
    side: Side
    qty: int
    order_type: OrderType
    price: Decimal | None
    idempotency_key: str | None

    def __init__(
        self,
        symbol: str,
        side: Side | str,
        qty: int,
        *,
        order_type: OrderType | str = OrderType.LIMIT,
        price: Decimal | int | str | float | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        check_symbol(symbol)
        try:
            parsed_side = Side.parse(side)
        except ValueError as exc:
            raise InvalidOrderError(str(exc)) from None
        check_qty(qty)
        parsed_type = OrderType.parse(order_type)
        parsed_price: Decimal | None
        if parsed_type.requires_price:
            if price is None:
                raise InvalidOrderError(f"a {parsed_type.name} order needs a price")
            parsed_price = check_limit_price(price, symbol=symbol)
        else:
            if price is not None and coerce_price(price) != 0:
                raise InvalidOrderError(f"a {parsed_type.name} order takes no price")
            parsed_price = None
        if idempotency_key is not None:
            if not isinstance(idempotency_key, str) or not idempotency_key.strip():
                raise InvalidOrderError("idempotency_key must be a non-empty string")
            if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
                raise InvalidOrderError(
                    f"idempotency_key must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
                )
            if not idempotency_key.isprintable():
                raise InvalidOrderError("idempotency_key must be printable text")
        object.__setattr__(self, "symbol", symbol)
        object.__setattr__(self, "side", parsed_side)
        object.__setattr__(self, "qty", qty)
        object.__setattr__(self, "order_type", parsed_type)
        object.__setattr__(self, "price", parsed_price)
        object.__setattr__(self, "idempotency_key", idempotency_key)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("OrderRequest is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("OrderRequest is immutable")

    @property
    def fingerprint(self) -> str:
        """A stable string of what defines the order: symbol, side, type, qty, price."""
        price = "" if self.price is None else str(self.price)
        return f"{self.symbol}|{self.side.value}|{self.order_type.value}|{self.qty}|{price}"

    @property
    def price_text(self) -> str:
        """The ``ORD_UNPR`` string KIS expects (``"0"`` for market-type orders)."""
        return "0" if self.price is None else str(int(self.price))

    def replace(self, **changes: Any) -> OrderRequest:
        """Return a copy with ``changes`` applied (validated again)."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return OrderRequest(**fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrderRequest):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self.__slots__))

    def __repr__(self) -> str:
        return (
            f"OrderRequest(symbol={self.symbol!r}, side={self.side.name}, qty={self.qty}, "
            f"order_type={self.order_type.name}, price={self.price!r}, "
            f"idempotency_key={self.idempotency_key!r})"
        )


class Order(KISModel):
    """An order as KIS reports it (inquire-daily-ccld / inquire-psbl-rvsecncl rows)."""

    broker_order_id: str = Field(alias="odno")
    branch_no: str | None = Field(default=None, alias="ord_gno_brno")
    original_order_id: str | None = Field(default=None, alias="orgn_odno")
    symbol: str = Field(alias="pdno")
    name: str | None = Field(default=None, alias="prdt_name")
    side: Side = Field(alias="sll_buy_dvsn_cd")
    order_type: OrderType | None = Field(default=None, alias="ord_dvsn_cd")
    qty: int = Field(alias="ord_qty")
    price: Decimal | None = Field(default=None, alias="ord_unpr")
    filled_qty: int = Field(default=0, alias="tot_ccld_qty")
    avg_fill_price: Decimal | None = Field(default=None, alias="avg_prvs")
    remaining_qty: int = Field(default=0, alias="rmn_qty")
    cancelled_qty: int = Field(default=0, alias="cncl_cfrm_qty")
    rejected_qty: int = Field(default=0, alias="rjct_qty")
    status: OrderStatus = OrderStatus.OPEN
    ordered_at: datetime | None = None


class Position(KISModel):
    """A holding (inquire-balance ``output1`` row)."""

    symbol: str = Field(alias="pdno")
    name: str | None = Field(default=None, alias="prdt_name")
    qty: int = Field(alias="hldg_qty")
    orderable_qty: int = Field(default=0, alias="ord_psbl_qty")
    avg_price: Decimal | None = Field(default=None, alias="pchs_avg_pric")
    current_price: Decimal | None = Field(default=None, alias="prpr")
    purchase_amount: Decimal | None = Field(default=None, alias="pchs_amt")
    eval_amount: Decimal | None = Field(default=None, alias="evlu_amt")
    pnl: Decimal | None = Field(default=None, alias="evlu_pfls_amt")
    pnl_rate: Decimal | None = Field(default=None, alias="evlu_pfls_rt")


class BuyingPower(KISModel):
    """What can be bought (inquire-psbl-order ``output``)."""

    symbol: str | None = None
    orderable_cash: Decimal | None = Field(default=None, alias="ord_psbl_cash")
    max_buy_amount: Decimal | None = Field(default=None, alias="max_buy_amt")
    max_buy_qty: int | None = Field(default=None, alias="max_buy_qty")
    no_margin_buy_amount: Decimal | None = Field(default=None, alias="nrcvb_buy_amt")
    no_margin_buy_qty: int | None = Field(default=None, alias="nrcvb_buy_qty")
    calc_price: Decimal | None = Field(default=None, alias="psbl_qty_calc_unpr")


class AuthenticationToken(KISModel):
    """An OAuth access token. The value is a :class:`SecretStr` and never shown in a repr."""

    value: SecretStr = Field(alias="access_token")
    token_type: str = Field(default="Bearer", alias="token_type")
    expires_at: datetime

    def expires_within(self, seconds: float, *, now: datetime | None = None) -> bool:
        """True when the token expires within ``seconds`` from ``now`` (default: now)."""
        current = now or datetime.now(KST)
        return (self.expires_at - current).total_seconds() <= seconds
