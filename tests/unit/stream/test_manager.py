"""StreamManager against a tiny in-test KIS WebSocket server: ack codes, bad frames, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from kis_async import KISConfig, Order, SubscriptionError
from kis_async.stream.manager import StreamManager, StreamOptions
from kis_async.stream.protocol import encrypt_payload

KEY = "k" * 32
IV = "i" * 16
RECORD = "^".join(["005930", "093000", "70000", *(["1"] * 44)])


class FakeKIS:
    """Acks registrations; ``replies`` maps a tr_key to an ack code (None: never answer)."""

    def __init__(self) -> None:
        self.replies: dict[str, str | None] = {}
        self.received: list[dict[str, Any]] = []
        self.connections: list[ServerConnection] = []
        self.url = ""

    async def handler(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        with contextlib.suppress(ConnectionClosed):
            await self._serve(ws)

    async def _serve(self, ws: ServerConnection) -> None:
        async for message in ws:
            doc = json.loads(message)
            self.received.append(doc)
            if doc.get("header", {}).get("tr_id") == "PINGPONG":
                continue
            body = doc["body"]["input"]
            code = self.replies.get(body["tr_key"], "OPSP0000")
            if code is None:
                continue
            rt_cd = "0" if code in ("OPSP0000", "OPSP0001") else "1"
            if doc["header"]["tr_type"] == "2":
                code = "OPSP0001"
                rt_cd = "0"
            ack = {
                "header": {"tr_id": body["tr_id"], "tr_key": body["tr_key"], "encrypt": "N"},
                "body": {
                    "rt_cd": rt_cd,
                    "msg_cd": code,
                    "msg1": "X",
                    "output": {"iv": IV, "key": KEY},
                },
            }
            await ws.send(json.dumps(ack))

    async def push(self, text: str) -> None:
        for ws in self.connections:
            await ws.send(text)


@pytest.fixture
async def fake() -> AsyncIterator[FakeKIS]:
    server = FakeKIS()
    async with serve(server.handler, "127.0.0.1", 0) as running:
        port = next(iter(running.sockets)).getsockname()[1]
        server.url = f"ws://127.0.0.1:{port}/tryitout"
        yield server


def make_manager(fake: FakeKIS, **options: Any) -> tuple[StreamManager, list[int]]:
    config = KISConfig(
        app_key="PS" + "a" * 34,
        app_secret="s" * 180,
        account_id="12345678-01",
        hts_id="myhtsid",
        ws_url=fake.url,
        token_cache_dir=None,
    )
    calls: list[int] = []

    async def approval_key() -> str:
        calls.append(1)
        await asyncio.sleep(0.01)
        return "approval-key-0123456789"

    async def fetch_orders() -> list[Order]:
        return []

    opts = StreamOptions(ack_timeout=0.5, **options)
    manager = StreamManager(
        config, approval_key=approval_key, fetch_orders=fetch_orders, options=opts
    )
    return manager, calls


@pytest.mark.parametrize(
    "code", ["OPSP0007", "OPSP0008", "OPSP0009", "OPSP0010", "OPSP8991", "OPSP8992"]
)
async def test_refusal_codes_raise_subscription_error(fake: FakeKIS, code: str) -> None:
    """A refusing ack reaches that subscriber as SubscriptionError with the code."""
    manager, _ = make_manager(fake)
    fake.replies["000020"] = code
    try:
        async with manager.quotes(["005930"]) as ok:
            with pytest.raises(SubscriptionError) as info:
                async with manager.quotes(["000020"]):
                    pass
            assert info.value.msg_cd == code
            assert manager.status.registrations == 1
            await fake.push("0|H0STCNT0|001|" + RECORD)
            assert (await anext(ok)).symbol == "005930"
    finally:
        await manager.aclose()


async def test_already_subscribed_counts_as_success(fake: FakeKIS) -> None:
    """OPSP0002 (already in subscribe) is a successful registration."""
    manager, _ = make_manager(fake)
    fake.replies["005930"] = "OPSP0002"
    try:
        async with manager.quotes(["005930"]) as quotes:
            await fake.push("0|H0STCNT0|001|" + RECORD)
            assert (await anext(quotes)).price == 70000
    finally:
        await manager.aclose()


async def test_missing_ack_times_out(fake: FakeKIS) -> None:
    """No ack within ack_timeout: SubscriptionError, and the registration is taken back."""
    manager, _ = make_manager(fake)
    fake.replies["000030"] = None
    try:
        with pytest.raises(SubscriptionError, match="no ack"):
            async with manager.quotes(["000030"]):
                pass
        assert manager.status.registrations == 0
        await asyncio.sleep(0.05)
        assert fake.received[-1]["header"]["tr_type"] == "2"
    finally:
        await manager.aclose()


async def test_malformed_frames_are_counted_and_never_fatal(
    fake: FakeKIS, caplog: pytest.LogCaptureFixture
) -> None:
    """Garbage, short records and undecryptable notices are counted, logged once, skipped."""
    caplog.set_level(logging.WARNING, logger="kis_async.stream")
    manager, _ = make_manager(fake, malformed_log_interval=60.0)
    try:
        async with manager.quotes(["005930"]) as quotes:
            for bad in (
                "garbage",
                "0|H0STCNT0|001|005930^1^2",
                "0|H0STCNT0|x|a",
                "{not json",
                "1|H0STCNI9|001|" + encrypt_payload("a^b", "z" * 32, "z" * 16),
            ):
                await fake.push(bad)
            await fake.push("0|H0STCNT0|002|" + RECORD + "^" + RECORD)
            got = [await anext(quotes), await anext(quotes)]
        assert [q.symbol for q in got] == ["005930", "005930"]
        assert manager.status.malformed_frames == 5
        assert caplog.text.count("malformed WebSocket frame") == 1
        assert manager.status.connected
    finally:
        await manager.aclose()


async def test_pingpong_echoed_verbatim(fake: FakeKIS) -> None:
    """PINGPONG comes back as the same text frame."""
    manager, _ = make_manager(fake)
    ping = '{"header":{"tr_id":"PINGPONG","datetime":"20240102093000"}}'
    try:
        async with manager.quotes(["005930"]):
            await fake.push(ping)
            async with asyncio.timeout(2):
                while not any(d["header"].get("tr_id") == "PINGPONG" for d in fake.received):
                    await asyncio.sleep(0.01)
        assert manager.status.pings_answered == 1
    finally:
        await manager.aclose()


async def test_messages_carry_key_custtype_and_hts_id(fake: FakeKIS) -> None:
    """Registrations carry the approval key; notices are keyed by the HTS id (paper TR)."""
    manager, calls = make_manager(fake)
    try:
        async with manager.executions():
            pass
        first = fake.received[0]
        assert first["header"]["approval_key"] == "approval-key-0123456789"
        assert first["header"]["custtype"] == "P"
        assert first["body"]["input"] == {"tr_id": "H0STCNI9", "tr_key": "myhtsid"}
        assert calls == [1]
    finally:
        await manager.aclose()


async def test_concurrent_first_subscriptions_share_key_and_socket(fake: FakeKIS) -> None:
    """Ten concurrent first subscriptions: one approval request, one connection."""
    manager, calls = make_manager(fake)
    streams = [manager.quotes([f"00{i:04d}"]) for i in range(10)]
    try:
        await asyncio.gather(*(s.__aenter__() for s in streams))
        assert calls == [1]
        assert len(fake.connections) == 1
        assert manager.status.registrations == 10
    finally:
        await manager.aclose()


async def test_notice_decrypted_with_ack_key(fake: FakeKIS) -> None:
    """An encrypted notice is decrypted with the key/iv of its TR's ack."""
    manager, _ = make_manager(fake)
    plain = (
        "myhtsid^1234567801^0000000042^^02^0^00^0^005930^0000000003^000070000^093000^0^2^2^"
        "06010^000000003^홍길동^^1^N^^10^^삼성전자^000070000"
    )
    try:
        async with manager.executions() as events:
            await fake.push("1|H0STCNI9|001|" + encrypt_payload(plain, KEY, IV))
            event = await asyncio.wait_for(anext(events), 2)
        assert event.broker_order_id == "0000000042"
        assert event.qty == 3
        assert manager.recent_executions() == [event]
    finally:
        await manager.aclose()


