"""The priority task queue: workers, timeouts, retries, aging; nothing lost, nothing starved.

A :class:`PriorityTaskQueue` holds :class:`AsyncTask` records (a coroutine function
and its arguments, a :class:`TaskPriority`, an optional timeout and retries) and runs
them with a bounded number of workers, highest priority first, first in first out
among equal priorities. Every task that is accepted ends in exactly one
:class:`TaskResult` (succeeded, failed, timed out or cancelled), published on
:attr:`PriorityTaskQueue.results` and returned by
:meth:`PriorityTaskQueue.process_tasks`.

How the queue orders tasks
--------------------------

One FIFO deque per priority level. Without aging, a worker takes the head of the
highest non-empty level: O(number of levels) = O(4), never a comparison between
tasks. With ``aging_interval=s``, a task's *effective priority* is
``priority + waited / s``: it rises one level every ``s`` seconds it waits. Two
waiting tasks age at the same rate, so which of them is ahead never changes with
time: comparing effective priorities is comparing the constant
``queued_at - priority * s`` (smaller first; equal keys go by arrival order). So
the order needs no re-heapifying: within a level the head is the oldest, hence
the one with the highest effective priority, and ``get`` compares the four heads.

Lifecycle::

              start(n) / process_tasks(n)          stop(...)
    OPEN ───────────────────────────────▶ OPEN ───────────────▶ STOPPING ──▶ CLOSED
    (put, get, cancel)                  (workers)    (no put; drain or      (results
                                                      withdraw; wait)        completes)

Time (queued, started and finished times, timeouts, aging, retry back-off) comes
from a :class:`~rxflows.Clock`: the running loop's clock by default, so tests in
virtual time see exact times.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import inspect
import itertools
import logging
import math
import types
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._clock import Clock, LoopClock, as_clock, loop_time_reader
from ._config import AsyncFlowConfig, config_or_default
from ._errors import (
    ConfigurationError,
    QueueBusyError,
    QueueClosedError,
    QueueEmptyError,
    QueueFullError,
    TaskTimeoutError,
)
from ._resource import AsyncResource
from ._retry import RetryPolicy, RetryRun

__all__ = [
    "AsyncTask",
    "PriorityStatistics",
    "PriorityTaskQueue",
    "TaskPriority",
    "TaskQueueState",
    "TaskQueueStatistics",
    "TaskResult",
    "TaskStatus",
]

_log = logging.getLogger("rxflows.tasks")

# A worker whose tasks finish without suspending yields to the loop this often, so a
# burst of trivial tasks cannot starve timers, I/O and the other workers.
_YIELD_EVERY = 256
# Wait times kept per priority for the percentiles of statistics().
_WAIT_SAMPLES = 1024


class TaskPriority(enum.IntEnum):
    """How urgent a task is: ``LOW < NORMAL < HIGH < CRITICAL``."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    CRITICAL = 4


_PRIORITIES: Final = tuple(TaskPriority)
_DESCENDING: Final = tuple(reversed(_PRIORITIES))


class TaskStatus(enum.Enum):
    """How a task ended, in its :class:`TaskResult`."""

    SUCCEEDED = "succeeded"
    """The coroutine returned; ``result`` holds what it returned."""
    FAILED = "failed"
    """The last attempt raised; ``exception`` holds the exception."""
    TIMED_OUT = "timed_out"
    """The last attempt ran past ``timeout``; ``exception`` is a TaskTimeoutError."""
    CANCELLED = "cancelled"
    """Cancelled while queued or running (``cancel()``, ``stop()``, its worker
    cancelled); ``exception`` is an ``asyncio.CancelledError`` saying which."""


class TaskQueueState(enum.Enum):
    """The lifecycle of a :class:`PriorityTaskQueue`."""

    OPEN = "open"
    """Accepting tasks."""
    STOPPING = "stopping"
    """``stop()`` was called: no more puts; queued tasks are drained or withdrawn."""
    CLOSED = "closed"
    """Stopped: nothing queued, nothing running, no workers; ``results`` completed."""


_OPEN: Final = TaskQueueState.OPEN
_STOPPING: Final = TaskQueueState.STOPPING
_CLOSED: Final = TaskQueueState.CLOSED

_SUCCEEDED: Final = TaskStatus.SUCCEEDED
_FAILED: Final = TaskStatus.FAILED
_TIMED_OUT: Final = TaskStatus.TIMED_OUT
_CANCELLED: Final = TaskStatus.CANCELLED

# Where a task is, internally (AsyncTask._state).
_QUEUED: Final = 1
_TAKEN: Final = 2  # handed out by get(); the caller's now
_RUNNING: Final = 3
_DONE: Final = 4

# Why the queue cancelled a running task (AsyncTask._cancel_reason).
_BY_CANCEL: Final = "cancel"
_BY_TIMEOUT: Final = "timeout"
_BY_STOP: Final = "stop"


# --- records ---------------------------------------------------------------------------


class TaskResult(NamedTuple):
    """How one task ended: one record per accepted task (an immutable named tuple).

    Times are on the queue's clock (seconds; only differences mean anything).
    ``started_at`` is None for a task cancelled before it started; ``attempts`` is
    0 then.

    Example:
        >>> records = await queue.process_tasks(max_workers=5)
        >>> [(r.name, r.status.name, r.result) for r in records]
        [('process_urgent_video', 'SUCCEEDED', 'urgent_video.webm')]
    """

    task_id: str
    name: str
    priority: TaskPriority
    status: TaskStatus
    result: Any
    """What the coroutine returned (SUCCEEDED), else None."""
    exception: BaseException | None
    """The last attempt's exception (FAILED), a TaskTimeoutError (TIMED_OUT) or an
    ``asyncio.CancelledError`` (CANCELLED); None when it SUCCEEDED."""
    queued_at: float
    started_at: float | None
    finished_at: float
    attempts: int

    @property
    def succeeded(self) -> bool:
        """Whether the task's coroutine returned."""
        return self.status is _SUCCEEDED

    @property
    def wait_time(self) -> float | None:
        """Seconds from put to the first attempt; None if it never started."""
        return None if self.started_at is None else self.started_at - self.queued_at

    @property
    def run_time(self) -> float | None:
        """Seconds from the first attempt to the end; None if it never started."""
        return None if self.started_at is None else self.finished_at - self.started_at

    def unwrap(self) -> Any:
        """The result if the task succeeded, else raise its exception.

        Example:
            >>> record.unwrap()
            'urgent_video.webm'
        """
        if self.exception is not None:
            raise self.exception
        return self.result


