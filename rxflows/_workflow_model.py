"""The workflow model: steps, trigger rules, and the records a run produces."""

from __future__ import annotations

import asyncio
import difflib
import enum
import inspect
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from ._breaker import CircuitBreaker
from ._errors import ConfigurationError, StepFailedError, StepTimeoutError, WorkflowCycleError
from ._executor import Executor, check_executor, check_sync_function, submitting
from ._retry import RetryPolicy

__all__ = [
    "StepResult",
    "StepStatus",
    "TriggerRule",
    "WorkflowEvent",
    "WorkflowResult",
    "WorkflowStatus",
    "WorkflowStep",
]


class StepStatus(enum.Enum):
    """How a step of a run ended."""

    SUCCEEDED = "succeeded"
    """The step returned; its output is in :attr:`StepResult.output`."""
    FAILED = "failed"
    """The step raised (after its retries); the exception is in :attr:`StepResult.error`."""
    TIMED_OUT = "timed_out"
    """The step's last attempt overran its ``timeout`` and was cancelled."""
    CANCELLED = "cancelled"
    """The run was cancelled before the step finished (or the step cancelled itself)."""
    SKIPPED = "skipped"
    """The step's trigger rule was not met; :attr:`StepResult.root_cause` says why."""

    @property
    def failed(self) -> bool:
        """FAILED, TIMED_OUT or CANCELLED: what trigger rules count as a failure."""
        return self._value_ in _FAILED_VALUES


_FAILED_VALUES = frozenset({"failed", "timed_out", "cancelled"})  # str hashes are cached


class TriggerRule(enum.Enum):
    """When a step runs, given how its dependencies ended.

    A rule is decided once every dependency of the step has finished (a step's
    inputs are its dependencies' outputs, so it always waits for all of them). A
    dependency counts as *failed* when it failed, timed out or was cancelled, or
    was skipped because of such a failure upstream. A step whose rule is not met
    is skipped, and the skip names its root cause.
    """

    ALL_SUCCESS = "all_success"
    """Every dependency succeeded (the default)."""
    ALL_DONE = "all_done"
    """Every dependency finished, however it ended: cleanup and reporting steps."""
    ONE_SUCCESS = "one_success"
    """At least one dependency succeeded."""
    ONE_FAILED = "one_failed"
    """At least one dependency failed: error handlers and alerts."""
    NONE_FAILED = "none_failed"
    """No dependency failed: each succeeded or was skipped by its own rule."""
    ALWAYS = "always"
    """Run whatever the dependencies did (the same as ``all_done`` here, since a step
    always waits for its inputs; kept for readers who know Airflow's rules)."""


