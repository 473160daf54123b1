"""AsyncCache: TTL and LRU in virtual time, single-flight loads, statistics, misuse errors."""

from __future__ import annotations

import asyncio
import gzip
import math
import pickle
from typing import Any, Optional

import pytest
from cachetools import Cache
from hypothesis import given, settings
from hypothesis import strategies as st

import rxflows
from rxflows import AsyncCache, CacheStatistics, ConfigurationError, JSONSerializer
from rxflows import operators as ops

from .support import run_virtual, settle


def now() -> float:
    return asyncio.get_running_loop().time()


def traceback_depth(error: BaseException) -> int:
    depth, tb = 0, error.__traceback__
    while tb is not None:
        depth, tb = depth + 1, tb.tb_next
    return depth


class Loader:
    """An async factory taking ``seconds`` of virtual time; counts calls and cancellations."""

    def __init__(self, seconds: float = 1.0, error: Exception | None = None) -> None:
        self.seconds = seconds
        self.error = error
        self.calls = 0
        self.cancelled = 0

    async def __call__(self, value: str) -> str:
        self.calls += 1
        number = self.calls
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return f"loaded {value} #{number}"


# -- the guide's examples, with rxflows ------------------------------------------------


async def test_guide_get_video_metadata_and_cache_multiple_videos() -> None:
    cache = AsyncCache(max_size=1000, ttl=3600)
    fetched: list[str] = []

    async def fetch_video_metadata(url: str) -> dict[str, str]:
        fetched.append(url)
        await asyncio.sleep(0.5)
        return {"url": url, "title": "Intro"}

    async def get_video_metadata(url: str) -> Any:
        # Check cache first
        cached = await cache.get(url)
        if cached:
            return cached

        # Fetch from API
        metadata = await fetch_video_metadata(url)

        # Cache result
        await cache.set(url, metadata)
        return metadata

    # Batch cache operations
    async def cache_multiple_videos(video_data: dict[str, Any]) -> None:
        for url, data in video_data.items():
            await cache.set(url, data)

    first = await get_video_metadata("https://v/1")
    again = await get_video_metadata("https://v/1")
    assert first == again == {"url": "https://v/1", "title": "Intro"}
    assert fetched == ["https://v/1"]
    await cache_multiple_videos({"https://v/2": {"title": "Two"}, "https://v/3": {"title": "3"}})
    assert await cache.get("https://v/2") == {"title": "Two"}
    assert len(cache) == 3
    stats = cache.statistics()
    assert (stats.hits, stats.misses, stats.sets) == (2, 1, 3)
    # an hour later the entries are gone, and the maintenance loop frees them
    await asyncio.sleep(3600)
    assert await cache.get("https://v/1") is None


class CompressedCache(AsyncCache):
    # The guide's subclass, as written (its narrower signatures differ from the base's).
    async def set(self, key: str, value: Any):  # type: ignore[override,no-untyped-def]  # the guide's code verbatim
        # Compress data before caching
        compressed = gzip.compress(pickle.dumps(value))
        await super().set(key, compressed)

    async def get(self, key: str) -> Optional[Any]:  # type: ignore[override]  # noqa: UP045  # the guide's code verbatim
        compressed = await super().get(key)
        if compressed:
            return pickle.loads(gzip.decompress(compressed))
        return None


async def test_guide_compressed_cache_subclass() -> None:
    cache = CompressedCache(max_size=10, ttl=60)
    await cache.set("clip", {"frames": list(range(100))})
    stored = cache._store["clip"]
    assert isinstance(stored, bytes)
    assert pickle.loads(gzip.decompress(stored)) == {"frames": list(range(100))}
    assert await cache.get("clip") == {"frames": list(range(100))}
    assert await cache.get("other") is None


