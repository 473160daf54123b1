"""PriorityTaskQueue, AsyncTask, TaskPriority: the guide's examples, ordering, aging,
timeouts, retries, cancellation, service mode, statistics and bad input.

Async tests run on the virtual-time loop (tests/conftest.py): ``await
asyncio.sleep(60)`` returns at once with the loop clock, which the queue reads,
60 s later, so times in records are asserted exactly.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any
from unittest.mock import AsyncMock

import pytest

import rxflows
from rxflows import (
    AsyncTask,
    ClosedResourceError,
    ConfigurationError,
    PriorityTaskQueue,
    QueueBusyError,
    QueueClosedError,
    QueueEmptyError,
    QueueFullError,
    RetryPolicy,
    RxFlowsError,
    TaskPriority,
    TaskQueueState,
    TaskResult,
    TaskStatus,
    TaskTimeoutError,
    create_async_flow_config,
    loop_scheduler,
)
from tests.support import settle

LOW, NORMAL, HIGH, CRITICAL = (
    TaskPriority.LOW,
    TaskPriority.NORMAL,
    TaskPriority.HIGH,
    TaskPriority.CRITICAL,
)


def now() -> float:
    return asyncio.get_running_loop().time()


class Journal:
    """What the tasks did: (name, event, loop time)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []

    def starts(self) -> list[str]:
        return [name for name, event, _ in self.events if event == "start"]

    def at(self, name: str, event: str) -> float:
        return next(t for n, e, t in self.events if n == name and e == event)

    async def work(self, name: str, seconds: float = 0.0, result: Any = None) -> Any:
        self.events.append((name, "start", now()))
        if seconds:
            await asyncio.sleep(seconds)
        self.events.append((name, "end", now()))
        return name if result is None else result

    async def fail(self, name: str, seconds: float = 0.0) -> None:
        self.events.append((name, "start", now()))
        if seconds:
            await asyncio.sleep(seconds)
        raise ValueError(f"{name} failed")

    def task(
        self,
        name: str,
        priority: TaskPriority = NORMAL,
        seconds: float = 0.0,
        **options: Any,
    ) -> AsyncTask:
        return AsyncTask(self.work, args=(name, seconds), priority=priority, name=name, **options)


def by_id(records: list[TaskResult]) -> dict[str, TaskResult]:
    return {record.task_id: record for record in records}


# --- the guide's examples -------------------------------------------------------------------


async def process_urgent_video(path: str) -> str:
    await asyncio.sleep(5)
    return f"processed {path}"


async def process_normal_video(path: str) -> str:
    await asyncio.sleep(90)  # longer than its 60 s timeout
    return f"processed {path}"


async def test_guide_priority_task_queue_example() -> None:
    queue = PriorityTaskQueue(maxsize=1000)

    # Create tasks with different priorities
    high_priority_task = AsyncTask(
        func=process_urgent_video,
        args=("urgent_video.mp4",),
        priority=TaskPriority.HIGH,
        timeout=30.0,
    )

    normal_priority_task = AsyncTask(
        func=process_normal_video,
        args=("normal_video.mp4",),
        priority=TaskPriority.NORMAL,
        timeout=60.0,
    )

    # Add tasks to queue
    await queue.put(high_priority_task)
    await queue.put(normal_priority_task)

    # Process tasks
    records = await queue.process_tasks(max_workers=5)

    assert [r.task_id for r in records] == [
        high_priority_task.task_id,
        normal_priority_task.task_id,
    ]
    urgent, normal = records
    assert urgent.status is TaskStatus.SUCCEEDED
    assert urgent.result == "processed urgent_video.mp4"
    assert (urgent.queued_at, urgent.started_at, urgent.finished_at) == (0.0, 0.0, 5.0)
    assert normal.status is TaskStatus.TIMED_OUT
    assert normal.finished_at == 60.0  # exactly its timeout, on the loop clock
    assert isinstance(normal.exception, TaskTimeoutError)
    assert now() == 60.0
    assert queue.empty()
    assert queue.running == 0


class VideoTaskProcessor:
    def __init__(self) -> None:
        self.queue = PriorityTaskQueue()
        self.workers: list[asyncio.Task[None]] = []

    async def start_workers(self, num_workers: int = 5) -> None:
        self.workers = [asyncio.create_task(self._worker(i)) for i in range(num_workers)]

    async def _worker(self, worker_id: int) -> None:
        while True:
            try:
                task = await self.queue.get()
                print(f"Worker {worker_id} processing task: {task.task_id}")

                await self._execute_task(task)
                print(f"Worker {worker_id} completed task: {task.task_id}")

            except asyncio.CancelledError:
                break
            except Exception as e:
                print(f"Worker {worker_id} error: {e}")

    async def _execute_task(self, task: AsyncTask) -> Any:
        # Custom task execution logic
        return await task.func(*task.args, **task.kwargs)


