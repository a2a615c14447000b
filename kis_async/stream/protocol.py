"""The KIS WebSocket wire protocol, sans I/O (protocol doc §6-7).

Nothing here touches a socket or the event loop; every function maps text to values or
values to text, so it is tested against recorded frames and benchmarked in isolation.

Client to server::

    subscribe_message(approval_key, tr_id, tr_key, customer_type="P") -> str
    unsubscribe_message(approval_key, tr_id, tr_key, customer_type="P") -> str

Server to client: :func:`parse_frame` classifies a text frame::

    frame = parse_frame(text)      # DataFrame | Ack | PingPong, or raises FrameError

Decoders (what the benchmarks should call; each returns one value per record of the frame)::

    decode_quotes(frame) -> list[Quote]                          # H0STCNT0
    decode_orderbooks(frame) -> list[OrderBook]                  # H0STASP0
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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, NamedTuple

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kis_async.models.common import KST
from kis_async.models.market import OrderBook, PriceLevel
from kis_async.models.stream import (
    _DEC_CACHE,
    Execution,
    ExecutionKind,
    Quote,
    cached_decimal,
)

__all__ = [
    "ACK_CODES",
    "DECODERS",
    "NOTICE_TR_IDS",
    "PINGPONG",
    "TR_NOTICE_LIVE",
    "TR_NOTICE_PAPER",
    "TR_ORDERBOOK",
    "TR_QUOTE",
    "Ack",
    "AckStatus",
    "DataFrame",
    "FrameError",
    "PingPong",
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
TR_ORDERBOOK: Final = "H0STASP0"
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
    """H0STCNT0 records (46 or 47 fields, more tolerated) as :class:`Quote` values.

    Raises:
        FrameError: too few fields, a blank symbol, or an unparsable price.
    """
    fields, records, per = _split(frame.payload, frame.record_count, QUOTE_MIN_FIELDS)
    new = Quote._decoded
    try:
        if records == 1:
            if not fields[0]:
                raise FrameError("quote without a symbol")
            return [new(fields, 0, per)]
        out = [new(fields, i * per, per) for i in range(records)]
    except ArithmeticError as exc:
        raise FrameError("quote with an unparsable price") from exc
    for quote in out:
        if not quote.symbol:
            raise FrameError("quote without a symbol")
    return out


def decode_orderbooks(frame: DataFrame, *, day: date | None = None) -> list[OrderBook]:
    """H0STASP0 records (59 fields, more tolerated) as :class:`OrderBook` values.

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
    out: list[OrderBook] = []
    for i in range(records):
        offset = i * per
        if not fields[offset]:
            raise FrameError("order book without a symbol")
        out.append(_StreamOrderBook._decoded(fields, offset, day))
    return out


# Execution kind from RFUS_YN (13), CNTG_YN (14), RCTF_CLS (6), ACPT_YN (15) (1-based).
def _notice_kind(fields: list[str], o: int) -> ExecutionKind:
    if fields[o + 12] == "1":
        return ExecutionKind.REJECTED
    if fields[o + 13] == "2":
        return ExecutionKind.FILLED
    correction = fields[o + 5]
    if correction == "2" or fields[o + 14] == "3":
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
    new = Execution._decoded
    for i in range(records):
        o = i * per
        if not fields[o + 2].strip():
            raise FrameError("execution notice without an order number")
        out.append(new(_notice_kind(fields, o), fields, o, per, day))
    return out


def decrypt_payload(payload: str, key: str, iv: str) -> str:
    """Decrypt a notice payload: base64, AES-256-CBC (key/iv as UTF-8 bytes), PKCS7, UTF-8.

    Raises:
        FrameError: bad base64, wrong key/iv, bad padding or non-UTF-8 plaintext.
    """
    try:
        data = base64.b64decode(payload, validate=True)
        decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
        return plain.decode("utf-8")
    except (ValueError, binascii.Error, TypeError) as exc:
        raise FrameError("encrypted payload does not decrypt") from exc


