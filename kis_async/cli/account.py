"""The account commands of ``kis-async``: prices, balances, orders and the market calendar."""

from __future__ import annotations

import argparse
import enum
import hashlib
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from kis_async.cli.common import EXIT_API, EXIT_OK, Output, UsageError, _isatty, _signed, won
from kis_async.config import KISConfig, Mode
from kis_async.models import (
    KST,
    Exchange,
    Order,
    OrderBook,
    OrderRequest,
    OrderType,
    Position,
    PriceSnapshot,
)

if TYPE_CHECKING:
    from kis_async.broker import KISBroker

# -- account commands -----------------------------------------------------------------------


async def _cmd_price(broker: KISBroker, args: argparse.Namespace, out: Output) -> int:
    snap = await broker.get_price(args.symbol, market=args.market)
    if out.as_json:
        out.json(snap)
        return EXIT_OK
    out.line(_price_line(snap))
    return EXIT_OK


def _price_line(snap: PriceSnapshot) -> str:
    rate = f"{snap.change_rate:+.2f}%" if snap.change_rate is not None else "-"
    change = snap.change
    if change is not None and snap.change_sign in ("4", "5") and change > 0:
        change = -change  # some answers carry the sign only in prdy_vrss_sign
    return (
        f"{snap.symbol}  {won(snap.price)}  ({_signed(change)}, {rate})  "
        f"open {won(snap.open)}  high {won(snap.high)}  low {won(snap.low)}  "
        f"volume {won(snap.volume)}"
    )


async def _cmd_book(broker: KISBroker, args: argparse.Namespace, out: Output) -> int:
    book = await broker.get_orderbook(args.symbol, market=args.market)
    if out.as_json:
        out.json(book)
        return EXIT_OK
    _print_book(out, book)
    return EXIT_OK


def _print_book(out: Output, book: OrderBook, depth: int = 10) -> None:
    rows = [["ask", won(level.price), won(level.qty)] for level in reversed(book.asks[:depth])]
    rows += [["bid", won(level.price), won(level.qty)] for level in book.bids[:depth]]
    out.table(f"order book {book.symbol}", ["side", "price", "qty"], rows)


async def _cmd_cash(broker: KISBroker, args: argparse.Namespace, out: Output) -> int:
    cash = await broker.get_cash()
    if out.as_json:
        out.json({"cash": cash})
    else:
        out.line(f"cash {won(cash)}")
    return EXIT_OK


def _position_rows(positions: Sequence[Position]) -> list[list[str]]:
    return [
        [
            p.symbol,
            p.name or "",
            won(p.qty),
            won(p.orderable_qty),
            won(p.avg_price.quantize(Decimal(1)) if p.avg_price is not None else None),
            won(p.current_price),
            won(p.eval_amount),
            _signed(p.pnl),
        ]
        for p in positions
    ]


async def _cmd_balance(broker: KISBroker, args: argparse.Namespace, out: Output) -> int:
    cash = await broker.get_cash()
    positions = await broker.get_stock_balance()
    if out.as_json:
        out.json({"cash": cash, "positions": positions})
        return EXIT_OK
    out.line(f"cash {won(cash)}")
    if not positions:
        out.line("no holdings")
        return EXIT_OK
    headers = ["symbol", "name", "qty", "orderable", "avg", "price", "value", "P&L"]
    out.table("holdings", headers, _position_rows(positions))
    return EXIT_OK


def _is_cancel_row(order: Order) -> bool:
    """A cancel order's row: it names the order it cancels and carries no price of its own
    (KIS books a cancel as a new order number with ``ord_unpr`` 0 and the original's type)."""
    return (
        order.original_order_id is not None
        and order.price is None
        and (order.order_type is None or order.order_type.requires_price)
    )


def _order_kind(order: Order) -> str:
    if _is_cancel_row(order):
        return "cancel"
    return order.order_type.name.lower() if order.order_type is not None else "-"


def _order_price(order: Order) -> str:
    """The order's own limit, ``market`` for unpriced types, ``-`` for a cancel row."""
    if order.price:
        return won(order.price)
    if order.order_type is not None and not order.order_type.requires_price:
        return "market"
    return "-"


def _venue_text(order: Order) -> str | None:
    # Orders carry a venue only once venue support is in; until then the column is left out.
    venue = getattr(order, "venue", None)
    if venue is None:
        return None
    return str(venue.value if isinstance(venue, enum.Enum) else venue)


