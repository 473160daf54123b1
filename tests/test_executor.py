"""Executors: LocalExecutor and DEFAULT_EXECUTOR, and the executor= option of
map_async, StreamingFlow and WorkflowStep.

Thread and process pools do real work, so the tests that await them run on a real
clock (``real_time``) and synchronise with events and barriers, never sleeps. The
executor= wiring is also tested in virtual time with :class:`ClockExecutor`, an
executor whose calls take a known number of frames on the loop clock.
"""

from __future__ import annotations

import asyncio
import math
import operator
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rxflows
from rxflows import (
    DEFAULT_EXECUTOR,
    AsyncWorkflowEngine,
    ClosedResourceError,
    ConfigurationError,
    Executor,
    LocalExecutor,
    StepStatus,
    StepTimeoutError,
    StreamingFlow,
    WorkflowStep,
    collect,
    from_iterable,
)
from rxflows import operators as ops
from rxflows._resource import AsyncResource
from rxflows.testing import Notification, marbles

from .support import run_virtual

_P = ParamSpec("_P")
_R = TypeVar("_R")

FRAME = 0.001
BLOCK = 10.0  # seconds a worker thread waits for an event before the test fails


class ClockExecutor(AsyncResource):
    """An executor whose every call takes ``frames`` frames of loop time, then runs
    ``fn`` inline: the executor= wiring, testable to the frame."""

    def __init__(self, frames: int = 3) -> None:
        self.frames = frames
        self.submitted: list[Any] = []
        self.cancelled: list[Any] = []
        self.running = 0
        self.peak = 0

    async def submit(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        self.submitted.append(args[0] if args else None)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.frames * FRAME)
        except asyncio.CancelledError:
            self.cancelled.append(args[0] if args else None)
            raise
        finally:
            self.running -= 1
        return fn(*args, **kwargs)

    async def aclose(self) -> None:
        pass


def tenfold(x: int) -> int:
    if x < 0:
        raise KeyError(x)
    return 10 * x


async def atenfold(x: int) -> int:
    return 10 * x


# -- the protocol and construction -------------------------------------------------------


def test_executors_satisfy_the_protocol() -> None:
    assert isinstance(LocalExecutor(), Executor)
    assert isinstance(DEFAULT_EXECUTOR, Executor)
    assert isinstance(ClockExecutor(), Executor)
    assert not isinstance(object(), Executor)
    assert rxflows.Executor is Executor
    assert repr(DEFAULT_EXECUTOR) == "DEFAULT_EXECUTOR"
    assert repr(LocalExecutor("process", 2)) == (
        "<LocalExecutor open kind='process' max_workers=2>"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "fiber"}, "kind must be 'thread' or 'process', got 'fiber'"),
        ({"max_workers": 0}, "max_workers must be a positive int or None, got 0"),
        ({"max_workers": True}, "max_workers must be a positive int or None, got True"),
        ({"max_workers": 2.0}, "max_workers must be a positive int or None, got 2.0"),
    ],
)
def test_bad_options_raise_configuration_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        LocalExecutor(**kwargs)
    assert info.value.field == next(iter(kwargs))


def test_executor_option_is_checked_at_construction() -> None:
    with pytest.raises(TypeError, match=r"executor must be an rxflows Executor.*got ThreadPool"):
        ops.map_async(tenfold, 2, executor=ThreadPoolExecutor())  # type: ignore[call-overload]  # the misuse tested
    with pytest.raises(TypeError, match=r"must be a plain \(sync\) function.*coroutine function"):
        ops.map_async(atenfold, 2, executor=ClockExecutor())
    with pytest.raises(TypeError, match="step 'x': func must be a plain \\(sync\\) function"):
        WorkflowStep("x", atenfold, executor=ClockExecutor())
    with pytest.raises(TypeError, match="step 'x': executor must be an rxflows Executor"):
        WorkflowStep("x", tenfold, executor="dask")  # type: ignore[call-overload]  # the misuse tested
    with pytest.raises(TypeError, match="map_async's fn must be a callable, got 3"):
        ops.map_async(3, 2, executor=ClockExecutor())  # type: ignore[call-overload]  # the misuse tested


