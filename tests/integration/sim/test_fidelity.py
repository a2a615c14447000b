"""Fidelity the other KIS clients rely on: layout profiles, stock info, a fully filled
inquire-price, D+2 settlement, documented rejection codes, string-typed order bodies, unknown
paths and the PINGPONG grace (issue 17 §1)."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from typing import Any

import pytest
import websockets

from kis_async.config import Mode
from kis_async.sim import KISSimulator
from kis_async.sim.reference import isin

SYMBOL = "005930"


@pytest.mark.parametrize(("layout", "widths"), [("current", (47, 63)), ("legacy", (46, 59))])
async def test_layout_profile_sets_trade_and_book_widths(
    serve: Any, wire: Any, layout: str, widths: tuple[int, int]
) -> None:
    """KISSimulator(layout=...) picks the H0STCNT0 and H0STASP0 widths of the profile."""
    async with serve(layout=layout, quote_interval=0.01) as (sim, kis):
        assert sim.options.layout == layout
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            for tr_id in ("H0STCNT0", "H0STASP0"):
                await ws.send(wire.subscribe(key, tr_id, SYMBOL))
                assert (await wire.next_json(ws))["body"]["rt_cd"] == "0"
            trade = await asyncio.wait_for(wire.next_data(ws, "H0STCNT0"), 10)
            book = await asyncio.wait_for(wire.next_data(ws, "H0STASP0"), 10)
    assert (len(trade[3].split("^")), len(book[3].split("^"))) == widths


def test_layout_profile_notices_and_overrides() -> None:
    """legacy means 23-field notices; a finer knob overrides one part; bad names are refused."""
    legacy = KISSimulator(layout="legacy")
    assert (legacy.options.notice_fields, legacy.options.trade_fields) == (23, 46)
    assert legacy.options.book_layout == "ota"
    current = KISSimulator()
    assert (current.options.notice_fields, current.options.trade_fields) == (26, 47)
    mixed = KISSimulator(layout="legacy", trade_fields=47)
    assert (mixed.options.trade_fields, mixed.options.notice_fields) == (47, 23)
    with pytest.raises(ValueError, match="layout"):
        KISSimulator(layout="2019")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "tr_id"),
    [("/quotations/search-info", "CTPF1604R"), ("/quotations/search-stock-info", "CTPF1002R")],
)
async def test_stock_info_endpoints(live: Any, path: str, tr_id: str) -> None:
    """search-info and search-stock-info answer with the symbol's static data; an unknown
    symbol gets a KIS envelope, not a bare 404."""
    _, kis = live
    reply = await kis.get(path, tr_id, {"PDNO": SYMBOL, "PRDT_TYPE_CD": "300"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["rt_cd"] == "0"
    out = body["output"]
    assert out["prdt_type_cd"] == "300"
    assert out["std_pdno"] == isin(SYMBOL) == "KR7005930003"
    assert out["prdt_abrv_name"] == "삼성전자"
    assert out["prdt_eng_abrv_name"]
    if tr_id == "CTPF1002R":
        assert int(out["lstg_stqt"]) > 1_000_000_000
        assert (out["cptt_trad_tr_psbl_yn"], out["nxt_tr_stop_yn"]) == ("Y", "N")
    missing = await kis.get(path, tr_id, {"PDNO": "999990", "PRDT_TYPE_CD": "300"})
    assert missing.json()["rt_cd"] == "1"
    assert missing.json()["msg_cd"]


def test_isin_check_digits() -> None:
    """The standard code's check digit matches known KRX codes."""
    assert isin("000660") == "KR7000660001"
    assert isin("035720") == "KR7035720002"


