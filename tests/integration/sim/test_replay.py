"""Session recording and replay: record a simulator session through the SDK, replay it
through a new simulator, and compare frames and fills."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kis_async import KISBroker, KISConfig, Mode, OrderRequest, OrderType
from kis_async.models import OrderBook
from kis_async.recording import FORMAT, VERSION, RecordingError, read_recording
from kis_async.sim import KISSimulator
from kis_async.sim.exchange import BookLevel
from kis_async.sim.frames import book_record, trade_record
from kis_async.sim.replay import load_market
from kis_async.sim.runner import run

SYMBOLS = ["005930", "000660", "035420"]
MARKET_TRS = {"H0STCNT0", "H0STASP0"}
STEPS = 14
WAIT = 10.0


def _sim(*, holdings: dict[str, int] | None = None, **options: Any) -> KISSimulator:
    return KISSimulator(
        seed=7,
        mode=Mode.PAPER,
        rate_limit=False,
        token_issue_interval=0.0,
        starting_holdings={"000660": 20} if holdings is None else holdings,
        **options,
    )


async def _subscribed(sim: KISSimulator, count: int) -> None:
    async with asyncio.timeout(WAIT):
        while sum(len(s.subscriptions) for s in sim.hub.sessions) < count:
            await asyncio.sleep(0.01)


async def _bot(broker: KISBroker, sim: KISSimulator, advance: Callable[[], Any]) -> list[str]:
    """A small strategy: each step it reads one trade and one book per symbol, and at fixed
    steps trades against the book it saw. Returns the order numbers it placed."""
    placed: list[str] = []
    async with broker.quotes(SYMBOLS) as quotes, broker.orderbooks(SYMBOLS) as books:
        await _subscribed(sim, 2 * len(SYMBOLS))
        for step in range(STEPS):
            advance()
            seen_quotes: set[str] = set()
            while seen_quotes != set(SYMBOLS):
                quote = await asyncio.wait_for(anext(quotes), WAIT)
                seen_quotes.add(quote.symbol)
            latest: dict[str, OrderBook] = {}
            while set(latest) != set(SYMBOLS):
                book = await asyncio.wait_for(anext(books), WAIT)
                latest[book.symbol] = book
            if step == 2:  # marketable limit buy at the best ask it saw
                ask = latest["005930"].asks[0].price
                placed.append(await broker.place_order(OrderRequest("005930", "buy", 3, price=ask)))
            elif step == 3:  # a 1-share buy resting at the best bid, for a later book to cross
                bid = latest["005930"].bids[0].price
                placed.append(await broker.place_order(OrderRequest("005930", "buy", 1, price=bid)))
            elif step == 4:  # market buy
                placed.append(
                    await broker.place_order(
                        OrderRequest("035420", "buy", 2, order_type=OrderType.MARKET)
                    )
                )
            elif step == 6:  # marketable limit sell of part of the holding at the best bid
                bid = latest["000660"].bids[0].price
                placed.append(
                    await broker.place_order(OrderRequest("000660", "sell", 5, price=bid))
                )
            elif step == 8:  # a resting buy far under the market, cancelled later
                bids = latest["035420"].bids
                far = bids[-1].price if bids else Decimal(1000)
                placed.append(await broker.place_order(OrderRequest("035420", "buy", 1, price=far)))
            elif step == 11:
                await broker.cancel_order(placed[-1])
    return placed


def _market_frames(path: Path) -> list[tuple[str, int, str]]:
    return [
        (e["tr_id"], e["records"], e["payload"])
        for e in read_recording(path)
        if e["event"] == "ws.recv.data" and e.get("tr_id") in MARKET_TRS
    ]


async def _orders_seen(broker: KISBroker) -> list[tuple[Any, ...]]:
    """The bot's own view of its orders (inquire-daily-ccld through the SDK)."""
    return sorted(
        (o.broker_order_id, o.side, o.qty, o.filled_qty, o.avg_fill_price, o.cancelled_qty)
        for o in await broker.get_orders()
    )


def _fills(sim: KISSimulator) -> list[tuple[str, str, str, int, int]]:
    return [(f.order_id, f.symbol, f.side, f.qty, f.price) for f in sim.exchange.fills]


