"""MetricsMonitor and the guide's VideoProcessingMonitor, in virtual time.

The bus is a tiny recording fake of the protocol the monitor needs
(``async def publish(event, data)``); every publish is stamped with the loop time.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest

from rxflows import (
    AsyncMetricsCollector,
    ConfigurationError,
    EventPublisher,
    MetricsMonitor,
    create_async_metrics_collector,
)


class RecordingBus:
    """The event-bus protocol, recording (loop time, event, data) for each publish."""

    def __init__(self, *, delay: float = 0.0, fail: bool = False) -> None:
        self.published: list[tuple[float, str, Any]] = []
        self.delay = delay
        self.fail = fail

    async def publish(self, event: str, data: Any) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("bus down")
        self.published.append((asyncio.get_running_loop().time(), event, data))

    def events(self, since: float) -> list[tuple[float, str]]:
        return [(round(t - since, 9), event) for t, event, _ in self.published]


class RecordingLogger:
    """A structlog-style logger: ``info(message, **fields)``."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def info(self, message: str, **fields: Any) -> None:
        self.lines.append((message, fields))


def monitor_tasks() -> list[asyncio.Task[Any]]:
    return [
        t
        for t in asyncio.all_tasks()
        if t.get_name().startswith("rxflows-metrics-monitor") and not t.done()
    ]


def test_the_fake_bus_satisfies_the_protocol() -> None:
    assert isinstance(RecordingBus(), EventPublisher)


async def test_failures_and_slowness_are_published_in_order_at_each_interval() -> None:
    collector = create_async_metrics_collector()
    bus = RecordingBus()
    monitor = MetricsMonitor(collector, bus, interval=10)
    start = asyncio.get_running_loop().time()
    await monitor.start()
    for _ in range(11):
        await collector.record_task_execution("process_video", 40.0, False)

    await asyncio.sleep(10.5)
    assert bus.events(start) == [(10.0, "high_failure_rate"), (10.0, "slow_processing")]
    _, _, data = bus.published[0]
    assert set(data) == set(await collector.get_metrics())
    assert data["taken_at"] == pytest.approx(start + 10)
    assert data["failed_tasks"] == 11
    assert data["avg_execution_time"] == 40.0

    # level-triggered, as in the guide: published again while the condition holds
    await asyncio.sleep(10)
    assert bus.events(start)[2:] == [(20.0, "high_failure_rate"), (20.0, "slow_processing")]
    await monitor.stop()
    assert monitor_tasks() == []
    assert not monitor.running


async def test_nothing_is_published_at_or_below_the_thresholds() -> None:
    collector = AsyncMetricsCollector()
    bus = RecordingBus()
    for _ in range(10):  # the guide's test is failed_tasks > 10
        collector.record("x", 30.0, False)
    async with MetricsMonitor(collector, bus, interval=5) as monitor:
        await asyncio.sleep(12)
        assert await monitor.check() == ()
    assert bus.published == []


async def test_each_alarm_on_its_own() -> None:
    collector = AsyncMetricsCollector()
    bus = RecordingBus()
    monitor = MetricsMonitor(collector, bus, failure_threshold=2, avg_time_threshold=5)
    collector.record("x", 1.0, False)
    collector.record("x", 1.0, False)
    collector.record("x", 1.0, False)
    assert await monitor.check() == ("high_failure_rate",)
    collector.reset()
    collector.record("x", 6.0, True)
    assert await monitor.check() == ("slow_processing",)
    assert [event for _, event, _ in bus.published] == ["high_failure_rate", "slow_processing"]


async def test_rate_and_p95_thresholds() -> None:
    collector = AsyncMetricsCollector()
    monitor = MetricsMonitor(
        collector,
        RecordingBus(),
        failure_threshold=None,
        failure_rate_threshold=0.25,
        avg_time_threshold=None,
        p95_threshold=2.0,
    )
    for _ in range(97):
        collector.record("x", 0.1, True)
    for _ in range(3):
        collector.record("x", 9.0, False)  # 3 % failures, p95 still fast
    snapshot = collector.snapshot()
    assert monitor.alarms(snapshot) == ()
    for _ in range(40):
        collector.record("x", 9.0, False)  # now 30 % failures and a slow p95
    assert monitor.alarms(collector.snapshot()) == ("high_failure_rate", "slow_processing")


async def test_disabled_thresholds_never_fire() -> None:
    collector = AsyncMetricsCollector()
    monitor = MetricsMonitor(
        collector, RecordingBus(), failure_threshold=None, avg_time_threshold=None
    )
    for _ in range(100):
        collector.record("x", 1000.0, False)
    assert await monitor.check() == ()


