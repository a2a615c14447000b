"""The ledger and book consistency checks behind :meth:`SimExchange.check_invariants`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from kis_async.models.common import tick_size
from kis_async.sim.records import Fill, Holding, Instrument, SimOrder
from kis_async.sim.venues import KRX, NXT

__all__ = ["Ledger", "ledger_problems"]


class Ledger(Protocol):
    """What the checks read of a :class:`~kis_async.sim.exchange.SimExchange`."""

    starting_cash: int
    cash: int
    starting_holdings: dict[str, int]

    @property
    def symbols(self) -> list[str]: ...  # noqa: D102
    @property
    def fills(self) -> list[Fill]: ...  # noqa: D102
    @property
    def holdings(self) -> Mapping[str, Holding]: ...  # noqa: D102
    @property
    def orders(self) -> list[SimOrder]: ...  # noqa: D102
    @property
    def reserved_cash(self) -> int: ...  # noqa: D102
    @property
    def orderable_cash(self) -> int: ...  # noqa: D102
    def instrument(self, symbol: str) -> Instrument: ...  # noqa: D102
    def orderable_qty(self, symbol: str) -> int: ...  # noqa: D102


def ledger_problems(ex: Ledger) -> list[str]:
    """Every disagreement between cash, holdings, orders, fills and books (see
    :meth:`SimExchange.check_invariants`); empty when the exchange is consistent.
    """
    holdings = ex.holdings
    instruments = [ex.instrument(code) for code in ex.symbols]
    problems: list[str] = []
    bought: dict[str, int] = {}
    sold: dict[str, int] = {}
    cash = ex.starting_cash
    per_order: dict[str, tuple[int, int]] = {}
    for f in ex.fills:
        inst = ex.instrument(f.symbol)
        if f.price % tick_size(f.price) or not inst.lower_limit <= f.price <= inst.upper_limit:
            problems.append(f"fill {f.order_id} at {f.price} off the grid or band")
        if f.side == "02":
            cash -= f.qty * f.price
            bought[f.symbol] = bought.get(f.symbol, 0) + f.qty
        else:
            cash += f.qty * f.price
            sold[f.symbol] = sold.get(f.symbol, 0) + f.qty
        q, a = per_order.get(f.order_id, (0, 0))
        per_order[f.order_id] = (q + f.qty, a + f.qty * f.price)
    if cash != ex.cash:
        problems.append(f"cash {ex.cash} != deposit + sells - buys = {cash}")
    if ex.cash < 0:
        problems.append("cash is negative")
    if ex.orderable_cash < 0:
        problems.append(f"open buys reserve {ex.reserved_cash} > cash {ex.cash}")
    for code in set(bought) | set(sold) | set(holdings) | set(ex.starting_holdings):
        expected = ex.starting_holdings.get(code, 0) + bought.get(code, 0)
        expected -= sold.get(code, 0)
        held = holdings.get(code)
        qty = held.qty if held else 0
        if qty != expected:
            problems.append(f"{code}: holding {qty} != start + buys - sells = {expected}")
        if held is not None and (
            held.qty < 0 or held.cost < 0 or (held.qty == 0) != (held.cost == 0)
        ):
            problems.append(f"{code}: holding qty {held.qty} / cost {held.cost} inconsistent")
        if ex.orderable_qty(code) < 0:
            problems.append(f"{code}: open sells exceed the holding")
    for order in ex.orders:
        total = order.filled_qty + order.remaining_qty + order.cancelled_qty
        total += order.rejected_qty
        if order.kind == "cancel":
            total = order.cancelled_qty
        if total != order.qty or min(order.filled_qty, order.remaining_qty) < 0:
            problems.append(f"order {order.order_id}: quantities do not add up to {order.qty}")
        fq, fa = per_order.get(order.order_id, (0, 0))
        if (fq, fa) != (order.filled_qty, order.filled_amount):
            problems.append(f"order {order.order_id}: fills disagree with the ledger")
    for inst in instruments:
        for venue in (KRX, NXT):
            ask_levels, bid_levels = inst.venue_book(venue)
            asks = [lv.price for lv in ask_levels]
            bids = [lv.price for lv in bid_levels]
            if asks != sorted(asks) or bids != sorted(bids, reverse=True):
                problems.append(f"{inst.symbol}: {venue} book levels out of order")
            if asks and bids and asks[0] <= bids[0]:
                problems.append(f"{inst.symbol}: {venue} book crossed")
        if not inst.lower_limit <= inst.price <= inst.upper_limit:
            problems.append(f"{inst.symbol}: price outside the daily band")
    return problems
