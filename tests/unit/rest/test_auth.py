"""Token issuance, single flight, disk cache, refresh on EGW00121-123, EGW00133, revoke,
approval key and hashkey."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from kis_async.errors import AuthenticationError
from kis_async.models import KST, OrderRequest, Side
from kis_async.rest.auth import ISSUE_INTERVAL, parse_token
from kis_async.rest.retry import set_wait_scale

PRICE_PATH = "/uapi/domestic-stock/v1/quotations/inquire-price"
ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"
PRICE_OK = {
    "rt_cd": "0",
    "msg_cd": "20310000",
    "msg1": "ok",
    "output": {"stck_shrn_iscd": "005930", "stck_prpr": "71900"},
}


def _slow_token(kis: Any, values: list[str] | None = None) -> Any:
    """A tokenP side effect that yields to the loop (so concurrent callers pile up)."""
    issued = iter(values or [kis.TOKEN] * 1000)

    async def respond(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return httpx.Response(200, json=kis.token_body(next(issued)))

    return respond


def test_parse_token_expiry_from_kst_stamp() -> None:
    """access_token_token_expired is read as KST and wins over expires_in."""
    now = datetime(2024, 1, 1, 9, 0, tzinfo=KST)
    token = parse_token(
        {
            "access_token": "abc",
            "token_type": "Bearer",
            "expires_in": 10,
            "access_token_token_expired": "2024-01-02 09:15:33",
        },
        now=now,
    )
    assert token.expires_at == datetime(2024, 1, 2, 9, 15, 33, tzinfo=KST)
    assert token.expires_at.utcoffset() == timedelta(hours=9)


@pytest.mark.parametrize("stamp", [None, "", "not a date"])
def test_parse_token_falls_back_to_expires_in(stamp: str | None) -> None:
    """Without a usable stamp the expiry is now + expires_in."""
    now = datetime(2024, 1, 1, 9, 0, tzinfo=KST)
    body: dict[str, Any] = {"access_token": "abc", "expires_in": 3600}
    if stamp is not None:
        body["access_token_token_expired"] = stamp
    assert parse_token(body, now=now).expires_at == now + timedelta(hours=1)


async def test_single_flight_100_concurrent_token_calls(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """100 concurrent callers without a token cause exactly one tokenP."""
    route = router.post(kis.TOKEN_PATH).mock(side_effect=_slow_token(kis))
    client = make_client()
    tokens = await asyncio.gather(*(client.token() for _ in range(100)))
    assert route.call_count == 1
    assert {t.value.get_secret_value() for t in tokens} == {kis.TOKEN}


async def test_single_flight_100_concurrent_requests(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """100 concurrent reads share one issuance and all carry the token."""
    token_route = router.post(kis.TOKEN_PATH).mock(side_effect=_slow_token(kis))
    price_route = router.get(PRICE_PATH).respond(200, json=PRICE_OK)
    client = make_client()
    await asyncio.gather(*(client.get_price("005930") for _ in range(100)))
    assert token_route.call_count == 1
    assert price_route.call_count == 100
    assert {c.request.headers["authorization"] for c in price_route.calls} == {
        f"Bearer {kis.TOKEN}"
    }


async def test_expired_token_refreshed_once_under_concurrency(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """When the token nears expiry, 100 concurrent callers cause exactly one new issuance."""
    clock = [datetime(2024, 1, 1, 9, 0, tzinfo=KST)]
    route = router.post(kis.TOKEN_PATH).mock(side_effect=_slow_token(kis, ["old", "new"]))
    # The stamps below are absolute; the clock moves past the first token's refresh point.
    client = make_client(now=lambda: clock[0])
    first = await client.token()
    assert first.value.get_secret_value() == "old"
    clock[0] = datetime(2100, 1, 1, tzinfo=KST)
    route.side_effect = None
    route.mock(
        side_effect=[
            httpx.Response(200, json=kis.token_body("new", expired="2100-01-02 00:00:00")),
        ]
    )
    tokens = await asyncio.gather(*(client.token() for _ in range(100)))
    assert {t.value.get_secret_value() for t in tokens} == {"new"}
    assert route.call_count == 2


async def test_refresh_ahead_of_expiry(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """A token within token_refresh_margin of expiry is replaced; one outside it is kept."""
    now = datetime(2024, 1, 1, 9, 0, tzinfo=KST)
    route = router.post(kis.TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(200, json=kis.token_body("t1", expired="2024-01-01 09:20:00")),
            httpx.Response(200, json=kis.token_body("t2", expired="2024-01-02 09:00:00")),
        ]
    )
    client = make_client(kis.make_config(token_refresh_margin=600.0), now=lambda: now)
    assert (await client.token()).value.get_secret_value() == "t1"
    assert (await client.token()).value.get_secret_value() == "t1"  # 20 min left > 10 min
    now = datetime(2024, 1, 1, 9, 11, tzinfo=KST)  # 9 min left < 10 min margin
    assert (await client.token()).value.get_secret_value() == "t2"
    assert route.call_count == 2


# -- disk cache ------------------------------------------------------------------------------


async def test_disk_cache_reused_across_clients(
    make_client: Any, router: respx.MockRouter, kis: Any, tmp_path: Path
) -> None:
    """A second RestClient on the same cache dir reuses the token: one issuance in total."""
    route = router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    cache_dir = tmp_path / "cache" / "kis"
    config = kis.make_config(token_cache_dir=cache_dir)
    first = make_client(config)
    await first.token()
    await first.aclose()
    second = make_client(config)
    token = await second.token()
    assert token.value.get_secret_value() == kis.TOKEN
    assert route.call_count == 1
    files = [p for p in cache_dir.iterdir() if p.suffix == ".json"]
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    text = files[0].read_text()
    assert kis.APP_SECRET not in text
    assert kis.APP_KEY not in text
    assert not [p for p in cache_dir.iterdir() if p.suffix == ".tmp"]


async def test_cache_keyed_by_mode(
    make_client: Any, router: respx.MockRouter, kis: Any, tmp_path: Path
) -> None:
    """Paper and live tokens of one key are cached apart."""
    from kis_async.config import Mode

    route = router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    await make_client(kis.make_config(token_cache_dir=tmp_path)).token()
    await make_client(kis.make_config(Mode.LIVE, token_cache_dir=tmp_path)).token()
    assert route.call_count == 2
    assert len([n for n in os.listdir(tmp_path) if n.endswith(".json")]) == 2


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        "[]",
        json.dumps(
            {
                "version": 1,
                "mode": "paper",
                "app_key_sha256": "00" * 32,
                "access_token": "foreign",
                "expires_at": "2099-01-01T00:00:00+09:00",
            }
        ),
        json.dumps({"version": 99}),
        "\x00\xff binary",
    ],
)
async def test_corrupt_or_foreign_cache_is_ignored_and_replaced(
    make_client: Any, router: respx.MockRouter, kis: Any, tmp_path: Path, content: str
) -> None:
    """A corrupt or foreign cache file is never fatal: a token is issued and the file fixed."""
    route = router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    config = kis.make_config(token_cache_dir=tmp_path)
    client = make_client(config)
    path = client.auth.cache.path
    assert path is not None
    path.write_text(content, encoding="utf-8", errors="surrogateescape")
    token = await client.token()
    assert token.value.get_secret_value() == kis.TOKEN
    assert route.call_count == 1
    data = json.loads(path.read_text())
    assert data["access_token"] == kis.TOKEN
    # and the repaired file is reused by the next client
    await make_client(config).token()
    assert route.call_count == 1


async def test_expired_cache_entry_is_replaced(
    make_client: Any, router: respx.MockRouter, kis: Any, tmp_path: Path
) -> None:
    """A cached token past its refresh point is not used."""
    route = router.post(kis.TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(200, json=kis.token_body("old", expired="2000-01-01 00:00:00")),
            httpx.Response(200, json=kis.token_body("new")),
        ]
    )
    config = kis.make_config(token_cache_dir=tmp_path)
    await make_client(config).token()
    token = await make_client(config).token()
    assert token.value.get_secret_value() == "new"
    assert route.call_count == 2


async def test_two_managers_on_one_cache_issue_once(
    make_client: Any, router: respx.MockRouter, kis: Any, tmp_path: Path
) -> None:
    """Two clients (separate in-memory locks, like two processes) issue once via the file lock."""
    route = router.post(kis.TOKEN_PATH).mock(side_effect=_slow_token(kis))
    config = kis.make_config(token_cache_dir=tmp_path)
    a, b = make_client(config), make_client(config)
    tokens = await asyncio.gather(a.token(), b.token(), a.token(), b.token())
    assert route.call_count == 1
    assert {t.value.get_secret_value() for t in tokens} == {kis.TOKEN}


def test_two_event_loops_in_threads_issue_once(kis: Any, tmp_path: Path) -> None:
    """Two clients on two event loops in two threads share one issuance through flock."""
    import threading

    from kis_async.rest.client import RestClient

    config = kis.make_config(token_cache_dir=tmp_path)
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    async def run() -> None:
        client = RestClient(config)
        try:
            barrier.wait(timeout=10)
            results.append((await client.token()).value.get_secret_value())
        finally:
            await client.aclose()

    def worker() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with respx.mock(base_url=kis.BASE_URL) as mock:
        route = mock.post(kis.TOKEN_PATH).mock(side_effect=_slow_token(kis))
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors
        assert results == [kis.TOKEN, kis.TOKEN]
        assert route.call_count == 1


# -- token refused by KIS ------------------------------------------------------------------


@pytest.mark.parametrize("code", ["EGW00123", "EGW00121", "EGW00122"])
@pytest.mark.parametrize("status", [500, 200, 401])
async def test_expired_token_refreshes_once_and_retries_once(
    make_client: Any, router: respx.MockRouter, kis: Any, code: str, status: int
) -> None:
    """EGW00121/122/123 (any status) → one new token and exactly one retry of the call."""
    token_route = router.post(kis.TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(200, json=kis.token_body("stale")),
            httpx.Response(200, json=kis.token_body("fresh")),
        ]
    )
    price_route = router.get(PRICE_PATH).mock(
        side_effect=[
            httpx.Response(status, json=kis.error_body(code, "기간이 만료된 token 입니다.")),
            httpx.Response(200, json=PRICE_OK),
        ]
    )
    client = make_client()
    snapshot = await client.get_price("005930")
    assert snapshot.price == 71900
    assert token_route.call_count == 2
    assert price_route.call_count == 2
    auths = [c.request.headers["authorization"] for c in price_route.calls]
    assert auths == ["Bearer stale", "Bearer fresh"]


async def test_token_refused_twice_raises_authentication_error(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """If the fresh token is refused too, AuthenticationError surfaces after one retry."""
    token_route = router.post(kis.TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(200, json=kis.token_body("a")),
            httpx.Response(200, json=kis.token_body("b")),
        ]
    )
    price_route = router.get(PRICE_PATH).respond(500, json=kis.error_body("EGW00123"))
    client = make_client()
    with pytest.raises(AuthenticationError) as info:
        await client.get_price("005930")
    assert info.value.msg_cd == "EGW00123"
    assert token_route.call_count == 2
    assert price_route.call_count == 2


async def test_expired_token_on_order_refreshes_and_resends_once(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """An order refused at the gateway for its token is sent once more with the new token."""
    router.post(kis.TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(200, json=kis.token_body("stale")),
            httpx.Response(200, json=kis.token_body("fresh")),
        ]
    )
    order_route = router.post(ORDER_PATH).mock(
        side_effect=[
            httpx.Response(500, json=kis.error_body("EGW00123")),
            httpx.Response(
                200,
                json=kis.envelope("40600000", output={"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": "1"}),
            ),
        ]
    )
    placed = await make_client().place_order(OrderRequest("005930", Side.BUY, 1, price=70000))
    assert placed.order_id == "1"
    assert order_route.call_count == 2


async def test_refused_token_removed_from_disk_cache(
    make_client: Any, router: respx.MockRouter, kis: Any, tmp_path: Path
) -> None:
    """After EGW00123 the refused token is not reloaded from disk; the new one is cached."""
    router.post(kis.TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(200, json=kis.token_body("stale")),
            httpx.Response(200, json=kis.token_body("fresh")),
        ]
    )
    router.get(PRICE_PATH).mock(
        side_effect=[
            httpx.Response(500, json=kis.error_body("EGW00123")),
            httpx.Response(200, json=PRICE_OK),
        ]
    )
    client = make_client(kis.make_config(token_cache_dir=tmp_path))
    await client.get_price("005930")
    path = client.auth.cache.path
    assert path is not None
    assert json.loads(path.read_text())["access_token"] == "fresh"


# -- EGW00133: one issuance a minute ----------------------------------------------------------

EGW00133 = {
    "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
    "error_code": "EGW00133",
}


async def test_egw00133_waits_out_the_minute_then_retries(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """EGW00133 (403) waits ~a minute (once) and then issues."""
    route = router.post(kis.TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(403, json=EGW00133),
            httpx.Response(200, json=kis.token_body()),
        ]
    )
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    previous = set_wait_scale(1.0)
    try:
        client = make_client(sleep=fake_sleep)
        token = await client.token()
    finally:
        set_wait_scale(previous)
    assert token.value.get_secret_value() == kis.TOKEN
    assert route.call_count == 2
    assert slept == [ISSUE_INTERVAL]
    assert 60 <= ISSUE_INTERVAL <= 65


async def test_egw00133_beyond_max_wait_raises(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """When waiting a minute exceeds issue_wait_max, AuthenticationError at once, no retry."""
    route = router.post(kis.TOKEN_PATH).respond(403, json=EGW00133)
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    client = make_client(sleep=fake_sleep, issue_wait_max=5.0)
    with pytest.raises(AuthenticationError) as info:
        await client.token()
    assert info.value.msg_cd == "EGW00133"
    assert info.value.status_code == 403
    assert route.call_count == 1
    assert slept == []


async def test_egw00133_twice_raises_after_one_wait(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """EGW00133 after the wait is not hammered: AuthenticationError after two calls."""
    route = router.post(kis.TOKEN_PATH).respond(403, json=EGW00133)
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    with pytest.raises(AuthenticationError):
        await make_client(sleep=fake_sleep).token()
    assert route.call_count == 2
    assert len(slept) == 1


async def test_egw00133_on_a_call_surfaces_as_authentication_error(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """A read whose token cannot be issued raises AuthenticationError (not retried again)."""
    router.post(kis.TOKEN_PATH).respond(403, json=EGW00133)
    price_route = router.get(PRICE_PATH).respond(200, json=PRICE_OK)
    with pytest.raises(AuthenticationError):
        await make_client(issue_wait_max=0.0).get_price("005930")
    assert price_route.call_count == 0


async def test_token_issue_retried_on_server_error(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """tokenP follows the read retry policy (5xx without code, connect errors)."""
    route = router.post(kis.TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(500, json={}),
            httpx.ConnectError("refused"),
            httpx.Response(200, json=kis.token_body()),
        ]
    )
    await make_client().token()
    assert route.call_count == 3


# -- revoke, approval key, hashkey ------------------------------------------------------------


async def test_revoke_token(
    make_client: Any, router: respx.MockRouter, kis: Any, tmp_path: Path
) -> None:
    """revokeP gets appkey/appsecret/token; the token is forgotten in memory and on disk."""
    token_route = router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    revoke_route = router.post("/oauth2/revokeP").respond(
        200, json={"code": 200, "message": "접근토큰 폐기에 성공하였습니다"}
    )
    client = make_client(kis.make_config(token_cache_dir=tmp_path))
    await client.token()
    path = client.auth.cache.path
    assert path is not None
    assert path.exists()
    await client.revoke_token()
    body = json.loads(revoke_route.calls.last.request.content)
    assert body == {"appkey": kis.APP_KEY, "appsecret": kis.APP_SECRET, "token": kis.TOKEN}
    assert not path.exists()
    await client.token()
    assert token_route.call_count == 2


async def test_revoke_without_token_sends_nothing(
    make_client: Any, router: respx.MockRouter
) -> None:
    """revoke_token with no token known is a no-op."""
    route = router.post("/oauth2/revokeP").respond(200, json={"code": 200})
    await make_client().revoke_token()
    assert route.call_count == 0


async def test_approval_key_single_flight_and_cached(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """Approval sends secretkey (not appsecret); 50 concurrent callers → one call; cached."""

    async def respond(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return httpx.Response(200, json={"approval_key": kis.APPROVAL})

    route = router.post("/oauth2/Approval").mock(side_effect=respond)
    client = make_client()
    keys = await asyncio.gather(*(client.approval_key() for _ in range(50)))
    assert set(keys) == {kis.APPROVAL}
    assert await client.approval_key() == kis.APPROVAL
    assert route.call_count == 1
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "grant_type": "client_credentials",
        "appkey": kis.APP_KEY,
        "secretkey": kis.APP_SECRET,
    }


async def test_hashkey_header_when_enabled(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """With use_hashkey the order body is hashed first and the HASH sent as header."""
    router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    hash_route = router.post("/uapi/hashkey").mock(
        side_effect=lambda request: httpx.Response(
            200, json={"BODY": json.loads(request.content), "HASH": "ab" * 32}
        )
    )
    order_route = router.post(ORDER_PATH).respond(
        200, json=kis.envelope("40600000", output={"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": "7"})
    )
    client = make_client(kis.make_config(use_hashkey=True))
    await client.place_order(OrderRequest("005930", Side.BUY, 3, price=70000))
    assert order_route.calls.last.request.headers["hashkey"] == "ab" * 32
    assert json.loads(hash_route.calls.last.request.content) == json.loads(
        order_route.calls.last.request.content
    )


async def test_no_hashkey_by_default(client: Any, router: respx.MockRouter, kis: Any) -> None:
    """Without use_hashkey no hashkey call is made and no header sent."""
    hash_route = router.post("/uapi/hashkey").respond(200, json={"HASH": "x"})
    order_route = router.post(ORDER_PATH).respond(
        200, json=kis.envelope("40600000", output={"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": "7"})
    )
    await client.place_order(OrderRequest("005930", Side.BUY, 3, price=70000))
    assert hash_route.call_count == 0
    assert "hashkey" not in order_route.calls.last.request.headers


async def test_revoke_transport_failure_keeps_token(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """If revokeP never answers, the token is kept (it is still valid at KIS)."""
    from kis_async.errors import BrokerConnectionError

    token_route = router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    router.post("/oauth2/revokeP").mock(side_effect=httpx.ConnectError("down"))
    client = make_client(kis.make_config(max_retries=0))
    await client.token()
    with pytest.raises(BrokerConnectionError):
        await client.revoke_token()
    await client.token()
    assert token_route.call_count == 1


async def test_unusable_cache_dir_is_not_fatal(
    make_client: Any, router: respx.MockRouter, kis: Any, tmp_path: Path
) -> None:
    """A cache dir that cannot be created (a file is in the way) only logs a warning."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    route = router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    client = make_client(kis.make_config(token_cache_dir=blocker / "sub"))
    assert (await client.token()).value.get_secret_value() == kis.TOKEN
    assert route.call_count == 1


