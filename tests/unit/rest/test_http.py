"""Headers, TR ids, envelope decoding, the error table, transport errors and paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from kis_async.config import Mode
from kis_async.errors import (
    AuthenticationError,
    BrokerAPIError,
    BrokerConnectionError,
    BrokerTimeoutError,
    OrderRejectedError,
    RateLimitError,
    ServerError,
)
from kis_async.models import OrderRequest, Side
from kis_async.rest.http import KISResponse, build_headers, paginate
from kis_async.rest.trids import Api, UnsupportedInPaperError, tr_id

PRICE_PATH = "/uapi/domestic-stock/v1/quotations/inquire-price"
ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"
BALANCE_PATH = "/uapi/domestic-stock/v1/trading/inquire-balance"

PRICE_OUTPUT = {"stck_shrn_iscd": "005930", "stck_prpr": "71900", "aspr_unit": "100"}


@pytest.mark.parametrize(
    ("api", "live", "paper"),
    [
        (Api.ORDER_SELL, "TTTC0011U", "VTTC0011U"),
        (Api.ORDER_BUY, "TTTC0012U", "VTTC0012U"),
        (Api.REVISE_CANCEL, "TTTC0013U", "VTTC0013U"),
        (Api.DAILY_ORDERS, "TTTC0081R", "VTTC0081R"),
        (Api.DAILY_ORDERS_OLD, "CTSC9215R", "VTSC9215R"),
        (Api.BALANCE, "TTTC8434R", "VTTC8434R"),
        (Api.BUYING_POWER, "TTTC8908R", "VTTC8908R"),
        (Api.PRICE, "FHKST01010100", "FHKST01010100"),
        (Api.ORDERBOOK, "FHKST01010200", "FHKST01010200"),
    ],
)
def test_tr_ids_per_mode(api: Api, live: str, paper: str) -> None:
    """Each API uses the new TR id of the protocol table, live vs paper by mode."""
    assert tr_id(api, Mode.LIVE) == live
    assert tr_id(api, Mode.PAPER) == paper


def test_cancelable_orders_has_no_paper_tr_id() -> None:
    """inquire-psbl-rvsecncl exists only live."""
    assert tr_id(Api.CANCELABLE_ORDERS, Mode.LIVE) == "TTTC0084R"
    with pytest.raises(UnsupportedInPaperError):
        tr_id(Api.CANCELABLE_ORDERS, Mode.PAPER)


def test_build_headers(kis: Any) -> None:
    """KIS headers carry content-type, bearer token, keys, tr_id, tr_cont and custtype."""
    headers = build_headers(kis.make_config(), tr_id="VTTC8434R", token="T", tr_cont="N")
    assert headers == {
        "content-type": "application/json; charset=utf-8",
        "authorization": "Bearer T",
        "appkey": kis.APP_KEY,
        "appsecret": kis.APP_SECRET,
        "custtype": "P",
        "tr_id": "VTTC8434R",
        "tr_cont": "N",
    }
    oauth = build_headers(kis.make_config())
    assert "authorization" not in oauth
    assert "tr_id" not in oauth


@pytest.mark.parametrize(("mode", "tr"), [(Mode.PAPER, "VTTC0012U"), (Mode.LIVE, "TTTC0012U")])
async def test_request_headers_on_the_wire(
    make_client: Any, router: respx.MockRouter, kis: Any, mode: Mode, tr: str
) -> None:
    """An order POST sends the bearer token, keys, the mode's TR id and custtype."""
    router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    route = router.post(ORDER_PATH).respond(
        200,
        json=kis.envelope(
            "40600000",
            output={"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": "0000012345", "ORD_TMD": "091500"},
        ),
    )
    client = make_client(kis.make_config(mode))
    await client.place_order(OrderRequest("005930", Side.BUY, 1, price=70000))
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {kis.TOKEN}"
    assert request.headers["appkey"] == kis.APP_KEY
    assert request.headers["appsecret"] == kis.APP_SECRET
    assert request.headers["tr_id"] == tr
    assert request.headers["custtype"] == "P"
    assert request.headers["tr_cont"] == ""
    assert request.headers["content-type"].startswith("application/json")


# -- error table ---------------------------------------------------------------------------

