"""A thread-safe, synchronous client: one async :class:`~kis_async.KISBroker` on a private loop.

For scripts, notebooks and thread-based servers (Django, Flask workers)::

    from kis_async import KISConfig, SyncKISBroker

    with SyncKISBroker(KISConfig.from_env()) as broker:
        snapshot = broker.get_price("005930")
        for quote in broker.quotes(["005930"]):
            strategy.on_quote(quote)

How it works: the client starts one event-loop thread and builds the async broker there;
every method submits the broker's own coroutine to that loop and blocks the calling thread
until it finishes. Nothing is implemented twice, so retries, rate limiting, idempotency and
stream recovery are the async broker's. Any number of threads may call at once; they share
the connection pool, the token and the rate limiter.

Callbacks (:meth:`KISBroker.subscribe_quotes`, :meth:`KISBroker.subscribe_executions`) all
run on one dedicated callback thread, one at a time, never concurrently, so a callback needs
no lock against another callback. While a callback runs, its subscription's events wait in
the async broker's buffer (quotes conflate to the newest per symbol, executions are kept).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import logging
import queue
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, Concatenate, Final, Generic, ParamSpec, Self, TypeVar, cast

import httpx

from kis_async.broker import KISBroker as AsyncKISBroker
from kis_async.config import KISConfig
from kis_async.models import Execution, Market, OrderBook, Quote
from kis_async.orders.journal import OrderJournal
from kis_async.orders.placement import PlacementOptions
from kis_async.port import Stream, Subscription
from kis_async.stream.manager import StreamOptions, StreamStatus
from kis_async.telemetry import Telemetry

__all__ = ["KISBroker", "SyncStream", "SyncSubscription"]

logger = logging.getLogger("kis_async.sync")

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_CLOSED_MESSAGE: Final = "this synchronous KISBroker is closed"
_END: Final = object()


class _CallbackThread:
    """One thread that runs callbacks in submission order, one at a time."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[
            tuple[concurrent.futures.Future[None], Callable[[Any], Any], Any] | None
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def ident(self) -> int | None:
        thread = self._thread
        return None if thread is None else thread.ident

    def submit(self, fn: Callable[[T], Any], arg: T) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._lock:
            if self._stopped:
                future.cancel()
                return future
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._jobs.put((future, fn, arg))
        return future

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, arg = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                fn(arg)
            except Exception as exc:
                future.set_exception(exc)
            except BaseException as exc:
                # SystemExit or KeyboardInterrupt in a callback must not reach the event loop.
                future.set_exception(RuntimeError(f"a callback raised {type(exc).__name__}"))
            else:
                future.set_result(None)

    def stop(self, timeout: float) -> None:
        """Run no more callbacks; wait up to ``timeout`` for the one running to finish."""
        with self._lock:
            self._stopped = True
            thread = self._thread
            self._jobs.put(None)
        if thread is None or thread.ident == threading.get_ident():
            return
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("a callback still runs %.1f s after close(); not waiting", timeout)


