"""Many workers, one account: the simulator, a gateway and three workers, for a few seconds.

    python examples/gateway/run.py --redis redis://127.0.0.1:6379/0 [--seconds 12]
                                   [--pg-dsn postgresql://...]

Starts, as separate processes:

* ``kis-async sim`` (the local KIS simulator, paper mode, a free port);
* ``kis-async gateway``: holds the account's one WebSocket session, the token and the
  approval key, and publishes quotes and execution notices to Redis Streams;
* ``quote_logger.py``: logs trades of three symbols, read through the gateway;
* ``strategy.py``: places keyed market orders through the order journal (PostgreSQL with
  ``--pg-dsn``, else an SQLite file), REST going straight to KIS with the shared token and
  rate budget;
* ``recorder.py``: writes each execution notice to SQLite as the consumer group ``recorder``.

After ``--seconds`` it stops them in order (workers, gateway, simulator) and prints a summary
that checks the outcome against the simulator's own ledger: quotes logged, every keyed order
booked once, every fill recorded exactly once. The exit code is 1 if a check fails.

Needs a Redis 7 server (``--redis`` or ``KIS_GATEWAY_REDIS``) and the ``gateway`` and ``sim``
extras (``pip install "kis-async[gateway,sim]"``; ``postgres`` too for ``--pg-dsn``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from kis_async import KISConfig
from kis_async.gateway.keys import GatewayKeys

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "kis_async.cli"]
START_TIMEOUT = 60.0


class Launcher:
    """The child processes, their logs, and a clean shutdown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start one child with its output in ``<workdir>/<name>.log``."""
        with open(self.workdir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(  # noqa: S603 (our own interpreter and scripts)
                args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        """What a child printed so far."""
        return (self.workdir / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def summary(self, name: str) -> dict[str, Any] | None:
        """The ``SUMMARY {json}`` line a worker prints last."""
        for line in reversed(self.log(name).splitlines()):
            if line.startswith("SUMMARY "):
                result: dict[str, Any] = json.loads(line[len("SUMMARY ") :])
                return result
        return None

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Signal one child (by its own pid) and wait; kill it if it does not exit."""
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def stop_all(self) -> None:
        """Stop every child still running, newest first."""
        for name in reversed(list(self.procs)):
            self.stop(name, signal.SIGINT if name == "sim" else signal.SIGTERM)


def wait_for(what: str, check: Any, timeout: float = START_TIMEOUT) -> Any:
    """Poll ``check()`` until it returns something truthy; raise naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def read_env_file(path: Path) -> dict[str, str] | None:
    """The ``KIS_*`` lines ``kis-async sim --env-file`` wrote, once it has."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    values = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    return values if "KIS_WS_URL" in values else None


def sim_admin(rest_url: str, command: str) -> Any:
    """The simulator's admin route: its own ledger, to check the outcome against."""
    with urllib.request.urlopen(f"{rest_url}/__sim__/{command}", timeout=10) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


def gateway_connected(redis_url: str, keys: GatewayKeys) -> bool:
    """True once the active gateway's heartbeat says its KIS session is up."""
    import redis  # noqa: PLC0415 (the gateway extra)

    client = redis.Redis.from_url(redis_url)
    try:
        raw = client.get(keys.heartbeat)
    finally:
        client.close()
    return raw is not None and bool(json.loads(raw).get("connected"))


