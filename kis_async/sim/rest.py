"""The simulator's KIS REST surface: OAuth, hashkey and the domestic-stock endpoints.

Paths, TR ids, headers, envelopes and paging follow protocol doc §2-§5. Where the doc has no
message code for a business rejection, the code below is the simulator's own choice (marked
in :data:`REJECTIONS`); clients must key on ``rt_cd`` and treat ``msg_cd`` as informative.

This module keeps the ASGI entry, the dispatch and the request checks. The endpoints live in
mixins by job: :mod:`~kis_async.sim.rest_auth` (OAuth, hashkey),
:mod:`~kis_async.sim.rest_orders`, :mod:`~kis_async.sim.rest_account` (inquiries, holidays) and
:mod:`~kis_async.sim.rest_quotes` (quotations, charts); the route table is in
:mod:`~kis_async.sim.rest_routes`, the rejection table and envelope helpers in
:mod:`~kis_async.sim.rest_common`.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from kis_async.sim.charts import ChartApi
from kis_async.sim.exchange import SimExchange
from kis_async.sim.faults import SimFaults, SimStats
from kis_async.sim.history import SimHistory
from kis_async.sim.options import SimOptions
from kis_async.sim.rest_account import AccountMixin
from kis_async.sim.rest_auth import ApprovalDesk, AuthMixin, TokenRecord
from kis_async.sim.rest_common import REJECTIONS, ApiError
from kis_async.sim.rest_orders import OrdersMixin
from kis_async.sim.rest_quotes import QuotesMixin
from kis_async.sim.rest_routes import _METHODS, PREFIX, TR_TABLE

__all__ = ["REJECTIONS", "ApiError", "RestApi", "TokenRecord"]


class RestApi(AuthMixin, OrdersMixin, AccountMixin, QuotesMixin):
    """The REST half of the simulator: authentication state, checks and endpoint handlers."""

    def __init__(
        self, *, options: SimOptions, exchange: SimExchange, faults: SimFaults, stats: SimStats
    ) -> None:
        self.options = options
        self.exchange = exchange
        self.faults = faults
        self.stats = stats
        self.clock = exchange.clock
        self.tokens: dict[str, TokenRecord] = {}
        self.desk = ApprovalDesk(options.app_key, options.app_secret)
        self._last_issue: dict[str, float] = {}
        self._windows: dict[str, deque[float]] = {}
        self._rng = random.Random(options.seed ^ 0xA0A0)
        self._signing_key = self._rng.randbytes(32)
        faults._expire_tokens = self.expire_tokens
        self.history = SimHistory(exchange, seed=options.seed)
        self.charts = ChartApi(self.history, self._price_fields)

    # -- ASGI entry --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one KIS REST request (the ASGI entry point)."""
        request = Request(scope, receive)
        self.stats.rest_requests += 1
        path = request.url.path
        tr_id = request.headers.get("tr_id")
        booked = False
        failure = self.faults.take_failure()
        if failure is not None:
            self.stats.faults_injected += 1
            if failure == "rate_limit":
                response = ApiError(500, "EGW00201", "초당 거래건수를 초과하였습니다.").response(
                    tr_id
                )
            else:
                response = Response(
                    "Internal Server Error", status_code=500, media_type="text/plain"
                )
        else:
            try:
                response, booked = await self._dispatch(request, path)
            except ApiError as exc:
                response = exc.response(tr_id)
        delay = self.faults.take_delay()
        if delay > 0:
            await asyncio.sleep(delay)
        if booked and self.faults.take_order_drop():
            self.stats.faults_injected += 1
            await _send_truncated(response, send)
            return
        await response(scope, receive, send)

    async def _dispatch(self, request: Request, path: str) -> tuple[Response, bool]:
        if path == "/oauth2/tokenP":
            return await self._token(request), False
        if path == "/oauth2/revokeP":
            return await self._revoke(request), False
        if path == "/oauth2/Approval":
            return await self._approval(request), False
        if path == "/uapi/hashkey":
            self._check_app(request)
            self._rate_limit(request)
            return await self._hashkey(request), False
        if not path.startswith(PREFIX) or path[len(PREFIX) :] not in TR_TABLE:
            # A KIS-shaped envelope, so a client's error mapping sees rt_cd/msg_cd as from any
            # other failure; the code is the simulator's choice (KIS's answer to an unknown
            # path was not captured).
            raise self._fail("unknown_path", 404)
        sub = path[len(PREFIX) :]
        expected = _METHODS.get(sub, "GET")
        if request.method != expected:
            return Response(status_code=405), False
        self._check_app(request)
        self._rate_limit(request)
        self._check_token(request)
        tr_id = request.headers.get("tr_id", "")
        action = self._check_tr(sub, tr_id)
        custtype = request.headers.get("custtype")
        if custtype is not None and custtype not in ("P", "B"):
            raise ApiError(500, "EGW00208", "고객유형(custtype)이 유효하지 않습니다.")
        handler = self._handlers()[action]
        return await handler(request, tr_id)

    def _handlers(self) -> dict[str, Callable[[Request, str], Awaitable[tuple[Response, bool]]]]:
        return {
            "buy": self._order_cash,
            "sell": self._order_cash,
            "rvsecncl": self._rvsecncl,
            "psbl_rvsecncl": self._psbl_rvsecncl,
            "daily_ccld": self._daily_ccld,
            "balance": self._balance,
            "psbl_order": self._psbl_order,
            "price": self._price,
            "asking_price": self._asking_price,
            "search_info": self._search_info,
            "stock_info": self._stock_info,
            "chart": self._chart,
            "holidays": self._holidays,
        }

    # -- checks ------------------------------------------------------------------------------

    def _check_app(self, request: Request) -> None:
        if request.headers.get("appkey") != self.options.app_key:
            self.stats.auth_rejections += 1
            raise ApiError(403, "EGW00103", "유효하지 않은 AppKey입니다.")
        if request.headers.get("appsecret") != self.options.app_secret:
            self.stats.auth_rejections += 1
            raise ApiError(403, "EGW00105", "유효하지 않은 AppSecret입니다.")

    def _rate_limit(self, request: Request) -> None:
        if not self.options.rate_limit:
            return
        key = request.headers.get("appkey", "")
        window = self._windows.setdefault(key, deque())
        now = self.clock.monotonic()
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= self.options.requests_per_second:
            self.stats.rate_limit_rejections += 1
            # HTTP 500 with the normal envelope, as most reports show (protocol doc §2.5).
            raise ApiError(500, "EGW00201", "초당 거래건수를 초과하였습니다.")
        window.append(now)

    def _check_token(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.stats.auth_rejections += 1
            raise ApiError(500, "EGW00205", "credentials_type이 유효하지 않습니다.(Bearer)")
        record = self.tokens.get(token.strip())
        if record is None or record.revoked or record.app_key != self.options.app_key:
            self.stats.auth_rejections += 1
            # The status of EGW00121/EGW00123 is a [CONFLICT] in the doc; we send 500.
            raise ApiError(500, "EGW00121", "유효하지 않은 token 입니다.")
        if self.clock.monotonic() >= record.expires_mono:
            self.stats.auth_rejections += 1
            raise ApiError(500, "EGW00123", "기간이 만료된 token 입니다.")

    def _check_tr(self, sub: str, tr_id: str) -> str:
        entry = TR_TABLE[sub].get(tr_id)
        if entry is None:
            # Unknown TR id for this path: the doc only says "OPSQ9999-type"; this code is the
            # simulator's choice.
            raise self._fail("unknown_tr", 500)
        mode, action = entry
        if mode is not None and mode is not self.options.mode:
            if self.options.is_paper:
                raise ApiError(500, "EGW00213", "모의투자 TR이 아닙니다.")
            # A paper TR id sent to the live server; the code is the simulator's choice.
            raise self._fail("not_live_tr", 500)
        return action


async def _send_truncated(response: Response, send: Send) -> None:
    """Start ``response`` and send half its body, then stop: the server closes the connection
    with the response incomplete, so the client sees a dropped connection after its request
    was processed."""
    body = bytes(response.body)
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
