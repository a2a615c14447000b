"""The simulator's KIS REST surface: OAuth, hashkey and the domestic-stock endpoints.

Paths, TR ids, headers, envelopes and paging follow protocol doc §2-§5. Where the doc has no
message code for a business rejection, the code below is the simulator's own choice (marked
in :data:`REJECTIONS`); clients must key on ``rt_cd`` and treat ``msg_cd`` as informative.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from kis_async.config import Mode
from kis_async.models.common import is_valid_symbol
from kis_async.sim.charts import CHART_ROUTES, ChartApi
from kis_async.sim.exchange import (
    ORDER_TYPE_NAMES,
    SimExchange,
    SimOrder,
    SimRejectionError,
)
from kis_async.sim.faults import SimFaults, SimStats
from kis_async.sim.history import SimHistory
from kis_async.sim.options import SimOptions
from kis_async.sim.quotes import holiday_rows, orderbook_outputs, price_output
from kis_async.sim.quotes import number_text as _s
from kis_async.sim.reference import price_statistics, search_info, stock_info
from kis_async.sim.venues import KRX, NXT, SOR

__all__ = ["ApiError", "RestApi", "TokenRecord"]

PREFIX: Final = "/uapi/domestic-stock/v1"

# path -> {tr_id: (mode, action)}; both the new and the old TR ids (protocol doc §4.0).
_L, _P = Mode.LIVE, Mode.PAPER
TR_TABLE: Final[Mapping[str, Mapping[str, tuple[Mode | None, str]]]] = {
    "/trading/order-cash": {
        "TTTC0011U": (_L, "sell"), "TTTC0801U": (_L, "sell"),
        "TTTC0012U": (_L, "buy"), "TTTC0802U": (_L, "buy"),
        "VTTC0011U": (_P, "sell"), "VTTC0801U": (_P, "sell"),
        "VTTC0012U": (_P, "buy"), "VTTC0802U": (_P, "buy"),
    },
    "/trading/order-rvsecncl": {
        "TTTC0013U": (_L, "rvsecncl"), "TTTC0803U": (_L, "rvsecncl"),
        "VTTC0013U": (_P, "rvsecncl"), "VTTC0803U": (_P, "rvsecncl"),
    },
    "/trading/inquire-psbl-rvsecncl": {
        "TTTC0084R": (_L, "psbl_rvsecncl"), "TTTC8036R": (_L, "psbl_rvsecncl"),
    },
    "/trading/inquire-daily-ccld": {
        "TTTC0081R": (_L, "daily_ccld"), "TTTC8001R": (_L, "daily_ccld"),
        "CTSC9215R": (_L, "daily_ccld"), "CTSC9115R": (_L, "daily_ccld"),
        "VTTC0081R": (_P, "daily_ccld"), "VTTC8001R": (_P, "daily_ccld"),
        "VTSC9215R": (_P, "daily_ccld"), "VTSC9115R": (_P, "daily_ccld"),
    },
    "/trading/inquire-balance": {"TTTC8434R": (_L, "balance"), "VTTC8434R": (_P, "balance")},
    "/trading/inquire-psbl-order": {
        "TTTC8908R": (_L, "psbl_order"), "VTTC8908R": (_P, "psbl_order"),
    },
    "/quotations/inquire-price": {"FHKST01010100": (None, "price")},
    "/quotations/inquire-asking-price-exp-ccn": {"FHKST01010200": (None, "asking_price")},
    # Product / stock basic info (protocol doc §4.0): documented live only; answered in both
    # modes, because clients such as python-kis send them to whichever host they are given.
    "/quotations/search-info": {"CTPF1604R": (None, "search_info")},
    "/quotations/search-stock-info": {"CTPF1002R": (None, "stock_info")},
    # Charts (protocol doc §10), answered by kis_async.sim.charts.
    **{path: {tr: (None, "chart")} for path, tr in CHART_ROUTES.items()},
    # chk-holiday is live only (protocol doc §11.1): a paper server answers its TR id the
    # way it answers every live TR id, EGW00213.
    "/quotations/chk-holiday": {"CTCA0903R": (_L, "holidays")},
}  # fmt: skip
_METHODS: Final = {
    "/trading/order-cash": "POST",
    "/trading/order-rvsecncl": "POST",
}

#: Every error code the simulator answers with outside the gateway (EGW) and OAuth errors:
#: reason -> (live msg_cd, paper msg_cd, message). ONE table, so what is invented is in one
#: place. Documented codes (protocol doc §3.2, or a client's own code keyed on them):
#:   not_in_session APBK0919 -- python-kis maps APBK0919 to "market not open" on a domestic
#:     order; unknown_symbol APBK0656 -- python-kis maps it to "symbol not found".
#: (Documented but not raised: APBK1943 시장가호가불가 and APBK3013 NXT after-market limit
#: only, protocol doc §3.2 -- the simulator's venue rules refuse those cases as venue_type.)
#: Every other code below is the simulator's own choice, shaped like KIS's (APBK live, 8-digit
#: numeric paper, OPSQ/OPQ for input errors), because no source captured KIS's code for that
#: case; clients must key on ``rt_cd`` and treat these ``msg_cd`` values as informative. Paper
#: messages of business rejections (live and paper codes differ) get the "모의투자 " prefix.
REJECTIONS: Final[Mapping[str, tuple[str, str, str]]] = {
    # documented
    "not_in_session": ("APBK0919", "40580000", "장운영시간이 아닙니다."),
    "unknown_symbol": ("APBK0656", "40070000", "해당종목정보가 없습니다."),
    # invented (no captured KIS code)
    "bad_qty": ("APBK0917", "40090000", "주문수량을 확인하여 주십시오."),
    "off_tick": ("APBK0918", "40100000", "호가단위가 맞지 않습니다."),
    "market_with_price": ("APBK0920", "40110000", "시장가 주문은 주문단가를 0으로 입력하십시오."),
    "bad_order_type": ("APBK0631", "40120000", "주문구분을 확인하여 주십시오."),
    "bad_side": ("APBK0632", "40130000", "매도매수구분을 확인하여 주십시오."),
    "bad_exchange": ("APBK0633", "40140000", "거래소구분을 확인하여 주십시오."),
    "insufficient_cash": ("APBK0952", "40250000", "주문가능금액을 초과 했습니다."),
    "insufficient_holdings": ("APBK0400", "40240000", "주문가능수량을 초과 했습니다."),
    # The paper message is the one captured in protocol doc §3.2; its code was not captured.
    "nothing_to_cancel": ("APBK0915", "40330000", "정정/취소할 수량이 없습니다."),
    "venue_type": ("APBK1680", "40170000", "해당 거래소에서 주문할 수 없는 주문구분입니다."),
    "bad_stop_price": ("APBK1681", "40180000", "스톱지정가 조건가격을 확인하여 주십시오."),
    "wrong_venue": ("APBK1682", "40190000", "원주문의 거래소구분과 일치하지 않습니다."),
    # invented input / routing errors (same code live and paper; the doc says "OPSQ9999-type")
    "unknown_path": ("OPSQ0003", "OPSQ0003", "요청하신 서비스를 찾을 수 없습니다."),
    "unknown_tr": ("OPSQ0002", "OPSQ0002", "없는 서비스 코드 입니다"),
    "not_live_tr": ("EGW00212", "EGW00212", "실전투자 TR이 아닙니다."),
    "bad_account": ("OPSQ2000", "OPSQ2000", "ERROR : INPUT INVALID_CHECK_ACNO"),
    "missing_field": ("OPSQ2001", "OPSQ2001", "ERROR : INPUT FIELD NOT FOUND"),
    # KIS's body fields are strings (protocol doc §3.1); a number, null, list or object there
    # gets this code (KIS's own answer was not captured).
    "bad_field_type": ("OPSQ2002", "OPSQ2002", "ERROR : INPUT FIELD TYPE INVALID"),
    "bad_quote_input": ("OPQ00001", "OPQ00001", "입력값을 확인하여 주십시오."),
    "no_quote_data": ("OPQ00002", "OPQ00002", "조회할 자료가 없습니다."),
    "paper_krx_only": ("OPQ00003", "OPQ00003", "모의투자에서는 KRX 시세만 조회할 수 있습니다."),
}

_PAPER_QUERY_OK: Final = ("20310000", "모의투자 조회가 완료되었습니다.")
_LIVE_QUERY_OK: Final = ("KIOK0510", "조회가 완료되었습니다")
_QUOTE_OK: Final = ("MCA00000", "정상처리 되었습니다.")
_LIVE_ORDER_OK: Final = ("APBK0013", "주문 전송 완료 되었습니다.")
_PAPER_BUY_OK: Final = ("40600000", "모의투자 매수주문이 완료 되었습니다.")
_PAPER_SELL_OK: Final = ("40600000", "모의투자 매도주문이 완료 되었습니다.")
_PAPER_CANCEL_OK: Final = ("40630000", "모의투자 취소주문이 완료 되었습니다.")
# Paper revise success was never captured (protocol doc §9 item 6): the simulator's choice.
_PAPER_MODIFY_OK: Final = ("40620000", "모의투자 정정주문이 완료 되었습니다.")


class ApiError(Exception):
    """An error answer: HTTP status plus a KIS envelope (or an OAuth-shaped body)."""

    def __init__(self, status: int, msg_cd: str, msg1: str, *, oauth: bool = False) -> None:
        super().__init__(msg_cd)
        self.status = status
        self.msg_cd = msg_cd
        self.msg1 = msg1
        self.oauth = oauth

    def response(self, tr_id: str | None = None) -> Response:
        """The HTTP response KIS would send."""
        if self.oauth:
            body: dict[str, Any] = {"error_description": self.msg1, "error_code": self.msg_cd}
            return JSONResponse(body, status_code=self.status)
        body = {"rt_cd": "1", "msg_cd": self.msg_cd, "msg1": self.msg1}
        return _json(body, status=self.status, tr_id=tr_id)


@dataclass
class TokenRecord:
    """An issued access token."""

    token: str
    app_key: str
    issued_mono: float
    expires_mono: float
    expires_at: datetime
    revoked: bool = False


def _json(
    body: Mapping[str, Any], *, status: int = 200, tr_id: str | None = None, tr_cont: str = ""
) -> Response:
    headers = {"gt_uid": secrets.token_hex(16), "tr_cont": tr_cont}
    if tr_id:
        headers["tr_id"] = tr_id
    content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return Response(
        content, status_code=status, headers=headers,
        media_type="application/json; charset=utf-8",
    )  # fmt: skip


def _ok(code: tuple[str, str]) -> dict[str, Any]:
    # KIS pads msg1 with trailing spaces; clients must strip it.
    return {"rt_cd": "0", "msg_cd": code[0], "msg1": code[1] + "  "}


def _ctx(text: str) -> str:
    return text.ljust(100)


class RestApi:
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
        self.approval_keys: dict[str, tuple[str, float]] = {}
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

    def _check_account(self, fields: Mapping[str, str]) -> None:
        cano = fields.get("CANO", "")
        prdt = fields.get("ACNT_PRDT_CD", "")
        if cano + prdt != self.options.account_id:
            raise self._fail("bad_account")

    def _reject(self, reason: str) -> ApiError:
        """A business rejection of an order (counted in the stats)."""
        self.stats.orders_rejected += 1
        return self._fail(reason)

    def _fail(self, reason: str, status: int = 200, *, detail: str = "") -> ApiError:
        """The :data:`REJECTIONS` row ``reason`` as an error answer."""
        live, paper, text = REJECTIONS[reason]
        if detail:
            text = f"{text} [{detail}]"
        if self.options.is_paper:
            return ApiError(status, paper, ("모의투자 " if paper != live else "") + text)
        return ApiError(status, live, text)

    async def _json_body(self, request: Request, *, oauth: bool = False) -> dict[str, Any]:
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            raise ApiError(
                400 if oauth else 500, "EGW00002", "요청 본문을 해석할 수 없습니다.", oauth=oauth
            ) from None
        if not isinstance(data, dict):
            raise ApiError(
                400 if oauth else 500, "EGW00002", "요청 본문을 해석할 수 없습니다.", oauth=oauth
            )
        return data

    def _check_oauth_credentials(self, app_key: Any, secret: Any) -> None:
        if app_key != self.options.app_key:
            self.stats.auth_rejections += 1
            raise ApiError(403, "EGW00103", "유효하지 않은 AppKey입니다.", oauth=True)
        if secret != self.options.app_secret:
            self.stats.auth_rejections += 1
            raise ApiError(403, "EGW00105", "유효하지 않은 AppSecret입니다.", oauth=True)

    async def _token(self, request: Request) -> Response:
        self.stats.token_requests += 1
        body = await self._json_body(request, oauth=True)
        if body.get("grant_type") != "client_credentials":
            raise ApiError(403, "EGW00205", "grant_type이 유효하지 않습니다.", oauth=True)
        app_key = body.get("appkey")
        self._check_oauth_credentials(app_key, body.get("appsecret"))
        now = self.clock.monotonic()
        last = self._last_issue.get(str(app_key))
        if last is not None and now - last < self.options.token_issue_interval:
            self.stats.token_throttle_rejections += 1
            raise ApiError(
                403, "EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)", oauth=True
            )
        self._last_issue[str(app_key)] = now
        record = self._reusable_token(str(app_key), now)
        if record is None:
            record = self._issue_token(str(app_key), now)
        # expires_in: the remaining lifetime (a re-issued token keeps its original expiry).
        return JSONResponse(
            {
                "access_token": record.token,
                "access_token_token_expired": record.expires_at.strftime("%Y-%m-%d %H:%M:%S"),
                "token_type": "Bearer",
                "expires_in": max(0, int(record.expires_mono - now)),
            }
        )

    def _reusable_token(self, app_key: str, now: float) -> TokenRecord | None:
        for record in reversed(self.tokens.values()):
            if (
                record.app_key == app_key
                and not record.revoked
                and now < record.expires_mono
                and now - record.issued_mono < self.options.token_reuse_window
            ):
                return record
        return None

    def _issue_token(self, app_key: str, now: float) -> TokenRecord:
        issued = self.clock.now()
        lifetime = self.options.token_lifetime
        expires_at = (issued + timedelta(seconds=lifetime)).replace(microsecond=0)
        header = _b64({"typ": "JWT", "alg": "HS512"})
        payload = _b64(
            {
                "sub": "token",
                "aud": str(_uuid(self._rng)),
                "prdt_cd": "",
                "iss": "unogw",
                "exp": int(expires_at.timestamp()),
                "iat": int(issued.timestamp()),
                "jti": app_key,
            }
        )
        signing_input = f"{header}.{payload}".encode("ascii")
        sig = hmac.new(self._signing_key, signing_input, hashlib.sha512).digest()
        token = f"{header}.{payload}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
        record = TokenRecord(token, app_key, now, now + lifetime, expires_at)
        self.tokens[token] = record
        self.stats.tokens_issued += 1
        return record

    def expire_tokens(self) -> int:
        """Expire every issued token now; returns how many were live."""
        now = self.clock.monotonic()
        live = 0
        for record in self.tokens.values():
            if record.expires_mono > now:
                live += 1
                record.expires_mono = now
        return live

    async def _revoke(self, request: Request) -> Response:
        body = await self._json_body(request, oauth=True)
        self._check_oauth_credentials(body.get("appkey"), body.get("appsecret"))
        record = self.tokens.get(str(body.get("token", "")))
        if record is None or record.revoked:
            raise ApiError(403, "EGW00121", "유효하지 않은 token 입니다.", oauth=True)
        record.revoked = True
        self.stats.tokens_revoked += 1
        return JSONResponse({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"})

    async def _approval(self, request: Request) -> Response:
        body = await self._json_body(request, oauth=True)
        if body.get("grant_type") != "client_credentials":
            raise ApiError(403, "EGW00205", "grant_type이 유효하지 않습니다.", oauth=True)
        # Approval takes the secret as ``secretkey`` (protocol doc §2.3).
        self._check_oauth_credentials(body.get("appkey"), body.get("secretkey"))
        key = str(_uuid(self._rng))
        self.approval_keys[key] = (
            str(body["appkey"]), self.clock.monotonic() + self.options.approval_key_lifetime
        )  # fmt: skip
        self.stats.approval_keys_issued += 1
        return JSONResponse({"approval_key": key})

    def approval_app_key(self, approval_key: str) -> str | None:
        """The app key an unexpired approval key belongs to, or None."""
        entry = self.approval_keys.get(approval_key)
        if entry is None or self.clock.monotonic() >= entry[1]:
            return None
        return entry[0]

    async def _hashkey(self, request: Request) -> Response:
        raw = await request.body()
        body = await self._json_body(request)
        self.stats.hashkeys_issued += 1
        return JSONResponse({"BODY": body, "HASH": hashlib.sha256(raw).hexdigest()})

    # -- orders ------------------------------------------------------------------------------

    async def _order_fields(self, request: Request) -> dict[str, str]:
        body = await self._json_body(request)
        # Field names are documented UPPERCASE (accepted in any case); values are strings
        # (protocol doc §3.1), as KIS checks them: anything else is refused.
        for key, value in body.items():
            if not isinstance(value, str):
                raise self._fail("bad_field_type", detail=str(key).upper())
        return {str(k).upper(): v.strip() for k, v in body.items()}

    def _require(self, fields: Mapping[str, str], *names: str) -> None:
        for name in names:
            if name not in fields:
                # The simulator's choice of code for a missing body field.
                raise self._fail("missing_field", detail=name)

    def _check_exchange(self, fields: Mapping[str, str]) -> str:
        """The venue of an order body; blank is KRX (KIS's default, protocol doc §4.1)."""
        venue = fields.get("EXCG_ID_DVSN_CD", "").upper()
        allowed = ("", KRX) if self.options.is_paper else ("", KRX, NXT, SOR)
        if venue not in allowed:
            raise self._reject("bad_exchange")
        return venue or KRX

    async def _order_cash(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        fields = await self._order_fields(request)
        self._require(fields, "CANO", "ACNT_PRDT_CD", "PDNO", "ORD_DVSN", "ORD_QTY", "ORD_UNPR")
        self._check_account(fields)
        venue = self._check_exchange(fields)
        _, action = TR_TABLE["/trading/order-cash"][tr_id]
        side = "02" if action == "buy" else "01"
        qty = _int(fields["ORD_QTY"])
        price = _int(fields["ORD_UNPR"] or "0")
        stop = _int(fields.get("CNDT_PRIC", "") or "0")
        if qty is None:
            raise self._reject("bad_qty")
        if price is None:
            raise self._reject("off_tick")
        if stop is None:
            raise self._reject("bad_stop_price")
        try:
            order = self.exchange.place_order(
                symbol=fields["PDNO"], side=side, qty=qty, order_type=fields["ORD_DVSN"],
                price=price, exchange=venue, stop_price=stop,
            )  # fmt: skip
        except SimRejectionError as exc:
            raise self._reject(exc.reason) from None
        self.stats.orders_received += 1
        if self.options.is_paper:
            code = _PAPER_BUY_OK if side == "02" else _PAPER_SELL_OK
        else:
            code = _LIVE_ORDER_OK
        return _json(self._order_output(code, order), tr_id=tr_id), True

    def _order_output(self, code: tuple[str, str], order: SimOrder) -> dict[str, Any]:
        # Order responses carry UPPERCASE keys (protocol doc §4.1; §4.2 is a [CONFLICT] between
        # the spec's lowercase and the portal example's uppercase: we send uppercase). ODNO is
        # sent zero-padded to 10 digits in both modes.
        output = {
            "KRX_FWDG_ORD_ORGNO": order.branch_no,
            "ODNO": order.order_id,
            "ORD_TMD": order.created_at.strftime("%H%M%S"),
        }
        return _ok(code) | {"output": output}

    async def _rvsecncl(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        fields = await self._order_fields(request)
        self._require(
            fields, "CANO", "ACNT_PRDT_CD", "KRX_FWDG_ORD_ORGNO", "ORGN_ODNO", "ORD_DVSN",
            "RVSE_CNCL_DVSN_CD", "ORD_QTY", "ORD_UNPR", "QTY_ALL_ORD_YN",
        )  # fmt: skip
        self._check_account(fields)
        venue = self._check_exchange(fields)
        original_id = fields["ORGN_ODNO"].zfill(10)
        try:
            original = self.exchange.order(original_id)
        except KeyError:
            raise self._reject("nothing_to_cancel") from None
        if fields["KRX_FWDG_ORD_ORGNO"].zfill(5) != original.branch_no:
            raise self._reject("nothing_to_cancel")
        # The revise/cancel names the venue the original was placed with. For SOR orders KIS
        # has no text (protocol doc §13 [UNCERTAIN]): SOR (kis-trader's choice) and the
        # routed venue are both accepted; any other mismatch is refused.
        if venue not in (original.placed_on, original.venue):
            raise self._reject("wrong_venue")
        whole = fields["QTY_ALL_ORD_YN"].upper() == "Y"
        qty = None if whole else _int(fields["ORD_QTY"])
        if not whole and (qty is None or qty <= 0):
            raise self._reject("bad_qty")
        kind = fields["RVSE_CNCL_DVSN_CD"]
        try:
            if kind == "02":
                result = self.exchange.cancel_order(original_id, qty=qty)
                self.stats.cancels_received += 1
                code = _PAPER_CANCEL_OK if self.options.is_paper else _LIVE_ORDER_OK
            elif kind == "01":
                price = _int(fields["ORD_UNPR"] or "0")
                if price is None:
                    raise self._reject("off_tick")
                stop = _int(fields.get("CNDT_PRIC", "") or "0")
                if stop is None:
                    raise self._reject("bad_stop_price")
                result = self.exchange.modify_order(
                    original_id, qty=qty, order_type=fields["ORD_DVSN"], price=price,
                    stop_price=stop,
                )  # fmt: skip
                self.stats.modifies_received += 1
                code = _PAPER_MODIFY_OK if self.options.is_paper else _LIVE_ORDER_OK
            else:
                raise self._reject("bad_order_type")
        except SimRejectionError as exc:
            raise self._reject(exc.reason) from None
        return _json(self._order_output(code, result), tr_id=tr_id), True

    # -- inquiries ---------------------------------------------------------------------------

    def _query_ok(self) -> dict[str, Any]:
        return _ok(_PAPER_QUERY_OK if self.options.is_paper else _LIVE_QUERY_OK)

    @staticmethod
    def _params(request: Request) -> dict[str, str]:
        # Query parameters are documented UPPERCASE; clients send continuation keys lowercase.
        return {k.upper(): v for k, v in request.query_params.items()}

    def _page(
        self, request: Request, rows: list[dict[str, Any]], key: str, size: int
    ) -> tuple[list[dict[str, Any]], str, str]:
        """One page of ``rows``: (page, response tr_cont, next ctx_area_nk100)."""
        params = self._params(request)
        continuing = request.headers.get("tr_cont", "").upper() == "N"
        after = params.get("CTX_AREA_NK100", "").strip() if continuing else ""
        start = 0
        if after:
            keys = [str(r[key]) for r in rows]
            start = keys.index(after) + 1 if after in keys else len(rows)
        page = rows[start : start + size]
        more = start + size < len(rows)
        tr_cont = ("M" if start > 0 else "F") if more else "D"
        next_key = str(page[-1][key]) if page and more else ""
        return page, tr_cont, next_key

    def _order_row(self, order: SimOrder) -> dict[str, Any]:
        inst = self.exchange.instrument(order.symbol)
        cond = "IOC" if order.order_type in ("11", "13", "15") else "없음"
        if order.order_type in ("12", "14", "16"):
            cond = "FOK"
        return {
            "ord_dt": order.created_at.strftime("%Y%m%d"),
            "ord_gno_brno": order.branch_no,
            "odno": order.order_id,
            "orgn_odno": order.original_order_id,
            "ord_dvsn_name": ORDER_TYPE_NAMES.get(order.order_type, ""),
            "sll_buy_dvsn_cd": order.side,
            "sll_buy_dvsn_cd_name": "매수" if order.is_buy else "매도",
            "pdno": order.symbol,
            "prdt_name": inst.name,
            "ord_qty": str(order.qty),
            "ord_unpr": str(order.price),
            "ord_tmd": order.created_at.strftime("%H%M%S"),
            "tot_ccld_qty": str(order.filled_qty),
            "avg_prvs": str(round(order.avg_price)),
            "cncl_yn": "Y" if order.kind == "cancel" else "N",
            "tot_ccld_amt": str(order.filled_amount),
            "loan_dt": "",
            "ordr_empno": "",
            "ord_dvsn_cd": order.order_type,
            # The spec spells it cncl_cfrm_qty, the official sample (and kis-trader) read
            # cnc_cfrm_qty [CONFLICT]: both are sent.
            "cncl_cfrm_qty": str(order.cancelled_qty),
            "cnc_cfrm_qty": str(order.cancelled_qty),
            "rmn_qty": str(order.remaining_qty),
            "rjct_qty": str(order.rejected_qty),
            "ccld_cndt_name": cond,
            "inqr_ip_addr": "",
            "cpbc_ordp_ord_rcit_dvsn_cd": "",
            "cpbc_ordp_infm_mthd_dvsn_cd": "",
            "infm_tmd": "",
            "ctac_tlno": "",
            "prdt_type_cd": "300",
            "excg_dvsn_cd": "02",
            "cpbc_ordp_mtrl_dvsn_cd": "",
            "ord_orgno": order.branch_no,
            "rsvn_ord_end_dt": "",
            # Spelled as in the spec and OTA (kis-trader reads it lowercase [CONFLICT]); SOR
            # orders report SOR, the venue they were placed with (§13 [UNCERTAIN]).
            "excg_id_dvsn_Cd": order.placed_on,
            "stpm_cndt_pric": str(order.stop_price),
            "stpm_efct_occr_dtmd": _stop_stamp(order),
        }

    async def _daily_ccld(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        params = self._params(request)
        self._check_account(params)
        today = self.clock.now().strftime("%Y%m%d")
        start = params.get("INQR_STRT_DT") or today
        end = params.get("INQR_END_DT") or today
        side = params.get("SLL_BUY_DVSN_CD", "00") or "00"
        ccld = params.get("CCLD_DVSN", "00") or "00"
        symbol = params.get("PDNO", "").strip()
        odno = params.get("ODNO", "").strip()
        # KRX / NXT / SOR filter by the venue placed with; ALL or blank: every order.
        venue = params.get("EXCG_ID_DVSN_CD", "").strip().upper()
        selected: list[SimOrder] = []
        for order in self.exchange.orders:
            day = order.created_at.strftime("%Y%m%d")
            if not start <= day <= end:
                continue
            if side in ("01", "02") and order.side != side:
                continue
            if symbol and order.symbol != symbol:
                continue
            if odno and order.order_id != odno.zfill(10):
                continue
            if venue in (KRX, NXT, SOR) and order.placed_on != venue:
                continue
            if ccld == "01" and order.filled_qty == 0:
                continue
            if ccld == "02" and order.remaining_qty == 0:
                continue
            selected.append(order)
        if params.get("INQR_DVSN", "00") != "01":
            selected.reverse()
        rows = [self._order_row(o) for o in selected]
        page, tr_cont, next_key = self._page(
            request, rows, "odno", self.options.daily_ccld_page_size
        )
        filled_amt = sum(o.filled_amount for o in selected)
        filled_qty = sum(o.filled_qty for o in selected)
        summary = {
            "tot_ord_qty": str(sum(o.qty for o in selected)),
            "tot_ccld_qty": str(filled_qty),
            "tot_ccld_amt": str(filled_amt),
            "prsm_tlex_smtl": "0",
            "pchs_avg_pric": _s(filled_amt / filled_qty if filled_qty else 0.0),
        }
        account = self.options.account_id
        fk = f"{account[:8]}^{account[8:]}^{start}^{end}^{side}^{ccld}^"
        body = self._query_ok() | {
            "ctx_area_fk100": _ctx(fk),
            "ctx_area_nk100": _ctx(next_key),
            "output1": page,
            "output2": summary,
        }
        return _json(body, tr_id=tr_id, tr_cont=tr_cont), False

    async def _psbl_rvsecncl(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        params = self._params(request)
        self._check_account(params)
        side = params.get("INQR_DVSN_2", "0")
        orders = [
            o for o in self.exchange.open_orders
            if side == "0" or (side == "1" and not o.is_buy) or (side == "2" and o.is_buy)
        ]  # fmt: skip
        if params.get("INQR_DVSN_1", "0") == "1":
            orders.sort(key=lambda o: (o.symbol, o.order_id))
        rows = []
        for order in orders:
            inst = self.exchange.instrument(order.symbol)
            rows.append(
                {
                    "ord_gno_brno": order.branch_no,
                    "odno": order.order_id,
                    "orgn_odno": order.original_order_id,
                    "ord_dvsn_name": ORDER_TYPE_NAMES.get(order.order_type, ""),
                    "pdno": order.symbol,
                    "prdt_name": inst.name,
                    "rvse_cncl_dvsn_name": "정정" if order.kind == "modify" else "",
                    "ord_qty": str(order.qty),
                    "ord_unpr": str(order.price),
                    "ord_tmd": order.created_at.strftime("%H%M%S"),
                    "tot_ccld_qty": str(order.filled_qty),
                    "tot_ccld_amt": str(order.filled_amount),
                    "psbl_qty": str(order.remaining_qty),
                    "sll_buy_dvsn_cd": order.side,
                    "ord_dvsn_cd": order.order_type,
                    "mgco_aptm_odno": "",
                    "excg_dvsn_cd": "02",
                    "excg_id_dvsn_cd": order.placed_on,
                    "excg_id_dvsn_name": _VENUE_NAMES[order.placed_on],
                    "stpm_cndt_pric": str(order.stop_price),
                    "stpm_efct_occr_yn": "Y" if order.stop_price and order.armed else "N",
                }
            )
        page, tr_cont, next_key = self._page(request, rows, "odno", self.options.rvsecncl_page_size)
        fk = f"{self.options.account_id[:8]}^{self.options.account_id[8:]}^{side}^"
        body = self._query_ok() | {
            "ctx_area_fk100": _ctx(fk),
            "ctx_area_nk100": _ctx(next_key),
            "output": page,
        }
        return _json(body, tr_id=tr_id, tr_cont=tr_cont), False

    async def _balance(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        params = self._params(request)
        self._check_account(params)
        rows: list[dict[str, Any]] = []
        scts = cost_total = 0
        for code in sorted(self.exchange.holdings):
            held = self.exchange.holdings[code]
            if held.qty == 0 and held.bought_today == 0 and held.sold_today == 0:
                continue
            inst = self.exchange.instrument(code)
            evlu = held.qty * inst.price
            pnl = evlu - held.cost
            scts += evlu
            cost_total += held.cost
            rows.append(
                {
                    "pdno": code,
                    "prdt_name": inst.name,
                    "trad_dvsn_name": "현금",
                    "bfdy_buy_qty": "0",
                    "bfdy_sll_qty": "0",
                    "thdt_buyqty": str(held.bought_today),
                    "thdt_sll_qty": str(held.sold_today),
                    "hldg_qty": str(held.qty),
                    "ord_psbl_qty": str(self.exchange.orderable_qty(code)),
                    "pchs_avg_pric": f"{held.avg_price:.4f}",
                    "pchs_amt": str(held.cost),
                    "prpr": str(inst.price),
                    "evlu_amt": str(evlu),
                    "evlu_pfls_amt": str(pnl),
                    "evlu_pfls_rt": _s(pnl / held.cost * 100 if held.cost else 0.0),
                    "evlu_erng_rt": "0.00000000",
                    "loan_dt": "",
                    "loan_amt": "0",
                    "stln_slng_chgs": "0",
                    "expd_dt": "",
                    "fltt_rt": _s(inst.change_rate),
                    "bfdy_cprs_icdc": str(inst.change),
                    "item_mgna_rt_name": "",
                    "grta_rt_name": "",
                    "sbst_pric": "0",
                    "stck_loan_unpr": "0",
                }
            )
        page, tr_cont, next_key = self._page(request, rows, "pdno", self.options.balance_page_size)
        fills = self.exchange.fills
        bought = sum(f.qty * f.price for f in fills if f.side == "02")
        sold = sum(f.qty * f.price for f in fills if f.side == "01")
        cash = self.exchange.cash
        # KIS settles D+2 (protocol doc §4.5): today's trades leave the deposit (dnca_tot_amt)
        # as it was and show in the D+1 / D+2 settlement amounts. The simulated account lives
        # within one trading day, so every fill is today's.
        summary = {
            "dnca_tot_amt": str(cash + bought - sold),
            "nxdy_excc_amt": str(cash),
            "prvs_rcdl_excc_amt": str(cash),
            "cma_evlu_amt": "0",
            "bfdy_buy_amt": "0",
            "thdt_buy_amt": str(bought),
            "nxdy_auto_rdpt_amt": "0",
            "bfdy_sll_amt": "0",
            "thdt_sll_amt": str(sold),
            "d2_auto_rdpt_amt": "0",
            "bfdy_tlex_amt": "0",
            "thdt_tlex_amt": "0",
            "tot_loan_amt": "0",
            "scts_evlu_amt": str(scts),
            "tot_evlu_amt": str(cash + scts),
            "nass_amt": str(cash + scts),
            "fncg_gld_auto_rdpt_yn": "N",
            "pchs_amt_smtl_amt": str(cost_total),
            "evlu_amt_smtl_amt": str(scts),
            "evlu_pfls_smtl_amt": str(scts - cost_total),
            "tot_stln_slng_chgs": "0",
            "bfdy_tot_asst_evlu_amt": str(self.exchange.starting_cash),
            "asst_icdc_amt": str(cash + scts - self.exchange.starting_cash),
            "asst_icdc_erng_rt": "0.00000000",
        }
        fk = f"{self.options.account_id[:8]}^{self.options.account_id[8:]}^N^N^02^01^N^"
        body = self._query_ok() | {
            "ctx_area_fk100": _ctx(fk),
            "ctx_area_nk100": _ctx(next_key),
            "output1": page,
            "output2": [summary],
        }
        return _json(body, tr_id=tr_id, tr_cont=tr_cont), False

    async def _holidays(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        """chk-holiday: one row per calendar day from ``BASS_DT`` (protocol doc §11.1), from
        the simulator's deterministic calendar, in one page (``tr_cont "D"``)."""
        params = self._params(request)
        text = params.get("BASS_DT", "").strip()
        try:
            if len(text) != 8 or not text.isdigit():
                raise ValueError(text)
            base = date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise self._fail("bad_quote_input") from None
        self.stats.holiday_requests += 1
        rows = holiday_rows(self.exchange.calendar, base)
        body = self._query_ok() | {"ctx_area_nk": "", "ctx_area_fk": "", "output": rows}
        return _json(body, tr_id=tr_id, tr_cont="D"), False

    async def _psbl_order(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        params = self._params(request)
        self._check_account(params)
        symbol = params.get("PDNO", "").strip()
        if not self.exchange.has_symbol(symbol):
            raise self._reject("unknown_symbol")
        inst = self.exchange.instrument(symbol)
        price = _int(params.get("ORD_UNPR", "") or "0") or 0
        # An empty or zero ORD_UNPR means "at the current price" (the simulator's choice; the
        # doc only says it may be empty).
        calc = price if price > 0 else inst.price
        cash = self.exchange.orderable_cash
        qty = cash // calc if calc > 0 else 0
        output = {
            "ord_psbl_cash": str(cash),
            "ord_psbl_sbst": "0",
            "ruse_psbl_amt": "0",
            "fund_rpch_chgs": "0",
            "psbl_qty_calc_unpr": str(calc),
            "nrcvb_buy_amt": str(qty * calc),
            "nrcvb_buy_qty": str(qty),
            "max_buy_amt": str(qty * calc),
            "max_buy_qty": str(qty),
            "cma_evlu_amt": "0",
            "ovrs_re_use_amt_wcrc": "0",
            "ord_psbl_frcr_amt_wcrc": "0",
        }
        return _json(self._query_ok() | {"output": output}, tr_id=tr_id), False

    def _quote_symbol(self, request: Request) -> tuple[str, str]:
        params = self._params(request)
        symbol = params.get("FID_INPUT_ISCD", "").strip()
        market = params.get("FID_COND_MRKT_DIV_CODE", "J").strip().upper()
        if market not in ("J", "NX", "UN") or not is_valid_symbol(symbol):
            # The simulator's choice of code for malformed quote parameters.
            raise self._fail("bad_quote_input")
        if market != "J" and self.options.is_paper:
            # Paper trading is KRX-only (protocol doc §8); whether the paper server answers
            # NX/UN is [UNCERTAIN] (§9 item 18). The simulator refuses, with its own code.
            raise self._fail("paper_krx_only")
        if not self.exchange.has_symbol(symbol):
            raise self._fail("no_quote_data")
        return symbol, market

    async def _price(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        symbol, market = self._quote_symbol(request)
        inst = self.exchange.instrument(symbol)
        output = price_output(inst, market)
        output |= price_statistics(inst, self.history, int(output["stck_prpr"]))
        return _json(_ok(_QUOTE_OK) | {"output": output}, tr_id=tr_id), False

    def _info_symbol(self, request: Request) -> str:
        params = self._params(request)
        symbol = params.get("PDNO", "").strip()
        product = params.get("PRDT_TYPE_CD", "300").strip()
        if product not in ("300", "301", "302") or not is_valid_symbol(symbol):
            raise self._fail("bad_quote_input")
        if not self.exchange.has_symbol(symbol):
            raise self._fail("no_quote_data")
        return symbol

    async def _search_info(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        """search-info (CTPF1604R): product basic info of a simulated stock."""
        inst = self.exchange.instrument(self._info_symbol(request))
        return _json(self._query_ok() | {"output": search_info(inst)}, tr_id=tr_id), False

    async def _stock_info(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        """search-stock-info (CTPF1002R): stock basic info, NXT eligibility included."""
        inst = self.exchange.instrument(self._info_symbol(request))
        output = stock_info(inst, self.history.today())
        return _json(self._query_ok() | {"output": output}, tr_id=tr_id), False

    # -- charts (protocol doc §10; bodies in kis_async.sim.charts) ----------------------------

    def _price_fields(self, symbol: str) -> dict[str, str]:
        inst = self.exchange.instrument(symbol)
        return {
            "prdy_vrss": str(inst.change),
            "prdy_vrss_sign": inst.sign,
            "prdy_ctrt": _s(inst.change_rate),
        }

    async def _chart(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        symbol, _market = self._quote_symbol(request)  # one history for every market
        body = self.charts.answer(tr_id, symbol, self._params(request))
        return _json(_ok(_QUOTE_OK) | body, tr_id=tr_id), False

    async def _asking_price(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        symbol, market = self._quote_symbol(request)
        out1, out2 = orderbook_outputs(self.exchange, symbol, market, self.clock.now())
        body = _ok(_QUOTE_OK) | {"output1": out1, "output2": out2}
        return _json(body, tr_id=tr_id), False


_VENUE_NAMES: Final = {KRX: "한국거래소", NXT: "넥스트레이드", SOR: "SOR"}


def _stop_stamp(order: SimOrder) -> str:
    # When the stop triggered is not tracked; the order time stands in once it has.
    if order.stop_price and order.armed:
        return order.created_at.strftime("%Y%m%d%H%M%S")
    return ""


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _b64(obj: dict[str, Any]) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
