"""The workflow engine in one screen: the guide's 8-step video workflow, a failure, a resume.

Run it with ``python examples/workflow.py``. The captioning service is down during
the first run: its step retries, gives up, and the steps after it are skipped,
naming it as the root cause. Once the service is back, the same ``run_id`` resumes
from the SQLite checkpoints: the three steps that completed are not run again. Every
step is a stub that sleeps on the loop clock, so under
``rxflows.testing.VirtualTimeLoop`` the script runs in no time (the test suite does
that).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from rxflows import (
    AsyncEventLoopManager,
    AsyncWorkflowEngine,
    RetryPolicy,
    SQLiteCheckpointStore,
    StepFailedError,
    StepStatus,
    WorkflowEvent,
    WorkflowStep,
    create_async_flow_config,
)

runs: Counter[str] = Counter()
captions_service_up = False


async def work(name: str, seconds: float) -> None:
    runs[name] += 1
    await asyncio.sleep(seconds)


async def validate_video_url(url: str) -> str:
    await work("validate", 0.1)
    return url


async def download_video(url: str) -> dict[str, Any]:
    await work("download", 2.0)
    return {"path": f"/tmp/{url.rsplit('/', 1)[-1]}", "size_mb": 48}


async def extract_audio(video: dict[str, Any]) -> str:
    await work("extract_audio", 1.0)
    return str(video["path"]).replace(".mp4", ".wav")


async def generate_captions(audio: str) -> list[dict[str, Any]]:
    await work("generate_captions", 3.0)
    if not captions_service_up:
        raise ConnectionError("captioning service unavailable")
    return [
        {"start": 0.0, "end": 2.5, "text": "Hello"},
        {"start": 2.5, "end": 5.0, "text": "world"},
    ]


async def create_clips(captions: list[dict[str, Any]]) -> list[str]:
    await work("create_clips", 2.0)
    return [f"clip-{i}.mp4" for i, _ in enumerate(captions, 1)]


async def add_effects(clips: list[str]) -> list[str]:
    await work("add_effects", 1.5)
    return [clip.replace(".mp4", "-fx.mp4") for clip in clips]


async def upload_video(clips: list[str]) -> list[str]:
    await work("upload", 1.0)
    return [f"https://cdn.example.com/{clip}" for clip in clips]


async def send_notification(urls: list[str]) -> str:
    await work("notify", 0.1)
    return f"sent {len(urls)} links"


async def workflow_monitor(event_type: str, data: WorkflowEvent) -> None:
    print(f"  {event_type:15} {data.step:18} attempt {data.attempt}")


async def main() -> None:
    global captions_service_up
    captions_service_up = False
    runs.clear()
    config = create_async_flow_config(max_concurrent_tasks=4)
    workflow_steps = [
        WorkflowStep("validate", validate_video_url),
        WorkflowStep("download", download_video, dependencies=["validate"], timeout=30.0),
        WorkflowStep("extract_audio", extract_audio, dependencies=["download"]),
        WorkflowStep(
            "generate_captions",
            generate_captions,
            dependencies=["extract_audio"],
            retry=RetryPolicy(max_attempts=2, delay=5.0),
        ),
        WorkflowStep("create_clips", create_clips, dependencies=["generate_captions"]),
        WorkflowStep("add_effects", add_effects, dependencies=["create_clips"]),
        WorkflowStep("upload", upload_video, dependencies=["add_effects"], timeout=60.0),
        WorkflowStep("notify", send_notification, dependencies=["upload"]),
    ]
    with tempfile.TemporaryDirectory() as directory:
        store = SQLiteCheckpointStore(Path(directory) / "checkpoints.sqlite3")
        async with AsyncWorkflowEngine(config, name="video") as workflow_engine:
            for step in workflow_steps:
                workflow_engine.add_step(step)
            print(workflow_engine.to_mermaid())

            await workflow_engine.event_bus.subscribe("step_completed", workflow_monitor)
            await workflow_engine.event_bus.subscribe("step_failed", workflow_monitor)
            await workflow_engine.event_bus.subscribe("step_retrying", workflow_monitor)

            url = "https://videos.example.com/talk.mp4"
            print("run 1 (the captioning service is down):")
            try:
                await workflow_engine.execute_workflow(url, run_id="job-42", store=store)
            except StepFailedError as error:
                print(f"first run: {error.result.status.value}: {error.__cause__}")
                for name in error.result.by_status(StepStatus.SKIPPED):
                    print(f"  skipped {name}: root cause {error.result[name].root_cause}")

            captions_service_up = True
            print("run 2 (same run_id, the service is back):")
            result = await workflow_engine.run(url, run_id="job-42", store=store)
            restored = [r.name for r in result if r.restored]
            print(f"resumed run: {result.status.value}; {', '.join(restored)} restored")
            print(f"  notify -> {result.outputs['notify']}")
            print(f"  each step ran: {dict(runs)}")
            print(workflow_engine.to_mermaid(result=result))


if __name__ == "__main__":
    AsyncEventLoopManager(create_async_flow_config()).run(main())
