"""The six flows: the guide's examples as written, plus limits, errors and cancellation.

Async tests run on a virtual-time loop, so the guide's sleeps are kept as written and
the clock shows that concurrency happened (three 2-second downloads end at t=2).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import reactivex
from reactivex import operators as rx_ops

from rxflows import (
    ConfigurationError,
    FanInFlow,
    FanOutFlow,
    ParallelFlow,
    PipelineFlow,
    SequentialFlow,
    StreamingFlow,
    collect,
    create_async_flow_config,
)

from .support import settle

config = create_async_flow_config(max_concurrent_tasks=10)


def clock() -> float:
    return asyncio.get_running_loop().time()


class Tracker:
    """Counts running coroutines and records cancellations."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.cancelled: list[Any] = []
        self.started: list[Any] = []

    async def run(self, key: Any, seconds: float, result: Any = None) -> Any:
        self.started.append(key)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        finally:
            self.running -= 1
        return key if result is None else result


# --- the guide's examples, as written ------------------------------------------------


async def test_guide_sequential_flow() -> None:
    sequential_flow = SequentialFlow(config)

    async def task1() -> str:
        await asyncio.sleep(1)
        return "Task 1 completed"

    async def task2() -> str:
        await asyncio.sleep(1)
        return "Task 2 completed"

    start = clock()
    tasks = [task1, task2]
    results = await sequential_flow.execute(tasks)
    assert results == ["Task 1 completed", "Task 2 completed"]
    assert clock() - start == 2.0  # one after another


async def test_guide_parallel_flow() -> None:
    parallel_flow = ParallelFlow(config)

    async def download_video(url: str) -> str:
        await asyncio.sleep(2)
        return f"Downloaded {url}"

    start = clock()
    urls = ["video1.mp4", "video2.mp4", "video3.mp4"]
    download_tasks = [lambda url=url: download_video(url) for url in urls]
    results = await parallel_flow.execute(download_tasks)
    assert results == ["Downloaded video1.mp4", "Downloaded video2.mp4", "Downloaded video3.mp4"]
    assert clock() - start == 2.0  # all at once


async def test_guide_streaming_flow() -> None:
    streaming_flow = StreamingFlow(config)

    async def video_url_stream() -> AsyncIterator[str]:
        urls = ["video1.mp4", "video2.mp4", "video3.mp4"]
        for url in urls:
            yield url
            await asyncio.sleep(0.1)

    async def process_video(url: str) -> str:
        await asyncio.sleep(1)
        return f"Processed {url}"

    printed = []
    async for result in streaming_flow.execute(video_url_stream(), process_video):
        printed.append(result)
    assert printed == ["Processed video1.mp4", "Processed video2.mp4", "Processed video3.mp4"]


async def test_guide_pipeline_flow() -> None:
    pipeline_flow = PipelineFlow(config)

    async def download_stage(url: str) -> str:
        return f"Downloaded {url}"

    async def process_stage(downloaded_data: str) -> str:
        return f"Processed {downloaded_data}"

    async def encode_stage(processed_data: str) -> str:
        return f"Encoded {processed_data}"

    stages = [download_stage, process_stage, encode_stage]
    result = await pipeline_flow.execute("video.mp4", stages)
    assert result == "Encoded Processed Downloaded video.mp4"


async def test_guide_fan_out_flow() -> None:
    fan_out_flow = FanOutFlow(config)

    async def processor1(data: str) -> str:
        return f"Processor 1: {data}"

    async def processor2(data: str) -> str:
        return f"Processor 2: {data}"

    async def processor3(data: str) -> str:
        return f"Processor 3: {data}"

    processors = [processor1, processor2, processor3]
    results = await fan_out_flow.execute("shared_data", processors)
    assert results == [
        "Processor 1: shared_data",
        "Processor 2: shared_data",
        "Processor 3: shared_data",
    ]


async def test_guide_fan_in_flow() -> None:
    fan_in_flow = FanInFlow(config)

    async def stream1() -> AsyncIterator[str]:
        for i in range(3):
            yield f"Stream 1: {i}"
            await asyncio.sleep(0.1)

    async def stream2() -> AsyncIterator[str]:
        for i in range(3):
            yield f"Stream 2: {i}"
            await asyncio.sleep(0.1)

    async def aggregate(items: list[str]) -> str:
        return f"Aggregated: {items}"

    streams = [stream1(), stream2()]
    result = await fan_in_flow.execute(streams, aggregate)
    assert result == (
        "Aggregated: ['Stream 1: 0', 'Stream 2: 0', 'Stream 1: 1', 'Stream 2: 1', "
        "'Stream 1: 2', 'Stream 2: 2']"
    )


# --- sequential and parallel ---------------------------------------------------------


async def test_sequential_stops_at_the_first_error() -> None:
    tracker = Tracker()

    async def boom() -> None:
        raise ConnectionResetError("peer reset")

    tasks: list[Callable[[], Awaitable[Any]]] = [
        lambda: tracker.run("a", 1),
        boom,
        lambda: tracker.run("c", 1),
    ]
    with pytest.raises(ConnectionResetError, match="peer reset"):
        await SequentialFlow(config).execute(tasks)
    assert tracker.started == ["a"]


