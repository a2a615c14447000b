"""Venues of the simulated market: order-type families, the simulator's trading calendar and
sessions, SOR routing and the integrated (KRX + NXT) book.

Session hours and the order types each venue takes per session are the SDK's
(:mod:`kis_async.calendar`, every hour with its source), so the simulator and the client agree
on one table. The simulator's calendar is deterministic: weekends, the built-in KRX holiday list
and any extra holidays given to the simulator; it never consults exchange-calendars, so the same
seed gives the same answers on every machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Final, Protocol

from kis_async.calendar import BUILTIN_HOLIDAYS, Session, allowed_order_types, session_at
from kis_async.models import Exchange, OrderType

__all__ = [
    "BEST_TYPES",
    "CLOSE_TYPES",
    "FOK_TYPES",
    "IOC_TYPES",
    "KRX",
    "MID_TYPES",
    "NXT",
    "OPTIONAL_PRICE_TYPES",
    "ORDER_TYPE_NAMES",
    "PRICED_TYPES",
    "PRIORITY_TYPES",
    "SOR",
    "UNPRICED_TYPES",
    "SimCalendar",
    "exg_gb",
    "market_cls_code",
    "merge_levels",
    "route_sor",
]

KRX: Final = "KRX"
NXT: Final = "NXT"
SOR: Final = "SOR"

_ALL: Final = {t.value: t for t in OrderType}
#: ORD_DVSN codes that carry their own limit price.
PRICED_TYPES: Final = frozenset(t.value for t in OrderType if t.requires_price)
#: Mid-price codes: a price is an optional cap.
OPTIONAL_PRICE_TYPES: Final = frozenset({"21", "23", "24"})
#: Codes sent with ``ORD_UNPR "0"``.
UNPRICED_TYPES: Final = frozenset(_ALL) - PRICED_TYPES - OPTIONAL_PRICE_TYPES
IOC_TYPES: Final = frozenset(t.value for t in OrderType if t.is_ioc)
FOK_TYPES: Final = frozenset(t.value for t in OrderType if t.is_fok)
#: 최유리: priced at the best opposite quote on arrival.
BEST_TYPES: Final = frozenset({"03", "15", "16", "28", "44", "45", "46"})
#: 최우선: priced at the best same-side quote on arrival.
PRIORITY_TYPES: Final = frozenset({"04", "29", "47"})
#: Midpoint of the best quotes.
MID_TYPES: Final = frozenset({"21", "23", "24"})
#: Closing-price sessions: priced at the last price.
CLOSE_TYPES: Final = frozenset({"05", "06"})
ORDER_TYPE_NAMES: Final = {code: member.label for code, member in _ALL.items()}


@dataclass
class SimCalendar:
    """The simulator's deterministic trading calendar.

    Attributes:
        holidays: weekday holidays on top of :data:`kis_async.calendar.BUILTIN_HOLIDAYS`.
        open_days: days forced open (a test that needs a weekend to trade).
    """

    holidays: set[date] = field(default_factory=set)
    open_days: set[date] = field(default_factory=set)

    def is_trading_day(self, day: date) -> bool:
        """True when the simulated KRX trades on ``day``."""
        if day in self.open_days:
            return True
        return day.weekday() < 5 and day not in BUILTIN_HOLIDAYS and day not in self.holidays

    def session(self, when: datetime, venue: str) -> Session:
        """The session of ``venue`` (KRX, NXT or SOR) at ``when``."""
        return session_at(when, venue, trading_day=self.is_trading_day(when.date()))

    def takes(self, when: datetime, placed_on: str, order_type: str) -> bool:
        """True when ``placed_on`` takes ``order_type`` at ``when``."""
        kind = _ALL.get(order_type)
        if kind is None:
            return False
        return kind in allowed_order_types(placed_on, self.session(when, placed_on))

    def default_day(self, near: date) -> date:
        """The latest trading day on or before ``near``."""
        day = near
        while not self.is_trading_day(day):
            day = date.fromordinal(day.toordinal() - 1)
        return day


#: When the simulated day starts by default: mid-morning of the regular session.
DEFAULT_MARKET_TIME: Final = time(10, 0)


class _Level(Protocol):
    @property
    def price(self) -> int: ...

    @property
    def qty(self) -> int: ...


def merge_levels(
    first: Iterable[_Level], second: Iterable[_Level], *, ascending: bool, depth: int = 10
) -> list[tuple[int, int]]:
    """Two venues' levels merged by price (quantities summed), best first, ``depth`` deep."""
    total: dict[int, int] = {}
    for level in (*first, *second):
        total[level.price] = total.get(level.price, 0) + level.qty
    prices = sorted(total, reverse=not ascending)[:depth]
    return [(p, total[p]) for p in prices]


def route_sor(
    *,
    buy: bool,
    order_type: str,
    krx_best: int | None,
    nxt_best: int | None,
    krx_open: bool,
    nxt_open: bool,
) -> str:
    """The venue an SOR order goes to: the better price among the venues that are open and
    take the type (ties go to KRX, the deeper book). ``*_best`` is the best opposite quote.
    """
    kind = _ALL[order_type]
    krx_ok = krx_open and kind.allowed_on(Exchange.KRX)
    nxt_ok = nxt_open and kind.allowed_on(Exchange.NXT)
    if krx_ok and not nxt_ok:
        return KRX
    if nxt_ok and not krx_ok:
        return NXT
    if nxt_best is None:
        return KRX
    if krx_best is None:
        return NXT
    better = nxt_best < krx_best if buy else nxt_best > krx_best
    return NXT if better else KRX


def exg_gb(placed_on: str, venue: str) -> str:
    """``ORD_EXG_GB`` of a notice: 1 KRX, 2 NXT, 3 SOR→KRX, 4 SOR→NXT (protocol doc §7.3)."""
    if placed_on == SOR:
        return "4" if venue == NXT else "3"
    return "2" if venue == NXT else "1"


def market_cls_code(session: Session) -> str:
    """``MARKET_CLS_CODE`` of a real-time record: 1 pre, 2 regular, 3 after, 5 closing
    (protocol doc §7.1)."""
    if session in (Session.PRE_MARKET, Session.OPENING_AUCTION):
        return "1"
    if session is Session.CLOSING_AUCTION:
        return "5"
    if session in (
        Session.AFTER_HOURS_CLOSING_PRICE,
        Session.AFTER_HOURS_SINGLE_PRICE,
        Session.AFTER_MARKET,
    ):
        return "3"
    return "2"


def levels_text(levels: Sequence[tuple[int, int]], depth: int = 10) -> tuple[list[str], list[str]]:
    """(prices, quantities) as strings, padded with "0" to ``depth``."""
    padded = list(levels[:depth]) + [(0, 0)] * (depth - min(depth, len(levels)))
    return [str(p) for p, _ in padded], [str(q) for _, q in padded]
