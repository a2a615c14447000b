"""A worker process for the shared limiter and token tests (run as a script, not collected).

    python _shared_worker.py MODE JSON_ARGS

Prints ``"ready"``, waits for a line on stdin, acts, prints one JSON result line. Modes:

* ``reads``: ``tasks`` tasks call ``acquire()`` until ``duration`` seconds have passed;
  result ``{"grants": [redis server time of each grant]}``.
* ``orders``: ``count`` sequential ``acquire(priority=True)``, ``gap`` seconds apart; result
  ``{"grants": [...], "waits": [seconds each order waited]}``.
* ``broker``: a KISBroker on the simulator with the shared token store (and the shared
  limiter unless ``own_limiter``); ``calls`` concurrent ``get_price`` calls after ``go``;
  result ``{"token_sha": <first 16 hex of the token's SHA-256>, "prices": n}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from typing import Any

from kis_async import KISBroker, KISConfig
from kis_async.gateway import RedisRateLimiter, RedisTokenStore


def emit(payload: object) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def go() -> None:
    emit("ready")
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def limiter_mode(mode: str, args: dict[str, Any]) -> None:
    limiter = RedisRateLimiter(args["url"], rps=args["rps"], name=args["name"])
    grants: list[float] = []
    waits: list[float] = []
    try:
        await go()
        if mode == "reads":
            deadline = time.monotonic() + args["duration"]

            async def reader() -> None:
                while time.monotonic() < deadline:
                    await limiter.acquire()
                    assert limiter.last_grant_time is not None
                    grants.append(limiter.last_grant_time)

            await asyncio.gather(*(reader() for _ in range(args["tasks"])))
        else:
            await asyncio.sleep(args["delay"])
            for _ in range(args["count"]):
                started = time.monotonic()
                await limiter.acquire(priority=True)
                waits.append(time.monotonic() - started)
                assert limiter.last_grant_time is not None
                grants.append(limiter.last_grant_time)
                await asyncio.sleep(args["gap"])
    finally:
        await limiter.aclose()
    emit({"grants": grants, "waits": waits})


async def broker_mode(args: dict[str, Any]) -> None:
    config = KISConfig(**args["config"], token_cache_dir=None)
    store = RedisTokenStore(args["url"], config)
    limiter = (
        None
        if args["own_limiter"]
        else RedisRateLimiter.for_config(args["url"], config, margin=args["margin"])
    )
    try:
        async with KISBroker(config, rate_limiter=limiter, token_store=store) as broker:
            await go()
            token = await broker.authenticate()
            prices = await asyncio.gather(
                *(broker.get_price("005930") for _ in range(args["calls"]))
            )
            digest = hashlib.sha256(token.value.get_secret_value().encode()).hexdigest()
            emit({"token_sha": digest[:16], "prices": len(prices)})
    finally:
        await store.aclose()
        if limiter is not None:
            await limiter.aclose()


if __name__ == "__main__":
    mode, raw = sys.argv[1], json.loads(sys.argv[2])
    asyncio.run(broker_mode(raw) if mode == "broker" else limiter_mode(mode, raw))
