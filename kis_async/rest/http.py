"""HTTP details of the KIS REST API: headers, envelope decoding, error mapping and paging.

This module is the one boundary where httpx exceptions and KIS failure answers become
:mod:`kis_async.errors` exceptions (chained with ``raise ... from``):

=====================================================  =========================================
what happened                                          raised
=====================================================  =========================================
httpx.ConnectError, ProxyError, UnsupportedProtocol    BrokerConnectionError (request not sent)
httpx.ConnectTimeout, PoolTimeout                      BrokerTimeoutError(request_sent=False)
httpx.ReadTimeout, WriteTimeout, ReadError,            BrokerTimeoutError(request_sent=True)
WriteError, RemoteProtocolError, other transport
errors                                                 (the request may have reached KIS)
body with ``rt_cd`` != "0" (any HTTP status)           errors.classify_api_error(...)
OAuth body ``error_code``/``error_description``        errors.classify_api_error(...)
HTTP >= 400 without either shape                       errors.classify_api_error(...)
EGW00301/EGW00302 on an order call                     BrokerTimeoutError(request_sent=True)
body that is not JSON (or not an object)               ServerError (5xx) / BrokerAPIError
=====================================================  =========================================

KIS sends business errors and EGW00201 with HTTP 500 and sometimes 200, so the body is always
decoded first and ``rt_cd``/``msg_cd`` decide, not the status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

import httpx
import pydantic

from kis_async.config import KISConfig
from kis_async.errors import (
    BrokerAPIError,
    BrokerClosedError,
    BrokerConnectionError,
    BrokerError,
    BrokerTimeoutError,
    ResponseTooLargeError,
    ServerError,
    classify_api_error,
)
from kis_async.traffic import on as traffic_on
from kis_async.traffic import rest_request, rest_response

if TYPE_CHECKING:
    from kis_async.telemetry import MetricsRecorder

__all__ = [
    "DEFAULT_MAX_PAGES",
    "KISResponse",
    "Transport",
    "build_headers",
    "decode_output",
    "first_object",
    "paginate",
]

logger = logging.getLogger("kis_async.rest")

T = TypeVar("T")

#: Pages followed at most by :func:`paginate` before giving up on a looping server.
DEFAULT_MAX_PAGES: Final = 200
JSON_CONTENT_TYPE: Final = "application/json; charset=utf-8"
_MORE_PAGES: Final = frozenset({"F", "M"})
# KIS's own gateway timeouts: the order may or may not have gone through (protocol doc §2.5).
_GATEWAY_TIMEOUT_CODES: Final = frozenset({"EGW00301", "EGW00302"})
_NOT_SENT: Final = (httpx.ConnectError, httpx.ProxyError, httpx.UnsupportedProtocol)
_CONNECT_TIMEOUTS: Final = (httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class KISResponse:
    """A successful KIS answer.

    Attributes:
        status_code: the HTTP status.
        body: the decoded JSON object.
        tr_cont: the ``tr_cont`` response header (``F``/``M`` more pages, ``D``/``E`` last).
        tr_id: the TR id of the call, if any.
    """

    status_code: int
    body: Mapping[str, Any]
    tr_cont: str = ""
    tr_id: str | None = None
    msg_cd: str | None = field(default=None)

    def get(self, key: str) -> Any:
        """A top-level body field, matching the key case-insensitively."""
        return get_ci(self.body, key)


def get_ci(mapping: Mapping[str, Any], key: str) -> Any:
    """``mapping[key]`` looked up case-insensitively (KIS mixes ``ODNO`` and ``odno``)."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for name, value in mapping.items():
        if name.lower() == lowered:
            return value
    return None


def build_headers(
    config: KISConfig,
    *,
    tr_id: str | None = None,
    token: str | None = None,
    tr_cont: str = "",
    hashkey: str | None = None,
) -> dict[str, str]:
    """The KIS request headers (protocol doc §3.1).

    Args:
        config: supplies appkey, appsecret and custtype.
        tr_id: the TR id; omitted for the OAuth endpoints.
        token: the access token; adds ``authorization: Bearer ...``.
        tr_cont: ``""`` on a first call, ``"N"`` for a next page.
        hashkey: the order body's hash (only when ``config.use_hashkey``).
    """
    headers = {
        "content-type": JSON_CONTENT_TYPE,
        "appkey": config.app_key,
        "appsecret": config.app_secret.get_secret_value(),
        "custtype": config.customer_type,
    }
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if tr_id is not None:
        headers["tr_id"] = tr_id
        headers["tr_cont"] = tr_cont
    if hashkey is not None:
        headers["hashkey"] = hashkey
    return headers


