"""ops.circuit_breaker as marble diagrams: every transition, to the frame.

One frame is 1 ms of virtual loop time, and the breaker reads the same loop clock,
so ``timeout=5 * FRAME`` keeps it open for exactly five frames. Each ``expect`` is
one subscription, i.e. one call through the breaker; several observables share one
breaker, as several requests to one dependency would.
"""

from __future__ import annotations

from typing import Any

import pytest
from reactivex import Observable
from reactivex import operators as rx_ops

import rxflows
from rxflows import (
    BreakerEvent,
    BreakerStatistics,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    CountWindow,
    FailureRate,
    SlowCallRate,
    TimeWindow,
)
from rxflows import operators as ops
from rxflows.testing import MarbleContext, Notification, marbles

FRAME = 0.001
DOWN = ConnectionError("dependency down")


class Journal:
    """Records the breaker's events as (frame, kind, state) and every rejection."""

    def __init__(self, m: MarbleContext, breaker: CircuitBreaker) -> None:
        self.m = m
        self.entries: list[tuple[int, str, str]] = []
        self.rejections: list[tuple[int, float | None]] = []
        self.durations: list[tuple[int, float | None, bool]] = []
        breaker.events.subscribe(self.on_event)

    def on_event(self, event: BreakerEvent) -> None:
        frame = self.m.frame_now()
        self.entries.append((frame, event.kind.name, event.state.name))
        if event.kind.name == "REJECTED":
            assert isinstance(event.error, CircuitOpenError)
            self.rejections.append((frame, event.error.retry_after))
        elif event.kind.name in ("SUCCESS", "FAILURE"):
            self.durations.append((frame, event.duration, event.slow))

    def transitions(self) -> list[tuple[int, str]]:
        return [(frame, state) for frame, kind, state in self.entries if kind == "STATE_CHANGED"]


def frames(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / FRAME, 6)


def guard(source: Observable[Any], breaker: CircuitBreaker) -> Observable[Any]:
    return source.pipe(ops.circuit_breaker(breaker))


def test_closed_open_half_open_closed() -> None:
    breaker = CircuitBreaker(failure_threshold=2, timeout=5 * FRAME, name="api")
    with marbles() as m:
        journal = Journal(m, breaker)
        fail = m.cold("-#", error=DOWN)
        ok = m.cold("-a|")
        m.expect(guard(fail, breaker), "^").to_be("-#", error=DOWN)  # failure 1
        m.expect(guard(fail, breaker), "--^").to_be("---#", error=DOWN)  # failure 2: opens at 3
        m.expect(guard(fail, breaker), "----^").to_be("----#", error=CircuitOpenError)
        m.expect(guard(ok, breaker), "-------^").to_be("-------#", error=CircuitOpenError)
        m.expect(guard(ok, breaker), "--------^").to_be("---------a|")  # trial at 8
        m.expect(guard(fail, breaker), "-----------^").to_be("------------#", error=DOWN)
        # rejected subscriptions never reach the source
        m.expect_subscriptions(fail.subscriptions).to_be(["^!", "--^!", "-----------^!"])
        m.expect_subscriptions(ok.subscriptions).to_be(["--------^-!"])
    assert journal.transitions() == [(3, "OPEN"), (8, "HALF_OPEN"), (10, "CLOSED")]
    # retry_after counts down to the end of the open period (frame 8)
    assert [(f, frames(r)) for f, r in journal.rejections] == [(4, 4.0), (7, 1.0)]
    assert breaker.state is CircuitState.CLOSED
    stats = breaker.statistics()
    assert (stats.successes, stats.failures, stats.rejected, stats.opened_count) == (1, 3, 2, 1)
    assert stats.consecutive_failures == 1  # the failure at 12, after closing