async def test_round_trip_same_frames_same_fills(tmp_path: Path) -> None:
    """A recorded simulator session replayed through a new simulator gives the bot the same
    trade and book frames in the same order, and its orders get the same fills."""
    first, second = tmp_path / "first.jsonl.gz", tmp_path / "replayed.jsonl.gz"
    async with _sim(quote_interval=None).serve() as sim:
        async with KISBroker(sim.config(requests_per_second=None)) as broker:
            async with broker.record(first) as recorder:
                placed = await _bot(broker, sim, sim.exchange.step)
            assert recorder.events > 0
            original_seen = await _orders_seen(broker)
        original_fills = _fills(sim)
        original_orders = [(o.order_id, o.filled_qty, o.cancelled_qty) for o in sim.exchange.orders]
        secrets = [sim.app_secret, sim.account_id, sim.account_id[:8]]
        tokens = list(sim.rest.tokens)
    assert len(placed) == 5
    # Every order but the far one filled; the 1-share bid filled after a later book crossed it.
    assert [f[0] for f in original_fills] == [placed[0], placed[2], placed[3], placed[1]]

    text = gzip.decompress(first.read_bytes()).decode("utf-8")
    for secret in [*secrets, *tokens]:
        assert secret not in text

    frames = load_market(first)
    assert len(frames) == STEPS * 2 * len(SYMBOLS)
    replay_sim = _sim(replay=first, replay_speed=None)
    async with replay_sim.serve() as sim2:
        assert sorted(sim2.exchange.symbols) == sorted(SYMBOLS)
        replayer = sim2.replay
        assert replayer is not None
        async with (
            KISBroker(sim2.config(requests_per_second=None)) as broker,
            broker.record(second),
        ):
            replayed = await _bot(broker, sim2, lambda: replayer.step(2 * len(SYMBOLS)))
            replayed_seen = await _orders_seen(broker)
        assert replayer.remaining == 0
        replayed_fills = _fills(sim2)
        replayed_orders = [
            (o.order_id, o.filled_qty, o.cancelled_qty) for o in sim2.exchange.orders
        ]
    original_frames, replayed_frames = _market_frames(first), _market_frames(second)
    assert len(original_frames) == STEPS * 2 * len(SYMBOLS)
    assert replayed_frames == original_frames
    assert replayed == placed
    assert replayed_fills == original_fills
    assert replayed_orders == original_orders
    assert replayed_seen == original_seen
    assert sum(row[3] for row in original_seen) == 3 + 1 + 2 + 5


async def test_paced_replay_serves_every_frame_in_order(tmp_path: Path) -> None:
    """At a chosen speed the replay starts when a client subscribes and serves the recorded
    frames in recorded order; the exchange's price follows the last recorded trade."""
    path = tmp_path / "paced.jsonl.gz"
    async with (
        _sim(quote_interval=0.02, holdings={}).serve() as sim,
        KISBroker(sim.config(requests_per_second=None)) as broker,
        broker.record(path),
        broker.quotes(["005930"]) as quotes,
    ):
        received = [await asyncio.wait_for(anext(quotes), WAIT) for _ in range(25)]
    recorded = [f for f in load_market(path) if f.tr_id == "H0STCNT0"]
    assert len(recorded) >= 25
    replay_sim = _sim(replay=path, replay_speed=20.0, holdings={})
    async with replay_sim.serve() as sim2:
        async with (
            KISBroker(sim2.config(requests_per_second=None)) as broker,
            broker.quotes(["005930"]) as quotes,
        ):
            again = [await asyncio.wait_for(anext(quotes), WAIT) for _ in range(25)]
        assert sim2.replay is not None
        assert sim2.replay.position >= 25
    assert [(q.time, q.price, q.cum_volume) for q in again] == [
        (q.time, q.price, q.cum_volume) for q in received
    ]
    last = recorded[sim2.replay.position - 1].quotes[-1]
    assert sim2.exchange.price("005930") == int(last.price)


async def test_replay_rejects_a_file_that_is_not_a_recording(tmp_path: Path) -> None:
    """A gzip file without the recording header is refused with a typed error at start-up."""
    path = tmp_path / "other.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"hello": 1}\n'))
    with pytest.raises(RecordingError, match="not a kis_async session recording"):
        _sim(replay=path)
    plain = tmp_path / "plain.jsonl.gz"
    plain.write_bytes(b"not gzip\n")
    with pytest.raises(RecordingError, match="gzip"):
        _sim(replay=plain)


async def test_broker_record_records_that_broker_only(tmp_path: Path) -> None:
    """Two brokers in one process: `a.record()` holds a's requests and frames, none of b's."""
    path = tmp_path / "a.jsonl.gz"
    async with (
        _sim(quote_interval=None, holdings={}).serve() as sim,
        KISBroker(sim.config(requests_per_second=None)) as a,
        KISBroker(sim.config(requests_per_second=None)) as b,
        a.record(path),
        b.quotes(["000660"]) as b_quotes,
    ):
        await asyncio.gather(a.get_price("005930"), b.get_price("035420"))
        await _subscribed(sim, 1)
        sim.exchange.step()
        await asyncio.wait_for(anext(b_quotes), WAIT)
    events = list(read_recording(path))
    asked = [
        (e["query"] or {}).get("FID_INPUT_ISCD") for e in events if e["event"] == "rest.request"
    ]
    assert "005930" in asked
    assert "035420" not in asked
    assert not [e for e in events if e["event"].startswith("ws.")]


