"""Live bars from the simulator's feed against the simulator's own minute history, across
the history-to-live seam and a WebSocket reconnect."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from kis_async import KISBroker, Mode
from kis_async.history.fetch import aggregate
from kis_async.models import KST, Bar, Interval
from kis_async.sim import KISSimulator
from kis_async.stream.manager import StreamOptions

SYMBOL = "005930"
START = datetime(2026, 12, 1, 10, 0, 0, tzinfo=KST)
FAST = StreamOptions(
    ack_timeout=3.0,
    liveness_timeout=1.0,
    connect_timeout=2.0,
    close_timeout=0.5,
    reconnect_base_delay=0.02,
    reconnect_max_delay=0.2,
    reconnect_jitter=0.5,
    healthy_after=0.5,
    max_reconnect_attempts=50,
)


@pytest.fixture
async def running_sim() -> AsyncIterator[KISSimulator]:
    """A live-mode simulator on simulated time whose market trades every 10 ms."""
    sim = KISSimulator(
        seed=99, mode=Mode.LIVE, rate_limit=False, start_time=START, quote_interval=0.01
    )
    async with sim.serve(port=0) as served:
        yield served


@contextlib.asynccontextmanager
async def fast_time(sim: KISSimulator, seconds_per_step: float) -> AsyncIterator[None]:
    """Run the simulated clock ahead of wall time (one step every 10 ms)."""

    async def run() -> None:
        while True:
            sim.clock.advance(seconds_per_step)
            await asyncio.sleep(0.01)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def sim_bars(sim: KISSimulator, interval: Interval) -> dict[datetime, Bar]:
    """The simulator's own minute history for today, folded to ``interval``."""
    prev = 0
    ones: list[Bar] = []
    for row in sim.rest.history.today_minutes(SYMBOL):
        ones.append(
            Bar(
                symbol=SYMBOL,
                start=row.start,
                interval=Interval.MINUTE_1,
                open=row.open,
                high=row.high,
                low=row.low,
                close=row.close,
                volume=row.volume,
                turnover=row.cum_turnover - prev,
            )
        )
        prev = row.cum_turnover
    return {bar.start: bar for bar in aggregate(ones, interval)}


def ohlcv(bar: Bar) -> tuple[object, ...]:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.turnover)


async def collect_live(
    sim: KISSimulator, broker: KISBroker, interval: str, *, want: int, drop_at: int | None
) -> list[Bar]:
    """History then live bars until ``want`` bars started after the seam; drops the
    WebSocket once ``drop_at`` live bars have arrived."""
    got: list[Bar] = []
    seam = sim.clock.now()
    live = 0
    history = 0
    async with broker.bars(SYMBOL, interval, start=START, live=True) as stream:
        while live < want:
            bar = await asyncio.wait_for(anext(stream), 20)
            got.append(bar)
            if bar.start >= Interval(interval).bucket(seam):
                live += 1
                if live == drop_at:
                    assert sim.faults.drop_sessions() == 1
            else:
                history += 1
    assert history >= 2, "the test needs REST history before the seam"
    return got


@pytest.mark.parametrize("interval", ["1m", "3m"])
async def test_history_then_live_equals_sim_minutes_across_a_reconnect(
    running_sim: KISSimulator, interval: str
) -> None:
    """Every bar (REST history, the seam bar, live bars, bars across a dropped socket) equals
    the simulator's minute history exactly; starts are strictly increasing with no gap."""
    sim = running_sim
    async with fast_time(sim, 1.0):
        while sim.clock.now() < START + timedelta(minutes=7):  # some history first
            await asyncio.sleep(0.05)
        async with KISBroker(
            sim.config(requests_per_second=None), clock=sim.clock.now, stream_options=FAST
        ) as broker:
            got = await collect_live(sim, broker, interval, want=4, drop_at=2)
            assert broker.stream_status.reconnects >= 1
    truth = sim_bars(sim, Interval(interval))
    starts = [bar.start for bar in got]
    assert starts == sorted(set(starts)), "duplicate or out-of-order bar"
    for bar in got:
        assert bar.start in truth, f"bar {bar.start} unknown to the simulator"
        assert ohlcv(bar) == ohlcv(truth[bar.start]), f"bar {bar.start} differs"
    # No gap: every minute the simulator traded between the first and last bar was emitted.
    expected = [s for s in sorted(truth) if starts[0] <= s <= starts[-1]]
    assert starts == expected


async def test_live_bars_equal_sim_minutes(running_sim: KISSimulator) -> None:
    """broker.live_bars: the first (joined mid-minute) bar is re-fetched over REST, the rest
    are built from ticks; all equal the simulator's minute history, including the bar that
    spans a dropped WebSocket."""
    sim = running_sim
    async with (
        fast_time(sim, 1.0),
        KISBroker(
            sim.config(requests_per_second=None), clock=sim.clock.now, stream_options=FAST
        ) as broker,
    ):
        got: list[Bar] = []
        async with broker.live_bars([SYMBOL], "1m") as bars:
            while len(got) < 5:
                got.append(await asyncio.wait_for(anext(bars), 20))
                if len(got) == 2:
                    assert sim.faults.drop_sessions() == 1
            # The first bar (joined mid-minute) and the one spanning the reconnect.
            assert bars.refetched >= 2
        assert broker.stream_status.reconnects >= 1
    truth = sim_bars(sim, Interval.MINUTE_1)
    window = [s for s in sorted(truth) if got[0].start <= s <= got[-1].start]
    assert [bar.start for bar in got] == window
    for bar in got:
        assert ohlcv(bar) == ohlcv(truth[bar.start])


async def test_aclose_from_another_task_ends_a_waiting_reader(running_sim: KISSimulator) -> None:
    """A consumer blocked on the next bar gets StopAsyncIteration when another task closes
    the live bars; the pump task is gone and the quote registration released."""
    sim = running_sim
    async with KISBroker(
        sim.config(requests_per_second=None), clock=sim.clock.now, stream_options=FAST
    ) as broker:
        bars = broker.live_bars([SYMBOL], "60m")
        await bars.start()
        reader = asyncio.create_task(anext(bars))
        await asyncio.sleep(0.3)
        assert not reader.done()
        await bars.aclose()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(reader, 5)
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "kis-live-bars"]
        await bars.aclose()  # idempotent
