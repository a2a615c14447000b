"""Account queries: daily orders, cancelable orders, balance, buying power (doc §4.3-4.6)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from kis_async.config import KISConfig
from kis_async.models import (
    BuyingPower,
    Exchange,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from kis_async.models.common import kis_datetime, parse_decimal, parse_int
from kis_async.rest.http import first_object, get_ci, rows

__all__ = [
    "balance_params",
    "buying_power_params",
    "cancelable_params",
    "daily_orders_params",
    "derive_status",
    "is_old_range",
    "parse_cancelable_row",
    "parse_cash",
    "parse_daily_row",
    "parse_position",
]


def _account(config: KISConfig) -> dict[str, str]:
    return {"CANO": config.cano, "ACNT_PRDT_CD": config.product_code}


def _ctx(fk: str, nk: str) -> dict[str, str]:
    return {"CTX_AREA_FK100": fk, "CTX_AREA_NK100": nk}


def is_old_range(start: date, today: date) -> bool:
    """True when ``start`` is more than three months before ``today`` (the older TR id)."""
    year, month = today.year, today.month - 3
    if month <= 0:
        year, month = year - 1, month + 12
    day = min(today.day, _month_days(year, month))
    return start < date(year, month, day)


def _month_days(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - date(year, month, 1)).days


def daily_orders_params(
    config: KISConfig, *, start: date, end: date, unfilled_only: bool, fk: str, nk: str
) -> dict[str, str]:
    """inquire-daily-ccld query parameters (all sides, all symbols, newest first)."""
    return {
        **_account(config),
        "INQR_STRT_DT": start.strftime("%Y%m%d"),
        "INQR_END_DT": end.strftime("%Y%m%d"),
        "SLL_BUY_DVSN_CD": "00",
        "INQR_DVSN": "00",
        "PDNO": "",
        "CCLD_DVSN": "02" if unfilled_only else "00",
        "ORD_GNO_BRNO": "",
        "ODNO": "",
        "INQR_DVSN_3": "00",
        "INQR_DVSN_1": "",
        "EXCG_ID_DVSN_CD": "KRX" if config.is_paper else "ALL",
        **_ctx(fk, nk),
    }


def cancelable_params(config: KISConfig, *, fk: str, nk: str) -> dict[str, str]:
    """inquire-psbl-rvsecncl query parameters (by order, both sides)."""
    return {**_account(config), "INQR_DVSN_1": "0", "INQR_DVSN_2": "0", **_ctx(fk, nk)}


def balance_params(config: KISConfig, *, fk: str, nk: str) -> dict[str, str]:
    """inquire-balance query parameters (by stock, including the previous day's trades).

    ``AFHR_FLPR_YN`` is ``X`` live, the value that includes NXT (protocol doc §4.5, §13), so
    shares bought on NXT or via SOR appear as KIS reports them; ``N`` on paper, which is
    KRX-only and documents only N/Y.
    """
    return {
        **_account(config),
        "AFHR_FLPR_YN": "N" if config.is_paper else "X",
        "OFL_YN": "",
        "INQR_DVSN": "02",
        "UNPR_DVSN": "01",
        "FUND_STTL_ICLD_YN": "N",
        "FNCG_AMT_AUTO_RDPT_YN": "N",
        "PRCS_DVSN": "00",
        **_ctx(fk, nk),
    }


def buying_power_params(config: KISConfig, *, symbol: str, price: Decimal | None) -> dict[str, str]:
    """inquire-psbl-order query parameters.

    Without a price we send ``ORD_UNPR "0"`` with ``ORD_DVSN "01"`` (market): the doc allows
    a blank price for that case while the official sample rejects blanks, and "0" satisfies
    both (protocol doc §4.6).
    """
    return {
        **_account(config),
        "PDNO": symbol,
        "ORD_UNPR": "0" if price is None else str(int(price)),
        "ORD_DVSN": "01" if price is None else "00",
        "CMA_EVLU_AMT_ICLD_YN": "N",
        "OVRS_ICLD_YN": "N",
    }


def derive_status(
    *,
    qty: int,
    filled: int,
    remaining: int,
    cancelled: int,
    rejected: int,
    cancel_flag: bool,
) -> OrderStatus:
    """The status of a daily-order row from its quantities.

    Filled in full → FILLED; quantity still open → OPEN / PARTIALLY_FILLED; otherwise the
    rest ended by a rejection (with nothing filled) → REJECTED, and by a cancellation (or a
    rejection after partial fills, or an IOC/FOK expiry) → CANCELLED.
    """
    if qty > 0 and filled >= qty:
        return OrderStatus.FILLED
    if remaining > 0:
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN
    if rejected > 0 and filled == 0 and cancelled == 0:
        return OrderStatus.REJECTED
    if cancelled > 0 or cancel_flag or rejected > 0:
        return OrderStatus.CANCELLED
    if filled > 0:
        # Nothing open, nothing cancelled, yet not filled in full: KIS ended the rest.
        return OrderStatus.CANCELLED
    return OrderStatus.OPEN if qty > 0 else OrderStatus.CANCELLED


def _order_type(value: Any) -> OrderType | None:
    text = str(value or "").strip()
    try:
        return OrderType(text) if text else None
    except ValueError:
        return None


def _text(row: Mapping[str, Any], key: str) -> str | None:
    value = get_ci(row, key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(row: Mapping[str, Any], key: str) -> int | None:
    return parse_int(get_ci(row, key))


def _price(row: Mapping[str, Any], key: str) -> Decimal | None:
    value = parse_decimal(get_ci(row, key))
    return value if value is not None and value > 0 else None


def parse_daily_row(row: Mapping[str, Any]) -> Order:
    """Map one inquire-daily-ccld ``output1`` row to an :class:`Order`.

    The cancelled quantity is ``cncl_cfrm_qty`` in the spec and ``cnc_cfrm_qty`` in the
    official sample (protocol doc §4.4, [CONFLICT]); both are read. A missing ``rmn_qty`` is
    computed from the other quantities.
    """
    qty = _int(row, "ord_qty") or 0
    filled = _int(row, "tot_ccld_qty") or 0
    cancelled = _int(row, "cncl_cfrm_qty")
    if cancelled is None:
        cancelled = _int(row, "cnc_cfrm_qty")
    cancelled = cancelled or 0
    rejected = _int(row, "rjct_qty") or 0
    remaining = _int(row, "rmn_qty")
    if remaining is None:
        remaining = max(0, qty - filled - cancelled - rejected)
    status = derive_status(
        qty=qty,
        filled=filled,
        remaining=remaining,
        cancelled=cancelled,
        rejected=rejected,
        cancel_flag=(_text(row, "cncl_yn") or "").upper() == "Y",
    )
    return Order(
        **_order_terms(row),
        qty=qty,
        filled_qty=filled,
        avg_fill_price=_price(row, "avg_prvs"),
        remaining_qty=remaining,
        cancelled_qty=cancelled,
        rejected_qty=rejected,
        status=status,
        ordered_at=kis_datetime(_text(row, "ord_dt"), _text(row, "ord_tmd")),
    )


def _order_terms(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields every order row spells the same way (daily orders, cancelable orders)."""
    return {
        "broker_order_id": _text(row, "odno") or "",
        "branch_no": _text(row, "ord_gno_brno"),
        "original_order_id": _text(row, "orgn_odno"),
        "symbol": _text(row, "pdno") or "",
        "name": _text(row, "prdt_name"),
        "side": Side.parse(_text(row, "sll_buy_dvsn_cd") or ""),
        "order_type": _order_type(get_ci(row, "ord_dvsn_cd")),
        "price": _price(row, "ord_unpr"),
        # The spec and OTA spell it excg_id_dvsn_Cd, kis-trader excg_id_dvsn_cd [CONFLICT]:
        # get_ci reads either.
        "exchange": _exchange(get_ci(row, "excg_id_dvsn_cd")),
        "stop_price": _price(row, "stpm_cndt_pric"),
    }


def _exchange(value: Any) -> Exchange | None:
    """The venue of an order row; blank (rows from before NXT) or unknown -> None."""
    try:
        return Exchange.parse(value) if str(value or "").strip() else None
    except ValueError:
        return None


def parse_cancelable_row(row: Mapping[str, Any], today: date) -> Order:
    """Map one inquire-psbl-rvsecncl ``output`` row (``psbl_qty`` = open quantity)."""
    qty = _int(row, "ord_qty") or 0
    filled = _int(row, "tot_ccld_qty") or 0
    remaining = _int(row, "psbl_qty")
    if remaining is None:
        remaining = max(0, qty - filled)
    filled_amount = parse_decimal(get_ci(row, "tot_ccld_amt"))
    avg = (filled_amount / filled) if filled_amount and filled > 0 else None
    return Order(
        **_order_terms(row),
        qty=qty,
        filled_qty=filled,
        avg_fill_price=avg,
        remaining_qty=remaining,
        status=OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN,
        ordered_at=kis_datetime(today, _text(row, "ord_tmd")),
    )


def parse_position(row: Mapping[str, Any]) -> Position:
    """Map one inquire-balance ``output1`` row to a :class:`Position`."""
    return Position.model_validate({k.lower(): v for k, v in row.items()})


def parse_positions(pages: Iterable[Mapping[str, Any]]) -> list[Position]:
    """All holdings of every page, skipping rows whose quantity is zero."""
    positions: list[Position] = []
    for body in pages:
        for row in rows(get_ci(body, "output1")):
            if (parse_int(get_ci(row, "hldg_qty")) or 0) <= 0:
                continue
            positions.append(parse_position(row))
    return positions


def parse_cash(body: Mapping[str, Any]) -> Decimal:
    """``dnca_tot_amt`` of inquire-balance ``output2`` (an object or a one-element array).

    Raises:
        KeyError: the answer has no deposit amount.
    """
    summary = first_object(get_ci(body, "output2"))
    value = parse_decimal(get_ci(summary, "dnca_tot_amt"))
    if value is None:
        raise KeyError("dnca_tot_amt")
    return value


def parse_buying_power(body: Mapping[str, Any], symbol: str) -> BuyingPower:
    """Build :class:`BuyingPower` from inquire-psbl-order ``output``."""
    output = {k.lower(): v for k, v in first_object(get_ci(body, "output")).items()}
    output["symbol"] = symbol
    return BuyingPower.model_validate(output)
