"""``on_backpressure``: a bounded buffer at a push -> pull boundary."""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc

from .._bridges import UNBOUNDED, DemandSubscription, PullObservable, add_demand
from .._errors import BackpressureError, ConfigurationError

_T = TypeVar("_T")


class BackpressurePolicy(enum.Enum):
    """What a full :func:`~rxflows.operators.on_backpressure` buffer does with a new item."""

    BLOCK = "block"
    """Ask a demand-aware source for no more than fits (credit-based sources only)."""
    DROP_OLDEST = "drop_oldest"
    """Drop the oldest buffered item to make room."""
    DROP_NEWEST = "drop_newest"
    """Drop the item that just arrived."""
    KEEP_LATEST = "keep_latest"
    """Replace the newest buffered item with the one that just arrived."""
    ERROR = "error"
    """Deliver what is buffered, then fail with :class:`~rxflows.BackpressureError`."""


@dataclass(frozen=True, slots=True)
class BackpressureStatistics:
    """Counts over every subscription of one ``on_backpressure`` operator."""

    received: int
    emitted: int
    dropped: int
    overflows: int
    peak_buffered: int


class _Counters:
    __slots__ = ("dropped", "emitted", "lock", "overflows", "peak", "received")

    def __init__(self) -> None:
        self.received = 0
        self.emitted = 0
        self.dropped = 0
        self.overflows = 0
        self.peak = 0
        self.lock = threading.Lock()


class _BufferRun(abc.ObserverBase[_T]):
    def __init__(
        self,
        size: int,
        policy: BackpressurePolicy,
        observer: abc.ObserverBase[_T],
        counters: _Counters,
        on_drop: Callable[[_T], object] | None,
    ) -> None:
        self.size = size
        self.policy = policy
        self.observer = observer
        self.counters = counters
        self.on_drop = on_drop
        self.buffer: deque[_T] = deque()
        self.demand = 0
        self.up_outstanding = 0
        self.terminal: Exception | None = None
        self.upstream_done = False
        self.done = False
        self.draining = False
        self.pull: DemandSubscription | None = None
        self.upstream: abc.DisposableBase | None = None

    def _drop(self, item: _T) -> None:
        self.counters.dropped += 1
        if self.on_drop is not None:
            self.on_drop(item)

    # upstream
    def on_next(self, item: _T) -> None:
        if self.done or self.upstream_done:
            return
        counters = self.counters
        counters.received += 1
        if self.pull is not None and 0 < self.up_outstanding != UNBOUNDED:
            self.up_outstanding -= 1
        if not self.buffer and self.demand > 0 and not self.draining:
            self._emit(item)
            self._refill()
            return
        buffer = self.buffer
        if len(buffer) >= self.size:
            counters.overflows += 1
            policy = self.policy
            if policy is BackpressurePolicy.DROP_OLDEST:
                self._drop(buffer.popleft())
                buffer.append(item)
            elif policy is BackpressurePolicy.KEEP_LATEST:
                self._drop(buffer.pop())
                buffer.append(item)
            elif policy is BackpressurePolicy.ERROR:
                self._drop(item)
                self.terminal = BackpressureError(
                    f"on_backpressure buffer of {self.size} overflowed (policy 'error'); "
                    "raise the size, request faster, or choose a dropping policy",
                    capacity=self.size,
                )
                self.upstream_done = True
                if self.upstream is not None:
                    self.upstream.dispose()
            else:  # DROP_NEWEST, and BLOCK with a source that sent more than asked
                self._drop(item)
        else:
            buffer.append(item)
            counters.peak = max(counters.peak, len(buffer))
        self._drain()

    def on_error(self, error: Exception) -> None:
        if self.done or self.upstream_done:
            return
        self.upstream_done = True
        self.terminal = error
        self._drain()

    def on_completed(self) -> None:
        if self.done or self.upstream_done:
            return
        self.upstream_done = True
        self._drain()

    # downstream
    def request(self, n: int) -> None:
        if n <= 0:
            raise ValueError(f"request(n) needs n > 0, got {n!r}")
        self.demand = add_demand(self.demand, n)
        self._drain()
        self._refill()

    def dispose(self) -> None:
        self.done = True
        self.buffer.clear()
        if self.upstream is not None:
            self.upstream.dispose()

    def _emit(self, item: _T) -> None:
        if self.demand != UNBOUNDED:
            self.demand -= 1
        self.counters.emitted += 1
        self.observer.on_next(item)

    def _drain(self) -> None:
        if self.draining:
            return
        self.draining = True
        try:
            buffer = self.buffer
            while buffer and self.demand > 0 and not self.done:
                self._emit(buffer.popleft())
            if self.upstream_done and not buffer and not self.done:
                self.done = True
                if self.terminal is not None:
                    self.observer.on_error(self.terminal)
                else:
                    self.observer.on_completed()
        finally:
            self.draining = False

    def _refill(self) -> None:
        pull = self.pull
        if pull is None or self.upstream_done or self.done:
            return
        if self.demand == UNBOUNDED:
            if self.up_outstanding != UNBOUNDED:
                self.up_outstanding = UNBOUNDED
                pull.request(UNBOUNDED)
            return
        # Keep at most `size` items ahead of what downstream has asked for.
        room = self.demand + self.size - len(self.buffer) - self.up_outstanding
        if room > 0:
            self.up_outstanding += room
            pull.request(room)


