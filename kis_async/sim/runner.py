"""Run the simulator as a stand-alone server (used by ``kis-async sim``)."""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import anyio

from kis_async.config import Mode
from kis_async.sim.simulator import KISSimulator

__all__ = ["env_lines", "export_lines", "run"]


def env_lines(sim: KISSimulator) -> list[str]:
    """The ``KIS_*=value`` lines that point a bot at ``sim`` (served, so the port is known):
    KIS_APP_KEY, KIS_APP_SECRET, KIS_ACCOUNT_ID, KIS_HTS_ID, KIS_MODE, KIS_REST_URL,
    KIS_WS_URL. They are simulator credentials, not secrets."""
    return sim.env_lines()


def export_lines(sim: KISSimulator) -> list[str]:
    """The same variables as shell ``export NAME=value`` lines (values shell-quoted)."""
    lines = []
    for line in env_lines(sim):
        name, _, value = line.partition("=")
        lines.append(f"export {name}={shlex.quote(value)}")
    return lines


async def run(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    seed: int = 0,
    mode: Mode | str = Mode.PAPER,
    out: TextIO | None = None,
    on_ready: Callable[[KISSimulator], None] | None = None,
    env_file: Path | None = None,
    **options: Any,
) -> None:
    """Serve a simulator on ``host:port`` until cancelled.

    Prints ``export KIS_...`` lines (to ``out``, default stdout) once listening, and writes
    them as a ``.env`` file to ``env_file`` when one is given.

    Args:
        host: interface to bind; keep the default 127.0.0.1 unless you know why not.
        port: TCP port; 0 picks a free one (the printed lines carry the real port).
        seed: market and credential seed.
        mode: ``"paper"`` or ``"live"``.
        out: where to print the environment lines.
        on_ready: called with the running simulator once it listens.
        env_file: also write ``NAME=value`` lines to this file (replaced if it exists).
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
        if env_file is not None:
            text = "# written by kis-async sim; simulator credentials, not secrets\n"
            text += "".join(line + "\n" for line in env_lines(running))
            await anyio.Path(env_file).write_text(text, encoding="utf-8")
            stream.write(f"# wrote these variables to {env_file}\n")
        stream.write("# paste these lines into the shell that runs your bot:\n")
        for line in export_lines(running):
            stream.write(line + "\n")
        stream.flush()
        if on_ready is not None:
            on_ready(running)
        await asyncio.Event().wait()
