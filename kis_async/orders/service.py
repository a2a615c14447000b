"""OrderService: submit, follow, modify and cancel orders through any :class:`BrokerPort`.

Example::

    async with KISBroker(config) as broker, OrderService(broker) as orders:
        tracked = await orders.submit("005930", Side.BUY, 10, price=70_000)
        if await tracked.wait_filled(timeout=30):
            fill_price = tracked.avg_fill_price
        else:
            await orders.cancel(tracked)

Every submitted order carries an idempotency key (generated when none is given), so
:meth:`KISBroker.place_order` sends it at most once. A :class:`TrackedOrder` follows its own
execution notices (fills, modifications, cancellation) from the broker's ``executions()``
stream; without a stream (no ``hts_id``) it is kept current by polling today's orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Self
from uuid import uuid4

from kis_async.errors import BrokerError, InvalidOrderError
from kis_async.models import (
    Execution,
    ExecutionKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from kis_async.port import AsyncClosing, BrokerPort, Stream
from kis_async.validation import check_order_id

__all__ = ["OrderEvent", "OrderEvents", "OrderService", "PreTradeLimits", "TrackedOrder"]

logger = logging.getLogger("kis_async.orders")

#: Notices for order numbers not (yet) tracked are kept for this many order numbers, so a
#: notice that overtakes the order POST's answer is applied once the order is tracked.
_ORPHAN_ORDERS: Final = 1_000
_ORPHANS_PER_ORDER: Final = 100
#: Events kept per tracked order (an order has a handful; this only bounds a pathology).
_HISTORY_LIMIT: Final = 10_000


@dataclass(frozen=True, kw_only=True)
class PreTradeLimits:
    """Checks made before an order is sent; a breach raises
    :class:`~kis_async.errors.InvalidOrderError` and nothing is sent.

    Attributes:
        max_notional_per_order: qty × price must not exceed this (won). For market-type
            orders the price is the day's upper limit (what KIS reserves), read with
            ``get_price``.
        max_position_per_symbol: for buys, held shares + open tracked buys + this order must
            not exceed this. Holdings are read once with ``get_stock_balance`` and then kept
            current from the fills of tracked orders (``OrderService.refresh_positions()``
            re-reads them).
        max_orders_per_minute: orders submitted through this service in any 60-s window.
    """

    max_notional_per_order: Decimal | int | None = None
    max_position_per_symbol: int | None = None
    max_orders_per_minute: int | None = None

    def __post_init__(self) -> None:
        notional = self.max_notional_per_order
        if notional is not None and (
            isinstance(notional, bool)
            or not isinstance(notional, Decimal | int)
            or not Decimal(notional).is_finite()
            or notional <= 0
        ):
            raise ValueError("PreTradeLimits.max_notional_per_order must be a finite number > 0")
        if self.max_position_per_symbol is not None and self.max_position_per_symbol <= 0:
            raise ValueError("PreTradeLimits.max_position_per_symbol must be > 0")
        if self.max_orders_per_minute is not None and self.max_orders_per_minute <= 0:
            raise ValueError("PreTradeLimits.max_orders_per_minute must be > 0")


@dataclass(frozen=True, kw_only=True)
class OrderEvent:
    """A change of a :class:`TrackedOrder`, with its state right after the change.

    Attributes:
        execution: the notice (or the order row turned into one) that caused the change;
            None for a change found by polling.
        order_id: the order's current order number.
        status: the status after the change.
        filled_qty: shares filled so far.
        remaining_qty: shares still open.
        avg_fill_price: average fill price so far, None before the first fill.
    """

    execution: Execution | None
    order_id: str
    status: OrderStatus
    filled_qty: int
    remaining_qty: int
    avg_fill_price: Decimal | None


class OrderEvents(AsyncClosing):
    """``async for event in tracked.events()``: every event of the order from its start,
    then live ones; ends after the event that completes the order. Also an async context
    manager with ``aclose()``."""

    def __init__(self, order: TrackedOrder) -> None:
        self._order = order
        self._index = 0
        self._closed = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> OrderEvent:
        while True:
            if self._closed:
                raise StopAsyncIteration
            history = self._order._history
            if self._index < len(history):
                event = history[self._index]
                self._index += 1
                return event
            if self._order.is_done:
                self._closed = True
                raise StopAsyncIteration
            await self._order._changed()

    async def aclose(self) -> None:
        """Stop iterating."""
        self._closed = True


class TrackedOrder:
    """An order that follows its own fills, modifications and cancellation.

    Built by :class:`OrderService` (``submit``, ``track``, ``open_orders``); its state is
    updated from execution notices (or polling) and only read by you.
    """

    def __init__(
        self,
        *,
        order_id: str,
        symbol: str,
        side: Side,
        qty: int,
        order_type: OrderType | None = None,
        price: Decimal | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        self._order_ids: list[str] = [order_id]
        self._symbol = symbol
        self._side = side
        self._qty = qty
        self._order_type = order_type
        self._price = price
        self._key = idempotency_key
        self._status = OrderStatus.OPEN
        self._filled = 0
        self._cancelled = 0
        self._avg: Decimal | None = None
        self._history: list[OrderEvent] = []
        self._wakeup = asyncio.Event()

    # -- state ------------------------------------------------------------------------------

    @property
    def order_id(self) -> str:
        """The current order number (a modification gives the order a new one)."""
        return self._order_ids[-1]

    @property
    def order_ids(self) -> tuple[str, ...]:
        """Every order number this order has had, oldest first."""
        return tuple(self._order_ids)

    @property
    def symbol(self) -> str:
        """The KRX code."""
        return self._symbol

    @property
    def side(self) -> Side:
        """BUY or SELL."""
        return self._side

    @property
    def qty(self) -> int:
        """The ordered quantity."""
        return self._qty

    @property
    def order_type(self) -> OrderType | None:
        """The order division, when known."""
        return self._order_type

    @property
    def price(self) -> Decimal | None:
        """The current limit price (None for market-type orders)."""
        return self._price

    @property
    def idempotency_key(self) -> str | None:
        """The key the order was placed with (None when rebuilt from an order number)."""
        return self._key

    @property
    def status(self) -> OrderStatus:
        """Where the order stands."""
        return self._status

    @property
    def filled_qty(self) -> int:
        """Shares filled so far."""
        return self._filled

    @property
    def cancelled_qty(self) -> int:
        """Shares cancelled."""
        return self._cancelled

    @property
    def remaining_qty(self) -> int:
        """Shares still open (0 once the order is done)."""
        if self._status is OrderStatus.REJECTED:
            return 0
        return max(0, self._qty - self._filled - self._cancelled)

    @property
    def avg_fill_price(self) -> Decimal | None:
        """Average fill price, None before the first fill."""
        return self._avg

    @property
    def is_done(self) -> bool:
        """True once filled, cancelled or rejected."""
        return self._status.is_done

    # -- waiting ----------------------------------------------------------------------------

    async def _changed(self) -> None:
        await self._wakeup.wait()

    async def wait_done(self, timeout: float | None = None) -> OrderStatus:  # noqa: ASYNC109
        """Wait until the order is filled, cancelled or rejected; return the final status.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
        """
        async with asyncio.timeout(timeout):
            while not self.is_done:
                await self._changed()
        return self._status

    async def wait_filled(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until the order is done; True when it was completely filled, False when it
        ended otherwise (cancelled or rejected, possibly after partial fills).

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
        """
        return await self.wait_done(timeout) is OrderStatus.FILLED

    def events(self) -> OrderEvents:
        """Every event of this order (from the start), then live ones until it is done."""
        return OrderEvents(self)

    # -- updates (by the service) ------------------------------------------------------------

    def _notify(self, execution: Execution | None) -> None:
        self._history.append(
            OrderEvent(
                execution=execution,
                order_id=self.order_id,
                status=self._status,
                filled_qty=self._filled,
                remaining_qty=self.remaining_qty,
                avg_fill_price=self._avg,
            )
        )
        if len(self._history) > _HISTORY_LIMIT:
            del self._history[0]
        wakeup, self._wakeup = self._wakeup, asyncio.Event()
        wakeup.set()

    def _add_order_id(self, order_id: str, price: Decimal | None = None) -> bool:
        if price is not None and price > 0:
            self._price = price
        if order_id in self._order_ids:
            return False
        self._order_ids.append(order_id)
        return True

    def _settle_status(self) -> None:
        if self._status is OrderStatus.REJECTED:
            return
        if self._filled >= self._qty:
            self._status = OrderStatus.FILLED
        elif self.remaining_qty == 0:
            self._status = OrderStatus.CANCELLED
        elif self._filled > 0:
            self._status = OrderStatus.PARTIALLY_FILLED
        else:
            self._status = OrderStatus.OPEN

    def _apply(self, execution: Execution) -> int:
        """Apply a notice; return the newly filled quantity (for position keeping)."""
        if self.is_done:
            return 0
        kind = execution.kind
        own = execution.broker_order_id in self._order_ids
        newly_filled = 0
        if kind is ExecutionKind.FILLED and own:
            new_total = min(self._qty - self._cancelled, self._filled + max(execution.qty, 0))
            newly_filled = max(0, new_total - self._filled)
            if newly_filled and execution.price is not None:
                cost = (self._avg or Decimal(0)) * self._filled + execution.price * newly_filled
                self._avg = cost / new_total
            self._filled = new_total
        elif kind is ExecutionKind.MODIFIED:
            self._add_order_id(execution.broker_order_id, execution.price)
        elif kind is ExecutionKind.CANCELLED:
            open_qty = self.remaining_qty
            part = execution.qty if 0 < execution.qty < open_qty else open_qty
            self._cancelled += part
        elif kind is ExecutionKind.REJECTED and own and not _names_original(execution):
            self._status = OrderStatus.REJECTED
        self._settle_status()
        self._notify(execution)
        return newly_filled

    def _sync(self, rows: list[Order]) -> int:
        """Set the state from today's order rows; return the newly filled quantity.

        The rows of this order and of its modifications (rows naming one of its numbers as
        the original, other than cancellation rows) add up to the logical order: their
        fills are its fills, their open quantities its remaining quantity, and whatever is
        neither filled nor open was cancelled.
        """
        if self.is_done:
            return 0
        changed = False
        grew = True
        while grew:  # modifications of modifications
            grew = False
            for row in rows:
                if (
                    row.original_order_id in self._order_ids
                    and not _is_cancel_row(row)
                    and self._add_order_id(row.broker_order_id, row.price)
                ):
                    grew = changed = True
        own = [r for r in rows if r.broker_order_id in self._order_ids]
        if not own:
            return 0
        filled = min(sum(r.filled_qty for r in own), self._qty)
        newly_filled = 0
        if filled > self._filled:
            cost = sum((r.avg_fill_price or Decimal(0)) * r.filled_qty for r in own)
            newly_filled = filled - self._filled
            self._filled = filled
            total = sum(r.filled_qty for r in own)
            self._avg = cost / total if cost and total else self._avg
            changed = True
        if not self._filled and all(r.status is OrderStatus.REJECTED for r in own):
            self._status = OrderStatus.REJECTED
            changed = True
        else:
            remaining = sum(r.remaining_qty for r in own)
            closed = max(0, self._qty - self._filled - remaining)
            if closed > self._cancelled:
                self._cancelled = closed
                changed = True
        if changed:
            self._settle_status()
            self._notify(None)
        return newly_filled

    @classmethod
    def _from_order(cls, order: Order, *, idempotency_key: str | None = None) -> TrackedOrder:
        return cls(
            order_id=order.broker_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            order_type=order.order_type,
            price=order.price if order.price else None,
            idempotency_key=idempotency_key,
        )

    def __repr__(self) -> str:
        return (
            f"TrackedOrder(order_id={self.order_id!r}, symbol={self._symbol!r}, "
            f"side={self._side.name}, qty={self._qty}, status={self._status.value!r}, "
            f"filled={self._filled}, avg={self._avg!r})"
        )


