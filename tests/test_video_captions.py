"""Speech recognition (pocketsphinx on the committed talking video) and SRT files."""

from __future__ import annotations

import asyncio
import itertools
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from rxflows import ConfigurationError
from rxflows.video import (
    FAST_POCKETSPHINX,
    Caption,
    MediaError,
    PocketSphinxRecognizer,
    Recognizer,
    Word,
    captions_from_words,
    extract_audio,
    format_srt,
    pick_windows,
    probe,
    safe_output_path,
    transcribe,
    vertical_clip,
    write_srt,
)
from tests.support import wait_exited

TALKING = Path(__file__).parent / "data" / "talking.mp4"


class ScriptedRecognizer:
    """A recognizer that returns fixed words (run in a thread pool here)."""

    def __init__(self, words: list[Word]) -> None:
        self.words = words
        self.calls: list[Path] = []

    def transcribe(self, wav_path: Path) -> list[Word]:
        self.calls.append(wav_path)
        return self.words


@pytest.mark.real_time
async def test_pocketsphinx_finds_timed_words_in_the_talking_video(tmp_path: Path) -> None:
    wav_path = await extract_audio(TALKING, tmp_path / "talk.wav")
    with wave.open(str(wav_path)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    words = await transcribe(PocketSphinxRecognizer(FAST_POCKETSPHINX), wav_path)
    # Synthetic speech is recognized poorly: check the structure, not the words.
    assert len(words) >= 10
    for word in words:
        assert word.text
        assert word.text == word.text.strip()
        assert "<" not in word.text
        assert "(" not in word.text  # alternate-pronunciation markers are stripped
        assert 0 <= word.start <= word.end <= seconds + 0.05
    for before, after in itertools.pairwise(words):
        assert before.end <= after.start
    assert words[0].start < 1.5  # speech starts at once
    assert words[-1].end > seconds - 3  # and runs to near the end


@pytest.mark.real_time
async def test_transcribe_uses_the_given_executor(tmp_path: Path) -> None:
    wav_path = tmp_path / "x.wav"
    wav_path.write_bytes(b"")
    scripted = ScriptedRecognizer([Word("hello", 0.1, 0.5)])
    with ThreadPoolExecutor(1) as pool:
        words = await transcribe(scripted, wav_path, executor=pool)
    assert words == [Word("hello", 0.1, 0.5)]
    assert scripted.calls == [wav_path.resolve()]


async def test_transcribe_checks_its_arguments(tmp_path: Path) -> None:
    assert isinstance(PocketSphinxRecognizer(), Recognizer)
    with pytest.raises(TypeError, match="recognizer must have a transcribe"):
        await transcribe(object(), tmp_path / "x.wav")  # type: ignore[arg-type]  # misuse on purpose
    with pytest.raises(MediaError, match="audio file not found"):
        await transcribe(PocketSphinxRecognizer(), tmp_path / "absent.wav")


def test_pocketsphinx_refuses_stereo(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(b"\0" * 6400)
    with pytest.raises(MediaError, match="needs 16-bit mono WAV, got 2 channel"):
        PocketSphinxRecognizer().transcribe(stereo)


def test_pocketsphinx_finds_no_words_in_silence(tmp_path: Path) -> None:
    silence = tmp_path / "silence.wav"
    with wave.open(str(silence), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(b"\0" * 32_000)
    assert PocketSphinxRecognizer(FAST_POCKETSPHINX).transcribe(silence) == []


WORDS = [
    Word("one", 10.0, 10.3),
    Word("two", 10.4, 10.7),
    Word("three", 10.8, 11.2),
    Word("four", 12.5, 12.9),  # after a 1.3 s pause
    Word("five", 13.0, 13.4),
]


def test_captions_break_at_pauses_and_shift_by_offset() -> None:
    assert captions_from_words(WORDS, offset=10.0) == [
        Caption(0.0, 1.2, "one two three"),
        Caption(2.5, 3.4, "four five"),
    ]


def test_captions_break_at_max_words_and_max_seconds() -> None:
    assert [c.text for c in captions_from_words(WORDS, max_words=2, max_gap=5)] == [
        "one two",
        "three four",
        "five",
    ]
    assert [c.text for c in captions_from_words(WORDS, max_seconds=1.0, max_gap=5)] == [
        "one two",
        "three",
        "four five",
    ]
    assert captions_from_words([]) == []
    with pytest.raises(ConfigurationError, match="max_words must be a positive int, got 0"):
        captions_from_words(WORDS, max_words=0)


def test_format_srt_numbers_cues_and_formats_times() -> None:
    text = format_srt([Caption(0.5, 2.0, "Hello\nworld"), Caption(3661.25, 3662.0, "later")])
    assert text == (
        "1\n00:00:00,500 --> 00:00:02,000\nHello world\n\n2\n01:01:01,250 --> 01:01:02,000\nlater\n"
    )


def test_format_srt_strips_style_overrides_and_skips_empty_cues() -> None:
    text = format_srt([Caption(0, 1, "{\\an8}up \\N here"), Caption(1, 2, "  "), Word("x", 2, 3)])
    assert (
        text
        == "1\n00:00:00,000 --> 00:00:01,000\nan8up N here\n\n2\n00:00:02,000 --> 00:00:03,000\nx\n"
    )


def test_write_srt_writes_the_file(tmp_path: Path) -> None:
    path = write_srt(captions_from_words(WORDS, offset=10.0), tmp_path / "clips" / "clip-1.srt")
    assert path == tmp_path / "clips" / "clip-1.srt"
    assert path.read_text(encoding="utf-8").startswith("1\n00:00:00,000 --> 00:00:01,200\n")
    assert [p.name for p in path.parent.iterdir()] == ["clip-1.srt"]


@pytest.mark.real_time
async def test_media_layer_end_to_end(tmp_path: Path) -> None:
    """The package docstring's recipe: words → windows → per-clip SRT → vertical clips."""
    info = await probe(TALKING, max_duration=60)
    wav_path = await extract_audio(TALKING, tmp_path / "talk.wav")
    words = await transcribe(PocketSphinxRecognizer(FAST_POCKETSPHINX), wav_path)
    windows = pick_windows(words, 2, 2.0, 5.0, info.duration)
    assert len(windows) == 2
    for number, window in enumerate(windows, 1):
        srt = write_srt(
            captions_from_words(window.words, offset=window.start),
            safe_output_path(tmp_path, f"clip-{number}.srt"),
        )
        first_cue = srt.read_text(encoding="utf-8").splitlines()[:3]
        assert first_cue[0] == "1"
        assert first_cue[1].startswith("00:00:0")  # times relative to the clip
        assert first_cue[2] == " ".join(w.text for w in window.words)[: len(first_cue[2])]
        clip = await vertical_clip(
            TALKING,
            safe_output_path(tmp_path, f"clip-{number}.mp4"),
            srt=srt,
            width=180,
            height=320,
            start=window.start,
            end=window.end,
        )
        clip_info = await probe(clip)
        assert (clip_info.width, clip_info.height) == (180, 320)
        assert 2.0 - 0.15 <= clip_info.duration <= 5.0 + 0.15


def _spawned_workers() -> list[psutil.Process]:
    workers = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                workers.append(child)
        except psutil.NoSuchProcess:
            continue
    return workers


@pytest.mark.real_time
async def test_cancelling_transcribe_stops_its_own_worker(tmp_path: Path) -> None:
    wav_path = await extract_audio(TALKING, tmp_path / "talk.wav")
    before = {worker.pid for worker in _spawned_workers()}
    # Full-accuracy decoding takes several seconds: long enough to cancel midway.
    task = asyncio.create_task(transcribe(PocketSphinxRecognizer(), wav_path))
    started: list[psutil.Process] = []
    for _ in range(500):  # real time: wait (at most 5 s) for the worker to start
        started = [w for w in _spawned_workers() if w.pid not in before]
        if started:
            break
        await asyncio.sleep(0.01)
    assert len(started) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # killed: it exits at once rather than finish decoding (never reaped here: see wait_exited)
    assert await wait_exited(started) == []