_tuple_new: Final = tuple.__new__


def _new_record(
    task: AsyncTask,
    status: TaskStatus,
    result: Any,
    exception: BaseException | None,
    started_at: float | None,
    finished_at: float,
    attempts: int,
) -> TaskResult:
    # tuple.__new__ directly: a NamedTuple's own __new__ is a Python function with
    # keyword handling, several times slower; a queue builds one record per task
    return _tuple_new(
        TaskResult,
        (
            task.task_id,
            task.name,
            task.priority,
            status,
            result,
            exception,
            task._queued_at,
            started_at,
            finished_at,
            attempts,
        ),
    )


@dataclass(frozen=True, slots=True)
class PriorityStatistics:
    """The figures of one priority level, in :class:`TaskQueueStatistics`.

    ``queued`` and ``running`` are now; the outcome counters count from the
    queue's creation. The wait-time percentiles (seconds from put to start, or to
    ``get()``) are over the last 1024 tasks of this level that started; None until
    one has.
    """

    priority: TaskPriority
    queued: int
    running: int
    taken: int
    """Handed out by ``get()`` (a task you then ``execute()`` also counts under its outcome)."""
    succeeded: int
    failed: int
    timed_out: int
    cancelled: int
    wait_p50: float | None
    wait_p90: float | None
    wait_p99: float | None
    wait_max: float | None

    @property
    def done(self) -> int:
        """Tasks of this level that ended, however they ended."""
        return self.succeeded + self.failed + self.timed_out + self.cancelled


@dataclass(frozen=True, slots=True)
class TaskQueueStatistics:
    """A snapshot of a :class:`PriorityTaskQueue`, from :meth:`~PriorityTaskQueue.statistics`.

    The totals add up the levels; ``priorities`` holds one
    :class:`PriorityStatistics` per :class:`TaskPriority`, highest first.
    """

    name: str
    state: TaskQueueState
    maxsize: int
    workers: int
    queued: int
    running: int
    taken: int
    succeeded: int
    failed: int
    timed_out: int
    cancelled: int
    priorities: tuple[PriorityStatistics, ...]

    @property
    def done(self) -> int:
        """Tasks that ended, however they ended."""
        return self.succeeded + self.failed + self.timed_out + self.cancelled

    def priority(self, priority: TaskPriority) -> PriorityStatistics:
        """The figures of one level."""
        for level in self.priorities:
            if level.priority is priority:
                return level
        raise KeyError(priority)


# --- tasks -------------------------------------------------------------------------------

_ids = itertools.count(1)
_FUNCTION: Final = types.FunctionType
_CO_COROUTINE: Final = inspect.CO_COROUTINE
_NO_KWARGS: Mapping[str, Any] = types.MappingProxyType({})


