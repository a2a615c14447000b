"""Masked traffic logging (spec REQ-OP-003) and the one masking implementation.

The ``kis_async.traffic`` logger records, at DEBUG, one line per REST request and response
and per WebSocket control message. It is silent unless switched on, by
``KISConfig(log_traffic=True)``, by ``KIS_LOG_TRAFFIC=1`` in the environment, or by setting
the logger's level to DEBUG yourself. Its level is pinned to INFO at import so that a
DEBUG level on the root or ``kis_async`` logger does not switch it on by accident. The
switch is process-wide (the logger is); with it off, each call site costs one
``isEnabledFor`` check.

Every value logged is masked first by :func:`mask`, at any depth, by field name
(case-insensitive, ``-``/``_`` ignored): credentials, tokens, approval keys, hashkeys and
the AES key/iv of execution notices never appear; account-number fields are shown as
:func:`~kis_async.config.mask_account` shows them. Each record also carries the masked
fields as ``record.traffic`` (a dict) for structured handlers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from kis_async.config import mask_account

if TYPE_CHECKING:
    from kis_async.config import KISConfig

__all__ = [
    "ENV_SWITCH",
    "enable_traffic_logging",
    "logger",
    "mask",
    "mask_key",
    "on",
    "record",
    "rest_request",
    "rest_response",
]

logger = logging.getLogger("kis_async.traffic")
logger.setLevel(logging.INFO)

#: The environment variable that switches traffic logging on (``1``, ``true``, ``yes``, ``on``).
ENV_SWITCH: Final = "KIS_LOG_TRAFFIC"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_DEBUG: Final = logging.DEBUG
_HIDDEN: Final = "********"
_MAX_TEXT: Final = 2000

# Field names (lower case, without "-" and "_") whose values are secrets. ``token`` is the
# field of revokeP, ``hash`` the answer of /uapi/hashkey, ``key``/``iv`` the AES key of
# execution notices in a WebSocket ack.
_SECRET_NAMES: Final = frozenset(
    {
        "appsecret",
        "secretkey",
        "authorization",
        "accesstoken",
        "token",
        "hashkey",
        "hash",
        "key",
        "iv",
    }
)
# Shown as their first characters, as everywhere else in the SDK's logs.
_APP_KEY_NAMES: Final = frozenset({"appkey"})
_APPROVAL_NAMES: Final = frozenset({"approvalkey"})
# Account numbers: CANO (8 digits) and the fields that carry a whole account number.
_ACCOUNT_NAMES: Final = frozenset({"cano", "acntno", "accountid", "acctno", "custid"})


def mask_key(value: str) -> str:
    """First 8 characters plus ``...``: the only form in which a key may be logged."""
    return value[:8] + "..."


def _norm(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def _mask_field(name: str, value: Any) -> Any:
    norm = _norm(name)
    if norm in _SECRET_NAMES:
        return _HIDDEN if value not in (None, "") else value
    if norm in _APP_KEY_NAMES:
        return str(value)[:4] + "..." if value else value
    if norm in _APPROVAL_NAMES:
        return mask_key(str(value)) if value else value
    if norm in _ACCOUNT_NAMES:
        return mask_account(str(value)) if value else value
    return mask(value)


def mask(value: Any) -> Any:
    """A copy of ``value`` with every secret field masked, at any depth.

    Mappings (dicts, httpx headers) are walked by field name, lists and tuples element by
    element; other values are returned unchanged.
    """
    if isinstance(value, Mapping):
        return {str(name): _mask_field(str(name), item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask(item) for item in value]
    return value


def on() -> bool:
    """True when traffic records are being written (one level check)."""
    return logger.isEnabledFor(_DEBUG)


def _env_enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "").strip().lower() in _TRUE


def enable_traffic_logging(config: KISConfig | None = None) -> bool:
    """Switch traffic logging on when ``config.log_traffic`` or ``KIS_LOG_TRAFFIC`` says so.

    It is never switched off here: another broker (or the application) may want it.

    Returns:
        True when traffic logging is on afterwards.
    """
    wanted = _env_enabled() or (config is not None and config.log_traffic)
    if wanted and not on():
        logger.setLevel(_DEBUG)
    return on()


def _text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    if len(text) > _MAX_TEXT:
        return f"{text[:_MAX_TEXT]}... ({len(text)} chars)"
    return text


def record(event: str, fields: Mapping[str, Any]) -> None:
    """Write one DEBUG record of ``event`` with ``fields`` masked (callers check :func:`on`)."""
    masked = mask(fields)
    shown = " ".join(f"{name}={_text(item)}" for name, item in masked.items() if item is not None)
    logger.debug("%s %s", event, shown, extra={"traffic": {"event": event, **masked}})


def rest_request(
    method: str,
    path: str,
    *,
    tr_id: str | None,
    headers: Mapping[str, str],
    params: Mapping[str, Any] | None,
    body: Any,
) -> None:
    """The record of one REST request (method, path, tr_id, headers, query, JSON body)."""
    record(
        "rest.request",
        {
            "method": method,
            "path": path,
            "tr_id": tr_id,
            "headers": headers,
            "query": params,
            "body": body,
        },
    )


def rest_response(
    method: str,
    path: str,
    *,
    tr_id: str | None,
    status: int | None,
    latency_ms: float,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    error: str | None = None,
) -> None:
    """The record of one REST response (status, latency, headers, JSON body) or failure."""
    record(
        "rest.response",
        {
            "method": method,
            "path": path,
            "tr_id": tr_id,
            "status": status,
            "latency_ms": round(latency_ms, 1),
            "headers": dict(headers) if headers is not None else None,
            "body": body,
            "error": error,
        },
    )
