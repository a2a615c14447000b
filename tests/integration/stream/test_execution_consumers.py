"""Every execution consumer gets every fill exactly once, against the simulator: a supervisor
restarting a crashing worker, a second stream after earlier fills, and processes resuming
from a persisted cursor across crashes with fills while they were down."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

from kis_async import Execution, ExecutionCursor, ExecutionKind, KISBroker, Mode
from kis_async.sim import KISSimulator
from kis_async.stream.options import StreamOptions
from kis_async.validation import normalize_order_id

Waiter = Callable[..., Awaitable[None]]


def per_order(events: Iterable[Execution]) -> Counter[str]:
    """Delivered filled quantity per order."""
    out: Counter[str] = Counter()
    for event in events:
        if event.kind is ExecutionKind.FILLED:
            out[normalize_order_id(event.broker_order_id)] += event.qty
    return out


def booked(sim: KISSimulator) -> Counter[str]:
    """Filled quantity per order at the simulator's exchange."""
    return Counter(
        {normalize_order_id(o.order_id): o.filled_qty for o in sim.exchange.orders if o.filled_qty}
    )


def buy(sim: KISSimulator, qty: int, symbol: str = "005930") -> str:
    """A market buy straight at the exchange (fills at once); returns its order id."""
    return sim.exchange.place_order(
        symbol=symbol, side="02", qty=qty, order_type="01", price=0
    ).order_id


