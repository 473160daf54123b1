"""map_async: order, bounded concurrency, errors, cancellation, demand."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as rx_ops

from rxflows import (
    ConfigurationError,
    collect,
    from_async_iterable,
    from_iterable,
    loop_scheduler,
    to_async_iterator,
)
from rxflows import operators as ops

from .support import Recorder, run_virtual, settle


class Probe:
    """Coroutine work with a given duration per item, tracking concurrency and cancellation."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.started: list[int] = []
        self.cancelled: list[int] = []

    async def work(self, item: tuple[int, float]) -> int:
        index, seconds = item
        self.started.append(index)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled.append(index)
            raise
        finally:
            self.running -= 1
        return index


async def test_unordered_emits_in_completion_order() -> None:
    probe = Probe()
    items = [(0, 3.0), (1, 1.0), (2, 2.0)]
    result = await collect(from_iterable(items).pipe(ops.map_async(probe.work, 3)))
    assert result == [1, 2, 0]


async def test_ordered_emits_in_source_order_at_the_right_times() -> None:
    probe = Probe()
    loop = asyncio.get_running_loop()
    start = loop.time()
    recorder = Recorder()
    done = asyncio.Event()
    items = [(0, 3.0), (1, 1.0), (2, 2.0), (3, 1.0)]
    from_iterable(items).pipe(ops.map_async(probe.work, 3, ordered=True)).subscribe(
        recorder.on_next, recorder.on_error, lambda: done.set(), scheduler=loop_scheduler()
    )
    await done.wait()
    assert recorder.items == [0, 1, 2, 3]
    # 1 finishes at t=1 and waits for 0 without holding a slot, so 3 starts at t=1;
    # everything is emitted when 0 finishes at t=3.
    assert [t - start for t in recorder.times] == [3.0, 3.0, 3.0, 3.0]
    assert probe.peak == 3


async def test_concurrency_limit_is_reached_and_never_exceeded() -> None:
    probe = Probe()
    items = [(i, 1.0) for i in range(10)]
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await collect(from_iterable(items).pipe(ops.map_async(probe.work, 4)))
    assert sorted(result) == list(range(10))
    assert probe.peak == 4
    assert loop.time() - start == 3.0  # ceil(10 / 4) rounds of one second


async def test_push_sources_are_bounded_too() -> None:
    probe = Probe()
    items = [(i, 1.0) for i in range(10)]
    result = await collect(reactivex.from_iterable(items).pipe(ops.map_async(probe.work, 3)))
    assert sorted(result) == list(range(10))
    assert probe.peak == 3


async def test_first_error_is_unwrapped_and_cancels_the_rest() -> None:
    probe = Probe()

    async def work(item: tuple[int, float]) -> int:
        if item[0] == 2:
            await asyncio.sleep(0.5)
            raise LookupError("item 2 failed")
        return await probe.work(item)

    items = [(i, 10.0) for i in range(6)]
    with pytest.raises(LookupError, match="item 2 failed"):
        await collect(from_iterable(items).pipe(ops.map_async(work, 3)))
    await settle()
    assert sorted(probe.cancelled) == [0, 1]
    assert probe.started == [0, 1]  # nothing new started after the failure


async def test_upstream_error_cancels_in_flight_work() -> None:
    probe = Probe()
    subject: reactivex.subject.Subject[tuple[int, float]] = reactivex.subject.Subject()
    recorder = Recorder()
    subject.pipe(ops.map_async(probe.work, 5)).subscribe(recorder, scheduler=loop_scheduler())
    subject.on_next((0, 10.0))
    subject.on_next((1, 10.0))
    await asyncio.sleep(1)
    subject.on_error(OSError("upstream broke"))
    await settle()
    assert isinstance(recorder.error, OSError)
    assert sorted(probe.cancelled) == [0, 1]


async def test_dispose_cancels_in_flight_work() -> None:
    probe = Probe()
    recorder = Recorder()
    items = [(i, 10.0) for i in range(5)]
    subscription = (
        from_iterable(items)
        .pipe(ops.map_async(probe.work, 2))
        .subscribe(recorder, scheduler=loop_scheduler())
    )
    await asyncio.sleep(1)
    subscription.dispose()
    await settle()
    assert sorted(probe.cancelled) == [0, 1]
    assert probe.started == [0, 1]
    assert recorder.items == []
    assert not recorder.done


