"""Quote decoding (H0STCNT0 / H0NXCNT0 / H0UNCNT0)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Final

from kis_async.models.market import Market, Session
from kis_async.models.orders import Side
from kis_async.models.stream import (
    _TIME_CACHE,
    _UNSET,
    Quote,
    _dec,
    _time_miss,
)
from kis_async.models.stream import _int as _int_or_none
from kis_async.stream.protocol.fields import RawFields, _cached_dec, _split
from kis_async.stream.protocol.frames import (
    QUOTE_MIN_FIELDS,
    TR_QUOTE,
    TR_QUOTE_NXT,
    TR_QUOTE_UNIFIED,
    DataFrame,
    FrameError,
)
from kis_async.stream.protocol.layouts import (
    _Q_ASK,
    _Q_BID,
    _Q_CHANGE,
    _Q_CUM_VOLUME,
    _Q_DAY,
    _Q_HIGH,
    _Q_LOW,
    _Q_MARKET_CLS,
    _Q_OPEN,
    _Q_PRICE,
    _Q_RATE,
    _Q_SIDE,
    _Q_SYMBOL,
    _Q_TIME,
    _Q_TURNOVER,
    _Q_VOLUME,
    _Q_VWAP,
    _QUOTE_INDEX,
    _QUOTE_INDEX_NX,
    _QUOTE_SIDES,
    MARKET_CLS_SESSIONS,
    QUOTE_FIELD_NAMES,
    QUOTE_FIELD_NAMES_NX,
)


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
