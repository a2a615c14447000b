"""Exactly-once accounting of filled quantity between notices and gap-fill.

Fills reach the consumer two ways: execution notices over the socket and, after a reconnect
(or when an execution stream starts), reconciliation against today's orders over REST. The
ledger tracks, per order, the cumulative filled quantity already delivered, so each filled
quantity of each order is delivered exactly once:

* a notice of ``q`` shares is delivered for the part not yet covered; the notice's running
  total is ``notices seen + the quantity only reconciliation reported`` (fills that happened
  while no notice could arrive), capped at the order quantity;
* reconciliation reporting a cumulative ``F`` delivers ``F - delivered`` when positive.

The gap-fill runs after the execution registration is acknowledged again and applies its
result after every notice received meanwhile, so only a notice still in flight when the REST
answer is applied can arrive "late". Such a notice is recognised when the order is then
complete (the cap). The one window we cannot close without per-fill ids (KIS's REST rows
carry only cumulative quantities): a fill between the REST snapshot and its notice's
arrival, on an order that is still partly open.
"""

from __future__ import annotations

__all__ = ["FillLedger", "normalize_order_id"]


def normalize_order_id(order_id: str) -> str:
    """KIS pads ODNO with zeros in some places and not in others; compare without them."""
    text = order_id.strip()
    stripped = text.lstrip("0")
    return stripped or ("0" if text else "")


class FillLedger:
    """Per-order cumulative fill accounting (see the module docstring)."""

    __slots__ = ("_delivered", "_offset", "_order_qty", "_seen")

    def __init__(self) -> None:
        self._delivered: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self._offset: dict[str, int] = {}
        self._order_qty: dict[str, int] = {}

    def delivered(self, order_id: str) -> int:
        """The cumulative filled quantity delivered so far for ``order_id``."""
        return self._delivered.get(normalize_order_id(order_id), 0)

    def notice(self, order_id: str, qty: int, order_qty: int | None) -> int:
        """Account a fill notice; return the quantity to deliver (0: already delivered)."""
        if qty <= 0:
            return 0
        oid = normalize_order_id(order_id)
        if order_qty:
            self._order_qty[oid] = order_qty
        seen = self._seen.get(oid, 0) + qty
        self._seen[oid] = seen
        total = seen + self._offset.get(oid, 0)
        cap = self._order_qty.get(oid)
        if cap:
            total = min(total, cap)
        delivered = self._delivered.get(oid, 0)
        new = total - delivered
        if new <= 0:
            return 0
        self._delivered[oid] = total
        return min(new, qty)

    def reconcile(self, order_id: str, filled_qty: int, order_qty: int | None) -> int:
        """Account a REST cumulative fill; return the quantity to deliver (0: nothing new)."""
        oid = normalize_order_id(order_id)
        if order_qty:
            self._order_qty[oid] = order_qty
        delivered = self._delivered.get(oid, 0)
        new = filled_qty - delivered
        if new <= 0:
            return 0
        self._delivered[oid] = filled_qty
        self._offset[oid] = max(0, filled_qty - self._seen.get(oid, 0))
        return new
