"""Every order type inside and outside its session (the simulator's market clock set per
case), the opt-in client-side session check, paper-mode refusals and the trading calendar."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kis_async import (
    Exchange,
    InvalidOrderError,
    KISBroker,
    Market,
    Mode,
    OrderRejectedError,
    OrderRequest,
    OrderType,
    PaperModeError,
    PlacementOptions,
    Session,
)
from kis_async.calendar import fallback_is_trading_day
from kis_async.models import KST
from kis_async.sim import KISSimulator

SYMBOL = "005930"
DAY = date(2026, 12, 1)
#: Before 2026-09-14, when KRX still ran the 16:00-18:00 single-price session (07).
OLD_DAY = date(2026, 6, 2)

#: (order type, venue, a time inside its session, a time outside it).
CASES: list[tuple[OrderType, Exchange, datetime, datetime]] = []


def _at(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), KST)


for kind in OrderType:
    if kind is OrderType.AFTER_HOURS_SINGLE:
        CASES.append((kind, Exchange.KRX, _at(OLD_DAY, 16, 30), _at(OLD_DAY, 10, 0)))
    elif kind is OrderType.PRE_MARKET_CLOSE:
        CASES.append((kind, Exchange.KRX, _at(DAY, 8, 35), _at(DAY, 10, 0)))
    elif kind is OrderType.AFTER_MARKET_CLOSE:
        CASES.append((kind, Exchange.KRX, _at(DAY, 15, 45), _at(DAY, 10, 0)))
    elif kind.value in ("27", "28", "29"):
        CASES.append((kind, Exchange.NXT, _at(DAY, 8, 10), _at(DAY, 10, 0)))
    elif "41" <= kind.value <= "47":
        CASES.append((kind, Exchange.KRX, _at(DAY, 17, 0), _at(DAY, 10, 0)))
    elif kind in (OrderType.LIMIT, OrderType.MARKET, OrderType.CONDITIONAL_LIMIT):
        # Call-auction types: open in the opening auction too, closed after the close.
        CASES.append((kind, Exchange.KRX, _at(DAY, 10, 0), _at(DAY, 15, 35)))
    elif kind is OrderType.STOP_LIMIT:
        CASES.append((kind, Exchange.KRX, _at(DAY, 10, 0), _at(DAY, 17, 0)))
    else:
        # Continuous-market types: not in the opening auction.
        CASES.append((kind, Exchange.KRX, _at(DAY, 10, 0), _at(DAY, 8, 45)))
CASES += [
    (OrderType.LIMIT, Exchange.NXT, _at(DAY, 8, 10), _at(DAY, 8, 55)),
    (OrderType.LIMIT, Exchange.NXT, _at(DAY, 19, 0), _at(DAY, 20, 30)),
    (OrderType.BEST_LIMIT, Exchange.SOR, _at(DAY, 10, 0), _at(DAY, 21, 0)),
    (OrderType.LIMIT, Exchange.SOR, _at(DAY, 15, 35), _at(DAY, 7, 0)),
]


def _request(sim: KISSimulator, kind: OrderType, exchange: Exchange) -> OrderRequest:
    price = sim.exchange.price(SYMBOL)
    extra: dict[str, Any] = {}
    if kind.requires_price:
        extra["price"] = price - 1_000
    if kind is OrderType.STOP_LIMIT:
        extra["stop_price"] = price + 1_000
        extra["price"] = price + 1_100
    return OrderRequest(SYMBOL, "buy", 1, order_type=kind, exchange=exchange, **extra)


async def test_every_order_type_inside_and_outside_its_session(
    live_sim: KISSimulator, live_broker: KISBroker
) -> None:
    """Each ORD_DVSN code is accepted inside its venue's session and refused outside it with
    KIS's "not in session" message (the simulator's clock set per case)."""
    refused: list[str] = []
    for kind, exchange, inside, outside in CASES:
        label = f"{kind.name}@{exchange.value}"
        live_sim.set_time(inside)
        order_id = await live_broker.place_order(_request(live_sim, kind, exchange))
        assert live_sim.exchange.order(order_id).order_type == kind.value, label
        live_sim.set_time(outside)
        with pytest.raises(OrderRejectedError) as caught:
            await live_broker.place_order(_request(live_sim, kind, exchange))
        assert caught.value.msg_cd == "APBK0919", label
        assert "장운영시간" in (caught.value.msg or ""), label
        refused.append(label)
    assert len(refused) == len(CASES)
    live_sim.exchange.check_invariants()


async def test_holiday_closes_every_session(live_sim: KISSimulator, live_broker: KISBroker) -> None:
    """On a holiday (Christmas) a regular-hours limit order is refused by the simulator."""
    live_sim.set_time(datetime(2026, 12, 25, 10, 0, tzinfo=KST))
    with pytest.raises(OrderRejectedError):
        await live_broker.place_order(_request(live_sim, OrderType.LIMIT, Exchange.KRX))


async def test_check_session_refuses_before_sending(live_sim: KISSimulator, tmp_path: Path) -> None:
    """PlacementOptions(check_session=True) refuses an after-market order at 10:00 without a
    request, and sends it at 17:00."""
    options = PlacementOptions(check_session=True, clock=live_sim.market_now)
    config = live_sim.config(requests_per_second=None, token_cache_dir=tmp_path)
    async with KISBroker(config, placement_options=options) as broker:
        request = OrderRequest(
            SYMBOL, "buy", 1, order_type=OrderType.AFTER_MARKET_LIMIT, price=70_000
        )
        await broker.is_trading_day(DAY)  # the holiday answer is cached before counting
        before = live_sim.stats.orders_received + live_sim.stats.orders_rejected
        with pytest.raises(InvalidOrderError, match="during its regular session"):
            await broker.place_order(request)
        assert live_sim.stats.orders_received + live_sim.stats.orders_rejected == before
        live_sim.set_time(datetime(2026, 12, 1, 17, 0, tzinfo=KST))
        order_id = await broker.place_order(request)
        assert live_sim.exchange.order(order_id).order_type == "41"


async def test_paper_refuses_nxt_sor_and_nx_un_without_requests(sim: KISSimulator) -> None:
    """Paper mode: NXT/SOR orders and NX/UN quotes raise before any request, naming why."""
    async with KISBroker(sim.config(requests_per_second=None)) as broker:
        before = sim.stats.rest_requests
        for exchange in (Exchange.NXT, Exchange.SOR):
            with pytest.raises(PaperModeError, match="KRX-only"):
                await broker.place_order(
                    OrderRequest(SYMBOL, "buy", 1, price=70_000, exchange=exchange)
                )
        for market in (Market.NXT, Market.UNIFIED, "un"):
            with pytest.raises(PaperModeError, match="KRX quotes only"):
                await broker.get_price(SYMBOL, market=market)
            with pytest.raises(PaperModeError):
                await broker.get_orderbook(SYMBOL, market=market)
        assert sim.stats.rest_requests == before
        assert (await broker.get_price(SYMBOL, market="krx")).price > 0


async def test_calendar_live_uses_the_holiday_api_once_a_day(tmp_path: Path) -> None:
    """Live: is_trading_day answers from chk-holiday, caches on disk, and a second broker
    reads the cache without another call the same day."""
    simulator = KISSimulator(seed=5, mode=Mode.LIVE, rate_limit=False)
    async with simulator.serve(port=0) as sim:
        config = sim.config(requests_per_second=None, token_cache_dir=tmp_path)
        today = datetime.now(KST).date()
        async with KISBroker(config) as broker:
            assert await broker.is_trading_day(today) is sim.calendar.is_trading_day(today)
        assert sim.stats.holiday_requests == 1
        assert (tmp_path / "kis-holidays.json").exists()
        async with KISBroker(config) as again:
            assert await again.is_trading_day(today) is sim.calendar.is_trading_day(today)
        assert sim.stats.holiday_requests == 1


async def test_calendar_answers_from_the_api_for_a_given_base(tmp_path: Path) -> None:
    """A day in the past is asked with that day as BASS_DT: the simulator's own holiday wins
    over the offline calendar, and the week around it lists the right days."""
    extra = date(2026, 11, 4)  # a Wednesday
    simulator = KISSimulator(seed=5, mode=Mode.LIVE, rate_limit=False, holidays=[extra])
    async with simulator.serve(port=0) as sim:
        config = sim.config(requests_per_second=None, token_cache_dir=tmp_path)
        async with KISBroker(config) as broker:
            week = await broker.trading_days(date(2026, 11, 2), date(2026, 11, 8))
            assert week == [date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 5),
                            date(2026, 11, 6)]  # fmt: skip
            assert await broker.is_trading_day(extra) is False
            assert fallback_is_trading_day(extra) is True
            assert sim.stats.holiday_requests == 1
            session = await broker.session_at(datetime(2026, 11, 4, 10, 0, tzinfo=KST))
            assert session is Session.CLOSED
            opens = await broker.next_open(
                Exchange.NXT, after=datetime(2026, 11, 3, 21, tzinfo=KST)
            )
            assert opens == datetime(2026, 11, 5, 8, 0, tzinfo=KST)


async def test_calendar_paper_uses_the_fallback(sim: KISSimulator) -> None:
    """Paper: chk-holiday does not exist, so the offline calendar answers with no request."""
    async with KISBroker(sim.config(requests_per_second=None)) as broker:
        before = sim.stats.rest_requests
        assert await broker.is_trading_day(date(2026, 12, 25)) is False
        assert await broker.is_trading_day(date(2026, 12, 24)) is True
        days = await broker.trading_days(date(2026, 12, 24), date(2026, 12, 28))
        assert days == [date(2026, 12, 24), date(2026, 12, 28)]
        assert sim.stats.rest_requests == before


async def test_paper_holiday_api_answers_like_kis(sim: KISSimulator) -> None:
    """The paper simulator answers chk-holiday's live TR id with EGW00213, as KIS paper does
    for every live TR id; an unknown path gets a KIS-style envelope, not a bare 404."""
    async with httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as client:
        token = await client.post(
            "/oauth2/tokenP",
            json={
                "grant_type": "client_credentials",
                "appkey": sim.app_key,
                "appsecret": sim.app_secret,
            },
        )
        headers = {
            "authorization": f"Bearer {token.json()['access_token']}",
            "appkey": sim.app_key,
            "appsecret": sim.app_secret,
            "tr_id": "CTCA0903R",
            "custtype": "P",
        }
        response = await client.get(
            "/uapi/domestic-stock/v1/quotations/chk-holiday",
            params={"BASS_DT": "20261201", "CTX_AREA_NK": "", "CTX_AREA_FK": ""},
            headers=headers,
        )
        assert response.json()["rt_cd"] == "1"
        assert response.json()["msg_cd"] == "EGW00213"
        missing = await client.get("/uapi/domestic-stock/v1/quotations/no-such-api")
        assert missing.status_code == 404
        envelope = missing.json()
        assert envelope["rt_cd"] == "1"
        assert envelope["msg_cd"]
        assert envelope["msg1"]
        assert "error" not in envelope


async def test_check_session_with_idempotency_keys(live_sim: KISSimulator, tmp_path: Path) -> None:
    """With check_session, a key whose order is placed replays its number after the session
    ended; a key refused outside its session is not booked and sends once the session opens."""
    options = PlacementOptions(check_session=True, clock=live_sim.market_now)
    config = live_sim.config(requests_per_second=None, token_cache_dir=tmp_path)
    async with KISBroker(config, placement_options=options) as broker:
        price = live_sim.exchange.price(SYMBOL) - 1_000
        day_order = OrderRequest(SYMBOL, "buy", 1, price=price, idempotency_key="day-1")
        first = await broker.place_order(day_order)
        live_sim.set_time(datetime(2026, 12, 1, 21, 0, tzinfo=KST))
        assert await broker.place_order(day_order) == first
        evening = OrderRequest(
            SYMBOL, "buy", 1, order_type="41", price=price, idempotency_key="evening-1"
        )
        live_sim.set_time(datetime(2026, 12, 1, 10, 30, tzinfo=KST))
        with pytest.raises(InvalidOrderError, match="regular session"):
            await broker.place_order(evening)
        live_sim.set_time(datetime(2026, 12, 1, 16, 5, tzinfo=KST))
        second = await broker.place_order(evening)
        assert live_sim.exchange.order(second).order_type == "41"
        assert len(live_sim.exchange.orders) == 2
