"""PostgresJournal on a real PostgreSQL: schema versioning, liveness, the lease, and several
OS processes placing the same keys against the simulator (real sockets, 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from kis_async import KISBroker, Mode
from kis_async.orders.journal import EntryState, JournalEntry
from kis_async.orders.pg_journal import SCHEMA_VERSION, JournalSchemaError, PostgresJournal
from kis_async.orders.placement import PlacementOptions
from kis_async.sim import KISSimulator

WORKER = Path(__file__).with_name("_journal_worker.py")
QUICK = PlacementOptions(
    reconcile_attempts=4, reconcile_interval=0.1, clock_tolerance=30.0, not_booked_after=0.0
)
STEP = 60.0  # generous bound for polling the journal


def _request(key: str) -> Any:
    """The order the workers send for ``key`` (same rule as _journal_worker.request_for)."""
    from kis_async import OrderRequest, Side

    qty = 1 + sum(key.encode()) % 3
    return OrderRequest("005930", Side.BUY, qty, price=70_000, idempotency_key=key)


@pytest.fixture
async def fast_sim() -> AsyncIterator[KISSimulator]:
    """A paper simulator with no rate limiter and no one-token-a-minute rule."""
    async with KISSimulator(
        seed=7, mode=Mode.PAPER, rate_limit=False, quote_interval=None, token_issue_interval=0.0
    ).serve(port=0) as running:
        yield running


def booked(sim: KISSimulator) -> list[Any]:
    return [o for o in sim.exchange.orders if o.kind == "new"]


@pytest.fixture
def spawn(children: Any) -> Any:
    """``await spawn(mode, sim, dsn, *keys)`` starts a _journal_worker.py process."""

    async def start(mode: str, sim: KISSimulator, dsn: str, *keys: str) -> Any:
        cfg = sim.config()
        config = {
            "app_key": cfg.app_key,
            "app_secret": cfg.app_secret.get_secret_value(),
            "account_id": sim.account_id,
            "hts_id": sim.hts_id,
            "mode": cfg.mode.value,
            "rest_url": cfg.rest_url,
            "ws_url": cfg.ws_url,
        }
        return await children(WORKER, mode, json.dumps(config), dsn, *keys)

    return start


async def test_schema_is_created_versioned_and_migrated_once(postgres_dsn: str) -> None:
    """open() creates the table and records version 1; four journals opening at once on a
    fresh database migrate it once; a reopen changes nothing."""
    journals = [PostgresJournal(postgres_dsn) for _ in range(4)]
    await asyncio.gather(*(j.open() for j in journals))
    for journal in journals:
        await journal.aclose()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        rows = await conn.fetch("SELECT component, version FROM kis_async_schema")
        assert [tuple(r) for r in rows] == [("order_journal", SCHEMA_VERSION)]
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'kis_async_order_journal'"
        )
        assert {"key", "fingerprint", "state", "owner", "order_id"} <= {
            r["column_name"] for r in columns
        }
    finally:
        await conn.close()


async def test_newer_schema_is_refused(postgres_dsn: str) -> None:
    """A database migrated by a newer kis_async is refused, not misread."""
    first = PostgresJournal(postgres_dsn)
    await first.open()
    await first.aclose()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute("UPDATE kis_async_schema SET version = version + 1")
    finally:
        await conn.close()
    journal = PostgresJournal(postgres_dsn)
    with pytest.raises(JournalSchemaError, match="upgrade kis_async"):
        await journal.open()
    await journal.aclose()


async def test_constraints_guard_the_table(postgres_dsn: str) -> None:
    """The key is unique and the state is one of the five, whoever writes the table."""
    journal = PostgresJournal(postgres_dsn)
    await journal.open()
    await journal.claim(JournalEntry.for_request("k", _request("k"), owner="o"))
    await journal.aclose()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO kis_async_order_journal SELECT * FROM kis_async_order_journal"
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE kis_async_order_journal SET state = 'sent'")
    finally:
        await conn.close()


async def test_dsn_password_never_shown(postgres_server: Any) -> None:
    """The DSN's password is in neither the repr nor the error of a failed connection."""
    secret = "s3cret-Pa55"
    journal = PostgresJournal(
        f"postgresql://nobody:{secret}@127.0.0.1:{postgres_server.port}/missing_db",
        connect_timeout=5.0,
    )
    assert secret not in repr(journal)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - asyncpg's error type varies
        await journal.open()
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    await journal.aclose()


