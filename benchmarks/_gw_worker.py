"""A worker process of ``bench_gateway.py`` (run as a script).

    python _gw_worker.py fanout CONFIG_JSON OUT [--redis URL]
    python _gw_worker.py trader CONFIG_JSON OUT --redis URL --dsn DSN --group G --consumer C ...

``fanout``: subscribe ``broker.quotes()`` for the symbols in CONFIG_JSON, through the gateway
(``--redis``) or directly (no ``--redis``); record ``(Quote.cum_volume, time.time_ns())`` of
every quote -- the simulator numbers each trade record in its cumulative volume
(``_gw_sim.py --seq``) -- and write the pairs to OUT (int64 native, seq and time
interleaved) when standard input closes.

``trader``: a strategy worker with the PostgreSQL journal. Places the shared keyed orders of
the schedule (slot ``i`` at ``--t0 + i * --every``, key ``{run}-{i}``, the same request in
every worker), reads prices in a loop so that the workers together ask for more than the
account's REST budget, and reads the account's executions as consumer ``--consumer`` of
group ``--group``, one JSON line per fill notice to OUT. On standard input, ``go T0`` starts
the schedule at T0 (epoch seconds), ``stop`` ends the trading, and closing it ends the
notices.

Each mode prints ``{"ready": true}`` once its streams are open and a JSON summary at the end.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

from kis_async import (
    BrokerError,
    ExecutionKind,
    KISBroker,
    KISConfig,
    OrderRequest,
    OrderType,
    Side,
)


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def stdin_lines() -> asyncio.Queue[str | None]:
    """Lines of standard input as they come; None when it closes."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def pump() -> None:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            await queue.put(line.strip() if line else None)
            if not line:
                return

    task = asyncio.create_task(pump())
    task.add_done_callback(lambda _: None)
    _background.add(task)
    return queue


_background: set[asyncio.Task[Any]] = set()


def make_broker(config: KISConfig, redis: str | None, **kwargs: Any) -> KISBroker:
    if redis is None:
        return KISBroker(config, **kwargs)
    return KISBroker(config, gateway=redis, **kwargs)


async def fanout(config: KISConfig, symbols: list[str], out: str, redis: str | None) -> None:
    seen = array.array("q")
    append = seen.append
    clock = time.time_ns
    commands = await stdin_lines()
    async with make_broker(config, redis) as broker, broker.quotes(symbols) as quotes:
        emit({"ready": True})

        async def consume() -> None:
            async for quote in quotes:
                append(quote.cum_volume)
                append(clock())

        task = asyncio.create_task(consume())
        while await commands.get() is not None:
            pass
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        status = broker.stream_status
    write_pairs(out, seen)
    emit({"records": len(seen) // 2, "reconnects": getattr(status, "reconnects", None)})


def await_chain(task: asyncio.Task[Any]) -> str:
    """Where a suspended task waits: every coroutine of its await chain, outermost first."""
    lines = []
    obj: Any = task.get_coro()
    while obj is not None:
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None)
        if frame is not None:
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        obj = getattr(obj, "cr_await", None) or getattr(obj, "ag_await", None)
    if not lines or obj is None:
        lines.append(f"  waiting on {obj!r}")
    return "\n".join(lines) + "\n"


def write_pairs(out: str, seen: array.array[int]) -> None:
    with open(out, "wb") as handle:
        seen.tofile(handle)


def request_for(slot: int, symbols: list[str], key: str) -> OrderRequest:
    """The order of schedule slot ``slot`` (identical in every worker). Its quantity,
    ``slot + 1``, names the slot in the exchange's ledger."""
    return OrderRequest(
        symbols[slot % len(symbols)],
        Side.BUY,
        slot + 1,
        order_type=OrderType.MARKET,
        idempotency_key=key,
    )


async def trader(
    config: KISConfig, symbols: list[str], handle: Any, args: argparse.Namespace
) -> None:
    from kis_async.orders.pg_journal import PostgresJournal

    placed: dict[str, str] = {}
    errors: dict[str, int] = {}
    reads = {"ok": 0}
    commands = await stdin_lines()

    def count_error(exc: BaseException) -> None:
        name = getattr(exc, "msg_cd", None) or type(exc).__name__
        errors[name] = errors.get(name, 0) + 1

    async with make_broker(config, args.redis, journal=PostgresJournal(args.dsn)) as broker:
        stopping = asyncio.Event()

        async def place() -> None:
            for slot in range(args.slots):
                delay = args.t0 + slot * args.every - time.time()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), delay)
                if stopping.is_set():
                    return
                key = f"{args.run}-{slot}"
                request = request_for(slot, symbols, key)
                try:
                    placed[key] = await broker.place_order(request)
                except BrokerError as exc:
                    count_error(exc)

        async def read() -> None:
            n = 0
            while True:
                try:
                    await broker.get_price(symbols[n % len(symbols)])
                    reads["ok"] += 1
                except BrokerError as exc:
                    count_error(exc)
                n += 1

        async def notices() -> None:
            async with broker.executions(group=args.group, consumer=args.consumer) as stream:
                emit({"ready": True})
                async for event in stream:
                    cursor = event.cursor
                    row = {
                        "kind": event.kind.value,
                        "oid": event.broker_order_id.lstrip("0"),
                        "qty": event.qty,
                        "cum": cursor.delivered(event.broker_order_id) if cursor else None,
                        "replayed": event.replayed,
                        "source": event.source,
                        "t": time.time(),
                    }
                    if event.kind is ExecutionKind.FILLED:
                        handle.write(json.dumps(row) + "\n")
                        handle.flush()

        listener = asyncio.create_task(notices())
        # "go T0": the schedule's start (the same instant in every worker).
        while (line := await commands.get()) is not None and not line.startswith("go "):
            pass
        if line is not None:
            args.t0 = float(line.split()[1])
        placing, reading = asyncio.create_task(place()), asyncio.create_task(read())
        while line is not None and line != "stop":
            line = await commands.get()
        # The order being placed finishes (cancelling it would leave a booked order whose
        # number no worker saw); no new slot starts; the reads stop at once.
        stopping.set()
        reading.cancel()
        _, stuck = await asyncio.wait([placing, reading], timeout=30)
        for task in stuck:
            # A call that does not end is a finding: show where it hangs.
            sys.stderr.write(f"still running 30 s after stop: {task!r}\n{await_chain(task)}")
            errors["stuck_after_stop"] = errors.get("stuck_after_stop", 0) + 1
            task.cancel()
        emit({"stopped": True, "placed": placed})
        while await commands.get() is not None:
            pass
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    emit({"placed": placed, "errors": errors, "reads": reads["ok"]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["fanout", "trader"])
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--redis", default=None)
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--group", default=None)
    parser.add_argument("--consumer", default=None)
    parser.add_argument("--run", default="run")
    parser.add_argument("--t0", type=float, default=0.0)
    parser.add_argument("--every", type=float, default=0.5)
    parser.add_argument("--slots", type=int, default=0)
    args = parser.parse_args()
    doc = json.loads(args.config)
    symbols = doc.pop("symbols")
    config = KISConfig(**doc, token_cache_dir=None)
    if args.mode == "fanout":
        asyncio.run(fanout(config, symbols, args.out, args.redis))
    else:
        with open(args.out, "a", encoding="utf-8") as handle:
            asyncio.run(trader(config, symbols, handle, args))


if __name__ == "__main__":
    main()
