"""The circuit breaker: stop calling a dependency that keeps failing, try it again later.

A :class:`CircuitBreaker` sits in front of calls to one dependency (an API, a
transcoder, a storage bucket). While the dependency answers, the breaker is
CLOSED and lets every call through, recording its outcome. When a *trip rule*
says the dependency is failing (a run of consecutive failures, a failure rate or
a slow-call rate over a sliding window), the breaker OPENs: calls are rejected at
once with :class:`~rxflows.CircuitOpenError`, without running. After ``timeout``
seconds it lets a bounded number of *trial* calls through (HALF_OPEN); if they do
well it CLOSEs again, otherwise it reOPENs, for longer when ``open_backoff`` is
above 1. ``force_open()``, ``disable()`` and ``reset()`` take manual control.

::

               trip rule says so                 timeout elapsed (next call or read)
    CLOSED ──────────────────────────▶ OPEN ──────────────────────────▶ HALF_OPEN
       ▲                                 ▲                                  │
       │                                 └──── a trial condemns it ─────────┤
       └──────────── every trial reported, none condemns it ◀───────────────┘

    force_open() ─▶ FORCED_OPEN     disable() ─▶ DISABLED     reset() ─▶ CLOSED

Time comes from a :class:`~rxflows.Clock` (DESIGN rule 1): the running loop's
clock by default, so the same breaker runs in virtual time in tests.
"""

from __future__ import annotations

import enum
import functools
import itertools
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from types import CoroutineType
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    NamedTuple,
    ParamSpec,
    Protocol,
    TypeAlias,
    TypeVar,
)

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._clock import Clock, as_clock
from ._errors import CircuitOpenError, ConfigurationError

if TYPE_CHECKING:
    from ._config import AsyncFlowConfig

__all__ = [
    "BreakerEvent",
    "BreakerEventKind",
    "BreakerStatistics",
    "CallMetrics",
    "CircuitBreaker",
    "CircuitState",
    "ConsecutiveFailures",
    "CountWindow",
    "ExceptionFilter",
    "FailureRate",
    "SlowCallRate",
    "TimeWindow",
    "TripRule",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

_log = logging.getLogger("rxflows.breaker")

# Two readings of the clock within a nanosecond are the same instant: the virtual
# loop rounds its timers to the nanosecond, and 0.003 + 0.005 != 0.008 in floating
# point, so an exact comparison could keep a breaker open one tick too long.
_EPSILON = 1e-9

ExceptionFilter: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)
"""Which exceptions a rule applies to: a type, a tuple of types, or a predicate."""


# --- states, events, statistics ------------------------------------------------------


class CircuitState(enum.Enum):
    """Where a :class:`CircuitBreaker` stands."""

    CLOSED = "closed"
    """Calls go through; their outcomes are recorded and checked by the trip rule."""
    OPEN = "open"
    """Calls are rejected with :class:`~rxflows.CircuitOpenError` until the open
    duration has elapsed."""
    HALF_OPEN = "half_open"
    """A bounded number of trial calls go through; the rest are rejected."""
    FORCED_OPEN = "forced_open"
    """Every call is rejected until :meth:`CircuitBreaker.reset` (or ``disable()``)."""
    DISABLED = "disabled"
    """Every call goes through and nothing can open the breaker until ``reset()``."""


_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_HALF_OPEN = CircuitState.HALF_OPEN
_FORCED_OPEN = CircuitState.FORCED_OPEN
_DISABLED = CircuitState.DISABLED


class BreakerEventKind(enum.Enum):
    """What a :class:`BreakerEvent` reports."""

    STATE_CHANGED = "state_changed"
    """The breaker moved from ``previous_state`` to ``state``."""
    SUCCESS = "success"
    """A call succeeded (or raised an exception that ``expected`` does not match)."""
    FAILURE = "failure"
    """A call raised an exception that counts as a failure (``error``)."""
    IGNORED = "ignored"
    """A call raised an ignored exception (``error``): neither success nor failure."""
    CANCELLED = "cancelled"
    """A call was cancelled (or its subscription disposed) before it reported."""
    REJECTED = "rejected"
    """A call was rejected without running (``error`` is the CircuitOpenError)."""


class BreakerEvent(NamedTuple):
    """One entry of :attr:`CircuitBreaker.events`: an immutable, typed record.

    ``time`` is the breaker's clock reading; ``state`` the state after the event
    (for a call outcome, the state it was recorded in); ``previous_state`` is set
    for ``STATE_CHANGED`` only; ``duration`` (seconds on the breaker's clock) and
    ``slow`` for call outcomes (``duration`` is None for a call that started before
    anyone subscribed); ``error`` for failures, ignored errors and rejections.

    A ``NamedTuple`` rather than a frozen dataclass: a breaker with a subscriber
    builds one per call, and a tuple is several times cheaper to build.
    """

    kind: BreakerEventKind
    name: str
    time: float
    state: CircuitState
    previous_state: CircuitState | None = None
    duration: float | None = None
    error: BaseException | None = None
    slow: bool = False


