"""AsyncFlowManager: owns rxflows' components, starts them, drains and closes them."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Self

from reactivex import abc

from ._breaker import CircuitBreaker
from ._cache import AsyncCache
from ._clock import Clock, as_clock
from ._config import AsyncFlowConfig, config_or_default
from ._errors import ClosedResourceError, ConfigurationError
from ._events import AsyncEventBus
from ._http import HTTPConnectionPool
from ._metrics import AsyncMetricsCollector
from ._monitor import MetricsMonitor
from ._resource import AsyncResource
from ._retry import RetryPolicy
from ._scheduling import AsyncEventLoopManager
from ._tasks import PriorityTaskQueue, TaskResult, TaskStatus
from ._workflow import AsyncWorkflowEngine

__all__ = ["AsyncFlowManager", "ManagerState", "create_async_flow_manager"]

_log = logging.getLogger("rxflows.manager")

VideoProcessorFactory = Callable[["AsyncFlowManager"], Any]
"""Builds the manager's video processor from the manager (its config and components)."""


class ManagerState(enum.Enum):
    """The lifecycle of an :class:`AsyncFlowManager`."""

    CREATED = "created"
    """Built; components exist, nothing started (no task queue workers yet)."""
    RUNNING = "running"
    """``start()`` finished: the task queue's workers run, the monitor checks."""
    SHUTTING_DOWN = "shutting_down"
    """``shutdown()`` is draining and closing the components."""
    CLOSED = "closed"
    """Everything is closed; ``start()`` and ``attach()`` raise."""


_CREATED: Final = ManagerState.CREATED
_RUNNING: Final = ManagerState.RUNNING
_SHUTTING_DOWN: Final = ManagerState.SHUTTING_DOWN
_CLOSED: Final = ManagerState.CLOSED

_BUILT_IN: Final = (
    "loop_manager",
    "event_bus",
    "metrics_collector",
    "cache",
    "http_pool",
    "task_queue",
    "workflow_engine",
)


def _default_video_processor_factory(manager: AsyncFlowManager, **options: Any) -> Any:
    """The video processor of a manager built without ``video_processor_factory``.

    ``create_async_video_processor(manager.config, ...)`` built on the manager's
    components: its HTTP pool (so the per-host breakers are the manager's
    ``breaker("http:<host>:<port>")``), its event bus (``video_processed`` /
    ``video_failed`` and the pipeline's workflow events) and its clock. The media
    libraries still load only when a video is processed. ``options`` are more
    keyword arguments of the processor (``output_dir``, ``clip_count``, ...): pass
    ``video_processor_factory=lambda m: _default_video_processor_factory(m, ...)``.
    """
    from .video._processor import create_async_video_processor

    return create_async_video_processor(
        manager.config,
        http_pool=manager.http_pool,
        event_bus=manager.event_bus,
        clock=manager._clock,
        **options,
    )


