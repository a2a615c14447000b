"""The simulator's price history: seeded past days, and today's minutes from its own trades.

* Past trading days (weekdays, less the fixed KRX holidays below) get a daily bar from a
  seeded random walk run backwards from each symbol's previous close, so yesterday's close is
  exactly the price today's session opened from. The walk is on the KRX tick grid.
* A past day's 381 minute rows (09:00-15:19 and the 15:30 closing auction) are drawn from a
  seed of (simulator seed, symbol, day) and agree with that day's bar: the first open, the
  extremes, the last close, the volume and the turnover add up exactly.
* Today's minute rows are recorded from the trades the exchange makes (the same ticks the
  WebSocket feed sends), so live bars built from the feed equal the served minute history.

Everything is whole won, computed lazily and cached per symbol (daily) or per day (minutes).
"""

from __future__ import annotations

import functools
import itertools
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final

from kis_async.models.common import KST, tick_size
from kis_async.sim.exchange import SimExchange, Tick

__all__ = ["DayBar", "MinuteBar", "SimHistory", "is_trading_day"]

#: The first day of simulated history.
HISTORY_START: Final = date(2000, 1, 4)
#: Minute rows of a past day: 09:00 to 15:19, then the 15:30 closing-auction print.
SESSION_MINUTES: Final[tuple[time, ...]] = (
    *(time(9 + m // 60, m % 60) for m in range(380)),
    time(15, 30),
)
#: Fixed-date KRX holidays (month, day); lunar holidays are not simulated.
_HOLIDAYS: Final = frozenset({(1, 1), (3, 1), (5, 5), (6, 6), (8, 15), (10, 3), (10, 9),
                              (12, 25), (12, 31)})  # fmt: skip
RECENT_TRADES: Final = 30


def is_trading_day(day: date) -> bool:
    """True on a simulated KRX trading day."""
    return day.weekday() < 5 and (day.month, day.day) not in _HOLIDAYS


def _snap(price: float) -> int:
    value = max(round(price), 1)
    tick = tick_size(value)
    return max(value - value % tick, tick)


@dataclass(frozen=True, slots=True)
class DayBar:
    """One simulated trading day."""

    day: date
    open: int
    high: int
    low: int
    close: int
    volume: int
    turnover: int


@dataclass(slots=True)
class MinuteBar:
    """One minute: prices, volume, and the day's cumulative turnover at its end."""

    start: datetime
    open: int
    high: int
    low: int
    close: int
    volume: int
    cum_turnover: int


@dataclass
class _Today:
    day: date | None = None
    minutes: dict[str, dict[datetime, MinuteBar]] = field(default_factory=dict)
    trades: dict[str, deque[Tick]] = field(default_factory=dict)


class SimHistory:
    """Serves past and today's bars of the simulated market.

    Args:
        exchange: the simulated exchange (its clock says what "today" is; its ticks feed
            today's minute rows).
        seed: the simulator seed.
    """

    def __init__(self, exchange: SimExchange, *, seed: int) -> None:
        self.exchange = exchange
        self._seed = seed
        self._daily: dict[tuple[str, date], list[DayBar]] = {}
        self._today = _Today()
        exchange.add_tick_listener(self._on_ticks)

    # -- today -------------------------------------------------------------------------------

    def today(self) -> date:
        """The simulated date."""
        return self.exchange.clock.now().astimezone(KST).date()

    def _on_ticks(self, ticks: list[Tick]) -> None:
        state = self._today
        for tick in ticks:
            when = tick.time.astimezone(KST)
            if state.day != when.date():
                state.day = when.date()
                state.minutes.clear()
                state.trades.clear()
            minute = when.replace(second=0, microsecond=0)
            rows = state.minutes.setdefault(tick.symbol, {})
            row = rows.get(minute)
            if row is None:
                rows[minute] = MinuteBar(
                    minute, tick.price, tick.price, tick.price, tick.price, tick.qty, tick.turnover
                )
            else:
                row.high = max(row.high, tick.price)
                row.low = min(row.low, tick.price)
                row.close = tick.price
                row.volume += tick.qty
                row.cum_turnover = tick.turnover
            state.trades.setdefault(tick.symbol, deque(maxlen=RECENT_TRADES)).append(tick)

    def today_minutes(self, symbol: str) -> list[MinuteBar]:
        """Today's minute rows of ``symbol`` recorded from the exchange's trades, oldest first
        (the forming minute included)."""
        if self._today.day != self.today():
            return []
        rows = self._today.minutes.get(symbol, {})
        return [rows[key] for key in sorted(rows)]

    def recent_trades(self, symbol: str) -> list[Tick]:
        """The latest 30 trades of ``symbol``, newest first."""
        if self._today.day != self.today():
            return []
        return list(reversed(self._today.trades.get(symbol, ())))

    def today_bar(self, symbol: str) -> DayBar | None:
        """Today's running daily bar (None before the first trade)."""
        inst = self.exchange.instrument(symbol)
        if inst.volume == 0:
            return None
        return DayBar(
            self.today(), inst.open, inst.high, inst.low, inst.price, inst.volume, inst.turnover
        )

    # -- past days ---------------------------------------------------------------------------

    def daily(self, symbol: str) -> list[DayBar]:
        """Every past trading day of ``symbol`` (oldest first), ending yesterday at the
        previous close."""
        today = self.today()
        key = (symbol, today)
        cached = self._daily.get(key)
        if cached is None:
            cached = self._walk(symbol, today)
            # A new simulated day invalidates every walk (yesterday moved).
            self._daily = {k: v for k, v in self._daily.items() if k[1] == today}
            self._daily[key] = cached
        return cached

    def _walk(self, symbol: str, today: date) -> list[DayBar]:
        inst = self.exchange.instrument(symbol)
        rng = random.Random(f"{self._seed}:{symbol}:daily")
        days: list[date] = []
        day = today - timedelta(days=1)
        while day >= HISTORY_START:
            if is_trading_day(day):
                days.append(day)
            day -= timedelta(days=1)
        base_volume = max(int(5e9 / max(inst.prev_close, 1)), 2_000)
        bars: list[DayBar] = []
        close = inst.prev_close
        for day in days:  # newest first
            move = max(min(rng.gauss(0.0003, 0.018), 0.25), -0.25)
            prev_close = _snap(max(close / (1 + move), 50))
            open_ = _snap(prev_close * (1 + rng.gauss(0, 0.004)))
            top, bottom = max(open_, close), min(open_, close)
            high = _snap(top * (1 + abs(rng.gauss(0, 0.008))))
            low = _snap(bottom * (1 - abs(rng.gauss(0, 0.008))))
            high, low = max(high, top), min(low, bottom)
            volume = max(int(base_volume * rng.lognormvariate(0, 0.4)), len(SESSION_MINUTES))
            turnover = volume * (open_ + high + low + close) // 4
            bars.append(DayBar(day, open_, high, low, close, volume, turnover))
            close = prev_close
        bars.reverse()
        return bars

    def day_bar(self, symbol: str, day: date) -> DayBar | None:
        """The bar of a past trading day (None otherwise)."""
        return _find(self.daily(symbol), day)

    def day_minutes(self, symbol: str, day: date) -> list[MinuteBar]:
        """The minute rows of ``day`` (today: recorded; past: drawn), oldest first."""
        if day == self.today():
            return self.today_minutes(symbol)
        bar = self.day_bar(symbol, day)
        if bar is None:
            return []
        return list(_draw_minutes(self._seed, symbol, bar))


def _find(bars: list[DayBar], day: date) -> DayBar | None:
    lo, hi = 0, len(bars)
    while lo < hi:
        mid = (lo + hi) // 2
        if bars[mid].day < day:
            lo = mid + 1
        else:
            hi = mid
    return bars[lo] if lo < len(bars) and bars[lo].day == day else None


@functools.lru_cache(maxsize=64)
def _draw_minutes(seed: int, symbol: str, bar: DayBar) -> tuple[MinuteBar, ...]:
    """A day's minutes that agree exactly with ``bar``."""
    rng = random.Random(f"{seed}:{symbol}:{bar.day.isoformat()}")
    n = len(SESSION_MINUTES)
    last = n - 1
    hi_at, lo_at = rng.sample(range(last), 2)
    anchors = sorted({0: bar.open, hi_at: bar.high, lo_at: bar.low, last: bar.close}.items())
    closes = [0] * n
    for (i0, p0), (i1, p1) in itertools.pairwise(anchors):
        span = i1 - i0
        for k in range(i0, i1 + 1):
            frac = (k - i0) / span
            noise = rng.gauss(0, 0.002) * p0 * (1 - abs(2 * frac - 1))
            closes[k] = min(max(_snap(p0 + (p1 - p0) * frac + noise), bar.low), bar.high)
    for index, price in anchors:
        closes[index] = price
    weights = [1.5 + abs(k - n / 2) / (n / 2) + rng.random() for k in range(n)]
    total_w = sum(weights)
    volumes = [max(int(bar.volume * w / total_w), 1) for w in weights]
    volumes[volumes.index(max(volumes))] += bar.volume - sum(volumes)
    raw = [v * c for v, c in zip(volumes, closes, strict=True)]
    total_raw = sum(raw)
    turnovers = [bar.turnover * r // total_raw for r in raw]
    turnovers[turnovers.index(max(turnovers))] += bar.turnover - sum(turnovers)
    rows: list[MinuteBar] = []
    cum = 0
    prev_close = bar.open
    for k, clock in enumerate(SESSION_MINUTES):
        open_ = bar.open if k == 0 else prev_close
        close = closes[k]
        cum += turnovers[k]
        rows.append(
            MinuteBar(
                start=datetime.combine(bar.day, clock, KST),
                open=open_,
                high=max(open_, close),
                low=min(open_, close),
                close=close,
                volume=volumes[k],
                cum_turnover=cum,
            )
        )
        prev_close = close
    return tuple(rows)
