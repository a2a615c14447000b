"""`kis-async stream quotes|books --market`, against the simulator."""

from __future__ import annotations

import json
from typing import Any

from kis_async.cli import EXIT_OK, EXIT_USAGE

SYMBOL = "005930"
RunCLI = Any


async def test_stream_quotes_and_books_per_market(cli_live: RunCLI) -> None:
    """`stream quotes --market nxt` prints NXT trades; `stream books --market unified` the
    integrated book."""
    quotes = await cli_live("stream", "quotes", SYMBOL, "--market", "nxt", "--count", "2", "--json")
    assert quotes.code == EXIT_OK, quotes.err
    lines = [json.loads(line) for line in quotes.out.splitlines()]
    assert len(lines) == 2
    assert {line["market"] for line in lines} == {"nxt"}
    books = await cli_live(
        "stream", "books", SYMBOL, "--market", "unified", "--count", "1", "--json"
    )
    assert books.code == EXIT_OK, books.err
    [book] = [json.loads(line) for line in books.out.splitlines()]
    assert book["market"] == "unified"
    assert book["krx_mid_price"] is not None


async def test_paper_refuses_nxt_stream(cli: RunCLI) -> None:
    """Paper mode: `stream quotes --market nxt` is refused with the reason, exit 2."""
    result = await cli("stream", "quotes", SYMBOL, "--market", "nxt", "--count", "1")
    assert result.code == EXIT_USAGE
    assert "KRX quotes only" in result.err
