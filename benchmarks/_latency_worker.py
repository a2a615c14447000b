"""One consumer of ``bench_latency.py``'s paced feed, in its own process.

It registers the feeder's 41 registrations (H0STCNT0 trades and H0STASP0 books), consumes
until the feeder's end marker (a stamp of 0), and prints one JSON line: per record, the send
stamp and the latency (``time.monotonic_ns()`` on arrival at the consumer minus the stamp), plus
the consumer's own drop counters where it has them. ``bench_latency.py`` assigns records to the
feeder's phases by their stamp.

Modes:

* ``raw`` -- a bare ``websockets`` receive loop that splits the frame and reads the stamp (the
  floor: nothing can deliver sooner);
* ``quotes`` -- kis_async, ``async for quote in broker.quotes(trades)`` and, in a second task,
  ``async for book in broker.orderbooks(books)``;
* ``callback`` -- kis_async, ``await broker.subscribe_quotes(trades, callback)`` with a plain
  function; the books through ``broker.orderbooks()`` as above (there is no book callback);
* ``kis-trader`` -- kis-trader's async ``RealtimeConnection`` (one loop for both TRs).

Each consumer reads the stamp through the SDK's typed model and also reads the price (trades)
or the best ask (books), as a strategy would. Only kis_async's public API is used.
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
sys.path.insert(0, str(HERE))

from _feeder import BOOK_TR, STAMP_INDEX, TRADE_TR, registrations  # noqa: E402

TIMEOUT = 120.0
CPU_EVERY = 256


class Recorder:
    """Collects (stamp, latency) pairs; ``done`` is set by the end marker."""

    def __init__(self) -> None:
        self.stamps: list[int] = []
        self.latencies: list[int] = []
        #: Every CPU_EVERY records: (record index, stamp, process CPU ns) -- the parent turns
        #: these into CPU per record per phase, a figure the shared machine's scheduling noise
        #: does not move the way it moves latency.
        self.cpu: list[tuple[int, int, int]] = []
        self.ended: set[str] = set()
        self.done = asyncio.Event()

    def note(self, stamp: int, tr_id: str) -> None:
        """Note one record; a stamp of 0 is the end marker of its TR (both end the run)."""
        now = time.monotonic_ns()
        if stamp:
            stamps = self.stamps
            if not len(stamps) % CPU_EVERY:
                self.cpu.append((len(stamps), stamp, time.process_time_ns()))
            stamps.append(stamp)
            self.latencies.append(now - stamp)
            return
        self.ended.add(tr_id)
        if len(self.ended) == 2:
            self.done.set()


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


async def run_raw(
    info: dict[str, Any], regs: list[tuple[str, str]], rec: Recorder
) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    key = approval_key(info)
    async with connect(info["ws_url"], max_size=None, compression=None) as ws:
        for tr_id, symbol in regs:
            await ws.send(
                json.dumps(
                    {
                        "header": {
                            "approval_key": key,
                            "custtype": "P",
                            "tr_type": "1",
                            "content-type": "utf-8",
                        },
                        "body": {"input": {"tr_id": tr_id, "tr_key": symbol}},
                    }
                )
            )
        async for message in ws:
            text = message if isinstance(message, str) else message.decode()
            if text[0] != "0":
                continue
            _, tr_id, _, payload = text.split("|", 3)
            rec.note(int(payload.split("^")[STAMP_INDEX[tr_id]]), tr_id)
            if rec.done.is_set():
                break
    return {}


def _broker(info: dict[str, Any]) -> Any:
    from kis_async import KISBroker, KISConfig

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
    return KISBroker(config)


async def _books(broker: Any, symbols: list[str], rec: Recorder) -> None:
    async with broker.orderbooks(symbols) as stream:
        async for book in stream:
            book.best_ask  # noqa: B018 (a consumer reads at least the best ask)
            rec.note(book.total_ask_qty, BOOK_TR)
            if BOOK_TR in rec.ended:
                return


async def run_quotes(
    info: dict[str, Any], regs: list[tuple[str, str]], rec: Recorder
) -> dict[str, Any]:
    trades = [s for tr, s in regs if tr == TRADE_TR]
    books = [s for tr, s in regs if tr == BOOK_TR]

    async def quotes(broker: Any) -> None:
        async with broker.quotes(trades) as stream:
            async for quote in stream:
                quote.price  # noqa: B018 (a consumer reads at least the price)
                rec.note(quote.cum_volume, TRADE_TR)
                if TRADE_TR in rec.ended:
                    return

    async with _broker(info) as broker:
        async with asyncio.TaskGroup() as group:
            group.create_task(quotes(broker))
            group.create_task(_books(broker, books, rec))
        status = broker.stream_status
    return {"conflated": status.quotes_dropped + status.orderbooks_dropped}


async def run_callback(
    info: dict[str, Any], regs: list[tuple[str, str]], rec: Recorder
) -> dict[str, Any]:
    trades = [s for tr, s in regs if tr == TRADE_TR]
    books = [s for tr, s in regs if tr == BOOK_TR]

    def on_quote(quote: Any) -> None:
        quote.price  # noqa: B018 (a consumer reads at least the price)
        rec.note(quote.cum_volume, TRADE_TR)

    async with _broker(info) as broker:
        subscription = await broker.subscribe_quotes(trades, on_quote)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_books(broker, books, rec))
                group.create_task(rec.done.wait())
        finally:
            await subscription.aclose()
        status = broker.stream_status
    return {"conflated": status.quotes_dropped + status.orderbooks_dropped}


async def run_kis_trader(
    info: dict[str, Any], regs: list[tuple[str, str]], rec: Recorder
) -> dict[str, Any]:
    from kis_trader.realtime import parsers  # noqa: F401  (registers the TR parsers)
    from kis_trader.realtime._connection import RealtimeConnection

    key = approval_key(info)
    async with RealtimeConnection(key, info["ws_url"], reconnect=False) as conn:
        for tr_id, symbol in regs:
            await conn.subscribe(tr_id, symbol)
        async for message in conn:
            data: Any = message.data
            if message.tr_id == TRADE_TR:
                data.current_price  # noqa: B018 (a consumer reads at least the price)
                rec.note(data.accumulated_volume, TRADE_TR)
            else:
                data.best_ask  # noqa: B018 (and the best ask)
                rec.note(data.total_ask_quantity, BOOK_TR)
            if rec.done.is_set():
                break
        await conn.stop()
    return {}


RUNNERS = {"raw": run_raw, "quotes": run_quotes, "callback": run_callback,
           "kis-trader": run_kis_trader}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=sorted(RUNNERS), required=True)
    parser.add_argument("--info", required=True, help="JSON: the simulator's line + ws_url")
    parser.add_argument("--trades", type=int, default=33)
    parser.add_argument("--books", type=int, default=8)
    parser.add_argument("--out", required=True, help="file to write the JSON result to")
    args = parser.parse_args()
    info = json.loads(args.info)
    rec = Recorder()
    regs = registrations(args.trades, args.books)

    async def run() -> dict[str, Any]:
        return await asyncio.wait_for(RUNNERS[args.mode](info, regs, rec), TIMEOUT)

    extra = asyncio.run(run())
    result = {"stamps": rec.stamps, "latencies": rec.latencies, "cpu": rec.cpu, **extra}
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
