"""The simulator's account inquiries: daily fills, revisable orders, balance, orderable
amount, and the holiday calendar (protocol doc §4.3-§4.6, §11.1)."""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from kis_async.sim.exchange import ORDER_TYPE_NAMES, SimOrder
from kis_async.sim.quotes import holiday_rows
from kis_async.sim.quotes import number_text as _s
from kis_async.sim.rest_common import RestBase, _ctx, _int, _json
from kis_async.sim.venues import KRX, NXT, SOR

__all__ = ["AccountMixin"]


class AccountMixin(RestBase):
    """Account inquiry and holiday endpoints of :class:`kis_async.sim.rest.RestApi`."""

    def _page(
        self, request: Request, rows: list[dict[str, Any]], key: str, size: int
    ) -> tuple[list[dict[str, Any]], str, str]:
        """One page of ``rows``: (page, response tr_cont, next ctx_area_nk100)."""
        params = self._params(request)
        continuing = request.headers.get("tr_cont", "").upper() == "N"
        after = params.get("CTX_AREA_NK100", "").strip() if continuing else ""
        start = 0
        if after:
            keys = [str(r[key]) for r in rows]
            start = keys.index(after) + 1 if after in keys else len(rows)
        page = rows[start : start + size]
        more = start + size < len(rows)
        tr_cont = ("M" if start > 0 else "F") if more else "D"
        next_key = str(page[-1][key]) if page and more else ""
        return page, tr_cont, next_key

    def _order_row(self, order: SimOrder) -> dict[str, Any]:
        inst = self.exchange.instrument(order.symbol)
        cond = "IOC" if order.order_type in ("11", "13", "15") else "없음"
        if order.order_type in ("12", "14", "16"):
            cond = "FOK"
        return {
            "ord_dt": order.created_at.strftime("%Y%m%d"),
            "ord_gno_brno": order.branch_no,
            "odno": order.order_id,
            "orgn_odno": order.original_order_id,
            "ord_dvsn_name": ORDER_TYPE_NAMES.get(order.order_type, ""),
            "sll_buy_dvsn_cd": order.side,
            "sll_buy_dvsn_cd_name": "매수" if order.is_buy else "매도",
            "pdno": order.symbol,
            "prdt_name": inst.name,
            "ord_qty": str(order.qty),
            "ord_unpr": str(order.price),
            "ord_tmd": order.created_at.strftime("%H%M%S"),
            "tot_ccld_qty": str(order.filled_qty),
            "avg_prvs": str(round(order.avg_price)),
            "cncl_yn": "Y" if order.kind == "cancel" else "N",
            "tot_ccld_amt": str(order.filled_amount),
            "loan_dt": "",
            "ordr_empno": "",
            "ord_dvsn_cd": order.order_type,
            # The spec spells it cncl_cfrm_qty, the official sample (and kis-trader) read
            # cnc_cfrm_qty [CONFLICT]: both are sent.
            "cncl_cfrm_qty": str(order.cancelled_qty),
            "cnc_cfrm_qty": str(order.cancelled_qty),
            "rmn_qty": str(order.remaining_qty),
            "rjct_qty": str(order.rejected_qty),
            "ccld_cndt_name": cond,
            "inqr_ip_addr": "",
            "cpbc_ordp_ord_rcit_dvsn_cd": "",
            "cpbc_ordp_infm_mthd_dvsn_cd": "",
            "infm_tmd": "",
            "ctac_tlno": "",
            "prdt_type_cd": "300",
            "excg_dvsn_cd": "02",
            "cpbc_ordp_mtrl_dvsn_cd": "",
            "ord_orgno": order.branch_no,
            "rsvn_ord_end_dt": "",
            # Spelled as in the spec and OTA (kis-trader reads it lowercase [CONFLICT]); SOR
            # orders report SOR, the venue they were placed with (§13 [UNCERTAIN]).
            "excg_id_dvsn_Cd": order.placed_on,
            "stpm_cndt_pric": str(order.stop_price),
            "stpm_efct_occr_dtmd": _stop_stamp(order),
        }

    async def _daily_ccld(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        params = self._params(request)
        self._check_account(params)
        today = self.clock.now().strftime("%Y%m%d")
        start = params.get("INQR_STRT_DT") or today
        end = params.get("INQR_END_DT") or today
        side = params.get("SLL_BUY_DVSN_CD", "00") or "00"
        ccld = params.get("CCLD_DVSN", "00") or "00"
        symbol = params.get("PDNO", "").strip()
        odno = params.get("ODNO", "").strip()
        # KRX / NXT / SOR filter by the venue placed with; ALL or blank: every order.
        venue = params.get("EXCG_ID_DVSN_CD", "").strip().upper()
        selected: list[SimOrder] = []
        for order in self.exchange.orders:
            day = order.created_at.strftime("%Y%m%d")
            if not start <= day <= end:
                continue
            if side in ("01", "02") and order.side != side:
                continue
            if symbol and order.symbol != symbol:
                continue
            if odno and order.order_id != odno.zfill(10):
                continue
            if venue in (KRX, NXT, SOR) and order.placed_on != venue:
                continue
            if ccld == "01" and order.filled_qty == 0:
                continue
            if ccld == "02" and order.remaining_qty == 0:
                continue
            selected.append(order)
        if params.get("INQR_DVSN", "00") != "01":
            selected.reverse()
        rows = [self._order_row(o) for o in selected]
        page, tr_cont, next_key = self._page(
            request, rows, "odno", self.options.daily_ccld_page_size
        )
        filled_amt = sum(o.filled_amount for o in selected)
        filled_qty = sum(o.filled_qty for o in selected)
        summary = {
            "tot_ord_qty": str(sum(o.qty for o in selected)),
            "tot_ccld_qty": str(filled_qty),
            "tot_ccld_amt": str(filled_amt),
            "prsm_tlex_smtl": "0",
            "pchs_avg_pric": _s(filled_amt / filled_qty if filled_qty else 0.0),
        }
        account = self.options.account_id
        fk = f"{account[:8]}^{account[8:]}^{start}^{end}^{side}^{ccld}^"
        body = self._query_ok() | {
            "ctx_area_fk100": _ctx(fk),
            "ctx_area_nk100": _ctx(next_key),
            "output1": page,
            "output2": summary,
        }
        return _json(body, tr_id=tr_id, tr_cont=tr_cont), False

    async def _psbl_rvsecncl(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        params = self._params(request)
        self._check_account(params)
        side = params.get("INQR_DVSN_2", "0")
        orders = [
            o for o in self.exchange.open_orders
            if side == "0" or (side == "1" and not o.is_buy) or (side == "2" and o.is_buy)
        ]  # fmt: skip
        if params.get("INQR_DVSN_1", "0") == "1":
            orders.sort(key=lambda o: (o.symbol, o.order_id))
        rows = []
        for order in orders:
            inst = self.exchange.instrument(order.symbol)
            rows.append(
                {
                    "ord_gno_brno": order.branch_no,
                    "odno": order.order_id,
                    "orgn_odno": order.original_order_id,
                    "ord_dvsn_name": ORDER_TYPE_NAMES.get(order.order_type, ""),
                    "pdno": order.symbol,
                    "prdt_name": inst.name,
                    "rvse_cncl_dvsn_name": "정정" if order.kind == "modify" else "",
                    "ord_qty": str(order.qty),
                    "ord_unpr": str(order.price),
                    "ord_tmd": order.created_at.strftime("%H%M%S"),
                    "tot_ccld_qty": str(order.filled_qty),
                    "tot_ccld_amt": str(order.filled_amount),
                    "psbl_qty": str(order.remaining_qty),
                    "sll_buy_dvsn_cd": order.side,
                    "ord_dvsn_cd": order.order_type,
                    "mgco_aptm_odno": "",
                    "excg_dvsn_cd": "02",
                    "excg_id_dvsn_cd": order.placed_on,
                    "excg_id_dvsn_name": _VENUE_NAMES[order.placed_on],
                    "stpm_cndt_pric": str(order.stop_price),
                    "stpm_efct_occr_yn": "Y" if order.stop_price and order.armed else "N",
                }
            )
        page, tr_cont, next_key = self._page(request, rows, "odno", self.options.rvsecncl_page_size)
        fk = f"{self.options.account_id[:8]}^{self.options.account_id[8:]}^{side}^"
        body = self._query_ok() | {
            "ctx_area_fk100": _ctx(fk),
            "ctx_area_nk100": _ctx(next_key),
            "output": page,
        }
        return _json(body, tr_id=tr_id, tr_cont=tr_cont), False

    async def _balance(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        params = self._params(request)
        self._check_account(params)
        rows: list[dict[str, Any]] = []
        scts = cost_total = 0
        for code in sorted(self.exchange.holdings):
            held = self.exchange.holdings[code]
            if held.qty == 0 and held.bought_today == 0 and held.sold_today == 0:
                continue
            inst = self.exchange.instrument(code)
            evlu = held.qty * inst.price
            pnl = evlu - held.cost
            scts += evlu
            cost_total += held.cost
            rows.append(
                {
                    "pdno": code,
                    "prdt_name": inst.name,
                    "trad_dvsn_name": "현금",
                    "bfdy_buy_qty": "0",
                    "bfdy_sll_qty": "0",
                    "thdt_buyqty": str(held.bought_today),
                    "thdt_sll_qty": str(held.sold_today),
                    "hldg_qty": str(held.qty),
                    "ord_psbl_qty": str(self.exchange.orderable_qty(code)),
                    "pchs_avg_pric": f"{held.avg_price:.4f}",
                    "pchs_amt": str(held.cost),
                    "prpr": str(inst.price),
                    "evlu_amt": str(evlu),
                    "evlu_pfls_amt": str(pnl),
                    "evlu_pfls_rt": _s(pnl / held.cost * 100 if held.cost else 0.0),
                    "evlu_erng_rt": "0.00000000",
                    "loan_dt": "",
                    "loan_amt": "0",
                    "stln_slng_chgs": "0",
                    "expd_dt": "",
                    "fltt_rt": _s(inst.change_rate),
                    "bfdy_cprs_icdc": str(inst.change),
                    "item_mgna_rt_name": "",
                    "grta_rt_name": "",
                    "sbst_pric": "0",
                    "stck_loan_unpr": "0",
                }
            )
        page, tr_cont, next_key = self._page(request, rows, "pdno", self.options.balance_page_size)
        fills = self.exchange.fills
        bought = sum(f.qty * f.price for f in fills if f.side == "02")
        sold = sum(f.qty * f.price for f in fills if f.side == "01")
        cash = self.exchange.cash
        # KIS settles D+2 (protocol doc §4.5): today's trades leave the deposit (dnca_tot_amt)
        # as it was and show in the D+1 / D+2 settlement amounts. The simulated account lives
        # within one trading day, so every fill is today's.
        summary = {
            "dnca_tot_amt": str(cash + bought - sold),
            "nxdy_excc_amt": str(cash),
            "prvs_rcdl_excc_amt": str(cash),
            "cma_evlu_amt": "0",
            "bfdy_buy_amt": "0",
            "thdt_buy_amt": str(bought),
            "nxdy_auto_rdpt_amt": "0",
            "bfdy_sll_amt": "0",
            "thdt_sll_amt": str(sold),
            "d2_auto_rdpt_amt": "0",
            "bfdy_tlex_amt": "0",
            "thdt_tlex_amt": "0",
            "tot_loan_amt": "0",
            "scts_evlu_amt": str(scts),
            "tot_evlu_amt": str(cash + scts),
            "nass_amt": str(cash + scts),
            "fncg_gld_auto_rdpt_yn": "N",
            "pchs_amt_smtl_amt": str(cost_total),
            "evlu_amt_smtl_amt": str(scts),
            "evlu_pfls_smtl_amt": str(scts - cost_total),
            "tot_stln_slng_chgs": "0",
            "bfdy_tot_asst_evlu_amt": str(self.exchange.starting_cash),
            "asst_icdc_amt": str(cash + scts - self.exchange.starting_cash),
            "asst_icdc_erng_rt": "0.00000000",
        }
        fk = f"{self.options.account_id[:8]}^{self.options.account_id[8:]}^N^N^02^01^N^"
        body = self._query_ok() | {
            "ctx_area_fk100": _ctx(fk),
            "ctx_area_nk100": _ctx(next_key),
            "output1": page,
            "output2": [summary],
        }
        return _json(body, tr_id=tr_id, tr_cont=tr_cont), False

    async def _holidays(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        """chk-holiday: one row per calendar day from ``BASS_DT`` (protocol doc §11.1), from
        the simulator's deterministic calendar, in one page (``tr_cont "D"``)."""
        params = self._params(request)
        text = params.get("BASS_DT", "").strip()
        try:
            if len(text) != 8 or not text.isdigit():
                raise ValueError(text)
            base = date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise self._fail("bad_quote_input") from None
        self.stats.holiday_requests += 1
        rows = holiday_rows(self.exchange.calendar, base)
        body = self._query_ok() | {"ctx_area_nk": "", "ctx_area_fk": "", "output": rows}
        return _json(body, tr_id=tr_id, tr_cont="D"), False

    async def _psbl_order(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        params = self._params(request)
        self._check_account(params)
        symbol = params.get("PDNO", "").strip()
        if not self.exchange.has_symbol(symbol):
            raise self._reject("unknown_symbol")
        inst = self.exchange.instrument(symbol)
        price = _int(params.get("ORD_UNPR", "") or "0") or 0
        # An empty or zero ORD_UNPR means "at the current price" (the simulator's choice; the
        # doc only says it may be empty).
        calc = price if price > 0 else inst.price
        cash = self.exchange.orderable_cash
        qty = cash // calc if calc > 0 else 0
        output = {
            "ord_psbl_cash": str(cash),
            "ord_psbl_sbst": "0",
            "ruse_psbl_amt": "0",
            "fund_rpch_chgs": "0",
            "psbl_qty_calc_unpr": str(calc),
            "nrcvb_buy_amt": str(qty * calc),
            "nrcvb_buy_qty": str(qty),
            "max_buy_amt": str(qty * calc),
            "max_buy_qty": str(qty),
            "cma_evlu_amt": "0",
            "ovrs_re_use_amt_wcrc": "0",
            "ord_psbl_frcr_amt_wcrc": "0",
        }
        return _json(self._query_ok() | {"output": output}, tr_id=tr_id), False


_VENUE_NAMES: Final = {KRX: "한국거래소", NXT: "넥스트레이드", SOR: "SOR"}


def _stop_stamp(order: SimOrder) -> str:
    # When the stop triggered is not tracked; the order time stands in once it has.
    if order.stop_price and order.armed:
        return order.created_at.strftime("%Y%m%d%H%M%S")
    return ""
