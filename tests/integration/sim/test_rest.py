"""The simulator's REST surface end to end over real sockets (httpx, no SDK)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from kis_async import Mode
from kis_async.models.common import tick_size
from kis_async.sim import KISSimulator

PRICE = "/quotations/inquire-price"
BOOK = "/quotations/inquire-asking-price-exp-ccn"
QUOTE = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}


def _all_strings(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_all_strings(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_strings(v) for v in value)
    return isinstance(value, str)


async def test_token_shape_and_reuse_within_six_hours(paper: Any) -> None:
    """tokenP answers a Bearer JWT with a KST expiry 24 h out; a later call within 6 h returns
    the same token, a call within the same minute gets HTTP 403 EGW00133 OAuth-shaped."""
    sim, kis = paper
    body = {"grant_type": "client_credentials", "appkey": sim.app_key, "appsecret": sim.app_secret}
    first = await kis.client.post("/oauth2/tokenP", json=body)
    assert first.status_code == 200
    data = first.json()
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 86400
    assert data["access_token"].count(".") == 2
    expiry = datetime.strptime(
        data["access_token_token_expired"] + " +0900", "%Y-%m-%d %H:%M:%S %z"
    )
    delta = expiry - sim.clock.now()
    assert 86_300 < delta.total_seconds() <= 86_400
    throttled = await kis.client.post("/oauth2/tokenP", json=body)
    assert throttled.status_code == 403
    assert throttled.json() == {
        "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
        "error_code": "EGW00133",
    }
    sim.clock.advance(3_600)
    again = await kis.client.post("/oauth2/tokenP", json=body)
    assert again.json()["access_token"] == data["access_token"]
    assert again.json()["access_token_token_expired"] == data["access_token_token_expired"]
    sim.clock.advance(6 * 3_600)
    fresh = await kis.client.post("/oauth2/tokenP", json=body)
    assert fresh.json()["access_token"] != data["access_token"]
    assert sim.stats.tokens_issued == 2
    assert sim.stats.token_throttle_rejections == 1


async def test_token_refused_for_wrong_secret_and_revoke(paper: Any) -> None:
    """A wrong secret gets an OAuth-shaped 403; revokeP invalidates the token (EGW00121)."""
    sim, kis = paper
    bad = await kis.client.post(
        "/oauth2/tokenP",
        json={"grant_type": "client_credentials", "appkey": sim.app_key, "appsecret": "x"},
    )
    assert bad.status_code == 403
    assert bad.json()["error_code"] == "EGW00105"
    token = await kis.token()
    revoked = await kis.client.post(
        "/oauth2/revokeP",
        json={"appkey": sim.app_key, "appsecret": sim.app_secret, "token": token},
    )
    assert revoked.json() == {"code": 200, "message": "접근토큰 폐기에 성공하였습니다"}
    after = await kis.get(PRICE, "FHKST01010100", QUOTE)
    assert after.json()["msg_cd"] == "EGW00121"


async def test_approval_key_and_hashkey(paper: Any) -> None:
    """Approval takes ``secretkey`` and returns a 36-char key; hashkey echoes BODY + HASH."""
    sim, kis = paper
    key = await kis.approval_key()
    assert len(key) == 36
    wrong_field = await kis.client.post(
        "/oauth2/Approval",
        json={"grant_type": "client_credentials", "appkey": sim.app_key, "appsecret": "x"},
    )
    assert wrong_field.status_code == 403
    order = {"CANO": "12345678", "PDNO": "005930"}
    hashed = await kis.client.post(
        "/uapi/hashkey",
        json=order,
        headers={"appkey": sim.app_key, "appsecret": sim.app_secret},
    )
    assert hashed.json()["BODY"] == order
    assert len(hashed.json()["HASH"]) == 64
    assert sim.stats.approval_keys_issued == 1


@pytest.mark.parametrize(
    ("change", "msg_cd", "status"),
    [
        ({"authorization": "Bearer nope"}, "EGW00121", 500),
        ({"authorization": "Basic abc"}, "EGW00205", 500),
        ({"appkey": "PSwrong"}, "EGW00103", 403),
        ({"appsecret": "wrong"}, "EGW00105", 403),
        ({"tr_id": "FHKST99999999"}, "OPSQ0002", 500),
    ],
)
async def test_header_checks(paper: Any, change: dict[str, str], msg_cd: str, status: int) -> None:
    """Bad token, auth scheme, app key, app secret or tr_id are refused with KIS's codes."""
    _, kis = paper
    headers = await kis.headers("FHKST01010100") | change
    response = await kis.client.get(
        "/uapi/domestic-stock/v1" + PRICE, params=QUOTE, headers=headers
    )
    assert response.status_code == status
    assert response.json()["rt_cd"] == "1"
    assert response.json()["msg_cd"] == msg_cd