async def test_bad_arguments_raise_before_connecting() -> None:
    """An empty DSN or a zero pool is refused at construction."""
    with pytest.raises(ValueError, match="DSN"):
        PostgresJournal("  \n")
    with pytest.raises(ValueError, match="max_connections"):
        PostgresJournal("postgresql://u@127.0.0.1/db", max_connections=0)


async def test_liveness_follows_the_claimant_connection(postgres_dsn: str) -> None:
    """An owner that claimed through journal A is alive seen from B until A closes."""
    a, b = PostgresJournal(postgres_dsn), PostgresJournal(postgres_dsn)
    await a.open()
    await b.open()
    try:
        await a.claim(JournalEntry.for_request("k", _request("k"), owner="owner-a"))
        assert await b.live_owners(["owner-a", "owner-x"]) == {"owner-a"}
        await a.aclose()
        assert await b.live_owners(["owner-a"]) == set()
    finally:
        await a.aclose()
        await b.aclose()


async def test_lost_lock_connection_is_replaced_and_claimants_stay_alive(
    postgres_dsn: str, postgres_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """When the server ends the lock connection, the journal reconnects on next use, takes
    its claimants' locks again (they are alive again for others) and claims go on."""
    a, b = PostgresJournal(postgres_dsn), PostgresJournal(postgres_dsn)
    try:
        await a.claim(JournalEntry.for_request("k1", _request("k1"), owner="owner-a"))
        admin = await asyncpg.connect(postgres_server.dsn())
        try:
            pids = await admin.fetch(
                "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1",
                postgres_dsn.rsplit("/", 1)[-1],
            )
            assert len({r["pid"] for r in pids}) == 1
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pids[0]["pid"])
        finally:
            await admin.close()
        for _ in range(200):
            if await b.live_owners(["owner-a"]) == set():
                break
            await asyncio.sleep(0.02)
        assert await b.live_owners(["owner-a"]) == set()
        claimed = await a.claim(JournalEntry.for_request("k2", _request("k2"), owner="owner-2"))
        assert claimed.claimed
        assert await b.live_owners(["owner-a", "owner-2"]) == {"owner-a", "owner-2"}
        assert "lock connection was lost" in caplog.text
    finally:
        await a.aclose()
        await b.aclose()


async def test_lease_is_held_by_one_journal_at_a_time(postgres_dsn: str) -> None:
    """While A holds the lease B cannot have it; B gets it once A leaves the block."""
    a, b = PostgresJournal(postgres_dsn), PostgresJournal(postgres_dsn)
    try:
        async with a.reconcile_lease(wait=1.0) as held_a:
            assert held_a
            async with b.reconcile_lease(wait=0.3) as held_b:
                assert not held_b
        async with b.reconcile_lease(wait=1.0) as held_b:
            assert held_b
    finally:
        await a.aclose()
        await b.aclose()


async def test_four_processes_same_keys_one_post_each(
    fast_sim: KISSimulator, postgres_dsn: str, spawn: Any
) -> None:
    """4 OS processes place the same 20 keys at the same instant: 20 POSTs reach KIS, and
    every process gets the same order number for each key."""
    keys = [f"batch-{i:02d}" for i in range(20)]
    workers = [await spawn("place", fast_sim, postgres_dsn, *keys) for _ in range(4)]
    for worker in workers:
        worker.go()
    results = [await w.result() for w in workers]
    maps = [r["ids"] for r in results]
    assert all(m == maps[0] for m in maps)
    assert len(set(maps[0].values())) == 20
    assert fast_sim.stats.orders_received == 20
    assert sorted(o.order_id for o in booked(fast_sim)) == sorted(maps[0].values())
    journal = PostgresJournal(postgres_dsn)
    try:
        placed = await journal.entries(EntryState.PLACED)
        assert {e.key: e.order_id for e in placed} == maps[0]
    finally:
        await journal.aclose()


