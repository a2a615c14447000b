"""Sharing one KIS app key between processes: the rate budget and the token, through Redis.

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

from kis_async.gateway.ratelimit import RedisRateLimiter
from kis_async.gateway.token_store import RedisTokenStore

__all__ = ["RedisRateLimiter", "RedisTokenStore"]