async def test_downstream_take_stops_the_work() -> None:
    probe = Probe()
    items = [(i, 1.0) for i in range(100)]
    result = await collect(
        from_iterable(items).pipe(ops.map_async(probe.work, 2, ordered=True), rx_ops.take(3))
    )
    assert result == [0, 1, 2]
    await settle()
    assert len(probe.started) <= 4


async def test_a_function_returning_a_plain_value_fails_the_stream() -> None:
    with pytest.raises(TypeError, match="not an awaitable; pass an async def function"):
        await collect(from_iterable([1]).pipe(ops.map_async(lambda x: x)))  # type: ignore[arg-type, return-value]  # misuse under test


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_max_concurrent_is_rejected_at_once(bad: object) -> None:
    async def work(x: int) -> int:
        return x

    with pytest.raises(ConfigurationError, match="max_concurrent must be a positive int or None"):
        ops.map_async(work, bad)  # type: ignore[call-overload]  # misuse under test


def test_non_callable_is_rejected_at_once() -> None:
    with pytest.raises(TypeError, match="map_async needs a coroutine function"):
        ops.map_async(42)  # type: ignore[call-overload]  # misuse under test


async def test_it_pulls_no_more_than_its_consumer_asked_for() -> None:
    pulled = 0

    async def endless() -> object:
        nonlocal pulled
        while True:
            pulled += 1
            yield pulled

    async def work(x: int) -> int:
        await asyncio.sleep(1)
        return x

    stream = to_async_iterator(
        from_async_iterable(endless()).pipe(ops.map_async(work, 3)),  # type: ignore[arg-type]  # generator typed loosely on purpose
        prefetch=5,
    )
    consumed = 0
    async for _ in stream:
        consumed += 1
        await asyncio.sleep(10)  # the consumer is much slower than the work
        assert pulled <= consumed + 5
        if consumed == 10:
            break
    await stream.aclose()


async def test_a_burst_of_trivial_items_does_not_starve_the_loop() -> None:
    loop = asyncio.get_running_loop()
    processed = 0
    seen_at: list[int] = []

    async def trivial(x: int) -> int:
        nonlocal processed
        processed += 1
        return x

    loop.call_soon(lambda: seen_at.append(processed))
    await collect(from_iterable(range(20_000)).pipe(ops.map_async(trivial, 1)))
    assert seen_at
    assert seen_at[0] < 20_000


@settings(max_examples=60, deadline=None)
@given(
    delays=st.lists(st.integers(min_value=0, max_value=5), max_size=40),
    limit=st.integers(min_value=1, max_value=8),
    ordered=st.booleans(),
    push=st.booleans(),
)
def test_no_item_lost_or_duplicated_and_the_limit_holds(
    delays: list[int], limit: int, ordered: bool, push: bool
) -> None:
    probe = Probe()
    items = list(enumerate(float(d) for d in delays))

    async def main() -> list[int]:
        source = reactivex.from_iterable(items) if push else from_iterable(items)
        return await collect(source.pipe(ops.map_async(probe.work, limit, ordered=ordered)))

    result = run_virtual(main)
    assert Counter(result) == Counter(range(len(items)))
    assert probe.peak <= limit
    if ordered:
        assert result == list(range(len(items)))
    if delays and all(d > 0 for d in delays):
        assert probe.peak == min(limit, len(items))


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=60),
    limit=st.integers(min_value=1, max_value=8),
    prefetch=st.integers(min_value=1, max_value=8),
    work_time=st.integers(min_value=0, max_value=3),
    consumer_time=st.integers(min_value=0, max_value=3),
)
def test_a_pulled_stream_delivers_everything_and_stays_bounded(
    count: int, limit: int, prefetch: int, work_time: int, consumer_time: int
) -> None:
    pulled = 0

    async def source() -> AsyncIterator[int]:
        nonlocal pulled
        for i in range(count):
            pulled += 1
            yield i

    async def work(x: int) -> int:
        await asyncio.sleep(work_time)
        return x

    async def main() -> list[int]:
        seen: list[int] = []
        stream = to_async_iterator(
            from_async_iterable(source()).pipe(ops.map_async(work, limit)), prefetch=prefetch
        )
        async for x in stream:
            seen.append(x)
            assert pulled <= len(seen) + limit + prefetch
            await asyncio.sleep(consumer_time)
        return seen

    assert sorted(run_virtual(main)) == list(range(count))
