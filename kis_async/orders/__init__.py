"""Safe order flow: the idempotency journal, placement with reconciliation, OrderService."""

from kis_async.orders.journal import (
    Claim,
    EntryState,
    JournalEntry,
    MemoryJournal,
    OrderJournal,
    SharedJournal,
    SQLiteJournal,
)
from kis_async.orders.placement import OrderPlacer, PlacementOptions, ReconcileReport
from kis_async.orders.service import (
    OrderEvent,
    OrderEvents,
    OrderService,
    PreTradeLimits,
    TrackedOrder,
)

__all__ = [
    "Claim",
    "EntryState",
    "JournalEntry",
    "MemoryJournal",
    "OrderEvent",
    "OrderEvents",
    "OrderJournal",
    "OrderPlacer",
    "OrderService",
    "PlacementOptions",
    "PostgresJournal",
    "PreTradeLimits",
    "ReconcileReport",
    "SQLiteJournal",
    "SharedJournal",
    "TrackedOrder",
]


def __getattr__(name: str) -> object:
    """``PostgresJournal`` is imported on first use: it needs the ``postgres`` extra."""
    if name == "PostgresJournal":
        from kis_async.orders.pg_journal import PostgresJournal  # noqa: PLC0415

        return PostgresJournal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
