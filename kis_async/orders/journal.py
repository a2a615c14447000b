"""The idempotency journal: one entry per ``idempotency_key``.

An entry is claimed atomically together with the order's fingerprint (symbol, side, type,
qty, price) before the order POST, and then moves through these states::

    in_flight ──► placed      (ODNO and branch known: KIS answered)
        │    ├──► rejected    (KIS refused the order as a business matter)
        │    ├──► not_booked  (certainly never reached KIS: the key may be claimed again)
        │    └──► unknown ──► placed | not_booked   (settled by reconciliation)

:class:`MemoryJournal` keeps entries in a dict (at-most-once within one process);
:class:`SQLiteJournal` keeps them in an SQLite file so they survive a crash and restart. Its
blocking calls run in a worker thread (``anyio.to_thread``), one at a time per journal, so no
coroutine blocks the event loop. :class:`~kis_async.orders.pg_journal.PostgresJournal` (extra
``postgres``) serves many processes at once and is a :class:`SharedJournal`: it tells which
claimants are alive and grants the reconciliation lease to one process at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol, TypeVar, runtime_checkable

from kis_async.models import OrderRequest, OrderType, Side

if TYPE_CHECKING:
    # sqlite3 and anyio are imported by SQLiteJournal when one is made: most programs use the
    # in-memory journal and should not pay for them at `import kis_async`.
    import sqlite3

    import anyio

__all__ = [
    "Claim",
    "EntryState",
    "JournalEntry",
    "MemoryJournal",
    "OrderJournal",
    "SQLiteJournal",
    "SharedJournal",
]

_T = TypeVar("_T")


class EntryState(StrEnum):
    """Where a journal entry stands."""

    IN_FLIGHT = "in_flight"
    """Claimed; the order POST is being sent (or the process died while sending)."""
    PLACED = "placed"
    """KIS booked the order; ``order_id`` and ``branch_no`` are set."""
    REJECTED = "rejected"
    """KIS refused the order; ``error_code``/``error_message`` say why."""
    UNKNOWN = "unknown"
    """The POST may have reached KIS and reconciliation could not tell."""
    NOT_BOOKED = "not_booked"
    """The order certainly was not booked; the key may be claimed (and sent) again."""


@dataclass(frozen=True, kw_only=True, slots=True)
class JournalEntry:
    """One idempotency key and what became of its order.

    Attributes:
        key: the idempotency key.
        fingerprint: :attr:`OrderRequest.fingerprint` of the order the key is bound to.
        state: see :class:`EntryState`.
        symbol, side, order_type, qty, price: the order, kept for reconciliation.
        order_id: KIS's order number (ODNO) once known.
        branch_no: KIS's forwarding branch number (KRX_FWDG_ORD_ORGNO) once known.
        error_code: the msg_cd of a rejection, or a short reason for ``unknown``.
        error_message: KIS's message for a rejection (never contains secrets).
        owner: an id of the placer process that claimed the entry.
        claimed_at: when the entry was (last) claimed, aware UTC.
        updated_at: when the entry last changed, aware UTC.
    """

    key: str
    fingerprint: str
    state: EntryState
    symbol: str
    side: Side
    order_type: OrderType
    qty: int
    price: str | None
    owner: str
    claimed_at: datetime
    updated_at: datetime
    order_id: str | None = None
    branch_no: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    @classmethod
    def for_request(
        cls, key: str, request: OrderRequest, *, owner: str, now: datetime | None = None
    ) -> JournalEntry:
        """A fresh ``in_flight`` entry for ``request``."""
        stamp = now or datetime.now(UTC)
        return cls(
            key=key,
            fingerprint=request.fingerprint,
            state=EntryState.IN_FLIGHT,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            qty=request.qty,
            price=None if request.price is None else str(request.price),
            owner=owner,
            claimed_at=stamp,
            updated_at=stamp,
        )


class Claim(NamedTuple):
    """The answer of :meth:`OrderJournal.claim`.

    Attributes:
        claimed: True when the caller now owns the key and must send the order.
        entry: the stored entry: the new ``in_flight`` one when claimed, else the existing one
            (whose fingerprint may differ: a conflict).
    """

    claimed: bool
    entry: JournalEntry


#: States from which a key may be claimed again.
_RECLAIMABLE: Final = frozenset({EntryState.NOT_BOOKED})
#: States that :meth:`prune` may forget.
_SETTLED: Final = frozenset({EntryState.PLACED, EntryState.REJECTED, EntryState.NOT_BOOKED})


@runtime_checkable
class OrderJournal(Protocol):
    """Storage for idempotency entries. Implementations must make :meth:`claim` atomic."""

    durable: bool
    """True when entries survive a process restart (then the broker reconciles on open)."""

    async def open(self) -> None:
        """Prepare the storage (idempotent)."""

    async def aclose(self) -> None:
        """Release the storage (idempotent)."""

    async def claim(self, entry: JournalEntry) -> Claim:
        """Store ``entry`` unless its key exists (in a state other than ``not_booked`` or
        with a different fingerprint); return whether it was claimed and the stored entry."""

    async def update(
        self,
        key: str,
        *,
        state: EntryState,
        order_id: str | None = None,
        branch_no: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        only_from: Collection[EntryState] | None = None,
    ) -> JournalEntry | None:
        """Move ``key`` to ``state`` (setting the given fields); when ``only_from`` is given,
        only if the entry is currently in one of those states. Returns the updated entry,
        or None when the key is missing or the guard did not hold."""

    async def get(self, key: str) -> JournalEntry | None:
        """The entry of ``key``, if any."""

    async def entries(self, *states: EntryState) -> list[JournalEntry]:
        """Entries in any of ``states`` (all entries when none given), oldest claim first."""

    async def known_order_ids(self) -> set[str]:
        """Every order number the journal has bound to a key."""


@runtime_checkable
class SharedJournal(OrderJournal, Protocol):
    """A journal that several processes use at once.

    An ``in_flight`` entry of a live claimant is being sent right now and must be left alone;
    only a dead claimant's entry is reconciled, and reconciliation runs in one process at a
    time: the holder of the lease.
    """

    async def live_owners(self, owners: Collection[str]) -> set[str]:
        """Which of ``owners`` (the :attr:`JournalEntry.owner` of claims) are alive now."""

    def reconcile_lease(self, *, wait: float) -> AbstractAsyncContextManager[bool]:
        """Hold the reconciliation lease for the block; yields False when it could not be
        had within ``wait`` seconds (another process is reconciling)."""


def _apply_update(
    entry: JournalEntry,
    *,
    state: EntryState,
    order_id: str | None,
    branch_no: str | None,
    error_code: str | None,
    error_message: str | None,
    now: datetime,
) -> JournalEntry:
    # Built directly: dataclasses.replace walks fields() on every call (a hot path).
    return JournalEntry(
        key=entry.key,
        fingerprint=entry.fingerprint,
        state=state,
        symbol=entry.symbol,
        side=entry.side,
        order_type=entry.order_type,
        qty=entry.qty,
        price=entry.price,
        owner=entry.owner,
        claimed_at=entry.claimed_at,
        updated_at=now,
        order_id=order_id if order_id is not None else entry.order_id,
        branch_no=branch_no if branch_no is not None else entry.branch_no,
        error_code=error_code,
        error_message=error_message,
    )


def _claim_decision(existing: JournalEntry | None, entry: JournalEntry) -> bool:
    if existing is None:
        return True
    return existing.fingerprint == entry.fingerprint and existing.state in _RECLAIMABLE


class MemoryJournal:
    """An in-process journal: at-most-once per key for the life of the process."""

    durable: bool = False

    def __init__(self) -> None:
        self._entries: dict[str, JournalEntry] = {}

    async def open(self) -> None:
        """Nothing to prepare."""

    async def aclose(self) -> None:
        """Entries stay readable after close; nothing to release."""

    async def claim(self, entry: JournalEntry) -> Claim:
        """Atomic because nothing here awaits between the check and the store."""
        existing = self._entries.get(entry.key)
        if _claim_decision(existing, entry):
            self._entries[entry.key] = entry
            return Claim(True, entry)
        assert existing is not None
        return Claim(False, existing)

    async def update(
        self,
        key: str,
        *,
        state: EntryState,
        order_id: str | None = None,
        branch_no: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        only_from: Collection[EntryState] | None = None,
    ) -> JournalEntry | None:
        """See :meth:`OrderJournal.update`."""
        entry = self._entries.get(key)
        if entry is None or (only_from is not None and entry.state not in only_from):
            return None
        updated = _apply_update(
            entry,
            state=state,
            order_id=order_id,
            branch_no=branch_no,
            error_code=error_code,
            error_message=error_message,
            now=datetime.now(UTC),
        )
        self._entries[key] = updated
        return updated

    async def get(self, key: str) -> JournalEntry | None:
        """See :meth:`OrderJournal.get`."""
        return self._entries.get(key)

    async def entries(self, *states: EntryState) -> list[JournalEntry]:
        """See :meth:`OrderJournal.entries`."""
        rows = [e for e in self._entries.values() if not states or e.state in states]
        return sorted(rows, key=lambda e: e.claimed_at)

    async def known_order_ids(self) -> set[str]:
        """See :meth:`OrderJournal.known_order_ids`."""
        return {e.order_id for e in self._entries.values() if e.order_id}

    async def prune(self, *, older_than: datetime) -> int:
        """Forget settled entries (placed, rejected, not booked) claimed before
        ``older_than``; ``unknown`` and ``in_flight`` entries are always kept. Returns how
        many were removed. A pruned key is free again, so keep keys for as long as a caller
        may retry with them."""
        doomed = [
            k for k, e in self._entries.items() if e.state in _SETTLED and e.claimed_at < older_than
        ]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def __repr__(self) -> str:
        return f"MemoryJournal(entries={len(self._entries)})"


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS order_journal (
    key           TEXT PRIMARY KEY,
    fingerprint   TEXT NOT NULL,
    state         TEXT NOT NULL,
    symbol        TEXT NOT NULL,
    side          TEXT NOT NULL,
    order_type    TEXT NOT NULL,
    qty           INTEGER NOT NULL,
    price         TEXT,
    owner         TEXT NOT NULL,
    claimed_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    order_id      TEXT,
    branch_no     TEXT,
    error_code    TEXT,
    error_message TEXT
);
CREATE INDEX IF NOT EXISTS order_journal_state ON order_journal (state);
CREATE INDEX IF NOT EXISTS order_journal_order_id ON order_journal (order_id);
"""
_COLUMNS: Final = (
    "key, fingerprint, state, symbol, side, order_type, qty, price, owner, claimed_at, "
    "updated_at, order_id, branch_no, error_code, error_message"
)


