"""A rejection from the simulator reads in KIS's Korean and in English."""

from __future__ import annotations

import pytest

from kis_async import KISBroker, Mode, OrderRequest
from kis_async.errors import OrderRejectedError
from kis_async.sim import KISSimulator


@pytest.mark.parametrize("mode", [Mode.PAPER, Mode.LIVE])
async def test_a_real_rejection_reads_in_both_languages(mode: Mode) -> None:
    """Buying far beyond the cash on the simulator: KIS's Korean text plus the English."""
    async with (
        KISSimulator(seed=3, mode=mode, quote_interval=None, rate_limit=False).serve() as sim,
        KISBroker(sim.config()) as broker,
    ):
        price = sim.exchange.price("005930")
        with pytest.raises(OrderRejectedError) as caught:
            await broker.place_order(OrderRequest("005930", "buy", 1_000_000, price=price))
    err = caught.value
    assert err.msg is not None
    assert "주문가능금액" in err.msg
    assert f"[{err.msg_cd}] {err.msg} (order amount exceeds buying power)" in str(err)
