"""The simulator's real-time WebSocket surface (protocol doc §6-§7).

One :class:`WsSession` per connection: a reader (registrations, PINGPONG echoes), a writer
draining an outbox, and a pinger that closes the session when PINGPONG is not echoed in time.
:class:`WsHub` owns the sessions and fans market ticks and order events out to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import string
from collections import deque
from typing import Any, Final

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from kis_async.models.common import is_valid_symbol
from kis_async.sim.exchange import NoticeEvent, SimExchange, Tick
from kis_async.sim.faults import SimFaults, SimStats
from kis_async.sim.frames import book_record, data_frame, encrypt, notice_record, trade_record
from kis_async.sim.options import SimOptions
from kis_async.sim.rest import RestApi
from kis_async.sim.venues import KRX, NXT, market_cls_code

__all__ = ["MARKET_TRS", "PONG_EXTENSION", "WsHub", "WsSession"]

#: ASGI scope extension through which the server protocol reports control pongs.
PONG_EXTENSION: Final = "kis_sim.pong"

logger = logging.getLogger("kis_async.sim")

TRADE_TR: Final = "H0STCNT0"
BOOK_TR: Final = "H0STASP0"
#: Real-time market TRs -> (kind, venue): KRX, NXT and 통합 (UN) trades and books (§12).
#: The NXT/UN feeds are served in paper mode too: OTA gives them no paper TR id and whether
#: the paper server serves them is [UNCERTAIN].
MARKET_TRS: Final = {
    "H0STCNT0": ("trade", KRX),
    "H0NXCNT0": ("trade", NXT),
    "H0UNCNT0": ("trade", "UN"),
    "H0STASP0": ("book", KRX),
    "H0NXASP0": ("book", NXT),
    "H0UNASP0": ("book", "UN"),
}
#: Execution-notice TRs, domestic (H0STCNI0 live / H0STCNI9 paper) and overseas (H0GSCNI0 /
#: H0GSCNI9). The simulated account trades only domestic stocks, so an overseas registration is
#: acknowledged and stays silent, as it would on KIS for an account with no overseas orders
#: (python-kis registers both kinds).
NOTICE_TRS: Final = ("H0STCNI0", "H0STCNI9", "H0GSCNI0", "H0GSCNI9")
#: Data frames a session may have waiting before quote and book frames are dropped for it
#: (notices are never dropped).
OUTBOX_LIMIT: Final = 20_000

_ACKS: Final = {
    "OPSP0000": ("0", "SUBSCRIBE SUCCESS"),
    "OPSP0001": ("0", "UNSUBSCRIBE SUCCESS"),
    "OPSP0002": ("1", "ALREADY IN SUBSCRIBE"),
    "OPSP0003": ("1", "UNSUBSCRIBE ERROR(not found!)"),
    "OPSP0008": ("1", "MAX SUBSCRIBE OVER"),
    "OPSP0011": ("1", "invalid approval : NOT FOUND"),
    "OPSP8991": ("1", "invalid tr_id"),
    "OPSP8992": ("1", "invalid tr_key"),
    "OPSP8996": ("9", "ALREADY IN USE appkey"),
    "OPSP8997": ("1", "invalid tr_type"),
    "OPSP8998": ("1", "invalid custtype"),
    "OPSP9999": ("1", "JSON PARSING ERROR : invalid json format"),
}


class WsSession:
    """One WebSocket connection and its registrations."""

    def __init__(self, hub: WsHub, websocket: WebSocket, rng: random.Random) -> None:
        self.hub = hub
        self.websocket = websocket
        alphabet = string.ascii_letters + string.digits
        # Per-session AES key (32 chars) and iv (16 chars), sent in every successful ack.
        self.key = "".join(rng.choice(alphabet) for _ in range(32))
        self.iv = "".join(rng.choice(alphabet) for _ in range(16))
        self.app_key: str | None = None
        self.subscriptions: set[tuple[str, str]] = set()
        self.outbox: deque[tuple[str, bool]] = deque()
        self.ready = asyncio.Event()
        self.echoed = asyncio.Event()
        self.done = asyncio.Event()
        self.closed = False
        self.close_code = 1000

    # -- sending -----------------------------------------------------------------------------

    def enqueue(self, text: str, *, data: bool, droppable: bool = False) -> None:
        """Queue ``text`` for the writer; droppable frames are dropped past the limit."""
        if self.closed or (droppable and len(self.outbox) >= OUTBOX_LIMIT):
            return
        self.outbox.append((text, data))
        self.ready.set()

    async def writer(self) -> None:
        """Send queued frames in order; while muted, queued frames are discarded."""
        faults = self.hub.faults
        while True:
            await self.ready.wait()
            self.ready.clear()
            while self.outbox:
                if self.closed:
                    return
                text, data = self.outbox.popleft()
                if faults.muted:
                    continue
                await self.websocket.send_text(text)
                if data:
                    self.hub.stats.frames_sent += 1
                    self.hub.frame_sent()

    async def pinger(self) -> None:
        """Send PINGPONG every interval; close the session once the oldest unanswered one is
        older than the grace (``pingpong_timeout``, protocol doc §6.4). A text echo and a
        control-frame pong both answer every PINGPONG sent so far."""
        opts = self.hub.options
        loop = asyncio.get_running_loop()
        unanswered_since: float | None = None
        while True:
            await asyncio.sleep(opts.pingpong_interval)
            if self.hub.faults.muted:
                unanswered_since = None
                continue
            if self.echoed.is_set():
                self.echoed.clear()
                unanswered_since = None
            now = loop.time()
            if unanswered_since is not None and now - unanswered_since >= opts.pingpong_timeout:
                self.hub.stats.ws_sessions_closed_pingpong += 1
                logger.info("simulator: closing a session that answered no PINGPONG")
                self.request_close(1000)
                return
            stamp = self.hub.exchange.clock.now().strftime("%Y%m%d%H%M%S")
            ping = {"header": {"tr_id": "PINGPONG", "datetime": stamp}}
            self.enqueue(json.dumps(ping), data=False)
            self.hub.stats.pings_sent += 1
            if unanswered_since is None:
                unanswered_since = now

    def request_close(self, code: int = 1000) -> None:
        """Ask the session to end; the endpoint closes the socket with ``code``."""
        if not self.closed:
            self.closed = True
            self.close_code = code
            self.done.set()
            self.ready.set()

    async def close_socket(self) -> None:
        """Send the close frame if the socket is still open."""
        with contextlib.suppress(Exception):
            if self.websocket.application_state is WebSocketState.CONNECTED:
                await self.websocket.close(self.close_code)

    # -- receiving ---------------------------------------------------------------------------

    def on_pong(self, payload: bytes) -> None:
        """A control-frame pong: answers PINGPONG as a text echo does (protocol doc §6.4)."""
        self.hub.stats.pongs_received += 1
        self.echoed.set()

    async def reader(self) -> None:
        """Handle client messages until the client disconnects."""
        while True:
            text = await self.websocket.receive_text()
            self.handle(text)

    def handle(self, text: str) -> None:
        """Handle one client text frame."""
        try:
            message = json.loads(text)
            header = message["header"]
            if not isinstance(header, dict):
                raise TypeError("header")
        except (ValueError, KeyError, TypeError):
            self._ack("", "", "OPSP9999")
            return
        if header.get("tr_id") == "PINGPONG":
            # A text echo (exact or re-serialized) answers PINGPONG (PK, mojito); a control
            # pong does too (the official sample, kis-trader): see :meth:`on_pong`.
            self.hub.stats.echoes_received += 1
            self.echoed.set()
            return
        self.hub.stats.subscribe_requests += 1
        body = message.get("body") or {}
        inp = body.get("input") if isinstance(body, dict) else None
        inp = inp if isinstance(inp, dict) else {}
        tr_id = str(inp.get("tr_id", ""))
        tr_key = str(inp.get("tr_key", ""))
        app_key = self.hub.rest.approval_app_key(str(header.get("approval_key", "")))
        if app_key is None:
            self._ack(tr_id, tr_key, "OPSP0011")
            return
        if self.app_key is None:
            others = (s for s in self.hub.sessions if s is not self and not s.closed)
            if any(s.app_key == app_key for s in others):
                # One session per app key. The session stays open but refuses registrations
                # (the simulator's choice; KIS's behaviour after this ack is not documented).
                self._ack("(null)", tr_key, "OPSP8996")
                return
            self.app_key = app_key
        if header.get("custtype", "P") not in ("P", "B"):
            self._ack(tr_id, tr_key, "OPSP8998")
            return
        tr_type = str(header.get("tr_type", ""))
        if tr_type not in ("1", "2"):
            self._ack(tr_id, tr_key, "OPSP8997")
            return
        if tr_id not in self.hub.known_trs:
            self._ack(tr_id, tr_key, "OPSP8991")
            return
        if tr_id in NOTICE_TRS:
            if not tr_key.strip():
                self._ack(tr_id, tr_key, "OPSP8992")
                return
        elif not is_valid_symbol(tr_key):
            self._ack(tr_id, tr_key, "OPSP8992")
            return
        entry = (tr_id, tr_key)
        if tr_type == "1":
            if entry in self.subscriptions:
                self._ack(tr_id, tr_key, "OPSP0002")
            elif len(self.subscriptions) >= self.hub.options.max_registrations:
                self._ack(tr_id, tr_key, "OPSP0008")
            else:
                self.subscriptions.add(entry)
                self._ack(tr_id, tr_key, "OPSP0000")
        elif entry in self.subscriptions:
            self.subscriptions.discard(entry)
            self._ack(tr_id, tr_key, "OPSP0001")
        else:
            self._ack(tr_id, tr_key, "OPSP0003")

    def _ack(self, tr_id: str, tr_key: str, msg_cd: str) -> None:
        rt_cd, msg1 = _ACKS[msg_cd]
        # Notice TRs are acked with encrypt "Y", as in recorded fixtures (the portal example's
        # "N" is a [CONFLICT]); every successful ack carries the session's iv and key.
        body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
        if rt_cd == "0":
            body["output"] = {"iv": self.iv, "key": self.key}
        ack = {
            "header": {
                "tr_id": tr_id,
                "tr_key": tr_key,
                "encrypt": "Y" if tr_id in NOTICE_TRS else "N",
            },
            "body": body,
        }
        self.enqueue(json.dumps(ack, ensure_ascii=False), data=False)


class WsHub:
    """All WebSocket sessions of a simulator and the fan-out of market and order events."""

    def __init__(
        self, *, options: SimOptions, exchange: SimExchange, faults: SimFaults, stats: SimStats,
        rest: RestApi,
    ) -> None:  # fmt: skip
        self.options = options
        self.exchange = exchange
        self.faults = faults
        self.stats = stats
        self.rest = rest
        self.sessions: set[WsSession] = set()
        self.notice_tr = "H0STCNI9" if options.is_paper else "H0STCNI0"
        overseas_notice_tr = "H0GSCNI9" if options.is_paper else "H0GSCNI0"
        self.known_trs = frozenset({*MARKET_TRS, self.notice_tr, overseas_notice_tr})
        self._rng = random.Random(options.seed ^ 0x3C3C)
        exchange.add_tick_listener(self.publish_ticks)
        exchange.add_notice_listener(self.publish_notice)
        faults._drop_now = self.drop_all
        stats._active_sessions = lambda: len(self.sessions)
        stats._active_subscriptions = lambda: sum(len(s.subscriptions) for s in self.sessions)

    # -- connections -------------------------------------------------------------------------

    async def endpoint(self, websocket: WebSocket) -> None:
        """The ASGI WebSocket endpoint (any path)."""
        if self.faults.refusing:
            self.stats.ws_connections_refused += 1
            await websocket.close(code=1013)
            return
        await websocket.accept()
        self.stats.ws_sessions_opened += 1
        session = WsSession(self, websocket, self._rng)
        # The server protocol (sim.simulator._PongAwareProtocol) calls this for every
        # control pong of the connection.
        hook = websocket.scope.get("extensions", {}).get(PONG_EXTENSION)
        if isinstance(hook, dict):
            hook["callback"] = session.on_pong
        self.sessions.add(session)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(session.writer())
                group.create_task(session.pinger())
                reader = group.create_task(session.reader())
                closer = group.create_task(session.done.wait())
                await asyncio.wait({reader, closer}, return_when=asyncio.FIRST_COMPLETED)
                raise _SessionOverError
        except* (_SessionOverError, WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self.sessions.discard(session)
            session.closed = True
            await session.close_socket()

    def frame_sent(self) -> None:
        """Count down the drop-after-N-frames fault."""
        remaining = self.faults.drop_after_frames
        if remaining is None:
            return
        remaining -= 1
        self.faults.drop_after_frames = remaining
        if remaining <= 0:
            self.faults.drop_after_frames = None
            self.drop_all()

    def drop_all(self) -> int:
        """Close every session now (close code 1001); returns how many."""
        sessions = list(self.sessions)
        for session in sessions:
            session.request_close(1001)
        return len(sessions)

    # -- fan-out -----------------------------------------------------------------------------

    @property
    def has_quote_subscribers(self) -> bool:
        """True when any session is registered for trades or books."""
        return bool(self.quote_symbols)

    @property
    def quote_symbols(self) -> list[str]:
        """Listed symbols some session is registered for (trades or books), sorted."""
        wanted = {key for s in self.sessions for tr, key in s.subscriptions if tr in MARKET_TRS}
        return sorted(wanted & set(self.exchange.symbols))

    @property
    def backlog(self) -> int:
        """The longest outbox over all sessions."""
        return max((len(s.outbox) for s in self.sessions), default=0)

    def publish_ticks(self, ticks: list[Tick]) -> None:
        """Send trade and book frames for ``ticks`` to the sessions registered for them.

        NXT trade frames go out only for steps where NXT printed; KRX and 통합 trade frames
        and every book frame go out each step.
        """
        if not self.sessions:
            return
        wanted = {
            (tr, key) for s in self.sessions for tr, key in s.subscriptions if tr in MARKET_TRS
        }
        if not wanted:
            return
        by_symbol: dict[str, list[Tick]] = {}
        for tick in ticks:
            by_symbol.setdefault(tick.symbol, []).append(tick)
        day = self.exchange.clock.now().strftime("%Y%m%d")
        opts = self.options
        frames: dict[tuple[str, str], str] = {}
        now = self.exchange.clock.market_now()
        cls_of = {
            venue: market_cls_code(self.exchange.calendar.session(now, venue))
            for venue in (KRX, NXT)
        }
        for tr, symbol in wanted:
            group = by_symbol.get(symbol)
            if not group:
                continue
            kind, venue = MARKET_TRS[tr]
            cls = cls_of[NXT if venue == NXT else KRX]
            if kind == "trade":
                printed = [t for t in group if venue != NXT or t.nxt_qty]
                records = [
                    trade_record(
                        t, fields=opts.trade_fields, business_date=day, venue=venue,
                        market_cls=cls,
                    )
                    for t in printed
                ]  # fmt: skip
            else:
                records = [
                    book_record(t, venue=venue, layout=opts.book_layout, market_cls=cls)
                    for t in group
                ]
            if records:
                frames[(tr, symbol)] = data_frame(tr, records)
        for session_ in self.sessions:
            for entry in session_.subscriptions:
                frame = frames.get(entry)
                if frame is not None:
                    session_.enqueue(frame, data=True, droppable=True)

    def publish_notice(self, event: NoticeEvent) -> None:
        """Send an encrypted execution notice to sessions registered with the HTS id."""
        entry = (self.notice_tr, self.options.hts_id)
        for session in self.sessions:
            if entry not in session.subscriptions:
                continue
            record = notice_record(
                event, hts_id=self.options.hts_id, account_id=self.options.account_id,
                account_name=self.options.account_name,
                stock_name=self.exchange.instrument(event.order.symbol).name,
                fields=self.options.notice_fields,
            )  # fmt: skip
            payload = encrypt("^".join(record), key=session.key, iv=session.iv)
            session.enqueue(data_frame(self.notice_tr, [record], encrypted=payload), data=True)
            self.stats.notices_sent += 1


class _SessionOverError(Exception):
    """Internal: ends a session's task group."""
