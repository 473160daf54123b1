"""AsyncVideoProcessor end to end: real ffmpeg, real pocketsphinx, a local aiohttp server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio
from aiohttp import web

from rxflows import (
    AsyncEventBus,
    ClosedResourceError,
    ConfigurationError,
    WorkflowEvent,
    create_async_event_bus,
    create_async_flow_config,
)
from rxflows.video import (
    PIPELINE_STEPS,
    STAGES,
    AsyncVideoProcessor,
    VideoProgress,
    VideoResult,
    Word,
    _media,
    create_async_video_processor,
    ffmpeg_exe,
    probe,
    run_ffmpeg,
)
from tests.support import wait_exited

TALKING = Path(__file__).parent / "data" / "talking.mp4"
FAST_RETRY = create_async_flow_config(retry_base_delay=0.01, retry_max_delay=0.05)


@dataclass
class Server:
    base: str
    hits: dict[str, int] = field(default_factory=dict)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(base="")

    def hit(name: str) -> None:
        state.hits[name] = state.hits.get(name, 0) + 1

    async def video(request: web.Request) -> web.StreamResponse:
        hit("video")
        return web.FileResponse(TALKING)

    async def broken(request: web.Request) -> web.Response:
        hit("broken")
        return web.Response(status=500, text="boom")

    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        clip, captions = form["file"], form["captions"]
        assert isinstance(clip, web.FileField)
        assert isinstance(captions, web.FileField)
        state.uploads.append(
            {
                "name": clip.filename,
                "body": clip.file.read(),
                "captions": captions.file.read().decode(),
                "metadata": json.loads(str(form["metadata"])),
            }
        )
        return web.json_response({"url": f"https://media.example/{clip.filename}"})

    async def webhook(request: web.Request) -> web.Response:
        state.webhooks.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/media/talk.mp4", video)
    app.router.add_get("/media/broken.mp4", broken)
    app.router.add_post("/upload", upload)
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.base = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


async def _record(bus: AsyncEventBus, *topics: str) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def handler(event: str, data: Any) -> None:
        seen.append((event, data))

    for topic in topics:
        await bus.subscribe(topic, handler, pass_event=True)
    return seen


def _work_dirs(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


# -- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"clip_count": 0}, "clip_count must be a positive int, got 0"),
        ({"clip_seconds": (10, 5)}, r"clip_seconds must be \(min, max\) positive seconds"),
        ({"clip_seconds": (0, 5)}, r"clip_seconds must be .* got \(0, 5\)"),
        ({"upload_url": "ftp://x/up"}, "upload_url must be an absolute http"),
        ({"webhook_url": "/hook"}, "webhook_url must be an absolute http"),
        ({"upload_method": "GET"}, "upload_method must be 'POST' or 'PUT', got 'GET'"),
        ({"max_download_bytes": 0}, "max_download_bytes must be a positive int, got 0"),
        ({"max_duration": -1}, "max_duration must be a positive, finite number or None"),
        ({"max_concurrent": 0}, "max_concurrent must be a positive int, got 0"),
        ({"output_dir": ""}, "output_dir must be a non-empty path"),
        ({"ffmpeg_threads": 0}, "ffmpeg_threads must be 'auto', None or a positive int, got 0"),
        ({"ffmpeg_threads": "all"}, "ffmpeg_threads must be .* got 'all'"),
    ],
)
def test_bad_options_raise_configuration_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        create_async_video_processor(None, **options)


def test_bad_collaborators_raise_type_error() -> None:
    with pytest.raises(TypeError, match="recognizer must have a transcribe"):
        AsyncVideoProcessor(recognizer=object())  # type: ignore[arg-type]  # the misuse tested
    with pytest.raises(TypeError, match="http_pool must be an HTTPConnectionPool"):
        AsyncVideoProcessor(http_pool="pool")  # type: ignore[arg-type]  # the misuse tested
    with pytest.raises(TypeError, match=r"on_progress must be a plain function .* got 3"):
        AsyncVideoProcessor(on_progress=3)  # type: ignore[arg-type]  # the misuse tested

    async def coroutine_hook(event: VideoProgress) -> None:
        del event

    with pytest.raises(TypeError, match="on_progress must be a plain function"):
        AsyncVideoProcessor(on_progress=coroutine_hook)


async def test_misuse_raises_and_closed_processor_refuses(tmp_path: Path) -> None:
    processor = create_async_video_processor(output_dir=tmp_path)
    with pytest.raises(TypeError, match="source must be an http"):
        await processor.process_video(42)  # type: ignore[arg-type]  # the misuse tested
    await processor.aclose()
    await processor.aclose()  # idempotent
    assert processor.closed
    with pytest.raises(ClosedResourceError, match="video processor is closed"):
        await processor.process_video(TALKING)


# -- end to end ------------------------------------------------------------------------------


@pytest.mark.real_time
async def test_process_video_on_a_local_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    bus = create_async_event_bus()
    hooked: list[VideoProgress] = []
    observed: list[VideoProgress] = []
    completed: list[bool] = []
    try:
        seen = await _record(bus, "video_processed", "video_failed")
        async with create_async_video_processor(
            output_dir=out,
            clip_count=1,
            clip_seconds=(3, 5),
            event_bus=bus,
            on_progress=hooked.append,
        ) as processor:
            processor.progress.subscribe(
                observed.append, on_completed=lambda: completed.append(True)
            )
            result = await processor.process_video(TALKING)
            assert completed == []
        assert completed == [True]  # the progress observable completes on aclose
        assert not bus.closed  # a bus passed in is not the processor's to close
        await bus.drain()
    finally:
        await bus.aclose()

    assert result.status == "completed", result.error
    assert result.succeeded
    assert result.error is None
    assert result.stage is None
    assert list(result.timings) == list(STAGES)
    assert all(seconds >= 0 for seconds in result.timings.values())
    assert result.duration is not None
    assert 12.0 < result.duration < 12.5
    (clip,) = result.clips
    assert clip.path == out.resolve() / "talking-clip-1.mp4"
    assert clip.srt_path == out.resolve() / "talking-clip-1.srt"
    assert 3 - 1e-6 <= clip.duration <= 5 + 1e-6
    assert 0 <= clip.start < clip.end <= result.duration
    assert clip.text
    assert clip.url is None
    info = await probe(clip.path)
    assert (info.width, info.height) == (540, 960)
    assert abs(info.duration - clip.duration) < 0.2
    srt = clip.srt_path.read_text()
    assert srt.startswith("1\n00:00:")
    assert "-->" in srt

    assert result.manifest_path == out.resolve() / "talking.json"
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["source"] == str(TALKING)
    assert manifest["status"] == "completed"
    assert manifest["clips"] == [clip.to_json()]
    assert set(manifest["timings"]) == set(STAGES) - {"upload", "notify"}  # written in upload
    assert sorted(p.name for p in out.iterdir()) == [
        "talking-clip-1.mp4",
        "talking-clip-1.srt",
        "talking.json",
    ]  # no working directory, no audio, no partial file left
    assert [event for event, _ in seen] == ["video_processed"]
    assert seen[0][1]["clips"] == manifest["clips"]

    # the progress hook saw every stage start then finish, in order, and nothing else
    assert observed == hooked
    assert [(p.stage, p.status) for p in hooked] == [
        (stage, status) for stage in STAGES for status in ("started", "finished")
    ]
    assert {(p.source, p.job) for p in hooked} == {(str(TALKING), "talking")}
    assert [p.fraction for p in hooked] == [0.0, 1.0] * len(STAGES)
    assert [p.index for p in hooked] == [n for n in range(len(STAGES)) for _ in (0, 1)]
    assert all(p.elapsed == 0.0 for p in hooked[::2])
    assert [p.elapsed for p in hooked[1::2]] == list(result.timings.values())
    assert [p.done for p in hooked] == [False] * (2 * len(STAGES) - 1) + [True]
    assert all(p.error is None for p in hooked)


@pytest.mark.real_time
async def test_bad_inputs_become_failed_results(tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video at all\n" * 50)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(TALKING.read_bytes()[:4000])
    out = tmp_path / "out"
    async with create_async_video_processor(output_dir=out, clip_count=1) as processor:
        seen = await _record(processor.event_bus, "video_failed")
        results = await processor.process_video_batch(
            [notes, truncated, tmp_path / "absent.mp4", "ftp://example.com/a.mp4", tmp_path]
        )
        await processor.event_bus.drain()

    assert [r.status for r in results] == ["failed"] * 5
    assert [r.stage for r in results] == ["probe", "probe", "validate", "validate", "validate"]
    assert results[0].error is not None
    assert results[0].error.startswith("probe: UnsupportedMediaError: not a readable media file")
    assert "not a readable media file: cut.mp4" in str(results[1].error)
    assert "input file not found" in str(results[2].error)
    assert "UnsafeURLError" in str(results[3].error)
    assert "is a directory" in str(results[4].error)
    assert all(r.clips == () and r.manifest_path is None for r in results)
    assert list(results[0].timings) == ["validate", "download", "probe"]
    assert sorted(data["source"] for _, data in seen) == sorted(r.source for r in results)
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.real_time
async def test_http_source_upload_and_webhook(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "out"
    async with create_async_video_processor(
        FAST_RETRY,
        output_dir=out,
        clip_count=1,
        clip_seconds=(3, 5),
        upload_url=f"{server.base}/upload",
        webhook_url=f"{server.base}/webhook",
    ) as processor:
        result = await processor.process_video(f"{server.base}/media/talk.mp4?x=1")
        failed = await processor.process_video(f"{server.base}/media/broken.mp4")

    assert result.status == "completed", result.error
    (clip,) = result.clips
    assert clip.path.name == "talk-clip-1.mp4"
    assert clip.url == "https://media.example/talk-clip-1.mp4"
    (upload,) = server.uploads
    assert upload["name"] == "talk-clip-1.mp4"
    assert upload["body"] == clip.path.read_bytes()
    assert upload["captions"] == clip.srt_path.read_text()
    assert upload["metadata"]["start"] == round(clip.start, 3)
    assert result.manifest_path is not None
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["clips"][0]["url"] == clip.url

    # the 500 is retried (retry_max_attempts=3), then reported
    assert server.hits == {"video": 1, "broken": 3}
    assert failed.status == "failed"
    assert failed.stage == "download"
    assert "500" in str(failed.error)

    assert [hook["event"] for hook in server.webhooks] == ["video_processed", "video_failed"]
    assert server.webhooks[0]["clips"] == manifest["clips"]
    assert server.webhooks[1]["stage"] == "download"
    assert server.webhooks[1]["source"] == f"{server.base}/media/broken.mp4"
    assert _work_dirs(out) == []


@pytest.mark.real_time
async def test_batch_keeps_order_and_isolates_a_failure(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    config = create_async_flow_config(max_concurrent_tasks=2, chunk_size=2)
    async with create_async_video_processor(
        config, output_dir=tmp_path / "out", clip_count=1, clip_seconds=(3, 4)
    ) as processor:
        results = await processor.process_video_batch([TALKING, bad, str(TALKING)])

    assert [r.status for r in results] == ["completed", "failed", "completed"]
    assert [r.source for r in results] == [str(TALKING), str(bad), str(TALKING)]
    # the same stem twice: the second never overwrites the first's outputs
    assert [r.clips[0].path.name for r in results[::2]] == [
        "talking-clip-1.mp4",
        "talking-2-clip-1.mp4",
    ]
    assert all(r.manifest_path is not None and r.manifest_path.exists() for r in results[::2])


@pytest.mark.real_time
async def test_stream_yields_a_result_per_source(tmp_path: Path) -> None:
    async def sources() -> AsyncIterator[str]:
        for name in ("a.mp4", "b.mp4", "c.mp4"):
            yield str(tmp_path / name)

    async with create_async_video_processor(output_dir=tmp_path / "out") as processor:
        results: list[VideoResult] = [
            r async for r in processor.process_video_stream(sources(), ordered=True)
        ]
    assert [Path(r.source).name for r in results] == ["a.mp4", "b.mp4", "c.mp4"]
    assert all(r.stage == "validate" for r in results)


@pytest.mark.real_time
async def test_pipeline_runs_the_workflow_steps_with_events(tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("text")
    async with create_async_video_processor(
        output_dir=tmp_path / "out", clip_count=1, clip_seconds=(3, 5)
    ) as processor:
        seen = await _record(
            processor.event_bus, "step_completed", "step_failed", "video_processed", "video_failed"
        )
        result = await processor.process_video_pipeline(TALKING)
        await processor.event_bus.drain()
        done = [(event, getattr(data, "step", None)) for event, data in seen]
        seen.clear()
        failed = await processor.process_video_pipeline(notes)
        await processor.event_bus.drain()

    assert result.status == "completed", result.error
    assert [step for event, step in done if event == "step_completed"] == list(PIPELINE_STEPS)
    assert done[-1] == ("video_processed", None)
    assert list(result.timings) == list(STAGES)
    assert len(result.clips) == 1
    assert result.manifest_path is not None

    assert failed.status == "failed"
    assert failed.stage == "probe"
    assert "not a readable media file" in str(failed.error)
    events = [(event, getattr(data, "step", None)) for event, data in seen]
    assert ("step_failed", "download") in events
    assert events[-1] == ("video_failed", None)


@pytest.mark.real_time
async def test_cancelling_a_job_kills_ffmpeg_and_leaves_no_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    async with create_async_video_processor(
        output_dir=out, clip_count=1, clip_seconds=(3, 5)
    ) as processor:
        job = asyncio.create_task(processor.process_video_pipeline(TALKING))
        started: list[str] = []

        def on_step(event: WorkflowEvent) -> None:
            started.append(str(event.step))
            if event.step == "add_effects":
                job.cancel()  # while the clip's ffmpeg runs (or is about to)

        await processor.event_bus.subscribe("step_started", on_step)
        with pytest.raises(asyncio.CancelledError):
            await job
    assert started[-1] == "add_effects"
    assert _ffmpeg_children() == []
    assert list(out.iterdir()) == []  # no SRT, no clip, no manifest, no working directory


def _ffmpeg_children() -> list[psutil.Process]:
    exe = Path(ffmpeg_exe()).name
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.name() == exe[:15] or Path(child.exe()).name == exe:
                found.append(child)
    return found


# -- progress, concurrency, cancellation ---------------------------------------------------


class FakeRecognizer:
    """Instant "speech": a word every half second. Runs in a thread pool here, so the
    tests that use it still run every real ffmpeg stage but skip pocketsphinx."""

    def transcribe(self, wav_path: Path) -> list[Word]:
        assert wav_path.stat().st_size > 0
        return [Word(f"w{n}", n * 0.5, n * 0.5 + 0.4) for n in range(24)]


@pytest.fixture
def ffmpeg_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The arguments of every ffmpeg run of the media functions (probe excluded)."""
    calls: list[list[str]] = []
    real = run_ffmpeg

    async def recording(args: Sequence[str], **options: Any) -> str:
        calls.append(list(args))
        return await real(args, **options)

    monkeypatch.setattr(_media, "run_ffmpeg", recording)
    return calls


