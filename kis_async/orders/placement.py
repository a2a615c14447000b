"""Order placement with idempotency keys and reconciliation of uncertain outcomes.

KIS has no client order id. When an order POST may have reached KIS but no answer came back
(a read timeout, a dropped connection, a 5xx without a business code), re-sending could buy
twice. :class:`OrderPlacer` never re-sends such an order. It looks for it instead: it polls
today's orders (inquire-daily-ccld) a bounded number of times for an order that matches the
request (symbol, side, type, qty, price), that no journal entry already owns and that was not
placed before the attempt began, and it also looks at the acceptance notices of the execution
stream when one is live. Exactly one candidate is bound to the key; zero or several leave the
entry ``unknown`` and raise :class:`~kis_async.errors.OrderStateUnknownError`.
:meth:`OrderPlacer.reconcile` settles such entries later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Protocol
from uuid import uuid4

from kis_async.errors import (
    AuthenticationError,
    BrokerClosedError,
    BrokerError,
    BrokerTimeoutError,
    InvalidOrderError,
    OrderRejectedError,
    OrderStateUnknownError,
    RateLimitError,
)
from kis_async.models import KST, Execution, ExecutionKind, Order, OrderRequest
from kis_async.orders.journal import EntryState, JournalEntry, OrderJournal, SharedJournal
from kis_async.validation import check_number

if TYPE_CHECKING:
    from kis_async.telemetry import MetricsRecorder

__all__ = ["OrderPlacer", "PlacementOptions", "ReconcileReport"]

logger = logging.getLogger("kis_async.orders")

#: How many order numbers placed without a key we remember (to exclude them from matching).
_UNKEYED_MEMORY: Final = 10_000
#: Shared journals: how long to wait for another live process's POST of the same key, and for
#: the reconciliation lease, and how often to look.
_SHARED_WAIT: Final = 30.0
_SHARED_POLL: Final = 0.05


class _PlacedOrder(Protocol):
    """What :meth:`RestClient.place_order` returns (``kis_async.rest.orders.PlacedOrder``)."""

    @property
    def order_id(self) -> str: ...

    @property
    def branch_no(self) -> str: ...


class _Rest(Protocol):
    """The part of :class:`~kis_async.rest.client.RestClient` the placer uses."""

    async def place_order(self, request: OrderRequest) -> _PlacedOrder: ...

    async def get_orders(
        self, *, start: date | None = None, end: date | None = None
    ) -> list[Order]: ...

    def remember_order(self, order_id: str, branch_no: str) -> None: ...


class _Streams(Protocol):
    """The part of :class:`~kis_async.stream.manager.StreamManager` the placer uses."""

    @property
    def executions_active(self) -> bool: ...

    def recent_executions(self) -> list[Execution]: ...


@dataclass(frozen=True, kw_only=True)
class PlacementOptions:
    """Tuning of the reconciliation of uncertain order outcomes.

    Attributes:
        reconcile_attempts: polls of today's orders after an uncertain POST before giving up
            with :class:`~kis_async.errors.OrderStateUnknownError`.
        reconcile_interval: seconds between those polls.
        clock_tolerance: an order whose ``ordered_at`` is more than this many seconds before
            the claim of the key is not a candidate (it existed before the attempt). Generous
            by default because our clock and KIS's may differ.
        not_booked_after: :meth:`OrderPlacer.reconcile` declares an entry "not booked" (so
            its key may send again) only when a poll finds no candidate at least this many
            seconds after the claim, long after any POST still in transit would have landed.
        check_session: before sending, check that the order's venue takes its order type in
            the session running now (:func:`kis_async.calendar.check_session`), so an
            after-market order is not sent at 10:00; a mismatch raises
            :class:`~kis_async.errors.InvalidOrderError` and nothing is sent.
        clock: the time the session check uses (an aware datetime); default the wall clock.
            Tests against the simulator pass ``sim.market_now``.
    """

    reconcile_attempts: int = 5
    reconcile_interval: float = 1.0
    clock_tolerance: float = 60.0
    not_booked_after: float = 60.0
    check_session: bool = False
    clock: Callable[[], datetime] | None = None

    def __post_init__(self) -> None:
        if self.reconcile_attempts < 1:
            raise ValueError("PlacementOptions.reconcile_attempts must be >= 1")
        for name in ("reconcile_interval", "clock_tolerance", "not_booked_after"):
            check_number(f"PlacementOptions.{name}", getattr(self, name), allow_minimum=True)


@dataclass(frozen=True)
class ReconcileReport:
    """What :meth:`OrderPlacer.reconcile` did.

    Attributes:
        bound: ``(idempotency_key, order_id)`` pairs bound to an order found at KIS.
        not_booked: keys proven never booked; placing them again sends the order.
        unknown: keys still unknown (no candidate yet, or several).
    """

    bound: tuple[tuple[str, str], ...] = ()
    not_booked: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def settled(self) -> int:
        """How many entries this run settled."""
        return len(self.bound) + len(self.not_booked)


@dataclass(frozen=True)
class _Candidate:
    order_id: str
    branch_no: str | None
    ordered_at: datetime | None = None


class OrderPlacer:
    """Sends orders, at most once per idempotency key, and reconciles uncertain outcomes.

    Args:
        rest: the REST client (``place_order``, ``get_orders``, ``remember_order``).
        journal: where keys are claimed; durable journals survive restarts.
        streams: the stream manager, for acceptance notices of the execution stream.
        options: reconciliation tuning; see :class:`PlacementOptions`.
        session_check: the check :attr:`PlacementOptions.check_session` runs (raises
            :class:`~kis_async.errors.InvalidOrderError`); the broker passes one that knows
            KIS's trading calendar.
        metrics: counts uncertain POST outcomes (``broker.metrics()["orders"]``).
    """

    def __init__(
        self,
        *,
        rest: _Rest,
        journal: OrderJournal,
        streams: _Streams,
        options: PlacementOptions | None = None,
        session_check: Callable[[OrderRequest], Awaitable[object]] | None = None,
        metrics: MetricsRecorder | None = None,
    ) -> None:
        self._rest = rest
        self._metrics = metrics
        self._session_check = session_check
        self._journal = journal
        self._streams = streams
        self.options = options or PlacementOptions()
        # Identifies this placer's claims: an ``in_flight`` entry of another owner is a
        # leftover of a process that died mid-POST (a shared journal also says whether that
        # owner is still alive, i.e. sending it right now).
        self.owner = uuid4().hex
        self._shared = journal if isinstance(journal, SharedJournal) else None
        self._tasks: dict[str, tuple[str, asyncio.Task[str]]] = {}
        self._posting: dict[object, tuple[str, asyncio.Event]] = {}
        self._unkeyed_ids: dict[str, None] = {}
        self._reconcile_lock = asyncio.Lock()

    # -- placing ----------------------------------------------------------------------------

    async def place(self, request: OrderRequest) -> str:
        """Send ``request`` (at most once per idempotency key) and return its order number.

        Without a key the order is sent once; a failure propagates unchanged. With a key:
        concurrent calls share one POST and its outcome; a repeat with the same order returns
        the known order number (or replays the rejection) without sending; an uncertain
        outcome is reconciled, never re-sent. The work runs in a task of its own, so
        cancelling a caller does not interrupt a POST or the bookkeeping after it.

        Raises:
            InvalidOrderError: the key is bound to a different order.
            OrderRejectedError: KIS refused the order (now or for an earlier call).
            OrderStateUnknownError: the order may be booked and reconciliation could not
                tell; the entry stays ``unknown``.
            BrokerError: other failures where the order certainly was not booked.
        """
        key = request.idempotency_key
        if key is None:
            return await self._send_unkeyed(request)
        running = self._tasks.get(key)
        if running is not None:
            fingerprint, task = running
            if fingerprint != request.fingerprint:
                raise _conflict(key)
            return await asyncio.shield(task)
        loop = asyncio.get_running_loop()
        # The first caller waits on a plain future the task resolves itself (as shield would,
        # but one event-loop turn sooner); cancelling the caller cancels only that future.
        waiter: asyncio.Future[str] = loop.create_future()
        task = loop.create_task(
            self._run_keyed(key, request, waiter), name="kis-async-order-placement"
        )
        self._tasks[key] = (request.fingerprint, task)
        task.add_done_callback(lambda t: self._task_done(key, t, waiter))
        return await waiter

    async def _run_keyed(self, key: str, request: OrderRequest, waiter: asyncio.Future[str]) -> str:
        """The placement task: :meth:`_place_keyed`, its outcome also handed to ``waiter``
        (after the key is released, so a caller placing again sees no running task)."""
        task = asyncio.current_task()
        try:
            order_id = await self._place_keyed(key, request)
        except asyncio.CancelledError:
            self._forget(key, task)
            if not waiter.done():
                waiter.cancel()
            raise
        except BaseException as exc:
            self._forget(key, task)
            if not waiter.done():
                waiter.set_exception(exc)
            raise
        self._forget(key, task)
        if not waiter.done():
            waiter.set_result(order_id)
        return order_id

    def _forget(self, key: str, task: asyncio.Task[Any] | None) -> None:
        current = self._tasks.get(key)
        if current is not None and current[1] is task:
            del self._tasks[key]

    def _task_done(self, key: str, task: asyncio.Task[str], waiter: asyncio.Future[str]) -> None:
        self._forget(key, task)
        if task.cancelled():
            if not waiter.done():  # cancelled before it could run: the caller must not hang
                waiter.cancel()
            return
        task.exception()  # retrieved here; every waiter re-raises it

    async def _send_unkeyed(self, request: OrderRequest) -> str:
        await self._check_session(request)
        token, done = object(), asyncio.Event()
        self._posting[token] = (request.fingerprint, done)
        try:
            placed = await self._rest.place_order(request)
            self._unkeyed_ids[placed.order_id] = None
            while len(self._unkeyed_ids) > _UNKEYED_MEMORY:
                del self._unkeyed_ids[next(iter(self._unkeyed_ids))]
        finally:
            done.set()
            del self._posting[token]
        self._remember(placed.order_id, placed.branch_no)
        return placed.order_id

    async def _place_keyed(self, key: str, request: OrderRequest) -> str:
        # At most two rounds: a second claim only after reconciliation proved "not booked".
        for _ in range(2):
            fresh = JournalEntry.for_request(key, request, owner=self.owner)
            claim = await self._journal.claim(fresh)
            if claim.claimed:
                return await self._send_claimed(claim.entry, request)
            entry = claim.entry
            if entry.fingerprint != request.fingerprint:
                raise _conflict(key)
            done = self._outcome(entry)
            if done is not None:
                return done
            if entry.state is EntryState.IN_FLIGHT and await self._owner_alive(entry):
                # Another live process is sending this very order: wait for its outcome.
                settled = await self._await_owner(entry)
                done = self._outcome(settled)
                if done is not None:
                    return done
                if settled.state is EntryState.NOT_BOOKED:
                    continue
                entry = settled
            if entry.state is not EntryState.NOT_BOOKED:
                # unknown, or in_flight left by a process that died mid-POST
                async with self._reconcile_lock, self._lease() as held:
                    settled = await self._settle_one(entry) if held else entry
                done = self._outcome(settled)
                if done is not None:
                    return done
                if settled.state is not EntryState.NOT_BOOKED:
                    raise OrderStateUnknownError(
                        f"the order of idempotency key {key!r} may or may not be booked; it "
                        "was not re-sent. Call reconcile() later, then place it again with "
                        "this key",
                        idempotency_key=key,
                    )
        raise OrderStateUnknownError(
            f"the order of idempotency key {key!r} could not be settled; it was not re-sent",
            idempotency_key=key,
        )

    def _outcome(self, entry: JournalEntry) -> str | None:
        """The order number of a placed entry; raises for a rejected one; else None."""
        if entry.state is EntryState.PLACED and entry.order_id:
            self._remember(entry.order_id, entry.branch_no)
            return entry.order_id
        if entry.state is EntryState.REJECTED:
            raise OrderRejectedError(
                f"the order of idempotency key {entry.key!r} was rejected earlier"
                + (f": [{entry.error_code}] {entry.error_message or ''}".rstrip()),
                msg_cd=entry.error_code,
                msg=entry.error_message,
            )
        return None

    async def _owner_alive(self, entry: JournalEntry) -> bool:
        """True when a shared journal says the claimant of ``entry`` (another placer, maybe
        in another process) is alive, so its ``in_flight`` entry is being sent now."""
        if self._shared is None or entry.owner == self.owner:
            return False
        return entry.owner in await self._shared.live_owners([entry.owner])

    async def _await_owner(self, entry: JournalEntry) -> JournalEntry:
        """Poll the journal until ``entry`` leaves ``in_flight`` or its owner dies (bounded)."""
        deadline = time.monotonic() + _SHARED_WAIT
        current = entry
        while time.monotonic() < deadline:
            await asyncio.sleep(_SHARED_POLL)
            found = await self._journal.get(entry.key)
            if found is None:
                return current
            current = found
            if current.state is not EntryState.IN_FLIGHT or not await self._owner_alive(current):
                return current
        raise OrderStateUnknownError(
            f"another process has been sending the order of idempotency key {entry.key!r} "
            f"for {_SHARED_WAIT:.0f}s; it was not sent again",
            idempotency_key=entry.key,
        )

    @contextlib.asynccontextmanager
    async def _lease(self) -> AsyncIterator[bool]:
        """The reconciliation lease of a shared journal (always held otherwise)."""
        if self._shared is None:
            yield True
            return
        async with self._shared.reconcile_lease(wait=_SHARED_WAIT) as held:
            if not held:
                logger.warning("reconcile: another process held the lease too long; skipped")
            yield held

    async def _send_claimed(self, entry: JournalEntry, request: OrderRequest) -> str:
        key = entry.key
        token, done = object(), asyncio.Event()
        self._posting[token] = (entry.fingerprint, done)
        cause: BaseException
        try:
            try:
                # Checked only when the order is about to be sent: a repeat of a key whose
                # order is already placed returns its number at any hour.
                await self._check_session(request)
                placed = await self._rest.place_order(request)
            except OrderRejectedError as exc:
                await self._journal.update(
                    key, state=EntryState.REJECTED, error_code=exc.msg_cd, error_message=exc.msg
                )
                raise
            except (RateLimitError, AuthenticationError, InvalidOrderError) as exc:
                # Refused before KIS's order system saw it: the key may send again.
                await self._journal.update(
                    key, state=EntryState.NOT_BOOKED, error_code=type(exc).__name__
                )
                raise
            except BrokerTimeoutError as exc:
                if exc.request_sent:
                    cause = exc
                else:
                    await self._journal.update(
                        key, state=EntryState.NOT_BOOKED, error_code="BrokerTimeoutError"
                    )
                    raise
            except asyncio.CancelledError:
                await asyncio.shield(self._mark_unknown(key, "cancelled"))
                raise
            except Exception as exc:
                cause = exc
            else:
                await self._journal.update(
                    key,
                    state=EntryState.PLACED,
                    order_id=placed.order_id,
                    branch_no=placed.branch_no,
                )
                self._remember(placed.order_id, placed.branch_no)
                return placed.order_id
        finally:
            done.set()
            del self._posting[token]
        return await self._resolve_uncertain(entry, cause)

    async def _check_session(self, request: OrderRequest) -> None:
        if self.options.check_session and self._session_check is not None:
            await self._session_check(request)

    async def _mark_unknown(self, key: str, reason: str) -> None:
        await self._journal.update(
            key,
            state=EntryState.UNKNOWN,
            error_code=reason,
            only_from=(EntryState.IN_FLIGHT,),
        )

    async def _resolve_uncertain(self, entry: JournalEntry, cause: BaseException) -> str:
        key = entry.key
        logger.warning(
            "order POST outcome uncertain (%s); not re-sending, reconciling key=%r",
            type(cause).__name__,
            key,
        )
        if self._metrics is not None:
            self._metrics.order("uncertain")
        await self._mark_unknown(key, type(cause).__name__)
        found: list[_Candidate] = []
        polled = False
        for attempt in range(self.options.reconcile_attempts):
            if attempt:
                await asyncio.sleep(self.options.reconcile_interval)
            await self._wait_posting(entry.fingerprint)
            try:
                orders = await self._fetch_orders(entry.claimed_at)
            except BrokerClosedError:
                logger.warning("broker closed while reconciling key=%r; left unknown", key)
                break
            except BrokerError as exc:
                logger.warning("reconcile poll failed (%s) for key=%r", type(exc).__name__, key)
                continue
            polled = True
            found = self._candidates(entry, orders, await self._known_ids())
            if len(found) != 0:
                break
        if len(found) == 1:
            # With a shared journal another process may be binding orders right now: take
            # the lease and look again, so one order is never bound to two keys.
            async with self._lease() as held:
                if held and self._shared is not None:
                    found = self._candidates(entry, orders, await self._known_ids())
                bound = await self._bind(entry, found[0]) if held and len(found) == 1 else None
            if bound is not None:
                return bound
        detail = (
            f"{len(found)} matching orders"
            if found
            else ("no matching order yet" if polled else "today's orders could not be read")
        )
        raise OrderStateUnknownError(
            f"the order of idempotency key {key!r} may or may not be booked ({detail}); it was "
            "not re-sent. Call reconcile() later, then place it again with this key",
            idempotency_key=key,
        ) from cause

    async def _bind(self, entry: JournalEntry, candidate: _Candidate) -> str | None:
        updated = await self._journal.update(
            entry.key,
            state=EntryState.PLACED,
            order_id=candidate.order_id,
            branch_no=candidate.branch_no,
            only_from=(EntryState.UNKNOWN, EntryState.IN_FLIGHT),
        )
        if updated is None:
            current = await self._journal.get(entry.key)
            if current is not None and current.state is EntryState.PLACED:
                return current.order_id
            return None
        logger.info("reconciled key=%r to order %s", entry.key, candidate.order_id)
        self._remember(candidate.order_id, candidate.branch_no)
        return candidate.order_id

    # -- reconciliation ---------------------------------------------------------------------

    async def reconcile(self) -> ReconcileReport:
        """Settle ``unknown`` entries (and ``in_flight`` ones left by a dead process).

        One poll of the orders since the oldest such claim. An entry with exactly one
        candidate is bound to it; one with none, polled at least
        :attr:`PlacementOptions.not_booked_after` seconds after its claim, becomes
        ``not_booked`` (placing it again sends it); the rest stay ``unknown``. Makes no
        request when nothing is pending.

        Raises:
            BrokerError: today's orders could not be read.
        """
        async with self._reconcile_lock, self._lease() as held:
            pending = await self._pending() if held else []
            if not pending:
                return ReconcileReport()
            await self._wait_posting(None)
            since = min(e.claimed_at for e in pending)
            orders = await self._fetch_orders(since)
            known = await self._known_ids()
            bound: list[tuple[str, str]] = []
            not_booked: list[str] = []
            unknown: list[str] = []
            for entry in pending:
                settled = await self._settle_with(entry, orders, known)
                if settled.state is EntryState.PLACED and settled.order_id:
                    bound.append((entry.key, settled.order_id))
                    known.add(settled.order_id)
                elif settled.state is EntryState.NOT_BOOKED:
                    not_booked.append(entry.key)
                else:
                    unknown.append(entry.key)
            if len(unknown) > 1:
                paired = await self._pair_identical(
                    [e for e in pending if e.key in unknown], orders, known
                )
                bound.extend(paired)
                unknown = [k for k in unknown if k not in dict(paired)]
        report = ReconcileReport(tuple(bound), tuple(not_booked), tuple(unknown))
        logger.info(
            "reconcile: %d bound, %d not booked, %d still unknown",
            len(report.bound),
            len(report.not_booked),
            len(report.unknown),
        )
        return report

    async def _pair_identical(
        self, entries: list[JournalEntry], orders: list[Order], known: set[str]
    ) -> list[tuple[str, str]]:
        """Bind N unknown entries of one identical order to exactly N candidates.

        Several keys sending the same order (equal chunks, say) that all lost their answer
        see each other's orders as candidates. When every one of them sees the same N
        candidates, the orders are interchangeable: they are bound oldest claim to oldest
        order. Any other shape stays unknown.
        """
        groups: dict[str, list[JournalEntry]] = {}
        for entry in entries:
            groups.setdefault(entry.fingerprint, []).append(entry)
        paired: list[tuple[str, str]] = []
        for group in groups.values():
            if len(group) < 2:
                continue
            found = [self._candidates(e, orders, known) for e in group]
            ids = {frozenset(c.order_id for c in f) for f in found}
            if len(ids) != 1 or len(found[0]) != len(group):
                continue
            oldest = datetime.min.replace(tzinfo=UTC)
            candidates = sorted(found[0], key=lambda c: (c.ordered_at or oldest, c.order_id))
            for entry, candidate in zip(
                sorted(group, key=lambda e: e.claimed_at), candidates, strict=True
            ):
                order_id = await self._bind(entry, candidate)
                if order_id is not None:
                    paired.append((entry.key, order_id))
                    known.add(order_id)
        return paired

    async def reconcile_on_open(self) -> None:
        """Run :meth:`reconcile` when a durable journal opens; failures are logged, not
        raised (the entries stay ``unknown`` and ``place_order`` with their key will not
        re-send them)."""
        try:
            await self.reconcile()
        except BrokerError as exc:
            logger.warning(
                "reconcile on open failed (%s); unknown orders stay unknown", type(exc).__name__
            )

    async def _pending(self) -> list[JournalEntry]:
        entries = await self._journal.entries(EntryState.UNKNOWN, EntryState.IN_FLIGHT)
        entries = [e for e in entries if e.key not in self._tasks]
        if self._shared is None:
            return entries
        # Another live process's in_flight entry is being sent now: not ours to settle.
        others = {e.owner for e in entries if e.state is EntryState.IN_FLIGHT}
        alive = await self._shared.live_owners(others - {self.owner}) if others else set()
        return [e for e in entries if e.state is not EntryState.IN_FLIGHT or e.owner not in alive]

    async def _settle_one(self, entry: JournalEntry) -> JournalEntry:
        """Poll (bounded) and settle one entry found ``unknown``/stale ``in_flight``."""
        await self._wait_posting(None)
        last = entry
        for attempt in range(self.options.reconcile_attempts):
            if attempt:
                await asyncio.sleep(self.options.reconcile_interval)
            try:
                orders = await self._fetch_orders(entry.claimed_at)
            except BrokerClosedError:
                return last
            except BrokerError as exc:
                logger.warning(
                    "reconcile poll failed (%s) for key=%r", type(exc).__name__, entry.key
                )
                continue
            last = await self._settle_with(entry, orders, await self._known_ids())
            if last.state in (EntryState.PLACED, EntryState.NOT_BOOKED):
                return last
            if last.error_code == "ambiguous":
                return last
        return last

    async def _settle_with(
        self, entry: JournalEntry, orders: list[Order], known: set[str]
    ) -> JournalEntry:
        found = self._candidates(entry, orders, known)
        if len(found) == 1:
            order_id = await self._bind(entry, found[0])
            current = await self._journal.get(entry.key)
            if order_id is not None and current is not None:
                return current
        age = (datetime.now(UTC) - entry.claimed_at).total_seconds()
        if not found and age >= self.options.not_booked_after:
            updated = await self._journal.update(
                entry.key,
                state=EntryState.NOT_BOOKED,
                error_code="not_booked",
                only_from=(EntryState.UNKNOWN, EntryState.IN_FLIGHT),
            )
            if updated is not None:
                logger.info("reconciled key=%r: never booked", entry.key)
                return updated
        reason = "ambiguous" if len(found) > 1 else "no_match"
        updated = await self._journal.update(
            entry.key,
            state=EntryState.UNKNOWN,
            error_code=reason,
            only_from=(EntryState.UNKNOWN, EntryState.IN_FLIGHT),
        )
        current = updated or await self._journal.get(entry.key)
        return current if current is not None else entry

    # -- matching ---------------------------------------------------------------------------

    async def _fetch_orders(self, since: datetime) -> list[Order]:
        start = since.astimezone(KST).date()
        today = datetime.now(KST).date()
        if start < today:
            return await self._rest.get_orders(start=start, end=today)
        return await self._rest.get_orders()

    async def _known_ids(self) -> set[str]:
        return await self._journal.known_order_ids() | set(self._unkeyed_ids)

    async def _wait_posting(self, fingerprint: str | None) -> None:
        """Wait until other POSTs of this process (of the same order, or all) have finished
        and recorded their order numbers, so reconciliation cannot take their order."""
        events = [
            done
            for fp, done in list(self._posting.values())
            if fingerprint is None or fp == fingerprint
        ]
        for done in events:
            await done.wait()

    def _candidates(
        self, entry: JournalEntry, orders: Iterable[Order], known: Collection[str]
    ) -> list[_Candidate]:
        since = entry.claimed_at - timedelta(seconds=self.options.clock_tolerance)
        price = None if entry.price is None else Decimal(entry.price)
        found: dict[str, _Candidate] = {}
        for order in orders:
            if order.broker_order_id in known or not _order_matches(entry, price, order, since):
                continue
            candidate = _Candidate(order.broker_order_id, order.branch_no, order.ordered_at)
            found.setdefault(order.broker_order_id, candidate)
        if self._streams.executions_active:
            for notice in self._streams.recent_executions():
                if notice.broker_order_id in known or not _notice_matches(
                    entry, price, notice, since
                ):
                    continue
                previous = found.get(notice.broker_order_id)
                if previous is None or previous.branch_no is None:
                    found[notice.broker_order_id] = _Candidate(
                        notice.broker_order_id, notice.branch_no or None, notice.time
                    )
        return list(found.values())

    def _remember(self, order_id: str, branch_no: str | None) -> None:
        if branch_no:
            self._rest.remember_order(order_id, branch_no)

    async def drain(self, grace: float = 10.0) -> None:
        """Wait (bounded) for keyed placements still running to finish their bookkeeping;
        called after the REST client closed, so they end quickly and leave the journal
        right (``unknown`` where the outcome is uncertain) before the journal closes."""
        tasks = [task for _, task in self._tasks.values() if not task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)

    def __repr__(self) -> str:
        return f"OrderPlacer(journal={self._journal!r}, in_flight={len(self._tasks)})"


def _conflict(key: str) -> InvalidOrderError:
    return InvalidOrderError(
        f"idempotency key {key!r} is already bound to a different order; use a new key"
    )


def _is_derived(original_order_id: str | None) -> bool:
    """True for rows/notices of a modification or cancellation (they name an original)."""
    return bool(original_order_id and original_order_id.strip().strip("0"))


def _price_matches(entry: JournalEntry, price: Decimal | None, seen: Decimal | None) -> bool:
    if price is None:
        return seen is None or seen == 0
    return seen is not None and seen == price


def _order_matches(
    entry: JournalEntry, price: Decimal | None, order: Order, since: datetime
) -> bool:
    if order.symbol != entry.symbol or order.side is not entry.side or order.qty != entry.qty:
        return False
    if _is_derived(order.original_order_id):
        return False
    if order.order_type is not None and order.order_type is not entry.order_type:
        return False
    if not _price_matches(entry, price, order.price):
        return False
    return order.ordered_at is None or order.ordered_at >= since


def _notice_matches(
    entry: JournalEntry, price: Decimal | None, notice: Execution, since: datetime
) -> bool:
    if notice.kind is not ExecutionKind.ACCEPTED or notice.symbol != entry.symbol:
        return False
    if notice.side is not None and notice.side is not entry.side:
        return False
    qty = notice.order_qty if notice.order_qty else notice.qty
    if qty != entry.qty or _is_derived(notice.original_order_id):
        return False
    if notice.order_type is not None and notice.order_type is not entry.order_type:
        return False
    # Market-type acceptances may carry 0 as the price; a priced order must match exactly.
    if price is not None and notice.price not in (None, Decimal(0)) and notice.price != price:
        return False
    return notice.time is None or notice.time >= since
