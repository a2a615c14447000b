"""Stream buffers (conflation, lossless overflow) and the exactly-once fill ledger."""

from __future__ import annotations

import asyncio

import pytest

from kis_async.errors import BrokerConnectionError, StreamOverflowError
from kis_async.stream.ledger import FillLedger, normalize_order_id
from kis_async.stream.options import StreamOptions
from kis_async.stream.session import Session
from kis_async.stream.streams import ConflatingBuffer, LosslessBuffer


def _key(item: tuple[str, int]) -> str:
    return item[0]


async def test_conflating_buffer_keeps_newest_per_symbol() -> None:
    """Past maxsize the buffer keeps the newest value per symbol and counts the drops."""
    drops: list[int] = []
    buf: ConflatingBuffer[tuple[str, int]] = ConflatingBuffer(4, _key, drops.append)
    for i in range(10):
        buf.put(("A" if i % 2 else "B", i))
    got = [await buf.get() for _ in range(len(buf))]
    assert dict(got) == {"A": 9, "B": 8}
    assert len(got) <= 4
    assert buf.dropped == sum(drops) == 10 - len(got)


async def test_conflating_buffer_below_maxsize_is_lossless_and_ordered() -> None:
    """A consumer that keeps up sees every value in order."""
    buf: ConflatingBuffer[tuple[str, int]] = ConflatingBuffer(100, _key, lambda n: None)
    for i in range(50):
        buf.put(("A", i))
    assert [(await buf.get())[1] for _ in range(50)] == list(range(50))
    assert buf.dropped == 0


async def test_lossless_buffer_signals_overflow_once_and_keeps_everything() -> None:
    """Past the high-water mark get() raises StreamOverflowError once; nothing is lost."""
    buf: LosslessBuffer[int] = LosslessBuffer(5)
    for i in range(12):
        buf.put(i)
    with pytest.raises(StreamOverflowError):
        await buf.get()
    assert [await buf.get() for _ in range(12)] == list(range(12))
    # Re-armed once drained: the next overflow is signalled again.
    for i in range(6):
        buf.put(i)
    with pytest.raises(StreamOverflowError):
        await buf.get()


async def test_buffer_wakes_waiter_fail_and_close() -> None:
    """A waiting get() wakes on put; fail() and close() end after what is queued."""
    buf: LosslessBuffer[int] = LosslessBuffer(100)
    waiter = asyncio.ensure_future(buf.get())
    await asyncio.sleep(0)
    buf.put(7)
    assert await waiter == 7
    buf.put(1)
    buf.close()
    assert await buf.get() == 1
    with pytest.raises(StopAsyncIteration):
        await buf.get()
    failing: LosslessBuffer[int] = LosslessBuffer(100)
    failing.put(1)
    failing.fail(BrokerConnectionError("gone"))
    failing.put(2)  # nothing is queued after the end
    assert await failing.get() == 1  # queued before the failure: still delivered
    with pytest.raises(BrokerConnectionError):
        await failing.get()
    with pytest.raises(StopAsyncIteration):
        await failing.get()


def test_stream_options_validation() -> None:
    """Nonsense options are refused at construction."""
    with pytest.raises(ValueError, match="ack_timeout"):
        StreamOptions(ack_timeout=0)
    with pytest.raises(ValueError, match="max_registrations"):
        StreamOptions(max_registrations=0)
    with pytest.raises(ValueError, match="jitter"):
        StreamOptions(reconnect_jitter=2.0)


def test_order_id_normalisation() -> None:
    """Zero padding does not matter when matching REST and WebSocket order ids."""
    assert normalize_order_id("0000002891") == normalize_order_id("2891") == "2891"
    assert normalize_order_id("0000") == "0"


def test_ledger_notices_then_reconcile_after_outage() -> None:
    """Fills seen by notice are not repeated; fills during an outage come from reconcile."""
    ledger = FillLedger()
    assert ledger.notice("0000000001", 3, 10) == 3
    assert ledger.reconcile("1", 5, 10) == 2  # 2 shares filled while disconnected
    assert ledger.reconcile("1", 5, 10) == 0  # a second gap-fill adds nothing
    assert ledger.notice("0000000001", 1, 10) == 1  # a new fill after the reconnect
    assert ledger.reconcile("1", 6, 10) == 0
    assert ledger.delivered("1") == 6


def test_ledger_late_notice_of_a_completed_order_is_suppressed() -> None:
    """A notice arriving after reconcile already delivered the order's full fill is dropped."""
    ledger = FillLedger()
    assert ledger.reconcile("7", 10, 10) == 10
    assert ledger.notice("0000000007", 4, 10) == 0
    assert ledger.notice("0000000007", 6, 10) == 0
    assert ledger.delivered("7") == 10


def test_ledger_partial_overlap_delivers_only_the_new_part() -> None:
    """A notice partly covered by an earlier reconcile delivers the uncovered part only."""
    ledger = FillLedger()
    assert ledger.notice("9", 2, 5) == 2
    assert ledger.reconcile("9", 4, 5) == 2
    # Order complete at 5: a notice of 3 can only add the 1 share not yet delivered.
    assert ledger.notice("9", 3, 5) == 1
    assert ledger.notice("9", 0, 5) == 0


def test_backoff_delay_grows_with_jitter_and_cap() -> None:
    """Delays double per attempt, stay under the cap, and jitter takes off at most its share."""
    options = StreamOptions(reconnect_base_delay=0.5, reconnect_max_delay=4.0, reconnect_jitter=0.5)
    session = Session(
        "ws://127.0.0.1:9/",
        options,
        on_open=_never_open,
        on_text=lambda text: None,
        on_down=lambda: None,
        on_give_up=lambda error: None,
    )
    for level, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        delays = [session._delay(level) for _ in range(50)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    still = StreamOptions(reconnect_base_delay=0.5, reconnect_jitter=0.0)
    assert Session(
        "ws://127.0.0.1:9/",
        still,
        on_open=_never_open,
        on_text=lambda text: None,
        on_down=lambda: None,
        on_give_up=lambda error: None,
    )._delay(3) == pytest.approx(2.0)


async def _never_open(number: int) -> None:
    raise AssertionError("not connected in this test")
