"""`kis-async` venue options and the calendar command, against the simulator."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from kis_async.cli import EXIT_OK, EXIT_USAGE
from kis_async.sim import KISSimulator

SYMBOL = "005930"
RunCLI = Any


async def test_buy_on_nxt_and_sor(cli_live: RunCLI, live_sim: KISSimulator) -> None:
    """`buy --exchange nxt|sor` sends the order to that venue and echoes it."""
    price = str(live_sim.exchange.price(SYMBOL) + 500)
    nxt = await cli_live("buy", SYMBOL, "1", "--price", price, "--exchange", "nxt", "--yes")
    assert nxt.code == EXIT_OK, nxt.err
    assert "on NXT" in nxt.out
    sor = await cli_live(
        "buy", SYMBOL, "1", "--price", price, "--exchange", "SOR", "--yes", "--json"
    )
    assert sor.code == EXIT_OK, sor.err
    data = json.loads(sor.out)
    assert data["request"]["exchange"] == "SOR"
    assert [o.placed_on for o in live_sim.exchange.orders] == ["NXT", "SOR"]
    bad = await cli_live("buy", SYMBOL, "1", "--market", "--exchange", "nxt", "--yes")
    assert bad.code == EXIT_USAGE
    assert "NXT takes no market orders" in bad.err
    assert len(live_sim.exchange.orders) == 2


async def test_price_and_book_per_market(cli_live: RunCLI, live_sim: KISSimulator) -> None:
    """`price/book --market` read the NXT and integrated views."""
    live_sim.exchange.step(20)
    inst = live_sim.exchange.instrument(SYMBOL)
    unified = json.loads((await cli_live("price", SYMBOL, "--market", "unified", "--json")).out)
    assert int(unified["price"]) == inst.unified_price
    nxt = json.loads((await cli_live("price", SYMBOL, "--market", "NX", "--json")).out)
    assert int(nxt["price"]) == inst.nxt_price
    book = await cli_live("book", SYMBOL, "--market", "nxt")
    assert book.code == EXIT_OK, book.err
    best_ask = live_sim.exchange.book(SYMBOL, "NXT")[0][0]
    assert f"{best_ask.price:,}" in book.out
    wrong = await cli_live("price", SYMBOL, "--market", "kosdaq")
    assert wrong.code == EXIT_USAGE


async def test_paper_refuses_nxt_quotes(cli: RunCLI) -> None:
    """Paper mode: `price --market nxt` is refused with the reason, exit 2."""
    result = await cli("price", SYMBOL, "--market", "nxt")
    assert result.code == EXIT_USAGE
    assert "KRX quotes only" in result.err


async def test_calendar_live_paper_and_offline(
    cli_live: RunCLI, live_sim: KISSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`calendar` lists the next trading days and today's sessions: from KIS's holiday API in
    live mode, offline without credentials."""
    live = json.loads((await cli_live("calendar", "--days", "3", "--json")).out)
    assert live["source"] == "KIS chk-holiday"
    assert len(live["next_trading_days"]) == 3
    assert all(live_sim.calendar.is_trading_day(_day(d)) for d in live["next_trading_days"])
    assert live_sim.stats.holiday_requests == 1
    assert set(live["session_now"]) == {"KRX", "NXT", "SOR"}
    text = await cli_live("calendar")
    assert text.code == EXIT_OK, text.err
    assert "next trading days:" in text.out
    monkeypatch.delenv("KIS_APP_KEY")
    offline = json.loads((await cli_live("calendar", "--json")).out)
    assert offline["source"].startswith("offline")
    assert len(offline["next_trading_days"]) == 5
    if offline["trading_day_today"]:
        names = [row["session"] for row in offline["sessions_today"]["NXT"]]
        assert names == ["pre_market", "regular", "after_market"]


def _day(text: str) -> date:
    return date.fromisoformat(text)
