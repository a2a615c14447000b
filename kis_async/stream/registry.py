"""The registrations of one session: reference counting, the cap, and the routing table.

Pure bookkeeping (no I/O): :class:`~kis_async.stream.manager.StreamManager` decides what to
send and when; this module keeps who holds which ``(tr_id, tr_key)`` and where decoded
values go. A subscriber joins the routing table before its subscribe message is sent, so
values that arrive with (or before) the ack reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sized
from dataclasses import dataclass, field

from kis_async.errors import SubscriptionError
from kis_async.stream.protocol import NOTICE_TR_IDS, Ack, AckStatus
from kis_async.stream.streams import RegKey, Sink

__all__ = ["AckOutcome", "Registration", "Registry", "safe_key"]

logger = logging.getLogger("kis_async.stream")


def safe_key(key: RegKey) -> str:
    """The tr_key as it may appear in messages and logs (never the HTS id)."""
    return "<hts id>" if key[0] in NOTICE_TR_IDS else key[1]


class Registration:
    """One KIS registration and the sinks that hold it."""

    __slots__ = ("acked", "epoch", "established", "holders", "key", "ready", "resent", "sinks")

    def __init__(self, key: RegKey, loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.sinks: list[Sink] = []  # joined before the subscribe is sent
        self.holders = 0  # subscribers still waiting for the ack
        self.ready: asyncio.Future[None] = loop.create_future()
        self.established = False  # acknowledged on the current connection
        self.acked = False  # acknowledged at least once: it has running consumers
        self.resent = False  # re-sent after an unsolicited refusal, not acknowledged since
        self.epoch = -1  # the connection number the subscribe was last sent on

    @property
    def notices(self) -> bool:
        """True for the execution-notice registration."""
        return self.key[0] in NOTICE_TR_IDS

    def fail(self, exc: BaseException) -> None:
        """Fail the subscribers waiting for the ack."""
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()  # marked retrieved: waiters, if any, still get it


@dataclass
class AckOutcome:
    """What the manager must do about an ack (the registry does the bookkeeping).

    Attributes:
        resend: an established registration KIS refused unsolicited: re-send it once.
        failed: refusals whose running consumers must get the error, with their sinks.
        reconnect: OPSP8996 while restoring: reconnect instead of failing consumers.
    """

    resend: Registration | None = None
    failed: list[tuple[SubscriptionError, list[Sink]]] = field(default_factory=list)
    reconnect: bool = False


class Registry:
    """Registrations by ``(tr_id, tr_key)`` and the routes built from them.

    Args:
        cap: registrations allowed per session (checked before anything is sent).
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.regs: dict[RegKey, Registration] = {}
        #: tr_id -> tr_key -> sinks, for market data (notices go through the feed).
        self.routes: dict[str, dict[str, tuple[Sink, ...]]] = {}

    def __len__(self) -> int:
        return len(self.regs)

    def join(self, sink: Sink, keys: tuple[RegKey, ...]) -> list[Registration]:
        """Add ``sink`` to the registrations of ``keys`` (created as needed) and route to it.

        Raises:
            SubscriptionError: the new registrations would pass the cap.
        """
        new = sum(1 for key in keys if key not in self.regs)
        if new and len(self.regs) + new > self.cap:
            raise SubscriptionError(
                f"{len(self.regs)} registrations in use; {new} more would pass the cap of "
                f"{self.cap} per session",
                tr_id=keys[0][0],
                tr_key=safe_key(keys[0]),
                msg_cd=None,
            )
        loop = asyncio.get_running_loop()
        regs = []
        for key in keys:
            reg = self.regs.get(key)
            if reg is None:
                reg = self.regs[key] = Registration(key, loop)
            reg.holders += 1
            reg.sinks.append(sink)
            regs.append(reg)
        self.rebuild()
        return regs

    def leave(self, sink: Sink, keys: tuple[RegKey, ...]) -> list[Registration]:
        """Remove ``sink`` from ``keys``; return their registrations (for :meth:`prune`)."""
        regs = []
        for key in keys:
            reg = self.regs.get(key)
            if reg is not None:
                with contextlib.suppress(ValueError):
                    reg.sinks.remove(sink)
                regs.append(reg)
        return regs

    def prune(self, regs: list[Registration]) -> list[Registration]:
        """Drop registrations nobody holds; return those KIS holds (to unsubscribe)."""
        removed = []
        for reg in regs:
            if reg.sinks or reg.holders > 0 or self.regs.get(reg.key) is not reg:
                continue
            del self.regs[reg.key]
            # Sent and not refused: KIS holds it, so take it back.
            if reg.established or (reg.epoch >= 0 and not reg.ready.done()):
                removed.append(reg)
        self.rebuild()
        return removed

    def match(self, tr_id: str, tr_key: str | None) -> Registration | None:
        """The registration an ack is about (KIS omits tr_key in some acks)."""
        reg = self.regs.get((tr_id, tr_key or ""))
        if reg is None:
            waiting = [r for r in self.regs.values() if r.key[0] == tr_id and not r.ready.done()]
            reg = waiting[0] if waiting else None
        return reg

    def on_ack(self, ack: Ack) -> AckOutcome:
        """Account a subscribe ack: establish, refuse or schedule a re-send.

        * success (OPSP0000/0002): the registration is established, its waiters released;
        * a refusal of an *established* registration (unsolicited): ``resend`` is set, the
          registration waits for the answer; the answer is handled like any ack, so a
          second refusal fails its consumers;
        * OPSP8996 (app key in use): new subscribers fail; consumers of registrations that
          were established are kept and ``reconnect`` asks for a fresh connection;
        * any other refusal fails that registration (or, unmatched, every pending one).
        """
        outcome = AckOutcome()
        reg = self.match(ack.tr_id, ack.tr_key)
        if ack.status is not AckStatus.FAILED:
            if reg is not None:
                reg.established = reg.acked = True
                reg.resent = False
                if not reg.ready.done():
                    reg.ready.set_result(None)
            return outcome
        if ack.msg_cd == "OPSP8996":
            fresh = [r for r in self.regs.values() if not r.acked and not r.ready.done()]
            self._refuse(fresh, ack, outcome)
            outcome.reconnect = any(r.acked for r in self.regs.values())
        elif reg is not None and reg.established:
            logger.warning(
                "KIS refused the established %s registration ([%s] %s); re-sending it once",
                reg.key[0],
                ack.msg_cd,
                ack.description,
            )
            reg.resent = True
            reg.established = False
            reg.ready = asyncio.get_running_loop().create_future()
            outcome.resend = reg
        elif reg is not None:
            self._refuse([reg], ack, outcome)
        elif not any(key[0] == ack.tr_id for key in self.regs):
            # An ack we cannot match to a registration concerns every pending one.
            self._refuse([r for r in self.regs.values() if not r.ready.done()], ack, outcome)
        return outcome

    def _refuse(self, regs: list[Registration], ack: Ack, outcome: AckOutcome) -> None:
        for reg in regs:
            error = SubscriptionError(
                f"KIS refused the {reg.key[0]} registration: [{ack.msg_cd}] {ack.description}",
                tr_id=reg.key[0],
                tr_key=safe_key(reg.key),
                msg_cd=ack.msg_cd,
            )
            logger.warning("%s", error)
            outcome.failed.append((error, self.refuse(reg, error)))

    def refuse(self, reg: Registration, error: SubscriptionError) -> list[Sink]:
        """KIS refused ``reg``: waiting subscribers get ``error``; a registration that had
        running consumers is removed and their sinks are returned (for the caller to fail)."""
        reg.fail(error)
        if not reg.acked:
            return []
        sinks, reg.sinks = reg.sinks, []
        if reg.holders == 0 and self.regs.get(reg.key) is reg:
            del self.regs[reg.key]
        self.rebuild()
        return sinks

    def clear(self, error: BaseException) -> list[Sink]:
        """Forget every registration (waiting subscribers get ``error``); return all sinks."""
        sinks: dict[int, Sink] = {}
        for reg in self.regs.values():
            reg.fail(error)
            for sink in reg.sinks:
                sinks[id(sink)] = sink
        self.regs.clear()
        self.rebuild()
        return list(sinks.values())

    def rebuild(self) -> None:
        """Recompute the routes from the registrations."""
        routes: dict[str, dict[str, tuple[Sink, ...]]] = {}
        for (tr_id, tr_key), reg in self.regs.items():
            if reg.sinks and tr_id not in NOTICE_TR_IDS:
                routes.setdefault(tr_id, {})[tr_key] = tuple(reg.sinks)
        self.routes = routes

    def queue_depth(self) -> int:
        """Items waiting in every routed sink that has a length (each sink counted once)."""
        seen: set[int] = set()
        depth = 0
        for by_key in self.routes.values():
            for sinks in by_key.values():
                for sink in sinks:
                    if id(sink) not in seen and isinstance(sink, Sized):
                        seen.add(id(sink))
                        depth += len(sink)
        return depth
