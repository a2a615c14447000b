"""The KIS WebSocket wire protocol, sans I/O (protocol doc §6-7).

Nothing here touches a socket or the event loop; every function maps text to values or
values to text, so it is tested against recorded frames and benchmarked in isolation.

Client to server::

    subscribe_message(approval_key, tr_id, tr_key, customer_type="P") -> str
    unsubscribe_message(approval_key, tr_id, tr_key, customer_type="P") -> str

Server to client: :func:`parse_frame` classifies a text frame::

    frame = parse_frame(text)      # DataFrame | Ack | PingPong, or raises FrameError

Decoders (what the benchmarks should call; each returns one value per record of the frame)::

    decode_quotes(frame) -> list[Quote]              # H0STCNT0 / H0NXCNT0 / H0UNCNT0
    decode_orderbooks(frame) -> list[OrderBook]      # H0STASP0 / H0NXASP0 / H0UNASP0
    decode_executions(frame, key, iv) -> list[Execution]         # H0STCNI0 / H0STCNI9
    decrypt_payload(payload, key, iv) -> str                     # AES-256-CBC + PKCS7
    decode_execution_plaintext(text) -> list[Execution]          # an already decrypted payload

Per record a decoder splits once, checks the record's shape and the fields that can fail
(symbol, price, order id), and wraps the split list; the remaining fields are converted when
read (see :mod:`kis_async.models.stream`). A malformed frame raises :class:`FrameError`; no
other exception escapes :func:`parse_frame` or a decoder.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import partial
from typing import Any, ClassVar, Final, NamedTuple

from kis_async.models.common import KST
from kis_async.models.market import Market, OrderBook, PriceLevel, Session
from kis_async.models.orders import Exchange, OrderType, Side
from kis_async.models.stream import (
    _DEC_CACHE,
    _TIME_CACHE,
    _UNSET,
    Execution,
    ExecutionKind,
    Quote,
    _clock,
    _dec,
    _time_miss,
)
from kis_async.models.stream import _int as _int_or_none

__all__ = [
    "ACK_CODES",
    "BOOK_LAYOUTS",
    "DECODERS",
    "MARKET_CLS_SESSIONS",
    "NOTICE_FIELD_NAMES_23",
    "NOTICE_FIELD_NAMES_26",
    "NOTICE_TR_IDS",
    "ORDERBOOK_FIELD_NAMES",
    "ORDERBOOK_TR_IDS",
    "ORD_EXG_GB",
    "PINGPONG",
    "QUOTE_FIELD_NAMES",
    "QUOTE_FIELD_NAMES_NX",
    "QUOTE_TR_IDS",
    "TR_NOTICE_LIVE",
    "TR_NOTICE_PAPER",
    "TR_ORDERBOOK",
    "TR_ORDERBOOK_NXT",
    "TR_ORDERBOOK_UNIFIED",
    "TR_QUOTE",
    "TR_QUOTE_NXT",
    "TR_QUOTE_UNIFIED",
    "Ack",
    "AckStatus",
    "BookLayout",
    "DataFrame",
    "FrameError",
    "PingPong",
    "RawFields",
    "RecordDecoder",
    "decode_execution_plaintext",
    "decode_executions",
    "decode_orderbooks",
    "decode_quotes",
    "decrypt_payload",
    "encrypt_payload",
    "is_pingpong",
    "parse_frame",
    "subscribe_message",
    "unsubscribe_message",
]

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


_day_cache: list[Any] = [0.0, date(1970, 1, 1)]


def _today() -> date:
    """Today in KST, recomputed only when the cached day is over (cheap per frame)."""
    now = time.time()
    if now >= _day_cache[0]:
        current = datetime.now(KST)
        midnight = current.replace(hour=0, minute=0, second=0, microsecond=0)
        _day_cache[0] = midnight.timestamp() + 86_400.0
        _day_cache[1] = current.date()
    return _day_cache[1]  # type: ignore[no-any-return]


_MISSING: Final[Any] = object()
_DAY_TIMES: dict[tuple[date | None, str], datetime | None] = {}


def _day_time(day: date | None, hhmmss: str) -> datetime | None:
    """``HHMMSS`` on ``day`` as an aware KST datetime, cached (records of a second repeat it)."""
    key = (day, hhmmss)
    value = _DAY_TIMES.get(key, _MISSING)
    if value is _MISSING:
        value = _clock(day, hhmmss)
        if day is None:
            return value  # "today" moves: not cached
        if len(_DAY_TIMES) >= 65_536:
            _DAY_TIMES.clear()
        _DAY_TIMES[key] = value
    return value  # type: ignore[no-any-return]


# -- record layouts (protocol doc §7): field names, and the typed views over a split record --


class RawFields(Mapping[str, str]):
    """A read-only view of one record's fields by KIS name, over the split frame.

    Fields past the known layout (KIS appends fields from time to time) are named
    ``FIELD<n>`` with ``n`` counted from 1.
    """

    __slots__ = ("_fields", "_index", "_length", "_names", "_start")

    def __init__(
        self,
        names: tuple[str, ...],
        index: Mapping[str, int],
        fields: list[str],
        start: int,
        length: int,
    ) -> None:
        self._names = names
        self._index = index
        self._fields = fields
        self._start = start
        self._length = length

    def _name(self, i: int) -> str:
        return self._names[i] if i < len(self._names) else f"FIELD{i + 1}"

    def __getitem__(self, name: str) -> str:
        i = self._index.get(name)
        if i is None and name.startswith("FIELD") and name[5:].isdigit():
            i = int(name[5:]) - 1
            if i < len(self._names):
                i = None
        if i is None or i < 0 or i >= self._length:
            raise KeyError(name)
        return self._fields[self._start + i]

    def __iter__(self) -> Iterator[str]:
        return (self._name(i) for i in range(self._length))

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"RawFields({dict(self)!r})"


# -- Quote (H0STCNT0) ----------------------------------------------------------------------

#: H0STCNT0 field names in order (protocol doc §7.1); the 47th was added 2026-09-14.
QUOTE_FIELD_NAMES: Final = (
    "MKSC_SHRN_ISCD",
    "STCK_CNTG_HOUR",
    "STCK_PRPR",
    "PRDY_VRSS_SIGN",
    "PRDY_VRSS",
    "PRDY_CTRT",
    "WGHN_AVRG_STCK_PRC",
    "STCK_OPRC",
    "STCK_HGPR",
    "STCK_LWPR",
    "ASKP1",
    "BIDP1",
    "CNTG_VOL",
    "ACML_VOL",
    "ACML_TR_PBMN",
    "SELN_CNTG_CSNU",
    "SHNU_CNTG_CSNU",
    "NTBY_CNTG_CSNU",
    "CTTR",
    "SELN_CNTG_SMTN",
    "SHNU_CNTG_SMTN",
    "CCLD_DVSN",
    "SHNU_RATE",
    "PRDY_VOL_VRSS_ACML_VOL_RATE",
    "OPRC_HOUR",
    "OPRC_VRSS_PRPR_SIGN",
    "OPRC_VRSS_PRPR",
    "HGPR_HOUR",
    "HGPR_VRSS_PRPR_SIGN",
    "HGPR_VRSS_PRPR",
    "LWPR_HOUR",
    "LWPR_VRSS_PRPR_SIGN",
    "LWPR_VRSS_PRPR",
    "BSOP_DATE",
    "NEW_MKOP_CLS_CODE",
    "TRHT_YN",
    "ASKP_RSQN1",
    "BIDP_RSQN1",
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
    "VOL_TNRT",
    "PRDY_SMNS_HOUR_ACML_VOL",
    "PRDY_SMNS_HOUR_ACML_VOL_RATE",
    "HOUR_CLS_CODE",
    "MRKT_TRTM_CLS_CODE",
    "VI_STND_PRC",
    "MARKET_CLS_CODE",
)
_QUOTE_INDEX: Final = {name: i for i, name in enumerate(QUOTE_FIELD_NAMES)}
#: H0NXCNT0 / H0UNCNT0 share the positions; field 22 is named CNTG_CLS_CODE there (§7.1).
#: [CONFLICT §12] OTA lists 46 fields, kis-trader 47 (+ MARKET_CLS_CODE): both decode, and
#: fields past either are tolerated.
QUOTE_FIELD_NAMES_NX: Final = (*QUOTE_FIELD_NAMES[:21], "CNTG_CLS_CODE", *QUOTE_FIELD_NAMES[22:])
_QUOTE_INDEX_NX: Final = {name: i for i, name in enumerate(QUOTE_FIELD_NAMES_NX)}
#: MARKET_CLS_CODE (protocol doc §7.1: 1 pre, 2 regular, 3 after, 5 closing). "5" is read as
#: the closing call auction (장마감 동시호가), the only "closing" session the code has room for
#: beside 3 (after-market, which takes the after-hours closing-price trades).
MARKET_CLS_SESSIONS: Final[Mapping[str, Session]] = {
    "1": Session.PRE_MARKET,
    "2": Session.REGULAR,
    "3": Session.AFTER_MARKET,
    "5": Session.CLOSING_AUCTION,
}
# CCLD_DVSN: 1 buy-initiated, 5 sell-initiated, 3 pre-market (no initiating side).
_QUOTE_SIDES: Final = {"1": Side.BUY, "5": Side.SELL}


#: The current 26-field notice layout (protocol doc §7.3).
NOTICE_FIELD_NAMES_26: Final = (
    "CUST_ID",
    "ACNT_NO",
    "ODER_NO",
    "OODER_NO",
    "SELN_BYOV_CLS",
    "RCTF_CLS",
    "ODER_KIND",
    "ODER_COND",
    "STCK_SHRN_ISCD",
    "CNTG_QTY",
    "CNTG_UNPR",
    "STCK_CNTG_HOUR",
    "RFUS_YN",
    "CNTG_YN",
    "ACPT_YN",
    "BRNC_NO",
    "ODER_QTY",
    "ACNT_NAME",
    "ORD_COND_PRC",
    "ORD_EXG_GB",
    "POPUP_YN",
    "FILLER",
    "CRDT_CLS",
    "CRDT_LOAN_DATE",
    "CNTG_ISNM40",
    "ODER_PRC",
)
#: The older 23-field layout: fields 1-18 as above, then these.
NOTICE_FIELD_NAMES_23: Final = (
    *NOTICE_FIELD_NAMES_26[:18],
    "CNTG_ISNM",
    "CRDT_CLS",
    "CRDT_LOAN_DATE",
    "CNTG_ISNM40",
    "ODER_PRC",
)
_NOTICE_INDEX_26: Final = {name: i for i, name in enumerate(NOTICE_FIELD_NAMES_26)}
_NOTICE_INDEX_23: Final = {name: i for i, name in enumerate(NOTICE_FIELD_NAMES_23)}


_ORDER_TYPES: Final = {t.value: t for t in OrderType}
_NOTICE_SIDES: Final = {"01": Side.SELL, "02": Side.BUY}

# H0STCNT0 positions, by name.
_Q_SYMBOL: Final = _QUOTE_INDEX["MKSC_SHRN_ISCD"]
_Q_TIME: Final = _QUOTE_INDEX["STCK_CNTG_HOUR"]
_Q_PRICE: Final = _QUOTE_INDEX["STCK_PRPR"]
_Q_CHANGE: Final = _QUOTE_INDEX["PRDY_VRSS"]
_Q_RATE: Final = _QUOTE_INDEX["PRDY_CTRT"]
_Q_VWAP: Final = _QUOTE_INDEX["WGHN_AVRG_STCK_PRC"]
_Q_OPEN: Final = _QUOTE_INDEX["STCK_OPRC"]
_Q_HIGH: Final = _QUOTE_INDEX["STCK_HGPR"]
_Q_LOW: Final = _QUOTE_INDEX["STCK_LWPR"]
_Q_ASK: Final = _QUOTE_INDEX["ASKP1"]
_Q_BID: Final = _QUOTE_INDEX["BIDP1"]
_Q_VOLUME: Final = _QUOTE_INDEX["CNTG_VOL"]
_Q_CUM_VOLUME: Final = _QUOTE_INDEX["ACML_VOL"]
_Q_TURNOVER: Final = _QUOTE_INDEX["ACML_TR_PBMN"]
_Q_SIDE: Final = _QUOTE_INDEX["CCLD_DVSN"]
_Q_DAY: Final = _QUOTE_INDEX["BSOP_DATE"]
_Q_MARKET_CLS: Final = _QUOTE_INDEX["MARKET_CLS_CODE"]


#: ``Decimal`` of a price string through the shared cache, all in C when it hits (a miss
#: converts and caches: see ``_DecimalCache``); None for blank or unparsable text.
_cached_dec: Final = _DEC_CACHE.__getitem__


class _WireQuote(Quote):
    """A :class:`Quote` over a split H0STCNT0 record: a field is converted when first read.

    Each typed read is one cached conversion of the record's string: prices repeat a lot
    (tick grid), so a bounded str -> Decimal cache makes reading every attribute cheap.
    """

    __slots__ = ("_f", "_n", "_o")

    _f: list[str]
    _o: int
    _n: int
    # Per feed (a subclass each for NXT and 통합): no per-record cost.
    _MARKET: ClassVar[Market] = Market.KRX
    _NAMES: ClassVar[tuple[str, ...]] = QUOTE_FIELD_NAMES
    _INDEX: ClassVar[Mapping[str, int]] = _QUOTE_INDEX

    @classmethod
    def _decoded(cls, fields: list[str], offset: int, length: int) -> _WireQuote:
        """Wrap a record already checked by the decoder (symbol and price parse)."""
        quote = cls.__new__(cls)
        quote._f = fields
        quote._o = offset
        quote._n = length
        quote._symbol = fields[offset + _Q_SYMBOL]
        price = _cached_dec(fields[offset + _Q_PRICE])
        if price is None or not price.is_finite():  # "NaN" and "Infinity" parse as Decimal
            raise ArithmeticError("unparsable trade price")
        quote._price = price
        quote._time = _UNSET
        return quote

    @property
    def time(self) -> datetime | None:
        value = self._time
        if value is _UNSET:
            f = self._f
            o = self._o
            day = f[o + _Q_DAY] if self._n > _Q_DAY else ""
            clock = f[o + _Q_TIME]
            key = day + clock
            value = _TIME_CACHE.get(key, _UNSET)
            if value is _UNSET:
                value = _time_miss(key, day, clock)
            self._time = value
        return value  # type: ignore[no-any-return]

    @property
    def change(self) -> Decimal | None:
        return _cached_dec(self._f[self._o + _Q_CHANGE])

    @property
    def change_rate(self) -> Decimal | None:
        return _cached_dec(self._f[self._o + _Q_RATE])

    @property
    def volume(self) -> int | None:
        text = self._f[self._o + _Q_VOLUME]
        try:
            return int(text)
        except ValueError:
            return _int_or_none(text)

    @property
    def cum_volume(self) -> int | None:
        text = self._f[self._o + _Q_CUM_VOLUME]
        try:
            return int(text)
        except ValueError:
            return _int_or_none(text)

    @property
    def cum_turnover(self) -> Decimal | None:
        return _dec(self._f[self._o + _Q_TURNOVER])

    @property
    def open(self) -> Decimal | None:
        return _cached_dec(self._f[self._o + _Q_OPEN])

    @property
    def high(self) -> Decimal | None:
        return _cached_dec(self._f[self._o + _Q_HIGH])

    @property
    def low(self) -> Decimal | None:
        return _cached_dec(self._f[self._o + _Q_LOW])

    @property
    def ask(self) -> Decimal | None:
        return _cached_dec(self._f[self._o + _Q_ASK])

    @property
    def bid(self) -> Decimal | None:
        return _cached_dec(self._f[self._o + _Q_BID])

    @property
    def vwap(self) -> Decimal | None:
        return _cached_dec(self._f[self._o + _Q_VWAP])

    @property
    def side(self) -> Side | None:
        return _QUOTE_SIDES.get(self._f[self._o + _Q_SIDE])

    @property
    def session(self) -> Session | None:
        if self._n <= _Q_MARKET_CLS:
            return None  # the 46-field layout has no MARKET_CLS_CODE
        return MARKET_CLS_SESSIONS.get(self._f[self._o + _Q_MARKET_CLS])

    @property
    def market(self) -> Market:
        return self._MARKET

    @property
    def raw(self) -> Mapping[str, str]:
        return RawFields(self._NAMES, self._INDEX, self._f, self._o, self._n)


class _NxtQuote(_WireQuote):
    __slots__ = ()
    _MARKET = Market.NXT
    _NAMES = QUOTE_FIELD_NAMES_NX
    _INDEX = _QUOTE_INDEX_NX


class _UnifiedQuote(_WireQuote):
    __slots__ = ()
    _MARKET = Market.UNIFIED
    _NAMES = QUOTE_FIELD_NAMES_NX
    _INDEX = _QUOTE_INDEX_NX


_QUOTE_CLASSES: Final[Mapping[str, type[_WireQuote]]] = {
    TR_QUOTE: _WireQuote,
    TR_QUOTE_NXT: _NxtQuote,
    TR_QUOTE_UNIFIED: _UnifiedQuote,
}


# Notice positions, by name (fields 1-18 are common to the 23- and 26-field layouts).
_N_ORDER: Final = _NOTICE_INDEX_26["ODER_NO"]
_N_ORIGINAL: Final = _NOTICE_INDEX_26["OODER_NO"]
_N_SIDE: Final = _NOTICE_INDEX_26["SELN_BYOV_CLS"]
_N_CORRECTION: Final = _NOTICE_INDEX_26["RCTF_CLS"]
_N_ORDER_KIND: Final = _NOTICE_INDEX_26["ODER_KIND"]
_N_SYMBOL: Final = _NOTICE_INDEX_26["STCK_SHRN_ISCD"]
_N_QTY: Final = _NOTICE_INDEX_26["CNTG_QTY"]
_N_PRICE: Final = _NOTICE_INDEX_26["CNTG_UNPR"]
_N_TIME: Final = _NOTICE_INDEX_26["STCK_CNTG_HOUR"]
_N_REFUSED: Final = _NOTICE_INDEX_26["RFUS_YN"]
_N_FILLED: Final = _NOTICE_INDEX_26["CNTG_YN"]
_N_ACCEPTED: Final = _NOTICE_INDEX_26["ACPT_YN"]
_N_BRANCH: Final = _NOTICE_INDEX_26["BRNC_NO"]
_N_ORDER_QTY: Final = _NOTICE_INDEX_26["ODER_QTY"]
_N_EXCHANGE: Final = _NOTICE_INDEX_26["ORD_EXG_GB"]  # 26-field layout only
#: ORD_EXG_GB (protocol doc §7.3, §12): the exchange the order was placed with, and the
#: venue it went to (for SOR, where KIS routed it).
ORD_EXG_GB: Final[Mapping[str, tuple[Exchange, Exchange]]] = {
    "1": (Exchange.KRX, Exchange.KRX),
    "2": (Exchange.NXT, Exchange.NXT),
    "3": (Exchange.SOR, Exchange.KRX),
    "4": (Exchange.SOR, Exchange.NXT),
}


class _WireExecution(Execution):
    """An :class:`Execution` over a split notice record (23- or 26-field layout)."""

    __slots__ = ("_day", "_f", "_n", "_o")

    _f: list[str]
    _o: int
    _n: int
    _day: date | None

    @classmethod
    def _decoded(
        cls, kind: ExecutionKind, fields: list[str], offset: int, length: int, day: date | None
    ) -> _WireExecution:
        """Wrap a notice record already checked by the decoder."""
        ex = cls.__new__(cls)
        ex._f = fields
        ex._o = offset
        ex._n = length
        ex._kind = kind
        ex._oid = fields[offset + _N_ORDER]
        ex._source = "websocket"
        ex._day = day
        ex._qty = _UNSET
        ex._cursor = None
        ex._replayed = False
        return ex

    def _at(self, i: int) -> str:
        return self._f[self._o + i]

    def _named(self, name: str) -> str:
        index = (_NOTICE_INDEX_26 if self._n >= 26 else _NOTICE_INDEX_23)[name]
        return self._f[self._o + index]

    @property
    def original_order_id(self) -> str | None:
        return self._at(_N_ORIGINAL).strip() or None

    @property
    def branch_no(self) -> str | None:
        return self._at(_N_BRANCH).strip() or None

    @property
    def symbol(self) -> str:
        return self._at(_N_SYMBOL).strip()

    @property
    def side(self) -> Side | None:
        return _NOTICE_SIDES.get(self._at(_N_SIDE).strip())

    @property
    def order_type(self) -> OrderType | None:
        return _ORDER_TYPES.get(self._at(_N_ORDER_KIND).strip())

    @property
    def qty(self) -> int:
        value = self._qty
        if value is _UNSET:
            value = _int_or_none(self._at(_N_QTY)) or 0
            self._qty = value
        return value  # type: ignore[no-any-return]

    @property
    def price(self) -> Decimal | None:
        value = _dec(self._at(_N_PRICE))
        if not value and self._kind is not ExecutionKind.FILLED:
            # Acceptance notices of market orders carry 0; ODER_PRC may hold the price.
            value = _dec(self._named("ODER_PRC"))
        return value or None

    @property
    def order_qty(self) -> int | None:
        return _int_or_none(self._at(_N_ORDER_QTY))

    @property
    def time(self) -> datetime | None:
        """Event time (the notice has no date: the day it was decoded)."""
        return _day_time(self._day, self._at(_N_TIME))

    @property
    def name(self) -> str | None:
        text = self._named("CNTG_ISNM40").strip()
        if not text and self._n < 26:
            text = self._named("CNTG_ISNM").strip()
        return text or None

    def _exg(self) -> tuple[Exchange, Exchange] | None:
        if self._n < 26:
            return None  # the 23-field layout has no ORD_EXG_GB
        return ORD_EXG_GB.get(self._at(_N_EXCHANGE).strip())

    @property
    def exchange(self) -> Exchange | None:
        exg = self._exg()
        return exg[0] if exg is not None else None

    @property
    def venue(self) -> Exchange | None:
        exg = self._exg()
        return exg[1] if exg is not None else None

    @property
    def raw(self) -> Mapping[str, str]:
        if self._n >= 26:
            return RawFields(NOTICE_FIELD_NAMES_26, _NOTICE_INDEX_26, self._f, self._o, self._n)
        return RawFields(NOTICE_FIELD_NAMES_23, _NOTICE_INDEX_23, self._f, self._o, self._n)


# -- record splitting ---------------------------------------------------------------------------


def _split(payload: str, count: int, min_fields: int) -> tuple[list[str], int, int]:
    """Split a payload into fields; return (fields, records, fields per record).

    Records are concatenated with ``^`` (protocol doc §6.5), so a record's length is the
    field count divided by the record count. Extra trailing fields are tolerated.
    """
    fields = payload.split("^")
    records = count if count > 1 else 1
    per = len(fields) // records
    if per < min_fields:
        raise FrameError(
            f"{len(fields)} fields for {records} record(s); need {min_fields} per record"
        )
    return fields, records, per


def decode_quotes(frame: DataFrame) -> list[Quote]:
    """H0STCNT0 / H0NXCNT0 / H0UNCNT0 records (46 or 47 fields, more tolerated) as
    :class:`Quote` values (another TR id decodes with the KRX layout).

    Raises:
        FrameError: too few fields, a blank symbol, or an unparsable price.
    """
    fields, records, per = _split(frame.payload, frame.record_count, QUOTE_MIN_FIELDS)
    new = _QUOTE_CLASSES.get(frame.tr_id, _WireQuote)._decoded
    try:
        if records == 1:
            if not fields[0]:
                raise FrameError("quote without a symbol")
            return [new(fields, 0, per)]
        out: list[Quote] = [new(fields, i * per, per) for i in range(records)]
    except ArithmeticError as exc:
        raise FrameError("quote with an unparsable price") from exc
    for quote in out:
        if not quote.symbol:
            raise FrameError("quote without a symbol")
    return out


def decode_orderbooks(frame: DataFrame, *, day: date | None = None) -> list[OrderBook]:
    """H0STASP0 / H0NXASP0 / H0UNASP0 records as :class:`OrderBook` values.

    The layout is chosen by the TR id and the record width (``len(fields) / count``; see
    :data:`BOOK_LAYOUTS`); fields past the layout are tolerated. Another TR id decodes with
    the KRX layouts.

    Args:
        frame: the data frame.
        day: the trading day for the book's time (the frame carries only HHMMSS); today in
            KST by default.

    Raises:
        FrameError: too few fields or a blank symbol.
    """
    fields, records, per = _split(frame.payload, frame.record_count, ORDERBOOK_MIN_FIELDS)
    if day is None:
        day = _today()
    layout = _book_layout(frame.tr_id, per)
    new = _StreamOrderBook._decoded
    out: list[OrderBook] = []
    for i in range(records):
        offset = i * per
        if not fields[offset]:
            raise FrameError("order book without a symbol")
        out.append(new(fields, offset, day, layout))
    return out


def _notice_kind(fields: list[str], o: int) -> ExecutionKind:
    """The event kind from RFUS_YN, CNTG_YN, RCTF_CLS and ACPT_YN."""
    if fields[o + _N_REFUSED] == "1":
        return ExecutionKind.REJECTED
    if fields[o + _N_FILLED] == "2":
        return ExecutionKind.FILLED
    correction = fields[o + _N_CORRECTION]
    if correction == "2" or fields[o + _N_ACCEPTED] == "3":
        return ExecutionKind.CANCELLED
    if correction == "1":
        return ExecutionKind.MODIFIED
    return ExecutionKind.ACCEPTED


def decode_execution_plaintext(
    text: str, *, count: int = 1, day: date | None = None
) -> list[Execution]:
    """Decrypted H0STCNI0/H0STCNI9 records (23- or 26-field layout) as :class:`Execution`.

    Args:
        text: the ``^``-separated plaintext.
        count: the frame's record count.
        day: the date for the notice time (notices carry only HHMMSS); today in KST by default.

    Raises:
        FrameError: too few fields or a blank order number.
    """
    fields, records, per = _split(text, count, NOTICE_MIN_FIELDS)
    if day is None:
        day = _today()
    out: list[Execution] = []
    new = _WireExecution._decoded
    for i in range(records):
        o = i * per
        if not fields[o + _N_ORDER].strip():
            raise FrameError("execution notice without an order number")
        out.append(new(_notice_kind(fields, o), fields, o, per, day))
    return out


#: (key, iv) -> Cipher, for :func:`encrypt_payload` (tests and simulators).
_CIPHERS: dict[tuple[str, str], Any] = {}
#: PKCS#7 pad suffixes by pad length.
_PADS: Final = tuple(bytes([n]) * n for n in range(17))
#: Per thread: key -> an AES block decryptor (see :func:`_block_decryptor`).
_BLOCKS = threading.local()


def _cipher(key: str, iv: str) -> Any:
    cipher = _CIPHERS.get((key, iv))
    if cipher is None:
        # cryptography loads on first use, not when kis_async is imported.
        from cryptography.hazmat.primitives.ciphers import (  # noqa: PLC0415
            Cipher,
            algorithms,
            modes,
        )

        cipher = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode()))
        if len(_CIPHERS) >= 64:
            _CIPHERS.clear()
        _CIPHERS[(key, iv)] = cipher
    return cipher


def _block_decryptor(key: str) -> Any:
    """A reusable AES block decryptor for ``key`` (one per thread: contexts are not shared).

    CBC decryption is ``P_i = D(C_i) xor C_(i-1)`` with ``C_0`` the iv. The block step D keeps
    no state between whole blocks, so one context serves every frame of a session's key and
    no decryption context is built per frame (building one cost as much as the decryption);
    the chaining xor is done in :func:`decrypt_payload`. It only ever decrypts.
    """
    cache: dict[str, Any] | None = getattr(_BLOCKS, "by_key", None)
    if cache is None:
        cache = _BLOCKS.by_key = {}
    block = cache.get(key)
    if block is None:
        # cryptography loads on the first notice, not when kis_async is imported.
        from cryptography.hazmat.primitives.ciphers import (  # noqa: PLC0415
            Cipher,
            algorithms,
            modes,
        )

        block = Cipher(algorithms.AES(key.encode()), modes.ECB()).decryptor()  # noqa: S305
        if len(cache) >= 64:
            cache.clear()
        cache[key] = block
    return block


def decrypt_payload(payload: str, key: str, iv: str) -> str:
    """Decrypt a notice payload: base64, AES-256-CBC (key/iv as UTF-8 bytes), PKCS7, UTF-8.

    Raises:
        FrameError: bad base64, wrong key/iv, bad padding or non-UTF-8 plaintext.
    """
    try:
        data = base64.b64decode(payload, validate=True)
        size = len(data)
        chain = iv.encode()
        if not size or size % 16 or len(chain) != 16:
            raise FrameError("encrypted payload is not whole AES blocks under a 16-byte iv")
        decrypted: bytes = _block_decryptor(key).update(data)
        # The CBC chaining xor of every block at once, as one big integer.
        mask = int.from_bytes(chain + data[:-16], "big")
        padded = (int.from_bytes(decrypted, "big") ^ mask).to_bytes(size, "big")
        # PKCS#7 by hand: the last byte n (1..16) repeated n times.
        pad = padded[-1]
        if not 0 < pad <= 16 or not padded.endswith(_PADS[pad]):
            raise FrameError("encrypted payload with bad padding")
        return padded[:-pad].decode("utf-8")
    except (ValueError, binascii.Error, TypeError) as exc:  # UnicodeDecodeError included
        if isinstance(exc, FrameError):
            raise
        raise FrameError("encrypted payload does not decrypt") from exc


def encrypt_payload(plaintext: str, key: str, iv: str) -> str:
    """The inverse of :func:`decrypt_payload` (for tests and simulators)."""
    data = plaintext.encode("utf-8")
    pad = 16 - len(data) % 16
    encryptor = _cipher(key, iv).encryptor()
    sealed = encryptor.update(data + _PADS[pad]) + encryptor.finalize()
    return base64.b64encode(sealed).decode("ascii")


def decode_executions(
    frame: DataFrame, key: str | None, iv: str | None, *, day: date | None = None
) -> list[Execution]:
    """H0STCNI0/H0STCNI9 records: decrypt when the frame is flagged encrypted, then decode.

    Args:
        frame: the data frame.
        key: the AES key of this TR's latest ack (needed when ``frame.encrypted``).
        iv: the AES iv of this TR's latest ack.
        day: see :func:`decode_execution_plaintext`.

    Raises:
        FrameError: an encrypted frame with no key/iv, or any decrypt/decode failure.
    """
    text = frame.payload
    if frame.encrypted:
        if not key or not iv:
            raise FrameError("encrypted frame before any ack carried a key and iv")
        text = decrypt_payload(text, key, iv)
    return decode_execution_plaintext(text, count=frame.record_count, day=day)


# -- order books (protocol doc §7.2, §12) ------------------------------------------------------

#: The 59 fields every order-book layout starts with (H0STASP0 before 2026-09-14).
ORDERBOOK_FIELD_NAMES: Final = (
    "MKSC_SHRN_ISCD",
    "BSOP_HOUR",
    "HOUR_CLS_CODE",
    *(f"ASKP{i}" for i in range(1, 11)),
    *(f"BIDP{i}" for i in range(1, 11)),
    *(f"ASKP_RSQN{i}" for i in range(1, 11)),
    *(f"BIDP_RSQN{i}" for i in range(1, 11)),
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
    "OVTM_TOTAL_ASKP_RSQN",
    "OVTM_TOTAL_BIDP_RSQN",
    "ANTC_CNPR",
    "ANTC_CNQN",
    "ANTC_VOL",
    "ANTC_CNTG_VRSS",
    "ANTC_CNTG_VRSS_SIGN",
    "ANTC_CNTG_PRDY_CTRT",
    "ACML_VOL",
    "TOTAL_ASKP_RSQN_ICDC",
    "TOTAL_BIDP_RSQN_ICDC",
    "OVTM_TOTAL_ASKP_ICDC",
    "OVTM_TOTAL_BIDP_ICDC",
    "STCK_DEAL_CLS_CODE",
)
_KMID: Final = ("KMID_PRC", "KMID_TOTAL_RSQN", "KMID_CLS_CODE")
_NMID: Final = ("NMID_PRC", "NMID_TOTAL_RSQN", "NMID_CLS_CODE")


class BookLayout(NamedTuple):
    """One order-book record layout: its field names and where the optional fields are
    (-1: absent)."""

    market: Market
    names: tuple[str, ...]
    mid: int
    mid_qty: int
    krx_mid: int
    nxt_mid: int
    session: int


def _layout(
    market: Market,
    extra: tuple[str, ...] = (),
    *,
    mid: str = "",
    mid_qty: str = "",
    krx_mid: str = "",
    nxt_mid: str = "",
    session: str = "",
) -> BookLayout:
    names = (*ORDERBOOK_FIELD_NAMES, *extra)
    index = {name: i for i, name in enumerate(names)}
    at = [index.get(name, -1) for name in (mid, mid_qty, krx_mid, nxt_mid, session)]
    return BookLayout(market, names, *at)


_KRX_63: Final = ("MID_PRC", "MIDP_TOTAL_RSQN", "MIDP_CLS_CODE", "MARKET_CLS_CODE")
_OTA_65: Final = (*_KMID, *_NMID)

#: tr_id -> ((minimum width, layout), ...), widest first; a record takes the first layout
#: it is wide enough for. [CONFLICT §12] Every width either source gives decodes:
#:
#: * H0STASP0: 59 (OTA) or 63 (kis-trader, probed live: + MID_PRC, MIDP_TOTAL_RSQN,
#:   MIDP_CLS_CODE, MARKET_CLS_CODE). We expect 63.
#: * H0NXASP0: 62 (kis-trader: + NMID_*) or 65 (OTA: + KMID_*, NMID_*). 65 and wider is read
#:   as OTA's layout (not as 62 with three trailing fields): both sources agree the NXT
#:   fields come last there. We expect 62 (kis-trader's width; neither is probed).
#: * H0UNASP0: 65 (OTA: + KMID_*, NMID_*) or 66 (kis-trader, probed live: the same + the
#:   expected-price venue ANTC_EXCH_CLS_CODE). The first 65 agree. We expect 66.
#:
#: A narrower record (59..) decodes the common fields only.
BOOK_LAYOUTS: Final[Mapping[str, tuple[tuple[int, BookLayout], ...]]] = {
    TR_ORDERBOOK: (
        (
            63,
            _layout(
                Market.KRX,
                _KRX_63,
                mid="MID_PRC",
                mid_qty="MIDP_TOTAL_RSQN",
                krx_mid="MID_PRC",
                session="MARKET_CLS_CODE",
            ),
        ),
        (59, _layout(Market.KRX)),
    ),
    TR_ORDERBOOK_NXT: (
        (
            65,
            _layout(
                Market.NXT,
                _OTA_65,
                mid="NMID_PRC",
                mid_qty="NMID_TOTAL_RSQN",
                krx_mid="KMID_PRC",
                nxt_mid="NMID_PRC",
            ),
        ),
        (
            62,
            _layout(
                Market.NXT, _NMID, mid="NMID_PRC", mid_qty="NMID_TOTAL_RSQN", nxt_mid="NMID_PRC"
            ),
        ),
        (59, _layout(Market.NXT)),
    ),
    TR_ORDERBOOK_UNIFIED: (
        (
            66,
            _layout(
                Market.UNIFIED,
                (*_OTA_65, "ANTC_EXCH_CLS_CODE"),
                krx_mid="KMID_PRC",
                nxt_mid="NMID_PRC",
            ),
        ),
        (65, _layout(Market.UNIFIED, _OTA_65, krx_mid="KMID_PRC", nxt_mid="NMID_PRC")),
        (59, _layout(Market.UNIFIED)),
    ),
}


def _book_layout(tr_id: str, width: int) -> BookLayout:
    layouts = BOOK_LAYOUTS.get(tr_id) or BOOK_LAYOUTS[TR_ORDERBOOK]
    for minimum, layout in layouts:
        if width >= minimum:
            return layout
    return layouts[-1][1]


_BOOK_FIELDS: Final = (
    "symbol",
    "time",
    "asks",
    "bids",
    "total_ask_qty",
    "total_bid_qty",
    "expected_price",
    "expected_qty",
    "market",
    "session",
    "mid_price",
    "mid_qty",
    "krx_mid_price",
    "nxt_mid_price",
)

_new_level = tuple.__new__
# A C-level constructor of PriceLevel from a (price, qty) tuple (skips the NamedTuple's
# Python-level __new__; the same object).
_make_level: Final = partial(tuple.__new__, PriceLevel)
_decimal_of: Final = _cached_dec


def _level_qty(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return _int_or_none(text) or 0


def _levels(fields: list[str], price_at: int, qty_at: int) -> tuple[PriceLevel, ...]:
    prices = list(map(_decimal_of, fields[price_at : price_at + 10]))
    if all(prices):
        try:
            # The common case, all in C: ten quoted levels with plain integer quantities.
            return tuple(
                map(_make_level, zip(prices, map(int, fields[qty_at : qty_at + 10]), strict=True))
            )
        except ValueError:
            pass
    return tuple(
        _new_level(PriceLevel, (price, _level_qty(qty)))
        for price, qty in zip(prices, fields[qty_at : qty_at + 10], strict=True)
        if price  # 0 or blank: no quote at this level
    )


class _StreamOrderBook(OrderBook):
    """An :class:`OrderBook` over a split order-book record; levels are built when read.

    It is an ``OrderBook`` in every public respect (attributes, equality between two decoded
    books, pickling, which produces a plain ``OrderBook``).
    """

    __slots__ = ("_asks", "_bids", "_f")

    # (fields, offset, day, layout); the level tuples are cached in _asks/_bids when read.
    _f: tuple[list[str], int, date, BookLayout]
    _asks: tuple[PriceLevel, ...] | None
    _bids: tuple[PriceLevel, ...] | None

    @classmethod
    def _decoded(
        cls, fields: list[str], offset: int, day: date, layout: BookLayout
    ) -> _StreamOrderBook:
        book = object.__new__(cls)
        _set_f(book, (fields, offset, day, layout))
        # None, not unset: a first read then costs no AttributeError.
        _set_asks(book, None)
        _set_bids(book, None)
        return book

    def _at(self, i: int) -> str:
        fields, offset, _, _ = self._f
        return fields[offset + i]

    def _optional(self, i: int) -> str | None:
        return None if i < 0 else self._at(i)

    @property
    def symbol(self) -> str:
        return self._at(0)

    @property
    def time(self) -> datetime | None:
        return _day_time(self._f[2], self._at(1))

    @property
    def asks(self) -> tuple[PriceLevel, ...]:
        levels = self._asks
        if levels is None:
            fields, offset, _, _ = self._f
            levels = _levels(fields, offset + 3, offset + 23)
            _set_asks(self, levels)
        return levels

    @property
    def bids(self) -> tuple[PriceLevel, ...]:
        levels = self._bids
        if levels is None:
            fields, offset, _, _ = self._f
            levels = _levels(fields, offset + 13, offset + 33)
            _set_bids(self, levels)
        return levels

    def _best(self, price_at: int, qty_at: int) -> PriceLevel | None:
        fields, offset, _, _ = self._f
        price = _decimal_of(fields[offset + price_at])
        if not price:
            return None
        return _new_level(PriceLevel, (price, _level_qty(fields[offset + qty_at])))

    @property
    def best_ask(self) -> PriceLevel | None:
        # Level 1 straight from the record: reading the best price builds no tuple of ten.
        level = self._best(3, 23)
        if level is None and self.asks:
            return self.asks[0]  # a blank level 1 with quotes further out
        return level

    @property
    def best_bid(self) -> PriceLevel | None:
        level = self._best(13, 33)
        if level is None and self.bids:
            return self.bids[0]
        return level

    @property
    def spread(self) -> Decimal | None:
        ask = self.best_ask
        bid = self.best_bid
        if ask is None or bid is None:
            return None
        return ask.price - bid.price

    @property
    def total_ask_qty(self) -> int | None:
        return _int_or_none(self._at(43))

    @property
    def total_bid_qty(self) -> int | None:
        return _int_or_none(self._at(44))

    @property
    def expected_price(self) -> Decimal | None:
        return _decimal_of(self._at(47)) or None

    @property
    def expected_qty(self) -> int | None:
        return _int_or_none(self._at(48))

    @property
    def market(self) -> Market:
        return self._f[3].market

    @property
    def session(self) -> Session | None:
        text = self._optional(self._f[3].session)
        return None if text is None else MARKET_CLS_SESSIONS.get(text)

    def _price_at(self, i: int) -> Decimal | None:
        text = self._optional(i)
        # 0 or blank: no mid price (no quote on one side, or outside the session).
        return None if text is None else _decimal_of(text) or None

    @property
    def mid_price(self) -> Decimal | None:
        return self._price_at(self._f[3].mid)

    @property
    def mid_qty(self) -> int | None:
        text = self._optional(self._f[3].mid_qty)
        return None if text is None else _int_or_none(text)

    @property
    def krx_mid_price(self) -> Decimal | None:
        return self._price_at(self._f[3].krx_mid)

    @property
    def nxt_mid_price(self) -> Decimal | None:
        return self._price_at(self._f[3].nxt_mid)

    def _plain(self) -> OrderBook:
        return OrderBook(**{name: getattr(self, name) for name in _BOOK_FIELDS})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _StreamOrderBook):
            other = other._plain()
        if not isinstance(other, OrderBook):
            return NotImplemented
        return self._plain() == other

    def __hash__(self) -> int:
        return hash(self._plain())

    def __reduce__(self) -> tuple[Any, ...]:
        plain = self._plain()
        return (OrderBook, tuple(getattr(plain, f) for f in _BOOK_FIELDS))

    def __repr__(self) -> str:
        return repr(self._plain())


# The slot's own descriptor: the frozen dataclass __setattr__ of the base would refuse the
# assignment, and object.__setattr__ is slower than calling the descriptor.
_set_f = _StreamOrderBook.__dict__["_f"].__set__
_set_asks = _StreamOrderBook.__dict__["_asks"].__set__
_set_bids = _StreamOrderBook.__dict__["_bids"].__set__


# -- the tr_id -> decoder table ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordDecoder:
    """How the data frames of one TR become values.

    Attributes:
        decode: ``decode(frame, crypto)`` -> the frame's values; ``crypto`` is the
            ``(key, iv)`` of this TR's latest ack, or None.
        keyed: True for market data, whose values carry ``.symbol`` and are routed to the
            subscribers of that symbol; False for account notices (one key: the HTS id),
            which go to the execution feed.
    """

    decode: Callable[[DataFrame, tuple[str, str] | None], Sequence[Any]]
    keyed: bool = True


def _quotes(frame: DataFrame, crypto: tuple[str, str] | None) -> list[Quote]:
    return decode_quotes(frame)


def _orderbooks(frame: DataFrame, crypto: tuple[str, str] | None) -> list[OrderBook]:
    return decode_orderbooks(frame)


def _notices(frame: DataFrame, crypto: tuple[str, str] | None) -> list[Execution]:
    key, iv = crypto if crypto is not None else (None, None)
    return decode_executions(frame, key, iv)


#: Every TR the client decodes: the KRX, NXT and 통합 trades and books, and the notices.
#: Adding a feed is one entry here plus the layout it decodes with; the manager routes by
#: this table only.
DECODERS: Final[Mapping[str, RecordDecoder]] = {
    TR_QUOTE: RecordDecoder(_quotes),
    TR_QUOTE_NXT: RecordDecoder(_quotes),
    TR_QUOTE_UNIFIED: RecordDecoder(_quotes),
    TR_ORDERBOOK: RecordDecoder(_orderbooks),
    TR_ORDERBOOK_NXT: RecordDecoder(_orderbooks),
    TR_ORDERBOOK_UNIFIED: RecordDecoder(_orderbooks),
    TR_NOTICE_LIVE: RecordDecoder(_notices, keyed=False),
    TR_NOTICE_PAPER: RecordDecoder(_notices, keyed=False),
}
