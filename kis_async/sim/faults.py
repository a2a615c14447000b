"""Fault injection and counters of the simulator.

:class:`SimFaults` is plain state read by the REST and WebSocket layers; calling a method arms
a fault, :meth:`SimFaults.clear` disarms everything. :class:`SimStats` counts what the
simulator saw. Both are reachable as ``sim.faults`` / ``sim.stats`` and through the admin
routes under ``/__sim__/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kis_async.sim.exchange import SimClock

__all__ = ["FailKind", "SimFaults", "SimStats"]

FailKind = Literal["rate_limit", "server_error"]


@dataclass
class SimStats:
    """Counters of what the simulator saw and did (all start at 0).

    Attributes:
        rest_requests: every HTTP request to a KIS path.
        token_requests: calls to ``/oauth2/tokenP``.
        tokens_issued: distinct access tokens issued (a re-issue of the same token within 6 h
            does not count).
        tokens_revoked: successful ``/oauth2/revokeP`` calls.
        approval_keys_issued: approval keys issued by ``/oauth2/Approval``.
        hashkeys_issued: ``/uapi/hashkey`` answers.
        orders_received: order-cash POSTs that were booked (rejections not counted).
        orders_rejected: order, modify and cancel business rejections.
        modifies_received / cancels_received: booked order-rvsecncl POSTs.
        rate_limit_rejections: EGW00201 answers from the rate limiter (not injected faults).
        token_throttle_rejections: EGW00133 answers.
        auth_rejections: EGW001xx/EGW0012x/EGW00205 answers.
        faults_injected: REST requests failed or dropped on purpose.
        ws_sessions_opened: WebSocket connections accepted.
        ws_connections_refused: WebSocket connections refused by the refuse fault.
        ws_sessions_closed_pingpong: sessions closed for not echoing PINGPONG.
        subscribe_requests: registration and deregistration messages received.
        frames_sent: real-time data frames sent (quotes, books and notices).
        notices_sent: execution-notice frames sent.
        pings_sent: PINGPONG frames sent.
        pongs_received: control-frame pongs received (a PINGPONG answer, as the official
            sample gives it).
        echoes_received: PINGPONG text echoes received (the other answer, python-kis's).
        holiday_requests: answered chk-holiday calls.
    """

    rest_requests: int = 0
    token_requests: int = 0
    tokens_issued: int = 0
    tokens_revoked: int = 0
    approval_keys_issued: int = 0
    hashkeys_issued: int = 0
    orders_received: int = 0
    orders_rejected: int = 0
    modifies_received: int = 0
    cancels_received: int = 0
    rate_limit_rejections: int = 0
    token_throttle_rejections: int = 0
    auth_rejections: int = 0
    faults_injected: int = 0
    ws_sessions_opened: int = 0
    ws_connections_refused: int = 0
    ws_sessions_closed_pingpong: int = 0
    subscribe_requests: int = 0
    frames_sent: int = 0
    notices_sent: int = 0
    pings_sent: int = 0
    pongs_received: int = 0
    echoes_received: int = 0
    holiday_requests: int = 0
    # Live gauges, filled in by the simulator.
    _active_sessions: Callable[[], int] = dataclasses.field(default=lambda: 0, repr=False)
    _active_subscriptions: Callable[[], int] = dataclasses.field(default=lambda: 0, repr=False)

    @property
    def ws_sessions_active(self) -> int:
        """WebSocket sessions open now."""
        return self._active_sessions()

    @property
    def active_subscriptions(self) -> int:
        """Registrations live now, over all sessions."""
        return self._active_subscriptions()

    def as_dict(self) -> dict[str, int]:
        """Every counter and gauge by name (for the admin route)."""
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not f.name.startswith("_")
        }
        out["ws_sessions_active"] = self.ws_sessions_active
        out["active_subscriptions"] = self.active_subscriptions
        return out


class SimFaults:
    """Faults to inject. Every method arms a fault and returns at once.

    REST faults apply to KIS paths only (``/oauth2/...`` and ``/uapi/...``), never to the
    admin routes.
    """

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self.fail_remaining = 0
        self.fail_kind: FailKind = "rate_limit"
        self.delay_seconds = 0.0
        self.delay_remaining: int | None = None
        self.drop_order_responses = 0
        self.muted = False
        self.refuse_until = 0.0
        self.drop_after_frames: int | None = None
        self._drop_now: Callable[[], int] = lambda: 0
        self._expire_tokens: Callable[[], int] = lambda: 0

    # -- REST --------------------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, kind: FailKind = "rate_limit") -> None:
        """Fail the next ``count`` REST requests: ``"rate_limit"`` answers HTTP 500 with the
        EGW00201 envelope; ``"server_error"`` answers a bare HTTP 500 with no KIS body."""
        if kind not in ("rate_limit", "server_error"):
            raise ValueError("kind must be 'rate_limit' or 'server_error'")
        self.fail_remaining = count
        self.fail_kind = kind

    def delay_responses(self, seconds: float, *, count: int | None = None) -> None:
        """Delay REST responses by ``seconds`` (after the request is processed, so a delayed
        order is already booked); for the next ``count`` requests, or until cleared."""
        self.delay_seconds = seconds
        self.delay_remaining = count

    def drop_next_order_response(self, count: int = 1) -> None:
        """Book the next ``count`` order-cash/order-rvsecncl requests but close the connection
        instead of completing the HTTP response (over real sockets only)."""
        self.drop_order_responses = count

    def expire_tokens(self) -> int:
        """Expire every access token now (calls answer EGW00123); returns how many."""
        return self._expire_tokens()

    # -- WebSocket ---------------------------------------------------------------------------

    def drop_sessions(self, *, after_frames: int | None = None) -> int:
        """Close every WebSocket session now, or once ``after_frames`` more data frames have
        been sent in total. Returns the number of sessions closed now."""
        if after_frames is None:
            self.drop_after_frames = None
            return self._drop_now()
        self.drop_after_frames = after_frames
        return 0

    def mute(self, muted: bool = True) -> None:
        """Stop (or resume) sending anything on open sessions while keeping the sockets open:
        no data, no acks, no PINGPONG."""
        self.muted = muted

    def is_muted(self) -> bool:
        """True while sessions are muted."""
        return self.muted

    def refuse_connections(self, seconds: float) -> None:
        """Refuse new WebSocket connections (HTTP 403 at the handshake) for ``seconds``."""
        self.refuse_until = self._clock.monotonic() + seconds

    @property
    def refusing(self) -> bool:
        """True while new WebSocket connections are refused."""
        return self._clock.monotonic() < self.refuse_until

    def clear(self) -> None:
        """Disarm every fault."""
        self.fail_remaining = 0
        self.delay_seconds = 0.0
        self.delay_remaining = None
        self.drop_order_responses = 0
        self.muted = False
        self.refuse_until = 0.0
        self.drop_after_frames = None

    # -- used by the server ------------------------------------------------------------------

    def take_failure(self) -> FailKind | None:
        """Consume one armed REST failure, if any."""
        if self.fail_remaining > 0:
            self.fail_remaining -= 1
            return self.fail_kind
        return None

    def take_delay(self) -> float:
        """Consume one armed response delay (0.0 when none)."""
        if self.delay_seconds <= 0:
            return 0.0
        if self.delay_remaining is not None:
            if self.delay_remaining <= 0:
                return 0.0
            self.delay_remaining -= 1
        return self.delay_seconds

    def take_order_drop(self) -> bool:
        """Consume one armed dropped order response."""
        if self.drop_order_responses > 0:
            self.drop_order_responses -= 1
            return True
        return False

    def apply(self, command: dict[str, Any]) -> Any:
        """Run one admin command ``{"fault": name, ...arguments}`` (the admin HTTP route)."""
        name = command.get("fault")
        args = {k: v for k, v in command.items() if k != "fault"}
        actions: dict[str, Callable[..., Any]] = {
            "fail_next": self.fail_next,
            "delay_responses": self.delay_responses,
            "drop_next_order_response": self.drop_next_order_response,
            "expire_tokens": self.expire_tokens,
            "drop_sessions": self.drop_sessions,
            "mute": self.mute,
            "refuse_connections": self.refuse_connections,
            "clear": self.clear,
        }
        if name not in actions:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(actions))}")
        return actions[str(name)](**args)