ERROR_TABLE = [
    # (status, body, is order call, expected class, expected msg_cd)
    (
        500,
        {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당 거래건수를 초과하였습니다.  "},
        False,
        RateLimitError,
        "EGW00201",
    ),
    (
        200,
        {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당 거래건수를 초과하였습니다."},
        False,
        RateLimitError,
        "EGW00201",
    ),
    (
        500,
        {"rt_cd": "1", "msg_cd": "EGW00215", "msg1": "원장 초당 거래건수 초과"},
        False,
        RateLimitError,
        "EGW00215",
    ),
    (
        403,
        {"rt_cd": "1", "msg_cd": "EGW00103", "msg1": "유효하지 않은 AppKey입니다."},
        False,
        AuthenticationError,
        "EGW00103",
    ),
    (
        403,
        {"rt_cd": "1", "msg_cd": "EGW00105", "msg1": "유효하지 않은 AppSecret입니다."},
        False,
        AuthenticationError,
        "EGW00105",
    ),
    (
        500,
        {"rt_cd": "1", "msg_cd": "EGW00002", "msg1": "서버 에러"},
        False,
        BrokerAPIError,
        "EGW00002",
    ),
    (
        200,
        {"rt_cd": "1", "msg_cd": "APBK0918", "msg1": "주문가능금액을 초과 했습니다"},
        True,
        OrderRejectedError,
        "APBK0918",
    ),
    (
        500,
        {"rt_cd": "1", "msg_cd": "APBK1943", "msg1": "시장가호가불가"},
        True,
        OrderRejectedError,
        "APBK1943",
    ),
    (
        200,
        {"rt_cd": "1", "msg_cd": "OPSQ0002", "msg1": "없는 서비스 코드 입니다"},
        False,
        BrokerAPIError,
        "OPSQ0002",
    ),
    (500, {"rt_cd": "1", "msg_cd": "", "msg1": ""}, False, ServerError, None),
    (503, {}, False, ServerError, None),
    (401, {}, False, AuthenticationError, None),
    (
        403,
        {
            "error_code": "EGW00133",
            "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
        },
        False,
        AuthenticationError,
        "EGW00133",
    ),
    (
        401,
        {"error_code": "EGW00121", "error_description": "유효하지 않은 token"},
        False,
        AuthenticationError,
        "EGW00121",
    ),
]


@pytest.mark.parametrize(("status", "body", "is_order", "cls", "msg_cd"), ERROR_TABLE)
async def test_error_table(
    *,
    make_client: Any,
    router: respx.MockRouter,
    kis: Any,
    status: int,
    body: dict[str, Any],
    is_order: bool,
    cls: type[Exception],
    msg_cd: str | None,
) -> None:
    """Each failure answer maps to its class by msg_cd first, then HTTP status."""
    router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    client = make_client(kis.make_config(max_retries=0))
    if is_order:
        router.post(ORDER_PATH).respond(status, json=body)
        call = client.place_order(OrderRequest("005930", Side.SELL, 1, price=70000))
    else:
        router.get(PRICE_PATH).respond(status, json=body)
        call = client.get_price("005930")
    with pytest.raises(cls) as info:
        await call
    err = info.value
    assert type(err) is cls
    assert isinstance(err, BrokerAPIError)
    assert err.msg_cd == msg_cd
    assert err.status_code == status
    expected_tr = "VTTC0011U" if is_order else "FHKST01010100"
    assert err.tr_id == expected_tr
    if err.msg is not None:
        assert err.msg == err.msg.strip()


async def test_msg1_is_stripped_and_business_error_on_200(
    client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """A business failure in an HTTP 200 is still a failure; msg1 padding is stripped."""
    router.get(PRICE_PATH).respond(
        200, json=kis.error_body("OPSQ9999", "잘못된 요청입니다.          ")
    )
    with pytest.raises(BrokerAPIError) as info:
        await client.get_price("005930")
    assert info.value.msg == "잘못된 요청입니다."
    assert info.value.rt_cd == "1"


async def test_success_with_http_200(client: Any, router: respx.MockRouter, kis: Any) -> None:
    """rt_cd 0 decodes the output."""
    router.get(PRICE_PATH).respond(200, json=kis.envelope(output=PRICE_OUTPUT))
    snapshot = await client.get_price("005930")
    assert snapshot.price == 71900


@pytest.mark.parametrize(("status", "cls"), [(200, BrokerAPIError), (502, ServerError)])
async def test_non_json_body(
    make_client: Any, router: respx.MockRouter, kis: Any, status: int, cls: type[Exception]
) -> None:
    """A body that is not JSON becomes a BrokerAPIError (ServerError for 5xx), chained."""
    router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    router.get(PRICE_PATH).respond(status, text="<html>gateway</html>")
    client = make_client(kis.make_config(max_retries=0))
    with pytest.raises(cls) as info:
        await client.get_price("005930")
    assert type(info.value) is cls
    assert info.value.__cause__ is not None


async def test_unexpected_output_shape(client: Any, router: respx.MockRouter, kis: Any) -> None:
    """A success answer missing required fields raises BrokerAPIError from the pydantic error."""
    router.get(PRICE_PATH).respond(200, json=kis.envelope(output={"stck_oprc": "1"}))
    with pytest.raises(BrokerAPIError) as info:
        await client.get_price("005930")
    assert info.value.tr_id == "FHKST01010100"
    assert info.value.__cause__ is not None


# -- transport errors -------------------------------------------------------------------------

TRANSPORT_TABLE = [
    (httpx.ConnectError("refused"), BrokerConnectionError, None),
    (httpx.ConnectTimeout("slow connect"), BrokerTimeoutError, False),
    (httpx.PoolTimeout("pool"), BrokerTimeoutError, False),
    (httpx.ReadTimeout("slow read"), BrokerTimeoutError, True),
    (httpx.WriteTimeout("slow write"), BrokerTimeoutError, True),
    (httpx.RemoteProtocolError("dropped"), BrokerTimeoutError, True),
    (httpx.ReadError("reset"), BrokerTimeoutError, True),
]


@pytest.mark.parametrize(("exc", "cls", "sent"), TRANSPORT_TABLE)
async def test_transport_errors_translated(
    *,
    make_client: Any,
    router: respx.MockRouter,
    kis: Any,
    exc: Exception,
    cls: type[Exception],
    sent: bool | None,
) -> None:
    """httpx exceptions become BrokerConnectionError/BrokerTimeoutError, chained."""
    router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    router.get(PRICE_PATH).mock(side_effect=exc)
    client = make_client(kis.make_config(max_retries=0))
    with pytest.raises(cls) as info:
        await client.get_price("005930")
    assert type(info.value) is cls
    assert info.value.__cause__ is exc
    if sent is not None:
        assert isinstance(info.value, BrokerTimeoutError)
        assert info.value.request_sent is sent


async def test_gateway_timeout_code_on_order_is_request_sent(
    client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """EGW00301 on an order call means it may be booked: BrokerTimeoutError(request_sent)."""
    route = router.post(ORDER_PATH).respond(500, json=kis.error_body("EGW00301"))
    with pytest.raises(BrokerTimeoutError) as info:
        await client.place_order(OrderRequest("005930", Side.BUY, 1, price=70000))
    assert info.value.request_sent is True
    assert isinstance(info.value.__cause__, BrokerAPIError)
    assert route.call_count == 1


# -- paging ----------------------------------------------------------------------------------

FK1 = "81055689^01^N^N^01^01^N^" + " " * 76
NK1 = "ABC" + " " * 97
FK2 = "81055689^01^N^N^01^01^N^2" + " " * 75
NK2 = "DEF" + " " * 97


def _holding(symbol: str, qty: str = "10") -> dict[str, str]:
    return {"pdno": symbol, "prdt_name": "종목", "hldg_qty": qty, "ord_psbl_qty": qty}


async def test_paging_across_three_pages(client: Any, router: respx.MockRouter, kis: Any) -> None:
    """tr_cont F/M pages are followed with tr_cont N and the unchanged ctx keys until D."""
    pages = [
        httpx.Response(
            200,
            headers={"tr_cont": "F"},
            json=kis.envelope(
                output1=[_holding("005930")],
                output2=[{"dnca_tot_amt": "1"}],
                ctx_area_fk100=FK1,
                ctx_area_nk100=NK1,
            ),
        ),
        httpx.Response(
            200,
            headers={"tr_cont": "M"},
            json=kis.envelope(
                output1=[_holding("000660")],
                output2=[{"dnca_tot_amt": "1"}],
                ctx_area_fk100=FK2,
                ctx_area_nk100=NK2,
            ),
        ),
        httpx.Response(
            200,
            headers={"tr_cont": "D"},
            json=kis.envelope(
                output1=[_holding("035720")],
                output2=[{"dnca_tot_amt": "1"}],
                ctx_area_fk100=FK2,
                ctx_area_nk100=NK2,
            ),
        ),
    ]
    route = router.get(BALANCE_PATH).mock(side_effect=pages)
    positions = await client.get_stock_balance()
    assert [p.symbol for p in positions] == ["005930", "000660", "035720"]
    assert route.call_count == 3
    first, second, third = (call.request for call in route.calls)
    assert first.headers["tr_cont"] == ""
    assert first.url.params["CTX_AREA_FK100"] == ""
    assert second.headers["tr_cont"] == "N"
    assert second.url.params["CTX_AREA_FK100"] == FK1
    assert second.url.params["CTX_AREA_NK100"] == NK1
    assert third.headers["tr_cont"] == "N"
    assert third.url.params["CTX_AREA_FK100"] == FK2
    assert third.url.params["CTX_AREA_NK100"] == NK2


async def test_paging_is_bounded() -> None:
    """A server that always says 'more' is stopped after max_pages."""
    calls = 0

    async def fetch(tr_cont: str, fk: str, nk: str) -> KISResponse:
        nonlocal calls
        calls += 1
        return KISResponse(200, {"ctx_area_fk100": "x"}, tr_cont="M", tr_id="VTTC8434R")

    with pytest.raises(BrokerAPIError, match="more pages"):
        await paginate(fetch, max_pages=5)
    assert calls == 5


async def test_single_page_with_end_marker() -> None:
    """tr_cont E (or blank) ends paging after one call."""
    for marker in ("E", "D", ""):
        seen: list[str] = []

        async def fetch(
            tr_cont: str, fk: str, nk: str, marker: str = marker, seen: list[str] = seen
        ) -> KISResponse:
            seen.append(tr_cont)
            return KISResponse(200, {}, tr_cont=marker)

        pages = await paginate(fetch)
        assert len(pages) == 1
        assert seen == [""]
