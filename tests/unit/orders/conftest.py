"""Fakes for the order-layer unit tests: a scripted REST client, a stream manager stub and a
minimal BrokerPort that counts every call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Self

import pytest

from kis_async.errors import (
    BrokerTimeoutError,
    OrderRejectedError,
    RateLimitError,
    ServerError,
)
from kis_async.models import (
    KST,
    AuthenticationToken,
    BuyingPower,
    Execution,
    ExecutionKind,
    Order,
    OrderBook,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PriceSnapshot,
    Quote,
    Side,
)
from kis_async.orders.journal import MemoryJournal, SQLiteJournal
from kis_async.orders.pg_journal import PostgresJournal
from kis_async.orders.placement import OrderPlacer, PlacementOptions
from kis_async.port import BrokerPort, Callback, Subscription
from kis_async.rest.orders import PlacedOrder

FAST = PlacementOptions(
    reconcile_attempts=3, reconcile_interval=0.0, clock_tolerance=5.0, not_booked_after=0.0
)


def make_order(
    order_id: str,
    request: OrderRequest,
    *,
    ordered_at: datetime | None = None,
    branch_no: str = "00950",
    original_order_id: str | None = None,
    filled_qty: int = 0,
    status: OrderStatus = OrderStatus.OPEN,
) -> Order:
    """An order row as the REST layer would return it."""
    return Order(
        broker_order_id=order_id,
        branch_no=branch_no,
        original_order_id=original_order_id,
        symbol=request.symbol,
        side=request.side,
        order_type=request.order_type,
        qty=request.qty,
        price=request.price if request.price is not None else Decimal(0),
        filled_qty=filled_qty,
        remaining_qty=request.qty - filled_qty,
        status=status,
        ordered_at=ordered_at or datetime.now(KST),
    )


class FakeRest:
    """Scripted RestClient stand-in. ``script`` holds one outcome per POST:

    ok, reject, ratelimit, connect (not sent), timeout_booked, timeout_lost (sent, not booked),
    server_booked, drop_booked (a plain ConnectionError-like failure after booking).
    """

    def __init__(self) -> None:
        self.script: list[str] = []
        self.posts: list[OrderRequest] = []
        self.orders: list[Order] = []
        self.polls = 0
        self.remembered: dict[str, str] = {}
        self.post_delay = 0.0
        #: When set, a POST that books and then loses its answer waits here first, so tests
        #: can have several orders booked before any caller starts reconciling.
        self.booked_barrier: asyncio.Barrier | None = None
        self._next = 1000

    def _book(self, request: OrderRequest) -> PlacedOrder:
        self._next += 1
        order_id = f"{self._next:010d}"
        self.orders.append(make_order(order_id, request))
        return PlacedOrder(order_id=order_id, branch_no="00950", ordered_at=datetime.now(KST))

    async def place_order(self, request: OrderRequest) -> PlacedOrder:
        self.posts.append(request)
        await asyncio.sleep(self.post_delay)
        outcome = self.script.pop(0) if self.script else "ok"
        if outcome == "ok":
            return self._book(request)
        if outcome == "reject":
            raise OrderRejectedError(msg_cd="APBK0919", msg="insufficient funds", status_code=200)
        if outcome == "ratelimit":
            raise RateLimitError(msg_cd="EGW00201", msg="rate", status_code=500)
        if outcome == "connect":
            raise BrokerTimeoutError("connect failed", request_sent=False)
        if outcome == "timeout_booked":
            self._book(request)
            if self.booked_barrier is not None:
                await self.booked_barrier.wait()
            raise BrokerTimeoutError("read timeout", request_sent=True)
        if outcome == "timeout_lost":
            raise BrokerTimeoutError("read timeout", request_sent=True)
        if outcome == "server_booked":
            self._book(request)
            raise ServerError(status_code=502)
        if outcome == "drop_booked":
            self._book(request)
            raise OSError("connection reset")
        raise AssertionError(outcome)

    async def get_orders(
        self, *, start: date | None = None, end: date | None = None
    ) -> list[Order]:
        self.polls += 1
        await asyncio.sleep(0)
        return list(self.orders)

    def remember_order(self, order_id: str, branch_no: str) -> None:
        self.remembered[order_id] = branch_no


class FakeStreams:
    """StreamManager stand-in for reconciliation: acceptance notices on demand."""

    def __init__(self) -> None:
        self.executions_active = False
        self.notices: list[Execution] = []

    def recent_executions(self) -> list[Execution]:
        return list(self.notices)


@pytest.fixture
def rest() -> FakeRest:
    return FakeRest()


@pytest.fixture
def streams() -> FakeStreams:
    return FakeStreams()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def journal(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Any]:
    """Each journal and placer test runs against the three journals (PostgreSQL: a real
    server started for the session, a fresh database per test)."""
    async with contextlib.AsyncExitStack() as stack:
        j: Any
        if request.param == "memory":
            j = MemoryJournal()
        elif request.param == "sqlite":
            j = SQLiteJournal(tmp_path / "j.db")
        else:
            server = request.getfixturevalue("postgres_server")
            j = PostgresJournal(await stack.enter_async_context(server.database()))
        await j.open()
        stack.push_async_callback(j.aclose)
        yield j


@pytest.fixture
def placer(rest: FakeRest, journal: Any, streams: FakeStreams) -> OrderPlacer:
    return OrderPlacer(rest=rest, journal=journal, streams=streams, options=FAST)


# -- a counting BrokerPort ------------------------------------------------------------------


class FakeExecStream:
    """An execution stream handle fed by the test."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Execution | None] = asyncio.Queue()
        self.entered = False
        self.closed = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Execution:
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def __aenter__(self) -> Self:
        self.entered = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class FakePort(BrokerPort):
    """A BrokerPort that records every call; orders are booked in a list of rows."""

    def __init__(self, *, with_stream: bool = True) -> None:
        self.calls: list[str] = []
        self.with_stream = with_stream
        self.stream = FakeExecStream()
        self.rows: list[Order] = []
        self.holdings: list[Position] = []
        self.price = Decimal(70_000)
        self.upper_limit = Decimal(91_000)
        self.cancel_result = True
        self._next = 5000

    async def open(self) -> None:
        self.calls.append("open")

    async def aclose(self) -> None:
        self.calls.append("aclose")

    @property
    def account(self) -> str:
        return "******78-01"

    async def authenticate(self) -> AuthenticationToken:
        raise AssertionError("not used")

    async def get_price(self, symbol: str) -> PriceSnapshot:
        self.calls.append("get_price")
        return PriceSnapshot(symbol=symbol, price=self.price, upper_limit=self.upper_limit)

    async def get_orderbook(self, symbol: str) -> OrderBook:
        raise AssertionError("not used")

    async def place_order(self, request: OrderRequest) -> str:
        self.calls.append("place_order")
        self._next += 1
        order_id = f"{self._next:010d}"
        self.rows.append(make_order(order_id, request))
        return order_id

    async def cancel_order(self, broker_order_id: str) -> bool:
        self.calls.append("cancel_order")
        return self.cancel_result

    async def modify_order(
        self,
        broker_order_id: str,
        *,
        qty: int | None = None,
        price: Decimal | int | str | None = None,
        order_type: OrderType | None = None,
    ) -> str:
        self.calls.append("modify_order")
        self._next += 1
        return f"{self._next:010d}"

    async def get_orders(
        self, *, start: date | None = None, end: date | None = None
    ) -> list[Order]:
        self.calls.append("get_orders")
        return list(self.rows)

    async def get_open_orders(self) -> list[Order]:
        self.calls.append("get_open_orders")
        return [r for r in self.rows if not r.status.is_done]

    async def get_cash(self) -> Decimal:
        raise AssertionError("not used")

    async def get_buying_power(
        self, symbol: str, price: Decimal | int | str | None = None
    ) -> BuyingPower:
        raise AssertionError("not used")

    async def get_stock_balance(self) -> list[Position]:
        self.calls.append("get_stock_balance")
        return list(self.holdings)

    def quotes(self, symbols: Iterable[str]) -> Any:
        raise AssertionError("not used")

    def orderbooks(self, symbols: Iterable[str]) -> Any:
        raise AssertionError("not used")

    def executions(self) -> Any:
        self.calls.append("executions")
        if not self.with_stream:
            raise ValueError("no hts_id")
        return self.stream

    async def subscribe_quotes(
        self, symbols: Iterable[str], callback: Callback[Quote]
    ) -> Subscription:
        raise AssertionError("not used")

    async def subscribe_executions(self, callback: Callback[Execution]) -> Subscription:
        raise AssertionError("not used")

    def bars(self, symbol: str, interval: Any, **kwargs: Any) -> Any:
        raise AssertionError("not used")

    async def get_bars(self, symbol: str, interval: Any, **kwargs: Any) -> Any:
        raise AssertionError("not used")


def notice(
    kind: ExecutionKind,
    order_id: str,
    *,
    qty: int,
    price: int | None = None,
    original: str | None = None,
    symbol: str = "005930",
    side: Side = Side.BUY,
) -> Execution:
    """An execution notice as the stream layer would decode it."""
    return Execution(
        kind=kind,
        broker_order_id=order_id,
        original_order_id=original,
        branch_no="00950",
        symbol=symbol,
        side=side,
        order_type=OrderType.LIMIT,
        qty=qty,
        price=None if price is None else Decimal(price),
        order_qty=qty,
        time=datetime.now(KST),
    )


@pytest.fixture
def port() -> FakePort:
    return FakePort()


@pytest.fixture
def helpers() -> Any:
    """Module-level helpers for the test files (importlib mode has no sibling imports)."""

    class _Helpers:
        make_order = staticmethod(make_order)
        notice = staticmethod(notice)
        FakePort = FakePort
        FAST = FAST

    return _Helpers