async def test_the_logger_gets_the_metrics_as_keywords() -> None:
    collector = AsyncMetricsCollector()
    collector.record("x", 1.0, True)
    logger = RecordingLogger()
    monitor = MetricsMonitor(collector, RecordingBus(), logger=logger)
    await monitor.check()
    assert [message for message, _ in logger.lines] == ["Processing metrics"]
    fields = logger.lines[0][1]
    assert fields == collector.snapshot().as_dict() | {
        "uptime": fields["uptime"],
        "taken_at": fields["taken_at"],
        "throughput": fields["throughput"],
        "tasks": {"x": fields["tasks"]["x"]},
    }
    assert fields["successful_tasks"] == 1
    assert fields["tasks"]["x"]["avg_execution_time"] == 1.0


async def test_start_and_stop_are_idempotent_and_leave_no_task() -> None:
    monitor = MetricsMonitor(AsyncMetricsCollector(), RecordingBus())
    await monitor.stop()  # never started: nothing to do
    await monitor.start()
    await monitor.start()
    assert len(monitor_tasks()) == 1
    assert monitor.running
    await monitor.stop()
    await monitor.stop()
    assert monitor_tasks() == []
    await monitor.start()  # can start again after a stop
    assert monitor.running
    await monitor.stop()
    assert monitor_tasks() == []


async def test_stop_cancels_a_check_waiting_on_the_bus() -> None:
    collector = AsyncMetricsCollector()
    for _ in range(20):
        collector.record("x", 1.0, False)
    bus = RecordingBus(delay=100)
    monitor = MetricsMonitor(collector, bus, interval=1)
    await monitor.start()
    await asyncio.sleep(5)  # the first check is waiting in publish
    await monitor.stop()
    assert bus.published == []
    assert monitor_tasks() == []


async def test_a_failing_bus_is_logged_and_the_checks_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector = AsyncMetricsCollector()
    for _ in range(20):
        collector.record("x", 1.0, False)
    bus = RecordingBus(fail=True)
    with caplog.at_level(logging.ERROR, logger="rxflows.metrics"):
        async with MetricsMonitor(collector, bus, interval=1):
            await asyncio.sleep(3.5)
    failures = [r for r in caplog.records if "the check failed" in r.getMessage()]
    assert len(failures) == 3
    assert all(isinstance(r.exc_info and r.exc_info[1], ConnectionError) for r in failures)


async def test_a_handler_may_stop_the_monitor() -> None:
    collector = AsyncMetricsCollector()
    for _ in range(20):
        collector.record("x", 1.0, False)

    class StoppingBus(RecordingBus):
        async def publish(self, event: str, data: Any) -> None:
            await super().publish(event, data)
            await monitor.stop()

    bus = StoppingBus()
    monitor = MetricsMonitor(collector, bus, interval=1)
    await monitor.start()
    await asyncio.sleep(10)
    assert [event for _, event, _ in bus.published] == ["high_failure_rate"]
    assert not monitor.running
    assert monitor_tasks() == []


async def test_the_monitor_waits_on_the_given_clock() -> None:
    class FastClock:
        """A clock on which every wait takes a tenth of the loop time."""

        def now(self) -> float:
            return asyncio.get_running_loop().time() * 10

        async def sleep(self, seconds: float) -> None:
            await asyncio.sleep(seconds / 10)

    collector = AsyncMetricsCollector()
    for _ in range(20):
        collector.record("x", 1.0, False)
    bus = RecordingBus()
    start = asyncio.get_running_loop().time()
    async with MetricsMonitor(collector, bus, interval=10, clock=FastClock()):
        await asyncio.sleep(2.5)
    assert [t for t, _ in bus.events(start)] == [1.0, 2.0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interval": 0}, "interval must be a positive, finite number of seconds, got 0"),
        ({"interval": -1}, "interval must be a positive, finite number of seconds, got -1"),
        ({"interval": math.nan}, "interval must be a positive, finite number of seconds, got nan"),
        ({"failure_threshold": 0}, "failure_threshold must be a positive int or None, got 0"),
        ({"failure_threshold": 2.5}, "failure_threshold must be a positive int or None, got 2.5"),
        ({"failure_threshold": True}, "failure_threshold must be a positive int or None, got True"),
        ({"failure_rate_threshold": 0}, r"failure_rate_threshold must be a fraction in \(0, 1\]"),
        ({"failure_rate_threshold": 1.5}, r"or None, got 1.5"),
        ({"avg_time_threshold": 0}, "avg_time_threshold must be a positive, finite number of "),
        ({"avg_time_threshold": -30}, "got -30"),
        ({"p95_threshold": 0.0}, "p95_threshold must be a positive, finite number of seconds or "),
    ],
)
def test_bad_thresholds_raise_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        MetricsMonitor(AsyncMetricsCollector(), RecordingBus(), **options)
    assert caught.value.field == next(iter(options))