async def test_get_or_set_and_ops_cache_go_through_a_subclass_get_and_set() -> None:
    cache = CompressedCache(max_size=10, ttl=60)
    loader = Loader()
    assert await cache.get_or_set("a", loader, "a") == "loaded a #1"
    assert isinstance(cache._store["a"], bytes)  # stored through CompressedCache.set
    assert await cache.get_or_set("a", loader, "a") == "loaded a #1"  # read through its get
    assert await cache.get("a") == "loaded a #1"
    assert loader.calls == 1

    fetches: list[str] = []

    async def fetch(url: str) -> dict[str, str]:
        fetches.append(url)
        await asyncio.sleep(1)
        return {"url": url}

    stream = rxflows.from_async(fetch, "u").pipe(ops.cache(cache, "u"))
    results = await asyncio.gather(rxflows.collect(stream), rxflows.collect(stream))
    assert list(results) == [[{"url": "u"}], [{"url": "u"}]]
    assert isinstance(cache._store["u"], bytes)
    assert await rxflows.collect(stream) == [{"url": "u"}]
    assert fetches == ["u"]


async def test_guide_multi_level_cache() -> None:
    # Implement multi-level caching
    class MultiLevelCache:
        def __init__(self) -> None:
            self.l1_cache = AsyncCache(max_size=100, ttl=60)  # Fast, small
            self.l2_cache = AsyncCache(max_size=1000, ttl=3600)  # Slower, larger

        async def get(self, key: str) -> Any:
            # Check L1 cache first
            result = await self.l1_cache.get(key)
            if result:
                return result

            # Check L2 cache
            result = await self.l2_cache.get(key)
            if result:
                # Populate L1 cache
                await self.l1_cache.set(key, result)
                return result

            return None

    levels = MultiLevelCache()
    await levels.l2_cache.set("clip", "metadata")
    assert await levels.get("clip") == "metadata"
    assert await levels.l1_cache.get("clip") == "metadata"  # promoted
    await asyncio.sleep(60)  # L1's TTL passes, L2 still holds it
    assert await levels.l1_cache.get("clip") is None
    assert await levels.get("clip") == "metadata"
    assert await levels.get("missing") is None


async def test_guide_cache_maintenance_loop() -> None:
    cache = AsyncCache(max_size=1000, ttl=3600)
    freed: list[int] = []

    async def cache_maintenance() -> None:
        while True:
            await asyncio.sleep(3600)  # Every hour
            freed.append(await cache.clear_expired())

    await cache.set("a", 1)
    await cache.set("b", 2)
    maintenance = asyncio.create_task(cache_maintenance())
    await asyncio.sleep(1800)
    await cache.set("c", 3)
    await asyncio.sleep(3600 * 2 - 1800 + 1)
    maintenance.cancel()
    await asyncio.gather(maintenance, return_exceptions=True)
    assert freed == [2, 1]  # a and b at 1 h, c (set at 0.5 h) at 2 h
    assert len(cache) == 0


# -- basic API ------------------------------------------------------------------------


async def test_get_set_delete_contains_len_clear() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    assert await cache.get("k") is None
    assert await cache.get("k", "fallback") == "fallback"
    await cache.set("k", 0)  # a falsy value is still a value
    assert await cache.get("k", "fallback") == 0
    assert await cache.contains("k")
    assert "k" in cache
    assert "other" not in cache
    assert len(cache) == 1
    assert await cache.delete("k") is True
    assert await cache.delete("k") is False
    assert "k" not in cache
    await cache.set("a", 1)
    await cache.set("b", 2)
    await cache.clear()
    assert len(cache) == 0
    assert await cache.get("a") is None
    assert (cache.max_size, cache.ttl, cache.negative_ttl) == (10, 60.0, None)
    assert repr(cache) == "AsyncCache(max_size=10, ttl=60.0, size=0)"


async def test_values_are_stored_as_given_and_shared() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    value = {"tags": ["a"]}
    await cache.set("k", value)
    got = await cache.get("k")
    assert got is value  # no copy, no pickling
    got["tags"].append("b")
    assert (await cache.get("k"))["tags"] == ["a", "b"]


# -- TTL and LRU in virtual time --------------------------------------------------------


async def test_ttl_expiry_is_exact() -> None:
    cache = AsyncCache(max_size=10, ttl=10)
    start = now()
    await cache.set("k", "v")
    await asyncio.sleep(9.999)
    assert await cache.get("k") == "v"
    assert "k" in cache
    await asyncio.sleep(0.001)
    assert now() - start == 10
    assert "k" not in cache
    assert await cache.get("k") is None
    stats = cache.statistics()
    assert (stats.expirations, stats.evictions, stats.size) == (1, 0, 0)