async def test_inquire_price_is_filled_and_consistent(live: Any) -> None:
    """Every 52-week / 250-day / yearly high and low is set, dated, brackets the history, and
    market cap = listed shares x price; PER = price / EPS."""
    sim, kis = live
    reply = await kis.get(
        "/quotations/inquire-price",
        "FHKST01010100",
        {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": SYMBOL},
    )
    out = reply.json()["output"]
    blank = [k for k, v in out.items() if v == "" and k != "new_hgpr_lwpr_cls_code"]
    assert blank == []
    price = int(out["stck_prpr"])
    history = sim.rest.history.daily(SYMBOL)
    today = sim.rest.history.today()
    year = [b for b in history if b.day > today - timedelta(days=365)]
    assert int(out["w52_hgpr"]) >= max(b.high for b in year)
    assert int(out["w52_lwpr"]) <= min(b.low for b in year)
    for field in ("w52_hgpr_date", "w52_lwpr_date", "d250_hgpr_date", "dryy_lwpr_date"):
        day = date(int(out[field][:4]), int(out[field][4:6]), int(out[field][6:]))
        assert today - timedelta(days=400) <= day <= today, field
    assert int(out["w52_lwpr"]) <= price <= int(out["w52_hgpr"])
    shares = int(out["lstn_stcn"])
    assert int(out["hts_avls"]) == shares * price // 100_000_000
    assert float(out["per"]) == pytest.approx(price / float(out["eps"]), abs=0.01)
    assert float(out["pbr"]) == pytest.approx(price / float(out["bps"]), abs=0.01)


async def test_same_day_buy_settles_d_plus_2(paper: Any) -> None:
    """After a same-day buy the deposit stays; the D+1 / D+2 amounts and the orderable cash
    drop by the cost (protocol doc §4.5)."""
    sim, kis = paper
    assert (await kis.order("buy", SYMBOL, 4, ord_dvsn="01")).json()["rt_cd"] == "0"
    [fill] = sim.exchange.fills
    cost = fill.qty * fill.price
    summary = (await kis.balance()).json()["output2"][0]
    assert int(summary["dnca_tot_amt"]) == 100_000_000
    assert int(summary["nxdy_excc_amt"]) == int(summary["prvs_rcdl_excc_amt"]) == 100_000_000 - cost
    assert int(summary["thdt_buy_amt"]) == cost


@pytest.mark.parametrize("bad", [1, 1.5, None, ["1"], {"v": "1"}])
async def test_order_body_values_must_be_strings(live: Any, bad: object) -> None:
    """KIS bodies carry strings: a number, null, list or object in a field is refused with an
    input error naming the field, before any order exists."""
    sim, kis = live
    body = kis.account | {"PDNO": SYMBOL, "ORD_DVSN": "01", "ORD_QTY": bad, "ORD_UNPR": "0"}
    reply = await kis.client.post(
        "/uapi/domestic-stock/v1/trading/order-cash",
        content=json.dumps(body),
        headers=await kis.headers("TTTC0012U"),
    )
    answer = reply.json()
    assert answer["rt_cd"] == "1"
    assert answer["msg_cd"] == "OPSQ2002"
    assert "ORD_QTY" in answer["msg1"]
    assert sim.exchange.orders == []


async def test_order_outside_sessions_gets_the_documented_code(serve: Any) -> None:
    """An order when the venue takes none gets APBK0919 live (python-kis reads it as "market
    not open"), never the simulator's old invented code."""
    async with serve(mode=Mode.LIVE, clock="wall") as (sim, kis):
        sunday = sim.clock.now()
        while sunday.weekday() != 6:
            sunday += timedelta(days=1)
        sim.set_time(sunday.replace(hour=3))
        answer = (await kis.order("buy", SYMBOL, 1, price=70_000)).json()
    assert (answer["rt_cd"], answer["msg_cd"]) == ("1", "APBK0919")


async def test_unknown_path_gets_a_kis_envelope(live: Any) -> None:
    """An unserved path answers 404 with rt_cd/msg_cd/msg1, as every other failure."""
    _, kis = live
    reply = await kis.get("/quotations/no-such-api", "FHKST99999999", {})
    assert reply.status_code == 404
    assert set(reply.json()) == {"rt_cd", "msg_cd", "msg1"}
    assert reply.json()["rt_cd"] == "1"


async def test_overseas_notice_registration_is_acknowledged(serve: Any, wire: Any) -> None:
    """python-kis registers overseas execution notices too; the simulator accepts them."""
    async with serve(mode=Mode.LIVE) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            await ws.send(wire.subscribe(key, "H0GSCNI0", sim.hts_id))
            ack = await wire.next_json(ws)
    assert (ack["body"]["rt_cd"], ack["header"]["encrypt"]) == ("0", "Y")


async def test_pingpong_grace_spans_several_pings(serve: Any, wire: Any) -> None:
    """PINGPONG keeps coming while unanswered; the session is closed only once the oldest
    unanswered one is older than the grace."""
    async with serve(pingpong_interval=0.1, pingpong_timeout=0.6) as (sim, _):
        pings = 0

        async def read_until_closed(ws: websockets.ClientConnection) -> None:
            nonlocal pings
            while True:
                raw = await asyncio.wait_for(ws.recv(), 5)
                if json.loads(raw)["header"]["tr_id"] == "PINGPONG":
                    pings += 1

        async with websockets.connect(sim.ws_url, ping_interval=None) as silent:
            with pytest.raises(websockets.ConnectionClosed):
                await read_until_closed(silent)
        assert pings >= 4
        assert sim.stats.ws_sessions_closed_pingpong == 1
