"""AsyncCache: TTL and LRU, single-flight loads, statistics, and the Rx operator.

``python examples/cache.py``. Ten concurrent lookups of a missing key make one
call to the slow API (``get_or_set`` shares the load); a hit is immediate; an entry
expires after its TTL; ``ops.cache`` serves an observable from the same cache.
"""

from __future__ import annotations

import asyncio

import rxflows
from rxflows import AsyncCache, AsyncEventLoopManager, create_async_flow_config
from rxflows import operators as ops


class MetadataAPI:
    def __init__(self) -> None:
        self.calls = 0

    async def fetch(self, url: str) -> dict[str, object]:
        self.calls += 1
        await asyncio.sleep(0.05)  # a slow API
        return {"url": url, "duration": 61.5}


async def main() -> None:
    api = MetadataAPI()
    cache = AsyncCache(max_size=2, ttl=0.2)
    url = "https://cdn.example.test/talk.mp4"

    results = await asyncio.gather(*(cache.get_or_set(url, api.fetch, url) for _ in range(10)))
    same = all(result == results[0] for result in results)
    print(f"10 concurrent lookups, {api.calls} API call; all equal: {same}")

    await cache.get_or_set(url, api.fetch, url)
    print(f"a hit: still {api.calls} API call")

    await asyncio.sleep(0.25)  # past the TTL
    await cache.get_or_set(url, api.fetch, url)
    print(f"after the TTL: {api.calls} API calls")

    for name in ("a.mp4", "b.mp4"):  # max_size=2: the least recently used entry goes
        await cache.set(name, {"url": name})
    print(f"{url} still cached after two more entries: {await cache.contains(url)}")

    info = rxflows.from_async(api.fetch, "c.mp4").pipe(ops.cache(cache, "c.mp4"))
    first, second = await rxflows.collect(info), await rxflows.collect(info)
    print(f"ops.cache: {first == second}, {api.calls} API calls in all")

    stats = cache.statistics()
    print(f"hits {stats.hits}, misses {stats.misses}, evictions {stats.evictions}")


if __name__ == "__main__":
    AsyncEventLoopManager(create_async_flow_config()).run(main())
