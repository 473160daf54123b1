"""``measure``: record each subscription (or each item) of a source in a metrics collector."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from reactivex import Observable, abc

from .._bridges import DemandSubscription, PullObservable
from .._clock import Clock
from .._metrics import AsyncMetricsCollector

_T = TypeVar("_T")

MeasurePer = Literal["subscription", "item"]


class _Measure(abc.ObserverBase[_T]):
    """One measured subscription: forwards every notification, records on the way.

    ``per_item`` False: one record at the terminal notification (duration since
    subscribe; success on completion, failure on error), or a cancellation when
    disposed first. ``per_item`` True: one success per item (duration since the
    previous item, or since subscribe for the first), one failure on error (duration
    since the last item), nothing on completion or dispose.
    """

    __slots__ = (
        "clock",
        "collector",
        "done",
        "last",
        "name",
        "observer",
        "per_item",
        "pull",
        "upstream",
    )

    def __init__(
        self,
        collector: AsyncMetricsCollector,
        name: str,
        per_item: bool,
        observer: abc.ObserverBase[_T],
    ) -> None:
        self.collector = collector
        self.clock: Clock = collector.clock
        self.name = name
        self.per_item = per_item
        self.observer = observer
        self.done = False
        self.last = self.clock.now()
        self.pull: DemandSubscription | None = None
        self.upstream: abc.DisposableBase | None = None

    def elapsed(self) -> float:
        now = self.clock.now()
        elapsed = now - self.last
        self.last = now
        return elapsed if elapsed > 0.0 else 0.0

    def on_next(self, value: _T) -> None:
        if self.done:
            return
        if self.per_item:
            self.collector.record(self.name, self.elapsed(), True)
        self.observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        if self.done:
            return
        self.done = True
        # recorded first, so an observer reading the metrics in on_error sees it
        self.collector.record(self.name, self.elapsed(), False)
        self.observer.on_error(error)

    def on_completed(self) -> None:
        if self.done:
            return
        self.done = True
        if not self.per_item:
            self.collector.record(self.name, self.elapsed(), True)
        self.observer.on_completed()

    def dispose(self) -> None:
        if not self.done:
            self.done = True
            if not self.per_item:
                self.collector.record_cancelled(self.name)
        upstream = self.upstream
        if upstream is not None:
            upstream.dispose()


class _MeasureSubscription(DemandSubscription):
    __slots__ = ("_measure",)

    def __init__(self, measure: _Measure[Any]) -> None:
        self._measure = measure

    def request(self, n: int) -> None:
        measure = self._measure
        if measure.pull is not None and not measure.done:
            measure.pull.request(n)

    def dispose(self) -> None:
        self._measure.dispose()

    async def aclose(self) -> None:
        measure = self._measure
        measure.dispose()
        if measure.pull is not None:
            await measure.pull.aclose()


class MeasureObservable(PullObservable[_T]):
    """The observable ``measure`` returns; demand passes through to the source."""

    def __init__(
        self, source: Observable[_T], collector: AsyncMetricsCollector, name: str, per_item: bool
    ) -> None:
        super().__init__()
        self._source = source
        self._collector = collector
        self._name = name
        self._per_item = per_item

    def subscribe_demand(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> DemandSubscription:
        measure: _Measure[_T] = _Measure(self._collector, self._name, self._per_item, observer)
        source = self._source
        try:
            if isinstance(source, PullObservable):
                pull = source.subscribe_demand(measure, scheduler)
                measure.pull = pull
                measure.upstream = pull
            else:
                measure.upstream = source.subscribe(measure, scheduler=scheduler)
        except BaseException:
            measure.done = True  # the subscription never started: nothing to record
            raise
        return _MeasureSubscription(measure)


def measure_(
    collector: AsyncMetricsCollector, name: str, per_item: bool
) -> Callable[[Observable[_T]], Observable[_T]]:
    def operator(source: Observable[_T]) -> Observable[_T]:
        return MeasureObservable(source, collector, name, per_item)

    return operator
