"""Audio extraction, cutting and the vertical format, with real ffmpeg on committed media."""

from __future__ import annotations

import os
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rxflows import ConfigurationError
from rxflows.video import (
    Caption,
    MediaError,
    _media,
    cut_clip,
    extract_audio,
    probe,
    run_ffmpeg,
    vertical_clip,
    write_srt,
)
from rxflows.video._ffmpeg import file_arg

pytestmark = pytest.mark.real_time

TALKING = Path(__file__).parent / "data" / "talking.mp4"


async def _gray_frame(video: Path, at: float, dest: Path) -> bytes:
    """One frame at ``at`` seconds as 8-bit grayscale pixels."""
    await run_ffmpeg(
        [
            *("-loglevel", "error", "-ss", f"{at}", "-i", file_arg(video), "-frames:v", "1"),
            *("-f", "rawvideo", "-pix_fmt", "gray", "-y", file_arg(dest)),
        ]
    )
    return _read(dest)


def _read(path: Path) -> bytes:
    return path.read_bytes()


async def test_extract_audio_writes_16khz_mono_wav(tmp_path: Path) -> None:
    wav_path = await extract_audio(TALKING, tmp_path / "sub" / "talk.wav")
    assert wav_path == tmp_path / "sub" / "talk.wav"
    with wave.open(str(wav_path)) as wav:
        assert wav.getframerate() == 16_000
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        seconds = wav.getnframes() / wav.getframerate()
    assert 11.5 < seconds < 13.0
    assert os.listdir(wav_path.parent) == ["talk.wav"]  # no temporary left


async def test_extract_audio_checks_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="sample_rate must be a positive int, got 0"):
        await extract_audio(TALKING, tmp_path / "a.wav", sample_rate=0)
    with pytest.raises(MediaError, match="input file not found"):
        await extract_audio(tmp_path / "absent.mp4", tmp_path / "a.wav")


async def test_a_failed_extraction_leaves_no_output(tmp_path: Path) -> None:
    silent = tmp_path / "silent.mp4"
    red = "color=c=red:size=64x64:rate=5:duration=1"
    await run_ffmpeg(["-loglevel", "error", "-f", "lavfi", "-i", red, "-y", file_arg(silent)])
    with pytest.raises(MediaError, match="ffmpeg failed"):
        await extract_audio(silent, tmp_path / "out" / "silent.wav")  # no audio stream to map
    assert os.listdir(tmp_path / "out") == []


async def test_cut_clip_has_the_requested_duration(tmp_path: Path) -> None:
    clip = await cut_clip(TALKING, 2.0, 6.5, tmp_path / "clip.mp4")
    info = await probe(clip)
    assert abs(info.duration - 4.5) < 0.15
    assert (info.width, info.height) == (320, 240)
    assert info.has_audio


async def test_cut_clip_checks_the_span(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"end must be greater than start \(3\.0\)"):
        await cut_clip(TALKING, 3.0, 3.0, tmp_path / "clip.mp4")
    with pytest.raises(ConfigurationError, match="start must be a number >= 0, got -1"):
        await cut_clip(TALKING, -1, 3.0, tmp_path / "clip.mp4")


async def test_vertical_clip_is_9_16_with_burned_captions(tmp_path: Path) -> None:
    srt = write_srt([Caption(0.0, 3.0, "BIG CAPTION TEXT HERE")], tmp_path / "clip.srt")
    plain = await vertical_clip(
        TALKING, tmp_path / "plain.mp4", width=270, height=480, start=1.0, end=4.0
    )
    captioned = await vertical_clip(
        TALKING, tmp_path / "captioned.mp4", srt=srt, width=270, height=480, start=1.0, end=4.0
    )
    for video in (plain, captioned):
        info = await probe(video)
        assert (info.width, info.height) == (270, 480)
        assert info.width * 16 == info.height * 9
        assert abs(info.duration - 3.0) < 0.15
    # Same picture except where the caption is drawn: the bottom of the frame.
    without = await _gray_frame(plain, 1.0, tmp_path / "without.gray")
    with_captions = await _gray_frame(captioned, 1.0, tmp_path / "with.gray")
    assert len(without) == len(with_captions) == 270 * 480
    rows = [
        sum(
            abs(a - b)
            for a, b in zip(
                without[r * 270 : (r + 1) * 270],
                with_captions[r * 270 : (r + 1) * 270],
                strict=True,
            )
        )
        for r in range(480)
    ]
    assert sum(rows[360:]) > 5 * sum(rows[:240]) + 10_000  # beyond re-encoding noise


async def test_vertical_clip_keeps_odd_file_names_safe(tmp_path: Path) -> None:
    odd = tmp_path / "-it's a [clip], 50%: ok;.srt"
    write_srt([Caption(0.0, 1.0, "{\\b1}bold?")], odd)
    out = await vertical_clip(TALKING, tmp_path / "-out.mp4", srt=odd, width=90, height=160, end=1)
    assert (await probe(out)).height == 160


async def test_vertical_clip_checks_the_size(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="width:height must be 9:16, got 320x480"):
        await vertical_clip(TALKING, tmp_path / "v.mp4", width=320, height=480)
    with pytest.raises(ConfigurationError, match="height must be a positive even int, got 161"):
        await vertical_clip(TALKING, tmp_path / "v.mp4", width=90, height=161)


async def test_threads_caps_ffmpeg_and_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    async def recording(args: Sequence[str], **options: Any) -> str:
        calls.append(list(args))
        return await run_ffmpeg(args, **options)

    monkeypatch.setattr(_media, "run_ffmpeg", recording)
    wav = await extract_audio(TALKING, tmp_path / "a.wav", threads=2)
    clip = await cut_clip(TALKING, 1.0, 2.0, tmp_path / "c.mp4", threads=1)
    plain = await cut_clip(TALKING, 1.0, 2.0, tmp_path / "d.mp4")
    assert wav.stat().st_size > 0
    assert abs((await probe(clip)).duration - 1.0) < 0.2
    assert plain.stat().st_size > 0
    # decoder + filter threads before the input, encoder threads after it
    assert calls[0][: calls[0].index("-i")].count("-threads") == 1
    assert [calls[0][i + 1] for i, a in enumerate(calls[0]) if a.endswith("threads")] == ["2"] * 3
    assert [calls[1][i + 1] for i, a in enumerate(calls[1]) if a.endswith("threads")] == ["1"] * 3
    assert not any(a.endswith("threads") for a in calls[2])
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigurationError, match=r"threads must be a positive int or None"):
            await vertical_clip(TALKING, tmp_path / "v.mp4", threads=bad)  # type: ignore[arg-type]  # bad values on purpose
    assert not (tmp_path / "v.mp4").exists()
