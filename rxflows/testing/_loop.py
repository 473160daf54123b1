"""An asyncio event loop whose clock is virtual.

When nothing is ready to run, the loop jumps its clock to the next timer instead
of sleeping, so ``await asyncio.sleep(3600)`` returns at once while
``loop.time()`` reports an hour later. Timers due at the same instant run in the
order they were scheduled, which makes runs deterministic.

Real I/O (sockets, subprocesses, threads handing results back) still works, but
the clock does not wait for it: when only real I/O is pending and a timer is due,
time jumps to that timer. Use a real-clock loop for tests whose timeouts race
real I/O.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import selectors
from collections.abc import Callable
from contextvars import Context
from typing import Any, TypeVarTuple, Unpack

__all__ = ["VirtualTimeLoop"]

_Ts = TypeVarTuple("_Ts")
_TIME_DIGITS = 9  # timers are due at whole nanoseconds
_RESOLUTION = 1e-9
_MAX_IDLE_STEPS = 10_000_000


class _OrderedTimerHandle(asyncio.TimerHandle):
    """A timer that breaks ties on its due time by scheduling order."""

    __slots__ = ("_seq",)

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
        context: Context | None,
        seq: int,
    ) -> None:
        super().__init__(when, callback, args, loop, context=context)
        self._seq = seq

    def _key(self) -> tuple[float, int]:
        return (self.when(), self._seq)

    def __lt__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimerHandle):
            return self._key() < other._key()
        return isinstance(other, asyncio.TimerHandle) and self.when() < other.when()

    def __le__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimerHandle):
            return self._key() <= other._key()
        return isinstance(other, asyncio.TimerHandle) and self.when() <= other.when()

    def __gt__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimerHandle):
            return self._key() > other._key()
        return isinstance(other, asyncio.TimerHandle) and self.when() > other.when()

    def __ge__(self, other: object) -> bool:
        if isinstance(other, _OrderedTimerHandle):
            return self._key() >= other._key()
        return isinstance(other, asyncio.TimerHandle) and self.when() >= other.when()


class _FastForwardSelector(selectors.BaseSelector):
    """Wraps the real selector; a wait with a timeout becomes a jump of the clock."""

    def __init__(self, loop: VirtualTimeLoop, real: selectors.BaseSelector) -> None:
        self._loop = loop
        self._real = real

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0:
            return self._real.select(timeout)
        ready = self._real.select(0)
        if not ready:
            self._loop._advance_to_next_timer()
        return ready

    def close(self) -> None:
        self._real.close()

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop with a virtual, fast-forwarding clock starting at ``start``.

    Example:
        >>> async def main() -> float:
        ...     loop = asyncio.get_running_loop()
        ...     await asyncio.sleep(60)
        ...     return loop.time()
        >>> with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        ...     runner.run(main())
        60.0
    """

    def __init__(self, start: float = 0.0) -> None:
        self._virtual_now = float(start)  # before BaseEventLoop.__init__ may read the clock
        super().__init__(_FastForwardSelector(self, selectors.DefaultSelector()))
        self._timer_seq = itertools.count()
        self._idle_mode = False
        self._idle_until: float | None = None
        self._idle_steps_left = 0

    def time(self) -> float:
        return self._virtual_now

    # BaseEventLoop runs the timers due before time() + _clock_resolution. A fixed
    # 1 ns stops working once the clock is so large (about 8.4e6 s) that adding 1 ns
    # no longer changes the float: keep the resolution above the float's spacing.
    @property
    def _clock_resolution(self) -> float:
        return max(_RESOLUTION, 2 * math.ulp(self._virtual_now))

    @_clock_resolution.setter
    def _clock_resolution(self, value: float) -> None:
        pass  # BaseEventLoop.__init__ sets the real clock's resolution; ours is computed

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (timers due by then run next)."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        self._virtual_now += seconds

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        # BaseEventLoop.call_at, with a timer that keeps scheduling order on ties. Due
        # times are rounded to 1 ns: 0.001 + 0.009 != 0.01 in floating point, and two
        # timers meant for the same instant must really tie.
        when = round(when, _TIME_DIGITS)
        base: Any = self  # BaseEventLoop's private helpers are not in typeshed
        base._check_closed()
        if self.get_debug():
            base._check_thread()
            base._check_callback(callback, "call_at")
        timer = _OrderedTimerHandle(when, callback, args, self, context, next(self._timer_seq))
        traceback: Any = getattr(timer, "_source_traceback", None)
        if traceback:
            del traceback[-1]
        heapq.heappush(base._scheduled, timer)
        base_timer: Any = timer
        base_timer._scheduled = True
        return timer

    def _timers(self) -> list[asyncio.TimerHandle]:
        scheduled: list[asyncio.TimerHandle] = getattr(self, "_scheduled")  # noqa: B009  # private, not in typeshed
        return scheduled

    def _has_ready_callbacks(self) -> bool:
        return bool(getattr(self, "_ready"))  # noqa: B009  # private, not in typeshed

    def next_timer(self) -> float | None:
        """When the earliest live timer is due, or None when no timer is pending."""
        timers = self._timers()
        if not timers:
            return None
        if not timers[0].cancelled():  # the heap's head, the common case
            return timers[0].when()
        live = [t.when() for t in timers if not t.cancelled()]
        return min(live) if live else None

    def is_idle(self) -> bool:
        """True when no callback is ready to run and no live timer is pending."""
        return not self._has_ready_callbacks() and self.next_timer() is None

    def _advance_to_next_timer(self) -> None:
        due = self.next_timer()
        if due is not None and due > self._virtual_now:
            self._virtual_now = due

    def run_until_idle(
        self, until: float | None = None, *, max_steps: int = _MAX_IDLE_STEPS
    ) -> None:
        """Run callbacks and timers until nothing is left to do, then return.

        With ``until``, stop before the first timer due after that instant and set
        the clock to ``until``. Tasks waiting only on real I/O count as idle. Raises
        RuntimeError after ``max_steps`` loop iterations without going idle (a
        coroutine looping on ``await asyncio.sleep(0)`` keeps the clock from moving).
        """
        if self.is_running():
            raise RuntimeError("run_until_idle() cannot be called while the loop is running")
        self._idle_until = until
        self._idle_mode = True
        self._idle_steps_left = max_steps
        try:
            self.run_forever()
        finally:
            self._idle_mode = False
        if self._idle_steps_left < 0:
            raise RuntimeError(
                f"the loop did not go idle within {max_steps} steps; is a coroutine busy-looping "
                "on 'await asyncio.sleep(0)'?"
            )

    def _run_once(self) -> None:
        if self._idle_mode:
            self._idle_steps_left -= 1
            if self._idle_steps_left < 0:
                self.stop()
        if self._idle_mode and not self._has_ready_callbacks():
            due = self.next_timer()
            until = self._idle_until
            if due is None or (until is not None and due > until):
                if until is not None and until > self._virtual_now:
                    self._virtual_now = until
                self.stop()
        super()._run_once()  # type: ignore[misc]  # BaseEventLoop's private step, stable since 3.4
