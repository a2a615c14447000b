"""``kis-async demo``: the simulator in-process, a live table and a few orders."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Protocol

from kis_async.cli.account import _request_text
from kis_async.cli.common import EXIT_OK, Output, _signed, won
from kis_async.cli.stream import _execution_line
from kis_async.config import Mode
from kis_async.models import (
    Bar,
    Execution,
    ExecutionKind,
    OrderBook,
    OrderRequest,
    Quote,
    Side,
    tick_size,
)

if TYPE_CHECKING:
    from kis_async.broker import KISBroker

# -- demo -----------------------------------------------------------------------------------

DEMO_SYMBOLS: Final = ("005930", "000660", "035420", "005380", "035720")


class _DemoView(Protocol):
    def event(self, text: str) -> None: ...
    def tick(self, elapsed: float) -> None: ...
    def close(self) -> None: ...


@dataclasses.dataclass
class _DemoState:
    quotes: dict[str, Quote] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    book: OrderBook | None = None
    books_seen: int = 0
    events: list[str] = dataclasses.field(default_factory=list)
    bar: Bar | None = None
    bars_completed: int = 0


class _PlainDemoView:
    """Line output for pipes and CI: a quote snapshot per second, and every event."""

    def __init__(self, out: Output, state: _DemoState) -> None:
        self._out = out
        self._state = state
        self._last_tick = -1.0

    def event(self, text: str) -> None:
        if not self._out.as_json:
            self._out.line(text)

    def tick(self, elapsed: float) -> None:
        if self._out.as_json or elapsed - self._last_tick < 1.0 or not self._state.quotes:
            return
        self._last_tick = elapsed
        parts = [
            f"{s} {won(q.price)} ({q.change_rate:+.2f}%)"
            if q.change_rate is not None
            else f"{s} {won(q.price)}"
            for s, q in sorted(self._state.quotes.items())
        ]
        self._out.line(f"[{elapsed:5.1f}s] quotes  " + "  ".join(parts))

    def close(self) -> None:
        return


class _RichDemoView:
    """A live-updating rich layout: quotes, one order book, and the event log."""

    def __init__(self, state: _DemoState, title: str) -> None:
        from rich.console import Console  # noqa: PLC0415  (optional dependency)
        from rich.live import Live  # noqa: PLC0415

        self._state = state
        self._title = title
        self._console = Console()
        self._live = Live(console=self._console, refresh_per_second=8, auto_refresh=False)
        self._live.start()

    def event(self, text: str) -> None:
        return

    def tick(self, elapsed: float) -> None:
        self._live.update(self._render(elapsed), refresh=True)

    def _render(self, elapsed: float) -> Any:
        from rich.console import Group  # noqa: PLC0415
        from rich.panel import Panel  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        quotes = Table(title=f"{self._title}  ({elapsed:4.1f}s)", expand=False)
        for head in ("symbol", "price", "change", "%", "volume", "ticks"):
            quotes.add_column(head, justify="left" if head == "symbol" else "right")
        for symbol, q in sorted(self._state.quotes.items()):
            colour = "green" if (q.change or 0) > 0 else "red" if (q.change or 0) < 0 else ""
            rate = f"{q.change_rate:+.2f}" if q.change_rate is not None else "-"
            quotes.add_row(
                symbol,
                Text(won(q.price), style=colour),
                Text(_signed(q.change), style=colour),
                Text(rate, style=colour),
                won(q.cum_volume),
                str(self._state.counts.get(symbol, 0)),
            )
        book_table = Table(
            title="order book " + (self._state.book.symbol if self._state.book else "")
        )
        book_table.add_column("ask qty", justify="right")
        book_table.add_column("price", justify="right")
        book_table.add_column("bid qty", justify="right")
        if self._state.book is not None:
            for level in reversed(self._state.book.asks[:5]):
                book_table.add_row(won(level.qty), Text(won(level.price), style="red"), "")
            for level in self._state.book.bids[:5]:
                book_table.add_row("", Text(won(level.price), style="green"), won(level.qty))
        # Text, not markup: event lines contain brackets.
        log = Panel(
            Text("\n".join(self._state.events[-10:]) or "waiting..."), title="orders & notices"
        )
        return Group(quotes, book_table, _bar_table(self._state), log)

    def close(self) -> None:
        self._live.stop()


def _bar_table(state: _DemoState) -> Any:
    """The live 1-minute bar panel: the forming bar of the focus symbol, from the trades."""
    from rich.table import Table  # noqa: PLC0415

    bar = state.bar
    title = "1-minute bar " + (
        f"{bar.symbol} {bar.start:%H:%M} ({'forming' if bar.partial else 'complete'}; "
        f"{state.bars_completed} completed)"
        if bar is not None
        else "(waiting for a trade)"
    )
    table = Table(title=title)
    for head in ("open", "high", "low", "close", "volume"):
        table.add_column(head, justify="right")
    if bar is not None:
        table.add_row(won(bar.open), won(bar.high), won(bar.low), won(bar.close), won(bar.volume))
    return table


class _Notices:
    """Execution notices seen so far, with a wait for one that matches."""

    def __init__(self) -> None:
        self.items: list[Execution] = []
        self._changed = asyncio.Event()

    def add(self, item: Execution) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(
        self, order_id: str, kind: ExecutionKind, *, max_wait: float = 10.0
    ) -> Execution:
        async with asyncio.timeout(max_wait):
            while True:
                for item in self.items:
                    if item.kind is kind and order_id in (
                        item.broker_order_id,
                        item.original_order_id,
                    ):
                        return item
                self._changed.clear()
                await self._changed.wait()


async def run_demo(duration: float, *, seed: int, out: Output) -> int:
    """Run the demo: simulator, broker, streams, a fill, a cancel, and a summary."""
    from kis_async.broker import KISBroker  # noqa: PLC0415
    from kis_async.sim import KISSimulator  # noqa: PLC0415

    started = time.monotonic()
    state = _DemoState()
    focus = DEMO_SYMBOLS[0]
    view: _DemoView
    if out.rich:
        view = _RichDemoView(state, "kis-async demo: live quotes from the embedded simulator")
    else:
        view = _PlainDemoView(out, state)

    def event(text: str) -> None:
        stamp = f"[{time.monotonic() - started:5.1f}s]"
        state.events.append(f"{stamp} {text}")
        view.event(f"{stamp} {text}")

    notices = _Notices()
    orders_placed = 0
    try:
        async with KISSimulator(seed=seed, mode=Mode.PAPER, quote_interval=0.1).serve(
            port=0
        ) as sim:
            event(f"simulator (paper mode, seed {seed}) listening on {sim.rest_url}")
            async with (
                KISBroker(sim.config(), clock=sim.clock.now) as broker,
                broker.quotes(DEMO_SYMBOLS) as quotes,
                broker.orderbooks([focus]) as books,
                broker.executions() as executions,
                broker.live_bars([focus], "1m", partial=True) as bars,
            ):
                event(f"subscribed: quotes for {', '.join(DEMO_SYMBOLS)}; book for {focus}")
                krx = await broker.get_price(focus)
                # Paper trading serves KRX quotes only, so the integrated (KRX+NXT) price is
                # read from the simulator's own 통합 view beside the KRX price KIS returned.
                unified = sim.exchange.instrument(focus).unified_price
                event(f"price    {focus}  KRX {won(krx.price)}  |  integrated {won(unified)}")

                async def pump_quotes() -> None:
                    async for q in quotes:
                        state.quotes[q.symbol] = q
                        state.counts[q.symbol] = state.counts.get(q.symbol, 0) + 1

                async def pump_books() -> None:
                    async for b in books:
                        state.book = b
                        state.books_seen += 1

                async def pump_executions() -> None:
                    async for e in executions:
                        notices.add(e)
                        event("notice   " + _execution_line(e))

                async def pump_bars() -> None:
                    async for bar in bars:
                        state.bar = bar
                        if not bar.partial:
                            state.bars_completed += 1

                async def refresh() -> None:
                    while True:
                        view.tick(time.monotonic() - started)
                        await asyncio.sleep(0.125)

                background = [
                    asyncio.create_task(pump_quotes()),
                    asyncio.create_task(pump_books()),
                    asyncio.create_task(pump_executions()),
                    asyncio.create_task(pump_bars()),
                    asyncio.create_task(refresh()),
                ]
                try:
                    await asyncio.sleep(max(0.5, duration * 0.3))
                    orders_placed = await _demo_orders(broker, state, focus, notices, event)
                    remaining = duration - (time.monotonic() - started)
                    if remaining > 0:
                        await asyncio.sleep(remaining)
                    view.tick(time.monotonic() - started)
                    status = broker.stream_status
                finally:
                    for task in background:
                        task.cancel()
                    results = await asyncio.gather(*background, return_exceptions=True)
                for result in results:
                    if isinstance(result, Exception):
                        raise result
    finally:
        view.close()
    elapsed = time.monotonic() - started
    total = sum(state.counts.values())
    summary = {
        "elapsed_s": round(elapsed, 2),
        "quotes": total,
        "quotes_per_symbol": dict(sorted(state.counts.items())),
        "book_updates": state.books_seen,
        "orders_placed": orders_placed,
        "notices": len(notices.items),
        "fills": sum(1 for n in notices.items if n.kind is ExecutionKind.FILLED),
        "reconnects": status.reconnects,
        "bars_completed": state.bars_completed,
    }
    if out.as_json:
        out.json(summary)
    else:
        out.line(
            f"summary: {total} quotes for {len(state.counts)} symbols and "
            f"{state.books_seen} book updates in {elapsed:.1f}s; {orders_placed} orders, "
            f"{summary['notices']} notices ({summary['fills']} fills) over the WebSocket; "
            f"reconnects {status.reconnects}"
        )
    return EXIT_OK


async def _demo_orders(
    broker: KISBroker,
    state: _DemoState,
    symbol: str,
    notices: _Notices,
    event: Callable[[str], None],
) -> int:
    book = state.book or await broker.get_orderbook(symbol)
    ask = book.best_ask.price if book.best_ask else (await broker.get_price(symbol)).price
    # A limit a few ticks above the best ask is marketable: it fills at once against the book.
    bids = " ".join(f"{won(lv.price)}x{won(lv.qty)}" for lv in book.bids[:3])
    asks = " ".join(f"{won(lv.price)}x{won(lv.qty)}" for lv in book.asks[:3])
    event(f"book     {symbol}  bids {bids}  |  asks {asks}")
    price = ask + 2 * tick_size(ask)
    buy = OrderRequest(symbol, Side.BUY, 10, price=price, idempotency_key="demo-buy-1")
    event(f"placing  {_request_text(buy)} (marketable limit)")
    order_id = await broker.place_order(buy)
    event(f"placed   order {order_id}")
    await notices.wait_for(order_id, ExecutionKind.ACCEPTED)
    await notices.wait_for(order_id, ExecutionKind.FILLED)
    cash = await broker.get_cash()
    positions = await broker.get_stock_balance()
    held = ", ".join(
        f"{p.symbol} {p.qty} @ {won(p.avg_price.quantize(Decimal(1)) if p.avg_price else None)}"
        for p in positions
    )
    event(f"account  cash {won(cash)}; holdings: {held or 'none'}")
    bid = book.best_bid.price if book.best_bid else ask
    low = bid - 10 * tick_size(bid)
    resting = OrderRequest(symbol, Side.BUY, 1, price=low - low % tick_size(low))
    event(f"placing  {_request_text(resting)} (rests below the bid)")
    resting_id = await broker.place_order(resting)
    await notices.wait_for(resting_id, ExecutionKind.ACCEPTED)
    open_ids = [o.broker_order_id for o in await broker.get_open_orders()]
    event(f"open     orders: {', '.join(open_ids) or 'none'}")
    cancelled = await broker.cancel_order(resting_id)
    event(f"cancel   order {resting_id}: {'accepted' if cancelled else 'nothing left'}")
    await notices.wait_for(resting_id, ExecutionKind.CANCELLED)
    return 2


# -- sim ------------------------------------------------------------------------------------
