"""Retrying coroutines: a frozen, shareable :class:`RetryPolicy` and small backoff strategies.

The policy holds settings only; the state of one retried call (the attempt count,
the previous delay, when it started) lives in that call, so concurrent calls of one
decorated function never share counters. Time and sleeping come from a
:class:`~rxflows.Clock` (default: the loop clock), so back-off runs in virtual time
under :class:`rxflows.testing.VirtualTimeLoop`.

``asyncio.CancelledError`` is never retried: it is not an ``Exception``, and
``retry_on`` only accepts ``Exception`` subclasses. Cancellation during a call or
during a back-off sleep propagates at once.

Strategies are tiny frozen callables, in the spirit of tenacity's ``wait.py``::

    ExponentialBackoff(1.0, 2.0, 30.0)          # 1, 2, 4, 8, ... capped at 30
    FullJitter(ExponentialBackoff(1.0))         # U(0, that)
    EqualJitter(ExponentialBackoff(1.0))        # that/2 + U(0, that/2)
    DecorrelatedJitter(1.0, 30.0)               # min(30, U(1, 3 * previous))
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import inspect
import math
import random as _random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import KW_ONLY, dataclass, field
from random import Random
from typing import Any, ParamSpec, TypedDict, TypeVar, Unpack

from reactivex import Observable, abc
from reactivex.subject import Subject

from ._clock import Clock, as_clock
from ._errors import CircuitOpenError, ConfigurationError

__all__ = [
    "ATTEMPTS_ATTRIBUTE",
    "Backoff",
    "ConstantBackoff",
    "DecorrelatedJitter",
    "EqualJitter",
    "ExponentialBackoff",
    "FullJitter",
    "Jitter",
    "RetryAttempt",
    "RetryOptions",
    "RetryPolicy",
    "WaitStrategy",
    "async_retry",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")

ATTEMPTS_ATTRIBUTE = "rxflows_attempts"
"""The attribute a retry policy sets on the exception it gives up with: attempts made."""

RandomSource = Random | Callable[[], float]
"""Where jitter draws from: a ``random.Random`` or a callable returning floats in [0, 1)."""

WaitStrategy = Callable[[int, float | None, Callable[[], float]], float]
"""``wait(retry, previous, random) -> seconds``: the delay before retry number ``retry``.

