"""``kis-async record``: record a market session (trades and books) to a replayable file.

Kept apart from :mod:`kis_async.cli` (which wires it in). The file is a session recording
(:mod:`kis_async.recording`): every REST exchange and WebSocket frame, masked; replay it with
``kis-async sim --replay PATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import IO, TYPE_CHECKING, Any, Protocol

from kis_async.validation import check_symbols

if TYPE_CHECKING:
    from kis_async.broker import KISBroker

__all__ = ["add_record_parser", "cmd_record", "record_symbols"]


class _Out(Protocol):
    as_json: bool
    stream: IO[str]

    def json(self, value: Any) -> None: ...
    def line(self, text: str = "") -> None: ...


def add_record_parser(sub: Any, common: argparse.ArgumentParser, minutes: Any) -> None:
    """Add the ``record`` command to the ``kis-async`` sub-parsers (``minutes`` parses a
    positive number)."""
    record = sub.add_parser(
        "record",
        parents=[common],
        help="record trades and books to a replayable file",
        description="Subscribe to trades and order books of the symbols for N minutes and "
        "record every REST exchange and WebSocket frame, masked (no secrets, no account "
        "numbers), to a gzip JSON-lines file. Replay it with `kis-async sim --replay PATH`.",
    )
    record.add_argument(
        "--symbols", nargs="+", required=True, help="KRX codes (space or comma separated)"
    )
    record.add_argument("--minutes", type=minutes, required=True, help="how long to record")
    record.add_argument(
        "--out", "-o", default="session.jsonl.gz", help="file to write (session.jsonl.gz)"
    )
    record.add_argument("--no-books", action="store_true", help="trades only")


def record_symbols(values: list[str]) -> tuple[str, ...]:
    """The symbols of ``--symbols`` (space or comma separated), validated.

    Raises:
        InvalidOrderError: no symbol, or a malformed one.
    """
    parts = [part for value in values for part in value.split(",") if part]
    return check_symbols(parts)


async def _drain(stream: AsyncIterator[Any]) -> None:
    async for _ in stream:
        pass


async def cmd_record(broker: KISBroker, args: argparse.Namespace, out: _Out) -> int:
    """Run ``kis-async record``."""
    symbols = args.symbols
    seconds = float(args.minutes) * 60.0
    async with broker.record(args.out) as recorder:
        quotes = broker.quotes(symbols)
        books = None if args.no_books else broker.orderbooks(symbols)
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(quotes)
            if books is not None:
                await stack.enter_async_context(books)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds), asyncio.TaskGroup() as group:
                    group.create_task(_drain(quotes))
                    if books is not None:
                        group.create_task(_drain(books))
    summary = {"path": str(args.out), "events": recorder.events, "symbols": list(symbols)}
    if out.as_json:
        out.json(summary)
    else:
        out.line(f"recorded {recorder.events} events for {', '.join(symbols)} to {args.out}")
    return 0
