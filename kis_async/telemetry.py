"""Metrics and traces: plain counters always, OpenTelemetry instruments with the ``otel`` extra.

Every :class:`~kis_async.KISBroker` keeps a :class:`MetricsRecorder`: REST latency by TR id
and outcome, the time spent waiting in the rate limiter, order outcomes and the
frame-to-consumer lag of sampled stream records. Together with the
counters the token manager and the stream session keep anyway (token issuances, reconnects,
frames by TR, conflation drops, queued items) they make up ``broker.metrics()``, a plain dict
that needs no third-party package.

With ``pip install 'kis-async[otel]'`` the same figures go to OpenTelemetry::

    from kis_async.telemetry import Telemetry

    broker = KISBroker(config, telemetry=Telemetry(meter_provider=mp, tracer_provider=tp))

Instruments (meter ``kis_async``):

================================  =========================  ======================================
name                              kind                       attributes
================================  =========================  ======================================
``kis.rest.duration``             histogram (ms)             ``kis.tr_id``, ``kis.outcome``
``kis.ratelimit.wait``            histogram (s)              (none)
``kis.stream.lag``                histogram (s)              (none)
``kis.orders``                    counter                    ``kis.order.outcome``
``kis.token.issuances``           observable counter         (none)
``kis.stream.reconnects``         observable counter         (none)
``kis.stream.frames``             observable counter         ``kis.tr_id`` (data frames)
``kis.stream.dropped``            observable counter         ``kis.stream.kind`` (quote/orderbook)
``kis.stream.queue_depth``        observable gauge           (none)
================================  =========================  ======================================

``kis.outcome`` is ``ok`` or the SDK's error class (``RateLimitError``, ``BrokerTimeoutError``,
...); ``kis.order.outcome`` is ``placed``, ``rejected``, ``uncertain`` (the POST's outcome was
unknown and reconciliation started), ``unknown`` (reconciliation could not tell),
``invalid``, ``cancelled`` (the caller stopped waiting) or ``error``. Frames per second by TR
is the rate of ``kis.stream.frames``. ``kis.stream.lag`` times one record in 16 per consumer
queue (one at a time), from the frame's arrival to the consumer taking it.

Spans (tracer ``kis_async``): ``kis.rest <tr_id>`` for each HTTP exchange (``kis.rest
<path>`` for the OAuth endpoints) and ``kis.order.place`` around
:meth:`~kis_async.KISBroker.place_order`, the parent of the exchanges it makes. No attribute or
span name carries a credential, token, approval key or account number: only TR ids, URL paths
(account numbers travel in query strings and bodies, never in paths), HTTP status, KIS
message codes and error class names.

Without the extra nothing here imports OpenTelemetry; :class:`Telemetry` raises a clear
``ImportError`` when made without it. A broker without ``telemetry`` never imports it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from kis_async.errors import InvalidOrderError, OrderRejectedError, OrderStateUnknownError

if TYPE_CHECKING:
    from kis_async.models import OrderRequest

__all__ = ["MetricsRecorder", "Telemetry"]

_SCOPE: Final = "kis_async"
OK: Final = "ok"


class _Stat:
    """Count, sum and maximum of one measured quantity."""

    __slots__ = ("count", "maximum", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.maximum = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.maximum = max(self.maximum, value)

    def as_dict(self, unit: str) -> dict[str, float | int]:
        mean = self.total / self.count if self.count else 0.0
        return {
            "count": self.count,
            f"total_{unit}": round(self.total, 3),
            f"mean_{unit}": round(mean, 3),
            f"max_{unit}": round(self.maximum, 3),
        }


class _Observer(Protocol):
    """What :class:`MetricsRecorder` forwards to when OpenTelemetry is on."""

    def rest_call(
        self, method: str, path: str, tr_id: str | None, *, status: int | None, outcome: str,
        msg_cd: str | None, latency_ms: float,
    ) -> None: ...  # fmt: skip

    def rate_wait(self, seconds: float) -> None: ...

    def lag(self, seconds: float) -> None: ...

    def order(self, outcome: str) -> None: ...

    async def place(self, request: OrderRequest, call: Awaitable[str]) -> str: ...


def order_outcome(exc: BaseException) -> str:
    """The ``kis.order.outcome`` of a placement that raised ``exc``."""
    if isinstance(exc, OrderRejectedError):
        return "rejected"
    if isinstance(exc, OrderStateUnknownError):
        return "unknown"
    if isinstance(exc, InvalidOrderError):
        return "invalid"
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return "error"


def rest_outcome(exc: BaseException) -> tuple[str, str | None]:
    """``(kis.outcome, msg_cd)`` of a REST exchange that raised ``exc``."""
    return type(exc).__name__, getattr(exc, "msg_cd", None)


class MetricsRecorder:
    """The figures a broker measures itself (the rest comes from counters kept anyway).

    The REST transport, the rate-limiter queue and the order placer call it; each call is a
    dictionary update, plus a forward to OpenTelemetry when :class:`Telemetry` is attached.
    """

    __slots__ = ("observer", "orders", "rate_wait", "rest", "stream_lag")

    def __init__(self) -> None:
        self.rest: dict[tuple[str, str], _Stat] = {}
        self.rate_wait = _Stat()
        self.stream_lag = _Stat()
        self.orders: dict[str, int] = {}
        #: The OpenTelemetry bridge, when one is attached.
        self.observer: _Observer | None = None

    def rest_call(
        self,
        method: str,
        path: str,
        tr_id: str | None,
        *,
        status: int | None,
        outcome: str,
        msg_cd: str | None,
        latency_ms: float,
    ) -> None:
        """One HTTP exchange finished (``outcome`` is ``ok`` or an error class name)."""
        key = (tr_id or path, outcome)
        stat = self.rest.get(key)
        if stat is None:
            stat = self.rest[key] = _Stat()
        stat.add(latency_ms)
        observer = self.observer
        if observer is not None:
            observer.rest_call(
                method, path, tr_id, status=status, outcome=outcome, msg_cd=msg_cd,
                latency_ms=latency_ms,
            )  # fmt: skip

    def rate_waited(self, seconds: float) -> None:
        """One pass through the rate limiter took ``seconds``."""
        self.rate_wait.add(seconds)
        observer = self.observer
        if observer is not None:
            observer.rate_wait(seconds)

    def lagged(self, seconds: float) -> None:
        """A sampled stream record reached its consumer ``seconds`` after its frame."""
        self.stream_lag.add(seconds)
        observer = self.observer
        if observer is not None:
            observer.lag(seconds)

    def order(self, outcome: str) -> None:
        """Count one order outcome."""
        self.orders[outcome] = self.orders.get(outcome, 0) + 1
        observer = self.observer
        if observer is not None:
            observer.order(outcome)

    async def place(self, request: OrderRequest, call: Awaitable[str]) -> str:
        """Await the placement ``call``, counting its outcome (inside a span when tracing)."""
        observer = self.observer
        if observer is not None:
            return await observer.place(request, call)
        try:
            order_id = await call
        except BaseException as exc:
            self.order(order_outcome(exc))
            raise
        self.order("placed")
        return order_id

    def snapshot(self) -> dict[str, Any]:
        """REST, rate-limiter and order figures as plain data."""
        rest: dict[str, dict[str, dict[str, float | int]]] = {}
        for (label, outcome), stat in sorted(self.rest.items()):
            rest.setdefault(label, {})[outcome] = stat.as_dict("ms")
        return {
            "rest": rest,
            "rate_limit_wait": self.rate_wait.as_dict("s"),
            "stream_lag": self.stream_lag.as_dict("s"),
            "orders": dict(sorted(self.orders.items())),
        }


class Telemetry:
    """OpenTelemetry export of a broker's metrics and spans (needs the ``otel`` extra).

    Pass it as ``KISBroker(config, telemetry=Telemetry(...))``; one ``Telemetry`` serves one
    broker.

    Args:
        meter_provider: where the instruments are created; None: the global provider
            (``opentelemetry.metrics.get_meter_provider()``).
        tracer_provider: where spans go; None: the global provider.
        traces: False to export metrics only.

    Raises:
        ImportError: ``opentelemetry-api`` is not installed.
    """

    def __init__(
        self,
        *,
        meter_provider: Any = None,
        tracer_provider: Any = None,
        traces: bool = True,
    ) -> None:
        try:
            from opentelemetry import metrics, trace  # noqa: PLC0415
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise ImportError(
                "kis_async.telemetry.Telemetry needs OpenTelemetry: pip install 'kis-async[otel]'"
            ) from exc
        self._meter_provider = meter_provider or metrics.get_meter_provider()
        self._tracer_provider = (tracer_provider or trace.get_tracer_provider()) if traces else None
        self._bound = False

    def __repr__(self) -> str:
        return f"Telemetry(traces={self._tracer_provider is not None}, bound={self._bound})"

    def attach(self, recorder: MetricsRecorder, figures: Callable[[], Mapping[str, Any]]) -> None:
        """Create the instruments and start forwarding ``recorder``'s measurements.

        ``figures`` returns the broker's :meth:`~kis_async.KISBroker.metrics` (read by the
        observable instruments at each collection). Called by the broker.

        Raises:
            ValueError: this object already serves a broker.
        """
        if self._bound:
            raise ValueError("this Telemetry already serves a broker; make one per broker")
        self._bound = True
        recorder.observer = _OtelObserver(
            self._meter_provider, self._tracer_provider, recorder, figures
        )


class _OtelObserver:
    """Creates the instruments and records into them (imports OpenTelemetry)."""

    def __init__(
        self,
        meter_provider: Any,
        tracer_provider: Any,
        recorder: MetricsRecorder,
        figures: Callable[[], Mapping[str, Any]],
    ) -> None:
        from opentelemetry.metrics import Observation  # noqa: PLC0415
        from opentelemetry.trace import Status, StatusCode, use_span  # noqa: PLC0415

        from kis_async import __version__  # noqa: PLC0415

        self._recorder = recorder
        self._figures = figures
        self._observation = Observation
        self._status_error = Status(StatusCode.ERROR)
        self._use_span = use_span
        meter = meter_provider.get_meter(_SCOPE, __version__)
        self._tracer = (
            tracer_provider.get_tracer(_SCOPE, __version__) if tracer_provider is not None else None
        )
        self._rest = meter.create_histogram(
            "kis.rest.duration", unit="ms", description="KIS REST exchange latency"
        )
        self._wait = meter.create_histogram(
            "kis.ratelimit.wait", unit="s", description="time queued in the REST rate limiter"
        )
        self._lag = meter.create_histogram(
            "kis.stream.lag",
            unit="s",
            description="frame-to-consumer lag of sampled stream records",
        )
        self._orders = meter.create_counter("kis.orders", description="order placements by outcome")
        meter.create_observable_counter(
            "kis.token.issuances", [self._tokens], description="access tokens issued"
        )
        meter.create_observable_counter(
            "kis.stream.reconnects", [self._reconnects], description="WebSocket reconnections"
        )
        meter.create_observable_counter(
            "kis.stream.frames", [self._frames], description="WebSocket data frames by TR id"
        )
        meter.create_observable_counter(
            "kis.stream.dropped", [self._dropped], description="records dropped by conflation"
        )
        meter.create_observable_gauge(
            "kis.stream.queue_depth", [self._depth], description="records waiting in consumers"
        )

    # -- synchronous instruments and spans ---------------------------------------------------

    def rest_call(
        self,
        method: str,
        path: str,
        tr_id: str | None,
        *,
        status: int | None,
        outcome: str,
        msg_cd: str | None,
        latency_ms: float,
    ) -> None:
        label = tr_id or path
        self._rest.record(latency_ms, {"kis.tr_id": label, "kis.outcome": outcome})
        tracer = self._tracer
        if tracer is None:
            return
        end = time.time_ns()
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.path": path,
            "kis.tr_id": label,
            "kis.outcome": outcome,
        }
        if status is not None:
            attributes["http.response.status_code"] = status
        if msg_cd:
            attributes["kis.msg_cd"] = msg_cd
        if outcome != OK:
            attributes["error.type"] = outcome
        # Made when the exchange is over (its latency known): the span starts that long ago.
        span = tracer.start_span(
            f"kis.rest {label}",
            start_time=end - int(latency_ms * 1_000_000),
            attributes=attributes,
        )
        if outcome != OK:
            span.set_status(self._status_error)
        span.end(end_time=end)

    def rate_wait(self, seconds: float) -> None:
        self._wait.record(seconds)

    def lag(self, seconds: float) -> None:
        self._lag.record(seconds)

    def order(self, outcome: str) -> None:
        self._orders.add(1, {"kis.order.outcome": outcome})

    async def place(self, request: OrderRequest, call: Awaitable[str]) -> str:
        tracer = self._tracer
        if tracer is None:
            return await self._counted(call, None)
        span = tracer.start_span(
            "kis.order.place",
            attributes={
                "kis.order.side": request.side.name.lower(),
                "kis.order.type": request.order_type.name,
                "kis.order.exchange": request.exchange.name,
                "kis.order.keyed": request.idempotency_key is not None,
            },
        )
        # The placement's REST exchanges (and its task) become children of this span.
        with self._use_span(
            span, end_on_exit=True, record_exception=False, set_status_on_exception=False
        ):
            return await self._counted(call, span)

    async def _counted(self, call: Awaitable[str], span: Any) -> str:
        recorder = self._recorder
        try:
            order_id = await call
        except BaseException as exc:
            outcome = order_outcome(exc)
            recorder.order(outcome)
            if span is not None:
                span.set_attribute("kis.order.outcome", outcome)
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(self._status_error)
            raise
        recorder.order("placed")
        if span is not None:
            span.set_attribute("kis.order.outcome", "placed")
        return order_id

    # -- observable instruments ---------------------------------------------------------------

    def _stream(self) -> Mapping[str, Any]:
        stream: Mapping[str, Any] = self._figures()["stream"]
        return stream

    def _tokens(self, _options: Any) -> Iterable[Any]:
        return [self._observation(self._figures()["tokens_issued"])]

    def _reconnects(self, _options: Any) -> Iterable[Any]:
        return [self._observation(self._stream()["reconnects"])]

    def _frames(self, _options: Any) -> Iterable[Any]:
        by_tr: Mapping[str, int] = self._stream()["frames_by_tr"]
        return [self._observation(n, {"kis.tr_id": tr}) for tr, n in sorted(by_tr.items())]

    def _dropped(self, _options: Any) -> Iterable[Any]:
        stream = self._stream()
        return [
            self._observation(stream["quotes_dropped"], {"kis.stream.kind": "quote"}),
            self._observation(stream["orderbooks_dropped"], {"kis.stream.kind": "orderbook"}),
        ]

    def _depth(self, _options: Any) -> Iterable[Any]:
        return [self._observation(self._stream()["queue_depth"])]
