"""The synchronous client against the simulator: blocking calls from threads, blocking stream
iterators, callbacks on one thread, and closing from anywhere without a hang.

The simulator runs on the test's event loop, so every blocking call runs in a worker thread
(``asyncio.to_thread``), as in a real program where the sync client is used from threads.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from kis_async import (
    BrokerError,
    InvalidOrderError,
    KISBroker,
    Mode,
    OrderRequest,
    Quote,
    Side,
    SyncKISBroker,
)
from kis_async.models import tick_size
from kis_async.sim import KISSimulator
from kis_async.stream.manager import StreamOptions


@pytest.fixture
async def ticking_sim() -> AsyncIterator[KISSimulator]:
    """A paper simulator ticking every 20 ms, no rate limit."""
    async with KISSimulator(seed=77, mode=Mode.PAPER, rate_limit=False, quote_interval=0.02).serve(
        port=0
    ) as running:
        yield running


@pytest.fixture
async def quiet_sim() -> AsyncIterator[KISSimulator]:
    """A paper simulator whose prices never move (so a stream waits forever)."""
    async with KISSimulator(seed=78, mode=Mode.PAPER, rate_limit=False, quote_interval=None).serve(
        port=0
    ) as running:
        yield running


async def poll(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def resting_buy_price(last: Decimal) -> Decimal:
    """A buy price 10 % under ``last`` on the tick grid: it rests in the book unfilled."""
    target = last * Decimal("0.9")
    tick = tick_size(target)
    return (target // tick) * tick


def loop_threads() -> int:
    return sum(t.name == "kis_async-loop" and t.is_alive() for t in threading.enumerate())


async def test_calls_block_and_return_what_the_async_broker_returns(
    ticking_sim: KISSimulator,
) -> None:
    """Prices, cash, an order and its cancel through the sync client; bad input is refused
    in the calling thread before any request."""
    sim = ticking_sim

    def script() -> tuple[Any, ...]:
        with SyncKISBroker(sim.config(requests_per_second=None)) as broker:
            snapshot = broker.get_price("005930")
            cash = broker.get_cash()
            requests = sim.stats.rest_requests
            with pytest.raises(InvalidOrderError):
                broker.get_price("00593")
            assert sim.stats.rest_requests == requests
            order_id = broker.place_order(
                OrderRequest("005930", Side.BUY, 1, price=resting_buy_price(snapshot.price))
            )
            cancelled = broker.cancel_order(order_id)
            orders = broker.get_orders()
            return snapshot, cash, order_id, cancelled, orders, repr(broker)

    snapshot, cash, order_id, cancelled, orders, text = await asyncio.to_thread(script)
    assert snapshot.symbol == "005930"
    assert snapshot.price > 0
    assert cash == Decimal(100_000_000)  # the simulator's starting deposit
    assert cancelled is True
    assert order_id.lstrip("0") in {o.broker_order_id.lstrip("0") for o in orders}
    assert sim.exchange.order(order_id).qty == 1
    assert "SyncKISBroker" in text
    assert sim.app_key not in text


async def test_quote_iterator_unsubscribes_when_closed_or_collected(
    ticking_sim: KISSimulator,
) -> None:
    """A blocking quote iterator yields quotes; leaving ``with``, ``close()`` and garbage
    collection each unsubscribe at the simulator."""
    sim = ticking_sim
    broker = await asyncio.to_thread(SyncKISBroker, sim.config(requests_per_second=None))
    try:

        def read(n: int) -> list[Quote]:
            seen: list[Quote] = []
            with broker.quotes(["005930", "000660"]) as quotes:
                for quote in quotes:
                    seen.append(quote)
                    if len(seen) == n:
                        break
            return seen

        seen = await asyncio.to_thread(read, 5)
        assert {q.symbol for q in seen} <= {"005930", "000660"}
        await poll(lambda: sim.stats.active_subscriptions == 0)

        def open_one() -> Any:
            it = broker.quotes(["035420"])
            next(it)
            return weakref.ref(it)

        ref = await asyncio.to_thread(open_one)
        gc.collect()
        assert ref() is None
        await poll(lambda: sim.stats.active_subscriptions == 0)

        def close_explicitly() -> bool:
            it = broker.quotes(["005930"])
            next(it)
            it.close()
            it.close()  # idempotent
            with pytest.raises(StopIteration):
                next(it)
            return True

        assert await asyncio.to_thread(close_explicitly)
        await poll(lambda: sim.stats.active_subscriptions == 0)
    finally:
        await asyncio.to_thread(broker.close)


async def test_callbacks_run_serially_on_one_dedicated_thread(ticking_sim: KISSimulator) -> None:
    """Three subscriptions with slow callbacks: every call runs on the same callback thread
    (not the caller's, not the loop's), and no two calls overlap."""
    sim = ticking_sim
    spans: list[tuple[int, int, int]] = []

    def slow(_: object) -> None:
        start = time.perf_counter_ns()
        time.sleep(0.002)
        spans.append((threading.get_ident(), start, time.perf_counter_ns()))

    def script() -> int:
        with SyncKISBroker(sim.config(requests_per_second=None)) as broker:
            broker.subscribe_quotes(["005930"], slow)
            broker.subscribe_quotes(["005930", "000660"], slow)
            with broker.subscribe_executions(slow):
                price = resting_buy_price(broker.get_price("000660").price)
                broker.place_order(OrderRequest("000660", Side.BUY, 1, price=price))
                deadline = time.monotonic() + 10
                while len(spans) < 60 and time.monotonic() < deadline:
                    time.sleep(0.02)
        return threading.get_ident()

    caller = await asyncio.to_thread(script)
    assert len(spans) >= 60
    threads = {ident for ident, _, _ in spans}
    assert len(threads) == 1
    assert caller not in threads
    ordered = sorted(spans, key=lambda span: span[1])
    overlaps = sum(b[1] < a[2] for a, b in itertools.pairwise(ordered))
    assert overlaps == 0


async def test_callback_may_call_the_broker_and_close_its_own_subscription(
    ticking_sim: KISSimulator,
) -> None:
    """A callback that reads a price through the broker and then closes its subscription:
    no deadlock, and no call after the close."""
    sim = ticking_sim
    results: list[Any] = []
    done = threading.Event()

    def script() -> int:
        with SyncKISBroker(sim.config(requests_per_second=None)) as broker:
            holder: dict[str, Any] = {}

            def on_quote(quote: Quote) -> None:
                results.append(broker.get_price(quote.symbol).symbol)
                if len(results) == 3:
                    holder["sub"].close()
                    done.set()

            holder["sub"] = broker.subscribe_quotes(["005930"], on_quote)
            assert done.wait(10)
            time.sleep(0.3)  # quotes keep coming; the closed subscription must stay silent
            return len(results)

    assert await asyncio.to_thread(script) == 3
    assert results == ["005930"] * 3


async def test_close_from_another_thread_ends_blocked_calls(quiet_sim: KISSimulator) -> None:
    """Threads blocked in ``next()`` on a silent stream and in a REST call the server holds
    for 60 s: ``close()`` from 4 threads at once ends the iterations (and any later one) and
    releases the call with an error within the close timeout; later calls raise
    RuntimeError."""
    sim = quiet_sim
    broker = await asyncio.to_thread(
        SyncKISBroker, sim.config(requests_per_second=None), close_timeout=1.0
    )
    await asyncio.to_thread(broker.get_price, "005930")  # token issued before the delay
    outcomes: dict[str, Any] = {}
    subscribed = threading.Barrier(3)

    def iterate(name: str) -> None:
        stream = broker.quotes(["005930"])
        with stream:
            subscribed.wait(10)
            outcomes[name] = list(stream)

    def slow_call() -> None:
        try:
            broker.get_cash()
        except Exception as exc:
            outcomes["rest"] = exc

    idle = await asyncio.to_thread(broker.quotes, ["000660"])  # not iterated until after
    iterators = [threading.Thread(target=iterate, args=(name,)) for name in "ab"]
    for thread in iterators:
        thread.start()
    await asyncio.to_thread(subscribed.wait, 10)
    sim.faults.delay_responses(60.0)
    requests = sim.stats.rest_requests
    threads = [*iterators, threading.Thread(target=slow_call)]
    threads[-1].start()
    await poll(lambda: sim.stats.rest_requests > requests)  # the call is in flight
    began = time.monotonic()
    closers = [threading.Thread(target=broker.close) for _ in range(4)]
    for closer in closers:
        closer.start()
    for thread in [*threads, *closers]:
        await asyncio.to_thread(thread.join, 15)
        assert not thread.is_alive()
    elapsed = time.monotonic() - began
    sim.faults.clear()
    assert outcomes["a"] == []
    assert outcomes["b"] == []
    # The async broker's close fails the in-flight request (its error type is the async
    # broker's business); the point here is that the blocked thread is released.
    assert isinstance(outcomes["rest"], RuntimeError | BrokerError)
    assert elapsed < 10.0
    assert broker.closed
    with pytest.raises(RuntimeError, match="closed"):
        broker.get_price("005930")
    with pytest.raises(StopIteration):  # the broker's close ended every stream
        next(idle)
    idle.close()
    await asyncio.to_thread(broker.close)


async def test_close_from_inside_a_callback(ticking_sim: KISSimulator) -> None:
    """A callback may close the whole broker; later calls from any thread raise RuntimeError
    and the loop thread ends."""
    sim = ticking_sim
    baseline = loop_threads()
    broker = await asyncio.to_thread(SyncKISBroker, sim.config(requests_per_second=None))
    closed = threading.Event()

    def on_quote(_: Quote) -> None:
        broker.close()
        closed.set()

    await asyncio.to_thread(broker.subscribe_quotes, ["005930"], on_quote)
    assert await asyncio.to_thread(closed.wait, 10)
    with pytest.raises(RuntimeError, match="closed"):
        await asyncio.to_thread(broker.get_cash)
    await poll(lambda: loop_threads() == baseline)
    await poll(lambda: sim.stats.ws_sessions_active == 0)


async def test_async_callbacks_are_refused(ticking_sim: KISSimulator) -> None:
    """The sync client takes plain functions; a coroutine function is a TypeError at once."""

    async def on_quote(_: Quote) -> None:
        return None

    def script() -> None:
        with (
            SyncKISBroker(ticking_sim.config(requests_per_second=None)) as broker,
            pytest.raises(TypeError, match="plain functions"),
        ):
            broker.subscribe_quotes(["005930"], on_quote)

    await asyncio.to_thread(script)


async def test_factory_broker_lives_on_the_private_loop_and_gc_stops_threads(
    ticking_sim: KISSimulator,
) -> None:
    """``from_factory`` builds the async broker on the client's loop thread; a client dropped
    without ``close()`` is closed by garbage collection (its loop thread ends)."""
    sim = ticking_sim
    baseline = loop_threads()
    built_on: list[str] = []

    def factory() -> KISBroker:
        built_on.append(threading.current_thread().name)
        return KISBroker(sim.config(requests_per_second=None))

    def use_and_drop() -> str:
        broker = SyncKISBroker.from_factory(factory)
        return broker.get_price("005930").symbol

    assert await asyncio.to_thread(use_and_drop) == "005930"
    assert built_on == ["kis_async-loop"]
    gc.collect()
    await poll(lambda: loop_threads() == baseline)


class HeldBroker(KISBroker):
    """A broker whose ``get_cash`` waits on something its own close does not end (as a call
    parked outside the broker would)."""

    async def get_cash(self) -> Decimal:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_call_that_outlives_the_broker_close_fails_after_the_grace(
    ticking_sim: KISSimulator,
) -> None:
    """A call still running after the broker closed gets ``close_timeout`` seconds, then a
    RuntimeError saying the client closed under it; ``close()`` returns."""
    sim = ticking_sim
    broker = await asyncio.to_thread(
        SyncKISBroker.from_factory,
        lambda: HeldBroker(sim.config(requests_per_second=None)),
        close_timeout=0.5,
    )
    outcome: list[BaseException] = []
    entered = threading.Event()

    def held() -> None:
        entered.set()
        try:
            broker.get_cash()
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=held)
    thread.start()
    assert await asyncio.to_thread(entered.wait, 10)
    await asyncio.sleep(0.1)
    began = time.monotonic()
    await asyncio.to_thread(broker.close)
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
    assert time.monotonic() - began < 5.0
    assert len(outcome) == 1
    assert isinstance(outcome[0], RuntimeError)
    assert "closed while this call was in flight" in str(outcome[0])


async def test_order_book_and_execution_iterators(ticking_sim: KISSimulator) -> None:
    """``orderbooks()`` yields books; ``executions()`` yields the notice of an order placed
    through the same client from the same thread."""
    sim = ticking_sim

    def script() -> tuple[Any, Any, str]:
        with SyncKISBroker(sim.config(requests_per_second=None)) as broker:
            with broker.orderbooks(["000660"]) as books:
                book = next(books)
            with broker.executions() as notices:
                last = broker.get_price("005930").price
                order_id = broker.place_order(
                    OrderRequest("005930", Side.BUY, 2, price=resting_buy_price(last))
                )
                notice = next(notices)
            return book, notice, order_id

    book, notice, order_id = await asyncio.to_thread(script)
    assert book.symbol == "000660"
    assert book.asks
    assert notice.broker_order_id.lstrip("0") == order_id.lstrip("0")
    assert notice.qty == 2


async def test_failing_callback_is_logged_and_the_subscription_goes_on(
    ticking_sim: KISSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that raises on every other quote keeps being called."""
    sim = ticking_sim
    calls: list[int] = []
    enough = threading.Event()

    def flaky(_: Quote) -> None:
        calls.append(1)
        if len(calls) >= 6:
            enough.set()
        if len(calls) % 2:
            raise ValueError("strategy bug")

    def script() -> bool:
        with SyncKISBroker(sim.config(requests_per_second=None)) as broker:
            broker.subscribe_quotes(["005930"], flaky)
            return enough.wait(10)

    assert await asyncio.to_thread(script)
    assert len(calls) >= 6
    assert "a stream callback raised" in caplog.text


