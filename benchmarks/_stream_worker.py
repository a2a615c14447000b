"""One stream consumer for ``bench_stream.py``: receives the simulator's quote feed for a fixed
time and prints records/s and latency percentiles as JSON.

Modes (each run in a fresh process, one after the other, against the same simulator):

* ``raw`` -- a bare ``websockets`` loop that subscribes and only receives (the ceiling); it
  reads the send stamp of each record with a split, nothing else;
* ``kis_async`` -- ``async for quote in broker.quotes(symbols)``, reading ``quote.price``;
* ``kis_async_deep`` -- the same with a queue so deep that nothing conflates (diagnostic: the
  consumer path's capacity without the conflation policy);
* ``kis-trader`` -- kis-trader's async ``RealtimeConnection``, reading each tick's price.

Latency is ``time.monotonic_ns()`` at the consumer minus the simulator's send stamp carried in
the record (see ``_sim_server.py --stamp``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

STAMP_FIELD = 45
TR = "H0STCNT0"
#: quote_queue_size of the ``kis_async_deep`` mode: large enough that nothing conflates.
DEEP_QUEUE = 1_000_000


class Meter:
    """Counts records and latencies inside the measuring window."""

    def __init__(self, warmup: float, seconds: float) -> None:
        self.warmup = warmup
        self.seconds = seconds
        self.started: float | None = None
        self.begin = 0.0
        self.end = 0.0
        self.count = 0
        self.latencies: list[int] = []

    def record(self, stamp: int) -> bool:
        """Note one record; False once the window is over."""
        now_ns = time.monotonic_ns()
        now = now_ns / 1e9
        if self.started is None:
            self.started = now
            self.begin = now + self.warmup
            self.end = self.begin + self.seconds
        if now < self.begin:
            return True
        if now >= self.end:
            return False
        self.count += 1
        self.latencies.append(now_ns - stamp)
        return True

    def result(self, **extra: Any) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not lat:
                return None
            return lat[min(len(lat) - 1, max(0, round(p / 100 * len(lat)) - 1))] / 1e3

        return {
            "records": self.count,
            "rate": self.count / self.seconds,
            "p50_us": pct(50),
            "p99_us": pct(99),
            **extra,
        }


def approval_key(info: dict[str, Any]) -> str:
    body = json.dumps(
        {
            "grant_type": "client_credentials",
            "appkey": info["app_key"],
            "secretkey": info["app_secret"],
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (loopback simulator URL)
        info["rest_url"] + "/oauth2/Approval",
        data=body,
        headers={"content-type": "application/json; charset=utf-8"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return str(json.loads(response.read())["approval_key"])


def subscribe_text(key: str, symbol: str) -> str:
    return json.dumps(
        {
            "header": {
                "approval_key": key,
                "custtype": "P",
                "tr_type": "1",
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": TR, "tr_key": symbol}},
        }
    )


async def run_raw(info: dict[str, Any], symbols: list[str], meter: Meter) -> dict[str, Any]:
    import websockets

    key = approval_key(info)
    async with websockets.connect(info["ws_url"], max_size=None) as ws:
        for symbol in symbols:
            await ws.send(subscribe_text(key, symbol))
        async for message in ws:
            text = message if isinstance(message, str) else message.decode()
            if text[0] != "0":
                if "PINGPONG" in text:
                    await ws.send(text)
                elif "OPSP0000" not in text:
                    raise RuntimeError(f"subscription refused: {text[:200]}")
                continue
            _, _, count, payload = text.split("|", 3)
            fields = payload.split("^")
            per = len(fields) // int(count)
            for i in range(int(count)):
                if not meter.record(int(fields[i * per + STAMP_FIELD])):
                    return meter.result()
    return meter.result()


async def run_kis_async(
    info: dict[str, Any], symbols: list[str], meter: Meter, *, queue_size: int | None = None
) -> dict[str, Any]:
    from kis_async import KISBroker, KISConfig
    from kis_async.stream.manager import StreamOptions

    config = KISConfig(
        app_key=info["app_key"],
        app_secret=info["app_secret"],
        account_id=info["account_id"],
        hts_id=info["hts_id"],
        mode=info["mode"],
        rest_url=info["rest_url"],
        ws_url=info["ws_url"],
        token_cache_dir=None,
        requests_per_second=None,
    )
    options = StreamOptions() if queue_size is None else StreamOptions(quote_queue_size=queue_size)
    async with KISBroker(config, stream_options=options) as broker:
        async with broker.quotes(symbols) as stream:
            async for quote in stream:
                quote.price  # noqa: B018 (a consumer reads at least the price)
                if not meter.record(int(quote["VI_STND_PRC"])):
                    break
        status = broker.stream_status
        return meter.result(dropped=status.quotes_dropped, malformed=status.malformed_frames)


async def run_kis_trader(info: dict[str, Any], symbols: list[str], meter: Meter) -> dict[str, Any]:
    from kis_trader.realtime import parsers  # noqa: F401  (registers the TR parsers)
    from kis_trader.realtime._connection import RealtimeConnection

    key = approval_key(info)
    async with RealtimeConnection(key, info["ws_url"], reconnect=False) as conn:
        for symbol in symbols:
            await conn.subscribe(TR, symbol)
        async for message in conn:
            tick: Any = message.data
            tick.current_price  # noqa: B018 (a consumer reads at least the price)
            if not meter.record(int(tick.static_vi_reference_price)):
                break
        await conn.stop()
    return meter.result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--mode", choices=["raw", "kis_async", "kis_async_deep", "kis-trader"], required=True
    )
    parser.add_argument("--info", required=True, help="the simulator's JSON line")
    parser.add_argument("--symbols", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    args = parser.parse_args()
    info = json.loads(args.info)
    symbols = args.symbols.split(",")
    meter = Meter(args.warmup, args.seconds)

    async def deep(info: dict[str, Any], symbols: list[str], meter: Meter) -> dict[str, Any]:
        return await run_kis_async(info, symbols, meter, queue_size=DEEP_QUEUE)

    runner = {
        "raw": run_raw,
        "kis_async": run_kis_async,
        "kis_async_deep": deep,
        "kis-trader": run_kis_trader,
    }[args.mode]
    result = asyncio.run(
        asyncio.wait_for(runner(info, symbols, meter), args.warmup + args.seconds + 20)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
