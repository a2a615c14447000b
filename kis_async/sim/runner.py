"""Run the simulator as a stand-alone server (used by ``kis-async sim``)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any, TextIO

from kis_async.config import Mode
from kis_async.sim.simulator import KISSimulator

__all__ = ["env_lines", "run"]


def env_lines(sim: KISSimulator) -> list[str]:
    """The ``KIS_*=value`` lines that point a bot at ``sim`` (served, so the port is known):
    KIS_APP_KEY, KIS_APP_SECRET, KIS_ACCOUNT_ID, KIS_HTS_ID, KIS_MODE, KIS_REST_URL,
    KIS_WS_URL. They are simulator credentials, not secrets."""
    return sim.env_lines()


async def run(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    seed: int = 0,
    mode: Mode | str = Mode.PAPER,
    out: TextIO | None = None,
    on_ready: Callable[[KISSimulator], None] | None = None,
    **options: Any,
) -> None:
    """Serve a simulator on ``host:port`` until cancelled.

    Prints the ``KIS_*`` environment lines (to ``out``, default stdout) once listening.

    Args:
        host: interface to bind; keep the default 127.0.0.1 unless you know why not.
        port: TCP port; 0 picks a free one (the printed lines carry the real port).
        seed: market and credential seed.
        mode: ``"paper"`` or ``"live"``.
        out: where to print the environment lines.
        on_ready: called with the running simulator once it listens.
        **options: any other :class:`KISSimulator` keyword.
    """
    stream = out if out is not None else sys.stdout
    sim = KISSimulator(seed=seed, mode=mode, **options)
    async with sim.serve(host=host, port=port) as running:
        stream.write(f"# KIS simulator ({running.mode.value}) listening on {running.rest_url}\n")
        if running.replay is not None:
            symbols = ", ".join(running.exchange.symbols)
            stream.write(
                f"# replaying {running.replay.remaining} recorded frames ({symbols}) from the "
                "first subscription\n"
            )
        stream.write("# export these to point a bot at it:\n")
        for line in env_lines(running):
            stream.write(line + "\n")
        stream.flush()
        if on_ready is not None:
            on_ready(running)
        await asyncio.Event().wait()
