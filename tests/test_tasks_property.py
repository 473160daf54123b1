"""The task queue's central promise, as a property: every task put ends in exactly one
record, whatever happens (priorities, failures, timeouts, retries, cancellations, a
full queue, aging, batch or service mode, stop with or without drain)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from rxflows import (
    AsyncTask,
    PriorityTaskQueue,
    QueueClosedError,
    TaskPriority,
    TaskResult,
    TaskStatus,
)
from tests.support import run_virtual

BEHAVIOURS = ("ok", "fail", "hang", "swallow")
MODES = ("batch", "drain", "no-drain", "cancel-running", "aclose", "drain-deadline")


@dataclass(frozen=True)
class Spec:
    priority: TaskPriority
    behaviour: str
    seconds: int
    timeout: int | None
    retries: int
    cancel_at: int | None
    put_at: int


specs = st.builds(
    Spec,
    priority=st.sampled_from(TaskPriority),
    behaviour=st.sampled_from(BEHAVIOURS),
    seconds=st.integers(0, 5),
    timeout=st.none() | st.integers(1, 4),
    retries=st.integers(0, 2),
    cancel_at=st.none() | st.integers(0, 12),
    put_at=st.integers(0, 6),
)


async def behave(spec: Spec) -> str:
    if spec.behaviour == "hang":
        await asyncio.sleep(1000)
    elif spec.behaviour == "swallow":
        try:
            await asyncio.sleep(spec.seconds)
        except asyncio.CancelledError:
            return "swallowed"
    else:
        await asyncio.sleep(spec.seconds)
    if spec.behaviour == "fail":
        raise RuntimeError("failed")
    return "ok"


@settings(max_examples=120, deadline=None)
@given(
    plan=st.lists(specs, max_size=14),
    mode=st.sampled_from(MODES),
    workers=st.integers(1, 4),
    maxsize=st.sampled_from([0, 3]),
    aging=st.sampled_from([None, 2.0]),
    stop_at=st.integers(0, 10),
)
def test_every_accepted_task_ends_in_exactly_one_record(
    plan: list[Spec],
    mode: str,
    workers: int,
    maxsize: int,
    aging: float | None,
    stop_at: int,
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        queue = PriorityTaskQueue(maxsize, aging_interval=aging)
        seen: list[TaskResult] = []
        completed: list[bool] = []
        queue.results.subscribe(seen.append, on_completed=lambda: completed.append(True))
        tasks = {
            f"t{i}": AsyncTask(
                behave,
                args=(spec,),
                priority=spec.priority,
                timeout=spec.timeout,
                retries=spec.retries,
                task_id=f"t{i}",
            )
            for i, spec in enumerate(plan)
        }
        accepted: set[str] = set()
        for task_id, spec in zip(tasks, plan, strict=True):
            if spec.cancel_at is not None:
                loop.call_later(spec.cancel_at, queue.cancel, task_id)

        withdrawn: list[AsyncTask] = []
        if mode == "batch":
            for task_id, task in tasks.items():
                if maxsize and queue.full():
                    break
                queue.put_nowait(task)
                accepted.add(task_id)
            returned = await queue.process_tasks(max_workers=workers)
            assert sorted(r.task_id for r in returned) == sorted(r.task_id for r in seen)
            assert (queue.qsize(), queue.running) == (0, 0)
        else:

            async def produce() -> None:
                start = loop.time()
                order = sorted(zip(tasks, plan, strict=True), key=lambda item: item[1].put_at)
                for task_id, spec in order:
                    await asyncio.sleep(max(0.0, start + spec.put_at - loop.time()))
                    try:
                        await queue.put(tasks[task_id])
                    except QueueClosedError:
                        return
                    accepted.add(task_id)

            queue.start(workers)
            producer = asyncio.create_task(produce())
            await asyncio.sleep(stop_at)
            if mode == "drain":
                withdrawn = await queue.stop()
            elif mode == "no-drain":
                withdrawn = await queue.stop(drain=False)
            elif mode == "cancel-running":
                withdrawn = await queue.stop(drain=False, cancel_running=True)
            elif mode == "drain-deadline":  # a drain cut short: stop() is cancelled
                try:
                    async with asyncio.timeout(3):
                        withdrawn = await queue.stop()
                except TimeoutError:
                    await queue.aclose()
            else:
                await queue.aclose()
            await producer
            assert completed == [True]

        ids = [record.task_id for record in seen]
        assert sorted(ids) == sorted(accepted), "one record per accepted task, no more"
        records = {record.task_id: record for record in seen}
        for record in seen:
            spec = plan[int(record.task_id[1:])]
            assert record.priority is spec.priority
            assert record.queued_at <= record.finished_at
            if record.started_at is None:
                assert record.status is TaskStatus.CANCELLED
                assert record.attempts == 0
            else:
                assert record.queued_at <= record.started_at <= record.finished_at
                assert 1 <= record.attempts <= spec.retries + 1
            if record.status is TaskStatus.SUCCEEDED:
                assert spec.behaviour != "fail"
                if spec.behaviour == "hang":  # nothing stopped it: it slept it out
                    assert record.run_time == 1000
            elif record.status is TaskStatus.FAILED:
                assert spec.behaviour == "fail"
                assert record.attempts == spec.retries + 1
            elif record.status is TaskStatus.TIMED_OUT:
                assert spec.timeout is not None
                assert record.attempts == spec.retries + 1
        for task in withdrawn:
            record = records[task.task_id]
            assert record.status is TaskStatus.CANCELLED
            assert record.started_at is None
            assert "withdrawn" in str(record.exception)
        stats = queue.statistics()
        assert stats.done == len(seen)
        assert (stats.queued, stats.running) == (0, 0)

    run_virtual(main)
