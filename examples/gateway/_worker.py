"""Shared by the gateway example's workers: the configuration, the Redis URL, a clean stop.

Every worker reads the account from ``KIS_*`` (as every ``kis-async`` command does) and the
gateway's Redis from ``--redis`` or ``KIS_GATEWAY_REDIS``. SIGTERM and SIGINT end a worker
gracefully: its streams close and its registrations are withdrawn at once (a killed worker's
registrations expire with its lease instead). The last line a worker prints is
``SUMMARY {json}``, which ``run.py`` reads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def parser(description: str) -> argparse.ArgumentParser:
    """The options every worker takes."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument(
        "--redis",
        default=os.environ.get("KIS_GATEWAY_REDIS", DEFAULT_REDIS),
        help="the gateway's Redis (default: $KIS_GATEWAY_REDIS or %(default)s)",
    )
    result.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop after this long (default: run until SIGTERM)",
    )
    return result


def summary(payload: dict[str, Any]) -> None:
    """Print the machine-readable last line."""
    print("SUMMARY " + json.dumps(payload, sort_keys=True), flush=True)


def run(main: Callable[[], Awaitable[None]], seconds: float | None) -> None:
    """Run ``main`` until it returns, ``seconds`` pass, or SIGTERM/SIGINT arrives."""

    async def runner() -> None:
        task = asyncio.ensure_future(main())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(seconds):
                await task
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    try:
        asyncio.run(runner())
    except KeyboardInterrupt:
        sys.exit(130)
