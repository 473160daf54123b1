"""AsyncEventBus: the guide's examples, handlers, routing, mailboxes, failures, lifecycle."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as rx_ops
from reactivex.internal.exceptions import SequenceContainsNoElementsError
from reactivex.subject import Subject

from rxflows import (
    DEAD_LETTER_TOPIC,
    AsyncEventBus,
    BackpressureError,
    BackpressurePolicy,
    BusClosedError,
    BusEvent,
    BusState,
    BusStatistics,
    ClosedResourceError,
    ConfigurationError,
    DeadLetter,
    SubscriberStatistics,
    create_async_event_bus,
    create_async_flow_config,
)

from .support import Recorder, run_virtual, settle


def now() -> float:
    return asyncio.get_running_loop().time()


# --- the guide's examples, as written (with rxflows) -------------------------------------


async def test_guide_event_bus(capsys: pytest.CaptureFixture[str]) -> None:
    event_bus = create_async_event_bus()

    # Subscribe to events
    async def handle_video_processed(data: Any) -> None:
        print(f"Video processed: {data}")

    async def handle_error(data: Any) -> None:
        print(f"Error occurred: {data}")

    await event_bus.subscribe("video_processed", handle_video_processed)
    await event_bus.subscribe("error", handle_error)

    # Publish events
    await event_bus.publish("video_processed", {"url": "video.mp4", "status": "completed"})
    await event_bus.publish("error", {"message": "Download failed"})

    await event_bus.aclose()
    assert capsys.readouterr().out == (
        "Video processed: {'url': 'video.mp4', 'status': 'completed'}\n"
        "Error occurred: {'message': 'Download failed'}\n"
    )


class EventDrivenVideoProcessor:
    """The guide's class, as written."""

    def __init__(self, event_bus: AsyncEventBus) -> None:
        self.event_bus = event_bus

    async def process_video(self, url: str) -> Any:
        try:
            # Download video
            await self.event_bus.publish("download_started", {"url": url})
            video_data = await self.download_video(url)
            await self.event_bus.publish("download_completed", {"url": url})

            # Process video
            await self.event_bus.publish("processing_started", {"url": url})
            result = await self.process_video_data(video_data)
            await self.event_bus.publish("processing_completed", {"url": url, "result": result})

            return result

        except Exception as e:
            await self.event_bus.publish("error", {"url": url, "error": str(e)})
            raise

    async def download_video(self, url: str) -> str:
        await asyncio.sleep(2)
        if "broken" in url:
            raise ConnectionError(f"404 for {url}")
        return f"bytes of {url}"

    async def process_video_data(self, video_data: str) -> str:
        await asyncio.sleep(3)
        return f"clip from {video_data}"


async def test_guide_event_driven_video_processor() -> None:
    async with create_async_event_bus() as bus:
        log: list[tuple[float, str, Any]] = []
        start = now()

        def monitor(event: str, data: Any) -> None:
            log.append((now() - start, event, data))

        await bus.subscribe("*", monitor)
        processor = EventDrivenVideoProcessor(bus)
        assert await processor.process_video("a.mp4") == "clip from bytes of a.mp4"
        with pytest.raises(ConnectionError, match=r"404 for broken\.mp4"):
            await processor.process_video("broken.mp4")
        await bus.drain()
    assert log == [
        (0.0, "download_started", {"url": "a.mp4"}),
        (2.0, "download_completed", {"url": "a.mp4"}),
        (2.0, "processing_started", {"url": "a.mp4"}),
        (5.0, "processing_completed", {"url": "a.mp4", "result": "clip from bytes of a.mp4"}),
        (5.0, "download_started", {"url": "broken.mp4"}),
        (7.0, "error", {"url": "broken.mp4", "error": "404 for broken.mp4"}),
    ]


async def test_guide_integration_event_driven_video_processing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    buses: list[AsyncEventBus] = []

    async def process_video_with_events(url: str, event_bus: AsyncEventBus) -> None:
        buses.append(event_bus)
        await event_bus.publish("video_ready", {"url": url})
        await asyncio.sleep(1)
        await event_bus.publish("processing_complete", {"url": url, "clips": 3})
        await event_bus.publish("error", {"url": url, "message": "upload quota exceeded"})
        await event_bus.drain()

    # The guide's function, as written.
    async def event_driven_video_processing() -> None:
        event_bus = create_async_event_bus()

        # Setup event handlers
        async def handle_video_ready(data: Any) -> None:
            print(f"Video ready for processing: {data}")
            # Trigger processing pipeline

        async def handle_processing_complete(data: Any) -> None:
            print(f"Processing complete: {data}")
            # Trigger upload

        async def handle_error(data: Any) -> None:
            print(f"Error occurred: {data}")
            # Trigger error recovery

        await event_bus.subscribe("video_ready", handle_video_ready)
        await event_bus.subscribe("processing_complete", handle_processing_complete)
        await event_bus.subscribe("error", handle_error)

        # Start processing
        await process_video_with_events("video.mp4", event_bus)

    await event_driven_video_processing()
    await buses[0].aclose()
    assert capsys.readouterr().out.splitlines() == [
        "Video ready for processing: {'url': 'video.mp4'}",
        "Processing complete: {'url': 'video.mp4', 'clips': 3}",
        "Error occurred: {'url': 'video.mp4', 'message': 'upload quota exceeded'}",
    ]


async def test_guide_workflow_monitor_handler_shape(capsys: pytest.CaptureFixture[str]) -> None:
    async with create_async_event_bus() as bus:
        # Execute with event monitoring
        async def workflow_monitor(event_type: str, data: Any) -> None:
            print(f"Workflow event: {event_type} - {data}")

        await bus.subscribe("step_completed", workflow_monitor)
        await bus.subscribe("step_failed", workflow_monitor)
        await bus.publish("step_completed", {"step": "download"})
        await bus.publish("step_failed", {"step": "encode", "error": "timeout"})
    assert capsys.readouterr().out.splitlines() == [
        "Workflow event: step_completed - {'step': 'download'}",
        "Workflow event: step_failed - {'step': 'encode', 'error': 'timeout'}",
    ]


# --- handler shapes ----------------------------------------------------------------------

Record = list[tuple[Any, ...]]


class Methods:
    def __init__(self, record: Record) -> None:
        self.record = record

    def on_data(self, data: Any) -> None:
        self.record.append((data,))

    async def on_event(self, event: str, data: Any) -> None:
        self.record.append((event, data))


class SyncCallable:
    def __init__(self, record: Record) -> None:
        self.record = record

    def __call__(self, data: Any) -> None:
        self.record.append((data,))


class AsyncCallable:
    def __init__(self, record: Record) -> None:
        self.record = record

    async def __call__(self, event: str, data: Any) -> None:
        await asyncio.sleep(0)
        self.record.append((event, data))


