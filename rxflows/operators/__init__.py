"""rxflows operators, to use in ``pipe`` beside RxPY's own.

Import them the way RxPY users import theirs::

    from reactivex import operators as rx_ops
    from rxflows import operators as ops

    source.pipe(rx_ops.filter(is_video), ops.map_async(download, max_concurrent=4))

Each operator lives in a private module; this facade holds its signature and
documentation, and imports the implementation lazily.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from reactivex import Observable, abc

from .._config import DEFAULT_CONFIG
from .._errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Hashable
    from typing import Unpack

    from .._breaker import CircuitBreaker
    from .._cache import AsyncCache
    from .._executor import Executor
    from .._metrics import AsyncMetricsCollector
    from .._retry import RetryPolicy, RetryPolicyOptions
    from ._measure import MeasurePer
    from ._on_backpressure import BackpressurePolicy, OnBackpressure

__all__ = ["cache", "circuit_breaker", "map_async", "measure", "on_backpressure", "retry"]

_T = TypeVar("_T")
_R = TypeVar("_R")


def cache(
    cache: AsyncCache,
    key: Hashable | Callable[[], Hashable],
    *,
    ttl: float | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Serve a one-value source from an :class:`~rxflows.AsyncCache`, loading it once.

    .. code::

        source:  --a|                    (a cold source: one fetch per subscription)
        [ cache(c, "k") ]
        sub 1:   ^-----
        sub 2:   -^----
        out 1:   ---(a|)                 (source subscribed once, at sub 1's frame)
        out 2:   ---(a|)                 (sub 2 joined the load in flight)
        sub 3:   -----^
        out 3:   -----(a|)               (a is cached: no subscription to the source)

    On subscribe, ``key`` is looked up in ``cache``: a live entry is emitted at once,
    then completion. On a miss, the source is subscribed once for every concurrent
    subscriber with the same key (single-flight, shared with ``cache.get_or_set``);
    when it completes, its last value is stored in the cache and delivered to all of
    them (a source that completes empty delivers completion and stores nothing). An
    error is not stored (unless the cache has a ``negative_ttl``) and reaches every
    subscriber waiting on the load. Disposing one subscriber leaves the load running
    for the others; disposing all of them disposes the source subscription.

    Args:
        cache: The :class:`~rxflows.AsyncCache` to read and fill.
        key: The cache key, or a zero-argument callable returning it, called at each
            subscription (a callable is always called: wrap a callable key in a
            ``lambda``).
        ttl: Seconds the loaded value lives; default the cache's ``ttl``.
        scheduler: The scheduler the source is subscribed with (and whose loop runs
            the load); default the one given at subscribe time, else the running
            loop's.

    Returns:
        An operator function from a one-value observable to the same, cached.

    Example:
        >>> metadata = AsyncCache(max_size=1000, ttl=3600)
        >>> info = rxflows.from_async(fetch_video_metadata, url).pipe(
        ...     ops.cache(metadata, url)
        ... )
        >>> await info   # fetched once; later subscriptions read the cache
    """
    from .._cache import AsyncCache
    from ._cache import cache_

    if not isinstance(cache, AsyncCache):
        raise TypeError(f"cache needs an rxflows.AsyncCache, got {type(cache).__name__}")
    if ttl is not None:
        cache._check_call_ttl(ttl)
    return cache_(cache, key, ttl, scheduler)


