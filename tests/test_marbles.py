"""Marble-diagram testing on the virtual-time loop (rxflows.testing)."""

from __future__ import annotations

import asyncio
import doctest
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex
import reactivex.operators as ops
from reactivex import abc

from rxflows import LoopScheduler, loop_scheduler
from rxflows.testing import (
    ColdObservable,
    HotObservable,
    MarbleContext,
    Notification,
    Subscription,
    VirtualTimeLoop,
    cold,
    expect,
    expect_subscriptions,
    hot,
    marbles,
    parse_marbles,
    parse_subscription_marbles,
    render_notifications,
)

N = Notification.on_next
E = Notification.on_error
C = Notification.on_completed


def times(factor: int) -> Callable[[int], int]:
    def multiply(value: int) -> int:
        return value * factor

    return multiply


def _run_block(build: Callable[[MarbleContext], object]) -> None:
    with marbles() as m:
        build(m)


def failure_of(build: Callable[[MarbleContext], object]) -> str:
    """The AssertionError message of a marble test built by ``build``."""
    with pytest.raises(AssertionError) as info:
        _run_block(build)
    return str(info.value)


# --------------------------------------------------------------------------- parser


def test_parse_dashes_values_and_completion() -> None:
    assert parse_marbles("-a-b-|") == [N(1, "a"), N(3, "b"), C(5)]


def test_parse_looks_values_up_and_falls_back_to_the_character() -> None:
    assert parse_marbles("ab", {"a": 1}) == [N(0, 1), N(1, "b")]


def test_parse_spaces_take_no_time() -> None:
    assert parse_marbles("  -a - b  ") == [N(1, "a"), N(3, "b")]


def test_parse_error_uses_the_error_argument() -> None:
    boom = ValueError("boom")
    [notification] = parse_marbles("--#", error=boom)
    assert notification.frame == 2
    assert notification.kind == "E"
    assert notification.value is boom


def test_parse_default_error_is_exception_error() -> None:
    [notification] = parse_marbles("#")
    assert type(notification.value) is Exception
    assert notification.value.args == ("error",)


def test_parse_group_emits_together_and_advances_by_its_width() -> None:
    # '(ab)' is four characters: c lands at 1 + 4 + 1.
    assert parse_marbles("-(ab)-c") == [N(1, "a"), N(1, "b"), N(6, "c")]


def test_parse_group_may_end_the_stream() -> None:
    assert parse_marbles("-(a|)") == [N(1, "a"), C(1)]
    [value, error] = parse_marbles("(a#)", error=KeyError("k"))
    assert value == N(0, "a")
    assert error == E(0, KeyError("k"))


def test_parse_multi_character_value() -> None:
    # '[foo]' is five characters wide, so b lands at 1 + 5 + 1.
    assert parse_marbles("-[foo]-b", {"foo": 42}) == [N(1, 42), N(7, "b")]
    assert parse_marbles("[bar]") == [N(0, "bar")]


def test_parse_multi_character_value_inside_a_group() -> None:
    # '([ab]c)' is seven characters wide.
    assert parse_marbles("([ab]c)-d") == [N(0, "ab"), N(0, "c"), N(8, "d")]


@pytest.mark.parametrize(
    ("text", "frame", "expected"),
    [
        ("a 9ms b", 0.001, [N(0, "a"), N(10, "b")]),
        ("10ms a", 0.001, [N(10, "a")]),
        ("a 1s b", 0.001, [N(0, "a"), N(1001, "b")]),
        ("a 1m b", 0.001, [N(0, "a"), N(60_001, "b")]),
        ("a 1.5ms b", 0.0005, [N(0, "a"), N(4, "b")]),
        ("a 20ms b", 0.01, [N(0, "a"), N(3, "b")]),
        ("a 5ms", 0.001, [N(0, "a")]),
    ],
)
def test_parse_time_progression(text: str, frame: float, expected: list[Notification]) -> None:
    assert parse_marbles(text, frame=frame) == expected


