"""CLI fixtures: a simulator on 127.0.0.1 and the KIS_* environment pointing at it.

The CLI's ``main()`` runs ``asyncio.run`` itself, so tests call it in a worker thread while
the simulator is served on the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kis_async import KISConfig, Mode
from kis_async.cli import main
from kis_async.sim import KISSimulator


@dataclass
class CLIResult:
    code: int
    out: str
    err: str


RunCLI = Callable[..., Awaitable[CLIResult]]


def env_for(config: KISConfig, cache_dir: Path) -> dict[str, str]:
    """The KIS_* variables for ``config`` (what `kis-async sim` tells a user to export)."""
    env = {
        "KIS_APP_KEY": config.app_key,
        "KIS_APP_SECRET": config.app_secret.get_secret_value(),
        "KIS_ACCOUNT_ID": config.account_id,
        "KIS_MODE": config.mode.value,
        "KIS_REST_URL": config.rest_url,
        "KIS_WS_URL": config.ws_url,
        "KIS_TOKEN_CACHE_DIR": str(cache_dir),
    }
    if config.hts_id:
        env["KIS_HTS_ID"] = config.hts_id
    return env


def _serve(mode: Mode) -> Callable[[], AsyncIterator[KISSimulator]]:
    async def fixture() -> AsyncIterator[KISSimulator]:
        # No server-side rate limit: these tests are about the CLI, and each command is a
        # new client that would otherwise share the paper limit of 2 requests/s.
        async with KISSimulator(seed=99, mode=mode, rate_limit=False).serve(port=0) as sim:
            yield sim

    return fixture


paper_sim = pytest.fixture(_serve(Mode.PAPER))
live_sim = pytest.fixture(_serve(Mode.LIVE))


def _runner(sim: KISSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunCLI:
    for name in list(os.environ):
        if name.startswith("KIS_"):
            monkeypatch.delenv(name)
    for name, value in env_for(sim.config(), tmp_path / "tokens").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # journals stay here
    monkeypatch.chdir(tmp_path)  # no stray ./.env
    secret = sim.app_secret

    async def run(*argv: str, stdin: io.StringIO | None = None) -> CLIResult:
        out, err = io.StringIO(), io.StringIO()

        def call() -> int:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                if stdin is not None:
                    monkeypatch.setattr(sys, "stdin", stdin)
                return main(list(argv))

        code = await asyncio.to_thread(call)
        result = CLIResult(code, out.getvalue(), err.getvalue())
        # Whatever the command, the app secret never reaches the terminal.
        assert secret not in result.out + result.err
        return result

    return run


@pytest.fixture
def cli(paper_sim: KISSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunCLI:
    """Run `kis-async ...` in-process against the paper simulator."""
    return _runner(paper_sim, tmp_path, monkeypatch)


@pytest.fixture
def cli_live(live_sim: KISSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunCLI:
    """Run `kis-async ...` in-process against the live-mode simulator."""
    return _runner(live_sim, tmp_path, monkeypatch)
