"""Quick start: a price, the deposit and the holdings.

    python examples/quickstart.py

Runs against the embedded simulator, or against your account when KIS_* is set.
"""

from __future__ import annotations

import asyncio

from _common import connect


async def main() -> None:
    async with connect() as broker:
        snapshot = await broker.get_price("005930")
        print(f"005930 {snapshot.price:,} won ({snapshot.change_rate:+}%)")

        book = await broker.get_orderbook("005930")
        if book.best_bid and book.best_ask:
            print(f"best bid {book.best_bid.price:,} / best ask {book.best_ask.price:,}")

        cash = await broker.get_cash()
        print(f"cash {cash:,} won")

        positions = await broker.get_stock_balance()
        for p in positions:
            print(f"{p.symbol} {p.name or ''}: {p.qty} shares, avg {p.avg_price}, P&L {p.pnl}")
        if not positions:
            print("no holdings")


if __name__ == "__main__":
    asyncio.run(main())