def test_a_failed_trial_reopens_for_longer_and_back_off_resets_on_close() -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, timeout=3 * FRAME, open_backoff=2, max_timeout=12 * FRAME
    )
    with marbles() as m:
        journal = Journal(m, breaker)
        fail = m.cold("-#", error=DOWN)
        ok = m.cold("-a|")
        m.expect(guard(fail, breaker)).to_be("-#", error=DOWN)  # opens at 1 for 3: until 4
        m.expect(guard(fail, breaker), "----^").to_be("-----#", error=DOWN)  # trial fails: 6
        m.expect(guard(ok, breaker), "-------^").to_be("-------#", error=CircuitOpenError)
        m.expect(guard(fail, breaker), "-----------^").to_be("------------#", error=DOWN)
        # third period: 12 frames (24 would exceed the cap); open from 12 to 24
        m.expect(guard(ok, breaker), "-----------------------^").to_be(
            "-----------------------#", error=CircuitOpenError
        )
        m.expect(guard(ok, breaker), "------------------------^").to_be(
            "-------------------------a|"
        )
        m.expect(guard(fail, breaker), "---------------------------^").to_be(
            "----------------------------#", error=DOWN
        )
        m.expect(guard(ok, breaker), "------------------------------^").to_be(
            "------------------------------#", error=CircuitOpenError
        )
    assert journal.transitions() == [
        (1, "OPEN"),
        (4, "HALF_OPEN"),
        (5, "OPEN"),
        (11, "HALF_OPEN"),
        (12, "OPEN"),
        (24, "HALF_OPEN"),
        (26, "CLOSED"),
        (28, "OPEN"),
    ]
    assert [(f, frames(r)) for f, r in journal.rejections] == [
        (7, 4.0),  # open from 5 for 6 frames
        (23, 1.0),
        (30, 1.0),  # after closing, the open duration is back to 3 frames: 28 -> 31
    ]


def test_half_open_lets_a_bounded_number_of_trials_through() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=2 * FRAME, half_open_max_calls=2)
    with marbles() as m:
        journal = Journal(m, breaker)
        fail = m.cold("-#", error=DOWN)
        slow_ok = m.cold("---a|")
        m.expect(guard(fail, breaker)).to_be("-#", error=DOWN)  # open from 1 until 3
        m.expect(guard(slow_ok, breaker), "---^").to_be("------a|")  # trial 1: 3 -> 7
        m.expect(guard(slow_ok, breaker), "----^").to_be("-------a|")  # trial 2: 4 -> 8
        # a third call while both trials run is rejected at once, not queued
        m.expect(guard(slow_ok, breaker), "-----^").to_be("-----#", error=CircuitOpenError)
        # trial 1 reported, trial 2 has not: the permits are still both taken
        m.expect(guard(slow_ok, breaker), "-------^").to_be("-------#", error=CircuitOpenError)
        m.expect(guard(fail, breaker), "---------^").to_be("----------#", error=DOWN)
        m.expect_subscriptions(slow_ok.subscriptions).to_be(["---^---!", "----^---!"])
    assert journal.transitions() == [(1, "OPEN"), (3, "HALF_OPEN"), (8, "CLOSED"), (10, "OPEN")]
    assert journal.rejections == [(5, None), (7, None)]  # no promise while trials run


def test_disposing_a_trial_frees_its_permit() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=2 * FRAME)
    with marbles() as m:
        journal = Journal(m, breaker)
        fail = m.cold("-#", error=DOWN)
        slow_ok = m.cold("-----a|")
        m.expect(guard(fail, breaker)).to_be("-#", error=DOWN)  # open from 1 until 3
        m.expect(guard(slow_ok, breaker), "---^-!").to_be("")  # trial, unsubscribed at 5
        m.expect(guard(slow_ok, breaker), "----^").to_be("----#", error=CircuitOpenError)
        m.expect(guard(slow_ok, breaker), "------^").to_be("-----------a|")  # a new trial
        m.expect_subscriptions(slow_ok.subscriptions).to_be(["---^-!", "------^-----!"])
    assert journal.entries == [
        (1, "FAILURE", "CLOSED"),
        (1, "STATE_CHANGED", "OPEN"),
        (3, "STATE_CHANGED", "HALF_OPEN"),
        (4, "REJECTED", "HALF_OPEN"),
        (5, "CANCELLED", "HALF_OPEN"),
        (12, "SUCCESS", "HALF_OPEN"),
        (12, "STATE_CHANGED", "CLOSED"),
    ]
    stats = breaker.statistics()
    assert (stats.cancelled, stats.successes, stats.failures, stats.in_flight) == (1, 1, 1, 0)


