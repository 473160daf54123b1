"""The safe ffmpeg runner and ``probe``, with the bundled ffmpeg on committed media.

These run real subprocesses, so they use a real-clock loop (``real_time``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from rxflows import ConfigurationError, RxFlowsError
from rxflows.video import (
    MediaError,
    UnsupportedMediaError,
    ffmpeg_exe,
    probe,
    run_ffmpeg,
    safe_output_path,
)
from rxflows.video._ffmpeg import file_arg, staged_output

pytestmark = pytest.mark.real_time

DATA = Path(__file__).parent / "data"
TALKING = DATA / "talking.mp4"


def _ffmpeg_children() -> list[psutil.Process]:
    exe = Path(ffmpeg_exe()).name
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == exe[:15] or Path(child.exe()).name == exe:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_rxflows_import_does_not_load_media_libraries() -> None:
    code = (
        "import sys, rxflows, rxflows.video; "
        "print(sorted(m for m in ('imageio_ffmpeg', 'pocketsphinx') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"


def test_media_errors_are_rxflows_errors() -> None:
    assert issubclass(MediaError, RxFlowsError)
    assert issubclass(UnsupportedMediaError, MediaError)
    assert issubclass(UnsupportedMediaError, ValueError)


async def test_probe_reads_the_committed_video() -> None:
    info = await probe(TALKING)
    assert info.path == TALKING.resolve()
    assert info.has_video
    assert info.has_audio
    assert (info.width, info.height) == (320, 240)
    assert info.fps == 15
    assert 11.5 < info.duration < 13.0


async def test_probe_accepts_a_file_named_like_an_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copyfile(TALKING, tmp_path / "-y")
    monkeypatch.chdir(tmp_path)
    info = await probe("-y")  # relative: resolved to an absolute path, never an option
    assert info.path == tmp_path / "-y"
    assert info.has_video


async def test_probe_a_missing_file_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="input file not found") as caught:
        await probe(tmp_path / "absent.mp4")
    assert not isinstance(caught.value, UnsupportedMediaError)


async def test_probe_rejects_a_text_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video, just some words\n" * 20)
    with pytest.raises(UnsupportedMediaError, match=r"not a readable media file: notes\.mp4") as e:
        await probe(text)
    assert e.value.problem == "not_media"
    assert e.value.path == str(text)


async def test_probe_rejects_a_truncated_mp4(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(TALKING.read_bytes()[:4000])  # header cut off mid-way
    with pytest.raises(UnsupportedMediaError, match="not a readable media file") as caught:
        await probe(corrupt)
    assert caught.value.problem == "not_media"
    assert caught.value.stderr  # ffmpeg's own words are kept


async def test_probe_rejects_audio_only(tmp_path: Path) -> None:
    audio = tmp_path / "voice.wav"
    source = file_arg(TALKING.resolve())
    await run_ffmpeg(["-loglevel", "error", "-i", source, "-vn", "-y", file_arg(audio)])
    with pytest.raises(UnsupportedMediaError, match=r"not a video: voice\.wav") as caught:
        await probe(audio)
    assert caught.value.problem == "no_video"
    info = await probe(audio, require_video=False)
    assert info.has_audio
    assert not info.has_video
    assert info.width == 0


async def test_probe_rejects_a_silent_video(tmp_path: Path) -> None:
    silent = tmp_path / "silent.mp4"
    red = "color=c=red:size=64x64:rate=5:duration=1"
    await run_ffmpeg(["-loglevel", "error", "-f", "lavfi", "-i", red, "-y", file_arg(silent)])
    with pytest.raises(UnsupportedMediaError, match=r"no audio: silent\.mp4") as caught:
        await probe(silent)
    assert caught.value.problem == "no_audio"


async def test_probe_rejects_a_video_over_max_duration() -> None:
    with pytest.raises(UnsupportedMediaError, match=r"too long: talking\.mp4 lasts 12\.\d s") as e:
        await probe(TALKING, max_duration=10)
    assert e.value.problem == "too_long"
    assert (await probe(TALKING, max_duration=13)).has_video


async def test_failed_run_raises_with_the_message_tail(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="ffmpeg failed with exit status") as caught:
        await run_ffmpeg(["-i", file_arg(tmp_path / "absent.mp4"), "-f", "null", "-"])
    assert caught.value.returncode not in (None, 0)
    assert "No such file or directory" in caught.value.stderr


async def test_unchecked_run_returns_stderr(tmp_path: Path) -> None:
    stderr = await run_ffmpeg(["-i", file_arg(tmp_path / "absent.mp4")], check=False)
    assert "No such file or directory" in stderr


async def test_stderr_is_bounded() -> None:
    # -loglevel debug is chatty: well over the 2 KiB kept here.
    stderr = await run_ffmpeg(
        ["-loglevel", "debug", "-f", "lavfi", "-i", "testsrc=duration=1", "-f", "null", "-"],
        stderr_limit=2048,
    )
    assert 0 < len(stderr.encode()) <= 2048


async def test_cancelling_kills_ffmpeg_and_leaves_no_process() -> None:
    endless = ["-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc", "-f", "null", "-"]
    task = asyncio.create_task(run_ffmpeg(endless))
    children: list[psutil.Process] = []
    for _ in range(500):  # real time: wait (at most 5 s) for the process to start
        children = _ffmpeg_children()
        if children:
            break
        await asyncio.sleep(0.01)
    assert len(children) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not children[0].is_running()  # killed and reaped: not even a zombie
    assert _ffmpeg_children() == []


def test_file_arg_needs_an_absolute_path() -> None:
    assert file_arg(Path("/tmp/-x.mp4")) == "file:/tmp/-x.mp4"
    with pytest.raises(ConfigurationError, match=r"path must be absolute, got '-x\.mp4'"):
        file_arg(Path("-x.mp4"))


def test_safe_output_path_stays_inside(tmp_path: Path) -> None:
    assert safe_output_path(tmp_path, "../../etc/passwd") == tmp_path / "passwd"
    assert safe_output_path(tmp_path, "..\\..\\boot.ini") == tmp_path / "boot.ini"
    assert safe_output_path(tmp_path, "-y clip 1.mp4") == tmp_path / "y_clip_1.mp4"
    assert safe_output_path(tmp_path, ".hidden") == tmp_path / "hidden"
    assert safe_output_path(tmp_path, "clip;rm -rf $HOME.mp4").parent == tmp_path
    for bad in ("", "..", "../", "-", "???"):
        with pytest.raises(ConfigurationError, match="output name must contain a letter"):
            safe_output_path(tmp_path, bad)


def test_safe_output_path_refuses_a_symlink_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(tmp_path / "elsewhere.mp4", out / "link.mp4")
    with pytest.raises(ConfigurationError, match="output name must stay inside"):
        safe_output_path(out, "link.mp4")


async def test_staged_output_renames_on_success_only(tmp_path: Path) -> None:
    async with staged_output(tmp_path / "ok.txt") as temp:
        assert temp.parent == tmp_path
        assert temp.suffix == ".txt"
        temp.write_text("done")
    assert (tmp_path / "ok.txt").read_text() == "done"

    async def fail_midway() -> None:
        async with staged_output(tmp_path / "bad.txt") as temp:
            temp.write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_midway()
    assert sorted(os.listdir(tmp_path)) == ["ok.txt"]
