"""A workflow run: a DAG of coroutine steps, run with bounded concurrency.

A run executes the engine's plan of the validated graph. Each step is a node that
starts once every one of its dependencies has finished: the moment the last one
reports, the node's trigger rule is decided, and the step is either queued to run or
skipped (naming the root cause), which in turn may decide its own dependents. A
step that several steps depend on runs once; its outcome is a value
(:class:`~rxflows.StepResult`) that every dependent reads, never an exception
thrown across branches, so one failure does not cancel a sibling branch. This is
a step waiting on its dependencies' shared, replayed observables, with the edges
wired as counters rather than one Rx subscription each, which would cost several
times the step itself; each step's outcome is still available as a hot, replayed
observable (:meth:`WorkflowRun.step`), built only when asked for.

Ready steps are run by worker tasks, at most ``max_concurrent`` of them (default
``config.max_concurrent_tasks``), created when there is work and gone when there
is none: a step does not cost a task of its own. A step's attempt runs inside its
worker, under ``asyncio.timeout`` (or a watchdog on an injected clock): when its
time is up the step's coroutine really is cancelled, so its ``finally`` blocks
(killing a child process, deleting a temp file) run. Cancelling the run cancels
every running step the same way.

Every step outcome is also an event on the engine's :class:`~rxflows.AsyncEventBus`
(built only when someone listens: with no subscriber, an event costs two attribute
reads) and an item of :meth:`AsyncWorkflowEngine.observable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import inspect
import logging
from collections import deque
from collections.abc import Callable, Generator, Mapping
from types import CoroutineType, MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from reactivex import Observable
from reactivex.subject import AsyncSubject

from ._clock import LOOP_CLOCK
from ._errors import CheckpointError, ConfigurationError, StepTimeoutError
from ._events import AsyncEventBus
from ._retry import RetryRun
from ._workflow_graph import Plan
from ._workflow_model import (
    StepResult,
    StepStatus,
    TriggerRule,
    WorkflowEvent,
    WorkflowResult,
    WorkflowStatus,
    WorkflowStep,
)
from ._workflow_store import CheckpointStore

if TYPE_CHECKING:
    from ._workflow import AsyncWorkflowEngine

__all__ = ["EVENTS", "NO_INPUT", "Run", "WorkflowRun"]

_log = logging.getLogger("rxflows.workflow")

WORKFLOW_STARTED: Final = "workflow_started"
WORKFLOW_COMPLETED: Final = "workflow_completed"
WORKFLOW_FAILED: Final = "workflow_failed"
WORKFLOW_CANCELLED: Final = "workflow_cancelled"
STEP_STARTED: Final = "step_started"
STEP_COMPLETED: Final = "step_completed"
STEP_FAILED: Final = "step_failed"
STEP_RETRYING: Final = "step_retrying"
STEP_TIMED_OUT: Final = "step_timed_out"
STEP_SKIPPED: Final = "step_skipped"
STEP_CANCELLED: Final = "step_cancelled"
STEP_RESTORED: Final = "step_restored"

EVENTS: Final[tuple[str, ...]] = (
    WORKFLOW_STARTED,
    STEP_STARTED,
    STEP_RETRYING,
    STEP_TIMED_OUT,
    STEP_COMPLETED,
    STEP_FAILED,
    STEP_SKIPPED,
    STEP_CANCELLED,
    STEP_RESTORED,
    WORKFLOW_COMPLETED,
    WORKFLOW_FAILED,
    WORKFLOW_CANCELLED,
)
"""Every topic a workflow run publishes on, roughly in the order they happen."""

_SUCCEEDED: Final = StepStatus.SUCCEEDED
_FAILED: Final = StepStatus.FAILED
_TIMED_OUT: Final = StepStatus.TIMED_OUT
_CANCELLED: Final = StepStatus.CANCELLED
_SKIPPED: Final = StepStatus.SKIPPED

_ALL_SUCCESS: Final = TriggerRule.ALL_SUCCESS
_ONE_SUCCESS: Final = TriggerRule.ONE_SUCCESS
_ONE_FAILED: Final = TriggerRule.ONE_FAILED
_NONE_FAILED: Final = TriggerRule.NONE_FAILED


class _NoInput:
    """The input of a run given none: root steps are then called without arguments."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no input>"


