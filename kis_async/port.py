"""BrokerPort: the abstract async contract that service code (OrderService, strategies) uses.

:class:`~kis_async.KISBroker` implements it against KIS; :class:`~kis_async.MockBroker`
implements it in memory for tests. Code written against the port runs on either.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from kis_async.models import (
    AuthenticationToken,
    Bar,
    BuyingPower,
    Execution,
    ExecutionCursor,
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

__all__ = ["AsyncClosing", "BrokerPort", "Callback", "Stream", "Subscription"]

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")

#: A callback for the callback form of subscriptions: sync or async.
Callback = Callable[[T], Awaitable[Any] | Any]


@runtime_checkable
class Stream(Protocol[T_co]):
    """A live stream handle: an async iterator, an async context manager, and ``aclose()``.

    Leaving the ``async with`` block or calling ``aclose()`` unsubscribes at once.
    """

    def __aiter__(self) -> AsyncIterator[T_co]: ...

    async def __anext__(self) -> T_co: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def aclose(self) -> None:
        """End the stream and unsubscribe at once. Idempotent."""


@runtime_checkable
class Subscription(Protocol):
    """The handle of a callback subscription."""

    async def aclose(self) -> None:
        """Stop the callbacks and unsubscribe. Idempotent."""


class AsyncClosing(abc.ABC):
    """Base of the library's async resources: ``async with`` ends in :meth:`aclose`.

    ``__aenter__`` returns the object itself; subclasses that must start something override
    it (and keep returning ``self``).
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release what the object holds. Idempotent."""


class BrokerPort(AsyncClosing):
    """The async contract of a broker connection.

    Use it as an async context manager (``async with broker:``); ``aclose()`` is idempotent and
    any call after it raises ``RuntimeError``.
    """

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    @abc.abstractmethod
    async def open(self) -> None:
        """Prepare the connection (idempotent). ``async with`` calls it."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close everything the broker owns: streams, sockets, HTTP client. Idempotent."""

    @property
    @abc.abstractmethod
    def account(self) -> str:
        """The account in a masked, log-safe form."""

    # -- REST -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def authenticate(self) -> AuthenticationToken:
        """Return a valid access token, issuing one only when no cached token is usable."""

    @abc.abstractmethod
    async def get_price(self, symbol: str, *, market: Market | str = Market.KRX) -> PriceSnapshot:
        """Current price of ``symbol`` on ``market`` (KRX, NXT or UNIFIED)."""

    @abc.abstractmethod
    async def get_orderbook(self, symbol: str, *, market: Market | str = Market.KRX) -> OrderBook:
        """Ten-level order book of ``symbol`` on ``market``."""

    async def is_trading_day(self, day: date) -> bool:
        """Whether KRX trades on ``day``. The default answers from the offline calendar
        (:func:`kis_async.calendar.fallback_is_trading_day`); :class:`~kis_async.KISBroker`
        asks KIS's holiday API in live mode."""
        from kis_async.calendar import fallback_is_trading_day  # noqa: PLC0415 - no cycle

        return fallback_is_trading_day(day)

    async def trading_days(self, start: date, end: date) -> list[date]:
        """The trading days from ``start`` to ``end``, both included.

        Raises:
            ValueError: ``start`` is after ``end``.
        """
        if start > end:
            raise ValueError("trading_days: start is after end")
        days: list[date] = []
        day = start
        while day <= end:
            if await self.is_trading_day(day):
                days.append(day)
            day += timedelta(days=1)
        return days

    @abc.abstractmethod
    async def place_order(self, request: OrderRequest) -> str:
        """Send an order and return KIS's order number (ODNO).

        With ``request.idempotency_key`` set, the order is sent at most once for that key.
        """

    @abc.abstractmethod
    async def cancel_order(self, broker_order_id: str) -> bool:
        """Cancel all remaining quantity. True when accepted, False when nothing was left."""

    @abc.abstractmethod
    async def modify_order(
        self,
        broker_order_id: str,
        *,
        qty: int | None = None,
        price: Decimal | int | str | None = None,
        order_type: OrderType | None = None,
    ) -> str:
        """Modify the remaining quantity and/or price; return the new order number."""

    @abc.abstractmethod
    async def get_orders(
        self, *, start: date | None = None, end: date | None = None
    ) -> list[Order]:
        """Orders and fills between ``start`` and ``end`` (default: today), all pages."""

    @abc.abstractmethod
    async def get_open_orders(self) -> list[Order]:
        """Orders with quantity still open."""

    @abc.abstractmethod
    async def get_cash(self) -> Decimal:
        """Deposit (예수금 총액, ``dnca_tot_amt``)."""

    @abc.abstractmethod
    async def get_buying_power(
        self, symbol: str, price: Decimal | int | str | None = None
    ) -> BuyingPower:
        """Orderable cash and the maximum buy quantity for ``symbol`` at ``price``."""

    @abc.abstractmethod
    async def get_stock_balance(self) -> list[Position]:
        """Holdings, all pages."""

    # -- price history ----------------------------------------------------------------------

    @abc.abstractmethod
    def bars(
        self,
        symbol: str,
        interval: Interval | str,
        *,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        adjusted: bool = True,
        market: Market | str = Market.KRX,
    ) -> Stream[Bar]:
        """Bars of ``symbol`` from ``start`` to ``end``, oldest first (see KISBroker.bars)."""

    async def get_bars(
        self,
        symbol: str,
        interval: Interval | str,
        *,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        adjusted: bool = True,
        market: Market | str = Market.KRX,
    ) -> list[Bar]:
        """:meth:`bars` collected into a list, oldest first (one implementation for every
        broker: it iterates :meth:`bars`)."""
        async with self.bars(
            symbol, interval, start=start, end=end, adjusted=adjusted, market=market
        ) as stream:
            return [bar async for bar in stream]

    # -- streaming --------------------------------------------------------------------------

    @abc.abstractmethod
    def quotes(self, symbols: Iterable[str], *, market: Market | str = Market.KRX) -> Stream[Quote]:
        """Real-time trades of ``symbols`` on ``market`` (KRX, NXT or UNIFIED); conflates to
        the newest per symbol when lagging."""

    @abc.abstractmethod
    def orderbooks(
        self, symbols: Iterable[str], *, market: Market | str = Market.KRX
    ) -> Stream[OrderBook]:
        """Real-time order books of ``symbols`` on ``market``; conflates like :meth:`quotes`."""

    @abc.abstractmethod
    def executions(
        self, *, replay: bool = True, since: ExecutionCursor | str | None = None
    ) -> Stream[Execution]:
        """This account's execution events; lossless, exactly once per filled quantity.

        Each stream is its own consumer. With ``replay`` (the default) it starts with today's
        fills so far; with ``since`` (a persisted :attr:`Execution.cursor`) exactly with the
        fills after that point. Every event carries the stream's ``cursor`` after it.
        """

    @abc.abstractmethod
    async def subscribe_quotes(
        self,
        symbols: Iterable[str],
        callback: Callback[Quote],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
        market: Market | str = Market.KRX,
    ) -> Subscription:
        """Call ``callback`` (sync or async) for every quote of ``symbols`` on ``market``.

        ``on_error`` is called with the error when the subscription ends on a failure (the
        session was given up after its reconnect attempts).
        """

    @abc.abstractmethod
    async def subscribe_executions(
        self,
        callback: Callback[Execution],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
        replay: bool = True,
        since: ExecutionCursor | str | None = None,
    ) -> Subscription:
        """Call ``callback`` (sync or async) for every execution event; ``on_error`` as in
        :meth:`subscribe_quotes`, ``replay`` and ``since`` as in :meth:`executions`."""
