"""Session replay: a recording's market data served again by the simulator.

A recording (:mod:`kis_async.recording`) holds every WebSocket data frame the SDK received.
:func:`load_market` takes its trade and book frames (H0STCNT0/H0STASP0 and the NXT and 통합
feeds); a :class:`Replayer` sends each frame again, verbatim and in recorded order, to the
sessions registered for its TR id and symbol, and sets the simulated exchange's last price
and book from it (:meth:`SimExchange.apply_market`) so that orders match against the
recorded books instead of the random walk.

Pacing: at ``speed`` times the recorded pace from the moment the first session registers for
a recorded symbol (so a bot started late misses nothing), or, with ``speed=None``, one frame
per :meth:`Replayer.step` (``POST /__sim__/step``), which makes a replay fully deterministic.
The replay stops at the end of the recording; the market then stays where it ended.

Matching semantics: an arriving order takes the current recorded book (depth it consumes
stays consumed until the next book frame of that symbol); a resting order fills when a later
recorded book crosses its limit. The 통합 (UN) feed is served but does not move either
venue's book. Execution notices are not replayed: the simulator makes its own for the
orders placed against the replay.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from kis_async.recording import read_recording
from kis_async.sim.exchange import DEFAULT_SYMBOLS, BookLevel
from kis_async.sim.venues import KRX, NXT
from kis_async.stream.protocol import (
    DataFrame,
    FrameError,
    decode_orderbooks,
    decode_quotes,
    parse_frame,
)

if TYPE_CHECKING:
    from kis_async.models import OrderBook, Quote
    from kis_async.sim.exchange import SimExchange
    from kis_async.sim.ws import WsHub

__all__ = ["ReplayFrame", "Replayer", "load_market", "replay_symbols"]

logger = logging.getLogger("kis_async.sim")

#: Replayed TRs -> (kind, venue); the same table as the simulator's feeds.
_MARKET_TRS: Final = {
    "H0STCNT0": ("trade", KRX),
    "H0NXCNT0": ("trade", NXT),
    "H0UNCNT0": ("trade", "UN"),
    "H0STASP0": ("book", KRX),
    "H0NXASP0": ("book", NXT),
    "H0UNASP0": ("book", "UN"),
}
_NAMES: Final = {code: name for code, name, _ in DEFAULT_SYMBOLS}


@dataclass(frozen=True, slots=True)
class ReplayFrame:
    """One recorded market data frame.

    Attributes:
        t: seconds since the recording started.
        tr_id: the real-time TR id.
        symbol: the symbol of its first record.
        text: the frame as it was received (``0|tr_id|count|payload``).
        quotes: its trade records, decoded (empty for a book frame).
        books: its book records, decoded (empty for a trade frame).
    """

    t: float
    tr_id: str
    symbol: str
    text: str
    quotes: tuple[Quote, ...]
    books: tuple[OrderBook, ...]


def load_market(path: str | os.PathLike[str]) -> list[ReplayFrame]:
    """The trade and book frames a recording received, in recorded order.

    Blocking file I/O (call it at start-up).

    Raises:
        RecordingError: not a recording.
        ValueError: the recording holds no trade or book frame.
    """
    frames: list[ReplayFrame] = []
    for event in read_recording(path):
        if event.get("event") != "ws.recv.data":
            continue
        tr_id, payload = event.get("tr_id"), event.get("payload")
        if tr_id not in _MARKET_TRS or event.get("encrypted") or not isinstance(payload, str):
            continue
        count = event.get("records")
        count = count if isinstance(count, int) and count > 0 else 1
        text = f"0|{tr_id}|{count:03d}|{payload}"
        try:
            frame = parse_frame(text)
            if not isinstance(frame, DataFrame):
                continue
            quotes: tuple[Quote, ...] = ()
            books: tuple[OrderBook, ...] = ()
            if _MARKET_TRS[tr_id][0] == "trade":
                quotes = tuple(decode_quotes(frame))
                symbol = quotes[0].symbol
            else:
                books = tuple(decode_orderbooks(frame))
                symbol = books[0].symbol
        except FrameError:
            logger.warning("replay: skipping a malformed %s frame at t=%s", tr_id, event.get("t"))
            continue
        t = event.get("t")
        frames.append(
            ReplayFrame(
                t=float(t) if isinstance(t, int | float) else 0.0,
                tr_id=tr_id,
                symbol=symbol,
                text=text,
                quotes=quotes,
                books=books,
            )
        )
    if not frames:
        raise ValueError(f"{os.fspath(path)!r} holds no trade or book frame to replay")
    return frames


def replay_symbols(frames: Iterable[ReplayFrame]) -> tuple[tuple[str, str, int], ...]:
    """(code, name, previous close) of every replayed symbol, in order of first appearance.

    The previous close is the first trade's price minus its change; a symbol with books only
    takes its first book's best bid (or best ask).
    """
    closes: dict[str, int] = {}
    guesses: dict[str, int] = {}
    for frame in frames:
        for quote in frame.quotes:
            if quote.symbol not in closes and quote.change is not None:
                closes[quote.symbol] = int(quote.price - quote.change)
        for book in frame.books:
            best = book.bids[0] if book.bids else book.asks[0] if book.asks else None
            if best is not None:
                guesses.setdefault(book.symbol, int(best.price))
        guesses.setdefault(frame.symbol, 0)
    out = []
    for code, guess in guesses.items():
        reference = closes.get(code) or guess
        if reference > 0:
            out.append((code, _NAMES.get(code, code), reference))
    return tuple(out)


def _levels(levels: Iterable[tuple[Decimal, int]]) -> list[BookLevel]:
    return [BookLevel(int(price), qty) for price, qty in levels]


class Replayer:
    """Serves recorded frames through a simulator's WebSocket hub and exchange.

    Args:
        frames: the recorded frames (:func:`load_market`).
        exchange: the exchange whose prices and books follow the recording.
        hub: the WebSocket hub whose sessions receive the frames.
    """

    def __init__(self, frames: list[ReplayFrame], *, exchange: SimExchange, hub: WsHub) -> None:
        self.frames = frames
        self.exchange = exchange
        self.hub = hub
        self.position = 0
        self.finished = asyncio.Event()
        self._symbols = {frame.symbol for frame in frames}
        # No recorded book yet: orders rest until the first book frame of their symbol.
        for symbol in self._symbols:
            if exchange.has_symbol(symbol):
                for venue in (KRX, NXT):
                    exchange.apply_market(symbol, venue=venue, asks=(), bids=())

    @property
    def remaining(self) -> int:
        """Frames not yet served."""
        return len(self.frames) - self.position

    def step(self, count: int = 1) -> int:
        """Serve the next ``count`` frames now; returns how many were served."""
        served = 0
        while served < count and self.position < len(self.frames):
            self._serve(self.frames[self.position])
            self.position += 1
            served += 1
        if self.position >= len(self.frames):
            self.finished.set()
        return served

    async def run(self, speed: float) -> None:
        """Serve every remaining frame at ``speed`` times the recorded pace, starting when a
        session first registers for a recorded symbol."""
        if speed <= 0:
            raise ValueError("speed must be > 0")
        while not self._symbols & set(self.hub.quote_symbols):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        loop = asyncio.get_running_loop()
        start = loop.time()
        origin = self.frames[self.position].t if self.remaining else 0.0
        while self.remaining:
            frame = self.frames[self.position]
            delay = start + (frame.t - origin) / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.step(1)
            if not self.position % 256:
                await asyncio.sleep(0)
        logger.info("replay finished: %d frames served", len(self.frames))

    def _serve(self, frame: ReplayFrame) -> None:
        exchange = self.exchange
        venue = _MARKET_TRS[frame.tr_id][1]
        if venue in (KRX, NXT):
            for quote in frame.quotes:
                if exchange.has_symbol(quote.symbol):
                    exchange.apply_market(
                        quote.symbol, venue=venue, price=int(quote.price), qty=quote.volume or 0
                    )
            for book in frame.books:
                if exchange.has_symbol(book.symbol):
                    exchange.apply_market(
                        book.symbol, venue=venue, asks=_levels(book.asks), bids=_levels(book.bids)
                    )
        entry = (frame.tr_id, frame.symbol)
        for session in self.hub.sessions:
            if entry in session.subscriptions:
                session.enqueue(frame.text, data=True, droppable=True)
