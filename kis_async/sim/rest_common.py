"""What every endpoint group of the simulator's REST surface shares.

The rejection table (:data:`REJECTIONS`) and success codes, the error answer
(:class:`ApiError`), the KIS envelope helpers, and :class:`RestBase`: the state and the
checks the endpoint mixins of :class:`kis_async.sim.rest.RestApi` use.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kis_async.sim.charts import ChartApi
from kis_async.sim.clock import SimClock
from kis_async.sim.exchange import SimExchange
from kis_async.sim.faults import SimFaults, SimStats
from kis_async.sim.history import SimHistory
from kis_async.sim.options import SimOptions

__all__ = ["REJECTIONS", "ApiError", "RestBase"]


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


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class RestBase:
    """State and shared checks of :class:`kis_async.sim.rest.RestApi` (set by its
    ``__init__``), typed here so each endpoint mixin can use them."""

    options: SimOptions
    exchange: SimExchange
    faults: SimFaults
    stats: SimStats
    clock: SimClock
    history: SimHistory
    charts: ChartApi

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

    def _query_ok(self) -> dict[str, Any]:
        return _ok(_PAPER_QUERY_OK if self.options.is_paper else _LIVE_QUERY_OK)

    @staticmethod
    def _params(request: Request) -> dict[str, str]:
        # Query parameters are documented UPPERCASE; clients send continuation keys lowercase.
        return {k.upper(): v for k, v in request.query_params.items()}
