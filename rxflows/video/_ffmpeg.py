"""A safe async runner for the ffmpeg binary bundled with ``imageio-ffmpeg``.

Inputs are untrusted, so every call follows the same rules:

* ffmpeg runs through :func:`asyncio.create_subprocess_exec` with an argument list,
  never a shell; stdin is closed (``-nostdin`` too), stdout discarded, and stderr
  captured with a bounded buffer (only its tail is kept for the error message).
* Input paths are resolved to absolute paths and passed as ``file:/abs/path``: a
  file named ``-y`` or ``http:x`` can never become an option or a protocol.
* Output names are sanitized and must land inside the given output directory.
* Cancelling a run kills ffmpeg and waits for it, so no process is left behind;
  outputs are written to a temporary name and renamed only on success.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .._errors import ConfigurationError, MediaError, UnsupportedMediaError

__all__ = [
    "MediaInfo",
    "ffmpeg_exe",
    "file_arg",
    "probe",
    "resolve_input",
    "run_ffmpeg",
    "safe_output_path",
    "staged_output",
]

STDERR_LIMIT: Final = 64 * 1024
"""Bytes of ffmpeg's stderr kept (the tail); older output is dropped as it streams."""

_ERROR_TAIL_LINES: Final = 8
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME: Final = 120


@functools.cache
def ffmpeg_exe() -> str:
    """The path of the bundled ffmpeg binary (``imageio-ffmpeg``, imported lazily).

    Raises:
        MediaError: the ``video`` extra is not installed.
    """
    try:
        import imageio_ffmpeg  # optional dependency: imported on first use
    except ImportError as exc:
        raise MediaError(
            "ffmpeg is not available: install the video extra (pip install 'rxflows[video]')"
        ) from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def resolve_input(path: str | os.PathLike[str]) -> Path:
    """``path`` as an absolute, resolved path to an existing regular file.

    Raises:
        MediaError: the file does not exist or is not a regular file.
    """
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise MediaError(f"input file not found: {resolved}", path=str(resolved))
    return resolved


def file_arg(path: Path) -> str:
    """An absolute path as an ffmpeg argument that can only mean that local file."""
    if not path.is_absolute():
        raise ConfigurationError(
            f"path must be absolute, got {str(path)!r}", field="path", value=path
        )
    return f"file:{path}"


def safe_output_path(output_dir: str | os.PathLike[str], name: str) -> Path:
    """A path for an output called ``name`` inside ``output_dir``, never outside it.

    Only the last component of ``name`` is kept; characters other than letters,
    digits, ``.``, ``_`` and ``-`` become ``_``; leading dots and dashes are
    dropped (no hidden files, nothing that reads as an option); the result is at
    most 120 characters.

    Example:
        >>> safe_output_path("/out", "../../etc/passwd").as_posix()
        '/out/passwd'
        >>> safe_output_path("/out", "-y clip 1.mp4").name
        'y_clip_1.mp4'
    """
    base = Path(output_dir).expanduser().resolve()
    last = re.split(r"[\\/]", name)[-1]
    cleaned = _SAFE_NAME.sub("_", last).lstrip(".-_")[-_MAX_NAME:]
    if not cleaned or cleaned.strip(".") == "":
        raise ConfigurationError(
            f"output name must contain a letter or digit, got {name!r}", field="name", value=name
        )
    result = (base / cleaned).resolve()
    if result.parent != base:  # defence in depth: a symlink cannot lead elsewhere either
        raise ConfigurationError(
            f"output name must stay inside {base}, got {name!r}", field="name", value=name
        )
    return result


def _staging_paths(dest: str | os.PathLike[str]) -> tuple[Path, Path]:
    final = Path(dest).expanduser().resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    return final, final.with_name(f".{final.stem}.{secrets.token_hex(4)}.partial{final.suffix}")


