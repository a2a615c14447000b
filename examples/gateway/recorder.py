"""Worker 3: record every execution notice of the account, once, through a consumer group.

    KIS_GATEWAY_REDIS=redis://... python examples/gateway/recorder.py --db executions.db

``broker.executions(group="recorder")`` reads the gateway's execution stream as the Redis
consumer group ``recorder``: an entry is acknowledged when the next one is asked for, so a
recorder that crashes gets back only the notice it was handling, and several recorders
started with the same group share the work instead of each seeing everything. Each fill is
written to an SQLite table (no unique constraint: a duplicate would show as a second row).
"""

from __future__ import annotations

import sqlite3
import time

from _worker import parser, run, summary

from kis_async import ExecutionKind, KISBroker, KISConfig

SCHEMA = """
CREATE TABLE IF NOT EXISTS fills (
    order_id TEXT NOT NULL, cum INTEGER, symbol TEXT, qty INTEGER NOT NULL, price TEXT,
    replayed INTEGER NOT NULL, recorded_at REAL NOT NULL
)
"""


def main() -> None:
    options = parser(__doc__ or "")
    options.add_argument("--db", default="executions.db", help="the SQLite file to write")
    options.add_argument("--group", default="recorder", help="the consumer group")
    args = options.parse_args()
    db = sqlite3.connect(args.db, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(SCHEMA)
    counts = {"fills": 0, "other": 0}

    async def record() -> None:
        async with (
            KISBroker(KISConfig.from_env(), gateway=args.redis) as broker,
            broker.executions(group=args.group) as notices,
        ):
            print(f"recording execution notices as consumer group {args.group!r}", flush=True)
            async for notice in notices:
                if notice.kind is not ExecutionKind.FILLED:
                    counts["other"] += 1
                    continue
                # The order's filled quantity after this fill: (order, cum) names one fill.
                cum = notice.cursor.delivered(notice.broker_order_id) if notice.cursor else None
                # A tiny local write; an asyncio app with heavy storage would hand it to a
                # thread (anyio.to_thread) instead.
                db.execute(
                    "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        notice.broker_order_id,
                        cum,
                        notice.symbol,
                        notice.qty,
                        str(notice.price),
                        int(notice.replayed),
                        time.time(),
                    ),
                )
                counts["fills"] += 1
                print(f"fill {notice.broker_order_id} {notice.symbol} {notice.qty}", flush=True)

    try:
        run(record, args.seconds)
    finally:
        db.close()
        summary(counts)


if __name__ == "__main__":
    main()