NO_INPUT: Final = _NoInput()


def _listening(bus: AsyncEventBus, topic: str) -> bool:
    """Whether anyone subscribes to ``topic``: so that no event is built for nobody."""
    return bus.has_subscribers(topic)


def _not_awaitable(step: WorkflowStep, value: object) -> TypeError:
    return TypeError(
        f"step {step.name!r}: {step.func!r} returned {type(value).__name__}, not an "
        "awaitable; make it an async def function (wrap blocking code in asyncio.to_thread)"
    )


async def _invoke(step: WorkflowStep, args: tuple[Any, ...]) -> Any:
    breaker = step._breaker
    if breaker is not None:
        return await breaker.call(step._func, *args)
    awaitable = step._func(*args)
    if type(awaitable) is not CoroutineType and not inspect.isawaitable(awaitable):
        raise _not_awaitable(step, awaitable)
    return await awaitable


def _said(result: StepResult) -> str:
    """How a dependency ended, for a skip's reason."""
    name = repr(result.name)
    status = result.status
    if status is _SUCCEEDED:
        return f"{name} succeeded"
    if status is _FAILED:
        return f"{name} failed"
    if status is _TIMED_OUT:
        return f"{name} timed out"
    if status is _CANCELLED:
        return f"{name} was cancelled"
    root = result.root_cause
    return f"{name} was skipped" + (f" (root cause: {root!r})" if root else "")


