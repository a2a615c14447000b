"""Stream tuning and the status snapshot (shared by the manager and the session).

Kept apart from :mod:`kis_async.stream.manager` so that the session, the execution feed and
the manager all import their options from one module that imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from kis_async.validation import check_number

__all__ = ["StreamOptions", "StreamStatus"]


@dataclass(frozen=True, kw_only=True)
class StreamOptions:
    """WebSocket session tuning. Durations are float seconds.

    Attributes:
        max_registrations: KIS allows 41 registrations per session (protocol doc §6.7).
        ack_timeout: how long a subscriber waits for its ack.
        liveness_timeout: reconnect when no frame at all (data, ack or PINGPONG) arrived
            for this long; KIS's PINGPONG interval is reported between ~10 s and ~110 s.
        connect_timeout: WebSocket opening handshake timeout.
        close_timeout: WebSocket closing handshake timeout.
        reconnect_base_delay: first backoff delay; doubles per consecutive reconnect.
        reconnect_max_delay: backoff ceiling.
        reconnect_jitter: fraction of the delay randomly taken off (0 = no jitter).
        healthy_after: a connection that stayed up this long resets the backoff.
        max_reconnect_attempts: consecutive failed connection attempts before giving up.
        quote_queue_size: per-stream queue length before quotes/books conflate.
        execution_high_water: per-stream backlog of notices that raises StreamOverflowError.
        callback_queue_size: per-callback queue length before quotes conflate.
        gap_fill: reconcile fills over REST after a reconnect and when executions start.
        gap_fill_verify_window: for this many seconds after a gap-fill snapshot, fill notices
            of partly filled orders it reported are verified over REST before delivery
            (0 disables verification).
        gap_fill_verify_timeout: time limit of one verification fetch; on timeout or any
            other failure the waiting notices are delivered unverified.
        recent_executions: how many delivered executions :meth:`recent_executions` keeps.
        malformed_log_interval: at most one log line per this many seconds for malformed
            frames, and (separately) for unrouted records.
    """

    max_registrations: int = 41
    ack_timeout: float = 10.0
    liveness_timeout: float = 150.0
    connect_timeout: float = 10.0
    close_timeout: float = 2.0
    reconnect_base_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    reconnect_jitter: float = 0.5
    healthy_after: float = 30.0
    max_reconnect_attempts: int = 10
    quote_queue_size: int = 1024
    execution_high_water: int = 10_000
    callback_queue_size: int = 1024
    gap_fill: bool = True
    gap_fill_verify_window: float = 5.0
    gap_fill_verify_timeout: float = 5.0
    recent_executions: int = 1000
    malformed_log_interval: float = 10.0

    def __post_init__(self) -> None:
        for name in (
            "ack_timeout",
            "liveness_timeout",
            "connect_timeout",
            "close_timeout",
            "reconnect_max_delay",
            "malformed_log_interval",
            "gap_fill_verify_timeout",
        ):
            check_number(f"StreamOptions.{name}", getattr(self, name))
        for name in ("reconnect_base_delay", "healthy_after", "gap_fill_verify_window"):
            check_number(f"StreamOptions.{name}", getattr(self, name), allow_minimum=True)
        if not 0.0 <= self.reconnect_jitter <= 1.0:
            raise ValueError("StreamOptions.reconnect_jitter must be between 0 and 1")
        for name in (
            "max_registrations",
            "max_reconnect_attempts",
            "quote_queue_size",
            "execution_high_water",
            "callback_queue_size",
            "recent_executions",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"StreamOptions.{name} must be an int >= 1")


@dataclass(frozen=True)
class StreamStatus:
    """A read-only snapshot of the WebSocket session.

    Attributes:
        connected: a connection is open.
        reconnects: reconnections since the manager was created.
        registrations: KIS registrations in use (of the cap).
        quotes_dropped: quotes dropped by conflation in lagging consumers.
        malformed_frames: frames that did not parse (counted, logged, skipped).
        orderbooks_dropped: order books dropped by conflation.
        frames_received: text frames received, PINGPONG excluded.
        pings_answered: PINGPONG frames echoed.
        liveness_timeouts: connections closed because nothing arrived in the window.
        executions_reconciled: execution events emitted by gap-fill.
        duplicate_fills_suppressed: fill notices withheld because verification showed the
            gap-fill snapshot had already delivered their quantity.
        fill_verifications: REST fetches made to verify fill notices after a gap-fill.
        failed: the session gave up after too many failed reconnect attempts.
        records_unrouted: decoded data records (quotes, books) that arrived for a key no
            subscriber holds any more (e.g. just after an unsubscribe) or for a TR id the
            client has no decoder for; counted, logged (rate-limited) and dropped.
        refusals_unsolicited: refusing acks for registrations that were already established;
            each is logged and the registration re-sent once.
    """

    connected: bool
    reconnects: int
    registrations: int
    quotes_dropped: int
    malformed_frames: int
    orderbooks_dropped: int = 0
    frames_received: int = 0
    pings_answered: int = 0
    liveness_timeouts: int = 0
    executions_reconciled: int = 0
    duplicate_fills_suppressed: int = 0
    fill_verifications: int = 0
    failed: bool = False
    records_unrouted: int = 0
    refusals_unsolicited: int = 0