async def test_guide_custom_task_processing(capsys: pytest.CaptureFixture[str]) -> None:
    processor = VideoTaskProcessor()
    await processor.start_workers(num_workers=2)
    journal = Journal()
    tasks = [
        journal.task("low", LOW, 1.0, task_id="low"),
        journal.task("urgent", CRITICAL, 1.0, task_id="urgent"),
        journal.task("normal", NORMAL, 1.0, task_id="normal"),
        AsyncTask(journal.fail, args=("broken",), task_id="broken"),
    ]
    for task in tasks:
        await processor.queue.put(task)
    await asyncio.sleep(10)
    out = capsys.readouterr().out.splitlines()
    # the puts did not suspend, so the woken workers took the tasks by priority
    assert journal.starts() == ["urgent", "normal", "broken", "low"]
    for name in ("low", "urgent", "normal"):
        assert any(line.endswith(f"completed task: {name}") for line in out)
    assert any(line.endswith("error: broken failed") for line in out)
    assert processor.queue.statistics().taken == 4

    for worker in processor.workers:  # the guide's workers loop until cancelled
        worker.cancel()
    await asyncio.gather(*processor.workers)
    assert all(worker.done() for worker in processor.workers)


# --- construction and bad input -----------------------------------------------------------


def test_priorities_are_ordered() -> None:
    assert TaskPriority.LOW < TaskPriority.NORMAL < TaskPriority.HIGH < TaskPriority.CRITICAL
    assert sorted([CRITICAL, LOW, HIGH, NORMAL]) == [LOW, NORMAL, HIGH, CRITICAL]


async def sample(x: int = 0, *, y: int = 0) -> int:
    return x + y


def test_task_defaults() -> None:
    task = AsyncTask(sample)
    assert task.priority is NORMAL
    assert task.args == ()
    assert dict(task.kwargs) == {}
    assert task.timeout is None
    assert task.retries == 0
    assert task.retry is None
    assert task.name == "sample"
    assert task.task_id.startswith("task-")
    assert AsyncTask(sample).task_id != task.task_id
    assert "sample" in repr(task)
    assert "NORMAL" in repr(task)


def test_task_arguments_are_copied() -> None:
    kwargs = {"y": 2}
    task = AsyncTask(sample, [1], kwargs, HIGH, 5, task_id="mine", name="adder")
    kwargs["y"] = 100
    assert task.args == (1,)
    assert task.kwargs == {"y": 2}
    assert task.timeout == 5.0
    assert isinstance(task.timeout, float)
    assert (task.task_id, task.name) == ("mine", "adder")


class Clip:
    async def cut(self, start: int) -> int:
        return start

    async def __call__(self, start: int) -> int:
        return start


@pytest.mark.parametrize(
    "func",
    [
        sample,
        Clip().cut,
        Clip(),
        functools.partial(sample, 1),
        AsyncMock(return_value=1),
        asyncio.to_thread,
    ],
    ids=["async-def", "bound-method", "async-call", "partial", "AsyncMock", "to_thread"],
)
def test_async_callables_are_accepted(func: Callable[..., Any]) -> None:
    AsyncTask(func)


def blocking_transcode(path: str) -> str:
    return path


@pytest.mark.parametrize(
    "func",
    [blocking_transcode, lambda: sample(), functools.partial(blocking_transcode, "a"), print],
    ids=["function", "lambda", "partial", "builtin"],
)
def test_a_plain_function_is_rejected_at_construction(func: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match=r"func must be an async function \(async def\)") as info:
        AsyncTask(func)
    assert "asyncio.to_thread" in str(info.value)


