"""Frame-to-consumer lag sampling of the stream buffers: one queued item at a time is timed
from put to get, samples keep coming from a consumer that never catches up, and conflation
that drops the timed item does not stop the sampling."""

from __future__ import annotations

import asyncio

from kis_async.stream.streams import Buffer, ConflatingBuffer, LosslessBuffer


def _key(item: tuple[str, int]) -> str:
    return item[0]


async def test_keeping_up_consumer_times_every_item() -> None:
    samples: list[float] = []
    buf: Buffer[int] = Buffer()
    buf.measure_lag(samples.append)

    async def consume() -> list[int]:
        return [await buf.get() for _ in range(5)]

    consumer = asyncio.create_task(consume())
    for i in range(5):
        await asyncio.sleep(0)
        buf.put(i)
        await asyncio.sleep(0.01)
    assert await asyncio.wait_for(consumer, 5) == [0, 1, 2, 3, 4]
    assert len(samples) == 5
    assert all(0 <= s < 1 for s in samples)


async def test_backlogged_consumer_still_yields_samples_with_its_real_lag() -> None:
    """A queue that never empties: each pass times a new item, and the lag shows the wait."""
    samples: list[float] = []
    buf: LosslessBuffer[int] = LosslessBuffer(10_000)
    buf.measure_lag(samples.append)
    for i in range(3):
        buf.put(i)
    await asyncio.sleep(0.05)  # the consumer is busy elsewhere
    for i in range(3, 6):
        assert await buf.get() == i - 3
        buf.put(i)  # the producer keeps the queue non-empty
    rest = [await buf.get() for _ in range(len(buf))]
    assert rest == [3, 4, 5]
    assert len(samples) >= 2
    assert samples[0] >= 0.04  # item 0 waited ~50 ms for its consumer


async def test_conflation_dropping_the_timed_item_rearms() -> None:
    samples: list[float] = []
    buf: ConflatingBuffer[tuple[str, int]] = ConflatingBuffer(2, _key, lambda n: None)
    buf.measure_lag(samples.append)
    for i in range(10):  # overflows: the first (timed) item is conflated away
        buf.put(("A", i))
    got = [await buf.get() for _ in range(len(buf))]
    assert got[-1] == ("A", 9)
    assert len(samples) == 1  # the surviving newest value was timed instead
    buf.put(("A", 10))
    assert await buf.get() == ("A", 10)
    assert len(samples) == 2


async def test_off_by_default() -> None:
    buf: Buffer[int] = Buffer()
    buf.put(1)
    assert await buf.get() == 1
    assert buf._probe is None
