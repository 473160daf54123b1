"""Bridges between coroutines, async iterators and observables, with demand.

Rx pushes; async iterators pull. rxflows joins the two with a small demand
protocol in the spirit of Reactive Streams: a :class:`PullObservable` can be
subscribed with :meth:`PullObservable.subscribe_demand`, which returns a
:class:`DemandSubscription`; the subscriber calls ``request(n)`` when it has room
for ``n`` more items, and the source emits no more than it was asked for. A plain
``subscribe`` asks for everything, so a ``PullObservable`` is an ordinary
``Observable`` to every RxPY operator.

Demand-aware consumers in rxflows: ``ops.map_async``, ``ops.on_backpressure`` and
:func:`to_async_iterator`. Demand-aware sources: :func:`from_iterable`,
:func:`from_async_iterable`, and the output of ``map_async`` and
``on_backpressure``. A plain RxPY operator between two of them asks for everything.
"""

from __future__ import annotations

import asyncio
import sys
from abc import abstractmethod
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._scheduling import loop_scheduler, resolve_loop

__all__ = [
    "UNBOUNDED",
    "DemandSubscription",
    "PullObservable",
    "collect",
    "from_async",
    "from_async_iterable",
    "from_iterable",
    "to_async_iterator",
]

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)

UNBOUNDED = sys.maxsize
"""Demand that never runs out: what a plain ``subscribe`` requests."""