async def collect(stream: object, into: list[Execution], done: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not done():
            into.append(await anext(stream))  # type: ignore[call-overload]


async def quiet(stream: object, into: list[Execution], period: float = 0.3) -> None:
    """Take whatever else arrives within ``period`` (nothing, when exactly once holds)."""
    with contextlib.suppress(TimeoutError):
        while True:
            into.append(await asyncio.wait_for(anext(stream), period))  # type: ignore[call-overload]


async def test_supervisor_restart_with_a_crashing_handler_delivers_every_fill(
    fast_sim: KISSimulator, fast_broker: KISBroker, wait: Waiter
) -> None:
    """The handler raises on the first fill with more notices queued; the restarted stream
    (replay) receives every filled share of the day exactly once."""
    runs: list[list[Execution]] = []
    crashed = asyncio.Event()

    async def handle(event: Execution) -> None:
        if event.kind is ExecutionKind.FILLED and not crashed.is_set():
            crashed.set()
            raise RuntimeError("bug in the strategy")

    async def worker() -> None:
        seen: list[Execution] = []
        runs.append(seen)
        async with fast_broker.executions() as events:
            async for event in events:
                seen.append(event)
                await handle(event)

    async def supervisor() -> None:
        while True:
            try:
                await worker()
            except RuntimeError:
                continue  # restart with a fresh stream, as supervisors do

    task = asyncio.create_task(supervisor())
    try:
        await wait(lambda: fast_broker._streams.executions_active)
        orders = [buy(fast_sim, 7) for _ in range(4)]  # 28 shares, notices queue up at once
        await wait(lambda: len(runs) == 2)
        await wait(lambda: per_order(runs[1]) == booked(fast_sim))
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert sum(booked(fast_sim).values()) == 28
    assert per_order(runs[1]) == booked(fast_sim)
    assert set(per_order(runs[1])) == {normalize_order_id(o) for o in orders}
    assert sum(1 for e in runs[0] if e.kind is ExecutionKind.FILLED) >= 1
    assert any(e.replayed for e in runs[1])


async def test_restart_from_the_last_handled_cursor_hands_each_share_once(
    fast_sim: KISSimulator, fast_broker: KISBroker, wait: Waiter
) -> None:
    """A worker that saves ``event.cursor`` after handling resumes with since=: the fills
    handled by both runs add up to the exchange's, none twice."""
    handled: list[Execution] = []
    saved: list[str] = []
    crashes = 0

    async def worker(since: str | None) -> None:
        nonlocal crashes
        async with fast_broker.executions(since=since) as events:
            async for event in events:
                fills = sum(e.kind is ExecutionKind.FILLED for e in handled)
                if event.kind is ExecutionKind.FILLED and fills == 2 and not crashes:
                    crashes += 1
                    raise RuntimeError("crash before handling this one")
                handled.append(event)
                assert event.cursor is not None
                saved.append(str(event.cursor))

    async def supervisor() -> None:
        while True:
            with contextlib.suppress(RuntimeError):
                await worker(saved[-1] if saved else None)

    task = asyncio.create_task(supervisor())
    try:
        await wait(lambda: fast_broker._streams.executions_active)
        for qty in (3, 4, 5, 6):
            buy(fast_sim, qty)
        await wait(lambda: per_order(handled) == booked(fast_sim))
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert crashes == 1
    assert per_order(handled) == booked(fast_sim)
    assert sum(per_order(handled).values()) == 18


async def test_a_second_stream_gets_earlier_fills_and_replay_false_only_new_ones(
    fast_sim: KISSimulator, fast_broker: KISBroker, wait: Waiter
) -> None:
    """30 shares filled before any stream: each replaying stream receives all 30 (REST row
    times, replayed=True); a replay=False stream only what comes after it opened."""
    early = [buy(fast_sim, 10) for _ in range(3)]
    first: list[Execution] = []
    second: list[Execution] = []
    later: list[Execution] = []
    async with fast_broker.executions() as s1:
        await collect(s1, first, lambda: sum(per_order(first).values()) == 30)
        async with fast_broker.executions() as s2, fast_broker.executions(replay=False) as s3:
            await collect(s2, second, lambda: sum(per_order(second).values()) == 30)
            await wait(lambda: fast_broker._streams.executions_active)
            new = buy(fast_sim, 5)
            await collect(s1, first, lambda: per_order(first)[normalize_order_id(new)] == 5)
            await collect(s2, second, lambda: per_order(second)[normalize_order_id(new)] == 5)
            await collect(s3, later, lambda: per_order(later)[normalize_order_id(new)] == 5)
            for stream, events in ((s1, first), (s2, second), (s3, later)):
                await quiet(stream, events)
    assert per_order(first) == per_order(second) == booked(fast_sim)
    assert set(per_order(later)) == {normalize_order_id(new)}
    for event in first[:3]:
        assert event.replayed
        assert event.source == "reconcile"
        order = fast_sim.exchange.order(event.broker_order_id)
        assert event.time is not None
        assert event.time.strftime("%H%M%S") == order.created_at.strftime("%H%M%S")
    assert {normalize_order_id(e.broker_order_id) for e in first[:3]} == {
        normalize_order_id(o) for o in early
    }
    assert not any(e.replayed for e in later)


async def test_processes_resume_from_a_persisted_cursor_across_crashes(
    fast_options: StreamOptions,
) -> None:
    """Three processes in turn: each handles some fills, saves its cursor, crashes with
    notices still queued; fills happen while none runs. The next one, started with the saved
    cursor, gets exactly the rest: handled per order == filled at the exchange."""
    # Each "process" is a fresh KISBroker that issues its own token: the simulator's
    # one-token-a-minute rule is off here.
    async with KISSimulator(
        seed=4343,
        mode=Mode.PAPER,
        quote_interval=None,
        pingpong_interval=0.2,
        rate_limit=False,
        token_issue_interval=0.0,
    ).serve(port=0) as fast_sim:
        await _three_processes(fast_sim, fast_options)


async def _three_processes(fast_sim: KISSimulator, fast_options: StreamOptions) -> None:
    handled: list[Execution] = []
    saved: str | None = None
    config = fast_sim.config(requests_per_second=None)
    for process in range(3):
        async with KISBroker(config, stream_options=fast_options) as broker:
            stream = broker.executions(since=saved)
            await stream.__aenter__()
            if process < 2:
                for qty in (2, 3, 4):
                    buy(fast_sim, qty, "000660" if process else "005930")
                # Handle two fills, then "crash": the stream's queue is simply abandoned.
                taken = 0
                async with asyncio.timeout(10):
                    while taken < 2:
                        event = await anext(stream)
                        handled.append(event)
                        assert event.cursor is not None
                        saved = str(event.cursor)
                        taken += event.kind is ExecutionKind.FILLED
            else:
                before = list(handled)
                await collect(
                    stream,
                    handled,
                    lambda: per_order(handled) == booked(fast_sim),
                )
                await quiet(stream, handled)
                assert len(handled) > len(before)
        # Down: fills nobody's socket carries.
        if process < 2:
            buy(fast_sim, 6)
    assert per_order(handled) == booked(fast_sim)
    assert sum(booked(fast_sim).values()) == 2 * (2 + 3 + 4 + 6)
    cursor = ExecutionCursor.parse(saved or "")
    assert cursor.filled  # the cursor names orders with their delivered totals
