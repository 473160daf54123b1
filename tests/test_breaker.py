"""CircuitBreaker: the guide's examples, every rule and state, and bad input.

Async tests run on the virtual-time loop (tests/conftest.py): ``await
asyncio.sleep(60)`` returns at once with the loop clock, which the breaker reads,
60 s later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.scheduler import HistoricalScheduler

import rxflows
from rxflows import (
    BreakerEvent,
    BreakerEventKind,
    CallMetrics,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    ConsecutiveFailures,
    CountWindow,
    FailureRate,
    RxFlowsError,
    SlowCallRate,
    TimeWindow,
    TripRule,
    create_async_flow_config,
)
from rxflows import _breaker as breaker_module
from tests.support import run_virtual

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN


class Dependency:
    """A fake dependency: fails while ``failing``, takes ``latency`` seconds."""

    def __init__(self, *, failing: bool = False, latency: float = 0.0) -> None:
        self.failing = failing
        self.latency = latency
        self.calls = 0

    async def __call__(self, value: str = "ok") -> str:
        self.calls += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.failing:
            raise ConnectionError(f"down: {value}")
        return value


async def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    down = Dependency(failing=True)
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await breaker.call(down)


def now() -> float:
    return asyncio.get_running_loop().time()


@pytest.fixture
def seeded_random() -> Iterator[None]:
    state = random.getstate()
    random.seed(20261129)
    yield
    random.setstate(state)


# --- the guide's examples ------------------------------------------------------------


async def test_guide_basic_usage(seeded_random: None, capsys: pytest.CaptureFixture[str]) -> None:
    from rxflows import CircuitBreaker

    circuit_breaker = CircuitBreaker(failure_threshold=5, timeout=60)

    async def unreliable_api_call() -> str:
        # Simulate unreliable API
        if random.random() < 0.3:
            raise Exception("API Error")
        return "Success"

    # Use circuit breaker
    for _ in range(40):
        try:
            result = await circuit_breaker.call(unreliable_api_call)
            print(result)
        except Exception as e:
            print(f"Circuit breaker: {e}")

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 40
    assert set(lines) == {"Success", "Circuit breaker: API Error"}
    stats = circuit_breaker.statistics()
    assert stats.successes == lines.count("Success")
    assert stats.failures == lines.count("Circuit breaker: API Error")
    assert 0 < stats.failures < 20  # about 30% of 40
    assert stats.state is CLOSED  # never five in a row with this seed


async def test_guide_basic_usage_reports_an_open_breaker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    circuit_breaker = CircuitBreaker(failure_threshold=5, timeout=60, name="api")

    async def unreliable_api_call() -> str:
        raise Exception("API Error")

    for _ in range(6):
        try:
            result = await circuit_breaker.call(unreliable_api_call)
            print(result)
        except Exception as e:
            print(f"Circuit breaker: {e}")

    assert capsys.readouterr().out.splitlines() == ["Circuit breaker: API Error"] * 5 + [
        "Circuit breaker: circuit breaker 'api' is open; retry after 60 s"
    ]


class ResilientVideoProcessor:
    """The guide's class, as written."""

    def __init__(self) -> None:
        self.download_circuit_breaker = CircuitBreaker(failure_threshold=3, timeout=30)
        self.process_circuit_breaker = CircuitBreaker(failure_threshold=5, timeout=60)

    async def process_video(self, url: str) -> Any:
        # Download with circuit breaker
        video_data = await self.download_circuit_breaker.call(self.download_video, url)

        # Process with circuit breaker
        result = await self.process_circuit_breaker.call(self.process_video_data, video_data)

        return result  # noqa: RET504 - as the guide writes it

    # supplied by the application (the guide leaves them out)
    async def download_video(self, url: str) -> bytes:
        raise NotImplementedError

    async def process_video_data(self, data: bytes) -> str:
        raise NotImplementedError


class Videos(ResilientVideoProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.cdn_down = False
        self.downloads: list[str] = []

    async def download_video(self, url: str) -> bytes:
        self.downloads.append(url)
        await asyncio.sleep(1)
        if self.cdn_down:
            raise ConnectionError(f"CDN unreachable for {url}")
        return url.encode()

    async def process_video_data(self, data: bytes) -> str:
        await asyncio.sleep(2)
        return f"clip of {data.decode()}"


async def test_guide_resilient_video_processor() -> None:
    processor = Videos()
    assert await processor.process_video("a.mp4") == "clip of a.mp4"

    processor.cdn_down = True
    for name in ("b.mp4", "c.mp4", "d.mp4"):
        with pytest.raises(ConnectionError, match=f"CDN unreachable for {name}"):
            await processor.process_video(name)
    opened_at = now()
    with pytest.raises(CircuitOpenError) as rejected:
        await processor.process_video("e.mp4")
    assert rejected.value.name == processor.download_circuit_breaker.name
    assert rejected.value.retry_after == 30
    assert processor.downloads == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]  # e.mp4 not tried
    assert processor.process_circuit_breaker.state is CLOSED

    processor.cdn_down = False
    await asyncio.sleep(30 - (now() - opened_at))
    assert await processor.process_video("e.mp4") == "clip of e.mp4"
    assert processor.download_circuit_breaker.state is CLOSED


