"""MockBroker.set_bars / bars / get_bars: in-memory history with KISBroker's checks."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from kis_async import HistoryRequestError, InvalidOrderError, MockBroker
from kis_async.models import KST, Bar, Interval

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=KST)


def minute(i: int) -> Bar:
    return Bar(
        symbol="005930",
        start=datetime(2026, 12, 1, 9, 0, tzinfo=KST) + timedelta(minutes=i),
        interval=Interval.MINUTE_1,
        open=Decimal(70_000 + i),
        high=Decimal(70_100 + i),
        low=Decimal(69_900 + i),
        close=Decimal(70_050 + i),
        volume=i + 1,
        turnover=Decimal(1_000 * (i + 1)),
    )


async def test_set_bars_then_fold_to_five_minutes() -> None:
    """1-minute bars given to the mock come back as-is or folded into 5-minute bars."""
    async with MockBroker(clock=lambda: NOW) as broker:
        broker.set_bars("005930", [minute(i) for i in reversed(range(12))])
        ones = await broker.get_bars("005930", "1m")
        assert [b.start.minute for b in ones] == list(range(12))
        fives = await broker.get_bars("005930", "5m", start=datetime(2026, 12, 1, 9, 3, tzinfo=KST))
        assert [b.start.minute for b in fives] == [0, 5, 10]
        assert fives[1].volume == sum(range(6, 11))
        assert fives[1].open == Decimal(70_005)
        assert fives[1].close == Decimal(70_059)


async def test_mock_checks_like_the_real_broker() -> None:
    """Unknown interval, start after end and bad symbols raise before anything else."""
    async with MockBroker(clock=lambda: NOW) as broker:
        with pytest.raises(HistoryRequestError):
            broker.bars("005930", "7m")
        with pytest.raises(HistoryRequestError):
            broker.bars("005930", "1d", start="2026-11-02", end="2026-11-01")
        with pytest.raises(InvalidOrderError):
            broker.bars("005930\n", "1d")
        with pytest.raises(HistoryRequestError):
            broker.set_bars("000660", [minute(0)])