class AsyncTask:
    """A unit of work for a :class:`PriorityTaskQueue`: ``await func(*args, **kwargs)``.

    Args:
        func: An ``async def`` function (or a bound async method, a
            ``functools.partial`` of one, an object with ``async def __call__``).
            A plain function is rejected at once: awaiting what it returns would
            run it on the event loop first. Run blocking code off the loop with
            ``AsyncTask(asyncio.to_thread, args=(blocking_fn, *its_args))``.
        args: Positional arguments, a tuple (a list is copied into one).
        kwargs: Keyword arguments, a mapping (copied), or None.
        priority: A :class:`TaskPriority`; default ``NORMAL``.
        timeout: Seconds each attempt may run before the queue cancels it
            (status TIMED_OUT, a :class:`~rxflows.TaskTimeoutError`), or None.
        task_id: A unique id; default ``"task-<n>"``, unique in the process.
        name: Shown in records and errors; default the function's qualified name.
        retries: Further attempts after a failure (any ``Exception``, timeouts
            included), at once; default 0.
        retry: A :class:`~rxflows.RetryPolicy` instead of ``retries``: its
            ``max_attempts``, back-off (on the queue's clock) and exception rules.

    A task runs once: putting it in a queue a second time raises. Its attributes
    are plain attributes for speed; treat them as read-only.

    Example:
        >>> task = AsyncTask(
        ...     func=process_urgent_video,
        ...     args=("urgent_video.mp4",),
        ...     priority=TaskPriority.HIGH,
        ...     timeout=30.0,
        ... )
        >>> task.task_id
        'task-1'
    """

    __slots__ = (
        "_attempts",
        "_cancel_reason",
        "_queue",
        "_queued_at",
        "_seq",
        "_started_at",
        "_state",
        "_worker",
        "args",
        "func",
        "kwargs",
        "name",
        "priority",
        "retries",
        "retry",
        "task_id",
        "timeout",
    )

    def __init__(
        self,
        func: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        priority: TaskPriority = TaskPriority.NORMAL,
        timeout: float | None = None,
        *,
        task_id: str | None = None,
        name: str | None = None,
        retries: int = 0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if type(func) is _FUNCTION and func.__code__.co_flags & _CO_COROUTINE:
            if name is None:  # the common case, cheaply
                name = func.__qualname__
        elif not _is_async_callable(func):
            raise TypeError(_func_error(func))
        if type(args) is not tuple:
            args = _check_args(args)
        kwargs = _NO_KWARGS if kwargs is None else _check_kwargs(kwargs)
        if type(priority) is not TaskPriority:
            raise ConfigurationError(
                f"priority must be a TaskPriority (LOW, NORMAL, HIGH, CRITICAL), got {priority!r}",
                field="priority",
                value=priority,
            )
        if timeout is not None:
            timeout = _positive_seconds("timeout", timeout)
        if retries or retry is not None or type(retries) is not int:
            _check_retries(retries, retry)
        if task_id is None:
            task_id = f"task-{next(_ids)}"
        elif not isinstance(task_id, str) or not task_id:
            raise ConfigurationError(
                f"task_id must be a non-empty str or None, got {task_id!r}",
                field="task_id",
                value=task_id,
            )
        if name is None:
            name = _name_of(func)
        elif not isinstance(name, str):
            raise ConfigurationError(
                f"name must be a str or None, got {name!r}", field="name", value=name
            )
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.priority = priority
        self.timeout = timeout
        self.task_id = task_id
        self.name = name
        self.retries = retries
        self.retry = retry
        # the rest of the (private) state is set when the task is put
        self._queue: PriorityTaskQueue | None = None
        self._state: int
        self._queued_at: float
        self._seq: int
        self._started_at: float
        self._attempts: int
        self._cancel_reason: str | None
        self._worker: asyncio.Task[Any] | None

    def __repr__(self) -> str:
        timeout = "" if self.timeout is None else f", timeout={self.timeout:g}"
        return (
            f"AsyncTask(task_id={self.task_id!r}, name={self.name!r}, "
            f"priority={self.priority.name}{timeout})"
        )


def _is_async_callable(func: object) -> bool:
    if type(func) is _FUNCTION:
        return bool(func.__code__.co_flags & _CO_COROUTINE)
    if not callable(func):
        return False
    # bound methods and functools.partial are unwrapped by inspect; AsyncMock by asyncio
    if inspect.iscoroutinefunction(func) or asyncio.iscoroutinefunction(func):
        return True
    if isinstance(func, types.MethodType | functools.partial | type):
        return False
    # an instance of a class with an ``async def __call__``
    return inspect.iscoroutinefunction(type(func).__call__)


def _func_error(func: object) -> str:
    if not callable(func):
        return f"func must be an async function, got {func!r} ({type(func).__name__})"
    what = _name_of(func)
    return (
        f"func must be an async function (async def), got the plain function {what}: awaiting "
        "what it returns would run it on the event loop first. Run blocking code off the "
        f"loop with AsyncTask(asyncio.to_thread, args=({what}, ...)); for a lambda or a "
        "plain wrapper that returns a coroutine, pass the async function itself with args= "
        "and kwargs= (or a functools.partial of it)"
    )


def _check_args(args: object) -> tuple[Any, ...]:
    if isinstance(args, tuple | list):
        return tuple(args)
    raise ConfigurationError(
        f"args must be a tuple of positional arguments, got {args!r} ({type(args).__name__}); "
        f"write args=({args!r},) for one argument",
        field="args",
        value=args,
    )


def _check_kwargs(kwargs: object) -> dict[str, Any]:
    if isinstance(kwargs, Mapping):
        return dict(kwargs)
    raise ConfigurationError(
        f"kwargs must be a mapping of keyword arguments or None, got {kwargs!r}",
        field="kwargs",
        value=kwargs,
    )


def _check_retries(retries: object, retry: object) -> None:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(
            f"retries must be an int >= 0 (further attempts after a failure), got {retries!r}",
            field="retries",
            value=retries,
        )
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy or None, got {retry!r}")
    if retries and retry is not None:
        raise ConfigurationError(
            f"give retries= or retry=, not both (got retries={retries!r} and a RetryPolicy); "
            "the policy's max_attempts counts every attempt",
            field="retries",
            value=retries,
        )


def _name_of(func: object) -> str:
    name = getattr(func, "__qualname__", None)
    if isinstance(name, str):
        return name
    if isinstance(func, functools.partial):
        return _name_of(func.func)
    return repr(func)


def _positive_seconds(name: str, value: object) -> float:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )
    if not ok:
        raise ConfigurationError(
            f"{name} must be a positive number of seconds or None, got {value!r}",
            field=name,
            value=value,
        )
    return float(value)  # type: ignore[arg-type]  # checked above: an int or a float


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{name} must be a positive int, got {value!r}", field=name, value=value
        )
    return value


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted, non-empty list."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


# --- the results stream --------------------------------------------------------------------