class Unreadable:
    """A callable whose signature Python cannot read."""

    __signature__ = 1

    def __init__(self, record: Record) -> None:
        self.record = record

    def __call__(self, *args: Any) -> None:
        self.record.append(args)


def _async_data(record: Record) -> Callable[..., Any]:
    async def handler(data: Any) -> None:
        record.append((data,))

    return handler


def _sync_data(record: Record) -> Callable[..., Any]:
    def handler(data: Any) -> None:
        record.append((data,))

    return handler


def _async_event(record: Record) -> Callable[..., Any]:
    async def handler(event: str, data: Any) -> None:
        record.append((event, data))

    return handler


def _sync_event(record: Record) -> Callable[..., Any]:
    def handler(event: str, data: Any) -> None:
        record.append((event, data))

    return handler


def _partial_event(record: Record) -> Callable[..., Any]:
    def handler(prefix: str, event: str, data: Any) -> None:
        record.append((prefix + event, data))

    return functools.partial(handler, ">")


def _partial_async_data(record: Record) -> Callable[..., Any]:
    async def handler(prefix: str, data: Any) -> None:
        record.append((prefix + str(data),))

    return functools.partial(handler, ">")


def _var_args(record: Record) -> Callable[..., Any]:
    return lambda *args: record.append(args)


def _optional_data(record: Record) -> Callable[..., Any]:
    def handler(data: Any = None) -> None:
        record.append((data,))

    return handler


def _optional_both(record: Record) -> Callable[..., Any]:
    def handler(event: Any = None, data: Any = None) -> None:
        record.append((event, data))

    return handler


def _data_and_rest(record: Record) -> Callable[..., Any]:
    def handler(data: Any, *rest: Any) -> None:
        record.append((data, *rest))

    return handler


def _data_and_keyword(record: Record) -> Callable[..., Any]:
    def handler(data: Any, *, flag: bool = False) -> None:
        record.append((data, flag))

    return handler


def _returns_coroutine(record: Record) -> Callable[..., Any]:
    async def work(data: Any) -> None:
        await asyncio.sleep(1)
        record.append((data,))

    return lambda data: work(data)


HANDLERS: list[tuple[str, Callable[[Record], Callable[..., Any]], list[Any]]] = [
    ("async (data)", _async_data, [(1,)]),
    ("sync (data)", _sync_data, [(1,)]),
    ("async (event, data)", _async_event, [("t", 1)]),
    ("sync (event, data)", _sync_event, [("t", 1)]),
    ("bound method (data)", lambda r: Methods(r).on_data, [(1,)]),
    ("bound async method (event, data)", lambda r: Methods(r).on_event, [("t", 1)]),
    ("partial leaving (event, data)", _partial_event, [(">t", 1)]),
    ("partial of async leaving (data)", _partial_async_data, [(">1",)]),
    ("callable object (data)", SyncCallable, [(1,)]),
    ("async callable object (event, data)", AsyncCallable, [("t", 1)]),
    ("*args -> (event, data)", _var_args, [("t", 1)]),
    ("one optional -> (data)", _optional_data, [(1,)]),
    ("two optional -> (event, data)", _optional_both, [("t", 1)]),
    ("(data, *rest) -> (data)", _data_and_rest, [(1,)]),
    ("(data, *, flag=False) -> (data)", _data_and_keyword, [(1, False)]),
    ("sync returning a coroutine: awaited", _returns_coroutine, [(1,)]),
    ("list.append (builtin, (object, /))", lambda r: r.append, [1]),
    ("unreadable signature -> (data)", Unreadable, [(1,)]),
]


@pytest.mark.parametrize(
    ("factory", "expected"), [(f, e) for _, f, e in HANDLERS], ids=[i for i, _, _ in HANDLERS]
)
async def test_handler_shapes(
    factory: Callable[[Record], Callable[..., Any]], expected: list[Any]
) -> None:
    record: Record = []
    async with create_async_event_bus() as bus:
        await bus.subscribe("t", factory(record))
        await bus.publish("t", 1)
    assert record == expected


async def test_pass_event_overrides_the_signature() -> None:
    seen: list[Any] = []
    async with create_async_event_bus() as bus:
        forced = await bus.subscribe("t", lambda *args: seen.append(args), pass_event=False)
        both = await bus.subscribe("t", lambda *args: seen.append(args), pass_event=True)
        assert (forced.passes_event, both.passes_event) == (False, True)
        await bus.publish("t", 1)
    assert seen == [(1,), ("t", 1)]


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (lambda a, b, c: None, r"requires 3 positional arguments \(a, b, c\)"),
        (lambda data, *, key: None, r"required keyword-only parameter\(s\) key"),
        (lambda: None, "takes no positional argument"),
        (5, "handler must be callable .* got int 5"),
        ("print", "handler must be callable .* got str 'print'"),
    ],
)
async def test_bad_handlers_raise_type_error_at_subscribe(handler: Any, message: str) -> None:
    async with create_async_event_bus() as bus:
        with pytest.raises(TypeError, match=message):
            await bus.subscribe("t", handler)
        assert bus.statistics().subscribers == 0


async def test_pass_event_must_be_a_bool_or_none() -> None:
    async with create_async_event_bus() as bus:
        with pytest.raises(ConfigurationError, match="pass_event must be True, False or None"):
            await bus.subscribe("t", print, pass_event="yes")  # type: ignore[arg-type]  # bad on purpose


# --- topic names and patterns ------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """An independent oracle: a middle '*' is one segment, a trailing '*' one or more."""
    parts = pattern.split(".")
    pieces = [r"[^.]+" if p == "*" else re.escape(p) for p in parts[:-1]]
    pieces.append(r".+" if parts[-1] == "*" else re.escape(parts[-1]))
    return re.compile(r"\.".join(pieces))


def matches(pattern: str, topic: str) -> bool:
    return _pattern_regex(pattern).fullmatch(topic) is not None


