"""Secrets never reach logs (at DEBUG) or reprs of config, token, errors and clients."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from kis_async.errors import BrokerError
from kis_async.models import OrderRequest, Side

V1 = "/uapi/domestic-stock/v1"


def _assert_clean(text: str, kis: Any) -> None:
    for secret in (kis.APP_SECRET, kis.TOKEN, kis.APPROVAL, kis.ACCOUNT, kis.ACCOUNT[:8]):
        assert secret not in text
    # the app key is a credential too; only its first characters may appear
    assert kis.APP_KEY not in text


async def test_logs_are_free_of_secrets(
    make_client: Any,
    router: respx.MockRouter,
    kis: Any,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """A session of successes and failures at DEBUG logs no secret; approval key masked."""
    caplog.set_level("DEBUG")
    router.post(kis.TOKEN_PATH).mock(
        side_effect=[
            httpx.Response(200, json=kis.token_body()),
            httpx.Response(200, json=kis.token_body(kis.TOKEN + "2")),
        ]
    )
    router.post("/oauth2/Approval").respond(200, json={"approval_key": kis.APPROVAL})
    router.post("/oauth2/revokeP").respond(200, json={"code": 200, "message": "ok"})
    router.get(f"{V1}/quotations/inquire-price").mock(
        side_effect=[
            httpx.Response(500, json=kis.error_body("EGW00123")),
            httpx.Response(500, json=kis.error_body("EGW00201")),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json=kis.envelope(output={"stck_prpr": "1"})),
        ]
    )
    router.post(f"{V1}/trading/order-cash").mock(
        side_effect=[
            httpx.Response(
                200,
                json=kis.envelope(
                    "40600000", output={"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": "0000000009"}
                ),
            ),
            httpx.Response(200, json=kis.error_body("APBK0918")),
        ]
    )
    router.post(f"{V1}/trading/order-rvsecncl").respond(
        200, json=kis.error_body("40330000", "정정/취소할 수량이 없습니다.")
    )
    client = make_client(kis.make_config(token_cache_dir=tmp_path))
    await client.get_price("005930")
    await client.approval_key()
    placed = await client.place_order(OrderRequest("005930", Side.BUY, 1, price=70000))
    with pytest.raises(BrokerError) as info:
        await client.place_order(OrderRequest("005930", Side.BUY, 1, price=70000))
    assert await client.cancel_order(placed.order_id) is False
    await client.revoke_token()
    _assert_clean(caplog.text, kis)
    assert (kis.TOKEN + "2") not in caplog.text
    assert kis.APPROVAL[:8] + "..." in caplog.text
    assert "placing order" in caplog.text
    assert "msg_cd=" in caplog.text
    _assert_clean(str(info.value) + repr(info.value), kis)


async def test_reprs_are_free_of_secrets(client: Any, kis: Any) -> None:
    """Config, token, client and errors show no secret, also when pickled."""
    token = await client.token()
    texts = [repr(client.config), str(client.config), repr(token), str(token), repr(client)]
    texts.append(str(token.model_dump()))
    for text in texts:
        _assert_clean(text, kis)
    assert token.value.get_secret_value() == kis.TOKEN


async def test_transport_errors_are_free_of_secrets(
    client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """Translated httpx errors do not carry request headers in their message."""
    router.get(f"{V1}/quotations/inquire-price").mock(side_effect=httpx.ConnectError("boom"))
    with pytest.raises(BrokerError) as info:
        await client.get_price("005930")
    err = info.value
    _assert_clean(str(err) + repr(err) + str(pickle.loads(pickle.dumps(err))), kis)


async def test_account_queries_do_not_log_the_account(
    client: Any, router: respx.MockRouter, kis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Account queries carry CANO in the query string; no log line (ours or httpx's) shows it."""
    caplog.set_level("DEBUG")
    router.get(f"{V1}/trading/inquire-balance").respond(
        200, json=kis.envelope(output1=[], output2=[{"dnca_tot_amt": "5"}])
    )
    await client.get_cash()
    _assert_clean(caplog.text, kis)
