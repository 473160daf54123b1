"""``tasks``: PriorityTaskQueue over many trivial tasks, 10 workers.

What it measures: the per-task cost of the priority task queue: building an
``AsyncTask``, ``put_nowait``, and ``await queue.process_tasks(max_workers=10)``
running it and returning one ``TaskResult`` record per task; 100,000 tasks whose
coroutine returns at once (``async def t(): return 1``), priorities cycling over
the four levels. With no work in the tasks the time is all machinery.

Baseline: a hand-written ``asyncio.PriorityQueue`` with entries
``(-priority, seq, coro_fn)`` (the sequence number keeps FIFO order among equal
priorities and keeps the functions from being compared) and 10 worker tasks in the
idiom of the asyncio documentation: ``entry = await queue.get()``, await the
function, append its result, ``queue.task_done()``; ``await queue.join()``, then
cancel the workers. Same inputs, same priorities, same number of workers, the
results out. It is the fair comparison because it is what one writes by hand for
"run these by priority with 10 workers". It does less than the candidate: no
records, times, statistics, cancellation by id, timeouts or retries.

Reference rows (no target, same baseline):

* ``service mode, nobody listening``: ``start(10)``, the same puts, ``await
  stop()``: no record is built when nobody subscribes to ``results``.
* ``aging_interval=60``: the candidate with aging on (the four heads compared on
  each take).
* ``get_nowait pool``: the baseline's queue drained by 10 workers with
  ``get_nowait()`` in a loop (no ``task_done``/``join``), the tightest hand-written
  use of ``asyncio.PriorityQueue``.
* ``work items built beforehand``: the candidate with its ``AsyncTask`` objects
  built before the clock starts, against the baseline with its entries built
  before the clock starts: the queue's own cost without the cost of building the
  work items (an ``AsyncTask`` is a validated object, an entry a tuple literal).

Every variant runs on a fresh default asyncio loop (``asyncio.Runner``) and times
the whole workload (building the entries or tasks included); each run checks the
count and the sum of the results.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rxflows import AsyncTask, PriorityTaskQueue, TaskPriority

from ._harness import (
    Benchmark,
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

NAME = "tasks"
WORKERS = 10
FULL_TASKS = 100_000
QUICK_TASKS = 10_000

_LEVELS = (TaskPriority.LOW, TaskPriority.NORMAL, TaskPriority.HIGH, TaskPriority.CRITICAL)

TaskFn = Callable[[], Awaitable[int]]


async def trivial() -> int:
    """The task: returns at once, so only the machinery around it is timed."""
    return 1


Entry = tuple[int, int, TaskFn]


def entries(count: int) -> list[Entry]:
    """The baseline's work items: ``(-priority, seq, fn)``."""
    seq = itertools.count()
    return [(-_LEVELS[i % 4], next(seq), trivial) for i in range(count)]


def async_tasks(count: int) -> list[AsyncTask]:
    """The candidate's work items."""
    return [AsyncTask(trivial, priority=_LEVELS[i % 4]) for i in range(count)]


async def priority_queue_workers(count: int) -> list[int]:
    """The baseline: asyncio.PriorityQueue, 10 workers, task_done/join."""
    queue: asyncio.PriorityQueue[Entry] = asyncio.PriorityQueue()
    seq = itertools.count()
    for i in range(count):
        queue.put_nowait((-_LEVELS[i % 4], next(seq), trivial))
    return await drain_with_workers(queue)


async def priority_queue_prebuilt(items: list[Entry]) -> list[int]:
    """Reference baseline: the same, with the entries built before the clock starts."""
    queue: asyncio.PriorityQueue[Entry] = asyncio.PriorityQueue()
    for item in items:
        queue.put_nowait(item)
    return await drain_with_workers(queue)


async def drain_with_workers(queue: asyncio.PriorityQueue[Entry]) -> list[int]:
    """10 workers in the asyncio documentation's idiom, until ``join()``."""
    results: list[int] = []

    async def worker() -> None:
        while True:
            _, _, fn = await queue.get()
            try:
                results.append(await fn())
            finally:
                queue.task_done()

    workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
    await queue.join()
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return results


async def priority_queue_pool(count: int) -> list[int]:
    """Reference: the same queue drained with get_nowait() by 10 workers."""
    queue: asyncio.PriorityQueue[tuple[int, int, TaskFn]] = asyncio.PriorityQueue()
    seq = itertools.count()
    for i in range(count):
        queue.put_nowait((-_LEVELS[i % 4], next(seq), trivial))
    results: list[int] = []

    async def worker() -> None:
        while True:
            try:
                _, _, fn = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            results.append(await fn())

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return results


