"""Trading days and sessions of KRX and NXT.

Trading days come from KIS's holiday API ``chk-holiday`` (``CTCA0903R``, live only; protocol doc
§11.1) when a live broker asks, cached on disk and asked at most once a day per base date as KIS
requests. Without the API (paper mode, offline, or :func:`fallback_is_trading_day`) the
``exchange-calendars`` XKRX calendar answers when the optional ``calendar`` extra is installed;
without it a built-in rule does: weekends and the KRX holidays listed in
:data:`BUILTIN_HOLIDAYS` (2025-2027, from the government's public-holiday schedule and KRX's
year-end closing day). The built-in list does not know holidays announced later (a temporary
holiday, an election day): install the extra, or use the live API.

Session hours (KST; protocol doc §8, §11.3, whose sources are cited per row):

========================================  ===========  ========================================
Session                                   Hours        Source
========================================  ===========  ========================================
KRX pre-market closing price (05)         08:30-08:40  kis-trader ``order.py``; press (2025-03)
KRX opening auction (call)                08:40-09:00  press (opening call from 08:30)
KRX regular                               09:00-15:20  OTA backtester ``korean_market.py``
KRX closing auction                       15:20-15:30  OTA backtester; press
KRX post-market closing price (06)        15:40-16:00  kis-trader; press
KRX after-hours single price (07)         16:00-18:00  OTA ``H0STOAA0`` docs; until 2026-09-13
KRX after-market (41-47)                  16:00-20:00  KIS notice 2026-09-09 via kis-trader;
                                                       from 2026-09-14
NXT pre-market (27-29 and limit types)    08:00-08:50  press (edaily 2025-03-04); kis-trader
NXT main                                  09:00-15:20  press
NXT after-market (call 15:30-15:40)       15:30-20:00  press; Kiwoom user guide
========================================  ===========  ========================================

KRX's opening call takes orders from 08:30 while the pre-market closing-price session runs, so
08:30-08:40 is reported as :attr:`Session.PRE_MARKET` and takes both kinds. The announced KRX
07:00-08:00 pre-market is not modelled (protocol doc §11.3 marks it [UNCERTAIN]). NXT pauses
08:50-09:00 and 15:20-15:30 (reported :attr:`Session.CLOSED`). SOR reports KRX's session while
KRX's continuous or call market runs and NXT's otherwise, since SOR can only route to NXT then.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final

from kis_async.errors import InvalidOrderError
from kis_async.models import KST, Exchange, OrderRequest, OrderType
from kis_async.models.market import Session

__all__ = [
    "AFTER_MARKET_START",
    "BUILTIN_HOLIDAYS",
    "MarketCalendar",
    "Session",
    "allowed_order_types",
    "check_session",
    "fallback_is_trading_day",
    "fallback_source",
    "next_open",
    "session_at",
    "sessions_of_day",
]

logger = logging.getLogger("kis_async.calendar")

#: The first day of KRX's 16:00-20:00 after-market (KIS notice 2026-09-09, protocol doc §4.1).
AFTER_MARKET_START: Final = date(2026, 9, 14)


_Hours = tuple[time, time, Session]

_KRX_COMMON: Final[tuple[_Hours, ...]] = (
    (time(8, 30), time(8, 40), Session.PRE_MARKET),
    (time(8, 40), time(9, 0), Session.OPENING_AUCTION),
    (time(9, 0), time(15, 20), Session.REGULAR),
    (time(15, 20), time(15, 30), Session.CLOSING_AUCTION),
    (time(15, 40), time(16, 0), Session.AFTER_HOURS_CLOSING_PRICE),
)
_KRX_BEFORE: Final = (*_KRX_COMMON, (time(16, 0), time(18, 0), Session.AFTER_HOURS_SINGLE_PRICE))
_KRX_AFTER: Final = (*_KRX_COMMON, (time(16, 0), time(20, 0), Session.AFTER_MARKET))
_NXT: Final[tuple[_Hours, ...]] = (
    (time(8, 0), time(8, 50), Session.PRE_MARKET),
    (time(9, 0), time(15, 20), Session.REGULAR),
    (time(15, 30), time(20, 0), Session.AFTER_MARKET),
)

_CONTINUOUS: Final = frozenset(
    {
        OrderType.LIMIT,
        OrderType.MARKET,
        OrderType.CONDITIONAL_LIMIT,
        OrderType.BEST_LIMIT,
        OrderType.PRIORITY_LIMIT,
        OrderType.IOC_LIMIT,
        OrderType.FOK_LIMIT,
        OrderType.IOC_MARKET,
        OrderType.FOK_MARKET,
        OrderType.IOC_BEST,
        OrderType.FOK_BEST,
        OrderType.MID_PRICE,
        OrderType.STOP_LIMIT,
        OrderType.IOC_MID_PRICE,
        OrderType.FOK_MID_PRICE,
    }
)
# Call auctions take plain limit/market/conditional (and stop-limit, held until triggered);
# immediate types and quote-pegged types have nothing to execute against (the SDK's reading).
_CALL: Final = frozenset(
    {OrderType.LIMIT, OrderType.MARKET, OrderType.CONDITIONAL_LIMIT, OrderType.STOP_LIMIT}
)
_NXT_PRE: Final = frozenset(
    {
        OrderType.NXT_PRE_MARKET_LIMIT,
        OrderType.NXT_PRE_MARKET_BEST,
        OrderType.NXT_PRE_MARKET_PRIORITY,
    }
)
_KRX_AFTER_MARKET: Final = frozenset(t for t in OrderType if "41" <= t.value <= "47")

_KRX_TYPES: Final[Mapping[Session, frozenset[OrderType]]] = {
    Session.PRE_MARKET: _CALL | {OrderType.PRE_MARKET_CLOSE},
    Session.OPENING_AUCTION: _CALL,
    Session.REGULAR: _CONTINUOUS,
    Session.CLOSING_AUCTION: _CALL,
    Session.AFTER_HOURS_CLOSING_PRICE: frozenset({OrderType.AFTER_MARKET_CLOSE}),
    Session.AFTER_HOURS_SINGLE_PRICE: frozenset({OrderType.AFTER_HOURS_SINGLE}),
    Session.AFTER_MARKET: _KRX_AFTER_MARKET,
}
# NXT's pre- and after-market are continuous markets (press); the pre-market also takes its own
# 27-29 codes. Venue rules (no market orders on NXT...) are applied on top.
_NXT_TYPES: Final[Mapping[Session, frozenset[OrderType]]] = {
    Session.PRE_MARKET: _CONTINUOUS | _NXT_PRE,
    Session.REGULAR: _CONTINUOUS,
    Session.AFTER_MARKET: _CONTINUOUS,
}

#: KRX holidays on weekdays, 2025-2027: public holidays (incl. substitute days), Labour Day
#: (KRX closes) and the year-end closing day (Dec 31). Source: the government's published
#: holiday schedule; election days as announced. Used only when neither the KIS holiday API nor
#: exchange-calendars is available.
BUILTIN_HOLIDAYS: Final = frozenset(
    date.fromisoformat(d)
    for d in (
        # 2025
        "2025-01-01", "2025-01-27", "2025-01-28", "2025-01-29", "2025-01-30", "2025-03-03",
        "2025-05-01", "2025-05-05", "2025-05-06", "2025-06-03", "2025-06-06", "2025-08-15",
        "2025-10-03", "2025-10-06", "2025-10-07", "2025-10-08", "2025-10-09", "2025-12-25",
        "2025-12-31",
        # 2026
        "2026-01-01", "2026-02-16", "2026-02-17", "2026-02-18", "2026-03-02", "2026-05-01",
        "2026-05-05", "2026-05-25", "2026-06-03", "2026-08-17", "2026-09-24", "2026-09-25",
        "2026-10-05", "2026-10-09", "2026-12-25", "2026-12-31",
        # 2027
        "2027-01-01", "2027-02-08", "2027-02-09", "2027-03-01", "2027-05-05", "2027-05-13",
        "2027-08-16", "2027-09-14", "2027-09-15", "2027-09-16", "2027-10-04", "2027-10-11",
        "2027-12-27", "2027-12-31",
    )
)  # fmt: skip


@cache
def _xkrx() -> Any:
    """The exchange-calendars XKRX calendar, or None when the extra is not installed."""
    # exchange-calendars on recent pandas emits pandas deprecation warnings that are not ours
    # to act on; they are silenced around its calls only.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # Optional and heavy (pandas): imported on first use only.
            module = importlib.import_module("exchange_calendars")
        except ImportError:
            return None
        return module.get_calendar("XKRX")


def fallback_source() -> str:
    """``"exchange-calendars"`` when the XKRX calendar is installed, else ``"builtin"``."""
    return "exchange-calendars" if _xkrx() is not None else "builtin"


def fallback_is_trading_day(day: date) -> bool:
    """Whether KRX trades on ``day`` without asking KIS (XKRX, else the built-in rule)."""
    cal = _xkrx()
    if cal is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first, last = cal.first_session.date(), cal.last_session.date()
            if first <= day <= last:
                return bool(cal.is_session(day.isoformat()))
    return day.weekday() < 5 and day not in BUILTIN_HOLIDAYS


def _hours(exchange: Exchange, day: date) -> tuple[_Hours, ...]:
    if exchange is Exchange.NXT:
        return _NXT
    return _KRX_AFTER if day >= AFTER_MARKET_START else _KRX_BEFORE


def sessions_of_day(
    day: date, exchange: Exchange | str = Exchange.KRX, *, trading_day: bool | None = None
) -> list[tuple[datetime, datetime, Session]]:
    """The sessions of ``exchange`` on ``day`` as (start, end, session), KST, in order.

    ``trading_day`` overrides the calendar (None: :func:`fallback_is_trading_day`). SOR lists
    KRX's sessions.
    """
    venue = Exchange.parse(exchange)
    if not (fallback_is_trading_day(day) if trading_day is None else trading_day):
        return []
    hours = _hours(Exchange.KRX if venue is Exchange.SOR else venue, day)
    return [(datetime.combine(day, a, KST), datetime.combine(day, b, KST), s) for a, b, s in hours]


def _venue_session(when: datetime, venue: Exchange) -> Session:
    local = when.astimezone(KST)
    clock = local.time()
    for start, end, session in _hours(venue, local.date()):
        if start <= clock < end:
            return session
    return Session.CLOSED


def session_at(
    when: datetime, exchange: Exchange | str = Exchange.KRX, *, trading_day: bool | None = None
) -> Session:
    """The session of ``exchange`` at ``when`` (an aware datetime; naive means KST).

    ``trading_day`` overrides the calendar (None: :func:`fallback_is_trading_day`; pass
    ``await broker.is_trading_day(day)`` to use KIS's holiday API).
    """
    venue = Exchange.parse(exchange)
    local = when.replace(tzinfo=KST) if when.tzinfo is None else when.astimezone(KST)
    open_day = fallback_is_trading_day(local.date()) if trading_day is None else trading_day
    if not open_day:
        return Session.CLOSED
    if venue is not Exchange.SOR:
        return _venue_session(local, venue)
    krx = _venue_session(local, Exchange.KRX)
    if krx in (Session.OPENING_AUCTION, Session.REGULAR, Session.CLOSING_AUCTION):
        return krx
    return _venue_session(local, Exchange.NXT)


def allowed_order_types(exchange: Exchange | str, session: Session) -> frozenset[OrderType]:
    """The order types ``exchange`` takes during ``session`` (venue rules included)."""
    venue = Exchange.parse(exchange)
    routed = venue
    if venue is Exchange.KRX:
        table = _KRX_TYPES
    elif venue is Exchange.NXT:
        table = _NXT_TYPES
    else:
        # SOR routes to KRX while KRX's market runs, else to NXT: its session's types on
        # that venue, and that venue's rules on top of SOR's.
        routed = Exchange.KRX if session in _SOR_KRX_SESSIONS else Exchange.NXT
        table = _KRX_TYPES if routed is Exchange.KRX else _NXT_TYPES
    return frozenset(
        t for t in table.get(session, frozenset()) if t.allowed_on(venue) and t.allowed_on(routed)
    )


_SOR_KRX_SESSIONS: Final = frozenset(
    {Session.OPENING_AUCTION, Session.REGULAR, Session.CLOSING_AUCTION}
)


def check_session(
    request: OrderRequest, when: datetime, *, trading_day: bool | None = None
) -> Session:
    """Check that ``request``'s venue takes its order type at ``when``; return the session.

    Raises:
        InvalidOrderError: naming the session and the rule.
    """
    session = session_at(when, request.exchange, trading_day=trading_day)
    if request.order_type in allowed_order_types(request.exchange, session):
        return session
    stamp = when.astimezone(KST).strftime("%Y-%m-%d %H:%M")
    if session is Session.CLOSED:
        raise InvalidOrderError(
            f"{request.exchange.value} is closed at {stamp} KST: a {request.order_type.name} "
            "order cannot be sent now"
        )
    raise InvalidOrderError(
        f"{request.exchange.value} does not take {request.order_type.name} "
        f"({request.order_type.value}) orders during its {session.value} session "
        f"({stamp} KST)"
    )


def next_open(
    exchange: Exchange | str = Exchange.KRX,
    *,
    after: datetime | None = None,
    is_trading_day: Callable[[date], bool] = fallback_is_trading_day,
) -> datetime:
    """The start of the next session of ``exchange`` that takes orders, after ``after``
    (default: now). Sessions already running count from ``after`` itself.

    Raises:
        LookupError: no trading day within a year (a broken calendar).
    """
    venue = Exchange.parse(exchange)
    moment = (after or datetime.now(KST)).astimezone(KST)
    for offset in range(370):
        day = moment.date() + timedelta(days=offset)
        if not is_trading_day(day):
            continue
        if venue is Exchange.SOR:
            # SOR trades while KRX's market runs or, outside it, while NXT's does.
            spans = [
                (start, end)
                for start, end, session in sessions_of_day(day, Exchange.KRX, trading_day=True)
                if session in _SOR_KRX_SESSIONS
            ]
            spans += [(a, b) for a, b, _ in sessions_of_day(day, Exchange.NXT, trading_day=True)]
        else:
            spans = [(a, b) for a, b, _ in sessions_of_day(day, venue, trading_day=True)]
        starts = [max(start, moment) for start, end in spans if end > moment]
        if starts:
            return min(starts)
    raise LookupError("no trading day within a year")


HolidayFetcher = Callable[[date], Awaitable[Mapping[date, bool]]]


class MarketCalendar:
    """Trading days from KIS's holiday API with a once-a-day disk cache and a fallback.

    Args:
        fetch: the holiday API call (``base date -> {day: open}``), or None to use only the
            fallback (paper mode: ``chk-holiday`` exists only on the live servers).
        cache_dir: where ``kis-holidays.json`` is kept (None: memory only).
        today: the current KST date (injectable for tests).
    """

    def __init__(
        self,
        fetch: HolidayFetcher | None,
        *,
        cache_dir: Path | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        self._fetch = fetch
        self._path = cache_dir / "kis-holidays.json" if cache_dir is not None else None
        self._today = today or (lambda: datetime.now(KST).date())
        self._days: dict[date, bool] = {}
        self._asked: dict[str, str] = {}  # base date -> the day it was asked
        self._loaded = False

    @property
    def uses_api(self) -> bool:
        """True when KIS's holiday API is consulted (live mode)."""
        return self._fetch is not None

    def _load(self) -> None:
        if self._loaded or self._path is None:
            self._loaded = True
            return
        self._loaded = True
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            self._days = {date.fromisoformat(k): bool(v) for k, v in data["days"].items()}
            self._asked = {str(k): str(v) for k, v in data.get("asked", {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self._days, self._asked = {}, {}

    def _save(self) -> None:
        if self._path is None:
            return
        data = {
            "days": {d.isoformat(): v for d, v in sorted(self._days.items())},
            "asked": self._asked,
        }
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self._path)
        except OSError as exc:
            logger.warning("holiday cache not written: %s", exc)

    async def _ensure(self, day: date) -> None:
        self._load()
        if self._fetch is None or day in self._days:
            return
        today = self._today()
        base = min(day, today)
        key = base.isoformat()
        if self._asked.get(key) == today.isoformat():
            return  # asked today already for this base date: KIS asks for ~1 call a day
        answer = await self._fetch(base)
        self._days.update(answer)
        self._asked[key] = today.isoformat()
        self._save()

    async def is_trading_day(self, day: date) -> bool:
        """Whether KRX trades on ``day`` (``opnd_yn`` of chk-holiday, else the fallback)."""
        await self._ensure(day)
        known = self._days.get(day)
        return fallback_is_trading_day(day) if known is None else known

    async def trading_days(self, start: date, end: date) -> list[date]:
        """The trading days from ``start`` to ``end``, both included.

        Raises:
            ValueError: ``start`` is after ``end``.
        """
        if start > end:
            raise ValueError("trading_days: start is after end")
        return [d for d in _days(start, end) if await self.is_trading_day(d)]


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)