def test_parse_digits_are_values_unless_a_spaced_time_progression() -> None:
    assert parse_marbles("1-2|") == [N(0, "1"), N(2, "2"), C(3)]
    # Not preceded by a space: these are four values.
    assert parse_marbles("-5ms") == [N(1, "5"), N(2, "m"), N(3, "s")]
    # Not followed by a space or the end: values too (as in RxJS).
    assert parse_marbles("a 5ms|") == [N(0, "a"), N(1, "5"), N(2, "m"), N(3, "s"), C(4)]


def test_parse_time_progression_must_be_whole_frames() -> None:
    with pytest.raises(ValueError, match=r"not a whole number of frames"):
        parse_marbles("a 1.5ms b")


def test_parse_hot_subscription_point_is_frame_zero() -> None:
    assert parse_marbles("-a-^-b-|") == [N(-2, "a"), N(2, "b"), C(4)]


@pytest.mark.parametrize(
    ("text", "problem", "column"),
    [
        ("-a-(b", "'(' is never closed by ')'", 4),
        ("(a(b))", "nested '('", 3),
        ("-a)", "')' without a matching '('", 3),
        ("-[abc", "'[' is not closed by ']'", 2),
        ("-a]", "']' without a matching '['", 3),
        ("-[]", "empty name '[]'", 2),
        ("-()", "empty group '()'", 3),
        ("^-^", "second subscription point '^'", 3),
        ("-|-a", "event after '|'", 4),
        ("-#a", "event after '#'", 3),
        ("(|a)", "event after '|'", 3),
        ("-a-!", "'!' (unsubscription point) belongs in subscription marbles only", 4),
        ("(a-b)", "'-' inside a group", 3),
        ("(a 5ms )", "time progression inside a group", 4),
        ("(^a)", "'^' inside a group", 2),
    ],
)
def test_parse_rejects_malformed_marbles(text: str, problem: str, column: int) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as info:
        parse_marbles(text)
    message = str(info.value)
    assert repr(text) in message
    assert problem in message
    assert f"(column {column})" in message