def _strip(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _failure(
    status_code: int, body: Mapping[str, Any]
) -> tuple[str | None, str | None, str | None] | None:
    """``(rt_cd, msg_cd, msg)`` when ``body``/``status_code`` is a failure, else None."""
    rt_cd = _strip(get_ci(body, "rt_cd"))
    msg_cd = _strip(get_ci(body, "msg_cd"))
    msg = _strip(get_ci(body, "msg1"))
    error_code = _strip(body.get("error_code"))
    if error_code is not None:
        # OAuth shape (tokenP, Approval, revokeP): {"error_code": ..., "error_description": ...}
        return rt_cd, error_code, _strip(body.get("error_description")) or msg
    if rt_cd is not None and rt_cd != "0":
        return rt_cd, msg_cd, msg
    if status_code >= 400:
        return rt_cd, msg_cd, msg
    return None


class _Progress:
    """How far one request got, from httpcore's ``trace`` events: decides whether a request
    cut off by the deadline may have reached KIS."""

    __slots__ = ("connecting", "sent")

    def __init__(self) -> None:
        self.connecting = False
        self.sent = False

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        if event.endswith("send_request_headers.started"):
            self.sent = True
        elif event.endswith(".connect_tcp.started"):
            self.connecting = True

    @property
    def request_sent(self) -> bool:
        # No event at all: waiting for a pooled connection, or a transport without traces
        # (a mock). Nothing proves the request unsent, so it counts as possibly sent.
        return self.sent or not self.connecting


class Transport:
    """Sends one request and translates everything that can go wrong.

    ``config.timeout`` bounds the whole exchange (connect, send, and every read until the
    last body byte), with httpx's per-phase timeouts (the same value) inside it; a body
    longer than ``config.max_response_bytes`` is abandoned after reading at most that much.

    Args:
        client: the ``httpx.AsyncClient`` (owned by the caller).
        config: base URL, timeout, body cap and credentials for the headers.
        metrics: told the latency and outcome of every exchange (``broker.metrics()``).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: KISConfig,
        *,
        metrics: MetricsRecorder | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self._metrics = metrics
        self._base = config.rest_url
        # Built once: httpx would otherwise build a Timeout from the float on every request.
        self._httpx_timeout = httpx.Timeout(config.timeout)

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        tr_id: str | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        is_order: bool = False,
    ) -> KISResponse:
        """Send one request; return the decoded successful answer.

        Raises:
            BrokerConnectionError: the request was not sent (connect-phase failure).
            BrokerClosedError: the client was closed before or while sending.
            BrokerTimeoutError: timed out; ``request_sent`` tells whether KIS may have it.
            ResponseTooLargeError: the body was longer than ``config.max_response_bytes``.
            BrokerAPIError: KIS answered with a failure (subclass per the error table).
        """
        label = tr_id or path
        tracing = traffic_on()
        if tracing:
            rest_request(
                method, path, tr_id=tr_id, headers=headers, params=params, body=json_body,
                source=self._config,
            )  # fmt: skip
        started = time.perf_counter()
        try:
            status, response_headers, content = await self._exchange(
                method, path, label=label, headers=headers, params=params, json_body=json_body
            )
        except BaseException as exc:
            if tracing:
                rest_response(
                    method,
                    path,
                    tr_id=tr_id,
                    status=None,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    error=type(exc).__name__,
                    source=self._config,
                )
            if self._metrics is not None:
                self._observe(method, path, tr_id, status=None, exc=exc, started=started)
            raise
        latency_ms = (time.perf_counter() - started) * 1000
        body = _json_or_error(content)
        if tracing:
            rest_response(
                method,
                path,
                tr_id=tr_id,
                status=status,
                latency_ms=latency_ms,
                headers=response_headers,
                body=f"<{len(content)} bytes, not JSON>" if isinstance(body, Exception) else body,
                source=self._config,
            )
        if self._metrics is None:
            return self._decode(
                status,
                response_headers,
                body,
                label=label,
                tr_id=tr_id,
                latency_ms=latency_ms,
                is_order=is_order,
            )
        try:
            response = self._decode(
                status,
                response_headers,
                body,
                label=label,
                tr_id=tr_id,
                latency_ms=latency_ms,
                is_order=is_order,
            )
        except BrokerError as exc:
            self._observe(method, path, tr_id, status=status, exc=exc, started=started)
            raise
        self._observe(method, path, tr_id, status=status, exc=None, started=started)
        return response

    def _observe(
        self,
        method: str,
        path: str,
        tr_id: str | None,
        *,
        status: int | None,
        exc: BaseException | None,
        started: float,
    ) -> None:
        """Hand one finished exchange to the metrics recorder."""
        metrics = self._metrics
        if metrics is None:
            return
        latency_ms = (time.perf_counter() - started) * 1000
        if exc is None:
            metrics.rest_call(
                method, path, tr_id, status=status, outcome="ok", msg_cd=None,
                latency_ms=latency_ms,
            )  # fmt: skip
        else:
            msg_cd = exc.msg_cd if isinstance(exc, BrokerAPIError) else None
            metrics.rest_call(
                method, path, tr_id, status=status, outcome=type(exc).__name__, msg_cd=msg_cd,
                latency_ms=latency_ms,
            )  # fmt: skip

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        label: str,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        json_body: Mapping[str, Any] | None,
    ) -> tuple[int, httpx.Headers, bytes]:
        """One HTTP exchange under the whole-request deadline: (status, headers, body)."""
        progress = _Progress()
        timeout = self._config.timeout
        if self._client.is_closed:
            raise BrokerClosedError(
                f"the KIS client was closed before {label} was sent; not sent",
                request_sent=False,
            )
        # httpx copies headers and params into its own objects; only the JSON encoder needs
        # a real dict.
        request = self._client.build_request(
            method,
            self._base + path,
            headers=headers,
            params=params,
            json=json_body if json_body is None or isinstance(json_body, dict) else dict(json_body),
            timeout=self._httpx_timeout,
            extensions={"trace": progress},
        )
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.send(request, stream=True)
                try:
                    content = await self._read_capped(response, label)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            sent = progress.request_sent
            logger.warning(
                "%s: no complete answer within %.1fs; %s",
                label,
                timeout,
                "KIS may have the request" if sent else "not sent",
            )
            raise BrokerTimeoutError(
                f"no complete answer from KIS for {label} within {timeout:g}s; "
                + ("the request may have reached KIS" if sent else "not sent"),
                request_sent=sent,
            ) from exc
        except httpx.TransportError as exc:
            raise self._transport_error(exc, label, progress) from exc
        except RuntimeError as exc:
            # httpx refuses to send on a client closed meanwhile (checked above, but the
            # deadline's await points come between).
            if not self._client.is_closed:
                raise
            raise BrokerClosedError(
                f"the KIS client was closed before {label} was sent; not sent",
                request_sent=False,
            ) from exc
        return response.status_code, response.headers, content

    def _transport_error(
        self, exc: httpx.TransportError, label: str, progress: _Progress
    ) -> BrokerError:
        name = type(exc).__name__
        if self._client.is_closed:
            sent = progress.sent or not isinstance(exc, _NOT_SENT + _CONNECT_TIMEOUTS)
            logger.warning("%s: the KIS client was closed while in flight (%s)", label, name)
            return BrokerClosedError(
                f"the KIS client was closed while {label} was in flight; "
                + ("the request may have reached KIS" if sent else "not sent"),
                request_sent=sent,
            )
        if isinstance(exc, _NOT_SENT):
            logger.warning("%s: connection failed (%s); not sent", label, name)
            return BrokerConnectionError(
                f"could not connect to KIS at {self._base} for {label} ({name}); not sent"
            )
        if isinstance(exc, _CONNECT_TIMEOUTS):
            logger.warning("%s: connect timeout (%s); not sent", label, name)
            return BrokerTimeoutError(
                f"timed out connecting to KIS for {label} ({name}); not sent",
                request_sent=False,
            )
        logger.warning("%s: %s after sending; KIS may have the request", label, name)
        return BrokerTimeoutError(
            f"no answer from KIS for {label} ({name}); the request may have reached KIS",
            request_sent=True,
        )

    async def _read_capped(self, response: httpx.Response, label: str) -> bytes:
        """The body, or :class:`ResponseTooLargeError` after reading at most the cap (plus
        the one network chunk that crossed it)."""
        cap = self._config.max_response_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and declared.isascii() and int(declared) > cap:
            raise _too_large(label, response.status_code, cap, declared=int(declared))
        chunks: list[bytes] = []
        total = 0
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > cap:
                raise _too_large(label, response.status_code, cap, declared=None)
            chunks.append(chunk)
        return b"".join(chunks)

    def _decode(
        self,
        status: int,
        headers: httpx.Headers,
        body: Any,
        *,
        label: str,
        tr_id: str | None,
        latency_ms: float,
        is_order: bool,
    ) -> KISResponse:
        if isinstance(body, Exception):
            logger.warning("%s: HTTP %d with a body that is not JSON", label, status)
            cls = ServerError if status >= 500 else BrokerAPIError
            raise cls(
                f"KIS answered {label} with HTTP {status} and a body that is not JSON",
                status_code=status,
                tr_id=tr_id,
            ) from body
        if not isinstance(body, dict):
            cls = ServerError if status >= 500 else BrokerAPIError
            raise cls(
                f"KIS answered {label} with HTTP {status} and a JSON {type(body).__name__}",
                status_code=status,
                tr_id=tr_id,
            )
        if status < 400 and body.get("rt_cd") == "0" and body.get("error_code") is None:
            # The usual success shape: _failure would find nothing (checked the same way).
            failure = None
        else:
            failure = _failure(status, body)
        msg_cd = failure[1] if failure else _strip(get_ci(body, "msg_cd"))
        logger.debug(
            "%s HTTP %d msg_cd=%s latency=%.1fms", label, status, msg_cd or "-", latency_ms
        )
        if failure is not None:
            rt_cd, code, msg = failure
            logger.warning("%s failed: HTTP %d msg_cd=%s", label, status, code or "-")
            error = classify_api_error(
                status_code=status,
                rt_cd=rt_cd,
                msg_cd=code,
                msg=msg,
                tr_id=tr_id,
                is_order=is_order,
            )
            if is_order and code in _GATEWAY_TIMEOUT_CODES:
                raise BrokerTimeoutError(
                    f"KIS reported a gateway timeout ({code}) for {label}; "
                    "the order may have been booked",
                    request_sent=True,
                ) from error
            raise error
        return KISResponse(
            status_code=status,
            body=body,
            tr_cont=(headers.get("tr_cont") or "").strip().upper(),
            tr_id=tr_id,
            msg_cd=msg_cd,
        )


def _json_or_error(content: bytes) -> Any:
    """The decoded JSON body, or the decoding exception (the caller raises it in context)."""
    try:
        return json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        return exc


def _too_large(label: str, status: int, cap: int, *, declared: int | None) -> ResponseTooLargeError:
    size = f"{declared} bytes" if declared is not None else f"more than {cap} bytes"
    logger.warning("%s: response body of %s is over the cap; abandoned", label, size)
    return ResponseTooLargeError(
        f"KIS answered {label} with a body of {size}, over the {cap}-byte cap "
        "(KISConfig.max_response_bytes); abandoned",
        status_code=status,
    )


def decode_output(parse: Callable[[], T], *, tr_id: str | None, what: str) -> T:
    """Run a response parser, translating a shape mismatch into :class:`BrokerAPIError`.

    Args:
        parse: builds the model(s) from a successful body.
        tr_id: for the error's attributes.
        what: a short description for the message (``"inquire-price output"``).
    """
    try:
        return parse()
    except (pydantic.ValidationError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
        logger.warning("%s: unexpected response shape (%s)", tr_id or what, type(exc).__name__)
        raise BrokerAPIError(
            f"unexpected shape of {what} ({type(exc).__name__})", tr_id=tr_id
        ) from exc


def first_object(value: Any) -> Mapping[str, Any]:
    """An ``output`` that is an object, or a one-element array of one (KIS varies); else {}."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, list) and value and isinstance(value[0], Mapping):
        return value[0]
    return {}


def rows(value: Any) -> list[Mapping[str, Any]]:
    """An ``output`` array of objects (a single object counts as one row; blanks as none)."""
    if isinstance(value, Mapping):
        return [value] if value else []
    if isinstance(value, list):
        return [row for row in value if isinstance(row, Mapping)]
    return []


#: Fetches one page: ``(tr_cont, ctx_area_fk100, ctx_area_nk100) -> response``.
PageFetcher = Callable[[str, str, str], Awaitable[KISResponse]]


async def paginate(fetch: PageFetcher, *, max_pages: int = DEFAULT_MAX_PAGES) -> list[KISResponse]:
    """Follow ``tr_cont`` F/M pages until D/E (protocol doc §3.2).

    The first call sends ``tr_cont ""`` and empty continuation keys; each next call sends
    ``tr_cont "N"`` and the ``ctx_area_fk100``/``ctx_area_nk100`` of the previous answer,
    unchanged (they are space-padded and must be sent back as-is).

    Raises:
        BrokerAPIError: the server still reported more pages after ``max_pages``.
    """
    pages: list[KISResponse] = []
    tr_cont, fk, nk = "", "", ""
    while True:
        page = await fetch(tr_cont, fk, nk)
        pages.append(page)
        if page.tr_cont not in _MORE_PAGES:
            return pages
        if len(pages) >= max_pages:
            raise BrokerAPIError(
                f"KIS kept reporting more pages after {max_pages}; giving up",
                tr_id=page.tr_id,
                status_code=page.status_code,
            )
        tr_cont = "N"
        fk = _ctx(page.get("ctx_area_fk100"))
        nk = _ctx(page.get("ctx_area_nk100"))


def _ctx(value: Any) -> str:
    return "" if value is None else str(value)
