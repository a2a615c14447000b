"""The ``kis-async`` command: a live demo, the simulator, and account commands.

::

    kis-async demo                       # the simulator in-process, a live table, a few orders
    kis-async sim --port 8080            # a local KIS for your own bot
    kis-async price 005930               # account commands read KIS_* (and ./.env)
    kis-async buy 005930 10 --price 70000 --yes
    kis-async stream quotes 005930 000660 --duration 10 --json

Exit codes: 0 success; 1 KIS refused or could not be reached (API and business errors, a
cancel with nothing left); 2 usage or configuration errors (bad arguments, missing variables,
a live order not confirmed); 130 interrupted. Errors are one line on stderr with KIS's msg_cd
and message, never a traceback (``--debug`` shows one). Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import enum
import errno
import hashlib
import json
import logging
import math
import os
import sys
import threading
import time
import traceback
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Protocol

from pydantic import BaseModel, SecretStr

from kis_async.cli_bars import add_bars_parser, cmd_bars
from kis_async.cli_record import add_record_parser, cmd_record, record_symbols
from kis_async.config import KISConfig, Mode
from kis_async.errors import (
    BrokerAPIError,
    BrokerConnectionError,
    BrokerError,
    BrokerTimeoutError,
    InvalidOrderError,
    OrderStateUnknownError,
    SubscriptionError,
)
from kis_async.messages import meaning
from kis_async.models import (
    KST,
    Bar,
    Exchange,
    Execution,
    ExecutionCursor,
    ExecutionKind,
    Market,
    Order,
    OrderBook,
    OrderRequest,
    OrderType,
    Position,
    PriceLevel,
    PriceSnapshot,
    Quote,
    Side,
    tick_size,
)
from kis_async.models.stream import QUOTE_ATTRIBUTES
from kis_async.validation import positive_price

if TYPE_CHECKING:
    from kis_async.broker import KISBroker

__all__ = ["EXIT_API", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK: Final = 0
EXIT_API: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

logger = logging.getLogger("kis_async.cli")


class UsageError(Exception):
    """A command-line problem the user must fix (exit code 2)."""


# -- .env and configuration -----------------------------------------------------------------


def _load_config(args: argparse.Namespace) -> KISConfig:
    # pydantic-settings reads KIS_* from the environment and the .env file (the environment
    # wins); a missing default ./.env is fine, a missing --env-file is a usage error.
    env_file = Path(args.env_file) if args.env_file else Path.cwd() / ".env"
    if args.env_file and not env_file.is_file():
        raise UsageError(f"env file not found: {args.env_file}")
    try:
        return KISConfig.from_env(env_file=env_file)
    except ValueError as exc:
        raise UsageError(
            f"configuration error: {exc}. Set KIS_APP_KEY, KIS_APP_SECRET, KIS_ACCOUNT_ID "
            "(and KIS_MODE, KIS_HTS_ID) in the environment or ./.env, or run `kis-async sim` "
            "and use the lines it prints."
        ) from None


# -- output ---------------------------------------------------------------------------------


_EXECUTION_KEYS: Final = (
    "kind",
    "broker_order_id",
    "original_order_id",
    "branch_no",
    "symbol",
    "side",
    "order_type",
    "qty",
    "price",
    "order_qty",
    "time",
    "source",
    "name",
    "exchange",
    "venue",
)


def to_jsonable(value: Any) -> Any:
    """Turn models, dataclasses, enums, Decimals and datetimes into JSON-ready values.

    Decimals become strings (exact), sides and order types their lower-case names, and the
    ``raw`` KIS field maps of stream events are left out.
    """
    if isinstance(value, BaseModel):
        return {name: to_jsonable(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, PriceLevel):
        return {"price": to_jsonable(value.price), "qty": value.qty}
    if isinstance(value, Quote | Execution):
        keys = QUOTE_ATTRIBUTES if isinstance(value, Quote) else _EXECUTION_KEYS
        return {key: to_jsonable(getattr(value, key)) for key in keys}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "raw"
        }
    if isinstance(value, Side | OrderType | Market):
        return value.name.lower()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, SecretStr):
        return "**********"
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def won(value: Decimal | int | None) -> str:
    """``71900`` -> ``"71,900"``; keeps a fraction when there is one; ``-`` for None."""
    if value is None:
        return "-"
    dec = Decimal(value)
    if dec == dec.to_integral_value():
        return f"{int(dec):,}"
    return f"{dec:,.2f}"


def _signed(value: Decimal | int | None) -> str:
    if value is None:
        return "-"
    return ("+" if value > 0 else "") + won(value)


class Output:
    """Writes command results as text (rich tables on a terminal) or as JSON."""

    def __init__(self, *, as_json: bool, stream: IO[str] | None = None) -> None:
        self.as_json = as_json
        self.stream = stream if stream is not None else sys.stdout
        self.rich = (not as_json) and _isatty(self.stream) and _rich_available()

    def json(self, value: Any) -> None:
        """One JSON document on one line."""
        self.stream.write(json.dumps(to_jsonable(value), ensure_ascii=False) + "\n")
        self.stream.flush()

    def line(self, text: str = "") -> None:
        """A plain text line."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def table(self, title: str, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        """A table: rich on a terminal, aligned columns otherwise."""
        body = [list(r) for r in rows]
        if self.rich:
            from rich.console import Console  # noqa: PLC0415  (optional dependency)
            from rich.table import Table  # noqa: PLC0415

            table = Table(title=title)
            for i, head in enumerate(headers):
                table.add_column(head, justify="left" if i == 0 else "right")
            for row in body:
                table.add_row(*row)
            Console(file=self.stream).print(table)
            return
        widths = [_width(h) for h in headers]
        for row in body:
            widths = [max(w, _width(c)) for w, c in zip(widths, row, strict=False)]
        self.line(title)
        heads = zip(headers, widths, strict=False)
        self.line("  ".join(_pad(h, w, left=i == 0) for i, (h, w) in enumerate(heads)))
        for row in body:
            cells = zip(row, widths, strict=False)
            self.line("  ".join(_pad(c, w, left=i == 0) for i, (c, w) in enumerate(cells)))


def _width(text: str) -> int:
    """Terminal columns of ``text``: Korean (wide) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    fill = " " * max(0, width - _width(text))
    return text + fill if left else fill + text


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _rich_available() -> bool:
    try:
        import rich  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _describe_error(exc: BaseException) -> tuple[str, dict[str, Any]]:
    """A one-line message and a JSON object for an error, without secrets or traceback."""
    info: dict[str, Any] = {"type": type(exc).__name__}
    if isinstance(exc, BrokerAPIError):
        info |= {"msg_cd": exc.msg_cd, "message": exc.msg, "status_code": exc.status_code}
        info["meaning"] = exc.meaning
        code = f"[{exc.msg_cd}] " if exc.msg_cd else ""
        english = f" ({exc.meaning})" if exc.meaning and exc.msg else ""
        text = f"KIS error {code}{exc.msg or str(exc)}{english}"
    elif isinstance(exc, SubscriptionError):
        ack_meaning = meaning(exc.msg_cd)
        info |= {"msg_cd": exc.msg_cd, "message": str(exc), "meaning": ack_meaning}
        text = f"subscription refused: {exc}" + (f" ({ack_meaning})" if ack_meaning else "")
    elif isinstance(exc, BrokerTimeoutError):
        info |= {"message": str(exc), "request_sent": exc.request_sent}
        text = f"timed out: {exc}" + (
            " (the request may have reached KIS; check `kis-async orders`)"
            if exc.request_sent
            else ""
        )
    elif isinstance(exc, BrokerConnectionError):
        info["message"] = str(exc)
        text = f"cannot reach KIS: {exc} (is `kis-async sim` running / is KIS_REST_URL right?)"
    elif isinstance(exc, OrderStateUnknownError):
        info |= {"message": str(exc), "idempotency_key": exc.idempotency_key}
        text = f"order state unknown: {exc}"
    else:
        info["message"] = str(exc) or type(exc).__name__
        text = info["message"]
    return text, info


