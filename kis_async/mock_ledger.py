"""MockLedger: the in-memory market, account and matching engine behind MockBroker.

:class:`~kis_async.mock.MockBroker` is the :class:`~kis_async.port.BrokerPort` surface
(lifecycle, argument checks, idempotency keys, test controls, streams). Everything it knows
about prices, orders, holdings and cash lives in one :class:`MockLedger`, which applies the fill
model described in :mod:`kis_async.mock`:

* market state per symbol (a :class:`~kis_async.mock_market.SymbolMarket`: base price, last
  trade, the day's statistics, the quote's ask/bid, the last pushed book), from which the
  reference prices of marketable orders come;
* orders: booking (with a match on arrival), resting fills when a print crosses them,
  cancellation and modification;
* the account: cash, holdings at their average price, and what resting orders reserve.

Business-rule failures raise :class:`~kis_async.errors.OrderRejectedError` (or
:class:`~kis_async.errors.BrokerAPIError` for a symbol with no price) carrying a
:data:`MOCK_MSG_CODES` code; every acceptance, fill, modification and cancellation is handed
to the ``notify`` callback as an :class:`~kis_async.models.Execution`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from kis_async.errors import BrokerAPIError, InvalidOrderError, OrderRejectedError
from kis_async.mock_market import Levels, SymbolMarket, market_price, pushed_book
from kis_async.models import (
    KST,
    BuyingPower,
    Execution,
    ExecutionKind,
    Market,
    Order,
    OrderBook,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PriceSnapshot,
    Quote,
    Side,
)
from kis_async.validation import check_order_id, check_qty, check_symbol, check_whole_price

__all__ = ["MOCK_MSG_CODES", "MockLedger"]

#: The msg_cd values MockBroker puts on the errors it raises. They are MockBroker's own codes
#: (``MOCK…``) so a test can never mistake them for a code KIS documented.
MOCK_MSG_CODES: Final[Mapping[str, str]] = {
    "unknown_symbol": "MOCK0001",
    "insufficient_cash": "MOCK0002",
    "insufficient_holdings": "MOCK0003",
    "nothing_to_modify": "MOCK0004",
    "qty_over_remaining": "MOCK0005",
    "no_price": "MOCK0006",
}

_MOCK_BRANCH: Final = "00950"


@dataclass
class _MockOrder:
    order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    qty: int
    price: Decimal | None
    ordered_at: datetime
    original_order_id: str | None = None
    filled_qty: int = 0
    fill_amount: Decimal = Decimal(0)
    cancelled_qty: int = 0
    status: OrderStatus = OrderStatus.OPEN

    @property
    def remaining(self) -> int:
        return self.qty - self.filled_qty - self.cancelled_qty

    def to_model(self) -> Order:
        avg = None
        if self.filled_qty:
            avg = (self.fill_amount / self.filled_qty).quantize(Decimal(1), ROUND_HALF_UP)
        return Order.model_validate(
            {
                "broker_order_id": self.order_id,
                "branch_no": _MOCK_BRANCH,
                "original_order_id": self.original_order_id,
                "symbol": self.symbol,
                "side": self.side,
                "order_type": self.order_type,
                "qty": self.qty,
                "price": self.price if self.price is not None else Decimal(0),
                "filled_qty": self.filled_qty,
                "avg_fill_price": avg,
                "remaining_qty": self.remaining,
                "cancelled_qty": self.cancelled_qty,
                "rejected_qty": 0,
                "status": self.status,
                "ordered_at": self.ordered_at,
            }
        )


@dataclass
class _Holding:
    qty: int
    avg_price: Decimal


def _rejected(reason: str, message: str) -> OrderRejectedError:
    return OrderRejectedError(rt_cd="1", msg_cd=MOCK_MSG_CODES[reason], msg=message)


class MockLedger:
    """Market state, orders, holdings and cash of one :class:`~kis_async.mock.MockBroker`.

    Args:
        cash: the starting deposit (already checked to be a finite number >= 0).
        prices: starting prices (the previous close) by symbol.
        positions: starting holdings, ``{symbol: qty}`` or ``{symbol: (qty, avg_price)}``.
        clock: returns the current time (aware).
        notify: receives every order event (acceptance, fill, modification, cancellation).

    Raises:
        ValueError: a position quantity is not an int > 0.
        InvalidOrderError: a malformed symbol or price.
    """

    def __init__(
        self,
        *,
        cash: Decimal,
        prices: Mapping[str, Decimal | int | str],
        positions: Mapping[str, int | tuple[int, Decimal | int | str]],
        clock: Callable[[], datetime],
        notify: Callable[[Execution], None],
    ) -> None:
        self._cash = cash
        self._clock = clock
        self._notify = notify
        self._markets: dict[str, SymbolMarket] = {}
        for symbol, price in prices.items():
            value = market_price(price, "price")
            self._markets[check_symbol(symbol)] = SymbolMarket(base=value, price=value)
        self._holdings: dict[str, _Holding] = {}
        for symbol, spec in positions.items():
            qty, avg = (spec, None) if isinstance(spec, int) else spec
            if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
                raise ValueError("position quantities must be ints > 0")
            market = self._markets.get(check_symbol(symbol))
            if avg is None:
                avg_price = market.price if market is not None else Decimal(0)
            else:
                avg_price = market_price(avg, "avg_price")
            self._holdings[symbol] = _Holding(qty=qty, avg_price=avg_price)
        self._orders: dict[str, _MockOrder] = {}
        self._next_order_no = 1

    # -- market data ------------------------------------------------------------------------

    def _market(self, symbol: str) -> SymbolMarket:
        market = self._markets.get(symbol)
        if market is None:
            raise BrokerAPIError(
                status_code=200,
                rt_cd="1",
                msg_cd=MOCK_MSG_CODES["unknown_symbol"],
                msg=f"unknown symbol {symbol} (no price pushed)",
            )
        return market

    def trade(
        self,
        symbol: str,
        px: Decimal,
        *,
        volume: int | None,
        ask: Decimal | int | str | None,
        bid: Decimal | int | str | None,
        time: datetime | None,
        market: Market,
    ) -> Quote:
        """Record a print of ``symbol`` (checked) at ``px`` (checked) and return its quote
        (``time`` defaults to the clock).

        Resting orders are not filled here: call :meth:`fill_resting` once the quote is out.
        """
        state = self._markets.setdefault(symbol, SymbolMarket(base=px, price=px))
        return state.trade(
            symbol,
            px,
            volume=volume,
            ask=ask,
            bid=bid,
            time=time,
            clock=self._clock,
            market=market,
        )

    def set_book(
        self, symbol: str, *, asks: Levels, bids: Levels, time: datetime | None, market: Market
    ) -> OrderBook:
        """Replace the book of ``symbol`` (checked); its best ask/bid become the reference
        prices. A new symbol's first price is its best ask (else best bid)."""
        book = pushed_book(
            symbol, asks=asks, bids=bids, time=time, clock=self._clock, market=market
        )
        if symbol not in self._markets:
            first = book.asks[0].price if book.asks else book.bids[0].price
            self._markets[symbol] = SymbolMarket(base=first, price=first)
        self._markets[symbol].book = book
        return book

    def price_snapshot(self, symbol: str) -> PriceSnapshot:
        """The last price of ``symbol`` with today's statistics and price limits.

        Raises:
            InvalidOrderError: ``symbol`` is not a KRX code.
            BrokerAPIError: the symbol has no price.
        """
        return self._market(check_symbol(symbol)).snapshot(symbol)

    def orderbook(self, symbol: str) -> OrderBook:
        """The last pushed book, or ten levels one tick apart around the last price."""
        return self._market(check_symbol(symbol)).orderbook(symbol, self._clock)

    # -- account reads ----------------------------------------------------------------------

    @property
    def cash(self) -> Decimal:
        """The deposit: starting cash minus buys plus sells."""
        return self._cash

    def orders(self, first: date, last: date) -> list[Order]:
        """Orders placed from ``first`` to ``last`` (KST days), oldest first."""
        return [
            o.to_model()
            for o in self._orders.values()
            if first <= o.ordered_at.astimezone(KST).date() <= last
        ]

    def open_orders(self) -> list[Order]:
        """Orders with quantity still open, oldest first."""
        return [o.to_model() for o in self._orders.values() if o.remaining > 0]

    def _reserved_cash(self) -> Decimal:
        return sum(
            (
                o.remaining * (o.price or Decimal(0))
                for o in self._orders.values()
                if o.side is Side.BUY and o.remaining > 0
            ),
            Decimal(0),
        )

    def _reserved_qty(self, symbol: str) -> int:
        return sum(
            o.remaining
            for o in self._orders.values()
            if o.side is Side.SELL and o.symbol == symbol and o.remaining > 0
        )

    def buying_power(self, symbol: str, price: Decimal | int | str | None) -> BuyingPower:
        """Deposit not reserved by resting buys, and how many shares it buys at ``price``
        (default: the reference buy price)."""
        market = self._market(check_symbol(symbol))
        calc = check_whole_price(price) if price is not None else market.reference(Side.BUY)
        orderable = self._cash - self._reserved_cash()
        qty = int(orderable // calc) if calc > 0 else 0
        return BuyingPower.model_validate(
            {
                "symbol": symbol,
                "orderable_cash": orderable,
                "max_buy_amount": calc * qty,
                "max_buy_qty": qty,
                "no_margin_buy_amount": calc * qty,
                "no_margin_buy_qty": qty,
                "calc_price": calc,
            }
        )

    def positions(self) -> list[Position]:
        """Holdings valued at the last price."""
        out: list[Position] = []
        for symbol, holding in self._holdings.items():
            market = self._markets.get(symbol)
            current = market.price if market is not None else holding.avg_price
            purchase = holding.avg_price * holding.qty
            value = current * holding.qty
            pnl = value - purchase
            rate = (
                (pnl / purchase * 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
                if purchase
                else Decimal(0)
            )
            out.append(
                Position.model_validate(
                    {
                        "symbol": symbol,
                        "qty": holding.qty,
                        "orderable_qty": holding.qty - self._reserved_qty(symbol),
                        "avg_price": holding.avg_price.quantize(Decimal("0.0001")),
                        "current_price": current,
                        "purchase_amount": purchase.quantize(Decimal(1), ROUND_HALF_UP),
                        "eval_amount": value,
                        "pnl": pnl.quantize(Decimal(1), ROUND_HALF_UP),
                        "pnl_rate": rate,
                    }
                )
            )
        return out

    # -- orders -----------------------------------------------------------------------------

    def _new_order_id(self) -> str:
        order_id = f"{self._next_order_no:010d}"
        self._next_order_no += 1
        return order_id

    def _event(
        self, kind: ExecutionKind, order: _MockOrder, qty: int, price: Decimal | None
    ) -> None:
        self._notify(
            Execution(
                kind=kind,
                broker_order_id=order.order_id,
                original_order_id=order.original_order_id,
                branch_no=_MOCK_BRANCH,
                symbol=order.symbol,
                side=order.side,
                order_type=order.order_type,
                qty=qty,
                price=price,
                order_qty=order.qty,
                time=self._clock(),
            ),
        )

    def _fill(self, order: _MockOrder, qty: int, price: Decimal) -> None:
        order.filled_qty += qty
        order.fill_amount += price * qty
        amount = price * qty
        holding = self._holdings.get(order.symbol)
        if order.side is Side.BUY:
            self._cash -= amount
            if holding is None:
                self._holdings[order.symbol] = _Holding(qty=qty, avg_price=price)
            else:
                total = holding.avg_price * holding.qty + amount
                holding.qty += qty
                holding.avg_price = total / holding.qty
        else:
            assert holding is not None
            self._cash += amount
            holding.qty -= qty
            if holding.qty == 0:
                del self._holdings[order.symbol]
        if order.remaining == 0:
            order.status = OrderStatus.FILLED
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
        self._event(ExecutionKind.FILLED, order, qty, price)

    def _cancel_rest(self, order: _MockOrder) -> None:
        left = order.remaining
        order.cancelled_qty += left
        # A part-filled order whose rest is cancelled is done: reported as cancelled.
        order.status = OrderStatus.CANCELLED
        self._event(ExecutionKind.CANCELLED, order, left, order.price)

    def _check_affordable(self, market: SymbolMarket, request: OrderRequest) -> None:
        if request.side is Side.BUY:
            unit = request.price or market.reference(Side.BUY)
            need = unit * request.qty
            available = self._cash - self._reserved_cash()
            if need > available:
                raise _rejected(
                    "insufficient_cash",
                    f"insufficient buying power: need {need}, available {available}",
                )
        else:
            holding = self._holdings.get(request.symbol)
            held = holding.qty if holding is not None else 0
            available_qty = held - self._reserved_qty(request.symbol)
            if request.qty > available_qty:
                raise _rejected(
                    "insufficient_holdings",
                    f"insufficient holdings: {request.qty} requested, {available_qty} available",
                )

    def _book(
        self, request: OrderRequest, market: SymbolMarket, original_order_id: str | None = None
    ) -> _MockOrder:
        order = _MockOrder(
            order_id=self._new_order_id(),
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            qty=request.qty,
            price=request.price,
            ordered_at=self._clock(),
            original_order_id=original_order_id,
        )
        self._orders[order.order_id] = order
        kind = ExecutionKind.ACCEPTED if original_order_id is None else ExecutionKind.MODIFIED
        self._event(kind, order, order.qty, order.price)
        self._match_on_arrival(order, market)
        return order

    def _match_on_arrival(self, order: _MockOrder, market: SymbolMarket) -> None:
        reference = market.reference(order.side)
        if order.price is None:
            marketable = True
        elif order.side is Side.BUY:
            marketable = order.price >= reference
        else:
            marketable = order.price <= reference
        if marketable:
            self._fill(order, order.remaining, reference)
        elif order.order_type.is_ioc or order.order_type.is_fok:
            self._cancel_rest(order)

    def fill_resting(self, symbol: str, price: Decimal, volume: int | None) -> None:
        """Fill the resting limit orders a print at ``price`` crosses, oldest first, at their
        limit prices; ``volume`` caps the quantity filled (``None``: unlimited)."""
        budget = volume
        for order in list(self._orders.values()):
            if order.symbol != symbol or order.remaining == 0 or order.price is None:
                continue
            crossed = price <= order.price if order.side is Side.BUY else price >= order.price
            if not crossed:
                continue
            qty = order.remaining if budget is None else min(order.remaining, budget)
            if qty <= 0:
                break
            self._fill(order, qty, order.price)
            if budget is not None:
                budget -= qty

    def place(self, request: OrderRequest) -> str:
        """Book ``request`` (matched on arrival); return its order number.

        Raises:
            OrderRejectedError: unknown symbol, not enough cash or holdings.
        """
        market = self._markets.get(request.symbol)
        if market is None:
            raise _rejected("unknown_symbol", f"unknown symbol {request.symbol}")
        self._check_affordable(market, request)
        return self._book(request, market).order_id

    def _known_order(self, broker_order_id: str) -> _MockOrder:
        order = self._orders.get(check_order_id(broker_order_id).zfill(10))
        if order is None:
            raise InvalidOrderError("broker_order_id is not among today's orders")
        return order

    def cancel(self, broker_order_id: str) -> bool:
        """Cancel all remaining quantity; False when nothing was left.

        Raises:
            InvalidOrderError: malformed or unknown order number.
        """
        order = self._known_order(broker_order_id)
        if order.remaining == 0:
            return False
        self._cancel_rest(order)
        return True

    def modify(
        self,
        broker_order_id: str,
        *,
        qty: int | None,
        price: Decimal | int | str | None,
        order_type: OrderType | None,
    ) -> str:
        """Move ``qty`` (default: all) of the remaining quantity to a new order; return its
        number (see :meth:`kis_async.mock.MockBroker.modify_order`).

        Raises:
            InvalidOrderError: malformed or unknown order number, or bad arguments.
            OrderRejectedError: nothing remains, or ``qty`` exceeds what remains.
        """
        order = self._known_order(broker_order_id)
        if qty is None and price is None and order_type is None:
            raise InvalidOrderError("modify_order needs qty, price or order_type")
        if qty is not None:
            check_qty(qty)
        new_type = order.order_type if order_type is None else OrderType.parse(order_type)
        if price is not None:
            new_price: Decimal | int | str | None = price
        elif new_type.requires_price:
            new_price = order.price
        else:
            new_price = None
        request = OrderRequest(
            order.symbol,
            order.side,
            qty if qty is not None else max(order.remaining, 1),
            order_type=new_type,
            price=new_price,
        )
        if order.remaining == 0:
            raise _rejected("nothing_to_modify", "nothing remains to modify on this order")
        move = request.qty
        if move > order.remaining:
            raise _rejected(
                "qty_over_remaining",
                f"qty {move} exceeds the remaining quantity {order.remaining}",
            )
        market = self._market(order.symbol)
        # The moved quantity stops being reserved by the original before the check.
        order.cancelled_qty += move
        try:
            self._check_affordable(market, request)
        except OrderRejectedError:
            order.cancelled_qty -= move
            raise
        if order.remaining == 0:
            order.status = OrderStatus.CANCELLED
        new = self._book(request, market, original_order_id=order.order_id)
        return new.order_id
