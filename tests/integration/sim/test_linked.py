"""A paper and a live simulator linked as KIS links its two environments: either host's
``/oauth2/Approval`` issues keys for both app keys (python-kis in paper mode asks the paper
host for its live socket's key with the live app key), each socket takes only its own app
key's keys, and nothing issues a key to an unknown app key or a wrong secret."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from kis_async import Mode
from kis_async.sim import KISSimulator


@contextlib.asynccontextmanager
async def _pair(*, link: bool = True) -> AsyncIterator[tuple[KISSimulator, KISSimulator]]:
    paper = KISSimulator(seed=7, mode=Mode.PAPER, quote_interval=0.01, rate_limit=False)
    live = KISSimulator(seed=8, mode=Mode.LIVE, quote_interval=0.01, rate_limit=False)
    if link:
        paper.link(live)
    async with paper.serve(port=0), live.serve(port=0):
        yield paper, live


async def _approval(host: KISSimulator, app_key: str, secret: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=host.rest_url, timeout=10) as client:
        return await client.post(
            "/oauth2/Approval",
            json={"grant_type": "client_credentials", "appkey": app_key, "secretkey": secret},
        )


async def _first_ack(sim: KISSimulator, wire: Any, key: str) -> dict[str, Any]:
    async with websockets.connect(sim.ws_url) as ws:
        await ws.send(wire.subscribe(key, "H0STCNT0", "005930"))
        ack: dict[str, Any] = await wire.next_json(ws)
        if ack["body"]["msg_cd"] == "OPSP0000":
            flag, tr_id, _, payload = await wire.next_data(ws, "H0STCNT0")
            assert (flag, tr_id) == ("0", "H0STCNT0")
            assert payload.split("^")[0] == "005930"
        return ack


async def test_paper_host_issues_the_live_sockets_key(wire: Any) -> None:
    """The paper host issues a key for the live app key; the live socket serves trades with
    it and the paper socket refuses it (OPSP0011); the same holds the other way round."""
    async with _pair() as (paper, live):
        response = await _approval(paper, live.app_key, live.app_secret)
        assert response.status_code == 200, response.text
        live_key = response.json()["approval_key"]
        assert len(live_key) == 36
        assert (await _first_ack(live, wire, live_key))["body"]["msg_cd"] == "OPSP0000"
        assert (await _first_ack(paper, wire, live_key))["body"]["msg_cd"] == "OPSP0011"
        response = await _approval(live, paper.app_key, paper.app_secret)
        assert response.status_code == 200, response.text
        paper_key = response.json()["approval_key"]
        assert (await _first_ack(paper, wire, paper_key))["body"]["msg_cd"] == "OPSP0000"
        assert (await _first_ack(live, wire, paper_key))["body"]["msg_cd"] == "OPSP0011"
        assert paper.stats.approval_keys_issued == live.stats.approval_keys_issued == 1
        assert paper.rest.approval_keys is live.rest.approval_keys


@pytest.mark.parametrize("host_mode", [Mode.PAPER, Mode.LIVE])
async def test_linked_hosts_refuse_unknown_keys_and_wrong_secrets(host_mode: Mode) -> None:
    """Linked, a host still answers EGW00103 to an app key neither simulator has and EGW00105
    to a known app key with another key's secret; its tokenP stays its own app key's."""
    async with _pair() as (paper, live):
        host, other = (paper, live) if host_mode is Mode.PAPER else (live, paper)
        unknown = await _approval(host, "PS" + "x" * 34, host.app_secret)
        assert (unknown.status_code, unknown.json()["error_code"]) == (403, "EGW00103")
        swapped = await _approval(host, other.app_key, host.app_secret)
        assert (swapped.status_code, swapped.json()["error_code"]) == (403, "EGW00105")
        missing = await _approval(host, other.app_key, "")
        assert missing.json()["error_code"] == "EGW00105"
        async with httpx.AsyncClient(base_url=host.rest_url, timeout=10) as client:
            token = await client.post(
                "/oauth2/tokenP",
                json={
                    "grant_type": "client_credentials",
                    "appkey": other.app_key,
                    "appsecret": other.app_secret,
                },
            )
        assert (token.status_code, token.json()["error_code"]) == (403, "EGW00103")
        assert host.stats.approval_keys_issued == 0
        assert not host.rest.approval_keys


async def test_unlinked_paper_host_refuses_the_live_app_key() -> None:
    """Without a link the paper host knows only its own app key (EGW00103 for the live one)."""
    async with _pair(link=False) as (paper, live):
        response = await _approval(paper, live.app_key, live.app_secret)
        assert (response.status_code, response.json()["error_code"]) == (403, "EGW00103")
        own = await _approval(paper, paper.app_key, paper.app_secret)
        assert own.status_code == 200


async def test_cross_issued_key_expires_on_the_issuing_clock(wire: Any) -> None:
    """A key the paper host issued for the live app key expires with the paper host's
    approval-key lifetime (24 h by default), then the live socket answers OPSP0011."""
    async with _pair() as (paper, live):
        response = await _approval(paper, live.app_key, live.app_secret)
        key = response.json()["approval_key"]
        paper.clock.advance(86_400 - 60)
        assert (await _first_ack(live, wire, key))["body"]["msg_cd"] == "OPSP0000"
        paper.clock.advance(120)
        assert (await _first_ack(live, wire, key))["body"]["msg_cd"] == "OPSP0011"


def test_link_refuses_same_mode_same_key_and_a_second_link() -> None:
    """link() needs one paper and one live simulator with different app keys, once each."""
    paper = KISSimulator(seed=1, mode=Mode.PAPER, quote_interval=None)
    with pytest.raises(ValueError, match="paper simulator with a live one"):
        paper.link(KISSimulator(seed=2, mode=Mode.PAPER, quote_interval=None))
    with pytest.raises(ValueError, match="different app keys"):
        paper.link(KISSimulator(seed=1, mode=Mode.LIVE, quote_interval=None))
    paper.link(KISSimulator(seed=2, mode=Mode.LIVE, quote_interval=None))
    with pytest.raises(RuntimeError, match="one other"):
        paper.link(KISSimulator(seed=3, mode=Mode.LIVE, quote_interval=None))
