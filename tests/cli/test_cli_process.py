"""`python -m kis_async.cli` as a real process: the demo, the simulator command, no tracebacks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


def clean_env(tmp_path: Path) -> dict[str, str]:
    """The environment without KIS_* and with caches under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    return env


def run_cli(
    *argv: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  (our own interpreter and module)
        [sys.executable, "-m", "kis_async.cli", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_runs_to_completion_without_a_terminal(tmp_path: Path) -> None:
    """The demo exits 0 in plain-line mode, showing quotes, the book, notices and a summary."""
    result = run_cli("demo", "--duration", "3", env=clean_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert any(
        line.split("] ")[-1].startswith("quotes") and "005930" in line for line in out.splitlines()
    )
    assert "book     005930  bids " in out
    assert "notice   accepted" in out
    assert "notice   filled" in out
    assert "notice   cancelled" in out
    assert "account  cash" in out
    assert out.rstrip().splitlines()[-1].startswith("summary: ")
    assert "\x1b[" not in out  # no terminal escape codes when piped
    assert "Traceback" not in result.stderr


def test_demo_json_summary(tmp_path: Path) -> None:
    """`demo --json` prints only the summary document."""
    result = run_cli("demo", "--duration", "1", "--json", env=clean_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["orders_placed"] == 2
    assert summary["fills"] >= 1
    assert summary["quotes"] > 0


def test_account_command_without_config_has_no_traceback(tmp_path: Path) -> None:
    """A missing configuration exits 2 with a one-line hint, as a real process."""
    result = run_cli("balance", env=clean_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert "Traceback" not in result.stderr
    usage = run_cli("buy", "005930", env=clean_env(tmp_path), cwd=tmp_path)
    assert usage.returncode == 2
    assert "usage:" in usage.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_sim_command_serves_until_interrupted(tmp_path: Path) -> None:
    """`kis-async sim --port 0` prints `export KIS_*` lines that work for the CLI; SIGINT
    stops it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kis_async.cli",
        "sim",
        "--port",
        "0",
        "--seed",
        "5",
        env=clean_env(tmp_path),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        env = clean_env(tmp_path)
        async with asyncio.timeout(30):
            while "KIS_WS_URL" not in env:
                line = (await proc.stdout.readline()).decode()
                assert line, "the simulator exited early"
                if line.startswith("export KIS_"):
                    name, _, value = line.strip().removeprefix("export ").partition("=")
                    env[name] = value
        assert env["KIS_REST_URL"].startswith("http://127.0.0.1:")
        env["KIS_TOKEN_CACHE_DIR"] = str(tmp_path / "tokens")
        price = await asyncio.to_thread(run_cli, "price", "005930", "--json", env=env, cwd=tmp_path)
        assert price.returncode == 0, price.stderr
        assert json.loads(price.stdout)["symbol"] == "005930"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_sim_command_layout_and_pingpong_options(tmp_path: Path) -> None:
    """`kis-async sim --layout legacy` sends 46-field trades; --pingpong-interval/-grace close a
    session that answers no PINGPONG."""
    import httpx
    import websockets

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kis_async.cli", "sim", "--port", "0", "--mode", "live",
        "--layout", "legacy", "--pingpong-interval", "0.2", "--pingpong-grace", "1",
        env=clean_env(tmp_path), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        env: dict[str, str] = {}
        async with asyncio.timeout(30):
            while "KIS_WS_URL" not in env:
                line = (await proc.stdout.readline()).decode()
                assert line, "the simulator exited early"
                if line.startswith("export KIS_"):
                    name, _, value = line.strip().removeprefix("export ").partition("=")
                    env[name] = value
        async with httpx.AsyncClient() as client:
            reply = await client.post(
                env["KIS_REST_URL"] + "/oauth2/Approval",
                json={"grant_type": "client_credentials", "appkey": env["KIS_APP_KEY"],
                      "secretkey": env["KIS_APP_SECRET"]},
            )  # fmt: skip
        key = reply.json()["approval_key"]
        header = {"approval_key": key, "custtype": "P", "tr_type": "1", "content-type": "utf-8"}
        body = {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}}
        widths = set()

        async def read_until_closed(ws: websockets.ClientConnection) -> None:
            async with asyncio.timeout(20):
                while True:
                    raw = await ws.recv()
                    if isinstance(raw, str) and raw.startswith("0|H0STCNT0|"):
                        widths.add(len(raw.split("|", 3)[3].split("^")))

        async with websockets.connect(env["KIS_WS_URL"], ping_interval=None) as ws:
            await ws.send(json.dumps({"header": header, "body": body}))
            with pytest.raises(websockets.ConnectionClosed):
                await read_until_closed(ws)
        assert widths == {46}
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), 20)
