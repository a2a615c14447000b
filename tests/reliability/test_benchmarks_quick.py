"""The benchmark scripts still run: `run_all.py --quick` and `profile_hot.py all --quick` complete.

Nothing here is about speed: the machine is shared, so only completion and output are checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]
TABLES = (
    "### Decode",
    "### Stream latency at fixed offered loads",
    "### Throughput note",
    "### REST overhead in process",
    "### REST end to end",
    "### Start-up",
    "### Rate limiter",
    "### Memory",
)


@pytest.mark.timeout(300)
def test_run_all_quick_completes_and_prints_every_table() -> None:
    """run_all.py --quick exits 0 and prints every table."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=ROOT,
        env=env,
        check=False,
    )
    print(proc.stdout[-6000:])
    assert proc.returncode == 0, proc.stderr[-4000:]
    for title in TABLES:
        assert title in proc.stdout, f"missing table {title!r}"


@pytest.mark.timeout(200)
def test_profile_script_quick_completes_and_prints_every_section() -> None:
    """profile_hot.py all --quick exits 0 and prints each profiled path."""
    proc = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, str(ROOT / "benchmarks" / "profile_hot.py"), "all", "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stderr[-4000:]
    for section in (
        "## get_price via MockTransport",
        "## place_order via MockTransport",
        "## decode built+read: H0STASP0",
        "## stream consumer at 5k/s",
    ):
        assert section in proc.stdout, f"missing section {section!r}"
