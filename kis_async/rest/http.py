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

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import httpx
import pydantic

from kis_async.config import KISConfig
from kis_async.errors import (
    BrokerAPIError,
    BrokerConnectionError,
    BrokerTimeoutError,
    ServerError,
    classify_api_error,
)

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


_CANO_IN_URL: Final = re.compile(r"(?i)(CANO=)[0-9]+")


class _AccountRedactingFilter(logging.Filter):
    """Masks ``CANO=<digits>`` in httpx's request log lines.

    Account queries are GETs that carry the account number in the query string, and httpx
    logs every request URL at INFO on the ``httpx`` logger. The account number must never
    reach a log, so this filter (installed once on that logger) rewrites such records.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        if _CANO_IN_URL.search(message):
            record.msg = _CANO_IN_URL.sub(r"\1********", message)
            record.args = None
        return True


def _install_httpx_log_filter() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _AccountRedactingFilter) for f in httpx_logger.filters):
        httpx_logger.addFilter(_AccountRedactingFilter())


_install_httpx_log_filter()


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


class Transport:
    """Sends one request and translates everything that can go wrong.

    Args:
        client: the ``httpx.AsyncClient`` (owned by the caller).
        config: base URL, timeout and credentials for the headers.
    """

    def __init__(self, client: httpx.AsyncClient, config: KISConfig) -> None:
        self._client = client
        self._config = config
        self._base = config.rest_url

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
            BrokerTimeoutError: timed out; ``request_sent`` tells whether KIS may have it.
            BrokerAPIError: KIS answered with a failure (subclass per the error table).
        """
        label = tr_id or path
        started = time.perf_counter()
        try:
            response = await self._client.request(
                method,
                self._base + path,
                headers=dict(headers),
                params=dict(params) if params is not None else None,
                json=dict(json_body) if json_body is not None else None,
                timeout=self._config.timeout,
            )
        except _NOT_SENT as exc:
            logger.warning("%s: connection failed (%s); not sent", label, type(exc).__name__)
            raise BrokerConnectionError(
                f"could not connect to KIS at {self._base} for {label} "
                f"({type(exc).__name__}); not sent"
            ) from exc
        except _CONNECT_TIMEOUTS as exc:
            logger.warning("%s: connect timeout (%s); not sent", label, type(exc).__name__)
            raise BrokerTimeoutError(
                f"timed out connecting to KIS for {label} ({type(exc).__name__}); not sent",
                request_sent=False,
            ) from exc
        except httpx.TransportError as exc:
            logger.warning(
                "%s: %s after sending; KIS may have the request", label, type(exc).__name__
            )
            raise BrokerTimeoutError(
                f"no answer from KIS for {label} ({type(exc).__name__}); "
                "the request may have reached KIS",
                request_sent=True,
            ) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        return self._decode(
            response, label=label, tr_id=tr_id, latency_ms=latency_ms, is_order=is_order
        )

    def _decode(
        self,
        response: httpx.Response,
        *,
        label: str,
        tr_id: str | None,
        latency_ms: float,
        is_order: bool,
    ) -> KISResponse:
        status = response.status_code
        try:
            body: Any = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            logger.warning("%s: HTTP %d with a body that is not JSON", label, status)
            cls = ServerError if status >= 500 else BrokerAPIError
            raise cls(
                f"KIS answered {label} with HTTP {status} and a body that is not JSON",
                status_code=status,
                tr_id=tr_id,
            ) from exc
        if not isinstance(body, dict):
            cls = ServerError if status >= 500 else BrokerAPIError
            raise cls(
                f"KIS answered {label} with HTTP {status} and a JSON {type(body).__name__}",
                status_code=status,
                tr_id=tr_id,
            )
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
            tr_cont=(response.headers.get("tr_cont") or "").strip().upper(),
            tr_id=tr_id,
            msg_cd=msg_cd,
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
