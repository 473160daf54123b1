"""Resilience in one screen: a flaky metadata API behind a cache, a retry and a breaker.

Run it with ``python examples/resilience.py``. The "API" fails for a while, then
recovers; watch the breaker open, reject calls without touching the API, let a trial
through and close again, while the cache answers repeated lookups at once. The clock
is the loop's, so under ``rxflows.testing.VirtualTimeLoop`` the same script runs in no
time (the test suite does that).
"""

from __future__ import annotations

import asyncio

from rxflows import (
    AsyncCache,
    AsyncEventLoopManager,
    CircuitBreaker,
    CircuitOpenError,
    async_retry,
    create_async_flow_config,
)


class FlakyMetadataAPI:
    """Fails every request between ``down_from`` and ``down_until`` (loop time, seconds)."""

    def __init__(self, down_from: float, down_until: float) -> None:
        self.down_from = down_from
        self.down_until = down_until
        self.requests = 0

    async def fetch(self, url: str) -> dict[str, object]:
        self.requests += 1
        await asyncio.sleep(0.05)  # network latency
        now = asyncio.get_running_loop().time()
        if self.down_from <= now < self.down_until:
            raise ConnectionError(f"metadata API unreachable for {url}")
        return {"url": url, "duration": 61.5, "fps": 30}


async def main() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    api = FlakyMetadataAPI(down_from=start + 0.2, down_until=start + 1.2)
    breaker = CircuitBreaker(failure_threshold=3, timeout=0.5, name="metadata-api")
    cache = AsyncCache(max_size=100, ttl=0.35)

    @async_retry(max_attempts=2, delay=0.05, retry_on=(ConnectionError,))
    async def fetch_with_retry(url: str) -> dict[str, object]:
        return await breaker.call(api.fetch, url)

    async def metadata(url: str) -> dict[str, object]:
        info: dict[str, object] = await cache.get_or_set(url, fetch_with_retry, url)
        return info

    def stamp() -> str:
        return f"[{loop.time() - start:4.2f}s]"

    for step in range(16):
        url = f"video{(step // 2) % 3}.mp4"  # each video asked for twice in a row
        try:
            info = await metadata(url)
            outcome = f"ok {info['url']}"
        except CircuitOpenError as error:
            wait = "?" if error.retry_after is None else f"{error.retry_after:.2f}s"
            outcome = f"rejected by {error.name} (retry after {wait})"
        except ConnectionError as error:
            outcome = f"failed: {error}"
        print(f"{stamp()} {url}: {outcome:55} breaker={breaker.state.name}")
        await asyncio.sleep(0.1)

    stats = breaker.statistics()
    cached = cache.statistics()
    print(
        f"\nAPI requests: {api.requests}; breaker: {stats.calls} calls, {stats.failures} failed, "
        f"{stats.rejected} rejected, opened {stats.opened_count} time(s); "
        f"cache: {cached.hits} hits, {cached.misses} misses"
    )


if __name__ == "__main__":
    AsyncEventLoopManager(create_async_flow_config()).run(main())
