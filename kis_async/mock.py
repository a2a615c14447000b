"""MockBroker: an in-memory :class:`~kis_async.port.BrokerPort` for testing strategies.

The test drives the market: :meth:`MockBroker.push_quote` prints a trade (and fills resting
orders it crosses), :meth:`MockBroker.push_orderbook` replaces a book. Orders are validated
exactly like :class:`~kis_async.KISBroker` validates them (an :class:`InvalidOrderError`
before anything happens), business rules (cash, holdings, remaining quantity) raise
:class:`OrderRejectedError`, and every acceptance, fill, modification and cancellation is
delivered to the open :meth:`MockBroker.executions` streams.

Example::

    broker = MockBroker(cash=10_000_000, prices={"005930": 70_000})
    async with broker:
        order_id = await broker.place_order(OrderRequest("005930", "buy", 10, price=69_900))
        broker.push_quote("005930", 69_900)          # crosses the resting buy: filled
        assert (await broker.get_stock_balance())[0].qty == 10

Fill model (deliberately simple and deterministic):

* An order is *marketable* on arrival when its limit reaches the reference price (best ask of
  the last pushed book, else the last quote's ``ask``, else the last trade price for a buy;
  the bid side for a sell). Marketable and market-type orders fill at once, in full, at the
  reference price. IOC/FOK orders that are not marketable are cancelled at once.
* A resting limit order fills at its limit price when a later :meth:`~MockBroker.push_quote`
  trades at or through it; with ``volume=`` the fills of one print are capped at that volume
  (oldest order first), which gives partial fills.
* Cash moves by price x quantity (no fees or taxes). Buying power is the deposit minus what
  resting buy orders reserve at their limit price; a market buy needs cash for its quantity at
  the reference price.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, TypeVar

from pydantic import SecretStr

from kis_async.config import mask_account
from kis_async.errors import (
    BrokerAPIError,
    BrokerConnectionError,
    BrokerError,
    InvalidOrderError,
    OrderRejectedError,
)
from kis_async.history.memory import MemoryBars
from kis_async.history.service import BarStream
from kis_async.models import (
    KST,
    AuthenticationToken,
    Bar,
    BuyingPower,
    Execution,
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
    Side,
    tick_size,
)
from kis_async.models.stream import ExecutionCursor
from kis_async.owner import OwnerLoop
from kis_async.port import BrokerPort, Callback, Subscription
from kis_async.stream.executions import ExecutionConsumer
from kis_async.stream.hub import EXECUTIONS_KEY, MemoryHub
from kis_async.stream.options import StreamOptions
from kis_async.stream.streams import (
    CallbackSubscription,
    ConflatingBuffer,
    ExecutionStream,
    LosslessBuffer,
    OrderBookStream,
    QuoteStream,
    StreamHandle,
)
from kis_async.validation import (
    check_date_range,
    check_order_id,
    check_qty,
    check_symbol,
    check_symbols,
    check_whole_price,
    positive_price,
)

__all__ = ["MOCK_MSG_CODES", "MockBroker", "MockStream", "MockSubscription"]

logger = logging.getLogger("kis_async.mock")

T = TypeVar("T")

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
_PRICE_LIMIT_RATE: Final = Decimal("0.30")


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


# -- streams --------------------------------------------------------------------------------

#: MockBroker's stream handles are KISBroker's (the same iteration, queue, conflation,
#: overflow and close code); these names are kept for type annotations in users' tests.
MockStream = StreamHandle
MockSubscription = CallbackSubscription

_QUOTES: Final = "quotes"
_BOOKS: Final = "orderbooks"


def _feed(kind: str, market: Market | str) -> str:
    """The hub key prefix of one market's feed: KRX keeps the plain name; NXT and UNIFIED
    are separate feeds (as H0NX*/H0UN* are separate registrations at KIS)."""
    checked = _check_market(market)
    return kind if checked is Market.KRX else f"{kind}:{checked.name}"


# -- orders and market state ----------------------------------------------------------------


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
class _Market:
    base: Decimal
    price: Decimal
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    cum_volume: int = 0
    cum_turnover: Decimal = Decimal(0)
    ask: Decimal | None = None
    bid: Decimal | None = None
    book: OrderBook | None = None


@dataclass
class _Holding:
    qty: int
    avg_price: Decimal


def _to_price(value: Decimal | int | str, what: str) -> Decimal:
    # Market data pushed by tests: any positive price within KRX's range, fractions allowed.
    return positive_price(value, what=what)


def _symbols_arg(symbols: Iterable[str]) -> frozenset[str]:
    return frozenset(check_symbols(symbols))


def _rejected(reason: str, message: str) -> OrderRejectedError:
    return OrderRejectedError(rt_cd="1", msg_cd=MOCK_MSG_CODES[reason], msg=message)


class MockBroker(BrokerPort):
    """An in-memory broker with the whole :class:`~kis_async.port.BrokerPort` contract.

    Args:
        cash: the starting deposit in won.
        prices: starting prices (treated as the previous close) by symbol. Symbols can also be
            introduced later with :meth:`push_quote`; a symbol with no price is unknown.
        positions: starting holdings, ``{symbol: qty}`` or ``{symbol: (qty, avg_price)}``
            (the average price defaults to the symbol's starting price).
        account_id: the account shown (masked) by :attr:`account`.
        clock: returns the current time (aware); defaults to ``datetime.now(KST)``.
        stream_options: queue sizes of the streams (``quote_queue_size``,
            ``execution_high_water``, ``callback_queue_size``), as for KISBroker.

    Everything is synchronous underneath, so a test needs no sleeps: after pushing data, await
    :meth:`settle` to let every consumer task process it.
    """

    def __init__(
        self,
        *,
        cash: Decimal | int | str = 10_000_000,
        prices: Mapping[str, Decimal | int | str] | None = None,
        positions: Mapping[str, int | tuple[int, Decimal | int | str]] | None = None,
        account_id: str = "5000000001",
        clock: Callable[[], datetime] | None = None,
        stream_options: StreamOptions | None = None,
    ) -> None:
        cash_dec = Decimal(str(cash))
        if not cash_dec.is_finite() or cash_dec < 0:
            raise ValueError("cash must be a number >= 0")
        self._cash = cash_dec
        self._clock = clock or (lambda: datetime.now(KST))
        self._account = mask_account(account_id)
        self._owner = OwnerLoop("MockBroker")
        self._state = _State.UNOPENED
        self._markets: dict[str, _Market] = {}
        for symbol, price in (prices or {}).items():
            value = _to_price(price, "price")
            self._markets[check_symbol(symbol)] = _Market(base=value, price=value)
        self._holdings: dict[str, _Holding] = {}
        for symbol, spec in (positions or {}).items():
            qty, avg = (spec, None) if isinstance(spec, int) else spec
            if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
                raise ValueError("position quantities must be ints > 0")
            market = self._markets.get(check_symbol(symbol))
            if avg is None:
                avg_price = market.price if market is not None else Decimal(0)
            else:
                avg_price = _to_price(avg, "avg_price")
            self._holdings[symbol] = _Holding(qty=qty, avg_price=avg_price)
        self._orders: dict[str, _MockOrder] = {}
        self._next_order_no = 1
        self._keys: dict[str, tuple[str, str]] = {}
        self._requests: list[OrderRequest] = []
        self._fail_next: list[BrokerError] = []
        options = stream_options if stream_options is not None else StreamOptions()
        # In memory a notice and the order rows change together: nothing to verify.
        self._hub = MemoryHub(
            replace(options, gap_fill_verify_window=0),
            orders=self._today_orders,
            today=lambda: self._clock().astimezone(KST).date(),
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the broker (idempotent).

        Raises:
            RuntimeError: the broker was closed, or belongs to another event loop.
        """
        self._owner.check()
        if self._state is _State.CLOSED:
            raise RuntimeError("this MockBroker is closed; create a new one")
        self._state = _State.OPEN

    async def aclose(self) -> None:
        """End every stream and callback subscription. Idempotent."""
        self._owner.check()
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        await self._hub.aclose()

    def _check_open(self) -> None:
        self._owner.check()
        if self._state is _State.CLOSED:
            raise RuntimeError("this MockBroker is closed")
        if self._state is _State.UNOPENED:
            self._state = _State.OPEN

    @property
    def account(self) -> str:
        """The account number, masked."""
        return self._account

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this broker belongs to (None until it opens or is first used)."""
        return self._owner.loop

    def __repr__(self) -> str:
        return f"MockBroker(account={self._account!r}, state={self._state.value!r})"

    # -- test controls ----------------------------------------------------------------------

    def push_quote(
        self,
        symbol: str,
        price: Decimal | int | str,
        *,
        volume: int | None = None,
        ask: Decimal | int | str | None = None,
        bid: Decimal | int | str | None = None,
        time: datetime | None = None,
        market: Market | str = Market.KRX,
    ) -> Quote:
        """Print a trade: update the market, deliver the :class:`Quote`, fill crossed orders.

        Args:
            symbol: the KRX code (a new symbol becomes known, its first price the base price).
            price: the trade price.
            volume: the trade's volume; caps the resting-order fills of this print. ``None``
                means unlimited (resting orders crossed by the price fill in full).
            ask: best ask after the trade (used as the buy reference price).
            bid: best bid after the trade (used as the sell reference price).
            time: the trade time; defaults to the broker clock.
            market: the feed the print goes to (:meth:`quotes` streams of that market). The
                mock keeps one price state per symbol, which every market's print moves.

        Returns:
            The quote as delivered to :meth:`quotes` streams.
        """
        self._check_open()
        symbol = check_symbol(symbol)
        feed = _feed(_QUOTES, market)
        px = _to_price(price, "price")
        if volume is not None and (isinstance(volume, bool) or volume < 0):
            raise ValueError("volume must be an int >= 0")
        state = self._markets.setdefault(symbol, _Market(base=px, price=px))
        state.price = px
        state.open = state.open if state.open is not None else px
        state.high = px if state.high is None else max(state.high, px)
        state.low = px if state.low is None else min(state.low, px)
        state.ask = _to_price(ask, "ask") if ask is not None else None
        state.bid = _to_price(bid, "bid") if bid is not None else None
        traded = volume or 0
        state.cum_volume += traded
        state.cum_turnover += px * traded
        change = px - state.base
        rate = (change / state.base * 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
        vwap = (
            (state.cum_turnover / state.cum_volume).quantize(Decimal("0.01"), ROUND_HALF_UP)
            if state.cum_volume
            else None
        )
        when = time or self._clock()
        raw = {
            "MKSC_SHRN_ISCD": symbol,
            "STCK_CNTG_HOUR": when.strftime("%H%M%S"),
            "STCK_PRPR": str(px),
            "PRDY_VRSS": str(change),
            "PRDY_CTRT": str(rate),
            "CNTG_VOL": str(traded),
            "ACML_VOL": str(state.cum_volume),
        }
        quote = Quote(
            symbol=symbol,
            time=when,
            price=px,
            change=change,
            change_rate=rate,
            volume=volume,
            cum_volume=state.cum_volume,
            cum_turnover=state.cum_turnover,
            open=state.open,
            high=state.high,
            low=state.low,
            ask=state.ask,
            bid=state.bid,
            vwap=vwap,
            side=None,
            raw=raw,
            market=_check_market(market),
        )
        self._hub.publish((feed, symbol), quote)
        self._fill_resting(symbol, px, volume)
        return quote

    def push_orderbook(
        self,
        symbol: str,
        *,
        asks: Sequence[tuple[Decimal | int | str, int]],
        bids: Sequence[tuple[Decimal | int | str, int]],
        time: datetime | None = None,
        market: Market | str = Market.KRX,
    ) -> OrderBook:
        """Replace the book of ``symbol`` and deliver it to :meth:`orderbooks` streams.

        The best ask / best bid become the reference prices for marketable orders.

        Args:
            symbol: the KRX code.
            asks: ``(price, qty)`` levels, lowest price first.
            bids: ``(price, qty)`` levels, highest price first.
            time: the book time; defaults to the broker clock.
            market: the feed the book goes to (:meth:`orderbooks` streams of that market).
        """
        self._check_open()
        symbol = check_symbol(symbol)
        feed = _feed(_BOOKS, market)
        ask_levels = tuple(PriceLevel(_to_price(p, "ask price"), int(q)) for p, q in asks)
        bid_levels = tuple(PriceLevel(_to_price(p, "bid price"), int(q)) for p, q in bids)
        book = OrderBook(
            symbol=symbol,
            time=time or self._clock(),
            asks=ask_levels,
            bids=bid_levels,
            total_ask_qty=sum(level.qty for level in ask_levels),
            total_bid_qty=sum(level.qty for level in bid_levels),
            market=_check_market(market),
        )
        if symbol not in self._markets:
            first = ask_levels[0].price if ask_levels else bid_levels[0].price
            self._markets[symbol] = _Market(base=first, price=first)
        self._markets[symbol].book = book
        self._hub.publish((feed, symbol), book)
        return book

    def fail_streams(self, error: BrokerError | None = None) -> None:
        """End every open stream with ``error`` (default: a
        :class:`~kis_async.errors.BrokerConnectionError`), as KISBroker's streams end when its
        WebSocket session is given up; callback subscriptions get it through ``on_error``.
        Items already pushed are delivered first."""
        failure = error or BrokerConnectionError("MockBroker: streams failed by the test")
        self._hub.fail_all(failure)

    def fail_next_order(self, error: BrokerError) -> None:
        """Make the next :meth:`place_order` raise ``error`` without booking anything."""
        self._fail_next.append(error)

    @property
    def requests(self) -> list[OrderRequest]:
        """Every order request that was booked, oldest first (idempotent repeats excluded)."""
        return list(self._requests)

    async def settle(self, max_wait: float = 5.0) -> None:
        """Wait until every consumer that is iterating a stream has taken all it was sent.

        Streams nobody has started iterating are ignored. A stream that was iterated and then
        left without ``aclose()`` (``break`` out of a bare ``async for``) never becomes idle:
        use ``async with`` so leaving closes it.

        Raises:
            TimeoutError: consumers were still busy after ``max_wait`` seconds; the message
                names the busy streams.
        """
        try:
            async with asyncio.timeout(max_wait):
                stable = 0
                while stable < 3:
                    await asyncio.sleep(0)
                    stable = 0 if self._hub.busy() else stable + 1
        except TimeoutError:
            raise TimeoutError(
                f"MockBroker.settle: still busy after {max_wait}s: "
                f"{', '.join(self._hub.busy())} "
                "(a stream left without aclose()? a consumer blocked elsewhere?)"
            ) from None

    async def wait_subscribed(
        self,
        symbols: Iterable[str] = (),
        *,
        executions: bool = False,
        max_wait: float = 5.0,
        market: Market | str = Market.KRX,
    ) -> None:
        """Wait until a quote stream of ``market`` covers each of ``symbols`` (and an
        execution stream is open when ``executions`` is true). Use it before pushing data a
        consumer task must see.

        Raises:
            TimeoutError: not subscribed within ``max_wait`` seconds.
        """
        wanted = {symbols} if isinstance(symbols, str) else set(symbols)
        feed = _feed(_QUOTES, market)
        hub = self._hub
        async with asyncio.timeout(max_wait):
            while not (
                all(hub.subscribed((feed, s)) for s in wanted)
                and (hub.subscribed(EXECUTIONS_KEY) or not executions)
            ):
                hub.changed.clear()
                await hub.changed.wait()

    # -- streams ----------------------------------------------------------------------------

    def quotes(self, symbols: Iterable[str], *, market: Market | str = Market.KRX) -> QuoteStream:
        """Quotes pushed with :meth:`push_quote` for ``symbols`` on ``market``, in order; a
        consumer that lags by ``quote_queue_size`` quotes sees the newest per symbol, as with
        KISBroker. An unknown market raises InvalidOrderError (the mock has no paper mode)."""
        self._check_open()
        feed = _feed(_QUOTES, market)
        keys = tuple((feed, s) for s in sorted(_symbols_arg(symbols)))
        buffer: ConflatingBuffer[Quote] = ConflatingBuffer(
            self._hub.options.quote_queue_size, _symbol_of, _ignore
        )
        stream = QuoteStream(self._hub, keys, buffer)
        self._hub.open_handle(stream, buffer, keys)
        return stream

    def orderbooks(
        self, symbols: Iterable[str], *, market: Market | str = Market.KRX
    ) -> OrderBookStream:
        """Books pushed with :meth:`push_orderbook` for ``symbols`` on ``market``; conflated
        like quotes."""
        self._check_open()
        feed = _feed(_BOOKS, market)
        keys = tuple((feed, s) for s in sorted(_symbols_arg(symbols)))
        buffer: ConflatingBuffer[OrderBook] = ConflatingBuffer(
            self._hub.options.quote_queue_size, _symbol_of, _ignore
        )
        stream = OrderBookStream(self._hub, keys, buffer)
        self._hub.open_handle(stream, buffer, keys)
        return stream

    def executions(
        self, *, replay: bool = True, since: ExecutionCursor | str | None = None
    ) -> ExecutionStream:
        """Acceptance, fill, modification and cancellation events of this account; lossless,
        exactly once per filled quantity, with ``replay``/``since`` as in KISBroker."""
        self._check_open()
        cursor = ExecutionCursor.parse(since) if isinstance(since, str) else since
        buffer: LosslessBuffer[Execution] = LosslessBuffer(self._hub.options.execution_high_water)
        consumer = ExecutionConsumer(buffer, replay=replay, since=cursor)
        stream = ExecutionStream(self._hub, (EXECUTIONS_KEY,), buffer, sink=consumer)
        self._hub.open_handle(stream, consumer, (EXECUTIONS_KEY,))
        return stream

    async def subscribe_quotes(
        self,
        symbols: Iterable[str],
        callback: Callback[Quote],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
        market: Market | str = Market.KRX,
    ) -> Subscription:
        """Call ``callback`` (sync or async) for each quote of ``symbols`` on ``market``;
        ``on_error`` gets the error if the stream ends on a failure."""
        self._check_open()
        feed = _feed(_QUOTES, market)
        keys = tuple((feed, s) for s in sorted(_symbols_arg(symbols)))
        buffer: ConflatingBuffer[Quote] = ConflatingBuffer(
            self._hub.options.callback_queue_size, _symbol_of, _ignore
        )
        sub = CallbackSubscription(self._hub, keys, buffer, callback, on_error)
        await self._hub.start_subscription(sub)
        return sub

    async def subscribe_executions(
        self,
        callback: Callback[Execution],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
        replay: bool = True,
        since: ExecutionCursor | str | None = None,
    ) -> Subscription:
        """Call ``callback`` (sync or async) for each execution event; ``on_error`` as in
        :meth:`subscribe_quotes`, ``replay``/``since`` as in :meth:`executions`."""
        self._check_open()
        cursor = ExecutionCursor.parse(since) if isinstance(since, str) else since
        buffer: LosslessBuffer[Execution] = LosslessBuffer(
            self._hub.options.execution_high_water, raise_on_overflow=False
        )
        consumer = ExecutionConsumer(buffer, replay=replay, since=cursor)
        sub = CallbackSubscription(
            self._hub, (EXECUTIONS_KEY,), buffer, callback, on_error, sink=consumer
        )
        await self._hub.start_subscription(sub)
        return sub

    def _today_orders(self) -> list[Order]:
        today = self._clock().astimezone(KST).date()
        return [
            o.to_model()
            for o in self._orders.values()
            if o.ordered_at.astimezone(KST).date() == today
        ]

    # -- REST-like reads --------------------------------------------------------------------

    async def authenticate(self) -> AuthenticationToken:
        """Return a dummy token valid for 24 hours."""
        self._check_open()
        return AuthenticationToken.model_validate(
            {
                "value": SecretStr("mock-access-token"),
                "token_type": "Bearer",
                "expires_at": self._clock() + timedelta(hours=24),
            }
        )

    def _market(self, symbol: str) -> _Market:
        market = self._markets.get(symbol)
        if market is None:
            raise BrokerAPIError(
                status_code=200,
                rt_cd="1",
                msg_cd=MOCK_MSG_CODES["unknown_symbol"],
                msg=f"unknown symbol {symbol} (no price pushed)",
            )
        return market

    async def get_price(self, symbol: str, *, market: Market | str = Market.KRX) -> PriceSnapshot:
        """The last pushed price of ``symbol`` with today's statistics.

        The mock has one market per symbol: every ``market`` (KRX, NXT, UNIFIED) sees it.

        Raises:
            InvalidOrderError: ``symbol`` is not a KRX code, or ``market`` is unknown.
            BrokerAPIError: the symbol has no price.
        """
        self._check_open()
        _check_market(market)
        data = self._market(check_symbol(symbol))
        change = data.price - data.base
        tick = tick_size(data.base, symbol=symbol)
        upper = data.base * (1 + _PRICE_LIMIT_RATE)
        lower = data.base * (1 - _PRICE_LIMIT_RATE)
        sign = "2" if change > 0 else "5" if change < 0 else "3"
        return PriceSnapshot.model_validate(
            {
                "symbol": symbol,
                "price": data.price,
                "change": change,
                "change_sign": sign,
                "change_rate": (change / data.base * 100).quantize(Decimal("0.01"), ROUND_HALF_UP),
                "open": data.open,
                "high": data.high,
                "low": data.low,
                "upper_limit": Decimal(int(upper) // tick * tick),
                "lower_limit": Decimal(-(-int(lower) // tick) * tick),
                "base_price": data.base,
                "volume": data.cum_volume,
                "turnover": data.cum_turnover,
                "tick_size": tick_size(data.price, symbol=symbol),
            }
        )

    async def get_orderbook(self, symbol: str, *, market: Market | str = Market.KRX) -> OrderBook:
        """The last pushed book, or ten levels one tick apart around the last price (the
        same for every ``market``)."""
        self._check_open()
        _check_market(market)
        data = self._market(check_symbol(symbol))
        if data.book is not None:
            return data.book
        ask = data.ask or data.price + tick_size(data.price, symbol=symbol)
        bid = data.bid or data.price
        asks: list[PriceLevel] = []
        bids: list[PriceLevel] = []
        for _ in range(10):
            asks.append(PriceLevel(ask, 100))
            ask += tick_size(ask, symbol=symbol)
            bids.append(PriceLevel(bid, 100))
            bid -= tick_size(bid - 1, symbol=symbol)
            if bid <= 0:
                break
        return OrderBook(
            symbol=symbol,
            time=self._clock(),
            asks=tuple(asks),
            bids=tuple(bids),
            total_ask_qty=100 * len(asks),
            total_bid_qty=100 * len(bids),
        )

    async def get_orders(
        self, *, start: date | None = None, end: date | None = None
    ) -> list[Order]:
        """Orders placed from ``start`` to ``end`` (default: today), oldest first."""
        self._check_open()
        today = self._clock().astimezone(KST).date()
        first, last = check_date_range(start, end, today=today)
        return [
            o.to_model()
            for o in self._orders.values()
            if first <= o.ordered_at.astimezone(KST).date() <= last
        ]

    async def get_open_orders(self) -> list[Order]:
        """Orders with quantity still open, oldest first."""
        self._check_open()
        return [o.to_model() for o in self._orders.values() if o.remaining > 0]

    async def get_cash(self) -> Decimal:
        """The deposit: starting cash minus buys plus sells."""
        self._check_open()
        return self._cash

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

    async def get_buying_power(
        self, symbol: str, price: Decimal | int | str | None = None
    ) -> BuyingPower:
        """Deposit not reserved by resting buys, and how many shares it buys at ``price``
        (default: the reference buy price)."""
        self._check_open()
        market = self._market(check_symbol(symbol))
        calc = check_whole_price(price) if price is not None else self._reference(market, Side.BUY)
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

    async def get_stock_balance(self) -> list[Position]:
        """Holdings valued at the last price."""
        self._check_open()
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

    def _reference(self, market: _Market, side: Side) -> Decimal:
        book = market.book
        if side is Side.BUY:
            if book is not None and book.asks:
                return book.asks[0].price
            return market.ask or market.price
        if book is not None and book.bids:
            return book.bids[0].price
        return market.bid or market.price

    def _new_order_id(self) -> str:
        order_id = f"{self._next_order_no:010d}"
        self._next_order_no += 1
        return order_id

    def _event(
        self, kind: ExecutionKind, order: _MockOrder, qty: int, price: Decimal | None
    ) -> None:
        self._hub.notice(
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

    def _check_affordable(self, market: _Market, request: OrderRequest) -> None:
        if request.side is Side.BUY:
            unit = request.price or self._reference(market, Side.BUY)
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
        self, request: OrderRequest, market: _Market, original_order_id: str | None = None
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

    def _match_on_arrival(self, order: _MockOrder, market: _Market) -> None:
        reference = self._reference(market, order.side)
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

    def _fill_resting(self, symbol: str, price: Decimal, volume: int | None) -> None:
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

    async def place_order(self, request: OrderRequest) -> str:
        """Book an order; return its order number (10 digits).

        With ``request.idempotency_key`` the order is booked at most once for that key: a
        repeat with the same order returns the first order number, a repeat with a different
        order raises :class:`InvalidOrderError`.

        Raises:
            InvalidOrderError: not an :class:`OrderRequest`, or an idempotency-key conflict.
            OrderRejectedError: unknown symbol, not enough cash or holdings.
        """
        self._check_open()
        if not isinstance(request, OrderRequest):
            raise InvalidOrderError("place_order needs an OrderRequest")
        key = request.idempotency_key
        if key is not None and key in self._keys:
            fingerprint, order_id = self._keys[key]
            if fingerprint != request.fingerprint:
                raise InvalidOrderError("idempotency_key was already used for a different order")
            return order_id
        if self._fail_next:
            raise self._fail_next.pop(0)
        market = self._markets.get(request.symbol)
        if market is None:
            raise _rejected("unknown_symbol", f"unknown symbol {request.symbol}")
        self._check_affordable(market, request)
        order = self._book(request, market)
        self._requests.append(request)
        if key is not None:
            self._keys[key] = (request.fingerprint, order.order_id)
        return order.order_id

    def _known_order(self, broker_order_id: str) -> _MockOrder:
        order = self._orders.get(check_order_id(broker_order_id).zfill(10))
        if order is None:
            raise InvalidOrderError("broker_order_id is not among today's orders")
        return order

    async def cancel_order(self, broker_order_id: str) -> bool:
        """Cancel all remaining quantity.

        Returns:
            True when something was cancelled, False when nothing was left.

        Raises:
            InvalidOrderError: malformed or unknown order number.
        """
        self._check_open()
        order = self._known_order(broker_order_id)
        if order.remaining == 0:
            return False
        self._cancel_rest(order)
        return True

    async def modify_order(
        self,
        broker_order_id: str,
        *,
        qty: int | None = None,
        price: Decimal | int | str | None = None,
        order_type: OrderType | None = None,
    ) -> str:
        """Move ``qty`` (default: all) of the remaining quantity to a new order with the new
        price and/or type; return the new order number.

        The moved quantity is recorded as cancelled on the original order, which is done when
        nothing remains on it; the new order (``original_order_id`` set) may fill at once.

        Raises:
            InvalidOrderError: malformed or unknown order number, or bad arguments.
            OrderRejectedError: nothing remains, or ``qty`` exceeds what remains.
        """
        self._check_open()
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

    # -- price history (in memory; see kis_async.history.memory) ----------------------------

    @property
    def _history(self) -> MemoryBars:
        # Made on first use: most mocks never serve bars.
        store: MemoryBars | None = self.__dict__.get("_memory_bars")
        if store is None:
            store = MemoryBars(self._clock)
            self.__dict__["_memory_bars"] = store
        return store

    def set_bars(self, symbol: str, bars: Iterable[Bar]) -> None:
        """Give :meth:`bars` / :meth:`get_bars` the bars of ``symbol`` (any intervals; set
        1-minute bars and N-minute requests are folded from them)."""
        self._history.set_bars(check_symbol(symbol), bars)

    def bars(
        self,
        symbol: str,
        interval: Interval | str,
        *,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        adjusted: bool = True,
        market: Market | str = Market.KRX,
    ) -> BarStream:
        """The bars given to :meth:`set_bars`, oldest first, checked like KISBroker's."""
        self._check_open()
        return self._history.bars(
            symbol, interval, start=start, end=end, adjusted=adjusted, market=market
        )


def _check_market(market: object) -> Market:
    try:
        return Market.parse(market)
    except ValueError as exc:
        raise InvalidOrderError(str(exc)) from None


def _symbol_of(value: Quote | OrderBook) -> str:
    return value.symbol


def _ignore(dropped: int) -> None:
    """Conflation drops are counted per stream (``stream.dropped``)."""
