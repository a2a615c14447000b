"""Fixtures for the simulator tests: served simulators and a raw KIS client over httpx.

These tests talk the wire protocol directly (httpx, websockets), never through the SDK, so
they check the simulator against protocol doc rather than against our own client.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import websockets
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kis_async import Mode
from kis_async.sim import KISSimulator

PREFIX = "/uapi/domestic-stock/v1"


class RawKIS:
    """A minimal KIS REST client written from the protocol doc, for testing the simulator."""

    def __init__(self, sim: KISSimulator, client: httpx.AsyncClient) -> None:
        self.sim = sim
        self.client = client
        self.access_token: str | None = None

    @property
    def paper(self) -> bool:
        return self.sim.mode is Mode.PAPER

    def tr(self, live: str, paper: str) -> str:
        return paper if self.paper else live

    async def token(self) -> str:
        if self.access_token is None:
            response = await self.client.post(
                "/oauth2/tokenP",
                json={
                    "grant_type": "client_credentials",
                    "appkey": self.sim.app_key,
                    "appsecret": self.sim.app_secret,
                },
            )
            assert response.status_code == 200, response.text
            self.access_token = response.json()["access_token"]
        return self.access_token

    async def approval_key(self) -> str:
        response = await self.client.post(
            "/oauth2/Approval",
            json={
                "grant_type": "client_credentials",
                "appkey": self.sim.app_key,
                "secretkey": self.sim.app_secret,
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["approval_key"])

    async def headers(self, tr_id: str, **extra: str) -> dict[str, str]:
        return {
            "content-type": "application/json; charset=utf-8",
            "authorization": f"Bearer {await self.token()}",
            "appkey": self.sim.app_key,
            "appsecret": self.sim.app_secret,
            "tr_id": tr_id,
            "custtype": "P",
            **extra,
        }

    async def get(
        self, path: str, tr_id: str, params: dict[str, str], *, tr_cont: str = ""
    ) -> httpx.Response:
        headers = await self.headers(tr_id, tr_cont=tr_cont)
        return await self.client.get(PREFIX + path, params=params, headers=headers)

    async def post(self, path: str, tr_id: str, body: dict[str, str]) -> httpx.Response:
        return await self.client.post(PREFIX + path, json=body, headers=await self.headers(tr_id))

    @property
    def account(self) -> dict[str, str]:
        return {"CANO": self.sim.account_id[:8], "ACNT_PRDT_CD": self.sim.account_id[8:]}

    async def order(
        self, side: str, symbol: str, qty: int, *, ord_dvsn: str = "00", price: int = 0
    ) -> httpx.Response:
        tr_id = (
            self.tr("TTTC0012U", "VTTC0012U")
            if side == "buy"
            else self.tr("TTTC0011U", "VTTC0011U")
        )
        body = self.account | {
            "PDNO": symbol,
            "ORD_DVSN": ord_dvsn,
            "ORD_QTY": str(qty),
            "ORD_UNPR": str(price),
        }
        return await self.post("/trading/order-cash", tr_id, body)

    async def revise_cancel(
        self,
        odno: str,
        *,
        cancel: bool,
        qty: int | None = None,
        price: int = 0,
        ord_dvsn: str = "00",
        branch: str | None = None,
    ) -> httpx.Response:
        body = self.account | {
            "KRX_FWDG_ORD_ORGNO": branch or self.sim.exchange.branch_no,
            "ORGN_ODNO": odno,
            "ORD_DVSN": ord_dvsn,
            "RVSE_CNCL_DVSN_CD": "02" if cancel else "01",
            "ORD_QTY": str(qty or 0),
            "ORD_UNPR": str(price),
            "QTY_ALL_ORD_YN": "Y" if qty is None else "N",
        }
        return await self.post("/trading/order-rvsecncl", self.tr("TTTC0013U", "VTTC0013U"), body)

    async def daily_ccld(self, *, tr_cont: str = "", fk: str = "", nk: str = "") -> httpx.Response:
        day = self.sim.clock.now().strftime("%Y%m%d")
        params = self.account | {
            "INQR_STRT_DT": day,
            "INQR_END_DT": day,
            "SLL_BUY_DVSN_CD": "00",
            "INQR_DVSN": "00",
            "PDNO": "",
            "CCLD_DVSN": "00",
            "ORD_GNO_BRNO": "",
            "ODNO": "",
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
            "CTX_AREA_FK100": fk,
            "CTX_AREA_NK100": nk,
        }
        return await self.get(
            "/trading/inquire-daily-ccld",
            self.tr("TTTC0081R", "VTTC0081R"),
            params,
            tr_cont=tr_cont,
        )

    async def balance(self, *, tr_cont: str = "", fk: str = "", nk: str = "") -> httpx.Response:
        params = self.account | {
            "AFHR_FLPR_YN": "N",
            "OFL_YN": "",
            "INQR_DVSN": "02",
            "UNPR_DVSN": "01",
            "FUND_STTL_ICLD_YN": "N",
            "FNCG_AMT_AUTO_RDPT_YN": "N",
            "PRCS_DVSN": "00",
            "CTX_AREA_FK100": fk,
            "CTX_AREA_NK100": nk,
        }
        return await self.get(
            "/trading/inquire-balance", self.tr("TTTC8434R", "VTTC8434R"), params, tr_cont=tr_cont
        )


@pytest.fixture
def serve() -> Callable[..., Any]:
    """Return a factory: ``async with serve(**options) as (sim, kis)``."""
    import contextlib

    @contextlib.asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[tuple[KISSimulator, RawKIS]]:
        options.setdefault("seed", 7)
        options.setdefault("quote_interval", None)
        options.setdefault("rate_limit", False)
        async with (
            KISSimulator(**options).serve(port=0) as sim,
            httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as client,
        ):
            yield sim, RawKIS(sim, client)

    return factory


@pytest.fixture
async def paper(serve: Callable[..., Any]) -> AsyncIterator[tuple[KISSimulator, RawKIS]]:
    """A paper simulator without rate limit and with a still market (moves only on step())."""
    async with serve(mode=Mode.PAPER) as pair:
        yield pair


@pytest.fixture
async def live(serve: Callable[..., Any]) -> AsyncIterator[tuple[KISSimulator, RawKIS]]:
    """The same in live mode."""
    async with serve(mode=Mode.LIVE) as pair:
        yield pair


def subscribe_message(approval_key: str, tr_id: str, tr_key: str, tr_type: str = "1") -> str:
    return json.dumps(
        {
            "header": {
                "approval_key": approval_key,
                "custtype": "P",
                "tr_type": tr_type,
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        }
    )


async def next_json(ws: websockets.ClientConnection, *, skip_data: bool = True) -> dict[str, Any]:
    """The next JSON (ack) message, skipping data frames; PINGPONG is echoed back."""
    while True:
        raw = await ws.recv()
        assert isinstance(raw, str)
        if raw[0] in "01":
            if skip_data:
                continue
            raise AssertionError(f"unexpected data frame {raw[:40]}")
        message: dict[str, Any] = json.loads(raw)
        if message["header"]["tr_id"] == "PINGPONG":
            await ws.send(raw)
            continue
        return message


async def next_data(ws: websockets.ClientConnection, tr_id: str) -> list[str]:
    """The next data frame of ``tr_id``, split into its 4 parts; PINGPONG is echoed."""
    while True:
        raw = await ws.recv()
        assert isinstance(raw, str)
        if raw.startswith("{"):
            message = json.loads(raw)
            if message["header"]["tr_id"] == "PINGPONG":
                await ws.send(raw)
            continue
        parts = raw.split("|", 3)
        if parts[1] == tr_id:
            return parts


async def until_closed(ws: websockets.ClientConnection, *, limit: int = 5_000) -> int:
    """Read until the server closes the socket; returns the data frames seen on the way."""
    data = 0
    for _ in range(limit):
        try:
            raw = await asyncio.wait_for(ws.recv(), 2)
        except websockets.ConnectionClosed:
            return data
        data += raw[0] in "01"
    raise AssertionError("the server did not close the socket")


def decrypt(payload: str, *, key: str, iv: str) -> str:
    """AES-256-CBC + PKCS#7 + base64, as protocol doc §6.6 describes."""
    decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
    padded = decryptor.update(base64.b64decode(payload)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")


@pytest.fixture
def wire() -> Any:
    """WebSocket helpers (importlib mode cannot import conftest as a module)."""
    import types

    return types.SimpleNamespace(
        subscribe=subscribe_message,
        next_json=next_json,
        next_data=next_data,
        decrypt=decrypt,
        until_closed=until_closed,
    )
