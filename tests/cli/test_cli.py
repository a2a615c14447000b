"""`kis-async` account commands against the simulator: output, exit codes, errors, safety."""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from kis_async.cli import EXIT_API, EXIT_OK, EXIT_USAGE
from kis_async.sim import KISSimulator

SYMBOL = "005930"
RunCLI = Any  # the `cli` fixture: await cli(*argv, stdin=None) -> result with code/out/err


class FakeTTY(io.StringIO):
    """A stdin that claims to be a terminal, for the interactive confirmation."""

    def isatty(self) -> bool:
        return True


def no_traceback(result: Any) -> None:
    assert "Traceback" not in result.err
    assert "Traceback" not in result.out


async def test_price_text_and_json(cli: RunCLI, paper_sim: KISSimulator) -> None:
    """`price` prints a line; with --json a document with the exact price as a string."""
    text = await cli("price", SYMBOL)
    assert text.code == EXIT_OK, text.err
    assert text.out.startswith(SYMBOL)
    data = json.loads((await cli("price", SYMBOL, "--json")).out)
    assert data["symbol"] == SYMBOL
    assert int(data["price"]) > 0
    assert data["price"].isdigit()


async def test_global_json_flag_and_book(cli: RunCLI) -> None:
    """`--json` works before the command too; `book` has ten levels per side."""
    result = await cli("--json", "book", SYMBOL)
    assert result.code == EXIT_OK, result.err
    book = json.loads(result.out)
    assert len(book["asks"]) == 10
    assert len(book["bids"]) == 10
    assert int(book["asks"][0]["price"]) > int(book["bids"][0]["price"])
    text = await cli("book", SYMBOL)
    assert text.out.count("ask") >= 10


async def test_cash_and_balance(cli: RunCLI) -> None:
    """`cash` and `balance` report the deposit and holdings, in text and JSON."""
    cash = json.loads((await cli("cash", "--json")).out)
    assert int(cash["cash"]) > 0
    balance = json.loads((await cli("balance", "--json")).out)
    assert balance["cash"] == cash["cash"]
    assert isinstance(balance["positions"], list)
    text = await cli("balance")
    assert text.code == EXIT_OK
    assert text.out.startswith("cash ")


async def test_order_lifecycle(cli: RunCLI, paper_sim: KISSimulator) -> None:
    """buy (resting) -> orders --open -> modify -> cancel -> cancel again (nothing left)."""
    price = paper_sim.exchange.price(SYMBOL)
    low = price - price % 100 - 2_000
    placed = await cli("buy", SYMBOL, "1", "--price", str(low), "--json")
    assert placed.code == EXIT_OK, placed.err
    order_id = json.loads(placed.out)["order_id"]
    assert json.loads(placed.out)["request"]["side"] == "buy"

    open_orders = json.loads((await cli("orders", "--open", "--json")).out)
    assert order_id in [o["broker_order_id"] for o in open_orders]

    modified = await cli("modify", order_id, "--price", str(low - 100), "--json")
    assert modified.code == EXIT_OK, modified.err
    new_id = json.loads(modified.out)["new_order_id"]
    assert new_id != order_id

    cancelled = await cli("cancel", new_id)
    assert cancelled.code == EXIT_OK, cancelled.err
    assert "cancel accepted" in cancelled.out
    again = await cli("cancel", new_id, "--json")
    assert again.code == EXIT_API
    assert json.loads(again.out)["cancelled"] is False
    assert paper_sim.exchange.open_orders == []


async def test_market_buy_shows_in_balance(cli: RunCLI) -> None:
    """A market buy fills on the simulator and the holding appears in `balance`."""
    bought = await cli("buy", SYMBOL, "3", "--market")
    assert bought.code == EXIT_OK, bought.err
    assert "accepted" in bought.out
    balance = json.loads((await cli("balance", "--json")).out)
    assert [p["qty"] for p in balance["positions"] if p["symbol"] == SYMBOL] == [3]
    orders = await cli("orders")
    assert SYMBOL in orders.out


async def test_business_error_prints_msg_cd(cli: RunCLI) -> None:
    """A KIS rejection exits 1 with its msg_cd and message, no traceback."""
    result = await cli("sell", SYMBOL, "1000000", "--market")
    assert result.code == EXIT_API
    assert result.err.startswith("error: KIS error [")
    no_traceback(result)
    as_json = await cli("sell", SYMBOL, "1000000", "--market", "--json")
    error = json.loads(as_json.err)["error"]
    assert error["type"] == "OrderRejectedError"
    assert error["msg_cd"]


async def test_bad_input_is_a_usage_error(cli: RunCLI, paper_sim: KISSimulator) -> None:
    """Bad symbols, off-tick prices and missing options exit 2 before anything is sent."""
    for argv in (
        ("price", "12"),
        ("buy", SYMBOL, "1", "--price", "70050"),
        ("buy", SYMBOL, "1"),
        ("buy", SYMBOL, "0", "--market"),
        ("modify", "0000000001"),
        ("cancel", "not-a-number"),
        ("stream", "quotes"),
    ):
        result = await cli(*argv)
        assert result.code == EXIT_USAGE, argv
        no_traceback(result)
    assert paper_sim.exchange.orders == []


