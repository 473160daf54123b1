"""ops.cache as marble diagrams: one source subscription per key and load, in virtual time.

One frame is 1 ms; the cache reads the marble loop's clock, so a TTL of 0.010 s is
ten frames.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
import reactivex
from reactivex import operators as rx_ops

import rxflows
from rxflows import AsyncCache, ConfigurationError
from rxflows import operators as ops
from rxflows.testing import marbles

FRAME = 0.001


def test_concurrent_subscribers_share_one_source_subscription() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=1)
        src = m.cold("--a|")
        cached = src.pipe(ops.cache(cache, "k"))
        m.expect(cached, "^").to_be("---(a|)")
        m.expect(cached, "-^").to_be("---(a|)")
        m.expect(cached, "--^").to_be("---(a|)")
        m.expect_subscriptions(src.subscriptions).to_be("^--!")
    stats = cache.statistics()
    assert (stats.loads, stats.misses, stats.coalesced, stats.sets) == (1, 3, 2, 1)


def test_a_later_subscriber_gets_the_cached_value_at_once() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=1)
        src = m.cold("--a|")
        cached = src.pipe(ops.cache(cache, "k"))
        m.expect(cached, "^").to_be("---(a|)")
        m.expect(cached, "------^").to_be("------(a|)")
        m.expect_subscriptions(src.subscriptions).to_be("^--!")
    assert cache.statistics().hits == 1


def test_the_last_value_is_cached() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=60, clock=m.scheduler)
        src = m.cold("-a-b-c|")
        m.expect(src.pipe(ops.cache(cache, "k"))).to_be("------(c|)")
    assert cache._store["k"] == "c"


def test_after_the_ttl_the_source_is_subscribed_again() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=0.008, clock=m.scheduler)
        src = m.cold("-a|", {"a": 1})
        cached = src.pipe(ops.cache(cache, "k"))
        # stored at frame 2, so it lives through frame 9 and is gone at frame 10
        m.expect(cached, "^").to_be("--(a|)", {"a": 1})
        m.expect(cached, "---------^").to_be("---------(a|)", {"a": 1})
        m.expect(cached, "----------^").to_be("------------(a|)", {"a": 1})
        m.expect_subscriptions(src.subscriptions).to_be(["^-!", "----------^-!"])
    assert cache.statistics().loads == 2


def test_an_error_reaches_every_subscriber_and_is_not_cached() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=1)
        error = ConnectionError("api down")
        src = m.cold("--#", error=error)
        cached = src.pipe(ops.cache(cache, "k"))
        m.expect(cached, "^").to_be("--#", error=error)
        m.expect(cached, "-^").to_be("--#", error=error)
        m.expect(cached, "----^").to_be("------#", error=error)
        m.expect_subscriptions(src.subscriptions).to_be(["^-!", "----^-!"])
    stats = cache.statistics()
    assert (stats.loads, stats.load_failures, stats.coalesced) == (2, 2, 1)


def test_negative_ttl_replays_the_error_without_subscribing() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=1, negative_ttl=0.005)
        src = m.cold("--#", error=ValueError("bad"))
        cached = src.pipe(ops.cache(cache, "k"))
        # failed at frame 2: remembered through frame 6
        m.expect(cached, "^").to_be("--#", error=ValueError("bad"))
        m.expect(cached, "------^").to_be("------#", error=ValueError("bad"))
        m.expect(cached, "-------^").to_be("---------#", error=ValueError("bad"))
        m.expect_subscriptions(src.subscriptions).to_be(["^-!", "-------^-!"])
    assert cache.statistics().negative_hits == 1


def test_disposing_every_subscriber_disposes_the_source() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=60, clock=m.scheduler)
        src = m.cold("------a|")
        cached = src.pipe(ops.cache(cache, "k"))
        m.expect(cached, "^-!").to_be("---")
        m.expect(cached, "-^--!").to_be("-----")
        m.expect_subscriptions(src.subscriptions).to_be("^---!")
    assert "k" not in cache
    assert cache._inflight == {}


def test_disposing_one_subscriber_leaves_the_load_to_the_others() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=60, clock=m.scheduler)
        src = m.cold("----a|")
        cached = src.pipe(ops.cache(cache, "k"))
        m.expect(cached, "^-!").to_be("---")
        m.expect(cached, "-^").to_be("-----(a|)")
        m.expect_subscriptions(src.subscriptions).to_be("^----!")
    assert cache._store["k"] == "a"


def test_a_resubscription_after_everyone_left_starts_a_new_load() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=1)
        src = m.cold("---a|")
        cached = src.pipe(ops.cache(cache, "k"))
        m.expect(cached, "^-!").to_be("---")
        m.expect(cached, "--^").to_be("------(a|)")
        m.expect_subscriptions(src.subscriptions).to_be(["^-!", "--^---!"])


def test_different_keys_load_separately() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=60, clock=m.scheduler)
        src = m.cold("--a|")
        m.expect(src.pipe(ops.cache(cache, "x"))).to_be("---(a|)")
        m.expect(src.pipe(ops.cache(cache, "y")), "-^").to_be("----(a|)")
        m.expect_subscriptions(src.subscriptions).to_be(["^--!", "-^--!"])
    assert set(cache._store) == {"x", "y"}


def test_a_callable_key_is_evaluated_at_each_subscription() -> None:
    counter = itertools.count()
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=60, clock=m.scheduler)
        src = m.cold("-a|")
        cached = src.pipe(ops.cache(cache, lambda: f"k{next(counter)}"))
        m.expect(cached, "^").to_be("--(a|)")
        m.expect(cached, "^").to_be("--(a|)")
        m.expect_subscriptions(src.subscriptions).to_be(["^-!", "^-!"])
    assert set(cache._store) == {"k0", "k1"}


def test_a_failing_key_function_is_an_error() -> None:
    def broken_key() -> str:
        raise KeyError("no key")

    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=1)
        src = m.cold("-a|")
        m.expect(src.pipe(ops.cache(cache, broken_key))).to_be("#", error=KeyError("no key"))
        m.expect_subscriptions(src.subscriptions).to_be([])


def test_an_empty_source_completes_and_caches_nothing() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=60, clock=m.scheduler)
        src = m.cold("--|")
        cached = src.pipe(ops.cache(cache, "k"))
        m.expect(cached, "^").to_be("--|")
        m.expect(cached, "----^").to_be("------|")
        m.expect_subscriptions(src.subscriptions).to_be(["^-!", "----^-!"])
    assert "k" not in cache


def test_a_hot_source_is_cached_from_its_completion() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=1)
        src = m.hot("-a--b|")
        cached = src.pipe(ops.cache(cache, "k"))
        m.expect(cached, "--^").to_be("-----(b|)")
        m.expect(cached, "-------^").to_be("-------(b|)")


def test_bad_arguments() -> None:
    cache = AsyncCache(max_size=10, ttl=None)
    with pytest.raises(TypeError, match=r"cache needs an rxflows\.AsyncCache, got dict"):
        ops.cache({}, "k")  # type: ignore[arg-type]  # the misuse under test
    with pytest.raises(ConfigurationError, match="ttl must be a positive number of seconds"):
        ops.cache(AsyncCache(), "k", ttl=0)
    with pytest.raises(ConfigurationError, match="per call needs a cache with expiry"):
        ops.cache(cache, "k", ttl=5)


def test_per_operator_ttl() -> None:
    with marbles() as m:
        cache = AsyncCache(max_size=10, ttl=1)
        src = m.cold("-a|")
        cached = src.pipe(ops.cache(cache, "k", ttl=0.003))
        m.expect(cached, "^").to_be("--(a|)")
        m.expect(cached, "----^").to_be("----(a|)")
        m.expect(cached, "-----^").to_be("-------(a|)")
        m.expect_subscriptions(src.subscriptions).to_be(["^-!", "-----^-!"])


async def test_from_async_sources_are_fetched_once() -> None:
    cache = AsyncCache(max_size=1000, ttl=3600)
    fetches: list[str] = []

    async def fetch(url: str) -> dict[str, str]:
        fetches.append(url)
        await asyncio.sleep(2)
        return {"url": url}

    url = "https://v/1"
    info = rxflows.from_async(fetch, url).pipe(ops.cache(cache, url))
    results = await asyncio.gather(*(rxflows.collect(info) for _ in range(50)))
    assert results == [[{"url": url}]] * 50
    assert await info == {"url": url}
    assert fetches == [url]
    assert asyncio.get_running_loop().time() == 2
    # get_or_set shares the same entries and the same loads
    assert await cache.get_or_set(url, fetch, url) == {"url": url}
    assert fetches == [url]


async def test_a_load_started_by_get_or_set_is_joined_by_the_operator() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    calls: list[str] = []

    async def fetch(key: str) -> str:
        calls.append(key)
        await asyncio.sleep(3)
        return key.upper()

    waiter = asyncio.create_task(cache.get_or_set("k", fetch, "k"))
    await asyncio.sleep(1)
    assert await rxflows.from_async(fetch, "k").pipe(ops.cache(cache, "k")) == "K"
    assert await waiter == "K"
    assert calls == ["k"]
    assert cache.statistics().coalesced == 1


async def test_cancelling_an_awaiting_subscriber_cancels_the_fetch() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    cancelled: list[str] = []

    async def fetch(key: str) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(key)
            raise
        return key

    task = asyncio.ensure_future(
        rxflows.collect(rxflows.from_async(fetch, "k").pipe(ops.cache(cache, "k")))
    )
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(5):
        await asyncio.sleep(0)
    assert cancelled == ["k"]
    assert cache._inflight == {}


async def test_get_or_set_runs_its_own_factory_after_joining_an_empty_source() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    empty = reactivex.timer(1.0).pipe(rx_ops.ignore_elements())
    subscriber = asyncio.ensure_future(rxflows.collect(empty.pipe(ops.cache(cache, "k"))))
    await asyncio.sleep(0.5)

    async def factory() -> str:
        await asyncio.sleep(1)
        return "from factory"

    assert await cache.get_or_set("k", factory) == "from factory"
    assert await subscriber == []
    assert asyncio.get_running_loop().time() == 2  # joined until 1, then its own load
    stats = cache.statistics()
    assert (stats.loads, stats.coalesced) == (2, 1)