def test_a_non_callable_func_is_rejected() -> None:
    with pytest.raises(TypeError, match=r"func must be an async function, got 42 \(int\)"):
        AsyncTask(42)  # type: ignore[arg-type]  # the point of the test


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"priority": 3},
            r"priority must be a TaskPriority \(LOW, NORMAL, HIGH, CRITICAL\), got 3",
        ),
        ({"priority": "HIGH"}, r"priority must be a TaskPriority .*got 'HIGH'"),
        ({"timeout": -1}, r"timeout must be a positive number of seconds or None, got -1"),
        ({"timeout": 0}, r"timeout must be a positive number of seconds or None, got 0"),
        ({"timeout": float("nan")}, r"timeout must be .*got nan"),
        ({"timeout": True}, r"timeout must be .*got True"),
        ({"args": "video.mp4"}, r"args must be a tuple .*got 'video.mp4' \(str\).*args=\("),
        ({"kwargs": [("y", 1)]}, r"kwargs must be a mapping"),
        ({"retries": -1}, r"retries must be an int >= 0 .*got -1"),
        ({"retries": True}, r"retries must be an int >= 0 .*got True"),
        ({"retries": 1.5}, r"retries must be an int >= 0 .*got 1.5"),
        ({"retries": 2, "retry": RetryPolicy()}, r"give retries= or retry=, not both"),
        ({"task_id": ""}, r"task_id must be a non-empty str or None, got ''"),
        ({"task_id": 7}, r"task_id must be a non-empty str or None, got 7"),
        ({"name": 7}, r"name must be a str or None, got 7"),
    ],
)
def test_bad_task_options_raise_at_once(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        AsyncTask(sample, **options)
    assert isinstance(info.value, ValueError)
    assert info.value.field == next(iter(options))


def test_retry_must_be_a_policy() -> None:
    with pytest.raises(TypeError, match="retry must be a RetryPolicy or None, got 3"):
        AsyncTask(sample, retry=3)  # type: ignore[arg-type]  # the point of the test


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"maxsize": -1}, r"maxsize must be an int >= 0 \(0: no limit\), got -1"),
        ({"maxsize": True}, r"maxsize must be an int >= 0 .*got True"),
        ({"maxsize": 2.5}, r"maxsize must be an int >= 0 .*got 2.5"),
        ({"aging_interval": 0}, r"aging_interval must be a positive number of seconds"),
        ({"aging_interval": -5}, r"aging_interval must be a positive number .*got -5"),
        ({"config": {"task_queue_maxsize": 3}}, r"config must be an AsyncFlowConfig"),
        ({"name": 3}, r"name must be a str or None, got 3"),
    ],
)
def test_bad_queue_options_raise_at_once(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PriorityTaskQueue(**options)


def test_maxsize_defaults_to_the_config() -> None:
    assert PriorityTaskQueue().maxsize == 0
    config = create_async_flow_config(task_queue_maxsize=7)
    assert PriorityTaskQueue(config=config).maxsize == 7
    assert PriorityTaskQueue(3, config=config).maxsize == 3


@pytest.mark.parametrize("workers", [0, -1, True, 2.0])
async def test_bad_max_workers_raise_at_once(workers: Any) -> None:
    queue = PriorityTaskQueue()
    queue.put_nowait(AsyncTask(sample))
    with pytest.raises(ConfigurationError, match=r"max_workers must be a positive int, got"):
        await queue.process_tasks(max_workers=workers)
    with pytest.raises(ConfigurationError, match=r"max_workers must be a positive int, got"):
        queue.start(workers)
    assert queue.qsize() == 1


async def test_put_rejects_what_is_not_a_fresh_task() -> None:
    queue = PriorityTaskQueue()
    with pytest.raises(TypeError, match=r"put\(\) takes an AsyncTask, got 'job' \(str\)"):
        await queue.put("job")  # type: ignore[arg-type]  # the point of the test
    task = AsyncTask(sample, task_id="a")
    await queue.put(task)
    with pytest.raises(ConfigurationError, match=r"task 'a' was already put in a task queue"):
        queue.put_nowait(task)
    with pytest.raises(ConfigurationError, match=r"already put"):
        PriorityTaskQueue().put_nowait(task)
    with pytest.raises(ConfigurationError, match=r"task_id 'a' is already queued or running"):
        await queue.put(AsyncTask(sample, task_id="a"))
    assert queue.qsize() == 1


async def test_put_nowait_raises_when_full_and_put_waits_for_room() -> None:
    queue = PriorityTaskQueue(maxsize=2)
    queue.put_nowait(AsyncTask(sample, task_id="a"))
    queue.put_nowait(AsyncTask(sample, task_id="b"))
    assert queue.full()
    with pytest.raises(QueueFullError, match=r"is full \(2 tasks queued, maxsize=2\)") as info:
        queue.put_nowait(AsyncTask(sample))
    assert isinstance(info.value, asyncio.QueueFull)
    assert info.value.maxsize == 2

    putter = asyncio.create_task(queue.put(AsyncTask(sample, task_id="c")))
    await settle()
    assert not putter.done()
    await asyncio.sleep(3)
    assert (await queue.get()).task_id == "a"  # room: the waiting put goes in
    await settle()
    assert putter.done()
    assert [queue.get_nowait().task_id for _ in range(2)] == ["b", "c"]


async def test_stop_wakes_a_waiting_put_with_an_error() -> None:
    queue = PriorityTaskQueue(maxsize=1)
    queue.put_nowait(AsyncTask(sample))
    putter = asyncio.create_task(queue.put(AsyncTask(sample)))
    await settle()
    withdrawn = await queue.stop(drain=False)
    assert len(withdrawn) == 1
    with pytest.raises(QueueClosedError, match=r"put\(\): task queue .* is (STOPPING|CLOSED)"):
        await putter


async def test_put_after_stop_raises() -> None:
    queue = PriorityTaskQueue()
    await queue.stop()
    assert queue.state is TaskQueueState.CLOSED
    with pytest.raises(QueueClosedError, match=r"accepts no more tasks") as info:
        await queue.put(AsyncTask(sample))
    assert isinstance(info.value, ClosedResourceError)
    assert isinstance(info.value, RxFlowsError)
    with pytest.raises(QueueClosedError):
        queue.put_nowait(AsyncTask(sample))
    with pytest.raises(QueueClosedError):
        queue.start(1)
    with pytest.raises(QueueClosedError):
        await queue.process_tasks(1)


async def test_stop_options_are_checked() -> None:
    queue = PriorityTaskQueue()
    with pytest.raises(ConfigurationError, match=r"cancel_running=True needs drain=False"):
        await queue.stop(drain=True, cancel_running=True)
    with pytest.raises(ConfigurationError, match=r"drain must be True or False, got 'no'"):
        await queue.stop(drain="no")  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ConfigurationError, match=r"cancel_running must be True or False"):
        await queue.stop(drain=False, cancel_running=1)  # type: ignore[arg-type]  # the point
    assert queue.state is TaskQueueState.OPEN


# --- ordering ------------------------------------------------------------------------------


async def test_higher_priority_first_fifo_among_equals() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    plan = [
        ("n1", NORMAL),
        ("l1", LOW),
        ("c1", CRITICAL),
        ("n2", NORMAL),
        ("h1", HIGH),
        ("l2", LOW),
        ("c2", CRITICAL),
        ("n3", NORMAL),
        ("h2", HIGH),
    ]
    for name, priority in plan:
        await queue.put(journal.task(name, priority, 1.0))
    records = await queue.process_tasks(max_workers=1)
    expected = ["c1", "c2", "h1", "h2", "n1", "n2", "n3", "l1", "l2"]
    assert journal.starts() == expected
    assert [r.name for r in records] == expected
    assert [r.started_at for r in records] == [float(i) for i in range(9)]
    assert [r.finished_at for r in records] == [float(i + 1) for i in range(9)]
    assert all(r.queued_at == 0.0 for r in records)
    assert [r.wait_time for r in records] == [float(i) for i in range(9)]
    assert all(r.run_time == 1.0 for r in records)


