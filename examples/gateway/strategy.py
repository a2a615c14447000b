"""Worker 2: a strategy that places keyed orders, journaled for many processes at once.

    KIS_GATEWAY_REDIS=redis://... python examples/gateway/strategy.py [--pg-dsn postgresql://...]

Every order carries an idempotency key; the journal makes a key one POST even when several
workers (or a restarted one) place it. With ``--pg-dsn`` (or ``KIS_JOURNAL_DSN``) the journal
is :class:`PostgresJournal`, shared by every worker of the desk; without one it is an SQLite
file, shared by the processes of this machine. It buys one share of a rotating symbol every
``--interval`` seconds at market, then places its first key once more to show that the
journal answers with the same order number instead of sending a second order.

REST goes to KIS from this process; the token and the rate budget are shared through the
gateway's Redis, so any number of such workers stay under the account's limit together.
"""

from __future__ import annotations

import asyncio
import os
import uuid

from _worker import parser, run, summary

from kis_async import KISBroker, KISConfig, OrderRequest, OrderType, Side
from kis_async.orders.journal import OrderJournal, SQLiteJournal

SYMBOLS = ["005930", "000660", "035720"]


def make_journal(dsn: str | None, sqlite_path: str) -> OrderJournal:
    """PostgreSQL when a DSN is given, else an SQLite file."""
    if dsn:
        # Imported here: asyncpg is the optional `postgres` extra.
        from kis_async.orders.pg_journal import PostgresJournal  # noqa: PLC0415

        return PostgresJournal(dsn)
    return SQLiteJournal(sqlite_path)


def main() -> None:
    options = parser(__doc__ or "")
    options.add_argument("--pg-dsn", default=os.environ.get("KIS_JOURNAL_DSN") or None)
    options.add_argument(
        "--sqlite", default="strategy-journal.db", help="journal file without a DSN"
    )
    options.add_argument("--interval", type=float, default=1.0, help="seconds between orders")
    options.add_argument("--max-orders", type=int, default=10)
    args = options.parse_args()
    run_id = uuid.uuid4().hex[:8]
    placed: dict[str, str] = {}
    again: dict[str, str] = {}

    async def trade() -> None:
        journal = make_journal(args.pg_dsn, args.sqlite)
        kind = type(journal).__name__
        async with KISBroker(KISConfig.from_env(), gateway=args.redis, journal=journal) as broker:
            print(f"placing keyed orders (journal: {kind})", flush=True)
            for n in range(args.max_orders):
                key = f"example-{run_id}-{n}"
                symbol = SYMBOLS[n % len(SYMBOLS)]
                request = OrderRequest(
                    symbol, Side.BUY, 1, order_type=OrderType.MARKET, idempotency_key=key
                )
                placed[key] = await broker.place_order(request)
                print(f"{key}: bought 1 {symbol}, order {placed[key]}", flush=True)
                await asyncio.sleep(args.interval)
            if placed:
                first = next(iter(placed))
                repeat = OrderRequest(
                    SYMBOLS[0], Side.BUY, 1, order_type=OrderType.MARKET, idempotency_key=first
                )
                again[first] = await broker.place_order(repeat)
                print(f"{first} placed again: order {again[first]} (no second order)", flush=True)

    try:
        run(trade, args.seconds)
    finally:
        summary({"placed": placed, "again": again})


if __name__ == "__main__":
    main()