async def test_parallel_respects_max_concurrent_tasks_and_keeps_input_order() -> None:
    tracker = Tracker()
    flow = ParallelFlow(create_async_flow_config(max_concurrent_tasks=3))
    durations = [5, 1, 4, 2, 3, 1, 1]
    start = clock()
    results = await flow.execute(
        [functools.partial(tracker.run, i, d) for i, d in enumerate(durations)]
    )
    assert results == list(range(len(durations)))
    assert tracker.peak == 3
    assert clock() - start == 6.0


async def test_parallel_first_error_is_unwrapped_and_cancels_the_rest() -> None:
    tracker = Tracker()

    async def fail() -> None:
        await asyncio.sleep(1)
        raise PermissionError("403 from storage")

    tasks: list[Callable[[], Awaitable[Any]]] = [
        lambda: tracker.run("slow-1", 10),
        fail,
        lambda: tracker.run("slow-2", 10),
    ]
    with pytest.raises(PermissionError, match="403 from storage"):
        await ParallelFlow(config).execute(tasks)
    await settle()
    assert sorted(tracker.cancelled) == ["slow-1", "slow-2"]


async def test_parallel_observable_composes_with_rx_operators() -> None:
    tracker = Tracker()
    flow = ParallelFlow(config)
    tasks = [functools.partial(tracker.run, i, 1) for i in range(6)]

    def even(x: int) -> bool:
        return x % 2 == 0

    evens = await collect(flow.observable(tasks).pipe(rx_ops.filter(even)))
    assert evens == [0, 2, 4]


async def test_cancelling_execute_cancels_the_work() -> None:
    tracker = Tracker()
    flow = ParallelFlow(config)
    running = asyncio.create_task(
        flow.execute([functools.partial(tracker.run, i, 100) for i in range(4)])
    )
    await asyncio.sleep(1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await settle()
    assert sorted(tracker.cancelled) == [0, 1, 2, 3]


@pytest.mark.parametrize("flow_type", [SequentialFlow, ParallelFlow])
async def test_coroutine_objects_instead_of_functions_are_rejected_clearly(
    flow_type: type[SequentialFlow] | type[ParallelFlow],
) -> None:
    async def task() -> int:
        return 1

    with pytest.raises(TypeError, match=r"tasks\[0\] must be a zero-argument coroutine function"):
        await flow_type(config).execute([task(), task()])  # type: ignore[arg-type]  # misuse under test


async def test_a_non_callable_task_is_named_by_index() -> None:
    async def task() -> int:
        return 1

    with pytest.raises(TypeError, match=r"tasks\[1\] must be .* got 'video.mp4'"):
        await ParallelFlow(config).execute([task, "video.mp4"])  # type: ignore[arg-type]  # misuse under test


def test_a_config_of_the_wrong_type_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="config must be an AsyncFlowConfig"):
        ParallelFlow({"max_concurrent_tasks": 3})  # type: ignore[arg-type]  # misuse under test


async def test_an_empty_task_list_gives_an_empty_result() -> None:
    assert await ParallelFlow(config).execute([]) == []
    assert await SequentialFlow(config).execute([]) == []


# --- streaming ---------------------------------------------------------------------------


class EndlessSource:
    def __init__(self) -> None:
        self.pulled = 0
        self.closed = False

    async def items(self) -> AsyncIterator[int]:
        try:
            while True:
                self.pulled += 1
                yield self.pulled
        finally:
            self.closed = True


async def test_streaming_never_drains_an_endless_source_ahead_of_the_consumer() -> None:
    source = EndlessSource()
    tracker = Tracker()
    flow = StreamingFlow(create_async_flow_config(max_concurrent_tasks=4, stream_buffer_size=2))
    consumed = 0
    async with contextlib.aclosing(
        flow.execute(source.items(), lambda x: tracker.run(x, 1))
    ) as results:
        async for _ in results:
            consumed += 1
            await asyncio.sleep(5)  # a slow consumer
            assert source.pulled <= consumed + 4 + 2
            if consumed == 25:
                break
    await settle()
    assert source.closed
    assert tracker.peak <= 4


async def test_closing_the_stream_cancels_work_in_flight() -> None:
    source = EndlessSource()
    tracker = Tracker()
    flow = StreamingFlow(create_async_flow_config(max_concurrent_tasks=3))
    results = flow.execute(source.items(), lambda x: tracker.run(x, 10 if x > 1 else 1))
    assert await anext(results) == 1
    await results.aclose()
    await settle()
    assert {2, 3} <= set(tracker.cancelled)
    assert sorted(tracker.cancelled) == sorted(set(tracker.started) - {1})
    assert source.closed


