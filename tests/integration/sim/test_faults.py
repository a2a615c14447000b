"""Every fault of the simulator does what it says (Python API and the admin route)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import websockets

PRICE = "/quotations/inquire-price"
QUOTE = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}


async def test_fail_next_with_rate_limit_envelope(paper: Any) -> None:
    """fail_next(2) answers two HTTP 500 EGW00201 envelopes, then normal service."""
    sim, kis = paper
    await kis.token()
    sim.faults.fail_next(2)
    answers = [await kis.get(PRICE, "FHKST01010100", QUOTE) for _ in range(3)]
    assert [a.status_code for a in answers] == [500, 500, 200]
    assert answers[0].json() == {
        "rt_cd": "1",
        "msg_cd": "EGW00201",
        "msg1": "초당 거래건수를 초과하였습니다.",
    }
    assert sim.stats.faults_injected == 2


async def test_fail_next_with_bare_500(paper: Any) -> None:
    """kind='server_error' answers a bare 500 with no KIS body."""
    sim, kis = paper
    await kis.token()
    sim.faults.fail_next(1, kind="server_error")
    response = await kis.get(PRICE, "FHKST01010100", QUOTE)
    assert response.status_code == 500
    assert "rt_cd" not in response.text
    with pytest.raises(ValueError, match="kind"):
        sim.faults.fail_next(1, kind="teapot")  # type: ignore[arg-type]


async def test_delay_responses(paper: Any) -> None:
    """delay_responses(s, count=1) delays one response; a short client timeout then fires
    while the order is still booked."""
    sim, kis = paper
    await kis.token()
    sim.faults.delay_responses(0.5, count=1)
    with pytest.raises(httpx.ReadTimeout):
        await kis.client.post(
            "/uapi/domestic-stock/v1/trading/order-cash",
            json=kis.account
            | {"PDNO": "005930", "ORD_DVSN": "01", "ORD_QTY": "1"}
            | {"ORD_UNPR": "0"},
            headers=await kis.headers("VTTC0012U"),
            timeout=0.1,
        )
    assert len(sim.exchange.orders) == 1
    assert sim.faults.take_delay() == 0.0
    assert (await kis.get(PRICE, "FHKST01010100", QUOTE)).status_code == 200


async def test_drop_next_order_response_books_the_order(paper: Any) -> None:
    """The order is booked but the connection closes before the response completes."""
    sim, kis = paper
    await kis.token()
    sim.faults.drop_next_order_response()
    with pytest.raises(httpx.TransportError):
        await kis.order("buy", "005930", 1, ord_dvsn="01")
    assert sim.stats.orders_received == 1
    assert len(sim.exchange.orders) == 1
    assert (await kis.order("buy", "005930", 1, ord_dvsn="01")).json()["rt_cd"] == "0"


async def test_expire_tokens(paper: Any) -> None:
    """expire_tokens() makes every call answer EGW00123 until a new token is issued."""
    sim, kis = paper
    await kis.token()
    assert sim.faults.expire_tokens() == 1
    response = await kis.get(PRICE, "FHKST01010100", QUOTE)
    assert response.json()["msg_cd"] == "EGW00123"


async def test_drop_sessions_now_and_after_frames(serve: Any, wire: Any) -> None:
    """drop_sessions() closes sessions at once; after_frames=N closes after N data frames."""
    async with serve(quote_interval=0.01) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            await ws.send(wire.subscribe(key, "H0STCNT0", "005930"))
            await wire.next_data(ws, "H0STCNT0")
            assert sim.faults.drop_sessions() == 1
            await wire.until_closed(ws)
        sent_before = sim.stats.frames_sent
        sim.faults.drop_sessions(after_frames=5)
        async with websockets.connect(sim.ws_url) as ws:
            await ws.send(wire.subscribe(key, "H0STCNT0", "005930"))
            assert await wire.until_closed(ws) == 5
        assert sim.stats.frames_sent - sent_before == 5


async def test_mute_keeps_socket_open_but_silent(serve: Any, wire: Any) -> None:
    """While muted nothing arrives though the socket stays open; unmuting resumes data."""
    async with serve(quote_interval=0.01) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            await ws.send(wire.subscribe(key, "H0STCNT0", "005930"))
            await wire.next_data(ws, "H0STCNT0")
            sim.faults.mute()
            await asyncio.sleep(0.05)
            while True:  # drain what was in flight before the mute took effect
                try:
                    await asyncio.wait_for(ws.recv(), 0.1)
                except TimeoutError:
                    break
            steps = sim.exchange.steps
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)
            assert sim.exchange.steps > steps
            assert ws.state is websockets.State.OPEN
            sim.faults.mute(False)
            await asyncio.wait_for(wire.next_data(ws, "H0STCNT0"), 2)


async def test_refuse_connections_for_a_while(paper: Any) -> None:
    """refuse_connections(T) fails handshakes for T seconds (simulated clock), then accepts."""
    sim, _ = paper
    sim.faults.refuse_connections(30)
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(sim.ws_url):
            pass
    assert sim.stats.ws_connections_refused == 1
    sim.clock.advance(31)
    async with websockets.connect(sim.ws_url) as ws:
        assert ws.state is websockets.State.OPEN


async def test_admin_route_arms_faults_and_reports(paper: Any) -> None:
    """POST /__sim__/faults arms a fault; /__sim__/stats, /state, /orders, /step and /price
    inspect and drive the simulator; admin calls are never faulted or rate limited."""
    sim, kis = paper
    await kis.token()
    armed = await kis.client.post("/__sim__/faults", json={"fault": "fail_next", "count": 1})
    assert armed.json() == {"ok": True, "result": None}
    assert (await kis.get(PRICE, "FHKST01010100", QUOTE)).status_code == 500
    stats = (await kis.client.get("/__sim__/stats")).json()
    assert stats["faults_injected"] == 1
    assert stats["tokens_issued"] == 1
    assert "active_subscriptions" in stats
    unknown = await kis.client.post("/__sim__/faults", json={"fault": "meteor"})
    assert unknown.status_code == 400
    stepped = await kis.client.post("/__sim__/step", json={"count": 2})
    assert stepped.json()["ticks"] == 2 * len(sim.exchange.symbols)
    low = sim.exchange.book("005930")[1][3].price
    await kis.order("buy", "005930", 1, price=low)
    moved = await kis.client.post("/__sim__/price", json={"symbol": "005930", "price": low - 100})
    assert moved.json()["price"] == low - 100
    orders = (await kis.client.get("/__sim__/orders")).json()
    assert orders[0]["filled_qty"] == 1
    state = (await kis.client.get("/__sim__/state")).json()
    assert state["holdings"]["005930"]["qty"] == 1
    cleared = await kis.client.post("/__sim__/faults", json={"fault": "clear"})
    assert cleared.status_code == 200
