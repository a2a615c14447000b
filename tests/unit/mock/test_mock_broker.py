"""MockBroker: the BrokerPort contract in memory, driven by pushed quotes."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from kis_async.errors import BrokerAPIError, InvalidOrderError, OrderRejectedError, ServerError
from kis_async.mock import MOCK_MSG_CODES, MockBroker
from kis_async.models import (
    Execution,
    ExecutionKind,
    OrderRequest,
    OrderStatus,
    OrderType,
    Quote,
    Side,
)
from kis_async.port import BrokerPort, Stream, Subscription

SAMSUNG = "005930"
HYNIX = "000660"


@pytest.fixture
async def mock() -> MockBroker:
    broker = MockBroker(cash=1_000_000, prices={SAMSUNG: 70_000, HYNIX: 180_000})
    await broker.open()
    return broker


def buy(qty: int, price: int | None = None, **kw: object) -> OrderRequest:
    if price is None:
        return OrderRequest(SAMSUNG, "buy", qty, order_type=OrderType.MARKET, **kw)  # type: ignore[arg-type]
    return OrderRequest(SAMSUNG, "buy", qty, price=price, **kw)  # type: ignore[arg-type]


def sell(qty: int, price: int | None = None) -> OrderRequest:
    if price is None:
        return OrderRequest(SAMSUNG, "sell", qty, order_type=OrderType.MARKET)
    return OrderRequest(SAMSUNG, "sell", qty, price=price)


def drain(stream: Stream[Execution]) -> list[Execution]:
    """What the stream has queued, taken without awaiting (MockBroker delivers synchronously)."""
    buffer = stream.buffer  # type: ignore[attr-defined]
    items = list(buffer._items)
    buffer._items.clear()
    return items


def test_is_a_broker_port() -> None:
    """MockBroker implements every abstract method of BrokerPort."""
    broker = MockBroker()
    assert isinstance(broker, BrokerPort)
    assert broker.account.startswith("******")


async def test_streams_satisfy_the_stream_protocol(mock: MockBroker) -> None:
    """Quote, book and execution handles are Stream[T] (iterator, context manager, aclose)."""
    for stream in (mock.quotes([SAMSUNG]), mock.orderbooks([SAMSUNG]), mock.executions()):
        assert isinstance(stream, Stream)
        await stream.aclose()


async def test_price_reflects_pushed_quotes(mock: MockBroker) -> None:
    """get_price reports the last pushed trade with change against the base price."""
    mock.push_quote(SAMSUNG, 71_000, volume=10)
    mock.push_quote(SAMSUNG, 69_500, volume=5)
    snap = await mock.get_price(SAMSUNG)
    assert snap.price == Decimal(69_500)
    assert snap.change == Decimal(-500)
    assert snap.high == Decimal(71_000)
    assert snap.low == Decimal(69_500)
    assert snap.volume == 15
    assert snap.upper_limit == Decimal(91_000)
    assert snap.lower_limit == Decimal(49_000)


async def test_unknown_and_malformed_symbols(mock: MockBroker) -> None:
    """A malformed symbol is InvalidOrderError; an unpriced one a BrokerAPIError."""
    with pytest.raises(InvalidOrderError):
        await mock.get_price("5930")
    with pytest.raises(BrokerAPIError) as info:
        await mock.get_price("035720")
    assert info.value.msg_cd == MOCK_MSG_CODES["unknown_symbol"]


async def test_quotes_stream_delivers_in_order(mock: MockBroker) -> None:
    """A quotes stream receives its symbols' prints in order and nothing else."""
    async with mock.quotes([SAMSUNG]) as stream:
        mock.push_quote(SAMSUNG, 70_100)
        mock.push_quote(HYNIX, 181_000)
        mock.push_quote(SAMSUNG, 70_200)
        got: list[Quote] = [await anext(stream), await anext(stream)]
    assert [q.price for q in got] == [Decimal(70_100), Decimal(70_200)]
    assert got[0]["STCK_PRPR"] == "70100"
    assert stream.closed


async def test_stream_ends_when_broker_closes(mock: MockBroker) -> None:
    """A consumer blocked in async for ends cleanly on broker.aclose()."""
    stream = mock.quotes([SAMSUNG])
    seen: list[Quote] = []

    async def consume() -> None:
        async for quote in stream:
            seen.append(quote)

    task = asyncio.create_task(consume())
    await mock.wait_subscribed([SAMSUNG])
    mock.push_quote(SAMSUNG, 70_100)
    await mock.settle()
    await mock.aclose()
    await asyncio.wait_for(task, 2)
    assert len(seen) == 1
    with pytest.raises(RuntimeError):
        await mock.get_cash()


