"""Real-time models: trades (Quote) and execution notices (Execution).

These are built at tens of thousands per second, so they are small slotted classes, not
pydantic models. A value decoded from a frame by :mod:`kis_async.stream.protocol` keeps the
split record and converts a field only when it is read (the decoder has already checked the
record's shape and the fields that can fail: symbol, price, order id). Reading an attribute
never raises: a blank or unparsable optional field reads as ``None``. Values built with the
keyword constructor (tests, :class:`~kis_async.MockBroker`, reconciliation) store what they
are given. Either way the public attributes are read-only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final, Literal

from kis_async.models.common import KST
from kis_async.models.market import Market, Session
from kis_async.models.orders import Exchange, OrderType, Side
from kis_async.validation import normalize_order_id

__all__ = [
    "QUOTE_ATTRIBUTES",
    "Execution",
    "ExecutionCursor",
    "ExecutionKind",
    "Quote",
]

_UNSET: Final[Any] = object()


def _dec(text: str) -> Decimal | None:
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _int(text: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        value = _dec(text)
        return None if value is None or not value.is_finite() else int(value)


#: Bounded caches of conversions that repeat across records (prices on the tick grid, the
#: trade time within a second). Cleared when full; values are immutable, so sharing is safe.
_CACHE_MAX: Final = 65_536


class _DecimalCache(dict[str, Decimal | None]):
    """str -> Decimal; ``cache[text]`` converts and stores on a miss, so a hit is one C call."""

    __slots__ = ()

    def __missing__(self, text: str) -> Decimal | None:
        return _dec_miss(text)


_DEC_CACHE: _DecimalCache = _DecimalCache()
_TIME_CACHE: dict[str, datetime | None] = {}


def _dec_miss(text: str) -> Decimal | None:
    value = _dec(text)
    if len(_DEC_CACHE) >= _CACHE_MAX:
        _DEC_CACHE.clear()
    _DEC_CACHE[text] = value
    return value


def cached_decimal(text: str) -> Decimal | None:
    """``Decimal(text)`` through the shared cache; None for blank or unparsable text."""
    value = _DEC_CACHE.get(text, _UNSET)
    return _dec_miss(text) if value is _UNSET else value


_DAYS: dict[str, date | None] = {}


def _time_miss(key: str, day_text: str, hhmmss: str) -> datetime | None:
    day = _DAYS.get(day_text, _UNSET)
    if day is _UNSET:  # the trading day repeats on every record: parse it once
        day = _yyyymmdd(day_text)
        if len(_DAYS) >= 1024:
            _DAYS.clear()
        _DAYS[day_text] = day
    value = _clock(day, hhmmss)
    if len(_TIME_CACHE) >= _CACHE_MAX:
        _TIME_CACHE.clear()
    # Without a date the value depends on today, so only dated times are cached.
    if day_text:
        _TIME_CACHE[key] = value
    return value


def _clock(day: date | None, hhmmss: str) -> datetime | None:
    if len(hhmmss) < 6 or not hhmmss[:6].isdigit():
        return None
    if day is None:
        day = datetime.now(KST).date()
    try:
        return datetime(
            day.year,
            day.month,
            day.day,
            int(hhmmss[0:2]),
            int(hhmmss[2:4]),
            int(hhmmss[4:6]),
            tzinfo=KST,
        )
    except ValueError:
        return None


def _yyyymmdd(text: str) -> date | None:
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


#: The typed attributes of :class:`Quote`, in order.
QUOTE_ATTRIBUTES: Final = (
    "symbol",
    "time",
    "price",
    "change",
    "change_rate",
    "volume",
    "cum_volume",
    "cum_turnover",
    "open",
    "high",
    "low",
    "ask",
    "bid",
    "vwap",
    "side",
    "session",
    "market",
)


class Quote:
    """A real-time trade print (H0STCNT0).

    Attributes:
        symbol: the KRX code.
        time: trade time, aware Asia/Seoul.
        price: trade price.
        change: change against the previous close.
        change_rate: change in percent.
        volume: this trade's volume.
        cum_volume: cumulative volume today.
        cum_turnover: cumulative turnover today (won).
        open, high, low: today's open, high and low.
        ask, bid: best ask and bid at the trade.
        vwap: volume-weighted average price.
        side: the side that initiated the trade (BUY/SELL), None in auctions.
        session: the session of the trade from ``MARKET_CLS_CODE`` (1 pre-market, 2
            regular, 3 after-market, 5 closing auction), None when the record has no such
            field (the 46-field layout) or an unknown code.
        market: the feed the trade came from: KRX (H0STCNT0), NXT (H0NXCNT0) or UNIFIED
            (H0UNCNT0); None when unknown.
        raw: every field by its KIS name (``raw["CTTR"]``), including fields we do not type.
    """

    __slots__ = ("_price", "_raw", "_symbol", "_time", "_v")

    _v: tuple[Any, ...]
    _raw: Mapping[str, str]
    _symbol: str
    _price: Decimal
    _time: Any

    def __init__(
        self,
        *,
        symbol: str,
        time: datetime | None,
        price: Decimal,
        change: Decimal | None,
        change_rate: Decimal | None,
        volume: int | None,
        cum_volume: int | None,
        cum_turnover: Decimal | None,
        open: Decimal | None,
        high: Decimal | None,
        low: Decimal | None,
        ask: Decimal | None,
        bid: Decimal | None,
        vwap: Decimal | None,
        side: Side | None,
        raw: Mapping[str, str] | None = None,
        session: Session | None = None,
        market: Market | None = None,
    ) -> None:
        self._symbol = symbol
        self._price = price
        self._time = time
        self._v = (
            change,
            change_rate,
            volume,
            cum_volume,
            cum_turnover,
            open,
            high,
            low,
            ask,
            bid,
            vwap,
            side,
            session,
            market,
        )
        self._raw = dict(raw) if raw else {}

    # A quote decoded from a frame is a subclass (kis_async.stream.protocol) that reads
    # these attributes from the record when first asked; this class stores values.

    @property
    def symbol(self) -> str:
        """The KRX code."""
        return self._symbol

    @property
    def price(self) -> Decimal:
        """Trade price."""
        return self._price

    @property
    def time(self) -> datetime | None:
        """Trade time, aware Asia/Seoul."""
        return self._time  # type: ignore[no-any-return]

    @property
    def change(self) -> Decimal | None:
        """Change against the previous close."""
        return self._v[0]  # type: ignore[no-any-return]

    @property
    def change_rate(self) -> Decimal | None:
        """Change in percent."""
        return self._v[1]  # type: ignore[no-any-return]

    @property
    def volume(self) -> int | None:
        """This trade's volume."""
        return self._v[2]  # type: ignore[no-any-return]

    @property
    def cum_volume(self) -> int | None:
        """Cumulative volume today."""
        return self._v[3]  # type: ignore[no-any-return]

    @property
    def cum_turnover(self) -> Decimal | None:
        """Cumulative turnover today (won)."""
        return self._v[4]  # type: ignore[no-any-return]

    @property
    def open(self) -> Decimal | None:
        """Today's open."""
        return self._v[5]  # type: ignore[no-any-return]

    @property
    def high(self) -> Decimal | None:
        """Today's high."""
        return self._v[6]  # type: ignore[no-any-return]

    @property
    def low(self) -> Decimal | None:
        """Today's low."""
        return self._v[7]  # type: ignore[no-any-return]

    @property
    def ask(self) -> Decimal | None:
        """Best ask at the trade."""
        return self._v[8]  # type: ignore[no-any-return]

    @property
    def bid(self) -> Decimal | None:
        """Best bid at the trade."""
        return self._v[9]  # type: ignore[no-any-return]

    @property
    def vwap(self) -> Decimal | None:
        """Volume-weighted average price."""
        return self._v[10]  # type: ignore[no-any-return]

    @property
    def side(self) -> Side | None:
        """The side that initiated the trade, None in auctions."""
        return self._v[11]  # type: ignore[no-any-return]

    @property
    def session(self) -> Session | None:
        """The session of the trade (``MARKET_CLS_CODE``), when KIS sent it."""
        return self._v[12]  # type: ignore[no-any-return]

    @property
    def market(self) -> Market | None:
        """The feed the trade came from (KRX, NXT or UNIFIED)."""
        return self._v[13]  # type: ignore[no-any-return]

    @property
    def raw(self) -> Mapping[str, str]:
        """Every field by its KIS name."""
        return self._raw

    def __getitem__(self, kis_name: str) -> str:
        """The raw string of a field by its KIS name."""
        return self.raw[kis_name]

    def _key(self) -> tuple[Any, ...]:
        return (
            self.symbol,
            self.time,
            self.price,
            self.change,
            self.change_rate,
            self.volume,
            self.cum_volume,
            self.cum_turnover,
            self.open,
            self.high,
            self.low,
            self.ask,
            self.bid,
            self.vwap,
            self.side,
            self.session,
            self.market,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quote):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_quote, (self._key(), dict(self.raw)))

    def __repr__(self) -> str:
        return (
            f"Quote(symbol={self.symbol!r}, time={self.time!r}, price={self.price!r}, "
            f"change={self.change!r}, change_rate={self.change_rate!r}, volume={self.volume!r}, "
            f"cum_volume={self.cum_volume!r}, side={self.side!r}, session={self.session!r}, "
            f"market={self.market!r})"
        )


