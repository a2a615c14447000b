"""The delivery contract against a raw KIS-like server: frames in the ack's burst (and
before it) reach the subscriber, unrouted records are counted, timeouts around ``anext``
keep the stream, and an unsolicited refusal is answered by one re-send."""

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

from kis_async import ExecutionKind, KISConfig, Order, SubscriptionError
from kis_async.stream.manager import StreamManager
from kis_async.stream.options import StreamOptions
from kis_async.stream.session import burst_limit


def quote_frame(price: int, symbol: str = "005930") -> str:
    record = "^".join([symbol, "093000", str(price), *(["1"] * 44)])
    return "0|H0STCNT0|001|" + record


def book_frame(best_ask: int, symbol: str = "005930") -> str:
    asks = [str(best_ask + 100 * i) for i in range(10)]
    bids = [str(best_ask - 100 * (i + 1)) for i in range(10)]
    record = "^".join([symbol, "093000", "0", *asks, *bids, *(["10"] * 20), *(["0"] * 16)])
    return "0|H0STASP0|001|" + record


def notice_frame(order_no: int, qty: int, *, filled: bool) -> str:
    # The 23-field layout, unencrypted: CNTG_YN (14th) is 2 for a fill, 1 for an acceptance.
    fields = ["myhtsid", "1234567801", f"{order_no:010d}", "", "02", "0", "00", "0", "005930"]
    fields += [str(qty), "70000", "093000", "0", "2" if filled else "1", "2", "06010", "10"]
    fields += ["name", "", "10", "", "x", "70000"]
    return "0|H0STCNI9|001|" + "^".join(fields)


class BurstKIS:
    """Answers a registration with ``before`` frames, the ack, then ``after`` frames, all
    sent back to back (the client reads them in one burst)."""

    def __init__(self) -> None:
        self.before: dict[str, list[str]] = {}
        self.after: dict[str, list[str]] = {}
        self.ack_delay = 0.0
        self.refuse_resend = False
        self.subscribes: list[tuple[str, str]] = []
        self.connections: list[ServerConnection] = []
        self.url = ""

    async def handler(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                doc = json.loads(message)
                if doc.get("header", {}).get("tr_id") == "PINGPONG":
                    continue
                body = doc["body"]["input"]
                tr_id, tr_key = body["tr_id"], body["tr_key"]
                if doc["header"]["tr_type"] == "2":
                    await ws.send(ack(tr_id, tr_key, "OPSP0001", "UNSUBSCRIBE SUCCESS"))
                    continue
                self.subscribes.append((tr_id, tr_key))
                if self.ack_delay:
                    await asyncio.sleep(self.ack_delay)
                resend = self.subscribes.count((tr_id, tr_key)) > 1
                if resend and self.refuse_resend:
                    await ws.send(ack(tr_id, tr_key, "OPSP0009", "SUBSCRIBE ERROR", rt_cd="1"))
                    continue
                for frame in self.before.pop(tr_id, []):
                    await ws.send(frame)
                await ws.send(ack(tr_id, tr_key, "OPSP0000", "SUBSCRIBE SUCCESS"))
                for frame in self.after.pop(tr_id, []):
                    await ws.send(frame)

    async def push(self, *frames: str) -> None:
        for ws in self.connections:
            for frame in frames:
                await ws.send(frame)


def ack(tr_id: str, tr_key: str, code: str, msg: str, *, rt_cd: str = "0") -> str:
    return json.dumps(
        {
            "header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"},
            "body": {"rt_cd": rt_cd, "msg_cd": code, "msg1": msg, "output": {}},
        }
    )


@pytest.fixture
async def server() -> AsyncIterator[BurstKIS]:
    kis = BurstKIS()
    async with serve(kis.handler, "127.0.0.1", 0) as running:
        port = next(iter(running.sockets)).getsockname()[1]
        kis.url = f"ws://127.0.0.1:{port}/tryitout"
        yield kis


@pytest.fixture
async def manager(server: BurstKIS) -> AsyncIterator[StreamManager]:
    config = KISConfig(
        app_key="PS" + "a" * 34,
        app_secret="s" * 180,
        account_id="12345678-01",
        hts_id="myhtsid",
        ws_url=server.url,
        token_cache_dir=None,
    )

    async def approval_key() -> str:
        return "approval-key-0123456789"

    async def fetch_orders() -> list[Order]:
        return []

    options = StreamOptions(ack_timeout=2.0, malformed_log_interval=60.0)
    mgr = StreamManager(
        config, approval_key=approval_key, fetch_orders=fetch_orders, options=options
    )
    yield mgr
    await mgr.aclose()


