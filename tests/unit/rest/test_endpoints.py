"""Request and response mapping of every endpoint, with bodies shaped as in the protocol doc."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from kis_async.errors import BrokerAPIError, InvalidOrderError, OrderRejectedError
from kis_async.models import KST, OrderRequest, OrderStatus, OrderType, Side
from kis_async.rest.account import derive_status, is_old_range
from kis_async.rest.orders import PlacedOrder

V1 = "/uapi/domestic-stock/v1"
PRICE = f"{V1}/quotations/inquire-price"
BOOK = f"{V1}/quotations/inquire-asking-price-exp-ccn"
ORDER = f"{V1}/trading/order-cash"
RVSE = f"{V1}/trading/order-rvsecncl"
DAILY = f"{V1}/trading/inquire-daily-ccld"
PSBL_RVSE = f"{V1}/trading/inquire-psbl-rvsecncl"
BALANCE = f"{V1}/trading/inquire-balance"
PSBL_ORDER = f"{V1}/trading/inquire-psbl-order"


def _body(route: respx.Route) -> dict[str, Any]:
    return json.loads(route.calls.last.request.content)


def _params(route: respx.Route) -> dict[str, str]:
    return dict(route.calls.last.request.url.params)


# -- quotations -------------------------------------------------------------------------------


async def test_get_price(client: Any, router: respx.MockRouter, kis: Any) -> None:
    """inquire-price: J market + code in; string output mapped to Decimal/int fields."""
    route = router.get(PRICE).respond(
        200,
        json=kis.envelope(
            output={
                "iscd_stat_cls_code": "55",
                "rprs_mrkt_kor_name": "KOSPI200",
                "stck_prpr": "71900",
                "prdy_vrss": "-100",
                "prdy_vrss_sign": "5",
                "prdy_ctrt": "-0.14",
                "acml_tr_pbmn": "219853241700",
                "acml_vol": "3052507",
                "stck_oprc": "72100",
                "stck_hgpr": "72400",
                "stck_lwpr": "71700",
                "stck_mxpr": "93600",
                "stck_llam": "50400",
                "stck_sdpr": "72000",
                "wghn_avrg_stck_prc": "72023.83",
                "aspr_unit": "100",
                "stck_shrn_iscd": "005930",
            }
        ),
    )
    snap = await client.get_price("005930")
    assert _params(route) == {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    assert route.calls.last.request.headers["tr_id"] == "FHKST01010100"
    assert snap.symbol == "005930"
    assert snap.price == Decimal("71900")
    assert snap.change == Decimal("-100")
    assert snap.change_rate == Decimal("-0.14")
    assert (snap.open, snap.high, snap.low) == (72100, 72400, 71700)
    assert (snap.upper_limit, snap.lower_limit, snap.base_price) == (93600, 50400, 72000)
    assert snap.volume == 3052507
    assert snap.turnover == Decimal("219853241700")
    assert snap.tick_size == 100
    assert snap.vwap == Decimal("72023.83")


async def test_get_price_fills_missing_symbol(
    client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """When the output lacks stck_shrn_iscd, the requested symbol is used."""
    router.get(PRICE).respond(200, json=kis.envelope(output={"stck_prpr": "1500"}))
    snap = await client.get_price("000660")
    assert snap.symbol == "000660"
    assert snap.volume is None


@pytest.mark.parametrize("price", ["0", 0, "-100"])
async def test_get_price_without_a_positive_price_is_a_typed_error(
    client: Any, router: respx.MockRouter, kis: Any, price: object
) -> None:
    """rt_cd 0 with a zero price (KIS's answer for an unknown code) is a BrokerAPIError."""
    router.get(PRICE).respond(200, json=kis.envelope(output={"stck_prpr": price}))
    with pytest.raises(BrokerAPIError, match="inquire-price"):
        await client.get_price("000660")


async def test_get_orderbook(client: Any, router: respx.MockRouter, kis: Any) -> None:
    """inquire-asking-price-exp-ccn: 10 levels each side, best first, zero levels dropped."""
    book: dict[str, str] = {"aspr_acpt_hour": "093354"}
    for i in range(1, 11):
        book[f"askp{i}"] = str(72000 + 100 * (i - 1)) if i <= 9 else "0"
        book[f"bidp{i}"] = str(71900 - 100 * (i - 1))
        book[f"askp_rsqn{i}"] = str(10 * i)
        book[f"bidp_rsqn{i}"] = str(20 * i)
    book |= {"total_askp_rsqn": "450", "total_bidp_rsqn": "1100"}
    route = router.get(BOOK).respond(
        200,
        json=kis.envelope(
            output1=book,
            output2={"stck_shrn_iscd": "005930", "antc_cnpr": "0", "antc_vol": "0"},
        ),
    )
    ob = await client.get_orderbook("005930")
    assert route.calls.last.request.headers["tr_id"] == "FHKST01010200"
    assert len(ob.asks) == 9
    assert len(ob.bids) == 10
    assert ob.best_ask is not None
    assert ob.best_ask.price == 72000
    assert ob.best_ask.qty == 10
    assert ob.best_bid is not None
    assert (ob.best_bid.price, ob.best_bid.qty) == (Decimal(71900), 20)
    assert ob.spread == 100
    assert ob.total_ask_qty == 450
    assert ob.total_bid_qty == 1100
    assert ob.expected_price is None
    assert ob.time is not None
    assert ob.time.tzinfo is not None
    assert (ob.time.hour, ob.time.minute, ob.time.second) == (9, 33, 54)


# -- orders -----------------------------------------------------------------------------------

ORDER_OK = {
    "rt_cd": "0",
    "msg_cd": "40600000",
    "msg1": "모의투자 매수주문이 완료 되었습니다.",
    "output": {"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": "0000012345", "ORD_TMD": "091500"},
}


@pytest.mark.parametrize(("side", "tr"), [(Side.BUY, "VTTC0012U"), (Side.SELL, "VTTC0011U")])
async def test_place_limit_order(
    client: Any, router: respx.MockRouter, side: Side, tr: str
) -> None:
    """order-cash body: account, PDNO, ORD_DVSN, string qty/price, EXCG_ID_DVSN_CD KRX."""
    route = router.post(ORDER).respond(200, json=ORDER_OK)
    placed = await client.place_order(OrderRequest("005930", side, 10, price=Decimal("71900")))
    assert isinstance(placed, PlacedOrder)
    assert placed.order_id == "0000012345"
    assert placed.branch_no == "00950"
    assert placed.ordered_at is not None
    assert placed.ordered_at.utcoffset() == timedelta(hours=9)
    assert (placed.ordered_at.hour, placed.ordered_at.minute) == (9, 15)
    assert route.calls.last.request.headers["tr_id"] == tr
    assert _body(route) == {
        "CANO": "50123456",
        "ACNT_PRDT_CD": "01",
        "PDNO": "005930",
        "ORD_DVSN": "00",
        "ORD_QTY": "10",
        "ORD_UNPR": "71900",
        "EXCG_ID_DVSN_CD": "KRX",
    }


async def test_place_market_order_live(live_client: Any, router: respx.MockRouter) -> None:
    """A live market order: TTTC0012U, ORD_DVSN 01 and ORD_UNPR "0"."""
    route = router.post(ORDER).respond(
        200,
        json={
            **ORDER_OK,
            "msg_cd": "APBK0013",
            "output": {"krx_fwdg_ord_orgno": "06010", "odno": "0001569157", "ord_tmd": "155211"},
        },
    )
    placed = await live_client.place_order(
        OrderRequest("005930", Side.BUY, 1, order_type=OrderType.MARKET)
    )
    assert placed.order_id == "0001569157"
    assert placed.branch_no == "06010"
    body = _body(route)
    assert body["ORD_DVSN"] == "01"
    assert body["ORD_UNPR"] == "0"
    assert route.calls.last.request.headers["tr_id"] == "TTTC0012U"


async def test_place_order_rejected(client: Any, router: respx.MockRouter, kis: Any) -> None:
    """A business rejection is OrderRejectedError with the msg_cd."""
    router.post(ORDER).respond(500, json=kis.error_body("APBK0918", "주문가능금액을 초과 했습니다"))
    with pytest.raises(OrderRejectedError) as info:
        await client.place_order(OrderRequest("005930", Side.BUY, 1, price=70000))
    assert info.value.msg_cd == "APBK0918"
    assert info.value.msg == "주문가능금액을 초과 했습니다"


async def test_place_order_without_odno(client: Any, router: respx.MockRouter, kis: Any) -> None:
    """A success without ODNO is a BrokerAPIError, not a silent empty id."""
    router.post(ORDER).respond(200, json=kis.envelope("40600000", output={}))
    with pytest.raises(BrokerAPIError, match="ODNO"):
        await client.place_order(OrderRequest("005930", Side.BUY, 1, price=70000))


async def test_cancel_from_memory(client: Any, router: respx.MockRouter) -> None:
    """Cancel after place: rvsecncl 02, all qty, ORD_QTY/ORD_UNPR "0", branch from memory."""
    router.post(ORDER).respond(200, json=ORDER_OK)
    daily = router.get(DAILY).respond(200, json={"rt_cd": "0", "output1": []})
    route = router.post(RVSE).respond(
        200,
        json={
            "rt_cd": "0",
            "msg_cd": "40630000",
            "msg1": "모의투자 취소주문이 완료 되었습니다.",
            "output": {"krx_fwdg_ord_orgno": "00950", "odno": "0000012346", "ord_tmd": "091600"},
        },
    )
    placed = await client.place_order(OrderRequest("005930", Side.BUY, 10, price=71900))
    assert await client.cancel_order(placed.order_id) is True
    assert daily.call_count == 0
    assert route.calls.last.request.headers["tr_id"] == "VTTC0013U"
    assert _body(route) == {
        "CANO": "50123456",
        "ACNT_PRDT_CD": "01",
        "KRX_FWDG_ORD_ORGNO": "00950",
        "ORGN_ODNO": "0000012345",
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": "0",
        "ORD_UNPR": "0",
        "QTY_ALL_ORD_YN": "Y",
        "EXCG_ID_DVSN_CD": "KRX",
    }


def _daily_row(**overrides: str) -> dict[str, str]:
    row = {
        "ord_dt": "20240612",
        "ord_gno_brno": "00950",
        "odno": "0000077777",
        "orgn_odno": "",
        "ord_dvsn_name": "지정가",
        "sll_buy_dvsn_cd": "02",
        "sll_buy_dvsn_cd_name": "매수",
        "pdno": "005930",
        "prdt_name": "삼성전자",
        "ord_qty": "10",
        "ord_unpr": "71900",
        "ord_tmd": "093001",
        "tot_ccld_qty": "0",
        "avg_prvs": "0",
        "cncl_yn": "N",
        "tot_ccld_amt": "0",
        "ord_dvsn_cd": "00",
        "cncl_cfrm_qty": "0",
        "rmn_qty": "10",
        "rjct_qty": "0",
        "excg_id_dvsn_Cd": "KRX",
    }
    row.update(overrides)
    return row


async def test_cancel_after_restart_finds_branch_in_todays_orders(
    client: Any, router: respx.MockRouter
) -> None:
    """Unknown to memory, the order's branch is found among today's orders."""
    daily = router.get(DAILY).respond(
        200, json={"rt_cd": "0", "output1": [_daily_row(ord_gno_brno="01234")]}
    )
    route = router.post(RVSE).respond(
        200, json={"rt_cd": "0", "msg_cd": "40630000", "output": {"ODNO": "0000077778"}}
    )
    assert await client.cancel_order("77777") is True
    assert daily.call_count == 1
    assert _body(route)["KRX_FWDG_ORD_ORGNO"] == "01234"
    assert _body(route)["ORGN_ODNO"] == "77777"


async def test_cancel_unknown_order(client: Any, router: respx.MockRouter) -> None:
    """An order id in neither memory nor today's orders → InvalidOrderError, no cancel POST."""
    router.get(DAILY).respond(200, json={"rt_cd": "0", "output1": [_daily_row()]})
    route = router.post(RVSE).respond(200, json={"rt_cd": "0"})
    with pytest.raises(InvalidOrderError):
        await client.cancel_order("12345")
    assert route.call_count == 0


async def test_cancel_refused_returns_false(
    client: Any, router: respx.MockRouter, kis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A business refusal (nothing left to cancel) returns False and is logged with the id."""
    client.remember_order("0000012345", "00950")
    router.post(RVSE).respond(
        200, json=kis.error_body("40330000", "모의투자 정정/취소할 수량이 없습니다.")
    )
    caplog.set_level("INFO", logger="kis_async")
    assert await client.cancel_order("0000012345") is False
    assert "0000012345" in caplog.text
    assert "40330000" in caplog.text


async def test_cancel_raises_for_transport_failure(client: Any, router: respx.MockRouter) -> None:
    """A read timeout on cancel raises instead of returning False."""
    from kis_async.errors import BrokerTimeoutError

    client.remember_order("1", "00950")
    route = router.post(RVSE).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(BrokerTimeoutError):
        await client.cancel_order("1")
    assert route.call_count == 1


async def test_modify_price(client: Any, router: respx.MockRouter) -> None:
    """Revise: rvsecncl 01, all remaining qty, new price; the new ODNO is returned."""
    router.post(ORDER).respond(200, json=ORDER_OK)
    route = router.post(RVSE).respond(
        200,
        json={
            "rt_cd": "0",
            "msg_cd": "40610000",
            "output": {"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": "0000012399"},
        },
    )
    placed = await client.place_order(OrderRequest("005930", Side.BUY, 10, price=71900))
    new_id = await client.modify_order(placed.order_id, qty=None, price=72000, order_type=None)
    assert new_id == "0000012399"
    assert _body(route) == {
        "CANO": "50123456",
        "ACNT_PRDT_CD": "01",
        "KRX_FWDG_ORD_ORGNO": "00950",
        "ORGN_ODNO": "0000012345",
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "01",
        "ORD_QTY": "0",
        "ORD_UNPR": "72000",
        "QTY_ALL_ORD_YN": "Y",
        "EXCG_ID_DVSN_CD": "KRX",
    }
    # the new order is remembered: it can be cancelled without a lookup
    cancel = router.post(RVSE).respond(200, json={"rt_cd": "0", "output": {"ODNO": "5"}})
    assert await client.cancel_order(new_id) is True
    assert _body(cancel)["ORGN_ODNO"] == "0000012399"


async def test_modify_qty_keeps_price_from_todays_orders(
    client: Any, router: respx.MockRouter
) -> None:
    """A qty-only revise of an order known only to KIS keeps its price (partial: QTY_ALL N)."""
    router.get(DAILY).respond(200, json={"rt_cd": "0", "output1": [_daily_row()]})
    route = router.post(RVSE).respond(200, json={"rt_cd": "0", "output": {"ODNO": "88"}})
    assert await client.modify_order("0000077777", qty=4, price=None, order_type=None) == "88"
    body = _body(route)
    assert (body["ORD_QTY"], body["ORD_UNPR"], body["QTY_ALL_ORD_YN"]) == ("4", "71900", "N")


async def test_modify_to_market(client: Any, router: respx.MockRouter) -> None:
    """Changing to a market order sends ORD_DVSN 01 and ORD_UNPR 0."""
    client.remember_order("42", "00950")
    router.get(DAILY).respond(200, json={"rt_cd": "0", "output1": [_daily_row(odno="42")]})
    route = router.post(RVSE).respond(200, json={"rt_cd": "0", "output": {"ODNO": "43"}})
    await client.modify_order("42", qty=None, price=None, order_type=OrderType.MARKET)
    assert (_body(route)["ORD_DVSN"], _body(route)["ORD_UNPR"]) == ("01", "0")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"qty": 0, "price": None, "order_type": None},
        {"qty": -1, "price": None, "order_type": None},
        {"qty": 1.5, "price": None, "order_type": None},
        {"qty": True, "price": None, "order_type": None},
        {"qty": None, "price": 70001, "order_type": None},
        {"qty": None, "price": 0, "order_type": None},
        {"qty": None, "price": -100, "order_type": None},
        {"qty": None, "price": "abc", "order_type": None},
        {"qty": None, "price": 70000.5, "order_type": None},
        {"qty": None, "price": None, "order_type": None},
        {"qty": None, "price": 70000, "order_type": OrderType.MARKET},
        {"qty": None, "price": None, "order_type": OrderType.LIMIT},
        {"qty": None, "price": 70000, "order_type": "99"},
    ],
)
async def test_modify_validates_before_any_request(
    client: Any, router: respx.MockRouter, kwargs: dict[str, Any]
) -> None:
    """Bad modify arguments raise InvalidOrderError with zero requests made."""
    client.remember_order("0000012345", "00950")
    with pytest.raises(InvalidOrderError):
        await client.modify_order("0000012345", **kwargs)
    assert router.calls.call_count == 0


async def test_modify_checks_exact_tick_once_symbol_known(
    client: Any, router: respx.MockRouter
) -> None:
    """For an order placed elsewhere the exact stock tick is enforced before the revise POST."""
    router.get(DAILY).respond(200, json={"rt_cd": "0", "output1": [_daily_row()]})
    route = router.post(RVSE).respond(200, json={"rt_cd": "0", "output": {"ODNO": "1"}})
    with pytest.raises(InvalidOrderError, match="tick"):
        await client.modify_order("0000077777", qty=None, price=70050, order_type=None)
    assert route.call_count == 0


async def test_modify_rejected(client: Any, router: respx.MockRouter, kis: Any) -> None:
    """A refused revise raises OrderRejectedError."""
    client.remember_order("1", "00950")
    router.get(DAILY).respond(200, json={"rt_cd": "0", "output1": [_daily_row(odno="1")]})
    router.post(RVSE).respond(500, json=kis.error_body("APBK0999", "정정 불가"))
    with pytest.raises(OrderRejectedError):
        await client.modify_order("1", qty=None, price=72000, order_type=None)


# -- account ----------------------------------------------------------------------------------


async def test_get_orders_today_by_default(client: Any, router: respx.MockRouter) -> None:
    """inquire-daily-ccld for today (KST), all symbols/sides; rows mapped to Order."""
    route = router.get(DAILY).respond(
        200,
        json={
            "rt_cd": "0",
            "msg_cd": "20310000",
            "output1": [
                _daily_row(),
                _daily_row(
                    odno="0000077778",
                    tot_ccld_qty="10",
                    rmn_qty="0",
                    avg_prvs="71850",
                    sll_buy_dvsn_cd="01",
                ),
            ],
            "output2": {"tot_ord_qty": "20", "tot_ccld_qty": "10"},
        },
    )
    orders = await client.get_orders()
    today = datetime.now(KST).strftime("%Y%m%d")
    params = _params(route)
    assert route.calls.last.request.headers["tr_id"] == "VTTC0081R"
    assert params["INQR_STRT_DT"] == today
    assert params["INQR_END_DT"] == today
    assert params["CANO"] == "50123456"
    assert params["ACNT_PRDT_CD"] == "01"
    assert params["CCLD_DVSN"] == "00"
    assert params["SLL_BUY_DVSN_CD"] == "00"
    first, second = orders
    assert first.broker_order_id == "0000077777"
    assert first.branch_no == "00950"
    assert first.side is Side.BUY
    assert first.order_type is OrderType.LIMIT
    assert first.price == 71900
    assert first.status is OrderStatus.OPEN
    assert first.remaining_qty == 10
    assert first.ordered_at == datetime(2024, 6, 12, 9, 30, 1, tzinfo=KST)
    assert second.status is OrderStatus.FILLED
    assert second.avg_fill_price == 71850
    assert second.side is Side.SELL


async def test_get_orders_old_range_uses_old_tr(live_client: Any, router: respx.MockRouter) -> None:
    """A range starting more than 3 months ago uses CTSC9215R (live)."""
    route = router.get(DAILY).respond(200, json={"rt_cd": "0", "output1": []})
    start = datetime.now(KST).date() - timedelta(days=200)
    assert await live_client.get_orders(start=start, end=start + timedelta(days=5)) == []
    assert route.calls.last.request.headers["tr_id"] == "CTSC9215R"
    assert _params(route)["INQR_STRT_DT"] == start.strftime("%Y%m%d")


async def test_get_orders_start_after_end(client: Any) -> None:
    """start after end is a ValueError before any request."""
    with pytest.raises(ValueError, match="start"):
        await client.get_orders(start=date(2024, 2, 1), end=date(2024, 1, 1))


def test_is_old_range() -> None:
    """Three calendar months back is the boundary."""
    assert not is_old_range(date(2024, 3, 31), date(2024, 6, 30))
    assert is_old_range(date(2024, 3, 29), date(2024, 6, 30))
    assert not is_old_range(date(2023, 11, 30), date(2024, 2, 29))
    assert is_old_range(date(2023, 11, 28), date(2024, 2, 29))


@pytest.mark.parametrize(
    ("qty", "filled", "remaining", "cancelled", "rejected", "flag", "status"),
    [
        (10, 0, 10, 0, 0, False, OrderStatus.OPEN),
        (10, 4, 6, 0, 0, False, OrderStatus.PARTIALLY_FILLED),
        (10, 10, 0, 0, 0, False, OrderStatus.FILLED),
        (10, 0, 0, 10, 0, False, OrderStatus.CANCELLED),
        (10, 4, 0, 6, 0, False, OrderStatus.CANCELLED),
        (10, 0, 0, 0, 10, False, OrderStatus.REJECTED),
        (10, 0, 0, 0, 0, True, OrderStatus.CANCELLED),
        (10, 3, 0, 0, 7, False, OrderStatus.CANCELLED),
    ],
)
def test_derive_status(
    *,
    qty: int,
    filled: int,
    remaining: int,
    cancelled: int,
    rejected: int,
    flag: bool,
    status: OrderStatus,
) -> None:
    """Status from tot_ccld_qty, rmn_qty, cncl_cfrm_qty, rjct_qty and cncl_yn."""
    assert (
        derive_status(
            qty=qty,
            filled=filled,
            remaining=remaining,
            cancelled=cancelled,
            rejected=rejected,
            cancel_flag=flag,
        )
        is status
    )


async def test_daily_row_accepts_cnc_cfrm_qty_spelling(
    client: Any, router: respx.MockRouter
) -> None:
    """The sample's cnc_cfrm_qty spelling is read as the cancelled quantity."""
    row = _daily_row(rmn_qty="0", tot_ccld_qty="2")
    del row["cncl_cfrm_qty"]
    row["cnc_cfrm_qty"] = "8"
    router.get(DAILY).respond(200, json={"rt_cd": "0", "output1": [row]})
    (order,) = await client.get_orders()
    assert order.cancelled_qty == 8
    assert order.status is OrderStatus.CANCELLED


async def test_get_open_orders_paper_uses_unfilled_daily_orders(
    client: Any, router: respx.MockRouter
) -> None:
    """Paper has no inquire-psbl-rvsecncl: CCLD_DVSN 02 daily orders with rmn_qty > 0."""
    psbl = router.get(PSBL_RVSE).respond(200, json={"rt_cd": "0", "output": []})
    route = router.get(DAILY).respond(
        200,
        json={
            "rt_cd": "0",
            "output1": [
                _daily_row(),
                _daily_row(odno="2", rmn_qty="0", cncl_cfrm_qty="10"),
            ],
        },
    )
    orders = await client.get_open_orders()
    assert [o.broker_order_id for o in orders] == ["0000077777"]
    assert _params(route)["CCLD_DVSN"] == "02"
    assert psbl.call_count == 0


async def test_get_open_orders_live(live_client: Any, router: respx.MockRouter) -> None:
    """Live asks inquire-psbl-rvsecncl; psbl_qty is the open quantity."""
    route = router.get(PSBL_RVSE).respond(
        200,
        json={
            "rt_cd": "0",
            "msg_cd": "KIOK0510",
            "output": [
                {
                    "ord_gno_brno": "06010",
                    "odno": "0001569157",
                    "orgn_odno": "",
                    "pdno": "005930",
                    "prdt_name": "삼성전자",
                    "ord_qty": "10",
                    "ord_unpr": "71900",
                    "ord_tmd": "100000",
                    "tot_ccld_qty": "3",
                    "tot_ccld_amt": "215700",
                    "psbl_qty": "7",
                    "sll_buy_dvsn_cd": "02",
                    "ord_dvsn_cd": "00",
                },
            ],
        },
    )
    (order,) = await live_client.get_open_orders()
    assert route.calls.last.request.headers["tr_id"] == "TTTC0084R"
    params = _params(route)
    assert (params["INQR_DVSN_1"], params["INQR_DVSN_2"]) == ("0", "0")
    assert order.remaining_qty == 7
    assert order.filled_qty == 3
    assert order.avg_fill_price == Decimal(71900)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.branch_no == "06010"


@pytest.mark.parametrize("shape", ["array", "object"])
async def test_get_cash(client: Any, router: respx.MockRouter, shape: str) -> None:
    """dnca_tot_amt of inquire-balance output2 (one-element array or object)."""
    summary = {"dnca_tot_amt": "10000000", "prvs_rcdl_excc_amt": "9000000"}
    route = router.get(BALANCE).respond(
        200,
        json={"rt_cd": "0", "output1": [], "output2": [summary] if shape == "array" else summary},
    )
    assert await client.get_cash() == Decimal("10000000")
    params = _params(route)
    assert route.calls.last.request.headers["tr_id"] == "VTTC8434R"
    assert params["INQR_DVSN"] == "02"
    assert params["AFHR_FLPR_YN"] == "N"
    assert params["PRCS_DVSN"] == "00"


async def test_get_cash_missing_summary(client: Any, router: respx.MockRouter) -> None:
    """No output2 → BrokerAPIError rather than a wrong zero."""
    router.get(BALANCE).respond(200, json={"rt_cd": "0", "output1": [], "output2": []})
    with pytest.raises(BrokerAPIError):
        await client.get_cash()


async def test_get_stock_balance_skips_zero_rows(client: Any, router: respx.MockRouter) -> None:
    """inquire-balance output1 → Position, zero-quantity rows left out."""
    router.get(BALANCE).respond(
        200,
        json={
            "rt_cd": "0",
            "output1": [
                {
                    "pdno": "005930",
                    "prdt_name": "삼성전자",
                    "hldg_qty": "10",
                    "ord_psbl_qty": "8",
                    "pchs_avg_pric": "70000.5000",
                    "pchs_amt": "700005",
                    "prpr": "71900",
                    "evlu_amt": "719000",
                    "evlu_pfls_amt": "18995",
                    "evlu_pfls_rt": "2.71",
                },
                {"pdno": "000660", "prdt_name": "SK하이닉스", "hldg_qty": "0", "ord_psbl_qty": "0"},
            ],
            "output2": [{"dnca_tot_amt": "1"}],
        },
    )
    (pos,) = await client.get_stock_balance()
    assert pos.symbol == "005930"
    assert (pos.qty, pos.orderable_qty) == (10, 8)
    assert pos.avg_price == Decimal("70000.5000")
    assert pos.current_price == 71900
    assert pos.pnl == Decimal("18995")
    assert pos.pnl_rate == Decimal("2.71")


@pytest.mark.parametrize(
    ("price", "unpr", "dvsn"), [(None, "0", "01"), (71900, "71900", "00"), ("500", "500", "00")]
)
async def test_get_buying_power(
    client: Any, router: respx.MockRouter, price: Any, unpr: str, dvsn: str
) -> None:
    """inquire-psbl-order: PDNO, ORD_UNPR ("0" without price), ORD_DVSN; output mapped."""
    route = router.get(PSBL_ORDER).respond(
        200,
        json={
            "rt_cd": "0",
            "output": {
                "ord_psbl_cash": "5000000",
                "nrcvb_buy_amt": "4990000",
                "nrcvb_buy_qty": "69",
                "max_buy_amt": "4990000",
                "max_buy_qty": "69",
                "psbl_qty_calc_unpr": "71900",
            },
        },
    )
    bp = await client.get_buying_power("005930", price)
    params = _params(route)
    assert route.calls.last.request.headers["tr_id"] == "VTTC8908R"
    assert (params["PDNO"], params["ORD_UNPR"], params["ORD_DVSN"]) == ("005930", unpr, dvsn)
    assert bp.symbol == "005930"
    assert bp.orderable_cash == Decimal("5000000")
    assert bp.max_buy_qty == 69
    assert bp.calc_price == 71900


@pytest.mark.parametrize("price", [0, -1, "x", 1.5])
async def test_get_buying_power_bad_price(
    client: Any, router: respx.MockRouter, price: Any
) -> None:
    """A bad price is InvalidOrderError before any request."""
    with pytest.raises(InvalidOrderError):
        await client.get_buying_power("005930", price)
    assert router.calls.call_count == 0


async def test_closed_client_refuses_calls(make_client: Any) -> None:
    """Calls after aclose raise RuntimeError; aclose is idempotent."""
    client = make_client()
    await client.aclose()
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.get_price("005930")


async def test_injected_http_client_not_closed(make_client: Any, kis: Any) -> None:
    """An injected httpx client stays open after aclose; an owned one is closed."""
    async with httpx.AsyncClient() as http:
        client = make_client(http_client=http)
        await client.aclose()
        assert not http.is_closed
    own = make_client()
    await own.aclose()
    assert own._http.is_closed
