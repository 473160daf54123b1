"""``dask``: CPU-bound sync jobs on a 2-worker Dask LocalCluster vs local pools.

What it measures, with ``ops.map_async(fn, max_concurrent, executor=...)`` over
``rxflows.from_iterable`` in every variant (so only the executor differs):

* **CPU batch**: 16 jobs (8 with ``--quick``) of pure-Python work, each about
  0.25 s on one core (0.1 s quick; calibrated at start), ``max_concurrent=16``.
* **Per-task overhead**: 1,000 no-op jobs (200 quick), ``max_concurrent=64``: the
  time per job is what a round trip through the executor costs.

Baseline: the local default for sync functions, a ``LocalExecutor("thread",
max_workers=2)``: the GIL runs one pure-Python thread at a time, so the batch is
serialised. Candidate: ``DaskExecutor`` on a ``LocalCluster`` of 2 worker
processes x 1 thread. Reference: ``LocalExecutor("process", max_workers=2)``, the
single-machine way to use both cores.

Pools and cluster are started once, outside the timings (a cluster start is
reported separately as ``cluster start s``): the LocalCluster lives in a child
process (``python -m bench.dask --serve``) and each run connects a DaskExecutor to
it on the run's fresh event loop (the connection is not timed). Target: the Dask
batch at least 1.3x faster than the thread pool (ratio <= 0.77) on the 2-core
machine. Every run's results are checked.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rxflows
from rxflows import Executor, LocalExecutor
from rxflows import operators as ops

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

NAME = "dask"
WORKERS = 2
FULL_JOBS, QUICK_JOBS = 16, 8
FULL_JOB_SECONDS, QUICK_JOB_SECONDS = 0.25, 0.1
FULL_NOOPS, QUICK_NOOPS = 1_000, 200
NOOP_LIMIT = 64
ROOT = Path(__file__).resolve().parent.parent


def burn(n: int) -> int:
    """Pure-Python CPU work (holds the GIL): ``n`` loop iterations."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def noop(x: int) -> int:
    return x


def calibrate(seconds: float) -> int:
    """Iterations of :func:`burn` that take about ``seconds`` on this machine."""
    n = 200_000
    start = time.perf_counter()
    burn(n)
    elapsed = time.perf_counter() - start
    return max(1, int(n * seconds / elapsed))


