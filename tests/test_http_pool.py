"""HTTPConnectionPool against a real aiohttp server started on 127.0.0.1 by the test.

These run on a real-clock loop (``real_time``): sockets and virtual time do not mix.
Slow responses are made deterministic with events the test sets, not sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from yarl import URL

from rxflows import (
    CircuitBreaker,
    CircuitOpenError,
    ConfigurationError,
    HTTPConnectionPool,
    PoolClosedError,
    PoolState,
    ResponseTooLargeError,
    RetryPolicy,
    UnsafeURLError,
)

pytestmark = pytest.mark.real_time


@dataclass
class Server:
    url: str
    in_flight: int = 0
    peak: int = 0
    ports: set[int] = field(default_factory=set)
    hits: dict[str, int] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    fail_times: int = 0
    three_in_flight: asyncio.Event = field(default_factory=asyncio.Event)


def listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(url="")

    def track(request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            state.ports.add(peer[1])
        state.hits[request.path] = state.hits.get(request.path, 0) + 1

    async def small(request: web.Request) -> web.Response:
        track(request)
        return web.Response(body=b"ok:" + request.path.encode())

    async def held(request: web.Request) -> web.Response:
        track(request)
        state.in_flight += 1
        state.peak = max(state.peak, state.in_flight)
        if state.in_flight >= 3:
            state.three_in_flight.set()
        state.arrived.set()
        try:
            await state.release.wait()
        finally:
            state.in_flight -= 1
        return web.Response(body=b"done")

    async def flaky(request: web.Request) -> web.Response:
        track(request)
        if state.fail_times > 0:
            state.fail_times -= 1
            return web.Response(status=503, body=b"busy")
        return web.Response(body=b"recovered")

    async def error(request: web.Request) -> web.Response:
        track(request)
        return web.Response(status=500, body=b"boom")

    async def big(request: web.Request) -> web.Response:
        track(request)
        return web.Response(body=b"x" * 300_000)

    async def chunked(request: web.Request) -> web.StreamResponse:
        track(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(30):
            await response.write(b"y" * 10_000)
        await response.write_eof()
        return response

    async def drop(request: web.Request) -> web.StreamResponse:
        track(request)
        response = web.StreamResponse(headers={"Content-Length": "100000"})
        await response.prepare(request)
        await response.write(b"z" * 1000)
        assert request.transport is not None
        request.transport.close()
        return response

    async def stall(request: web.Request) -> web.StreamResponse:
        track(request)
        response = web.StreamResponse(headers={"Content-Length": "5000000"})
        await response.prepare(request)
        await response.write(b"s" * 1_200_000)
        state.arrived.set()
        await state.release.wait()
        return response

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://localhost:1/elsewhere")

    app = web.Application()
    app.router.add_get("/small/{n}", small)
    app.router.add_get("/held", held)
    app.router.add_get("/flaky", flaky)
    app.router.add_get("/error", error)
    app.router.add_get("/big", big)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/drop", drop)
    app.router.add_get("/stall", stall)
    app.router.add_get("/redirect", redirect)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert runner.addresses
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


async def test_guide_example_relative_urls_and_reuse(server: Server) -> None:
    http_pool = HTTPConnectionPool(server.url, max_connections=50)

    async def download_video(url: str) -> bytes:
        async with http_pool.get_connection() as session, session.get(url) as response:
            if response.status == 200:
                return await response.read()
            raise Exception(f"HTTP {response.status}")  # the guide's code

    for _ in range(3):  # sequential requests reuse one keep-alive connection
        assert await download_video("small/1") == b"ok:/small/1"
    assert len(server.ports) == 1
    urls = ["small/video1.mp4", "small/video2.mp4", "small/video3.mp4"]
    results = await asyncio.gather(*(download_video(url) for url in urls))
    assert results == [b"ok:/" + u.encode() for u in urls]
    await http_pool.close()
    await http_pool.close()  # idempotent
    assert http_pool.state is PoolState.CLOSED
    with pytest.raises(PoolClosedError):
        async with http_pool.get_connection():
            pass


async def test_concurrency_limit_observed_server_side(server: Server) -> None:
    pool = HTTPConnectionPool(server.url, max_connections=3)

    async def one() -> bytes:
        return await pool.fetch_bytes("held")

    tasks = [asyncio.create_task(one()) for _ in range(10)]
    await server.three_in_flight.wait()
    for _ in range(5):  # give a 4th connection every chance to appear
        await asyncio.sleep(0)
    assert server.in_flight == 3
    server.release.set()
    assert await asyncio.gather(*tasks) == [b"done"] * 10
    assert server.peak == 3
    assert len(server.ports) == 3  # 10 requests, 3 connections reused
    await pool.close()


async def test_500_is_returned_or_raised_by_fetch_bytes(server: Server) -> None:
    pool = HTTPConnectionPool(server.url)
    async with pool.get_connection() as session, session.get("error") as response:
        assert response.status == 500
    with pytest.raises(aiohttp.ClientResponseError) as info:
        await pool.fetch_bytes("error")
    assert info.value.status == 500
    await pool.close()


async def test_retry_on_5xx_then_success(server: Server) -> None:
    server.fail_times = 2
    seen: list[int] = []
    policy = RetryPolicy(max_attempts=3, delay=0.001, on_retry=lambda a: seen.append(a.attempt))
    pool = HTTPConnectionPool(server.url, retry=policy)
    assert await pool.fetch_bytes("flaky") == b"recovered"
    assert server.hits["/flaky"] == 3
    assert seen == [1, 2]
    # giving up hands back the last 5xx response
    server.fail_times = 5
    async with pool.get_connection() as session, session.get("flaky") as response:
        assert response.status == 503
        assert await response.read() == b"busy"
    assert server.hits["/flaky"] == 6
    await pool.close()


async def test_breaker_per_host_opens_on_5xx(server: Server) -> None:
    made: list[str] = []

    def breaker(host: str) -> CircuitBreaker:
        made.append(host)
        return CircuitBreaker(failure_threshold=2, timeout=60, name=host)

    pool = HTTPConnectionPool(server.url, breaker=breaker)
    for _ in range(2):
        async with pool.get_connection() as session, session.get("error") as response:
            assert response.status == 500
    with pytest.raises(CircuitOpenError):
        await pool.fetch_bytes("small/1")
    assert server.hits["/error"] == 2
    assert "/small/1" not in server.hits
    assert made == [made[0]]
    assert list(pool.breakers) == made
    await pool.close()


async def test_read_timeout(server: Server) -> None:
    pool = HTTPConnectionPool(server.url, timeout=aiohttp.ClientTimeout(total=5, sock_read=0.05))
    with pytest.raises(asyncio.TimeoutError):
        await pool.fetch_bytes("held")
    server.release.set()
    await pool.close()


async def test_dropped_connection_raises_payload_error(server: Server, tmp_path: Path) -> None:
    pool = HTTPConnectionPool(server.url)
    with pytest.raises(aiohttp.ClientPayloadError):
        await pool.fetch_bytes("drop")
    dest = tmp_path / "video.mp4"
    with pytest.raises(aiohttp.ClientPayloadError):
        await pool.download("drop", dest)
    assert listing(tmp_path) == []  # no partial file, no temp file
    await pool.close()


async def test_oversized_bodies(server: Server, tmp_path: Path) -> None:
    pool = HTTPConnectionPool(server.url, max_bytes=100_000)
    with pytest.raises(ResponseTooLargeError, match="max_bytes=100000") as info:
        await pool.fetch_bytes("big")  # announced by Content-Length
    assert info.value.received == 300_000
    with pytest.raises(ResponseTooLargeError) as chunked_info:
        await pool.fetch_bytes("chunked")  # counted while reading
    assert 100_000 < chunked_info.value.received <= 100_000 + 65536
    assert len(await pool.fetch_bytes("chunked", max_bytes=300_000)) == 300_000
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"old")
    with pytest.raises(ResponseTooLargeError):
        await pool.download("chunked", dest)
    assert dest.read_bytes() == b"old"  # untouched
    assert listing(tmp_path) == ["clip.mp4"]
    await pool.close()


async def test_download_atomic_with_progress(server: Server, tmp_path: Path) -> None:
    pool = HTTPConnectionPool(server.url)
    seen: list[tuple[int, int | None]] = []
    dest = tmp_path / "out.bin"
    size = await pool.download(
        "big", dest, progress=lambda got, total: seen.append((got, total)), chunk_size=50_000
    )
    assert size == 300_000
    assert dest.read_bytes() == b"x" * 300_000
    assert seen[-1] == (300_000, 300_000)
    assert [got for got, _ in seen] == sorted(got for got, _ in seen)
    assert listing(tmp_path) == ["out.bin"]
    await pool.close()


async def test_cancellation_mid_download_leaves_no_file(server: Server, tmp_path: Path) -> None:
    pool = HTTPConnectionPool(server.url)
    dest = tmp_path / "movie.mp4"
    receiving = asyncio.Event()
    task = asyncio.create_task(pool.download("stall", dest, progress=lambda *_: receiving.set()))
    await receiving.wait()
    await server.arrived.wait()
    names = listing(tmp_path)  # the temporary file exists mid-download
    assert len(names) == 1
    assert names[0].startswith(".movie.mp4.")
    assert names[0].endswith(".part")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert listing(tmp_path) == []
    assert pool.in_flight == 0
    await pool.close()


async def test_close_while_requests_in_flight(server: Server) -> None:
    pool = HTTPConnectionPool(server.url, close_timeout=0.05)
    tasks = [asyncio.create_task(pool.fetch_bytes("held")) for _ in range(3)]
    await server.three_in_flight.wait()
    await pool.close()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, aiohttp.ClientError) for r in results), results
    assert pool.in_flight == 0


async def test_close_waits_for_blocks_that_finish(server: Server) -> None:
    pool = HTTPConnectionPool(server.url, close_timeout=5)
    task = asyncio.create_task(pool.fetch_bytes("held"))
    await server.arrived.wait()
    closing = asyncio.create_task(pool.close())
    await asyncio.sleep(0.01)
    assert not closing.done()
    server.release.set()
    assert await task == b"done"
    await closing


async def test_url_safety_with_the_callers_own_request_class(server: Server) -> None:
    class Tagged(aiohttp.ClientRequest):
        made = 0

        def update_host(self, url: URL) -> None:
            Tagged.made += 1
            super().update_host(url)

    pool = HTTPConnectionPool(server.url, session_options={"request_class": Tagged})
    async with pool.get_connection() as session:
        with pytest.raises(UnsafeURLError, match="leaves the pool's origin"):
            await session.get("redirect")
        async with session.get("small/1") as response:
            assert response.status == 200
    assert Tagged.made >= 2  # the caller's class made the requests; the check still ran
    await pool.close()


async def test_url_safety(server: Server) -> None:
    pool = HTTPConnectionPool(server.url)
    with pytest.raises(UnsafeURLError, match="leaves the pool's origin"):
        await pool.fetch_bytes("http://example.invalid/x")
    with pytest.raises(UnsafeURLError, match="only http and https"):
        pool.resolve("ftp://example.invalid/x")
    with pytest.raises(UnsafeURLError, match="leaves the pool's origin"):
        await pool.fetch_bytes("redirect")  # a redirect to another host is refused too
    async with pool.get_connection() as session:
        with pytest.raises(UnsafeURLError):  # the raw session is guarded as well
            await session.get("http://example.invalid/")
        with pytest.raises(UnsafeURLError, match="leaves the pool's origin"):
            await session.get("redirect")  # and so are its redirects
    assert pool.resolve("small/1") == pool.resolve(f"{server.url}/small/1")
    await pool.close()
    anywhere = HTTPConnectionPool()
    with pytest.raises(UnsafeURLError, match="relative"):
        anywhere.resolve("a.mp4")
    assert await anywhere.fetch_bytes(f"{server.url}/small/2") == b"ok:/small/2"
    await anywhere.close()


def test_base_url_gets_trailing_slash() -> None:
    pool = HTTPConnectionPool("https://cdn.example.com/v1")
    assert str(pool.resolve("a.mp4")) == "https://cdn.example.com/v1/a.mp4"


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("ftp://x",), {}, "base_url must be an absolute http or https URL"),
        (("/relative",), {}, "base_url must be an absolute http or https URL"),
        (("http://x",), {"max_connections": 0}, "max_connections must be a positive int, got 0"),
        (("http://x",), {"limit_per_host": -1}, "limit_per_host must be an int >= 0"),
        (("http://x",), {"timeout": -1}, "timeout must be an aiohttp.ClientTimeout or a positive"),
        (
            ("http://x",),
            {"timeout": aiohttp.ClientTimeout(connect=-1)},
            "timeout.connect must be >= 0",
        ),
        (("http://x",), {"max_bytes": 0}, "max_bytes must be a positive int"),
        (("http://x",), {"close_timeout": -1}, "close_timeout must be"),
    ],
)
def test_bad_configuration(args: tuple[Any, ...], options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        HTTPConnectionPool(*args, **options)


def test_bad_callables() -> None:
    with pytest.raises(TypeError, match="retry must be a RetryPolicy"):
        HTTPConnectionPool("http://x", retry=3)  # type: ignore[arg-type]  # the error under test
    with pytest.raises(TypeError, match="breaker must be a callable"):
        HTTPConnectionPool("http://x", breaker=3)  # type: ignore[arg-type]  # the error under test


async def test_guide_best_practice_resource_management(server: Server) -> None:
    from rxflows import AsyncCache, create_async_event_bus

    http_pool = HTTPConnectionPool(server.url, max_connections=10)
    cache = AsyncCache(max_size=10, ttl=60)
    event_bus = create_async_event_bus()
    seen: list[object] = []

    async def handler(data: object) -> None:
        seen.append(data)

    await event_bus.subscribe("video_processed", handler)
    url = "small/clip.mp4"
    # Always use context managers for resources (the guide's code)
    async with http_pool.get_connection() as session, session.get(url) as response:
        data = await response.read()
    await cache.set(url, data)
    await event_bus.publish("video_processed", {"url": url})
    await event_bus.drain()

    # Clean up resources properly (the guide's cleanup_resources)
    async def cleanup_resources() -> None:
        await http_pool.close()
        await cache.clear()
        await event_bus.unsubscribe_all()

    await cleanup_resources()
    assert seen == [{"url": url}]
    assert http_pool.state is PoolState.CLOSED
    assert await cache.get(url) is None
    assert event_bus.statistics().subscribers == 0
    await event_bus.aclose()
