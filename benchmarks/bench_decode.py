"""Benchmark 1: decoding real-time frames into typed objects, records/s, side by side.

Decoders measured in ONE process run (``decode_worker.py``), interleaved, medians over
repetitions:

* ``split`` -- the floor: ``str.split`` of the frame and its fields (plus AES for notices);
* ``kis_async`` -- frame -> typed ``Quote`` / ``OrderBook`` / ``Execution``;
* ``kis-trader`` and ``python-kis`` -- installed from the package index into
  ``benchmarks/.bench-env`` by this script (``--no-install`` or quick mode use it only if it
  is already there).

Each peer accepts only one layout of a TR, so each is compared on the layout it parses:
kis-trader on the current 47-field H0STCNT0, its 63-field H0STASP0 and 26-field notices;
python-kis on the legacy 46-field H0STCNT0, 59-field H0STASP0 and 23-field notices.
kis_async is measured on all of them. Targets (issue 15 §2, built+read): kis_async's typed
decode of H0STCNT0 costs at most 2.5x the bare split; it is at least 4x faster than
kis-trader on H0STCNT0 and 2x on H0STASP0 and notices; at least 5x python-kis on every layout
python-kis accepts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from _common import (
    BENCH_DIR,
    ensure_bench_env,
    fmt_num,
    fmt_ratio,
    print_table,
    verdict,
)

SET_LABELS = {
    "trade1": "H0STCNT0 47f, 1 rec/frame",
    "trade4": "H0STCNT0 47f, 4 rec/frame",
    "trade1_46": "H0STCNT0 46f, 1 rec/frame",
    "trade4_46": "H0STCNT0 46f, 4 rec/frame",
    "book1": "H0STASP0 59f",
    "book1_63": "H0STASP0 63f",
    "notice26": "H0STCNI9 26f, AES",
    "notice23": "H0STCNI9 23f, AES",
}
#: Targets (issue 15 §2): max cost vs split on these sets; min speedup vs each peer per set.
COST_SETS = ("trade1", "trade4")
MAX_COST = 2.5
MIN_SPEEDUP: dict[str, dict[str, float]] = {
    "kis-trader": {"trade1": 4.0, "trade4": 4.0, "book1_63": 2.0, "notice26": 2.0},
    "python-kis": {"trade1_46": 5.0, "trade4_46": 5.0, "book1": 5.0, "notice23": 5.0},
}


def run_worker(python: str, *, frames: int, reps: int) -> dict[str, Any]:
    """Run ``decode_worker.py`` under ``python`` and return its JSON."""
    proc = subprocess.run(
        [python, str(BENCH_DIR / "decode_worker.py"), "--frames", str(frames), "--reps", str(reps)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"decode worker failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the decode benchmark, print its table and targets, and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, no peer install")
    parser.add_argument("--no-install", action="store_true", help="do not pip-install peers")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    frames = args.frames or (300 if args.quick else 20_000)
    reps = args.reps or (3 if args.quick else 9)

    python, peer_notes = ensure_bench_env(install=not (args.quick or args.no_install))
    interpreter = str(python) if python is not None else sys.executable
    data = run_worker(interpreter, frames=frames, reps=reps)

    rows = []
    for key, label in SET_LABELS.items():
        entry = data["sets"][key]
        rates: dict[str, float] = entry["rates"]
        notes: dict[str, str] = {**data["notes"], **entry["notes"], **peer_notes}
        split = rates.get("split")
        ours = rates.get("kis_async")

        def cell(name: str, rates: dict[str, float] = rates, notes: dict[str, str] = notes) -> str:
            if name in rates:
                return fmt_num(rates[name])
            return "-" if "layout" in notes.get(name, "layout") else "n/a"

        def vs(name: str, rates: dict[str, float] = rates, ours: float | None = ours) -> str:
            if ours is None or name not in rates:
                return "-"
            return fmt_ratio(ours / rates[name])

        rows.append(
            [
                label,
                fmt_num(split),
                cell("kis_async (lazy)"),
                cell("kis_async"),
                fmt_ratio(split / ours) if split and ours else "n/a",
                cell("kis-trader"),
                vs("kis-trader"),
                cell("python-kis"),
                vs("python-kis"),
            ]
        )
    print_table(
        f"Decode: records/s (median of {reps} runs x {frames:,} frames; Python "
        f"{data['python']}; higher is better)",
        [
            "frames",
            "str.split (floor)",
            "kis_async built",
            "kis_async built+read",
            "kis_async cost vs split",
            "kis-trader",
            "kis_async speedup",
            "python-kis",
            "kis_async speedup ",
        ],
        rows,
    )
    print(
        "\n'built' = typed objects constructed (kis_async converts most fields on first "
        "read); 'built+read' = every typed attribute also read once, the figure compared "
        "with the peers, which convert eagerly. Speedups are kis_async built+read / peer.\n"
        "'-' = that peer refuses this layout (reasons below); 'n/a' = not measured."
    )
    all_notes = {**data["notes"], **peer_notes}
    for name, why in sorted(all_notes.items()):
        print(f"- {name}: {why}")
    for key, label in SET_LABELS.items():
        for name, why in sorted(data["sets"][key]["notes"].items()):
            if name not in all_notes:
                print(f"- {name} on {label}: {why}")

    figures: dict[str, Any] = {"sets": data["sets"]}
    print("\nTargets (built+read is the claim; built alone shown for reference):")
    for variant, label in (("kis_async", "built+read"), ("kis_async (lazy)", "built")):
        costs = []
        for key in COST_SETS:
            rates = data["sets"][key]["rates"]
            if variant in rates:
                costs.append(rates["split"] / rates[variant])
        worst_cost = max(costs) if costs else None
        print(
            f"- [{label}] typed decode cost vs bare split (H0STCNT0, worst of 1/4 rec/frame) "
            f"<= {MAX_COST}x: {fmt_ratio(worst_cost)} -> "
            f"{verdict(None if worst_cost is None else worst_cost <= MAX_COST)}"
        )
        figures[f"{label}_worst_cost"] = worst_cost
        for peer, minimums in MIN_SPEEDUP.items():
            for key, minimum in minimums.items():
                rates = data["sets"][key]["rates"]
                speedup = (
                    rates[variant] / rates[peer] if variant in rates and peer in rates else None
                )
                print(
                    f"- [{label}] {SET_LABELS[key]}: >= {minimum:.0f}x {peer}: "
                    f"{fmt_ratio(speedup)} -> "
                    f"{verdict(None if speedup is None else speedup >= minimum)}"
                )
                figures[f"{label}_speedup_{peer}_{key}"] = speedup
    return figures


if __name__ == "__main__":
    main()
