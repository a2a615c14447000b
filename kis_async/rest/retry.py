"""Retry policy for REST calls (tenacity, stamina-style).

Two policies, each an explicit predicate over the translated exceptions of
:mod:`kis_async.rest.http`:

* **reads** (quotes, account queries, token, approval key, hashkey) retry on connection
  errors, timeouts, 5xx answers without a business code and KIS's rate-limit codes
  (EGW00201 / EGW00215);
* **order POSTs** (order-cash, order-rvsecncl) retry only when the request certainly never
  reached KIS (a connect-phase failure) or KIS explicitly refused it as rate-limited. After a
  read/write timeout, a dropped connection or a 5xx without a code the order may have been
  booked, so it is never re-sent.

Waits grow exponentially with full jitter and are bounded in count (``max_retries``) and in
total time. :func:`set_wait_scale` multiplies every wait; tests set it to ``0.0``.

The first attempt is awaited directly: tenacity's machinery (an ``AsyncRetrying`` with its
``inspect`` probes and per-attempt futures, about 40 us) is built only once that attempt
failed with a retryable error, and then replays that failure as its own attempt 1, so attempt
numbers, waits, stop rules and the total-time clock (started before the first attempt) are
the same as if tenacity had run from the start.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from kis_async.errors import (
    BrokerClosedError,
    BrokerConnectionError,
    RateLimitError,
    ServerError,
)

__all__ = [
    "DEFAULT_TOTAL_RETRY_TIME",
    "call_with_retry",
    "get_wait_scale",
    "is_retryable_order_error",
    "is_retryable_read_error",
    "set_wait_scale",
]

logger = logging.getLogger("kis_async.rest")

T = TypeVar("T")

#: Upper bound on the time spent retrying one call, in seconds (attempts stop after it).
DEFAULT_TOTAL_RETRY_TIME: Final = 30.0
_BASE_WAIT: Final = 0.2
_RATE_LIMIT_BASE_WAIT: Final = 0.5
_MAX_WAIT: Final = 5.0

_wait_scale = 1.0


def set_wait_scale(scale: float) -> float:
    """Multiply every retry wait (and the EGW00133 token wait) by ``scale``.

    Args:
        scale: ``1.0`` is normal; ``0.0`` makes every wait zero (tests).

    Returns:
        The previous scale, so callers can restore it.
    """
    global _wait_scale
    if scale < 0:
        raise ValueError("wait scale must be >= 0")
    previous = _wait_scale
    _wait_scale = float(scale)
    return previous


def get_wait_scale() -> float:
    """The current wait scale (see :func:`set_wait_scale`)."""
    return _wait_scale


def is_retryable_read_error(exc: BaseException) -> bool:
    """True when a read (or token/approval/hashkey call) may be tried again (never once
    the client is closed)."""
    if isinstance(exc, BrokerClosedError):
        return False
    return isinstance(exc, BrokerConnectionError | ServerError | RateLimitError)


def is_retryable_order_error(exc: BaseException) -> bool:
    """True only when an order POST certainly did not reach KIS or was refused as rate-limited.

    A plain :class:`BrokerConnectionError` from the transport is always a connect-phase
    failure; everything after the request may have been written is a
    :class:`BrokerTimeoutError` with ``request_sent=True`` and is never retried.
    """
    if isinstance(exc, RateLimitError):
        return True
    if isinstance(exc, BrokerClosedError):
        return False
    return isinstance(exc, BrokerConnectionError) and not exc.request_sent


class _ScaledJitterWait(wait_base):
    """Exponential backoff with full jitter, scaled by the module switch."""

    def __call__(self, retry_state: RetryCallState) -> float:
        if _wait_scale == 0.0:
            return 0.0
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        base = _RATE_LIMIT_BASE_WAIT if isinstance(exc, RateLimitError) else _BASE_WAIT
        ceiling = min(_MAX_WAIT, base * 2.0 ** (retry_state.attempt_number - 1))
        # Half fixed, half jitter: never a zero wait against a rate limit, yet decorrelated.
        return (ceiling / 2 + random.uniform(0, ceiling / 2)) * _wait_scale


class _StopAfterBusyTime(stop_base):
    """Stop once ``limit`` seconds have passed since the first attempt, not counting the time
    the call spent queued in the client-side rate limiter (reported by ``queued``). A read
    that waited 40 s for its turn in a burst must still get its retries.

    ``started`` is the ``time.monotonic()`` of the first attempt (which ran before tenacity
    was set up, see :func:`call_with_retry`)."""

    def __init__(self, limit: float, queued: Callable[[], float], started: float) -> None:
        self._limit = limit
        self._queued = queued
        self._started = started

    def __call__(self, retry_state: RetryCallState) -> bool:
        now = retry_state.outcome_timestamp
        elapsed = (now if now is not None else time.monotonic()) - self._started
        return elapsed - self._queued() >= self._limit


def _log_retry(retry_state: RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    logger.info(
        "retrying after %s (attempt %d, waiting %.2fs)",
        type(exc).__name__,
        retry_state.attempt_number,
        wait,
    )


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    order: bool,
    max_retries: int,
    total_time: float = DEFAULT_TOTAL_RETRY_TIME,
    queued: Callable[[], float] | None = None,
) -> T:
    """Await ``fn()`` and retry it under the read or the order policy.

    Args:
        fn: the attempt; it raises translated :mod:`kis_async.errors` exceptions.
        order: use the order-POST predicate instead of the read predicate.
        max_retries: retries after the first attempt.
        total_time: stop retrying once this many seconds have passed since the first attempt.
        queued: seconds the call has spent queued in the rate limiter so far; that time does
            not count against ``total_time``.

    Returns:
        The result of the first successful attempt.

    Raises:
        The last attempt's exception, unchanged, when retrying stops.
    """
    predicate = is_retryable_order_error if order else is_retryable_read_error
    started = time.monotonic()
    try:
        return await fn()
    except Exception as exc:
        # Not retryable: raised unchanged, as tenacity with ``reraise=True`` would (and a
        # BaseException such as a cancellation is not caught at all).
        if not predicate(exc):
            raise
        first: BaseException | None = exc

    async def replay_then_call() -> T:
        # Tenacity's attempt 1 is the one that already failed: raise its error again.
        nonlocal first
        if first is not None:
            failed, first = first, None
            raise failed
        return await fn()

    retrying = AsyncRetrying(
        retry=retry_if_exception(predicate),
        stop=stop_after_attempt(max_retries + 1)
        | _StopAfterBusyTime(total_time, queued or (lambda: 0.0), started),
        wait=_ScaledJitterWait(),
        before_sleep=_log_retry,
        reraise=True,
    )
    return await retrying(replay_then_call)