async def test_on_error_runs_on_the_callback_thread_when_the_session_is_given_up(
    ticking_sim: KISSimulator,
) -> None:
    """When the WebSocket session is given up, ``on_error`` gets the BrokerConnectionError on
    the same thread as the callbacks."""
    sim = ticking_sim
    options = StreamOptions(
        ack_timeout=3.0, reconnect_base_delay=0.01, reconnect_max_delay=0.05,
        max_reconnect_attempts=3,
    )  # fmt: skip
    seen: list[tuple[str, int]] = []
    failed = threading.Event()

    def on_quote(_: Quote) -> None:
        seen.append(("quote", threading.get_ident()))

    def on_error(exc: BaseException) -> None:
        seen.append((type(exc).__name__, threading.get_ident()))
        failed.set()

    broker = await asyncio.to_thread(
        SyncKISBroker, sim.config(requests_per_second=None), stream_options=options
    )
    try:
        await asyncio.to_thread(broker.subscribe_quotes, ["005930"], on_quote, on_error=on_error)
        await poll(lambda: bool(seen))
        sim.faults.refuse_connections(30)
        sim.faults.drop_sessions()
        assert await asyncio.to_thread(failed.wait, 10)
    finally:
        sim.faults.clear()
        await asyncio.to_thread(broker.close)
    assert seen[-1][0] == "BrokerConnectionError"
    assert len({ident for _, ident in seen}) == 1
