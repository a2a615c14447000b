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
answer is applied can arrive "late". When the order is then complete, the cap recognises it.
When the order is still partly open (or was partly filled and then cancelled), the notice
alone cannot tell: KIS's REST rows carry only cumulative quantities, not per-fill ids, so a
late notice of a fill the snapshot already counted looks exactly like a new fill.

That case is closed by *verification*. A snapshot that reports ``0 < F < order quantity``
opens a verification window for the order (:meth:`FillLedger.watch`; the manager uses
``StreamOptions.gap_fill_verify_window``). A fill notice for a watched order is not accounted
on arrival: the manager fetches today's orders again (a fetch that starts after the notice
arrived, so the REST row already includes the notice's fill) and accounts the notice with
:meth:`FillLedger.verified_notice`, which delivers ``min(q, F_now - delivered)``. A late
duplicate finds ``F_now == delivered`` and delivers 0. A genuinely new fill finds its
quantity in ``F_now`` and is delivered. Afterwards the reconcile-only offset is re-based to
``delivered - notices seen``, so notices after the window are accounted correctly.

When verification finds ``F_now`` above what was delivered (fills whose notices are still on
the way), the manager extends that order's window, so those notices are verified too. A
verified notice never takes the delivered total above the ``F_now`` that verified it. Under
the assumptions below, once every notice of the order has arrived, the delivered total
equals the true filled quantity.
Two in-flight notices can be answered by one fetch. The split of shares between the two
events can then differ from the actual fills, but the per-order sum is exact.

Why a window instead of verifying every fill notice: a duplicate can only come from a notice
that was in flight when a snapshot was applied, so it arrives within network latency
(milliseconds) of that snapshot. Verifying every notice would cost one REST call per fill
and would delay every notice. A window of a few seconds covers the latency with a wide margin.

Residual assumptions, documented in the README:

* REST shows a fill by the time its notice has arrived. If KIS's order inquiry lagged behind
  its notices, verification would withhold a genuine fill. So whenever verification
  withholds quantity, the manager re-reads today's orders once more, half a window later,
  and applies the result like a gap-fill snapshot (windows included). That delivers a fill
  held back by a short lag as a ``reconcile`` event. A lag longer than that is covered by
  the next reconnect's gap-fill.
* A notice that arrives after the window closes is accounted without verification. This is
  the old behaviour; it is exact unless such a notice is a duplicate of a snapshot-counted
  fill that was delayed longer than the window.
* If the verification fetch fails, the notice is accounted without verification (the old
  behaviour): a possible duplicate is preferred to a possible loss.

The ledger is pure accounting with no I/O and no clock of its own: callers pass ``now`` in.
"""

from __future__ import annotations

from kis_async.validation import normalize_order_id

__all__ = ["FillLedger", "normalize_order_id"]


class FillLedger:
    """Per-order cumulative fill accounting (see the module docstring)."""

    __slots__ = ("_delivered", "_offset", "_order_qty", "_seen", "_watch")

    def __init__(self) -> None:
        self._delivered: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self._offset: dict[str, int] = {}
        self._order_qty: dict[str, int] = {}
        self._watch: dict[str, float] = {}

    def delivered(self, order_id: str) -> int:
        """The cumulative filled quantity delivered so far for ``order_id``."""
        return self._delivered.get(normalize_order_id(order_id), 0)

    def delivered_map(self) -> dict[str, int]:
        """A copy of the delivered cumulative quantity per (normalized) order id."""
        return dict(self._delivered)

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

    def verified_notice(
        self, order_id: str, qty: int, filled_now: int, order_qty: int | None
    ) -> int:
        """Account a fill notice checked against a REST cumulative fill ``filled_now``.

        ``filled_now`` must come from a fetch that started after the notice arrived. Returns
        ``min(qty, filled_now - delivered)`` (0: a duplicate of what was delivered already).
        """
        if qty <= 0:
            return 0
        oid = normalize_order_id(order_id)
        if order_qty:
            self._order_qty[oid] = order_qty
        seen = self._seen.get(oid, 0) + qty
        self._seen[oid] = seen
        delivered = self._delivered.get(oid, 0)
        new = max(0, min(qty, filled_now - delivered))
        delivered += new
        if new:
            self._delivered[oid] = delivered
        # What this notice did not cover stays "reported by REST only" for later notices.
        self._offset[oid] = max(0, delivered - seen)
        return new

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

    # -- verification windows (times are the caller's clock) -------------------------------

    def watch(self, order_id: str, until: float) -> None:
        """Verify fill notices of ``order_id`` until ``until`` (the later deadline wins)."""
        oid = normalize_order_id(order_id)
        if until > self._watch.get(oid, until - 1.0):
            self._watch[oid] = until

    def needs_verification(self, order_id: str, now: float) -> bool:
        """True while ``order_id`` is inside a verification window at ``now``."""
        oid = normalize_order_id(order_id)
        until = self._watch.get(oid)
        if until is None:
            return False
        if now < until:
            return True
        del self._watch[oid]
        return False

    def watching(self, now: float) -> int:
        """How many orders are inside a verification window at ``now`` (expired ones pruned)."""
        expired = [oid for oid, until in self._watch.items() if until <= now]
        for oid in expired:
            del self._watch[oid]
        return len(self._watch)
