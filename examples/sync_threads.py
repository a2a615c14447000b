"""Synchronous use from plain threads: no asyncio in your code.

    python examples/sync_threads.py

Four worker threads read prices through one ``SyncKISBroker`` while a callback counts quotes
(on the client's one callback thread) and the main thread iterates a quote stream. Runs
against the embedded simulator, or against your account when KIS_* is set.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from _common import using_simulator

from kis_async import KISConfig, Mode, Quote, SyncKISBroker

SYMBOLS = ["005930", "000660", "035420", "005380"]


@contextmanager
def account() -> Iterator[KISConfig]:
    """The configured account, or a simulator served from a background thread."""
    if not using_simulator():
        yield KISConfig.from_env()
        return
    from kis_async.sim import KISSimulator  # noqa: PLC0415 - needs the optional `sim` extra

    ready: list[KISConfig] = []
    started, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with KISSimulator(seed=1234, mode=Mode.PAPER, quote_interval=0.05).serve() as sim:
            ready.append(sim.config())
            print(f"(no KIS_APP_KEY set: using the embedded simulator at {sim.rest_url})")
            started.set()
            await asyncio.to_thread(stop.wait)  # serve until the example is done

    server = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    server.start()
    started.wait(30)
    try:
        yield ready[0]
    finally:
        stop.set()
        server.join(10)


def main() -> None:
    with account() as config, SyncKISBroker(config) as broker:
        counted: list[Quote] = []
        broker.subscribe_quotes(SYMBOLS, counted.append)  # runs on the callback thread

        with ThreadPoolExecutor(4) as pool:  # plain threads calling the broker at once
            prices = list(pool.map(lambda symbol: broker.get_price(symbol).price, SYMBOLS))
        for symbol, price in zip(SYMBOLS, prices, strict=True):
            print(f"{symbol} {price:,} won")

        seen = 0
        with broker.quotes(["005930"]) as quotes:  # a blocking iterator
            for quote in quotes:
                seen += 1
                print(f"{quote.time:%H:%M:%S} {quote.symbol} {quote.price:,}")
                if seen == 5:
                    break  # leaving the block unsubscribes
        print(f"sync: {seen} quotes iterated, {len(counted)} quotes seen by the callback")


if __name__ == "__main__":
    main()
