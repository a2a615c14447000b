"""KISBroker: lifecycle and composition of the REST layer, the stream session and the journal.

Wire details live elsewhere: HTTP in :mod:`kis_async.rest`, WebSocket frames in
:mod:`kis_async.stream.protocol`, idempotency in :mod:`kis_async.orders`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from kis_async import calendar
from kis_async.config import KISConfig
from kis_async.errors import InvalidOrderError
from kis_async.history import BarStream, History, LiveBars
from kis_async.models import (
    KST,
    AuthenticationToken,
    BuyingPower,
    Exchange,
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
    Trade,
)
from kis_async.orders.journal import MemoryJournal, OrderJournal
from kis_async.orders.placement import OrderPlacer, PlacementOptions, ReconcileReport
from kis_async.owner import OwnerLoop
from kis_async.port import BrokerPort, Callback, Subscription
from kis_async.rest.auth import TokenStore
from kis_async.rest.client import RestClient
from kis_async.rest.orders import check_paper_venue
from kis_async.rest.ratelimit import Limiter
from kis_async.stream.manager import StreamManager
from kis_async.stream.options import StreamOptions, StreamStatus
from kis_async.telemetry import MetricsRecorder
from kis_async.validation import check_order_id, check_symbol

if TYPE_CHECKING:
    from os import PathLike

    from redis.asyncio import Redis

    from kis_async.gateway.worker import GatewayStreams
    from kis_async.recording import SessionRecorder
    from kis_async.stream.streams import ExecutionStream, OrderBookStream, QuoteStream
    from kis_async.telemetry import Telemetry

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

    A broker belongs to the event loop that opens it (explicitly or by its first call): a
    call from another loop or thread raises ``RuntimeError`` before touching anything. From
    other threads, use ``asyncio.run_coroutine_threadsafe(coro, broker.loop)`` or the
    thread-safe :class:`kis_async.SyncKISBroker`.

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
        clock: the current time (aware) for price history: which day is "today" and which
            bars are complete. Defaults to the system clock; point it at a simulator's clock
            (``sim.clock.now``) when the simulator runs on simulated time.
        rate_limiter: the REST rate limiter; defaults to one for this process built from
            ``config.requests_per_second``. Processes sharing an app key pass a
            :class:`kis_async.gateway.RedisRateLimiter` so together they stay in the budget.
        token_store: where the access token is shared between processes; defaults to the
            disk cache. Pass a :class:`kis_async.gateway.RedisTokenStore` across machines.
        telemetry: a :class:`kis_async.telemetry.Telemetry` to export metrics and spans to
            OpenTelemetry (the ``otel`` extra). :meth:`metrics` works without it.
        gateway: a Redis URL (``redis://host:6379/0``) or ``redis.asyncio.Redis`` client of a
            ``kis-async gateway``: quotes, order books, executions and their status then come
            from the gateway (which holds the one WebSocket session of the app key) instead
            of a socket of this process; REST still goes to KIS directly, with
            ``rate_limiter`` and ``token_store`` defaulting to the shared
            :class:`~kis_async.gateway.RedisRateLimiter` and
            :class:`~kis_async.gateway.RedisTokenStore` on that Redis. A client made from a
            URL is closed by :meth:`aclose`. Needs the ``gateway`` extra.

    Raises:
        TypeError: a wrong type for ``config``, ``rate_limiter``, ``token_store``,
            ``telemetry`` or ``gateway``.
        ValueError: ``gateway`` is a str but not a Redis URL.
    """

    def __init__(
        self,
        config: KISConfig,
        *,
        http_client: httpx.AsyncClient | None = None,
        journal: OrderJournal | None = None,
        stream_options: StreamOptions | None = None,
        placement_options: PlacementOptions | None = None,
        clock: Callable[[], datetime] | None = None,
        rate_limiter: Limiter | None = None,
        token_store: TokenStore | None = None,
        telemetry: Telemetry | None = None,
        gateway: str | Redis | None = None,
    ) -> None:
        if not isinstance(config, KISConfig):
            raise TypeError("KISBroker needs a KISConfig")
        self._gateway_client: Any = None
        self._gateway_owned = False
        if gateway is not None:
            from kis_async.gateway.worker import gateway_client  # noqa: PLC0415 - extra

            self._gateway_client, self._gateway_owned = gateway_client(gateway)
        if rate_limiter is not None and not isinstance(rate_limiter, Limiter):
            raise TypeError(
                "KISBroker rate_limiter must implement kis_async.rest.ratelimit.Limiter"
            )
        if token_store is not None and not isinstance(token_store, TokenStore):
            raise TypeError("KISBroker token_store must implement kis_async.rest.auth.TokenStore")
        self._metrics = MetricsRecorder()
        if telemetry is not None:
            if not callable(getattr(telemetry, "attach", None)):
                raise TypeError("KISBroker telemetry must be a kis_async.telemetry.Telemetry")
            # Only instruments are made here; their callbacks read metrics() at collection.
            telemetry.attach(self._metrics, self.metrics)
        self._config = config
        self._owner = OwnerLoop("KISBroker")
        self._state = _State.UNOPENED
        if self._gateway_client is not None:
            # Workers of one app key share its rate budget and its token through the gateway's
            # Redis unless told otherwise.
            # From the modules, not the package: the package also names Gateway, which uses
            # KISBroker (no import loop, even a lazy one).
            from kis_async.gateway.ratelimit import RedisRateLimiter  # noqa: PLC0415
            from kis_async.gateway.token_store import RedisTokenStore  # noqa: PLC0415

            if rate_limiter is None and config.requests_per_second is not None:
                rate_limiter = RedisRateLimiter.for_config(self._gateway_client, config)
            if token_store is None:
                token_store = RedisTokenStore(self._gateway_client, config)
        self._rest = RestClient(
            config,
            http_client=http_client,
            limiter=rate_limiter,
            token_store=token_store,
            metrics=self._metrics,
        )
        self._journal: OrderJournal = journal if journal is not None else MemoryJournal()
        self._streams: StreamManager | GatewayStreams
        if self._gateway_client is not None:
            from kis_async.gateway.worker import GatewayStreams  # noqa: PLC0415 - extra

            self._streams = GatewayStreams(
                config,
                self._gateway_client,
                options=stream_options,
                lag=self._metrics.lagged,
                fetch_orders=self._rest.get_orders,
            )
        else:
            self._streams = StreamManager(
                config,
                approval_key=self._rest.approval_key,
                fetch_orders=self._rest.get_orders,
                options=stream_options,
                lag=self._metrics.lagged,
            )
        # chk-holiday exists only on the live servers; paper mode uses the offline fallback.
        self._calendar = calendar.MarketCalendar(
            None if config.is_paper else self._rest.get_holidays,
            cache_dir=config.token_cache_dir,
        )
        self._placer = OrderPlacer(
            rest=self._rest,
            journal=self._journal,
            streams=self._streams,
            options=placement_options,
            session_check=self._check_session,
            metrics=self._metrics,
        )
        self._history = History(
            self._rest,
            clock=clock if clock is not None else _system_clock,
            quotes=self.quotes,
            reconnects=lambda: self.stream_status.reconnects,
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
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this broker belongs to (None until it opens or is first used)."""
        return self._owner.loop

    @property
    def journal(self) -> OrderJournal:
        """The idempotency journal."""
        return self._journal

    async def open(self) -> None:
        """Open the broker (idempotent); reconciles a durable journal's unknown orders.

        Raises:
            RuntimeError: the broker was closed, or belongs to another event loop.
        """
        self._owner.check()
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
        """Close streams, the WebSocket session and the HTTP client. Idempotent.

        Raises:
            RuntimeError: called from another event loop than the broker's.
        """
        self._owner.check()
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        try:
            await self._streams.aclose()
        finally:
            try:
                await self._rest.aclose()
            finally:
                try:
                    # Orders in flight now fail with BrokerClosedError; let their tasks mark
                    # the journal before it closes (reconcile() on the next open settles them).
                    await self._placer.drain()
                finally:
                    try:
                        await self._journal.aclose()
                    finally:
                        if self._gateway_owned:
                            await self._gateway_client.aclose()

    def _check_open(self) -> None:
        self._owner.check()
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

    async def get_price(self, symbol: str, *, market: Market | str = Market.KRX) -> PriceSnapshot:
        """Current price of ``symbol`` (inquire-price) on ``market``: KRX (default), NXT or
        UNIFIED (KIS's 통합 view of both venues).

        Raises:
            InvalidOrderError: ``symbol`` is not a KRX code, or ``market`` is unknown.
            PaperModeError: NXT/UNIFIED in paper mode (KIS paper serves KRX only).
        """
        self._check_open()
        check_symbol(symbol)
        return await self._rest.get_price(symbol, market)

    async def get_orderbook(self, symbol: str, *, market: Market | str = Market.KRX) -> OrderBook:
        """Ten-level order book of ``symbol`` (inquire-asking-price-exp-ccn) on ``market``.

        Raises:
            InvalidOrderError: ``symbol`` is not a KRX code, or ``market`` is unknown.
            PaperModeError: NXT/UNIFIED in paper mode.
        """
        self._check_open()
        check_symbol(symbol)
        return await self._rest.get_orderbook(symbol, market)

    # -- calendar ---------------------------------------------------------------------------

    @property
    def market_calendar(self) -> calendar.MarketCalendar:
        """Trading days: KIS's holiday API live (cached on disk, once a day), the offline
        fallback on paper (see :mod:`kis_async.calendar`)."""
        return self._calendar

    async def is_trading_day(self, day: date) -> bool:
        """Whether KRX trades on ``day`` (chk-holiday ``opnd_yn`` live; fallback on paper)."""
        self._check_open()
        return await self._calendar.is_trading_day(day)

    async def trading_days(self, start: date, end: date) -> list[date]:
        """The trading days from ``start`` to ``end``, both included.

        Raises:
            ValueError: ``start`` is after ``end``.
        """
        self._check_open()
        return await self._calendar.trading_days(start, end)

    async def session_at(
        self, when: datetime | None = None, exchange: Exchange | str = Exchange.KRX
    ) -> calendar.Session:
        """The session of ``exchange`` at ``when`` (default now), on KIS's calendar."""
        self._check_open()
        moment = when or datetime.now(KST)
        open_day = await self._calendar.is_trading_day(moment.astimezone(KST).date())
        return calendar.session_at(moment, exchange, trading_day=open_day)

    async def next_open(
        self, exchange: Exchange | str = Exchange.KRX, *, after: datetime | None = None
    ) -> datetime:
        """The start of the next session of ``exchange`` that takes orders (now, when one
        is running), on KIS's calendar for the next three weeks and the fallback after."""
        self._check_open()
        moment = (after or datetime.now(KST)).astimezone(KST)
        first = moment.date()
        known = set(await self._calendar.trading_days(first, first + timedelta(days=21)))
        horizon = first + timedelta(days=21)

        def open_day(day: date) -> bool:
            return day in known if day <= horizon else calendar.fallback_is_trading_day(day)

        return calendar.next_open(exchange, after=moment, is_trading_day=open_day)

    async def _check_session(self, request: OrderRequest) -> None:
        clock = self._placer.options.clock
        moment = clock() if clock is not None else datetime.now(KST)
        open_day = await self._calendar.is_trading_day(moment.astimezone(KST).date())
        calendar.check_session(request, moment, trading_day=open_day)

    async def place_order(self, request: OrderRequest) -> str:
        """Send an order; return its order number (ODNO).

        Without an idempotency key the order is sent once; a timeout after sending raises
        :class:`~kis_async.errors.BrokerTimeoutError` with ``request_sent=True`` and the order
        is not re-sent. With a key, see :class:`~kis_async.orders.placement.OrderPlacer`:
        at most once per key, uncertain outcomes reconciled.

        Raises:
            InvalidOrderError: not an :class:`OrderRequest`, a key conflict, or (with
                ``PlacementOptions(check_session=True)``) a type the venue does not take in
                the session running now.
            PaperModeError: an NXT or SOR order in paper mode.
            OrderRejectedError: KIS refused the order.
            OrderStateUnknownError: the order may be booked and reconciliation could not tell.
        """
        self._check_open()
        if not isinstance(request, OrderRequest):
            raise InvalidOrderError("place_order needs an OrderRequest")
        check_paper_venue(self._config.is_paper, request.exchange)
        return await self._metrics.place(request, self._placer.place(request))

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

    # -- price history ----------------------------------------------------------------------

    def bars(
        self,
        symbol: str,
        interval: Interval | str,
        *,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        adjusted: bool = True,
        market: Market | str = Market.KRX,
        live: bool = False,
    ) -> BarStream:
        """Bars of ``symbol``, oldest first, paging back through KIS's row caps by itself.

        ``1d``/``1w``/``1M``/``1y`` come from the period chart (``adjusted`` picks 수정주가;
        the running period is included as KIS serves it). Minute intervals come from KIS's
        1-minute rows (today's TR for today, the past-day TR for earlier days, one day at a
        time) and only complete bars are yielded; N-minute bars are cut client-side on the
        session-aligned N-minute grid. Minute bars are never adjusted. Every page goes
        through the rate limiter; a failed page raises instead of leaving a gap.

        With ``live=True`` (minute intervals, no ``end``) the iterator goes on with live bars
        after the history, with no gap and no duplicate at the seam (see README, "History").

        Args:
            symbol: a KRX code.
            interval: ``"1m"``, ``"3m"``, ``"5m"``, ``"10m"``, ``"15m"``, ``"30m"``, ``"60m"``,
                ``"1d"``, ``"1w"``, ``"1M"`` or ``"1y"`` (or an :class:`Interval`).
            start: first bar (date or datetime; naive means KST). Default: all KIS has for
                periods, today's session for minutes.
            end: last bar (a date means the whole day). Default: now.
            adjusted: adjusted prices for period bars.
            market: :class:`Market` (``KRX``/``NXT``/``UNIFIED``) or its code.
            live: continue with live bars.

        Raises:
            InvalidOrderError: bad symbol.
            HistoryRequestError: unknown interval or market, ``start`` after ``end``, minute
                bars older than a year, past-day minute bars in paper mode; all before any
                request.
        """
        self._check_open()
        return self._history.bars(
            symbol, interval, start=start, end=end, adjusted=adjusted, market=market, live=live
        )

    def live_bars(
        self,
        symbols: Iterable[str],
        interval: Interval | str = Interval.MINUTE_1,
        *,
        partial: bool = False,
        market: Market | str = Market.KRX,
    ) -> LiveBars:
        """Completed bars built from the trade stream (H0STCNT0) of ``symbols``.

        A bar closes on the first trade of a later interval, or two seconds after its end
        when none comes. A bar that lost prints (conflation, reconnect) or during which the
        WebSocket reconnected is fetched again over REST before it is emitted. With
        ``partial=True`` the forming bar is also yielded on every trade (``bar.partial``).
        """
        self._check_open()
        return self._history.live_bars(symbols, interval, partial=partial, market=market)

    async def recent_trades(self, symbol: str, *, market: Market | str = Market.KRX) -> list[Trade]:
        """The latest 30 trades of ``symbol`` (inquire-ccnl), oldest first.

        Tick-level prints (time, price, quantity, 체결강도) that no bar carries.
        """
        self._check_open()
        return await self._history.recent_trades(symbol, market=market)

    # -- streaming --------------------------------------------------------------------------

    def quotes(self, symbols: Iterable[str], *, market: Market | str = Market.KRX) -> QuoteStream:
        """Real-time trades of ``symbols`` as an async iterator of :class:`Quote`.

        The stream subscribes on first iteration (or ``async with``) and unsubscribes when
        left. A lagging consumer sees the newest quote per symbol (older ones are dropped and
        counted in :attr:`stream_status`).

        Args:
            symbols: KRX codes; each is one registration toward KIS's 41 per session.
            market: KRX (H0STCNT0, the default), NXT (H0NXCNT0) or UNIFIED (H0UNCNT0, KRX
                and NXT together), or its code (``"NX"``).

        Raises:
            InvalidOrderError: no symbols, a bad one, or an unknown market.
            PaperModeError: NXT/UNIFIED in paper mode (KIS paper serves KRX feeds only).
        """
        self._check_open()
        return self._streams.quotes(symbols, market=market)

    def orderbooks(
        self, symbols: Iterable[str], *, market: Market | str = Market.KRX
    ) -> OrderBookStream:
        """Real-time order books of ``symbols`` on ``market`` (H0STASP0 / H0NXASP0 /
        H0UNASP0); conflated and refused like :meth:`quotes`."""
        self._check_open()
        return self._streams.orderbooks(symbols, market=market)

    def executions(
        self,
        *,
        replay: bool = True,
        since: ExecutionCursor | str | None = None,
        group: str | None = None,
        consumer: str | None = None,
    ) -> ExecutionStream:
        """This account's execution events (H0STCNI0 live / H0STCNI9 paper); lossless and
        exactly once per filled quantity for this stream.

        Args:
            replay: start with today's fills so far (the default) or, with False, only what
                comes after the stream opened (for a new ``group``: only later events).
            since: a cursor persisted from :attr:`Execution.cursor` (or its ``str``): start
                with exactly the fills after it, replayed over REST where needed.
            group: with a ``gateway``, read as a consumer of this Redis consumer group: each
                event goes to one consumer of the group and is acknowledged when the next
                one is asked for (or the stream is closed normally after taking it); after a
                crash only the event being handled is delivered again (``replayed=True``).
            consumer: the consumer's name in ``group`` (default: the group name); give each
                process its own name to share a group's events between processes.

        Raises:
            ValueError: the configuration has no ``hts_id``; ``since`` does not parse; a
                ``group`` or ``consumer`` without a gateway, or with ``since``.
        """
        self._check_open()
        if group is None and consumer is None:
            return self._streams.executions(replay=replay, since=since)
        return self._gateway_streams().executions(
            replay=replay, since=since, group=group, consumer=consumer
        )

    async def subscribe_quotes(
        self,
        symbols: Iterable[str],
        callback: Callback[Quote],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
        market: Market | str = Market.KRX,
    ) -> Subscription:
        """Call ``callback`` (sync or async) for each quote of ``symbols``, from its own task.

        A callback that raises is logged and the subscription goes on. ``on_error`` is called
        with a :class:`~kis_async.errors.BrokerConnectionError` if the WebSocket session is
        given up after its reconnect attempts. ``market`` as in :meth:`quotes`.
        """
        self._check_open()
        return await self._streams.subscribe_quotes(
            symbols, callback, on_error=on_error, market=market
        )

    async def subscribe_executions(
        self,
        callback: Callback[Execution],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
        replay: bool = True,
        since: ExecutionCursor | str | None = None,
        group: str | None = None,
        consumer: str | None = None,
    ) -> Subscription:
        """Call ``callback`` (sync or async) for each execution event; lossless, its own
        exactly-once consumer. ``on_error`` as in :meth:`subscribe_quotes`; ``replay``,
        ``since``, ``group`` and ``consumer`` as in :meth:`executions`."""
        self._check_open()
        if group is None and consumer is None:
            return await self._streams.subscribe_executions(
                callback, on_error=on_error, replay=replay, since=since
            )
        return await self._gateway_streams().subscribe_executions(
            callback, on_error=on_error, replay=replay, since=since, group=group, consumer=consumer
        )

    def _gateway_streams(self) -> GatewayStreams:
        streams = self._streams
        if isinstance(streams, StreamManager):
            raise ValueError(
                "execution consumer groups need a gateway: KISBroker(config, gateway=...)"
            )
        return streams

    async def connect_websocket(self) -> None:
        """Open the WebSocket session now instead of on the first subscription (with a
        gateway: check its Redis answers and start following the gateway's status)."""
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

    def metrics(self) -> dict[str, Any]:
        """This broker's figures as plain data (no OpenTelemetry needed).

        Returns:
            ``rest``: ``{tr_id: {outcome: {count, total_ms, mean_ms, max_ms}}}`` per HTTP
            exchange (OAuth endpoints by path; outcome ``ok`` or the error class name);
            ``rate_limit_wait``: ``{count, total_s, mean_s, max_s}`` of passes through the
            rate limiter; ``stream_lag``: the same of the frame-to-consumer lag of sampled
            stream records (seconds); ``orders``: ``{outcome: count}`` (``placed``, ``rejected``,
            ``uncertain``, ``unknown``, ``invalid``, ``cancelled``, ``error``);
            ``tokens_issued``; ``stream``: ``connected``, ``reconnects``,
            ``frames_received``, ``frames_by_tr``, ``quotes_dropped``,
            ``orderbooks_dropped``, ``malformed_frames``, ``queue_depth``. The same figures
            :class:`kis_async.telemetry.Telemetry` exports; nothing secret.
        """
        status = self._streams.status
        figures = self._metrics.snapshot()
        figures["tokens_issued"] = self._rest.auth.issued
        figures["stream"] = {
            "connected": status.connected,
            "reconnects": status.reconnects,
            "frames_received": status.frames_received,
            "frames_by_tr": self._streams.frames_by_tr(),
            "quotes_dropped": status.quotes_dropped,
            "orderbooks_dropped": status.orderbooks_dropped,
            "malformed_frames": status.malformed_frames,
            "queue_depth": self._streams.queue_depth(),
        }
        return figures

    def record(self, path: str | PathLike[str]) -> SessionRecorder:
        """Record every REST exchange and WebSocket frame to ``path`` (gzip JSON lines),
        masked as the traffic log is, while the returned recorder runs.

        Example::

            async with broker.record("session.jsonl.gz"):
                async for quote in broker.quotes(["005930"]):
                    ...

        The recording replays through the simulator (``KISSimulator(replay=path)``). Only
        this broker's traffic is recorded. See :mod:`kis_async.recording` for what is (and is
        never) in the file.
        """
        from kis_async.recording import SessionRecorder  # noqa: PLC0415

        return SessionRecorder(path, source=self._config)


#: The name the design spec uses for the KIS implementation of :class:`BrokerPort`.
KISBrokerAdapter = KISBroker


def _system_clock() -> datetime:
    return datetime.now(KST)