def test_import_rxflows_loads_no_dask() -> None:
    code = (
        "import sys, rxflows, rxflows.operators, rxflows.video\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# -- LocalExecutor, for real --------------------------------------------------------------------


@pytest.mark.real_time
async def test_thread_executor_runs_off_the_loop_and_keeps_error_types() -> None:
    async with LocalExecutor("thread", max_workers=2) as executor:
        assert await executor.submit(operator.mul, 6, 7) == 42
        assert await executor.submit(int, "ff", base=16) == 255
        assert await executor.submit(threading.get_ident) != threading.get_ident()
        with pytest.raises(KeyError) as info:
            await executor.submit(tenfold, -1)
        assert info.value.args == (-1,)
    assert executor.closed
    with pytest.raises(ClosedResourceError, match=r"LocalExecutor\.submit\(\): .* closed"):
        await executor.submit(tenfold, 1)
    await executor.aclose()  # idempotent


@pytest.mark.real_time
async def test_process_executor_runs_in_another_process() -> None:
    async with LocalExecutor("process", max_workers=1) as executor:
        assert await executor.submit(os.getpid) != os.getpid()
        assert await executor.submit(math.factorial, 10) == 3628800
        with pytest.raises(ValueError, match="factorial\\(\\) not defined for negative values"):
            await executor.submit(math.factorial, -1)


@pytest.mark.real_time
async def test_default_executor_uses_the_loops_pool_and_owns_nothing() -> None:
    assert await DEFAULT_EXECUTOR.submit(threading.get_ident) != threading.get_ident()
    assert await DEFAULT_EXECUTOR.submit(operator.add, 1, 2) == 3
    await DEFAULT_EXECUTOR.aclose()
    assert not DEFAULT_EXECUTOR.closed
    assert await DEFAULT_EXECUTOR.submit(operator.add, 2, 2) == 4


@pytest.mark.real_time
async def test_cancelling_cancels_a_queued_call_but_not_a_running_one() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    ran: list[str] = []

    def blocker() -> str:
        started.set()
        release.wait(BLOCK)
        finished.set()
        return "blocker"

    def queued() -> str:
        ran.append("queued")
        return "queued"

    async with LocalExecutor("thread", max_workers=1) as executor:
        running = asyncio.create_task(executor.submit(blocker))
        assert await asyncio.to_thread(started.wait, BLOCK)
        waiting = asyncio.create_task(executor.submit(queued))
        await asyncio.sleep(0)
        waiting.cancel()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        with pytest.raises(asyncio.CancelledError):
            await running
        assert not finished.is_set()  # the running call was abandoned, not stopped
        release.set()
        assert await executor.submit(str.upper, "next") == "NEXT"
    assert finished.is_set()  # it ran to its end (aclose waited for it)
    assert ran == []  # the queued call never ran


@pytest.mark.real_time
async def test_aclose_fails_queued_calls_with_closed_resource_error() -> None:
    started, release = threading.Event(), threading.Event()

    def blocker() -> str:
        started.set()
        release.wait(BLOCK)
        return "done"

    executor = LocalExecutor("thread", max_workers=1)
    running = asyncio.create_task(executor.submit(blocker))
    assert await asyncio.to_thread(started.wait, BLOCK)
    waiting = asyncio.create_task(executor.submit(tenfold, 1))
    await asyncio.sleep(0)
    closing = asyncio.create_task(executor.aclose())
    await asyncio.sleep(0)
    release.set()
    await closing
    assert await running == "done"
    with pytest.raises(ClosedResourceError, match="closed before the call ran"):
        await waiting


@pytest.mark.real_time
async def test_map_async_on_threads_holds_the_bound_exactly() -> None:
    barrier = threading.Barrier(2, timeout=BLOCK)
    lock = threading.Lock()
    state = {"running": 0, "peak": 0}

    def paired(x: int) -> int:
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
        barrier.wait()  # two calls must be running together to pass
        with lock:
            state["running"] -= 1
        return x * x

    async with LocalExecutor("thread", max_workers=8) as executor:
        source = from_iterable(range(8))
        results = await collect(source.pipe(ops.map_async(paired, 2, executor=executor)))
    assert sorted(results) == [x * x for x in range(8)]
    assert state["peak"] == 2


@pytest.mark.real_time
async def test_map_async_on_a_process_pool_matches_local_results_and_errors() -> None:
    async with LocalExecutor("process", max_workers=2) as executor:
        mapped = from_iterable(range(6)).pipe(
            ops.map_async(math.factorial, 3, ordered=True, executor=executor)
        )
        assert await collect(mapped) == [math.factorial(x) for x in range(6)]
        failing = from_iterable([3, -1, 4]).pipe(
            ops.map_async(math.factorial, 1, executor=executor)
        )
        with pytest.raises(ValueError, match="not defined for negative values"):
            await collect(failing)


# -- the executor= wiring, in virtual time ------------------------------------------------------


def test_map_async_with_an_executor_marbles() -> None:
    executor = ClockExecutor(frames=3)
    with marbles() as m:
        src = m.cold("-a-b-c-|", {"a": 1, "b": 2, "c": 3})
        # each call takes 3 frames on the executor, results come as they finish
        m.expect(src.pipe(ops.map_async(tenfold, 2, executor=executor))).to_be(
            "----x-y-(z|)", {"x": 10, "y": 20, "z": 30}
        )
    assert executor.submitted == [1, 2, 3]


def test_map_async_with_an_executor_holds_the_bound_marbles() -> None:
    executor = ClockExecutor(frames=3)
    with marbles() as m:
        src = m.cold("-(abc)|", {"a": 1, "b": 2, "c": 3})
        # at most 2 calls submitted at once: c waits for a slot until frame 4
        m.expect(src.pipe(ops.map_async(tenfold, 2, ordered=True, executor=executor))).to_equal(
            [
                Notification.on_next(4, 10),
                Notification.on_next(4, 20),
                Notification.on_next(7, 30),
                Notification.on_completed(7),
            ]
        )
    assert executor.peak == 2


def test_map_async_with_an_executor_bound_and_dispose_marbles() -> None:
    executor = ClockExecutor(frames=3)
    with marbles() as m:
        src = m.cold("(abcd|)", {"a": 1, "b": 2, "c": 3, "d": 4})
        # two at a time; disposed at frame 5: c and d are cancelled in flight
        m.expect(
            src.pipe(ops.map_async(tenfold, 2, ordered=True, executor=executor)), "^----!"
        ).to_be("---(xy)", {"x": 10, "y": 20})
    assert executor.submitted == [1, 2, 3, 4]
    assert sorted(executor.cancelled) == [3, 4]  # in no particular order
    assert executor.peak == 2


def test_map_async_with_an_executor_fails_with_the_original_error_marbles() -> None:
    executor = ClockExecutor(frames=2)
    with marbles() as m:
        src = m.cold("a-b|", {"a": 1, "b": -5})
        m.expect(src.pipe(ops.map_async(tenfold, 2, executor=executor))).to_be(
            "--x-#", {"x": 10}, error=KeyError(-5)
        )


async def test_streaming_flow_with_an_executor() -> None:
    executor = ClockExecutor(frames=1000)  # one second per call
    loop = asyncio.get_running_loop()
    start = loop.time()
    flow = StreamingFlow()
    results = [
        r async for r in flow.execute(range(5), tenfold, max_concurrent=2, executor=executor)
    ]
    assert sorted(results) == [0, 10, 20, 30, 40]
    assert loop.time() - start == pytest.approx(3.0)  # 2 + 2 + 1 calls, one second each
    assert executor.peak == 2
    ordered = flow.observable([3, 1], tenfold, ordered=True, executor=executor)
    assert await collect(ordered) == [30, 10]


async def test_workflow_step_runs_through_the_executor_with_retry_and_timeout() -> None:
    executor = ClockExecutor(frames=2000)  # two seconds per call
    calls: list[int] = []

    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) < 2:
            raise ConnectionError("worker hiccup")
        return x + 1

    engine = AsyncWorkflowEngine()
    retry = rxflows.RetryPolicy(3, delay=1.0)
    engine.add_step(WorkflowStep("inc", flaky, retry=retry, executor=executor))
    engine.add_step(WorkflowStep("slow", tenfold, ["inc"], timeout=1.5, executor=executor))
    engine.add_step(WorkflowStep("fast", tenfold, ["inc"], timeout=2.5, executor=executor))
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await engine.run(4)
    await engine.aclose()

    assert result["inc"].status is StepStatus.SUCCEEDED
    assert result["inc"].output == 5
    assert result["inc"].attempts == 2
    assert calls == [4, 4]
    assert result["fast"].output == 50
    assert result["slow"].status is StepStatus.TIMED_OUT
    assert isinstance(result["slow"].error, StepTimeoutError)
    assert executor.cancelled == [5]  # the timeout cancelled slow's submission
    # inc: 2 s, 1 s back-off, 2 s; then fast takes 2 s (slow gave up after 1.5 s)
    assert loop.time() - start == pytest.approx(7.0)
    inc = WorkflowStep("inc", flaky, executor=executor)
    assert inc.func is flaky
    assert inc.executor is executor
    assert inc.replace(timeout=3.0).executor is executor
    assert "executor=" in repr(inc)