TOPICS = ["video", "video.processed", "video.upload.done", "videos.x", "upload.done", "a.b.c"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("video.*", ["video.processed", "video.upload.done"]),
        ("*", TOPICS),
        ("*.done", ["upload.done"]),
        ("video.*.done", ["video.upload.done"]),
        ("*.*", ["video.processed", "video.upload.done", "videos.x", "upload.done", "a.b.c"]),
        ("a.*.c", ["a.b.c"]),
        ("video", ["video"]),
        ("video.processed", ["video.processed"]),
    ],
)
async def test_wildcards(pattern: str, expected: list[str]) -> None:
    got: list[str] = []
    async with create_async_event_bus() as bus:
        await bus.subscribe(pattern, lambda event, data: got.append(event))
        for topic in TOPICS:
            await bus.publish(topic, None)
    assert got == expected
    assert got == [t for t in TOPICS if matches(pattern, t)]


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "it is empty"),
        ("video processed", "contains whitespace"),
        ("video.\tx", "contains whitespace"),
        ("video..done", "empty segment"),
        (".video", "empty segment"),
        ("video.", "empty segment"),
        ("**", "'\\*' must be a whole segment"),
        ("video*", "'\\*' must be a whole segment"),
        ("video.*x", "'\\*' must be a whole segment"),
    ],
)
async def test_malformed_patterns_raise_at_once(pattern: str, problem: str) -> None:
    async with create_async_event_bus() as bus:
        with pytest.raises(ConfigurationError, match=problem) as info:
            await bus.subscribe(pattern, print)
        assert info.value.field == "event"
        assert repr(pattern) in str(info.value)
        with pytest.raises(ConfigurationError, match=problem):
            bus.topic(pattern)
        with pytest.raises(ConfigurationError, match="event must be a topic name"):
            await bus.publish(pattern, 1)


async def test_publish_needs_a_name_not_a_pattern_and_not_the_dead_letter_topic() -> None:
    async with create_async_event_bus() as bus:
        with pytest.raises(ConfigurationError, match="'\\*' is for subscription patterns"):
            await bus.publish("video.*", 1)
        with pytest.raises(ConfigurationError, match="is reserved for the bus's dead letters"):
            await bus.publish(DEAD_LETTER_TOPIC, 1)
        with pytest.raises(ConfigurationError, match="reserved"):
            bus.publish_nowait("bus.dead_letter", 1)
        assert bus.statistics().published == 0


async def test_topic_names_must_be_strings() -> None:
    async with create_async_event_bus() as bus:
        with pytest.raises(TypeError, match=r"event must be a str topic name .* got int 5"):
            await bus.publish(5, 1)  # type: ignore[arg-type]  # bad on purpose
        with pytest.raises(TypeError, match="got list"):
            await bus.publish(["a"], 1)  # type: ignore[arg-type]  # unhashable, bad on purpose
        with pytest.raises(TypeError, match="event must be a str"):
            await bus.subscribe(None, print)  # type: ignore[arg-type]  # bad on purpose


async def test_many_topic_names_stay_correct_past_the_route_cache() -> None:
    got: list[str] = []
    async with create_async_event_bus(buffer_size=10_000) as bus:
        await bus.subscribe("job.*", lambda event, data: got.append(event))
        names = [f"job.{i}" for i in range(5000)]
        for name in names:
            await bus.publish(name, None)
        await bus.publish(names[0], None)
    assert got == [*names, names[0]]


# --- configuration ------------------------------------------------------------------------


async def test_buffer_size_comes_from_config_and_can_be_overridden() -> None:
    assert create_async_event_bus().buffer_size == 1000
    config = create_async_flow_config(event_bus_buffer_size=5)
    assert create_async_event_bus(config).buffer_size == 5
    assert create_async_event_bus(config, event_bus_buffer_size=7).buffer_size == 7
    assert AsyncEventBus(config, buffer_size=3).buffer_size == 3
    async with create_async_event_bus(config, policy="drop_oldest") as bus:
        default = await bus.subscribe("t", print)
        own = await bus.subscribe("t", print, buffer_size=2, policy=BackpressurePolicy.ERROR)
        assert (default.buffer_size, default.policy) == (5, BackpressurePolicy.DROP_OLDEST)
        assert (own.buffer_size, own.policy) == (2, BackpressurePolicy.ERROR)


@pytest.mark.parametrize("size", [0, -1, True, 1.5, "3"])
async def test_bad_buffer_size(size: Any) -> None:
    with pytest.raises(
        ConfigurationError, match=f"buffer_size must be a positive int, got {size!r}"
    ):
        create_async_event_bus(buffer_size=size)
    async with create_async_event_bus() as bus:
        with pytest.raises(ConfigurationError, match="buffer_size must be a positive int"):
            await bus.subscribe("t", print, buffer_size=size)


async def test_bad_policy_and_options() -> None:
    with pytest.raises(ConfigurationError, match=r"policy must be .*'drop_oldest'.*got 'fast'"):
        create_async_event_bus(policy="fast")
    async with create_async_event_bus() as bus:
        with pytest.raises(ConfigurationError, match="got 'later'"):
            await bus.subscribe("t", print, policy="later")
    with pytest.raises(ConfigurationError, match=r"unknown option 'buffer_sise'.*'buffer_size'"):
        create_async_event_bus(buffer_sise=3)
    with pytest.raises(ConfigurationError, match="event_bus_buffer_size must be a positive int"):
        create_async_event_bus(event_bus_buffer_size=0)
    with pytest.raises(ConfigurationError, match="config must be an AsyncFlowConfig"):
        AsyncEventBus("fast")  # type: ignore[arg-type]  # bad on purpose
    with pytest.raises(TypeError, match="clock must be"):
        create_async_event_bus(clock=5)


# --- ordering and mailboxes -------------------------------------------------------------


async def test_each_handler_gets_its_events_in_publish_order() -> None:
    async with create_async_event_bus() as bus:
        seen: dict[str, list[tuple[float, int]]] = {"slow": [], "fast": []}
        start = now()

        async def slow(data: int) -> None:
            await asyncio.sleep(3 - data % 3)  # later events take less time: order still holds
            seen["slow"].append((now() - start, data))

        def fast(data: int) -> None:
            seen["fast"].append((now() - start, data))

        await bus.subscribe("n", slow)
        await bus.subscribe("n", fast)
        for i in range(6):
            await bus.publish("n", i)
        assert now() == start  # the publisher was never held up
        await bus.drain()
        assert now() - start == 12.0
    assert [d for _, d in seen["slow"]] == [0, 1, 2, 3, 4, 5]
    assert [t for t, _ in seen["slow"]] == [3.0, 5.0, 6.0, 9.0, 11.0, 12.0]
    assert seen["fast"] == [(0.0, i) for i in range(6)]


async def test_block_policy_makes_the_publisher_wait_in_order() -> None:
    async with create_async_event_bus(buffer_size=2) as bus:
        start = now()
        handled: list[tuple[float, int]] = []
        returned: list[tuple[float, int]] = []

        async def slow(data: int) -> None:
            handled.append((now() - start, data))
            await asyncio.sleep(1)

        sub = await bus.subscribe("n", slow)
        for i in range(5):
            await bus.publish("n", i)
            returned.append((now() - start, i))
        # e0, e1 fill the mailbox; e2 waits until the worker takes e0 (at 0), e3 until
        # it takes e1 (at 1), e4 until it takes e2 (at 2).
        assert returned == [(0.0, 0), (0.0, 1), (0.0, 2), (1.0, 3), (2.0, 4)]
        await bus.drain()
        assert handled == [(float(i), i) for i in range(5)]
        assert sub.statistics().dropped == 0


