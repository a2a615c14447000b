"""RedisTokenStore on a real Redis: encrypted at rest, single-flight issuance lock, secrecy."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from kis_async import KISConfig, Mode
from kis_async.gateway import RedisTokenStore
from kis_async.models import KST, AuthenticationToken
from kis_async.rest.auth import TokenManager, TokenStore

SECRET = "S" * 60 + "-app-secret-" + "x" * 100
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.secret-token-body-ÄÖ"


def config(secret: str = SECRET, mode: Mode = Mode.PAPER) -> KISConfig:
    return KISConfig(app_key="P" * 36, app_secret=secret, account_id="5012345601", mode=mode)


def token(value: str = TOKEN, hours: float = 6.0) -> AuthenticationToken:
    from datetime import datetime

    expires = datetime.now(KST).replace(microsecond=0) + timedelta(hours=hours)
    return AuthenticationToken(value=SecretStr(value), token_type="Bearer", expires_at=expires)


@pytest.fixture
async def client(redis_server: Any) -> AsyncIterator[Any]:
    redis = aioredis.from_url(redis_server.url)
    yield redis
    await redis.aclose()


def prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


async def test_round_trip_is_encrypted_at_rest_and_expires_with_the_token(client: Any) -> None:
    """The stored value holds neither the token nor its base64; it expires with the token;
    load() gives the same token back."""
    store = RedisTokenStore(client, config(), prefix=prefix())
    assert isinstance(store, TokenStore)
    original = token()
    await store.store(original)
    raw = await client.get(store.key)
    assert raw.startswith(b"v1:")
    assert TOKEN.encode() not in raw
    assert base64.b64encode(TOKEN.encode())[:24] not in raw
    assert b"secret-token" not in base64.b64decode(raw[3:])
    ttl = await client.pttl(store.key)
    assert 6 * 3600_000 - 120_000 < ttl <= 6 * 3600_000
    loaded = await store.load()
    assert loaded is not None
    assert loaded.value.get_secret_value() == TOKEN
    assert (loaded.token_type, loaded.expires_at) == (original.token_type, original.expires_at)


async def test_another_secret_or_key_cannot_read_it(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A store with another app secret reads nothing (and says so without secrets); a value
    copied to another key name does not decrypt either (the key name is authenticated)."""
    caplog.set_level(logging.DEBUG)
    space = prefix()
    mine = RedisTokenStore(client, config(), prefix=space)
    await mine.store(token())
    other = RedisTokenStore(client, config(secret="Z" * 180), prefix=space)
    assert other.key == mine.key
    assert await other.load() is None
    assert "does not decrypt" in caplog.text
    live = RedisTokenStore(client, config(mode=Mode.LIVE), prefix=space)
    await client.set(live.key, await client.get(mine.key))
    assert await live.load() is None
    await client.set(mine.key, b"v1:!!not-base64!!")
    assert await mine.load() is None
    for text in (caplog.text, repr(mine), repr(other)):
        assert TOKEN not in text
        assert SECRET not in text


async def test_remove_only_the_named_token(client: Any) -> None:
    """remove(value) leaves a different stored token alone and deletes the named one."""
    store = RedisTokenStore(client, config(), prefix=prefix())
    await store.store(token("current-token"))
    await store.remove("an-older-token")
    assert await store.load() is not None
    await store.remove("current-token")
    assert await store.load() is None
    assert await client.exists(store.key) == 0


async def test_lock_is_exclusive_renewed_and_expires_for_a_dead_holder(client: Any) -> None:
    """The issuance lock excludes a second holder for as long as it is held (renewed past
    its TTL); a lock left by a dead process expires after its TTL."""
    space = prefix()
    a = RedisTokenStore(client, config(), prefix=space, lock_ttl=0.3)
    b = RedisTokenStore(client, config(), prefix=space, lock_ttl=0.3, lock_timeout=10)
    events: list[tuple[str, float]] = []
    b_waiting = asyncio.Event()

    async def holder() -> None:
        async with a.locked():
            events.append(("a-in", time.monotonic()))
            b_waiting.set()
            await asyncio.sleep(1.2)  # four TTLs: only renewal keeps the lock
            events.append(("a-out", time.monotonic()))

    async def contender() -> None:
        await b_waiting.wait()
        async with b.locked():
            events.append(("b-in", time.monotonic()))

    await asyncio.wait_for(asyncio.gather(holder(), contender()), 30)
    assert [e[0] for e in events] == ["a-in", "a-out", "b-in"]

    # A lock of a process that died holding it (no renewal, 300 ms left).
    await client.set(a.key + ":issuing", "dead-owner", px=300)
    started = time.monotonic()
    async with b.locked():
        waited = time.monotonic() - started
    assert 0.1 <= waited < 10


async def test_unreachable_redis_means_no_token_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Redis down, load() answers None and store()/remove() only log."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = RedisTokenStore(f"redis://127.0.0.1:{port}/0", config())
    try:
        assert await store.load() is None
        await store.store(token())
        await store.remove()
    finally:
        await store.aclose()
    assert "unreachable" in caplog.text
    assert TOKEN not in caplog.text


async def test_token_manager_issues_once_for_two_managers_sharing_the_store(
    client: Any,
) -> None:
    """Two TokenManagers (two processes' worth) on one RedisTokenStore asking at once: one
    issuance; the other reads the shared token under the lock."""
    space = prefix()
    posts: list[str] = []

    async def post(path: str, body: Any) -> Any:
        posts.append(path)
        await asyncio.sleep(0.2)  # slow enough that both managers ask while it runs
        return {"access_token": f"tok-{len(posts)}", "token_type": "Bearer", "expires_in": 86400}

    managers = [
        TokenManager(config(), post, store=RedisTokenStore(client, config(), prefix=space))
        for _ in range(2)
    ]
    tokens = await asyncio.gather(*(m.token() for m in managers))
    assert posts == ["/oauth2/tokenP"]
    assert {t.value.get_secret_value() for t in tokens} == {"tok-1"}
