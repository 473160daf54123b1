"""AsyncVideoProcessor: long videos in, short vertical captioned clips out.

The orchestration of the media layer (:mod:`rxflows.video`) with rxflows' own
parts: the HTTP pool downloads, uploads and calls the webhook; the bus carries
``video_processed`` / ``video_failed``; batches run on :class:`~rxflows.ParallelFlow`,
streams on :class:`~rxflows.StreamingFlow`, and the pipeline variant on an
:class:`~rxflows.AsyncWorkflowEngine`.

Every video goes through the same stages, each one timed on the processor's clock:

``validate`` (the source) -> ``download`` (or use a local file in place) ->
``probe`` (ffmpeg reads the container) -> ``extract_audio`` -> ``generate_captions``
(speech to text, off the loop) -> ``create_clips`` (pick windows, write SRTs) ->
``add_effects`` (cut + vertical 9:16 + burned-in captions) -> ``upload`` (and the
manifest) -> ``notify``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from reactivex import Observable, abc
from reactivex.subject import Subject
from yarl import URL

from .._breaker import CircuitBreaker
from .._clock import Clock, as_clock
from .._config import AsyncFlowConfig, config_or_default
from .._errors import ClosedResourceError, ConfigurationError
from .._events import AsyncEventBus, create_async_event_bus
from .._executor import Executor as RemoteExecutor
from .._flows import ParallelFlow, StreamingFlow
from .._http import HTTPConnectionPool
from .._resource import AsyncResource
from .._retry import RetryPolicy
from .._workflow import AsyncWorkflowEngine
from .._workflow_model import WorkflowStep
from ._captions import (
    FAST_POCKETSPHINX,
    PocketSphinxRecognizer,
    Recognizer,
    Word,
    captions_from_words,
    transcribe,
    write_srt,
)
from ._clips import ClipWindow, pick_windows
from ._ffmpeg import MediaInfo, probe, safe_output_path
from ._media import extract_audio, vertical_clip
from ._workers import RecognizerWorkers

__all__ = [
    "PIPELINE_STEPS",
    "STAGES",
    "AsyncVideoProcessor",
    "Clip",
    "ProgressStatus",
    "VideoProgress",
    "VideoResult",
    "create_async_video_processor",
]

_log = logging.getLogger("rxflows.video")

VIDEO_PROCESSED: Final = "video_processed"
VIDEO_FAILED: Final = "video_failed"

STAGES: Final[tuple[str, ...]] = (
    "validate",
    "download",
    "probe",
    "extract_audio",
    "generate_captions",
    "create_clips",
    "add_effects",
    "upload",
    "notify",
)
"""Every stage of a job, in order; :attr:`VideoResult.timings` has one entry per stage run."""

PIPELINE_STEPS: Final[tuple[str, ...]] = (
    "validate",
    "download",
    "extract_audio",
    "generate_captions",
    "create_clips",
    "add_effects",
    "upload",
    "notify",
)
"""The workflow steps of :meth:`AsyncVideoProcessor.process_video_pipeline` (the
guide's; ``download`` includes the ``probe`` stage)."""

ProgressStatus = Literal["started", "running", "finished", "failed", "cancelled"]
"""What a :class:`VideoProgress` reports about its stage."""

_STEM_CHARS: Final = re.compile(r"[^A-Za-z0-9._-]+")
_UPLOAD_METHODS: Final = frozenset({"POST", "PUT"})
_WEBHOOK_MAX_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Clip:
    """One finished clip: a vertical MP4 with burned-in captions and its SRT beside it.

    ``start``/``end`` are seconds in the source video; ``url`` is where the upload
    endpoint said the clip went (None without ``upload_url`` or when it answered
    no ``url``).
    """

    path: Path
    start: float
    end: float
    text: str
    srt_path: Path
    url: str | None = None

    @property
    def duration(self) -> float:
        """``end - start`` in seconds."""
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        """The clip as it appears in the manifest."""
        return {
            "path": str(self.path),
            "srt_path": str(self.srt_path),
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "duration": round(self.duration, 3),
            "text": self.text,
            "url": self.url,
        }


@dataclass(frozen=True, slots=True)
class VideoResult:
    """What became of one video.

    Attributes:
        source: The source as given (a URL or a path, as a str).
        status: ``"completed"`` or ``"failed"``.
        clips: The clips, in time order (those made before a failure, if any).
        manifest_path: The manifest JSON (None when the job failed before writing it).
        error: ``"<stage>: <what went wrong>"`` for a failed video, else None.
        stage: The stage that failed, else None.
        exception: The exception behind ``error`` (not compared, not in repr).
        timings: Seconds per stage run, in stage order (see :data:`STAGES`).
        duration: The source video's duration in seconds (None before probing).
    """

    source: str
    status: Literal["completed", "failed"]
    clips: tuple[Clip, ...] = ()
    manifest_path: Path | None = None
    error: str | None = None
    stage: str | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    timings: Mapping[str, float] = field(default_factory=dict)
    duration: float | None = None

    @property
    def succeeded(self) -> bool:
        """Whether ``status == "completed"``."""
        return self.status == "completed"

    @property
    def total_time(self) -> float:
        """The sum of the stage timings."""
        return sum(self.timings.values())


@dataclass(frozen=True, slots=True)
class VideoProgress:
    """One step of one video's progress through :data:`STAGES`.

    Every stage a job runs reports ``"started"``, then ``"finished"``, ``"failed"``
    or ``"cancelled"``; a download also reports ``"running"`` as its bytes arrive.
    Get them with the processor's ``on_progress`` option or its
    :attr:`~AsyncVideoProcessor.progress` Observable.

    Attributes:
        source: The video's source as given (a URL or a path, as a str).
        job: The job's name, its output stem (``"talk"``; ``"talk-2"`` for a second
            video of the same name): unique among the videos in progress, so it tells
            apart two jobs of the same source.
        stage: The stage (one of :data:`STAGES`).
        status: ``"started"``, ``"running"`` (download bytes), ``"finished"``,
            ``"failed"`` or ``"cancelled"``.
        elapsed: Seconds since the stage started, on the processor's clock (0.0 when
            it starts; the stage's timing when it ends).
        fraction: The stage's share done, in [0, 1]: 0.0 when it starts, 1.0 when it
            finishes, ``received / total`` bytes while downloading; None when unknown
            (a download without a Content-Length, a failed or cancelled stage).
        error: ``"<ExceptionType>: <message>"`` for a failed stage, else None.

    Example:
        >>> VideoProgress("talk.mp4", "talk", "probe", "finished", 0.05, 1.0)
        VideoProgress(source='talk.mp4', job='talk', stage='probe', status='finished', ...)
    """

    source: str
    job: str
    stage: str
    status: ProgressStatus
    elapsed: float = 0.0
    fraction: float | None = None
    error: str | None = None

    @property
    def index(self) -> int:
        """The stage's position in :data:`STAGES` (0 for ``validate``)."""
        return STAGES.index(self.stage)

    @property
    def done(self) -> bool:
        """Whether this is the video's last event: a stage failed or was cancelled,
        or ``notify`` (the last stage) finished."""
        return self.status in ("failed", "cancelled") or (
            self.status == "finished" and self.stage == STAGES[-1]
        )


ProgressCallback = Callable[[VideoProgress], object]
"""``on_progress(event)``: a plain function, called on the event loop."""

FfmpegThreads = int | Literal["auto"] | None


class _StageError(Exception):
    """A stage failed: carries its name and the original exception as ``__cause__``."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"{stage}: {_describe(error)}")
        self.stage = stage
        self.error = error


@dataclass(slots=True)
class _Job:
    """One video's state as it goes through the stages."""

    source: str
    url: URL | None
    stem: str
    workdir: Path
    local: Path | None = None
    info: MediaInfo | None = None
    wav: Path | None = None
    words: list[Word] = field(default_factory=list)
    windows: list[ClipWindow] = field(default_factory=list)
    srts: list[Path] = field(default_factory=list)
    clips: list[Clip] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    manifest: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    stage_started: float = 0.0


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{name} must be a positive int, got {value!r}", field=name, value=value
        )
    return value