def _report_error(exc: BaseException, *, as_json: bool, prefix: str = "error") -> None:
    text, info = _describe_error(exc)
    if as_json:
        sys.stderr.write(json.dumps({"error": info}, ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(f"{prefix}: {text}\n")
    sys.stderr.flush()


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


def _quote_line(q: Quote) -> str:
    stamp = q.time.strftime("%H:%M:%S") if q.time else "--:--:--"
    rate = f"{q.change_rate:+.2f}%" if q.change_rate is not None else ""
    return f"{stamp}  {q.symbol}  {won(q.price)}  {_signed(q.change)} {rate}  vol {won(q.volume)}"


def _book_line(b: OrderBook) -> str:
    ask, bid = b.best_ask, b.best_bid
    ask_text = f"{won(ask.price)} x {won(ask.qty)}" if ask else "-"
    bid_text = f"{won(bid.price)} x {won(bid.qty)}" if bid else "-"
    stamp = b.time.strftime("%H:%M:%S") if b.time else "--:--:--"
    mid = f"  mid {won(b.mid_price)}" if b.mid_price is not None else ""
    return f"{stamp}  {b.symbol}  bid {bid_text}  |  ask {ask_text}{mid}"


def _execution_line(e: Execution) -> str:
    side = e.side.name if e.side else "?"
    about = f" (for {e.original_order_id})" if e.original_order_id else ""
    price = f" @ {won(e.price)}" if e.price else ""
    return f"{e.kind.value:9} order {e.broker_order_id}{about}  {side} {e.qty} {e.symbol}{price}"


def _stream_execution_line(e: Execution) -> str:
    # ``time`` is the event's own time (for a replayed fill, the time KIS reports for it),
    # never the moment the CLI received or replayed it.
    stamp = e.time.astimezone(KST).strftime("%H:%M:%S") if e.time else "--:--:--"
    origin = "replay" if e.replayed else "live"
    return f"{stamp}  {origin:6}  {_execution_line(e)}"


def _execution_json(e: Execution) -> dict[str, Any]:
    doc: dict[str, Any] = to_jsonable(e)
    doc["replayed"] = e.replayed
    doc["cursor"] = None if e.cursor is None else str(e.cursor)
    return doc


async def _cmd_stream(broker: KISBroker, args: argparse.Namespace, out: Output) -> int:
    stream: Any
    fmt: Callable[[Any], str]
    as_json: Callable[[Any], Any] = to_jsonable
    if args.what == "quotes":
        stream, fmt = broker.quotes(args.symbols, market=args.market), _quote_line
    elif args.what == "books":
        stream, fmt = broker.orderbooks(args.symbols, market=args.market), _book_line
    else:
        if not broker.config.hts_id:
            raise UsageError(
                "stream executions needs KIS_HTS_ID (execution notices are keyed on it)"
            )
        stream = broker.executions(replay=not args.no_replay, since=args.since)
        fmt, as_json = _stream_execution_line, _execution_json
    printed = 0
    idle: float | None = args.idle_timeout
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(args.duration), stream:
            # ``--count`` counts the events printed; ``--idle-timeout`` ends the command once
            # nothing has come for that long (replayed fills arrive first, then live ones).
            while args.count is None or printed < args.count:
                try:
                    item = await asyncio.wait_for(anext(stream), idle)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    if idle is None:
                        raise
                    break
                printed += 1
                if out.as_json:
                    out.json(as_json(item))
                else:
                    out.line(fmt(item))
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


def _cmd_sim(args: argparse.Namespace) -> int:
    from kis_async.sim import runner  # noqa: PLC0415  (optional dependency)

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.stderr.write(
            f"warning: serving the simulator on {args.host}, not only on this machine\n"
        )
    env_file = Path(args.sim_env_file) if args.sim_env_file else None
    options: dict[str, Any] = {}
    if args.replay is not None:
        options.update(replay=args.replay, replay_speed=args.speed or 1.0)
    elif args.speed is not None:
        raise UsageError("--speed needs --replay")
    try:
        asyncio.run(
            runner.run(
                args.host,
                args.port,
                seed=args.seed,
                mode=Mode(args.mode),
                env_file=env_file,
                layout=args.layout,
                pingpong_interval=args.pingpong_interval,
                pingpong_timeout=args.pingpong_grace,
                **options,
            )
        )
    except KeyboardInterrupt:
        sys.stderr.write("simulator stopped\n")
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            reason = {errno.EADDRINUSE: "is in use", errno.EACCES: "is not permitted"}.get(
                exc.errno, "is not available"
            )
            raise UsageError(
                f"cannot serve on {args.host}:{args.port}: the address {reason}; "
                "try --port 0 (picks a free port) or another --port"
            ) from None
        raise
    return EXIT_OK


#: The optional dependencies behind each extra, and the extra each command needs.
_EXTRA_MODULES: Final = frozenset({"starlette", "uvicorn", "rich"})
_COMMAND_EXTRAS: Final[Mapping[str, str]] = {"demo": "cli", "sim": "sim"}


def _require_extra(command: str) -> None:
    """Fail with one line naming the extra when ``command``'s optional imports are missing."""
    try:
        import kis_async.sim  # noqa: F401, PLC0415  (imports starlette and uvicorn)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _EXTRA_MODULES:
            raise
        extra = _COMMAND_EXTRAS[command]
        raise UsageError(
            f"kis-async {command} needs the '{extra}' extra: pip install 'kis-async[{extra}]'"
        ) from None


# -- argument parsing -----------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        if not text.isascii():  # int() would take "１０" and "١٠"
            raise ValueError(text)
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _cursor(text: str) -> ExecutionCursor:
    try:
        return ExecutionCursor.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an execution cursor: {exc}") from None


def _positive_float(text: str) -> float:
    try:
        if not text.isascii():  # float() would take "１０"
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError("must be a finite number greater than 0")
    return value


def _market(text: str) -> Market:
    try:
        return Market.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _exchange(text: str) -> Exchange:
    try:
        return Exchange.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _price(text: str) -> Decimal:
    try:
        return positive_price(text.replace(",", ""))
    except InvalidOrderError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``kis-async`` argument parser."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="JSON output for scripts"
    )
    flags.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="debug logs, tracebacks"
    )
    flags.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log retries and reconnects",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[flags])
    common.add_argument(
        "--env-file", default=argparse.SUPPRESS, help="read KIS_* from this file (default ./.env)"
    )
    confirm = argparse.ArgumentParser(add_help=False)
    confirm.add_argument(
        "--yes", "-y", action="store_true", help="do not ask before sending a LIVE-mode order"
    )

    parser = argparse.ArgumentParser(
        prog="kis-async",
        description="Korea Investment & Securities (KIS) from the terminal, and a local KIS "
        "simulator. Account commands read KIS_APP_KEY, KIS_APP_SECRET, KIS_ACCOUNT_ID, "
        "KIS_MODE, KIS_HTS_ID from the environment (or ./.env).",
    )
    parser.add_argument("--json", action="store_true", default=False, help="JSON output")
    parser.add_argument("--env-file", default=None, help="read KIS_* from this file")
    parser.add_argument("--debug", action="store_true", default=False, help="debug output")
    parser.add_argument("--verbose", "-v", action="store_true", default=False, help="more logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser("demo", parents=[common], help="live demo against the simulator")
    demo.add_argument("--duration", type=_positive_float, default=10.0, help="seconds (10)")
    demo.add_argument("--seed", type=int, default=1234, help="simulator seed (1234)")

    # `sim` writes its --env-file instead of reading one.
    sim = sub.add_parser("sim", parents=[flags], help="run the KIS simulator until Ctrl-C")
    sim.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1)")
    sim.add_argument("--port", type=int, default=8080, help="port (8080; 0 picks one)")
    sim.add_argument("--seed", type=int, default=1234, help="random seed (1234)")
    sim.add_argument("--mode", choices=["paper", "live"], default="paper", help="KIS mode")
    sim.add_argument(
        "--env-file",
        dest="sim_env_file",
        default=None,
        metavar="PATH",
        help="also write the KIS_* lines to PATH as a .env file",
    )
    sim.add_argument(
        "--replay",
        default=None,
        metavar="PATH",
        help="serve the trades and books of a session recording (kis-async record)",
    )
    sim.add_argument(
        "--speed",
        type=_positive_float,
        default=None,
        help="replay pace, a multiple of the recorded pace (1)",
    )
    add_record_parser(sub, common, _positive_float)
    sim.add_argument(
        "--layout",
        choices=["current", "legacy"],
        default="current",
        help="real-time record widths: current (47-field trades, 63-field H0STASP0, 26-field "
        "notices) or legacy (46/59/23, as KIS sent before 2026)",
    )
    sim.add_argument("--pingpong-interval", type=_positive_float, default=10.0, help="seconds (10)")
    sim.add_argument(
        "--pingpong-grace",
        type=_positive_float,
        default=100.0,
        help="close a session that answers no PINGPONG for this long (100 s)",
    )

    markets = argparse.ArgumentParser(add_help=False)
    markets.add_argument(
        "--market",
        type=_market,
        default=Market.KRX,
        metavar="{krx,nxt,unified}",
        help="KRX (default), NXT or the integrated KRX+NXT view",
    )
    price = sub.add_parser("price", parents=[common, markets], help="current price of a symbol")
    price.add_argument("symbol")
    add_bars_parser(sub, common)
    book = sub.add_parser("book", parents=[common, markets], help="10-level order book")
    book.add_argument("symbol")
    cal = sub.add_parser(
        "calendar", parents=[common], help="next trading days and today's KRX/NXT sessions"
    )
    cal.add_argument("--days", type=_positive_int, default=5, help="trading days to list (5)")
    sub.add_parser("cash", parents=[common], help="deposit (예수금)")
    sub.add_parser("balance", parents=[common], help="cash and holdings")
    orders = sub.add_parser("orders", parents=[common], help="today's orders")
    orders.add_argument("--open", action="store_true", help="only orders with quantity open")

    for side in ("buy", "sell"):
        place = sub.add_parser(side, parents=[common, confirm], help=f"{side} shares")
        place.add_argument("symbol")
        place.add_argument("qty", type=_positive_int)
        how = place.add_mutually_exclusive_group(required=True)
        how.add_argument("--price", type=_price, help="limit price in won")
        how.add_argument("--market", action="store_true", help="market order")
        place.add_argument(
            "--exchange",
            type=_exchange,
            default=Exchange.KRX,
            metavar="{krx,nxt,sor}",
            help="venue: KRX (default), NXT, or SOR (KIS routes to the better price)",
        )
        place.add_argument(
            "--key", default=None, help="idempotency key: at most one order per key, across runs"
        )
        place.add_argument(
            "--journal", default=None, help="where --key is remembered (default: user cache)"
        )

    cancel = sub.add_parser("cancel", parents=[common, confirm], help="cancel an order")
    cancel.add_argument("order_id")
    modify = sub.add_parser("modify", parents=[common, confirm], help="modify an order")
    modify.add_argument("order_id")
    modify.add_argument("--qty", type=_positive_int, help="quantity to move (default: all)")
    change = modify.add_mutually_exclusive_group()
    change.add_argument("--price", type=_price, help="new limit price")
    change.add_argument("--market", action="store_true", help="turn into a market order")

    stream = sub.add_parser("stream", help="real-time data until --count/--duration or Ctrl-C")
    stream_sub = stream.add_subparsers(dest="what", metavar="WHAT", required=True)
    bounds = argparse.ArgumentParser(add_help=False)
    bounds.add_argument(
        "--count", type=_positive_int, default=None, help="stop after printing N events"
    )
    bounds.add_argument("--duration", type=_positive_float, default=None, help="stop after S s")
    bounds.add_argument(
        "--idle-timeout",
        type=_positive_float,
        default=None,
        metavar="S",
        help="stop once no event has come for S s",
    )
    quotes = stream_sub.add_parser("quotes", parents=[common, bounds, markets], help="trades")
    quotes.add_argument("symbols", nargs="+")
    books = stream_sub.add_parser("books", parents=[common, bounds, markets], help="order books")
    books.add_argument("symbols", nargs=1, metavar="symbol")
    executions = stream_sub.add_parser(
        "executions", parents=[common, bounds], help="your execution notices"
    )
    start = executions.add_mutually_exclusive_group()
    start.add_argument(
        "--no-replay", action="store_true", help="only events after the stream opens"
    )
    start.add_argument(
        "--since",
        type=_cursor,
        default=None,
        metavar="CURSOR",
        help="start after a cursor printed by --json (exactly the fills after it)",
    )
    return parser


