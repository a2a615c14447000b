"""Order rules without state: price-term checks, the matching limit of an arriving order,
which venue takes which order type, stop triggers and tick steps.
"""

from __future__ import annotations

from kis_async.models import Exchange, OrderType
from kis_async.models.common import tick_size
from kis_async.sim.records import Instrument, SimOrder, SimRejectionError
from kis_async.sim.venues import (
    BEST_TYPES,
    CLOSE_TYPES,
    KRX,
    MID_TYPES,
    OPTIONAL_PRICE_TYPES,
    PRICED_TYPES,
    PRIORITY_TYPES,
    UNPRICED_TYPES,
)

__all__ = ["check_terms", "order_limit"]


def check_terms(order_type: str, price: int, stop_price: int = 0) -> None:
    """Raise :class:`SimRejectionError` when the price terms do not suit ``order_type``."""
    if order_type in UNPRICED_TYPES:
        if price != 0:
            raise SimRejectionError("market_with_price")
    elif order_type in PRICED_TYPES or order_type in OPTIONAL_PRICE_TYPES:
        needed = order_type in PRICED_TYPES
        if (needed or price) and (price <= 0 or price % tick_size(price)):
            raise SimRejectionError("off_tick")
    else:
        raise SimRejectionError("bad_order_type")
    if order_type == "22" and (stop_price <= 0 or stop_price % tick_size(stop_price)):
        raise SimRejectionError("bad_stop_price")


def order_limit(inst: Instrument, order: SimOrder) -> int | None:
    """The matching limit of an arriving order (None = market)."""
    asks, bids = inst.venue_book(order.venue)
    best_ask = asks[0].price if asks else inst.upper_limit
    best_bid = bids[0].price if bids else inst.lower_limit
    code = order.order_type
    if code in BEST_TYPES:  # 최유리: the best opposite quote
        return best_ask if order.is_buy else best_bid
    if code in PRIORITY_TYPES:  # 최우선: the best same-side quote
        return best_bid if order.is_buy else best_ask
    if code in CLOSE_TYPES:  # closing-price sessions trade at the last price
        return inst.price if order.venue == KRX else inst.nxt_price
    if code in MID_TYPES:
        # The midpoint, kept on the grid on the passive side (a one-tick spread has no
        # on-grid midpoint); a given price caps it.
        mid = (best_ask + best_bid) // 2
        mid -= mid % tick_size(mid) if order.is_buy else -((-mid) % tick_size(mid))
        if order.price:
            mid = min(mid, order.price) if order.is_buy else max(mid, order.price)
        return mid
    if code in PRICED_TYPES:
        return order.price
    return None


def _venue_takes(exchange: str, order_type: str) -> bool:
    try:
        return OrderType(order_type).allowed_on(Exchange(exchange))
    except ValueError:
        return False


def _stop_triggered(order: SimOrder, last: int) -> bool:
    """A buy stop arms when the market trades at or above the stop, a sell stop at or below."""
    return last >= order.stop_price if order.is_buy else last <= order.stop_price


def _tick_up(price: int) -> int:
    return price + tick_size(price)


def _tick_down(price: int) -> int:
    down = price - tick_size(price - 1)
    return down - down % tick_size(down)