class _BufferSubscription(DemandSubscription):
    __slots__ = ("_run",)

    def __init__(self, run: _BufferRun[Any]) -> None:
        self._run = run

    def request(self, n: int) -> None:
        self._run.request(n)

    def dispose(self) -> None:
        self._run.dispose()

    async def aclose(self) -> None:
        self._run.dispose()
        if self._run.pull is not None:
            await self._run.pull.aclose()


class _BackpressureObservable(PullObservable[_T]):
    def __init__(self, source: Observable[_T], operator: OnBackpressure[_T]) -> None:
        super().__init__()
        self._source = source
        self._operator = operator

    def subscribe_demand(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> DemandSubscription:
        op = self._operator
        run = _BufferRun(op.size, op.policy, observer, op._counters, op._on_drop)
        source = self._source
        if op.policy is BackpressurePolicy.BLOCK and isinstance(source, PullObservable):
            pull = source.subscribe_demand(run, scheduler)
            run.pull = pull
            run.upstream = pull
            run._refill()  # fill the buffer ahead of the first request
        else:
            run.upstream = source.subscribe(run, scheduler=scheduler)
            if run.done or (run.upstream_done and not run.buffer):
                run.upstream.dispose()
        return _BufferSubscription(run)


class OnBackpressure(Generic[_T]):
    """The ``on_backpressure`` operator: apply it with ``pipe``, read its counts with
    :meth:`statistics` (summed over every subscription)."""

    def __init__(
        self,
        size: int,
        policy: BackpressurePolicy | str,
        on_drop: Callable[[_T], object] | None = None,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigurationError(
                f"on_backpressure size must be a positive int, got {size!r}",
                field="size",
                value=size,
            )
        try:
            self.policy = BackpressurePolicy(policy)
        except ValueError:
            names = ", ".join(repr(p.value) for p in BackpressurePolicy)
            raise ConfigurationError(
                f"on_backpressure policy must be one of {names}, got {policy!r}",
                field="policy",
                value=policy,
            ) from None
        self.size = size
        self._on_drop = on_drop
        self._counters = _Counters()

    def __call__(self, source: Observable[_T]) -> Observable[_T]:
        if self.policy is BackpressurePolicy.BLOCK and not isinstance(source, PullObservable):
            raise ConfigurationError(
                "on_backpressure(policy='block') needs a credit-based source "
                "(rxflows.from_iterable, rxflows.from_async_iterable, map_async); a source that "
                f"pushes ({type(source).__name__}, e.g. a Subject) cannot be blocked: use "
                "'drop_oldest', 'drop_newest', 'keep_latest' or 'error'",
                field="policy",
                value=self.policy.value,
            )
        return _BackpressureObservable(source, self)

    @property
    def dropped(self) -> int:
        """Items dropped so far."""
        return self._counters.dropped

    def statistics(self) -> BackpressureStatistics:
        c = self._counters
        return BackpressureStatistics(
            received=c.received,
            emitted=c.emitted,
            dropped=c.dropped,
            overflows=c.overflows,
            peak_buffered=c.peak,
        )
