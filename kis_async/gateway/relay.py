"""The account's executions from the KIS session to ``{ns}:x``, fenced by the lease.

The active gateway follows ``broker.executions(since=<stored cursor>)``: the same exactly-once
consumer a direct broker's user has, started after the last event any gateway published
(``{ns}:x:cursor``), so a takeover gap-fills over REST what happened while no gateway was
active. Every event is written with the cursor after it in one script that first checks the
lease (:data:`~kis_async.gateway.keys.EXECUTION_PUBLISH`): the stream and the cursor never
disagree, and a gateway that lost the lease writes nothing (it steps down instead).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final

from redis.exceptions import RedisError

from kis_async.broker import KISBroker
from kis_async.errors import BrokerError, StreamOverflowError
from kis_async.gateway.keys import EXECUTION_PUBLISH, GatewayKeys, encode_execution
from kis_async.gateway.lease import StepDown, checked, raise_if_cancelled
from kis_async.models import KST, Execution, ExecutionCursor, ExecutionKind
from kis_async.validation import normalize_order_id

__all__ = ["ExecutionRelay"]

logger = logging.getLogger("kis_async.gateway")

#: Seconds before an ended execution stream is opened again.
RESUME_DELAY: Final = 1.0


class ExecutionRelay:
    """Publishes one account's execution events for the active gateway.

    Args:
        redis: a ``redis.asyncio.Redis`` client.
        keys: the namespace's key names.
        gateway_id: the lease holder's id the writes are fenced with.
        retention: seconds of entries kept (older ones are trimmed by id).
        patience: seconds a write is retried while Redis does not answer before stepping
            down (the lease may have expired meanwhile).
    """

    def __init__(
        self, redis: Any, keys: GatewayKeys, gateway_id: str, *, retention: float, patience: float
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._id = gateway_id
        self._retention = retention
        self._patience = patience
        self._publish = redis.register_script(EXECUTION_PUBLISH)
        self.published = 0
        self.ready = False

    async def stored_cursor(self) -> ExecutionCursor | None:
        """The cursor after the newest published entry, if it is of today (KST)."""
        raw = await checked(self._redis.get(self._keys.cursor))
        if raw is None:
            return None
        try:
            cursor = ExecutionCursor.parse(raw.decode() if isinstance(raw, bytes) else str(raw))
        except ValueError:
            logger.warning("gateway: the stored execution cursor is not a cursor; replaying today")
            return None
        return cursor if cursor.day == datetime.now(KST).date() else None

    async def run(self, broker: KISBroker, on_ready: Callable[[], Awaitable[None]]) -> None:
        """Follow the executions from the stored cursor and publish each event, until
        cancelled or the lease is lost (:class:`~kis_async.gateway.lease.StepDown`).
        ``on_ready`` is awaited each time the execution registration is established."""
        since = await self.stored_cursor()
        while True:
            stream = broker.executions(replay=True, since=since)
            try:
                async with stream:
                    self.ready = True
                    await on_ready()
                    while True:
                        try:
                            event = await anext(stream)
                        except StreamOverflowError:
                            continue  # the events stay queued; go on taking them
                        except StopAsyncIteration:
                            break
                        await self.publish(event)
                        since = event.cursor
            except BrokerError as exc:
                logger.warning("gateway: execution stream ended (%s); resuming", exc)
            self.ready = False
            await asyncio.sleep(RESUME_DELAY)

    async def publish(self, event: Execution) -> None:
        """One fenced XADD + cursor SET.

        Raises:
            StepDown: another gateway holds the lease, or Redis did not answer for longer
                than ``patience``.
        """
        cursor = event.cursor
        cumulative: int | None = None
        if event.kind is ExecutionKind.FILLED and cursor is not None:
            cumulative = cursor.delivered(normalize_order_id(event.broker_order_id))
        min_id = f"{int((time.time() - self._retention) * 1000)}-0"
        args: list[str] = [self._id, str(cursor), min_id]
        for name, value in encode_execution(event, cumulative).items():
            args += (name, value)
        keys = [self._keys.lease, self._keys.executions, self._keys.cursor]
        deadline = time.monotonic() + self._patience
        while True:
            try:
                entry = await checked(self._publish(keys=keys, args=args))
                break
            except (OSError, RedisError) as exc:
                raise_if_cancelled()
                if time.monotonic() >= deadline:
                    raise StepDown(f"cannot publish executions ({type(exc).__name__})") from None
                await asyncio.sleep(0.1)
        if entry is None:
            raise StepDown("the lease was taken: an execution publish was refused")
        self.published += 1