class WorkflowStatus(enum.Enum):
    """Where a workflow run is: RUNNING, then one of the three ends."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    """Every step succeeded, or was skipped by a rule without any failure."""
    FAILED = "failed"
    """At least one step failed, timed out or cancelled itself."""
    CANCELLED = "cancelled"
    """The run was cancelled; steps that had not finished are CANCELLED."""


def _trigger_rule(step: str, value: object) -> TriggerRule:
    if isinstance(value, TriggerRule):
        return value
    names = [rule.value for rule in TriggerRule]
    if isinstance(value, str) and value in names:
        return TriggerRule(value)
    close = difflib.get_close_matches(value, names, n=1) if isinstance(value, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigurationError(
        f"step {step!r}: trigger_rule must be one of {', '.join(map(repr, names))} or a "
        f"TriggerRule, got {value!r}{hint}",
        field="trigger_rule",
        value=value,
    )


def _dependencies(step: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ConfigurationError(
            f"step {step!r}: dependencies must be a list of step names, got the string "
            f"{value!r}; write dependencies=[{value!r}]",
            field="dependencies",
            value=value,
        )
    if not isinstance(value, Iterable):
        raise ConfigurationError(
            f"step {step!r}: dependencies must be a list of step names, got {type(value).__name__}",
            field="dependencies",
            value=value,
        )
    names = tuple(value)
    seen: set[str] = set()
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name:
            hint = (
                f" (write the step's name, {name.name!r})" if isinstance(name, WorkflowStep) else ""
            )
            raise ConfigurationError(
                f"step {step!r}: dependencies[{index}] must be a step name (a non-empty str), "
                f"got {name!r}{hint}",
                field="dependencies",
                value=value,
            )
        if name in seen:
            raise ConfigurationError(
                f"step {step!r}: dependencies lists {name!r} twice; list each dependency once",
                field="dependencies",
                value=value,
            )
        if name == step:
            raise WorkflowCycleError(
                f"step {step!r} depends on itself: {step} -> {step}; remove {step!r} from its "
                "dependencies",
                cycle=(step, step),
            )
        seen.add(name)
    return names


def _timeout(step: str, value: object) -> float | None:
    if value is None:
        return None
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and value > 0
    )
    if not ok:
        raise ConfigurationError(
            f"step {step!r}: timeout must be a positive number of seconds or None, got {value!r}",
            field="timeout",
            value=value,
        )
    return float(value)  # type: ignore[arg-type]  # checked above: an int or a float


def _retry(step: str, value: object) -> RetryPolicy | None:
    if value is None or isinstance(value, RetryPolicy):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return RetryPolicy(max_attempts=value)
    raise ConfigurationError(
        f"step {step!r}: retry must be a RetryPolicy, a positive int (max_attempts, the first "
        f"call included) or None, got {value!r}",
        field="retry",
        value=value,
    )


def _func(step: str, value: object) -> Callable[..., Awaitable[Any]]:
    if inspect.iscoroutine(value):
        value.close()  # so it does not also warn that it was never awaited
        raise TypeError(
            f"step {step!r}: func must be the async function itself (func=download_video), "
            "not a call of it (download_video(...)); the engine calls it with the step's inputs"
        )
    if not callable(value):
        raise TypeError(
            f"step {step!r}: func must be an async function (or a callable returning an "
            f"awaitable), got {value!r}"
        )
    return value


class WorkflowStep:
    """One step of a workflow: a coroutine function, its dependencies and its policies.

    The step's inputs follow from its dependencies:

    * no dependencies: ``func(input)``, the workflow's input (``func()`` when the
      run was given none);
    * one dependency: ``func(output)``, that step's output;
    * several: ``func(out1, out2, ...)``, their outputs as positional arguments in
      the order of ``dependencies``.

    A dependency that did not succeed (possible under ``all_done``, ``always``,
    ``one_success``, ``one_failed`` or ``none_failed``) passes ``None``.

    Args:
        name: The step's name, unique in its workflow.
        func: An ``async def`` function (or any callable returning an awaitable);
            with ``executor``, a plain (sync) function.
        dependencies: Names of the steps whose outputs this step takes, in order.
        timeout: Seconds one attempt may run before it is cancelled (on the engine's
            clock), or None for no limit. With ``retry``, each attempt gets its own
            ``timeout``, and a timed-out attempt is retried like any failure.
        retry: A :class:`~rxflows.RetryPolicy`, or an int: that many attempts in all,
            with the policy's default back-off (1 s, doubling, capped at 30 s).
        trigger_rule: When the step runs given how its dependencies ended: a
            :class:`TriggerRule` or its value (``"all_success"``, ``"all_done"``,
            ``"one_success"``, ``"one_failed"``, ``"none_failed"``, ``"always"``).
        breaker: A :class:`~rxflows.CircuitBreaker` every attempt goes through
            (inside the retry, so a retry waits out an open circuit's ``retry_after``).
        executor: Run ``func``, then a plain (sync) function, through this
            :class:`~rxflows.Executor` (a process pool, a Dask cluster, ...). Retry,
            breaker and timeout apply around each submission; a timeout or a
            cancelled run cancels the submitted call if it has not started (a call
            already running on a thread, process or Dask worker runs on; its result
            is dropped).

    Example:
        >>> WorkflowStep("validate", validate_video_url)
        >>> WorkflowStep(
        ...     "download", download_video, dependencies=["validate"], timeout=30.0, retry=3
        ... )
        >>> WorkflowStep("encode", encode_sync, ["download"], executor=dask_executor)
    """

    __slots__ = (
        "_breaker",
        "_dependencies",
        "_executor",
        "_func",
        "_name",
        "_retry",
        "_rule",
        "_simple",
        "_target",
        "_timeout",
    )

    @overload
    def __init__(
        self,
        name: str,
        func: Callable[..., Awaitable[Any]],
        dependencies: Iterable[str] = (),
        *,
        timeout: float | None = None,
        retry: RetryPolicy | int | None = None,
        trigger_rule: TriggerRule | str = TriggerRule.ALL_SUCCESS,
        breaker: CircuitBreaker | None = None,
        executor: None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        name: str,
        func: Callable[..., Any],
        dependencies: Iterable[str] = (),
        *,
        timeout: float | None = None,
        retry: RetryPolicy | int | None = None,
        trigger_rule: TriggerRule | str = TriggerRule.ALL_SUCCESS,
        breaker: CircuitBreaker | None = None,
        executor: Executor,
    ) -> None: ...

    def __init__(
        self,
        name: str,
        func: Callable[..., Any],
        dependencies: Iterable[str] = (),
        *,
        timeout: float | None = None,
        retry: RetryPolicy | int | None = None,
        trigger_rule: TriggerRule | str = TriggerRule.ALL_SUCCESS,
        breaker: CircuitBreaker | None = None,
        executor: Executor | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"name must be a non-empty str, got {name!r}", field="name", value=name
            )
        self._name = name
        self._executor = executor
        if executor is None:
            self._target = self._func = _func(name, func)
        else:
            check_sync_function(func, f"step {name!r}: func")
            self._target = func
            self._func = submitting(check_executor(executor, f"step {name!r}: executor"), func)
        self._dependencies = _dependencies(name, dependencies)
        self._timeout = _timeout(name, timeout)
        self._retry = _retry(name, retry)
        self._rule = _trigger_rule(name, trigger_rule)
        if breaker is not None and not isinstance(breaker, CircuitBreaker):
            raise TypeError(
                f"step {name!r}: breaker must be a CircuitBreaker or None, got "
                f"{type(breaker).__name__}"
            )
        self._breaker = breaker
        self._simple = self._timeout is None and self._retry is None and breaker is None

    @property
    def name(self) -> str:
        """The step's name."""
        return self._name

    @property
    def func(self) -> Callable[..., Any]:
        """The function the step runs: a coroutine function, or with :attr:`executor`
        the sync function submitted to it."""
        return self._target

    @property
    def executor(self) -> Executor | None:
        """The executor ``func`` is submitted to, or None (``func`` runs on the loop)."""
        return self._executor

    @property
    def dependencies(self) -> tuple[str, ...]:
        """The names of the steps whose outputs are this step's inputs, in order."""
        return self._dependencies

    @property
    def timeout(self) -> float | None:
        """Seconds one attempt may run, or None."""
        return self._timeout

    @property
    def retry(self) -> RetryPolicy | None:
        """The retry policy, or None (one attempt)."""
        return self._retry

    @property
    def trigger_rule(self) -> TriggerRule:
        """When the step runs, given how its dependencies ended."""
        return self._rule

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The circuit breaker every attempt goes through, or None."""
        return self._breaker

    def replace(self, **changes: Any) -> WorkflowStep:
        """A copy with ``changes`` applied (any argument of the constructor), validated.

        Example:
            >>> slow = step.replace(timeout=300.0)
        """
        options: dict[str, Any] = {
            "name": self._name,
            "func": self._target,
            "dependencies": self._dependencies,
            "timeout": self._timeout,
            "retry": self._retry,
            "trigger_rule": self._rule,
            "breaker": self._breaker,
            "executor": self._executor,
        }
        unknown = sorted(set(changes) - set(options))
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(options), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"unknown WorkflowStep option {unknown[0]!r}{hint} (options: {', '.join(options)})",
                field=unknown[0],
                value=changes[unknown[0]],
            )
        options.update(changes)
        return WorkflowStep(**options)

    def __repr__(self) -> str:
        parts = [repr(self._name), getattr(self._target, "__qualname__", repr(self._target))]
        if self._dependencies:
            parts.append(f"dependencies={list(self._dependencies)!r}")
        if self._timeout is not None:
            parts.append(f"timeout={self._timeout!r}")
        if self._retry is not None:
            parts.append(f"retry=RetryPolicy(max_attempts={self._retry.max_attempts})")
        if self._rule is not TriggerRule.ALL_SUCCESS:
            parts.append(f"trigger_rule={self._rule.value!r}")
        if self._breaker is not None:
            parts.append(f"breaker={self._breaker.name!r}")
        if self._executor is not None:
            parts.append(f"executor={self._executor!r}")
        return f"WorkflowStep({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class StepResult:
    """How one step of a run ended: its status, output or error, attempts and timings.

    Times are readings of the engine's clock (the loop clock by default, so virtual
    in tests); only differences mean anything.
    """

    name: str
    """The step's name."""
    status: StepStatus
    """How it ended."""
    output: Any = None
    """What it returned (SUCCEEDED), else None."""
    error: BaseException | None = None
    """What it raised: the step's own exception (FAILED), a :class:`~rxflows.StepTimeoutError`
    (TIMED_OUT), the ``CancelledError`` (CANCELLED while running); else None."""
    attempts: int = 0
    """How many times ``func`` was called (0: never started, skipped or restored)."""
    started_at: float | None = None
    """When the first attempt started; None if the step never started."""
    finished_at: float | None = None
    """When the step's outcome was decided."""
    reason: str | None = None
    """Why it did not succeed, in words (None for SUCCEEDED)."""
    root_cause: str | None = None
    """SKIPPED: the step whose outcome led to the skip, followed through skipped steps
    (None when no step is to blame, e.g. ``one_failed`` with nothing failed)."""
    restored: bool = False
    """SUCCEEDED without running: the output came from a checkpoint store."""

    @property
    def duration(self) -> float:
        """Seconds from the first attempt's start to the end (0.0 if it never started)."""
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return self.finished_at - self.started_at

    @property
    def succeeded(self) -> bool:
        """Whether the status is SUCCEEDED."""
        return self.status is StepStatus.SUCCEEDED

    @property
    def failed(self) -> bool:
        """Whether the status is FAILED, TIMED_OUT or CANCELLED."""
        return self.status._value_ in _FAILED_VALUES


