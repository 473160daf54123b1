"""The task queue in marble diagrams: tasks arrive on a cold observable, are put in a
queue, and the queue's ``results`` come out, to the frame (1 frame = 1 ms of loop
time)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as rx_ops
from reactivex.disposable import CompositeDisposable

from rxflows import AsyncTask, Clock, PriorityTaskQueue, TaskPriority, TaskResult
from rxflows.testing import marbles

FRAME = 0.001


async def work(frames: int, hang: bool = False) -> int:
    await asyncio.sleep((1000 if hang else frames) * FRAME)
    return frames


def job(
    name: str,
    frames: int,
    priority: TaskPriority = TaskPriority.NORMAL,
    *,
    timeout_frames: int | None = None,
    hang: bool = False,
) -> AsyncTask:
    return AsyncTask(
        work,
        args=(frames, hang),
        priority=priority,
        timeout=None if timeout_frames is None else timeout_frames * FRAME,
        name=name,
    )


def through_queue(
    workers: int, **options: Any
) -> Callable[[Observable[AsyncTask]], Observable[str]]:
    """Put every task of the source in a queue run by ``workers``; emit ``name:STATUS``
    per record; stop(drain) when the source completes, so the output completes when
    the last task is done."""

    def operator(source: Observable[AsyncTask]) -> Observable[str]:
        def subscribe(
            observer: abc.ObserverBase[str], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            queue = PriorityTaskQueue(**options)
            stopping: list[asyncio.Task[list[AsyncTask]]] = []

            def label(record: TaskResult) -> str:
                return f"{record.name}:{record.status.name}"

            out = queue.results.pipe(rx_ops.map(label)).subscribe(observer, scheduler=scheduler)
            queue.start(workers)

            def complete() -> None:
                stopping.append(asyncio.ensure_future(queue.stop()))

            upstream = source.subscribe(
                queue.put_nowait, observer.on_error, complete, scheduler=scheduler
            )
            return CompositeDisposable(out, upstream)

        return reactivex.create(subscribe)

    return operator


def test_higher_priority_goes_first_when_the_worker_frees() -> None:
    with marbles() as m:
        tasks = m.cold(
            "abc|",
            {
                "a": job("a", 3),
                "b": job("b", 1, TaskPriority.LOW),
                "c": job("c", 1, TaskPriority.CRITICAL),
            },
        )
        # a runs 0-3; then c (CRITICAL) before b (LOW), though b came first
        m.expect(tasks.pipe(through_queue(1))).to_be(
            "---ac(b|)", {"a": "a:SUCCEEDED", "b": "b:SUCCEEDED", "c": "c:SUCCEEDED"}
        )


def test_two_workers_fifo_among_equals() -> None:
    with marbles() as m:
        tasks = m.cold("(abcd|)", {k: job(k, 4) for k in "abcd"})
        m.expect(tasks.pipe(through_queue(2))).to_be(
            "----(ab)(cd|)", {k: f"{k}:SUCCEEDED" for k in "abcd"}
        )


def test_a_timeout_ends_the_task_at_its_frame() -> None:
    with marbles() as m:
        tasks = m.cold(
            "a-b|",
            {"a": job("a", 0, timeout_frames=3, hang=True), "b": job("b", 1)},
        )
        # a times out at 3; b (queued at 2) runs 3-4
        m.expect(tasks.pipe(through_queue(1))).to_be(
            "---a(b|)", {"a": "a:TIMED_OUT", "b": "b:SUCCEEDED"}
        )


def test_timeouts_on_the_marble_scheduler_as_clock() -> None:
    with marbles() as m:
        clock: Clock | abc.SchedulerBase = m.scheduler
        tasks = m.cold(
            "(ab)|",
            {"a": job("a", 0, timeout_frames=4, hang=True), "b": job("b", 6, timeout_frames=9)},
        )
        m.expect(tasks.pipe(through_queue(2, clock=clock))).to_be(
            "----a-(b|)", {"a": "a:TIMED_OUT", "b": "b:SUCCEEDED"}
        )


def test_aging_lets_an_old_low_task_through() -> None:
    with marbles() as m:
        # one worker busy with x for 6 frames; LOW l waits from 1; HIGH h arrives at 5.
        # aging 1 frame per level: at 5, l is at 1 + 4 = 5 > h's 3: l goes first
        tasks = m.cold(
            "xl---h|",
            {
                "x": job("x", 6),
                "l": job("l", 1, TaskPriority.LOW),
                "h": job("h", 1, TaskPriority.HIGH),
            },
        )
        m.expect(tasks.pipe(through_queue(1, aging_interval=FRAME))).to_be(
            "------xl(h|)", {k: f"{k}:SUCCEEDED" for k in "xlh"}
        )


def test_without_aging_the_high_task_overtakes() -> None:
    with marbles() as m:
        tasks = m.cold(
            "xl---h|",
            {
                "x": job("x", 6),
                "l": job("l", 1, TaskPriority.LOW),
                "h": job("h", 1, TaskPriority.HIGH),
            },
        )
        m.expect(tasks.pipe(through_queue(1))).to_be(
            "------xh(l|)", {k: f"{k}:SUCCEEDED" for k in "xlh"}
        )


def test_records_carry_frame_exact_times() -> None:
    records: list[TaskResult] = []
    with marbles() as m:
        queue = PriorityTaskQueue()
        tasks = m.cold("a-b|", {"a": job("a", 2), "b": job("b", 3)})

        stopping: list[asyncio.Future[list[AsyncTask]]] = []

        def subscribe(
            observer: abc.ObserverBase[TaskResult], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            queue.results.subscribe(records.append)
            queue.start(1)
            return tasks.subscribe(
                queue.put_nowait,
                observer.on_error,
                lambda: stopping.append(asyncio.ensure_future(queue.stop())),
                scheduler=scheduler,
            )

        m.run(reactivex.create(subscribe))
    times = [
        (r.name, round(r.queued_at / FRAME), round((r.started_at or 0) / FRAME)) for r in records
    ]
    start = times[0][1]
    assert [(n, q - start, s - start) for n, q, s in times] == [("a", 0, 0), ("b", 2, 2)]
    assert [round((r.finished_at - records[0].queued_at) / FRAME) for r in records] == [2, 5]