async def test_blocked_publishers_are_served_first_come_first_served() -> None:
    async with create_async_event_bus(buffer_size=1) as bus:
        got: list[int] = []

        async def slow(data: int) -> None:
            await asyncio.sleep(1)
            got.append(data)

        await bus.subscribe("n", slow)
        await bus.publish("n", 0)
        await settle()  # 0 is being handled
        await bus.publish("n", 1)  # fills the mailbox
        waiters = [asyncio.create_task(bus.publish("n", i)) for i in (2, 3, 4)]
        await settle()
        bus.publish_nowait("other", None)  # no subscriber: not affected
        with pytest.raises(BackpressureError):
            bus.publish_nowait("n", 99)  # cannot barge in before the waiting publishers
        await asyncio.gather(*waiters)
        await bus.drain()
    assert got == [0, 1, 2, 3, 4]


async def test_a_slow_handler_does_not_hold_up_the_others() -> None:
    async with create_async_event_bus() as bus:
        start = now()
        fast_times: list[float] = []

        async def slow(data: int) -> None:
            await asyncio.sleep(10)

        async def fast(data: int) -> None:
            await asyncio.sleep(0.5)
            fast_times.append(now() - start)

        await bus.subscribe("n", slow)
        await bus.subscribe("n", fast)
        for i in range(3):
            await bus.publish("n", i)
        await asyncio.sleep(2)
        assert fast_times == [0.5, 1.0, 1.5]
        assert bus.statistics().backlog == 3  # slow: one running, two queued
        await bus.drain()
        assert now() - start == 30.0


async def _slow_subscriber(
    bus: AsyncEventBus, policy: str, got: list[int]
) -> tuple[Any, Callable[[], Awaitable[None]]]:
    async def slow(data: int) -> None:
        await asyncio.sleep(1)
        got.append(data)

    sub = await bus.subscribe("n", slow, buffer_size=2, policy=policy)

    async def fill() -> None:
        await bus.publish("n", 0)
        await settle()  # 0 is now being handled; the mailbox is empty
        for i in range(1, 5):
            await bus.publish("n", i)

    return sub, fill


@pytest.mark.parametrize(
    ("policy", "handled"),
    [
        ("drop_oldest", [0, 3, 4]),
        ("drop_newest", [0, 1, 2]),
        ("keep_latest", [0, 1, 4]),
    ],
)
async def test_dropping_policies(policy: str, handled: list[int]) -> None:
    got: list[int] = []
    async with create_async_event_bus() as bus:
        sub, fill = await _slow_subscriber(bus, policy, got)
        start = now()
        await fill()
        assert now() == start  # dropping policies never make the publisher wait
        await bus.drain()
        stats = sub.statistics()
        assert (stats.delivered, stats.dropped, stats.queued) == (3, 2, 0)
        assert bus.statistics().dropped == 2
    assert got == handled


async def test_error_policy_raises_after_delivering_to_the_others() -> None:
    got: list[int] = []
    others: list[int] = []
    async with create_async_event_bus() as bus:
        sub, _ = await _slow_subscriber(bus, "error", got)
        await bus.subscribe("n", others.append)
        await bus.publish("n", 0)
        await settle()
        await bus.publish("n", 1)
        await bus.publish("n", 2)
        with pytest.raises(BackpressureError) as info:
            await bus.publish("n", 3)
        message = str(info.value)
        assert "handler _slow_subscriber.<locals>.slow on 'n'" in message
        assert "full (2 events, policy 'error')" in message
        assert "event 'n' was dropped for it" in message
        assert info.value.capacity == 2
        await settle()
        assert others == [0, 1, 2, 3]  # the other subscriber got event 3 all the same
        await bus.drain()
        assert sub.statistics().dropped == 1
    assert got == [0, 1, 2]


async def test_publish_nowait_with_a_full_blocking_mailbox_raises() -> None:
    got: list[int] = []
    others: list[int] = []
    async with create_async_event_bus() as bus:
        sub, _ = await _slow_subscriber(bus, "block", got)
        await bus.subscribe("n", others.append)
        bus.publish_nowait("n", 0)
        await settle()  # 0 is being handled
        bus.publish_nowait("n", 1)
        bus.publish_nowait("n", 2)
        with pytest.raises(BackpressureError, match="publish_nowait cannot wait for"):
            bus.publish_nowait("n", 3)
        await bus.drain()
        assert sub.statistics().dropped == 1
    assert got == [0, 1, 2]
    assert others == [0, 1, 2, 3]


async def test_a_handler_publishing_into_its_own_full_mailbox_fails_instead_of_hanging() -> None:
    dead: list[DeadLetter] = []
    got: list[int] = []
    async with create_async_event_bus() as bus:

        async def echo(data: int) -> None:
            got.append(data)
            if data == 0:
                await bus.publish("loop", 1)  # fits: the mailbox was emptied for 0
                await bus.publish("loop", 2)  # full, and only this handler can make room

        await bus.subscribe("loop", echo, buffer_size=1)
        await bus.subscribe(DEAD_LETTER_TOPIC, dead.append)
        await bus.publish("loop", 0)
        await bus.drain()
    assert got == [0, 1]
    assert len(dead) == 1
    assert isinstance(dead[0].error, BackpressureError)
    assert "into its own full mailbox" in str(dead[0].error)


async def test_a_cancelled_blocked_publisher_withdraws_its_event() -> None:
    got: list[int] = []
    async with create_async_event_bus() as bus:

        async def slow(data: int) -> None:
            await asyncio.sleep(1)
            got.append(data)

        sub = await bus.subscribe("n", slow, buffer_size=1)
        await bus.publish("n", 0)
        await settle()
        await bus.publish("n", 1)
        first = asyncio.create_task(bus.publish("n", 2))
        second = asyncio.create_task(bus.publish("n", 3))
        await settle()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await second
        await bus.drain()
        assert sub.statistics().dropped == 1
    assert got == [0, 1, 3]


# --- failures and dead letters ----------------------------------------------------------


async def test_a_failing_handler_never_stops_delivery() -> None:
    good: list[int] = []
    dead: list[DeadLetter] = []
    async with create_async_event_bus() as bus:

        async def flaky(data: int) -> None:
            if data % 2:
                raise ValueError(f"odd {data}")

        await bus.subscribe("n", flaky)
        await bus.subscribe("n", good.append)
        await bus.subscribe(DEAD_LETTER_TOPIC, dead.append)
        for i in range(4):
            await bus.publish("n", i)
        await bus.drain()
        stats = bus.statistics()
    assert good == [0, 1, 2, 3]
    assert [(d.event, d.data, d.handler, str(d.error)) for d in dead] == [
        ("n", 1, flaky, "odd 1"),
        ("n", 3, flaky, "odd 3"),
    ]
    assert isinstance(dead[0].error, ValueError)
    # 4 events x 2 handlers + 2 dead letters; 2 of the 10 deliveries failed
    assert (stats.published, stats.delivered, stats.failed, stats.dropped) == (6, 8, 2, 0)


