"""The throwaway servers are the real engines, on 127.0.0.1, and answer; a missing one is
named in the failure."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
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


def _servers_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A private copy of tests/_servers.py, so patching it leaves the fixtures' copy alone."""
    name = "kis_async_test_servers_probe"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "_servers.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_missing_redis_fails_naming_the_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-server on PATH the fixture's helper raises, naming the package to
    install (the fixture turns this into a failure, never a skip)."""
    servers = _servers_module(monkeypatch)
    monkeypatch.setattr(servers.shutil, "which", lambda name: None)
    with pytest.raises(servers.ServerUnavailable, match="redis-server is not installed"):
        servers.redis_server().__enter__()


def test_missing_postgres_fails_naming_the_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PostgreSQL's binaries the helper raises, naming initdb and the package."""
    servers = _servers_module(monkeypatch)
    monkeypatch.setattr(servers, "PG_DIRS", ())
    monkeypatch.setattr(servers.shutil, "which", lambda name: None)
    with pytest.raises(servers.ServerUnavailable, match=r"initdb was not found.*postgresql"):
        servers.postgres_server().__enter__()
