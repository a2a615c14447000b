"""Shared fixtures: zero retry waits, a simulator on 127.0.0.1, a broker pointed at it, and
throwaway Redis and PostgreSQL servers (tests/_servers.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kis_async import KISBroker, Mode
from kis_async.rest.retry import set_wait_scale
from kis_async.sim import KISSimulator


@pytest.fixture(autouse=True)
def no_retry_waits() -> Iterator[None]:
    """Backoff waits are zero in tests; the retry predicates and bounds still apply."""
    previous = set_wait_scale(0.0)
    try:
        yield
    finally:
        set_wait_scale(previous)


@pytest.fixture
async def sim() -> AsyncIterator[KISSimulator]:
    """A paper-mode simulator served on 127.0.0.1, port 0.

    Its REST rate limit is off so integration tests run fast; the rate-limit tests build their
    own simulator with ``rate_limit=True``.
    """
    async with KISSimulator(seed=1234, mode=Mode.PAPER, rate_limit=False).serve(port=0) as running:
        yield running


@pytest.fixture
async def sim_live() -> AsyncIterator[KISSimulator]:
    """A live-mode simulator served on 127.0.0.1, port 0 (REST rate limit off)."""
    async with KISSimulator(seed=1234, mode=Mode.LIVE, rate_limit=False).serve(port=0) as running:
        yield running


@pytest.fixture
async def broker(sim: KISSimulator) -> AsyncIterator[KISBroker]:
    """A KISBroker opened against the paper simulator, client-side rate limiting off."""
    async with KISBroker(sim.config(requests_per_second=None)) as opened:
        yield opened


# -- real Redis and PostgreSQL (tests/_servers.py) -------------------------------------------


def _servers() -> Any:
    """tests/_servers.py, loaded by path (importlib mode has no package imports of tests)."""
    name = "kis_async_test_servers"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_servers.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


def _throwaway(kind: str, what: str) -> Iterator[Any]:
    """Run ``tests/_servers.py``'s ``kind`` server for the session; fail (never skip),
    naming ``what``, when it cannot be started."""
    servers = _servers()
    try:
        context = getattr(servers, kind)()
        running = context.__enter__()
    except servers.ServerUnavailable as exc:
        pytest.fail(f"{what} is needed for this test: {exc}", pytrace=False)
    try:
        yield running
    finally:
        context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A throwaway redis-server on 127.0.0.1 for the session; fails (never skips) if missing."""
    yield from _throwaway("redis_server", "Redis")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 for the session; fails if missing."""
    yield from _throwaway("postgres_server", "PostgreSQL")


@pytest.fixture
async def postgres_dsn(postgres_server: Any) -> AsyncIterator[str]:
    """A DSN of a fresh, empty database on the session's PostgreSQL (dropped afterwards)."""
    async with postgres_server.database() as dsn:
        yield dsn