def test_disposing_while_closed_counts_as_neither() -> None:
    breaker = CircuitBreaker(failure_threshold=2, timeout=10 * FRAME)
    with marbles() as m:
        fail = m.cold("-#", error=DOWN)
        never_ends = m.cold("-a--")
        m.expect(guard(fail, breaker)).to_be("-#", error=DOWN)
        m.expect(guard(never_ends, breaker), "--^--!").to_be("---a")
        m.expect(guard(fail, breaker), "------^").to_be("-------#", error=DOWN)  # opens at 7
        m.expect(guard(fail, breaker), "--------^").to_be("--------#", error=CircuitOpenError)
    stats = breaker.statistics()
    assert (stats.failures, stats.cancelled, stats.successes) == (2, 1, 0)


def test_values_pass_through_and_completion_is_a_success() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=FRAME)
    with marbles() as m:
        src = m.cold("-a-b-c|", {"a": 1, "b": 2, "c": 3})
        m.expect(guard(src, breaker)).to_be("-a-b-c|", {"a": 1, "b": 2, "c": 3})
        m.expect(guard(src, breaker), "--^").to_be("---a-b-c|", {"a": 1, "b": 2, "c": 3})
    stats = breaker.statistics()
    assert (stats.calls, stats.successes, stats.failures) == (2, 2, 0)
    assert stats.state is CircuitState.CLOSED


def test_a_downstream_retry_meets_the_new_state() -> None:
    breaker = CircuitBreaker(failure_threshold=2, timeout=10 * FRAME)
    with marbles() as m:
        fail = m.cold("-#", error=DOWN)
        # the second failure opens the breaker before retry resubscribes: the third
        # subscription is rejected at once, and the error that ends retry says why
        m.expect(guard(fail, breaker).pipe(rx_ops.retry(5))).to_be("--#", error=CircuitOpenError)
        m.expect_subscriptions(fail.subscriptions).to_be(["^!", "-^!"])
    assert breaker.statistics().rejected == 3  # retry(5): two failures, three rejections


def test_durations_and_slow_calls_are_measured_on_the_loop_clock() -> None:
    breaker = CircuitBreaker(
        trip=SlowCallRate(60, minimum_calls=3),
        window=CountWindow(3),
        slow_call_duration=3 * FRAME,
        timeout=5 * FRAME,
    )
    with marbles() as m:
        journal = Journal(m, breaker)
        just_in_time = m.cold("--a|")  # 3 frames: not over the limit
        slow = m.cold("---a|")  # 4 frames: slow
        m.expect(guard(slow, breaker)).to_be("---a|")
        m.expect(guard(just_in_time, breaker), "-----^").to_be("-------a|")
        # slow, on time, slow: 2 of 3 slow (67% >= 60%) opens at 13
        m.expect(guard(slow, breaker), "---------^").to_be("------------a|")
        m.expect(guard(slow, breaker), "--------------^").to_be(
            "--------------#", error=CircuitOpenError
        )
    assert [(f, frames(d), s) for f, d, s in journal.durations] == [
        (4, 4.0, True),
        (8, 3.0, False),
        (13, 4.0, True),
    ]
    assert journal.transitions() == [(13, "OPEN")]
    assert breaker.statistics().slow_calls == 2


def test_slow_failures_count_as_slow_and_as_failures() -> None:
    breaker = CircuitBreaker(
        trip=FailureRate(100, minimum_calls=2) & SlowCallRate(100, minimum_calls=2),
        window=CountWindow(2),
        slow_call_duration=FRAME,
    )
    with marbles() as m:
        journal = Journal(m, breaker)
        slow_fail = m.cold("--#", error=DOWN)
        fast_fail = m.cold("#", error=DOWN)
        m.expect(guard(fast_fail, breaker)).to_be("#", error=DOWN)
        m.expect(guard(slow_fail, breaker), "-^").to_be("---#", error=DOWN)  # 1 of 2 slow
        m.expect(guard(slow_fail, breaker), "----^").to_be("------#", error=DOWN)  # 2 of 2
    assert journal.transitions() == [(6, "OPEN")]
    stats = breaker.statistics()
    assert (stats.failures, stats.slow_calls, stats.window_slow_calls) == (3, 2, 2)


