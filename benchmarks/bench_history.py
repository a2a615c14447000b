"""Benchmark 6: price history against the simulator at KIS's paper and live rate limits.

Two fetches, each at 2 requests/s (paper) and 20 requests/s (live), with the simulator (own
process) enforcing the same limit and the client's limiter set to it:

* one year of daily bars (``1d``, period chart, 100 rows a call);
* five trading days of 1-minute bars (past-day minute chart, 120 rows a call in the
  simulator). Paper accounts cannot fetch past-day minutes from KIS, so the 2/s row measures
  the pager at the paper rate with a live-mode simulator.

Reported: requests used vs the minimum the row caps allow (sum of ceil(rows / cap)), time vs
the rate-limit floor ((ceil(N / limit) - 1) s: every window but the last is full; 0 when all
requests fit in one window), and the client's peak traced memory (tracemalloc) for
``get_bars`` (a list) and for iterating ``bars()`` without keeping the bars.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
import tracemalloc
from datetime import datetime, timedelta
from typing import Any

from _common import SimProcess, fmt_num, print_table, verdict
from bench_rest import config_from

from kis_async import KISBroker
from kis_async.models import KST
from kis_async.sim.charts import PAST_MINUTE_ROWS, PERIOD_ROWS
from kis_async.sim.history import is_trading_day

SYMBOL = "005930"
TARGET = 1.10


def _requests(sim: SimProcess) -> int:
    stats = sim.admin("stats")
    assert isinstance(stats, dict)
    return int(stats["rest_requests"])


def _trading_days_back(count: int) -> tuple[datetime, datetime]:
    today = datetime.now(KST).date()
    days = []
    day = today - timedelta(days=1)
    while len(days) < count:
        if is_trading_day(day):
            days.append(day)
        day -= timedelta(days=1)
    start = datetime.combine(days[-1], datetime.min.time(), KST)
    end = datetime.combine(days[0], datetime.max.time(), KST).replace(microsecond=0)
    return start, end


async def _measure(
    broker: KISBroker, sim: SimProcess, rps: int, case: str, *, keep: bool
) -> dict[str, Any]:
    await asyncio.sleep(1.2)  # an empty rate window before the measured fetch
    if case == "1d":
        start, end = datetime.now(KST) - timedelta(days=365), None
        interval = "1d"
    else:
        start, end = _trading_days_back(5)
        interval = "1m"
    before = _requests(sim)
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    per_day: dict[Any, int] = {}
    count = 0
    if keep:
        bars = await broker.get_bars(SYMBOL, interval, start=start, end=end)
        for bar in bars:
            per_day[bar.start.date()] = per_day.get(bar.start.date(), 0) + 1
        count = len(bars)
    else:
        async with broker.bars(SYMBOL, interval, start=start, end=end) as stream:
            async for bar in stream:
                per_day[bar.start.date()] = per_day.get(bar.start.date(), 0) + 1
                count += 1
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    used = _requests(sim) - before
    if case == "1d":
        minimum = math.ceil(count / PERIOD_ROWS)
    else:
        minimum = sum(math.ceil(n / PAST_MINUTE_ROWS) for n in per_day.values())
    floor = (math.ceil(used / rps) - 1) * 1.0
    return {"bars": count, "used": used, "minimum": minimum, "elapsed": elapsed,
            "floor": floor, "peak": peak}  # fmt: skip


async def _session(sim: SimProcess, rps: int, case: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """One broker (one token): warm the simulator's lazily drawn history, then measure
    ``get_bars`` and a plain ``async for`` over ``bars()``."""
    config = config_from(sim.info, requests_per_second=rps)
    async with KISBroker(config) as broker:
        await broker.authenticate()
        # The simulator draws its daily walk on first use (~0.1 s); KIS serves from storage.
        await broker.get_bars(SYMBOL, "1d", start=datetime.now(KST) - timedelta(days=3))
        kept = await _measure(broker, sim, rps, case, keep=True)
        streamed = await _measure(broker, sim, rps, case, keep=False)
    return kept, streamed


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the history benchmark, print its table and targets, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="paper-rate 1d and live-rate 1m")
    args = parser.parse_args(argv)
    runs = [(2, "1d"), (20, "1d"), (2, "1m"), (20, "1m")]
    if args.quick:
        runs = [(20, "1d"), (20, "1m")]
    figures: list[dict[str, Any]] = []
    rows = []
    for rps, case in runs:
        options = {"seed": 11, "mode": "live", "rate_limit": True, "quote_interval": None,
                   "requests_per_second": rps}  # fmt: skip
        with SimProcess(options) as sim:
            kept, streamed = asyncio.run(_session(sim, rps, case))
        ratio = kept["elapsed"] / kept["floor"] if kept["floor"] > 0 else None
        kept |= {"rps": rps, "case": case, "ratio": ratio, "stream_peak": streamed["peak"]}
        figures.append(kept)
        rows.append([
            "1 year of 1d" if case == "1d" else "5 days of 1m",
            f"{rps}/s" + (" (paper)" if rps == 2 else " (live)"),
            f"{kept['bars']:,}",
            f"{kept['used']} / {kept['minimum']}",
            fmt_num(kept["elapsed"], 2),
            fmt_num(kept["floor"], 2),
            "-" if ratio is None else fmt_num(ratio, 3),
            fmt_num(kept["peak"] / 1e6, 2),
            fmt_num(streamed["peak"] / 1e6, 2),
        ])  # fmt: skip
    print_table(
        "Price history against the simulator (limit enforced by client and simulator)",
        ["fetch", "limit", "bars", "requests used / minimum", "time s", "floor s",
         "time / floor", "peak MB (get_bars)", "peak MB (async for)"],
        rows,
    )  # fmt: skip
    fewest = all(f["used"] == f["minimum"] for f in figures)
    timed = [f for f in figures if f["ratio"] is not None]
    within = all(f["ratio"] <= TARGET for f in timed) if timed else None
    print(f"\nrequests = minimum possible: {verdict(fewest)}")
    print(f"time within 10% of the rate-limit floor (where the floor is > 0): {verdict(within)}")
    return figures


if __name__ == "__main__":
    main()
