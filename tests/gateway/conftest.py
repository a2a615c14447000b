"""Fixtures for the multi-process tests: worker scripts run as OS processes that print
``"ready"``, wait for ``go`` on stdin (so several start at the same instant), then print one
JSON result line. Any child still running at the end of a test is killed and reaped."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

#: Generous bound for each wait on a child process (the machine may be loaded).
STEP = 90.0


class Child:
    """One worker OS process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self) -> Any:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), STEP)
        assert raw, f"worker exited early with {await self.proc.wait()}"
        return json.loads(raw)

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")

    async def result(self) -> Any:
        value = await self.line()
        assert await asyncio.wait_for(self.proc.wait(), STEP) == 0
        return value

    async def killed(self) -> None:
        """Wait for the worker to die by SIGKILL (its own, mid-order)."""
        assert await asyncio.wait_for(self.proc.wait(), STEP) == -signal.SIGKILL


@pytest.fixture
async def children() -> AsyncIterator[Any]:
    """``await children(script, *args)`` starts a worker and waits for its ``ready``."""
    started: list[Child] = []

    async def start(script: Path, *args: str) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        child = Child(proc)
        started.append(child)
        assert await child.line() == "ready"
        return child

    yield start
    for child in started:
        if child.proc.returncode is None:
            child.proc.kill()
        await child.proc.wait()
