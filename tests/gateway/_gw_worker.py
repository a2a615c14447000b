"""A gateway worker process for the worker tests (run as a script, not collected).

    python _gw_worker.py hold REDIS_URL APP_KEY COUNT LEASE_TTL
    python _gw_worker.py group REDIS_URL APP_KEY GROUP CONSUMER STOP_AT

``hold``: registers COUNT quote keys with a lease of LEASE_TTL seconds, prints ``"ready"``
and its worker id, then waits to be killed. ``group``: reads the account's executions as
CONSUMER of GROUP, printing ``"ready"`` once the stream is open, then each event it handled
as ``{"oid", "qty", "replayed"}``; the STOP_AT-th event is announced as ``{"handling": oid}``
and never finished (the test kills the process mid-handling).
"""

from __future__ import annotations

import asyncio
import json
import sys

import redis.asyncio as aioredis

from kis_async import KISBroker, KISConfig, Mode
from kis_async.gateway import GatewayStreams


def emit(payload: object) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def config(app_key: str) -> KISConfig:
    return KISConfig(
        app_key=app_key,
        app_secret="s" * 180,
        account_id="5012345601",
        hts_id="tester01",
        mode=Mode.PAPER,
        token_cache_dir=None,
    )


async def hold(url: str, app_key: str, count: int, lease: float) -> None:
    client = aioredis.from_url(url)
    streams = GatewayStreams(config(app_key), client, lease_ttl=lease)
    stream = streams.quotes([f"{i:06d}" for i in range(100, 100 + count)])
    await stream.__aenter__()
    emit("ready")
    emit(streams.worker_id)
    await asyncio.Event().wait()


async def group(url: str, app_key: str, name: str, consumer: str, stop_at: int) -> None:
    broker = KISBroker(config(app_key), gateway=url)
    async with broker, broker.executions(group=name, consumer=consumer) as events:
        emit("ready")
        handled = 0
        async for event in events:
            handled += 1
            if handled == stop_at:
                emit({"handling": event.broker_order_id})
                await asyncio.Event().wait()
            emit({"oid": event.broker_order_id, "qty": event.qty, "replayed": event.replayed})


def main() -> None:
    mode, url, app_key, *rest = sys.argv[1:]
    if mode == "hold":
        asyncio.run(hold(url, app_key, int(rest[0]), float(rest[1])))
    else:
        asyncio.run(group(url, app_key, rest[0], rest[1], int(rest[2])))


if __name__ == "__main__":
    main()
