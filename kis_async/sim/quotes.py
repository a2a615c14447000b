"""Quotation and calendar answers of the simulator: inquire-price, inquire-asking-price-exp-ccn
(per market: ``J`` KRX, ``NX`` NXT, ``UN`` 통합) and chk-holiday rows (protocol doc §4.9,
§4.10, §11.1). Pure builders: the REST layer does checks, envelopes and headers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from kis_async.models.common import tick_size
from kis_async.sim.exchange import Instrument, SimExchange
from kis_async.sim.venues import KRX, NXT, SimCalendar, merge_levels

__all__ = ["HOLIDAY_ROWS", "holiday_rows", "number_text", "orderbook_outputs", "price_output"]

#: Days per chk-holiday reply (the simulator's choice; the count is undocumented).
HOLIDAY_ROWS: Final = 31


def number_text(value: float | int) -> str:
    """KIS's text of a number: floats with 2 decimals, ints as they are."""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


_s = number_text


@dataclass(frozen=True, slots=True)
class _Lv:
    price: int
    qty: int


def _sign(price: int, base: int, upper: int, lower: int) -> str:
    if price >= upper:
        return "1"
    if price <= lower:
        return "4"
    return "2" if price > base else "5" if price < base else "3"


def price_output(inst: Instrument, market: str) -> dict[str, str]:
    """inquire-price ``output`` of ``inst`` on ``market`` (J, NX or UN)."""
    last, volume, turnover = inst.price, inst.volume, inst.turnover
    if market == "NX":
        last, volume, turnover = inst.nxt_price, inst.nxt_volume, inst.nxt_turnover
    elif market == "UN":
        last = inst.unified_price
        volume, turnover = volume + inst.nxt_volume, turnover + inst.nxt_turnover
    output = dict.fromkeys(_PRICE_ZERO_FIELDS, "0") | dict.fromkeys(_PRICE_BLANK_FIELDS, "")
    output |= {
        "iscd_stat_cls_code": "55",
        "marg_rate": "20.00",
        "rprs_mrkt_kor_name": "KOSPI200",
        "bstp_kor_isnm": "전기.전자",
        "temp_stop_yn": "N",
        "oprc_rang_cont_yn": "N",
        "clpr_rang_cont_yn": "N",
        "crdt_able_yn": "Y",
        "grmn_rate_cls_code": "40",
        "elw_pblc_yn": "N",
        "stck_prpr": str(last),
        "prdy_vrss": str(last - inst.prev_close),
        "prdy_vrss_sign": _sign(last, inst.prev_close, inst.upper_limit, inst.lower_limit),
        "prdy_ctrt": _s((last - inst.prev_close) / inst.prev_close * 100),
        "acml_tr_pbmn": str(turnover),
        "acml_vol": str(volume),
        "stck_oprc": str(inst.open),
        "stck_hgpr": str(inst.high),
        "stck_lwpr": str(inst.low),
        "stck_mxpr": str(inst.upper_limit),
        "stck_llam": str(inst.lower_limit),
        "stck_sdpr": str(inst.prev_close),
        "wghn_avrg_stck_prc": _s(inst.vwap),
        "aspr_unit": str(tick_size(last)),
        "hts_deal_qty_unit_val": "1",
        "stck_shrn_iscd": inst.symbol,
        "ssts_yn": "Y",
        "short_over_yn": "N",
        "sltr_yn": "N",
        "invt_caful_yn": "N",
        "mrkt_warn_cls_code": "00",
        "vi_cls_code": "N",
        "ovtm_vi_cls_code": "N",
        "mang_issu_cls_code": "N",
        "new_hgpr_lwpr_cls_code": "",
    }
    return output