def test_count_window_failure_rate() -> None:
    breaker = CircuitBreaker(trip=FailureRate(50, minimum_calls=4), window=CountWindow(4))
    with marbles() as m:
        journal = Journal(m, breaker)
        fail = m.cold("#", error=DOWN)
        ok = m.cold("|")
        # F S S S  -> 25%; then F: window S S S F -> 25%; F: S S F F -> 50% opens
        for frame, source in enumerate([fail, ok, ok, ok, fail, fail]):
            expected = "-" * frame + ("#" if source is fail else "|")
            m.expect(guard(source, breaker), "-" * frame + "^").to_be(expected, error=DOWN)
    assert journal.transitions() == [(5, "OPEN")]


def test_time_window_forgets_old_failures() -> None:
    breaker = CircuitBreaker(
        trip=FailureRate(50, minimum_calls=3),
        window=TimeWindow(5 * FRAME, buckets=5),
    )
    probes: list[BreakerStatistics] = []
    with marbles() as m:
        journal = Journal(m, breaker)
        fail = m.cold("-#", error=DOWN)
        ok = m.cold("-|")
        m.expect(guard(fail, breaker)).to_be("-#", error=DOWN)  # F at 1
        m.expect(guard(ok, breaker), "--^").to_be("---|")  # S at 3
        m.expect(guard(ok, breaker), "----^").to_be("-----|")  # S at 5
        # at 7 the failure at 1 has left the window: S S F = 33%, stays closed
        m.expect(guard(fail, breaker), "------^").to_be("-------#", error=DOWN)
        # at 9 the success at 3 has left too: S F F = 67%, opens
        m.expect(guard(fail, breaker), "--------^").to_be("---------#", error=DOWN)
        # read at frame 10, on the loop's clock (outside the loop, LOOP_CLOCK is real time)
        m.scheduler.schedule_relative(10 * FRAME, lambda *_: probes.append(breaker.statistics()))
    assert journal.transitions() == [(9, "OPEN")]
    # at 10 the window holds frames 6-10: the success at 5 has left it too
    stats = probes[0]
    assert (stats.window_calls, stats.window_failures, stats.failure_rate) == (2, 2, 100.0)


def test_half_open_failure_rate_decides_over_the_trials() -> None:
    breaker = CircuitBreaker(
        trip=FailureRate(50, minimum_calls=2),
        window=CountWindow(2),
        timeout=2 * FRAME,
        half_open_max_calls=4,
    )
    with marbles() as m:
        journal = Journal(m, breaker)
        fail = m.cold("-#", error=DOWN)
        ok = m.cold("-|")
        m.expect(guard(fail, breaker)).to_be("-#", error=DOWN)
        m.expect(guard(fail, breaker), "-^").to_be("--#", error=DOWN)  # opens at 2 until 4
        # four trials: one failure in four (25%) is under 50%: closes when all reported
        for frame, source in zip((4, 5, 6, 7), (fail, ok, ok, ok), strict=True):
            expected = "-" * (frame + 1) + ("#" if source is fail else "|")
            m.expect(guard(source, breaker), "-" * frame + "^").to_be(expected, error=DOWN)
        # closed again with an empty window: two failures open it at 11, until 13
        m.expect(guard(fail, breaker), "---------^").to_be("----------#", error=DOWN)
        m.expect(guard(fail, breaker), "----------^").to_be("-----------#", error=DOWN)
        # two failed trials of four are 50% already: reopens before the fourth is asked
        m.expect(guard(fail, breaker), "-------------^").to_be("--------------#", error=DOWN)
        m.expect(guard(ok, breaker), "--------------^").to_be("---------------|")
        m.expect(guard(fail, breaker), "---------------^").to_be("----------------#", error=DOWN)
        m.expect(guard(ok, breaker), "-----------------^").to_be(
            "-----------------#", error=CircuitOpenError
        )
    assert journal.transitions() == [
        (2, "OPEN"),
        (4, "HALF_OPEN"),
        (8, "CLOSED"),
        (11, "OPEN"),
        (13, "HALF_OPEN"),
        (16, "OPEN"),
    ]


