"""Order types per venue, OrderRequest venue/stop rules, sessions of KRX/NXT/SOR, and the
trading calendar (holiday API cache, offline fallbacks)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest

from kis_async import calendar
from kis_async.calendar import (
    MarketCalendar,
    Session,
    allowed_order_types,
    check_session,
    next_open,
    session_at,
)
from kis_async.errors import InvalidOrderError
from kis_async.models import KST, Exchange, Market, OrderRequest, OrderType

NXT_REFUSES = {"01", "02", "05", "06", "07", "41", "42", "43", "44", "45", "46", "47"}
SOR_REFUSES = {"02", "05", "06", "07", "22", "27", "28", "29"} | {str(c) for c in range(41, 48)}
KRX_REFUSES = {"27", "28", "29"}


def test_every_order_type_has_a_label_and_a_venue_rule() -> None:
    """Each ORD_DVSN member has a Korean label; venue refusals follow protocol doc §13, with
    the [CONFLICT] codes (22 on NXT, 21/23/24 on SOR) accepted."""
    assert len(OrderType) == 28
    for kind in OrderType:
        assert kind.label
        assert kind.allowed_on(Exchange.NXT) is (kind.value not in NXT_REFUSES), kind
        assert kind.allowed_on(Exchange.SOR) is (kind.value not in SOR_REFUSES), kind
        assert kind.allowed_on(Exchange.KRX) is (kind.value not in KRX_REFUSES), kind


@pytest.mark.parametrize("kind", list(OrderType))
def test_price_rules_per_type(kind: OrderType) -> None:
    """Priced types need a price, priceless types refuse one, mid-price types take either."""
    exchange = Exchange.NXT if kind.value in ("27", "28", "29") else Exchange.KRX
    stop = {"stop_price": 70_000} if kind is OrderType.STOP_LIMIT else {}
    if kind.requires_price:
        with pytest.raises(InvalidOrderError, match="needs a price"):
            OrderRequest("005930", "buy", 1, order_type=kind, exchange=exchange, **stop)
        made = OrderRequest(
            "005930", "buy", 1, order_type=kind, price=70_100, exchange=exchange, **stop
        )
        assert made.price == Decimal(70_100)
    elif kind.accepts_price:
        assert OrderRequest("005930", "buy", 1, order_type=kind).price is None
        assert OrderRequest("005930", "buy", 1, order_type=kind, price="70100").price == 70_100
        with pytest.raises(InvalidOrderError, match="plain ASCII number"):
            OrderRequest("005930", "buy", 1, order_type=kind, price="70100\n")
    else:
        with pytest.raises(InvalidOrderError, match="takes no price"):
            OrderRequest("005930", "buy", 1, order_type=kind, price=70_100, exchange=exchange)
        assert OrderRequest("005930", "buy", 1, order_type=kind, exchange=exchange).price is None


def test_stop_price_rules() -> None:
    """STOP_LIMIT needs an on-tick stop_price; other types refuse one."""
    with pytest.raises(InvalidOrderError, match="needs a stop_price"):
        OrderRequest("005930", "buy", 1, order_type="22", price=70_000)
    with pytest.raises(InvalidOrderError, match="stop_price 70050 is not on the KRX tick grid"):
        OrderRequest("005930", "buy", 1, order_type="22", price=70_000, stop_price=70_050)
    with pytest.raises(InvalidOrderError, match="only for STOP_LIMIT"):
        OrderRequest("005930", "buy", 1, price=70_000, stop_price=69_000)
    made = OrderRequest("005930", "buy", 1, order_type="22", price=70_000, stop_price="69500")
    assert made.stop_price == Decimal(69_500)
    assert made.stop_price_text == "69500"
    assert "stop_price" in repr(made)


def test_venue_rule_messages_and_parsing() -> None:
    """Venue names parse in any case with whitespace; refusals name the rule."""
    assert OrderRequest("005930", "buy", 1, price=70_000, exchange=" nxt\n").exchange is (
        Exchange.NXT
    )
    with pytest.raises(InvalidOrderError, match="unknown exchange"):
        OrderRequest("005930", "buy", 1, price=70_000, exchange="NASDAQ")
    with pytest.raises(InvalidOrderError, match=r"KRX after-market types \(41-47\) are KRX-only"):
        OrderRequest("005930", "buy", 1, order_type="41", price=70_000, exchange="SOR")
    with pytest.raises(InvalidOrderError, match=r"NXT pre-market types \(27-29\) are NXT-only"):
        OrderRequest("005930", "buy", 1, order_type="27", price=70_000)
    with pytest.raises(InvalidOrderError, match="SOR takes no stop-limit"):
        OrderRequest(
            "005930", "buy", 1, order_type="22", price=70_000, stop_price=69_000, exchange="SOR"
        )
    assert Market.parse("unified") is Market.UNIFIED
    assert Market.parse("nx") is Market.NXT
    with pytest.raises(ValueError, match="unknown market"):
        Market.parse("X")


def test_fingerprint_is_unchanged_for_krx_orders() -> None:
    """A default KRX order keeps its old fingerprint (journals stay valid); a venue or a stop
    price makes a different one."""
    krx = OrderRequest("005930", "buy", 3, price=70_000)
    assert krx.fingerprint == "005930|02|00|3|70000"
    assert OrderRequest("005930", "buy", 3, price=70_000, exchange="NXT").fingerprint != (
        krx.fingerprint
    )
    assert krx.replace(exchange="SOR").exchange is Exchange.SOR


def _kst(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), KST)


DAY = date(2026, 12, 1)
OLD = date(2026, 6, 2)


@pytest.mark.parametrize(
    ("when", "exchange", "session"),
    [
        (_kst(DAY, 7, 59), Exchange.KRX, Session.CLOSED),
        (_kst(DAY, 8, 0), Exchange.NXT, Session.PRE_MARKET),
        (_kst(DAY, 8, 30), Exchange.KRX, Session.PRE_MARKET),
        (_kst(DAY, 8, 45), Exchange.KRX, Session.OPENING_AUCTION),
        (_kst(DAY, 8, 55), Exchange.NXT, Session.CLOSED),
        (_kst(DAY, 9, 0), Exchange.KRX, Session.REGULAR),
        (_kst(DAY, 15, 25), Exchange.KRX, Session.CLOSING_AUCTION),
        (_kst(DAY, 15, 25), Exchange.NXT, Session.CLOSED),
        (_kst(DAY, 15, 35), Exchange.KRX, Session.CLOSED),
        (_kst(DAY, 15, 35), Exchange.SOR, Session.AFTER_MARKET),
        (_kst(DAY, 15, 45), Exchange.KRX, Session.AFTER_HOURS_CLOSING_PRICE),
        (_kst(DAY, 17, 0), Exchange.KRX, Session.AFTER_MARKET),
        (_kst(OLD, 17, 0), Exchange.KRX, Session.AFTER_HOURS_SINGLE_PRICE),
        (_kst(OLD, 18, 30), Exchange.KRX, Session.CLOSED),
        (_kst(DAY, 19, 59), Exchange.NXT, Session.AFTER_MARKET),
        (_kst(DAY, 20, 0), Exchange.NXT, Session.CLOSED),
        (_kst(date(2026, 12, 25), 10, 0), Exchange.KRX, Session.CLOSED),
        (_kst(date(2026, 12, 5), 10, 0), Exchange.NXT, Session.CLOSED),
        (
            datetime(2026, 12, 1, 1, 0, tzinfo=calendar.KST).astimezone(),
            Exchange.KRX,
            Session.CLOSED,
        ),
    ],
)
def test_session_at(when: datetime, exchange: Exchange, session: Session) -> None:
    """The documented hours per venue; holidays and weekends are closed."""
    assert session_at(when, exchange) is session


def test_session_at_naive_is_kst_and_override_wins() -> None:
    """A naive time is read as KST; trading_day=False closes any hour."""
    assert session_at(datetime(2026, 12, 1, 10, 0), "krx") is Session.REGULAR  # noqa: DTZ001
    assert session_at(_kst(DAY, 10, 0), Exchange.KRX, trading_day=False) is Session.CLOSED


def test_allowed_types_and_check_session() -> None:
    """Types per session, venue rules applied; check_session names the session."""
    assert OrderType.MARKET not in allowed_order_types(Exchange.NXT, Session.REGULAR)
    assert OrderType.NXT_PRE_MARKET_LIMIT in allowed_order_types("NXT", Session.PRE_MARKET)
    assert allowed_order_types(Exchange.KRX, Session.AFTER_MARKET) == frozenset(
        t for t in OrderType if "41" <= t.value <= "47"
    )
    assert allowed_order_types(Exchange.SOR, Session.AFTER_MARKET) == (
        allowed_order_types(Exchange.NXT, Session.AFTER_MARKET)
        & allowed_order_types(Exchange.SOR, Session.REGULAR)
    )
    request = OrderRequest("005930", "buy", 1, order_type="41", price=70_000)
    assert check_session(request, _kst(DAY, 16, 30)) is Session.AFTER_MARKET
    with pytest.raises(InvalidOrderError, match="during its regular session"):
        check_session(request, _kst(DAY, 10, 0))
    with pytest.raises(InvalidOrderError, match="closed at 2026-12-01 21:00"):
        check_session(request, _kst(DAY, 21, 0))


def test_next_open() -> None:
    """Friday evening -> Monday's first session; a running session counts from now; the
    Christmas holiday is skipped."""
    friday = _kst(date(2026, 12, 4), 21, 0)
    assert next_open(Exchange.KRX, after=friday) == _kst(date(2026, 12, 7), 8, 30)
    assert next_open(Exchange.NXT, after=friday) == _kst(date(2026, 12, 7), 8, 0)
    assert next_open(Exchange.KRX, after=_kst(DAY, 10, 0)) == _kst(DAY, 10, 0)
    assert next_open("SOR", after=_kst(DAY, 15, 32)) == _kst(DAY, 15, 32)
    assert next_open(after=_kst(date(2026, 12, 24), 21, 0)) == _kst(date(2026, 12, 28), 8, 30)


def test_builtin_fallback_without_exchange_calendars(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the optional extra the built-in rule answers: weekends and the listed days."""
    monkeypatch.setattr(calendar, "_xkrx", lambda: None)
    assert calendar.fallback_source() == "builtin"
    assert calendar.fallback_is_trading_day(date(2026, 6, 3)) is False  # local elections
    assert calendar.fallback_is_trading_day(date(2026, 12, 31)) is False  # year-end closing
    assert calendar.fallback_is_trading_day(date(2026, 12, 5)) is False  # Saturday
    assert calendar.fallback_is_trading_day(date(2026, 12, 30)) is True


