"""``breaker``: the cost of a call through a CLOSED circuit breaker.

What it measures: 100,000 sequential calls of a trivial coroutine function
(``async def fn(): return 1``) through a breaker that stays CLOSED, on a fresh
default asyncio loop. With no work in ``fn``, the time is the breaker's
bookkeeping plus one call and one await.

Rows, all against the same baseline in the same run:

* the floor, ``await fn()`` with no breaker (the baseline);
* rxflows: ``CircuitBreaker(failure_threshold=5, timeout=60)``,
  ``await breaker.call(fn)``, the guide's constructor;
* aiobreaker 1.2: ``CircuitBreaker(fail_max=5, timeout_duration=timedelta(seconds=60))``,
  ``await breaker.call_async(fn)``;
* purgatory 3.0: ``AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)``,
  ``async with await factory.get_breaker("x"): await fn()`` (its documented
  context-manager use; the factory looks the breaker up by name on every call, as
  its README shows);
* **targets**: rxflows / aiobreaker < 1 and rxflows / purgatory < 1, read from the
  same medians;
* references: the rxflows breaker as a decorator (``@breaker``); with an events
  subscriber (every outcome builds a ``BreakerEvent``); and the resilience4j-style
  configuration (``FailureRate(50) | SlowCallRate(80)`` over a 60 s
  ``TimeWindow``, ``slow_call_duration=1``), which reads the clock twice per call.

Each sample also reports ``ns/call`` (its median time over the number of calls);
the overhead of a breaker is its ``ns/call`` minus the floor's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import aiobreaker
import purgatory

from rxflows import CircuitBreaker, FailureRate, SlowCallRate, TimeWindow

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

NAME = "breaker"
FULL_CALLS = 100_000
QUICK_CALLS = 10_000

Fn = Callable[[], Awaitable[int]]
Loop = Callable[[int], Awaitable[int]]
"""A workload: ``n`` sequential calls of :func:`fn`, returning the sum of the results."""


async def fn() -> int:
    """The guarded call: returns at once, so only the breaker around it is timed."""
    return 1


async def bare(n: int) -> int:
    """The floor: ``await fn()``, nothing around it."""
    total = 0
    for _ in range(n):
        total += await fn()
    return total


async def rxflows_call(n: int) -> int:
    """The candidate: the guide's ``CircuitBreaker(failure_threshold=5, timeout=60)``."""
    breaker = CircuitBreaker(failure_threshold=5, timeout=60)
    call = breaker.call
    total = 0
    for _ in range(n):
        total += await call(fn)
    return total


async def aiobreaker_call(n: int) -> int:
    """aiobreaker's ``call_async`` with the same threshold and timeout."""
    breaker = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=timedelta(seconds=60))
    call = breaker.call_async
    total = 0
    for _ in range(n):
        total += await call(fn)
    return total


async def purgatory_call(n: int) -> int:
    """purgatory's async context manager with the same threshold and TTL."""
    factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)
    total = 0
    for _ in range(n):
        async with await factory.get_breaker("x"):
            total += await fn()
    return total


async def rxflows_decorated(n: int) -> int:
    """Reference: the same breaker used as a decorator."""
    guarded = CircuitBreaker(failure_threshold=5, timeout=60)(fn)
    total = 0
    for _ in range(n):
        total += await guarded()
    return total


async def rxflows_listened(n: int) -> int:
    """Reference: with one events subscriber, so every outcome builds an event."""
    breaker = CircuitBreaker(failure_threshold=5, timeout=60)
    seen: list[int] = [0]

    def count(_: object) -> None:
        seen[0] += 1

    subscription = breaker.events.subscribe(count)
    call = breaker.call
    total = 0
    try:
        for _ in range(n):
            total += await call(fn)
    finally:
        subscription.dispose()
    if seen[0] != n:
        raise AssertionError(f"expected {n} events, saw {seen[0]}")
    return total