@settings(max_examples=40, deadline=None)
@given(
    items=st.lists(st.integers(min_value=0, max_value=50), max_size=12),
    limit=st.integers(min_value=1, max_value=5),
    frames=st.integers(min_value=1, max_value=4),
)
def test_map_async_on_an_executor_matches_running_on_the_loop(
    items: list[int], limit: int, frames: int
) -> None:
    """Through any executor, map_async gives what the coroutine version gives, in the
    same virtual time, and never has more than ``limit`` calls in flight."""

    async def on_the_loop(x: int) -> int:
        await asyncio.sleep(frames * FRAME)
        return tenfold(x)

    async def main() -> tuple[list[int], float, list[int], float, int]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        local = await collect(
            from_iterable(items).pipe(ops.map_async(on_the_loop, limit, ordered=True))
        )
        middle = loop.time()
        executor = ClockExecutor(frames)
        remote = await collect(
            from_iterable(items).pipe(
                ops.map_async(tenfold, limit, ordered=True, executor=executor)
            )
        )
        return local, middle - start, remote, loop.time() - middle, executor.peak

    local, local_time, remote, remote_time, peak = run_virtual(main)
    assert remote == local == [10 * x for x in items]
    assert remote_time == pytest.approx(local_time)
    assert peak <= limit