_HANDLERS: Final[Mapping[str, Handler]] = {
    "price": _cmd_price,
    "bars": cmd_bars,
    "book": _cmd_book,
    "cash": _cmd_cash,
    "balance": _cmd_balance,
    "orders": _cmd_orders,
    "buy": _cmd_place,
    "sell": _cmd_place,
    "cancel": _cmd_cancel,
    "modify": _cmd_modify,
    "stream": _cmd_stream,
    "calendar": _cmd_calendar,
    "record": cmd_record,
}


_logging_lock = threading.Lock()
_logging_users = 0
_logging_saved_level = logging.NOTSET


@contextlib.contextmanager
def _library_logging(debug: bool, verbose: bool) -> Iterator[None]:
    """Set the CLI's logging for one ``main()`` run and leave the ``kis_async`` logger's level
    as it was found. ``main()`` may run in-process, several at once (embedding, tests): the
    first run in saves the level and the last one out restores it, so overlapping runs cannot
    restore each other's temporary level."""
    global _logging_users, _logging_saved_level
    library_logger = logging.getLogger("kis_async")
    with _logging_lock:
        if _logging_users == 0:
            _logging_saved_level = library_logger.level
        _logging_users += 1
        _setup_logging(debug, verbose)
    try:
        yield
    finally:
        with _logging_lock:
            _logging_users -= 1
            if _logging_users == 0:
                library_logger.setLevel(_logging_saved_level)


