"""The ``kis-async`` argument parser and its value types."""

from __future__ import annotations

import argparse
import math
from decimal import Decimal

from kis_async.cli.bars import add_bars_parser
from kis_async.cli.gateway import add_gateway_parser
from kis_async.cli.record import add_record_parser
from kis_async.errors import (
    InvalidOrderError,
)
from kis_async.models import (
    Exchange,
    ExecutionCursor,
    Market,
)
from kis_async.validation import positive_price


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
    add_gateway_parser(sub, common, _positive_float)
    sim.add_argument(
        "--layout",
        choices=["current", "legacy"],
        default="current",
        help="real-time record widths: current (47-field trades, 63-field H0STASP0, 26-field "
        "notices) or legacy (46/59/23, as KIS sent before 2026)",
    )
    sim.add_argument(
        "--with-live",
        action="store_true",
        default=False,
        help="with --mode paper, also serve a linked live simulator (KIS_LIVE_* lines), for "
        "clients that take both a paper and a live app key (python-kis)",
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