def _names_original(execution: Execution) -> bool:
    original = execution.original_order_id
    return bool(original and original.strip().strip("0"))


def _is_cancel_row(row: Order) -> bool:
    """A cancellation order's row: nothing filled, nothing open, its quantity cancelled."""
    return row.filled_qty == 0 and row.remaining_qty == 0 and row.status is OrderStatus.CANCELLED


class OrderService(AsyncClosing):
    """Submit and follow orders through a :class:`~kis_async.port.BrokerPort`.

    Args:
        broker: any broker port (``KISBroker``, ``MockBroker``...); the service does not
            open or close it.
        limits: optional pre-trade limits; a breach raises ``InvalidOrderError`` before
            anything is sent.
        poll_interval: seconds between polls of today's orders when no execution stream is
            available (no ``hts_id``, or the stream failed).
    """

    def __init__(
        self,
        broker: BrokerPort,
        *,
        limits: PreTradeLimits | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be > 0")
        self._broker = broker
        self._limits = limits
        self._poll_interval = poll_interval
        self._by_id: dict[str, TrackedOrder] = {}
        self._orders: list[TrackedOrder] = []
        self._orphans: OrderedDict[str, list[Execution]] = OrderedDict()
        self._submitted: deque[float] = deque()
        self._held: dict[str, int] | None = None
        self._reserved: dict[str, int] = {}
        self._limits_lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()
        self._stream: Stream[Execution] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    @property
    def following(self) -> str | None:
        """How orders are followed: ``"stream"``, ``"polling"``, or None before start."""
        if self._listener is not None:
            return "stream"
        if self._poller is not None:
            return "polling"
        return None

    async def start(self) -> None:
        """Subscribe to execution notices (or start polling without a stream). Idempotent;
        ``submit``/``track`` call it, so notices of a new order are never missed.

        Raises:
            RuntimeError: the service was closed.
        """
        if self._closed:
            raise RuntimeError("this OrderService is closed")
        async with self._start_lock:
            if self._listener is not None or self._poller is not None:
                return
            stream: Stream[Execution] | None = None
            try:
                stream = self._broker.executions()
                await stream.__aenter__()
            except (ValueError, BrokerError) as exc:
                logger.info(
                    "no execution stream (%s); following orders by polling every %.1fs",
                    type(exc).__name__,
                    self._poll_interval,
                )
                if stream is not None:
                    with contextlib.suppress(Exception):
                        await stream.aclose()
                self._start_polling()
                return
            self._stream = stream
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(stream), name="kis-async-order-service-listener"
            )

    def _start_polling(self) -> None:
        if self._poller is None and not self._closed:
            self._poller = asyncio.get_running_loop().create_task(
                self._poll(), name="kis-async-order-service-poller"
            )

    async def aclose(self) -> None:
        """Stop following orders (idempotent). Tracked orders keep their last state."""
        self._closed = True
        tasks = [t for t in (self._listener, self._poller) if t is not None]
        self._listener = self._poller = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()

    async def _listen(self, stream: Stream[Execution]) -> None:
        try:
            async for execution in stream:
                self._dispatch(execution)
        except BrokerError as exc:
            logger.warning(
                "execution stream failed (%s); following orders by polling", type(exc).__name__
            )
            self._listener = None
            self._start_polling()
            return
        # The stream ended because it (or the broker) was closed: nothing left to follow.
        self._listener = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            if not any(not t.is_done for t in self._orders):
                continue
            try:
                await self.refresh()
            except BrokerError as exc:
                logger.warning("order poll failed (%s)", type(exc).__name__)
            except RuntimeError:
                logger.debug("broker closed; order polling stops")
                self._poller = None
                return

    # -- notices ----------------------------------------------------------------------------

    def _dispatch(self, execution: Execution) -> None:
        tracked = self._by_id.get(execution.broker_order_id)
        if tracked is None and execution.original_order_id:
            tracked = self._by_id.get(execution.original_order_id)
        if tracked is None:
            self._keep_orphan(execution)
            return
        self._apply(tracked, execution)

    def _apply(self, tracked: TrackedOrder, execution: Execution) -> None:
        before = tracked.order_ids
        filled = tracked._apply(execution)
        self._book_fill(tracked, filled)
        for order_id in tracked.order_ids:
            if order_id not in before:
                self._register_id(order_id, tracked)

    def _keep_orphan(self, execution: Execution) -> None:
        for order_id in {execution.broker_order_id, execution.original_order_id}:
            if not order_id:
                continue
            bucket = self._orphans.setdefault(order_id, [])
            self._orphans.move_to_end(order_id)
            if len(bucket) < _ORPHANS_PER_ORDER:
                bucket.append(execution)
        while len(self._orphans) > _ORPHAN_ORDERS:
            self._orphans.popitem(last=False)

    def _register_id(self, order_id: str, tracked: TrackedOrder, *, replay: bool = True) -> None:
        self._by_id[order_id] = tracked
        orphans = self._orphans.pop(order_id, [])
        if replay:
            for execution in orphans:
                self._apply(tracked, execution)

    def _register(self, tracked: TrackedOrder, *, replay: bool) -> TrackedOrder:
        self._orders.append(tracked)
        for order_id in tracked.order_ids:
            self._register_id(order_id, tracked, replay=replay)
        return tracked

    def _book_fill(self, tracked: TrackedOrder, filled: int) -> None:
        if filled and self._held is not None:
            sign = 1 if tracked.side is Side.BUY else -1
            self._held[tracked.symbol] = self._held.get(tracked.symbol, 0) + sign * filled

    # -- orders -----------------------------------------------------------------------------

    async def submit(
        self,
        symbol: str,
        side: Side | str,
        qty: int,
        *,
        price: Decimal | int | str | None = None,
        order_type: OrderType | str = OrderType.LIMIT,
        idempotency_key: str | None = None,
    ) -> TrackedOrder:
        """Validate, check the limits, send (at most once) and return the tracked order.

        Args:
            symbol: KRX code.
            side: BUY/SELL (or ``"buy"``/``"sell"``).
            qty: shares.
            price: limit price; None for market-type orders.
            order_type: the order division (default limit).
            idempotency_key: defaults to a new random key; pass your own to make a retry of
                this call (after a crash, say) safe.

        Raises:
            InvalidOrderError: bad input or a pre-trade limit breached (nothing was sent).
            OrderRejectedError: KIS refused the order.
            OrderStateUnknownError: the order may be booked; see the README.
        """
        if self._closed:
            raise RuntimeError("this OrderService is closed")
        request = OrderRequest(
            symbol,
            side,
            qty,
            order_type=order_type,
            price=price,
            idempotency_key=idempotency_key or f"kis-async-{uuid4().hex}",
        )
        await self._check_limits(request)
        try:
            await self.start()
            order_id = await self._broker.place_order(request)
        finally:
            self._release(request)
        existing = self._by_id.get(order_id)
        if existing is not None:
            return existing
        tracked = TrackedOrder(
            order_id=order_id,
            symbol=request.symbol,
            side=request.side,
            qty=request.qty,
            order_type=request.order_type,
            price=request.price,
            idempotency_key=request.idempotency_key,
        )
        return self._register(tracked, replay=True)

    async def cancel(self, tracked: TrackedOrder) -> bool:
        """Cancel all remaining quantity of ``tracked``.

        Returns:
            True when KIS accepted the cancel (the order turns CANCELLED when the notice
            arrives); False when there was nothing left to cancel.
        """
        accepted = await self._broker.cancel_order(tracked.order_id)
        if not accepted and not tracked.is_done:
            await self.refresh(tracked)
        return accepted

    async def modify(
        self,
        tracked: TrackedOrder,
        *,
        qty: int | None = None,
        price: Decimal | int | str | None = None,
        order_type: OrderType | None = None,
    ) -> TrackedOrder:
        """Modify the remaining quantity, price or type of ``tracked``; it follows the new
        order number KIS assigns.

        Raises:
            InvalidOrderError: bad arguments.
            OrderRejectedError: KIS refused the modification.
        """
        new_id = await self._broker.modify_order(
            tracked.order_id, qty=qty, price=price, order_type=order_type
        )
        new_price = None if price is None else Decimal(str(price))
        tracked._add_order_id(new_id, new_price)
        self._register_id(new_id, tracked)
        return tracked

    async def open_orders(self) -> list[TrackedOrder]:
        """Orders with quantity still open, as tracked orders (the known ones reused)."""
        await self.start()
        result: list[TrackedOrder] = []
        for order in await self._broker.get_open_orders():
            tracked = self._by_id.get(order.broker_order_id)
            if tracked is None:
                tracked = self._register(TrackedOrder._from_order(order), replay=False)
                tracked._sync([order])
            if tracked not in result:
                result.append(tracked)
        return result

    async def track(self, order_id: str) -> TrackedOrder:
        """Follow an order by its number, e.g. after a restart (state from today's orders).

        Raises:
            InvalidOrderError: a malformed order number, or no such order today.
        """
        check_order_id(order_id)
        known = self._by_id.get(order_id)
        if known is not None:
            return known
        await self.start()
        rows = await self._broker.get_orders()
        own = next((r for r in rows if r.broker_order_id == order_id), None)
        if own is None:
            raise InvalidOrderError("no order with this order number today")
        tracked = self._register(TrackedOrder._from_order(own), replay=False)
        self._sync(tracked, rows)
        return tracked

    async def refresh(self, tracked: TrackedOrder | None = None) -> None:
        """Re-read today's orders and bring ``tracked`` (default: every open tracked order)
        up to date; heals any notice a stream gap lost."""
        targets = [tracked] if tracked is not None else [t for t in self._orders if not t.is_done]
        if not targets:
            return
        rows = await self._broker.get_orders()
        for target in targets:
            self._sync(target, rows)

    def _sync(self, tracked: TrackedOrder, rows: list[Order]) -> None:
        before = tracked.order_ids
        self._book_fill(tracked, tracked._sync(rows))
        for order_id in tracked.order_ids:
            if order_id not in before:
                self._register_id(order_id, tracked, replay=False)

    @property
    def tracked(self) -> list[TrackedOrder]:
        """Every order this service follows, in the order it started following them."""
        return list(self._orders)

    # -- pre-trade limits -------------------------------------------------------------------

    async def refresh_positions(self) -> None:
        """Re-read holdings for the position limit (``get_stock_balance``)."""
        positions = await self._broker.get_stock_balance()
        self._held = {p.symbol: p.qty for p in positions}

    async def _check_limits(self, request: OrderRequest) -> None:
        limits = self._limits
        if limits is None:
            return
        async with self._limits_lock:
            now = time.monotonic()
            if limits.max_orders_per_minute is not None:
                while self._submitted and now - self._submitted[0] >= 60.0:
                    self._submitted.popleft()
                if len(self._submitted) >= limits.max_orders_per_minute:
                    raise InvalidOrderError(
                        f"pre-trade limit: at most {limits.max_orders_per_minute} orders per minute"
                    )
            cap = limits.max_position_per_symbol
            if cap is not None and request.side is Side.BUY and request.qty > cap:
                raise InvalidOrderError(
                    f"pre-trade limit: {request.qty} shares exceeds the position limit {cap}"
                )
            max_notional = limits.max_notional_per_order
            if max_notional is not None:
                notional = await self._notional(request)
                if notional > Decimal(max_notional):
                    raise InvalidOrderError(
                        f"pre-trade limit: notional {notional} exceeds {max_notional} per order"
                    )
            if cap is not None and request.side is Side.BUY:
                if self._held is None:
                    await self.refresh_positions()
                assert self._held is not None
                projected = (
                    self._held.get(request.symbol, 0)
                    + self._open_buys(request.symbol)
                    + self._reserved.get(request.symbol, 0)
                    + request.qty
                )
                if projected > cap:
                    raise InvalidOrderError(
                        f"pre-trade limit: the position in {request.symbol} would reach "
                        f"{projected} shares (limit {cap})"
                    )
                self._reserved[request.symbol] = self._reserved.get(request.symbol, 0) + request.qty
            self._submitted.append(now)

    def _release(self, request: OrderRequest) -> None:
        limits = self._limits
        if limits is None or limits.max_position_per_symbol is None:
            return
        if request.side is Side.BUY and request.symbol in self._reserved:
            left = self._reserved[request.symbol] - request.qty
            if left > 0:
                self._reserved[request.symbol] = left
            else:
                del self._reserved[request.symbol]

    def _open_buys(self, symbol: str) -> int:
        return sum(
            t.remaining_qty
            for t in self._orders
            if t.symbol == symbol and t.side is Side.BUY and not t.is_done
        )

    async def _notional(self, request: OrderRequest) -> Decimal:
        if request.price is not None:
            return request.price * request.qty
        snapshot = await self._broker.get_price(request.symbol)
        reference = snapshot.upper_limit or snapshot.price
        return reference * request.qty

    def __repr__(self) -> str:
        open_count = sum(1 for t in self._orders if not t.is_done)
        return (
            f"OrderService(broker={self._broker!r}, tracked={len(self._orders)}, "
            f"open={open_count}, following={self.following!r})"
        )
