"""Real-time wire format of the simulator: record layouts, data frames, AES encryption.

Layouts follow protocol doc §7 and §12: trades H0STCNT0 / H0NXCNT0 / H0UNCNT0 (46 fields, or 47
with MARKET_CLS_CODE), books H0STASP0 / H0NXASP0 / H0UNASP0 in two layouts and the execution
notice (26 fields, or the legacy 23). Book layouts [CONFLICT §12]: ``"kt"`` (default, the
widths kis-trader 0.12.2 probed on the live server: H0STASP0 63, H0NXASP0 62, H0UNASP0 66) or
``"ota"`` (the official samples, before 2026-09-14: 59, 65, 65). Numbers are strings; notice
numerics are zero-padded as KIS pads them.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kis_async.sim.exchange import BookLevel, NoticeEvent, NoticeKind, Tick
from kis_async.sim.venues import KRX, NXT, exg_gb, merge_levels

__all__ = [
    "BOOK_WIDTHS",
    "book_record",
    "data_frame",
    "encrypt",
    "notice_record",
    "trade_record",
]


def data_frame(
    tr_id: str, records: Sequence[Sequence[str]], *, encrypted: str | None = None
) -> str:
    """``<flag>|<tr_id>|<count>|<payload>``; records are joined with ``^`` (protocol doc §6.5).

    Args:
        tr_id: the real-time TR id.
        records: the records, each a list of field strings.
        encrypted: the already encrypted payload (flag ``1``); ``records`` then only gives the
            count.
    """
    count = f"{len(records):03d}"
    if encrypted is not None:
        return f"1|{tr_id}|{count}|{encrypted}"
    return f"0|{tr_id}|{count}|" + "^".join("^".join(r) for r in records)


def encrypt(plaintext: str, *, key: str, iv: str) -> str:
    """AES-256-CBC with PKCS#7 padding, base64 encoded (protocol doc §6.6)."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(
        algorithms.AES(key.encode("utf-8")), modes.CBC(iv.encode("utf-8"))
    ).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode("ascii")


def _f2(value: float) -> str:
    return f"{value:.2f}"


def _sign(diff: int) -> str:
    return "2" if diff > 0 else "5" if diff < 0 else "3"


#: Fields per order-book record: layout -> venue ("KRX", "NXT", "UN") -> width.
BOOK_WIDTHS: Final = {
    "kt": {KRX: 63, NXT: 62, "UN": 66},
    "ota": {KRX: 59, NXT: 65, "UN": 65},
}


@dataclass(frozen=True, slots=True)
class _View:
    """One venue's side of a market step: KRX, NXT, or UN (both merged)."""

    price: int
    qty: int
    volume: int
    turnover: int
    asks: tuple[BookLevel, ...]
    bids: tuple[BookLevel, ...]


def _view(tick: Tick, venue: str) -> _View:
    if venue == NXT:
        return _View(
            tick.nxt_price, tick.nxt_qty, tick.nxt_volume, tick.nxt_turnover,
            tick.nxt_asks, tick.nxt_bids,
        )  # fmt: skip
    if venue == "UN":
        asks = merge_levels(tick.asks, tick.nxt_asks, ascending=True)
        bids = merge_levels(tick.bids, tick.nxt_bids, ascending=False)
        return _View(
            tick.unified_price, tick.nxt_qty or tick.qty, tick.volume + tick.nxt_volume,
            tick.turnover + tick.nxt_turnover,
            tuple(BookLevel(p, q) for p, q in asks), tuple(BookLevel(p, q) for p, q in bids),
        )  # fmt: skip
    return _View(tick.price, tick.qty, tick.volume, tick.turnover, tick.asks, tick.bids)