@contextmanager
def cluster() -> Iterator[tuple[str, float]]:
    """A 2-worker LocalCluster in a child process: its address and start time."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.dask", "--serve"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    address = child.stdout.readline().strip()
    started = time.perf_counter() - start
    try:
        if not address.startswith("tcp://"):
            raise RuntimeError(f"the benchmark cluster did not start: {address!r}")
        yield address, started
    finally:
        child.stdin.close()
        child.wait(timeout=60)
        child.stdout.close()


def timed_batch(
    make_executor: Callable[[], Executor],
    fn: Callable[[int], int],
    items: list[int],
    limit: int,
    expected: int,
) -> Callable[[], Sample]:
    """A variant's ``run``: one batch through ``map_async(executor=...)``, timed."""

    async def main() -> Sample:
        executor = make_executor()
        start_fn = getattr(executor, "start", None)
        if start_fn is not None:
            await start_fn()  # connect the client outside the timing
        try:
            start = time.perf_counter()
            results = await rxflows.collect(
                rxflows.from_iterable(items).pipe(ops.map_async(fn, limit, executor=executor))
            )
            seconds = time.perf_counter() - start
        finally:
            if start_fn is not None:  # a DaskExecutor per run; the local pools are shared
                await executor.aclose()
        if len(results) != len(items) or sum(results) != expected:
            raise AssertionError(f"wrong results: {len(results)} items, sum {sum(results)}")
        return Sample(seconds, {"ms/job": seconds / len(items) * 1e3})

    return lambda: run_on_loop(main)


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure the variants and build the report."""
    from rxflows.dask import DaskExecutor

    jobs = QUICK_JOBS if settings.quick else FULL_JOBS
    job_seconds = QUICK_JOB_SECONDS if settings.quick else FULL_JOB_SECONDS
    noops = QUICK_NOOPS if settings.quick else FULL_NOOPS
    n = calibrate(job_seconds)
    work = [n] * jobs
    work_sum = burn(n) * jobs
    noop_items = list(range(noops))
    noop_sum = sum(noop_items)
    threads = LocalExecutor("thread", max_workers=WORKERS)
    processes = LocalExecutor("process", max_workers=WORKERS)
    # Start both local pools (every process of the pool) before any timing.
    run_on_loop(lambda: _warm(processes, threads))
    with cluster() as (address, started):

        def dask() -> Executor:
            return DaskExecutor(address)

        def local(executor: Executor) -> Callable[[], Executor]:
            return lambda: executor

        variants = [
            Variant(
                "threads",
                f"{jobs} x burn({n:,}) via LocalExecutor('thread', {WORKERS})",
                timed_batch(local(threads), burn, work, jobs, work_sum),
            ),
            Variant(
                "processes",
                f"{jobs} x burn({n:,}) via LocalExecutor('process', {WORKERS})",
                timed_batch(local(processes), burn, work, jobs, work_sum),
            ),
            Variant(
                "dask",
                f"{jobs} x burn({n:,}) via DaskExecutor: LocalCluster {WORKERS} procs x 1 thread",
                timed_batch(dask, burn, work, jobs, work_sum),
            ),
            Variant(
                "noop-threads",
                f"{noops:,} no-op jobs via LocalExecutor('thread', {WORKERS})",
                timed_batch(local(threads), noop, noop_items, NOOP_LIMIT, noop_sum),
            ),
            Variant(
                "noop-processes",
                f"{noops:,} no-op jobs via LocalExecutor('process', {WORKERS})",
                timed_batch(local(processes), noop, noop_items, NOOP_LIMIT, noop_sum),
            ),
            Variant(
                "noop-dask",
                f"{noops:,} no-op jobs via DaskExecutor (max_concurrent={NOOP_LIMIT})",
                timed_batch(dask, noop, noop_items, NOOP_LIMIT, noop_sum),
            ),
        ]
        per_job = ("ms/job",)
        specs = [
            RowSpec("baseline: CPU batch on 2 threads", "threads", "threads", "baseline",
                    items=jobs, metrics=per_job),
            RowSpec("CPU batch on 2 local processes", "processes", "threads", "reference",
                    items=jobs, metrics=per_job),
            RowSpec("CPU batch on Dask, 2 workers", "dask", "threads", items=jobs,
                    metrics=per_job, target=Target("ratio", 0.77, "ratio <= 0.77 (>= 1.3x)")),
            RowSpec("baseline: no-op jobs on 2 threads", "noop-threads", "noop-threads",
                    "baseline", items=noops, metrics=per_job),
            RowSpec("no-op jobs on 2 local processes", "noop-processes", "noop-threads",
                    "reference", items=noops, metrics=per_job),
            RowSpec("no-op jobs on Dask (per-task overhead)", "noop-dask", "noop-threads",
                    "reference", items=noops, metrics=per_job),
        ]  # fmt: skip
        try:
            runs = measure(variants, settings, progress)
        finally:
            run_on_loop(lambda: _close(processes, threads))
    return Report(
        name=NAME,
        title=f"{jobs} CPU-bound jobs and {noops:,} no-op jobs: Dask 2 workers vs local pools",
        parameters={
            "jobs": jobs,
            "burn_iterations": n,
            "job_seconds_target": job_seconds,
            "noop_jobs": noops,
            "workers": WORKERS,
            "cluster_start_s": round(started, 3),
        },
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
        notes=[f"cluster start s: {started:.2f} (LocalCluster, 2 worker processes, not timed)"],
    )


async def _warm(processes: LocalExecutor, threads: LocalExecutor) -> Sample:
    # Two overlapping jobs per pool make it start both of its workers.
    for executor in (processes, threads):
        await asyncio.gather(*(executor.submit(burn, 300_000) for _ in range(WORKERS)))
    return Sample(0.0)


async def _close(processes: LocalExecutor, threads: LocalExecutor) -> Sample:
    await processes.aclose()
    await threads.aclose()
    return Sample(0.0)


async def _serve() -> None:
    import distributed

    make_cluster: Any = distributed.LocalCluster  # untyped in distributed
    async with make_cluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
        asynchronous=True,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # not the default port 8787
    ) as local_cluster:
        print(local_cluster.scheduler_address, flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our stdin


BENCHMARK = Benchmark(NAME, "CPU-bound jobs: DaskExecutor (2 workers) vs local pools", run)

if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    asyncio.run(_serve())
