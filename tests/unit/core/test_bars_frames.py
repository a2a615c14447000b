"""Interval buckets and the pandas/polars conversions of bars."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal

import pytest

from kis_async.errors import HistoryRequestError
from kis_async.frames import bars_to_pandas, bars_to_polars
from kis_async.models import KST, Bar, Interval


def bar(minute: int, close: str, volume: int, turnover: str) -> Bar:
    return Bar(
        symbol="005930",
        start=datetime(2026, 1, 2, 9, minute, tzinfo=KST),
        interval=Interval.MINUTE_1,
        open=Decimal(close),
        high=Decimal(close),
        low=Decimal(close),
        close=Decimal(close),
        volume=volume,
        turnover=Decimal(turnover),
    )


@pytest.mark.parametrize(
    ("interval", "when", "start"),
    [
        ("1m", datetime(2026, 1, 2, 9, 7, 59, tzinfo=KST), datetime(2026, 1, 2, 9, 7, tzinfo=KST)),
        ("3m", datetime(2026, 1, 2, 9, 8, tzinfo=KST), datetime(2026, 1, 2, 9, 6, tzinfo=KST)),
        ("60m", datetime(2026, 1, 2, 15, 30, tzinfo=KST), datetime(2026, 1, 2, 15, 0, tzinfo=KST)),
        ("1w", datetime(2026, 1, 2, 9, 0, tzinfo=KST), datetime(2025, 12, 29, tzinfo=KST)),
        ("1M", datetime(2026, 1, 31, 9, 0, tzinfo=KST), datetime(2026, 1, 1, tzinfo=KST)),
        ("1y", datetime(2026, 7, 1, 9, 0, tzinfo=KST), datetime(2026, 1, 1, tzinfo=KST)),
    ],
)
def test_buckets(interval: str, when: datetime, start: datetime) -> None:
    """Bars start on the session-aligned grid (minutes) or the period's first day."""
    assert Interval.parse(interval).bucket(when) == start


def test_month_and_year_ends() -> None:
    """A December month bar ends on January 1st of the next year."""
    december = datetime(2026, 12, 1, tzinfo=KST)
    assert Interval.MONTH.end_of(december) == datetime(2027, 1, 1, tzinfo=KST)
    assert Interval.YEAR.end_of(december.replace(month=1)) == datetime(2027, 1, 1, tzinfo=KST)
    assert Interval.WEEK.period_start(date(2026, 1, 4)) == date(2025, 12, 29)


@pytest.mark.parametrize("text", ["2m", "1D", "", "1 m", "minute"])
def test_unknown_intervals(text: str) -> None:
    """Anything but the eleven spellings is a HistoryRequestError (1m minute, 1M month)."""
    with pytest.raises(HistoryRequestError, match="unknown interval"):
        Interval.parse(text)


def test_pandas_frame_is_decimal_free_in_seoul() -> None:
    """float64 prices/turnover, int64 volume, a DatetimeIndex in Asia/Seoul; exact values."""
    frame = bars_to_pandas([bar(0, "71900", 5, "359500"), bar(1, "72000", 7, "1234567890123")])
    assert str(frame.index.tz) == "Asia/Seoul"
    assert frame.index.name == "start"
    assert frame.index[0].hour == 9
    assert list(frame.columns) == ["open", "high", "low", "close", "volume", "turnover"]
    assert str(frame["volume"].dtype) == "int64"
    assert {str(frame[c].dtype) for c in ("open", "high", "low", "close", "turnover")} == {
        "float64"
    }
    assert frame["turnover"].iloc[1] == 1_234_567_890_123
    assert frame["close"].tolist() == [71_900.0, 72_000.0]


def test_polars_frame() -> None:
    """A start column in Asia/Seoul plus the same value columns."""
    frame = bars_to_polars([bar(0, "71900", 5, "359500")])
    assert frame.columns == ["start", "open", "high", "low", "close", "volume", "turnover"]
    assert str(frame.schema["start"]) == "Datetime(time_unit='us', time_zone='Asia/Seoul')"
    assert frame["start"][0].hour == 9
    assert frame["volume"].to_list() == [5]


def test_frames_import_without_pandas_or_polars() -> None:
    """Importing kis_async.frames needs neither library; calling a converter says which
    extra to install."""
    code = (
        "import sys\n"
        "sys.modules['pandas'] = None\n"
        "sys.modules['polars'] = None\n"
        "import kis_async.frames as f\n"
        "for fn in (f.bars_to_pandas, f.bars_to_polars):\n"
        "    try:\n"
        "        fn([])\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
    )
    out = subprocess.run(  # noqa: S603  (our own interpreter, a fixed script)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "kis_async[pandas]" in out.stdout
    assert "kis_async[polars]" in out.stdout
