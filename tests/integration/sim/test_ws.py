"""The simulator's WebSocket surface with a raw ``websockets`` client (no SDK)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from kis_async import Mode
from kis_async.models.common import tick_size


async def _ack(ws: Any, wire: Any, key: str, tr_id: str, tr_key: str, *, tr_type: str = "1") -> Any:
    await ws.send(wire.subscribe(key, tr_id, tr_key, tr_type))
    return await wire.next_json(ws)


async def test_subscribe_ack_and_trade_frames(serve: Any, wire: Any) -> None:
    """A registration is acked OPSP0000 with a 16-char iv and 32-char key; H0STCNT0 frames
    carry 47 fields per record on the tick grid."""
    async with serve(quote_interval=0.01) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            ack = await _ack(ws, wire, key, "H0STCNT0", "005930")
            assert ack["header"] == {"tr_id": "H0STCNT0", "tr_key": "005930", "encrypt": "N"}
            assert ack["body"]["rt_cd"] == "0"
            assert ack["body"]["msg_cd"] == "OPSP0000"
            assert ack["body"]["msg1"] == "SUBSCRIBE SUCCESS"
            assert len(ack["body"]["output"]["iv"]) == 16
            assert len(ack["body"]["output"]["key"]) == 32
            for _ in range(3):
                flag, tr_id, count, payload = await wire.next_data(ws, "H0STCNT0")
                assert (flag, tr_id, count) == ("0", "H0STCNT0", "001")
                fields = payload.split("^")
                assert len(fields) == 47
                assert fields[0] == "005930"
                price = int(fields[2])
                assert price % tick_size(price) == 0
                assert fields[46] == "2"
                assert len(fields[1]) == 6
        assert sim.stats.frames_sent >= 3


async def test_multi_record_frames_and_46_field_layout(serve: Any, wire: Any) -> None:
    """records_per_frame=3 sends count 003 with 3 x 46 fields; with the official samples' book
    layout H0STASP0 has 59 per record."""
    async with serve(
        quote_interval=0.01, records_per_frame=3, trade_fields=46, book_layout="ota"
    ) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url + "/H0STCNT0") as ws:
            assert (await _ack(ws, wire, key, "H0STCNT0", "000660"))["body"]["rt_cd"] == "0"
            assert (await _ack(ws, wire, key, "H0STASP0", "000660"))["body"]["rt_cd"] == "0"
            _, _, count, payload = await wire.next_data(ws, "H0STCNT0")
            assert count == "003"
            fields = payload.split("^")
            assert len(fields) == 3 * 46
            assert fields[0] == fields[46] == fields[92] == "000660"
            _, _, count, payload = await wire.next_data(ws, "H0STASP0")
            book = payload.split("^")
            assert count == "003"
            assert len(book) == 3 * 59
            asks = [int(p) for p in book[3:13]]
            bids = [int(p) for p in book[13:23]]
            assert asks == sorted(asks)
            assert bids == sorted(bids, reverse=True)
            assert bids[0] < asks[0]


@pytest.mark.parametrize(("layout", "mode"), [(26, Mode.PAPER), (23, Mode.LIVE)])
async def test_execution_notices_decrypt(serve: Any, wire: Any, layout: int, mode: Mode) -> None:
    """Acceptance, fill, modify and cancel notices arrive encrypted under the HTS id and
    decrypt with the ack's key/iv into the chosen layout."""
    notice_tr = "H0STCNI9" if mode is Mode.PAPER else "H0STCNI0"
    async with serve(mode=mode, notice_fields=layout) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            ack = await _ack(ws, wire, key, notice_tr, sim.hts_id)
            assert ack["header"]["encrypt"] == "Y"
            aes = ack["body"]["output"]

            async def notice() -> list[str]:
                flag, tr_id, count, payload = await asyncio.wait_for(
                    wire.next_data(ws, notice_tr), 5
                )
                assert (flag, tr_id, count) == ("1", notice_tr, "001")
                fields = wire.decrypt(payload, key=aes["key"], iv=aes["iv"]).split("^")
                assert len(fields) == layout
                return list(fields)

            placed = (await kis.order("buy", "005930", 2, ord_dvsn="01")).json()["output"]["ODNO"]
            accepted = await notice()
            assert accepted[0] == sim.hts_id
            assert accepted[1] == sim.account_id
            assert accepted[2] == placed
            assert (accepted[12], accepted[13], accepted[14]) == ("0", "1", "1")
            assert int(accepted[16]) == 2
            filled = await notice()
            assert filled[13] == "2"
            assert int(filled[9]) == 2
            assert int(filled[10]) == sim.exchange.fills[0].price
            assert filled[15] == sim.exchange.branch_no
            low = sim.exchange.book("005930")[1][9].price
            resting = (await kis.order("buy", "005930", 5, price=low)).json()["output"]["ODNO"]
            await notice()
            revised = (await kis.revise_cancel(resting, cancel=False, price=low - 100)).json()
            modified = await notice()
            assert modified[2] == revised["output"]["ODNO"]
            assert modified[3] == resting
            assert modified[5] == "1"
            await kis.revise_cancel(revised["output"]["ODNO"], cancel=True)
            cancelled = await notice()
            assert cancelled[5] == "2"
            assert int(cancelled[9]) == 5
        assert sim.stats.notices_sent == 5


