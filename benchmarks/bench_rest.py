"""Benchmark 3: REST overhead of kis_async against a bare ``httpx.AsyncClient``.

Two tables.

**In process (the claim).** No server: every answer is canned and served by an
``httpx.MockTransport``. The answers are recorded once from the simulator (so they are real
KIS-shaped bodies and headers); the order-list answer is served as two pages (``tr_cont`` M,
then D). For each call -- ``get_price``, ``get_orders`` (2 pages) and ``place_order`` with an
``idempotency_key`` -- the HTTP requests the SDK sends (recorded from one SDK call: same URL,
query parameters, KIS headers and JSON body) are made by a bare ``httpx.AsyncClient`` over the
same transport, which also decodes each JSON body; kis_async and bare httpx alternate over
repetitions, in blocks of 100 calls; the ratio is the median over those pairs of adjacent
blocks (a shared machine's load swings hit both sides of a pair alike). Target: kis_async
<= 1.15x the bare client's time per call.

**Against the simulator (an end-to-end figure).** The simulator runs in its own process
with its rate limit off. In the same event loop, one after the other and interleaved over
repetitions, 1,000 ``get_price`` calls are made by kis_async (``requests_per_second=None``)
and the same 1,000 requests (same URL, headers and token) by a bare ``httpx.AsyncClient``
that only reads the price out of the JSON. Both run sequentially and with 16 in flight.
Target: kis_async takes at most 1.2x the bare client.

Alongside, the same calls with masked traffic logging on (records built and handed to a
``NullHandler``), and the cost of the one level check each call pays while it is off.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import time
import timeit
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from _common import SimProcess, fmt_num, fmt_ratio, median, print_table, verdict

from kis_async import KISBroker, KISConfig, OrderRequest, traffic

PRICE_PATH = "/uapi/domestic-stock/v1/quotations/inquire-price"
PRICE_TR = "FHKST01010100"
MAX_RATIO = 1.2
#: Target of the in-process table: kis_async time per call / bare httpx time per call.
MAX_INPROC_RATIO = 1.15
#: Calls per block of the in-process table (the two clients alternate block by block).
BLOCK_CALLS = 100
ORDERS_PATH = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"


def config_from(info: dict[str, str], **overrides: Any) -> KISConfig:
    """A KISConfig for a simulator process's JSON line."""
    values: dict[str, Any] = {
        "app_key": info["app_key"],
        "app_secret": info["app_secret"],
        "account_id": info["account_id"],
        "hts_id": info["hts_id"],
        "mode": info["mode"],
        "rest_url": info["rest_url"],
        "ws_url": info["ws_url"],
        "token_cache_dir": None,
    }
    values.update(overrides)
    return KISConfig(**values)


async def _timed(calls: int, concurrency: int, call: Callable[[str], Awaitable[Any]]) -> float:
    symbols = ["005930", "000660", "035420", "005380"]
    started = time.perf_counter()
    if concurrency == 1:
        for i in range(calls):
            await call(symbols[i % len(symbols)])
    else:
        queue = list(range(calls))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                await call(symbols[i % len(symbols)])

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    return time.perf_counter() - started


async def _measure(
    info: dict[str, str], calls: int, reps: int
) -> tuple[dict[int, dict[str, float]], Canned]:
    """End to end against the simulator; also records the answers the in-process table serves
    (one token for both: the simulator, like KIS, issues one a minute)."""
    config = config_from(info, requests_per_second=None)
    client = httpx.AsyncClient()
    async with client, KISBroker(config, http_client=client) as broker:
        canned = await _record_answers(broker, client)
        token = (await broker.authenticate()).value.get_secret_value()
        headers = {
            "content-type": "application/json; charset=utf-8",
            "appkey": config.app_key,
            "appsecret": config.app_secret.get_secret_value(),
            "custtype": "P",
            "authorization": f"Bearer {token}",
            "tr_id": PRICE_TR,
            "tr_cont": "",
        }
        async with httpx.AsyncClient(base_url=config.rest_url, headers=headers) as bare:

            async def bare_call(symbol: str) -> Any:
                response = await bare.get(
                    PRICE_PATH,
                    params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": symbol},
                )
                return response.json()["output"]["stck_prpr"]

            async def ours(symbol: str) -> Any:
                return (await broker.get_price(symbol)).price

            async def logged(calls: int, concurrency: int) -> float:
                traffic.logger.setLevel(logging.DEBUG)
                try:
                    return await _timed(calls, concurrency, ours)
                finally:
                    traffic.logger.setLevel(logging.INFO)

            # Warm both connections and code paths.
            await _timed(20, 1, ours)
            await _timed(20, 1, bare_call)
            out: dict[int, dict[str, float]] = {}
            for concurrency in (1, 16):
                times: dict[str, list[float]] = {"kis_async": [], "httpx": [], "traffic": []}
                for rep in range(reps):
                    pair = [("kis_async", ours), ("httpx", bare_call)]
                    if rep % 2:
                        pair.reverse()
                    for name, fn in pair:
                        times[name].append(await _timed(calls, concurrency, fn))
                    times["traffic"].append(await logged(calls, concurrency))
                out[concurrency] = {name: median(values) for name, values in times.items()}
    return out, canned


