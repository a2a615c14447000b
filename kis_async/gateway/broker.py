"""GatewayBroker: a :class:`~kis_async.KISBroker` whose streams come from a gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kis_async.broker import KISBroker
from kis_async.config import KISConfig

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["GatewayBroker"]


class GatewayBroker(KISBroker):
    """``KISBroker(config, gateway=redis, **kwargs)`` under its own name.

    Example::

        async with GatewayBroker(KISConfig.from_env(), "redis://127.0.0.1:6379/0") as broker:
            async for quote in broker.quotes(["005930"]):
                ...

    Args:
        config: credentials, account and endpoints (the same app key as the gateway's).
        redis: the gateway's Redis, as a URL or a ``redis.asyncio.Redis`` client.
        **kwargs: any other :class:`~kis_async.KISBroker` keyword argument.
    """

    def __init__(self, config: KISConfig, redis: str | Redis, **kwargs: Any) -> None:
        if "gateway" in kwargs:
            raise TypeError("GatewayBroker takes the gateway's Redis as its second argument")
        super().__init__(config, gateway=redis, **kwargs)

    def __repr__(self) -> str:
        return super().__repr__().replace("KISBroker(", "GatewayBroker(", 1)
