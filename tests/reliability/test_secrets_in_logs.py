"""The whole flow (token, prices, orders, streams, faults, errors) run with DEBUG logging on
every logger leaves no app secret, token, approval key, account number or HTS id in the logs."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from kis_async import (
    AuthenticationError,
    ExecutionKind,
    KISBroker,
    OrderRequest,
    OrderType,
)

from .conftest import FAST_STREAMS, broker_for, served, wait_until

pytestmark = pytest.mark.reliability


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def _flow(broker: KISBroker, sim_price: int) -> int:
    """Exercise every layer; returns how many fills the execution stream delivered."""
    await broker.authenticate()
    await broker.get_price("005930")
    await broker.get_orderbook("005930")
    await broker.get_cash()
    await broker.get_stock_balance()
    await broker.get_buying_power("005930", sim_price)
    resting = await broker.place_order(
        OrderRequest("005930", "buy", 2, price=sim_price - 2_000, idempotency_key="log-flow-1")
    )
    await broker.modify_order(resting, price=sim_price - 3_000)
    await broker.get_orders()
    open_orders = await broker.get_open_orders()
    for order in open_orders:
        await broker.cancel_order(order.broker_order_id)
    fills = 0
    async with broker.quotes(["005930"]) as quotes, broker.executions() as executions:
        async for _quote in quotes:
            break
        await broker.place_order(OrderRequest("005930", "buy", 1, order_type=OrderType.MARKET))
        async with asyncio.timeout(10):
            async for event in executions:
                if event.kind is ExecutionKind.FILLED:
                    fills += 1
                    break
    async with broker.orderbooks(["000660"]) as books:
        async for _book in books:
            break
    return fills


async def test_debug_logs_of_the_whole_flow_hold_no_secret() -> None:
    """DEBUG on every logger through token, REST, orders, streams, faults and auth errors."""
    collector = _Collect()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(collector)
    root.setLevel(logging.DEBUG)
    try:
        async with served(rate_limit=False, quote_interval=0.05) as sim:
            price = sim.exchange.price("005930")
            async with broker_for(sim, stream_options=FAST_STREAMS) as broker:
                fills = await _flow(broker, price)
                # Faults: a rate-limit storm, an expired token, a dropped socket.
                sim.exchange.advance(61)
                sim.faults.fail_next(2, kind="rate_limit")
                sim.faults.expire_tokens()
                await broker.get_price("005930")
                async with broker.quotes(["005930"]) as quotes:
                    async for _quote in quotes:
                        break
                    opened = sim.stats.ws_sessions_opened
                    sim.faults.drop_sessions()
                    assert await wait_until(lambda: sim.stats.ws_sessions_opened > opened, within=5)
                    async for _quote in quotes:
                        break
            # A refused secret produces an error and its log lines.
            async with broker_for(sim, config={"app_secret": "x" * 180}) as bad:
                with contextlib.suppress(AuthenticationError):
                    await bad.get_price("005930")
            secrets = {
                "app secret": sim.app_secret,
                "account number": sim.account_id,
                "account number (dashed)": f"{sim.account_id[:8]}-{sim.account_id[8:]}",
                "account number (CANO)": sim.account_id[:8],
                "HTS id": sim.hts_id,
                "wrong app secret": "x" * 180,
            }
            for i, token in enumerate(sim.rest.tokens):
                secrets[f"access token {i}"] = token
            for i, key in enumerate(sim.rest.approval_keys):
                secrets[f"approval key {i}"] = key
    finally:
        root.removeHandler(collector)
        root.setLevel(previous)
    text = "\n".join(collector.lines)
    leaks = {name: value for name, value in secrets.items() if value in text}
    by_logger: dict[str, int] = {}
    for line in collector.lines:
        name = line.split(" ", 1)[0]
        by_logger[name] = by_logger.get(name, 0) + 1
    print(
        f"\nDEBUG flow: {len(collector.lines)} log lines from {len(by_logger)} loggers "
        f"({', '.join(f'{k}={v}' for k, v in sorted(by_logger.items()))}); fills via stream "
        f"{fills}; searched for {len(secrets)} secrets; leaked: "
        f"{sorted(leaks) if leaks else 'none'}"
    )
    for name, value in leaks.items():
        for line in collector.lines:
            if value in line:
                print(f"  LEAK {name}: {line.replace(value, '<' + name + '>')[:300]}")
                break
    assert fills == 1
    assert len(collector.lines) > 20
    assert leaks == {}