Answer = tuple[int, list[tuple[str, str]], bytes]


class Canned:
    """Answers recorded from the simulator, served by an ``httpx.MockTransport``.

    Keyed by method and path; the order list is served as two pages: ``tr_cont`` ``M`` on a
    first call (request ``tr_cont`` empty), ``D`` on the next.
    """

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer] = {}

    async def record(self, response: httpx.Response) -> None:
        """An httpx response hook: keep the answer to this method and path."""
        body = await response.aread()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        self.answers[(response.request.method, response.request.url.path)] = (
            response.status_code,
            headers,
            body,
        )

    def handler(self, request: httpx.Request) -> httpx.Response:
        status, headers, body = self.answers[(request.method, request.url.path)]
        if request.url.path == ORDERS_PATH:
            more = not request.headers.get("tr_cont", "").strip()
            headers = [(k, v) for k, v in headers if k.lower() != "tr_cont"]
            headers.append(("tr_cont", "M" if more else "D"))
        return httpx.Response(status, headers=headers, content=body)


#: Headers httpx adds by itself; the bare client lets httpx add them too.
_HTTPX_OWN_HEADERS = frozenset(
    {"host", "accept", "accept-encoding", "connection", "user-agent", "content-length"}
)


def _as_user_call(request: httpx.Request) -> dict[str, Any]:
    """The keywords a developer would pass to ``httpx.AsyncClient.request`` for ``request``:
    URL and query parameters apart, the KIS headers, the JSON body as an object (so the bare
    client pays for the same URL building and JSON encoding as the SDK's call)."""
    call: dict[str, Any] = {
        "method": request.method,
        "url": str(request.url.copy_with(query=None)),
        "params": dict(request.url.params),
        "headers": {k: v for k, v in request.headers.items() if k not in _HTTPX_OWN_HEADERS},
    }
    if request.content:
        call["json"] = json.loads(request.content)
    return call


def _order(key: str) -> OrderRequest:
    return OrderRequest(symbol="005930", side="buy", qty=1, price=70_000, idempotency_key=key)


async def _record_answers(broker: KISBroker, client: httpx.AsyncClient) -> Canned:
    """One SDK call of each kind against the simulator, keeping every answer."""
    canned = Canned()
    client.event_hooks["response"] = [canned.record]
    await broker.authenticate()
    await broker.get_price("005930")
    await broker.place_order(_order("record-1"))
    await broker.get_orders()
    client.event_hooks["response"] = []
    return canned


