"""The simulator's chart TRs on the wire (protocol doc §10): row caps, field names, anchors,
determinism, and agreement between daily bars, minute rows and the trades it made."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from kis_async import Mode
from kis_async.models import KST
from kis_async.sim import KISSimulator

START = datetime(2026, 12, 1, 10, 30, tzinfo=KST)  # a Tuesday
SYMBOL = "005930"
PERIOD = "/quotations/inquire-daily-itemchartprice"
TODAY = "/quotations/inquire-time-itemchartprice"
PAST = "/quotations/inquire-time-dailychartprice"
CCNL = "/quotations/inquire-ccnl"
MINUTE_FIELDS = {
    "stck_bsop_date", "stck_cntg_hour", "stck_prpr", "stck_oprc", "stck_hgpr", "stck_lwpr",
    "cntg_vol", "acml_tr_pbmn",
}  # fmt: skip


def period_params(first: str, last: str, period: str = "D") -> dict[str, str]:
    return {
        "FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": SYMBOL, "FID_INPUT_DATE_1": first,
        "FID_INPUT_DATE_2": last, "FID_PERIOD_DIV_CODE": period, "FID_ORG_ADJ_PRC": "0",
    }  # fmt: skip


def past_params(day: str, hour: str) -> dict[str, str]:
    return {
        "FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": SYMBOL, "FID_INPUT_HOUR_1": hour,
        "FID_INPUT_DATE_1": day, "FID_PW_DATA_INCU_YN": "N", "FID_FAKE_TICK_INCU_YN": "",
    }  # fmt: skip


async def test_period_chart_caps_at_100_newest_first(serve: Callable[..., Any]) -> None:
    """D rows: at most 100, newest first, with the §10.1 output2 fields; yesterday's close is
    the price the session opened from; paging by DATE_2 = oldest - 1 day continues exactly."""
    async with serve(mode=Mode.PAPER, start_time=START) as (sim, kis):
        first = await kis.get(PERIOD, "FHKST03010100", period_params("20250101", "20261201"))
        body = first.json()
        assert body["rt_cd"] == "0"
        rows = body["output2"]
        assert len(rows) == 100
        dates = [r["stck_bsop_date"] for r in rows]
        assert dates == sorted(dates, reverse=True)
        assert dates[0] == "20261130"
        assert rows[0]["stck_clpr"] == str(sim.exchange.instrument(SYMBOL).prev_close)
        assert {"stck_oprc", "stck_hgpr", "stck_lwpr", "acml_vol", "acml_tr_pbmn",
                "flng_cls_code", "prtt_rate", "mod_yn"} <= set(rows[0])  # fmt: skip
        oldest = date.fromisoformat(dates[-1][:4] + "-" + dates[-1][4:6] + "-" + dates[-1][6:])
        anchor = (oldest - timedelta(days=1)).strftime("%Y%m%d")
        second = (await kis.get(PERIOD, "FHKST03010100", period_params("20250101", anchor))).json()
        assert second["output2"][0]["stck_bsop_date"] < dates[-1]
        assert not {r["stck_bsop_date"] for r in second["output2"]} & set(dates)
        assert all(date(int(d[:4]), int(d[4:6]), int(d[6:])).weekday() < 5 for d in dates)


async def test_history_is_deterministic_per_seed(serve: Callable[..., Any]) -> None:
    """Same seed, same bars; another seed, other bars."""
    bodies = []
    for seed in (5, 5, 6):
        async with serve(mode=Mode.LIVE, seed=seed, start_time=START) as (_sim, kis):
            response = await kis.get(PERIOD, "FHKST03010100", period_params("20260101", "20261130"))
            bodies.append(response.json()["output2"])
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


async def test_past_minutes_agree_with_the_daily_bar(serve: Callable[..., Any]) -> None:
    """A past day's minute rows (120 a call, anchored by FID_INPUT_HOUR_1) add up to that
    day's D row: open, high, low, close, volume and turnover."""
    async with serve(mode=Mode.LIVE, start_time=START) as (_sim, kis):
        day = "20261127"
        daily = (await kis.get(PERIOD, "FHKST03010100", period_params(day, day))).json()
        (bar,) = daily["output2"]
        rows: list[dict[str, str]] = []
        hour = "235959"
        while True:
            page = (await kis.get(PAST, "FHKST03010230", past_params(day, hour))).json()["output2"]
            assert len(page) <= 120
            rows.extend(page)
            if len(page) < 120:
                break
            last = datetime.strptime(page[-1]["stck_cntg_hour"] + "+0900", "%H%M%S%z")
            hour = (last - timedelta(minutes=1)).strftime("%H%M%S")
        assert set(rows[0]) == MINUTE_FIELDS
        assert len(rows) == 381
        assert rows[0]["stck_cntg_hour"] == "153000"
        assert rows[-1]["stck_cntg_hour"] == "090000"
        assert rows[-1]["stck_oprc"] == bar["stck_oprc"]
        assert rows[0]["stck_prpr"] == bar["stck_clpr"]
        assert max(int(r["stck_hgpr"]) for r in rows) == int(bar["stck_hgpr"])
        assert min(int(r["stck_lwpr"]) for r in rows) == int(bar["stck_lwpr"])
        assert sum(int(r["cntg_vol"]) for r in rows) == int(bar["acml_vol"])
        assert rows[0]["acml_tr_pbmn"] == bar["acml_tr_pbmn"]
        holiday = (await kis.get(PAST, "FHKST03010230", past_params("20261128", "235959"))).json()
        assert holiday["output2"] == []  # a Saturday


