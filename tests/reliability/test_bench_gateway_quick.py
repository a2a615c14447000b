"""benchmarks/bench_gateway.py still runs: ``--quick`` (tiny sizes) on the session's real Redis
and PostgreSQL completes, prints both tables and finds no duplicated notice or order.

Nothing here is about speed (the machine is shared): latency and memory are only printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_bench_gateway_quick_completes(
    redis_server: Any, postgres_dsn: str, tmp_path: Path
) -> None:
    """Both tables are printed; every consumer group got every filled share, no notice twice;
    no order was booked twice for a shared key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_gateway.py"),
            "--quick",
            "--redis",
            f"redis://127.0.0.1:{redis_server.port}/13",
            "--pg-dsn",
            postgres_dsn,
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=220,
        cwd=ROOT,
        env=env,
        check=False,
    )
    logs = "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in tmp_path.glob("*.log")
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:] + logs
    assert "### Gateway fan-out" in proc.stdout
    assert "### Gateway faults" in proc.stdout
    assert re.search(r"Redis used_memory: [\d.]+ MiB before", proc.stdout)
    results = json.loads((tmp_path / "results.json").read_text())
    fanout, faults = results["fanout"], results["faults"]
    assert fanout["direct_records"] > 0
    assert fanout["worker_records"] > 0
    assert faults["kills"] >= 1
    assert faults["fills"] > 0
    for group in faults["groups"].values():
        assert group["distinct"] > 0
        assert group["lost_qty"] == 0
        assert group["duplicated"] == 0
        assert group["excess_qty"] == 0
    assert faults["orders_duplicated"] == 0
    assert faults["keys_disagreeing"] == 0
    assert faults["orders_unseen"] == 0
