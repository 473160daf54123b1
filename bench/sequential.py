"""``sequential``: SequentialFlow over many trivial coroutine functions.

What it measures: the per-task overhead of ``SequentialFlow.execute`` (one task at
a time, results in order) on 100,000 coroutine functions that return at once.

Baseline: ``[await t() for t in tasks]``, the hand-written way to run coroutine
functions one after another and keep their results in order. Same inputs, same
order, same list out, and nothing else, so the ratio is the whole cost of the
flow's machinery per task. There is no target: with tasks this trivial the
ratio is large by construction (the baseline does one call and one await per
task); it is here to track the per-task overhead over time.
"""

from __future__ import annotations

from collections.abc import Sequence

from rxflows import SequentialFlow, create_async_flow_config

from ._harness import Benchmark, Progress, Report, RowSpec, Settings, Variant, measure, summarize
from .parallel import TaskFn, timed, trivial

NAME = "sequential"
FULL_TASKS = 100_000
QUICK_TASKS = 10_000


async def hand_loop(tasks: Sequence[TaskFn], limit: int) -> list[int]:
    """The baseline: await each task in turn (``limit`` is ignored; it is 1)."""
    del limit
    return [await task() for task in tasks]


async def sequential_flow(tasks: Sequence[TaskFn], limit: int) -> list[int]:
    """The candidate: ``SequentialFlow.execute``."""
    del limit
    return await SequentialFlow(create_async_flow_config()).execute(tasks)


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure both variants and build the report."""
    count = QUICK_TASKS if settings.quick else FULL_TASKS
    tasks: list[TaskFn] = [trivial] * count
    variants = [
        Variant(
            "hand-loop",
            f"[await t() for t in tasks], {count:,} trivial tasks",
            timed(hand_loop, tasks, 1),
        ),
        Variant(
            "SequentialFlow",
            f"SequentialFlow(config).execute(tasks), {count:,} trivial tasks",
            timed(sequential_flow, tasks, 1),
        ),
    ]
    specs = [
        RowSpec(
            "baseline: [await t() for t in tasks]",
            "hand-loop",
            "hand-loop",
            "baseline",
            items=count,
        ),
        RowSpec("SequentialFlow.execute", "SequentialFlow", "hand-loop", items=count),
    ]
    runs = measure(variants, settings, progress)
    return Report(
        name=NAME,
        title=f"SequentialFlow vs a plain await loop, {count:,} trivial tasks",
        parameters={"tasks": count, "loop": "asyncio default"},
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
    )


BENCHMARK = Benchmark(NAME, "SequentialFlow vs [await t() for t in tasks] (no target)", run)