def circuit_breaker(breaker: CircuitBreaker) -> Callable[[Observable[_T]], Observable[_T]]:
    """Guard a source with a :class:`~rxflows.CircuitBreaker`: each subscription is one call.

    .. code::

        source:   --a-|        (a cold source: one request per subscription)
        [ circuit_breaker(breaker) ]
        closed:   --a-|        passes through; completion counts as a success,
                               an error as a failure (classified by the breaker)
        open:     #            CircuitOpenError at once; the source is not subscribed

    Every subscription asks the breaker for a permit first. Rejected, it fails at
    once with :class:`~rxflows.CircuitOpenError` (carrying ``retry_after``) without
    subscribing to the source. Let through, the source's error is recorded as a
    failure (or ignored, per the breaker's ``expected``/``ignored``) before it is
    forwarded, so a downstream ``retry`` already meets the new state; completion is a
    success; disposing before either counts as neither and frees a half-open trial
    permit. The duration (for ``slow_call_duration``) runs from subscription to the
    terminal notification, on the breaker's clock. Demand passes through: between
    demand-aware operators (``rxflows.from_iterable``, ``ops.map_async``) it stays
    demand-aware.

    Args:
        breaker: The breaker to call through; share it between the observables that
            reach the same dependency.

    Returns:
        An operator function that guards every subscription to its source.

    Example:
        >>> breaker = rxflows.CircuitBreaker(failure_threshold=3, timeout=30)
        >>> guarded = rxflows.from_async(fetch_manifest).pipe(
        ...     ops.circuit_breaker(breaker), rx_ops.retry(2)
        ... )
    """
    from .._breaker import CircuitBreaker
    from ._circuit_breaker import circuit_breaker_

    if not isinstance(breaker, CircuitBreaker):
        raise TypeError(f"circuit_breaker needs a CircuitBreaker, got {type(breaker).__name__}")
    return circuit_breaker_(breaker)


@overload
def map_async(
    fn: Callable[[_T], Awaitable[_R]],
    max_concurrent: int | None = None,
    ordered: bool = False,
    *,
    scheduler: abc.SchedulerBase | None = None,
    executor: None = None,
) -> Callable[[Observable[_T]], Observable[_R]]: ...


@overload
def map_async(
    fn: Callable[[_T], _R],
    max_concurrent: int | None = None,
    ordered: bool = False,
    *,
    scheduler: abc.SchedulerBase | None = None,
    executor: Executor,
) -> Callable[[Observable[_T]], Observable[_R]]: ...


def map_async(
    fn: Callable[[_T], Any],
    max_concurrent: int | None = None,
    ordered: bool = False,
    *,
    scheduler: abc.SchedulerBase | None = None,
    executor: Executor | None = None,
) -> Callable[[Observable[_T]], Observable[Any]]:
    """Map each item through a coroutine function, at most ``max_concurrent`` at once.

    .. code::

        source:  -a-b-c|          (f takes 4 frames on a, 1 on b and 1 on c)
        [ map_async(f, max_concurrent=2) ]
        result:  ----yx(z|)       (x = f(a), y = f(b), z = f(c): b overtakes a)

    Results are emitted as they finish (``ordered=False``) or in source order
    (``ordered=True``: a finished result waits for the ones before it without holding
    a slot; a demand-aware consumer bounds how many wait, a plain subscriber does
    not, so a never-ending head item makes them pile up). The first exception
    raised by ``fn`` cancels the work in flight and reaches the subscriber
    unwrapped; an upstream error does the same. Disposing the subscription cancels
    the work in flight.

    ``map_async`` is demand-aware: fed by a credit-based source
    (``rxflows.from_iterable``, ``rxflows.from_async_iterable``,
    ``ops.on_backpressure``) it pulls items only when a slot is free, and it asks no
    more of its source than its own consumer asked of it.

    Args:
        fn: An ``async def`` function (or any callable returning an awaitable) of one
            item. A callable returning a plain value fails the stream with TypeError.
        max_concurrent: Most coroutines running at once; default
            ``AsyncFlowConfig().max_concurrent_tasks`` (100).
        ordered: Emit results in source order.
        scheduler: The scheduler whose loop runs the coroutines; default the one
            given at subscribe time, else the running loop's.
        executor: Run ``fn``, then a plain (sync) function, through this
            :class:`~rxflows.Executor` (``rxflows.LocalExecutor("process")``, a
            :class:`rxflows.dask.DaskExecutor`, ...): at most ``max_concurrent``
            calls are submitted at once, and disposing cancels the calls not yet
            started (one already running in a thread, a process or a Dask worker
            runs to its end; its result is dropped).

    Returns:
        An operator function from an observable of items to an observable of results.

    Example:
        >>> async def double(x: int) -> int:
        ...     return 2 * x
        >>> doubled = rxflows.from_iterable([1, 2, 3]).pipe(ops.map_async(double, ordered=True))
        >>> scores = frames.pipe(ops.map_async(score_frame, 4, executor=process_executor))
    """
    from ._map_async import map_async_

    if executor is not None:
        from .._executor import check_executor, check_sync_function, submitting

        check_sync_function(fn, "map_async's fn")
        fn = submitting(check_executor(executor, "executor"), fn)
    if not callable(fn):
        raise TypeError(f"map_async needs a coroutine function, got {fn!r}")
    limit = DEFAULT_CONFIG.max_concurrent_tasks if max_concurrent is None else max_concurrent
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(
            f"max_concurrent must be a positive int or None, got {max_concurrent!r}",
            field="max_concurrent",
            value=max_concurrent,
        )
    return map_async_(fn, limit, bool(ordered), scheduler)


