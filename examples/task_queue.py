"""PriorityTaskQueue: priorities, FIFO among equals, timeouts, retries, one record per task.

``python examples/task_queue.py``. Two workers; the queue is filled before they
start, so the order of the records shows the priorities (CRITICAL first, then
HIGH, NORMAL, LOW; first in, first out among equals). One task times out, one
fails once and is retried, one is cancelled before it runs.
"""

from __future__ import annotations

import asyncio

from rxflows import (
    AsyncEventLoopManager,
    AsyncTask,
    PriorityTaskQueue,
    TaskPriority,
    create_async_flow_config,
)

attempts: dict[str, int] = {}


async def transcode(name: str, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return name.replace(".mp4", ".webm")


async def flaky_upload(name: str) -> str:
    attempts[name] = attempts.get(name, 0) + 1
    if attempts[name] == 1:
        raise ConnectionError("upload reset")
    return f"uploaded {name}"


async def main() -> None:
    queue = PriorityTaskQueue(maxsize=100)
    for n in range(3):
        queue.put_nowait(AsyncTask(transcode, (f"batch-{n}.mp4", 0.02), priority=TaskPriority.LOW))
    queue.put_nowait(AsyncTask(transcode, ("normal.mp4", 0.02)))
    queue.put_nowait(
        AsyncTask(transcode, ("urgent.mp4", 0.01), priority=TaskPriority.CRITICAL, task_id="urgent")
    )
    queue.put_nowait(AsyncTask(flaky_upload, ("clip.mp4",), priority=TaskPriority.HIGH, retries=1))
    queue.put_nowait(
        AsyncTask(transcode, ("stuck.mp4", 60), priority=TaskPriority.HIGH, timeout=0.05)
    )
    queue.put_nowait(AsyncTask(transcode, ("unwanted.mp4", 0.01), task_id="unwanted"))
    queue.cancel("unwanted")

    records = await queue.process_tasks(max_workers=2)
    started = sorted(
        (r for r in records if r.started_at is not None),
        key=lambda r: (r.started_at or 0.0, -r.priority.value),  # same instant: by priority
    )
    print("in the order they started (two workers):")
    for record in started:
        outcome = record.result if record.succeeded else type(record.exception).__name__
        print(f"  {record.priority.name:8} {record.name:12} {record.status.name:9} {outcome}")
    stats = queue.statistics()
    print(
        f"{stats.succeeded} succeeded, {stats.failed} failed, {stats.timed_out} timed out, "
        f"{stats.cancelled} cancelled"
    )
    await queue.aclose()


if __name__ == "__main__":
    AsyncEventLoopManager(create_async_flow_config()).run(main())
