"""CLI output helpers: JSON conversion, tables (plain and rich), .env parsing, rich demo."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import datetime
from decimal import Decimal

from pydantic import SecretStr

from kis_async.cli import Output, main, to_jsonable, won
from kis_async.models import (
    KST,
    AuthenticationToken,
    Execution,
    ExecutionKind,
    OrderType,
    PriceLevel,
    Quote,
    Side,
)


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_to_jsonable_models_and_events() -> None:
    """Quotes, executions, levels and tokens become plain JSON; secrets are masked."""
    when = datetime(2026, 11, 25, 9, 0, 1, tzinfo=KST)
    quote = Quote(
        symbol="005930",
        time=when,
        price=Decimal(71_900),
        change=Decimal(-100),
        change_rate=Decimal("-0.14"),
        volume=3,
        cum_volume=10,
        cum_turnover=Decimal(719_000),
        open=None,
        high=None,
        low=None,
        ask=None,
        bid=None,
        vwap=None,
        side=Side.SELL,
        raw={"STCK_PRPR": "71900"},
    )
    execution = Execution(
        kind=ExecutionKind.FILLED,
        broker_order_id="0000000001",
        original_order_id=None,
        branch_no="00950",
        symbol="005930",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        qty=5,
        price=Decimal(71_900),
        order_qty=10,
        time=when,
    )
    token = AuthenticationToken.model_validate(
        {"value": SecretStr("very-secret"), "expires_at": when}
    )
    data = to_jsonable({"q": quote, "e": execution, "level": PriceLevel(Decimal(1), 2), "t": token})
    text = json.dumps(data)
    assert "very-secret" not in text
    assert data["q"]["price"] == "71900"
    assert data["q"]["side"] == "sell"
    assert data["q"]["time"] == "2026-11-25T09:00:01+09:00"
    assert "raw" not in data["q"]
    assert data["e"]["kind"] == "filled"
    assert data["e"]["order_type"] == "limit"
    assert data["level"] == {"price": "1", "qty": 2}
    assert data["t"]["value"] == "**********"


def test_won_formatting() -> None:
    """Money prints with thousands separators; fractions and None are kept readable."""
    assert won(Decimal(1234567)) == "1,234,567"
    assert won(Decimal("1.5")) == "1.50"
    assert won(None) == "-"


def test_tables_plain_and_rich() -> None:
    """Tables align wide (Korean) text when piped and use rich on a terminal."""
    plain = io.StringIO()
    Output(as_json=False, stream=plain).table("t", ["name", "qty"], [["삼성전자", "5"]])
    lines = plain.getvalue().splitlines()
    assert lines[2].endswith(" 5")
    # Four wide characters take eight columns: the row is as wide as the header on screen.
    assert len(lines[1]) == len(lines[2]) + 4
    tty = FakeTTY()
    out = Output(as_json=False, stream=tty)
    assert out.rich
    out.table("holdings", ["name", "qty"], [["삼성전자", "5"]])
    assert "holdings" in tty.getvalue()
    assert "━" in tty.getvalue() or "─" in tty.getvalue()
    assert not Output(as_json=True, stream=FakeTTY()).rich


async def test_demo_rich_mode_on_a_terminal() -> None:
    """On a terminal the demo draws the rich live view and still exits 0."""
    screen = FakeTTY()

    def run() -> int:
        with contextlib.redirect_stdout(screen):
            return main(["demo", "--duration", "1"])

    assert await asyncio.to_thread(run) == 0
    text = screen.getvalue()
    assert "orders & notices" in text
    assert "order book 005930" in text
    assert "summary:" in text
