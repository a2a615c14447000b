"""Bad gateway arguments fail before anything connects; ``kis-async gateway`` reports usage
errors in one line; a stop() asked before run() starts ends it at once, releasing nothing
it does not hold; status and repr carry no secret."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kis_async import KISConfig, Mode
from kis_async.cli import EXIT_USAGE, main
from kis_async.gateway import Gateway

SECRET = "S" * 60 + "-gateway-secret-" + "x" * 100
UNREACHABLE = "redis://127.0.0.1:1/0"


def config() -> KISConfig:
    return KISConfig(
        app_key="PK" + "g" * 34,
        app_secret=SECRET,
        account_id="5012345601",
        hts_id="gwtester",
        mode=Mode.PAPER,
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"lease_ttl": 0}, ValueError),
        ({"lease_ttl": -1.0}, ValueError),
        ({"lease_ttl": True}, ValueError),
        ({"gateway_id": ""}, ValueError),
        ({"gateway_id": "two words"}, ValueError),
        ({"gateway_id": "id\n"}, ValueError),
        ({"market_maxlen": 0}, ValueError),
        ({"market_maxlen": 10.5}, TypeError),
        ({"execution_retention": 0}, ValueError),
        ({"namespace_prefix": "has space"}, ValueError),
    ],
)
def test_bad_arguments_raise_before_anything_connects(kwargs: dict[str, Any], error: type) -> None:
    """Each bad argument raises its typed error in the constructor."""
    with pytest.raises(error):
        Gateway(config(), UNREACHABLE, **kwargs)


def test_a_config_and_a_redis_of_the_right_kinds_are_required() -> None:
    """A non-config or a non-client is a TypeError."""
    with pytest.raises(TypeError):
        Gateway(object(), UNREACHABLE)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Gateway(config(), 6379)  # type: ignore[arg-type]


async def test_stop_before_run_ends_run_and_status_has_no_secret(redis_server: Any) -> None:
    """stop() asked before run() starts makes run() return after its standby step; the
    gateway's repr and status never show the app key, secret or account."""
    gateway = Gateway(config(), redis_server.url, gateway_id="early-stop", lease_ttl=1.0)
    assert gateway.status()["state"] == "starting"  # what `kis-async gateway` prints first
    gateway.stop()
    await asyncio.wait_for(gateway.run(), 10)
    status = gateway.status()
    assert status["state"] == "stopped"
    assert status["active"] is False
    cfg = config()
    for text in (repr(gateway), str(status)):
        for secret in (cfg.app_key, SECRET, cfg.account_id):
            assert secret not in text


def test_cli_usage_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: Any, tmp_path: Any
) -> None:
    """No --redis, a URL that is not Redis's, or no KIS_* configuration: exit 2, one line."""
    for name in ("KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./.env
    assert main(["gateway", "--redis", UNREACHABLE]) == EXIT_USAGE
    assert "KIS_APP_KEY" in capsys.readouterr().err
    assert main(["gateway"]) == EXIT_USAGE
    assert main(["gateway", "--redis", "http://127.0.0.1:6379"]) == EXIT_USAGE
    assert "redis://" in capsys.readouterr().err
    assert main(["gateway", "--redis", UNREACHABLE, "--env-file", "/nonexistent/.env"]) == (
        EXIT_USAGE
    )
    assert "env file not found" in capsys.readouterr().err
    assert main(["gateway", "--redis", UNREACHABLE, "--lease-ttl", "０.５"]) == EXIT_USAGE


def test_importing_the_gateway_package_loads_neither_redis_nor_the_broker() -> None:
    """``import kis_async.gateway`` (and its key names) defers redis-py and the broker until
    a name that needs them is used."""
    import subprocess
    import sys

    code = (
        "import sys, kis_async.gateway, kis_async.gateway.keys\n"
        "before = [m for m in ('redis', 'kis_async.broker', 'kis_async.gateway.server')"
        " if m in sys.modules]\n"
        "from kis_async.gateway import Gateway\n"
        "print(','.join(before) or '-', 'redis' in sys.modules)\n"
    )
    proc = subprocess.run(  # noqa: S603 (our own interpreter)
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["-", "True"]
