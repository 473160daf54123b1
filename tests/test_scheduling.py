"""LoopScheduler follows the loop clock; AsyncEventLoopManager picks and configures loops."""

from __future__ import annotations

import asyncio
import gc
import weakref
from datetime import timedelta

import pytest
import reactivex
import uvloop
from reactivex import operators as rx_ops

from rxflows import (
    AsyncEventLoopManager,
    ConfigurationError,
    LoopManagerError,
    LoopScheduler,
    collect,
    create_async_flow_config,
    loop_scheduler,
)
from rxflows.testing import VirtualTimeLoop


async def test_scheduler_now_is_the_loop_clock() -> None:
    scheduler = loop_scheduler()
    before = scheduler.now
    await asyncio.sleep(3600)
    assert scheduler.now - before == timedelta(hours=1)
    assert scheduler.monotonic() == asyncio.get_running_loop().time()


async def test_loop_scheduler_is_bound_to_the_running_loop() -> None:
    scheduler = loop_scheduler()
    assert isinstance(scheduler, LoopScheduler)
    assert scheduler.loop is asyncio.get_running_loop()


def test_loop_scheduler_does_not_keep_a_closed_loop_alive() -> None:
    loop = VirtualTimeLoop()
    loop_scheduler(loop)
    ref = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert ref() is None


def test_floating_point_sums_still_tie() -> None:
    loop = VirtualTimeLoop()
    order: list[str] = []
    loop.call_at(0.001 + 0.009, order.append, "first")  # 0.010000000000000002 unrounded
    loop.call_at(0.01, order.append, "second")
    loop.run_until_idle()
    loop.close()
    assert order == ["first", "second"]


def test_run_until_idle_refuses_a_busy_loop() -> None:
    loop = VirtualTimeLoop()

    async def spin() -> None:
        while True:  # noqa: ASYNC110  # the busy loop under test
            await asyncio.sleep(0)

    task = loop.create_task(spin())
    with pytest.raises(RuntimeError, match="did not go idle within 1000 steps"):
        loop.run_until_idle(max_steps=1000)
    task.cancel()
    loop.run_until_idle()
    loop.close()


async def test_rx_time_operators_run_in_virtual_time() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    scheduler = loop_scheduler()
    items = await collect(
        reactivex.interval(10.0, scheduler=scheduler).pipe(
            rx_ops.take(3), rx_ops.map(lambda i: (i, loop.time() - start))
        )
    )
    assert items == [(0, 10.0), (1, 20.0), (2, 30.0)]


def test_virtual_loop_runs_equal_time_timers_in_scheduling_order() -> None:
    loop = VirtualTimeLoop()
    order: list[int] = []
    for i in range(50):
        loop.call_at(5.0, order.append, i)
    loop.run_until_idle()
    loop.close()
    assert order == list(range(50))
    assert loop.time() == 5.0


def test_virtual_loop_run_until_stops_at_the_bound() -> None:
    loop = VirtualTimeLoop()
    seen: list[float] = []
    loop.call_at(1.0, lambda: seen.append(loop.time()))
    loop.call_at(10.0, lambda: seen.append(loop.time()))
    loop.run_until_idle(until=5.0)
    assert (seen, loop.time()) == ([1.0], 5.0)
    loop.run_until_idle()
    loop.close()
    assert seen == [1.0, 10.0]


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_manager_runs_on_uvloop_when_asked() -> None:
    manager = AsyncEventLoopManager(create_async_flow_config(use_uvloop=True))
    assert manager.uses_uvloop
    assert issubclass(manager.run(_loop_type()), uvloop.Loop)


def test_manager_runs_on_the_default_loop_otherwise() -> None:
    manager = AsyncEventLoopManager(create_async_flow_config(use_uvloop=False))
    assert not manager.uses_uvloop
    assert not issubclass(manager.run(_loop_type()), uvloop.Loop)


def test_manager_applies_debug_settings() -> None:
    config = create_async_flow_config(use_uvloop=False, debug=True, slow_callback_duration=0.25)

    async def settings() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        return loop.get_debug(), loop.slow_callback_duration

    assert AsyncEventLoopManager(config).run(settings()) == (True, 0.25)


def test_manager_returns_the_result_and_raises_the_error() -> None:
    async def fail() -> None:
        raise KeyError("boom")

    manager = AsyncEventLoopManager()
    with pytest.raises(KeyError, match="boom"):
        manager.run(fail())


async def test_manager_refuses_to_nest_in_a_running_loop() -> None:
    coro = _loop_type()
    with pytest.raises(LoopManagerError, match="await the coroutine instead"):
        AsyncEventLoopManager().run(coro)


def test_manager_rejects_a_config_of_the_wrong_type() -> None:
    with pytest.raises(ConfigurationError, match="config must be an AsyncFlowConfig"):
        AsyncEventLoopManager({"use_uvloop": True})  # type: ignore[arg-type]  # the misuse under test


async def test_virtual_time_works_at_large_clock_values() -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(10**8)  # past ~8.4e6 s, 1 ns no longer changes the float
    await asyncio.sleep(10**10)
    assert loop.time() == 10**8 + 10**10
