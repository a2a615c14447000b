"""RestClient: the KIS REST API for one account, composed from the pieces of this package.

Every authorized call goes through the same path::

    retry policy (read or order)            rest.retry
      └─ token (memory / disk / issue)      rest.auth
         └─ rate limiter (orders first)     rest.ratelimit
            └─ one HTTP request             rest.http (the error boundary)
         └─ EGW00121/122/123: invalidate, refresh once, send once more
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import httpx

from kis_async.config import KISConfig
from kis_async.errors import (
    TOKEN_EXPIRED_MSG_CODES,
    AuthenticationError,
    BrokerClosedError,
    BrokerError,
    InvalidOrderError,
    OrderRejectedError,
    PaperModeError,
)
from kis_async.models import (
    KST,
    AuthenticationToken,
    BuyingPower,
    Exchange,
    Market,
    Order,
    OrderBook,
    OrderRequest,
    OrderType,
    Position,
    PriceSnapshot,
    Side,
)
from kis_async.models.orders import check_venue
from kis_async.rest import account
from kis_async.rest import market as quotations
from kis_async.rest.auth import TokenManager, TokenStore
from kis_async.rest.http import (
    DEFAULT_MAX_PAGES,
    KISResponse,
    Transport,
    build_headers,
    decode_output,
    get_ci,
    paginate,
    rows,
)
from kis_async.rest.orders import (
    OriginalOrder,
    PlacedOrder,
    cancel_body,
    check_paper_venue,
    modify_body,
    order_cash_body,
    parse_placed,
    validate_modify,
)
from kis_async.rest.ratelimit import Limiter, RateLimiter
from kis_async.rest.retry import call_with_retry
from kis_async.rest.trids import PATHS, Api, tr_id
from kis_async.traffic import enable_traffic_logging
from kis_async.validation import check_date_range, check_whole_price, normalize_order_id

if TYPE_CHECKING:
    from kis_async.telemetry import MetricsRecorder

__all__ = ["PlacedOrder", "RestClient"]

logger = logging.getLogger("kis_async.rest")

_GET: Final = "GET"
_POST: Final = "POST"


@dataclass(frozen=True, slots=True)
class _OrderMemo:
    """What we know about an order without asking KIS (branch is needed to cancel/modify)."""

    branch_no: str | None = None
    symbol: str | None = None
    order_type: OrderType | None = None
    price: Decimal | None = None
    exchange: Exchange | None = None
    stop_price: Decimal | None = None

    @classmethod
    def of(cls, order: Order) -> _OrderMemo:
        """What an order row of today's orders tells."""
        return cls(
            branch_no=order.branch_no,
            symbol=order.symbol,
            order_type=order.order_type,
            price=order.price,
            # A blank venue is a row from before NXT, i.e. KRX (KIS's default for blank).
            exchange=order.exchange or Exchange.KRX,
            stop_price=order.stop_price,
        )

    def original(self) -> OriginalOrder:
        """The terms a revise/cancel repeats."""
        assert self.branch_no is not None
        return OriginalOrder(
            branch_no=self.branch_no,
            exchange=self.exchange or Exchange.KRX,
            order_type=self.order_type,
            price=self.price,
            stop_price=self.stop_price,
        )


class _AuthFailedError(Exception):
    """Carries a token failure through the call's retry loop without being retried again
    (the token call has its own retries)."""

    def __init__(self, error: BrokerError) -> None:
        super().__init__(str(error))
        self.error = error


def _not_sent(doing: str) -> BrokerClosedError:
    """The call's own request was not sent when the client closed during a helper request."""
    return BrokerClosedError(
        f"the KIS client was closed while {doing}; the request was not sent",
        request_sent=False,
    )