``retry`` is 1 for the wait after the first failed attempt; ``previous`` is what the
strategy returned for the retry before (None the first time); ``random()`` returns a
float in [0, 1). Every :class:`Backoff` is one.
"""


# -- strategies ------------------------------------------------------------------------


def _check_seconds(owner: str, name: str, value: object, *, allow_inf: bool = False) -> float:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and value >= 0
        and (math.isfinite(value) or allow_inf)
    )
    if not ok:
        rule = "a number of seconds >= 0" + (" (math.inf: no cap)" if allow_inf else "")
        raise ConfigurationError(
            f"{_prefix(owner)}{name} must be {rule}, got {value!r}", field=name, value=value
        )
    return float(value)  # type: ignore[arg-type]  # checked above: an int or a float


def _check_multiplier(owner: str, name: str, value: object) -> float:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value >= 1
    )
    if not ok:
        raise ConfigurationError(
            f"{_prefix(owner)}{name} must be a finite number >= 1, got {value!r}",
            field=name,
            value=value,
        )
    return float(value)  # type: ignore[arg-type]  # checked above: an int or a float


def _prefix(owner: str) -> str:
    return f"{owner}: " if owner else ""


class Backoff(ABC):
    """A delay strategy: ``backoff(retry, previous, random)`` is the wait before a retry.

    Strategies hold settings only, so one instance can serve any number of calls at
    once; the per-call state (``retry``, ``previous``) is passed in. Jitter strategies
    wrap another strategy (``FullJitter(ExponentialBackoff(...))``), and any callable
    with this signature can stand in for a ``Backoff`` (see :data:`WaitStrategy`).
    """

    __slots__ = ()

    @abstractmethod
    def __call__(self, retry: int, previous: float | None, random: Callable[[], float]) -> float:
        """Seconds to wait before retry number ``retry`` (1 = after the first failure)."""


@dataclass(frozen=True, slots=True)
class ConstantBackoff(Backoff):
    """The same delay before every retry.

    Example:
        >>> ConstantBackoff(0.5)(3, None, random.random)
        0.5
    """

    delay: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "delay", _check_seconds("ConstantBackoff", "delay", self.delay))

    def __call__(self, retry: int, previous: float | None, random: Callable[[], float]) -> float:
        return self.delay


@dataclass(frozen=True, slots=True)
class ExponentialBackoff(Backoff):
    """``min(max_delay, base * multiplier ** (retry - 1))``: 1, 2, 4, 8, ... by default.

    Example:
        >>> [ExponentialBackoff(1.0, 2.0, 5.0)(n, None, random.random) for n in (1, 2, 3, 4)]
        [1.0, 2.0, 4.0, 5.0]
    """

    base: float = 1.0
    multiplier: float = 2.0
    max_delay: float = math.inf

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", _check_seconds("ExponentialBackoff", "base", self.base))
        object.__setattr__(
            self,
            "multiplier",
            _check_multiplier("ExponentialBackoff", "multiplier", self.multiplier),
        )
        cap = _check_seconds("ExponentialBackoff", "max_delay", self.max_delay, allow_inf=True)
        _check_cap("ExponentialBackoff", cap, self.base, "base")
        object.__setattr__(self, "max_delay", cap)

    def __call__(self, retry: int, previous: float | None, random: Callable[[], float]) -> float:
        return min(self.max_delay, _grow(self.base, self.multiplier, retry - 1))


@dataclass(frozen=True, slots=True)
class FullJitter(Backoff):
    """``U(0, d)`` where ``d`` is the wrapped strategy's delay ("full jitter", AWS).

    Example:
        >>> FullJitter(ExponentialBackoff(1.0))(3, None, lambda: 0.25)   # U(0, 4)
        1.0
    """

    backoff: Backoff | WaitStrategy

    def __post_init__(self) -> None:
        _check_callable("FullJitter", "backoff", self.backoff)

    def __call__(self, retry: int, previous: float | None, random: Callable[[], float]) -> float:
        return self.backoff(retry, previous, random) * random()


@dataclass(frozen=True, slots=True)
class EqualJitter(Backoff):
    """``d/2 + U(0, d/2)`` where ``d`` is the wrapped strategy's delay ("equal jitter").

    Example:
        >>> EqualJitter(ExponentialBackoff(1.0))(3, None, lambda: 0.5)   # 2 + U(0, 2)
        3.0
    """

    backoff: Backoff | WaitStrategy

    def __post_init__(self) -> None:
        _check_callable("EqualJitter", "backoff", self.backoff)

    def __call__(self, retry: int, previous: float | None, random: Callable[[], float]) -> float:
        half = self.backoff(retry, previous, random) / 2
        return half + half * random()


@dataclass(frozen=True, slots=True)
class DecorrelatedJitter(Backoff):
    """``min(max_delay, U(base, 3 * previous))``, ``previous`` starting at ``base`` (AWS).

    Each delay grows from the one before by a random factor of up to 3, so it needs
    the previous delay of the same call: the policy keeps it per call.

    Example:
        >>> DecorrelatedJitter(1.0, 30.0)(2, 2.0, lambda: 0.5)   # U(1, 6)
        3.5
    """

    base: float = 1.0
    max_delay: float = math.inf

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", _check_seconds("DecorrelatedJitter", "base", self.base))
        cap = _check_seconds("DecorrelatedJitter", "max_delay", self.max_delay, allow_inf=True)
        _check_cap("DecorrelatedJitter", cap, self.base, "base")
        object.__setattr__(self, "max_delay", cap)

    def __call__(self, retry: int, previous: float | None, random: Callable[[], float]) -> float:
        last = self.base if previous is None else previous
        return min(self.max_delay, self.base + (3 * last - self.base) * random())


class Jitter(enum.Enum):
    """The jitter of a :class:`RetryPolicy` built from ``delay``/``backoff``/``max_delay``.

    With ``d = min(max_delay, delay * backoff ** (retry - 1))``:
    """

    NONE = "none"
    """``d``: 1, 2, 4, ... (deterministic)."""
    FULL = "full"
    """``U(0, d)``."""
    EQUAL = "equal"
    """``d/2 + U(0, d/2)``."""
    DECORRELATED = "decorrelated"
    """``min(max_delay, U(delay, 3 * previous))``; ``backoff`` does not apply."""


def _grow(base: float, multiplier: float, exponent: int) -> float:
    if base == 0 or multiplier == 1 or exponent <= 0:
        return base
    try:
        return base * multiplier**exponent
    except OverflowError:
        return math.inf


def _check_cap(owner: str, cap: float, base: float, base_name: str) -> None:
    if cap < base:
        raise ConfigurationError(
            f"{_prefix(owner)}max_delay must be >= {base_name} ({base!r}), got {cap!r}",
            field="max_delay",
            value=cap,
        )


def _check_callable(owner: str, name: str, value: object) -> None:
    if not callable(value):
        raise TypeError(f"{_prefix(owner)}{name} must be callable, got {value!r}")


def _jitter(value: object) -> Jitter:
    if isinstance(value, Jitter):
        return value
    names = [j.value for j in Jitter]
    if isinstance(value, str) and value in names:
        return Jitter(value)
    close = difflib.get_close_matches(value, names, n=1) if isinstance(value, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigurationError(
        f"jitter must be one of {', '.join(map(repr, names))} or a Jitter, got {value!r}{hint}",
        field="jitter",
        value=value,
    )


# -- attempt records -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryAttempt:
    """What happened to one failed attempt: the record given to hooks and events."""

    operation: str
    """The qualified name of the retried function (``"ops.retry"`` for an observable)."""
    attempt: int
    """The number of the attempt that failed: 1 for the first call."""
    error: Exception
    """The exception it failed with."""
    delay: float | None
    """Seconds the policy waits before the next attempt; None when it gives up."""
    time: float
    """The clock time at which the failure was seen."""
    elapsed: float
    """Seconds between the start of the first attempt and the failure."""
    reason: str | None = None
    """Why the policy gives up (the note added to the exception); None for a retry."""

    @property
    def gave_up(self) -> bool:
        """Whether the policy gives up after this attempt (no retry follows)."""
        return self.delay is None


# -- the policy ------------------------------------------------------------------------


class RetryOptions(TypedDict, total=False):
    """The keywords of :class:`RetryPolicy` after ``max_attempts`` and ``delay``."""

    backoff: float
    max_delay: float
    jitter: Jitter | str
    wait: Backoff | WaitStrategy | None
    retry_on: type[Exception] | tuple[type[Exception], ...]
    retry_if: Callable[[Exception], bool] | None
    give_up_on: type[Exception] | tuple[type[Exception], ...]
    deadline: float | None
    on_retry: Callable[[RetryAttempt], object] | None
    random: RandomSource | None
    clock: Clock | abc.SchedulerBase | None


class RetryPolicyOptions(RetryOptions, total=False):
    """Every keyword of :class:`RetryPolicy`."""

    max_attempts: int
    delay: float


_DEFAULT_DELAY = 1.0
_DEFAULT_BACKOFF = 2.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before trying a failed coroutine again.

    A policy is frozen and holds settings only: share one between any number of
    functions and concurrent calls. Each call (each subscription, for
    ``ops.retry``) keeps its own attempt count and previous delay.

    Use it as a decorator (``@policy``), call through it (``await policy.call(fn,
    *args)``), or give it to ``ops.retry(policy)``. :func:`async_retry` builds one.

    The delay before retry ``n`` (``n = 1`` after the first failure) is, with
    ``d = min(max_delay, delay * backoff ** (n - 1))``: ``d`` (``jitter="none"``),
    ``U(0, d)`` (``"full"``), ``d/2 + U(0, d/2)`` (``"equal"``) or
    ``min(max_delay, U(delay, 3 * previous))`` (``"decorrelated"``). ``wait=`` replaces
    that formula with any :class:`Backoff`; ``max_delay`` still caps every delay.

    An exception is retried when it is an instance of ``retry_on``, not an instance
    of ``give_up_on``, and ``retry_if(exc)`` (if given) is true; while attempts are
    left (``max_attempts`` counts the first call); and when the next attempt would
    start no later than ``deadline`` seconds after the first one started (the
    policy gives up rather than sleep past it; a running attempt is not
    interrupted: use ``asyncio.timeout`` for that).

    A :class:`~rxflows.CircuitOpenError` with a ``retry_after`` is not retried before
    it: the delay is at least ``retry_after``, and the policy gives up when that is
    more than ``max_delay`` or would pass the deadline. With ``retry_after=None``
    (forced open, or no trial permit left) it is an ordinary retryable failure.

    When the policy gives up, the last exception is raised unwrapped, with a note
    saying why (``add_note``) and the number of attempts in its ``rxflows_attempts``
    attribute.

    Args:
        max_attempts: Attempts in all, the first call included (a positive int).
        delay: Seconds before the first retry (>= 0); the base of the back-off.
        backoff: Multiplier of the delay at each retry (>= 1; 1 is a constant delay).
        max_delay: Cap of any one delay, in seconds (>= ``delay``).
        jitter: ``"none"``, ``"full"``, ``"equal"`` or ``"decorrelated"`` (or a :class:`Jitter`).
        wait: A :class:`Backoff` (or any :data:`WaitStrategy`) instead of
            ``delay``/``backoff``/``jitter``.
        retry_on: The exception class(es) to retry (``Exception`` subclasses).
        retry_if: A predicate on the exception; retried only when it returns true.
        give_up_on: Exception class(es) never retried, even if ``retry_on`` matches.
        deadline: Seconds from the first attempt after which no attempt starts, or None.
        on_retry: Called with a :class:`RetryAttempt` before each back-off sleep. If it
            raises, the call fails with that exception.
        random: The jitter's random source: a ``random.Random`` (seed it in tests) or
            a callable returning floats in [0, 1); default the ``random`` module.
        clock: Where time is read and waited on: a :class:`~rxflows.Clock` or an Rx
            scheduler; default the running loop's clock.

    Example:
        >>> policy = RetryPolicy(max_attempts=5, delay=0.5, retry_on=ConnectionError)
        >>> @policy
        ... async def fetch(url: str) -> bytes: ...
        >>> await policy.call(download, "video1.mp4")
    """

    max_attempts: int = 3
    delay: float = _DEFAULT_DELAY
    _: KW_ONLY
    backoff: float = _DEFAULT_BACKOFF
    max_delay: float = 30.0
    jitter: Jitter | str = Jitter.NONE
    wait: Backoff | WaitStrategy | None = None
    retry_on: type[Exception] | tuple[type[Exception], ...] = Exception
    retry_if: Callable[[Exception], bool] | None = None
    give_up_on: type[Exception] | tuple[type[Exception], ...] = ()
    deadline: float | None = None
    on_retry: Callable[[RetryAttempt], object] | None = None
    random: RandomSource | None = None
    clock: Clock | abc.SchedulerBase | None = None

    _strategy: Backoff | WaitStrategy = field(init=False, repr=False, compare=False)
    _random: Callable[[], float] = field(init=False, repr=False, compare=False)
    _clock: Clock = field(init=False, repr=False, compare=False)
    _events: Subject[RetryAttempt] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ConfigurationError(
                f"max_attempts must be a positive int (the first call included), got {attempts!r}",
                field="max_attempts",
                value=attempts,
            )
        set_("delay", _check_seconds("", "delay", self.delay))
        set_("backoff", _check_multiplier("", "backoff", self.backoff))
        set_("max_delay", _check_seconds("", "max_delay", self.max_delay))
        if self.wait is None:  # with wait=, delay is not used
            _check_cap("", self.max_delay, self.delay, "delay")
        set_("jitter", _jitter(self.jitter))
        if self.deadline is not None:
            deadline = self.deadline
            ok = (
                not isinstance(deadline, bool)
                and isinstance(deadline, int | float)
                and math.isfinite(deadline)
                and deadline > 0
            )
            if not ok:
                raise ConfigurationError(
                    f"deadline must be a positive number of seconds or None, got {deadline!r}",
                    field="deadline",
                    value=deadline,
                )
            set_("deadline", float(deadline))
        set_("retry_on", _exception_types("retry_on", self.retry_on, allow_empty=False))
        set_("give_up_on", _exception_types("give_up_on", self.give_up_on, allow_empty=True))
        for name in ("retry_if", "on_retry", "wait"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable or None, got {value!r}")
        if self.wait is not None:
            changed = [
                name
                for name, value, default in (
                    ("delay", self.delay, _DEFAULT_DELAY),
                    ("backoff", self.backoff, _DEFAULT_BACKOFF),
                    ("jitter", self.jitter, Jitter.NONE),
                )
                if value != default
            ]
            if changed:
                raise ConfigurationError(
                    f"wait={self.wait!r} sets the delays itself, so {', '.join(changed)} cannot "
                    "be given with it; build the jitter into the strategy "
                    "(e.g. FullJitter(ExponentialBackoff(0.5)))",
                    field="wait",
                    value=self.wait,
                )
            set_("_strategy", self.wait)
        else:
            set_("_strategy", _keyword_strategy(self))
        source = self.random
        if source is None:
            set_("_random", _random.random)
        elif isinstance(source, Random):
            set_("_random", source.random)
        elif callable(source):
            set_("_random", source)
        else:
            raise TypeError(
                f"random must be a random.Random, a callable returning floats in [0, 1) or None, "
                f"got {source!r}"
            )
        set_("_clock", as_clock(self.clock))
        set_("_events", Subject())

    # -- public API ----------------------------------------------------------------------

    @property
    def strategy(self) -> Backoff | WaitStrategy:
        """The delay strategy: ``wait`` if given, else the one the keywords describe."""
        return self._strategy

    @property
    def events(self) -> Observable[RetryAttempt]:
        """A hot observable of every failed attempt of every call made with this policy.

        A record with ``delay=None`` (``gave_up``) is the last attempt of a call. An
        observer that raises makes the retried call fail with that exception, as
        ``on_retry`` does.
        """
        return self._events

    def replace(self, **changes: Any) -> RetryPolicy:
        """A copy with ``changes`` applied, validated like the original."""
        return dataclasses.replace(self, **changes)

    async def call(
        self, fn: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Await ``fn(*args, **kwargs)``, retrying it as the policy says.

        Returns what the first successful attempt returns; raises the last exception
        (unwrapped, annotated) when the policy gives up. A callable that returns
        something other than an awaitable raises TypeError at once.

        Example:
            >>> await RetryPolicy(max_attempts=3, delay=0.5).call(download, "video1.mp4")
        """
        run = RetryRun(self, self._clock, _name_of(fn))
        while True:
            run.begin()
            try:
                awaitable = fn(*args, **kwargs)
                if inspect.isawaitable(awaitable):
                    return await awaitable
            except Exception as error:
                delay = run.failed(error)
                if delay is None:
                    raise
            else:
                raise TypeError(
                    f"retry: {fn!r} returned {type(awaitable).__name__}, not an awaitable; "
                    "retry async def functions"
                )
            await run.clock.sleep(delay)

    def __call__(self, fn: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
        """Decorate an ``async def`` function so that every call of it is retried.

        Raises TypeError at once for anything but a coroutine function.
        """
        if not _is_coroutine_function(fn):
            raise TypeError(
                f"async_retry decorates async def functions; got {fn!r}"
                + (
                    f" ({type(fn).__name__})"
                    if not callable(fn)
                    else "; wrap blocking code with asyncio.to_thread inside an async def"
                )
            )

        @functools.wraps(fn)
        async def retried(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            return await self.call(fn, *args, **kwargs)

        return retried

    def _emit(self, record: RetryAttempt) -> None:
        """Report ``record`` to ``on_retry`` (retries only) and to :attr:`events`."""
        if record.delay is not None and self.on_retry is not None:
            self.on_retry(record)
        self._events.on_next(record)


def _keyword_strategy(policy: RetryPolicy) -> Backoff:
    base, cap = policy.delay, policy.max_delay
    exponential = ExponentialBackoff(base, policy.backoff, cap)
    jitter = policy.jitter
    if jitter is Jitter.FULL:
        return FullJitter(exponential)
    if jitter is Jitter.EQUAL:
        return EqualJitter(exponential)
    if jitter is Jitter.DECORRELATED:
        return DecorrelatedJitter(base, cap)
    return exponential


def _exception_types(name: str, value: object, *, allow_empty: bool) -> tuple[type[Exception], ...]:
    types = value if isinstance(value, tuple) else (value,)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"{name} must be an exception class or a tuple of them, got {value!r}")
        if not issubclass(t, Exception):
            raise ConfigurationError(
                f"{name} must name Exception subclasses, got {t.__name__}: "
                f"{t.__name__} is a BaseException, and cancellation and interrupts are never "
                "retried",
                field=name,
                value=value,
            )
    if not types and not allow_empty:
        raise ConfigurationError(
            f"{name} must name at least one exception class, got ()", field=name, value=value
        )
    return types


def _is_coroutine_function(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    if not callable(fn) or inspect.isfunction(fn) or inspect.ismethod(fn):
        return False
    # an instance of a class with an ``async def __call__``
    return inspect.iscoroutinefunction(type(fn).__call__)


def _name_of(fn: object) -> str:
    name = getattr(fn, "__qualname__", None)
    return name if isinstance(name, str) else repr(fn)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- the state of one call -------------------------------------------------------------


class RetryRun:
    """The state of one retried call or one subscription: never shared.

    ``begin()`` before each attempt; ``failed(error)`` after a failed one returns the
    seconds to wait before the next attempt, or None when the policy gives up (the
    error then carries the note and the attempt count).
    """

    __slots__ = ("attempt", "clock", "operation", "policy", "previous", "started")

    def __init__(self, policy: RetryPolicy, clock: Clock, operation: str) -> None:
        self.policy = policy
        self.clock = clock
        self.operation = operation
        self.started = clock.now()
        self.attempt = 0
        self.previous: float | None = None

    def begin(self) -> None:
        self.attempt += 1

    def failed(self, error: Exception) -> float | None:
        policy = self.policy
        now = self.clock.now()
        attempt = self.attempt
        reason: str | None = None
        delay = 0.0
        if isinstance(error, policy.give_up_on):
            reason = f"{type(error).__name__} is never retried (give_up_on)"
        elif not isinstance(error, policy.retry_on):
            reason = f"{type(error).__name__} is not retried (retry_on)"
        elif policy.retry_if is not None and not policy.retry_if(error):
            reason = f"retry_if returned false for this {type(error).__name__}"
        elif attempt >= policy.max_attempts:
            reason = f"max_attempts={policy.max_attempts} reached"
        else:
            delay = self.next_delay(attempt)
            self.previous = delay
            if (
                isinstance(error, CircuitOpenError)
                and error.retry_after is not None
                and error.retry_after > delay
            ):
                if error.retry_after > policy.max_delay:
                    reason = (
                        f"circuit breaker {error.name!r} stays open {error.retry_after:g}s "
                        f"more, longer than max_delay={policy.max_delay:g}s"
                    )
                delay = error.retry_after
            if reason is None and policy.deadline is not None:
                elapsed_then = now + delay - self.started
                if elapsed_then > policy.deadline:
                    reason = (
                        f"the next attempt, {delay:g}s from now, would start "
                        f"{elapsed_then:g}s after the first, past deadline={policy.deadline:g}s"
                    )
        if reason is not None:
            note = f"rxflows retry: gave up after {_plural(attempt, 'attempt')}: {reason}"
            error.add_note(note)
            setattr(error, ATTEMPTS_ATTRIBUTE, attempt)
            policy._emit(
                RetryAttempt(self.operation, attempt, error, None, now, now - self.started, note)
            )
            return None
        policy._emit(RetryAttempt(self.operation, attempt, error, delay, now, now - self.started))
        return delay

    def next_delay(self, attempt: int) -> float:
        policy = self.policy
        strategy = policy._strategy
        delay = strategy(attempt, self.previous, policy._random)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or math.isnan(delay):
            raise TypeError(
                f"retry: the wait strategy {strategy!r} returned {delay!r} for retry {attempt}; "
                "it must return a number of seconds"
            )
        return min(policy.max_delay, max(0.0, float(delay)))


# -- the guide's decorator -------------------------------------------------------------


def async_retry(
    max_attempts: int = 3, delay: float = 1.0, **options: Unpack[RetryOptions]
) -> RetryPolicy:
    """Retry an ``async def`` function with exponential back-off: the guide's decorator.

    Builds a :class:`RetryPolicy` (see it for every keyword); the policy is the
    decorator, so it can also be kept and shared, or used as
    ``await policy.call(fn, *args)``.

    Example:
        >>> @async_retry(max_attempts=3, delay=1.0)
        ... async def robust_operation():
        ...     return await potentially_failing_operation()

        Attempts at 0 s, 1 s and 3 s (delays 1 s then 2 s); then the last exception.
    """
    if callable(max_attempts):
        raise TypeError(
            "async_retry needs parentheses: write @async_retry() or "
            f"@async_retry(max_attempts=3, delay=1.0), got @async_retry on {max_attempts!r}"
        )
    return RetryPolicy(max_attempts, delay, **options)
