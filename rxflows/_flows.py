"""The six flow patterns of the guide, each an observable pipeline.

Every flow builds an ``Observable`` (``flow.observable(...)``) and runs it on the
running loop's scheduler (``await flow.execute(...)``). The pipelines are made of
``map_async`` (bounded concurrency, demand-aware) over credit-based sources, plus
RxPY's ``merge``/``zip`` for fan-in.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import reactivex
from reactivex import Observable
from reactivex import operators as rx_ops

from . import operators as ops
from ._bridges import collect, from_async_iterable, from_iterable, to_async_iterator
from ._config import AsyncFlowConfig, config_or_default
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._executor import Executor

__all__ = [
    "AsyncFlowPattern",
    "FanInFlow",
    "FanOutFlow",
    "ParallelFlow",
    "PipelineFlow",
    "SequentialFlow",
    "StreamingFlow",
]

_T = TypeVar("_T")
_R = TypeVar("_R")

TaskFactory = Callable[[], Awaitable[_T]]
"""A zero-argument callable returning an awaitable: ``async def task(): ...``."""


def _call(factory: TaskFactory[_T]) -> Awaitable[_T]:
    return factory()


def _check_callables(what: str, functions: Iterable[Any], hint: str) -> None:
    """Reject a sized collection of non-callables at once, naming the bad entry.

    Coroutine objects (``[task()]`` instead of ``[task]``) are closed, so they do not
    also warn that they were never awaited.
    """
    if not isinstance(functions, Sequence):
        return
    bad = [(i, f) for i, f in enumerate(functions) if not callable(f)]
    if not bad:
        return
    for f in functions:
        if inspect.iscoroutine(f):
            f.close()
    index, value = bad[0]
    fix = (
        f"pass the function itself ({what}=[fn], not [fn()]), or a lambda: lambda: fn(arg)"
        if inspect.iscoroutine(value)
        else hint
    )
    raise TypeError(f"{what}[{index}] must be {hint}, got {value!r}; {fix}")


def _limit(value: int | None, default: int, name: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{name} must be a positive int or None, got {value!r}", field=name, value=value
        )
    return value


def _to_observable(source: Any, what: str) -> Observable[Any]:
    if isinstance(source, Observable):
        return source
    if hasattr(source, "__aiter__"):
        return from_async_iterable(source)
    if isinstance(source, Iterable) and not isinstance(source, str | bytes):
        return from_iterable(source)
    raise TypeError(
        f"{what} must be an async iterable (e.g. an async generator), an iterable or an "
        f"Observable, got {type(source).__name__}"
    )


class AsyncFlowPattern:
    """Base of the flow patterns: holds the config whose limits the flow obeys."""

    def __init__(self, config: AsyncFlowConfig | None = None) -> None:
        self.config = config_or_default(config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_concurrent_tasks={self.config.max_concurrent_tasks})"


class SequentialFlow(AsyncFlowPattern):
    """Run zero-argument coroutine functions one after another.

    Example:
        >>> results = await SequentialFlow(config).execute([task1, task2])
    """

    def observable(self, tasks: Iterable[TaskFactory[_T]]) -> Observable[_T]:
        """An observable of each task's result, one task at a time, in order."""
        _check_callables("tasks", tasks, "a zero-argument coroutine function")
        return from_iterable(tasks).pipe(ops.map_async(_call, 1, ordered=True))

    async def execute(self, tasks: Iterable[TaskFactory[_T]]) -> list[_T]:
        """The results in order; the first error stops the run and is raised unwrapped."""
        return await collect(self.observable(tasks))


class ParallelFlow(AsyncFlowPattern):
    """Run zero-argument coroutine functions concurrently, at most
    ``config.max_concurrent_tasks`` at once.

    Example:
        >>> results = await ParallelFlow(config).execute([lambda u=u: download(u) for u in urls])
    """

    def observable(
        self,
        tasks: Iterable[TaskFactory[_T]],
        *,
        ordered: bool = True,
        max_concurrent: int | None = None,
    ) -> Observable[_T]:
        """An observable of the results, in input order (or as they finish with
        ``ordered=False``)."""
        _check_callables("tasks", tasks, "a zero-argument coroutine function")
        limit = _limit(max_concurrent, self.config.max_concurrent_tasks, "max_concurrent")
        return from_iterable(tasks).pipe(ops.map_async(_call, limit, ordered=ordered))

    async def execute(
        self, tasks: Iterable[TaskFactory[_T]], *, max_concurrent: int | None = None
    ) -> list[_T]:
        """The results in input order. The first error cancels the tasks still running
        and is raised unwrapped."""
        return await collect(self.observable(tasks, max_concurrent=max_concurrent))