async def test_marketable_limit_buy_fills_at_reference(mock: MockBroker) -> None:
    """A buy limit above the ask fills at once at the ask; cash and holdings follow."""
    mock.push_quote(SAMSUNG, 70_000, ask=70_100, bid=70_000)
    events = mock.executions()
    order_id = await mock.place_order(buy(10, 70_500))
    kinds = [(e.kind, e.qty, e.price) for e in drain(events)]
    assert kinds == [
        (ExecutionKind.ACCEPTED, 10, Decimal(70_500)),
        (ExecutionKind.FILLED, 10, Decimal(70_100)),
    ]
    assert await mock.get_cash() == Decimal(1_000_000 - 701_000)
    [position] = await mock.get_stock_balance()
    assert (position.symbol, position.qty, position.avg_price) == (SAMSUNG, 10, Decimal(70_100))
    [order] = await mock.get_orders()
    assert order.broker_order_id == order_id
    assert order.status is OrderStatus.FILLED
    assert order.avg_fill_price == Decimal(70_100)


async def test_resting_limit_fills_when_crossed_with_partial_fills(mock: MockBroker) -> None:
    """A resting buy fills at its limit when a print trades through, capped by volume."""
    events = mock.executions()
    order_id = await mock.place_order(buy(10, 69_000))
    assert [e.kind for e in drain(events)] == [ExecutionKind.ACCEPTED]
    mock.push_quote(SAMSUNG, 69_500, volume=100)
    assert drain(events) == []
    mock.push_quote(SAMSUNG, 69_000, volume=4)
    [fill] = drain(events)
    assert (fill.kind, fill.qty, fill.price) == (ExecutionKind.FILLED, 4, Decimal(69_000))
    [open_order] = await mock.get_open_orders()
    assert open_order.status is OrderStatus.PARTIALLY_FILLED
    assert open_order.remaining_qty == 6
    mock.push_quote(SAMSUNG, 68_900)
    [fill] = drain(events)
    assert fill.qty == 6
    assert await mock.get_open_orders() == []
    [order] = await mock.get_orders()
    assert order.broker_order_id == order_id
    assert order.filled_qty == 10


async def test_sell_needs_holdings_and_pays_cash() -> None:
    """Selling more than held is rejected; a market sell fills at the bid and pays cash."""
    broker = MockBroker(cash=0, prices={SAMSUNG: 70_000}, positions={SAMSUNG: (5, 60_000)})
    with pytest.raises(OrderRejectedError) as info:
        await broker.place_order(sell(6))
    assert info.value.msg_cd == MOCK_MSG_CODES["insufficient_holdings"]
    broker.push_quote(SAMSUNG, 70_000, bid=69_900, ask=70_000)
    await broker.place_order(sell(2))
    assert await broker.get_cash() == Decimal(139_800)
    [position] = await broker.get_stock_balance()
    assert position.qty == 3
    assert position.avg_price == Decimal(60_000)
    resting = await broker.place_order(sell(3, 75_000))
    [position] = await broker.get_stock_balance()
    assert position.orderable_qty == 0
    with pytest.raises(OrderRejectedError):
        await broker.place_order(sell(1, 75_000))
    assert await broker.cancel_order(resting) is True
    broker.push_quote(SAMSUNG, 76_000)
    [position] = await broker.get_stock_balance()
    assert position.qty == 3


async def test_buying_power_counts_resting_orders(mock: MockBroker) -> None:
    """Resting buys reserve cash; an order beyond what is left is rejected."""
    await mock.place_order(buy(10, 60_000))
    power = await mock.get_buying_power(SAMSUNG, 70_000)
    assert power.orderable_cash == Decimal(400_000)
    assert power.max_buy_qty == 5
    with pytest.raises(OrderRejectedError) as info:
        await mock.place_order(buy(6, 69_000))
    assert info.value.msg_cd == MOCK_MSG_CODES["insufficient_cash"]
    with pytest.raises(OrderRejectedError):
        await mock.place_order(buy(6))


