"""Benchmark 4: the client-side rate limiter against a simulator enforcing KIS's live limit.

The simulator (own process, live mode) answers EGW00201 to more than 20 requests in any 1-s
window, as KIS does. A burst of 1,000 ``get_price`` calls is issued at once; while it drains,
orders are placed at intervals, each together with one extra "probe" read issued at the same
instant. Reported: EGW00201 errors surfaced to callers (target 0), EGW00201 answers the
simulator sent (retried inside the client), the share of KIS's 20 requests/s used (target
>= 90%), and how long orders waited compared with the probe reads issued with them (target:
orders wait less). Run twice: with the default client limit (19/s live) and with the limit set
to KIS's 20/s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

from _common import SimProcess, fmt_num, median, print_table, verdict
from bench_rest import config_from

from kis_async import KISBroker, OrderRequest, RateLimitError
from kis_async.models import tick_size

KIS_LIVE_LIMIT = 20.0
MIN_SHARE = 0.90


async def _burst(
    info: dict[str, str], reads: int, orders: int, rps: float | None
) -> dict[str, Any]:
    overrides: dict[str, Any] = {} if rps is None else {"requests_per_second": rps}
    config = config_from(info, **overrides)
    async with KISBroker(config) as broker:
        await broker.authenticate()
        price = (await broker.get_price("005930")).price
        tick = tick_size(price)
        limit_price = Decimal(int(price * Decimal("0.92")) // tick * tick)
        await asyncio.sleep(1.2)  # let the warm-up calls leave KIS's 1-s window

        read_errors: list[BaseException] = []
        read_done: list[float] = []

        async def read(i: int) -> None:
            try:
                await broker.get_price(("005930", "000660", "035420")[i % 3])
            except Exception as exc:
                read_errors.append(exc)
            read_done.append(time.perf_counter())

        order_waits: list[float] = []
        probe_waits: list[float] = []
        order_errors: list[BaseException] = []

        async def timed(coro: Any, sink: list[float], errors: list[BaseException]) -> None:
            t0 = time.perf_counter()
            try:
                await coro
            except Exception as exc:
                errors.append(exc)
            sink.append(time.perf_counter() - t0)

        expected = reads / (rps or 19.0)
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for i in range(reads):
                group.create_task(read(i))
            for k in range(orders):
                await asyncio.sleep(expected / (orders + 1))
                request = OrderRequest("005930", "buy", 1, price=limit_price)
                group.create_task(timed(broker.place_order(request), order_waits, order_errors))
                group.create_task(timed(broker.get_price("000660"), probe_waits, read_errors))
                del k
        elapsed = max(read_done) - started
    total_requests = reads + 2 * orders
    return {
        "rps": rps,
        "reads": reads,
        "elapsed": elapsed,
        "throughput": total_requests / elapsed,
        "surfaced_rate_limit": sum(isinstance(e, RateLimitError) for e in read_errors),
        "other_errors": [type(e).__name__ for e in read_errors if not isinstance(e, RateLimitError)]
        + [type(e).__name__ for e in order_errors],
        "order_wait": median(order_waits),
        "probe_wait": median(probe_waits),
        "orders": len(order_waits),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the rate-limiter benchmark, print its table and targets, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reads", type=int, default=None)
    args = parser.parse_args(argv)
    # The client logs each EGW00201 it retries; the table counts them instead.
    logging.getLogger("kis_async").setLevel(logging.ERROR)
    reads = args.reads or (40 if args.quick else 1000)
    orders = 2 if args.quick else 5
    rows = []
    figures: list[dict[str, Any]] = []
    for rps in (None, KIS_LIVE_LIMIT):
        options = {"seed": 9, "mode": "live", "rate_limit": True, "quote_interval": None}
        with SimProcess(options) as sim:
            result = asyncio.run(_burst(sim.info, reads, orders, rps))
            stats = sim.admin("stats")
        assert isinstance(stats, dict)
        result["sim_rejections"] = stats["rate_limit_rejections"]
        result["orders_booked"] = stats["orders_received"]
        figures.append(result)
        share = result["throughput"] / KIS_LIVE_LIMIT
        rows.append(
            [
                "default (19/s)" if rps is None else f"{rps:g}/s",
                f"{reads:,} + {orders} orders + {orders} probes",
                fmt_num(result["elapsed"], 1),
                fmt_num(result["throughput"], 2),
                f"{share:.1%}",
                str(result["surfaced_rate_limit"]),
                str(result["sim_rejections"]),
                f"{result['orders_booked']}/{orders}",
                fmt_num(result["order_wait"] * 1000),
                fmt_num(result["probe_wait"] * 1000),
                ", ".join(result["other_errors"]) or "none",
            ]
        )
    print_table(
        "Rate limiter: burst against the simulator enforcing KIS's 20 requests/s (live)",
        [
            "client limit",
            "requests",
            "seconds",
            "requests/s",
            "share of 20/s",
            "EGW00201 surfaced",
            "EGW00201 sent by sim",
            "orders booked",
            "order wait ms (median)",
            "probe read wait ms (median)",
            "other errors",
        ],
        rows,
    )
    print("\nTargets:")
    for result in figures:
        label = "default limit" if result["rps"] is None else f"limit {result['rps']:g}/s"
        share = result["throughput"] / KIS_LIVE_LIMIT
        print(f"- [{label}] zero EGW00201 surfaced: {result['surfaced_rate_limit']} -> "
              f"{verdict(result['surfaced_rate_limit'] == 0)}")  # fmt: skip
        print(f"- [{label}] >= {MIN_SHARE:.0%} of KIS's allowed throughput: {share:.1%} -> "
              f"{verdict(share >= MIN_SHARE)}")  # fmt: skip
        print(f"- [{label}] orders wait less than reads: "
              f"{fmt_num(result['order_wait'] * 1000)} ms vs "
              f"{fmt_num(result['probe_wait'] * 1000)} ms -> "
              f"{verdict(result['order_wait'] < result['probe_wait'])}")  # fmt: skip
    return {"results": figures}


if __name__ == "__main__":
    main()
