"""AsyncEventBus topics as observables, in marble diagrams (1 frame = 1 ms)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reactivex import Observable
from reactivex import operators as rx_ops

from rxflows import DEAD_LETTER_TOPIC, AsyncEventBus, BusEvent, DeadLetter
from rxflows.testing import MarbleContext, marbles


def publish_from(bus: AsyncEventBus, topic: str, source: Observable[Any]) -> None:
    """Publish every value of ``source`` on ``topic`` (from Rx callbacks: publish_nowait)."""
    source.subscribe(lambda value: bus.publish_nowait(topic, value))


def at(m: MarbleContext, frame: int, action: Callable[[], object]) -> None:
    """Run ``action`` at ``frame`` of the marble test."""
    m.loop.call_at(m.t0 + frame * m.frame, action)


def test_a_topic_through_debounce() -> None:
    with marbles() as m:
        bus = AsyncEventBus()
        publish_from(bus, "click", m.cold("-a-b-----cd"))
        clicks = bus.topic("click")
        m.expect(clicks.pipe(rx_ops.debounce(0.002, scheduler=m.scheduler))).to_be("-----b------d")


def test_a_topic_through_throttle_first() -> None:
    with marbles() as m:
        bus = AsyncEventBus()
        publish_from(bus, "metric", m.cold("-abc-de--f"))
        metrics = bus.topic("metric")
        m.expect(metrics.pipe(rx_ops.throttle_first(0.003, scheduler=m.scheduler))).to_be(
            "-a---d---f"
        )


def test_take_until_another_topic() -> None:
    with marbles() as m:
        bus = AsyncEventBus()
        publish_from(bus, "tick", m.cold("-abc-de"))
        publish_from(bus, "stop", m.cold("----s"))
        m.expect(bus.topic("tick").pipe(rx_ops.take_until(bus.topic("stop")))).to_be("-abc|")


def test_wildcard_events_carry_their_topic() -> None:
    with marbles() as m:
        bus = AsyncEventBus()
        publish_from(bus, "video.upload", m.cold("-a----d"))
        publish_from(bus, "audio.upload", m.cold("--b"))
        publish_from(bus, "video.render.done", m.cold("---c"))

        def topic_of(event: BusEvent) -> str:
            return event.topic

        names = bus.events("video.*").pipe(rx_ops.map(topic_of))
        m.expect(names).to_be("-u-r--u", {"u": "video.upload", "r": "video.render.done"})
        m.expect(bus.events("*.upload")).to_be(
            "-xy---z",
            {
                "x": BusEvent("video.upload", "a"),
                "y": BusEvent("audio.upload", "b"),
                "z": BusEvent("video.upload", "d"),
            },
        )


def test_once_takes_the_next_event() -> None:
    with marbles() as m:
        bus = AsyncEventBus()
        publish_from(bus, "t", m.cold("--bc"))
        m.expect(bus.once("t")).to_be("--(b|)")
        m.expect(bus.once("t", lambda v: v == "c"), "-^").to_be("---(c|)")


def test_a_raising_observer_does_not_stop_the_topic() -> None:
    with marbles() as m:
        bus = AsyncEventBus()
        publish_from(bus, "t", m.cold("-a-b-c"))

        def explode(value: str) -> None:
            raise ValueError(value)

        bus.topic("t").subscribe(explode)  # subscribed first, raises on every event
        m.expect(bus.topic("t")).to_be("-a-b-c")

        def failed_value(record: DeadLetter) -> str:
            return f"{record.data}:{record.error}"

        dead = bus.topic(DEAD_LETTER_TOPIC).pipe(rx_ops.map(failed_value))
        m.expect(dead).to_be("-x-y-z", {"x": "a:a", "y": "b:b", "z": "c:c"})


def test_handler_mailbox_serializes_and_close_drains_before_completing() -> None:
    """A handler taking 2 frames per event, fed three events at once: its mailbox
    runs them one after another; ``aclose()`` at frame 4 waits for the last one,
    then completes the topics."""
    with marbles() as m:
        bus = AsyncEventBus()

        async def render(value: str) -> None:
            await asyncio.sleep(0.002)
            bus.publish_nowait("rendered", value)  # a handler may publish while closing

        m.loop.create_task(bus.subscribe("render", render))
        publish_from(bus, "render", m.cold("-(abc)"))
        at(m, 4, lambda: m.loop.create_task(bus.aclose()))
        m.expect(bus.topic("rendered")).to_be("---a-b-(c|)")


def test_close_completes_every_topic() -> None:
    with marbles() as m:
        bus = AsyncEventBus()
        publish_from(bus, "t", m.cold("-a-b"))
        at(m, 5, lambda: m.loop.create_task(bus.aclose()))
        m.expect(bus.topic("t")).to_be("-a-b-|")
        m.expect(bus.topic("*").pipe(rx_ops.count())).to_be("-----(n|)", {"n": 2})
