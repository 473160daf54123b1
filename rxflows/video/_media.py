"""Media operations on top of the safe ffmpeg runner: audio extraction, cutting,
and the vertical 9:16 format with burned-in captions.

Every function reads an existing local file, writes ``dest`` atomically (a
temporary name renamed on success; nothing is left on failure or cancellation)
and returns ``dest`` resolved.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Final

from .._errors import ConfigurationError
from ._ffmpeg import file_arg, resolve_input, run_ffmpeg, staged_output

__all__ = ["cut_clip", "extract_audio", "vertical_clip"]

SAMPLE_RATE: Final = 16_000
"""Speech recognizers want 16 kHz mono 16-bit PCM."""

_VIDEO_CODEC: Final = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "26")
_PIXELS: Final = ("-pix_fmt", "yuv420p")
_AUDIO_CODEC: Final = ("-c:a", "aac", "-b:a", "64k")
_CAPTION_STYLE: Final = (
    "FontName=DejaVu Sans,FontSize=14,PrimaryColour=&H00FFFFFF,OutlineColour=&H00000000,"
    "BorderStyle=1,Outline=1,Shadow=0,Alignment=2,MarginV=40"
)


def _resolved(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().resolve()


def _thread_args(threads: int | None) -> tuple[list[str], list[str]]:
    """ffmpeg's ``(input options, output options)`` for ``threads`` (None: its own choice)."""
    if threads is None:
        return [], []
    if isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0:
        raise ConfigurationError(
            f"threads must be a positive int or None, got {threads!r}",
            field="threads",
            value=threads,
        )
    count = str(threads)
    # Decoder threads (an input option), encoder threads (an output option) and the
    # filter graph's threads (global): one number for all three.
    return ["-threads", count, "-filter_threads", count], ["-threads", count]


def _check_span(start: float, end: float | None) -> None:
    if not start >= 0:
        raise ConfigurationError(
            f"start must be a number >= 0, got {start!r}", field="start", value=start
        )
    if end is not None and not end > start:
        raise ConfigurationError(
            f"end must be greater than start ({start!r}), got {end!r}", field="end", value=end
        )


async def extract_audio(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    sample_rate: int = SAMPLE_RATE,
    threads: int | None = None,
) -> Path:
    """Write ``src``'s first audio track to ``dest`` as mono 16-bit PCM WAV.

    ``threads`` caps ffmpeg's threads (None: ffmpeg's own choice, one per core or so).

    Example:
        >>> wav = await extract_audio("talk.mp4", "out/talk.wav")   # 16 kHz mono
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ConfigurationError(
            f"sample_rate must be a positive int, got {sample_rate!r}",
            field="sample_rate",
            value=sample_rate,
        )
    before, after = _thread_args(threads)
    source = resolve_input(src)
    async with staged_output(dest) as temp:
        await run_ffmpeg(
            [
                *("-loglevel", "error", *before, "-i", file_arg(source), "-map", "0:a:0"),
                *("-vn", "-ac", "1", "-ar", str(sample_rate), "-c:a", "pcm_s16le", *after),
                *("-f", "wav", "-y", file_arg(temp)),
            ]
        )
    return _resolved(dest)


async def cut_clip(
    src: str | os.PathLike[str],
    start: float,
    end: float,
    dest: str | os.PathLike[str],
    *,
    threads: int | None = None,
) -> Path:
    """Cut ``[start, end)`` seconds of ``src`` into ``dest`` (re-encoded: frame-accurate).

    ``threads`` caps ffmpeg's threads (None: ffmpeg's own choice).

    Example:
        >>> clip = await cut_clip("talk.mp4", 2.5, 9.0, "out/clip-1.mp4")
    """
    _check_span(start, end)
    before, after = _thread_args(threads)
    source = resolve_input(src)
    async with staged_output(dest) as temp:
        await run_ffmpeg(
            [
                *("-loglevel", "error", *before, "-ss", f"{start:.3f}", "-i", file_arg(source)),
                *("-t", f"{end - start:.3f}", *_VIDEO_CODEC, *_PIXELS, *_AUDIO_CODEC, *after),
                *("-movflags", "+faststart", "-y", file_arg(temp)),
            ]
        )
    return _resolved(dest)


async def vertical_clip(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    srt: str | os.PathLike[str] | None = None,
    width: int = 540,
    height: int = 960,
    start: float = 0.0,
    end: float | None = None,
    threads: int | None = None,
) -> Path:
    """Make a vertical 9:16 video of ``src`` for short-form platforms.

    The middle of the frame is cropped to 9:16 and scaled to ``width`` x ``height``;
    with ``srt`` its cues are burned in (libass, DejaVu Sans, bottom centre). The
    SRT's times are relative to the output, so with ``start``/``end`` (cut and
    format in one pass) they count from ``start``. ``threads`` caps ffmpeg's
    threads (None: ffmpeg's own choice).

    Example:
        >>> await vertical_clip("out/clip-1.mp4", "out/clip-1.vertical.mp4", srt="out/clip-1.srt")
    """
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 2:
            raise ConfigurationError(
                f"{name} must be a positive even int, got {value!r}", field=name, value=value
            )
    if width * 16 != height * 9:
        raise ConfigurationError(
            f"width:height must be 9:16, got {width}x{height}", field="width", value=width
        )
    _check_span(start, end)
    before, after = _thread_args(threads)
    source = resolve_input(src)
    captions = resolve_input(srt) if srt is not None else None
    # The biggest centred 9:16 box, then the target size.
    video_filter = f"crop='min(iw,ih*9/16)':'min(ih,iw*16/9)',scale={width}:{height},setsar=1"
    span = ["-ss", f"{start:.3f}"] if start else []
    if end is not None:
        span += ["-t", f"{end - start:.3f}"]
    with tempfile.TemporaryDirectory(prefix="rxflows-captions-") as workdir:
        if captions is not None:
            # The subtitles filter takes a filter-escaped file name; a fixed name in a
            # private directory (ffmpeg's working directory) needs no escaping at all.
            shutil.copyfile(captions, Path(workdir) / "captions.srt")
            video_filter += f",subtitles=captions.srt:force_style='{_CAPTION_STYLE}'"
        async with staged_output(dest) as temp:
            await run_ffmpeg(
                [
                    *("-loglevel", "error", *before, *span, "-i", file_arg(source)),
                    *("-vf", video_filter, *_VIDEO_CODEC, *_PIXELS, *_AUDIO_CODEC, *after),
                    *("-movflags", "+faststart"),
                    *("-y", file_arg(temp)),
                ],
                cwd=workdir,
            )
    return _resolved(dest)