class StreamingFlow(AsyncFlowPattern):
    """Process an async stream item by item, with bounded concurrency and backpressure.

    Example:
        >>> async for result in StreamingFlow(config).execute(url_stream(), process_video):
        ...     print(result)
    """

    @overload
    def observable(
        self,
        source: AsyncIterable[_T] | Iterable[_T] | Observable[_T],
        processor: Callable[[_T], Awaitable[_R]],
        *,
        ordered: bool = False,
        max_concurrent: int | None = None,
        executor: None = None,
    ) -> Observable[_R]: ...

    @overload
    def observable(
        self,
        source: AsyncIterable[_T] | Iterable[_T] | Observable[_T],
        processor: Callable[[_T], _R],
        *,
        ordered: bool = False,
        max_concurrent: int | None = None,
        executor: Executor,
    ) -> Observable[_R]: ...

    def observable(
        self,
        source: AsyncIterable[_T] | Iterable[_T] | Observable[_T],
        processor: Callable[[_T], Any],
        *,
        ordered: bool = False,
        max_concurrent: int | None = None,
        executor: Executor | None = None,
    ) -> Observable[Any]:
        """The processed results as an observable (as they finish, or in source order).

        With ``executor``, ``processor`` is a plain (sync) function run through it
        (a thread or process pool, a Dask cluster), ``max_concurrent`` calls at most.
        """
        if not callable(processor):
            raise TypeError(f"processor must be a coroutine function, got {processor!r}")
        limit = _limit(max_concurrent, self.config.max_concurrent_tasks, "max_concurrent")
        if executor is not None:
            return _to_observable(source, "source").pipe(
                ops.map_async(processor, limit, ordered=ordered, executor=executor)
            )
        return _to_observable(source, "source").pipe(
            ops.map_async(processor, limit, ordered=ordered)
        )

    @overload
    def execute(
        self,
        source: AsyncIterable[_T] | Iterable[_T] | Observable[_T],
        processor: Callable[[_T], Awaitable[_R]],
        *,
        ordered: bool = False,
        max_concurrent: int | None = None,
        executor: None = None,
    ) -> AsyncGenerator[_R, None]: ...

    @overload
    def execute(
        self,
        source: AsyncIterable[_T] | Iterable[_T] | Observable[_T],
        processor: Callable[[_T], _R],
        *,
        ordered: bool = False,
        max_concurrent: int | None = None,
        executor: Executor,
    ) -> AsyncGenerator[_R, None]: ...

    def execute(
        self,
        source: AsyncIterable[_T] | Iterable[_T] | Observable[_T],
        processor: Callable[[_T], Any],
        *,
        ordered: bool = False,
        max_concurrent: int | None = None,
        executor: Executor | None = None,
    ) -> AsyncGenerator[Any, None]:
        """An async iterator (an async generator: it has ``aclose()``) of results.

        The source is read only while fewer than ``max_concurrent`` items are being
        processed and fewer than ``config.stream_buffer_size`` results wait for the
        consumer, so an endless fast source never runs ahead. Closing the iterator
        (``break`` out of ``async for``, or ``aclose()``) cancels the work in flight
        and closes the source. With ``executor``, ``processor`` is a sync function
        run through it (see :meth:`observable`).
        """
        limit = _limit(max_concurrent, self.config.max_concurrent_tasks, "max_concurrent")
        stream: Observable[Any] = (
            self.observable(source, processor, ordered=ordered, max_concurrent=limit)
            if executor is None
            else self.observable(
                source, processor, ordered=ordered, max_concurrent=limit, executor=executor
            )
        )
        return to_async_iterator(stream, prefetch=limit + self.config.stream_buffer_size)