async def test_expired_token_gets_egw00123(paper: Any) -> None:
    """After the token lifetime passes, calls get EGW00123; a new tokenP issues a new token."""
    sim, kis = paper
    old = await kis.token()
    sim.clock.advance(86_400)
    response = await kis.get(PRICE, "FHKST01010100", QUOTE)
    assert response.json()["msg_cd"] == "EGW00123"
    kis.access_token = None
    assert await kis.token() != old
    assert (await kis.get(PRICE, "FHKST01010100", QUOTE)).json()["rt_cd"] == "0"


async def test_live_tr_id_in_paper_mode_is_egw00213(paper: Any) -> None:
    """A live account TR id sent to the paper server, and the live-only psbl-rvsecncl, get
    EGW00213; the old paper TR id works."""
    _, kis = paper
    live_tr = await kis.get("/trading/inquire-balance", "TTTC8434R", kis.account)
    assert live_tr.json()["msg_cd"] == "EGW00213"
    psbl = await kis.get("/trading/inquire-psbl-rvsecncl", "TTTC0084R", kis.account)
    assert psbl.json()["msg_cd"] == "EGW00213"
    old_paper = await kis.post(
        "/trading/order-cash",
        "VTTC0802U",
        kis.account | {"PDNO": "005930", "ORD_DVSN": "01", "ORD_QTY": "1", "ORD_UNPR": "0"},
    )
    assert old_paper.json()["msg_cd"] == "40600000"


async def test_price_and_orderbook_shapes(paper: Any) -> None:
    """inquire-price and the orderbook answer string-only outputs on the tick grid."""
    sim, kis = paper
    price = await kis.get(PRICE, "FHKST01010100", QUOTE)
    assert price.headers["tr_id"] == "FHKST01010100"
    body = price.json()
    assert body["rt_cd"] == "0"
    assert body["msg1"].endswith(" ")
    assert _all_strings(body["output"])
    out = body["output"]
    current = int(out["stck_prpr"])
    assert current == sim.exchange.price("005930")
    assert int(out["aspr_unit"]) == tick_size(current)
    assert int(out["stck_llam"]) < current < int(out["stck_mxpr"])
    book = (await kis.get(BOOK, "FHKST01010200", QUOTE)).json()
    assert _all_strings(book)
    asks = [int(book["output1"][f"askp{i}"]) for i in range(1, 11)]
    bids = [int(book["output1"][f"bidp{i}"]) for i in range(1, 11)]
    assert asks == sorted(asks)
    assert bids == sorted(bids, reverse=True)
    assert bids[0] < asks[0]
    assert all(p % tick_size(p) == 0 for p in asks + bids)
    assert book["output2"]["stck_prpr"] == str(current)
    unknown = await kis.get(PRICE, "FHKST01010100", QUOTE | {"FID_INPUT_ISCD": "999999"})
    assert unknown.json()["rt_cd"] == "1"