async def test_today_minutes_are_the_trades_the_feed_sent(serve: Callable[..., Any]) -> None:
    """Today's rows (30 a call) are built from the exchange's own ticks: per minute the first
    and last price, extremes, summed quantity and the cumulative turnover; output1 carries
    the day's totals at the same instant."""
    async with serve(mode=Mode.PAPER, start_time=START) as (sim, kis):
        sim.clock.freeze()
        ticks = []
        for _ in range(40):
            ticks += sim.exchange.step(1, symbols=[SYMBOL])
            sim.clock.advance(7)
        params = {"FID_ETC_CLS_CODE": "", "FID_COND_MRKT_DIV_CODE": "J",
                  "FID_INPUT_ISCD": SYMBOL, "FID_INPUT_HOUR_1": "235959",
                  "FID_PW_DATA_INCU_YN": "N"}  # fmt: skip
        body = (await kis.get(TODAY, "FHKST03010200", params)).json()
        rows = body["output2"]
        by_minute: dict[str, list[Any]] = {}
        for tick in ticks:
            by_minute.setdefault(tick.time.strftime("%H%M00"), []).append(tick)
        assert [r["stck_cntg_hour"] for r in rows] == sorted(by_minute, reverse=True)
        for row in rows:
            group = by_minute[row["stck_cntg_hour"]]
            assert int(row["stck_oprc"]) == group[0].price
            assert int(row["stck_prpr"]) == group[-1].price
            assert int(row["stck_hgpr"]) == max(t.price for t in group)
            assert int(row["stck_lwpr"]) == min(t.price for t in group)
            assert int(row["cntg_vol"]) == sum(t.qty for t in group)
            assert int(row["acml_tr_pbmn"]) == group[-1].turnover
        assert body["output1"]["acml_vol"] == str(ticks[-1].volume)
        anchored = dict(params, FID_INPUT_HOUR_1=rows[-1]["stck_cntg_hour"])
        again = (await kis.get(TODAY, "FHKST03010200", anchored)).json()["output2"]
        assert again[0] == rows[-1]
        trades = (
            await kis.get(
                CCNL, "FHKST01010300", {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": SYMBOL}
            )
        ).json()
        assert len(trades["output"]) == 30
        assert trades["output"][0]["cntg_vol"] == str(ticks[-1].qty)


async def test_today_minutes_cap_at_30(serve: Callable[..., Any]) -> None:
    """More than 30 minutes with trades: one call returns the newest 30."""
    sim: KISSimulator
    async with serve(mode=Mode.LIVE, start_time=START) as (sim, kis):
        sim.clock.freeze()
        for _ in range(45):
            sim.exchange.step(1, symbols=[SYMBOL])
            sim.clock.advance(60)
        params = {"FID_ETC_CLS_CODE": "", "FID_COND_MRKT_DIV_CODE": "UN",
                  "FID_INPUT_ISCD": SYMBOL, "FID_INPUT_HOUR_1": "235959",
                  "FID_PW_DATA_INCU_YN": "N"}  # fmt: skip
        rows = (await kis.get(TODAY, "FHKST03010200", params)).json()["output2"]
        assert len(rows) == 30
        assert rows[0]["stck_cntg_hour"] == (START + timedelta(minutes=44)).strftime("%H%M00")
