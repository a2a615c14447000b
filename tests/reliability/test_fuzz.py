"""Hypothesis-fuzzed input end to end: malformed WebSocket frames pushed by the simulator over a
real socket, and malformed REST bodies. The session and the client survive; every malformed
input is counted (frames) or surfaced as a typed error (REST)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import string
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kis_async import BrokerError, KISBroker, KISConfig, PriceSnapshot

from .conftest import FAST_STREAMS, served, wait_until

pytestmark = pytest.mark.reliability

FUZZ = settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_TEMPLATE = (
    "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^"
    "219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^"
    "-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"
    + "^2"
).split("^")
_FIELD = st.text(alphabet=string.ascii_letters + string.digits + ".-", max_size=8)

# Every strategy below yields a frame the protocol says is malformed.
not_a_frame = st.text(min_size=1, max_size=60).filter(lambda t: t[0] not in "01{")
bad_count = st.builds(
    lambda c, p: f"0|H0STCNT0|{c}|{p}",
    st.text(alphabet=string.ascii_letters + " -", min_size=1, max_size=4),
    st.text(max_size=40),
)
too_few_fields = st.builds(
    lambda fields: "0|H0STCNT0|001|" + "^".join(fields),
    st.lists(_FIELD, min_size=1, max_size=45),
)
bad_price = st.builds(
    lambda price: "0|H0STCNT0|001|" + "^".join([*_TEMPLATE[:2], price, *_TEMPLATE[3:]]),
    st.text(alphabet=string.ascii_letters, min_size=1, max_size=6),
)
broken_json = st.builds(lambda t: "{" + t, st.text(max_size=60).filter(lambda t: "}" not in t))
bad_ciphertext = st.builds(
    lambda t: f"1|H0STCNI0|001|{t}",
    st.text(alphabet="!@#$%&*()[]~", min_size=1, max_size=40),
)
MALFORMED = st.lists(
    st.one_of(not_a_frame, bad_count, too_few_fields, bad_price, broken_json, bad_ciphertext),
    min_size=1,
    max_size=25,
)

_totals = {"frames": 0, "examples": 0, "rest_bodies": 0, "rest_typed_errors": 0}


async def _frames_example(frames: list[str]) -> tuple[int, int, int]:
    async with (
        served(quote_interval=0.05, pingpong_interval=60.0) as sim,
        KISBroker(sim.config(), stream_options=FAST_STREAMS) as broker,
    ):
        seen: list[str] = []

        async def consume() -> None:
            async for quote in broker.quotes(["005930"]):
                seen.append(quote.symbol)

        task = asyncio.create_task(consume())
        async with broker.executions():
            assert await wait_until(lambda: len(seen) >= 2, within=10)
            before = broker.stream_status.malformed_frames
            for session in sim.hub.sessions:
                for text in frames:
                    session.enqueue(text, data=False)
            counted = await wait_until(
                lambda: broker.stream_status.malformed_frames - before >= len(frames),
                within=10,
            )
            after_seen = len(seen)
            resumed = await wait_until(lambda: len(seen) > after_seen + 1, within=10)
            status = broker.stream_status
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert counted, "not every malformed frame was counted"
    assert resumed, "quotes did not continue after the malformed frames"
    assert status.connected
    assert status.reconnects == 0
    return status.malformed_frames - before, status.reconnects, len(seen)


@FUZZ
@given(frames=MALFORMED)
def test_fuzzed_frames_are_counted_and_the_session_survives(frames: list[str]) -> None:
    """Malformed frames over a real socket: each counted, no reconnect, quotes continue."""
    counted, _reconnects, _quotes = asyncio.run(_frames_example(frames))
    assert counted == len(frames)
    _totals["frames"] += counted
    _totals["examples"] += 1
    print(
        f"\nfuzzed frames: {_totals['frames']} malformed frames in {_totals['examples']} "
        f"sessions, all counted, 0 reconnects, quotes continued"
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
OUTPUT = st.dictionaries(
    st.sampled_from(["stck_prpr", "stck_shrn_iscd", "prdy_vrss", "acml_vol", "stck_oprc"]),
    st.one_of(st.text(max_size=8), st.integers(), st.none(), st.lists(st.integers(), max_size=2)),
    max_size=5,
).filter(lambda d: not _plausible_price(d.get("stck_prpr")))
BODY = st.one_of(
    st.binary(max_size=40).map(lambda b: b"\xff" + b),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda rt, out: json.dumps({"rt_cd": rt, "msg_cd": "MCA00000", "output": out}).encode(),
        st.sampled_from(["0", "1", "", "9"]),
        st.one_of(OUTPUT, JSON),
    ),
)


def _plausible_price(value: Any) -> bool:
    try:
        return float(str(value)) > 0
    except ValueError:
        return False


async def _rest_example(bodies: list[tuple[int, bytes]]) -> tuple[int, int, bool]:
    queue = list(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/tokenP"):
            return httpx.Response(
                200,
                json={
                    "access_token": "fuzz-token-" + "t" * 40,
                    "token_type": "Bearer",
                    "expires_in": 86_400,
                    "access_token_token_expired": "2099-12-31 23:59:59",
                },
            )
        if queue:
            status, body = queue.pop(0)
            return httpx.Response(status, content=body)
        output = {"stck_shrn_iscd": "005930", "stck_prpr": "71900"}
        return httpx.Response(200, json={"rt_cd": "0", "msg_cd": "MCA00000", "output": output})

    config = KISConfig(
        app_key="PSfuzz" + "0" * 30,
        app_secret="s" * 180,
        account_id="5012345601",
        mode="live",
        rest_url="http://127.0.0.1:9",
        token_cache_dir=None,
        requests_per_second=None,
        max_retries=0,
    )
    typed = 0
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http,
        KISBroker(config, http_client=http) as broker,
    ):
        for _ in bodies:
            try:
                result = await broker.get_price("005930")
            except BrokerError:
                typed += 1
            else:
                raise AssertionError(f"a malformed body gave a result: {result!r}")
        survivor = await broker.get_price("005930")
    return len(bodies), typed, isinstance(survivor, PriceSnapshot)


@FUZZ
@given(bodies=st.lists(st.tuples(st.sampled_from([200, 400, 500, 503]), BODY), max_size=20))
def test_fuzzed_rest_bodies_raise_typed_errors_and_the_client_survives(
    bodies: list[tuple[int, bytes]],
) -> None:
    """Malformed get_price bodies: each one a BrokerError, then a good answer still works."""
    sent, typed, survived = asyncio.run(_rest_example(bodies))
    assert typed == sent
    assert survived
    _totals["rest_bodies"] += sent
    _totals["rest_typed_errors"] += typed
    print(
        f"\nfuzzed REST bodies: {_totals['rest_bodies']} malformed bodies -> "
        f"{_totals['rest_typed_errors']} typed BrokerErrors; the client answered afterwards"
    )