async def test_rejection_notice_for_price_outside_band(serve: Any, wire: Any) -> None:
    """A limit outside the daily band is booked, then rejected with RFUS_YN=1."""
    async with serve() as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            aes = (await _ack(ws, wire, key, "H0STCNI9", sim.hts_id))["body"]["output"]
            limit = sim.exchange.instrument("005930").upper_limit + 1000
            assert (await kis.order("buy", "005930", 1, price=limit)).json()["rt_cd"] == "0"
            plain = []
            for _ in range(2):
                _, _, _, payload = await wire.next_data(ws, "H0STCNI9")
                plain.append(wire.decrypt(payload, key=aes["key"], iv=aes["iv"]).split("^"))
            assert plain[0][12] == "0"
            assert plain[1][12] == "1"
        [order] = sim.exchange.orders
        assert order.rejected_qty == 1
        sim.exchange.check_invariants()


async def test_session_closed_without_pingpong_echo(serve: Any, wire: Any) -> None:
    """A client that echoes PINGPONG stays; one that does not is closed after the timeout."""
    async with serve(pingpong_interval=0.05, pingpong_timeout=0.5) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            await ws.send(wire.subscribe(key, "H0STCNT0", "005930"))
            ping = None
            echoes = 0
            for _ in range(3):
                raw = await asyncio.wait_for(ws.recv(), 2)
                message = json.loads(raw)
                if message["header"]["tr_id"] == "PINGPONG":
                    ping = message
                    assert len(message["header"]["datetime"]) == 14
                    await ws.send(raw)
                    echoes += 1
            assert ping is not None
            assert ws.state is websockets.State.OPEN
            assert sim.stats.ws_sessions_closed_pingpong == 0
        async with websockets.connect(sim.ws_url) as silent:
            await wire.until_closed(silent)
        assert sim.stats.ws_sessions_closed_pingpong == 1
        assert sim.stats.echoes_received == echoes  # counted apart from control pongs
        assert sim.stats.pongs_received == 0


async def test_registration_cap_and_ack_codes(serve: Any, wire: Any) -> None:
    """41 registrations succeed, the 42nd gets OPSP0008; duplicate, unknown unsubscribe,
    bad approval key, bad tr_id and bad tr_key get their codes; unsubscribe frees a slot."""
    async with serve() as (sim, kis):
        key = await kis.approval_key()
        symbols = [f"{n:06d}" for n in range(100_000, 100_041)]
        async with websockets.connect(sim.ws_url) as ws:
            for symbol in symbols:
                assert (await _ack(ws, wire, key, "H0STASP0", symbol))["body"]["rt_cd"] == "0"
            over = await _ack(ws, wire, key, "H0STCNT0", "005930")
            assert (over["body"]["rt_cd"], over["body"]["msg_cd"]) == ("1", "OPSP0008")
            assert sim.stats.active_subscriptions == 41
            dup = await _ack(ws, wire, key, "H0STASP0", symbols[0])
            assert dup["body"]["msg_cd"] == "OPSP0002"
            gone = await _ack(ws, wire, key, "H0STCNT0", "005930", tr_type="2")
            assert gone["body"]["msg_cd"] == "OPSP0003"
            freed = await _ack(ws, wire, key, "H0STASP0", symbols[0], tr_type="2")
            assert freed["body"]["msg_cd"] == "OPSP0001"
            assert (await _ack(ws, wire, key, "H0STCNT0", "005930"))["body"]["rt_cd"] == "0"
            bad_key = await _ack(ws, wire, "not-a-key", "H0STCNT0", "035420")
            assert bad_key["body"]["msg_cd"] == "OPSP0011"
            bad_tr = await _ack(ws, wire, key, "H0XXXXX0", "035420")
            assert bad_tr["body"]["msg_cd"] == "OPSP8991"
            bad_symbol = await _ack(ws, wire, key, "H0STCNT0", "12")
            assert bad_symbol["body"]["msg_cd"] == "OPSP8992"
            live_notice = await _ack(ws, wire, key, "H0STCNI0", sim.hts_id)
            assert live_notice["body"]["msg_cd"] == "OPSP8991"
            await ws.send("not json")
            assert (await wire.next_json(ws))["body"]["msg_cd"] == "OPSP9999"


async def test_second_session_for_same_app_key_gets_opsp8996(serve: Any, wire: Any) -> None:
    """Only one session per app key: the second session's registration gets OPSP8996."""
    async with serve() as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as first:
            assert (await _ack(first, wire, key, "H0STCNT0", "005930"))["body"]["rt_cd"] == "0"
            async with websockets.connect(sim.ws_url) as second:
                ack = await _ack(second, wire, key, "H0STCNT0", "005930")
                assert ack["header"]["tr_id"] == "(null)"
                assert (ack["body"]["rt_cd"], ack["body"]["msg_cd"]) == ("9", "OPSP8996")
                assert sim.stats.ws_sessions_active == 2
        for _ in range(100):
            if sim.stats.ws_sessions_active == 0:
                break
            await asyncio.sleep(0.01)
        async with websockets.connect(sim.ws_url) as third:
            assert (await _ack(third, wire, key, "H0STCNT0", "005930"))["body"]["rt_cd"] == "0"


async def test_fast_mode_streams_many_frames(serve: Any, wire: Any) -> None:
    """quote_interval=0 streams as fast as the client reads (bounded count)."""
    async with serve(quote_interval=0) as (sim, kis):
        key = await kis.approval_key()
        async with websockets.connect(sim.ws_url) as ws:
            await _ack(ws, wire, key, "H0STCNT0", "005930")
            for _ in range(300):
                await wire.next_data(ws, "H0STCNT0")
        assert sim.exchange.steps >= 300