async def test_buy_fills_and_account_reflects_it(paper: Any) -> None:
    """A market buy fills against the book; balance, orderable cash and the ledger agree."""
    sim, kis = paper
    ask = sim.exchange.book("005930")[0][0]
    placed = await kis.order("buy", "005930", 3, ord_dvsn="01")
    body = placed.json()
    assert body["rt_cd"] == "0"
    assert body["msg1"].strip() == "모의투자 매수주문이 완료 되었습니다."
    out = body["output"]
    assert out["KRX_FWDG_ORD_ORGNO"] == "00950"
    assert len(out["ODNO"]) == 10
    assert len(out["ORD_TMD"]) == 6
    balance = (await kis.balance()).json()
    assert isinstance(balance["output2"], list)
    assert len(balance["output2"]) == 1
    [row] = balance["output1"]
    assert row["pdno"] == "005930"
    assert row["hldg_qty"] == "3"
    assert float(row["pchs_avg_pric"]) == ask.price
    summary = balance["output2"][0]
    # D+2 settlement: the same-day deposit stays, the D+1 / D+2 amounts drop by the cost.
    assert int(summary["dnca_tot_amt"]) == 100_000_000
    assert int(summary["nxdy_excc_amt"]) == 100_000_000 - 3 * ask.price
    assert int(summary["prvs_rcdl_excc_amt"]) == 100_000_000 - 3 * ask.price
    psbl = await kis.get(
        "/trading/inquire-psbl-order",
        "VTTC8908R",
        kis.account
        | {"PDNO": "005930", "ORD_UNPR": "70000", "ORD_DVSN": "00", "CMA_EVLU_AMT_ICLD_YN": "N"}
        | {"OVRS_ICLD_YN": "N"},
    )
    output = psbl.json()["output"]
    cash = summary["prvs_rcdl_excc_amt"]
    assert output["ord_psbl_cash"] == cash
    assert output["nrcvb_buy_qty"] == str(int(cash) // 70_000)
    sim.exchange.check_invariants()


async def test_modify_and_cancel_remaining(paper: Any) -> None:
    """A resting limit is revised (new ODNO referencing the original), then cancelled;
    cancelling again is refused with the paper 'nothing to cancel' message."""
    sim, kis = paper
    bid = sim.exchange.book("005930")[1][5].price
    placed = (await kis.order("buy", "005930", 10, price=bid)).json()["output"]["ODNO"]
    revised = (await kis.revise_cancel(placed, cancel=False, qty=4, price=bid - 100)).json()
    assert revised["rt_cd"] == "0"
    new_id = revised["output"]["ODNO"]
    assert new_id != placed
    assert sim.exchange.order(new_id).original_order_id == placed
    assert sim.exchange.order(placed).remaining_qty == 6
    cancelled = (await kis.revise_cancel(placed, cancel=True)).json()
    assert cancelled["msg_cd"] == "40630000"
    assert sim.exchange.order(placed).remaining_qty == 0
    again = (await kis.revise_cancel(placed, cancel=True)).json()
    assert again["rt_cd"] == "1"
    assert again["msg1"] == "모의투자 정정/취소할 수량이 없습니다."
    wrong_branch = (await kis.revise_cancel(new_id, cancel=True, branch="06010")).json()
    assert wrong_branch["rt_cd"] == "1"
    assert sim.exchange.order(new_id).remaining_qty == 4
    sim.exchange.check_invariants()


@pytest.mark.parametrize(
    ("order", "msg_cd"),
    [
        (("buy", "999990", 1, "00", 1000), "40070000"),
        (("buy", "005930", 0, "00", 70000), "40090000"),
        (("buy", "005930", 1, "00", 70050), "40100000"),
        (("buy", "005930", 1, "01", 70000), "40110000"),
        (("buy", "005930", 10_000, "00", 70000), "40250000"),
        (("sell", "005930", 1, "00", 70000), "40240000"),
        (("buy", "005930", 1, "99", 70000), "40120000"),
        (("buy", "005930", 1, "41", 70000), "40580000"),
    ],
)
async def test_business_rejections(paper: Any, order: tuple[Any, ...], msg_cd: str) -> None:
    """Unknown symbol, qty 0, off-tick price, market with price, no cash, no holdings and an
    unknown division and an after-market division in regular hours are refused with rt_cd 1
    and nothing is booked."""
    sim, kis = paper
    side, symbol, qty, ord_dvsn, price = order
    response = await kis.order(side, symbol, qty, ord_dvsn=ord_dvsn, price=price)
    body = response.json()
    assert body["rt_cd"] == "1"
    assert body["msg_cd"] == msg_cd
    assert body["msg1"].startswith("모의투자 ")
    assert sim.exchange.orders == []


async def test_wrong_account_is_refused(paper: Any) -> None:
    """An account other than the simulator's is refused (INVALID_CHECK_ACNO)."""
    _, kis = paper
    body = {"CANO": "99999999", "ACNT_PRDT_CD": "01", "PDNO": "005930", "ORD_DVSN": "01"}
    response = await kis.post(
        "/trading/order-cash", "VTTC0012U", body | {"ORD_QTY": "1"} | {"ORD_UNPR": "0"}
    )
    assert response.json()["msg_cd"] == "OPSQ2000"


async def test_daily_ccld_pages_of_fifteen_in_paper(paper: Any) -> None:
    """20 orders come back as 15 (tr_cont F) + 5 (tr_cont D) with 100-char ctx areas."""
    sim, kis = paper
    low = sim.exchange.book("005930")[1][9].price
    for _ in range(20):
        assert (await kis.order("buy", "005930", 1, price=low)).json()["rt_cd"] == "0"
    first = await kis.daily_ccld()
    assert first.headers["tr_cont"] == "F"
    page1 = first.json()
    assert len(page1["output1"]) == 15
    assert len(page1["ctx_area_fk100"]) == 100
    assert len(page1["ctx_area_nk100"]) == 100
    assert _all_strings(page1["output1"])
    second = await kis.daily_ccld(
        tr_cont="N", fk=page1["ctx_area_fk100"], nk=page1["ctx_area_nk100"]
    )
    assert second.headers["tr_cont"] == "D"
    page2 = second.json()
    assert len(page2["output1"]) == 5
    ids = [r["odno"] for r in page1["output1"] + page2["output1"]]
    assert len(set(ids)) == 20
    assert ids == sorted(ids, reverse=True)
    assert page1["output2"]["tot_ord_qty"] == "20"


async def test_balance_pages_and_live_page_size(serve: Any) -> None:
    """inquire-balance pages with tr_cont and ctx areas; output2 stays a one-element array."""
    holdings = {"005930": 1, "000660": 2, "035420": 3, "005380": 4, "035720": 5}
    async with serve(mode=Mode.PAPER, balance_page_size=2, starting_holdings=holdings) as (_, kis):
        seen: list[str] = []
        tr_cont, fk, nk = "", "", ""
        conts = []
        while True:
            response = await kis.balance(tr_cont=tr_cont, fk=fk, nk=nk)
            body = response.json()
            assert len(body["output2"]) == 1
            seen += [r["pdno"] for r in body["output1"]]
            conts.append(response.headers["tr_cont"])
            if response.headers["tr_cont"] not in ("F", "M"):
                break
            tr_cont, fk, nk = "N", body["ctx_area_fk100"], body["ctx_area_nk100"]
        assert conts == ["F", "M", "D"]
        assert seen == sorted(holdings)


async def test_live_mode_codes_and_psbl_rvsecncl(live: Any) -> None:
    """Live answers APBK0013 / KIOK0510 and serves inquire-psbl-rvsecncl."""
    sim, kis = live
    assert sim.exchange.branch_no == "06010"
    low = sim.exchange.book("000660")[1][9].price
    placed = (await kis.order("buy", "000660", 2, price=low)).json()
    assert placed["msg_cd"] == "APBK0013"
    rows = await kis.get(
        "/trading/inquire-psbl-rvsecncl",
        "TTTC8036R",
        kis.account | {"INQR_DVSN_1": "0", "INQR_DVSN_2": "0", "CTX_AREA_FK100": ""},
    )
    body = rows.json()
    assert body["msg_cd"] == "KIOK0510"
    assert [r["odno"] for r in body["output"]] == [placed["output"]["ODNO"]]
    assert body["output"][0]["psbl_qty"] == "2"
    paper_tr = await kis.get("/trading/inquire-balance", "VTTC8434R", kis.account)
    assert paper_tr.json()["rt_cd"] == "1"


async def test_rate_limit_two_per_second_in_paper(serve: Any) -> None:
    """Paper allows 2 requests in any 1-s window; the third gets HTTP 500 EGW00201."""
    async with serve(mode=Mode.PAPER, rate_limit=True) as (sim, kis):
        sim.clock.freeze()
        codes = []
        for _ in range(3):
            response = await kis.get(PRICE, "FHKST01010100", QUOTE)
            codes.append((response.status_code, response.json()["msg_cd"]))
        assert codes[:2] == [(200, "MCA00000"), (200, "MCA00000")]
        assert codes[2] == (500, "EGW00201")
        assert sim.stats.rate_limit_rejections == 1
        sim.clock.advance(1.0)
        assert (await kis.get(PRICE, "FHKST01010100", QUOTE)).status_code == 200


async def test_rate_limit_twenty_per_second_live(serve: Any) -> None:
    """Live allows 20 requests per window."""
    async with serve(mode=Mode.LIVE, rate_limit=True) as (sim, kis):
        sim.clock.freeze()
        statuses = [(await kis.get(PRICE, "FHKST01010100", QUOTE)).status_code for _ in range(21)]
        assert statuses.count(200) == 20
        assert statuses[-1] == 500
        sim.clock.unfreeze()
        sim.clock.advance(1.0)
        assert (await kis.get(PRICE, "FHKST01010100", QUOTE)).status_code == 200


async def test_in_process_asgi_transport() -> None:
    """The app works in-process through httpx.ASGITransport."""
    sim = KISSimulator(seed=3, quote_interval=None)
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url=sim.rest_url) as client:
        response = await client.post(
            "/oauth2/tokenP",
            json={
                "grant_type": "client_credentials",
                "appkey": sim.app_key,
                "appsecret": sim.app_secret,
            },
        )
        assert response.status_code == 200
    config = sim.config()
    assert config.rest_url == "http://kis-sim.local"
    assert config.token_cache_dir is None


