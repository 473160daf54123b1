"""on_backpressure: every policy, its counts, and its misuse errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from reactivex.subject import Subject

from rxflows import (
    BackpressureError,
    BackpressurePolicy,
    ConfigurationError,
    collect,
    from_iterable,
    to_async_iterator,
)
from rxflows import operators as ops
from rxflows._bridges import PullObservable

from .support import Recorder


@pytest.mark.parametrize(
    ("policy", "delivered", "dropped"),
    [
        ("drop_oldest", [0, 3, 4], [1, 2]),
        ("drop_newest", [0, 1, 2], [3, 4]),
        ("keep_latest", [0, 1, 4], [2, 3]),
    ],
)
def test_dropping_policies(policy: str, delivered: list[int], dropped: list[int]) -> None:
    subject: Subject[int] = Subject()
    seen_dropped: list[int] = []
    buffer = ops.on_backpressure(2, policy, on_drop=seen_dropped.append)
    recorder = Recorder()
    stream = subject.pipe(buffer)
    assert isinstance(stream, PullObservable)
    subscription = stream.subscribe_demand(recorder)
    subscription.request(1)
    for i in range(5):
        subject.on_next(i)  # 0 goes straight through, the rest meet a full buffer
    subscription.request(10)
    subject.on_completed()
    assert recorder.items == delivered
    assert recorder.completed
    assert seen_dropped == dropped
    stats = buffer.statistics()
    assert (stats.received, stats.emitted, stats.dropped) == (5, 3, 2)
    assert stats.peak_buffered == 2
    assert buffer.dropped == 2


def test_error_policy_delivers_the_buffer_then_fails() -> None:
    subject: Subject[int] = Subject()
    buffer = ops.on_backpressure(2, BackpressurePolicy.ERROR)
    recorder = Recorder()
    stream = subject.pipe(buffer)
    assert isinstance(stream, PullObservable)
    subscription = stream.subscribe_demand(recorder)
    for i in range(3):
        subject.on_next(i)
    assert not recorder.done
    subscription.request(5)
    assert recorder.items == [0, 1]
    assert isinstance(recorder.error, BackpressureError)
    assert recorder.error.capacity == 2
    assert "buffer of 2 overflowed" in str(recorder.error)
    assert not subject.observers  # the source was let go


def test_plain_subscribers_get_everything() -> None:
    subject: Subject[int] = Subject()
    buffer = ops.on_backpressure(1, "drop_newest")
    seen: list[int] = []
    subject.pipe(buffer).subscribe(seen.append)
    for i in range(10):
        subject.on_next(i)
    assert seen == list(range(10))
    assert buffer.dropped == 0


def test_block_needs_a_credit_based_source() -> None:
    with pytest.raises(ConfigurationError, match="needs a credit-based source"):
        Subject[int]().pipe(ops.on_backpressure(4, "block"))


def test_block_asks_the_source_for_no_more_than_fits() -> None:
    pulled = 0

    def numbers() -> Iterator[int]:
        nonlocal pulled
        while True:
            pulled += 1
            yield pulled

    buffer = ops.on_backpressure(3, "block")
    stream = from_iterable(numbers()).pipe(buffer)
    assert isinstance(stream, PullObservable)
    recorder = Recorder()
    subscription = stream.subscribe_demand(recorder)
    assert pulled == 3  # the buffer fills up ahead
    subscription.request(2)
    assert recorder.items == [1, 2]
    assert pulled == 5
    assert buffer.dropped == 0
    subscription.dispose()


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_bad_size(size: object) -> None:
    with pytest.raises(ConfigurationError, match="on_backpressure size must be a positive int"):
        ops.on_backpressure(size, "drop_oldest")  # type: ignore[arg-type]  # misuse under test


def test_bad_policy_lists_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="policy must be one of 'block', 'drop_oldest'"):
        ops.on_backpressure(4, "drop_everything")


async def test_a_fast_subject_feeding_slow_work_through_a_buffer() -> None:
    subject: Subject[int] = Subject()
    buffer = ops.on_backpressure(5, "drop_oldest")

    async def slow(x: int) -> int:
        await asyncio.sleep(1)
        return x

    results = asyncio.ensure_future(
        collect(subject.pipe(buffer, ops.map_async(slow, max_concurrent=2)))
    )
    await asyncio.sleep(0)
    for i in range(100):
        subject.on_next(i)
    subject.on_completed()
    got = await results
    # two went straight to the workers, the buffer kept the last five, the rest dropped
    assert sorted(got) == [0, 1, 95, 96, 97, 98, 99]
    assert buffer.dropped == 93


async def test_an_iterator_over_a_buffered_subject() -> None:
    subject: Subject[int] = Subject()
    buffer = ops.on_backpressure(3, "drop_newest")
    stream = to_async_iterator(subject.pipe(buffer), prefetch=1)
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    for i in range(10):
        subject.on_next(i)
    subject.on_completed()
    assert await first == 0
    # 0 was asked for; 1-3 fill the buffer while the consumer is away; 4-9 are dropped
    assert [x async for x in stream] == [1, 2, 3]
    assert buffer.dropped == 6