@dataclass(frozen=True, slots=True)
class BreakerStatistics:
    """A snapshot of a :class:`CircuitBreaker`, from :meth:`CircuitBreaker.statistics`.

    The call counters count from the breaker's creation (``reset()`` does not zero
    them); the ``window_*`` figures and the rates are over the sliding window of the
    CLOSED state, which is cleared every time the breaker closes.
    """

    name: str
    state: CircuitState
    calls: int
    """Calls let through (including those still running)."""
    successes: int
    failures: int
    ignored: int
    """Calls that raised an ignored exception, or returned a non-awaitable."""
    cancelled: int
    """Calls cancelled (or subscriptions disposed) before they reported."""
    slow_calls: int
    """Successes and failures slower than ``slow_call_duration``."""
    rejected: int
    in_flight: int
    window_calls: int
    window_failures: int
    window_slow_calls: int
    failure_rate: float | None
    """Percentage of failures in the window; None while the window is empty."""
    slow_call_rate: float | None
    """Percentage of slow calls in the window; None while the window is empty."""
    consecutive_failures: int
    opened_count: int
    """Times the breaker has opened (from CLOSED or HALF_OPEN)."""
    open_duration: float
    """Seconds the current (or the next) open period lasts, back-off included."""
    retry_after: float | None
    """While OPEN: seconds until a trial call is let through; else None."""


# --- trip rules ----------------------------------------------------------------------


class CallMetrics(Protocol):
    """What a :class:`TripRule` sees: the calls recorded in the window.

    In the CLOSED state, the sliding window; in HALF_OPEN, the trial calls of the
    current half-open period.
    """

    @property
    def calls(self) -> int:
        """Successes and failures recorded."""
        ...

    @property
    def failures(self) -> int:
        """Failures among them."""
        ...

    @property
    def slow_calls(self) -> int:
        """Calls among them slower than ``slow_call_duration`` (failed or not)."""
        ...

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        ...


class TripRule(ABC):
    """When a CLOSED breaker opens, and when trial calls send it back to OPEN.

    Rules are small, stateless and composable: ``a | b`` trips when either does,
    ``a & b`` when both do. Write your own by subclassing and implementing
    :meth:`should_open`.

    Example:
        >>> rule = ConsecutiveFailures(5) | FailureRate(50, minimum_calls=20)
        >>> breaker = CircuitBreaker(trip=rule, window=CountWindow(100))
    """

    minimum_calls: int = 0
    """The fewest calls the window must hold before the rule can trip (0: any)."""
    uses_slow_calls: bool = False
    """Whether the rule reads ``slow_calls`` (the breaker then needs ``slow_call_duration``)."""
    check_on_success: bool = True
    """Whether a success can make the rule trip (False skips the check after a success).

    Either way, the breaker skips the rule after a success while the window holds no
    failure and no slow call: a window of plain successes must never trip."""

    @abstractmethod
    def should_open(self, metrics: CallMetrics) -> bool:
        """CLOSED: whether the breaker should open, after a call was recorded."""

    def should_reopen(self, trials: CallMetrics, permitted: int) -> bool:
        """HALF_OPEN: whether the trials reported so far (out of ``permitted``)
        already decide that the breaker opens again.

        Once every permitted trial has reported and this stayed False, the breaker
        closes. The default reopens on the first failed trial.
        """
        return trials.failures > 0

    def __or__(self, other: TripRule) -> TripRule:
        return _AnyRule((self, other))

    def __and__(self, other: TripRule) -> TripRule:
        return _AllRule((self, other))

    def rules(self) -> tuple[TripRule, ...]:
        """The simple rules this rule is made of (itself, for a simple rule)."""
        return (self,)


class ConsecutiveFailures(TripRule):
    """Open after ``threshold`` failures in a row (a success resets the run).

    In HALF_OPEN, any failed trial reopens the breaker: every trial must succeed.
    This is the guide's ``CircuitBreaker(failure_threshold=5)``.
    """

    check_on_success = False

    def __init__(self, threshold: int) -> None:
        _check_positive_int("failure_threshold", threshold)
        self.threshold = threshold

    def should_open(self, metrics: CallMetrics) -> bool:
        return metrics.consecutive_failures >= self.threshold

    def __repr__(self) -> str:
        return f"ConsecutiveFailures({self.threshold})"


class _RateRule(TripRule):
    """Open when ``threshold`` percent of the window's calls are of one kind, once the
    window holds ``minimum_calls`` calls; in HALF_OPEN, over the permitted trials."""

    _name: ClassVar[str]

    def __init__(self, threshold: float, *, minimum_calls: int = 10) -> None:
        _check_rate(f"{self._name} threshold", threshold)
        _check_positive_int("minimum_calls", minimum_calls)
        self.threshold = float(threshold)
        self.minimum_calls = minimum_calls

    def _count(self, metrics: CallMetrics) -> int:
        raise NotImplementedError

    def should_open(self, metrics: CallMetrics) -> bool:
        calls = metrics.calls
        return (
            calls >= self.minimum_calls and self._count(metrics) * 100.0 >= self.threshold * calls
        )

    def should_reopen(self, trials: CallMetrics, permitted: int) -> bool:
        return self._count(trials) * 100.0 >= self.threshold * permitted

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.threshold:g}, minimum_calls={self.minimum_calls})"


class FailureRate(_RateRule):
    """Open when at least ``threshold`` percent of the calls in the window failed,
    once the window holds ``minimum_calls`` calls.

    In HALF_OPEN the rate is taken over the trial calls: the breaker reopens as soon
    as the failures among the permitted trials reach ``threshold`` percent, and
    closes when the trials end under it.
    """

    _name = "failure_rate"

    def _count(self, metrics: CallMetrics) -> int:
        return metrics.failures


