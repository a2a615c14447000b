"""A broker belongs to the event loop that opened it: other loops and threads are refused at
once, before any state is touched, and the owner can always go on and close it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from kis_async import KISBroker, MockBroker
from kis_async.owner import OwnerLoop
from kis_async.sim import KISSimulator

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in its own thread (the broker's owner in these tests)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def owner() -> Iterator[LoopThread]:
    """An owner loop in a thread of its own, stopped after the test."""
    running = LoopThread()
    yield running
    running.stop()


def in_other_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread and return its result (or raise its exception)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(30)


def assert_points_to_supported_ways(error: BaseException) -> None:
    text = str(error)
    assert "run_coroutine_threadsafe" in text
    assert "broker.loop" in text
    assert "SyncKISBroker" in text


async def test_second_loop_is_refused_and_the_owner_closes_cleanly(
    sim: KISSimulator, owner: LoopThread
) -> None:
    """The issue's probe: a broker used from two threads, each with its own event loop. The
    intruder gets a clear RuntimeError for every kind of call (nothing hangs, nothing binds to
    its loop); the owner keeps working and closes the broker afterwards."""
    broker = KISBroker(sim.config(requests_per_second=None))
    assert broker.loop is None
    # The simulator runs on this test's loop: block only other threads, never this one.
    first = await asyncio.to_thread(owner.run, lambda: broker.get_price("005930"))
    assert broker.loop is owner.loop
    requests_before = sim.stats.rest_requests

    def intruder() -> list[BaseException]:
        async def misuse() -> list[BaseException]:
            errors: list[BaseException] = []
            calls: list[Callable[[], Awaitable[Any]]] = [
                lambda: broker.get_price("005930"),
                broker.open,
                broker.aclose,
                lambda: broker.subscribe_quotes(["005930"], print),
            ]
            for call in calls:
                with pytest.raises(RuntimeError) as caught:
                    await asyncio.wait_for(call(), 3.0)
                errors.append(caught.value)
            for sync_call in (lambda: broker.quotes(["005930"]), broker.executions):
                with pytest.raises(RuntimeError) as caught:
                    sync_call()
                errors.append(caught.value)
            return errors

        return asyncio.run(misuse())

    errors = await asyncio.to_thread(in_other_thread, intruder)
    assert len(errors) == 6
    for error in errors:
        assert_points_to_supported_ways(error)
        assert "another event loop" in str(error)
    assert sim.stats.rest_requests == requests_before  # refused before any request
    assert broker.stream_status.registrations == 0

    # The supported way from another thread: the owner's loop runs the call.
    def via_owner_loop() -> Any:
        assert broker.loop is not None
        future = asyncio.run_coroutine_threadsafe(broker.get_price("005930"), broker.loop)
        return future.result(10)

    second = await asyncio.to_thread(in_other_thread, via_owner_loop)
    assert second.symbol == first.symbol

    # A stream still works on the owner, then the owner closes the broker.
    async def one_quote() -> Any:
        async with broker.quotes(["005930"]) as stream:
            return await asyncio.wait_for(anext(stream), 10)

    quote = await asyncio.to_thread(owner.run, one_quote)
    assert quote.symbol == "005930"
    await asyncio.to_thread(owner.run, broker.aclose)
    assert "closed" in repr(broker)


async def test_call_without_a_running_loop_is_refused(sim: KISSimulator) -> None:
    """A plain thread with no event loop calling a stream method gets the same clear error."""
    async with KISBroker(sim.config(requests_per_second=None)) as broker:

        def plain() -> None:
            broker.quotes(["005930"])

        with pytest.raises(RuntimeError, match="no event loop running") as caught:
            await asyncio.to_thread(plain)
        assert_points_to_supported_ways(caught.value)
        assert broker.loop is asyncio.get_running_loop()


def test_mock_broker_has_the_same_owner_rule(owner: LoopThread) -> None:
    """MockBroker refuses a second loop the same way and its owner closes it afterwards."""
    mock = MockBroker(prices={"005930": 70_000})
    owner.run(mock.open)

    async def misuse() -> None:
        await mock.get_price("005930")

    with pytest.raises(RuntimeError, match="this MockBroker belongs to the event loop") as caught:
        in_other_thread(lambda: asyncio.run(misuse()))
    assert_points_to_supported_ways(caught.value)
    snapshot = owner.run(lambda: mock.get_price("005930"))
    assert snapshot.price == 70_000
    owner.run(mock.aclose)
    with pytest.raises(RuntimeError, match="closed"):
        owner.run(lambda: mock.get_price("005930"))


def test_first_use_binds_exactly_one_of_racing_loops() -> None:
    """Eight threads, each with its own loop, reach an unbound guard at once: one binds it,
    the seven others are refused."""
    guard = OwnerLoop("KISBroker")
    barrier = threading.Barrier(8)

    def contender() -> bool:
        async def attempt() -> bool:
            barrier.wait(10)
            try:
                guard.check()
            except RuntimeError:
                return False
            return True

        return asyncio.run(attempt())

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: contender(), range(8)))
    assert results.count(True) == 1
    assert guard.loop is not None
    assert guard.loop.is_closed()
    with pytest.raises(RuntimeError, match="that loop is closed now"):
        asyncio.run(_check(guard))


async def _check(guard: OwnerLoop) -> None:
    guard.check()
