"""map_async as marble diagrams: coroutines and marble frames share one virtual clock.

One frame is 1 ms, so ``await asyncio.sleep(n * FRAME)`` takes exactly n frames.
"""

from __future__ import annotations

import asyncio

from rxflows import operators as ops
from rxflows.testing import Notification, marbles

FRAME = 0.001


class Work:
    """``value`` frames of work returning ``value * 10``; records starts and cancellations."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.cancelled: list[int] = []

    async def __call__(self, value: int) -> int:
        self.started.append(value)
        try:
            await asyncio.sleep(value * FRAME)
        except asyncio.CancelledError:
            self.cancelled.append(value)
            raise
        if value == 0:
            raise ValueError("zero-length clip")
        return value * 10


def test_unordered_results_come_as_they_finish() -> None:
    work = Work()
    with marbles() as m:
        src = m.cold("-a-b-c-|", {"a": 4, "b": 1, "c": 1})
        m.expect(src.pipe(ops.map_async(work, 3))).to_be("----yxz|", {"x": 40, "y": 10, "z": 10})


def test_ordered_results_wait_for_the_ones_before_them() -> None:
    work = Work()
    with marbles() as m:
        src = m.cold("-a-b-c-|", {"a": 4, "b": 1, "c": 1})
        m.expect(src.pipe(ops.map_async(work, 3, ordered=True))).to_equal(
            [
                Notification.on_next(5, 40),  # a finishes at 5
                Notification.on_next(5, 10),  # b finished at 4 and waited for a
                Notification.on_next(6, 10),
                Notification.on_completed(7),
            ]
        )


def test_the_concurrency_bound_holds() -> None:
    work = Work()
    with marbles() as m:
        src = m.cold("(abcd|)", {"a": 5, "b": 5, "c": 5, "d": 5})
        # two at a time: a and b end at frame 5, c and d start then and end at 10
        m.expect(src.pipe(ops.map_async(work, 2))).to_be(
            "-----(xy)-(zw|)", {"x": 50, "y": 50, "z": 50, "w": 50}
        )


def test_an_error_is_delivered_and_cancels_work_in_flight() -> None:
    work = Work()
    with marbles() as m:
        src = m.cold("-a-b-|", {"a": 10, "b": 0})
        m.expect(src.pipe(ops.map_async(work, 3))).to_be(
            "---#", error=ValueError("zero-length clip")
        )
        m.expect_subscriptions(src.subscriptions).to_be("^--!")
    assert work.cancelled == [10]


def test_an_upstream_error_cancels_work_in_flight() -> None:
    work = Work()
    with marbles() as m:
        src = m.cold("-a-#", {"a": 10}, error=ConnectionError("feed lost"))
        m.expect(src.pipe(ops.map_async(work, 3))).to_be("---#", error=ConnectionError("feed lost"))
    assert work.cancelled == [10]


def test_disposing_cancels_work_in_flight() -> None:
    work = Work()
    with marbles() as m:
        src = m.cold("-a-b-c-|", {"a": 3, "b": 9, "c": 9})
        m.expect(src.pipe(ops.map_async(work, 3)), "^-----!").to_be("----x-", {"x": 30})
        m.expect_subscriptions(src.subscriptions).to_be("^-----!")
    assert work.started == [3, 9, 9]
    assert work.cancelled == [9, 9]


def test_a_hot_source_feeding_slow_work() -> None:
    work = Work()
    with marbles() as m:
        src = m.hot("a-b-c-|", {"a": 2, "b": 2, "c": 2})
        m.expect(src.pipe(ops.map_async(work, 1))).to_be("--x-y-(z|)", {"x": 20, "y": 20, "z": 20})
