"""The stand-alone runner serves until cancelled and prints usable KIS_* lines."""

from __future__ import annotations

import asyncio
import contextlib
import io

import httpx
import pytest

from kis_async import KISConfig, Mode
from kis_async.sim import KISSimulator
from kis_async.sim.runner import env_lines, run


async def test_run_prints_env_lines_and_stops_on_cancel() -> None:
    """run(port=0) prints `export KIS_*` lines with the real port; a config built from them gets a
    token; cancelling the task stops the server."""
    out = io.StringIO()
    ready: asyncio.Future[KISSimulator] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run(port=0, seed=9, mode="live", out=out, on_ready=ready.set_result, quote_interval=None)
    )
    sim = await asyncio.wait_for(ready, 10)
    exports = [line for line in out.getvalue().splitlines() if not line.startswith("#")]
    assert all(line.startswith("export KIS_") for line in exports)
    lines = [line.removeprefix("export ") for line in exports]
    assert lines == env_lines(sim)  # simulator values need no shell quoting
    env = dict(line.split("=", 1) for line in lines)
    assert set(env) == {
        "KIS_APP_KEY",
        "KIS_APP_SECRET",
        "KIS_ACCOUNT_ID",
        "KIS_HTS_ID",
        "KIS_MODE",
        "KIS_REST_URL",
        "KIS_WS_URL",
    }
    config = KISConfig.from_env(env)
    assert config.mode is Mode.LIVE
    assert config.ws_url == sim.ws_url
    async with httpx.AsyncClient(base_url=config.rest_url) as client:
        response = await client.post(
            "/oauth2/tokenP",
            json={
                "grant_type": "client_credentials",
                "appkey": config.app_key,
                "appsecret": config.app_secret.get_secret_value(),
            },
        )
        assert response.status_code == 200
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert sim.port is None


async def test_serve_twice_is_refused_and_port_is_released() -> None:
    """serve() cannot nest on one simulator; after the block the simulator can serve again."""
    sim = KISSimulator(seed=2, quote_interval=None)
    async with sim.serve(port=0) as running:
        first_port = running.port
        assert first_port is not None
        with pytest.raises(RuntimeError, match="already"):
            async with sim.serve(port=0):
                pass
    assert sim.port is None
    async with sim.serve(port=0) as again:
        assert again.port is not None


async def test_port_in_use_raises_oserror() -> None:
    """Serving on a port already taken raises OSError and leaves the simulator reusable."""
    sim = KISSimulator(seed=2, quote_interval=None)
    async with KISSimulator(seed=3, quote_interval=None).serve(port=0) as other:
        assert other.port is not None
        with pytest.raises(OSError, match="in use"):
            async with sim.serve(port=other.port):
                pass
    async with sim.serve(port=0) as running:
        assert running.port is not None


async def test_run_with_live_serves_a_linked_live_simulator() -> None:
    """with_live=True prints KIS_LIVE_* lines of a second, live simulator on its own port; the
    paper host issues an approval key for the live app key; the file gets both sets."""
    out = io.StringIO()
    ready: asyncio.Future[KISSimulator] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run(port=0, seed=9, out=out, on_ready=ready.set_result, with_live=True, quote_interval=None)
    )
    sim = await asyncio.wait_for(ready, 10)
    lines = [
        line.removeprefix("export ")
        for line in out.getvalue().splitlines()
        if line.startswith("export ")
    ]
    env = dict(line.split("=", 1) for line in lines)
    assert env["KIS_MODE"] == "paper"
    assert env["KIS_LIVE_MODE"] == "live"
    assert env["KIS_REST_URL"] == sim.rest_url
    assert env["KIS_LIVE_REST_URL"] not in (sim.rest_url, "")
    assert env["KIS_LIVE_APP_KEY"] != env["KIS_APP_KEY"]
    assert KISConfig.from_env(env).mode is Mode.PAPER  # the KIS_LIVE_* lines do not disturb it
    async with httpx.AsyncClient(base_url=sim.rest_url) as client:
        response = await client.post(
            "/oauth2/Approval",
            json={
                "grant_type": "client_credentials",
                "appkey": env["KIS_LIVE_APP_KEY"],
                "secretkey": env["KIS_LIVE_APP_SECRET"],
            },
        )
    assert response.status_code == 200, response.text
    async with httpx.AsyncClient(base_url=env["KIS_LIVE_REST_URL"]) as client:
        token = await client.post(
            "/oauth2/tokenP",
            json={
                "grant_type": "client_credentials",
                "appkey": env["KIS_LIVE_APP_KEY"],
                "appsecret": env["KIS_LIVE_APP_SECRET"],
            },
        )
    assert token.status_code == 200
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with pytest.raises(ValueError, match="next to a paper one"):
        await run(port=0, mode="live", out=io.StringIO(), with_live=True, quote_interval=None)
