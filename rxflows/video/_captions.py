"""Speech to text with word timings, and SRT subtitle files.

A :class:`Recognizer` turns a 16 kHz mono WAV file into timed :class:`Word`\\ s.
It is plain synchronous code, because recognition is CPU-bound: :func:`transcribe`
runs it off the event loop in a process pool, so a recognizer must be picklable
(a module-level class with plain attributes). :class:`PocketSphinxRecognizer` is
the bundled offline one (the ``pocketsphinx`` wheel ships an English model).
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import re
import wave
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from .._errors import ConfigurationError, MediaError

__all__ = [
    "FAST_POCKETSPHINX",
    "Caption",
    "PocketSphinxRecognizer",
    "Recognizer",
    "Word",
    "captions_from_words",
    "format_srt",
    "transcribe",
    "write_srt",
]


@dataclass(frozen=True, slots=True)
class Word:
    """One recognized word and when it was said (seconds from the audio's start)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Caption:
    """One subtitle cue: ``text`` shown from ``start`` to ``end`` seconds."""

    start: float
    end: float
    text: str


@runtime_checkable
class Recognizer(Protocol):
    """Speech to text with word timings; plug in your own (Vosk, Whisper, a service).

    ``transcribe`` is synchronous and CPU-bound; :func:`transcribe` runs it in a
    process pool, so implementations must be picklable. Words come back in time
    order, do not overlap, and each has ``start < end``.
    """

    def transcribe(self, wav_path: Path) -> list[Word]:
        """The words spoken in a 16 kHz mono 16-bit WAV file."""
        ...


FAST_POCKETSPHINX: Final[Mapping[str, Any]] = {
    "fwdflat": False,
    "bestpath": False,
    "maxhmmpf": 3000,
    "beam": 1e-30,
    "wbeam": 1e-20,
}
"""Narrow beams for :class:`PocketSphinxRecognizer`: about 8x faster than the
defaults, at a clear cost in accuracy (timings stay usable for picking clips)."""

# pocketsphinx fillers (<s>, </s>, <sil>, [NOISE], ++GARBAGE++) are not words.
_FILLER: Final = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")
_ALTERNATE: Final = re.compile(r"\(\d+\)$")  # "the(2)": the second pronunciation of "the"
_DECODERS: dict[tuple[tuple[str, Any], ...], Any] = {}  # per worker process, by options


@dataclass(frozen=True)
class PocketSphinxRecognizer:
    """Offline English recognition with ``pocketsphinx`` 5 (imported lazily).

    ``options`` are passed to ``pocketsphinx.Decoder`` (for example
    :data:`FAST_POCKETSPHINX`, or ``hmm``/``lm``/``dict`` for another model). The
    audio is split at pauses by pocketsphinx's voice-activity segmenter and each
    stretch of speech decoded on its own; a worker process keeps its decoder
    between calls.

    Example:
        >>> words = await transcribe(PocketSphinxRecognizer(), "talk.wav")
        >>> words[0]
        Word(text='welcome', start=0.03, end=0.46)
    """

    options: Mapping[str, Any] = field(default_factory=dict)

    def _decoder(self, sample_rate: int) -> Any:
        try:
            import pocketsphinx  # optional dependency: imported on first use
        except ImportError as exc:
            raise MediaError(
                "pocketsphinx is not available: install the video extra"
                " (pip install 'rxflows[video]')"
            ) from exc
        key = tuple(sorted({**self.options, "samprate": sample_rate}.items()))
        decoder = _DECODERS.get(key)
        if decoder is None:
            decoder = pocketsphinx.Decoder(loglevel="FATAL", **dict(key))
            _DECODERS[key] = decoder
        return decoder

    def warm_up(self, sample_rate: int = 16_000) -> None:
        """Load the model now (a recognition worker's initializer calls this), so the
        first :meth:`transcribe` does not pay for it."""
        self._decoder(sample_rate)

    def transcribe(self, wav_path: Path) -> list[Word]:
        """The words in ``wav_path`` (16-bit mono PCM WAV), in time order."""
        import pocketsphinx  # optional dependency: imported on first use

        with wave.open(os.fspath(wav_path), "rb") as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
                raise MediaError(
                    f"recognizer needs 16-bit mono WAV, got {wav.getnchannels()} channel(s)"
                    f" of {8 * wav.getsampwidth()} bits",
                    path=str(wav_path),
                )
            sample_rate = wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
        decoder = self._decoder(sample_rate)
        frame_rate = float(decoder.config["frate"])
        segmenter = pocketsphinx.Segmenter(sample_rate=sample_rate)
        words: list[Word] = []
        for speech in segmenter.segment(io.BytesIO(pcm)):
            decoder.start_utt()
            decoder.process_raw(speech.pcm, full_utt=True)
            decoder.end_utt()
            offset = float(speech.start_time)
            for segment in decoder.seg():
                text = _ALTERNATE.sub("", segment.word)
                if _FILLER.match(text):
                    continue
                start = offset + segment.start_frame / frame_rate
                end = offset + (segment.end_frame + 1) / frame_rate
                start = round(start, 3)
                if words and start < words[-1].end:  # segments overlap by a frame at most
                    start = words[-1].end
                end = max(round(end, 3), round(start + 1 / frame_rate, 3))
                words.append(Word(text, start, end))
        return words


def _existing(wav_path: str | os.PathLike[str]) -> Path:
    path = Path(wav_path).expanduser().resolve()
    if not path.is_file():
        raise MediaError(f"audio file not found: {path}", path=str(path))
    return path


def _spawn_pool() -> ProcessPoolExecutor:
    # "spawn": forking a process that runs an event loop and threads is unsafe.
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


async def transcribe(
    recognizer: Recognizer,
    wav_path: str | os.PathLike[str],
    *,
    executor: Executor | None = None,
) -> list[Word]:
    """Run ``recognizer`` on ``wav_path`` off the event loop.

    ``executor`` is the pool to use (share one ``ProcessPoolExecutor`` between
    jobs); without it a one-worker process pool is started for this call and shut
    down after it. Cancelling the await abandons the result (a process pool cannot
    interrupt a running job).

    Example:
        >>> with ProcessPoolExecutor(2) as pool:
        ...     words = await transcribe(PocketSphinxRecognizer(), "talk.wav", executor=pool)
    """
    if not isinstance(recognizer, Recognizer):
        raise TypeError(f"recognizer must have a transcribe(wav_path) method, got {recognizer!r}")
    path = _existing(wav_path)
    loop = asyncio.get_running_loop()
    if executor is not None:
        return await loop.run_in_executor(executor, recognizer.transcribe, path)
    pool = _spawn_pool()
    try:
        words = await loop.run_in_executor(pool, recognizer.transcribe, path)
    except BaseException:
        # Our own one-off pool: stop its worker now rather than let the job run on.
        for process in list(pool._processes.values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    await asyncio.to_thread(pool.shutdown, wait=True)
    return words


def captions_from_words(
    words: Iterable[Word],
    *,
    offset: float = 0.0,
    max_words: int = 7,
    max_seconds: float = 3.0,
    max_gap: float = 0.6,
) -> list[Caption]:
    """Group words into subtitle cues, times shifted by ``-offset``.

    A cue ends after ``max_words`` words, when it would last longer than
    ``max_seconds``, or at a pause longer than ``max_gap`` seconds. Use ``offset``
    = the clip's start to make a clip's own SRT from the whole video's words.

    Example:
        >>> captions_from_words([Word("hi", 10.0, 10.4), Word("there", 10.5, 11.0)], offset=10)
        [Caption(start=0.0, end=1.0, text='hi there')]
    """
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words <= 0:
        raise ConfigurationError(
            f"max_words must be a positive int, got {max_words!r}",
            field="max_words",
            value=max_words,
        )
    cues: list[Caption] = []
    group: list[Word] = []

    def flush() -> None:
        if group:
            text = " ".join(word.text for word in group)
            start = max(group[0].start - offset, 0.0)
            cues.append(Caption(round(start, 3), round(group[-1].end - offset, 3), text))
            group.clear()

    for word in words:
        if group and (
            len(group) >= max_words
            or word.end - group[0].start > max_seconds
            or word.start - group[-1].end > max_gap
        ):
            flush()
        group.append(word)
    flush()
    return cues


def _timestamp(seconds: float) -> str:
    millis = max(round(seconds * 1000), 0)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def _cue_text(text: str) -> str:
    # One line, and no "{...}" or backslash: libass would read them as style overrides.
    return " ".join(re.sub(r"[{}\\]", "", text).split())


def format_srt(cues: Sequence[Caption | Word]) -> str:
    """The SRT text for ``cues`` (captions or single words), numbered from 1.

    Example:
        >>> print(format_srt([Caption(0.5, 2.0, "Hello world")]), end="")
        1
        00:00:00,500 --> 00:00:02,000
        Hello world
    """
    blocks = []
    number = 0
    for cue in cues:
        text = _cue_text(cue.text)
        if not text:
            continue
        number += 1
        blocks.append(f"{number}\n{_timestamp(cue.start)} --> {_timestamp(cue.end)}\n{text}\n")
    return "\n".join(blocks)


def write_srt(cues: Sequence[Caption | Word], path: str | os.PathLike[str]) -> Path:
    """Write ``cues`` as an SRT file at ``path`` (atomically) and return the path.

    Example:
        >>> write_srt(captions_from_words(words, offset=clip.start), "out/clip-1.srt")
    """
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.partial")
    temp.write_text(format_srt(cues), encoding="utf-8")
    os.replace(temp, target)
    return target
