"""``parallel``: ParallelFlow over many trivial coroutine functions.

What it measures: the per-task overhead of ``ParallelFlow.execute`` with a
concurrency limit of 100, on 100,000 coroutine functions that return at once
(``async def t(): return 1``). With no real work in the tasks, the time is all
machinery: how the flow schedules, bounds and collects.

Baseline: ``asyncio.gather(*(guarded(t) for t in tasks))`` where ``guarded``
holds an ``asyncio.Semaphore(100)`` around ``await t()``. It is the fair
comparison because it is what one writes by hand for "run these coroutine
functions, at most 100 at once, results in order" with nothing but asyncio: same
inputs, same limit, same ordered list of results. It is not the fastest possible
hand-written code (it makes one task per item); the ``worker pool`` reference row
shows the cost of 100 hand-written workers pulling from one iterator, the
tightest pure-asyncio equivalent.

Reference rows (no target, same baseline): RxPY alone (``reactivex.from_iterable``
+ ``ops.map(defer(from_future(ensure_future(t()))))`` + ``ops.merge(max_concurrent=100)``
on an ``AsyncIOScheduler``), rxflows' ``ops.map_async`` used directly over
``rxflows.from_iterable`` and collected with ``rxflows.collect`` (what
ParallelFlow is built from), and the hand-written worker pool.

Every variant runs on a fresh default asyncio loop (``asyncio.Runner``) and times
only the awaited call; each run's result list is checked (length and sum).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import reactivex
from reactivex import Observable
from reactivex import operators as rx_ops
from reactivex.scheduler.eventloop import AsyncIOScheduler

import rxflows
from rxflows import ParallelFlow, create_async_flow_config
from rxflows import operators as ops

from ._harness import (
    Benchmark,
    LoopFactory,
    Progress,
    Report,
    RowSpec,
    Sample,
    Settings,
    Target,
    Variant,
    measure,
    run_on_loop,
    summarize,
)

NAME = "parallel"
LIMIT = 100
FULL_TASKS = 100_000
QUICK_TASKS = 10_000

TaskFn = Callable[[], Awaitable[int]]


async def trivial() -> int:
    """The task: returns at once, so only the machinery around it is timed."""
    return 1


async def gather_semaphore(tasks: Sequence[TaskFn], limit: int) -> list[int]:
    """The baseline: one guarded coroutine per task under ``gather``."""
    semaphore = asyncio.Semaphore(limit)

    async def guarded(task: TaskFn) -> int:
        async with semaphore:
            return await task()

    return await asyncio.gather(*(guarded(task) for task in tasks))


async def parallel_flow(tasks: Sequence[TaskFn], limit: int) -> list[int]:
    """The candidate: ``ParallelFlow.execute``."""
    flow = ParallelFlow(create_async_flow_config(max_concurrent_tasks=limit))
    return await flow.execute(tasks)


async def rxpy_merge(tasks: Sequence[TaskFn], limit: int) -> list[int]:
    """Reference: plain RxPY, each task a deferred future, ``merge(max_concurrent)``."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[list[int]] = loop.create_future()

    def start(task: TaskFn) -> Observable[int]:
        return reactivex.defer(lambda _: reactivex.from_future(asyncio.ensure_future(task())))

    def on_next(values: list[int]) -> None:
        if not done.done():
            done.set_result(values)

    def on_error(error: Exception) -> None:
        if not done.done():
            done.set_exception(error)

    pipeline: Observable[list[int]] = reactivex.from_iterable(tasks).pipe(
        rx_ops.map(start),
        rx_ops.merge(max_concurrent=limit),
        rx_ops.to_list(),
    )
    subscription = pipeline.subscribe(on_next, on_error, scheduler=AsyncIOScheduler(loop))
    try:
        return await done
    finally:
        subscription.dispose()


async def call(task: TaskFn) -> int:
    """``map_async``'s function: call the task and await it."""
    return await task()


