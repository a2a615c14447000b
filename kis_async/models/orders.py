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
    "Exchange",
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


class Exchange(StrEnum):
    """Where an order goes: KIS's ``EXCG_ID_DVSN_CD`` (protocol doc §4.1, §13).

    KIS treats a blank code as KRX; the SDK always sends one explicitly.
    """

    KRX = "KRX"
    """한국거래소."""
    NXT = "NXT"
    """Nextrade, the alternative venue trading since March 2025."""
    SOR = "SOR"
    """KIS's smart order routing: each order goes to KRX or NXT, whichever is better."""

    @classmethod
    def parse(cls, value: Any) -> Exchange:
        """Accept an ``Exchange`` or its name in any case (``"nxt"``).

        Raises:
            ValueError: anything else.
        """
        if isinstance(value, Exchange):
            return value
        text = str(value).strip().upper()
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"unknown exchange {value!r}: expected KRX, NXT or SOR") from None


class OrderType(StrEnum):
    """KIS ``ORD_DVSN`` order divisions of cash orders (protocol doc §4.1, §13).

    Which venue takes which code is :meth:`allowed_on`; which session takes it is
    :func:`kis_async.calendar.allowed_order_types`.
    """

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
    """시간외 단일가: after-hours single-price auction (16:00-18:00 until 2026-09-13); price
    required."""
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
    MID_PRICE = "21"
    """중간가: at the midpoint of the best quotes; an optional price caps it."""
    STOP_LIMIT = "22"
    """스톱지정가: a limit order (``price``) armed when the market reaches ``stop_price``."""
    IOC_MID_PRICE = "23"
    """중간가 IOC."""
    FOK_MID_PRICE = "24"
    """중간가 FOK."""
    NXT_PRE_MARKET_LIMIT = "27"
    """NXT pre-market limit (08:00-08:50; what is left is cancelled at 08:50); price required."""
    NXT_PRE_MARKET_BEST = "28"
    """NXT pre-market 최유리; no price."""
    NXT_PRE_MARKET_PRIORITY = "29"
    """NXT pre-market 최우선; no price."""
    AFTER_MARKET_LIMIT = "41"
    """KRX after-market (16:00-20:00 since 2026-09-14) limit; price required."""
    AFTER_MARKET_IOC_LIMIT = "42"
    """KRX after-market IOC limit; price required."""
    AFTER_MARKET_FOK_LIMIT = "43"
    """KRX after-market FOK limit; price required."""
    AFTER_MARKET_BEST = "44"
    """KRX after-market 최유리; no price."""
    AFTER_MARKET_IOC_BEST = "45"
    """KRX after-market IOC 최유리; no price."""
    AFTER_MARKET_FOK_BEST = "46"
    """KRX after-market FOK 최유리; no price."""
    AFTER_MARKET_PRIORITY = "47"
    """KRX after-market 최우선; no price."""

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
        """True when the order must carry its own limit price."""
        return self in _PRICED

    @property
    def accepts_price(self) -> bool:
        """True when a price may be given (required, or an optional cap as for mid-price)."""
        return self in _PRICED or self in _OPTIONAL_PRICE

    @property
    def is_ioc(self) -> bool:
        """True for immediate-or-cancel types."""
        return self in _IOC

    @property
    def is_fok(self) -> bool:
        """True for fill-or-kill types."""
        return self in _FOK

    @property
    def label(self) -> str:
        """The Korean name KIS shows for the code (``ord_dvsn_name``)."""
        return _LABELS[self]

    def allowed_on(self, exchange: Exchange) -> bool:
        """True when ``exchange`` takes this code (protocol doc §4.1 table and §13).

        Where the sources conflict, both are accepted: stop-limit (22) on NXT is allowed
        (XLSX-MD ✓, kis-trader ✗) and the mid-price codes 21/23/24 on SOR are allowed
        (kis-trader ✓, XLSX-MD —). A code both sources refuse is refused.
        """
        return self not in _REFUSED_BY[exchange]


