"""Profile kis_async's hot paths with cProfile (a diagnostic, not a benchmark; no targets).

Usage::

    python benchmarks/profile_hot.py rest     # get_price through httpx.MockTransport
    python benchmarks/profile_hot.py order    # keyed place_order through httpx.MockTransport
    python benchmarks/profile_hot.py orders   # get_orders (2 pages) through httpx.MockTransport
    python benchmarks/profile_hot.py decode   # H0STCNT0 / H0STASP0 / notices, built+read
    python benchmarks/profile_hot.py stream   # the latency consumer at 5k records/s
    python benchmarks/profile_hot.py all [--top N] [--quick]

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
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def _area(filename: str) -> str:
    """The package (or stdlib module) a profiled function belongs to."""
    if filename.startswith(("~", "<")):
        return "builtins"
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/kis_async/" in filename:
        return "kis_async/" + filename.split("/kis_async/", 1)[1].split("/", 1)[0].removesuffix(
            ".py"
        )
    if "/benchmarks/" in filename:
        return "benchmark harness"
    return "stdlib " + Path(filename).stem


def _short(filename: str, line: int, name: str) -> str:
    where = filename.replace(str(HERE.parent) + "/", "")
    if "site-packages/" in where:
        where = where.split("site-packages/", 1)[1]
    elif "/lib/python3" in where:
        where = "stdlib " + where.split("/lib/python3", 1)[1].split("/", 1)[1]
    return f"{where}:{line}({name})"


def _report(
    profile: cProfile.Profile | pstats.Stats, title: str, top: int, per: int, areas: int = 12
) -> dict[str, float]:
    """Print own time by area, the top functions by own time and kis_async's by cumulative
    time, all per unit; return own us/unit by area."""
    stats = profile if isinstance(profile, pstats.Stats) else pstats.Stats(profile)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    print(f"\n## {title}\n")
    print(f"profiled total {total * 1e6 / per:,.1f} us/unit ({per:,} units; cProfile inflates)")
    by_area: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tt, _ct, _callers) in raw.items():
        area = _area(filename)
        by_area[area] = by_area.get(area, 0.0) + tt
    print("\nown time by area:")
    for area, tt in sorted(by_area.items(), key=lambda kv: kv[1], reverse=True)[:areas]:
        print(f"  {tt / total:6.1%} {tt / per * 1e6:9.2f} us/unit  {area}")
    print(f"\ntop {top} functions by own time:")
    print(f"  {'own %':>6} {'us/unit':>8} {'calls/unit':>10}  function")
    ranked = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)
    for (filename, line, name), (_cc, nc, tt, _ct, _callers) in ranked[:top]:
        print(f"  {tt / total:6.1%} {tt / per * 1e6:8.2f} {nc / per:10.2f}  "
              f"{_short(filename, line, name)}")  # fmt: skip
    print("\nkis_async functions by cumulative time:")
    ours = [kv for kv in raw.items() if "/kis_async/" in kv[0][0]]
    for (filename, line, name), (_cc, nc, _tt, ct, _callers) in sorted(
        ours, key=lambda kv: kv[1][3], reverse=True
    )[: max(8, top // 2)]:
        print(f"  {ct / total:6.1%} {ct / per * 1e6:8.2f} {nc / per:10.2f}  "
              f"{_short(filename, line, name)}")  # fmt: skip
    return {area: tt / per * 1e6 for area, tt in by_area.items()}


def _diff_functions(ours: cProfile.Profile, bare: cProfile.Profile, per: int, top: int) -> None:
    """The functions whose own time (or call count) the SDK adds over the bare client."""
    a: dict[Any, Any] = pstats.Stats(ours).stats  # type: ignore[attr-defined]
    b: dict[Any, Any] = pstats.Stats(bare).stats  # type: ignore[attr-defined]
    rows = []
    for key in {*a, *b}:
        tt = (a[key][2] if key in a else 0.0) - (b[key][2] if key in b else 0.0)
        nc = (a[key][1] if key in a else 0) - (b[key][1] if key in b else 0)
        rows.append((tt, nc, key))
    print(f"\ntop {top} functions the SDK adds (own us/call, extra calls/call):")
    for tt, nc, (filename, line, name) in sorted(rows, reverse=True)[:top]:
        print(f"  {tt / per * 1e6:+8.2f} us {nc / per:+7.2f}  {_short(filename, line, name)}")


def profile_rest(top: int, calls: int, kind: str = "get_price") -> None:
    """``get_price``, a keyed ``place_order`` or ``get_orders`` (2 pages) through
    httpx.MockTransport (answers recorded from the simulator), then the bare httpx requests of
    bench_rest.py profiled the same way."""
    import itertools

    import httpx
    from _common import SimProcess
    from bench_rest import Canned, _as_user_call, _measure, _order, config_from

    from kis_async import KISBroker

    options = {"seed": 5, "mode": "live", "rate_limit": False, "quote_interval": None}
    with SimProcess(options) as sim:
        _, canned = asyncio.run(_measure(sim.info, 5, 1))
    assert isinstance(canned, Canned)
    keys = itertools.count()

    def call(broker: KISBroker) -> Any:
        if kind == "place_order":
            return broker.place_order(_order(f"profile-{next(keys)}"))
        if kind == "get_orders":
            return broker.get_orders()
        return broker.get_price("005930")

    async def run() -> tuple[cProfile.Profile, cProfile.Profile]:
        sent: list[httpx.Request] = []

        async def keep(request: httpx.Request) -> None:
            sent.append(request)

        client = httpx.AsyncClient(
            transport=httpx.MockTransport(canned.handler), event_hooks={"request": [keep]}
        )
        config = config_from(sim.info, requests_per_second=None)
        async with client, KISBroker(config, http_client=client) as broker:
            await broker.authenticate()
            sent.clear()
            await call(broker)
            plan = [_as_user_call(r) for r in sent]
            client.event_hooks["request"] = []
            for _ in range(200):
                await call(broker)
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(calls):
                await call(broker)
            profile.disable()
        bare = httpx.AsyncClient(transport=httpx.MockTransport(canned.handler))
        async with bare:
            for _ in range(200):
                for request in plan:
                    (await bare.request(**request)).json()
            bare_profile = cProfile.Profile()
            bare_profile.enable()
            for _ in range(calls):
                for request in plan:
                    (await bare.request(**request)).json()
            bare_profile.disable()
        return profile, bare_profile

    ours, bare = asyncio.run(run())
    _diff_functions(ours, bare, calls, top)
    sdk = _report(ours, f"{kind} via MockTransport ({calls:,} calls)", top, calls)
    floor = _report(bare, f"bare httpx, same request ({calls:,} calls)", 10, calls)
    print("\nSDK minus bare, own us/call by area (positive = the SDK's extra):")
    diff = {a: sdk.get(a, 0.0) - floor.get(a, 0.0) for a in {*sdk, *floor}}
    for area, us in sorted(diff.items(), key=lambda kv: kv[1], reverse=True):
        if abs(us) >= 1.0:
            print(f"  {us:+8.1f} us  {area}")


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
    parser.add_argument("what", choices=["rest", "order", "orders", "decode", "stream", "all"])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--quick", action="store_true", help="small counts (CI: completes)")
    args = parser.parse_args()
    scale = 0.05 if args.quick else 1.0
    if args.what in ("rest", "all"):
        profile_rest(args.top, int(3_000 * scale))
    if args.what in ("order", "all"):
        profile_rest(args.top, int(2_000 * scale), "place_order")
    if args.what in ("orders", "all"):
        profile_rest(args.top, int(1_000 * scale), "get_orders")
    if args.what in ("decode", "all"):
        profile_decode(args.top, int(20_000 * scale))
    if args.what in ("stream", "all"):
        profile_stream(args.top, 4.0 * scale)


if __name__ == "__main__":
    main()