def measure(
    collector: AsyncMetricsCollector,
    name: str,
    per: MeasurePer = "subscription",
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Record a source's executions in a metrics collector; notifications pass unchanged.

    .. code::

        per="subscription" (1 frame = 1 ms)
        source:   ---a--|          (cold: each subscription is one execution)
        [ measure(collector, "fetch") ]
        output:   ---a--|
        records:        ✓0.006     (at the completion: 6 frames since subscribe)
        source:   --#              output: --#    records: ✗0.002 (a failure)
        disposed: ^--!             records: one cancellation (no duration)

        per="item"
        source:   -a---b-c-|
        [ measure(collector, "frame", per="item") ]
        output:   -a---b-c-|
        records:  -✓---✓-✓         0.001, 0.004, 0.002: since subscribe, then
                                   since the previous item; nothing at |
        source:   -a--#            records: ✓0.001 at a, ✗0.003 at # (since a)

    ``per="subscription"``: each subscription is one execution, timed from subscribe
    to its terminal notification: a completion records a success, an error a
    failure. Disposing before either counts a cancellation (``cancelled_tasks``),
    with no duration. Around ``rxflows.from_async(fn)`` that times each call of
    ``fn``.

    ``per="item"``: each item is one successful execution, timed from the previous
    item (from subscribe for the first one): the time the source took to produce
    it. Around a one-at-a-time pipeline (``ops.map_async(f, max_concurrent=1)`` over
    a demand-aware source) that is the time each ``f(x)`` took. An error records one
    failure, timed from the last item; completion and dispose record nothing.

    The record is made before the notification is forwarded, so an observer reading
    the metrics sees it. Time is read on the collector's clock. Demand passes
    through (``ops.map_async`` downstream still pulls).

    Args:
        collector: The :class:`~rxflows.AsyncMetricsCollector` to record in.
        name: The task name to record under (a non-empty str).
        per: ``"subscription"`` (default) or ``"item"``.

    Returns:
        An operator function that passes its source through, measured.

    Example:
        >>> metrics = rxflows.create_async_metrics_collector()
        >>> manifest = rxflows.from_async(fetch_manifest, url).pipe(
        ...     ops.measure(metrics, "fetch_manifest"), ops.retry(max_attempts=3)
        ... )
    """
    from .._metrics import AsyncMetricsCollector, _check_name
    from ._measure import measure_

    if not isinstance(collector, AsyncMetricsCollector):
        raise TypeError(f"measure needs an AsyncMetricsCollector, got {type(collector).__name__}")
    _check_name(name)
    if per not in ("subscription", "item"):
        raise ConfigurationError(
            f"per must be 'subscription' or 'item', got {per!r}", field="per", value=per
        )
    return measure_(collector, name, per == "item")


def on_backpressure(
    size: int,
    policy: BackpressurePolicy | str = "drop_oldest",
    *,
    on_drop: Callable[[Any], object] | None = None,
) -> OnBackpressure[Any]:
    """A bounded buffer between a source that pushes and a consumer that pulls.

    .. code::

        -a-b-c-d-e-|          (a Subject pushes; consumer asks for 1, then later 1 more)
        [ on_backpressure(2, "drop_oldest") ]
        -a-------d-e|         (b and c were dropped while the buffer held 2)

    Demand-aware consumers (``ops.map_async``, ``rxflows.to_async_iterator``) take
    items from the buffer as they have room; a plain Rx subscriber asks for
    everything, so items pass straight through. Place it directly before the
    demand-aware consumer.

    Policies when the buffer is full (see :class:`BackpressurePolicy`):
    ``"block"`` (only for credit-based sources: asks the source for no more than
    fits), ``"drop_oldest"``, ``"drop_newest"``, ``"keep_latest"`` (the newest
    buffered item is replaced), ``"error"`` (deliver what is buffered, then fail with
    :class:`~rxflows.BackpressureError`).

    Args:
        size: Items the buffer holds (a positive int).
        policy: A :class:`BackpressurePolicy` or its string value.
        on_drop: Called with each dropped item.

    Returns:
        The operator; its ``statistics()`` counts items received, emitted and dropped
        over all its subscriptions, and ``dropped`` the items dropped.

    Example:
        >>> buffer = ops.on_backpressure(100, "drop_oldest")
        >>> events = subject.pipe(buffer, ops.map_async(handle, max_concurrent=4))
        >>> buffer.statistics().dropped
        0
    """
    from ._on_backpressure import OnBackpressure

    return OnBackpressure(size, policy, on_drop)


def retry(
    policy: RetryPolicy | None = None,
    *,
    scheduler: abc.SchedulerBase | None = None,
    **options: Unpack[RetryPolicyOptions],
) -> Callable[[Observable[_T]], Observable[_T]]:
    """On error, resubscribe to the source after a back-off chosen by a retry policy.

    .. code::

        -a-#                      (a cold source: each subscription replays it)
        [ retry(max_attempts=3, delay=0.002, backoff=1) ]      (1 frame = 1 ms)
        -a----a----a-#            (resubscribed 2 frames after each error; the third error passes)

    Not RxPY's ``retry(n)``: that one resubscribes at once and takes a count
    (``reactivex.operators.retry(3)`` is ``ops.retry(max_attempts=3, delay=0)``). This
    one takes a policy or its keywords: back-off, jitter, which errors to retry,
    a deadline, hooks. Items emitted before an error are passed on, as with any Rx
    retry, so a source that fails half-way repeats its first items: make the source
    resume where it stopped, or de-duplicate downstream. The attempt count is per
    subscription and counts every error (an item does not reset it).

    Each subscription has its own attempt count and previous delay. The wait between
    attempts is scheduled on ``scheduler``, else the scheduler given at subscribe
    time, else the running loop's :class:`~rxflows.LoopScheduler`; the deadline is
    measured on the policy's ``clock`` if it has one, else on that scheduler.
    Disposing the subscription during a wait cancels the pending resubscription. An
    exception raised by ``retry_if``, ``on_retry`` or an ``events`` observer is
    delivered as the error.

    Args:
        policy: A :class:`~rxflows.RetryPolicy`; keywords given beside it override its
            settings (``policy.replace(**options)``).
        scheduler: Where the waits are scheduled.
        **options: :class:`~rxflows.RetryPolicy` keywords (``max_attempts``, ``delay``,
            ``backoff``, ``max_delay``, ``jitter``, ``wait``, ``retry_on``, ``retry_if``,
            ``give_up_on``, ``deadline``, ``on_retry``, ``random``, ``clock``) when no
            policy is given.

    Returns:
        An operator function that retries its source.

    Example:
        >>> feed = rxflows.from_async(fetch_manifest).pipe(
        ...     ops.retry(max_attempts=5, delay=0.5, jitter="full", retry_on=ConnectionError)
        ... )
    """
    from .._retry import RetryPolicy
    from ._retry import retry_

    if policy is None:
        resolved = RetryPolicy(**options)
    elif isinstance(policy, RetryPolicy):
        resolved = policy.replace(**options) if options else policy
    else:
        raise TypeError(
            f"ops.retry takes a RetryPolicy or keywords, got {policy!r}; for RxPY's retry(n) "
            "write ops.retry(max_attempts=n, delay=0) or use reactivex.operators.retry(n)"
        )
    return retry_(resolved, scheduler)
