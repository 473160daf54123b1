"""The rxflows exception tree.

Every exception rxflows raises on its own account derives from
:class:`RxFlowsError`, so ``except RxFlowsError`` catches them all. A user's own
exception raised inside a coroutine that rxflows runs reaches the caller
unwrapped, with its original type (unless an API documents otherwise).

Misuse errors also derive from the matching built-in (``ValueError`` or
``TypeError``), so code that already catches those keeps working::

    RxFlowsError
    ├── ConfigurationError (+ ValueError)    a bad or unknown option; names the field,
    │                                         the value and the rule
    ├── BackpressureError                     a bounded buffer overflowed under the
    │                                         ``error`` policy
    ├── CircuitOpenError                      a circuit breaker rejected the call; carries
    │                                         the breaker's name and ``retry_after``
    ├── ClosedResourceError                   used after you closed it (``aclose()``,
    │   │                                     ``shutdown()``)
    │   ├── BusClosedError                    publish/subscribe on a closed event bus
    │   ├── PoolClosedError                   acquire from a connection pool after ``close()``
    │   └── QueueClosedError                  put after a task queue's ``stop()``, or get
    │                                         from a stopped queue with nothing left
    ├── WorkflowError                         a workflow cannot be built or did not succeed
    │   ├── WorkflowValidationError (+ ValueError)  duplicate step, unknown dependency
    │   │   │                                 (with a did-you-mean), empty workflow
    │   │   └── WorkflowCycleError            a dependency cycle; ``cycle`` holds its path
    │   ├── StepFailedError                   ``execute_workflow``: a step failed; carries
    │   │                                     the run's ``result``, the step's error as cause
    │   ├── StepTimeoutError (+ TimeoutError) an attempt of a step overran its ``timeout``
    │   └── CheckpointError                   a step's output cannot be checkpointed (not
    │                                         JSON-serializable) or the store failed
    ├── QueueBusyError (+ RuntimeError)       a task queue already has workers running
    ├── QueueEmptyError (+ asyncio.QueueEmpty)  ``get_nowait()`` on an empty task queue
    ├── QueueFullError (+ asyncio.QueueFull)  ``put_nowait()`` on a full task queue
    ├── TaskTimeoutError (+ TimeoutError)     a queued task overran its ``timeout``
    ├── PoolTimeoutError (+ TimeoutError)     no pooled connection within ``acquire_timeout``
    ├── PoolReleaseError (+ ValueError)       a connection released twice or to the wrong pool
    ├── ResponseTooLargeError                 an HTTP body over the pool's ``max_bytes`` cap
    ├── UnsafeURLError (+ ValueError)         not http(s), or leaves the HTTP pool's host
    ├── MediaError                            ffmpeg failed (its message tail attached), or
    │   │                                     a media tool is missing
    │   └── UnsupportedMediaError (+ ValueError)  not a video, no audio track, longer
    │                                         than ``max_duration``; ``problem`` names it
    └── LoopManagerError (+ RuntimeError)     the event-loop manager cannot do what was
                                              asked (uvloop missing, loop already running)

Later components add their branches here (circuit breaker, workflow, pools).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._workflow_model import WorkflowResult

__all__ = [
    "BackpressureError",
    "BusClosedError",
    "CheckpointError",
    "CircuitOpenError",
    "ClosedResourceError",
    "ConfigurationError",
    "LoopManagerError",
    "MediaError",
    "PoolClosedError",
    "PoolReleaseError",
    "PoolTimeoutError",
    "QueueBusyError",
    "QueueClosedError",
    "QueueEmptyError",
    "QueueFullError",
    "ResponseTooLargeError",
    "RxFlowsError",
    "StepFailedError",
    "StepTimeoutError",
    "TaskTimeoutError",
    "UnsafeURLError",
    "UnsupportedMediaError",
    "WorkflowCycleError",
    "WorkflowError",
    "WorkflowValidationError",
]


class RxFlowsError(Exception):
    """Base class of every exception raised by rxflows itself."""


class ConfigurationError(RxFlowsError, ValueError):
    """A configuration value or argument is invalid.

    ``field`` names the offending option, ``value`` is what was given.
    """

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class BackpressureError(RxFlowsError):
    """A bounded buffer overflowed while its policy was ``error``."""

    def __init__(self, message: str, *, capacity: int) -> None:
        super().__init__(message)
        self.capacity = capacity


class CircuitOpenError(RxFlowsError):
    """A circuit breaker rejected the call without running it.

    ``name`` is the breaker's name; ``retry_after`` the seconds (on the breaker's
    clock) until it will let a trial call through, or None when that is not known
    (forced open, or half-open with every trial permit taken).
    """

    def __init__(self, message: str, *, name: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.name = name
        self.retry_after = retry_after


class ClosedResourceError(RxFlowsError):
    """The resource was closed by its owner and cannot be used any more."""


class BusClosedError(ClosedResourceError):
    """An event bus was used (publish, subscribe, topic, wait) after ``aclose()``.

    Also raised by a ``publish`` that was waiting for room in a full mailbox when
    the bus was closed without draining, and by ``wait_for`` when the bus closes
    before the awaited event arrives.
    """


class LoopManagerError(RxFlowsError, RuntimeError):
    """The event-loop manager cannot run the coroutine as asked."""


class QueueClosedError(ClosedResourceError):
    """A task queue was used after ``stop()``: a put, or a get once nothing is left."""


class PoolClosedError(ClosedResourceError):
    """A connection pool was used (acquire, request) after ``close()`` began.

    Also raised in every acquirer still waiting for a connection when the pool closes.
    """


class PoolTimeoutError(RxFlowsError, TimeoutError):
    """No pooled connection became available within the acquire timeout.

    ``timeout`` is the limit in seconds (0 for ``acquire_nowait()``). This is the
    wait for a *slot*, separate from any I/O timeout of the connection itself.
    """

    def __init__(self, message: str, *, timeout: float) -> None:
        super().__init__(message)
        self.timeout = timeout


class PoolReleaseError(RxFlowsError, ValueError):
    """A connection was released that is not checked out from this pool: released
    twice, or handed to a pool it does not belong to."""


class ResponseTooLargeError(RxFlowsError):
    """An HTTP response body exceeded the ``max_bytes`` cap; it was cut off.

    ``url`` is the request URL, ``limit`` the cap in bytes, ``received`` the bytes
    read before stopping (or the announced ``Content-Length``).
    """

    def __init__(self, message: str, *, url: str, limit: int, received: int) -> None:
        super().__init__(message)
        self.url = url
        self.limit = limit
        self.received = received


class UnsafeURLError(RxFlowsError, ValueError):
    """A URL an HTTP pool refuses: not http(s), or (with ``allow_other_hosts=False``)
    pointing outside the pool's ``base_url`` origin. ``url`` is the URL."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class MediaError(RxFlowsError):
    """A media operation failed: ffmpeg exited with an error, or the media tools
    (the ``video`` extra) are not installed.

    ``path`` is the input concerned (when there is one), ``returncode`` ffmpeg's exit
    status (None when it did not run), ``stderr`` the tail of its error output.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        returncode: int | None = None,
        stderr: str = "",
    ) -> None:
        super().__init__(message)
        self.path = path
        self.returncode = returncode
        self.stderr = stderr


class UnsupportedMediaError(MediaError, ValueError):
    """The input is readable but not something the video processor accepts.

    ``problem`` names what is wrong: ``"not_media"`` (not a media file, or corrupt),
    ``"no_video"``, ``"no_audio"`` or ``"too_long"`` (over ``max_duration``).
    """

    def __init__(
        self, message: str, *, problem: str, path: str | None = None, stderr: str = ""
    ) -> None:
        super().__init__(message, path=path, stderr=stderr)
        self.problem = problem


class QueueBusyError(RxFlowsError, RuntimeError):
    """A task queue already has workers (``start()`` or ``process_tasks()`` running)."""


class QueueEmptyError(RxFlowsError, asyncio.QueueEmpty):
    """``get_nowait()`` found no queued task (an ``asyncio.QueueEmpty`` too)."""


class QueueFullError(RxFlowsError, asyncio.QueueFull):
    """``put_nowait()`` found the task queue full (an ``asyncio.QueueFull`` too).

    ``maxsize`` is the queue's capacity.
    """

    def __init__(self, message: str, *, maxsize: int) -> None:
        super().__init__(message)
        self.maxsize = maxsize


class TaskTimeoutError(RxFlowsError, TimeoutError):
    """A task run by a task queue did not finish within its ``timeout``.

    The queue cancelled the attempt. ``task_id`` names the task, ``timeout`` is its
    limit in seconds, ``attempt`` the attempt that ran out (1 for the first).
    """

    def __init__(self, message: str, *, task_id: str, timeout: float, attempt: int) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.timeout = timeout
        self.attempt = attempt


class WorkflowError(RxFlowsError):
    """A workflow cannot be built as asked, or a run of it did not succeed."""


class WorkflowValidationError(WorkflowError, ValueError):
    """The workflow's graph is invalid: a duplicate step name, a dependency on a step
    that does not exist (the message suggests the closest name), or no steps at all.

    ``problems`` lists every problem found, one message each.
    """

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class WorkflowCycleError(WorkflowValidationError):
    """The steps' dependencies form a cycle.

    ``cycle`` is its path, first step repeated at the end: ``("a", "b", "c", "a")``
    means a runs before b, b before c, and c before a.
    """

    def __init__(self, message: str, *, cycle: tuple[str, ...]) -> None:
        super().__init__(message)
        self.cycle = cycle


class StepFailedError(WorkflowError):
    """A workflow run had a failed step (``execute_workflow`` raises it).

    ``step`` names the first step that failed, ``result`` is the whole run's
    :class:`~rxflows.WorkflowResult` (every step's status, output and error), and
    ``__cause__`` is the first failed step's own exception.
    """

    def __init__(self, message: str, *, step: str, result: WorkflowResult) -> None:
        super().__init__(message)
        self.step = step
        self.result = result


class StepTimeoutError(WorkflowError, TimeoutError):
    """An attempt of a workflow step ran longer than the step's ``timeout``.

    The step was cancelled when the time was up. ``step`` is its name, ``timeout``
    the limit in seconds, ``attempt`` the attempt that overran (1 for the first).
    """

    def __init__(self, message: str, *, step: str, timeout: float, attempt: int) -> None:
        super().__init__(message)
        self.step = step
        self.timeout = timeout
        self.attempt = attempt


class CheckpointError(WorkflowError):
    """A checkpoint store could not save or load a step's output.

    Raised (as the step's error) when the output is not JSON-serializable; ``step``
    names the step, ``run_id`` the run.
    """

    def __init__(self, message: str, *, step: str | None = None, run_id: str | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.run_id = run_id
