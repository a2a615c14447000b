"""Stream real-time trades for a few symbols with ``async for``.

    python examples/stream_quotes.py

Stops after 20 quotes or 5 seconds, whichever comes first. Leaving the ``async with`` block
unsubscribes at once.
"""

from __future__ import annotations

import asyncio
import contextlib

from _common import connect

SYMBOLS = ["005930", "000660", "035420"]


async def main() -> None:
    async with connect() as broker:
        received = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5), broker.quotes(SYMBOLS) as quotes:
                async for quote in quotes:
                    received += 1
                    stamp = quote.time.strftime("%H:%M:%S") if quote.time else "--:--:--"
                    print(f"{stamp} {quote.symbol} {quote.price:>9,} vol {quote.volume}")
                    if received >= 20:
                        break
        print(f"{received} quotes; stream status: {broker.stream_status}")


if __name__ == "__main__":
    asyncio.run(main())
