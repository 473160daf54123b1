"""``events``: publish -> handled throughput of the event bus, vs pyee.

What it measures: the time from the first publish of 100,000 events on one topic
until every handler has handled every event, on a fresh default asyncio loop.
The handler is a trivial coroutine function (``async def h(data): total += data``),
so the time is the bus's own machinery. Creating the bus, subscribing and
closing are not timed.

The producer is the same loop for every variant: publish (emit) each event, and
give the loop a turn (``await asyncio.sleep(0)``) every 1,000 events, as a real
producer does when it waits on I/O. (Without those turns pyee would hold all its
handler tasks at once: a million pending tasks with 10 handlers.)

Variants:

* pyee 13 ``AsyncIOEventEmitter`` (the **baseline**): ``ee.on("e", handler)``,
  ``ee.emit("e", i)`` (which schedules each coroutine handler call as a task),
  then ``await ee.wait_for_complete()``;
* rxflows ``create_async_event_bus()``: ``await bus.subscribe("e", handler)``,
  ``await bus.publish("e", i)``, then ``await bus.drain()`` (default mailbox of
  1,000 events, policy ``block``);
* each with 1 handler and with 10 handlers (10 distinct closures: pyee keeps one
  entry per function);
* **targets**: rxflows / pyee <= 1 with 1 handler and with 10 handlers;
* references (no target): a bare reactivex ``Subject`` with a sync ``on_next``
  handler (the floor: no mailbox, no asyncio at all), and an Rx observer of
  ``bus.topic("e")`` (the bus's Subject path, called inside ``publish``).

Each run checks the sum every handler saw. ``ns/event`` is the median time over
the number of events published.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pyee.asyncio import AsyncIOEventEmitter
from reactivex.subject import Subject

from rxflows import create_async_event_bus

from ._harness import (
    Benchmark,
    Progress,
    Report,
    RowSpec,
    Sample,
    Settings,
    Target,
    Variant,
    measure,
    run_on_loop,
    summarize,
)

NAME = "events"
FULL_EVENTS = 100_000
QUICK_EVENTS = 10_000
TURN_EVERY = 1_000
"""The producer gives the loop a turn every this many events."""

Workload = Callable[[int, int], Awaitable[tuple[float, int]]]
"""``(events, handlers) -> (seconds from first publish to all handled, sum seen)``."""


class Total:
    """What the handlers add up, to check that every event was handled."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def handler(self) -> Callable[[int], Awaitable[None]]:
        """A new handler closure (pyee keeps one entry per function)."""

        async def handle(data: int) -> None:
            self.value += data

        return handle


async def pyee_emitter(n: int, handlers: int) -> tuple[float, int]:
    """The baseline: pyee's AsyncIOEventEmitter with coroutine handlers."""
    total = Total()
    emitter = AsyncIOEventEmitter()
    for _ in range(handlers):
        emitter.on("e", total.handler())
    emit = emitter.emit
    sleep = asyncio.sleep
    start = time.perf_counter()
    for i in range(n):
        emit("e", i)
        if i % TURN_EVERY == TURN_EVERY - 1:
            await sleep(0)
    await emitter.wait_for_complete()
    return time.perf_counter() - start, total.value


async def rxflows_bus(n: int, handlers: int) -> tuple[float, int]:
    """The candidate: rxflows' event bus with coroutine handlers."""
    total = Total()
    bus = create_async_event_bus()
    for _ in range(handlers):
        await bus.subscribe("e", total.handler())
    publish = bus.publish
    sleep = asyncio.sleep
    start = time.perf_counter()
    for i in range(n):
        await publish("e", i)
        if i % TURN_EVERY == TURN_EVERY - 1:
            await sleep(0)
    await bus.drain()
    seconds = time.perf_counter() - start
    await bus.aclose()
    return seconds, total.value


async def rxflows_topic(n: int, handlers: int) -> tuple[float, int]:
    """Reference: sync Rx observers of ``bus.topic("e")``, called inside publish."""
    bus = create_async_event_bus()
    seen = [0]

    def on_next(data: int) -> None:
        seen[0] += data

    for _ in range(handlers):
        bus.topic("e").subscribe(on_next)
    publish = bus.publish
    sleep = asyncio.sleep
    start = time.perf_counter()
    for i in range(n):
        await publish("e", i)
        if i % TURN_EVERY == TURN_EVERY - 1:
            await sleep(0)
    seconds = time.perf_counter() - start
    await bus.aclose()
    return seconds, seen[0]


