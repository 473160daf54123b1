"""``metrics``: what recording a task execution costs.

What it measures, on a fresh default asyncio loop per run, each time with a fresh
``AsyncMetricsCollector()`` (default buckets, 1 % quantiles):

* 100,000 sequential calls of a trivial coroutine function
  (``async def fn(): return 1``), bare (the **baseline**), then followed by
  ``await collector.record_task_execution("fn", 0.001, True)`` (the guide's API),
  by the synchronous ``collector.record(...)``, and wrapped in
  ``async with collector.time("fn"):`` (two clock reads and a record);
* references: the guide's pattern (``time.time()`` around the call, then
  ``record_task_execution``), and ``prometheus_client``'s own
  ``Histogram(..., ["task"]).labels("fn").observe(0.001)`` after the call (what a
  Prometheus user would write instead; it keeps no quantiles);
* ``ops.measure`` per subscription: 20,000 subscriptions to
  ``rxflows.from_iterable([1]).pipe(ops.measure(collector, "sub"))`` against the
  same subscriptions without the operator (the fair baseline for an operator:
  same source, same observer);
* ``ops.measure(per="item")``: one subscription to ``from_iterable(range(100,000))``
  measured per item, against the same stream unmeasured.

Every run checks its result (the sum of ``fn``'s results, the number of records).
There is no target: the figures track the cost per record (``us/call``: the median
run time over the number of calls; the overhead of recording is a row's ``us/call``
minus its baseline's).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import prometheus_client
from reactivex import abc

import rxflows
from rxflows import AsyncMetricsCollector
from rxflows import operators as ops

from ._harness import (
    Benchmark,
    Progress,
    Report,
    RowSpec,
    Sample,
    Settings,
    Variant,
    measure,
    run_on_loop,
    summarize,
)

NAME = "metrics"
FULL_CALLS = 100_000
QUICK_CALLS = 10_000
FULL_SUBSCRIPTIONS = 20_000
QUICK_SUBSCRIPTIONS = 2_000

Workload = Callable[[int], Awaitable[int]]
"""``n`` operations; returns how many were recorded (or the sum of results)."""


async def fn() -> int:
    """The measured call: returns at once, so only the recording around it is timed."""
    return 1


async def bare(n: int) -> int:
    total = 0
    for _ in range(n):
        total += await fn()
    return total


async def record_async(n: int) -> int:
    collector = AsyncMetricsCollector()
    record = collector.record_task_execution
    for _ in range(n):
        await fn()
        await record("fn", 0.001, True)
    return collector.snapshot().total_tasks


async def record_sync(n: int) -> int:
    collector = AsyncMetricsCollector()
    record = collector.record
    for _ in range(n):
        await fn()
        record("fn", 0.001, True)
    return collector.snapshot().total_tasks


async def timed_block(n: int) -> int:
    collector = AsyncMetricsCollector()
    timer = collector.time
    for _ in range(n):
        async with timer("fn"):
            await fn()
    return collector.snapshot().total_tasks


async def guide_pattern(n: int) -> int:
    collector = AsyncMetricsCollector()
    for _ in range(n):
        start_time = time.time()
        await fn()
        duration = time.time() - start_time
        await collector.record_task_execution("fn", duration, True)
    return collector.snapshot().total_tasks


async def prometheus_histogram(n: int) -> int:
    registry = prometheus_client.CollectorRegistry()
    histogram = prometheus_client.Histogram(
        "task_duration_seconds", "task durations", ["task"], registry=registry
    )
    for _ in range(n):
        await fn()
        histogram.labels("fn").observe(0.001)
    count = registry.get_sample_value("task_duration_seconds_count", {"task": "fn"})
    return int(count or 0)


class _Count(abc.ObserverBase[Any]):
    """The cheapest observer: counts items and completions."""

    __slots__ = ("completed", "items")

    def __init__(self) -> None:
        self.items = 0
        self.completed = 0

    def on_next(self, value: Any) -> None:
        self.items += 1

    def on_error(self, error: Exception) -> None:
        raise error

    def on_completed(self) -> None:
        self.completed += 1


async def subscriptions_plain(n: int) -> int:
    source = rxflows.from_iterable([1])
    observer = _Count()
    for _ in range(n):
        source.subscribe(observer)
    return observer.completed


async def subscriptions_measured(n: int) -> int:
    collector = AsyncMetricsCollector()
    source = rxflows.from_iterable([1]).pipe(ops.measure(collector, "sub"))
    observer = _Count()
    for _ in range(n):
        source.subscribe(observer)
    if observer.completed != n:
        raise AssertionError(f"{observer.completed} completions for {n} subscriptions")
    return collector.snapshot().total_tasks


async def items_plain(n: int) -> int:
    observer = _Count()
    rxflows.from_iterable(range(n)).subscribe(observer)
    return observer.items


async def items_measured(n: int) -> int:
    collector = AsyncMetricsCollector()
    observer = _Count()
    source = rxflows.from_iterable(range(n)).pipe(ops.measure(collector, "item", per="item"))
    source.subscribe(observer)
    if observer.items != n:
        raise AssertionError(f"{observer.items} items for {n}")
    return collector.snapshot().total_tasks


def timed(workload: Workload, n: int) -> Callable[[], Sample]:
    """A variant's ``run``: ``n`` operations on a fresh loop, timed and checked."""

    async def main() -> Sample:
        start = time.perf_counter()
        result = await workload(n)
        seconds = time.perf_counter() - start
        if result != n:
            raise AssertionError(f"{workload.__name__}: {result} for {n} operations")
        return Sample(seconds, {"us/call": seconds / n * 1e6})

    return lambda: run_on_loop(main)


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure every variant and build the report."""
    n = QUICK_CALLS if settings.quick else FULL_CALLS
    subs = QUICK_SUBSCRIPTIONS if settings.quick else FULL_SUBSCRIPTIONS
    variants = [
        Variant("bare", f"{n:,} x await fn()", timed(bare, n)),
        Variant(
            "record",
            f'{n:,} x await fn(); await collector.record_task_execution("fn", 0.001, True)',
            timed(record_async, n),
        ),
        Variant(
            "record-sync",
            f'{n:,} x await fn(); collector.record("fn", 0.001, True)',
            timed(record_sync, n),
        ),
        Variant(
            "time",
            f'{n:,} x async with collector.time("fn"): await fn()',
            timed(timed_block, n),
        ),
        Variant(
            "guide",
            f"{n:,} x time.time() around await fn(), then record_task_execution",
            timed(guide_pattern, n),
        ),
        Variant(
            "prometheus",
            f'{n:,} x await fn(); Histogram(...).labels("fn").observe(0.001)',
            timed(prometheus_histogram, n),
        ),
        Variant(
            "subs-plain",
            f"{subs:,} x from_iterable([1]).subscribe(observer)",
            timed(subscriptions_plain, subs),
        ),
        Variant(
            "subs-measured",
            f'{subs:,} x from_iterable([1]).pipe(ops.measure(c, "sub")).subscribe(observer)',
            timed(subscriptions_measured, subs),
        ),
        Variant(
            "items-plain",
            f"from_iterable(range({n:,})).subscribe(observer)",
            timed(items_plain, n),
        ),
        Variant(
            "items-measured",
            f'from_iterable(range({n:,})).pipe(ops.measure(c, "item", per="item"))',
            timed(items_measured, n),
        ),
    ]
    metric = ("us/call",)
    specs = [
        RowSpec("baseline: await fn()", "bare", "bare", "baseline", items=n, metrics=metric),
        RowSpec("await record_task_execution(...)", "record", "bare", items=n, metrics=metric),
        RowSpec("collector.record(...) (sync)", "record-sync", "bare", items=n, metrics=metric),
        RowSpec('async with collector.time("fn")', "time", "bare", items=n, metrics=metric),
        RowSpec(
            "ref: guide pattern (time.time() + record)",
            "guide",
            "bare",
            "reference",
            items=n,
            metrics=metric,
        ),
        RowSpec(
            "ref: prometheus_client Histogram.observe",
            "prometheus",
            "bare",
            "reference",
            items=n,
            metrics=metric,
        ),
        RowSpec(
            "baseline: subscribe, no measure",
            "subs-plain",
            "subs-plain",
            "baseline",
            items=subs,
            metrics=metric,
        ),
        RowSpec(
            "ops.measure per subscription",
            "subs-measured",
            "subs-plain",
            items=subs,
            metrics=metric,
        ),
        RowSpec(
            "baseline: stream of items, no measure",
            "items-plain",
            "items-plain",
            "baseline",
            items=n,
            metrics=metric,
        ),
        RowSpec(
            'ops.measure(per="item")', "items-measured", "items-plain", items=n, metrics=metric
        ),
    ]
    runs = measure(variants, settings, progress)
    return Report(
        name=NAME,
        title=f"recording task executions, {n:,} calls / {subs:,} subscriptions",
        parameters={"calls": n, "subscriptions": subs, "loop": "asyncio default"},
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
    )


BENCHMARK = Benchmark(
    NAME, "record_task_execution, time() and ops.measure vs a bare await (no target)", run
)
