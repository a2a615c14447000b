"""A worker process for the multi-process journal tests (run as a script, not collected).

    python _journal_worker.py MODE CONFIG_JSON DSN [KEYS...]

It opens a KISBroker against the simulator described by CONFIG_JSON with a PostgresJournal
on DSN, authenticates, prints ``ready`` and waits for a line on stdin before acting, so the
parent can start several workers at the same instant. Modes:

* ``place``: place one keyed order per KEY concurrently; print ``{"ids": {key: order_id}}``.
* ``die-after-post``: place KEYS[0]; the process SIGKILLs itself as soon as KIS answered,
  before the journal records the order number (the entry stays ``in_flight``).
* ``die-before-post``: claim KEYS[0], then SIGKILL itself before the POST is sent.
* ``reconcile``: run ``broker.reconcile()`` (and not on open); print
  ``{"bound": [...], "not_booked": [...]}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

from kis_async import KISBroker, KISConfig, OrderRequest, Side
from kis_async.orders.journal import Claim, EntryState, JournalEntry
from kis_async.orders.pg_journal import PostgresJournal
from kis_async.orders.placement import PlacementOptions

QUICK = PlacementOptions(
    reconcile_attempts=4, reconcile_interval=0.1, clock_tolerance=30.0, not_booked_after=0.0
)


def request_for(key: str) -> OrderRequest:
    """The order every worker sends for ``key`` (the same in every process)."""
    qty = 1 + sum(key.encode()) % 3
    return OrderRequest("005930", Side.BUY, qty, price=70_000, idempotency_key=key)


class _DyingJournal(PostgresJournal):
    """Kills the process at one point of the order flow (a crash, not an exception)."""

    def __init__(self, dsn: str, *, die_at: str) -> None:
        super().__init__(dsn)
        self._die_at = die_at

    async def claim(self, entry: JournalEntry) -> Claim:
        result = await super().claim(entry)
        if self._die_at == "claim" and result.claimed:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    async def update(self, key: str, *, state: EntryState, **fields: Any) -> JournalEntry | None:
        if self._die_at == "placed" and state is EntryState.PLACED:
            os.kill(os.getpid(), signal.SIGKILL)
        return await super().update(key, state=state, **fields)


class _ExplicitReconcile(PostgresJournal):
    """Not reconciled on open (``durable=False``), so the explicit reconcile() reports it."""

    durable = False


def emit(payload: object) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def main(mode: str, config_json: str, dsn: str, keys: list[str]) -> None:
    config = KISConfig(**json.loads(config_json), token_cache_dir=None, requests_per_second=None)
    die_at = {"die-after-post": "placed", "die-before-post": "claim"}.get(mode)
    journal: PostgresJournal
    if die_at is not None:
        journal = _DyingJournal(dsn, die_at=die_at)
    elif mode == "reconcile":
        journal = _ExplicitReconcile(dsn)
    else:
        journal = PostgresJournal(dsn)
    async with KISBroker(config, journal=journal, placement_options=QUICK) as broker:
        await broker.authenticate()
        emit("ready")
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if mode == "reconcile":
            report = await broker.reconcile()
            emit({"bound": [list(p) for p in report.bound], "not_booked": list(report.not_booked)})
            return
        ids = await asyncio.gather(*(broker.place_order(request_for(k)) for k in keys))
        emit({"ids": dict(zip(keys, ids, strict=True))})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