async def test_a_failure_nobody_listens_for_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async with create_async_event_bus() as bus:

        def broken(data: Any) -> None:
            raise KeyError("missing")

        await bus.subscribe("n", broken)
        with caplog.at_level(logging.ERROR, logger="rxflows.events"):
            await bus.publish("n", 1)
            await bus.drain()
    [record] = caplog.records
    assert "handler test_a_failure_nobody_listens_for_is_logged.<locals>.broken on 'n'" in (
        record.getMessage()
    )
    assert "nothing subscribes to 'bus.dead_letter'" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)


async def test_a_failing_dead_letter_handler_is_logged_not_republished(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    async with create_async_event_bus() as bus:

        def broken(data: Any) -> None:
            raise ValueError("first")

        def broken_dead_letters(record: DeadLetter) -> None:
            calls.append(record.event)
            raise RuntimeError("second")

        await bus.subscribe("n", broken)
        await bus.subscribe(DEAD_LETTER_TOPIC, broken_dead_letters)
        with caplog.at_level(logging.ERROR, logger="rxflows.events"):
            await bus.publish("n", 1)
            await bus.drain()
        stats = bus.statistics()
    assert calls == ["n"]
    assert (stats.published, stats.failed) == (2, 2)
    [record] = caplog.records
    assert "raised while handling a dead letter" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_a_failing_catch_all_handler_sees_its_dead_letter_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    async with create_async_event_bus() as bus:

        def everything(event: str, data: Any) -> None:
            seen.append(event)
            raise ValueError(event)

        await bus.subscribe("*", everything)
        with caplog.at_level(logging.ERROR, logger="rxflows.events"):
            await bus.publish("n", 1)
            await bus.drain()
    assert seen == ["n", DEAD_LETTER_TOPIC]  # and no further round
    assert len(caplog.records) == 1


async def test_a_handler_cancelling_itself_is_a_failure_not_the_end_of_its_worker() -> None:
    got: list[int] = []
    dead: list[DeadLetter] = []
    async with create_async_event_bus() as bus:

        async def handler(data: int) -> None:
            if data == 0:
                raise asyncio.CancelledError
            got.append(data)

        sub = await bus.subscribe("n", handler)
        await bus.subscribe(DEAD_LETTER_TOPIC, dead.append)
        await bus.publish("n", 0)
        await bus.publish("n", 1)
        await bus.drain()
        assert (sub.statistics().failed, sub.statistics().delivered) == (1, 1)
    assert got == [1]
    assert isinstance(dead[0].error, asyncio.CancelledError)


async def test_a_raising_topic_observer_does_not_stop_the_others() -> None:
    second: list[int] = []
    handled: list[int] = []
    dead: list[DeadLetter] = []
    async with create_async_event_bus() as bus:
        await bus.subscribe("n", handled.append)
        await bus.subscribe(DEAD_LETTER_TOPIC, dead.append)

        def explode(value: int) -> None:
            raise ValueError(f"observer {value}")

        topic = bus.topic("n")
        first_subscription = topic.subscribe(explode)
        topic.subscribe(second.append)
        for i in range(3):
            await bus.publish("n", i)
        await bus.drain()
        assert bus.statistics().observers == 2  # the raising observer stays subscribed
        first_subscription.dispose()
        assert bus.statistics().observers == 1
    assert second == [0, 1, 2]
    assert handled == [0, 1, 2]
    assert [(d.event, d.data, str(d.error)) for d in dead] == [
        ("n", 0, "observer 0"),
        ("n", 1, "observer 1"),
        ("n", 2, "observer 2"),
    ]


def test_rxpy_plain_subject_stops_on_a_raising_observer() -> None:
    """Why the bus guards its Subjects: RxPY's plain Subject does not."""
    subject: Subject[int] = Subject()
    second: list[int] = []

    def explode(value: int) -> None:
        raise ValueError(value)

    subject.subscribe(explode)
    subject.subscribe(second.append)
    with pytest.raises(ValueError, match="1"):
        subject.on_next(1)
    assert second == []


async def test_an_observer_failing_on_a_dead_letter_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with create_async_event_bus() as bus:

        def explode(value: Any) -> None:
            raise ValueError("observer")

        bus.topic("*").subscribe(explode)
        with caplog.at_level(logging.ERROR, logger="rxflows.events"):
            await bus.publish("n", 1)
        # The observer of "*" got the dead letter of its own failure on "n", and
        # failed again: that second failure is only logged.
        [record] = caplog.records
        assert record.getMessage().startswith(
            "an observer of 'bus.dead_letter' raised on a dead letter (DeadLetter(event='n'"
        )
        assert (bus.statistics().failed, bus.statistics().published) == (2, 2)


# --- topics as observables ------------------------------------------------------------------


async def test_rx_composition_over_a_topic() -> None:
    async with create_async_event_bus() as bus:
        recorder = Recorder()

        def completed(data: dict[str, str]) -> bool:
            return data["status"] == "completed"

        def url(data: dict[str, str]) -> str:
            return data["url"]

        bus.topic("video_processed").pipe(rx_ops.filter(completed), rx_ops.map(url)).subscribe(
            recorder
        )
        await bus.publish("video_processed", {"url": "a.mp4", "status": "completed"})
        await bus.publish("video_processed", {"url": "b.mp4", "status": "failed"})
        await bus.publish("other", {"url": "c.mp4", "status": "completed"})
        await bus.publish("video_processed", {"url": "d.mp4", "status": "completed"})
        assert recorder.items == ["a.mp4", "d.mp4"]
        assert not recorder.completed
    assert recorder.completed  # topics complete when the bus closes


async def test_observers_see_the_event_inside_publish_before_handlers() -> None:
    order: list[str] = []
    async with create_async_event_bus() as bus:
        await bus.subscribe("n", lambda data: order.append(f"handler {data}"))
        bus.topic("n").subscribe(lambda data: order.append(f"observer {data}"))
        await bus.publish("n", 1)
        assert order == ["observer 1"]
        await bus.drain()
    assert order == ["observer 1", "handler 1"]


async def test_events_carry_the_topic_name_for_patterns() -> None:
    async with create_async_event_bus() as bus:
        recorder = Recorder()
        bus.events("video.*").subscribe(recorder)
        await bus.publish("video.processed", 1)
        await bus.publish("audio.processed", 2)
        await bus.publish("video.upload.done", 3)
    assert recorder.items == [BusEvent("video.processed", 1), BusEvent("video.upload.done", 3)]
    assert recorder.items[0].topic == "video.processed"


async def test_subscribers_added_after_publishing_get_later_events() -> None:
    got: list[tuple[str, int]] = []
    async with create_async_event_bus() as bus:
        await bus.publish("n", 0)  # routes "n" to nobody, and caches that
        await bus.subscribe("n", lambda data: got.append(("handler", data)))
        await bus.publish("n", 1)
        await bus.drain()
        subscription = bus.topic("*").subscribe(lambda data: got.append(("observer", data)))
        await bus.publish("n", 2)
        subscription.dispose()
        await bus.publish("n", 3)
        await bus.drain()
        assert bus.statistics().topics == 1
    assert got == [("handler", 1), ("observer", 2), ("handler", 2), ("handler", 3)]


# --- once and wait_for ------------------------------------------------------------------------


async def test_wait_for_listens_from_the_call() -> None:
    async with create_async_event_bus() as bus:
        waiter = bus.wait_for("render.done")
        await bus.publish("render.done", {"id": 1})  # before the await: not missed
        await bus.publish("render.done", {"id": 2})
        assert await waiter == {"id": 1}
        assert bus.statistics().observers == 0


async def test_wait_for_with_a_predicate_and_a_pattern() -> None:
    async with create_async_event_bus() as bus:

        async def producer() -> None:
            for i in range(5):
                await asyncio.sleep(1)
                await bus.publish(f"render.{i}", {"id": i})

        task = asyncio.create_task(producer())
        start = now()
        assert await bus.wait_for("render.*", lambda d: d["id"] == 3, timeout=10) == {"id": 3}
        assert now() - start == 4.0
        await task


async def test_wait_for_times_out_on_the_clock_counted_from_the_call() -> None:
    async with create_async_event_bus() as bus:
        start = now()
        waiter = bus.wait_for("never", timeout=3)
        await asyncio.sleep(2)
        with pytest.raises(TimeoutError, match="no 'never' event within 3 s"):
            await waiter
        assert now() - start == 3.0
        with pytest.raises(TimeoutError, match="matching the predicate"):
            await bus.wait_for("n", lambda d: False, timeout=1)
        assert bus.statistics().observers == 0


class HalfSpeedClock:
    """A clock running at half the loop's speed."""

    def now(self) -> float:
        return asyncio.get_running_loop().time() / 2

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds * 2)


