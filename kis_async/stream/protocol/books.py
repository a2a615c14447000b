"""Order-book decoding (H0STASP0 / H0NXASP0 / H0UNASP0)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any, Final

from kis_async.models.market import Market, OrderBook, PriceLevel, Session
from kis_async.models.stream import _int as _int_or_none
from kis_async.stream.protocol.fields import _cached_dec, _day_time, _split, _today
from kis_async.stream.protocol.frames import ORDERBOOK_MIN_FIELDS, DataFrame, FrameError
from kis_async.stream.protocol.layouts import (
    MARKET_CLS_SESSIONS,
    BookLayout,
    _book_layout,
)

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