_PRICED: Final = frozenset(
    {
        OrderType.LIMIT,
        OrderType.CONDITIONAL_LIMIT,
        OrderType.AFTER_HOURS_SINGLE,
        OrderType.IOC_LIMIT,
        OrderType.FOK_LIMIT,
        OrderType.STOP_LIMIT,
        OrderType.NXT_PRE_MARKET_LIMIT,
        OrderType.AFTER_MARKET_LIMIT,
        OrderType.AFTER_MARKET_IOC_LIMIT,
        OrderType.AFTER_MARKET_FOK_LIMIT,
    }
)
# Mid-price orders: KRX lets a midpoint order carry a cap; no source says KIS requires one,
# so the price is optional (the SDK's reading; protocol doc §4.1 lists no price rule).
_OPTIONAL_PRICE: Final = frozenset(
    {OrderType.MID_PRICE, OrderType.IOC_MID_PRICE, OrderType.FOK_MID_PRICE}
)
_IOC: Final = frozenset(
    {
        OrderType.IOC_LIMIT,
        OrderType.IOC_MARKET,
        OrderType.IOC_BEST,
        OrderType.IOC_MID_PRICE,
        OrderType.AFTER_MARKET_IOC_LIMIT,
        OrderType.AFTER_MARKET_IOC_BEST,
    }
)
_FOK: Final = frozenset(
    {
        OrderType.FOK_LIMIT,
        OrderType.FOK_MARKET,
        OrderType.FOK_BEST,
        OrderType.FOK_MID_PRICE,
        OrderType.AFTER_MARKET_FOK_LIMIT,
        OrderType.AFTER_MARKET_FOK_BEST,
    }
)
_NXT_PRE_MARKET: Final = frozenset(
    {
        OrderType.NXT_PRE_MARKET_LIMIT,
        OrderType.NXT_PRE_MARKET_BEST,
        OrderType.NXT_PRE_MARKET_PRIORITY,
    }
)
_KRX_AFTER_MARKET: Final = frozenset(t for t in OrderType if "41" <= t.value <= "47")
_KRX_SPECIAL: Final = frozenset(
    {
        OrderType.CONDITIONAL_LIMIT,
        OrderType.PRE_MARKET_CLOSE,
        OrderType.AFTER_MARKET_CLOSE,
        OrderType.AFTER_HOURS_SINGLE,
    }
)
_REFUSED_BY: Final[dict[Exchange, frozenset[OrderType]]] = {
    Exchange.KRX: _NXT_PRE_MARKET,
    Exchange.NXT: _KRX_SPECIAL | _KRX_AFTER_MARKET | {OrderType.MARKET},
    Exchange.SOR: _KRX_SPECIAL | _KRX_AFTER_MARKET | _NXT_PRE_MARKET | {OrderType.STOP_LIMIT},
}
_LABELS: Final[dict[OrderType, str]] = {
    OrderType.LIMIT: "지정가",
    OrderType.MARKET: "시장가",
    OrderType.CONDITIONAL_LIMIT: "조건부지정가",
    OrderType.BEST_LIMIT: "최유리지정가",
    OrderType.PRIORITY_LIMIT: "최우선지정가",
    OrderType.PRE_MARKET_CLOSE: "장전시간외",
    OrderType.AFTER_MARKET_CLOSE: "장후시간외",
    OrderType.AFTER_HOURS_SINGLE: "시간외단일가",
    OrderType.IOC_LIMIT: "IOC지정가",
    OrderType.FOK_LIMIT: "FOK지정가",
    OrderType.IOC_MARKET: "IOC시장가",
    OrderType.FOK_MARKET: "FOK시장가",
    OrderType.IOC_BEST: "IOC최유리",
    OrderType.FOK_BEST: "FOK최유리",
    OrderType.MID_PRICE: "중간가",
    OrderType.STOP_LIMIT: "스톱지정가",
    OrderType.IOC_MID_PRICE: "중간가IOC",
    OrderType.FOK_MID_PRICE: "중간가FOK",
    OrderType.NXT_PRE_MARKET_LIMIT: "프리마켓지정가",
    OrderType.NXT_PRE_MARKET_BEST: "프리마켓최유리",
    OrderType.NXT_PRE_MARKET_PRIORITY: "프리마켓최우선",
    OrderType.AFTER_MARKET_LIMIT: "애프터마켓지정가",
    OrderType.AFTER_MARKET_IOC_LIMIT: "애프터마켓IOC지정가",
    OrderType.AFTER_MARKET_FOK_LIMIT: "애프터마켓FOK지정가",
    OrderType.AFTER_MARKET_BEST: "애프터마켓최유리",
    OrderType.AFTER_MARKET_IOC_BEST: "애프터마켓IOC최유리",
    OrderType.AFTER_MARKET_FOK_BEST: "애프터마켓FOK최유리",
    OrderType.AFTER_MARKET_PRIORITY: "애프터마켓최우선",
}


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


def check_venue(order_type: OrderType, exchange: Exchange) -> None:
    """Refuse an order type the venue does not take (protocol doc §13).

    Raises:
        InvalidOrderError: naming the rule.
    """
    if order_type.allowed_on(exchange):
        return
    if order_type in _NXT_PRE_MARKET:
        rule = "NXT pre-market types (27-29) are NXT-only"
    elif order_type in _KRX_AFTER_MARKET:
        rule = "KRX after-market types (41-47) are KRX-only"
    elif order_type in _KRX_SPECIAL:
        rule = "conditional-limit and the pre/post-market closing-price types are KRX-only"
    elif order_type is OrderType.MARKET:
        rule = "NXT takes no market orders"
    else:
        rule = "SOR takes no stop-limit orders"
    raise InvalidOrderError(
        f"{exchange.value} does not take {order_type.name} ({order_type.value}) orders: {rule}"
    )


