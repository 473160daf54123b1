"""Marble-diagram testing on a virtual-time asyncio loop.

The engine runs everything on one :class:`~rxflows.testing.VirtualTimeLoop`: the
events of the marble diagrams, RxPY's time operators (through a
:class:`~rxflows.LoopScheduler` on that loop) and coroutines
(``await asyncio.sleep(...)``). One frame is ``frame`` seconds of loop time
(1 ms by default, as in RxJS run mode), so ``await asyncio.sleep(0.003)`` lasts
exactly three frames.

Example:
    >>> import reactivex.operators as ops
    >>> with marbles() as m:
    ...     src = m.cold("-a-b-|", {"a": 1, "b": 2})
    ...     m.expect(src.pipe(ops.map(lambda x: x * 10))).to_be("-x-y-|", {"x": 10, "y": 20})
    ...     m.expect_subscriptions(src.subscriptions).to_be("^----!")
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, NoReturn, TypeVarTuple

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject

from .._scheduling import LoopScheduler, loop_scheduler
from ._loop import VirtualTimeLoop

__all__ = [
    "ColdObservable",
    "Expectation",
    "HotObservable",
    "MarbleContext",
    "Notification",
    "Subscription",
    "SubscriptionExpectation",
    "cold",
    "expect",
    "expect_subscriptions",
    "hot",
    "marbles",
    "parse_marbles",
    "parse_subscription_marbles",
    "render_notifications",
]

_Ts = TypeVarTuple("_Ts")

Kind = Literal["N", "E", "C"]
ErrorSpec = BaseException | type[BaseException]

DEFAULT_FRAME = 0.001
DEFAULT_MAX_FRAMES = 10_000

# Gaps longer than this many frames are rendered as a time progression ("  25ms ").
_LONG_GAP = 20
# Loop times are rounded to this many decimal places (1 ns), as VirtualTimeLoop does.
_TIME_DIGITS = 9
_DIGITS = "0123456789"
_TIME_PROGRESSION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m)(?= |\Z)")
_UNIT_SECONDS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60)}
# Characters with a meaning in marble strings: never rendered as a bare value.
_SYNTAX = frozenset("-()[]|#^! ")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, eq=False)
class Notification:
    """One recorded notification: at ``frame``, of ``kind`` "N" (next), "E" (error)
    or "C" (completed), carrying ``value`` (the value, the error, or None).

    Equality is exact for frame and kind. Values compare with ``==``; errors match
    when one side is an exception class and the other an instance of it, or when
    both are exceptions of the same type with equal ``args``.

    Example:
        >>> Notification.on_error(3, ValueError) == Notification(3, "E", ValueError("x"))
        True
    """

    frame: int
    kind: Kind
    value: Any = None

    @classmethod
    def on_next(cls, frame: int, value: Any) -> Notification:
        """A value notification at ``frame``."""
        return cls(frame, "N", value)

    @classmethod
    def on_error(cls, frame: int, error: ErrorSpec = Exception) -> Notification:
        """An error notification at ``frame`` (an exception instance or class)."""
        return cls(frame, "E", error)

    @classmethod
    def on_completed(cls, frame: int) -> Notification:
        """A completion at ``frame``."""
        return cls(frame, "C")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Notification):
            return NotImplemented
        if self.frame != other.frame or self.kind != other.kind:
            return False
        if self.kind == "E":
            return _errors_match(self.value, other.value)
        if self.kind == "C":
            return True
        return _values_equal(self.value, other.value)

    def __hash__(self) -> int:
        return hash((self.frame, self.kind))


@dataclass(frozen=True)
class Subscription:
    """When a subscription started and ended, in frames (``None``: never ended)."""

    subscribed: int
    unsubscribed: int | None = None


def _values_equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays whose == is elementwise and has no truth value
        return a is b


def _errors_match(a: Any, b: Any) -> bool:
    a_class = isinstance(a, type) and issubclass(a, BaseException)
    b_class = isinstance(b, type) and issubclass(b, BaseException)
    if a_class and b_class:
        return a is b
    if a_class:
        return isinstance(b, a)
    if b_class:
        return isinstance(a, b)
    if isinstance(a, BaseException) and isinstance(b, BaseException):
        return type(a) is type(b) and _values_equal(a.args, b.args)
    return _values_equal(a, b)


# --------------------------------------------------------------------------- parsing


class _Scanner:
    """Position bookkeeping and error reporting shared by both parsers."""

    def __init__(self, marbles: str, what: str, frame: float) -> None:
        if not isinstance(marbles, str):
            raise TypeError(f"{what} marbles must be a str, got {type(marbles).__name__}")
        self.marbles = marbles
        self.what = what
        self.frame = frame

    def fail(self, index: int, problem: str) -> NoReturn:
        raise ValueError(
            f"invalid {self.what} marbles {self.marbles!r}: {problem} (column {index + 1})\n"
            f"    {self.marbles}\n"
            f"    {' ' * index}^"
        )

    def time_progression(self, index: int) -> tuple[int, int] | None:
        """``(frames, end index)`` when a time progression starts at ``index``."""
        text = self.marbles
        if text[index] not in _DIGITS or (index > 0 and text[index - 1] != " "):
            return None
        match = _TIME_PROGRESSION.match(text, index)
        if match is None:
            return None
        seconds = Decimal(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        frames = seconds / Decimal(repr(self.frame))
        if frames != frames.to_integral_value():
            self.fail(
                index,
                f"time progression {match.group(0)!r} is not a whole number of frames "
                f"(one frame is {self.frame!r} s)",
            )
        return int(frames), match.end()


def _error_value(error: ErrorSpec | None) -> ErrorSpec:
    if error is None:
        return Exception("error")
    if isinstance(error, BaseException) or (
        isinstance(error, type) and issubclass(error, BaseException)
    ):
        return error
    raise TypeError(f"error must be an exception or an exception class, got {error!r}")


def _check_frame(frame: float) -> float:
    if isinstance(frame, bool) or not isinstance(frame, int | float) or not frame >= 1e-6:
        raise ValueError(f"frame must be a number of seconds >= 1e-06, got {frame!r}")
    return float(frame)


def parse_marbles(
    marbles: str,
    values: Mapping[str, Any] | None = None,
    error: ErrorSpec | None = None,
    *,
    allow_subscription_point: bool = True,
    frame: float = DEFAULT_FRAME,
) -> list[Notification]:
    """Parse an observable marble diagram into notifications, in frames.

    ``values`` maps event characters (and ``[names]``) to values; ``error`` is the
    value of ``#`` (default ``Exception("error")``). A ``^`` marks frame 0, so
    events before it get negative frames; with ``allow_subscription_point=False``
    (cold observables) a ``^`` is an error. ``frame`` (seconds) converts time
    progressions such as ``10ms`` into frames. Raises ``ValueError`` on malformed
    input, naming the column.

    Example:
        >>> parse_marbles("-a 3ms (b|)", {"a": 1})
        [Notification(frame=1, kind='N', value=1), Notification(frame=5, kind='N', value='b'), \
Notification(frame=5, kind='C', value=None)]
    """
    frame = _check_frame(frame)
    scan = _Scanner(marbles, "observable", frame)
    error_value = _error_value(error)
    events: list[Notification] = []
    now = 0
    group_col: int | None = None  # column of the open '('
    group_frame = 0
    group_width = 0
    group_events = 0
    origin: int | None = None  # frame of '^'
    origin_col = 0
    terminal_col: int | None = None

    def emit(kind: Kind, value: Any, col: int) -> None:
        nonlocal group_events
        if terminal_col is not None:
            scan.fail(
                col,
                f"event after {marbles[terminal_col]!r} "
                f"(the stream ended at column {terminal_col + 1})",
            )
        events.append(Notification(group_frame if group_col is not None else now, kind, value))
        group_events += 1

    def advance(width: int) -> None:
        nonlocal now, group_width
        if group_col is not None:
            group_width += width
        else:
            now += width

    i = 0
    while i < len(marbles):
        c = marbles[i]
        if c == " ":
            pass
        elif c == "-":
            if group_col is not None:
                scan.fail(i, "'-' inside a group")
            now += 1
        elif c == "(":
            if group_col is not None:
                scan.fail(i, f"nested '(' (a group is already open at column {group_col + 1})")
            group_col, group_frame, group_width, group_events = i, now, 1, 0
        elif c == ")":
            if group_col is None:
                scan.fail(i, "')' without a matching '('")
            if group_events == 0:
                scan.fail(i, "empty group '()'")
            now = group_frame + group_width + 1
            group_col = None
        elif c == "[":
            end = marbles.find("]", i + 1)
            if end == -1:
                scan.fail(i, "'[' is not closed by ']'")
            name = marbles[i + 1 : end]
            if not name:
                scan.fail(i, "empty name '[]'")
            if "[" in name:
                scan.fail(i + 1 + name.index("["), "'[' inside '[...]'")
            emit("N", values[name] if values is not None and name in values else name, i)
            advance(end - i + 1)
            i = end
        elif c == "]":
            scan.fail(i, "']' without a matching '['")
        elif c == "|":
            emit("C", None, i)
            terminal_col = i
            advance(1)
        elif c == "#":
            emit("E", error_value, i)
            terminal_col = i
            advance(1)
        elif c == "^":
            if not allow_subscription_point:
                scan.fail(i, "'^' (subscription point) is not allowed here (cold observable)")
            if group_col is not None:
                scan.fail(i, "'^' inside a group")
            if origin is not None:
                scan.fail(
                    i, f"second subscription point '^' (the first is at column {origin_col + 1})"
                )
            origin, origin_col = now, i
            now += 1
        elif c == "!":
            scan.fail(i, "'!' (unsubscription point) belongs in subscription marbles only")
        else:
            progression = scan.time_progression(i)
            if progression is not None:
                if group_col is not None:
                    scan.fail(i, "time progression inside a group")
                now += progression[0]
                i = progression[1]
                continue
            emit("N", values[c] if values is not None and c in values else c, i)
            advance(1)
        i += 1
    if group_col is not None:
        scan.fail(group_col, "'(' is never closed by ')'")
    if origin is not None and origin != 0:
        events = [Notification(n.frame - origin, n.kind, n.value) for n in events]
    return events


def parse_subscription_marbles(marbles: str, *, frame: float = DEFAULT_FRAME) -> Subscription:
    """Parse a subscription marble diagram: ``^`` subscribes, ``!`` unsubscribes.

    ``-`` is one frame, spaces take no time, time progressions (``10ms``) work as
    in observable marbles, and ``(^!)`` subscribes and unsubscribes in one frame.

    Example:
        >>> parse_subscription_marbles("--^ 5ms !")
        Subscription(subscribed=2, unsubscribed=8)
    """
    frame = _check_frame(frame)
    scan = _Scanner(marbles, "subscription", frame)
    now = 0
    group_col: int | None = None
    group_frame = 0
    group_width = 0
    group_events = 0
    subscribed: int | None = None
    subscribed_col = 0
    unsubscribed: int | None = None
    unsubscribed_col = 0
    i = 0
    while i < len(marbles):
        c = marbles[i]
        at = group_frame if group_col is not None else now
        if c == " ":
            pass
        elif c == "-":
            if group_col is not None:
                scan.fail(i, "'-' inside a group")
            now += 1
        elif c == "(":
            if group_col is not None:
                scan.fail(i, f"nested '(' (a group is already open at column {group_col + 1})")
            group_col, group_frame, group_width, group_events = i, now, 1, 0
        elif c == ")":
            if group_col is None:
                scan.fail(i, "')' without a matching '('")
            if group_events == 0:
                scan.fail(i, "empty group '()'")
            now = group_frame + group_width + 1
            group_col = None
        elif c == "^":
            if subscribed is not None:
                scan.fail(i, f"second '^' (the first is at column {subscribed_col + 1})")
            subscribed, subscribed_col = at, i
        elif c == "!":
            if subscribed is None:
                scan.fail(i, "'!' before '^'")
            if unsubscribed is not None:
                scan.fail(i, f"second '!' (the first is at column {unsubscribed_col + 1})")
            unsubscribed, unsubscribed_col = at, i
        else:
            progression = scan.time_progression(i)
            if progression is None:
                scan.fail(
                    i,
                    f"unexpected {c!r}: subscription marbles hold only '^', '!', '-', "
                    "spaces, groups '( )' and time progressions like '10ms'",
                )
            if group_col is not None:
                scan.fail(i, "time progression inside a group")
            now += progression[0]
            i = progression[1]
            continue
        if c in "^!":
            if group_col is not None:
                group_width += 1
                group_events += 1
            else:
                now += 1
        i += 1
    if group_col is not None:
        scan.fail(group_col, "'(' is never closed by ')'")
    if subscribed is None:
        scan.fail(len(marbles), "no subscription point '^'")
    return Subscription(subscribed, unsubscribed)


# --------------------------------------------------------------------------- rendering


def _format_duration(frames: int, frame: float) -> str:
    text = format(Decimal(frames) * Decimal(repr(frame)) * 1000, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f" {text}ms "


def _layout(rows: Sequence[Mapping[int, str]], frame: float) -> tuple[list[str], int]:
    """Render rows of ``{frame: token}`` so that events at equal frames share a column.

    Each row stays a valid marble string: dashes carry the time, the padding that
    aligns columns is made of spaces (which take no time), and long quiet
    stretches become time progressions. A token wider than the time to the row's
    next event cannot be drawn to scale; the next event then follows it directly.
    Returns the lines and the frame of their first column.
    """
    frames = sorted({f for row in rows for f in row})
    origin = min([0, *frames])
    lines = ["" for _ in rows]
    cursors = [origin for _ in rows]  # the frame at the end of each line
    for f in frames:
        present = [r for r, row in enumerate(rows) if f in row]
        for r in present:
            gap = f - cursors[r]
            if gap > _LONG_GAP:
                lines[r] += _format_duration(gap, frame)
            elif gap > 0:
                lines[r] += "-" * gap
            cursors[r] = max(cursors[r], f)
        column = max(len(lines[r]) for r in present)
        for r in present:
            token = rows[r][f]
            lines[r] = lines[r].ljust(column) + token
            cursors[r] += len(token)
    return lines, origin


def _key_token(key: str) -> str:
    if len(key) == 1 and key not in _SYNTAX:
        return key
    return f"[{key}]"


def _value_token(value: Any, values: Mapping[str, Any] | None) -> str:
    if values:
        for key, candidate in values.items():
            if _values_equal(candidate, value) and type(candidate) is type(value):
                return _key_token(key)
    if isinstance(value, str) and not (values and value in values):
        if len(value) == 1 and value not in _SYNTAX:
            return value
        if value and "]" not in value and "[" not in value:
            return f"[{value}]"
    return f"[{value!r}]"


def _frame_tokens(
    notifications: Sequence[Notification], values: Mapping[str, Any] | None
) -> dict[int, str]:
    parts: dict[int, list[str]] = {}
    for n in notifications:
        part = {"C": "|", "E": "#"}.get(n.kind) or _value_token(n.value, values)
        parts.setdefault(n.frame, []).append(part)
    return {f: p[0] if len(p) == 1 else "(" + "".join(p) + ")" for f, p in parts.items()}


def render_notifications(
    notifications: Sequence[Notification],
    values: Mapping[str, Any] | None = None,
    *,
    frame: float = DEFAULT_FRAME,
) -> str:
    """A marble string for ``notifications`` (values looked up in ``values``)."""
    lines, _ = _layout([_frame_tokens(notifications, values)], frame)
    return lines[0]


def _subscription_tokens(subscription: Subscription) -> dict[int, str]:
    s, u = subscription.subscribed, subscription.unsubscribed
    if u is None:
        return {s: "^"}
    if u == s:
        return {s: "(^!)"}
    return {s: "^", u: "!"}


def _show(value: Any) -> str:
    if isinstance(value, type):
        return value.__qualname__
    return repr(value)


def _show_notification(n: Notification) -> str:
    if n.kind == "C":
        return f"({n.frame}, 'C')"
    return f"({n.frame}, {n.kind!r}, {_show(n.value)})"


def _notifications_message(
    expected: Sequence[Notification],
    actual: Sequence[Notification],
    values: Mapping[str, Any] | None,
    frame: float,
    written: str | None,
) -> str:
    (exp_line, act_line), origin = _layout(
        [_frame_tokens(expected, values), _frame_tokens(actual, values)], frame
    )
    lines = ["marbles differ", f"expected: {exp_line}", f"actual:   {act_line}"]
    if origin < 0:
        lines.append(f"(the lines start at frame {origin})")
    if written is not None and written.strip() != exp_line:
        lines.append(f"expected as written: {written!r}")
    if values:
        legend = ", ".join(f"{_key_token(k)}={v!r}" for k, v in values.items())
        lines.append(f"values: {legend}")
    errors = [n.value for n in [*expected, *actual] if n.kind == "E"]
    if errors:
        exp_errors = ", ".join(_show(n.value) for n in expected if n.kind == "E") or "none"
        act_errors = ", ".join(_show(n.value) for n in actual if n.kind == "E") or "none"
        lines.append(f"errors: expected {exp_errors}; actual {act_errors}")
    index = next(
        (k for k, (e, a) in enumerate(zip(expected, actual, strict=False)) if e != a),
        min(len(expected), len(actual)),
    )
    lines.append(f"first difference at notification #{index}")
    lines.append("expected notifications (frame, kind, value):")
    lines.extend(f"    {_show_notification(n)}" for n in expected)
    lines.append("actual notifications (frame, kind, value):")
    lines.extend(f"    {_show_notification(n)}" for n in actual)
    return "\n".join(lines)


def _subscriptions_message(
    expected: Sequence[Subscription], actual: Sequence[Subscription], frame: float
) -> str:
    rows = [_subscription_tokens(s) for s in [*expected, *actual]]
    rendered, _ = _layout(rows, frame) if rows else ([], 0)
    exp_lines = rendered[: len(expected)] or ["(no subscriptions)"]
    act_lines = rendered[len(expected) :] or ["(no subscriptions)"]
    lines = ["subscriptions differ"]
    lines += [("expected: " if k == 0 else " " * 10) + line for k, line in enumerate(exp_lines)]
    lines += [("actual:   " if k == 0 else " " * 10) + line for k, line in enumerate(act_lines)]
    lines.append(f"expected: {list(expected)}")
    lines.append(f"actual:   {list(actual)}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the loop


def _current_event_loop() -> asyncio.AbstractEventLoop | None:
    """The loop set with ``asyncio.set_event_loop`` in this thread, without creating one.

    ``asyncio.get_event_loop()`` would create (and leak) a new loop on Python
    3.12-3.13 when none is set, so read the policy's slot where it exists.
    """
    get_policy = getattr(asyncio, "get_event_loop_policy", None)
    if get_policy is None:  # pragma: no cover - Python without loop policies
        try:
            return asyncio.get_event_loop()
        except RuntimeError:
            return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        policy = get_policy()
    loop = getattr(getattr(policy, "_local", None), "_loop", None)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else None


def _set_event_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop(loop)


# --------------------------------------------------------------------------- observables


class ColdObservable(Observable[Any]):
    """An observable that replays its marble diagram for each subscriber.

    Each subscription schedules the events relative to its own subscription
    frame; :attr:`subscriptions` records when each one started and ended.
    """

    def __init__(self, context: MarbleContext, marbles: str, messages: list[Notification]) -> None:
        super().__init__()
        self.marbles = marbles
        self.messages = messages
        self.subscriptions: list[Subscription] = []
        self._context = context
        self._live: dict[int, abc.DisposableBase] = {}

    def __repr__(self) -> str:
        return f"ColdObservable({self.marbles!r})"

    def _subscribe_core(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        ctx = self._context
        loop = ctx._running_loop("subscribe to a cold observable")
        index = len(self.subscriptions)
        self.subscriptions.append(Subscription(ctx._frame_now()))
        start = loop.time()
        handles = [
            loop.call_at(start + m.frame * ctx.frame, _deliver, observer, m) for m in self.messages
        ]

        def dispose() -> None:
            self._live.pop(index, None)
            for handle in handles:
                handle.cancel()
            self.subscriptions[index] = Subscription(
                self.subscriptions[index].subscribed, ctx._frame_now()
            )

        disposable = Disposable(dispose)
        self._live[index] = disposable
        return disposable

    def _dispose_all(self) -> None:
        for disposable in list(self._live.values()):
            disposable.dispose()


class HotObservable(Observable[Any]):
    """An observable whose marble events happen once, at fixed frames, for all.

    Backed by a :class:`reactivex.subject.Subject`; the events are scheduled when
    the context flushes. :attr:`subscriptions` records each subscriber's span.
    """

    def __init__(self, context: MarbleContext, marbles: str, messages: list[Notification]) -> None:
        super().__init__()
        self.marbles = marbles
        self.messages = messages
        self.subscriptions: list[Subscription] = []
        self._context = context
        self._subject: Subject[Any] = Subject()
        self._live: dict[int, abc.DisposableBase] = {}

    def __repr__(self) -> str:
        return f"HotObservable({self.marbles!r})"

    def _subscribe_core(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        ctx = self._context
        ctx._running_loop("subscribe to a hot observable")
        index = len(self.subscriptions)
        self.subscriptions.append(Subscription(ctx._frame_now()))
        inner = self._subject.subscribe(observer)

        def dispose() -> None:
            self._live.pop(index, None)
            inner.dispose()
            self.subscriptions[index] = Subscription(
                self.subscriptions[index].subscribed, ctx._frame_now()
            )

        disposable = Disposable(dispose)
        self._live[index] = disposable
        return disposable

    def _schedule(self, loop: asyncio.AbstractEventLoop, t0: float, frame: float) -> None:
        for m in self.messages:
            loop.call_at(t0 + m.frame * frame, _deliver, self._subject, m)

    def _dispose_all(self) -> None:
        for disposable in list(self._live.values()):
            disposable.dispose()


def _deliver(observer: abc.ObserverBase[Any], message: Notification) -> None:
    if message.kind == "N":
        observer.on_next(message.value)
    elif message.kind == "E":
        error = message.value
        observer.on_error(error() if isinstance(error, type) else error)
    else:
        observer.on_completed()


# --------------------------------------------------------------------------- expectations


class _Recorder:
    """Subscribes to an observable at the flush and records what it emits."""

    def __init__(
        self, context: MarbleContext, observable: abc.ObservableBase[Any], span: Subscription
    ) -> None:
        self.context = context
        self.observable = observable
        self.span = span
        self.notifications: list[Notification] = []
        self._disposable: abc.DisposableBase | None = None

    def schedule(self, loop: asyncio.AbstractEventLoop, t0: float, frame: float) -> None:
        loop.call_at(t0 + self.span.subscribed * frame, self._subscribe)
        if self.span.unsubscribed is not None:
            loop.call_at(t0 + self.span.unsubscribed * frame, self.dispose)

    def _subscribe(self) -> None:
        self._disposable = self.observable.subscribe(
            self._on_next, self._on_error, self._on_completed, scheduler=self.context.scheduler
        )

    def _record(self, kind: Kind, value: Any) -> None:
        self.notifications.append(Notification(self.context._frame_now(), kind, value))

    def _on_next(self, value: Any) -> None:
        self._record("N", value)

    def _on_error(self, error: Exception) -> None:
        self._record("E", error)

    def _on_completed(self) -> None:
        self._record("C", None)

    def dispose(self) -> None:
        if self._disposable is not None:
            self._disposable.dispose()


class Expectation:
    """What an observable should emit; complete it with :meth:`to_be` or :meth:`to_equal`."""

    def __init__(self, context: MarbleContext, recorder: _Recorder) -> None:
        self._context = context
        self._recorder = recorder
        self._expected: list[Notification] | None = None
        self._values: Mapping[str, Any] | None = None
        self._written: str | None = None

    def to_be(
        self,
        marbles: str,
        values: Mapping[str, Any] | None = None,
        error: ErrorSpec | None = None,
    ) -> None:
        """Expect the notifications drawn by ``marbles``, checked at the flush.

        ``values`` maps characters or ``[names]`` to the expected values; ``error``
        is what ``#`` stands for: an exception instance (matched by type and
        args) or class (matched with isinstance); default ``Exception("error")``.

        Example:
            >>> with marbles() as m:
            ...     m.expect(m.cold("-a|")).to_be("-a|")
        """
        self._set(parse_marbles(marbles, values, error, frame=self._context.frame), values, marbles)

    def to_equal(self, notifications: Sequence[Notification]) -> None:
        """Expect exactly these notifications, checked at the flush.

        Example:
            >>> with marbles() as m:
            ...     m.expect(m.cold("-a|")).to_equal(
            ...         [Notification.on_next(1, "a"), Notification.on_completed(2)]
            ...     )
        """
        self._set(list(notifications), None, None)

    def _set(
        self, expected: list[Notification], values: Mapping[str, Any] | None, written: str | None
    ) -> None:
        self._context._check_open("complete an expectation")
        if self._expected is not None:
            raise RuntimeError("this expectation already has its expected marbles")
        self._expected, self._values, self._written = expected, values, written

    def _check(self) -> str | None:
        if self._expected is None:
            return (
                f"m.expect({self._recorder.observable!r}) was never completed with "
                ".to_be(...) or .to_equal(...)"
            )
        actual = self._recorder.notifications
        if actual == self._expected:
            return None
        message = _notifications_message(
            self._expected, actual, self._values, self._context.frame, self._written
        )
        from ._svg import SVG_DIR_ENV, write_failure_svg

        picture = write_failure_svg(self._expected, actual, self._values)
        if picture is not None:
            message += f"\npicture of expected vs actual ({SVG_DIR_ENV}): {picture}"
        return message


class SubscriptionExpectation:
    """The subscriptions an observable should have seen; complete it with :meth:`to_be`."""

    def __init__(self, context: MarbleContext, actual: Sequence[Subscription]) -> None:
        self._context = context
        self._actual = actual
        self._expected: list[Subscription] | None = None

    def to_be(self, marbles: str | Sequence[str]) -> None:
        """Expect these subscription marbles (one string per subscription, in order).

        Example:
            >>> with marbles() as m:
            ...     src = m.cold("-a|")
            ...     m.expect(src).to_be("-a|")
            ...     m.expect_subscriptions(src.subscriptions).to_be("^-!")
        """
        self._context._check_open("complete an expectation")
        if self._expected is not None:
            raise RuntimeError("this expectation already has its expected marbles")
        strings = [marbles] if isinstance(marbles, str) else list(marbles)
        self._expected = [parse_subscription_marbles(s, frame=self._context.frame) for s in strings]

    def _check(self) -> str | None:
        if self._expected is None:
            return "m.expect_subscriptions(...) was never completed with .to_be(...)"
        actual = list(self._actual)
        if actual == self._expected:
            return None
        return _subscriptions_message(self._expected, actual, self._context.frame)


# --------------------------------------------------------------------------- the context

_CURRENT: ContextVar[MarbleContext | None] = ContextVar("rxflows_marble_context", default=None)

_State = Literal["new", "open", "running", "done", "exited"]


class MarbleContext:
    """One marble test: a virtual-time loop, its scheduler, observables, expectations.

    Use it through :func:`marbles`. Inside the ``with`` block, create observables
    with :meth:`cold` / :meth:`hot` and state expectations with :meth:`expect` /
    :meth:`expect_subscriptions`; leaving the block flushes: it runs the loop and
    raises ``AssertionError`` on any mismatch. Then the loop is closed.
    """

    def __init__(self, *, frame: float = DEFAULT_FRAME, max_frames: int = DEFAULT_MAX_FRAMES):
        self.frame = _check_frame(frame)
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 0:
            raise ValueError(f"max_frames must be an int >= 0, got {max_frames!r}")
        self.max_frames = max_frames
        self._state: _State = "new"
        self._loop: VirtualTimeLoop | None = None
        self._scheduler: LoopScheduler | None = None
        self._start = 0.0
        self._lead = 0  # frames of hot events before '^', run before frame 0
        self._clock_fixed = False
        self._recorders: list[_Recorder] = []
        self._expectations: list[Expectation | SubscriptionExpectation] = []
        self._observables: list[ColdObservable | HotObservable] = []
        self._hots: list[HotObservable] = []
        self._loop_errors: list[BaseException] = []
        self._token: Token[MarbleContext | None] | None = None
        self._previous_loop: asyncio.AbstractEventLoop | None = None

    # -- public attributes

    @property
    def loop(self) -> VirtualTimeLoop:
        """The virtual-time event loop of this test."""
        if self._loop is None:
            raise RuntimeError("the marble context has no loop yet: use `with marbles() as m:`")
        return self._loop

    @property
    def scheduler(self) -> LoopScheduler:
        """The RxPY scheduler on :attr:`loop`: pass it as ``scheduler=`` to time operators."""
        if self._scheduler is None:
            raise RuntimeError("the marble context has no loop yet: use `with marbles() as m:`")
        return self._scheduler

    @property
    def t0(self) -> float:
        """The loop time of frame 0."""
        return round(self._start + self._lead * self.frame, _TIME_DIGITS)

    def frame_now(self) -> int:
        """The current frame (rounded), relative to frame 0."""
        return self._frame_now()

    # -- context manager

    def __enter__(self) -> MarbleContext:
        if self._state != "new":
            raise RuntimeError("a marble context can be entered only once")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "marbles() runs its own virtual-time loop and cannot be used while an event "
                "loop is running: write the test as a plain (non-async) function"
            )
        loop = VirtualTimeLoop()
        loop.set_exception_handler(self._on_loop_error)
        self._loop = loop
        self._scheduler = loop_scheduler(loop)
        self._start = loop.time()
        self._previous_loop = _current_event_loop()
        _set_event_loop(loop)
        self._token = _CURRENT.set(self)
        self._state = "open"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and self._state == "open":
                self.flush()
        finally:
            try:
                if self._state != "done":
                    self._shutdown()
            finally:
                if self._token is not None:
                    _CURRENT.reset(self._token)
                    self._token = None
                _set_event_loop(self._previous_loop)
                self._previous_loop = None
                self._state = "exited"

    # -- building the test

    def cold(
        self,
        marbles: str,
        values: Mapping[str, Any] | None = None,
        error: ErrorSpec | None = None,
    ) -> ColdObservable:
        """A cold observable: every subscriber gets the diagram from its subscription on.

        Example:
            >>> with marbles() as m:
            ...     src = m.cold("-a-(bc)-|", {"a": 1, "b": 2, "c": 3})
            ...     m.expect(src).to_be("-a-(bc)-|", {"a": 1, "b": 2, "c": 3})
        """
        self._check_building("create a cold observable")
        messages = parse_marbles(
            marbles, values, error, allow_subscription_point=False, frame=self.frame
        )
        observable = ColdObservable(self, marbles, messages)
        self._observables.append(observable)
        return observable

    def hot(
        self,
        marbles: str,
        values: Mapping[str, Any] | None = None,
        error: ErrorSpec | None = None,
    ) -> HotObservable:
        """A hot observable: its events happen at fixed frames, seen by whoever listens.

        ``^`` marks frame 0 (and, like every character, takes a frame): write
        expected marbles so that their first character sits under the ``^``.
        Events before it run before frame 0, so only subscribers that were
        already there (for example a ``publish()`` connected in the block)
        receive them.

        Example:
            >>> with marbles() as m:
            ...     src = m.hot("-a-^-b-|")
            ...     m.expect(src).to_be("--b-|")
        """
        self._check_building("create a hot observable")
        messages = parse_marbles(marbles, values, error, frame=self.frame)
        lead = -min((m.frame for m in messages), default=0)
        if lead > self._lead:
            if self._clock_fixed:
                raise ValueError(
                    f"hot({marbles!r}) has events {lead} frames before '^', but frame 0 is "
                    "already fixed: create hot observables with '^' before subscribing "
                    "to anything"
                )
            self._lead = lead
        observable = HotObservable(self, marbles, messages)
        self._observables.append(observable)
        self._hots.append(observable)
        if self._state == "running":
            observable._schedule(self.loop, self.t0, self.frame)
        return observable

    def expect(
        self, observable: abc.ObservableBase[Any], subscription_marbles: str | None = None
    ) -> Expectation:
        """Subscribe to ``observable`` at the flush and expect what it emits.

        ``subscription_marbles`` (default ``"^"``) sets when to subscribe (``^``)
        and, optionally, unsubscribe (``!``). The subscription passes
        ``scheduler=m.scheduler``.

        Example:
            >>> with marbles() as m:
            ...     m.expect(m.cold("-a-b-c|"), "^--!").to_be("-a-")
        """
        self._check_open("expect")
        expectation = Expectation(self, self._recorder(observable, subscription_marbles))
        self._expectations.append(expectation)
        return expectation

    def expect_subscriptions(
        self, subscriptions: Sequence[Subscription]
    ) -> SubscriptionExpectation:
        """Expect the subscriptions recorded in ``subscriptions`` (read at the flush).

        Example:
            >>> with marbles() as m:
            ...     src = m.cold("--a--|")
            ...     m.expect(src, "^-!").to_be("--")
            ...     m.expect_subscriptions(src.subscriptions).to_be("^-!")
        """
        self._check_open("expect subscriptions")
        expectation = SubscriptionExpectation(self, subscriptions)
        self._expectations.append(expectation)
        return expectation

    def run(
        self, observable: abc.ObservableBase[Any], subscription: str = "^"
    ) -> list[Notification]:
        """Subscribe to ``observable``, flush, and return what it emitted.

        This flushes the whole context (pending expectations are checked too),
        after which the context is finished.

        Example:
            >>> with marbles() as m:
            ...     recorded = m.run(m.cold("-a|"))
            >>> recorded == [Notification.on_next(1, "a"), Notification.on_completed(2)]
            True
        """
        self._check_open("run")
        recorder = self._recorder(observable, subscription)
        self.flush()
        return recorder.notifications

    def flush(self) -> None:
        """Run the test: subscribe, play the diagrams, check every expectation.

        Runs the loop until it is idle or ``max_frames`` have passed, checks the
        expectations, disposes what is still subscribed, cancels leftover tasks and
        closes the loop. Raises ``AssertionError`` listing every mismatch, or the
        first exception that escaped into the loop. Calling it again does nothing.
        """
        if self._state == "done":
            return
        if self._state == "running":
            raise RuntimeError("flush() cannot be called while the marble test is running")
        self._check_open("flush")
        loop = self.loop
        self._state = "running"
        self._clock_fixed = True
        failures: list[str] = []
        try:
            t0 = self.t0
            for recorder in self._recorders:
                recorder.schedule(loop, t0, self.frame)
            for hot in self._hots:
                hot._schedule(loop, t0, self.frame)
            # Rounded like the timers (VirtualTimeLoop.call_at), so frame max_frames still runs.
            loop.run_until_idle(until=round(t0 + self.max_frames * self.frame, _TIME_DIGITS))
            for expectation in self._expectations:
                message = expectation._check()
                if message is not None:
                    failures.append(message)
        finally:
            self._shutdown()
            self._state = "done"
        if self._loop_errors:
            error = self._loop_errors[0]
            error.add_note("(raised inside a callback of the marble test's virtual-time loop)")
            raise error
        if failures:
            raise AssertionError("\n\n".join(failures))

    # -- internals

    def _recorder(
        self, observable: abc.ObservableBase[Any], subscription_marbles: str | None
    ) -> _Recorder:
        if not isinstance(observable, abc.ObservableBase):
            raise TypeError(f"expected an observable, got {observable!r}")
        span = parse_subscription_marbles(subscription_marbles or "^", frame=self.frame)
        recorder = _Recorder(self, observable, span)
        self._recorders.append(recorder)
        return recorder

    def _check_open(self, what: str) -> None:
        if self._state == "open":
            return
        if self._state == "new":
            raise RuntimeError(f"cannot {what}: enter the context first (`with marbles() as m:`)")
        if self._state == "running":
            raise RuntimeError(f"cannot {what} while the marble test is running")
        raise RuntimeError(
            f"cannot {what}: this marble context has already been flushed; "
            "start a new `with marbles():` block"
        )

    def _check_building(self, what: str) -> None:
        if self._state != "running":
            self._check_open(what)

    def _running_loop(self, what: str) -> VirtualTimeLoop:
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError(f"cannot {what}: the marble context's loop is closed")
        return loop

    def _frame_now(self) -> int:
        self._clock_fixed = True
        return round((self.loop.time() - self.t0) / self.frame)

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if not isinstance(error, BaseException):
            error = RuntimeError(context.get("message", "error in the event loop"))
        self._loop_errors.append(error)

    def _shutdown(self) -> None:
        """Dispose what is still subscribed, let cancelled tasks finish, close the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            for recorder in self._recorders:
                self._guarded(recorder.dispose)
            for observable in self._observables:
                self._guarded(observable._dispose_all)
            loop.run_until_idle(until=loop.time())
            for _ in range(10):
                pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
                if not pending:
                    break
                for task in pending:
                    task.cancel()
                loop.run_until_idle(until=loop.time())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as error:
            self._loop_errors.append(error)


