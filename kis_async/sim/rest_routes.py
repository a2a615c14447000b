"""The simulator's REST routing table: path -> TR id -> (mode, action), and HTTP methods.

Shared by the dispatcher in :mod:`kis_async.sim.rest` and the order endpoints, which read the
side of an order from its TR id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from kis_async.config import Mode
from kis_async.sim.charts import CHART_ROUTES

__all__ = ["PREFIX", "TR_TABLE"]

PREFIX: Final = "/uapi/domestic-stock/v1"

# path -> {tr_id: (mode, action)}; both the new and the old TR ids (protocol doc §4.0).
_L, _P = Mode.LIVE, Mode.PAPER
TR_TABLE: Final[Mapping[str, Mapping[str, tuple[Mode | None, str]]]] = {
    "/trading/order-cash": {
        "TTTC0011U": (_L, "sell"), "TTTC0801U": (_L, "sell"),
        "TTTC0012U": (_L, "buy"), "TTTC0802U": (_L, "buy"),
        "VTTC0011U": (_P, "sell"), "VTTC0801U": (_P, "sell"),
        "VTTC0012U": (_P, "buy"), "VTTC0802U": (_P, "buy"),
    },
    "/trading/order-rvsecncl": {
        "TTTC0013U": (_L, "rvsecncl"), "TTTC0803U": (_L, "rvsecncl"),
        "VTTC0013U": (_P, "rvsecncl"), "VTTC0803U": (_P, "rvsecncl"),
    },
    "/trading/inquire-psbl-rvsecncl": {
        "TTTC0084R": (_L, "psbl_rvsecncl"), "TTTC8036R": (_L, "psbl_rvsecncl"),
    },
    "/trading/inquire-daily-ccld": {
        "TTTC0081R": (_L, "daily_ccld"), "TTTC8001R": (_L, "daily_ccld"),
        "CTSC9215R": (_L, "daily_ccld"), "CTSC9115R": (_L, "daily_ccld"),
        "VTTC0081R": (_P, "daily_ccld"), "VTTC8001R": (_P, "daily_ccld"),
        "VTSC9215R": (_P, "daily_ccld"), "VTSC9115R": (_P, "daily_ccld"),
    },
    "/trading/inquire-balance": {"TTTC8434R": (_L, "balance"), "VTTC8434R": (_P, "balance")},
    "/trading/inquire-psbl-order": {
        "TTTC8908R": (_L, "psbl_order"), "VTTC8908R": (_P, "psbl_order"),
    },
    "/quotations/inquire-price": {"FHKST01010100": (None, "price")},
    "/quotations/inquire-asking-price-exp-ccn": {"FHKST01010200": (None, "asking_price")},
    # Product / stock basic info (protocol doc §4.0): documented live only; answered in both
    # modes, because clients such as python-kis send them to whichever host they are given.
    "/quotations/search-info": {"CTPF1604R": (None, "search_info")},
    "/quotations/search-stock-info": {"CTPF1002R": (None, "stock_info")},
    # Charts (protocol doc §10), answered by kis_async.sim.charts.
    **{path: {tr: (None, "chart")} for path, tr in CHART_ROUTES.items()},
    # chk-holiday is live only (protocol doc §11.1): a paper server answers its TR id the
    # way it answers every live TR id, EGW00213.
    "/quotations/chk-holiday": {"CTCA0903R": (_L, "holidays")},
}  # fmt: skip
_METHODS: Final = {
    "/trading/order-cash": "POST",
    "/trading/order-rvsecncl": "POST",
}