class _ResultStream(Observable[TaskResult]):
    """A hot observable of records that isolates its subscribers.

    Each subscriber is called in turn; one that raises is logged and keeps its
    subscription (a plain Subject would stop delivering to the rest, and the raise
    would reach the worker). Completes when the queue closes; a subscription after
    that completes at once.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.observers: tuple[abc.ObserverBase[TaskResult], ...] = ()
        self.completed = False

    def _subscribe_core(
        self,
        observer: abc.ObserverBase[TaskResult],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        if self.completed:
            observer.on_completed()
            return Disposable()
        self.observers = (*self.observers, observer)

        def unsubscribe() -> None:
            self.observers = tuple(o for o in self.observers if o is not observer)

        return Disposable(unsubscribe)

    def emit(self, record: TaskResult) -> None:
        for observer in self.observers:
            try:
                observer.on_next(record)
            except Exception:
                _log.exception(
                    "a results subscriber of task queue %r raised on the record of %r; "
                    "the queue carries on",
                    self.name,
                    record.task_id,
                )

    def complete(self) -> None:
        self.completed = True
        observers, self.observers = self.observers, ()
        for observer in observers:
            try:
                observer.on_completed()
            except Exception:
                _log.exception("a results subscriber of task queue %r raised", self.name)


# --- the queue -------------------------------------------------------------------------------

_names = itertools.count(1)


class PriorityTaskQueue(AsyncResource):
    """Priority-ordered :class:`AsyncTask` records, run by a bounded set of workers.

    Three ways to run the queued tasks:

    * **Batch**: ``records = await queue.process_tasks(max_workers=5)`` runs what is
      queued (and what is put meanwhile) and returns when nothing is queued or
      running, with one :class:`TaskResult` per task that ended meanwhile.
    * **Service**: ``queue.start(max_workers=5)``, then ``put`` any time; records
      arrive on :attr:`results`; ``await queue.stop()`` finishes everything queued
      (``drain=False`` withdraws and returns the tasks that never started).
    * **Your own workers**: ``task = await queue.get()`` hands a task out (the
      highest priority first); run it yourself, or with ``await queue.execute(task)``
      to get the queue's timeout, retries, record and statistics.

    Args:
        maxsize: Most tasks queued at once (running ones do not count); 0 for no
            limit; default ``config.task_queue_maxsize`` (0). ``await put()`` waits
            for room, ``put_nowait()`` raises :class:`~rxflows.QueueFullError`.
        aging_interval: Seconds of waiting that raise a queued task's effective
            priority by one level (anti-starvation), or None (default: strict
            priorities). A task that has waited ``k * aging_interval`` is ahead of
            every task of up to ``k`` levels above it that arrives after it.
        config: An :class:`~rxflows.AsyncFlowConfig` for the defaults
            (``task_queue_maxsize``, ``max_concurrent_tasks`` for ``max_workers``).
        clock: Where time is read and waited on (times in records, timeouts,
            aging, retry back-off): a :class:`~rxflows.Clock` or an Rx scheduler;
            default the running loop's clock.
        name: Shown in statistics and logs; default ``"tasks-<n>"``.

    An exception in a task never stops a worker; a task's timeout cancels that task
    and its worker goes on; :meth:`cancel` cancels a queued or running task. The
    queue is meant for one event loop. ``async with PriorityTaskQueue() as q:``
    calls :meth:`aclose` on exit (cancels what is left; nothing keeps running).

    Example:
        >>> queue = PriorityTaskQueue(maxsize=1000)
        >>> await queue.put(AsyncTask(process_normal_video, args=("a.mp4",)))
        >>> await queue.put(
        ...     AsyncTask(process_urgent_video, args=("b.mp4",), priority=TaskPriority.HIGH)
        ... )
        >>> records = await queue.process_tasks(max_workers=5)
        >>> [r.name for r in records]       # the HIGH task first
        ['process_urgent_video', 'process_normal_video']
    """

    def __init__(
        self,
        maxsize: int | None = None,
        *,
        aging_interval: float | None = None,
        config: AsyncFlowConfig | None = None,
        clock: Clock | abc.SchedulerBase | None = None,
        name: str | None = None,
    ) -> None:
        cfg = config_or_default(config)
        if maxsize is None:
            maxsize = cfg.task_queue_maxsize
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ConfigurationError(
                f"maxsize must be an int >= 0 (0: no limit), got {maxsize!r}",
                field="maxsize",
                value=maxsize,
            )
        if aging_interval is not None:
            aging_interval = _positive_seconds("aging_interval", aging_interval)
        if name is None:
            name = f"tasks-{next(_names)}"
        elif not isinstance(name, str):
            raise ConfigurationError(
                f"name must be a str or None, got {name!r}", field="name", value=name
            )
        self._config = cfg
        self._maxsize = maxsize
        self._aging = aging_interval
        self._clock = as_clock(clock)
        self._now = self._clock.now
        self._on_loop_clock = isinstance(self._clock, LoopClock)
        if self._on_loop_clock:
            with contextlib.suppress(RuntimeError):  # built outside a loop: bound later
                self._bind_loop()
        self._name = name
        self._state = _OPEN
        # one FIFO per level, indexed by the priority's value (index 0 unused)
        self._levels: list[deque[AsyncTask]] = [deque() for _ in range(len(_PRIORITIES) + 1)]
        self._descending = [self._levels[p] for p in _DESCENDING]
        self._size = 0
        self._seq = 0
        self._index: dict[str, AsyncTask] = {}  # queued and running tasks, by id
        self._getters: deque[asyncio.Future[None]] = deque()  # workers and get() callers
        self._putters: deque[asyncio.Future[None]] = deque()
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._workers: set[asyncio.Task[None]] = set()
        self._batch = False
        self._running_total = 0
        self._collectors: list[list[TaskResult]] = []
        self._results = _ResultStream(name)
        levels = len(_PRIORITIES) + 1
        self._taken = [0] * levels
        self._succeeded = [0] * levels
        self._failed = [0] * levels
        self._timed_out = [0] * levels
        self._cancelled_count = [0] * levels
        self._waits: list[deque[float]] = [deque(maxlen=_WAIT_SAMPLES) for _ in range(levels)]

    # -- properties ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The queue's name."""
        return self._name

    @property
    def maxsize(self) -> int:
        """Most tasks queued at once; 0 for no limit."""
        return self._maxsize

    @property
    def aging_interval(self) -> float | None:
        """Seconds of waiting per level of effective priority, or None (no aging)."""
        return self._aging

    @property
    def state(self) -> TaskQueueState:
        """OPEN, STOPPING or CLOSED."""
        return self._state

    @property
    def results(self) -> Observable[TaskResult]:
        """Every :class:`TaskResult`, as tasks end: a hot observable.

        Subscribers see the records of tasks that end after they subscribe,
        synchronously from the worker that ran the task. A subscriber that raises
        is logged (logger ``rxflows.tasks``) and never disturbs a worker or the
        other subscribers. Completes when the queue is closed (``stop()``,
        ``aclose()``). No record is built while nobody listens.

        Example:
            >>> queue.results.subscribe(lambda r: print(r.task_id, r.status.name))
        """
        return self._results

    def qsize(self) -> int:
        """Tasks queued now (not the running ones)."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def empty(self) -> bool:
        """Whether no task is queued."""
        return not self._size

    def full(self) -> bool:
        """Whether ``put_nowait`` would raise QueueFullError now."""
        return bool(self._maxsize) and self._size >= self._maxsize

    @property
    def running(self) -> int:
        """Tasks the queue is running now (by its workers or :meth:`execute`)."""
        return self._running_total

    def __repr__(self) -> str:
        return (
            f"PriorityTaskQueue(name={self._name!r}, state={self._state.name}, "
            f"queued={self._size}, running={self._running_total}, workers={len(self._workers)})"
        )

    # -- putting ----------------------------------------------------------------------------

    async def put(self, task: AsyncTask) -> None:
        """Queue ``task``, waiting for room while the queue is full.

        Raises :class:`~rxflows.QueueClosedError` after :meth:`stop` (also when the
        queue is stopped while this waits for room), TypeError for anything but an
        :class:`AsyncTask`, :class:`~rxflows.ConfigurationError` for a task that was
        already put.
        """
        self._check_put(task)
        while self._maxsize and self._size >= self._maxsize:
            await self._wait(self._putters)
            self._check_put(task)
        self._accept(task)

    def put_nowait(self, task: AsyncTask) -> None:
        """Queue ``task`` now, or raise :class:`~rxflows.QueueFullError` if the queue is full.

        Raises like :meth:`put` otherwise.
        """
        if (
            self._state is not _OPEN
            or type(task) is not AsyncTask
            or task._queue is not None
            or task.task_id in self._index
        ):
            self._check_put(task)  # raises, unless task is an AsyncTask subclass
        if self._maxsize and self._size >= self._maxsize:
            raise QueueFullError(
                f"put_nowait(): task queue {self._name!r} is full ({self._maxsize} tasks "
                f"queued, maxsize={self._maxsize}); await put() to wait for room",
                maxsize=self._maxsize,
            )
        # _accept(task), inlined: the hot path
        task._queue = self
        task._state = _QUEUED
        task._queued_at = self._now()
        task._cancel_reason = None
        if self._aging is not None:  # ties between levels go by arrival
            self._seq = task._seq = self._seq + 1
        self._levels[task.priority].append(task)
        self._size += 1
        self._index[task.task_id] = task
        if self._getters:
            _wake_one(self._getters)

    def _check_put(self, task: AsyncTask) -> None:
        if self._state is not _OPEN:
            raise QueueClosedError(
                f"put(): task queue {self._name!r} is {self._state.name} (stop() was called); "
                "it accepts no more tasks"
            )
        if not isinstance(task, AsyncTask):
            raise TypeError(f"put() takes an AsyncTask, got {task!r} ({type(task).__name__})")
        if task._queue is not None:
            raise ConfigurationError(
                f"task {task.task_id!r} was already put in a task queue; a task runs once: "
                "create a new AsyncTask",
                field="task",
                value=task,
            )
        if task.task_id in self._index:
            raise ConfigurationError(
                f"a task with task_id {task.task_id!r} is already queued or running in "
                f"{self._name!r}; task ids must be unique",
                field="task_id",
                value=task.task_id,
            )

    def _accept(self, task: AsyncTask) -> None:
        task._queue = self
        task._state = _QUEUED
        task._queued_at = self._now()
        task._cancel_reason = None
        self._seq = task._seq = self._seq + 1
        self._levels[task.priority].append(task)
        self._size += 1
        self._index[task.task_id] = task
        if self._getters:
            _wake_one(self._getters)

    # -- taking -----------------------------------------------------------------------------

    async def get(self) -> AsyncTask:
        """Take the next task (highest effective priority, oldest first), waiting for one.

        The task is then yours: the queue's workers will not run it, and it gets no
        record unless you run it with :meth:`execute`. Raises
        :class:`~rxflows.QueueClosedError` once the queue is stopped and nothing is
        left to take.

        Example:
            >>> task = await queue.get()
            >>> result = await task.func(*task.args, **task.kwargs)
        """
        while True:
            task = self._pop()
            if task is not None:
                self._take(task)
                return task
            if self._state is not _OPEN:
                raise self._closed_for_get()
            await self._wait(self._getters)

    def get_nowait(self) -> AsyncTask:
        """Take the next task now; :class:`~rxflows.QueueEmptyError` if none is queued."""
        task = self._pop()
        if task is None:
            if self._state is not _OPEN:
                raise self._closed_for_get()
            raise QueueEmptyError(f"get_nowait(): task queue {self._name!r} is empty")
        self._take(task)
        return task

    def _closed_for_get(self) -> QueueClosedError:
        return QueueClosedError(
            f"get(): task queue {self._name!r} is {self._state.name} and empty; no task will come"
        )

    def _take(self, task: AsyncTask) -> None:
        task._state = _TAKEN
        priority = task.priority
        self._taken[priority] += 1
        self._waits[priority].append(self._now() - task._queued_at)
        del self._index[task.task_id]
        if not self._size and not self._running_total:
            self._became_idle()

    def _pop(self) -> AsyncTask | None:
        """Remove and return the next task to run, or None when nothing is queued."""
        if not self._size:
            return None
        if self._aging is None:
            task = None
            for level in self._descending:
                while level:
                    head = level.popleft()
                    if head._state is _QUEUED:  # else cancelled while queued: dropped lazily
                        task = head
                        break
                if task is not None:
                    break
            if task is None:
                raise AssertionError("the queue's size says a task is queued, but none is")
        else:
            task = self._next_aged()
        self._size -= 1
        if self._putters:
            _wake_one(self._putters)
        return task

    def _next_aged(self) -> AsyncTask:
        # key = queued_at - priority * interval: the order of effective priorities,
        # which does not change as time passes (every waiting task ages alike)
        interval = self._aging
        assert interval is not None
        best: AsyncTask | None = None
        best_level: deque[AsyncTask] | None = None
        best_key = 0.0
        for level in self._descending:
            while level and level[0]._state is not _QUEUED:
                level.popleft()
            if level:
                head = level[0]
                key = head._queued_at - head.priority * interval
                if best is None or key < best_key or (key == best_key and head._seq < best._seq):
                    best, best_level, best_key = head, level, key
        if best is None or best_level is None:
            raise AssertionError("the queue's size says a task is queued, but none is")
        best_level.popleft()
        return best

    # -- cancelling -------------------------------------------------------------------------

    def cancel(self, task: str | AsyncTask) -> bool:
        """Cancel a queued or running task, by id or by the task itself.

        A queued task is removed at once (its record: CANCELLED, never started). A
        running one is cancelled where it awaits; its record (CANCELLED) comes when
        it has unwound, and its worker goes on with the next task. Returns whether
        the task was queued or running here; False for an unknown id, a task that
        already ended, or one handed out by :meth:`get` (unless you run it with
        :meth:`execute`).

        Example:
            >>> queue.cancel(task.task_id)
            True
        """
        task_id = task.task_id if isinstance(task, AsyncTask) else task
        found = self._index.get(task_id)
        if found is None:
            return False
        if found._state is _QUEUED:
            self._size -= 1
            self._end_unstarted(found, f"cancelled by cancel({task_id!r}) while queued")
            if self._putters:
                _wake_one(self._putters)
            return True
        if found._state is _RUNNING:
            self._interrupt(found, _BY_CANCEL)
            return True
        return False

    def _interrupt(self, task: AsyncTask, reason: str) -> None:
        """Cancel a running task where it awaits (its worker catches and goes on)."""
        if task._cancel_reason is None and task._worker is not None:
            task._cancel_reason = reason
            task._worker.cancel()

    def _end_unstarted(self, task: AsyncTask, why: str) -> None:
        """Record a task that leaves the queue without starting (already unqueued)."""
        task._state = _DONE
        priority = task.priority
        self._cancelled_count[priority] += 1
        del self._index[task.task_id]
        if self._collectors or self._results.observers:
            self._publish(
                _new_record(
                    task, _CANCELLED, None, asyncio.CancelledError(why), None, self._now(), 0
                )
            )
        if not self._size and not self._running_total:
            self._became_idle()

    # -- running ----------------------------------------------------------------------------

    async def process_tasks(self, max_workers: int | None = None) -> list[TaskResult]:
        """Run the queued tasks with ``max_workers`` workers; return when none is left.

        Tasks put while it runs (by the tasks themselves, too) are run as well. It
        returns when nothing is queued and nothing is running, with the record of
        every task that ended meanwhile, in the order they ended. Cancelling the
        call cancels its workers: the running tasks end CANCELLED, the queued ones
        stay queued.

        Args:
            max_workers: Tasks run at once; default ``config.max_concurrent_tasks``.

        Raises:
            QueueBusyError: The queue's workers are already running (``start()``).
            QueueClosedError: The queue is stopped.

        Example:
            >>> records = await queue.process_tasks(max_workers=5)
            >>> sum(r.succeeded for r in records)
            2
        """
        count = self._check_start("process_tasks", max_workers)
        records: list[TaskResult] = []
        if not self._size and not self._running_total:
            return records
        loop = self._bind_loop()
        self._collectors.append(records)
        self._batch = True
        workers = {loop.create_task(self._work(batch=True)) for _ in range(count)}
        self._workers = workers
        try:
            await _wait_all(workers)
        finally:
            self._batch = False
            self._workers = set()
            self._collectors.remove(records)
        _raise_crash(workers)
        return records

    def start(self, max_workers: int | None = None) -> None:
        """Start ``max_workers`` workers that run tasks as they are put, until :meth:`stop`.

        Needs a running event loop. Raises :class:`~rxflows.QueueBusyError` if the
        workers are already running, :class:`~rxflows.QueueClosedError` after stop().

        Example:
            >>> queue.start(max_workers=5)
            >>> await queue.put(AsyncTask(process_normal_video, args=("a.mp4",)))
            >>> await queue.stop()
        """
        count = self._check_start("start", max_workers)
        loop = self._bind_loop()
        self._workers = {
            loop.create_task(self._work(batch=False), name=f"{self._name}-worker-{i}")
            for i in range(1, count + 1)
        }

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop; on the loop clock, read its time without the indirection."""
        loop = asyncio.get_running_loop()
        if self._on_loop_clock:
            self._now = loop_time_reader(loop)
        return loop

    def _check_start(self, what: str, max_workers: int | None) -> int:
        count = (
            self._config.max_concurrent_tasks
            if max_workers is None
            else _positive_int("max_workers", max_workers)
        )
        if self._state is not _OPEN:
            raise QueueClosedError(f"{what}(): task queue {self._name!r} is {self._state.name}")
        if self._workers:
            raise QueueBusyError(
                f"{what}(): task queue {self._name!r} already has {len(self._workers)} workers "
                "running (start() or process_tasks()); stop() them, or put tasks and let "
                "them run"
            )
        return count

    async def stop(self, drain: bool = True, *, cancel_running: bool = False) -> list[AsyncTask]:
        """Stop accepting tasks, finish, and close the queue.

        With ``drain=True`` (default) every queued task is still run (by the
        workers, or handed out to :meth:`get` callers) and this returns an empty
        list once nothing is queued or running. With ``drain=False`` the tasks that
        never started are withdrawn, each with a CANCELLED record, and returned in
        the order they would have run; running tasks finish, or are cancelled too
        with ``cancel_running=True``. Either way no accepted task disappears
        silently. Then the workers exit, the queue is CLOSED and :attr:`results`
        completes. Calling it again returns an empty list.

        With no workers (no ``start()``) ``drain=True`` waits for ``get()`` callers
        to take the rest.

        If the call is cancelled (say by ``asyncio.timeout`` around a drain that
        takes too long), nothing keeps running: the queued tasks are withdrawn and
        the running ones cancelled, all with CANCELLED records, and the
        cancellation propagates; the queue stays STOPPING until :meth:`aclose`
        (which returns once the cancelled tasks have unwound).

        Example:
            >>> never_started = await queue.stop(drain=False)
        """
        if not isinstance(drain, bool):
            raise ConfigurationError(f"drain must be True or False, got {drain!r}", field="drain")
        if not isinstance(cancel_running, bool):
            raise ConfigurationError(
                f"cancel_running must be True or False, got {cancel_running!r}",
                field="cancel_running",
            )
        if drain and cancel_running:
            raise ConfigurationError(
                "cancel_running=True needs drain=False: a drain runs every queued task, "
                "so it cannot cancel the running ones",
                field="cancel_running",
                value=cancel_running,
            )
        if self._state is _CLOSED:
            return []
        self._state = _STOPPING
        _wake_all(self._putters)
        withdrawn = [] if drain else self._withdraw_all("stop(drain=False)")
        if cancel_running:
            self._interrupt_all()
        _wake_all(self._getters)  # idle workers exit; get() callers learn it is closed
        workers = self._workers
        try:
            while self._size or self._running_total:
                waiter = asyncio.get_running_loop().create_future()
                self._idle_waiters.append(waiter)
                await waiter
            if workers and not self._batch:  # process_tasks() awaits its own
                await _wait_all(workers)
                self._workers = set()
                _raise_crash(workers)
        except asyncio.CancelledError:
            # stop() itself was cancelled (a shutdown deadline): nothing may keep
            # running, so end everything now; aclose() then completes the closing
            self._withdraw_all("a cancelled stop()")
            self._interrupt_all()
            for worker in workers:
                worker.cancel()
            raise
        if self._state is not _CLOSED:
            self._state = _CLOSED
            self._results.complete()
        return withdrawn

    def _withdraw_all(self, by: str) -> list[AsyncTask]:
        """Take every queued task out, each with a CANCELLED record, in run order."""
        withdrawn = []
        while (task := self._pop()) is not None:
            withdrawn.append(task)
            self._end_unstarted(task, f"withdrawn by {by} before it started")
        return withdrawn

    def _interrupt_all(self) -> None:
        for task in list(self._index.values()):
            if task._state is _RUNNING:
                self._interrupt(task, _BY_STOP)

    async def aclose(self) -> None:
        """Close now: withdraw the queued tasks, cancel the running ones, wait for them.

        ``stop(drain=False, cancel_running=True)``; every task still gets its
        CANCELLED record. Idempotent.
        """
        await self.stop(drain=False, cancel_running=True)

    async def execute(self, task: AsyncTask) -> TaskResult:
        """Run a task you took with :meth:`get` as the queue's workers do.

        Applies its timeout and retries, counts it in :meth:`statistics`, lets
        :meth:`cancel` reach it, publishes its record on :attr:`results` and
        returns the record. The task runs in the calling task; if that task is
        cancelled, the record says CANCELLED and the cancellation propagates.

        Example:
            >>> record = await queue.execute(await queue.get())
        """
        if not isinstance(task, AsyncTask):
            raise TypeError(f"execute() takes an AsyncTask, got {task!r}")
        if task._queue is not self or task._state is not _TAKEN:
            raise ConfigurationError(
                f"execute() runs a task taken from this queue with get(); task "
                f"{task.task_id!r} was not (or it already ran)",
                field="task",
                value=task,
            )
        me = asyncio.current_task()
        if me is None:
            raise RuntimeError("execute() must be awaited in an asyncio task")
        self._bind_loop()
        self._index[task.task_id] = task
        self._begin(task, me, record_wait=False)
        record = await self._run(task, me, want=True)
        assert record is not None
        return record

    def _begin(self, task: AsyncTask, worker: asyncio.Task[Any], *, record_wait: bool) -> None:
        task._state = _RUNNING
        task._worker = worker
        task._started_at = started = self._now()
        priority = task.priority
        self._running_total += 1
        if record_wait:
            self._waits[priority].append(started - task._queued_at)

    async def _work(self, *, batch: bool) -> None:
        """A worker: take the next task, run it, record it; until told to stop."""
        me = asyncio.current_task()
        assert me is not None
        pop = self._pop
        finish = self._finish
        now = self._now
        succeeded = self._succeeded
        waits = self._waits
        index = self._index
        results = self._results
        since_yield = 0
        strict = self._aging is None
        descending = self._descending
        while True:
            task = None
            if strict and self._size:
                # pop(), inlined for the common case (no aging): the head of the
                # highest non-empty level
                for level in descending:
                    while level:
                        head = level.popleft()
                        if head._state is _QUEUED:  # else cancelled while queued
                            task = head
                            break
                    if task is not None:
                        break
                self._size -= 1
                if self._putters:
                    _wake_one(self._putters)
            else:
                task = pop()
            if task is None:
                if not self._size and (
                    self._state is not _OPEN or (batch and not self._running_total)
                ):
                    return
                await self._wait(self._getters)
                continue
            task._state = _RUNNING
            task._worker = me
            task._started_at = started = now()
            priority = task.priority
            self._running_total += 1
            waits[priority].append(started - task._queued_at)
            if task.timeout is None and task.retry is None and not task.retries:
                # the lean path: one attempt, no timer, the coroutine awaited right
                # here (no asyncio task per queued task)
                task._attempts = 1
                try:
                    if task.kwargs:
                        result = await task.func(*task.args, **task.kwargs)
                    else:  # a call without ** builds no dict
                        result = await task.func(*task.args)
                except asyncio.CancelledError as cancelled:
                    self._cancelled(task, me, cancelled, self._settle(task, me), want=False)
                except Exception as error:
                    if task._cancel_reason is not None:
                        self._settle(task, me)
                    finish(task, _FAILED, None, error, False)
                else:
                    if task._cancel_reason is not None:
                        self._settle(task, me)
                    # finish(task, _SUCCEEDED, ...), inlined: the hot path
                    self._running_total -= 1
                    succeeded[priority] += 1
                    task._state = _DONE
                    task._worker = None
                    del index[task.task_id]
                    if self._collectors or results.observers:
                        record = _tuple_new(  # see _new_record
                            TaskResult,
                            (
                                task.task_id,
                                task.name,
                                priority,
                                _SUCCEEDED,
                                result,
                                None,
                                task._queued_at,
                                started,
                                now(),
                                1,
                            ),
                        )
                        for records in self._collectors:
                            records.append(record)
                        if results.observers:
                            results.emit(record)
                    if not self._size and not self._running_total:
                        self._became_idle()
                if me.cancelling():  # cancelled from outside, and the task swallowed it
                    raise asyncio.CancelledError
            else:
                await self._run(task, me, want=False)
            since_yield += 1
            if since_yield >= _YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)

    async def _run(
        self, task: AsyncTask, me: asyncio.Task[Any], *, want: bool
    ) -> TaskResult | None:
        """Run ``task`` with its timeout and retries; record how it ended."""
        policy = task.retry
        retry_run = RetryRun(policy, self._clock, task.name) if policy is not None else None
        attempt = 0
        while True:
            attempt += 1
            task._attempts = attempt
            if retry_run is not None:
                retry_run.begin()
            timer = self._arm(task, attempt) if task.timeout is not None else None
            timed_out = False
            error: Exception
            try:
                try:
                    result = await task.func(*task.args, **task.kwargs)
                finally:
                    if timer is not None:
                        timer.cancel()
            except asyncio.CancelledError as cancelled:
                reason = self._settle(task, me)
                if reason is not _BY_TIMEOUT or me.cancelling():
                    return self._cancelled(task, me, cancelled, reason, want=want)
                timed_out = True
                error = TaskTimeoutError(
                    f"task {task.task_id!r} ({task.name}) timed out after {task.timeout:g}s "
                    f"(attempt {attempt})",
                    task_id=task.task_id,
                    timeout=task.timeout or 0.0,
                    attempt=attempt,
                )
            except Exception as exc:
                self._settle(task, me)
                error = exc
            else:
                self._settle(task, me)
                record = self._finish(task, _SUCCEEDED, result, None, want)
                if me.cancelling():
                    raise asyncio.CancelledError
                return record
            # the attempt failed: retry, or give up
            if me.cancelling():
                record = self._finish(task, _FAILED, None, error, want)
                raise asyncio.CancelledError
            try:
                if retry_run is not None:
                    delay = retry_run.failed(error)
                else:
                    delay = 0.0 if attempt <= task.retries else None
            except Exception as hook_error:  # on_retry or an events observer raised
                error, delay, timed_out = hook_error, None, False
            if delay is None:
                return self._finish(task, _TIMED_OUT if timed_out else _FAILED, None, error, want)
            if delay > 0:
                try:
                    await self._clock.sleep(delay)
                except asyncio.CancelledError as cancelled:
                    return self._cancelled(task, me, cancelled, self._settle(task, me), want=want)

    def _settle(self, task: AsyncTask, me: asyncio.Task[Any]) -> str | None:
        """Take back the cancellation the queue sent to ``me`` for ``task``, if any."""
        reason = task._cancel_reason
        if reason is not None:
            task._cancel_reason = None
            me.uncancel()
        return reason

    def _cancelled(
        self,
        task: AsyncTask,
        me: asyncio.Task[Any],
        cancelled: asyncio.CancelledError,
        reason: str | None,
        *,
        want: bool,
    ) -> TaskResult | None:
        """Record a task that was cancelled; re-raise if its worker is being cancelled."""
        if me.cancelling():
            why = "cancelled with the task running it"
        elif reason is _BY_CANCEL:
            why = f"cancelled by cancel({task.task_id!r}) while running"
        elif reason is _BY_STOP:
            why = (
                "cancelled while running: the queue was stopped "
                "(stop(cancel_running=True), aclose() or a cancelled stop())"
            )
        else:
            why = "its coroutine raised CancelledError"
        record = self._finish(task, _CANCELLED, None, asyncio.CancelledError(why), want)
        if me.cancelling():
            raise cancelled
        return record

    def _arm(self, task: AsyncTask, attempt: int) -> asyncio.TimerHandle | asyncio.Task[None]:
        """Start the clock of one attempt's timeout: a loop timer, or a watchdog task."""
        timeout = task.timeout
        assert timeout is not None
        loop = asyncio.get_running_loop()
        if self._on_loop_clock:
            return loop.call_later(timeout, self._time_out, task, attempt)
        return loop.create_task(self._watch(task, attempt, timeout))

    async def _watch(self, task: AsyncTask, attempt: int, seconds: float) -> None:
        await self._clock.sleep(seconds)
        self._time_out(task, attempt)

    def _time_out(self, task: AsyncTask, attempt: int) -> None:
        if task._state is _RUNNING and task._attempts == attempt:
            self._interrupt(task, _BY_TIMEOUT)

    def _finish(
        self, task: AsyncTask, status: TaskStatus, result: Any, error: Any, want: bool
    ) -> TaskResult | None:
        """Record how a running task ended; build its record only if someone wants it."""
        priority = task.priority
        self._running_total -= 1
        if status is _SUCCEEDED:
            self._succeeded[priority] += 1
        elif status is _FAILED:
            self._failed[priority] += 1
        elif status is _TIMED_OUT:
            self._timed_out[priority] += 1
        else:
            self._cancelled_count[priority] += 1
        task._state = _DONE
        task._worker = None
        del self._index[task.task_id]
        record = None
        if want or self._collectors or self._results.observers:
            record = _new_record(
                task, status, result, error, task._started_at, self._now(), task._attempts
            )
            for records in self._collectors:
                records.append(record)
            if self._results.observers:
                self._results.emit(record)
        if not self._size and not self._running_total:
            self._became_idle()
        return record

    def _publish(self, record: TaskResult) -> None:
        for records in self._collectors:
            records.append(record)
        if self._results.observers:
            self._results.emit(record)

    def _became_idle(self) -> None:
        """Nothing queued, nothing running: wake whoever waits for that."""
        if self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        if self._batch or self._state is not _OPEN:
            _wake_all(self._getters)  # idle batch workers exit

    async def _wait(self, waiters: deque[asyncio.Future[None]]) -> None:
        """Wait to be woken (a put for getters, room for putters)."""
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            waiter.cancel()
            try:
                waiters.remove(waiter)
            except ValueError:  # woken, then cancelled: pass the wake-up on
                _wake_one(waiters)
            raise

    # -- statistics -------------------------------------------------------------------------

    def statistics(self) -> TaskQueueStatistics:
        """A snapshot: sizes, outcomes and wait-time percentiles, per priority and in total.

        Example:
            >>> stats = queue.statistics()
            >>> stats.priority(TaskPriority.HIGH).wait_p90
            0.25
        """
        queued = [0] * (len(_PRIORITIES) + 1)
        running = [0] * (len(_PRIORITIES) + 1)
        for task in self._index.values():  # counted here, not on every put and take
            if task._state is _QUEUED:
                queued[task.priority] += 1
            elif task._state is _RUNNING:
                running[task.priority] += 1
        levels = []
        for priority in _DESCENDING:
            waits = sorted(self._waits[priority])
            levels.append(
                PriorityStatistics(
                    priority=priority,
                    queued=queued[priority],
                    running=running[priority],
                    taken=self._taken[priority],
                    succeeded=self._succeeded[priority],
                    failed=self._failed[priority],
                    timed_out=self._timed_out[priority],
                    cancelled=self._cancelled_count[priority],
                    wait_p50=_percentile(waits, 0.5) if waits else None,
                    wait_p90=_percentile(waits, 0.9) if waits else None,
                    wait_p99=_percentile(waits, 0.99) if waits else None,
                    wait_max=waits[-1] if waits else None,
                )
            )
        return TaskQueueStatistics(
            name=self._name,
            state=self._state,
            maxsize=self._maxsize,
            workers=sum(1 for worker in self._workers if not worker.done()),
            queued=self._size,
            running=self._running_total,
            taken=sum(level.taken for level in levels),
            succeeded=sum(level.succeeded for level in levels),
            failed=sum(level.failed for level in levels),
            timed_out=sum(level.timed_out for level in levels),
            cancelled=sum(level.cancelled for level in levels),
            priorities=tuple(levels),
        )


def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return


def _wake_all(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)


async def _wait_all(workers: set[asyncio.Task[None]]) -> None:
    """Wait for every worker; if the waiting task is cancelled, cancel them and wait too."""
    try:
        await asyncio.wait(workers)
    except asyncio.CancelledError:
        for worker in workers:
            worker.cancel()
        await asyncio.wait(workers)
        raise


def _raise_crash(workers: set[asyncio.Task[None]]) -> None:
    """Re-raise an error that ended a worker (a bug: task errors never do)."""
    for worker in workers:
        if not worker.cancelled() and worker.exception() is not None:
            raise RuntimeError("a task queue worker crashed") from worker.exception()