def _rebuild_quote(key: tuple[Any, ...], raw: dict[str, str]) -> Quote:
    values = dict(zip(QUOTE_ATTRIBUTES, key, strict=True))
    return Quote(raw=raw, **values)


# -- Execution (H0STCNI0 / H0STCNI9) --------------------------------------------------------


class ExecutionKind(StrEnum):
    """What an execution notice reports."""

    ACCEPTED = "accepted"
    FILLED = "filled"
    MODIFIED = "modified"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


_EXEC_ATTRS: Final = (
    "original_order_id",
    "branch_no",
    "symbol",
    "side",
    "order_type",
    "qty",
    "price",
    "order_qty",
    "time",
    "name",
    "exchange",
    "venue",
)


_CURSOR_VERSION: Final = "v1"


class ExecutionCursor:
    """A consumer's position in this account's fills of one trading day.

    It records, per order, the cumulative filled quantity the consumer has received. Every
    :class:`Execution` delivered by an execution stream carries the cursor *after* it
    (:attr:`Execution.cursor`); persist ``str(cursor)`` and pass it back, in this process or a
    new one, as ``broker.executions(since=...)`` to receive exactly the fills after that point.
    Orders are compared without KIS's leading zeros.

    Example::

        saved = str(event.cursor)                      # "v1:20261201:42=5,43=10"
        stream = broker.executions(since=ExecutionCursor.parse(saved))
    """

    __slots__ = ("_day", "_filled", "_text")

    def __init__(self, day: date, filled: Mapping[str, int] | None = None) -> None:
        if not isinstance(day, date) or isinstance(day, datetime):
            raise TypeError("day must be a datetime.date")
        clean: dict[str, int] = {}
        for order_id, qty in (filled or {}).items():
            oid = normalize_order_id(str(order_id))
            if not oid.isdigit() or not oid.isascii():
                raise ValueError("cursor order ids must be KIS order numbers (digits)")
            if isinstance(qty, bool) or not isinstance(qty, int) or qty < 0:
                raise ValueError("cursor quantities must be ints >= 0")
            if qty:
                clean[oid] = qty
        self._day = day
        self._filled = clean
        self._text: str | None = None

    @classmethod
    def _trusted(cls, day: date, filled: dict[str, int]) -> ExecutionCursor:
        """Wrap an already normalized map the caller will never change (no copy, no checks)."""
        cursor = cls.__new__(cls)
        cursor._day = day
        cursor._filled = filled
        cursor._text = None
        return cursor

    @classmethod
    def parse(cls, text: str) -> ExecutionCursor:
        """Read a cursor written by ``str(cursor)``.

        Raises:
            ValueError: the text is not a cursor (surrounding whitespace is ignored).
        """
        if not isinstance(text, str):
            raise TypeError("an execution cursor is parsed from a str")
        parts = text.strip().split(":")
        if len(parts) != 3 or parts[0] != _CURSOR_VERSION:
            raise ValueError("not an execution cursor (expected 'v1:YYYYMMDD:...')")
        day = _yyyymmdd(parts[1]) if parts[1].isascii() else None
        if day is None:
            raise ValueError("execution cursor with a bad date")
        filled: dict[str, int] = {}
        if parts[2]:
            for item in parts[2].split(","):
                oid, sep, qty = item.partition("=")
                if not sep or not qty.isdigit() or not qty.isascii():
                    raise ValueError("execution cursor with a bad order entry")
                filled[oid] = int(qty)
        return cls(day, filled)

    @property
    def day(self) -> date:
        """The trading day (KST) the positions refer to."""
        return self._day

    @property
    def filled(self) -> Mapping[str, int]:
        """Cumulative filled quantity received per order (order ids without leading zeros)."""
        return dict(self._filled)

    def delivered(self, order_id: str) -> int:
        """The filled quantity of ``order_id`` the consumer had received at this point."""
        return self._filled.get(normalize_order_id(order_id), 0)

    def __str__(self) -> str:
        text = self._text
        if text is None:
            body = ",".join(f"{oid}={qty}" for oid, qty in sorted(self._filled.items()))
            text = f"{_CURSOR_VERSION}:{self._day:%Y%m%d}:{body}"
            self._text = text
        return text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExecutionCursor):
            return NotImplemented
        return self._day == other._day and self._filled == other._filled

    def __hash__(self) -> int:
        return hash(str(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (ExecutionCursor.parse, (str(self),))

    def __repr__(self) -> str:
        return f"ExecutionCursor({str(self)!r})"


class Execution:
    """An execution notice (H0STCNI0 live / H0STCNI9 paper), or a fill found by reconciliation.

    Attributes:
        kind: acceptance, fill, modification, cancellation or rejection.
        broker_order_id: KIS order number (ODNO) this event is about.
        original_order_id: for modifications and cancellations, the order they act on.
        branch_no: KRX forwarding order org number (KRX_FWDG_ORD_ORGNO).
        symbol: the KRX code.
        side: BUY or SELL.
        order_type: the order division, when known.
        qty: for FILLED, the quantity of this fill; otherwise the order quantity.
        price: for FILLED, the fill price; otherwise the order price.
        order_qty: the order's total quantity.
        time: event time, aware Asia/Seoul.
        source: ``"websocket"`` for notices, ``"reconcile"`` for fills found by gap-fill.
        name: the stock name, when KIS sent it.
        exchange: where the order was placed: KRX, NXT or SOR (KIS's smart order routing);
            from the notice's ``ORD_EXG_GB`` (1 KRX, 2 NXT, 3 SOR→KRX, 4 SOR→NXT) or the
            order row. None when unknown (the 23-field notice layout).
        venue: the market the order went to and fills on: KRX or NXT. For an SOR order it
            is where KIS routed it (``exchange`` is then ``SOR``); None when unknown.
        raw: every field by its KIS name (empty for reconcile events).
        cursor: the receiving consumer's position after this event (see
            :class:`ExecutionCursor`); None on events no execution stream delivered.
        replayed: True when the event was not delivered live from the socket to this
            consumer: a fill found over REST (gap-fill, replay) or one of today's earlier fills
            replayed when the stream started. ``time`` is still the event's own time.
    """

    __slots__ = ("_cursor", "_kind", "_oid", "_qty", "_raw", "_replayed", "_source", "_v")

    _v: tuple[Any, ...]
    _raw: Mapping[str, str]
    _kind: ExecutionKind
    _oid: str
    _source: Literal["websocket", "reconcile"]
    _qty: Any
    _cursor: ExecutionCursor | None
    _replayed: bool

    def __init__(
        self,
        *,
        kind: ExecutionKind,
        broker_order_id: str,
        original_order_id: str | None,
        branch_no: str | None,
        symbol: str,
        side: Side | None,
        order_type: OrderType | None,
        qty: int,
        price: Decimal | None,
        order_qty: int | None,
        time: datetime | None,
        source: Literal["websocket", "reconcile"] = "websocket",
        name: str | None = None,
        raw: Mapping[str, str] | None = None,
        cursor: ExecutionCursor | None = None,
        replayed: bool = False,
        exchange: Exchange | None = None,
        venue: Exchange | None = None,
    ) -> None:
        self._cursor = cursor
        self._replayed = replayed
        self._kind = kind
        self._oid = broker_order_id
        self._source = source
        self._qty = qty
        self._v = (
            original_order_id,
            branch_no,
            symbol,
            side,
            order_type,
            qty,
            price,
            order_qty,
            time,
            name,
            exchange,
            venue,
        )
        self._raw = dict(raw) if raw else {}

    # A notice decoded from a frame is a subclass (kis_async.stream.protocol) that reads
    # these attributes from the record when first asked; this class stores values.

    def _stamped(self, qty: int, cursor: ExecutionCursor, replayed: bool) -> Execution:
        """This event as one consumer receives it: its quantity, cursor and replay flag.

        A shallow copy (a decoded record stays unconverted).
        """
        cls = type(self)
        ex = cls.__new__(cls)
        for name in _slot_names(cls):
            with contextlib.suppress(AttributeError):
                setattr(ex, name, getattr(self, name))
        ex._qty = qty
        ex._cursor = cursor
        ex._replayed = replayed
        return ex

    @property
    def cursor(self) -> ExecutionCursor | None:
        """The receiving consumer's position after this event."""
        return self._cursor

    @property
    def replayed(self) -> bool:
        """True when this consumer got the event from a replay or REST, not live."""
        return self._replayed

    @property
    def kind(self) -> ExecutionKind:
        """Acceptance, fill, modification, cancellation or rejection."""
        return self._kind

    @property
    def broker_order_id(self) -> str:
        """KIS order number (ODNO)."""
        return self._oid

    @property
    def source(self) -> Literal["websocket", "reconcile"]:
        """``"websocket"`` for notices, ``"reconcile"`` for gap-fill events."""
        return self._source

    @property
    def original_order_id(self) -> str | None:
        """For modifications and cancellations, the order they act on."""
        return self._v[0]  # type: ignore[no-any-return]

    @property
    def branch_no(self) -> str | None:
        """KRX forwarding order org number."""
        return self._v[1]  # type: ignore[no-any-return]

    @property
    def symbol(self) -> str:
        """The KRX code."""
        return self._v[2]  # type: ignore[no-any-return]

    @property
    def side(self) -> Side | None:
        """BUY or SELL."""
        return self._v[3]  # type: ignore[no-any-return]

    @property
    def order_type(self) -> OrderType | None:
        """The order division, when known."""
        return self._v[4]  # type: ignore[no-any-return]

    @property
    def qty(self) -> int:
        """For FILLED the quantity of this fill; otherwise the order quantity."""
        return self._qty  # type: ignore[no-any-return]

    @property
    def price(self) -> Decimal | None:
        """For FILLED the fill price; otherwise the order price (None when 0: market)."""
        return self._v[6]  # type: ignore[no-any-return]

    @property
    def order_qty(self) -> int | None:
        """The order's total quantity."""
        return self._v[7]  # type: ignore[no-any-return]

    @property
    def time(self) -> datetime | None:
        """Event time, aware Asia/Seoul (the notice's or the REST row's own time)."""
        return self._v[8]  # type: ignore[no-any-return]

    @property
    def name(self) -> str | None:
        """The stock name, when KIS sent it."""
        return self._v[9]  # type: ignore[no-any-return]

    @property
    def exchange(self) -> Exchange | None:
        """Where the order was placed: KRX, NXT or SOR; None when unknown."""
        return self._v[10]  # type: ignore[no-any-return]

    @property
    def venue(self) -> Exchange | None:
        """The market the order went to (KRX or NXT; for SOR, where KIS routed it)."""
        return self._v[11]  # type: ignore[no-any-return]

    @property
    def raw(self) -> Mapping[str, str]:
        """Every field by its KIS name (empty for reconcile events)."""
        return self._raw

    def replace(self, **changes: Any) -> Execution:
        """Return a copy with ``changes`` applied (like ``dataclasses.replace``)."""
        values: dict[str, Any] = {
            "kind": self.kind,
            "broker_order_id": self.broker_order_id,
            "source": self.source,
            "raw": dict(self.raw),
            "cursor": self._cursor,
            "replayed": self._replayed,
        }
        values.update({attr: getattr(self, attr) for attr in _EXEC_ATTRS})
        values.update(changes)
        return Execution(**values)

    def _key(self) -> tuple[Any, ...]:
        return (
            self.kind,
            self.broker_order_id,
            self.source,
            *(getattr(self, attr) for attr in _EXEC_ATTRS),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Execution):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_execution, (self._key(), dict(self.raw), self._cursor, self._replayed))

    def __repr__(self) -> str:
        return (
            f"Execution(kind={self.kind!r}, broker_order_id={self.broker_order_id!r}, "
            f"original_order_id={self.original_order_id!r}, symbol={self.symbol!r}, "
            f"side={self.side!r}, order_type={self.order_type!r}, qty={self.qty!r}, "
            f"price={self.price!r}, order_qty={self.order_qty!r}, time={self.time!r}, "
            f"exchange={self.exchange!r}, venue={self.venue!r}, "
            f"source={self.source!r}, replayed={self._replayed!r})"
        )


_SLOTS: dict[type, tuple[str, ...]] = {}


def _slot_names(cls: type) -> tuple[str, ...]:
    names = _SLOTS.get(cls)
    if names is None:
        names = tuple(name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ()))
        _SLOTS[cls] = names
    return names


def _rebuild_execution(
    key: tuple[Any, ...],
    raw: dict[str, str],
    cursor: ExecutionCursor | None = None,
    replayed: bool = False,
) -> Execution:
    kind, oid, source, *rest = key
    values = dict(zip(_EXEC_ATTRS, rest, strict=True))
    return Execution(
        kind=kind,
        broker_order_id=oid,
        source=source,
        raw=raw,
        cursor=cursor,
        replayed=replayed,
        **values,
    )