class FaultTolerantService:
    """The guide's class, as written."""

    def __init__(self) -> None:
        self.circuit_breakers = {
            "download": CircuitBreaker(failure_threshold=5, timeout=30),
            "process": CircuitBreaker(failure_threshold=3, timeout=60),
            "upload": CircuitBreaker(failure_threshold=2, timeout=45),
        }

    async def process_video(self, url: Any) -> Any:
        # Download with circuit breaker
        video_data = await self.circuit_breakers["download"].call(self.download_video, url)

        # Process with circuit breaker
        processed_data = await self.circuit_breakers["process"].call(self.process_video, video_data)

        # Upload with circuit breaker
        result = await self.circuit_breakers["upload"].call(self.upload_video, processed_data)

        return result  # noqa: RET504 - as the guide writes it

    async def download_video(self, url: Any) -> Any:
        raise NotImplementedError

    async def upload_video(self, data: Any) -> Any:
        raise NotImplementedError


class Service(FaultTolerantService):
    """Supplies the steps. The guide's ``process_video`` passes itself as the
    processing step, so the inner call (with downloaded data, not a URL) is
    answered here instead of recursing forever."""

    def __init__(self) -> None:
        super().__init__()
        self.uploads_failing = False

    async def download_video(self, url: Any) -> Any:
        await asyncio.sleep(1)
        return {"url": url} if isinstance(url, str) else url

    async def process_video(self, url: Any) -> Any:
        if isinstance(url, dict):  # the processing step
            await asyncio.sleep(2)
            return f"processed {url['url']}"
        return await super().process_video(url)

    async def upload_video(self, data: Any) -> Any:
        await asyncio.sleep(1)
        if self.uploads_failing:
            raise OSError("bucket full")
        return f"uploaded {data}"


async def test_guide_fault_tolerant_service() -> None:
    service = Service()
    start = now()
    assert await service.process_video("v.mp4") == "uploaded processed v.mp4"
    assert now() - start == 4  # 1 s download, 2 s processing, 1 s upload

    service.uploads_failing = True
    for _ in range(2):
        with pytest.raises(OSError, match="bucket full"):
            await service.process_video("w.mp4")
    assert service.circuit_breakers["upload"].state is OPEN
    with pytest.raises(CircuitOpenError) as rejected:
        await service.process_video("x.mp4")
    assert rejected.value.retry_after == 45 - 3  # x.mp4 took 3 s to reach the upload
    assert service.circuit_breakers["download"].state is CLOSED
    assert service.circuit_breakers["process"].state is CLOSED


# --- the consecutive-failures rule and the state machine ------------------------------


async def test_opens_after_failure_threshold_consecutive_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=3, timeout=60)
    ok = Dependency()
    await fail(breaker, 2)
    await breaker.call(ok)  # a success ends the run
    await fail(breaker, 2)
    assert breaker.state is CLOSED
    await fail(breaker)
    assert breaker.state is OPEN
    calls = ok.calls
    with pytest.raises(CircuitOpenError):
        await breaker.call(ok)
    assert ok.calls == calls  # not called while open


async def test_default_is_five_consecutive_failures_and_sixty_seconds() -> None:
    breaker = CircuitBreaker()
    assert repr(breaker.trip) == "ConsecutiveFailures(5)"
    await fail(breaker, 4)
    assert breaker.state is CLOSED
    await fail(breaker)
    assert breaker.state is OPEN
    assert breaker.statistics().retry_after == 60


async def test_rejection_carries_name_and_retry_after() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=30, name="cdn")
    await fail(breaker)
    await asyncio.sleep(12.5)
    with pytest.raises(CircuitOpenError) as rejected:
        await breaker.call(Dependency())
    error = rejected.value
    assert isinstance(error, RxFlowsError)
    assert error.name == "cdn"
    assert error.retry_after == 17.5
    assert str(error) == "circuit breaker 'cdn' is open; retry after 17.5 s"


async def test_open_until_exactly_the_timeout_then_half_open_on_read() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=10)
    await fail(breaker)
    await asyncio.sleep(9.999)
    assert breaker.state is OPEN
    await asyncio.sleep(0.001)
    assert breaker.state is HALF_OPEN  # the lazy move, made by reading the state
    stats = breaker.statistics()
    assert (stats.state, stats.retry_after) == (HALF_OPEN, None)


async def test_a_successful_trial_closes_and_a_failed_one_reopens() -> None:
    breaker = CircuitBreaker(failure_threshold=2, timeout=5)
    await fail(breaker, 2)
    await asyncio.sleep(5)
    await fail(breaker)  # the trial fails: open again, for another 5 s
    assert breaker.state is OPEN
    assert breaker.statistics().retry_after == 5
    await asyncio.sleep(5)
    assert await breaker.call(Dependency(), "back") == "back"
    assert breaker.state is CLOSED
    stats = breaker.statistics()
    assert (stats.consecutive_failures, stats.window_calls, stats.opened_count) == (0, 0, 2)
    await fail(breaker)  # a fresh run: one failure does not reopen
    assert breaker.state is CLOSED


async def test_half_open_trials_are_bounded_and_extra_calls_rejected_at_once() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=1, half_open_max_calls=2)
    await fail(breaker)
    await asyncio.sleep(1)
    slow = Dependency(latency=3)
    trials = [asyncio.create_task(breaker.call(slow, str(i))) for i in range(2)]
    await asyncio.sleep(0)
    started = now()
    with pytest.raises(CircuitOpenError) as rejected:
        await breaker.call(slow, "extra")
    assert now() == started  # rejected at once, not queued
    assert rejected.value.retry_after is None
    assert "half-open" in str(rejected.value)
    assert await asyncio.gather(*trials) == ["0", "1"]
    assert slow.calls == 2
    assert breaker.state is CLOSED


