"""AsyncMetricsCollector: the guide's API, quantiles, cardinality, timing, snapshots,
``ops.measure`` as marble diagrams, and the Prometheus exposition.

Every async test runs on the virtual-time loop: ``await asyncio.sleep(2.5)`` moves the
loop clock (and so the collector's default clock) by exactly 2.5 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import statistics
import time
from fractions import Fraction
from typing import Any

import prometheus_client
import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from reactivex import Observable
from reactivex import operators as rx_ops
from reactivex.testing import TestScheduler

import rxflows
from rxflows import (
    AsyncMetricsCollector,
    ConfigurationError,
    LoopManagerError,
    MetricsSnapshot,
    TaskMetrics,
    create_async_metrics_collector,
)
from rxflows import operators as ops
from rxflows.testing import MarbleContext, marbles

from .support import Recorder, run_virtual

FRAME = 0.001


class Spy(AsyncMetricsCollector):
    """A collector that also keeps every record: (loop time, name, duration, success)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.records: list[tuple[float, str, float, bool]] = []

    def record(self, name: str, duration: float, success: bool) -> None:
        super().record(name, duration, success)
        self.records.append((asyncio.get_running_loop().time(), name, duration, success))


class MarbleSpy(AsyncMetricsCollector):
    """A collector keeping each record as (frame, name, duration in frames, success)."""

    def __init__(self, m: MarbleContext, **options: Any) -> None:
        super().__init__(**options)
        self.m = m
        self.records: list[tuple[int, str, float, bool]] = []

    def record(self, name: str, duration: float, success: bool) -> None:
        super().record(name, duration, success)
        self.records.append((self.m.frame_now(), name, round(duration / FRAME, 6), success))