class _Runner:
    """The private event-loop thread and the calls in flight on it.

    It never refers to the :class:`KISBroker` wrapper, so the wrapper can be garbage-collected
    (its finalizer then closes the runner).
    """

    def __init__(self, close_timeout: float) -> None:
        self.close_timeout = close_timeout
        self.loop = asyncio.new_event_loop()
        self.callbacks = _CallbackThread("kis_async-callbacks")
        self.broker: AsyncKISBroker | None = None
        self._lock = threading.Lock()
        self._closing = False
        self._closed = threading.Event()
        self._tasks: set[asyncio.Task[Any]] = set()  # touched on the loop thread only
        self._thread = threading.Thread(target=self._serve, name="kis_async-loop", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                leftover = asyncio.all_tasks(loop)
                for task in leftover:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    @property
    def closing(self) -> bool:
        return self._closing

    def on_loop_thread(self) -> bool:
        return self._thread.ident == threading.get_ident()

    # -- calls ------------------------------------------------------------------------------

    async def _tracked(self, invoke: Callable[[], Coroutine[Any, Any, R]]) -> R:
        # The call's coroutine is created here, on the loop: a task cancelled before its
        # first step then leaves no coroutine behind that was never awaited.
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            return await invoke()
        finally:
            self._tasks.discard(task)

    def call(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` on the loop and wait for its result."""

        async def invoke() -> R:
            return await fn(*args, **kwargs)

        return self._wait(self._submit(invoke))

    def call_sync(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the plain function ``fn`` on the loop thread (objects bound to the loop are
        created and touched there only) and return its result."""

        async def invoke() -> R:
            return fn(*args, **kwargs)

        return self._wait(self._submit(invoke))

    def _submit(self, invoke: Callable[[], Coroutine[Any, Any, R]]) -> concurrent.futures.Future[R]:
        if self.on_loop_thread():
            raise RuntimeError(
                "a synchronous KISBroker method was called on its own event-loop thread; "
                "it would wait for itself"
            )
        # Under the lock, so that close() sees every submitted call: none can slip in after
        # the loop stops and then wait forever.
        with self._lock:
            if self._closing:
                raise RuntimeError(_CLOSED_MESSAGE)
            return asyncio.run_coroutine_threadsafe(self._tracked(invoke), self.loop)

    @staticmethod
    def _wait(future: concurrent.futures.Future[R]) -> R:
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise RuntimeError(
                "the synchronous KISBroker was closed while this call was in flight"
            ) from None
        finally:
            # KeyboardInterrupt in the waiting thread: stop the call instead of leaving it.
            if not future.done():
                future.cancel()

    def close_soon(self, handle: Stream[Any]) -> None:
        """Close a stream handle without waiting (from a finalizer, on any thread)."""
        if self._closing:
            return  # the broker's close ends every stream

        def spawn() -> None:
            task = self.loop.create_task(handle.aclose())
            self._tasks.add(task)
            task.add_done_callback(self._forget_closer)

        try:
            self.loop.call_soon_threadsafe(spawn)
        except RuntimeError:  # the loop is closed: so is the stream
            return

    def _forget_closer(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("closing an abandoned stream failed: %r", task.exception())

    # -- shutdown ---------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        broker = self.broker
        if broker is not None:
            try:
                async with asyncio.timeout(self.close_timeout):
                    await broker.aclose()
            except TimeoutError:
                logger.warning("the broker did not close within %.1f s", self.close_timeout)
            except Exception:
                logger.exception("closing the broker failed")
        # Calls still in flight (the closed broker makes most fail at once) get a grace
        # period, then are cancelled: their callers get a RuntimeError, never a hang.
        current = asyncio.current_task()
        pending = {task for task in self._tasks if task is not current}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.close_timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=self.close_timeout)

    def close(self) -> None:
        """Close the broker, end calls in flight, stop both threads. Idempotent, any thread."""
        with self._lock:
            first = not self._closing
            self._closing = True
        own_thread = self.on_loop_thread() or self.callbacks.ident == threading.get_ident()
        if not first:
            if not own_thread:
                self._closed.wait(4 * self.close_timeout)
            return
        if self.on_loop_thread():
            # Only a finalizer can get here: never block the loop, finish in the background.
            task = self.loop.create_task(self._shutdown())
            task.add_done_callback(lambda _: self._finish(join=False))
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
        try:
            future.result(timeout=3 * self.close_timeout)
        except concurrent.futures.TimeoutError:
            logger.warning("closing did not finish within %.1f s", 3 * self.close_timeout)
        finally:
            self._finish(join=True)

    def _finish(self, *, join: bool) -> None:
        self.callbacks.stop(self.close_timeout if join else 0.0)
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            self.loop.call_soon_threadsafe(self.loop.stop)
        if join:
            self._thread.join(self.close_timeout)
        self._closed.set()


class SyncStream(Generic[T]):
    """A blocking iterator over one async stream handle; also a context manager.

    It subscribes on ``with`` or on the first ``next()`` and unsubscribes on :meth:`close`,
    when a ``with`` block ends, or when it is garbage-collected. Iterate it from one thread at
    a time (concurrent ``next()`` calls take turns); :meth:`close` may come from any thread
    and ends a ``next()`` blocked elsewhere. When the broker closes, the iteration ends.
    """

    def __init__(self, runner: _Runner, handle: Stream[T]) -> None:
        self._runner = runner
        self._handle = handle
        self._turn = threading.Lock()
        self._closer = weakref.finalize(self, runner.close_soon, handle)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        with self._turn:
            try:
                item = self._runner.call(_next_or_end, self._handle)
            except RuntimeError:
                if not self._runner.closing:
                    raise
                item = _END  # the broker closed, which ends every stream, as in async code
        if item is _END:
            self._closer.detach()
            raise StopIteration
        return cast(T, item)

    def __enter__(self) -> Self:
        self._runner.call(self._handle.__aenter__)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Unsubscribe now. Idempotent; safe from any thread and after the broker closed."""
        if self._closer.detach() is None or self._runner.closing:
            return
        try:
            self._runner.call(self._handle.aclose)
        except RuntimeError:
            if not self._runner.closing:
                raise
            # The broker closed meanwhile, and closing it ended this stream.


async def _next_or_end(handle: Stream[T]) -> T | object:
    try:
        return await handle.__anext__()
    except StopAsyncIteration:
        return _END


class SyncSubscription:
    """The handle of a callback subscription of the synchronous client.

    Dropping it does not end the subscription (it lasts until :meth:`close` or until the
    broker closes), so ``broker.subscribe_quotes(symbols, callback)`` alone is enough.
    """

    def __init__(self, runner: _Runner, subscription: Subscription) -> None:
        self._runner = runner
        self._subscription = subscription
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran or the broker closed."""
        return self._closed or self._runner.closing

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the callbacks and unsubscribe. Idempotent; safe from any thread, including
        from inside a callback."""
        if self._closed or self._runner.closing:
            return
        self._closed = True
        try:
            self._runner.call(self._subscription.aclose)
        except RuntimeError:
            if not self._runner.closing:
                raise


def _forward(
    method: Callable[Concatenate[AsyncKISBroker, P], Awaitable[R]],
) -> Callable[Concatenate[KISBroker, P], R]:
    """The blocking twin of an async broker method: same name, parameters and docs."""
    name = method.__name__

    @functools.wraps(method)
    def blocking(self: KISBroker, /, *args: P.args, **kwargs: P.kwargs) -> R:
        bound = cast(Callable[P, Awaitable[R]], getattr(self._async_broker(), name))
        return self._runner.call(bound, *args, **kwargs)

    blocking.__module__ = __name__
    return blocking


class KISBroker:
    """A synchronous, thread-safe connection to one KIS account (``kis_async.SyncKISBroker``).

    It takes the arguments of the async :class:`kis_async.KISBroker` and has its methods,
    blocking. See the module documentation for how threads and callbacks are handled.

    Example::

        with SyncKISBroker(KISConfig.from_env()) as broker:
            snapshot = broker.get_price("005930")
            with broker.quotes(["005930"]) as quotes:
                for quote in quotes:
                    strategy.on_quote(quote)

    Args:
        config: credentials, account and endpoints.
        http_client: an ``httpx.AsyncClient`` for the async broker (not closed by it).
        journal: the idempotency journal (see the async broker).
        stream_options: WebSocket session tuning.
        placement_options: how uncertain order outcomes are reconciled.
        telemetry: a :class:`kis_async.telemetry.Telemetry` (OpenTelemetry export).
        close_timeout: how long :meth:`close` waits for the broker to close, for calls in
            flight and for a running callback, each, before giving up on them (seconds).
    """

    def __init__(
        self,
        config: KISConfig,
        *,
        http_client: httpx.AsyncClient | None = None,
        journal: OrderJournal | None = None,
        stream_options: StreamOptions | None = None,
        placement_options: PlacementOptions | None = None,
        telemetry: Telemetry | None = None,
        close_timeout: float = 5.0,
    ) -> None:
        if not isinstance(config, KISConfig):
            raise TypeError("KISBroker needs a KISConfig")
        self._start(
            functools.partial(
                AsyncKISBroker,
                config,
                http_client=http_client,
                journal=journal,
                stream_options=stream_options,
                placement_options=placement_options,
                telemetry=telemetry,
            ),
            close_timeout,
        )

    @classmethod
    def from_factory(
        cls, factory: Callable[[], AsyncKISBroker], *, close_timeout: float = 5.0
    ) -> Self:
        """Wrap the async broker that ``factory`` builds (called on the private loop thread,
        so anything it creates belongs to that loop)."""
        self = cls.__new__(cls)
        self._start(factory, close_timeout)
        return self

    def _start(self, factory: Callable[[], AsyncKISBroker], close_timeout: float) -> None:
        if not close_timeout > 0:
            raise ValueError("close_timeout must be a positive number of seconds")
        runner = _Runner(close_timeout)
        self._runner = runner
        # A wrapper that is dropped without close() still releases its threads and sockets.
        self._finalizer = weakref.finalize(self, runner.close)
        try:
            broker: object = runner.call_sync(factory)
        except BaseException:
            self.close()
            raise
        if not isinstance(broker, AsyncKISBroker):
            self.close()
            raise TypeError("the factory must return a kis_async.KISBroker")
        runner.broker = broker

    def _async_broker(self) -> AsyncKISBroker:
        broker = self._runner.broker
        if broker is None:  # pragma: no cover - only while the constructor runs
            raise RuntimeError(_CLOSED_MESSAGE)
        return broker

    # -- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Open the broker (idempotent); calls open it implicitly too."""
        self._runner.call(self._async_broker().open)

    def close(self) -> None:
        """Close the broker and its threads. Idempotent and safe from any thread, including a
        callback. Calls blocked in other threads fail with ``RuntimeError`` (after a grace
        period of ``close_timeout``) and stream iterations end; nothing hangs."""
        self._finalizer.detach()
        self._runner.close()

    def __enter__(self) -> Self:
        try:
            self.open()
        except BaseException:
            self.close()  # __exit__ will not run: release the threads now
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has started."""
        return self._runner.closing

    @property
    def config(self) -> KISConfig:
        """The configuration (its repr hides every secret)."""
        return self._async_broker().config

    @property
    def account(self) -> str:
        """The account number, masked."""
        return self._async_broker().account

    @property
    def stream_status(self) -> StreamStatus:
        """Status of the WebSocket session (read on the loop thread)."""
        broker = self._async_broker()
        return self._runner.call_sync(lambda: broker.stream_status)

    def metrics(self) -> dict[str, Any]:
        """The async broker's :meth:`~kis_async.KISBroker.metrics` (read on the loop thread)."""
        broker = self._async_broker()
        return self._runner.call_sync(broker.metrics)

    def __repr__(self) -> str:
        state = "closed" if self._runner.closing else "open"
        return f"SyncKISBroker(account={self.account!r}, state={state!r})"

    # -- REST (the async methods, blocking) -------------------------------------------------

    authenticate = _forward(AsyncKISBroker.authenticate)
    revoke_token = _forward(AsyncKISBroker.revoke_token)
    get_price = _forward(AsyncKISBroker.get_price)
    get_orderbook = _forward(AsyncKISBroker.get_orderbook)
    place_order = _forward(AsyncKISBroker.place_order)
    cancel_order = _forward(AsyncKISBroker.cancel_order)
    modify_order = _forward(AsyncKISBroker.modify_order)
    get_orders = _forward(AsyncKISBroker.get_orders)
    get_open_orders = _forward(AsyncKISBroker.get_open_orders)
    get_cash = _forward(AsyncKISBroker.get_cash)
    get_buying_power = _forward(AsyncKISBroker.get_buying_power)
    get_stock_balance = _forward(AsyncKISBroker.get_stock_balance)
    reconcile = _forward(AsyncKISBroker.reconcile)
    connect_websocket = _forward(AsyncKISBroker.connect_websocket)
    disconnect_websocket = _forward(AsyncKISBroker.disconnect_websocket)

    # -- streaming --------------------------------------------------------------------------

    def quotes(
        self, symbols: Iterable[str], *, market: Market | str = Market.KRX
    ) -> SyncStream[Quote]:
        """Real-time trades of ``symbols`` on ``market`` as a blocking iterator (see the async
        :meth:`kis_async.KISBroker.quotes`: conflated per symbol when the reader lags)."""
        broker = self._async_broker()
        stream = self._runner.call_sync(broker.quotes, symbols, market=market)
        return SyncStream(self._runner, stream)

    def orderbooks(
        self, symbols: Iterable[str], *, market: Market | str = Market.KRX
    ) -> SyncStream[OrderBook]:
        """Real-time order books of ``symbols`` on ``market`` as a blocking iterator;
        conflated."""
        broker = self._async_broker()
        stream = self._runner.call_sync(broker.orderbooks, symbols, market=market)
        return SyncStream(self._runner, stream)

    def executions(self) -> SyncStream[Execution]:
        """This account's execution notices as a blocking iterator; lossless."""
        broker = self._async_broker()
        return SyncStream(self._runner, self._runner.call_sync(broker.executions))

    def subscribe_quotes(
        self,
        symbols: Iterable[str],
        callback: Callable[[Quote], Any],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
        market: Market | str = Market.KRX,
    ) -> SyncSubscription:
        """Call ``callback`` for each quote of ``symbols`` on ``market`` on the callback
        thread.

        Callbacks of every subscription run on that one thread, serially. A callback that
        raises is logged and the subscription goes on; ``on_error`` (also on the callback
        thread) gets the error that ends a subscription, as in the async broker.
        """
        broker = self._async_broker()
        relay, relay_error = self._relays(callback, on_error)
        subscription = self._runner.call(
            broker.subscribe_quotes, symbols, relay, on_error=relay_error, market=market
        )
        return SyncSubscription(self._runner, subscription)

    def subscribe_executions(
        self,
        callback: Callable[[Execution], Any],
        *,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> SyncSubscription:
        """Call ``callback`` for each execution notice on the callback thread; lossless.
        ``on_error`` as in :meth:`subscribe_quotes`."""
        broker = self._async_broker()
        relay, relay_error = self._relays(callback, on_error)
        subscription = self._runner.call(broker.subscribe_executions, relay, on_error=relay_error)
        return SyncSubscription(self._runner, subscription)

    def _relays(
        self,
        callback: Callable[[T], Any],
        on_error: Callable[[BaseException], Any] | None,
    ) -> tuple[Callable[[T], Awaitable[None]], Callable[[BaseException], Awaitable[None]] | None]:
        """Async callbacks for the async broker that hand each call to the callback thread
        and wait for it, so the async buffer (conflation, lossless notices) applies."""
        for fn in (callback, on_error):
            if fn is not None and (inspect.iscoroutinefunction(fn) or not callable(fn)):
                raise TypeError("the synchronous client takes plain functions as callbacks")
        callbacks = self._runner.callbacks

        async def relay(item: T) -> None:
            await asyncio.wrap_future(callbacks.submit(callback, item))

        if on_error is None:
            return relay, None
        handler = on_error

        async def relay_error(exc: BaseException) -> None:
            await asyncio.wrap_future(callbacks.submit(handler, exc))

        return relay, relay_error
