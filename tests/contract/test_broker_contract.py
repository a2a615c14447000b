"""Behaviour a strategy can observe, identical on MockBroker, on KISBroker (simulator) and
on a gateway-fed KISBroker (the differences conftest.py describes are asserted there):
iteration, conflation, overflow, close, error propagation, replay, cursors, order placement
and idempotency."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from kis_async import (
    BrokerConnectionError,
    Execution,
    ExecutionCursor,
    ExecutionKind,
    InvalidOrderError,
    Market,
    OrderRequest,
    OrderType,
    Quote,
    StreamOverflowError,
)
from kis_async.validation import normalize_order_id

from .conftest import BASE, SYMBOL, Factory


def market(side: str, qty: int, key: str | None = None) -> OrderRequest:
    return OrderRequest(SYMBOL, side, qty, order_type=OrderType.MARKET, idempotency_key=key)


def fills(events: list[Execution]) -> Counter[str]:
    out: Counter[str] = Counter()
    for event in events:
        if event.kind is ExecutionKind.FILLED:
            out[normalize_order_id(event.broker_order_id)] += event.qty
    return out


async def take(stream: Any, n: int, within: float = 5.0) -> list[Any]:
    return [await asyncio.wait_for(anext(stream), within) for _ in range(n)]


async def rest(stream: Any, period: float = 0.3) -> list[Any]:
    """Whatever else arrives within ``period``."""
    out: list[Any] = []
    with contextlib.suppress(TimeoutError):
        while True:
            out.append(await asyncio.wait_for(anext(stream), period))
    return out


async def test_iteration_in_order(backend: Factory) -> None:
    """Trades of the symbol arrive in order as Quote values."""
    async with backend() as b, b.broker.quotes([SYMBOL]) as quotes:
        await b.served()
        await b.prints([BASE + 100, BASE + 200, BASE + 300])
        got: list[Quote] = await take(quotes, 3)
    assert [q.price for q in got] == [Decimal(BASE + p) for p in (100, 200, 300)]
    assert {q.symbol for q in got} == {SYMBOL}


async def test_conflation_keeps_the_newest_and_counts(backend: Factory) -> None:
    """A consumer that lags past quote_queue_size sees the newest price; drops are counted."""
    async with backend(quote_queue_size=4) as b, b.broker.quotes([SYMBOL]) as quotes:
        await b.served()
        prices = [BASE + 100 * (i % 5 + 1) for i in range(19)] + [BASE + 900]
        await b.prints(prices)
        await asyncio.sleep(0.3)  # the sim's frames are on their way; nobody reads
        got = await rest(quotes)
    assert got[-1].price == Decimal(BASE + 900)
    assert 1 <= len(got) <= 4
    assert quotes.dropped == len(prices) - len(got)  # type: ignore[attr-defined]


async def test_overflow_raises_once_and_loses_nothing(backend: Factory) -> None:
    """Past execution_high_water the stream raises StreamOverflowError once, then delivers
    every event."""
    async with backend(execution_high_water=3) as b, b.broker.executions() as events:
        ids = [await b.broker.place_order(market("buy", 1)) for _ in range(3)]
        await asyncio.sleep(0.3)
        with pytest.raises(StreamOverflowError):
            await anext(events)
        got = await take(events, 6)
        got += await rest(events)
    assert fills(got) == Counter({normalize_order_id(i): 1 for i in ids})
    assert [e.kind for e in got].count(ExecutionKind.ACCEPTED) == 3


async def test_close_ends_iteration(backend: Factory) -> None:
    """aclose() ends a stream (StopAsyncIteration, closed); leaving async with closes it."""
    async with backend() as b:
        quotes = b.broker.quotes([SYMBOL])
        async with quotes:
            await b.served()
            await b.prints([BASE + 100])
            await take(quotes, 1)
        assert quotes.closed  # type: ignore[attr-defined]
        with pytest.raises(StopAsyncIteration):
            await anext(quotes)
        other = b.broker.quotes([SYMBOL])
        await other.aclose()
        await other.aclose()
        with pytest.raises(StopAsyncIteration):
            await anext(other)


async def test_broker_close_ends_a_waiting_consumer(backend: Factory) -> None:
    """A consumer blocked in async for ends cleanly when the broker closes."""
    seen: list[Quote] = []
    async with backend() as b:
        stream = b.broker.quotes([SYMBOL])
        await stream.__aenter__()

        async def consume() -> None:
            async for quote in stream:
                seen.append(quote)

        task = asyncio.create_task(consume())
        await b.served()
        await b.prints([BASE + 100])
        await b.settle(lambda: len(seen) == 1)
    await asyncio.wait_for(task, 5)
    assert [q.price for q in seen] == [Decimal(BASE + 100)]


async def test_error_after_queued_items_and_to_callbacks(backend: Factory) -> None:
    """When the streams fail, what was queued is delivered, then BrokerConnectionError;
    callback subscriptions get it through on_error."""
    errors: list[BaseException] = []
    async with backend(max_reconnect_attempts=1, reconnect_base_delay=0.01) as b:
        sub = await b.broker.subscribe_quotes([SYMBOL], lambda q: None, on_error=errors.append)
        async with b.broker.quotes([SYMBOL]) as quotes:
            await b.served()
            await b.prints([BASE + 100])
            await b.settle(lambda: len(quotes.buffer) == 1)  # type: ignore[attr-defined]
            await b.fail_streams()
            [first] = await take(quotes, 1)
            with pytest.raises(BrokerConnectionError):
                await asyncio.wait_for(anext(quotes), 10)
            assert quotes.closed  # type: ignore[attr-defined]
        await b.settle(lambda: bool(errors), within=10)
        await sub.aclose()
    assert first.price == Decimal(BASE + 100)
    assert isinstance(errors[0], BrokerConnectionError)


async def test_placement_events_and_idempotency(backend: Factory) -> None:
    """A market buy: ACCEPTED then FILLED for its quantity; an idempotency key books once."""
    async with backend() as b, b.broker.executions() as events:
        first = await b.broker.place_order(market("buy", 5, key="k-1"))
        again = await b.broker.place_order(market("buy", 5, key="k-1"))
        with pytest.raises(InvalidOrderError):
            await b.broker.place_order(market("buy", 6, key="k-1"))
        got = await take(events, 2)
        got += await rest(events)
        orders = await b.broker.get_orders()
    assert first == again
    assert [e.kind for e in got] == [ExecutionKind.ACCEPTED, ExecutionKind.FILLED]
    assert fills(got) == Counter({normalize_order_id(first): 5})
    assert [o.filled_qty for o in orders] == [5]


async def test_replay_and_replay_false(backend: Factory) -> None:
    """Fills before a stream are replayed to it (replayed=True); replay=False skips them."""
    async with backend() as b:
        early = [await b.broker.place_order(market("buy", q)) for q in (2, 3)]
        async with b.broker.executions() as replaying, b.broker.executions(replay=False) as fresh:
            got = await take(replaying, 2)
            late = await b.broker.place_order(market("sell", 4))
            got += await take(replaying, 2)
            new = await take(fresh, 2)
            got += await rest(replaying)
            new += await rest(fresh)
    expected = {normalize_order_id(i): q for i, q in zip(early, (2, 3), strict=True)}
    assert fills(got) == Counter({**expected, normalize_order_id(late): 4})
    assert all(e.replayed for e in got[:2])
    assert fills(new) == Counter({normalize_order_id(late): 4})
    assert not any(e.replayed for e in new)


async def test_cursor_resumes_exactly_after_it(backend: Factory) -> None:
    """A stream opened with since=str(cursor) gets exactly the fills after that event."""
    async with backend() as b:
        async with b.broker.executions() as first:
            a = await b.broker.place_order(market("buy", 2))
            got = await take(first, 2)
            cursor = got[-1].cursor
        assert isinstance(cursor, ExecutionCursor)
        assert cursor.delivered(a) == 2
        c = await b.broker.place_order(market("buy", 3))
        async with b.broker.executions(since=str(cursor)) as resumed:
            after = await take(resumed, 1)
            after += await rest(resumed)
    assert fills(after) == Counter({normalize_order_id(c): 3})
    assert after[0].cursor is not None
    assert after[0].cursor.delivered(a) == 2
    assert after[0].cursor.delivered(c) == 3


async def test_market_argument_of_streams(backend: Factory) -> None:
    """``market=`` is accepted as a Market, a name or a code; KRX trades say so; an unknown
    market is an InvalidOrderError before any stream exists."""
    async with backend() as b:
        with pytest.raises(InvalidOrderError, match="unknown market"):
            b.broker.quotes([SYMBOL], market="kosdaq")
        with pytest.raises(InvalidOrderError, match="unknown market"):
            b.broker.orderbooks([SYMBOL], market="")
        async with b.broker.quotes([SYMBOL], market="J") as quotes:
            await b.served()
            await b.prints([BASE + 100])
            [quote] = await take(quotes, 1)
    assert quote.market is Market.KRX
    assert quote.price == Decimal(BASE + 100)