async def rxflows_rates(n: int) -> int:
    """Reference: failure and slow-call rates over a 60 s time window."""
    breaker = CircuitBreaker(
        trip=FailureRate(50) | SlowCallRate(80),
        window=TimeWindow(60),
        slow_call_duration=1.0,
    )
    call = breaker.call
    total = 0
    for _ in range(n):
        total += await call(fn)
    return total


def timed(workload: Loop, n: int) -> Callable[[], Sample]:
    """A variant's ``run``: ``n`` calls on a fresh loop, timed and checked."""

    async def main() -> Sample:
        start = time.perf_counter()
        total = await workload(n)
        seconds = time.perf_counter() - start
        if total != n:
            raise AssertionError(f"{workload.__name__}: {total} results for {n} calls")
        return Sample(seconds, {"ns/call": seconds / n * 1e9})

    return lambda: run_on_loop(main)


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure every variant and build the report."""
    n = QUICK_CALLS if settings.quick else FULL_CALLS
    variants = [
        Variant("bare", f"{n:,} x await fn() (no breaker)", timed(bare, n)),
        Variant(
            "rxflows",
            f"{n:,} x await CircuitBreaker(failure_threshold=5, timeout=60).call(fn)",
            timed(rxflows_call, n),
        ),
        Variant(
            "aiobreaker",
            f"{n:,} x await aiobreaker.CircuitBreaker(fail_max=5, "
            "timeout_duration=timedelta(seconds=60)).call_async(fn)",
            timed(aiobreaker_call, n),
        ),
        Variant(
            "purgatory",
            f"{n:,} x async with await AsyncCircuitBreakerFactory(default_threshold=5, "
            'default_ttl=60).get_breaker("x"): await fn()',
            timed(purgatory_call, n),
        ),
        Variant(
            "rxflows-decorator", f"{n:,} x await guarded() (@breaker)", timed(rxflows_decorated, n)
        ),
        Variant(
            "rxflows-events",
            f"{n:,} x await breaker.call(fn) with one events subscriber",
            timed(rxflows_listened, n),
        ),
        Variant(
            "rxflows-rates",
            f"{n:,} x await breaker.call(fn), FailureRate(50) | SlowCallRate(80) over "
            "TimeWindow(60), slow_call_duration=1",
            timed(rxflows_rates, n),
        ),
    ]
    metric = ("ns/call",)
    faster = "ratio < 1 (faster)"
    specs = [
        RowSpec("baseline: await fn()", "bare", "bare", "baseline", items=n, metrics=metric),
        RowSpec("rxflows CircuitBreaker.call", "rxflows", "bare", items=n, metrics=metric),
        RowSpec(
            "aiobreaker call_async", "aiobreaker", "bare", "reference", items=n, metrics=metric
        ),
        RowSpec("purgatory async with", "purgatory", "bare", "reference", items=n, metrics=metric),
        RowSpec(
            "rxflows / aiobreaker",
            "rxflows",
            "aiobreaker",
            target=Target("ratio", 1.0, faster, strict=True),
            items=n,
        ),
        RowSpec(
            "rxflows / purgatory",
            "rxflows",
            "purgatory",
            target=Target("ratio", 1.0, faster, strict=True),
            items=n,
        ),
        RowSpec(
            "ref: rxflows @breaker decorator",
            "rxflows-decorator",
            "bare",
            "reference",
            items=n,
            metrics=metric,
        ),
        RowSpec(
            "ref: rxflows with an events subscriber",
            "rxflows-events",
            "bare",
            "reference",
            items=n,
            metrics=metric,
        ),
        RowSpec(
            "ref: rxflows rates over a TimeWindow + slow calls",
            "rxflows-rates",
            "bare",
            "reference",
            items=n,
            metrics=metric,
        ),
    ]
    runs = measure(variants, settings, progress)
    return Report(
        name=NAME,
        title=f"a call through a CLOSED circuit breaker, {n:,} sequential calls",
        parameters={"calls": n, "loop": "asyncio default"},
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
    )


BENCHMARK = Benchmark(
    NAME, "CircuitBreaker.call vs aiobreaker and purgatory (target: faster than both)", run
)
