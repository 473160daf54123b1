"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

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
