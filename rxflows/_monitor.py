"""The metrics monitor: checks a collector periodically and raises the alarm on a bus.

:class:`MetricsMonitor` is the guide's ``VideoProcessingMonitor`` made reusable:
every ``interval`` seconds it takes a snapshot of an
:class:`~rxflows.AsyncMetricsCollector`, publishes ``high_failure_rate`` and/or
``slow_processing`` (with the metrics dict) on an event bus when a threshold is
exceeded, and logs the figures. The bus is anything with
``async def publish(event, data)`` (:class:`EventPublisher`), such as
:class:`~rxflows.AsyncEventBus`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Final, Protocol, runtime_checkable

from reactivex import abc

from ._clock import Clock, as_clock
from ._errors import ConfigurationError
from ._metrics import AsyncMetricsCollector, MetricsSnapshot

__all__ = ["HIGH_FAILURE_RATE", "SLOW_PROCESSING", "EventPublisher", "MetricsMonitor"]

HIGH_FAILURE_RATE: Final = "high_failure_rate"
"""The event published when failures exceed a threshold (the guide's name)."""
SLOW_PROCESSING: Final = "slow_processing"
"""The event published when durations exceed a threshold (the guide's name)."""

_log = logging.getLogger("rxflows.metrics")


@runtime_checkable
class EventPublisher(Protocol):
    """Where a :class:`MetricsMonitor` publishes: ``await bus.publish(event, data)``."""

    def publish(self, event: str, data: Any, /) -> Awaitable[object]:
        """Deliver ``data`` to the subscribers of ``event``."""
        ...


class StructuredLogger(Protocol):
    """A structlog-style logger: ``logger.info("message", key=value, ...)``."""

    def info(self, *args: Any, **kwargs: Any) -> object:
        """Log ``args[0]`` (the message) with ``kwargs`` as structured fields."""
        ...


class MetricsMonitor:
    """Checks a collector every ``interval`` seconds and publishes alarms on a bus.

    At each check (``interval`` seconds after :meth:`start`, then every
    ``interval``), the monitor takes ``collector.snapshot()`` and publishes, in this
    order and at most once each:

    * ``"high_failure_rate"`` when ``failed_tasks > failure_threshold`` or
      ``failure_rate > failure_rate_threshold``;
    * ``"slow_processing"`` when ``avg_execution_time > avg_time_threshold`` or
      ``p95_execution_time > p95_threshold``;

    each with the metrics dict (``snapshot.as_dict()``, what ``get_metrics()``
    returns) as its data. Then, if a ``logger`` was given, it logs
    ``logger.info("Processing metrics", **metrics)``. As in the guide, the figures
    are the collector's (since its creation or last ``reset()``), and an alarm is
    published at every check while its condition holds. A threshold of None turns
    its test off. A check that fails (the bus raised) is logged on the
    ``rxflows.metrics`` logger and the monitor keeps going.

    Args:
        collector: The :class:`~rxflows.AsyncMetricsCollector` to watch.
        bus: Anything with ``async def publish(event, data)``.
        interval: Seconds between checks.
        failure_threshold: Most failed tasks tolerated (a positive int or None).
        failure_rate_threshold: Highest failure rate tolerated, in (0, 1], or None.
        avg_time_threshold: Highest mean duration tolerated (seconds) or None.
        p95_threshold: Highest 95th-percentile duration tolerated (seconds) or None.
        logger: A structlog-style logger (``info(msg, **fields)``), or None.
        clock: What the monitor waits on; default the collector's clock.

    Example:
        >>> async with MetricsMonitor(collector, bus, interval=10, p95_threshold=60):
        ...     await process_videos()
    """

    def __init__(
        self,
        collector: AsyncMetricsCollector,
        bus: EventPublisher,
        interval: float = 10.0,
        *,
        failure_threshold: int | None = 10,
        failure_rate_threshold: float | None = None,
        avg_time_threshold: float | None = 30.0,
        p95_threshold: float | None = None,
        logger: StructuredLogger | None = None,
        clock: Clock | abc.SchedulerBase | None = None,
    ) -> None:
        if not isinstance(collector, AsyncMetricsCollector):
            raise TypeError(
                f"MetricsMonitor needs an AsyncMetricsCollector, got {type(collector).__name__}"
            )
        if not callable(getattr(bus, "publish", None)):
            raise TypeError(
                "bus must have an async publish(event, data) method (an AsyncEventBus), "
                f"got {type(bus).__name__}"
            )
        _check_seconds("interval", interval, optional=False)
        if failure_threshold is not None and (
            isinstance(failure_threshold, bool)
            or not isinstance(failure_threshold, int)
            or failure_threshold <= 0
        ):
            raise ConfigurationError(
                f"failure_threshold must be a positive int or None, got {failure_threshold!r}",
                field="failure_threshold",
                value=failure_threshold,
            )
        if failure_rate_threshold is not None and (
            isinstance(failure_rate_threshold, bool)
            or not isinstance(failure_rate_threshold, int | float)
            or not 0.0 < failure_rate_threshold <= 1.0
        ):
            raise ConfigurationError(
                "failure_rate_threshold must be a fraction in (0, 1] (0.25 for 25 %) or None, "
                f"got {failure_rate_threshold!r}",
                field="failure_rate_threshold",
                value=failure_rate_threshold,
            )
        _check_seconds("avg_time_threshold", avg_time_threshold, optional=True)
        _check_seconds("p95_threshold", p95_threshold, optional=True)
        if logger is not None and not callable(getattr(logger, "info", None)):
            raise TypeError(
                f"logger must have an info(message, **fields) method, got {type(logger).__name__}"
            )
        self._collector = collector
        self._bus = bus
        self._interval = float(interval)
        self._failure_threshold = failure_threshold
        self._failure_rate_threshold = failure_rate_threshold
        self._avg_time_threshold = avg_time_threshold
        self._p95_threshold = p95_threshold
        self._logger = logger
        self._clock = collector.clock if clock is None else as_clock(clock)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the periodic checks are running."""
        return self._task is not None and not self._task.done()

    @property
    def interval(self) -> float:
        """Seconds between checks."""
        return self._interval

    async def start(self) -> None:
        """Start the periodic checks (the first one ``interval`` seconds from now).

        Idempotent: a running monitor is left as it is.
        """
        if self.running:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"rxflows-metrics-monitor-{id(self):x}"
        )

    async def stop(self) -> None:
        """Stop the checks and wait until the monitor's task has finished; idempotent.

        A check in progress (waiting on the bus) is cancelled.
        """
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        if task is asyncio.current_task():  # stop() called from a handler of our own event
            return
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller of stop() is being cancelled too

    async def check(self) -> tuple[str, ...]:
        """Check the collector now; returns the events published (in order)."""
        snapshot = self._collector.snapshot()
        events = self.alarms(snapshot)
        for event in events:
            await self._bus.publish(event, snapshot.as_dict())
        if self._logger is not None:
            self._logger.info("Processing metrics", **snapshot.as_dict())
        else:
            _log.debug(
                "Processing metrics: %d tasks, %d failed, avg %.3f s, p95 %.3f s",
                snapshot.total_tasks,
                snapshot.failed_tasks,
                snapshot.avg_execution_time,
                snapshot.p95_execution_time,
            )
        return events

    def alarms(self, snapshot: MetricsSnapshot) -> tuple[str, ...]:
        """The events a check of ``snapshot`` publishes, without publishing them."""
        events: list[str] = []
        failure_rate = snapshot.failure_rate
        if (
            self._failure_threshold is not None and snapshot.failed_tasks > self._failure_threshold
        ) or (
            self._failure_rate_threshold is not None
            and failure_rate is not None
            and failure_rate > self._failure_rate_threshold
        ):
            events.append(HIGH_FAILURE_RATE)
        if (
            self._avg_time_threshold is not None
            and snapshot.avg_execution_time > self._avg_time_threshold
        ) or (
            self._p95_threshold is not None and snapshot.p95_execution_time > self._p95_threshold
        ):
            events.append(SLOW_PROCESSING)
        return tuple(events)

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self._interval)
            try:
                await self.check()
            except Exception:
                _log.exception("metrics monitor: the check failed; next one in %ss", self._interval)

    async def __aenter__(self) -> MetricsMonitor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _check_seconds(field: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 < value < float("inf")
    ):
        rule = "a positive, finite number of seconds" + (" or None" if optional else "")
        raise ConfigurationError(f"{field} must be {rule}, got {value!r}", field=field, value=value)