def test_forced_open_and_disabled() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=FRAME)
    breaker.force_open()
    with marbles() as m:
        journal = Journal(m, breaker)
        src = m.cold("-a|")
        fail = m.cold("-#", error=DOWN)
        m.expect(guard(src, breaker)).to_be("#", error=CircuitOpenError)
        m.expect(guard(src, breaker), "----------^").to_be("----------#", error=CircuitOpenError)
        m.scheduler.schedule_relative(12 * FRAME, lambda *_: breaker.disable())
        m.expect(guard(fail, breaker), "-------------^").to_be("--------------#", error=DOWN)
        m.expect(guard(src, breaker), "---------------^").to_be("----------------a|")
    assert journal.rejections == [(0, None), (10, None)]
    assert journal.transitions() == [(12, "DISABLED")]
    assert breaker.state is CircuitState.DISABLED


def test_the_operator_stays_demand_aware() -> None:
    breaker = CircuitBreaker()
    pulled: list[int] = []

    def numbers() -> Any:
        for i in range(1_000_000):
            pulled.append(i)
            yield i

    async def double(x: int) -> int:
        return 2 * x

    async def main() -> list[int]:
        source = rxflows.from_iterable(numbers()).pipe(
            ops.circuit_breaker(breaker), ops.map_async(double, 2)
        )
        results: list[int] = []
        items = rxflows.to_async_iterator(source)
        try:
            async for item in items:
                results.append(item)
                if len(results) == 3:
                    break
        finally:
            await items.aclose()
        return results

    from tests.support import run_virtual

    assert sorted(run_virtual(main)) == [0, 2, 4]
    assert len(pulled) < 20  # not a million: demand reached the generator
    stats = breaker.statistics()
    assert (stats.calls, stats.cancelled, stats.in_flight) == (1, 1, 0)


def test_a_rejected_subscription_fails_synchronously_with_the_breaker_name() -> None:
    breaker = CircuitBreaker(name="transcoder")
    breaker.force_open()
    errors: list[Exception] = []
    rxflows.from_iterable([1]).pipe(ops.circuit_breaker(breaker)).subscribe(on_error=errors.append)
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, CircuitOpenError)
    assert error.name == "transcoder"
    assert "transcoder" in str(error)


def test_the_operator_needs_a_breaker() -> None:
    with pytest.raises(TypeError, match="circuit_breaker needs a CircuitBreaker, got int"):
        ops.circuit_breaker(5)  # type: ignore[arg-type]  # the point of the test


def test_notifications_are_exact() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=FRAME)
    with marbles() as m:
        fail = m.cold("-#", error=DOWN)
        recorded = m.run(guard(fail, breaker))
    assert recorded == [Notification.on_error(1, DOWN)]


def test_a_source_that_fails_to_subscribe_gives_the_permit_back() -> None:
    class Broken(rxflows.PullObservable[int]):
        def subscribe_demand(self, observer: Any, scheduler: Any = None) -> Any:
            raise RuntimeError("cannot subscribe")

    breaker = CircuitBreaker(failure_threshold=1, timeout=FRAME)
    with marbles() as m:
        fail = m.cold("-#", error=DOWN)
        m.expect(guard(fail, breaker)).to_be("-#", error=DOWN)  # open from 1 until 2
        probes: list[str] = []

        def subscribe_broken(*_: Any) -> None:
            with pytest.raises(RuntimeError, match="cannot subscribe"):
                guard(Broken(), breaker).subscribe(scheduler=m.scheduler)
            probes.append(breaker.state.name)

        m.scheduler.schedule_relative(2 * FRAME, subscribe_broken)
        ok = m.cold("-a|")
        m.expect(guard(ok, breaker), "---^").to_be("----a|")  # the permit was given back
    assert probes == ["HALF_OPEN"]
    assert breaker.statistics().cancelled == 1
