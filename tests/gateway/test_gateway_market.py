"""The gateway serves workers' market registrations from one KIS session: it subscribes the
union of the live workers' fields, publishes each record to its (TR, symbol) stream, and
unsubscribes what no live worker holds any more; the cap is shared by every worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from kis_async import Mode
from kis_async.gateway.keys import MARKET_REGISTRATION_CAP, decode_market, published_ns
from kis_async.models import OrderBook, Quote
from kis_async.sim import KISSimulator

SYMBOLS = ("005930", "000660", "035420")
QUOTES, BOOKS = "H0STCNT0", "H0STASP0"


def market_subscriptions(sim: Any) -> set[tuple[str, str]]:
    """The simulator's market registrations over all its sessions."""
    return {
        entry
        for session in sim.hub.sessions
        for entry in session.subscriptions
        if entry[0] in (QUOTES, BOOKS)
    }


async def _connected(beat: Any, registrations: int) -> bool:
    body = await beat
    return bool(body["connected"]) and body["registrations"] == registrations


async def test_registrations_are_served_published_and_released_with_the_worker_lease(
    gw: Any,
) -> None:
    """Three symbols for quotes and books: the gateway subscribes all six on its one session,
    their records appear in the six md streams and decode to the right symbol and type; when
    the worker's lease expires unrenewed, the gateway unsubscribes all six."""
    gateway, _ = gw.start("gw-a")
    await gateway.wait_active(20)
    worker = gw.worker("w1", lease_ms=1500)
    wanted = {(tr, s) for tr in (QUOTES, BOOKS) for s in SYMBOLS}
    assert await worker.register(*sorted(wanted)) == (1, 6)

    async def alive() -> None:  # the worker renews its lease while the checks run
        while True:
            await asyncio.sleep(0.3)
            assert await worker.register() == (1, 6)

    renewing = asyncio.get_running_loop().create_task(alive())

    await gw.wait(lambda: market_subscriptions(gw.sim) == wanted)
    assert len([s for s in gw.sim.hub.sessions if s.subscriptions]) == 1  # one KIS session

    async def all_streams_have_entries() -> bool:
        lengths = [await gw.redis.xlen(gw.keys.market(tr, s)) for tr, s in wanted]
        return all(lengths)

    await gw.wait(all_streams_have_entries)
    for tr, symbol in wanted:
        entries = await gw.redis.xrevrange(gw.keys.market(tr, symbol), count=3)
        assert entries
        for _, fields in entries:
            value = decode_market(fields)
            assert value.symbol == symbol
            assert isinstance(value, Quote if tr == QUOTES else OrderBook)
            assert published_ns(fields) is not None

    async def heartbeat() -> Any:
        return json.loads(await gw.redis.get(gw.keys.heartbeat))

    # Written at once when the session's registrations change (and every second).
    await gw.wait(lambda: _connected(heartbeat(), 7), limit=5)
    beat = await heartbeat()
    assert beat["id"] == "gw-a"
    assert beat["registrations"] == 7  # six market keys and the notices
    assert gateway.status()["market_registrations"] == 6

    # The worker dies (no renewal): its registrations go with its lease.
    renewing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await renewing
    await gw.wait(lambda: not market_subscriptions(gw.sim), limit=15)
    assert gateway.status()["market_registrations"] == 0
    assert await gw.redis.zcard(gw.keys.workers) == 0


async def test_last_worker_out_unsubscribes_and_the_cap_is_shared_by_all_workers(
    gw: Any,
) -> None:
    """Two workers sharing keys: one leaving keeps the shared ones; together they get the 40
    market registrations and not one more (REGISTER refuses the 41st before anything is
    subscribed); the gateway serves all 40 next to the notice registration (KIS's 41)."""
    gateway, _ = gw.start("gw-cap")
    await gateway.wait_active(20)
    a, b = gw.worker("wa"), gw.worker("wb")
    shared = (QUOTES, "005930")
    assert (await a.register(shared, (BOOKS, "005930")))[0] == 1
    assert (await b.register(shared))[0] == 1
    await gw.wait(lambda: market_subscriptions(gw.sim) == {shared, (BOOKS, "005930")})
    await a.unregister(shared, (BOOKS, "005930"))
    await gw.wait(lambda: market_subscriptions(gw.sim) == {shared})
    await b.unregister(shared)
    await gw.wait(lambda: not market_subscriptions(gw.sim))

    codes = [f"{n:06d}" for n in range(100, 100 + MARKET_REGISTRATION_CAP)]
    first = [(QUOTES, c) for c in codes[:25]]
    second = [(BOOKS, c) for c in codes[25:]]
    assert await a.register(*first) == (1, 25)
    assert await b.register(*second) == (1, MARKET_REGISTRATION_CAP)
    assert await b.register((BOOKS, "005930")) == (0, MARKET_REGISTRATION_CAP + 1)
    assert await a.register((QUOTES, "000660")) == (0, MARKET_REGISTRATION_CAP + 1)
    await gw.wait(lambda: market_subscriptions(gw.sim) == {*first, *second})
    sessions = [s for s in gw.sim.hub.sessions if s.subscriptions]
    assert len(sessions) == 1
    assert len(sessions[0].subscriptions) == MARKET_REGISTRATION_CAP + 1  # and the notices
    assert gateway.status()["registrations"] == MARKET_REGISTRATION_CAP + 1