async def test_get_hands_out_by_priority_and_never_compares_tasks() -> None:
    queue = PriorityTaskQueue()
    # 200 equal-priority tasks: a heap of (priority, task) would compare AsyncTasks
    for i in range(200):
        queue.put_nowait(AsyncTask(sample, task_id=f"n{i}"))
    queue.put_nowait(AsyncTask(sample, priority=LOW, task_id="low"))
    queue.put_nowait(AsyncTask(sample, priority=CRITICAL, task_id="crit"))
    taken = [(await queue.get()).task_id for _ in range(202)]
    assert taken == ["crit", *(f"n{i}" for i in range(200)), "low"]
    with pytest.raises(QueueEmptyError, match=r"is empty") as info:
        queue.get_nowait()
    assert isinstance(info.value, asyncio.QueueEmpty)


async def test_get_waits_for_a_put_and_a_cancelled_get_loses_nothing() -> None:
    queue = PriorityTaskQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await settle()
    first.cancel()
    await settle()
    await asyncio.sleep(2)
    queue.put_nowait(AsyncTask(sample, task_id="a"))
    got = await second
    assert got.task_id == "a"
    assert first.cancelled()


async def test_get_on_a_stopped_empty_queue_raises() -> None:
    queue = PriorityTaskQueue()
    getter = asyncio.create_task(queue.get())
    await settle()
    await queue.stop()
    with pytest.raises(QueueClosedError, match=r"is CLOSED and empty|is STOPPING and empty"):
        await getter
    with pytest.raises(QueueClosedError, match=r"no task will come"):
        queue.get_nowait()


# --- aging -----------------------------------------------------------------------------------


async def test_aging_lets_a_waiting_task_catch_up_exactly() -> None:
    # aging_interval=10: a LOW task put at t=0 has effective priority 1 + t/10; at
    # t=30 it equals a fresh CRITICAL (4) and goes first, being older.
    queue = PriorityTaskQueue(aging_interval=10)
    queue.put_nowait(AsyncTask(sample, priority=LOW, task_id="old-low"))
    await asyncio.sleep(29.5)
    queue.put_nowait(AsyncTask(sample, priority=CRITICAL, task_id="crit-29.5"))
    await asyncio.sleep(0.5)
    queue.put_nowait(AsyncTask(sample, priority=CRITICAL, task_id="crit-30"))
    taken = [queue.get_nowait().task_id for _ in range(3)]
    assert taken == ["crit-29.5", "old-low", "crit-30"]


async def test_aging_orders_like_effective_priorities() -> None:
    queue = PriorityTaskQueue(aging_interval=5)
    queue.put_nowait(AsyncTask(sample, priority=LOW, task_id="low@0"))  # 1 + t/5
    await asyncio.sleep(4)
    queue.put_nowait(AsyncTask(sample, priority=NORMAL, task_id="normal@4"))  # 2 + (t-4)/5
    await asyncio.sleep(2)
    queue.put_nowait(AsyncTask(sample, priority=HIGH, task_id="high@6"))  # 3 + (t-6)/5
    # at t=6: low 2.2, normal 2.4, high 3.0
    assert [queue.get_nowait().task_id for _ in range(3)] == ["high@6", "normal@4", "low@0"]


async def test_without_aging_low_waits_for_every_higher_task() -> None:
    queue = PriorityTaskQueue()
    queue.put_nowait(AsyncTask(sample, priority=LOW, task_id="low"))
    await asyncio.sleep(10_000)
    queue.put_nowait(AsyncTask(sample, priority=NORMAL, task_id="normal"))
    assert queue.get_nowait().task_id == "normal"


async def test_aging_bounds_the_wait_under_a_stream_of_higher_tasks() -> None:
    async def run(aging: float | None) -> float | None:
        journal = Journal()
        begin = now()
        queue = PriorityTaskQueue(aging_interval=aging)
        queue.put_nowait(journal.task("low", LOW, 1.0))
        queue.start(max_workers=1)
        for i in range(60):  # a HIGH task every 0.5 s, each running 1 s: never empty
            queue.put_nowait(journal.task(f"high{i}", HIGH, 1.0))
            await asyncio.sleep(0.5)
        started = next((t for n, e, t in journal.events if n == "low" and e == "start"), None)
        await queue.aclose()
        return None if started is None else started - begin

    assert await run(None) is None  # starved for the whole 30 s
    # LOW (put at 0) needs 2 levels, 10 s, to tie a fresh HIGH: HIGH tasks put before
    # t=10 are ahead of it (the one put at t=10 ties, and LOW is older), so it starts
    # once those 20 one-second tasks are done
    assert await run(aging=5.0) == 20.0


# --- timeouts --------------------------------------------------------------------------------


