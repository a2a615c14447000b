"""Execution-notice decoding (H0STCNI0 / H0STCNI9)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

from kis_async.models.orders import Exchange, OrderType, Side
from kis_async.models.stream import (
    _UNSET,
    Execution,
    ExecutionKind,
    _dec,
)
from kis_async.models.stream import _int as _int_or_none
from kis_async.stream.protocol.crypto import decrypt_payload
from kis_async.stream.protocol.fields import RawFields, _day_time, _split, _today
from kis_async.stream.protocol.frames import NOTICE_MIN_FIELDS, DataFrame, FrameError
from kis_async.stream.protocol.layouts import (
    _N_ACCEPTED,
    _N_BRANCH,
    _N_CORRECTION,
    _N_EXCHANGE,
    _N_FILLED,
    _N_ORDER,
    _N_ORDER_KIND,
    _N_ORDER_QTY,
    _N_ORIGINAL,
    _N_PRICE,
    _N_QTY,
    _N_REFUSED,
    _N_SIDE,
    _N_SYMBOL,
    _N_TIME,
    _NOTICE_INDEX_23,
    _NOTICE_INDEX_26,
    _NOTICE_SIDES,
    _ORDER_TYPES,
    NOTICE_FIELD_NAMES_23,
    NOTICE_FIELD_NAMES_26,
    ORD_EXG_GB,
)


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
