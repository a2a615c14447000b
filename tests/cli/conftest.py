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
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kis_async import KISConfig, Mode
from kis_async.cli import main
from kis_async.sim import KISSimulator


class _PerThreadStream(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr`` while in-process CLI runs overlap: each
    worker thread writes to its own buffer, everything else to the original stream.
    (``contextlib.redirect_stdout`` swaps a process-wide global, so two overlapping runs would
    restore each other's buffer and leave ``sys.stdout`` pointing at a dead StringIO.)"""

    def __init__(self, fallback: Any) -> None:
        super().__init__()
        self._fallback = fallback
        self._local = threading.local()

    def _target(self) -> Any:
        return getattr(self._local, "stream", None) or self._fallback

    @contextlib.contextmanager
    def captured(self, stream: io.StringIO) -> Iterator[None]:
        self._local.stream = stream
        try:
            yield
        finally:
            self._local.stream = None

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return bool(self._target().isatty())

    def fileno(self) -> int:
        return int(self._target().fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self._target(), "encoding", "utf-8"))


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

    def per_thread(name: str) -> _PerThreadStream:
        # Installed at the first run of the test (pytest sets its own capture streams at the
        # start of each test phase, so a fixture-time patch would be replaced).
        current = getattr(sys, name)
        if isinstance(current, _PerThreadStream):
            return current
        proxy = _PerThreadStream(current)
        monkeypatch.setattr(sys, name, proxy)
        return proxy

    async def run(*argv: str, stdin: io.StringIO | None = None) -> CLIResult:
        out, err = io.StringIO(), io.StringIO()
        stdout, stderr = per_thread("stdout"), per_thread("stderr")

        def call() -> int:
            with stdout.captured(out), stderr.captured(err):
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