async def test_config_points_at_the_served_simulator(paper: Any) -> None:
    """config() carries accepted credentials, the served URLs, hts_id and no token cache."""
    sim, _ = paper
    config = sim.config(timeout=3.0)
    assert config.rest_url == sim.rest_url
    assert config.ws_url == sim.ws_url
    assert sim.ws_url.endswith("/tryitout")
    assert config.app_key == sim.app_key
    assert config.app_secret.get_secret_value() == sim.app_secret
    assert config.hts_id == sim.hts_id
    assert config.account_id == sim.account_id
    assert config.mode is Mode.PAPER
    assert config.token_cache_dir is None
    assert config.timeout == 3.0


async def test_order_rows_carry_both_cancel_quantity_spellings(paper: Any) -> None:
    """inquire-daily-ccld rows carry cncl_cfrm_qty (spec) and cnc_cfrm_qty (official sample,
    kis-trader) with the same value, and name the venue the order was placed with."""
    sim, kis = paper
    price = sim.exchange.price("005930") - 1_000
    placed = (await kis.order("buy", "005930", 4, price=price)).json()["output"]["ODNO"]
    assert (await kis.revise_cancel(placed, cancel=True, qty=3)).json()["rt_cd"] == "0"
    rows = {row["odno"]: row for row in (await kis.daily_ccld()).json()["output1"]}
    row = rows[placed]
    assert row["cncl_cfrm_qty"] == row["cnc_cfrm_qty"] == "3"
    assert row["rmn_qty"] == "1"
    assert row["excg_id_dvsn_Cd"] == "KRX"
