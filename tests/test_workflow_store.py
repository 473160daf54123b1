"""Checkpoint stores and durable resume: a resumed run never runs a completed step twice."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from rxflows import (
    AsyncWorkflowEngine,
    CheckpointError,
    CheckpointStore,
    ConfigurationError,
    MemoryCheckpointStore,
    SQLiteCheckpointStore,
    StepStatus,
    WorkflowStatus,
    WorkflowStep,
)

from .workflow_support import EventLog, Trace


def video_workflow(
    trace: Trace, *, fail_captions: bool = False, **options: Any
) -> AsyncWorkflowEngine:
    engine = AsyncWorkflowEngine(**options)
    engine.add_step(WorkflowStep("download", trace.step("download", duration=1)))
    engine.add_step(WorkflowStep("audio", trace.step("audio", duration=1), ["download"]))
    engine.add_step(
        WorkflowStep(
            "captions",
            trace.step(
                "captions", duration=1, error=ConnectionError("asr") if fail_captions else None
            ),
            ["audio"],
        )
    )
    engine.add_step(WorkflowStep("publish", trace.step("publish"), ["captions", "download"]))
    return engine


async def test_a_completed_run_resumed_runs_nothing_again() -> None:
    store = MemoryCheckpointStore()
    first = Trace()
    outputs = await video_workflow(first).execute_workflow("v.mp4", run_id="job", store=store)
    assert store.saves == 4
    again = Trace()
    engine = video_workflow(again)
    log = EventLog()
    await engine.event_bus.subscribe("*", log)
    result = await engine.run("v.mp4", run_id="job", store=store)
    assert not again.calls
    assert store.saves == 4
    assert result.status is WorkflowStatus.SUCCEEDED
    assert result.outputs == outputs
    assert all(r.restored and r.attempts == 0 and r.started_at is None for r in result)
    assert log.brief() == [
        ("workflow_started", None),
        ("step_restored", "download"),
        ("step_restored", "audio"),
        ("step_restored", "captions"),
        ("step_restored", "publish"),
        ("workflow_completed", None),
    ]
    assert log.events[1].output == "download(v.mp4)"
    assert await store.run_ids() == ["job"]
    await engine.aclose()


async def test_resume_after_a_failed_step_reruns_only_what_did_not_complete() -> None:
    store = MemoryCheckpointStore()
    first = Trace()
    result = await video_workflow(first, fail_captions=True).run("v.mp4", run_id="job", store=store)
    assert result.status is WorkflowStatus.FAILED
    assert store.saves == 2  # download, audio
    second = Trace()
    resumed = await video_workflow(second, store=store).run("v.mp4", run_id="job")
    assert resumed.status is WorkflowStatus.SUCCEEDED
    assert dict(second.calls) == {"captions": 1, "publish": 1}
    assert second.args["captions"] == ("audio(download(v.mp4))",)  # the restored output
    assert second.args["publish"] == ("captions(audio(download(v.mp4)))", "download(v.mp4)")
    assert [r.name for r in resumed if r.restored] == ["download", "audio"]
    assert store.saves == 4


async def test_resume_after_a_crash_runs_no_completed_step_twice(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.sqlite3"
    first = Trace()
    captions_started = asyncio.Event()

    async def slow_captions(audio: str) -> str:
        captions_started.set()
        await asyncio.sleep(3600)
        return "never"

    engine = AsyncWorkflowEngine()
    engine.add_step(WorkflowStep("download", first.step("download", duration=1)))
    engine.add_step(WorkflowStep("audio", first.step("audio", duration=1), ["download"]))
    engine.add_step(WorkflowStep("captions", slow_captions, ["audio"]))
    engine.add_step(WorkflowStep("publish", first.step("publish"), ["captions", "download"]))
    run = engine.start("v.mp4", run_id="job-7", store=SQLiteCheckpointStore(path))
    await captions_started.wait()  # download and audio are saved before captions starts
    run.cancel()  # the crash: captions never completes
    crashed = await run
    assert crashed["captions"].status is StepStatus.CANCELLED
    assert dict(first.calls) == {"download": 1, "audio": 1}

    # a new process: a new engine, a new store object on the same file
    second = Trace()
    resumed = await video_workflow(second).execute_workflow(
        "v.mp4", run_id="job-7", store=SQLiteCheckpointStore(path)
    )
    assert dict(second.calls) == {"captions": 1, "publish": 1}
    assert second.args["captions"] == ("audio(download(v.mp4))",)
    assert resumed["publish"] == "publish(captions(audio(download(v.mp4))),download(v.mp4))"


async def test_sqlite_store_round_trip_listing_and_delete(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "c.sqlite3")
    assert store.path == tmp_path / "c.sqlite3"
    assert await store.load("nothing") == {}
    await store.save("r1", "a", {"clips": ["x.mp4"], "n": 2, "ok": True, "none": None})
    await store.save("r1", "b", (1, 2))  # JSON has no tuples: comes back as a list
    await store.save("r2", "a", "text")
    await store.save("r1", "a", "replaced")
    reopened = SQLiteCheckpointStore(tmp_path / "c.sqlite3")
    assert await reopened.load("r1") == {"a": "replaced", "b": [1, 2]}
    assert await reopened.run_ids() == ["r1", "r2"]
    await reopened.delete("r1")
    assert await store.load("r1") == {}
    assert await store.run_ids() == ["r2"]
    assert repr(store) == f"SQLiteCheckpointStore({str(tmp_path / 'c.sqlite3')!r})"


async def test_deleting_checkpoints_makes_the_next_run_start_over() -> None:
    store = MemoryCheckpointStore()
    await video_workflow(Trace()).run("v", run_id="job", store=store)
    await store.delete("job")
    again = Trace()
    await video_workflow(again).run("v", run_id="job", store=store)
    assert sum(again.calls.values()) == 4


class Frame:
    pass


@pytest.mark.parametrize(
    ("output", "what"),
    [
        (b"\x00\x01", "a bytes"),
        ({"data": b"\x00"}, "a dict holding a bytes"),
        ([1, Frame()], "a list holding a tests.test_workflow_store.Frame"),
        (
            {(1, 2): "pair"},
            "a dict that JSON cannot encode "
            "(keys must be str, int, float, bool or None, not tuple)",
        ),
    ],
)
async def test_an_output_json_cannot_hold_fails_the_step_naming_it(output: Any, what: str) -> None:
    async def download(_: object) -> Any:
        return output

    store = MemoryCheckpointStore()
    engine = AsyncWorkflowEngine()
    engine.add_step(WorkflowStep("download", download))
    engine.add_step(WorkflowStep("process", download, ["download"]))
    result = await engine.run("v", run_id="job", store=store)
    step = result["download"]
    assert step.status is StepStatus.FAILED
    error = step.error
    assert isinstance(error, CheckpointError)
    assert (error.step, error.run_id) == ("download", "job")
    assert str(error) == (
        f"step 'download' returned {what}, which a checkpoint store cannot save: outputs must "
        "be JSON-serializable (str, int, float, bool, None, lists, dicts with str keys); return "
        "a path or an id instead of the data, or run without a store"
    )
    assert result["process"].root_cause == "download"
    assert store.saves == 0


async def test_sqlite_store_reports_the_same_serialization_error(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "c.sqlite3")
    with pytest.raises(CheckpointError, match=re.escape("step 'x' returned a set, which")):
        await store.save("r", "x", {1, 2})
    assert await store.load("r") == {}


class BrokenStore:
    def __init__(self, *, load: Any = None, save_error: Exception | None = None) -> None:
        self.loaded = load
        self.save_error = save_error

    async def load(self, run_id: str) -> Mapping[str, Any]:
        if isinstance(self.loaded, Exception):
            raise self.loaded
        return self.loaded if self.loaded is not None else {}

    async def save(self, run_id: str, step: str, output: Any) -> None:
        if self.save_error is not None:
            raise self.save_error

    def __repr__(self) -> str:
        return "BrokenStore()"


async def test_a_store_that_cannot_load_stops_the_run_before_any_step() -> None:
    trace = Trace()
    store = BrokenStore(load=OSError("disk gone"))
    assert isinstance(store, CheckpointStore)
    engine = video_workflow(trace)
    with pytest.raises(CheckpointError) as caught:
        await engine.run("v", run_id="job", store=store)
    assert (
        str(caught.value)
        == "checkpoint store BrokenStore() could not load run 'job': OSError: disk gone"
    )
    assert isinstance(caught.value.__cause__, OSError)
    assert not trace.calls

    bad = BrokenStore(load=["download"])
    with pytest.raises(CheckpointError, match="returned list from load"):
        await engine.run("v", run_id="job", store=bad)


async def test_a_store_that_cannot_save_fails_the_step() -> None:
    trace = Trace()
    engine = video_workflow(trace)
    result = await engine.run("v", run_id="job", store=BrokenStore(save_error=OSError("full")))
    error = result["download"].error
    assert isinstance(error, CheckpointError)
    assert str(error) == (
        "checkpoint store BrokenStore() could not save the output of step 'download' "
        "(run 'job'): OSError: full"
    )
    assert isinstance(error.__cause__, OSError)
    assert trace.calls["download"] == 1
    assert "audio" not in trace.calls


async def test_checkpoints_of_steps_no_longer_in_the_workflow_are_ignored() -> None:
    store = MemoryCheckpointStore()
    await store.save("job", "retired_step", "x")
    await store.save("job", "download", "cached")
    trace = Trace()
    result = await video_workflow(trace).run("v", run_id="job", store=store)
    assert result["download"].restored
    assert trace.args["audio"] == ("cached",)
    assert "retired_step" not in result.steps


def test_sqlite_store_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigurationError, match="use MemoryCheckpointStore for that"):
        SQLiteCheckpointStore(":memory:")
    with pytest.raises(ConfigurationError, match="path must name a database file, got ''"):
        SQLiteCheckpointStore("")
    with pytest.raises(TypeError, match=re.escape("path must be a str or os.PathLike, got bytes")):
        SQLiteCheckpointStore(b"c.sqlite3")  # type: ignore[arg-type]  # the mistake tested
    with pytest.raises(ConfigurationError, match="timeout must be a finite number of seconds >= 0"):
        SQLiteCheckpointStore("c.sqlite3", timeout=-1)


async def test_sqlite_store_in_a_missing_directory_fails_the_step_clearly(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "missing" / "c.sqlite3")
    with pytest.raises(CheckpointError, match="cannot open the checkpoint database"):
        await store.load("r")
