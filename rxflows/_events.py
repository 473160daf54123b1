"""The event bus: a hub of Subjects, with a bounded mailbox per handler.

Every topic is a hot observable (:meth:`AsyncEventBus.topic`), so events compose
with Rx operators; :meth:`AsyncEventBus.subscribe` is the guide's convenience over
it: a handler (sync or async) with its own bounded mailbox and worker task, so a
slow handler delays nobody else, and events reach each handler in publish order.

Routing: topic names are dot-separated segments (``video.processed``). A
subscription pattern may use ``*`` as a whole segment: in the middle of a pattern
it stands for exactly one segment, at the end for one or more (the rest of the
name). So ``video.*`` matches ``video.processed`` and ``video.upload.done`` (not
``video``), ``*.done`` matches ``upload.done`` (not ``video.upload.done``) and a
bare ``*`` matches every topic. The subscribers of a topic name are computed once
and cached, so ``publish`` does one dict lookup; the cache is cleared whenever a
subscription or an observer comes or goes.

Failures: a handler (or a topic observer) that raises never stops delivery to the
others. The failure is published on the reserved topic ``"bus.dead_letter"`` as a
:class:`DeadLetter` record. A failure while handling a dead letter is logged,
never re-published, so a failing dead-letter handler cannot loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import enum
import inspect
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Final, NamedTuple

from reactivex import Observable, abc
from reactivex import operators as rx_ops
from reactivex.disposable import Disposable

from ._clock import Clock, as_clock
from ._config import AsyncFlowConfig, config_or_default
from ._errors import BackpressureError, BusClosedError, ConfigurationError
from ._resource import AsyncResource
from .operators._on_backpressure import BackpressurePolicy

__all__ = [
    "DEAD_LETTER_TOPIC",
    "AsyncEventBus",
    "BusEvent",
    "BusState",
    "BusStatistics",
    "BusSubscription",
    "DeadLetter",
    "SubscriberStatistics",
    "create_async_event_bus",
]

_log = logging.getLogger("rxflows.events")

DEAD_LETTER_TOPIC: Final = "bus.dead_letter"
"""The reserved topic on which the bus publishes a :class:`DeadLetter` per failure."""

_ROUTE_CACHE_LIMIT: Final = 4096
"""Cached routes kept at most (topic names can be unbounded, e.g. one per video)."""

Handler = Callable[..., Any]
"""A handler: ``(data)`` or ``(event, data)``, returning None or an awaitable."""


# --- records -------------------------------------------------------------------------


class BusState(enum.Enum):
    """The lifecycle of an :class:`AsyncEventBus`."""

    OPEN = "open"
    """Publishing and subscribing work."""
    CLOSING = "closing"
    """``aclose()`` is draining: only the bus's own handlers may still publish."""
    CLOSED = "closed"
    """Closed: publish, subscribe, topic and wait_for raise :class:`BusClosedError`."""


_OPEN: Final = BusState.OPEN
_CLOSING: Final = BusState.CLOSING
_CLOSED: Final = BusState.CLOSED