def _write_recording(path: Path, frames: list[tuple[float, str, list[list[str]]]]) -> None:
    """A recording file as the recorder writes it: header, then ws.recv.data events."""
    lines = [json.dumps({"format": FORMAT, "version": VERSION, "started": "2026-12-01T00:00Z"})]
    for t, tr_id, records in frames:
        payload = "^".join("^".join(r) for r in records)
        event = {"t": t, "event": "ws.recv.data", "tr_id": tr_id, "encrypted": False}
        lines.append(json.dumps({**event, "records": len(records), "payload": payload}))
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def test_nxt_books_and_un_feeds_drive_their_own_venue(tmp_path: Path) -> None:
    """A recorded NXT book becomes the simulator's NXT book (orders on NXT take it), a KRX
    trade moves the KRX price, and a 통합 book is served without touching either venue."""
    source = _sim(quote_interval=None, holdings={})
    ticks = source.exchange.step(2, symbols=["005930"])
    first, second = ticks
    path = tmp_path / "venues.jsonl.gz"
    _write_recording(
        path,
        [
            (0.0, "H0STCNT0", [trade_record(first, business_date="20261201")]),
            (0.1, "H0NXASP0", [book_record(first, venue="NXT")]),
            (0.2, "H0UNASP0", [book_record(second, venue="UN")]),
            (0.3, "H0STCNT0", [trade_record(second, business_date="20261201")]),
        ],
    )
    sim = _sim(replay=path, replay_speed=None, holdings={})
    replayer = sim.replay
    assert replayer is not None
    assert sim.exchange.symbols == ["005930"]
    assert sim.exchange.instrument("005930").prev_close == first.instrument.prev_close
    assert sim.exchange.book("005930", "NXT") == ([], [])  # nothing recorded yet
    assert replayer.step(2) == 2
    assert sim.exchange.price("005930") == first.price
    asks, bids = sim.exchange.book("005930", "NXT")
    assert asks == list(first.nxt_asks)
    assert bids == list(first.nxt_bids)
    krx_before = sim.exchange.book("005930", "KRX")
    assert replayer.step(5) == 2  # the rest: the UN book and the second trade
    assert replayer.remaining == 0
    assert sim.exchange.book("005930", "KRX") == krx_before
    assert sim.exchange.book("005930", "NXT") == (asks, bids)
    assert sim.exchange.price("005930") == second.price
    best = asks[0]
    order = sim.exchange.place_order(
        symbol="005930", side="02", qty=1, order_type="00", price=best.price, exchange="NXT"
    )
    assert [(f.order_id, f.price, f.qty) for f in sim.exchange.fills] == [
        (order.order_id, best.price, 1)
    ]
    assert sim.exchange.book("005930", "NXT")[0][0] == BookLevel(best.price, best.qty - 1)


async def test_runner_serves_a_replay_to_a_bot_configured_from_its_lines(tmp_path: Path) -> None:
    """What `kis-async sim --replay PATH --speed N` runs: the printed lines say what is
    replayed, and a bot configured from the printed KIS_* lines gets the recorded trades."""
    source = _sim(quote_interval=None, holdings={})
    ticks = source.exchange.step(3, symbols=["000660"])
    path = tmp_path / "three.jsonl.gz"
    recorded = [
        (0.05 * i, "H0STCNT0", [trade_record(t, business_date="20261201")])
        for i, t in enumerate(ticks)
    ]
    _write_recording(path, recorded)
    out = io.StringIO()
    ready: asyncio.Future[KISSimulator] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run(port=0, seed=3, out=out, on_ready=ready.set_result, replay=path, replay_speed=50.0)
    )
    try:
        await asyncio.wait_for(ready, WAIT)
        assert (
            "# replaying 3 recorded frames (000660) from the first subscription" in out.getvalue()
        )
        env = dict(
            line.removeprefix("export ").split("=", 1)
            for line in out.getvalue().splitlines()
            if line.startswith("export KIS_")
        )
        config = KISConfig.from_env({**env, "KIS_TOKEN_CACHE_DIR": "none"})
        async with KISBroker(config) as broker, broker.quotes(["000660"]) as quotes:
            got = [await asyncio.wait_for(anext(quotes), WAIT) for _ in ticks]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [(q.price, q.volume, q.cum_volume) for q in got] == [
        (t.price, t.qty, t.volume) for t in ticks
    ]
