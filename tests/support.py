"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import psutil
from reactivex import abc

from rxflows.testing import VirtualTimeLoop

T = TypeVar("T")


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on a fresh virtual-time loop (for hypothesis tests, which are sync)
    and fail if it leaves tasks behind."""

    async def checked() -> T:
        result = await main()
        for _ in range(20):
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if not pending:
                return result
            await asyncio.sleep(0)
        raise AssertionError(f"tasks left running: {pending!r}")

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(checked())


async def wait_exited(processes: list[psutil.Process], within: float = 5.0) -> list[psutil.Process]:
    """Wait (polling) until each child process has exited; return the ones still
    running after ``within`` seconds. For ``real_time`` tests: on the virtual-time
    loop the wait would end at once.

    Never reaps: ``psutil.Process.wait()`` and ``psutil.wait_procs`` call
    ``waitpid`` on our children, stealing the exit status from the
    ``multiprocessing`` object that owns the child, which then believes it alive
    forever (its pool's threads spin at interpreter exit). An exited child that its
    owner has not reaped yet is a zombie: that counts as exited.
    """

    def running(process: psutil.Process) -> bool:
        try:
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    alive = [p for p in processes if running(p)]
    while alive and loop.time() < deadline:
        await asyncio.sleep(0.02)
        alive = [p for p in alive if running(p)]
    return alive


class Recorder(abc.ObserverBase[Any]):
    """An observer that records what it sees, with the loop time of each event."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.times: list[float] = []
        self.error: Exception | None = None
        self.completed = False
        self.finished = asyncio.Event()

    def on_next(self, value: Any) -> None:
        self.items.append(value)
        try:
            self.times.append(asyncio.get_running_loop().time())
        except RuntimeError:  # recorded outside a loop: no clock to read
            self.times.append(float("nan"))

    def on_error(self, error: Exception) -> None:
        self.error = error
        self.finished.set()

    def on_completed(self) -> None:
        self.completed = True
        self.finished.set()

    @property
    def done(self) -> bool:
        return self.completed or self.error is not None


async def settle(turns: int = 10) -> None:
    """Let ready callbacks run without advancing the (virtual) clock."""
    for _ in range(turns):
        await asyncio.sleep(0)
