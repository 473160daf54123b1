"""The workflow engine: build a DAG of steps, validate it, run it (see ``_workflow_run``).

:class:`AsyncWorkflowEngine` holds the steps, compiles the validated graph into a
plan (once, until a step is added) and starts runs; :mod:`rxflows._workflow_run`
holds the machinery of one run and its handle, :class:`WorkflowRun`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Any, ClassVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._clock import Clock, as_clock
from ._config import AsyncFlowConfig, config_or_default
from ._errors import (
    ClosedResourceError,
    ConfigurationError,
    LoopManagerError,
    WorkflowValidationError,
)
from ._events import AsyncEventBus, create_async_event_bus
from ._resource import AsyncResource
from ._scheduling import resolve_loop
from ._workflow_graph import Plan, compile_plan, to_mermaid
from ._workflow_model import StepResult, WorkflowResult, WorkflowStep
from ._workflow_run import EVENTS, NO_INPUT, Run, WorkflowRun
from ._workflow_store import CheckpointStore

__all__ = ["AsyncWorkflowEngine", "WorkflowRun"]


def _check_store(value: object, field: str) -> CheckpointStore | None:
    if value is None or isinstance(value, CheckpointStore):
        return value
    raise TypeError(
        f"{field} must be a checkpoint store (with async load(run_id) and save(run_id, step, "
        f"output), e.g. SQLiteCheckpointStore(path)) or None, got {type(value).__name__}"
    )


def _check_run_id(run_id: object) -> str:
    if run_id is None:
        return uuid.uuid4().hex
    if not isinstance(run_id, str) or not run_id:
        raise ConfigurationError(
            f"run_id must be a non-empty str or None (a new id), got {run_id!r}",
            field="run_id",
            value=run_id,
        )
    return run_id


class AsyncWorkflowEngine(AsyncResource):
    """Runs a DAG of :class:`~rxflows.WorkflowStep` s: concurrently, bounded, observable.

    Add steps with :meth:`add_step`; the graph is validated before each run (and by
    :meth:`validate`): an unknown dependency is named with the closest existing
    step, a cycle with its full path. Then:

    * ``await engine.execute_workflow(input)`` returns ``{step: output}``, or raises
      :class:`~rxflows.StepFailedError` (carrying the whole
      :class:`~rxflows.WorkflowResult`, the first failure as its cause);
    * ``await engine.run(input)`` returns the :class:`~rxflows.WorkflowResult`
      whatever the steps did;
    * ``engine.start(input)`` returns a :class:`WorkflowRun` to await or cancel;
    * ``engine.observable(input)`` is an Observable of :class:`~rxflows.StepResult`
      as the steps end.

    Independent branches run concurrently, at most ``max_concurrent`` steps at once
    (default ``config.max_concurrent_tasks``). Events go to :attr:`event_bus` (see
    :attr:`EVENTS`; each payload is a :class:`~rxflows.WorkflowEvent`).

    Args:
        config: An :class:`~rxflows.AsyncFlowConfig` (its ``max_concurrent_tasks`` bounds
            the steps running at once; ``event_bus_buffer_size`` sizes the bus).
        event_bus: The bus to publish events on; default a new one, owned (closed by
            :meth:`aclose`).
        clock: Where timeouts and retry back-off wait: a :class:`~rxflows.Clock`, an Rx
            scheduler or None (the running loop's clock, virtual in tests).
        store: The default checkpoint store of a run (None: no checkpoints).
        name: The workflow's name, in events, results and ``repr``.
        max_concurrent: Most steps running at once; default ``config.max_concurrent_tasks``.

    Example:
        >>> engine = AsyncWorkflowEngine(config)
        >>> engine.add_step(WorkflowStep("download", download_video, timeout=30.0))
        >>> engine.add_step(WorkflowStep("process", process_video, dependencies=["download"]))
        >>> results = await engine.execute_workflow("video_url")
    """

    EVENTS: ClassVar[tuple[str, ...]] = EVENTS
    """Every topic the engine publishes on (see ``docs/workflows.md`` for when)."""

    def __init__(
        self,
        config: AsyncFlowConfig | None = None,
        *,
        event_bus: AsyncEventBus | None = None,
        clock: Clock | abc.SchedulerBase | None = None,
        store: CheckpointStore | None = None,
        name: str = "workflow",
        max_concurrent: int | None = None,
    ) -> None:
        self._config = config_or_default(config)
        if event_bus is not None and not isinstance(event_bus, AsyncEventBus):
            raise TypeError(
                f"event_bus must be an AsyncEventBus (create_async_event_bus()) or None, got "
                f"{type(event_bus).__name__}"
            )
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"name must be a non-empty str, got {name!r}", field="name", value=name
            )
        if max_concurrent is None:
            limit = self._config.max_concurrent_tasks
        elif (
            isinstance(max_concurrent, bool)
            or not isinstance(max_concurrent, int)
            or max_concurrent < 1
        ):
            raise ConfigurationError(
                f"max_concurrent must be a positive int or None (config.max_concurrent_tasks), "
                f"got {max_concurrent!r}",
                field="max_concurrent",
                value=max_concurrent,
            )
        else:
            limit = max_concurrent
        self._bus = event_bus if event_bus is not None else create_async_event_bus(self._config)
        self._owns_bus = event_bus is None
        self._clock = as_clock(clock)
        self._store = _check_store(store, "store")
        self._name = name
        self._limit = limit
        self._steps: dict[str, WorkflowStep] = {}
        self._plan: Plan | None = None
        self._runs: set[Run] = set()
        self._closed = False

    # -- properties ----------------------------------------------------------------------

    @property
    def event_bus(self) -> AsyncEventBus:
        """The bus the engine publishes its events on."""
        return self._bus

    @property
    def config(self) -> AsyncFlowConfig:
        """The engine's configuration."""
        return self._config

    @property
    def name(self) -> str:
        """The workflow's name."""
        return self._name

    @property
    def clock(self) -> Clock:
        """Where timeouts and back-off wait."""
        return self._clock

    @property
    def max_concurrent(self) -> int:
        """Most steps running at once."""
        return self._limit

    @property
    def steps(self) -> tuple[WorkflowStep, ...]:
        """The steps, in the order they were added."""
        return tuple(self._steps.values())

    # -- building ------------------------------------------------------------------------

    def add_step(self, step: WorkflowStep) -> WorkflowStep:
        """Add ``step`` (its dependencies may be added later); returns it.

        Raises:
            WorkflowValidationError: A step with that name is already there.
            TypeError: ``step`` is not a WorkflowStep.
        """
        if not isinstance(step, WorkflowStep):
            raise TypeError(
                f"add_step takes a WorkflowStep (WorkflowStep(name, func, ...)), got "
                f"{type(step).__name__}"
            )
        if step.name in self._steps:
            raise WorkflowValidationError(
                f"step {step.name!r} is already in the workflow: step names must be unique "
                "(rename one of the two)"
            )
        self._steps[step.name] = step
        self._plan = None
        return step

    def add_steps(self, steps: Iterable[WorkflowStep]) -> None:
        """Add each of ``steps`` in turn (see :meth:`add_step`)."""
        for step in steps:
            self.add_step(step)

    def validate(self) -> None:
        """Check the graph now, as every run does before it starts.

        Raises:
            WorkflowValidationError: No steps, or a dependency on a step that does not
                exist (every one is listed, each with a did-you-mean).
            WorkflowCycleError: The dependencies form a cycle; the message and
                ``cycle`` give its full path (``a -> b -> c -> a``).
        """
        self._compiled()

    def _compiled(self) -> Plan:
        plan = self._plan
        if plan is None:
            plan = self._plan = compile_plan(tuple(self._steps.values()))
        return plan

    def to_mermaid(self, *, direction: str = "TD", result: WorkflowResult | None = None) -> str:
        """The DAG as a Mermaid flowchart (arrows from a dependency to its dependent).

        Nodes show each step's timeout, retry, breaker and non-default trigger rule.
        With ``result``, nodes are coloured by how the run ended for them. Unknown
        dependencies are drawn as ``(missing)`` nodes, to help find them.

        Example:
            >>> print(engine.to_mermaid())
            flowchart TD
                s0["download<br/>timeout 30s"]
                s1["process<br/>timeout 60s"]
                s0 --> s1
        """
        return to_mermaid(tuple(self._steps.values()), direction=direction, result=result)

    # -- running -------------------------------------------------------------------------

    def start(
        self,
        input: Any = NO_INPUT,
        *,
        run_id: str | None = None,
        store: CheckpointStore | None = None,
    ) -> WorkflowRun:
        """Validate the graph and start a run on the running loop; returns its handle.

        Args:
            input: What steps without dependencies are called with; omit it to call
                them with no arguments.
            run_id: The run's id (default: a new random one). With a store, a run id
                that has checkpoints resumes: steps with a saved output are not run.
            store: A checkpoint store for this run (default: the engine's ``store``).

        Raises:
            WorkflowValidationError: The graph is invalid (see :meth:`validate`).
            ClosedResourceError: The engine was closed.
        """
        if self._closed:
            raise ClosedResourceError(f"workflow engine {self._name!r} is closed")
        plan = self._compiled()
        chosen = self._store if store is None else _check_store(store, "store")
        identity = _check_run_id(run_id)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise LoopManagerError(
                "a workflow runs on an asyncio loop: start it from a coroutine (await "
                "engine.run(...) / engine.execute_workflow(...))"
            ) from None
        run = Run(self, plan, input, identity, chosen, None, loop)
        self._runs.add(run)
        return WorkflowRun(run)

    async def run(
        self,
        input: Any = NO_INPUT,
        *,
        run_id: str | None = None,
        store: CheckpointStore | None = None,
    ) -> WorkflowResult:
        """Run the workflow; returns every step's outcome, never raising for a step's
        failure.

        Cancelling the awaiting task cancels every running step, waits for them to
        unwind, and re-raises ``CancelledError``. Arguments as for :meth:`start`.

        Example:
            >>> result = await engine.run("video_url")
            >>> if not result.succeeded:
            ...     print(result.describe(), result.first_failure.error)
        """
        return await self.start(input, run_id=run_id, store=store)

    async def execute_workflow(
        self,
        input: Any = NO_INPUT,
        *,
        run_id: str | None = None,
        store: CheckpointStore | None = None,
    ) -> dict[str, Any]:
        """Run the workflow; returns ``{step_name: output}`` of the steps that ran.

        A step skipped by its trigger rule (with nothing failed) has no entry.

        Raises:
            StepFailedError: A step failed, timed out or cancelled itself. ``result``
                holds every step's outcome; ``step`` names the first failure, whose
                exception is the ``__cause__``.
            WorkflowValidationError: The graph is invalid (nothing ran).

        Example:
            >>> results = await workflow_engine.execute_workflow("video_url")
            >>> results["encode"]
        """
        result = await self.start(input, run_id=run_id, store=store)
        result.raise_for_status()
        return result.outputs

    def observable(
        self,
        input: Any = NO_INPUT,
        *,
        run_id: str | None = None,
        store: CheckpointStore | None = None,
    ) -> Observable[StepResult]:
        """A cold Observable of the steps' :class:`~rxflows.StepResult` as they end.

        Each subscription is a new run (the graph is validated now, at this call). A
        step's failure is an item, not an error: the observable completes after the
        last step, and errors only when the run cannot go on (a checkpoint store that
        cannot load). Disposing the subscription cancels the run's steps.

        Example:
            >>> failed = engine.observable("video_url").pipe(
            ...     ops.filter(lambda r: r.failed), ops.map(lambda r: r.name)
            ... )
        """
        if self._closed:
            raise ClosedResourceError(f"workflow engine {self._name!r} is closed")
        plan = self._compiled()
        chosen = self._store if store is None else _check_store(store, "store")
        run_id = run_id if run_id is None else _check_run_id(run_id)

        def subscribe(
            observer: abc.ObserverBase[StepResult], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            loop, _ = resolve_loop(scheduler, "AsyncWorkflowEngine.observable")
            failures: list[Exception] = []
            handle: list[WorkflowRun] = []

            def listener(result: StepResult) -> None:
                try:
                    observer.on_next(result)
                except Exception as error:  # an observer must not break the run's bookkeeping
                    failures.append(error)
                    if handle:
                        handle[0].cancel()

            run = Run(self, plan, input, _check_run_id(run_id), chosen, listener, loop)
            self._runs.add(run)
            handle.append(WorkflowRun(run))

            def done(task: asyncio.Task[WorkflowResult]) -> None:
                if task.cancelled():
                    return
                error = task.exception()
                if failures:
                    observer.on_error(failures[0])
                elif isinstance(error, Exception):
                    observer.on_error(error)
                elif error is None:
                    observer.on_completed()

            run.task.add_done_callback(done)

            def dispose() -> None:
                handle[0].cancel()

            return Disposable(dispose)

        return reactivex.create(subscribe)

    # -- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Cancel the runs still going, wait for them, and close the event bus if the
        engine made it. Idempotent; afterwards no run can start."""
        self._closed = True
        runs = list(self._runs)
        for run in runs:
            WorkflowRun(run).cancel()
        if runs:
            await asyncio.wait([run.task for run in runs])
        if self._owns_bus:
            await self._bus.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._runs)} running"
        return (
            f"<AsyncWorkflowEngine {self._name!r}: {len(self._steps)} steps, "
            f"max_concurrent={self._limit}, {state}>"
        )
