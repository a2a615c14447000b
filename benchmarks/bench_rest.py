"""Benchmark 3: REST overhead of ``broker.get_price`` against a bare ``httpx.AsyncClient``.

The simulator runs in its own process with its rate limit off. In the same event loop, one
after the other and interleaved over repetitions, 1,000 ``get_price`` calls are made by
kis_async (``requests_per_second=None``) and the same 1,000 requests (same URL, headers and
token) by a bare ``httpx.AsyncClient`` that only reads the price out of the JSON. Both run
sequentially and with 16 in flight. Target: kis_async takes at most 1.2x the bare client.

Alongside, the same calls with masked traffic logging on (records built and handed to a
``NullHandler``), and the cost of the one level check each call pays while it is off.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import timeit
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from _common import SimProcess, fmt_num, fmt_ratio, median, print_table, verdict

from kis_async import KISBroker, KISConfig, traffic

PRICE_PATH = "/uapi/domestic-stock/v1/quotations/inquire-price"
PRICE_TR = "FHKST01010100"
MAX_RATIO = 1.2


def config_from(info: dict[str, str], **overrides: Any) -> KISConfig:
    """A KISConfig for a simulator process's JSON line."""
    values: dict[str, Any] = {
        "app_key": info["app_key"],
        "app_secret": info["app_secret"],
        "account_id": info["account_id"],
        "hts_id": info["hts_id"],
        "mode": info["mode"],
        "rest_url": info["rest_url"],
        "ws_url": info["ws_url"],
        "token_cache_dir": None,
    }
    values.update(overrides)
    return KISConfig(**values)


async def _timed(calls: int, concurrency: int, call: Callable[[str], Awaitable[Any]]) -> float:
    symbols = ["005930", "000660", "035420", "005380"]
    started = time.perf_counter()
    if concurrency == 1:
        for i in range(calls):
            await call(symbols[i % len(symbols)])
    else:
        queue = list(range(calls))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                await call(symbols[i % len(symbols)])

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    return time.perf_counter() - started


async def _measure(info: dict[str, str], calls: int, reps: int) -> dict[int, dict[str, float]]:
    config = config_from(info, requests_per_second=None)
    async with KISBroker(config) as broker:
        token = (await broker.authenticate()).value.get_secret_value()
        headers = {
            "content-type": "application/json; charset=utf-8",
            "appkey": config.app_key,
            "appsecret": config.app_secret.get_secret_value(),
            "custtype": "P",
            "authorization": f"Bearer {token}",
            "tr_id": PRICE_TR,
            "tr_cont": "",
        }
        async with httpx.AsyncClient(base_url=config.rest_url, headers=headers) as bare:

            async def bare_call(symbol: str) -> Any:
                response = await bare.get(
                    PRICE_PATH,
                    params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol},
                )
                return response.json()["output"]["stck_prpr"]

            async def ours(symbol: str) -> Any:
                return (await broker.get_price(symbol)).price

            async def logged(calls: int, concurrency: int) -> float:
                traffic.logger.setLevel(logging.DEBUG)
                try:
                    return await _timed(calls, concurrency, ours)
                finally:
                    traffic.logger.setLevel(logging.INFO)

            # Warm both connections and code paths.
            await _timed(20, 1, ours)
            await _timed(20, 1, bare_call)
            out: dict[int, dict[str, float]] = {}
            for concurrency in (1, 16):
                times: dict[str, list[float]] = {"kis_async": [], "httpx": [], "traffic": []}
                for rep in range(reps):
                    pair = [("kis_async", ours), ("httpx", bare_call)]
                    if rep % 2:
                        pair.reverse()
                    for name, fn in pair:
                        times[name].append(await _timed(calls, concurrency, fn))
                    times["traffic"].append(await logged(calls, concurrency))
                out[concurrency] = {name: median(values) for name, values in times.items()}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the REST overhead benchmark, print its table and target, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    calls = args.calls or (50 if args.quick else 1000)
    reps = args.reps or (2 if args.quick else 5)
    options = {"seed": 5, "mode": "live", "rate_limit": False, "quote_interval": None}
    sink = logging.getLogger(traffic.logger.name)
    sink.addHandler(logging.NullHandler())
    sink.propagate = False
    with SimProcess(options) as sim:
        result = asyncio.run(_measure(sim.info, calls, reps))
    check_ns = min(timeit.repeat(traffic.on, number=200_000, repeat=5)) / 200_000 * 1e9
    rows = []
    ratios = []
    for concurrency, times in result.items():
        ratio = times["kis_async"] / times["httpx"]
        ratios.append(ratio)
        rows.append(
            [
                "sequential" if concurrency == 1 else f"{concurrency} in flight",
                fmt_num(calls / times["httpx"]),
                fmt_num(calls / times["kis_async"]),
                fmt_num(times["httpx"] / calls * 1e6),
                fmt_num(times["kis_async"] / calls * 1e6),
                fmt_ratio(ratio),
            ]
        )
    print_table(
        f"REST overhead: {calls:,} get_price calls against the simulator, rate limit off "
        f"(median of {reps})",
        [
            "mode",
            "bare httpx calls/s",
            "kis_async calls/s",
            "bare us/call",
            "kis_async us/call",
            "kis_async time / bare",
        ],
        rows,
    )
    print_table(
        "Masked traffic logging (kis_async.traffic): off (default) vs on, to a NullHandler",
        ["mode", "off us/call", "on us/call", "on / off", "off: level check ns", "check / call"],
        [
            [
                "sequential" if concurrency == 1 else f"{concurrency} in flight",
                fmt_num(times["kis_async"] / calls * 1e6),
                fmt_num(times["traffic"] / calls * 1e6),
                fmt_ratio(times["traffic"] / times["kis_async"]),
                fmt_num(check_ns),
                f"{check_ns / (times['kis_async'] / calls * 1e9):.4%}",
            ]
            for concurrency, times in result.items()
        ],
    )
    worst = max(ratios)
    print("\nTargets:")
    print(f"- kis_async <= {MAX_RATIO}x bare httpx (worst mode): {fmt_ratio(worst)} -> "
          f"{verdict(worst <= MAX_RATIO)}")  # fmt: skip
    return {"ratios": ratios}


if __name__ == "__main__":
    main()
