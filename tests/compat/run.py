"""Compatibility suite: other KIS clients, unmodified but for their URLs, against ``kis-async sim``.

Run by ``.ci/compat.sh`` in a separate venv holding the wheel of this checkout (with the
``sim`` extra) and the pinned peers of ``requirements.txt``. For each client and mode, side by
side, it starts a fresh simulator on 127.0.0.1 (``kis-async sim --port 0``), runs the peer
script in a child process and prints one step table per client and mode. Exit status 1 when a
flow fails that is not listed in :data:`KNOWN` with the reason it cannot pass.

Environment: COMPAT_SESSION_SECONDS (default 30; 180 for the 3-minute session flow),
COMPAT_ONLY (comma-separated client names), COMPAT_JOBS (runs side by side; default all).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLOWS = {
    "kis-trader": ["quote", "order book", "stock lookup", "balance", "deposit/buyable",
                   "buy (market)", "buy (limit, resting)", "pending orders", "today's orders",
                   "modify", "cancel", "realtime trades", "realtime books", "NXT/UN trades",
                   "execution notices", "session"],
    "python-kis": ["stock lookup", "quote", "order book", "balance", "deposit", "orderable amount",
                   "buy (market)", "buy (limit, resting)", "pending orders", "today's orders",
                   "modify", "cancel", "realtime trades", "realtime books", "execution notices",
                   "session"],
    "official-ws": ["realtime trades", "realtime books", "execution notices", "session"],
}  # fmt: skip
SCRIPTS = {
    "kis-trader": "peer_kis_trader.py",
    "python-kis": "peer_python_kis.py",
    "official-ws": "peer_official_ws.py",
}
#: python-kis parses the legacy layouts (46-field trades, 23-field notices); kis-trader and the
#: official loop the current ones (its 63-field H0STASP0).
LAYOUT = {"kis-trader": "current", "python-kis": "legacy", "official-ws": "current"}
#: (client, mode, flow) -> why it cannot pass against real KIS either (the client's own limit).
KNOWN: dict[tuple[str, str, str], str] = {
    ("kis-trader", "paper", "NXT/UN trades"): "paper trading is KRX only on KIS (no NXT/UN feeds)",
    ("python-kis", "paper", "pending orders"):
        "python-kis refuses it in paper mode (NotImplementedError; KIS has no paper "
        "inquire-psbl-rvsecncl)",
    ("python-kis", "paper", "modify"):
        "python-kis refuses order revisions in paper mode (NotImplementedError)",
}  # fmt: skip


def sim_command() -> list[str]:
    """``kis-async`` of this venv (the wheel's console script), else ``-m kis_async.cli``."""
    script = Path(sys.executable).with_name("kis-async")
    if script.exists():
        return [str(script)]
    found = shutil.which("kis-async")
    return [found] if found else [sys.executable, "-m", "kis_async.cli"]


class Sim:
    """A ``kis-async sim`` child process; ``env`` holds the KIS_* lines it printed."""

    def __init__(self, mode: str, layout: str, *, with_live: bool = False) -> None:
        ping = "10" if float(os.environ.get("COMPAT_SESSION_SECONDS", "30")) >= 120 else "3"
        # A grace of a few PINGPONGs: a client that answered none would be closed well within
        # the session flow, so its passing proves the answers (text echo or control pong).
        grace = str(float(ping) * 4)
        cmd = [*sim_command(), "sim", "--port", "0", "--mode", mode, "--layout", layout,
               "--seed", "1234", "--pingpong-interval", ping,
               "--pingpong-grace", grace, *(["--with-live"] if with_live else [])]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.env: dict[str, str] = {}
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        last = "KIS_LIVE_WS_URL" if with_live else "KIS_WS_URL"
        while last not in self.env:
            line = self.proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"kis-async sim did not start: {cmd}")
            line = line.strip().removeprefix("export ")  # `kis-async sim` prints export lines
            if line.startswith("KIS_") and "=" in line:
                key, value = line.split("=", 1)
                self.env[key] = value

    def stats(self) -> dict[str, int]:
        """The counters (``GET /__sim__/stats``), summed with the linked live simulator's."""
        total: dict[str, int] = {}
        for name in ("KIS_REST_URL", "KIS_LIVE_REST_URL"):
            if name in self.env:
                url = self.env[name] + "/__sim__/stats"  # the http:// URL the simulator printed
                with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310
                    for key, value in json.load(r).items():
                        total[key] = total.get(key, 0) + value
        return total

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_peer(client: str, mode: str) -> dict[str, tuple[bool, str]]:
    # python-kis in paper mode takes a live app key too (its quotes and their socket are the
    # live environment's): `--with-live` serves a linked live simulator (KIS_LIVE_*).
    sim = Sim(mode, LAYOUT[client], with_live=client == "python-kis" and mode == "paper")
    fd, results_path = tempfile.mkstemp(prefix=f"compat-{client}-{mode}-", suffix=".jsonl")
    os.close(fd)
    try:
        env = os.environ | sim.env | {"COMPAT_RESULTS": results_path}
        proc = subprocess.run(
            [sys.executable, str(HERE / SCRIPTS[client])], env=env, cwd=HERE,
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        try:
            stats = sim.stats()
        except OSError:  # the simulator died: the session row says so
            stats = {}
    finally:
        sim.close()
    results: dict[str, tuple[bool, str]] = {}
    lines = Path(results_path).read_text(encoding="utf-8").splitlines()
    Path(results_path).unlink()
    for line in lines:
        row = json.loads(line)
        results.setdefault(row["flow"], (row["ok"], row["note"]))
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        results.setdefault("(script)", (False, f"exit {proc.returncode}: {tail}"))
    if "session" in results and not stats:
        results["session"] = (False, "the simulator's stats were unavailable (did it exit?)")
    elif "session" in results:
        ok, note = results["session"]
        pings = (
            f"; sim: {stats['pings_sent']} PINGPONG sent, answered by {stats['echoes_received']} "
            f"echoes + {stats['pongs_received']} control pongs, "
            f"{stats['ws_sessions_closed_pingpong']} sessions closed unanswered"
        )
        # A client that reconnects by itself (python-kis) would hide a session the simulator
        # closed for silence: any such close fails the flow.
        results["session"] = (ok and not stats["ws_sessions_closed_pingpong"], note + pings)
    return results


def _timed(client: str, mode: str) -> tuple[dict[str, tuple[bool, str]], float]:
    started = time.monotonic()
    return run_peer(client, mode), time.monotonic() - started


def main() -> int:
    only = {c for c in os.environ.get("COMPAT_ONLY", "").split(",") if c}
    runs = [(c, m) for c in FLOWS if not only or c in only for m in ("paper", "live")]
    # Every run has its own simulator on its own port and mostly waits (sessions, PINGPONG),
    # so they run side by side; the tables are printed in a fixed order.
    jobs = int(os.environ.get("COMPAT_JOBS", str(len(runs))))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {run: pool.submit(_timed, *run) for run in runs}
    unexpected = 0
    for client, mode in runs:
        flows = FLOWS[client]
        results, took = futures[(client, mode)].result()
        print(f"\n### {client} ({mode}, layout {LAYOUT[client]}) -- {took:.0f} s")
        print("| flow | result | note |\n|---|---|---|")
        passed = 0
        for flow in [*flows, *(f for f in results if f not in flows)]:
            ok, note = results.get(flow, (False, "not reached"))
            key = (client, mode, flow)
            if ok:
                status, passed = "pass", passed + 1
            elif key in KNOWN:
                status, note = "n/a (client)", KNOWN[key]
            else:
                status, unexpected = "FAIL", unexpected + 1
            first = (note.splitlines() or [""])[0]
            shown = first if flow == "session" else first[:110]
            shown = shown if ok or status == "FAIL" else note
            print(f"| {flow} | {status} | {shown} |")
        supported = len([f for f in flows if (client, mode, f) not in KNOWN])
        print(f"{client} {mode}: {passed}/{supported} supported flows pass")
    print(f"\ncompat: {unexpected} unexpected failure(s)")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
