"""``circuit_breaker``: each subscription to the source is one call through a breaker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc

from .._breaker import CircuitBreaker
from .._bridges import DemandSubscription, PullObservable
from .._errors import CircuitOpenError

_T = TypeVar("_T")


class _Guard(abc.ObserverBase[_T]):
    """One guarded subscription: forwards the source's notifications and reports the
    outcome to the breaker exactly once (terminal notification or dispose)."""

    __slots__ = ("breaker", "done", "epoch", "observer", "pull", "start", "upstream")

    def __init__(
        self,
        breaker: CircuitBreaker,
        epoch: int,
        start: float | None,
        observer: abc.ObserverBase[_T],
    ) -> None:
        self.breaker = breaker
        self.epoch = epoch
        self.start = start
        self.observer = observer
        self.done = False
        self.pull: DemandSubscription | None = None
        self.upstream: abc.DisposableBase | None = None

    def on_next(self, value: _T) -> None:
        if not self.done:
            self.observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        if self.done:
            return
        self.done = True
        # The breaker learns the outcome first, so a downstream ``retry`` that
        # resubscribes from inside on_error already meets the new state.
        try:
            self.breaker._settle_error(self.epoch, self.start, error)
        except Exception as filter_error:  # an ``expected``/``ignored`` predicate raised
            filter_error.__context__ = error
            self.observer.on_error(filter_error)
            return
        self.observer.on_error(error)

    def on_completed(self) -> None:
        if self.done:
            return
        self.done = True
        self.breaker._settle(self.epoch, self.start, 0, None)
        self.observer.on_completed()

    def dispose(self) -> None:
        if not self.done:
            self.done = True
            self.breaker._abandon(self.epoch, self.start)
        upstream = self.upstream
        if upstream is not None:
            upstream.dispose()


class _GuardSubscription(DemandSubscription):
    __slots__ = ("_guard",)

    def __init__(self, guard: _Guard[Any]) -> None:
        self._guard = guard

    def request(self, n: int) -> None:
        guard = self._guard
        if guard.pull is not None and not guard.done:
            guard.pull.request(n)

    def dispose(self) -> None:
        self._guard.dispose()

    async def aclose(self) -> None:
        guard = self._guard
        guard.dispose()
        if guard.pull is not None:
            await guard.pull.aclose()


class _Rejected(DemandSubscription):
    """The subscription of a call the breaker rejected: nothing to request or dispose."""

    __slots__ = ()

    def request(self, n: int) -> None:
        pass

    def dispose(self) -> None:
        pass


class CircuitBreakerObservable(PullObservable[_T]):
    """The observable ``circuit_breaker`` returns; demand passes through to the source."""

    def __init__(self, source: Observable[_T], breaker: CircuitBreaker) -> None:
        super().__init__()
        self._source = source
        self._breaker = breaker

    def subscribe_demand(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> DemandSubscription:
        breaker = self._breaker
        try:
            epoch = breaker._admit()
        except CircuitOpenError as error:
            observer.on_error(error)
            return _Rejected()
        guard: _Guard[_T] = _Guard(breaker, epoch, breaker._start(), observer)
        source = self._source
        try:
            if isinstance(source, PullObservable):
                pull = source.subscribe_demand(guard, scheduler)
                guard.pull = pull
                guard.upstream = pull
            else:
                guard.upstream = source.subscribe(guard, scheduler=scheduler)
        except BaseException:
            guard.dispose()  # no outcome, but the permit must not leak
            raise
        return _GuardSubscription(guard)


def circuit_breaker_(breaker: CircuitBreaker) -> Callable[[Observable[_T]], Observable[_T]]:
    def operator(source: Observable[_T]) -> Observable[_T]:
        return CircuitBreakerObservable(source, breaker)

    return operator
