"""Schedulers bound to an asyncio loop's clock, and the event-loop manager.

RxPY's ``AsyncIOScheduler.now`` is the wall clock, while its timers run on the
loop clock: under a virtual-time loop the two disagree. :class:`LoopScheduler`
reads ``now`` from ``loop.time()``, so every time-based operator, the loop's own
timers and rxflows' components agree on one clock, real or virtual.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from reactivex import abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

from ._config import AsyncFlowConfig, config_or_default
from ._errors import LoopManagerError

__all__ = [
    "AsyncEventLoopManager",
    "LoopScheduler",
    "loop_scheduler",
    "resolve_loop",
]

_T = TypeVar("_T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LoopScheduler(AsyncIOScheduler):
    """An ``AsyncIOScheduler`` whose ``now`` is the loop clock (``loop.time()``).

    The datetime it returns is the UTC epoch plus ``loop.time()`` seconds: only
    differences between two readings mean anything, as with any monotonic clock.
    """

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop this scheduler runs its actions on."""
        return self._loop

    @property
    def now(self) -> datetime:
        return _EPOCH + timedelta(seconds=self._loop.time())

    def monotonic(self) -> float:
        """The loop clock in seconds (``loop.time()``), cheaper than ``now``."""
        return self._loop.time()


def loop_scheduler(loop: asyncio.AbstractEventLoop | None = None) -> LoopScheduler:
    """A :class:`LoopScheduler` for ``loop`` (default: the running loop).

    Schedulers are cheap and hold no state but the loop, so a new one is returned
    each time (a cache keyed by loop would keep closed loops alive).
    """
    return LoopScheduler(asyncio.get_running_loop() if loop is None else loop)


def resolve_loop(
    scheduler: abc.SchedulerBase | None, what: str
) -> tuple[asyncio.AbstractEventLoop, abc.SchedulerBase]:
    """The loop and scheduler an operator should run on.

    Precedence (as in RxPY's time operators): the scheduler given to the operator,
    else the one given at subscribe time, else the running loop's scheduler. Only
    schedulers bound to an asyncio loop can run coroutines.
    """
    if scheduler is not None:
        loop = getattr(scheduler, "_loop", None)
        if isinstance(loop, asyncio.AbstractEventLoop):
            return loop, scheduler
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        raise LoopManagerError(
            f"{what} runs coroutines, so it needs an asyncio loop: subscribe inside a running "
            "loop (await it, or call subscribe from a coroutine) or pass "
            "scheduler=rxflows.loop_scheduler(loop)"
        ) from None
    return running, (scheduler if scheduler is not None else loop_scheduler(running))


class AsyncEventLoopManager:
    """Runs coroutines on uvloop or the default asyncio loop, configured once.

    Example:
        >>> async def main() -> int:
        ...     return 42
        >>> AsyncEventLoopManager(create_async_flow_config(use_uvloop=False)).run(main())
        42

    ``use_uvloop`` picks uvloop when it is installed (it is a dependency of rxflows
    except on Windows); ``debug`` turns on asyncio debug mode, in which callbacks
    slower than ``slow_callback_duration`` seconds are logged.
    """

    def __init__(self, config: AsyncFlowConfig | None = None) -> None:
        self.config = config_or_default(config)

    @property
    def uses_uvloop(self) -> bool:
        """Whether :meth:`run` will use uvloop."""
        return self.config.use_uvloop and _uvloop_factory() is not None

    def loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop]:
        """A factory for a new, configured event loop."""
        base = _uvloop_factory() if self.config.use_uvloop else None
        make: Callable[[], asyncio.AbstractEventLoop] = base or asyncio.new_event_loop

        def factory() -> asyncio.AbstractEventLoop:
            loop = make()
            self.configure(loop)
            return loop

        return factory

    def configure(self, loop: asyncio.AbstractEventLoop) -> None:
        """Apply the debug settings to ``loop``."""
        loop.set_debug(self.config.debug)
        loop.slow_callback_duration = self.config.slow_callback_duration

    def run(self, main: Coroutine[Any, Any, _T]) -> _T:
        """Run ``main`` to completion on a new loop and close the loop.

        Raises :class:`LoopManagerError` when called from a running loop (await the
        coroutine there instead).
        """
        if _loop_is_running():
            main.close()
            raise LoopManagerError(
                "AsyncEventLoopManager.run() cannot be called from a running event loop; "
                "await the coroutine instead"
            )
        with asyncio.Runner(debug=self.config.debug, loop_factory=self.loop_factory()) as runner:
            return runner.run(main)


def _loop_is_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if sys.platform == "win32":  # pragma: no cover - uvloop does not support Windows
        return None
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