def test_parse_cold_rejects_subscription_point() -> None:
    with pytest.raises(ValueError, match=r"'\^' \(subscription point\) is not allowed"):
        parse_marbles("-^-a", allow_subscription_point=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("^---!", Subscription(0, 4)),
        ("--^--", Subscription(2, None)),
        ("^ 10ms !", Subscription(0, 11)),
        ("(^!)", Subscription(0, 0)),
        ("-(^!)", Subscription(1, 1)),
        ("  ^-!", Subscription(0, 2)),
    ],
)
def test_parse_subscription_marbles(text: str, expected: Subscription) -> None:
    assert parse_subscription_marbles(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("!--^", "'!' before '^'"),
        ("^-^", "second '^'"),
        ("^-!-!", "second '!'"),
        ("---", "no subscription point '^'"),
        ("^-a", "unexpected 'a'"),
        ("^(-!)", "'-' inside a group"),
        ("(^!", "'(' is never closed"),
        ("^ 1.5ms !", "not a whole number of frames"),
    ],
)
def test_parse_subscription_marbles_rejects_malformed(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as info:
        parse_subscription_marbles(text)
    assert repr(text) in str(info.value)


# --------------------------------------------------------------------------- notifications


def test_notification_error_matching() -> None:
    assert E(3, ValueError) == E(3, ValueError("x"))
    assert E(3, ValueError("x")) == E(3, ValueError)
    assert E(3, ValueError("x")) == E(3, ValueError("x"))
    assert E(3, ValueError("x")) != E(3, ValueError("y"))
    assert E(3, ValueError("x")) != E(3, KeyError("x"))
    assert E(3, LookupError) == E(3, KeyError("k"))  # subclasses match a class
    assert E(3, ValueError) != E(4, ValueError)
    assert hash(E(3, ValueError)) == hash(E(3, ValueError("x")))


def test_notification_value_matching() -> None:
    assert N(1, [1, 2]) == N(1, [1, 2])
    assert N(1, 1) != N(1, 2)
    assert N(1, 1) != C(1)
    assert C(2) == Notification(2, "C")


# --------------------------------------------------------------------------- cold and hot


def test_cold_and_subscriptions_example() -> None:
    with marbles() as m:
        src = m.cold("-a-b-|", {"a": 1, "b": 2})
        m.expect(src.pipe(ops.map(times(10)))).to_be("-x-y-|", {"x": 10, "y": 20})
        m.expect_subscriptions(src.subscriptions).to_be("^----!")
    assert isinstance(src, ColdObservable)
    assert src.subscriptions == [Subscription(0, 5)]


def test_cold_replays_relative_to_each_subscription() -> None:
    with marbles() as m:
        src = m.cold("-a|")
        m.expect(src).to_be("-a|")
        m.expect(src, "---^").to_be("----a|")
        m.expect_subscriptions(src.subscriptions).to_be(["^-!", "---^-!"])


def test_cold_frame_zero_events_arrive_after_subscribe_returns() -> None:
    seen: list[str] = []
    with marbles() as m:
        src = m.cold("(a|)")
        m.expect(src).to_be("(a|)")
        src.subscribe(seen.append)
        # Scheduled on the loop, not delivered synchronously inside subscribe().
        assert seen == []
    assert seen == ["a"]


def test_cold_never_completing_stays_subscribed() -> None:
    with marbles() as m:
        src = m.cold("-a--")
        m.expect(src).to_be("-a")
        m.expect_subscriptions(src.subscriptions).to_be("^")


def test_cold_error_unsubscribes_at_the_error_frame() -> None:
    with marbles() as m:
        src = m.cold("-a-#", error=ValueError("boom"))
        m.expect(src).to_be("-a-#", error=ValueError)
        m.expect(src).to_be("-a-#", error=ValueError("boom"))
        m.expect_subscriptions(src.subscriptions).to_be(["^--!", "^--!"])


def test_cold_error_class_is_instantiated() -> None:
    with marbles() as m:
        recorded = m.run(m.cold("-#", error=KeyError))
    [error] = recorded
    assert error.kind == "E"
    assert type(error.value) is KeyError


def test_error_mismatch_is_reported() -> None:
    with pytest.raises(AssertionError, match="marbles differ"), marbles() as m:
        m.expect(m.cold("-#", error=ValueError("boom"))).to_be("-#", error=ValueError("other"))
    with pytest.raises(AssertionError, match="errors: expected TypeError"), marbles() as m:
        m.expect(m.cold("-#", error=ValueError("boom"))).to_be("-#", error=TypeError)


def test_hot_frame_zero_value_is_seen() -> None:
    # RxPY's marbles_testing loses the 'a' here; a subscription at frame 0 must see it.
    with marbles() as m:
        src = m.hot("a-b-|")
        m.expect(src).to_be("a-b-|")
        m.expect_subscriptions(src.subscriptions).to_be("^---!")
    assert isinstance(src, HotObservable)


def test_hot_subscription_point() -> None:
    with marbles() as m:
        m.expect(m.hot("-a-^-b-|")).to_be("--b-|")


def test_hot_late_subscriber_misses_earlier_events() -> None:
    with marbles() as m:
        src = m.hot("-a-b-c|")
        m.expect(src, "--^").to_be("---b-c|")
        m.expect(src, "^--!").to_be("-a")
        # Listed in the order the subscriptions happened.
        m.expect_subscriptions(src.subscriptions).to_be(["^--!", "--^---!"])


def test_hot_events_before_frame_zero_reach_earlier_subscribers() -> None:
    seen: list[tuple[int, str]] = []
    with marbles() as m:
        src = m.hot("a-^-b|")
        # Subscribed in the block, before the run: it sees what happens before frame 0.
        src.subscribe(lambda v: seen.append((m.frame_now(), v)))
        m.expect(src).to_be("--b|")
    assert seen == [(-2, "a"), (2, "b")]
    assert src.subscriptions[0].subscribed == -2


def test_hot_with_lead_after_the_clock_started_is_refused() -> None:
    with marbles() as m:
        m.cold("-a").subscribe()
        with pytest.raises(ValueError, match="frame 0 is already fixed"):
            m.hot("a-^-b")


def test_hot_is_shared_by_subscribers() -> None:
    with marbles() as m:
        src = m.hot("--a-----b-----|")
        m.expect(reactivex.merge(src, src)).to_be("--(aa)--(bb)--|")


def test_unsubscription_marker_disposes_at_that_frame() -> None:
    with marbles() as m:
        src = m.cold("-a-b-c|")
        # At frame 3 the unsubscription runs before b would be delivered.
        m.expect(src, "^--!").to_be("-a")
        m.expect_subscriptions(src.subscriptions).to_be("^--!")


def test_subscribe_and_unsubscribe_in_one_frame() -> None:
    with marbles() as m:
        src = m.cold("a|")
        m.expect(src, "-(^!)").to_be("")
        m.expect_subscriptions(src.subscriptions).to_be("-(^!)")


def test_groups_in_expectations() -> None:
    with marbles() as m:
        # '(ab)' is four frames wide, so the '|' after one more '-' is at frame 6.
        m.expect(reactivex.merge(m.cold("-a|"), m.cold("-b----|"))).to_be("-(ab)-|")
        m.expect(reactivex.merge(m.cold("-(a|)"), m.cold("-(b|)"))).to_be("-(ab|)")
        # A completion inside the group's width can only be stated as notifications.
        m.expect(reactivex.merge(m.cold("-a|"), m.cold("-(b|)"))).to_equal(
            [N(1, "a"), N(1, "b"), C(2)]
        )


def test_time_progression_in_cold_and_expected() -> None:
    with marbles() as m:
        src = m.cold("a 9ms b|")
        m.expect(src).to_be("a---------b|")
        m.expect(src).to_be("a 9ms b|")
        m.expect_subscriptions(src.subscriptions).to_be(["^ 10ms !", "^----------!"])


def test_multi_character_values_end_to_end() -> None:
    with marbles() as m:
        src = m.cold("-[hello]-|", {"hello": 42})
        # '[hello]' is seven frames wide: the '|' is at 1 + 7 + 1 = 9; '[x]' is three.
        m.expect(src.pipe(ops.map(times(2)))).to_be("-[x]-----|", {"x": 84})


def test_expect_subscriptions_for_several_subscribers() -> None:
    with marbles() as m:
        src = m.cold("--a--|")
        m.expect(src).to_be("--a--|")
        m.expect(src, "-^-!").to_be("")
        m.expect(src, "---^").to_be("-----a--|")
        m.expect_subscriptions(src.subscriptions).to_be(["^----!", "-^-!", "---^----!"])


def test_expect_subscriptions_order_matters() -> None:
    def build(m: MarbleContext) -> None:
        src = m.cold("--a--|")
        m.expect(src).to_be("--a--|")
        m.expect(src, "-^-!").to_be("")
        m.expect_subscriptions(src.subscriptions).to_be(["-^-!", "^----!"])

    assert "subscriptions differ" in failure_of(build)


def test_to_equal() -> None:
    with marbles() as m:
        m.expect(m.cold("-a-#", {"a": 1}, error=KeyError("k"))).to_equal([N(1, 1), E(3, KeyError)])


def test_module_level_functions_inside_a_block() -> None:
    with marbles():
        src = cold("-a-|")
        events = hot("^-b-|")
        expect(reactivex.merge(src, events)).to_be("-ab-|")
        expect_subscriptions(src.subscriptions).to_be("^--!")
        expect_subscriptions(events.subscriptions).to_be("^---!")


@pytest.mark.parametrize("name", ["cold", "hot", "expect", "expect_subscriptions"])
def test_module_level_functions_outside_a_block(name: str) -> None:
    calls: dict[str, Any] = {
        "cold": lambda: cold("-a|"),
        "hot": lambda: hot("-a|"),
        "expect": lambda: expect(reactivex.empty()),
        "expect_subscriptions": lambda: expect_subscriptions([]),
    }
    with pytest.raises(RuntimeError, match=r"inside a `with marbles\(\):` block"):
        calls[name]()


def test_run_returns_the_recorded_notifications() -> None:
    with marbles() as m:
        recorded = m.run(m.cold("-a-b|", {"a": 1}))
        assert recorded == [N(1, 1), N(3, "b"), C(4)]
        with pytest.raises(RuntimeError, match="already been flushed"):
            m.cold("-a|")


def test_run_with_subscription_marbles_also_checks_expectations() -> None:
    with marbles() as m:
        src = m.cold("-a-b-c|")
        m.expect(src).to_be("-a-b-c|")
        assert m.run(src, "--^--!") == [N(3, "a")]

    def build(m: MarbleContext) -> None:
        src = m.cold("-a|")
        m.expect(src).to_be("--a|")
        m.run(src)

    assert "marbles differ" in failure_of(build)


def test_explicit_flush_then_exit() -> None:
    with marbles() as m:
        src = m.cold("-a|")
        m.expect(src).to_be("-a|")
        m.flush()
        assert m.loop.is_closed()
        assert src.subscriptions == [Subscription(0, 2)]
        m.flush()  # a second flush does nothing


def test_expectation_without_to_be_fails() -> None:
    with pytest.raises(AssertionError, match=r"never completed with \.to_be"), marbles() as m:
        m.expect(m.cold("-a|"))


# --------------------------------------------------------------------------- failure messages


def test_failure_message_shows_both_marble_lines_aligned() -> None:
    def build(m: MarbleContext) -> None:
        src = m.cold("-a-b-|", {"a": 1, "b": 2})
        m.expect(src.pipe(ops.map(times(10)))).to_be("-x--y|", {"x": 10, "y": 20})

    message = failure_of(build)
    lines = message.splitlines()
    assert lines[0] == "marbles differ"
    assert lines[1] == "expected: -x--y|"
    assert lines[2] == "actual:   -x-y-|"
    assert "values: x=10, y=20" in message
    assert "(3, 'N', 20)" in message  # the exact actual notification
    assert "(4, 'N', 20)" in message  # the exact expected notification


def test_failure_message_renders_unknown_values_and_groups() -> None:
    with pytest.raises(AssertionError) as info, marbles() as m:
        m.expect(reactivex.merge(m.cold("-(a|)", {"a": 7}), m.cold("-(b|)", {"b": 8}))).to_be(
            "-x|", {"x": 7}
        )
    lines = str(info.value).splitlines()
    assert lines[1] == "expected: -x|"
    assert lines[2] == "actual:   -(x[8]|)"


def test_failure_message_for_to_equal() -> None:
    with pytest.raises(AssertionError) as info, marbles() as m:
        m.expect(m.cold("-a|")).to_equal([N(1, "a")])
    lines = str(info.value).splitlines()
    assert lines[1] == "expected: -a"
    assert lines[2] == "actual:   -a|"


def test_failure_message_for_subscriptions() -> None:
    def build(m: MarbleContext) -> None:
        src = m.cold("--a--|")
        m.expect(src).to_be("--a--|")
        m.expect_subscriptions(src.subscriptions).to_be("^--!")

    lines = failure_of(build).splitlines()
    assert lines[0] == "subscriptions differ"
    assert lines[1] == "expected: ^--!"
    assert lines[2] == "actual:   ^----!"


def test_all_failures_are_reported_together() -> None:
    def build(m: MarbleContext) -> None:
        m.expect(m.cold("-a|")).to_be("-b|")
        m.expect(m.cold("-c|")).to_be("-d|")

    assert failure_of(build).count("marbles differ") == 2


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    "text",
    ["-a-b-|", "(ab)-c-#", "-[foo]-b", "a 30ms b|", "--(a|)", "", "a"],
)
def test_render_round_trips(text: str) -> None:
    notifications = parse_marbles(text)
    rendered = render_notifications(notifications)
    assert parse_marbles(rendered) == notifications


