"""Shared helpers of the peer scripts: a step recorder that prints one JSON line per flow.

Each peer script runs in the compat venv, with the simulator's ``KIS_*`` lines in its
environment, and reports ``{"flow": ..., "ok": true|false, "note": ...}`` lines on stdout;
``run.py`` collects them into the step table.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

SYMBOL = "005930"


def env(name: str) -> str:
    """A ``KIS_*`` value the simulator printed."""
    return os.environ[name]


def report(flow: str, ok: bool, note: str = "") -> None:
    """Record one step result: a JSON line in COMPAT_RESULTS (the peers' own log output on
    stdout cannot interleave with it), else on stdout."""
    line = json.dumps({"flow": flow, "ok": ok, "note": note[:200]}, ensure_ascii=False)
    target = os.environ.get("COMPAT_RESULTS")
    if target is None:
        print(line, flush=True)
        return
    with open(target, "a", encoding="utf-8") as out:
        out.write(line + "\n")


def step(flow: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` as ``flow``; report success (with the value's short text) or the error."""
    try:
        value = fn()
    except Exception as exc:  # a peer's failure is the result being reported
        last = traceback.extract_tb(exc.__traceback__)[-1]
        report(
            flow,
            False,
            f"{type(exc).__name__}: {exc} ({last.filename.split('/')[-1]}:{last.lineno})",
        )
        return None
    report(flow, True, "" if value is None else repr(value)[:120])
    return value


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true or raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def session_seconds() -> float:
    """The session-flow length: COMPAT_SESSION_SECONDS (180 for the full 3 minutes), default 30."""
    return float(os.environ.get("COMPAT_SESSION_SECONDS", "30"))


def fail_all(flows: list[str], reason: str) -> None:
    """Report every flow as failed (the peer could not even start)."""
    for flow in flows:
        report(flow, False, reason)
    sys.exit(0)