async def test_the_first_failed_trial_reopens_and_late_trials_do_not_count() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=10, half_open_max_calls=2)
    await fail(breaker)
    await asyncio.sleep(10)
    late = asyncio.create_task(breaker.call(Dependency(latency=5)))
    await asyncio.sleep(0)
    await fail(breaker)  # the other trial fails at once
    assert breaker.state is OPEN
    assert await late == "ok"  # reported after the decision: stale
    assert breaker.state is OPEN
    stats = breaker.statistics()
    assert (stats.successes, stats.failures) == (1, 2)


async def test_open_duration_backs_off_up_to_the_cap_and_resets_on_close() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=60, open_backoff=2, max_timeout=240)
    await fail(breaker)
    durations = [breaker.statistics().open_duration]
    for _ in range(3):
        await asyncio.sleep(durations[-1])
        await fail(breaker)  # the trial fails
        durations.append(breaker.statistics().open_duration)
        assert breaker.statistics().retry_after == durations[-1]
    assert durations == [60, 120, 240, 240]
    await asyncio.sleep(240)
    await breaker.call(Dependency())
    assert breaker.statistics().open_duration == 60
    await fail(breaker)
    assert breaker.statistics().retry_after == 60


async def test_stale_outcomes_do_not_move_the_state() -> None:
    breaker = CircuitBreaker(failure_threshold=2, timeout=10)
    slow_failure = asyncio.create_task(breaker.call(Dependency(failing=True, latency=20)))
    await asyncio.sleep(0)
    await fail(breaker, 2)  # opens
    await asyncio.sleep(10)
    await breaker.call(Dependency())  # closes: a new period
    with pytest.raises(ConnectionError):
        await slow_failure  # started two periods ago: counted, but not in the window
    stats = breaker.statistics()
    assert (stats.failures, stats.consecutive_failures, stats.window_calls) == (3, 0, 0)


# --- what counts as a failure -----------------------------------------------------------


async def test_the_users_exception_is_reraised_unwrapped() -> None:
    breaker = CircuitBreaker()
    boom = KeyError("clip-7")

    async def lookup() -> None:
        raise boom

    with pytest.raises(KeyError) as raised:
        await breaker.call(lookup)
    assert raised.value is boom
    assert raised.value.__cause__ is None
    assert raised.traceback[-1].name == "lookup"


async def test_ignored_exceptions_count_as_neither_and_free_the_permit() -> None:
    breaker = CircuitBreaker(failure_threshold=2, timeout=1, ignored=LookupError)

    async def missing() -> None:
        raise KeyError("no such clip")

    await fail(breaker)
    with pytest.raises(KeyError):
        await breaker.call(missing)
    assert breaker.statistics().consecutive_failures == 1  # not reset, not increased
    await fail(breaker)
    assert breaker.state is OPEN
    await asyncio.sleep(1)
    with pytest.raises(KeyError):
        await breaker.call(missing)  # the trial told nothing: its permit is free again
    assert breaker.state is HALF_OPEN
    await breaker.call(Dependency())
    assert breaker.state is CLOSED
    stats = breaker.statistics()
    assert (stats.ignored, stats.failures, stats.successes) == (2, 2, 1)


async def test_unexpected_exceptions_count_as_successes() -> None:
    breaker = CircuitBreaker(failure_threshold=2, expected=(ConnectionError, TimeoutError))

    async def bad_request() -> None:
        raise ValueError("400: malformed clip id")

    await fail(breaker)
    with pytest.raises(ValueError, match="malformed"):
        await breaker.call(bad_request)  # the dependency answered
    await fail(breaker)
    assert breaker.state is CLOSED
    stats = breaker.statistics()
    assert (stats.successes, stats.failures) == (1, 2)


async def test_predicates_classify_exceptions() -> None:
    def is_server_error(error: BaseException) -> bool:
        return isinstance(error, HttpError) and error.status >= 500

    class HttpError(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(status)
            self.status = status

    breaker = CircuitBreaker(
        failure_threshold=1,
        expected=is_server_error,
        ignored=lambda error: isinstance(error, HttpError) and error.status == 429,
    )

    async def respond(status: int) -> None:
        raise HttpError(status)

    for status in (404, 429):
        with pytest.raises(HttpError):
            await breaker.call(respond, status)
    assert breaker.state is CLOSED
    with pytest.raises(HttpError):
        await breaker.call(respond, 503)
    assert breaker.state is OPEN
    stats = breaker.statistics()
    assert (stats.successes, stats.ignored, stats.failures) == (1, 1, 1)


async def test_a_raising_filter_does_not_leak_the_permit() -> None:
    def expected(error: BaseException) -> bool:
        if isinstance(error, KeyError):
            raise RuntimeError("filter bug")
        return True

    async def lookup() -> None:
        raise KeyError("clip")

    breaker = CircuitBreaker(failure_threshold=1, timeout=1, expected=expected)
    await fail(breaker)
    await asyncio.sleep(1)
    with pytest.raises(RuntimeError, match="filter bug") as raised:
        await breaker.call(lookup)  # the trial
    assert isinstance(raised.value.__context__, KeyError)
    assert breaker.state is HALF_OPEN
    await breaker.call(Dependency())  # the permit was given back
    assert breaker.state is CLOSED
    stats = breaker.statistics()
    assert (stats.cancelled, stats.in_flight) == (1, 0)


async def test_a_non_awaitable_result_is_a_type_error_and_counts_as_ignored() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=1)
    await fail(breaker)
    await asyncio.sleep(1)

    def blocking() -> int:
        return 42

    with pytest.raises(TypeError, match="returned int, not an awaitable; pass an async def"):
        await breaker.call(blocking)  # type: ignore[arg-type]  # the point of the test
    assert breaker.state is HALF_OPEN  # permit freed, not counted as a failure
    await breaker.call(Dependency())
    assert breaker.state is CLOSED
    assert breaker.statistics().ignored == 1