async def take(stream: Any, n: int) -> list[Any]:
    return [await asyncio.wait_for(anext(stream), 2) for _ in range(n)]


async def test_quotes_before_and_in_the_ack_burst_are_all_delivered(
    server: BurstKIS, manager: StreamManager
) -> None:
    """Quotes sent before the ack and right after it, in one burst, all reach the stream."""
    server.before["H0STCNT0"] = [quote_frame(70_000), quote_frame(70_010)]
    server.after["H0STCNT0"] = [quote_frame(70_020 + i) for i in range(10)]
    async with manager.quotes(["005930"]) as quotes:
        got = await take(quotes, 12)
    assert [int(q.price) for q in got] == [70_000, 70_010, *range(70_020, 70_030)]
    assert manager.status.records_unrouted == 0


async def test_orderbooks_in_the_ack_burst_are_all_delivered(
    server: BurstKIS, manager: StreamManager
) -> None:
    """Order books in the ack's burst reach the stream, in order."""
    server.before["H0STASP0"] = [book_frame(70_100)]
    server.after["H0STASP0"] = [book_frame(70_200 + 100 * i) for i in range(9)]
    async with manager.orderbooks(["005930"]) as books:
        got = await take(books, 10)
    assert [int(b.asks[0].price) for b in got] == [70_100, *range(70_200, 71_100, 100)]


async def test_notices_in_the_ack_burst_are_all_delivered(
    server: BurstKIS, manager: StreamManager
) -> None:
    """An acceptance and fills sent around the H0STCNI9 ack all reach the execution stream."""
    server.before["H0STCNI9"] = [notice_frame(41, 10, filled=False)]
    server.after["H0STCNI9"] = [
        notice_frame(42, 10, filled=False),
        notice_frame(42, 3, filled=True),
        notice_frame(42, 7, filled=True),
    ]
    async with manager.executions() as events:
        got = await take(events, 4)
    kinds = [(e.broker_order_id[-2:], e.kind, e.qty) for e in got]
    assert kinds == [
        ("41", ExecutionKind.ACCEPTED, 10),
        ("42", ExecutionKind.ACCEPTED, 10),
        ("42", ExecutionKind.FILLED, 3),
        ("42", ExecutionKind.FILLED, 7),
    ]
    assert all(not e.replayed for e in got)
    assert got[-1].cursor is not None
    assert got[-1].cursor.delivered("42") == 10


async def test_unrouted_records_are_counted_and_logged_once(
    server: BurstKIS, manager: StreamManager, caplog: pytest.LogCaptureFixture
) -> None:
    """Records for a symbol nobody holds are counted in stream_status and logged (limited)."""
    caplog.set_level(logging.WARNING, logger="kis_async.stream")
    async with manager.quotes(["005930"]) as quotes:
        await server.push(quote_frame(1, "000660"), quote_frame(2, "000660"), quote_frame(3))
        [quote] = await take(quotes, 1)
    assert quote.price == 3
    assert manager.status.records_unrouted == 2
    assert caplog.text.count("dropped record(s) nobody holds") == 1


async def test_timeouts_around_anext_keep_the_stream_and_lose_nothing(
    server: BurstKIS, manager: StreamManager
) -> None:
    """wait_for(anext(stream), small) in a loop, the first one during a slow ack: every
    quote arrives and the stream stays open."""
    server.ack_delay = 0.15
    stream = manager.quotes(["005930"])
    got: list[int] = []
    timeouts = 0

    async def producer() -> None:
        while not server.connections or not server.subscribes:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        for i in range(30):
            await server.push(quote_frame(70_000 + i))
            await asyncio.sleep(0.012 if i % 3 else 0.04)

    pushing = asyncio.create_task(producer())
    async with asyncio.timeout(10):
        while len(got) < 30:
            try:
                quote = await asyncio.wait_for(anext(stream), 0.01)
            except TimeoutError:
                timeouts += 1
                continue
            got.append(int(quote.price))
    await pushing
    assert got == list(range(70_000, 70_030))
    assert timeouts > 5  # the loop really did time out, during the ack and between quotes
    assert not stream.closed
    await stream.aclose()
    assert stream.closed


async def test_cancelled_anext_keeps_the_queue(manager: StreamManager, server: BurstKIS) -> None:
    """A task cancelled inside __anext__ leaves the stream and what it queued intact."""
    async with manager.quotes(["005930"]) as quotes:
        waiting = asyncio.create_task(anext(quotes))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await server.push(quote_frame(70_001), quote_frame(70_002))
        got = await take(quotes, 2)
    assert [int(q.price) for q in got] == [70_001, 70_002]