def test_exchange_calendars_agrees_with_the_builtin_list() -> None:
    """With the extra installed, XKRX and the built-in list agree on 2025-2026 (except the
    2026-06-03 election day XKRX does not know)."""
    assert calendar.fallback_source() == "exchange-calendars"
    day = date(2025, 1, 1)
    disagree = []
    while day <= date(2026, 12, 31):
        builtin = day.weekday() < 5 and day not in calendar.BUILTIN_HOLIDAYS
        if calendar.fallback_is_trading_day(day) != builtin:
            disagree.append(day)
        day = date.fromordinal(day.toordinal() + 1)
    assert disagree == [date(2026, 6, 3)]


class _FakeApi:
    def __init__(self, answer: Mapping[date, bool]) -> None:
        self.answer = dict(answer)
        self.bases: list[date] = []

    async def __call__(self, base: date) -> Mapping[date, bool]:
        self.bases.append(base)
        return {d: v for d, v in self.answer.items() if d >= base}


async def test_market_calendar_caches_on_disk_once_a_day(tmp_path: Path) -> None:
    """The API is asked once per base date and day; the answer wins over the fallback, is
    saved to disk and read back by a new calendar; the next day asks again."""
    api = _FakeApi({date(2026, 12, 1): True, date(2026, 12, 2): False, date(2026, 12, 3): True})
    today = [date(2026, 12, 1)]
    cal = MarketCalendar(api, cache_dir=tmp_path, today=lambda: today[0])
    assert cal.uses_api
    assert await cal.is_trading_day(date(2026, 12, 2)) is False
    assert await cal.trading_days(date(2026, 12, 1), date(2026, 12, 3)) == [
        date(2026, 12, 1),
        date(2026, 12, 3),
    ]
    assert await cal.is_trading_day(date(2026, 12, 10)) is True  # not in the answer: fallback
    assert api.bases == [date(2026, 12, 1)]
    reread = MarketCalendar(api, cache_dir=tmp_path, today=lambda: today[0])
    assert await reread.is_trading_day(date(2026, 12, 2)) is False
    assert await reread.is_trading_day(date(2026, 12, 11)) is True
    assert api.bases == [date(2026, 12, 1)]
    today[0] = date(2026, 12, 2)
    await reread.is_trading_day(date(2026, 12, 11))
    assert api.bases == [date(2026, 12, 1), date(2026, 12, 2)]
    with pytest.raises(ValueError, match="start is after end"):
        await cal.trading_days(date(2026, 12, 3), date(2026, 12, 1))


async def test_market_calendar_tolerates_a_corrupt_cache(tmp_path: Path) -> None:
    """A damaged cache file is ignored and rewritten."""
    (tmp_path / "kis-holidays.json").write_text("{not json\n", encoding="utf-8")
    api = _FakeApi({date(2026, 12, 2): False})
    cal = MarketCalendar(api, cache_dir=tmp_path, today=lambda: date(2026, 12, 1))
    assert await cal.is_trading_day(date(2026, 12, 2)) is False
    assert "2026-12-02" in (tmp_path / "kis-holidays.json").read_text(encoding="utf-8")


async def test_market_calendar_without_api_uses_the_fallback() -> None:
    """Paper mode: no API, the offline calendar answers."""
    cal = MarketCalendar(None)
    assert not cal.uses_api
    assert await cal.is_trading_day(date(2026, 12, 25)) is False
    assert await cal.is_trading_day(date(2026, 12, 24)) is True