def nearest_rank(values: list[float], q: Fraction) -> float:
    """The exact nearest-rank quantile: the ceil(q * n)-th smallest value."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def within(estimate: float, exact: float, accuracy: float) -> bool:
    # the sketch's promise, plus a hair for floating point at bucket edges
    return abs(estimate - exact) <= accuracy * exact * (1 + 1e-9) + 1e-9


# --- the guide's "Metrics Collection" example ------------------------------------------

metrics_collector = create_async_metrics_collector()
"""Module-level, as in the guide: created outside any event loop."""


async def process_video(url: str) -> str:
    await asyncio.sleep(1)  # shortened from real work; virtual time
    if "broken" in url:
        raise ValueError(f"cannot decode {url}")
    return f"Processed {url}"


async def monitored_task(url: str = "video.mp4") -> str:
    # The guide's code, verbatim but for the url parameter (to make a failing call).
    start_time = time.time()
    try:
        result = await process_video(url)
        duration = time.time() - start_time
        await metrics_collector.record_task_execution("process_video", duration, True)
        return result
    except Exception:
        duration = time.time() - start_time
        await metrics_collector.record_task_execution("process_video", duration, False)
        raise


async def test_guide_metrics_collection_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    metrics_collector.reset()
    assert await monitored_task() == "Processed video.mp4"
    assert await monitored_task() == "Processed video.mp4"
    with pytest.raises(ValueError, match="cannot decode"):
        await monitored_task("broken.mp4")

    # Get metrics (the guide's lines)
    metrics = await metrics_collector.get_metrics()
    print(
        f"Success rate: {metrics['successful_tasks'] / (metrics['successful_tasks'] + metrics['failed_tasks'])}"  # noqa: E501
    )
    print(f"Average execution time: {metrics['avg_execution_time']}")

    assert metrics["total_tasks"] == 3
    assert metrics["successful_tasks"] == 2
    assert metrics["failed_tasks"] == 1
    # time.time() is the wall clock: the 1 s virtual sleeps do not move it, so each
    # recorded duration is the real time the call took, far below 1 s.
    assert 0.0 <= metrics["avg_execution_time"] < 0.5
    assert metrics["avg_execution_time"] == pytest.approx(metrics["total_execution_time"] / 3)
    out = capsys.readouterr().out
    assert "Success rate: 0.6666666666666666\n" in out
    assert f"Average execution time: {metrics['avg_execution_time']}\n" in out


async def test_guide_example_with_a_controlled_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same code with time.time() stepping through known instants: the recorded
    # durations, and so the average, are then known exactly.
    metrics_collector.reset()
    instants = iter([100.0, 100.25, 200.0, 200.75, 300.0, 302.0])
    monkeypatch.setattr(time, "time", lambda: next(instants))
    await monitored_task()
    await monitored_task()
    with pytest.raises(ValueError, match="cannot decode"):
        await monitored_task("broken.mp4")
    metrics = await metrics_collector.get_metrics()
    assert metrics["avg_execution_time"] == pytest.approx((0.25 + 0.75 + 2.0) / 3)
    assert metrics["tasks"]["process_video"]["max_execution_time"] == 2.0
    assert metrics["tasks"]["process_video"]["min_execution_time"] == 0.25
    assert metrics["failure_rate"] == pytest.approx(1 / 3)


# --- get_metrics and snapshot ----------------------------------------------------------


async def test_empty_collector_reports_zeros_and_no_rates() -> None:
    collector = create_async_metrics_collector()
    metrics = await collector.get_metrics()
    assert metrics["total_tasks"] == 0
    assert metrics["successful_tasks"] == 0
    assert metrics["failed_tasks"] == 0
    assert metrics["avg_execution_time"] == 0.0
    assert metrics["p50_execution_time"] == 0.0
    assert metrics["p99_execution_time"] == 0.0
    assert metrics["max_execution_time"] == 0.0
    assert metrics["throughput"] == 0.0
    assert metrics["success_rate"] is None
    assert metrics["failure_rate"] is None
    assert metrics["tasks"] == {}
    assert metrics["overflowed_records"] == 0


async def test_one_record_makes_the_guides_success_rate_computable() -> None:
    collector = create_async_metrics_collector()
    await collector.record_task_execution("upload", 0.5, False)
    metrics = await collector.get_metrics()
    rate = metrics["successful_tasks"] / (metrics["successful_tasks"] + metrics["failed_tasks"])
    assert rate == 0.0
    assert metrics["avg_execution_time"] == 0.5


async def test_totals_and_per_name_breakdown() -> None:
    collector = create_async_metrics_collector()
    for duration, success in [(1.0, True), (3.0, True), (2.0, False)]:
        await collector.record_task_execution("download", duration, success)
    await collector.record_task_execution("upload", 10.0, True)
    metrics = await collector.get_metrics()

    assert metrics["total_tasks"] == 4
    assert metrics["successful_tasks"] == 3
    assert metrics["failed_tasks"] == 1
    # the mean over every execution, failed ones included
    assert metrics["avg_execution_time"] == pytest.approx(16.0 / 4)
    assert metrics["max_execution_time"] == 10.0
    assert metrics["min_execution_time"] == 1.0
    assert metrics["success_rate"] == 0.75
    assert list(metrics["tasks"]) == ["download", "upload"]

    download = metrics["tasks"]["download"]
    assert download["total_tasks"] == 3
    assert download["failed_tasks"] == 1
    assert download["avg_execution_time"] == pytest.approx(2.0)
    assert download["p50_execution_time"] == pytest.approx(2.0, rel=0.01)
    assert download["max_execution_time"] == 3.0
    assert set(download) == set(metrics) - {"uptime", "taken_at", "overflowed_records", "tasks"}
    assert metrics["tasks"]["upload"]["p99_execution_time"] == 10.0


async def test_metrics_keys_are_identifiers_for_structured_logging() -> None:
    collector = create_async_metrics_collector()
    await collector.record_task_execution("process_video", 1.5, True)
    metrics = await collector.get_metrics()
    logged: list[tuple[str, dict[str, Any]]] = []

    def info(message: str, **fields: Any) -> None:  # a structlog-style logger
        logged.append((message, fields))

    info("Processing metrics", **metrics)
    assert all(key.isidentifier() for key in metrics)
    assert all(key.isidentifier() for key in metrics["tasks"]["process_video"])
    assert logged == [("Processing metrics", metrics)]


async def test_snapshot_is_frozen_and_matches_the_dict() -> None:
    collector = AsyncMetricsCollector()
    collector.record("a", 0.25, True)
    collector.record("b", 0.5, False)
    snapshot = collector.snapshot()
    assert isinstance(snapshot, MetricsSnapshot)
    assert isinstance(snapshot.tasks["a"], TaskMetrics)
    assert snapshot.as_dict() == await collector.get_metrics()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.total_tasks = 7  # type: ignore[misc]  # asserting that it is refused
    with pytest.raises(TypeError):
        snapshot.tasks["c"] = snapshot.tasks["a"]  # type: ignore[index]  # read-only mapping
    # a snapshot does not follow later records
    collector.record("a", 1.0, True)
    assert snapshot.total_tasks == 2
    assert collector.snapshot().total_tasks == 3


async def test_throughput_and_uptime_follow_the_clock() -> None:
    collector = AsyncMetricsCollector()
    await asyncio.sleep(8)
    for _ in range(4):
        collector.record("encode", 1.0, True)
    await asyncio.sleep(2)
    snapshot = collector.snapshot()
    assert snapshot.uptime == pytest.approx(10.0, abs=1e-9)
    assert snapshot.throughput == pytest.approx(0.4)
    assert snapshot.tasks["encode"].throughput == pytest.approx(0.4)
    assert snapshot.taken_at == pytest.approx(asyncio.get_running_loop().time())

    collector.reset()
    assert collector.snapshot().total_tasks == 0
    await asyncio.sleep(5)
    collector.record("encode", 1.0, True)
    assert collector.snapshot().uptime == pytest.approx(5.0, abs=1e-9)
    assert collector.snapshot().throughput == pytest.approx(0.2)


def test_collector_created_outside_a_loop_starts_its_uptime_at_first_use() -> None:
    collector = AsyncMetricsCollector()  # no running loop: no loop clock to read yet

    async def main() -> MetricsSnapshot:
        await asyncio.sleep(100)
        collector.record("a", 0.5, True)
        await asyncio.sleep(4)
        return collector.snapshot()

    snapshot = run_virtual(main)
    assert snapshot.uptime == pytest.approx(4.0, abs=1e-9)
    assert snapshot.throughput == pytest.approx(0.25)


async def test_record_is_synchronous_and_equivalent() -> None:
    a, b = AsyncMetricsCollector(), AsyncMetricsCollector()
    a.record("x", 0.125, True)
    await b.record_task_execution("x", 0.125, True)
    assert a.snapshot().tasks == b.snapshot().tasks


async def test_integer_durations_are_accepted_as_seconds() -> None:
    collector = AsyncMetricsCollector()
    await collector.record_task_execution("x", 2, True)
    assert collector.snapshot().max_execution_time == 2.0
    assert isinstance(collector.snapshot().total_execution_time, float)


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "duration", "success", "message"),
    [
        ("x", -0.5, True, "duration must be a finite number of seconds >= 0, got -0.5"),
        ("x", math.nan, True, "duration must be a finite number of seconds >= 0, got nan"),
        ("x", math.inf, True, "duration must be a finite number of seconds >= 0, got inf"),
        ("x", "1.0", True, "duration must be a finite number of seconds >= 0, got '1.0'"),
        ("x", True, True, "duration must be a finite number of seconds >= 0, got True"),
        ("x", 1.0, 1, r"success must be a bool \(True or False\), got 1"),
        ("x", 1.0, None, r"success must be a bool \(True or False\), got None"),
        ("x", 1.0, "yes", r"success must be a bool \(True or False\), got 'yes'"),
        ("", 1.0, True, "name must be a non-empty str, got ''"),
        (None, 1.0, True, "name must be a non-empty str, got None"),
        (["x"], 1.0, True, r"name must be a non-empty str, got \['x'\]"),
    ],
)
async def test_bad_records_are_refused_and_nothing_is_recorded(
    name: Any, duration: Any, success: Any, message: str
) -> None:
    collector = AsyncMetricsCollector()
    with pytest.raises(ConfigurationError, match=f"^{message}$"):
        await collector.record_task_execution(name, duration, success)
    with pytest.raises(ConfigurationError, match=f"^{message}$"):
        collector.record(name, duration, success)
    snapshot = collector.snapshot()
    assert snapshot.total_tasks == 0
    assert snapshot.tasks == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_task_names": 0}, "max_task_names must be a positive int, got 0"),
        ({"max_task_names": -3}, "max_task_names must be a positive int, got -3"),
        ({"max_task_names": True}, "max_task_names must be a positive int, got True"),
        ({"max_task_names": 2.0}, "max_task_names must be a positive int, got 2.0"),
        ({"quantile_accuracy": 0}, "quantile_accuracy must be a number from 0.001 to 0.5, got 0"),
        (
            {"quantile_accuracy": 0.6},
            "quantile_accuracy must be a number from 0.001 to 0.5, got 0.6",
        ),
        ({"buckets": []}, r"buckets must be .* \(at least one besides \+Inf\), got \[\]"),
        ({"buckets": [0.1, 0.1]}, r"strictly increasing order, got 0.1 in \[0.1, 0.1\]"),
        ({"buckets": [0.5, 0.1]}, r"strictly increasing order, got 0.1 in \[0.5, 0.1\]"),
        ({"buckets": [0, 1]}, r"got 0 in \[0, 1\]"),
        ({"buckets": [1, math.nan]}, r"got nan in \[1, nan\]"),
        ({"buckets": "1,2"}, "buckets must be positive, finite numbers .*, got '1,2'"),
        ({"namespace": ""}, "namespace must be a Prometheus metric name prefix"),
        ({"namespace": "9lives"}, "got '9lives'"),
        ({"namespace": "video-clips"}, "got 'video-clips'"),
    ],
)
def test_bad_collector_options_raise_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        AsyncMetricsCollector(**options)
    assert caught.value.field == next(iter(options))


def test_a_trailing_infinite_bucket_is_dropped() -> None:
    collector = AsyncMetricsCollector(buckets=[0.1, 1, math.inf])
    assert collector.buckets == (0.1, 1.0)


def test_factory_checks_its_config() -> None:
    assert isinstance(
        create_async_metrics_collector(rxflows.create_async_flow_config()), AsyncMetricsCollector
    )
    with pytest.raises(ConfigurationError, match="config must be an AsyncFlowConfig"):
        create_async_metrics_collector({"max_concurrent_tasks": 3})  # type: ignore[arg-type]  # a dict is refused


async def test_bad_time_and_quantile_arguments() -> None:
    collector = AsyncMetricsCollector()
    with pytest.raises(ConfigurationError, match=r"^name must be a non-empty str, got ''$"):
        collector.time("")
    with pytest.raises(ConfigurationError, match=r"^q must be a number from 0 to 1, got 1\.5$"):
        collector.quantile(1.5)
    with pytest.raises(TypeError, match="decorates a coroutine function"):
        collector.time("x")(42)  # type: ignore[arg-type]  # not callable
    for interval in (0, -1, math.inf, "1"):
        with pytest.raises(ConfigurationError, match="interval must be a positive, finite"):
            collector.snapshots(interval)  # type: ignore[arg-type]  # "1" on purpose


# --- quantiles ----------------------------------------------------------------------


async def test_quantiles_of_a_known_distribution() -> None:
    collector = AsyncMetricsCollector()
    for ms in range(1, 1001):  # 1 ms .. 1000 ms, shuffled order does not matter
        collector.record("render", ms / 1000, True)
    snapshot = collector.snapshot()
    assert snapshot.p50_execution_time == pytest.approx(0.5, rel=0.01)
    assert snapshot.p95_execution_time == pytest.approx(0.95, rel=0.01)
    assert snapshot.p99_execution_time == pytest.approx(0.99, rel=0.01)
    assert snapshot.max_execution_time == 1.0
    assert snapshot.min_execution_time == 0.001
    assert collector.quantile(0.25, "render") == pytest.approx(0.25, rel=0.01)
    assert collector.quantile(0.0) == 0.001  # clamped to the exact minimum
    assert collector.quantile(1.0) == 1.0  # and maximum
    assert collector.quantile(0.5, "unknown") == 0.0


async def test_coarser_accuracy_gives_coarser_quantiles() -> None:
    # Values 1.001 .. 1.039 s: with 10 % accuracy they share one bucket, whose value
    # (1.1) is off the median by more than 1 % (but within 10 %); at 1 %, within 1 %.
    fine, coarse = AsyncMetricsCollector(), AsyncMetricsCollector(quantile_accuracy=0.1)
    values = [1 + i / 1000 for i in range(1, 40)]
    for value in values:
        fine.record("x", value, True)
        coarse.record("x", value, True)
    exact = statistics.median_low(values)
    assert within(fine.quantile(0.5), exact, 0.01)
    assert within(coarse.quantile(0.5), exact, 0.1)
    assert abs(coarse.quantile(0.5) - exact) > 0.01 * exact
    assert coarse.quantile_accuracy == 0.1


durations = st.lists(
    st.one_of(
        st.just(0.0),
        st.floats(min_value=1e-6, max_value=1e4, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(values=durations, outcomes=st.randoms(use_true_random=False))
def test_quantiles_are_within_the_documented_accuracy(values: list[float], outcomes: Any) -> None:
    async def main() -> tuple[MetricsSnapshot, list[bool]]:
        collector = AsyncMetricsCollector()
        successes = [outcomes.random() < 0.7 for _ in values]
        for value, success in zip(values, successes, strict=True):
            await collector.record_task_execution("t", value, success)
        return collector.snapshot(), successes

    snapshot, successes = run_virtual(main)
    assert snapshot.total_tasks == len(values)
    assert snapshot.total_tasks == snapshot.successful_tasks + snapshot.failed_tasks
    assert snapshot.successful_tasks == sum(successes)
    assert snapshot.max_execution_time == max(values)
    assert snapshot.min_execution_time == min(values)
    assert snapshot.avg_execution_time == pytest.approx(statistics.fmean(values))
    assert within(snapshot.p50_execution_time, statistics.median_low(values), 0.01)
    assert within(snapshot.p95_execution_time, nearest_rank(values, Fraction(19, 20)), 0.01)
    assert within(snapshot.p99_execution_time, nearest_rank(values, Fraction(99, 100)), 0.01)
    assert snapshot.tasks["t"].p50_execution_time == snapshot.p50_execution_time


@settings(max_examples=30, deadline=None)
@given(groups=st.dictionaries(st.sampled_from("abcd"), durations, min_size=1))
def test_totals_merge_the_per_name_series(groups: dict[str, list[float]]) -> None:
    async def main() -> MetricsSnapshot:
        collector = AsyncMetricsCollector()
        for name, values in groups.items():
            for value in values:
                collector.record(name, value, True)
        return collector.snapshot()

    snapshot = run_virtual(main)
    everything = [value for values in groups.values() for value in values]
    assert snapshot.total_tasks == sum(task.total_tasks for task in snapshot.tasks.values())
    assert within(snapshot.p95_execution_time, nearest_rank(everything, Fraction(19, 20)), 0.01)
    assert snapshot.max_execution_time == max(everything)


async def test_memory_is_bounded_by_the_range_not_the_count() -> None:
    collector = AsyncMetricsCollector()
    for i in range(50_000):
        collector.record("x", 1e-6 * 1.0003**i, True)  # 1 us .. ~3,000 s, all distinct
    sketch = collector._series["x"].sketch
    # one counter per bucket between 1 us and 3,300 s at 1 %: ln(3.3e9) / ln(1.01/0.99)
    assert len(sketch) <= math.ceil(math.log(3.3e9) / math.log(1.01 / 0.99)) + 1
    assert len(collector._series["x"].buckets) == len(collector.buckets) + 1


# --- cardinality ----------------------------------------------------------------------


async def test_names_beyond_the_cap_go_to_other() -> None:
    collector = AsyncMetricsCollector(max_task_names=3)
    for name in ["a", "b", "c", "d", "e", "a", "d"]:
        await collector.record_task_execution(name, 1.0, True)
    snapshot = collector.snapshot()
    assert list(snapshot.tasks) == ["a", "b", "c", "other"]
    assert snapshot.tasks["a"].total_tasks == 2
    assert snapshot.tasks["other"].total_tasks == 3  # d, e, d
    assert snapshot.overflowed_records == 3
    assert snapshot.total_tasks == 7
    assert AsyncMetricsCollector.OVERFLOW_TASK_NAME == "other"


async def test_other_itself_does_not_take_a_name_slot() -> None:
    collector = AsyncMetricsCollector(max_task_names=2)
    for name in ["other", "a", "b", "c"]:
        collector.record(name, 1.0, True)
    snapshot = collector.snapshot()
    assert list(snapshot.tasks) == ["other", "a", "b"]
    assert snapshot.tasks["other"].total_tasks == 2  # the explicit one and c
    assert snapshot.overflowed_records == 1


# --- time() ------------------------------------------------------------------------------


async def test_time_records_a_success_measured_on_the_loop_clock() -> None:
    collector = Spy()
    async with collector.time("transcode") as timer:
        assert timer.name == "transcode"
        await asyncio.sleep(2.5)
    assert [(name, round(duration, 9), ok) for _, name, duration, ok in collector.records] == [
        ("transcode", 2.5, True)
    ]


async def test_time_records_a_failure_and_lets_the_exception_through() -> None:
    collector = Spy()

    async def caption() -> None:
        async with collector.time("caption"):
            await asyncio.sleep(0.75)
            raise KeyError("frame")

    with pytest.raises(KeyError, match="frame"):
        await caption()
    snapshot = collector.snapshot()
    assert snapshot.failed_tasks == 1
    assert snapshot.successful_tasks == 0
    assert snapshot.max_execution_time == pytest.approx(0.75, abs=1e-9)


async def test_a_cancelled_block_is_counted_as_cancelled_not_as_a_failure() -> None:
    collector = Spy()

    async def work() -> None:
        async with collector.time("upload"):
            await asyncio.sleep(60)

    task = asyncio.create_task(work())
    await asyncio.sleep(5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    snapshot = collector.snapshot()
    assert collector.records == []
    assert snapshot.total_tasks == 0
    assert snapshot.failed_tasks == 0
    assert snapshot.cancelled_tasks == 1
    assert snapshot.tasks["upload"].cancelled_tasks == 1


async def test_timeouts_count_as_failures_only_outside_the_timer() -> None:
    collector = AsyncMetricsCollector()
    with pytest.raises(TimeoutError):
        async with collector.time("outside"), asyncio.timeout(3):
            await asyncio.sleep(60)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(3), collector.time("inside"):
            await asyncio.sleep(60)
    tasks = collector.snapshot().tasks
    assert (tasks["outside"].failed_tasks, tasks["outside"].cancelled_tasks) == (1, 0)
    assert tasks["outside"].max_execution_time == pytest.approx(3.0, abs=1e-9)
    assert (tasks["inside"].failed_tasks, tasks["inside"].cancelled_tasks) == (0, 1)


async def test_a_timer_times_one_block_at_a_time() -> None:
    collector = AsyncMetricsCollector()
    timer = collector.time("x")
    async with timer:
        with pytest.raises(RuntimeError, match="already timing a block"):
            async with timer:
                pass
    async with timer:  # reusable once the block is over
        await asyncio.sleep(1)
    assert collector.snapshot().successful_tasks == 2


async def test_time_as_a_decorator_times_concurrent_calls_separately() -> None:
    collector = Spy()

    @collector.time("download")
    async def download(seconds: float) -> str:
        await asyncio.sleep(seconds)
        if seconds > 2:
            raise ConnectionError("reset")
        return f"{seconds}s"

    results = await asyncio.gather(download(1), download(2), download(3), return_exceptions=True)
    assert list(results[:2]) == ["1s", "2s"]
    assert isinstance(results[2], ConnectionError)
    assert download.__name__ == "download"
    assert sorted((round(d, 9), ok) for _, _, d, ok in collector.records) == [
        (1.0, True),
        (2.0, True),
        (3.0, False),
    ]


async def test_time_reads_the_given_clock() -> None:
    class ManualClock:
        def __init__(self) -> None:
            self.t = 1000.0

        def now(self) -> float:
            return self.t

        async def sleep(self, seconds: float) -> None:
            self.t += seconds

    clock = ManualClock()
    collector = AsyncMetricsCollector(clock=clock)
    assert collector.clock is clock
    async with collector.time("x"):
        clock.t += 42.0
        await asyncio.sleep(5)  # the loop clock: not the collector's
    assert collector.snapshot().max_execution_time == 42.0
    assert collector.snapshot().uptime == 42.0


# --- snapshots() -----------------------------------------------------------------------


def summarize(snapshot: MetricsSnapshot) -> tuple[int, float]:
    return snapshot.total_tasks, round(snapshot.uptime / FRAME, 6)


def test_snapshots_tick_on_the_marble_scheduler() -> None:
    with marbles() as m:
        collector = AsyncMetricsCollector(clock=m.scheduler)
        jobs = m.hot("----a--b-----")
        jobs.subscribe(lambda _: collector.record("job", 0.5, True))
        summary = collector.snapshots(0.003).pipe(
            rx_ops.take(3),
            rx_ops.map(summarize),
        )
        m.expect(summary).to_be("---a--b--(c|)", {"a": (0, 3.0), "b": (1, 6.0), "c": (2, 9.0)})


def test_snapshots_take_the_explicit_then_the_subscribe_time_scheduler() -> None:
    # No event loop at all: the ticks can only come from the schedulers given.
    collector = AsyncMetricsCollector()
    explicit, at_subscribe = TestScheduler(), TestScheduler()
    first, second = Recorder(), Recorder()
    collector.snapshots(1.0, scheduler=explicit).subscribe(first, scheduler=at_subscribe)
    collector.snapshots(1.0).subscribe(second, scheduler=at_subscribe)
    explicit.advance_to(3.5)
    assert (len(first.items), len(second.items)) == (3, 0)
    at_subscribe.advance_to(2.5)
    assert (len(first.items), len(second.items)) == (3, 2)
    assert all(isinstance(s, MetricsSnapshot) for s in first.items + second.items)


async def test_snapshots_default_to_the_running_loop() -> None:
    collector = AsyncMetricsCollector()
    recorder = Recorder()
    start = asyncio.get_running_loop().time()
    subscription = collector.snapshots(10).pipe(rx_ops.take(3)).subscribe(recorder)
    collector.record("a", 1.0, True)
    await recorder.finished.wait()
    subscription.dispose()
    assert recorder.completed
    assert [round(t - start, 9) for t in recorder.times] == [10.0, 20.0, 30.0]
    assert [s.total_tasks for s in recorder.items] == [1, 1, 1]
    assert [round(s.uptime, 9) for s in recorder.items] == [10.0, 20.0, 30.0]


def test_snapshots_without_any_scheduler_or_loop_fail_clearly() -> None:
    recorder = Recorder()
    AsyncMetricsCollector().snapshots(1).subscribe(recorder)
    assert isinstance(recorder.error, LoopManagerError)
    assert "snapshots() needs a scheduler" in str(recorder.error)


# --- ops.measure ---------------------------------------------------------------------


def test_measure_per_subscription_records_subscribe_to_completion() -> None:
    with marbles() as m:
        collector = MarbleSpy(m)
        source = m.cold("---a--|")
        m.expect(source.pipe(ops.measure(collector, "fetch"))).to_be("---a--|")
        m.expect(source.pipe(ops.measure(collector, "fetch")), "--^").to_be("-----a--|")
    assert collector.records == [(6, "fetch", 6.0, True), (8, "fetch", 6.0, True)]
    assert collector.snapshot().tasks["fetch"].successful_tasks == 2


def test_measure_per_subscription_records_an_error_as_a_failure() -> None:
    with marbles() as m:
        collector = MarbleSpy(m)
        failing = m.cold("-a#", error=ConnectionError("down"))
        m.expect(failing.pipe(ops.measure(collector, "fetch"))).to_be(
            "-a#", error=ConnectionError("down")
        )
    assert collector.records == [(2, "fetch", 2.0, False)]


def test_measure_per_subscription_counts_an_early_dispose_as_cancelled() -> None:
    with marbles() as m:
        collector = MarbleSpy(m)
        slow = m.cold("-----a|")
        m.expect(slow.pipe(ops.measure(collector, "fetch")), "^--!").to_be("---")
        m.expect_subscriptions(slow.subscriptions).to_be("^--!")
    snapshot = collector.snapshot()
    assert collector.records == []
    assert snapshot.tasks["fetch"].cancelled_tasks == 1
    assert snapshot.total_tasks == 0


def test_measure_per_item_records_the_time_since_the_previous_item() -> None:
    with marbles() as m:
        collector = MarbleSpy(m)
        frames = m.cold("-a---b-c-|")
        m.expect(frames.pipe(ops.measure(collector, "frame", per="item"))).to_be("-a---b-c-|")
    assert collector.records == [
        (1, "frame", 1.0, True),
        (5, "frame", 4.0, True),
        (7, "frame", 2.0, True),
    ]


def test_measure_per_item_records_an_error_since_the_last_item() -> None:
    with marbles() as m:
        collector = MarbleSpy(m)
        frames = m.cold("-a--#")
        m.expect(frames.pipe(ops.measure(collector, "frame", per="item"))).to_be("-a--#")
        m.expect(frames.pipe(ops.measure(collector, "frame", per="item")), "^!").to_be("-")
    assert collector.records == [(1, "frame", 1.0, True), (4, "frame", 3.0, False)]
    assert collector.snapshot().cancelled_tasks == 0  # dispose records nothing per item


def test_measure_records_before_forwarding() -> None:
    with marbles() as m:
        collector = AsyncMetricsCollector()
        seen: list[tuple[str, int]] = []
        source = m.cold("--a|").pipe(ops.measure(collector, "x"))
        counted = reactivex.defer(lambda _: source).pipe(
            rx_ops.do_action(
                on_completed=lambda: seen.append(("C", collector.snapshot().total_tasks))
            )
        )
        m.expect(counted).to_be("--a|")
    assert seen == [("C", 1)]


async def _work(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


def test_measure_per_item_after_a_one_at_a_time_map_async_times_each_call() -> None:
    with marbles() as m:
        collector = MarbleSpy(m)
        pipeline = rxflows.from_iterable([0.003, 0.001, 0.002]).pipe(
            ops.map_async(_work, max_concurrent=1),
            ops.measure(collector, "work", per="item"),
        )
        m.expect(pipeline).to_be("---ab-(c|)", {"a": 0.003, "b": 0.001, "c": 0.002})
    assert [(frame, d) for frame, _, d, _ in collector.records] == [(3, 3.0), (4, 1.0), (6, 2.0)]


def test_measure_passes_demand_through() -> None:
    # Between a demand-aware source and map_async, measure must not ask for
    # everything at once: items then arrive as map_async's single slot frees up.
    with marbles() as m:
        collector = MarbleSpy(m)
        pipeline = rxflows.from_iterable([0.003, 0.001, 0.002]).pipe(
            ops.measure(collector, "pulled", per="item"),
            ops.map_async(_work, max_concurrent=1),
        )
        m.expect(pipeline).to_be("---ab-(c|)", {"a": 0.003, "b": 0.001, "c": 0.002})
    assert [(frame, d) for frame, _, d, _ in collector.records] == [(0, 0.0), (3, 3.0), (4, 1.0)]


def tenfold(x: int) -> int:
    return x * 10


def test_measure_works_with_the_rx_pipe_and_plain_rx_sources() -> None:
    with marbles() as m:
        collector = MarbleSpy(m)
        measured: Observable[int] = reactivex.of(1, 2, 3).pipe(
            ops.measure(collector, "sync", per="item"), rx_ops.map(tenfold)
        )
        m.expect(measured).to_be("(abc|)", {"a": 10, "b": 20, "c": 30})
    assert [(frame, d, ok) for frame, _, d, ok in collector.records] == [
        (0, 0.0, True),
        (0, 0.0, True),
        (0, 0.0, True),
    ]


def test_measure_rejects_bad_arguments() -> None:
    collector = AsyncMetricsCollector()
    with pytest.raises(TypeError, match="measure needs an AsyncMetricsCollector, got dict"):
        ops.measure({}, "x")  # type: ignore[arg-type]  # wrong type on purpose
    with pytest.raises(ConfigurationError, match=r"^name must be a non-empty str, got ''$"):
        ops.measure(collector, "")
    with pytest.raises(
        ConfigurationError, match=r"^per must be 'subscription' or 'item', got 'row'$"
    ):
        ops.measure(collector, "x", per="row")  # type: ignore[arg-type]  # bad literal on purpose


async def test_measure_around_from_async_times_each_call() -> None:
    collector = AsyncMetricsCollector()
    calls = rxflows.from_async(_work, 1.5).pipe(ops.measure(collector, "work"))
    assert await calls == 1.5
    assert await calls == 1.5
    task = collector.snapshot().tasks["work"]
    assert task.successful_tasks == 2
    assert task.avg_execution_time == pytest.approx(1.5, abs=1e-9)


# --- Prometheus exposition ------------------------------------------------------------


def families(collector: AsyncMetricsCollector) -> dict[str, Any]:
    text = collector.exposition().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Any, **labels: str) -> dict[tuple[str, str], float]:
    """{(sample name, le or quantile or outcome): value} for the samples matching labels."""
    found: dict[tuple[str, str], float] = {}
    for sample in family.samples:
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            extra = next(
                (sample.labels[k] for k in ("le", "quantile", "outcome") if k in sample.labels), ""
            )
            found[(sample.name, extra)] = sample.value
    return found


async def test_exposition_parses_back_with_the_right_counts() -> None:
    collector = AsyncMetricsCollector(buckets=[0.1, 1.0, 10.0])
    for duration, success in [(0.05, True), (0.1, True), (0.5, False), (5.0, True), (50.0, True)]:
        collector.record("encode", duration, success)
    collector.record("upload", 2.0, False)
    collector.record_cancelled("upload")

    found = families(collector)
    histogram = samples(found["rxflows_task_duration_seconds"], task="encode")
    assert found["rxflows_task_duration_seconds"].type == "histogram"
    assert histogram == {
        ("rxflows_task_duration_seconds_bucket", "0.1"): 2.0,  # 0.05 and 0.1 (le is <=)
        ("rxflows_task_duration_seconds_bucket", "1.0"): 3.0,
        ("rxflows_task_duration_seconds_bucket", "10.0"): 4.0,
        ("rxflows_task_duration_seconds_bucket", "+Inf"): 5.0,
        ("rxflows_task_duration_seconds_count", ""): 5.0,
        ("rxflows_task_duration_seconds_sum", ""): pytest.approx(55.65),
    }
    upload = samples(found["rxflows_task_duration_seconds"], task="upload")
    assert upload[("rxflows_task_duration_seconds_bucket", "1.0")] == 0.0
    assert upload[("rxflows_task_duration_seconds_bucket", "10.0")] == 1.0
    assert upload[("rxflows_task_duration_seconds_count", "")] == 1.0

    outcomes = found["rxflows_tasks"]
    assert outcomes.type == "counter"
    assert samples(outcomes, task="encode") == {
        ("rxflows_tasks_total", "success"): 4.0,
        ("rxflows_tasks_total", "failure"): 1.0,
        ("rxflows_tasks_total", "cancelled"): 0.0,
    }
    assert samples(outcomes, task="upload")[("rxflows_tasks_total", "cancelled")] == 1.0

    quantiles = samples(found["rxflows_task_duration_quantile_seconds"], task="encode")
    assert quantiles[("rxflows_task_duration_quantile_seconds", "0.5")] == pytest.approx(
        0.5, rel=0.01
    )
    assert quantiles[("rxflows_task_duration_quantile_seconds", "0.99")] == 50.0
    assert samples(found["rxflows_task_names_overflow"]) == {
        ("rxflows_task_names_overflow_total", ""): 0.0
    }


async def test_exposition_counts_overflow_and_escapes_label_values() -> None:
    collector = AsyncMetricsCollector(max_task_names=1, namespace="clips")
    collector.record('say "hi"\n', 1.0, True)
    collector.record("second", 1.0, True)
    found = families(collector)
    assert samples(found["clips_task_names_overflow"]) == {
        ("clips_task_names_overflow_total", ""): 1.0
    }
    labels = {s.labels["task"] for s in found["clips_tasks"].samples}
    assert labels == {'say "hi"\n', "other"}


async def test_empty_exposition_and_the_private_registry() -> None:
    collector = AsyncMetricsCollector()
    found = families(collector)
    assert found["rxflows_task_duration_seconds"].samples == []
    assert collector.registry is collector.registry
    assert collector.registry is not prometheus_client.REGISTRY
    collector.record("x", 1.0, True)
    global_text = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "rxflows_task" not in global_text
    assert AsyncMetricsCollector.CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


async def test_the_registry_describes_its_families_for_clash_detection() -> None:
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("rxflows_tasks", "a clashing counter", registry=registry)
    collector = AsyncMetricsCollector()
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(collector.prometheus_collector)
    other = prometheus_client.CollectorRegistry()
    other.register(collector.prometheus_collector)  # no clash: scraped from there too
    collector.record("x", 1.0, True)
    text = prometheus_client.generate_latest(other).decode()
    assert 'rxflows_tasks_total{outcome="success",task="x"} 1.0' in text
