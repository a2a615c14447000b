"""examples/gateway/run.py: the simulator, a gateway and three worker processes on a real,
throwaway Redis (and PostgreSQL for the journal) run to completion and the outcome holds."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "examples" / "gateway" / "run.py"


def fresh_db(redis_server: Any, index: int) -> str:
    """A Redis URL on its own, emptied database (the simulator's seed fixes the namespace)."""
    import redis

    url = f"redis://127.0.0.1:{redis_server.port}/{index}"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url


def run_example(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, str(RUN), "--seconds", "6", "--workdir", str(tmp_path / "run"), *extra],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def check_outcome(result: subprocess.CompletedProcess[str], workdir: Path) -> None:
    output = result.stdout + result.stderr
    logs = "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in workdir.glob("*.log")
    )
    assert result.returncode == 0, output + logs
    assert "all checks passed" in result.stdout, output + logs
    quotes = re.search(r"quotes logged through the gateway: (\d+)", result.stdout)
    assert quotes is not None
    assert int(quotes.group(1)) > 0
    orders = re.search(r"keyed orders placed: (\d+); orders booked at the exchange: (\d+)", output)
    assert orders is not None
    assert int(orders.group(1)) >= 1
    assert orders.group(1) == orders.group(2)
    assert "returned the same order: yes" in result.stdout
    assert "duplicated 0, orders with fills missing 0" in result.stdout
    # The recorder's own table: one row per (order, cumulative), every placed order filled.
    conn = sqlite3.connect(workdir / "executions.db")
    try:
        rows = list(conn.execute("SELECT order_id, cum FROM fills"))
    finally:
        conn.close()
    assert rows
    assert len(rows) == len(set(rows))
    assert len({order_id for order_id, _ in rows}) == int(orders.group(1))
    assert "Traceback" not in logs, logs


@pytest.mark.timeout(240)
def test_gateway_example_with_sqlite_journal(redis_server: Any, tmp_path: Path) -> None:
    """Quotes are logged, every keyed order is booked once and every fill recorded once."""
    result = run_example(tmp_path, "--redis", fresh_db(redis_server, 11))
    check_outcome(result, tmp_path / "run")
    assert "journal: SQLiteJournal" in (tmp_path / "run" / "strategy.log").read_text()


@pytest.mark.timeout(240)
def test_gateway_example_with_postgres_journal(
    redis_server: Any, postgres_dsn: str, tmp_path: Path
) -> None:
    """The same run with the strategy's journal on PostgreSQL."""
    result = run_example(tmp_path, "--redis", fresh_db(redis_server, 12), "--pg-dsn", postgres_dsn)
    check_outcome(result, tmp_path / "run")
    assert "journal: PostgresJournal" in (tmp_path / "run" / "strategy.log").read_text()