async def test_wait_for_uses_the_bus_clock() -> None:
    async with create_async_event_bus(clock=HalfSpeedClock()) as bus:
        start = now()
        with pytest.raises(TimeoutError):
            await bus.wait_for("never", timeout=3)
        assert now() - start == 6.0


async def test_wait_for_raises_what_the_predicate_raises_and_closing_ends_it() -> None:
    bus = create_async_event_bus()

    def predicate(data: Any) -> bool:
        raise KeyError("bad predicate")

    waiter = bus.wait_for("n", predicate)
    await bus.publish("n", 1)
    with pytest.raises(KeyError, match="bad predicate"):
        await waiter
    pending = bus.wait_for("n")
    await bus.aclose()
    with pytest.raises(BusClosedError, match="closed before a 'n' event came"):
        await pending
    with pytest.raises(BusClosedError):
        bus.wait_for("n")


async def test_a_cancelled_wait_for_stops_listening() -> None:
    async with create_async_event_bus() as bus:
        task = asyncio.ensure_future(bus.wait_for("n", timeout=100))
        await settle()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert bus.statistics().observers == 0


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), "1", True])
async def test_wait_for_rejects_bad_timeouts(seconds: Any) -> None:
    async with create_async_event_bus() as bus:
        with pytest.raises(ConfigurationError, match="timeout must be a positive number"):
            bus.wait_for("n", timeout=seconds)
        with pytest.raises(TypeError, match="predicate must be callable"):
            bus.wait_for("n", predicate=3)  # type: ignore[arg-type]  # bad on purpose


async def test_once_is_an_observable_of_the_next_event() -> None:
    async with create_async_event_bus() as bus:
        once = bus.once("n")
        await bus.publish("n", 0)  # once is cold: nobody subscribed yet

        async def producer() -> None:
            await asyncio.sleep(1)
            for i in (1, 2, 3):
                await bus.publish("n", i)

        task = asyncio.create_task(producer())
        assert await once == 1
        task2 = asyncio.create_task(producer())
        assert await bus.once("n", lambda d: d > 1) == 2
        await asyncio.gather(task, task2)
        assert bus.statistics().observers == 0
        closing = asyncio.ensure_future(bus.once("never"))
        await settle()
    with pytest.raises(SequenceContainsNoElementsError):
        await closing


# --- drain, aclose, subscriptions ---------------------------------------------------------------


async def test_drain_waits_for_chains_of_events() -> None:
    async with create_async_event_bus() as bus:
        start = now()
        done: list[float] = []

        async def download(data: str) -> None:
            await asyncio.sleep(2)
            await bus.publish("transcode", data)

        async def transcode(data: str) -> None:
            await asyncio.sleep(3)
            done.append(now() - start)

        await bus.subscribe("download", download)
        await bus.subscribe("transcode", transcode)
        await bus.publish("download", "a.mp4")
        await bus.drain()
        assert done == [5.0]
        assert now() - start == 5.0
        await bus.drain()  # idle: returns at once
        assert now() - start == 5.0


async def test_drain_and_aclose_from_a_handler_raise() -> None:
    dead: list[DeadLetter] = []
    async with create_async_event_bus() as bus:

        async def drains(data: Any) -> None:
            await bus.drain()

        async def closes(data: Any) -> None:
            await bus.aclose()

        await bus.subscribe("drain", drains)
        await bus.subscribe("close", closes)
        await bus.subscribe(DEAD_LETTER_TOPIC, dead.append)
        await bus.publish("drain", None)
        await bus.publish("close", None)
        await bus.drain()
    assert [type(d.error) for d in dead] == [RuntimeError, RuntimeError]
    assert "drain() cannot be awaited from a handler" in str(dead[0].error)
    assert "aclose() cannot drain from a handler" in str(dead[1].error)


