"""A short tour of rxflows' six flow patterns, with readable output.

Run it with ``make demo`` (or ``python examples/demo.py``). The "work" is simulated
with short sleeps so the tour takes about two seconds; the timings show what ran
concurrently.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

from reactivex import operators as rx_ops

import rxflows
from rxflows import (
    AsyncEventLoopManager,
    FanInFlow,
    FanOutFlow,
    ParallelFlow,
    PipelineFlow,
    SequentialFlow,
    StreamingFlow,
    create_async_flow_config,
)
from rxflows import operators as ops

config = create_async_flow_config(max_concurrent_tasks=4, stream_buffer_size=4)


def now() -> float:
    """The loop clock: rxflows reads time from the loop, so a virtual clock works too."""
    return asyncio.get_running_loop().time()


class Clock:
    def __init__(self) -> None:
        self.start = now()

    def __call__(self) -> str:
        return f"{now() - self.start:5.2f}s"


async def download(url: str) -> str:
    await asyncio.sleep(0.2)
    return f"{url} (12 MB)"


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * (60 - len(title)))


async def main() -> None:
    clock = Clock()

    section("SequentialFlow: one after another")
    results = await SequentialFlow(config).execute(
        [lambda: download("intro.mp4"), lambda: download("outro.mp4")]
    )
    print(f"[{clock()}] {results}")

    section("ParallelFlow: 8 downloads, at most 4 at once")
    t0 = now()
    urls = [f"video{i}.mp4" for i in range(8)]
    downloads = [functools.partial(download, url) for url in urls]  # or lambda u=u: download(u)
    results = await ParallelFlow(config).execute(downloads)
    print(f"[{clock()}] {len(results)} done in {now() - t0:.2f}s (2 rounds of 0.2s)")
    print(f"          first: {results[0]}, last: {results[-1]}")

    section("StreamingFlow: an endless feed, consumed at our own pace")

    async def feed() -> AsyncIterator[str]:
        n = 0
        while True:  # endless: the flow pulls only when there is room
            n += 1
            yield f"upload-{n}.mp4"

    async def transcode(name: str) -> str:
        await asyncio.sleep(0.05)
        return name.replace(".mp4", ".webm")

    async for clip in StreamingFlow(config).execute(feed(), transcode, ordered=True):
        print(f"[{clock()}] {clip}")
        if clip == "upload-5.webm":
            break  # closing the stream cancels the work in flight and closes the feed

    section("PipelineFlow: download -> extract audio -> captions")

    async def extract_audio(video: str) -> str:
        await asyncio.sleep(0.05)
        return f"audio of {video}"

    async def captions(audio: str) -> str:
        await asyncio.sleep(0.05)
        return f"captions from {audio}"

    result = await PipelineFlow(config).execute("talk.mp4", [download, extract_audio, captions])
    print(f"[{clock()}] {result}")

    section("FanOutFlow: one clip, three renditions at once")

    async def render(height: int, clip: str) -> str:
        await asyncio.sleep(0.1)
        return f"{clip}@{height}p"

    renditions = await FanOutFlow(config).execute(
        "clip-1", [lambda c: render(1080, c), lambda c: render(720, c), lambda c: render(480, c)]
    )
    print(f"[{clock()}] {renditions}")

    section("FanInFlow: merge two camera feeds")

    async def camera(name: str, frames: int, every: float) -> AsyncIterator[str]:
        for i in range(frames):
            await asyncio.sleep(every)
            yield f"{name}#{i}"

    async def summarize(frames: list[str]) -> str:
        return f"{len(frames)} frames: {', '.join(frames)}"

    summary = await FanInFlow(config).execute(
        [camera("left", 3, 0.03), camera("right", 3, 0.05)], summarize
    )
    print(f"[{clock()}] {summary}")

    section("Composing with Rx: a flow's observable in a pipe")
    flow = ParallelFlow(config)

    def wanted(result: str) -> bool:
        return result.startswith(("video1", "video2"))

    big = await rxflows.collect(
        flow.observable(downloads).pipe(
            rx_ops.filter(wanted),
            ops.map_async(transcode, max_concurrent=2),
        )
    )
    print(f"[{clock()}] {sorted(big)}")


if __name__ == "__main__":
    AsyncEventLoopManager(config).run(main())
