"""Bad input of every kind is refused with a typed error before a single request is made.

One table per entry point: ``OrderRequest``, ``KISConfig``, ``KISConfig.from_env`` (the
environment and a ``.env`` file), every ``KISBroker`` method that takes user input, and the
``kis-async`` CLI. respx intercepts every HTTP request the whole time; the test asserts that
none was made, that no WebSocket was opened, and that no error message repeats a secret or
the offending value.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from kis_async import InvalidOrderError, KISBroker, KISConfig, Mode, OrderRequest, OrderType
from kis_async.cli import EXIT_USAGE, main
from kis_async.mock import MockBroker
from kis_async.models import KST
from kis_async.orders import OrderService, PlacementOptions, PreTradeLimits
from kis_async.stream import StreamOptions

pytestmark = pytest.mark.reliability

SECRET = "secret-" + "s" * 40
GOOD: dict[str, Any] = {
    "app_key": "PSbadinputs0000000000000000000000000",
    "app_secret": SECRET,
    "account_id": "50123456-01",
    "rest_url": "http://127.0.0.1:9",
    "ws_url": "ws://127.0.0.1:9/tryitout",
    "token_cache_dir": None,
}
GOOD_ENV: dict[str, str] = {
    "KIS_APP_KEY": GOOD["app_key"],
    "KIS_APP_SECRET": SECRET,
    "KIS_ACCOUNT_ID": "5012345601",
    "KIS_REST_URL": GOOD["rest_url"],
    "KIS_WS_URL": GOOD["ws_url"],
    "KIS_TOKEN_CACHE_DIR": "none",
}

# Look-alike digits: Arabic-Indic and full-width forms pass str.isdigit() and int().
ARABIC_123 = "\u0661\u0662\u0663"
FULLWIDTH_0123 = "\uff10\uff11\uff12\uff13"
FULLWIDTH_005930 = "\uff10\uff10\uff15\uff19\uff13\uff10"
ARABIC_005930 = "\u0660\u0660\u0665\u0669\u0663\u0660"

Thunk = Callable[[], object]
Case = tuple[str, Thunk, type[Exception], str | None]


def _order(**overrides: Any) -> Thunk:
    args: dict[str, Any] = {"symbol": "005930", "side": "buy", "qty": 1, "price": 70_000}
    args.update(overrides)
    return lambda: OrderRequest(**args)


def _config(**overrides: Any) -> Thunk:
    return lambda: KISConfig(**{**GOOD, **overrides})


def _from_env(**changes: str | None) -> Thunk:
    env = {**GOOD_ENV}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return lambda: KISConfig.from_env(env)


# (label, thunk, expected error, the bad value that must not be echoed or None).
ORDER_CASES: list[Case] = [
    ("symbol with a trailing newline", _order(symbol="005930\n"), InvalidOrderError, None),
    ("symbol with a trailing CR", _order(symbol="005930\r"), InvalidOrderError, None),
    ("symbol with a leading space", _order(symbol=" 005930"), InvalidOrderError, None),
    ("symbol with a trailing space", _order(symbol="005930 "), InvalidOrderError, None),
    ("full-width digit symbol", _order(symbol=FULLWIDTH_005930), InvalidOrderError, None),
    ("Arabic-Indic digit symbol", _order(symbol=ARABIC_005930), InvalidOrderError, None),
    ("symbol with '&'", _order(symbol="0059&0"), InvalidOrderError, None),
    ("symbol with '='", _order(symbol="0059=0"), InvalidOrderError, None),
    ("symbol with a NUL", _order(symbol="00593\x00"), InvalidOrderError, None),
    ("4-digit symbol", _order(symbol="5930"), InvalidOrderError, None),
    ("lowercase symbol", _order(symbol="abcdef"), InvalidOrderError, None),
    ("int symbol", _order(symbol=5930), InvalidOrderError, None),
    ("empty symbol", _order(symbol=""), InvalidOrderError, None),
    ("side 'hold'", _order(side="hold"), InvalidOrderError, None),
    ("qty 0", _order(qty=0), InvalidOrderError, None),
    ("qty -1", _order(qty=-1), InvalidOrderError, None),
    ("qty 1.5", _order(qty=1.5), InvalidOrderError, None),
    ("qty '1'", _order(qty="1"), InvalidOrderError, None),
    ("qty True", _order(qty=True), InvalidOrderError, None),
    ("qty 10**9", _order(qty=10**9), InvalidOrderError, None),
    ("qty 10**30", _order(qty=10**30), InvalidOrderError, None),
    ("limit without price", _order(price=None), InvalidOrderError, None),
    ("off-tick price 70,050", _order(price=70_050), InvalidOrderError, None),
    ("price 0", _order(price=0), InvalidOrderError, None),
    ("negative price", _order(price=-100), InvalidOrderError, None),
    ("price 10**30", _order(price=10**30), InvalidOrderError, None),
    ("price 1,000,000,000 (above KRX's max)", _order(price=10**9), InvalidOrderError, None),
    ("price float 1e30", _order(price=1e30), InvalidOrderError, None),
    ("price 'abc'", _order(price="abc"), InvalidOrderError, None),
    ("price '70000\\n'", _order(price="70000\n"), InvalidOrderError, None),
    (
        "price full-width '７００００'",
        _order(price="\uff17\uff10\uff10\uff10\uff10"),
        InvalidOrderError,
        None,
    ),
    ("price '1e5'", _order(price="1e5"), InvalidOrderError, None),
    ("price 70000.5", _order(price=70_000.5), InvalidOrderError, None),
    ("price NaN (Decimal)", _order(price=Decimal("NaN")), InvalidOrderError, None),
    ("price NaN (float)", _order(price=math.nan), InvalidOrderError, None),
    ("price inf (float)", _order(price=math.inf), InvalidOrderError, None),
    ("price Infinity (Decimal)", _order(price=Decimal("Infinity")), InvalidOrderError, None),
    (
        "market with a price",
        _order(order_type=OrderType.MARKET, price=70_000),
        InvalidOrderError,
        None,
    ),
    ("unknown order_type '99'", _order(order_type="99"), InvalidOrderError, None),
    ("order_type '00\\n'", _order(order_type="00\n"), InvalidOrderError, None),
    ("empty idempotency key", _order(idempotency_key=""), InvalidOrderError, None),
    ("200-char idempotency key", _order(idempotency_key="k" * 200), InvalidOrderError, None),
    ("idempotency key with a newline", _order(idempotency_key="k\n"), InvalidOrderError, None),
]

CONFIG_CASES: list[Case] = [
    ("empty app_key", _config(app_key=""), ValueError, None),
    ("app_key with a space", _config(app_key="PS key 123"), ValueError, "PS key 123"),
    ("app_key with CR/LF", _config(app_key="PSkey\r\nX-Evil: 1"), ValueError, "X-Evil"),
    ("blank app_secret", _config(app_secret=" "), ValueError, None),
    ("app_secret with a newline", _config(app_secret=SECRET + "\n"), ValueError, None),
    ("3-digit account", _config(account_id="123"), ValueError, None),
    ("account with a trailing newline", _config(account_id="5012345601\n"), ValueError, "50123456"),
    ("full-width digit account", _config(account_id="\uff15" * 10), ValueError, "\uff15" * 10),
    ("account with a space", _config(account_id="50123456 01"), ValueError, "50123456"),
    ("account with '&'", _config(account_id="50123456&01"), ValueError, "50123456"),
    ("hts_id with a space", _config(hts_id="my hts"), ValueError, "my hts"),
    ("hts_id with a newline", _config(hts_id="myhts\n"), ValueError, None),
    ("hts_id with '&' and '='", _config(hts_id="id&tr_key=x"), ValueError, "tr_key=x"),
    ("non-ASCII hts_id", _config(hts_id="아이디"), ValueError, "아이디"),
    ("mode 'demo'", _config(mode="demo"), ValueError, None),
    ("mode 'live\\n'", _config(mode="live\n"), ValueError, None),
    ("ftp rest_url", _config(rest_url="ftp://127.0.0.1"), ValueError, None),
    ("http ws_url", _config(ws_url="http://127.0.0.1"), ValueError, None),
    ("rest_url with CR/LF", _config(rest_url="http://127.0.0.1:9\r\nX: y"), ValueError, "X: y"),
    ("rest_url with a space", _config(rest_url="http://127.0.0.1:9/a b"), ValueError, None),
    ("rest_url port 99999", _config(rest_url="http://127.0.0.1:99999"), ValueError, "99999"),
    ("rest_url port 0", _config(rest_url="http://127.0.0.1:0"), ValueError, None),
    ("rest_url without a host", _config(rest_url="http://"), ValueError, None),
    ("ws_url port 99999", _config(ws_url="ws://127.0.0.1:99999/tryitout"), ValueError, "99999"),
    ("ws_url with a tab", _config(ws_url="ws://127.0.0.1:9/\ttryitout"), ValueError, None),
    ("timeout NaN", _config(timeout=math.nan), ValueError, None),
    ("timeout inf", _config(timeout=math.inf), ValueError, None),
    ("timeout -1", _config(timeout=-1), ValueError, None),
    ("timeout 0", _config(timeout=0), ValueError, None),
    ("timeout '5'", _config(timeout="5"), ValueError, None),
    ("timeout True", _config(timeout=True), ValueError, None),
    ("token_refresh_margin NaN", _config(token_refresh_margin=math.nan), ValueError, None),
    ("token_refresh_margin -1", _config(token_refresh_margin=-1), ValueError, None),
    ("token_refresh_margin inf", _config(token_refresh_margin=math.inf), ValueError, None),
    ("requests_per_second inf", _config(requests_per_second=math.inf), ValueError, None),
    ("requests_per_second NaN", _config(requests_per_second=math.nan), ValueError, None),
    ("requests_per_second 0", _config(requests_per_second=0), ValueError, None),
    ("requests_per_second 1e12", _config(requests_per_second=1e12), ValueError, None),
    ("max_retries -1", _config(max_retries=-1), ValueError, None),
    ("max_retries 1.5", _config(max_retries=1.5), ValueError, None),
    ("customer_type 'X'", _config(customer_type="X"), ValueError, None),
    ("use_hashkey 'yes'", _config(use_hashkey="yes"), ValueError, None),
    ("token_cache_dir with a NUL", _config(token_cache_dir="cache\x00dir"), ValueError, None),
]

OPTION_CASES: list[Case] = [
    (
        "StreamOptions ack_timeout NaN",
        lambda: StreamOptions(ack_timeout=math.nan),
        ValueError,
        None,
    ),
    (
        "StreamOptions liveness_timeout inf",
        lambda: StreamOptions(liveness_timeout=math.inf),
        ValueError,
        None,
    ),
    (
        "StreamOptions healthy_after NaN",
        lambda: StreamOptions(healthy_after=math.nan),
        ValueError,
        None,
    ),
    (
        "PlacementOptions reconcile_interval NaN",
        lambda: PlacementOptions(reconcile_interval=math.nan),
        ValueError,
        None,
    ),
    (
        "PreTradeLimits max_notional NaN",
        lambda: PreTradeLimits(max_notional_per_order=Decimal("NaN")),
        ValueError,
        None,
    ),
]

FROM_ENV_CASES: list[Case] = [
    ("KIS_APP_KEY missing", _from_env(KIS_APP_KEY=None), ValueError, None),
    ("KIS_TIMEOUT=nan", _from_env(KIS_TIMEOUT="nan"), ValueError, None),
    ("KIS_TIMEOUT=inf", _from_env(KIS_TIMEOUT="inf"), ValueError, None),
    ("KIS_TIMEOUT=abc", _from_env(KIS_TIMEOUT="abcdef"), ValueError, "abcdef"),
    (
        "KIS_ACCOUNT_ID with a newline",
        _from_env(KIS_ACCOUNT_ID="5012345601\n"),
        ValueError,
        "50123456",
    ),
    (
        "KIS_ACCOUNT_ID Arabic-Indic",
        _from_env(KIS_ACCOUNT_ID="\u0665" * 10),
        ValueError,
        "\u0665" * 10,
    ),
    (
        "KIS_REST_URL with CR/LF",
        _from_env(KIS_REST_URL="http://127.0.0.1:9\r\nHost: x"),
        ValueError,
        "Host: x",
    ),
    ("KIS_WS_URL port 99999", _from_env(KIS_WS_URL="ws://127.0.0.1:99999"), ValueError, "99999"),
    ("KIS_REQUESTS_PER_SECOND=inf", _from_env(KIS_REQUESTS_PER_SECOND="inf"), ValueError, None),
    ("KIS_TOKEN_REFRESH_MARGIN=nan", _from_env(KIS_TOKEN_REFRESH_MARGIN="nan"), ValueError, None),
    ("KIS_MAX_RETRIES=1.5", _from_env(KIS_MAX_RETRIES="1.5"), ValueError, None),
    ("KIS_USE_HASHKEY=maybe", _from_env(KIS_USE_HASHKEY="maybe"), ValueError, "maybe"),
    ("KIS_MODE=demo", _from_env(KIS_MODE="demo"), ValueError, None),
    ("KIS_HTS_ID with '='", _from_env(KIS_HTS_ID="a=b&c"), ValueError, "a=b&c"),
]


def _dotenv_case(tmp_path: Path) -> Case:
    env_file = tmp_path / "bad.env"
    env_file.write_text(
        "\n".join(f"{k}={v}" for k, v in GOOD_ENV.items()) + "\nKIS_TIMEOUT=nan\n",
        encoding="utf-8",
    )
    return (
        "KIS_TIMEOUT=nan in a .env file",
        lambda: KISConfig.from_env({}, env_file=env_file),
        ValueError,
        None,
    )


def _broker_cases(broker: KISBroker) -> list[tuple[str, Callable[[], Any], type[Exception]]]:
    today = datetime.now(KST).date()

    async def quote_callback(_quote: object) -> None:
        raise AssertionError("never called")

    return [
        ("get_price('005930\\n')", lambda: broker.get_price("005930\n"), InvalidOrderError),
        ("get_price(full-width)", lambda: broker.get_price(FULLWIDTH_005930), InvalidOrderError),
        ("get_price(Arabic-Indic)", lambda: broker.get_price(ARABIC_005930), InvalidOrderError),
        ("get_price('0059&0')", lambda: broker.get_price("0059&0"), InvalidOrderError),
        ("get_price('5930')", lambda: broker.get_price("5930"), InvalidOrderError),
        ("get_price(None)", lambda: broker.get_price(None), InvalidOrderError),  # type: ignore[arg-type]
        ("get_orderbook(' 005930')", lambda: broker.get_orderbook(" 005930"), InvalidOrderError),
        ("get_orderbook('')", lambda: broker.get_orderbook(""), InvalidOrderError),
        ("get_buying_power('XYZ')", lambda: broker.get_buying_power("XYZ"), InvalidOrderError),
        (
            "get_buying_power(price=10**30)",
            lambda: broker.get_buying_power("005930", 10**30),
            InvalidOrderError,
        ),
        (
            "get_buying_power(price='nan')",
            lambda: broker.get_buying_power("005930", "nan"),
            InvalidOrderError,
        ),
        (
            "cancel_order(Arabic-Indic '123')",
            lambda: broker.cancel_order(ARABIC_123),
            InvalidOrderError,
        ),
        (
            "cancel_order(full-width '0123')",
            lambda: broker.cancel_order(FULLWIDTH_0123),
            InvalidOrderError,
        ),
        ("cancel_order('123\\n')", lambda: broker.cancel_order("123\n"), InvalidOrderError),
        ("cancel_order(' 123')", lambda: broker.cancel_order(" 123"), InvalidOrderError),
        ("cancel_order('12&3')", lambda: broker.cancel_order("12&3"), InvalidOrderError),
        ("cancel_order('abc')", lambda: broker.cancel_order("abc"), InvalidOrderError),
        (
            "cancel_order('12345678901')",
            lambda: broker.cancel_order("12345678901"),
            InvalidOrderError,
        ),
        ("cancel_order(123)", lambda: broker.cancel_order(123), InvalidOrderError),  # type: ignore[arg-type]
        ("modify_order('1a')", lambda: broker.modify_order("1a", qty=1), InvalidOrderError),
        (
            "modify_order(Arabic-Indic)",
            lambda: broker.modify_order(ARABIC_123, qty=1),
            InvalidOrderError,
        ),
        (
            "modify_order(price=10**30)",
            lambda: broker.modify_order("123", price=10**30),
            InvalidOrderError,
        ),
        (
            "modify_order(price=inf)",
            lambda: broker.modify_order("123", price=math.inf),
            InvalidOrderError,
        ),  # type: ignore[arg-type]
        (
            "modify_order(qty=10**30)",
            lambda: broker.modify_order("123", qty=10**30),
            InvalidOrderError,
        ),
        ("modify_order(qty=0)", lambda: broker.modify_order("123", qty=0), InvalidOrderError),
        (
            "modify_order(order_type='99')",
            lambda: broker.modify_order("123", order_type="99"),
            InvalidOrderError,
        ),  # type: ignore[arg-type]
        ("modify_order(nothing)", lambda: broker.modify_order("123"), InvalidOrderError),
        (
            "get_orders(start='2024-01-01')",
            lambda: broker.get_orders(start="2024-01-01"),
            ValueError,
        ),  # type: ignore[arg-type]
        (
            "get_orders(start after end)",
            lambda: broker.get_orders(start=today, end=today - timedelta(days=1)),
            ValueError,
        ),
        ("place_order(dict)", lambda: broker.place_order({"symbol": "005930"}), InvalidOrderError),  # type: ignore[arg-type]
        ("quotes(['005930\\n'])", lambda: broker.quotes(["005930\n"]), InvalidOrderError),
        ("quotes(full-width)", lambda: broker.quotes([FULLWIDTH_005930]), InvalidOrderError),
        ("quotes([])", lambda: broker.quotes([]), InvalidOrderError),
        ("quotes(None)", lambda: broker.quotes(None), InvalidOrderError),  # type: ignore[arg-type]
        ("orderbooks(['000660 '])", lambda: broker.orderbooks(["000660 "]), InvalidOrderError),
        (
            "subscribe_quotes(['0059=0'])",
            lambda: broker.subscribe_quotes(["0059=0"], quote_callback),
            InvalidOrderError,
        ),
        ("executions() without hts_id", broker.executions, ValueError),
        (
            "OrderService.track(Arabic-Indic)",
            lambda: OrderService(broker).track(ARABIC_123),
            InvalidOrderError,
        ),
        (
            "OrderService.track('42\\n')",
            lambda: OrderService(broker).track("42\n"),
            InvalidOrderError,
        ),
    ]


CLI_CASES: list[tuple[str, list[str], dict[str, str]]] = [
    ("price '005930\\n'", ["price", "005930\n"], {}),
    ("book full-width symbol", ["book", FULLWIDTH_005930], {}),
    ("cancel Arabic-Indic id", ["cancel", ARABIC_123], {}),
    ("cancel full-width id", ["cancel", FULLWIDTH_0123], {}),
    ("modify '123\\n'", ["modify", "123\n", "--qty", "1"], {}),
    ("buy full-width qty", ["buy", "005930", "\uff11\uff10", "--price", "70000"], {}),
    ("buy price 1e30", ["buy", "005930", "1", "--price", "1e30"], {}),
    ("buy price 10**30", ["buy", "005930", "1", "--price", str(10**30)], {}),
    (
        "buy full-width price",
        ["buy", "005930", "1", "--price", "\uff17\uff10\uff10\uff10\uff10"],
        {},
    ),
    ("sell symbol '005930 '", ["sell", "005930 ", "1", "--market"], {}),
    ("stream quotes '005930\\n'", ["stream", "quotes", "005930\n", "--count", "1"], {}),
    ("stream --duration inf", ["stream", "quotes", "005930", "--duration", "inf"], {}),
    ("stream --count full-width", ["stream", "quotes", "005930", "--count", "\uff13"], {}),
    ("KIS_TIMEOUT=nan", ["cash"], {"KIS_TIMEOUT": "nan"}),
    ("KIS_REST_URL with CR/LF", ["cash"], {"KIS_REST_URL": "http://127.0.0.1:9\r\nX: y"}),
    ("KIS_ACCOUNT_ID full-width", ["cash"], {"KIS_ACCOUNT_ID": "\uff15" * 10}),
    ("missing --env-file", ["cash", "--env-file", "/nonexistent/kis.env"], {}),
]


@contextlib.contextmanager
def _no_http() -> Iterator[respx.MockRouter]:
    """respx in front of every httpx client: any request is recorded (and answered 500)."""
    with respx.mock(assert_all_called=False) as router:
        router.route().mock(
            return_value=httpx.Response(500, json={"rt_cd": "1", "msg_cd": "T", "msg1": "no"})
        )
        yield router


async def _call(thunk: Callable[[], Any]) -> None:
    outcome = thunk()
    if isinstance(outcome, Awaitable):
        await outcome


def _check_message(label: str, exc: BaseException, echoed: str | None) -> None:
    text = str(exc)
    assert SECRET not in text, label
    if echoed is not None:
        assert echoed not in text, f"{label}: the bad value is echoed in {text!r}"


def test_bad_sync_inputs_raise_typed_errors_and_send_nothing(tmp_path: Path) -> None:
    """OrderRequest, KISConfig and from_env: a typed error for each bad input, no request."""
    cases = ORDER_CASES + CONFIG_CASES + OPTION_CASES + FROM_ENV_CASES + [_dotenv_case(tmp_path)]
    with _no_http() as router:
        for label, thunk, expected, echoed in cases:
            with pytest.raises(expected) as info:
                thunk()
            assert isinstance(info.value, ValueError), label
            _check_message(label, info.value, echoed)
    assert router.calls.call_count == 0
    assert len(ORDER_CASES) >= 40
    assert len(CONFIG_CASES) + len(FROM_ENV_CASES) >= 50


async def test_bad_broker_inputs_raise_typed_errors_and_send_nothing() -> None:
    """Every KISBroker method that takes user input: a typed error, zero HTTP requests and
    no WebSocket."""
    config = KISConfig(**GOOD, mode=Mode.PAPER)
    with _no_http() as router:
        async with KISBroker(config) as broker:
            cases = _broker_cases(broker)
            for label, thunk, expected in cases:
                with pytest.raises(expected) as info:
                    await _call(thunk)
                assert isinstance(info.value, ValueError), label
                _check_message(label, info.value, None)
            status = broker.stream_status
    assert router.calls.call_count == 0
    assert not status.connected
    assert status.reconnects == 0
    assert len(cases) >= 35


async def test_mock_broker_refuses_the_same_inputs() -> None:
    """MockBroker validates like KISBroker: the same table gives the same error types."""
    mock = MockBroker(prices={"005930": 70_000, "000660": 120_000})
    async with mock:
        cases = [c for c in _broker_cases(mock) if "hts_id" not in c[0]]
        for label, thunk, expected in cases:
            with pytest.raises(expected) as info:
                await _call(thunk)
            assert isinstance(info.value, ValueError), label
        assert mock.requests == []
        assert await mock.get_orders() == []


@pytest.mark.parametrize(("argv", "env"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_bad_cli_inputs_exit_2_and_send_nothing(
    argv: list[str],
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`kis-async` with a bad argument or variable: exit code 2, one line, no request."""
    for name in list(os.environ):
        if name.upper().startswith("KIS_"):
            monkeypatch.delenv(name)
    for name, value in {**GOOD_ENV, **env}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no stray ./.env
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with _no_http() as router:
        code = main(argv)
    captured = capsys.readouterr()
    assert code == EXIT_USAGE, captured.err
    assert router.calls.call_count == 0
    assert SECRET not in captured.out + captured.err
    assert "Traceback" not in captured.err
