"""The idempotency journal on PostgreSQL, for many processes (and machines) at once.

Needs the ``postgres`` extra (asyncpg); ``import kis_async`` does not import it.

* **One POST per key.** The key is the primary key; a claim is one
  ``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE state = 'not_booked' AND fingerprint =``
  statement, which PostgreSQL runs atomically against every concurrent claim of that key: one
  wins, the others read the winner's entry.
* **Who is alive.** Each journal holds one extra connection for session advisory locks. Before
  the first claim of an owner (an :class:`~kis_async.orders.placement.OrderPlacer`), it
  takes that owner's lock and keeps it until :meth:`PostgresJournal.aclose`. PostgreSQL drops
  the lock when the process dies, even by ``SIGKILL`` (its connection closes), so
  :meth:`PostgresJournal.live_owners` tells an entry being sent now from a dead process's
  leftover by reading ``pg_locks``.
* **One reconciler.** :meth:`PostgresJournal.reconcile_lease` is another advisory lock: the
  process holding it settles uncertain entries; the others wait for it or step aside.
* **Schema.** Created and migrated by the journal on :meth:`PostgresJournal.open`, under an
  advisory transaction lock, with the version kept in ``kis_async_schema``. A database
  migrated by a newer kis_async is refused rather than misread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from kis_async.models import OrderType, Side
from kis_async.orders.journal import (
    _SETTLED,
    Claim,
    EntryState,
    JournalEntry,
    _apply_update,
)

if TYPE_CHECKING:
    import asyncpg

__all__ = ["SCHEMA_VERSION", "JournalSchemaError", "PostgresJournal"]

logger = logging.getLogger("kis_async.orders")

_TABLE: Final = "kis_async_order_journal"
_COMPONENT: Final = "order_journal"
_STATES: Final = ", ".join(f"'{s.value}'" for s in EntryState)

#: Migration ``n`` brings the schema from version ``n`` to ``n + 1``; append, never edit.
_MIGRATIONS: Final[tuple[str, ...]] = (
    f"""
    CREATE TABLE {_TABLE} (
        key           TEXT PRIMARY KEY,
        fingerprint   TEXT NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ({_STATES})),
        symbol        TEXT NOT NULL,
        side          TEXT NOT NULL,
        order_type    TEXT NOT NULL,
        qty           INTEGER NOT NULL CHECK (qty > 0),
        price         TEXT,
        owner         TEXT NOT NULL,
        claimed_at    TIMESTAMPTZ NOT NULL,
        updated_at    TIMESTAMPTZ NOT NULL,
        order_id      TEXT,
        branch_no     TEXT,
        error_code    TEXT,
        error_message TEXT
    );
    CREATE INDEX {_TABLE}_state ON {_TABLE} (state, claimed_at);
    CREATE INDEX {_TABLE}_order_id ON {_TABLE} (order_id) WHERE order_id IS NOT NULL;
    """,
)
#: The schema version this module reads and writes.
SCHEMA_VERSION: Final = len(_MIGRATIONS)

_COLUMNS: Final = (
    "key, fingerprint, state, symbol, side, order_type, qty, price, owner, claimed_at, "
    "updated_at, order_id, branch_no, error_code, error_message"
)
_VALUES: Final = ", ".join(f"${i}" for i in range(1, 16))
_CLAIM: Final = (
    f"INSERT INTO {_TABLE} ({_COLUMNS}) VALUES ({_VALUES}) "  # noqa: S608 - constants only
    "ON CONFLICT (key) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS.split(", ") if c != "key")
    + f" WHERE {_TABLE}.state = '{EntryState.NOT_BOOKED.value}' "
    f"AND {_TABLE}.fingerprint = EXCLUDED.fingerprint RETURNING key"
)
_SELECT_ONE: Final = f"SELECT {_COLUMNS} FROM {_TABLE} WHERE key = $1"  # noqa: S608


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for ``name`` (namespaced to kis_async)."""
    digest = hashlib.blake2b(f"kis_async.journal:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_MIGRATE_LOCK: Final = _lock_key("migrate")
_LEASE_LOCK: Final = _lock_key("reconcile-lease")


class JournalSchemaError(RuntimeError):
    """The database holds a journal schema newer than this version of kis_async knows."""


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
        entry.claimed_at,
        entry.updated_at,
        entry.order_id,
        entry.branch_no,
        entry.error_code,
        entry.error_message,
    )


def _from_record(row: Any) -> JournalEntry:
    return JournalEntry(
        key=row["key"],
        fingerprint=row["fingerprint"],
        state=EntryState(row["state"]),
        symbol=row["symbol"],
        side=Side(row["side"]),
        order_type=OrderType(row["order_type"]),
        qty=int(row["qty"]),
        price=row["price"],
        owner=row["owner"],
        claimed_at=row["claimed_at"],
        updated_at=row["updated_at"],
        order_id=row["order_id"],
        branch_no=row["branch_no"],
        error_code=row["error_code"],
        error_message=row["error_message"],
    )