class _QueueClock:
    """Adds up the time one call spends queued in the rate limiter (across its attempts), so
    the retry time budget counts only time spent trying."""

    __slots__ = ("_metrics", "_queued")

    def __init__(self, metrics: MetricsRecorder | None = None) -> None:
        self._queued = 0.0
        self._metrics = metrics

    async def acquire(self, limiter: Limiter, *, priority: bool) -> None:
        if not limiter.enabled:
            return  # nothing to queue for: skip the clock reads and the await
        started = time.monotonic()
        try:
            await limiter.acquire(priority=priority)
        finally:
            waited = time.monotonic() - started
            self._queued += waited
            if self._metrics is not None:
                self._metrics.rate_waited(waited)

    def total(self) -> float:
        return self._queued


class RestClient:
    """Async client of the KIS REST API for one account.

    Args:
        config: credentials, account, endpoints, limits.
        http_client: an ``httpx.AsyncClient`` to use instead of creating one; it is not
            closed by :meth:`aclose`.
        limiter: a rate limiter to use instead of one built from
            ``config.requests_per_second`` (tests inject a fake clock this way; processes
            sharing one app key share a :class:`kis_async.gateway.RedisRateLimiter`).
        token_store: where the access token is kept between processes instead of the disk
            cache of ``config.token_cache_dir`` (e.g. :class:`kis_async.gateway.RedisTokenStore`).
        issue_wait_max: the longest EGW00133 wait (one issuance a minute) accepted, seconds.
        sleep: the coroutine used for the EGW00133 wait (injectable for tests).
        now: the wall clock for token expiry (injectable for tests).
        max_pages: pages followed at most by a paged query.
        metrics: records REST latency and rate-limiter waits (``broker.metrics()``).
    """

    def __init__(
        self,
        config: KISConfig,
        *,
        http_client: httpx.AsyncClient | None = None,
        limiter: Limiter | None = None,
        token_store: TokenStore | None = None,
        issue_wait_max: float = 90.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        now: Callable[[], datetime] | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
        metrics: MetricsRecorder | None = None,
    ) -> None:
        self._config = config
        self._metrics = metrics
        enable_traffic_logging(config)
        self._owns_client = http_client is None
        self._http = (
            http_client if http_client is not None else httpx.AsyncClient(timeout=config.timeout)
        )
        self._closed = False
        self._transport = Transport(self._http, config, metrics=metrics)
        self._limiter: Limiter = (
            limiter if limiter is not None else RateLimiter(config.requests_per_second)
        )
        self._max_pages = max_pages
        kwargs: dict[str, Any] = {
            "sleep": sleep,
            "issue_wait_max": issue_wait_max,
            "store": token_store,
        }
        if now is not None:
            kwargs["now"] = now
        self._auth = TokenManager(config, self._post_unauthenticated, **kwargs)
        self._orders: dict[str, _OrderMemo] = {}

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def config(self) -> KISConfig:
        """The configuration."""
        return self._config

    @property
    def auth(self) -> TokenManager:
        """The token manager (token, approval key, hashkey)."""
        return self._auth

    @property
    def limiter(self) -> Limiter:
        """The rate limiter."""
        return self._limiter

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._http.aclose()

    def __repr__(self) -> str:
        return (
            f"RestClient(mode={self._config.mode.value!r}, "
            f"account={self._config.masked_account!r}, rest_url={self._config.rest_url!r})"
        )

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has been called."""
        return self._closed

    def _check_open(self) -> None:
        # A typed error, not a bare RuntimeError: the caller may be a call that was already
        # in flight when the broker closed (an order being reconciled, a retry).
        if self._closed:
            raise BrokerClosedError("this KIS client is closed; not sent", request_sent=False)

    async def _post_unauthenticated(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """OAuth / hashkey POST: no token, read retry policy, ahead of queued reads."""
        self._check_open()

        queue = _QueueClock(self._metrics)

        async def attempt() -> Mapping[str, Any]:
            await queue.acquire(self._limiter, priority=True)
            self._check_open()
            response = await self._transport.send(
                _POST, path, headers=build_headers(self._config), json_body=body
            )
            return response.body

        return await call_with_retry(
            attempt, order=False, max_retries=self._config.max_retries, queued=queue.total
        )

    async def _token_for_call(self) -> AuthenticationToken:
        try:
            return await self._auth.token()
        except BrokerClosedError as exc:
            # The tokenP request was cut off, not this call's own request.
            raise _AuthFailedError(_not_sent("getting a token")) from exc
        except BrokerError as exc:
            raise _AuthFailedError(exc) from exc

    async def _call(
        self,
        method: str,
        path: str,
        *,
        tr: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        order: bool = False,
        tr_cont: str = "",
        hashkey: str | None = None,
    ) -> KISResponse:
        """One authorized call with retries, rate limiting and one token refresh."""
        self._check_open()
        queue = _QueueClock(self._metrics)

        async def attempt() -> KISResponse:
            token = await self._token_for_call()
            refreshed = False
            while True:
                await queue.acquire(self._limiter, priority=order)
                self._check_open()
                headers = build_headers(
                    self._config,
                    tr_id=tr,
                    token=token.value.get_secret_value(),
                    tr_cont=tr_cont,
                    hashkey=hashkey,
                )
                try:
                    return await self._transport.send(
                        method,
                        path,
                        headers=headers,
                        tr_id=tr,
                        params=params,
                        json_body=body,
                        is_order=order,
                    )
                except AuthenticationError as exc:
                    if refreshed or exc.msg_cd not in TOKEN_EXPIRED_MSG_CODES:
                        raise
                    # KIS refused the token at its gateway, so the request itself (even an
                    # order) went nowhere: refresh once and send once more.
                    if not await self._auth.invalidate(token, exc.msg_cd):
                        raise
                    logger.info("%s: token refused (%s); refreshing once", tr, exc.msg_cd)
                    token = await self._token_for_call()
                    refreshed = True

        failure: BrokerError
        try:
            return await call_with_retry(
                attempt, order=order, max_retries=self._config.max_retries, queued=queue.total
            )
        except _AuthFailedError as wrapped:
            failure = wrapped.error
        raise failure

    async def _pages(
        self, api: Api, params: Callable[[str, str], Mapping[str, str]]
    ) -> list[KISResponse]:
        tr = tr_id(api, self._config.mode)

        async def fetch(tr_cont: str, fk: str, nk: str) -> KISResponse:
            return await self._call(_GET, PATHS[api], tr=tr, params=params(fk, nk), tr_cont=tr_cont)

        return await paginate(fetch, max_pages=self._max_pages)

    # -- auth -------------------------------------------------------------------------------

    async def token(self) -> AuthenticationToken:
        """A valid access token (memory, disk cache, or one issuance; single flight)."""
        self._check_open()
        return await self._auth.token()

    async def revoke_token(self) -> None:
        """Revoke the current token at KIS and forget it (memory and disk)."""
        self._check_open()
        await self._auth.revoke()

    async def approval_key(self) -> str:
        """The WebSocket approval key (cached for its 24-hour lifetime; single flight)."""
        self._check_open()
        return await self._auth.approval_key()

    # -- quotations -------------------------------------------------------------------------

    async def get_price(self, symbol: str, market: Market | str = Market.KRX) -> PriceSnapshot:
        """Current price of ``symbol`` on ``market`` (inquire-price).

        Raises:
            PaperModeError: NXT/UNIFIED in paper mode (before any request).
        """
        where = quotations.check_market(self._config, market)
        tr = tr_id(Api.PRICE, self._config.mode)
        response = await self._call(
            _GET, PATHS[Api.PRICE], tr=tr, params=quotations.quote_params(symbol, where)
        )
        return decode_output(
            lambda: quotations.parse_price(response.body, symbol), tr_id=tr, what="inquire-price"
        )

    async def get_orderbook(self, symbol: str, market: Market | str = Market.KRX) -> OrderBook:
        """Ten-level order book of ``symbol`` on ``market`` (inquire-asking-price-exp-ccn).

        Raises:
            PaperModeError: NXT/UNIFIED in paper mode (before any request).
        """
        where = quotations.check_market(self._config, market)
        tr = tr_id(Api.ORDERBOOK, self._config.mode)
        response = await self._call(
            _GET, PATHS[Api.ORDERBOOK], tr=tr, params=quotations.quote_params(symbol, where)
        )
        return decode_output(
            lambda: quotations.parse_orderbook(response.body, symbol),
            tr_id=tr,
            what="inquire-asking-price-exp-ccn",
        )

    async def get_quotation(self, api: Api, params: Mapping[str, str]) -> KISResponse:
        """One GET of a quotation API, inside the rate limiter and the read retry policy
        (the chart pager in :mod:`kis_async.history` calls this once per page).

        Raises:
            UnsupportedInPaperError: ``api`` has no paper TR id.
        """
        self._check_open()
        tr = tr_id(api, self._config.mode)
        return await self._call(_GET, PATHS[api], tr=tr, params=params)

    async def get_holidays(self, base: date) -> dict[date, bool]:
        """``{day: market open}`` for the days from ``base`` on (chk-holiday, live only).

        Continuation is followed when KIS sends ``tr_cont`` F/M (OTA loops on it; kis-trader
        says one reply covers everything [CONFLICT]): at most 5 pages.

        Raises:
            PaperModeError: in paper mode (the API does not exist there).
        """
        self._check_open()
        if self._config.is_paper:
            raise PaperModeError("chk-holiday (CTCA0903R) exists only on the live servers")
        tr = tr_id(Api.HOLIDAYS, self._config.mode)
        bodies: list[Mapping[str, Any]] = []
        tr_cont, fk, nk = "", "", ""
        for _ in range(5):
            response = await self._call(
                _GET,
                PATHS[Api.HOLIDAYS],
                tr=tr,
                params=quotations.holiday_params(base, fk=fk, nk=nk),
                tr_cont=tr_cont,
            )
            bodies.append(response.body)
            if response.tr_cont not in ("F", "M"):
                break
            tr_cont = "N"
            fk = str(get_ci(response.body, "ctx_area_fk") or "")
            nk = str(get_ci(response.body, "ctx_area_nk") or "")
        return decode_output(
            lambda: quotations.parse_holidays(bodies), tr_id=tr, what="chk-holiday"
        )

    # -- orders -----------------------------------------------------------------------------

    def remember_order(self, order_id: str, branch_no: str) -> None:
        """Remember the branch number of an order (needed to cancel or modify it)."""
        key = normalize_order_id(order_id)
        memo = self._orders.get(key)
        branch = branch_no.strip()
        if memo is None:
            self._orders[key] = _OrderMemo(branch_no=branch or None)
        elif branch and branch != memo.branch_no:
            self._orders[key] = _OrderMemo(
                branch_no=branch, symbol=memo.symbol, order_type=memo.order_type, price=memo.price
            )

    def _remember(self, order_id: str, memo: _OrderMemo) -> None:
        key = normalize_order_id(order_id)
        old = self._orders.get(key)
        if old is not None:
            memo = _OrderMemo(
                branch_no=memo.branch_no or old.branch_no,
                symbol=memo.symbol or old.symbol,
                order_type=memo.order_type or old.order_type,
                price=memo.price if memo.price is not None else old.price,
                exchange=memo.exchange or old.exchange,
                stop_price=memo.stop_price if memo.stop_price is not None else old.stop_price,
            )
        self._orders[key] = memo

    async def _order_hashkey(self, body: Mapping[str, str]) -> str | None:
        if not self._config.use_hashkey:
            return None
        try:
            return await self._auth.hashkey(body)
        except BrokerClosedError as exc:
            raise _not_sent("getting the hashkey") from exc

    async def place_order(self, request: OrderRequest) -> PlacedOrder:
        """Send one order (order-cash) and return its number and branch.

        The POST is retried only after a connect-phase failure or an explicit rate-limit
        refusal (EGW00201/EGW00215); after a read timeout or dropped connection it raises
        :class:`~kis_async.errors.BrokerTimeoutError` with ``request_sent=True``.

        Raises:
            InvalidOrderError: ``request`` is not an :class:`OrderRequest`.
            OrderRejectedError: KIS refused the order (``msg_cd`` says why).
            BrokerTimeoutError: no answer; see ``request_sent``.
            ServerError: 5xx without a business code (the order may have been booked).
        """
        self._check_open()
        if not isinstance(request, OrderRequest):
            raise InvalidOrderError("place_order needs an OrderRequest")
        check_paper_venue(self._config.is_paper, request.exchange)
        api = Api.ORDER_BUY if request.side is Side.BUY else Api.ORDER_SELL
        tr = tr_id(api, self._config.mode)
        body = order_cash_body(self._config, request)
        hashkey = await self._order_hashkey(body)
        if logger.isEnabledFor(logging.INFO):  # the arguments cost more than the check
            logger.info(
                "placing order: %s %s qty=%d type=%s price=%s exchange=%s account=%s (tr_id=%s)",
                request.side.name,
                request.symbol,
                request.qty,
                request.order_type.name,
                request.price_text,
                request.exchange.value,
                self._config.masked_account,
                tr,
            )
        response = await self._call(
            _POST, PATHS[api], tr=tr, body=body, order=True, hashkey=hashkey
        )
        placed = decode_output(
            lambda: parse_placed(response.body, tr_id=tr), tr_id=tr, what="order-cash"
        )
        self._remember(
            placed.order_id,
            _OrderMemo(
                branch_no=placed.branch_no or None,
                symbol=request.symbol,
                order_type=request.order_type,
                price=request.price,
                exchange=request.exchange,
                stop_price=request.stop_price,
            ),
        )
        logger.info(
            "order accepted: order_id=%s branch=%s msg_cd=%s",
            placed.order_id,
            placed.branch_no,
            response.msg_cd or "-",
        )
        return placed

    async def _resolve(self, order_id: str, *, need_details: bool) -> _OrderMemo:
        """What we know of ``order_id``; asks today's orders when the branch (or, with
        ``need_details``, symbol/type/price) is unknown.

        Raises:
            InvalidOrderError: the order is not among today's orders.
        """
        key = normalize_order_id(order_id)
        memo = self._orders.get(key)
        # Live, the venue is always needed: an order placed elsewhere (the KIS app, another
        # process) on NXT or via SOR must be revised/cancelled with its own venue (§13).
        # Paper trading is KRX-only, so there the venue is known without asking.
        venue_known = self._config.is_paper or (memo is not None and memo.exchange is not None)
        if (
            memo is not None
            and memo.branch_no
            and venue_known
            and (not need_details or (memo.symbol and memo.order_type))
        ):
            return memo
        for order in await self.get_orders():
            if normalize_order_id(order.broker_order_id) == key:
                self._remember(order_id, _OrderMemo.of(order))
                found = self._orders[key]
                if found.branch_no:
                    return found
                break
        raise InvalidOrderError(f"order {order_id} is not among today's orders")

    async def cancel_order(self, order_id: str) -> bool:
        """Cancel all remaining quantity of ``order_id`` (order-rvsecncl, code 02).

        Returns:
            True when KIS accepted the cancel; False when KIS refused it as a business matter
            (typically nothing left to cancel).

        Raises:
            InvalidOrderError: the order is unknown (not remembered, not among today's orders).
            BrokerTimeoutError, BrokerConnectionError, AuthenticationError, ServerError:
                transport or authentication failures.
        """
        self._check_open()
        logger.info("cancel requested: order_id=%s", order_id)
        # Live, the original's type and price are repeated on cancel (§13), so an order known
        # only by its branch is looked up; paper keeps the old LIMIT/"0" cancel when unknown.
        memo = await self._resolve(order_id, need_details=not self._config.is_paper)
        original = memo.original()
        check_paper_venue(self._config.is_paper, original.exchange)
        tr = tr_id(Api.REVISE_CANCEL, self._config.mode)
        body = cancel_body(self._config, order_id=order_id, original=original)
        hashkey = await self._order_hashkey(body)
        try:
            response = await self._call(
                _POST, PATHS[Api.REVISE_CANCEL], tr=tr, body=body, order=True, hashkey=hashkey
            )
        except OrderRejectedError as exc:
            logger.warning(
                "cancel refused: order_id=%s msg_cd=%s msg=%s", order_id, exc.msg_cd, exc.msg
            )
            return False
        placed = decode_output(
            lambda: parse_placed(response.body, tr_id=tr), tr_id=tr, what="order-rvsecncl"
        )
        self._remember(placed.order_id, replace(memo, branch_no=placed.branch_no or memo.branch_no))
        logger.info(
            "cancel accepted: order_id=%s cancel_order_id=%s msg_cd=%s",
            order_id,
            placed.order_id,
            response.msg_cd or "-",
        )
        return True

    async def modify_order(
        self,
        order_id: str,
        *,
        qty: int | None,
        price: Decimal | int | str | None,
        order_type: OrderType | None,
    ) -> str:
        """Revise an order's remaining quantity, price or type (order-rvsecncl, code 01).

        Arguments are checked before any request: ``qty`` an int > 0, ``price`` positive and
        on the tick grid (exactly for a known symbol; for an order not placed through this
        client the tick is checked again once today's orders name its symbol, still before
        the revise POST).

        Returns:
            The new order number (ODNO) of the revision; it is remembered.

        Raises:
            InvalidOrderError: bad arguments or unknown order.
            OrderRejectedError: KIS refused the revision.
        """
        self._check_open()
        known = self._orders.get(normalize_order_id(order_id))
        symbol = known.symbol if known is not None else None
        # The ETN grid is the loosest one: use it while the symbol is unknown.
        validate_modify(qty=qty, price=price, order_type=order_type, symbol=symbol or "Q")
        needs_price = price is None and (order_type is None or order_type.requires_price)
        memo = await self._resolve(order_id, need_details=needs_price or symbol is None)
        original = memo.original()
        check_paper_venue(self._config.is_paper, original.exchange)
        args = validate_modify(qty=qty, price=price, order_type=order_type, symbol=memo.symbol)
        new_type = args.order_type or memo.order_type or OrderType.LIMIT
        check_venue(new_type, original.exchange)
        new_price = args.price if args.price is not None else memo.price
        if new_type.requires_price and new_price is None:
            raise InvalidOrderError(f"modifying to a {new_type.name} order needs a price")
        if new_type is OrderType.STOP_LIMIT and memo.stop_price is None:
            raise InvalidOrderError(
                "modifying to a STOP_LIMIT order needs the stop price of a stop-limit original"
            )
        tr = tr_id(Api.REVISE_CANCEL, self._config.mode)
        body = modify_body(
            self._config,
            order_id=order_id,
            original=original,
            order_type=new_type,
            qty=args.qty,
            price=new_price if new_type.accepts_price else None,
            stop_price=memo.stop_price,
        )
        hashkey = await self._order_hashkey(body)
        logger.info(
            "modify requested: order_id=%s qty=%s price=%s type=%s",
            order_id,
            args.qty if args.qty is not None else "all",
            body["ORD_UNPR"],
            new_type.name,
        )
        response = await self._call(
            _POST, PATHS[Api.REVISE_CANCEL], tr=tr, body=body, order=True, hashkey=hashkey
        )
        placed = decode_output(
            lambda: parse_placed(response.body, tr_id=tr), tr_id=tr, what="order-rvsecncl"
        )
        self._remember(
            placed.order_id,
            _OrderMemo(
                branch_no=placed.branch_no or memo.branch_no,
                symbol=memo.symbol,
                order_type=new_type,
                price=new_price if new_type.accepts_price else None,
                exchange=original.exchange,
                stop_price=memo.stop_price if new_type is OrderType.STOP_LIMIT else None,
            ),
        )
        logger.info(
            "modify accepted: order_id=%s new_order_id=%s msg_cd=%s",
            order_id,
            placed.order_id,
            response.msg_cd or "-",
        )
        return placed.order_id

    # -- account ----------------------------------------------------------------------------

    async def _daily_orders(self, *, start: date, end: date, unfilled_only: bool) -> list[Order]:
        today = datetime.now(KST).date()
        api = Api.DAILY_ORDERS_OLD if account.is_old_range(start, today) else Api.DAILY_ORDERS
        pages = await self._pages(
            api,
            lambda fk, nk: account.daily_orders_params(
                self._config, start=start, end=end, unfilled_only=unfilled_only, fk=fk, nk=nk
            ),
        )
        tr = pages[0].tr_id if pages else None

        def parse() -> list[Order]:
            return [
                account.parse_daily_row(row)
                for page in pages
                for row in rows(get_ci(page.body, "output1"))
            ]

        orders = decode_output(parse, tr_id=tr, what="inquire-daily-ccld")
        for order in orders:
            if order.branch_no and order.broker_order_id:
                self._remember(order.broker_order_id, _OrderMemo.of(order))
        return orders

    async def get_orders(
        self, *, start: date | None = None, end: date | None = None
    ) -> list[Order]:
        """Orders and fills between ``start`` and ``end`` (default today, KST), all pages.

        Raises:
            ValueError: ``start`` or ``end`` is not a date, or ``start`` is after ``end``.
        """
        self._check_open()
        first, last = check_date_range(start, end, today=datetime.now(KST).date())
        return await self._daily_orders(start=first, end=last, unfilled_only=False)

    async def get_open_orders(self) -> list[Order]:
        """Orders with quantity still open.

        Live mode asks inquire-psbl-rvsecncl; paper mode, where that API does not exist,
        asks today's unfilled daily orders (``CCLD_DVSN 02``) and keeps ``rmn_qty > 0``.
        """
        self._check_open()
        today = datetime.now(KST).date()
        if self._config.is_paper:
            orders = await self._daily_orders(start=today, end=today, unfilled_only=True)
            return [o for o in orders if o.remaining_qty > 0 and not o.status.is_done]
        pages = await self._pages(
            Api.CANCELABLE_ORDERS,
            lambda fk, nk: account.cancelable_params(self._config, fk=fk, nk=nk),
        )
        tr = pages[0].tr_id if pages else None

        def parse() -> list[Order]:
            return [
                account.parse_cancelable_row(row, today)
                for page in pages
                for row in rows(get_ci(page.body, "output"))
            ]

        orders = decode_output(parse, tr_id=tr, what="inquire-psbl-rvsecncl")
        for order in orders:
            if order.branch_no:
                self._remember(order.broker_order_id, _OrderMemo.of(order))
        return [o for o in orders if o.remaining_qty > 0]

    async def get_cash(self) -> Decimal:
        """Deposit: ``dnca_tot_amt`` of inquire-balance ``output2``."""
        self._check_open()
        tr = tr_id(Api.BALANCE, self._config.mode)
        response = await self._call(
            _GET,
            PATHS[Api.BALANCE],
            tr=tr,
            params=account.balance_params(self._config, fk="", nk=""),
        )
        return decode_output(
            lambda: account.parse_cash(response.body), tr_id=tr, what="inquire-balance output2"
        )

    async def get_stock_balance(self) -> list[Position]:
        """Holdings of every page of inquire-balance, without zero-quantity rows."""
        self._check_open()
        pages = await self._pages(
            Api.BALANCE, lambda fk, nk: account.balance_params(self._config, fk=fk, nk=nk)
        )
        tr = pages[0].tr_id if pages else None
        return decode_output(
            lambda: account.parse_positions(page.body for page in pages),
            tr_id=tr,
            what="inquire-balance output1",
        )

    async def get_buying_power(
        self, symbol: str, price: Decimal | int | str | None = None
    ) -> BuyingPower:
        """Orderable cash and maximum buy quantity for ``symbol`` (inquire-psbl-order).

        Raises:
            InvalidOrderError: ``price`` is not a positive whole number of won within KRX's
                range.
        """
        self._check_open()
        unit: Decimal | None = None
        if price is not None:
            unit = check_whole_price(price)
        tr = tr_id(Api.BUYING_POWER, self._config.mode)
        response = await self._call(
            _GET,
            PATHS[Api.BUYING_POWER],
            tr=tr,
            params=account.buying_power_params(self._config, symbol=symbol, price=unit),
        )
        return decode_output(
            lambda: account.parse_buying_power(response.body, symbol),
            tr_id=tr,
            what="inquire-psbl-order",
        )
