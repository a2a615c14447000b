"""``kis-async gateway``: hold the account's one KIS session and serve it to workers via Redis.

Run two (on two machines, or twice on one) for high availability: one is active, the other
stands by and takes over when it dies. One line is printed per state change; SIGINT or
SIGTERM stops gracefully (the lease is released, so a standby takes over at once).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from typing import Any, Final

from kis_async.cli.common import EXIT_OK, Output, UsageError, _load_config

#: Seconds between looks at the gateway's state (a line is printed when it changed).
_POLL: Final = 0.1


def cmd_gateway(args: argparse.Namespace) -> int:
    """Run the gateway until SIGINT/SIGTERM."""
    try:
        import redis  # noqa: F401, PLC0415 - optional dependency
    except ModuleNotFoundError:
        raise UsageError(
            "kis-async gateway needs the 'gateway' extra: pip install 'kis-async[gateway]'"
        ) from None
    if not args.redis.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError("--redis must be a redis://, rediss:// or unix:// URL")
    config = _load_config(args)
    return asyncio.run(_serve(config, args, Output(as_json=args.json)))


def _describe(status: dict[str, Any]) -> tuple[str, ...]:
    """What a line is printed for: the state, and while active the session and readiness."""
    if status["state"] != "active":
        return (status["state"],)
    return (
        "active",
        "connected" if status["connected"] else "disconnected",
        "ready" if status["ready"] else "restoring",
    )


async def _serve(config: Any, args: argparse.Namespace, out: Output) -> int:
    from kis_async.gateway.server import Gateway  # noqa: PLC0415 - needs the extra

    gateway = Gateway(config, args.redis, gateway_id=args.id, lease_ttl=args.lease_ttl)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform
            loop.add_signal_handler(signum, gateway.stop)
    task = loop.create_task(gateway.run(), name="kis-async-gateway")
    shown: tuple[str, ...] = ()
    try:
        while True:
            status = gateway.status()
            state = _describe(status)
            if state != shown:
                shown = state
                _print_state(out, status, state)
            if task.done():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), _POLL)
        await task
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return EXIT_OK


def _print_state(out: Output, status: dict[str, Any], state: tuple[str, ...]) -> None:
    if out.as_json:
        out.json(
            {
                "time": time.time(),
                "id": status["id"],
                "state": state[0],
                "connected": status["connected"],
                "ready": status["ready"],
                "registrations": status["registrations"],
                "namespace": status["namespace"],
            }
        )
        return
    stamp = time.strftime("%H:%M:%S")
    detail = f"  {status['registrations']} registration(s)" if state[0] == "active" else ""
    out.line(f"{stamp}  gateway {status['id']}  {' '.join(state)}{detail}")


def add_gateway_parser(sub: Any, common: argparse.ArgumentParser, seconds: Any) -> None:
    """The ``gateway`` sub-command's arguments."""
    parser = sub.add_parser(
        "gateway",
        parents=[common],
        help="hold the KIS session and serve it to workers through Redis",
    )
    parser.add_argument(
        "--redis", required=True, metavar="URL", help="the Redis the workers use (redis://...)"
    )
    parser.add_argument(
        "--id", default=None, metavar="NAME", help="this gateway's name (default: host-pid-random)"
    )
    parser.add_argument(
        "--lease-ttl",
        type=seconds,
        default=5.0,
        metavar="S",
        help="seconds a standby waits after the active gateway died (5)",
    )