def _to_row(entry: JournalEntry) -> tuple[Any, ...]:
    return (
        entry.key,
        entry.fingerprint,
        entry.state.value,
        entry.symbol,
        entry.side.value,
        entry.order_type.value,
        entry.qty,
        entry.price,
        entry.owner,
        # UTC everywhere, so the text columns sort (and compare) in time order.
        entry.claimed_at.astimezone(UTC).isoformat(),
        entry.updated_at.astimezone(UTC).isoformat(),
        entry.order_id,
        entry.branch_no,
        entry.error_code,
        entry.error_message,
    )


def _from_row(row: tuple[Any, ...]) -> JournalEntry:
    return JournalEntry(
        key=row[0],
        fingerprint=row[1],
        state=EntryState(row[2]),
        symbol=row[3],
        side=Side(row[4]),
        order_type=OrderType(row[5]),
        qty=int(row[6]),
        price=row[7],
        owner=row[8],
        claimed_at=datetime.fromisoformat(row[9]),
        updated_at=datetime.fromisoformat(row[10]),
        order_id=row[11],
        branch_no=row[12],
        error_code=row[13],
        error_message=row[14],
    )


class SQLiteJournal:
    """A durable journal in an SQLite file (WAL, ``synchronous=FULL``).

    A claim is one ``BEGIN IMMEDIATE`` transaction, so it is atomic across tasks and across
    processes sharing the file. It is committed to disk before the order POST is sent: after
    a crash, the entry is found ``in_flight`` and the next broker reconciles it on open.

    Args:
        path: the database file; its parent directory is created if missing.
        busy_timeout: seconds to wait for another process's write lock.
    """

    durable: bool = True

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self._path = Path(path).expanduser()
        self._busy_timeout = busy_timeout
        import anyio  # noqa: PLC0415 (deferred: see the TYPE_CHECKING block)

        self._conn: sqlite3.Connection | None = None
        self._closed = False
        # One statement at a time per journal: the connection is shared by worker threads.
        self._limiter: anyio.CapacityLimiter = anyio.CapacityLimiter(1)
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    async def open(self) -> None:
        """Create the file and schema if needed (idempotent).

        Raises:
            RuntimeError: the journal was closed.
        """
        if self._closed:
            raise RuntimeError("this SQLiteJournal is closed; create a new one")
        if self._conn is not None:
            return
        self._conn = await self._run(self._connect)

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._run(conn.close)

    def _connect(self) -> sqlite3.Connection:
        import sqlite3  # noqa: PLC0415 (deferred: see the TYPE_CHECKING block)

        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout,
            isolation_level=None,  # explicit transactions only
            check_same_thread=False,  # used from worker threads, one at a time
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    async def _run(self, fn: Callable[[], _T]) -> _T:
        def locked() -> _T:
            with self._lock:
                return fn()

        import anyio.to_thread  # noqa: PLC0415 (deferred: see the TYPE_CHECKING block)

        # Not abandoned on cancellation: a claim either commits or does not, and we wait.
        return await anyio.to_thread.run_sync(locked, limiter=self._limiter)

    async def _conn_ready(self) -> sqlite3.Connection:
        if self._conn is None:
            await self.open()
        assert self._conn is not None
        return self._conn

    async def claim(self, entry: JournalEntry) -> Claim:
        """See :meth:`OrderJournal.claim`; one ``BEGIN IMMEDIATE`` transaction."""
        conn = await self._conn_ready()

        def work() -> Claim:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM order_journal WHERE key = ?",  # noqa: S608
                    (entry.key,),
                ).fetchone()
                existing = None if row is None else _from_row(row)
                if _claim_decision(existing, entry):
                    conn.execute(
                        f"INSERT OR REPLACE INTO order_journal ({_COLUMNS}) "  # noqa: S608
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        _to_row(entry),
                    )
                    result = Claim(True, entry)
                else:
                    assert existing is not None
                    result = Claim(False, existing)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return result

        return await self._run(work)

    async def update(
        self,
        key: str,
        *,
        state: EntryState,
        order_id: str | None = None,
        branch_no: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        only_from: Collection[EntryState] | None = None,
    ) -> JournalEntry | None:
        """See :meth:`OrderJournal.update`; a read-modify-write in one transaction."""
        conn = await self._conn_ready()

        def work() -> JournalEntry | None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM order_journal WHERE key = ?",  # noqa: S608
                    (key,),
                ).fetchone()
                entry = None if row is None else _from_row(row)
                if entry is None or (only_from is not None and entry.state not in only_from):
                    conn.execute("COMMIT")
                    return None
                updated = _apply_update(
                    entry,
                    state=state,
                    order_id=order_id,
                    branch_no=branch_no,
                    error_code=error_code,
                    error_message=error_message,
                    now=datetime.now(UTC),
                )
                conn.execute(
                    "UPDATE order_journal SET state = ?, order_id = ?, branch_no = ?, "
                    "error_code = ?, error_message = ?, updated_at = ? WHERE key = ?",
                    (
                        updated.state.value,
                        updated.order_id,
                        updated.branch_no,
                        updated.error_code,
                        updated.error_message,
                        updated.updated_at.isoformat(),
                        key,
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return updated

        return await self._run(work)

    async def get(self, key: str) -> JournalEntry | None:
        """See :meth:`OrderJournal.get`."""
        conn = await self._conn_ready()

        def work() -> JournalEntry | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM order_journal WHERE key = ?",  # noqa: S608
                (key,),
            ).fetchone()
            return None if row is None else _from_row(row)

        return await self._run(work)

    async def entries(self, *states: EntryState) -> list[JournalEntry]:
        """See :meth:`OrderJournal.entries`."""
        conn = await self._conn_ready()
        wanted = [s.value for s in states]

        def work() -> list[JournalEntry]:
            if wanted:
                marks = ", ".join("?" for _ in wanted)
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM order_journal WHERE state IN ({marks}) "  # noqa: S608
                    "ORDER BY claimed_at",
                    wanted,
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM order_journal ORDER BY claimed_at"  # noqa: S608
                ).fetchall()
            return [_from_row(r) for r in rows]

        return await self._run(work)

    async def known_order_ids(self) -> set[str]:
        """See :meth:`OrderJournal.known_order_ids`."""
        conn = await self._conn_ready()

        def work() -> set[str]:
            rows = conn.execute(
                "SELECT DISTINCT order_id FROM order_journal WHERE order_id IS NOT NULL"
            ).fetchall()
            return {str(r[0]) for r in rows}

        return await self._run(work)

    async def prune(self, *, older_than: datetime) -> int:
        """See :meth:`MemoryJournal.prune`."""
        conn = await self._conn_ready()
        settled = [s.value for s in _SETTLED]

        def work() -> int:
            marks = ", ".join("?" for _ in settled)
            cursor = conn.execute(
                f"DELETE FROM order_journal WHERE state IN ({marks}) "  # noqa: S608
                "AND claimed_at < ?",
                [*settled, older_than.astimezone(UTC).isoformat()],
            )
            return int(cursor.rowcount)

        return await self._run(work)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._conn is not None else "unopened")
        return f"SQLiteJournal(path={str(self._path)!r}, state={state!r})"
