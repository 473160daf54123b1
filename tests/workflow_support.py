"""Stub steps and probes shared by the workflow tests."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from rxflows import WorkflowEvent


def now() -> float:
    return asyncio.get_running_loop().time()


StepFn = Callable[..., Awaitable[Any]]


class Trace:
    """Builds stub steps that record when they ran, with what, and how they ended."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.starts: dict[str, float] = {}
        self.ends: dict[str, float] = {}
        self.args: dict[str, tuple[Any, ...]] = {}
        self.cancelled: dict[str, float] = {}
        self.running = 0
        self.peak = 0

    def step(
        self,
        name: str,
        *,
        duration: float = 0.0,
        error: BaseException | None = None,
        result: Any = None,
        fail_times: int = 0,
    ) -> StepFn:
        """A step named ``name``: takes ``duration`` seconds, then raises ``error`` (for
        the first ``fail_times`` calls only, if that is > 0) or returns ``result``
        (default: ``"name(arg,...)"``)."""

        async def run(*args: Any) -> Any:
            self.calls[name] += 1
            self.starts[name] = now()
            self.args[name] = args
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                await asyncio.sleep(duration)
            except asyncio.CancelledError:
                self.cancelled[name] = now()
                raise
            finally:
                self.running -= 1
            self.ends[name] = now()
            if error is not None and (fail_times == 0 or self.calls[name] <= fail_times):
                raise error
            if result is not None:
                return result
            return f"{name}({','.join(map(str, args))})"

        run.__qualname__ = name
        return run


class EventLog:
    """An event-bus handler ``(event, data)`` recording every workflow event."""

    def __init__(self) -> None:
        self.events: list[WorkflowEvent] = []

    async def __call__(self, event: str, data: WorkflowEvent) -> None:
        assert event == data.event
        self.events.append(data)

    def brief(self) -> list[tuple[str, str | None]]:
        return [(e.event, e.step) for e in self.events]


class ManualClock:
    """A clock the test moves by hand: ``sleep`` returns once ``advance`` passes its end."""

    def __init__(self) -> None:
        self.time = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.time + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        self.time += seconds
        due = [(t, f) for t, f in self._sleepers if t <= self.time]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self.time]
        for _, future in due:
            if not future.done():
                future.set_result(None)

    @property
    def sleepers(self) -> int:
        return sum(1 for _, f in self._sleepers if not f.done())