class AsyncFlowManager(AsyncResource):
    """Owns rxflows' components, built from one config: starts, drains and closes them.

    The components are attributes, created in this order (and closed in the
    reverse order): :attr:`loop_manager`, :attr:`event_bus`,
    :attr:`metrics_collector`, :attr:`cache`, the breakers (:meth:`breaker`),
    :attr:`http_pool`, :attr:`task_queue`, :attr:`workflow_engine` (publishing on
    :attr:`event_bus`), then :attr:`video_processor` and anything :meth:`attach` ed.

    The guide's use works as written::

        flow_manager = create_async_flow_manager(config)
        await flow_manager.start()
        metrics = await flow_manager.metrics_collector.get_metrics()
        await flow_manager.shutdown()

    Lifecycle (:attr:`state`, a :class:`ManagerState`): ``CREATED`` ->
    :meth:`start` -> ``RUNNING`` -> :meth:`shutdown` -> ``SHUTTING_DOWN`` ->
    ``CLOSED``. :meth:`start` starts ``task_workers`` workers on the task queue
    (service mode: ``put`` tasks any time), records every task's outcome in the
    metrics collector (when ``config.enable_metrics``), starts a
    :class:`~rxflows.MetricsMonitor` (when ``monitor_interval`` is given) and the
    attached resources that have a ``start()``. Both calls are idempotent;
    :meth:`start` after :meth:`shutdown` raises :class:`~rxflows.ClosedResourceError`.

    :meth:`shutdown` first drains: the task queue runs every queued task
    (``stop(drain=True)``), then the bus delivers every published event
    (``drain()``). Then it closes in reverse order of creation. A component that
    fails to close does not keep the others open: the first failure is raised
    once everything is closed (see :meth:`shutdown`). ``async with manager:``
    starts on entry and shuts down on exit (without draining if the block raised);
    :meth:`aclose` is :meth:`shutdown`.

    Args:
        config: An :class:`~rxflows.AsyncFlowConfig` (the defaults for None). It
            sizes every component: ``event_bus_buffer_size``, ``cache_max_size`` and
            ``cache_ttl``, ``circuit_breaker_*``, ``max_concurrent_connections`` and
            ``retry_*`` (the HTTP pool), ``task_queue_maxsize``,
            ``max_concurrent_tasks`` (the workflow engine, and the task workers by
            default); ``enable_metrics`` and ``enable_circuit_breaker`` switch
            those features.
        clock: Where every component reads and waits on time: an rxflows Clock, an
            Rx scheduler or None (the running loop's clock).
        task_workers: Workers :meth:`start` runs on the task queue; default
            ``config.max_concurrent_tasks``.
        monitor_interval: Seconds between the checks of a
            :class:`~rxflows.MetricsMonitor` publishing ``high_failure_rate`` and
            ``slow_processing`` on the bus; None (the default): no monitor. Needs
            ``config.enable_metrics``.
        video_processor_factory: ``factory(manager)`` returning the video processor
            (anything with ``async aclose()``, optionally ``async start()``);
            default: the rxflows video processor once it is available, else None.

    Example:
        >>> async with create_async_flow_manager(config) as manager:
        ...     await manager.task_queue.put(AsyncTask(process_video, args=("a.mp4",)))
        ...     await manager.event_bus.publish("video_ready", {"url": "a.mp4"})
        >>> manager.state
        <ManagerState.CLOSED: 'closed'>
    """

    video_processor: Any
    """The video processor (None until one is plugged in, see ``video_processor_factory``)."""

    def __init__(
        self,
        config: AsyncFlowConfig | None = None,
        *,
        clock: Clock | abc.SchedulerBase | None = None,
        task_workers: int | None = None,
        monitor_interval: float | None = None,
        video_processor_factory: VideoProcessorFactory | None = None,
    ) -> None:
        self._config = cfg = config_or_default(config)
        if task_workers is not None and (
            isinstance(task_workers, bool) or not isinstance(task_workers, int) or task_workers < 1
        ):
            raise ConfigurationError(
                f"task_workers must be a positive int or None (config.max_concurrent_tasks), "
                f"got {task_workers!r}",
                field="task_workers",
                value=task_workers,
            )
        if monitor_interval is not None:
            if (
                isinstance(monitor_interval, bool)
                or not isinstance(monitor_interval, int | float)
                or not 0.0 < monitor_interval < float("inf")
            ):
                raise ConfigurationError(
                    "monitor_interval must be a positive, finite number of seconds or None, "
                    f"got {monitor_interval!r}",
                    field="monitor_interval",
                    value=monitor_interval,
                )
            if not cfg.enable_metrics:
                raise ConfigurationError(
                    "monitor_interval needs config.enable_metrics=True (the monitor watches "
                    f"the metrics), got monitor_interval={monitor_interval!r} with metrics off",
                    field="monitor_interval",
                    value=monitor_interval,
                )
        if video_processor_factory is not None and not callable(video_processor_factory):
            raise TypeError(
                "video_processor_factory must be a callable manager -> video processor, got "
                f"{video_processor_factory!r}"
            )
        self._clock = clock
        self._task_workers = cfg.max_concurrent_tasks if task_workers is None else task_workers
        self._monitor_interval = monitor_interval
        self._state = _CREATED
        self._lock = asyncio.Lock()
        self._closed_event = asyncio.Event()
        self._results_subscription: abc.DisposableBase | None = None
        self._breakers: dict[str, CircuitBreaker] = {}
        self._attached: dict[str, Any] = {}

        self.loop_manager: AsyncEventLoopManager = AsyncEventLoopManager(cfg)
        """Runs a coroutine on a configured (uvloop) loop: ``loop_manager.run(main())``."""
        self.event_bus: AsyncEventBus = AsyncEventBus(cfg, clock=clock)
        """The bus every component publishes on (the workflow engine's too)."""
        self.metrics_collector: AsyncMetricsCollector = AsyncMetricsCollector(clock=clock)
        """Task metrics; the task queue's outcomes are recorded when ``enable_metrics``."""
        self.cache: AsyncCache = AsyncCache(cfg.cache_max_size, cfg.cache_ttl, clock=clock)
        """A cache of ``cache_max_size`` entries living ``cache_ttl`` seconds."""
        self.http_pool: HTTPConnectionPool = HTTPConnectionPool(
            max_connections=cfg.max_concurrent_connections,
            retry=RetryPolicy(
                max_attempts=cfg.retry_max_attempts,
                delay=cfg.retry_base_delay,
                max_delay=cfg.retry_max_delay,
                clock=clock,
            ),
            breaker=self._host_breaker if cfg.enable_circuit_breaker else None,
        )
        """One aiohttp session (opened on first use) over ``max_concurrent_connections``."""
        self.task_queue: PriorityTaskQueue = PriorityTaskQueue(
            config=cfg, clock=clock, name="manager-tasks"
        )
        """A priority queue run by ``task_workers`` workers once started."""
        self.workflow_engine: AsyncWorkflowEngine = AsyncWorkflowEngine(
            cfg, event_bus=self.event_bus, clock=clock
        )
        """A workflow engine publishing its events on :attr:`event_bus`."""
        self._monitor: MetricsMonitor | None = (
            None
            if monitor_interval is None
            else MetricsMonitor(self.metrics_collector, self.event_bus, monitor_interval)
        )
        self.video_processor = None
        factory = (
            _default_video_processor_factory
            if video_processor_factory is None
            else video_processor_factory
        )
        processor = factory(self)
        if processor is not None:
            self.attach("video_processor", processor)

    # -- properties ----------------------------------------------------------------------

    @property
    def config(self) -> AsyncFlowConfig:
        """The config every component was built from."""
        return self._config

    @property
    def state(self) -> ManagerState:
        """CREATED, RUNNING, SHUTTING_DOWN or CLOSED."""
        return self._state

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` has begun."""
        return self._state is _SHUTTING_DOWN or self._state is _CLOSED

    @property
    def monitor(self) -> MetricsMonitor | None:
        """The metrics monitor (``monitor_interval`` given), else None."""
        return self._monitor

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        """The breakers made so far by :meth:`breaker`, by name (a copy)."""
        return dict(self._breakers)

    def components(self) -> dict[str, Any]:
        """Every component by name, in creation order (the reverse of closing order).

        The breakers are not listed (see :attr:`breakers`); the monitor is, as
        ``"monitor"``, when there is one.
        """
        found: dict[str, Any] = {name: getattr(self, name) for name in _BUILT_IN}
        if self._monitor is not None:
            found["monitor"] = self._monitor
        found.update(self._attached)
        return found

    # -- breakers and attached resources ---------------------------------------------------

    def breaker(self, name: str) -> CircuitBreaker:
        """The circuit breaker named ``name``: made on first use with
        ``CircuitBreaker.from_config(config, name=name)``, then the same one.

        The HTTP pool's per-host breakers are in the same registry, as
        ``"http:<host>:<port>"``.

        Raises:
            ConfigurationError: ``config.enable_circuit_breaker`` is False, or the name
                is not a non-empty str.

        Example:
            >>> uploads = manager.breaker("uploads")
            >>> await uploads.call(upload, clip)
        """
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"name must be a non-empty str, got {name!r}", field="name", value=name
            )
        found = self._breakers.get(name)
        if found is None:
            if not self._config.enable_circuit_breaker:
                raise ConfigurationError(
                    f"breaker({name!r}): circuit breakers are off in this manager's config "
                    "(enable_circuit_breaker=False); turn them on or call without one",
                    field="enable_circuit_breaker",
                    value=False,
                )
            found = CircuitBreaker.from_config(self._config, name=name, clock=self._clock)
            self._breakers[name] = found
        return found

    def _host_breaker(self, host: str) -> CircuitBreaker:
        return self.breaker(f"http:{host}")

    def attach(self, name: str, resource: Any) -> Any:
        """Hand ``resource`` to the manager: closed (``await resource.aclose()``) by
        :meth:`shutdown` before the built-in components (attached last, closed first),
        and started (``await resource.start()``, if it has one) by :meth:`start`.

        Attach before :meth:`start` (a resource attached to a running manager is not
        started by it). The name ``"video_processor"`` also sets :attr:`video_processor`.
        Returns ``resource``.

        Raises:
            ClosedResourceError: the manager is shutting down or closed.
            ConfigurationError: the name is taken or not a non-empty str.
            TypeError: ``resource`` has no ``aclose()`` method.
        """
        if self.closed:
            raise ClosedResourceError(
                f"attach({name!r}): the flow manager is {self._state.value}; attach "
                "resources before shutdown()"
            )
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"name must be a non-empty str, got {name!r}", field="name", value=name
            )
        if name in _BUILT_IN or name == "monitor" or name in self._attached:
            raise ConfigurationError(
                f"name {name!r} is already taken by a component of the flow manager",
                field="name",
                value=name,
            )
        if not callable(getattr(resource, "aclose", None)):
            raise TypeError(
                f"attach({name!r}) needs a resource with an async aclose() method, got "
                f"{type(resource).__name__}"
            )
        self._attached[name] = resource
        if name == "video_processor":
            self.video_processor = resource
        return resource

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the task queue's workers, the metrics recording and monitor, and the
        attached resources that have a ``start()``. Idempotent while running.

        If starting fails, what was started is shut down and the error is raised.

        Raises:
            ClosedResourceError: :meth:`shutdown` was called.
        """
        async with self._lock:
            if self._state is _RUNNING:
                return
            if self._state is not _CREATED:
                raise ClosedResourceError(
                    f"start(): the flow manager is {self._state.value} (shutdown() was "
                    "called); create a new one with create_async_flow_manager()"
                )
            try:
                if self._config.enable_metrics:
                    self._results_subscription = self.task_queue.results.subscribe(
                        self._record_result
                    )
                self.task_queue.start(max_workers=self._task_workers)
                if self._monitor is not None:
                    await self._monitor.start()
                for resource in self._attached.values():
                    starter = getattr(resource, "start", None)
                    if callable(starter):
                        await starter()
            except BaseException:
                self._state = _RUNNING  # so shutdown drains and closes what started
                await self._shutdown_locked(drain=False, deadline=None)
                raise
            self._state = _RUNNING

    def _record_result(self, record: TaskResult) -> None:
        run_time = record.run_time
        if run_time is None:  # withdrawn before it started: not an execution
            return
        if record.status is TaskStatus.CANCELLED:
            self.metrics_collector.record_cancelled(record.name)
        else:
            self.metrics_collector.record(record.name, max(run_time, 0.0), record.succeeded)

    async def shutdown(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - a drain deadline on the manager's clock
        *,
        drain: bool = True,
    ) -> None:
        """Drain, then close every component in reverse order of creation. Idempotent.

        Draining (when the manager is running and ``drain`` is true): the task
        queue runs every queued task and the ones put meanwhile (``stop(drain=True)``),
        then the bus delivers every event published so far (``drain()``). With
        ``timeout`` seconds (on the manager's clock) the draining is cut short when
        they have elapsed: queued tasks are withdrawn, running ones cancelled, and
        undelivered events dropped. A manager that never started does not drain:
        queued tasks are withdrawn (each gets a CANCELLED record).

        Closing, in this order: the attached resources (the video processor) in
        reverse order of attachment, the monitor, :attr:`workflow_engine` (cancels
        runs still going), :attr:`task_queue`, :attr:`http_pool` (closes the
        aiohttp session), :attr:`cache` (cleared), :attr:`event_bus` (delivers what
        the others published while closing, unless the drain was cut short). Each
        component is closed even if an earlier one failed to close. Then, if any
        failed, the first failure is raised (its original type), with a note naming
        its component; the later failures are added as notes and logged (logger
        ``rxflows.manager``) with their tracebacks.

        A second call waits for the first to finish and returns.

        Raises:
            ConfigurationError: ``timeout`` is not a positive number or None.
        """
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0.0 < timeout < float("inf")
        ):
            raise ConfigurationError(
                f"timeout must be a positive, finite number of seconds or None, got {timeout!r}",
                field="timeout",
                value=timeout,
            )
        if self._shutdown_began():
            await self._closed_event.wait()
            return
        async with self._lock:
            if self._shutdown_began():  # another shutdown ran while we waited for the lock
                return
            await self._shutdown_locked(drain=drain, deadline=timeout)

    def _shutdown_began(self) -> bool:
        return self._state is _SHUTTING_DOWN or self._state is _CLOSED

    async def _shutdown_locked(self, *, drain: bool, deadline: float | None) -> None:
        was_running = self._state is _RUNNING
        self._state = _SHUTTING_DOWN
        drained = False
        drain_error: BaseException | None = None
        try:
            if drain and was_running:
                drained = await self._drain(deadline)
        except BaseException as exc:  # cancelled, or the drain failed: close all the same
            drain_error = exc
        try:
            await self._close_all(drain_bus=drained, first=drain_error)
        finally:
            self._state = _CLOSED
            self._closed_event.set()
            drain_error = None  # no reference cycle through the traceback

    async def _drain(self, deadline: float | None) -> bool:
        """Drain the queue then the bus; False if ``deadline`` seconds cut it short."""

        async def both() -> None:
            await self.task_queue.stop(drain=True)
            await self.event_bus.drain()

        if deadline is None:
            await both()
            return True
        clock = as_clock(self._clock)
        draining = asyncio.ensure_future(both())
        timer = asyncio.ensure_future(clock.sleep(deadline))
        try:
            await asyncio.wait((draining, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not draining.done():
                draining.cancel()
            await asyncio.wait((draining, timer))
        if draining.cancelled():
            _log.warning(
                "flow manager shutdown: the drain took longer than %ss; queued tasks were "
                "withdrawn, running ones cancelled, undelivered events dropped",
                deadline,
            )
            return False
        draining.result()  # a failure of stop() or drain() is raised here
        return True

    def _closers(self, *, drain_bus: bool) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
        """(name, close) in closing order: the reverse of creation."""
        closers: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        for name, resource in reversed(self._attached.items()):
            closers.append((name, resource.aclose))
        monitor = self._monitor
        if monitor is not None:
            closers.append(("monitor", monitor.stop))
        closers.append(("workflow_engine", self.workflow_engine.aclose))
        closers.append(("task_queue", self.task_queue.aclose))
        closers.append(("http_pool", self.http_pool.close))
        closers.append(("cache", self.cache.clear))
        closers.append(("event_bus", lambda: self.event_bus.aclose(drain=drain_bus)))
        return closers

    async def _close_all(self, *, drain_bus: bool, first: BaseException | None) -> None:
        failures: list[tuple[str, BaseException]] = []
        if first is not None:
            failures.append(("drain", first))
        for name, close in self._closers(drain_bus=drain_bus):
            try:
                await close()
            except Exception as exc:
                failures.append((name, exc))
        subscription, self._results_subscription = self._results_subscription, None
        if subscription is not None:
            subscription.dispose()
        if not failures:
            return
        (first_name, error), *others = failures
        if not isinstance(error, asyncio.CancelledError):
            what = "drained its task queue and bus" if first_name == "drain" else "closed"
            where = "" if first_name == "drain" else f" its {first_name}"
            error.add_note(f"raised while the flow manager {what}{where}")
        for name, other in others:
            error.add_note(f"closing the flow manager's {name} also failed: {other!r}")
            _log.error("flow manager shutdown: closing %s failed too", name, exc_info=other)
        raise error

    async def aclose(self) -> None:
        """:meth:`shutdown` (draining, no timeout)."""
        await self.shutdown()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down: draining when the block ended normally, not when it raised."""
        await self.shutdown(drain=exc_type is None)

    def __repr__(self) -> str:
        processor = "" if self.video_processor is None else " with a video processor"
        return (
            f"<AsyncFlowManager {self._state.value}{processor}: "
            f"{len(self.task_queue)} queued task(s), {len(self._breakers)} breaker(s)>"
        )


def create_async_flow_manager(
    config: AsyncFlowConfig | None = None,
    *,
    clock: Clock | abc.SchedulerBase | None = None,
    task_workers: int | None = None,
    monitor_interval: float | None = None,
    video_processor_factory: VideoProcessorFactory | None = None,
) -> AsyncFlowManager:
    """The guide's factory: an :class:`AsyncFlowManager` built from ``config``.

    Example:
        >>> config = create_async_flow_config(max_concurrent_tasks=50, enable_metrics=True)
        >>> flow_manager = create_async_flow_manager(config)
        >>> await flow_manager.start()
        >>> metrics = await flow_manager.metrics_collector.get_metrics()
        >>> await flow_manager.shutdown()
    """
    return AsyncFlowManager(
        config,
        clock=clock,
        task_workers=task_workers,
        monitor_interval=monitor_interval,
        video_processor_factory=video_processor_factory,
    )