def test_render_uses_value_keys_and_time_progressions() -> None:
    notifications = [N(0, 1), N(1, "word"), N(7, (1, 2)), N(40, 1), C(40)]
    rendered = render_notifications(notifications, {"a": 1})
    assert rendered == "a[word][(1, 2)] 25ms (a|)"
    # It parses back to the same frames ('[(1, 2)]' comes back as a string).
    frames = [(n.frame, n.kind) for n in parse_marbles(rendered, {"a": 1})]
    assert frames == [(n.frame, n.kind) for n in notifications]


def test_render_pads_with_spaces_to_align_columns() -> None:
    # '[99]' is wider than the two frames before 'b': the expected line is padded
    # with spaces (no time) so that both b's share a column.
    with pytest.raises(AssertionError) as info, marbles() as m:
        m.expect(m.cold("-x-b", {"x": 99})).to_be("-a-b", {"a": 1})
    lines = str(info.value).splitlines()
    assert lines[1] == "expected: -a-  b"
    assert lines[2] == "actual:   -[99]b"
    assert parse_marbles("-a-  b") == parse_marbles("-a-b")
    assert "(3, 'N', 'b')" in str(info.value)


# --------------------------------------------------------------------------- virtual time


def test_delay_on_the_context_scheduler() -> None:
    with marbles() as m:
        src = m.cold("-a-b|")
        m.expect(src.pipe(ops.delay(0.002, scheduler=m.scheduler))).to_be("---a-b|")
        # Without scheduler=, delay uses the scheduler expect() subscribes with.
        m.expect(src.pipe(ops.delay(0.002))).to_be("---a-b|")


