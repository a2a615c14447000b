"""Venues end to end: KRX, NXT and SOR orders through KISBroker against the live simulator,
revise/cancel of orders another client placed, NX/UN quotes and NXT holdings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kis_async import (
    Exchange,
    InvalidOrderError,
    KISBroker,
    Market,
    OrderRequest,
    OrderStatus,
    OrderType,
)
from kis_async.sim import KISSimulator

SYMBOL = "005930"


def _best(sim: KISSimulator, venue: str, symbol: str = SYMBOL) -> tuple[int, int]:
    asks, bids = sim.exchange.book(symbol, venue)
    return asks[0].price, bids[0].price


@pytest.mark.parametrize("exchange", [Exchange.KRX, Exchange.NXT, Exchange.SOR])
async def test_marketable_buy_fills_on_its_venue(
    live_sim: KISSimulator, live_broker: KISBroker, exchange: Exchange
) -> None:
    """A marketable limit buy on each venue fills there; the order row names the venue it was
    placed with and the simulator's ledger the venue it traded on (SOR: the better ask)."""
    krx_ask, _ = _best(live_sim, "KRX")
    nxt_ask, _ = _best(live_sim, "NXT")
    price = max(krx_ask, nxt_ask)
    order_id = await live_broker.place_order(
        OrderRequest(SYMBOL, "buy", 1, price=price, exchange=exchange)
    )
    rows = {o.broker_order_id: o for o in await live_broker.get_orders()}
    assert rows[order_id].exchange is exchange
    assert rows[order_id].status is OrderStatus.FILLED
    traded = live_sim.exchange.order(order_id).venue
    if exchange is Exchange.SOR:
        expected = "NXT" if nxt_ask < krx_ask else "KRX"
        assert traded == expected
    else:
        assert traded == exchange.value
    live_sim.exchange.check_invariants()


async def test_sor_routes_to_the_better_price(
    live_sim: KISSimulator, live_broker: KISBroker
) -> None:
    """Over many market steps, every SOR buy goes where the ask is lower (KRX on ties)."""
    routed: set[str] = set()
    for _ in range(40):
        live_sim.exchange.step()
        krx_ask, _ = _best(live_sim, "KRX")
        nxt_ask, _ = _best(live_sim, "NXT")
        order_id = await live_broker.place_order(
            OrderRequest(SYMBOL, "buy", 1, order_type=OrderType.IOC_BEST, exchange=Exchange.SOR)
        )
        venue = live_sim.exchange.order(order_id).venue
        assert venue == ("NXT" if nxt_ask < krx_ask else "KRX")
        routed.add(venue)
    assert routed == {"KRX", "NXT"}


@pytest.mark.parametrize("exchange", ["NXT", "SOR"])
async def test_cancel_an_order_another_client_placed(
    live_sim: KISSimulator, live_broker: KISBroker, other: Any, exchange: str
) -> None:
    """An NXT or SOR order placed by raw HTTP (as from the KIS app) is cancelled by the SDK
    with its own venue, found from today's orders; the simulator refuses other venues."""
    _, bid = _best(live_sim, "KRX")
    resting = bid - 5 * 100
    placed = await other.buy(SYMBOL, 3, resting, exchange=exchange)
    order_id = placed["output"]["ODNO"]
    assert await live_broker.cancel_order(order_id) is True
    original = live_sim.exchange.order(order_id)
    assert original.remaining_qty == 0
    assert original.cancelled_qty == 3
    rows = {o.broker_order_id: o for o in await live_broker.get_orders()}
    assert rows[order_id].exchange is Exchange(exchange)
    assert rows[order_id].status is OrderStatus.CANCELLED


async def test_wrong_venue_cancel_is_refused_by_the_simulator(
    live_sim: KISSimulator, other: Any
) -> None:
    """The simulator refuses a cancel that names KRX for an order placed on NXT."""
    _, bid = _best(live_sim, "NXT")
    placed = await other.buy(SYMBOL, 1, bid - 500, exchange="NXT")
    order_id = placed["output"]["ODNO"]
    body = {
        "CANO": live_sim.account_id[:8],
        "ACNT_PRDT_CD": live_sim.account_id[8:],
        "KRX_FWDG_ORD_ORGNO": live_sim.exchange.branch_no,
        "ORGN_ODNO": order_id,
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": "0",
        "ORD_UNPR": "0",
        "QTY_ALL_ORD_YN": "Y",
        "EXCG_ID_DVSN_CD": "KRX",
    }
    answer = await other.client.post(
        "/uapi/domestic-stock/v1/trading/order-rvsecncl",
        json=body,
        headers=await other.headers("TTTC0013U"),
    )
    assert answer.json()["rt_cd"] == "1"
    assert live_sim.exchange.order(order_id).remaining_qty == 1


