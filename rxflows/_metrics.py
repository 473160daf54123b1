"""Task metrics: counts, durations, quantiles and Prometheus exposition.

An :class:`AsyncMetricsCollector` records task executions (a name, a duration, an
outcome) and answers with counts, the mean, quantiles and a per-name breakdown,
either as the guide's dict (``await get_metrics()``) or as a frozen
:class:`MetricsSnapshot`. Memory stays bounded however many executions are
recorded:

* **Quantiles** come from a log-bucketed sketch (the DDSketch scheme): a duration
  ``x`` is counted in bucket ``ceil(log(x) / log(gamma))`` with
  ``gamma = (1 + a) / (1 - a)``, ``a`` being ``quantile_accuracy`` (1 % by
  default). A quantile is reported as its bucket's representative value, which is
  within ``a * x`` of the exact nearest-rank quantile ``x`` (or within 1 ns for
  durations under 1 ns, which share one bucket). A series holds at most one counter
  per bucket between 1 ns and 10**9 s: ``log(10**18) / log(gamma)`` ≈ 2,100
  counters at 1 %, and only the buckets actually hit are stored.
* **Histogram buckets** (fixed upper bounds, Prometheus style) feed the
  exposition.
* **Label cardinality** is capped: at most ``max_task_names`` distinct names get
  their own series; records under further names are counted under ``"other"``
  and in ``overflowed_records``.

Durations given to :meth:`AsyncMetricsCollector.record_task_execution` are taken
as they are; :meth:`AsyncMetricsCollector.time` and ``ops.measure`` measure on the
collector's :class:`~rxflows.Clock` (the loop clock by default, DESIGN rule 1).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

import reactivex
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector as PrometheusCollector
from prometheus_client.utils import floatToGoString
from reactivex import Observable, abc
from reactivex import operators as rx_ops

from ._clock import Clock, LoopClock, as_clock
from ._errors import ClosedResourceError, ConfigurationError, LoopManagerError
from ._scheduling import loop_scheduler

if TYPE_CHECKING:
    from aiohttp import web

    from ._config import AsyncFlowConfig

__all__ = [
    "EXPOSITION_CONTENT_TYPE",
    "OVERFLOW_TASK_NAME",
    "AsyncMetricsCollector",
    "MetricsServer",
    "MetricsSnapshot",
    "TaskMetrics",
    "TaskTimer",
    "create_async_metrics_collector",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

OVERFLOW_TASK_NAME: Final = "other"
"""The series that collects the records of task names beyond ``max_task_names``."""

EXPOSITION_CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
"""The content type of :meth:`AsyncMetricsCollector.exposition`: Prometheus text 0.0.4."""

_INF = math.inf
# bound once: the record path calls them on every record
_bisect_left = bisect_left
_ceil = math.ceil
_log = math.log
# Durations at or below 1 ns share the sketch's zero bucket (reported as the
# smallest duration seen); durations above 10**9 s share its top bucket.
_MIN_TRACKED = 1e-9
_MAX_TRACKED = 1e9
# p50, p95, p99 as exact fractions: 0.95 * 100 is 95.00000000000001 in floating
# point, and ceil() of that would take the 96th value instead of the 95th.
_STANDARD_QUANTILES = (Fraction(1, 2), Fraction(19, 20), Fraction(99, 100))
_METRIC_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:")


# --- records -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskMetrics:
    """The figures of one task name (or of all of them), from a :class:`MetricsSnapshot`.

    Durations are seconds. ``total_tasks`` counts the finished executions
    (``successful_tasks + failed_tasks``); cancelled ones are counted apart and take
    no part in the durations or the rates. With no execution recorded every duration
    is 0.0 and the rates are None.
    """

    total_tasks: int
    successful_tasks: int
    failed_tasks: int
    cancelled_tasks: int
    """Executions cancelled before they finished (``time()`` blocks, ``ops.measure``
    subscriptions disposed early); not part of ``total_tasks``."""
    success_rate: float | None
    """``successful_tasks / total_tasks`` (0 to 1); None when no task finished."""
    failure_rate: float | None
    """``failed_tasks / total_tasks`` (0 to 1); None when no task finished."""
    avg_execution_time: float
    """The mean duration of every finished execution, successful or failed."""
    min_execution_time: float
    p50_execution_time: float
    """The median (the lower one for an even count), within the sketch's accuracy."""
    p95_execution_time: float
    p99_execution_time: float
    max_execution_time: float
    """Exact, as is the minimum."""
    total_execution_time: float
    throughput: float
    """Finished executions per second of the collector's uptime (0.0 while no time
    has passed)."""

    def as_dict(self) -> dict[str, Any]:
        """The figures as a dict keyed by field name."""
        return {name: getattr(self, name) for name in _TASK_FIELDS}


