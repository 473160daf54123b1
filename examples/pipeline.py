"""The guide's "Complete Video Processing Pipeline", runnable in a second.

``python examples/pipeline.py``. A flow manager owns every component (event bus,
metrics, HTTP pool, task queue, ...) built from one config; here its video
processor is a small stand-in that does real work on generated "videos" (it
compresses their frames with zlib in threads) instead of running ffmpeg, so the
example needs no media tools: ``make demo`` runs the real processor. The rest is
the guide's code: start, process a batch, read the metrics, shut down.
"""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

from rxflows import (
    AsyncEventLoopManager,
    AsyncFlowManager,
    ParallelFlow,
    create_async_flow_config,
    create_async_flow_manager,
)


@dataclass(frozen=True)
class ClipResult:
    source: str
    status: str
    frames: int
    compressed_bytes: int
    digest: str


class FrameCompressor:
    """A stand-in video processor: ``process_video_batch`` like the real one.

    Each "video" is 24 generated frames; each frame is compressed in a thread (real
    CPU work off the loop), timed in the manager's metrics and announced on its bus.
    """

    def __init__(self, manager: AsyncFlowManager) -> None:
        self.manager = manager
        self.config = manager.config

    async def process_video(self, url: str) -> ClipResult:
        metrics, bus = self.manager.metrics_collector, self.manager.event_bus
        async with metrics.time("process_video"):
            frames = [hashlib.sha256(f"{url}:{n}".encode()).digest() * 2048 for n in range(24)]
            compressed = await asyncio.gather(
                *(asyncio.to_thread(zlib.compress, frame, 6) for frame in frames)
            )
        result = ClipResult(
            source=url,
            status="completed",
            frames=len(frames),
            compressed_bytes=sum(len(c) for c in compressed),
            digest=hashlib.sha256(b"".join(compressed)).hexdigest()[:12],
        )
        await bus.publish("video_processed", {"url": url, "digest": result.digest})
        return result

    async def process_video_batch(self, urls: list[str]) -> list[ClipResult]:
        return await ParallelFlow(self.config).execute(
            [lambda url=url: self.process_video(url) for url in urls]  # type: ignore[misc]  # default-arg binding of the loop variable
        )

    async def aclose(self) -> None:
        """Nothing to release (the manager closes this first on shutdown)."""


async def complete_video_pipeline() -> list[ClipResult]:
    # Create async flow manager
    config = create_async_flow_config(
        max_concurrent_tasks=50, max_concurrent_connections=20, enable_metrics=True
    )
    flow_manager = create_async_flow_manager(config, video_processor_factory=FrameCompressor)
    announced: list[dict[str, Any]] = []
    try:
        # Start the manager
        await flow_manager.start()
        await flow_manager.event_bus.subscribe("video_processed", announced.append)

        # Process videos
        video_urls = ["video1.mp4", "video2.mp4", "video3.mp4"]
        results: list[ClipResult] = await flow_manager.video_processor.process_video_batch(
            video_urls
        )

        # Get metrics
        metrics = await flow_manager.metrics_collector.get_metrics()
        print(
            f"Processing completed: {metrics['successful_tasks']} videos, "
            f"success rate {metrics['success_rate']:.0%}"
        )
        return results
    finally:
        await flow_manager.shutdown()  # drains the bus: every announcement is handled
        print(f"announced on the bus: {sorted(event['url'] for event in announced)}")


async def main() -> None:
    for result in await complete_video_pipeline():
        print(
            f"{result.source}: {result.status}, {result.frames} frames -> "
            f"{result.compressed_bytes} bytes ({result.digest})"
        )


if __name__ == "__main__":
    AsyncEventLoopManager(create_async_flow_config()).run(main())