async def wait_finished(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Wait until ``tasks`` are done, without raising what they raised."""
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.wait(pending)


def add_demand(current: int, n: int) -> int:
    """``current + n``, saturating at :data:`UNBOUNDED`."""
    total = current + n
    return UNBOUNDED if total >= UNBOUNDED else total


class DemandSubscription(abc.DisposableBase):
    """A subscription whose subscriber signals how many more items it can take."""

    __slots__ = ()

    @abstractmethod
    def request(self, n: int) -> None:
        """Allow the source to emit ``n`` more items."""

    async def aclose(self) -> None:
        """Dispose, then wait until the tasks this subscription started have finished
        (and so a source's ``finally`` blocks have run)."""
        self.dispose()


class PullObservable(Observable[_T_co]):
    """An Observable that honours demand signalled through :meth:`subscribe_demand`."""

    def _subscribe_core(
        self,
        observer: abc.ObserverBase[_T_co],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        subscription = self.subscribe_demand(observer, scheduler)
        subscription.request(UNBOUNDED)
        return subscription

    def subscribe_demand(
        self, observer: abc.ObserverBase[_T_co], scheduler: abc.SchedulerBase | None = None
    ) -> DemandSubscription:
        """Subscribe without demand; nothing is emitted until ``request(n)``.

        ``observer`` is called directly (no auto-detach wrapper): it receives at most
        the items requested, then at most one terminal notification.
        """
        raise NotImplementedError


# --- sync iterable ---------------------------------------------------------------


class _IterableSubscription(DemandSubscription, Generic[_T]):
    __slots__ = ("_demand", "_disposed", "_draining", "_iterator", "_observer")

    def __init__(self, iterable: Iterable[_T], observer: abc.ObserverBase[_T]) -> None:
        self._iterator = iter(iterable)
        self._observer = observer
        self._demand = 0
        self._draining = False
        self._disposed = False

    def request(self, n: int) -> None:
        self._demand = add_demand(self._demand, n)
        if self._draining:
            return  # the loop below picks up the new demand
        self._draining = True
        try:
            iterator = self._iterator
            observer = self._observer
            while self._demand > 0 and not self._disposed:
                try:
                    item = next(iterator)
                except StopIteration:
                    self._disposed = True
                    observer.on_completed()
                    return
                except Exception as error:
                    self._disposed = True
                    observer.on_error(error)
                    return
                if self._demand != UNBOUNDED:
                    self._demand -= 1
                observer.on_next(item)
        finally:
            self._draining = False

    def dispose(self) -> None:
        self._disposed = True


class _IterableObservable(PullObservable[_T]):
    def __init__(self, iterable: Iterable[_T]) -> None:
        super().__init__()
        self._iterable = iterable

    def subscribe_demand(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> DemandSubscription:
        return _IterableSubscription(self._iterable, observer)


def from_iterable(iterable: Iterable[_T]) -> PullObservable[_T]:
    """An observable of ``iterable``'s items, pulled only as fast as they are requested.

    Unlike ``reactivex.from_iterable`` (which pushes everything at once), a
    demand-aware consumer such as ``ops.map_async`` takes items one slot at a time,
    so a huge or endless generator is never drained ahead of the work. Each
    subscription iterates ``iterable`` afresh (an iterator can only be consumed once).

    Example:
        >>> source = from_iterable(range(3))
    """
    return _IterableObservable(iterable)


# --- async iterable ----------------------------------------------------------------


class _AsyncIterableSubscription(DemandSubscription, Generic[_T]):
    __slots__ = ("_credit", "_observer", "_task", "_wakeup")

    def __init__(
        self,
        source: AsyncIterable[_T],
        observer: abc.ObserverBase[_T],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._observer = observer
        self._credit = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] = loop.create_task(self._pump(source))

    def request(self, n: int) -> None:
        self._credit = add_demand(self._credit, n)
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def dispose(self) -> None:
        self._task.cancel()

    async def aclose(self) -> None:
        self.dispose()
        await wait_finished([self._task])

    async def _pump(self, source: AsyncIterable[_T]) -> None:
        iterator = aiter(source)
        observer = self._observer
        try:
            while True:
                while self._credit <= 0:
                    self._wakeup = asyncio.get_running_loop().create_future()
                    await self._wakeup
                self._wakeup = None
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    observer.on_completed()
                    return
                if self._credit != UNBOUNDED:
                    self._credit -= 1
                observer.on_next(item)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            observer.on_error(error)
        finally:
            aclose: Callable[[], Awaitable[object]] | None = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()


class _AsyncIterableObservable(PullObservable[_T]):
    def __init__(self, source: AsyncIterable[_T]) -> None:
        super().__init__()
        self._source = source

    def subscribe_demand(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> DemandSubscription:
        loop, _ = resolve_loop(scheduler, "from_async_iterable")
        return _AsyncIterableSubscription(self._source, observer, loop)


def from_async_iterable(source: AsyncIterable[_T]) -> PullObservable[_T]:
    """An observable of an async iterable's items, pulled only on demand (credit-based).

    The source is read by one task per subscription, and only while the subscriber
    has asked for more: an endless fast source is never drained ahead of the
    consumer. Disposing the subscription cancels the read and closes the source
    (``aclose()``), so an async generator's ``finally`` blocks run.

    An async generator can be iterated once: subscribe once, or pass an
    ``AsyncIterable`` whose ``__aiter__`` starts afresh.

    Example:
        >>> async def numbers():
        ...     for i in range(3):
        ...         yield i
        >>> source = from_async_iterable(numbers())
    """
    if not hasattr(source, "__aiter__"):
        raise TypeError(
            f"from_async_iterable needs an async iterable (an object with __aiter__, such as "
            f"an async generator), got {type(source).__name__}; for a plain iterable use "
            "rxflows.from_iterable"
        )
    return _AsyncIterableObservable(source)


# --- coroutine -------------------------------------------------------------------


def from_async(fn: Callable[..., Awaitable[_T]], *args: Any, **kwargs: Any) -> Observable[_T]:
    """A cold observable that runs ``fn(*args, **kwargs)`` once per subscription.

    Each subscription starts a task; its result is emitted, then completion; its
    exception is the observable's error, unwrapped. Disposing cancels the task.

    Example:
        >>> async def fetch() -> str:
        ...     return "data"
        >>> source = from_async(fetch)   # nothing runs until subscribed
    """
    if not callable(fn):
        raise TypeError(f"from_async needs a coroutine function, got {fn!r}")

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        loop, _ = resolve_loop(scheduler, "from_async")
        awaitable = fn(*args, **kwargs)
        if not hasattr(awaitable, "__await__"):
            raise TypeError(
                f"from_async: {fn!r} returned {type(awaitable).__name__}, not an awaitable; "
                "pass an async def function"
            )

        async def run() -> _T:
            return await awaitable

        task = loop.create_task(run())

        def done(t: asyncio.Task[_T]) -> None:
            if t.cancelled():
                return
            error = t.exception()
            if isinstance(error, Exception):
                observer.on_error(error)
            elif error is None:
                observer.on_next(t.result())
                observer.on_completed()

        task.add_done_callback(done)

        def cancel() -> None:
            task.cancel()

        return Disposable(cancel)

    return reactivex.create(subscribe)


# --- observable -> async iterator -------------------------------------------------


class _IteratorSink(abc.ObserverBase[_T]):
    __slots__ = ("buffer", "error", "finished", "waiter")

    def __init__(self) -> None:
        self.buffer: deque[_T] = deque()
        self.finished = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_next(self, value: _T) -> None:
        self.buffer.append(value)
        self._wake()

    def on_error(self, error: Exception) -> None:
        self.error = error
        self.finished = True
        self._wake()

    def on_completed(self) -> None:
        self.finished = True
        self._wake()


async def to_async_iterator(
    source: Observable[_T], *, prefetch: int = 16
) -> AsyncGenerator[_T, None]:
    """Iterate an observable with ``async for``.

    A demand-aware source (:class:`PullObservable`) is asked for ``prefetch`` items
    up front and for one more each time the consumer takes one, so at most
    ``prefetch`` items wait in the buffer. A plain observable pushes freely: bound it
    with ``ops.on_backpressure(...)`` first if it can outrun the consumer.

    The observable's error is raised from ``__anext__`` after the items that came
    before it. Leaving the loop early (``break``, an exception, ``aclose()``)
    disposes the subscription, which cancels the work in flight.

    Example:
        >>> async def main():
        ...     async for x in to_async_iterator(from_iterable([1, 2, 3])):
        ...         print(x)
    """
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
        raise ValueError(f"prefetch must be a positive int, got {prefetch!r}")
    loop = asyncio.get_running_loop()
    scheduler = loop_scheduler(loop)
    sink: _IteratorSink[_T] = _IteratorSink()
    pull: DemandSubscription | None = None
    subscription: abc.DisposableBase
    if isinstance(source, PullObservable):
        pull = source.subscribe_demand(sink, scheduler)
        subscription = pull
        pull.request(prefetch)
    else:
        subscription = source.subscribe(sink, scheduler=scheduler)
    # Replenish demand in batches of half the prefetch: one request per item would
    # wake an asynchronous source once per item.
    batch = max(1, prefetch // 2)
    taken = 0
    try:
        buffer = sink.buffer
        while True:
            if buffer:
                item = buffer.popleft()
                if pull is not None and not sink.finished:
                    taken += 1
                    if taken >= batch:  # at least prefetch - batch stay requested
                        pull.request(taken)
                        taken = 0
                yield item
                continue
            if sink.finished:
                if sink.error is not None:
                    raise sink.error
                return
            sink.waiter = loop.create_future()
            await sink.waiter
            sink.waiter = None
    finally:
        if pull is not None:
            await pull.aclose()
        else:
            subscription.dispose()


async def collect(source: Observable[_T]) -> list[_T]:
    """Subscribe on the running loop and return every item once ``source`` completes.

    The observable's error is raised unwrapped. Cancelling the awaiting task
    disposes the subscription (and so cancels the work it started).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[_T]] = loop.create_future()
    items: list[_T] = []

    def on_error(error: Exception) -> None:
        if not future.done():
            future.set_exception(error)

    def on_completed() -> None:
        if not future.done():
            future.set_result(items)

    subscription = source.subscribe(
        items.append, on_error, on_completed, scheduler=loop_scheduler(loop)
    )
    try:
        return await future
    finally:
        subscription.dispose()
