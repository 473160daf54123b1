"""AsyncWorkflowEngine and WorkflowStep: the guide's workflows, input passing,
validation errors, concurrency, trigger rules, retries, timeouts, cancellation,
events and the Rx face, all in virtual time."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from reactivex import operators as rx_ops

from rxflows import (
    AsyncWorkflowEngine,
    CircuitBreaker,
    CircuitOpenError,
    ClosedResourceError,
    ConfigurationError,
    RetryPolicy,
    StepFailedError,
    StepResult,
    StepStatus,
    StepTimeoutError,
    TriggerRule,
    WorkflowCycleError,
    WorkflowError,
    WorkflowEvent,
    WorkflowResult,
    WorkflowStatus,
    WorkflowStep,
    WorkflowValidationError,
    collect,
    create_async_event_bus,
    create_async_flow_config,
    loop_scheduler,
)
from rxflows.testing import marbles

from .support import settle
from .workflow_support import EventLog, ManualClock, Trace, now

SUCCEEDED = StepStatus.SUCCEEDED
FAILED = StepStatus.FAILED
SKIPPED = StepStatus.SKIPPED
TIMED_OUT = StepStatus.TIMED_OUT
CANCELLED = StepStatus.CANCELLED


async def noop(*args: Any) -> None:
    return None


def engine_with(*steps: WorkflowStep, **options: Any) -> AsyncWorkflowEngine:
    engine = AsyncWorkflowEngine(**options)
    for step in steps:
        engine.add_step(step)
    return engine


# -- the guide's examples ----------------------------------------------------------------


async def test_guide_simple_workflow() -> None:
    trace = Trace()
    download_video = trace.step("download", duration=10)
    process_video = trace.step("process", duration=20)
    encode_video = trace.step("encode", duration=100)
    config = create_async_flow_config(max_concurrent_tasks=10)

    # as in the guide, with rxflows
    workflow_engine = AsyncWorkflowEngine(config)
    download_step = WorkflowStep(name="download", func=download_video, timeout=30.0)
    process_step = WorkflowStep(
        name="process", func=process_video, dependencies=["download"], timeout=60.0
    )
    encode_step = WorkflowStep(
        name="encode", func=encode_video, dependencies=["process"], timeout=120.0
    )
    workflow_engine.add_step(download_step)
    workflow_engine.add_step(process_step)
    workflow_engine.add_step(encode_step)
    results = await workflow_engine.execute_workflow("video_url")

    assert results == {
        "download": "download(video_url)",
        "process": "process(download(video_url))",
        "encode": "encode(process(download(video_url)))",
    }
    assert trace.starts == {"download": 0.0, "process": 10.0, "encode": 30.0}
    assert now() == 130.0
    await workflow_engine.aclose()


async def test_guide_complex_workflow_with_event_monitoring(
    capsys: pytest.CaptureFixture[str],
) -> None:
    trace = Trace()
    names = [
        "validate",
        "download",
        "extract_audio",
        "generate_captions",
        "create_clips",
        "add_effects",
        "upload",
        "notify",
    ]
    (
        validate_video_url,
        download_video,
        extract_audio,
        generate_captions,
        create_clips,
        add_effects,
        upload_video,
        send_notification,
    ) = (trace.step(name, duration=1) for name in names)
    workflow_engine = AsyncWorkflowEngine(create_async_flow_config())

    # as in the guide, with rxflows
    workflow_steps = [
        WorkflowStep("validate", validate_video_url),
        WorkflowStep("download", download_video, dependencies=["validate"]),
        WorkflowStep("extract_audio", extract_audio, dependencies=["download"]),
        WorkflowStep("generate_captions", generate_captions, dependencies=["extract_audio"]),
        WorkflowStep("create_clips", create_clips, dependencies=["generate_captions"]),
        WorkflowStep("add_effects", add_effects, dependencies=["create_clips"]),
        WorkflowStep("upload", upload_video, dependencies=["add_effects"]),
        WorkflowStep("notify", send_notification, dependencies=["upload"]),
    ]
    for step in workflow_steps:
        workflow_engine.add_step(step)

    async def workflow_monitor(event_type: str, data: WorkflowEvent) -> None:
        print(f"Workflow event: {event_type} - {data}")

    await workflow_engine.event_bus.subscribe("step_completed", workflow_monitor)
    await workflow_engine.event_bus.subscribe("step_failed", workflow_monitor)
    results = await workflow_engine.execute_workflow("video_url")

    # every event was handled by the time execute_workflow returned
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" step=")[1].split()[0] for line in lines] == names
    assert all(
        line.startswith("Workflow event: step_completed - step_completed run=") for line in lines
    )
    assert "attempt=1 duration=1.000s" in lines[0]
    assert results["notify"] == (
        "notify(upload(add_effects(create_clips(generate_captions(extract_audio("
        "download(validate(video_url))))))))"
    )
    assert now() == 8.0
    await workflow_engine.aclose()


async def test_guide_complex_workflow_reports_a_failure_to_the_monitor() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("validate", trace.step("validate")),
        WorkflowStep(
            "download", trace.step("download", error=ConnectionError("404")), ["validate"]
        ),
        WorkflowStep("extract_audio", trace.step("extract_audio"), ["download"]),
    )
    log = EventLog()
    await engine.event_bus.subscribe("step_completed", log)
    await engine.event_bus.subscribe("step_failed", log)
    with pytest.raises(StepFailedError):
        await engine.execute_workflow("video_url")
    assert log.brief() == [("step_completed", "validate"), ("step_failed", "download")]
    failed = log.events[1]
    assert isinstance(failed.error, ConnectionError)
    assert failed.reason == "ConnectionError: 404"
    assert "extract_audio" not in trace.calls
    await engine.aclose()


# -- input passing -----------------------------------------------------------------------


async def test_input_passing_none_one_and_several_dependencies_in_declared_order() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("root", trace.step("root")),
        WorkflowStep("slow", trace.step("slow", duration=5), ["root"]),
        WorkflowStep("fast", trace.step("fast", duration=1), ["root"]),
        # declared (slow, fast) although fast finishes first
        WorkflowStep("join", trace.step("join"), ["slow", "fast"]),
        WorkflowStep("reversed", trace.step("reversed"), ["fast", "slow"]),
    )
    outputs = await engine.execute_workflow(7)
    assert trace.args["root"] == (7,)
    assert trace.args["slow"] == ("root(7)",)
    assert trace.args["join"] == ("slow(root(7))", "fast(root(7))")
    assert trace.args["reversed"] == ("fast(root(7))", "slow(root(7))")
    assert outputs["join"] == "join(slow(root(7)),fast(root(7)))"


async def test_no_input_calls_root_steps_without_arguments() -> None:
    seen: list[tuple[Any, ...]] = []

    async def fetch(*args: Any) -> str:
        seen.append(args)
        return "page"

    engine = engine_with(WorkflowStep("fetch", fetch))
    assert await engine.execute_workflow() == {"fetch": "page"}
    assert await engine.execute_workflow(None) == {"fetch": "page"}
    assert seen == [(), (None,)]


async def test_a_dependency_that_did_not_succeed_passes_none() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("ok", trace.step("ok")),
        WorkflowStep("bad", trace.step("bad", error=ValueError("x"))),
        WorkflowStep("report", trace.step("report"), ["ok", "bad"], trigger_rule="all_done"),
    )
    result = await engine.run("in")
    assert trace.args["report"] == ("ok(in)", None)
    assert result["report"].status is SUCCEEDED


# -- validation --------------------------------------------------------------------------


def test_step_positional_form_and_defaults() -> None:
    step = WorkflowStep("validate", noop)
    assert step.name == "validate"
    assert step.func is noop
    assert step.dependencies == ()
    assert step.timeout is None
    assert step.retry is None
    assert step.trigger_rule is TriggerRule.ALL_SUCCESS
    assert step.breaker is None
    assert repr(step) == "WorkflowStep('validate', noop)"


def test_step_keywords_are_normalised() -> None:
    breaker = CircuitBreaker(name="cdn")
    step = WorkflowStep(
        "download",
        noop,
        dependencies=["validate"],
        timeout=30,
        retry=4,
        trigger_rule="one_success",
        breaker=breaker,
    )
    assert step.dependencies == ("validate",)
    assert step.timeout == 30.0
    assert isinstance(step.timeout, float)
    assert step.retry == RetryPolicy(max_attempts=4)
    assert step.trigger_rule is TriggerRule.ONE_SUCCESS
    assert step.breaker is breaker
    assert repr(step) == (
        "WorkflowStep('download', noop, dependencies=['validate'], timeout=30.0, "
        "retry=RetryPolicy(max_attempts=4), trigger_rule='one_success', breaker='cdn')"
    )
    changed = step.replace(timeout=5, dependencies=[])
    assert (changed.timeout, changed.dependencies, changed.retry) == (5.0, (), step.retry)
    with pytest.raises(
        ConfigurationError, match="unknown WorkflowStep option 'timout'; did you mean 'timeout'"
    ):
        step.replace(timout=3)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"name": ""}, ConfigurationError, "name must be a non-empty str, got ''"),
        ({"func": 3}, TypeError, "step 's': func must be an async function"),
        ({"dependencies": "download"}, ConfigurationError, "write dependencies=['download']"),
        ({"dependencies": ["a", 3]}, ConfigurationError, "dependencies[1] must be a step name"),
        ({"dependencies": ["a", "a"]}, ConfigurationError, "dependencies lists 'a' twice"),
        ({"dependencies": ["s"]}, WorkflowCycleError, "step 's' depends on itself: s -> s"),
        (
            {"timeout": 0},
            ConfigurationError,
            "timeout must be a positive number of seconds or None, got 0",
        ),
        ({"timeout": -1.0}, ConfigurationError, "got -1.0"),
        ({"timeout": math.nan}, ConfigurationError, "got nan"),
        ({"timeout": True}, ConfigurationError, "got True"),
        (
            {"retry": 0},
            ConfigurationError,
            "retry must be a RetryPolicy, a positive int (max_attempts",
        ),
        ({"retry": "3"}, ConfigurationError, "got '3'"),
        ({"trigger_rule": "all_sucess"}, ConfigurationError, "did you mean 'all_success'"),
        ({"trigger_rule": 1}, ConfigurationError, "trigger_rule must be one of 'all_success'"),
        ({"breaker": object()}, TypeError, "breaker must be a CircuitBreaker or None, got object"),
    ],
)
def test_step_rejects_bad_arguments(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"name": "s", "func": noop, **options}
    with pytest.raises(error, match=re.escape(message)):
        WorkflowStep(**arguments)


def test_step_given_a_coroutine_instead_of_a_function_says_so() -> None:
    async def download(url: str) -> str:
        return url

    # the coroutine is closed: no "never awaited" warning (warnings are errors here)
    with pytest.raises(TypeError, match=r"not a call of it \(download_video\(\.\.\.\)\)"):
        WorkflowStep("download", download("x"))  # type: ignore[call-overload]  # the mistake tested


def test_dependency_given_as_a_step_suggests_its_name() -> None:
    validate = WorkflowStep("validate", noop)
    with pytest.raises(ConfigurationError, match="write the step's name, 'validate'"):
        WorkflowStep("download", noop, [validate])  # type: ignore[list-item]  # the mistake tested


def test_duplicate_step_is_rejected_at_once() -> None:
    engine = engine_with(WorkflowStep("download", noop))
    with pytest.raises(WorkflowValidationError) as caught:
        engine.add_step(WorkflowStep("download", noop))
    assert str(caught.value) == (
        "step 'download' is already in the workflow: step names must be unique "
        "(rename one of the two)"
    )
    assert isinstance(caught.value, ValueError)
    with pytest.raises(TypeError, match="add_step takes a WorkflowStep"):
        engine.add_step("download")  # type: ignore[arg-type]  # the mistake tested


def test_unknown_dependency_is_named_with_a_did_you_mean() -> None:
    engine = engine_with(
        WorkflowStep("download", noop), WorkflowStep("process", noop, ["donwload"])
    )
    with pytest.raises(WorkflowValidationError) as caught:
        engine.validate()
    assert str(caught.value) == (
        "step 'process' depends on 'donwload', which is not a step of this workflow; "
        "did you mean 'download'?"
    )
    assert caught.value.problems == (str(caught.value),)


def test_every_unknown_dependency_is_listed() -> None:
    engine = engine_with(WorkflowStep("a", noop, ["zzz"]), WorkflowStep("b", noop, ["a", "qqq"]))
    with pytest.raises(WorkflowValidationError) as caught:
        engine.validate()
    assert caught.value.problems == (
        "step 'a' depends on 'zzz', which is not a step of this workflow",
        "step 'b' depends on 'qqq', which is not a step of this workflow",
    )
    assert str(caught.value).startswith("the workflow has 2 unknown dependencies: step 'a'")


async def test_a_cycle_is_reported_with_its_full_path_before_anything_runs() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("start", trace.step("start")),
        WorkflowStep("a", trace.step("a"), ["start", "c"]),
        WorkflowStep("b", trace.step("b"), ["a"]),
        WorkflowStep("c", trace.step("c"), ["b"]),
    )
    with pytest.raises(WorkflowCycleError) as caught:
        await engine.execute_workflow("x")
    assert str(caught.value) == (
        "the workflow has a dependency cycle: a -> b -> c -> a (a -> b: b depends on a), "
        "so none of these steps can ever start; remove one of these dependencies"
    )
    assert caught.value.cycle == ("a", "b", "c", "a")
    assert isinstance(caught.value, WorkflowValidationError)
    assert not trace.calls
    with pytest.raises(WorkflowCycleError):
        engine.validate()


def test_an_empty_workflow_is_refused() -> None:
    with pytest.raises(WorkflowValidationError, match="the workflow has no steps"):
        AsyncWorkflowEngine().validate()


def test_validation_is_redone_after_a_step_is_added() -> None:
    engine = engine_with(WorkflowStep("b", noop, ["a"]))
    with pytest.raises(WorkflowValidationError):
        engine.validate()
    engine.add_step(WorkflowStep("a", noop))
    engine.validate()
    assert [s.name for s in engine.steps] == ["b", "a"]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"max_concurrent": 0},
            ConfigurationError,
            "max_concurrent must be a positive int or None",
        ),
        ({"name": ""}, ConfigurationError, "name must be a non-empty str, got ''"),
        ({"event_bus": object()}, TypeError, "event_bus must be an AsyncEventBus"),
        ({"store": "db.sqlite"}, TypeError, "store must be a checkpoint store"),
        (
            {"config": {"max_concurrent_tasks": 2}},
            ConfigurationError,
            "config must be an AsyncFlowConfig",
        ),
        ({"clock": 3}, TypeError, "clock must be an rxflows Clock"),
    ],
)
def test_engine_rejects_bad_arguments(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        AsyncWorkflowEngine(**options)


async def test_bad_run_id_is_refused() -> None:
    engine = engine_with(WorkflowStep("a", noop))
    with pytest.raises(ConfigurationError, match="run_id must be a non-empty str or None"):
        await engine.run("x", run_id="")


def test_start_outside_a_loop_says_how() -> None:
    engine = engine_with(WorkflowStep("a", noop))
    with pytest.raises(RuntimeError, match="a workflow runs on an asyncio loop"):
        engine.start("x")


# -- concurrency -------------------------------------------------------------------------


async def test_independent_branches_run_concurrently_and_a_shared_step_runs_once() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("download", trace.step("download", duration=2)),
        WorkflowStep("captions", trace.step("captions", duration=10), ["download"]),
        WorkflowStep("thumbnail", trace.step("thumbnail", duration=3), ["download"]),
        WorkflowStep("transcode", trace.step("transcode", duration=7), ["download"]),
        WorkflowStep(
            "publish", trace.step("publish", duration=1), ["captions", "thumbnail", "transcode"]
        ),
    )
    result = await engine.run("v")
    assert trace.calls["download"] == 1
    assert trace.starts == {
        "download": 0.0,
        "captions": 2.0,
        "thumbnail": 2.0,
        "transcode": 2.0,
        "publish": 12.0,
    }
    assert result.duration == 13.0
    assert result.order == ("download", "thumbnail", "transcode", "captions", "publish")
    assert result["captions"].started_at == 2.0
    assert result["captions"].finished_at == 12.0
    assert result["captions"].duration == 10.0


async def test_concurrency_is_bounded_by_max_concurrent_tasks() -> None:
    trace = Trace()
    steps = [WorkflowStep(f"s{i}", trace.step(f"s{i}", duration=1)) for i in range(10)]
    engine = engine_with(*steps, config=create_async_flow_config(max_concurrent_tasks=3))
    assert engine.max_concurrent == 3
    await engine.execute_workflow()
    assert trace.peak == 3
    assert sorted(trace.starts.values()) == [0.0] * 3 + [1.0] * 3 + [2.0] * 3 + [3.0]
    assert now() == 4.0
    wide = engine_with(*steps, max_concurrent=10)
    trace.peak = 0
    await wide.execute_workflow()
    assert trace.peak == 10


async def test_a_failure_does_not_cancel_sibling_branches() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("download", trace.step("download")),
        WorkflowStep(
            "captions", trace.step("captions", duration=1, error=RuntimeError("asr")), ["download"]
        ),
        WorkflowStep("transcode", trace.step("transcode", duration=50), ["download"]),
        WorkflowStep("burn_in", trace.step("burn_in"), ["captions", "transcode"]),
        WorkflowStep("upload", trace.step("upload"), ["transcode"]),
    )
    result = await engine.run("v")
    assert result.status is WorkflowStatus.FAILED
    assert not trace.cancelled
    assert result["transcode"].status is SUCCEEDED
    assert result["upload"].status is SUCCEEDED
    assert trace.ends["upload"] == 50.0
    assert result["burn_in"].status is SKIPPED
    assert result["burn_in"].root_cause == "captions"
    assert result.by_status(SKIPPED) == ("burn_in",)


# -- results and errors -----------------------------------------------------------------


async def test_run_reports_every_step_and_execute_workflow_raises_the_first_failure() -> None:
    trace = Trace()
    boom = ConnectionError("cdn down")
    engine = engine_with(
        WorkflowStep("validate", trace.step("validate", duration=1)),
        WorkflowStep("download", trace.step("download", duration=2, error=boom), ["validate"]),
        WorkflowStep(
            "thumbnail", trace.step("thumbnail", duration=9, error=ValueError("bad")), ["validate"]
        ),
        WorkflowStep("process", trace.step("process"), ["download"]),
    )
    result = await engine.run("v", run_id="job-1")
    assert isinstance(result, WorkflowResult)
    assert result.run_id == "job-1"
    assert result.status is WorkflowStatus.FAILED
    assert not result.succeeded
    download = result["download"]
    assert (download.status, download.error, download.attempts) == (FAILED, boom, 1)
    assert (download.started_at, download.finished_at) == (1.0, 3.0)
    assert download.reason == "ConnectionError: cdn down"
    assert result.first_failure is download
    assert [r.name for r in result.failures] == ["download", "thumbnail"]
    assert result.outputs == {"validate": "validate(v)"}
    assert [r.name for r in result] == ["validate", "download", "thumbnail", "process"]

    with pytest.raises(StepFailedError) as caught:
        await engine.execute_workflow("v", run_id="job-2")
    error = caught.value
    assert isinstance(error, WorkflowError)
    assert error.__cause__ is boom
    assert error.step == "download"
    assert error.result.run_id == "job-2"
    assert error.result["thumbnail"].status is FAILED
    assert str(error) == (
        "workflow run 'job-2' failed: step 'download' failed with ConnectionError: cdn down; "
        "1 more step(s) failed; skipped: process"
    )


async def test_a_non_awaitable_step_fails_with_a_clear_type_error() -> None:
    def blocking(url: str) -> str:
        return url

    engine = engine_with(WorkflowStep("download", blocking))  # type: ignore[arg-type]  # tested
    result = await engine.run("v")
    error = result["download"].error
    assert isinstance(error, TypeError)
    assert "returned str, not an awaitable; make it an async def function" in str(error)


async def test_a_step_that_cancels_itself_is_a_failure_not_a_cancelled_run() -> None:
    async def gives_up(_: object) -> None:
        raise asyncio.CancelledError

    trace = Trace()
    engine = engine_with(
        WorkflowStep("a", gives_up),
        WorkflowStep("b", trace.step("b", duration=1)),
        WorkflowStep("c", trace.step("c"), ["a"]),
    )
    result = await engine.run("x")
    assert result.status is WorkflowStatus.FAILED
    assert result["a"].status is CANCELLED
    assert result["a"].reason == "step 'a' raised CancelledError (the run was not cancelled)"
    assert result["b"].status is SUCCEEDED
    assert result["c"].root_cause == "a"
    with pytest.raises(StepFailedError, match="step 'a' was cancelled"):
        result.raise_for_status()


# -- trigger rules -----------------------------------------------------------------------


def rule_engine(rule: str, dependencies: list[str], trace: Trace) -> AsyncWorkflowEngine:
    """ok succeeds; bad fails; bad_child is skipped because bad failed; quiet is skipped by
    its one_failed rule although nothing failed; then target(rule) on ``dependencies``."""
    return engine_with(
        WorkflowStep("ok", trace.step("ok")),
        WorkflowStep("bad", trace.step("bad", error=RuntimeError("x"))),
        WorkflowStep("bad_child", trace.step("bad_child"), ["bad"]),
        WorkflowStep("quiet", trace.step("quiet"), ["ok"], trigger_rule="one_failed"),
        WorkflowStep("target", trace.step("target"), dependencies, trigger_rule=rule),
    )


@pytest.mark.parametrize(
    ("rule", "dependencies", "runs", "root_cause"),
    [
        ("all_success", ["ok"], True, None),
        ("all_success", ["ok", "bad"], False, "bad"),
        ("all_success", ["ok", "quiet"], False, "quiet"),
        ("all_success", ["ok", "bad_child"], False, "bad"),
        ("all_done", ["ok", "bad", "bad_child", "quiet"], True, None),
        ("always", ["bad", "bad_child"], True, None),
        ("one_success", ["ok", "bad"], True, None),
        ("one_success", ["bad", "quiet"], False, "bad"),
        ("one_success", ["quiet", "bad_child"], False, "bad"),
        ("one_success", ["quiet"], False, "quiet"),
        ("one_failed", ["ok", "bad"], True, None),
        ("one_failed", ["ok", "bad_child"], True, None),
        ("one_failed", ["ok", "quiet"], False, None),
        ("none_failed", ["ok", "quiet"], True, None),
        ("none_failed", ["ok", "bad"], False, "bad"),
        ("none_failed", ["ok", "bad_child"], False, "bad"),
    ],
)
async def test_trigger_rules(
    rule: str, dependencies: list[str], runs: bool, root_cause: str | None
) -> None:
    trace = Trace()
    result = await rule_engine(rule, dependencies, trace).run("x")
    target = result["target"]
    assert (target.status is SUCCEEDED) is runs
    assert ("target" in trace.calls) is runs
    if not runs:
        assert target.status is SKIPPED
        assert target.root_cause == root_cause
        assert target.attempts == 0
        assert target.started_at is None
        assert target.reason is not None
        assert target.reason.startswith(f"trigger rule {rule} not met: ")


async def test_skip_reasons_name_what_happened() -> None:
    trace = Trace()
    result = await rule_engine("one_success", ["quiet", "bad_child"], trace).run("x")
    assert result["quiet"].reason == (
        "trigger rule one_failed not met: no dependency failed ('ok' succeeded)"
    )
    assert result["quiet"].root_cause is None
    assert result["bad_child"].reason == "trigger rule all_success not met: 'bad' failed"
    assert result["target"].reason == (
        "trigger rule one_success not met: no dependency succeeded ('quiet' was skipped, "
        "'bad_child' was skipped (root cause: 'bad'))"
    )


async def test_skips_propagate_down_a_chain_naming_the_root_cause() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("fetch", trace.step("fetch", duration=1, error=TimeoutError("slow"))),
        WorkflowStep("parse", trace.step("parse"), ["fetch"]),
        WorkflowStep("index", trace.step("index"), ["parse"]),
        WorkflowStep("notify", trace.step("notify"), ["index"]),
        WorkflowStep("cleanup", trace.step("cleanup"), ["notify"], trigger_rule="all_done"),
    )
    result = await engine.run("x")
    assert [result[n].status for n in ("fetch", "parse", "index", "notify", "cleanup")] == [
        FAILED,  # the step's own TimeoutError: not a timeout of the engine's
        SKIPPED,
        SKIPPED,
        SKIPPED,
        SUCCEEDED,
    ]
    assert {result[n].root_cause for n in ("parse", "index", "notify")} == {"fetch"}
    assert result["index"].reason == (
        "trigger rule all_success not met: 'parse' was skipped (root cause: 'fetch')"
    )
    assert trace.args["cleanup"] == (None,)
    assert result.order == ("fetch", "parse", "index", "notify", "cleanup")
    assert result["notify"].finished_at == 1.0


# -- retries -----------------------------------------------------------------------------


async def test_retry_backs_off_in_virtual_time_and_counts_attempts() -> None:
    trace = Trace()
    policy = RetryPolicy(max_attempts=4, delay=1.0, backoff=2.0)
    engine = engine_with(
        WorkflowStep(
            "upload",
            trace.step("upload", duration=0.5, error=ConnectionError("reset"), fail_times=2),
            retry=policy,
        ),
    )
    log = EventLog()
    await engine.event_bus.subscribe("step_retrying", log)
    result = await engine.run("clip")
    upload = result["upload"]
    assert (upload.status, upload.attempts) == (SUCCEEDED, 3)
    # attempts at 0, 0.5 + 1 = 1.5, 2 + 2 = 4; done at 4.5
    assert trace.starts["upload"] == 4.0
    assert (upload.started_at, upload.finished_at) == (0.0, 4.5)
    assert [(e.attempt, e.delay, e.time, e.duration) for e in log.events] == [
        (1, 1.0, 0.5, 0.5),
        (2, 2.0, 2.0, 0.5),
    ]
    assert all(isinstance(e.error, ConnectionError) for e in log.events)
    await engine.aclose()


async def test_retry_gives_up_with_the_last_error_and_an_int_means_max_attempts() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("upload", trace.step("upload", error=ConnectionError("reset")), retry=3),
    )
    result = await engine.run("clip")
    upload = result["upload"]
    assert (upload.status, upload.attempts, trace.calls["upload"]) == (FAILED, 3, 3)
    assert now() == 3.0  # default back-off: 1 s, then 2 s
    assert upload.error is not None
    assert "rxflows retry: gave up after 3 attempts: max_attempts=3 reached" in (
        upload.error.__notes__
    )
    assert str(result.describe()).endswith(
        "step 'upload' failed after 3 attempts with ConnectionError: reset"
    )


async def test_retry_respects_give_up_on() -> None:
    trace = Trace()
    policy = RetryPolicy(max_attempts=5, delay=1.0, give_up_on=PermissionError)
    engine = engine_with(
        WorkflowStep("upload", trace.step("upload", error=PermissionError("403")), retry=policy)
    )
    result = await engine.run("clip")
    assert (result["upload"].attempts, now()) == (1, 0.0)


async def test_breaker_guards_each_attempt_and_retry_waits_out_an_open_circuit() -> None:
    trace = Trace()
    breaker = CircuitBreaker(failure_threshold=2, timeout=10.0, name="cdn")
    engine = engine_with(
        WorkflowStep(
            "upload",
            trace.step("upload", error=ConnectionError("reset"), fail_times=2),
            retry=RetryPolicy(max_attempts=4, delay=1.0, backoff=1.0, max_delay=60.0),
            breaker=breaker,
        ),
    )
    result = await engine.run("clip")
    # attempts 1 and 2 fail (t=0, t=1) and open the circuit; attempt 3 is rejected at 2
    # (CircuitOpenError, retry_after 9 s), attempt 4 runs at 11, in half-open, and succeeds
    assert result["upload"].status is SUCCEEDED
    assert result["upload"].attempts == 4
    assert trace.calls["upload"] == 3
    assert trace.starts["upload"] == 11.0
    assert breaker.statistics().rejected == 1


async def test_an_open_breaker_without_retry_fails_the_step() -> None:
    breaker = CircuitBreaker(name="cdn")
    breaker.force_open()
    engine = engine_with(WorkflowStep("upload", noop, breaker=breaker))
    result = await engine.run("x")
    assert isinstance(result["upload"].error, CircuitOpenError)


# -- timeouts ----------------------------------------------------------------------------


async def test_a_timeout_cancels_the_step_at_exactly_its_limit() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("download", trace.step("download", duration=60), timeout=30),
        WorkflowStep("process", trace.step("process"), ["download"]),
        WorkflowStep("other", trace.step("other", duration=100)),
    )
    log = EventLog()
    await engine.event_bus.subscribe("step_timed_out", log)
    await engine.event_bus.subscribe("step_failed", log)
    result = await engine.run("v")
    download = result["download"]
    assert download.status is TIMED_OUT
    assert download.finished_at == 30.0
    assert trace.cancelled == {"download": 30.0}  # really cancelled, at 30
    assert "download" not in trace.ends
    error = download.error
    assert isinstance(error, StepTimeoutError)
    assert isinstance(error, TimeoutError)
    assert (error.step, error.timeout, error.attempt) == ("download", 30.0, 1)
    assert str(error) == "step 'download' timed out after 30s (attempt 1) and was cancelled"
    assert result["process"].root_cause == "download"
    assert result["other"].status is SUCCEEDED  # a sibling branch is not disturbed
    assert log.brief() == [("step_timed_out", "download"), ("step_failed", "download")]
    assert log.events[0].duration == 30.0
    assert log.events[1].result is download
    with pytest.raises(StepFailedError, match=r"step 'download' timed out \(timeout 30s\)"):
        result.raise_for_status()
    await engine.aclose()


async def test_a_step_within_its_timeout_is_not_disturbed() -> None:
    trace = Trace()
    engine = engine_with(WorkflowStep("a", trace.step("a", duration=29.5), timeout=30))
    assert await engine.execute_workflow("x") == {"a": "a(x)"}
    assert not trace.cancelled


async def test_each_retry_attempt_gets_its_own_timeout() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep(
            "download",
            trace.step("download", duration=60),
            timeout=5,
            retry=RetryPolicy(max_attempts=3, delay=1.0, backoff=1.0),
        )
    )
    log = EventLog()
    await engine.event_bus.subscribe("*", log)
    result = await engine.run("v")
    download = result["download"]
    assert (download.status, download.attempts, download.finished_at) == (TIMED_OUT, 3, 17.0)
    assert isinstance(download.error, StepTimeoutError)
    assert download.error.attempt == 3
    assert [(e.event, e.attempt, e.time) for e in log.events if e.step] == [
        ("step_started", 1, 0.0),
        ("step_timed_out", 1, 5.0),
        ("step_retrying", 1, 5.0),
        ("step_timed_out", 2, 11.0),
        ("step_retrying", 2, 11.0),
        ("step_timed_out", 3, 17.0),
        ("step_failed", 3, 17.0),
    ]
    await engine.aclose()


async def test_timeouts_follow_an_injected_clock() -> None:
    clock = ManualClock()
    finished: list[str] = []

    async def hangs(_: object) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            finished.append("cleanup")

    engine = engine_with(WorkflowStep("hang", hangs, timeout=30), clock=clock)
    assert engine.clock is clock
    run = engine.start("x")
    await settle()
    assert clock.sleepers == 1  # the watchdog waits on the injected clock
    clock.advance(29.9)
    await settle()
    assert not run.done()
    clock.advance(0.1)
    result = await run
    assert result["hang"].status is TIMED_OUT
    assert result["hang"].finished_at == 30.0
    assert finished == ["cleanup"]


async def test_a_timed_out_step_kills_its_child_process_in_its_cleanup() -> None:
    clock = ManualClock()  # moved by hand once the child runs: no race with the spawn
    spawned = asyncio.Event()
    children: list[asyncio.subprocess.Process] = []

    async def transcode(_: object) -> int:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import time; time.sleep(60)"
        )
        children.append(child)
        spawned.set()
        try:
            return await child.wait()
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()

    engine = engine_with(WorkflowStep("transcode", transcode, timeout=30), clock=clock)
    run = engine.start("clip.mp4")
    await spawned.wait()
    clock.advance(30)
    result = await run
    assert result["transcode"].status is TIMED_OUT
    assert children[0].returncode == -9  # killed, not left running for 60 s


# -- cancellation ------------------------------------------------------------------------


async def test_cancelling_a_run_cancels_every_running_step_and_reports_them() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("download", trace.step("download", duration=1)),
        WorkflowStep("transcode", trace.step("transcode", duration=100), ["download"]),
        WorkflowStep("captions", trace.step("captions", duration=100), ["download"]),
        WorkflowStep("upload", trace.step("upload"), ["transcode", "captions"]),
    )
    log = EventLog()
    await engine.event_bus.subscribe("*", log)
    run = engine.start("v", run_id="job-9")
    assert run.run_id == "job-9"
    assert run.status.value == "running"
    await asyncio.sleep(5)
    assert run.cancel() is True
    assert run.cancel() is False
    result = await run
    assert run.done()
    assert run.result() is result
    assert run.status is WorkflowStatus.CANCELLED
    assert result.status is WorkflowStatus.CANCELLED
    assert trace.cancelled == {"transcode": 5.0, "captions": 5.0}
    assert result["download"].status is SUCCEEDED
    for name in ("transcode", "captions"):
        assert result[name].status is CANCELLED
        assert result[name].reason == "the run was cancelled while the step ran"
        assert result[name].finished_at == 5.0
    assert result["upload"].status is CANCELLED
    assert result["upload"].reason == "the run was cancelled before it started"
    assert result.finished_at == 5.0
    assert log.brief()[-3:] == [
        ("step_cancelled", "transcode"),
        ("step_cancelled", "captions"),
        ("workflow_cancelled", None),
    ]
    assert log.events[-1].result is result
    with pytest.raises(asyncio.CancelledError):
        result.raise_for_status()
    await engine.aclose()


async def test_cancelling_the_awaiting_task_cancels_the_steps_and_raises() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("a", trace.step("a", duration=100)),
        WorkflowStep("b", trace.step("b", duration=100)),
    )
    task = asyncio.create_task(engine.execute_workflow("x"))
    await asyncio.sleep(3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert trace.cancelled == {"a": 3.0, "b": 3.0}  # unwound before the caller resumed


async def test_a_run_cancelled_before_it_began_runs_nothing() -> None:
    trace = Trace()
    engine = engine_with(WorkflowStep("a", trace.step("a")))
    run = engine.start("x")
    with pytest.raises(asyncio.InvalidStateError, match="has not ended"):
        run.result()
    assert run.cancel()
    result = await run
    assert result.status is WorkflowStatus.CANCELLED
    assert result["a"].reason == "the run was cancelled before it started"
    assert not trace.calls
    assert repr(run) == f"<WorkflowRun 'workflow' {run.run_id} cancelled>"


async def test_aclose_cancels_running_runs_and_refuses_new_ones() -> None:
    trace = Trace()
    engine = engine_with(WorkflowStep("a", trace.step("a", duration=100)), name="clipper")
    run = engine.start("x")
    await asyncio.sleep(1)
    assert repr(engine) == "<AsyncWorkflowEngine 'clipper': 1 steps, max_concurrent=100, 1 running>"
    await engine.aclose()
    assert run.done()
    assert (await run)["a"].status is CANCELLED
    assert trace.cancelled == {"a": 1.0}
    assert engine.event_bus.closed
    with pytest.raises(ClosedResourceError, match="workflow engine 'clipper' is closed"):
        engine.start("x")
    await engine.aclose()  # idempotent


async def test_a_shared_bus_is_not_closed_by_the_engine() -> None:
    bus = create_async_event_bus()
    async with AsyncWorkflowEngine(event_bus=bus) as engine:
        engine.add_step(WorkflowStep("a", noop))
        assert engine.event_bus is bus
        await engine.run()
    assert not bus.closed
    await bus.aclose()


# -- events ------------------------------------------------------------------------------


async def test_events_arrive_in_order_with_their_payloads() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("validate", trace.step("validate", duration=1)),
        WorkflowStep(
            "download",
            trace.step("download", duration=2, error=ConnectionError("reset"), fail_times=1),
            ["validate"],
            retry=RetryPolicy(max_attempts=2, delay=0.5),
        ),
        WorkflowStep("process", trace.step("process", duration=60), ["download"], timeout=10),
        WorkflowStep("encode", trace.step("encode"), ["process"]),
        WorkflowStep("alert", trace.step("alert"), ["process"], trigger_rule="one_failed"),
        name="video",
    )
    log = EventLog()
    await engine.event_bus.subscribe("*", log)
    result = await engine.run("v", run_id="r1")
    assert [(e.event, e.step, e.attempt, e.time) for e in log.events] == [
        ("workflow_started", None, None, 0.0),
        ("step_started", "validate", 1, 0.0),
        ("step_completed", "validate", 1, 1.0),
        ("step_started", "download", 1, 1.0),
        ("step_retrying", "download", 1, 3.0),
        ("step_completed", "download", 2, 5.5),
        ("step_started", "process", 1, 5.5),
        ("step_timed_out", "process", 1, 15.5),
        ("step_failed", "process", 1, 15.5),
        ("step_skipped", "encode", None, 15.5),
        ("step_started", "alert", 1, 15.5),
        ("step_completed", "alert", 1, 15.5),
        ("workflow_failed", None, None, 15.5),
    ]
    assert {e.run_id for e in log.events} == {"r1"}
    assert {e.workflow for e in log.events} == {"video"}
    completed = log.events[5]
    assert (completed.output, completed.duration) == ("download(validate(v))", 4.5)
    assert completed.result is result["download"]
    retrying = log.events[4]
    assert (retrying.delay, retrying.duration, str(retrying.error)) == (0.5, 2.0, "reset")
    skipped = log.events[9]
    assert skipped.reason == "trigger rule all_success not met: 'process' timed out"
    end = log.events[-1]
    assert end.result is result
    assert end.duration == 15.5
    assert end.reason == result.describe()
    assert str(log.events[2]) == (
        "step_completed run=r1 step=validate attempt=1 duration=1.000s output='validate(v)'"
    )
    await engine.aclose()


async def test_no_event_is_published_when_nobody_listens() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("a", trace.step("a", error=ValueError("x"))),
        WorkflowStep("b", trace.step("b"), ["a"]),
    )
    await engine.run("x")
    assert engine.event_bus.statistics().published == 0
    log = EventLog()
    await engine.event_bus.subscribe("step_skipped", log)
    await engine.run("x")
    assert engine.event_bus.statistics().published == 1
    assert log.brief() == [("step_skipped", "b")]
    await engine.aclose()


async def test_a_run_returns_after_its_events_are_handled() -> None:
    handled: list[str] = []

    async def slow_monitor(data: WorkflowEvent) -> None:
        await asyncio.sleep(5)
        handled.append(data.event)

    engine = engine_with(WorkflowStep("a", noop), WorkflowStep("b", noop, ["a"]))
    await engine.event_bus.subscribe("step_completed", slow_monitor)
    await engine.execute_workflow("x")
    assert handled == ["step_completed", "step_completed"]
    assert now() == 10.0
    await engine.aclose()


async def test_cancel_after_every_step_ended_does_not_undo_the_result() -> None:
    async def slow_monitor(data: WorkflowEvent) -> None:
        await asyncio.sleep(5)

    engine = engine_with(WorkflowStep("a", noop))
    await engine.event_bus.subscribe("step_completed", slow_monitor)
    run = engine.start("x")
    await asyncio.sleep(1)  # a is done; the run waits for the monitor
    assert not run.done()
    assert run.cancel() is False
    result = await run
    assert result.status is WorkflowStatus.SUCCEEDED
    assert now() == 5.0
    await engine.aclose()


async def test_a_monitor_on_a_topic_observable_sees_the_events_too() -> None:
    engine = engine_with(WorkflowStep("a", noop))
    seen: list[str] = []
    subscription = engine.event_bus.topic("workflow_completed").subscribe(
        lambda e: seen.append(e.event)
    )
    await engine.run("x")
    assert seen == ["workflow_completed"]
    subscription.dispose()
    await engine.aclose()


# -- the Rx face -------------------------------------------------------------------------


async def test_observable_emits_step_results_as_they_end() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("a", trace.step("a", duration=1)),
        WorkflowStep("b", trace.step("b", duration=3, error=ValueError("x")), ["a"]),
        WorkflowStep("c", trace.step("c", duration=1), ["a"]),
        WorkflowStep("d", trace.step("d"), ["b"]),
    )
    results: list[StepResult] = await collect(engine.observable("in"))
    assert [(r.name, r.status, r.finished_at) for r in results] == [
        ("a", SUCCEEDED, 1.0),
        ("c", SUCCEEDED, 2.0),
        ("b", FAILED, 4.0),
        ("d", SKIPPED, 4.0),
    ]

    def failed_step(result: StepResult) -> bool:
        return result.failed

    def name_of(result: StepResult) -> str:
        return result.name

    failed = await collect(
        engine.observable("in").pipe(rx_ops.filter(failed_step), rx_ops.map(name_of))
    )
    assert failed == ["b"]


def test_observable_marbles() -> None:
    async def step(ms: int) -> int:
        await asyncio.sleep(ms / 1000)
        return ms

    def outcome(result: StepResult) -> str:
        return f"{result.name}={result.status.value}"

    with marbles() as m:
        engine = engine_with(
            WorkflowStep("a", step),
            WorkflowStep("b", step, ["a"]),
            WorkflowStep("c", step, ["a"], timeout=0.001),
        )
        m.expect(engine.observable(2).pipe(rx_ops.map(outcome))).to_be(
            "--ac(b|)",
            {"a": "a=succeeded", "b": "b=succeeded", "c": "c=timed_out"},
        )


async def test_disposing_the_subscription_cancels_the_run() -> None:
    trace = Trace()
    engine = engine_with(WorkflowStep("a", trace.step("a", duration=100)))
    seen: list[StepResult] = []
    subscription = engine.observable("x").subscribe(seen.append, scheduler=loop_scheduler())
    await asyncio.sleep(2)
    subscription.dispose()
    await settle()
    assert trace.cancelled == {"a": 2.0}
    assert seen == []


async def test_each_step_of_a_run_is_a_replayed_observable() -> None:
    trace = Trace()
    engine = AsyncWorkflowEngine()
    engine.add_steps(
        [
            WorkflowStep("a", trace.step("a", duration=1)),
            WorkflowStep("b", trace.step("b", duration=2), ["a"]),
        ]
    )
    run = engine.start("x")
    seen: list[tuple[str, float]] = []
    run.step("b").subscribe(lambda r: seen.append((r.name, now())))
    await asyncio.sleep(1.5)
    late: list[StepResult] = []
    done: list[bool] = []
    run.step("a").subscribe(late.append, on_completed=lambda: done.append(True))
    assert [r.output for r in late] == ["a(x)"]  # replayed to a late subscriber
    assert done == [True]
    result = await run
    assert seen == [("b", 3.0)]
    assert await collect(run.step("b")) == [result["b"]]
    with pytest.raises(ConfigurationError, match="the workflow has no step 'c'"):
        run.step("c")
    with pytest.raises(ConfigurationError, match="did you mean 'b'"):
        run.step("bb")


async def test_each_subscription_is_a_new_run() -> None:
    trace = Trace()
    engine = engine_with(WorkflowStep("a", trace.step("a")))
    observable = engine.observable("x")
    assert not trace.calls  # cold
    await collect(observable)
    await collect(observable)
    assert trace.calls["a"] == 2


async def test_observable_validates_at_once() -> None:
    engine = engine_with(WorkflowStep("a", noop, ["b"]))
    with pytest.raises(WorkflowValidationError):
        engine.observable("x")


async def test_an_observer_that_raises_stops_the_run_and_gets_the_error() -> None:
    trace = Trace()
    engine = engine_with(
        WorkflowStep("a", trace.step("a")), WorkflowStep("b", trace.step("b", duration=9), ["a"])
    )
    errors: list[Exception] = []

    def explode(result: StepResult) -> None:
        raise RuntimeError(f"observer broke on {result.name}")

    engine.observable("x").subscribe(explode, errors.append, scheduler=loop_scheduler())
    await asyncio.sleep(1)
    await settle()
    assert "b" not in trace.ends
    assert trace.cancelled == {"b": 0.0}
    assert [str(e) for e in errors] == ["observer broke on a"]


# -- mermaid -----------------------------------------------------------------------------


def test_to_mermaid_draws_the_dag_with_step_options() -> None:
    engine = engine_with(
        WorkflowStep("download", noop, timeout=30),
        WorkflowStep("process", noop, ["download"], retry=3),
        WorkflowStep("thumb", noop, ["download"], breaker=CircuitBreaker(name="img")),
        WorkflowStep('say "hi"', noop, ["process", "thumb"], trigger_rule="all_done"),
    )
    assert engine.to_mermaid() == (
        "flowchart TD\n"
        '    s0["download<br/>timeout 30s"]\n'
        '    s1["process<br/>retry x3"]\n'
        '    s2["thumb<br/>breaker img"]\n'
        '    s3["say #quot;hi#quot;<br/>[all_done]"]\n'
        "    s0 --> s1\n"
        "    s0 --> s2\n"
        "    s1 --> s3\n"
        "    s2 --> s3\n"
    )
    assert engine.to_mermaid(direction="LR").startswith("flowchart LR\n")
    with pytest.raises(ConfigurationError, match=r"direction must be one of .*did you mean 'LR'"):
        engine.to_mermaid(direction="lr")


async def test_to_mermaid_colours_a_run_and_shows_missing_steps() -> None:
    engine = engine_with(
        WorkflowStep("a", noop),
        WorkflowStep("b", noop, ["a"], timeout=1),
        WorkflowStep("c", noop, ["b"]),
    )
    result = await engine.run("x")
    text = engine.to_mermaid(result=result)
    assert (
        "    classDef succeeded fill:#d4edda,stroke:#28a745\n    class s0,s1,s2 succeeded\n" in text
    )
    broken = engine_with(WorkflowStep("b", noop, ["a"]))
    assert broken.to_mermaid() == (
        'flowchart TD\n    s0["b"]\n    missing_1["a<br/>(missing)"]\n    missing_1 --> s0\n'
    )


# -- the example -------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_workflow_example(capsys: pytest.CaptureFixture[str]) -> None:
    await load_example("workflow").main()
    out = capsys.readouterr().out
    assert "flowchart TD" in out
    assert "step_completed" in out
    assert "first run: failed" in out
    assert "resumed run: succeeded" in out
    assert "validate, download, extract_audio restored" in out
    assert "skipped notify: root cause generate_captions" in out
    assert "'generate_captions': 3, 'create_clips': 1" in out  # 2 attempts, then 1 on resume
    assert "class s0,s1,s2 restored" in out
