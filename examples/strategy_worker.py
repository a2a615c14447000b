"""Several strategy workers in one asyncio TaskGroup.

    python examples/strategy_worker.py

One worker per symbol consumes ``broker.quotes([symbol])`` and buys one share (market order)
after the price ticks down twice in a row; one more worker prints this account's execution
notices. Every order carries an idempotency key, so the retry after a connection error below
can never buy twice. The whole thing stops after a few seconds.

Runs against the embedded simulator, or your account when KIS_* is set (a LIVE account also
needs KIS_EXAMPLES_ALLOW_LIVE_ORDERS=1: this example trades).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal

from _common import connect

from kis_async import (
    BrokerConnectionError,
    BrokerError,
    KISBroker,
    OrderRequest,
    OrderType,
)

SYMBOLS = ["005930", "000660", "035720"]
RUN_SECONDS = 4.0
SESSION = time.strftime("%Y%m%d-%H%M%S")


async def place_with_retry(broker: KISBroker, request: OrderRequest) -> str:
    """Retry on connection trouble; the idempotency key makes the retries safe."""
    for attempt in range(3):
        try:
            return await broker.place_order(request)
        except BrokerConnectionError:
            if attempt == 2:
                raise
            await asyncio.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


async def dip_buyer(broker: KISBroker, symbol: str, placed: list[str]) -> None:
    """Buy one share the first time the price falls on two consecutive trades."""
    previous: Decimal | None = None
    falls = 0
    async with broker.quotes([symbol]) as quotes:
        async for quote in quotes:
            falls = falls + 1 if previous is not None and quote.price < previous else 0
            previous = quote.price
            if falls < 2:
                continue
            request = OrderRequest(
                symbol,
                "buy",
                1,
                order_type=OrderType.MARKET,
                idempotency_key=f"dip-{symbol}-{SESSION}",
            )
            try:
                order_id = await place_with_retry(broker, request)
            except BrokerError as exc:
                print(f"[{symbol}] order failed: {exc}")
                return
            placed.append(order_id)
            print(f"[{symbol}] two falls to {quote.price:,}: bought 1, order {order_id}")
            return


async def notice_printer(broker: KISBroker) -> None:
    async with broker.executions() as notices:
        async for notice in notices:
            price = f"{notice.price:,}" if notice.price else "market"
            print(f"notice: {notice.kind.value} {notice.symbol} {notice.qty} @ {price}")


async def main() -> None:
    async with connect(places_orders=True) as broker:
        placed: list[str] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RUN_SECONDS), asyncio.TaskGroup() as workers:
                if broker.config.hts_id:
                    workers.create_task(notice_printer(broker))
                for symbol in SYMBOLS:
                    workers.create_task(dip_buyer(broker, symbol, placed))
        print(f"placed {len(placed)} orders in {RUN_SECONDS:.0f}s")
        for position in await broker.get_stock_balance():
            print(f"holding {position.symbol}: {position.qty}")


if __name__ == "__main__":
    asyncio.run(main())
