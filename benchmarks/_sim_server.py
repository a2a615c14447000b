"""Run a KISSimulator in its own process for the benchmarks (so it does not share the
client's CPU core and event loop).

Prints one JSON line (URLs and credentials) when serving, then serves until its standard
input closes. With ``--stamp``, every H0STCNT0 record carries the simulator's send time in
field 46 (VI_STND_PRC) as ``time.monotonic_ns()``, written the moment the frame is handed to
the socket, so consumers in other processes compute send-to-consumer latency on the same
clock (CLOCK_MONOTONIC is system-wide on Linux).

With ``--replay N``, the simulator's exchange runs N market steps at start-up and then
replays those ticks in a cycle (each record built once by the simulator's own frame code), so
the feed is limited by the WebSocket path rather than by the simulated market's matching
engine. Frames still go through the simulator's hub, sessions, outboxes and writer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

STAMP = "@STAMP@"
#: 0-based index of VI_STND_PRC in H0STCNT0 (field 46 of protocol doc §7.1).
STAMP_FIELD = 45


def _install_stamping() -> None:
    from starlette.websockets import WebSocket

    import kis_async.sim.ws as sim_ws

    original_record = sim_ws.trade_record
    original_send = WebSocket.send_text

    def stamped_record(*args: Any, **kwargs: Any) -> list[str]:
        record = original_record(*args, **kwargs)
        record[STAMP_FIELD] = STAMP
        return record

    async def stamped_send(self: WebSocket, data: str) -> None:
        if STAMP in data:
            data = data.replace(STAMP, str(time.monotonic_ns()))
        await original_send(self, data)

    sim_ws.trade_record = stamped_record  # type: ignore[assignment]
    WebSocket.send_text = stamped_send  # type: ignore[method-assign]


def _install_replay(sim: Any, steps: int) -> None:
    import itertools

    import kis_async.sim.ws as sim_ws

    batches = [sim.exchange.step(1) for _ in range(steps)]
    cycle = itertools.cycle(batches)
    built: dict[int, list[str]] = {}
    make_record = sim_ws.trade_record

    def cached_record(tick: Any, **kwargs: Any) -> list[str]:
        record = built.get(id(tick))
        if record is None:
            record = built[id(tick)] = make_record(tick, **kwargs)
        return record

    def replay_step(count: int = 1, *, symbols: Any = None) -> list[Any]:
        # Every listed symbol is replayed; the hub sends only what is registered.
        ticks = [tick for _ in range(count) for tick in next(cycle)]
        sim.hub.publish_ticks(ticks)
        return ticks

    sim_ws.trade_record = cached_record
    sim.exchange.step = replay_step


async def _serve(options: dict[str, Any], replay: int) -> None:
    from kis_async.sim import KISSimulator

    sim = KISSimulator(**options)
    if replay:
        _install_replay(sim, replay)
    async with sim.serve(port=0) as running:
        info = {
            "rest_url": running.rest_url,
            "ws_url": running.ws_url,
            "app_key": running.app_key,
            "app_secret": running.app_secret,
            "account_id": running.account_id,
            "hts_id": running.hts_id,
            "mode": running.mode.value,
        }
        print(json.dumps(info), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--options", default="{}", help="KISSimulator keywords as JSON")
    parser.add_argument("--stamp", action="store_true", help="stamp send times into quotes")
    parser.add_argument("--replay", type=int, default=0, help="replay N pre-run market steps")
    args = parser.parse_args()
    if args.stamp:
        _install_stamping()
    asyncio.run(_serve(json.loads(args.options), args.replay))


if __name__ == "__main__":
    main()
