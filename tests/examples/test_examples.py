"""Every example runs to completion against the embedded simulator (exit code 0)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def simulator_env(tmp_path: Path) -> dict[str, str]:
    """The current environment without any KIS_* variable: the examples pick the simulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    env["XDG_CACHE_HOME"] = str(tmp_path)  # keep token caches out of the real home
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("quickstart.py", "cash "),
        ("stream_quotes.py", "quotes; stream status"),
        ("place_and_track.py", "final status cancelled"),
        ("strategy_worker.py", "orders in"),
        ("sync_threads.py", "quotes seen by the callback"),
    ],
)
def test_example_runs_on_the_simulator(script: str, expected: str, tmp_path: Path) -> None:
    """The example exits 0 on its own within its time bound and prints what it promises."""
    result = subprocess.run(  # noqa: S603  (our own interpreter and files)
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env=simulator_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "embedded simulator" in result.stdout
    assert expected in result.stdout
    assert "Traceback" not in result.stderr


def test_my_strategy_example_passes_under_pytest(tmp_path: Path) -> None:
    """examples/test_my_strategy.py is itself a passing pytest module."""
    result = subprocess.run(  # noqa: S603  (our own interpreter and files)
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(EXAMPLES / "test_my_strategy.py"),
        ],
        cwd=ROOT,
        env=simulator_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


@pytest.mark.parametrize("script", ["place_and_track.py", "strategy_worker.py"])
def test_order_examples_refuse_a_live_account_by_default(script: str, tmp_path: Path) -> None:
    """With a LIVE account configured, order-placing examples stop before connecting."""
    env = simulator_env(tmp_path)
    env |= {
        "KIS_APP_KEY": "PSxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "KIS_APP_SECRET": "not-a-real-secret",
        "KIS_ACCOUNT_ID": "12345678-01",
        "KIS_MODE": "live",
        "KIS_REST_URL": "http://127.0.0.1:9",  # nothing listens; never contacted
        "KIS_WS_URL": "ws://127.0.0.1:9",
    }
    result = subprocess.run(  # noqa: S603  (our own interpreter and files)
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "KIS_EXAMPLES_ALLOW_LIVE_ORDERS=1" in result.stderr
    assert "Traceback" not in result.stderr