async def task_queue(count: int, aging_interval: float | None = None) -> list[int]:
    """The candidate: AsyncTask + put_nowait + process_tasks(max_workers=10)."""
    queue = PriorityTaskQueue(aging_interval=aging_interval)
    for i in range(count):
        queue.put_nowait(AsyncTask(trivial, priority=_LEVELS[i % 4]))
    records = await queue.process_tasks(max_workers=WORKERS)
    return [record.result for record in records]


async def task_queue_prebuilt(tasks: list[AsyncTask]) -> list[int]:
    """Reference: the candidate with the AsyncTasks built before the clock starts."""
    queue = PriorityTaskQueue()
    for task in tasks:
        queue.put_nowait(task)
    records = await queue.process_tasks(max_workers=WORKERS)
    return [record.result for record in records]


async def task_queue_aging(count: int) -> list[int]:
    """Reference: the candidate with aging_interval=60."""
    return await task_queue(count, aging_interval=60.0)


async def task_queue_service(count: int) -> list[int]:
    """Reference: service mode, nobody subscribed to results (no records built)."""
    queue = PriorityTaskQueue()
    queue.start(max_workers=WORKERS)
    for i in range(count):
        queue.put_nowait(AsyncTask(trivial, priority=_LEVELS[i % 4]))
    await queue.stop()
    succeeded = queue.statistics().succeeded
    return [1] * succeeded


def timed(
    workload: Callable[[Any], Awaitable[list[int]]],
    count: int,
    prepare: Callable[[int], Any] | None = None,
) -> Callable[[], Sample]:
    """A variant's ``run``: one run of ``workload`` on a fresh loop, timed and checked.

    ``prepare(count)``, if given, builds the workload's input before the clock starts;
    else the workload gets ``count`` and builds its own.
    """

    async def main() -> Sample:
        inputs = count if prepare is None else prepare(count)
        start = time.perf_counter()
        results = await workload(inputs)
        seconds = time.perf_counter() - start
        if len(results) != count or sum(results) != count:
            raise AssertionError(f"{workload.__name__}: wrong results ({len(results)} items)")
        return Sample(seconds)

    return lambda: run_on_loop(main)


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure the variants and build the report."""
    count = QUICK_TASKS if settings.quick else FULL_TASKS
    variants = [
        Variant(
            "PriorityQueue+workers",
            f"asyncio.PriorityQueue of (-priority, seq, fn), {WORKERS} workers "
            f"(get/task_done/join), {count:,} trivial tasks",
            timed(priority_queue_workers, count),
        ),
        Variant(
            "PriorityTaskQueue",
            f"AsyncTask + put_nowait + process_tasks(max_workers={WORKERS}), records returned",
            timed(task_queue, count),
        ),
        Variant(
            "service",
            f"start({WORKERS}) + put_nowait + stop(), nobody subscribed to results",
            timed(task_queue_service, count),
        ),
        Variant(
            "aging",
            f"PriorityTaskQueue(aging_interval=60) + process_tasks(max_workers={WORKERS})",
            timed(task_queue_aging, count),
        ),
        Variant(
            "PriorityQueue-prebuilt",
            "the baseline with its entries built before the clock starts",
            timed(priority_queue_prebuilt, count, entries),
        ),
        Variant(
            "PriorityTaskQueue-prebuilt",
            "the candidate with its AsyncTasks built before the clock starts",
            timed(task_queue_prebuilt, count, async_tasks),
        ),
        Variant(
            "get_nowait-pool",
            f"asyncio.PriorityQueue drained by {WORKERS} get_nowait() workers",
            timed(priority_queue_pool, count),
        ),
    ]
    base = "PriorityQueue+workers"
    specs = [
        RowSpec(
            "baseline: asyncio.PriorityQueue + 10 workers", base, base, "baseline", items=count
        ),
        RowSpec(
            "PriorityTaskQueue.process_tasks(10)",
            "PriorityTaskQueue",
            base,
            target=Target("ratio", 1.3, "ratio <= 1.3"),
            items=count,
        ),
        RowSpec("service mode, nobody listening", "service", base, "reference", items=count),
        RowSpec("aging_interval=60", "aging", base, "reference", items=count),
        RowSpec(
            "get_nowait pool (hand-written)", "get_nowait-pool", base, "reference", items=count
        ),
        RowSpec(
            "work items built beforehand: PriorityTaskQueue vs PriorityQueue",
            "PriorityTaskQueue-prebuilt",
            "PriorityQueue-prebuilt",
            "reference",
            items=count,
        ),
    ]
    runs = measure(variants, settings, progress)
    return Report(
        name=NAME,
        title=f"PriorityTaskQueue vs asyncio.PriorityQueue + {WORKERS} workers, {count:,} tasks",
        parameters={"tasks": count, "workers": WORKERS, "loop": "asyncio default"},
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
    )


BENCHMARK = Benchmark(
    NAME, "PriorityTaskQueue vs asyncio.PriorityQueue + 10 workers (target <= 1.3x)", run
)
