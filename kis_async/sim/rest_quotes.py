"""The simulator's quotation endpoints: price, orderbook, product/stock info and charts
(protocol doc §4.0, §10; chart bodies in :mod:`kis_async.sim.charts`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from kis_async.models.common import is_valid_symbol
from kis_async.sim.quotes import number_text as _s
from kis_async.sim.quotes import orderbook_outputs, price_output
from kis_async.sim.reference import price_statistics, search_info, stock_info
from kis_async.sim.rest_common import _QUOTE_OK, RestBase, _json, _ok

__all__ = ["QuotesMixin"]


class QuotesMixin(RestBase):
    """Quotation and chart endpoints of :class:`kis_async.sim.rest.RestApi`."""

    def _quote_symbol(self, request: Request) -> tuple[str, str]:
        params = self._params(request)
        symbol = params.get("FID_INPUT_ISCD", "").strip()
        market = params.get("FID_COND_MRKT_DIV_CODE", "J").strip().upper()
        if market not in ("J", "NX", "UN") or not is_valid_symbol(symbol):
            # The simulator's choice of code for malformed quote parameters.
            raise self._fail("bad_quote_input")
        if market != "J" and self.options.is_paper:
            # Paper trading is KRX-only (protocol doc §8); whether the paper server answers
            # NX/UN is [UNCERTAIN] (§9 item 18). The simulator refuses, with its own code.
            raise self._fail("paper_krx_only")
        if not self.exchange.has_symbol(symbol):
            raise self._fail("no_quote_data")
        return symbol, market

    async def _price(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        symbol, market = self._quote_symbol(request)
        inst = self.exchange.instrument(symbol)
        output = price_output(inst, market)
        output |= price_statistics(inst, self.history, int(output["stck_prpr"]))
        return _json(_ok(_QUOTE_OK) | {"output": output}, tr_id=tr_id), False

    def _info_symbol(self, request: Request) -> str:
        params = self._params(request)
        symbol = params.get("PDNO", "").strip()
        product = params.get("PRDT_TYPE_CD", "300").strip()
        if product not in ("300", "301", "302") or not is_valid_symbol(symbol):
            raise self._fail("bad_quote_input")
        if not self.exchange.has_symbol(symbol):
            raise self._fail("no_quote_data")
        return symbol

    async def _search_info(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        """search-info (CTPF1604R): product basic info of a simulated stock."""
        inst = self.exchange.instrument(self._info_symbol(request))
        return _json(self._query_ok() | {"output": search_info(inst)}, tr_id=tr_id), False

    async def _stock_info(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        """search-stock-info (CTPF1002R): stock basic info, NXT eligibility included."""
        inst = self.exchange.instrument(self._info_symbol(request))
        output = stock_info(inst, self.history.today())
        return _json(self._query_ok() | {"output": output}, tr_id=tr_id), False

    # -- charts (protocol doc §10; bodies in kis_async.sim.charts) ----------------------------

    def _price_fields(self, symbol: str) -> dict[str, str]:
        inst = self.exchange.instrument(symbol)
        return {
            "prdy_vrss": str(inst.change),
            "prdy_vrss_sign": inst.sign,
            "prdy_ctrt": _s(inst.change_rate),
        }

    async def _chart(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        symbol, _market = self._quote_symbol(request)  # one history for every market
        body = self.charts.answer(tr_id, symbol, self._params(request))
        return _json(_ok(_QUOTE_OK) | body, tr_id=tr_id), False

    async def _asking_price(self, request: Request, tr_id: str) -> tuple[Response, bool]:
        symbol, market = self._quote_symbol(request)
        out1, out2 = orderbook_outputs(self.exchange, symbol, market, self.clock.now())
        body = _ok(_QUOTE_OK) | {"output1": out1, "output2": out2}
        return _json(body, tr_id=tr_id), False
