"""``video``: AsyncVideoProcessor vs a plain serial script doing the same media work.

What it measures, on copies of ``tests/data/talking.mp4`` (12 s, real speech), two
clips of 3-5 s per video (one with ``--quick``):

a. **Orchestration overhead.** ``processor.process_video(video)`` against a serial
   script that calls the same functions in sequence (``probe``,
   ``extract_audio``, ``PocketSphinxRecognizer(FAST_POCKETSPHINX).transcribe`` in
   the script's own process, ``pick_windows``, ``write_srt``, ``vertical_clip``),
   with no bus, HTTP pool, stage timing, progress events, manifest, working
   directory or process hop. Target: candidate / baseline < 1.05.
b. **A batch of 4.** ``processor.process_video_batch(4 videos)`` with
   ``max_concurrent=2`` against the serial script over the same 4 videos, one
   after another. Target: at least 1.6x faster (ratio <= 0.625).

Both sides run on one long-lived event loop, and each processor lives for the
whole benchmark, as in a service: its recognition workers (one warm process per
concurrent video) start in the warm-up round, like the script's in-process
decoder, which is loaded in its warm-up round and kept. The script lets ffmpeg
pick its thread count (what a person writing it would do); the processor uses its
default ``ffmpeg_threads="auto"`` (1 thread per ffmpeg while more than one video
is in progress). The full run adds a reference row: the batch with
``ffmpeg_threads=None`` (every ffmpeg free to use all the cores), to show what the
``"auto"`` choice is worth.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from rxflows import create_async_flow_config
from rxflows.video import (
    FAST_POCKETSPHINX,
    AsyncVideoProcessor,
    PocketSphinxRecognizer,
    captions_from_words,
    extract_audio,
    pick_windows,
    probe,
    safe_output_path,
    vertical_clip,
    write_srt,
)

from ._harness import (
    Benchmark,
    Progress,
    Report,
    RowSpec,
    Sample,
    Settings,
    Target,
    Variant,
    measure,
    summarize,
)

NAME = "video"
VIDEO = Path(__file__).resolve().parent.parent / "tests" / "data" / "talking.mp4"
BATCH = 4
FULL_CLIPS = 2
QUICK_CLIPS = 1
CLIP_SECONDS = (3.0, 5.0)


async def serial_script(videos: Sequence[Path], out: Path, clips: int) -> int:
    """The baseline: the media layer's functions in sequence; the clips made."""
    recognizer = PocketSphinxRecognizer(FAST_POCKETSPHINX)
    made = 0
    for video in videos:
        info = await probe(video, max_duration=4 * 3600)
        with tempfile.TemporaryDirectory(dir=out) as work:
            wav = await extract_audio(video, Path(work) / "audio.wav")
            words = recognizer.transcribe(wav)  # in this process: no pool, no hop
        windows = pick_windows(words, clips, *CLIP_SECONDS, info.duration)
        for n, window in enumerate(windows, 1):
            srt = write_srt(
                captions_from_words(window.words, offset=window.start),
                safe_output_path(out, f"{video.stem}-clip-{n}.srt"),
            )
            await vertical_clip(
                video,
                safe_output_path(out, f"{video.stem}-clip-{n}.mp4"),
                srt=srt,
                start=window.start,
                end=window.end,
            )
            made += 1
    return made


