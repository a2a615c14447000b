"""Fixtures for the REST-layer unit tests: configs, respx routes and KIS-shaped bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from kis_async.config import KISConfig, Mode
from kis_async.rest.client import RestClient
from kis_async.rest.retry import set_wait_scale

BASE_URL = "https://kis.test"
APP_KEY = "PSAPPKEY0123456789abcdefghijklmnopqr"
APP_SECRET = "SECRETVALUE-" + "s" * 60
ACCOUNT = "5012345601"
TOKEN = "eyTOKENVALUE.abc.def"
APPROVAL = "APPROVALKEY-1234-5678-9abc-def012345678"

TOKEN_PATH = "/oauth2/tokenP"


def make_config(mode: Mode = Mode.PAPER, **overrides: Any) -> KISConfig:
    """A test configuration; disk cache and rate limiting off unless overridden."""
    values: dict[str, Any] = {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "account_id": ACCOUNT,
        "mode": mode,
        "rest_url": BASE_URL,
        "token_cache_dir": None,
        "requests_per_second": None,
        "max_retries": 3,
        "timeout": 5.0,
    }
    values.update(overrides)
    return KISConfig(**values)


def token_body(
    value: str = TOKEN, expired: str | None = "2099-12-31 23:59:59", expires_in: int = 86400
) -> dict[str, Any]:
    """A tokenP answer."""
    body: dict[str, Any] = {
        "access_token": value,
        "token_type": "Bearer",
        "expires_in": expires_in,
    }
    if expired is not None:
        body["access_token_token_expired"] = expired
    return body


def envelope(
    msg_cd: str = "20310000",
    msg1: str = "모의투자 조회가 완료되었습니다.                ",
    rt_cd: str = "0",
    **outputs: Any,
) -> dict[str, Any]:
    """A KIS response envelope with the given outputs."""
    return {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1, **outputs}


def error_body(msg_cd: str, msg1: str = "오류입니다.   ", rt_cd: str = "1") -> dict[str, Any]:
    """A failure envelope."""
    return {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}


@pytest.fixture(autouse=True)
def zero_waits() -> Iterator[None]:
    """Retry waits are zero here too (the root conftest does the same)."""
    previous = set_wait_scale(0.0)
    try:
        yield
    finally:
        set_wait_scale(previous)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A respx router for the test host; unmatched requests fail the test."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def token_route(router: respx.MockRouter) -> respx.Route:
    """tokenP answering a fresh token."""
    return router.post(TOKEN_PATH).mock(return_value=httpx.Response(200, json=token_body()))


ClientFactory = Callable[..., RestClient]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Build RestClients (closed after the test)."""
    made: list[RestClient] = []

    def factory(config: KISConfig | None = None, **kwargs: Any) -> RestClient:
        client = RestClient(config or make_config(), **kwargs)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


@pytest.fixture
async def client(make_client: ClientFactory, token_route: respx.Route) -> RestClient:
    """A paper-mode client with tokenP mocked."""
    return make_client()


@pytest.fixture
async def live_client(make_client: ClientFactory, token_route: respx.Route) -> RestClient:
    """A live-mode client with tokenP mocked."""
    return make_client(make_config(Mode.LIVE))


class Helpers:
    """Test helpers as a fixture (test modules cannot import conftest in importlib mode)."""

    BASE_URL = BASE_URL
    APP_KEY = APP_KEY
    APP_SECRET = APP_SECRET
    ACCOUNT = ACCOUNT
    TOKEN = TOKEN
    APPROVAL = APPROVAL
    TOKEN_PATH = TOKEN_PATH
    make_config = staticmethod(make_config)
    token_body = staticmethod(token_body)
    envelope = staticmethod(envelope)
    error_body = staticmethod(error_body)


@pytest.fixture
def kis() -> type[Helpers]:
    """Constants and body builders shaped as in the protocol doc."""
    return Helpers
