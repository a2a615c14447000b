"""The simulator's clocks: wall time with a manual offset, and the market clock sessions are
judged by."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from kis_async.models.common import KST
from kis_async.sim.venues import DEFAULT_MARKET_TIME, SimCalendar

__all__ = ["SimClock"]


class SimClock:
    """Wall-clock time plus a manual offset, in Asia/Seoul.

    The simulator follows real time by default (so token expiry strings make sense to a client
    comparing them with its own clock); :meth:`advance` jumps forward for tests, and
    ``start`` pins the starting instant.
    """

    def __init__(
        self, start: datetime | None = None, *, market: datetime | str | None = None
    ) -> None:
        self._origin = start.astimezone(KST) if start is not None else datetime.now(KST)
        self._mono0 = time.monotonic()
        self._offset = 0.0
        self._frozen: float | None = None
        self._market_origin: datetime | None = None
        if isinstance(market, datetime):
            self.set_market_time(market)
        elif market is None:
            day = SimCalendar().default_day(self._origin.date())
            self.set_market_time(datetime.combine(day, DEFAULT_MARKET_TIME, KST))
        elif market != "wall":
            raise ValueError("market must be a datetime, 'wall' or None")

    def market_now(self) -> datetime:
        """The simulated market time (aware, KST): what sessions are judged by.

        By default a trading day at 10:00 moving with the clock, so every session-dependent
        behaviour works at any wall-clock hour; ``"wall"`` follows :meth:`now`. Order and fill
        timestamps, token expiries and business dates stay on :meth:`now`, so they agree with
        any client's own clock.
        """
        if self._market_origin is None:
            return self.now()
        return self._market_origin + timedelta(seconds=self.monotonic())

    def set_market_time(self, when: datetime) -> None:
        """Jump the market clock to ``when`` (naive means KST); it moves on from there."""
        aware = when.replace(tzinfo=KST) if when.tzinfo is None else when.astimezone(KST)
        self._market_origin = aware - timedelta(seconds=self.monotonic())

    def follow_wall(self) -> None:
        """Make the market clock follow wall time."""
        self._market_origin = None

    def _elapsed(self) -> float:
        return time.monotonic() - self._mono0

    def monotonic(self) -> float:
        """Seconds on a monotonic scale that includes every :meth:`advance`."""
        base = self._frozen if self._frozen is not None else self._elapsed()
        return base + self._offset

    def now(self) -> datetime:
        """The simulated current time (aware, KST)."""
        return self._origin + timedelta(seconds=self.monotonic())

    def advance(self, seconds: float) -> None:
        """Jump the clock forward by ``seconds`` (token lifetimes, rate windows, timestamps)."""
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        self._offset += seconds

    def freeze(self) -> None:
        """Stop the clock: only :meth:`advance` moves it until :meth:`unfreeze` (rate-limit
        windows and expiries become exact in tests)."""
        if self._frozen is None:
            self._frozen = self._elapsed()

    def unfreeze(self) -> None:
        """Follow wall time again from the frozen instant (the clock never goes back)."""
        if self._frozen is not None:
            self._offset -= self._elapsed() - self._frozen
            self._frozen = None

    @property
    def frozen(self) -> bool:
        """True while frozen."""
        return self._frozen is not None