async def test_bad_input_rejected_before_anything(mock: MockBroker) -> None:
    """Invalid requests and ids raise InvalidOrderError and book nothing."""
    with pytest.raises(InvalidOrderError):
        await mock.place_order("buy 10")  # type: ignore[arg-type]
    with pytest.raises(InvalidOrderError):
        OrderRequest(SAMSUNG, "buy", 1, price=70_050)
    with pytest.raises(InvalidOrderError):
        await mock.cancel_order("abc")
    with pytest.raises(InvalidOrderError):
        await mock.cancel_order("0000009999")
    with pytest.raises(InvalidOrderError):
        mock.quotes(["bad"])
    with pytest.raises(OrderRejectedError):
        await mock.place_order(OrderRequest("035720", "buy", 1, price=50_000))
    assert await mock.get_orders() == []
    assert mock.requests == []


async def test_idempotency_key_books_once(mock: MockBroker) -> None:
    """The same key and order returns the first order id; another order with it is refused."""
    first = await mock.place_order(buy(1, 60_000, idempotency_key="k1"))
    again = await mock.place_order(buy(1, 60_000, idempotency_key="k1"))
    assert first == again
    assert len(await mock.get_orders()) == 1
    with pytest.raises(InvalidOrderError):
        await mock.place_order(buy(2, 60_000, idempotency_key="k1"))
    assert len(mock.requests) == 1


async def test_cancel_and_modify(mock: MockBroker) -> None:
    """cancel_order cancels what remains (False when nothing); modify moves qty to a new order."""
    events = mock.executions()
    order_id = await mock.place_order(buy(10, 60_000))
    new_id = await mock.modify_order(order_id, qty=4, price=61_000)
    assert new_id != order_id
    by_id = {o.broker_order_id: o for o in await mock.get_orders()}
    assert by_id[order_id].remaining_qty == 6
    assert by_id[new_id].original_order_id == order_id
    assert (by_id[new_id].qty, by_id[new_id].price) == (4, Decimal(61_000))
    assert await mock.cancel_order(order_id) is True
    assert await mock.cancel_order(order_id) is False
    with pytest.raises(OrderRejectedError):
        await mock.modify_order(order_id, price=62_000)
    with pytest.raises(OrderRejectedError):
        await mock.modify_order(new_id, qty=5)
    with pytest.raises(InvalidOrderError):
        await mock.modify_order(new_id)
    with pytest.raises(InvalidOrderError):
        await mock.modify_order(new_id, price=61_050)
    market_id = await mock.modify_order(new_id, order_type=OrderType.MARKET)
    kinds = [e.kind for e in drain(events)]
    assert kinds == [
        ExecutionKind.ACCEPTED,
        ExecutionKind.MODIFIED,
        ExecutionKind.CANCELLED,
        ExecutionKind.MODIFIED,
        ExecutionKind.FILLED,
    ]
    statuses = {o.broker_order_id: o.status for o in await mock.get_orders()}
    assert statuses[market_id] is OrderStatus.FILLED
    assert statuses[new_id] is OrderStatus.CANCELLED
    assert await mock.get_open_orders() == []


async def test_ioc_not_marketable_is_cancelled(mock: MockBroker) -> None:
    """An IOC limit that cannot fill on arrival is cancelled at once."""
    events = mock.executions()
    await mock.place_order(OrderRequest(SAMSUNG, Side.BUY, 3, order_type="11", price=69_000))
    assert [e.kind for e in drain(events)] == [ExecutionKind.ACCEPTED, ExecutionKind.CANCELLED]
    assert await mock.get_open_orders() == []


async def test_orderbook_push_sets_reference_and_streams(mock: MockBroker) -> None:
    """A pushed book is delivered and its best ask prices a market buy."""
    books = mock.orderbooks([SAMSUNG])
    mock.push_orderbook(SAMSUNG, asks=[(70_300, 5), (70_400, 9)], bids=[(70_200, 7)])
    book = await anext(books)
    assert book.best_ask is not None
    assert book.best_ask.price == Decimal(70_300)
    assert (await mock.get_orderbook(SAMSUNG)).spread == Decimal(100)
    events = mock.executions()
    await mock.place_order(buy(1))
    fill = drain(events)[-1]
    assert fill.price == Decimal(70_300)
    synthetic = await mock.get_orderbook(HYNIX)
    assert len(synthetic.asks) == 10
    assert synthetic.asks[0].price > synthetic.bids[0].price