async def test_a_timeout_cancels_the_task_at_exactly_its_time_and_the_worker_goes_on() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    queue.put_nowait(journal.task("slow", HIGH, 60.0, timeout=30, task_id="slow"))
    queue.put_nowait(journal.task("next", NORMAL, 1.0, task_id="next"))
    records = by_id(await queue.process_tasks(max_workers=1))
    slow = records["slow"]
    assert slow.status is TaskStatus.TIMED_OUT
    assert (slow.started_at, slow.finished_at, slow.attempts) == (0.0, 30.0, 1)
    error = slow.exception
    assert isinstance(error, TaskTimeoutError)
    assert isinstance(error, TimeoutError)
    assert (error.task_id, error.timeout, error.attempt) == ("slow", 30.0, 1)
    assert "timed out after 30s" in str(error)
    assert ("slow", "end", 60.0) not in journal.events  # really cancelled
    assert records["next"].started_at == 30.0
    assert records["next"].status is TaskStatus.SUCCEEDED


async def test_a_task_that_finishes_in_time_is_not_cancelled_later() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    queue.put_nowait(journal.task("quick", NORMAL, 10.0, timeout=30))
    queue.put_nowait(journal.task("after", LOW, 40.0))
    records = await queue.process_tasks(max_workers=1)
    assert [r.status for r in records] == [TaskStatus.SUCCEEDED, TaskStatus.SUCCEEDED]
    assert records[1].finished_at == 50.0  # the quick task's timer did not hit "after"


async def test_timeouts_follow_an_injected_clock() -> None:
    # an Rx scheduler as the clock: the timeout waits on it (a watchdog, not a loop timer)
    journal = Journal()
    queue = PriorityTaskQueue(clock=loop_scheduler())
    queue.put_nowait(journal.task("slow", NORMAL, 60.0, timeout=30))
    queue.put_nowait(journal.task("quick", NORMAL, 5.0, timeout=30))
    slow, quick = await queue.process_tasks(max_workers=1)
    assert (slow.status, slow.finished_at) == (TaskStatus.TIMED_OUT, 30.0)
    assert (quick.status, quick.finished_at) == (TaskStatus.SUCCEEDED, 35.0)


async def test_a_task_that_swallows_its_timeout_keeps_its_result() -> None:
    async def stubborn() -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            return "kept going"
        return "slept"

    journal = Journal()
    queue = PriorityTaskQueue()
    queue.put_nowait(AsyncTask(stubborn, timeout=30, task_id="stubborn"))
    queue.put_nowait(journal.task("next", LOW, 5.0))
    records = await queue.process_tasks(max_workers=1)
    assert (records[0].status, records[0].result) == (TaskStatus.SUCCEEDED, "kept going")
    # the worker holds no stray cancellation: the next task runs to its end
    assert (records[1].status, records[1].finished_at) == (TaskStatus.SUCCEEDED, 35.0)


# --- failures and retries ------------------------------------------------------------------


async def test_an_exception_never_kills_a_worker() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    for i in range(3):
        queue.put_nowait(AsyncTask(journal.fail, args=(f"bad{i}", 1.0), task_id=f"bad{i}"))
    queue.put_nowait(journal.task("good", LOW, 1.0, task_id="good"))
    records = by_id(await queue.process_tasks(max_workers=1))
    for i in range(3):
        record = records[f"bad{i}"]
        assert record.status is TaskStatus.FAILED
        assert isinstance(record.exception, ValueError)
        assert str(record.exception) == f"bad{i} failed"
        with pytest.raises(ValueError, match=f"bad{i} failed"):
            record.unwrap()
    assert records["good"].status is TaskStatus.SUCCEEDED
    assert records["good"].unwrap() == "good"
    assert records["good"].succeeded


def flaky(failures: int) -> Callable[[], Any]:
    calls: list[float] = []

    async def call() -> str:
        calls.append(now())
        if len(calls) <= failures:
            raise ConnectionError(f"attempt {len(calls)}")
        return f"ok after {len(calls)}"

    call.calls = calls  # type: ignore[attr-defined]  # a probe for the test
    return call


async def test_retries_run_again_at_once_and_count_attempts() -> None:
    fn = flaky(2)
    queue = PriorityTaskQueue()
    queue.put_nowait(AsyncTask(fn, retries=2))
    (record,) = await queue.process_tasks(1)
    assert (record.status, record.result, record.attempts) == (
        TaskStatus.SUCCEEDED,
        "ok after 3",
        3,
    )

    fn = flaky(5)
    queue.put_nowait(AsyncTask(fn, retries=2))
    (record,) = await queue.process_tasks(1)
    assert (record.status, record.attempts) == (TaskStatus.FAILED, 3)
    assert str(record.exception) == "attempt 3"


async def test_a_retry_policy_backs_off_on_the_clock() -> None:
    fn = flaky(10)
    queue = PriorityTaskQueue()
    policy = RetryPolicy(max_attempts=3, delay=1.0)
    queue.put_nowait(AsyncTask(fn, retry=policy))
    (record,) = await queue.process_tasks(1)
    assert fn.calls == [0.0, 1.0, 3.0]  # type: ignore[attr-defined]  # the probe
    assert (record.status, record.attempts, record.finished_at) == (TaskStatus.FAILED, 3, 3.0)
    assert isinstance(record.exception, ConnectionError)
    assert any("gave up after 3 attempts" in note for note in record.exception.__notes__)


async def test_a_retry_policy_decides_what_is_retried() -> None:
    fn = flaky(10)
    queue = PriorityTaskQueue()
    queue.put_nowait(AsyncTask(fn, retry=RetryPolicy(max_attempts=5, retry_on=TimeoutError)))
    (record,) = await queue.process_tasks(1)
    assert (record.status, record.attempts) == (TaskStatus.FAILED, 1)


