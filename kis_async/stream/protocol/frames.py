"""Control messages, frame classification, acks and PINGPONG (protocol doc §6)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, NamedTuple

from kis_async.models.market import Market

TR_QUOTE: Final = "H0STCNT0"
TR_QUOTE_NXT: Final = "H0NXCNT0"
TR_QUOTE_UNIFIED: Final = "H0UNCNT0"
TR_ORDERBOOK: Final = "H0STASP0"
TR_ORDERBOOK_NXT: Final = "H0NXASP0"
TR_ORDERBOOK_UNIFIED: Final = "H0UNASP0"
#: The trade and order-book TR of each market (protocol doc §12): KRX H0ST*, NXT H0NX*,
#: 통합 H0UN*. The tr_key is the stock code on all six.
QUOTE_TR_IDS: Final[Mapping[Market, str]] = {
    Market.KRX: TR_QUOTE,
    Market.NXT: TR_QUOTE_NXT,
    Market.UNIFIED: TR_QUOTE_UNIFIED,
}
ORDERBOOK_TR_IDS: Final[Mapping[Market, str]] = {
    Market.KRX: TR_ORDERBOOK,
    Market.NXT: TR_ORDERBOOK_NXT,
    Market.UNIFIED: TR_ORDERBOOK_UNIFIED,
}
TR_NOTICE_LIVE: Final = "H0STCNI0"
TR_NOTICE_PAPER: Final = "H0STCNI9"
NOTICE_TR_IDS: Final = frozenset({TR_NOTICE_LIVE, TR_NOTICE_PAPER})
PINGPONG: Final = "PINGPONG"

QUOTE_MIN_FIELDS: Final = 46
ORDERBOOK_MIN_FIELDS: Final = 59
NOTICE_MIN_FIELDS: Final = 23


class FrameError(ValueError):
    """A frame that does not follow the protocol (counted and logged, never fatal)."""


# -- client messages ------------------------------------------------------------------------


def _message(approval_key: str, tr_type: str, tr_id: str, tr_key: str, customer_type: str) -> str:
    return json.dumps(
        {
            "header": {
                "approval_key": approval_key,
                "custtype": customer_type,
                "tr_type": tr_type,
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def subscribe_message(
    approval_key: str, tr_id: str, tr_key: str, *, customer_type: str = "P"
) -> str:
    """The registration (등록) message: ``tr_type`` ``"1"``."""
    return _message(approval_key, "1", tr_id, tr_key, customer_type)


def unsubscribe_message(
    approval_key: str, tr_id: str, tr_key: str, *, customer_type: str = "P"
) -> str:
    """The removal (해제) message.

    Some official docstrings say ``"0"``; the official code and the portal send ``"2"``, and
    so do we (protocol doc §6.2).
    """
    return _message(approval_key, "2", tr_id, tr_key, customer_type)


# -- server frames ----------------------------------------------------------------------------


class DataFrame(NamedTuple):
    """A data frame ``<flag>|<tr_id>|<count>|<payload>`` (a named tuple: cheap to build).

    Attributes:
        encrypted: flag ``1`` (payload is base64 AES ciphertext).
        tr_id: the real-time TR id.
        record_count: the number of records in the payload.
        payload: the ``^``-separated fields (or ciphertext).
    """

    encrypted: bool
    tr_id: str
    record_count: int
    payload: str


@dataclass(frozen=True, slots=True)
class PingPong:
    """The server's heartbeat; the client echoes ``text`` back unchanged."""

    text: str


class AckStatus(StrEnum):
    """What an ack means for the registration it answers."""

    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    ALREADY_SUBSCRIBED = "already_subscribed"
    NOT_SUBSCRIBED = "not_subscribed"
    FAILED = "failed"


#: Every ack code of protocol doc §6.3 and what it means. OPSP999x (JSON parse errors) are
#: matched by prefix.
ACK_CODES: Final[dict[str, tuple[AckStatus, str]]] = {
    "OPSP0000": (AckStatus.SUBSCRIBED, "subscribe success"),
    "OPSP0001": (AckStatus.UNSUBSCRIBED, "unsubscribe success"),
    "OPSP0002": (AckStatus.ALREADY_SUBSCRIBED, "already subscribed"),
    "OPSP0003": (AckStatus.NOT_SUBSCRIBED, "unsubscribe error: not found"),
    "OPSP0007": (AckStatus.FAILED, "subscribe internal error"),
    "OPSP0008": (AckStatus.FAILED, "max subscriptions exceeded"),
    "OPSP0009": (AckStatus.FAILED, "subscribe error: mci send failed"),
    # A "warning" per the docs; no rt_cd is documented. We cannot tell whether the
    # registration took effect, so it counts as a failure.
    "OPSP0010": (AckStatus.FAILED, "invalid appkey warning"),
    "OPSP0011": (AckStatus.FAILED, "invalid approval key"),
    "OPSP8991": (AckStatus.FAILED, "invalid tr_id"),
    "OPSP8992": (AckStatus.FAILED, "invalid tr_key"),
    "OPSP8996": (AckStatus.FAILED, "app key already in use by another session"),
    "OPSP8997": (AckStatus.FAILED, "invalid tr_type"),
    "OPSP8998": (AckStatus.FAILED, "invalid custtype"),
}