def marbles(*, frame: float = DEFAULT_FRAME, max_frames: int = DEFAULT_MAX_FRAMES) -> MarbleContext:
    """A marble test context: ``with marbles() as m: ...``.

    One frame is ``frame`` seconds of virtual loop time (default 1 ms); the run
    stops after ``max_frames`` frames, which bounds endless sources such as
    ``interval``. Leaving the block flushes the test.

    Example:
        >>> import reactivex.operators as ops
        >>> with marbles() as m:
        ...     src = m.cold("-a-b-|", {"a": 1, "b": 2})
        ...     m.expect(src.pipe(ops.map(lambda x: x * 10))).to_be("-x-y-|", {"x": 10, "y": 20})
    """
    return MarbleContext(frame=frame, max_frames=max_frames)


def _current(name: str) -> MarbleContext:
    context = _CURRENT.get()
    if context is None:
        raise RuntimeError(
            f"{name}() needs an active marble test: call it inside a `with marbles():` block"
        )
    return context


def cold(
    marbles: str, values: Mapping[str, Any] | None = None, error: ErrorSpec | None = None
) -> ColdObservable:
    """:meth:`MarbleContext.cold` on the current ``with marbles():`` context.

    Example:
        >>> with marbles():
        ...     expect(cold("-a|")).to_be("-a|")
    """
    return _current("cold").cold(marbles, values, error)


def hot(
    marbles: str, values: Mapping[str, Any] | None = None, error: ErrorSpec | None = None
) -> HotObservable:
    """:meth:`MarbleContext.hot` on the current ``with marbles():`` context.

    Example:
        >>> with marbles():
        ...     expect(hot("a-b|")).to_be("a-b|")
    """
    return _current("hot").hot(marbles, values, error)


def expect(
    observable: abc.ObservableBase[Any], subscription_marbles: str | None = None
) -> Expectation:
    """:meth:`MarbleContext.expect` on the current ``with marbles():`` context.

    Example:
        >>> with marbles():
        ...     expect(cold("-a-b|"), "^-!").to_be("-a")
    """
    return _current("expect").expect(observable, subscription_marbles)


def expect_subscriptions(subscriptions: Sequence[Subscription]) -> SubscriptionExpectation:
    """:meth:`MarbleContext.expect_subscriptions` on the current ``with marbles():`` context.

    Example:
        >>> with marbles():
        ...     src = cold("-a|")
        ...     expect(src).to_be("-a|")
        ...     expect_subscriptions(src.subscriptions).to_be("^-!")
    """
    return _current("expect_subscriptions").expect_subscriptions(subscriptions)