@dataclass(frozen=True, slots=True)
class WorkflowResult:
    """The outcome of a workflow run: every step's :class:`StepResult`.

    ``run()`` returns it whatever the steps did; :meth:`raise_for_status` raises
    what ``execute_workflow`` would.

    Example:
        >>> result = await engine.run("video_url")
        >>> result.status, result["download"].attempts, result.outputs["encode"]
    """

    run_id: str
    """The run's id (give it back to ``execute_workflow`` with a store to resume)."""
    status: WorkflowStatus
    """SUCCEEDED, FAILED or CANCELLED."""
    steps: Mapping[str, StepResult]
    """Every step's result, in the order the steps were added."""
    order: tuple[str, ...]
    """Step names in the order their outcomes were decided."""
    started_at: float
    """When the run started (engine clock)."""
    finished_at: float
    """When the run ended (engine clock)."""
    workflow: str = "workflow"
    """The engine's name."""
    _failures: tuple[StepResult, ...] = field(init=False, default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        steps = self.steps
        failures = tuple(
            steps[name] for name in self.order if steps[name].status._value_ in _FAILED_VALUES
        )
        object.__setattr__(self, "_failures", failures)

    @property
    def duration(self) -> float:
        """Seconds from the start of the run to its end."""
        return self.finished_at - self.started_at

    @property
    def succeeded(self) -> bool:
        """Whether the status is SUCCEEDED."""
        return self.status is WorkflowStatus.SUCCEEDED

    @property
    def outputs(self) -> dict[str, Any]:
        """``{step: output}`` of every step that succeeded (restored ones included)."""
        return {name: r.output for name, r in self.steps.items() if r.succeeded}

    @property
    def failures(self) -> tuple[StepResult, ...]:
        """The failed, timed-out and cancelled steps, in the order they ended."""
        return self._failures

    @property
    def first_failure(self) -> StepResult | None:
        """The step that failed first, or None."""
        return self._failures[0] if self._failures else None

    def by_status(self, status: StepStatus) -> tuple[str, ...]:
        """Names of the steps that ended with ``status``, in the order they were added."""
        return tuple(name for name, r in self.steps.items() if r.status is status)

    def __getitem__(self, step: str) -> StepResult:
        return self.steps[step]

    def __iter__(self) -> Iterator[StepResult]:
        return iter(self.steps.values())

    def raise_for_status(self) -> None:
        """Raise :class:`~rxflows.StepFailedError` (cause: the first failure's error)
        unless the run succeeded.

        A cancelled run with no failed step raises ``asyncio.CancelledError``.
        """
        if self.status is WorkflowStatus.SUCCEEDED:
            return
        first = self.first_failure
        if first is None or (
            self.status is WorkflowStatus.CANCELLED and first.status is StepStatus.CANCELLED
        ):
            raise asyncio.CancelledError(f"workflow run {self.run_id!r} was cancelled")
        raise StepFailedError(self.describe(), step=first.name, result=self) from first.error

    def describe(self) -> str:
        """One line saying how the run ended, naming the first failure and what it cost."""
        if self.status is WorkflowStatus.SUCCEEDED:
            return f"workflow run {self.run_id!r} succeeded: {len(self.steps)} steps"
        first = self.first_failure
        parts = [f"workflow run {self.run_id!r} {self.status.value}"]
        if first is not None:
            what = {
                StepStatus.FAILED: "failed",
                StepStatus.TIMED_OUT: "timed out",
                StepStatus.CANCELLED: "was cancelled",
            }[first.status]
            error = first.error
            detail = f" with {type(error).__name__}: {error}" if error is not None else ""
            if isinstance(error, StepTimeoutError):
                detail = f" (timeout {error.timeout:g}s)"
            elif first.status is StepStatus.CANCELLED:
                detail = ""
            tries = f" after {first.attempts} attempts" if first.attempts > 1 else ""
            parts.append(f": step {first.name!r} {what}{tries}{detail}")
        others = len(self._failures) - 1
        if others > 0:
            parts.append(f"; {others} more step(s) failed")
        skipped = self.by_status(StepStatus.SKIPPED)
        if skipped:
            parts.append(f"; skipped: {', '.join(skipped)}")
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class WorkflowEvent:
    """The payload of every event a workflow engine publishes on its event bus.

    ``event`` is the topic (``"step_completed"``, ...). Fields that do not apply to
    an event are None.

    Example:
        >>> async def monitor(event_type: str, data: WorkflowEvent) -> None:
        ...     print(event_type, data.step, data.attempt, data.duration)
        >>> await engine.event_bus.subscribe("step_completed", monitor)
    """

    event: str
    """The topic: ``workflow_started``, ``step_started``, ``step_completed``, ..."""
    run_id: str
    """The run the event belongs to."""
    workflow: str
    """The engine's name."""
    time: float
    """When it happened (engine clock)."""
    step: str | None = None
    """The step (None for ``workflow_*`` events)."""
    attempt: int | None = None
    """The attempt it concerns (1 for the first call)."""
    duration: float | None = None
    """Seconds: of the step (completed, failed, ...), of the attempt (timed out,
    retrying), or of the run (``workflow_*`` ends)."""
    output: Any = None
    """step_completed / step_restored: what the step returned."""
    error: BaseException | None = None
    """step_failed / step_retrying / step_timed_out / step_cancelled: the exception."""
    delay: float | None = None
    """step_retrying: seconds before the next attempt."""
    reason: str | None = None
    """step_skipped / step_failed / workflow ends: why, in words."""
    result: StepResult | WorkflowResult | None = None
    """The step's result (step ends) or the run's (workflow ends)."""

    def __str__(self) -> str:
        parts = [f"{self.event} run={self.run_id}"]
        if self.step is not None:
            parts.append(f"step={self.step}")
        if self.attempt is not None:
            parts.append(f"attempt={self.attempt}")
        if self.duration is not None:
            parts.append(f"duration={self.duration:.3f}s")
        if self.delay is not None:
            parts.append(f"retry_in={self.delay:g}s")
        if self.error is not None:
            parts.append(f"error={type(self.error).__name__}: {self.error}")
        elif self.output is not None:
            text = repr(self.output)
            parts.append(f"output={text if len(text) <= 60 else text[:57] + '...'}")
        if self.reason is not None and self.error is None:
            parts.append(f"reason={self.reason}")
        return " ".join(parts)
