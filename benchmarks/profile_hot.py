"""Profile kis_async's hot paths with cProfile (a diagnostic, not a benchmark; no targets).

Usage::

    python benchmarks/profile_hot.py rest     # get_price through httpx.MockTransport
    python benchmarks/profile_hot.py decode   # H0STCNT0 / H0STASP0 / notices, built+read
    python benchmarks/profile_hot.py stream   # the latency consumer at 5k records/s
    python benchmarks/profile_hot.py all [--top N]

Each section prints the functions with the most own time (``tottime``) and the share of the
profiled total they take. cProfile inflates the cost of many small calls, so read the shares
and the call counts, not the absolute times; README.md ("Profile (before optimisation)")
holds the findings.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def _report(profile: cProfile.Profile | pstats.Stats, title: str, top: int, per: int) -> None:
    stats = profile if isinstance(profile, pstats.Stats) else pstats.Stats(profile)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n## {title}\n")
    print(
        f"profiled total {total * 1e3:,.0f} ms for {per:,} units = {total / per * 1e6:,.1f} us/unit"
    )
    print(f"{'own %':>6} {'own us/unit':>11} {'calls/unit':>10}  function")
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, nc, tt, _ct, _callers) in rows[:top]:
        where = filename.replace(str(HERE.parent) + "/", "")
        if "site-packages/" in where:
            where = where.split("site-packages/", 1)[1]
        print(f"{tt / total:6.1%} {tt / per * 1e6:11.2f} {nc / per:10.2f}  {where}:{line}({name})")


def profile_rest(top: int, calls: int) -> None:
    """get_price through httpx.MockTransport with answers recorded from the simulator."""
    import httpx
    from _common import SimProcess
    from bench_rest import Canned, _measure, config_from

    from kis_async import KISBroker

    options = {"seed": 5, "mode": "live", "rate_limit": False, "quote_interval": None}
    with SimProcess(options) as sim:
        _, canned = asyncio.run(_measure(sim.info, 5, 1))
    assert isinstance(canned, Canned)

    async def run() -> cProfile.Profile:
        client = httpx.AsyncClient(transport=httpx.MockTransport(canned.handler))
        config = config_from(sim.info, requests_per_second=None)
        async with client, KISBroker(config, http_client=client) as broker:
            await broker.authenticate()
            for _ in range(200):
                await broker.get_price("005930")
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(calls):
                await broker.get_price("005930")
            profile.disable()
            return profile

    _report(asyncio.run(run()), f"get_price via MockTransport ({calls:,} calls)", top, calls)


def profile_decode(top: int, frames: int) -> None:
    """Each frame layout through kis_async's decoder, every typed attribute read once."""
    import _frames
    from decode_worker import _our_decoder

    decode, why = _our_decoder(read=True)
    if decode is None:
        raise RuntimeError(why)
    sets = _frames.frame_sets(frames)
    for key, title in (
        ("trade1", "H0STCNT0 47f, 1 rec/frame"),
        ("book1", "H0STASP0 59f"),
        ("notice26", "H0STCNI9 26f, AES"),
    ):
        decode(sets[key][:200])
        profile = cProfile.Profile()
        profile.enable()
        decode(sets[key])
        profile.disable()
        _report(profile, f"decode built+read: {title} ({frames:,} frames)", top, frames)


def profile_stream(top: int, seconds: float) -> None:
    """The ``quotes`` latency consumer under cProfile while the feeder sends 5k records/s."""
    from _common import SimProcess
    from bench_latency import FeederProcess

    schedule = {
        "rates": [5_000],
        "seconds": seconds,
        "warmup_rate": 1_000,
        "warmup": 0.5,
        "settle": 0.2,
        "gap": 0.2,
    }
    options = {"seed": 3, "mode": "live", "rate_limit": False, "quote_interval": None}
    with (
        SimProcess(options) as sim,
        FeederProcess(schedule) as feeder,
        tempfile.TemporaryDirectory() as tmp,
    ):
        info = {**sim.info, "ws_url": feeder.ws_url}
        prof = Path(tmp) / "stream.prof"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                str(prof),
                str(HERE / "_latency_worker.py"),
                "--mode",
                "quotes",
                "--info",
                json.dumps(info),
                "--out",
                str(Path(tmp) / "r.json"),
            ],
            check=True,
            timeout=seconds + 60,
        )
        feed = feeder.next_result(timeout=10) or {}
        records = sum(sum(p["sent"].values()) for p in feed.get("phases", []))
        _report(
            pstats.Stats(str(prof)),
            f"stream consumer at 5k/s ({records:,} records, whole process)",
            top,
            max(1, records),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["rest", "decode", "stream", "all"])
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.what in ("rest", "all"):
        profile_rest(args.top, 3_000)
    if args.what in ("decode", "all"):
        profile_decode(args.top, 20_000)
    if args.what in ("stream", "all"):
        profile_stream(args.top, 4.0)


if __name__ == "__main__":
    main()
