"""Static reference data of the simulated symbols and the price statistics KIS fills in.

Answers ``search-info`` (CTPF1604R, 상품기본조회) and ``search-stock-info`` (CTPF1002R,
주식기본조회), and the fundamentals and 52-week / 250-day / year-to-date highs and lows of
``inquire-price`` (protocol doc §4.9) from the simulated daily history, so a client that
validates those fields (python-kis does) accepts the quote. Figures for the default symbols
are rounded late-2026 levels: plausible, not authoritative. Other symbols get figures derived
from their code, the same on every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from kis_async.sim.exchange import Instrument
from kis_async.sim.history import DayBar, SimHistory

__all__ = ["Reference", "isin", "price_statistics", "reference", "search_info", "stock_info"]


@dataclass(frozen=True, slots=True)
class Reference:
    """Static facts of one listed stock."""

    english: str
    sector: str
    listed_shares: int
    eps: int
    bps: int
    par_value: int
    listed_on: date


#: code -> facts of the default symbols (rounded; the simulator's figures).
_KNOWN: Final[dict[str, Reference]] = {
    "005930": Reference(
        "SamsungElec", "전기·전자", 5_919_637_922, 4_950, 57_900, 100, date(1975, 6, 11)
    ),
    "000660": Reference(
        "SK hynix", "전기·전자", 728_002_365, 27_200, 89_400, 5_000, date(1996, 12, 26)
    ),
    "035420": Reference("NAVER", "서비스업", 158_437_008, 12_300, 168_000, 100, date(2008, 11, 28)),
    "005380": Reference(
        "HyundaiMtr", "운수장비", 209_416_191, 50_100, 370_000, 5_000, date(1974, 6, 28)
    ),
    "035720": Reference("Kakao", "서비스업", 442_600_000, 600, 23_900, 100, date(2017, 7, 10)),
    "051910": Reference("LG Chem", "화학", 70_592_343, 2_300, 470_000, 5_000, date(2001, 4, 25)),
    "006400": Reference(
        "SamsungSDI", "전기·전자", 68_764_530, 9_900, 370_000, 5_000, date(1979, 2, 27)
    ),
    "068270": Reference("Celltrion", "의약품", 216_900_000, 2_900, 80_200, 1_000, date(2018, 2, 9)),
    "105560": Reference(
        "KB Financial", "금융업", 381_500_000, 13_400, 155_000, 5_000, date(2008, 10, 10)
    ),
    "055550": Reference(
        "ShinhanGroup", "금융업", 491_900_000, 9_100, 117_000, 5_000, date(2001, 9, 10)
    ),
    "000270": Reference("Kia", "운수장비", 393_600_000, 24_600, 140_000, 5_000, date(1973, 7, 21)),
    "003490": Reference(
        "Korean Air", "운수창고업", 368_220_661, 2_600, 24_800, 5_000, date(2013, 7, 31)
    ),
    "034220": Reference(
        "LG Display", "전기·전자", 500_000_000, -2_500, 21_300, 5_000, date(2004, 7, 23)
    ),
    "010140": Reference(
        "SamsungHvyInd", "운수장비", 880_000_000, 500, 5_300, 1_000, date(1994, 8, 31)
    ),
    "001440": Reference("TAIHAN", "전기·전자", 170_000_000, 45, 700, 100, date(1968, 11, 27)),
}


def reference(inst: Instrument) -> Reference:
    """The facts of ``inst``: the table's, or figures derived from its code."""
    known = _KNOWN.get(inst.symbol)
    if known is not None:
        return known
    rng = random.Random(f"reference:{inst.symbol}")
    price = max(inst.prev_close, 100)
    return Reference(
        english=f"SIM {inst.symbol}",
        sector="서비스업",
        listed_shares=rng.randrange(10, 500) * 1_000_000,
        eps=max(price // rng.randrange(8, 30), 1),
        bps=max(price * rng.randrange(50, 150) // 100, 1),
        par_value=rng.choice((100, 500, 5_000)),
        listed_on=date(1990 + rng.randrange(30), 1 + rng.randrange(12), 1 + rng.randrange(28)),
    )


def isin(symbol: str) -> str:
    """The standard code KR7 + code + 00 + check digit (ISIN's mod-10 over letters as numbers)."""
    body = f"KR7{symbol}00"
    digits = "".join(str(int(ch, 36)) for ch in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        value = int(ch) * (2 if i % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def _d(day: date) -> str:
    return day.strftime("%Y%m%d")


def _rate(extreme: int, price: int) -> str:
    """How far the price is from ``extreme``, in percent of the extreme (KIS's *_vrss_prpr_*)."""
    return f"{(price - extreme) / extreme * 100:.2f}" if extreme else "0.00"


def _extremes(bars: list[DayBar], price: int) -> tuple[int, str, int, str]:
    high = max(bars, key=lambda b: (b.high, b.day))
    low = min(bars, key=lambda b: (b.low, -b.day.toordinal()))
    return high.high, _d(high.day), low.low, _d(low.day)


def price_statistics(inst: Instrument, history: SimHistory, last: int) -> dict[str, str]:
    """The inquire-price fields KIS derives from history and reference data, at price ``last``:
    250-day, year-to-date and 52-week highs/lows with their dates and distances, listed
    shares, market cap (억원), PER, PBR, EPS, BPS, par value and capital."""
    today = history.today()
    bars = list(history.daily(inst.symbol))
    running = history.today_bar(inst.symbol)
    if running is not None:
        bars.append(running)
    if not bars:
        bars = [DayBar(today, last, last, last, last, 0, 0)]
    windows = {
        "d250": bars[-250:],
        "dryy": [b for b in bars if b.day.year == today.year] or bars[-1:],
        "w52": [b for b in bars if b.day > today - timedelta(days=365)] or bars[-1:],
    }
    ref = reference(inst)
    out: dict[str, str] = {}
    d_hi, d_hi_day, d_lo, d_lo_day = _extremes(windows["d250"], last)
    out |= {
        "d250_hgpr": str(d_hi),
        "d250_hgpr_date": d_hi_day,
        "d250_hgpr_vrss_prpr_rate": _rate(d_hi, last),
        "d250_lwpr": str(d_lo),
        "d250_lwpr_date": d_lo_day,
        "d250_lwpr_vrss_prpr_rate": _rate(d_lo, last),
    }
    y_hi, y_hi_day, y_lo, y_lo_day = _extremes(windows["dryy"], last)
    out |= {
        "stck_dryy_hgpr": str(y_hi),
        "dryy_hgpr_date": y_hi_day,
        "dryy_hgpr_vrss_prpr_rate": _rate(y_hi, last),
        "stck_dryy_lwpr": str(y_lo),
        "dryy_lwpr_date": y_lo_day,
        "dryy_lwpr_vrss_prpr_rate": _rate(y_lo, last),
    }
    w_hi, w_hi_day, w_lo, w_lo_day = _extremes(windows["w52"], last)
    out |= {
        "w52_hgpr": str(w_hi),
        "w52_hgpr_date": w_hi_day,
        "w52_hgpr_vrss_prpr_ctrt": _rate(w_hi, last),
        "w52_lwpr": str(w_lo),
        "w52_lwpr_date": w_lo_day,
        "w52_lwpr_vrss_prpr_ctrt": _rate(w_lo, last),
    }
    capital = ref.listed_shares * ref.par_value
    volume = running.volume if running is not None else 0
    out |= {
        "lstn_stcn": str(ref.listed_shares),
        # 시가총액 in 억원 (100 million won), as KIS sends it.
        "hts_avls": str(ref.listed_shares * last // 100_000_000),
        "per": f"{last / ref.eps:.2f}" if ref.eps > 0 else "0.00",
        "pbr": f"{last / ref.bps:.2f}",
        "eps": f"{ref.eps:.2f}",
        "bps": f"{ref.bps:.2f}",
        "stck_fcam": str(ref.par_value),
        "fcam_cnnm": "원",
        "cpfn": str(capital // 100_000_000),
        "cpfn_cnnm": "억",
        "stac_month": "12",
        "vol_tnrt": f"{volume / ref.listed_shares * 100:.2f}",
    }
    return out


def search_info(inst: Instrument) -> dict[str, str]:
    """``output`` of search-info (CTPF1604R, 상품기본조회) for a KRX stock (PRDT_TYPE_CD 300)."""
    ref = reference(inst)
    return {
        "pdno": inst.symbol,
        "prdt_type_cd": "300",
        "prdt_name": inst.name,
        "prdt_name120": inst.name,
        "prdt_abrv_name": inst.name,
        "prdt_eng_name": ref.english,
        "prdt_eng_name120": ref.english,
        "prdt_eng_abrv_name": ref.english,
        "std_pdno": isin(inst.symbol),
        "shtn_pdno": inst.symbol,
        "prdt_sale_stat_cd": "",
        "prdt_risk_grad_cd": "",
        "prdt_clsf_cd": "101210",
        "prdt_clsf_name": "주권",
        "sale_strt_dt": "",
        "sale_end_dt": "",
        "wrap_asst_type_cd": "",
        "ivst_prdt_type_cd": "",
        "ivst_prdt_type_cd_name": "",
        "frst_erlm_dt": _d(ref.listed_on),
    }


def stock_info(inst: Instrument, today: date) -> dict[str, str]:
    """``output`` of search-stock-info (CTPF1002R, 주식기본조회); NXT-eligible (protocol doc
    §8: ``cptt_trad_tr_psbl_yn`` Y, ``nxt_tr_stop_yn`` N), KOSPI, common stock."""
    ref = reference(inst)
    capital = ref.listed_shares * ref.par_value
    return {
        "pdno": inst.symbol,
        "prdt_type_cd": "300",
        "mket_id_cd": "STK",
        "scty_grp_id_cd": "ST",
        "excg_dvsn_cd": "02",
        "setl_mmdd": "1231",
        "lstg_stqt": str(ref.listed_shares),
        "lstg_cptl_amt": str(capital),
        "cpta": str(capital),
        "papr": str(ref.par_value),
        "issu_pric": str(ref.par_value),
        "kospi200_item_yn": "Y" if inst.symbol in _KNOWN else "N",
        "scts_mket_lstg_dt": _d(ref.listed_on),
        "scts_mket_lstg_abol_dt": "",
        "kosdaq_mket_lstg_dt": "",
        "kosdaq_mket_lstg_abol_dt": "",
        "frbd_mket_lstg_dt": "",
        "frbd_mket_lstg_abol_dt": "",
        "reits_kind_cd": "",
        "etf_dvsn_cd": "",
        "oilf_fund_yn": "N",
        "idx_bztp_lcls_cd": "001",
        "idx_bztp_mcls_cd": "",
        "idx_bztp_scls_cd": "",
        "idx_bztp_lcls_cd_name": "시가총액규모대",
        "idx_bztp_mcls_cd_name": ref.sector,
        "idx_bztp_scls_cd_name": ref.sector,
        "stck_kind_cd": "101",
        "mfnd_opng_dt": "",
        "mfnd_end_dt": "",
        "dpsi_erlm_cncl_dt": "",
        "etf_cu_qty": "0",
        "prdt_name": inst.name,
        "prdt_name120": inst.name,
        "prdt_abrv_name": inst.name,
        "std_pdno": isin(inst.symbol),
        "prdt_eng_name": ref.english,
        "prdt_eng_name120": ref.english,
        "prdt_eng_abrv_name": ref.english,
        "dpsi_aptm_erlm_yn": "Y",
        "etf_txtn_type_cd": "",
        "etf_type_cd": "",
        "lstg_abol_dt": "",
        "nwst_odst_dvsn_cd": "",
        "sbst_pric": str(inst.prev_close * 7 // 10),
        "thco_sbst_pric": str(inst.prev_close * 7 // 10),
        "thco_sbst_pric_chng_dt": _d(today),
        "tr_stop_yn": "N",
        "admn_item_yn": "N",
        "thdt_clpr": str(inst.price),
        "bfdy_clpr": str(inst.prev_close),
        "clpr_chng_dt": _d(today),
        "std_idst_clsf_cd": "032601",
        "std_idst_clsf_cd_name": ref.sector,
        "ocr_no": "",
        "crfd_item_yn": "N",
        "elec_scty_yn": "Y",
        "issu_istt_cd": inst.symbol[:5],
        "etf_chas_erng_rt_dbnb": "0",
        "etf_etn_ivst_heed_item_yn": "N",
        "stln_int_rt_dvsn_cd": "",
        "frnr_psnl_lmt_rt": "0.00",
        "lstg_rqsr_issu_istt_cd": "",
        "lstg_rqsr_item_cd": "",
        "trst_istt_issu_istt_cd": "",
        "cptt_trad_tr_psbl_yn": "Y",
        "nxt_tr_stop_yn": "N",
    }