async def test_any_awaitable_is_accepted() -> None:
    breaker = CircuitBreaker()
    loop = asyncio.get_running_loop()

    def future_of(value: int) -> asyncio.Future[int]:
        future: asyncio.Future[int] = loop.create_future()
        future.set_result(value)
        return future

    assert await breaker.call(future_of, 7) == 7


# --- cancellation -------------------------------------------------------------------------


async def test_a_cancelled_trial_frees_its_permit() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=1)
    await fail(breaker)
    await asyncio.sleep(1)
    trial = asyncio.create_task(breaker.call(Dependency(latency=100)))
    await asyncio.sleep(1)
    with pytest.raises(CircuitOpenError):
        await breaker.call(Dependency())  # the only permit is taken
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert breaker.state is HALF_OPEN  # not stuck: the permit is back
    await breaker.call(Dependency())
    assert breaker.state is CLOSED
    stats = breaker.statistics()
    assert (stats.cancelled, stats.successes, stats.failures, stats.in_flight) == (1, 1, 1, 0)


async def test_a_timed_out_call_counts_as_neither() -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(breaker.call(Dependency(latency=10)), timeout=1)
    assert breaker.state is CLOSED
    assert breaker.statistics().cancelled == 1


async def test_other_base_exceptions_count_as_neither_and_propagate() -> None:
    class Shutdown(BaseException):
        pass

    async def interrupted() -> None:
        raise Shutdown

    breaker = CircuitBreaker(failure_threshold=1)
    with pytest.raises(Shutdown):
        await breaker.call(interrupted)
    assert breaker.state is CLOSED
    assert breaker.statistics().cancelled == 1


# --- sliding windows and slow calls ---------------------------------------------------------


async def test_count_window_failure_rate_needs_minimum_calls() -> None:
    breaker = CircuitBreaker(trip=FailureRate(50, minimum_calls=4), window=CountWindow(10))
    ok = Dependency()
    await fail(breaker, 3)  # 100%, but only 3 calls
    assert breaker.state is CLOSED
    await breaker.call(ok)  # 4 calls, 75%: the success reaches minimum_calls and trips
    assert breaker.state is OPEN


async def test_count_window_slides() -> None:
    breaker = CircuitBreaker(trip=FailureRate(50, minimum_calls=4), window=CountWindow(4))
    ok = Dependency()
    await fail(breaker)
    for _ in range(3):
        await breaker.call(ok)
    await fail(breaker)  # window S S S F: 25%
    assert breaker.statistics().failure_rate == 25
    await breaker.call(ok)  # S S F S
    await fail(breaker)  # S F S F: 50%
    assert breaker.state is OPEN


async def test_time_window_rate() -> None:
    breaker = CircuitBreaker(trip=FailureRate(60, minimum_calls=3), window=TimeWindow(10))
    ok = Dependency()
    await fail(breaker, 2)
    await asyncio.sleep(10)  # both failures slide out
    await breaker.call(ok)
    await fail(breaker)
    stats = breaker.statistics()
    assert (stats.window_calls, stats.window_failures) == (2, 1)
    await fail(breaker)  # 2 of 3: 67% >= 60%
    assert breaker.state is OPEN


async def test_time_window_default_buckets_are_one_second() -> None:
    assert TimeWindow(60).buckets == 60
    assert TimeWindow(2.5).buckets == 3
    assert TimeWindow(0.25).buckets == 1
    assert TimeWindow(1, buckets=10).buckets == 10


async def test_slow_calls_trip_the_slow_call_rate() -> None:
    breaker = CircuitBreaker(
        trip=SlowCallRate(50, minimum_calls=2), window=CountWindow(2), slow_call_duration=1.0
    )
    await breaker.call(Dependency(latency=1.0))  # exactly the limit: not slow
    assert breaker.statistics().slow_calls == 0
    await breaker.call(Dependency(latency=1.5))
    assert breaker.state is OPEN
    stats = breaker.statistics()
    assert (stats.slow_calls, stats.slow_call_rate, stats.failures) == (1, 50, 0)


async def test_failure_threshold_combines_with_a_trip_rule() -> None:
    breaker = CircuitBreaker(
        failure_threshold=3, trip=FailureRate(90, minimum_calls=5), window=CountWindow(5)
    )
    assert repr(breaker.trip) == "ConsecutiveFailures(3) | FailureRate(90, minimum_calls=5)"
    await fail(breaker, 3)
    assert breaker.state is OPEN


async def test_all_of_rule() -> None:
    rule = ConsecutiveFailures(2) & FailureRate(100, minimum_calls=3)
    breaker = CircuitBreaker(trip=rule, window=CountWindow(3))
    await fail(breaker, 2)  # two in a row, but only 2 calls
    assert breaker.state is CLOSED
    await fail(breaker)
    assert breaker.state is OPEN


