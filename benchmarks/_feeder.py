"""The paced feed of ``bench_latency.py``: a WebSocket server that speaks just enough of KIS's
real-time protocol (subscribe acks, data frames) and, once a connection holds every expected
registration, sends records at fixed rates with the send time stamped into each record.

Run as a child process: it prints one JSON line (``{"ws_url": ...}``) when serving, then, for
each connection that completed its schedule, one JSON line with the phase boundaries and what
was sent. It ends when its standard input closes.

Standard library, ``websockets`` and ``_frames`` only, so any benchmark interpreter can run it.

The stamp
---------
Each record carries ``time.monotonic_ns()`` taken just before the frame is handed to the
socket, written into a quantity field that every consumer measured here exposes as a typed
``int`` attribute:

* H0STCNT0 field 14, ``ACML_VOL`` (cumulative volume) -> kis_async ``Quote.cum_volume``,
  kis-trader ``tick.accumulated_volume``;
* H0STASP0 field 44, ``TOTAL_ASKP_RSQN`` (total ask quantity) -> kis_async
  ``OrderBook.total_ask_qty``, kis-trader ``book.total_ask_quantity``.

So the stamp is read through each SDK's public, typed model (no raw-field reach-through that a
model rewrite could remove), the consumer pays the same ``int()`` it would for the real value,
and the clock is CLOCK_MONOTONIC, which is system-wide on Linux, so feeder and consumer
processes subtract on one clock. A stamp of ``0`` marks the end of the schedule.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _frames

TRADE_TR = "H0STCNT0"
BOOK_TR = "H0STASP0"
#: 0-based index of the stamp per TR (see the module docstring).
STAMP_INDEX = {TRADE_TR: 13, BOOK_TR: 43}
#: Distinct records prepared per registration (prices and volumes vary between them).
VARIANTS = 32
#: Pacing tick: the feeder wakes this often and sends every record due by then.
TICK = 0.0005


def registrations(trades: int, books: int) -> list[tuple[str, str]]:
    """``trades`` H0STCNT0 symbols and order books of the first ``books`` of them."""
    symbols = [f"{100_000 + 7 * i:06d}" for i in range(trades)]
    return [(TRADE_TR, s) for s in symbols] + [(BOOK_TR, s) for s in symbols[:books]]


def _templates(regs: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Per registration, VARIANTS (prefix, suffix) pairs around the stamp field."""
    rng = random.Random(41)
    out = []
    for tr_id, symbol in regs:
        variants = []
        for _ in range(VARIANTS):
            if tr_id == TRADE_TR:
                fields = _frames.trade_record(rng).split("^")
            else:
                # 63 fields: the layout kis-trader 0.12.2 insists on; kis_async reads 59 and
                # tolerates the extra four.
                fields = _frames.orderbook_record(rng, fields=63).split("^")
            fields[0] = symbol
            i = STAMP_INDEX[tr_id]
            head = f"0|{tr_id}|001|" + "^".join(fields[:i]) + "^"
            variants.append((head, "^" + "^".join(fields[i + 1 :])))
        out.append(variants)
    return out


def _ack(tr_id: str, tr_key: str, tr_type: str) -> str:
    code, text = ("OPSP0000", "SUBSCRIBE SUCCESS") if tr_type == "1" else ("OPSP0001", "UNSUB")
    return json.dumps(
        {
            "header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"},
            "body": {
                "rt_cd": "0",
                "msg_cd": code,
                "msg1": text,
                "output": {"iv": _frames.NOTICE_IV, "key": _frames.NOTICE_KEY},
            },
        }
    )


class Feeder:
    """Serves connections; plays the schedule on each one that registers everything."""

    def __init__(self, regs: list[tuple[str, str]], schedule: dict[str, Any]) -> None:
        self.regs = regs
        self.templates = _templates(regs)
        self.schedule = schedule
        self.connections = 0

    async def handle(self, ws: Any) -> None:
        self.connections += 1
        conn = self.connections
        wanted = set(self.regs)
        have: set[tuple[str, str]] = set()
        started: asyncio.Task[None] | None = None
        try:
            async for message in ws:
                doc = json.loads(message)
                header = doc.get("header", {})
                if header.get("tr_id") == "PINGPONG":
                    continue
                body = doc.get("body", {}).get("input", {})
                entry = (str(body.get("tr_id")), str(body.get("tr_key")))
                tr_type = str(header.get("tr_type", "1"))
                await ws.send(_ack(*entry, tr_type))
                if tr_type == "1":
                    have.add(entry)
                else:
                    have.discard(entry)
                if started is None and wanted <= have:
                    started = asyncio.create_task(self.play(ws, conn))
        except Exception:  # noqa: S110 (a consumer leaving mid-schedule is normal)
            pass
        finally:
            if started is not None:
                await started

    async def play(self, ws: Any, conn: int) -> None:
        """Send the warm-up, then each phase at its rate, then one end marker per registration."""
        n_regs = len(self.regs)
        order = itertools.cycle(range(n_regs))
        variant = itertools.cycle(range(VARIANTS))
        templates = self.templates
        mono = time.monotonic_ns
        phases_out = []
        aborted = None
        await asyncio.sleep(self.schedule["settle"])
        phases = [("warmup", self.schedule["warmup_rate"], self.schedule["warmup"])]
        phases += [(f"{rate}", rate, self.schedule["seconds"]) for rate in self.schedule["rates"]]
        try:
            for name, rate, seconds in phases:
                sent = {TRADE_TR: 0, BOOK_TR: 0}
                start_ns = mono()
                t0 = time.perf_counter()
                n = 0
                total = int(rate * seconds)
                while n < total:
                    due = min(total, int((time.perf_counter() - t0) * rate) + 1)
                    while n < due:
                        reg = next(order)
                        head, tail = templates[reg][next(variant)]
                        await ws.send(f"{head}{mono()}{tail}")
                        sent[self.regs[reg][0]] += 1
                        n += 1
                    await asyncio.sleep(TICK)
                end_ns = mono()
                phases_out.append(
                    {
                        "name": name,
                        "rate": rate,
                        "start_ns": start_ns,
                        "end_ns": end_ns,
                        "sent": sent,
                        "achieved": n / max(1e-9, (end_ns - start_ns) / 1e9),
                    }
                )
                await asyncio.sleep(self.schedule["gap"])
            for reg in range(n_regs):
                head, tail = templates[reg][0]
                await ws.send(f"{head}0{tail}")
        except Exception as exc:
            aborted = f"{type(exc).__name__}: {exc}"[:160]
        print(json.dumps({"conn": conn, "phases": phases_out, "aborted": aborted}), flush=True)


async def _serve(regs: list[tuple[str, str]], schedule: dict[str, Any]) -> None:
    from websockets.asyncio.server import serve

    feeder = Feeder(regs, schedule)
    async with serve(feeder.handle, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"ws_url": f"ws://127.0.0.1:{port}"}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=33)
    parser.add_argument("--books", type=int, default=8)
    parser.add_argument("--schedule", required=True, help="JSON: rates, seconds, warmup, gap")
    args = parser.parse_args()
    asyncio.run(_serve(registrations(args.trades, args.books), json.loads(args.schedule)))


if __name__ == "__main__":
    main()
