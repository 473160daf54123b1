"""``pools``: the HTTP pool vs a bare aiohttp session, and the generic pool vs a Semaphore.

What it measures, each run on a fresh default asyncio loop:

* HTTP: 10,000 small GETs (1,000 with ``--quick``) against a local aiohttp server
  on 127.0.0.1 started in the same loop (its setup is not timed), by 50
  concurrent workers, through ``HTTPConnectionPool(url, max_connections=50)``
  (``async with pool.get_connection() as session: async with session.get(...)``)
  vs a bare ``aiohttp.ClientSession(connector=TCPConnector(limit=50))``.
  **Target**: time ratio <= 1.11 (>= 0.9x the throughput). A reference row
  measures ``pool.fetch_bytes`` (size cap, status check).
* Generic pool: 100,000 sequential ``async with pool.get_connection()`` of one
  pooled connection (10,000 with ``--quick``) vs ``async with asyncio.Semaphore(10)``:
  the bookkeeping of a pool acquire/release (no target; the ns/op is reported),
  and 10 workers contending for 2 connections vs a Semaphore(2) (reference).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from rxflows import AsyncConnectionPool, HTTPConnectionPool
from rxflows._http import DEFAULT_TIMEOUT

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

NAME = "pools"
FULL_REQUESTS = 10_000
QUICK_REQUESTS = 1_000
FULL_OPS = 100_000
QUICK_OPS = 10_000
WORKERS = 50
LIMIT = 50

Client = Callable[[str, int], Awaitable[int]]


async def _serve() -> tuple[web.AppRunner, str]:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=b"hello")

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def _spread(n: int, one: Callable[[], Awaitable[int]]) -> int:
    async def worker(count: int) -> int:
        total = 0
        for _ in range(count):
            total += await one()
        return total

    share, extra = divmod(n, WORKERS)
    counts = [share + (1 if i < extra else 0) for i in range(WORKERS)]
    return sum(await asyncio.gather(*(worker(c) for c in counts)))


async def bare_session(url: str, n: int) -> int:
    """The baseline: one ClientSession with a TCPConnector(limit=50)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=LIMIT)) as session:

        async def one() -> int:
            async with session.get(url + "/hello") as response:
                return len(await response.read())

        return await _spread(n, one)


async def bare_session_same_timeouts(url: str, n: int) -> int:
    """Reference: the bare session with the pool's default timeouts (a read timeout
    re-arms a timer on every read), to separate their cost from the pool's."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=LIMIT), timeout=DEFAULT_TIMEOUT
    ) as session:

        async def one() -> int:
            async with session.get(url + "/hello") as response:
                return len(await response.read())

        return await _spread(n, one)


async def pooled_session(url: str, n: int) -> int:
    """The candidate: the guide's use of HTTPConnectionPool."""
    pool = HTTPConnectionPool(url, max_connections=LIMIT)

    async def one() -> int:
        async with pool.get_connection() as session, session.get("hello") as response:
            return len(await response.read())

    try:
        return await _spread(n, one)
    finally:
        await pool.close()


async def pooled_fetch(url: str, n: int) -> int:
    """Reference: ``pool.fetch_bytes`` (status check, size cap)."""
    pool = HTTPConnectionPool(url, max_connections=LIMIT)

    async def one() -> int:
        return len(await pool.fetch_bytes("hello"))

    try:
        return await _spread(n, one)
    finally:
        await pool.close()


def http_timed(client: Client, n: int) -> Callable[[], Sample]:
    async def main() -> Sample:
        runner, url = await _serve()
        try:
            start = time.perf_counter()
            total = await client(url, n)
            seconds = time.perf_counter() - start
        finally:
            await runner.cleanup()
        if total != 5 * n:
            raise AssertionError(f"{client.__name__}: {total} bytes for {n} requests")
        return Sample(seconds, {"req/s": n / seconds})

    return lambda: run_on_loop(main)


class _Conn:
    __slots__ = ()


async def _make() -> _Conn:
    return _Conn()


