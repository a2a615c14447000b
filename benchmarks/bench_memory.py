"""Benchmark 5: memory under a full feed with consumers that sleep, and lossless executions.

The simulator (own process, live mode, 20 symbols) pushes trades and order books as fast as it
can. The client holds 40 registrations on one session: 20 H0STCNT0, 19 H0STASP0 and the
execution notices. Each of the three consumers sleeps 50 ms per item, so quotes and books
conflate and notices queue. During the run a marketable order is placed every 0.5 s. RSS of
the client process is sampled throughout; at the end every filled quantity the simulator
booked must have reached the executions stream exactly once.

Targets: RSS growth (end minus start of the measured window) < 20 MB; executions lossless.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import SimProcess, fmt_num, print_table, verdict
from bench_rest import config_from

from kis_async import ExecutionKind, KISBroker, OrderRequest, OrderType
from kis_async.sim.exchange import DEFAULT_SYMBOLS

MAX_GROWTH_MB = 20.0
EXTRA_SYMBOLS = [
    ["900010", "벤치마크1", 12_000],
    ["900020", "벤치마크2", 33_000],
    ["900030", "벤치마크3", 7_500],
    ["900040", "벤치마크4", 150_000],
    ["900050", "벤치마크5", 2_500],
]


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


async def _run(info: dict[str, str], symbols: list[str], seconds: float) -> dict[str, Any]:
    config = config_from(info)
    quotes_seen = 0
    books_seen = 0
    fills: Counter[str] = Counter()
    notices = 0
    samples: list[float] = []
    async with KISBroker(config) as broker:

        async def consume_quotes() -> None:
            nonlocal quotes_seen
            async for _quote in broker.quotes(symbols):
                quotes_seen += 1
                await asyncio.sleep(0.05)

        async def consume_books() -> None:
            nonlocal books_seen
            async for _book in broker.orderbooks(symbols[:19]):
                books_seen += 1
                await asyncio.sleep(0.05)

        async def consume_executions() -> None:
            nonlocal notices
            async for event in broker.executions():
                notices += 1
                if event.kind is ExecutionKind.FILLED:
                    fills[event.broker_order_id] += event.qty
                await asyncio.sleep(0.05)

        tasks = [
            asyncio.create_task(consume_quotes()),
            asyncio.create_task(consume_books()),
            asyncio.create_task(consume_executions()),
        ]
        # Let every registration be acknowledged and the feed reach full speed.
        for _ in range(100):
            await asyncio.sleep(0.1)
            if broker.stream_status.registrations >= 40 and quotes_seen and books_seen:
                break
        await asyncio.sleep(1.0)
        registrations = broker.stream_status.registrations
        start_rss = rss_mb()
        samples.append(start_rss)
        placed = 0
        deadline = time.monotonic() + seconds
        side = "buy"
        while time.monotonic() < deadline:
            request = OrderRequest("005930", side, 1, order_type=OrderType.MARKET)
            await broker.place_order(request)
            placed += 1
            side = "sell" if side == "buy" else "buy"
            await asyncio.sleep(0.5)
            samples.append(rss_mb())
        end_rss = rss_mb()
        # Drain: notices still queued reach the slow consumer.
        for _ in range(100):
            await asyncio.sleep(0.1)
            if sum(fills.values()) >= placed:
                break
        status = broker.stream_status
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return {
        "registrations": registrations,
        "start_rss": start_rss,
        "end_rss": end_rss,
        "peak_rss": max(samples),
        "placed": placed,
        "fills": dict(fills),
        "notices": notices,
        "quotes_seen": quotes_seen,
        "books_seen": books_seen,
        "dropped": status.quotes_dropped + status.orderbooks_dropped,
        "reconnects": status.reconnects,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the memory benchmark, print its table and targets, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 60.0)
    table = [list(s) for s in DEFAULT_SYMBOLS] + EXTRA_SYMBOLS
    symbols = [str(row[0]) for row in table][:20]
    options = {
        "seed": 21,
        "mode": "live",
        "rate_limit": True,
        "quote_interval": 0,
        "symbols": table[:20],
        "pingpong_interval": 10.0,
    }
    with SimProcess(options) as sim:
        result = asyncio.run(_run(sim.info, symbols, seconds))
        booked = sim.admin("orders")
    assert isinstance(booked, list)
    booked_fills = {o["odno"]: o["filled_qty"] for o in booked if o["filled_qty"]}
    missing = {k: v - result["fills"].get(k, 0) for k, v in booked_fills.items()}
    missing = {k: v for k, v in missing.items() if v}
    extra = {k: v for k, v in result["fills"].items() if k not in booked_fills}
    lossless = not missing and not extra
    growth = result["end_rss"] - result["start_rss"]
    print_table(
        f"Memory: {result['registrations']} registrations at full feed, consumers sleeping "
        f"50 ms per item, {seconds:g} s",
        ["figure", "value"],
        [
            ["RSS at start of window (MB)", fmt_num(result["start_rss"], 1)],
            ["RSS at end (MB)", fmt_num(result["end_rss"], 1)],
            ["RSS peak (MB)", fmt_num(result["peak_rss"], 1)],
            ["RSS growth (MB)", fmt_num(growth, 1)],
            ["quotes / books delivered", f"{result['quotes_seen']:,} / {result['books_seen']:,}"],
            ["quotes+books conflated (dropped)", f"{result['dropped']:,}"],
            [
                "orders placed / filled at the simulator",
                f"{result['placed']} / {len(booked_fills)}",
            ],
            ["fill notices delivered (orders)", str(len(result["fills"]))],
            ["execution events delivered", str(result["notices"])],
            ["fills missing / unexpected", f"{len(missing)} / {len(extra)}"],
            ["reconnects", str(result["reconnects"])],
        ],
    )
    print("\nTargets:")
    print(f"- RSS growth < {MAX_GROWTH_MB:g} MB: {growth:.1f} MB -> "
          f"{verdict(growth < MAX_GROWTH_MB)}")  # fmt: skip
    print(f"- executions lossless (every booked fill delivered once): "
          f"{verdict(lossless)}")  # fmt: skip
    return {"growth_mb": growth, "lossless": lossless, **result}


if __name__ == "__main__":
    main()