def trade_record(
    tick: Tick, *, fields: int = 47, business_date: str, venue: str = KRX,
    market_cls: str = "2",
) -> list[str]:  # fmt: skip
    """A trade record for ``tick`` on ``venue`` (KRX H0STCNT0, NXT H0NXCNT0, UN H0UNCNT0):
    46 fields, or 47 with MARKET_CLS_CODE (``market_cls``: 1 pre, 2 regular, 3 after, 5
    closing). NXT and UN reuse KRX's open/high/low (the simulator keeps one set)."""
    inst = tick.instrument
    view = _view(tick, venue)
    change = view.price - inst.prev_close
    hhmmss = tick.time.strftime("%H%M%S")
    vwap = view.turnover / view.volume if view.volume else float(view.price)
    ask1 = view.asks[0] if view.asks else None
    bid1 = view.bids[0] if view.bids else None
    total_ask = sum(lv.qty for lv in view.asks)
    total_bid = sum(lv.qty for lv in view.bids)
    strength = tick.buy_volume / tick.sell_volume * 100 if tick.sell_volume else 100.0
    buy_rate = tick.buy_volume / tick.volume * 100 if tick.volume else 0.0
    sign = (
        "1"
        if view.price >= inst.upper_limit
        else "4"
        if view.price <= inst.lower_limit
        else _sign(change)
    )
    record = [
        tick.symbol,  # 1 MKSC_SHRN_ISCD
        hhmmss,  # 2 STCK_CNTG_HOUR
        str(view.price),  # 3 STCK_PRPR
        sign,  # 4 PRDY_VRSS_SIGN
        str(change),  # 5 PRDY_VRSS
        _f2(change / inst.prev_close * 100),  # 6 PRDY_CTRT
        _f2(vwap),  # 7 WGHN_AVRG_STCK_PRC
        str(tick.open),  # 8 STCK_OPRC
        str(tick.high),  # 9 STCK_HGPR
        str(tick.low),  # 10 STCK_LWPR
        str(ask1.price if ask1 else 0),  # 11 ASKP1
        str(bid1.price if bid1 else 0),  # 12 BIDP1
        str(view.qty),  # 13 CNTG_VOL
        str(view.volume),  # 14 ACML_VOL
        str(view.turnover),  # 15 ACML_TR_PBMN
        str(tick.sell_count),  # 16 SELN_CNTG_CSNU
        str(tick.buy_count),  # 17 SHNU_CNTG_CSNU
        str(tick.buy_count - tick.sell_count),  # 18 NTBY_CNTG_CSNU
        _f2(strength),  # 19 CTTR
        str(tick.sell_volume),  # 20 SELN_CNTG_SMTN
        str(tick.buy_volume),  # 21 SHNU_CNTG_SMTN
        "1" if tick.buyer_initiated else "5",  # 22 CCLD_DVSN (NXT/UN: CNTG_CLS_CODE)
        _f2(buy_rate),  # 23 SHNU_RATE
        "0.00",  # 24 PRDY_VOL_VRSS_ACML_VOL_RATE
        inst.open_time,  # 25 OPRC_HOUR
        _sign(view.price - tick.open),  # 26 OPRC_VRSS_PRPR_SIGN
        str(view.price - tick.open),  # 27 OPRC_VRSS_PRPR
        inst.high_time,  # 28 HGPR_HOUR
        _sign(view.price - tick.high),  # 29 HGPR_VRSS_PRPR_SIGN
        str(view.price - tick.high),  # 30 HGPR_VRSS_PRPR
        inst.low_time,  # 31 LWPR_HOUR
        _sign(view.price - tick.low),  # 32 LWPR_VRSS_PRPR_SIGN
        str(view.price - tick.low),  # 33 LWPR_VRSS_PRPR
        business_date,  # 34 BSOP_DATE
        "20",  # 35 NEW_MKOP_CLS_CODE: 장중, 보통
        "N",  # 36 TRHT_YN
        str(ask1.qty if ask1 else 0),  # 37 ASKP_RSQN1
        str(bid1.qty if bid1 else 0),  # 38 BIDP_RSQN1
        str(total_ask),  # 39 TOTAL_ASKP_RSQN
        str(total_bid),  # 40 TOTAL_BIDP_RSQN
        "0.00",  # 41 VOL_TNRT
        "0",  # 42 PRDY_SMNS_HOUR_ACML_VOL
        "0.00",  # 43 PRDY_SMNS_HOUR_ACML_VOL_RATE
        "0",  # 44 HOUR_CLS_CODE: 장중
        "",  # 45 MRKT_TRTM_CLS_CODE
        "",  # 46 VI_STND_PRC
    ]
    if fields == 47:
        record.append(market_cls)  # 47 MARKET_CLS_CODE
    return record