class PipelineFlow(AsyncFlowPattern):
    """Pass data through stages; each stage gets the previous stage's output.

    Example:
        >>> encoded = await PipelineFlow(config).execute("video.mp4", [download, process, encode])
    """

    def operator(
        self, stages: Sequence[Callable[[Any], Awaitable[Any]]], *, max_concurrent: int = 1
    ) -> Callable[[Observable[Any]], Observable[Any]]:
        """The stages as one Rx operator for a stream: every stage runs concurrently
        on different items (stage 2 works on item 1 while stage 1 takes item 2), each
        with up to ``max_concurrent`` items, and items keep their order."""
        _check_callables("stages", stages, "a coroutine function of one argument")
        limit = _limit(max_concurrent, 1, "max_concurrent")
        steps = [ops.map_async(stage, limit, ordered=True) for stage in stages]

        def apply(source: Observable[Any]) -> Observable[Any]:
            return source.pipe(*steps) if steps else source

        return apply

    def observable(
        self, data: Any, stages: Sequence[Callable[[Any], Awaitable[Any]]]
    ) -> Observable[Any]:
        """An observable of the one final result."""
        return from_iterable([data]).pipe(self.operator(stages))

    async def execute(self, data: Any, stages: Sequence[Callable[[Any], Awaitable[Any]]]) -> Any:
        """The last stage's output (``data`` itself when there are no stages)."""
        results = await collect(self.observable(data, stages))
        return results[0]


class FanOutFlow(AsyncFlowPattern):
    """Give the same data to every processor, concurrently.

    Example:
        >>> results = await FanOutFlow(config).execute("shared_data", [thumbnail, captions])
    """

    def observable(
        self, data: _T, processors: Sequence[Callable[[_T], Awaitable[_R]]]
    ) -> Observable[_R]:
        """An observable of each processor's result, in processor order."""
        _check_callables("processors", processors, "a coroutine function of one argument")

        def run(processor: Callable[[_T], Awaitable[_R]]) -> Awaitable[_R]:
            return processor(data)

        limit = self.config.max_concurrent_tasks
        return from_iterable(processors).pipe(ops.map_async(run, limit, ordered=True))

    async def execute(
        self, data: _T, processors: Sequence[Callable[[_T], Awaitable[_R]]]
    ) -> list[_R]:
        """Results in processor order; the first error cancels the others and is raised."""
        return await collect(self.observable(data, processors))


class FanInFlow(AsyncFlowPattern):
    """Merge several async streams and aggregate what they produce.

    Example:
        >>> summary = await FanInFlow(config).execute([stream1(), stream2()], aggregate)
    """

    def observable(
        self,
        streams: Sequence[AsyncIterable[Any] | Observable[Any]],
        *,
        mode: Literal["merge", "zip"] = "merge",
    ) -> Observable[Any]:
        """The streams' items merged (each stream's order kept), or zipped into tuples
        (``mode="zip"``, ending with the shortest stream)."""
        if not isinstance(streams, Sequence) or isinstance(streams, str | bytes):  # type: ignore[unreachable]  # a user may pass a str at run time
            raise TypeError(
                f"streams must be a list of async iterables, got {type(streams).__name__}"
            )
        sources = [_to_observable(s, f"streams[{i}]") for i, s in enumerate(streams)]
        if mode == "merge":
            limit = self.config.max_concurrent_tasks
            return reactivex.from_iterable(sources).pipe(rx_ops.merge(max_concurrent=limit))
        if mode == "zip":
            return reactivex.zip(*sources) if sources else reactivex.empty()
        raise ConfigurationError(
            f"mode must be 'merge' or 'zip', got {mode!r}", field="mode", value=mode
        )

    async def execute(
        self,
        streams: Sequence[AsyncIterable[Any] | Observable[Any]],
        aggregate: Callable[[list[Any]], Any],
        *,
        mode: Literal["merge", "zip"] = "merge",
    ) -> Any:
        """``aggregate(items)`` over every item (a list; tuples in zip mode).

        ``aggregate`` may be a plain or an ``async def`` function; its result (awaited
        if it is awaitable) is returned.
        """
        if not callable(aggregate):
            raise TypeError(f"aggregate must be a function of a list, got {aggregate!r}")
        items = await collect(self.observable(streams, mode=mode))
        result = aggregate(items)
        if inspect.isawaitable(result):
            return await result
        return result
