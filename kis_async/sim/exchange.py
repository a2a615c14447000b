"""The simulated KRX market and the simulated account.

Everything here is synchronous and deterministic for a given seed: the market moves only when
:meth:`SimExchange.step` runs (the served simulator calls it from its ticker task), and user
orders match against the book at once. The REST and WebSocket layers call into this module;
tests may call it directly.

Prices and money are whole won (``int``), as on the KRX; the wire layers turn them into strings.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from kis_async.models.common import tick_size
from kis_async.sim.clock import SimClock
from kis_async.sim.invariants import ledger_problems
from kis_async.sim.records import (
    BOOK_DEPTH,
    DEFAULT_SYMBOLS,
    NXT_THINNING,
    NXT_TRADE_CHANCE,
    BookLevel,
    Fill,
    Holding,
    Instrument,
    NoticeEvent,
    NoticeKind,
    SimInvariantError,
    SimOrder,
    SimRejectionError,
    Tick,
)
from kis_async.sim.rules import (
    _stop_triggered,
    _tick_down,
    _tick_up,
    _venue_takes,
    check_terms,
    order_limit,
)
from kis_async.sim.venues import (
    FOK_TYPES,
    IOC_TYPES,
    KRX,
    NXT,
    ORDER_TYPE_NAMES,
    SOR,
    SimCalendar,
    route_sor,
)

# SimClock lives in kis_async.sim.clock; it is re-exported here for older imports.

__all__ = [
    "DEFAULT_SYMBOLS",
    "ORDER_TYPE_NAMES",
    "BookLevel",
    "Fill",
    "Holding",
    "Instrument",
    "NoticeEvent",
    "NoticeKind",
    "SimClock",
    "SimExchange",
    "SimInvariantError",
    "SimOrder",
    "SimRejectionError",
    "Tick",
]


class SimExchange:
    """The simulated market (prices, books) and the simulated account (cash, holdings, orders).

    Args:
        seed: seeds the price process and the book depth.
        clock: the simulated clock.
        account_id: the 10-digit account the ledger belongs to.
        branch_no: KRX_FWDG_ORD_ORGNO given to every order.
        starting_cash: the deposit at start, in won.
        starting_holdings: symbol -> quantity held at start (bought at the reference price).
        symbols: (code, name, price) triples; defaults to :data:`DEFAULT_SYMBOLS`.
        calendar: the trading calendar sessions are judged by (default: weekends and the
            built-in holiday list).
    """

    def __init__(
        self,
        *,
        seed: int,
        clock: SimClock,
        account_id: str = "5012345601",
        branch_no: str = "00950",
        starting_cash: int = 100_000_000,
        starting_holdings: Mapping[str, int] | None = None,
        symbols: Iterable[tuple[str, str, int]] = DEFAULT_SYMBOLS,
        calendar: SimCalendar | None = None,
    ) -> None:
        self.clock = clock
        self.calendar = calendar if calendar is not None else SimCalendar()
        self.account_id = account_id
        self.branch_no = branch_no
        self._rng = random.Random(seed)
        # NXT moves on its own random stream, so KRX's prices and books are the same for a
        # seed as before NXT existed.
        self._nxt_rng = random.Random(seed ^ 0x4E5854)
        self._instruments: dict[str, Instrument] = {}
        for code, name, reference in symbols:
            price = reference - reference % tick_size(reference)
            self._instruments[code] = Instrument(
                symbol=code, name=name, prev_close=price, price=price, open=price,
                high=price, low=price,
            )  # fmt: skip
        for inst in self._instruments.values():
            self._rebuild_book(inst)
        for inst in self._instruments.values():
            inst.nxt_price = inst.price
            self._rebuild_nxt_book(inst)
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self.starting_holdings: dict[str, int] = dict(starting_holdings or {})
        self._holdings: dict[str, Holding] = {}
        for code, qty in self.starting_holdings.items():
            inst = self._instrument(code)
            self._holdings[code] = Holding(code, qty=qty, cost=qty * inst.prev_close)
        self._orders: dict[str, SimOrder] = {}
        self._fills: list[Fill] = []
        self._next_order_no = 10_000 + random.Random(seed ^ 0x5EED).randrange(90_000) * 10
        self._steps = 0
        self._notice_listeners: list[Callable[[NoticeEvent], None]] = []
        self._tick_listeners: list[Callable[[list[Tick]], None]] = []

    # -- inspection --------------------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        """The listed codes, in listing order."""
        return list(self._instruments)

    @property
    def steps(self) -> int:
        """How many market steps have run."""
        return self._steps

    def instrument(self, symbol: str) -> Instrument:
        """The instrument for ``symbol`` (KeyError when not listed)."""
        return self._instrument(symbol)

    def has_symbol(self, symbol: str) -> bool:
        """True when ``symbol`` is listed."""
        return symbol in self._instruments

    def price(self, symbol: str) -> int:
        """The last trade price of ``symbol``."""
        return self._instrument(symbol).price

    def book(self, symbol: str, venue: str = KRX) -> tuple[list[BookLevel], list[BookLevel]]:
        """(asks ascending, bids descending) of ``venue`` (KRX or NXT), 10 levels each."""
        asks, bids = self._instrument(symbol).venue_book(venue)
        return list(asks), list(bids)

    def session(self, venue: str = KRX) -> str:
        """The session of ``venue`` now on the market clock (a :class:`Session` value)."""
        return self.calendar.session(self.clock.market_now(), venue).value

    @property
    def orders(self) -> list[SimOrder]:
        """Today's order ledger, oldest first (modify/cancel orders included)."""
        return list(self._orders.values())

    def order(self, order_id: str) -> SimOrder:
        """One ledger entry by ODNO (KeyError when unknown)."""
        return self._orders[order_id]

    @property
    def open_orders(self) -> list[SimOrder]:
        """Ledger entries with quantity that can still fill."""
        return [o for o in self._orders.values() if o.is_open]

    @property
    def fills(self) -> list[Fill]:
        """Every execution, oldest first."""
        return list(self._fills)

    @property
    def holdings(self) -> dict[str, Holding]:
        """Positions by symbol (rows traded today stay with qty 0, as KIS shows them)."""
        return dict(self._holdings)

    def holding_qty(self, symbol: str) -> int:
        """Shares held of ``symbol``."""
        held = self._holdings.get(symbol)
        return held.qty if held else 0

    @property
    def reserved_cash(self) -> int:
        """Cash held back for open buy orders."""
        return sum(o.remaining_qty * o.reserve_price for o in self._orders.values() if o.is_buy)

    @property
    def orderable_cash(self) -> int:
        """Cash not reserved by open buys."""
        return self.cash - self.reserved_cash

    def orderable_qty(self, symbol: str) -> int:
        """Shares of ``symbol`` not committed to open sells."""
        committed = sum(
            o.remaining_qty for o in self._orders.values() if not o.is_buy and o.symbol == symbol
        )
        return self.holding_qty(symbol) - committed

    # -- listeners ---------------------------------------------------------------------------

    def add_notice_listener(self, fn: Callable[[NoticeEvent], None]) -> Callable[[], None]:
        """Call ``fn`` for every order event; returns a function that removes it."""
        self._notice_listeners.append(fn)
        return lambda: self._notice_listeners.remove(fn)

    def add_tick_listener(self, fn: Callable[[list[Tick]], None]) -> Callable[[], None]:
        """Call ``fn`` with the ticks of every :meth:`step` call; returns a remover."""
        self._tick_listeners.append(fn)
        return lambda: self._tick_listeners.remove(fn)

    # -- market ------------------------------------------------------------------------------

    def step(self, count: int = 1, *, symbols: Iterable[str] | None = None) -> list[Tick]:
        """Move every symbol (or only ``symbols``) ``count`` steps, one trade each, and match
        resting orders.

        Listeners receive all ticks of the call at once, so ``count > 1`` becomes multi-record
        real-time frames.
        """
        chosen = (
            list(self._instruments.values())
            if symbols is None
            else [self._instrument(s) for s in symbols]
        )
        ticks: list[Tick] = []
        for _ in range(count):
            self._steps += 1
            for inst in chosen:
                ticks.append(self._step_one(inst))
        for fn in list(self._tick_listeners):
            fn(ticks)
        return ticks

    def set_price(self, symbol: str, price: int, *, qty: int = 1) -> Tick:
        """Force a trade at ``price``: the book re-centres there and resting orders it crosses
        fill. ``price`` must be on the tick grid and inside the daily band."""
        inst = self._instrument(symbol)
        if price % tick_size(price) or not inst.lower_limit <= price <= inst.upper_limit:
            raise ValueError("price must be on the tick grid and inside the daily price band")
        buyer = price >= inst.price
        tick = self._with_nxt(self._trade(inst, price, qty, buyer_initiated=buyer), inst, 0)
        inst.last_venue = KRX
        for fn in list(self._tick_listeners):
            fn([tick])
        return tick

    def apply_market(
        self, symbol: str, *, venue: str = KRX, price: int | None = None, qty: int = 0,
        asks: Iterable[BookLevel] | None = None, bids: Iterable[BookLevel] | None = None,
    ) -> None:  # fmt: skip
        """Set the market from outside instead of the random walk (session replay): a trade
        print at ``price`` (``qty`` shares) and/or the book of ``venue`` (KRX or NXT), then
        match resting orders against it. No tick listener is called (the caller sends the
        recorded frames itself)."""
        inst = self._instrument(symbol)
        if asks is not None or bids is not None:
            book_asks, book_bids = inst.venue_book(venue)
            new_asks = list(asks) if asks is not None else book_asks
            new_bids = list(bids) if bids is not None else book_bids
            if venue == NXT:
                inst.nxt_asks, inst.nxt_bids = new_asks, new_bids
            else:
                inst.asks, inst.bids = new_asks, new_bids
        if price is not None:
            if venue == NXT:
                inst.nxt_price = price
                inst.nxt_volume += qty
                inst.nxt_turnover += qty * price
                inst.last_venue = NXT
            else:
                self._trade(inst, price, qty, buyer_initiated=price >= inst.price, rebuild=False)
                inst.last_venue = KRX
                return
        self._match_resting(inst)

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward (the market itself moves only on :meth:`step`)."""
        self.clock.advance(seconds)

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments[symbol]
        except KeyError:
            raise KeyError(f"symbol {symbol!r} is not listed on the simulator") from None

    def _step_one(self, inst: Instrument) -> Tick:
        rng = self._rng
        # A one-tick random walk pulled back towards the previous close, so prices stay
        # realistic over long runs and resting orders far from the market do not fill by chance.
        drift = (inst.price - inst.prev_close) / inst.prev_close
        up = min(0.45, max(0.05, 0.3 - drift * 4))
        down = min(0.45, max(0.05, 0.3 + drift * 4))
        r = rng.random()
        price = inst.price
        if r < up:
            price = _tick_up(price)
        elif r < up + down:
            price = _tick_down(price)
        price = min(max(price, inst.lower_limit), inst.upper_limit)
        qty = rng.randint(1, 50) * (10 if price < 50_000 else 1)
        tick = self._trade(inst, price, qty, buyer_initiated=price >= inst.price)
        return self._nxt_step(inst, tick)

    def _nxt_step(self, inst: Instrument, tick: Tick) -> Tick:
        """NXT follows KRX within a tick, on its own random stream, printing now and then."""
        rng = self._nxt_rng
        if rng.random() >= NXT_TRADE_CHANCE:
            self._rebuild_nxt_book(inst)
            inst.last_venue = KRX
            return self._with_nxt(tick, inst, 0)
        shift = rng.choice((-1, 0, 0, 1))
        price = inst.price
        if shift > 0:
            price = _tick_up(price)
        elif shift < 0:
            price = _tick_down(price)
        price = min(max(price, inst.lower_limit), inst.upper_limit)
        qty = max(1, rng.randint(1, 50) * (10 if price < 50_000 else 1) // NXT_THINNING)
        inst.nxt_price = price
        inst.nxt_volume += qty
        inst.nxt_turnover += qty * price
        inst.last_venue = NXT
        self._rebuild_nxt_book(inst)
        self._match_resting(inst)
        return self._with_nxt(tick, inst, qty)

    def _with_nxt(self, tick: Tick, inst: Instrument, qty: int) -> Tick:
        return replace(
            tick, nxt_price=inst.nxt_price, nxt_qty=qty, nxt_volume=inst.nxt_volume,
            nxt_turnover=inst.nxt_turnover, nxt_asks=tuple(inst.nxt_asks),
            nxt_bids=tuple(inst.nxt_bids), market_time=self.clock.market_now(),
        )  # fmt: skip

    def _trade(
        self, inst: Instrument, price: int, qty: int, *, buyer_initiated: bool,
        rebuild: bool = True,
    ) -> Tick:  # fmt: skip
        now = self.clock.now()
        hhmmss = now.strftime("%H%M%S")
        if inst.volume == 0:
            inst.open = inst.high = inst.low = price
            inst.open_time = inst.high_time = inst.low_time = hhmmss
        inst.price = price
        if price > inst.high:
            inst.high, inst.high_time = price, hhmmss
        if price < inst.low:
            inst.low, inst.low_time = price, hhmmss
        inst.volume += qty
        inst.turnover += qty * price
        if buyer_initiated:
            inst.buy_count += 1
            inst.buy_volume += qty
        else:
            inst.sell_count += 1
            inst.sell_volume += qty
        if rebuild:
            self._rebuild_book(inst)
        self._match_resting(inst)
        return Tick(
            symbol=inst.symbol, time=now, price=price, qty=qty, buyer_initiated=buyer_initiated,
            instrument=inst, asks=tuple(inst.asks), bids=tuple(inst.bids), volume=inst.volume,
            turnover=inst.turnover, open=inst.open, high=inst.high, low=inst.low,
            sell_count=inst.sell_count, buy_count=inst.buy_count,
            sell_volume=inst.sell_volume, buy_volume=inst.buy_volume,
        )  # fmt: skip

    def _rebuild_nxt_book(self, inst: Instrument) -> None:
        """NXT's book: the same tick grid around NXT's last price, thinner than KRX's."""
        rng = self._nxt_rng
        scale = 20 if inst.nxt_price < 50_000 else 4
        asks: list[BookLevel] = []
        price = _tick_up(inst.nxt_price)
        for _ in range(BOOK_DEPTH):
            if price > inst.upper_limit:
                break
            asks.append(BookLevel(price, max(1, rng.randint(5, 400) * scale // NXT_THINNING)))
            price = _tick_up(price)
        bids: list[BookLevel] = []
        price = inst.nxt_price
        for _ in range(BOOK_DEPTH):
            if price < inst.lower_limit:
                break
            bids.append(BookLevel(price, max(1, rng.randint(5, 400) * scale // NXT_THINNING)))
            price = _tick_down(price)
        inst.nxt_asks, inst.nxt_bids = asks, bids

    def _rebuild_book(self, inst: Instrument) -> None:
        rng = self._rng
        scale = 20 if inst.price < 50_000 else 4
        asks: list[BookLevel] = []
        price = _tick_up(inst.price)
        for _ in range(BOOK_DEPTH):
            if price > inst.upper_limit:
                break
            asks.append(BookLevel(price, rng.randint(5, 400) * scale))
            price = _tick_up(price)
        bids: list[BookLevel] = []
        price = inst.price
        for _ in range(BOOK_DEPTH):
            if price < inst.lower_limit:
                break
            bids.append(BookLevel(price, rng.randint(5, 400) * scale))
            price = _tick_down(price)
        inst.asks, inst.bids = asks, bids

    # -- orders ------------------------------------------------------------------------------

    def place_order(
        self, *, symbol: str, side: str, qty: int, order_type: str, price: int,
        exchange: str = KRX, stop_price: int = 0,
    ) -> SimOrder:  # fmt: skip
        """Validate and book a new order, then match it (raises :class:`SimRejectionError`).

        Args:
            symbol: listed code.
            side: ``"01"`` sell or ``"02"`` buy.
            qty: shares, > 0.
            order_type: ORD_DVSN code.
            price: limit price for priced types; 0 for market-type orders.
            exchange: ``EXCG_ID_DVSN_CD``: KRX, NXT or SOR (routed to the better venue).
            stop_price: ``CNDT_PRIC`` of a stop-limit (22) order.
        """
        inst = self._validate_new(
            symbol, side, qty, order_type, price, exchange=exchange, stop_price=stop_price
        )
        venue = self._route(inst, side, order_type, exchange)
        order = self._new_order(symbol, side, order_type, qty, price, kind="new")
        order.placed_on, order.venue, order.stop_price = exchange, venue, stop_price
        self._book_and_match(inst, order)
        return order

    def _route(self, inst: Instrument, side: str, order_type: str, exchange: str) -> str:
        if exchange != SOR:
            return exchange
        now = self.clock.market_now()
        buy = side == "02"
        krx_asks, krx_bids = inst.venue_book(KRX)
        nxt_asks, nxt_bids = inst.venue_book(NXT)
        krx_side, nxt_side = (krx_asks, nxt_asks) if buy else (krx_bids, nxt_bids)
        return route_sor(
            buy=buy, order_type=order_type,
            krx_best=krx_side[0].price if krx_side else None,
            nxt_best=nxt_side[0].price if nxt_side else None,
            krx_open=self.calendar.takes(now, KRX, order_type),
            nxt_open=self.calendar.takes(now, NXT, order_type),
        )  # fmt: skip

    def _check_session(self, order_type: str, placed_on: str) -> None:
        now = self.clock.market_now()
        if not self.calendar.takes(now, placed_on, order_type):
            session = self.calendar.session(now, placed_on)
            raise SimRejectionError(
                "not_in_session", f"{placed_on} {session.value} does not take {order_type}"
            )

    def cancel_order(self, original_id: str, *, qty: int | None = None) -> SimOrder:
        """Cancel ``qty`` (None: all) of an order's remaining quantity; returns the cancel order
        (a new ledger entry with its own ODNO)."""
        original = self._cancellable(original_id, qty)
        amount = original.remaining_qty if qty is None else qty
        cancel = self._new_order(
            original.symbol, original.side, original.order_type, amount, 0, kind="cancel",
            original_id=original.order_id,
        )  # fmt: skip
        cancel.placed_on, cancel.venue = original.placed_on, original.venue
        original.remaining_qty -= amount
        original.cancelled_qty += amount
        cancel.cancelled_qty = amount
        self._emit(
            NoticeEvent(NoticeKind.CANCELLED, cancel, amount, original.price, cancel.created_at)
        )
        return cancel

    def modify_order(
        self, original_id: str, *, qty: int | None, order_type: str, price: int,
        stop_price: int = 0,
    ) -> SimOrder:  # fmt: skip
        """Move ``qty`` (None: all) of an order's remaining quantity to a new price/type.

        The moved shares leave the original (counted in its cancelled quantity) and become a
        new order with its own ODNO that references the original, as KIS numbers revisions.
        The revision stays on the original's venue.
        """
        original = self._cancellable(original_id, qty)
        amount = original.remaining_qty if qty is None else qty
        inst = self._validate_terms(original.symbol, order_type, price, stop_price)
        if not _venue_takes(original.placed_on, order_type):
            raise SimRejectionError("venue_type")
        self._check_session(order_type, original.placed_on)
        if original.is_buy:
            reserve = price if price > 0 else inst.upper_limit
            freed = amount * original.reserve_price
            if amount * reserve > self.orderable_cash + freed:
                raise SimRejectionError("insufficient_cash")
        original.remaining_qty -= amount
        original.cancelled_qty += amount
        revised = self._new_order(
            original.symbol, original.side, order_type, amount, price, kind="modify",
            original_id=original.order_id,
        )  # fmt: skip
        revised.placed_on, revised.venue = original.placed_on, original.venue
        revised.stop_price = stop_price
        self._book_and_match(inst, revised)
        return revised

    def _cancellable(self, original_id: str, qty: int | None) -> SimOrder:
        original = self._orders.get(original_id.strip().lstrip("0").zfill(10))
        if original is None or original.kind == "cancel" or original.remaining_qty <= 0:
            raise SimRejectionError("nothing_to_cancel")
        if qty is not None and not 0 < qty <= original.remaining_qty:
            raise SimRejectionError("nothing_to_cancel" if qty > 0 else "bad_qty")
        return original

    def _validate_terms(
        self, symbol: str, order_type: str, price: int, stop_price: int = 0
    ) -> Instrument:
        if symbol not in self._instruments:
            raise SimRejectionError("unknown_symbol")
        check_terms(order_type, price, stop_price)
        return self._instruments[symbol]

    def _validate_new(
        self, symbol: str, side: str, qty: int, order_type: str, price: int, *, exchange: str,
        stop_price: int,
    ) -> Instrument:  # fmt: skip
        if side not in ("01", "02"):
            raise SimRejectionError("bad_side")
        if qty <= 0:
            raise SimRejectionError("bad_qty")
        if exchange not in (KRX, NXT, SOR):
            raise SimRejectionError("bad_exchange")
        inst = self._validate_terms(symbol, order_type, price, stop_price)
        if not _venue_takes(exchange, order_type):
            raise SimRejectionError("venue_type")
        self._check_session(order_type, exchange)
        if side == "02":
            reserve = price if price > 0 else inst.upper_limit
            if qty * reserve > self.orderable_cash:
                raise SimRejectionError("insufficient_cash")
        elif qty > self.orderable_qty(symbol):
            raise SimRejectionError("insufficient_holdings")
        return inst

    def _new_order(
        self, symbol: str, side: str, order_type: str, qty: int, price: int, *, kind: str,
        original_id: str = "",
    ) -> SimOrder:  # fmt: skip
        self._next_order_no += 1
        order_id = f"{self._next_order_no:010d}"
        order = SimOrder(
            order_id=order_id, branch_no=self.branch_no, symbol=symbol, side=side,
            order_type=order_type, qty=qty, price=price, created_at=self.clock.now(),
            original_order_id=original_id, kind=kind,
        )  # fmt: skip
        self._orders[order_id] = order
        return order

    def _book_and_match(self, inst: Instrument, order: SimOrder) -> None:
        now = order.created_at
        kind = NoticeKind.MODIFIED if order.kind == "modify" else NoticeKind.ACCEPTED
        if order.price and not (inst.lower_limit <= order.price <= inst.upper_limit):
            # Accepted by the gateway, refused by the exchange: a rejection notice follows and
            # the ledger shows the quantity as rejected (the simulator's choice of where the
            # price-band check happens).
            order.rejected_qty = order.qty
            self._emit(NoticeEvent(kind, order, order.qty, order.price, now))
            self._emit(NoticeEvent(NoticeKind.REJECTED, order, order.qty, order.price, now))
            return
        order.remaining_qty = order.qty
        code = order.order_type
        order.limit = order_limit(inst, order)
        order.reserve_price = (
            order.limit if order.limit is not None and order.price else inst.upper_limit
        ) if order.is_buy else 0  # fmt: skip
        self._emit(NoticeEvent(kind, order, order.qty, order.price, now))
        if code == "22":
            last = inst.price if order.venue == KRX else inst.nxt_price
            order.armed = _stop_triggered(order, last)
            if not order.armed:
                return
        if code in FOK_TYPES and self._available(inst, order) < order.qty:
            self._auto_cancel(order)
            return
        self._match(inst, order, resting=False)
        if code in IOC_TYPES or code in FOK_TYPES:
            self._auto_cancel(order)

    def _auto_cancel(self, order: SimOrder) -> None:
        if order.remaining_qty <= 0:
            return
        amount = order.remaining_qty
        order.cancelled_qty += amount
        order.remaining_qty = 0
        self._emit(
            NoticeEvent(NoticeKind.CANCELLED, order, amount, order.price, self.clock.now(), True)
        )

    def _opposite(self, inst: Instrument, order: SimOrder) -> list[BookLevel]:
        asks, bids = inst.venue_book(order.venue)
        return asks if order.is_buy else bids

    def _crosses(self, order: SimOrder, price: int) -> bool:
        if order.limit is None:
            return True
        return price <= order.limit if order.is_buy else price >= order.limit

    def _available(self, inst: Instrument, order: SimOrder) -> int:
        return sum(lv.qty for lv in self._opposite(inst, order) if self._crosses(order, lv.price))

    def _match(self, inst: Instrument, order: SimOrder, *, resting: bool) -> None:
        """Fill ``order`` against the opposite side of the book, consuming depth.

        An arriving order takes each level at the level's price; a resting limit order that
        the market moved through fills at its own limit price, as it would on the exchange.
        """
        levels = self._opposite(inst, order)
        index = 0
        while order.remaining_qty > 0 and index < len(levels):
            level = levels[index]
            if not self._crosses(order, level.price):
                break
            take = min(order.remaining_qty, level.qty)
            fill_price = order.limit if resting and order.limit is not None else level.price
            self._fill(inst, order, take, fill_price)
            if take == level.qty:
                levels.pop(index)
            else:
                levels[index] = BookLevel(level.price, level.qty - take)
                index += 1

    def _match_resting(self, inst: Instrument) -> None:
        for order in list(self._orders.values()):
            if not order.is_open or order.symbol != inst.symbol:
                continue
            if not order.armed:
                last = inst.price if order.venue == KRX else inst.nxt_price
                order.armed = _stop_triggered(order, last)
                if not order.armed:
                    continue
            self._match(inst, order, resting=True)

    def _fill(self, inst: Instrument, order: SimOrder, qty: int, price: int) -> None:
        now = self.clock.now()
        amount = qty * price
        order.filled_qty += qty
        order.filled_amount += amount
        order.remaining_qty -= qty
        held = self._holdings.setdefault(inst.symbol, Holding(inst.symbol))
        if order.is_buy:
            self.cash -= amount
            held.qty += qty
            held.cost += amount
            held.bought_today += qty
        else:
            self.cash += amount
            if qty == held.qty:
                held.cost = 0
            else:
                held.cost -= held.cost * qty // held.qty
            held.qty -= qty
            held.sold_today += qty
        self._fills.append(Fill(order.order_id, inst.symbol, order.side, qty, price, now))
        self._emit(NoticeEvent(NoticeKind.FILLED, order, qty, price, now))

    def _emit(self, event: NoticeEvent) -> None:
        for fn in list(self._notice_listeners):
            fn(event)

    # -- invariants --------------------------------------------------------------------------

    def check_invariants(self) -> None:
        """Raise :class:`SimInvariantError` when cash, holdings, orders or books disagree.

        Checked: cash equals the deposit plus sells minus buys; every holding equals its start
        plus buys minus sells; nothing is negative; open buys never reserve more cash than
        there is and open sells never commit more shares than are held; every order's quantity
        splits exactly into filled, remaining, cancelled and rejected; fills are on the tick
        grid inside the daily band; books are sorted and uncrossed.
        """
        problems = ledger_problems(self)
        if problems:
            raise SimInvariantError("; ".join(problems))
