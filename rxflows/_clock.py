"""Where rxflows components read time and wait: the loop clock, or one you inject.

DESIGN rule 1: every component that reads or waits on time (breaker open duration,
cache TTL, retry back-off, timeouts) takes it from a :class:`Clock`. The default,
:data:`LOOP_CLOCK`, is the running asyncio loop's clock (``loop.time()`` and
``asyncio.sleep``), so the same code runs in real time on uvloop and in virtual
time on :class:`rxflows.testing.VirtualTimeLoop`. An Rx scheduler can serve as a
clock too (:func:`as_clock`), so a component bound to the scheduler of a marble
test follows the test's frames.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Final, Protocol, runtime_checkable

from reactivex import abc
from reactivex.scheduler.scheduler import Scheduler

__all__ = ["LOOP_CLOCK", "Clock", "LoopClock", "SchedulerClock", "as_clock", "loop_time_reader"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time in seconds, and a way to wait on it."""

    def now(self) -> float:
        """Seconds on a monotonic clock; only differences mean anything."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class LoopClock:
    """The running event loop's clock: ``loop.time()`` and ``asyncio.sleep``.

    Outside a running loop ``now()`` falls back to ``time.monotonic()``, the clock
    asyncio's own loops use.
    """

    __slots__ = ()

    def now(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "LOOP_CLOCK"


LOOP_CLOCK = LoopClock()
"""The default clock of every rxflows component."""

_BASE_LOOP_TIME: Final = asyncio.BaseEventLoop.time


def loop_time_reader(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The cheapest call that reads ``loop``'s clock, for hot paths.

    asyncio's own loops define ``time()`` as ``time.monotonic()``; calling that
    directly skips a Python-level method call (about a third of a microsecond).
    A loop that defines its own clock (uvloop, a virtual-time test loop) gets its
    bound ``loop.time``.
    """
    if type(loop).time is _BASE_LOOP_TIME:
        return time.monotonic
    return loop.time


_EPOCH = datetime(1970, 1, 1).astimezone()


class SchedulerClock:
    """An Rx scheduler as a clock: ``scheduler.now`` and ``schedule_relative``."""

    __slots__ = ("scheduler",)

    def __init__(self, scheduler: abc.SchedulerBase) -> None:
        self.scheduler = scheduler

    def now(self) -> float:
        monotonic = getattr(self.scheduler, "monotonic", None)
        if callable(monotonic):  # LoopScheduler: the loop clock without a datetime
            return float(monotonic())
        return Scheduler.to_seconds(self.scheduler.now - _EPOCH)

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def wake(_: abc.SchedulerBase, __: object = None) -> None:
            if not done.done():
                loop.call_soon_threadsafe(_resolve, done)

        handle = self.scheduler.schedule_relative(max(0.0, seconds), wake)
        try:
            await done
        finally:
            handle.dispose()

    def __repr__(self) -> str:
        return f"SchedulerClock({self.scheduler!r})"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def as_clock(source: Clock | abc.SchedulerBase | None) -> Clock:
    """A :class:`Clock` from a clock, an Rx scheduler, or None (the loop clock)."""
    if source is None:
        return LOOP_CLOCK
    if isinstance(source, abc.SchedulerBase):
        return SchedulerClock(source)
    if isinstance(source, Clock):
        return source
    raise TypeError(
        f"clock must be an rxflows Clock (now() and async sleep()), an Rx scheduler or None, "
        f"got {type(source).__name__}"
    )
