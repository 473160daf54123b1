"""Contracts every flow keeps: the same results however its observable is consumed,
cancellation of ``execute()`` cancels its work, and it runs the same on uvloop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from reactivex import Observable

from rxflows import (
    AsyncEventLoopManager,
    FanInFlow,
    FanOutFlow,
    ParallelFlow,
    PipelineFlow,
    SequentialFlow,
    StreamingFlow,
    collect,
    create_async_flow_config,
    loop_scheduler,
    to_async_iterator,
)

from .support import Recorder, settle

config = create_async_flow_config(max_concurrent_tasks=3)


async def slow_double(x: int) -> int:
    await asyncio.sleep(x % 3 + 1)
    return 2 * x


async def numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0.5)
        yield i


def task(i: int) -> Callable[[], Awaitable[int]]:
    return lambda: slow_double(i)


# Each entry builds a fresh observable (async sources can be read once) and says what
# it must emit, in order.
FLOWS: dict[str, tuple[Callable[[], Observable[Any]], list[Any]]] = {
    "sequential": (
        lambda: SequentialFlow(config).observable([task(i) for i in range(4)]),
        [0, 2, 4, 6],
    ),
    "parallel": (
        lambda: ParallelFlow(config).observable([task(i) for i in range(5)]),
        [0, 2, 4, 6, 8],
    ),
    "streaming": (
        lambda: StreamingFlow(config).observable(numbers(4), slow_double, ordered=True),
        [0, 2, 4, 6],
    ),
    "pipeline": (lambda: PipelineFlow(config).observable(1, [slow_double, slow_double]), [4]),
    "fan-out": (
        lambda: FanOutFlow(config).observable(5, [slow_double, slow_double]),
        [10, 10],
    ),
    "fan-in": (lambda: FanInFlow(config).observable([numbers(2), numbers(2)]), [0, 0, 1, 1]),
}


async def consume_by_await(observable: Observable[Any]) -> list[Any]:
    return await collect(observable)


async def consume_by_iteration(observable: Observable[Any]) -> list[Any]:
    return [item async for item in to_async_iterator(observable, prefetch=2)]


async def consume_by_subscription(observable: Observable[Any]) -> list[Any]:
    recorder = Recorder()
    observable.subscribe(recorder, scheduler=loop_scheduler())
    await recorder.finished.wait()
    assert recorder.error is None
    return recorder.items


CONSUMERS = [consume_by_await, consume_by_iteration, consume_by_subscription]


@pytest.mark.parametrize("consume", CONSUMERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(FLOWS))
async def test_every_way_of_consuming_gives_the_same_items(
    name: str, consume: Callable[[Observable[Any]], Awaitable[list[Any]]]
) -> None:
    build, expected = FLOWS[name]
    assert await consume(build()) == expected


class Hanging:
    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0

    async def __call__(self, *args: Any) -> Any:
        self.started += 1
        try:
            await asyncio.sleep(1000)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return None


async def hanging_stream(hang: Hanging) -> AsyncIterator[int]:
    yield 1
    await hang()


EXECUTIONS: dict[str, Callable[[Hanging], Awaitable[Any]]] = {
    "sequential": lambda h: SequentialFlow(config).execute([h, h]),
    "parallel": lambda h: ParallelFlow(config).execute([h, h, h, h]),
    "pipeline": lambda h: PipelineFlow(config).execute(1, [h, h]),
    "fan-out": lambda h: FanOutFlow(config).execute(1, [h, h]),
    "fan-in": lambda h: FanInFlow(config).execute([hanging_stream(h), hanging_stream(h)], list),
}


@pytest.mark.parametrize("name", sorted(EXECUTIONS))
async def test_cancelling_execute_cancels_everything_it_started(name: str) -> None:
    hang = Hanging()
    running = asyncio.ensure_future(EXECUTIONS[name](hang))
    await asyncio.sleep(10)
    assert hang.started > 0
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await settle()
    assert hang.cancelled == hang.started


async def test_cancelling_a_streaming_consumer_cancels_the_work() -> None:
    hang = Hanging()

    async def consume() -> None:
        async with contextlib.aclosing(StreamingFlow(config).execute(range(10), hang)) as results:
            async for _ in results:
                pass

    running = asyncio.ensure_future(consume())
    await asyncio.sleep(10)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await settle()
    assert hang.started == 3
    assert hang.cancelled == 3


async def trivial(x: int) -> int:
    return x + 1


async def uvloop_workload() -> tuple[str, list[int], list[int]]:
    loop_type = type(asyncio.get_running_loop()).__module__
    parallel = await ParallelFlow(config).execute([lambda i=i: trivial(i) for i in range(1000)])  # type: ignore[misc]  # lambda default binds i
    streamed = [x async for x in StreamingFlow(config).execute(range(1000), trivial, ordered=True)]
    return loop_type, parallel, streamed


def test_flows_run_on_uvloop() -> None:
    manager = AsyncEventLoopManager(create_async_flow_config(use_uvloop=True))
    loop_module, parallel, streamed = manager.run(uvloop_workload())
    assert loop_module.startswith("uvloop")
    assert parallel == list(range(1, 1001))
    assert streamed == list(range(1, 1001))


async def test_streaming_from_an_async_source_does_not_start_a_task_per_item() -> None:
    loop = asyncio.get_running_loop()
    created = 0

    def counting_factory(
        loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def source() -> AsyncIterator[int]:
        for i in range(1000):
            if i % 7 == 0:
                await asyncio.sleep(0.001)  # items arrive one at a time, with pauses
            yield i

    loop.set_task_factory(counting_factory)
    try:
        results = [x async for x in StreamingFlow(config).execute(source(), trivial)]
    finally:
        loop.set_task_factory(None)
    assert sorted(results) == list(range(1, 1001))
    # the source's pump, at most max_concurrent_tasks workers, and the iterator's close
    assert created <= 1 + config.max_concurrent_tasks + 2


async def test_aclose_returns_after_the_source_has_closed() -> None:
    closed = False

    async def source() -> AsyncIterator[int]:
        nonlocal closed
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed = True

    results = StreamingFlow(config).execute(source(), trivial)
    async for x in results:
        if x >= 10:
            break
    await results.aclose()
    assert closed
