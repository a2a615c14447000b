"""Journal semantics, the same for MemoryJournal, SQLiteJournal and PostgresJournal (the
``journal`` fixture), plus SQLite durability."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kis_async.models import OrderRequest, Side
from kis_async.orders.journal import (
    EntryState,
    JournalEntry,
    MemoryJournal,
    OrderJournal,
    SharedJournal,
    SQLiteJournal,
)
from kis_async.orders.pg_journal import PostgresJournal

BUY = OrderRequest("005930", Side.BUY, 10, price=70_000, idempotency_key="k1")
OTHER = OrderRequest("005930", Side.BUY, 11, price=70_000, idempotency_key="k1")


def entry(key: str = "k1", request: OrderRequest = BUY, owner: str = "me") -> JournalEntry:
    return JournalEntry.for_request(key, request, owner=owner)


def test_every_journal_satisfies_the_protocol(tmp_path: Path) -> None:
    """All three are OrderJournals; SQLite and PostgreSQL are durable; only PostgreSQL is
    a SharedJournal (liveness of claimants and a reconciliation lease)."""
    pg = PostgresJournal("postgresql://u@127.0.0.1:1/db")
    assert isinstance(MemoryJournal(), OrderJournal)
    assert isinstance(SQLiteJournal(tmp_path / "x.db"), OrderJournal)
    assert isinstance(pg, OrderJournal)
    assert isinstance(pg, SharedJournal)
    assert not isinstance(SQLiteJournal(tmp_path / "x.db"), SharedJournal)
    assert MemoryJournal.durable is False
    assert SQLiteJournal.durable is True
    assert PostgresJournal.durable is True


async def test_first_claim_wins_and_second_sees_the_entry(journal: Any) -> None:
    """A new key is claimed; a second claim of it returns the stored in-flight entry."""
    first = await journal.claim(entry())
    assert first.claimed
    assert first.entry.state is EntryState.IN_FLIGHT
    second = await journal.claim(entry(owner="other"))
    assert not second.claimed
    assert second.entry.owner == "me"
    assert second.entry.fingerprint == BUY.fingerprint


async def test_claim_with_different_order_returns_existing_fingerprint(journal: Any) -> None:
    """A claim of a known key with another order is refused and exposes the stored order."""
    await journal.claim(entry())
    result = await journal.claim(entry(request=OTHER))
    assert not result.claimed
    assert result.entry.fingerprint == BUY.fingerprint != OTHER.fingerprint


async def test_update_moves_state_and_keeps_fields(journal: Any) -> None:
    """placed sets the order id and branch; later updates keep them unless given."""
    await journal.claim(entry())
    placed = await journal.update(
        "k1", state=EntryState.PLACED, order_id="0000001234", branch_no="00950"
    )
    assert placed is not None
    assert (placed.state, placed.order_id, placed.branch_no) == (
        EntryState.PLACED,
        "0000001234",
        "00950",
    )
    again = await journal.get("k1")
    assert again == placed
    assert await journal.known_order_ids() == {"0000001234"}


async def test_update_changes_only_what_it_names(journal: Any) -> None:
    """An update rewrites state, error fields and updated_at; every other field (the order,
    owner, claim time, known order id and branch) comes through unchanged."""
    claimed = entry()
    await journal.claim(claimed)
    await journal.update("k1", state=EntryState.UNKNOWN, order_id="0000000777", branch_no="1")
    rejected = await journal.update(
        "k1", state=EntryState.REJECTED, error_code="APBK0919", error_message="잔고 부족\n"
    )
    assert rejected is not None
    changed = {"state", "error_code", "error_message", "updated_at", "order_id", "branch_no"}
    for field in dataclasses.fields(JournalEntry):
        if field.name not in changed:
            assert getattr(rejected, field.name) == getattr(claimed, field.name), field.name
    assert (rejected.order_id, rejected.branch_no) == ("0000000777", "1")
    assert (rejected.error_code, rejected.error_message) == ("APBK0919", "잔고 부족\n")
    assert rejected.updated_at >= claimed.updated_at


async def test_update_guard_refuses_wrong_state(journal: Any) -> None:
    """only_from makes the update a compare-and-set."""
    await journal.claim(entry())
    await journal.update("k1", state=EntryState.PLACED, order_id="1")
    refused = await journal.update(
        "k1", state=EntryState.NOT_BOOKED, only_from=(EntryState.UNKNOWN,)
    )
    assert refused is None
    current = await journal.get("k1")
    assert current is not None
    assert current.state is EntryState.PLACED
    assert await journal.update("missing", state=EntryState.PLACED) is None


async def test_not_booked_entry_can_be_claimed_again_only_with_same_order(journal: Any) -> None:
    """not_booked releases the key for the same order; another order still conflicts."""
    await journal.claim(entry())
    await journal.update("k1", state=EntryState.NOT_BOOKED)
    assert not (await journal.claim(entry(request=OTHER))).claimed
    again = await journal.claim(entry(owner="new"))
    assert again.claimed
    assert again.entry.state is EntryState.IN_FLIGHT
    assert again.entry.owner == "new"


@pytest.mark.parametrize("state", [EntryState.PLACED, EntryState.REJECTED, EntryState.UNKNOWN])
async def test_final_and_unknown_entries_are_not_reclaimable(
    journal: Any, state: EntryState
) -> None:
    """placed, rejected and unknown keys never send again."""
    await journal.claim(entry())
    await journal.update("k1", state=state)
    assert not (await journal.claim(entry())).claimed


async def test_entries_filter_by_state_oldest_first(journal: Any) -> None:
    """entries() filters by state and orders by claim time."""
    for key in ("a", "b", "c"):
        await journal.claim(entry(key))
        await asyncio.sleep(0.002)
    await journal.update("b", state=EntryState.UNKNOWN)
    assert [e.key for e in await journal.entries()] == ["a", "b", "c"]
    assert [e.key for e in await journal.entries(EntryState.UNKNOWN)] == ["b"]
    in_flight = await journal.entries(EntryState.IN_FLIGHT, EntryState.UNKNOWN)
    assert [e.key for e in in_flight] == ["a", "b", "c"]


async def test_fifty_concurrent_claims_one_winner(journal: Any) -> None:
    """Claiming one key from 50 tasks at once yields exactly one claim."""
    results = await asyncio.gather(*(journal.claim(entry(owner=str(i))) for i in range(50)))
    assert sum(r.claimed for r in results) == 1


async def test_sqlite_entries_survive_restart(tmp_path: Path) -> None:
    """Entries written before close are read back, field for field, by a new instance."""
    path = tmp_path / "nested" / "journal.db"
    first = SQLiteJournal(path)
    await first.open()
    await first.claim(entry("k1"))
    await first.claim(entry("k2"))
    placed = await first.update("k1", state=EntryState.PLACED, order_id="42", branch_no="00950")
    await first.update("k2", state=EntryState.REJECTED, error_code="APBK0919", error_message="x")
    await first.aclose()

    second = SQLiteJournal(path)
    await second.open()
    try:
        assert await second.get("k1") == placed
        rejected = await second.get("k2")
        assert rejected is not None
        assert (rejected.state, rejected.error_code) == (EntryState.REJECTED, "APBK0919")
        assert rejected.side is Side.BUY
        assert rejected.price == "70000"
        assert not (await second.claim(entry("k1"))).claimed
    finally:
        await second.aclose()


async def test_sqlite_claim_is_atomic_across_connections(tmp_path: Path) -> None:
    """Two journals on one file (two processes) racing for a key: one claim wins."""
    path = tmp_path / "shared.db"
    a, b = SQLiteJournal(path), SQLiteJournal(path)
    await a.open()
    await b.open()
    try:
        results = await asyncio.gather(
            *(j.claim(entry(owner=str(i))) for i, j in enumerate([a, b] * 10))
        )
        assert sum(r.claimed for r in results) == 1
    finally:
        await a.aclose()
        await b.aclose()


async def test_sqlite_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """SQLite work runs off the event-loop thread."""
    journal = SQLiteJournal(tmp_path / "t.db")
    seen: list[int] = []
    original = journal._run

    async def spy(fn: Any) -> Any:
        def wrapped() -> Any:
            seen.append(threading.get_ident())
            return fn()

        return await original(wrapped)

    journal._run = spy  # type: ignore[method-assign]
    await journal.open()
    await journal.claim(entry())
    await journal.aclose()
    assert seen
    assert threading.get_ident() not in seen


async def test_sqlite_closed_journal_cannot_reopen(tmp_path: Path) -> None:
    """open() after aclose() raises RuntimeError; aclose is idempotent."""
    journal = SQLiteJournal(tmp_path / "c.db")
    await journal.open()
    await journal.aclose()
    await journal.aclose()
    with pytest.raises(RuntimeError):
        await journal.open()
    assert "closed" in repr(journal)


async def test_prune_forgets_only_old_settled_entries(journal: Any) -> None:
    """prune() drops old placed/rejected/not_booked entries and keeps unknown/in-flight."""
    old = datetime.now(UTC) - timedelta(days=3)
    for key, state in [
        ("placed", EntryState.PLACED),
        ("rejected", EntryState.REJECTED),
        ("free", EntryState.NOT_BOOKED),
        ("unknown", EntryState.UNKNOWN),
        ("flight", EntryState.IN_FLIGHT),
    ]:
        await journal.claim(dataclasses.replace(entry(key), claimed_at=old))
        if state is not EntryState.IN_FLIGHT:
            await journal.update(key, state=state, order_id=f"id-{key}")
    await journal.claim(entry("recent"))
    await journal.update("recent", state=EntryState.PLACED, order_id="id-recent")
    removed = await journal.prune(older_than=datetime.now(UTC) - timedelta(days=1))
    assert removed == 3
    assert sorted(e.key for e in await journal.entries()) == ["flight", "recent", "unknown"]
    assert await journal.known_order_ids() == {"id-unknown", "id-recent"}