class SlowCallRate(_RateRule):
    """Open when at least ``threshold`` percent of the calls in the window were slow
    (took longer than the breaker's ``slow_call_duration``), once the window holds
    ``minimum_calls`` calls. A slow call counts whether it failed or not.

    In HALF_OPEN the rate is taken over the trial calls, as for :class:`FailureRate`.
    """

    _name = "slow_call_rate"
    uses_slow_calls = True

    def _count(self, metrics: CallMetrics) -> int:
        return metrics.slow_calls


class _Combined(TripRule):
    symbol: ClassVar[str]

    def __init__(self, children: tuple[TripRule, TripRule]) -> None:
        for child in children:
            if not isinstance(child, TripRule):
                raise TypeError(
                    f"trip rules combine with other TripRule objects, got {type(child).__name__}"
                )
        flat: list[TripRule] = []
        for child in children:  # (a | b) | c is kept as one level: a | b | c
            flat.extend(child.children if type(child) is type(self) else (child,))
        self.children: tuple[TripRule, ...] = tuple(flat)
        self.minimum_calls = max(child.minimum_calls for child in flat)
        self.uses_slow_calls = any(child.uses_slow_calls for child in flat)
        self.check_on_success = any(child.check_on_success for child in flat)

    def rules(self) -> tuple[TripRule, ...]:
        return tuple(rule for child in self.children for rule in child.rules())

    def __repr__(self) -> str:
        return f" {self.symbol} ".join(
            f"({child!r})" if isinstance(child, _Combined) else repr(child)
            for child in self.children
        )


class _AnyRule(_Combined):
    symbol = "|"

    def should_open(self, metrics: CallMetrics) -> bool:
        for child in self.children:  # noqa: SIM110 - no generator per call on the hot path
            if child.should_open(metrics):
                return True
        return False

    def should_reopen(self, trials: CallMetrics, permitted: int) -> bool:
        for child in self.children:  # noqa: SIM110 - no generator per call on the hot path
            if child.should_reopen(trials, permitted):
                return True
        return False


class _AllRule(_Combined):
    symbol = "&"

    def should_open(self, metrics: CallMetrics) -> bool:
        for child in self.children:  # noqa: SIM110 - no generator per call on the hot path
            if not child.should_open(metrics):
                return False
        return True

    def should_reopen(self, trials: CallMetrics, permitted: int) -> bool:
        for child in self.children:  # noqa: SIM110 - no generator per call on the hot path
            if not child.should_reopen(trials, permitted):
                return False
        return True


# --- sliding windows ---------------------------------------------------------------------

# An outcome is coded in two bits: bit 0 failed, bit 1 slow.
_FAILED = 1
_SLOW = 2


class _Window:
    """The CLOSED state's metrics: a sliding window, plus the current run of failures."""

    __slots__ = ("calls", "consecutive_failures", "failures", "slow_calls")
    timed: ClassVar[bool] = False

    def __init__(self) -> None:
        self.calls = 0
        self.failures = 0
        self.slow_calls = 0
        self.consecutive_failures = 0

    def record(self, code: int, now: float) -> None:
        raise NotImplementedError

    def refresh(self, now: float) -> None:
        """Forget what has slid out of the window by ``now`` (time windows only)."""

    def clear(self) -> None:
        raise NotImplementedError

    def steady(self) -> bool:
        """Whether recording one more plain success would change nothing."""
        return False


class _CountMetrics(_Window):
    __slots__ = ("_codes", "_index", "_size")

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._codes = bytearray(size)
        self._index = 0

    def record(self, code: int, now: float) -> None:
        index = self._index
        if self.calls == self._size:
            old = self._codes[index]
            self.failures -= old & _FAILED
            self.slow_calls -= old >> 1
        else:
            self.calls += 1
        self._codes[index] = code
        self.failures += code & _FAILED
        self.slow_calls += code >> 1
        index += 1
        self._index = 0 if index == self._size else index

    def clear(self) -> None:
        self.calls = self.failures = self.slow_calls = self.consecutive_failures = 0
        self._index = 0

    def steady(self) -> bool:
        # Every slot holds a plain success, so which one the next success overwrites
        # does not matter.
        return self.calls == self._size and not self.failures and not self.slow_calls