async def test_set_renews_the_ttl() -> None:
    cache = AsyncCache(max_size=10, ttl=10)
    await cache.set("k", 1)
    await asyncio.sleep(6)
    await cache.set("k", 2)
    await asyncio.sleep(6)
    assert await cache.get("k") == 2
    await asyncio.sleep(4)
    assert await cache.get("k") is None


async def test_per_call_ttl() -> None:
    cache = AsyncCache(max_size=10, ttl=100)
    await cache.set("short", 1, ttl=2)
    await cache.set("default", 2)
    assert await cache.get_or_set("loaded", Loader(seconds=1), "x", ttl=5) == "loaded x #1"
    # loaded at t=1, so it expires at 6
    await asyncio.sleep(1)
    assert await cache.get("short") is None
    assert await cache.get("loaded") == "loaded x #1"
    await asyncio.sleep(4)
    assert await cache.get("loaded") is None
    assert await cache.get("default") == 2
    assert cache.statistics().expirations == 2


async def test_infinite_ttl_never_expires_but_allows_a_per_call_ttl() -> None:
    cache = AsyncCache(max_size=10, ttl=math.inf)
    await cache.set("forever", 1)
    await cache.set("brief", 2, ttl=1)
    await asyncio.sleep(10**6)
    assert await cache.get("forever") == 1
    assert await cache.get("brief") is None


async def test_expired_items_are_never_returned_and_freed_on_a_miss() -> None:
    cache = AsyncCache(max_size=10, ttl=5)
    for key in "abc":
        await cache.set(key, key)
    await asyncio.sleep(5)
    assert Cache.__len__(cache._store) == 3  # held, not yet freed
    assert await cache.get("a") is None
    assert Cache.__len__(cache._store) == 0  # the miss freed all three
    assert cache.statistics().expirations == 3


async def test_clear_expired_counts_what_it_frees() -> None:
    cache = AsyncCache(max_size=10, ttl=10)
    for key in "abc":
        await cache.set(key, key)
    await asyncio.sleep(5)
    await cache.set("d", "d")
    assert await cache.clear_expired() == 0
    await asyncio.sleep(5)
    assert await cache.clear_expired() == 3
    assert await cache.clear_expired() == 0
    assert len(cache) == 1
    await asyncio.sleep(5)
    assert await cache.clear_expired() == 1
    assert cache.statistics().expirations == 4


async def test_lru_eviction_order() -> None:
    cache = AsyncCache(max_size=3, ttl=60)
    for key in "abc":
        await cache.set(key, key)
    assert await cache.get("a") == "a"  # a is now the most recently used
    await cache.set("d", "d")  # evicts b
    assert [k for k in "abcd" if k in cache] == ["a", "c", "d"]
    await cache.set("c", "c2")  # a write refreshes c too
    await cache.set("e", "e")  # evicts a
    assert [k for k in "abcde" if k in cache] == ["c", "d", "e"]
    stats = cache.statistics()
    assert (stats.evictions, stats.expirations, stats.size, stats.max_size) == (2, 0, 3, 3)


async def test_lru_only_cache_without_ttl() -> None:
    cache = AsyncCache(max_size=2, ttl=None)
    await cache.set("a", 1)
    await cache.set("b", 2)
    await asyncio.sleep(10**6)
    assert await cache.get("a") == 1
    await cache.set("c", 3)  # evicts b, the least recently used
    assert "b" not in cache
    assert await cache.get("a") == 1
    assert await cache.clear_expired() == 0
    stats = cache.statistics()
    assert (stats.evictions, stats.expirations, stats.size) == (1, 0, 2)


async def test_expired_entries_make_room_without_counting_as_evictions() -> None:
    cache = AsyncCache(max_size=2, ttl=10)
    await cache.set("a", 1)
    await cache.set("b", 2)
    await asyncio.sleep(10)
    await cache.set("c", 3)
    await cache.set("d", 4)
    stats = cache.statistics()
    assert (stats.expirations, stats.evictions, stats.size) == (2, 0, 2)