def test_debounce_on_the_context_scheduler() -> None:
    with marbles() as m:
        src = m.cold("-a--bc----d|")
        m.expect(src.pipe(ops.debounce(0.002, scheduler=m.scheduler))).to_be("---a---c---(d|)")


def test_timers_due_at_the_same_frame_run_in_scheduling_order() -> None:
    # In floats 0.001 + 0.009 < 0.010: without exact ties the delayed 'a' (scheduled
    # at frame 1) would overtake the hot 'b' (scheduled at the flush).
    with marbles() as m:
        delayed = m.cold("-a").pipe(ops.delay(0.009))
        m.expect(reactivex.merge(m.hot("----------b"), delayed)).to_be("----------(ba)")


def test_interval_stops_at_max_frames() -> None:
    with marbles(max_frames=10) as m:
        ticks = reactivex.interval(0.002)
        m.expect(ticks).to_be("--a-b-c-d-e", {"a": 0, "b": 1, "c": 2, "d": 3, "e": 4})


def test_frame_size_is_configurable() -> None:
    with marbles(frame=0.01) as m:
        src = m.cold("-a|")
        m.expect(src.pipe(ops.delay(0.02))).to_be("---a|")
        m.expect(m.cold("a 20ms b")).to_be("a--b")


async def _slow_double(value: int) -> int:
    await asyncio.sleep(0.003)
    return value * 2


