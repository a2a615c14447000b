"""Safe order flow: the idempotency journal, placement with reconciliation, OrderService."""

from kis_async.orders.journal import (
    Claim,
    EntryState,
    JournalEntry,
    MemoryJournal,
    OrderJournal,
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
    "PreTradeLimits",
    "ReconcileReport",
    "SQLiteJournal",
    "TrackedOrder",
]