async def test_statistics_count_every_operation() -> None:
    cache = AsyncCache(max_size=10, ttl=10)
    await cache.set("a", 1)
    await cache.get("a")
    await cache.get("a")
    await cache.get("nope")
    await cache.get_or_set("b", Loader(), "b")
    await cache.get_or_set("b", Loader(), "b")
    assert cache.statistics() == CacheStatistics(
        hits=3,
        misses=2,
        sets=2,
        evictions=0,
        expirations=0,
        coalesced=0,
        loads=1,
        load_failures=0,
        negative_hits=0,
        decode_failures=0,
        size=2,
        max_size=10,
    )
    with pytest.raises(AttributeError):
        cache.statistics().hits = 0  # type: ignore[misc]  # frozen: the assignment must fail


async def test_the_clock_can_be_injected() -> None:
    class ManualClock:
        def __init__(self) -> None:
            self.t = 100.0

        def now(self) -> float:
            return self.t

        async def sleep(self, seconds: float) -> None:
            self.t += seconds

    clock = ManualClock()
    cache = AsyncCache(max_size=10, ttl=30, clock=clock)
    await cache.set("k", 1)
    clock.t += 29.5
    assert await cache.get("k") == 1
    clock.t += 0.5
    assert await cache.get("k") is None
    assert now() == 0  # the loop clock never moved


async def test_a_scheduler_can_serve_as_the_clock() -> None:
    cache = AsyncCache(max_size=10, ttl=2, clock=rxflows.loop_scheduler())
    await cache.set("k", 1)
    await asyncio.sleep(1.5)
    assert await cache.get("k") == 1
    await asyncio.sleep(0.5)
    assert await cache.get("k") is None


# -- single flight --------------------------------------------------------------------


async def test_a_thousand_concurrent_misses_run_the_factory_once() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    loader = Loader(seconds=2)
    start = now()
    results = await asyncio.gather(*(cache.get_or_set("k", loader, "k") for _ in range(1000)))
    assert loader.calls == 1
    assert results == ["loaded k #1"] * 1000
    assert now() - start == 2
    stats = cache.statistics()
    assert (stats.loads, stats.misses, stats.coalesced, stats.hits) == (1, 1000, 999, 0)
    assert await cache.get_or_set("k", loader, "k") == "loaded k #1"
    assert loader.calls == 1
    assert cache._inflight == {}


async def test_a_none_result_is_cached_by_get_or_set() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    calls = 0

    async def factory() -> None:
        nonlocal calls
        calls += 1

    assert await cache.get_or_set("k", factory) is None
    assert await cache.get_or_set("k", factory) is None
    assert calls == 1
    assert "k" in cache


async def test_get_does_not_wait_for_a_load_in_flight() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    waiter = asyncio.create_task(cache.get_or_set("k", Loader(seconds=5), "k"))
    await asyncio.sleep(1)
    assert await cache.get("k") is None
    assert not await cache.contains("k")
    assert await waiter == "loaded k #1"
    assert await cache.get("k") == "loaded k #1"


async def test_loads_of_different_keys_run_concurrently() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    loader = Loader(seconds=3)
    start = now()
    results = await asyncio.gather(*(cache.get_or_set(k, loader, k) for k in "abc"))
    assert sorted(results) == ["loaded a #1", "loaded b #2", "loaded c #3"]
    assert now() - start == 3
    assert loader.calls == 3


async def test_a_failure_reaches_every_waiter_and_is_not_cached() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    error = ConnectionError("api down")
    loader = Loader(error=error)
    results = await asyncio.gather(
        *(cache.get_or_set("k", loader, "k") for _ in range(3)), return_exceptions=True
    )
    assert results == [error, error, error]
    assert all(r is error for r in results)  # unwrapped, the same exception
    assert "k" not in cache
    loader.error = None
    assert await cache.get_or_set("k", loader, "k") == "loaded k #2"
    stats = cache.statistics()
    assert (stats.loads, stats.load_failures, stats.coalesced) == (2, 1, 2)


async def test_a_factory_that_returns_a_plain_value_fails_with_type_error() -> None:
    cache = AsyncCache(max_size=10, ttl=60)

    def not_async(key: str) -> str:
        return key

    with pytest.raises(TypeError, match="returned str, not an awaitable"):
        await cache.get_or_set("k", not_async, "k")  # type: ignore[arg-type]  # the misuse under test
    assert "k" not in cache


