"""rxflows benchmarks: ``python -m bench [--quick] [NAME ...]`` (or ``make bench``).

Every figure is a ratio against a hand-written baseline measured in the same run:
baseline and candidate runs are interleaved, repeated (5 rounds, 2 with
``--quick``) after a warm-up round, with ``gc.collect()`` before each run; the
table shows the median of each side and the ratio of the medians. Raw timings go
to ``bench/results/latest.json``. See ``docs/benchmarks.md`` for the figures.

Benchmarks (one module each):

* ``parallel`` (:mod:`bench.parallel`): ParallelFlow vs gather + Semaphore.
* ``streaming-memory`` (:mod:`bench.streaming_memory`): StreamingFlow over an
  endless source, peak RSS growth and throughput vs a plain ``async for`` loop.
* ``loops`` (:mod:`bench.loops`): the flows and baselines on uvloop vs asyncio.
* ``sequential`` (:mod:`bench.sequential`): SequentialFlow vs a plain await loop.
* ``cache`` (:mod:`bench.cache`): AsyncCache hits vs a bare TTLCache in a coroutine.
* ``breaker`` (:mod:`bench.breaker`): a call through a CLOSED CircuitBreaker vs a
  bare await, aiobreaker and purgatory.
* ``metrics`` (:mod:`bench.metrics`): the cost of ``record_task_execution``,
  ``collector.time()`` and ``ops.measure`` vs a bare await (no target).
* ``tasks`` (:mod:`bench.tasks`): PriorityTaskQueue.process_tasks with 10 workers
  vs a hand-written asyncio.PriorityQueue + 10 workers.
* ``events`` (:mod:`bench.events`): AsyncEventBus publish -> handled, 1 and 10
  async handlers, vs pyee's AsyncIOEventEmitter and a bare reactivex Subject.
* ``workflow`` (:mod:`bench.workflow`): AsyncWorkflowEngine on a 1,000-step random
  DAG vs a hand-written task-per-step asyncio runner.
* ``pools`` (:mod:`bench.pools`): 10,000 GETs through HTTPConnectionPool vs a bare
  aiohttp session; AsyncConnectionPool acquire/release vs asyncio.Semaphore.
* ``video`` (:mod:`bench.video`): AsyncVideoProcessor vs a serial script doing the
  same ffmpeg + recognition work: one video (overhead) and a batch of 4 (speedup).
* ``dask`` (:mod:`bench.dask`): 16 CPU-bound sync jobs through ``map_async`` on a
  2-worker Dask LocalCluster vs a local thread pool (and a process pool); per-task
  overhead on 1,000 no-op jobs.
"""

from __future__ import annotations

from ._harness import Benchmark

__all__ = ["registry"]


def registry() -> dict[str, Benchmark]:
    """Every benchmark by name, in the order a full run executes them."""
    from . import breaker, cache, loops, metrics, parallel, sequential, streaming_memory

    benchmarks = [parallel.BENCHMARK, streaming_memory.BENCHMARK, loops.BENCHMARK]
    benchmarks.append(sequential.BENCHMARK)
    benchmarks.append(cache.BENCHMARK)
    benchmarks.append(breaker.BENCHMARK)
    benchmarks.append(metrics.BENCHMARK)
    from . import tasks

    benchmarks.append(tasks.BENCHMARK)
    from . import events

    benchmarks.append(events.BENCHMARK)
    from . import workflow

    benchmarks.append(workflow.BENCHMARK)
    from . import pools

    benchmarks.append(pools.BENCHMARK)
    from . import video

    benchmarks.append(video.BENCHMARK)
    from . import dask

    benchmarks.append(dask.BENCHMARK)
    return {benchmark.name: benchmark for benchmark in benchmarks}
