"""Metrics and traces against the simulator: a session with price reads, keyed orders (one
whose response is dropped), a quote stream and a reconnect, exported through the OpenTelemetry
SDK's in-memory reader and exporter; the same figures from ``broker.metrics()``; and no
secret or account number in any metric attribute, span name or span attribute."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kis_async import InvalidOrderError, KISBroker, Mode, OrderRequest, Side, SyncKISBroker
from kis_async.models import tick_size
from kis_async.orders.placement import PlacementOptions
from kis_async.rest.trids import Api, tr_id
from kis_async.sim import KISSimulator
from kis_async.stream.manager import StreamOptions
from kis_async.telemetry import Telemetry

ROOT = Path(__file__).resolve().parents[3]
FAST = StreamOptions(
    ack_timeout=3.0,
    liveness_timeout=2.0,
    connect_timeout=2.0,
    close_timeout=0.5,
    reconnect_base_delay=0.02,
    reconnect_max_delay=0.2,
    healthy_after=0.5,
)
QUICK = PlacementOptions(
    reconcile_attempts=4, reconcile_interval=0.1, clock_tolerance=30.0, not_booked_after=0.0
)
PRICE_TR = tr_id(Api.PRICE, Mode.PAPER)
BUY_TR = tr_id(Api.ORDER_BUY, Mode.PAPER)


@pytest.fixture
async def sim() -> AsyncIterator[KISSimulator]:
    simulator = KISSimulator(
        seed=99, mode=Mode.PAPER, rate_limit=False, token_issue_interval=0.0, quote_interval=0.02
    )
    async with simulator.serve(port=0) as running:
        yield running


@pytest.fixture
def otel() -> Iterator[tuple[InMemoryMetricReader, InMemorySpanExporter, Telemetry]]:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    exporter = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(exporter))
    yield reader, exporter, Telemetry(meter_provider=meters, tracer_provider=tracers)
    meters.shutdown()
    tracers.shutdown()


async def _until(predicate: Callable[[], bool], limit: float = 10.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.01)


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Instrument name -> its data points, from one collection."""
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, list[Any]] = {}
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            assert scope.scope.name == "kis_async"
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def _value(points: list[Any], **attributes: str) -> Any:
    """The value (sum or gauge) of the point whose attributes include ``attributes``."""
    found = [p for p in points if all(p.attributes.get(k) == v for k, v in attributes.items())]
    assert len(found) == 1, (attributes, [dict(p.attributes) for p in points])
    return found[0].value


