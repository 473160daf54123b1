"""Where blocking or CPU-heavy *sync* functions run: a thread, a process, a cluster.

DESIGN rule 7: CPU-heavy or blocking work never runs on the event loop. An
:class:`Executor` is the one interface rxflows uses to run a sync function
somewhere else and await its result:

* :class:`LocalExecutor` runs it in a thread pool or a process pool of this machine
  (``concurrent.futures`` under ``loop.run_in_executor``);
* :data:`DEFAULT_EXECUTOR` runs it in the running loop's default thread pool (the
  one ``asyncio.to_thread`` uses), and owns nothing;
* :class:`rxflows.dask.DaskExecutor` (the ``dask`` extra) runs it on a Dask cluster.

``ops.map_async(fn, executor=...)``, :class:`~rxflows.StreamingFlow` and
:class:`~rxflows.WorkflowStep` take an executor and then expect a sync ``fn``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import multiprocessing
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Literal, ParamSpec, Protocol, Self, TypeVar, runtime_checkable

from ._errors import ClosedResourceError, ConfigurationError
from ._resource import AsyncResource

__all__ = [
    "DEFAULT_EXECUTOR",
    "Executor",
    "LocalExecutor",
    "check_executor",
    "check_sync_function",
    "submitting",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

ExecutorKind = Literal["thread", "process"]


@runtime_checkable
class Executor(Protocol):
    """Runs a sync callable somewhere (a thread, a process, a cluster) and hands back
    its result.

    ``await executor.submit(fn, *args, **kwargs)`` returns ``fn(*args, **kwargs)`` or
    raises what it raised, with its original type. Cancelling the await cancels the
    call if it has not started; a call already running is not interrupted (threads,
    processes and Dask tasks cannot be stopped from outside): its result is
    discarded. ``aclose()`` (idempotent; also on leaving ``async with``) releases
    what the executor owns.

    Example:
        >>> async with rxflows.LocalExecutor("process", max_workers=2) as executor:
        ...     digest = await executor.submit(hash_file, "talk.mp4")
    """

    async def submit(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """``fn(*args, **kwargs)``, run by the executor; its result or its exception."""
        ...

    async def aclose(self) -> None:
        """Release what the executor owns; calls still pending are cancelled."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class LocalExecutor(AsyncResource):
    """Runs sync functions in a thread pool or a process pool of this machine.

    The pool is created at the first :meth:`submit` and shut down by :meth:`aclose`
    (calls still queued are cancelled; running ones are waited for).

    * ``kind="thread"``: for blocking I/O and for code that releases the GIL (most
      C extensions). Pure-Python CPU work gains nothing: the GIL runs one thread at
      a time.
    * ``kind="process"``: for pure-Python CPU work. The function and its arguments
      are pickled, so ``fn`` must be importable (a module-level function, not a
      lambda or a closure); worker processes are started with ``spawn`` (safe
      beside the event loop's threads).

    Cancelling an awaiting :meth:`submit` cancels the call if it is still queued;
    a call already running in a thread or a process is **not** interrupted: it
    runs to the end and its result is dropped.

    Args:
        kind: ``"thread"`` (default) or ``"process"``.
        max_workers: Most threads or processes; default ``concurrent.futures``'
            (``min(32, cpus + 4)`` threads, ``cpus`` processes).

    Raises:
        ConfigurationError: ``kind`` or ``max_workers`` is invalid.

    Example:
        >>> async with LocalExecutor("process", max_workers=2) as executor:
        ...     results = await collect(
        ...         rxflows.from_iterable(frames).pipe(
        ...             ops.map_async(score_frame, max_concurrent=2, executor=executor)
        ...         )
        ...     )
    """

    __slots__ = ("_closed", "_kind", "_loop_default", "_max_workers", "_pool")

    def __init__(self, kind: ExecutorKind = "thread", max_workers: int | None = None) -> None:
        if kind not in ("thread", "process"):
            raise ConfigurationError(
                f"kind must be 'thread' or 'process', got {kind!r}", field="kind", value=kind
            )
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ConfigurationError(
                f"max_workers must be a positive int or None, got {max_workers!r}",
                field="max_workers",
                value=max_workers,
            )
        self._kind: ExecutorKind = kind
        self._max_workers = max_workers
        self._pool: concurrent.futures.Executor | None = None
        self._closed = False
        self._loop_default = False

    @classmethod
    def _running_loop_default(cls) -> LocalExecutor:
        executor = cls("thread")
        executor._loop_default = True
        return executor

    @property
    def kind(self) -> ExecutorKind:
        """``"thread"`` or ``"process"``."""
        return self._kind

    @property
    def max_workers(self) -> int | None:
        """The pool's size, or None for ``concurrent.futures``' default."""
        return self._max_workers

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called (never for :data:`DEFAULT_EXECUTOR`)."""
        return self._closed

    async def submit(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """``fn(*args, **kwargs)`` in the pool; its result, or its exception unwrapped.

        Raises:
            ClosedResourceError: the executor is closed (also raised in a call that
                was still queued when :meth:`aclose` cancelled it).

        Example:
            >>> size = await executor.submit(os.path.getsize, "talk.mp4")
        """
        self._check_open()
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        future = loop.run_in_executor(self._ensure_pool(), call)
        try:
            return await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._closed and (task is None or not task.cancelling()):
                # Not our caller's cancellation: aclose() cancelled the queued call.
                raise ClosedResourceError(
                    "LocalExecutor.submit(): the executor was closed before the call ran"
                ) from None
            raise

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedResourceError("LocalExecutor.submit(): the executor is closed")

    def _ensure_pool(self) -> concurrent.futures.Executor | None:
        if self._loop_default:
            return None
        pool = self._pool
        if pool is None:
            if self._kind == "thread":
                pool = concurrent.futures.ThreadPoolExecutor(
                    self._max_workers, thread_name_prefix="rxflows-executor"
                )
            else:
                pool = concurrent.futures.ProcessPoolExecutor(
                    self._max_workers, mp_context=multiprocessing.get_context("spawn")
                )
            self._pool = pool
        return pool

    async def aclose(self) -> None:
        """Shut the pool down: cancel queued calls, wait for running ones. Idempotent.

        On :data:`DEFAULT_EXECUTOR` it does nothing (the loop owns that pool).
        """
        if self._loop_default or self._closed:
            return
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            # Cancel the queued calls now (does not block), then wait for the running ones.
            pool.shutdown(wait=False, cancel_futures=True)
            await asyncio.to_thread(pool.shutdown, wait=True)

    def __repr__(self) -> str:
        if self._loop_default:
            return "DEFAULT_EXECUTOR"
        state = "closed" if self._closed else "open"
        return f"<LocalExecutor {state} kind={self._kind!r} max_workers={self._max_workers!r}>"


DEFAULT_EXECUTOR: Final[LocalExecutor] = LocalExecutor._running_loop_default()
"""Runs sync functions in the running loop's default thread pool (``asyncio.to_thread``'s).

