"""Traffic records of the WebSocket session (see :mod:`kis_async.traffic`).

The session calls :func:`log_frame` for every text frame it sends or receives while the
``kis_async.traffic`` logger is on. Control messages (subscribe, unsubscribe, acks,
PINGPONG) are always recorded, masked: the approval key, the AES key and iv of execution
notices, and the HTS id a notice registration carries as its ``tr_key``. Data frames are
logged at the sampling rate of ``KISConfig.log_traffic_frames`` and handed to traffic sinks
(a session recording) every one, as TR id, record count and payload; the payload of an
execution notice (it carries the account) or of any encrypted frame is never shown, only its
length.
"""

from __future__ import annotations

import json
from typing import Any, Final

from kis_async.stream.protocol import (
    NOTICE_TR_IDS,
    PINGPONG,
    DataFrame,
    FrameError,
    parse_frame,
)
from kis_async.traffic import frame_sample_rate, has_sinks, logging_on, mask, record

__all__ = ["log_frame"]

_HTS_ID: Final = "<hts id>"
_ACTIONS: Final = {"1": "subscribe", "2": "unsubscribe", "0": "unsubscribe"}
_sampled = [0.0]


def log_frame(direction: str, text: str, *, source: object = None) -> None:
    """Record one frame sent (``"send"``) or received (``"recv"``), masked; ``source`` tags
    it for the traffic sinks that listen to one broker."""
    if text[:1] == "{":
        _control(direction, text, source)
        return
    logged = logging_on() and _sample()
    if not logged and not has_sinks():
        return
    try:
        frame = parse_frame(text)
    except FrameError:
        record(
            f"ws.{direction}.data",
            {"frame": f"<{len(text)} chars, malformed>"},
            log=logged,
            source=source,
        )
        return
    if isinstance(frame, DataFrame):
        hidden = frame.encrypted or frame.tr_id in NOTICE_TR_IDS
        payload = f"<{len(frame.payload)} chars>" if hidden else frame.payload
        record(
            f"ws.{direction}.data",
            {
                "tr_id": frame.tr_id,
                "encrypted": frame.encrypted,
                "records": frame.record_count,
                "payload": payload,
            },
            log=logged,
            source=source,
        )


def _sample() -> bool:
    """True for the share of data frames the sampling rate asks to be logged."""
    rate = frame_sample_rate()
    if rate <= 0.0:
        return False
    _sampled[0] += rate
    if _sampled[0] < 1.0:
        return False
    _sampled[0] -= 1.0
    return True


def _control(direction: str, text: str, source: object) -> None:
    try:
        doc: Any = json.loads(text)
    except (ValueError, RecursionError):
        record(f"ws.{direction}", {"frame": f"<{len(text)} chars, not JSON>"}, source=source)
        return
    if not isinstance(doc, dict):
        record(f"ws.{direction}", {"frame": f"<JSON {type(doc).__name__}>"}, source=source)
        return
    header = _section(doc, "header")
    body = _section(doc, "body")
    tr_id = header.get("tr_id")
    if tr_id == PINGPONG:
        kind = "pingpong"
    elif direction == "send":
        kind = _ACTIONS.get(str(header.get("tr_type")), "message")
    else:
        kind = "ack" if "msg_cd" in body or "rt_cd" in body else "message"
    masked = mask(doc)
    inner = _section(body, "input")
    if tr_id in NOTICE_TR_IDS or inner.get("tr_id") in NOTICE_TR_IDS:
        _hide_hts_id(masked)
    record(f"ws.{direction}.{kind}", {"frame": masked}, source=source)


def _section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name)
    return value if isinstance(value, dict) else {}


def _hide_hts_id(doc: dict[str, Any]) -> None:
    """A notice registration's ``tr_key`` is the HTS id: shown as a placeholder."""
    header = doc.get("header")
    if isinstance(header, dict) and header.get("tr_key"):
        header["tr_key"] = _HTS_ID
    body = doc.get("body")
    inner = body.get("input") if isinstance(body, dict) else None
    if isinstance(inner, dict) and inner.get("tr_key"):
        inner["tr_key"] = _HTS_ID