@pytest.mark.real_time
async def test_a_raising_progress_hook_is_logged_and_never_breaks_the_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, ffmpeg_calls: list[list[str]]
) -> None:
    calls: list[str] = []

    def hook(event: VideoProgress) -> None:
        calls.append(f"{event.stage}:{event.status}")
        raise RuntimeError("hook is broken")

    def observer(event: VideoProgress) -> None:
        raise ValueError("observer is broken too")

    with ThreadPoolExecutor(1) as executor:
        async with create_async_video_processor(
            output_dir=tmp_path,
            clip_count=1,
            clip_seconds=(3, 5),
            recognizer=FakeRecognizer(),
            executor=executor,
            on_progress=hook,
        ) as processor:
            processor.progress.subscribe(observer)
            result = await processor.process_video(TALKING)

    assert result.status == "completed", result.error
    assert len(result.clips) == 1
    assert len(calls) == 2 * len(STAGES)  # called for every event despite raising
    hook_logs = [r for r in caplog.records if "on_progress raised" in r.getMessage()]
    observer_logs = [r for r in caplog.records if "progress observer raised" in r.getMessage()]
    assert len(hook_logs) == len(observer_logs) == 2 * len(STAGES)
    assert all(r.name == "rxflows.video" and r.levelname == "ERROR" for r in hook_logs)
    assert hook_logs[0].exc_info is not None
    assert str(hook_logs[0].exc_info[1]) == "hook is broken"
    # one video at a time: ffmpeg_threads="auto" leaves the thread count to ffmpeg
    assert len(ffmpeg_calls) == 2  # extract_audio, the clip
    assert not any("-threads" in args for args in ffmpeg_calls)


