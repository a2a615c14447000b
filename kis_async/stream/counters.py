"""StreamCounters: the counters behind :attr:`StreamManager.status`.

The manager counts reconnects, unsolicited refusals and conflation drops itself; a
:class:`~kis_async.stream.session.Session` counts the pings it answered and the liveness
timeouts it detected, and those of the sessions the manager replaced are kept here; the
:class:`~kis_async.stream.router.FrameRouter` counts frames and the
:class:`~kis_async.stream.executions.ExecutionFeed` counts reconciliations.
:meth:`StreamCounters.status` assembles them into one :class:`StreamStatus` snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from kis_async.stream.executions import ExecutionFeed
from kis_async.stream.options import StreamStatus
from kis_async.stream.router import FrameRouter
from kis_async.stream.session import Session

__all__ = ["StreamCounters"]

#: The manager's own counters: reconnects, unsolicited refusals, quotes and books dropped.
CounterName = Literal["reconnects", "refusals", "quotes", "books"]


class StreamCounters:
    """The manager's counters and the session counters carried over from replaced sessions."""

    def __init__(self) -> None:
        self.counts: dict[CounterName, int] = dict.fromkeys(
            ("reconnects", "refusals", "quotes", "books"), 0
        )
        self._pings_before = 0
        self._mutes_before = 0

    def adder(self, name: CounterName) -> Callable[[int], None]:
        """A function adding its argument to counter ``name`` (a stream's drop callback)."""
        counts = self.counts

        def add(n: int) -> None:
            counts[name] += n

        return add

    def absorb(self, session: Session) -> None:
        """Keep the counters of ``session`` (being closed or replaced), then zero its own."""
        self._pings_before += session.pings
        self._mutes_before += session.mute_detections
        session.pings = 0
        session.mute_detections = 0

    def status(
        self,
        *,
        session: Session | None,
        registrations: int,
        router: FrameRouter,
        feed: ExecutionFeed,
    ) -> StreamStatus:
        """A snapshot of the current session's state and every counter."""
        counts = self.counts
        return StreamStatus(
            connected=session is not None and session.connected,
            reconnects=counts["reconnects"],
            registrations=registrations,
            quotes_dropped=counts["quotes"],
            malformed_frames=router.malformed,
            orderbooks_dropped=counts["books"],
            frames_received=router.frames,
            pings_answered=self._pings_before + (session.pings if session else 0),
            liveness_timeouts=self._mutes_before + (session.mute_detections if session else 0),
            executions_reconciled=feed.reconciled,
            duplicate_fills_suppressed=feed.suppressed,
            fill_verifications=feed.verifications,
            failed=session is not None and session.error is not None,
            records_unrouted=router.unrouted,
            refusals_unsolicited=counts["refusals"],
        )
