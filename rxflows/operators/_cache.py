"""``cache``: serve a one-value source from an :class:`~rxflows.AsyncCache`, single-flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from .._cache import _MISSING, AsyncCache, _Load
from .._scheduling import resolve_loop

_T = TypeVar("_T")

KeySource = Hashable | Callable[[], Hashable]


async def _last_value(source: Observable[Any], scheduler: abc.SchedulerBase) -> Any:
    """Subscribe to ``source`` and return its last value (``_MISSING`` if it had none).

    Cancelling the coroutine disposes the subscription; so does the end of the source.
    """
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    last: list[Any] = [_MISSING]

    def on_next(value: Any) -> None:
        last[0] = value

    def on_error(error: Exception) -> None:
        if not done.done():
            done.set_exception(error)

    def on_completed() -> None:
        if not done.done():
            done.set_result(last[0])

    subscription = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
    try:
        return await done
    finally:
        subscription.dispose()


class _CacheSubscription(abc.DisposableBase):
    """One subscriber: a hit, or a waiter on the (shared) load of its key."""

    __slots__ = ("cache", "disposed", "load", "lookup_task", "observer")

    def __init__(self, cache: AsyncCache, observer: abc.ObserverBase[Any]) -> None:
        self.cache = cache
        self.observer = observer
        self.load: _Load | None = None
        self.lookup_task: asyncio.Task[None] | None = None
        self.disposed = False

    def join(
        self,
        key: Hashable,
        source: Observable[Any],
        ttl: float | None,
        loop: asyncio.AbstractEventLoop,
        scheduler: abc.SchedulerBase,
    ) -> None:
        try:
            load = self.cache._join_or_start(key, _last_value, (source, scheduler), ttl, loop)
        except Exception as error:  # a failure remembered by negative_ttl
            self.observer.on_error(error)
            return
        load.waiters += 1
        self.load = load
        task = load.task
        assert task is not None
        task.add_done_callback(self.deliver)

    async def lookup_then_join(
        self,
        key: Hashable,
        source: Observable[Any],
        ttl: float | None,
        loop: asyncio.AbstractEventLoop,
        scheduler: abc.SchedulerBase,
    ) -> None:
        # A subclass overrides get(): read through it (None is a miss).
        try:
            value = await self.cache.get(key)
        except Exception as error:
            self.observer.on_error(error)
            return
        if self.disposed:
            return
        if value is not None:
            self.observer.on_next(value)
            self.observer.on_completed()
        else:
            self.join(key, source, ttl, loop, scheduler)

    def deliver(self, task: asyncio.Task[Any]) -> None:
        self.load = None
        if self.disposed:
            return
        observer = self.observer
        if task.cancelled():
            observer.on_error(RuntimeError("ops.cache: the load was cancelled by someone else"))
            return
        error = task.exception()
        if isinstance(error, Exception):
            observer.on_error(error)
            return
        if error is not None:  # a BaseException other than cancellation: not ours to handle
            return
        value = task.result()
        if value is not _MISSING:
            observer.on_next(value)
        observer.on_completed()

    def dispose(self) -> None:
        if self.disposed:
            return
        self.disposed = True
        if self.lookup_task is not None:
            self.lookup_task.cancel()
        load = self.load
        if load is not None:
            self.load = None
            task = load.task
            if task is not None:
                task.remove_done_callback(self.deliver)
            self.cache._leave(load)


def cache_(
    cache: AsyncCache,
    key: KeySource,
    ttl: float | None,
    scheduler: abc.SchedulerBase | None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            loop, sched = resolve_loop(
                scheduler if scheduler is not None else subscribe_scheduler, "ops.cache"
            )
            subscription = _CacheSubscription(cache, observer)
            try:
                resolved = key() if callable(key) else key
                hit = cache._lookup(resolved) if cache._plain_get else _MISSING
            except Exception as error:
                observer.on_error(error)
                return Disposable()
            if hit is not _MISSING:
                observer.on_next(hit)
                observer.on_completed()
                return Disposable()
            if cache._plain_get:
                subscription.join(resolved, source, ttl, loop, sched)
            else:
                subscription.lookup_task = loop.create_task(
                    subscription.lookup_then_join(resolved, source, ttl, loop, sched)
                )
            return subscription

        return reactivex.create(subscribe)

    return operator
