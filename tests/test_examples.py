"""Every example runs, in virtual time, and prints what it promises."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    await load("demo").main()
    out = capsys.readouterr().out
    for title in (
        "SequentialFlow",
        "ParallelFlow",
        "StreamingFlow",
        "PipelineFlow",
        "FanOutFlow",
        "FanInFlow",
    ):
        assert f"== {title}" in out
    assert "8 done in 0.40s" in out  # virtual time: exactly two rounds of 0.2 s
    assert "upload-5.webm" in out
    assert "upload-6.webm" not in out
    assert "captions from audio of talk.mp4 (12 MB)" in out
    assert "['clip-1@1080p', 'clip-1@720p', 'clip-1@480p']" in out
    assert "6 frames: left#0, right#0, left#1, left#2, right#1, right#2" in out
    assert "['video1.webm (12 MB)', 'video2.webm (12 MB)']" in out


async def test_resilience(capsys: pytest.CaptureFixture[str]) -> None:
    await load("resilience").main()
    lines = capsys.readouterr().out.splitlines()
    states = [line.rsplit("breaker=", 1)[1] for line in lines if "breaker=" in line]
    # healthy, then the API goes down: the breaker opens, rejects, tries once while the
    # API is still down, reopens, and closes after the API is back
    assert states[0] == "CLOSED"
    assert "OPEN" in states
    assert states[-1] == "CLOSED"
    assert any("rejected by metadata-api" in line for line in lines)
    summary = lines[-1]
    assert "opened 2 time(s)" in summary
    assert "API requests: " in summary