async def test_timeouts_are_retried_per_attempt() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    queue.put_nowait(journal.task("hang", NORMAL, 60.0, timeout=10, retries=2))
    (record,) = await queue.process_tasks(1)
    assert record.status is TaskStatus.TIMED_OUT
    assert (record.attempts, record.finished_at) == (3, 30.0)
    assert [t for n, e, t in journal.events if e == "start"] == [0.0, 10.0, 20.0]
    assert isinstance(record.exception, TaskTimeoutError)
    assert record.exception.attempt == 3


# --- cancellation --------------------------------------------------------------------------


async def test_cancel_a_queued_task() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    seen: list[TaskResult] = []
    queue.results.subscribe(seen.append)
    queue.put_nowait(journal.task("a", task_id="a"))
    queue.put_nowait(journal.task("b", task_id="b"))
    await asyncio.sleep(5)
    assert queue.cancel("a") is True
    assert queue.cancel("a") is False
    assert queue.cancel("unknown") is False
    assert queue.qsize() == 1
    (cancelled,) = seen
    assert (cancelled.task_id, cancelled.status) == ("a", TaskStatus.CANCELLED)
    assert (cancelled.started_at, cancelled.finished_at, cancelled.attempts) == (None, 5.0, 0)
    assert cancelled.wait_time is None
    assert cancelled.run_time is None
    assert isinstance(cancelled.exception, asyncio.CancelledError)
    assert "cancel('a') while queued" in str(cancelled.exception)
    await queue.process_tasks(1)
    assert journal.starts() == ["b"]


async def test_cancel_a_running_task_and_the_worker_goes_on() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    long = journal.task("long", HIGH, 100.0, task_id="long")
    queue.put_nowait(long)
    queue.put_nowait(journal.task("next", NORMAL, 1.0, task_id="next"))
    processing = asyncio.create_task(queue.process_tasks(1))
    await asyncio.sleep(7)
    assert queue.running == 1
    assert queue.cancel(long) is True
    records = by_id(await processing)
    assert records["long"].status is TaskStatus.CANCELLED
    assert records["long"].finished_at == 7.0
    assert "cancel('long') while running" in str(records["long"].exception)
    assert (records["next"].started_at, records["next"].finished_at) == (7.0, 8.0)
    assert queue.cancel("long") is False


async def test_cancel_reaches_a_task_waiting_to_retry() -> None:
    fn = flaky(10)
    queue = PriorityTaskQueue()
    queue.put_nowait(AsyncTask(fn, retry=RetryPolicy(max_attempts=5, delay=10), task_id="r"))
    processing = asyncio.create_task(queue.process_tasks(1))
    await asyncio.sleep(5)  # in the back-off after the first attempt
    assert queue.cancel("r") is True
    (record,) = await processing
    assert (record.status, record.attempts, record.finished_at) == (TaskStatus.CANCELLED, 1, 5.0)


async def test_a_coroutine_that_raises_cancelled_itself_is_recorded_cancelled() -> None:
    async def gives_up() -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.cancel()
        await future

    journal = Journal()
    queue = PriorityTaskQueue()
    queue.put_nowait(AsyncTask(gives_up, task_id="x"))
    queue.put_nowait(journal.task("next", LOW, 1.0))
    records = await queue.process_tasks(1)
    assert [r.status for r in records] == [TaskStatus.CANCELLED, TaskStatus.SUCCEEDED]
    assert "raised CancelledError" in str(records[0].exception)


async def test_cancelling_process_tasks_cancels_its_workers_only() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    seen: list[TaskResult] = []
    queue.results.subscribe(seen.append)
    for i in range(5):
        queue.put_nowait(journal.task(f"t{i}", NORMAL, 10.0))
    processing = asyncio.create_task(queue.process_tasks(2))
    await asyncio.sleep(15)
    processing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await processing
    assert sorted((r.name, r.status.name, r.finished_at) for r in seen) == [
        ("t0", "SUCCEEDED", 10.0),
        ("t1", "SUCCEEDED", 10.0),
        ("t2", "CANCELLED", 15.0),
        ("t3", "CANCELLED", 15.0),
    ]
    assert "cancelled with the task running it" in str(seen[-1].exception)
    assert (queue.qsize(), queue.running) == (1, 0)
    (last,) = await queue.process_tasks(2)  # the queue still works
    assert (last.name, last.finished_at) == ("t4", 25.0)


# --- service mode -----------------------------------------------------------------------------


async def test_start_then_stop_with_drain_runs_everything() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    seen: list[TaskResult] = []
    completed: list[bool] = []
    queue.results.subscribe(seen.append, on_completed=lambda: completed.append(True))
    queue.start(max_workers=3)
    assert queue.statistics().workers == 3
    for i in range(10):
        await queue.put(journal.task(f"t{i}", NORMAL, 2.0))
        await asyncio.sleep(0.5)
    with pytest.raises(QueueBusyError, match=r"already has 3 workers"):
        queue.start(2)
    with pytest.raises(QueueBusyError):
        await queue.process_tasks(2)
    assert await queue.stop() == []
    assert queue.state is TaskQueueState.CLOSED
    assert completed == [True]
    assert sorted(r.name for r in seen) == sorted(f"t{i}" for i in range(10))
    assert all(r.status is TaskStatus.SUCCEEDED for r in seen)
    stats = queue.statistics()
    assert (stats.workers, stats.queued, stats.running, stats.succeeded) == (0, 0, 0, 10)
    assert await queue.stop() == []  # idempotent