async def test_a_custom_rule() -> None:
    class FailuresInWindow(TripRule):
        def __init__(self, n: int) -> None:
            self.n = n

        def should_open(self, metrics: CallMetrics) -> bool:
            return metrics.failures >= self.n

    breaker = CircuitBreaker(trip=FailuresInWindow(2), window=CountWindow(3), timeout=1)
    await fail(breaker)
    await breaker.call(Dependency())
    await fail(breaker)
    assert breaker.state is OPEN
    await asyncio.sleep(1)
    await fail(breaker)  # the default should_reopen: any failed trial
    assert breaker.state is OPEN


def test_rule_reprs_and_composition_flattens() -> None:
    rule = ConsecutiveFailures(3) | FailureRate(50) | SlowCallRate(80, minimum_calls=20)
    assert repr(rule) == (
        "ConsecutiveFailures(3) | FailureRate(50, minimum_calls=10) | "
        "SlowCallRate(80, minimum_calls=20)"
    )
    assert len(rule.rules()) == 3
    both = (ConsecutiveFailures(3) | FailureRate(50)) & SlowCallRate(80)
    assert repr(both) == (
        "(ConsecutiveFailures(3) | FailureRate(50, minimum_calls=10)) & "
        "SlowCallRate(80, minimum_calls=10)"
    )
    with pytest.raises(TypeError, match="combine with other TripRule objects, got int"):
        ConsecutiveFailures(3) | 5  # type: ignore[operator]  # the point of the test


# --- manual control ----------------------------------------------------------------------


async def test_force_open_disable_and_reset() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=1)
    dependency = Dependency()
    breaker.force_open()
    await asyncio.sleep(3600)
    with pytest.raises(CircuitOpenError) as rejected:
        await breaker.call(dependency)
    assert rejected.value.retry_after is None
    assert "forced open" in str(rejected.value)
    states = [breaker.state]

    breaker.disable()
    await fail(breaker, 10)
    states.append(breaker.state)
    assert await breaker.call(dependency) == "ok"

    breaker.reset()
    states.append(breaker.state)
    await fail(breaker)
    states.append(breaker.state)
    breaker.reset()
    states.append(breaker.state)
    assert states == [CircuitState.FORCED_OPEN, CircuitState.DISABLED, CLOSED, OPEN, CLOSED]
    stats = breaker.statistics()
    assert (stats.failures, stats.rejected, stats.calls, stats.window_calls) == (11, 1, 12, 0)


async def test_reset_while_closed_forgets_the_run_and_calls_in_flight() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    await fail(breaker)
    running = asyncio.create_task(breaker.call(Dependency(failing=True, latency=1)))
    await asyncio.sleep(0)
    breaker.reset()
    with pytest.raises(ConnectionError):
        await running
    assert breaker.statistics().consecutive_failures == 0
    await fail(breaker)
    assert breaker.state is CLOSED


# --- decorator --------------------------------------------------------------------------------


async def test_decorator() -> None:
    breaker = CircuitBreaker(failure_threshold=2, timeout=10)
    calls: list[str] = []

    @breaker
    async def upload(path: str, *, bucket: str = "clips") -> str:
        """Upload a clip."""
        calls.append(path)
        if path.endswith(".tmp"):
            raise OSError(f"refusing {path}")
        return f"{bucket}/{path}"

    assert upload.__name__ == "upload"
    assert upload.__doc__ == "Upload a clip."
    assert await upload("a.mp4", bucket="b") == "b/a.mp4"
    for name in ("x.tmp", "y.tmp"):
        with pytest.raises(OSError, match="refusing"):
            await upload(name)
    with pytest.raises(CircuitOpenError):
        await upload("c.mp4")
    assert calls == ["a.mp4", "x.tmp", "y.tmp"]


def test_decorating_a_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="decorates a callable, got 42"):
        CircuitBreaker()(42)  # type: ignore[arg-type]  # the point of the test


# --- events ---------------------------------------------------------------------------------


async def test_events_record_outcomes_and_transitions() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=5, name="cdn", slow_call_duration=2)
    events: list[BreakerEvent] = []
    subscription = breaker.events.subscribe(events.append)
    start = now()
    await breaker.call(Dependency(latency=3))
    await fail(breaker)
    with pytest.raises(CircuitOpenError):
        await breaker.call(Dependency())
    await asyncio.sleep(5)
    await breaker.call(Dependency(latency=1))
    subscription.dispose()
    await fail(breaker)  # not seen
    kinds = [
        (e.kind.name, e.state.name, e.previous_state and e.previous_state.name) for e in events
    ]
    assert kinds == [
        ("SUCCESS", "CLOSED", None),
        ("FAILURE", "CLOSED", None),
        ("STATE_CHANGED", "OPEN", "CLOSED"),
        ("REJECTED", "OPEN", None),
        ("STATE_CHANGED", "HALF_OPEN", "OPEN"),
        ("SUCCESS", "HALF_OPEN", None),
        ("STATE_CHANGED", "CLOSED", "HALF_OPEN"),
    ]
    assert [e.time - start for e in events] == [3, 3, 3, 3, 8, 9, 9]
    assert [e.duration for e in events] == [3, 0, None, None, None, 1, None]
    assert [e.slow for e in events] == [True] + [False] * 6
    assert all(e.name == "cdn" for e in events)
    assert isinstance(events[1].error, ConnectionError)
    assert isinstance(events[3].error, CircuitOpenError)
    assert events[3].error.retry_after == 5


def listeners(breaker: CircuitBreaker) -> int:
    return len(breaker._events.observers)