def orderbook_outputs(
    exchange: SimExchange, symbol: str, market: str, now: datetime
) -> tuple[dict[str, str], dict[str, str]]:
    """inquire-asking-price-exp-ccn ``output1``/``output2`` on ``market``; UN merges both
    venues' levels by price."""
    inst = exchange.instrument(symbol)
    if market == "UN":
        krx_asks, krx_bids = exchange.book(symbol, KRX)
        nxt_asks, nxt_bids = exchange.book(symbol, NXT)
        asks = [_Lv(p, q) for p, q in merge_levels(krx_asks, nxt_asks, ascending=True)]
        bids = [_Lv(p, q) for p, q in merge_levels(krx_bids, nxt_bids, ascending=False)]
    else:
        book_asks, book_bids = exchange.book(symbol, NXT if market == "NX" else KRX)
        asks = [_Lv(lv.price, lv.qty) for lv in book_asks]
        bids = [_Lv(lv.price, lv.qty) for lv in book_bids]
    out1: dict[str, str] = {"aspr_acpt_hour": now.strftime("%H%M%S")}
    for i in range(10):
        ask = asks[i] if i < len(asks) else None
        bid = bids[i] if i < len(bids) else None
        out1[f"askp{i + 1}"] = str(ask.price if ask else 0)
        out1[f"bidp{i + 1}"] = str(bid.price if bid else 0)
        out1[f"askp_rsqn{i + 1}"] = str(ask.qty if ask else 0)
        out1[f"bidp_rsqn{i + 1}"] = str(bid.qty if bid else 0)
        out1[f"askp_rsqn_icdc{i + 1}"] = "0"
        out1[f"bidp_rsqn_icdc{i + 1}"] = "0"
    out1 |= {
        "total_askp_rsqn": str(sum(lv.qty for lv in asks)),
        "total_bidp_rsqn": str(sum(lv.qty for lv in bids)),
        "total_askp_rsqn_icdc": "0",
        "total_bidp_rsqn_icdc": "0",
        "ovtm_total_askp_icdc": "0",
        "ovtm_total_bidp_icdc": "0",
        "ovtm_total_askp_rsqn": "0",
        "ovtm_total_bidp_rsqn": "0",
        "ntby_aspr_rsqn": str(sum(lv.qty for lv in bids) - sum(lv.qty for lv in asks)),
        "new_mkop_cls_code": "20",
    }
    out2 = {
        "antc_mkop_cls_code": "311",
        "stck_prpr": str(inst.price),
        "stck_oprc": str(inst.open),
        "stck_hgpr": str(inst.high),
        "stck_lwpr": str(inst.low),
        "stck_sdpr": str(inst.prev_close),
        "antc_cnpr": "0",
        "antc_cntg_vrss_sign": "3",
        "antc_cntg_vrss": "0",
        "antc_cntg_prdy_ctrt": "0.00",
        "antc_vol": "0",
        "stck_shrn_iscd": inst.symbol,
        "vi_cls_code": "N",
    }
    return out1, out2


def holiday_rows(calendar: SimCalendar, base: date) -> list[dict[str, Any]]:
    """chk-holiday rows for :data:`HOLIDAY_ROWS` days from ``base``."""
    rows = []
    for offset in range(HOLIDAY_ROWS):
        day = base + timedelta(days=offset)
        open_ = calendar.is_trading_day(day)
        rows.append(
            {
                "bass_dt": day.strftime("%Y%m%d"),
                # 01 Sunday ... 07 Saturday (COMMUNITY, §11.1).
                "wday_dvsn_cd": f"{(day.isoweekday() % 7) + 1:02d}",
                "bzdy_yn": "Y" if open_ or day.weekday() < 5 else "N",
                "tr_day_yn": "Y" if open_ else "N",
                "opnd_yn": "Y" if open_ else "N",
                "sttl_day_yn": "Y" if open_ else "N",
            }
        )
    return rows


_PRICE_ZERO_FIELDS: Final = [
    "prdy_vrss_vol_rate",
    "hts_frgn_ehrt",
    "frgn_ntby_qty",
    "pgtr_ntby_qty",
    "pvt_scnd_dmrs_prc",
    "pvt_frst_dmrs_prc",
    "pvt_pont_val",
    "pvt_frst_dmsp_prc",
    "pvt_scnd_dmsp_prc",
    "dmrs_val",
    "dmsp_val",
    "cpfn",
    "rstc_wdth_prc",
    "stck_fcam",
    "stck_sspr",
    "lstn_stcn",
    "hts_avls",
    "per",
    "pbr",
    "vol_tnrt",
    "eps",
    "bps",
    "d250_hgpr",
    "d250_hgpr_vrss_prpr_rate",
    "d250_lwpr",
    "d250_lwpr_vrss_prpr_rate",
    "stck_dryy_hgpr",
    "dryy_hgpr_vrss_prpr_rate",
    "stck_dryy_lwpr",
    "dryy_lwpr_vrss_prpr_rate",
    "w52_hgpr",
    "w52_hgpr_vrss_prpr_ctrt",
    "w52_lwpr",
    "w52_lwpr_vrss_prpr_ctrt",
    "whol_loan_rmnd_rate",
    "apprch_rate",
    "frgn_hldn_qty",
    "last_ssts_cntg_qty",
]
_PRICE_BLANK_FIELDS: Final = [
    "stac_month",
    "d250_hgpr_date",
    "d250_lwpr_date",
    "dryy_hgpr_date",
    "dryy_lwpr_date",
    "w52_hgpr_date",
    "w52_lwpr_date",
    "fcam_cnnm",
    "cpfn_cnnm",
]
