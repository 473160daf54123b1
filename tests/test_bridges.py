"""Bridges: coroutine -> observable, async iterable -> observable (credits), and back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
import reactivex
from reactivex import operators as rx_ops

from rxflows import (
    PullObservable,
    collect,
    from_async,
    from_async_iterable,
    from_iterable,
    loop_scheduler,
    to_async_iterator,
)

from .support import Recorder, settle


class CountingSource:
    """An endless async source that counts how often it was pulled and whether it closed."""

    def __init__(self, limit: int | None = None) -> None:
        self.pulled = 0
        self.closed = False
        self.limit = limit

    async def items(self) -> AsyncIterator[int]:
        try:
            while self.limit is None or self.pulled < self.limit:
                self.pulled += 1
                yield self.pulled
        finally:
            self.closed = True


async def test_from_async_is_cold_and_runs_once_per_subscription() -> None:
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(1)
        return calls

    source = from_async(fetch)
    await settle()
    assert calls == 0
    assert await collect(source) == [1]
    assert await collect(source) == [2]


async def test_from_async_error_is_unwrapped() -> None:
    async def fail() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        await collect(from_async(fail))


async def test_from_async_dispose_cancels_the_task() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    recorder = Recorder()
    subscription = from_async(slow).subscribe(recorder, scheduler=loop_scheduler())
    await asyncio.sleep(1)
    subscription.dispose()
    await settle()
    assert cancelled.is_set()
    assert not recorder.done


async def test_from_async_rejects_a_function_returning_a_plain_value() -> None:
    with pytest.raises(TypeError, match="not an awaitable; pass an async def function"):
        await collect(from_async(lambda: 3))  # type: ignore[arg-type, return-value]  # misuse under test


async def test_from_iterable_emits_only_what_is_requested() -> None:
    pulled = 0

    def numbers() -> Iterator[int]:
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield i

    recorder = Recorder()
    subscription = from_iterable(numbers()).subscribe_demand(recorder)
    assert recorder.items == []
    subscription.request(3)
    assert recorder.items == [0, 1, 2]
    assert pulled == 3
    subscription.request(2)
    assert recorder.items == [0, 1, 2, 3, 4]
    subscription.dispose()
    assert not recorder.done


async def test_pull_observables_are_plain_observables_to_rx_operators() -> None:
    assert isinstance(from_iterable([1]), PullObservable)

    def double(x: int) -> int:
        return 2 * x

    doubled = from_iterable(range(5)).pipe(rx_ops.map(double), rx_ops.to_list())
    assert await collect(doubled) == [[0, 2, 4, 6, 8]]


async def test_from_async_iterable_pulls_only_on_credit() -> None:
    source = CountingSource()
    recorder = Recorder()
    subscription = from_async_iterable(source.items()).subscribe_demand(recorder, loop_scheduler())
    await settle()
    assert source.pulled == 0
    subscription.request(2)
    await settle()
    assert (source.pulled, recorder.items) == (2, [1, 2])
    subscription.request(1)
    await settle()
    assert (source.pulled, recorder.items) == (3, [1, 2, 3])
    subscription.dispose()
    await settle()
    assert source.closed


async def test_from_async_iterable_completes_and_fails() -> None:
    assert await collect(from_async_iterable(CountingSource(limit=3).items())) == [1, 2, 3]

    async def broken() -> AsyncIterator[int]:
        yield 1
        raise ConnectionError("feed lost")

    with pytest.raises(ConnectionError, match="feed lost"):
        await collect(from_async_iterable(broken()))


def test_from_async_iterable_rejects_a_sync_iterable() -> None:
    with pytest.raises(TypeError, match=r"needs an async iterable.*rxflows.from_iterable"):
        from_async_iterable([1, 2])  # type: ignore[arg-type]  # misuse under test


async def test_iterator_keeps_the_source_at_most_prefetch_ahead() -> None:
    source = CountingSource()
    consumed = 0
    async with contextlib.aclosing(
        to_async_iterator(from_async_iterable(source.items()), prefetch=4)
    ) as stream:
        async for item in stream:
            consumed += 1
            assert item == consumed
            await asyncio.sleep(1)  # a slow consumer
            assert source.pulled <= consumed + 4
            if consumed == 20:
                break
    await settle()
    assert source.closed


async def test_iterator_breaking_out_closes_the_source() -> None:
    source = CountingSource()
    async for item in to_async_iterator(from_async_iterable(source.items())):
        if item == 3:
            break
    await settle()
    assert source.closed


async def test_iterator_raises_the_error_after_the_items_before_it() -> None:
    seen: list[int] = []
    source = reactivex.concat(reactivex.of(1, 2), reactivex.throw(ValueError("bad frame")))

    async def consume() -> None:
        async for item in to_async_iterator(source):
            seen.append(item)

    with pytest.raises(ValueError, match="bad frame"):
        await consume()
    assert seen == [1, 2]


async def test_iterator_of_a_push_source_gets_everything() -> None:
    subject: reactivex.subject.Subject[int] = reactivex.subject.Subject()
    stream = to_async_iterator(subject)
    first = asyncio.ensure_future(anext(stream))
    await settle()
    for i in range(5):
        subject.on_next(i)
    subject.on_completed()
    assert await first == 0
    assert [x async for x in stream] == [1, 2, 3, 4]


async def test_iterator_rejects_a_bad_prefetch() -> None:
    with pytest.raises(ValueError, match="prefetch must be a positive int, got 0"):
        await anext(to_async_iterator(reactivex.of(1), prefetch=0))


async def test_collect_cancelled_disposes_the_subscription() -> None:
    cancelled = asyncio.Event()

    async def slow() -> int:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1

    waiting = asyncio.create_task(collect(from_async(slow)))
    await asyncio.sleep(1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await settle()
    assert cancelled.is_set()