async def test_existing_cache_dir_tightened_to_0700(
    make_client: Any, router: respx.MockRouter, kis: Any, tmp_path: Path
) -> None:
    """An existing, wider cache dir is set to 0700 before the token is written."""
    cache_dir = tmp_path / "wide"
    cache_dir.mkdir(mode=0o755)
    os.chmod(cache_dir, 0o755)  # noqa: S103 - deliberately too wide
    router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    await make_client(kis.make_config(token_cache_dir=cache_dir)).token()
    assert stat.S_IMODE(os.stat(cache_dir).st_mode) == 0o700


async def test_concurrent_expired_token_one_reissue(
    make_client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """20 concurrent reads refused with EGW00123 share one new issuance; each retries once."""
    token_route = router.post(kis.TOKEN_PATH).mock(
        side_effect=_slow_token(kis, ["stale", "fresh", "extra"])
    )

    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # all 20 are in flight with the stale token
        if request.headers["authorization"] == "Bearer stale":
            return httpx.Response(500, json=kis.error_body("EGW00123"))
        return httpx.Response(200, json=PRICE_OK)

    price_route = router.get(PRICE_PATH).mock(side_effect=answer)
    client = make_client()
    await client.token()
    await asyncio.gather(*(client.get_price("005930") for _ in range(20)))
    assert token_route.call_count == 2
    assert price_route.call_count == 40
