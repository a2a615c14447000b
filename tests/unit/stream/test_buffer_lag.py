"""Frame-to-consumer lag sampling of the stream buffers: one queued item at a time (one in
LAG_SAMPLE_EVERY puts) is timed from put to get, samples keep coming from a consumer that never
catches up, and conflation that drops the timed item does not stop the sampling."""

from __future__ import annotations

import asyncio

from kis_async.stream.streams import LAG_SAMPLE_EVERY, Buffer, ConflatingBuffer, LosslessBuffer


def _key(item: tuple[str, int]) -> str:
    return item[0]


async def test_keeping_up_consumer_is_sampled_one_in_n() -> None:
    samples: list[float] = []
    buf: Buffer[int] = Buffer()
    buf.measure_lag(samples.append)
    total = 2 * LAG_SAMPLE_EVERY + 1

    async def consume() -> list[int]:
        return [await buf.get() for _ in range(total)]

    consumer = asyncio.create_task(consume())
    for i in range(total):
        await asyncio.sleep(0)
        buf.put(i)
        await asyncio.sleep(0)
    assert await asyncio.wait_for(consumer, 5) == list(range(total))
    assert len(samples) == 3  # items 0, N and 2N
    assert all(0 <= s < 1 for s in samples)


async def test_backlogged_consumer_still_yields_samples_with_its_real_lag() -> None:
    """A queue that never empties: each pass times a new item, and the lag shows the wait."""
    samples: list[float] = []
    buf: LosslessBuffer[int] = LosslessBuffer(10_000)
    buf.measure_lag(samples.append)
    backlog = 3
    for i in range(backlog):
        buf.put(i)
    await asyncio.sleep(0.05)  # the consumer is busy elsewhere
    taken = []
    for i in range(backlog, backlog + 3 * LAG_SAMPLE_EVERY):
        taken.append(await buf.get())
        buf.put(i)  # the producer keeps the queue non-empty
    taken += [await buf.get() for _ in range(len(buf))]
    assert taken == list(range(backlog + 3 * LAG_SAMPLE_EVERY))
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
    assert samples == []  # the timed item was dropped, not delivered
    for i in range(10, 10 + LAG_SAMPLE_EVERY):
        buf.put(("A", i))
        assert await buf.get() == ("A", i)
    assert len(samples) == 1  # sampling went on after the drop


async def test_off_by_default() -> None:
    buf: Buffer[int] = Buffer()
    buf.put(1)
    assert await buf.get() == 1
    assert buf._probe is None


async def test_items_taken_on_the_fast_path_keep_the_sampling_going() -> None:
    """A consumer draining bursts with take() (no await per item) still reports the timed
    items, and the sampling goes on after them."""
    samples: list[float] = []
    buf: ConflatingBuffer[tuple[str, int]] = ConflatingBuffer(10_000, _key, lambda n: None)
    buf.measure_lag(samples.append)
    taken: list[tuple[str, int]] = []
    for burst in range(3):
        for i in range(LAG_SAMPLE_EVERY):
            buf.put((f"s{i}", burst * LAG_SAMPLE_EVERY + i))
        while (item := buf.take()) is not None:
            taken.append(item)
    assert len(taken) == 3 * LAG_SAMPLE_EVERY
    assert len(samples) == 3  # one timed item per LAG_SAMPLE_EVERY, each reported
