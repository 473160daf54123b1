"""Every example runs, in virtual time, and prints what it promises."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    await load("demo").main()
    out = capsys.readouterr().out
    for title in (
        "SequentialFlow",
        "ParallelFlow",
        "StreamingFlow",
        "PipelineFlow",
        "FanOutFlow",
        "FanInFlow",
    ):
        assert f"== {title}" in out
    assert "8 done in 0.40s" in out  # virtual time: exactly two rounds of 0.2 s
    assert "upload-5.webm" in out
    assert "upload-6.webm" not in out
    assert "captions from audio of talk.mp4 (12 MB)" in out
    assert "['clip-1@1080p', 'clip-1@720p', 'clip-1@480p']" in out
    assert "6 frames: left#0, right#0, left#1, left#2, right#1, right#2" in out
    assert "['video1.webm (12 MB)', 'video2.webm (12 MB)']" in out


async def test_resilience(capsys: pytest.CaptureFixture[str]) -> None:
    await load("resilience").main()
    lines = capsys.readouterr().out.splitlines()
    states = [line.rsplit("breaker=", 1)[1] for line in lines if "breaker=" in line]
    # healthy, then the API goes down: the breaker opens, rejects, tries once while the
    # API is still down, reopens, and closes after the API is back
    assert states[0] == "CLOSED"
    assert "OPEN" in states
    assert states[-1] == "CLOSED"
    assert any("rejected by metadata-api" in line for line in lines)
    summary = lines[-1]
    assert "opened 2 time(s)" in summary
    assert "API requests: " in summary


# --------------------------------------------------------------------------- the guide's
# integration examples (docs/integration.md embeds these very files)


async def test_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    results = await load("pipeline").complete_video_pipeline()
    assert [r.source for r in results] == ["video1.mp4", "video2.mp4", "video3.mp4"]
    assert all(r.status == "completed" and r.frames == 24 for r in results)
    assert len({r.digest for r in results}) == 3
    out = capsys.readouterr().out
    assert "Processing completed: 3 videos, success rate 100%" in out
    assert "announced on the bus: ['video1.mp4', 'video2.mp4', 'video3.mp4']" in out


async def test_event_driven(capsys: pytest.CaptureFixture[str]) -> None:
    log = await load("event_driven").event_driven_video_processing()
    assert sorted(line.split(" (")[0] for line in log if line.startswith("uploaded")) == [
        "uploaded keynote.mp4",
        "uploaded talk.mp4",
    ]
    assert "quarantined corrupt.mp4: empty video" in log
    dead = [line for line in log if line.startswith("dead letter from processing_complete")]
    assert len(dead) == 2  # the failing audit handler, once per completed video
    # 3 video_ready + 2 processing_complete + 1 error + 2 dead letters
    assert log[-1] == "bus: 8 events published"
    out = capsys.readouterr().out
    assert out.count("Video ready for processing") == 3


async def test_batch_progress(capsys: pytest.CaptureFixture[str]) -> None:
    module = load("batch_progress")
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = await module.high_performance_batch_processing()
    # 20 chunks of 50; each chunk overlaps its 1 ms downloads: 20 ms of virtual time
    assert loop.time() - start == pytest.approx(0.020)
    assert len(results) == len(set(results)) == 1000
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == [f"Processed {n}/1000 videos" for n in (250, 500, 750, 1000)]
    assert out[4].startswith("1000 done, 0 failed, ")


async def test_realtime_stream(capsys: pytest.CaptureFixture[str]) -> None:
    module = load("realtime_stream")
    feed = module.VideoFeed(total=12)
    done = await module.real_time_streaming_processing(feed)
    assert sorted(done) == sorted(f"live-{n}.mp4" for n in range(12))
    assert feed.polls == 5  # 4 bursts of 3, then the poll that sees the feed closed
    lines = capsys.readouterr().out.splitlines()
    assert len([line for line in lines if line.startswith("Processed: live-")]) == 12


# --------------------------------------------------------------------------- one per component


async def test_event_bus(capsys: pytest.CaptureFixture[str]) -> None:
    await load("event_bus").main()
    out = capsys.readouterr().out
    assert "dead letter: video.uploaded -> ValueError('cannot thumbnail video 2')" in out
    assert "waited for: {'id': 3}" in out
    assert (
        "handled in order: ['video.started:1', 'video.uploaded:1', 'video.started:2', "
        "'video.uploaded:2', 'video.started:3', 'video.uploaded:3']" in out
    )
    assert "settled progress: [(1, 100), (2, 100), (3, 100)]" in out
    assert "failed 1" in out


async def test_cache_example(capsys: pytest.CaptureFixture[str]) -> None:
    await load("cache").main()
    out = capsys.readouterr().out
    assert "10 concurrent lookups, 1 API call; all equal: True" in out
    assert "a hit: still 1 API call" in out
    assert "after the TTL: 2 API calls" in out
    assert "still cached after two more entries: False" in out
    assert "ops.cache: True, 3 API calls in all" in out


async def test_task_queue_example(capsys: pytest.CaptureFixture[str]) -> None:
    await load("task_queue").main()
    lines = capsys.readouterr().out.splitlines()
    started = [line.split()[0] for line in lines[1:8]]
    assert started == ["CRITICAL", "HIGH", "HIGH", "NORMAL", "LOW", "LOW", "LOW"]
    assert any("TIMED_OUT" in line and "stuck" not in line for line in lines)
    assert "uploaded clip.mp4" in "\n".join(lines)  # succeeded on its retry
    assert lines[-1] == "6 succeeded, 0 failed, 1 timed out, 1 cancelled"


@pytest.mark.real_time
async def test_pools_example(capsys: pytest.CaptureFixture[str]) -> None:
    await load("pools").main()
    out = capsys.readouterr().out
    assert "8 concurrent fetches: 8,388,608 bytes" in out
    assert "capped: ResponseTooLargeError (limit 1000 bytes)" in out
    assert "downloaded 1,048,576 bytes to talk.mp4" in out
    assert "20 queries on connections [1, 2, 3]: created 3, acquired 20" in out


@pytest.mark.real_time
async def test_metrics_example(capsys: pytest.CaptureFixture[str]) -> None:
    await load("metrics").main()
    out = capsys.readouterr().out
    assert "transcode: 4 runs, 2 failed" in out
    assert "fetch_manifest: 1 run" in out
    assert "monitor alarms: ['slow_processing']" in out
    assert 'rxflows_tasks_total{outcome="failure",task="transcode"} 2.0' in out


def test_marbles_example(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RXFLOWS_MARBLE_SVG_DIR", raising=False)
    load("marbles").main()
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        "passed: test_map_async_bounds_concurrency",
        "passed: test_retry_backs_off",
        "passed: test_breaker_rejects_when_open",
    ]
    assert out[4:6] == ["expected: ----yx(z|)", "actual:   -----xy(z|)"]
    assert out[6].startswith("and a picture: ")
    assert out[6].endswith(".svg")


# --------------------------------------------------------------------------- as scripts


@pytest.mark.real_time
@pytest.mark.parametrize("name", ["pipeline", "realtime_stream"])
async def test_runs_as_a_script(name: str) -> None:
    """``python examples/<name>.py`` works as a user runs it: real time, a fresh process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / f"{name}.py"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    assert out.decode().strip()


def test_every_example_is_run_by_a_test() -> None:
    sources = "\n".join(
        path.read_text(encoding="utf-8") for path in EXAMPLES.parent.glob("tests/*.py")
    )
    for example in sorted(EXAMPLES.glob("*.py")):
        stem = example.stem
        used = (f'load("{stem}")', f'load_example("{stem}")', f'"{example.name}"')
        assert any(pattern in sources for pattern in used), example.name
