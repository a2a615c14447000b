"""Worker 1: log every trade of a few symbols, read through the gateway.

    KIS_GATEWAY_REDIS=redis://127.0.0.1:6379/0 python examples/gateway/quote_logger.py

The same ``async for quote in broker.quotes([...])`` as with a direct broker; the records
come from the gateway's Redis streams instead of a socket of this process's own.
"""

from __future__ import annotations

import time

from _worker import parser, run, summary

from kis_async import KISBroker, KISConfig

SYMBOLS = ["005930", "000660", "035720"]


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    counts = dict.fromkeys(SYMBOLS, 0)

    async def log_quotes() -> None:
        async with (
            KISBroker(KISConfig.from_env(), gateway=args.redis) as broker,
            broker.quotes(SYMBOLS) as quotes,
        ):
            print(f"logging trades of {', '.join(SYMBOLS)} through the gateway", flush=True)
            async for quote in quotes:
                counts[quote.symbol] += 1
                # Log a sample, not every trade: the counts tell the whole story.
                if counts[quote.symbol] % 20 == 1:
                    print(f"{time.strftime('%H:%M:%S')} {quote.symbol} {quote.price:,}", flush=True)

    try:
        run(log_quotes, args.seconds)
    finally:
        summary({"quotes": counts})


if __name__ == "__main__":
    main()