@contextlib.asynccontextmanager
async def staged_output(dest: str | os.PathLike[str]) -> AsyncIterator[Path]:
    """Yield a temporary path beside ``dest``; rename it to ``dest`` on success.

    On an error or cancellation the temporary file is removed, so a ``dest`` that
    exists is always complete. The temporary name keeps ``dest``'s suffix (ffmpeg
    picks the container from it).
    """
    final, temp = _staging_paths(dest)
    try:
        yield temp
        os.replace(temp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


async def _read_tail(stream: asyncio.StreamReader, limit: int) -> bytes:
    buffer = bytearray()
    while chunk := await stream.read(8192):
        buffer += chunk
        if len(buffer) > limit:
            del buffer[: len(buffer) - limit]
    return bytes(buffer)


def _tail(stderr: str, lines: int = _ERROR_TAIL_LINES) -> str:
    return "\n".join(line for line in stderr.strip().splitlines()[-lines:])


async def run_ffmpeg(
    args: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    check: bool = True,
    stderr_limit: int = STDERR_LIMIT,
) -> str:
    """Run the bundled ffmpeg with ``args`` (no shell) and return its stderr text.

    ``-hide_banner -nostdin`` are added in front. With ``check`` (the default) a
    non-zero exit raises :class:`MediaError` carrying the tail of stderr.
    Cancelling the awaiting task kills ffmpeg and waits for it to exit before the
    cancellation propagates.

    Example:
        >>> await run_ffmpeg(["-f", "lavfi", "-i", "testsrc", "-t", "1", "-f", "null", "-"])
    """
    process = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    assert process.stderr is not None  # stderr=PIPE
    try:
        raw = await _read_tail(process.stderr, stderr_limit)
        returncode = await process.wait()
    except BaseException:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            # Reap it even while being cancelled: no zombie, no orphan left behind.
            await asyncio.shield(process.wait())
        raise
    stderr = raw.decode("utf-8", errors="replace")
    if check and returncode != 0:
        tail = _tail(stderr)
        raise MediaError(
            f"ffmpeg failed with exit status {returncode}: {tail or '(no message)'}",
            returncode=returncode,
            stderr=tail,
        )
    return stderr


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What :func:`probe` found in a media file.

    ``duration`` in seconds; ``width``/``height``/``fps`` describe the first video
    stream (0 when there is none).
    """

    path: Path
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0


_DURATION: Final = re.compile(r"Duration:\s*(\d+):(\d\d):(\d\d(?:\.\d+)?)")
_STREAM: Final = re.compile(r"^\s*Stream #\d+:\d+.*?:\s*(Video|Audio):\s*(.*)$", re.MULTILINE)
_SIZE: Final = re.compile(r"(?<![0-9x])(\d{2,5})x(\d{2,5})(?![0-9x])")
_FPS: Final = re.compile(r"(\d+(?:\.\d+)?)\s*(?:fps|tbr)\b")


def parse_probe(path: Path, stderr: str) -> MediaInfo:
    """Parse ``ffmpeg -i`` output into a :class:`MediaInfo` (``not_media`` if it fails)."""
    if "Input #0" not in stderr:
        tail = _tail(stderr, 3)
        raise UnsupportedMediaError(
            f"not a readable media file: {path.name} ({tail or 'ffmpeg found no streams'})",
            problem="not_media",
            path=str(path),
            stderr=tail,
        )
    duration = 0.0
    if match := _DURATION.search(stderr):
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    has_video = has_audio = False
    width = height = 0
    fps = 0.0
    for kind, detail in _STREAM.findall(stderr):
        if kind == "Audio":
            has_audio = True
        elif not has_video and "attached pic" not in detail:
            has_video = True
            if size := _SIZE.search(detail):
                width, height = int(size.group(1)), int(size.group(2))
            if rate := _FPS.search(detail):
                fps = float(rate.group(1))
    return MediaInfo(path, duration, has_video, has_audio, width, height, fps)


async def probe(
    path: str | os.PathLike[str],
    *,
    max_duration: float | None = None,
    require_video: bool = True,
    require_audio: bool = True,
) -> MediaInfo:
    """Read ``path``'s container with ffmpeg and describe it.

    Raises:
        MediaError: the file does not exist.
        UnsupportedMediaError: not a media file (or corrupt), no video stream, no
            audio stream, or longer than ``max_duration`` seconds; ``problem`` says which.

    Example:
        >>> info = await probe("talk.mp4", max_duration=3600)
        >>> info.duration, info.width, info.height
        (12.16, 320, 240)
    """
    source = resolve_input(path)
    # Without an output ffmpeg exits 1 after printing the input's description.
    stderr = await run_ffmpeg(["-i", file_arg(source)], check=False)
    info = parse_probe(source, stderr)
    if info.duration <= 0:
        raise UnsupportedMediaError(
            f"not a readable media file: {source.name} has no known duration",
            problem="not_media",
            path=str(source),
        )
    if require_video and not info.has_video:
        raise UnsupportedMediaError(
            f"not a video: {source.name} has no video stream", problem="no_video", path=str(source)
        )
    if require_audio and not info.has_audio:
        raise UnsupportedMediaError(
            f"no audio: {source.name} has no audio stream to caption",
            problem="no_audio",
            path=str(source),
        )
    if max_duration is not None and info.duration > max_duration:
        raise UnsupportedMediaError(
            f"too long: {source.name} lasts {info.duration:.1f} s, over max_duration"
            f" {max_duration:g} s",
            problem="too_long",
            path=str(source),
        )
    return info
