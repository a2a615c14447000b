"""`kis-async stream executions`: replay marking, the fill's own time, bounded runs, cursors."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from kis_async.cli import EXIT_OK, EXIT_USAGE
from kis_async.models import KST
from kis_async.sim import KISSimulator

RunCLI = Any  # the `cli` fixture: await cli(*argv, stdin=None) -> result with code/out/err

SYMBOL = "005930"
#: Generous bound for one command against the in-process simulator on a loaded machine.
LIMIT = 60.0


async def _buy_and_settle(cli: RunCLI) -> dict[str, object]:
    """Buy at market, then return the order's REST row once it is fully filled."""
    bought = await cli("buy", SYMBOL, "1", "--market", "--json")
    assert bought.code == EXIT_OK, bought.err
    async with asyncio.timeout(LIMIT):
        while True:
            listed = await cli("orders", "--json")
            assert listed.code == EXIT_OK, listed.err
            rows = [row for row in json.loads(listed.out) if row["symbol"] == SYMBOL]
            if rows and rows[0]["filled_qty"] == 1:
                return dict(rows[0])
            await asyncio.sleep(0.05)


async def test_walkthrough_count_two_after_one_buy_ends(cli: RunCLI) -> None:
    """After one market buy, `--count 2 --idle-timeout` prints the replayed fill and ends."""
    await _buy_and_settle(cli)
    async with asyncio.timeout(LIMIT):
        result = await cli("stream", "executions", "--count", "2", "--idle-timeout", "1.5")
    assert result.code == EXIT_OK, result.err
    lines = result.out.splitlines()
    assert len(lines) == 1, lines
    assert "  replay  " in lines[0]
    assert "filled" in lines[0]
    assert f"BUY 1 {SYMBOL}" in lines[0]


async def test_count_counts_printed_events(cli: RunCLI) -> None:
    """`--count 1` ends after the one replayed fill it prints (no timeout needed)."""
    await _buy_and_settle(cli)
    async with asyncio.timeout(LIMIT):
        result = await cli("stream", "executions", "--count", "1", "--json")
    assert result.code == EXIT_OK, result.err
    (event,) = [json.loads(line) for line in result.out.splitlines()]
    assert event["kind"] == "filled"
    assert event["replayed"] is True
    assert event["cursor"].startswith("v1:")


async def test_replayed_fill_shows_its_own_time(cli: RunCLI) -> None:
    """A replayed fill prints the fill's time from KIS, not the moment it was replayed."""
    row = await _buy_and_settle(cli)
    filled_at = datetime.fromisoformat(str(row["ordered_at"]))
    # Replay at least one whole second later, so a receive time would print differently.
    await asyncio.sleep(
        max(0.0, (filled_at + timedelta(seconds=1.2) - datetime.now(KST)).total_seconds())
    )
    before = datetime.now(KST)
    async with asyncio.timeout(LIMIT):
        plain = await cli("stream", "executions", "--count", "1")
        as_json = await cli("stream", "executions", "--count", "1", "--json")
    assert plain.code == EXIT_OK, plain.err
    stamp = plain.out.split()[0]
    assert stamp == filled_at.astimezone(KST).strftime("%H:%M:%S")
    assert stamp != before.strftime("%H:%M:%S")
    event = json.loads(as_json.out)
    assert datetime.fromisoformat(event["time"]) == filled_at


async def test_live_fill_is_not_marked_replay(cli: RunCLI, paper_sim: KISSimulator) -> None:
    """Events delivered live from the socket print `live` and `"replayed": false`."""
    watcher = asyncio.create_task(cli("stream", "executions", "--count", "2", "--duration", "30"))
    async with asyncio.timeout(LIMIT):
        while paper_sim.stats.subscribe_requests < 1:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    bought = await cli("buy", SYMBOL, "1", "--market")
    assert bought.code == EXIT_OK, bought.err
    async with asyncio.timeout(LIMIT):
        result = await watcher
    assert result.code == EXIT_OK, result.err
    lines = result.out.splitlines()
    assert len(lines) == 2
    assert all("  live    " in line for line in lines), lines
    assert "accepted" in lines[0]
    assert "filled" in lines[1]


async def test_no_replay_skips_earlier_fills(cli: RunCLI) -> None:
    """`--no-replay` starts from now: an earlier fill is not printed."""
    await _buy_and_settle(cli)
    async with asyncio.timeout(LIMIT):
        result = await cli("stream", "executions", "--no-replay", "--idle-timeout", "1.5")
        replayed = await cli("stream", "executions", "--idle-timeout", "1.5")
    assert result.code == EXIT_OK, result.err
    assert result.out == ""
    assert len(replayed.out.splitlines()) == 1  # the same moment with replay: the fill


async def test_since_cursor_resumes_after_it(cli: RunCLI) -> None:
    """`--since` with a cursor from --json prints exactly the fills after it."""
    await _buy_and_settle(cli)
    async with asyncio.timeout(LIMIT):
        first = await cli("stream", "executions", "--count", "1", "--json")
    cursor = json.loads(first.out)["cursor"]
    first_order = json.loads(first.out)["broker_order_id"]
    async with asyncio.timeout(LIMIT):
        nothing = await cli("stream", "executions", "--since", cursor, "--idle-timeout", "1.5")
    assert nothing.code == EXIT_OK, nothing.err
    assert nothing.out == ""
    await _buy_and_settle_second(cli, first_order)
    async with asyncio.timeout(LIMIT):
        after = await cli(
            "stream", "executions", "--since", f"{cursor}\n", "--idle-timeout", "1.5", "--json"
        )
    events = [json.loads(line) for line in after.out.splitlines()]
    assert [e["broker_order_id"] != first_order for e in events] == [True]
    assert events[0]["replayed"] is True


async def _buy_and_settle_second(cli: RunCLI, first_order: str) -> None:
    bought = await cli("buy", SYMBOL, "1", "--market", "--json")
    assert bought.code == EXIT_OK, bought.err
    async with asyncio.timeout(LIMIT):
        while True:
            rows = json.loads((await cli("orders", "--json")).out)
            if any(r["broker_order_id"] != first_order and r["filled_qty"] == 1 for r in rows):
                return
            await asyncio.sleep(0.05)


async def test_bad_since_is_a_usage_error(cli: RunCLI, paper_sim: KISSimulator) -> None:
    """A malformed `--since` exits 2 naming the problem, before any request."""
    requests = paper_sim.stats.subscribe_requests
    result = await cli("stream", "executions", "--since", "v1:notadate:1=2")
    assert result.code == EXIT_USAGE
    assert "cursor" in result.err
    assert paper_sim.stats.subscribe_requests == requests
    both = await cli("stream", "executions", "--no-replay", "--since", "v1:20261201:")
    assert both.code == EXIT_USAGE


async def test_idle_timeout_applies_to_market_streams(cli: RunCLI) -> None:
    """`--idle-timeout` is accepted by `stream quotes`; `--count` still ends it first."""
    async with asyncio.timeout(LIMIT):
        result = await cli("stream", "quotes", SYMBOL, "--count", "2", "--idle-timeout", "30")
    assert result.code == EXIT_OK, result.err
    assert len(result.out.splitlines()) == 2
