"""Record layouts: the field-name tables and field positions of every TR (protocol doc §7)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from kis_async.models.market import Market, Session
from kis_async.models.orders import Exchange, OrderType, Side
from kis_async.stream.protocol.frames import TR_ORDERBOOK, TR_ORDERBOOK_NXT, TR_ORDERBOOK_UNIFIED

# -- Quote (H0STCNT0) ----------------------------------------------------------------------

#: H0STCNT0 field names in order (protocol doc §7.1); the 47th was added 2026-09-14.
QUOTE_FIELD_NAMES: Final = (
    "MKSC_SHRN_ISCD",
    "STCK_CNTG_HOUR",
    "STCK_PRPR",
    "PRDY_VRSS_SIGN",
    "PRDY_VRSS",
    "PRDY_CTRT",
    "WGHN_AVRG_STCK_PRC",
    "STCK_OPRC",
    "STCK_HGPR",
    "STCK_LWPR",
    "ASKP1",
    "BIDP1",
    "CNTG_VOL",
    "ACML_VOL",
    "ACML_TR_PBMN",
    "SELN_CNTG_CSNU",
    "SHNU_CNTG_CSNU",
    "NTBY_CNTG_CSNU",
    "CTTR",
    "SELN_CNTG_SMTN",
    "SHNU_CNTG_SMTN",
    "CCLD_DVSN",
    "SHNU_RATE",
    "PRDY_VOL_VRSS_ACML_VOL_RATE",
    "OPRC_HOUR",
    "OPRC_VRSS_PRPR_SIGN",
    "OPRC_VRSS_PRPR",
    "HGPR_HOUR",
    "HGPR_VRSS_PRPR_SIGN",
    "HGPR_VRSS_PRPR",
    "LWPR_HOUR",
    "LWPR_VRSS_PRPR_SIGN",
    "LWPR_VRSS_PRPR",
    "BSOP_DATE",
    "NEW_MKOP_CLS_CODE",
    "TRHT_YN",
    "ASKP_RSQN1",
    "BIDP_RSQN1",
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
    "VOL_TNRT",
    "PRDY_SMNS_HOUR_ACML_VOL",
    "PRDY_SMNS_HOUR_ACML_VOL_RATE",
    "HOUR_CLS_CODE",
    "MRKT_TRTM_CLS_CODE",
    "VI_STND_PRC",
    "MARKET_CLS_CODE",
)
_QUOTE_INDEX: Final = {name: i for i, name in enumerate(QUOTE_FIELD_NAMES)}
#: H0NXCNT0 / H0UNCNT0 share the positions; field 22 is named CNTG_CLS_CODE there (§7.1).
#: [CONFLICT §12] OTA lists 46 fields, kis-trader 47 (+ MARKET_CLS_CODE): both decode, and
#: fields past either are tolerated.
QUOTE_FIELD_NAMES_NX: Final = (*QUOTE_FIELD_NAMES[:21], "CNTG_CLS_CODE", *QUOTE_FIELD_NAMES[22:])
_QUOTE_INDEX_NX: Final = {name: i for i, name in enumerate(QUOTE_FIELD_NAMES_NX)}
#: MARKET_CLS_CODE (protocol doc §7.1: 1 pre, 2 regular, 3 after, 5 closing). "5" is read as
#: the closing call auction (장마감 동시호가), the only "closing" session the code has room for
#: beside 3 (after-market, which takes the after-hours closing-price trades).
MARKET_CLS_SESSIONS: Final[Mapping[str, Session]] = {
    "1": Session.PRE_MARKET,
    "2": Session.REGULAR,
    "3": Session.AFTER_MARKET,
    "5": Session.CLOSING_AUCTION,
}
# CCLD_DVSN: 1 buy-initiated, 5 sell-initiated, 3 pre-market (no initiating side).
_QUOTE_SIDES: Final = {"1": Side.BUY, "5": Side.SELL}


#: The current 26-field notice layout (protocol doc §7.3).
NOTICE_FIELD_NAMES_26: Final = (
    "CUST_ID",
    "ACNT_NO",
    "ODER_NO",
    "OODER_NO",
    "SELN_BYOV_CLS",
    "RCTF_CLS",
    "ODER_KIND",
    "ODER_COND",
    "STCK_SHRN_ISCD",
    "CNTG_QTY",
    "CNTG_UNPR",
    "STCK_CNTG_HOUR",
    "RFUS_YN",
    "CNTG_YN",
    "ACPT_YN",
    "BRNC_NO",
    "ODER_QTY",
    "ACNT_NAME",
    "ORD_COND_PRC",
    "ORD_EXG_GB",
    "POPUP_YN",
    "FILLER",
    "CRDT_CLS",
    "CRDT_LOAN_DATE",
    "CNTG_ISNM40",
    "ODER_PRC",
)
#: The older 23-field layout: fields 1-18 as above, then these.
NOTICE_FIELD_NAMES_23: Final = (
    *NOTICE_FIELD_NAMES_26[:18],
    "CNTG_ISNM",
    "CRDT_CLS",
    "CRDT_LOAN_DATE",
    "CNTG_ISNM40",
    "ODER_PRC",
)
_NOTICE_INDEX_26: Final = {name: i for i, name in enumerate(NOTICE_FIELD_NAMES_26)}
_NOTICE_INDEX_23: Final = {name: i for i, name in enumerate(NOTICE_FIELD_NAMES_23)}


_ORDER_TYPES: Final = {t.value: t for t in OrderType}
_NOTICE_SIDES: Final = {"01": Side.SELL, "02": Side.BUY}

# H0STCNT0 positions, by name.
_Q_SYMBOL: Final = _QUOTE_INDEX["MKSC_SHRN_ISCD"]
_Q_TIME: Final = _QUOTE_INDEX["STCK_CNTG_HOUR"]
_Q_PRICE: Final = _QUOTE_INDEX["STCK_PRPR"]
_Q_CHANGE: Final = _QUOTE_INDEX["PRDY_VRSS"]
_Q_RATE: Final = _QUOTE_INDEX["PRDY_CTRT"]
_Q_VWAP: Final = _QUOTE_INDEX["WGHN_AVRG_STCK_PRC"]
_Q_OPEN: Final = _QUOTE_INDEX["STCK_OPRC"]
_Q_HIGH: Final = _QUOTE_INDEX["STCK_HGPR"]
_Q_LOW: Final = _QUOTE_INDEX["STCK_LWPR"]
_Q_ASK: Final = _QUOTE_INDEX["ASKP1"]
_Q_BID: Final = _QUOTE_INDEX["BIDP1"]
_Q_VOLUME: Final = _QUOTE_INDEX["CNTG_VOL"]
_Q_CUM_VOLUME: Final = _QUOTE_INDEX["ACML_VOL"]
_Q_TURNOVER: Final = _QUOTE_INDEX["ACML_TR_PBMN"]
_Q_SIDE: Final = _QUOTE_INDEX["CCLD_DVSN"]
_Q_DAY: Final = _QUOTE_INDEX["BSOP_DATE"]
_Q_MARKET_CLS: Final = _QUOTE_INDEX["MARKET_CLS_CODE"]


# Notice positions, by name (fields 1-18 are common to the 23- and 26-field layouts).
_N_ORDER: Final = _NOTICE_INDEX_26["ODER_NO"]
_N_ORIGINAL: Final = _NOTICE_INDEX_26["OODER_NO"]
_N_SIDE: Final = _NOTICE_INDEX_26["SELN_BYOV_CLS"]
_N_CORRECTION: Final = _NOTICE_INDEX_26["RCTF_CLS"]
_N_ORDER_KIND: Final = _NOTICE_INDEX_26["ODER_KIND"]
_N_SYMBOL: Final = _NOTICE_INDEX_26["STCK_SHRN_ISCD"]
_N_QTY: Final = _NOTICE_INDEX_26["CNTG_QTY"]
_N_PRICE: Final = _NOTICE_INDEX_26["CNTG_UNPR"]
_N_TIME: Final = _NOTICE_INDEX_26["STCK_CNTG_HOUR"]
_N_REFUSED: Final = _NOTICE_INDEX_26["RFUS_YN"]
_N_FILLED: Final = _NOTICE_INDEX_26["CNTG_YN"]
_N_ACCEPTED: Final = _NOTICE_INDEX_26["ACPT_YN"]
_N_BRANCH: Final = _NOTICE_INDEX_26["BRNC_NO"]
_N_ORDER_QTY: Final = _NOTICE_INDEX_26["ODER_QTY"]
_N_EXCHANGE: Final = _NOTICE_INDEX_26["ORD_EXG_GB"]  # 26-field layout only
#: ORD_EXG_GB (protocol doc §7.3, §12): the exchange the order was placed with, and the
#: venue it went to (for SOR, where KIS routed it).
ORD_EXG_GB: Final[Mapping[str, tuple[Exchange, Exchange]]] = {
    "1": (Exchange.KRX, Exchange.KRX),
    "2": (Exchange.NXT, Exchange.NXT),
    "3": (Exchange.SOR, Exchange.KRX),
    "4": (Exchange.SOR, Exchange.NXT),
}


# -- order books (protocol doc §7.2, §12) ------------------------------------------------------

#: The 59 fields every order-book layout starts with (H0STASP0 before 2026-09-14).
ORDERBOOK_FIELD_NAMES: Final = (
    "MKSC_SHRN_ISCD",
    "BSOP_HOUR",
    "HOUR_CLS_CODE",
    *(f"ASKP{i}" for i in range(1, 11)),
    *(f"BIDP{i}" for i in range(1, 11)),
    *(f"ASKP_RSQN{i}" for i in range(1, 11)),
    *(f"BIDP_RSQN{i}" for i in range(1, 11)),
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
    "OVTM_TOTAL_ASKP_RSQN",
    "OVTM_TOTAL_BIDP_RSQN",
    "ANTC_CNPR",
    "ANTC_CNQN",
    "ANTC_VOL",
    "ANTC_CNTG_VRSS",
    "ANTC_CNTG_VRSS_SIGN",
    "ANTC_CNTG_PRDY_CTRT",
    "ACML_VOL",
    "TOTAL_ASKP_RSQN_ICDC",
    "TOTAL_BIDP_RSQN_ICDC",
    "OVTM_TOTAL_ASKP_ICDC",
    "OVTM_TOTAL_BIDP_ICDC",
    "STCK_DEAL_CLS_CODE",
)
_KMID: Final = ("KMID_PRC", "KMID_TOTAL_RSQN", "KMID_CLS_CODE")
_NMID: Final = ("NMID_PRC", "NMID_TOTAL_RSQN", "NMID_CLS_CODE")


class BookLayout(NamedTuple):
    """One order-book record layout: its field names and where the optional fields are
    (-1: absent)."""

    market: Market
    names: tuple[str, ...]
    mid: int
    mid_qty: int
    krx_mid: int
    nxt_mid: int
    session: int


def _layout(
    market: Market,
    extra: tuple[str, ...] = (),
    *,
    mid: str = "",
    mid_qty: str = "",
    krx_mid: str = "",
    nxt_mid: str = "",
    session: str = "",
) -> BookLayout:
    names = (*ORDERBOOK_FIELD_NAMES, *extra)
    index = {name: i for i, name in enumerate(names)}
    at = [index.get(name, -1) for name in (mid, mid_qty, krx_mid, nxt_mid, session)]
    return BookLayout(market, names, *at)


_KRX_63: Final = ("MID_PRC", "MIDP_TOTAL_RSQN", "MIDP_CLS_CODE", "MARKET_CLS_CODE")
_OTA_65: Final = (*_KMID, *_NMID)

#: tr_id -> ((minimum width, layout), ...), widest first; a record takes the first layout
#: it is wide enough for. [CONFLICT §12] Every width either source gives decodes:
#:
#: * H0STASP0: 59 (OTA) or 63 (kis-trader, probed live: + MID_PRC, MIDP_TOTAL_RSQN,
#:   MIDP_CLS_CODE, MARKET_CLS_CODE). We expect 63.
#: * H0NXASP0: 62 (kis-trader: + NMID_*) or 65 (OTA: + KMID_*, NMID_*). 65 and wider is read
#:   as OTA's layout (not as 62 with three trailing fields): both sources agree the NXT
#:   fields come last there. We expect 62 (kis-trader's width; neither is probed).
#: * H0UNASP0: 65 (OTA: + KMID_*, NMID_*) or 66 (kis-trader, probed live: the same + the
#:   expected-price venue ANTC_EXCH_CLS_CODE). The first 65 agree. We expect 66.
#:
#: A narrower record (59..) decodes the common fields only.
BOOK_LAYOUTS: Final[Mapping[str, tuple[tuple[int, BookLayout], ...]]] = {
    TR_ORDERBOOK: (
        (
            63,
            _layout(
                Market.KRX,
                _KRX_63,
                mid="MID_PRC",
                mid_qty="MIDP_TOTAL_RSQN",
                krx_mid="MID_PRC",
                session="MARKET_CLS_CODE",
            ),
        ),
        (59, _layout(Market.KRX)),
    ),
    TR_ORDERBOOK_NXT: (
        (
            65,
            _layout(
                Market.NXT,
                _OTA_65,
                mid="NMID_PRC",
                mid_qty="NMID_TOTAL_RSQN",
                krx_mid="KMID_PRC",
                nxt_mid="NMID_PRC",
            ),
        ),
        (
            62,
            _layout(
                Market.NXT, _NMID, mid="NMID_PRC", mid_qty="NMID_TOTAL_RSQN", nxt_mid="NMID_PRC"
            ),
        ),
        (59, _layout(Market.NXT)),
    ),
    TR_ORDERBOOK_UNIFIED: (
        (
            66,
            _layout(
                Market.UNIFIED,
                (*_OTA_65, "ANTC_EXCH_CLS_CODE"),
                krx_mid="KMID_PRC",
                nxt_mid="NMID_PRC",
            ),
        ),
        (65, _layout(Market.UNIFIED, _OTA_65, krx_mid="KMID_PRC", nxt_mid="NMID_PRC")),
        (59, _layout(Market.UNIFIED)),
    ),
}


def _book_layout(tr_id: str, width: int) -> BookLayout:
    layouts = BOOK_LAYOUTS.get(tr_id) or BOOK_LAYOUTS[TR_ORDERBOOK]
    for minimum, layout in layouts:
        if width >= minimum:
            return layout
    return layouts[-1][1]