class BusEvent(NamedTuple):
    """An event with its topic name, as emitted by :meth:`AsyncEventBus.events`."""

    topic: str
    data: Any


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The record of a failure, published on :data:`DEAD_LETTER_TOPIC`.

    ``event`` and ``data`` are what was being handled, ``handler`` the handler (or
    the Rx observer of a topic) that raised, ``error`` what it raised.
    """

    event: str
    data: Any
    handler: object
    error: BaseException


@dataclass(frozen=True, slots=True)
class SubscriberStatistics:
    """Counts of one handler subscription (:meth:`BusSubscription.statistics`).

    ``queued`` is the number of events waiting in its mailbox (the one being handled
    is not included); ``delivered`` handler calls returned, ``failed`` raised,
    ``dropped`` events never reached the handler (overflow, unsubscribe, close).
    """

    pattern: str
    policy: BackpressurePolicy
    buffer_size: int
    queued: int
    delivered: int
    failed: int
    dropped: int
    active: bool


@dataclass(frozen=True, slots=True)
class BusStatistics:
    """Counts of a whole bus (:meth:`AsyncEventBus.statistics`).

    * ``topics``: distinct patterns that have a handler or an observer now;
    * ``subscribers``: active handler subscriptions; ``observers``: Rx observers of
      topics (including ``wait_for`` waiters);
    * ``published``: events accepted by ``publish``/``publish_nowait``, plus dead
      letters;
    * ``delivered``, ``failed``, ``dropped``: handler deliveries that returned, that
      raised (plus topic observers that raised), that never reached the handler;
    * ``backlog``: deliveries queued or being handled right now.

    Every delivery accepted into a mailbox ends up counted exactly once in
    ``delivered``, ``failed`` or ``dropped``; until then it is in ``backlog``.
    """

    state: BusState
    topics: int
    subscribers: int
    observers: int
    published: int
    delivered: int
    failed: int
    dropped: int
    backlog: int


# --- validation ------------------------------------------------------------------------


class _Pattern:
    """A parsed topic name or pattern."""

    __slots__ = ("segments", "tail", "text", "wildcard")

    def __init__(self, text: str) -> None:
        self.text = text
        self.segments = tuple(text.split("."))
        self.wildcard = "*" in self.segments
        self.tail = self.segments[-1] == "*"

    def matches(self, name: str) -> bool:
        if not self.wildcard:
            return name == self.text
        parts = name.split(".")
        segments = self.segments
        if self.tail:
            if len(parts) < len(segments):
                return False
            segments = segments[:-1]
        elif len(parts) != len(segments):
            return False
        return all(s == "*" or s == p for s, p in zip(segments, parts, strict=False))


_NAME_RULE = "dot-separated non-empty segments without whitespace, e.g. 'video.processed'"


def _parse(value: object, field: str, *, wildcards: bool) -> _Pattern:
    if not isinstance(value, str):
        raise TypeError(
            f"{field} must be a str topic name ({_NAME_RULE}), got {type(value).__name__} {value!r}"
        )

    def bad(problem: str) -> ConfigurationError:
        return ConfigurationError(
            f"{field} must be a topic {'name or pattern' if wildcards else 'name'} "
            f"({_NAME_RULE}), got {value!r}: {problem}",
            field=field,
            value=value,
        )

    if not value:
        raise bad("it is empty")
    if any(c.isspace() for c in value):
        raise bad("it contains whitespace")
    for segment in value.split("."):
        if not segment:
            raise bad("it has an empty segment")
        if "*" in segment:
            if not wildcards:
                raise bad("'*' is for subscription patterns; publish to a concrete name")
            if segment != "*":
                raise bad("'*' must be a whole segment ('video.*', not 'video*' or '**')")
    return _Pattern(value)


def _buffer_size(value: object, field: str = "buffer_size") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(
            f"{field} must be a positive int, got {value!r}", field=field, value=value
        )
    return value


def _policy(value: object) -> BackpressurePolicy:
    if isinstance(value, BackpressurePolicy):
        return value
    try:
        return BackpressurePolicy(value)
    except ValueError:
        names = ", ".join(repr(p.value) for p in BackpressurePolicy)
        raise ConfigurationError(
            f"policy must be a BackpressurePolicy or one of {names}, got {value!r}",
            field="policy",
            value=value,
        ) from None


def _check_callable(value: object, field: str, shape: str) -> None:
    if not callable(value):
        raise TypeError(f"{field} must be callable ({shape}), got {type(value).__name__} {value!r}")


_POSITIONAL: Final = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _takes_event(handler: Handler, pass_event: object) -> bool:
    """Whether ``handler`` is called as ``(event, data)`` (else ``(data)``).

    Decided once, from the signature: 2 required positional parameters -> (event,
    data); 1 -> (data); none required: ``*args`` or 2+ optional positional ->
    (event, data), 1 optional -> (data). A signature that cannot be read (some
    builtins) -> (data). ``pass_event=True/False`` overrides all of this.
    """
    if pass_event is not None:
        if not isinstance(pass_event, bool):
            raise ConfigurationError(
                f"pass_event must be True, False or None (decide from the signature), "
                f"got {pass_event!r}",
                field="pass_event",
                value=pass_event,
            )
        return pass_event
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return False
    params = signature.parameters.values()
    positional = [p for p in params if p.kind in _POSITIONAL]
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    keyword_only = [
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    shape = "handlers are called as handler(data) or handler(event, data)"
    if keyword_only:
        raise TypeError(
            f"handler {_describe(handler)} has required keyword-only parameter(s) "
            f"{', '.join(keyword_only)}; {shape}"
        )
    if len(required) > 2:
        raise TypeError(
            f"handler {_describe(handler)} requires {len(required)} positional arguments "
            f"({', '.join(p.name for p in required)}); {shape}"
        )
    if required:
        return len(required) == 2
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params) or len(positional) >= 2:
        return True
    if positional:
        return False
    raise TypeError(f"handler {_describe(handler)} takes no positional argument; {shape}")


def _is_async(handler: Handler) -> bool:
    # A callable object with an ``async def __call__`` is async too.
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        type(handler).__call__
    )


def _describe(handler: object) -> str:
    name = getattr(handler, "__qualname__", None)
    return name if isinstance(name, str) else repr(handler)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


# --- subscribers and topics ---------------------------------------------------------------


class _Subscriber:
    """A handler subscription: its mailbox, its worker and its counts.

    ``capacity`` is the mailbox size while active and 0 once removed, so the
    publish fast path (``len(queue) < capacity``) needs no separate active check.
    ``putters`` hold publishers waiting for room (policy ``block``): when the worker
    takes an event it moves the first waiting publisher's event into the mailbox
    itself, so waiting publishers are served in order and newcomers cannot barge.
    """

    __slots__ = (
        "active",
        "capacity",
        "delivered",
        "dropped",
        "failed",
        "handle",
        "handler",
        "is_async",
        "name",
        "pattern",
        "policy",
        "putters",
        "queue",
        "size",
        "takes_event",
        "wake",
        "worker",
    )

    def __init__(
        self,
        pattern: _Pattern,
        handler: Handler,
        takes_event: bool,
        size: int,
        policy: BackpressurePolicy,
    ) -> None:
        self.pattern = pattern
        self.handler = handler
        self.name = _describe(handler)
        self.takes_event = takes_event
        self.is_async = _is_async(handler)
        self.size = size
        self.capacity = size
        self.policy = policy
        self.queue: deque[tuple[str, Any]] = deque()
        self.putters: deque[tuple[asyncio.Future[bool], tuple[str, Any]]] = deque()
        self.wake: asyncio.Future[None] | None = None
        self.worker: asyncio.Task[None] | None = None
        self.handle: BusSubscription | None = None
        self.active = True
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    def describe(self) -> str:
        return f"handler {self.name} on {self.pattern.text!r}"


class BusSubscription(abc.DisposableBase, AsyncResource):
    """A handler subscription, returned by :meth:`AsyncEventBus.subscribe`.

    ``dispose()`` stops it at once: no new event reaches the handler, events still
    in its mailbox are dropped (and counted in ``dropped``), the call in flight
    finishes. ``await aclose()`` (or leaving ``async with``) also waits for that
    call to return.

    Example:
        >>> async with await bus.subscribe("video_processed", handle) as subscription:
        ...     await bus.publish("video_processed", {"url": "a.mp4"})
        ...     await bus.drain()
        >>> subscription.statistics().delivered
        1
    """

    __slots__ = ("_bus", "_sub")

    def __init__(self, bus: AsyncEventBus, sub: _Subscriber) -> None:
        self._bus = bus
        self._sub = sub

    @property
    def pattern(self) -> str:
        """The topic name or pattern subscribed to."""
        return self._sub.pattern.text

    @property
    def handler(self) -> Handler:
        """The handler."""
        return self._sub.handler

    @property
    def passes_event(self) -> bool:
        """Whether the handler is called as ``(event, data)`` (else ``(data)``)."""
        return self._sub.takes_event

    @property
    def policy(self) -> BackpressurePolicy:
        """What a full mailbox does with a new event."""
        return self._sub.policy

    @property
    def buffer_size(self) -> int:
        """The mailbox size."""
        return self._sub.size

    @property
    def active(self) -> bool:
        """True until disposed, unsubscribed or the bus closes."""
        return self._sub.active

    def statistics(self) -> SubscriberStatistics:
        """This subscription's counts, as a frozen record."""
        sub = self._sub
        return SubscriberStatistics(
            pattern=sub.pattern.text,
            policy=sub.policy,
            buffer_size=sub.size,
            queued=len(sub.queue),
            delivered=sub.delivered,
            failed=sub.failed,
            dropped=sub.dropped,
            active=sub.active,
        )

    def dispose(self) -> None:
        """Unsubscribe now; queued events are dropped and counted. Idempotent."""
        self._bus._remove(self._sub)

    async def aclose(self) -> None:
        """Unsubscribe and wait for the handler call in flight (if any) to return."""
        self._bus._remove(self._sub)
        await self._bus._join([self._sub])

    def __repr__(self) -> str:
        sub = self._sub
        state = "active" if sub.active else "disposed"
        return (
            f"<BusSubscription {sub.describe()} {state}, policy={sub.policy.value}, "
            f"buffer_size={sub.size}, queued={len(sub.queue)}>"
        )


