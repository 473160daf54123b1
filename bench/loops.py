"""``loops``: the same workloads on uvloop and on the default asyncio loop.

What it measures: how much uvloop speeds up (ratio < 1) or slows down (> 1)
rxflows' flows compared with the default asyncio event loop, and whether the
hand-written baselines gain as much. Each workload runs under
``asyncio.Runner(loop_factory=uvloop.new_event_loop)`` and under
``asyncio.Runner(loop_factory=asyncio.new_event_loop)``, a fresh loop per run.

Workloads (smaller than in ``parallel`` / ``streaming-memory``):

* ``ParallelFlow.execute`` over trivial coroutine functions, limit 100, and its
  baseline ``asyncio.gather`` + ``Semaphore(100)``;
* ``StreamingFlow.execute`` over an endless async generator with a trivial
  processor, consuming N results then ``aclose()``, and its baseline, the plain
  ``async for x in source: await processor(x)`` loop.

Baseline of each uvloop/default row: the same workload on the default loop, in
the same run. Only the loop differs, so the ratio is the loop's effect alone. The
reference rows give flow/baseline ratios on each loop, to show whether the
``parallel`` target holds under uvloop too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import metadata

from ._harness import (
    Benchmark,
    LoopFactory,
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
from .parallel import LIMIT, TaskFn, Workload, gather_semaphore, parallel_flow, timed, trivial
from .streaming_memory import endless, processor

NAME = "loops"
FULL_TASKS = 50_000
QUICK_TASKS = 5_000
FULL_ITEMS = 100_000
QUICK_ITEMS = 20_000


def streaming_flow_run(items: int, loop_factory: LoopFactory) -> Callable[[], Sample]:
    """One run of StreamingFlow consuming ``items`` results, timed inside the loop."""
    from rxflows import StreamingFlow, create_async_flow_config

    config = create_async_flow_config(max_concurrent_tasks=LIMIT)

    async def main() -> Sample:
        count = 0
        start = time.perf_counter()
        results: AsyncIterator[int] = StreamingFlow(config).execute(endless(), processor)
        async for _ in results:
            count += 1
            if count >= items:
                break
        aclose: Callable[[], Awaitable[object]] | None = getattr(results, "aclose", None)
        if aclose is not None:
            await aclose()
        seconds = time.perf_counter() - start
        if count != items:
            raise AssertionError(f"StreamingFlow: {count} items, expected {items}")
        return Sample(seconds)

    return lambda: run_on_loop(main, loop_factory)


def hand_loop_run(items: int, loop_factory: LoopFactory) -> Callable[[], Sample]:
    """One run of the plain ``async for`` + ``await processor(x)`` loop."""

    async def main() -> Sample:
        count = 0
        source = endless()
        start = time.perf_counter()
        async for item in source:
            await processor(item)
            count += 1
            if count >= items:
                break
        await source.aclose()
        seconds = time.perf_counter() - start
        if count != items:
            raise AssertionError(f"hand loop: {count} items, expected {items}")
        return Sample(seconds)

    return lambda: run_on_loop(main, loop_factory)


def parallel_on(
    work: Workload,
    tasks: list[TaskFn],
    loop_factory: LoopFactory,
) -> Callable[[], Sample]:
    """A parallel-workload run on a fresh loop from ``loop_factory``."""
    return timed(work, tasks, LIMIT, loop_factory)


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure every workload on both loops and build the report."""
    import uvloop

    uv_version = metadata.version("uvloop")
    uv_factory: LoopFactory = uvloop.new_event_loop
    default_factory: LoopFactory = asyncio.new_event_loop
    count = QUICK_TASKS if settings.quick else FULL_TASKS
    items = QUICK_ITEMS if settings.quick else FULL_ITEMS
    tasks: list[TaskFn] = [trivial] * count
    variants: list[Variant] = []
    for loop_name, factory in (("asyncio", default_factory), ("uvloop", uv_factory)):
        variants += [
            Variant(
                f"gather+semaphore@{loop_name}",
                f"gather + Semaphore({LIMIT}), {count:,} trivial tasks, {loop_name} loop",
                parallel_on(gather_semaphore, tasks, factory),
            ),
            Variant(
                f"ParallelFlow@{loop_name}",
                f"ParallelFlow(max_concurrent_tasks={LIMIT}).execute, {count:,} trivial "
                f"tasks, {loop_name} loop",
                parallel_on(parallel_flow, tasks, factory),
            ),
            Variant(
                f"StreamingFlow@{loop_name}",
                f"StreamingFlow.execute(endless(), processor), {items:,} results, {loop_name} loop",
                streaming_flow_run(items, factory),
            ),
            Variant(
                f"hand-loop@{loop_name}",
                f"async for x in endless(): await processor(x), {items:,} items, {loop_name} loop",
                hand_loop_run(items, factory),
            ),
        ]
    specs = [
        RowSpec(
            "gather + Semaphore: uvloop / asyncio",
            "gather+semaphore@uvloop",
            "gather+semaphore@asyncio",
            items=count,
        ),
        RowSpec(
            "ParallelFlow: uvloop / asyncio",
            "ParallelFlow@uvloop",
            "ParallelFlow@asyncio",
            items=count,
        ),
        RowSpec(
            "StreamingFlow: uvloop / asyncio",
            "StreamingFlow@uvloop",
            "StreamingFlow@asyncio",
            items=items,
        ),
        RowSpec(
            "hand async-for loop: uvloop / asyncio",
            "hand-loop@uvloop",
            "hand-loop@asyncio",
            items=items,
        ),
    ]
    for loop_name in ("asyncio", "uvloop"):
        specs += [
            RowSpec(
                f"ref: ParallelFlow / gather on {loop_name}",
                f"ParallelFlow@{loop_name}",
                f"gather+semaphore@{loop_name}",
                "reference",
                items=count,
            ),
            RowSpec(
                f"ref: StreamingFlow / hand loop on {loop_name}",
                f"StreamingFlow@{loop_name}",
                f"hand-loop@{loop_name}",
                "reference",
                items=items,
            ),
        ]
    runs = measure(variants, settings, progress)
    return Report(
        name=NAME,
        title=f"uvloop {uv_version} vs the default asyncio loop "
        f"({count:,} parallel tasks, {items:,} streamed items)",
        parameters={
            "tasks": count,
            "items": items,
            "max_concurrent": LIMIT,
            "uvloop": uv_version,
        },
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
    )


BENCHMARK = Benchmark(NAME, "the parallel and streaming flows on uvloop vs asyncio", run)
