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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from pydantic import SecretStr

from kis_async.config import mask_account
from kis_async.errors import BrokerConnectionError, BrokerError, InvalidOrderError
from kis_async.history.memory import MemoryBars
from kis_async.history.service import BarStream
from kis_async.mock_ledger import MOCK_MSG_CODES, MockLedger
from kis_async.mock_market import Levels
from kis_async.models import (
    KST,
    AuthenticationToken,
    Bar,
    BuyingPower,
    Execution,
    Interval,
    Market,
    Order,
    OrderBook,
    OrderRequest,
    OrderType,
    Position,
    PriceSnapshot,
    Quote,
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
from kis_async.validation import check_date_range, check_symbol, check_symbols, positive_price

__all__ = ["MOCK_MSG_CODES", "MockBroker", "MockStream", "MockSubscription"]

logger = logging.getLogger("kis_async.mock")


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


def _symbols_arg(symbols: Iterable[str]) -> frozenset[str]:
    return frozenset(check_symbols(symbols))


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
        self._clock = clock or (lambda: datetime.now(KST))
        self._account = mask_account(account_id)
        self._owner = OwnerLoop("MockBroker")
        self._state = _State.UNOPENED
        # The market, orders, holdings and cash; order events go to the execution streams.
        self._ledger = MockLedger(
            cash=cash_dec,
            prices=prices or {},
            positions=positions or {},
            clock=self._clock,
            notify=self._notice,
        )
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
        px = positive_price(price, what="price")
        if volume is not None and (isinstance(volume, bool) or volume < 0):
            raise ValueError("volume must be an int >= 0")
        quote = self._ledger.trade(
            symbol, px, volume=volume, ask=ask, bid=bid, time=time, market=_check_market(market)
        )
        self._hub.publish((feed, symbol), quote)
        self._ledger.fill_resting(symbol, px, volume)
        return quote

    def push_orderbook(
        self,
        symbol: str,
        *,
        asks: Levels,
        bids: Levels,
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
        book = self._ledger.set_book(
            symbol, asks=asks, bids=bids, time=time, market=_check_market(market)
        )
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
        return self._ledger.orders(today, today)

    def _notice(self, event: Execution) -> None:
        self._hub.notice(event)

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

    async def get_price(self, symbol: str, *, market: Market | str = Market.KRX) -> PriceSnapshot:
        """The last pushed price of ``symbol`` with today's statistics.

        The mock has one market per symbol: every ``market`` (KRX, NXT, UNIFIED) sees it.

        Raises:
            InvalidOrderError: ``symbol`` is not a KRX code, or ``market`` is unknown.
            BrokerAPIError: the symbol has no price.
        """
        self._check_open()
        _check_market(market)
        return self._ledger.price_snapshot(symbol)

    async def get_orderbook(self, symbol: str, *, market: Market | str = Market.KRX) -> OrderBook:
        """The last pushed book, or ten levels one tick apart around the last price (the
        same for every ``market``)."""
        self._check_open()
        _check_market(market)
        return self._ledger.orderbook(symbol)

    async def get_orders(
        self, *, start: date | None = None, end: date | None = None
    ) -> list[Order]:
        """Orders placed from ``start`` to ``end`` (default: today), oldest first."""
        self._check_open()
        today = self._clock().astimezone(KST).date()
        first, last = check_date_range(start, end, today=today)
        return self._ledger.orders(first, last)

    async def get_open_orders(self) -> list[Order]:
        """Orders with quantity still open, oldest first."""
        self._check_open()
        return self._ledger.open_orders()

    async def get_cash(self) -> Decimal:
        """The deposit: starting cash minus buys plus sells."""
        self._check_open()
        return self._ledger.cash

    async def get_buying_power(
        self, symbol: str, price: Decimal | int | str | None = None
    ) -> BuyingPower:
        """Deposit not reserved by resting buys, and how many shares it buys at ``price``
        (default: the reference buy price)."""
        self._check_open()
        return self._ledger.buying_power(symbol, price)

    async def get_stock_balance(self) -> list[Position]:
        """Holdings valued at the last price."""
        self._check_open()
        return self._ledger.positions()

    # -- orders -----------------------------------------------------------------------------

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
        order_id = self._ledger.place(request)
        self._requests.append(request)
        if key is not None:
            self._keys[key] = (request.fingerprint, order_id)
        return order_id

    async def cancel_order(self, broker_order_id: str) -> bool:
        """Cancel all remaining quantity.

        Returns:
            True when something was cancelled, False when nothing was left.

        Raises:
            InvalidOrderError: malformed or unknown order number.
        """
        self._check_open()
        return self._ledger.cancel(broker_order_id)

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
        return self._ledger.modify(broker_order_id, qty=qty, price=price, order_type=order_type)

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
