"""Connection pools: an HTTP pool against a local server, and a generic bounded pool.

``python examples/pools.py``. A loopback aiohttp server plays a video CDN. The
``HTTPConnectionPool`` shares one session over a bounded connector, fetches with a
size cap and downloads atomically with progress. The generic
``AsyncConnectionPool`` bounds "database connections": 20 queries share 3
connections, reused last-in first-out, waiters served in order.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from pathlib import Path

from aiohttp import web

from rxflows import (
    AsyncConnectionPool,
    AsyncEventLoopManager,
    HTTPConnectionPool,
    ResponseTooLargeError,
    create_async_flow_config,
)

VIDEO = bytes(range(256)) * 4096  # 1 MiB


async def start_cdn() -> tuple[web.AppRunner, str]:
    async def video(request: web.Request) -> web.Response:
        return web.Response(body=VIDEO, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/videos/{name}", video)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


class FakeDB:
    ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = next(self.ids)

    async def query(self, sql: str) -> int:
        await asyncio.sleep(0.01)
        return self.id

    async def close(self) -> None:
        pass


async def open_db() -> FakeDB:
    await asyncio.sleep(0.005)  # connecting is slow: that is why we pool
    return FakeDB()


async def close_db(connection: FakeDB) -> None:
    await connection.close()


async def main() -> None:
    runner, base = await start_cdn()
    try:
        async with HTTPConnectionPool(base, max_connections=10) as http:
            bodies = await asyncio.gather(*(http.fetch_bytes(f"videos/{n}.mp4") for n in range(8)))
            print(f"8 concurrent fetches: {sum(map(len, bodies)):,} bytes")
            try:
                await http.fetch_bytes("videos/big.mp4", max_bytes=1000)
            except ResponseTooLargeError as error:
                print(f"capped: {type(error).__name__} (limit {error.limit} bytes)")
            marks: list[int] = []
            with tempfile.TemporaryDirectory() as directory:
                dest = Path(directory) / "talk.mp4"
                size = await http.download(
                    "videos/talk.mp4", dest, progress=lambda received, total: marks.append(received)
                )
                print(f"downloaded {size:,} bytes to {dest.name} in {len(marks)} progress steps")
    finally:
        await runner.cleanup()

    pool: AsyncConnectionPool[FakeDB] = AsyncConnectionPool(3, factory=open_db, dispose=close_db)

    async def run_query(n: int) -> int:
        async with pool.get_connection() as connection:
            return await connection.query(f"SELECT {n}")

    used = await asyncio.gather(*(run_query(n) for n in range(20)))
    stats = pool.statistics()
    print(
        f"20 queries on connections {sorted(set(used))}: created {stats.created}, "
        f"acquired {stats.acquired}"
    )
    await pool.close()


if __name__ == "__main__":
    AsyncEventLoopManager(create_async_flow_config()).run(main())
