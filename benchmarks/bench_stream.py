"""Throughput note: stream records/s under a saturated feed (NOT the latency figure).

The headline stream figure is ``bench_latency.py`` (latency at fixed offered loads). This
script is kept as a throughput note only: under saturation the consumer's latency is queueing,
so no latency is printed here.

The simulator runs in its own process, pushing H0STCNT0 frames for every symbol it lists as
fast as it can (``quote_interval=0``). It replays 200 market steps it ran at start-up
(``_sim_server.py --replay``) so that its matching engine is not what limits the feed, and it
pauses only while a session's outbox passes 2,000 frames, so the feed adapts to the fastest
rate the consumer drains. Each record carries the
simulator's send time. Consumers run one after another in fresh processes, interleaved over
repetitions, all under the same interpreter:

* raw ``websockets`` loop that only receives and splits (the ceiling);
* ``async for quote in broker.quotes(symbols)`` (kis_async, default options), and the same
  with a queue so deep that nothing conflates (a diagnostic row, not the claim);
* kis-trader's async ``RealtimeConnection`` (when installed in ``benchmarks/.bench-env``).

Targets: kis_async >= 70% of the raw loop's records/s, and >= 1.5x kis-trader's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from _common import (
    BENCH_DIR,
    SimProcess,
    ensure_bench_env,
    fmt_num,
    fmt_ratio,
    median,
    print_table,
    verdict,
)

MIN_SHARE_OF_RAW = 0.70
MIN_SPEEDUP_KIS_TRADER = 1.5


def run_consumer(
    python: str,
    mode: str,
    info: dict[str, str],
    symbols: list[str],
    *,
    seconds: float,
    warmup: float,
) -> dict[str, Any]:
    """Run one consumer process and return its JSON (or an ``error``)."""
    proc = subprocess.run(
        [
            python,
            str(BENCH_DIR / "_stream_worker.py"),
            "--mode",
            mode,
            "--info",
            json.dumps(info),
            "--symbols",
            ",".join(symbols),
            "--seconds",
            str(seconds),
            "--warmup",
            str(warmup),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + warmup + 40,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0][:160]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the stream benchmark, print its table and targets, and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-install", action="store_true")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    seconds = args.seconds or (1.0 if args.quick else 5.0)
    reps = args.reps or (1 if args.quick else 3)
    warmup = 0.3 if args.quick else 1.0

    python, peer_notes = ensure_bench_env(install=not (args.quick or args.no_install))
    interpreter = str(python) if python is not None else sys.executable
    modes = ["raw", "kis_async"] if args.quick else ["raw", "kis_async", "kis_async_deep"]
    if "kis-trader" not in peer_notes:
        modes.append("kis-trader")

    options = {
        "seed": 11,
        "mode": "live",
        "rate_limit": False,
        "quote_interval": 0,
        "records_per_frame": 1,
        "pingpong_interval": 3600.0,
        "pingpong_timeout": 3600.0,
    }
    samples: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    errors: dict[str, str] = {}
    with SimProcess(options, stamp=True, replay=200) as sim:
        state = sim.admin("state")
        assert isinstance(state, dict)
        symbols = sorted(state["prices"])
        for rep in range(reps):
            rotated = modes[rep % len(modes) :] + modes[: rep % len(modes)]
            for mode in rotated:
                result = run_consumer(
                    interpreter, mode, sim.info, symbols, seconds=seconds, warmup=warmup
                )
                if "error" in result:
                    errors[mode] = result["error"]
                else:
                    samples[mode].append(result)

    def med(mode: str, key: str) -> float | None:
        values = [s[key] for s in samples[mode] if s.get(key) is not None]
        return median(values) if values else None

    raw_rate = med("raw", "rate")
    rows = []
    for mode, label in (
        ("raw", "raw websockets loop (ceiling)"),
        ("kis_async", "kis_async broker.quotes()"),
        ("kis_async_deep", "kis_async, quote_queue_size=10**6"),
        ("kis-trader", "kis-trader RealtimeConnection"),
    ):
        if mode not in samples or not samples[mode]:
            why = errors.get(mode) or peer_notes.get(mode, "not run")
            rows.append([label, "n/a", "n/a", why])
            continue
        rate = med(mode, "rate")
        dropped = med(mode, "dropped")
        rows.append(
            [
                label,
                fmt_num(rate),
                fmt_ratio(rate / raw_rate) if rate and raw_rate else "n/a",
                "" if dropped is None else f"conflated (dropped) quotes: {fmt_num(dropped)}",
            ]
        )
    print_table(
        f"Throughput note (saturated feed, not a latency figure): H0STCNT0 over loopback, "
        f"{len(symbols)} symbols (median of {reps} x {seconds:g} s)",
        ["consumer", "records/s", "vs raw", "notes"],
        rows,
    )
    ours = med("kis_async", "rate")
    peer = med("kis-trader", "rate") if "kis-trader" in samples else None
    share = ours / raw_rate if ours and raw_rate else None
    speedup = ours / peer if ours and peer else None
    print("\nThroughput targets (a note; latency is bench_latency.py's table):")
    print(
        f"- kis_async >= {MIN_SHARE_OF_RAW:.0%} of the raw loop: "
        f"{'n/a' if share is None else f'{share:.0%}'} -> "
        f"{verdict(None if share is None else share >= MIN_SHARE_OF_RAW)}"
    )
    print(
        f"- kis_async >= {MIN_SPEEDUP_KIS_TRADER}x kis-trader: {fmt_ratio(speedup)} -> "
        f"{verdict(None if speedup is None else speedup >= MIN_SPEEDUP_KIS_TRADER)}"
    )
    for mode, why in errors.items():
        print(f"- {mode} failed: {why}")
    missing = [m for m in ("raw", "kis_async") if not samples[m]]
    if missing:
        raise RuntimeError(f"stream consumers produced no measurement: {', '.join(missing)}")
    return {"share_of_raw": share, "speedup_kis_trader": speedup, "samples": samples}


if __name__ == "__main__":
    main()