def double_later(value: int) -> reactivex.Observable[int]:
    return reactivex.from_future(asyncio.ensure_future(_slow_double(value)))


def test_coroutines_share_the_virtual_clock() -> None:
    with marbles() as m:
        src = m.cold("-a-b|", {"a": 1, "b": 2})
        # a at 1 -> 2 at 4; b at 3 -> 4 at 6; the merge completes with the last inner.
        m.expect(src.pipe(ops.flat_map(double_later))).to_be("----x-(y|)", {"x": 2, "y": 4})


def test_loop_is_running_and_current_inside_callbacks() -> None:
    seen: dict[str, Any] = {}

    def probe(_: abc.SchedulerBase | None) -> reactivex.Observable[int]:
        loop = asyncio.get_running_loop()
        seen["loop"] = loop
        seen["scheduler"] = loop_scheduler()
        seen["time"] = loop.time()
        return reactivex.of(1)

    with marbles() as m:
        m.expect(reactivex.defer(probe), "--^").to_be("--(1|)", {"1": 1})
        assert asyncio.get_event_loop() is m.loop
    assert seen["loop"] is m.loop
    assert isinstance(seen["scheduler"], LoopScheduler)
    assert seen["scheduler"].loop is m.scheduler.loop
    assert seen["time"] == pytest.approx(m.t0 + 0.002)