class _TimeMetrics(_Window):
    """resilience4j's partial aggregation: one bucket per slice of time, O(1) amortised."""

    __slots__ = (
        "_bucket_calls",
        "_bucket_failures",
        "_bucket_slow",
        "_index",
        "_last",
        "_n",
        "_width_ns",
    )
    timed = True

    def __init__(self, seconds: float, buckets: int) -> None:
        super().__init__()
        self._n = buckets
        self._width_ns = max(1, round(seconds / buckets * 1e9))
        self._bucket_calls = [0] * buckets
        self._bucket_failures = [0] * buckets
        self._bucket_slow = [0] * buckets
        self._last: int | None = None
        self._index = 0

    def _slice(self, now: float) -> int:
        # Integer nanoseconds: a float division would put 0.003 s in slice 2 of 1 ms.
        return round(now * 1e9) // self._width_ns

    def _advance(self, epoch: int) -> None:
        """Make ``epoch`` the current slice, emptying the buckets of the slices that
        slid out since the last one (at most all of them)."""
        last = self._last
        if last is not None and epoch <= last:
            return  # a clock that went back: stay in the last slice
        n = self._n
        if last is None or epoch - last >= n:
            if last is not None:
                self._zero()
        else:
            calls, failures, slow = self._bucket_calls, self._bucket_failures, self._bucket_slow
            for slice_ in range(last + 1, epoch + 1):
                i = slice_ % n
                if calls[i]:
                    self.calls -= calls[i]
                    self.failures -= failures[i]
                    self.slow_calls -= slow[i]
                    calls[i] = failures[i] = slow[i] = 0
        self._last = epoch
        self._index = epoch % n

    def record(self, code: int, now: float) -> None:
        epoch = round(now * 1e9) // self._width_ns
        if epoch != self._last:
            self._advance(epoch)
        i = self._index
        self._bucket_calls[i] += 1
        self.calls += 1
        if code:
            failed = code & _FAILED
            slow = code >> 1
            self._bucket_failures[i] += failed
            self._bucket_slow[i] += slow
            self.failures += failed
            self.slow_calls += slow

    def refresh(self, now: float) -> None:
        if self._last is not None:
            self._advance(self._slice(now))

    def _zero(self) -> None:
        n = self._n
        self._bucket_calls = [0] * n
        self._bucket_failures = [0] * n
        self._bucket_slow = [0] * n
        self.calls = self.failures = self.slow_calls = 0

    def clear(self) -> None:
        self._zero()
        self.consecutive_failures = 0
        self._last = None


@dataclass(frozen=True, slots=True)
class CountWindow:
    """A sliding window over the last ``size`` calls (a ring buffer, O(1) per call).

    Example:
        >>> breaker = CircuitBreaker(trip=FailureRate(50, minimum_calls=10), window=CountWindow(20))
    """

    size: int = 100

    def __post_init__(self) -> None:
        _check_positive_int("window size", self.size)

    def _create(self) -> _Window:
        return _CountMetrics(self.size)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A sliding window over the calls of the last ``seconds``, kept in ``buckets``
    slices (default one per second, as in resilience4j): O(1) per call, memory
    independent of the call rate. A call leaves the window between
    ``seconds - seconds / buckets`` and ``seconds`` after it was recorded.

    Example:
        >>> window = TimeWindow(60)             # 60 one-second buckets
        >>> window = TimeWindow(0.5, buckets=10)  # 50 ms buckets
    """

    seconds: float = 60.0
    buckets: int = field(default=0)
    """Slices of the window; 0 (the default) picks one per second, at least 1."""

    def __post_init__(self) -> None:
        seconds = self.seconds
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or seconds <= 0
        ):
            raise ConfigurationError(
                f"window seconds must be a positive number, got {seconds!r}",
                field="seconds",
                value=seconds,
            )
        buckets = self.buckets
        if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 0:
            raise ConfigurationError(
                f"window buckets must be a positive int (or 0 for one per second), got {buckets!r}",
                field="buckets",
                value=buckets,
            )
        if buckets == 0:
            object.__setattr__(self, "buckets", max(1, math.ceil(seconds - _EPSILON)))

    def _create(self) -> _Window:
        return _TimeMetrics(self.seconds, self.buckets)


class _Trials:
    """The HALF_OPEN state's metrics: the trial calls of one half-open period."""

    __slots__ = ("calls", "consecutive_failures", "failures", "slow_calls")

    def __init__(self) -> None:
        self.calls = self.failures = self.slow_calls = self.consecutive_failures = 0


# --- the events stream ---------------------------------------------------------------------