async def test_cancelling_every_waiter_cancels_the_load() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    loader = Loader(seconds=10)
    waiters = [asyncio.create_task(cache.get_or_set("k", loader, "k")) for _ in range(3)]
    await asyncio.sleep(1)
    for waiter in waiters:
        waiter.cancel()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    await settle()
    assert loader.cancelled == 1
    assert cache._inflight == {}
    assert "k" not in cache
    # the next caller starts a fresh load
    loader.seconds = 1
    assert await cache.get_or_set("k", loader, "k") == "loaded k #2"


async def test_cancelling_one_of_two_waiters_lets_the_load_finish() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    loader = Loader(seconds=10)
    first = asyncio.create_task(cache.get_or_set("k", loader, "k"))
    second = asyncio.create_task(cache.get_or_set("k", loader, "k"))
    await asyncio.sleep(1)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "loaded k #1"
    assert now() == 10
    assert loader.cancelled == 0
    assert await cache.get("k") == "loaded k #1"


async def test_a_timeout_on_the_only_waiter_cancels_the_load() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    loader = Loader(seconds=10)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(2):
            await cache.get_or_set("k", loader, "k")
    await settle()
    assert loader.cancelled == 1
    assert now() == 2


async def test_a_write_during_a_load_wins_over_the_load() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    loader = Loader(seconds=5)
    waiter = asyncio.create_task(cache.get_or_set("k", loader, "k"))
    await asyncio.sleep(1)
    await cache.set("k", "newer")
    assert await waiter == "loaded k #1"  # the caller still gets the load's value
    assert await cache.get("k") == "newer"


@pytest.mark.parametrize("removal", ["delete", "clear"])
async def test_a_removal_during_a_load_keeps_the_result_out(removal: str) -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    loader = Loader(seconds=5)
    waiter = asyncio.create_task(cache.get_or_set("k", loader, "k"))
    await asyncio.sleep(1)
    if removal == "delete":
        assert await cache.delete("k") is False
    else:
        await cache.clear()
    assert await waiter == "loaded k #1"
    assert "k" not in cache


# -- negative caching -------------------------------------------------------------------


async def test_negative_ttl_remembers_a_failure() -> None:
    cache = AsyncCache(max_size=10, ttl=60, negative_ttl=5)
    error = ConnectionError("api down")
    loader = Loader(seconds=1, error=error)
    with pytest.raises(ConnectionError) as first:
        await cache.get_or_set("k", loader, "k")
    assert first.value is error
    await asyncio.sleep(4.999)  # the failure was cached at t=1: it lives until t=6
    depths = []
    for _ in range(3):
        with pytest.raises(ConnectionError) as again:
            await cache.get_or_set("k", loader, "k")
        assert again.value is error
        depths.append(traceback_depth(again.value))
    assert loader.calls == 1
    assert depths[0] == depths[1] == depths[2]  # re-raising does not grow the traceback
    assert await cache.get("k") is None  # get() never sees a failure
    await asyncio.sleep(0.001)
    loader.error = None
    assert await cache.get_or_set("k", loader, "k") == "loaded k #2"
    stats = cache.statistics()
    assert (stats.negative_hits, stats.load_failures, stats.loads) == (3, 1, 2)


async def test_a_cached_failure_is_forgotten_by_set_and_delete() -> None:
    cache = AsyncCache(max_size=10, ttl=60, negative_ttl=60)
    loader = Loader(seconds=1, error=ValueError("bad"))
    for forget in ("set", "delete"):
        with pytest.raises(ValueError, match="bad"):
            await cache.get_or_set("k", loader, "k")
        if forget == "set":
            await cache.set("k", "manual")
            assert await cache.get_or_set("k", loader, "k") == "manual"
            await cache.delete("k")
        else:
            await cache.delete("k")
            loader.error = None
            assert await cache.get_or_set("k", loader, "k") == "loaded k #3"
    assert loader.calls == 3


