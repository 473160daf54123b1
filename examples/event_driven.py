"""The guide's "Event-Driven Video Processing": stages that talk only through a bus.

``python examples/event_driven.py``. Each stage is a handler: ``video_ready``
triggers processing, ``processing_complete`` triggers the upload, ``error``
triggers recovery. Handlers get their events in order through bounded mailboxes;
a handler that raises does not stop the others (its failure goes to the
dead-letter topic). ``drain()`` waits until every event, including the ones the
handlers published in turn, has been handled.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from rxflows import (
    DEAD_LETTER_TOPIC,
    AsyncEventBus,
    AsyncEventLoopManager,
    DeadLetter,
    create_async_event_bus,
    create_async_flow_config,
)

VIDEOS = {
    "talk.mp4": b"frame-data " * 4000,
    "keynote.mp4": b"more frame data " * 3000,
    "corrupt.mp4": b"",  # fails in processing
}


async def process_video_with_events(url: str, event_bus: AsyncEventBus) -> None:
    """The guide's entry point: announce a video; the handlers do the rest."""
    await event_bus.publish("video_ready", {"url": url, "size": len(VIDEOS[url])})


async def event_driven_video_processing() -> list[str]:
    event_bus = create_async_event_bus()
    log: list[str] = []

    # Setup event handlers
    async def handle_video_ready(data: dict[str, Any]) -> None:
        print(f"Video ready for processing: {data}")
        # Trigger processing pipeline
        url = data["url"]
        payload = VIDEOS[url]
        if not payload:
            await event_bus.publish("error", {"url": url, "error": "empty video"})
            return
        compressed = await asyncio.to_thread(zlib.compress, payload, 9)
        await event_bus.publish("processing_complete", {"url": url, "bytes": len(compressed)})

    async def handle_processing_complete(data: dict[str, Any]) -> None:
        print(f"Processing complete: {data}")
        # Trigger upload
        await asyncio.sleep(0.01)  # the upload
        log.append(f"uploaded {data['url']} ({data['bytes']} bytes)")

    async def handle_error(data: dict[str, Any]) -> None:
        print(f"Error occurred: {data}")
        # Trigger error recovery
        log.append(f"quarantined {data['url']}: {data['error']}")

    async def audit(data: dict[str, Any]) -> None:
        raise RuntimeError("the audit service is down")  # isolated: goes to dead letters

    async def handle_dead_letter(letter: DeadLetter) -> None:
        log.append(f"dead letter from {letter.event}: {letter.error!r}")

    await event_bus.subscribe("video_ready", handle_video_ready)
    await event_bus.subscribe("processing_complete", handle_processing_complete)
    await event_bus.subscribe("error", handle_error)
    await event_bus.subscribe("processing_complete", audit)
    await event_bus.subscribe(DEAD_LETTER_TOPIC, handle_dead_letter)

    # Start processing
    for url in VIDEOS:
        await process_video_with_events(url, event_bus)
    await event_bus.drain()  # every event handled, including those published by handlers
    stats = event_bus.statistics()
    await event_bus.aclose()
    log.append(f"bus: {stats.published} events published")
    return log


async def main() -> None:
    for line in await event_driven_video_processing():
        print(line)


if __name__ == "__main__":
    AsyncEventLoopManager(create_async_flow_config()).run(main())
