"""Bad input of every kind is refused with a typed error before a single request is made."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from kis_async import (
    InvalidOrderError,
    KISBroker,
    KISConfig,
    Mode,
    OrderRequest,
    OrderType,
)

pytestmark = pytest.mark.reliability

GOOD: dict[str, Any] = {
    "app_key": "PSbadinputs0000000000000000000000000",
    "app_secret": "secret-" + "s" * 40,
    "account_id": "50123456-01",
    "rest_url": "http://127.0.0.1:9",
    "ws_url": "ws://127.0.0.1:9/tryitout",
    "token_cache_dir": None,
}


def _order(**overrides: Any) -> Callable[[], object]:
    args: dict[str, Any] = {"symbol": "005930", "side": "buy", "qty": 1, "price": 70_000}
    args.update(overrides)
    return lambda: OrderRequest(**args)


def _config(**overrides: Any) -> Callable[[], object]:
    return lambda: KISConfig(**{**GOOD, **overrides})


# (label, thunk, expected error type). Every expected type is a ValueError subclass.
SYNC_CASES: list[tuple[str, Callable[[], object], type[Exception]]] = [
    ("order: 4-digit symbol", _order(symbol="5930"), InvalidOrderError),
    ("order: lowercase symbol", _order(symbol="abcdef"), InvalidOrderError),
    ("order: int symbol", _order(symbol=5930), InvalidOrderError),
    ("order: empty symbol", _order(symbol=""), InvalidOrderError),
    ("order: side 'hold'", _order(side="hold"), InvalidOrderError),
    ("order: qty 0", _order(qty=0), InvalidOrderError),
    ("order: qty -1", _order(qty=-1), InvalidOrderError),
    ("order: qty 1.5", _order(qty=1.5), InvalidOrderError),
    ("order: qty True", _order(qty=True), InvalidOrderError),
    ("order: qty 10**9", _order(qty=10**9), InvalidOrderError),
    ("order: limit without price", _order(price=None), InvalidOrderError),
    ("order: off-tick price 70,050", _order(price=70_050), InvalidOrderError),
    ("order: negative price", _order(price=-100), InvalidOrderError),
    ("order: price 'abc'", _order(price="abc"), InvalidOrderError),
    ("order: price 70000.5", _order(price=70_000.5), InvalidOrderError),
    ("order: price NaN", _order(price=Decimal("NaN")), InvalidOrderError),
    (
        "order: market with a price",
        _order(order_type=OrderType.MARKET, price=70_000),
        InvalidOrderError,
    ),
    ("order: unknown order_type '99'", _order(order_type="99"), InvalidOrderError),
    ("order: empty idempotency key", _order(idempotency_key=""), InvalidOrderError),
    ("order: 200-char idempotency key", _order(idempotency_key="k" * 200), InvalidOrderError),
    ("config: empty app_key", _config(app_key=""), ValueError),
    ("config: empty app_secret", _config(app_secret=" "), ValueError),
    ("config: 3-digit account", _config(account_id="123"), ValueError),
    ("config: mode 'demo'", _config(mode="demo"), ValueError),
    ("config: ftp rest_url", _config(rest_url="ftp://127.0.0.1"), ValueError),
    ("config: http ws_url", _config(ws_url="http://127.0.0.1"), ValueError),
    ("config: requests_per_second 0", _config(requests_per_second=0), ValueError),
    ("config: timeout -1", _config(timeout=-1), ValueError),
    ("config: customer_type 'X'", _config(customer_type="X"), ValueError),
    ("config: max_retries -1", _config(max_retries=-1), ValueError),
]


def _broker_cases(
    broker: KISBroker,
) -> list[tuple[str, Callable[[], Awaitable[object] | object], type[Exception]]]:
    return [
        ("broker: get_price('5930')", lambda: broker.get_price("5930"), InvalidOrderError),
        ("broker: get_price(None)", lambda: broker.get_price(None), InvalidOrderError),  # type: ignore[arg-type]
        ("broker: get_orderbook('')", lambda: broker.get_orderbook(""), InvalidOrderError),
        (
            "broker: get_buying_power('XYZ')",
            lambda: broker.get_buying_power("XYZ"),
            InvalidOrderError,
        ),
        ("broker: cancel_order('abc')", lambda: broker.cancel_order("abc"), InvalidOrderError),
        (
            "broker: cancel_order('12345678901')",
            lambda: broker.cancel_order("12345678901"),
            InvalidOrderError,
        ),
        (
            "broker: modify_order('1a')",
            lambda: broker.modify_order("1a", qty=1),
            InvalidOrderError,
        ),
        (
            "broker: place_order(dict)",
            lambda: broker.place_order({"symbol": "005930"}),  # type: ignore[arg-type]
            InvalidOrderError,
        ),
        ("broker: executions() without hts_id", broker.executions, ValueError),
    ]


async def _call(thunk: Callable[[], Awaitable[object] | object]) -> None:
    outcome = thunk()
    if isinstance(outcome, Awaitable):
        await outcome


async def test_bad_inputs_raise_typed_errors_and_send_nothing() -> None:
    """Thirty-odd bad orders, configs, symbols and ids: typed errors, zero HTTP requests."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(500, json={"rt_cd": "1", "msg_cd": "TEST", "msg1": "unexpected"})

    results: list[tuple[str, str]] = []
    for label, thunk, expected in SYNC_CASES:
        with pytest.raises(expected) as info:
            thunk()
        results.append((label, type(info.value).__name__))

    config = KISConfig(**GOOD, mode=Mode.PAPER)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        KISBroker(config, http_client=http) as broker,
    ):
        for label, thunk, expected in _broker_cases(broker):
            with pytest.raises(expected) as info:
                await _call(thunk)
            results.append((label, type(info.value).__name__))
        status = broker.stream_status

    width = max(len(label) for label, _ in results)
    print(f"\n{len(results)} bad inputs -> typed errors; HTTP requests sent: {len(requests)}")
    for label, name in results:
        print(f"  {label.ljust(width)}  {name}")
    assert len(results) >= 20
    assert requests == []
    assert not status.connected
    assert status.reconnects == 0
