"""Chart TRs through respx: parameters, anchor paging, seam de-duplication, N-minute bars and
the checks that run before any request. Rows use the field names of protocol doc §10."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from kis_async.config import Mode
from kis_async.errors import BrokerAPIError, HistoryRequestError, InvalidOrderError
from kis_async.history.fetch import HistoryFetcher
from kis_async.models import KST, Interval
from kis_async.rest.client import RestClient

PREFIX = "/uapi/domestic-stock/v1/quotations"
NOW = datetime(2026, 12, 1, 10, 7, 30, tzinfo=KST)  # a Tuesday
SYMBOL = "005930"


def fetcher(client: RestClient, now: datetime = NOW) -> HistoryFetcher:
    return HistoryFetcher(client, clock=lambda: now)


def ok(**outputs: Any) -> httpx.Response:
    body = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.  ", **outputs}
    return httpx.Response(200, json=body)


def trading_days(last: date, count: int) -> list[date]:
    days: list[date] = []
    day = last
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return days  # newest first


def day_row(day: date, close: int) -> dict[str, str]:
    return {
        "stck_bsop_date": day.strftime("%Y%m%d"),
        "stck_clpr": str(close),
        "stck_oprc": str(close - 100),
        "stck_hgpr": str(close + 200),
        "stck_lwpr": str(close - 300),
        "acml_vol": "1000",
        "acml_tr_pbmn": str(1000 * close),
        "flng_cls_code": "00",
        "prtt_rate": "0.00",
        "mod_yn": "N",
        "prdy_vrss_sign": "2",
        "prdy_vrss": "100",
        "revl_issu_reas": "",
    }


def period_server(
    days: list[date], *, cap: int = 100, resend_anchor: bool = False, pad: bool = False
) -> Any:
    """A period-chart handler: the newest ``cap`` rows of DATE_1..DATE_2, newest first."""

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        first = q["FID_INPUT_DATE_1"]
        last = q["FID_INPUT_DATE_2"]
        if resend_anchor:  # a server that includes the day after the anchor again
            last = (
                date(int(last[:4]), int(last[4:6]), int(last[6:])) + timedelta(days=1)
            ).strftime("%Y%m%d")
        inside = [d for d in days if first <= d.strftime("%Y%m%d") <= last][:cap]
        rows = [day_row(d, 70_000 + i) for i, d in enumerate(inside)]
        if pad:
            rows.append(dict.fromkeys(day_row(days[0], 1), ""))
        return ok(output1={"stck_prpr": "71000"}, output2=rows)

    return handler


async def test_period_chart_pages_back_oldest_first(
    live_client: RestClient, router: respx.MockRouter
) -> None:
    """250 trading days come in 3 pages of <= 100, each anchored at the oldest date - 1 day,
    and are yielded oldest first with adjusted prices requested as FID_ORG_ADJ_PRC 0."""
    days = trading_days(date(2026, 11, 30), 250)
    route = router.get(f"{PREFIX}/inquire-daily-itemchartprice").mock(
        side_effect=period_server(days)
    )
    request = fetcher(live_client).plan(
        SYMBOL, "1d", start=days[-1], end=None, adjusted=True, market="J"
    )
    bars = [bar async for bar in fetcher(live_client).bars(request)]
    assert [bar.start.date() for bar in bars] == list(reversed(days))
    assert route.call_count == 3
    sent = [call.request.url.params for call in route.calls]
    assert {p["FID_ORG_ADJ_PRC"] for p in sent} == {"0"}
    assert {p["FID_PERIOD_DIV_CODE"] for p in sent} == {"D"}
    assert sent[0]["FID_INPUT_DATE_2"] == "20261201"
    assert sent[1]["FID_INPUT_DATE_2"] == (days[99] - timedelta(days=1)).strftime("%Y%m%d")
    assert sent[0]["FID_COND_MRKT_DIV_CODE"] == "J"
    assert all(bar.adjusted and bar.interval is Interval.DAY for bar in bars)
    assert bars[-1].close == Decimal(70_000)
    assert bars[-1].turnover == Decimal(70_000_000)


async def test_period_chart_raw_prices_and_blank_rows(
    live_client: RestClient, router: respx.MockRouter
) -> None:
    """adjusted=False sends FID_ORG_ADJ_PRC 1; blank padding rows are skipped; a page shorter
    than 100 rows ends the history without another request."""
    days = trading_days(date(2026, 11, 30), 40)
    route = router.get(f"{PREFIX}/inquire-daily-itemchartprice").mock(
        side_effect=period_server(days, pad=True)
    )
    bars = [
        bar
        async for bar in fetcher(live_client).bars(
            fetcher(live_client).plan(
                SYMBOL, "1d", start=None, end=None, adjusted=False, market="J"
            )
        )
    ]
    assert len(bars) == 40
    assert route.call_count == 1
    assert route.calls[0].request.url.params["FID_ORG_ADJ_PRC"] == "1"
    assert route.calls[0].request.url.params["FID_INPUT_DATE_1"] == "00000101"
    assert not any(bar.adjusted for bar in bars)


async def test_period_seam_duplicates_are_removed(
    live_client: RestClient, router: respx.MockRouter
) -> None:
    """A server that repeats the row next to the anchor gives no duplicate bar."""
    days = trading_days(date(2026, 11, 30), 230)
    router.get(f"{PREFIX}/inquire-daily-itemchartprice").mock(
        side_effect=period_server(days, resend_anchor=True)
    )
    f = fetcher(live_client)
    bars = [bar async for bar in f.bars(f.plan(SYMBOL, "1d", start=days[-1], end=None,
                                              adjusted=True, market="J"))]  # fmt: skip
    starts = [bar.start for bar in bars]
    assert starts == sorted(set(starts))
    assert len(bars) == 230


async def test_rows_after_the_anchor_are_an_error(
    live_client: RestClient, router: respx.MockRouter
) -> None:
    """A server that ignores the anchor (the same full page again) would hide a missing page:
    that raises instead of ending the history early."""
    days = trading_days(date(2026, 11, 30), 150)

    def ignore_anchor(request: httpx.Request) -> httpx.Response:
        return ok(output2=[day_row(d, 70_000) for d in days[:100]])

    router.get(f"{PREFIX}/inquire-daily-itemchartprice").mock(side_effect=ignore_anchor)
    f = fetcher(live_client)
    with pytest.raises(BrokerAPIError, match="repeated rows"):
        await anext(f.bars(f.plan(SYMBOL, "1d", start=days[-1], end=None, adjusted=True,
                                  market="J")))  # fmt: skip


async def test_new_rows_after_the_anchor_are_an_error(
    live_client: RestClient, router: respx.MockRouter
) -> None:
    """A second page holding a day newer than its anchor (never seen before) raises."""
    days = trading_days(date(2026, 11, 30), 150)
    pages = [days[:100], [date(2026, 12, 2), *days[100:]]]

    def handler(request: httpx.Request) -> httpx.Response:
        return ok(output2=[day_row(d, 70_000) for d in pages.pop(0)])

    router.get(f"{PREFIX}/inquire-daily-itemchartprice").mock(side_effect=handler)
    f = fetcher(live_client)
    with pytest.raises(BrokerAPIError, match="after its anchor"):
        await anext(f.bars(f.plan(SYMBOL, "1d", start=days[-1], end=None, adjusted=True,
                                  market="J")))  # fmt: skip


async def test_a_failed_page_raises_before_any_bar(
    live_client: RestClient, router: respx.MockRouter
) -> None:
    """When the second page fails for good, nothing is yielded: no silent gap."""
    days = trading_days(date(2026, 11, 30), 150)
    good = period_server(days)
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return good(request)
        return httpx.Response(500, json={"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당"})

    router.get(f"{PREFIX}/inquire-daily-itemchartprice").mock(side_effect=flaky)
    f = fetcher(live_client)
    got: list[object] = []

    async def consume() -> None:
        request = f.plan(SYMBOL, "1d", start=days[-1], end=None, adjusted=True, market="J")
        async for bar in f.bars(request):
            got.append(bar)

    with pytest.raises(BrokerAPIError):
        await consume()
    assert got == []
    assert calls > 2  # the rate-limit answer was retried before giving up


async def test_weekly_rows_start_on_monday(
    live_client: RestClient, router: respx.MockRouter
) -> None:
    """A W row labelled with any day of its week becomes a bar starting that Monday."""
    rows = [day_row(date(2026, 11, 27), 71_000), day_row(date(2026, 11, 20), 70_000)]
    route = router.get(f"{PREFIX}/inquire-daily-itemchartprice").mock(return_value=ok(output2=rows))
    f = fetcher(live_client)
    bars = [bar async for bar in f.bars(f.plan(SYMBOL, "1w", start=date(2026, 11, 16), end=None,
                                              adjusted=True, market="NX"))]  # fmt: skip
    assert [bar.start.date() for bar in bars] == [date(2026, 11, 16), date(2026, 11, 23)]
    params = route.calls[0].request.url.params
    assert params["FID_PERIOD_DIV_CODE"] == "W"
    assert params["FID_COND_MRKT_DIV_CODE"] == "NX"


def minute_row(start: datetime, price: int, volume: int, cum: int) -> dict[str, str]:
    return {
        "stck_bsop_date": start.strftime("%Y%m%d"),
        "stck_cntg_hour": start.strftime("%H%M%S"),
        "stck_prpr": str(price),
        "stck_oprc": str(price - 100),
        "stck_hgpr": str(price + 100),
        "stck_lwpr": str(price - 200),
        "cntg_vol": str(volume),
        "acml_tr_pbmn": str(cum),
    }


def day_minutes(day: date, end: time) -> list[dict[str, str]]:
    """Minute rows from 09:00 to ``end`` (oldest first); volume i+1, cumulative turnover."""
    rows = []
    cum = 0
    start = datetime.combine(day, time(9, 0), KST)
    i = 0
    while start.time() <= end:
        volume = i + 1
        cum += volume * 70_000
        rows.append(minute_row(start, 70_000 + i, volume, cum))
        start += timedelta(minutes=1)
        i += 1
    return rows


def minute_server(rows: list[dict[str, str]], cap: int, *, today: bool) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        hour = q["FID_INPUT_HOUR_1"]
        day = q.get("FID_INPUT_DATE_1")
        inside = [
            r for r in rows
            if r["stck_cntg_hour"] <= hour and (today or r["stck_bsop_date"] == day)
        ]  # fmt: skip
        page = list(reversed(inside))[:cap]
        head = {"stck_prpr": "70067", "acml_vol": "2278", "acml_tr_pbmn": "159460000"}
        return ok(output1=head, output2=page)

    return handler


async def test_today_minutes_page_by_time_anchor(
    client: RestClient, router: respx.MockRouter
) -> None:
    """Today's minutes come 30 per call, each anchored at the oldest minute - 1; turnover is
    the rise of acml_tr_pbmn; the forming minute (10:07 at 10:07:30) is left out."""
    rows = day_minutes(NOW.date(), time(10, 7))
    route = router.get(f"{PREFIX}/inquire-time-itemchartprice").mock(
        side_effect=minute_server(rows, 30, today=True)
    )
    f = fetcher(client)
    bars = [bar async for bar in f.bars(f.plan(SYMBOL, "1m", start=None, end=None,
                                              adjusted=True, market="J"))]  # fmt: skip
    assert len(bars) == 67  # 09:00 .. 10:06
    assert bars[0].start == datetime.combine(NOW.date(), time(9, 0), KST)
    assert bars[-1].start.time() == time(10, 6)
    assert [b.volume for b in bars] == list(range(1, 68))
    assert all(b.turnover == b.volume * 70_000 for b in bars)
    hours = [call.request.url.params["FID_INPUT_HOUR_1"] for call in route.calls]
    assert hours[:3] == ["100730", "093700", "090700"]
    assert route.call_count == 3
    params = route.calls[0].request.url.params
    assert params["FID_ETC_CLS_CODE"] == ""
    assert params["FID_PW_DATA_INCU_YN"] == "N"


async def test_five_minute_bars_from_one_minute_rows(
    client: RestClient, router: respx.MockRouter
) -> None:
    """5-minute bars fold the 1-minute rows on 09:00, 09:05, ...; only complete ones come."""
    rows = day_minutes(NOW.date(), time(10, 7))
    router.get(f"{PREFIX}/inquire-time-itemchartprice").mock(
        side_effect=minute_server(rows, 30, today=True)
    )
    f = fetcher(client)
    bars = [bar async for bar in f.bars(f.plan(SYMBOL, "5m", start=datetime(2026, 12, 1, 9, 7),  # noqa: DTZ001 naive = KST
                                              end=None, adjusted=True, market="J"))]  # fmt: skip
    assert [b.start.time() for b in bars] == [
        time(9, 5 * k) if k < 12 else time(10, 5 * (k - 12)) for k in range(1, 13)
    ]
    first = bars[0]  # 09:05 - 09:09: rows 5..9
    assert first.open == Decimal(70_005 - 100)
    assert first.close == Decimal(70_009)
    assert first.high == Decimal(70_009 + 100)
    assert first.low == Decimal(70_005 - 200)
    assert first.volume == 6 + 7 + 8 + 9 + 10
    assert first.turnover == first.volume * 70_000


@pytest.mark.parametrize("cap", [120, 30])
async def test_past_day_minutes_with_either_row_cap(
    live_client: RestClient, router: respx.MockRouter, cap: int
) -> None:
    """A past day's 381 minutes page back with a fixed date whether the server gives 120 or
    30 rows a call (the [CONFLICT] in §10.3), with the fewest calls either way."""
    yesterday = date(2026, 11, 30)
    rows = day_minutes(yesterday, time(15, 20))
    route = router.get(f"{PREFIX}/inquire-time-dailychartprice").mock(
        side_effect=minute_server(rows, cap, today=False)
    )
    f = fetcher(live_client, now=datetime(2026, 12, 1, 8, 0, tzinfo=KST))
    request = f.plan(SYMBOL, "1m", start=yesterday, end=yesterday, adjusted=True, market="J")
    bars = [bar async for bar in f.bars(request)]
    assert len(bars) == len(rows)
    assert route.call_count == -(-len(rows) // cap) + (1 if len(rows) % cap == 0 else 0)
    params = route.calls[0].request.url.params
    assert params["FID_INPUT_DATE_1"] == "20261130"
    assert params["FID_INPUT_HOUR_1"] == "235959"
    assert params["FID_FAKE_TICK_INCU_YN"] == "N"
    assert not any(bar.adjusted for bar in bars)


async def test_recent_trades_oldest_first(
    live_client: RestClient, router: respx.MockRouter
) -> None:
    """inquire-ccnl rows (newest first on the wire) come back oldest first, typed."""
    from kis_async.rest.chart import parse_trades

    body = {
        "output": [
            {"stck_cntg_hour": "100731", "stck_prpr": "70100", "prdy_vrss": "-1800",
             "prdy_vrss_sign": "5", "cntg_vol": "12", "tday_rltv": "95.31", "prdy_ctrt": "-2.50"},
            {"stck_cntg_hour": "100729", "stck_prpr": "70000", "prdy_vrss": "-1900",
             "prdy_vrss_sign": "5", "cntg_vol": "3", "tday_rltv": "95.10", "prdy_ctrt": "-2.64"},
        ]
    }  # fmt: skip
    trades = parse_trades(body, SYMBOL, NOW.date())
    assert [t.qty for t in trades] == [3, 12]
    assert trades[0].time == datetime(2026, 12, 1, 10, 7, 29, tzinfo=KST)
    assert trades[1].strength == Decimal("95.31")
    assert trades[1].change == Decimal(-1800)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": "2m"}, "unknown interval"),
        ({"interval": "1D"}, "unknown interval"),
        ({"interval": "1d", "start": date(2026, 5, 2), "end": date(2026, 5, 1)}, "after end"),
        ({"interval": "1m", "start": date(2025, 11, 1)}, "one year"),
        ({"interval": "1d", "market": "Q"}, "unknown market"),
        ({"interval": "1d", "start": "2026-13-01"}, "ISO date"),
    ],
)
async def test_bad_requests_fail_before_any_call(
    live_client: RestClient, router: respx.MockRouter, kwargs: dict[str, Any], message: str
) -> None:
    """Typed HistoryRequestError (a ValueError) before anything is sent."""
    args: dict[str, Any] = {"start": None, "end": None, "adjusted": True, "market": "J"} | kwargs
    interval = args.pop("interval")
    with pytest.raises(HistoryRequestError, match=message) as info:
        fetcher(live_client).plan(SYMBOL, interval, **args)
    assert isinstance(info.value, ValueError)
    assert not router.calls


async def test_paper_refuses_past_day_minutes(client: RestClient, router: respx.MockRouter) -> None:
    """Paper accounts get today's minutes only: an earlier day is refused before any call."""
    assert client.config.mode is Mode.PAPER
    with pytest.raises(HistoryRequestError, match="paper"):
        fetcher(client).plan(SYMBOL, "1m", start=date(2026, 11, 30), end=None, adjusted=True,
                             market="J")  # fmt: skip
    assert not router.calls


@pytest.mark.parametrize("symbol", ["005930\n", "００５９３０", "5930", ""])
async def test_bad_symbols(live_client: RestClient, symbol: str) -> None:
    """A symbol with a trailing newline, full-width digits or the wrong length is refused."""
    with pytest.raises(InvalidOrderError):
        fetcher(live_client).plan(symbol, "1d", start=None, end=None, adjusted=True, market="J")