It owns no pool: ``aclose()`` does nothing, and the loop shuts its pool down when
it closes. Use it for blocking I/O; for pure-Python CPU work use
``LocalExecutor("process")`` or a :class:`rxflows.dask.DaskExecutor`.
"""


def check_executor(executor: object, what: str) -> Executor:
    """``executor`` if it is an :class:`Executor`, else a TypeError naming ``what``."""
    if not isinstance(executor, Executor):
        raise TypeError(
            f"{what} must be an rxflows Executor (async submit(fn, *args) and aclose()), "
            f"e.g. rxflows.LocalExecutor() or rxflows.dask.DaskExecutor(), "
            f"got {type(executor).__name__}"
        )
    return executor


def check_sync_function(fn: object, what: str) -> None:
    """Refuse a non-callable or an ``async def`` function given with an executor."""
    if not callable(fn):
        raise TypeError(f"{what} must be a callable, got {fn!r}")
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  # an instance with an async __call__
    ):
        raise TypeError(
            f"with executor=, {what} must be a plain (sync) function: the executor runs "
            f"it in a thread, a process or on a cluster; got the coroutine function {fn!r} "
            "(drop executor= to run it on the event loop)"
        )


def submitting(executor: Executor, fn: Callable[..., _R]) -> Callable[..., Awaitable[_R]]:
    """An async function that runs ``fn(*args)`` through ``executor``."""

    async def submit(*args: Any) -> _R:
        return await executor.submit(fn, *args)

    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    submit.__name__ = submit.__qualname__ = f"submit({name})"
    return submit
