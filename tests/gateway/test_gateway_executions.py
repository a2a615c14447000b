"""The gateway publishes the account's executions to ``{ns}:x``, each fill with the order's
cumulative quantity, and a restarted gateway continues from the cursor its predecessor left:
fills made while no gateway ran are gap-filled over REST, none twice, none missing."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from kis_async import ExecutionKind, KISBroker, OrderRequest, OrderType, Side
from kis_async.gateway.keys import decode_execution
from kis_async.validation import normalize_order_id


async def stream_fills(redis: Any, keys: Any) -> list[tuple[str, int, int]]:
    """``(order id, qty, cum)`` of every FILLED entry of ``{ns}:x``, in stream order."""
    out = []
    for _, fields in await redis.xrange(keys.executions):
        event, cum = decode_execution(fields)
        if event.kind is ExecutionKind.FILLED:
            assert cum is not None
            out.append((normalize_order_id(event.broker_order_id), event.qty, cum))
    return out


def exchange_fills(sim: Any) -> Counter[str]:
    """Filled quantity per order at the simulator's exchange."""
    return Counter(
        {normalize_order_id(o.order_id): o.filled_qty for o in sim.exchange.orders if o.filled_qty}
    )


def check_exactly_once(fills: list[tuple[str, int, int]], booked: Counter[str]) -> None:
    """Per order: the quantities add up to the exchange's fill, each entry's ``cum`` is the
    running total (so no entry repeats another), and nothing is unknown to the exchange."""
    running: dict[str, int] = defaultdict(int)
    for oid, qty, cum in fills:
        assert qty > 0
        running[oid] += qty
        assert cum == running[oid], (oid, qty, cum)
    assert Counter(running) == booked


async def buy(trader: KISBroker, qty: int, symbol: str = "005930") -> str:
    return await trader.place_order(
        OrderRequest(symbol, Side.BUY, qty, order_type=OrderType.MARKET)
    )


async def test_fills_are_published_with_cum_and_a_restart_continues_from_the_cursor(
    gw: Any,
) -> None:
    """Orders through a plain KISBroker reach ``{ns}:x`` with their running ``cum``; the
    gateway is stopped, more orders fill, a new gateway resumes from ``{ns}:x:cursor``: the
    stream's fills per order equal the exchange's, exactly once."""
    first, task = gw.start("gw-x1")
    await first.wait_active(20)

    async def caught_up() -> bool:
        fills = await stream_fills(gw.redis, gw.keys)
        total: Counter[str] = Counter()
        for oid, qty, _ in fills:
            total[oid] += qty
        return total == exchange_fills(gw.sim) and bool(total)

    async with gw.trader() as trader:
        for qty in (3, 7, 120):
            await buy(trader, qty)
        await gw.wait(caught_up)
        assert first.status()["executions_published"] >= 3
        cursor_before = await gw.redis.get(gw.keys.cursor)
        assert cursor_before is not None

        first.stop()
        await task
        assert await gw.redis.get(gw.keys.lease) is None  # released on a graceful stop
        while_down = [await buy(trader, qty, "000660") for qty in (2, 5)]

        second, _ = gw.start("gw-x2")
        await second.wait_active(20)
        await gw.wait(caught_up)
        await buy(trader, 4)  # and live again after the restart
        await gw.wait(caught_up)

    fills = await stream_fills(gw.redis, gw.keys)
    check_exactly_once(fills, exchange_fills(gw.sim))
    assert {oid for oid, _, _ in fills} >= {normalize_order_id(o) for o in while_down}
    entries = await gw.redis.xrange(gw.keys.executions)
    sources = {decode_execution(f)[0].source for _, f in entries}
    assert sources == {"websocket", "reconcile"}  # the gap was filled over REST
    assert await gw.redis.get(gw.keys.cursor) != cursor_before
