"""Shared plumbing for the benchmark scripts: statistics, tables, the peer venv, the machine.

The benchmarks report ratios measured side by side in one run, medians over repetitions,
because the machine is shared and noisy; a lone absolute time is never the claim.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
BENCH_ENV = BENCH_DIR / ".bench-env"
#: The peer SDKs whose parsers and stream client are measured against ours.
PEERS = ("python-kis", "kis-trader")
#: kis_async's own runtime dependencies, so the peer venv can import it from the work tree.
OWN_DEPS = ("httpx", "websockets", "pydantic", "anyio", "tenacity", "cryptography")


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100.0 * len(ordered)) - 1))
    return ordered[rank]


def fmt_num(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators, or ``n/a``."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    """A ratio such as ``1.23x``, or ``n/a``."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.2f}x"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a Markdown table (so it pastes into the README as is)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    print(f"\n### {title}\n")
    print("| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(headers)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(row)) + " |")
    sys.stdout.flush()


def verdict(ok: bool | None) -> str:
    """``met`` / ``MISSED`` / ``n/a`` for a target check."""
    if ok is None:
        return "n/a"
    return "met" if ok else "MISSED"


def machine_summary() -> str:
    """One line naming the machine: cores, CPU model, Python."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"nproc={os.cpu_count()}, CPU={cpu}, Python {platform.python_version()}"


def bench_python() -> Path:
    """The interpreter of the peer venv (may not exist yet)."""
    return BENCH_ENV / "bin" / "python"


def peers_installed() -> dict[str, str | None]:
    """Installed version of each peer in the bench venv, or None."""
    python = bench_python()
    result: dict[str, str | None] = dict.fromkeys(PEERS)
    if not python.exists():
        return result
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        out[name] = None\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [str(python), "-c", code, *PEERS], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return result
    import json

    result.update(json.loads(proc.stdout))
    return result


def ensure_bench_env(*, install: bool) -> tuple[Path | None, dict[str, str]]:
    """Create the peer venv and install the peers and kis_async's dependencies into it.

    Args:
        install: when False (quick mode), use the venv only if it already has the peers.

    Returns:
        The venv interpreter (or None when unusable) and, per peer, a note saying why it is
        missing (empty when every peer is there).
    """
    notes: dict[str, str] = {}
    python = bench_python()
    if install:
        if not python.exists():
            print(f"creating the peer benchmark venv at {BENCH_ENV} ...", flush=True)
            venv.EnvBuilder(with_pip=True, clear=False).create(BENCH_ENV)
        for group in (list(OWN_DEPS), *[[peer] for peer in PEERS]):
            proc = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *group],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
                for name in group:
                    notes[name] = f"pip install {name} failed: {tail[0]}"
    if not python.exists():
        for peer in PEERS:
            notes.setdefault(peer, "not installed (quick mode installs nothing)")
        return None, notes
    versions = peers_installed()
    for peer, version in versions.items():
        if version is None:
            notes.setdefault(peer, "not installed in benchmarks/.bench-env")
    return python, notes


class SimProcess:
    """A KISSimulator served by ``_sim_server.py`` in a child process of this one.

    Use as a context manager; ``info`` holds the URLs and credentials. The child ends when its
    standard input closes; it is killed (by its own pid) if it does not within 10 s.
    """

    def __init__(self, options: dict[str, object], *, stamp: bool = False, replay: int = 0) -> None:
        import json

        cmd = [sys.executable, str(BENCH_DIR / "_sim_server.py"), "--options", json.dumps(options)]
        if stamp:
            cmd.append("--stamp")
        if replay:
            cmd += ["--replay", str(replay)]
        self._cmd = cmd
        self._proc: subprocess.Popen[str] | None = None
        self.info: dict[str, str] = {}

    def __enter__(self) -> SimProcess:
        import json

        self._proc = subprocess.Popen(
            self._cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(timeout=10)
            raise RuntimeError("the simulator process did not start")
        self.info = json.loads(line)
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def admin(self, command: str, payload: dict[str, object] | None = None) -> object:
        """Call the simulator's admin route (``/__sim__/<command>``)."""
        import json
        import urllib.request

        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 (loopback simulator URL)
            f"{self.info['rest_url']}/__sim__/{command}",
            data=data,
            method="POST" if data is not None else "GET",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())
