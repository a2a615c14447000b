"""KISBroker: lifecycle and composition of the REST layer, the stream session and the journal.

Wire details live elsewhere: HTTP in :mod:`kis_async.rest`, WebSocket frames in
:mod:`kis_async.stream.protocol`, idempotency in :mod:`kis_async.orders`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from kis_async.config import KISConfig
from kis_async.errors import InvalidOrderError
from kis_async.models import (
    AuthenticationToken,
    BuyingPower,
    Execution,
    Order,
    OrderBook,
    OrderRequest,
    OrderType,
    Position,
    PriceSnapshot,
    Quote,
)
from kis_async.orders.journal import MemoryJournal, OrderJournal
from kis_async.orders.placement import OrderPlacer, PlacementOptions, ReconcileReport
from kis_async.port import BrokerPort, Callback, Subscription
from kis_async.rest.auth import TokenStore
from kis_async.rest.client import RestClient
from kis_async.rest.ratelimit import Limiter
from kis_async.stream.manager import StreamManager, StreamOptions, StreamStatus
from kis_async.validation import check_order_id, check_symbol

if TYPE_CHECKING:
    from kis_async.stream.streams import ExecutionStream, OrderBookStream, QuoteStream

__all__ = ["KISBroker", "KISBrokerAdapter"]

logger = logging.getLogger("kis_async")


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class KISBroker(BrokerPort):
    """An asyncio connection to one KIS account.

    Example::

        async with KISBroker(KISConfig.from_env()) as broker:
            snapshot = await broker.get_price("005930")
            async for quote in broker.quotes(["005930"]):
                strategy.on_quote(quote)

    Args:
        config: credentials, account and endpoints.
        http_client: an ``httpx.AsyncClient`` to use; the broker does not close an injected
            client. By default the broker creates and closes its own.
        journal: the idempotency journal for orders with an ``idempotency_key``; defaults to
            an in-memory :class:`~kis_async.orders.journal.MemoryJournal`. Pass a
            :class:`~kis_async.orders.journal.SQLiteJournal` for at-most-once across restarts.
        stream_options: WebSocket session tuning (reconnect, liveness, queue sizes, cap).
        placement_options: how uncertain order outcomes are reconciled (poll attempts and
            interval, clock tolerance).
        rate_limiter: the REST rate limiter; defaults to one for this process built from
            ``config.requests_per_second``. Processes sharing an app key pass a
            :class:`kis_async.gateway.RedisRateLimiter` so together they stay in the budget.
        token_store: where the access token is shared between processes; defaults to the
            disk cache. Pass a :class:`kis_async.gateway.RedisTokenStore` across machines.
    """

    def __init__(
        self,
        config: KISConfig,
        *,
        http_client: httpx.AsyncClient | None = None,
        journal: OrderJournal | None = None,
        stream_options: StreamOptions | None = None,
        placement_options: PlacementOptions | None = None,
        rate_limiter: Limiter | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        if not isinstance(config, KISConfig):
            raise TypeError("KISBroker needs a KISConfig")
        if rate_limiter is not None and not isinstance(rate_limiter, Limiter):
            raise TypeError(
                "KISBroker rate_limiter must implement kis_async.rest.ratelimit.Limiter"
            )
        if token_store is not None and not isinstance(token_store, TokenStore):
            raise TypeError("KISBroker token_store must implement kis_async.rest.auth.TokenStore")
        self._config = config
        self._state = _State.UNOPENED
        self._rest = RestClient(
            config, http_client=http_client, limiter=rate_limiter, token_store=token_store
        )
        self._journal: OrderJournal = journal if journal is not None else MemoryJournal()
        self._streams = StreamManager(
            config,
            approval_key=self._rest.approval_key,
            fetch_orders=self._rest.get_orders,
            options=stream_options,
        )
        self._placer = OrderPlacer(
            rest=self._rest, journal=self._journal, streams=self._streams, options=placement_options
        )

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def config(self) -> KISConfig:
        """The configuration (its repr hides every secret)."""
        return self._config

    @property
    def account(self) -> str:
        """The account number, masked."""
        return self._config.masked_account

    @property
    def journal(self) -> OrderJournal:
        """The idempotency journal."""
        return self._journal

    async def open(self) -> None:
        """Open the broker (idempotent); reconciles a durable journal's unknown orders.

        Raises:
            RuntimeError: the broker was closed.
        """
        if self._state is _State.CLOSED:
            raise RuntimeError("this KISBroker is closed; create a new one")
        if self._state is _State.OPEN:
            return
        self._state = _State.OPEN
        logger.debug(
            "KISBroker open: mode=%s account=%s rest=%s",
            self._config.mode.value,
            self.account,
            self._config.rest_url,
        )
        await self._journal.open()
        if self._journal.durable:
            await self._placer.reconcile_on_open()

    async def aclose(self) -> None:
        """Close streams, the WebSocket session and the HTTP client. Idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        try:
            await self._streams.aclose()
        finally:
            try:
                await self._rest.aclose()
            finally:
                await self._journal.aclose()

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise RuntimeError("this KISBroker is closed")
        if self._state is _State.UNOPENED:
            # Calls outside ``async with`` are allowed; the broker opens implicitly.
            self._state = _State.OPEN

    def __repr__(self) -> str:
        return (
            f"KISBroker(mode={self._config.mode.value!r}, account={self.account!r}, "
            f"state={self._state.value!r})"
        )

    # -- REST -------------------------------------------------------------------------------

    async def authenticate(self) -> AuthenticationToken:
        """Return a valid access token (cached on disk and in memory; issued at most once)."""
        self._check_open()
        return await self._rest.token()

    async def revoke_token(self) -> None:
        """Revoke the current access token at KIS and forget it (memory and disk cache)."""
        self._check_open()
        await self._rest.revoke_token()

    async def get_price(self, symbol: str) -> PriceSnapshot:
        """Current price of ``symbol`` (inquire-price).

        Raises:
            InvalidOrderError: ``symbol`` is not a KRX code.
        """
        self._check_open()
        check_symbol(symbol)
        return await self._rest.get_price(symbol)

    async def get_orderbook(self, symbol: str) -> OrderBook:
        """Ten-level order book of ``symbol`` (inquire-asking-price-exp-ccn)."""
        self._check_open()
        check_symbol(symbol)
        return await self._rest.get_orderbook(symbol)

    async def place_order(self, request: OrderRequest) -> str:
        """Send an order; return its order number (ODNO).

        Without an idempotency key the order is sent once; a timeout after sending raises
        :class:`~kis_async.errors.BrokerTimeoutError` with ``request_sent=True`` and the order
        is not re-sent. With a key, see :class:`~kis_async.orders.placement.OrderPlacer`:
        at most once per key, uncertain outcomes reconciled.

        Raises:
            InvalidOrderError: not an :class:`OrderRequest`, or a key conflict.
            OrderRejectedError: KIS refused the order.
            OrderStateUnknownError: the order may be booked and reconciliation could not tell.
        """
        self._check_open()
        if not isinstance(request, OrderRequest):
            raise InvalidOrderError("place_order needs an OrderRequest")
        return await self._placer.place(request)

    async def cancel_order(self, broker_order_id: str) -> bool:
        """Cancel all remaining quantity of an order.

        Returns:
            True when KIS accepted the cancel; False when KIS refused it as a business matter
            (nothing left to cancel).

        Raises:
            InvalidOrderError: the order id is malformed or not among today's orders.
        """
        self._check_open()
        return await self._rest.cancel_order(check_order_id(broker_order_id))

    async def modify_order(
        self,
        broker_order_id: str,
        *,
        qty: int | None = None,
        price: Decimal | int | str | None = None,
        order_type: OrderType | None = None,
    ) -> str:
        """Modify an order's remaining quantity, price or type; return the new order number.

        Raises:
            InvalidOrderError: bad arguments, or the order is unknown.
            OrderRejectedError: KIS refused the modification.
        """
        self._check_open()
        return await self._rest.modify_order(
            check_order_id(broker_order_id), qty=qty, price=price, order_type=order_type
        )

    async def get_orders(
        self, *, start: date | None = None, end: date | None = None
    ) -> list[Order]:
        """Orders and fills from ``start`` to ``end`` (default: today), every page."""
        self._check_open()
        return await self._rest.get_orders(start=start, end=end)

    async def get_open_orders(self) -> list[Order]:
        """Orders with quantity still open (inquire-psbl-rvsecncl live; daily orders on paper)."""
        self._check_open()
        return await self._rest.get_open_orders()

    async def get_cash(self) -> Decimal:
        """Deposit (``dnca_tot_amt`` of inquire-balance)."""
        self._check_open()
        return await self._rest.get_cash()

    async def get_buying_power(
        self, symbol: str, price: Decimal | int | str | None = None
    ) -> BuyingPower:
        """Orderable cash and maximum buy quantity (inquire-psbl-order)."""
        self._check_open()
        check_symbol(symbol)
        return await self._rest.get_buying_power(symbol, price)

    async def get_stock_balance(self) -> list[Position]:
        """Holdings (inquire-balance ``output1``), every page."""
        self._check_open()
        return await self._rest.get_stock_balance()

    async def reconcile(self) -> ReconcileReport:
        """Settle journal entries whose outcome is unknown, against today's orders."""
        self._check_open()
        return await self._placer.reconcile()

    # -- streaming --------------------------------------------------------------------------

    def quotes(self, symbols: Iterable[str]) -> QuoteStream:
        """Real-time trades (H0STCNT0) of ``symbols`` as an async iterator of :class:`Quote`.

        The stream subscribes on first iteration (or ``async with``) and unsubscribes when
        left. A lagging consumer sees the newest quote per symbol (older ones are dropped and
        counted in :attr:`stream_status`).
        """
        self._check_open()
        return self._streams.quotes(symbols)

    def orderbooks(self, symbols: Iterable[str]) -> OrderBookStream:
        """Real-time order books (H0STASP0) of ``symbols``; conflated like :meth:`quotes`."""
        self._check_open()
        return self._streams.orderbooks(symbols)

    def executions(self) -> ExecutionStream:
        """This account's execution notices (H0STCNI0 live / H0STCNI9 paper); lossless.

        Raises:
            ValueError: the configuration has no ``hts_id``.
        """
        self._check_open()
        return self._streams.executions()

    async def subscribe_quotes(
        self,
        symbols: Iterable[str],
        callback: Callback[Quote],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> Subscription:
        """Call ``callback`` (sync or async) for each quote of ``symbols``, from its own task.

        A callback that raises is logged and the subscription goes on. ``on_error`` is called
        with a :class:`~kis_async.errors.BrokerConnectionError` if the WebSocket session is
        given up after its reconnect attempts.
        """
        self._check_open()
        return await self._streams.subscribe_quotes(symbols, callback, on_error=on_error)

    async def subscribe_executions(
        self,
        callback: Callback[Execution],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> Subscription:
        """Call ``callback`` (sync or async) for each execution notice; lossless. ``on_error``
        as in :meth:`subscribe_quotes`."""
        self._check_open()
        return await self._streams.subscribe_executions(callback, on_error=on_error)

    async def connect_websocket(self) -> None:
        """Open the WebSocket session now instead of on the first subscription."""
        self._check_open()
        await self._streams.connect()

    async def disconnect_websocket(self) -> None:
        """Close the WebSocket session; open streams end."""
        self._check_open()
        await self._streams.disconnect()

    @property
    def stream_status(self) -> StreamStatus:
        """Read-only status of the WebSocket session (connected, reconnects, counters)."""
        return self._streams.status


#: The name the design spec uses for the KIS implementation of :class:`BrokerPort`.
KISBrokerAdapter = KISBroker