def _clear(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def run(settings: Settings, progress: Progress | None = None) -> Report:
    """Measure the variants on one long-lived loop and build the report."""
    clips = QUICK_CLIPS if settings.quick else FULL_CLIPS
    root = Path(tempfile.mkdtemp(prefix="rxflows-bench-video-"))
    sources = root / "sources"
    sources.mkdir()
    videos = []
    for letter in "abcd"[:BATCH]:
        videos.append(sources / f"{letter}.mp4")
        shutil.copyfile(VIDEO, videos[-1])
    runner = asyncio.Runner()
    processors: dict[str, AsyncVideoProcessor] = {}

    def processor(key: str, concurrent: int, threads: Any = "auto") -> AsyncVideoProcessor:
        if key not in processors:
            config = create_async_flow_config(max_concurrent_tasks=concurrent)

            async def make() -> AsyncVideoProcessor:
                return AsyncVideoProcessor(
                    config,
                    output_dir=root / key,
                    clip_count=clips,
                    clip_seconds=CLIP_SECONDS,
                    ffmpeg_threads=threads,
                )

            processors[key] = runner.run(make())
        return processors[key]

    def timed(out: Path, work: Callable[[], Coroutine[Any, Any, int]], clips: int) -> Sample:
        out.mkdir(exist_ok=True)

        async def main() -> Sample:
            start = time.perf_counter()
            made = await work()
            seconds = time.perf_counter() - start
            if made != clips:
                raise RuntimeError(f"expected {clips} clips, made {made}")
            return Sample(seconds)

        try:
            return runner.run(main())
        finally:
            _clear(out)

    def script(count: int) -> Callable[[], Sample]:
        out = root / f"script-{count}"
        return lambda: timed(out, lambda: serial_script(videos[:count], out, clips), count * clips)

    def single() -> Sample:
        proc = processor("single", 1)

        async def work() -> int:
            result = await proc.process_video(videos[0])
            if not result.succeeded:
                raise RuntimeError(result.error)
            return len(result.clips)

        return timed(proc.output_dir, work, clips)

    def batch(key: str, threads: Any, concurrent: int = 2) -> Callable[[], Sample]:
        def go() -> Sample:
            proc = processor(key, concurrent, threads)

            async def work() -> int:
                results = await proc.process_video_batch(videos)
                failed = [r.error for r in results if not r.succeeded]
                if failed:
                    raise RuntimeError(failed)
                return sum(len(r.clips) for r in results)

            return timed(proc.output_dir, work, BATCH * clips)

        return go

    variants = [
        Variant("script-1", f"serial script, 1 video ({clips} clip(s))", script(1)),
        Variant("process_video", "processor.process_video, 1 video (max_concurrent=1)", single),
        Variant(f"script-{BATCH}", f"serial script, {BATCH} videos in sequence", script(BATCH)),
        Variant(
            "batch-auto",
            f"process_video_batch({BATCH} videos), max_concurrent=2, ffmpeg_threads='auto'",
            batch("batch-auto", "auto"),
        ),
    ]
    specs = [
        RowSpec("baseline: serial script, 1 video", "script-1", "script-1", "baseline"),
        RowSpec(
            "process_video, 1 video",
            "process_video",
            "script-1",
            target=Target("ratio", 1.05, "process_video / serial script < 1.05", strict=True),
        ),
        RowSpec(
            f"baseline: serial script, {BATCH} videos",
            f"script-{BATCH}",
            f"script-{BATCH}",
            "baseline",
        ),
        RowSpec(
            f"process_video_batch({BATCH}), concurrency 2",
            "batch-auto",
            f"script-{BATCH}",
            target=Target("ratio", 0.625, "batch of 4 >= 1.6x the serial script (ratio <= 0.625)"),
        ),
    ]
    if not settings.quick:
        variants.append(
            Variant(
                "batch-free",
                f"process_video_batch({BATCH} videos), max_concurrent=2, ffmpeg_threads=None",
                batch("batch-free", None),
            )
        )
        variants.append(
            Variant(
                "batch-4",
                f"process_video_batch({BATCH} videos), max_concurrent=4, ffmpeg_threads='auto'",
                batch("batch-4", "auto", 4),
            )
        )
        specs.append(
            RowSpec(
                f"reference: batch({BATCH}), ffmpeg threads not capped",
                "batch-free",
                f"script-{BATCH}",
                "reference",
            )
        )
        specs.append(
            RowSpec(
                f"reference: batch({BATCH}), concurrency 4",
                "batch-4",
                f"script-{BATCH}",
                "reference",
            )
        )
    try:
        runs = measure(variants, settings, progress)
    finally:
        for proc in processors.values():
            runner.run(proc.aclose())
        runner.close()
        shutil.rmtree(root, ignore_errors=True)
    return Report(
        name=NAME,
        title=f"AsyncVideoProcessor vs a serial script (1 video; a batch of {BATCH})",
        parameters={
            "video": "tests/data/talking.mp4 (12.2 s, 320x240, speech)",
            "clips_per_video": clips,
            "clip_seconds": list(CLIP_SECONDS),
            "batch": BATCH,
            "batch_max_concurrent": 2,
            "recognizer": "PocketSphinxRecognizer(FAST_POCKETSPHINX)",
        },
        variants={v.key: v.description for v in variants},
        rows=summarize(specs, runs),
        runs=runs,
        notes=[
            "one long-lived loop and processors; warm-up round starts the processors' "
            "recognition workers and the script's decoder",
            "the script lets ffmpeg choose its threads; the processor uses "
            "ffmpeg_threads='auto' (1 thread while 2+ videos are in progress)",
        ],
    )


BENCHMARK = Benchmark(
    NAME,
    "AsyncVideoProcessor vs a serial script: overhead < 5%, batch of 4 >= 1.6x",
    run,
)