async def test_streaming_ordered_option() -> None:
    tracker = Tracker()

    async def source() -> AsyncIterator[int]:
        for i in range(5):
            yield i

    durations = {0: 5, 1: 1, 2: 3, 3: 2, 4: 1}
    flow = StreamingFlow(config)
    unordered = [r async for r in flow.execute(source(), lambda x: tracker.run(x, durations[x]))]
    ordered = [
        r
        async for r in flow.execute(source(), lambda x: tracker.run(x, durations[x]), ordered=True)
    ]
    assert unordered == [1, 4, 3, 2, 0]
    assert ordered == [0, 1, 2, 3, 4]


async def test_streaming_error_reaches_the_consumer_after_earlier_results() -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(3):
            yield i

    async def process(x: int) -> int:
        await asyncio.sleep(x)
        if x == 2:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad caption")
        return x

    seen = []

    async def consume() -> None:
        async for r in StreamingFlow(config).execute(source(), process):
            seen.append(r)

    with pytest.raises(UnicodeDecodeError):
        await consume()
    assert seen == [0, 1]


async def test_streaming_accepts_a_plain_iterable_and_an_observable() -> None:
    async def double(x: int) -> int:
        return 2 * x

    flow = StreamingFlow(config)
    assert [r async for r in flow.execute([1, 2, 3], double, ordered=True)] == [2, 4, 6]
    assert [r async for r in flow.execute(reactivex.of(1, 2), double, ordered=True)] == [2, 4]


def test_streaming_rejects_a_bad_source() -> None:
    async def double(x: int) -> int:
        return 2 * x

    with pytest.raises(TypeError, match="source must be an async iterable"):
        StreamingFlow(config).execute(42, double)  # type: ignore[call-overload]  # misuse under test


# --- pipeline ----------------------------------------------------------------------------


async def test_pipeline_without_stages_returns_the_data() -> None:
    assert await PipelineFlow(config).execute("video.mp4", []) == "video.mp4"


async def test_pipeline_stage_error_stops_later_stages() -> None:
    reached = []

    async def parse(x: str) -> str:
        raise ValueError(f"cannot parse {x}")

    async def encode(x: str) -> str:
        reached.append(x)
        return x

    with pytest.raises(ValueError, match=r"cannot parse video\.mp4"):
        await PipelineFlow(config).execute("video.mp4", [parse, encode])
    assert reached == []


async def test_pipeline_operator_overlaps_stages_across_items() -> None:
    tracker = Tracker()

    async def stage_a(x: int) -> int:
        return int(await tracker.run(("a", x), 1, result=x))

    async def stage_b(x: int) -> int:
        return int(await tracker.run(("b", x), 1, result=x * 10))

    start = clock()
    stream = reactivex.of(1, 2, 3).pipe(PipelineFlow(config).operator([stage_a, stage_b]))
    assert await collect(stream) == [10, 20, 30]
    assert clock() - start == 4.0  # pipelined: 3 items + 1 stage of latency, not 6


# --- fan-out and fan-in ------------------------------------------------------------------


async def test_fan_out_runs_processors_concurrently_and_cancels_on_error() -> None:
    tracker = Tracker()

    async def broken(data: str) -> str:
        await asyncio.sleep(1)
        raise RuntimeError(f"cannot transcode {data}")

    start = clock()
    ok = await FanOutFlow(config).execute(
        "clip", [lambda d: tracker.run(("thumb", d), 2), lambda d: tracker.run(("caption", d), 2)]
    )
    assert ok == [("thumb", "clip"), ("caption", "clip")]
    assert clock() - start == 2.0
    with pytest.raises(RuntimeError, match="cannot transcode clip"):
        await FanOutFlow(config).execute("clip", [lambda d: tracker.run("long", 10), broken])
    await settle()
    assert tracker.cancelled == ["long"]


async def test_fan_in_keeps_each_streams_order() -> None:
    async def stream(name: str, delays: list[float]) -> AsyncIterator[str]:
        for i, delay in enumerate(delays):
            await asyncio.sleep(delay)
            yield f"{name}{i}"

    items = await FanInFlow(config).execute(
        [stream("a", [3, 1, 1]), stream("b", [1, 1, 5])], lambda xs: xs
    )
    assert items == ["b0", "b1", "a0", "a1", "a2", "b2"]


async def test_fan_in_zip_pairs_items_and_ends_with_the_shortest() -> None:
    async def numbers(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(1)
            yield i

    pairs = await FanInFlow(config).execute(
        [numbers(3), numbers(5), reactivex.of("x", "y", "z", "w")], list, mode="zip"
    )
    assert pairs == [(0, 0, "x"), (1, 1, "y"), (2, 2, "z")]


async def test_fan_in_error_from_one_stream_is_raised() -> None:
    async def good() -> AsyncIterator[int]:
        yield 1

    async def bad() -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(1)
            if i == 1:
                raise TimeoutError("camera feed stalled")
            yield i

    with pytest.raises(TimeoutError, match="camera feed stalled"):
        await FanInFlow(config).execute([good(), bad()], list)


async def test_fan_in_rejects_a_bad_mode() -> None:
    with pytest.raises(ConfigurationError, match="mode must be 'merge' or 'zip', got 'concat'"):
        await FanInFlow(config).execute([], list, mode="concat")  # type: ignore[arg-type]  # misuse under test
