"""The ``kis-async stream`` command: live quotes, books and executions as lines or JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kis_async.cli.common import EXIT_OK, Output, UsageError, _signed, to_jsonable, won
from kis_async.models import (
    KST,
    Execution,
    OrderBook,
    Quote,
)

if TYPE_CHECKING:
    from kis_async.broker import KISBroker


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