def _positive_number(name: str, value: object, *, none_ok: bool = False) -> float | None:
    if value is None and none_ok:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 < value < float("inf")
    ):
        rule = "a positive, finite number or None" if none_ok else "a positive, finite number"
        raise ConfigurationError(f"{name} must be {rule}, got {value!r}", field=name, value=value)
    return float(value)


def _http_url(name: str, value: object) -> URL | None:
    if value is None:
        return None
    url = URL(value) if isinstance(value, str) else None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"{name} must be an absolute http(s) URL or None, got {value!r}",
            field=name,
            value=value,
        )
    return url


class AsyncVideoProcessor(AsyncResource):
    """Turns videos (URLs or local files) into short vertical clips with burned-in captions.

    Args:
        config: An :class:`~rxflows.AsyncFlowConfig` (defaults for None):
            ``max_concurrent_tasks`` bounds the videos processed at once,
            ``chunk_size`` the videos a batch starts per chunk, and the owned HTTP
            pool follows ``max_concurrent_connections``, ``retry_*`` and
            ``circuit_breaker_*``.
        output_dir: Where clips, SRTs and manifests go (created at first use).
        clip_count: Clips wanted per video (fewer when the speech does not allow more).
        clip_seconds: ``(min, max)`` length of a clip in seconds.
        upload_url: Each clip is sent there (``upload_method``); None keeps the
            clips in ``output_dir`` only.
        upload_method: ``"POST"`` (a multipart form: ``file`` the clip, ``captions``
            its SRT) or ``"PUT"`` (the raw MP4 to ``upload_url/<clip name>``).
        webhook_url: Receives a JSON POST per video (``event`` is
            ``video_processed`` or ``video_failed``, plus the manifest or the error).
        max_download_bytes: Cap of a downloaded video.
        max_duration: Longest video accepted, in seconds (None: no cap).
        recognizer: The speech-to-text :class:`~rxflows.video.Recognizer` (default
            ``PocketSphinxRecognizer(FAST_POCKETSPHINX)``).
        executor: The pool recognition runs in. Default: the processor's own warm
            recognition workers (``min(max_concurrent, CPU count)`` processes, started
            as videos reach ``extract_audio``, each loading the model once, kept
            until :meth:`aclose`; a cancelled video's worker is killed and replaced).
        http_pool: An :class:`~rxflows.HTTPConnectionPool` to use (not closed by
            :meth:`aclose`); default one made from the config, owned.
        event_bus: The bus for ``video_processed`` / ``video_failed`` and the
            pipeline's workflow events (not closed by :meth:`aclose`); default a
            new one, owned.
        clock: Where the stage timings are read (a Clock, an Rx scheduler or None).
        max_concurrent: Videos processed at once by batches and streams; default
            ``config.max_concurrent_tasks``.
        on_progress: Called with a :class:`VideoProgress` when a stage starts, ends
            (finished, failed, cancelled) and as a download's bytes arrive; a plain
            function, run on the loop (keep it quick). An exception it raises is
            logged (logger ``rxflows.video``) and ignored: it never breaks a job.
        ffmpeg_threads: Threads per ffmpeg run: ``"auto"`` (the default) lets ffmpeg
            choose while one video is in progress and gives it 1 thread while more
            are (the videos then share the cores instead of every ffmpeg spreading
            over all of them); an int caps every run; None always lets ffmpeg choose.

    Raises:
        ConfigurationError: an option is invalid (named, with the value and the rule).

    Example:
        >>> async with create_async_video_processor(config, output_dir="clips") as processor:
        ...     result = await processor.process_video("https://cdn.example.com/talk.mp4")
        ...     for clip in result.clips:
        ...         print(clip.path, clip.start, clip.end, clip.text)
    """

    def __init__(
        self,
        config: AsyncFlowConfig | None = None,
        *,
        output_dir: str | os.PathLike[str] = "clips",
        clip_count: int = 3,
        clip_seconds: tuple[float, float] = (15.0, 60.0),
        upload_url: str | None = None,
        upload_method: str = "POST",
        webhook_url: str | None = None,
        max_download_bytes: int = 2 * 1024**3,
        max_duration: float | None = 4 * 3600.0,
        recognizer: Recognizer | None = None,
        executor: Executor | None = None,
        http_pool: HTTPConnectionPool | None = None,
        event_bus: AsyncEventBus | None = None,
        clock: Clock | abc.SchedulerBase | None = None,
        max_concurrent: int | None = None,
        on_progress: ProgressCallback | None = None,
        ffmpeg_threads: FfmpegThreads = "auto",
    ) -> None:
        self._config = cfg = config_or_default(config)
        if not isinstance(output_dir, str | os.PathLike) or not os.fspath(output_dir):
            raise ConfigurationError(
                f"output_dir must be a non-empty path, got {output_dir!r}",
                field="output_dir",
                value=output_dir,
            )
        self._output_dir = Path(output_dir).expanduser().resolve()
        self._clip_count = _positive_int("clip_count", clip_count)
        if (
            not isinstance(clip_seconds, tuple | list)
            or len(clip_seconds) != 2
            or any(
                isinstance(x, bool) or not isinstance(x, int | float) or not 0 < x < float("inf")
                for x in clip_seconds
            )
            or clip_seconds[0] > clip_seconds[1]
        ):
            raise ConfigurationError(
                "clip_seconds must be (min, max) positive seconds with min <= max, "
                f"got {clip_seconds!r}",
                field="clip_seconds",
                value=clip_seconds,
            )
        self._clip_seconds = (float(clip_seconds[0]), float(clip_seconds[1]))
        self._upload_url = _http_url("upload_url", upload_url)
        if upload_method not in _UPLOAD_METHODS:
            raise ConfigurationError(
                f"upload_method must be 'POST' or 'PUT', got {upload_method!r}",
                field="upload_method",
                value=upload_method,
            )
        self._upload_method = upload_method
        self._webhook_url = _http_url("webhook_url", webhook_url)
        self._max_download_bytes = _positive_int("max_download_bytes", max_download_bytes)
        self._max_duration = _positive_number("max_duration", max_duration, none_ok=True)
        if recognizer is None:
            recognizer = PocketSphinxRecognizer(FAST_POCKETSPHINX)
        elif not callable(getattr(recognizer, "transcribe", None)):
            raise TypeError(
                f"recognizer must have a transcribe(wav_path) method, got {recognizer!r}"
            )
        self._recognizer = recognizer
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(f"executor must be a concurrent.futures.Executor, got {executor!r}")
        self._executor = executor
        if http_pool is not None and not isinstance(http_pool, HTTPConnectionPool):
            raise TypeError(f"http_pool must be an HTTPConnectionPool or None, got {http_pool!r}")
        if event_bus is not None and not isinstance(event_bus, AsyncEventBus):
            raise TypeError(f"event_bus must be an AsyncEventBus or None, got {event_bus!r}")
        self._max_concurrent = (
            cfg.max_concurrent_tasks
            if max_concurrent is None
            else _positive_int("max_concurrent", max_concurrent)
        )
        if on_progress is not None and (
            not callable(on_progress) or inspect.iscoroutinefunction(on_progress)
        ):
            raise TypeError(
                "on_progress must be a plain function (called on the loop with a "
                f"VideoProgress) or None, got {on_progress!r}"
            )
        self._on_progress = on_progress
        self._progress: Subject[VideoProgress] = Subject()
        if (
            ffmpeg_threads is not None
            and ffmpeg_threads != "auto"
            and (
                isinstance(ffmpeg_threads, bool)
                or not isinstance(ffmpeg_threads, int)
                or ffmpeg_threads < 1
            )
        ):
            raise ConfigurationError(
                f"ffmpeg_threads must be 'auto', None or a positive int, got {ffmpeg_threads!r}",
                field="ffmpeg_threads",
                value=ffmpeg_threads,
            )
        self._ffmpeg_threads: FfmpegThreads = ffmpeg_threads
        self._workers = (
            RecognizerWorkers(recognizer, min(self._max_concurrent, os.cpu_count() or 1))
            if executor is None
            else None
        )
        self._active = 0
        self._clock_source = clock
        self._clock = as_clock(clock)
        self._owns_pool = http_pool is None
        self._pool = http_pool if http_pool is not None else self._make_pool(cfg, clock)
        self._owns_bus = event_bus is None
        self._bus = event_bus if event_bus is not None else create_async_event_bus(cfg)
        self._engine: AsyncWorkflowEngine | None = None
        self._stems: set[str] = set()
        self._closed = False

    @staticmethod
    def _make_pool(
        cfg: AsyncFlowConfig, clock: Clock | abc.SchedulerBase | None
    ) -> HTTPConnectionPool:
        def breaker(host: str) -> CircuitBreaker:
            return CircuitBreaker.from_config(cfg, name=f"http:{host}", clock=clock)

        return HTTPConnectionPool(
            max_connections=cfg.max_concurrent_connections,
            retry=RetryPolicy(
                max_attempts=cfg.retry_max_attempts,
                delay=cfg.retry_base_delay,
                max_delay=cfg.retry_max_delay,
                clock=clock,
            ),
            breaker=breaker if cfg.enable_circuit_breaker else None,
        )

    # -- properties ----------------------------------------------------------------------

    @property
    def config(self) -> AsyncFlowConfig:
        """The config the processor was built from."""
        return self._config

    @property
    def output_dir(self) -> Path:
        """Where clips, SRTs and manifests go (absolute)."""
        return self._output_dir

    @property
    def event_bus(self) -> AsyncEventBus:
        """The bus ``video_processed`` / ``video_failed`` (and pipeline events) go to."""
        return self._bus

    @property
    def http_pool(self) -> HTTPConnectionPool:
        """The pool downloads, uploads and webhooks go through."""
        return self._pool

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._closed

    @property
    def progress(self) -> Observable[VideoProgress]:
        """Every job's :class:`VideoProgress` events, as they happen (hot: subscribe
        before processing). Completes when the processor is closed.

        Example:
            >>> processor.progress.pipe(
            ...     ops.filter(lambda p: p.status == "finished"),
            ... ).subscribe(lambda p: print(p.source, p.stage, f"{p.elapsed:.2f} s"))
        """
        return self._progress

    # -- public API ------------------------------------------------------------------------

    async def process_video(self, source: str | os.PathLike[str]) -> VideoResult:
        """Process one video through every stage; never raises for a bad video.

        ``source`` is an http(s) URL (downloaded through the pool, at most
        ``max_download_bytes``) or a local path (used in place). A video that cannot
        be processed (unreachable, not a video, no audio, too long, no speech, an
        upload refused, ...) is a ``"failed"`` :class:`VideoResult` whose ``error``
        names the stage and the problem; ``video_failed`` is published (and the
        webhook called). Cancelling kills the job's ffmpeg processes and removes
        its partial outputs.

        Raises:
            TypeError: ``source`` is not a str or a path.
            ClosedResourceError: the processor is closed.

        Example:
            >>> result = await processor.process_video("talk.mp4")
            >>> result.status, [clip.path.name for clip in result.clips]
            ('completed', ['talk-clip-1.mp4', 'talk-clip-2.mp4', 'talk-clip-3.mp4'])
        """
        job = self._new_job(source)
        try:
            try:
                for stage in STAGES[:-1]:
                    await self._run_stage(job, stage)
            except _StageError as exc:
                return await self._failed(job, exc)
            return await self._completed(job)
        finally:
            await self._finish(job)

    async def process_video_batch(
        self,
        sources: Iterable[str | os.PathLike[str]],
        *,
        executor: RemoteExecutor | None = None,
    ) -> list[VideoResult]:
        """Process ``sources``; one :class:`VideoResult` per source, in order.

        At most ``max_concurrent`` (default ``config.max_concurrent_tasks``) videos
        run at once, in chunks of ``config.chunk_size`` sources. A video's failure
        is its failed result, never the batch's.

        With ``executor`` (an :class:`rxflows.Executor`, e.g. a
        :class:`rxflows.dask.DaskExecutor`), each video's whole job runs there
        (``rxflows.video._remote.process_video_remote``, with this processor's options),
        at most ``max_concurrent`` submitted at once. Sources should be URLs and
        clips go out through ``upload_url`` (workers need no shared disk; local
        paths work only where the workers see the same files); result paths are
        paths on the worker. ``video_processed`` / ``video_failed`` are published
        here, the webhook is called by the worker, ``on_progress`` is not called.
        A job the executor fails (a worker lost too often, ...) is a failed result
        with ``stage == "remote"``.

        Example:
            >>> results = await processor.process_video_batch(["a.mp4", "https://x/b.mp4"])
            >>> [r.status for r in results]
            ['completed', 'completed']
            >>> results = await processor.process_video_batch(urls, executor=dask_executor)
        """
        items = list(sources)
        for item in items:
            self._check_source(item)
        self._check_open("process_video_batch")
        if executor is not None:
            from .._executor import check_executor
            from ._remote import process_batch_remotely

            remote = check_executor(executor, "executor")
            return await process_batch_remotely(self, items, remote)
        flow = ParallelFlow(self._config)
        results: list[VideoResult] = []
        size = self._config.chunk_size
        for begin in range(0, len(items), size):
            chunk = items[begin : begin + size]
            results.extend(
                await flow.execute(
                    [lambda s=s: self.process_video(s) for s in chunk],  # type: ignore[misc]  # default-arg binding of the loop variable
                    max_concurrent=self._max_concurrent,
                )
            )
        return results

    def process_video_stream(
        self,
        sources: AsyncIterable[str | os.PathLike[str]] | Iterable[str | os.PathLike[str]],
        *,
        ordered: bool = False,
    ) -> AsyncIterator[VideoResult]:
        """An async iterator of results for an (async) iterable of sources.

        Backpressure: the source is read only while fewer than ``max_concurrent``
        videos are in progress and few results wait for the consumer. Results come
        as they finish (``ordered=True``: in source order). Leaving the loop early
        cancels the videos in progress (their partial outputs are removed).

        Example:
            >>> async for result in processor.process_video_stream(new_uploads()):
            ...     print(result.source, result.status)
        """
        self._check_open("process_video_stream")
        return StreamingFlow(self._config).execute(
            sources, self.process_video, ordered=ordered, max_concurrent=self._max_concurrent
        )

    async def process_video_pipeline(self, source: str | os.PathLike[str]) -> VideoResult:
        """The same job as :meth:`process_video`, run as the guide's workflow.

        The steps :data:`PIPELINE_STEPS` (validate -> download -> extract_audio ->
        generate_captions -> create_clips -> add_effects -> upload -> notify) run on
        an :class:`~rxflows.AsyncWorkflowEngine` named ``"video_pipeline"`` that
        publishes its step events (``step_started``, ``step_completed``, ...) on
        :attr:`event_bus`. The result is a :class:`VideoResult` like
        :meth:`process_video`'s.

        Example:
            >>> await processor.event_bus.subscribe("step_completed", show_progress)
            >>> result = await processor.process_video_pipeline("talk.mp4")
        """
        job = self._new_job(source)
        engine = self._pipeline_engine()
        try:
            run = await engine.run(job)
            if run.succeeded:
                return self._result(job, "completed")
            failure = run.first_failure
            assert failure is not None  # a run that did not succeed has a failure
            error = failure.error
            if isinstance(error, _StageError):
                stage_error = error
            else:  # a timeout or a cancelled step: no _StageError around it
                stage_error = _StageError(
                    failure.name, error or RuntimeError(failure.reason or "step failed")
                )
            return await self._failed(job, stage_error)
        finally:
            await self._finish(job)

    async def aclose(self) -> None:
        """Close what the processor owns (its HTTP pool, bus and pipeline engine).

        A pool or bus passed in is left open. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        if self._engine is not None:
            await self._engine.aclose()
        if self._workers is not None:
            await self._workers.aclose()
        self._progress.on_completed()
        if self._owns_pool:
            await self._pool.close()
        if self._owns_bus:
            await self._bus.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<AsyncVideoProcessor {state} output_dir={str(self._output_dir)!r} "
            f"clip_count={self._clip_count} clip_seconds={self._clip_seconds}>"
        )

    # -- jobs ------------------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise ClosedResourceError(f"{what}(): the video processor is closed")

    @staticmethod
    def _check_source(source: object) -> None:
        if not isinstance(source, str | os.PathLike):
            raise TypeError(
                f"source must be an http(s) URL or a local path (str or os.PathLike), "
                f"got {source!r}"
            )

    def _new_job(self, source: str | os.PathLike[str]) -> _Job:
        self._check_source(source)
        self._check_open("process_video")
        text = os.fspath(source)
        url: URL | None = None
        raw_stem = Path(text).stem
        if isinstance(source, str) and "://" in source:
            url = URL(source)
            raw_stem = Path(url.path).stem or (url.host or "")
        stem = _STEM_CHARS.sub("_", raw_stem).lstrip("._-")[:80] or "video"
        unique, n = stem, 1
        while unique in self._stems or (self._output_dir / f"{unique}.json").exists():
            n += 1
            unique = f"{stem}-{n}"
        self._stems.add(unique)
        self._active += 1  # until _finish
        workdir = self._output_dir / f".work-{unique}-{secrets.token_hex(4)}"
        return _Job(source=text, url=url, stem=unique, workdir=workdir)

    async def _run_stage(self, job: _Job, stage: str) -> None:
        start = job.stage_started = self._clock.now()
        self._report(job, stage, "started", 0.0, 0.0)
        try:
            await getattr(self, f"_stage_{stage}")(job)
        except Exception as exc:
            elapsed = job.timings[stage] = self._clock.now() - start
            error = exc if isinstance(exc, _StageError) else _StageError(stage, exc)
            self._report(job, stage, "failed", elapsed, None, _describe(error.error))
            if error is exc:
                raise
            raise error from exc
        except BaseException:
            elapsed = job.timings[stage] = self._clock.now() - start
            self._report(job, stage, "cancelled", elapsed, None)
            raise
        elapsed = job.timings[stage] = self._clock.now() - start
        self._report(job, stage, "finished", elapsed, 1.0)

    def _report(
        self,
        job: _Job,
        stage: str,
        status: ProgressStatus,
        elapsed: float,
        fraction: float | None,
        error: str | None = None,
    ) -> None:
        """Hand a :class:`VideoProgress` to ``on_progress`` and the :attr:`progress`
        observers; what they raise is logged, never passed to the job."""
        event = VideoProgress(job.source, job.stem, stage, status, elapsed, fraction, error)
        if self._on_progress is not None:
            try:
                self._on_progress(event)
            except Exception:
                _log.exception("on_progress raised on %r (ignored)", event)
        try:
            self._progress.on_next(event)
        except Exception:
            _log.exception("a progress observer raised on %r (ignored)", event)

    def _threads(self) -> int | None:
        """``-threads`` for the next ffmpeg run (None: ffmpeg's own choice)."""
        if self._ffmpeg_threads == "auto":
            return 1 if self._active > 1 else None
        return self._ffmpeg_threads

    async def _finish(self, job: _Job) -> None:
        """Remove the working directory; on failure/cancel, the job's unfinished outputs."""
        self._stems.discard(job.stem)
        self._active -= 1
        doomed = [] if job.manifest is not None else list(job.written)
        await asyncio.shield(asyncio.to_thread(_remove, job.workdir, doomed))

    # -- stages ------------------------------------------------------------------------------

    async def _stage_validate(self, job: _Job) -> None:
        if job.url is not None:
            self._pool.resolve(job.url)  # http(s) only (UnsafeURLError otherwise)
            return
        job.local = await asyncio.to_thread(_local_file, job.source)

    async def _stage_download(self, job: _Job) -> None:
        if job.url is None:
            return  # a local file is used in place (validate resolved it)
        await asyncio.to_thread(job.workdir.mkdir, parents=True, exist_ok=True)
        suffix = _STEM_CHARS.sub("", Path(job.url.path).suffix)[:8] or ".bin"
        dest = job.workdir / f"source{suffix}"

        def progress(received: int, total: int | None) -> None:
            fraction = min(received / total, 1.0) if total else None
            elapsed = self._clock.now() - job.stage_started
            self._report(job, "download", "running", elapsed, fraction)

        await self._pool.download(
            job.url, dest, max_bytes=self._max_download_bytes, progress=progress
        )
        job.local = dest

    async def _stage_probe(self, job: _Job) -> None:
        assert job.local is not None
        job.info = await probe(job.local, max_duration=self._max_duration)

    async def _stage_extract_audio(self, job: _Job) -> None:
        assert job.local is not None
        if self._workers is not None:  # a worker per job in progress loads its model now
            self._workers.start(self._active)
        job.wav = await extract_audio(job.local, job.workdir / "audio.wav", threads=self._threads())

    async def _stage_generate_captions(self, job: _Job) -> None:
        assert job.wav is not None
        if self._workers is not None:
            job.words = await self._workers.transcribe(job.wav)
        else:
            job.words = await transcribe(self._recognizer, job.wav, executor=self._executor)

    async def _stage_create_clips(self, job: _Job) -> None:
        assert job.info is not None
        low, high = self._clip_seconds
        job.windows = pick_windows(job.words, self._clip_count, low, high, job.info.duration)
        if not job.windows:
            raise ValueError(
                f"no speech to clip: {len(job.words)} word(s) recognised, none fits a "
                f"{low:g}-{high:g} s window"
            )
        for n, window in enumerate(job.windows, 1):
            srt = safe_output_path(self._output_dir, f"{job.stem}-clip-{n}.srt")
            job.written.append(srt)
            cues = captions_from_words(window.words, offset=window.start)
            job.srts.append(await asyncio.to_thread(write_srt, cues, srt))

    async def _stage_add_effects(self, job: _Job) -> None:
        assert job.local is not None
        for n, (window, srt) in enumerate(zip(job.windows, job.srts, strict=True), 1):
            dest = safe_output_path(self._output_dir, f"{job.stem}-clip-{n}.mp4")
            job.written.append(dest)
            path = await vertical_clip(
                job.local,
                dest,
                srt=srt,
                start=window.start,
                end=window.end,
                threads=self._threads(),
            )
            job.clips.append(Clip(path, window.start, window.end, window.text, srt))

    async def _stage_upload(self, job: _Job) -> None:
        if self._upload_url is not None:
            job.clips = [await self._upload(clip) for clip in job.clips]
        manifest = safe_output_path(self._output_dir, f"{job.stem}.json")
        data = self._manifest(job)
        await asyncio.to_thread(_write_json, manifest, data)
        job.written.append(manifest)
        job.manifest = manifest

    async def _stage_notify(self, job: _Job) -> None:
        payload = {"event": VIDEO_PROCESSED, **self._manifest(job)}
        await self._bus.publish(VIDEO_PROCESSED, payload)
        if self._webhook_url is not None:
            await self._pool.fetch_bytes(
                self._webhook_url, method="POST", json=payload, max_bytes=_WEBHOOK_MAX_BYTES
            )

    # -- helpers -----------------------------------------------------------------------------

    async def _upload(self, clip: Clip) -> Clip:
        import aiohttp  # already imported by the pool; local to keep the module light

        assert self._upload_url is not None
        body = await asyncio.to_thread(clip.path.read_bytes)
        if self._upload_method == "PUT":
            target = self._upload_url / clip.path.name
            answer = await self._pool.fetch_bytes(
                target,
                method="PUT",
                data=body,
                headers={"Content-Type": "video/mp4"},
                max_bytes=_WEBHOOK_MAX_BYTES,
            )
        else:
            captions = await asyncio.to_thread(clip.srt_path.read_bytes)
            form = aiohttp.FormData()
            form.add_field("file", body, filename=clip.path.name, content_type="video/mp4")
            form.add_field(
                "captions",
                captions,
                filename=clip.srt_path.name,
                content_type="application/x-subrip",
            )
            form.add_field("metadata", json.dumps(clip.to_json()))
            answer = await self._pool.fetch_bytes(
                self._upload_url, method="POST", data=form, max_bytes=_WEBHOOK_MAX_BYTES
            )
        url: str | None = None
        with contextlib.suppress(ValueError):
            decoded = json.loads(answer)
            if isinstance(decoded, dict) and isinstance(decoded.get("url"), str):
                url = decoded["url"]
        return Clip(clip.path, clip.start, clip.end, clip.text, clip.srt_path, url)

    def _manifest(self, job: _Job) -> dict[str, Any]:
        return {
            "source": job.source,
            "status": "completed",
            "duration": None if job.info is None else round(job.info.duration, 3),
            "clips": [clip.to_json() for clip in job.clips],
            "timings": {k: round(v, 4) for k, v in job.timings.items()},
        }

    def _result(
        self, job: _Job, status: Literal["completed", "failed"], error: _StageError | None = None
    ) -> VideoResult:
        return VideoResult(
            source=job.source,
            status=status,
            clips=tuple(job.clips) if error is None or error.stage == "notify" else (),
            manifest_path=job.manifest,
            error=None if error is None else str(error),
            stage=None if error is None else error.stage,
            exception=None if error is None else error.error,
            timings=dict(job.timings),
            duration=None if job.info is None else job.info.duration,
        )

    async def _completed(self, job: _Job) -> VideoResult:
        try:
            await self._run_stage(job, "notify")
        except _StageError as exc:
            return self._result(job, "failed", exc)
        return self._result(job, "completed")

    async def _failed(self, job: _Job, error: _StageError) -> VideoResult:
        """Publish ``video_failed`` (and call the webhook); the failed result."""
        payload = {
            "event": VIDEO_FAILED,
            "source": job.source,
            "status": "failed",
            "stage": error.stage,
            "error": str(error),
        }
        with contextlib.suppress(Exception):  # best effort: the failure is already reported
            await self._bus.publish(VIDEO_FAILED, payload)
            if self._webhook_url is not None and error.stage != "notify":
                await self._pool.fetch_bytes(
                    self._webhook_url, method="POST", json=payload, max_bytes=_WEBHOOK_MAX_BYTES
                )
        return self._result(job, "failed", error)

    def _pipeline_engine(self) -> AsyncWorkflowEngine:
        if self._engine is None:
            engine = AsyncWorkflowEngine(
                self._config,
                event_bus=self._bus,
                clock=self._clock_source,
                name="video_pipeline",
                max_concurrent=1,
            )
            previous: list[str] = []
            for step in PIPELINE_STEPS:
                engine.add_step(WorkflowStep(step, self._step(step), dependencies=previous))
                previous = [step]
            self._engine = engine
        return self._engine

    def _step(self, step: str) -> Any:
        stages = ("download", "probe") if step == "download" else (step,)

        async def run(job: _Job) -> _Job:
            for stage in stages:
                await self._run_stage(job, stage)
            return job

        run.__name__ = step
        return run


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _local_file(source: str) -> Path:
    path = Path(source).expanduser()
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "not found"
        raise FileNotFoundError(f"input file {what}: {source}")
    return path.resolve()


def _remove(workdir: Path, files: list[Path]) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    for path in files:
        path.unlink(missing_ok=True)


def create_async_video_processor(
    config: AsyncFlowConfig | None = None, **options: Any
) -> AsyncVideoProcessor:
    """The guide's factory: an :class:`AsyncVideoProcessor` built from ``config``.

    ``options`` are :class:`AsyncVideoProcessor`'s keyword arguments.

    Example:
        >>> processor = create_async_video_processor(
        ...     config, output_dir="clips", clip_count=3, clip_seconds=(15, 45),
        ...     upload_url="https://media.example.com/upload",
        ... )
        >>> results = await processor.process_video_batch(video_urls)
        >>> await processor.aclose()
    """
    return AsyncVideoProcessor(config, **options)