async def test_live_orders_need_confirmation(cli_live: RunCLI, live_sim: KISSimulator) -> None:
    """LIVE mode: refused without --yes and no terminal; a typed 'y' or --yes sends it."""
    refused = await cli_live("buy", SYMBOL, "1", "--market")
    assert refused.code == EXIT_USAGE
    assert "refusing" in refused.err
    assert "LIVE" in refused.err
    declined = await cli_live("buy", SYMBOL, "1", "--market", stdin=FakeTTY("n\n"))
    assert declined.code == EXIT_USAGE
    assert live_sim.exchange.orders == []

    confirmed = await cli_live("buy", SYMBOL, "1", "--market", stdin=FakeTTY("y\n"))
    assert confirmed.code == EXIT_OK, confirmed.err
    assert "[y/N]" in confirmed.err
    forced = await cli_live("sell", SYMBOL, "1", "--market", "--yes")
    assert forced.code == EXIT_OK, forced.err
    assert len(live_sim.exchange.orders) == 2
    refused_cancel = await cli_live("cancel", "0000000001", stdin=io.StringIO(""))
    assert refused_cancel.code == EXIT_USAGE
    # Reads need no confirmation.
    assert (await cli_live("cash")).code == EXIT_OK


async def test_streams_are_bounded(cli: RunCLI) -> None:
    """`stream quotes --count` ends after N JSON lines; books and executions too."""
    quotes = await cli("stream", "quotes", SYMBOL, "000660", "--count", "3", "--json")
    assert quotes.code == EXIT_OK, quotes.err
    lines = [json.loads(line) for line in quotes.out.splitlines()]
    assert len(lines) == 3
    assert {line["symbol"] for line in lines} <= {SYMBOL, "000660"}
    books = await cli("stream", "books", SYMBOL, "--count", "1")
    assert books.code == EXIT_OK, books.err
    assert f"{SYMBOL}  bid" in books.out
    executions = await cli("stream", "executions", "--duration", "0.5", "--json")
    assert executions.code == EXIT_OK, executions.err


async def test_missing_configuration(
    cli: RunCLI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without KIS_* the account commands exit 2 with a hint, printing no secret."""
    secret = os.environ["KIS_APP_SECRET"]
    monkeypatch.delenv("KIS_APP_KEY")
    result = await cli("cash")
    assert result.code == EXIT_USAGE
    assert "KIS_APP_KEY" in result.err
    assert secret not in result.err + result.out
    no_traceback(result)


async def test_dotenv_file_is_read_and_env_wins(
    cli: RunCLI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """./.env supplies missing variables; a real environment variable overrides it."""
    app_key = os.environ["KIS_APP_KEY"]
    rest_url = os.environ["KIS_REST_URL"]
    monkeypatch.delenv("KIS_APP_KEY")
    (tmp_path / ".env").write_text(
        f"# comment\nexport KIS_APP_KEY='{app_key}'\nKIS_REST_URL=http://127.0.0.1:9\n",
        encoding="utf-8",
    )
    result = await cli("cash", "--json")
    assert result.code == EXIT_OK, result.err
    assert os.environ["KIS_REST_URL"] == rest_url


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """--help exits 0 and names every command."""
    from kis_async.cli import main

    assert main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    for command in ("demo", "sim", "price", "book", "balance", "orders", "buy", "stream"):
        assert command in out


async def test_stream_executions_shows_notices(cli: RunCLI, paper_sim: KISSimulator) -> None:
    """`stream executions --json` prints the acceptance and fill of an order placed meanwhile."""
    watcher = asyncio.create_task(
        cli("stream", "executions", "--count", "2", "--duration", "20", "--json")
    )
    async with asyncio.timeout(10):
        while paper_sim.stats.subscribe_requests < 1:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    bought = await cli("buy", SYMBOL, "2", "--market")
    assert bought.code == EXIT_OK, bought.err
    result = await watcher
    assert result.code == EXIT_OK, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert [e["kind"] for e in events] == ["accepted", "filled"]
    assert 1 <= events[1]["qty"] <= 2  # the first fill (the book may split it in two)
    assert events[1]["side"] == "buy"
    assert events[1]["symbol"] == SYMBOL


async def test_stream_executions_needs_hts_id(cli: RunCLI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without KIS_HTS_ID, `stream executions` is a usage error naming the variable."""
    monkeypatch.delenv("KIS_HTS_ID")
    result = await cli("stream", "executions", "--count", "1")
    assert result.code == EXIT_USAGE
    assert "KIS_HTS_ID" in result.err
    no_traceback(result)


async def test_key_makes_buy_at_most_once_across_runs(
    cli: RunCLI, paper_sim: KISSimulator, tmp_path: Path
) -> None:
    """`buy --key K` twice (two processes' worth of runs) books one order, same order id."""
    first = await cli("buy", SYMBOL, "1", "--market", "--key", "nightly-1", "--json")
    assert first.code == EXIT_OK, first.err
    again = await cli("buy", SYMBOL, "1", "--market", "--key", "nightly-1", "--json")
    assert again.code == EXIT_OK, again.err
    assert json.loads(first.out)["order_id"] == json.loads(again.out)["order_id"]
    assert paper_sim.stats.orders_received == 1
    assert list((tmp_path / "cache" / "kis_async").glob("cli-orders-*.sqlite3"))
    other = await cli("buy", SYMBOL, "2", "--market", "--key", "nightly-1")
    assert other.code == EXIT_USAGE  # same key, different order: refused, nothing sent
    assert paper_sim.stats.orders_received == 1


def test_overlapping_in_process_runs_restore_the_library_log_level() -> None:
    """Overlapping main() runs (embedding, tests) leave the kis_async level as they found it,
    whichever finishes first."""
    import logging

    from kis_async.cli import _library_logging

    library = logging.getLogger("kis_async")
    before = library.level
    first, second = _library_logging(False, False), _library_logging(False, True)
    first.__enter__()
    second.__enter__()
    assert library.level == logging.INFO
    first.__exit__(None, None, None)  # the first run ends while the second still runs
    assert library.level == logging.INFO
    second.__exit__(None, None, None)
    assert library.level == before
