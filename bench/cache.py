"""``cache``: the cost of an AsyncCache hit.

What it measures: 200,000 lookups that all hit (1,000 keys, cycled), each awaited
one after another, through ``await cache.get(key)`` and through
``await cache.get_or_set(key, factory)`` (the factory is never called), on an
``AsyncCache(max_size=1000, ttl=3600)`` whose clock is the loop clock.

Baseline: a bare ``cachetools.TTLCache(maxsize=1000, ttl=3600)`` read inside a
coroutine, ``async def lookup(k): return ttl_cache.get(k)``, awaited the same way.
It is the fair comparison because it is what one writes by hand to use cachetools
from asyncio: the same keys, the same number of awaits, a TTL cache underneath;
AsyncCache adds its statistics, the loop clock as the TTL timer, single-flight on
a miss and the optional serializer check on top. Target: ratio <= 1.5 for both.

Reference rows (no target): the same TTLCache read with a single ``ttl_cache[k]``
(cachetools' ``get`` checks ``key in self`` and then reads, so it looks twice),
and ``await cache.get(key)`` against that tighter baseline; ``ops.cache`` on a
hit, i.e. subscribing to ``source.pipe(ops.cache(cache, key))`` and receiving the
cached value, awaited with ``rxflows.collect``: the price of an Rx subscription.

Every variant runs on a fresh default asyncio loop (``asyncio.Runner``); the cache
is filled before the timer starts, and each run checks the sum of what it read.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import reactivex
from cachetools import TTLCache

import rxflows
from rxflows import AsyncCache
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

NAME = "cache"
KEYS = 1000
TTL = 3600
FULL_LOOKUPS = 200_000
QUICK_LOOKUPS = 20_000
FULL_OPERATOR_LOOKUPS = 20_000
QUICK_OPERATOR_LOOKUPS = 2_000


async def never_called() -> int:
    """The factory of ``get_or_set``: every lookup hits, so it must not run."""
    raise AssertionError("the factory ran on a hit")


Reader = Callable[[int], Awaitable[Any]]
Setup = Callable[[], Reader]


def ttl_cache_reader() -> Reader:
    """The baseline: a filled ``TTLCache`` read in a coroutine."""
    ttl_cache: TTLCache[int, int] = TTLCache(maxsize=KEYS, ttl=TTL)
    for key in range(KEYS):
        ttl_cache[key] = key

    async def lookup(k: int) -> Any:
        return ttl_cache.get(k)

    return lookup


def ttl_cache_item_reader() -> Reader:
    """Reference: the same TTLCache read with one ``ttl_cache[k]`` (``get`` looks twice)."""
    ttl_cache: TTLCache[int, int] = TTLCache(maxsize=KEYS, ttl=TTL)
    for key in range(KEYS):
        ttl_cache[key] = key

    async def lookup(k: int) -> Any:
        try:
            return ttl_cache[k]
        except KeyError:
            return None

    return lookup


def filled_cache() -> AsyncCache:
    cache = AsyncCache(max_size=KEYS, ttl=TTL)
    for key in range(KEYS):
        cache._store.put(key, key, None)  # fill without awaiting: not part of the timing
    return cache


def get_reader() -> Reader:
    """Candidate: ``await cache.get(key)``."""
    return filled_cache().get


def get_or_set_reader() -> Reader:
    """Candidate: ``await cache.get_or_set(key, factory)`` on a hit."""
    cache = filled_cache()

    def read(key: int) -> Awaitable[Any]:
        return cache.get_or_set(key, never_called)

    return read


def operator_reader() -> Reader:
    """Reference: subscribe to ``source.pipe(ops.cache(cache, key))`` on a hit."""
    cache = filled_cache()
    source: reactivex.Observable[int] = reactivex.empty()
    streams = [source.pipe(ops.cache(cache, key)) for key in range(KEYS)]

    async def read(key: int) -> Any:
        values = await rxflows.collect(streams[key])
        return values[0]

    return read


def timed(setup: Setup, lookups: int) -> Callable[[], Sample]:
    """A variant's ``run``: ``lookups`` awaited hits on a fresh loop, timed and checked."""
    expected = sum(i % KEYS for i in range(lookups))

    async def main() -> Sample:
        read = setup()
        keys = [i % KEYS for i in range(lookups)]
        total = 0
        start = time.perf_counter()
        for key in keys:
            total += await read(key)
        seconds = time.perf_counter() - start
        if total != expected:
            raise AssertionError(f"{setup.__name__}: read {total}, expected {expected}")
        return Sample(seconds)

    return lambda: run_on_loop(main)


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure the variants and build the report."""
    lookups = QUICK_LOOKUPS if settings.quick else FULL_LOOKUPS
    operator_lookups = QUICK_OPERATOR_LOOKUPS if settings.quick else FULL_OPERATOR_LOOKUPS
    variants = [
        Variant(
            "ttlcache",
            f"async def lookup(k): return ttl_cache.get(k), {lookups:,} awaited hits",
            timed(ttl_cache_reader, lookups),
        ),
        Variant(
            "ttlcache-item",
            f"async def lookup(k): return ttl_cache[k] (KeyError: None), {lookups:,} awaited hits",
            timed(ttl_cache_item_reader, lookups),
        ),
        Variant(
            "get",
            f"await cache.get(k), {lookups:,} awaited hits",
            timed(get_reader, lookups),
        ),
        Variant(
            "get_or_set",
            f"await cache.get_or_set(k, factory), {lookups:,} awaited hits",
            timed(get_or_set_reader, lookups),
        ),
        Variant(
            "ttlcache-small",
            f"async def lookup(k): return ttl_cache.get(k), {operator_lookups:,} awaited hits",
            timed(ttl_cache_reader, operator_lookups),
        ),
        Variant(
            "ops.cache",
            f"await rxflows.collect(source.pipe(ops.cache(cache, k))), {operator_lookups:,} hits",
            timed(operator_reader, operator_lookups),
        ),
    ]
    target = Target("ratio", 1.5, "ratio <= 1.5")
    specs = [
        RowSpec(
            "baseline: TTLCache.get in a coroutine",
            "ttlcache",
            "ttlcache",
            "baseline",
            items=lookups,
        ),
        RowSpec("await cache.get(key)", "get", "ttlcache", target=target, items=lookups),
        RowSpec(
            "await cache.get_or_set(key, factory)",
            "get_or_set",
            "ttlcache",
            target=target,
            items=lookups,
        ),
        RowSpec(
            "reference: ttl_cache[k] in a coroutine",
            "ttlcache-item",
            "ttlcache",
            "reference",
            items=lookups,
        ),
        RowSpec(
            "await cache.get(key) vs ttl_cache[k]",
            "get",
            "ttlcache-item",
            "reference",
            items=lookups,
        ),
        RowSpec(
            "ops.cache hit (subscribe + collect)",
            "ops.cache",
            "ttlcache-small",
            "reference",
            items=operator_lookups,
        ),
    ]
    runs = measure(variants, settings, progress)
    return Report(
        name=NAME,
        title=f"AsyncCache hits vs a bare TTLCache in a coroutine, {lookups:,} lookups",
        parameters={
            "keys": KEYS,
            "ttl": TTL,
            "lookups": lookups,
            "operator_lookups": operator_lookups,
            "loop": "asyncio default",
        },
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
    )


BENCHMARK = Benchmark(NAME, "AsyncCache.get / get_or_set hits vs TTLCache.get (<= 1.5x)", run)