async def test_stop_without_drain_returns_the_tasks_that_never_started() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    seen: list[TaskResult] = []
    queue.results.subscribe(seen.append)
    queue.start(max_workers=2)
    tasks = [
        journal.task("a", NORMAL, 10.0),
        journal.task("b", NORMAL, 10.0),
        journal.task("c", LOW, 10.0),
        journal.task("d", CRITICAL, 10.0),
        journal.task("e", NORMAL, 10.0),
    ]
    for task in tasks:
        queue.put_nowait(task)
    await asyncio.sleep(3)
    # the woken workers took the two first by priority: d, then a
    withdrawn = await queue.stop(drain=False)
    assert [t.name for t in withdrawn] == ["b", "e", "c"]  # in the order they would have run
    assert now() == 10.0  # the running ones finished
    statuses = {r.name: (r.status, r.started_at) for r in seen}
    assert statuses == {
        "a": (TaskStatus.SUCCEEDED, 0.0),
        "b": (TaskStatus.CANCELLED, None),
        "c": (TaskStatus.CANCELLED, None),
        "d": (TaskStatus.SUCCEEDED, 0.0),
        "e": (TaskStatus.CANCELLED, None),
    }
    withdrawn_record = next(r for r in seen if r.name == "b")
    assert "withdrawn by stop(drain=False)" in str(withdrawn_record.exception)
    assert withdrawn_record.finished_at == 3.0


async def test_stop_can_cancel_the_running_tasks() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    seen: list[TaskResult] = []
    queue.results.subscribe(seen.append)
    queue.start(max_workers=2)
    for name in "abc":
        queue.put_nowait(journal.task(name, NORMAL, 100.0))
    await asyncio.sleep(4)
    withdrawn = await queue.stop(drain=False, cancel_running=True)
    assert [t.name for t in withdrawn] == ["c"]
    assert now() == 4.0
    assert sorted((r.name, r.status.name) for r in seen) == [
        ("a", "CANCELLED"),
        ("b", "CANCELLED"),
        ("c", "CANCELLED"),
    ]
    assert "stop(cancel_running=True)" in str(next(r for r in seen if r.name == "a").exception)


async def test_async_with_leaves_nothing_running_and_nothing_unrecorded() -> None:
    journal = Journal()
    seen: list[TaskResult] = []
    async with PriorityTaskQueue() as queue:
        queue.results.subscribe(seen.append)
        queue.start(1)
        for i in range(3):
            queue.put_nowait(journal.task(f"t{i}", NORMAL, 5.0))
        await asyncio.sleep(7)
    assert queue.state is TaskQueueState.CLOSED
    assert [(r.name, r.status.name) for r in seen] == [
        ("t0", "SUCCEEDED"),
        ("t2", "CANCELLED"),  # withdrawn first (never started)
        ("t1", "CANCELLED"),  # then the running one, cancelled
    ]
    await queue.aclose()  # idempotent