async def test_aclose_drains_then_refuses_everything() -> None:
    bus = create_async_event_bus()
    got: list[int] = []

    async def slow(data: int) -> None:
        await asyncio.sleep(1)
        got.append(data)

    await bus.subscribe("n", slow)
    for i in range(3):
        await bus.publish("n", i)
    start = now()
    await bus.aclose()
    assert now() - start == 3.0
    assert got == [0, 1, 2]
    assert bus.state is BusState.CLOSED
    assert bus.closed
    with pytest.raises(BusClosedError, match="cannot publish 'n': the event bus is closed"):
        await bus.publish("n", 3)
    with pytest.raises(ClosedResourceError):
        bus.publish_nowait("n", 3)
    with pytest.raises(BusClosedError, match="cannot subscribe to 'n'"):
        await bus.subscribe("n", slow)
    with pytest.raises(BusClosedError, match="cannot observe 'n'"):
        bus.topic("n")
    with pytest.raises(BusClosedError):
        bus.events()
    await bus.aclose()  # idempotent
    stats = bus.statistics()
    assert (stats.state, stats.subscribers, stats.published, stats.delivered) == (
        BusState.CLOSED,
        0,
        3,
        3,
    )
    assert await bus.unsubscribe_all() == 0
    assert await bus.unsubscribe("n", slow) == 0


async def test_while_closing_only_the_bus_handlers_may_publish() -> None:
    bus = create_async_event_bus()
    got: list[str] = []

    async def first(data: str) -> None:
        await asyncio.sleep(1)
        await bus.publish("second", data + "!")

    await bus.subscribe("first", first)
    await bus.subscribe("second", got.append)
    await bus.publish("first", "go")
    closer = asyncio.create_task(bus.aclose())
    await settle()
    assert bus.state is BusState.CLOSING
    with pytest.raises(BusClosedError, match="the event bus is closing"):
        await bus.publish("first", "late")
    with pytest.raises(BusClosedError, match="closing"):
        await bus.subscribe("first", print)
    recorder = Recorder()
    bus.topic("second").subscribe(recorder)  # observing still works while draining
    await closer
    assert got == ["go!"]
    assert recorder.items == ["go!"]
    assert recorder.completed


async def test_aclose_without_draining_counts_everything_it_drops() -> None:
    bus = create_async_event_bus(buffer_size=2)
    started: list[int] = []

    async def slow(data: int) -> None:
        started.append(data)
        await asyncio.sleep(10)

    sub = await bus.subscribe("n", slow)
    await bus.publish("n", 0)
    await settle()  # 0 is being handled
    await bus.publish("n", 1)
    await bus.publish("n", 2)
    blocked = asyncio.create_task(bus.publish("n", 3))
    waiter = bus.wait_for("never")
    await settle()
    start = now()
    await bus.aclose(drain=False)
    assert now() == start
    with pytest.raises(BusClosedError, match="closed without draining while this publish waited"):
        await blocked
    with pytest.raises(BusClosedError):
        await waiter
    stats = bus.statistics()
    assert started == [0]
    assert (stats.published, stats.delivered, stats.failed, stats.dropped, stats.backlog) == (
        4,
        0,
        0,
        4,
        0,
    )
    assert sub.statistics().dropped == 4
    assert not sub.active


async def test_leaving_async_with_on_an_error_drops_instead_of_draining() -> None:
    got: list[int] = []
    bus = create_async_event_bus()

    async def body() -> None:
        async with bus:
            await bus.subscribe("n", got.append)
            await bus.publish("n", 1)
            await bus.publish("n", 2)
            raise KeyError("stop")

    with pytest.raises(KeyError, match="stop"):
        await body()
    assert got == []
    assert bus.statistics().dropped == 2
    assert bus.state is BusState.CLOSED


async def test_aclose_without_draining_from_a_handler() -> None:
    bus = create_async_event_bus()
    other: list[int] = []

    async def closer(data: int) -> None:
        await bus.aclose(drain=False)
        other.append(-1)  # this handler call still finishes

    async def slow(data: int) -> None:
        await asyncio.sleep(5)
        other.append(data)

    await bus.subscribe("close", closer)
    await bus.subscribe("n", slow)
    await bus.publish("n", 1)
    await bus.publish("close", 0)
    await settle(20)
    assert bus.state is BusState.CLOSED
    assert other == [-1]
    await bus.aclose()
    assert bus.statistics().dropped == 1  # slow's call was cancelled


async def test_concurrent_acloses_both_return_after_the_drain() -> None:
    bus = create_async_event_bus()

    async def slow(data: int) -> None:
        await asyncio.sleep(2)

    await bus.subscribe("n", slow)
    await bus.publish("n", 1)
    start = now()
    await asyncio.gather(bus.aclose(), bus.aclose())
    assert now() - start == 2.0
    assert bus.statistics().delivered == 1


async def test_a_drop_close_cuts_short_a_draining_close() -> None:
    bus = create_async_event_bus()

    async def slow(data: int) -> None:
        await asyncio.sleep(100)

    await bus.subscribe("n", slow)
    await bus.publish("n", 1)
    await bus.publish("n", 2)
    draining = asyncio.create_task(bus.aclose())
    await asyncio.sleep(1)
    start = now()
    await bus.aclose(drain=False)
    await draining
    assert now() == start
    assert bus.statistics().dropped == 2


async def test_dispose_drops_the_queue_and_lets_the_call_in_flight_finish() -> None:
    async with create_async_event_bus() as bus:
        got: list[int] = []

        async def slow(data: int) -> None:
            await asyncio.sleep(1)
            got.append(data)

        sub = await bus.subscribe("n", slow)
        for i in range(3):
            await bus.publish("n", i)
        await settle()
        sub.dispose()
        sub.dispose()  # idempotent
        assert not sub.active
        await bus.publish("n", 3)
        await bus.drain()
        assert got == [0]
        stats = sub.statistics()
        assert (stats.delivered, stats.dropped, stats.queued, stats.active) == (1, 2, 0, False)
        assert bus.statistics().dropped == 2


async def test_subscription_aclose_and_async_with_wait_for_the_call_in_flight() -> None:
    async with create_async_event_bus() as bus:
        got: list[int] = []

        async def slow(data: int) -> None:
            await asyncio.sleep(4)
            got.append(data)

        start = now()
        async with await bus.subscribe("n", slow) as sub:
            await bus.publish("n", 1)
            await settle()
        assert now() - start == 4.0
        assert got == [1]
        assert not sub.active
        await sub.aclose()  # idempotent


async def test_dispose_releases_a_blocked_publisher() -> None:
    async with create_async_event_bus() as bus:

        async def slow(data: int) -> None:
            await asyncio.sleep(10)

        sub = await bus.subscribe("n", slow, buffer_size=1)
        await bus.publish("n", 0)
        await settle()
        await bus.publish("n", 1)
        blocked = asyncio.create_task(bus.publish("n", 2))
        await settle()
        assert not blocked.done()
        sub.dispose()
        await blocked
        assert sub.statistics().dropped == 2


