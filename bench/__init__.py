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
"""

from __future__ import annotations

from ._harness import Benchmark

__all__ = ["registry"]


def registry() -> dict[str, Benchmark]:
    """Every benchmark by name, in the order a full run executes them."""
    from . import breaker, cache, loops, parallel, sequential, streaming_memory

    benchmarks = [parallel.BENCHMARK, streaming_memory.BENCHMARK, loops.BENCHMARK]
    benchmarks.append(sequential.BENCHMARK)
    benchmarks.append(cache.BENCHMARK)
    benchmarks.append(breaker.BENCHMARK)
    return {benchmark.name: benchmark for benchmark in benchmarks}