async def test_a_dropped_session_is_reopened_and_registrations_restored_with_events(
    gw: Any,
) -> None:
    """The simulator drops the KIS session: the gateway reconnects on its own, every market
    registration is back, records flow again, and the events stream says connected and
    restored; nothing the gateway writes carries a secret or the account."""
    gateway, _ = gw.start("gw-r")
    await gateway.wait_active(20)
    worker = gw.worker("w-r")
    fields = [(QUOTES, "005930"), (BOOKS, "000660")]
    assert (await worker.register(*fields))[0] == 1
    await gw.wait(lambda: market_subscriptions(gw.sim) == set(fields))
    stream = gw.keys.market(QUOTES, "005930")

    async def entries() -> int:
        return int(await gw.redis.xlen(stream))

    await gw.wait(entries)

    assert gw.sim.faults.drop_sessions() == 1
    await gw.wait(lambda: gateway.status()["reconnects"] >= 1)
    await gw.wait(lambda: market_subscriptions(gw.sim) == set(fields))
    last = (await gw.redis.xrevrange(stream, count=1))[0][0]

    async def newer() -> bool:
        return bool(await gw.redis.xrange(stream, min=f"({last.decode()}"))

    await gw.wait(newer)

    async def events() -> list[str]:
        return [f[b"event"].decode() for _, f in await gw.redis.xrange(gw.keys.events)]

    async def restored_twice() -> bool:
        return (await events()).count("restored") >= 2

    await gw.wait(restored_twice)
    seen = await events()
    assert seen[:4] == ["standby", "active", "connected", "restored"]
    assert seen[4:].count("connected") == seen[4:].count("restored") >= 1

    config = gw.sim.config()
    secrets = (config.app_key, config.app_secret.get_secret_value(), config.account_id)
    written = [
        repr(gateway),
        json.dumps(gateway.status()),
        str(await gw.redis.get(gw.keys.heartbeat)),
    ]
    written += [str(f) for _, f in await gw.redis.xrange(gw.keys.events)]
    written += [str(await gw.redis.keys(f"{gw.prefix}*"))]
    for text in written:
        for secret in secrets:
            assert secret not in text


async def test_a_registration_kis_refuses_is_asked_again_until_it_fits(gw: Any) -> None:
    """On a KIS that takes only 3 registrations (one is the notices), the third market key
    is refused (OPSP0008) without disturbing the others; once a worker frees a slot the
    gateway asks again, with backoff, and gets it."""
    small = KISSimulator(
        seed=78, mode=Mode.PAPER, quote_interval=0.05, rate_limit=False, max_registrations=3
    )
    async with small.serve(port=0) as sim:
        config = sim.config(requests_per_second=None)
        gateway, task = gw.start("gw-small", config=config)
        await gateway.wait_active(20)
        worker = gw.worker("w-small", config=config)
        fields = [(QUOTES, s) for s in SYMBOLS]
        assert (await worker.register(*fields))[0] == 1
        await gw.wait(lambda: len(market_subscriptions(sim)) == 2)
        assert gateway.status()["market_registrations"] == 2
        held = market_subscriptions(sim)
        (refused,) = set(fields) - held
        drop = sorted(held)[0]
        await worker.unregister(drop)
        await gw.wait(lambda: market_subscriptions(sim) == set(fields) - {drop})
        assert refused in market_subscriptions(sim)
        gateway.stop()
        await asyncio.wait_for(task, 15)
