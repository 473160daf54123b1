"""AsyncFlowManager: components from the config, lifecycle, drain, reverse-order close."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rxflows import (
    AsyncCache,
    AsyncEventBus,
    AsyncEventLoopManager,
    AsyncFlowManager,
    AsyncMetricsCollector,
    AsyncTask,
    AsyncWorkflowEngine,
    BusState,
    CircuitBreaker,
    CircuitState,
    ClosedResourceError,
    ConfigurationError,
    HTTPConnectionPool,
    ManagerState,
    PoolState,
    PriorityTaskQueue,
    TaskQueueState,
    TaskResult,
    TaskStatus,
    create_async_flow_config,
    create_async_flow_manager,
)
from rxflows._manager import _default_video_processor_factory
from rxflows.video import AsyncVideoProcessor


def now() -> float:
    return asyncio.get_running_loop().time()


def state(manager: AsyncFlowManager) -> ManagerState:
    """Read the state through a call, so mypy does not narrow it between two reads."""
    return manager.state


def breaker_state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


class FakeProcessor:
    """Stands in for the video processor: records start and close."""

    def __init__(self, manager: AsyncFlowManager, log: list[str]) -> None:
        self.manager = manager
        self.log = log

    async def start(self) -> None:
        self.log.append("start")

    async def aclose(self) -> None:
        self.log.append("aclose")


# -- construction -------------------------------------------------------------------------


async def test_components_are_built_from_the_config() -> None:
    config = create_async_flow_config(
        cache_max_size=7,
        cache_ttl=12.0,
        task_queue_maxsize=3,
        max_concurrent_tasks=4,
        max_concurrent_connections=5,
    )
    manager = create_async_flow_manager(config)
    assert manager.config is config
    assert state(manager) is ManagerState.CREATED
    assert isinstance(manager.loop_manager, AsyncEventLoopManager)
    assert manager.loop_manager.config is config
    assert isinstance(manager.event_bus, AsyncEventBus)
    assert manager.event_bus.buffer_size == config.event_bus_buffer_size
    assert isinstance(manager.metrics_collector, AsyncMetricsCollector)
    assert isinstance(manager.cache, AsyncCache)
    assert (manager.cache.max_size, manager.cache.ttl) == (7, 12.0)
    assert isinstance(manager.http_pool, HTTPConnectionPool)
    assert manager.http_pool.base_url is None
    assert manager.http_pool.state is PoolState.OPEN
    assert isinstance(manager.task_queue, PriorityTaskQueue)
    assert manager.task_queue.maxsize == 3
    assert isinstance(manager.workflow_engine, AsyncWorkflowEngine)
    assert manager.workflow_engine.event_bus is manager.event_bus
    assert manager.workflow_engine.max_concurrent == 4
    assert isinstance(manager.video_processor, AsyncVideoProcessor)  # the default one
    assert manager.video_processor.http_pool is manager.http_pool
    assert manager.video_processor.event_bus is manager.event_bus
    assert manager.monitor is None
    assert list(manager.components()) == [
        "loop_manager",
        "event_bus",
        "metrics_collector",
        "cache",
        "http_pool",
        "task_queue",
        "workflow_engine",
        "video_processor",
    ]
    await manager.shutdown()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"task_workers": 0}, "task_workers must be a positive int or None"),
        ({"task_workers": True}, "task_workers must be a positive int or None"),
        ({"monitor_interval": 0}, "monitor_interval must be a positive, finite number"),
        ({"monitor_interval": float("inf")}, "monitor_interval must be a positive, finite"),
    ],
)
def test_bad_options_raise_with_name_and_value(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        create_async_flow_manager(**options)
    assert info.value.field == next(iter(options))


def test_monitor_needs_metrics() -> None:
    config = create_async_flow_config(enable_metrics=False)
    with pytest.raises(ConfigurationError, match=r"needs config\.enable_metrics=True"):
        create_async_flow_manager(config, monitor_interval=5)


def test_config_must_be_a_config() -> None:
    with pytest.raises(ConfigurationError, match="config must be an AsyncFlowConfig"):
        AsyncFlowManager({"max_concurrent_tasks": 3})  # type: ignore[arg-type]  # the error tested


def test_factory_must_be_callable() -> None:
    with pytest.raises(TypeError, match="video_processor_factory must be a callable"):
        create_async_flow_manager(video_processor_factory="nope")  # type: ignore[arg-type]  # tested


async def test_shutdown_timeout_is_checked() -> None:
    manager = create_async_flow_manager()
    with pytest.raises(ConfigurationError, match="timeout must be a positive, finite") as info:
        await manager.shutdown(timeout=-1)
    assert info.value.field == "timeout"
    assert state(manager) is ManagerState.CREATED
    await manager.shutdown()


# -- breakers -------------------------------------------------------------------------------


async def test_breaker_registry_builds_one_breaker_per_name_from_the_config() -> None:
    config = create_async_flow_config(
        circuit_breaker_failure_threshold=2, circuit_breaker_timeout=10.0
    )
    manager = create_async_flow_manager(config)
    uploads = manager.breaker("uploads")
    assert isinstance(uploads, CircuitBreaker)
    assert manager.breaker("uploads") is uploads
    assert manager.breaker("downloads") is not uploads
    assert manager.breakers == {"uploads": uploads, "downloads": manager.breaker("downloads")}

    async def fail() -> None:
        raise OSError("down")

    for _ in range(2):
        with pytest.raises(OSError, match="down"):
            await uploads.call(fail)
    assert breaker_state(uploads) is CircuitState.OPEN  # the config's threshold of 2
    await asyncio.sleep(10)
    assert (
        breaker_state(uploads) is CircuitState.HALF_OPEN
    )  # the config's timeout, on the loop clock
    with pytest.raises(ConfigurationError, match="non-empty str"):
        manager.breaker("")
    await manager.shutdown()


async def test_breakers_off_in_the_config() -> None:
    manager = create_async_flow_manager(create_async_flow_config(enable_circuit_breaker=False))
    with pytest.raises(ConfigurationError, match=r"breaker\('x'\): circuit breakers are off"):
        manager.breaker("x")
    await manager.shutdown()


# -- lifecycle ----------------------------------------------------------------------------


async def test_start_and_shutdown_are_idempotent() -> None:
    manager = create_async_flow_manager(task_workers=2)
    await manager.start()
    assert state(manager) is ManagerState.RUNNING
    await manager.start()  # a second queue.start() would raise QueueBusyError
    assert state(manager) is ManagerState.RUNNING
    await manager.shutdown()
    assert state(manager) is ManagerState.CLOSED
    assert manager.closed
    await manager.shutdown()
    await manager.aclose()
    assert state(manager) is ManagerState.CLOSED
    assert manager.task_queue.state is TaskQueueState.CLOSED
    assert manager.event_bus.state is BusState.CLOSED
    assert manager.http_pool.state is PoolState.CLOSED


async def test_start_after_shutdown_raises() -> None:
    manager = create_async_flow_manager()
    await manager.shutdown()
    with pytest.raises(ClosedResourceError, match=r"start\(\): the flow manager is closed"):
        await manager.start()
    with pytest.raises(ClosedResourceError, match="flow manager is closed"):
        manager.attach("extra", FakeProcessor(manager, []))


async def test_concurrent_shutdowns_wait_for_the_first() -> None:
    manager = create_async_flow_manager(task_workers=1)
    await manager.start()

    async def job() -> str:
        await asyncio.sleep(3)
        return "done"

    await manager.task_queue.put(AsyncTask(job))
    start = now()
    first = asyncio.create_task(manager.shutdown())
    await asyncio.sleep(0)
    assert state(manager) is ManagerState.SHUTTING_DOWN
    await manager.shutdown()  # waits for the first one's drain
    assert now() - start == 3.0
    assert state(manager) is ManagerState.CLOSED
    await first


async def test_guide_advanced_setup_start_metrics_shutdown() -> None:
    config = create_async_flow_config(
        max_concurrent_tasks=50, max_concurrent_connections=20, enable_metrics=True
    )
    flow_manager = create_async_flow_manager(config)
    await flow_manager.start()

    async def process(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    for seconds in (1.0, 3.0):
        await flow_manager.task_queue.put(AsyncTask(process, args=(seconds,), name="process"))
    await asyncio.sleep(3.5)
    metrics = await flow_manager.metrics_collector.get_metrics()
    assert metrics["total_tasks"] == 2
    assert metrics["successful_tasks"] == 2
    assert metrics["avg_execution_time"] == pytest.approx(2.0)
    assert metrics["tasks"]["process"]["total_tasks"] == 2
    await flow_manager.shutdown()
    assert flow_manager.state is ManagerState.CLOSED


async def test_metrics_off_records_nothing() -> None:
    manager = create_async_flow_manager(create_async_flow_config(enable_metrics=False))
    await manager.start()

    async def job() -> None:
        await asyncio.sleep(1)

    await manager.task_queue.put(AsyncTask(job))
    await manager.shutdown()
    assert (await manager.metrics_collector.get_metrics())["total_tasks"] == 0


async def test_failed_and_cancelled_tasks_are_counted() -> None:
    manager = create_async_flow_manager(task_workers=1)
    await manager.start()

    async def boom() -> None:
        await asyncio.sleep(1)
        raise ValueError("bad video")

    async def forever() -> None:
        await asyncio.sleep(1000)

    await manager.task_queue.put(AsyncTask(boom, name="boom"))
    await manager.task_queue.put(AsyncTask(forever, name="forever"))
    await asyncio.sleep(2)
    await manager.shutdown(timeout=5)
    snapshot = manager.metrics_collector.snapshot()
    assert snapshot.tasks["boom"].failed_tasks == 1
    assert snapshot.tasks["forever"].cancelled_tasks == 1


# -- draining -------------------------------------------------------------------------------


async def test_tasks_put_before_shutdown_run_to_completion() -> None:
    manager = create_async_flow_manager(task_workers=2)
    await manager.start()
    records: list[TaskResult] = []
    manager.task_queue.results.subscribe(records.append)

    async def job(i: int) -> int:
        await asyncio.sleep(1)
        return i

    for i in range(5):
        await manager.task_queue.put(AsyncTask(job, args=(i,)))
    start = now()
    await manager.shutdown()
    assert now() - start == 3.0  # 5 one-second tasks on 2 workers
    assert sorted(r.result for r in records) == [0, 1, 2, 3, 4]
    assert all(r.status is TaskStatus.SUCCEEDED for r in records)


async def test_events_published_before_shutdown_are_delivered() -> None:
    manager = create_async_flow_manager()
    await manager.start()
    seen: list[tuple[str, float]] = []

    async def handler(data: str) -> None:
        await asyncio.sleep(1)
        seen.append((data, now()))

    await manager.event_bus.subscribe("video_processed", handler)
    start = now()
    for name in ("a", "b", "c"):
        await manager.event_bus.publish("video_processed", name)
    await manager.shutdown()
    assert seen == [("a", start + 1), ("b", start + 2), ("c", start + 3)]
    assert manager.event_bus.state is BusState.CLOSED


async def test_events_published_by_draining_tasks_are_delivered() -> None:
    manager = create_async_flow_manager(task_workers=1)
    await manager.start()
    seen: list[str] = []
    await manager.event_bus.subscribe("done", seen.append)

    async def job(name: str) -> None:
        await asyncio.sleep(2)
        await manager.event_bus.publish("done", name)

    await manager.task_queue.put(AsyncTask(job, args=("x",)))
    await manager.task_queue.put(AsyncTask(job, args=("y",)))
    await manager.shutdown()
    assert seen == ["x", "y"]


async def test_shutdown_timeout_cuts_the_drain_short() -> None:
    manager = create_async_flow_manager(task_workers=1)
    await manager.start()
    records: list[TaskResult] = []
    manager.task_queue.results.subscribe(records.append)

    async def slow() -> None:
        await asyncio.sleep(100)

    await manager.task_queue.put(AsyncTask(slow, name="running"))
    await manager.task_queue.put(AsyncTask(slow, name="queued"))
    await asyncio.sleep(0)
    start = now()
    await manager.shutdown(timeout=5)
    assert now() - start == 5.0
    assert state(manager) is ManagerState.CLOSED
    assert {r.name: r.status for r in records} == {
        "running": TaskStatus.CANCELLED,
        "queued": TaskStatus.CANCELLED,
    }


async def test_a_manager_never_started_withdraws_queued_tasks() -> None:
    manager = create_async_flow_manager()
    ran: list[int] = []

    async def job() -> None:
        ran.append(1)

    await manager.task_queue.put(AsyncTask(job))
    await manager.shutdown()  # no workers: must not wait for them
    assert ran == []
    assert manager.task_queue.state is TaskQueueState.CLOSED


async def test_async_with_starts_and_drains() -> None:
    done: list[int] = []

    async def job() -> None:
        await asyncio.sleep(1)
        done.append(1)

    async with create_async_flow_manager() as manager:
        assert state(manager) is ManagerState.RUNNING
        await manager.task_queue.put(AsyncTask(job))
    assert done == [1]
    assert state(manager) is ManagerState.CLOSED


async def test_async_with_does_not_drain_when_the_block_raised() -> None:
    done: list[int] = []

    async def job() -> None:
        await asyncio.sleep(1)
        done.append(1)

    async def use(manager: AsyncFlowManager) -> None:
        async with manager:
            await manager.task_queue.put(AsyncTask(job))
            raise KeyError("user error")

    start = now()
    manager = create_async_flow_manager()
    with pytest.raises(KeyError, match="user error"):
        await use(manager)
    assert done == []
    assert now() == start
    assert state(manager) is ManagerState.CLOSED


# -- closing -----------------------------------------------------------------------------


def record_close(
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    method: str,
    order: list[str],
    name: str,
    error: Exception | None = None,
) -> None:
    original = getattr(target, method)

    async def closing(*args: Any, **kwargs: Any) -> Any:
        order.append(name)
        result = await original(*args, **kwargs)
        if error is not None:
            raise error
        return result

    monkeypatch.setattr(target, method, closing)


def patch_all(
    monkeypatch: pytest.MonkeyPatch,
    manager: AsyncFlowManager,
    order: list[str],
    errors: dict[str, Exception] | None = None,
) -> None:
    errors = errors or {}
    methods = {
        "monitor": "stop",
        "workflow_engine": "aclose",
        "task_queue": "aclose",
        "http_pool": "close",
        "cache": "clear",
        "event_bus": "aclose",
    }
    for name, component in manager.components().items():
        method = methods.get(name, "aclose")
        if name in ("loop_manager", "metrics_collector"):
            continue  # nothing to close
        record_close(monkeypatch, component, method, order, name, errors.get(name))


async def test_components_close_in_reverse_order_of_creation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    manager = create_async_flow_manager(
        monitor_interval=10, video_processor_factory=lambda m: FakeProcessor(m, log)
    )
    extra = manager.attach("extra", FakeProcessor(manager, []))
    order: list[str] = []
    patch_all(monkeypatch, manager, order)
    await manager.start()
    await manager.shutdown()
    created = [n for n in manager.components() if n not in ("loop_manager", "metrics_collector")]
    assert created == [
        "event_bus",
        "cache",
        "http_pool",
        "task_queue",
        "workflow_engine",
        "monitor",
        "video_processor",
        "extra",
    ]
    assert order == created[::-1]
    assert manager.components()["extra"] is extra
    assert manager.monitor is not None
    assert not manager.monitor.running


async def test_a_failing_close_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    manager = create_async_flow_manager()
    order: list[str] = []
    boom = RuntimeError("queue boom")
    patch_all(
        monkeypatch,
        manager,
        order,
        {"task_queue": boom, "http_pool": ValueError("pool boom")},
    )
    await manager.start()
    with pytest.raises(RuntimeError, match="queue boom") as info:
        await manager.shutdown()
    assert info.value is boom
    assert info.value.__notes__ == [
        "raised while the flow manager closed its task_queue",
        "closing the flow manager's http_pool also failed: ValueError('pool boom')",
    ]
    assert order == [
        "video_processor",
        "workflow_engine",
        "task_queue",
        "http_pool",
        "cache",
        "event_bus",
    ]
    assert state(manager) is ManagerState.CLOSED
    assert manager.http_pool.state is PoolState.CLOSED
    assert manager.event_bus.state is BusState.CLOSED
    await manager.shutdown()  # closed: nothing raised again


async def test_no_session_left_open() -> None:
    manager = create_async_flow_manager()
    await manager.start()
    async with manager.http_pool.get_connection() as session:
        was_open = not session.closed
    await manager.shutdown()
    assert was_open
    assert session.closed
    assert manager.http_pool.state is PoolState.CLOSED


# -- monitor and video processor hook -------------------------------------------------------


async def test_monitor_publishes_alarms_on_the_bus() -> None:
    manager = create_async_flow_manager(monitor_interval=10)
    seen: list[float] = []
    await manager.event_bus.subscribe("slow_processing", lambda data: seen.append(now()))
    start = now()
    await manager.start()
    assert manager.monitor is not None
    assert manager.monitor.running

    async def slow() -> None:
        await asyncio.sleep(35)  # over the monitor's default 30 s average

    await manager.task_queue.put(AsyncTask(slow))
    await asyncio.sleep(45)
    assert seen == [start + 40]
    await manager.shutdown()
    assert not manager.monitor.running


async def test_video_processor_factory_is_plugged_in() -> None:
    log: list[str] = []
    made: list[FakeProcessor] = []

    def factory(manager: AsyncFlowManager) -> FakeProcessor:
        made.append(FakeProcessor(manager, log))
        return made[-1]

    manager = create_async_flow_manager(video_processor_factory=factory)
    assert manager.video_processor is made[0]
    assert made[0].manager is manager
    await manager.start()
    await manager.start()
    assert log == ["start"]
    await manager.shutdown()
    assert log == ["start", "aclose"]


async def test_attach_checks_its_arguments() -> None:
    manager = create_async_flow_manager()
    with pytest.raises(ConfigurationError, match="'cache' is already taken"):
        manager.attach("cache", FakeProcessor(manager, []))
    with pytest.raises(TypeError, match=r"needs a resource with an async aclose\(\)"):
        manager.attach("thing", object())
    with pytest.raises(ConfigurationError, match="non-empty str"):
        manager.attach("", FakeProcessor(manager, []))
    await manager.shutdown()


async def test_a_failing_start_closes_what_started() -> None:
    class Broken(FakeProcessor):
        async def start(self) -> None:
            raise OSError("no ffmpeg")

    log: list[str] = []
    manager = create_async_flow_manager(video_processor_factory=lambda m: Broken(m, log))
    with pytest.raises(OSError, match="no ffmpeg"):
        await manager.start()
    assert state(manager) is ManagerState.CLOSED
    assert log == ["aclose"]
    assert manager.task_queue.state is TaskQueueState.CLOSED
    assert manager.http_pool.state is PoolState.CLOSED
    with pytest.raises(ClosedResourceError):
        await manager.start()


def test_repr() -> None:
    manager = create_async_flow_manager(video_processor_factory=lambda m: None)
    assert repr(manager) == "<AsyncFlowManager created: 0 queued task(s), 0 breaker(s)>"
    assert "created with a video processor:" in repr(create_async_flow_manager())


async def test_a_cancelled_shutdown_still_closes_everything() -> None:
    manager = create_async_flow_manager(task_workers=1)
    await manager.start()
    records: list[TaskResult] = []
    manager.task_queue.results.subscribe(records.append)

    async def slow() -> None:
        await asyncio.sleep(100)

    await manager.task_queue.put(AsyncTask(slow, name="slow"))
    shutting = asyncio.create_task(manager.shutdown())
    await asyncio.sleep(5)
    shutting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await shutting
    assert state(manager) is ManagerState.CLOSED
    assert [(r.name, r.status) for r in records] == [("slow", TaskStatus.CANCELLED)]
    assert manager.event_bus.state is BusState.CLOSED
    assert manager.http_pool.state is PoolState.CLOSED


@pytest.mark.real_time
async def test_complete_video_processing_pipeline(tmp_path: Path) -> None:
    """The guide's "Complete Video Processing Pipeline", on real videos."""
    talk = Path(__file__).parent / "data" / "talking.mp4"
    bad = tmp_path / "video2.mp4"
    bad.write_text("not a video")
    config = create_async_flow_config(
        max_concurrent_tasks=50, max_concurrent_connections=20, enable_metrics=True
    )
    flow_manager = create_async_flow_manager(
        config,
        video_processor_factory=lambda m: _default_video_processor_factory(
            m, output_dir=tmp_path / "clips", clip_count=1, clip_seconds=(3, 5)
        ),
    )
    seen: list[str] = []
    try:
        await flow_manager.start()
        for topic in ("video_processed", "video_failed"):
            await flow_manager.event_bus.subscribe(topic, lambda e, d: seen.append(e))
        video_urls = [talk, bad]
        results = await flow_manager.video_processor.process_video_batch(video_urls)
        metrics = await flow_manager.metrics_collector.get_metrics()
    finally:
        await flow_manager.shutdown()
    assert metrics is not None
    assert [r.status for r in results] == ["completed", "failed"]
    assert results[0].clips[0].path.exists()
    assert results[1].stage == "probe"
    assert sorted(seen) == ["video_failed", "video_processed"]  # on the manager's bus
    assert flow_manager.video_processor.closed
