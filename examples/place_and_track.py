"""Place orders with OrderService and follow them with TrackedOrder.

    python examples/place_and_track.py

1. A marketable limit buy: its events (acceptance, fills) are printed as they arrive.
2. A limit buy resting below the market: modified to a new price, then cancelled.

Runs against the embedded simulator, or your account when KIS_* is set (a LIVE account also
needs KIS_EXAMPLES_ALLOW_LIVE_ORDERS=1: this example trades).
"""

from __future__ import annotations

import asyncio

from _common import connect

from kis_async import OrderService, Side
from kis_async.models import tick_size

SYMBOL = "005930"


async def main() -> None:
    async with connect(places_orders=True) as broker, OrderService(broker) as orders:
        book = await broker.get_orderbook(SYMBOL)
        if book.best_ask is None or book.best_bid is None:
            raise SystemExit(f"{SYMBOL} has no two-sided book right now (market closed?)")
        ask, bid = book.best_ask.price, book.best_bid.price
        print(f"{SYMBOL}: bid {bid:,} / ask {ask:,}; orders followed by {orders.following}")

        # 1. Priced at the best ask: marketable, so it fills at once (in one or more fills).
        buy = await orders.submit(SYMBOL, Side.BUY, 5, price=ask)
        print(f"submitted {buy.order_id} (idempotency key {buy.idempotency_key})")
        async with asyncio.timeout(10):
            async for event in buy.events():
                print(
                    f"  {event.status.value:16} filled {event.filled_qty}/{buy.qty} "
                    f"avg {event.avg_fill_price}"
                )
        print(f"done: {buy.status.value}, {buy.filled_qty} @ {buy.avg_fill_price}")

        # 2. Ten ticks below the bid: rests. Modify its price, then cancel what remains.
        low = bid - 10 * tick_size(bid)
        low -= low % tick_size(low)
        resting = await orders.submit(SYMBOL, "buy", 1, price=low)
        print(f"resting order {resting.order_id} at {low:,}")
        lower = low - tick_size(low)
        await orders.modify(resting, price=lower)
        print(f"modified to {lower:,}: now order {resting.order_id} (was {resting.order_ids[0]})")
        cancelled = await orders.cancel(resting)
        status = await resting.wait_done(timeout=10)
        print(f"cancel accepted: {cancelled}; final status {status.value}")

        print(f"cash now {await broker.get_cash():,}")


if __name__ == "__main__":
    asyncio.run(main())
