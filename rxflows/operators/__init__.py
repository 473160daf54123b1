"""rxflows operators, to use in ``pipe`` beside RxPY's own.

Import them the way RxPY users import theirs::

    from reactivex import operators as rx_ops
    from rxflows import operators as ops

    source.pipe(rx_ops.filter(is_video), ops.map_async(download, max_concurrent=4))

Each operator lives in a private module; this facade holds its signature and
documentation, and imports the implementation lazily.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from reactivex import Observable, abc

from .._config import DEFAULT_CONFIG
from .._errors import ConfigurationError

if TYPE_CHECKING:
    from ._on_backpressure import BackpressurePolicy, OnBackpressure

__all__ = ["map_async", "on_backpressure"]

_T = TypeVar("_T")
_R = TypeVar("_R")


def map_async(
    fn: Callable[[_T], Awaitable[_R]],
    max_concurrent: int | None = None,
    ordered: bool = False,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_R]]:
    """Map each item through a coroutine function, at most ``max_concurrent`` at once.

    .. code::

        ---a---b---c---|
        [ map_async(f, max_concurrent=2) ]
        -----f(a)--f(b)-f(c)|

    Results are emitted as they finish (``ordered=False``) or in source order
    (``ordered=True``: a finished result waits for the ones before it without holding
    a slot; a demand-aware consumer bounds how many wait, a plain subscriber does
    not, so a never-ending head item makes them pile up). The first exception
    raised by ``fn`` cancels the work in flight and reaches the subscriber
    unwrapped; an upstream error does the same. Disposing the subscription cancels
    the work in flight.

    ``map_async`` is demand-aware: fed by a credit-based source
    (``rxflows.from_iterable``, ``rxflows.from_async_iterable``,
    ``ops.on_backpressure``) it pulls items only when a slot is free, and it asks no
    more of its source than its own consumer asked of it.

    Args:
        fn: An ``async def`` function (or any callable returning an awaitable) of one
            item. A callable returning a plain value fails the stream with TypeError.
        max_concurrent: Most coroutines running at once; default
            ``AsyncFlowConfig().max_concurrent_tasks`` (100).
        ordered: Emit results in source order.
        scheduler: The scheduler whose loop runs the coroutines; default the one
            given at subscribe time, else the running loop's.

    Returns:
        An operator function from an observable of items to an observable of results.

    Example:
        >>> async def double(x: int) -> int:
        ...     return 2 * x
        >>> doubled = rxflows.from_iterable([1, 2, 3]).pipe(ops.map_async(double, ordered=True))
    """
    from ._map_async import map_async_

    if not callable(fn):
        raise TypeError(f"map_async needs a coroutine function, got {fn!r}")
    limit = DEFAULT_CONFIG.max_concurrent_tasks if max_concurrent is None else max_concurrent
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(
            f"max_concurrent must be a positive int or None, got {max_concurrent!r}",
            field="max_concurrent",
            value=max_concurrent,
        )
    return map_async_(fn, limit, bool(ordered), scheduler)


def on_backpressure(
    size: int,
    policy: BackpressurePolicy | str = "drop_oldest",
    *,
    on_drop: Callable[[Any], object] | None = None,
) -> OnBackpressure[Any]:
    """A bounded buffer between a source that pushes and a consumer that pulls.

    .. code::

        -a-b-c-d-e-|          (a Subject pushes; consumer asks for 1, then later 1 more)
        [ on_backpressure(2, "drop_oldest") ]
        -a-------d-e|         (b and c were dropped while the buffer held 2)

    Demand-aware consumers (``ops.map_async``, ``rxflows.to_async_iterator``) take
    items from the buffer as they have room; a plain Rx subscriber asks for
    everything, so items pass straight through. Place it directly before the
    demand-aware consumer.

    Policies when the buffer is full (see :class:`BackpressurePolicy`):
    ``"block"`` (only for credit-based sources: asks the source for no more than
    fits), ``"drop_oldest"``, ``"drop_newest"``, ``"keep_latest"`` (the newest
    buffered item is replaced), ``"error"`` (deliver what is buffered, then fail with
    :class:`~rxflows.BackpressureError`).

    Args:
        size: Items the buffer holds (a positive int).
        policy: A :class:`BackpressurePolicy` or its string value.
        on_drop: Called with each dropped item.

    Returns:
        The operator; its ``statistics()`` counts items received, emitted and dropped
        over all its subscriptions, and ``dropped`` the items dropped.

    Example:
        >>> buffer = ops.on_backpressure(100, "drop_oldest")
        >>> events = subject.pipe(buffer, ops.map_async(handle, max_concurrent=4))
        >>> buffer.statistics().dropped
        0
    """
    from ._on_backpressure import OnBackpressure

    return OnBackpressure(size, policy, on_drop)