async def test_a_cancelled_stop_leaves_nothing_running() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    seen: list[TaskResult] = []
    completed: list[bool] = []
    queue.results.subscribe(seen.append, on_completed=lambda: completed.append(True))
    queue.start(max_workers=1)
    for i in range(3):
        queue.put_nowait(journal.task(f"t{i}", NORMAL, 100.0))
    await asyncio.sleep(1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(50):  # a shutdown deadline shorter than the drain
            await queue.stop()
    await settle()
    assert now() == 51.0
    assert sorted((r.name, r.status.name, r.finished_at) for r in seen) == [
        ("t0", "CANCELLED", 51.0),
        ("t1", "CANCELLED", 51.0),
        ("t2", "CANCELLED", 51.0),
    ]
    assert queue.state is TaskQueueState.STOPPING
    assert completed == []
    await queue.aclose()
    assert queue.statistics().state is TaskQueueState.CLOSED
    assert completed == [True]
    assert len(seen) == 3


async def test_stop_with_drain_waits_for_get_callers() -> None:
    queue = PriorityTaskQueue()
    for i in range(3):
        queue.put_nowait(AsyncTask(sample, task_id=f"t{i}"))
    stopping = asyncio.create_task(queue.stop())
    await settle()
    assert queue.state is TaskQueueState.STOPPING
    assert not stopping.done()
    taken = [(await queue.get()).task_id for _ in range(3)]
    assert taken == ["t0", "t1", "t2"]
    assert await stopping == []
    assert queue.statistics().state is TaskQueueState.CLOSED


async def test_tasks_put_by_tasks_are_processed_too() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()

    async def fan_out(n: int) -> int:
        for i in range(n):
            await queue.put(journal.task(f"child{i}", NORMAL, 1.0))
        return n

    queue.put_nowait(AsyncTask(fan_out, args=(3,), name="fan_out"))
    records = await queue.process_tasks(2)
    assert sorted(r.name for r in records) == ["child0", "child1", "child2", "fan_out"]
    assert now() == 2.0


# --- execute(): your own workers with the queue's rules ------------------------------------


async def test_execute_runs_a_taken_task_with_the_queue_rules() -> None:
    journal = Journal()
    queue = PriorityTaskQueue()
    seen: list[TaskResult] = []
    queue.results.subscribe(seen.append)
    queue.put_nowait(journal.task("slow", NORMAL, 50.0, timeout=20, task_id="slow"))
    task = await queue.get()
    record = await queue.execute(task)
    assert (record.status, record.finished_at) == (TaskStatus.TIMED_OUT, 20.0)
    assert seen == [record]
    with pytest.raises(ConfigurationError, match=r"execute\(\) runs a task taken from this queue"):
        await queue.execute(task)
    with pytest.raises(ConfigurationError, match=r"execute\(\) runs a task taken"):
        await queue.execute(AsyncTask(sample))


async def test_cancel_reaches_a_task_run_by_execute() -> None:
    queue = PriorityTaskQueue()
    journal = Journal()
    queue.put_nowait(journal.task("long", NORMAL, 100.0, task_id="long"))
    task = queue.get_nowait()
    assert queue.cancel("long") is False  # handed out, not the queue's to cancel
    running = asyncio.create_task(queue.execute(task))
    await asyncio.sleep(3)
    assert queue.cancel("long") is True
    record = await running  # the caller was not cancelled: it gets the record
    assert (record.status, record.finished_at) == (TaskStatus.CANCELLED, 3.0)


async def test_blocking_code_runs_off_the_loop_with_to_thread() -> None:
    loop_thread = threading.get_ident()

    def blocking(x: int) -> tuple[int, int]:
        return x * 2, threading.get_ident()

    queue = PriorityTaskQueue()
    queue.put_nowait(AsyncTask(asyncio.to_thread, args=(blocking, 21)))
    (record,) = await queue.process_tasks(1)
    value, thread = record.result
    assert value == 42
    assert thread != loop_thread


# --- results and statistics ------------------------------------------------------------------


async def test_a_raising_results_subscriber_is_logged_and_isolated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(record: TaskResult) -> None:
        raise RuntimeError("observer bug")

    journal = Journal()
    queue = PriorityTaskQueue(name="videos")
    got: list[str] = []
    queue.results.subscribe(explode)
    queue.results.subscribe(lambda r: got.append(r.name))
    for name in ("a", "b"):
        queue.put_nowait(journal.task(name, NORMAL, 1.0))
    with caplog.at_level(logging.ERROR, logger="rxflows.tasks"):
        records = await queue.process_tasks(1)
    assert [r.status for r in records] == [TaskStatus.SUCCEEDED, TaskStatus.SUCCEEDED]
    assert got == ["a", "b"]
    assert caplog.text.count("a results subscriber of task queue 'videos' raised") == 2


async def test_results_complete_on_close_and_later_subscribers_complete_at_once() -> None:
    queue = PriorityTaskQueue()
    await queue.aclose()
    done: list[bool] = []
    queue.results.subscribe(on_completed=lambda: done.append(True))
    assert done == [True]
    assert await rxflows.collect(queue.results) == []


async def test_a_disposed_results_subscription_receives_nothing() -> None:
    queue = PriorityTaskQueue()
    got: list[TaskResult] = []
    subscription = queue.results.subscribe(got.append)
    subscription.dispose()
    queue.put_nowait(AsyncTask(sample))
    assert len(await queue.process_tasks(1)) == 1
    assert got == []


async def test_statistics_per_priority_with_wait_percentiles() -> None:
    journal = Journal()
    queue = PriorityTaskQueue(maxsize=50, name="stats")
    for i in range(4):
        queue.put_nowait(journal.task(f"n{i}", NORMAL, 1.0))
    queue.put_nowait(AsyncTask(journal.fail, args=("bad", 1.0), priority=HIGH))
    queue.put_nowait(journal.task("slow", LOW, 60.0, timeout=2))
    queue.put_nowait(journal.task("gone", LOW, task_id="gone"))
    queue.cancel("gone")

    stats = queue.statistics()
    assert (stats.name, stats.state, stats.maxsize) == ("stats", TaskQueueState.OPEN, 50)
    assert (stats.queued, stats.running, stats.cancelled, stats.done) == (6, 0, 1, 1)
    assert stats.priority(LOW).queued == 1
    assert stats.priority(NORMAL).wait_p50 is None

    processing = asyncio.create_task(queue.process_tasks(1))
    await asyncio.sleep(2.5)  # "bad" ran 0-1, n0 1-2, n1 running
    mid = queue.statistics()
    assert (mid.queued, mid.running, mid.failed, mid.succeeded) == (3, 1, 1, 1)
    assert mid.priority(NORMAL).running == 1
    assert mid.priority(NORMAL).queued == 2
    assert mid.workers == 1
    await processing

    stats = queue.statistics()
    assert [level.priority for level in stats.priorities] == [CRITICAL, HIGH, NORMAL, LOW]
    normal = stats.priority(NORMAL)
    assert (normal.succeeded, normal.failed, normal.done) == (4, 0, 4)
    # waits 1, 2, 3, 4 s (behind the HIGH task): nearest-rank percentiles
    assert (normal.wait_p50, normal.wait_p90, normal.wait_p99, normal.wait_max) == (
        2.0,
        4.0,
        4.0,
        4.0,
    )
    low = stats.priority(LOW)
    assert (low.timed_out, low.cancelled, low.wait_max) == (1, 1, 5.0)
    assert stats.priority(HIGH).failed == 1
    assert (stats.succeeded, stats.failed, stats.timed_out, stats.cancelled) == (4, 1, 1, 1)
    assert stats.done == 7
    assert stats.priority(CRITICAL).done == 0
    assert "queued=0" in repr(queue)