@dataclass(frozen=True, slots=True)
class Ack:
    """The server's JSON answer to a subscribe or unsubscribe message.

    Attributes:
        tr_id: the TR id from the header (``"(null)"`` for OPSP8996).
        tr_key: the tr_key from the header, if any.
        encrypted: header ``encrypt`` is ``"Y"``.
        rt_cd: ``"0"`` success; ``"1"``/``"9"`` failure.
        msg_cd: ``OPSP....``.
        msg: ``msg1``, stripped.
        key: AES key from ``output.key`` (32 chars), when present.
        iv: AES iv from ``output.iv`` (16 chars), when present.
    """

    tr_id: str
    tr_key: str | None
    encrypted: bool
    rt_cd: str | None
    msg_cd: str | None
    msg: str | None
    key: str | None
    iv: str | None

    @property
    def status(self) -> AckStatus:
        """The meaning of the ack (every code of protocol doc §6.3; unknown codes by rt_cd)."""
        code = self.msg_cd or ""
        known = ACK_CODES.get(code)
        if known is not None:
            status = known[0]
            # A minority fixture pairs OPSP0001 with "ALREADY IN SUBSCRIBE" (§6.3 [CONFLICT]).
            if status is AckStatus.UNSUBSCRIBED and "ALREADY IN SUBSCRIBE" in (self.msg or ""):
                return AckStatus.ALREADY_SUBSCRIBED
            return status
        if code.startswith("OPSP999"):
            return AckStatus.FAILED
        if self.rt_cd == "0":
            message = (self.msg or "").upper()
            return AckStatus.UNSUBSCRIBED if "UNSUBSCRIBE" in message else AckStatus.SUBSCRIBED
        return AckStatus.FAILED

    @property
    def ok(self) -> bool:
        """True for every status except FAILED."""
        return self.status is not AckStatus.FAILED

    @property
    def description(self) -> str:
        """A readable meaning of the code."""
        code = self.msg_cd or ""
        known = ACK_CODES.get(code)
        if known is not None:
            return known[1]
        if code.startswith("OPSP999"):
            return "JSON parse error"
        return self.msg or "unknown ack"


def is_pingpong(text: str) -> bool:
    """Cheap test for the PINGPONG heartbeat (a JSON frame whose header tr_id is PINGPONG)."""
    return text[:1] == "{" and PINGPONG in text and isinstance(_control(text), PingPong)


def parse_frame(text: str) -> DataFrame | Ack | PingPong:
    """Classify one server text frame.

    Data frames start with ``0``/``1``; JSON frames (acks, PINGPONG) with ``{``.

    Raises:
        FrameError: anything else, or a frame whose parts do not parse.
    """
    first = text[:1]
    if first in {"0", "1"}:
        parts = text.split("|", 3)
        if len(parts) != 4:
            raise FrameError("data frame without 4 '|'-separated parts")
        count_text = parts[2]
        if not count_text.isdigit() or not count_text.isascii():
            raise FrameError("data frame with a non-numeric record count")
        tr_id = parts[1]
        if not tr_id:
            raise FrameError("data frame without a TR id")
        return DataFrame(first == "1", tr_id, int(count_text), parts[3])
    if first == "{":
        return _control(text)
    raise FrameError("frame is neither data nor JSON")


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _control(text: str) -> Ack | PingPong:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FrameError("JSON frame does not parse") from exc
    if not isinstance(doc, dict):
        raise FrameError("JSON frame is not an object")
    header = doc.get("header")
    header = header if isinstance(header, dict) else {}
    tr_id = _str_or_none(header.get("tr_id"))
    if tr_id == PINGPONG:
        return PingPong(text)
    body = doc.get("body")
    if not isinstance(body, dict):
        raise FrameError("JSON frame without a body")
    output = body.get("output")
    output = output if isinstance(output, dict) else {}
    msg_cd = _str_or_none(body.get("msg_cd"))
    rt_cd = _str_or_none(body.get("rt_cd"))
    if msg_cd is None and rt_cd is None:
        raise FrameError("JSON frame is neither an ack nor PINGPONG")
    return Ack(
        tr_id=tr_id or "",
        tr_key=_str_or_none(header.get("tr_key")),
        encrypted=_str_or_none(header.get("encrypt")) == "Y",
        rt_cd=rt_cd,
        msg_cd=msg_cd,
        msg=_str_or_none(body.get("msg1")),
        key=_str_or_none(output.get("key")),
        iv=_str_or_none(output.get("iv")),
    )
