"""Run every benchmark in turn and print each table, then the targets.

Usage::

    python benchmarks/run_all.py            # full run (installs the peers into .bench-env)
    python benchmarks/run_all.py --quick    # small counts, no installs (what CI runs)

Figures are ratios and medians measured side by side in this one run; see README.md here.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_decode
import bench_history
import bench_latency
import bench_memory
import bench_ratelimit
import bench_rest
import bench_startup
import bench_stream
from _common import machine_summary

BENCHMARKS: list[tuple[str, Callable[[list[str]], Any]]] = [
    ("decode", bench_decode.main),
    ("latency", bench_latency.main),
    ("stream", bench_stream.main),
    ("rest", bench_rest.main),
    ("startup", bench_startup.main),
    ("ratelimit", bench_ratelimit.main),
    ("memory", bench_memory.main),
    ("history", bench_history.main),
]


def main() -> int:
    parser = argparse.ArgumentParser(description="Run all kis_async benchmarks.")
    parser.add_argument("--quick", action="store_true", help="small counts, no peer installs")
    parser.add_argument(
        "--only", action="append", choices=[name for name, _ in BENCHMARKS], default=None
    )
    args = parser.parse_args()
    argv = ["--quick"] if args.quick else []
    print(f"# kis_async benchmarks ({'quick' if args.quick else 'full'} run)")
    print(f"machine: {machine_summary()}")
    print(f"command: python benchmarks/run_all.py{' --quick' if args.quick else ''}")
    failed: list[str] = []
    for name, run in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        started = time.monotonic()
        try:
            run(argv)
        except Exception:
            failed.append(name)
            print(f"\n!! benchmark {name} failed:", flush=True)
            traceback.print_exc()
        print(f"\n({name}: {time.monotonic() - started:.1f} s)", flush=True)
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
