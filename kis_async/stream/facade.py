"""StreamFacade: the public stream surface shared by every stream owner.

:class:`~kis_async.stream.manager.StreamManager` (a KIS WebSocket session) and
:class:`~kis_async.gateway.worker.GatewayStreams` (a gateway's Redis) hand out the same
handles over different sources. This base holds what they share: the handle factories
(:meth:`quotes`, :meth:`orderbooks`, :meth:`executions` and their callback forms), the
tracked background tasks (:meth:`spawn`), the callback subscriptions and the
:meth:`aclose` sequence. A subclass supplies the source: :meth:`attach`, :meth:`detach`,
:meth:`connect`, :meth:`disconnect` and the drop counter behind :meth:`_drops`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

from kis_async.config import KISConfig
from kis_async.models import Execution, ExecutionCursor, Market, Quote
from kis_async.models.market import check_market
from kis_async.port import Callback
from kis_async.stream import factory
from kis_async.stream.options import StreamOptions
from kis_async.stream.protocol import (
    ORDERBOOK_TR_IDS,
    QUOTE_TR_IDS,
    TR_NOTICE_LIVE,
    TR_NOTICE_PAPER,
)
from kis_async.stream.streams import (
    CallbackSubscription,
    ExecutionStream,
    OrderBookStream,
    QuoteStream,
    RegKey,
    Sink,
)

__all__ = ["StreamFacade"]

T = TypeVar("T")

#: The drop counters of the conflating (market data) buffers.
DropCounter = Literal["quotes", "books"]


class StreamFacade(ABC):
    """The stream surface over an abstract source (see the module docstring).

    Args:
        config: the configuration (``mode`` picks the TRs; ``hts_id`` is needed for
            executions).
        options: tuning; defaults suit KIS.
        lag: given the source-to-consumer lag (seconds) of sampled records.
    """

    #: The message of the RuntimeError raised once closed.
    _closed_message: ClassVar[str] = "the streams are closed"
    #: Where a failed background task is logged, and how the task is named there.
    _task_logger: ClassVar[logging.Logger] = logging.getLogger("kis_async.stream")
    _task_kind: ClassVar[str] = "stream task"

    def __init__(
        self,
        config: KISConfig,
        *,
        options: StreamOptions | None = None,
        lag: Callable[[float], None] | None = None,
    ) -> None:
        self._config = config
        self._options = options if options is not None else StreamOptions()
        self._lag = lag
        self._tasks: set[asyncio.Task[None]] = set()
        # Weak: a closed subscription the user dropped is forgotten; a running one is kept
        # alive by its own task.
        self._callbacks: weakref.WeakSet[CallbackSubscription[Any]] = weakref.WeakSet()
        self._closed = False

    # -- the source (subclasses) ---------------------------------------------------------------

    @abstractmethod
    async def connect(self) -> None:
        """Reach the source now."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Leave the source; open streams end (after what they already queued)."""

    @abstractmethod
    async def attach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Route ``keys`` to ``sink`` and wait until they are subscribed."""

    @abstractmethod
    async def detach(self, sink: Sink, keys: tuple[RegKey, ...]) -> None:
        """Stop routing ``keys`` to ``sink``; unsubscribe keys nobody holds any more."""

    @abstractmethod
    def _drops(self, name: DropCounter) -> Callable[[int], None]:
        """The counter a conflating buffer reports its drops to (``quotes`` or ``books``)."""

    # -- public API ------------------------------------------------------------------------

    @property
    def options(self) -> StreamOptions:
        """The tuning in effect."""
        return self._options

    @property
    def notice_tr_id(self) -> str:
        """H0STCNI9 in paper mode, H0STCNI0 live."""
        return TR_NOTICE_PAPER if self._config.is_paper else TR_NOTICE_LIVE

    def quotes(self, symbols: Iterable[str], *, market: Market | str = Market.KRX) -> QuoteStream:
        """Real-time trades of ``symbols`` on ``market`` (H0STCNT0 KRX, H0NXCNT0 NXT,
        H0UNCNT0 통합). ValueError: no symbols, a bad one, an unknown market;
        PaperModeError: NXT/UNIFIED in paper mode. Each raised before anything is sent."""
        self._check_open()
        keys = self._market_keys(QUOTE_TR_IDS, symbols, market)
        return factory.quote_stream(self, keys, self._options, self._drops("quotes"))

    def orderbooks(
        self, symbols: Iterable[str], *, market: Market | str = Market.KRX
    ) -> OrderBookStream:
        """Real-time order books of ``symbols`` on ``market`` (H0STASP0 / H0NXASP0 /
        H0UNASP0); errors as in :meth:`quotes`."""
        self._check_open()
        keys = self._market_keys(ORDERBOOK_TR_IDS, symbols, market)
        return factory.orderbook_stream(self, keys, self._options, self._drops("books"))

    def executions(
        self, *, replay: bool = True, since: ExecutionCursor | str | None = None
    ) -> ExecutionStream:
        """This account's execution events, lossless, exactly once per filled quantity: from
        today's first fill (``replay``), from now (``replay=False``) or after ``since`` (an
        :class:`ExecutionCursor` or its ``str``). ValueError: no ``hts_id``, bad ``since``."""
        self._check_open()
        keys = self._execution_keys()
        return factory.execution_stream(self, keys, self._options, replay=replay, since=since)

    async def subscribe_quotes(
        self,
        symbols: Iterable[str],
        callback: Callback[Quote],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
        market: Market | str = Market.KRX,
    ) -> CallbackSubscription[Quote]:
        """Call ``callback`` (sync or async) for each quote of ``symbols`` on ``market``, from
        its own task; a raising callback is logged; ``on_error`` gets the error if the
        session is given up."""
        self._check_open()
        keys = self._market_keys(QUOTE_TR_IDS, symbols, market)
        drops = self._drops("quotes")
        sub = factory.quote_subscription(
            self, keys, self._options, drops, callback=callback, on_error=on_error
        )
        return await self._started(sub)

    async def subscribe_executions(
        self,
        callback: Callback[Execution],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
        replay: bool = True,
        since: ExecutionCursor | str | None = None,
    ) -> CallbackSubscription[Execution]:
        """Call ``callback`` for each execution event from its own task: its own consumer,
        ``replay``/``since`` as in :meth:`executions`."""
        self._check_open()
        keys = self._execution_keys()
        sub = factory.execution_subscription(
            self, keys, self._options, callback, on_error, replay=replay, since=since
        )
        return await self._started(sub)

    async def aclose(self) -> None:
        """Close every stream, subscription and task, then the source (the session; at a
        gateway, this worker's registrations). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for sub in list(self._callbacks):
            await sub.aclose()
        await self.disconnect()
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- the handles' side (package-internal) -----------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Start a tracked background task; it is cancelled on :meth:`aclose`."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    # -- helpers ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(self._closed_message)

    async def _started(self, sub: CallbackSubscription[T]) -> CallbackSubscription[T]:
        """Start ``sub`` and keep it to close on :meth:`aclose`."""
        await sub.start()
        self._callbacks.add(sub)
        return sub

    def _market_keys(
        self, tr_ids: Mapping[Market, str], symbols: Iterable[str], market: Market | str
    ) -> tuple[RegKey, ...]:
        """Registration keys of ``symbols`` on the TR of ``market``: one registration each
        toward the cap (KRX and NXT feeds of one symbol are two)."""
        checked = check_market(market, paper=self._config.is_paper)
        return factory.symbol_keys(tr_ids[checked], symbols)

    def _execution_keys(self) -> tuple[RegKey, ...]:
        hts_id = self._config.hts_id
        if not hts_id:
            raise ValueError("execution notices need KISConfig.hts_id (the HTS login id)")
        return ((self.notice_tr_id, hts_id),)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._task_logger.error(
                "%s %s failed", self._task_kind, task.get_name(), exc_info=task.exception()
            )
