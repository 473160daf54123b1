"""The guide's "Real-time Streaming Processing": results while new videos keep coming.

``python examples/realtime_stream.py``. A feed (standing in for a queue or an API)
announces new video URLs every few tens of milliseconds; the guide's
``video_url_stream()`` polls it, and ``StreamingFlow`` processes the URLs as they
come, at most ``max_concurrent_tasks`` at once, and hands each result over as
soon as it is ready. The stream is backpressured: the feed is polled only while
there is room, so a slow consumer never makes it pile up in memory. Each result
then goes to the next stages (upload, notification). The feed closes after 12
videos, which ends the stream.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from rxflows import (
    AsyncEventLoopManager,
    StreamingFlow,
    create_async_event_bus,
    create_async_flow_config,
)


class VideoFeed:
    """New URLs arrive in small bursts; ``get_new_video_urls`` returns what is there."""

    def __init__(self, total: int, burst: int = 3, every: float = 0.03) -> None:
        self.total, self.burst, self.every = total, burst, every
        self.published = 0
        self.polls = 0

    async def get_new_video_urls(self) -> list[str] | None:
        """The URLs published since the last poll; None once the feed is closed."""
        self.polls += 1
        if self.published >= self.total:
            return None
        await asyncio.sleep(self.every)  # the API round trip
        batch = [f"live-{n}.mp4" for n in range(self.published, self.published + self.burst)]
        self.published += len(batch)
        return batch


@dataclass(frozen=True)
class Processed:
    url: str
    thumbnail: str


async def process_video(url: str) -> Processed:
    await asyncio.sleep(0.05)  # fetching and cutting, as I/O
    return Processed(url, hashlib.md5(url.encode(), usedforsecurity=False).hexdigest()[:8])


async def real_time_streaming_processing(feed: VideoFeed) -> list[str]:
    # Create streaming processor
    config = create_async_flow_config(max_concurrent_tasks=4, stream_buffer_size=4)
    flow = StreamingFlow(config)
    bus = create_async_event_bus()
    done: list[str] = []

    async def upload_processed_video(result: Processed) -> None:
        await asyncio.sleep(0.01)

    async def send_notification(result: Processed) -> None:
        await bus.publish("video_processed", {"url": result.url, "thumb": result.thumbnail})

    await bus.subscribe("video_processed", lambda data: done.append(data["url"]))

    # Create video URL stream
    async def video_url_stream() -> AsyncIterator[str]:
        while True:
            # Get new video URLs from queue/API
            new_urls = await feed.get_new_video_urls()
            if new_urls is None:  # the feed closed (the guide's stream never ends)
                return
            for url in new_urls:
                yield url

    # Process streaming data
    async with aclosing(flow.execute(video_url_stream(), process_video)) as results:
        async for result in results:
            print(f"Processed: {result.url} -> thumbnail {result.thumbnail}")
            # Send to next stage (e.g., upload, notification)
            await upload_processed_video(result)
            await send_notification(result)
    await bus.aclose()  # delivers what is queued first
    return done


async def main() -> None:
    feed = VideoFeed(total=12)
    done = await real_time_streaming_processing(feed)
    print(f"{len(done)} videos processed and announced; the feed was polled {feed.polls} times")


if __name__ == "__main__":
    AsyncEventLoopManager(create_async_flow_config()).run(main())