async def test_negative_ttl_is_off_by_default() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    loader = Loader(seconds=0, error=ValueError("bad"))
    for _ in range(3):
        with pytest.raises(ValueError, match="bad"):
            await cache.get_or_set("k", loader, "k")
    assert loader.calls == 3


# -- serializers ---------------------------------------------------------------------------


async def test_json_serializer_stores_bytes_and_returns_copies() -> None:
    cache = AsyncCache(max_size=10, ttl=60, serializer=JSONSerializer())
    value = {"tags": ["a"]}
    await cache.set("k", value)
    assert cache._store["k"] == b'{"tags":["a"]}'
    got = await cache.get("k")
    assert got == value
    assert got is not value
    got["tags"].append("b")
    assert await cache.get("k") == {"tags": ["a"]}
    assert await cache.get_or_set("k2", Loader(), "x") == "loaded x #1"
    assert cache._store["k2"] == b'"loaded x #1"'


class PassThroughBytes:
    """JSON for values, raw bytes stored as they are: lets a test store corrupt bytes."""

    def dumps(self, value: Any) -> bytes:
        return value if isinstance(value, bytes) else JSONSerializer().dumps(value)

    def loads(self, data: bytes) -> Any:
        return JSONSerializer().loads(data)


async def test_bytes_that_fail_to_decode_are_a_miss_and_are_deleted() -> None:
    cache = AsyncCache(max_size=10, ttl=60, serializer=PassThroughBytes())
    await cache.set("good", [1, 2])
    await cache.set("bad", b"\xff not json")
    assert await cache.get("good") == [1, 2]
    assert await cache.get("bad", "default") == "default"
    assert "bad" not in cache
    assert await cache.get_or_set("bad", Loader(seconds=0), "bad") == "loaded bad #1"
    stats = cache.statistics()
    assert (stats.decode_failures, stats.misses, stats.hits) == (1, 2, 1)


async def test_a_serializer_must_return_bytes() -> None:
    class Text:
        def dumps(self, value: Any) -> bytes:
            return str(value)  # type: ignore[return-value]  # the misuse under test

        def loads(self, data: bytes) -> Any:
            return data

    cache = AsyncCache(max_size=10, ttl=60, serializer=Text())
    with pytest.raises(TypeError, match=r"serializer\.dumps must return bytes, got str"):
        await cache.set("k", 1)
    assert "k" not in cache