def encrypt_payload(plaintext: str, key: str, iv: str) -> str:
    """The inverse of :func:`decrypt_payload` (for tests and simulators)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


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


_MISSING: Final[Any] = object()

_BOOK_FIELDS: Final = (
    "symbol",
    "time",
    "asks",
    "bids",
    "total_ask_qty",
    "total_bid_qty",
    "expected_price",
    "expected_qty",
)

# -- order books ------------------------------------------------------------------------------


def _dec(text: str) -> Decimal | None:
    if not text:
        return None
    try:
        return Decimal(text)
    except ArithmeticError:
        return None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        value = _dec(text)
    if value is None or not value.is_finite():
        return None
    return int(value)


_BOOK_TIMES: dict[tuple[date, str], datetime | None] = {}


def _book_time(day: date, text: str) -> datetime | None:
    if len(text) < 6 or not text[:6].isdigit():
        return None
    try:
        return datetime(
            day.year,
            day.month,
            day.day,
            int(text[0:2]),
            int(text[2:4]),
            int(text[4:6]),
            tzinfo=KST,
        )
    except ValueError:
        return None


_new_level = tuple.__new__


def _levels(fields: list[str], price_at: int, qty_at: int) -> tuple[PriceLevel, ...]:
    out = []
    cache_get = _DEC_CACHE.get
    for price_text, qty_text in zip(
        fields[price_at : price_at + 10], fields[qty_at : qty_at + 10], strict=True
    ):
        price = cache_get(price_text, _MISSING)
        if price is _MISSING:
            price = cached_decimal(price_text)
        if not price:
            continue  # 0 or blank: no quote at this level
        try:
            qty = int(qty_text)
        except ValueError:
            qty = _int(qty_text) or 0
        # tuple.__new__ skips the NamedTuple's Python-level __new__ (same object).
        out.append(_new_level(PriceLevel, (price, qty)))
    return tuple(out)


class _StreamOrderBook(OrderBook):
    """An :class:`OrderBook` over a split H0STASP0 record; levels are built when read.

    It is an ``OrderBook`` in every public respect (attributes, equality between two decoded
    books, pickling, which produces a plain ``OrderBook``).
    """

    __slots__ = ("_asks", "_bids", "_f")

    # (fields, offset, day); the level tuples are cached in _asks/_bids when first read.
    _f: tuple[list[str], int, date]
    _asks: tuple[PriceLevel, ...]
    _bids: tuple[PriceLevel, ...]

    @classmethod
    def _decoded(cls, fields: list[str], offset: int, day: date) -> _StreamOrderBook:
        book = object.__new__(cls)
        _set_f(book, (fields, offset, day))
        return book

    def _at(self, i: int) -> str:
        fields, offset, _ = self._f
        return fields[offset + i]

    @property
    def symbol(self) -> str:
        return self._at(0)

    @property
    def time(self) -> datetime | None:
        text = self._at(1)
        day = self._f[2]
        key = (day, text)
        value = _BOOK_TIMES.get(key, _MISSING)
        if value is _MISSING:
            value = _book_time(day, text)
            if len(_BOOK_TIMES) >= 65_536:
                _BOOK_TIMES.clear()
            _BOOK_TIMES[key] = value
        return value  # type: ignore[no-any-return]

    @property
    def asks(self) -> tuple[PriceLevel, ...]:
        try:
            return self._asks
        except AttributeError:
            fields, offset, _ = self._f
            levels = _levels(fields, offset + 3, offset + 23)
            object.__setattr__(self, "_asks", levels)
            return levels

    @property
    def bids(self) -> tuple[PriceLevel, ...]:
        try:
            return self._bids
        except AttributeError:
            fields, offset, _ = self._f
            levels = _levels(fields, offset + 13, offset + 33)
            object.__setattr__(self, "_bids", levels)
            return levels

    @property
    def total_ask_qty(self) -> int | None:
        return _int(self._at(43))

    @property
    def total_bid_qty(self) -> int | None:
        return _int(self._at(44))

    @property
    def expected_price(self) -> Decimal | None:
        return cached_decimal(self._at(47)) or None

    @property
    def expected_qty(self) -> int | None:
        return _int(self._at(48))

    def _plain(self) -> OrderBook:
        return OrderBook(
            symbol=self.symbol,
            time=self.time,
            asks=self.asks,
            bids=self.bids,
            total_ask_qty=self.total_ask_qty,
            total_bid_qty=self.total_bid_qty,
            expected_price=self.expected_price,
            expected_qty=self.expected_qty,
        )

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


#: Every TR the client decodes. Adding a feed (an NXT or integrated quote TR, say) is one
#: entry here plus the layout it decodes with; the manager routes by this table only.
DECODERS: Final[Mapping[str, RecordDecoder]] = {
    TR_QUOTE: RecordDecoder(_quotes),
    TR_ORDERBOOK: RecordDecoder(_orderbooks),
    TR_NOTICE_LIVE: RecordDecoder(_notices, keyed=False),
    TR_NOTICE_PAPER: RecordDecoder(_notices, keyed=False),
}