def _order_table(orders: Sequence[Order]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for ``kis-async orders``: the limit price (or ``market``), the average
    fill price of the filled quantity, and the original order of modify/cancel rows."""
    headers = ["order", "original", "symbol", "side", "type", "qty", "price", "filled", "avg"]
    headers += ["open", "status"]
    venues = [_venue_text(o) for o in orders]
    show_venue = any(v is not None for v in venues)
    if show_venue:
        headers.append("venue")
    rows: list[list[str]] = []
    for order, venue in zip(orders, venues, strict=True):
        avg = order.avg_fill_price if order.filled_qty > 0 else None
        row = [
            order.broker_order_id,
            order.original_order_id or "-",
            order.symbol,
            order.side.name.lower(),
            _order_kind(order),
            won(order.qty),
            _order_price(order),
            won(order.filled_qty),
            won(avg),
            won(order.remaining_qty),
            order.status.value,
        ]
        if show_venue:
            row.append(venue or "-")
        rows.append(row)
    return headers, rows


async def _cmd_orders(broker: KISBroker, args: argparse.Namespace, out: Output) -> int:
    orders = await (broker.get_open_orders() if args.open else broker.get_orders())
    if out.as_json:
        out.json(orders)
        return EXIT_OK
    if not orders:
        out.line("no open orders today" if args.open else "no orders today")
        return EXIT_OK
    headers, rows = _order_table(orders)
    out.table("open orders" if args.open else "today's orders", headers, rows)
    return EXIT_OK


def _order_request(args: argparse.Namespace) -> OrderRequest:
    if args.market:
        return OrderRequest(
            args.symbol,
            args.command,
            args.qty,
            order_type=OrderType.MARKET,
            exchange=args.exchange,
            idempotency_key=args.key,
        )
    return OrderRequest(
        args.symbol,
        args.command,
        args.qty,
        order_type=OrderType.LIMIT,
        price=args.price,
        exchange=args.exchange,
        idempotency_key=args.key,
    )


async def _cmd_place(broker: KISBroker, args: argparse.Namespace, out: Output) -> int:
    request: OrderRequest = args.request
    order_id = await broker.place_order(request)
    if out.as_json:
        out.json({"order_id": order_id, "request": _request_dict(request)})
    else:
        out.line(f"order {order_id} accepted: {_request_text(request)}")
    return EXIT_OK


def _request_dict(request: OrderRequest) -> dict[str, Any]:
    return {
        "symbol": request.symbol,
        "side": request.side,
        "qty": request.qty,
        "order_type": request.order_type,
        "price": request.price,
        "exchange": request.exchange.value,
        "idempotency_key": request.idempotency_key,
    }


def _request_text(request: OrderRequest) -> str:
    price = "at market" if request.price is None else f"at {won(request.price)}"
    venue = "" if request.exchange is Exchange.KRX else f" on {request.exchange.value}"
    return f"{request.side.name} {request.qty} {request.symbol} {price}{venue}"


async def _cmd_cancel(broker: KISBroker, args: argparse.Namespace, out: Output) -> int:
    cancelled = await broker.cancel_order(args.order_id)
    if out.as_json:
        out.json({"order_id": args.order_id, "cancelled": cancelled})
    elif cancelled:
        out.line(f"order {args.order_id}: cancel accepted")
    else:
        out.line(f"order {args.order_id}: nothing left to cancel")
    return EXIT_OK if cancelled else EXIT_API


async def _cmd_modify(broker: KISBroker, args: argparse.Namespace, out: Output) -> int:
    new_id = await broker.modify_order(
        args.order_id,
        qty=args.qty,
        price=args.price,
        order_type=OrderType.MARKET if args.market else None,
    )
    if out.as_json:
        out.json({"order_id": args.order_id, "new_order_id": new_id})
    else:
        out.line(f"order {args.order_id} modified: new order {new_id}")
    return EXIT_OK


Handler = Callable[["KISBroker", argparse.Namespace, Output], Awaitable[int]]

_ORDER_COMMANDS: Final = frozenset({"buy", "sell", "cancel", "modify"})


def _confirm_live(config: KISConfig, args: argparse.Namespace) -> None:
    """Live-mode orders need ``--yes`` or a typed ``y`` on a terminal."""
    if config.mode is not Mode.LIVE or args.yes:
        return
    if args.command in ("buy", "sell"):
        what = f"place {_request_text(args.request)}"
    elif args.command == "cancel":
        what = f"cancel order {args.order_id}"
    else:
        what = f"modify order {args.order_id}"
    if not _isatty(sys.stdin):
        raise UsageError(
            f"refusing to {what} on the LIVE account {config.masked_account} without --yes "
            "(no terminal to confirm on)"
        )
    sys.stderr.write(f"{what} on the LIVE account {config.masked_account}? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("not confirmed; nothing was sent")


# -- calendar -------------------------------------------------------------------------------


async def calendar_report(
    is_trading_day: Callable[[date], Awaitable[bool]], *, now: datetime, days: int, source: str
) -> dict[str, Any]:
    """The next ``days`` trading days from ``now``'s date and today's sessions per venue."""
    from kis_async import calendar  # noqa: PLC0415  (keeps `--help` fast)

    today = now.astimezone(KST).date()
    upcoming: list[date] = []
    day = today
    while len(upcoming) < days and (day - today).days < 400:
        if await is_trading_day(day):
            upcoming.append(day)
        day += timedelta(days=1)
    open_today = await is_trading_day(today)
    sessions = {
        venue.value: [
            {"session": s.value, "start": a.strftime("%H:%M"), "end": b.strftime("%H:%M")}
            for a, b, s in calendar.sessions_of_day(today, venue, trading_day=open_today)
        ]
        for venue in (Exchange.KRX, Exchange.NXT)
    }
    now_sessions = {
        venue.value: calendar.session_at(now, venue, trading_day=open_today).value
        for venue in Exchange
    }
    return {
        "source": source,
        "now": now.astimezone(KST).isoformat(timespec="seconds"),
        "trading_day_today": open_today,
        "next_trading_days": upcoming,
        "sessions_today": sessions,
        "session_now": now_sessions,
    }


def _print_calendar(out: Output, report: Mapping[str, Any]) -> None:
    if out.as_json:
        out.json(report)
        return
    today = "a trading day" if report["trading_day_today"] else "not a trading day"
    out.line(f"{report['now']} KST: today is {today} (source: {report['source']})")
    now = ", ".join(f"{venue} {name}" for venue, name in report["session_now"].items())
    out.line(f"now: {now}")
    days = ", ".join(d.strftime("%a %Y-%m-%d") for d in report["next_trading_days"])
    out.line(f"next trading days: {days}")
    for venue, rows in report["sessions_today"].items():
        out.table(
            f"{venue} sessions today",
            ["session", "from", "to"],
            [[r["session"], r["start"], r["end"]] for r in rows],
        )


async def _cmd_calendar(broker: KISBroker, args: argparse.Namespace, out: Output) -> int:
    source = "KIS chk-holiday" if broker.market_calendar.uses_api else "offline"
    report = await calendar_report(
        broker.is_trading_day, now=datetime.now(KST), days=args.days, source=source
    )
    _print_calendar(out, report)
    return EXIT_OK


async def _offline_calendar(args: argparse.Namespace, out: Output) -> int:
    from kis_async import calendar  # noqa: PLC0415

    async def is_trading_day(day: date) -> bool:
        return calendar.fallback_is_trading_day(day)

    source = f"offline ({calendar.fallback_source()}; no KIS credentials configured)"
    report = await calendar_report(
        is_trading_day, now=datetime.now(KST), days=args.days, source=source
    )
    _print_calendar(out, report)
    return EXIT_OK


def journal_path(config: KISConfig, explicit: str | None = None) -> Path:
    """Where ``buy``/``sell --key`` keep idempotency keys across runs: ``--journal``, else
    ``$XDG_CACHE_HOME/kis_async`` (``~/.cache/kis_async``), one file per account. The file
    name carries a hash of the account, never the number."""
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    digest = hashlib.sha256(f"{config.mode.value}:{config.account_id}".encode()).hexdigest()
    return root / "kis_async" / f"cli-orders-{digest[:12]}.sqlite3"


async def _run_account_command(
    config: KISConfig, handler: Handler, args: argparse.Namespace
) -> int:
    from kis_async.broker import KISBroker  # noqa: PLC0415  (keeps `--help` fast)
    from kis_async.orders.journal import SQLiteJournal  # noqa: PLC0415

    out = Output(as_json=args.json)
    journal = None
    if args.command in ("buy", "sell") and args.key:
        # A key means "at most once", also across separate runs: keep it on disk.
        journal = SQLiteJournal(journal_path(config, args.journal))
    async with KISBroker(config, journal=journal) as broker:
        return await handler(broker, args, out)
