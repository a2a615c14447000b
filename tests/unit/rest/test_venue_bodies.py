"""Venue fields on the wire: EXCG_ID_DVSN_CD, CNDT_PRIC, FID_COND_MRKT_DIV_CODE, AFHR_FLPR_YN,
the original order's terms on revise/cancel, and chk-holiday paging."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
import pytest
import respx

from kis_async.config import Mode
from kis_async.errors import InvalidOrderError, PaperModeError
from kis_async.models import Exchange, Market, OrderRequest, OrderType

V1 = "/uapi/domestic-stock/v1"
ORDER = f"{V1}/trading/order-cash"
RVSE = f"{V1}/trading/order-rvsecncl"
DAILY = f"{V1}/trading/inquire-daily-ccld"
PRICE = f"{V1}/quotations/inquire-price"
BALANCE = f"{V1}/trading/inquire-balance"
HOLIDAY = f"{V1}/quotations/chk-holiday"

PLACED = {
    "rt_cd": "0",
    "msg_cd": "APBK0013",
    "msg1": "주문 전송 완료 되었습니다.",
    "output": {"KRX_FWDG_ORD_ORGNO": "06010", "ODNO": "0000077001", "ORD_TMD": "101500"},
}


def _body(route: respx.Route) -> dict[str, Any]:
    return dict(json.loads(route.calls.last.request.content))


def _row(odno: str, exchange_key: str, exchange: str, **extra: str) -> dict[str, str]:
    row = {
        "ord_dt": "20261201",
        "ord_gno_brno": "06010",
        "odno": odno,
        "orgn_odno": "",
        "sll_buy_dvsn_cd": "02",
        "pdno": "005930",
        "ord_qty": "5",
        "ord_unpr": "70000",
        "ord_tmd": "101500",
        "tot_ccld_qty": "0",
        "rmn_qty": "5",
        "ord_dvsn_cd": "00",
        exchange_key: exchange,
    }
    row.update(extra)
    return row


async def test_nxt_order_body(live_client: Any, router: respx.MockRouter) -> None:
    """An NXT limit order sends EXCG_ID_DVSN_CD NXT and no CNDT_PRIC."""
    route = router.post(ORDER).respond(200, json=PLACED)
    await live_client.place_order(OrderRequest("005930", "buy", 5, price=70_000, exchange="NXT"))
    body = _body(route)
    assert body["EXCG_ID_DVSN_CD"] == "NXT"
    assert "CNDT_PRIC" not in body


async def test_stop_limit_body(live_client: Any, router: respx.MockRouter) -> None:
    """A stop-limit order sends ORD_DVSN 22, the limit as ORD_UNPR and the trigger as
    CNDT_PRIC."""
    route = router.post(ORDER).respond(200, json=PLACED)
    await live_client.place_order(
        OrderRequest(
            "005930", "buy", 1, order_type=OrderType.STOP_LIMIT, price=71_000, stop_price=70_500
        )
    )
    body = _body(route)
    assert (body["ORD_DVSN"], body["ORD_UNPR"], body["CNDT_PRIC"]) == ("22", "71000", "70500")


@pytest.mark.parametrize(
    "case",
    [
        ("excg_id_dvsn_Cd", "SOR", "00", "70000"),  # the spec's spelling
        ("excg_id_dvsn_cd", "NXT", "03", "0"),  # kis-trader's spelling, a priceless type
    ],
)
async def test_cancel_of_an_unknown_order_repeats_its_venue_and_terms(
    live_client: Any, router: respx.MockRouter, case: tuple[str, str, str, str]
) -> None:
    """Cancelling an order placed elsewhere looks it up in today's orders and sends its venue
    (SOR stays SOR), its ORD_DVSN and its limit price (protocol doc §13)."""
    key, venue, dvsn, price = case
    row = _row("0000055555", key, venue, ord_dvsn_cd=dvsn, ord_unpr=price)
    daily = router.get(DAILY).respond(200, json={"rt_cd": "0", "output1": [row]})
    route = router.post(RVSE).respond(200, json=PLACED)
    assert await live_client.cancel_order("0000055555") is True
    assert daily.call_count == 1
    body = _body(route)
    assert body["EXCG_ID_DVSN_CD"] == venue
    assert body["ORD_DVSN"] == dvsn
    assert body["ORD_UNPR"] == price
    assert body["QTY_ALL_ORD_YN"] == "Y"
    assert body["KRX_FWDG_ORD_ORGNO"] == "06010"


async def test_modify_keeps_the_venue_and_refuses_a_type_it_does_not_take(
    live_client: Any, router: respx.MockRouter
) -> None:
    """Revising an NXT order sends NXT; revising it to a market order (NXT takes none) is
    refused before the revise POST."""
    router.get(DAILY).respond(
        200, json={"rt_cd": "0", "output1": [_row("0000066666", "excg_id_dvsn_Cd", "NXT")]}
    )
    route = router.post(RVSE).respond(200, json=PLACED)
    await live_client.modify_order("0000066666", qty=None, price=70_500, order_type=None)
    assert _body(route)["EXCG_ID_DVSN_CD"] == "NXT"
    assert _body(route)["ORD_UNPR"] == "70500"
    with pytest.raises(InvalidOrderError, match="NXT takes no market orders"):
        await live_client.modify_order(
            "0000066666", qty=None, price=None, order_type=OrderType.MARKET
        )
    assert route.call_count == 1


async def test_order_rows_expose_the_venue_and_stop(
    live_client: Any, router: respx.MockRouter
) -> None:
    """Order rows carry the venue (any key case; blank = None) and the stop price."""
    rows = [
        _row("1", "EXCG_ID_DVSN_CD", "sor"),
        _row("2", "excg_id_dvsn_Cd", ""),
        _row("3", "excg_id_dvsn_cd", "NXT", ord_dvsn_cd="22", stpm_cndt_pric="69500"),
    ]
    router.get(DAILY).respond(200, json={"rt_cd": "0", "output1": rows})
    orders = {o.broker_order_id: o for o in await live_client.get_orders()}
    assert orders["1"].exchange is Exchange.SOR
    assert orders["2"].exchange is None
    assert orders["3"].exchange is Exchange.NXT
    assert orders["3"].order_type is OrderType.STOP_LIMIT
    assert str(orders["3"].stop_price) == "69500"


@pytest.mark.parametrize(("market", "code"), [(Market.NXT, "NX"), ("unified", "UN"), ("J", "J")])
async def test_quote_market_codes(
    live_client: Any, router: respx.MockRouter, market: Any, code: str
) -> None:
    """get_price sends FID_COND_MRKT_DIV_CODE J / NX / UN."""
    route = router.get(PRICE).respond(
        200, json={"rt_cd": "0", "output": {"stck_shrn_iscd": "005930", "stck_prpr": "70000"}}
    )
    await live_client.get_price("005930", market)
    assert route.calls.last.request.url.params["FID_COND_MRKT_DIV_CODE"] == code


async def test_paper_refuses_before_any_request(client: Any, router: respx.MockRouter) -> None:
    """Paper: NXT/SOR orders, NX/UN quotes and chk-holiday raise PaperModeError, no request."""
    order = router.post(ORDER).respond(200, json=PLACED)
    price = router.get(PRICE).respond(200, json={"rt_cd": "0", "output": {}})
    with pytest.raises(PaperModeError, match="KRX-only"):
        await client.place_order(OrderRequest("005930", "buy", 1, price=70_000, exchange="SOR"))
    with pytest.raises(PaperModeError, match="KRX quotes only"):
        await client.get_price("005930", Market.NXT)
    with pytest.raises(PaperModeError, match="live servers"):
        await client.get_holidays(date(2026, 12, 1))
    with pytest.raises(InvalidOrderError, match="unknown market"):
        await client.get_price("005930", "KOSDAQ")
    assert order.call_count == 0
    assert price.call_count == 0


@pytest.mark.parametrize("case", [(True, "X"), (False, "N")])
@pytest.mark.usefixtures("token_route")
async def test_balance_includes_nxt_live(
    make_client: Any, router: respx.MockRouter, kis: Any, case: tuple[bool, str]
) -> None:
    """inquire-balance asks AFHR_FLPR_YN X live (NXT included) and N on paper."""
    live, flag = case
    client = make_client(kis.make_config(Mode.LIVE if live else Mode.PAPER))
    route = router.get(BALANCE).respond(200, json={"rt_cd": "0", "output1": [], "output2": []})
    await client.get_stock_balance()
    assert route.calls.last.request.url.params["AFHR_FLPR_YN"] == flag


async def test_holidays_follow_continuation_and_dedupe(
    live_client: Any, router: respx.MockRouter
) -> None:
    """chk-holiday pages are followed on tr_cont F/M with CTX_AREA_NK/FK echoed; duplicate
    dates keep the first row; opnd_yn decides."""
    first = {
        "rt_cd": "0",
        "ctx_area_nk": "NEXT  ",
        "ctx_area_fk": "FK",
        "output": [
            {"bass_dt": "20261224", "opnd_yn": "Y"},
            {"bass_dt": "20261225", "opnd_yn": "N"},
        ],
    }
    second = {
        "rt_cd": "0",
        "output": [
            {"bass_dt": "20261225", "opnd_yn": "Y"},
            {"bass_dt": "20261228", "opnd_yn": "Y"},
        ],
    }
    route = router.get(HOLIDAY).mock(
        side_effect=[
            httpx.Response(200, json=first, headers={"tr_cont": "F"}),
            httpx.Response(200, json=second, headers={"tr_cont": "D"}),
        ]
    )
    days = await live_client.get_holidays(date(2026, 12, 24))
    assert days == {date(2026, 12, 24): True, date(2026, 12, 25): False, date(2026, 12, 28): True}
    assert route.call_count == 2
    again = route.calls.last.request
    assert again.headers["tr_cont"] == "N"
    assert again.url.params["CTX_AREA_NK"] == "NEXT  "
    assert again.headers["tr_id"] == "CTCA0903R"
