"""ops.retry as marble diagrams: resubscriptions to the frame, one frame = 1 ms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex.testing import TestScheduler

from rxflows import (
    CircuitOpenError,
    ConfigurationError,
    LoopManagerError,
    RetryAttempt,
    RetryPolicy,
)
from rxflows import operators as ops
from rxflows.testing import marbles

FRAME = 0.001


def test_a_cold_source_is_resubscribed_after_each_delay_and_items_pass_through() -> None:
    with marbles() as m:
        src = m.cold("-a-#")
        m.expect(src.pipe(ops.retry(max_attempts=3, delay=2 * FRAME, backoff=1))).to_be(
            "-a----a----a-#"
        )
        m.expect_subscriptions(src.subscriptions).to_be(["^--!", "-----^--!", "----------^--!"])


def test_delays_grow_exponentially() -> None:
    with marbles() as m:
        src = m.cold("-a-#")
        # errors at 3, 7, 12 -> waits of 1, 2, 4 frames; the fourth error passes
        m.expect(src.pipe(ops.retry(max_attempts=4, delay=FRAME))).to_be("-a---a----a------a-#")
        m.expect_subscriptions(src.subscriptions).to_be(
            ["^--!", "----^--!", "---------^--!", "----------------^--!"]
        )


def test_a_later_attempt_that_completes_completes_the_stream() -> None:
    with marbles() as m:
        attempts = iter([m.cold("-a-#"), m.cold("-b|")])
        src = reactivex.defer(lambda _: next(attempts))
        m.expect(src.pipe(ops.retry(max_attempts=3, delay=2 * FRAME))).to_be("-a----b|")


def test_disposing_during_the_backoff_cancels_the_resubscription() -> None:
    with marbles() as m:
        src = m.cold("-a-#")
        m.expect(src.pipe(ops.retry(delay=2 * FRAME)), "^---!").to_be("-a--")
        m.expect_subscriptions(src.subscriptions).to_be(["^--!"])
    assert len(src.subscriptions) == 1


def test_errors_that_are_not_retried_pass_at_once() -> None:
    with marbles() as m:
        src = m.cold("-a-#", error=ValueError("bad manifest"))
        retried = src.pipe(ops.retry(delay=FRAME, retry_on=ConnectionError))
        m.expect(retried).to_be("-a-#", error=ValueError("bad manifest"))


def test_the_deadline_stops_the_resubscriptions() -> None:
    with marbles() as m:
        src = m.cold("-a-#")
        # the next attempt would start at 5 (ok, deadline 6), then at 10 (too late)
        retried = src.pipe(
            ops.retry(max_attempts=9, delay=2 * FRAME, backoff=1, deadline=6 * FRAME)
        )
        m.expect(retried).to_be("-a----a-#")


def test_full_jitter_from_a_scripted_random_source() -> None:
    with marbles() as m:
        src = m.cold("-a-#")
        # r = 0.5: waits of 0.5 * 4 = 2 frames, then 0.5 * 8 = 4 frames
        retried = src.pipe(
            ops.retry(max_attempts=3, delay=4 * FRAME, jitter="full", random=lambda: 0.5)
        )
        m.expect(retried).to_be("-a----a------a-#")


def test_a_circuit_open_error_waits_for_its_retry_after() -> None:
    error = CircuitOpenError("circuit 'cdn' is open", name="cdn", retry_after=5 * FRAME)
    with marbles() as m:
        src = m.cold("-#", error=error)
        m.expect(src.pipe(ops.retry(max_attempts=2, delay=FRAME))).to_be("-------#", error=error)
        m.expect_subscriptions(src.subscriptions).to_be(["^!", "------^!"])


def test_each_subscription_has_its_own_attempt_count() -> None:
    with marbles() as m:
        src = m.cold("-a-#")
        retried = src.pipe(ops.retry(max_attempts=3, delay=2 * FRAME))
        # waits of 2 then 4 frames for each subscriber, counted from its own errors
        m.expect(retried).to_be("-a----a------a-#")
        m.expect(retried, "--^").to_be("---a----a------a-#")


def test_a_source_failing_while_it_is_subscribed_is_retried_later() -> None:
    subscribed: list[int] = []

    def fail_now(observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None) -> Any:
        subscribed.append(1)
        observer.on_error(ConnectionError("refused"))

    with marbles() as m:
        src: Observable[Any] = reactivex.create(fail_now)
        m.expect(src.pipe(ops.retry(max_attempts=3, delay=FRAME))).to_be(
            "---#", error=ConnectionError("refused")
        )
    assert len(subscribed) == 3


def test_hooks_see_each_retry_in_virtual_time_and_a_raising_hook_is_the_error() -> None:
    records: list[RetryAttempt] = []
    events: list[RetryAttempt] = []

    def page(record: RetryAttempt) -> None:
        if record.attempt == 2:
            raise RuntimeError("paged")
        records.append(record)

    policy = RetryPolicy(max_attempts=5, delay=2 * FRAME, on_retry=page)
    policy.events.subscribe(events.append)
    with marbles() as m:
        src = m.cold("-a-#")
        m.expect(src.pipe(ops.retry(policy))).to_be("-a----a-#", error=RuntimeError("paged"))
    assert [(r.attempt, r.delay, r.operation) for r in records] == [(1, 2 * FRAME, "ops.retry")]
    # the hook runs before the events: the record it rejected is not published
    assert [round(r.elapsed / FRAME) for r in events] == [3]


def test_a_policy_with_overrides() -> None:
    policy = RetryPolicy(max_attempts=2, delay=FRAME)
    with marbles() as m:
        src = m.cold("-#")
        m.expect(src.pipe(ops.retry(policy, max_attempts=3))).to_be("------#")
        m.expect_subscriptions(src.subscriptions).to_be(["^!", "--^!", "-----^!"])


def test_the_given_attempts_are_attached_to_the_final_error() -> None:
    error = ConnectionError("feed lost")
    with marbles() as m:
        src = m.cold("#", error=error)
        m.run(src.pipe(ops.retry(max_attempts=2, delay=FRAME)))
    assert vars(error)["rxflows_attempts"] == 2
    assert error.__notes__ == ["rxflows retry: gave up after 2 attempts: max_attempts=2 reached"]


# -- schedulers ------------------------------------------------------------------------------


def test_an_explicit_rx_scheduler_times_the_waits_without_an_event_loop() -> None:
    explicit, at_subscribe = TestScheduler(), TestScheduler()
    subscriptions: list[float] = []

    def subscribe(observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None) -> Any:
        subscriptions.append(explicit.clock)
        observer.on_error(ConnectionError("down"))

    source: Observable[Any] = reactivex.create(subscribe)
    retried = source.pipe(ops.retry(max_attempts=4, delay=10.0, scheduler=explicit))
    errors: list[Exception] = []
    retried.subscribe(on_error=errors.append, scheduler=at_subscribe)
    at_subscribe.advance_by(1000)
    assert subscriptions == [0.0]
    explicit.advance_by(1000)
    # waits of 10, 20, then 40 capped at max_delay=30, on the explicit scheduler's clock
    assert subscriptions == [0.0, 10.0, 30.0, 60.0]
    assert len(errors) == 1


def test_the_subscribe_time_scheduler_is_used_and_the_deadline_uses_its_clock() -> None:
    scheduler = TestScheduler()
    seen: list[datetime] = []

    def subscribe(observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None) -> Any:
        seen.append(scheduler.now)
        observer.on_error(ConnectionError("down"))

    retried = reactivex.create(subscribe).pipe(
        ops.retry(max_attempts=10, delay=10.0, backoff=1, deadline=25.0)
    )
    errors: list[Exception] = []
    retried.subscribe(on_error=errors.append, scheduler=scheduler)
    scheduler.advance_by(1000)
    assert [(t - seen[0]).total_seconds() for t in seen] == [0.0, 10.0, 20.0]
    assert len(errors) == 1


def test_without_any_scheduler_or_loop_subscribing_fails_clearly() -> None:
    retried = reactivex.never().pipe(ops.retry())
    with pytest.raises(LoopManagerError, match=r"ops\.retry needs a scheduler"):
        retried.subscribe()


def test_misuse_fails_when_the_operator_is_built() -> None:
    with pytest.raises(TypeError, match=r"for RxPY's retry\(n\) write ops.retry\(max_attempts=n"):
        ops.retry(3)  # type: ignore[arg-type]  # RxPY's signature: the misuse under test
    with pytest.raises(
        ConfigurationError,
        match=r"max_attempts must be a positive int \(the first call included\), got 0",
    ):
        ops.retry(max_attempts=0)
    with pytest.raises(ConfigurationError, match="backoff must be a finite number >= 1"):
        ops.retry(RetryPolicy(), backoff=0.5)