async def bare_subject(n: int, handlers: int) -> tuple[float, int]:
    """Reference, the floor: a reactivex Subject with sync on_next handlers."""
    subject: Subject[int] = Subject()
    seen = [0]

    def on_next(data: int) -> None:
        seen[0] += data

    for _ in range(handlers):
        subject.subscribe(on_next)
    push = subject.on_next
    sleep = asyncio.sleep
    start = time.perf_counter()
    for i in range(n):
        push(i)
        if i % TURN_EVERY == TURN_EVERY - 1:
            await sleep(0)
    return time.perf_counter() - start, seen[0]


def timed(workload: Workload, n: int, handlers: int) -> Callable[[], Sample]:
    """A variant's ``run``: one run on a fresh loop, checked."""

    async def main() -> Sample:
        seconds, total = await workload(n, handlers)
        expected = handlers * n * (n - 1) // 2
        if total != expected:
            raise AssertionError(f"{workload.__name__}: handlers saw {total}, not {expected}")
        return Sample(seconds, {"ns/event": seconds / n * 1e9})

    return lambda: run_on_loop(main)


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure every variant and build the report."""
    n = QUICK_EVENTS if settings.quick else FULL_EVENTS
    producer = f"{n:,} events, a loop turn every {TURN_EVERY:,}"
    variants = [
        Variant(
            "pyee-1",
            f"pyee AsyncIOEventEmitter, 1 async handler: emit x {producer}, wait_for_complete()",
            timed(pyee_emitter, n, 1),
        ),
        Variant(
            "rxflows-1",
            f"rxflows bus, 1 async handler: await publish x {producer}, drain()",
            timed(rxflows_bus, n, 1),
        ),
        Variant(
            "pyee-10",
            f"pyee AsyncIOEventEmitter, 10 async handlers: emit x {producer}, wait_for_complete()",
            timed(pyee_emitter, n, 10),
        ),
        Variant(
            "rxflows-10",
            f"rxflows bus, 10 async handlers: await publish x {producer}, drain()",
            timed(rxflows_bus, n, 10),
        ),
        Variant(
            "subject-1",
            f"reactivex Subject, 1 sync on_next handler: on_next x {producer}",
            timed(bare_subject, n, 1),
        ),
        Variant(
            "topic-1",
            f"rxflows bus.topic('e') with 1 sync observer: await publish x {producer}",
            timed(rxflows_topic, n, 1),
        ),
    ]
    metric = ("ns/event",)
    target = Target("ratio", 1.0, "ratio <= 1 (at least as fast as pyee)")
    specs = [
        RowSpec("baseline: pyee, 1 handler", "pyee-1", "pyee-1", "baseline", items=n),
        RowSpec(
            "rxflows bus, 1 handler / pyee",
            "rxflows-1",
            "pyee-1",
            target=target,
            items=n,
            metrics=metric,
        ),
        RowSpec("baseline: pyee, 10 handlers", "pyee-10", "pyee-10", "baseline", items=n),
        RowSpec(
            "rxflows bus, 10 handlers / pyee",
            "rxflows-10",
            "pyee-10",
            target=target,
            items=n,
            metrics=metric,
        ),
        RowSpec(
            "ref: bare Subject, sync handler / pyee",
            "subject-1",
            "pyee-1",
            "reference",
            items=n,
            metrics=metric,
        ),
        RowSpec(
            "ref: rxflows bus, 1 handler / bare Subject",
            "rxflows-1",
            "subject-1",
            "reference",
            items=n,
            metrics=metric,
        ),
        RowSpec(
            "ref: bus.topic() observer / bare Subject",
            "topic-1",
            "subject-1",
            "reference",
            items=n,
            metrics=metric,
        ),
    ]
    runs = measure(variants, settings, progress)
    return Report(
        name=NAME,
        title=f"event bus, publish -> handled, {n:,} events",
        parameters={
            "events": n,
            "turn_every": TURN_EVERY,
            "loop": "asyncio default",
            "mailbox": "1000, policy block",
        },
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
    )


BENCHMARK = Benchmark(
    NAME, "AsyncEventBus publish -> handled vs pyee AsyncIOEventEmitter (target: ratio <= 1)", run
)
