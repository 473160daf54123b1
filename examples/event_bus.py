"""The event bus: topics as observables, handlers with mailboxes, wildcards, dead letters.

``python examples/event_bus.py``. Handlers (``(data)`` or ``(event, data)``) get
their events in order; a topic is also an Rx observable (here debounced); a
``video.*`` pattern matches every video topic; a failing handler is isolated and
reported on the dead-letter topic; ``wait_for`` awaits one matching event.
"""

from __future__ import annotations

import asyncio

from reactivex import operators as rx_ops

import rxflows
from rxflows import (
    DEAD_LETTER_TOPIC,
    AsyncEventLoopManager,
    DeadLetter,
    create_async_event_bus,
    create_async_flow_config,
)


async def main() -> None:
    bus = create_async_event_bus()
    progress: list[str] = []

    async def on_any_video_event(event: str, data: dict[str, object]) -> None:
        progress.append(f"{event}:{data['id']}")

    async def fragile(data: dict[str, object]) -> None:
        if data["id"] == 2:
            raise ValueError("cannot thumbnail video 2")

    async def on_dead_letter(letter: DeadLetter) -> None:
        print(f"dead letter: {letter.event} -> {letter.error!r}")

    await bus.subscribe("video.*", on_any_video_event)
    await bus.subscribe("video.uploaded", fragile)
    await bus.subscribe(DEAD_LETTER_TOPIC, on_dead_letter)

    # a topic is an observable: the last of each burst of progress updates
    settled: list[object] = []
    bus.topic("upload.progress").pipe(
        rx_ops.debounce(0.05, scheduler=rxflows.loop_scheduler())
    ).subscribe(settled.append)

    waiter = bus.wait_for("video.uploaded", lambda data: data["id"] == 3, timeout=5)
    for video_id in (1, 2, 3):
        await bus.publish("video.started", {"id": video_id})
        for percent in (25, 50, 100):
            await bus.publish("upload.progress", {"id": video_id, "percent": percent})
        await asyncio.sleep(0.1)  # a quiet moment: the debounce lets the last one through
        await bus.publish("video.uploaded", {"id": video_id})
    third = await waiter
    await bus.drain()
    print(f"waited for: {third}")
    print(f"handled in order: {progress}")
    print(f"settled progress: {[(p['id'], p['percent']) for p in settled]}")  # type: ignore[index]  # the payloads are dicts
    stats = bus.statistics()
    print(f"published {stats.published}, delivered {stats.delivered}, failed {stats.failed}")
    await bus.aclose()


if __name__ == "__main__":
    AsyncEventLoopManager(create_async_flow_config()).run(main())