async def test_event_subscriptions_do_not_leak() -> None:
    breaker = CircuitBreaker()
    subscriptions = [breaker.events.subscribe(lambda _: None) for _ in range(3)]
    assert listeners(breaker) == 3
    subscriptions[1].dispose()
    subscriptions[1].dispose()  # twice is harmless
    assert listeners(breaker) == 2
    for subscription in subscriptions:
        subscription.dispose()
    assert listeners(breaker) == 0


async def test_no_event_is_built_while_nobody_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any) -> None:
        raise AssertionError("an event was built with no subscriber")

    monkeypatch.setattr(breaker_module, "BreakerEvent", forbidden)
    breaker = CircuitBreaker(failure_threshold=1, timeout=1, slow_call_duration=0.5)
    await breaker.call(Dependency(latency=1))
    await fail(breaker)
    with pytest.raises(CircuitOpenError):
        await breaker.call(Dependency())
    await asyncio.sleep(1)
    await breaker.call(Dependency())
    assert breaker.state is CLOSED


async def test_a_failing_subscriber_never_breaks_the_breaker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    breaker = CircuitBreaker(failure_threshold=1, name="cdn")
    seen: list[str] = []

    def explode(event: BreakerEvent) -> None:
        raise RuntimeError("dashboard crashed")

    breaker.events.subscribe(explode)
    breaker.events.subscribe(lambda event: seen.append(event.kind.name))
    with caplog.at_level(logging.ERROR, logger="rxflows.breaker"):
        assert await breaker.call(Dependency()) == "ok"
        await fail(breaker)
    assert breaker.state is OPEN
    assert seen == ["SUCCESS", "FAILURE", "STATE_CHANGED"]
    assert len(caplog.records) == 3
    assert "'cdn'" in caplog.records[0].getMessage()


async def test_a_subscriber_may_act_on_the_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=1)

    def reset_when_open(event: BreakerEvent) -> None:
        if event.kind is BreakerEventKind.STATE_CHANGED and event.state is OPEN:
            breaker.reset()

    breaker.events.subscribe(reset_when_open)
    await fail(breaker)
    assert breaker.state is CLOSED
    assert breaker.statistics().opened_count == 1


# --- statistics, clock, configuration -----------------------------------------------------------


async def test_statistics_snapshot() -> None:
    breaker = CircuitBreaker(failure_threshold=3, timeout=20, name="transcode")
    running = asyncio.create_task(breaker.call(Dependency(latency=100)))
    await asyncio.sleep(0)
    await breaker.call(Dependency())
    await fail(breaker, 3)
    with pytest.raises(CircuitOpenError):
        await breaker.call(Dependency())
    await asyncio.sleep(5)
    stats = breaker.statistics()
    assert stats == breaker_module.BreakerStatistics(
        name="transcode",
        state=OPEN,
        calls=5,
        successes=1,
        failures=3,
        ignored=0,
        cancelled=0,
        slow_calls=0,
        rejected=1,
        in_flight=1,
        window_calls=4,
        window_failures=3,
        window_slow_calls=0,
        failure_rate=75.0,
        slow_call_rate=0.0,
        consecutive_failures=3,
        opened_count=1,
        open_duration=20.0,
        retry_after=15.0,
    )
    with pytest.raises(AttributeError):
        stats.calls = 0  # type: ignore[misc]  # frozen
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_an_injected_clock_drives_the_open_duration() -> None:
    class ManualClock:
        def __init__(self) -> None:
            self.t = 1000.0

        def now(self) -> float:
            return self.t

        async def sleep(self, seconds: float) -> None:
            self.t += seconds

    clock = ManualClock()
    breaker = CircuitBreaker(failure_threshold=1, timeout=30, clock=clock)
    assert breaker.clock is clock
    await fail(breaker)
    await asyncio.sleep(3600)  # the loop's clock does not matter
    assert breaker.state is OPEN
    clock.t += 30
    assert breaker.state is HALF_OPEN


def test_an_rx_scheduler_can_be_the_clock() -> None:
    scheduler = HistoricalScheduler()
    breaker = CircuitBreaker(failure_threshold=1, timeout=30, clock=scheduler)

    async def main() -> None:
        await fail(breaker)
        assert breaker.state is OPEN
        scheduler.advance_by(30)
        assert breaker.state is HALF_OPEN

    run_virtual(main)


def test_from_config() -> None:
    config = create_async_flow_config(
        circuit_breaker_failure_threshold=3, circuit_breaker_timeout=15.0
    )
    breaker = CircuitBreaker.from_config(config, name="uploads")
    assert repr(breaker) == (
        "CircuitBreaker(name='uploads', state=CLOSED, trip=ConsecutiveFailures(3), timeout=15)"
    )
    assert repr(CircuitBreaker.from_config(name="x").trip) == "ConsecutiveFailures(5)"


def test_default_names_are_distinct() -> None:
    first, second = CircuitBreaker(), CircuitBreaker()
    assert first.name.startswith("breaker-")
    assert first.name != second.name
    assert CircuitBreaker(name="cdn").name == "cdn"


def test_public_names() -> None:
    for name in (
        "CircuitBreaker",
        "CircuitState",
        "BreakerEvent",
        "BreakerEventKind",
        "BreakerStatistics",
        "TripRule",
        "ConsecutiveFailures",
        "FailureRate",
        "SlowCallRate",
        "CountWindow",
        "TimeWindow",
        "CallMetrics",
    ):
        assert name in rxflows.__all__
    assert "circuit_breaker" in rxflows.operators.__all__


