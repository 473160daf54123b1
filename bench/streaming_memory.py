"""``streaming-memory``: StreamingFlow over an endless fast source.

What it measures: ``StreamingFlow(config).execute(endless(), processor)`` where
``endless`` is an async generator that yields integers as fast as it can, forever,
and ``processor`` is a trivial ``async def`` returning its argument. The consumer
takes 1,000,000 results, then leaves the loop and ``aclose()``s the iterator.
Two figures:

* memory: the peak RSS growth (psutil RSS sampled every 10,000 items in the
  consumer, minus the RSS just before the flow was built). A flow that let the
  source run ahead of the consumer would grow without bound; the target is
  < 20 MB. The worst run is judged, not the median.
* speed: items/s and the time ratio against the baseline.

Baseline: the hand-written ``async for x in source: await processor(x)`` loop
over the same source and the same 1,000,000 items. It is the fair floor: the
same items through the same processor with nothing in between, so its time is
the cost of the work itself and its RSS growth is ~0. StreamingFlow adds bounded
concurrency (100 processors at once) and a 16-result buffer the plain loop does
not have, so the time ratio is the price of that machinery; the reference row (a
hand-written ``Semaphore(100)`` + task per item + ``Queue(16)`` pipeline) shows
what the same guarantees cost when written by hand.

Each run is a fresh Python process (``python -m bench.streaming_memory --child
...``) so memory freed by an earlier run or benchmark cannot hide growth: a new
process has no free heap to reuse. The child times the loop itself; start-up is
not counted. For the same reason there is no warm-up round: a fresh process is
always cold, and every run (baseline included) pays the same cold start.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import subprocess
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

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

NAME = "streaming-memory"
FULL_ITEMS = 1_000_000
QUICK_ITEMS = 50_000
SAMPLE_EVERY = 10_000
LIMIT = 100
BUFFER = 16
MB = 1024 * 1024
KINDS = ("baseline", "StreamingFlow", "queue-pipeline")


async def endless() -> AsyncGenerator[int, None]:
    """The source: an endless, never-suspending async generator."""
    i = 0
    while True:
        yield i
        i += 1


async def processor(item: int) -> int:
    """The per-item work: nothing, so the figure is all machinery."""
    return item


async def queue_pipeline(
    source: AsyncIterator[int], limit: int, buffer: int
) -> AsyncGenerator[int, None]:
    """Reference: a hand-written bounded pipeline (semaphore, task per item, queue)."""
    results: asyncio.Queue[int] = asyncio.Queue(buffer)
    slots = asyncio.Semaphore(limit)
    running: set[asyncio.Task[None]] = set()

    async def handle(item: int) -> None:
        try:
            await results.put(await processor(item))
        finally:
            slots.release()

    async def feed() -> None:
        async for item in source:
            await slots.acquire()
            task = asyncio.create_task(handle(item))
            running.add(task)
            task.add_done_callback(running.discard)

    feeder = asyncio.create_task(feed())
    try:
        while True:
            yield await results.get()
    finally:
        feeder.cancel()
        for task in list(running):
            task.cancel()


class _Probe:
    """Reads this process's RSS on demand; keeps the first reading, the peak and a trace."""

    def __init__(self) -> None:
        import psutil  # type: ignore[import-untyped,unused-ignore]  # no stubs in dev deps

        self._process = psutil.Process()
        gc.collect()
        self.before = self.rss()
        self.peak = self.before
        self.trace: list[float] = []

    def rss(self) -> int:
        return int(self._process.memory_info().rss)

    def sample(self) -> None:
        rss = self.rss()
        self.peak = max(self.peak, rss)
        self.trace.append(round((rss - self.before) / MB, 3))


