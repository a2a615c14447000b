"""Market records from the KIS session to Redis streams, batched.

Each market registration of the gateway has a :class:`MarketSink`: the stream manager routes
decoded trades and books to it exactly as to a consumer's queue. The sink turns each value
back into its record text (:func:`~kis_async.gateway.keys.encode_market`) and appends it to
the publisher's batch; the publisher's task sends everything batched since its last wake in
one Redis pipeline (``XADD ... MAXLEN ~``), so a burst of records costs one round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final

from kis_async.gateway.keys import encode_market
from kis_async.gateway.lease import checked, raise_if_cancelled
from kis_async.models import OrderBook, Quote
from kis_async.stream.streams import RegKey

__all__ = ["MarketPublisher", "MarketSink"]

logger = logging.getLogger("kis_async.gateway")

#: Entries held while Redis is slow; past it the oldest are dropped (market data conflates:
#: a reader wants the newest, and the streams are trimmed anyway).
MAX_BATCH: Final = 50_000


class MarketPublisher:
    """Batches market entries and writes them with one pipeline per wake.

    Args:
        redis: a ``redis.asyncio.Redis`` client.
        maxlen: the approximate length each market stream is trimmed to.
    """

    def __init__(self, redis: Any, *, maxlen: int) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self._batch: list[tuple[str, dict[str, str]]] = []
        self._wake = asyncio.Event()
        self.published = 0
        self.dropped = 0
        self.failures = 0

    def add(self, stream: str, entry: dict[str, str]) -> None:
        """Queue one entry for ``stream`` (never blocks)."""
        batch = self._batch
        batch.append((stream, entry))
        if len(batch) > MAX_BATCH:
            excess = len(batch) - MAX_BATCH
            del batch[:excess]
            self.dropped += excess
        self._wake.set()

    @property
    def pending(self) -> int:
        """Entries waiting for the next pipeline."""
        return len(self._batch)

    async def run(self) -> None:
        """Publish until cancelled; a failed pipeline is logged and its entries dropped."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Send what is batched now, in one pipeline."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        pipe = self._redis.pipeline(transaction=False)
        for stream, entry in batch:
            pipe.xadd(stream, entry, maxlen=self._maxlen, approximate=True)
        try:
            await checked(pipe.execute())
        except Exception as exc:
            raise_if_cancelled()
            self.failures += 1
            self.dropped += len(batch)
            logger.warning(
                "gateway: %d market entries not published (%s)", len(batch), type(exc).__name__
            )
            return
        self.published += len(batch)


class MarketSink:
    """The stream manager's sink for one market registration (see the module docstring).

    Args:
        key: the registration ``(tr_id, symbol)``.
        stream: the Redis stream its records go to.
        publisher: where entries are batched.
        on_end: called with the sink (and the error, if any) when the manager ends it: the
            session was given up or closed, so the registration must be made again.
    """

    __slots__ = ("_on_end", "_publisher", "ended", "key", "stream")

    def __init__(
        self,
        key: RegKey,
        stream: str,
        publisher: MarketPublisher,
        on_end: Callable[[MarketSink, BaseException | None], None],
    ) -> None:
        self.key = key
        self.stream = stream
        self._publisher = publisher
        self._on_end = on_end
        self.ended = False

    def put(self, item: Any) -> None:
        """A decoded trade or book of this registration: publish its record."""
        if self.ended or not isinstance(item, Quote | OrderBook):
            return
        entry = encode_market(self.key[0], item)
        if entry is not None:
            self._publisher.add(self.stream, entry)

    def fail(self, exc: BaseException) -> None:
        """The session was given up (or KIS refused the registration)."""
        if not self.ended:
            self.ended = True
            self._on_end(self, exc)

    def close(self, *, drain: bool = True) -> None:
        """The session was closed."""
        if not self.ended:
            self.ended = True
            self._on_end(self, None)

    def __repr__(self) -> str:
        return f"MarketSink({self.key[0]}, {self.key[1]})"
