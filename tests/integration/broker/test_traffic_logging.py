"""Masked traffic logging against the simulator: a full session (token, hashkeys, orders,
paging, quotes, AES execution notices, PINGPONG, revoke) with ``log_traffic=True`` writes
records for all of it, and no secret appears in any captured record."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kis_async import KISBroker, Mode, OrderRequest, OrderType, Side
from kis_async import traffic as traffic_module
from kis_async.models import tick_size
from kis_async.sim import KISSimulator
from kis_async.stream.manager import StreamOptions

FAST = StreamOptions(
    ack_timeout=3.0,
    liveness_timeout=2.0,
    connect_timeout=2.0,
    close_timeout=0.5,
    reconnect_base_delay=0.02,
    reconnect_max_delay=0.2,
    healthy_after=0.5,
)


class _Capture(logging.Handler):
    """Every record of every logger, as text (message, structured fields, traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> list[str]:
        out = []
        for record in self.records:
            parts = [record.getMessage()]
            if hasattr(record, "traffic"):
                parts.append(json.dumps(record.traffic, ensure_ascii=False, default=str))
            if record.exc_info:
                parts.append(logging.Formatter().formatException(record.exc_info))
            out.append("\n".join(parts))
        return out

    def events(self) -> list[str]:
        return [r.traffic["event"] for r in self.records if hasattr(r, "traffic")]


@pytest.fixture
def capture() -> Iterator[_Capture]:
    """Capture at DEBUG on the root logger; restore the traffic switch afterwards."""
    handler = _Capture()
    root = logging.getLogger()
    level = root.level
    traffic_level = traffic_module.logger.level
    rate = traffic_module.frame_sample_rate()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        traffic_module.logger.setLevel(traffic_level)
        traffic_module._frame_rate[0] = rate


@pytest.fixture
async def sim() -> AsyncIterator[KISSimulator]:
    """A paper simulator with small pages, holdings, fast ticks and frequent PINGPONG."""
    simulator = KISSimulator(
        seed=2718,
        mode=Mode.PAPER,
        rate_limit=False,
        token_issue_interval=0.0,
        quote_interval=0.02,
        pingpong_interval=0.2,
        pingpong_timeout=5.0,
        daily_ccld_page_size=2,
        balance_page_size=1,
        starting_holdings={"005930": 10, "000660": 5, "035420": 3},
    )
    async with simulator.serve(port=0) as running:
        yield running


async def _until(predicate: Callable[[], bool], limit: float = 10.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_full_session_logs_every_exchange_and_no_secret(
    sim: KISSimulator, capture: _Capture, tmp_path: Path
) -> None:
    """Every secret of a full session is absent from every captured record (0 hits)."""
    config = sim.config(
        requests_per_second=None,
        use_hashkey=True,
        token_cache_dir=tmp_path / "cache",
        log_traffic=True,
        log_traffic_frames=1.0,
    )
    hashes: list[str] = []
    aes: set[str] = set()
    async with KISBroker(config, stream_options=FAST) as broker:
        real_hashkey = broker._rest.auth.hashkey

        async def spy(body: Any) -> str:
            value = await real_hashkey(body)
            hashes.append(value)
            return value

        broker._rest.auth.hashkey = spy  # type: ignore[method-assign]
        token = (await broker.authenticate()).value.get_secret_value()
        price = (await broker.get_price("005930")).price
        await broker.get_orderbook("005930")
        below = price - 10 * tick_size(price)
        async with broker.executions() as notices:
            await _until(lambda: broker._streams.executions_active)
            aes |= {secret for s in sim.hub.sessions for secret in (s.key, s.iv)}
            resting = [
                await broker.place_order(
                    OrderRequest("005930", Side.BUY, 1, price=below, idempotency_key=f"k{i}")
                )
                for i in range(3)
            ]
            await broker.place_order(OrderRequest("005930", Side.BUY, 1, price=below))
            filled = await broker.place_order(
                OrderRequest("000660", Side.BUY, 2, order_type=OrderType.MARKET)
            )
            seen_fill = False
            while not seen_fill:
                notice = await asyncio.wait_for(anext(notices), 5)
                seen_fill = notice.broker_order_id == filled and notice.kind == "filled"
        async with broker.quotes(["005930", "000660"]) as quotes:
            for _ in range(5):
                await asyncio.wait_for(anext(quotes), 5)
            await _until(lambda: "ws.recv.pingpong" in capture.events())
        await broker.modify_order(resting[0], price=below - tick_size(below))
        assert await broker.cancel_order(resting[1]) is True
        orders = await broker.get_orders()
        await broker.get_open_orders()
        positions = await broker.get_stock_balance()
        await broker.get_cash()
        await broker.get_buying_power("005930", Decimal(below))
        approval = await broker._rest.approval_key()
        await broker.revoke_token()

    assert len(orders) >= 6  # more than two inquire-daily-ccld pages of 2 rows
    assert len(positions) >= 3  # three inquire-balance pages of 1 row
    assert hashes
    assert len(aes) >= 2
    events = capture.events()
    for event in (
        "rest.request",
        "rest.response",
        "ws.send.subscribe",
        "ws.recv.ack",
        "ws.send.unsubscribe",
        "ws.recv.pingpong",
        "ws.recv.data",
    ):
        assert event in events, event
    texts = capture.texts()
    secrets = {
        "app secret": sim.app_secret,
        "app key": sim.app_key,
        "access token": token,
        "approval key": approval,
        "account number": sim.account_id,
        "CANO": sim.account_id[:8],
        "HTS id": sim.hts_id,
        **{f"hashkey {i}": value for i, value in enumerate(hashes)},
        **{f"AES key/iv {i}": value for i, value in enumerate(sorted(aes))},
    }
    hits = {name: sum(value in text for text in texts) for name, value in secrets.items()}
    print(f"\ntraffic records: {Counter(events)}, all records: {len(texts)}, hits: {hits}")
    assert hits == dict.fromkeys(secrets, 0)
    # the masked forms are there instead
    joined = "\n".join(texts)
    assert f'"CANO":"******{sim.account_id[6:8]}"' in joined
    assert f'"approval_key":"{approval[:8]}..."' in joined
    assert '"appsecret":"********"' in joined
    assert '"hashkey":"********"' in joined
    assert '"tr_key":"<hts id>"' in joined


async def test_off_by_default_even_at_root_debug(sim: KISSimulator, capture: _Capture) -> None:
    """Without log_traffic (nor KIS_LOG_TRAFFIC), DEBUG everywhere writes no traffic record."""
    traffic_module.logger.setLevel(logging.INFO)
    async with KISBroker(sim.config(requests_per_second=None), stream_options=FAST) as broker:
        await broker.get_price("005930")
        async with broker.quotes(["005930"]) as quotes:
            await asyncio.wait_for(anext(quotes), 5)
    assert capture.records  # DEBUG records of other loggers were captured
    assert capture.events() == []


async def test_env_switch(
    sim: KISSimulator, capture: _Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KIS_LOG_TRAFFIC=1 switches it on without touching the configuration."""
    traffic_module.logger.setLevel(logging.INFO)
    monkeypatch.setenv("KIS_LOG_TRAFFIC", "1")
    async with KISBroker(sim.config(requests_per_second=None)) as broker:
        await broker.get_price("005930")
    assert capture.events().count("rest.request") == 2  # tokenP and inquire-price
    assert capture.events().count("rest.response") == 2