def recorded_fills(db: Path) -> list[tuple[str, int | None, int]]:
    """(order id, cumulative, qty) of every fill the recorder wrote."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return list(conn.execute("SELECT order_id, cum, qty FROM fills"))
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def oid(text: str) -> str:
    """An order number without KIS's leading zeros."""
    return text.lstrip("0") or "0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--redis", default=os.environ.get("KIS_GATEWAY_REDIS", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--seconds", type=float, default=12.0, help="how long the workers run")
    parser.add_argument("--pg-dsn", default=os.environ.get("KIS_JOURNAL_DSN") or None)
    parser.add_argument("--workdir", default=None, help="keep logs and databases here")
    args = parser.parse_args()
    if args.seconds < 3:
        parser.error("--seconds must be at least 3")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="kis-gateway-example-"))
    workdir.mkdir(parents=True, exist_ok=True)
    launcher = Launcher(workdir)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    base_env["PYTHONUNBUFFERED"] = "1"
    try:
        env_file = workdir / "sim.env"
        launcher.start("sim", [*CLI, "sim", "--port", "0", "--env-file", str(env_file)], base_env)
        sim_env = wait_for("the simulator", lambda: read_env_file(env_file))
        env = base_env | sim_env | {"KIS_GATEWAY_REDIS": args.redis, "KIS_TOKEN_CACHE_DIR": "none"}
        rest_url = sim_env["KIS_REST_URL"]
        print(f"simulator at {rest_url}; logs in {workdir}")

        config = KISConfig.from_env(environ=sim_env)
        launcher.start(
            "gateway", [*CLI, "gateway", "--redis", args.redis, "--id", "example-gw"], env
        )
        wait_for(
            "the gateway's KIS session",
            lambda: gateway_connected(args.redis, GatewayKeys.for_config(config)),
        )
        print("gateway active and connected")

        seconds = str(args.seconds)
        db = workdir / "executions.db"
        launcher.start(
            "recorder", [sys.executable, str(HERE / "recorder.py"), "--db", str(db)], env
        )
        launcher.start(
            "quotes", [sys.executable, str(HERE / "quote_logger.py"), "--seconds", seconds], env
        )
        strategy = [sys.executable, str(HERE / "strategy.py"), "--seconds", seconds,
                    "--sqlite", str(workdir / "journal.db"),
                    "--max-orders", str(max(1, int(args.seconds * 0.5)))]  # fmt: skip
        if args.pg_dsn:
            strategy += ["--pg-dsn", args.pg_dsn]
        launcher.start("strategy", strategy, env)
        print(f"3 workers running for {args.seconds:g} s")

        launcher.procs["strategy"].wait(timeout=args.seconds + START_TIMEOUT)
        launcher.procs["quotes"].wait(timeout=args.seconds + START_TIMEOUT)
        # Let the recorder catch up with every fill the exchange made, then stop it.
        exchange_fills = int(sim_admin(rest_url, "state")["fills"])
        with contextlib.suppress(SystemExit):
            wait_for(
                "the recorder",
                lambda: len({(o, c) for o, c, _ in recorded_fills(db)}) >= exchange_fills,
                timeout=20.0,
            )
        launcher.stop("recorder")
        gateway_rc = launcher.stop("gateway")
        orders = sim_admin(rest_url, "orders")
    finally:
        launcher.stop_all()
    return report(launcher, orders, recorded_fills(db), gateway_rc)


def report(
    launcher: Launcher,
    orders: list[dict[str, Any]],
    fills: list[tuple[str, int | None, int]],
    gateway_rc: int | None,
) -> int:
    """Print the summary; 0 when every check holds."""
    failures: list[str] = []
    for name in ("quotes", "strategy", "recorder"):
        if launcher.summary(name) is None:
            failures.append(f"{name} printed no summary (see {launcher.workdir / name}.log)")
    quotes = (launcher.summary("quotes") or {}).get("quotes", {})
    placed: dict[str, str] = (launcher.summary("strategy") or {}).get("placed", {})
    again: dict[str, str] = (launcher.summary("strategy") or {}).get("again", {})
    booked = {oid(o["odno"]): o for o in orders if o["kind"] == "new"}
    total_quotes = sum(quotes.values())
    print("\n== summary ==")
    print(f"quotes logged through the gateway: {total_quotes} "
          f"({', '.join(f'{s} {n}' for s, n in quotes.items())})")  # fmt: skip
    if total_quotes == 0:
        failures.append("no quotes were logged")
    ours = {oid(v) for v in placed.values()}
    print(f"keyed orders placed: {len(placed)}; orders booked at the exchange: {len(booked)}")
    if not placed:
        failures.append("the strategy placed no order")
    if ours != set(booked):
        failures.append(f"placed {sorted(ours)} but the exchange booked {sorted(booked)}")
    for key, order_id in again.items():
        same = placed.get(key) == order_id
        print(f"placing {key} again returned the same order: {'yes' if same else 'NO'}")
        if not same:
            failures.append(f"re-placing {key} gave a different order")
    seen: dict[tuple[str, int | None], int] = {}
    recorded_qty: dict[str, int] = {}
    for order_id, cum, qty in fills:
        seen[(oid(order_id), cum)] = seen.get((oid(order_id), cum), 0) + 1
        recorded_qty[oid(order_id)] = recorded_qty.get(oid(order_id), 0) + qty
    duplicated = sum(n - 1 for n in seen.values())
    filled = {k: o["filled_qty"] for k, o in booked.items() if o["filled_qty"]}
    missing = {
        k: q - recorded_qty.get(k, 0) for k, q in filled.items() if recorded_qty.get(k, 0) < q
    }
    print(f"filled orders at the exchange: {len(filled)} ({sum(filled.values())} shares); "
          f"fills recorded: {len(fills)}, duplicated {duplicated}, "
          f"orders with fills missing {len(missing)}")  # fmt: skip
    if not filled:
        failures.append("nothing was filled at the exchange")
    if duplicated or missing:
        failures.append(
            f"fills not recorded exactly once: duplicated {duplicated}, missing {missing}"
        )
    print(f"gateway stopped gracefully: {'yes' if gateway_rc == 0 else f'NO (exit {gateway_rc})'}")
    if gateway_rc != 0:
        failures.append(f"the gateway exited with {gateway_rc}")
    for failure in failures:
        print(f"FAILED: {failure}")
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
