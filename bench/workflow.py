"""``workflow``: AsyncWorkflowEngine on a 1,000-step random DAG of trivial steps.

What it measures: the engine's per-step machinery. The DAG is random but seeded:
step ``i`` depends on 0 to 3 steps drawn uniformly from the steps before it (so it
is acyclic and every run sees the same graph), and each step is
``async def step(*inputs): return 1``. With no work in the steps, the time is all
scheduling, input passing and bookkeeping. A sample runs the workflow ``repeats``
times on one fresh loop; the engine (1,000 ``add_step`` calls and ``validate()``)
is built before the clock starts, as the baseline's graph is.

Baseline: the hand-written asyncio topological runner, one task per step: each
task awaits its dependencies' tasks (their results are its inputs, in order), then
runs the step under an ``asyncio.Semaphore(100)``; ``gather`` collects them all.
It is the fair comparison because it is the idiomatic way to write "run this DAG,
each step once after its dependencies, outputs passed on, at most 100 at once"
with nothing but asyncio: it starts every step as soon as its inputs are ready
(no level barriers) and has the same concurrency bound as the engine
(``max_concurrent_tasks=100``). **Target: engine / baseline <= 1.5.**

Reference rows, against the same baseline: the same runner without the semaphore;
a Kahn's-algorithm runner (``gather`` per topological level, levels computed
before the clock starts; each level waits for the slowest step of the one
before); the floor (every step awaited in turn in topological order, no
concurrency, no tasks); ``engine.run`` (the result record without the outputs
dict); the engine with an event subscriber on ``"*"`` (every event built,
published and handled); the engine built, validated and run each time; and the
same comparison with steps that suspend once (``await asyncio.sleep(0)``), so
that concurrency matters.

Each sample reports ``us/step``: its time divided by the steps it ran. The
per-step overhead of a runner is its ``us/step`` minus the floor's.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rxflows import AsyncWorkflowEngine, WorkflowEvent, WorkflowStep, create_async_flow_config

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

NAME = "workflow"
STEPS = 1000
SEED = 1729
MAX_DEPENDENCIES = 3
LIMIT = 100
FULL_REPEATS = 20
QUICK_REPEATS = 4

Dag = list[list[int]]
"""``dag[i]``: the indices of step ``i``'s dependencies (all below ``i``)."""
StepFn = Callable[..., Awaitable[int]]


def random_dag(steps: int = STEPS, seed: int = SEED) -> Dag:
    """Step ``i`` depends on 0..3 distinct earlier steps, drawn with ``random.Random(seed)``."""
    rng = random.Random(seed)
    dag: Dag = []
    for i in range(steps):
        count = rng.randint(0, min(i, MAX_DEPENDENCIES))
        dag.append(sorted(rng.sample(range(i), count)))
    return dag


def levels(dag: Dag) -> list[list[int]]:
    """The steps grouped by depth (Kahn's algorithm): a step's dependencies are in
    earlier levels."""
    depth: list[int] = []
    for deps in dag:
        depth.append(1 + max((depth[d] for d in deps), default=-1))
    grouped: list[list[int]] = [[] for _ in range(max(depth) + 1)]
    for i, d in enumerate(depth):
        grouped[d].append(i)
    return grouped


async def trivial(*inputs: int) -> int:
    """A step that returns at once."""
    return 1


async def yielding(*inputs: int) -> int:
    """A step that suspends once, as any step doing I/O would."""
    await asyncio.sleep(0)
    return 1


# -- hand-written runners ----------------------------------------------------------------


async def tasks_runner(dag: Dag, fn: StepFn, limit: int | None) -> list[int]:
    """The baseline (``limit`` set) and its unbounded variant (``limit=None``)."""
    semaphore = asyncio.Semaphore(limit) if limit is not None else None
    tasks: list[asyncio.Task[int]] = []

    async def run(i: int) -> int:
        inputs = [await tasks[d] for d in dag[i]] if dag[i] else ["input"]
        if semaphore is None:
            return await fn(*inputs)
        async with semaphore:
            return await fn(*inputs)

    for i in range(len(dag)):
        tasks.append(asyncio.create_task(run(i)))
    return await asyncio.gather(*tasks)