class PostgresJournal:
    """A durable journal in PostgreSQL, shared by every process that opens the same database.

    Args:
        dsn: a libpq connection string or URL (``postgresql://user@host:5432/db``). It may
            hold a password; it never appears in a repr, log line or error of this class.
        max_connections: size of the connection pool (one more connection holds the locks).
        lease_poll: seconds between attempts to take the reconciliation lease.
        connect_timeout: seconds to wait for each connection.
    """

    durable: bool = True

    def __init__(
        self,
        dsn: str,
        *,
        max_connections: int = 4,
        lease_poll: float = 0.05,
        connect_timeout: float = 10.0,
    ) -> None:
        if not isinstance(dsn, str) or not dsn.strip():
            raise ValueError("PostgresJournal needs a non-empty DSN")
        if max_connections < 1:
            raise ValueError("PostgresJournal max_connections must be >= 1")
        if not lease_poll > 0 or not connect_timeout > 0:
            raise ValueError("PostgresJournal lease_poll and connect_timeout must be positive")
        self._dsn = dsn.strip()
        self._max_connections = max_connections
        self._lease_poll = lease_poll
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._locks: Any = None  # asyncpg.Connection | None
        # The lock connection runs one statement at a time.
        self._locks_mutex = asyncio.Lock()
        self._lease_mutex = asyncio.Lock()
        self._owners: set[str] = set()
        self._open_lock = asyncio.Lock()
        self._closed = False

    async def open(self) -> None:
        """Connect, then create or migrate the schema (idempotent).

        Raises:
            RuntimeError: the journal was closed.
            JournalSchemaError: the database was migrated by a newer kis_async.
        """
        if self._closed:
            raise RuntimeError("this PostgresJournal is closed; create a new one")
        async with self._open_lock:
            if self._pool is not None:
                return
            import asyncpg  # noqa: PLC0415 - optional dependency, imported on first use

            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._max_connections,
                timeout=self._connect_timeout,
            )
            try:
                locks = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
                try:
                    async with pool.acquire() as conn:
                        await self._migrate(conn)
                except BaseException:
                    await locks.close()
                    raise
            except BaseException:
                await pool.close()
                raise
            self._pool, self._locks = pool, locks

    @staticmethod
    async def _migrate(conn: Any) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS kis_async_schema ("
                "component TEXT PRIMARY KEY, version INTEGER NOT NULL, "
                "migrated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            found = await conn.fetchval(
                "SELECT version FROM kis_async_schema WHERE component = $1", _COMPONENT
            )
            current = int(found or 0)
            if current > SCHEMA_VERSION:
                raise JournalSchemaError(
                    f"the order journal schema in this database is version {current}; this "
                    f"kis_async knows up to {SCHEMA_VERSION}: upgrade kis_async"
                )
            for version in range(current, SCHEMA_VERSION):
                await conn.execute(_MIGRATIONS[version])
                logger.info("order journal schema migrated to version %d", version + 1)
            if current < SCHEMA_VERSION:
                await conn.execute(
                    "INSERT INTO kis_async_schema (component, version) VALUES ($1, $2) "
                    "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, "
                    "migrated_at = now()",
                    _COMPONENT,
                    SCHEMA_VERSION,
                )

    async def aclose(self) -> None:
        """Close the pool and the lock connection, releasing every lock (idempotent)."""
        self._closed = True
        pool, self._pool = self._pool, None
        locks, self._locks = self._locks, None
        self._owners.clear()
        try:
            if locks is not None:
                await locks.close()
        finally:
            if pool is not None:
                await pool.close()

    async def _ready(self) -> asyncpg.Pool:
        if self._pool is None:
            await self.open()
        assert self._pool is not None
        return self._pool

    async def _lock_conn(self) -> Any:
        """The lock connection; call with ``_locks_mutex`` held. A connection found closed
        (server restart, network failure) lost its session locks: it is replaced and this
        journal's claimant locks are taken again."""
        await self._ready()
        conn: Any = self._locks
        assert conn is not None
        if conn.is_closed():
            import asyncpg  # noqa: PLC0415 - optional dependency

            conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
            self._locks = conn
            for owner in self._owners:
                await conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(owner))
            logger.warning(
                "order journal lock connection was lost; reconnected and re-took %d claimant "
                "lock(s)",
                len(self._owners),
            )
        return conn

    # -- liveness and the lease -------------------------------------------------------------

    async def _hold_owner(self, owner: str) -> None:
        if owner in self._owners:
            return
        async with self._locks_mutex:
            if owner in self._owners:
                return
            conn = await self._lock_conn()
            got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(owner))
            if not got:
                raise RuntimeError("another process is using this journal owner id")
            self._owners.add(owner)

    async def live_owners(self, owners: Collection[str]) -> set[str]:
        """Which of ``owners`` hold their liveness lock now (in any process)."""
        wanted = set(owners)
        alive = wanted & self._owners
        rest = {_unsigned_pair(_lock_key(o)): o for o in wanted - alive}
        if not rest:
            return alive
        pool = await self._ready()
        rows = await pool.fetch(
            "SELECT classid::bigint AS hi, objid::bigint AS lo FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        for row in rows:
            owner = rest.get((int(row["hi"]), int(row["lo"])))
            if owner is not None:
                alive.add(owner)
        return alive

    @contextlib.asynccontextmanager
    async def reconcile_lease(self, *, wait: float) -> AsyncIterator[bool]:
        """Hold the reconciliation lease (a session advisory lock) for the block; yields
        False when another process kept it for ``wait`` seconds."""
        async with self._lease_mutex:
            deadline = time.monotonic() + wait
            while True:
                async with self._locks_mutex:
                    conn = await self._lock_conn()
                    held = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LEASE_LOCK))
                if held or time.monotonic() >= deadline:
                    break
                await asyncio.sleep(self._lease_poll)
            try:
                yield held
            finally:
                # A closed or replaced connection took the lock with it.
                if held and not conn.is_closed() and conn is self._locks:
                    async with self._locks_mutex:
                        await conn.execute("SELECT pg_advisory_unlock($1)", _LEASE_LOCK)

    # -- the journal contract ---------------------------------------------------------------

    async def claim(self, entry: JournalEntry) -> Claim:
        """See :meth:`OrderJournal.claim`; one atomic upsert."""
        await self._hold_owner(entry.owner)
        pool = await self._ready()
        async with pool.acquire() as conn:
            while True:
                if await conn.fetchval(_CLAIM, *_to_row(entry)) is not None:
                    return Claim(True, entry)
                row = await conn.fetchrow(_SELECT_ONE, entry.key)
                if row is not None:
                    return Claim(False, _from_record(row))
                # Pruned between the two statements: claim again.

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
        """See :meth:`OrderJournal.update`; the row is locked for the read-modify-write."""
        pool = await self._ready()
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_SELECT_ONE + " FOR UPDATE", key)
            entry = None if row is None else _from_record(row)
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
            await conn.execute(
                f"UPDATE {_TABLE} SET state = $2, order_id = $3, branch_no = $4, "  # noqa: S608
                "error_code = $5, error_message = $6, updated_at = $7 WHERE key = $1",
                key,
                updated.state.value,
                updated.order_id,
                updated.branch_no,
                updated.error_code,
                updated.error_message,
                updated.updated_at,
            )
            return updated

    async def get(self, key: str) -> JournalEntry | None:
        """See :meth:`OrderJournal.get`."""
        pool = await self._ready()
        row = await pool.fetchrow(_SELECT_ONE, key)
        return None if row is None else _from_record(row)

    async def entries(self, *states: EntryState) -> list[JournalEntry]:
        """See :meth:`OrderJournal.entries`."""
        pool = await self._ready()
        if states:
            rows = await pool.fetch(
                f"SELECT {_COLUMNS} FROM {_TABLE} WHERE state = ANY($1::text[]) "  # noqa: S608
                "ORDER BY claimed_at, key",
                [s.value for s in states],
            )
        else:
            rows = await pool.fetch(
                f"SELECT {_COLUMNS} FROM {_TABLE} ORDER BY claimed_at, key"  # noqa: S608
            )
        return [_from_record(r) for r in rows]

    async def known_order_ids(self) -> set[str]:
        """See :meth:`OrderJournal.known_order_ids`."""
        pool = await self._ready()
        rows = await pool.fetch(
            f"SELECT DISTINCT order_id FROM {_TABLE} WHERE order_id IS NOT NULL"  # noqa: S608
        )
        return {str(r["order_id"]) for r in rows}

    async def prune(self, *, older_than: datetime) -> int:
        """See :meth:`~kis_async.orders.journal.MemoryJournal.prune`."""
        pool = await self._ready()
        status = await pool.execute(
            f"DELETE FROM {_TABLE} WHERE state = ANY($1::text[]) AND claimed_at < $2",  # noqa: S608
            [s.value for s in _SETTLED],
            older_than,
        )
        return int(str(status).rsplit(" ", 1)[-1])

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._pool is not None else "unopened")
        return f"PostgresJournal(state={state!r})"


def _unsigned_pair(key: int) -> tuple[int, int]:
    """``pg_locks`` shows a bigint advisory key as (classid, objid): its high and low halves."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF
