"""Sharing one KIS app key between processes: the rate budget, the token and the streams,
through Redis.

A worker takes its streams from a ``kis-async gateway`` (which holds the app key's one
WebSocket session) with ``KISBroker(config, gateway="redis://...")`` or
:class:`GatewayBroker`; its rate limiter and token store then default to the shared ones.

Needs the ``gateway`` extra (redis-py), imported on first use. The order journal for many
processes is :class:`kis_async.orders.pg_journal.PostgresJournal` (extra ``postgres``)::

    client = redis.asyncio.from_url("redis://127.0.0.1:6379/0")
    broker = KISBroker(
        config,
        journal=PostgresJournal(dsn),
        rate_limiter=RedisRateLimiter.for_config(client, config),
        token_store=RedisTokenStore(client, config),
    )
"""

from kis_async.gateway.broker import GatewayBroker
from kis_async.gateway.ratelimit import RedisRateLimiter
from kis_async.gateway.token_store import RedisTokenStore
from kis_async.gateway.worker import GatewayStreams

__all__ = ["GatewayBroker", "GatewayStreams", "RedisRateLimiter", "RedisTokenStore"]