async def test_bad_symbols_and_closed_manager(fake: FakeKIS) -> None:
    """Bad symbols are a ValueError before any I/O; a closed manager refuses new streams."""
    manager, calls = make_manager(fake)
    with pytest.raises(ValueError, match="KRX"):
        manager.quotes(["SAMSUNG"])
    with pytest.raises(ValueError, match="symbol"):
        manager.quotes([])
    assert manager.quotes("005930").symbols == ("005930",)
    await manager.aclose()
    await manager.aclose()
    with pytest.raises(RuntimeError):
        manager.quotes(["005930"])
    assert calls == []


async def test_listener_exceptions_are_contained(
    fake: FakeKIS, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising execution listener is logged; other listeners and the stream still get it."""
    caplog.set_level(logging.ERROR, logger="kis_async.stream")
    manager, _ = make_manager(fake)
    seen: list[str] = []

    def bad(event: object) -> None:
        raise RuntimeError("listener bug")

    remove = manager.add_execution_listener(bad)
    manager.add_execution_listener(lambda e: seen.append(e.broker_order_id))
    plain = "h^1^0000000007^^02^0^00^0^005930^1^70000^093000^0^2^2^06010^1^n^x^10^^x^70000"
    try:
        async with manager.executions() as events:
            await fake.push("0|H0STCNI9|001|" + plain)
            event = await asyncio.wait_for(anext(events), 2)
        assert event.broker_order_id == "0000000007"
        assert seen == ["0000000007"]
        assert "listener raised" in caplog.text
        remove()
        remove()
    finally:
        await manager.aclose()
