"""``KISSimulator``: a local KIS (REST + WebSocket + exchange + faults) on one port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import string
from collections.abc import AsyncIterator, Generator, Iterable, Mapping
from datetime import date, datetime
from typing import Any, Literal, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame
from websockets.http11 import Request as Request_

from kis_async.config import KISConfig, Mode
from kis_async.sim.exchange import DEFAULT_SYMBOLS, SimClock, SimExchange
from kis_async.sim.faults import SimFaults, SimStats
from kis_async.sim.options import LAYOUTS, SimOptions
from kis_async.sim.replay import Replayer, load_market, replay_symbols
from kis_async.sim.rest import RestApi
from kis_async.sim.venues import SimCalendar
from kis_async.sim.ws import PONG_EXTENSION, WsHub

__all__ = ["KISSimulator"]

logger = logging.getLogger("kis_async.sim")

#: Host name used in :meth:`KISSimulator.config` when the simulator is not served (for
#: ``httpx.ASGITransport`` in-process use).
IN_PROCESS_HOST = "kis-sim.local"
#: Data frames a session may queue before the fast ticker waits for it to drain.
_BACKLOG_HIGH_WATER = 2_000


async def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket bound to ``host:port`` (0 picks a free port)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _DroppedResponseFilter(logging.Filter):
    """Hides uvicorn's error line for the response the drop-order-response fault cuts off on
    purpose (the fault's whole point is an incomplete response)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


class _PongAwareProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, reporting every control pong to the ASGI app.

    ASGI has no pong event, yet KIS's official sample answers PINGPONG with a control pong
    (protocol doc §6.4): the session registers a callback in the scope extension
    :data:`~kis_async.sim.ws.PONG_EXTENSION` and this protocol calls it.
    """

    def handle_connect(self, event: Request_) -> None:
        super().handle_connect(event)
        if getattr(self, "scope", None) is not None:
            self.scope["extensions"] = {**(self.scope.get("extensions") or {}), PONG_EXTENSION: {}}

    def handle_pong(self, event: Frame) -> None:
        super().handle_pong(event)
        scope = getattr(self, "scope", None)
        hook = (scope or {}).get("extensions", {}).get(PONG_EXTENSION, {})
        callback = hook.get("callback") if isinstance(hook, dict) else None
        if callback is not None:
            callback(bytes(event.data))


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves the host application's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class KISSimulator:
    """A faithful local KIS: the REST and WebSocket wire protocol of protocol doc §2-§7, a
    simulated KRX exchange with an account, and fault injection.

    Args:
        seed: seeds prices, books, credentials and session keys; same seed, same market.
        mode: :attr:`Mode.PAPER` (paper TR ids, 2 req/s, H0STCNI9) or :attr:`Mode.LIVE`.
        app_key: the app key accepted (default: 36 chars derived from ``seed``).
        app_secret: the app secret accepted (default: 180 chars derived from ``seed``).
        account_id: the 10-digit account (default derived from ``seed``).
        hts_id: the HTS id execution notices are keyed by.
        account_name: ACNT_NAME in execution notices.
        starting_cash: the deposit at start, in won.
        starting_holdings: symbol -> shares held at start (at the reference price).
        rate_limit: enforce the per-app-key REST rate limit (EGW00201).
        requests_per_second: the limit over any 1-s window; default 20 live / 2 paper.
        token_lifetime: access-token lifetime in seconds (KIS: 24 h).
        token_reuse_window: tokenP returns the same token within this many seconds (KIS: 6 h).
        token_issue_interval: a tokenP call within this many seconds of the last answered one
            gets HTTP 403 EGW00133 (KIS: 60 s); 0 disables.
        approval_key_lifetime: approval-key lifetime in seconds (KIS: 24 h).
        quote_interval: seconds between market steps while served; each step sends H0STCNT0
            and H0STASP0 frames to registered sessions. ``0`` runs as fast as possible (only
            while someone is registered for quotes); ``None`` moves the market only when
            ``exchange.step()`` is called.
        records_per_frame: market steps per tick, sent as one frame with that many records.
        layout: the record-layout profile of the real-time feeds (see :data:`LAYOUTS`):
            ``"current"`` (default; 47-field trades, the widths kis-trader probed live for
            books, H0STASP0 63, 26-field notices) or ``"legacy"`` (what KIS sent before 2026
            and older clients such as python-kis parse: 46-field trades, the official
            samples' books, H0STASP0 59, 23-field notices). The three finer knobs below
            override single parts of the profile.
        trade_fields: H0STCNT0 / H0NXCNT0 / H0UNCNT0 layout, 47 fields (current) or
            46 (before 2026-09-14); default from ``layout``.
        book_layout: order-book layouts (protocol doc §12 [CONFLICT]): ``"kt"`` (default; the
            widths kis-trader probed live: H0STASP0 63, H0NXASP0 62, H0UNASP0 66) or
            ``"ota"`` (the official samples: 59, 65, 65); default from ``layout``.
        notice_fields: execution-notice layout, 26 fields or the legacy 23; default from
            ``layout``.
        pingpong_interval: seconds between PINGPONG frames.
        pingpong_timeout: the grace: a session that answers no PINGPONG (neither by a text
            echo nor by a control-frame pong) for this many seconds after the oldest unanswered
            one is closed (default 100 s, the closing time community reports give for KIS,
            protocol doc §6.4). Checked when the next PINGPONG is due, so the close comes at
            most one ``pingpong_interval`` later.
        max_registrations: real-time registrations per session (KIS: 41; the next one gets
            OPSP0008).
        daily_ccld_page_size: rows per inquire-daily-ccld page (default 15 paper / 100 live).
        balance_page_size: rows per inquire-balance page (default 20 paper / 50 live).
        rvsecncl_page_size: rows per inquire-psbl-rvsecncl page (default 50).
        start_time: pin the simulated clock's starting instant (default: now).
        symbols: (code, name, reference price) triples (default: 15 real KRX stocks).
        clock: the market clock sessions are judged by: None (default) starts on a trading
            day at 10:00 KST (the latest one on or before today), so order types, sessions
            and feeds behave alike at any wall-clock hour; a datetime starts there;
            ``"wall"`` follows the wall clock. It moves on with time and :meth:`advance`;
            :meth:`set_time` jumps it. Order, fill and token times stay on the wall clock.
        holidays: extra weekday holidays of the simulated calendar (on top of weekends and
            :data:`kis_async.calendar.BUILTIN_HOLIDAYS`), answered by chk-holiday.
        replay: a session recording (``broker.record(path)``, ``kis-async record``) whose
            trades and books are served again instead of the random walk, verbatim and in
            order, with orders matching against the recorded books
            (:mod:`kis_async.sim.replay`). The listed symbols are the recording's.
        replay_speed: replay pace, a multiple of the recorded pace, starting when a session
            first registers for a recorded symbol; ``None`` serves one frame per
            :meth:`Replayer.step` (``sim.replay.step()`` or ``POST /__sim__/step``).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        mode: Mode | str = Mode.PAPER,
        app_key: str | None = None,
        app_secret: str | None = None,
        account_id: str | None = None,
        hts_id: str = "kissim01",
        account_name: str = "김모의",
        starting_cash: int = 100_000_000,
        starting_holdings: Mapping[str, int] | None = None,
        rate_limit: bool = True,
        requests_per_second: int | None = None,
        token_lifetime: float = 86_400.0,
        token_reuse_window: float = 6 * 3_600.0,
        token_issue_interval: float = 60.0,
        approval_key_lifetime: float = 86_400.0,
        quote_interval: float | None = 0.2,
        records_per_frame: int = 1,
        layout: Literal["current", "legacy"] = "current",
        trade_fields: Literal[46, 47] | None = None,
        notice_fields: Literal[23, 26] | None = None,
        pingpong_interval: float = 10.0,
        pingpong_timeout: float = 100.0,
        max_registrations: int = 41,
        daily_ccld_page_size: int | None = None,
        balance_page_size: int | None = None,
        rvsecncl_page_size: int = 50,
        start_time: datetime | None = None,
        symbols: tuple[tuple[str, str, int], ...] = DEFAULT_SYMBOLS,
        clock: datetime | Literal["wall"] | None = None,
        book_layout: Literal["kt", "ota"] | None = None,
        holidays: Iterable[date] = (),
        replay: str | os.PathLike[str] | None = None,
        replay_speed: float | None = 1.0,
    ) -> None:
        mode = Mode(str(mode).lower())
        paper = mode is Mode.PAPER
        rng = random.Random(seed)
        alnum = string.ascii_letters + string.digits
        if layout not in LAYOUTS:
            raise ValueError("layout must be 'current' or 'legacy'")
        profile = LAYOUTS[layout]
        trade_fields = profile.trade_fields if trade_fields is None else trade_fields
        notice_fields = profile.notice_fields if notice_fields is None else notice_fields
        book_layout = profile.book_layout if book_layout is None else book_layout
        if trade_fields not in (46, 47):
            raise ValueError("trade_fields must be 46 or 47")
        if notice_fields not in (23, 26):
            raise ValueError("notice_fields must be 23 or 26")
        if book_layout not in ("kt", "ota"):
            raise ValueError("book_layout must be 'kt' or 'ota'")
        if records_per_frame < 1:
            raise ValueError("records_per_frame must be at least 1")
        if quote_interval is not None and quote_interval < 0:
            raise ValueError("quote_interval must be >= 0 or None")
        if replay_speed is not None and not replay_speed > 0:
            raise ValueError("replay_speed must be > 0 or None")
        recorded = load_market(replay) if replay is not None else None
        if recorded is not None:
            symbols = replay_symbols(recorded)
        self.options = SimOptions(
            seed=seed,
            mode=mode,
            app_key=app_key or "PS" + "".join(rng.choice(alnum) for _ in range(34)),
            app_secret=app_secret or "".join(rng.choice(alnum + "+/") for _ in range(180)),
            account_id=(account_id or f"50{rng.randrange(10**6):06d}01").replace("-", ""),
            hts_id=hts_id,
            account_name=account_name,
            starting_cash=starting_cash,
            rate_limit=rate_limit,
            requests_per_second=requests_per_second or (2 if paper else 20),
            token_lifetime=token_lifetime,
            token_reuse_window=token_reuse_window,
            token_issue_interval=token_issue_interval,
            approval_key_lifetime=approval_key_lifetime,
            quote_interval=quote_interval,
            records_per_frame=records_per_frame,
            layout=layout,
            trade_fields=trade_fields,
            book_layout=book_layout,
            notice_fields=notice_fields,
            pingpong_interval=pingpong_interval,
            pingpong_timeout=pingpong_timeout,
            max_registrations=max_registrations,
            daily_ccld_page_size=daily_ccld_page_size or (15 if paper else 100),
            balance_page_size=balance_page_size or (20 if paper else 50),
            rvsecncl_page_size=rvsecncl_page_size,
            start_time=start_time,
        )
        self.clock = SimClock(start_time, market=clock)
        self.calendar = SimCalendar(holidays=set(holidays))
        self.exchange = SimExchange(
            seed=seed,
            clock=self.clock,
            account_id=self.options.account_id,
            branch_no="00950" if paper else "06010",
            starting_cash=starting_cash,
            starting_holdings=starting_holdings,
            symbols=symbols,
            calendar=self.calendar,
        )
        self.faults = SimFaults(self.clock)
        self.stats = SimStats()
        self.rest = RestApi(
            options=self.options, exchange=self.exchange, faults=self.faults, stats=self.stats
        )
        self.hub = WsHub(
            options=self.options, exchange=self.exchange, faults=self.faults, stats=self.stats,
            rest=self.rest,
        )  # fmt: skip
        #: The replay of a recording (``replay=``), None for the random-walk market.
        self.replay = (
            Replayer(recorded, exchange=self.exchange, hub=self.hub)
            if recorded is not None
            else None
        )
        self._replay_speed = replay_speed
        self.app = Starlette(
            routes=[
                Route("/__sim__/{command:path}", self._admin, methods=["GET", "POST"]),
                Route("/{path:path}", self.rest, methods=["GET", "POST", "PUT", "DELETE"]),
                WebSocketRoute("/{path:path}", self.hub.endpoint),
            ]
        )
        self.host: str | None = None
        self.port: int | None = None
        self._serving = False

    # -- market clock ------------------------------------------------------------------------

    def market_now(self) -> datetime:
        """The simulated market time (aware, KST) that sessions are judged by."""
        return self.clock.market_now()

    def set_time(self, when: datetime) -> None:
        """Jump the market clock to ``when`` (naive means KST); it moves on from there.

        Example: ``sim.set_time(datetime(2026, 12, 1, 17, 0, tzinfo=KST))`` puts KRX in its
        after-market session and NXT in its after-market.
        """
        self.clock.set_market_time(when)

    # -- credentials and URLs ----------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """Paper or live."""
        return self.options.mode

    @property
    def app_key(self) -> str:
        """The accepted app key."""
        return self.options.app_key

    @property
    def app_secret(self) -> str:
        """The accepted app secret."""
        return self.options.app_secret

    @property
    def account_id(self) -> str:
        """The simulated account, 10 digits."""
        return self.options.account_id

    @property
    def hts_id(self) -> str:
        """The HTS id execution notices are keyed by."""
        return self.options.hts_id

    @property
    def rest_url(self) -> str:
        """``http://127.0.0.1:<port>`` while served (``http://kis-sim.local`` otherwise)."""
        if self.port is None:
            return f"http://{IN_PROCESS_HOST}"
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>/tryitout`` while served."""
        if self.port is None:
            return f"ws://{IN_PROCESS_HOST}/tryitout"
        return f"ws://{self.host}:{self.port}/tryitout"

    def link(self, other: KISSimulator) -> None:
        """Link this simulator with ``other`` of the other mode, as KIS links its paper and
        live environments: either one's ``/oauth2/Approval`` issues approval keys for both
        app keys, and each WebSocket server takes the keys of its own app key.

        A client that needs both environments (python-kis in paper mode asks the paper host
        for its live socket's key with the live app key) then works unmodified; see
        ``kis-async sim --with-live``. Only the approval keys are shared: tokens, accounts
        and markets stay apart.

        Raises:
            ValueError: ``other`` has the same mode or the same app key.
            RuntimeError: either simulator is already linked.
        """
        if other.mode is self.mode:
            raise ValueError("link a paper simulator with a live one")
        if other.app_key == self.app_key:
            raise ValueError("linked simulators need different app keys (seeds or app_key=)")
        if self.rest.desk.linked or other.rest.desk.linked:
            raise RuntimeError("a simulator links with one other simulator only")
        self.rest.desk.absorb(other.rest.desk)
        other.rest.desk = self.rest.desk

    def config(self, **overrides: Any) -> KISConfig:
        """A :class:`KISConfig` with credentials this simulator accepts and its URLs.

        ``token_cache_dir`` is None (no disk cache) unless overridden; ``hts_id`` is set.
        """
        values: dict[str, Any] = {
            "app_key": self.app_key,
            "app_secret": self.app_secret,
            "account_id": self.account_id,
            "hts_id": self.hts_id,
            "mode": self.mode,
            "rest_url": self.rest_url,
            "ws_url": self.ws_url,
            "token_cache_dir": None,
        }
        values.update(overrides)
        return KISConfig(**values)

    def env_lines(self) -> list[str]:
        """``KIS_*=value`` lines that point a bot at this simulator."""
        return [
            f"KIS_APP_KEY={self.app_key}",
            f"KIS_APP_SECRET={self.app_secret}",
            f"KIS_ACCOUNT_ID={self.account_id}",
            f"KIS_HTS_ID={self.hts_id}",
            f"KIS_MODE={self.mode.value}",
            f"KIS_REST_URL={self.rest_url}",
            f"KIS_WS_URL={self.ws_url}",
        ]

    def __repr__(self) -> str:
        where = self.rest_url if self.port is not None else "not served"
        return f"KISSimulator(seed={self.options.seed}, mode={self.mode.value!r}, {where})"

    # -- serving -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Self]:
        """Serve REST and WebSocket on ``host:port`` (0 picks a free port) until the block
        ends; yields the simulator itself with :attr:`rest_url`/:attr:`ws_url` set.

        Raises:
            RuntimeError: already serving, or the server failed to start.
            OSError: ``host:port`` cannot be bound (in use, not permitted).
        """
        if self._serving:
            raise RuntimeError("this simulator is already being served")
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            ws=_PongAwareProtocol,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            ws_ping_interval=None,
            timeout_graceful_shutdown=2,
        )
        # Bind here, not in uvicorn: a bind failure is then a plain OSError for the caller
        # instead of uvicorn's sys.exit() inside a task.
        listener = await _bind(host, port)
        self._serving = True
        server = _QuietServer(config)
        log_filter = _DroppedResponseFilter()
        logging.getLogger("uvicorn.error").addFilter(log_filter)
        server_task = asyncio.create_task(server.serve([listener]), name="kis-sim-server")
        ticker: asyncio.Task[None] | None = None
        try:
            while not server.started:
                if server_task.done():
                    server_task.result()
                    raise RuntimeError("the simulator server stopped during start-up")
                await asyncio.sleep(0.005)
            self.host = host
            self.port = int(listener.getsockname()[1])
            if self.replay is not None:
                if self._replay_speed is not None:
                    ticker = asyncio.create_task(
                        self.replay.run(self._replay_speed), name="kis-sim-replay"
                    )
            elif self.options.quote_interval is not None:
                ticker = asyncio.create_task(self._ticker(), name="kis-sim-ticker")
            logger.info("simulator serving on %s", self.rest_url)
            yield self
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            self.hub.drop_all()
            for _ in range(200):
                if not self.hub.sessions:
                    break
                await asyncio.sleep(0.005)
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await server_task
            logging.getLogger("uvicorn.error").removeFilter(log_filter)
            listener.close()
            self.port = None
            self.host = None
            self._serving = False

    async def _ticker(self) -> None:
        interval = self.options.quote_interval or 0.0
        count = self.options.records_per_frame
        while True:
            if interval > 0:
                await asyncio.sleep(interval)
                self.exchange.step(count)
                continue
            # As fast as possible: step only the symbols someone is registered for, and let
            # slow readers drain first. Polls conditions other tasks change; 1 ms is plenty.
            await asyncio.sleep(0)
            while self.hub.backlog > _BACKLOG_HIGH_WATER or not self.hub.quote_symbols:  # noqa: ASYNC110
                await asyncio.sleep(0.001 if self.hub.sessions else 0.05)
            self.exchange.step(count, symbols=self.hub.quote_symbols)

    # -- admin route -------------------------------------------------------------------------

    async def _admin(self, request: Request) -> Response:
        command = request.path_params["command"]
        payload: dict[str, Any] = {}
        if request.method == "POST":
            raw = await request.body()
            if raw:
                try:
                    payload = dict(await request.json())
                except (ValueError, TypeError):
                    return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        try:
            result = self._admin_command(command, payload)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(result)

    def _admin_command(self, command: str, payload: dict[str, Any]) -> Any:
        ex = self.exchange
        if command == "stats":
            return self.stats.as_dict()
        if command == "faults":
            return {"ok": True, "result": self.faults.apply(payload)}
        if command == "state":
            return {
                "cash": ex.cash,
                "orderable_cash": ex.orderable_cash,
                "holdings": {
                    s: {"qty": h.qty, "avg_price": h.avg_price} for s, h in ex.holdings.items()
                },
                "prices": {s: ex.price(s) for s in ex.symbols},
                "open_orders": len(ex.open_orders),
                "orders": len(ex.orders),
                "fills": len(ex.fills),
                "steps": ex.steps,
            }
        if command == "orders":
            return [
                {
                    "odno": o.order_id,
                    "orgn_odno": o.original_order_id,
                    "kind": o.kind,
                    "symbol": o.symbol,
                    "side": o.side,
                    "order_type": o.order_type,
                    "qty": o.qty,
                    "price": o.price,
                    "filled_qty": o.filled_qty,
                    "remaining_qty": o.remaining_qty,
                    "cancelled_qty": o.cancelled_qty,
                    "rejected_qty": o.rejected_qty,
                    "exchange": o.placed_on,
                    "venue": o.venue,
                    "stop_price": o.stop_price,
                }
                for o in ex.orders
            ]
        if command == "step":
            if self.replay is not None:
                served = self.replay.step(int(payload.get("count", 1)))
                return {"frames": served, "remaining": self.replay.remaining}
            return {"ticks": len(ex.step(int(payload.get("count", 1))))}
        if command == "price":
            tick = ex.set_price(str(payload["symbol"]), int(payload["price"]))
            return {"symbol": tick.symbol, "price": tick.price}
        if command == "advance":
            ex.advance(float(payload["seconds"]))
            return {"now": self.clock.now().isoformat()}
        if command == "time":
            if "at" in payload:
                self.set_time(datetime.fromisoformat(str(payload["at"])))
            return {
                "market_time": self.market_now().isoformat(),
                "sessions": {venue: ex.session(venue) for venue in ("KRX", "NXT", "SOR")},
            }
        raise KeyError(f"unknown admin command {command!r}")
