"""async_retry and RetryPolicy: exact back-off times in virtual time, per-call state,
cancellation, the circuit-breaker interplay, hooks, and misuse errors."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Awaitable, Callable
from random import Random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxflows import (
    Backoff,
    CircuitOpenError,
    ConfigurationError,
    ConstantBackoff,
    DecorrelatedJitter,
    EqualJitter,
    ExponentialBackoff,
    FullJitter,
    Jitter,
    RetryAttempt,
    RetryPolicy,
    async_retry,
)

from .support import run_virtual


def now() -> float:
    return asyncio.get_running_loop().time()


class Flaky:
    """Fails with ``failures`` in turn, then returns ``result``; records when each attempt starts.

    Each attempt takes ``duration`` seconds before failing or returning.
    """

    def __init__(
        self, *failures: Exception, result: str = "ok", duration: float = 0.0, always: bool = False
    ) -> None:
        self.failures = list(failures)
        self.result = result
        self.duration = duration
        self.always = always
        self.starts: list[float] = []
        self.raised: list[Exception] = []

    @property
    def attempts(self) -> int:
        return len(self.starts)

    async def __call__(self) -> str:
        self.starts.append(now())
        if self.duration:
            await asyncio.sleep(self.duration)
        if self.always:
            error: Exception = ConnectionError(f"attempt {self.attempts} failed")
        elif self.failures:
            error = self.failures.pop(0)
        else:
            return self.result
        self.raised.append(error)
        raise error


def since(start: float, times: list[float]) -> list[float]:
    return [t - start for t in times]


def attempts_of(error: BaseException) -> Any:
    return vars(error)["rxflows_attempts"]


# -- the guide's examples --------------------------------------------------------------


async def test_guide_robust_operation_retries_after_one_then_two_seconds() -> None:
    flaky = Flaky(ConnectionError("reset"), TimeoutError("slow"), result="video.mp4")

    async def potentially_failing_operation() -> str:
        return await flaky()

    @async_retry(max_attempts=3, delay=1.0)
    async def robust_operation() -> str:
        return await potentially_failing_operation()

    start = now()
    assert await robust_operation() == "video.mp4"
    assert since(start, flaky.starts) == [0.0, 1.0, 3.0]
    assert now() - start == 3.0
    assert robust_operation.__name__ == "robust_operation"


async def test_guide_robust_operation_raises_the_last_error_unwrapped_when_it_gives_up() -> None:
    flaky = Flaky(always=True)

    @async_retry(max_attempts=3, delay=1.0)
    async def robust_operation() -> str:
        return await flaky()

    start = now()
    with pytest.raises(ConnectionError, match="attempt 3 failed") as info:
        await robust_operation()
    assert info.value is flaky.raised[-1]
    assert since(start, flaky.starts) == [0.0, 1.0, 3.0]
    assert now() - start == 3.0  # no sleep after the last attempt
    assert attempts_of(info.value) == 3
    assert info.value.__notes__ == [
        "rxflows retry: gave up after 3 attempts: max_attempts=3 reached"
    ]


async def test_the_guides_exponential_backoff_pattern_and_ours_attempt_at_the_same_times() -> None:
    # The guide's "Retry with Exponential Backoff" helper, as written.
    async def exponential_backoff_retry(
        func: Callable[[], Awaitable[str]], max_attempts: int = 5, base_delay: float = 1.0
    ) -> str | None:
        for attempt in range(max_attempts):
            try:
                return await func()
            except Exception as e:
                if attempt == max_attempts - 1:
                    raise e

                delay = base_delay * (2**attempt)  # Exponential backoff
                await asyncio.sleep(delay)
        return None

    guide, ours = Flaky(always=True), Flaky(always=True)
    start = now()
    with pytest.raises(ConnectionError):
        await exponential_backoff_retry(guide, max_attempts=5, base_delay=1.0)
    guide_end = now()
    with pytest.raises(ConnectionError):
        await RetryPolicy(max_attempts=5, delay=1.0).call(ours)
    assert since(start, guide.starts) == [0.0, 1.0, 3.0, 7.0, 15.0]
    assert since(guide_end, ours.starts) == [0.0, 1.0, 3.0, 7.0, 15.0]


async def test_a_policy_is_a_decorator_and_a_caller_with_arguments() -> None:
    seen: list[tuple[str, int]] = []
    policy = RetryPolicy(max_attempts=2, delay=0.5)

    @policy
    async def transcode(name: str, *, height: int) -> str:
        seen.append((name, height))
        if len(seen) == 1:
            raise OSError("ffmpeg crashed")
        return f"{name}@{height}p"

    async def upload(name: str, *, bucket: str) -> str:
        return f"{bucket}/{name}"

    assert await transcode("clip-1", height=720) == "clip-1@720p"
    assert seen == [("clip-1", 720), ("clip-1", 720)]
    assert await policy.call(upload, "clip-1.webm", bucket="videos") == "videos/clip-1.webm"


async def test_an_instance_with_an_async_call_method_can_be_decorated() -> None:
    flaky = Flaky(ConnectionError("once"))
    retried = async_retry(max_attempts=2, delay=0.25)(flaky)
    assert await retried() == "ok"
    assert flaky.attempts == 2


# -- back-off and jitter ---------------------------------------------------------------


async def test_exponential_backoff_is_capped_at_max_delay() -> None:
    flaky = Flaky(always=True)
    start = now()
    with pytest.raises(ConnectionError):
        await RetryPolicy(max_attempts=6, delay=1.0, backoff=3.0, max_delay=5.0).call(flaky)
    # delays 1, 3, 5 (9 capped), 5, 5
    assert since(start, flaky.starts) == [0.0, 1.0, 4.0, 9.0, 14.0, 19.0]


async def test_backoff_one_is_a_constant_delay() -> None:
    flaky = Flaky(always=True)
    start = now()
    with pytest.raises(ConnectionError):
        await RetryPolicy(max_attempts=4, delay=0.5, backoff=1).call(flaky)
    assert since(start, flaky.starts) == [0.0, 0.5, 1.0, 1.5]


@pytest.mark.parametrize(
    ("jitter", "expected_delays"),
    [
        # d = min(5, 1 * 2 ** (n - 1)) = 1, 2, 4, 5; r = 0.5, 0.25, 0.75, 0.5
        ("none", [1.0, 2.0, 4.0, 5.0]),
        ("full", [0.5, 0.5, 3.0, 2.5]),  # r * d
        ("equal", [0.75, 1.25, 3.5, 3.75]),  # d/2 + r * d/2
        # min(5, 1 + (3 * prev - 1) * r), prev starting at 1: 2, 2.25, 5.3125 -> 5, 8 -> 5
        ("decorrelated", [2.0, 2.25, 5.0, 5.0]),
    ],
)
async def test_each_jitter_gives_exact_delays_from_the_random_source(
    jitter: str, expected_delays: list[float]
) -> None:
    draws = iter([0.5, 0.25, 0.75, 0.5])
    drawn: list[float] = []

    def random_source() -> float:
        drawn.append(next(draws))
        return drawn[-1]

    records: list[RetryAttempt] = []
    policy = RetryPolicy(
        max_attempts=5,
        delay=1.0,
        max_delay=5.0,
        jitter=jitter,
        random=random_source,
        on_retry=records.append,
    )
    flaky = Flaky(always=True)
    start = now()
    with pytest.raises(ConnectionError):
        await policy.call(flaky)
    assert [r.delay for r in records] == expected_delays
    starts = [0.0]
    for d in expected_delays:
        starts.append(starts[-1] + d)
    assert since(start, flaky.starts) == starts
    assert len(drawn) == (0 if jitter == "none" else 4)


async def test_a_seeded_random_gives_reproducible_full_jitter() -> None:
    twin = Random(2024)
    expected = [min(30.0, 0.5 * 2.0 ** (n - 1)) * twin.random() for n in (1, 2, 3, 4)]
    records: list[RetryAttempt] = []
    policy = RetryPolicy(
        max_attempts=5, delay=0.5, jitter=Jitter.FULL, random=Random(2024), on_retry=records.append
    )
    with pytest.raises(ConnectionError):
        await policy.call(Flaky(always=True))
    assert [r.delay for r in records] == expected
    assert len(set(expected)) == 4


async def test_a_backoff_strategy_replaces_the_keywords_and_max_delay_still_caps_it() -> None:
    records: list[RetryAttempt] = []
    strategy = EqualJitter(ExponentialBackoff(2.0, 3.0))  # 2, 6, 18 before jitter
    policy = RetryPolicy(
        max_attempts=4, wait=strategy, max_delay=10.0, random=lambda: 1.0, on_retry=records.append
    )
    assert policy.strategy is strategy
    with pytest.raises(ConnectionError):
        await policy.call(Flaky(always=True))
    assert [r.delay for r in records] == [2.0, 6.0, 10.0]  # 18 capped


async def test_a_plain_callable_can_be_the_wait_strategy() -> None:
    calls: list[tuple[int, float | None]] = []

    def linear(retry: int, previous: float | None, random: Callable[[], float]) -> float:
        calls.append((retry, previous))
        return 0.25 * retry

    flaky = Flaky(always=True)
    start = now()
    with pytest.raises(ConnectionError):
        await RetryPolicy(max_attempts=4, wait=linear).call(flaky)
    assert calls == [(1, None), (2, 0.25), (3, 0.5)]
    assert since(start, flaky.starts) == [0.0, 0.25, 0.75, 1.5]


def test_strategies_compute_the_documented_formulas() -> None:
    half = lambda: 0.5  # noqa: E731
    assert ConstantBackoff(0.5)(7, 3.0, half) == 0.5
    assert [ExponentialBackoff(0.5, 3.0)(n, None, half) for n in (1, 2, 3)] == [0.5, 1.5, 4.5]
    assert ExponentialBackoff(1.0, 2.0, 60.0)(10_000, None, half) == 60.0  # no OverflowError
    assert ExponentialBackoff(1.0, 2.0)(10_000, None, half) == math.inf
    assert FullJitter(ConstantBackoff(3.0))(1, None, lambda: 0.25) == 0.75
    assert EqualJitter(ConstantBackoff(3.0))(1, None, lambda: 0.0) == 1.5
    assert DecorrelatedJitter(1.0, 100.0)(1, None, lambda: 0.999) == pytest.approx(2.998)
    assert DecorrelatedJitter(1.0, 100.0)(2, 10.0, lambda: 0.0) == 1.0
    assert DecorrelatedJitter(1.0, 20.0)(2, 10.0, lambda: 0.9) == 20.0
    assert isinstance(FullJitter(ConstantBackoff(1.0)), Backoff)


async def test_a_wait_strategy_returning_nonsense_fails_loudly_and_negative_waits_are_zero() -> (
    None
):
    flaky = Flaky(always=True)
    with pytest.raises(TypeError, match=r"returned nan for retry 1"):
        await RetryPolicy(wait=lambda n, p, r: math.nan).call(flaky)
    flaky = Flaky(always=True)
    start = now()
    with pytest.raises(ConnectionError):
        await RetryPolicy(max_attempts=2, wait=lambda n, p, r: -3.0).call(flaky)
    assert since(start, flaky.starts) == [0.0, 0.0]


# -- deadline --------------------------------------------------------------------------


async def test_the_deadline_stops_retries_instead_of_sleeping_past_it() -> None:
    flaky = Flaky(always=True)
    start = now()
    with pytest.raises(ConnectionError, match="attempt 4 failed") as info:
        await RetryPolicy(max_attempts=10, delay=1.0, deadline=10.0).call(flaky)
    # attempts at 0, 1, 3, 7; the next would start at 15 > 10
    assert since(start, flaky.starts) == [0.0, 1.0, 3.0, 7.0]
    assert now() - start == 7.0
    assert attempts_of(info.value) == 4
    (note,) = info.value.__notes__
    assert "gave up after 4 attempts" in note
    assert "8s from now" in note
    assert "deadline=10s" in note


async def test_an_attempt_may_start_exactly_at_the_deadline() -> None:
    flaky = Flaky(always=True, duration=3.0)
    start = now()
    with pytest.raises(ConnectionError):
        await RetryPolicy(max_attempts=10, delay=1.0, backoff=1, deadline=8.0).call(flaky)
    # 0-3, wait 1, 4-7, wait 1, 8-11 (starts at the deadline); the next would start at 12
    assert since(start, flaky.starts) == [0.0, 4.0, 8.0]
    assert now() - start == 11.0  # the running attempt was not interrupted


# -- what is retried -------------------------------------------------------------------


async def test_only_retry_on_types_are_retried() -> None:
    flaky = Flaky(ConnectionError("reset"), ValueError("bad codec"))
    with pytest.raises(ValueError, match="bad codec") as info:
        await RetryPolicy(max_attempts=5, delay=0.5, retry_on=ConnectionError).call(flaky)
    assert flaky.attempts == 2
    assert attempts_of(info.value) == 2
    assert info.value.__notes__ == [
        "rxflows retry: gave up after 2 attempts: ValueError is not retried (retry_on)"
    ]


async def test_give_up_on_wins_over_retry_on() -> None:
    policy = RetryPolicy(max_attempts=5, delay=0.5, retry_on=OSError, give_up_on=PermissionError)
    flaky = Flaky(ConnectionError("reset"), PermissionError("denied"))
    with pytest.raises(PermissionError) as info:
        await policy.call(flaky)
    assert flaky.attempts == 2
    assert "PermissionError is never retried (give_up_on)" in info.value.__notes__[0]


async def test_retry_if_decides_on_the_exception() -> None:
    policy = RetryPolicy(max_attempts=5, delay=0.5, retry_if=lambda e: "503" in str(e))
    flaky = Flaky(OSError("HTTP 503"), OSError("HTTP 503"), OSError("HTTP 404"))
    start = now()
    with pytest.raises(OSError, match="404"):
        await policy.call(flaky)
    assert since(start, flaky.starts) == [0.0, 0.5, 1.5]


async def test_a_raising_retry_if_fails_the_call_with_its_own_error() -> None:
    def broken(error: Exception) -> bool:
        raise KeyError("no status")

    flaky = Flaky(OSError("HTTP 503"))
    with pytest.raises(KeyError) as info:
        await RetryPolicy(retry_if=broken).call(flaky)
    assert isinstance(info.value.__context__, OSError)
    assert flaky.attempts == 1


async def test_a_function_returning_a_plain_value_is_a_type_error_not_retried() -> None:
    calls: list[int] = []

    def not_async() -> int:
        calls.append(1)
        return 1

    with pytest.raises(TypeError, match="returned int, not an awaitable"):
        await RetryPolicy().call(not_async)  # type: ignore[arg-type]  # the misuse under test
    assert calls == [1]


async def test_a_synchronous_raise_from_the_callable_is_retried_too() -> None:
    calls: list[float] = []

    def starts_request() -> Awaitable[str]:
        calls.append(now())
        if len(calls) == 1:
            raise ConnectionRefusedError("no route")
        return asyncio.sleep(0, result="ok")

    start = now()
    assert await RetryPolicy(delay=0.5).call(starts_request) == "ok"
    assert since(start, calls) == [0.0, 0.5]


# -- the circuit-breaker interplay ------------------------------------------------------------


def circuit_open(retry_after: float | None) -> CircuitOpenError:
    return CircuitOpenError("circuit 'api' is open", name="api", retry_after=retry_after)


async def test_a_circuit_open_error_is_not_retried_before_its_retry_after() -> None:
    flaky = Flaky(circuit_open(5.0), circuit_open(None), circuit_open(0.5))
    start = now()
    assert await RetryPolicy(max_attempts=4, delay=1.0).call(flaky) == "ok"
    # waits max(1, 5) = 5; then None: the usual 2; then max(4, 0.5) = 4
    assert since(start, flaky.starts) == [0.0, 5.0, 7.0, 11.0]


async def test_a_circuit_open_longer_than_max_delay_gives_up_at_once() -> None:
    records: list[RetryAttempt] = []
    policy = RetryPolicy(max_attempts=5, delay=1.0, max_delay=30.0)
    policy.events.subscribe(records.append)
    flaky = Flaky(circuit_open(60.0))
    start = now()
    with pytest.raises(CircuitOpenError) as info:
        await policy.call(flaky)
    assert now() == start
    assert attempts_of(info.value) == 1
    assert (
        "circuit breaker 'api' stays open 60s more, longer than max_delay=30s"
        in (info.value.__notes__[0])
    )
    assert records[-1].gave_up


async def test_a_circuit_open_past_the_deadline_gives_up_at_once() -> None:
    flaky = Flaky(circuit_open(20.0))
    start = now()
    with pytest.raises(CircuitOpenError) as info:
        await RetryPolicy(max_attempts=5, max_delay=60.0, deadline=15.0).call(flaky)
    assert now() == start
    assert "past deadline=15s" in info.value.__notes__[0]


# -- cancellation ----------------------------------------------------------------------


async def test_cancellation_during_a_call_propagates_at_once() -> None:
    flaky = Flaky(always=True, duration=10.0)
    task = asyncio.ensure_future(RetryPolicy(max_attempts=5, delay=1.0).call(flaky))
    start = now()
    await asyncio.sleep(2.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert now() - start == 2.0
    assert flaky.attempts == 1
    await asyncio.sleep(100)
    assert flaky.attempts == 1


async def test_cancellation_during_the_backoff_sleep_propagates_at_once() -> None:
    flaky = Flaky(always=True)
    task = asyncio.ensure_future(RetryPolicy(max_attempts=5, delay=5.0).call(flaky))
    start = now()
    await asyncio.sleep(2.0)
    assert flaky.attempts == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert now() - start == 2.0
    await asyncio.sleep(100)
    assert flaky.attempts == 1


async def test_a_cancelled_error_raised_by_the_function_is_never_retried() -> None:
    calls: list[int] = []

    async def cancelled_inside() -> None:
        calls.append(1)
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError) as info:
        await RetryPolicy(max_attempts=5, delay=0.0).call(cancelled_inside)
    assert calls == [1]
    assert not hasattr(info.value, "__notes__")  # passed through untouched, not "given up"
    assert "rxflows_attempts" not in vars(info.value)


# -- per-call state ------------------------------------------------------------------------------


async def test_concurrent_calls_never_share_attempt_counts_or_previous_delays() -> None:
    records: list[RetryAttempt] = []
    # decorrelated with r = 0.5: 1 + (3 * prev - 1) / 2 -> 2.0, then 3.5 (prev = 2)
    policy = RetryPolicy(
        max_attempts=3,
        delay=1.0,
        jitter="decorrelated",
        random=lambda: 0.5,
        on_retry=records.append,
    )
    clips = {"a": Flaky(OSError("a1"), OSError("a2")), "b": Flaky(OSError("b1"), OSError("b2"))}

    @policy
    async def render(name: str) -> str:
        return await clips[name]() + name

    start = now()
    assert list(await asyncio.gather(render("a"), render("b"))) == ["oka", "okb"]
    for flaky in clips.values():
        assert since(start, flaky.starts) == [0.0, 2.0, 5.5]
    assert [(r.error.args[0], r.attempt, r.delay) for r in records] == [
        ("a1", 1, 2.0),
        ("b1", 1, 2.0),
        ("a2", 2, 3.5),
        ("b2", 2, 3.5),
    ]


# -- hooks and events ------------------------------------------------------------------


async def test_on_retry_sees_each_retry_and_events_see_the_give_up_too() -> None:
    hooked: list[RetryAttempt] = []
    events: list[RetryAttempt] = []
    policy = RetryPolicy(max_attempts=3, delay=1.0, on_retry=hooked.append)
    subscription = policy.events.subscribe(events.append)
    flaky = Flaky(always=True, duration=0.5)

    @policy
    async def fetch_manifest() -> str:
        return await flaky()

    start = now()
    with pytest.raises(ConnectionError):
        await fetch_manifest()
    subscription.dispose()
    assert [(r.attempt, r.delay, r.time - start, r.elapsed) for r in hooked] == [
        (1, 1.0, 0.5, 0.5),
        (2, 2.0, 2.0, 2.0),
    ]
    assert hooked == events[:2]
    last = events[2]
    assert (last.attempt, last.delay, last.time - start, last.gave_up) == (3, None, 4.5, True)
    assert last.reason == "rxflows retry: gave up after 3 attempts: max_attempts=3 reached"
    assert last.error is flaky.raised[-1]
    assert {r.operation for r in events} == {
        "test_on_retry_sees_each_retry_and_events_see_the_give_up_too.<locals>.fetch_manifest"
    }
    assert not hooked[0].gave_up


async def test_a_raising_on_retry_hook_stops_the_retries() -> None:
    def alarm(record: RetryAttempt) -> None:
        raise RuntimeError(f"paged on attempt {record.attempt}")

    flaky = Flaky(always=True)
    with pytest.raises(RuntimeError, match="paged on attempt 1") as info:
        await RetryPolicy(on_retry=alarm).call(flaky)
    assert isinstance(info.value.__context__, ConnectionError)
    assert flaky.attempts == 1


# -- misuse ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"max_attempts": 0}, "max_attempts", "max_attempts must be a positive int"),
        ({"max_attempts": 2.5}, "max_attempts", "got 2.5"),
        ({"max_attempts": True}, "max_attempts", "got True"),
        ({"delay": -1}, "delay", "delay must be a number of seconds >= 0, got -1"),
        ({"delay": math.nan}, "delay", "got nan"),
        ({"backoff": 0.5}, "backoff", "backoff must be a finite number >= 1, got 0.5"),
        ({"max_delay": -2.0}, "max_delay", "max_delay must be a number of seconds >= 0"),
        ({"delay": 5, "max_delay": 2}, "max_delay", "max_delay must be >= delay (5.0), got 2.0"),
        ({"deadline": -1}, "deadline", "deadline must be a positive number of seconds or None"),
        ({"deadline": 0}, "deadline", "got 0"),
        ({"jitter": "fulll"}, "jitter", "did you mean 'full'?"),
        ({"jitter": 3}, "jitter", "jitter must be one of 'none', 'full', 'equal', 'decorrelated'"),
        ({"retry_on": ()}, "retry_on", "retry_on must name at least one exception class"),
        ({"retry_on": asyncio.CancelledError}, "retry_on", "never retried"),
        ({"give_up_on": (ValueError, KeyboardInterrupt)}, "give_up_on", "KeyboardInterrupt"),
        ({"wait": ConstantBackoff(1.0), "jitter": "full"}, "wait", "jitter cannot be given"),
    ],
)
def test_bad_settings_fail_at_construction(
    options: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(
        ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")
    ) as info:
        RetryPolicy(**options)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_if": 3}, "retry_if must be callable or None, got 3"),
        ({"on_retry": "log"}, "on_retry must be callable or None, got 'log'"),
        ({"wait": 2.0}, "wait must be callable or None, got 2.0"),
        ({"random": 42}, "random must be a random.Random, a callable"),
        ({"retry_on": "ConnectionError"}, "retry_on must be an exception class or a tuple"),
        ({"clock": "loop"}, "clock must be an rxflows Clock"),
    ],
)
def test_non_callables_fail_with_type_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        RetryPolicy(**options)


def test_strategy_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="ExponentialBackoff: multiplier must be"):
        ExponentialBackoff(1.0, 0.9)
    with pytest.raises(ConfigurationError, match=r"DecorrelatedJitter: max_delay must be >= base"):
        DecorrelatedJitter(2.0, 1.0)
    with pytest.raises(ConfigurationError, match="ConstantBackoff: delay must be"):
        ConstantBackoff(-0.1)
    with pytest.raises(TypeError, match="FullJitter: backoff must be callable, got 3"):
        FullJitter(3)  # type: ignore[arg-type]  # the misuse under test


def test_decorating_a_non_async_function_fails_at_decoration() -> None:
    def blocking() -> int:
        return 1

    with pytest.raises(
        TypeError, match=r"async_retry decorates async def functions; got <function"
    ):
        async_retry(max_attempts=3, delay=1.0)(blocking)  # type: ignore[arg-type]  # misuse
    with pytest.raises(
        TypeError, match=r"async_retry decorates async def functions; got 42 \(int\)"
    ):
        async_retry()(42)  # type: ignore[arg-type]  # the misuse under test


def test_async_retry_without_parentheses_says_so() -> None:
    async def fetch() -> None:
        return None

    with pytest.raises(TypeError, match=r"async_retry needs parentheses"):
        async_retry(fetch)  # type: ignore[arg-type]  # the misuse under test


def test_with_a_wait_strategy_max_delay_may_be_below_the_unused_delay() -> None:
    policy = RetryPolicy(wait=ConstantBackoff(0.1), max_delay=0.5)
    assert policy.max_delay == 0.5


def test_a_policy_is_frozen_and_replace_validates() -> None:
    policy = RetryPolicy(max_attempts=4, delay=0.5, retry_on=(ConnectionError, TimeoutError))
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 9  # type: ignore[misc]  # the misuse under test
    assert policy.replace(max_attempts=6).max_attempts == 6
    assert policy.replace(max_attempts=6).retry_on == (ConnectionError, TimeoutError)
    with pytest.raises(ConfigurationError, match="max_attempts"):
        policy.replace(max_attempts=0)
    assert RetryPolicy(retry_on=OSError).retry_on == (OSError,)
    assert RetryPolicy(jitter="equal").jitter is Jitter.EQUAL
    assert RetryPolicy() == RetryPolicy()


# -- properties ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    max_attempts=st.integers(1, 7),
    delay=st.floats(0.0, 5.0),
    backoff=st.floats(1.0, 4.0),
    extra_cap=st.floats(0.0, 20.0),
    jitter=st.sampled_from(["none", "full", "equal", "decorrelated"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_delays_stay_within_bounds_and_attempts_within_the_budget(
    max_attempts: int, delay: float, backoff: float, extra_cap: float, jitter: str, seed: int
) -> None:
    max_delay = delay + extra_cap
    records: list[RetryAttempt] = []
    policy = RetryPolicy(
        max_attempts=max_attempts,
        delay=delay,
        backoff=backoff,
        max_delay=max_delay,
        jitter=jitter,
        random=Random(seed),
        on_retry=records.append,
    )
    flaky = Flaky(always=True)

    async def main() -> None:
        with pytest.raises(ConnectionError):
            await policy.call(flaky)

    run_virtual(main)
    assert flaky.attempts == max_attempts
    delays = [r.delay for r in records]
    assert len(delays) == max_attempts - 1
    for d in delays:
        assert d is not None
        assert 0.0 <= d <= max_delay
    gaps = [b - a for a, b in zip(flaky.starts, flaky.starts[1:], strict=False)]
    assert gaps == pytest.approx(delays, abs=1e-6)
    if jitter == "none":
        assert delays == sorted(delays)  # type: ignore[type-var]  # all floats, checked above


@settings(max_examples=40, deadline=None)
@given(
    max_attempts=st.integers(1, 12),
    delay=st.floats(0.0, 3.0),
    duration=st.sampled_from([0.0, 0.5, 2.0]),
    deadline=st.floats(0.5, 30.0),
)
def test_no_attempt_starts_after_the_deadline(
    max_attempts: int, delay: float, duration: float, deadline: float
) -> None:
    flaky = Flaky(always=True, duration=duration)
    policy = RetryPolicy(max_attempts=max_attempts, delay=delay, deadline=deadline)

    async def main() -> None:
        with pytest.raises(ConnectionError) as info:
            await policy.call(flaky)
        assert attempts_of(info.value) == flaky.attempts

    run_virtual(main)
    assert 1 <= flaky.attempts <= max_attempts
    assert flaky.starts[-1] - flaky.starts[0] <= deadline + 1e-6