async def semaphore_ops(n: int, workers: int, limit: int) -> int:
    semaphore = asyncio.Semaphore(limit)

    async def worker(count: int) -> int:
        done = 0
        for _ in range(count):
            async with semaphore:
                if workers > 1:
                    await asyncio.sleep(0)
                done += 1
        return done

    return sum(await asyncio.gather(*(worker(n // workers) for _ in range(workers))))


async def pool_ops(n: int, workers: int, limit: int) -> int:
    pool: AsyncConnectionPool[_Conn] = AsyncConnectionPool(limit, factory=_make)

    async def worker(count: int) -> int:
        done = 0
        for _ in range(count):
            async with pool.get_connection():
                if workers > 1:
                    await asyncio.sleep(0)
                done += 1
        return done

    try:
        return sum(await asyncio.gather(*(worker(n // workers) for _ in range(workers))))
    finally:
        await pool.close()


def ops_timed(
    workload: Callable[[int, int, int], Awaitable[int]], n: int, workers: int, limit: int
) -> Callable[[], Sample]:
    async def main() -> Sample:
        start = time.perf_counter()
        total = await workload(n, workers, limit)
        seconds = time.perf_counter() - start
        if total != n:
            raise AssertionError(f"{workload.__name__}: {total} ops for {n}")
        return Sample(seconds, {"ns/op": seconds / n * 1e9})

    return lambda: run_on_loop(main)


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure every variant and build the report."""
    n = QUICK_REQUESTS if settings.quick else FULL_REQUESTS
    ops = QUICK_OPS if settings.quick else FULL_OPS
    variants = [
        Variant(
            "aiohttp",
            f"{n:,} GETs, {WORKERS} workers, bare ClientSession(TCPConnector(limit={LIMIT}))",
            http_timed(bare_session, n),
        ),
        Variant(
            "http-pool",
            f"{n:,} GETs, {WORKERS} workers, HTTPConnectionPool(max_connections={LIMIT})",
            http_timed(pooled_session, n),
        ),
        Variant(
            "aiohttp-timeouts",
            f"{n:,} GETs, {WORKERS} workers, bare ClientSession with the pool's default timeouts",
            http_timed(bare_session_same_timeouts, n),
        ),
        Variant(
            "http-fetch",
            f"{n:,} x pool.fetch_bytes, {WORKERS} workers",
            http_timed(pooled_fetch, n),
        ),
        Variant(
            "semaphore",
            f"{ops:,} x async with Semaphore(10), 1 task",
            ops_timed(semaphore_ops, ops, 1, 10),
        ),
        Variant(
            "pool",
            f"{ops:,} x async with pool.get_connection(), 1 task",
            ops_timed(pool_ops, ops, 1, 10),
        ),
        Variant(
            "semaphore-contended",
            f"{ops:,} x async with Semaphore(2) + sleep(0), 10 tasks",
            ops_timed(semaphore_ops, ops, 10, 2),
        ),
        Variant(
            "pool-contended",
            f"{ops:,} x async with get_connection() + sleep(0), max 2, 10 tasks",
            ops_timed(pool_ops, ops, 10, 2),
        ),
    ]
    specs = [
        RowSpec("baseline: bare aiohttp session", "aiohttp", "aiohttp", "baseline", items=n),
        RowSpec(
            "HTTPConnectionPool.get_connection",
            "http-pool",
            "aiohttp",
            target=Target("ratio", 1.11, "ratio <= 1.11 (>= 0.9x throughput)"),
            items=n,
            metrics=("req/s",),
        ),
        RowSpec("ref: pool.fetch_bytes", "http-fetch", "aiohttp", "reference", items=n),
        RowSpec(
            "ref: bare session, pool's timeouts",
            "aiohttp-timeouts",
            "aiohttp",
            "reference",
            items=n,
        ),
        RowSpec(
            "ref: pool / bare with the same timeouts",
            "http-pool",
            "aiohttp-timeouts",
            "reference",
            items=n,
        ),
        RowSpec(
            "baseline: Semaphore",
            "semaphore",
            "semaphore",
            "baseline",
            items=ops,
            metrics=("ns/op",),
        ),
        RowSpec("pool acquire/release", "pool", "semaphore", items=ops, metrics=("ns/op",)),
        RowSpec(
            "baseline: Semaphore contended",
            "semaphore-contended",
            "semaphore-contended",
            "baseline",
            items=ops,
            metrics=("ns/op",),
        ),
        RowSpec(
            "ref: pool contended (FIFO hand-off)",
            "pool-contended",
            "semaphore-contended",
            "reference",
            items=ops,
            metrics=("ns/op",),
        ),
    ]
    runs = measure(variants, settings, progress)
    return Report(
        name=NAME,
        title=f"HTTPConnectionPool vs bare aiohttp ({n:,} GETs); pool vs Semaphore ({ops:,} ops)",
        parameters={"requests": n, "ops": ops, "workers": WORKERS, "limit": LIMIT},
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
    )


BENCHMARK = Benchmark(
    NAME,
    "HTTPConnectionPool vs a bare aiohttp session (target: >= 0.9x throughput); "
    "pool acquire/release vs asyncio.Semaphore",
    run,
)
