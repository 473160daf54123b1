"""``retry``: resubscribe to a failed source after a back-off chosen by a RetryPolicy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from .._clock import as_clock
from .._errors import LoopManagerError
from .._retry import RetryPolicy, RetryRun
from .._scheduling import loop_scheduler

_T = TypeVar("_T")


def _default_scheduler() -> abc.SchedulerBase:
    try:
        return loop_scheduler()
    except RuntimeError:
        raise LoopManagerError(
            "ops.retry needs a scheduler to wait on between attempts: subscribe inside a "
            "running asyncio loop, pass a scheduler to subscribe(), or pass "
            "scheduler=rxflows.loop_scheduler(loop)"
        ) from None


def retry_(
    policy: RetryPolicy, scheduler: abc.SchedulerBase | None
) -> Callable[[Observable[_T]], Observable[_T]]:
    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = scheduler or subscribe_scheduler or _default_scheduler()
            # An explicit clock on the policy wins; else time is the scheduler's.
            clock = as_clock(policy.clock if policy.clock is not None else sched)
            run = RetryRun(policy, clock, "ops.retry")
            current = SerialDisposable()

            def on_error(error: Exception) -> None:
                try:
                    delay = run.failed(error)
                except Exception as hook_error:  # on_retry, retry_if or an events observer
                    if hook_error.__context__ is None:
                        hook_error.__context__ = error
                    observer.on_error(hook_error)
                    return
                if delay is None:
                    observer.on_error(error)
                else:
                    current.disposable = sched.schedule_relative(delay, attempt)

            def attempt(_: abc.SchedulerBase | None = None, __: Any = None) -> None:
                if current.is_disposed:
                    return
                run.begin()
                # Assigned before subscribing: a source that fails synchronously replaces
                # it with the timer, and the subscription made here is then disposed.
                inner = SingleAssignmentDisposable()
                current.disposable = inner
                inner.disposable = source.subscribe(
                    observer.on_next, on_error, observer.on_completed, scheduler=sched
                )

            attempt()
            return current

        return Observable(subscribe)

    return operator