class _Fanout:
    """The Subject of one topic pattern: calls its Rx observers in turn, isolated.

    A plain Subject stops delivering when one observer raises; here a raising
    observer is reported as a dead letter and keeps its subscription. The observer
    list is a tuple replaced on (un)subscribe, so emitting copies nothing.
    """

    __slots__ = ("bus", "key", "named", "observers", "pattern")

    def __init__(self, bus: AsyncEventBus, pattern: _Pattern, named: bool) -> None:
        self.bus = bus
        self.pattern = pattern
        self.named = named
        self.key = (pattern.text, named)
        self.observers: tuple[abc.ObserverBase[Any], ...] = ()

    def emit(self, name: str, data: Any) -> None:
        value = BusEvent(name, data) if self.named else data
        for observer in self.observers:
            try:
                observer.on_next(value)
            except Exception as exc:
                self.bus._observer_failed(observer, name, data, exc)


class _TopicObservable(Observable[Any]):
    """What :meth:`AsyncEventBus.topic` returns: a view of the topic's Subject."""

    def __init__(self, bus: AsyncEventBus, pattern: _Pattern, named: bool) -> None:
        super().__init__()
        self._bus = bus
        self._pattern = pattern
        self._named = named

    def _subscribe_core(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return self._bus._observe(self._pattern, self._named, observer)

    def __repr__(self) -> str:
        kind = "events" if self._named else "topic"
        return f"<{kind} {self._pattern.text!r} of {self._bus!r}>"


class _Route:
    """Who gets an event published on one topic name: handlers, then Subjects."""

    __slots__ = ("fanouts", "subscribers")

    def __init__(self, subscribers: tuple[_Subscriber, ...], fanouts: tuple[_Fanout, ...]) -> None:
        self.subscribers = subscribers
        self.fanouts = fanouts


class _Waiter(abc.ObserverBase[Any]):
    """What :meth:`AsyncEventBus.wait_for` returns: listening from the call on."""

    def __init__(
        self,
        bus: AsyncEventBus,
        pattern: _Pattern,
        predicate: Callable[[Any], object] | None,
        timeout: float | None,
    ) -> None:
        self._pattern = pattern
        self._predicate = predicate
        self._timeout = timeout
        self._clock = bus.clock
        self._future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._future.add_done_callback(_retrieve)
        self._deadline = None if timeout is None else self._clock.now() + timeout
        self._subscription = bus._observe(pattern, False, self)

    def on_next(self, value: Any) -> None:
        future = self._future
        if future.done():
            return
        if self._predicate is not None:
            try:
                if not self._predicate(value):
                    return
            except Exception as exc:
                future.set_exception(exc)
                self._subscription.dispose()
                return
        future.set_result(value)
        self._subscription.dispose()

    def on_error(self, error: Exception) -> None:
        if not self._future.done():
            self._future.set_exception(error)

    def on_completed(self) -> None:
        if not self._future.done():
            self._future.set_exception(
                BusClosedError(f"the event bus closed before a {self._pattern.text!r} event came")
            )

    def __await__(self) -> Generator[Any, None, Any]:
        return self._result().__await__()

    async def _result(self) -> Any:
        future = self._future
        try:
            if self._deadline is not None and not future.done():
                remaining = self._deadline - self._clock.now()
                if remaining > 0:
                    sleeper = asyncio.ensure_future(self._clock.sleep(remaining))
                    try:
                        await asyncio.wait((future, sleeper), return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        sleeper.cancel()
                if not future.done():
                    which = " matching the predicate" if self._predicate is not None else ""
                    raise TimeoutError(
                        f"no {self._pattern.text!r} event{which} within {self._timeout} s"
                    )
            return await future
        finally:
            self._subscription.dispose()
            if not future.done():
                future.cancel()


# --- the bus ---------------------------------------------------------------------------


class AsyncEventBus:
    """Publish/subscribe on named topics: handlers with mailboxes, topics as observables.

    The guide's API works as written::

        event_bus = create_async_event_bus()

        async def handle_video_processed(data):
            print(f"Video processed: {data}")

        await event_bus.subscribe("video_processed", handle_video_processed)
        await event_bus.publish("video_processed", {"url": "video.mp4", "status": "completed"})

    Handlers: a handler may be sync or async and is called as ``handler(data)`` or
    ``handler(event, data)``, decided once from its signature at subscribe time (2
    required positional parameters, ``*args`` alone, or 2+ optional ones -> with the
    event name; otherwise data only; ``pass_event=`` overrides). Each handler has a
    bounded mailbox and one worker task: it gets its events one at a time, in
    publish order; a slow handler delays nobody else, until its mailbox is full.

    A full mailbox applies the subscription's policy (a
    :class:`~rxflows.BackpressurePolicy`): ``block`` (the default: ``publish``
    waits for room), ``drop_oldest``, ``drop_newest``, ``keep_latest`` (replace the
    newest queued event) or ``error`` (``publish`` raises
    :class:`~rxflows.BackpressureError` after delivering to the others). Drops are
    counted per subscriber.

    Topics as observables: :meth:`topic` returns the topic's hot observable (one
    Subject per topic pattern); observers are called synchronously inside
    ``publish``, before any handler, and a raising observer never stops the others.

    Failures go to :data:`DEAD_LETTER_TOPIC` (``"bus.dead_letter"``) as
    :class:`DeadLetter` records; with nobody subscribed there they are logged.

    Lifecycle: :meth:`drain` waits until every event is handled; :meth:`aclose`
    (or leaving ``async with``) drains, then stops the workers; after it,
    ``publish``, ``subscribe``, ``topic`` and ``wait_for`` raise
    :class:`~rxflows.BusClosedError`.

    Args:
        config: An :class:`~rxflows.AsyncFlowConfig`; its ``event_bus_buffer_size``
            is the default mailbox size.
        buffer_size: Default mailbox size of a subscription (a positive int);
            default ``config.event_bus_buffer_size``.
        policy: Default overflow policy of a subscription; default ``"block"``.
        clock: Where ``wait_for`` timeouts are measured: an rxflows Clock, an Rx
            scheduler or None (the running loop's clock).
    """

    DEAD_LETTER_TOPIC: ClassVar[str] = DEAD_LETTER_TOPIC
    """The reserved topic of :class:`DeadLetter` records."""

    def __init__(
        self,
        config: AsyncFlowConfig | None = None,
        *,
        buffer_size: int | None = None,
        policy: BackpressurePolicy | str = BackpressurePolicy.BLOCK,
        clock: Clock | abc.SchedulerBase | None = None,
    ) -> None:
        self._config = config_or_default(config)
        self._buffer_size = _buffer_size(
            self._config.event_bus_buffer_size if buffer_size is None else buffer_size
        )
        self._policy = _policy(policy)
        self._clock = as_clock(clock)
        self._state = _OPEN
        self._subscribers: list[_Subscriber] = []
        self._members: dict[_Subscriber, None] = {}
        self._fanouts: dict[tuple[str, bool], _Fanout] = {}
        self._routes: dict[str, _Route] = {}
        self._dead_route: _Route | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._drainers: list[asyncio.Future[None]] = []
        self._published = 0
        self._observer_failures = 0
        self._retired_delivered = 0
        self._retired_failed = 0
        self._retired_dropped = 0

    # -- properties ----------------------------------------------------------------------

    @property
    def state(self) -> BusState:
        """``OPEN``, ``CLOSING`` (draining in ``aclose``) or ``CLOSED``."""
        return self._state

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has finished (or is draining)."""
        return self._state is not _OPEN

    @property
    def clock(self) -> Clock:
        """The clock ``wait_for`` timeouts are measured on."""
        return self._clock

    @property
    def buffer_size(self) -> int:
        """The default mailbox size of a subscription."""
        return self._buffer_size

    @property
    def policy(self) -> BackpressurePolicy:
        """The default overflow policy of a subscription."""
        return self._policy

    # -- subscribing -------------------------------------------------------------------

    async def subscribe(
        self,
        event: str,
        handler: Handler,
        *,
        buffer_size: int | None = None,
        policy: BackpressurePolicy | str | None = None,
        pass_event: bool | None = None,
    ) -> BusSubscription:
        """Call ``handler`` for every event on ``event`` (a topic name or pattern).

        The handler may be a function or a coroutine function (also a bound method,
        a ``functools.partial`` or a callable object). It is called as
        ``handler(data)`` or ``handler(event, data)``, decided now from its signature:

        * 2 required positional parameters: ``(event, data)``;
        * 1 required positional parameter: ``(data)``;
        * none required: ``*args`` or 2+ optional positional parameters:
          ``(event, data)``; one optional: ``(data)``;
        * a signature Python cannot read (some builtins): ``(data)``;
        * ``pass_event=True`` / ``False`` decides instead.

        Events wait in a mailbox of ``buffer_size`` (default: the bus's) and reach
        the handler one at a time, in publish order, on the subscription's own
        worker task. A handler that raises gets the next event all the same; the
        failure is published on :data:`DEAD_LETTER_TOPIC`.

        Args:
            event: A topic name (``"video_processed"``) or a pattern with ``*``
                segments (``"video.*"``, ``"*"``).
            handler: The function to call.
            buffer_size: Mailbox size (a positive int); default the bus's.
            policy: What a full mailbox does with a new event (``"block"``,
                ``"drop_oldest"``, ``"drop_newest"``, ``"keep_latest"``, ``"error"``);
                default the bus's.
            pass_event: Force ``(event, data)`` (True) or ``(data)`` (False).

        Returns:
            A :class:`BusSubscription`: ``dispose()`` / ``await aclose()`` /
            ``async with``, and ``statistics()``.

        Example:
            >>> async def workflow_monitor(event_type, data):
            ...     print(f"Workflow event: {event_type} - {data}")
            >>> await bus.subscribe("step_completed", workflow_monitor)
            >>> await bus.subscribe("video.*", log_video_event, policy="drop_oldest")
        """
        return self._subscribe(event, handler, buffer_size, policy, pass_event)

    def _subscribe(
        self,
        event: str,
        handler: Handler,
        buffer_size: int | None,
        policy: BackpressurePolicy | str | None,
        pass_event: bool | None,
    ) -> BusSubscription:
        self._check_usable(f"subscribe to {event!r}")
        pattern = _parse(event, "event", wildcards=True)
        _check_callable(handler, "handler", "a function or coroutine function")
        size = self._buffer_size if buffer_size is None else _buffer_size(buffer_size)
        chosen = self._policy if policy is None else _policy(policy)
        sub = _Subscriber(pattern, handler, _takes_event(handler, pass_event), size, chosen)
        loop = asyncio.get_running_loop()
        worker = loop.create_task(self._work(sub), name=f"rxflows event bus: {sub.describe()}")
        sub.worker = worker
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)
        self._subscribers.append(sub)
        self._members[sub] = None
        self._invalidate()
        handle = sub.handle = BusSubscription(self, sub)
        return handle

    async def unsubscribe(self, event: str, handler: Handler) -> int:
        """Remove every subscription of ``handler`` to exactly ``event``.

        Queued events of those subscriptions are dropped (and counted); the call
        returns once their handler calls in flight have returned. ``handler`` is
        compared with ``==``, so a bound method matches a fresh ``obj.method``.

        Returns:
            How many subscriptions were removed (0 when there was none).
        """
        _parse(event, "event", wildcards=True)
        _check_callable(handler, "handler", "the handler given to subscribe")
        removed = [s for s in self._subscribers if s.pattern.text == event and s.handler == handler]
        for sub in removed:
            self._remove(sub)
        await self._join(removed)
        return len(removed)

    async def unsubscribe_all(self) -> int:
        """Remove every handler subscription (topic observers are left alone).

        The bus stays open. Returns how many subscriptions were removed.
        """
        removed = list(self._subscribers)
        for sub in removed:
            self._remove(sub)
        await self._join(removed)
        return len(removed)

    # -- topics as observables ---------------------------------------------------------------

    def topic(self, name: str) -> Observable[Any]:
        """The hot observable of a topic (or pattern): emits each event's data.

        Observers are called synchronously inside ``publish``, in subscription order,
        before any handler; one that raises is reported on
        :data:`DEAD_LETTER_TOPIC` and does not stop the others. The observable
        completes when the bus closes.

        .. code::

            publish:  --a--b--c-----
            [ bus.topic("t").pipe(rx_ops.filter(lambda d: d != "b")) ]
            observer: --a-----c-----

        Example:
            >>> done = bus.topic("video_processed").pipe(
            ...     rx_ops.filter(lambda d: d["status"] == "completed"),
            ...     rx_ops.map(lambda d: d["url"]),
            ... )
            >>> subscription = done.subscribe(print)
        """
        pattern = _parse(name, "name", wildcards=True)
        self._check_usable(f"observe {name!r}", while_closing=True)
        return _TopicObservable(self, pattern, False)

    def events(self, pattern: str = "*") -> Observable[BusEvent]:
        """Like :meth:`topic`, but emits :class:`BusEvent` ``(topic, data)`` records.

        Use it with wildcard patterns, to know which topic each event came on.

        Example:
            >>> bus.events("video.*").subscribe(lambda e: print(e.topic, e.data))
        """
        parsed = _parse(pattern, "pattern", wildcards=True)
        self._check_usable(f"observe {pattern!r}", while_closing=True)
        return _TopicObservable(self, parsed, True)

    def once(self, event: str, predicate: Callable[[Any], object] | None = None) -> Observable[Any]:
        """An observable of the next event on ``event`` (matching ``predicate``).

        It is cold: it listens from the moment it is subscribed (or awaited). It
        completes without a value if the bus closes first (awaiting it then raises
        RxPY's ``SequenceContainsNoElementsError``). To listen from the call on,
        use :meth:`wait_for`.

        Example:
            >>> data = await bus.once("upload.done")
        """
        if predicate is not None:
            _check_callable(predicate, "predicate", "a function of the event's data")
        source = self.topic(event)
        if predicate is not None:
            test = predicate
            source = source.pipe(rx_ops.filter(lambda data: bool(test(data))))
        return source.pipe(rx_ops.take(1))

    def wait_for(
        self,
        event: str,
        predicate: Callable[[Any], object] | None = None,
        timeout: float | None = None,
    ) -> Awaitable[Any]:
        """Await the data of the next event on ``event`` matching ``predicate``.

        It listens from the call on (not from the ``await``), so an event published
        between the call and the ``await`` is not missed. ``timeout`` is measured on
        the bus's clock from the call; when it passes, the await raises
        ``TimeoutError``. If the bus closes first it raises
        :class:`~rxflows.BusClosedError`; if ``predicate`` raises, that exception.

        Example:
            >>> waiter = bus.wait_for("render.done", lambda d: d["id"] == 7, timeout=30)
            >>> await bus.publish("render.start", {"id": 7})
            >>> result = await waiter
        """
        pattern = _parse(event, "event", wildcards=True)
        if predicate is not None:
            _check_callable(predicate, "predicate", "a function of the event's data")
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise ConfigurationError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}",
                field="timeout",
                value=timeout,
            )
        self._check_usable(f"wait for {event!r}", while_closing=True)
        return _Waiter(self, pattern, predicate, timeout)

    # -- publishing ------------------------------------------------------------------------

    async def publish(self, event: str, data: Any = None) -> None:
        """Deliver ``data`` to every handler and observer of ``event``.

        Observers of matching topics are called at once; each matching handler's
        mailbox gets the event. When a mailbox is full its policy applies: with
        ``block`` this call waits for room (handing over in order), with ``error``
        the event is dropped for that handler and, after every other subscriber
        got it, :class:`~rxflows.BackpressureError` is raised. The call returns once
        the event is in every mailbox: not when it has been handled (see
        :meth:`drain`).

        Raises:
            BusClosedError: the bus is closed (or closing), or was closed without
                draining while this call waited for room.
            ConfigurationError: ``event`` is not a valid topic name (or is the
                reserved ``"bus.dead_letter"``).
        """
        route = self._route_published(event, data)
        item = (event, data)
        for sub in route.subscribers:
            queue = sub.queue
            if len(queue) < sub.capacity:
                queue.append(item)
                self._pending += 1
                wake = sub.wake
                if wake is not None:
                    sub.wake = None
                    wake.set_result(None)
            else:
                await self._publish_rest(route.subscribers, sub, item)
                return

    def publish_nowait(self, event: str, data: Any = None) -> None:
        """Like :meth:`publish`, without waiting: for sync code (e.g. Rx callbacks).

        A full mailbox whose policy is ``block`` is treated like ``error``: the event
        is dropped for that handler (and counted), delivered to the others, then
        :class:`~rxflows.BackpressureError` is raised.
        """
        route = self._route_published(event, data)
        item = (event, data)
        for sub in route.subscribers:
            queue = sub.queue
            if len(queue) < sub.capacity:
                queue.append(item)
                self._pending += 1
                wake = sub.wake
                if wake is not None:
                    sub.wake = None
                    wake.set_result(None)
            else:
                error: BackpressureError | None = None
                for rest in route.subscribers[route.subscribers.index(sub) :]:
                    problem = self._offer_nowait(rest, item)
                    if error is None:
                        error = problem
                if error is not None:
                    raise error
                return

    async def _publish_rest(
        self, subscribers: tuple[_Subscriber, ...], first: _Subscriber, item: tuple[str, Any]
    ) -> None:
        """The slow path of ``publish``: from the first full mailbox on."""
        error: BackpressureError | None = None
        for sub in subscribers[subscribers.index(first) :]:
            problem: BackpressureError | None
            if (
                sub.policy is BackpressurePolicy.BLOCK
                and sub.active
                and len(sub.queue) >= sub.capacity
            ):
                problem = await self._wait_for_room(sub, item)
            else:
                problem = self._offer_nowait(sub, item)
            if error is None:
                error = problem
        if error is not None:
            raise error

    def _offer_nowait(self, sub: _Subscriber, item: tuple[str, Any]) -> BackpressureError | None:
        """Put ``item`` in ``sub``'s mailbox, or apply its policy without waiting."""
        queue = sub.queue
        if len(queue) < sub.capacity:
            self._enqueue(sub, item)
            return None
        if not sub.active:
            return None
        sub.dropped += 1
        policy = sub.policy
        if policy is BackpressurePolicy.DROP_OLDEST:
            queue.popleft()
            queue.append(item)
        elif policy is BackpressurePolicy.KEEP_LATEST:
            queue.pop()
            queue.append(item)
        elif policy is BackpressurePolicy.ERROR:
            return BackpressureError(
                f"the mailbox of {sub.describe()} is full ({sub.size} events, policy "
                f"'error'): event {item[0]!r} was dropped for it; raise buffer_size, speed "
                "up the handler or choose a dropping policy",
                capacity=sub.size,
            )
        elif policy is BackpressurePolicy.BLOCK:
            return BackpressureError(
                f"the mailbox of {sub.describe()} is full ({sub.size} events) and its policy "
                f"is 'block', which publish_nowait cannot wait for: event {item[0]!r} was "
                "dropped for it; use await publish() to wait for room",
                capacity=sub.size,
            )
        return None

    async def _wait_for_room(
        self, sub: _Subscriber, item: tuple[str, Any]
    ) -> BackpressureError | None:
        if asyncio.current_task() is sub.worker:
            sub.dropped += 1
            return BackpressureError(
                f"{sub.describe()} published {item[0]!r} into its own full mailbox "
                f"({sub.size} events, policy 'block'): it would wait for itself forever, "
                "so the event was dropped for it; raise buffer_size or choose a dropping "
                "policy",
                capacity=sub.size,
            )
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        entry = (future, item)
        sub.putters.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.cancelled():  # still waiting: withdraw the event
                with contextlib.suppress(ValueError):
                    sub.putters.remove(entry)
                sub.dropped += 1
            raise
        return None

    def _enqueue(self, sub: _Subscriber, item: tuple[str, Any]) -> None:
        sub.queue.append(item)
        self._pending += 1
        wake = sub.wake
        if wake is not None:
            sub.wake = None
            wake.set_result(None)

    def _refuse(self, event: object) -> None:
        """Raise unless the bus is draining and the caller is one of its handlers."""
        if self._state is _CLOSING and self._in_worker():
            return
        raise BusClosedError(
            f"cannot publish {event!r}: the event bus is {self._state.value} (aclose() was called)"
        )

    def _check_usable(self, action: str, *, while_closing: bool = False) -> None:
        """Raise when closed (or closing, unless ``while_closing``)."""
        if self._state is not _OPEN and not (while_closing and self._state is _CLOSING):
            raise BusClosedError(
                f"cannot {action}: the event bus is {self._state.value} (aclose() was called)"
            )

    # -- routing ---------------------------------------------------------------------------

    def _route_published(self, event: str, data: Any) -> _Route:
        """Count a publish of ``event``, hand it to the topic observers, return its route."""
        if self._state is not _OPEN:
            self._refuse(event)
        try:
            route = self._routes.get(event)
        except TypeError:
            route = None
        if route is None:
            route = self._new_route(event)
        self._published += 1
        if route.fanouts:
            for fanout in route.fanouts:
                fanout.emit(event, data)
        return route

    def has_subscribers(self, event: str) -> bool:
        """Whether a handler or a topic observer would receive ``event`` if published now.

        Cheap (no subscriber at all: two reads; else one cached lookup per event
        name), so a publisher can skip building a payload nobody will see.
        """
        if not self._subscribers and not self._fanouts:
            return False
        route = self._routes.get(event)
        if route is None:
            if self.closed:
                return False
            route = self._new_route(event)
        return bool(route.subscribers or route.fanouts)

    def _new_route(self, event: str) -> _Route:
        _parse(event, "event", wildcards=False)
        if event == DEAD_LETTER_TOPIC:
            raise ConfigurationError(
                f"event {DEAD_LETTER_TOPIC!r} is reserved for the bus's dead letters; "
                "publish your own failures on another topic (e.g. 'error')",
                field="event",
                value=event,
            )
        route = self._build_route(event)
        if len(self._routes) >= _ROUTE_CACHE_LIMIT:
            self._routes.clear()
        self._routes[event] = route
        return route

    def _build_route(self, name: str) -> _Route:
        return _Route(
            tuple(s for s in self._subscribers if s.pattern.matches(name)),
            tuple(f for f in self._fanouts.values() if f.pattern.matches(name)),
        )

    def _invalidate(self) -> None:
        self._routes.clear()
        self._dead_route = None

    def _observe(
        self, pattern: _Pattern, named: bool, observer: abc.ObserverBase[Any]
    ) -> abc.DisposableBase:
        if self._state is _CLOSED:
            observer.on_completed()
            return Disposable()
        key = (pattern.text, named)
        fanout = self._fanouts.get(key)
        if fanout is None:
            fanout = self._fanouts[key] = _Fanout(self, pattern, named)
            self._invalidate()
        fanout.observers = (*fanout.observers, observer)

        def unobserve() -> None:
            observers = fanout.observers
            for index, candidate in enumerate(observers):
                if candidate is observer:
                    fanout.observers = observers[:index] + observers[index + 1 :]
                    break
            if not fanout.observers and self._fanouts.get(key) is fanout:
                del self._fanouts[key]
                self._invalidate()

        return Disposable(unobserve)

    # -- workers -----------------------------------------------------------------------------

    async def _work(self, sub: _Subscriber) -> None:
        """One subscriber's worker: handle its mailbox in order, until removed."""
        queue = sub.queue
        putters = sub.putters
        handler = sub.handler
        takes_event = sub.takes_event
        is_async = sub.is_async
        isawaitable = inspect.isawaitable
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        try:
            while True:
                while queue:
                    name, data = queue.popleft()
                    if putters:
                        self._hand_over(sub)
                    try:
                        result = handler(name, data) if takes_event else handler(data)
                        if is_async or (result is not None and isawaitable(result)):
                            await result
                    except Exception as exc:
                        sub.failed += 1
                        self._handler_failed(sub, name, data, exc)
                    except asyncio.CancelledError as exc:
                        if task.cancelling():  # the bus stops us: the event is lost
                            sub.dropped += 1
                            self._settle()
                            raise
                        sub.failed += 1  # the handler's own cancellation, e.g. a timeout
                        self._handler_failed(sub, name, data, exc)
                    else:
                        sub.delivered += 1
                    self._pending -= 1
                    if not self._pending and self._drainers:
                        self._wake_drainers()
                if not sub.active:
                    return
                wake = loop.create_future()
                sub.wake = wake
                await wake
        finally:
            sub.wake = None
            if sub.active:  # stopped by something else than the bus: don't strand events
                self._remove(sub)
            self._retire(sub)

    def _hand_over(self, sub: _Subscriber) -> None:
        """Move the first waiting publisher's event into the room just made."""
        putters = sub.putters
        while putters:
            future, item = putters.popleft()
            if future.done():  # its publisher was cancelled
                continue
            sub.queue.append(item)
            self._pending += 1
            future.set_result(True)
            return

    def _settle(self) -> None:
        self._pending -= 1
        if not self._pending and self._drainers:
            self._wake_drainers()

    def _wake_drainers(self) -> None:
        drainers, self._drainers = self._drainers, []
        for future in drainers:
            if not future.done():
                future.set_result(None)

    def _remove(self, sub: _Subscriber) -> None:
        """Stop routing to ``sub``; drop (and count) what its mailbox holds."""
        if not sub.active:
            return
        sub.active = False
        sub.capacity = 0
        self._subscribers.remove(sub)
        self._invalidate()
        queued = len(sub.queue)
        if queued:
            sub.dropped += queued
            sub.queue.clear()
            self._pending -= queued
        while sub.putters:
            future, _ = sub.putters.popleft()
            if not future.done():
                sub.dropped += 1
                future.set_result(False)
        wake = sub.wake
        if wake is not None:
            sub.wake = None
            wake.set_result(None)
        if not self._pending and self._drainers:
            self._wake_drainers()

    def _retire(self, sub: _Subscriber) -> None:
        if sub in self._members:
            del self._members[sub]
            self._retired_delivered += sub.delivered
            self._retired_failed += sub.failed
            self._retired_dropped += sub.dropped

    async def _join(self, subs: list[_Subscriber]) -> None:
        """Wait for the workers of ``subs`` to exit (never for the calling task)."""
        current = asyncio.current_task()
        tasks = [s.worker for s in subs if s.worker is not None and s.worker is not current]
        pending = [t for t in tasks if not t.done()]
        if pending:
            await asyncio.wait(pending)

    def _in_worker(self) -> bool:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return False
        return task is not None and task in self._workers

    # -- failures ----------------------------------------------------------------------------

    def _handler_failed(self, sub: _Subscriber, name: str, data: Any, error: BaseException) -> None:
        if name == DEAD_LETTER_TOPIC:
            _log.error(
                "%s raised while handling a dead letter (%r); it is logged, not re-published",
                sub.describe(),
                data,
                exc_info=error,
            )
            return
        self._dead_letter(DeadLetter(name, data, sub.handler, error), sub.describe())

    def _observer_failed(
        self, observer: abc.ObserverBase[Any], name: str, data: Any, error: Exception
    ) -> None:
        self._observer_failures += 1
        if name == DEAD_LETTER_TOPIC:
            _log.error(
                "an observer of %r raised on a dead letter (%r); it is logged, not re-published",
                name,
                data,
                exc_info=error,
            )
            return
        self._dead_letter(DeadLetter(name, data, observer, error), f"an observer of {name!r}")

    def _dead_letter(self, record: DeadLetter, who: str) -> None:
        """Publish ``record`` on the dead-letter topic; never waits, never recurses."""
        route = self._dead_route
        if route is None and self._state is not _CLOSED:
            route = self._dead_route = self._build_route(DEAD_LETTER_TOPIC)
        if route is None or not (route.subscribers or route.fanouts):
            _log.error(
                "%s raised on event %r (nothing subscribes to %r)",
                who,
                record.event,
                DEAD_LETTER_TOPIC,
                exc_info=record.error,
            )
            return
        self._published += 1
        for fanout in route.fanouts:
            fanout.emit(DEAD_LETTER_TOPIC, record)
        item = (DEAD_LETTER_TOPIC, record)
        for sub in route.subscribers:
            if len(sub.queue) < sub.capacity:
                self._enqueue(sub, item)
            elif sub.policy in (BackpressurePolicy.BLOCK, BackpressurePolicy.ERROR):
                if sub.active:
                    sub.dropped += 1
                    _log.warning(
                        "the mailbox of %s is full: dropped the dead letter of %s on %r",
                        sub.describe(),
                        who,
                        record.event,
                    )
            else:
                self._offer_nowait(sub, item)

    # -- lifecycle ---------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until the bus is idle: every mailbox empty, no handler running.

        That includes every event published before the call and the events those
        handlers publish in turn. Returns at once when nothing is pending.

        Raises:
            RuntimeError: awaited from one of this bus's handlers (it would wait for
                itself).
        """
        if self._in_worker():
            raise RuntimeError(
                "drain() cannot be awaited from a handler of the same bus: it waits for "
                "every handler, this one included"
            )
        if not self._pending:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drainers.append(future)
        try:
            await future
        finally:
            if not future.done():
                future.cancel()
            if future in self._drainers:
                self._drainers.remove(future)

    async def aclose(self, *, drain: bool = True) -> None:
        """Close the bus: drain (by default), stop the workers, complete the topics.

        From the call on, ``publish`` raises :class:`~rxflows.BusClosedError`
        (except from the bus's own handlers while it drains, so chains of events
        finish) and so does ``subscribe``. With ``drain=False`` nothing more is
        handled: queued events, events of publishers waiting for room and the
        handler calls in flight (cancelled) are counted as dropped, and those
        publishers get :class:`~rxflows.BusClosedError`. Then the workers stop, the
        topics complete and ``wait_for`` waiters get :class:`~rxflows.BusClosedError`.
        Idempotent; ``drain=False`` also cuts short a draining ``aclose()``.

        Raises:
            RuntimeError: ``aclose()`` (draining) awaited from one of this bus's
                handlers; use ``aclose(drain=False)`` there.
        """
        if self._state is _CLOSED:
            await self._join(list(self._members))
            return
        if drain and self._in_worker():
            raise RuntimeError(
                "aclose() cannot drain from a handler of the same bus (it would wait for "
                "itself); call aclose(drain=False) or close the bus from outside"
            )
        self._state = _CLOSING
        if drain:
            await self.drain()
        self._shutdown(drop=not drain)
        await self._join(list(self._members))
        for sub in list(self._members):
            if sub.worker is None or sub.worker.done():
                self._retire(sub)

    def _shutdown(self, *, drop: bool) -> None:
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        current = asyncio.current_task()
        for sub in list(self._subscribers):
            putters = list(sub.putters)
            sub.putters.clear()
            self._remove(sub)
            for future, _ in putters:
                if not future.done():
                    sub.dropped += 1
                    future.set_exception(
                        BusClosedError(
                            "the event bus was closed without draining while this publish "
                            f"waited for room in the mailbox of {sub.describe()}"
                        )
                    )
            worker = sub.worker
            if drop and worker is not None and worker is not current and not worker.done():
                worker.cancel()
        self._invalidate()
        fanouts = list(self._fanouts.values())
        self._fanouts.clear()
        for fanout in fanouts:
            observers, fanout.observers = fanout.observers, ()
            for observer in observers:
                try:
                    observer.on_completed()
                except Exception:
                    _log.exception("an observer of %r raised on completion", fanout.pattern.text)
        if not self._pending and self._drainers:
            self._wake_drainers()

    async def __aenter__(self) -> AsyncEventBus:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close: drain when the block ended normally, drop when it raised."""
        await self.aclose(drain=exc_type is None)

    # -- introspection -----------------------------------------------------------------------

    def statistics(self) -> BusStatistics:
        """The bus's counts, as a frozen record (see :class:`BusStatistics`)."""
        delivered = self._retired_delivered
        failed = self._retired_failed + self._observer_failures
        dropped = self._retired_dropped
        for sub in self._members:
            delivered += sub.delivered
            failed += sub.failed
            dropped += sub.dropped
        patterns = {s.pattern.text for s in self._subscribers}
        patterns.update(f.pattern.text for f in self._fanouts.values())
        return BusStatistics(
            state=self._state,
            topics=len(patterns),
            subscribers=len(self._subscribers),
            observers=sum(len(f.observers) for f in self._fanouts.values()),
            published=self._published,
            delivered=delivered,
            failed=failed,
            dropped=dropped,
            backlog=self._pending,
        )

    def subscriptions(self) -> tuple[BusSubscription, ...]:
        """The active handler subscriptions, in subscription order."""
        return tuple(s.handle or BusSubscription(self, s) for s in self._subscribers)

    def __repr__(self) -> str:
        return (
            f"<AsyncEventBus {self._state.value}: {len(self._subscribers)} subscriber(s), "
            f"backlog {self._pending}>"
        )


_BUS_OPTIONS: Final = ("buffer_size", "policy", "clock")


def create_async_event_bus(config: AsyncFlowConfig | None = None, **options: Any) -> AsyncEventBus:
    """Build an :class:`AsyncEventBus` (the guide's factory).

    ``options`` are the bus's keyword arguments (``buffer_size``, ``policy``,
    ``clock``) or config options applied to ``config`` (e.g.
    ``event_bus_buffer_size=100``); an unknown name raises
    :class:`~rxflows.ConfigurationError` with the closest valid one.

    Example:
        >>> event_bus = create_async_event_bus()
        >>> small = create_async_event_bus(buffer_size=10, policy="drop_oldest")
    """
    config = config_or_default(config)
    config_names = AsyncFlowConfig.option_names()
    bus_options: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    for name, value in options.items():
        if name in _BUS_OPTIONS:
            bus_options[name] = value
        elif name in config_names:
            changes[name] = value
        else:
            known = (*_BUS_OPTIONS, *config_names)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"unknown option {name!r} for create_async_event_bus{hint} (bus options: "
                f"{', '.join(_BUS_OPTIONS)}; or any AsyncFlowConfig option)",
                field=name,
                value=value,
            )
    if changes:
        config = config.replace(**changes)
    return AsyncEventBus(config, **bus_options)
