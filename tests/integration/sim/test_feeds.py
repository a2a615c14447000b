"""The simulator's KRX, NXT and integrated (UN) feeds, their record widths in both layouts,
the venue of fills in execution notices, and a control-frame pong as the PINGPONG answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from kis_async import Mode
from kis_async.stream.protocol import DataFrame, decode_orderbooks, parse_frame

SYMBOL = "005930"
#: (tr_id, width in the kis-trader layout, width in the official samples' layout).
FEEDS = [
    ("H0STCNT0", 47, 47),
    ("H0NXCNT0", 47, 47),
    ("H0UNCNT0", 47, 47),
    ("H0STASP0", 63, 59),
    ("H0NXASP0", 62, 65),
    ("H0UNASP0", 66, 65),
]


async def _subscribe(ws: Any, wire: Any, key: str, tr_id: str, tr_key: str) -> dict[str, Any]:
    await ws.send(wire.subscribe(key, tr_id, tr_key))
    return dict(await wire.next_json(ws))


@pytest.mark.parametrize("layout", ["kt", "ota"])
async def test_six_feeds_are_served_with_their_widths(serve: Any, wire: Any, layout: str) -> None:
    """All six market TRs are acked and fed; each record has its layout's width (count x
    width fields), as a strict parser such as kis-trader's requires."""
    column = 1 if layout == "kt" else 2
    async with serve(mode=Mode.LIVE, quote_interval=0.01, book_layout=layout) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            for tr_id, *_ in FEEDS:
                ack = await _subscribe(ws, wire, key, tr_id, SYMBOL)
                assert ack["body"]["msg_cd"] == "OPSP0000", tr_id
            for feed in FEEDS:
                tr_id, width = feed[0], feed[column]
                _, got_tr, count, payload = await asyncio.wait_for(
                    wire.next_data(ws, tr_id), timeout=30
                )
                fields = payload.split("^")
                assert got_tr == tr_id
                assert len(fields) == int(count) * width, tr_id
                assert fields[0] == SYMBOL


async def test_books_carry_their_venue_and_the_integrated_book_merges_both(
    serve: Any, wire: Any
) -> None:
    """H0NXASP0 shows NXT's (thinner) book, H0UNASP0 the two merged; the client's decoder
    reads a 63-field H0STASP0 record (it tolerates extra trailing fields)."""
    async with serve(mode=Mode.LIVE, quote_interval=None) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            for tr_id in ("H0STASP0", "H0NXASP0", "H0UNASP0"):
                assert (await _subscribe(ws, wire, key, tr_id, SYMBOL))["body"]["rt_cd"] == "0"
            sim.exchange.step(symbols=[SYMBOL])
            frames: dict[str, list[str]] = {}
            while len(frames) < 3:
                raw = await asyncio.wait_for(ws.recv(), timeout=10)
                assert isinstance(raw, str)
                if raw[0] in "01":
                    _, tr_id, _, payload = raw.split("|", 3)
                    frames[tr_id] = payload.split("^")
            krx_asks, _ = sim.exchange.book(SYMBOL, "KRX")
            nxt_asks, _ = sim.exchange.book(SYMBOL, "NXT")
            assert [int(p) for p in frames["H0STASP0"][3:13]] == [lv.price for lv in krx_asks]
            assert [int(q) for q in frames["H0NXASP0"][23:33]] == [lv.qty for lv in nxt_asks]
            best = min(krx_asks[0].price, nxt_asks[0].price)
            assert int(frames["H0UNASP0"][3]) == best
            merged_qty = sum(lv.qty for lv in (*krx_asks, *nxt_asks) if lv.price == best)
            assert int(frames["H0UNASP0"][23]) == merged_qty
            assert frames["H0STASP0"][62] == "2"  # MARKET_CLS_CODE: regular session
            text = "0|H0STASP0|001|" + "^".join(frames["H0STASP0"])
            frame = parse_frame(text)
            assert isinstance(frame, DataFrame)
            (book,) = decode_orderbooks(frame)
            assert book.symbol == SYMBOL
            assert [lv.price for lv in book.asks] == [lv.price for lv in krx_asks]


@pytest.mark.parametrize(
    ("exchange", "codes"), [("KRX", {"1"}), ("NXT", {"2"}), ("SOR", {"3", "4"})]
)
async def test_notices_report_the_fill_venue(
    serve: Any, wire: Any, exchange: str, codes: set[str]
) -> None:
    """ORD_EXG_GB (field 20) of the fill notice: 1 KRX, 2 NXT, 3/4 SOR routed to KRX/NXT."""
    async with serve(mode=Mode.LIVE) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            ack = await _subscribe(ws, wire, key, "H0STCNI0", sim.hts_id)
            aes = ack["body"]["output"]
            krx_ask = sim.exchange.book(SYMBOL, "KRX")[0][0].price
            nxt_ask = sim.exchange.book(SYMBOL, "NXT")[0][0].price
            price = max(krx_ask, nxt_ask)
            body = kis.account | {
                "PDNO": SYMBOL,
                "ORD_DVSN": "00",
                "ORD_QTY": "1",
                "ORD_UNPR": str(price),
                "EXCG_ID_DVSN_CD": exchange,
            }
            answer = await kis.post("/trading/order-cash", "TTTC0012U", body)
            assert answer.json()["rt_cd"] == "0"
            venue = sim.exchange.order(answer.json()["output"]["ODNO"]).venue
            seen: list[list[str]] = []
            while not any(fields[13] == "2" for fields in seen):
                parts = await asyncio.wait_for(wire.next_data(ws, "H0STCNI0"), timeout=10)
                plain = wire.decrypt(parts[3], key=aes["key"], iv=aes["iv"])
                seen.append(plain.split("^"))
            fill = next(fields for fields in seen if fields[13] == "2")
            assert len(fill) == 26
            assert fill[19] in codes
            expected = {"KRX": "1", "NXT": "2"}[venue]
            if exchange == "SOR":
                expected = {"KRX": "3", "NXT": "4"}[venue]
            assert fill[19] == expected


async def test_control_pong_answers_pingpong(serve: Any, wire: Any) -> None:
    """A client that answers PINGPONG only with a control-frame pong (as the official sample
    does) keeps its session past the timeout; one that does not answer is closed."""
    async with serve(pingpong_interval=0.2, pingpong_timeout=0.5) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url, ping_interval=None) as ws:
            await ws.send(wire.subscribe(key, "H0STCNT0", SYMBOL))
            pings = 0
            while True:
                raw = await asyncio.wait_for(ws.recv(), timeout=5)
                assert isinstance(raw, str)
                if raw.startswith("{") and json.loads(raw)["header"]["tr_id"] == "PINGPONG":
                    pings += 1
                    if pings == 8:
                        break
                    await ws.pong(raw.encode())
            # The simulator sends a PINGPONG only after the previous one was answered, so the
            # 8th proves the 7 pongs before it were taken as answers.
            assert sim.stats.ws_sessions_closed_pingpong == 0
            assert sim.stats.pongs_received == 7
            assert sim.stats.echoes_received == 0
        async with websockets.connect(sim.ws_url, ping_interval=None) as silent:
            await wire.until_closed(silent)
        assert sim.stats.ws_sessions_closed_pingpong == 1