BAD_INPUT: list[tuple[Callable[[], object], type[Exception], str]] = [
    (lambda: CircuitBreaker(0), ConfigurationError, "failure_threshold must be a positive int"),
    (lambda: CircuitBreaker(-1), ConfigurationError, "got -1"),
    (
        lambda: CircuitBreaker(2.5),  # type: ignore[arg-type]  # wrong on purpose
        ConfigurationError,
        "got 2.5",
    ),
    (lambda: CircuitBreaker(True), ConfigurationError, "got True"),
    (
        lambda: CircuitBreaker(timeout=-1),
        ConfigurationError,
        "timeout must be a number of seconds >= 0, got -1",
    ),
    (lambda: CircuitBreaker(timeout=float("nan")), ConfigurationError, "timeout must be"),
    (
        lambda: CircuitBreaker(timeout="60"),  # type: ignore[arg-type]  # wrong on purpose
        ConfigurationError,
        "got '60'",
    ),
    (
        lambda: FailureRate(0),
        ConfigurationError,
        "failure_rate threshold must be a percentage in (0, 100], got 0",
    ),
    (lambda: FailureRate(100.5), ConfigurationError, "got 100.5"),
    (lambda: SlowCallRate(-5), ConfigurationError, "slow_call_rate threshold must be a"),
    (
        lambda: FailureRate(50, minimum_calls=0),
        ConfigurationError,
        "minimum_calls must be a positive int, got 0",
    ),
    (lambda: CountWindow(0), ConfigurationError, "window size must be a positive int, got 0"),
    (lambda: TimeWindow(0), ConfigurationError, "window seconds must be a positive number, got 0"),
    (lambda: TimeWindow(10, buckets=-1), ConfigurationError, "window buckets must be a positive"),
    (
        lambda: CircuitBreaker(trip=FailureRate(50, minimum_calls=20), window=CountWindow(10)),
        ConfigurationError,
        "needs minimum_calls=20 calls, more than the sliding window holds (CountWindow(size=10))",
    ),
    (lambda: CircuitBreaker(trip=SlowCallRate(50)), ConfigurationError, "needs slow_call_duration"),
    (
        lambda: CircuitBreaker(slow_call_duration=0),
        ConfigurationError,
        "slow_call_duration must be a positive number of seconds, got 0",
    ),
    (
        lambda: CircuitBreaker(half_open_max_calls=0),
        ConfigurationError,
        "half_open_max_calls must be a positive int, got 0",
    ),
    (
        lambda: CircuitBreaker(open_backoff=0.5),
        ConfigurationError,
        "open_backoff must be a number >= 1, got 0.5",
    ),
    (
        lambda: CircuitBreaker(timeout=60, max_timeout=30),
        ConfigurationError,
        "max_timeout must be >= timeout (60) or None, got 30",
    ),
    (lambda: CircuitBreaker(name=""), ConfigurationError, "name must be a non-empty str"),
    (
        lambda: CircuitBreaker(trip=ConsecutiveFailures),  # type: ignore[arg-type]  # wrong on purpose
        TypeError,
        "trip must be a TripRule",
    ),
    (
        lambda: CircuitBreaker(window=100),  # type: ignore[arg-type]  # wrong on purpose
        TypeError,
        "window must be a CountWindow or a TimeWindow, got int",
    ),
    (
        lambda: CircuitBreaker(expected="oops"),  # type: ignore[arg-type]  # wrong on purpose
        TypeError,
        "expected must be an exception type",
    ),
    (
        lambda: CircuitBreaker(ignored=(KeyError, 3)),  # type: ignore[arg-type]  # wrong on purpose
        TypeError,
        "ignored must be an exception type",
    ),
    (
        lambda: CircuitBreaker(expected=int),  # type: ignore[arg-type]  # wrong on purpose
        TypeError,
        "expected must be",
    ),
    (
        lambda: CircuitBreaker(clock=object()),  # type: ignore[arg-type]  # wrong on purpose
        TypeError,
        "clock must be an rxflows Clock",
    ),
]
"""Each bad argument, the error type and a fragment of the message (the ``type:
ignore``s are the point: these calls are wrong on purpose)."""


