"""Fixtures for the venue/session tests: a live-mode simulator with holdings on a known
trading day, a KISBroker on it, and a raw client that places orders the way the KIS app or
another process would (plain httpx, no SDK)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from kis_async import KISBroker, Mode
from kis_async.models import KST
from kis_async.sim import KISSimulator

#: A Tuesday that is a trading day in every calendar the tests use.
DAY = datetime(2026, 12, 1, 10, 0, tzinfo=KST)


class OtherClient:
    """Places orders over raw HTTP, as an order from the KIS app or another program."""

    def __init__(self, sim: KISSimulator, client: httpx.AsyncClient) -> None:
        self.sim = sim
        self.client = client
        self._token: str | None = None

    async def headers(self, tr_id: str) -> dict[str, str]:
        if self._token is None:
            answer = await self.client.post(
                "/oauth2/tokenP",
                json={
                    "grant_type": "client_credentials",
                    "appkey": self.sim.app_key,
                    "appsecret": self.sim.app_secret,
                },
            )
            self._token = str(answer.json()["access_token"])
        return {
            "authorization": f"Bearer {self._token}",
            "appkey": self.sim.app_key,
            "appsecret": self.sim.app_secret,
            "tr_id": tr_id,
            "custtype": "P",
        }

    async def buy(
        self, symbol: str, qty: int, price: int, *, exchange: str, ord_dvsn: str = "00"
    ) -> dict[str, Any]:
        body = {
            "CANO": self.sim.account_id[:8],
            "ACNT_PRDT_CD": self.sim.account_id[8:],
            "PDNO": symbol,
            "ORD_DVSN": ord_dvsn,
            "ORD_QTY": str(qty),
            "ORD_UNPR": str(price),
            "EXCG_ID_DVSN_CD": exchange,
        }
        answer = await self.client.post(
            "/uapi/domestic-stock/v1/trading/order-cash",
            json=body,
            headers=await self.headers("TTTC0012U"),
        )
        data: dict[str, Any] = answer.json()
        assert data["rt_cd"] == "0", data
        return data


@pytest.fixture
async def live_sim() -> AsyncIterator[KISSimulator]:
    """A live simulator whose market clock starts at 10:00 on :data:`DAY`; 005930 held."""
    simulator = KISSimulator(
        seed=99,
        mode=Mode.LIVE,
        rate_limit=False,
        quote_interval=None,
        clock=DAY,
        starting_holdings={"005930": 500},
        token_issue_interval=0,
    )
    async with simulator.serve(port=0) as running:
        yield running


@pytest.fixture
async def live_broker(live_sim: KISSimulator, tmp_path: Any) -> AsyncIterator[KISBroker]:
    """A KISBroker on the live simulator (token and holiday cache in a temp dir)."""
    config = live_sim.config(requests_per_second=None, token_cache_dir=tmp_path)
    async with KISBroker(config) as opened:
        yield opened


@pytest.fixture
async def other(live_sim: KISSimulator) -> AsyncIterator[OtherClient]:
    """Another client of the same account, speaking raw HTTP."""
    async with httpx.AsyncClient(base_url=live_sim.rest_url, timeout=10) as client:
        yield OtherClient(live_sim, client)