class OrderRequest:
    """A validated order, ready to send.

    Validation happens here, before any network call; every problem raises
    :class:`~kis_async.errors.InvalidOrderError` (also a ``ValueError``) naming the rule.

    Args:
        symbol: 6-character KRX code (``"005930"``) or 7-character ETN code (``"Q500001"``),
            matched as a whole ASCII string (no surrounding whitespace or newline).
        side: :class:`Side` or ``"buy"``/``"sell"``.
        qty: number of shares, an ``int`` from 1 to 99,999,999.
        order_type: :class:`OrderType` (or its code); default :attr:`OrderType.LIMIT`.
        price: required for priced types (limit, conditional, IOC/FOK limit, stop-limit,
            after-hours single, after-market limit, NXT pre-market limit), optional for the
            mid-price types (a cap), refused for the others; on the KRX tick grid and at most
            999,999,999 won (the largest KRX price).
            ``Decimal``, ``int``, ASCII numeric ``str``, or a ``float`` without a fraction.
        exchange: :class:`Exchange` (or its name): KRX (default), NXT or SOR. The venue must
            take ``order_type`` (:meth:`OrderType.allowed_on`).
        stop_price: the trigger of a :attr:`OrderType.STOP_LIMIT` order (``CNDT_PRIC``);
            required for it and refused for every other type.
        idempotency_key: makes the order at-most-once across retries and restarts (see README).

    Every KIS cash order is a day order (no time-in-force field exists), so the day-only
    rule of types 22, 27-29 and 47 holds by construction.
    """

    __slots__ = (
        "exchange",
        "idempotency_key",
        "order_type",
        "price",
        "qty",
        "side",
        "stop_price",
        "symbol",
    )

    symbol: str
    side: Side
    qty: int
    order_type: OrderType
    price: Decimal | None
    exchange: Exchange
    stop_price: Decimal | None
    idempotency_key: str | None

    def __init__(
        self,
        symbol: str,
        side: Side | str,
        qty: int,
        *,
        order_type: OrderType | str = OrderType.LIMIT,
        price: Decimal | int | str | float | None = None,
        exchange: Exchange | str = Exchange.KRX,
        stop_price: Decimal | int | str | float | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        check_symbol(symbol)
        try:
            parsed_side = Side.parse(side)
        except ValueError as exc:
            raise InvalidOrderError(str(exc)) from None
        check_qty(qty)
        parsed_type = OrderType.parse(order_type)
        try:
            parsed_exchange = Exchange.parse(exchange)
        except ValueError as exc:
            raise InvalidOrderError(str(exc)) from None
        check_venue(parsed_type, parsed_exchange)
        parsed_price: Decimal | None = None
        if parsed_type.requires_price:
            if price is None:
                raise InvalidOrderError(f"a {parsed_type.name} order needs a price")
            parsed_price = check_limit_price(price, symbol=symbol)
        elif price is not None:
            coerced = coerce_price(price)
            if parsed_type.accepts_price and coerced != 0:
                parsed_price = check_limit_price(coerced, symbol=symbol)
            elif coerced != 0:
                raise InvalidOrderError(f"a {parsed_type.name} order takes no price")
        parsed_stop: Decimal | None = None
        if parsed_type is OrderType.STOP_LIMIT:
            if stop_price is None:
                raise InvalidOrderError("a STOP_LIMIT order needs a stop_price (CNDT_PRIC)")
            parsed_stop = check_limit_price(stop_price, symbol=symbol, what="stop_price")
        elif stop_price is not None and coerce_price(stop_price, what="stop_price") != 0:
            raise InvalidOrderError(
                f"stop_price is only for STOP_LIMIT orders, not {parsed_type.name}"
            )
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
        object.__setattr__(self, "exchange", parsed_exchange)
        object.__setattr__(self, "stop_price", parsed_stop)
        object.__setattr__(self, "idempotency_key", idempotency_key)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("OrderRequest is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("OrderRequest is immutable")

    @property
    def fingerprint(self) -> str:
        """A stable string of what defines the order: symbol, side, type, qty, price (and the
        venue and stop price when they differ from the defaults, so older journal entries keep
        their fingerprints)."""
        price = "" if self.price is None else str(self.price)
        text = f"{self.symbol}|{self.side.value}|{self.order_type.value}|{self.qty}|{price}"
        if self.exchange is not Exchange.KRX:
            text += f"|{self.exchange.value}"
        if self.stop_price is not None:
            text += f"|stop={self.stop_price}"
        return text

    @property
    def price_text(self) -> str:
        """The ``ORD_UNPR`` string KIS expects (``"0"`` for market-type orders)."""
        return "0" if self.price is None else str(int(self.price))

    @property
    def stop_price_text(self) -> str:
        """The ``CNDT_PRIC`` string (``"0"`` unless a stop-limit order, as kis-trader sends)."""
        return "0" if self.stop_price is None else str(int(self.stop_price))

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
        extra = ""
        if self.exchange is not Exchange.KRX:
            extra += f", exchange={self.exchange.name}"
        if self.stop_price is not None:
            extra += f", stop_price={self.stop_price!r}"
        return (
            f"OrderRequest(symbol={self.symbol!r}, side={self.side.name}, qty={self.qty}, "
            f"order_type={self.order_type.name}, price={self.price!r}{extra}, "
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
    exchange: Exchange | None = Field(default=None, alias="excg_id_dvsn_cd")
    """The venue the order was placed with (KRX, NXT or SOR); None on rows from before NXT."""
    stop_price: Decimal | None = Field(default=None, alias="stpm_cndt_pric")
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
