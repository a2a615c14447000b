"""Run the simulator as a stand-alone server (used by ``kis-async sim``)."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import anyio

from kis_async.config import Mode
from kis_async.sim.simulator import KISSimulator

__all__ = ["env_lines", "export_lines", "live_env_lines", "run"]


def env_lines(sim: KISSimulator) -> list[str]:
    """The ``KIS_*=value`` lines that point a bot at ``sim`` (served, so the port is known):
    KIS_APP_KEY, KIS_APP_SECRET, KIS_ACCOUNT_ID, KIS_HTS_ID, KIS_MODE, KIS_REST_URL,
    KIS_WS_URL. They are simulator credentials, not secrets."""
    return sim.env_lines()


def live_env_lines(sim: KISSimulator) -> list[str]:
    """:func:`env_lines` of the live simulator linked to a paper one, named ``KIS_LIVE_*``
    (``KIS_LIVE_APP_KEY``, ...), for clients that take both environments' keys."""
    return ["KIS_LIVE_" + line.removeprefix("KIS_") for line in env_lines(sim)]


def export_lines(sim: KISSimulator, lines: list[str] | None = None) -> list[str]:
    """The same variables (or ``lines``) as shell ``export NAME=value`` lines (values
    shell-quoted)."""
    exports = []
    for line in env_lines(sim) if lines is None else lines:
        name, _, value = line.partition("=")
        exports.append(f"export {name}={shlex.quote(value)}")
    return exports


async def run(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    seed: int = 0,
    mode: Mode | str = Mode.PAPER,
    out: TextIO | None = None,
    on_ready: Callable[[KISSimulator], None] | None = None,
    env_file: Path | None = None,
    with_live: bool = False,
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
        with_live: with ``mode="paper"``, also serve a live simulator (seed + 1, on
            ``port + 1``, or a free port with ``port=0``) linked to the paper one as KIS
            links its two environments (:meth:`KISSimulator.link`); its lines are printed as
            ``KIS_LIVE_*``. python-kis in paper mode needs this: it takes a live app key too.
        **options: any other :class:`KISSimulator` keyword (given to both simulators).

    Raises:
        ValueError: ``with_live`` without paper mode.
    """
    stream = out if out is not None else sys.stdout
    sim = KISSimulator(seed=seed, mode=mode, **options)
    live: KISSimulator | None = None
    if with_live:
        if sim.mode is not Mode.PAPER:
            raise ValueError("with_live serves a live simulator next to a paper one")
        live = KISSimulator(seed=seed + 1, mode=Mode.LIVE, **options)
        sim.link(live)
    async with contextlib.AsyncExitStack() as stack:
        running = await stack.enter_async_context(sim.serve(host=host, port=port))
        lines = env_lines(running)
        stream.write(f"# KIS simulator ({running.mode.value}) listening on {running.rest_url}\n")
        if live is not None:
            await stack.enter_async_context(live.serve(host=host, port=port + 1 if port else 0))
            lines += live_env_lines(live)
            stream.write(
                f"# linked live simulator listening on {live.rest_url} (KIS_LIVE_* lines)\n"
            )
        if running.replay is not None:
            symbols = ", ".join(running.exchange.symbols)
            stream.write(
                f"# replaying {running.replay.remaining} recorded frames ({symbols}) from the "
                "first subscription\n"
            )
        if env_file is not None:
            text = "# written by kis-async sim; simulator credentials, not secrets\n"
            text += "".join(line + "\n" for line in lines)
            await anyio.Path(env_file).write_text(text, encoding="utf-8")
            stream.write(f"# wrote these variables to {env_file}\n")
        stream.write("# paste these lines into the shell that runs your bot:\n")
        for line in export_lines(running, lines):
            stream.write(line + "\n")
        stream.flush()
        if on_ready is not None:
            on_ready(running)
        await asyncio.Event().wait()
