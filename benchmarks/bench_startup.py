"""Benchmark: start-up cost -- ``import kis_async`` and a one-shot ``kis-async price 005930``.

Each figure runs in a fresh interpreter, the kinds interleaved over repetitions (median):

* ``import httpx, websockets, pydantic`` -- the floor: the libraries kis_async is built on;
* ``import kis_async`` -- the claim (target: <= 1.3x the floor);
* ``from kis_async import KISBroker, KISConfig`` -- what a program that uses the broker pays
  (context: it builds the pydantic models and the REST and stream stacks; no target);
* ``kis-async price 005930`` against the simulator (in its own process), start to exit, with a
  warm token cache, next to the floor's and a bare interpreter's wall time.

Import time is the sum of the top-level entries of ``python -X importtime`` (what the imports
themselves cost, without interpreter start-up); wall time is the whole process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from _common import ROOT, SimProcess, fmt_num, fmt_ratio, median, print_table, verdict

MAX_IMPORT_RATIO = 1.3
FLOOR = "import httpx, websockets, pydantic"
IMPORTS = {
    "floor": FLOOR,
    "kis_async": "import kis_async",
    "broker": "from kis_async import KISBroker, KISConfig",
    "bare": "pass",
}
LABELS = {
    "floor": f"`{FLOOR}` (floor)",
    "kis_async": "`import kis_async`",
    "broker": "`from kis_async import KISBroker, KISConfig`",
    "bare": "`python -c pass` (interpreter only)",
    "cli": "`kis-async price 005930` vs the simulator",
}
CLI = "import sys; from kis_async.cli import main; sys.exit(main(sys.argv[1:]))"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(extra or {})}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def import_time_ms(stderr: str) -> float:
    """Sum of the top-level cumulative times in ``-X importtime`` output, in ms."""
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if name.startswith(" ") and not name.startswith("  "):
            total += int(cumulative)
    return total / 1000


def run_import(code: str) -> tuple[float, float]:
    """(import ms, wall ms) of ``python -X importtime -c code`` in a fresh process."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
        cwd=ROOT,
    )
    wall = (time.perf_counter() - started) * 1000
    return import_time_ms(proc.stderr), wall


def run_cli(env: dict[str, str]) -> float:
    """Wall ms of ``kis-async price 005930`` (through ``kis_async.cli.main``)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CLI, "price", "005930"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
    )
    wall = (time.perf_counter() - started) * 1000
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"kis-async price failed: {tail[0][:200]}")
    return wall


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the start-up benchmark, print its table and target, and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    reps = args.reps or (2 if args.quick else 9)

    imports: dict[str, list[float]] = {k: [] for k in IMPORTS}
    walls: dict[str, list[float]] = {k: [] for k in [*IMPORTS, "cli"]}
    options = {"seed": 5, "mode": "live", "rate_limit": False, "quote_interval": None}
    with SimProcess(options) as sim, tempfile.TemporaryDirectory() as cache:
        info = sim.info
        cli_env = _env(
            {
                "KIS_APP_KEY": info["app_key"],
                "KIS_APP_SECRET": info["app_secret"],
                "KIS_ACCOUNT_ID": info["account_id"],
                "KIS_HTS_ID": info["hts_id"],
                "KIS_MODE": info["mode"],
                "KIS_REST_URL": info["rest_url"],
                "KIS_WS_URL": info["ws_url"],
                # A warm cache, as for anyone who ran the CLI before (the simulator, like KIS,
                # issues one token a minute).
                "KIS_TOKEN_CACHE_DIR": cache,
            }
        )
        run_cli(cli_env)  # fills the token cache
        for rep in range(reps):
            kinds = list(IMPORTS)
            kinds = kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]
            for kind in kinds:
                imported, wall = run_import(IMPORTS[kind])
                imports[kind].append(imported)
                walls[kind].append(wall)
            walls["cli"].append(run_cli(cli_env))

    floor_import = median(imports["floor"])
    floor_wall = median(walls["floor"])
    rows = []
    for kind in [*IMPORTS, "cli"]:
        imported = median(imports[kind]) if kind in imports else None
        wall = median(walls[kind])
        rows.append(
            [
                LABELS[kind],
                fmt_num(imported, 1) if imported is not None else "-",
                fmt_ratio(imported / floor_import) if imported is not None else "-",
                fmt_num(wall, 0),
                fmt_ratio(wall / floor_wall),
            ]
        )
    print_table(
        f"Start-up: fresh interpreter per figure (median of {reps})",
        ["what", "import ms", "import vs floor", "process wall ms", "wall vs floor"],
        rows,
    )
    ratio = median(imports["kis_async"]) / floor_import
    print("\nTargets:")
    print(
        f"- `import kis_async` <= {MAX_IMPORT_RATIO}x the floor's import time: "
        f"{fmt_ratio(ratio)} -> {verdict(ratio <= MAX_IMPORT_RATIO)}"
    )
    return {"import_ratio": ratio, "imports": imports, "walls": walls}


if __name__ == "__main__":
    main()
