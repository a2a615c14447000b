"""Token issuance under load: one issuance for 200 concurrent calls at expiry, and one for two
OS processes sharing an app key and a cache directory."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from kis_async import PriceSnapshot

from .conftest import broker_for, served

pytestmark = pytest.mark.reliability


async def test_200_concurrent_calls_at_token_expiry_issue_one_token() -> None:
    """Every token expires under 200 in-flight reads: one re-issuance, all 200 succeed."""
    async with (
        served(rate_limit=False) as sim,
        broker_for(sim, config={"requests_per_second": None}) as broker,
    ):
        first = await broker.authenticate()
        assert sim.stats.tokens_issued == 1
        # KIS refuses a second issuance within a minute (EGW00133): move its clock on.
        sim.exchange.advance(61)
        assert sim.faults.expire_tokens() == 1
        started = time.perf_counter()
        results = await asyncio.gather(
            *(broker.get_price(("005930", "000660")[i % 2]) for i in range(200)),
            return_exceptions=True,
        )
        elapsed = time.perf_counter() - started
        second = await broker.authenticate()
    failures = [r for r in results if not isinstance(r, PriceSnapshot)]
    print(
        f"\n200 concurrent get_price at token expiry: {200 - len(failures)} ok, "
        f"{len(failures)} failed, tokens issued {sim.stats.tokens_issued} (1 before expiry), "
        f"token throttled {sim.stats.token_throttle_rejections}, "
        f"auth rejections {sim.stats.auth_rejections}, {elapsed:.2f} s"
    )
    assert failures == []
    assert sim.stats.tokens_issued == 2
    assert sim.stats.token_throttle_rejections == 0
    assert second.value.get_secret_value() != first.value.get_secret_value()


CHILD = """
import asyncio, hashlib, json, sys
from kis_async import KISBroker, KISConfig

async def main() -> None:
    values = json.loads(sys.argv[1])
    config = KISConfig(**values)
    async with KISBroker(config) as broker:
        token = await broker.authenticate()
        price = await broker.get_price("005930")
    digest = hashlib.sha256(token.value.get_secret_value().encode()).hexdigest()
    print(json.dumps({"digest": digest, "price": str(price.price)}))

asyncio.run(main())
"""


async def test_two_processes_on_one_key_and_cache_issue_one_token(tmp_path: Path) -> None:
    """Two OS processes sharing an app key and cache directory cause one issuance."""
    async with served(rate_limit=False) as sim:
        values = {
            "app_key": sim.app_key,
            "app_secret": sim.app_secret,
            "account_id": sim.account_id,
            "mode": "live",
            "rest_url": sim.rest_url,
            "ws_url": sim.ws_url,
            "token_cache_dir": str(tmp_path / "tokens"),
            "requests_per_second": None,
        }
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                CHILD,
                json.dumps(values),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(2)
        ]
        async with asyncio.timeout(60):
            outputs = [await p.communicate() for p in procs]
        issued = sim.stats.tokens_issued
        requests = sim.stats.token_requests
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()[-2000:]
    results = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    print(
        f"\ntwo processes, one app key and cache dir: tokens issued {issued}, "
        f"tokenP requests {requests}, same token in both: "
        f"{results[0]['digest'] == results[1]['digest']}"
    )
    assert issued == 1
    assert requests == 1
    assert results[0]["digest"] == results[1]["digest"]
    cached = list((tmp_path / "tokens").iterdir())
    assert cached, "the token cache directory stayed empty"
    for path in cached:  # the cache is private to the user (0600 files)
        if path.is_file() and not path.name.endswith(".lock"):
            assert path.stat().st_mode & 0o077 == 0
