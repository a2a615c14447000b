"""The simulator's order endpoints: order-cash and order-rvsecncl (protocol doc §4.1-§4.2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kis_async.sim.exchange import SimOrder, SimRejectionError
from kis_async.sim.rest_common import (
    _LIVE_ORDER_OK,
    _PAPER_BUY_OK,
    _PAPER_CANCEL_OK,
    _PAPER_MODIFY_OK,
    _PAPER_SELL_OK,
    RestBase,
    _int,
    _json,
    _ok,
)
from kis_async.sim.rest_routes import TR_TABLE
from kis_async.sim.venues import KRX, NXT, SOR

__all__ = ["OrdersMixin"]


class OrdersMixin(RestBase):
    """Order placement, revise and cancel endpoints of :class:`kis_async.sim.rest.RestApi`."""

    async def _order_fields(self, request: Request) -> dict[str, str]:
        body = await self._json_body(request)
        # Field names are documented UPPERCASE (accepted in any case); values are strings
        # (protocol doc §3.1), as KIS checks them: anything else is refused.
        for key, value in body.items():
            if not isinstance(value, str):
                raise self._fail("bad_field_type", detail=str(key).upper())
        return {str(k).upper(): v.strip() for k, v in body.items()}

    def _require(self, fields: Mapping[str, str], *names: str) -> None:
        for name in names:
            if name not in fields:
                # The simulator's choice of code for a missing body field.
                raise self._fail("missing_field", detail=name)

    def _check_exchange(self, fields: Mapping[str, str]) -> str:
        """The venue of an order body; blank is KRX (KIS's default, protocol doc §4.1)."""
        venue = fields.get("EXCG_ID_DVSN_CD", "").upper()
        allowed = ("", KRX) if self.options.is_paper else ("", KRX, NXT, SOR)
        if venue not in allowed:
            raise self._reject("bad_exchange")
        return venue or KRX

    async def _order_cash(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        fields = await self._order_fields(request)
        self._require(fields, "CANO", "ACNT_PRDT_CD", "PDNO", "ORD_DVSN", "ORD_QTY", "ORD_UNPR")
        self._check_account(fields)
        venue = self._check_exchange(fields)
        _, action = TR_TABLE["/trading/order-cash"][tr_id]
        side = "02" if action == "buy" else "01"
        qty = _int(fields["ORD_QTY"])
        price = _int(fields["ORD_UNPR"] or "0")
        stop = _int(fields.get("CNDT_PRIC", "") or "0")
        if qty is None:
            raise self._reject("bad_qty")
        if price is None:
            raise self._reject("off_tick")
        if stop is None:
            raise self._reject("bad_stop_price")
        try:
            order = self.exchange.place_order(
                symbol=fields["PDNO"], side=side, qty=qty, order_type=fields["ORD_DVSN"],
                price=price, exchange=venue, stop_price=stop,
            )  # fmt: skip
        except SimRejectionError as exc:
            raise self._reject(exc.reason) from None
        self.stats.orders_received += 1
        if self.options.is_paper:
            code = _PAPER_BUY_OK if side == "02" else _PAPER_SELL_OK
        else:
            code = _LIVE_ORDER_OK
        return _json(self._order_output(code, order), tr_id=tr_id), True

    def _order_output(self, code: tuple[str, str], order: SimOrder) -> dict[str, Any]:
        # Order responses carry UPPERCASE keys (protocol doc §4.1; §4.2 is a [CONFLICT] between
        # the spec's lowercase and the portal example's uppercase: we send uppercase). ODNO is
        # sent zero-padded to 10 digits in both modes.
        output = {
            "KRX_FWDG_ORD_ORGNO": order.branch_no,
            "ODNO": order.order_id,
            "ORD_TMD": order.created_at.strftime("%H%M%S"),
        }
        return _ok(code) | {"output": output}

    async def _rvsecncl(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        fields = await self._order_fields(request)
        self._require(
            fields, "CANO", "ACNT_PRDT_CD", "KRX_FWDG_ORD_ORGNO", "ORGN_ODNO", "ORD_DVSN",
            "RVSE_CNCL_DVSN_CD", "ORD_QTY", "ORD_UNPR", "QTY_ALL_ORD_YN",
        )  # fmt: skip
        self._check_account(fields)
        venue = self._check_exchange(fields)
        original_id = fields["ORGN_ODNO"].zfill(10)
        try:
            original = self.exchange.order(original_id)
        except KeyError:
            raise self._reject("nothing_to_cancel") from None
        if fields["KRX_FWDG_ORD_ORGNO"].zfill(5) != original.branch_no:
            raise self._reject("nothing_to_cancel")
        # The revise/cancel names the venue the original was placed with. For SOR orders KIS
        # has no text (protocol doc §13 [UNCERTAIN]): SOR (kis-trader's choice) and the
        # routed venue are both accepted; any other mismatch is refused.
        if venue not in (original.placed_on, original.venue):
            raise self._reject("wrong_venue")
        whole = fields["QTY_ALL_ORD_YN"].upper() == "Y"
        qty = None if whole else _int(fields["ORD_QTY"])
        if not whole and (qty is None or qty <= 0):
            raise self._reject("bad_qty")
        kind = fields["RVSE_CNCL_DVSN_CD"]
        try:
            if kind == "02":
                result = self.exchange.cancel_order(original_id, qty=qty)
                self.stats.cancels_received += 1
                code = _PAPER_CANCEL_OK if self.options.is_paper else _LIVE_ORDER_OK
            elif kind == "01":
                price = _int(fields["ORD_UNPR"] or "0")
                if price is None:
                    raise self._reject("off_tick")
                stop = _int(fields.get("CNDT_PRIC", "") or "0")
                if stop is None:
                    raise self._reject("bad_stop_price")
                result = self.exchange.modify_order(
                    original_id, qty=qty, order_type=fields["ORD_DVSN"], price=price,
                    stop_price=stop,
                )  # fmt: skip
                self.stats.modifies_received += 1
                code = _PAPER_MODIFY_OK if self.options.is_paper else _LIVE_ORDER_OK
            else:
                raise self._reject("bad_order_type")
        except SimRejectionError as exc:
            raise self._reject(exc.reason) from None
        return _json(self._order_output(code, result), tr_id=tr_id), True