async def test_process_killed_after_post_is_reconciled_by_the_lease_holder(
    fast_sim: KISSimulator, postgres_dsn: str, spawn: Any
) -> None:
    """A process SIGKILLed after KIS booked its order leaves the entry in_flight with a dead
    owner; three reconciling processes race and exactly one (the lease holder) binds it to
    the booked order; placing the key again returns that order without a POST."""
    dying = await spawn("die-after-post", fast_sim, postgres_dsn, "crash-1")
    dying.go()
    await dying.killed()
    (order,) = booked(fast_sim)
    journal = PostgresJournal(postgres_dsn)
    try:
        entry = await journal.get("crash-1")
        assert entry is not None
        assert entry.state is EntryState.IN_FLIGHT
        assert await journal.live_owners([entry.owner]) == set()

        reconcilers = [await spawn("reconcile", fast_sim, postgres_dsn) for _ in range(3)]
        for worker in reconcilers:
            worker.go()
        reports = [await w.result() for w in reconcilers]
        bound = [pair for r in reports for pair in r["bound"]]
        assert bound == [["crash-1", order.order_id]]
        settled = await journal.get("crash-1")
        assert settled is not None
        assert (settled.state, settled.order_id) == (EntryState.PLACED, order.order_id)

        again = await spawn("place", fast_sim, postgres_dsn, "crash-1")
        again.go()
        assert (await again.result())["ids"] == {"crash-1": order.order_id}
        assert fast_sim.stats.orders_received == 1
    finally:
        await journal.aclose()


async def test_process_killed_before_post_is_sent_once_afterwards(
    fast_sim: KISSimulator, postgres_dsn: str, spawn: Any
) -> None:
    """A process SIGKILLed between its claim and the POST: the entry is found not booked by
    another process and the key is then sent exactly once (by two racing processes)."""
    dying = await spawn("die-before-post", fast_sim, postgres_dsn, "crash-2")
    dying.go()
    await dying.killed()
    assert booked(fast_sim) == []
    workers = [await spawn("place", fast_sim, postgres_dsn, "crash-2") for _ in range(2)]
    for worker in workers:
        worker.go()
    ids = [(await w.result())["ids"]["crash-2"] for w in workers]
    assert ids[0] == ids[1]
    assert [o.order_id for o in booked(fast_sim)] == [ids[0]]
    assert fast_sim.stats.orders_received == 1


async def test_live_process_in_flight_is_left_alone_and_awaited(
    fast_sim: KISSimulator, postgres_dsn: str, spawn: Any
) -> None:
    """While another live process's POST is slow, this process's reconcile() does not touch
    its in_flight entry, and placing the same key waits for it and returns its order."""
    worker = await spawn("place", fast_sim, postgres_dsn, "slow-1")
    fast_sim.faults.delay_responses(2.0, count=1)
    worker.go()
    journal = PostgresJournal(postgres_dsn)
    async with KISBroker(
        fast_sim.config(requests_per_second=None), journal=journal, placement_options=QUICK
    ) as broker:
        for _ in range(int(STEP / 0.02)):
            entry = await journal.get("slow-1")
            if entry is not None:
                break
            await asyncio.sleep(0.02)
        assert entry is not None
        assert entry.state is EntryState.IN_FLIGHT
        report = await broker.reconcile()
        assert report.settled == 0
        still = await journal.get("slow-1")
        assert still is not None
        assert still.state is EntryState.IN_FLIGHT
        mine = await broker.place_order(_request("slow-1"))
    theirs = (await worker.result())["ids"]["slow-1"]
    assert mine == theirs
    assert fast_sim.stats.orders_received == 1