def _strings(value: Any) -> list[str]:
    """Every key and string value inside ``value`` (nested dicts and lists)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


async def test_session_exports_every_instrument_and_no_secret(
    sim: KISSimulator,
    otel: tuple[InMemoryMetricReader, InMemorySpanExporter, Telemetry],
    tmp_path: Path,
) -> None:
    reader, exporter, telemetry = otel
    config = sim.config(requests_per_second=50, timeout=1.0, token_cache_dir=tmp_path / "cache")
    async with KISBroker(
        config, stream_options=FAST, placement_options=QUICK, telemetry=telemetry
    ) as broker:
        token = (await broker.authenticate()).value.get_secret_value()
        price = (await broker.get_price("005930")).price
        await broker.get_price("000660")
        below = price - 10 * tick_size(price)
        placed = await broker.place_order(
            OrderRequest("005930", Side.BUY, 1, price=below, idempotency_key="t-1")
        )
        sim.faults.drop_next_order_response()
        reconciled = await broker.place_order(
            OrderRequest("005930", Side.BUY, 2, price=below, idempotency_key="t-2")
        )
        with pytest.raises(InvalidOrderError):
            await broker.place_order(  # the key is bound to another order
                OrderRequest("005930", Side.BUY, 3, price=below, idempotency_key="t-1")
            )
        async with broker.quotes(["005930", "000660"]) as quotes:
            for _ in range(5):
                await asyncio.wait_for(anext(quotes), 5)
            assert sim.faults.drop_sessions() >= 1
            await _until(lambda: broker.stream_status.reconnects >= 1)
            for _ in range(3):
                await asyncio.wait_for(anext(quotes), 5)
            # Not consuming: the conflating buffer fills with one quote per symbol.
            await _until(lambda: broker.metrics()["stream"]["queue_depth"] >= 1)
            points = _points(reader)
            figures = broker.metrics()
        approval = await broker._rest.approval_key()

    assert placed != reconciled
    # -- OpenTelemetry metrics -------------------------------------------------------------------
    expected = {
        "kis.rest.duration",
        "kis.ratelimit.wait",
        "kis.orders",
        "kis.token.issuances",
        "kis.stream.reconnects",
        "kis.stream.frames",
        "kis.stream.dropped",
        "kis.stream.queue_depth",
        "kis.stream.lag",
    }
    assert expected <= set(points), set(points)
    price_calls = [
        p
        for p in points["kis.rest.duration"]
        if p.attributes == {"kis.tr_id": PRICE_TR, "kis.outcome": "ok"}
    ]
    assert len(price_calls) == 1
    assert price_calls[0].count == 2
    assert 0 < price_calls[0].min <= price_calls[0].max < 1000  # milliseconds, local
    buy_outcomes = {
        p.attributes["kis.outcome"]: p.count
        for p in points["kis.rest.duration"]
        if p.attributes["kis.tr_id"] == BUY_TR
    }
    assert buy_outcomes.get("ok") == 1  # the first order; the second's answer was dropped
    assert sum(n for outcome, n in buy_outcomes.items() if outcome != "ok") == 1
    assert sum(p.count for p in points["kis.ratelimit.wait"]) >= 4
    orders = {p.attributes["kis.order.outcome"]: p.value for p in points["kis.orders"]}
    assert orders == {"placed": 2, "uncertain": 1, "invalid": 1}
    assert _value(points["kis.token.issuances"]) == 1
    assert _value(points["kis.stream.reconnects"]) >= 1
    quote_tr = {p.attributes["kis.tr_id"]: p.value for p in points["kis.stream.frames"]}
    assert quote_tr.get("H0STCNT0", 0) >= 8
    assert _value(points["kis.stream.dropped"], **{"kis.stream.kind": "quote"}) >= 0
    assert _value(points["kis.stream.queue_depth"]) >= 1
    lag = points["kis.stream.lag"]
    assert sum(p.count for p in lag) >= 1  # one queued quote at a time is timed
    assert 0 <= min(p.min for p in lag) <= max(p.max for p in lag) < 10

    # -- broker.metrics(): the same figures as plain data -----------------------------------------
    assert figures["rest"][PRICE_TR]["ok"]["count"] == 2
    assert figures["orders"] == orders
    assert figures["tokens_issued"] == 1
    assert figures["rate_limit_wait"]["count"] >= 4
    stream = figures["stream"]
    assert stream["reconnects"] >= 1
    assert stream["frames_by_tr"]["H0STCNT0"] >= 8
    assert stream["queue_depth"] >= 1
    assert figures["stream_lag"]["count"] == sum(p.count for p in lag)
    json.dumps(figures)  # plain data

    # -- spans ------------------------------------------------------------------------------------
    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    names = [span.name for span in spans]
    assert names.count(f"kis.rest {PRICE_TR}") == 2
    order_spans = [s for s in spans if s.name == "kis.order.place"]
    assert [s.attributes["kis.order.outcome"] for s in order_spans] == [  # type: ignore[index]
        "placed",
        "placed",
        "invalid",
    ]
    first = order_spans[0]
    children = [
        s for s in spans if s.parent is not None and s.parent.span_id == first.context.span_id
    ]
    assert [s.name for s in children] == [f"kis.rest {BUY_TR}"]
    assert first.start_time <= children[0].start_time <= children[0].end_time <= first.end_time
    failed = [
        s for s in spans if s.name == f"kis.rest {BUY_TR}" and s.attributes["kis.outcome"] != "ok"
    ]  # type: ignore[index]
    assert len(failed) == 1
    assert not failed[0].status.is_ok
    assert all(span.status.description is None and not span.events for span in spans)

    # -- no secret anywhere -----------------------------------------------------------------------
    texts = list(points)  # instrument names
    for series in points.values():
        texts += [s for p in series for s in _strings(dict(p.attributes))]
    for span in spans:
        texts += [span.name, *_strings(dict(span.attributes or {}))]
        texts += [span.status.description or ""]  # no exception text either
        texts += [
            s
            for event in span.events
            for s in (event.name, *_strings(dict(event.attributes or {})))
        ]
    texts += _strings(figures)
    secrets = {
        "app key": sim.app_key,
        "app secret": sim.app_secret,
        "access token": token,
        "approval key": approval,
        "account number": sim.account_id,
        "CANO": sim.account_id[:8],
        "HTS id": sim.hts_id,
    }
    hits = {name: sum(value in text for text in texts) for name, value in secrets.items()}
    print(f"\nattribute strings checked: {len(texts)}; hits: {hits}")
    assert hits == dict.fromkeys(secrets, 0)
    # nor a field that could hold one: no attribute is named after a credential or account
    keys = {key for series in points.values() for p in series for key in p.attributes}
    keys |= {key for span in spans for key in (span.attributes or {})}
    assert keys, "attributes were collected"
    words = ("cano", "acnt", "account", "secret", "token", "approval", "appkey", "app_key")
    assert [key for key in keys if any(word in key.lower() for word in words)] == []


async def test_metrics_without_telemetry(sim: KISSimulator) -> None:
    """``broker.metrics()`` counts without OpenTelemetry attached (a failed call included)."""
    async with KISBroker(sim.config(requests_per_second=None)) as broker:
        await broker.get_price("005930")
        sim.faults.expire_tokens()
        await broker.get_price("005930")  # EGW00123, one refresh, then ok
        figures = broker.metrics()
    assert figures["rest"][PRICE_TR]["ok"]["count"] == 2
    assert figures["rest"][PRICE_TR]["AuthenticationError"]["count"] == 1
    assert figures["tokens_issued"] == 2
    assert figures["rate_limit_wait"]["count"] == 0  # the limiter is off: nothing queued
    assert figures["orders"] == {}
    assert figures["stream"]["frames_by_tr"] == {}


async def test_one_telemetry_per_broker(sim: KISSimulator) -> None:
    """A Telemetry serves one broker; anything else is refused before any network call."""
    telemetry = Telemetry(meter_provider=MeterProvider(), tracer_provider=TracerProvider())
    async with KISBroker(sim.config(), telemetry=telemetry):
        with pytest.raises(ValueError, match="one per broker"):
            KISBroker(sim.config(), telemetry=telemetry)
        with pytest.raises(TypeError, match="Telemetry"):
            KISBroker(sim.config(), telemetry=object())  # type: ignore[arg-type]
    assert sim.stats.rest_requests == 0


def test_no_opentelemetry_import_without_telemetry() -> None:
    """``import kis_async`` and a broker without telemetry never import OpenTelemetry."""
    code = (
        "import sys, asyncio\n"
        "import kis_async\n"
        "from kis_async import KISBroker, KISConfig, Mode\n"
        "import kis_async.telemetry\n"
        "cfg = KISConfig(app_key='k' * 36, app_secret='s' * 180, account_id='5012345601',\n"
        "                mode=Mode.PAPER, token_cache_dir=None)\n"
        "broker = KISBroker(cfg)\n"
        "broker.metrics()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    proc = subprocess.run(  # noqa: S603 (our own interpreter)
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


async def test_sync_broker_metrics_and_telemetry(
    sim: KISSimulator,
    otel: tuple[InMemoryMetricReader, InMemorySpanExporter, Telemetry],
) -> None:
    """The synchronous client takes ``telemetry=`` and answers ``metrics()`` from its thread."""
    reader, exporter, telemetry = otel

    def script() -> dict[str, Any]:
        with SyncKISBroker(sim.config(requests_per_second=None), telemetry=telemetry) as broker:
            broker.get_price("005930")
            return broker.metrics()

    figures = await asyncio.to_thread(script)
    assert figures["rest"][PRICE_TR]["ok"]["count"] == 1
    points = _points(reader)
    assert sum(p.count for p in points["kis.rest.duration"]) == sum(
        stat["count"] for outcomes in figures["rest"].values() for stat in outcomes.values()
    )
    assert f"kis.rest {PRICE_TR}" in [span.name for span in exporter.get_finished_spans()]
