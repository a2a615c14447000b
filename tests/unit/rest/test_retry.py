"""Retry policy: reads retry on transient failures; orders are never re-sent once they may
have reached KIS."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx

from kis_async.errors import (
    BrokerConnectionError,
    BrokerTimeoutError,
    OrderRejectedError,
    RateLimitError,
    ServerError,
)
from kis_async.models import OrderRequest, Side
from kis_async.rest import retry
from kis_async.rest.retry import (
    call_with_retry,
    get_wait_scale,
    is_retryable_order_error,
    is_retryable_read_error,
    set_wait_scale,
)

PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
ORDER = "/uapi/domestic-stock/v1/trading/order-cash"
RVSE = "/uapi/domestic-stock/v1/trading/order-rvsecncl"
PRICE_OK = {"rt_cd": "0", "output": {"stck_shrn_iscd": "005930", "stck_prpr": "100"}}
ORDER_OK = {"rt_cd": "0", "output": {"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": "0000000001"}}
RATE = {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당 거래건수를 초과하였습니다."}


def _order() -> OrderRequest:
    return OrderRequest("005930", Side.BUY, 1, price=70000)


# -- orders ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("no answer"),
        httpx.WriteTimeout("stuck writing"),
        httpx.RemoteProtocolError("peer closed"),
        httpx.ReadError("reset"),
    ],
)
async def test_order_not_resent_after_it_may_have_been_sent(
    client: Any, router: respx.MockRouter, failure: Exception
) -> None:
    """After a read timeout/dropped connection the order POST is made exactly once."""
    route = router.post(ORDER).mock(side_effect=[failure, httpx.Response(200, json=ORDER_OK)])
    with pytest.raises(BrokerTimeoutError) as info:
        await client.place_order(_order())
    assert info.value.request_sent is True
    assert route.call_count == 1


async def test_order_not_resent_after_5xx_without_code(
    client: Any, router: respx.MockRouter
) -> None:
    """A 5xx without a business code may have booked the order: ServerError, one POST."""
    route = router.post(ORDER).mock(
        side_effect=[httpx.Response(500, json={}), httpx.Response(200, json=ORDER_OK)]
    )
    with pytest.raises(ServerError):
        await client.place_order(_order())
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("no route"),
        httpx.PoolTimeout("pool exhausted"),
        httpx.Response(500, json=RATE),
        httpx.Response(200, json=RATE),
        httpx.Response(500, json={"rt_cd": "1", "msg_cd": "EGW00215", "msg1": "원장"}),
    ],
)
async def test_order_retried_when_it_never_reached_kis(
    client: Any, router: respx.MockRouter, failure: Any
) -> None:
    """Connect-phase failures and explicit rate-limit refusals are retried."""
    route = router.post(ORDER).mock(side_effect=[failure, httpx.Response(200, json=ORDER_OK)])
    placed = await client.place_order(_order())
    assert placed.order_id == "0000000001"
    assert route.call_count == 2


async def test_order_connect_errors_bounded(
    make_client: Any, router: respx.MockRouter, kis: Any, token_route: Any
) -> None:
    """Connect failures stop after max_retries + 1 attempts with BrokerConnectionError."""
    route = router.post(ORDER).mock(side_effect=httpx.ConnectError("refused"))
    client = make_client(kis.make_config(max_retries=2))
    with pytest.raises(BrokerConnectionError) as info:
        await client.place_order(_order())
    assert not isinstance(info.value, BrokerTimeoutError)
    assert route.call_count == 3


async def test_order_rate_limit_spent_raises(
    make_client: Any, router: respx.MockRouter, kis: Any, token_route: Any
) -> None:
    """EGW00201 on every attempt ends in RateLimitError after the bound."""
    route = router.post(ORDER).respond(500, json=RATE)
    client = make_client(kis.make_config(max_retries=1))
    with pytest.raises(RateLimitError):
        await client.place_order(_order())
    assert route.call_count == 2


async def test_order_business_rejection_not_retried(
    client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """A business rejection is final: one POST."""
    route = router.post(ORDER).respond(200, json=kis.error_body("APBK0918"))
    with pytest.raises(OrderRejectedError):
        await client.place_order(_order())
    assert route.call_count == 1


async def test_cancel_not_resent_after_read_timeout(client: Any, router: respx.MockRouter) -> None:
    """order-rvsecncl follows the order policy too."""
    client.remember_order("1", "00950")
    route = router.post(RVSE).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(BrokerTimeoutError):
        await client.cancel_order("1")
    assert route.call_count == 1


# -- reads ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
        httpx.Response(500, json={}),
        httpx.Response(503, text="busy"),
        httpx.Response(500, json=RATE),
        httpx.Response(500, json={"rt_cd": "1", "msg_cd": "EGW00215", "msg1": "원장"}),
    ],
)
async def test_reads_retry_transient_failures(
    client: Any, router: respx.MockRouter, failure: Any
) -> None:
    """Reads retry connect errors, timeouts, 5xx without code, EGW00201/EGW00215."""
    route = router.get(PRICE).mock(
        side_effect=[failure, failure, httpx.Response(200, json=PRICE_OK)]
    )
    snap = await client.get_price("005930")
    assert snap.price == 100
    assert route.call_count == 3


async def test_reads_retry_bounded(
    make_client: Any, router: respx.MockRouter, kis: Any, token_route: Any
) -> None:
    """Reads stop after max_retries + 1 attempts and raise the last error."""
    route = router.get(PRICE).mock(side_effect=httpx.ReadTimeout("slow"))
    client = make_client(kis.make_config(max_retries=4))
    with pytest.raises(BrokerTimeoutError):
        await client.get_price("005930")
    assert route.call_count == 5


async def test_reads_do_not_retry_business_errors(
    client: Any, router: respx.MockRouter, kis: Any
) -> None:
    """A business error on a read is final."""
    from kis_async.errors import BrokerAPIError

    route = router.get(PRICE).respond(500, json=kis.error_body("OPSQ0002"))
    with pytest.raises(BrokerAPIError):
        await client.get_price("005930")
    assert route.call_count == 1


# -- policy pieces ----------------------------------------------------------------------------


def test_predicates() -> None:
    """The explicit predicates of both policies."""
    sent = BrokerTimeoutError("x", request_sent=True)
    unsent = BrokerTimeoutError("x", request_sent=False)
    conn = BrokerConnectionError("x")
    rate = RateLimitError(msg_cd="EGW00201")
    server = ServerError(status_code=500)
    rejected = OrderRejectedError(msg_cd="APBK0918")
    assert [is_retryable_order_error(e) for e in (sent, unsent, conn, rate, server, rejected)] == [
        False,
        True,
        True,
        True,
        False,
        False,
    ]
    assert [is_retryable_read_error(e) for e in (sent, unsent, conn, rate, server, rejected)] == [
        True,
        True,
        True,
        True,
        True,
        False,
    ]
    assert not is_retryable_read_error(ValueError("x"))


def test_set_wait_scale_returns_previous() -> None:
    """set_wait_scale returns the previous scale and rejects negatives."""
    previous = set_wait_scale(0.5)
    try:
        assert get_wait_scale() == 0.5
        assert set_wait_scale(0.25) == 0.5
        with pytest.raises(ValueError, match=">= 0"):
            set_wait_scale(-1)
    finally:
        set_wait_scale(previous)


def test_backoff_grows_and_is_scaled() -> None:
    """Waits grow exponentially, are jittered within bounds and scale to zero."""
    from unittest.mock import MagicMock

    wait = retry._ScaledJitterWait()
    state = MagicMock()
    state.outcome.exception.return_value = ServerError(status_code=500)
    previous = set_wait_scale(1.0)
    try:
        waits = []
        for attempt in (1, 2, 3, 4):
            state.attempt_number = attempt
            waits.append(wait(state))
        ceilings = [0.2, 0.4, 0.8, 1.6]
        for value, ceiling in zip(waits, ceilings, strict=True):
            assert ceiling / 2 <= value <= ceiling
        state.outcome.exception.return_value = RateLimitError(msg_cd="EGW00201")
        state.attempt_number = 1
        assert wait(state) >= 0.25
        state.attempt_number = 30
        assert wait(state) <= 5.0
        set_wait_scale(0.0)
        assert wait(state) == 0.0
    finally:
        set_wait_scale(previous)


async def test_total_time_bound() -> None:
    """Retrying stops once the total time bound has passed."""
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise ServerError(status_code=500)

    with pytest.raises(ServerError):
        await call_with_retry(failing, order=False, max_retries=1000, total_time=0.0)
    assert calls == 1


async def test_time_queued_in_the_rate_limiter_does_not_use_up_the_retry_budget() -> None:
    """A call that waited long in the limiter queue still gets its retries; without the queue
    clock the same elapsed time would end retrying after the first attempt."""
    from kis_async.errors import RateLimitError as _RateLimited
    from kis_async.rest.retry import call_with_retry as _call

    def flaky() -> Callable[[], Awaitable[str]]:
        calls = {"n": 0}

        async def attempt() -> str:
            calls["n"] += 1
            await asyncio.sleep(0.03)  # time passes, as it would while queued
            if calls["n"] < 3:
                raise _RateLimited(
                    status_code=500, rt_cd="1", msg_cd="EGW00201", msg="x", tr_id="T"
                )
            return "ok"

        return attempt

    assert (
        await _call(flaky(), order=False, max_retries=5, total_time=0.02, queued=lambda: 60.0)
        == "ok"
    )
    with pytest.raises(_RateLimited):
        await _call(flaky(), order=False, max_retries=5, total_time=0.02)


async def test_first_attempt_time_counts_against_the_total_time() -> None:
    """The total-time clock starts before the first attempt (awaited before tenacity is set
    up): a first attempt that alone outlasts the budget is not retried."""
    calls = 0

    async def slow_failure() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise ServerError(status_code=502)

    with pytest.raises(ServerError):
        await call_with_retry(slow_failure, order=False, max_retries=5, total_time=0.03)
    assert calls == 1


async def test_retries_after_a_failed_first_attempt_keep_attempt_numbers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After the directly awaited first attempt fails, retrying continues at attempt 2: the
    retry log names attempts 1 and 2, and the third call's result is returned."""
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RateLimitError(msg_cd="EGW00201", msg="초당 거래건수를 초과하였습니다.\n")
        return "ok"

    with caplog.at_level("INFO", logger="kis_async.rest"):
        assert await call_with_retry(flaky, order=True, max_retries=2) == "ok"
    assert calls == 3
    attempts = [r.getMessage() for r in caplog.records if "retrying after" in r.getMessage()]
    assert len(attempts) == 2
    assert "attempt 1," in attempts[0]
    assert "attempt 2," in attempts[1]


async def test_error_that_is_not_retried_is_raised_as_is() -> None:
    """A business rejection of the first attempt propagates as the same exception object,
    without a second attempt."""
    rejection = OrderRejectedError(msg_cd="APBK0919", msg="잔고 부족", status_code=200)
    calls = 0

    async def rejected() -> None:
        nonlocal calls
        calls += 1
        raise rejection

    with pytest.raises(OrderRejectedError) as caught:
        await call_with_retry(rejected, order=True, max_retries=3)
    assert caught.value is rejection
    assert calls == 1