def _setup_logging(debug: bool, verbose: bool) -> None:
    # Retries after a rate-limit answer are routine for a command-line user, so the library's
    # warnings are shown only with --verbose; errors always reach the user as exit codes.
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.ERROR
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kis_async").setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kis-async`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    with _library_logging(args.debug, args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Dispatch, turning every failure into a one-line message and an exit code."""
    try:
        try:
            return _dispatch(args)
        except BaseExceptionGroup as group:
            raise _first_leaf(group) from group
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`kis-async orders | head`): stop quietly, as Unix tools do.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except UsageError as exc:
        _report_error(exc, as_json=args.json)
        return EXIT_USAGE
    except (InvalidOrderError, ValueError) as exc:
        _report_error(exc, as_json=args.json, prefix="invalid input")
        return EXIT_USAGE
    except (BrokerError, TimeoutError) as exc:
        if args.debug:
            traceback.print_exc()
        _report_error(exc, as_json=args.json)
        return EXIT_API
    except Exception as exc:  # the one place that turns any failure into an exit code
        if args.debug:
            traceback.print_exc()
        _report_error(exc, as_json=args.json, prefix=f"unexpected {type(exc).__name__}")
        return EXIT_API


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real exception inside (nested) exception groups."""
    first: BaseException = group
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in _COMMAND_EXTRAS:
        _require_extra(args.command)
    if args.command == "demo":
        return asyncio.run(run_demo(args.duration, seed=args.seed, out=Output(as_json=args.json)))
    if args.command == "sim":
        return _cmd_sim(args)
    if args.command in ("buy", "sell"):
        args.request = _order_request(args)  # validated before anything is sent
    if args.command == "record":
        args.symbols = record_symbols(args.symbols)  # validated before anything is sent
    if args.command == "modify" and args.qty is None and args.price is None and not args.market:
        raise UsageError("modify needs --qty, --price or --market")
    if args.command == "calendar":
        try:
            config = _load_config(args)
        except UsageError:
            # The calendar needs no account: without credentials it answers offline.
            return asyncio.run(_offline_calendar(args, Output(as_json=args.json)))
        return asyncio.run(_run_account_command(config, _cmd_calendar, args))
    config = _load_config(args)
    if args.command in _ORDER_COMMANDS:
        _confirm_live(config, args)
    return asyncio.run(_run_account_command(config, _HANDLERS[args.command], args))


if __name__ == "__main__":
    sys.exit(main())
