"""``kis-async sim``: a local KIS simulator for your own bot."""

from __future__ import annotations

import argparse
import asyncio
import errno
import sys
from pathlib import Path
from typing import Any

from kis_async.cli.common import EXIT_OK, UsageError
from kis_async.config import Mode


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
    if args.with_live and args.mode != "paper":
        raise UsageError("--with-live serves a live simulator next to a paper one: --mode paper")
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
                with_live=args.with_live,
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
