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
the AES key/iv of execution notices never appear; account-number fields (and the account
inside the ``ctx_area_fk100`` paging key) are shown as
:func:`~kis_async.config.mask_account` shows them. :func:`mask_text` applies the same rule
to URLs in text (httpx's request log lines, filtered at import). Each record also carries the masked
fields as ``record.traffic`` (a dict) for structured handlers.

Sinks (:func:`add_sink`) receive the same masked events as the logger, every WebSocket data
frame included (no sampling): a session recording (:mod:`kis_async.recording`) is one. While a
sink is registered the call sites record even with the logger off.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from kis_async.config import mask_account

if TYPE_CHECKING:
    from kis_async.config import KISConfig

__all__ = [
    "ENV_SWITCH",
    "TrafficSink",
    "add_sink",
    "enable_traffic_logging",
    "frame_sample_rate",
    "has_sinks",
    "logger",
    "logging_on",
    "mask",
    "mask_key",
    "mask_text",
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
# The share of WebSocket data frames recorded (process-wide, as the logger is).
_frame_rate = [0.0]

#: A receiver of masked traffic events: ``sink(event, fields)``; it must not block.
TrafficSink = Callable[[str, Mapping[str, Any]], None]
# Registered sinks and the source each one listens to (None: every source).
_sinks: list[tuple[TrafficSink, object]] = []

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
# Paging keys: KIS starts ctx_area_fk100 with the account ("50123456^01^..."), so every
# "^"-separated part of 8 or 10 digits is masked as an account number.
_CONTINUATION_NAMES: Final = frozenset(
    {"ctxareafk100", "ctxareank100", "ctxareafk200", "ctxareank200"}
)
# The same two kinds of field in a URL's query string (httpx logs every request URL).
_ACCOUNT_IN_URL: Final = re.compile(r"(?i)\b(CANO|CTX_AREA_[FN]K[0-9]+)=([0-9]+)")


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
    if norm in _CONTINUATION_NAMES and isinstance(value, str):
        return "^".join(_mask_digits(part) for part in value.split("^"))
    return mask(value)


def _mask_digits(part: str) -> str:
    digits = part.strip()
    if len(digits) in (8, 10) and digits.isascii() and digits.isdigit():
        return mask_account(digits)
    return part


def _mask_url_match(match: re.Match[str]) -> str:
    name, digits = match.group(1), match.group(2)
    if name.upper() == "CANO" or len(digits) >= 8:
        return f"{name}={mask_account(digits)}"
    return match.group(0)


def mask_text(text: str) -> str:
    """``text`` with account numbers in ``CANO=`` and ``CTX_AREA_FK100=`` query fields
    masked (for log lines that print URLs)."""
    return _ACCOUNT_IN_URL.sub(_mask_url_match, text)


class _AccountRedactingFilter(logging.Filter):
    """Masks account numbers in URL query strings of log records (see :func:`mask_text`).

    httpx logs every request URL at INFO on the ``httpx`` logger, and account queries are
    GETs carrying the account number in the query string; this filter is installed once on
    that logger at import.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


def _install_httpx_log_filter() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _AccountRedactingFilter) for f in httpx_logger.filters):
        httpx_logger.addFilter(_AccountRedactingFilter())


_install_httpx_log_filter()


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
    """True when traffic records are being written: the logger is on or a sink is registered."""
    return bool(_sinks) or logger.isEnabledFor(_DEBUG)


def logging_on() -> bool:
    """True when the ``kis_async.traffic`` logger writes records (one level check)."""
    return logger.isEnabledFor(_DEBUG)


def has_sinks() -> bool:
    """True when a sink is registered."""
    return bool(_sinks)


def add_sink(sink: TrafficSink, *, source: object = None) -> Callable[[], None]:
    """Send every masked traffic event to ``sink`` as well; returns a function that removes it.

    The sink is called synchronously from the request and receive paths with the event name
    and its masked fields; it must not block (buffer and write elsewhere). An exception in a
    sink is logged and never fails the call that produced the event.

    Args:
        sink: the receiver.
        source: only events from this source (a broker's :class:`KISConfig`: its REST
            transport and WebSocket session tag their events with it); None for all.
    """
    entry = (sink, source)
    _sinks.append(entry)

    def remove() -> None:
        if entry in _sinks:
            _sinks.remove(entry)

    return remove


def _env_enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "").strip().lower() in _TRUE


def enable_traffic_logging(config: KISConfig | None = None) -> bool:
    """Switch traffic logging on when ``config.log_traffic`` or ``KIS_LOG_TRAFFIC`` says so.

    It is never switched off here: another broker (or the application) may want it.

    Returns:
        True when traffic logging is on afterwards.
    """
    wanted = _env_enabled() or (config is not None and config.log_traffic)
    if wanted:
        if not on():
            logger.setLevel(_DEBUG)
        if config is not None:
            _frame_rate[0] = max(_frame_rate[0], config.log_traffic_frames)
    return on()


def frame_sample_rate() -> float:
    """The share of WebSocket data frames recorded while traffic logging is on (0.0-1.0)."""
    return _frame_rate[0]


def _text(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    except (RecursionError, ValueError):
        return "<nested too deep>"
    if len(text) > _MAX_TEXT:
        return f"{text[:_MAX_TEXT]}... ({len(text)} chars)"
    return text


def record(
    event: str, fields: Mapping[str, Any], *, log: bool = True, source: object = None
) -> None:
    """Write one DEBUG record of ``event`` with ``fields`` masked and hand it to every sink
    listening to ``source`` (callers check :func:`on`); ``log=False`` hands it to the sinks
    only."""
    try:
        masked = mask(fields)
    except RecursionError:
        # A hostile answer nested deeper than the stack: never let a log record fail a call.
        masked = dict.fromkeys(fields, "<nested too deep>")
    if log and logger.isEnabledFor(_DEBUG):
        shown = " ".join(
            f"{name}={_text(item)}" for name, item in masked.items() if item is not None
        )
        logger.debug("%s %s", event, shown, extra={"traffic": {"event": event, **masked}})
    for sink, wanted in tuple(_sinks):
        if wanted is not None and wanted is not source:
            continue
        try:
            sink(event, masked)
        except Exception:
            logging.getLogger("kis_async").warning("a traffic sink failed", exc_info=True)


def rest_request(
    method: str,
    path: str,
    *,
    tr_id: str | None,
    headers: Mapping[str, str],
    params: Mapping[str, Any] | None,
    body: Any,
    source: object = None,
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
        source=source,
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
    source: object = None,
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
        source=source,
    )
