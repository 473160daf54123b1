"""``map_async``: a coroutine per item, bounded concurrency, demand-aware."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc

from .._bridges import UNBOUNDED, DemandSubscription, PullObservable, add_demand, wait_finished
from .._scheduling import resolve_loop

_T = TypeVar("_T")
_R = TypeVar("_R")

# A worker whose coroutines finish without suspending yields to the loop this
# often, so a burst of trivial items cannot starve timers and I/O.
_YIELD_EVERY = 256


class _Upstream(abc.ObserverBase[_T]):
    """Receives the source's notifications for one map_async subscription."""

    __slots__ = ("_run",)

    def __init__(self, run: _MapAsyncRun[_T, Any]) -> None:
        self._run = run

    def on_next(self, value: _T) -> None:
        self._run.on_upstream_next(value)

    def on_error(self, error: Exception) -> None:
        self._run.fail(error)

    def on_completed(self) -> None:
        self._run.on_upstream_completed()


class _MapAsyncRun(Generic[_T, _R]):
    """The state of one subscription: a queue of items and up to N worker tasks.

    Workers await the user's coroutines directly (no task per item) and take the
    next queued item when done, so the per-item cost is a function call and an
    await, not a task. A worker that finds the queue empty waits for the next item
    (until the source ends) instead of exiting, so a source that delivers items one
    at a time does not cost a task per item either.
    """

    def __init__(
        self,
        fn: Callable[[_T], Awaitable[_R]],
        limit: int,
        ordered: bool,
        observer: abc.ObserverBase[_R],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.fn = fn
        self.limit = limit
        self.batch = max(1, limit // 4)
        self.ordered = ordered
        self.observer = observer
        self.loop = loop
        self.queue: deque[tuple[int, _T]] = deque()
        self.workers: set[asyncio.Task[None]] = set()
        self.waiters: deque[asyncio.Future[None]] = deque()
        # workers on their way to the queue: spawned and not started, or woken and not resumed
        self.heading = 0
        self.active = 0
        self.ready: dict[int, _R] = {}
        self.next_index = 0
        self.next_emit = 0
        self.down_demand = 0
        self.up_outstanding = 0
        self.upstream_done = False
        self.done = False
        self.pull: DemandSubscription | None = None
        self.upstream: abc.DisposableBase | None = None

    # -- upstream ---------------------------------------------------------------
    def on_upstream_next(self, value: _T) -> None:
        if self.done:
            return
        if self.pull is not None and self.up_outstanding > 0:
            self.up_outstanding -= 1
        self.queue.append((self.next_index, value))
        self.next_index += 1
        self.dispatch()

    def on_upstream_completed(self) -> None:
        if self.done:
            return
        self.upstream_done = True
        self.wake_all()
        self.check_completed()

    # -- downstream ---------------------------------------------------------------
    def request(self, n: int) -> None:
        if n <= 0:
            raise ValueError(f"request(n) needs n > 0, got {n!r}")
        self.down_demand = add_demand(self.down_demand, n)
        self.refill()

    def dispose(self) -> None:
        if self.done:
            return
        self.done = True
        self.stop()

    # -- machinery --------------------------------------------------------------------
    def refill(self) -> None:
        """Ask the source for as many items as there is room for, if it is demand-aware."""
        pull = self.pull
        if pull is None or self.upstream_done or self.done:
            return
        pending = self.up_outstanding + len(self.queue) + self.active
        room = self.limit - pending
        if self.down_demand != UNBOUNDED:
            # results waiting for an earlier one (ordered) still count against demand
            room = min(room, self.down_demand - pending - len(self.ready))
        # Ask in batches of a quarter of the limit while enough is in progress: one
        # request per item would wake an asynchronous source once per item.
        if room > 0 and (room >= self.batch or pending < self.batch):
            self.up_outstanding += room
            pull.request(room)

    def dispatch(self) -> None:
        """Get a worker heading for every queued item: wake idle ones, then start new ones."""
        if self.done:
            return
        queued = len(self.queue)
        waiters = self.waiters
        while waiters and queued > self.heading:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self.heading += 1
        workers = self.workers
        while queued > self.heading and len(workers) < self.limit:
            workers.add(self.loop.create_task(self.work()))
            self.heading += 1

    def wake_all(self) -> None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self.heading += 1

    async def work(self) -> None:
        self.heading -= 1
        try:
            while True:
                await self.drain_queue()
                if self.done or self.upstream_done:
                    return
                waiter = self.loop.create_future()
                self.waiters.append(waiter)
                await waiter
                self.heading -= 1
        finally:
            me = asyncio.current_task()
            if me is not None:
                self.workers.discard(me)

    async def drain_queue(self) -> None:
        fn = self.fn
        queue = self.queue
        since_yield = 0
        while queue and not self.done:
            index, item = queue.popleft()
            self.active += 1
            try:
                awaitable = fn(item)
                if type(awaitable) is CoroutineType or hasattr(awaitable, "__await__"):
                    result = await awaitable
                else:
                    raise TypeError(
                        f"map_async: {fn!r} returned {type(awaitable).__name__}, not an "
                        "awaitable; pass an async def function (run blocking code with "
                        "asyncio.to_thread)"
                    )
            except asyncio.CancelledError as cancelled:
                task = asyncio.current_task()
                if self.done or (task is not None and task.cancelling()):
                    raise
                # Not our cancellation: the coroutine was cancelled from inside.
                self.active -= 1
                self.fail(RuntimeError(f"map_async: {fn!r} was cancelled from inside for {item!r}"))
                raise cancelled
            except Exception as error:
                self.active -= 1
                self.fail(error)
                return
            self.active -= 1
            self.emit(index, result)
            since_yield += 1
            if since_yield >= _YIELD_EVERY and queue:
                since_yield = 0
                await asyncio.sleep(0)

    def emit(self, index: int, result: _R) -> None:
        if self.done:  # the coroutine swallowed our cancellation
            return
        observer = self.observer
        if not self.ordered:
            if self.down_demand != UNBOUNDED:
                self.down_demand -= 1
            observer.on_next(result)
        elif index == self.next_emit:
            if self.down_demand != UNBOUNDED:
                self.down_demand -= 1
            self.next_emit += 1
            observer.on_next(result)
            ready = self.ready
            while ready and self.next_emit in ready and not self.done:
                value = ready.pop(self.next_emit)
                if self.down_demand != UNBOUNDED:
                    self.down_demand -= 1
                self.next_emit += 1
                observer.on_next(value)
        else:
            self.ready[index] = result
        if self.stopped():  # on_next may have disposed us
            return
        self.refill()
        self.check_completed()

    def stopped(self) -> bool:
        return self.done

    def check_completed(self) -> None:
        if (
            self.upstream_done
            and not self.done
            and not self.queue
            and self.active == 0
            and not self.ready
        ):
            self.done = True
            self.observer.on_completed()

    def fail(self, error: Exception) -> None:
        if self.done:
            return
        self.done = True
        self.stop()
        self.observer.on_error(error)

    def stop(self) -> None:
        current = asyncio.current_task() if self.loop.is_running() else None
        for task in self.workers:
            if task is not current:
                task.cancel()
        self.queue.clear()
        self.ready.clear()
        self.waiters.clear()
        upstream = self.upstream
        if upstream is not None:
            upstream.dispose()


class _MapAsyncSubscription(DemandSubscription):
    __slots__ = ("_run",)

    def __init__(self, run: _MapAsyncRun[Any, Any]) -> None:
        self._run = run

    def request(self, n: int) -> None:
        self._run.request(n)

    def dispose(self) -> None:
        self._run.dispose()

    async def aclose(self) -> None:
        run = self._run
        run.dispose()
        await wait_finished(list(run.workers))
        if run.pull is not None:
            await run.pull.aclose()


class MapAsyncObservable(PullObservable[_R]):
    """The observable ``map_async`` returns: demand-aware on both sides."""

    def __init__(
        self,
        source: Observable[_T],
        fn: Callable[[_T], Awaitable[_R]],
        limit: int,
        ordered: bool,
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        super().__init__()
        self._source = source
        self._fn = fn
        self._limit = limit
        self._ordered = ordered
        self._scheduler = scheduler

    def subscribe_demand(
        self, observer: abc.ObserverBase[_R], scheduler: abc.SchedulerBase | None = None
    ) -> DemandSubscription:
        loop, scheduler = resolve_loop(self._scheduler or scheduler, "map_async")
        run: _MapAsyncRun[Any, _R] = _MapAsyncRun(
            self._fn, self._limit, self._ordered, observer, loop
        )
        upstream_observer: _Upstream[Any] = _Upstream(run)
        source = self._source
        if isinstance(source, PullObservable):
            pull = source.subscribe_demand(upstream_observer, scheduler)
            run.pull = pull
            run.upstream = pull
        else:
            run.upstream = source.subscribe(upstream_observer, scheduler=scheduler)
        if run.done:  # the source ended or failed while we subscribed
            run.upstream.dispose()
        return _MapAsyncSubscription(run)


def map_async_(
    fn: Callable[[_T], Awaitable[_R]],
    max_concurrent: int,
    ordered: bool,
    scheduler: abc.SchedulerBase | None,
) -> Callable[[Observable[_T]], Observable[_R]]:
    def operator(source: Observable[_T]) -> Observable[_R]:
        return MapAsyncObservable(source, fn, max_concurrent, ordered, scheduler)

    return operator
