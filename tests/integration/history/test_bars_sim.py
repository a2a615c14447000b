"""KISBroker.get_bars against the simulator: the bars equal the simulator's own history and
the pager uses the fewest requests the row caps allow."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from kis_async import HistoryRequestError, KISBroker, Mode
from kis_async.models import KST, Interval
from kis_async.sim import KISSimulator
from kis_async.sim.history import is_trading_day

START = datetime(2026, 12, 1, 10, 30, tzinfo=KST)
SYMBOL = "000660"


async def test_daily_and_minute_bars_match_the_simulator() -> None:
    """A year of 1d bars (3 calls of 100) and five days of 1m bars (4 calls of 120 per day)
    equal the simulator's daily walk and minute rows exactly, oldest first."""
    sim = KISSimulator(seed=3, mode=Mode.LIVE, rate_limit=False, start_time=START,
                       quote_interval=None)  # fmt: skip
    async with (
        sim.serve(port=0),
        KISBroker(sim.config(requests_per_second=None), clock=sim.clock.now) as broker,
    ):
        await broker.authenticate()
        before = sim.rest.charts.requests
        year = await broker.get_bars(SYMBOL, "1d", start=START.date() - timedelta(days=365))
        assert sim.rest.charts.requests - before == -(-len(year) // 100)
        truth = {b.day: b for b in sim.rest.history.daily(SYMBOL)}
        assert len(year) == sum(1 for d in truth if d >= START.date() - timedelta(days=365))
        for bar in year:
            day = truth[bar.start.date()]
            assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.turnover) == (
                day.open, day.high, day.low, day.close, day.volume, Decimal(day.turnover)
            )  # fmt: skip
        first = START - timedelta(days=7)
        before = sim.rest.charts.requests
        minutes = await broker.get_bars(SYMBOL, Interval.MINUTE_1, start=first.date())
        days = sorted({bar.start.date() for bar in minutes})
        assert days == [d.date() for d in (first + timedelta(days=i) for i in range(7))
                        if is_trading_day(d.date())]  # fmt: skip
        # Each past day: 381 rows in pages of 120 -> 4 calls; today (no trades yet) -> 1.
        assert sim.rest.charts.requests - before == 4 * len(days) + 1
        for day in days:
            rows = sim.rest.history.day_minutes(SYMBOL, day)
            mine = [bar for bar in minutes if bar.start.date() == day]
            assert [(b.start, b.open, b.high, b.low, b.close, b.volume) for b in mine] == [
                (r.start, r.open, r.high, r.low, r.close, r.volume) for r in rows
            ]
            assert sum(b.turnover for b in mine) == rows[-1].cum_turnover


async def test_paper_minute_history_is_today_only() -> None:
    """Against a paper simulator, yesterday's minutes are refused before any request."""
    sim = KISSimulator(seed=3, mode=Mode.PAPER, rate_limit=False, start_time=START)
    async with sim.serve(port=0), KISBroker(sim.config(), clock=sim.clock.now) as broker:
        with pytest.raises(HistoryRequestError, match="paper"):
            broker.bars(SYMBOL, "1m", start=START - timedelta(days=1))
        assert sim.rest.charts.requests == 0