async def levels_runner(dag: Dag, grouped: list[list[int]], fn: StepFn, limit: int) -> list[int]:
    """Reference: ``gather`` one topological level at a time, under a semaphore."""
    semaphore = asyncio.Semaphore(limit)
    results: list[Any] = [None] * len(dag)

    async def run(i: int) -> None:
        inputs = [results[d] for d in dag[i]] if dag[i] else ["input"]
        async with semaphore:
            results[i] = await fn(*inputs)

    for level in grouped:
        await asyncio.gather(*(run(i) for i in level))
    return results


async def floor_runner(dag: Dag, fn: StepFn) -> list[int]:
    """Reference: every step awaited in turn, in topological order (the floor)."""
    results: list[int] = []
    for deps in dag:
        results.append(await fn(*[results[d] for d in deps]) if deps else await fn("input"))
    return results


# -- the engine --------------------------------------------------------------------------


def build_engine(dag: Dag, fn: StepFn) -> AsyncWorkflowEngine:
    engine = AsyncWorkflowEngine(create_async_flow_config(max_concurrent_tasks=LIMIT))
    for i, deps in enumerate(dag):
        engine.add_step(WorkflowStep(f"s{i}", fn, [f"s{d}" for d in deps]))
    engine.validate()
    return engine


Workload = Callable[[], Awaitable[Sequence[int]]]
Setup = Callable[[], Awaitable[tuple[Workload, Callable[[], Awaitable[None]]]]]
"""Builds a workload on the running loop (untimed); returns it and its cleanup."""


def check(name: str, results: Sequence[int], steps: int) -> None:
    if len(results) != steps or sum(results) != steps:
        raise AssertionError(f"{name}: wrong results ({len(results)} items, sum {sum(results)})")


def timed(name: str, setup: Setup, steps: int, repeats: int) -> Callable[[], Sample]:
    """A variant's ``run``: ``repeats`` runs of the workflow on one fresh loop."""

    async def main() -> Sample:
        workload, cleanup = await setup()
        start = time.perf_counter()
        for _ in range(repeats):
            check(name, await workload(), steps)
        seconds = time.perf_counter() - start
        await cleanup()
        return Sample(seconds, {"us/step": seconds / (steps * repeats) * 1e6})

    return lambda: run_on_loop(main)


async def nothing() -> None:
    return None


def hand(workload: Workload) -> Setup:
    async def setup() -> tuple[Workload, Callable[[], Awaitable[None]]]:
        return workload, nothing

    return setup


