"""The command line: ``rxflows clip`` and ``rxflows demo`` in real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rxflows._cli import main

TALKING = Path(__file__).parent / "data" / "talking.mp4"
CLIP = ["clip", "a.mp4", "--out", "o"]


def rxflows(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``python -m rxflows ARGS`` with stdout a pipe (so progress is plain lines)."""
    return subprocess.run(
        [sys.executable, "-m", "rxflows", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.real_time
def test_clip_makes_clips_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "clips"
    done = rxflows("clip", TALKING, "--out", out, "--clips", "1", "--clip-seconds", "3", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    clip, srt, manifest = (
        out / "talking-clip-1.mp4",
        out / "talking-clip-1.srt",
        out / "talking.json",
    )
    assert clip.stat().st_size > 0
    assert srt.read_text().strip()
    assert len(json.loads(manifest.read_text())["clips"]) == 1
    # progress per stage, then the summary table
    assert "talking.mp4: generate_captions done in" in done.stdout
    assert "talking.mp4: notify done in" in done.stdout
    assert done.stdout.index("notify done") < done.stdout.index("source ")
    row = next(line for line in done.stdout.splitlines() if " completed " in line).split()
    assert row[0].endswith("talking.mp4")
    assert row[1:3] == ["completed", "1"]
    assert 3 <= float(row[3]) <= 5  # the clip's seconds
    assert "1 of 1 video(s) processed" in done.stdout


@pytest.mark.real_time
def test_clip_reports_bad_sources_and_exits_1(tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n")
    missing = tmp_path / "missing.mp4"
    done = rxflows("clip", notes, missing, "--out", tmp_path / "out", "--concurrency", "2")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"error: {notes}: probe: UnsupportedMediaError: not a readable media file" in done.stdout
    assert f"error: {missing}: validate: FileNotFoundError: input file not found" in done.stdout
    assert "0 of 2 video(s) processed" in done.stdout
    assert not list((tmp_path / "out").glob("*.mp4"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*CLIP, "--clip-seconds", "7", "3"], "MIN (7) must not exceed MAX (3)"),
        ([*CLIP, "--clips", "0"], "--clips: must be a positive integer, got '0'"),
        ([*CLIP, "--clip-seconds", "0", "3"], "must be positive seconds, got '0'"),
        ([*CLIP, "--webhook", "ftp://x"], "must be an http(s) URL, got 'ftp://x'"),
        ([*CLIP, "--concurrency", "x"], "--concurrency: must be a positive integer"),
        (["clip", "a.mp4"], "the following arguments are required: --out"),
        (["clip", "--out", "o"], "the following arguments are required: SOURCE"),
        ([], "the following arguments are required: COMMAND"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.real_time
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    done = rxflows("demo", "--out", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    clips = sorted((tmp_path / "clips").glob("talk-clip-*.mp4"))
    uploaded = sorted((tmp_path / "uploaded").glob("talk-clip-*.mp4"))
    assert len(clips) == 2
    assert [p.name for p in uploaded] == [p.name for p in clips]
    assert [p.read_bytes() for p in uploaded] == [p.read_bytes() for p in clips]
    assert "The upload endpoint received 2 clip(s)" in done.stdout
    assert "The webhook received 1 call(s)" in done.stdout
    assert '{"event": "video_processed", "clips": 2}' in done.stdout
    assert "talk.mp4: add_effects done in" in done.stdout
    assert done.stdout.rstrip().endswith("Demo complete.")
