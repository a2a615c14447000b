"""The simulator's chart quotations (protocol doc §10): bodies for the four chart TRs.

Field names, row caps, newest-first order and the date/time anchors follow the doc; the REST
layer (:mod:`kis_async.sim.rest`) checks the request and wraps these bodies in the envelope.
Values are strings, as KIS sends them. The market code (J/NX/UN) selects nothing: the
simulated market is one venue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from kis_async.models.common import KST
from kis_async.sim.history import DayBar, MinuteBar, SimHistory

__all__ = ["CHART_ROUTES", "PAST_MINUTE_ROWS", "PERIOD_ROWS", "TODAY_MINUTE_ROWS", "ChartApi"]

#: Rows per call (protocol doc §10): period chart, today's minutes, a past day's minutes.
PERIOD_ROWS: Final = 100
TODAY_MINUTE_ROWS: Final = 30
#: The official samples' figure (KT's docstring says 30 [CONFLICT]); clients learn the cap.
PAST_MINUTE_ROWS: Final = 120
#: How far back past-day minutes are kept ("최대 1년 분봉 보관").
MINUTE_DAYS_KEPT: Final = 365

#: path (under the domestic-stock prefix) -> TR id, one id for live and paper. The past-day
#: minute TR's paper support is [UNCERTAIN]; the simulator serves it in both modes.
CHART_ROUTES: Final[Mapping[str, str]] = {
    "/quotations/inquire-daily-itemchartprice": "FHKST03010100",
    "/quotations/inquire-time-itemchartprice": "FHKST03010200",
    "/quotations/inquire-time-dailychartprice": "FHKST03010230",
    "/quotations/inquire-ccnl": "FHKST01010300",
}


def _day(text: str) -> date | None:
    value = text.strip()
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


def _hour(text: str) -> time:
    value = text.strip()
    if len(value) >= 6 and value[:6].isdigit():
        try:
            return time(int(value[:2]), int(value[2:4]), int(value[4:6]))
        except ValueError:
            pass
    return time(23, 59, 59)


def _period_key(day: date, period: str) -> tuple[int, int]:
    if period == "W":
        iso = day.isocalendar()
        return (iso[0], iso[1])
    if period == "M":
        return (day.year, day.month)
    if period == "Y":
        return (day.year, 0)
    return (day.toordinal(), 0)


def _fold(bars: list[DayBar], period: str) -> list[DayBar]:
    """D/W/M/Y bars from daily bars (oldest first); a period is labelled with its last day."""
    out: list[DayBar] = []
    key: tuple[int, int] | None = None
    for bar in bars:
        k = _period_key(bar.day, period)
        if out and k == key:
            last = out[-1]
            out[-1] = DayBar(
                bar.day, last.open, max(last.high, bar.high), min(last.low, bar.low), bar.close,
                last.volume + bar.volume, last.turnover + bar.turnover,
            )  # fmt: skip
        else:
            out.append(bar)
        key = k
    return out


def _minute_row(row: MinuteBar) -> dict[str, str]:
    return {
        "stck_bsop_date": row.start.strftime("%Y%m%d"),
        # The minute's start, HHMM00 (the doc leaves start vs end [UNCERTAIN]; so do clients).
        "stck_cntg_hour": row.start.strftime("%H%M%S"),
        "stck_prpr": str(row.close),
        "stck_oprc": str(row.open),
        "stck_hgpr": str(row.high),
        "stck_lwpr": str(row.low),
        "cntg_vol": str(row.volume),
        "acml_tr_pbmn": str(row.cum_turnover),
    }


class ChartApi:
    """Answers the chart TRs from a :class:`SimHistory`.

    Args:
        history: the simulated history.
        snapshot: ``symbol -> inquire-price-like fields`` for ``output1``.
    """

    def __init__(self, history: SimHistory, snapshot: Callable[[str], Mapping[str, str]]) -> None:
        self.history = history
        self._snapshot = snapshot
        self.requests = 0

    def answer(self, tr_id: str, symbol: str, params: Mapping[str, str]) -> dict[str, Any]:
        """The body (without the rt_cd envelope) for ``tr_id``."""
        self.requests += 1
        if tr_id == "FHKST03010100":
            return self._period(symbol, params)
        if tr_id == "FHKST03010200":
            return self._today_minutes(symbol, params)
        if tr_id == "FHKST03010230":
            return self._past_minutes(symbol, params)
        return self._trades(symbol)

    def _head(self, symbol: str) -> dict[str, str]:
        snap = self._snapshot(symbol)
        inst = self.history.exchange.instrument(symbol)
        return {
            "prdy_vrss": snap.get("prdy_vrss", "0"),
            "prdy_vrss_sign": snap.get("prdy_vrss_sign", "3"),
            "prdy_ctrt": snap.get("prdy_ctrt", "0.00"),
            "stck_prdy_clpr": str(inst.prev_close),
            "acml_vol": str(inst.volume),
            "acml_tr_pbmn": str(inst.turnover),
            "hts_kor_isnm": inst.name,
            "stck_prpr": str(inst.price),
        }

    def _period(self, symbol: str, params: Mapping[str, str]) -> dict[str, Any]:
        period = params.get("FID_PERIOD_DIV_CODE", "D").strip().upper() or "D"
        first = _day(params.get("FID_INPUT_DATE_1", "")) or date.min
        last = _day(params.get("FID_INPUT_DATE_2", "")) or self.history.today()
        daily = list(self.history.daily(symbol))
        today_bar = self.history.today_bar(symbol)
        if today_bar is not None:
            daily.append(today_bar)
        # The simulated market has no splits: adjusted (0) and raw (1) prices are the same.
        window = [bar for bar in daily if first <= bar.day <= last]
        rows = _fold(window, period if period in ("W", "M", "Y") else "D")[-PERIOD_ROWS:]
        output2 = [
            {
                "stck_bsop_date": bar.day.strftime("%Y%m%d"),
                "stck_clpr": str(bar.close),
                "stck_oprc": str(bar.open),
                "stck_hgpr": str(bar.high),
                "stck_lwpr": str(bar.low),
                "acml_vol": str(bar.volume),
                "acml_tr_pbmn": str(bar.turnover),
                "flng_cls_code": "00",
                "prtt_rate": "0.00",
                "mod_yn": "N",
                "prdy_vrss_sign": "3",
                "prdy_vrss": "0",
                "revl_issu_reas": "",
            }
            for bar in reversed(rows)
        ]
        head = self._head(symbol) | {
            "stck_prdy_oprc": "0", "stck_prdy_hgpr": "0", "stck_prdy_lwpr": "0",
            "prdy_vol": "0", "itewhol_loan_rmnd_ratem": "0.00",
        }  # fmt: skip
        return {"output1": head, "output2": output2}

    def _today_minutes(self, symbol: str, params: Mapping[str, str]) -> dict[str, Any]:
        now = self.history.exchange.clock.now().astimezone(KST)
        # A time after now is served as now (protocol doc §10.2).
        cutoff = min(
            datetime.combine(now.date(), _hour(params.get("FID_INPUT_HOUR_1", "")), KST), now
        )
        rows = [row for row in self.history.today_minutes(symbol) if row.start <= cutoff]
        page = rows[-TODAY_MINUTE_ROWS:]
        return {
            "output1": self._head(symbol),
            "output2": [_minute_row(row) for row in reversed(page)],
        }

    def _past_minutes(self, symbol: str, params: Mapping[str, str]) -> dict[str, Any]:
        day = _day(params.get("FID_INPUT_DATE_1", ""))
        today = self.history.today()
        rows: list[MinuteBar] = []
        if day is not None and today - timedelta(days=MINUTE_DAYS_KEPT) <= day <= today:
            cutoff = datetime.combine(day, _hour(params.get("FID_INPUT_HOUR_1", "")), KST)
            rows = [row for row in self.history.day_minutes(symbol, day) if row.start <= cutoff]
        page = rows[-PAST_MINUTE_ROWS:]
        return {
            "output1": self._head(symbol),
            "output2": [_minute_row(row) for row in reversed(page)],
        }

    def _trades(self, symbol: str) -> dict[str, Any]:
        inst = self.history.exchange.instrument(symbol)
        output = []
        for tick in self.history.recent_trades(symbol):
            change = tick.price - inst.prev_close
            sign = "2" if change > 0 else "5" if change < 0 else "3"
            strength = tick.buy_volume / tick.sell_volume * 100 if tick.sell_volume else 0.0
            output.append(
                {
                    "stck_cntg_hour": tick.time.astimezone(KST).strftime("%H%M%S"),
                    "stck_prpr": str(tick.price),
                    "prdy_vrss": str(change),
                    "prdy_vrss_sign": sign,
                    "cntg_vol": str(tick.qty),
                    "tday_rltv": f"{strength:.2f}",
                    "prdy_ctrt": f"{change / inst.prev_close * 100:.2f}",
                }
            )
        return {"output": output}