@pytest.mark.parametrize("exchange", ["NXT", "SOR"])
async def test_modify_an_order_another_client_placed(
    live_sim: KISSimulator, live_broker: KISBroker, other: Any, exchange: str
) -> None:
    """Revising the price of another client's NXT/SOR order keeps it on its venue."""
    _, bid = _best(live_sim, "KRX")
    placed = await other.buy(SYMBOL, 2, bid - 1_000, exchange=exchange)
    order_id = placed["output"]["ODNO"]
    venue = live_sim.exchange.order(order_id).venue
    new_id = await live_broker.modify_order(order_id, price=bid - 800)
    revised = live_sim.exchange.order(new_id)
    assert revised.price == bid - 800
    assert revised.placed_on == exchange
    assert revised.venue == venue
    assert revised.original_order_id == order_id


async def test_nxt_refuses_a_market_order_before_any_request(
    live_sim: KISSimulator, live_broker: KISBroker
) -> None:
    """NXT takes no market orders: the request is refused at construction, nothing sent."""
    before = live_sim.stats.rest_requests
    with pytest.raises(InvalidOrderError, match="NXT takes no market orders"):
        OrderRequest(SYMBOL, "buy", 1, order_type=OrderType.MARKET, exchange="nxt")
    assert live_sim.stats.rest_requests == before


@pytest.mark.parametrize("market", [Market.KRX, Market.NXT, Market.UNIFIED])
async def test_prices_and_books_per_market(
    live_sim: KISSimulator, live_broker: KISBroker, market: Market
) -> None:
    """get_price / get_orderbook with J, NX and UN answer each market's own numbers."""
    for _ in range(30):
        live_sim.exchange.step()
    inst = live_sim.exchange.instrument(SYMBOL)
    snap = await live_broker.get_price(SYMBOL, market=market)
    book = await live_broker.get_orderbook(SYMBOL, market=market)
    expected_price = {
        Market.KRX: inst.price,
        Market.NXT: inst.nxt_price,
        Market.UNIFIED: inst.unified_price,
    }[market]
    assert snap.price == expected_price
    if market is Market.KRX:
        asks, _ = live_sim.exchange.book(SYMBOL, "KRX")
        assert [lv.price for lv in book.asks] == [lv.price for lv in asks]
        assert snap.volume == inst.volume
    elif market is Market.NXT:
        asks, _ = live_sim.exchange.book(SYMBOL, "NXT")
        assert [lv.qty for lv in book.asks] == [lv.qty for lv in asks]
        assert snap.volume == inst.nxt_volume
    else:
        krx_asks, _ = live_sim.exchange.book(SYMBOL, "KRX")
        nxt_asks, _ = live_sim.exchange.book(SYMBOL, "NXT")
        assert book.asks[0].price == min(krx_asks[0].price, nxt_asks[0].price)
        at_best = sum(lv.qty for lv in (*krx_asks, *nxt_asks) if lv.price == book.asks[0].price)
        assert book.asks[0].qty == at_best
        assert snap.volume == inst.volume + inst.nxt_volume


async def test_nxt_fills_show_in_balance(live_sim: KISSimulator, live_broker: KISBroker) -> None:
    """Shares bought on NXT appear in the holdings (inquire-balance with AFHR_FLPR_YN X)."""
    before = {p.symbol: p.qty for p in await live_broker.get_stock_balance()}
    nxt_ask, _ = _best(live_sim, "NXT", "000660")
    await live_broker.place_order(
        OrderRequest("000660", "buy", 2, price=nxt_ask + 500, exchange=Exchange.NXT)
    )
    after = {p.symbol: p.qty for p in await live_broker.get_stock_balance()}
    assert after.get("000660", 0) == before.get("000660", 0) + 2


async def test_stop_limit_rests_until_triggered(
    live_sim: KISSimulator, live_broker: KISBroker
) -> None:
    """A stop-limit buy (22, CNDT_PRIC) waits below its trigger and fills once the market
    trades through it; its row carries the stop price."""
    price = live_sim.exchange.price(SYMBOL)
    stop = price + 500
    order_id = await live_broker.place_order(
        OrderRequest(
            SYMBOL, "buy", 1, order_type=OrderType.STOP_LIMIT, price=stop + 500, stop_price=stop
        )
    )
    ledger = live_sim.exchange.order(order_id)
    assert ledger.stop_price == stop
    assert not ledger.armed
    assert ledger.filled_qty == 0
    rows = {o.broker_order_id: o for o in await live_broker.get_orders()}
    assert rows[order_id].stop_price == Decimal(stop)
    live_sim.exchange.set_price(SYMBOL, stop)
    assert ledger.armed
    assert ledger.filled_qty == 1
    live_sim.exchange.check_invariants()
