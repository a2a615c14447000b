"""Order bodies and answers: order-cash and order-rvsecncl (protocol doc §4.1, §4.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from kis_async.config import KISConfig
from kis_async.errors import BrokerAPIError, InvalidOrderError
from kis_async.models import OrderRequest, OrderType
from kis_async.models.common import kis_datetime
from kis_async.rest.http import first_object, get_ci
from kis_async.validation import check_limit_price, check_qty, coerce_price

__all__ = [
    "ModifyArgs",
    "PlacedOrder",
    "cancel_body",
    "modify_body",
    "order_cash_body",
    "parse_placed",
    "validate_modify",
]

# Orders go to KRX; the paper servers accept nothing else (protocol doc §4.1, §8).
_EXCHANGE = "KRX"
_REVISE = "01"
_CANCEL = "02"


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """What KIS returned for an accepted order (or revise/cancel order).

    Attributes:
        order_id: the order number (``ODNO``).
        branch_no: the KRX forwarding order org number (``KRX_FWDG_ORD_ORGNO``), needed to
            modify or cancel the order.
        ordered_at: the order time (``ORD_TMD``, today in KST), when KIS gave one.
    """

    order_id: str
    branch_no: str
    ordered_at: datetime | None


def order_cash_body(config: KISConfig, request: OrderRequest) -> dict[str, str]:
    """The order-cash JSON body; every value a string, as KIS expects."""
    return {
        "CANO": config.cano,
        "ACNT_PRDT_CD": config.product_code,
        "PDNO": request.symbol,
        "ORD_DVSN": request.order_type.value,
        "ORD_QTY": str(request.qty),
        "ORD_UNPR": request.price_text,
        "EXCG_ID_DVSN_CD": _EXCHANGE,
    }


def parse_placed(body: Mapping[str, Any], *, tr_id: str | None) -> PlacedOrder:
    """Read ``output`` of order-cash / order-rvsecncl.

    The spec lists lowercase keys for order-rvsecncl while the portal example shows
    UPPERCASE (protocol doc §4.2, [CONFLICT]), so keys are matched case-insensitively.

    Raises:
        BrokerAPIError: KIS reported success without an order number.
    """
    output = first_object(get_ci(body, "output"))
    order_id = str(get_ci(output, "ODNO") or "").strip()
    if not order_id:
        raise BrokerAPIError("KIS accepted the order but returned no ODNO", tr_id=tr_id)
    branch = str(get_ci(output, "KRX_FWDG_ORD_ORGNO") or "").strip()
    tmd = get_ci(output, "ORD_TMD")
    return PlacedOrder(
        order_id=order_id,
        branch_no=branch,
        ordered_at=kis_datetime(None, str(tmd)) if tmd else None,
    )


@dataclass(frozen=True, slots=True)
class ModifyArgs:
    """Validated arguments of a modification (None = keep / not given)."""

    qty: int | None
    price: Decimal | None
    order_type: OrderType | None


def validate_modify(
    *,
    qty: object,
    price: object,
    order_type: object,
    symbol: str | None = None,
) -> ModifyArgs:
    """Check modification arguments before any request.

    Raises:
        InvalidOrderError: nothing to change, qty not an int > 0, a price off the tick grid
            (or not positive), a price for a market-type order, or an unknown order type.
    """
    if qty is None and price is None and order_type is None:
        raise InvalidOrderError("modify_order needs qty, price or order_type")
    parsed_qty = None if qty is None else check_qty(qty)
    parsed_type = None if order_type is None else OrderType.parse(order_type)
    parsed_price: Decimal | None = None
    if price is not None:
        if parsed_type is not None and not parsed_type.requires_price:
            if coerce_price(price) != 0:
                raise InvalidOrderError(f"a {parsed_type.name} order takes no price")
        else:
            parsed_price = check_limit_price(price, symbol=symbol)
    elif parsed_type is not None and parsed_type.requires_price:
        raise InvalidOrderError(f"changing to a {parsed_type.name} order needs a price")
    return ModifyArgs(qty=parsed_qty, price=parsed_price, order_type=parsed_type)


def _rvsecncl_base(
    config: KISConfig, *, order_id: str, branch_no: str, order_type: OrderType
) -> dict[str, str]:
    return {
        "CANO": config.cano,
        "ACNT_PRDT_CD": config.product_code,
        "KRX_FWDG_ORD_ORGNO": branch_no,
        "ORGN_ODNO": order_id,
        "ORD_DVSN": order_type.value,
    }


def cancel_body(
    config: KISConfig, *, order_id: str, branch_no: str, order_type: OrderType | None
) -> dict[str, str]:
    """The order-rvsecncl body that cancels all remaining quantity."""
    body = _rvsecncl_base(
        config, order_id=order_id, branch_no=branch_no, order_type=order_type or OrderType.LIMIT
    )
    body.update(
        {
            "RVSE_CNCL_DVSN_CD": _CANCEL,
            "ORD_QTY": "0",
            "ORD_UNPR": "0",
            "QTY_ALL_ORD_YN": "Y",
            "EXCG_ID_DVSN_CD": _EXCHANGE,
        }
    )
    return body


def modify_body(
    config: KISConfig,
    *,
    order_id: str,
    branch_no: str,
    order_type: OrderType,
    qty: int | None,
    price: Decimal | None,
) -> dict[str, str]:
    """The order-rvsecncl body of a revision.

    ``qty=None`` revises all remaining quantity (``QTY_ALL_ORD_YN=Y``, ``ORD_QTY="0"``);
    market-type orders send ``ORD_UNPR="0"``.
    """
    body = _rvsecncl_base(config, order_id=order_id, branch_no=branch_no, order_type=order_type)
    unit = "0" if price is None or not order_type.requires_price else str(int(price))
    body.update(
        {
            "RVSE_CNCL_DVSN_CD": _REVISE,
            "ORD_QTY": "0" if qty is None else str(qty),
            "ORD_UNPR": unit,
            "QTY_ALL_ORD_YN": "Y" if qty is None else "N",
            "EXCG_ID_DVSN_CD": _EXCHANGE,
        }
    )
    return body
