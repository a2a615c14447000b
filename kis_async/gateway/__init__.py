"""Sharing one KIS app key between processes: the gateway, the rate budget and the token,
through Redis.

Needs the ``gateway`` extra (redis-py), imported on first use. :class:`Gateway` holds the one
KIS WebSocket session and serves it to workers through Redis (``kis-async gateway``); a
worker takes its streams from it with ``KISBroker(config, gateway="redis://...")`` or
:class:`GatewayBroker` (:class:`GatewayStreams` in place of the socket), its rate limiter and
token store then defaulting to the shared ones. The rate budget and the token can also be
shared without a gateway. The order journal for many
processes is :class:`kis_async.orders.pg_journal.PostgresJournal` (extra ``postgres``)::

    client = redis.asyncio.from_url("redis://127.0.0.1:6379/0")
    broker = KISBroker(
        config,
        journal=PostgresJournal(dsn),
        rate_limiter=RedisRateLimiter.for_config(client, config),
        token_store=RedisTokenStore(client, config),
    )
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kis_async.gateway.broker import GatewayBroker
    from kis_async.gateway.ratelimit import RedisRateLimiter
    from kis_async.gateway.server import Gateway
    from kis_async.gateway.token_store import RedisTokenStore
    from kis_async.gateway.worker import GatewayStreams

#: Where each public name lives; imported on first access (PEP 562), so importing the
#: package (or its key names) loads neither redis-py nor the broker.
_LAZY: dict[str, str] = {
    "Gateway": "kis_async.gateway.server",
    "GatewayBroker": "kis_async.gateway.broker",
    "GatewayStreams": "kis_async.gateway.worker",
    "RedisRateLimiter": "kis_async.gateway.ratelimit",
    "RedisTokenStore": "kis_async.gateway.token_store",
}

__all__ = ["Gateway", "GatewayBroker", "GatewayStreams", "RedisRateLimiter", "RedisTokenStore"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kis_async.gateway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