async def test_fail_next_order(mock: MockBroker) -> None:
    """fail_next_order makes exactly the next placement raise, booking nothing."""
    mock.fail_next_order(ServerError(status_code=500))
    with pytest.raises(ServerError):
        await mock.place_order(buy(1, 60_000))
    assert await mock.get_orders() == []
    await mock.place_order(buy(1, 60_000))
    assert len(await mock.get_orders()) == 1


async def test_callbacks_sync_async_and_failing(
    mock: MockBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """Callback subscriptions get every item; a raising callback is logged and goes on."""
    sync_seen: list[Decimal] = []
    async_seen: list[ExecutionKind] = []

    def on_quote(quote: Quote) -> None:
        sync_seen.append(quote.price)
        if len(sync_seen) == 1:
            raise RuntimeError("strategy bug")

    async def on_execution(execution: Execution) -> None:
        await asyncio.sleep(0)
        async_seen.append(execution.kind)

    sub_q: Subscription = await mock.subscribe_quotes([SAMSUNG], on_quote)
    sub_e = await mock.subscribe_executions(on_execution)
    mock.push_quote(SAMSUNG, 70_000)
    mock.push_quote(SAMSUNG, 70_100)
    await mock.place_order(buy(1))
    await mock.settle()
    assert sync_seen == [Decimal(70_000), Decimal(70_100)]
    assert async_seen == [ExecutionKind.ACCEPTED, ExecutionKind.FILLED]
    assert "callback raised" in caplog.text
    await sub_q.aclose()
    await sub_e.aclose()
    mock.push_quote(SAMSUNG, 70_200)
    await mock.settle()
    assert len(sync_seen) == 2


async def test_strategy_task_reacts_via_settle() -> None:
    """A consumer task that places orders on quotes is observable after settle()."""
    broker = MockBroker(cash=1_000_000, prices={SAMSUNG: 70_000})

    async def strategy() -> None:
        async with broker.quotes([SAMSUNG]) as quotes:
            async for quote in quotes:
                if quote.price <= 69_000:
                    await broker.place_order(
                        OrderRequest(
                            SAMSUNG,
                            "buy",
                            1,
                            order_type=OrderType.MARKET,
                            idempotency_key=f"dip-{quote.price}",
                        )
                    )

    async with broker:
        task = asyncio.create_task(strategy())
        await broker.wait_subscribed([SAMSUNG])
        for price in (70_000, 69_000, 69_000, 68_500):
            broker.push_quote(SAMSUNG, price)
        await broker.settle()
        assert [r.idempotency_key for r in broker.requests] == ["dip-69000", "dip-68500"]
    await asyncio.wait_for(task, 2)
    assert task.done()


async def test_wait_subscribed_times_out(mock: MockBroker) -> None:
    """wait_subscribed raises TimeoutError when nobody subscribes."""
    with pytest.raises(TimeoutError):
        await mock.wait_subscribed([SAMSUNG], executions=True, max_wait=0.05)


async def test_settle_names_an_abandoned_stream(mock: MockBroker) -> None:
    """A stream left by `break` without aclose() makes settle() time out, naming it."""
    stream = mock.quotes([SAMSUNG])
    mock.push_quote(SAMSUNG, 70_000)
    async for _ in stream:
        break
    mock.push_quote(SAMSUNG, 70_100)
    with pytest.raises(TimeoutError, match=r"MockStream\(quotes, 005930.*1 unread"):
        await mock.settle(max_wait=0.05)
    await stream.aclose()
    await mock.settle(max_wait=1)


async def test_fail_streams_ends_streams_with_the_error_after_queued_items(
    mock: MockBroker,
) -> None:
    """fail_streams() delivers what was pushed, then raises; callbacks get on_error."""
    from kis_async.errors import BrokerConnectionError

    errors: list[BaseException] = []
    seen: list[Decimal] = []
    sub = await mock.subscribe_quotes(
        ["005930"], lambda q: seen.append(q.price), on_error=errors.append
    )
    async with mock.quotes(["005930"]) as quotes:
        mock.push_quote("005930", 70_100)
        mock.fail_streams()
        first = await anext(quotes)
        assert first.price == Decimal(70_100)
        with pytest.raises(BrokerConnectionError):
            await anext(quotes)
    for _ in range(50):
        if errors:
            break
        await asyncio.sleep(0.01)
    assert seen == [Decimal(70_100)]
    assert len(errors) == 1
    assert isinstance(errors[0], BrokerConnectionError)
    await sub.aclose()
