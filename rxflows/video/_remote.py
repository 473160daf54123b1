"""One video's whole job somewhere else: what ``process_video_batch(executor=...)`` submits.

With an :class:`rxflows.Executor` (a Dask cluster, a process pool), a batch submits
:func:`process_video_remote` once per video: the worker builds its own event loop
and :class:`~rxflows.video.AsyncVideoProcessor` with the same options, runs the
whole job (download, probe, audio, recognition, clips, upload, notify), and
returns the :class:`~rxflows.video.VideoResult` as a plain, picklable dict that
:func:`result_from_dict` turns back into a VideoResult on the caller's side.

Workers need no shared disk when sources are URLs and ``upload_url`` is set: they
download the sources themselves and upload the clips; the paths in the result are
paths on the worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pickle
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from .. import operators as ops
from .._bridges import collect, from_iterable

if TYPE_CHECKING:
    from .._executor import Executor
    from ._processor import AsyncVideoProcessor, VideoResult

__all__ = ["REMOTE_STAGE", "process_video_remote", "result_from_dict", "result_to_dict"]

REMOTE_STAGE: Final = "remote"
"""The ``stage`` of a result whose job could not run or report back (the executor
failed it: a lost worker, an unpicklable option, a closed executor)."""


def process_video_remote(source: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Process one video here, in a fresh event loop; the result as a plain dict.

    ``options`` are :class:`~rxflows.video.AsyncVideoProcessor` keyword arguments,
    plus ``config`` (an :class:`~rxflows.AsyncFlowConfig`). Speech recognition runs
    on a thread of this process (a Dask worker process may not start children).
    Never raises for a bad video: its failure is in the result.

    Example:
        >>> data = process_video_remote("https://cdn.example.com/talk.mp4", {"clip_count": 1})
        >>> result_from_dict(data).status
        'completed'
    """
    return asyncio.run(_process(source, dict(options)))


async def _process(source: str, options: dict[str, Any]) -> dict[str, Any]:
    from ._processor import AsyncVideoProcessor

    config = options.pop("config", None)
    with ThreadPoolExecutor(1, thread_name_prefix="rxflows-recognizer") as recognition:
        async with AsyncVideoProcessor(config, executor=recognition, **options) as processor:
            result = await processor.process_video(source)
    return result_to_dict(result)


def result_to_dict(result: VideoResult) -> dict[str, Any]:
    """A :class:`~rxflows.video.VideoResult` as plain data (paths as str).

    The exception is kept when it can be pickled, else replaced by a RuntimeError
    carrying its type and message.
    """
    exception = result.exception
    if exception is not None:
        try:
            pickle.dumps(exception)
        except Exception:
            exception = RuntimeError(f"{type(exception).__name__}: {exception}")
    return {
        "source": result.source,
        "status": result.status,
        "clips": [
            {
                "path": str(clip.path),
                "start": clip.start,
                "end": clip.end,
                "text": clip.text,
                "srt_path": str(clip.srt_path),
                "url": clip.url,
            }
            for clip in result.clips
        ],
        "manifest_path": None if result.manifest_path is None else str(result.manifest_path),
        "error": result.error,
        "stage": result.stage,
        "exception": exception,
        "timings": dict(result.timings),
        "duration": result.duration,
        "host": os.uname().nodename if hasattr(os, "uname") else None,
    }


def result_from_dict(data: Mapping[str, Any]) -> VideoResult:
    """The :class:`~rxflows.video.VideoResult` that :func:`result_to_dict` described."""
    from ._processor import Clip, VideoResult

    status: Literal["completed", "failed"] = (
        "completed" if data["status"] == "completed" else "failed"
    )
    manifest = data.get("manifest_path")
    return VideoResult(
        source=data["source"],
        status=status,
        clips=tuple(
            Clip(Path(c["path"]), c["start"], c["end"], c["text"], Path(c["srt_path"]), c["url"])
            for c in data.get("clips", ())
        ),
        manifest_path=None if manifest is None else Path(manifest),
        error=data.get("error"),
        stage=data.get("stage"),
        exception=data.get("exception"),
        timings=dict(data.get("timings", {})),
        duration=data.get("duration"),
    )


def remote_options(processor: AsyncVideoProcessor) -> dict[str, Any]:
    """The options a worker builds its own processor from (picklable)."""
    p = processor
    return {
        "config": p._config,
        "output_dir": str(p._output_dir),
        "clip_count": p._clip_count,
        "clip_seconds": p._clip_seconds,
        "upload_url": None if p._upload_url is None else str(p._upload_url),
        "upload_method": p._upload_method,
        "webhook_url": None if p._webhook_url is None else str(p._webhook_url),
        "max_download_bytes": p._max_download_bytes,
        "max_duration": p._max_duration,
        "recognizer": p._recognizer,
        "ffmpeg_threads": p._ffmpeg_threads,
    }


def remote_source(source: str | os.PathLike[str]) -> str:
    """A URL as it is; a local path made absolute (it must exist on the worker)."""
    if isinstance(source, str) and "://" in source:
        return source
    return str(Path(source).expanduser().absolute())


async def process_batch_remotely(
    processor: AsyncVideoProcessor,
    sources: Iterable[str | os.PathLike[str]],
    executor: Executor,
) -> list[VideoResult]:
    """Submit each video's whole job to ``executor``, ``max_concurrent`` at once; the
    results in source order. Publishes ``video_processed`` / ``video_failed`` on the
    processor's bus (the worker has already called the webhook)."""
    from ._processor import VIDEO_FAILED, VIDEO_PROCESSED, VideoResult

    options = remote_options(processor)
    bus = processor.event_bus

    async def one(item: tuple[str, str]) -> VideoResult:
        source, remote = item
        try:
            data = await executor.submit(process_video_remote, remote, options)
        except Exception as error:  # the executor failed the job: it is this video's failure
            text = str(error).strip()
            what = f"{type(error).__name__}: {text}" if text else type(error).__name__
            result = VideoResult(
                source=source,
                status="failed",
                error=f"{REMOTE_STAGE}: {what}",
                stage=REMOTE_STAGE,
                exception=error,
            )
        else:  # the source as given, not as the worker saw it (an absolute path)
            result = dataclasses.replace(result_from_dict(data), source=source)
        if result.succeeded:
            payload: dict[str, Any] = {
                "event": VIDEO_PROCESSED,
                "source": result.source,
                "status": "completed",
                "duration": None if result.duration is None else round(result.duration, 3),
                "clips": [clip.to_json() for clip in result.clips],
                "timings": {k: round(v, 4) for k, v in result.timings.items()},
            }
            await bus.publish(VIDEO_PROCESSED, payload)
        else:
            payload = {
                "event": VIDEO_FAILED,
                "source": result.source,
                "status": "failed",
                "stage": result.stage,
                "error": result.error,
            }
            await bus.publish(VIDEO_FAILED, payload)
        return result

    items = [(os.fspath(source), remote_source(source)) for source in sources]
    limit = processor._max_concurrent
    return await collect(from_iterable(items).pipe(ops.map_async(one, limit, ordered=True)))
