"""Clocks: the loop clock by default, an Rx scheduler, or a custom one."""

from __future__ import annotations

import asyncio

import pytest

from rxflows import LOOP_CLOCK, Clock, as_clock, loop_scheduler
from rxflows._clock import loop_time_reader


async def test_loop_clock_follows_the_virtual_loop() -> None:
    start = LOOP_CLOCK.now()
    await LOOP_CLOCK.sleep(120)
    assert LOOP_CLOCK.now() - start == 120


async def test_a_scheduler_as_a_clock() -> None:
    clock = as_clock(loop_scheduler())
    start = clock.now()
    await clock.sleep(30)
    assert clock.now() - start == pytest.approx(30)
    assert asyncio.get_running_loop().time() == pytest.approx(clock.now())


def test_as_clock_accepts_a_custom_clock_and_rejects_nonsense() -> None:
    class Manual:
        def __init__(self) -> None:
            self.t = 0.0

        def now(self) -> float:
            return self.t

        async def sleep(self, seconds: float) -> None:
            self.t += seconds

    manual = Manual()
    assert as_clock(manual) is manual
    assert isinstance(manual, Clock)
    assert as_clock(None) is LOOP_CLOCK
    with pytest.raises(TypeError, match="clock must be an rxflows Clock"):
        as_clock(42)  # type: ignore[arg-type]  # misuse under test


def test_loop_clock_outside_a_loop_is_monotonic() -> None:
    first = LOOP_CLOCK.now()
    assert LOOP_CLOCK.now() >= first


async def test_loop_time_reader_follows_a_loop_with_its_own_clock() -> None:
    loop = asyncio.get_running_loop()  # the virtual-time loop defines its own time()
    read = loop_time_reader(loop)
    await asyncio.sleep(45)
    assert read() == loop.time()


def test_loop_time_reader_reads_monotonic_for_asyncio_loops() -> None:
    import time

    loop = asyncio.new_event_loop()
    try:
        read = loop_time_reader(loop)
        assert read is time.monotonic  # what BaseEventLoop.time() returns, without the call
        assert abs(read() - loop.time()) < 1.0
    finally:
        loop.close()