async def child(kind: str, items: int, every: int) -> Sample:
    """One measured run in this process: consume ``items`` results of ``kind``."""
    from rxflows import StreamingFlow, create_async_flow_config

    config = create_async_flow_config(max_concurrent_tasks=LIMIT, stream_buffer_size=BUFFER)
    probe = _Probe()
    source = endless()
    count = 0
    start = time.perf_counter()
    if kind == "baseline":
        async for item in source:
            await processor(item)
            count += 1
            if count % every == 0:
                probe.sample()
            if count >= items:
                break
        await source.aclose()
    else:
        results: AsyncIterator[int]
        if kind == "StreamingFlow":
            results = StreamingFlow(config).execute(source, processor)
        else:
            results = queue_pipeline(source, LIMIT, BUFFER)
        async for _ in results:
            count += 1
            if count % every == 0:
                probe.sample()
            if count >= items:
                break
        aclose: Callable[[], Awaitable[object]] | None = getattr(results, "aclose", None)
        if aclose is not None:
            await aclose()
    seconds = time.perf_counter() - start
    if count != items:
        raise AssertionError(f"{kind}: consumed {count} items, expected {items}")
    probe.sample()
    return Sample(
        seconds,
        {
            "rss_growth_mb": (probe.peak - probe.before) / MB,
            "rss_before_mb": probe.before / MB,
            "items_per_s": items / seconds,
        },
        probe.trace,
    )


def in_child(kind: str, items: int) -> Callable[[], Sample]:
    """A variant's ``run``: one fresh-process run of ``kind``."""
    root = Path(__file__).resolve().parent.parent

    def run_child() -> Sample:
        command = [
            sys.executable,
            "-m",
            "bench.streaming_memory",
            "--child",
            kind,
            "--items",
            str(items),
            "--every",
            str(SAMPLE_EVERY),
        ]
        done = subprocess.run(
            command, cwd=root, capture_output=True, text=True, timeout=900, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{kind} child failed ({done.returncode}):\n{done.stderr}")
        data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return Sample(float(data["seconds"]), dict(data["metrics"]), list(data["trace"]))

    return run_child


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure the variants (each run in its own process) and build the report."""
    items = QUICK_ITEMS if settings.quick else FULL_ITEMS
    variants = [
        Variant(
            "baseline",
            f"async for x in endless(): await processor(x), {items:,} items",
            in_child("baseline", items),
        ),
        Variant(
            "StreamingFlow",
            f"StreamingFlow(max_concurrent_tasks={LIMIT}, stream_buffer_size={BUFFER})"
            f".execute(endless(), processor), {items:,} results then aclose()",
            in_child("StreamingFlow", items),
        ),
        Variant(
            "queue-pipeline",
            f"hand-written Semaphore({LIMIT}) + task per item + Queue({BUFFER}) pipeline",
            in_child("queue-pipeline", items),
        ),
    ]
    rss = ("rss_growth_mb",)
    specs = [
        RowSpec(
            "baseline: async for + await processor",
            "baseline",
            "baseline",
            "baseline",
            items=items,
            metrics=rss,
        ),
        RowSpec(
            "StreamingFlow.execute",
            "StreamingFlow",
            "baseline",
            target=Target("rss_growth_mb", 20.0, "RSS growth < 20 MB (worst run)", strict=True),
            items=items,
            metrics=rss,
        ),
        RowSpec(
            "ref: Semaphore + task/item + Queue",
            "queue-pipeline",
            "baseline",
            "reference",
            items=items,
            metrics=rss,
        ),
    ]
    # Every run is a fresh process, so a warm-up run would warm nothing.
    runs = measure(variants, dataclasses.replace(settings, warmup_rounds=0), progress)
    return Report(
        name=NAME,
        title=f"StreamingFlow over an endless source, {items:,} items, RSS sampled every "
        f"{SAMPLE_EVERY:,}",
        parameters={
            "items": items,
            "sample_every": SAMPLE_EVERY,
            "max_concurrent_tasks": LIMIT,
            "stream_buffer_size": BUFFER,
            "loop": "asyncio default",
            "process": "fresh process per run",
            "warmup_rounds": 0,
        },
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
    )


BENCHMARK = Benchmark(
    NAME, "StreamingFlow over an endless async generator: peak RSS growth and items/s", run
)


def main(argv: list[str] | None = None) -> int:
    """Child entry point: run one variant and print its sample as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.streaming_memory")
    parser.add_argument("--child", choices=KINDS, required=True)
    parser.add_argument("--items", type=int, default=FULL_ITEMS)
    parser.add_argument("--every", type=int, default=SAMPLE_EVERY)
    args = parser.parse_args(argv)
    kind: str = args.child
    items: int = args.items
    every: int = args.every
    sample = run_on_loop(lambda: child(kind, items, every))
    print(json.dumps({"seconds": sample.seconds, "metrics": sample.metrics, "trace": sample.trace}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