async def map_async_direct(tasks: Sequence[TaskFn], limit: int) -> list[int]:
    """Reference: ``ops.map_async`` over ``rxflows.from_iterable``, gathered by ``collect``."""
    return await rxflows.collect(rxflows.from_iterable(tasks).pipe(ops.map_async(call, limit)))


async def worker_pool(tasks: Sequence[TaskFn], limit: int) -> list[int]:
    """Reference: ``limit`` hand-written workers pulling from one shared iterator."""
    results: list[int] = [0] * len(tasks)
    pending = iter(enumerate(tasks))

    async def worker() -> None:
        for index, task in pending:
            results[index] = await task()

    await asyncio.gather(*(worker() for _ in range(limit)))
    return results


Workload = Callable[[Sequence[TaskFn], int], Awaitable[list[int]]]
"""A way to run every task with a concurrency limit, returning the results in order."""


def timed(
    workload: Workload,
    tasks: Sequence[TaskFn],
    limit: int,
    loop_factory: LoopFactory = asyncio.new_event_loop,
) -> Callable[[], Sample]:
    """A variant's ``run``: one run of ``workload`` on a fresh loop, timed and checked."""

    async def main() -> Sample:
        start = time.perf_counter()
        results = await workload(tasks, limit)
        seconds = time.perf_counter() - start
        if len(results) != len(tasks) or sum(results) != len(tasks):
            raise AssertionError(f"{workload.__name__}: wrong results ({len(results)} items)")
        return Sample(seconds)

    return lambda: run_on_loop(main, loop_factory)


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure the variants and build the report."""
    count = QUICK_TASKS if settings.quick else FULL_TASKS
    tasks: list[TaskFn] = [trivial] * count
    variants = [
        Variant(
            "gather+semaphore",
            f"asyncio.gather over {count:,} semaphore-guarded coroutines (Semaphore({LIMIT}))",
            timed(gather_semaphore, tasks, LIMIT),
        ),
        Variant(
            "ParallelFlow",
            f"ParallelFlow(create_async_flow_config(max_concurrent_tasks={LIMIT})).execute",
            timed(parallel_flow, tasks, LIMIT),
        ),
        Variant(
            "rxpy-merge",
            "reactivex.from_iterable | map(defer(from_future(ensure_future(t())))) | "
            f"merge(max_concurrent={LIMIT}) | to_list, on AsyncIOScheduler",
            timed(rxpy_merge, tasks, LIMIT),
        ),
        Variant(
            "map_async",
            f"rxflows.collect(rxflows.from_iterable(tasks).pipe(ops.map_async(call, {LIMIT})))",
            timed(map_async_direct, tasks, LIMIT),
        ),
        Variant(
            "worker-pool",
            f"{LIMIT} hand-written workers pulling from one shared iterator",
            timed(worker_pool, tasks, LIMIT),
        ),
    ]
    base = "gather+semaphore"
    specs = [
        RowSpec("baseline: gather + Semaphore(100)", base, base, "baseline", items=count),
        RowSpec(
            "ParallelFlow.execute",
            "ParallelFlow",
            base,
            target=Target("ratio", 1.2, "ratio <= 1.2"),
            items=count,
        ),
        RowSpec("ref: ops.map_async + collect", "map_async", base, "reference", items=count),
        RowSpec("ref: RxPY merge(max_concurrent)", "rxpy-merge", base, "reference", items=count),
        RowSpec("ref: hand-written worker pool", "worker-pool", base, "reference", items=count),
    ]
    runs = measure(variants, settings, progress)
    return Report(
        name=NAME,
        title=f"ParallelFlow vs gather + Semaphore({LIMIT}), {count:,} trivial tasks",
        parameters={"tasks": count, "max_concurrent": LIMIT, "loop": "asyncio default"},
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
    )


BENCHMARK = Benchmark(
    NAME, "ParallelFlow vs asyncio.gather + Semaphore(100) over 100,000 trivial tasks", run
)