async def test_unsolicited_refusal_is_resent_once_and_the_stream_goes_on(
    server: BurstKIS, manager: StreamManager, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal for an established registration: logged, counted, re-sent; data resumes."""
    caplog.set_level(logging.WARNING, logger="kis_async.stream")
    async with manager.quotes(["005930"]) as quotes:
        await server.push(quote_frame(70_000))
        await take(quotes, 1)
        await server.push(ack("H0STCNT0", "005930", "OPSP0009", "SUBSCRIBE ERROR", rt_cd="1"))
        async with asyncio.timeout(2):
            while server.subscribes.count(("H0STCNT0", "005930")) < 2:
                await asyncio.sleep(0.01)
        await server.push(quote_frame(70_100))
        [quote] = await take(quotes, 1)
        assert quote.price == 70_100
        assert not quotes.closed
    assert manager.status.refusals_unsolicited == 1
    assert "re-sending it once" in caplog.text


async def test_refused_again_after_the_resend_ends_the_stream(
    server: BurstKIS, manager: StreamManager
) -> None:
    """If KIS refuses the re-sent registration too, the consumer gets SubscriptionError."""
    server.refuse_resend = True
    async with manager.quotes(["005930"]) as quotes:
        await server.push(ack("H0STCNT0", "005930", "OPSP0009", "SUBSCRIBE ERROR", rt_cd="1"))
        with pytest.raises(SubscriptionError) as info:
            await asyncio.wait_for(anext(quotes), 2)
        assert info.value.msg_cd == "OPSP0009"
        assert quotes.closed
    assert manager.status.refusals_unsolicited == 1  # the second refusal answered the re-send
    assert manager.status.registrations == 0
    assert server.subscribes.count(("H0STCNT0", "005930")) == 2


@pytest.fixture
async def small_queues(server: BurstKIS) -> AsyncIterator[StreamManager]:
    """A manager whose conflating queues hold 8 values (the reader pauses every 2 frames)."""
    config = KISConfig(
        app_key="PS" + "a" * 34,
        app_secret="s" * 180,
        account_id="12345678-01",
        hts_id="myhtsid",
        ws_url=server.url,
        token_cache_dir=None,
    )

    async def approval_key() -> str:
        return "approval-key-0123456789"

    async def fetch_orders() -> list[Order]:
        return []

    options = StreamOptions(ack_timeout=2.0, quote_queue_size=8, callback_queue_size=8)
    mgr = StreamManager(
        config, approval_key=approval_key, fetch_orders=fetch_orders, options=options
    )
    yield mgr
    await mgr.aclose()


def test_burst_limit_follows_the_smallest_queue() -> None:
    """The reader's pause interval is a quarter of the smallest conflating queue, 1..32."""
    assert burst_limit(StreamOptions()) == 32
    assert burst_limit(StreamOptions(quote_queue_size=8)) == 2
    assert burst_limit(StreamOptions(callback_queue_size=40)) == 10
    assert burst_limit(StreamOptions(quote_queue_size=1)) == 1


async def test_a_long_burst_reaches_a_keeping_up_consumer_without_conflation(
    server: BurstKIS, small_queues: StreamManager
) -> None:
    """600 quotes sent back to back into a queue of 8: a consumer that keeps up gets all."""
    frames = [quote_frame(70_000 + i) for i in range(600)]
    got: list[Any] = []
    async with small_queues.quotes(["005930"]) as quotes:
        await server.push(*frames)
        async with asyncio.timeout(20):
            async for quote in quotes:
                got.append(quote)
                if len(got) == 600:
                    break
        assert quotes.dropped == 0
    assert [int(q.price) for q in got] == list(range(70_000, 70_600))
    assert small_queues.status.quotes_dropped == 0


async def test_a_long_burst_reaches_a_callback_without_conflation(
    server: BurstKIS, small_queues: StreamManager
) -> None:
    """The same burst through a sync callback subscription: every quote, in order, once."""
    prices: list[int] = []
    done = asyncio.Event()

    def on_quote(quote: Any) -> None:
        prices.append(int(quote.price))
        if len(prices) == 600:
            done.set()

    sub = await small_queues.subscribe_quotes(["005930"], on_quote)
    try:
        await server.push(*[quote_frame(70_000 + i) for i in range(600)])
        await asyncio.wait_for(done.wait(), 20)
    finally:
        await sub.aclose()
    assert prices == list(range(70_000, 70_600))
    assert small_queues.status.quotes_dropped == 0
