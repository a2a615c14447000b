"""`kis-async bars`: table + chart, CSV and JSON against the simulator; the chart renderer."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from kis_async.cli_bars import render_closes
from kis_async.models import KST, Bar, Interval

RunCLI = Any


async def test_bars_csv_json_and_chart(cli: RunCLI) -> None:
    """Daily bars since a date: CSV with a header, JSON bars, and a table with a chart."""
    start = (datetime.now(KST) - timedelta(days=120)).date().isoformat()
    as_csv = await cli("bars", "005930", "--interval", "1d", "--start", start, "--csv")
    assert as_csv.code == 0, as_csv.err
    rows = list(csv.reader(io.StringIO(as_csv.out)))
    assert rows[0] == ["start", "open", "high", "low", "close", "volume", "turnover"]
    assert len(rows) > 60
    assert rows[1][0] >= start
    assert [r[0] for r in rows[1:]] == sorted(r[0] for r in rows[1:])
    as_json = await cli("bars", "005930", "--start", start, "--json")
    assert as_json.code == 0, as_json.err
    bars = json.loads(as_json.out)
    # Today's running bar appears once the simulated market has traded: compare past days.
    today = datetime.now(KST).date().isoformat()
    past_json = [(b["start"], b["close"]) for b in bars if not b["start"].startswith(today)]
    past_csv = [(r[0], r[4]) for r in rows[1:] if not r[0].startswith(today)]
    assert past_json == past_csv
    assert bars[0]["interval"] == "1d"
    text = await cli("bars", "005930", "--interval", "1w", "--start", start)
    assert text.code == 0, text.err
    assert "┤" in text.out
    assert "•" in text.out


async def test_bars_bad_input_is_a_usage_error(cli: RunCLI) -> None:
    """start after end exits with the usage code and a one-line message."""
    result = await cli("bars", "005930", "--start", "2026-05-02", "--end", "2026-05-01")
    assert result.code == 2
    assert "after end" in result.err


def test_render_closes_marks_extremes_and_axis() -> None:
    """The highest close sits on the top row, the lowest on the bottom one, labelled."""
    closes = [100, 105, 103, 120, 90, 110]
    bars = [
        Bar("005930", datetime(2026, 1, 5 + i, tzinfo=KST), Interval.DAY, Decimal(c),
            Decimal(c), Decimal(c), Decimal(c), 1, Decimal(c))
        for i, c in enumerate(closes)
    ]  # fmt: skip
    lines = render_closes(bars, height=8)
    assert len(lines) == 10
    assert lines[0].startswith("120 ┤")
    assert lines[7].startswith(" 90 ┤")
    plot = [line.split("┤", 1)[1] for line in lines[:8]]
    assert plot[0][3] == "•"  # 120 is the 4th bar
    assert plot[7][4] == "•"  # 90 is the 5th
    assert "│" in "".join(row[4] for row in plot)  # the drop from 120 to 90 is joined
    assert lines[-1].strip().startswith("2026-01-05")
    assert lines[-1].strip().endswith("2026-01-10")