_TASK_FIELDS: tuple[str, ...] = tuple(TaskMetrics.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class MetricsSnapshot(TaskMetrics):
    """Everything an :class:`AsyncMetricsCollector` knows at one instant.

    The inherited fields are the totals over every task name; ``tasks`` has the same
    figures per name. :meth:`as_dict` gives what ``await get_metrics()`` returns.

    Example:
        >>> snapshot = collector.snapshot()
        >>> snapshot.failed_tasks, snapshot.tasks["download"].p95_execution_time
        (2, 1.503...)
    """

    uptime: float
    """Seconds on the collector's clock since it was created (or reset)."""
    taken_at: float
    """The collector's clock when the snapshot was taken (monotonic seconds)."""
    overflowed_records: int
    """Records counted under ``"other"`` because ``max_task_names`` names were taken."""
    tasks: Mapping[str, TaskMetrics]
    """Per task name, in the order the names were first recorded."""

    def as_dict(self) -> dict[str, Any]:
        """The guide's metrics dict: the totals, ``uptime``, ``taken_at``,
        ``overflowed_records`` and ``tasks`` (a dict of per-name dicts)."""
        data = {name: getattr(self, name) for name in _TASK_FIELDS}
        data["uptime"] = self.uptime
        data["taken_at"] = self.taken_at
        data["overflowed_records"] = self.overflowed_records
        data["tasks"] = {name: task.as_dict() for name, task in self.tasks.items()}
        return data


class _Series:
    """The running figures of one task name; updated in place by ``record``."""

    __slots__ = (
        "buckets",
        "cancelled",
        "failures",
        "maximum",
        "minimum",
        "sketch",
        "successes",
        "total",
        "zeros",
    )

    def __init__(self, bucket_count: int) -> None:
        self.successes = 0
        self.failures = 0
        self.cancelled = 0
        self.total = 0.0
        self.minimum = _INF
        self.maximum = 0.0
        self.buckets = [0] * bucket_count
        """Non-cumulative counts; the last one is the +Inf bucket."""
        self.sketch: defaultdict[int, int] = defaultdict(int)
        """Count per log bucket; only the buckets hit are stored."""
        self.zeros = 0


# --- the collector ---------------------------------------------------------------


class AsyncMetricsCollector:
    """Records task executions and reports counts, durations and quantiles.

    The guide's use works as written::

        metrics_collector = create_async_metrics_collector()
        await metrics_collector.record_task_execution("process_video", 12.5, True)
        metrics = await metrics_collector.get_metrics()
        metrics["avg_execution_time"], metrics["tasks"]["process_video"]["p95_execution_time"]

    Ways to record: :meth:`record_task_execution` (the guide's, a duration you
    measured), :meth:`record` (the same, synchronous), ``async with
    collector.time(name):`` (measured on the clock) and the ``ops.measure``
    operator. Ways to read: :meth:`get_metrics` (dict), :meth:`snapshot` (typed),
    :meth:`snapshots` (an observable of periodic snapshots), :meth:`quantile`,
    :meth:`exposition` (Prometheus text) and :meth:`serve` (an HTTP endpoint).

    Recording is O(1) and allocates nothing for a name already seen. The collector
    is meant for one event loop (it holds no lock).

    Args:
        buckets: Upper bounds (seconds) of the exposition histogram's buckets:
            positive, finite, strictly increasing (a trailing ``math.inf`` is
            dropped: +Inf is always there). Default :attr:`DEFAULT_BUCKETS`.
        max_task_names: Most distinct task names with their own series; records
            under further names go to ``"other"`` and count in
            ``overflowed_records``. ``"other"`` itself is not counted.
        quantile_accuracy: Relative accuracy of the quantiles, from 0.001 to 0.5
            (default 0.01: within 1 %).
        namespace: Prefix of the exposed metric names (``rxflows_tasks_total``...).
        clock: Where :meth:`time`, ``ops.measure`` and the uptime read time: a
            :class:`~rxflows.Clock`, an Rx scheduler, or None for the loop clock.

    Example:
        >>> collector = AsyncMetricsCollector(max_task_names=50)
        >>> async with collector.time("download"):
        ...     await download(url)
        >>> collector.snapshot().tasks["download"].successful_tasks
        1
    """

    DEFAULT_BUCKETS: Final[tuple[float, ...]] = (
        0.005,
        0.01,
        0.025,
        0.05,
        0.075,
        0.1,
        0.25,
        0.5,
        0.75,
        1.0,
        2.5,
        5.0,
        7.5,
        10.0,
        30.0,
        60.0,
        120.0,
        300.0,
        600.0,
    )
    """Prometheus' default bounds, then 30 s to 10 min for video-sized work."""

    CONTENT_TYPE: Final = EXPOSITION_CONTENT_TYPE
    """The content type of :meth:`exposition`: Prometheus text format 0.0.4."""

    OVERFLOW_TASK_NAME: Final = OVERFLOW_TASK_NAME
    """The task name that collects records beyond ``max_task_names`` names."""

    def __init__(
        self,
        *,
        buckets: Iterable[float] | None = None,
        max_task_names: int = 100,
        quantile_accuracy: float = 0.01,
        namespace: str = "rxflows",
        clock: Clock | abc.SchedulerBase | None = None,
    ) -> None:
        bounds = self.DEFAULT_BUCKETS if buckets is None else _check_buckets(buckets)
        if isinstance(max_task_names, bool) or not isinstance(max_task_names, int):
            raise ConfigurationError(
                f"max_task_names must be a positive int, got {max_task_names!r}",
                field="max_task_names",
                value=max_task_names,
            )
        if max_task_names < 1:
            raise ConfigurationError(
                f"max_task_names must be a positive int, got {max_task_names!r}",
                field="max_task_names",
                value=max_task_names,
            )
        if (
            isinstance(quantile_accuracy, bool)
            or not isinstance(quantile_accuracy, int | float)
            or not 0.001 <= quantile_accuracy <= 0.5
        ):
            raise ConfigurationError(
                f"quantile_accuracy must be a number from 0.001 to 0.5, got {quantile_accuracy!r}",
                field="quantile_accuracy",
                value=quantile_accuracy,
            )
        if (
            not isinstance(namespace, str)
            or not namespace
            or namespace[0].isdigit()
            or not set(namespace) <= _METRIC_NAME_CHARS
        ):
            raise ConfigurationError(
                "namespace must be a Prometheus metric name prefix (letters, digits, '_' "
                f"and ':', not starting with a digit), got {namespace!r}",
                field="namespace",
                value=namespace,
            )
        self._clock = as_clock(clock)
        self._bounds: tuple[float, ...] = tuple(float(b) for b in bounds)
        # the ``le`` label values, formatted as prometheus_client formats its own
        self._le: tuple[str, ...] = (*(_go_float(b) for b in self._bounds), "+Inf")
        self._max_names = max_task_names
        self._accuracy = float(quantile_accuracy)
        self._gamma = (1.0 + self._accuracy) / (1.0 - self._accuracy)
        self._inv_log_gamma = 1.0 / math.log(self._gamma)
        self._min_key = math.ceil(math.log(_MIN_TRACKED) * self._inv_log_gamma)
        self._max_key = math.ceil(math.log(_MAX_TRACKED) * self._inv_log_gamma)
        self._namespace = namespace
        self._series: dict[str, _Series] = {}
        self._named = 0  # series other than "other", against max_task_names
        self._overflowed = 0
        self._started: float | None = self._initial_time()
        self._registry: CollectorRegistry | None = None
        self._view: _PrometheusView | None = None

    # -- properties ----------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """The clock :meth:`time`, ``ops.measure`` and the uptime read."""
        return self._clock

    @property
    def buckets(self) -> tuple[float, ...]:
        """The histogram's upper bounds, without +Inf."""
        return self._bounds

    @property
    def max_task_names(self) -> int:
        """Most distinct task names with their own series."""
        return self._max_names

    @property
    def quantile_accuracy(self) -> float:
        """Relative accuracy of the reported quantiles."""
        return self._accuracy

    # -- recording -----------------------------------------------------------------

    async def record_task_execution(self, name: str, duration: float, success: bool) -> None:
        """Record one finished execution of task ``name`` (the guide's API).

        Args:
            name: The task name, a non-empty str (a label: keep the set of names
                small; see ``max_task_names``).
            duration: Seconds it took, a finite number >= 0.
            success: True if it succeeded, False if it failed (a bool, strictly).

        Raises:
            ConfigurationError: on an empty or non-str name, a negative, infinite or
                NaN duration, or a non-bool success; nothing is recorded.
        """
        self.record(name, duration, success)

    def record(self, name: str, duration: float, success: bool) -> None:
        """:meth:`record_task_execution`, synchronously: for callbacks and operators."""
        # The checks cost two type tests on the usual path (a float, a bool, a known name).
        if type(duration) is not float or not 0.0 <= duration < _INF:
            duration = _check_duration(duration)
        if type(success) is not bool:
            raise ConfigurationError(
                f"success must be a bool (True or False), got {success!r}",
                field="success",
                value=success,
            )
        series = self._series.get(name) if type(name) is str else None
        if series is None:
            series = self._series_for(name)
        if success:
            series.successes += 1
        else:
            series.failures += 1
        series.total += duration
        if duration > series.maximum:
            series.maximum = duration
        if duration < series.minimum:
            series.minimum = duration
        series.buckets[_bisect_left(self._bounds, duration)] += 1
        if _MIN_TRACKED < duration <= _MAX_TRACKED:
            key = _ceil(_log(duration) * self._inv_log_gamma)
        elif duration > _MAX_TRACKED:
            key = self._max_key
        else:
            series.zeros += 1
            return
        series.sketch[key] += 1

    def record_cancelled(self, name: str) -> None:
        """Count one execution of ``name`` that was cancelled before it finished.

        Cancellations are counted in ``cancelled_tasks`` only: they are neither
        successes nor failures and have no duration.
        """
        series = self._series.get(name) if type(name) is str else None
        if series is None:
            series = self._series_for(name)
        series.cancelled += 1

    def time(self, name: str) -> TaskTimer:
        """Measure a block (or, as a decorator, each call of a coroutine function).

        ``async with collector.time("upload"):`` reads the clock on entry and on
        exit and records the difference: a success if the block finishes, a failure
        if it raises an ``Exception`` (the exception propagates). A block cancelled
        (``CancelledError``, or any other ``BaseException`` such as
        ``KeyboardInterrupt``) is counted in ``cancelled_tasks`` only. Put the timer
        outside ``asyncio.timeout(...)`` to count timeouts as failures: inside it,
        the block sees the cancellation.

        Example:
            >>> async with collector.time("transcode"):
            ...     await transcode(path)
            >>> @collector.time("upload")
            ... async def upload(path: str) -> str: ...
        """
        _check_name(name)
        return TaskTimer(self, name)

    def reset(self) -> None:
        """Forget every record and restart the uptime."""
        self._series.clear()
        self._named = 0
        self._overflowed = 0
        self._started = self._initial_time()

    # -- reading -------------------------------------------------------------------

    async def get_metrics(self) -> dict[str, Any]:
        """The guide's metrics dict: :meth:`snapshot` as a dict.

        Keys: ``total_tasks``, ``successful_tasks``, ``failed_tasks``,
        ``cancelled_tasks``, ``success_rate``, ``failure_rate``,
        ``avg_execution_time``, ``min_execution_time``, ``p50_execution_time``,
        ``p95_execution_time``, ``p99_execution_time``, ``max_execution_time``,
        ``total_execution_time``, ``throughput``, ``uptime``, ``taken_at``,
        ``overflowed_records`` and ``tasks`` (per name, the first fourteen keys).
        Every key is an identifier, so ``logger.info("metrics", **metrics)`` works.
        """
        return self.snapshot().as_dict()

    def snapshot(self) -> MetricsSnapshot:
        """Every figure now, as a frozen :class:`MetricsSnapshot`."""
        now = self._clock.now()
        if self._started is None:
            self._started = now
        uptime = max(0.0, now - self._started)
        tasks = {name: self._figures(series, uptime) for name, series in self._series.items()}
        merged = self._merged()
        totals = self._figures(merged, uptime)
        return MetricsSnapshot(
            **{name: getattr(totals, name) for name in _TASK_FIELDS},
            uptime=uptime,
            taken_at=now,
            overflowed_records=self._overflowed,
            tasks=MappingProxyType(tasks),
        )

    def quantile(self, q: float, name: str | None = None) -> float:
        """The ``q``-quantile (0 <= q <= 1, nearest rank) of the durations of ``name``,
        or of every task when None; 0.0 when there is none. Within
        ``quantile_accuracy`` of the exact value (1 ns below 1 ns)."""
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 <= q <= 1.0:
            raise ConfigurationError(
                f"q must be a number from 0 to 1, got {q!r}", field="q", value=q
            )
        if name is None:
            series = self._merged()
        else:
            found = self._series.get(name)
            if found is None:
                _check_name(name)
                return 0.0
            series = found
        return self._quantiles(series, (Fraction(q).limit_denominator(10**9),))[0]

    def snapshots(
        self, interval: float, scheduler: abc.SchedulerBase | None = None
    ) -> Observable[MetricsSnapshot]:
        """An observable of a :meth:`snapshot` every ``interval`` seconds.

        .. code::

            [ snapshots(0.003) ]       (1 frame = 1 ms; subscribed at frame 0)
            ---s--s--s--...            (a snapshot at frames 3, 6, 9, ...; never completes)

        The ticks come from ``reactivex.interval`` on ``scheduler``, else the
        scheduler given at subscribe time, else the running loop's
        :class:`~rxflows.LoopScheduler`; the snapshots read the collector's clock.

        Example:
            >>> collector.snapshots(10).pipe(rx_ops.take(3)).subscribe(print)
        """
        period = _check_positive_seconds("interval", interval)

        def subscribe(
            observer: abc.ObserverBase[MetricsSnapshot],
            subscribe_scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            chosen = scheduler or subscribe_scheduler or _running_loop_scheduler()
            ticks = reactivex.interval(period, scheduler=chosen)
            return ticks.pipe(rx_ops.map(lambda _: self.snapshot())).subscribe(
                observer, scheduler=chosen
            )

        return reactivex.create(subscribe)

    # -- Prometheus ---------------------------------------------------------------

    @property
    def registry(self) -> CollectorRegistry:
        """The collector's own ``CollectorRegistry`` (never the global one), holding
        its metric families; add your own collectors to it, or scrape it."""
        if self._registry is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(self.prometheus_collector)
            self._registry = registry
        return self._registry

    @property
    def prometheus_collector(self) -> PrometheusCollector:
        """A ``prometheus_client`` collector that reads this one at each scrape.

        Register it with a registry you already serve to add these metrics there:
        ``my_registry.register(collector.prometheus_collector)``. It describes its
        families, so a name clash raises at registration.
        """
        if self._view is None:
            self._view = _PrometheusView(self)
        return self._view

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format 0.0.4
        (:data:`EXPOSITION_CONTENT_TYPE`).

        Families (``rxflows`` is ``namespace``), labelled by ``task``:

        * ``rxflows_task_duration_seconds``: histogram of every finished execution;
        * ``rxflows_tasks_total``: counter, ``outcome`` = success, failure, cancelled;
        * ``rxflows_task_duration_quantile_seconds``: gauge, ``quantile`` = 0.5,
          0.95, 0.99 (from the sketch; series with no finished execution omitted);
        * ``rxflows_task_names_overflow_total``: records counted under ``"other"``.
        """
        return generate_latest(self.registry)

    async def serve(
        self, host: str = "127.0.0.1", port: int = 0, *, path: str = "/metrics"
    ) -> MetricsServer:
        """Serve :meth:`exposition` over HTTP (aiohttp) until the server is closed.

        Returns the started :class:`MetricsServer`; its ``port`` is the bound port
        (give ``port=0`` to let the system choose). Close it with
        ``await server.aclose()``, or use it as ``async with await collector.serve()
        as server:``.
        """
        server = MetricsServer(self, host, port, path=path)
        await server.start()
        return server

    def _families(self, *, samples: bool = True) -> Iterator[Metric]:
        ns = self._namespace
        histogram = HistogramMetricFamily(
            f"{ns}_task_duration_seconds",
            "Duration of finished task executions (successes and failures).",
            labels=["task"],
        )
        outcomes = CounterMetricFamily(
            f"{ns}_tasks",
            "Task executions by outcome (success, failure, cancelled).",
            labels=["task", "outcome"],
        )
        quantiles = GaugeMetricFamily(
            f"{ns}_task_duration_quantile_seconds",
            f"Duration quantiles, within {self._accuracy:.3g} relative accuracy.",
            labels=["task", "quantile"],
        )
        overflow = CounterMetricFamily(
            f"{ns}_task_names_overflow",
            f"Records counted under task={OVERFLOW_TASK_NAME!r} because "
            f"max_task_names ({self._max_names}) names were taken.",
        )
        if samples:
            le = self._le
            for name, series in list(self._series.items()):
                cumulative = 0
                buckets: list[tuple[str, float]] = []
                for bound, count in zip(le, series.buckets, strict=True):
                    cumulative += count
                    buckets.append((bound, cumulative))
                histogram.add_metric([name], buckets, series.total)
                outcomes.add_metric([name, "success"], series.successes)
                outcomes.add_metric([name, "failure"], series.failures)
                outcomes.add_metric([name, "cancelled"], series.cancelled)
                if series.successes + series.failures:
                    values = self._quantiles(series, _STANDARD_QUANTILES)
                    for label, value in zip(("0.5", "0.95", "0.99"), values, strict=True):
                        quantiles.add_metric([name, label], value)
            overflow.add_metric([], self._overflowed)
        yield histogram
        yield outcomes
        yield quantiles
        yield overflow

    # -- internals --------------------------------------------------------------------

    def _initial_time(self) -> float | None:
        """The clock now, or None when that reading would not be on the loop's clock
        (the loop clock outside a running loop): the uptime then starts at first use."""
        if isinstance(self._clock, LoopClock):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return None
        return self._clock.now()

    def _series_for(self, name: object) -> _Series:
        """The series of a name not seen yet (or of ``"other"`` once the cap is hit)."""
        _check_name(name)
        assert isinstance(name, str)
        found = self._series.get(name)
        if found is not None:
            return found
        if self._started is None:
            self._started = self._clock.now()
        if name != OVERFLOW_TASK_NAME:
            if self._named >= self._max_names:
                self._overflowed += 1
                return self._series_for(OVERFLOW_TASK_NAME)
            self._named += 1
        series = _Series(len(self._bounds) + 1)
        self._series[name] = series
        return series

    def _merged(self) -> _Series:
        """Every series added up (the totals)."""
        merged = _Series(len(self._bounds) + 1)
        sketch = merged.sketch
        for series in list(self._series.values()):
            merged.successes += series.successes
            merged.failures += series.failures
            merged.cancelled += series.cancelled
            merged.total += series.total
            merged.minimum = min(merged.minimum, series.minimum)
            merged.maximum = max(merged.maximum, series.maximum)
            merged.zeros += series.zeros
            for key, count in list(series.sketch.items()):
                sketch[key] += count
        return merged

    def _figures(self, series: _Series, uptime: float) -> TaskMetrics:
        finished = series.successes + series.failures
        if finished:
            p50, p95, p99 = self._quantiles(series, _STANDARD_QUANTILES)
            return TaskMetrics(
                total_tasks=finished,
                successful_tasks=series.successes,
                failed_tasks=series.failures,
                cancelled_tasks=series.cancelled,
                success_rate=series.successes / finished,
                failure_rate=series.failures / finished,
                avg_execution_time=series.total / finished,
                min_execution_time=series.minimum,
                p50_execution_time=p50,
                p95_execution_time=p95,
                p99_execution_time=p99,
                max_execution_time=series.maximum,
                total_execution_time=series.total,
                throughput=finished / uptime if uptime > 0.0 else 0.0,
            )
        return TaskMetrics(
            total_tasks=0,
            successful_tasks=0,
            failed_tasks=0,
            cancelled_tasks=series.cancelled,
            success_rate=None,
            failure_rate=None,
            avg_execution_time=0.0,
            min_execution_time=0.0,
            p50_execution_time=0.0,
            p95_execution_time=0.0,
            p99_execution_time=0.0,
            max_execution_time=0.0,
            total_execution_time=0.0,
            throughput=0.0,
        )

    def _quantiles(self, series: _Series, qs: Sequence[Fraction]) -> list[float]:
        """Nearest-rank quantiles from the sketch, in the order of ``qs`` (ascending),
        clamped to the exact minimum and maximum (and exact for the largest rank)."""
        count = series.successes + series.failures
        if count == 0:
            return [0.0] * len(qs)
        gamma = self._gamma
        lowest, highest = series.minimum, series.maximum
        items = sorted(series.sketch.items())
        results: list[float] = []
        position = 0
        seen = series.zeros
        for q in qs:
            # the rank (1-based) of the nearest-rank quantile: ceil(q * count), >= 1
            rank = max(1, -(-q.numerator * count // q.denominator))
            if rank == count or rank == 1:  # the extremes are known exactly
                results.append(highest if rank == count else lowest)
                continue
            if rank <= series.zeros:
                estimate = 0.0
            else:
                while seen < rank:
                    key, hits = items[position]
                    seen += hits
                    position += 1
                key = items[position - 1][0]
                estimate = 2.0 * gamma**key / (gamma + 1.0)
            results.append(min(highest, max(lowest, estimate)))
        return results


class _PrometheusView:
    """The ``prometheus_client`` collector that reads an :class:`AsyncMetricsCollector`."""

    def __init__(self, collector: AsyncMetricsCollector) -> None:
        self._collector = collector

    def describe(self) -> Iterable[Metric]:
        return list(self._collector._families(samples=False))

    def collect(self) -> Iterable[Metric]:
        return list(self._collector._families())


# --- timing a block --------------------------------------------------------------


class TaskTimer:
    """What :meth:`AsyncMetricsCollector.time` returns: an async context manager and
    a decorator of coroutine functions.

    One timer times one block at a time (entering it while it runs raises
    RuntimeError); as a decorator it makes a fresh timer for every call, so
    concurrent calls are timed separately.
    """

    __slots__ = ("_collector", "_name", "_start")

    def __init__(self, collector: AsyncMetricsCollector, name: str) -> None:
        self._collector = collector
        self._name = name
        self._start: float | None = None

    @property
    def name(self) -> str:
        """The task name the timer records under."""
        return self._name

    async def __aenter__(self) -> TaskTimer:
        if self._start is not None:
            raise RuntimeError(
                f"this timer of {self._name!r} is already timing a block; "
                "call collector.time(name) once per block"
            )
        self._start = self._collector._clock.now()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        start = self._start
        self._start = None
        collector = self._collector
        if start is None:  # pragma: no cover - __aexit__ without __aenter__
            return
        if exc_type is None:
            collector.record(self._name, max(0.0, collector._clock.now() - start), True)
        elif issubclass(exc_type, Exception):
            collector.record(self._name, max(0.0, collector._clock.now() - start), False)
        else:
            collector.record_cancelled(self._name)

    def __call__(self, fn: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
        """Decorate a coroutine function: every call is timed under this name."""
        if not callable(fn):
            raise TypeError(f"collector.time(...) decorates a coroutine function, got {fn!r}")
        collector = self._collector
        name = self._name

        @functools.wraps(fn)
        async def timed(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            async with TaskTimer(collector, name):
                return await fn(*args, **kwargs)

        return timed


# --- HTTP endpoint -----------------------------------------------------------------


class _ServerState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


class MetricsServer:
    """An aiohttp server answering ``GET /metrics`` with a collector's exposition.

    Content negotiation is ``prometheus_client``'s: text format 0.0.4 by default,
    OpenMetrics when the scraper asks for it (Prometheus does); gzip when accepted.

    Example:
        >>> async with MetricsServer(collector, port=9464) as server:
        ...     print(server.url)        # http://127.0.0.1:9464/metrics
        ...     await serve_forever()

    ``start()`` is idempotent and returns the bound port; ``aclose()`` is idempotent
    and closes the listening socket and open connections.
    """

    def __init__(
        self,
        collector: AsyncMetricsCollector,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        path: str = "/metrics",
    ) -> None:
        if not isinstance(collector, AsyncMetricsCollector):
            raise TypeError(
                f"MetricsServer needs an AsyncMetricsCollector, got {type(collector).__name__}"
            )
        if not isinstance(host, str) or not host:
            raise ConfigurationError(
                f"host must be a non-empty str, got {host!r}", field="host", value=host
            )
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(
                f"port must be an int from 0 to 65535 (0: any free port), got {port!r}",
                field="port",
                value=port,
            )
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigurationError(
                f"path must be a str starting with '/', got {path!r}", field="path", value=path
            )
        self._collector = collector
        self._host = host
        self._requested_port = port
        self._path = path
        self._state = _ServerState.NEW
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the metrics server is not started: await server.start() first")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port/path`` (after :meth:`start`)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}{self._path}"

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._state is _ServerState.RUNNING

    async def start(self) -> int:
        """Start listening (once) and return the bound port."""
        if self._state is _ServerState.RUNNING:
            return self.port
        if self._state is _ServerState.CLOSED:
            raise ClosedResourceError("the metrics server was closed; create a new one")
        from aiohttp import web
        from prometheus_client.aiohttp import make_aiohttp_handler

        app = web.Application()
        app.router.add_get(self._path, make_aiohttp_handler(self._collector.registry))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
            self._port = int(runner.addresses[0][1])
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._state = _ServerState.RUNNING
        return self._port

    async def aclose(self) -> None:
        """Stop listening and close every connection; idempotent."""
        if self._state is _ServerState.CLOSED:
            return
        self._state = _ServerState.CLOSED
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# --- construction and checks -------------------------------------------------------


def create_async_metrics_collector(
    config: AsyncFlowConfig | None = None,
    *,
    buckets: Iterable[float] | None = None,
    max_task_names: int = 100,
    quantile_accuracy: float = 0.01,
    namespace: str = "rxflows",
    clock: Clock | abc.SchedulerBase | None = None,
) -> AsyncMetricsCollector:
    """The guide's factory: a new :class:`AsyncMetricsCollector`.

    ``config`` is accepted (and checked) for symmetry with the other factories;
    no collector setting comes from it. The keywords are the collector's.

    Example:
        >>> metrics_collector = create_async_metrics_collector()
        >>> await metrics_collector.record_task_execution("process_video", 2.5, True)
    """
    from ._config import config_or_default

    config_or_default(config)
    return AsyncMetricsCollector(
        buckets=buckets,
        max_task_names=max_task_names,
        quantile_accuracy=quantile_accuracy,
        namespace=namespace,
        clock=clock,
    )


def _go_float(value: float) -> str:
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]  # unannotated upstream
    return text


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(
            f"name must be a non-empty str, got {name!r}", field="name", value=name
        )


def _check_duration(duration: object) -> float:
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not 0.0 <= duration < _INF
    ):
        raise ConfigurationError(
            f"duration must be a finite number of seconds >= 0, got {duration!r}",
            field="duration",
            value=duration,
        )
    return float(duration)


def _check_positive_seconds(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < _INF:
        raise ConfigurationError(
            f"{field} must be a positive, finite number of seconds, got {value!r}",
            field=field,
            value=value,
        )
    return float(value)


def _check_buckets(buckets: object) -> tuple[float, ...]:
    rule = "buckets must be positive, finite numbers in strictly increasing order"
    if isinstance(buckets, str | bytes) or not isinstance(buckets, Iterable):
        raise ConfigurationError(f"{rule}, got {buckets!r}", field="buckets", value=buckets)
    bounds = list(buckets)
    if bounds and bounds[-1] == _INF:
        bounds.pop()
    if not bounds:
        raise ConfigurationError(
            f"{rule} (at least one besides +Inf), got {buckets!r}", field="buckets", value=buckets
        )
    previous = 0.0
    for bound in bounds:
        if (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not previous < bound < _INF
        ):
            raise ConfigurationError(
                f"{rule}, got {bound!r} in {buckets!r}", field="buckets", value=buckets
            )
        previous = bound
    return tuple(float(b) for b in bounds)


def _running_loop_scheduler() -> abc.SchedulerBase:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise LoopManagerError(
            "snapshots() needs a scheduler: subscribe inside a running event loop, pass "
            "scheduler= to subscribe(), or give snapshots(interval, scheduler=...)"
        ) from None
    return loop_scheduler()
