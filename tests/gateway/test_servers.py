"""The throwaway servers are the real engines, on 127.0.0.1, and answer."""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.asyncio as aioredis


async def test_redis_fixture_is_a_real_redis_7(redis_server: Any) -> None:
    """redis-server answers PING and reports major version 7 or newer."""
    client = aioredis.from_url(redis_server.url)
    try:
        assert await client.ping() is True
        info = await client.info("server")
        assert int(str(info["redis_version"]).split(".")[0]) >= 7
        assert str(info["tcp_port"]) == str(redis_server.port)
    finally:
        await client.aclose()


async def test_postgres_fixture_is_a_real_postgresql_15(postgres_dsn: str) -> None:
    """Each test gets an empty database on a real PostgreSQL 15+ listening on 127.0.0.1."""
    conn = await asyncpg.connect(postgres_dsn)
    try:
        version = await conn.fetchval("SHOW server_version_num")
        assert int(version) >= 150000
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert tables == []
        assert await conn.fetchval("SELECT inet_server_addr()::text") == "127.0.0.1/32"
    finally:
        await conn.close()