def _mid(asks: tuple[BookLevel, ...], bids: tuple[BookLevel, ...]) -> str:
    if not asks or not bids:
        return "0"
    return str((asks[0].price + bids[0].price) // 2)


def book_record(
    tick: Tick, *, venue: str = KRX, layout: str = "kt", market_cls: str = "2"
) -> list[str]:
    """An order-book record for the book after ``tick`` on ``venue`` (KRX H0STASP0, NXT
    H0NXASP0, UN H0UNASP0) in ``layout`` (:data:`BOOK_WIDTHS`)."""
    view = _view(tick, venue)
    asks = list(view.asks[:10]) + [None] * (10 - len(view.asks[:10]))
    bids = list(view.bids[:10]) + [None] * (10 - len(view.bids[:10]))
    total_ask = sum(lv.qty for lv in view.asks)
    total_bid = sum(lv.qty for lv in view.bids)
    record = [tick.symbol, tick.time.strftime("%H%M%S"), "0"]
    record += [str(lv.price) if lv else "0" for lv in asks]
    record += [str(lv.price) if lv else "0" for lv in bids]
    record += [str(lv.qty) if lv else "0" for lv in asks]
    record += [str(lv.qty) if lv else "0" for lv in bids]
    record += [str(total_ask), str(total_bid), "0", "0"]  # 44-47
    # 48-53: no auction during the regular session, so the expected price fields are zero.
    record += ["0", "0", "0", "0", "3", "0.00"]
    record += [str(view.volume), "0", "0", "0", "0", ""]  # 54-59
    krx_mid = _mid(tick.asks, tick.bids)
    nxt_mid = _mid(tick.nxt_asks, tick.nxt_bids)
    # The *_CLS_CODE values of the mid-price fields are undocumented; "0" is sent.
    if layout == "ota":
        if venue != KRX:
            record += [krx_mid, "0", "0", nxt_mid, "0", "0"]  # 60-65 KMID_*, NMID_*
    elif venue == KRX:
        record += [krx_mid, "0", "0", market_cls]  # 60-63 MID_PRC..MARKET_CLS_CODE
    elif venue == NXT:
        record += [nxt_mid, "0", "0"]  # 60-62 NMID_PRC, NMID_TOTAL_RSQN, NMID_CLS_CODE
    else:
        # 60-65 KMID_*, NMID_*; 66 ANTC_EXCH_CLS_CODE (1 KRX, 2 NXT)
        record += [krx_mid, "0", "0", nxt_mid, "0", "0", "2" if tick.nxt_qty else "1"]
    return record


def notice_record(
    event: NoticeEvent, *, hts_id: str, account_id: str, account_name: str, stock_name: str,
    fields: int = 26,
) -> list[str]:  # fmt: skip
    """An execution-notice record (26 fields, or the legacy 23) for ``event``."""
    order = event.order
    kind = event.kind
    rctf = {"modify": "1", "cancel": "2"}.get(order.kind, "0")
    if kind is NoticeKind.CANCELLED and event.auto_cancel:
        rctf = "0"
    cond = "1" if order.order_type in ("11", "13", "15") else "0"
    if order.order_type in ("12", "14", "16"):
        cond = "2"
    if kind is NoticeKind.FILLED:
        cntg_yn, acpt_yn = "2", "2"
    elif kind is NoticeKind.CANCELLED and event.auto_cancel:
        cntg_yn, acpt_yn = "1", "3"
    elif kind in (NoticeKind.MODIFIED, NoticeKind.CANCELLED):
        cntg_yn, acpt_yn = "1", "2"
    else:
        cntg_yn, acpt_yn = "1", "1"
    record = [
        hts_id,  # 1 CUST_ID
        account_id,  # 2 ACNT_NO
        order.order_id,  # 3 ODER_NO
        order.original_order_id,  # 4 OODER_NO
        order.side,  # 5 SELN_BYOV_CLS
        rctf,  # 6 RCTF_CLS
        order.order_type,  # 7 ODER_KIND
        cond,  # 8 ODER_COND
        order.symbol,  # 9 STCK_SHRN_ISCD
        f"{event.qty:010d}",  # 10 CNTG_QTY
        f"{event.price:09d}",  # 11 CNTG_UNPR
        event.time.strftime("%H%M%S"),  # 12 STCK_CNTG_HOUR
        "1" if kind is NoticeKind.REJECTED else "0",  # 13 RFUS_YN
        cntg_yn,  # 14 CNTG_YN
        acpt_yn,  # 15 ACPT_YN
        order.branch_no,  # 16 BRNC_NO
        f"{order.qty:09d}",  # 17 ODER_QTY
        account_name,  # 18 ACNT_NAME
    ]
    if fields == 23:
        record += [stock_name, "", "", stock_name, f"{order.price:09d}"]
    else:
        stop = f"{order.stop_price:09d}" if order.stop_price else ""
        record += [
            stop,  # 19 ORD_COND_PRC
            exg_gb(order.placed_on, order.venue),  # 20 ORD_EXG_GB
            "N",  # 21 POPUP_YN
            "",  # 22 FILLER
            "",  # 23 CRDT_CLS
            "",  # 24 CRDT_LOAN_DATE
            stock_name,  # 25 CNTG_ISNM40
            f"{order.price:09d}",  # 26 ODER_PRC
        ]
    return record