def engine_setup(dag: Dag, fn: StepFn, how: str) -> Setup:
    async def setup() -> tuple[Workload, Callable[[], Awaitable[None]]]:
        if how == "build":

            async def build_and_run() -> list[int]:
                engine = build_engine(dag, fn)
                outputs = await engine.execute_workflow("input")
                await engine.aclose()
                return list(outputs.values())

            return build_and_run, nothing
        engine = build_engine(dag, fn)
        seen = [0]
        if how == "events":

            def count(event: str, data: WorkflowEvent) -> None:
                seen[0] += 1

            await engine.event_bus.subscribe("*", count)

        async def execute() -> list[int]:
            return list((await engine.execute_workflow("input")).values())

        async def run() -> list[int]:
            result = await engine.run("input")
            return [step.output for step in result]

        async def close() -> None:
            await engine.aclose()
            if how == "events" and seen[0] == 0:
                raise AssertionError("the events subscriber saw nothing")

        return (run if how == "run" else execute), close

    return setup


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure every variant and build the report."""
    repeats = QUICK_REPEATS if settings.quick else FULL_REPEATS
    dag = random_dag()
    grouped = levels(dag)
    n = len(dag)
    total = n * repeats

    def variant(key: str, description: str, setup: Setup) -> Variant:
        return Variant(
            key, f"{description} ({repeats} runs of {n:,} steps)", timed(key, setup, n, repeats)
        )

    variants = [
        variant(
            "tasks+semaphore",
            f"one task per step awaiting its dependencies' tasks, Semaphore({LIMIT}), gather",
            hand(lambda: tasks_runner(dag, trivial, LIMIT)),
        ),
        variant(
            "engine",
            f"AsyncWorkflowEngine(max_concurrent_tasks={LIMIT}).execute_workflow(input)",
            engine_setup(dag, trivial, "execute"),
        ),
        variant(
            "tasks",
            "one task per step awaiting its dependencies' tasks, no semaphore, gather",
            hand(lambda: tasks_runner(dag, trivial, None)),
        ),
        variant(
            "levels",
            f"gather per topological level ({len(grouped)} levels), Semaphore({LIMIT})",
            hand(lambda: levels_runner(dag, grouped, trivial, LIMIT)),
        ),
        variant(
            "floor",
            "each step awaited in turn, topological order",
            hand(lambda: floor_runner(dag, trivial)),
        ),
        variant(
            "engine-run", "engine.run(input) -> WorkflowResult", engine_setup(dag, trivial, "run")
        ),
        variant(
            "engine-events",
            'engine.execute_workflow with a handler subscribed to "*"',
            engine_setup(dag, trivial, "events"),
        ),
        variant(
            "engine-build",
            "1,000 x add_step(WorkflowStep(...)), validate(), execute_workflow, aclose",
            engine_setup(dag, trivial, "build"),
        ),
        variant(
            "tasks+semaphore-yield",
            "the baseline with steps that await asyncio.sleep(0)",
            hand(lambda: tasks_runner(dag, yielding, LIMIT)),
        ),
        variant(
            "engine-yield",
            "execute_workflow with steps that await asyncio.sleep(0)",
            engine_setup(dag, yielding, "execute"),
        ),
    ]
    base = "tasks+semaphore"
    metrics = ("us/step",)

    def row(label: str, key: str, baseline: str = base, **options: Any) -> RowSpec:
        kind = options.pop("kind", "candidate" if "target" in options else "reference")
        return RowSpec(label, key, baseline, kind, items=total, metrics=metrics, **options)

    specs = [
        row(f"baseline: task per step + Semaphore({LIMIT})", base, kind="baseline"),
        row(
            "AsyncWorkflowEngine.execute_workflow",
            "engine",
            target=Target("ratio", 1.5, "ratio <= 1.5"),
        ),
        row("ref: engine.run (WorkflowResult)", "engine-run"),
        row('ref: engine + a "*" event handler', "engine-events"),
        row("ref: engine built + validated each run", "engine-build"),
        row("ref: task per step, no semaphore", "tasks"),
        row(f"ref: Kahn levels + gather + Semaphore({LIMIT})", "levels"),
        row("ref: floor, sequential awaits", "floor"),
        row(
            "ref: suspending steps: task per step + Semaphore",
            "tasks+semaphore-yield",
            "tasks+semaphore-yield",
        ),
        row("ref: suspending steps: engine", "engine-yield", "tasks+semaphore-yield"),
    ]
    runs = measure(variants, settings, progress)
    rows = summarize(specs, runs)
    floor = next(r for r in rows if r.candidate == "floor").metrics["us/step"]["median"]
    notes = [
        f"per-step overhead over the floor ({floor:.2f} us/step): "
        + ", ".join(
            f"{r.candidate} {r.metrics['us/step']['median'] - floor:.2f} us"
            for r in rows
            if r.candidate in ("engine", "engine-run", "engine-events", base, "tasks", "levels")
        )
    ]
    edges = sum(len(d) for d in dag)
    return Report(
        name=NAME,
        title=f"AsyncWorkflowEngine vs a hand-written topological runner, {n:,}-step random DAG",
        parameters={
            "steps": n,
            "edges": edges,
            "roots": sum(1 for d in dag if not d),
            "levels": len(grouped),
            "widest_level": max(len(level) for level in grouped),
            "seed": SEED,
            "max_dependencies": MAX_DEPENDENCIES,
            "limit": LIMIT,
            "repeats": repeats,
            "loop": "asyncio default",
        },
        variants={v.key: v.description for v in variants},
        rows=rows,
        runs=runs,
        notes=notes,
    )


BENCHMARK = Benchmark(
    NAME, "AsyncWorkflowEngine on a 1,000-step DAG vs a task-per-step asyncio runner", run
)