# -- misuse --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_size": 0}, "max_size must be a positive int, got 0"),
        ({"max_size": -5}, "max_size must be a positive int, got -5"),
        ({"max_size": 1.5}, "max_size must be a positive int, got 1.5"),
        ({"max_size": True}, "max_size must be a positive int, got True"),
        ({"ttl": 0}, "ttl must be a positive number of seconds or None, got 0"),
        ({"ttl": -1}, "ttl must be a positive number of seconds or None, got -1"),
        ({"ttl": math.nan}, "ttl must be a positive number of seconds or None, got nan"),
        ({"ttl": "60"}, "ttl must be a positive number of seconds or None, got '60'"),
        (
            {"negative_ttl": -1},
            "negative_ttl must be a positive number of seconds or None, got -1",
        ),
        ({"negative_ttl": 0}, "negative_ttl must be a positive number of seconds or None, got 0"),
    ],
)
def test_bad_configuration_is_rejected_at_construction(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        AsyncCache(**kwargs)
    assert str(raised.value) == message
    assert raised.value.field == next(iter(kwargs))


def test_bad_serializer_and_clock_are_type_errors() -> None:
    with pytest.raises(TypeError, match="serializer must have dumps"):
        AsyncCache(serializer=object())  # type: ignore[arg-type]  # the misuse under test
    with pytest.raises(TypeError, match="clock must be"):
        AsyncCache(clock=42)  # type: ignore[arg-type]  # the misuse under test


async def test_bad_call_arguments() -> None:
    cache = AsyncCache(max_size=10, ttl=60)
    with pytest.raises(TypeError, match="get_or_set needs an async callable as factory, got 42"):
        await cache.get_or_set("k", 42)  # type: ignore[arg-type]  # the misuse under test
    with pytest.raises(ConfigurationError, match="ttl must be a positive number of seconds, got 0"):
        await cache.set("k", 1, ttl=0)
    with pytest.raises(
        ConfigurationError, match="ttl must be a positive number of seconds, got -2"
    ):
        await cache.get_or_set("k", Loader(), "k", ttl=-2)
    lru = AsyncCache(max_size=10, ttl=None)
    with pytest.raises(ConfigurationError, match="ttl=5 per call needs a cache with expiry"):
        await lru.set("k", 1, ttl=5)
    assert "k" not in cache
    assert "k" not in lru


@pytest.mark.parametrize("ttl", [60.0, None])
async def test_an_unhashable_key_is_a_type_error_naming_its_type(ttl: float | None) -> None:
    cache = AsyncCache(max_size=10, ttl=ttl)
    key: Any = ["not", "hashable"]
    message = "cache keys must be hashable, got list"
    with pytest.raises(TypeError, match=message):
        await cache.get(key)
    with pytest.raises(TypeError, match=message):
        await cache.set(key, 1)
    with pytest.raises(TypeError, match=message):
        await cache.delete(key)
    with pytest.raises(TypeError, match=message):
        await cache.contains(key)
    with pytest.raises(TypeError, match=message):
        _ = key in cache
    with pytest.raises(TypeError, match=message):
        await cache.get_or_set(key, Loader(), "x")
    with pytest.raises(TypeError, match="cache keys must be hashable, got dict"):
        await cache.get({})  # type: ignore[arg-type]  # the misuse under test
    assert cache.statistics().loads == 0


# -- properties -----------------------------------------------------------------------------

_operations = st.lists(
    st.tuples(
        st.sampled_from(["set", "get", "sleep"]),
        st.integers(min_value=0, max_value=6),
        st.integers(min_value=0, max_value=4),
    ),
    max_size=60,
)


@settings(max_examples=80, deadline=None)
@given(max_size=st.integers(min_value=1, max_value=5), operations=_operations)
def test_the_cache_matches_a_model_lru_with_ttl(
    max_size: int, operations: list[tuple[str, int, int]]
) -> None:
    """Against a reference model: same answers, never more than max_size entries."""
    ttl = 4

    async def main() -> None:
        cache = AsyncCache(max_size=max_size, ttl=ttl)
        model: dict[int, tuple[int, float]] = {}  # key -> (value, expires), in LRU order

        def expire_model() -> None:
            t = now()
            for k in [k for k, (_, expires) in model.items() if expires <= t]:
                del model[k]

        for step, (op, key, amount) in enumerate(operations):
            expire_model()
            t = now()
            if op == "set":
                await cache.set(key, step)
                model.pop(key, None)
                if len(model) >= max_size:
                    del model[next(iter(model))]  # the least recently used
                model[key] = (step, t + ttl)
                # get after set (before the ttl) returns the value
                assert await cache.get(key) == step
            elif op == "get":
                expected = model.get(key)
                got = await cache.get(key, "absent")
                assert got == (expected[0] if expected else "absent")
                if expected is not None:
                    model[key] = model.pop(key)  # now the most recently used
            else:
                await asyncio.sleep(amount)
                expire_model()
            assert len(cache._store) <= max_size
            assert len(cache) == len(model)

    run_virtual(main)


@settings(max_examples=40, deadline=None)
@given(
    keys=st.lists(st.integers(min_value=0, max_value=9), min_size=1, max_size=40),
    max_size=st.integers(min_value=1, max_value=6),
)
def test_concurrent_loads_never_overfill_and_each_key_loads_once_per_burst(
    keys: list[int], max_size: int
) -> None:
    async def main() -> None:
        cache = AsyncCache(max_size=max_size, ttl=None)
        calls: dict[int, int] = {}

        async def factory(key: int) -> int:
            calls[key] = calls.get(key, 0) + 1
            await asyncio.sleep(1)
            return key * 10

        results = await asyncio.gather(*(cache.get_or_set(k, factory, k) for k in keys))
        assert results == [k * 10 for k in keys]
        assert calls == dict.fromkeys(set(keys), 1)
        assert len(cache) == min(max_size, len(set(keys)))
        stats = cache.statistics()
        assert stats.coalesced == len(keys) - len(set(keys))
        assert stats.evictions == max(0, len(set(keys)) - max_size)

    run_virtual(main)
