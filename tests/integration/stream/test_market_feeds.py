"""KRX, NXT and integrated (통합) feeds through ``broker.quotes/orderbooks(market=...)``
against the simulator: all six TRs in both order-book layouts, paper-mode refusal before
anything is sent, and each registration counted toward the cap."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Literal

import pytest

from kis_async import (
    KISBroker,
    Market,
    Mode,
    OrderBook,
    PaperModeError,
    Quote,
    Session,
    SubscriptionError,
)
from kis_async.models import KST
from kis_async.sim import KISSimulator
from kis_async.stream.options import StreamOptions

SYMBOL = "005930"
#: A Tuesday at 10:00 KST: both venues in their regular session.
DAY = datetime(2026, 12, 1, 10, 0, tzinfo=KST)
OPTIONS = StreamOptions(ack_timeout=5.0, connect_timeout=5.0, liveness_timeout=5.0)


async def _first(stream: object) -> object:
    """The first item of ``stream`` (generous timeout: the machine is shared)."""
    return await asyncio.wait_for(anext(stream), 30)  # type: ignore[call-overload]


def _mid(book: OrderBook) -> Decimal:
    # The simulator's mid price: (best ask + best bid) // 2 of the venue's own book.
    assert book.best_ask is not None
    assert book.best_bid is not None
    return (book.best_ask.price + book.best_bid.price) // 2


@pytest.mark.parametrize(
    ("layout", "trade_fields"), [("kt", 47), ("ota", 46)], ids=["kt-47", "ota-46"]
)
async def test_six_feeds_through_the_broker(
    layout: Literal["kt", "ota"], trade_fields: Literal[46, 47]
) -> None:
    """Each market's trades and books arrive on their own TR, labelled with the market; the
    KRX/NXT books expose the mid price their layout carries, the integrated book both
    venues' mid prices; six registrations are in use."""
    sim = KISSimulator(
        seed=7,
        mode=Mode.LIVE,
        quote_interval=0.02,
        rate_limit=False,
        clock=DAY,
        book_layout=layout,
        trade_fields=trade_fields,
    )
    async with sim.serve(port=0) as running:
        config = running.config(requests_per_second=None)
        async with KISBroker(config, stream_options=OPTIONS) as broker:
            quotes = {m: broker.quotes([SYMBOL], market=m) for m in Market}
            books = {m: broker.orderbooks([SYMBOL], market=m) for m in Market}
            streams = [*quotes.values(), *books.values()]
            for stream in streams:
                await stream.__aenter__()
            try:
                assert broker.stream_status.registrations == 6
                held = {tr for s in running.hub.sessions for tr, _ in s.subscriptions}
                assert held == {
                    "H0STCNT0", "H0NXCNT0", "H0UNCNT0", "H0STASP0", "H0NXASP0", "H0UNASP0",
                }  # fmt: skip
                for market, stream in quotes.items():
                    quote = await _first(stream)
                    assert isinstance(quote, Quote)
                    assert quote.symbol == SYMBOL
                    assert quote.market is market
                    expected = Session.REGULAR if trade_fields == 47 else None
                    assert quote.session is expected
                    assert quote.price > 0
                got = {m: await _first(s) for m, s in books.items()}
            finally:
                for stream in streams:
                    await stream.aclose()
    krx, nxt, unified = got[Market.KRX], got[Market.NXT], got[Market.UNIFIED]
    assert isinstance(krx, OrderBook)
    assert isinstance(nxt, OrderBook)
    assert isinstance(unified, OrderBook)
    assert (krx.market, nxt.market, unified.market) == (Market.KRX, Market.NXT, Market.UNIFIED)
    assert len(krx.asks) == 10
    assert nxt.asks
    if layout == "kt":
        # 63-field H0STASP0: MID_PRC and MARKET_CLS_CODE; 62-field H0NXASP0: NMID_PRC.
        assert krx.mid_price == krx.krx_mid_price == _mid(krx)
        assert krx.session is Session.REGULAR
        assert nxt.mid_price == nxt.nxt_mid_price == _mid(nxt)
        assert nxt.krx_mid_price is None
    else:
        # 59-field H0STASP0 has no mid price; the 65-field H0NXASP0 carries both venues'.
        assert krx.mid_price is None
        assert krx.session is None
        assert nxt.mid_price == nxt.nxt_mid_price == _mid(nxt)
        assert nxt.krx_mid_price is not None
    assert unified.mid_price is None
    assert unified.krx_mid_price is not None
    assert unified.nxt_mid_price is not None


async def test_paper_mode_refuses_nxt_and_unified_before_sending(fast_sim: KISSimulator) -> None:
    """In paper mode NXT/UNIFIED quote and book streams raise PaperModeError at once: no
    socket is opened and no subscribe frame is sent; KRX still works."""
    config = fast_sim.config(requests_per_second=None)
    async with KISBroker(config, stream_options=OPTIONS) as broker:
        with pytest.raises(PaperModeError, match="KRX quotes only"):
            broker.quotes([SYMBOL], market=Market.NXT)
        with pytest.raises(PaperModeError):
            broker.orderbooks([SYMBOL], market="unified")
        with pytest.raises(PaperModeError):
            await broker.subscribe_quotes([SYMBOL], lambda q: None, market="UN")
        with pytest.raises(ValueError, match="unknown market"):
            broker.quotes([SYMBOL], market="kosdaq")
        assert fast_sim.stats.subscribe_requests == 0
        assert fast_sim.stats.ws_sessions_opened == 0
        assert broker.stream_status.registrations == 0
        async with broker.quotes([SYMBOL]) as stream:
            quote = await _first(stream)
            assert isinstance(quote, Quote)
            assert quote.market is Market.KRX
        assert fast_sim.stats.subscribe_requests == 1


async def test_each_market_registration_counts_toward_the_cap() -> None:
    """One symbol on three markets is three registrations; past the cap the next stream is
    refused before anything is sent; a second stream of a held key shares it."""
    sim = KISSimulator(seed=9, mode=Mode.LIVE, quote_interval=0.05, rate_limit=False, clock=DAY)
    capped = StreamOptions(max_registrations=3, ack_timeout=5.0, connect_timeout=5.0)
    async with sim.serve(port=0) as running:
        config = running.config(requests_per_second=None)
        async with (
            KISBroker(config, stream_options=capped) as broker,
            broker.quotes([SYMBOL], market=Market.KRX),
            broker.quotes([SYMBOL], market=Market.NXT),
            broker.orderbooks([SYMBOL], market=Market.UNIFIED),
        ):
            assert broker.stream_status.registrations == 3
            sent = running.stats.subscribe_requests
            with pytest.raises(SubscriptionError, match="cap of 3"):
                async with broker.quotes([SYMBOL], market=Market.UNIFIED):
                    pass
            async with broker.quotes([SYMBOL], market="nxt") as shared:
                quote = await _first(shared)
                assert isinstance(quote, Quote)
                assert quote.market is Market.NXT
            assert running.stats.subscribe_requests == sent
            assert broker.stream_status.registrations == 3