@pytest.mark.parametrize(("build", "error", "message"), BAD_INPUT)
def test_bad_input_is_refused_at_construction(
    build: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        build()
    assert message in str(raised.value)


def test_configuration_errors_name_the_field() -> None:
    with pytest.raises(ConfigurationError) as raised:
        CircuitBreaker(failure_threshold=0)
    assert (raised.value.field, raised.value.value) == ("failure_threshold", 0)


# --- properties -----------------------------------------------------------------------------------

Action = tuple[str, float]  # ("ok" | "fail", 0) or ("sleep", seconds)

actions = st.lists(
    st.one_of(
        st.sampled_from([("ok", 0.0), ("fail", 0.0)]),
        st.tuples(st.just("sleep"), st.sampled_from([0.5, 1.0, 3.0, 10.0])),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(threshold=st.integers(1, 5), script=actions)
def test_property_consecutive_failures_model(threshold: int, script: list[Action]) -> None:
    """The breaker opens exactly when a run of ``threshold`` failures ends, rejects
    without calling while open, and follows the classic half-open cycle."""
    timeout = 3.0

    async def main() -> None:
        breaker = CircuitBreaker(failure_threshold=threshold, timeout=timeout)
        dependency = Dependency()
        loop = asyncio.get_running_loop()
        state, run, open_until = "closed", 0, 0.0
        for action, seconds in script:
            if action == "sleep":
                await asyncio.sleep(seconds)
                continue
            if state == "open" and loop.time() >= open_until:
                state = "half_open"
            dependency.failing = action == "fail"
            calls = dependency.calls
            if state == "open":
                with pytest.raises(CircuitOpenError) as rejected:
                    await breaker.call(dependency)
                assert dependency.calls == calls  # never called while open
                assert rejected.value.retry_after == pytest.approx(open_until - loop.time())
            elif action == "fail":
                with pytest.raises(ConnectionError):
                    await breaker.call(dependency)
                run += 1
                if state == "half_open" or run >= threshold:
                    state, run, open_until = "open", 0, loop.time() + timeout
            else:
                await breaker.call(dependency)
                state, run = "closed", 0
            assert breaker.state.value == state
            if state == "closed":
                assert breaker.statistics().consecutive_failures == run

    run_virtual(main)


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(1, 8),
    minimum=st.integers(1, 8),
    threshold=st.sampled_from([10, 25, 50, 75, 100]),
    outcomes=st.lists(st.booleans(), max_size=40),
)
def test_property_count_window_rate_matches_a_naive_model(
    size: int, minimum: int, threshold: int, outcomes: list[bool]
) -> None:
    """The O(1) ring buffer trips exactly when the last ``size`` outcomes, counted
    naively, reach the threshold with at least ``minimum`` calls."""
    minimum = min(minimum, size)

    async def main() -> None:
        breaker = CircuitBreaker(
            trip=FailureRate(threshold, minimum_calls=minimum), window=CountWindow(size)
        )
        dependency = Dependency()
        recent: deque[bool] = deque(maxlen=size)
        for failed in outcomes:
            dependency.failing = failed
            with contextlib.suppress(ConnectionError):
                await breaker.call(dependency)
            recent.append(failed)
            tripped = len(recent) >= minimum and sum(recent) * 100 >= threshold * len(recent)
            assert (breaker.state is OPEN) == tripped
            if tripped:
                return
            stats = breaker.statistics()
            assert (stats.window_calls, stats.window_failures) == (len(recent), sum(recent))

    run_virtual(main)


@settings(max_examples=100, deadline=None)
@given(
    seconds=st.integers(1, 6),
    calls=st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.booleans()), max_size=30),
)
def test_property_time_window_matches_a_naive_model(
    seconds: int, calls: list[tuple[float, bool]]
) -> None:
    """With one-second buckets, the window holds the calls of the current second and
    the ``seconds - 1`` before it."""

    async def main() -> None:
        breaker = CircuitBreaker(
            trip=FailureRate(100, minimum_calls=1_000), window=TimeWindow(seconds)
        )
        dependency = Dependency()
        loop = asyncio.get_running_loop()
        history: list[tuple[float, bool]] = []
        for pause, failed in calls:
            await asyncio.sleep(pause)
            dependency.failing = failed
            with contextlib.suppress(ConnectionError):
                await breaker.call(dependency)
            history.append((loop.time(), failed))
            current = int(loop.time())
            alive = [f for t, f in history if current - int(t) < seconds]
            stats = breaker.statistics()
            assert (stats.window_calls, stats.window_failures) == (len(alive), sum(alive))

    run_virtual(main)


async def test_a_window_of_plain_successes_never_consults_the_rule() -> None:
    class Counting(TripRule):
        def __init__(self) -> None:
            self.checks = 0

        def should_open(self, metrics: CallMetrics) -> bool:
            self.checks += 1
            return False

    rule = Counting()
    breaker = CircuitBreaker(trip=rule, window=CountWindow(3))
    for _ in range(5):
        await breaker.call(Dependency())
    assert rule.checks == 0
    await fail(breaker)
    await breaker.call(Dependency())  # the failure is still in the window
    assert rule.checks == 2
    await breaker.call(Dependency())  # window F S S: checked
    await breaker.call(Dependency())  # window S S S: the failure is out, not checked
    await breaker.call(Dependency())
    assert rule.checks == 3


async def test_an_event_subscriber_joining_mid_call_gets_the_outcome_without_duration() -> None:
    breaker = CircuitBreaker()
    events: list[BreakerEvent] = []
    running = asyncio.create_task(breaker.call(Dependency(latency=1)))
    await asyncio.sleep(0)
    breaker.events.subscribe(events.append)
    await running
    assert [(e.kind, e.duration) for e in events] == [(BreakerEventKind.SUCCESS, None)]


async def test_async_retry_waits_for_the_breaker_to_let_a_trial_through() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=10)
    policy = rxflows.async_retry(max_attempts=3, delay=1.0, jitter="none")
    flaky = Dependency(failing=True)

    async def recovering() -> str:
        try:
            return await flaky()
        finally:
            flaky.failing = False  # down for the first call only

    start = now()
    assert await policy.call(breaker.call, recovering) == "ok"
    # attempt 1 fails and opens (t=0); attempt 2 is rejected at t=1 with retry_after=9;
    # attempt 3 waits for it and is the trial that closes the breaker (t=10)
    assert now() - start == 10
    assert flaky.calls == 2
    assert breaker.state is CLOSED
    assert breaker.statistics().rejected == 1


async def test_long_open_durations_read_plainly() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=1800, name="archive")
    await fail(breaker)
    await asyncio.sleep(565.5)
    with pytest.raises(CircuitOpenError, match=r"'archive' is open; retry after 1234\.5 s$"):
        await breaker.call(Dependency())
