"""The ``kis-async`` command: a live demo, the simulator, and account commands.

::

    kis-async demo                       # the simulator in-process, a live table, a few orders
    kis-async sim --port 8080            # a local KIS for your own bot
    kis-async price 005930               # account commands read KIS_* (and ./.env)
    kis-async buy 005930 10 --price 70000 --yes
    kis-async stream quotes 005930 000660 --duration 10 --json
    kis-async gateway --redis redis://127.0.0.1:6379/0   # one KIS session for many workers

Exit codes: 0 success; 1 KIS refused or could not be reached (API and business errors, a
cancel with nothing left); 2 usage or configuration errors (bad arguments, missing variables,
a live order not confirmed); 130 interrupted. Errors are one line on stderr with KIS's msg_cd
and message, never a traceback (``--debug`` shows one). Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from kis_async.cli.account import (
    _ORDER_COMMANDS,
    Handler,
    _cmd_balance,
    _cmd_book,
    _cmd_calendar,
    _cmd_cancel,
    _cmd_cash,
    _cmd_modify,
    _cmd_orders,
    _cmd_place,
    _cmd_price,
    _confirm_live,
    _offline_calendar,
    _order_request,
    _run_account_command,
)
from kis_async.cli.account import _order_table as _order_table
from kis_async.cli.account import calendar_report as calendar_report
from kis_async.cli.account import journal_path as journal_path
from kis_async.cli.bars import cmd_bars
from kis_async.cli.common import (
    EXIT_API,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Output,
    UsageError,
    _load_config,
    _report_error,
)
from kis_async.cli.common import _describe_error as _describe_error
from kis_async.cli.common import logger as logger
from kis_async.cli.common import to_jsonable as to_jsonable
from kis_async.cli.common import won as won
from kis_async.cli.demo import DEMO_SYMBOLS as DEMO_SYMBOLS
from kis_async.cli.demo import run_demo
from kis_async.cli.gateway import cmd_gateway
from kis_async.cli.parser import build_parser
from kis_async.cli.record import cmd_record, record_symbols
from kis_async.cli.sim import _cmd_sim
from kis_async.cli.stream import _cmd_stream
from kis_async.errors import BrokerError, InvalidOrderError

# The ``name as name`` imports above keep the names other code and the tests import from
# ``kis_async.cli`` where they were before the module became a package.
__all__ = ["EXIT_API", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

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
    if args.command == "gateway":
        return cmd_gateway(args)
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