def test_block_leaves_no_pending_task_and_a_closed_loop() -> None:
    tasks: list[asyncio.Task[int]] = []
    stray: list[asyncio.Task[None]] = []

    def start(x: int) -> reactivex.Observable[int]:
        task = asyncio.ensure_future(_slow_double(x))
        tasks.append(task)
        stray.append(asyncio.get_running_loop().create_task(asyncio.sleep(3600)))
        return reactivex.from_future(task)

    with marbles(max_frames=2) as m:
        src = m.cold("-a|", {"a": 1})
        # The coroutine needs until frame 4; the run stops at frame 2.
        m.expect(src.pipe(ops.flat_map(start))).to_be("")
    loop = m.loop
    assert loop.is_closed()
    assert isinstance(loop, VirtualTimeLoop)
    assert [t.cancelled() for t in tasks] == [True]
    assert [t.cancelled() for t in stray] == [True]
    assert not asyncio.all_tasks(loop)


def test_previous_event_loop_is_restored() -> None:
    other = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(other)
        with marbles() as m:
            assert asyncio.get_event_loop() is m.loop
            m.expect(m.cold("a|")).to_be("a|")
        assert asyncio.get_event_loop() is other
    finally:
        asyncio.set_event_loop(None)
        other.close()


def test_exception_in_the_block_skips_the_flush_and_cleans_up() -> None:
    contexts: list[MarbleContext] = []

    def build(m: MarbleContext) -> None:
        contexts.append(m)
        m.expect(m.cold("-a|")).to_be("-b|")  # would fail, but is never checked
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        _run_block(build)
    assert contexts[0].loop.is_closed()


def test_exception_escaping_into_the_loop_is_raised() -> None:
    def explode(_: object) -> None:
        raise ZeroDivisionError("in a callback")

    with pytest.raises(ZeroDivisionError, match="in a callback"), marbles() as m:
        m.cold("-a|").subscribe(explode, lambda e: None)
    assert m.loop.is_closed()


async def test_marbles_refuses_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="cannot be used while an event loop is running"):
        _run_block(lambda m: None)


def test_invalid_context_arguments() -> None:
    with pytest.raises(ValueError, match="frame must be"):
        marbles(frame=0)
    with pytest.raises(ValueError, match="max_frames must be"):
        marbles(max_frames=-1)


def test_cold_created_during_the_run() -> None:
    # Inner observables created by the pipeline itself, as with RxJS' cold() in mergeMap.
    with marbles() as m:
        src = m.cold("-a--b|")
        inner_subs: list[list[Subscription]] = []

        def inner(_: str) -> reactivex.Observable[str]:
            observable = m.cold("x-y|")
            inner_subs.append(observable.subscriptions)
            return observable

        m.expect(src.pipe(ops.flat_map(inner))).to_be("-x-yx-y|")
    assert inner_subs == [[Subscription(1, 4)], [Subscription(4, 7)]]


@pytest.fixture
def no_marble_context() -> Iterator[None]:
    yield
    with pytest.raises(RuntimeError):
        cold("-a|")


def test_context_is_reset_after_the_block(no_marble_context: None) -> None:
    with marbles():
        expect(cold("a|")).to_be("a|")


@pytest.mark.parametrize(
    ("frame", "max_frames"), [(0.001, 3), (0.001, 10), (0.001, 100), (0.3, 3), (0.0003, 17)]
)
def test_events_at_max_frames_still_run(frame: float, max_frames: int) -> None:
    # Frame max_frames itself is part of the run (in floats, 3 * 0.3 < 0.9).
    with marbles(frame=frame, max_frames=max_frames) as m:
        recorded = m.run(reactivex.interval(frame))
    assert [n.frame for n in recorded] == list(range(1, max_frames + 1))


def test_docstring_examples() -> None:
    from rxflows.testing import _marbles

    result = doctest.testmod(_marbles, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
