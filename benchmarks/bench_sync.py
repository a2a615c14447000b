"""Benchmark 6: the cost of the synchronous client over the async broker it runs.

The simulator runs in its own process with its rate limit off. ``get_price`` is called
``calls`` times by the async ``KISBroker`` (sequentially, then by 16 tasks) and by
``SyncKISBroker`` (from one thread, then from 16 threads), interleaved over repetitions.
The sync client adds one hop to its loop thread and back per call. Target: sequential sync
calls take at most 1.5x the async ones.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

from _common import SimProcess, fmt_num, fmt_ratio, median, print_table, verdict
from bench_rest import config_from

from kis_async import KISBroker, KISConfig, SyncKISBroker

SYMBOLS = ("005930", "000660", "035420", "005380")
MAX_RATIO = 1.5


async def _async_run(broker: KISBroker, calls: int, concurrency: int) -> float:
    pending = list(range(calls))

    async def worker() -> None:
        while pending:
            i = pending.pop()
            await broker.get_price(SYMBOLS[i % len(SYMBOLS)])

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return time.perf_counter() - started


def _sync_run(broker: SyncKISBroker, calls: int, concurrency: int) -> float:
    pending = list(range(calls))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                i = pending.pop()
            broker.get_price(SYMBOLS[i % len(SYMBOLS)])

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _measure(config: KISConfig, calls: int, reps: int) -> dict[int, dict[str, float]]:
    # The async broker runs on its own loop thread here too, so both sides see the same
    # process (one extra thread) and only the sync client's hand-over differs.
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()

    def on_loop(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    async_broker = KISBroker(config)
    try:
        with SyncKISBroker(config) as sync_broker:
            _sync_run(sync_broker, 20, 1)  # warm up: token, connections
            on_loop(_async_run(async_broker, 20, 1))
            out: dict[int, dict[str, float]] = {}
            for concurrency in (1, 16):
                times: dict[str, list[float]] = {"async": [], "sync": []}
                for rep in range(reps):
                    order = ["async", "sync"] if rep % 2 == 0 else ["sync", "async"]
                    for name in order:
                        if name == "async":
                            elapsed = on_loop(_async_run(async_broker, calls, concurrency))
                        else:
                            elapsed = _sync_run(sync_broker, calls, concurrency)
                        times[name].append(elapsed)
                out[concurrency] = {name: median(values) for name, values in times.items()}
    finally:
        on_loop(async_broker.aclose())
        loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
        loop.close()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the sync-client benchmark, print its table and target, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    calls = args.calls or (100 if args.quick else 1000)
    reps = args.reps or (2 if args.quick else 5)
    options = {
        "seed": 6,
        "mode": "live",
        "rate_limit": False,
        "quote_interval": None,
        "token_issue_interval": 0.0,  # two brokers, no token cache: two issuances
    }
    with SimProcess(options) as sim:
        result = _measure(config_from(sim.info, requests_per_second=None), calls, reps)
    rows = []
    ratios = {}
    for concurrency, times in result.items():
        ratio = times["sync"] / times["async"]
        ratios[concurrency] = ratio
        rows.append(
            [
                "sequential" if concurrency == 1 else f"{concurrency} tasks / threads",
                fmt_num(calls / times["async"]),
                fmt_num(calls / times["sync"]),
                fmt_num(times["async"] / calls * 1e6),
                fmt_num(times["sync"] / calls * 1e6),
                fmt_ratio(ratio),
            ]
        )
    print_table(
        f"Sync client: {calls:,} get_price calls against the simulator, rate limit off "
        f"(median of {reps})",
        ["mode", "async calls/s", "sync calls/s", "async us/call", "sync us/call",
         "sync time / async"],
        rows,
    )  # fmt: skip
    print("\nTargets:")
    print(f"- sequential sync <= {MAX_RATIO}x async: {fmt_ratio(ratios[1])} -> "
          f"{verdict(ratios[1] <= MAX_RATIO)}")  # fmt: skip
    return {"ratios": ratios}


if __name__ == "__main__":
    main()