async def _measure_inprocess(
    info: dict[str, str], canned: Canned, calls: int, reps: int
) -> dict[str, dict[str, float]]:
    """Per call kind: median seconds per call for kis_async and for bare httpx."""
    transport = httpx.MockTransport(canned.handler)
    keys = itertools.count()
    config = config_from(info, requests_per_second=None)
    kinds: dict[str, Callable[[KISBroker], Awaitable[Any]]] = {
        "get_price": lambda b: b.get_price("005930"),
        "get_orders (2 pages)": lambda b: b.get_orders(),
        "place_order (keyed)": lambda b: b.place_order(_order(f"bench-{next(keys)}")),
    }
    out: dict[str, dict[str, float]] = {}
    sdk_client = httpx.AsyncClient(transport=transport)
    bare = httpx.AsyncClient(transport=transport)
    async with sdk_client, bare, KISBroker(config, http_client=sdk_client) as broker:
        await broker.authenticate()
        for name, call in kinds.items():
            # The exact requests the SDK sends for this call, replayed by the bare client.
            sent: list[httpx.Request] = []

            async def keep(request: httpx.Request, sent: list[httpx.Request] = sent) -> None:
                sent.append(request)

            sdk_client.event_hooks["request"] = [keep]
            await call(broker)
            sdk_client.event_hooks["request"] = []
            plan = [_as_user_call(r) for r in sent]

            async def bare_call(plan: list[dict[str, Any]] = plan) -> Any:
                body = None
                for kwargs in plan:
                    response = await bare.request(**kwargs)
                    body = response.json()
                return body

            async def sdk_call(call: Any = call) -> Any:
                return await call(broker)

            for fn in (sdk_call, bare_call):  # warm both paths
                for _ in range(min(50, calls)):
                    await fn()
            # Short blocks, the two clients alternating block by block: neighbouring blocks see
            # the same load on a shared machine, so each pair's ratio is a fair comparison and
            # the median over all pairs ignores the pairs a load swing hit.
            block = min(BLOCK_CALLS, calls)
            times: dict[str, list[float]] = {"kis_async": [], "httpx": []}
            ratios: list[float] = []
            for rep in range(reps):
                for index in range(max(1, calls // block)):
                    pair: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                        ("kis_async", sdk_call),
                        ("httpx", bare_call),
                    ]
                    if (rep + index) % 2:
                        pair.reverse()
                    took: dict[str, float] = {}
                    for label, fn in pair:
                        started = time.perf_counter()
                        for _ in range(block):
                            await fn()
                        took[label] = (time.perf_counter() - started) / block
                        times[label].append(took[label])
                    ratios.append(took["kis_async"] / took["httpx"])
            out[name] = {label: median(v) for label, v in times.items()}
            out[name]["ratio"] = median(ratios)
            out[name]["requests"] = len(plan)
    return out


def _print_inprocess(result: dict[str, dict[str, float]], calls: int, reps: int) -> float:
    rows = []
    ratios = []
    for name, times in result.items():
        ratio = times["ratio"]
        ratios.append(ratio)
        rows.append(
            [
                name,
                f"{int(times['requests'])}",
                fmt_num(times["httpx"] * 1e6),
                fmt_num(times["kis_async"] * 1e6),
                fmt_num((times["kis_async"] - times["httpx"]) * 1e6),
                fmt_ratio(ratio),
                verdict(ratio <= MAX_INPROC_RATIO),
            ]
        )
    print_table(
        f"REST overhead in process: canned answers through httpx.MockTransport, {calls:,} calls "
        f"per kind x {reps} in alternating blocks of {min(BLOCK_CALLS, calls)} (medians over "
        "blocks; the ratio is the median of the paired blocks' ratios)",
        [
            "call",
            "HTTP requests",
            "bare httpx us/call",
            "kis_async us/call",
            "kis_async extra us",
            "kis_async / bare",
            f"<= {MAX_INPROC_RATIO}x",
        ],
        rows,
    )
    return max(ratios)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the REST overhead benchmark, print its table and target, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--inproc-calls", type=int, default=None)
    args = parser.parse_args(argv)
    calls = args.calls or (50 if args.quick else 1000)
    reps = args.reps or (2 if args.quick else 5)
    inproc_calls = args.inproc_calls or (100 if args.quick else 3000)
    options = {"seed": 5, "mode": "live", "rate_limit": False, "quote_interval": None}
    sink = logging.getLogger(traffic.logger.name)
    sink.addHandler(logging.NullHandler())
    sink.propagate = False
    with SimProcess(options) as sim:
        result, canned = asyncio.run(_measure(sim.info, calls, reps))
    check_ns = min(timeit.repeat(traffic.on, number=200_000, repeat=5)) / 200_000 * 1e9
    inproc = asyncio.run(_measure_inprocess(sim.info, canned, inproc_calls, reps))
    inproc_worst = _print_inprocess(inproc, inproc_calls, reps)
    print("\nTargets:")
    print(
        f"- kis_async <= {MAX_INPROC_RATIO}x bare httpx per call, in process (worst call): "
        f"{fmt_ratio(inproc_worst)} -> {verdict(inproc_worst <= MAX_INPROC_RATIO)}"
    )
    rows = []
    ratios = []
    for concurrency, times in result.items():
        ratio = times["kis_async"] / times["httpx"]
        ratios.append(ratio)
        rows.append(
            [
                "sequential" if concurrency == 1 else f"{concurrency} in flight",
                fmt_num(calls / times["httpx"]),
                fmt_num(calls / times["kis_async"]),
                fmt_num(times["httpx"] / calls * 1e6),
                fmt_num(times["kis_async"] / calls * 1e6),
                fmt_ratio(ratio),
            ]
        )
    print_table(
        f"REST end to end: {calls:,} get_price calls against the simulator, rate limit off "
        f"(median of {reps})",
        [
            "mode",
            "bare httpx calls/s",
            "kis_async calls/s",
            "bare us/call",
            "kis_async us/call",
            "kis_async time / bare",
        ],
        rows,
    )
    print_table(
        "Masked traffic logging (kis_async.traffic): off (default) vs on, to a NullHandler",
        ["mode", "off us/call", "on us/call", "on / off", "off: level check ns", "check / call"],
        [
            [
                "sequential" if concurrency == 1 else f"{concurrency} in flight",
                fmt_num(times["kis_async"] / calls * 1e6),
                fmt_num(times["traffic"] / calls * 1e6),
                fmt_ratio(times["traffic"] / times["kis_async"]),
                fmt_num(check_ns),
                f"{check_ns / (times['kis_async'] / calls * 1e9):.4%}",
            ]
            for concurrency, times in result.items()
        ],
    )
    worst = max(ratios)
    print("\nTargets:")
    print(
        f"- kis_async <= {MAX_RATIO}x bare httpx (worst mode): {fmt_ratio(worst)} -> "
        f"{verdict(worst <= MAX_RATIO)}"
    )
    return {"ratios": ratios, "inprocess": inproc}


if __name__ == "__main__":
    main()