@pytest.mark.real_time
async def test_batch_of_4_respects_the_concurrency_bound(
    tmp_path: Path, ffmpeg_calls: list[list[str]]
) -> None:
    """4 videos, ``max_concurrent=2``: never more than 2 in flight, results in order.

    Real ffmpeg for every stage; a fake recognizer (in a thread pool) in place of
    pocketsphinx keeps it to a couple of seconds.
    """
    sources = []
    for name in ("a", "b", "c", "d"):
        sources.append(tmp_path / f"{name}.mp4")
        shutil.copyfile(TALKING, sources[-1])
    in_flight: set[str] = set()
    peak = 0
    threads_seen: list[int] = []  # videos in flight as each media ffmpeg run starts

    def hook(event: VideoProgress) -> None:
        nonlocal peak
        if event.stage == "validate" and event.status == "started":
            in_flight.add(event.job)
            peak = max(peak, len(in_flight))
        if event.done:
            in_flight.discard(event.job)
        if event.status == "started" and event.stage in ("extract_audio", "add_effects"):
            threads_seen.append(len(in_flight))

    config = create_async_flow_config(max_concurrent_tasks=2, chunk_size=100)
    with ThreadPoolExecutor(2) as executor:
        async with create_async_video_processor(
            config,
            output_dir=tmp_path / "out",
            clip_count=1,
            clip_seconds=(3, 5),
            recognizer=FakeRecognizer(),
            executor=executor,
            on_progress=hook,
        ) as processor:
            results = await processor.process_video_batch(sources)

    assert [r.status for r in results] == ["completed"] * 4
    assert [r.source for r in results] == [str(s) for s in sources]
    assert [r.clips[0].path.name for r in results] == [f"{n}-clip-1.mp4" for n in "abcd"]
    assert peak == 2  # the bound was reached, and never passed
    assert in_flight == set()
    # "auto" threads: 1 thread per ffmpeg while 2 videos were in flight, ffmpeg's own
    # choice when only one was (the hook ran just before each of those ffmpeg runs)
    assert len(ffmpeg_calls) == len(threads_seen) == 8
    given = [
        args[args.index("-threads") + 1] if "-threads" in args else None for args in ffmpeg_calls
    ]
    assert given == ["1" if count > 1 else None for count in threads_seen]
    assert given.count("1") >= 4  # the first two videos ran side by side


@pytest.mark.real_time
async def test_cancelling_process_video_during_recognition_kills_the_worker(
    tmp_path: Path,
) -> None:
    """The default recognition workers (real pocketsphinx, in a process): cancelling
    the job kills its worker; no process, partial output or manifest is left."""
    out = tmp_path / "out"
    recognizing = asyncio.Event()

    def hook(event: VideoProgress) -> None:
        if event.stage == "generate_captions" and event.status == "started":
            recognizing.set()

    async with create_async_video_processor(
        output_dir=out, clip_count=1, clip_seconds=(3, 5), on_progress=hook
    ) as processor:
        job = asyncio.create_task(processor.process_video(TALKING))
        await recognizing.wait()
        workers = _spawned_workers()
        assert len(workers) == 1  # one video in progress: one worker, loading or busy
        await asyncio.sleep(0.2)  # real time: let the worker get going
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        assert await wait_exited(workers) == []  # (never reaps: see wait_exited)
        assert _spawned_workers() == []
        assert _ffmpeg_children() == []
    assert list(out.iterdir()) == []  # no WAV, SRT, clip, manifest or working directory


def _spawned_workers() -> list[psutil.Process]:
    """Live multiprocessing "spawn" children (the recognition workers)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
    return found