class Run:
    """The state of one run of a plan: never shared between runs."""

    def __init__(
        self,
        engine: AsyncWorkflowEngine,
        plan: Plan,
        input: Any,
        run_id: str,
        store: CheckpointStore | None,
        listener: Callable[[StepResult], None] | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.engine = engine
        self.plan = plan
        self.steps = plan.steps
        self.run_id = run_id
        self.store = store
        self.listener = listener
        self.loop = loop
        self.bus = engine._bus
        self.workflow = engine._name
        self.limit = engine._limit
        clock = engine._clock
        self.clock = clock
        self.on_loop_clock = clock is LOOP_CLOCK
        self.now: Callable[[], float] = loop.time if clock is LOOP_CLOCK else clock.now
        self.root_args: tuple[Any, ...] = () if input is NO_INPUT else (input,)
        count = len(plan.steps)
        self.remaining = [len(d) for d in plan.deps]
        self.results: list[StepResult | None] = [None] * count
        self.statuses: list[StepStatus | None] = [None] * count
        self.outputs: list[Any] = [None] * count
        self.bad = [False] * count  # failed, or skipped because of a failure upstream
        self.failures = 0
        self.attempts = [0] * count
        self.timeouts: dict[int, StepTimeoutError] = {}
        self.restored: dict[int, Any] = {}
        self.order: list[int] = []
        self.ready: deque[int] = deque()
        self.announce: list[StepResult] = []
        self.subjects: dict[int, AsyncSubject[StepResult]] = {}  # WorkflowRun.step(name)
        self.alive = 0
        self.workers: dict[asyncio.Task[None], None] = {}  # ordered: cancelled in spawn order
        self.finished: asyncio.Future[None] | None = None
        self.stopping = False
        self.cancel_requested = False
        self.begun = False
        self.published = False
        self.fatal: Exception | None = None
        self.status = WorkflowStatus.RUNNING
        self.result: WorkflowResult | None = None
        self.started_at = self.now()
        self.task: asyncio.Task[WorkflowResult] = loop.create_task(
            self._drive(), name=f"rxflows workflow {self.workflow!r} run {run_id}"
        )

    # -- the driver --------------------------------------------------------------------

    async def _drive(self) -> WorkflowResult:
        self.begun = True
        try:
            try:
                if self.cancel_requested:
                    raise asyncio.CancelledError
                if _listening(self.bus, WORKFLOW_STARTED):
                    await self._publish(
                        WORKFLOW_STARTED,
                        WorkflowEvent(
                            WORKFLOW_STARTED, self.run_id, self.workflow, self.started_at
                        ),
                    )
                if self.store is not None:
                    await self._restore(self.store)
                self._seed()
                if self.announce:
                    await self._announce()
                self._spawn(0)
                if self.alive:
                    self.finished = self.loop.create_future()
                    await self.finished
                if self.fatal is not None:
                    raise self.fatal
            except asyncio.CancelledError:
                result = await self._wind_down()
                if not self.cancel_requested:
                    raise
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                return result
            except BaseException:  # the store could not load, or the engine failed
                await self._stop()
                self.status = WorkflowStatus.FAILED
                raise
            return await self._end()
        finally:
            self.engine._runs.discard(self)

    def _seed(self) -> None:
        restored = self.restored
        for i in self.plan.roots:
            if i in restored:
                self._restore_step(i)
                self._release(i)
            else:
                self.ready.append(i)

    def _spawn(self, reserve: int) -> None:
        """Start workers for the ready steps, up to the limit; ``reserve`` of them will
        be taken by the calling worker."""
        if self.stopping:
            return
        extra = len(self.ready) - reserve
        room = self.limit - self.alive
        if extra > room:
            extra = room
        for _ in range(extra):
            self.alive += 1
            self.workers[self.loop.create_task(self._worker())] = None

    async def _worker(self) -> None:
        ready = self.ready
        try:
            while ready and not self.stopping:
                await self._run_step(ready.popleft())
        except Exception as error:  # a bug in the engine: fail the run rather than hang it
            _log.exception("workflow %r run %s: the engine failed", self.workflow, self.run_id)
            if self.fatal is None:
                self.fatal = error
            self.stopping = True
            finished = self.finished
            if finished is not None and not finished.done():
                finished.set_result(None)
        finally:
            self.workers.pop(asyncio.current_task(), None)  # type: ignore[arg-type]  # in a task
            self.alive -= 1
            if self.alive == 0:
                finished = self.finished
                if finished is not None and not finished.done():
                    finished.set_result(None)

    async def _stop(self) -> None:
        """Cancel the running steps, wait for them, mark every unfinished step CANCELLED."""
        self.stopping = True
        workers = [task for task in self.workers if not task.done()]
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.wait(workers)
        now = self.now()
        for i, result in enumerate(self.results):
            if result is None:
                started = self.attempts[i] > 0
                self._record(
                    i,
                    StepResult(
                        self.steps[i].name,
                        _CANCELLED,
                        attempts=self.attempts[i],
                        finished_at=now,
                        reason="the run was cancelled while the step ran"
                        if started
                        else "the run was cancelled before it started",
                    ),
                    True,
                )

    async def _wind_down(self) -> WorkflowResult:
        await self._stop()
        result = self._result(WorkflowStatus.CANCELLED)
        if _listening(self.bus, WORKFLOW_CANCELLED):
            await self._publish(
                WORKFLOW_CANCELLED,
                WorkflowEvent(
                    WORKFLOW_CANCELLED,
                    self.run_id,
                    self.workflow,
                    result.finished_at,
                    duration=result.duration,
                    reason="the run was cancelled",
                    result=result,
                ),
            )
        if self.published:
            await self._drain()
        return result

    async def _end(self) -> WorkflowResult:
        failed = self.failures > 0
        result = self._result(WorkflowStatus.FAILED if failed else WorkflowStatus.SUCCEEDED)
        topic = WORKFLOW_FAILED if failed else WORKFLOW_COMPLETED
        if _listening(self.bus, topic):
            first = result.first_failure
            await self._publish(
                topic,
                WorkflowEvent(
                    topic,
                    self.run_id,
                    self.workflow,
                    result.finished_at,
                    duration=result.duration,
                    output=None if failed else result.outputs,
                    error=first.error if first is not None else None,
                    reason=result.describe() if failed else None,
                    result=result,
                ),
            )
        if self.published:
            await self._drain()
        return result

    def _result(self, status: WorkflowStatus) -> WorkflowResult:
        self.status = status
        names = self.plan.names
        steps: dict[str, StepResult] = {}
        for i, outcome in enumerate(self.results):
            if outcome is not None:
                steps[names[i]] = outcome
        result = WorkflowResult(
            self.run_id,
            status,
            MappingProxyType(steps),
            tuple(names[i] for i in self.order),
            self.started_at,
            self.now(),
            self.workflow,
        )
        self.result = result
        return result

    # -- checkpoints ---------------------------------------------------------------------

    async def _restore(self, store: CheckpointStore) -> None:
        try:
            saved = await store.load(self.run_id)
        except CheckpointError:
            raise
        except Exception as error:
            raise CheckpointError(
                f"checkpoint store {store!r} could not load run {self.run_id!r}: "
                f"{type(error).__name__}: {error}",
                run_id=self.run_id,
            ) from error
        if not isinstance(saved, Mapping):
            raise CheckpointError(
                f"checkpoint store {store!r} returned {type(saved).__name__} from load(); "
                "it must return a mapping of step name to output",
                run_id=self.run_id,
            )
        index = self.plan.index
        for name, output in saved.items():
            i = index.get(name)
            if i is not None:
                self.restored[i] = output

    def _restore_step(self, i: int) -> None:
        result = StepResult(
            self.steps[i].name, _SUCCEEDED, self.restored[i], finished_at=self.now(), restored=True
        )
        self._record(i, result, False)
        self.announce.append(result)

    async def _save(self, store: CheckpointStore, step: WorkflowStep, output: Any) -> None:
        try:
            await store.save(self.run_id, step.name, output)
        except CheckpointError:
            raise
        except Exception as error:
            raise CheckpointError(
                f"checkpoint store {store!r} could not save the output of step {step.name!r} "
                f"(run {self.run_id!r}): {type(error).__name__}: {error}",
                step=step.name,
                run_id=self.run_id,
            ) from error

    # -- steps ---------------------------------------------------------------------------

    async def _run_step(self, i: int) -> None:
        step = self.steps[i]
        deps = self.plan.deps[i]
        if not deps:
            args = self.root_args
        elif len(deps) == 1:
            args = (self.outputs[deps[0]],)
        else:
            outputs = self.outputs
            args = tuple([outputs[d] for d in deps])
        now = self.now
        started = now()
        if _listening(self.bus, STEP_STARTED):
            await self._publish(
                STEP_STARTED,
                WorkflowEvent(STEP_STARTED, self.run_id, self.workflow, started, step.name, 1),
            )
        result: StepResult
        try:
            if step._simple:
                self.attempts[i] = 1
                awaitable = step._func(*args)
                if type(awaitable) is not CoroutineType and not inspect.isawaitable(awaitable):
                    raise _not_awaitable(step, awaitable)
                output = await awaitable
            else:
                output = await self._call(i, step, args)
            if self.store is not None:
                await self._save(self.store, step, output)
        except asyncio.CancelledError as cancelled:
            task = asyncio.current_task()
            if self.stopping or (task is not None and task.cancelling()):
                await self._cancelled(i, step, started, cancelled)
                raise
            # Not a cancellation of the run: the step raised CancelledError on its own.
            result = StepResult(
                step.name,
                _CANCELLED,
                None,
                cancelled,
                self.attempts[i],
                started,
                now(),
                f"step {step.name!r} raised CancelledError (the run was not cancelled)",
            )
        except Exception as error:
            if self.timeouts.get(i) is error:
                result = StepResult(
                    step.name, _TIMED_OUT, None, error, self.attempts[i], started, now(), str(error)
                )
            else:
                result = StepResult(
                    step.name,
                    _FAILED,
                    None,
                    error,
                    self.attempts[i],
                    started,
                    now(),
                    f"{type(error).__name__}: {error}",
                )
        else:
            result = StepResult(
                step.name, _SUCCEEDED, output, None, self.attempts[i], started, now()
            )
        status = result.status
        self._record(i, result, status is not _SUCCEEDED)
        topic = STEP_COMPLETED if status is _SUCCEEDED else STEP_FAILED
        if _listening(self.bus, topic):
            await self._publish(topic, self._step_event(topic, result))
        self._release(i)
        if len(self.ready) > 1 and self.alive < self.limit:
            self._spawn(1)
        if self.announce:
            await self._announce()

    async def _cancelled(
        self, i: int, step: WorkflowStep, started: float, cancelled: asyncio.CancelledError
    ) -> None:
        result = StepResult(
            step.name,
            _CANCELLED,
            None,
            cancelled,
            self.attempts[i],
            started,
            self.now(),
            "the run was cancelled while the step ran",
        )
        self._record(i, result, True)
        if _listening(self.bus, STEP_CANCELLED):
            await self._publish(STEP_CANCELLED, self._step_event(STEP_CANCELLED, result))

    async def _call(self, i: int, step: WorkflowStep, args: tuple[Any, ...]) -> Any:
        """The step's attempts: its retry policy around its timeout around its breaker."""
        policy = step._retry
        if policy is None:
            self.attempts[i] = 1
            return await self._attempt(i, step, args, 1)
        # An explicit clock on the policy wins; else back-off runs on the engine's clock.
        clock = self.clock if policy.clock is None else policy._clock
        retry = RetryRun(policy, clock, step.name)
        while True:
            retry.begin()
            attempt = retry.attempt
            self.attempts[i] = attempt
            began = self.now()
            try:
                return await self._attempt(i, step, args, attempt)
            except Exception as error:
                delay = retry.failed(error)
                if delay is None:
                    raise
                if _listening(self.bus, STEP_RETRYING):
                    await self._publish(
                        STEP_RETRYING,
                        WorkflowEvent(
                            STEP_RETRYING,
                            self.run_id,
                            self.workflow,
                            self.now(),
                            step.name,
                            attempt,
                            self.now() - began,
                            error=error,
                            delay=delay,
                            reason=f"attempt {attempt} failed with {type(error).__name__}; "
                            f"retrying in {delay:g}s",
                        ),
                    )
            await clock.sleep(delay)

    async def _attempt(
        self, i: int, step: WorkflowStep, args: tuple[Any, ...], attempt: int
    ) -> Any:
        timeout = step._timeout
        if timeout is None:
            return await _invoke(step, args)
        began = self.now()
        if self.on_loop_clock:
            scope = asyncio.timeout(timeout)
            try:
                async with scope:
                    return await _invoke(step, args)
            except TimeoutError:
                if not scope.expired():
                    raise  # the step's own TimeoutError
        else:
            timed_out, output = await self._watched(step, args, timeout)
            if not timed_out:
                return output
        error = StepTimeoutError(
            f"step {step.name!r} timed out after {timeout:g}s (attempt {attempt}) and was "
            "cancelled",
            step=step.name,
            timeout=timeout,
            attempt=attempt,
        )
        self.timeouts[i] = error
        if _listening(self.bus, STEP_TIMED_OUT):
            await self._publish(
                STEP_TIMED_OUT,
                WorkflowEvent(
                    STEP_TIMED_OUT,
                    self.run_id,
                    self.workflow,
                    self.now(),
                    step.name,
                    attempt,
                    self.now() - began,
                    error=error,
                    reason=str(error),
                ),
            )
        raise error

    async def _watched(
        self, step: WorkflowStep, args: tuple[Any, ...], seconds: float
    ) -> tuple[bool, Any]:
        """Run an attempt with a watchdog on the engine's (non-loop) clock; returns
        ``(timed_out, output)``."""
        task = asyncio.current_task()
        assert task is not None  # always inside a worker task
        fired = False
        clock = self.clock

        async def watchdog() -> None:
            nonlocal fired
            await clock.sleep(seconds)
            fired = True
            task.cancel()

        dog = self.loop.create_task(watchdog())
        try:
            return False, await _invoke(step, args)
        except asyncio.CancelledError:
            if not fired or task.uncancel() > 0:
                raise  # cancelled from outside (too)
            return True, None
        finally:
            dog.cancel()

    # -- deciding dependents -------------------------------------------------------------

    def _record(self, i: int, result: StepResult, bad: bool) -> None:
        self.results[i] = result
        self.statuses[i] = result.status
        self.outputs[i] = result.output
        self.bad[i] = bad
        if bad and result.status is not _SKIPPED:
            self.failures += 1
        self.order.append(i)
        listener = self.listener
        if listener is not None:
            listener(result)
        if self.subjects:
            subject = self.subjects.get(i)
            if subject is not None:
                _settle_subject(subject, result)

    def _release(self, first: int) -> None:
        """``first`` has its outcome: decide every dependent whose inputs are now all in."""
        remaining = self.remaining
        dependents = self.plan.dependents
        todo = [first]
        while todo:
            j = todo.pop()
            for d in dependents[j]:
                left = remaining[d] - 1
                remaining[d] = left
                if left == 0 and self._decide(d):
                    todo.append(d)

    def _decide(self, d: int) -> bool:
        """Queue ``d`` to run (False) or record its outcome without running it (True)."""
        if d in self.restored:
            self._restore_step(d)
            return True
        rule = self.steps[d]._rule
        deps = self.plan.deps[d]
        statuses = self.statuses
        if rule is _ALL_SUCCESS:
            for p in deps:
                if statuses[p] is not _SUCCEEDED:
                    return self._skip(d, rule, p, self._said(p))
        elif rule is _ONE_SUCCESS:
            if all(statuses[p] is not _SUCCEEDED for p in deps):
                bad = [p for p in deps if self.bad[p]]
                culprit = bad[0] if bad else deps[0]
                said = ", ".join(self._said(p) for p in deps)
                return self._skip(d, rule, culprit, f"no dependency succeeded ({said})")
        elif rule is _NONE_FAILED:
            for p in deps:
                if self.bad[p]:
                    return self._skip(d, rule, p, self._said(p))
        elif rule is _ONE_FAILED and not any(self.bad[p] for p in deps):
            said = ", ".join(self._said(p) for p in deps)
            return self._skip(d, rule, None, f"no dependency failed ({said})")
        self.ready.append(d)
        return False

    def _said(self, p: int) -> str:
        result = self.results[p]
        assert result is not None  # a dependency is decided before its dependents
        return _said(result)

    def _skip(self, d: int, rule: TriggerRule, culprit: int | None, why: str) -> bool:
        root: str | None = None
        bad = False
        if culprit is not None:
            cause = self.results[culprit]
            assert cause is not None  # a dependency is decided before its dependents
            root = cause.root_cause or cause.name if cause.status is _SKIPPED else cause.name
            bad = self.bad[culprit]
        result = StepResult(
            self.steps[d].name,
            _SKIPPED,
            finished_at=self.now(),
            reason=f"trigger rule {rule.value} not met: {why}",
            root_cause=root,
        )
        self._record(d, result, bad)
        self.announce.append(result)
        return True

    # -- events --------------------------------------------------------------------------

    def _step_event(self, topic: str, result: StepResult) -> WorkflowEvent:
        return WorkflowEvent(
            topic,
            self.run_id,
            self.workflow,
            result.finished_at if result.finished_at is not None else self.now(),
            result.name,
            result.attempts or None,
            result.duration,
            result.output,
            result.error,
            None,
            result.reason,
            result,
        )

    async def _announce(self) -> None:
        """Publish the steps decided without running (skipped, restored)."""
        pending, self.announce = self.announce, []
        bus = self.bus
        for result in pending:
            topic = STEP_SKIPPED if result.status is _SKIPPED else STEP_RESTORED
            if _listening(bus, topic):
                await self._publish(topic, self._step_event(topic, result))

    async def _publish(self, topic: str, event: WorkflowEvent) -> None:
        self.published = True
        try:
            await self.bus.publish(topic, event)
        except Exception:  # a closed bus or a full "error" mailbox is not the run's failure
            _log.warning(
                "workflow %r run %s: could not publish %r",
                self.workflow,
                self.run_id,
                topic,
                exc_info=True,
            )

    async def _drain(self) -> None:
        """Wait until the handlers have seen this run's events (so a caller that awaited
        the run finds them handled)."""
        with contextlib.suppress(RuntimeError):  # awaited from one of the bus's handlers
            await self.bus.drain()


def _settle_subject(subject: AsyncSubject[StepResult], result: StepResult) -> None:
    try:
        subject.on_next(result)
        subject.on_completed()
    except Exception:  # an observer's failure must not break the run's bookkeeping
        _log.exception("an observer of step %r raised", result.name)


class WorkflowRun:
    """A workflow run in progress (from :meth:`AsyncWorkflowEngine.start`).

    Await it for the :class:`~rxflows.WorkflowResult`; :meth:`cancel` stops it: every
    running step is cancelled (its ``finally`` blocks run), and the result reports
    each unfinished step as CANCELLED. As with an ``asyncio.Task``, cancelling a
    task that awaits the run cancels the run too (shield it to avoid that).

    Example:
        >>> run = engine.start("video_url")
        >>> run.run_id
        '3f2b...'
        >>> run.cancel()
        True
        >>> (await run).status
        <WorkflowStatus.CANCELLED: 'cancelled'>
    """

    __slots__ = ("_run",)

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._run.run_id

    @property
    def status(self) -> WorkflowStatus:
        """RUNNING until the run ends, then how it ended."""
        return self._run.status

    def done(self) -> bool:
        """Whether the run has ended."""
        return self._run.task.done()

    def cancel(self) -> bool:
        """Cancel the run; False if it had already ended (or every step had).

        The run's steps are cancelled (not just abandoned); awaiting the run then
        returns a result with status CANCELLED.
        """
        run = self._run
        if run.task.done() or run.cancel_requested or run.status is not WorkflowStatus.RUNNING:
            return False  # ended, or every step has ended and the run is reporting it
        run.cancel_requested = True
        if run.begun:
            run.task.cancel()
        return True

    def step(self, name: str) -> Observable[StepResult]:
        """The outcome of one step, as an observable: its :class:`~rxflows.StepResult`
        once decided, then completion (replayed to late subscribers).

        Example:
            >>> run = engine.start("video_url")
            >>> run.step("upload").subscribe(lambda r: print(r.status))
        """
        run = self._run
        i = run.plan.index.get(name)
        if i is None:
            close = difflib.get_close_matches(str(name), run.plan.names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"the workflow has no step {name!r}{hint}", field="name", value=name
            )
        subject = run.subjects.get(i)
        if subject is None:
            subject = run.subjects[i] = AsyncSubject()
            result = run.results[i]
            if result is not None:
                _settle_subject(subject, result)
        return subject

    def result(self) -> WorkflowResult:
        """The result of a run that has ended.

        Raises:
            asyncio.InvalidStateError: The run is still going: await it instead.
        """
        result = self._run.result
        if result is None or not self._run.task.done():
            raise asyncio.InvalidStateError(
                f"workflow run {self.run_id!r} has not ended; await it for its result"
            )
        return result

    def __await__(self) -> Generator[Any, None, WorkflowResult]:
        return self._run.task.__await__()

    def __repr__(self) -> str:
        return f"<WorkflowRun {self._run.workflow!r} {self.run_id} {self.status.value}>"