class _EventStream(Observable[BreakerEvent]):
    """A hot observable, like a Subject, that isolates its subscribers.

    A plain Subject stops delivering to the remaining observers when one raises,
    and takes a lock per event; here each subscriber is called in turn, one that
    raises is logged and keeps its subscription, and the observer list is an
    immutable tuple replaced on (un)subscribe, so emitting copies nothing.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.observers: tuple[abc.ObserverBase[BreakerEvent], ...] = ()

    def _subscribe_core(
        self,
        observer: abc.ObserverBase[BreakerEvent],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        self.observers = (*self.observers, observer)

        def unsubscribe() -> None:
            self.observers = tuple(o for o in self.observers if o is not observer)

        return Disposable(unsubscribe)

    def emit(self, event: BreakerEvent) -> None:
        for observer in self.observers:
            try:
                observer.on_next(event)
            except Exception:
                _log.exception(
                    "an events subscriber of circuit breaker %r raised on %s; the breaker "
                    "carries on",
                    self.name,
                    event.kind.name,
                )


# --- the breaker -----------------------------------------------------------------------------

_names = itertools.count(1)


class CircuitBreaker:
    """Guards calls to one dependency: rejects them at once while it keeps failing.

    The guide's constructor works as written::

        breaker = CircuitBreaker(failure_threshold=5, timeout=60)
        result = await breaker.call(fetch, url)        # or decorate: @breaker

    Args:
        failure_threshold: Open after this many consecutive failures. Default 5 when
            no ``trip`` rule is given; with ``trip``, None (the default) means only
            ``trip`` applies, and a number adds ``ConsecutiveFailures(n) | trip``.
        timeout: Seconds the breaker stays open before it lets a trial call through.
        name: Shown in errors, events and statistics; default ``"breaker-<n>"``.
        trip: A :class:`TripRule`: :class:`ConsecutiveFailures`, :class:`FailureRate`,
            :class:`SlowCallRate`, combined with ``|`` and ``&``.
        window: The CLOSED state's sliding window for the rates:
            :class:`CountWindow` (default, the last 100 calls) or :class:`TimeWindow`.
        slow_call_duration: Seconds above which a call counts as slow (None: never).
        half_open_max_calls: Trial calls let through per half-open period; calls
            beyond them are rejected at once (``retry_after`` None), not queued.
        open_backoff: Multiplies the open duration each time a trial reopens the
            breaker (1: no back-off); it falls back to ``timeout`` when it closes.
        max_timeout: Cap of the backed-off open duration (None: no cap).
        expected: The exceptions that count as failures (default: every
            ``Exception``). Other exceptions count as successes: the dependency
            answered. A type, a tuple of types or a predicate.
        ignored: Exceptions that count as neither success nor failure (checked first).
        clock: Where time comes from: a :class:`~rxflows.Clock`, an Rx scheduler,
            or None for the running loop's clock.

    Outcomes: a call that returns is a success; one that raises an ``Exception`` is
    classified by ``ignored`` then ``expected``; a cancelled call (or any other
    ``BaseException``) counts as neither and frees its half-open permit; the
    exception always reaches the caller unwrapped. A function that returns a
    non-awaitable raises TypeError and counts as ignored.

    The OPEN to HALF_OPEN move is lazy: it happens when the open duration has
    elapsed and the breaker is next used (a call, or reading :attr:`state` or
    :meth:`statistics`), so reading :attr:`state` then reports HALF_OPEN.

    The breaker is meant for one event loop (it holds no lock); it never creates
    tasks or timers.

    Example:
        >>> breaker = CircuitBreaker(failure_threshold=3, timeout=30, name="downloads")
        >>> @breaker
        ... async def download(url: str) -> bytes: ...
        >>> breaker.state
        <CircuitState.CLOSED: 'closed'>
    """

    def __init__(
        self,
        failure_threshold: int | None = None,
        timeout: float = 60.0,
        *,
        name: str | None = None,
        trip: TripRule | None = None,
        window: CountWindow | TimeWindow | None = None,
        slow_call_duration: float | None = None,
        half_open_max_calls: int = 1,
        open_backoff: float = 1.0,
        max_timeout: float | None = None,
        expected: ExceptionFilter = Exception,
        ignored: ExceptionFilter = (),
        clock: Clock | abc.SchedulerBase | None = None,
    ) -> None:
        if trip is not None and not isinstance(trip, TripRule):
            raise TypeError(
                f"trip must be a TripRule (ConsecutiveFailures, FailureRate, SlowCallRate, "
                f"or a combination with | and &), got {type(trip).__name__}"
            )
        if failure_threshold is not None or trip is None:
            threshold = 5 if failure_threshold is None else failure_threshold
            _check_positive_int("failure_threshold", threshold, optional=True)
            consecutive = ConsecutiveFailures(threshold)
            trip = consecutive if trip is None else consecutive | trip
        _check_seconds("timeout", timeout, positive=False)
        if name is None:
            name = f"breaker-{next(_names)}"
        elif not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"name must be a non-empty str or None, got {name!r}", field="name", value=name
            )
        if window is None:
            window = CountWindow()
        elif not isinstance(window, CountWindow | TimeWindow):
            raise TypeError(
                f"window must be a CountWindow or a TimeWindow, got {type(window).__name__}"
            )
        if slow_call_duration is not None:
            _check_seconds("slow_call_duration", slow_call_duration, positive=True)
        _check_positive_int("half_open_max_calls", half_open_max_calls)
        _check_number("open_backoff", open_backoff, "a number >= 1", lambda v: v >= 1)
        if max_timeout is not None:
            _check_seconds("max_timeout", max_timeout, positive=False)
            if max_timeout < timeout:
                raise ConfigurationError(
                    f"max_timeout must be >= timeout ({timeout!r}) or None, got {max_timeout!r}",
                    field="max_timeout",
                    value=max_timeout,
                )
        for rule in trip.rules():
            if isinstance(window, CountWindow) and rule.minimum_calls > window.size:
                raise ConfigurationError(
                    f"{rule!r} needs minimum_calls={rule.minimum_calls} calls, more than the "
                    f"sliding window holds ({window!r}): make the window at least that large "
                    "or lower minimum_calls",
                    field="minimum_calls",
                    value=rule.minimum_calls,
                )
            if rule.uses_slow_calls and slow_call_duration is None:
                raise ConfigurationError(
                    f"{rule!r} needs slow_call_duration (seconds above which a call is slow), "
                    "got None",
                    field="slow_call_duration",
                    value=None,
                )

        self._name = name
        self._trip = trip
        self._window_spec = window
        self._timeout = float(timeout)
        self._slow_call_duration = slow_call_duration
        self._slow_limit = math.inf if slow_call_duration is None else slow_call_duration + _EPSILON
        self._half_open_max = half_open_max_calls
        self._backoff = float(open_backoff)
        self._max_timeout = math.inf if max_timeout is None else float(max_timeout)
        self._is_expected = _exception_filter("expected", expected)
        self._is_ignored = _exception_filter("ignored", ignored)
        self._clock = as_clock(clock)
        self._now = self._clock.now

        # Calls read the clock when they must: slow calls need the duration; time
        # windows need the end time. Otherwise only when an events subscriber listens.
        self._timed = slow_call_duration is not None
        self._window = window._create()
        self._window_timed = self._window.timed
        self._check_on_success = trip.check_on_success

        self._state = _CLOSED
        self._epoch = 0  # bumped by every transition: outcomes of older calls are stale
        self._open_until = 0.0
        self._open_duration = self._timeout
        self._trials = _Trials()
        self._permits = 0  # trial permits handed out in this half-open period
        self._steady = False  # CLOSED with a full window of plain successes

        self._calls = 0
        self._successes = 0
        self._failures = 0
        self._ignored = 0
        self._cancelled = 0
        self._slow_calls = 0
        self._rejected = 0
        self._opened = 0

        self._events = _EventStream(name)

    @classmethod
    def from_config(cls, config: AsyncFlowConfig | None = None, **options: Any) -> CircuitBreaker:
        """A breaker with ``config``'s ``circuit_breaker_failure_threshold`` and
        ``circuit_breaker_timeout`` (the defaults for None); ``options`` are passed on.

        Example:
            >>> config = create_async_flow_config(circuit_breaker_failure_threshold=3)
            >>> CircuitBreaker.from_config(config, name="uploads").statistics().name
            'uploads'
        """
        from ._config import config_or_default

        settings = config_or_default(config)
        options.setdefault("failure_threshold", settings.circuit_breaker_failure_threshold)
        options.setdefault("timeout", settings.circuit_breaker_timeout)
        return cls(**options)

    # -- properties ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The breaker's name, as in its errors, events and statistics."""
        return self._name

    @property
    def state(self) -> CircuitState:
        """The current state. Once the open duration has elapsed, reading it moves an
        OPEN breaker to HALF_OPEN (and emits that transition)."""
        if self._state is _OPEN:
            now = self._now()
            if now >= self._open_until - _EPSILON:
                self._transition(_HALF_OPEN, now)
        return self._state

    @property
    def events(self) -> Observable[BreakerEvent]:
        """State transitions and call outcomes, as :class:`BreakerEvent` records.

        A hot observable: subscribers see what happens after they subscribe; it
        never completes. Events are delivered synchronously, in order, from inside
        the call that caused them. A subscriber that raises is logged (logger
        ``rxflows.breaker``) and never disturbs the breaker or the other
        subscribers. Nothing is built per call while nobody is subscribed.

        Example:
            >>> subscription = breaker.events.subscribe(
            ...     lambda e: print(e.kind.name, e.state.name)
            ... )
            >>> subscription.dispose()
        """
        return self._events

    @property
    def trip(self) -> TripRule:
        """The trip rule in force (``failure_threshold`` included)."""
        return self._trip

    @property
    def clock(self) -> Clock:
        """The clock the breaker reads."""
        return self._clock

    # -- calling ------------------------------------------------------------------------

    async def call(
        self, fn: Callable[_P, Awaitable[_R]], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _R:
        """Run ``await fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: The breaker is open, forced open, or half-open with
                every trial permit taken; ``fn`` was not called.
            TypeError: ``fn`` returned something that cannot be awaited.
            Exception: Whatever ``fn`` raised, unwrapped.

        Example:
            >>> async def fetch(url: str) -> str: ...
            >>> page = await breaker.call(fetch, "https://example.com")
        """
        epoch = self._epoch if self._state is _CLOSED else self._acquire()
        self._calls += 1
        start = self._now() if self._timed or self._events.observers else None
        try:
            awaitable = fn(*args, **kwargs)
        except Exception as error:
            self._settle_error(epoch, start, error)
            raise
        except BaseException:
            self._abandon(epoch, start)
            raise
        if type(awaitable) is not CoroutineType and not hasattr(awaitable, "__await__"):
            raise self._not_awaitable(fn, awaitable, epoch, start)
        try:
            result = await awaitable
        except Exception as error:
            self._settle_error(epoch, start, error)
            raise
        except BaseException:
            self._abandon(epoch, start)
            raise
        if self._steady and start is None and epoch == self._epoch and not self._events.observers:
            self._successes += 1  # see _settle: nothing else would change
        else:
            self._settle(epoch, start, 0, None)
        return result

    def __call__(self, fn: Callable[_P, Awaitable[_R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
        """Use the breaker as a decorator of an ``async def`` function.

        Example:
            >>> @breaker
            ... async def upload(path: str) -> str: ...
        """
        if not callable(fn):
            raise TypeError(f"a circuit breaker decorates a callable, got {fn!r}")
        call = self.call

        @functools.wraps(fn)
        async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            return await call(fn, *args, **kwargs)

        return guarded

    # -- manual control --------------------------------------------------------------------

    def force_open(self) -> None:
        """Reject every call until :meth:`reset` (or :meth:`disable`)."""
        if self._state is not _FORCED_OPEN:
            self._transition(_FORCED_OPEN, None)

    def disable(self) -> None:
        """Let every call through and never open, until :meth:`reset` (or ``force_open()``).

        Outcomes still count in the statistics, but not in the window.
        """
        if self._state is not _DISABLED:
            self._transition(_DISABLED, None)

    def reset(self) -> None:
        """Back to CLOSED as if new: the window, the run of failures and the open
        back-off are cleared, and calls already running no longer count toward the
        state. The lifetime counters of :meth:`statistics` are kept."""
        if self._state is _CLOSED:
            self._epoch += 1
            self._steady = False
            self._window.clear()
            self._open_duration = self._timeout
        else:
            self._transition(_CLOSED, None)

    # -- statistics ---------------------------------------------------------------------------

    def statistics(self) -> BreakerStatistics:
        """A snapshot of the breaker's state and counters.

        Example:
            >>> stats = breaker.statistics()
            >>> stats.state, stats.failures, stats.failure_rate
            (<CircuitState.CLOSED: 'closed'>, 0, None)
        """
        state = self.state  # performs a due OPEN -> HALF_OPEN move
        now = self._now()
        window = self._window
        window.refresh(now)
        calls = window.calls
        retry_after = max(0.0, self._open_until - now) if state is _OPEN else None
        return BreakerStatistics(
            name=self._name,
            state=state,
            calls=self._calls,
            successes=self._successes,
            failures=self._failures,
            ignored=self._ignored,
            cancelled=self._cancelled,
            slow_calls=self._slow_calls,
            rejected=self._rejected,
            in_flight=self._calls
            - self._successes
            - self._failures
            - self._ignored
            - self._cancelled,
            window_calls=calls,
            window_failures=window.failures,
            window_slow_calls=window.slow_calls,
            failure_rate=100.0 * window.failures / calls if calls else None,
            slow_call_rate=100.0 * window.slow_calls / calls if calls else None,
            consecutive_failures=window.consecutive_failures,
            opened_count=self._opened,
            open_duration=self._open_duration,
            retry_after=retry_after,
        )

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(name={self._name!r}, state={self._state.name}, "
            f"trip={self._trip!r}, timeout={self._timeout:g})"
        )

    # -- the machinery ------------------------------------------------------------------------
    # Used by ``call`` and by ``ops.circuit_breaker``: ``_admit`` lets a call in (or
    # raises CircuitOpenError), then exactly one of ``_settle``, ``_settle_error``,
    # ``_abandon`` or ``_not_awaitable`` reports it, with the epoch ``_admit`` returned.

    def _admit(self) -> int:
        """Let one call in: its epoch, or CircuitOpenError. Counts the call."""
        epoch = self._epoch if self._state is _CLOSED else self._acquire()
        self._calls += 1
        return epoch

    def _start(self) -> float | None:
        return self._now() if self._timed or self._events.observers else None

    def _acquire(self) -> int:
        state = self._state
        if state is _CLOSED or state is _DISABLED:
            return self._epoch
        if state is _FORCED_OPEN:
            self._reject(None, f"circuit breaker {self._name!r} is forced open", None)
        now = self._now()
        if state is _OPEN:
            retry_after = self._open_until - now
            if retry_after > _EPSILON:
                self._reject(
                    now,
                    f"circuit breaker {self._name!r} is open; retry after "
                    f"{_format_seconds(retry_after)} s",
                    retry_after,
                )
            self._transition(_HALF_OPEN, now)
            if self._state is not _HALF_OPEN:  # an events subscriber changed it
                return self._acquire()
        if self._permits >= self._half_open_max:
            self._reject(
                now,
                f"circuit breaker {self._name!r} is half-open and its "
                f"{self._half_open_max} trial call(s) are taken",
                None,
            )
        self._permits += 1
        return self._epoch

    def _reject(self, now: float | None, message: str, retry_after: float | None) -> None:
        self._rejected += 1
        error = CircuitOpenError(message, name=self._name, retry_after=retry_after)
        if self._events.observers:
            self._emit(BreakerEventKind.REJECTED, now, error=error)
        raise error

    def _settle_error(self, epoch: int, start: float | None, error: Exception) -> None:
        try:
            ignored = self._is_ignored(error)
            failed = not ignored and self._is_expected(error)
        except BaseException:
            self._abandon(epoch, start)  # a filter that raises must not leak a permit
            raise
        if ignored:
            self._neither(epoch, start, BreakerEventKind.IGNORED, error)
        else:
            self._settle(epoch, start, _FAILED if failed else 0, error if failed else None)

    def _not_awaitable(
        self, fn: Callable[..., object], value: object, epoch: int, start: float | None
    ) -> TypeError:
        error = TypeError(
            f"circuit breaker {self._name!r}: {fn!r} returned {type(value).__name__}, not an "
            "awaitable; pass an async def function (run blocking code with asyncio.to_thread)"
        )
        self._neither(epoch, start, BreakerEventKind.IGNORED, error)
        return error

    def _abandon(self, epoch: int, start: float | None) -> None:
        self._neither(epoch, start, BreakerEventKind.CANCELLED, None)

    def _neither(
        self, epoch: int, start: float | None, kind: BreakerEventKind, error: BaseException | None
    ) -> None:
        """A call that tells nothing about the dependency: count it, free its permit."""
        if kind is BreakerEventKind.IGNORED:
            self._ignored += 1
        else:
            self._cancelled += 1
        if epoch == self._epoch and self._state is _HALF_OPEN:
            self._permits -= 1
        if self._events.observers:
            now = self._now()
            duration = None if start is None else now - start
            self._emit(kind, now, duration=duration, error=error)

    def _settle(self, epoch: int, start: float | None, code: int, error: Exception | None) -> None:
        """Record a success (``code`` 0) or a failure (``code`` has ``_FAILED``)."""
        now: float | None = None
        duration: float | None = None
        if start is not None:
            now = self._now()
            duration = now - start
            if duration > self._slow_limit:
                code |= _SLOW
                self._slow_calls += 1
        failed = code & _FAILED
        if failed:
            self._failures += 1
        else:
            self._successes += 1
        decision: CircuitState | None = None
        if epoch == self._epoch:
            state = self._state
            if state is _CLOSED:
                window = self._window
                if failed:
                    window.consecutive_failures += 1
                else:
                    window.consecutive_failures = 0
                if now is None and self._window_timed:
                    now = self._now()
                window.record(code, 0.0 if now is None else now)
                # A window without a failure or a slow call never trips (the rates are 0%
                # and the run of failures is over), so plain successes skip the rule then.
                if (
                    code or (self._check_on_success and (window.failures or window.slow_calls))
                ) and self._trip.should_open(window):
                    decision = _OPEN
                else:
                    # A full window of plain successes: the next success changes nothing
                    # (``call`` then skips recording it).
                    self._steady = not code and window.steady()
            elif state is _HALF_OPEN:
                trials = self._trials
                trials.calls += 1
                if failed:
                    trials.failures += 1
                    trials.consecutive_failures += 1
                else:
                    trials.consecutive_failures = 0
                trials.slow_calls += code >> 1
                if self._trip.should_reopen(trials, self._half_open_max):
                    decision = _OPEN
                elif trials.calls >= self._half_open_max:
                    decision = _CLOSED
        if self._events.observers:
            if now is None:
                now = self._now()
            kind = BreakerEventKind.FAILURE if failed else BreakerEventKind.SUCCESS
            self._emit(kind, now, duration=duration, error=error, slow=bool(code & _SLOW))
        if decision is not None and epoch == self._epoch:  # unless a subscriber moved it
            self._transition(decision, now)

    def _transition(self, to: CircuitState, now: float | None) -> None:
        previous = self._state
        if now is None:
            now = self._now()
        self._state = to
        self._epoch += 1
        self._steady = False
        if to is _CLOSED:
            self._window.clear()
            self._open_duration = self._timeout
        elif to is _OPEN:
            if previous is _HALF_OPEN:
                self._open_duration = min(self._open_duration * self._backoff, self._max_timeout)
            else:
                self._open_duration = self._timeout
            self._open_until = now + self._open_duration
            self._opened += 1
        elif to is _HALF_OPEN:
            trials = self._trials
            trials.calls = trials.failures = trials.slow_calls = trials.consecutive_failures = 0
            self._permits = 0
        if self._events.observers:
            self._emit(BreakerEventKind.STATE_CHANGED, now, previous=previous)

    def _emit(
        self,
        kind: BreakerEventKind,
        now: float | None,
        *,
        duration: float | None = None,
        error: BaseException | None = None,
        slow: bool = False,
        previous: CircuitState | None = None,
    ) -> None:
        event = BreakerEvent(
            kind,
            self._name,
            self._now() if now is None else now,
            self._state,
            previous,
            duration,
            error,
            slow,
        )
        self._events.emit(event)


def _format_seconds(seconds: float) -> str:
    """``60``, ``17.5``, ``1234.5``, ``0.004``: to the millisecond, no float noise."""
    if seconds >= 1:
        return f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{seconds:.3g}"


# --- validation --------------------------------------------------------------------------


def _check_positive_int(name: str, value: object, *, optional: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        rule = "a positive int or None" if optional else "a positive int"
        raise ConfigurationError(f"{name} must be {rule}, got {value!r}", field=name, value=value)


def _check_number(name: str, value: object, rule: str, accept: Callable[[float], bool]) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not accept(float(value))
    ):
        raise ConfigurationError(f"{name} must be {rule}, got {value!r}", field=name, value=value)


def _check_seconds(name: str, value: object, *, positive: bool) -> None:
    if positive:
        _check_number(name, value, "a positive number of seconds", lambda v: v > 0)
    else:
        _check_number(name, value, "a number of seconds >= 0", lambda v: v >= 0)


def _check_rate(name: str, value: object) -> None:
    _check_number(name, value, "a percentage in (0, 100]", lambda v: 0 < v <= 100)


def _exception_filter(name: str, value: object) -> Callable[[BaseException], bool]:
    if isinstance(value, type) and issubclass(value, BaseException):
        exception_type = value
        return lambda error: isinstance(error, exception_type)
    if isinstance(value, tuple) and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        types: tuple[type[BaseException], ...] = value
        return lambda error: isinstance(error, types)
    if callable(value) and not isinstance(value, type):
        predicate: Callable[[BaseException], bool] = value
        return lambda error: bool(predicate(error))
    raise TypeError(
        f"{name} must be an exception type, a tuple of exception types, or a predicate "
        f"taking the exception, got {value!r}"
    )