async def test_a_publisher_resuming_after_a_wait_skips_subscribers_gone_meanwhile() -> None:
    async with create_async_event_bus(buffer_size=1) as bus:
        got: list[int] = []

        async def slow(data: int) -> None:
            await asyncio.sleep(1)
            got.append(data)

        await bus.subscribe("n", slow)
        gone = await bus.subscribe("n", slow, policy="drop_oldest")
        await bus.publish("n", 0)
        await settle()  # 0 is being handled by both
        await bus.publish("n", 1)
        blocked = asyncio.create_task(bus.publish("n", 2))  # waits on the first mailbox
        await settle()
        gone.dispose()  # drops its queued 1; 2 has not been offered to it yet
        await blocked  # resumes at 1 s and must skip the disposed subscriber
        await bus.drain()
        assert gone.statistics().dropped == 1
        assert bus.statistics().dropped == 1
    assert got == [0, 0, 1, 2]


async def test_unsubscribe_by_pattern_and_handler() -> None:
    async with create_async_event_bus() as bus:
        record: Record = []
        methods = Methods(record)
        await bus.subscribe("n", methods.on_data)
        await bus.subscribe("n", methods.on_data, buffer_size=5)
        third = await bus.subscribe("m", methods.on_data)
        assert await bus.unsubscribe("n", methods.on_data) == 2  # a fresh bound method matches
        assert await bus.unsubscribe("n", methods.on_data) == 0
        assert await bus.unsubscribe("n.*", print) == 0
        await bus.publish("n", 1)
        await bus.publish("m", 2)
        await bus.drain()
        assert record == [(2,)]
        with pytest.raises(TypeError, match="handler must be callable"):
            await bus.unsubscribe("n", None)  # type: ignore[arg-type]  # bad on purpose
        with pytest.raises(ConfigurationError, match="empty segment"):
            await bus.unsubscribe("n.", print)
        [remaining] = bus.subscriptions()
        assert remaining.pattern == "m"
        assert remaining is third
        assert await bus.unsubscribe_all() == 1
        assert bus.statistics().subscribers == 0
        assert bus.state is BusState.OPEN  # unsubscribe_all does not close
        await bus.publish("m", 3)
        assert record == [(2,)]


async def test_a_handler_can_unsubscribe_itself() -> None:
    async with create_async_event_bus() as bus:
        got: list[int] = []

        async def first_only(data: int) -> None:
            got.append(data)
            assert await bus.unsubscribe("n", first_only) == 1

        sub = await bus.subscribe("n", first_only)
        for i in range(3):
            await bus.publish("n", i)
        await bus.drain()
        assert got == [0]
        assert sub.statistics().dropped == 2


async def test_statistics_and_repr() -> None:
    async with create_async_event_bus(buffer_size=4) as bus:
        sub = await bus.subscribe("video.*", lambda event, data: None, policy="drop_newest")
        await bus.subscribe("audio", print, pass_event=False)
        bus.topic("video.*").subscribe(lambda data: None)
        bus.topic("other").subscribe(lambda data: None)
        await bus.publish("video.a", 1)
        await bus.publish("video.b", 2)
        stats = bus.statistics()
        assert stats == BusStatistics(
            state=BusState.OPEN,
            topics=3,
            subscribers=2,
            observers=2,
            published=2,
            delivered=0,
            failed=0,
            dropped=0,
            backlog=2,
        )
        assert sub.statistics() == SubscriberStatistics(
            pattern="video.*",
            policy=BackpressurePolicy.DROP_NEWEST,
            buffer_size=4,
            queued=2,
            delivered=0,
            failed=0,
            dropped=0,
            active=True,
        )
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.published = 0  # type: ignore[misc]  # frozen on purpose
        assert repr(bus) == "<AsyncEventBus open: 2 subscriber(s), backlog 2>"
        assert "on 'video.*' active, policy=drop_newest, buffer_size=4, queued=2" in repr(sub)
        assert sub.pattern == "video.*"
        assert repr(bus.topic("n")) == f"<topic 'n' of {bus!r}>"
        await bus.drain()
        assert bus.statistics().delivered == 2
        assert bus.policy is BackpressurePolicy.BLOCK
        assert AsyncEventBus.DEAD_LETTER_TOPIC == DEAD_LETTER_TOPIC


# --- property: exactly once, in order ---------------------------------------------------------

PROPERTY_PATTERNS = ["a", "a.*", "*", "*.b", "a.*.c", "b.*", "a.b"]
PROPERTY_TOPICS = ["a", "a.b", "a.b.c", "b", "b.c", "a.x.c"]

subscriber_specs = st.lists(
    st.tuples(
        st.sampled_from(PROPERTY_PATTERNS),
        st.integers(min_value=1, max_value=3),  # mailbox size
        st.integers(min_value=0, max_value=3),  # handler time (ms); 0: a sync handler
    ),
    min_size=1,
    max_size=5,
)
event_specs = st.lists(
    st.tuples(st.sampled_from(PROPERTY_TOPICS), st.integers(min_value=0, max_value=2)),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(subscribers=subscriber_specs, events=event_specs)
def test_every_event_reaches_every_matching_subscriber_once_in_order(
    subscribers: list[tuple[str, int, int]], events: list[tuple[str, int]]
) -> None:
    async def main() -> list[list[tuple[str, int]]]:
        received: list[list[tuple[str, int]]] = [[] for _ in subscribers]
        async with create_async_event_bus() as bus:
            for (pattern, size, work), box in zip(subscribers, received, strict=True):
                if work:

                    async def handler(
                        event: str, data: int, box: Any = box, work: int = work
                    ) -> None:
                        await asyncio.sleep(work / 1000)
                        box.append((event, data))

                    await bus.subscribe(pattern, handler, buffer_size=size)
                else:
                    await bus.subscribe(
                        pattern,
                        lambda event, data, box=box: box.append((event, data)),
                        buffer_size=size,
                        pass_event=True,
                    )
            for index, (topic, pause) in enumerate(events):
                await bus.publish(topic, index)
                if pause:
                    await asyncio.sleep(pause / 1000)
            await bus.drain()
            stats = bus.statistics()
            assert stats.dropped == stats.failed == stats.backlog == 0
            assert stats.delivered == sum(len(box) for box in received)
        return received

    received = run_virtual(main)
    for (pattern, _, _), box in zip(subscribers, received, strict=True):
        expected = [(t, i) for i, (t, _) in enumerate(events) if matches(pattern, t)]
        assert box == expected


async def test_has_subscribers_follows_subscriptions_and_wildcards() -> None:
    bus = create_async_event_bus()
    assert not bus.has_subscribers("video.processed")

    async def handler(data: object) -> None:
        return None

    subscription = await bus.subscribe("video.*", handler)
    assert bus.has_subscribers("video.processed")
    assert not bus.has_subscribers("audio.extracted")
    observed = bus.topic("audio.extracted").subscribe(lambda _: None)
    assert bus.has_subscribers("audio.extracted")
    observed.dispose()
    subscription.dispose()
    assert not bus.has_subscribers("video.processed")
    await bus.aclose()
    assert not bus.has_subscribers("video.processed")
