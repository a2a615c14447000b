"""At most one re-issuance per refused token value: KIS handing back the refused token never
starts a loop of issuances (KIS returns the same token for repeated issuance within 6 h)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx

from kis_async.errors import AuthenticationError
from kis_async.rest.auth import ISSUE_INTERVAL
from kis_async.rest.retry import set_wait_scale

PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"


class _Sleeps:
    """Records the cool-down waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def real_scale() -> Any:
    """Waits at their real length (the sleep is injected, so nothing actually waits)."""
    previous = set_wait_scale(1.0)
    yield
    set_wait_scale(previous)


@pytest.mark.usefixtures("real_scale")
async def test_same_refused_token_back_waits_once_then_raises(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """EGW00123, then KIS issues the same token again: one cool-down wait, one more tokenP,
    then AuthenticationError with KIS's code; later calls re-issue nothing."""
    issue = router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    price = router.get(PRICE).respond(500, json=kis.error_body("EGW00123", "기간이 만료된 token"))
    sleeps = _Sleeps()
    client = make_client(kis.make_config(max_retries=0), sleep=sleeps)

    with pytest.raises(AuthenticationError) as first:
        await client.get_price("005930")
    assert first.value.msg_cd == "EGW00123"
    # the original issuance, the re-issuance, and one more after the cool-down
    assert issue.call_count == 3
    assert sleeps.waits == [ISSUE_INTERVAL]
    assert price.call_count == 2

    for _ in range(4):
        with pytest.raises(AuthenticationError) as later:
            await client.get_price("005930")
        assert later.value.msg_cd == "EGW00123"
    assert issue.call_count == 3
    assert sleeps.waits == [ISSUE_INTERVAL]
    assert price.call_count == 6
    assert client.auth.issued == 3


@pytest.mark.usefixtures("real_scale")
async def test_fresh_token_after_the_cool_down_is_used(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """When KIS hands out a new token after the cool-down, the call goes on with it."""
    issue = router.post(kis.TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(200, json=kis.token_body("T1")),
            httpx.Response(200, json=kis.token_body("T1")),
            httpx.Response(200, json=kis.token_body("T2")),
        ]
    )
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer T1":
            return httpx.Response(500, json=kis.error_body("EGW00123"))
        return httpx.Response(200, json=kis.envelope(output={"stck_prpr": "70000"}))

    router.get(PRICE).mock(side_effect=answer)
    sleeps = _Sleeps()
    client = make_client(kis.make_config(max_retries=0), sleep=sleeps)

    snapshot = await client.get_price("005930")

    assert snapshot.price == 70000
    assert issue.call_count == 3
    assert sleeps.waits == [ISSUE_INTERVAL]
    assert seen == ["Bearer T1", "Bearer T2"]
    await client.get_price("005930")
    assert issue.call_count == 3


async def test_new_token_on_refresh_needs_no_wait(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """The usual case: the refused token is replaced by a new one at once, no wait."""
    issue = router.post(kis.TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(200, json=kis.token_body("T1")),
            httpx.Response(200, json=kis.token_body("T2")),
        ]
    )
    router.get(PRICE).mock(
        side_effect=[
            httpx.Response(500, json=kis.error_body("EGW00121")),
            httpx.Response(200, json=kis.envelope(output={"stck_prpr": "1"})),
        ]
    )
    sleeps = _Sleeps()
    client = make_client(kis.make_config(max_retries=0), sleep=sleeps)

    await client.get_price("005930")

    assert issue.call_count == 2
    assert sleeps.waits == []


@pytest.mark.usefixtures("real_scale")
async def test_concurrent_refusals_share_one_reissuance(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """Eight calls refused at once with the same token share one re-issuance cycle."""
    issue = router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    router.get(PRICE).respond(500, json=kis.error_body("EGW00123"))
    sleeps = _Sleeps()
    client = make_client(kis.make_config(max_retries=0), sleep=sleeps)
    await client.token()

    results = await asyncio.gather(
        *(client.get_price("005930") for _ in range(8)), return_exceptions=True
    )

    assert all(isinstance(r, AuthenticationError) for r in results)
    assert {r.msg_cd for r in results if isinstance(r, AuthenticationError)} == {"EGW00123"}
    assert issue.call_count == 3
    assert sleeps.waits == [ISSUE_INTERVAL]