def test_bad_collaborators_raise_type_errors() -> None:
    with pytest.raises(TypeError, match="needs an AsyncMetricsCollector, got dict"):
        MetricsMonitor({}, RecordingBus())  # type: ignore[arg-type]  # wrong type on purpose
    with pytest.raises(TypeError, match=r"bus must have an async publish\(event, data\)"):
        MetricsMonitor(AsyncMetricsCollector(), object())  # type: ignore[arg-type]  # no publish
    with pytest.raises(TypeError, match="logger must have an info"):
        MetricsMonitor(AsyncMetricsCollector(), RecordingBus(), logger=object())  # type: ignore[arg-type]  # no info


# --- the guide's VideoProcessingMonitor, as written (with rxflows) ----------------------

logger = RecordingLogger()
"""The guide's module-level structlog logger."""


class VideoProcessingMonitor:
    # The guide's class as written; only the type annotations are added (mypy --strict).
    def __init__(self, metrics_collector: AsyncMetricsCollector, event_bus: EventPublisher) -> None:
        self.metrics_collector = metrics_collector
        self.event_bus = event_bus
        self.monitoring_task: asyncio.Task[None] | None = None

    async def start_monitoring(self) -> None:
        self.monitoring_task = asyncio.create_task(self._monitor_loop())

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(10)  # Monitor every 10 seconds

            metrics = await self.metrics_collector.get_metrics()

            # Check for issues
            if metrics["failed_tasks"] > 10:
                await self.event_bus.publish("high_failure_rate", metrics)

            if metrics["avg_execution_time"] > 30:
                await self.event_bus.publish("slow_processing", metrics)

            # Log metrics
            logger.info("Processing metrics", **metrics)

    async def stop_monitoring(self) -> None:
        if self.monitoring_task:
            self.monitoring_task.cancel()


async def test_the_guides_video_processing_monitor_works_with_our_collector() -> None:
    logger.lines.clear()
    metrics_collector = create_async_metrics_collector()
    bus = RecordingBus()
    monitor = VideoProcessingMonitor(metrics_collector, bus)
    start = asyncio.get_running_loop().time()
    await monitor.start_monitoring()

    await metrics_collector.record_task_execution("process_video", 12.0, True)
    await asyncio.sleep(10.5)
    assert bus.published == []  # one quick success: nothing to report
    for _ in range(11):
        await metrics_collector.record_task_execution("process_video", 45.0, False)
    await asyncio.sleep(10)
    await monitor.stop_monitoring()

    assert bus.events(start) == [(20.0, "high_failure_rate"), (20.0, "slow_processing")]
    assert bus.published[0][2]["failed_tasks"] == 11
    assert bus.published[1][2]["avg_execution_time"] == pytest.approx((12 + 11 * 45) / 12)
    assert [message for message, _ in logger.lines] == ["Processing metrics"] * 2
    assert logger.lines[0][1]["total_tasks"] == 1
    assert logger.lines[1][1]["tasks"]["process_video"]["failed_tasks"] == 11


async def test_our_monitor_publishes_what_the_guides_monitor_publishes() -> None:
    logger.lines.clear()
    collector = create_async_metrics_collector()
    theirs, ours = RecordingBus(), RecordingBus()
    guide_monitor = VideoProcessingMonitor(collector, theirs)
    await guide_monitor.start_monitoring()
    async with MetricsMonitor(collector, ours, interval=10):
        for step in range(6):
            for _ in range(step * 3):
                collector.record("encode", 10.0 * step, step % 2 == 0)
            await asyncio.sleep(10)
        await asyncio.sleep(0.5)
    await guide_monitor.stop_monitoring()
    assert theirs.events(0) == ours.events(0)
    assert [event for _, event in ours.events(0)].count("slow_processing") > 0


# --- with rxflows' own event bus -----------------------------------------------------------


async def test_with_the_real_event_bus() -> None:
    from rxflows._events import AsyncEventBus, create_async_event_bus

    collector = create_async_metrics_collector()
    loop = asyncio.get_running_loop()
    start = loop.time()
    received: list[tuple[float, str, int]] = []

    async def on_alarm(event: str, data: dict[str, Any]) -> None:
        received.append((round(loop.time() - start, 9), event, data["failed_tasks"]))

    async with create_async_event_bus() as bus:
        assert isinstance(bus, AsyncEventBus)
        assert isinstance(bus, EventPublisher)
        await bus.subscribe("high_failure_rate", on_alarm)
        await bus.subscribe("slow_processing", on_alarm)
        for _ in range(11):
            await collector.record_task_execution("process_video", 40.0, False)
        async with MetricsMonitor(collector, bus, interval=10):
            await asyncio.sleep(10.5)
        await bus.drain()
    assert received == [(10.0, "high_failure_rate", 11), (10.0, "slow_processing", 11)]
